//! `wsgi.input`: the request body as a Python file-like object, pulled from the connection on
//! demand with the interpreter lock released while it waits.
//!
//! Semantics follow `io.BufferedReader` (wsgi-embedding.md §3.3): `read()`/`read(n)`,
//! `readline()`/`readline(n)` keeping the newline, `readlines(hint)`, iteration by line. The
//! stream ends after `CONTENT_LENGTH` bytes or, without one, at the end of STDIN; a body that
//! ends early raises `ConnectionError` rather than looking short.
//!
//! Locking rule: while attached, the state lock is only `try_lock`ed (contention means two
//! threads read one input: `RuntimeError`); blocking reads happen inside `py.detach` with the
//! lock held, so no thread ever waits for this lock while holding the interpreter.

use std::io;
use std::sync::{Mutex, MutexGuard, TryLockError};

use pyo3::exceptions::{PyConnectionError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::runtime::server::Body;

/// How much one refill of the line buffer asks the body for.
const CHUNK: usize = 64 * 1024;
/// The largest single `read()` result built in place from a declared length; beyond it (a
/// client announcing gigabytes) the body is read incrementally so the allocation follows what
/// actually arrives.
const PREALLOC_LIMIT: u64 = 256 * 1024 * 1024;

/// The server's body reader, borrowed for the duration of one `handle` call.
///
/// The lifetime is erased because a pyclass must be `'static`; [`WsgiInput::finish`] clears it
/// before `handle` returns (the driver guarantees this on every path), so it is never used
/// after the borrow ends.
struct BodyPtr(*mut (dyn Body + 'static));

// SAFETY: `dyn Body` is `Send`; the pointer is only dereferenced under the state mutex.
unsafe impl Send for BodyPtr {}

struct InputState {
    body: Option<BodyPtr>,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes still to pull from the body; `None` reads until the body reports its end.
    remaining: Option<u64>,
    declared: Option<u64>,
    received: u64,
    eof: bool,
    failure: Option<String>,
}

impl InputState {
    fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    fn body(&mut self) -> io::Result<&mut (dyn Body + 'static)> {
        match &self.body {
            // SAFETY: see `BodyPtr`: the pointer is live until `finish` clears it, and we hold
            // the state mutex, so no other reference to the body exists.
            Some(ptr) => Ok(unsafe { &mut *ptr.0 }),
            None => Err(io::Error::other("the request has finished")),
        }
    }

    /// Reads from the body into `out`, honouring the declared length. `Ok(0)` = end of body.
    fn pull(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.eof || out.is_empty() {
            return Ok(0);
        }
        if let Some(msg) = &self.failure {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                msg.clone(),
            ));
        }
        let want = match self.remaining {
            Some(r) => out.len().min(usize::try_from(r).unwrap_or(usize::MAX)),
            None => out.len(),
        };
        let result = loop {
            match self.body()?.read(&mut out[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match result {
            Ok(0) => {
                if let Some(r) = self.remaining.filter(|&r| r > 0) {
                    let msg = format!(
                        "the client closed the request body after {} of the {} bytes its \
                         Content-Length announced ({r} missing)",
                        self.received,
                        self.declared.unwrap_or(0),
                    );
                    self.failure = Some(msg.clone());
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
                }
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                // A reader claiming more than it was given breaks `Read`'s contract; never
                // index past the buffer because of it.
                let n = n.min(want);
                self.received += n as u64;
                if let Some(r) = &mut self.remaining {
                    *r -= n as u64;
                    if *r == 0 {
                        self.eof = true;
                    }
                }
                Ok(n)
            }
            Err(e) => {
                let msg = format!("reading the request body failed: {e}");
                self.failure = Some(msg.clone());
                Err(io::Error::new(e.kind(), msg))
            }
        }
    }

    /// Appends up to [`CHUNK`] bytes to the buffer. `Ok(0)` = end of body.
    fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + CHUNK, 0);
        let mut tail = std::mem::take(&mut self.buf);
        let result = self.pull(&mut tail[len..]);
        self.buf = tail;
        let n = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        result
    }

    /// Fills `out` completely from the body, or fails.
    fn pull_exact(&mut self, mut out: &mut [u8]) -> io::Result<()> {
        while !out.is_empty() {
            let n = self.pull(out)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the request body ended early",
                ));
            }
            out = &mut out[n..];
        }
        Ok(())
    }

    /// Appends body bytes to `out` until it holds `limit` bytes or the body ends.
    fn pull_into_vec(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<()> {
        while out.len() < limit && !self.eof {
            let len = out.len();
            let step = (limit - len).min(CHUNK.max(len.min(8 * CHUNK)));
            out.resize(len + step, 0);
            let n = match self.pull(&mut out[len..]) {
                Ok(n) => n,
                Err(e) => {
                    out.truncate(len);
                    return Err(e);
                }
            };
            out.truncate(len + n);
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Bytes that can still be returned: buffered plus not yet pulled, if a length was declared.
    fn bound(&self) -> Option<u64> {
        self.remaining.map(|r| r + self.available().len() as u64)
    }
}

/// `wsgi.input` for one request.
#[pyclass(frozen, module = "iiswsgi", name = "WsgiInput")]
pub(super) struct WsgiInput {
    state: Mutex<InputState>,
}

fn io_to_py(err: io::Error) -> PyErr {
    PyConnectionError::new_err(err.to_string())
}

impl WsgiInput {
    /// A stream over `body`, ending after `content_length` bytes if given.
    ///
    /// # Safety
    /// The caller must call [`WsgiInput::finish`] before the borrow of `body` ends.
    pub(super) unsafe fn new(body: &mut dyn Body, content_length: Option<u64>) -> WsgiInput {
        let ptr: *mut (dyn Body + '_) = body;
        // SAFETY: lifetime erasure only; the caller promises `finish` runs before the borrow
        // ends, after which the pointer is never dereferenced.
        let ptr: *mut (dyn Body + 'static) = unsafe { std::mem::transmute(ptr) };
        WsgiInput {
            state: Mutex::new(InputState {
                body: Some(BodyPtr(ptr)),
                buf: Vec::new(),
                pos: 0,
                remaining: content_length,
                declared: content_length,
                received: 0,
                eof: content_length == Some(0),
                failure: None,
            }),
        }
    }

    /// Detaches the stream from the body: later reads raise `ValueError`.
    pub(super) fn finish(&self, py: Python<'_>) {
        match self.state.try_lock() {
            Ok(mut st) => st.body = None,
            Err(TryLockError::Poisoned(p)) => p.into_inner().body = None,
            // Another Python thread is inside a detached read of this body: wait for it
            // without holding the interpreter.
            Err(TryLockError::WouldBlock) => py.detach(|| {
                self.state.lock().unwrap_or_else(|p| p.into_inner()).body = None;
            }),
        }
    }

    fn lock(&self) -> PyResult<MutexGuard<'_, InputState>> {
        let st = match self.state.try_lock() {
            Ok(st) => st,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return Err(PyRuntimeError::new_err(
                    "wsgi.input is being read by another thread",
                ));
            }
        };
        if st.body.is_none() {
            return Err(PyValueError::new_err(
                "wsgi.input belongs to a request that has finished",
            ));
        }
        Ok(st)
    }

    fn take<'py>(py: Python<'py>, st: &mut InputState, n: usize) -> Bound<'py, PyBytes> {
        let out = PyBytes::new(py, &st.available()[..n]);
        st.consume(n);
        out
    }

    fn read_all<'py>(py: Python<'py>, st: &mut InputState) -> PyResult<Bound<'py, PyBytes>> {
        match st.bound().filter(|&b| b <= PREALLOC_LIMIT) {
            Some(total) => Self::read_exact(py, st, total as usize),
            None => {
                let mut out = st.available().to_vec();
                st.consume(out.len());
                py.detach(|| st.pull_into_vec(&mut out, usize::MAX))
                    .map_err(io_to_py)?;
                Ok(PyBytes::new(py, &out))
            }
        }
    }

    /// `n` bytes, all of which the declared length promises: built in place, one copy.
    fn read_exact<'py>(
        py: Python<'py>,
        st: &mut InputState,
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let have = st.available().len().min(n);
        if have == n {
            return Ok(Self::take(py, st, n));
        }
        PyBytes::new_with(py, n, |out| {
            out[..have].copy_from_slice(&st.available()[..have]);
            st.consume(have);
            let rest = &mut out[have..];
            py.detach(|| st.pull_exact(rest)).map_err(io_to_py)
        })
    }

    fn read_line<'py>(
        py: Python<'py>,
        st: &mut InputState,
        limit: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut scanned = 0;
        loop {
            let (window, newline) = {
                let avail = st.available();
                let window = avail.len().min(limit);
                (
                    window,
                    avail[scanned..window].iter().position(|&b| b == b'\n'),
                )
            };
            if let Some(i) = newline {
                return Ok(Self::take(py, st, scanned + i + 1));
            }
            if window == limit || st.eof {
                return Ok(Self::take(py, st, window));
            }
            scanned = window;
            if py.detach(|| st.fill()).map_err(io_to_py)? == 0 {
                let n = st.available().len().min(limit);
                return Ok(Self::take(py, st, n));
            }
        }
    }
}

/// `None` or a negative number mean "no limit".
fn limit_of(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

#[pymethods]
impl WsgiInput {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let mut st = self.lock()?;
        let Some(n) = limit_of(size) else {
            return Self::read_all(py, &mut st);
        };
        let avail = st.available().len();
        if n <= avail {
            return Ok(Self::take(py, &mut st, n));
        }
        if st.eof {
            return Ok(Self::take(py, &mut st, avail));
        }
        match st.bound() {
            Some(bound) if (n as u64).min(bound) <= PREALLOC_LIMIT => {
                let n = (n as u64).min(bound) as usize;
                Self::read_exact(py, &mut st, n)
            }
            _ => {
                let mut out = st.available().to_vec();
                st.consume(out.len());
                let st = &mut *st;
                py.detach(|| st.pull_into_vec(&mut out, n))
                    .map_err(io_to_py)?;
                Ok(PyBytes::new(py, &out))
            }
        }
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let mut st = self.lock()?;
        Self::read_line(py, &mut st, limit_of(size).unwrap_or(usize::MAX))
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let mut st = self.lock()?;
        let hint = limit_of(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = Self::read_line(py, &mut st, usize::MAX)?;
            let len = line.as_bytes().len();
            if len == 0 {
                break;
            }
            lines.append(line)?;
            total += len;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut st = self.lock()?;
        let line = Self::read_line(py, &mut st, usize::MAX)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }

    fn readable(&self) -> bool {
        true
    }

    fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Req, TestApp};

    /// Each path runs a script of reads on `wsgi.input` and returns their results as a repr.
    const APPS: &str = r#"
import hashlib
def app(environ, start_response):
    i = environ["wsgi.input"]
    p = environ["PATH_INFO"]
    out = []
    try:
        if p == "/read":
            out = [i.read()]
        elif p == "/read-none-neg":
            out = [i.read(None), i.read(-1)]
        elif p == "/split":
            out = [i.read(10), i.read()]
        elif p == "/loop7":
            chunks = []
            while True:
                c = i.read(7)
                if not c:
                    break
                chunks.append(c)
            out = [b"".join(chunks), max(len(c) for c in chunks) if chunks else 0]
        elif p == "/zero":
            out = [i.read(0), i.read(3)]
        elif p == "/after-eof":
            out = [i.read(), i.read(), i.read(5), i.readline(), i.readline(), list(i)]
        elif p == "/lines":
            out = [i.readline(), i.readline(), i.readline(), i.readline()]
        elif p == "/line5":
            out = [i.readline(5), i.readline(5), i.readline(5), i.readline(5)]
        elif p == "/readlines":
            out = i.readlines()
        elif p == "/readlines1":
            out = [i.readlines(1), i.read()]
        elif p == "/iter":
            out = [line for line in i]
        elif p == "/mixed":
            out = [i.readline(), i.read(2), i.readline(), i.read()]
        elif p == "/sha":
            h = hashlib.sha256()
            n = 0
            while True:
                c = i.read(65536)
                if not c:
                    break
                h.update(c)
                n += len(c)
            out = [n, h.hexdigest()]
        elif p == "/shape":
            out = [hasattr(i, m) for m in ("read", "readline", "readlines", "__iter__")]
            e = environ["wsgi.errors"]
            out += [hasattr(e, m) for m in ("write", "writelines", "flush")]
        elif p == "/keep":
            import builtins
            builtins._kept_input = i
            out = [i.read(1)]
        elif p == "/stale":
            import builtins
            out = [builtins._kept_input.read()]
    except Exception as e:
        out.append("%s: %s" % (type(e).__name__, e))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(out).encode()]
"#;

    fn run(path: &str, body: &[u8]) -> String {
        TestApp::new(APPS).call(Req::post(path, body)).text()
    }

    #[test]
    fn read_returns_the_whole_body_and_empty_when_there_is_none() {
        assert_eq!(run("/read", b"hello world"), "[b'hello world']");
        assert_eq!(TestApp::new(APPS).get("/read").text(), "[b'']");
    }

    #[test]
    fn read_none_and_negative_mean_everything() {
        assert_eq!(run("/read-none-neg", b"abc"), "[b'abc', b'']");
    }

    #[test]
    fn read_n_splits_exactly_and_a_loop_reassembles_the_body() {
        assert_eq!(
            run("/split", b"0123456789abcdef"),
            "[b'0123456789', b'abcdef']"
        );
        let body: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
        let expected = format!("[b'{}', 7]", String::from_utf8(body.clone()).unwrap());
        assert_eq!(run("/loop7", &body), expected);
    }

    #[test]
    fn read_zero_consumes_nothing() {
        assert_eq!(run("/zero", b"abcdef"), "[b'', b'abc']");
    }

    #[test]
    fn past_the_end_every_read_is_empty() {
        assert_eq!(
            run("/after-eof", b"x\n"),
            "[b'x\\n', b'', b'', b'', b'', []]"
        );
    }

    #[test]
    fn readline_keeps_newlines_and_returns_a_last_line_as_is() {
        assert_eq!(
            run("/lines", b"a\nb\nc\n"),
            "[b'a\\n', b'b\\n', b'c\\n', b'']"
        );
        assert_eq!(run("/lines", b"a\nlast"), "[b'a\\n', b'last', b'', b'']");
    }

    #[test]
    fn readline_with_a_limit_leaves_the_rest_buffered() {
        assert_eq!(
            run("/line5", b"abcdefghijklm"),
            "[b'abcde', b'fghij', b'klm', b'']"
        );
        assert_eq!(
            run("/line5", b"ab\ncdefgh"),
            "[b'ab\\n', b'cdefg', b'h', b'']"
        );
    }

    #[test]
    fn readlines_honours_the_hint_and_iteration_yields_lines() {
        assert_eq!(run("/readlines", b"a\nb\nc"), "[b'a\\n', b'b\\n', b'c']");
        assert_eq!(run("/readlines1", b"a\nb\n"), "[[b'a\\n'], b'b\\n']");
        assert_eq!(run("/iter", b"x\ny\n"), "[b'x\\n', b'y\\n']");
    }

    #[test]
    fn mixed_reads_share_one_buffer() {
        assert_eq!(
            run("/mixed", b"l1\nxyl2\nrest"),
            "[b'l1\\n', b'xy', b'l2\\n', b'rest']"
        );
    }

    #[test]
    fn body_arriving_in_small_pieces_reads_the_same() {
        let t = TestApp::new(APPS);
        for step in [1, 2, 3, 7] {
            let r = t.call(Req {
                step: Some(step),
                ..Req::post("/line5", b"ab\ncdefgh")
            });
            assert_eq!(r.text(), "[b'ab\\n', b'cdefg', b'h', b'']", "step {step}");
            let r = t.call(Req {
                step: Some(step),
                ..Req::post("/mixed", b"l1\nxyl2\nrest")
            });
            assert_eq!(
                r.text(),
                "[b'l1\\n', b'xy', b'l2\\n', b'rest']",
                "step {step}"
            );
        }
    }

    #[test]
    fn ten_megabytes_in_ten_kilobyte_pieces_hash_correctly() {
        let body: Vec<u8> = (0..10 * 1024 * 1024u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let r = TestApp::new(APPS).call(Req {
            step: Some(10_000),
            ..Req::post("/sha", &body)
        });
        let sha = Python::attach(|py| -> PyResult<String> {
            let h = py
                .import("hashlib")?
                .call_method1("sha256", (PyBytes::new(py, &body),))?;
            h.call_method0("hexdigest")?.extract()
        })
        .unwrap();
        assert_eq!(r.text(), format!("[{}, '{sha}']", body.len()));
    }

    #[test]
    fn chunked_upload_without_length_reads_to_the_end() {
        let r = TestApp::new(APPS).call(Req {
            no_length: true,
            step: Some(3),
            ..Req::post("/read", b"chunked body")
        });
        assert_eq!(r.text(), "[b'chunked body']");
    }

    #[test]
    fn body_ending_before_its_length_raises_connection_error() {
        let r = TestApp::new(APPS).call(Req {
            body_end: Some(4),
            ..Req::post("/read", b"0123456789")
        });
        assert!(r.text().contains("ConnectionError"), "{}", r.text());
        assert!(r.text().contains("after 4 of the 10 bytes"), "{}", r.text());
    }

    #[test]
    fn input_and_errors_have_the_pep_3333_methods() {
        assert_eq!(
            TestApp::new(APPS).get("/shape").text(),
            "[True, True, True, True, True, True, True]"
        );
    }

    #[test]
    fn input_kept_past_its_request_refuses_to_read() {
        let t = TestApp::new(APPS);
        assert_eq!(t.call(Req::post("/keep", b"ab")).text(), "[b'a']");
        let stale = t.call(Req::post("/stale", b"cd")).text();
        assert!(
            stale.contains("ValueError") && stale.contains("finished"),
            "{stale}"
        );
    }

    use pyo3::prelude::*;
    use pyo3::types::PyBytes;
}
