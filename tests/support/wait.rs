//! Waiting for something to happen, with a deadline, instead of sleeping and hoping.
//!
//! A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
//! else (a slow one). Every test that waits for a server to listen, a log line, a peer to read
//! what was sent or a process to exit polls the real condition through [`poll`] (or
//! [`until`], which fails the test when the deadline passes). The pause between checks starts
//! at 1 ms and doubles up to 20 ms, so a condition that is already true costs nothing and a
//! slow one costs little CPU.
//!
//! The conditions tests need most are here too: [`log_contains`], [`log_count`],
//! [`peer_has_read`]. `bench/wsgi_peers.rs` and the Windows harness (`tests/windows-harness`)
//! include this file by path; the socket checks are Unix-only.

#[cfg(unix)]
use std::os::fd::AsRawFd;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

/// The longest pause between two checks.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Calls `check` until it returns `Some` and returns that value, or `None` once `limit` has
/// passed (after one last check).
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// [`poll`], failing the test with "`what` not within `limit`" when the deadline passes.
pub fn until<T>(what: &str, limit: Duration, check: impl FnMut() -> Option<T>) -> T {
    poll(limit, check).unwrap_or_else(|| panic!("{what}: not within {limit:?}"))
}

/// [`until`] for a yes/no condition.
pub fn until_true(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    until(what, limit, || check().then_some(()));
}

/// Waits until the file at `log` contains `needle`; returns the whole text. Fails the test,
/// showing the text, after `limit`.
pub fn log_contains(log: &Path, needle: &str, limit: Duration) -> String {
    log_count(log, needle, 1, limit)
}

/// Waits until the file at `log` contains `needle` at least `n` times; returns the whole
/// text. Fails the test, showing the text, after `limit`.
pub fn log_count(log: &Path, needle: &str, n: usize, limit: Duration) -> String {
    let read = || std::fs::read_to_string(log).unwrap_or_default();
    poll(limit, || {
        let text = read();
        (text.matches(needle).count() >= n).then_some(text)
    })
    .unwrap_or_else(|| {
        panic!(
            "`{needle}` not logged {n} time(s) within {limit:?} in {}:\n{}",
            log.display(),
            read()
        )
    })
}

/// Whether the other end of the unix stream socket `stream` has read every byte written to
/// it (or closed without reading): Linux's `SIOCOUTQ` counts, for a unix socket, the bytes
/// sent and not yet consumed by the peer.
#[cfg(unix)]
pub fn peer_read_all(stream: &impl AsRawFd) -> bool {
    let mut unread: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (= TIOCOUTQ) on a socket we own writes one int through the pointer.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut unread) };
    assert_eq!(rc, 0, "SIOCOUTQ: {}", std::io::Error::last_os_error());
    unread == 0
}

/// Waits until the peer of the unix stream socket `stream` has read everything written to it:
/// the server has taken the request bytes and is acting on them.
#[cfg(unix)]
pub fn peer_has_read(stream: &impl AsRawFd, limit: Duration) {
    until_true("the peer reads what was sent", limit, || {
        peer_read_all(stream)
    });
}
