//! One FastCGI connection as the event loop keeps it: the socket, its codec, the readiness
//! remembered for it ([`Flags`]), and the requests it carried ([`Job`]s) from arrival to the
//! end of their run. Also the token plan the loop's poller uses ([`WAKER`], [`LISTENER`],
//! then one token per connection from [`FIRST_CONN`]).
//!
//! The engine (`super::engine`) owns the table of connections and the request FIFO; the
//! exchange (`super::exchange`) borrows one connection while the application runs. Both read
//! and write the types here and neither names the other. No policy lives here: when to read,
//! what to queue and when to close are the engine's choices.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use bytes::Bytes;
use mio::event::Event as MioEvent;
use mio::{Interest, Token};

use crate::runtime::fastcgi::{self, Event, Params, Rejection};
use crate::runtime::transport::Stream;

/// The poller token of the shutdown waker.
pub(super) const WAKER: Token = Token(0);
/// The poller token of the listening socket.
pub(super) const LISTENER: Token = Token(1);
/// The first connection's token; each new connection takes the next.
pub(super) const FIRST_CONN: usize = 2;

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

    /// Records what one poller event says about this connection: a hang-up or an error
    /// counts as readable (the read that reports it must happen) and as `read_closed`.
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
    /// When the params ended or body bytes last arrived (the queued body's deadline counts
    /// from here).
    pub progress: Instant,
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
    /// When the connection was accepted, last carried bytes in, or last finished a request:
    /// the longest idle one is closed first when the loop is at its connection cap.
    pub active: Instant,
    /// Since when a request has been arriving without being complete (a partial record, or
    /// params not ended), while nothing else is queued or running on the connection.
    pub arriving: Option<Instant>,
    /// The loop has read the connection at least once since accepting it (a connection
    /// accepted in this turn is never closed to make room for the next one).
    pub serviced: bool,
}

/// What reading a connection found.
pub(super) enum Pumped {
    Open,
    Eof,
    Failed(io::Error),
    Framing(fastcgi::DecodeError),
}

impl Conn {
    pub(super) fn new(stream: Stream, codec: fastcgi::Connection, peer: String) -> Self {
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
            active: Instant::now(),
            arriving: None,
            serviced: false,
        }
    }

    /// Whether the connection carries nothing: no request queued, running, arriving or being
    /// answered, and no lingering close. Such a connection may be closed to make room.
    pub(super) fn is_idle(&self) -> bool {
        self.jobs.is_empty()
            && self.running.is_none()
            && self.closing.is_none()
            && self.codec.open_requests() == 0
            && !self.codec.holds_partial_record()
            && !self.codec.has_pending_output()
    }

    /// Whether a request is arriving and nothing else is queued or running: the peer has
    /// begun a request (or a record) and not finished it.
    pub(super) fn is_arriving(&self) -> bool {
        self.jobs.is_empty()
            && self.running.is_none()
            && self.closing.is_none()
            && (self.codec.reading_params() || self.codec.holds_partial_record())
    }

    /// Updates [`Conn::arriving`] after a read: set when a request starts arriving, cleared
    /// once it is complete (or the connection went idle again).
    pub(super) fn note_arrival(&mut self, now: Instant) {
        if self.is_arriving() {
            self.arriving.get_or_insert(now);
        } else {
            self.arriving = None;
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
    pub(super) fn take_events(&mut self) {
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
                        j.progress = Instant::now();
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
            progress: Instant::now(),
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
    pub(super) fn flush(&mut self) -> io::Result<()> {
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
    pub(super) fn pump(&mut self, scratch: &mut [u8], queued_cap: usize) -> Pumped {
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
                    self.active = Instant::now();
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
    pub(super) fn discard(&mut self, scratch: &mut [u8]) -> bool {
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
    pub(super) fn has_complete_job(&self) -> bool {
        self.jobs.iter().any(|j| j.stdin_done || j.aborted)
    }
}

/// Separates a job's kind (params, moved into the environ) from its stream state.
pub(super) fn split_job(mut job: Job) -> (Job, JobKind) {
    let kind = std::mem::replace(&mut job.kind, JobKind::Rejected(Rejection::Malformed));
    (job, kind)
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Write as _;
    use std::os::unix::net::UnixStream as StdUnixStream;
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::*;
    use crate::runtime::fastcgi::testkit::Wire;

    /// A connection over one end of a socket pair (the web server holds the other end), with
    /// a generic codec (`multiplexed`: several requests in flight, as HAProxy sends them).
    fn conn(multiplexed: bool) -> (Conn, StdUnixStream) {
        let (ours, theirs) = StdUnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        let stream = Stream::Unix(mio::net::UnixStream::from_std(ours));
        let config = if multiplexed {
            fastcgi::Config::multiplexing(8)
        } else {
            fastcgi::Config::generic(8)
        };
        let codec = fastcgi::Connection::new(config);
        (Conn::new(stream, codec, "test peer".into()), theirs)
    }

    fn request(id: u16) -> Wire {
        Wire::new()
            .begin(id, true)
            .params(id, &[(b"REQUEST_METHOD", b"POST")], 64)
    }

    fn feed(conn: &mut Conn, wire: Wire) {
        conn.codec.recv(&wire.bytes).expect("well-framed");
        conn.take_events();
    }

    mod jobs {
        use super::*;

        #[test]
        fn each_request_becomes_a_job_counted_as_new_until_the_engine_queues_it() {
            let (mut c, _peer) = conn(true);
            feed(
                &mut c,
                request(1).record(fastcgi::RecordType::Stdin, 1, b"ab"),
            );
            feed(&mut c, request(2));
            let ids: Vec<u16> = c.jobs.iter().map(|j| j.id).collect();
            assert_eq!(ids, [1, 2]);
            assert_eq!(c.new_jobs, 2);
            assert!(matches!(c.jobs[0].kind, JobKind::Request(_)));
        }

        #[test]
        fn body_bytes_follow_their_request_and_the_empty_stdin_completes_it() {
            let (mut c, _peer) = conn(true);
            feed(
                &mut c,
                request(1).record(fastcgi::RecordType::Stdin, 1, b"abc"),
            );
            assert_eq!(c.jobs[0].stdin_len, 3);
            assert!(!c.jobs[0].stdin_done);
            assert!(!c.has_complete_job());
            feed(&mut c, Wire::new().stdin(1, b"de", 64));
            assert_eq!(c.jobs[0].stdin_len, 5);
            assert_eq!(c.jobs[0].stdin.len(), 2, "chunks kept as they came");
            assert!(c.jobs[0].stdin_done);
            assert!(c.has_complete_job());
        }

        #[test]
        fn body_for_the_running_request_goes_to_it_not_to_a_waiting_one() {
            let (mut c, _peer) = conn(true);
            feed(&mut c, request(1));
            feed(&mut c, request(2));
            c.running = c.jobs.pop_front();
            feed(
                &mut c,
                Wire::new().record(fastcgi::RecordType::Stdin, 1, b"xyz"),
            );
            assert_eq!(c.running.as_ref().map(|j| j.stdin_len), Some(3));
            assert_eq!(c.jobs[0].stdin_len, 0);
        }

        #[test]
        fn an_abort_marks_its_job_which_then_counts_as_complete() {
            let (mut c, _peer) = conn(true);
            feed(&mut c, request(1));
            feed(&mut c, request(2));
            feed(&mut c, Wire::new().abort(2));
            assert!(!c.jobs[0].aborted);
            assert!(c.jobs[1].aborted);
            assert!(c.has_complete_job());
        }

        #[test]
        fn split_job_moves_the_params_out_and_keeps_the_stream_state() {
            let (mut c, _peer) = conn(false);
            feed(&mut c, request(1).stdin(1, b"body", 64));
            let job = c.jobs.pop_front().expect("a job");
            let (job, kind) = split_job(job);
            assert!(matches!(kind, JobKind::Request(_)));
            assert_eq!((job.id, job.stdin_len, job.stdin_done), (1, 4, true));
        }
    }

    mod reading {
        use super::*;

        #[test]
        fn reading_pauses_while_a_waiting_request_holds_the_queued_body_cap() {
            let (mut c, _peer) = conn(false);
            feed(
                &mut c,
                request(1).record(fastcgi::RecordType::Stdin, 1, &[7; 100]),
            );
            assert!(c.want_read(101));
            assert!(!c.want_read(100), "100 bytes buffered reach a 100-byte cap");
            feed(
                &mut c,
                Wire::new().record(fastcgi::RecordType::Stdin, 1, &[]),
            );
            assert!(c.want_read(100), "a complete body never holds reading back");
        }

        #[test]
        fn nothing_is_read_after_the_peer_closed() {
            let (mut c, _peer) = conn(false);
            c.eof = true;
            assert!(!c.want_read(usize::MAX));
        }

        #[test]
        fn a_short_read_waits_for_the_next_readiness_event() {
            let (mut c, mut peer) = conn(false);
            peer.write_all(&request(1).stdin(1, b"", 64).bytes)
                .expect("write");
            drop(peer); // end of stream is there too, but not reported yet
            let mut scratch = vec![0; 4096];
            assert!(matches!(c.pump(&mut scratch, 1024), Pumped::Open));
            assert!(!c.flags.readable, "one read, then wait for epoll");
            assert!(!c.eof);
            assert_eq!(c.jobs.len(), 1);
        }

        #[test]
        fn once_read_closed_was_reported_reading_goes_on_to_the_end_of_stream() {
            let (mut c, mut peer) = conn(false);
            peer.write_all(&request(1).stdin(1, b"", 64).bytes)
                .expect("write");
            drop(peer);
            c.flags.read_closed = true;
            let mut scratch = vec![0; 4096];
            assert!(matches!(c.pump(&mut scratch, 1024), Pumped::Eof));
            assert!(c.eof);
            assert_eq!(
                c.jobs.len(),
                1,
                "the request before the end of stream is kept"
            );
        }

        #[test]
        fn a_peer_hanging_up_inside_a_record_is_an_end_of_stream_not_a_framing_fault() {
            let (mut c, mut peer) = conn(false);
            let wire = request(1).bytes;
            peer.write_all(&wire[..wire.len() - 3]).expect("write");
            drop(peer);
            c.flags.read_closed = true;
            let mut scratch = vec![0; 4096];
            assert!(matches!(c.pump(&mut scratch, 1024), Pumped::Eof));
        }

        #[test]
        fn bytes_that_are_not_fastcgi_are_a_framing_fault() {
            let (mut c, mut peer) = conn(false);
            peer.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
            let mut scratch = vec![0; 4096];
            assert!(matches!(c.pump(&mut scratch, 1024), Pumped::Framing(_)));
        }
    }

    mod flags {
        use super::*;

        #[test]
        fn write_interest_is_reregistered_only_when_it_changes() {
            let poll = Poll::new().expect("poll");
            let (mut c, _peer) = conn(false);
            let t = Token(FIRST_CONN);
            // Not registered: any reregister would fail, so an unchanged interest makes none.
            c.flags
                .sync_write_interest(false, &mut c.stream, poll.registry(), t)
                .expect("no change, no system call");
            assert!(
                c.flags
                    .sync_write_interest(true, &mut c.stream, poll.registry(), t)
                    .is_err(),
                "a change does reregister"
            );
            assert!(!c.flags.write_interest, "a failed change is not recorded");

            poll.registry()
                .register(&mut c.stream, t, Interest::READABLE)
                .expect("register");
            c.flags
                .sync_write_interest(true, &mut c.stream, poll.registry(), t)
                .expect("add writability");
            assert!(c.flags.write_interest);
            c.flags
                .sync_write_interest(false, &mut c.stream, poll.registry(), t)
                .expect("drop writability");
            assert!(!c.flags.write_interest);
        }

        #[test]
        fn a_hang_up_marks_the_connection_readable_and_read_closed() {
            let mut poll = Poll::new().expect("poll");
            let (mut c, peer) = conn(false);
            let t = Token(FIRST_CONN);
            poll.registry()
                .register(&mut c.stream, t, Interest::READABLE)
                .expect("register");
            let mut flags = Flags::default();
            drop(peer);
            let mut events = Events::with_capacity(8);
            poll.poll(&mut events, Some(Duration::from_secs(5)))
                .expect("poll");
            for ev in events.iter() {
                assert_eq!(ev.token(), t);
                flags.note(ev);
            }
            assert!(flags.readable && flags.read_closed);
        }

        #[test]
        fn a_new_connection_starts_readable_and_writable_without_write_interest() {
            let (c, _peer) = conn(false);
            assert!(c.flags.readable && c.flags.writable);
            assert!(!c.flags.write_interest && !c.flags.read_closed);
        }
    }
}
