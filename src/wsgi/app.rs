//! The WSGI app as the server sees it: an [`Application`] that imports `module:callable` once,
//! answers 503 while an import keeps failing (retrying with backoff rather than crash-looping
//! into IIS's rapid-fail lockout), and asks the process to exit after reload, `SystemExit` or
//! `--max-requests`.
//!
//! The exit request is a flag plus an optional waker ([`WsgiApp::on_exit_request`]) so a server
//! idling between requests can exit without waiting for one more request.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::environ::{self, EnvironTemplate};
use super::errors::{
    IdSource, RequestId, RequestScope, exception_name, format_exception, type_name,
};
use super::interpreter;
use super::response::{self, Context, Served};
use super::{AppSpec, Level, LogSink, Record};
use crate::server::{Application, Body, Outcome, Request, Response};

/// Why the process should exit once the current request is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// A watched file changed (its path relative to the app directory).
    Reload(String),
    /// `--max-requests` / `instanceMaxRequests` was reached.
    MaxRequests(u64),
    /// The app raised `SystemExit`.
    SystemExit,
}

/// A one-shot "please exit" shared by the request path and the reload watcher thread.
pub(super) struct ExitSignal {
    requested: AtomicBool,
    reason: Mutex<Option<ExitReason>>,
    waker: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl ExitSignal {
    pub(super) fn new() -> ExitSignal {
        ExitSignal {
            requested: AtomicBool::new(false),
            reason: Mutex::new(None),
            waker: Mutex::new(None),
        }
    }

    /// Records the first request to exit and wakes the server; `true` if this call was first.
    pub(super) fn request(&self, reason: ExitReason) -> bool {
        if self.requested.swap(true, Ordering::SeqCst) {
            return false;
        }
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
        if let Some(wake) = &*self.waker.lock().unwrap_or_else(PoisonError::into_inner) {
            wake();
        }
        true
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    fn reason(&self) -> Option<ExitReason> {
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
    ids: IdSource,
    handled: AtomicU64,
    max_requests: Option<u64>,
    exit: Arc<ExitSignal>,
}

impl WsgiApp {
    /// Imports the app now (on the calling thread, which should be the main one); a failure is
    /// logged and leaves the app answering 503 until a retry succeeds.
    pub(super) fn load(
        py: Python<'_>,
        spec: AppSpec,
        template: EnvironTemplate,
        log: Arc<dyn LogSink>,
        max_requests: Option<u64>,
        exit: Arc<ExitSignal>,
    ) -> WsgiApp {
        let app = WsgiApp {
            spec,
            callable: OnceLock::new(),
            failure: Mutex::new(None),
            template,
            log,
            ids: IdSource::new(),
            handled: AtomicU64::new(0),
            max_requests,
            exit,
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

    /// How many requests this app has handled.
    pub fn requests_handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Why the process should exit, once something asked it to.
    pub fn exit_requested(&self) -> Option<ExitReason> {
        if self.exit.requested() {
            self.exit.reason()
        } else {
            None
        }
    }

    /// Registers `wake`, called once (from any thread, never attached to Python) when something
    /// asks the process to exit: a server idling between requests uses it to stop accepting and
    /// exit 0. Called immediately if an exit was already requested.
    pub fn on_exit_request(&self, wake: impl Fn() + Send + Sync + 'static) {
        let mut slot = self
            .exit
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.exit.requested() {
            wake();
        }
        *slot = Some(Box::new(wake));
    }

    fn log(&self, level: Level, request: Option<RequestId>, message: &str) {
        self.log.log(&Record {
            level,
            request,
            message,
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
                self.log(Level::Info, None, &format!("imported {}{how}", self.spec));
                *failure = None;
            }
            Err(err) => {
                let retry = backoff(attempt);
                self.log(
                    Level::Error,
                    None,
                    &format!(
                        "importing {} failed (attempt {attempt}); answering 503 and retrying in \
                         {} s\n{}",
                        self.spec,
                        retry.as_secs(),
                        format_exception(py, &err)
                    ),
                );
                *failure = Some(ImportFailure {
                    reason: exception_name(py, &err),
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

    fn serve(
        &self,
        id: RequestId,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Served {
        let target = || environ::log_target(&request.params);
        let cgi = match environ::assemble(&request.params) {
            Ok(cgi) => cgi,
            Err(err) => {
                self.log(Level::Warn, Some(id), &format!("{}: 400: {err}", target()));
                let outcome = plain(
                    response,
                    "400 Bad Request",
                    &[],
                    &format!("Bad Request: {err}\n"),
                    false,
                );
                return Served {
                    outcome,
                    exit: false,
                };
            }
        };
        interpreter::pin_thread();
        Python::attach(|py| match self.callable(py) {
            Ok(app) => {
                let ctx = Context {
                    template: &self.template,
                    log: &*self.log,
                    id,
                    target: &target,
                };
                response::serve(py, &ctx, &app, &cgi, body, response)
            }
            Err(unavailable) => {
                let secs = unavailable.retry_after.as_secs().max(1).to_string();
                let page = format!(
                    "Service Unavailable\n\n{}; the server retries on its own.\nError id: {id}.\n",
                    unavailable.reason
                );
                self.log(
                    Level::Warn,
                    Some(id),
                    &format!("{}: 503: {}", target(), unavailable.reason),
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
        let id = self.ids.next();
        let _scope = RequestScope::enter(id);
        let served = catch_unwind(AssertUnwindSafe(|| self.serve(id, request, body, response)))
            .unwrap_or_else(|_| {
                self.log(
                    Level::Error,
                    Some(id),
                    &format!(
                        "{}: internal error (panic) in the WSGI bridge",
                        environ::log_target(&request.params)
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
        let n = self.handled.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(max) = self.max_requests.filter(|&m| n >= m) {
            if self.exit.request(ExitReason::MaxRequests(max)) {
                self.log(
                    Level::Info,
                    None,
                    &format!("served {n} requests (--max-requests {max}); exiting"),
                );
            }
        }
        match served.outcome {
            Outcome::Complete if self.exit.requested() => Outcome::Exit,
            other => other,
        }
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
    let mut headers = vec![
        (
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        ),
        ("Content-Length".to_owned(), body.len().to_string()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let sent = response.start(status, &headers).and_then(|()| {
        if head {
            Ok(())
        } else {
            response.write(body.as_bytes())
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
        obj = obj.call0()?;
    }
    if !obj.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "{spec} is not callable (it is a {})",
            type_name(&obj)
        )));
    }
    Ok(obj.unbind())
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
        *signal.waker.lock().unwrap() = Some(Box::new(move || {
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
        fn max_requests_asks_to_exit_on_the_nth_request_and_wakes_the_server() {
            let t = TestApp::with(COUNTER, super::super::super::Mode::SPAWNED, Some(3));
            let woken = Arc::new(AtomicU64::new(0));
            let w = woken.clone();
            t.app.on_exit_request(move || {
                w.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(t.get("/").outcome, Outcome::Complete);
            assert_eq!(t.get("/").outcome, Outcome::Complete);
            assert_eq!(t.get("/").outcome, Outcome::Exit);
            assert_eq!(t.app.exit_requested(), Some(ExitReason::MaxRequests(3)));
            assert_eq!(woken.load(Ordering::SeqCst), 1);
            assert_eq!(t.app.requests_handled(), 3);
        }

        #[test]
        fn worker_threads_keep_their_thread_state_between_requests() {
            let t = Arc::new(TestApp::with(
                "import threading\nLOCAL = threading.local()\ndef app(environ, start_response):\n    LOCAL.n = getattr(LOCAL, 'n', 0) + 1\n    start_response('200 OK', [])\n    return [str(LOCAL.n).encode()]\n",
                super::super::super::Mode::socket(2, 1),
                None,
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
