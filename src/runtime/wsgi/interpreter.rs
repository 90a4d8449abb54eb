//! Starting and stopping CPython inside the `iiswsgi` process (wsgi-embedding.md §1.4–1.5, §5).
//!
//! **Only the stable ABI.** The binary is built for CPython's stable ABI (PyO3 `abi3-py39`), so
//! one binary embeds every CPython from 3.9 on (issue 15). `PyConfig` is not part of that ABI
//! (its layout changes between minors), so the interpreter starts the way the stable ABI
//! allows, with today's isolation guarantees kept:
//!
//! | what | how |
//! |---|---|
//! | which environment (`sys.executable`, venv detection through `pyvenv.cfg`) | `Py_SetProgramName(<venv>/bin/python)`: a program name with a separator is the executable CPython's path calculation starts from, exactly as `PyConfig.executable` |
//! | a full installation without `pyvenv.cfg` | `Py_SetPythonHome(<dir>)` |
//! | no Python signal handlers (SIGINT, SIGPIPE...: the host owns them) | `Py_InitializeEx(0)` (`install_signal_handlers = 0`) |
//! | C stdio left alone (fd 0 is the FastCGI transport), no argv parsing | the legacy ("compat") configuration `Py_InitializeEx` uses has `configure_c_stdio = 0`, `parse_argv = 0` |
//! | no stray `PYTHONHOME`, `PYTHONSTARTUP`, `PYTHONOPTIMIZE`...: only `PYTHONPATH` counts | every other `PYTHON*` variable is taken out of the environment for the start and put back after (C environment and `os.environ`), the effect of `use_environment = 0` |
//! | no user site-packages | `PYTHONNOUSERSITE=1` for the start (put back after) |
//! | UTF-8 in the C/POSIX locale (Python's own configuration coerces it, PEP 538; the compat one does not) | the same coercion here: `LC_CTYPE=C.UTF-8` when the locale is C or POSIX and `LC_ALL` is unset |
//! | `sys.argv == ["iiswsgi"]` | set from Python after the start |
//!
//! `Py_SetProgramName` and `Py_SetPythonHome` are deprecated since 3.11 and leave the headers in
//! 3.16 (gh-158001), but they are in the stable ABI, which CPython keeps exporting from
//! `python3.dll`/`libpython3.so` for every later 3.x ("abi_only" in `Misc/stable_abi.toml`); if
//! one ever stopped working, `sys.prefix` would not be the venv and start-up fails loudly
//! ([`super::StartError::WrongPrefix`]). PEP 741's `PyInitConfig` (3.14) is not used: it is not
//! in 3.9's stable ABI. `Py_InitializeEx` cannot report an error; it aborts with "Fatal Python
//! error" on stderr. So the stdlib is checked before it runs ([`check_stdlib`]), which covers
//! the failures seen in practice (a venv whose base Python was removed).
//!
//! After the app is imported the host's signal handlers are put back, and at shutdown
//! `Py_FinalizeEx` runs on the same thread so `atexit` handlers run.
//!
//! Also here: keeping one Python thread state per worker thread for its whole life
//! ([`pin_thread`]), so `threading.local` data (database connections) survives between
//! requests and no thread state is created per request.

use std::cell::RefCell;
use std::ffi::OsString;
#[cfg(unix)]
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ThreadId;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::venv::Environment;

/// Set just before `Py_FinalizeEx`: thread-state destructors must not touch Python after it.
static FINALIZED: AtomicBool = AtomicBool::new(false);

/// Why CPython did not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// This process already runs an interpreter (CPython cannot be re-initialised reliably).
    #[error("Python is already initialised in this process")]
    AlreadyInitialized,
    /// A path contains a NUL byte (or cannot be decoded) and cannot be handed to CPython.
    #[error("{what} cannot be passed to Python: {value:?}")]
    BadPath {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// The standard library of the chosen Python is not where it must be: starting would end
    /// in "Fatal Python error" (an abort, no message under IIS).
    #[error(
        "the standard library of Python {version} is missing: no {} (was the Python the venv \
         was made from removed or moved? recreate the venv)",
        .landmark.display()
    )]
    NoStdlib {
        /// The `major.minor` looked for.
        version: String,
        /// The file that should exist (`os.py`).
        landmark: PathBuf,
    },
    /// Python started, but finishing the start-up from Python failed.
    #[error("Python started, but {step} failed: {message}")]
    AfterStart {
        /// What was being done.
        step: &'static str,
        /// The Python exception.
        message: String,
    },
}

/// The running interpreter; `!Send`, so it stays on the thread that started it.
pub(super) struct Interpreter {
    saved: *mut ffi::PyThreadState,
    thread: ThreadId,
}

/// A string for the legacy setters, which keep the pointer in some versions: leaked on
/// purpose (one small allocation per process).
#[cfg(unix)]
fn wide(what: &'static str, path: &Path) -> Result<*const libc::wchar_t, InitError> {
    use std::os::unix::ffi::OsStrExt;
    let bad = || InitError::BadPath {
        what,
        value: path.display().to_string(),
    };
    let bytes = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| bad())?;
    // SAFETY: a NUL-terminated string; Py_DecodeLocale may run before initialisation and
    // returns a PyMem_RawMalloc'ed wide string (surrogateescape for undecodable bytes), or NULL.
    let decoded = unsafe { ffi::Py_DecodeLocale(bytes.as_ptr(), std::ptr::null_mut()) };
    if decoded.is_null() {
        return Err(bad());
    }
    Ok(decoded)
}

/// Windows: `wchar_t` is UTF-16.
#[cfg(windows)]
fn wide(what: &'static str, path: &Path) -> Result<*const libc::wchar_t, InitError> {
    use std::os::windows::ffi::OsStrExt;
    let mut units: Vec<u16> = path.as_os_str().encode_wide().collect();
    if units.contains(&0) {
        return Err(InitError::BadPath {
            what,
            value: path.display().to_string(),
        });
    }
    units.push(0);
    Ok(units.leak().as_ptr().cast())
}

/// Fails before `Py_InitializeEx` (which would abort) when the chosen Python's standard
/// library is missing. Only venvs are checked: their base Python is what gets removed or
/// moved; the base environment is the interpreter the binary was built with, found the same
/// way as before.
pub(super) fn check_stdlib(
    env: &Environment,
    version: Option<(u32, u32)>,
) -> Result<(), InitError> {
    let (Environment::Venv { cfg, .. }, Some((major, minor))) = (env, version) else {
        return Ok(());
    };
    let Some(home) = cfg.home.as_deref().map(Path::new) else {
        return Ok(());
    };
    let landmark = if cfg!(windows) {
        home.join("Lib").join("os.py")
    } else {
        match home.parent() {
            Some(prefix) => prefix
                .join("lib")
                .join(format!("python{major}.{minor}"))
                .join("os.py"),
            None => return Ok(()),
        }
    };
    // Debian keeps the stdlib under /usr/lib/python3.X too; any other layout (a lib64
    // distribution) is not second-guessed: the landmark must exist or its folder be absent.
    let lib64 = landmark
        .to_str()
        .map(|s| PathBuf::from(s.replacen("/lib/python", "/lib64/python", 1)));
    if landmark.is_file() || lib64.is_some_and(|p| p.is_file()) {
        return Ok(());
    }
    Err(InitError::NoStdlib {
        version: format!("{major}.{minor}"),
        landmark,
    })
}

/// Environment variables taken away for the start and put back after it.
struct Stash {
    /// `(name, value before the start)`; `None`: it was unset.
    saved: Vec<(OsString, Option<OsString>)>,
}

impl Stash {
    /// Takes every `PYTHON*` variable except `PYTHONPATH` out of the environment, sets
    /// `PYTHONNOUSERSITE=1`, and coerces a C/POSIX locale to C.UTF-8 (not put back: Python's own
    /// configuration leaves `LC_CTYPE` set too).
    ///
    /// # Safety
    /// Changes the process environment: no other thread may read it through libc meanwhile.
    /// Called on the starting thread before any thread of the server exists; in unit tests
    /// other test threads only read it through `std::env`, which holds the same lock.
    unsafe fn take() -> Stash {
        let mut saved = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(text) = name.to_str() else { continue };
            if text.starts_with("PYTHON") && text != "PYTHONPATH" && text != "PYTHONNOUSERSITE" {
                saved.push((name.clone(), Some(value)));
                // SAFETY: see the function's contract.
                unsafe { std::env::remove_var(&name) };
            }
        }
        saved.push((
            "PYTHONNOUSERSITE".into(),
            std::env::var_os("PYTHONNOUSERSITE"),
        ));
        // SAFETY: as above.
        unsafe { std::env::set_var("PYTHONNOUSERSITE", "1") };
        #[cfg(unix)]
        // SAFETY: as above.
        unsafe {
            coerce_c_locale()
        };
        Stash { saved }
    }

    /// Puts the variables back, in the C environment and in `os.environ` (which CPython
    /// copied during the start).
    fn restore(self, py: Python<'_>) -> PyResult<()> {
        let environ = py.import("os")?.getattr("environ")?;
        for (name, value) in self.saved {
            let key = name.to_string_lossy().into_owned();
            match value {
                // `os.environ[k] = v` calls putenv too.
                Some(v) => environ.set_item(&key, v.to_string_lossy().as_ref())?,
                None => {
                    if environ.contains(&key)? {
                        environ.del_item(&key)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// PEP 538 as `PyConfig_InitPythonConfig` does it: when `LC_ALL` is unset and the `LC_CTYPE`
/// locale is C or POSIX, `LC_CTYPE=C.UTF-8` (if the system has that locale), so the filesystem
/// and stdio encodings are UTF-8 instead of ASCII.
///
/// # Safety
/// As [`Stash::take`].
#[cfg(unix)]
unsafe fn coerce_c_locale() {
    if std::env::var_os("LC_ALL").is_some_and(|v| !v.is_empty()) {
        return;
    }
    // SAFETY: setlocale with a valid category and NUL-terminated strings; the result is read
    // before the next setlocale call. CPython's start calls setlocale(LC_CTYPE, "") again.
    unsafe {
        let current = libc::setlocale(libc::LC_CTYPE, c"".as_ptr());
        let legacy = current.is_null() || {
            let name = std::ffi::CStr::from_ptr(current).to_bytes();
            name == b"C" || name == b"POSIX"
        };
        if legacy {
            for target in [c"C.UTF-8", c"C.utf8", c"UTF-8"] {
                if !libc::setlocale(libc::LC_CTYPE, target.as_ptr()).is_null() {
                    std::env::set_var("LC_CTYPE", target.to_str().unwrap_or("C.UTF-8"));
                    break;
                }
            }
        }
        libc::setlocale(libc::LC_CTYPE, c"C".as_ptr());
    }
}

/// Starts CPython for `env`. Call once, on the main thread, before anything attaches.
/// `PYTHONPATH` in the environment is honoured (the only Python variable that is).
pub(super) fn initialize(env: &Environment) -> Result<Interpreter, InitError> {
    // SAFETY: the pre-initialisation calls run in their documented order on one thread,
    // before any other Python call.
    unsafe {
        if ffi::Py_IsInitialized() != 0 {
            return Err(InitError::AlreadyInitialized);
        }
        if let Some(exe) = env.executable() {
            ffi::Py_SetProgramName(wide("the Python executable", exe)?);
        }
        if let Some(home) = env.home() {
            ffi::Py_SetPythonHome(wide("the Python home", home)?);
        }
        let stash = Stash::take();
        ffi::Py_InitializeEx(0);
        let finished = Python::attach(|py| -> Result<(), InitError> {
            let after = |step| {
                move |e: PyErr| InitError::AfterStart {
                    step,
                    message: super::errors::short_exception(py, &e),
                }
            };
            stash
                .restore(py)
                .map_err(after("restoring the environment"))?;
            let argv = PyList::new(py, ["iiswsgi"]).map_err(after("setting sys.argv"))?;
            py.import("sys")
                .and_then(|sys| sys.setattr("argv", argv))
                .map_err(after("setting sys.argv"))
        });
        let saved = ffi::PyEval_SaveThread();
        finished?;
        Ok(Interpreter {
            saved,
            thread: std::thread::current().id(),
        })
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
