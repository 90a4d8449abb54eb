//! Where Python's text goes: `wsgi.errors`, `sys.stdout` and `sys.stderr` into the gateway log,
//! and full exception chains into one log record.
//!
//! Nothing here writes to a file descriptor: records go to the [`LogSink`] the caller plugged in
//! (under IIS, stdout/stderr are invalid handles and any FCGI_STDERR byte becomes a 500). The
//! server tags every record a request thread logs with that request's id, so the lines an app
//! prints carry it too.

use std::sync::{Arc, Mutex, PoisonError};

use log::Level;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use super::{LogSink, Record};

/// A text stream whose lines become log records: `wsgi.errors`, `sys.stdout`, `sys.stderr`.
///
/// Line-buffered; `flush()` emits a partial line. `bytes` is refused (`TypeError`), as
/// `wsgiref.validate` demands of `wsgi.errors`.
#[pyclass(frozen, module = "iiswsgi", name = "LogStream")]
pub(super) struct LogStream {
    level: Level,
    name: &'static str,
    sink: Arc<dyn LogSink>,
    pending: Mutex<String>,
}

impl LogStream {
    /// `wsgi.errors`: what the app writes there are its own log lines (Flask's logger writes
    /// every record there during a request), so they are logged at INFO, like `print()`,
    /// never as the server's warnings; the app's text carries its own level.
    pub(super) fn wsgi_errors(sink: Arc<dyn LogSink>) -> LogStream {
        LogStream::new(Level::Info, "wsgi.errors", sink)
    }

    pub(super) fn new(level: Level, name: &'static str, sink: Arc<dyn LogSink>) -> LogStream {
        LogStream {
            level,
            name,
            sink,
            pending: Mutex::new(String::new()),
        }
    }

    fn emit(&self, line: &str) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        self.sink.log(&Record {
            level: self.level,
            message: line,
            from_app: true,
        });
    }

    fn push(&self, text: &str) {
        // Held only while attached and never across a call back into Python, so it cannot be
        // contended under the GIL.
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() && !text.contains('\n') {
            pending.push_str(text);
            return;
        }
        pending.push_str(text);
        while let Some(nl) = pending.find('\n') {
            self.emit(&pending[..nl]);
            pending.drain(..=nl);
        }
    }
}

#[pymethods]
impl LogStream {
    fn write(&self, text: &Bound<'_, PyAny>) -> PyResult<usize> {
        let text = text.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be str, not {}",
                type_name(text)
            ))
        })?;
        let s = text.to_string_lossy();
        self.push(&s);
        Ok(s.chars().count())
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            self.write(&line?)?;
        }
        Ok(())
    }

    fn flush(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if !pending.is_empty() {
            self.emit(&pending);
            pending.clear();
        }
    }

    fn close(&self) {
        self.flush();
    }

    fn isatty(&self) -> bool {
        false
    }

    fn readable(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        true
    }

    fn seekable(&self) -> bool {
        false
    }

    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        let unsupported = py.import("io")?.getattr("UnsupportedOperation")?;
        Err(PyErr::from_type(
            unsupported.cast_into()?,
            "the iiswsgi log stream has no file descriptor",
        ))
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    #[getter]
    fn errors(&self) -> &'static str {
        "backslashreplace"
    }

    #[getter]
    fn closed(&self) -> bool {
        false
    }

    #[getter]
    fn line_buffering(&self) -> bool {
        true
    }

    #[getter]
    fn mode(&self) -> &'static str {
        "w"
    }

    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }

    fn __repr__(&self) -> String {
        format!("<iiswsgi log stream {}>", self.name)
    }
}

/// `type(obj).__name__`, for messages.
pub(super) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The whole chain (`__cause__`, `__context__`, groups) as `traceback.format_exception` prints
/// it: `PyTraceback::format` would show only the top exception.
pub(super) fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let value = err.value(py);
        let tb = match err.traceback(py) {
            Some(tb) => tb.into_any(),
            None => py.None().into_bound(py),
        };
        let lines = py
            .import("traceback")?
            .call_method1("format_exception", (value.get_type(), value, tb))?;
        let lines = lines.cast::<PyList>()?;
        let mut out = String::new();
        for line in lines.iter() {
            out.push_str(&line.cast::<PyString>()?.to_string_lossy());
        }
        Ok(out.trim_end().to_string())
    })();
    formatted.unwrap_or_else(|_| short_exception(py, err))
}

/// `Type: message`, one line, for the short reason of a log line.
pub(super) fn short_exception(py: Python<'_>, err: &PyErr) -> String {
    let name = exception_name(py, err);
    let msg = err.value(py).to_string();
    if msg.is_empty() {
        name
    } else {
        format!("{name}: {msg}")
    }
}

/// The exception's class name (`ModuleNotFoundError`).
pub(super) fn exception_name(py: Python<'_>, err: &PyErr) -> String {
    err.get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into())
}

#[cfg(test)]
mod tests {
    mod streams {
        use super::super::super::testing::{Req, TestApp, process_log};

        const APP: &str = r#"
import sys
def app(environ, start_response):
    p = environ["PATH_INFO"]
    out = []
    if p == "/errors":
        environ["wsgi.errors"].write("msg from the app\n")
        environ["wsgi.errors"].writelines(["two ", "parts\n"])
        environ["wsgi.errors"].flush()
        try:
            environ["wsgi.errors"].write(b"x")
        except TypeError as e:
            out.append("TypeError")
    if p == "/print":
        print("printed line", flush=True)
        print("to stderr", file=sys.stderr)
        out.append(sys.stdin.read())
        out.append(sys.stdout.isatty())
        try:
            sys.stdout.fileno()
        except Exception as e:
            out.append(type(e).__name__)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(out).encode()]
"#;

        #[test]
        fn wsgi_errors_lines_reach_the_log_as_the_apps_own_and_bytes_are_refused() {
            let t = TestApp::new(APP);
            let r = t.get("/errors");
            assert_eq!(r.text(), "['TypeError']");
            let line = r
                .log
                .lines()
                .find(|l| l.contains("msg from the app"))
                .unwrap();
            assert!(
                line.starts_with("INFO "),
                "the app's own line, not a warning: {line}"
            );
            assert!(r.log.contains("two parts"), "{}", r.log);
            assert_eq!(t.get("/errors").code(), 200, "next request unaffected");
        }

        #[test]
        fn print_goes_to_the_log_and_stdin_is_empty() {
            let r = TestApp::new(APP).call(Req::get("/print"));
            assert_eq!(r.text(), "['', False, 'UnsupportedOperation']");
            let log = process_log().text();
            assert!(log.contains("INFO printed line"), "{log}");
            assert!(log.contains("WARN to stderr"), "{log}");
            assert!(log.contains("to stderr"), "{log}");
        }
    }
}
