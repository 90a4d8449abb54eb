//! Reading package zips back: the central directory byte by byte, and single entries.
//!
//! Not through the `zip` crate, which hides what `iiswsgi check` is about (Zip64 records, the
//! host system, flag bits, extra fields, raw name bytes). Only the directory and the entries a
//! caller asks for are loaded, with caps, so a hostile zip cannot make a reader allocate
//! without bound. Used by `check` (rules Z01–Z10) and `webpi` (`iiswsgi feed`).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use sha1::{Digest, Sha1};

use super::timestamp::DosDateTime;

/// Largest central directory read (a legal package has at most 65,535 entries).
pub const MAX_DIRECTORY_BYTES: u64 = 64 << 20;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

/// One central-directory record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    /// The name bytes as stored.
    pub raw_name: Vec<u8>,
    /// The name decoded (UTF-8, lossy).
    pub name: String,
    /// Version made by (high byte: host system; 0 = MS-DOS).
    pub made_by: u16,
    /// Version needed to extract (20 = 2.0; 45 = Zip64).
    pub version_needed: u16,
    /// General purpose flags.
    pub flags: u16,
    /// Compression method.
    pub method: u16,
    /// DOS time and date.
    pub time: DosDateTime,
    /// CRC-32.
    pub crc: u32,
    /// Compressed size (after Zip64 extras).
    pub compressed: u64,
    /// Uncompressed size (after Zip64 extras).
    pub size: u64,
    /// Offset of the local header.
    pub offset: u64,
    /// External attributes.
    pub external: u32,
    /// Extra field bytes.
    pub extra: Vec<u8>,
    /// Whether this record uses a Zip64 extra field.
    pub zip64: bool,
}

impl ZipEntry {
    /// Whether the entry is a folder (trailing `/`).
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// A zip's central directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZipDirectory {
    /// Entries in directory order.
    pub entries: Vec<ZipEntry>,
    /// Whether the archive has Zip64 end records.
    pub zip64: bool,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    r.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .map_err(|e| format!("cannot read {len} bytes at offset {offset}: {e}"))?;
    Ok(buf)
}

/// Reads the central directory of the zip in `r`.
pub fn read_directory<R: Read + Seek>(r: &mut R) -> Result<ZipDirectory, String> {
    let len = r.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    if len < 22 {
        return Err("too short to be a zip".into());
    }
    let tail_len = len.min(22 + 65_535 + 20);
    let tail = read_at(r, len - tail_len, tail_len as usize)?;
    let eocd = (0..=tail.len() - 22)
        .rev()
        .find(|&i| {
            le32(&tail, i) == EOCD_SIG && i + 22 + le16(&tail, i + 20) as usize == tail.len()
        })
        .ok_or("no end-of-central-directory record (not a zip)")?;
    let mut count = u64::from(le16(&tail, eocd + 10));
    let mut cd_size = u64::from(le32(&tail, eocd + 12));
    let mut cd_offset = u64::from(le32(&tail, eocd + 16));
    let mut zip64 = false;
    if eocd >= 20 && le32(&tail, eocd - 20) == ZIP64_LOCATOR_SIG {
        zip64 = true;
        let record = le64(&tail, eocd - 20 + 8);
        let z = read_at(r, record, 56)?;
        if le32(&z, 0) != ZIP64_EOCD_SIG {
            return Err("the Zip64 locator points at no Zip64 end record".into());
        }
        count = le64(&z, 32);
        cd_size = le64(&z, 40);
        cd_offset = le64(&z, 48);
    }
    if cd_size > MAX_DIRECTORY_BYTES || cd_offset.saturating_add(cd_size) > len {
        return Err(format!(
            "central directory of {cd_size} bytes at {cd_offset} does not fit the file"
        ));
    }
    let cd = read_at(r, cd_offset, cd_size as usize)?;
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at + 46 <= cd.len() && le32(&cd, at) == CENTRAL_SIG {
        let name_len = le16(&cd, at + 28) as usize;
        let extra_len = le16(&cd, at + 30) as usize;
        let comment_len = le16(&cd, at + 32) as usize;
        let end = at + 46 + name_len + extra_len + comment_len;
        if end > cd.len() {
            return Err(format!(
                "central directory record {} is truncated",
                entries.len() + 1
            ));
        }
        let raw_name = cd[at + 46..at + 46 + name_len].to_vec();
        let extra = cd[at + 46 + name_len..at + 46 + name_len + extra_len].to_vec();
        let mut entry = ZipEntry {
            name: String::from_utf8_lossy(&raw_name).into_owned(),
            raw_name,
            made_by: le16(&cd, at + 4),
            version_needed: le16(&cd, at + 6),
            flags: le16(&cd, at + 8),
            method: le16(&cd, at + 10),
            time: DosDateTime {
                time: le16(&cd, at + 12),
                date: le16(&cd, at + 14),
            },
            crc: le32(&cd, at + 16),
            compressed: u64::from(le32(&cd, at + 20)),
            size: u64::from(le32(&cd, at + 24)),
            offset: u64::from(le32(&cd, at + 42)),
            external: le32(&cd, at + 38),
            extra,
            zip64: false,
        };
        apply_zip64_extra(&mut entry);
        entries.push(entry);
        at = end;
    }
    if entries.len() as u64 != count {
        return Err(format!(
            "the end record promises {count} entries but the central directory holds {}",
            entries.len()
        ));
    }
    Ok(ZipDirectory { entries, zip64 })
}

/// Reads the 0x0001 (Zip64) extra block, replacing 0xFFFFFFFF fields.
fn apply_zip64_extra(e: &mut ZipEntry) {
    let mut at = 0;
    while at + 4 <= e.extra.len() {
        let id = le16(&e.extra, at);
        let size = le16(&e.extra, at + 2) as usize;
        let body = at + 4;
        if body + size > e.extra.len() {
            break;
        }
        if id == 0x0001 {
            e.zip64 = true;
            let mut p = body;
            for field in [&mut e.size, &mut e.compressed, &mut e.offset] {
                if *field == u64::from(u32::MAX) && p + 8 <= body + size {
                    *field = le64(&e.extra, p);
                    p += 8;
                }
            }
        }
        at = body + size;
    }
}

/// The extra field of an entry's local header (it may differ from the central directory's).
pub fn local_extra<R: Read + Seek>(r: &mut R, e: &ZipEntry) -> Result<Vec<u8>, String> {
    let header = read_at(r, e.offset, 30)?;
    if le32(&header, 0) != LOCAL_SIG {
        return Err(format!(
            "{}: no local header at offset {}",
            e.name, e.offset
        ));
    }
    let name_len = u64::from(le16(&header, 26));
    let extra_len = le16(&header, 28) as usize;
    read_at(r, e.offset + 30 + name_len, extra_len)
}

/// Whether an extra field holds a Zip64 (0x0001) block.
pub fn has_zip64_block(extra: &[u8]) -> bool {
    let mut at = 0;
    while at + 4 <= extra.len() {
        if le16(extra, at) == 0x0001 {
            return true;
        }
        at += 4 + le16(extra, at + 2) as usize;
    }
    false
}

/// Reads and inflates one entry (stored or deflated), verifying its CRC; at most `limit` bytes.
pub fn read_entry<R: Read + Seek>(r: &mut R, e: &ZipEntry, limit: u64) -> Result<Vec<u8>, String> {
    if e.size > limit {
        return Err(format!("{} is larger than {limit} bytes", e.name));
    }
    let header = read_at(r, e.offset, 30)?;
    if le32(&header, 0) != LOCAL_SIG {
        return Err(format!(
            "{}: no local header at offset {}",
            e.name, e.offset
        ));
    }
    let skip = 30 + u64::from(le16(&header, 26)) + u64::from(le16(&header, 28));
    r.seek(SeekFrom::Start(e.offset + skip))
        .map_err(|err| err.to_string())?;
    let raw = r.take(e.compressed);
    let mut out = Vec::new();
    match e.method {
        0 => raw.take(limit + 1).read_to_end(&mut out),
        8 => flate2::read::DeflateDecoder::new(raw)
            .take(limit + 1)
            .read_to_end(&mut out),
        m => {
            return Err(format!(
                "{}: compression method {m} is not supported",
                e.name
            ));
        }
    }
    .map_err(|err| format!("{}: {err}", e.name))?;
    if out.len() as u64 != e.size || crc32fast::hash(&out) != e.crc {
        return Err(format!(
            "{}: size or CRC does not match the directory",
            e.name
        ));
    }
    Ok(out)
}

/// SHA-1 and size of a file, streamed (what a feed's `sha1` and `fileSize` describe).
pub fn sha1_file(path: &Path) -> std::io::Result<([u8; 20], u64)> {
    let mut file = fs_err::File::open(path)?;
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}
