//! The WSGI app as the server sees it: an [`Application`] that imports `module:callable` once,
//! answers 503 while an import keeps failing (retrying with backoff rather than crash-looping
//! into IIS's rapid-fail lockout), and asks the process to exit after a reload trigger or
//! `SystemExit` (`--max-requests` is the server's own).
//!
//! The exit request is a flag plus an optional waker ([`WsgiApp::on_exit_request`]) so a server
//! idling between requests can exit without waiting for one more request.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use log::Level;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::environ::{self, CgiEnviron, EnvironTemplate};
use super::errors::{exception_name, format_exception, type_name};
use super::interpreter;
use super::response::{self, Context, Served};
use super::{AppSpec, LogSink, Record};
use crate::runtime::server::{Application, Body, Outcome, Request, Response};

/// Why the process should exit once the current request is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// A watched file changed (its path relative to the app directory).
    Reload(String),
    /// The app raised `SystemExit`.
    SystemExit,
}

/// A one-shot "please exit" shared by the request path and the reload watcher thread.
pub(super) struct ExitSignal {
    requested: AtomicBool,
    reason: Mutex<Option<ExitReason>>,
    /// When the first request came.
    at: Mutex<Option<SystemTime>>,
    waker: Mutex<Option<Waker>>,
}

/// What the server registered to hear about an exit request ([`WsgiApp::on_exit_request`]).
type Waker = Box<dyn Fn(&ExitReason) + Send + Sync>;

impl ExitSignal {
    pub(super) fn new() -> ExitSignal {
        ExitSignal {
            requested: AtomicBool::new(false),
            reason: Mutex::new(None),
            at: Mutex::new(None),
            waker: Mutex::new(None),
        }
    }

    /// Records the first request to exit and wakes the server; `true` if this call was first.
    pub(super) fn request(&self, reason: ExitReason) -> bool {
        if self.requested.swap(true, Ordering::SeqCst) {
            return false;
        }
        *self.at.lock().unwrap_or_else(PoisonError::into_inner) = Some(SystemTime::now());
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
        if let Some(wake) = &*self.waker.lock().unwrap_or_else(PoisonError::into_inner) {
            wake(&reason);
        }
        true
    }

    /// When the first request to exit was made.
    pub(super) fn requested_at(&self) -> Option<SystemTime> {
        *self.at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The first reason given, once one was.
    pub(super) fn reason(&self) -> Option<ExitReason> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Why the app cannot be called right now.
struct Unavailable {
    reason: String,
    retry_after: Duration,
}

struct ImportFailure {
    /// The exception's class name: what the 503 page says.
    reason: String,
    /// The whole exception chain, as logged.
    traceback: String,
    attempts: u32,
    next_try: Instant,
}

/// Backoff between import attempts: 1 s doubling to 60 s.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// An embedded WSGI application, served through [`Application::handle`].
pub struct WsgiApp {
    spec: AppSpec,
    callable: OnceLock<Py<PyAny>>,
    failure: Mutex<Option<ImportFailure>>,
    template: EnvironTemplate,
    log: Arc<dyn LogSink>,
    handled: AtomicU64,
    exit: Arc<ExitSignal>,
    /// Whether a failed import is answered with 503 and retried (IIS), or ends the start.
    retry_imports: bool,
}

impl WsgiApp {
    /// Imports the app now (on the calling thread, which should be the main one). With
    /// `retry_imports` a failure is logged and leaves the app answering 503 until a retry
    /// succeeds; without, the caller ends the start ([`WsgiApp::import_error`]).
    pub(super) fn load(
        py: Python<'_>,
        spec: AppSpec,
        template: EnvironTemplate,
        log: Arc<dyn LogSink>,
        exit: Arc<ExitSignal>,
        retry_imports: bool,
    ) -> WsgiApp {
        let app = WsgiApp {
            spec,
            callable: OnceLock::new(),
            failure: Mutex::new(None),
            template,
            log,
            handled: AtomicU64::new(0),
            exit,
            retry_imports,
        };
        let mut failure = None;
        app.attempt(py, &mut failure, 1);
        *app.failure.lock().unwrap_or_else(PoisonError::into_inner) = failure;
        app
    }

    /// Whether the app imported (so far).
    pub fn is_loaded(&self) -> bool {
        self.callable.get().is_some()
    }

    /// The traceback of the last failed import, while the app is not loaded.
    pub fn import_error(&self) -> Option<String> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure.as_ref().map(|f| f.traceback.clone())
    }

    /// How many requests this app has handled.
    pub fn requests_handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// When a reload was asked for, if one was: a change after that instant must reload the
    /// next image too (the watcher of this one has already fired).
    pub fn reload_requested_at(&self) -> Option<SystemTime> {
        match self.exit_requested()? {
            ExitReason::Reload(_) => self.exit.requested_at(),
            ExitReason::SystemExit => None,
        }
    }

    /// Why the process should exit, once something asked it to.
    pub fn exit_requested(&self) -> Option<ExitReason> {
        if self.exit.requested() {
            self.exit.reason()
        } else {
            None
        }
    }

    /// Registers `wake`, called once with the reason (from any thread, never attached to
    /// Python) when something asks the process to exit: the server stops accepting and, once
    /// the requests in flight are done, exits or (a reload outside IIS) restarts in place. A
    /// reload reaches the server only this way; `SystemExit` also ends its request with
    /// [`Outcome::Exit`]. Called immediately if an exit was already requested.
    pub fn on_exit_request(&self, wake: impl Fn(&ExitReason) + Send + Sync + 'static) {
        let mut slot = self
            .exit
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = self.exit_requested() {
            wake(&reason);
        }
        *slot = Some(Box::new(wake));
    }

    fn log(&self, level: Level, message: &str) {
        self.log.log(&Record {
            level,
            message,
            from_app: false,
        });
    }

    /// One import attempt, recording the outcome in `failure`.
    fn attempt(&self, py: Python<'_>, failure: &mut Option<ImportFailure>, attempt: u32) {
        match import(py, &self.spec, attempt > 1) {
            Ok(callable) => {
                let _ = self.callable.set(callable);
                let how = if attempt > 1 {
                    format!(" on attempt {attempt}")
                } else {
                    String::new()
                };
                self.log(Level::Info, &format!("imported {}{how}", self.spec));
                *failure = None;
            }
            Err(err) => {
                let retry = backoff(attempt);
                let traceback = format_exception(py, &err);
                let message = if self.retry_imports {
                    format!(
                        "importing {} failed (attempt {attempt}); answering 503 and retrying in \
                         {} s\n{traceback}",
                        self.spec,
                        retry.as_secs(),
                    )
                } else {
                    format!("importing {} failed; not serving\n{traceback}", self.spec)
                };
                self.log(Level::Error, &message);
                *failure = Some(ImportFailure {
                    reason: exception_name(py, &err),
                    traceback,
                    attempts: attempt,
                    next_try: Instant::now() + retry,
                });
            }
        }
    }

    /// The callable, retrying a failed import when its backoff has passed.
    fn callable<'py>(&self, py: Python<'py>) -> Result<Bound<'py, PyAny>, Unavailable> {
        if let Some(app) = self.callable.get() {
            return Ok(app.bind(py).clone());
        }
        // Held while attached; an import may release the GIL, so other threads only try.
        let Ok(mut guard) = self.failure.try_lock() else {
            return Err(Unavailable {
                reason: "the application is being loaded".into(),
                retry_after: Duration::from_secs(1),
            });
        };
        if let Some(app) = self.callable.get() {
            return Ok(app.bind(py).clone());
        }
        if let Some(f) = guard.as_ref().filter(|f| Instant::now() >= f.next_try) {
            let next = f.attempts + 1;
            self.attempt(py, &mut guard, next);
            if let Some(app) = self.callable.get() {
                return Ok(app.bind(py).clone());
            }
        }
        let (reason, retry_after) = match guard.as_ref() {
            Some(f) => (
                format!("the application could not be imported ({})", f.reason),
                f.next_try.saturating_duration_since(Instant::now()),
            ),
            None => (
                "the application is not loaded".into(),
                Duration::from_secs(1),
            ),
        };
        Err(Unavailable {
            reason,
            retry_after,
        })
    }

    fn serve(&self, request: &Request, body: &mut dyn Body, response: &mut dyn Response) -> Served {
        let error_id = request.error_id();
        let target = || environ::log_target(&request.params);
        let cgi = CgiEnviron::of(request);
        interpreter::pin_thread();
        Python::attach(|py| match self.callable(py) {
            Ok(app) => {
                let ctx = Context {
                    template: &self.template,
                    log: &*self.log,
                    error_id,
                    target: &target,
                };
                response::serve(py, &ctx, &app, &cgi, body, response)
            }
            Err(unavailable) => {
                let secs = unavailable.retry_after.as_secs().max(1).to_string();
                let page = format!(
                    "Service Unavailable\n\n{}; the server retries on its own.\n\
                     Error id: {error_id}.\n",
                    unavailable.reason
                );
                self.log(
                    Level::Warn,
                    &format!(
                        "{} (error id {error_id}): 503: {}",
                        target(),
                        unavailable.reason
                    ),
                );
                let outcome = plain(
                    response,
                    "503 Service Unavailable",
                    &[("Retry-After", &secs)],
                    &page,
                    cgi.head,
                );
                Served {
                    outcome,
                    exit: false,
                }
            }
        })
    }
}

impl Application for WsgiApp {
    fn handle(
        &self,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Outcome {
        let served = catch_unwind(AssertUnwindSafe(|| self.serve(request, body, response)))
            .unwrap_or_else(|_| {
                self.log(
                    Level::Error,
                    &format!(
                        "{} (error id {}): internal error (panic) in the WSGI bridge",
                        environ::log_target(&request.params),
                        request.error_id()
                    ),
                );
                Served {
                    outcome: Outcome::Aborted,
                    exit: false,
                }
            });
        if served.exit {
            self.exit.request(ExitReason::SystemExit);
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        // A reload is the waker's business (the server drains, then restarts or exits);
        // only SystemExit ends the run from here.
        let system_exit =
            || self.exit.requested() && self.exit.reason() == Some(ExitReason::SystemExit);
        match served.outcome {
            Outcome::Complete if system_exit() => Outcome::Exit,
            other => other,
        }
    }

    /// A worker thread (`--threads N`) is attached to Python for its whole life
    /// (wsgi-embedding §4): one thread state, made here and kept, so `threading.local` is per
    /// worker and each request's `attach` only takes the GIL. The loop itself runs detached:
    /// it waits for I/O, and takes the GIL only inside [`Application::handle`].
    fn run_worker(&self, serve: &mut (dyn FnMut() + Send)) {
        interpreter::pin_thread();
        Python::attach(|py| py.detach(serve));
    }
}

/// The app behind an `Arc`, as `iiswsgi run` shares it with the server.
impl Application for Arc<WsgiApp> {
    fn handle(
        &self,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Outcome {
        WsgiApp::handle(self, request, body, response)
    }

    fn run_worker(&self, serve: &mut (dyn FnMut() + Send)) {
        WsgiApp::run_worker(self, serve)
    }
}

/// A complete gateway response without Python (400, 503).
fn plain(
    response: &mut dyn Response,
    status: &str,
    extra: &[(&str, &str)],
    body: &str,
    head: bool,
) -> Outcome {
    let length = body.len().to_string();
    let mut headers: Vec<(&[u8], &[u8])> = vec![
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", length.as_bytes()),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    let sent = response.start(status, &headers).and_then(|()| {
        if head {
            Ok(())
        } else {
            response.write_final(body.as_bytes())
        }
    });
    match sent {
        Ok(()) => Outcome::Complete,
        Err(_) => Outcome::Aborted,
    }
}

/// `import module; module.attr.attr[()]`, checking the result is callable.
fn import(py: Python<'_>, spec: &AppSpec, retry: bool) -> PyResult<Py<PyAny>> {
    if retry {
        py.import("importlib")?.call_method0("invalidate_caches")?;
    }
    let mut obj = py.import(spec.module.as_str())?.into_any();
    for attr in &spec.attrs {
        obj = obj.getattr(attr.as_str())?;
    }
    if spec.call {
        obj = if spec.args.trim().is_empty() {
            obj.call0()?
        } else {
            let (args, kwargs) = literal_arguments(py, &spec.args)?;
            obj.call(args, Some(&kwargs))?
        };
    }
    if !obj.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "{spec} is not callable (it is a {})",
            type_name(&obj)
        )));
    }
    Ok(obj.unbind())
}

/// A factory's argument text as gunicorn reads it: parsed as the arguments of a call with
/// Python's `ast`, each value through `ast.literal_eval` (literals only, nothing runs);
/// `*args` and `**kwargs` are refused.
fn literal_arguments<'py>(
    py: Python<'py>,
    text: &str,
) -> PyResult<(Bound<'py, PyTuple>, Bound<'py, PyDict>)> {
    let ast = py.import("ast")?;
    let source = format!("f({text})");
    let call = ast
        .call_method1("parse", (source, "<factory arguments>", "eval"))?
        .getattr("body")?;
    let starred = ast.getattr("Starred")?;
    let mut args = Vec::new();
    for node in call.getattr("args")?.try_iter()? {
        let node = node?;
        if node.is_instance(&starred)? {
            return Err(PyTypeError::new_err(
                "factory arguments cannot use *args: write each value",
            ));
        }
        args.push(ast.call_method1("literal_eval", (node,))?);
    }
    let kwargs = PyDict::new(py);
    for keyword in call.getattr("keywords")?.try_iter()? {
        let keyword = keyword?;
        let name = keyword.getattr("arg")?;
        if name.is_none() {
            return Err(PyTypeError::new_err(
                "factory arguments cannot use **kwargs: write each name=value",
            ));
        }
        kwargs.set_item(
            name,
            ast.call_method1("literal_eval", (keyword.getattr("value")?,))?,
        )?;
    }
    Ok((PyTuple::new(py, args)?, kwargs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn exit_signal_keeps_the_first_reason_and_wakes_once() {
        let signal = ExitSignal::new();
        let woken = Arc::new(AtomicU64::new(0));
        let w = woken.clone();
        *signal.waker.lock().unwrap() = Some(Box::new(move |reason: &ExitReason| {
            assert_eq!(reason, &ExitReason::Reload("a.py".into()));
            w.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(signal.request(ExitReason::Reload("a.py".into())));
        assert!(!signal.request(ExitReason::SystemExit));
        assert_eq!(signal.reason(), Some(ExitReason::Reload("a.py".into())));
        assert_eq!(woken.load(Ordering::SeqCst), 1);
    }

    mod through_python {
        use super::super::super::testing::{Req, TestApp};
        use super::*;

        const COUNTER: &str = r#"
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"#;

        #[test]
        fn failed_import_answers_503_with_retry_after_and_recovers_after_backoff() {
            let module = format!("iiswsgi_late_module_{}", std::process::id());
            let t = TestApp::missing(&module);
            assert!(!t.app.is_loaded());
            let r = t.get("/");
            assert_eq!(r.code(), 503);
            assert_eq!(r.header("Retry-After"), Some("1"));
            assert!(r.text().contains("ModuleNotFoundError"), "{}", r.text());
            assert!(r.log.contains("No module named"), "{}", r.log);
            let head = t.call(Req::get("/").method("HEAD"));
            assert_eq!(head.code(), 503);
            assert!(head.body.is_empty());
            // The module appears; the next attempt after the backoff succeeds.
            Python::attach(|py| {
                let code = std::ffi::CString::new(COUNTER).unwrap();
                let name = std::ffi::CString::new(module.clone()).unwrap();
                pyo3::types::PyModule::from_code(py, &code, c"late.py", &name).unwrap();
            });
            std::thread::sleep(Duration::from_millis(1100));
            let r = t.get("/");
            assert_eq!(r.code(), 200, "{}", r.log);
            assert!(r.log.contains("on attempt 2"), "{}", r.log);
        }

        #[test]
        fn system_exit_asks_to_exit_and_wakes_the_server_once() {
            let t = TestApp::new(
                "def app(environ, start_response):\n    if environ['PATH_INFO'] == '/exit':\n        raise SystemExit(0)\n    start_response('200 OK', [])\n    return [b'ok']\n",
            );
            let woken = Arc::new(AtomicU64::new(0));
            let w = woken.clone();
            t.app.on_exit_request(move |_| {
                w.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(t.get("/").outcome, Outcome::Complete);
            assert_eq!(t.app.exit_requested(), None);
            assert_eq!(t.get("/exit").outcome, Outcome::Exit);
            assert_eq!(t.app.exit_requested(), Some(ExitReason::SystemExit));
            assert_eq!(
                t.get("/").outcome,
                Outcome::Exit,
                "a queued request is served, then exit"
            );
            assert_eq!(woken.load(Ordering::SeqCst), 1);
            assert_eq!(t.app.requests_handled(), 3);
        }

        const FACTORY: &str = r#"
def make(name, *, greeting="hello", extra=None):
    body = f"{greeting} {name} {extra!r}".encode()
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    return app
"#;

        #[test]
        fn a_factory_gets_its_literal_arguments_as_gunicorn_passes_them() {
            let t = TestApp::serving(
                FACTORY,
                "make('Ann', greeting=\"hi\", extra={'n': [1, 2.5], 'ok': True})",
                super::super::super::Mode::SPAWNED,
            );
            let r = t.get("/");
            assert_eq!(r.code(), 200, "{}", r.log);
            assert_eq!(r.text(), "hi Ann {'n': [1, 2.5], 'ok': True}");
        }

        #[test]
        fn factory_arguments_that_python_refuses_fail_the_import_with_the_reason() {
            // `*args` and `**kwargs` never get here: `*` is refused when the spec is parsed.
            for (call, reason) in [
                ("make('Ann', 'Bob', 'Cy')", "TypeError"),
                ("make(--1)", "malformed node"),
                ("make(1 +)", "SyntaxError"),
            ] {
                let t = TestApp::serving(FACTORY, call, super::super::super::Mode::SPAWNED);
                assert!(!t.app.is_loaded(), "{call}");
                let r = t.get("/");
                assert_eq!(r.code(), 503, "{call}");
                assert!(r.log.contains(reason), "{call}: {}", r.log);
            }
        }

        #[test]
        fn worker_threads_keep_their_thread_state_between_requests() {
            let t = Arc::new(TestApp::with(
                "import threading\nLOCAL = threading.local()\ndef app(environ, start_response):\n    LOCAL.n = getattr(LOCAL, 'n', 0) + 1\n    start_response('200 OK', [])\n    return [str(LOCAL.n).encode()]\n",
                super::super::super::Mode::socket(2, 1),
            ));
            let t2 = t.clone();
            let bodies =
                std::thread::spawn(move || (0..3).map(|_| t2.get("/").text()).collect::<Vec<_>>())
                    .join()
                    .unwrap();
            assert_eq!(
                bodies,
                ["1", "2", "3"],
                "threading.local survives between requests"
            );
        }
    }
}
