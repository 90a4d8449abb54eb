//! `wsgi.file_wrapper`: an iterable over a file-like object, and the fast path that sends a real
//! file with positional reads and the interpreter released (wsgi-embedding.md §3.6).
//!
//! The fast path applies only when the app returns the wrapper itself (middleware that wraps
//! the iterable hides it), `fileno()` works and the descriptor is a regular file. It starts at
//! `tell()` (PEP 3333: the file may have been partly read), stops at end of file or at the app's
//! Content-Length, and never takes ownership of the descriptor. Everything else — `BytesIO`,
//! pipes, sockets — goes through `read(blksize)` like any iterable.

use std::sync::{Mutex, PoisonError};

use pyo3::PyTraverseError;
#[cfg(unix)]
use pyo3::exceptions::PyOSError;
use pyo3::exceptions::PyValueError;
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;

use super::exchange::{Ending, Exchange};
#[cfg(unix)]
use super::exchange::{PumpError, deliver_err};

/// `environ["wsgi.file_wrapper"]`.
#[pyclass(frozen, module = "iiswsgi", name = "FileWrapper")]
pub(super) struct FileWrapper {
    filelike: Mutex<Option<Py<PyAny>>>,
    blksize: usize,
}

impl FileWrapper {
    /// The wrapped object; `None` after a GC clear.
    fn filelike<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        // Never held while Python code runs, so no other attached thread can be waiting on it.
        let guard = self.filelike.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().map(|f| f.bind(py).clone())
    }
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=8192))]
    fn new(filelike: Py<PyAny>, blksize: isize) -> PyResult<FileWrapper> {
        let blksize = usize::try_from(blksize)
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| PyValueError::new_err("blksize must be a positive integer"))?;
        Ok(FileWrapper {
            filelike: Mutex::new(Some(filelike)),
            blksize,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(filelike) = self.filelike(py) else {
            return Ok(None);
        };
        let data = filelike.call_method1(intern!(py, "read"), (self.blksize,))?;
        Ok(if data.is_truthy()? { Some(data) } else { None })
    }

    /// Closes the wrapped object if it has a `close()`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(filelike) = self.filelike(py) {
            if let Some(close) = filelike.getattr_opt(intern!(py, "close"))? {
                close.call0()?;
            }
        }
        Ok(())
    }

    #[getter(filelike)]
    fn get_filelike<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.filelike(py)
    }

    #[getter(blksize)]
    fn get_blksize(&self) -> usize {
        self.blksize
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(guard) = self.filelike.try_lock() {
            if let Some(f) = guard.as_ref() {
                visit.call(f)?;
            }
        }
        Ok(())
    }

    fn __clear__(&self) {
        if let Ok(mut guard) = self.filelike.try_lock() {
            guard.take();
        }
    }
}

/// Sends `iterable` through the fast path if it is a `FileWrapper` over a regular file.
/// `Ok(None)` means "not applicable, iterate normally"; nothing was sent then.
#[cfg(unix)]
pub(super) fn send_fast(
    py: Python<'_>,
    iterable: &Bound<'_, PyAny>,
    exchange: &Exchange,
) -> PyResult<Option<Ending>> {
    use std::fs::File;
    use std::mem::ManuallyDrop;
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::FileExt;

    let Ok(wrapper) = iterable.cast_exact::<FileWrapper>() else {
        return Ok(None);
    };
    let Some(filelike) = wrapper.get().filelike(py) else {
        return Ok(None);
    };
    let Ok(fd) = filelike
        .call_method0(intern!(py, "fileno"))
        .and_then(|f| f.extract::<i32>())
    else {
        return Ok(None);
    };
    if fd < 0 {
        return Ok(None);
    }
    // SAFETY: borrowing the descriptor the app's file object owns; `ManuallyDrop` ensures we
    // never close it. The file object stays alive (we hold `iterable`) until `close()`.
    let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let size = match file.metadata() {
        Ok(meta) if meta.is_file() => meta.len(),
        _ => return Ok(None),
    };
    let Ok(start) = filelike
        .call_method0(intern!(py, "tell"))
        .and_then(|t| t.extract::<u64>())
    else {
        return Ok(None);
    };
    let add_length = if exchange.may_add_length()? {
        Some(size.saturating_sub(start))
    } else {
        None
    };
    let file: &File = &file;
    let mut offset = start;
    let sent = exchange.pump(py, add_length, move |buf| {
        let n = file.read_at(buf, offset)?;
        offset += n as u64;
        Ok(n)
    });
    match sent {
        Ok(ending) => Ok(Some(ending)),
        Err(PumpError::Deliver(e)) => Err(deliver_err(e)),
        Err(PumpError::Read(e)) => Err(PyOSError::new_err(format!("reading the file failed: {e}"))),
    }
}

/// Windows: no fast path yet (it would go through `msvcrt.get_osfhandle`); iterate normally.
#[cfg(not(unix))]
pub(super) fn send_fast(
    _py: Python<'_>,
    _iterable: &Bound<'_, PyAny>,
    _exchange: &Exchange,
) -> PyResult<Option<Ending>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{Req, TestApp};
    use crate::runtime::server::Outcome;

    const APP: &str = r#"
import io, os
STATE = {"closed": []}

class Tracked(io.FileIO):
    def close(self):
        STATE["closed"].append(self.name)
        super().close()

class RawOnly(io.RawIOBase):
    def __init__(self, data):
        self.data, self.pos, self.sizes = data, 0, []
    def readable(self):
        return True
    def read(self, n=-1):
        self.sizes.append(n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

def app(environ, start_response):
    p = environ["PATH_INFO"]
    q = environ["QUERY_STRING"]
    fw = environ["wsgi.file_wrapper"]
    if p == "/state":
        start_response("200 OK", [])
        return [repr(STATE["closed"]).encode()]
    if p == "/file":
        f = Tracked(q, "r")
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return fw(f)
    if p == "/after-readline":
        f = open(q, "rb")
        f.readline()
        start_response("200 OK", [])
        return fw(f, 100)
    if p == "/short-cl":
        start_response("200 OK", [("Content-Length", "10")])
        return fw(open(q, "rb"))
    if p == "/long-cl":
        start_response("200 OK", [("Content-Length", str(os.path.getsize(q) + 5))])
        return fw(open(q, "rb"))
    if p == "/bytesio":
        start_response("200 OK", [])
        return fw(io.BytesIO(b"0123456789" * 300), 1000)
    if p == "/raw":
        raw = RawOnly(b"abcdefghij" * 10)
        start_response("200 OK", [])
        STATE["raw"] = raw
        return fw(raw, 33)
    if p == "/raw-sizes":
        start_response("200 OK", [])
        return [repr(STATE["raw"].sizes).encode()]
    if p == "/head":
        start_response("200 OK", [])
        return fw(open(q, "rb"))
"#;

    fn fixture() -> (tempfile::TempDir, String, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2700u32).map(|i| (i % 251) as u8).collect();
        let mut data = data;
        data[10] = b'\n';
        let path = dir.path().join("f.bin");
        std::fs::write(&path, &data).unwrap();
        (dir, path.display().to_string(), data)
    }

    #[test]
    fn real_file_is_sent_exactly_with_a_length_and_closed() {
        let (_dir, path, data) = fixture();
        let t = TestApp::new(APP);
        let r = t.get(&format!("/file?{path}"));
        assert_eq!(r.body, data);
        assert_eq!(r.header("Content-Length"), Some("2700"));
        assert_eq!(t.get("/state").text(), format!("['{path}']"));
    }

    #[test]
    fn partly_read_file_sends_only_the_remainder() {
        let (_dir, path, data) = fixture();
        let r = TestApp::new(APP).get(&format!("/after-readline?{path}"));
        assert_eq!(r.body, &data[11..]);
    }

    #[test]
    fn app_content_length_bounds_the_file() {
        let (_dir, path, data) = fixture();
        let t = TestApp::new(APP);
        let short = t.get(&format!("/short-cl?{path}"));
        assert_eq!(short.body, &data[..10]);
        assert_eq!(short.outcome, Outcome::Complete);
        let long = t.get(&format!("/long-cl?{path}"));
        assert_eq!(long.body, data);
        assert_eq!(long.outcome, Outcome::Aborted);
        assert!(
            long.log
                .contains("declared Content-Length 2705 but sent 2700"),
            "{}",
            long.log
        );
    }

    #[test]
    fn non_file_objects_go_through_read_with_blksize() {
        let t = TestApp::new(APP);
        assert_eq!(t.get("/bytesio").body, b"0123456789".repeat(300));
        assert_eq!(t.get("/raw").body, b"abcdefghij".repeat(10));
        assert!(t.get("/raw-sizes").text().starts_with("[33, 33, 33, 33"));
    }

    #[test]
    fn head_with_a_file_sends_headers_only() {
        let (_dir, path, _) = fixture();
        let r = TestApp::new(APP).call(Req::get(&format!("/head?{path}")).method("HEAD"));
        assert_eq!(r.header("Content-Length"), Some("2700"));
        assert!(r.body.is_empty());
    }
}
