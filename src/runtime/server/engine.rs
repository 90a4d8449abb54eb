//! The event loop: accepts connections, reads every idle one with readiness I/O, queues
//! complete requests in a FIFO and runs them one at a time through the application. Started
//! by `super::launch`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::admission;
use super::conn::{Conn, FIRST_CONN, JobKind, LISTENER, Pumped, WAKER, split_job};
use super::exchange::{BodyPort, Exchange, Fate, ResponsePort, Waiter};
use super::notes::log_notes_once;
pub(super) use drain::settle;

mod drain;
use super::options::RunOptions;
use super::report::{RunError, StopReason};
use super::signals::{Shutdown, Trigger};
use super::{Application, Outcome, Request};
use crate::runtime::environ::{self, Mode};
use crate::runtime::fastcgi;
use crate::runtime::identity::AppIdentity;
use crate::runtime::logging::RequestScope;
use crate::runtime::transport::{Accepted, Listener, Stream};

/// Bytes read from a socket per call.
const READ_CHUNK: usize = 64 * 1024;

/// What a worker thread's loop shares with the other workers.
pub(super) struct Workers<'a> {
    /// Requests started by all workers, when `max_requests` is set (only then: a single loop
    /// counts in a plain field).
    pub started: Option<&'a AtomicU64>,
    /// Since when this loop has seen the listener ready without accepting (see
    /// `Engine::accept_at`).
    pub ready_since: Option<Instant>,
}

/// What every event loop of a run shares.
pub(super) struct Setup<'a, A> {
    pub app: &'a A,
    pub opts: &'a RunOptions,
    pub shutdown: &'a Arc<Shutdown>,
    /// Serving IIS's single connection.
    pub single: bool,
    /// The peer is IIS (its single connection, or a process IIS started): a response the
    /// application fails mid-way ends with a non-zero app status, never a cut.
    pub iis: bool,
    pub codec_config: fastcgi::Config,
    pub transport_name: &'static str,
}

impl<'a, A: Application> Setup<'a, A> {
    /// An event loop on `poll`; `workers` is `Some` for one of several worker threads.
    pub(super) fn engine(&self, poll: Poll, workers: Option<Workers<'a>>) -> Engine<'a, A> {
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
            iis: self.iis,
            codec_config: self.codec_config.clone(),
            transport_name: self.transport_name,
            requests: 0,
            stop: None,
            scratch: vec![0; READ_CHUNK],
            turn: Vec::new(),
            max_conns: (self.opts.max_conns as usize).max(1),
            workers,
            waits: 0,
            identity: AppIdentity::configured(self.opts.app_root.as_deref()),
            drain_until: None,
        }
    }
}

/// Says once per process that a loop reached its connection cap and closes idle connections
/// to make room (each closing is a debug line).
fn note_cap_once(max_conns: usize) {
    static NOTED: AtomicBool = AtomicBool::new(false);
    if !NOTED.swap(true, Ordering::Relaxed) {
        log::info!(
            "a request thread holds --max-conns {max_conns} connections: from now on the \
             longest-idle connection is closed to make room for each new one (logged once)"
        );
    }
}

pub(super) struct Engine<'a, A> {
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
    /// See [`Setup`]'s field.
    iis: bool,
    codec_config: fastcgi::Config,
    transport_name: &'static str,
    pub requests: u64,
    stop: Option<StopReason>,
    scratch: Vec<u8>,
    /// The connections to service this turn, reused so the loop allocates nothing per request.
    turn: Vec<Token>,
    /// Most connections this loop holds at once (`--max-conns`, per loop).
    max_conns: usize,
    /// `Some` when this loop is one of several worker threads.
    workers: Option<Workers<'a>>,
    /// The IIS application this process serves (iis-runtime §12 item 12).
    identity: AppIdentity,
    /// Readiness waits so far ([`RunReport::waits`]).
    pub waits: u64,
    /// Set by a reload on a listening socket: until then the loop waits for requests that
    /// have started arriving (see [`Engine::draining`]).
    drain_until: Option<Instant>,
}

impl<A: Application> Engine<'_, A> {
    /// Watches `l` for connections to accept.
    pub(super) fn listen(&mut self, mut l: Listener) -> io::Result<()> {
        self.poll
            .registry()
            .register(&mut l, LISTENER, Interest::READABLE)?;
        self.listener = Some(l);
        self.listener_ready = true;
        Ok(())
    }

    pub(super) fn add_conn(&mut self, mut stream: Stream, peer: String) -> io::Result<()> {
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

    pub(super) fn serve(&mut self) -> Result<StopReason, RunError> {
        loop {
            if self.stop.is_none()
                && let Some(t) = self.shutdown.requested()
            {
                self.begin_shutdown(match t {
                    Trigger::ShutdownEvent => StopReason::ShutdownEvent,
                    Trigger::App => StopReason::AppExit,
                    Trigger::MaxRequests => StopReason::MaxRequests,
                    Trigger::Reload => StopReason::Reload,
                    _ => StopReason::Signal,
                });
            }
            if let Some(reason) = self.stop
                && self.fifo.is_empty()
                && !self.awaits_started_requests()
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
    /// At the connection cap, also when a slot can be had ([`admission::room_at`]); a single
    /// loop accepts as soon as it can.
    fn accept_at(&self) -> Option<Instant> {
        if !self.listener_ready || self.listener.is_none() {
            return None;
        }
        let now = Instant::now();
        let room = admission::room_at(&self.conns, self.max_conns, now)?;
        let Some(w) = self.workers.as_ref() else {
            return Some(room);
        };
        let held = self.conns.len() as u32;
        let turn = w
            .ready_since
            .map_or(now, |since| since + Duration::from_millis(1) * held);
        Some(room.max(turn))
    }

    fn next_deadline(&self) -> Option<Instant> {
        let closing = self
            .conns
            .values()
            .filter_map(|c| c.closing)
            .chain(self.drain_until)
            .min();
        let cut = if self.single {
            None // IIS's one connection: IIS's own timeouts apply
        } else {
            admission::next_deadline(&self.conns, self.opts)
        };
        [closing, cut, self.accept_at()].into_iter().flatten().min()
    }

    fn begin_shutdown(&mut self, reason: StopReason) {
        self.stop = Some(reason);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        if self.draining() {
            self.begin_drain();
            return;
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
        while self.listener_ready {
            let full = self.conns.len() >= self.max_conns;
            if full && admission::victim(&self.conns, Instant::now()).is_none() {
                return; // every connection carries a request: the backlog waits
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok(Accepted::Connection(stream, peer)) => {
                    log::debug!("connection from {peer}");
                    if let Err(e) = self.add_conn(stream, peer) {
                        log::warn!("cannot watch a new connection: {e}");
                    }
                    if full {
                        self.make_room();
                    }
                    if let Some(w) = self.workers.as_mut()
                        && self.conns.len() < self.max_conns
                    {
                        // One per turn: see `accept_at`. More may be waiting. A full loop
                        // goes on (each further accept closes an idle connection), so a
                        // flood of idle connections drains from the backlog at once.
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

    /// Brings the loop back to its cap after accepting past it, closing the best
    /// [`admission::victim`] (never the connection just accepted: it has not been read).
    /// What the victim sent meanwhile is read first: if that makes it carry a request it
    /// stays and the next candidate is considered; with none left the loop stays one over.
    fn make_room(&mut self) {
        while self.conns.len() > self.max_conns {
            let Some(victim) = admission::victim(&self.conns, Instant::now()) else {
                return;
            };
            self.service(victim);
            if admission::victim(&self.conns, Instant::now()) == Some(victim) {
                let peer = self.conns.get(&victim).map(|c| c.peer.clone());
                log::debug!(
                    "closed {} to make room (--max-conns {} reached)",
                    peer.unwrap_or_default(),
                    self.max_conns
                );
                note_cap_once(self.max_conns);
                self.drop_conn(victim, None);
            }
        }
    }

    fn service(&mut self, t: Token) {
        let cap = self.opts.queued_body_bytes;
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        conn.serviced = true;
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
            return;
        }
        if !self.single {
            let now = Instant::now();
            conn.note_arrival(now);
            if let Some((at, why)) = admission::deadline(conn, self.opts)
                && now >= at
            {
                let why = format!("cut the connection from {}: {why}", conn.peer);
                self.drop_conn(t, Some(why));
            }
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
        let (conn, fate) = exchange.finish(outcome, self.iis, error_id);
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
        conn.active = Instant::now();
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
        self.close_if_drained(t);
    }
}

#[cfg(all(test, unix))]
mod tests {
    //! The loop's bookkeeping, over socket pairs: connection slots and tokens, the request
    //! FIFO and who may run next, write interest, and when the loop stops (max-requests,
    //! an exit asked by the app, IIS's connection closing).

    use std::io::{Read as _, Write as _};
    use std::os::unix::net::UnixStream as StdUnixStream;

    use super::*;
    use crate::runtime::fastcgi::testkit::{Wire, decode_all};
    use crate::runtime::fastcgi::{EndRequestBody, ProtocolStatus, Record, RecordType, Rejection};
    use crate::runtime::server::conn::Job;
    use crate::runtime::server::{Body, Response};

    /// Answers `200 OK` with `hi`; asks the process to exit after answering `/exit`.
    struct Hello;

    impl Application for Hello {
        fn handle(
            &self,
            request: &Request,
            _body: &mut dyn Body,
            response: &mut dyn Response,
        ) -> Outcome {
            let _ = response.start("200 OK", &[]);
            let _ = response.write_final(b"hi");
            if request.param(b"REQUEST_URI") == Some(b"/exit") {
                Outcome::Exit
            } else {
                Outcome::Complete
            }
        }
    }

    /// What an engine borrows.
    struct Fixture {
        opts: RunOptions,
        shutdown: Arc<Shutdown>,
        app: Hello,
    }

    impl Fixture {
        fn new(max_requests: Option<u64>) -> Self {
            Fixture {
                opts: RunOptions {
                    max_requests,
                    ..RunOptions::default()
                },
                shutdown: Shutdown::new(Vec::new()),
                app: Hello,
            }
        }

        /// A loop over IIS's single connection (`single`) or a generic server's.
        fn engine<'a>(&'a self, single: bool, workers: Option<Workers<'a>>) -> Engine<'a, Hello> {
            let setup = Setup {
                app: &self.app,
                opts: &self.opts,
                shutdown: &self.shutdown,
                single,
                iis: single,
                codec_config: if single {
                    fastcgi::Config::iis()
                } else {
                    fastcgi::Config::generic(self.opts.max_conns)
                },
                transport_name: "test",
            };
            setup.engine(Poll::new().expect("poll"), workers)
        }
    }

    /// Adds a connection; returns its token and the web server's end (blocking, with a
    /// read timeout).
    fn connect(engine: &mut Engine<'_, Hello>) -> (Token, StdUnixStream) {
        let (ours, theirs) = StdUnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        theirs
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let token = Token(engine.next_token);
        engine
            .add_conn(
                Stream::Unix(mio::net::UnixStream::from_std(ours)),
                "test".into(),
            )
            .expect("register");
        (token, theirs)
    }

    /// A complete `GET path` on a kept connection.
    fn get(id: u16, path: &str) -> Vec<u8> {
        let path = path.as_bytes();
        Wire::new()
            .begin(id, true)
            .params(
                id,
                &[
                    (b"REQUEST_METHOD", b"GET"),
                    (b"REQUEST_URI", path),
                    (b"SCRIPT_NAME", b""),
                    (b"PATH_INFO", path),
                    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
                ],
                4096,
            )
            .stdin(id, b"", 64)
            .bytes
    }

    /// Everything the web server has received so far, as records.
    fn received(peer: &mut StdUnixStream) -> Vec<Record> {
        peer.set_nonblocking(true).expect("nonblocking");
        let mut bytes = Vec::new();
        let mut buf = [0; 4096];
        while let Ok(n @ 1..) = peer.read(&mut buf) {
            bytes.extend_from_slice(&buf[..n]);
        }
        decode_all(&bytes)
    }

    fn end_requests(records: &[Record]) -> Vec<EndRequestBody> {
        records
            .iter()
            .filter(|r| r.header().record_type == RecordType::EndRequest)
            .filter_map(|r| EndRequestBody::parse(r.content()))
            .collect()
    }

    fn stdout(records: &[Record]) -> String {
        let bytes: Vec<u8> = records
            .iter()
            .filter(|r| r.header().record_type == RecordType::Stdout)
            .flat_map(|r| r.content().to_vec())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Puts `jobs` on connection `t` and queues each in the FIFO, as `service` would.
    fn queue(engine: &mut Engine<'_, Hello>, t: Token, jobs: Vec<Job>) {
        for job in jobs {
            engine.conns.get_mut(&t).expect("conn").jobs.push_back(job);
            engine.fifo.push_back(t);
        }
    }

    /// A request waiting to run with `stdin_len` body bytes buffered, complete or not.
    fn job(id: u16, stdin_len: usize, stdin_done: bool) -> Job {
        Job {
            id,
            kind: JobKind::Rejected(Rejection::Malformed),
            stdin: VecDeque::new(),
            stdin_len,
            stdin_done,
            aborted: false,
            progress: Instant::now(),
        }
    }

    mod slots {
        use super::*;

        #[test]
        fn connections_take_the_tokens_after_the_waker_and_listener_numbered_from_one() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (a, _pa) = connect(&mut e);
            let (b, _pb) = connect(&mut e);
            assert_eq!((a, b), (Token(FIRST_CONN), Token(FIRST_CONN + 1)));
            assert!(![WAKER, LISTENER].contains(&a));
            assert_eq!(e.conns[&a].peer, "test (connection 1)");
            assert_eq!(e.conns[&b].peer, "test (connection 2)");
        }

        #[test]
        fn a_dropped_connection_leaves_the_table_and_the_fifo_and_its_token_is_not_reused() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (a, _pa) = connect(&mut e);
            let (b, _pb) = connect(&mut e);
            queue(&mut e, a, vec![job(1, 0, true)]);
            queue(&mut e, b, vec![job(1, 0, true)]);
            queue(&mut e, a, vec![job(2, 0, true)]);
            e.drop_conn(a, None);
            assert!(!e.conns.contains_key(&a));
            assert_eq!(e.fifo, [b]);
            let (c, _pc) = connect(&mut e);
            assert_eq!(c, Token(FIRST_CONN + 2));
        }

        #[test]
        fn a_connection_added_during_shutdown_refuses_new_requests() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            e.begin_shutdown(StopReason::Signal);
            let (t, mut peer) = connect(&mut e);
            peer.write_all(&get(1, "/")).expect("write");
            e.service(t);
            assert!(e.fifo.is_empty(), "nothing queued");
            let ends = end_requests(&received(&mut peer));
            assert_eq!(ends.len(), 1);
            assert_eq!(ends[0].protocol_status, ProtocolStatus::Overloaded);
        }

        #[test]
        fn a_request_read_from_a_connection_is_queued_once() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (t, mut peer) = connect(&mut e);
            peer.write_all(&get(1, "/")).expect("write");
            e.service(t);
            e.service(t);
            assert_eq!(e.fifo, [t]);
            assert_eq!(e.conns[&t].new_jobs, 0, "handed over to the FIFO");
        }
    }

    mod fifo {
        use super::*;

        #[test]
        fn a_connections_later_request_never_overtakes_its_first() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (a, _pa) = connect(&mut e);
            queue(&mut e, a, vec![job(1, 10, false), job(2, 0, true)]);
            assert_eq!(e.next_ready(), None);
        }

        #[test]
        fn a_request_still_receiving_its_body_lets_a_ready_one_go_first() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (a, _pa) = connect(&mut e);
            let (b, _pb) = connect(&mut e);
            queue(&mut e, a, vec![job(1, 10, false)]);
            queue(&mut e, b, vec![job(1, 0, true)]);
            assert_eq!(e.next_ready(), Some(1));
        }

        #[test]
        fn a_request_whose_buffered_body_reached_the_cap_may_run() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (a, _pa) = connect(&mut e);
            let cap = f.opts.queued_body_bytes;
            queue(&mut e, a, vec![job(1, cap, false)]);
            assert_eq!(e.next_ready(), Some(0));
        }

        #[test]
        fn an_aborted_request_or_one_whose_peer_closed_may_run() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (a, _pa) = connect(&mut e);
            let (b, _pb) = connect(&mut e);
            queue(&mut e, a, vec![job(1, 0, false)]);
            queue(&mut e, b, vec![job(1, 0, false)]);
            assert_eq!(e.next_ready(), None);
            e.conns.get_mut(&b).expect("b").eof = true;
            assert_eq!(e.next_ready(), Some(1));
            e.conns.get_mut(&a).expect("a").jobs[0].aborted = true;
            assert_eq!(e.next_ready(), Some(0));
        }

        #[test]
        fn under_iis_a_request_runs_as_soon_as_its_params_are_complete() {
            let f = Fixture::new(None);
            let mut e = f.engine(true, None);
            let (a, _pa) = connect(&mut e);
            queue(&mut e, a, vec![job(1, 0, false)]);
            assert_eq!(e.next_ready(), Some(0));
        }

        #[test]
        fn an_entry_whose_connection_is_gone_is_handed_out_and_discarded() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            e.fifo.push_back(Token(99));
            assert_eq!(e.next_ready(), Some(0));
            e.run_job(Token(99));
            assert_eq!(e.requests, 0);
        }
    }

    mod write_interest {
        use super::*;

        /// Queues a `GET_VALUES_RESULT` on `t`: output waiting to be written.
        fn pending_output(e: &mut Engine<'_, Hello>, t: Token) {
            let c = e.conns.get_mut(&t).expect("conn");
            c.codec
                .recv(&Wire::new().get_values(&[b"FCGI_MAX_CONNS"]).bytes)
                .expect("well-framed");
            assert!(c.codec.has_pending_output());
        }

        #[test]
        fn a_connection_is_registered_for_writability_only_while_its_output_is_blocked() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (t, _peer) = connect(&mut e);
            pending_output(&mut e, t);
            e.sync_write_interest();
            assert!(!e.conns[&t].flags.write_interest, "writable: no need");
            e.conns.get_mut(&t).expect("conn").flags.writable = false;
            e.sync_write_interest();
            assert!(e.conns[&t].flags.write_interest, "blocked write");
            e.conns.get_mut(&t).expect("conn").flags.writable = true;
            e.sync_write_interest();
            assert!(!e.conns[&t].flags.write_interest, "writable again");
        }

        #[test]
        fn a_connection_that_cannot_be_reregistered_is_dropped() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (t, _peer) = connect(&mut e);
            pending_output(&mut e, t);
            let c = e.conns.get_mut(&t).expect("conn");
            c.flags.writable = false;
            e.poll
                .registry()
                .deregister(&mut c.stream)
                .expect("deregister");
            e.sync_write_interest();
            assert!(!e.conns.contains_key(&t));
        }
    }

    mod stopping {
        use super::*;

        #[test]
        fn the_loop_stops_once_max_requests_have_run() {
            let f = Fixture::new(Some(2));
            let mut e = f.engine(false, None);
            let (_, mut pa) = connect(&mut e);
            let (_, mut pb) = connect(&mut e);
            pa.write_all(&get(1, "/")).expect("write");
            pb.write_all(&get(1, "/")).expect("write");
            assert_eq!(e.serve().expect("serve"), StopReason::MaxRequests);
            assert_eq!(e.requests, 2);
            for peer in [&mut pa, &mut pb] {
                let records = received(peer);
                assert!(stdout(&records).starts_with("Status: 200 OK\r\n"));
                assert_eq!(end_requests(&records).len(), 1);
            }
        }

        #[test]
        fn requests_already_queued_when_the_limit_is_reached_still_run() {
            let f = Fixture::new(Some(1));
            let mut e = f.engine(false, None);
            let (_, mut pa) = connect(&mut e);
            let (_, mut pb) = connect(&mut e);
            pa.write_all(&get(1, "/")).expect("write");
            pb.write_all(&get(1, "/")).expect("write");
            assert_eq!(e.serve().expect("serve"), StopReason::MaxRequests);
            assert_eq!(e.requests, 2);
        }

        #[test]
        fn max_requests_counts_the_requests_of_every_worker_loop() {
            let f = Fixture::new(Some(5));
            let started = AtomicU64::new(4); // the other loops have run four
            let workers = Workers {
                started: Some(&started),
                ready_since: None,
            };
            let mut e = f.engine(false, Some(workers));
            let (_, mut peer) = connect(&mut e);
            peer.write_all(&get(1, "/")).expect("write");
            assert_eq!(e.serve().expect("serve"), StopReason::MaxRequests);
            assert_eq!(e.requests, 1, "this loop's own count");
            assert_eq!(started.load(Ordering::Relaxed), 5);
            assert_eq!(
                f.shutdown.requested(),
                Some(Trigger::MaxRequests),
                "the other loops are told"
            );
        }

        #[test]
        fn an_application_asking_to_exit_stops_the_loop_after_its_response() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (_, mut peer) = connect(&mut e);
            peer.write_all(&get(1, "/exit")).expect("write");
            assert_eq!(e.serve().expect("serve"), StopReason::AppExit);
            assert_eq!(e.requests, 1);
            assert_eq!(end_requests(&received(&mut peer)).len(), 1);
            assert_eq!(
                f.shutdown.requested(),
                None,
                "one loop: nobody else to tell"
            );
        }

        #[test]
        fn under_iis_the_loop_ends_when_its_one_connection_closes() {
            let f = Fixture::new(None);
            let mut e = f.engine(true, None);
            let (_, peer) = connect(&mut e);
            drop(peer);
            assert_eq!(e.serve().expect("serve"), StopReason::TransportClosed);
            assert_eq!(e.requests, 0);
            assert!(e.conns.is_empty());
        }

        #[test]
        fn a_shutdown_trigger_stops_an_idle_loop() {
            let f = Fixture::new(None);
            let mut e = f.engine(false, None);
            let (_, _peer) = connect(&mut e);
            f.shutdown.trigger(Trigger::Signal);
            assert_eq!(e.serve().expect("serve"), StopReason::Signal);
        }
    }
}
