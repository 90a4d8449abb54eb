//! Calling the app and sending what it returns: the WSGI hot path (wsgi-embedding.md §3.5).
//!
//! [`Exchange`] is one response in flight: the status and headers `start_response` stored, the
//! server's [`Response`] they are committed to, and the Content-Length bookkeeping (never send
//! more than the app declared; HEAD, 1xx, 204 and 304 carry no body). [`serve`] calls the app,
//! takes the `len() == 1` and `FileWrapper` fast paths or iterates, and always calls `close()`
//! exactly once.
//!
//! Every body byte goes to the server inside `py.detach`, straight from the `bytes` object the
//! app produced: no copy, no interpreter lock held during I/O.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use pyo3::exceptions::{PyConnectionAbortedError, PyRuntimeError, PySystemExit, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::environ::{CgiEnviron, EnvironTemplate};
use super::errors::{format_exception, type_name};
use super::file_wrapper;
use super::input::WsgiInput;
use super::start_response::StartResponse;
use super::{LogSink, Record};
use crate::runtime::server::{Body, Outcome, Response};
use log::Level;

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
    fn end(&self, py: Python<'_>) -> Result<Ending, DeliverError> {
        // Usually the headers are out and ending is bookkeeping: no need to release the
        // interpreter. Committing an empty response does I/O, so that path detaches.
        if let Ok(mut st) = self.state.try_lock() {
            if st.committed || st.sink.is_none() {
                return st.finish();
            }
        }
        self.detached(py, State::finish)
    }

    fn replace(&self, py: Python<'_>, status: &str, body: &[u8]) -> Result<(), DeliverError> {
        self.detached(py, |st| st.replace(status, body))
    }

    /// `(headers sent, why the client went away, body clipped at Content-Length)`. Only
    /// bookkeeping, so read while attached unless an I/O holder must be waited for.
    fn snapshot(&self, py: Python<'_>) -> (bool, Option<String>, bool) {
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

/// Everything [`serve`] needs besides the request itself.
pub(super) struct Context<'a> {
    pub template: &'a EnvironTemplate,
    pub log: &'a dyn LogSink,
    /// The server's id for this request, shown on error pages and in log lines.
    pub error_id: crate::runtime::logging::ErrorId,
    /// `METHOD /path`, computed only when a line is logged.
    pub target: &'a dyn Fn() -> String,
}

/// What `serve` wants the caller to know beyond the [`Outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Served {
    pub outcome: Outcome,
    /// The app raised `SystemExit`: exit once this response is done.
    pub exit: bool,
}

/// Clears the raw borrows of the request's body and response on every path out of [`serve`].
struct Scope<'py> {
    py: Python<'py>,
    exchange: Arc<Exchange>,
    input: Option<Bound<'py, WsgiInput>>,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.exchange.finish(self.py);
        if let Some(input) = &self.input {
            input.get().finish(self.py);
        }
    }
}

/// Calls the app for one request and sends its response.
pub(super) fn serve(
    py: Python<'_>,
    ctx: &Context<'_>,
    app: &Bound<'_, PyAny>,
    cgi: &CgiEnviron<'_>,
    body: &mut dyn Body,
    response: &mut dyn Response,
) -> Served {
    // SAFETY: `scope` below calls `finish` on both before this function returns or unwinds.
    let exchange = Arc::new(unsafe { Exchange::new(response, cgi.head) });
    let mut scope = Scope {
        py,
        exchange: exchange.clone(),
        input: None,
    };
    // SAFETY: as above; the input is finished by `scope`.
    let input = Bound::new(py, unsafe { WsgiInput::new(body, cgi.content_length) });
    let result = input.and_then(|input| {
        scope.input = Some(input.clone());
        let environ = ctx.template.build(py, cgi, input.into_any())?;
        let start_response = Bound::new(py, StartResponse::new(exchange.clone()))?;
        app.call1((environ, start_response))
    });
    let served = match result {
        Err(err) => failed(py, ctx, &exchange, err),
        Ok(iterable) => {
            let driven = drive(py, &iterable, &exchange);
            let closed = close(py, &iterable);
            match (driven, closed) {
                (Err(err), closed) => {
                    let served = failed(py, ctx, &exchange, err);
                    if let Err(close_err) = closed {
                        log_exception(py, ctx, "close() raised", &close_err);
                    }
                    served
                }
                (Ok(ending), Err(close_err)) => {
                    // The response is final; a failing close() is only logged (§3.5.6).
                    log_exception(py, ctx, "close() raised after the response", &close_err);
                    ended(ctx, &exchange, py, ending)
                }
                (Ok(ending), Ok(())) => ended(ctx, &exchange, py, ending),
            }
        }
    };
    drop(scope);
    served
}

/// Logs `METHOD /path (error id X): what` for this request.
fn note(ctx: &Context<'_>, level: Level, what: &str) {
    let message = format!("{} (error id {}): {what}", (ctx.target)(), ctx.error_id);
    ctx.log.log(&Record {
        level,
        message: &message,
        from_app: false,
    });
}

fn ended(ctx: &Context<'_>, exchange: &Exchange, py: Python<'_>, ending: Ending) -> Served {
    let (_, _, overflow) = exchange.snapshot(py);
    if overflow {
        note(
            ctx,
            Level::Warn,
            "the app produced more body than its Content-Length; the excess was dropped",
        );
    }
    match ending {
        Ending::Complete => Served {
            outcome: Outcome::Complete,
            exit: false,
        },
        Ending::Short { declared, sent } => {
            note(
                ctx,
                Level::Error,
                &format!(
                    "the app declared Content-Length {declared} but sent {sent} bytes; the \
                     response is incomplete"
                ),
            );
            Served {
                outcome: Outcome::Aborted,
                exit: false,
            }
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

/// As [`deliver_err`], for the end of the iterable.
fn end_err(err: DeliverError) -> PyErr {
    match err {
        DeliverError::NotStarted => {
            PyRuntimeError::new_err("the application returned without calling start_response()")
        }
        other => deliver_err(other),
    }
}

fn as_chunk<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().map_err(|_| {
        PyTypeError::new_err(format!(
            "the application's iterable yielded {}, not bytes",
            type_name(item)
        ))
    })
}

/// Sends the iterable's items. `close()` is the caller's job.
fn drive(py: Python<'_>, iterable: &Bound<'_, PyAny>, exchange: &Exchange) -> PyResult<Ending> {
    if iterable.is_instance_of::<PyString>() || iterable.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "the application returned {} instead of an iterable of bytes",
            type_name(iterable)
        )));
    }
    if let Some(sent) = file_wrapper::send_fast(py, iterable, exchange)? {
        return Ok(sent);
    }
    let len = if let Ok(list) = iterable.cast_exact::<PyList>() {
        Some(list.len())
    } else if let Ok(tuple) = iterable.cast_exact::<PyTuple>() {
        Some(tuple.len())
    } else {
        match iterable.len() {
            Ok(n) => Some(n),
            Err(e) if e.is_instance_of::<PyTypeError>(py) => None,
            Err(e) => return Err(e),
        }
    };
    let mut rest = None;
    match len {
        Some(0) => {}
        Some(1) => {
            let (item, iter) = if let Ok(list) = iterable.cast_exact::<PyList>() {
                (Some(list.get_item(0)?), None)
            } else if let Ok(tuple) = iterable.cast_exact::<PyTuple>() {
                (Some(tuple.get_item(0)?), None)
            } else {
                let mut iter = iterable.try_iter()?;
                (iter.next().transpose()?, Some(iter))
            };
            rest = iter;
            if let Some(item) = item {
                let chunk = as_chunk(&item)?;
                let flow = if exchange.may_add_length()? {
                    exchange.deliver_whole(py, chunk.as_bytes())
                } else if chunk.as_bytes().is_empty() {
                    Ok(Flow::More)
                } else {
                    exchange.deliver(py, chunk.as_bytes())
                };
                if flow.map_err(deliver_err)? == Flow::Done {
                    return exchange.end(py).map_err(end_err);
                }
            }
            if rest.is_none() {
                return exchange.end(py).map_err(end_err);
            }
        }
        Some(_) | None => rest = Some(iterable.try_iter()?),
    }
    if let Some(iter) = rest {
        for item in iter {
            let item = item?;
            let chunk = as_chunk(&item)?;
            if chunk.as_bytes().is_empty() {
                continue;
            }
            if exchange
                .deliver(py, chunk.as_bytes())
                .map_err(deliver_err)?
                == Flow::Done
            {
                break;
            }
        }
    }
    exchange.end(py).map_err(end_err)
}

/// Calls `iterable.close()` if it has one. Exact lists and tuples have none; skipping the
/// lookup saves raising and discarding an `AttributeError` on the commonest responses.
fn close(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    if iterable.is_exact_instance_of::<PyList>() || iterable.is_exact_instance_of::<PyTuple>() {
        return Ok(());
    }
    match iterable.getattr_opt(intern!(py, "close"))? {
        Some(close) => close.call0().map(drop),
        None => Ok(()),
    }
}

fn log_exception(py: Python<'_>, ctx: &Context<'_>, what: &str, err: &PyErr) {
    note(
        ctx,
        Level::Error,
        &format!("{what}\n{}", format_exception(py, err)),
    );
}

/// The generic page a client sees for an app failure; the id points at the log.
pub(super) fn error_page(error_id: crate::runtime::logging::ErrorId) -> String {
    format!(
        "Internal Server Error\n\nThe application failed while handling this request.\n\
         Error id: {error_id} (the server log has the details).\n"
    )
}

/// Handles an exception from the app, its iterable or the header commit.
fn failed(py: Python<'_>, ctx: &Context<'_>, exchange: &Exchange, err: PyErr) -> Served {
    let (committed, client_gone, _) = exchange.snapshot(py);
    if let Some(reason) = client_gone {
        note(ctx, Level::Info, &format!("response abandoned: {reason}"));
        return Served {
            outcome: Outcome::Aborted,
            exit: false,
        };
    }
    let exit = err.is_instance_of::<PySystemExit>(py);
    let what = if exit {
        "the application raised SystemExit; the process exits after this response"
    } else if committed {
        "unhandled exception after the headers were sent; the response is truncated"
    } else {
        "unhandled exception; answered 500"
    };
    log_exception(py, ctx, what, &err);
    if committed {
        return Served {
            outcome: Outcome::Aborted,
            exit,
        };
    }
    match exchange.replace(
        py,
        "500 Internal Server Error",
        error_page(ctx.error_id).as_bytes(),
    ) {
        Ok(()) => Served {
            outcome: Outcome::Complete,
            exit,
        },
        Err(_) => Served {
            outcome: Outcome::Aborted,
            exit,
        },
    }
}
#[cfg(test)]
mod tests {
    use super::super::testing::{Req, TestApp};
    use crate::runtime::server::Outcome;

    /// Apps routed by PATH_INFO; `STATE` records close() calls and generator clean-up.
    const APPS: &str = r#"
import sys
STATE = {"closed": 0, "finally": 0}

class Closing:
    def __init__(self, items):
        self.items = items
    def __iter__(self):
        return iter(self.items)
    def close(self):
        STATE["closed"] += 1

def gen(items, fail_after=None, exc=None):
    try:
        for i, item in enumerate(items):
            if fail_after is not None and i == fail_after:
                raise exc or ValueError("boom in generator")
            yield item
        if fail_after is not None and fail_after >= len(items):
            raise exc or ValueError("boom at end")
    finally:
        STATE["finally"] += 1

def ok(start_response, headers=None):
    return start_response("200 OK", [("Content-Type", "text/plain")] + (headers or []))

def app(environ, start_response):
    p = environ["PATH_INFO"]
    if p == "/state":
        body = "%(closed)d %(finally)d" % STATE
        ok(start_response)
        return [body.encode()]
    if p == "/list":
        ok(start_response); return [b"a", b"b", b"c"]
    if p == "/tuple":
        ok(start_response); return (b"a", b"b")
    if p == "/gen100":
        ok(start_response); return gen([b"x%d," % i for i in range(100)])
    if p == "/empty-list":
        ok(start_response); return []
    if p == "/empty-gen":
        ok(start_response); return gen([])
    if p == "/closing":
        ok(start_response); return Closing([b"one", b"two"])
    if p == "/one":
        ok(start_response); return [b"single"]
    if p == "/one-gen-len":
        ok(start_response); return Closing([b"sized"])
    if p == "/raise-before":
        try:
            raise KeyError("inner cause")
        except KeyError as e:
            raise RuntimeError("outer failure") from e
    if p == "/raise-in-gen-first":
        ok(start_response); return gen([b"never"], fail_after=0)
    if p == "/raise-after-yield":
        ok(start_response); return gen([b"before-", b"after"], fail_after=1)
    if p == "/str-first":
        ok(start_response); return ["text"]
    if p == "/str-later":
        ok(start_response); return gen([b"first", "second"])
    if p == "/return-bytes":
        ok(start_response); return b"x"
    if p == "/return-str":
        ok(start_response); return "x"
    if p == "/system-exit":
        raise SystemExit(3)
    if p == "/slow":
        ok(start_response); return gen([b"x" * 1000 for _ in range(50)])
    if p == "/cl-exact":
        ok(start_response, [("Content-Length", "6")]); return [b"ab", b"cdef"]
    if p == "/cl-short":
        ok(start_response, [("Content-Length", "5")]); return gen([b"0123456789", b"0123456789"])
    if p == "/cl-short-write":
        w = ok(start_response, [("Content-Length", "5")]); w(b"0123456789"); w(b"more"); return []
    if p == "/cl-long":
        ok(start_response, [("Content-Length", "100")]); return gen([b"only this"])
    if p == "/cl-abc":
        ok(start_response, [("Content-Length", "abc")]); return [b"x"]
    if p == "/cl-two":
        ok(start_response, [("Content-Length", "1"), ("Content-Length", "2")]); return [b"x"]
    if p == "/cl-dup":
        ok(start_response, [("Content-Length", "1"), ("Content-Length", "1")]); return [b"x"]
    if p == "/head":
        ok(start_response); return Closing([b"body bytes"])
    if p == "/head-gen":
        ok(start_response); return gen([b"", b"abc", b"def"])
    if p == "/204":
        start_response("204 No Content", []); return [b"must not be sent"]
    if p == "/304":
        start_response("304 Not Modified", [("ETag", '"x"')]); return gen([b"nope"])
    if p == "/lazy":
        def lazy():
            start_response("201 Created", [("Content-Type", "text/plain")])
            yield b"made"
        return lazy()
    if p == "/lazy-empty-first":
        def lazy():
            yield b""
            start_response("202 Accepted", [])
            yield b"ok"
        return lazy()
    if p == "/write-then-iter":
        w = ok(start_response); w(b"via-write-"); return [b"via-iter"]
    if p == "/write-interleaved":
        w = ok(start_response)
        def g():
            w(b"1"); yield b"2"; w(b"3"); yield b"4"
        return g()
    if p == "/write-str":
        w = ok(start_response); w("str"); return []
    if p == "/no-start":
        return [b"orphan"]
    if p == "/no-start-empty":
        return []
    if p == "/big":
        ok(start_response); return [b"z" * (1 << 20)]
    return [b"unrouted"]
"#;

    fn apps() -> TestApp {
        TestApp::new(APPS)
    }

    fn state(t: &TestApp) -> (u32, u32) {
        let text = t.get("/state").text();
        let mut it = text.split(' ').map(|n| n.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    }

    mod iterables {
        use super::*;

        #[test]
        fn list_tuple_and_generator_items_arrive_in_order() {
            let t = apps();
            assert_eq!(t.get("/list").body, b"abc");
            assert_eq!(t.get("/tuple").body, b"ab");
            let generated = t.get("/gen100");
            let expected: String = (0..100).map(|i| format!("x{i},")).collect();
            assert_eq!(generated.text(), expected);
            assert_eq!(generated.header("Content-Length"), None);
        }

        #[test]
        fn empty_list_and_empty_generator_give_an_empty_200_with_length_zero() {
            let t = apps();
            for path in ["/empty-list", "/empty-gen"] {
                let r = t.get(path);
                assert_eq!(r.code(), 200, "{path}");
                assert!(r.body.is_empty(), "{path}");
                assert_eq!(r.header("Content-Length"), Some("0"), "{path}");
                assert_eq!(r.outcome, Outcome::Complete);
            }
        }

        #[test]
        fn single_item_list_gets_content_length_and_multi_item_list_does_not() {
            let t = apps();
            let one = t.get("/one");
            assert_eq!(one.header("Content-Length"), Some("6"));
            assert_eq!(one.body, b"single");
            assert_eq!(one.starts, 1);
            assert_eq!(one.finals, 1, "headers, body and end in one write");
            assert_eq!(t.get("/list").header("Content-Length"), None);
        }

        #[test]
        fn sized_custom_iterable_of_one_takes_the_fast_path_and_is_closed() {
            let t = apps();
            let before = state(&t).0;
            let r = t.get("/one-gen-len");
            assert_eq!(
                r.header("Content-Length"),
                None,
                "no __len__ on Closing: general path"
            );
            assert_eq!(r.body, b"sized");
            assert_eq!(state(&t).0, before + 1);
        }

        #[test]
        fn custom_iterable_is_closed_exactly_once_and_generator_finally_runs() {
            let t = apps();
            let (closed, fin) = state(&t);
            assert_eq!(t.get("/closing").body, b"onetwo");
            assert_eq!(t.get("/gen100").code(), 200);
            assert_eq!(state(&t), (closed + 1, fin + 1));
        }

        #[test]
        fn one_megabyte_single_chunk_arrives_intact() {
            let r = apps().get("/big");
            assert_eq!(r.body.len(), 1 << 20);
            assert!(r.body.iter().all(|&b| b == b'z'));
            assert_eq!(r.header("Content-Length"), Some("1048576"));
        }
    }

    mod errors {
        use super::*;

        #[test]
        fn exception_before_headers_is_a_500_with_an_id_and_the_full_chain_logged() {
            let t = apps();
            let r = t.get("/raise-before");
            assert_eq!(r.code(), 500);
            assert_eq!(r.outcome, Outcome::Complete);
            assert_eq!(r.starts, 1, "only the 500 went out");
            let page = r.text();
            let id = page
                .split("Error id: ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            assert!(
                !page.contains("outer failure"),
                "no traceback on the page: {page}"
            );
            assert!(
                r.log
                    .contains(&format!("GET /raise-before (error id {id})")),
                "{}",
                r.log
            );
            assert!(r.log.contains("KeyError: 'inner cause'"), "{}", r.log);
            assert!(r.log.contains("RuntimeError: outer failure"), "{}", r.log);
            assert!(r.log.contains("direct cause"), "{}", r.log);
        }

        #[test]
        fn exception_in_the_first_next_is_a_500_and_the_generator_is_finalised() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.get("/raise-in-gen-first");
            assert_eq!(r.code(), 500);
            assert_eq!(state(&t).1, fin + 1);
        }

        #[test]
        fn exception_after_output_aborts_with_the_partial_body() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.get("/raise-after-yield");
            assert_eq!(r.code(), 200);
            assert_eq!(r.body, b"before-");
            assert_eq!(r.outcome, Outcome::Aborted);
            assert!(r.log.contains("after the headers were sent"), "{}", r.log);
            assert!(r.log.contains("boom in generator"), "{}", r.log);
            assert_eq!(state(&t).1, fin + 1);
        }

        #[test]
        fn str_items_are_refused_before_and_after_output() {
            let t = apps();
            assert_eq!(t.get("/str-first").code(), 500);
            let later = t.get("/str-later");
            assert_eq!(later.body, b"first");
            assert_eq!(later.outcome, Outcome::Aborted);
            assert!(
                later.log.contains("yielded str, not bytes"),
                "{}",
                later.log
            );
        }

        #[test]
        fn returning_bytes_or_str_instead_of_an_iterable_is_a_500() {
            let t = apps();
            assert_eq!(t.get("/return-bytes").code(), 500);
            assert_eq!(t.get("/return-str").code(), 500);
        }

        #[test]
        fn system_exit_answers_500_then_asks_to_exit() {
            let t = apps();
            let r = t.get("/system-exit");
            assert_eq!(r.code(), 500);
            assert_eq!(r.outcome, Outcome::Exit);
            assert!(r.log.contains("SystemExit"), "{}", r.log);
            assert_eq!(
                t.app.exit_requested(),
                Some(super::super::super::ExitReason::SystemExit)
            );
        }

        #[test]
        fn client_abort_closes_the_iterable_and_logs_one_line_without_traceback() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.call(Req {
                client_reads: Some(3000),
                ..Req::get("/slow")
            });
            assert_eq!(r.outcome, Outcome::Aborted);
            assert_eq!(r.body.len(), 3000);
            assert_eq!(state(&t).1, fin + 1, "GeneratorExit reached the generator");
            let abandoned: Vec<&str> = r.log.lines().filter(|l| l.contains("abandoned")).collect();
            assert_eq!(abandoned.len(), 1, "{}", r.log);
            assert!(!r.log.contains("Traceback"), "{}", r.log);
            assert_eq!(t.get("/one").code(), 200, "the next request is served");
        }

        #[test]
        fn no_start_response_is_a_500_whether_or_not_data_was_produced() {
            let t = apps();
            assert_eq!(t.get("/no-start").code(), 500);
            let r = t.get("/no-start-empty");
            assert_eq!(r.code(), 500);
            assert!(
                r.log.contains("without calling start_response"),
                "{}",
                r.log
            );
        }
    }

    mod content_length {
        use super::*;

        #[test]
        fn matching_length_passes_the_body_through() {
            let r = apps().get("/cl-exact");
            assert_eq!(r.body, b"abcdef");
            assert_eq!(r.outcome, Outcome::Complete);
        }

        #[test]
        fn body_beyond_the_declared_length_is_cut_and_the_iterable_closed() {
            let t = apps();
            let fin = state(&t).1;
            let r = t.get("/cl-short");
            assert_eq!(r.body, b"01234");
            assert_eq!(r.outcome, Outcome::Complete);
            assert_eq!(state(&t).1, fin + 1);
            assert_eq!(t.get("/cl-short-write").body, b"01234");
        }

        #[test]
        fn body_shorter_than_declared_aborts_and_is_logged() {
            let r = apps().get("/cl-long");
            assert_eq!(r.body, b"only this");
            assert_eq!(r.outcome, Outcome::Aborted);
            assert!(
                r.log.contains("declared Content-Length 100 but sent 9"),
                "{}",
                r.log
            );
        }

        #[test]
        fn malformed_or_conflicting_lengths_are_500_and_identical_ones_collapse() {
            let t = apps();
            assert_eq!(t.get("/cl-abc").code(), 500);
            assert_eq!(t.get("/cl-two").code(), 500);
            let dup = t.get("/cl-dup");
            assert_eq!(dup.code(), 200);
            let lengths = dup
                .headers
                .iter()
                .filter(|(n, _)| n == "Content-Length")
                .count();
            assert_eq!(lengths, 1);
        }

        #[test]
        fn head_sends_the_get_headers_without_body_and_closes() {
            let t = apps();
            let closed = state(&t).0;
            let get = t.get("/one");
            let head = t.call(Req::get("/one").method("HEAD"));
            assert_eq!(head.headers, get.headers);
            assert!(head.body.is_empty());
            let r = t.call(Req::get("/head").method("HEAD"));
            assert!(r.body.is_empty());
            assert_eq!(state(&t).0, closed + 1);
            let lazy = t.call(Req::get("/head-gen").method("HEAD"));
            assert_eq!(lazy.code(), 200);
            assert!(lazy.body.is_empty());
        }

        #[test]
        fn no_content_and_not_modified_carry_no_body() {
            let t = apps();
            let r = t.get("/204");
            assert_eq!(r.code(), 204);
            assert!(r.body.is_empty());
            assert_eq!(r.header("Content-Length"), None);
            let r = t.get("/304");
            assert_eq!(r.code(), 304);
            assert!(r.body.is_empty());
        }
    }

    mod start_and_write {
        use super::*;

        #[test]
        fn start_response_called_lazily_in_the_first_next_sets_the_status() {
            let t = apps();
            let r = t.get("/lazy");
            assert_eq!(r.status.as_deref(), Some("201 Created"));
            assert_eq!(r.body, b"made");
            assert_eq!(t.get("/lazy-empty-first").code(), 202);
        }

        #[test]
        fn write_output_precedes_the_iterable_and_interleaves_in_order() {
            let t = apps();
            assert_eq!(t.get("/write-then-iter").body, b"via-write-via-iter");
            assert_eq!(t.get("/write-interleaved").body, b"1234");
        }

        #[test]
        fn write_with_str_is_a_type_error() {
            let r = apps().get("/write-str");
            assert_eq!(r.code(), 500);
            assert!(
                r.log
                    .contains("TypeError: write() argument must be bytes, not str"),
                "{}",
                r.log
            );
        }
    }
}
