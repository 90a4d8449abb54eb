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
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::gc::PyVisit;
use pyo3::intern;
use pyo3::prelude::*;

use super::response::{Ending, Exchange, PumpError, deliver_err};

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
