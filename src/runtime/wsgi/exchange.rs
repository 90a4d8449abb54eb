//! One response in flight (wsgi-embedding.md §3.5): the status and headers `start_response`
//! stored, the server's [`Response`] they are committed to, and the Content-Length bookkeeping
//! (never send more than the app declared; HEAD, 1xx, 204 and 304 carry no body).
//!
//! [`Exchange`] is shared by the driver (`super::response`), the app's `start_response` and
//! `write` (`super::start_response`) and the file fast path (`super::file_wrapper`); it names
//! none of them. Every body byte goes to the server inside `py.detach`, straight from the
//! `bytes` object the app produced: no copy, no interpreter lock held during I/O.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use pyo3::exceptions::{PyConnectionAbortedError, PyRuntimeError};
use pyo3::prelude::*;

use crate::runtime::server::Response;

/// The server's response writer, borrowed for one `handle` call; see [`Exchange::finish`].
struct SinkPtr(*mut (dyn Response + 'static));

// SAFETY: `dyn Response` is `Send`; the pointer is only dereferenced under the exchange mutex.
unsafe impl Send for SinkPtr {}

/// A checked status line and header list, as `start_response` stored it.
#[derive(Debug, Clone)]
pub(super) struct Head {
    /// `"200 OK"`.
    pub status: String,
    /// `200`.
    pub code: u16,
    /// Names and values as latin-1 bytes, checked (tokens; no CR, LF, NUL or controls).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The app's own Content-Length, if it sent one.
    pub content_length: Option<u64>,
}

/// What a body chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// More body may follow.
    More,
    /// No more body will be sent (Content-Length reached, or a response without a body): stop
    /// iterating.
    Done,
}

/// Why a chunk could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DeliverError {
    /// Body data before `start_response`.
    NotStarted,
    /// The server could not write: the client or the web server went away.
    ClientGone(String),
    /// The request already ended (a stored `write` used later).
    Finished,
}

/// Why [`Exchange::pump`] stopped early.
#[cfg(unix)]
#[derive(Debug)]
pub(super) enum PumpError {
    /// Sending failed.
    Deliver(DeliverError),
    /// Reading the source failed.
    Read(std::io::Error),
}

#[cfg(unix)]
impl From<DeliverError> for PumpError {
    fn from(e: DeliverError) -> PumpError {
        PumpError::Deliver(e)
    }
}

/// How much the file fast path reads per system call.
#[cfg(unix)]
const PUMP_CHUNK: usize = 256 * 1024;

/// How a complete response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Everything the app declared was sent.
    Complete,
    /// The app declared more bytes than it produced.
    Short { declared: u64, sent: u64 },
}

struct State {
    sink: Option<SinkPtr>,
    head: Option<Head>,
    called: bool,
    committed: bool,
    body_allowed: bool,
    head_request: bool,
    declared: Option<u64>,
    sent: u64,
    wrote: bool,
    overflow: bool,
    client_gone: Option<String>,
}

impl State {
    fn sink(&mut self) -> Result<&mut (dyn Response + 'static), DeliverError> {
        match &self.sink {
            // SAFETY: see `SinkPtr`: live until `Exchange::finish`, and the mutex is held.
            Some(ptr) => Ok(unsafe { &mut *ptr.0 }),
            None => Err(DeliverError::Finished),
        }
    }

    fn gone(&mut self, err: std::io::Error) -> DeliverError {
        let msg = format!("the client went away: {err}");
        self.client_gone = Some(msg.clone());
        DeliverError::ClientGone(msg)
    }

    fn commit(&mut self, add_length: Option<u64>) -> Result<(), DeliverError> {
        if let Some(msg) = &self.client_gone {
            return Err(DeliverError::ClientGone(msg.clone()));
        }
        let mut head = self.head.take().ok_or(DeliverError::NotStarted)?;
        let status_has_body = !(head.code < 200 || head.code == 204 || head.code == 304);
        self.body_allowed = status_has_body && !self.head_request;
        self.declared = head.content_length;
        if let (None, Some(n), true) = (self.declared, add_length, status_has_body) {
            head.headers
                .push((b"Content-Length".to_vec(), n.to_string().into_bytes()));
            self.declared = Some(n);
        }
        let headers: Vec<(&[u8], &[u8])> = head
            .headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let result = self.sink()?.start(&head.status, &headers);
        self.committed = true;
        result.map_err(|e| self.gone(e))
    }

    fn deliver(&mut self, chunk: &[u8]) -> Result<Flow, DeliverError> {
        if self.sink.is_none() {
            return Err(DeliverError::Finished);
        }
        if let Some(msg) = &self.client_gone {
            return Err(DeliverError::ClientGone(msg.clone()));
        }
        if !self.committed {
            self.commit(None)?;
        }
        if !self.body_allowed {
            return Ok(Flow::Done);
        }
        let mut chunk = chunk;
        if let Some(declared) = self.declared {
            let left = declared.saturating_sub(self.sent);
            if chunk.len() as u64 > left {
                chunk = &chunk[..left as usize];
                self.overflow = true;
            }
        }
        if !chunk.is_empty() {
            // The chunk that completes the declared length ends the response in the same
            // write (headers, body, end of request: one system call for small responses).
            let last = self.declared == Some(self.sent + chunk.len() as u64);
            let sink = self.sink()?;
            let written = if last {
                sink.write_final(chunk)
            } else {
                sink.write(chunk)
            };
            if let Err(e) = written {
                return Err(self.gone(e));
            }
            self.sent += chunk.len() as u64;
        }
        Ok(if self.declared == Some(self.sent) {
            Flow::Done
        } else {
            Flow::More
        })
    }

    fn finish(&mut self) -> Result<Ending, DeliverError> {
        if self.sink.is_none() {
            return Err(DeliverError::Finished);
        }
        if !self.committed {
            // Nothing was sent, so the body is empty: say so.
            self.commit(Some(0))?;
        }
        match self.declared {
            Some(declared) if self.body_allowed && self.sent < declared => Ok(Ending::Short {
                declared,
                sent: self.sent,
            }),
            _ => Ok(Ending::Complete),
        }
    }

    /// Replaces whatever the app started with a complete gateway response (500, 503...).
    fn replace(&mut self, status: &str, body: &[u8]) -> Result<(), DeliverError> {
        if self.committed {
            return Err(DeliverError::Finished);
        }
        self.head = Some(Head {
            status: status.to_owned(),
            code: status.get(..3).and_then(|c| c.parse().ok()).unwrap_or(500),
            headers: vec![(
                b"Content-Type".to_vec(),
                b"text/plain; charset=utf-8".to_vec(),
            )],
            content_length: None,
        });
        self.commit(Some(body.len() as u64))?;
        if self.body_allowed {
            self.deliver(body)?;
        }
        Ok(())
    }
}

/// One response in flight, shared by the driver and the app's `start_response`/`write`.
///
/// Locking rule (as for `wsgi.input`): while attached, `try_lock` only; I/O happens inside
/// `py.detach` with the lock held.
pub(super) struct Exchange {
    state: Mutex<State>,
}

impl Exchange {
    /// A response to `response`.
    ///
    /// # Safety
    /// The caller must call [`Exchange::finish`] before the borrow of `response` ends.
    pub(super) unsafe fn new(response: &mut dyn Response, head_request: bool) -> Exchange {
        let ptr: *mut (dyn Response + '_) = response;
        // SAFETY: lifetime erasure only; `finish` clears the pointer before the borrow ends.
        let ptr: *mut (dyn Response + 'static) = unsafe { std::mem::transmute(ptr) };
        Exchange {
            state: Mutex::new(State {
                sink: Some(SinkPtr(ptr)),
                head: None,
                called: false,
                committed: false,
                body_allowed: !head_request,
                head_request,
                declared: None,
                sent: 0,
                wrote: false,
                overflow: false,
                client_gone: None,
            }),
        }
    }

    fn try_state(&self) -> PyResult<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(st) => Ok(st),
            Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
            Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(
                "the response is being written by another thread",
            )),
        }
    }

    /// Runs `f` on the state with the interpreter released (for anything that may do I/O).
    fn detached<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut State) -> R + Send) -> R {
        py.detach(|| f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner)))
    }

    /// `(start_response called, headers sent)`.
    pub(super) fn progress(&self) -> PyResult<(bool, bool)> {
        let st = self.try_state()?;
        Ok((st.called, st.committed))
    }

    pub(super) fn set_head(&self, head: Head) -> PyResult<()> {
        let mut st = self.try_state()?;
        st.head = Some(head);
        st.called = true;
        Ok(())
    }

    pub(super) fn mark_write(&self) -> PyResult<()> {
        self.try_state()?.wrote = true;
        Ok(())
    }

    /// Commits the headers if needed and sends `chunk`, clipped to the declared length.
    pub(super) fn deliver(&self, py: Python<'_>, chunk: &[u8]) -> Result<Flow, DeliverError> {
        self.detached(py, |st| st.deliver(chunk))
    }

    /// Commits the headers with `Content-Length: len(chunk)` added unless the app declared
    /// one, then sends `chunk`: the `len() == 1` fast path.
    pub(super) fn deliver_whole(&self, py: Python<'_>, chunk: &[u8]) -> Result<Flow, DeliverError> {
        self.detached(py, |st| {
            if !st.committed && st.client_gone.is_none() && st.sink.is_some() {
                st.commit(Some(chunk.len() as u64))?;
            }
            st.deliver(chunk)
        })
    }

    /// Whether the `len() == 1` fast path may add a Content-Length: no `write()` so far and no
    /// Content-Length from the app.
    pub(super) fn may_add_length(&self) -> PyResult<bool> {
        let st = self.try_state()?;
        Ok(!st.wrote
            && !st.committed
            && st.head.as_ref().is_some_and(|h| h.content_length.is_none()))
    }

    /// Streams from `read` (called with the interpreter released, the lock held) until it
    /// returns 0 or the declared length is reached, then ends the response: the file fast path.
    /// `add_length` is the Content-Length to add if the app declared none. Unix only: the
    /// fast path reads a file descriptor (`pread`); elsewhere files go through `read()`.
    #[cfg(unix)]
    pub(super) fn pump(
        &self,
        py: Python<'_>,
        add_length: Option<u64>,
        mut read: impl FnMut(&mut [u8]) -> std::io::Result<usize> + Send,
    ) -> Result<Ending, PumpError> {
        self.detached(py, |st| {
            if !st.committed && st.sink.is_some() && st.client_gone.is_none() {
                st.commit(add_length)?;
            }
            let mut buf = vec![0u8; PUMP_CHUNK];
            loop {
                let want = match st.declared {
                    Some(d) if st.body_allowed => buf
                        .len()
                        .min(usize::try_from(d.saturating_sub(st.sent)).unwrap_or(usize::MAX)),
                    _ => buf.len(),
                };
                if want == 0 || !st.body_allowed {
                    break;
                }
                let n = read(&mut buf[..want]).map_err(PumpError::Read)?;
                if n == 0 || st.deliver(&buf[..n])? == Flow::Done {
                    break;
                }
            }
            Ok(st.finish()?)
        })
    }

    /// The end of the iterable: commits empty responses, reports a short body.
    pub(super) fn end(&self, py: Python<'_>) -> Result<Ending, DeliverError> {
        // Usually the headers are out and ending is bookkeeping: no need to release the
        // interpreter. Committing an empty response does I/O, so that path detaches.
        if let Ok(mut st) = self.state.try_lock() {
            if st.committed || st.sink.is_none() {
                return st.finish();
            }
        }
        self.detached(py, State::finish)
    }

    pub(super) fn replace(
        &self,
        py: Python<'_>,
        status: &str,
        body: &[u8],
    ) -> Result<(), DeliverError> {
        self.detached(py, |st| st.replace(status, body))
    }

    /// `(headers sent, why the client went away, body clipped at Content-Length)`. Only
    /// bookkeeping, so read while attached unless an I/O holder must be waited for.
    pub(super) fn snapshot(&self, py: Python<'_>) -> (bool, Option<String>, bool) {
        let read = |st: &mut State| (st.committed, st.client_gone.clone(), st.overflow);
        match self.state.try_lock() {
            Ok(mut st) => read(&mut st),
            Err(TryLockError::Poisoned(p)) => read(&mut p.into_inner()),
            Err(TryLockError::WouldBlock) => self.detached(py, read),
        }
    }

    /// Detaches from the server's response: later `write()` calls raise.
    pub(super) fn finish(&self, py: Python<'_>) {
        match self.state.try_lock() {
            Ok(mut st) => st.sink = None,
            Err(TryLockError::Poisoned(p)) => p.into_inner().sink = None,
            Err(TryLockError::WouldBlock) => self.detached(py, |st| st.sink = None),
        }
    }
}

/// Turns a delivery problem into the exception the app (or the driver) sees.
pub(super) fn deliver_err(err: DeliverError) -> PyErr {
    match err {
        DeliverError::NotStarted => PyRuntimeError::new_err(
            "the application produced body data before calling start_response()",
        ),
        DeliverError::ClientGone(msg) => PyConnectionAbortedError::new_err(msg),
        DeliverError::Finished => PyRuntimeError::new_err("the request already finished"),
    }
}
