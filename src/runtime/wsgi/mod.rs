//! The embedded-Python WSGI bridge; the only module that touches PyO3.
//!
//! [`start`] starts CPython in the chosen environment (`--venv`), points its standard streams
//! at the log, imports `module:callable` on the calling (main) thread and returns a [`Runtime`]
//! whose [`WsgiApp`] implements the server's [`crate::runtime::server::Application`]: the server hands
//! it a request (raw byte params, a body reader, a response writer) and the bridge does PEP 3333
//! — environ, `wsgi.input`, `start_response`, iteration, `close()`, errors as 500s with an id.
//! [`Runtime::finalize`] stops Python on the same thread so `atexit` handlers run.
//!
//! Layout: `venv` (which Python, pure), `libpython` (which CPython library was loaded, the
//! Linux re-exec), `interpreter` (stable-ABI start, isolation, signals, finalisation),
//! `environ` (pure assembly + dict), `input`, `start_response`, `response` (hot path),
//! `file_wrapper`, `errors` (log streams, tracebacks, ids), `app` (import, retry, exit
//! requests), `reload` (file watcher). Python-facing classes are `frozen` and private here.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

mod app;
mod environ;
mod errors;
mod exchange;
mod file_wrapper;
mod input;
mod interpreter;
pub mod libpython;
mod reload;
mod response;
mod start_response;
mod utf8;
mod venv;

pub use app::{ExitReason, WsgiApp};
pub use environ::CgiEnviron;
pub use interpreter::InitError;
pub use reload::{DEFAULT_PATTERN as DEFAULT_RELOAD_PATTERN, ReloadRule};
pub use start_response::{HeaderProblem, StatusProblem, check_header, check_status};
pub use venv::{Environment, PyVenvCfg, VenvError, select as select_environment};

/// The CPython `major.minor` this binary was built with (from `build.rs`). Through the stable
/// ABI it embeds any CPython from [`venv::MINIMUM`] on; this one is what it loads when no venv
/// says otherwise.
pub const BUILT_FOR: &str = env!("IISWSGI_PY_VERSION");

/// The oldest CPython `(major, minor)` the binary embeds.
pub const MINIMUM_PYTHON: (u32, u32) = venv::MINIMUM;

/// One log record from the bridge. A message may span lines (a traceback is one record).
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Severity.
    pub level: log::Level,
    /// The text, without a trailing newline.
    pub message: &'a str,
    /// Text the app printed (`sys.stdout`, `sys.stderr`, `wsgi.errors`): never filtered out.
    pub from_app: bool,
}

/// Where the bridge's records go: the gateway log. Must never block a request for long, never
/// panic, and never write to FCGI_STDERR.
pub trait LogSink: Send + Sync + 'static {
    /// Writes one record.
    fn log(&self, record: &Record<'_>);

    /// Where the records land, if it is a file or stderr that Python's `faulthandler` may
    /// write a fatal error's traceback to directly. Default: nowhere (faulthandler stays off).
    fn fault_destination(&self) -> Option<crate::runtime::logging::Destination> {
        None
    }
}

/// The `iiswsgi run` log ([`crate::runtime::logging`]): bridge records through the `log` macros (so the
/// level filter applies), app text through [`crate::runtime::logging::write_line`] (so it is never
/// filtered). Request threads' records carry the server's request id.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerLog;

impl LogSink for ServerLog {
    fn log(&self, record: &Record<'_>) {
        if record.from_app {
            crate::runtime::logging::write_line(record.level, record.message);
        } else {
            log::log!(target: "iiswsgi::runtime::wsgi", record.level, "{}", record.message);
        }
    }

    fn fault_destination(&self) -> Option<crate::runtime::logging::Destination> {
        crate::runtime::logging::destination()
    }
}

/// A [`LogSink`] writing `LEVEL message` lines to the process's stderr: for using the bridge
/// outside `iiswsgi run`, never under IIS (where stderr is not a valid handle).
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrLog;

impl LogSink for StderrLog {
    fn log(&self, record: &Record<'_>) {
        let line = format!("iiswsgi: {} {}\n", record.level, record.message);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// `module:callable` — which object to serve. The callable part may be a dotted attribute path
/// and may end in a call to a factory, with literal arguments as gunicorn allows
/// (`app:create_app()`, `app:create_app(debug=False)`); without `:` it is `application`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    /// The module to import (`pkg.wsgi`).
    pub module: String,
    /// Attributes to follow from the module (`["app"]`, `["server", "app"]`).
    pub attrs: Vec<String>,
    /// Call the object to get the WSGI app.
    pub call: bool,
    /// The call's arguments, Python literals evaluated with `ast.literal_eval` (empty: none).
    pub args: String,
}

/// Why an app spec cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid app {spec:?}: {problem} (expected module:callable, e.g. myproject.wsgi:application)"
)]
pub struct AppSpecError {
    spec: String,
    problem: String,
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

impl FromStr for AppSpec {
    type Err = AppSpecError;

    fn from_str(spec: &str) -> Result<AppSpec, AppSpecError> {
        let err = |problem: &str| AppSpecError {
            spec: spec.to_owned(),
            problem: problem.to_owned(),
        };
        let (module, callable) = spec.split_once(':').unwrap_or((spec, "application"));
        if module.is_empty() || !module.split('.').all(is_identifier) {
            return Err(err("the module must be a dotted Python name"));
        }
        let (callable, args) = crate::manifest::factory_call::split(callable)
            .map_err(|why| err(&format!("the factory's arguments: {why}")))?;
        if callable.is_empty() || !callable.split('.').all(is_identifier) {
            return Err(err(
                "the callable must be a dotted Python name, optionally called: name(...)",
            ));
        }
        Ok(AppSpec {
            module: module.to_owned(),
            attrs: callable.split('.').map(str::to_owned).collect(),
            call: args.is_some(),
            args: args.unwrap_or_default().to_owned(),
        })
    }
}

impl fmt::Display for AppSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.attrs.join("."))?;
        if self.call {
            write!(f, "({})", self.args)?;
        }
        Ok(())
    }
}

/// `wsgi.multithread` / `wsgi.multiprocess` (wsgi-embedding.md §3.8); `run_once` is always
/// false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// More than one request thread in this process.
    pub multithread: bool,
    /// Other processes serve the same app (always true under IIS and spawned FastCGI).
    pub multiprocess: bool,
}

impl Mode {
    /// IIS, or any single-threaded FastCGI process a web server spawns.
    pub const SPAWNED: Mode = Mode {
        multithread: false,
        multiprocess: true,
    };

    /// A socket server with `threads` request threads and `processes` workers.
    pub fn socket(threads: usize, processes: usize) -> Mode {
        Mode {
            multithread: threads > 1,
            multiprocess: processes > 1,
        }
    }
}

/// Reload-on-change settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOptions {
    /// The directory watched recursively (the app's physical directory).
    pub root: PathBuf,
    /// The regex, matched from the start of the relative path; empty disables reloading.
    pub pattern: String,
}

/// Everything [`start`] needs; paths are already resolved by the caller.
#[derive(Debug, Clone)]
pub struct Options {
    /// The app to import.
    pub app: AppSpec,
    /// `--venv`: a venv or full installation directory.
    pub venv: Option<PathBuf>,
    /// `--chdir`: the working directory, also put first on `sys.path`.
    pub chdir: Option<PathBuf>,
    /// Extra `sys.path` entries, after `chdir`, before the standard ones.
    pub python_paths: Vec<PathBuf>,
    /// Set in `os.environ` after Python starts and before the app is imported (the manifest's
    /// `[wsgi.environment]`, e.g. `DJANGO_SETTINGS_MODULE`). Python's own start-up variables
    /// (`PYTHONPATH`...) have no effect here.
    pub environment: Vec<(String, String)>,
    /// Threading facts for the environ.
    pub mode: Mode,
    /// Reload on change, if wanted.
    pub reload: Option<ReloadOptions>,
    /// `SERVER_SOFTWARE` when the web server sends none.
    pub server_software: String,
    /// This start is a reload decided at this instant: a watched file changed since then (while
    /// the previous image drained and this one started) reloads again at once.
    pub reload_since: Option<std::time::SystemTime>,
    /// A failed import ends the start with [`StartError::Import`] (outside IIS) instead of
    /// answering 503 and retrying (IIS, which would otherwise restart the process into
    /// rapid-fail protection).
    pub stop_on_import_failure: bool,
}

impl Options {
    /// Options for `app` with everything else at its default.
    pub fn new(app: AppSpec) -> Options {
        Options {
            app,
            venv: None,
            chdir: None,
            python_paths: Vec::new(),
            environment: Vec::new(),
            mode: Mode::SPAWNED,
            reload: None,
            server_software: format!("iiswsgi/{}", crate::VERSION),
            stop_on_import_failure: false,
            reload_since: None,
        }
    }
}

/// Why the bridge could not start. Only these make `iiswsgi run` exit non-zero: a failing app
/// import does so only with [`Options::stop_on_import_failure`] (under IIS it is served as 503
/// while retried).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `--venv` cannot be used (checked before Python starts).
    #[error(transparent)]
    Venv(#[from] VenvError),
    /// CPython itself did not start.
    #[error(transparent)]
    Init(#[from] InitError),
    /// The CPython library this process loaded is not the venv's.
    #[error(transparent)]
    Libpython(#[from] libpython::LibpythonError),
    /// Python started but not in the venv we asked for.
    #[error("Python started with sys.prefix {found} instead of the venv {}", .expected.display())]
    WrongPrefix {
        /// The venv directory.
        expected: PathBuf,
        /// What `sys.prefix` resolved to.
        found: String,
    },
    /// `--chdir` failed.
    #[error("cannot change directory to {}", .dir.display())]
    Chdir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Setting up the Python side (streams, `sys.path`, the environ template) raised.
    #[error("preparing Python failed while {step}: {message}")]
    Setup {
        /// What was being done.
        step: &'static str,
        /// The Python exception.
        message: String,
    },
    /// The reload pattern is not a valid regex.
    #[error("invalid reload pattern {pattern:?}")]
    ReloadPattern {
        /// The pattern.
        pattern: String,
        /// The regex error.
        source: regex::Error,
    },
    /// The app could not be imported (outside IIS): the traceback is in the message.
    #[error("cannot import {app}:\n{traceback}")]
    Import {
        /// The `module:callable` asked for.
        app: String,
        /// The exception chain, formatted as Python does.
        traceback: String,
    },
    /// The file watcher could not start.
    #[error("cannot watch {} for changes", .root.display())]
    Watch {
        /// The directory.
        root: PathBuf,
        /// The watcher error.
        source: notify::Error,
    },
}

/// A started interpreter with its app. `!Send`: it must be finalised on the thread that
/// started it.
pub struct Runtime {
    interpreter: interpreter::Interpreter,
    app: Arc<WsgiApp>,
    watcher: Option<reload::Watcher>,
}

impl Runtime {
    /// The app, to hand to the server (share it with worker threads).
    pub fn app(&self) -> Arc<WsgiApp> {
        self.app.clone()
    }

    /// `sys.version`'s first word, e.g. `3.11.7`.
    pub fn python_version(&self) -> String {
        Python::version_str()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// How many folders the reload watcher covers, if it runs.
    pub fn watched_folders(&self) -> Option<usize> {
        self.watcher.as_ref().map(|w| w.folders)
    }

    /// Stops watching, drops the app and finalises Python on this (the starting) thread, so
    /// `atexit` handlers run. Returns `Py_FinalizeEx`'s status (0 = clean); workers must have
    /// been joined first.
    pub fn finalize(self) -> i32 {
        let Runtime {
            interpreter,
            app,
            watcher,
        } = self;
        drop(watcher);
        Python::attach(|_| drop(app));
        interpreter.finalize()
    }
}

/// Python-side set-up failures carry the exception text.
fn setup(step: &'static str) -> impl Fn(PyErr) -> StartError {
    move |err| StartError::Setup {
        step,
        message: Python::attach(|py| errors::short_exception(py, &err)),
    }
}

/// Starts Python and imports the app (see the module docs). Call on the main thread, once.
/// `log` receives everything: start-up facts, `print()`, `wsgi.errors`, tracebacks.
pub fn start(options: &Options, log: Arc<dyn LogSink>) -> Result<Runtime, StartError> {
    let env = environment(options.venv.as_deref())?;
    let loaded = libpython::loaded();
    libpython::check(&env, &loaded)?;
    interpreter::check_stdlib(&env, loaded.major_minor())?;
    let reload = match &options.reload {
        Some(r) => {
            // The venv and the log's own folder below the root: never watched (reload.rs).
            let log_dir = match log.fault_destination() {
                Some(crate::runtime::logging::Destination::File(path)) => path
                    .parent()
                    .filter(|dir| dir.starts_with(&r.root) && *dir != r.root)
                    .map(Path::to_path_buf),
                _ => None,
            };
            let exclude = options
                .venv
                .iter()
                .flat_map(|v| [v.clone()].into_iter().chain(v.canonicalize().ok()))
                .chain(log_dir)
                .collect();
            ReloadRule::new(&r.root, &r.pattern, exclude).map_err(|source| {
                StartError::ReloadPattern {
                    pattern: r.pattern.clone(),
                    source,
                }
            })?
        }
        None => None,
    };
    if let Some(dir) = &options.chdir {
        std::env::set_current_dir(dir).map_err(|source| StartError::Chdir {
            dir: dir.clone(),
            source,
        })?;
    }
    let signals = interpreter::HostSignals::save();
    let interp = interpreter::initialize(&env)?;
    let exit = Arc::new(app::ExitSignal::new());
    let app = Python::attach(|py| -> Result<WsgiApp, StartError> {
        redirect_streams(py, &log).map_err(setup("replacing sys.stdin/stdout/stderr"))?;
        enable_faulthandler(py, &*log);
        extend_path(py, options).map_err(setup("extending sys.path"))?;
        set_environment(py, &options.environment).map_err(setup("setting os.environ"))?;
        log.log(&Record {
            level: log::Level::Info,
            message: &format!("python: {}", loaded.describe()),
            from_app: false,
        });
        describe(py, &*log).map_err(setup("reading sys"))?;
        check_prefix(py, &env)?;
        let errors = Bound::new(py, errors::LogStream::wsgi_errors(log.clone()))
            .map_err(setup("creating wsgi.errors"))?;
        let file_wrapper = py.get_type::<file_wrapper::FileWrapper>();
        let template = environ::EnvironTemplate::new(
            py,
            environ::BaseEntries {
                errors: errors.into_any(),
                file_wrapper: file_wrapper.into_any(),
                multithread: options.mode.multithread,
                multiprocess: options.mode.multiprocess,
                server_software: &options.server_software,
            },
        )
        .map_err(setup("building the environ template"))?;
        Ok(WsgiApp::load(
            py,
            options.app.clone(),
            template,
            log.clone(),
            exit.clone(),
            !options.stop_on_import_failure,
        ))
    });
    signals.restore();
    let app = match app {
        Ok(app) => Arc::new(app),
        Err(e) => {
            interp.finalize();
            return Err(e);
        }
    };
    if options.stop_on_import_failure
        && let Some(traceback) = app.import_error()
    {
        Python::attach(|_| drop(app));
        interp.finalize();
        return Err(StartError::Import {
            app: options.app.to_string(),
            traceback,
        });
    }
    let watcher = match (reload, &options.reload) {
        (Some(rule), Some(settings)) => {
            let missed = options
                .reload_since
                .and_then(|since| reload::changed_since(&rule, since));
            let watcher = reload::watch(rule, exit.clone(), log.clone()).map_err(|source| {
                StartError::Watch {
                    root: settings.root.clone(),
                    source,
                }
            })?;
            if let Some(path) = missed {
                let message = format!(
                    "reload: {path} changed while the previous start was under way; restarting \
                     once the requests in flight are done"
                );
                log.log(&Record {
                    level: log::Level::Info,
                    message: &message,
                    from_app: false,
                });
                exit.request(ExitReason::Reload(path));
            }
            let message = format!(
                "reload: watching {} ({} folder(s); never the venv, logs or __pycache__) for \
                 changes matching {:?}",
                settings.root.display(),
                watcher.folders,
                settings.pattern
            );
            log.log(&Record {
                level: log::Level::Info,
                message: &message,
                from_app: false,
            });
            Some(watcher)
        }
        _ => None,
    };
    Ok(Runtime {
        interpreter: interp,
        app,
        watcher,
    })
}

/// The environment for `venv` (`None`: the interpreter the binary was built with).
pub fn environment(venv: Option<&Path>) -> Result<Environment, VenvError> {
    venv::select(venv, option_env!("IISWSGI_PY_EXECUTABLE").map(Path::new))
}

/// Before the server starts, on the process's only thread: on Linux, re-executes the binary
/// once so that the venv's own libpython is the one loaded ([`libpython`]); in the re-executed
/// image, restores the environment. Does nothing when `venv` cannot be used (then [`start`]
/// reports why).
///
/// # Safety
/// Changes the process environment and may replace the process image: no other thread may
/// exist.
pub unsafe fn prepare_process(venv: Option<&Path>) {
    let env = environment(venv).ok();
    // SAFETY: forwarded contract.
    unsafe { libpython::prepare_process(env.as_ref()) };
}

/// Logs which Python runs, from where, with which path (§2.2 step 5).
fn describe(py: Python<'_>, log: &dyn LogSink) -> PyResult<()> {
    let sys = py.import("sys")?;
    let get = |name: &str| -> PyResult<String> {
        Ok(sys.getattr(name)?.str()?.to_string_lossy().into_owned())
    };
    let message = format!(
        "Python {} ({}); sys.prefix {} (base {}); sys.path {}",
        get("version")?.replace('\n', " "),
        get("executable")?,
        get("prefix")?,
        get("base_prefix")?,
        get("path")?,
    );
    log.log(&Record {
        level: log::Level::Info,
        message: &message,
        from_app: false,
    });
    Ok(())
}

/// Fails unless `sys.prefix` resolves to the venv we selected.
fn check_prefix(py: Python<'_>, env: &Environment) -> Result<(), StartError> {
    let Some(expected) = env.expected_prefix() else {
        return Ok(());
    };
    let found: String = (|| -> PyResult<String> {
        let prefix = py.import("sys")?.getattr("prefix")?;
        py.import("os.path")?
            .call_method1("realpath", (prefix,))?
            .extract()
    })()
    .map_err(setup("reading sys.prefix"))?;
    if Path::new(&found) != expected {
        return Err(StartError::WrongPrefix {
            expected: expected.to_path_buf(),
            found,
        });
    }
    Ok(())
}

/// `sys.stdin` = empty, `sys.stdout`/`sys.stderr` (and the `__dunder__` originals) = the log.
fn redirect_streams(py: Python<'_>, log: &Arc<dyn LogSink>) -> PyResult<()> {
    let sys = py.import("sys")?;
    let stdin = py.import("io")?.getattr("StringIO")?.call1(("",))?;
    let stdout = Bound::new(
        py,
        errors::LogStream::new(log::Level::Info, "<stdout>", log.clone()),
    )?;
    let stderr = Bound::new(
        py,
        errors::LogStream::new(log::Level::Warn, "<stderr>", log.clone()),
    )?;
    sys.setattr("stdin", &stdin)?;
    sys.setattr("__stdin__", &stdin)?;
    sys.setattr("stdout", &stdout)?;
    sys.setattr("__stdout__", &stdout)?;
    sys.setattr("stderr", &stderr)?;
    sys.setattr("__stderr__", &stderr)?;
    Ok(())
}

/// Why `faulthandler` could not be enabled; logged as a warning, never fatal.
#[derive(Debug, thiserror::Error)]
enum FaultHandlerError {
    /// The log file could not be opened a second time for it.
    #[error("{}: {error}", path.display())]
    Open {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Handing the descriptor to Python, or `faulthandler.enable`, raised (the exception in
    /// short form).
    #[error("{0}")]
    Python(String),
}

/// iis-runtime §12 item 29: a fatal error (a crashing C extension, `abort()`) leaves the
/// Python traceback of every thread in the log, where an admin looks after IIS reports "the
/// FastCGI process exited unexpectedly". `faulthandler` gets a descriptor of its own on the log
/// file (append mode, never closed: the handler may fire at any time until exit), or fd 2 when
/// logging to stderr. After a rotation that descriptor still points at the rotated file
/// (`<log>.1`). A failure is logged and start-up goes on.
fn enable_faulthandler(py: Python<'_>, log: &dyn LogSink) {
    use crate::runtime::logging::Destination;
    let result = (|| -> Result<Option<String>, FaultHandlerError> {
        let (fd, shown) = match log.fault_destination() {
            Some(Destination::File(path)) => {
                let file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|error| FaultHandlerError::Open {
                        path: path.clone(),
                        error,
                    })?;
                let fd = fault_fd(py, file)
                    .map_err(|e| FaultHandlerError::Python(errors::short_exception(py, &e)))?;
                (fd, path.display().to_string())
            }
            Some(Destination::Stderr) => (2, "stderr".to_owned()),
            _ => return Ok(None),
        };
        let kwargs = pyo3::types::PyDict::new(py);
        (|| -> PyResult<()> {
            kwargs.set_item("file", fd)?;
            kwargs.set_item("all_threads", true)?;
            py.import("faulthandler")?
                .call_method("enable", (), Some(&kwargs))
                .map(drop)
        })()
        .map_err(|e| FaultHandlerError::Python(errors::short_exception(py, &e)))?;
        Ok(Some(shown))
    })();
    let (level, message) = match result {
        Ok(Some(shown)) => (
            log::Level::Debug,
            format!("faulthandler: fatal errors dump Python tracebacks to {shown}"),
        ),
        Ok(None) => return,
        Err(e) => (
            log::Level::Warn,
            format!("faulthandler not enabled, a fatal error will leave no traceback: {e}"),
        ),
    };
    log.log(&Record {
        level,
        message: &message,
        from_app: false,
    });
}

/// Hands `file` over to the C runtime as a descriptor `faulthandler` can write to; it is never
/// closed.
#[cfg(unix)]
fn fault_fd(_py: Python<'_>, file: std::fs::File) -> PyResult<i64> {
    use std::os::fd::IntoRawFd;
    Ok(i64::from(file.into_raw_fd()))
}

/// Hands `file` over to Python's C runtime (`msvcrt.open_osfhandle`, so the descriptor lives
/// in the CRT Python uses) as a descriptor `faulthandler` can write to; it is never closed.
/// Opened by Rust, the handle allows delete sharing, so the log can still rotate.
#[cfg(windows)]
fn fault_fd(py: Python<'_>, file: std::fs::File) -> PyResult<i64> {
    use std::os::windows::io::{FromRawHandle, IntoRawHandle};
    let handle = file.into_raw_handle();
    let os = py.import("os")?;
    let flags: i64 =
        os.getattr("O_APPEND")?.extract::<i64>()? | os.getattr("O_WRONLY")?.extract::<i64>()?;
    match py
        .import("msvcrt")?
        .call_method1("open_osfhandle", (handle as isize, flags))
    {
        Ok(fd) => fd.extract(),
        Err(e) => {
            // SAFETY: the CRT did not take the handle; it is still ours to close.
            drop(unsafe { std::fs::File::from_raw_handle(handle) });
            Err(e)
        }
    }
}

#[cfg(not(any(unix, windows)))]
fn fault_fd(_py: Python<'_>, _file: std::fs::File) -> PyResult<i64> {
    Err(pyo3::exceptions::PyOSError::new_err(
        "no file descriptors on this platform",
    ))
}

/// `os.environ[name] = value` for each pair (which also calls `putenv`).
fn set_environment(py: Python<'_>, vars: &[(String, String)]) -> PyResult<()> {
    if vars.is_empty() {
        return Ok(());
    }
    let environ = py.import("os")?.getattr("environ")?;
    for (name, value) in vars {
        environ.set_item(name, value)?;
    }
    Ok(())
}

/// Prepends `chdir` and the extra python paths to `sys.path`.
fn extend_path(py: Python<'_>, options: &Options) -> PyResult<()> {
    let entries: Vec<String> = options
        .chdir
        .iter()
        .chain(&options.python_paths)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    let path = py.import("sys")?.getattr("path")?;
    let path = path.cast::<PyList>()?;
    for (i, entry) in entries.iter().enumerate() {
        path.insert(i, PyString::new(py, entry))?;
    }
    Ok(())
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_spec_parses_module_and_dotted_callable() {
        let spec: AppSpec = "pkg.wsgi:server.app".parse().unwrap();
        assert_eq!(spec.module, "pkg.wsgi");
        assert_eq!(spec.attrs, ["server", "app"]);
        assert!(!spec.call);
        assert_eq!(spec.to_string(), "pkg.wsgi:server.app");
    }

    #[test]
    fn app_spec_defaults_to_application_and_accepts_factories() {
        assert_eq!(
            "site.wsgi".parse::<AppSpec>().unwrap().attrs,
            ["application"]
        );
        let spec: AppSpec = "app:create_app()".parse().unwrap();
        assert!(spec.call);
        assert_eq!(spec.to_string(), "app:create_app()");
        let spec: AppSpec = "app:create_app('prod', debug=False)".parse().unwrap();
        assert_eq!(
            (spec.attrs.as_slice(), spec.args.as_str()),
            (&["create_app".to_owned()][..], "'prod', debug=False")
        );
        assert_eq!(spec.to_string(), "app:create_app('prod', debug=False)");
    }

    #[test]
    fn app_spec_rejects_what_python_cannot_import() {
        for bad in [
            "",
            ":app",
            "my-app:app",
            "app:",
            "app:1x",
            "a..b:app",
            "app:x()()",
            "app:x(os.environ)",
            "app:x(1",
        ] {
            assert!(bad.parse::<AppSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn socket_mode_reports_threads_and_processes() {
        assert_eq!(
            Mode::socket(1, 1),
            Mode {
                multithread: false,
                multiprocess: false
            }
        );
        assert_eq!(
            Mode::socket(4, 2),
            Mode {
                multithread: true,
                multiprocess: true
            }
        );
        assert_eq!(
            Mode::SPAWNED,
            Mode {
                multithread: false,
                multiprocess: true
            }
        );
    }
}
