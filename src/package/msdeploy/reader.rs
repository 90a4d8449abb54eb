//! Reading package zips back: the central directory byte by byte, and single entries.
//!
//! Not through the `zip` crate, which hides what `iiswsgi check` is about (Zip64 records, the
//! host system, flag bits, extra fields, raw name bytes). Only the directory and the entries a
//! caller asks for are loaded, with caps, so a hostile zip cannot make a reader allocate
//! without bound. Used by `check` (rules Z01–Z10) and `webpi` (`iiswsgi feed`).
//!
//! A zip says most things twice: in each entry's local header and in the central directory.
//! Readers that trust different copies extract different files (a local name of
//! `../../../app.py` under a central `App/app.py`), so [`LocalHeader::disagreements`] compares
//! them, [`read_entry`] refuses an entry whose copies disagree, and [`LocalHeader::end`] gives
//! the extent of each entry's bytes, so `check` can refuse entries that overlap or run out of
//! order (1,000 directory records sharing one member).

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
const DESCRIPTOR_SIG: u32 = 0x0807_4b50;

/// Flag bit 3: CRC and sizes follow the data in a data descriptor (the local header may hold
/// zeros instead).
pub const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;

/// The flag bits that change how an entry is read, and so must agree between its local header
/// and its central record: encryption (0), data descriptor (3), strong encryption (6), UTF-8
/// name (11), masked local header (13). Writers may differ on the rest (bits 1–2 record the
/// deflate level).
pub const SIGNIFICANT_FLAGS: u16 = 1 | FLAG_DATA_DESCRIPTOR | 1 << 6 | 1 << 11 | 1 << 13;

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
    /// Where the central directory starts: every entry's bytes must end before it.
    pub offset: u64,
}

/// An entry's local header, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalHeader {
    /// Where the header starts (the central record's offset).
    pub offset: u64,
    /// General purpose flags.
    pub flags: u16,
    /// Compression method.
    pub method: u16,
    /// CRC-32 (zero when a data descriptor follows).
    pub crc: u32,
    /// Compressed size (after a Zip64 extra field; zero when a data descriptor follows).
    pub compressed: u64,
    /// Uncompressed size (likewise).
    pub size: u64,
    /// The name bytes as stored.
    pub raw_name: Vec<u8>,
    /// Extra field bytes.
    pub extra: Vec<u8>,
}

/// One way an entry's local header (or data descriptor) disagrees with its central record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Disagreement {
    /// Another name.
    #[error("the local header names it `{local}`")]
    Name {
        /// The local name (lossy UTF-8).
        local: String,
    },
    /// Another compression method.
    #[error("the local header says compression method {local}, the directory {central}")]
    Method {
        /// Local.
        local: u16,
        /// Central.
        central: u16,
    },
    /// Other significant flag bits ([`SIGNIFICANT_FLAGS`]).
    #[error("the local header's flags {local:#06x} differ from the directory's {central:#06x}")]
    Flags {
        /// Local.
        local: u16,
        /// Central.
        central: u16,
    },
    /// Another CRC-32, compressed or uncompressed size.
    #[error("the {place} says {field} {local}, the directory {central}")]
    Value {
        /// `local header` or `data descriptor`.
        place: &'static str,
        /// `CRC-32`, `compressed size` or `size`.
        field: &'static str,
        /// Theirs.
        local: u64,
        /// The central directory's.
        central: u64,
    },
}

impl LocalHeader {
    /// Where the entry's data starts.
    pub fn data_offset(&self) -> u64 {
        self.offset + 30 + self.raw_name.len() as u64 + self.extra.len() as u64
    }

    /// How this header disagrees with `e`, the central record pointing at it. CRC and sizes
    /// may be zero when a data descriptor carries them (checked by [`Self::end`]'s caller
    /// through [`read_descriptor`]).
    pub fn disagreements(&self, e: &ZipEntry) -> Vec<Disagreement> {
        let mut out = Vec::new();
        if self.raw_name != e.raw_name {
            out.push(Disagreement::Name {
                local: String::from_utf8_lossy(&self.raw_name).into_owned(),
            });
        }
        if self.method != e.method {
            out.push(Disagreement::Method {
                local: self.method,
                central: e.method,
            });
        }
        if self.flags & SIGNIFICANT_FLAGS != e.flags & SIGNIFICANT_FLAGS {
            out.push(Disagreement::Flags {
                local: self.flags,
                central: e.flags,
            });
        }
        let deferred = self.flags & FLAG_DATA_DESCRIPTOR != 0;
        for (field, local, central) in [
            ("CRC-32", u64::from(self.crc), u64::from(e.crc)),
            ("compressed size", self.compressed, e.compressed),
            ("size", self.size, e.size),
        ] {
            if local != central && !(deferred && local == 0) {
                out.push(Disagreement::Value {
                    place: "local header",
                    field,
                    local,
                    central,
                });
            }
        }
        out
    }

    /// Where the entry's bytes end: after its data, and after its data descriptor when it has
    /// one (at least 12 bytes; 16 with the optional signature, which is looked for).
    pub fn end<R: Read + Seek>(&self, r: &mut R, e: &ZipEntry) -> Result<u64, ZipReadError> {
        let data_end = self.data_offset().saturating_add(e.compressed);
        if e.flags & FLAG_DATA_DESCRIPTOR == 0 {
            return Ok(data_end);
        }
        Ok(data_end + read_descriptor(r, e, data_end)?.len)
    }
}

/// A data descriptor: what follows an entry's data when flag bit 3 is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// Its length in bytes, signature included.
    pub len: u64,
    /// CRC-32.
    pub crc: u32,
    /// Compressed size.
    pub compressed: u64,
    /// Uncompressed size.
    pub size: u64,
}

impl Descriptor {
    /// How the descriptor disagrees with the central record.
    pub fn disagreements(&self, e: &ZipEntry) -> Vec<Disagreement> {
        [
            ("CRC-32", u64::from(self.crc), u64::from(e.crc)),
            ("compressed size", self.compressed, e.compressed),
            ("size", self.size, e.size),
        ]
        .into_iter()
        .filter(|(_, local, central)| local != central)
        .map(|(field, local, central)| Disagreement::Value {
            place: "data descriptor",
            field,
            local,
            central,
        })
        .collect()
    }
}

/// Reads the data descriptor of `e` at `at` (the end of its data): with or without its
/// optional signature, with 8-byte sizes when the entry uses Zip64.
pub fn read_descriptor<R: Read + Seek>(
    r: &mut R,
    e: &ZipEntry,
    at: u64,
) -> Result<Descriptor, ZipReadError> {
    let wide = e.zip64;
    let body = if wide { 20 } else { 12 };
    let b = read_at(r, at, 4)?;
    let (start, len) = if le32(&b, 0) == DESCRIPTOR_SIG {
        (at + 4, body + 4)
    } else {
        (at, body)
    };
    let d = read_at(r, start, body as usize)?;
    let (compressed, size) = if wide {
        (le64(&d, 4), le64(&d, 12))
    } else {
        (u64::from(le32(&d, 4)), u64::from(le32(&d, 8)))
    };
    Ok(Descriptor {
        len,
        crc: le32(&d, 0),
        compressed,
        size,
    })
}

/// Why a zip (or one of its entries) could not be read. The message is complete on its own:
/// an I/O error is part of it, not a `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ZipReadError {
    /// Seeking in the file failed.
    #[error("{0}")]
    Seek(std::io::Error),
    /// The file ended (or failed) before `len` bytes at `offset`.
    #[error("cannot read {len} bytes at offset {offset}: {error}")]
    Short {
        /// Bytes wanted.
        len: usize,
        /// Where.
        offset: u64,
        /// The I/O error.
        error: std::io::Error,
    },
    /// Shorter than an end-of-central-directory record.
    #[error("too short to be a zip")]
    TooShort,
    /// No end-of-central-directory record in the tail.
    #[error("no end-of-central-directory record (not a zip)")]
    NoEndRecord,
    /// The Zip64 locator points at something else.
    #[error("the Zip64 locator points at no Zip64 end record")]
    NoZip64EndRecord,
    /// The central directory is larger than the file or than [`MAX_DIRECTORY_BYTES`].
    #[error("central directory of {size} bytes at {offset} does not fit the file")]
    DirectoryOutOfBounds {
        /// Its size.
        size: u64,
        /// Its offset.
        offset: u64,
    },
    /// A central-directory record runs past the directory's end.
    #[error("central directory record {number} is truncated")]
    TruncatedRecord {
        /// 1-based.
        number: usize,
    },
    /// The end record's entry count is not the directory's.
    #[error("the end record promises {promised} entries but the central directory holds {found}")]
    CountMismatch {
        /// The end record's count.
        promised: u64,
        /// Records found.
        found: usize,
    },
    /// An entry's offset does not lead to a local header.
    #[error("{name}: no local header at offset {offset}")]
    NoLocalHeader {
        /// The entry.
        name: String,
        /// Its offset.
        offset: u64,
    },
    /// An entry is larger than the caller's cap.
    #[error("{name} is larger than {limit} bytes")]
    TooLarge {
        /// The entry.
        name: String,
        /// The cap.
        limit: u64,
    },
    /// Neither stored nor deflated.
    #[error("{name}: compression method {method} is not supported")]
    Method {
        /// The entry.
        name: String,
        /// The method.
        method: u16,
    },
    /// Reading or inflating the entry's bytes failed.
    #[error("{name}: {error}")]
    Inflate {
        /// The entry.
        name: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The bytes do not match the directory's size or CRC-32.
    #[error("{name}: size or CRC does not match the directory")]
    Mismatch {
        /// The entry.
        name: String,
    },
    /// The local header says something else than the central directory.
    #[error("{name}: {disagreement}")]
    Disagrees {
        /// The entry (its central name).
        name: String,
        /// The first difference.
        disagreement: Disagreement,
    },
    /// A text entry is not UTF-8.
    #[error("{name} is not UTF-8")]
    NotUtf8 {
        /// The entry.
        name: String,
    },
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

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, len: usize) -> Result<Vec<u8>, ZipReadError> {
    r.seek(SeekFrom::Start(offset))
        .map_err(ZipReadError::Seek)?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)
        .map_err(|error| ZipReadError::Short { len, offset, error })?;
    Ok(buf)
}

/// Reads the central directory of the zip in `r`.
pub fn read_directory<R: Read + Seek>(r: &mut R) -> Result<ZipDirectory, ZipReadError> {
    let len = r.seek(SeekFrom::End(0)).map_err(ZipReadError::Seek)?;
    if len < 22 {
        return Err(ZipReadError::TooShort);
    }
    let tail_len = len.min(22 + 65_535 + 20);
    let tail = read_at(r, len - tail_len, tail_len as usize)?;
    let eocd = (0..=tail.len() - 22)
        .rev()
        .find(|&i| {
            le32(&tail, i) == EOCD_SIG && i + 22 + le16(&tail, i + 20) as usize == tail.len()
        })
        .ok_or(ZipReadError::NoEndRecord)?;
    let mut count = u64::from(le16(&tail, eocd + 10));
    let mut cd_size = u64::from(le32(&tail, eocd + 12));
    let mut cd_offset = u64::from(le32(&tail, eocd + 16));
    let mut zip64 = false;
    if eocd >= 20 && le32(&tail, eocd - 20) == ZIP64_LOCATOR_SIG {
        zip64 = true;
        let record = le64(&tail, eocd - 20 + 8);
        let z = read_at(r, record, 56)?;
        if le32(&z, 0) != ZIP64_EOCD_SIG {
            return Err(ZipReadError::NoZip64EndRecord);
        }
        count = le64(&z, 32);
        cd_size = le64(&z, 40);
        cd_offset = le64(&z, 48);
    }
    if cd_size > MAX_DIRECTORY_BYTES || cd_offset.saturating_add(cd_size) > len {
        return Err(ZipReadError::DirectoryOutOfBounds {
            size: cd_size,
            offset: cd_offset,
        });
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
            return Err(ZipReadError::TruncatedRecord {
                number: entries.len() + 1,
            });
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
        return Err(ZipReadError::CountMismatch {
            promised: count,
            found: entries.len(),
        });
    }
    Ok(ZipDirectory {
        entries,
        zip64,
        offset: cd_offset,
    })
}

/// Reads the 0x0001 (Zip64) extra block, replacing 0xFFFFFFFF fields.
fn apply_zip64_extra(e: &mut ZipEntry) {
    let mut offset = e.offset;
    e.zip64 = apply_zip64(&e.extra, [&mut e.size, &mut e.compressed, &mut offset]);
    e.offset = offset;
}

/// Replaces each 0xFFFFFFFF field, in order, from a Zip64 (0x0001) block of `extra`; whether
/// there was such a block.
fn apply_zip64<const N: usize>(extra: &[u8], fields: [&mut u64; N]) -> bool {
    let mut at = 0;
    let mut found = false;
    let mut fields = fields;
    while at + 4 <= extra.len() {
        let id = le16(extra, at);
        let size = le16(extra, at + 2) as usize;
        let body = at + 4;
        if body + size > extra.len() {
            break;
        }
        if id == 0x0001 {
            found = true;
            let mut p = body;
            for field in fields.iter_mut() {
                if **field == u64::from(u32::MAX) && p + 8 <= body + size {
                    **field = le64(extra, p);
                    p += 8;
                }
            }
        }
        at = body + size;
    }
    found
}

/// Reads the local header `e` points at: fixed fields, name and extra field.
pub fn read_local_header<R: Read + Seek>(
    r: &mut R,
    e: &ZipEntry,
) -> Result<LocalHeader, ZipReadError> {
    let header = local_header(r, e)?;
    let name_len = le16(&header, 26) as usize;
    let extra_len = le16(&header, 28) as usize;
    let rest = read_at(r, e.offset + 30, name_len + extra_len)?;
    let mut h = LocalHeader {
        offset: e.offset,
        flags: le16(&header, 6),
        method: le16(&header, 8),
        crc: le32(&header, 14),
        compressed: u64::from(le32(&header, 18)),
        size: u64::from(le32(&header, 22)),
        raw_name: rest[..name_len].to_vec(),
        extra: rest[name_len..].to_vec(),
    };
    let extra = std::mem::take(&mut h.extra);
    apply_zip64(&extra, [&mut h.size, &mut h.compressed]);
    h.extra = extra;
    Ok(h)
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
pub fn read_entry<R: Read + Seek>(
    r: &mut R,
    e: &ZipEntry,
    limit: u64,
) -> Result<Vec<u8>, ZipReadError> {
    if e.size > limit {
        return Err(ZipReadError::TooLarge {
            name: e.name.clone(),
            limit,
        });
    }
    let header = read_local_header(r, e)?;
    if let Some(disagreement) = header.disagreements(e).into_iter().next() {
        return Err(ZipReadError::Disagrees {
            name: e.name.clone(),
            disagreement,
        });
    }
    r.seek(SeekFrom::Start(header.data_offset()))
        .map_err(ZipReadError::Seek)?;
    let raw = r.take(e.compressed);
    let mut out = Vec::new();
    match e.method {
        0 => raw.take(limit + 1).read_to_end(&mut out),
        8 => flate2::read::DeflateDecoder::new(raw)
            .take(limit + 1)
            .read_to_end(&mut out),
        method => {
            return Err(ZipReadError::Method {
                name: e.name.clone(),
                method,
            });
        }
    }
    .map_err(|error| ZipReadError::Inflate {
        name: e.name.clone(),
        error,
    })?;
    if out.len() as u64 != e.size || crc32fast::hash(&out) != e.crc {
        return Err(ZipReadError::Mismatch {
            name: e.name.clone(),
        });
    }
    Ok(out)
}

/// Reads one entry as UTF-8 text (see [`read_entry`]).
pub fn read_text<R: Read + Seek>(
    r: &mut R,
    e: &ZipEntry,
    limit: u64,
) -> Result<String, ZipReadError> {
    String::from_utf8(read_entry(r, e, limit)?).map_err(|_| ZipReadError::NotUtf8 {
        name: e.name.clone(),
    })
}

/// The 30 fixed bytes of an entry's local header.
fn local_header<R: Read + Seek>(r: &mut R, e: &ZipEntry) -> Result<Vec<u8>, ZipReadError> {
    let header = read_at(r, e.offset, 30)?;
    if le32(&header, 0) != LOCAL_SIG {
        return Err(ZipReadError::NoLocalHeader {
            name: e.name.clone(),
            offset: e.offset,
        });
    }
    Ok(header)
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
