//! The FastCGI server: drives the [`crate::runtime::fastcgi`] codec over a [`crate::runtime::transport`] and hands
//! each complete request to an [`Application`].
//!
//! The boundary below is what a WSGI app (`crate::runtime::wsgi`) and the built-in diagnostic responder
//! both implement, so the server never changes when the Python side does. It is deliberately
//! Python-agnostic: params are byte pairs, the body is an [`io::Read`], the response is a
//! status, byte headers and byte chunks.
//!
//! # Threads and order
//!
//! An event loop runs one application call at a time. Many connections may be open (nginx
//! keeps a pool): readiness I/O watches every idle connection, complete requests wait in a
//! FIFO, and the loop never blocks on an idle keep-alive connection while another has a
//! request waiting. A loop holds at most `--max-conns` connections; at that cap it closes the
//! longest-idle one to accept the next, and it cuts requests that stop arriving, so idle and
//! slow connections never starve real ones (`admission`). While the application runs, its body reads and response writes wait only
//! on its own connection (with timeouts); readiness seen meanwhile on other connections is
//! remembered.
//!
//! With one thread ([`RunOptions::threads`] = 1, and always over IIS's single connection) the
//! loop runs on the thread that called [`run`] (under IIS the main thread, which the Python
//! bridge needs: `threading.main_thread()` is the request thread and `signal.signal` works).
//!
//! With `--threads N` on a listening socket, N worker threads each run their own loop (own
//! poller, own duplicate of the listening socket), inside [`Application::run_worker`], and
//! accept for themselves, like uWSGI threads sharing an accept socket; the calling thread only
//! waits for them. A connection stays with the loop that accepted it, so requests on one
//! connection are served in order by one thread; a loop accepts one connection per turn and,
//! if it already holds some, lets the others pick first (`launch`, `engine`). What is per process stays
//! so: the shutdown flag (SIGTERM/SIGINT, IIS's event, [`StopHandle`]) wakes every loop, and
//! each finishes its current request before returning (a signal or IIS's event also starts
//! the `--graceful-timeout` watchdog, `signals`); [`Outcome::Exit`] in one worker stops them
//! all; `max_requests` counts over all workers (an atomic only then: one loop counts in a
//! plain field); log request ids (`req=N`) are process-wide. [`Application`] is
//! `Send + Sync` for that reason.
//!
//! # What the server guarantees an application
//!
//! - [`Request::params`] is normalised by [`crate::runtime::environ`] (IIS path rules, fix-ups);
//!   a request whose environ is invalid (NUL in the path, bad `CONTENT_LENGTH`) or whose
//!   params exceed the limits is answered 400/431 by the server and never reaches the app.
//! - The body is the raw STDIN stream: `read` returns `Ok(0)` at the empty STDIN record. It
//!   does not stop at `CONTENT_LENGTH`; `wsgi.input` does that. A client that disconnects or
//!   aborts mid-body makes `read` fail.
//! - Every chunk passed to [`Response::write`] is on the wire when the call returns (STDOUT
//!   records, vectored write, no copy of the chunk). [`Response::start`] itself writes nothing:
//!   the header block goes out with the first chunk or with the end of the response.
//! - Whatever the app did, the request ends with an empty STDOUT and `END_REQUEST`, unread
//!   STDIN drained first within byte and time caps; except a response that failed after its
//!   headers went out ([`Outcome::Aborted`]): IIS gets `END_REQUEST` with app status 1, every
//!   other server a record it refuses and a closed connection, so the client sees the
//!   response broken (`exchange`).
//! - An `ABORT_REQUEST` for the request, or the web server hanging up, is noticed while the
//!   app reads its body and, while it streams, before a [`Response::write`] (a non-blocking
//!   look at most every 10 ms; never on [`Response::write_final`], so a one-write response
//!   costs no extra system call). The read or write then fails (`ConnectionAborted` for an
//!   abort) and the app should stop. An aborted request still ends with the empty STDOUT and
//!   `END_REQUEST{0, REQUEST_COMPLETE}` and its connection stays open; records for other
//!   requests read meanwhile are kept for later.

use std::io;

mod admission;
mod conn;
pub mod diagnostic;
mod engine;
mod exchange;
mod launch;
mod notes;
mod options;
mod report;
mod signals;
pub mod supervisor;

pub use launch::run;
pub use options::RunOptions;
pub use report::{RunError, RunReport, ServerInfo, StopHandle, StopReason};

pub use crate::runtime::environ::{Mode, Param, Scheme};

/// A request as the server hands it to an [`Application`].
#[derive(Debug, Clone)]
pub struct Request {
    /// The FastCGI request id, echoed in every record of the response.
    pub id: u16,
    /// The CGI variables after the server's normalisation (IIS rules, duplicates merged), in
    /// arrival order. Byte pairs; the WSGI bridge decodes them as latin-1.
    pub params: Vec<Param>,
    /// The params exactly as they came off the wire, for diagnostics; empty unless
    /// [`Application::wants_raw_params`] says so (keeping them costs two allocations a param).
    pub raw_params: Vec<Param>,
    /// `https` iff the request came over TLS (`wsgi.url_scheme`).
    pub url_scheme: Scheme,
    /// The declared body length; `None` means "read to the end of STDIN".
    pub content_length: Option<u64>,
    /// Which environ rules applied.
    pub mode: Mode,
    /// A short name for the transport this request came over (`stdin-connection`, `unix`, …).
    pub transport: &'static str,
    /// Whether the request arrived over IIS's single connection (one request at a time,
    /// `wsgi.multithread=False`, `wsgi.multiprocess=True`).
    pub single_connection: bool,
    /// The per-process request number that log lines carry (`req=N`).
    pub log_id: u64,
}

impl Request {
    /// The value of the parameter `name`, if present.
    pub fn param(&self, name: &[u8]) -> Option<&[u8]> {
        crate::runtime::environ::get(&self.params, name)
    }

    /// A short id to show in an error page and log next to the details: `<pid hex>-<log_id>`.
    pub fn error_id(&self) -> crate::runtime::logging::ErrorId {
        crate::runtime::logging::ErrorId::of_request(self.log_id)
    }
}

/// The request body, pulled on demand from the connection's STDIN records.
///
/// `read` returns `Ok(0)` at the end of the body (the empty STDIN record).
pub trait Body: io::Read + Send {}
impl<T: io::Read + Send> Body for T {}

/// Where an application writes its response. The server frames it as STDOUT records.
pub trait Response: Send {
    /// Sets the status line (`"200 OK"`) and headers. Called once, before any body byte; a
    /// second call before anything was written replaces the first (PEP 3333 `exc_info`).
    /// The server writes a CGI `Status:` line first, then the headers in order (repeats kept),
    /// each `Name: value` with CRLF. Names must be non-empty tokens and values free of CR, LF
    /// and NUL, else `InvalidInput`. Nothing is written yet.
    fn start(&mut self, status: &str, headers: &[(&[u8], &[u8])]) -> io::Result<()>;

    /// Sends one body chunk now (no buffering across chunks, so streaming works), preceded by
    /// the header block if it has not gone out yet.
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;

    /// Sends the last chunk and ends the response in the same write (empty STDOUT and
    /// `END_REQUEST` included): one system call for a whole small response. Nothing may be
    /// written afterwards.
    fn write_final(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.write(chunk)
    }

    /// Whether the header block has been written (so a failure can no longer become a 500).
    fn headers_sent(&self) -> bool;
}

/// How an application call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response is complete.
    Complete,
    /// The response failed after its headers were sent: end the request with a non-zero app
    /// status (IIS), or cut it (other servers: a record they refuse, then close), so the client
    /// sees a truncated body. If nothing was sent yet, the server answers a generic 500
    /// instead.
    Aborted,
    /// The application asks the process to exit after this response (reload, `SystemExit`).
    Exit,
}

/// A FastCGI responder: what `iiswsgi run` serves.
pub trait Application: Send + Sync {
    /// Handles one request. Errors the application cannot recover from are reported through
    /// the response (a generic 500) and the log, never through a panic.
    fn handle(
        &self,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Outcome;

    /// Whether [`Request::raw_params`] should hold the params as they came off the wire
    /// (the diagnostic page shows them). Default: no, and the server moves them into the
    /// normalised params instead of copying.
    fn wants_raw_params(&self) -> bool {
        false
    }

    /// Runs `serve`, one worker thread's whole life (its event loop, many requests), on that
    /// thread. With `--threads N > 1` the server calls it once on each of its N worker
    /// threads; never with one thread. The default just calls `serve`; the WSGI bridge
    /// overrides it to attach the thread to Python for its whole life.
    fn run_worker(&self, serve: &mut (dyn FnMut() + Send)) {
        serve();
    }
}
