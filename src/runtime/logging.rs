//! The `iiswsgi run` log: a file whose location cannot fail, shared by several processes.
//!
//! Under IIS, stdout and stderr are invalid handles and anything on FCGI_STDERR becomes a 500,
//! so the log file is the only place an admin can learn why "the FastCGI process exited"
//! (`iis-runtime.md` §12 items 25–27). This module is a [`log`] backend: the server, the IIS
//! helpers and (later) the WSGI bridge's `sys.stdout`, `sys.stderr` and `wsgi.errors` all write
//! through the `log` macros (or [`write_line`]) without knowing where the lines go.
//!
//! - **Where:** the first of [`LogConfig::candidates`] that opens for append: the configured
//!   path, `<app root>/logs/iiswsgi.log`, `<temp dir>/iiswsgi.log`. If none opens, records are
//!   dropped; start-up never fails because of the log.
//! - **Line format:** `<RFC 3339 UTC timestamp> <pid> <APP_POOL_ID or -> <LEVEL> <request id or
//!   -> <message>`; the request id is set by the server for the duration of each request
//!   ([`RequestScope`]).
//! - **Sharing:** the file is opened in append mode and every record is one `write` call, so
//!   lines from several processes (`maxInstances`) never interleave.
//! - **Rotation by size**, tolerant of concurrent writers: a writer that sees the file past the
//!   limit takes a lock file (`<log>.rotate`, created exclusively), re-checks the size *of the
//!   path*, shifts `<log>.N` → `<log>.N+1` and renames the log to `<log>.1`. Every writer
//!   notices its handle now points at a rotated file (its size exceeds the path's) and reopens
//!   the path. No OS lock API is needed, so it works the same on Windows (std opens files with
//!   `FILE_SHARE_DELETE`, which lets a rename succeed while others hold the file open).
//! - **Never panics, never blocks a request on an error:** write errors drop the record; a
//!   poisoned lock is recovered.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The default size at which the log rotates: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// How many rotated files are kept by default (`iiswsgi.log.1` … `.5`).
pub const DEFAULT_KEEP: u32 = 5;
/// A rotation lock file older than this is left over from a killed process and is removed.
const STALE_LOCK: Duration = Duration::from_secs(30);

/// Where and how to log.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// An explicit log file (`--log FILE`).
    pub path: Option<PathBuf>,
    /// The application root; its `logs/iiswsgi.log` is the second choice.
    pub app_root: Option<PathBuf>,
    /// Records below this level are discarded.
    pub level: LevelFilter,
    /// Rotate when the file reaches this many bytes; 0 disables rotation.
    pub max_bytes: u64,
    /// Rotated files to keep.
    pub keep: u32,
    /// Send records to stderr instead of a file (refused in IIS mode by the caller).
    pub stderr: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            path: None,
            app_root: None,
            level: LevelFilter::Info,
            max_bytes: DEFAULT_MAX_BYTES,
            keep: DEFAULT_KEEP,
            stderr: false,
        }
    }
}

impl LogConfig {
    /// The files to try, in order (`iis-runtime.md` §12 item 25).
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(p) = &self.path {
            out.push(p.clone());
        }
        if let Some(root) = &self.app_root {
            out.push(root.join("logs").join("iiswsgi.log"));
        }
        out.push(std::env::temp_dir().join("iiswsgi.log"));
        out
    }
}

/// Where records end up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A log file.
    File(PathBuf),
    /// Standard error.
    Stderr,
    /// Nowhere: no candidate could be opened.
    Discarded,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::File(p) => write!(f, "{}", p.display()),
            Destination::Stderr => f.write_str("stderr"),
            Destination::Discarded => f.write_str("(nowhere: no log file could be opened)"),
        }
    }
}

/// An open log file that rotates itself. Used by the global logger; tests and tools may use
/// it directly (each instance behaves like one process's handle).
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    max_bytes: u64,
    keep: u32,
}

impl LogFile {
    /// Opens `path` for append, creating it (and, if `create_dirs`, its parent folders).
    pub fn open(path: &Path, max_bytes: u64, keep: u32, create_dirs: bool) -> io::Result<Self> {
        if create_dirs && let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = open_append(path)?;
        Ok(LogFile {
            path: path.to_path_buf(),
            file,
            max_bytes,
            keep,
        })
    }

    /// The path this log writes to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record with a single `write` call, then rotates if the file is full.
    /// Errors are returned for tests; the logger ignores them.
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        // A regular file in append mode takes the whole buffer in one call unless the disk is
        // full; a short write is treated as an error rather than retried, so that a record is
        // never split around another process's record.
        // Rotate before writing, so the newest record is always in the file at `path`.
        if self.max_bytes > 0 {
            self.rotate_if_full();
        }
        let n = self.file.write(record)?;
        if n != record.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to the log",
            ));
        }
        Ok(())
    }

    fn rotate_if_full(&mut self) {
        let Ok(ours) = self.file.metadata() else {
            return;
        };
        if ours.len() < self.max_bytes {
            return;
        }
        // Our handle may already point at a rotated file: another writer renamed it away.
        match fs::metadata(&self.path) {
            Ok(at_path) if at_path.len() >= ours.len() => self.rotate(),
            _ => self.reopen(),
        }
    }

    fn rotate(&mut self) {
        let lock = sibling(&self.path, "rotate");
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => {
                // Re-check under the lock: another writer may have rotated just before us.
                if fs::metadata(&self.path).is_ok_and(|m| m.len() >= self.max_bytes) {
                    self.shift();
                }
                let _ = fs::remove_file(&lock);
                self.reopen();
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Someone else is rotating; our next write notices and reopens. Clear a lock
                // left by a process that was killed mid-rotation.
                let stale = fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_LOCK);
                if stale {
                    let _ = fs::remove_file(&lock);
                }
            }
            Err(_) => {}
        }
    }

    fn shift(&self) {
        if self.keep == 0 {
            let _ = fs::remove_file(&self.path);
            return;
        }
        // Rotated files are contiguous (.1, .2, …): find the last, drop it if it is the
        // `keep`-th, shift the others up by one.
        let mut top = 0;
        while top < self.keep && numbered(&self.path, top + 1).exists() {
            top += 1;
        }
        if top == self.keep {
            let _ = fs::remove_file(numbered(&self.path, top));
            top -= 1;
        }
        for n in (1..=top).rev() {
            let _ = fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1));
        }
        let _ = fs::rename(&self.path, numbered(&self.path, 1));
    }

    fn reopen(&mut self) {
        if let Ok(f) = open_append(&self.path) {
            self.file = f;
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `iiswsgi.log` → `iiswsgi.log.<n>`.
pub fn numbered(path: &Path, n: u32) -> PathBuf {
    sibling(path, &n.to_string())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

enum Sink {
    File(LogFile),
    Stderr,
    Discard,
}

struct Logger {
    sink: Mutex<Sink>,
    pid: u32,
    pool: String,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        self.emit(record.level(), &record.args().to_string());
    }

    fn flush(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::File(f) => {
                let _ = f.file.flush();
            }
            Sink::Stderr => {
                let _ = io::stderr().flush();
            }
            Sink::Discard => {}
        }
    }
}

impl Logger {
    fn emit(&self, level: Level, message: &str) {
        let line = format_line(
            SystemTime::now(),
            self.pid,
            &self.pool,
            level,
            current_request(),
            message,
        );
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *sink {
            Sink::File(f) => {
                let _ = f.append(line.as_bytes());
            }
            Sink::Stderr => {
                let _ = io::stderr().write_all(line.as_bytes());
            }
            Sink::Discard => {}
        }
    }
}

/// Formats one record: a single line, or several for a multi-line message (a traceback),
/// always ending in `\n`.
pub fn format_line(
    now: SystemTime,
    pid: u32,
    pool: &str,
    level: Level,
    request: Option<u64>,
    message: &str,
) -> String {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(64 + message.len());
    let _ = write!(
        line,
        "{} {pid} {} {:<5} ",
        humantime::format_rfc3339_millis(now),
        if pool.is_empty() { "-" } else { pool },
        level
    );
    match request {
        Some(id) => {
            let _ = write!(line, "req={id} ");
        }
        None => line.push_str("- "),
    }
    line.push_str(message.trim_end_matches(['\r', '\n']));
    line.push('\n');
    line
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

/// This process's id, read once: `std::process::id` is a system call each time, and every
/// request formats its error id with it. (iiswsgi never forks after start-up.)
pub fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Opens the log and installs it as the process's [`log`] backend. Never fails: if nothing
/// opens, records are discarded and [`Destination::Discarded`] is returned. Calling it twice
/// keeps the first logger.
pub fn init(config: &LogConfig) -> Destination {
    let (sink, destination) = open_sink(config);
    let logger = Logger {
        sink: Mutex::new(sink),
        pid: pid(),
        pool: crate::runtime::iis_env::get().pool().to_string(),
        level: config.level,
    };
    if LOGGER.set(logger).is_err() {
        return destination;
    }
    if let Some(logger) = LOGGER.get()
        && log::set_logger(logger).is_ok()
    {
        log::set_max_level(config.level);
    }
    destination
}

fn open_sink(config: &LogConfig) -> (Sink, Destination) {
    if config.stderr {
        return (Sink::Stderr, Destination::Stderr);
    }
    let candidates = config.candidates();
    for (i, path) in candidates.iter().enumerate() {
        // Only the default `<app root>/logs` folder is ours to create.
        let create_dirs = config.app_root.is_some() && i == usize::from(config.path.is_some());
        if let Ok(f) = LogFile::open(path, config.max_bytes, config.keep, create_dirs) {
            return (Sink::File(f), Destination::File(path.clone()));
        }
    }
    (Sink::Discard, Destination::Discarded)
}

/// Where the installed logger writes now: the file (its path, which rotation keeps), stderr,
/// or nowhere. `None` before [`init`]. The WSGI bridge points Python's `faulthandler` there.
pub fn destination() -> Option<Destination> {
    let logger = LOGGER.get()?;
    let sink = logger.sink.lock().unwrap_or_else(|p| p.into_inner());
    Some(match &*sink {
        Sink::File(f) => Destination::File(f.path.clone()),
        Sink::Stderr => Destination::Stderr,
        Sink::Discard => Destination::Discarded,
    })
}

/// Writes one record at `level` whatever the configured filter says is irrelevant here:
/// it is for text the app printed (`sys.stdout`, `sys.stderr`, `wsgi.errors`), which is
/// logged as INFO or WARNING by the WSGI bridge and must not be lost to filtering.
pub fn write_line(level: Level, message: &str) {
    if let Some(logger) = LOGGER.get() {
        logger.emit(level, message);
    }
}

/// Flushes the log (at shutdown).
pub fn flush() {
    log::logger().flush();
}

thread_local! {
    static REQUEST: Cell<Option<u64>> = const { Cell::new(None) };
}

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

fn current_request() -> Option<u64> {
    REQUEST.with(Cell::get)
}

/// Tags every record this thread logs with a per-process request number until dropped.
#[derive(Debug)]
pub struct RequestScope {
    id: u64,
    previous: Option<u64>,
}

impl RequestScope {
    /// Starts the scope of the next request.
    pub fn begin() -> Self {
        let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        let previous = REQUEST.with(|r| r.replace(Some(id)));
        RequestScope { id, previous }
    }

    /// The request number shown in the log (`req=N`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// A short id to show a user in an error page and to log next to the details:
    /// `<pid in hex>-<request number>`, unique across the processes sharing one log.
    pub fn error_id(&self) -> ErrorId {
        ErrorId {
            pid: pid(),
            request: self.id,
        }
    }
}

/// A request's error id, `<pid in hex>-<request number>`, formatted only when shown (most
/// requests never fail, and a `String` per request was measurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorId {
    pid: u32,
    request: u64,
}

impl ErrorId {
    /// The error id of request number `request` of this process.
    pub fn of_request(request: u64) -> Self {
        ErrorId {
            pid: pid(),
            request,
        }
    }
}

impl std::fmt::Display for ErrorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}-{}", self.pid, self.request)
    }
}

impl Drop for RequestScope {
    fn drop(&mut self) {
        REQUEST.with(|r| r.set(self.previous));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn line_starts_with_timestamp_pid_pool_level_and_request() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let line = format_line(t, 42, "DefaultAppPool", Level::Warn, Some(7), "hello\n");
        assert_eq!(
            line,
            "2023-11-14T22:13:20.123Z 42 DefaultAppPool WARN  req=7 hello\n"
        );
        let line = format_line(t, 42, "", Level::Info, None, "x");
        assert_eq!(line, "2023-11-14T22:13:20.123Z 42 - INFO  - x\n");
    }

    #[test]
    fn request_scope_tags_this_thread_and_restores_on_drop() {
        assert_eq!(current_request(), None);
        let outer = RequestScope::begin();
        assert_eq!(current_request(), Some(outer.id()));
        {
            let inner = RequestScope::begin();
            assert_eq!(current_request(), Some(inner.id()));
            assert!(
                inner
                    .error_id()
                    .to_string()
                    .ends_with(&format!("-{}", inner.id()))
            );
        }
        assert_eq!(current_request(), Some(outer.id()));
        drop(outer);
        assert_eq!(current_request(), None);
    }

    #[test]
    fn candidates_are_configured_then_app_root_then_temp() {
        let c = LogConfig {
            path: Some("/x/my.log".into()),
            app_root: Some("/srv/app".into()),
            ..Default::default()
        };
        let got = c.candidates();
        assert_eq!(got[0], PathBuf::from("/x/my.log"));
        assert_eq!(got[1], PathBuf::from("/srv/app/logs/iiswsgi.log"));
        assert_eq!(got[2], std::env::temp_dir().join("iiswsgi.log"));
    }

    #[test]
    fn unopenable_configured_path_falls_back_to_app_root_logs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"").expect("write");
        let c = LogConfig {
            // A path under a regular file can never be opened.
            path: Some(blocker.join("sub").join("x.log")),
            app_root: Some(dir.path().join("app")),
            ..Default::default()
        };
        let (_, dest) = open_sink(&c);
        assert_eq!(
            dest,
            Destination::File(dir.path().join("app").join("logs").join("iiswsgi.log"))
        );
    }

    #[test]
    fn rotation_keeps_the_newest_files_and_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("iiswsgi.log");
        let mut log = LogFile::open(&path, 100, 2, false).expect("open");
        for i in 0..40 {
            log.append(format!("line {i:03} ..........\n").as_bytes())
                .expect("append");
        }
        assert!(fs::metadata(&path).expect("log").len() < 100 + 21);
        assert!(numbered(&path, 1).exists());
        assert!(numbered(&path, 2).exists());
        assert!(!numbered(&path, 3).exists());
        let current = fs::read_to_string(&path).expect("read");
        assert!(current.ends_with("line 039 ..........\n"), "{current}");
        let previous = fs::read_to_string(numbered(&path, 1)).expect("read");
        assert!(previous.lines().all(|l| l.starts_with("line 0")));
        assert!(!sibling(&path, "rotate").exists());
    }

    #[test]
    fn concurrent_appenders_lose_and_tear_no_record_across_rotations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("shared.log");
        let writers = 6;
        let per_writer = 400;
        std::thread::scope(|s| {
            for w in 0..writers {
                let path = &path;
                s.spawn(move || {
                    // Each writer has its own handle, as separate processes would.
                    let mut log = LogFile::open(path, 4096, 1000, false).expect("open");
                    for i in 0..per_writer {
                        let rec = format!("writer={w} seq={i:04} {}\n", "x".repeat(40));
                        log.append(rec.as_bytes()).expect("append");
                    }
                });
            }
        });
        let mut seen = std::collections::HashSet::new();
        let mut files = 0;
        for entry in fs::read_dir(dir.path()).expect("dir") {
            let entry = entry.expect("entry");
            let text = fs::read_to_string(entry.path()).expect("read");
            files += 1;
            for line in text.lines() {
                assert!(
                    line.starts_with("writer=") && line.ends_with(&"x".repeat(40)),
                    "torn record {line:?}"
                );
                assert!(seen.insert(line.to_owned()), "duplicate {line:?}");
            }
        }
        assert_eq!(seen.len(), writers * per_writer);
        assert!(files > 5, "expected several rotations, got {files} files");
        assert!(!sibling(&path, "rotate").exists());
    }

    #[test]
    fn stale_rotation_lock_is_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("iiswsgi.log");
        let lock = sibling(&path, "rotate");
        let f = File::create(&lock).expect("lock");
        f.set_modified(SystemTime::now() - Duration::from_secs(120))
            .expect("mtime");
        drop(f);
        let mut log = LogFile::open(&path, 10, 3, false).expect("open");
        log.append(b"0123456789abcdef\n").expect("append"); // fills the file
        log.append(b"0123456789abcdef\n").expect("append"); // sees the stale lock, clears it
        assert!(!lock.exists());
        log.append(b"0123456789abcdef\n").expect("append"); // now rotates
        assert!(numbered(&path, 1).exists());
    }
}
