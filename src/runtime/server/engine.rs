//! The event loop: accepts connections, reads every idle one with readiness I/O, queues
//! complete requests in a FIFO and runs them one at a time through the application.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::event::Event as MioEvent;
use mio::{Events, Interest, Poll, Token};

use super::exchange::{BodyPort, Exchange, Fate, ResponsePort, Waiter};
use super::options::RunOptions;
use super::signals::{self, Shutdown, Trigger};
use super::{Application, Outcome, Request};
use crate::runtime::environ::{self, Mode, Notes};
use crate::runtime::fastcgi::{self, Event, Params, Rejection};
use crate::runtime::identity::AppIdentity;
use crate::runtime::logging::{self, Destination, RequestScope};
use crate::runtime::transport::{self, Accepted, Endpoint, Kind, Listener, Stream, TransportError};

pub(super) const WAKER: Token = Token(0);
pub(super) const LISTENER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Bytes read from a socket per call.
const READ_CHUNK: usize = 64 * 1024;

/// Why [`run`] returned normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The single (IIS) connection closed: IIS recycles or shuts the process down.
    TransportClosed,
    /// The single connection sent bytes that are not FastCGI; there is nothing to serve.
    FramingError,
    /// SIGTERM or SIGINT.
    Signal,
    /// IIS set `_FCGI_SHUTDOWN_EVENT_`.
    ShutdownEvent,
    /// The application asked to exit ([`Outcome::Exit`]).
    AppExit,
    /// `max_requests` were served.
    MaxRequests,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::TransportClosed => "the web server closed the connection",
            StopReason::FramingError => "the web server sent malformed FastCGI",
            StopReason::Signal => "a termination signal",
            StopReason::ShutdownEvent => "IIS's shutdown event",
            StopReason::AppExit => "the application asked to exit",
            StopReason::MaxRequests => "the request limit was reached",
        })
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Requests handled (including ones answered by the server itself).
    pub requests: u64,
    /// Why the server stopped.
    pub reason: StopReason,
    /// How many times the event loop waited for readiness between requests (a keep-alive
    /// connection sending one request at a time costs one each; more means spurious
    /// wake-ups).
    pub waits: u64,
}

/// Why `iiswsgi run` could not serve.
#[derive(Debug)]
pub enum RunError {
    /// No transport.
    Transport(TransportError),
    /// The readiness poller failed.
    Poll(io::Error),
    /// The application could not be created (Python failed to start).
    App(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Transport(_) => f.write_str("no FastCGI transport"),
            RunError::Poll(_) => f.write_str("the event loop failed"),
            RunError::App(_) => f.write_str("the application could not start"),
        }
    }
}

impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Transport(e) => Some(e),
            RunError::Poll(e) => Some(e),
            RunError::App(e) => Some(e.as_ref()),
        }
    }
}

/// What the application factory learns about the server before the first request.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// The transport kind.
    pub kind: Kind,
    /// The transport, described for humans.
    pub transport: String,
    /// Where the log goes.
    pub log: Destination,
    /// Whether the process serves IIS's single connection.
    pub single_connection: bool,
    /// Lets the application ask the server to stop once the current request (if any) is
    /// done, from any thread, e.g. when a reload watcher sees a change while idle. Set when
    /// the factory is called; `None` only before that.
    pub stop: Option<StopHandle>,
}

/// Asks a running server to stop gracefully: accept nothing new, finish the request in
/// flight, return [`StopReason::AppExit`]. Cheap to clone; never runs application code.
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<Shutdown>);

impl StopHandle {
    /// Requests the stop (idempotent; the first trigger of any kind wins).
    pub fn request(&self) {
        self.0.trigger(Trigger::App);
    }
}

/// Runs `iiswsgi run`: opens the log (first, so every later failure is recorded), takes over
/// the transport, installs the shutdown triggers, creates the application with `make_app`
/// (after stdin points at the null device, before the first record is read), then serves until
/// shutdown. Returns after the current request has finished.
pub fn run<A, F>(options: RunOptions, make_app: F) -> Result<RunReport, RunError>
where
    A: Application,
    F: FnOnce(&ServerInfo) -> Result<A, Box<dyn std::error::Error + Send + Sync>>,
{
    let destination = logging::init(&options.log);
    log::info!(
        "iiswsgi {} starting (pid {}); log: {destination}",
        crate::VERSION,
        std::process::id()
    );
    let mut transport = match transport::open(options.listen.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            log::error!("{e}");
            logging::flush();
            return Err(RunError::Transport(e));
        }
    };
    log::info!("transport: {}", transport.description);
    let info = ServerInfo {
        kind: transport.kind,
        transport: transport.description.clone(),
        log: destination,
        single_connection: transport.kind.is_single_connection(),
        stop: None,
    };
    let result = serve(&options, &mut transport, &info, make_app);
    transport.cleanup();
    match &result {
        Ok(report) => log::info!(
            "exiting after {} request(s): {}",
            report.requests,
            report.reason
        ),
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            log::error!("{text}");
        }
    }
    logging::flush();
    result
}

fn serve<A, F>(
    options: &RunOptions,
    transport: &mut transport::Transport,
    info: &ServerInfo,
    make_app: F,
) -> Result<RunReport, RunError>
where
    A: Application,
    F: FnOnce(&ServerInfo) -> Result<A, Box<dyn std::error::Error + Send + Sync>>,
{
    let single = info.single_connection;
    // IIS's single connection is served by one thread; a listener by `threads` loops.
    let workers = if single { 1 } else { options.threads.max(1) };
    let mut polls = Vec::with_capacity(workers);
    let mut wakers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let poll = Poll::new().map_err(RunError::Poll)?;
        wakers.push(mio::Waker::new(poll.registry(), WAKER).map_err(RunError::Poll)?);
        polls.push(poll);
    }
    let shutdown = Shutdown::new(wakers);
    signals::install(&shutdown);

    let info = ServerInfo {
        stop: Some(StopHandle(Arc::clone(&shutdown))),
        ..info.clone()
    };
    let app = make_app(&info).map_err(RunError::App)?;

    let under_iis = crate::runtime::iis_env::get().started_by_iis();
    let mut codec_config = if single {
        fastcgi::Config::iis()
    } else {
        fastcgi::Config::generic(options.max_conns)
    };
    if under_iis {
        // IIS fails the request on a type-11 record (iis-runtime §4.2), whatever the transport.
        codec_config.unknown_type_replies = false;
    }
    let endpoint = transport
        .take_endpoint()
        .ok_or_else(|| RunError::Poll(io::Error::other("the transport was already served")))?;
    let setup = Setup {
        app: &app,
        opts: options,
        shutdown: &shutdown,
        single,
        codec_config,
        transport_name: info.kind.name(),
    };
    match endpoint {
        Endpoint::Listener(l) if workers > 1 => serve_threads(&setup, polls, l),
        endpoint => {
            let poll = polls
                .pop()
                .ok_or_else(|| RunError::Poll(io::Error::other("no poller")))?;
            let mut engine = setup.engine(poll, None);
            match endpoint {
                Endpoint::Connection(stream) => {
                    engine
                        .add_conn(stream, "the IIS connection on stdin".into())
                        .map_err(RunError::Poll)?;
                }
                Endpoint::Listener(l) => engine.listen(l).map_err(RunError::Poll)?,
            }
            let reason = engine.serve()?;
            Ok(RunReport {
                requests: engine.requests,
                reason,
                waits: engine.waits,
            })
        }
    }
}

/// What every event loop of a run shares.
struct Setup<'a, A> {
    app: &'a A,
    opts: &'a RunOptions,
    shutdown: &'a Arc<Shutdown>,
    single: bool,
    codec_config: fastcgi::Config,
    transport_name: &'static str,
}

impl<'a, A: Application> Setup<'a, A> {
    /// An event loop on `poll`; `workers` is `Some` for one of several worker threads.
    fn engine(&self, poll: Poll, workers: Option<Workers<'a>>) -> Engine<'a, A> {
        let max_conns = match &workers {
            // The process-wide connection cap, split between the loops.
            Some(w) => (self.opts.max_conns as usize).div_ceil(w.count).max(1),
            None => self.opts.max_conns as usize,
        };
        Engine {
            app: self.app,
            opts: self.opts,
            poll,
            events: Events::with_capacity(256),
            listener: None,
            listener_ready: false,
            conns: HashMap::new(),
            fifo: VecDeque::new(),
            next_token: FIRST_CONN,
            shutdown: Arc::clone(self.shutdown),
            single: self.single,
            codec_config: self.codec_config.clone(),
            transport_name: self.transport_name,
            requests: 0,
            stop: None,
            scratch: vec![0; READ_CHUNK],
            turn: Vec::new(),
            max_conns,
            workers,
            waits: 0,
            identity: AppIdentity::configured(self.opts.app_root.as_deref()),
        }
    }
}

/// What a worker thread's loop shares with the other workers.
struct Workers<'a> {
    /// How many loops serve the listener.
    count: usize,
    /// Requests started by all workers, when `max_requests` is set (only then: a single loop
    /// counts in a plain field).
    started: Option<&'a AtomicU64>,
    /// Since when this loop has seen the listener ready without accepting (see
    /// `Engine::accept_at`).
    ready_since: Option<Instant>,
}

/// `--threads N`: N event loops, one per worker thread, each with its own poller and its own
/// handle on the listening socket, accepting for itself (a connection stays with the loop that
/// accepted it). The calling thread only waits; the shutdown flag, the request count and the
/// log's request ids are process-wide.
fn serve_threads<A: Application>(
    setup: &Setup<'_, A>,
    polls: Vec<Poll>,
    listener: Listener,
) -> Result<RunReport, RunError> {
    let count = polls.len();
    let mut listeners = Vec::with_capacity(count);
    for _ in 1..count {
        listeners.push(listener.try_clone().map_err(RunError::Poll)?);
    }
    listeners.push(listener);
    let started = AtomicU64::new(0);
    let started = setup.opts.max_requests.map(|_| &started);
    log::info!("serving with {count} request threads");
    let results: Vec<Result<RunReport, RunError>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(count);
        for (i, (poll, listener)) in polls.into_iter().zip(listeners).enumerate() {
            let workers = Workers {
                count,
                started,
                ready_since: None,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("iiswsgi-worker-{}", i + 1))
                .spawn_scoped(scope, move || worker(setup, poll, listener, workers));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    log::error!("cannot start request thread {}: {e}", i + 1);
                    setup.shutdown.trigger(Trigger::App);
                    break;
                }
            }
        }
        let spawned = handles.len();
        let mut results: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(RunError::Poll(io::Error::other(
                        "a request thread panicked",
                    )))
                })
            })
            .collect();
        if spawned < count {
            results.push(Err(RunError::Poll(io::Error::other(
                "cannot start the request threads",
            ))));
        }
        results
    });
    let mut requests = 0;
    let mut waits = 0;
    let mut first = None;
    for r in results {
        let report = r?;
        requests += report.requests;
        waits += report.waits;
        first.get_or_insert(report.reason);
    }
    // The process-wide trigger says why all stopped; a loop's own reason otherwise.
    let reason = match setup.shutdown.requested() {
        Some(Trigger::Signal) => StopReason::Signal,
        Some(Trigger::ShutdownEvent) => StopReason::ShutdownEvent,
        Some(Trigger::MaxRequests) => StopReason::MaxRequests,
        Some(Trigger::App) => first.unwrap_or(StopReason::AppExit),
        _ => first.unwrap_or(StopReason::AppExit),
    };
    Ok(RunReport {
        requests,
        reason,
        waits,
    })
}

/// One worker thread: its event loop, inside [`Application::run_worker`]. A failing loop
/// stops the others.
fn worker<'a, A: Application>(
    setup: &Setup<'a, A>,
    poll: Poll,
    listener: Listener,
    workers: Workers<'a>,
) -> Result<RunReport, RunError> {
    /// Stops the other workers if this one unwinds.
    struct StopOthers<'s>(&'s Shutdown);
    impl Drop for StopOthers<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.trigger(Trigger::App);
            }
        }
    }
    let _guard = StopOthers(setup.shutdown);
    let mut engine = setup.engine(poll, Some(workers));
    let mut listener = Some(listener);
    let mut result = None;
    setup.app.run_worker(&mut || {
        let Some(l) = listener.take() else {
            return; // `run_worker` must call `serve` once; a second call has nothing to do.
        };
        result = Some(
            engine
                .listen(l)
                .map_err(RunError::Poll)
                .and_then(|()| engine.serve()),
        );
    });
    let result = result.unwrap_or_else(|| {
        Err(RunError::Poll(io::Error::other(
            "the application did not run the request thread",
        )))
    });
    match result {
        Ok(reason) => Ok(RunReport {
            requests: engine.requests,
            reason,
            waits: engine.waits,
        }),
        Err(e) => {
            setup.shutdown.trigger(Trigger::App);
            Err(e)
        }
    }
}

/// Readiness remembered per connection (mio is edge-triggered: a flag stays set until a
/// read or write returns `WouldBlock`).
///
/// A connection is registered for readability only, and for writability just while a write
/// is blocked: with both always registered, the web server reading our response made the
/// socket writable again and woke this process for nothing, once per request (on a unix
/// socket behind nginx, 1.6 `epoll_wait` a request instead of 1).
#[derive(Debug, Default)]
pub(crate) struct Flags {
    pub readable: bool,
    pub writable: bool,
    /// Whether the connection is currently registered for writability too.
    pub write_interest: bool,
    /// The peer's end-of-stream (or an error) was reported: it will raise no further event,
    /// so reading must go on until it shows.
    pub read_closed: bool,
}

impl Flags {
    /// Registers `stream` for writability (as well as readability) if a write is blocked
    /// (`want`) and it is not yet, or drops that interest once nothing waits to be written.
    pub(super) fn sync_write_interest(
        &mut self,
        want: bool,
        stream: &mut Stream,
        registry: &mio::Registry,
        token: Token,
    ) -> io::Result<()> {
        if want == self.write_interest {
            return Ok(());
        }
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.reregister(stream, token, interest)?;
        self.write_interest = want;
        Ok(())
    }
}

impl Flags {
    pub(super) fn note(&mut self, ev: &MioEvent) {
        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
            self.readable = true;
        }
        if ev.is_read_closed() || ev.is_error() {
            self.read_closed = true;
        }
        if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
            self.writable = true;
        }
    }
}

/// A request the codec handed over, waiting to run or running.
#[derive(Debug)]
pub(crate) struct Job {
    pub id: u16,
    pub kind: JobKind,
    pub stdin: VecDeque<Bytes>,
    pub stdin_len: usize,
    pub stdin_done: bool,
    pub aborted: bool,
}

#[derive(Debug)]
pub(crate) enum JobKind {
    Request(Params),
    Rejected(Rejection),
}

/// One FastCGI connection and its codec.
#[derive(Debug)]
pub(crate) struct Conn {
    pub stream: Stream,
    pub codec: fastcgi::Connection,
    pub flags: Flags,
    pub peer: String,
    /// The peer closed its write side.
    pub eof: bool,
    /// Requests received, in order, not yet run.
    pub jobs: VecDeque<Job>,
    /// The request the application is running.
    pub running: Option<Job>,
    /// Jobs received since the engine last queued this connection's jobs.
    pub new_jobs: usize,
    /// Lingering close in progress, until this instant.
    pub closing: Option<Instant>,
}

/// What reading a connection found.
enum Pumped {
    Open,
    Eof,
    Failed(io::Error),
    Framing(fastcgi::DecodeError),
}

impl Conn {
    fn new(stream: Stream, codec: fastcgi::Connection, peer: String) -> Self {
        Conn {
            stream,
            codec,
            flags: Flags {
                readable: true,
                writable: true,
                write_interest: false,
                read_closed: false,
            },
            peer,
            eof: false,
            jobs: VecDeque::new(),
            running: None,
            new_jobs: 0,
            closing: None,
        }
    }

    /// Whether more input should be read now: the codec wants it and no waiting request has
    /// buffered more body than the cap (backpressure until it runs).
    pub(super) fn want_read(&self, queued_cap: usize) -> bool {
        !self.eof
            && self.codec.wants_input()
            && self
                .jobs
                .iter()
                .all(|j| j.stdin_done || j.stdin_len < queued_cap)
    }

    /// Moves the codec's events into the jobs.
    fn take_events(&mut self) {
        while let Some(ev) = self.codec.poll_event() {
            match ev {
                Event::Request { id, params, .. } => {
                    self.push_job(id, JobKind::Request(params));
                }
                Event::Rejected { id, reason, .. } => {
                    self.push_job(id, JobKind::Rejected(reason));
                }
                Event::Stdin { id, data } => {
                    if let Some(j) = self.job_mut(id) {
                        j.stdin_len += data.len();
                        j.stdin.push_back(data);
                    }
                }
                Event::StdinEnd { id } => {
                    if let Some(j) = self.job_mut(id) {
                        j.stdin_done = true;
                    }
                }
                Event::Abort { id } => {
                    if let Some(j) = self.job_mut(id) {
                        j.aborted = true;
                    }
                }
                Event::UnknownRecord { id, record_type } => {
                    log::debug!(
                        "ignored a record of unknown type {record_type} for request {id} from {}",
                        self.peer
                    );
                }
            }
        }
    }

    fn push_job(&mut self, id: u16, kind: JobKind) {
        self.jobs.push_back(Job {
            id,
            kind,
            stdin: VecDeque::new(),
            stdin_len: 0,
            stdin_done: false,
            aborted: false,
        });
        self.new_jobs += 1;
    }

    fn job_mut(&mut self, id: u16) -> Option<&mut Job> {
        if let Some(j) = self.running.as_mut().filter(|j| j.id == id) {
            return Some(j);
        }
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    /// Writes pending codec output as far as the socket takes it.
    fn flush(&mut self) -> io::Result<()> {
        while self.codec.has_pending_output() && self.flags.writable {
            match self.stream.write(self.codec.pending_output()) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                Ok(n) => self.codec.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.flags.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One non-blocking read into the codec, used while the application runs. `Ok(false)`
    /// when nothing is available; EOF, reset and framing faults are errors.
    pub(super) fn read_some(&mut self, scratch: &mut [u8]) -> io::Result<bool> {
        self.flush()?;
        if !self.flags.readable {
            return Ok(false);
        }
        loop {
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.eof = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the web server closed the connection",
                    ));
                }
                Ok(n) => {
                    self.codec
                        .recv(&scratch[..n])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                    self.take_events();
                    self.flush()?;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flags.readable = false;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads and writes while the connection is idle (no request running).
    fn pump(&mut self, scratch: &mut [u8], queued_cap: usize) -> Pumped {
        loop {
            if let Err(e) = self.flush() {
                return Pumped::Failed(e);
            }
            if !(self.flags.readable && self.want_read(queued_cap)) {
                return Pumped::Open;
            }
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.eof = true;
                    let r = self.codec.recv_eof();
                    self.take_events();
                    return match r {
                        // A peer that hangs up inside a record went away; it did not send
                        // garbage.
                        Ok(()) | Err(fastcgi::DecodeError::TruncatedRecord) => Pumped::Eof,
                        Err(e) => Pumped::Framing(e),
                    };
                }
                Ok(n) => {
                    let r = self.codec.recv(&scratch[..n]);
                    self.take_events();
                    if let Err(e) = r {
                        return Pumped::Framing(e);
                    }
                    // A short read drained the socket for now. Under edge-triggered epoll any
                    // later arrival raises a new event, so the read that could only answer
                    // EAGAIN is skipped (one system call per request). Not once the peer's
                    // end-of-stream was reported: that raises no new event, so the read that
                    // returns it must happen now. Sockets only: mio's Windows pipe signals
                    // readiness differently.
                    if cfg!(unix) && n < scratch.len() && !self.flags.read_closed {
                        self.flags.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.flags.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Pumped::Failed(e),
            }
        }
    }

    /// Reads and discards during a lingering close. `true` once the peer has closed.
    fn discard(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flags.readable = false;
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
    }

    /// Whether a request has arrived whole or partly (for EOF handling).
    fn has_complete_job(&self) -> bool {
        self.jobs.iter().any(|j| j.stdin_done || j.aborted)
    }
}

static NOTED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];

fn log_notes_once(notes: Notes) {
    let once = |i: usize, text: &str| {
        if !NOTED[i].swap(true, Ordering::Relaxed) {
            log::warn!("{text} (logged once per process)");
        }
    };
    if notes.used_url_fallback {
        once(
            0,
            "REQUEST_URI is missing: the request path comes from URL, which IIS has already \
             decoded and may have rewritten",
        );
    }
    if notes.no_target {
        once(
            1,
            "the request carries no REQUEST_URI or URL: PATH_INFO is empty",
        );
    }
    if notes.prefix_mismatch {
        once(
            2,
            "a request path does not start with the application prefix (from APPL_MD_PATH or \
             --mount): SCRIPT_NAME is empty and PATH_INFO is the whole path",
        );
    }
    if notes.no_root_segment {
        once(
            3,
            "APPL_MD_PATH has no /ROOT segment: the application prefix is empty (use --mount)",
        );
    }
}

struct Engine<'a, A> {
    app: &'a A,
    opts: &'a RunOptions,
    poll: Poll,
    events: Events,
    listener: Option<Listener>,
    listener_ready: bool,
    conns: HashMap<Token, Conn>,
    fifo: VecDeque<Token>,
    next_token: usize,
    shutdown: Arc<Shutdown>,
    single: bool,
    codec_config: fastcgi::Config,
    transport_name: &'static str,
    requests: u64,
    stop: Option<StopReason>,
    scratch: Vec<u8>,
    /// The connections to service this turn, reused so the loop allocates nothing per request.
    turn: Vec<Token>,
    /// Most connections this loop holds at once.
    max_conns: usize,
    /// `Some` when this loop is one of several worker threads.
    workers: Option<Workers<'a>>,
    /// The IIS application this process serves (iis-runtime §12 item 12).
    identity: AppIdentity,
    /// Readiness waits so far ([`RunReport::waits`]).
    waits: u64,
}

impl<A: Application> Engine<'_, A> {
    /// Watches `l` for connections to accept.
    fn listen(&mut self, mut l: Listener) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut l, LISTENER, Interest::READABLE)?;
        self.listener = Some(l);
        self.listener_ready = true;
        Ok(())
    }

    fn add_conn(&mut self, mut stream: Stream, peer: String) -> io::Result<()> {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)?;
        let mut codec = fastcgi::Connection::new(self.codec_config.clone());
        if self.stop.is_some() {
            codec.set_refuse_new_requests(true);
        }
        let peer = format!("{peer} (connection {})", token.0 - FIRST_CONN + 1);
        self.conns.insert(token, Conn::new(stream, codec, peer));
        Ok(())
    }

    fn serve(&mut self) -> Result<StopReason, RunError> {
        loop {
            if self.stop.is_none()
                && let Some(t) = self.shutdown.requested()
            {
                self.begin_shutdown(match t {
                    Trigger::ShutdownEvent => StopReason::ShutdownEvent,
                    Trigger::App => StopReason::AppExit,
                    Trigger::MaxRequests => StopReason::MaxRequests,
                    _ => StopReason::Signal,
                });
            }
            if let Some(reason) = self.stop
                && self.fifo.is_empty()
            {
                return Ok(reason);
            }
            if self.single && self.conns.is_empty() && self.fifo.is_empty() {
                return Ok(StopReason::TransportClosed);
            }
            let timeout = if self.next_ready().is_some() {
                Some(Duration::ZERO)
            } else {
                self.next_deadline()
                    .map(|d| d.saturating_duration_since(Instant::now()))
            };
            self.sync_write_interest();
            self.waits += 1;
            match self.poll.poll(&mut self.events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(RunError::Poll(e)),
            }
            for ev in self.events.iter() {
                match ev.token() {
                    WAKER => {}
                    LISTENER => self.listener_ready = true,
                    t => {
                        if let Some(c) = self.conns.get_mut(&t) {
                            c.flags.note(ev);
                        }
                    }
                }
            }
            self.accept();
            let mut turn = std::mem::take(&mut self.turn);
            turn.clear();
            turn.extend(self.conns.keys().copied());
            for &t in &turn {
                self.service(t);
            }
            self.turn = turn;
            if let Some(at) = self.next_ready()
                && let Some(t) = self.fifo.remove(at)
            {
                self.run_job(t);
            }
        }
    }

    /// Before sleeping: each connection is registered for writability exactly while output
    /// waits on a blocked write (see [`Flags`]). No system call unless that changed.
    fn sync_write_interest(&mut self) {
        let registry = self.poll.registry();
        let mut failed = Vec::new();
        for (&t, c) in &mut self.conns {
            let want = c.codec.has_pending_output() && !c.flags.writable;
            if let Err(e) = c
                .flags
                .sync_write_interest(want, &mut c.stream, registry, t)
            {
                failed.push((t, format!("connection from {} failed: {e}", c.peer)));
            }
        }
        for (t, why) in failed {
            self.drop_conn(t, Some(why));
        }
    }

    /// The first queued request that may run now. Under IIS (one connection) a request runs
    /// as soon as its params are complete (iis-runtime §12 item 7). With several connections a
    /// request whose body is still arriving waits, buffering, until the body is complete or
    /// the buffer cap is reached, so one slow uploader does not hold the single application
    /// call while other connections have requests waiting (fastcgi-protocol §4 case 19).
    fn next_ready(&self) -> Option<usize> {
        let cap = self.opts.queued_body_bytes;
        for (i, &t) in self.fifo.iter().enumerate() {
            if self.fifo.range(..i).any(|&earlier| earlier == t) {
                continue; // a connection's requests run in order: only its first may run
            }
            let Some(conn) = self.conns.get(&t) else {
                return Some(i); // run_job discards it
            };
            let Some(job) = conn.jobs.front() else {
                return Some(i);
            };
            if self.single || job.stdin_done || job.aborted || job.stdin_len >= cap || conn.eof {
                return Some(i);
            }
        }
        None
    }

    /// When a worker thread may accept the next connection (`None`: single loop, or nothing
    /// to accept). A worker accepts one connection per turn, and one that already holds `k`
    /// connections lets the listener stay ready for `k` ms first, so that a burst of new
    /// connections goes to the workers holding none (a connection stays with the worker that
    /// accepted it, so two on one worker are served one after the other).
    fn accept_at(&self) -> Option<Instant> {
        let w = self.workers.as_ref()?;
        if !self.listener_ready || self.listener.is_none() || self.conns.len() >= self.max_conns {
            return None;
        }
        let held = self.conns.len() as u32;
        Some(w.ready_since.map_or_else(Instant::now, |since| {
            since + Duration::from_millis(1) * held
        }))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let closing = self.conns.values().filter_map(|c| c.closing).min();
        match self.accept_at() {
            Some(at) => Some(closing.map_or(at, |c| c.min(at))),
            None => closing,
        }
    }

    fn begin_shutdown(&mut self, reason: StopReason) {
        self.stop = Some(reason);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        for c in self.conns.values_mut() {
            c.codec.set_refuse_new_requests(true);
        }
    }

    fn accept(&mut self) {
        if let Some(w) = self.workers.as_mut() {
            if !self.listener_ready {
                w.ready_since = None;
                return;
            }
            let now = Instant::now();
            let since = *w.ready_since.get_or_insert(now);
            if !self.conns.is_empty()
                && now < since + Duration::from_millis(1) * self.conns.len() as u32
            {
                return;
            }
            w.ready_since = None;
        }
        while self.listener_ready && self.conns.len() < self.max_conns {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok(Accepted::Connection(stream, peer)) => {
                    log::debug!("connection from {peer}");
                    if let Err(e) = self.add_conn(stream, peer) {
                        log::warn!("cannot watch a new connection: {e}");
                    }
                    if let Some(w) = self.workers.as_mut() {
                        // One per turn: see `accept_at`. More may be waiting.
                        w.ready_since = Some(Instant::now());
                        return;
                    }
                }
                Ok(Accepted::Refused(addr)) => {
                    log::warn!("refused a connection from {addr}: not in FCGI_WEB_SERVER_ADDRS");
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.listener_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // EMFILE and friends: stop for this round, retry on the next event.
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn service(&mut self, t: Token) {
        let cap = self.opts.queued_body_bytes;
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        if let Some(deadline) = conn.closing {
            if (conn.flags.readable && conn.discard(&mut self.scratch))
                || Instant::now() >= deadline
            {
                self.drop_conn(t, None);
            }
            return;
        }
        let pumped = conn.pump(&mut self.scratch, cap);
        for _ in 0..std::mem::take(&mut conn.new_jobs) {
            self.fifo.push_back(t);
        }
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        match pumped {
            Pumped::Open => {}
            Pumped::Failed(e) => {
                let why = format!("connection from {} failed: {e}", conn.peer);
                self.drop_conn(t, Some(why));
                return;
            }
            Pumped::Framing(e) => {
                let why = format!("malformed FastCGI from {}: {e}; closing it", conn.peer);
                if self.single {
                    self.stop.get_or_insert(StopReason::FramingError);
                }
                self.drop_conn(t, Some(why));
                return;
            }
            Pumped::Eof => {
                if conn.codec.open_requests() > 0 && !conn.has_complete_job() {
                    let why = format!("{} closed the connection mid-request", conn.peer);
                    self.drop_conn(t, Some(why));
                    return;
                }
                if conn.jobs.is_empty() {
                    // An idle keep-alive connection closed by its pool, or IIS shutting us
                    // down: routine.
                    log::debug!("{} closed the connection", conn.peer);
                    self.drop_conn(t, None);
                    return;
                }
                // A complete request followed by a half-close: serve it, then close.
            }
        }
        if conn.codec.wants_close() && !conn.codec.has_pending_output() && conn.jobs.is_empty() {
            self.linger(t);
        }
    }

    /// Starts a lingering close: shut down our write side, read and discard until the peer
    /// closes or the linger time passes (`fastcgi-protocol.md` §7).
    fn linger(&mut self, t: Token) {
        let linger = self.opts.linger;
        if let Some(conn) = self.conns.get_mut(&t) {
            if conn.eof {
                self.drop_conn(t, None);
                return;
            }
            // Everything owed to the peer goes out before the FIN.
            let _ = conn.flush();
            let _ = conn.stream.shutdown_write();
            conn.closing = Some(Instant::now() + linger);
            if conn.flags.readable && conn.discard(&mut self.scratch) {
                self.drop_conn(t, None);
            }
        }
    }

    fn drop_conn(&mut self, t: Token, why: Option<String>) {
        if let Some(mut conn) = self.conns.remove(&t) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            if let Some(why) = why {
                log::info!("{why}");
            }
        }
        self.fifo.retain(|&q| q != t);
    }

    fn run_job(&mut self, t: Token) {
        let Some(mut conn) = self.conns.remove(&t) else {
            return;
        };
        let Some(job) = conn.jobs.pop_front() else {
            self.conns.insert(t, conn);
            return;
        };
        self.requests += 1;
        // Several workers share the limit; one loop counts alone, with no atomic per request.
        let counted = match self.workers.as_ref().and_then(|w| w.started) {
            Some(started) => started.fetch_add(1, Ordering::Relaxed) + 1,
            None => self.requests,
        };
        let scope = RequestScope::begin();
        let id = job.id;
        let aborted = job.aborted;
        let (job, kind) = split_job(job);
        conn.running = Some(job);

        if aborted {
            // Aborted before it ran: end it at once (fastcgi-protocol §6).
            conn.running = None;
            let _ = conn.codec.end_request(id, 0);
            let _ = conn.flush();
            self.after_job(t, conn, Fate::Keep);
            return;
        }

        let waiter = Waiter {
            poll: &mut self.poll,
            events: &mut self.events,
            others: &mut self.conns,
            listener_ready: &mut self.listener_ready,
        };
        let mut exchange = Exchange::new(conn, t, id, waiter, &mut self.scratch, self.opts);
        let error_id = scope.error_id();
        let outcome = match kind {
            JobKind::Rejected(reason) => {
                log::info!("answered {}: {reason}", reason.http_status());
                let status = match reason.http_status() {
                    400 => "400 Bad Request",
                    _ => "431 Request Header Fields Too Large",
                };
                let _ = exchange.respond_plain(status, reason.as_str());
                Outcome::Complete
            }
            JobKind::Request(params) => {
                let pairs = params.to_pairs();
                exchange.conn.codec.recycle_params(params);
                let (raw, normalised) = if self.app.wants_raw_params() {
                    let normalised = environ::normalise(&pairs, &self.opts.environ);
                    (pairs, normalised)
                } else {
                    (
                        Vec::new(),
                        environ::normalise_owned(pairs, &self.opts.environ),
                    )
                };
                let identity = &mut self.identity;
                let checked = normalised.map(|env| {
                    let wrong_app = match env.mode {
                        Mode::Iis => identity.check(&env.params).err(),
                        Mode::Generic => None,
                    };
                    (env, wrong_app)
                });
                match checked {
                    Err(e) => {
                        log::info!("answered 400: {e}");
                        let _ = exchange.respond_plain(e.status(), &e.to_string());
                        Outcome::Complete
                    }
                    Ok((_, Some(mismatch))) => {
                        // Another IIS application's request: never reaches this app.
                        log::error!("error id {error_id}: {mismatch}");
                        let _ = exchange.respond_plain(
                            "500 Internal Server Error",
                            &format!("Internal Server Error (error id {error_id})"),
                        );
                        Outcome::Complete
                    }
                    Ok((env, None)) => {
                        log_notes_once(env.notes);
                        if log::log_enabled!(log::Level::Debug) {
                            let method = env.get(b"REQUEST_METHOD").unwrap_or_default();
                            let path = env.get(b"PATH_INFO").unwrap_or_default();
                            log::debug!(
                                "{} {} (FastCGI id {id})",
                                String::from_utf8_lossy(method),
                                String::from_utf8_lossy(path)
                            );
                        }
                        let request = Request {
                            id,
                            params: env.params,
                            raw_params: raw,
                            url_scheme: env.url_scheme,
                            content_length: env.content_length,
                            mode: env.mode,
                            transport: self.transport_name,
                            single_connection: self.single,
                            log_id: scope.id(),
                        };
                        let shared = Mutex::new(exchange);
                        let outcome = self.app.handle(
                            &request,
                            &mut BodyPort(&shared),
                            &mut ResponsePort(&shared),
                        );
                        exchange = shared.into_inner().unwrap_or_else(|p| p.into_inner());
                        outcome
                    }
                }
            }
        };
        let (conn, fate) = exchange.finish(outcome, self.single, error_id);
        if outcome == Outcome::Exit {
            self.stop.get_or_insert(StopReason::AppExit);
            if self.workers.is_some() {
                self.shutdown.trigger(Trigger::App); // the other workers stop too
            }
        }
        drop(scope);
        self.after_job(t, conn, fate);
        if let Some(max) = self.opts.max_requests
            && counted >= max
            && self.stop.is_none()
        {
            self.begin_shutdown(StopReason::MaxRequests);
            if self.workers.is_some() {
                self.shutdown.trigger(Trigger::MaxRequests);
            }
        }
    }

    fn after_job(&mut self, t: Token, mut conn: Conn, fate: Fate) {
        conn.running = None;
        // Ending the request may have let the codec decode a pipelined one.
        conn.take_events();
        let new_jobs = std::mem::take(&mut conn.new_jobs);
        self.conns.insert(t, conn);
        for _ in 0..new_jobs {
            self.fifo.push_back(t);
        }
        match fate {
            Fate::Keep => {
                let eof = self
                    .conns
                    .get(&t)
                    .is_some_and(|c| c.eof && c.jobs.is_empty());
                if eof {
                    self.drop_conn(t, None);
                }
            }
            Fate::Close => self.linger(t),
            Fate::Drop(why) => {
                if self.single {
                    // IIS: a dead pipe means shutdown (iis-runtime §12 item 22).
                    self.stop.get_or_insert(StopReason::TransportClosed);
                }
                self.drop_conn(t, Some(why));
            }
        }
    }
}

/// Separates a job's kind (params, moved into the environ) from its stream state.
fn split_job(mut job: Job) -> (Job, JobKind) {
    let kind = std::mem::replace(&mut job.kind, JobKind::Rejected(Rejection::Malformed));
    (job, kind)
}
