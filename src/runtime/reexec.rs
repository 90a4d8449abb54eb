//! A reload outside IIS: the process replaces its own image with a fresh start of this binary
//! (`execve`, same pid, same command line, same working directory), carrying the listening
//! socket across ([`Handover`]). The socket is never closed and its unix socket file never
//! removed, so a web server only sees connections wait in the listen queue while the new
//! image imports the app: none is refused, and a service manager or the `--processes`
//! supervisor sees no exit. Python was finalised before (its `atexit` handlers ran); the new
//! image starts a new interpreter, which is the point: no module survives.
//!
//! Unix only: Windows has no `exec`, and IIS (which restarts processes itself) is handled by
//! exiting after the request.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::runtime::transport::Handover;

/// Set in the re-executed image's environment: `<pid>:<nanoseconds since the epoch>`, the
/// process and the instant the reload was decided.
const RELOADED_VAR: &str = "IISWSGI_RELOADED";

/// When this process image was started by a reload ([`reexec`]) rather than by its parent:
/// the instant the reload was decided. A reload into an app that no longer imports must not
/// end the service (it answers 503 and the next change reloads again), and a file changed
/// since that instant reloads again at once.
pub fn reloaded() -> Option<SystemTime> {
    let value = std::env::var(RELOADED_VAR).ok()?;
    let (pid, nanos) = value.split_once(':')?;
    if pid != std::process::id().to_string() {
        return None;
    }
    let nanos: u64 = nanos.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Why the process could not re-execute itself.
#[derive(Debug, thiserror::Error)]
#[error("cannot restart in place ({})", exe.display())]
pub struct ReexecError {
    /// The binary it tried to execute.
    pub exe: PathBuf,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// Executes this binary again in this process with `argv` (program name first) from
/// `working_dir`, the listening socket passed on by `handover`; `decided` is when the reload
/// was asked for ([`reloaded`]). Returns only on failure (the socket file is then removed, as
/// at any exit).
pub fn reexec(
    argv: &[OsString],
    working_dir: &Path,
    handover: Handover,
    decided: SystemTime,
) -> ReexecError {
    let exe = this_binary();
    let mut cmd = Command::new(&exe);
    let nanos = decided
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    cmd.args(argv.iter().skip(1))
        .current_dir(working_dir)
        .env(RELOADED_VAR, format!("{}:{nanos}", std::process::id()));
    if let Some(name) = argv.first() {
        cmd.arg0(name);
    }
    let socket_file = handover.socket_file().map(Path::to_path_buf);
    crate::runtime::logging::flush();
    let source = match handover.pass_to(&mut cmd) {
        Ok(()) => cmd.exec(),
        Err(e) => e,
    };
    // Still here: this image exits, and with it goes the socket file, as at any exit.
    if let Some(path) = socket_file {
        let _ = std::fs::remove_file(path);
    }
    ReexecError { exe, source }
}

/// This binary's path. When the file was replaced while running (an upgrade with pip), Linux
/// names the old one `… (deleted)`: the new file at the same path is what runs next.
fn this_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(path) => PathBuf::from(path),
        None => exe,
    }
}
