//! `_FCGI_SHUTDOWN_EVENT_`: the graceful-exit request IIS sends before it kills a process.
//!
//! When `signalBeforeTerminateSeconds` > 0, IIS starts the process with this variable set to
//! the decimal value of an inherited handle to an unsignalled manual-reset event. On a
//! recycle it sets the event, waits up to that many seconds, then calls `TerminateProcess`
//! (`iis-runtime.md` §5, §12 items 20–21). wfastcgi only watched it with App Insights on.
//!
//! [`parse_handle`] is pure and tested everywhere. [`watch`] is Windows-only: it validates
//! the handle with a zero-timeout wait, swaps it for a non-inheritable duplicate (closing the
//! inherited original, so children the app spawns cannot keep it), and waits on it from a dedicated thread that never touches Python; when
//! the event fires it calls the closure the server gave it (stop accepting, finish the
//! current request, exit 0). An invalid handle is logged and ignored.

use std::fmt;

use crate::runtime::iis_env::SHUTDOWN_EVENT_VAR;

/// Why the shutdown event cannot be watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownEventError {
    /// The value is not a decimal handle number.
    NotANumber(String),
    /// The value is 0 or the pseudo-handle -1, neither of which names an event.
    NullHandle,
    /// A zero-timeout wait on the handle failed: it is not a waitable handle here.
    Invalid {
        /// The handle value.
        handle: usize,
        /// The Win32 error code from `GetLastError`.
        code: u32,
    },
    /// The watcher thread could not be started.
    Thread(String),
}

impl fmt::Display for ShutdownEventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownEventError::NotANumber(v) => {
                write!(
                    f,
                    "{SHUTDOWN_EVENT_VAR}={v:?} is not a decimal handle value"
                )
            }
            ShutdownEventError::NullHandle => {
                write!(f, "{SHUTDOWN_EVENT_VAR} names no handle (0 or -1)")
            }
            ShutdownEventError::Invalid { handle, code } => write!(
                f,
                "{SHUTDOWN_EVENT_VAR}={handle} is not a waitable handle in this process \
                 (WaitForSingleObject failed, Win32 error {code})"
            ),
            ShutdownEventError::Thread(e) => write!(f, "cannot start the shutdown watcher: {e}"),
        }
    }
}

impl std::error::Error for ShutdownEventError {}

/// Parses the variable's value: a decimal handle number, surrounding whitespace allowed.
pub fn parse_handle(value: &str) -> Result<usize, ShutdownEventError> {
    let trimmed = value.trim();
    let handle: usize = trimmed
        .parse()
        .map_err(|_| ShutdownEventError::NotANumber(value.to_owned()))?;
    if handle == 0 || handle == usize::MAX {
        return Err(ShutdownEventError::NullHandle);
    }
    Ok(handle)
}

/// What [`watch`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The variable is not set: IIS will not signal (`signalBeforeTerminateSeconds` = 0).
    NotConfigured,
    /// A thread now waits on the event.
    Watching {
        /// The handle value, for the log and the diagnostic page.
        handle: usize,
    },
}

/// Starts watching the event named by `_FCGI_SHUTDOWN_EVENT_`, calling `on_signal` once from
/// the watcher thread when IIS sets it. Returns `NotConfigured` when the variable is absent.
#[cfg(windows)]
pub fn watch(on_signal: impl FnOnce() + Send + 'static) -> Result<Watch, ShutdownEventError> {
    match &crate::runtime::iis_env::get().shutdown_event {
        None => Ok(Watch::NotConfigured),
        Some(value) => win::watch(parse_handle(value)?, on_signal),
    }
}

/// Ends this process at once with `code`, as IIS's `TerminateProcess` would: no DLL
/// detach, no atexit, no waiting for threads (the log is flushed by the caller). Used when
/// the request in flight outlives the grace period after the shutdown event.
#[cfg(windows)]
pub fn terminate_self(code: u32) -> ! {
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, TerminateProcess};
    // SAFETY: terminating the current process through its pseudo-handle; nothing runs after.
    unsafe { TerminateProcess(GetCurrentProcess(), code) };
    std::process::exit(code as i32)
}

#[cfg(windows)]
mod win {
    use super::{ShutdownEventError, Watch};
    use windows_sys::Win32::Foundation::{
        DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, DuplicateHandle, GetLastError, HANDLE,
        HANDLE_FLAG_INHERIT, SetHandleInformation, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, INFINITE, WaitForSingleObject};

    /// A private, non-inheritable duplicate of `h` with the original closed; if duplication
    /// fails, `h` itself with its inherit flag cleared.
    fn own(h: HANDLE) -> HANDLE {
        let mut dup: HANDLE = std::ptr::null_mut();
        // SAFETY: `h` is a valid handle of this process (a wait on it just succeeded);
        // `dup` receives the duplicate.
        let ok = unsafe {
            let me = GetCurrentProcess();
            DuplicateHandle(
                me,
                h,
                me,
                &mut dup,
                0,
                0,
                DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE,
            )
        };
        if ok != 0 {
            return dup;
        }
        // SAFETY: as above; clearing a flag has no memory effects.
        unsafe { SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0) };
        h
    }

    pub(super) fn watch(
        handle: usize,
        on_signal: impl FnOnce() + Send + 'static,
    ) -> Result<Watch, ShutdownEventError> {
        let h = handle as HANDLE;
        // SAFETY: waiting on an arbitrary handle value is memory-safe; a value that is not a
        // waitable handle makes the call fail with ERROR_INVALID_HANDLE, which we report.
        let first = unsafe { WaitForSingleObject(h, 0) };
        if first == WAIT_FAILED {
            // SAFETY: plain FFI call with no arguments.
            let code = unsafe { GetLastError() };
            return Err(ShutdownEventError::Invalid { handle, code });
        }
        // Children spawned by the app must not inherit the event (iis-runtime §12 item 2):
        // duplicate it non-inheritable and close the original in the same call.
        let h = own(h);
        let handle_value = h as usize;
        if first == WAIT_OBJECT_0 {
            // Already set (a recycle raced our start-up): shut down as soon as possible.
            on_signal();
            return Ok(Watch::Watching { handle });
        }
        debug_assert_eq!(first, WAIT_TIMEOUT);
        std::thread::Builder::new()
            .name("iiswsgi-shutdown-event".into())
            .spawn(move || {
                let h = handle_value as HANDLE;
                // SAFETY: the handle stays open for the life of the process (we never close
                // it), so the wait cannot observe a recycled handle value.
                let r = unsafe { WaitForSingleObject(h, INFINITE) };
                if r == WAIT_OBJECT_0 {
                    log::info!("IIS set the shutdown event: finishing the current request");
                    on_signal();
                } else {
                    // SAFETY: plain FFI call with no arguments.
                    let code = unsafe { GetLastError() };
                    log::warn!(
                        "waiting on the shutdown event failed (result {r}, Win32 error {code}); \
                         graceful shutdown now relies on pipe EOF"
                    );
                }
            })
            .map_err(|e| ShutdownEventError::Thread(e.to_string()))?;
        Ok(Watch::Watching { handle })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_handle_accepts_decimal_values() {
        assert_eq!(parse_handle("1234"), Ok(1234));
        assert_eq!(parse_handle(" 88\r\n"), Ok(88));
    }

    #[test]
    fn parse_handle_rejects_hex_names_and_empty_values() {
        for bad in ["", "0x1c", "abc", "-5", "12 34"] {
            assert!(
                matches!(parse_handle(bad), Err(ShutdownEventError::NotANumber(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn parse_handle_rejects_null_and_pseudo_handles() {
        assert_eq!(parse_handle("0"), Err(ShutdownEventError::NullHandle));
        assert_eq!(
            parse_handle(&usize::MAX.to_string()),
            Err(ShutdownEventError::NullHandle)
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let text = ShutdownEventError::Invalid { handle: 7, code: 6 }.to_string();
        assert!(
            text.contains(SHUTDOWN_EVENT_VAR) && text.contains("error 6"),
            "{text}"
        );
    }

    /// The Windows watcher against real kernel events (run under Wine in CI, `.ci/windows`).
    #[cfg(windows)]
    mod windows {
        use std::sync::mpsc;
        use std::time::Duration;

        use windows_sys::Win32::Foundation::{
            CloseHandle, DUPLICATE_SAME_ACCESS, DuplicateHandle, HANDLE,
        };
        use windows_sys::Win32::System::Threading::{CreateEventW, GetCurrentProcess, SetEvent};

        use super::super::win;
        use super::*;

        /// An unnamed manual-reset event, initially `set` or not, as IIS creates it.
        fn event(set: bool) -> usize {
            // SAFETY: plain FFI call; null attributes and name.
            let h = unsafe { CreateEventW(std::ptr::null(), 1, i32::from(set), std::ptr::null()) };
            assert!(!h.is_null(), "CreateEventW failed");
            h as usize
        }

        #[test]
        fn watch_does_not_call_back_while_the_event_is_unset() {
            let ev = event(false);
            let (tx, rx) = mpsc::channel();
            let got = win::watch(ev, move || tx.send(()).expect("send")).expect("watch");
            assert_eq!(got, Watch::Watching { handle: ev });
            assert!(
                rx.recv_timeout(Duration::from_millis(300)).is_err(),
                "called back for an unset event"
            );
        }

        #[test]
        fn watch_calls_back_at_once_when_the_event_is_already_set() {
            let ev = event(true);
            let (tx, rx) = mpsc::channel();
            win::watch(ev, move || tx.send(()).expect("send")).expect("watch");
            rx.recv_timeout(Duration::from_secs(2))
                .expect("no callback for an event set before start-up");
        }

        #[test]
        fn watch_rejects_a_value_that_is_no_handle() {
            let err = win::watch(0x7fff_fff0, || {}).expect_err("not a handle");
            assert!(matches!(err, ShutdownEventError::Invalid { .. }), "{err}");
        }

        #[test]
        fn signalling_the_event_wakes_the_watcher() {
            let ev = event(false);
            // Keep a second handle to the same object, as IIS keeps its own.
            let mut ours: HANDLE = std::ptr::null_mut();
            // SAFETY: duplicating our own valid handle within this process.
            let ok = unsafe {
                let me = GetCurrentProcess();
                DuplicateHandle(me, ev as _, me, &mut ours, 0, 0, DUPLICATE_SAME_ACCESS)
            };
            assert_ne!(ok, 0, "DuplicateHandle failed");
            let (tx, rx) = mpsc::channel();
            win::watch(ev, move || tx.send(()).expect("send")).expect("watch");
            // SAFETY: our own valid event handle.
            assert_ne!(unsafe { SetEvent(ours) }, 0);
            rx.recv_timeout(Duration::from_secs(5))
                .expect("the watcher did not see the event");
            // SAFETY: our handle, closed once.
            unsafe { CloseHandle(ours) };
        }
    }
}
