//! Test support for the bridge's unit tests: one interpreter per test process (started under a
//! `Once`, never finalised), apps compiled from source strings, and an in-process harness that
//! feeds a request and a byte-slice body through [`crate::runtime::server::Application`] into a
//! recording response.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};

use pyo3::prelude::*;
use pyo3::types::PyModule;

use super::app::{ExitSignal, WsgiApp};
use super::environ::{BaseEntries, EnvironTemplate};
use super::errors::LogStream;
use super::{AppSpec, LogSink, Mode, Record, interpreter};
use crate::runtime::environ::{EnvironOptions, normalise};
use crate::runtime::server::{Application, Outcome, Request, Response};
use log::Level;

/// Records everything logged, for assertions.
#[derive(Default)]
pub(crate) struct CaptureLog {
    records: Mutex<Vec<(Level, String)>>,
}

impl LogSink for CaptureLog {
    fn log(&self, record: &Record<'_>) {
        self.records
            .lock()
            .unwrap()
            .push((record.level, record.message.to_owned()));
    }
}

impl CaptureLog {
    /// All records joined, one per line.
    pub(crate) fn text(&self) -> String {
        let records = self.records.lock().unwrap();
        records.iter().map(|(l, m)| format!("{l} {m}\n")).collect()
    }
}

/// `sys.stdout`/`sys.stderr` of the shared test interpreter.
pub(crate) fn process_log() -> &'static CaptureLog {
    static LOG: std::sync::OnceLock<Arc<CaptureLog>> = std::sync::OnceLock::new();
    LOG.get_or_init(|| Arc::new(CaptureLog::default()))
}

struct Forward;

impl LogSink for Forward {
    fn log(&self, record: &Record<'_>) {
        process_log().log(record);
    }
}

/// Starts the shared interpreter (base environment) once per test process.
pub(crate) fn python() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let env = super::environment(None).expect("base environment");
        // Never finalised: other tests keep attaching until the process exits.
        let _interp = interpreter::initialize(&env).expect("Python starts");
        Python::attach(|py| {
            let log: Arc<dyn LogSink> = Arc::new(Forward);
            super::redirect_streams(py, &log).expect("streams");
        });
    });
}

/// A WSGI app compiled from `code`, which must define `app`.
pub(crate) struct TestApp {
    pub app: WsgiApp,
    pub log: Arc<CaptureLog>,
}

static MODULES: AtomicUsize = AtomicUsize::new(0);

impl TestApp {
    pub(crate) fn new(code: &str) -> TestApp {
        TestApp::with(code, Mode::SPAWNED)
    }

    pub(crate) fn with(code: &str, mode: Mode) -> TestApp {
        TestApp::serving(code, "app", mode)
    }

    /// A WSGI app compiled from `code`, served as `<module>:<callable>` (a factory call, say).
    pub(crate) fn serving(code: &str, callable: &str, mode: Mode) -> TestApp {
        python();
        let name = format!(
            "iiswsgi_test_app_{}",
            MODULES.fetch_add(1, Ordering::SeqCst)
        );
        let log = Arc::new(CaptureLog::default());
        let app = Python::attach(|py| {
            let code = std::ffi::CString::new(code).unwrap();
            let cname = std::ffi::CString::new(name.clone()).unwrap();
            let file = std::ffi::CString::new(format!("{name}.py")).unwrap();
            PyModule::from_code(py, &code, &file, &cname).expect("test app compiles");
            TestApp::load(py, &format!("{name}:{callable}"), mode, log.clone())
        });
        TestApp { app, log }
    }

    /// An app whose module does not exist (yet): the import fails.
    pub(crate) fn missing(module: &str) -> TestApp {
        python();
        let log = Arc::new(CaptureLog::default());
        let app = Python::attach(|py| {
            TestApp::load(py, &format!("{module}:app"), Mode::SPAWNED, log.clone())
        });
        TestApp { app, log }
    }

    fn load(py: Python<'_>, target: &str, mode: Mode, log: Arc<CaptureLog>) -> WsgiApp {
        let sink: Arc<dyn LogSink> = log;
        let errors = Bound::new(py, LogStream::wsgi_errors(sink.clone())).unwrap();
        let template = EnvironTemplate::new(
            py,
            BaseEntries {
                errors: errors.into_any(),
                file_wrapper: py.get_type::<super::file_wrapper::FileWrapper>().into_any(),
                multithread: mode.multithread,
                multiprocess: mode.multiprocess,
                server_software: "iiswsgi-test",
            },
        )
        .unwrap();
        let spec: AppSpec = target.parse().unwrap();
        WsgiApp::load(py, spec, template, sink, Arc::new(ExitSignal::new()), true)
    }

    pub(crate) fn get(&self, path: &str) -> Reply {
        self.call(Req::get(path))
    }

    /// Runs one request the way the server does: its environ rules first (a rejected request
    /// gets the server's 400 and never reaches the app), then the app.
    pub(crate) fn call(&self, req: Req) -> Reply {
        static LOG_IDS: AtomicU64 = AtomicU64::new(1);
        let mut response = Recorder {
            fail_after: req.client_reads,
            ..Recorder::default()
        };
        let mut body = SlowBody {
            data: req.body.clone(),
            pos: 0,
            step: req.step,
            end: req.body_end,
        };
        let raw = req.params();
        let outcome = match normalise(&raw, &EnvironOptions::default()) {
            Err(e) => {
                response.status = Some(e.status().to_owned());
                Outcome::Complete
            }
            Ok(env) => {
                let request = Request {
                    id: 1,
                    params: env.params,
                    raw_params: raw,
                    url_scheme: env.url_scheme,
                    content_length: env.content_length,
                    mode: env.mode,
                    transport: "test",
                    single_connection: true,
                    log_id: LOG_IDS.fetch_add(1, Ordering::Relaxed),
                };
                self.app.handle(&request, &mut body, &mut response)
            }
        };
        Reply {
            status: response.status,
            headers: response.headers,
            body: response.body,
            starts: response.starts,
            finals: response.finals,
            outcome,
            log: self.log.text(),
        }
    }
}

/// A request to feed the harness.
#[derive(Clone, Default)]
pub(crate) struct Req {
    pub method: String,
    pub script_name: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Hand the body out at most this many bytes per read.
    pub step: Option<usize>,
    /// The body ends (EOF) after this many bytes, whatever CONTENT_LENGTH says.
    pub body_end: Option<usize>,
    /// The response "client" accepts this many body bytes, then fails like a closed socket.
    pub client_reads: Option<usize>,
    /// Omit CONTENT_LENGTH even with a body (a chunked upload).
    pub no_length: bool,
}

impl Req {
    pub(crate) fn get(path: &str) -> Req {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        Req {
            method: "GET".into(),
            path: path.into(),
            query: query.into(),
            ..Req::default()
        }
    }

    pub(crate) fn post(path: &str, body: &[u8]) -> Req {
        Req {
            method: "POST".into(),
            body: body.to_vec(),
            ..Req::get(path)
        }
    }

    pub(crate) fn method(mut self, method: &str) -> Req {
        self.method = method.into();
        self
    }

    pub(crate) fn header(mut self, name: &str, value: &[u8]) -> Req {
        self.headers.push((name.into(), value.to_vec()));
        self
    }

    fn params(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut p: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"REQUEST_METHOD".to_vec(), self.method.clone().into_bytes()),
            (
                b"SCRIPT_NAME".to_vec(),
                self.script_name.clone().into_bytes(),
            ),
            (b"PATH_INFO".to_vec(), self.path.clone().into_bytes()),
            (b"QUERY_STRING".to_vec(), self.query.clone().into_bytes()),
            (
                b"REQUEST_URI".to_vec(),
                format!("{}{}", self.script_name, self.path).into_bytes(),
            ),
            (b"SERVER_NAME".to_vec(), b"localhost".to_vec()),
            (b"SERVER_PORT".to_vec(), b"8080".to_vec()),
            (b"SERVER_PROTOCOL".to_vec(), b"HTTP/1.1".to_vec()),
            (b"REMOTE_ADDR".to_vec(), b"127.0.0.1".to_vec()),
        ];
        if !self.body.is_empty() && !self.no_length {
            p.push((
                b"CONTENT_LENGTH".to_vec(),
                self.body.len().to_string().into_bytes(),
            ));
        }
        for (n, v) in &self.headers {
            let name = if n.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                n.clone()
            } else {
                format!("HTTP_{}", n.to_ascii_uppercase().replace('-', "_"))
            };
            p.push((name.into_bytes(), v.clone()));
        }
        p
    }
}

/// A body that hands out data in steps and may end early.
struct SlowBody {
    data: Vec<u8>,
    pos: usize,
    step: Option<usize>,
    end: Option<usize>,
}

impl io::Read for SlowBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = self.end.unwrap_or(self.data.len()).min(self.data.len());
        let n = buf
            .len()
            .min(end - self.pos)
            .min(self.step.unwrap_or(usize::MAX));
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A response writer that records what the bridge sent.
#[derive(Default)]
struct Recorder {
    status: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    starts: usize,
    finals: usize,
    sent: bool,
    ended: bool,
    fail_after: Option<usize>,
}

impl Recorder {
    fn send(&mut self, chunk: &[u8]) -> io::Result<()> {
        assert!(!self.ended, "write after write_final");
        assert!(self.status.is_some(), "body before start");
        if let Some(limit) = self.fail_after {
            if self.body.len() + chunk.len() > limit {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "client closed"));
            }
        }
        self.sent = true;
        self.body.extend_from_slice(chunk);
        Ok(())
    }
}

impl Response for Recorder {
    fn start(&mut self, status: &str, headers: &[(&[u8], &[u8])]) -> io::Result<()> {
        assert!(!self.sent, "start after the headers went out");
        self.starts += 1;
        self.status = Some(status.to_owned());
        let latin1 = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
        self.headers = headers
            .iter()
            .map(|(n, v)| (latin1(n), latin1(v)))
            .collect();
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.send(chunk)
    }

    fn write_final(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.send(chunk)?;
        self.finals += 1;
        self.ended = true;
        Ok(())
    }

    fn headers_sent(&self) -> bool {
        self.sent
    }
}

/// What the harness observed.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub starts: usize,
    /// How many times the response was ended with `write_final`.
    pub finals: usize,
    pub outcome: Outcome,
    /// The app's log so far (all requests).
    pub log: String,
}

impl Reply {
    pub(crate) fn code(&self) -> u16 {
        self.status
            .as_deref()
            .and_then(|s| s.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
