//! Starting and stopping CPython inside the `iiswsgi` process (wsgi-embedding.md §1.4–1.5, §5).
//!
//! PyO3's `auto-initialize` takes no configuration, so the interpreter is started here through
//! `PyConfig` on the process main thread: the chosen environment's `executable` (which is how a
//! venv is found), no Python signal handlers, no argv parsing, C stdio left alone (fd 0 is the
//! FastCGI transport), `use_environment = 0` so a stray `PYTHONHOME` cannot break activation.
//! After the app is imported the host's signal handlers are put back, and at shutdown
//! `Py_FinalizeEx` runs on the same thread so `atexit` handlers run.
//!
//! Also here: keeping one Python thread state per worker thread for its whole life
//! ([`pin_thread`]), so `threading.local` data (database connections) survives between
//! requests and no thread state is created per request.

use std::cell::RefCell;
use std::ffi::CStr;
#[cfg(unix)]
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use pyo3::ffi;

use super::venv::Environment;

/// Set just before `Py_FinalizeEx`: thread-state destructors must not touch Python after it.
static FINALIZED: AtomicBool = AtomicBool::new(false);

/// Why CPython did not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// This process already runs an interpreter (CPython cannot be re-initialised reliably).
    #[error("Python is already initialised in this process")]
    AlreadyInitialized,
    /// A path contains a NUL byte and cannot be handed to CPython.
    #[error("{what} contains a NUL byte: {value:?}")]
    Nul {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// `Py_InitializeFromConfig` or a `PyConfig` setter failed.
    #[error("Python failed to start: {0}")]
    Status(String),
}

/// The running interpreter; `!Send`, so it stays on the thread that started it.
pub(super) struct Interpreter {
    saved: *mut ffi::PyThreadState,
    thread: ThreadId,
}

fn status_message(status: &ffi::PyStatus) -> String {
    // SAFETY: CPython fills `func`/`err_msg` with static C strings or NULL.
    let text = |p: *const std::ffi::c_char| {
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    match (text(status.func), text(status.err_msg)) {
        (Some(func), Some(msg)) => format!("{func}: {msg}"),
        (None, Some(msg)) => msg,
        _ if status._type == ffi::_PyStatus_TYPE::_PyStatus_TYPE_EXIT => {
            format!("initialisation asked to exit with code {}", status.exitcode)
        }
        _ => "unknown error".to_owned(),
    }
}

fn check(status: ffi::PyStatus) -> Result<(), InitError> {
    // SAFETY: plain inspection of a status value.
    if unsafe { ffi::PyStatus_Exception(status) } != 0 {
        return Err(InitError::Status(status_message(&status)));
    }
    Ok(())
}

#[cfg(unix)]
fn c_path(what: &'static str, path: &Path) -> Result<CString, InitError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| InitError::Nul {
        what,
        value: path.display().to_string(),
    })
}

/// Sets one string field of `cfg` (Unix: bytes decoded with the locale, as CPython's own
/// `main()` does).
///
/// # Safety
/// `cfg` must be an initialised config and `field` one of its string fields.
#[cfg(unix)]
unsafe fn set_path(
    cfg: *mut ffi::PyConfig,
    field: *mut *mut libc::wchar_t,
    what: &'static str,
    path: &Path,
) -> Result<(), InitError> {
    let value = c_path(what, path)?;
    check(unsafe { ffi::PyConfig_SetBytesString(cfg, field, value.as_ptr()) })
}

/// Windows: `wchar_t` is UTF-16, so paths go through `encode_wide` (untested here).
#[cfg(windows)]
unsafe fn set_path(
    cfg: *mut ffi::PyConfig,
    field: *mut *mut libc::wchar_t,
    what: &'static str,
    path: &Path,
) -> Result<(), InitError> {
    use std::os::windows::ffi::OsStrExt;
    let mut wide: Vec<u16> = path.as_os_str().encode_wide().collect();
    if wide.contains(&0) {
        return Err(InitError::Nul {
            what,
            value: path.display().to_string(),
        });
    }
    wide.push(0);
    check(unsafe { ffi::PyConfig_SetString(cfg, field, wide.as_ptr().cast()) })
}

/// Starts CPython for `env`. Call once, on the main thread, before anything attaches.
/// `pythonpath` becomes `PyConfig.pythonpath_env` (the environment is otherwise ignored).
pub(super) fn initialize(
    env: &Environment,
    pythonpath: Option<&Path>,
) -> Result<Interpreter, InitError> {
    // SAFETY: the PyConfig API is called in its documented order on one thread, before any
    // other Python call; the config is cleared on every path.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Err(InitError::AlreadyInitialized);
        }
        let mut cfg = MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(cfg.as_mut_ptr());
        let cfg = cfg.as_mut_ptr();
        let configured = (|| {
            (*cfg).install_signal_handlers = 0;
            (*cfg).parse_argv = 0;
            (*cfg).configure_c_stdio = 0;
            (*cfg).use_environment = 0;
            if let Some(exe) = env.executable() {
                set_path(
                    cfg,
                    &raw mut (*cfg).executable,
                    "the Python executable",
                    exe,
                )?;
            }
            if let Some(home) = env.home() {
                set_path(cfg, &raw mut (*cfg).home, "the Python home", home)?;
            }
            if let Some(pp) = pythonpath {
                set_path(cfg, &raw mut (*cfg).pythonpath_env, "PYTHONPATH", pp)?;
            }
            set_argv(cfg)?;
            check(ffi::Py_InitializeFromConfig(cfg))
        })();
        ffi::PyConfig_Clear(cfg);
        configured?;
        let saved = ffi::PyEval_SaveThread();
        Ok(Interpreter {
            saved,
            thread: std::thread::current().id(),
        })
    }
}

/// `sys.argv = ["iiswsgi"]`.
unsafe fn set_argv(cfg: *mut ffi::PyConfig) -> Result<(), InitError> {
    #[cfg(unix)]
    {
        let mut argv = [c"iiswsgi".as_ptr()];
        check(unsafe { ffi::PyConfig_SetBytesArgv(cfg, 1, argv.as_mut_ptr()) })
    }
    #[cfg(windows)]
    {
        let arg: Vec<u16> = "iiswsgi\0".encode_utf16().collect();
        let mut argv = [arg.as_ptr().cast::<libc::wchar_t>()];
        check(unsafe { ffi::PyConfig_SetArgv(cfg, 1, argv.as_mut_ptr()) })
    }
}

impl Interpreter {
    /// `Py_FinalizeEx` on the thread that started Python: runs `atexit` handlers, flushes
    /// `sys.stdout`/`sys.stderr`, waits for non-daemon threads. Returns its status (0 = clean).
    /// Everything holding Python objects must have been dropped (or leaked) before.
    pub(super) fn finalize(self) -> i32 {
        if std::thread::current().id() != self.thread {
            // Finalising elsewhere would corrupt the main thread state; leave Python running
            // and let process exit clean up.
            return -1;
        }
        FINALIZED.store(true, Ordering::SeqCst);
        // SAFETY: we are on the init thread, which saved its state at init and has not
        // attached since (all attach guards are dropped).
        unsafe {
            ffi::PyEval_RestoreThread(self.saved);
            ffi::Py_FinalizeEx()
        }
    }
}

/// A worker thread's own Python thread state, kept for the thread's life.
struct Pinned {
    gstate: ffi::PyGILState_STATE,
    tstate: *mut ffi::PyThreadState,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // SAFETY: the thread exits; give back the state taken in `pin_thread`, unless the
        // interpreter is gone (then there is nothing to release).
        unsafe {
            if !FINALIZED.load(Ordering::SeqCst) && ffi::Py_IsInitialized() != 0 {
                ffi::PyEval_RestoreThread(self.tstate);
                ffi::PyGILState_Release(self.gstate);
            }
        }
    }
}

thread_local! {
    static PINNED: RefCell<Option<Pinned>> = const { RefCell::new(None) };
}

/// Gives the calling thread a Python thread state that outlives each `attach`, so attaching is
/// cheap and `threading.local` persists. No-op on threads that already have one (the main
/// thread). Must not be called while attached.
pub(super) fn pin_thread() {
    PINNED.with(|slot| {
        let Ok(mut slot) = slot.try_borrow_mut() else {
            return;
        };
        if slot.is_some() {
            return;
        }
        // SAFETY: Python is initialised (we only run inside a started app) and this thread is
        // not attached, so `Ensure` creates and takes a fresh state that `SaveThread` releases
        // again; later `attach` calls reuse it.
        unsafe {
            if ffi::Py_IsInitialized() == 0 || !ffi::PyGILState_GetThisThreadState().is_null() {
                return;
            }
            let gstate = ffi::PyGILState_Ensure();
            let tstate = ffi::PyEval_SaveThread();
            *slot = Some(Pinned { gstate, tstate });
        }
    });
}

/// The host's handlers for the signals it owns, saved before Python starts so they can be put
/// back after the app's import (which may `import signal` and install Python's own).
pub(super) struct HostSignals {
    #[cfg(unix)]
    saved: Vec<(libc::c_int, libc::sigaction)>,
}

impl HostSignals {
    /// Signals the host owns: shutdown requests and SIGPIPE (Rust relies on it being ignored).
    #[cfg(unix)]
    const OWNED: [libc::c_int; 5] = [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ];

    pub(super) fn save() -> HostSignals {
        #[cfg(unix)]
        {
            let saved = Self::OWNED
                .iter()
                .filter_map(|&sig| {
                    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
                    // SAFETY: querying only (null new action).
                    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
                    // SAFETY: sigaction filled `old` when it returned 0.
                    (rc == 0).then(|| (sig, unsafe { old.assume_init() }))
                })
                .collect();
            HostSignals { saved }
        }
        #[cfg(not(unix))]
        HostSignals {}
    }

    /// Puts the saved handlers back.
    pub(super) fn restore(&self) {
        #[cfg(unix)]
        for (sig, action) in &self.saved {
            // SAFETY: re-installing an action the kernel gave us for the same signal.
            unsafe {
                libc::sigaction(*sig, action, std::ptr::null_mut());
            }
        }
    }
}
