//! The zip backend: writes the gate's entries as an msdeploy-safe zip, compressing on every core
//! while writing strictly in order, with bounded memory and a SHA-1 of the output as it streams.
//!
//! Why not the `zip` crate's writer: the package needs metadata it does not let us choose (MS-DOS
//! host, external attributes `0x20`/`0x10`, no extra fields, spec §1.2), and parallel compression
//! needs to write bytes another thread already deflated. Its only way to do that is
//! `raw_copy_file` from a second archive, which would double every write. The format written here
//! is the small, fixed subset of APPNOTE that msdeploy reads: local header, data, central
//! directory, end record; no data descriptors, no Zip64, methods 0 and 8 only. The `zip` crate
//! is still used to read packages back (tests, `check`).
//!
//! Pipeline: worker threads claim entries in order and pack each one (CRC-32 + raw deflate at
//! level 6, or stored when deflate does not shrink it): files up to [`IN_MEMORY_MAX`] into a
//! buffer, larger ones into an anonymous spool file next to the output. The claiming thread
//! stops when the packed-but-unwritten entries reach [`IN_FLIGHT_BUDGET`] bytes or
//! [`MAX_IN_FLIGHT`] entries; the writer copies each entry as soon as it is its turn, so the
//! output is identical whatever the thread count. Every header value is known before the header
//! is written, so the output is never seeked and the SHA-1 is computed on the bytes as written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use flate2::{Compress, Compression, FlushCompress, Status};
use sha1::{Digest, Sha1};

use super::{Backend, Entry, Source};
use crate::package::msdeploy::error::PackageError;
use crate::package::msdeploy::limits::MAX_ENTRIES;

/// Files up to this size are packed in memory; larger ones go through a spool file.
pub const IN_MEMORY_MAX: u64 = 1 << 20;

/// Packed-but-unwritten bytes the workers may hold before they wait for the writer.
pub const IN_FLIGHT_BUDGET: u64 = 16 << 20;

/// Packed-but-unwritten entries the workers may hold (bounds open spool files too).
pub const MAX_IN_FLIGHT: usize = 1024;

/// What an in-flight spooled entry is charged against the budget (one per ~1 MiB keeps at most
/// a handful of spool files open).
const SPOOL_COST: u64 = 1 << 20;

/// I/O buffer size for reading large files, spooling and copying.
const IO_BUF: usize = 256 << 10;

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIR_SIG: u32 = 0x0605_4b50;
/// Version needed to extract: 2.0 (deflate, folders).
const VERSION_NEEDED: u16 = 20;
/// Version made by: host 0 (MS-DOS / FAT) in the high byte, spec 2.0 in the low byte.
const VERSION_MADE_BY: u16 = 20;
/// General purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// MS-DOS attributes: ARCHIVE for files, DIRECTORY for folders.
const ATTR_FILE: u32 = 0x20;
const ATTR_DIR: u32 = 0x10;

/// How the zip is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipOptions {
    /// Deflate level, 0–9 (6, like `zip -6`, by default).
    pub level: u32,
    /// Compression threads (at least 1; all cores by default).
    pub threads: usize,
    /// Show a progress bar on stderr (the caller decides whether stderr is a terminal).
    pub progress: bool,
}

impl Default for ZipOptions {
    fn default() -> Self {
        Self {
            level: 6,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            progress: false,
        }
    }
}

/// A finished zip: where it is, its SHA-1 and size (as a feed needs them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipSummary {
    /// The zip file.
    pub path: PathBuf,
    /// SHA-1 of the whole file.
    pub sha1: [u8; 20],
    /// Size in bytes.
    pub size: u64,
    /// Number of entries.
    pub entries: usize,
}

impl ZipSummary {
    /// The SHA-1 as 40 lowercase hex digits.
    pub fn sha1_hex(&self) -> String {
        crate::package::hex(&self.sha1)
    }
}

/// Writes a zip file at a path, atomically: a temporary file beside it is renamed at the end,
/// so a failed build never leaves a partial zip behind.
#[derive(Debug, Clone)]
pub struct ZipBackend {
    out: PathBuf,
    options: ZipOptions,
}

impl ZipBackend {
    /// A backend writing to `out` with `options`.
    pub fn new(out: impl Into<PathBuf>, options: ZipOptions) -> Self {
        Self {
            out: out.into(),
            options,
        }
    }
}

impl Backend for ZipBackend {
    type Output = ZipSummary;

    fn write_entries(self, entries: Vec<Entry>) -> Result<ZipSummary, PackageError> {
        let dir = match self.out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let write_err = |path: &Path, source: io::Error| PackageError::Write {
            path: path.to_path_buf(),
            source,
        };
        let tmp = tempfile::Builder::new()
            .prefix(".iiswsgi-")
            .suffix(".zip.partial")
            .tempfile_in(&dir)
            .map_err(|e| write_err(&dir, e))?;
        let (size, sha1) = write_zip(
            &entries,
            BufWriter::with_capacity(IO_BUF, tmp.as_file()),
            &dir,
            &self.out,
            &self.options,
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o644);
            tmp.as_file()
                .set_permissions(perms)
                .map_err(|e| write_err(&self.out, e))?;
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| write_err(&self.out, e))?;
        tmp.persist(&self.out)
            .map_err(|e| write_err(&self.out, e.error))?;
        Ok(ZipSummary {
            path: self.out,
            sha1,
            size,
            entries: entries.len(),
        })
    }
}

/// Writes `entries` as a zip to `out`, spooling large files in `spool_dir`; returns the size and
/// SHA-1 of the bytes written. `dest` names the output in errors.
pub fn write_zip<W: Write>(
    entries: &[Entry],
    out: W,
    spool_dir: &Path,
    dest: &Path,
    options: &ZipOptions,
) -> Result<(u64, [u8; 20]), PackageError> {
    if entries.len() > MAX_ENTRIES {
        return Err(PackageError::TooManyEntries {
            count: entries.len(),
        });
    }
    let progress = progress_bar(entries, options.progress);
    let mut out = HashingWriter::new(out);
    let central = pipeline(entries, &mut out, spool_dir, dest, options, &progress)?;
    write_central_directory(&mut out, &central, dest)?;
    out.flush().map_err(|source| PackageError::Write {
        path: dest.to_path_buf(),
        source,
    })?;
    progress.finish_and_clear();
    Ok((out.count, out.sha1.finalize().into()))
}

fn progress_bar(entries: &[Entry], enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let total: u64 = entries.iter().map(Entry::size).sum();
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} packing [{bar:30}] {bytes}/{total_bytes}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// An entry's bytes after packing.
#[derive(Debug)]
enum Body {
    Empty,
    Memory(Vec<u8>),
    /// A spool file positioned at its start, holding exactly `compressed` bytes.
    Spool(File),
}

/// Everything the headers need, plus the bytes.
#[derive(Debug)]
struct Packed {
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    body: Body,
}

/// What the central directory needs to remember about a written entry.
#[derive(Debug)]
struct CentralRecord<'a> {
    name: &'a str,
    flags: u16,
    method: u16,
    time: u16,
    date: u16,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
    attributes: u32,
}

/// Scheduling state shared by the workers and the writer.
#[derive(Debug, Default)]
struct State {
    /// Next entry index to claim.
    next: usize,
    /// Entries written so far (all indices below are done).
    written: usize,
    /// Budget charged by claimed, unwritten entries.
    used: u64,
    /// Packed entries waiting for their turn.
    ready: HashMap<usize, Result<Packed, PackageError>>,
    /// The writer gave up: workers stop claiming.
    stop: bool,
    /// A worker panicked: the writer must not wait for it.
    panicked: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when budget is released or `stop` is set.
    claimable: Condvar,
    /// Signalled when an entry is packed or a worker dies.
    packed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks the state when a worker unwinds, so the writer never waits forever.
struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().panicked = true;
            self.0.packed.notify_all();
        }
    }
}

/// Budget an entry is charged while in flight.
fn cost(entry: &Entry) -> u64 {
    match &entry.source {
        Source::Dir => 0,
        Source::Generated(b) => b.len() as u64,
        Source::OnDisk { size, .. } if *size <= IN_MEMORY_MAX => *size,
        Source::OnDisk { .. } => SPOOL_COST,
    }
}

fn pipeline<'a, W: Write>(
    entries: &'a [Entry],
    out: &mut HashingWriter<W>,
    spool_dir: &Path,
    dest: &Path,
    options: &ZipOptions,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<CentralRecord<'a>>, PackageError> {
    let shared = Shared {
        state: Mutex::new(State::default()),
        claimable: Condvar::new(),
        packed: Condvar::new(),
    };
    let costs: Vec<u64> = entries.iter().map(cost).collect();
    let level = Compression::new(options.level.min(9));
    let threads = options.threads.max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| worker(entries, &costs, &shared, spool_dir, level)))
            .collect();
        let result = write_in_order(entries, &costs, &shared, out, dest, progress);
        shared.lock().stop = true;
        shared.claimable.notify_all();
        let mut panicked = false;
        for w in workers {
            panicked |= w.join().is_err();
        }
        match result {
            Err(PackageError::WorkerPanicked) | Ok(_) if panicked => {
                Err(PackageError::WorkerPanicked)
            }
            other => other,
        }
    })
}

fn worker(entries: &[Entry], costs: &[u64], shared: &Shared, spool_dir: &Path, level: Compression) {
    let _guard = PanicGuard(shared);
    let mut z = Compress::new(level, false);
    let mut scratch = Scratch::default();
    loop {
        let index = {
            let mut st = shared.lock();
            loop {
                if st.stop || st.next >= entries.len() {
                    return;
                }
                let in_flight = st.next - st.written;
                let cost = costs[st.next];
                if in_flight == 0
                    || (st.used + cost <= IN_FLIGHT_BUDGET && in_flight < MAX_IN_FLIGHT)
                {
                    break;
                }
                st = shared
                    .claimable
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let index = st.next;
            st.next += 1;
            st.used += costs[index];
            index
        };
        let result = pack(&entries[index], &mut z, &mut scratch, spool_dir);
        shared.lock().ready.insert(index, result);
        shared.packed.notify_all();
    }
}

fn write_in_order<'a, W: Write>(
    entries: &'a [Entry],
    costs: &[u64],
    shared: &Shared,
    out: &mut HashingWriter<W>,
    dest: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<CentralRecord<'a>>, PackageError> {
    let mut central = Vec::with_capacity(entries.len());
    let mut copy_buf = vec![0u8; IO_BUF];
    for (index, entry) in entries.iter().enumerate() {
        let packed = {
            let mut st = shared.lock();
            loop {
                if let Some(result) = st.ready.remove(&index) {
                    break result;
                }
                if st.panicked {
                    return Err(PackageError::WorkerPanicked);
                }
                st = shared
                    .packed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }?;
        central.push(write_entry(out, entry, packed, dest, &mut copy_buf)?);
        {
            let mut st = shared.lock();
            st.used -= costs[index];
            st.written += 1;
        }
        shared.claimable.notify_all();
        progress.inc(entry.size());
    }
    Ok(central)
}

/// Reusable buffers of one worker.
#[derive(Default)]
struct Scratch {
    input: Vec<u8>,
    output: Vec<u8>,
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> PackageError + '_ {
    move |source| PackageError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn pack(
    entry: &Entry,
    z: &mut Compress,
    scratch: &mut Scratch,
    spool_dir: &Path,
) -> Result<Packed, PackageError> {
    match &entry.source {
        Source::Dir => Ok(Packed {
            method: METHOD_STORED,
            crc: 0,
            compressed: 0,
            size: 0,
            body: Body::Empty,
        }),
        Source::Generated(bytes) => pack_in_memory(bytes, z, &entry.name),
        Source::OnDisk { path, size } if *size <= IN_MEMORY_MAX => {
            let file = fs_err::File::open(path).map_err(read_error(path))?;
            scratch.input.clear();
            file.take(IN_MEMORY_MAX + 1)
                .read_to_end(&mut scratch.input)
                .map_err(read_error(path))?;
            if scratch.input.len() as u64 != *size {
                return Err(PackageError::FileChanged { path: path.clone() });
            }
            let packed = pack_in_memory(&scratch.input, z, &entry.name);
            if scratch.input.capacity() > 2 * IN_MEMORY_MAX as usize {
                scratch.input = Vec::new();
            }
            packed
        }
        Source::OnDisk { path, size } => pack_spooled(path, *size, z, scratch, spool_dir),
    }
}

fn pack_in_memory(data: &[u8], z: &mut Compress, name: &str) -> Result<Packed, PackageError> {
    let crc = crc32fast::hash(data);
    let size = data.len() as u64;
    if data.is_empty() {
        return Ok(Packed {
            method: METHOD_STORED,
            crc,
            compressed: 0,
            size,
            body: Body::Empty,
        });
    }
    z.reset();
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    deflate(z, data, &mut out, FlushCompress::Finish).map_err(|e| PackageError::Read {
        path: PathBuf::from(name),
        source: e,
    })?;
    Ok(if out.len() as u64 >= size {
        Packed {
            method: METHOD_STORED,
            crc,
            compressed: size,
            size,
            body: Body::Memory(data.to_vec()),
        }
    } else {
        out.shrink_to_fit();
        Packed {
            method: METHOD_DEFLATED,
            crc,
            compressed: out.len() as u64,
            size,
            body: Body::Memory(out),
        }
    })
}

/// Deflates a large file into a spool file (or copies it there, stored, if deflate does not
/// shrink it), reading it in [`IO_BUF`] chunks.
fn pack_spooled(
    path: &Path,
    size: u64,
    z: &mut Compress,
    scratch: &mut Scratch,
    spool_dir: &Path,
) -> Result<Packed, PackageError> {
    let spool_err = |source| PackageError::Write {
        path: spool_dir.to_path_buf(),
        source,
    };
    let mut spool = tempfile::tempfile_in(spool_dir).map_err(spool_err)?;
    scratch.input.resize(IO_BUF, 0);
    scratch.output.clear();
    z.reset();
    let output = &mut scratch.output;
    let (total, crc) = stream_file(path, &mut scratch.input, |chunk| {
        deflate(z, chunk, output, FlushCompress::None).map_err(read_error(path))?;
        if output.len() >= IO_BUF {
            spool.write_all(output).map_err(spool_err)?;
            output.clear();
        }
        Ok(())
    })?;
    deflate(z, &[], &mut scratch.output, FlushCompress::Finish).map_err(read_error(path))?;
    spool.write_all(&scratch.output).map_err(spool_err)?;
    scratch.output.clear();
    if total != size {
        return Err(PackageError::FileChanged {
            path: path.to_path_buf(),
        });
    }
    let mut method = METHOD_DEFLATED;
    let mut compressed = z.total_out();
    if compressed >= size {
        // Incompressible: store it instead, re-reading the file and making sure it is unchanged.
        method = METHOD_STORED;
        compressed = size;
        spool.set_len(0).map_err(spool_err)?;
        spool.seek(SeekFrom::Start(0)).map_err(spool_err)?;
        let (total, again) = stream_file(path, &mut scratch.input, |chunk| {
            spool.write_all(chunk).map_err(spool_err)
        })?;
        if total != size || again != crc {
            return Err(PackageError::FileChanged {
                path: path.to_path_buf(),
            });
        }
    }
    spool.seek(SeekFrom::Start(0)).map_err(spool_err)?;
    Ok(Packed {
        method,
        crc,
        compressed,
        size,
        body: Body::Spool(spool),
    })
}

/// Reads the file at `path` through `buf` into `sink`, chunk by chunk, and returns how many
/// bytes it held and their CRC-32: the one read loop behind the deflated and the stored body.
fn stream_file(
    path: &Path,
    buf: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), PackageError>,
) -> Result<(u64, u32), PackageError> {
    let mut file = fs_err::File::open(path).map_err(read_error(path))?;
    let mut crc = crc32fast::Hasher::new();
    let mut total = 0u64;
    loop {
        let n = read_some(&mut file, buf).map_err(read_error(path))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        crc.update(&buf[..n]);
        sink(&buf[..n])?;
    }
    Ok((total, crc.finalize()))
}

/// Reads until `buf` is full or the file ends (fewer syscalls and deflate calls than `read`).
fn read_some(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Runs `input` through the raw deflate stream `z`, appending to `out`. With
/// `FlushCompress::Finish` it ends the stream.
fn deflate(
    z: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> io::Result<()> {
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(16 << 10));
        }
        let before = z.total_in();
        let status = z
            .compress_vec(input, out, flush)
            .map_err(io::Error::other)?;
        let consumed = (z.total_in() - before) as usize;
        input = &input[consumed..];
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError => {
                if flush != FlushCompress::Finish && input.is_empty() && out.len() < out.capacity()
                {
                    return Ok(());
                }
            }
        }
    }
}

fn write_entry<'a, W: Write>(
    out: &mut HashingWriter<W>,
    entry: &'a Entry,
    packed: Packed,
    dest: &Path,
    copy_buf: &mut [u8],
) -> Result<CentralRecord<'a>, PackageError> {
    let too_large = || PackageError::ArchiveTooLarge {
        name: entry.name.clone(),
    };
    let offset = u32::try_from(out.count)
        .ok()
        .filter(|o| *o < u32::MAX)
        .ok_or_else(too_large)?;
    let compressed = u32::try_from(packed.compressed).map_err(|_| too_large())?;
    let size = u32::try_from(packed.size).map_err(|_| too_large())?;
    let name_len = u16::try_from(entry.name.len()).map_err(|_| too_large())?;
    let flags = if entry.name.is_ascii() { 0 } else { FLAG_UTF8 };
    let record = CentralRecord {
        name: &entry.name,
        flags,
        method: packed.method,
        time: entry.time.time,
        date: entry.time.date,
        crc: packed.crc,
        compressed,
        size,
        offset,
        attributes: if entry.is_dir() { ATTR_DIR } else { ATTR_FILE },
    };
    let mut header = Vec::with_capacity(30 + entry.name.len());
    put32(&mut header, LOCAL_HEADER_SIG);
    put16(&mut header, VERSION_NEEDED);
    put16(&mut header, flags);
    put16(&mut header, record.method);
    put16(&mut header, record.time);
    put16(&mut header, record.date);
    put32(&mut header, record.crc);
    put32(&mut header, compressed);
    put32(&mut header, size);
    put16(&mut header, name_len);
    put16(&mut header, 0); // no extra field
    header.extend_from_slice(entry.name.as_bytes());
    let write_err = |source| PackageError::Write {
        path: dest.to_path_buf(),
        source,
    };
    out.write_all(&header).map_err(write_err)?;
    match packed.body {
        Body::Empty => {}
        Body::Memory(bytes) => out.write_all(&bytes).map_err(write_err)?,
        Body::Spool(mut spool) => {
            let mut copied = 0u64;
            loop {
                let n = read_some(&mut spool, copy_buf).map_err(|source| PackageError::Read {
                    path: PathBuf::from(&entry.name),
                    source,
                })?;
                if n == 0 {
                    break;
                }
                copied += n as u64;
                out.write_all(&copy_buf[..n]).map_err(write_err)?;
            }
            if copied != packed.compressed {
                return Err(PackageError::Write {
                    path: dest.to_path_buf(),
                    source: io::Error::other("spool file was truncated"),
                });
            }
        }
    }
    Ok(record)
}

fn write_central_directory<W: Write>(
    out: &mut HashingWriter<W>,
    central: &[CentralRecord<'_>],
    dest: &Path,
) -> Result<(), PackageError> {
    let too_large = || PackageError::ArchiveTooLarge {
        name: "the central directory".to_string(),
    };
    let start = u32::try_from(out.count)
        .ok()
        .filter(|o| *o < u32::MAX)
        .ok_or_else(too_large)?;
    let mut buf = Vec::with_capacity(64 << 10);
    let write_err = |source| PackageError::Write {
        path: dest.to_path_buf(),
        source,
    };
    for r in central {
        put32(&mut buf, CENTRAL_HEADER_SIG);
        put16(&mut buf, VERSION_MADE_BY);
        put16(&mut buf, VERSION_NEEDED);
        put16(&mut buf, r.flags);
        put16(&mut buf, r.method);
        put16(&mut buf, r.time);
        put16(&mut buf, r.date);
        put32(&mut buf, r.crc);
        put32(&mut buf, r.compressed);
        put32(&mut buf, r.size);
        put16(&mut buf, r.name.len() as u16);
        put16(&mut buf, 0); // extra field length
        put16(&mut buf, 0); // comment length
        put16(&mut buf, 0); // disk number start
        put16(&mut buf, 0); // internal attributes
        put32(&mut buf, r.attributes);
        put32(&mut buf, r.offset);
        buf.extend_from_slice(r.name.as_bytes());
        if buf.len() >= 60 << 10 {
            out.write_all(&buf).map_err(write_err)?;
            buf.clear();
        }
    }
    out.write_all(&buf).map_err(write_err)?;
    let end = out.count;
    let cd_size = u32::try_from(end - u64::from(start)).map_err(|_| too_large())?;
    if end > u64::from(u32::MAX) {
        return Err(too_large());
    }
    let count = u16::try_from(central.len()).map_err(|_| PackageError::TooManyEntries {
        count: central.len(),
    })?;
    let mut eocd = Vec::with_capacity(22);
    put32(&mut eocd, END_OF_CENTRAL_DIR_SIG);
    put16(&mut eocd, 0); // this disk
    put16(&mut eocd, 0); // disk with the central directory
    put16(&mut eocd, count);
    put16(&mut eocd, count);
    put32(&mut eocd, cd_size);
    put32(&mut eocd, start);
    put16(&mut eocd, 0); // comment length
    out.write_all(&eocd).map_err(write_err)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Counts and hashes every byte on its way to the output.
struct HashingWriter<W> {
    inner: W,
    sha1: Sha1,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            sha1: Sha1::new(),
            count: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha1.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::msdeploy::timestamp::TimePolicy;
    use crate::package::msdeploy::writer::{Gate, PackageWriter};
    use crate::package::msdeploy::zip_path::ZipPath;
    use std::io::Cursor;

    fn p(s: &str) -> ZipPath {
        ZipPath::new(s).expect("valid")
    }

    fn zip_bytes(gate: Gate, threads: usize) -> Vec<u8> {
        let entries = gate.into_sorted();
        let mut out = Vec::new();
        let options = ZipOptions {
            threads,
            ..ZipOptions::default()
        };
        let dir = std::env::temp_dir();
        write_zip(&entries, &mut out, &dir, Path::new("test.zip"), &options).expect("zip");
        out
    }

    fn sample_gate(dir: &Path) -> Gate {
        let mut g = Gate::new(TimePolicy::new(1_700_000_000, Some(1_650_000_000)));
        g.add_bytes(&p("Manifest.xml"), b"<m/>".to_vec())
            .expect("add");
        g.add_bytes(&p("App/text.txt"), "hello ".repeat(1000).into_bytes())
            .expect("add");
        g.add_bytes(&p("App/ünï.txt"), b"x".to_vec()).expect("add");
        g.add_bytes(&p("App/empty.txt"), vec![]).expect("add");
        g.add_dir(&p("App/App_Data"), None).expect("add");
        // Incompressible bytes, small and large (spooled), plus a large compressible file.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..3_000_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        g.add_bytes(&p("App/noise-small.bin"), noise[..5000].to_vec())
            .expect("add");
        fs_err::write(dir.join("noise.bin"), &noise).expect("write");
        g.add_file(&p("App/noise.bin"), &dir.join("noise.bin"))
            .expect("add");
        fs_err::write(dir.join("big.txt"), "line of text\n".repeat(300_000)).expect("write");
        g.add_file(&p("App/big.txt"), &dir.join("big.txt"))
            .expect("add");
        g
    }

    #[test]
    fn output_is_identical_for_any_thread_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = zip_bytes(sample_gate(dir.path()), 1);
        let four = zip_bytes(sample_gate(dir.path()), 4);
        assert_eq!(one, four);
    }

    #[test]
    fn zip_crate_reads_back_every_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = zip_bytes(sample_gate(dir.path()), 2);
        let mut archive = ::zip::ZipArchive::new(Cursor::new(bytes)).expect("valid zip");
        let names: Vec<String> = archive.file_names().map(String::from).collect();
        assert_eq!(names[0], "Manifest.xml");
        assert!(names.contains(&"App/App_Data/".to_string()));
        let mut text = String::new();
        archive
            .by_name("App/text.txt")
            .expect("entry")
            .read_to_string(&mut text)
            .expect("inflate");
        assert_eq!(text, "hello ".repeat(1000));
        let mut noise = Vec::new();
        archive
            .by_name("App/noise.bin")
            .expect("entry")
            .read_to_end(&mut noise)
            .expect("read");
        assert_eq!(
            noise,
            fs_err::read(dir.path().join("noise.bin")).expect("read")
        );
        let big = archive.by_name("App/big.txt").expect("entry");
        assert_eq!(big.compression(), ::zip::CompressionMethod::Deflated);
        assert_eq!(big.size(), 13 * 300_000);
    }

    #[test]
    fn metadata_is_dos_host_with_fixed_attributes_and_no_extras() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = zip_bytes(sample_gate(dir.path()), 2);
        let mut archive = ::zip::ZipArchive::new(Cursor::new(bytes)).expect("valid zip");
        for i in 0..archive.len() {
            let f = archive.by_index(i).expect("entry");
            assert!(f.extra_data().is_none_or(|e| e.is_empty()), "{}", f.name());
            let method = f.compression();
            if f.is_dir() {
                assert_eq!(method, ::zip::CompressionMethod::Stored);
            }
            if f.name().contains("noise") || f.size() == 0 {
                assert_eq!(method, ::zip::CompressionMethod::Stored, "{}", f.name());
            }
        }
    }

    #[test]
    fn central_directory_fields_are_as_specified() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = zip_bytes(sample_gate(dir.path()), 2);
        let eocd = bytes.len() - 22;
        assert_eq!(bytes[eocd..eocd + 4], END_OF_CENTRAL_DIR_SIG.to_le_bytes());
        let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let le32 = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let count = le16(eocd + 10) as usize;
        let mut at = le32(eocd + 16) as usize;
        for _ in 0..count {
            assert_eq!(le32(at), CENTRAL_HEADER_SIG);
            assert_eq!(le16(at + 4), 20, "made by MS-DOS, 2.0");
            assert_eq!(le16(at + 6), 20, "needs 2.0");
            let flags = le16(at + 8);
            assert_eq!(flags & !FLAG_UTF8, 0, "only bit 11 may be set");
            let name_len = le16(at + 28) as usize;
            let name = std::str::from_utf8(&bytes[at + 46..at + 46 + name_len]).expect("utf8");
            assert_eq!(flags & FLAG_UTF8 != 0, !name.is_ascii(), "{name}");
            assert_eq!(le16(at + 30), 0, "no extra field");
            assert_eq!(le16(at + 32), 0, "no comment");
            let attrs = le32(at + 38);
            assert_eq!(attrs, if name.ends_with('/') { 0x10 } else { 0x20 });
            // Times are the epoch: 2022-04-15T05:20:00Z.
            assert_eq!(le16(at + 14), (42 << 9) | (4 << 5) | 15, "{name}");
            at += 46 + name_len;
        }
    }

    #[test]
    fn sha1_and_size_cover_the_bytes_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.zip");
        let summary = sample_gate(dir.path())
            .finish(ZipBackend::new(&out, ZipOptions::default()))
            .expect("write");
        let bytes = fs_err::read(&out).expect("read");
        assert_eq!(summary.size, bytes.len() as u64);
        assert_eq!(
            summary.sha1_hex(),
            crate::package::hex(&Sha1::digest(&bytes))
        );
        assert_eq!(summary.sha1_hex().len(), 40);
        let leftovers: Vec<_> = fs_err::read_dir(dir.path())
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "temporary file left behind");
    }

    #[test]
    fn unreadable_file_fails_naming_it_and_leaves_no_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("gone.txt");
        fs_err::write(&file, "x").expect("write");
        let mut g = Gate::new(TimePolicy::new(1_700_000_000, None));
        g.add_file(&p("App/gone.txt"), &file).expect("add");
        fs_err::remove_file(&file).expect("rm");
        let out = dir.path().join("out.zip");
        let err = g
            .finish(ZipBackend::new(&out, ZipOptions::default()))
            .expect_err("missing file");
        assert!(err.to_string().contains("gone.txt"), "{err}");
        assert!(!out.exists());
    }

    #[test]
    fn entry_at_4_gib_is_an_error_not_zip64() {
        let entry = Entry {
            path: p("App/x"),
            name: "App/x".into(),
            time: crate::package::msdeploy::timestamp::DosDateTime::from_unix(1_700_000_000),
            source: Source::Generated(b"x".to_vec()),
        };
        let packed = || Packed {
            method: METHOD_STORED,
            crc: 0,
            compressed: 1,
            size: 1,
            body: Body::Memory(b"x".to_vec()),
        };
        let mut out = HashingWriter::new(io::sink());
        out.count = u64::from(u32::MAX) - 100;
        let record = write_entry(&mut out, &entry, packed(), Path::new("o.zip"), &mut [0; 16])
            .expect("below 4 GiB the entry fits");
        let err = write_entry(&mut out, &entry, packed(), Path::new("o.zip"), &mut [0; 16]);
        assert!(err.is_ok(), "offset still below u32::MAX");
        out.count = u64::from(u32::MAX);
        let err = write_entry(&mut out, &entry, packed(), Path::new("o.zip"), &mut [0; 16])
            .expect_err("at 4 GiB");
        assert!(matches!(err, PackageError::ArchiveTooLarge { .. }), "{err}");
        out.count = u64::from(u32::MAX) - 10;
        let err = write_central_directory(&mut out, &[record], Path::new("o.zip"))
            .expect_err("directory crosses 4 GiB");
        assert!(matches!(err, PackageError::ArchiveTooLarge { .. }), "{err}");
    }

    #[test]
    fn file_changing_size_after_the_walk_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("grows.txt");
        fs_err::write(&file, "x").expect("write");
        let mut g = Gate::new(TimePolicy::new(1_700_000_000, None));
        g.add_file(&p("App/grows.txt"), &file).expect("add");
        fs_err::write(&file, "xx").expect("write");
        let err = g
            .finish(ZipBackend::new(
                dir.path().join("o.zip"),
                ZipOptions::default(),
            ))
            .expect_err("changed");
        assert!(matches!(err, PackageError::FileChanged { .. }), "{err}");
    }
}
