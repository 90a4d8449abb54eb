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
use super::errors::{RequestId, format_exception, type_name};
use super::file_wrapper;
use super::input::WsgiInput;
use super::start_response::StartResponse;
use super::{Level, LogSink, Record};
use crate::server::{Body, Outcome, Response};

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
    /// Names and values; every char is at most U+00FF (one latin-1 byte on the wire).
    pub headers: Vec<(String, String)>,
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
#[derive(Debug)]
pub(super) enum PumpError {
    /// Sending failed.
    Deliver(DeliverError),
    /// Reading the source failed.
    Read(std::io::Error),
}

impl From<DeliverError> for PumpError {
    fn from(e: DeliverError) -> PumpError {
        PumpError::Deliver(e)
    }
}

/// How much the file fast path reads per system call.
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
                .push(("Content-Length".to_owned(), n.to_string()));
            self.declared = Some(n);
        }
        let result = self.sink()?.start(&head.status, &head.headers);
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
            if let Err(e) = self.sink()?.write(chunk) {
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
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
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
    /// `add_length` is the Content-Length to add if the app declared none.
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
        self.detached(py, State::finish)
    }

    fn replace(&self, py: Python<'_>, status: &str, body: &[u8]) -> Result<(), DeliverError> {
        self.detached(py, |st| st.replace(status, body))
    }

    fn snapshot(&self, py: Python<'_>) -> (bool, Option<String>, bool) {
        self.detached(py, |st| (st.committed, st.client_gone.clone(), st.overflow))
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
    pub id: RequestId,
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

fn ended(ctx: &Context<'_>, exchange: &Exchange, py: Python<'_>, ending: Ending) -> Served {
    let (_, _, overflow) = exchange.snapshot(py);
    if overflow {
        ctx.log.log(&Record {
            level: Level::Warn,
            request: Some(ctx.id),
            message: &format!(
                "{}: the app produced more body than its Content-Length; the excess was dropped",
                (ctx.target)()
            ),
        });
    }
    match ending {
        Ending::Complete => Served {
            outcome: Outcome::Complete,
            exit: false,
        },
        Ending::Short { declared, sent } => {
            ctx.log.log(&Record {
                level: Level::Error,
                request: Some(ctx.id),
                message: &format!(
                    "{}: the app declared Content-Length {declared} but sent {sent} bytes; \
                     the response is incomplete",
                    (ctx.target)()
                ),
            });
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
                    return exchange.end(py).map_err(deliver_err);
                }
            }
            if rest.is_none() {
                return exchange.end(py).map_err(deliver_err);
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
    exchange.end(py).map_err(deliver_err)
}

/// Calls `iterable.close()` if it has one.
fn close(py: Python<'_>, iterable: &Bound<'_, PyAny>) -> PyResult<()> {
    match iterable.getattr_opt(intern!(py, "close"))? {
        Some(close) => close.call0().map(drop),
        None => Ok(()),
    }
}

fn log_exception(py: Python<'_>, ctx: &Context<'_>, what: &str, err: &PyErr) {
    let message = format!("{}: {what}\n{}", (ctx.target)(), format_exception(py, err));
    ctx.log.log(&Record {
        level: Level::Error,
        request: Some(ctx.id),
        message: &message,
    });
}

/// The generic page a client sees for an app failure; the id points at the log.
pub(super) fn error_page(id: RequestId) -> String {
    format!(
        "Internal Server Error\n\nThe application failed while handling this request.\n\
         Error id: {id} (the server log has the details).\n"
    )
}

/// Handles an exception from the app, its iterable or the header commit.
fn failed(py: Python<'_>, ctx: &Context<'_>, exchange: &Exchange, err: PyErr) -> Served {
    let (committed, client_gone, _) = exchange.snapshot(py);
    if let Some(reason) = client_gone {
        ctx.log.log(&Record {
            level: Level::Info,
            request: Some(ctx.id),
            message: &format!("{}: response abandoned: {reason}", (ctx.target)()),
        });
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
        error_page(ctx.id).as_bytes(),
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
    use crate::server::Outcome;

    #[test]
    fn hello_world_list_gets_content_length_and_one_start() {
        let t = TestApp::new(
            "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello']\n",
        );
        let r = t.get("/");
        assert_eq!(r.code(), 200, "{r:?}");
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("Content-Length"), Some("5"));
        assert_eq!(r.starts, 1);
        assert_eq!(r.outcome, Outcome::Complete);
        let _ = Req::get("/");
    }
}
