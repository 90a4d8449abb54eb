//! One request's I/O while the application runs: the [`Body`] it reads and the [`Response`]
//! it writes, both over the request's own connection.
//!
//! The connection is taken out of the engine's table for the duration, so the exchange owns
//! it. Waits (for body bytes, for room to write) poll the engine's [`Poll`] and record any
//! readiness seen on *other* connections in their flags, so nothing is lost for the loop.
//! Body and response share one [`Exchange`] behind a `Mutex` (uncontended; it makes both
//! handles `Send` for the Python bridge, which releases the GIL around blocking calls).

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Buf;
use mio::{Events, Poll, Token};

use super::conn::{Conn, Flags, LISTENER, WAKER};
use super::options::RunOptions;
use super::{Outcome, Response};
use crate::runtime::fastcgi::Frame;

/// What the engine waits on besides the request's connection.
pub(super) struct Waiter<'e> {
    pub poll: &'e mut Poll,
    pub events: &'e mut Events,
    pub others: &'e mut HashMap<Token, Conn>,
    pub listener_ready: &'e mut bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Read,
    Write,
}

impl Waiter<'_> {
    /// Polls until `token` is ready for `want` (or failed), noting everything else seen.
    fn wait(
        &mut self,
        token: Token,
        flags: &mut Flags,
        want: Want,
        deadline: Instant,
    ) -> io::Result<()> {
        loop {
            let ready = match want {
                Want::Read => flags.readable,
                Want::Write => flags.writable,
            };
            if ready {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    match want {
                        Want::Read => "timed out waiting for request body bytes",
                        Want::Write => "timed out waiting for the web server to read the response",
                    },
                ));
            }
            match self.poll.poll(self.events, Some(deadline - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.note_events(token, flags);
        }
    }

    /// Collects the readiness already reported, without waiting: one `epoll_wait` with a zero
    /// timeout (on Windows this is also what completes the pipe's overlapped reads).
    fn peek(&mut self, token: Token, flags: &mut Flags) -> io::Result<()> {
        match self.poll.poll(self.events, Some(Duration::ZERO)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.note_events(token, flags);
        Ok(())
    }

    /// Records the last poll's events: `token`'s in `flags`, the others' in their own flags.
    fn note_events(&mut self, token: Token, flags: &mut Flags) {
        for ev in self.events.iter() {
            let t = ev.token();
            if t == token {
                flags.note(ev);
            } else if t == LISTENER {
                *self.listener_ready = true;
            } else if t != WAKER
                && let Some(c) = self.others.get_mut(&t)
            {
                c.flags.note(ev);
            }
        }
    }
}

/// How often, at most, a streamed response looks for an `ABORT_REQUEST` or a hang-up before
/// writing a chunk. A response written within this time of its start never looks at all, so
/// the one-write answer and quick streams keep their system-call count; a slow generator is
/// stopped at its first chunk after the abort.
const ABORT_CHECK_EVERY: Duration = Duration::from_millis(10);

/// Reads (of up to the engine's read chunk each) one such look may make: enough to get past
/// other records to an abort behind them, bounded so a busy connection cannot keep the
/// response from being written.
const ABORT_CHECK_READS: usize = 4;

/// The running request's state.
pub(super) struct Exchange<'e> {
    pub conn: Conn,
    pub token: Token,
    pub waiter: Waiter<'e>,
    pub scratch: &'e mut Vec<u8>,
    pub opts: &'e RunOptions,
    pub id: u16,
    /// The header block, built by `start`, sent with the first chunk or the end.
    head: Option<Vec<u8>>,
    headers_sent: bool,
    ended: bool,
    /// The connection failed (EOF, reset, framing, timeout): nothing more can be sent.
    broken: Option<io::Error>,
    /// When the connection was last read for an abort (see [`Exchange::look_for_abort`]).
    checked: Instant,
}

/// How the request's connection leaves the exchange.
pub(super) enum Fate {
    /// Keep serving it.
    Keep,
    /// `KEEP_CONN` was 0: lingering close.
    Close,
    /// It failed or must be cut (the reason is logged by the engine).
    Drop(String),
}

fn copy_error(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

impl<'e> Exchange<'e> {
    pub fn new(
        conn: Conn,
        token: Token,
        id: u16,
        waiter: Waiter<'e>,
        scratch: &'e mut Vec<u8>,
        opts: &'e RunOptions,
    ) -> Self {
        Exchange {
            conn,
            token,
            waiter,
            scratch,
            opts,
            id,
            head: None,
            headers_sent: false,
            ended: false,
            broken: None,
            checked: Instant::now(),
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        let copy = copy_error(&e);
        if self.broken.is_none() {
            self.broken = Some(e);
        }
        copy
    }

    /// Reads once from the connection (non-blocking) and feeds the codec. `Ok(true)`: bytes
    /// arrived; `Ok(false)`: none available now.
    fn fill_once(&mut self) -> io::Result<bool> {
        if let Some(e) = &self.broken {
            return Err(copy_error(e));
        }
        match self.conn.read_some(self.scratch) {
            Ok(progress) => Ok(progress),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn wait(&mut self, want: Want, deadline: Instant) -> io::Result<()> {
        let r = self
            .waiter
            .wait(self.token, &mut self.conn.flags, want, deadline);
        r.map_err(|e| self.fail(e))
    }

    /// While the application streams its response, reads what the web server sent meanwhile
    /// without blocking (at most every [`ABORT_CHECK_EVERY`]): an `ABORT_REQUEST` for this
    /// request marks it aborted, EOF or a reset marks the connection broken, so the write
    /// about to happen fails and the application stops. Everything else read stays for later:
    /// management records are answered, a pipelined request waits in the codec or its job
    /// (HAProxy). Backpressure is kept: nothing is read while queued bodies, or this request's
    /// own unread body, are at the buffer cap.
    fn look_for_abort(&mut self) -> io::Result<()> {
        let now = Instant::now();
        if now.saturating_duration_since(self.checked) < ABORT_CHECK_EVERY {
            return Ok(());
        }
        self.checked = now;
        let cap = self.opts.queued_body_bytes;
        let may_read = |conn: &Conn| {
            // EOF seen before the application ran is a half-close after a complete request:
            // the response is still wanted.
            conn.want_read(cap)
                && conn
                    .running
                    .as_ref()
                    .is_some_and(|j| !j.aborted && (j.stdin_done || j.stdin_len < cap))
        };
        if !may_read(&self.conn) {
            return Ok(());
        }
        if !self.conn.flags.readable {
            let peeked = self.waiter.peek(self.token, &mut self.conn.flags);
            peeked.map_err(|e| self.fail(e))?;
        }
        for _ in 0..ABORT_CHECK_READS {
            if !may_read(&self.conn) || !self.fill_once()? {
                break;
            }
        }
        Ok(())
    }

    fn read_body(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut deadline = Instant::now() + self.opts.read_timeout;
        loop {
            let Some(job) = self.conn.running.as_mut() else {
                return Ok(0);
            };
            if let Some(front) = job.stdin.front_mut() {
                let n = front.len().min(buf.len());
                buf[..n].copy_from_slice(&front[..n]);
                front.advance(n);
                if front.is_empty() {
                    job.stdin.pop_front();
                }
                job.stdin_len -= n;
                return Ok(n);
            }
            if job.aborted {
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "the web server aborted the request",
                ));
            }
            if job.stdin_done {
                return Ok(0);
            }
            if self.fill_once()? {
                deadline = Instant::now() + self.opts.read_timeout;
                continue;
            }
            self.wait(Want::Read, deadline)?;
        }
    }

    /// Discards unread body bytes, within the drain caps, so `END_REQUEST` does not overtake
    /// the client's upload (`fastcgi-protocol.md` §7).
    fn drain(&mut self) {
        let deadline = Instant::now() + self.opts.drain_time;
        let mut drained: u64 = 0;
        loop {
            let Some(job) = self.conn.running.as_mut() else {
                return;
            };
            drained += job.stdin_len as u64;
            job.stdin.clear();
            job.stdin_len = 0;
            if job.stdin_done || job.aborted || self.broken.is_some() {
                return;
            }
            if drained > self.opts.drain_bytes {
                log::info!(
                    "stopped draining the unread request body after {drained} bytes; \
                     the rest is discarded as it arrives"
                );
                return;
            }
            match self.fill_once() {
                Ok(true) => continue,
                Ok(false) => {
                    if self.wait(Want::Read, deadline).is_err() {
                        // `wait` marked the connection broken on a real error; a timeout
                        // only ends the drain.
                        if self
                            .broken
                            .as_ref()
                            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
                        {
                            self.broken = None;
                        }
                        log::info!("stopped draining the unread request body after the time cap");
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Sends `chunk` (after the header block if unsent) as STDOUT records; with
    /// `end = Some(app_status)` also the empty STDOUT and `END_REQUEST`, in the same write.
    fn send(&mut self, chunk: &[u8], end: Option<u32>) -> io::Result<()> {
        if self.ended {
            return Err(io::Error::other("the response has already ended"));
        }
        if let Some(e) = &self.broken {
            return Err(copy_error(e));
        }
        if end.is_none() && !(chunk.is_empty() && self.headers_sent) {
            self.look_for_abort()?;
        }
        if self.conn.running.as_ref().is_some_and(|j| j.aborted) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the web server aborted the request",
            ));
        }
        if !self.headers_sent && self.head.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "response body written before start()",
            ));
        }
        if chunk.is_empty() && end.is_none() && self.headers_sent {
            return Ok(());
        }
        if end.is_some() {
            self.drain();
        }
        let head = if self.headers_sent {
            Vec::new()
        } else {
            self.head.take().unwrap_or_default()
        };
        let total = head.len() + chunk.len();
        let frames: Vec<Frame> = if total == 0 {
            Vec::new()
        } else {
            self.conn
                .codec
                .stdout_frames(self.id, total)
                .map_err(io::Error::other)?
                .collect()
        };
        let before = self.conn.codec.pending_output().len();
        if let Some(status) = end {
            self.conn
                .codec
                .end_request(self.id, status)
                .map_err(io::Error::other)?;
            self.ended = true;
            self.conn.running = None;
        }
        let result = {
            let Conn {
                stream,
                codec,
                flags,
                ..
            } = &mut self.conn;
            let pending = codec.pending_output();
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(frames.len() * 4 + 2);
            if before > 0 {
                slices.push(IoSlice::new(&pending[..before]));
            }
            let h = head.len();
            for f in &frames {
                slices.push(IoSlice::new(&f.header));
                let (s, e) = (f.body.start, f.body.end);
                if s < h {
                    slices.push(IoSlice::new(&head[s..e.min(h)]));
                }
                if e > h {
                    slices.push(IoSlice::new(&chunk[s.max(h) - h..e - h]));
                }
                if !f.padding.is_empty() {
                    slices.push(IoSlice::new(f.padding));
                }
            }
            if pending.len() > before {
                slices.push(IoSlice::new(&pending[before..]));
            }
            let deadline = Instant::now() + self.opts.write_timeout;
            write_all(
                stream,
                flags,
                &mut self.waiter,
                self.token,
                &mut slices,
                deadline,
            )
            .map(|()| pending.len())
        };
        match result {
            Ok(written_pending) => {
                self.conn.codec.consume_output(written_pending);
                self.headers_sent = true;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn start(&mut self, status: &str, headers: &[(&[u8], &[u8])]) -> io::Result<()> {
        if self.headers_sent {
            return Err(io::Error::other("the response headers were already sent"));
        }
        self.head = Some(header_block(status, headers)?);
        Ok(())
    }

    /// A short plain-text response from the server itself (errors, rejections).
    pub fn respond_plain(&mut self, status: &str, message: &str) -> io::Result<()> {
        let body = format!("{message}\n");
        let len = body.len().to_string();
        self.head = None;
        self.start(
            status,
            &[
                (b"Content-Type", b"text/plain; charset=utf-8"),
                (b"Content-Length", len.as_bytes()),
            ],
        )?;
        self.send(body.as_bytes(), Some(0))
    }

    /// Cuts a response the application failed after its headers went out, so that the web
    /// server aborts the client's response instead of ending it cleanly: a record no web
    /// server accepts in a response ([`crate::runtime::fastcgi::Connection::cut_response`]),
    /// then a lingering close. A close alone is not enough: nginx ends the client's response
    /// cleanly when the connection closes without `FCGI_KEEP_CONN`, or with
    /// `fastcgi_buffering off` (README, "A response cut short").
    fn cut(&mut self) -> io::Result<()> {
        log::info!(
            "request {}: the response failed after its headers were sent; cutting it short so \
             the client sees an incomplete response",
            self.id
        );
        self.conn
            .codec
            .cut_response(self.id)
            .map_err(io::Error::other)?;
        self.ended = true;
        self.conn.running = None;
        self.write_pending()
    }

    /// Writes the codec's pending output, waiting for the peer up to the write timeout.
    fn write_pending(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.opts.write_timeout;
        let Conn {
            stream,
            codec,
            flags,
            ..
        } = &mut self.conn;
        let pending = codec.pending_output();
        let len = pending.len();
        write_all(
            stream,
            flags,
            &mut self.waiter,
            self.token,
            &mut [IoSlice::new(pending)],
            deadline,
        )?;
        codec.consume_output(len);
        Ok(())
    }

    /// Ends a request the web server aborted: the empty STDOUT and
    /// `END_REQUEST{0, REQUEST_COMPLETE}`, whatever was sent before (iis-runtime §12 item 5,
    /// fastcgi-protocol §6). The connection stays open.
    fn end_aborted(&mut self) -> io::Result<()> {
        self.conn
            .codec
            .end_request(self.id, 0)
            .map_err(io::Error::other)?;
        self.ended = true;
        self.conn.running = None;
        self.write_pending()
    }

    /// Ends the request after the application returned `outcome`. `iis`: the peer is IIS,
    /// which gets a non-zero app status for a response that failed mid-way; every other web
    /// server gets the response cut ([`Exchange::cut`]).
    pub fn finish(
        mut self,
        outcome: Outcome,
        iis: bool,
        error_id: crate::runtime::logging::ErrorId,
    ) -> (Conn, Fate) {
        if !self.ended
            && self.broken.is_none()
            && self.conn.running.as_ref().is_some_and(|j| j.aborted)
        {
            log::debug!(
                "request {} was aborted by the web server; ended it",
                self.id
            );
            if let Err(e) = self.end_aborted() {
                self.broken = Some(e);
            }
        }
        if !self.ended && self.broken.is_none() {
            let result = match outcome {
                Outcome::Complete | Outcome::Exit if self.headers_sent || self.head.is_some() => {
                    self.send(&[], Some(0))
                }
                Outcome::Complete | Outcome::Exit | Outcome::Aborted if !self.headers_sent => {
                    if outcome != Outcome::Aborted {
                        log::error!(
                            "the application returned without starting a response (error id \
                             {error_id})"
                        );
                    }
                    self.respond_plain(
                        "500 Internal Server Error",
                        &format!("Internal Server Error (error id {error_id})"),
                    )
                }
                _ if iis => {
                    // IIS: END_REQUEST with a non-zero app status; the client gets a
                    // truncated body (iis-runtime §12 item 16).
                    self.send(&[], Some(1))
                }
                _ => self.cut(),
            };
            if let Err(e) = result
                && self.broken.is_none()
            {
                self.broken = Some(e);
            }
        }
        let fate = match self.broken.take() {
            Some(e) => Fate::Drop(describe_failure(&e)),
            None if self.conn.codec.wants_close() => Fate::Close,
            None => Fate::Keep,
        };
        (self.conn, fate)
    }
}

fn describe_failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "the web server closed the connection mid-request".into(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
            format!("the web server went away mid-request ({e})")
        }
        io::ErrorKind::ConnectionAborted => "the web server aborted the request".into(),
        io::ErrorKind::TimedOut => format!("{e}"),
        _ => format!("connection failed: {e}"),
    }
}

/// Writes every slice, waiting for writability with the deadline.
fn write_all(
    stream: &mut crate::runtime::transport::Stream,
    flags: &mut Flags,
    waiter: &mut Waiter<'_>,
    token: Token,
    mut slices: &mut [IoSlice<'_>],
    deadline: Instant,
) -> io::Result<()> {
    // Drop leading empty slices so `advance_slices` and the zero-length check behave.
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                flags.writable = false;
                flags.sync_write_interest(true, stream, waiter.poll.registry(), token)?;
                waiter.wait(token, flags, Want::Write, deadline)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `Status: <status>\r\n`, then `Name: value\r\n` for each header, then `\r\n`.
pub(super) fn header_block(status: &str, headers: &[(&[u8], &[u8])]) -> io::Result<Vec<u8>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
    if status.bytes().any(|b| b.is_ascii_control()) || status.len() < 3 {
        return Err(bad("invalid status line"));
    }
    let mut out = Vec::with_capacity(
        32 + headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>(),
    );
    out.extend_from_slice(b"Status: ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(bad("invalid header name"));
        }
        if name.eq_ignore_ascii_case(b"status") {
            return Err(bad("`Status` is not a header an application may set"));
        }
        if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(bad("CR, LF or NUL in a header value"));
        }
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The body handle given to the application.
pub(super) struct BodyPort<'m, 'e>(pub &'m Mutex<Exchange<'e>>);

/// The response handle given to the application.
pub(super) struct ResponsePort<'m, 'e>(pub &'m Mutex<Exchange<'e>>);

fn lock<'m, 'e>(m: &'m Mutex<Exchange<'e>>) -> std::sync::MutexGuard<'m, Exchange<'e>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Read for BodyPort<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        lock(self.0).read_body(buf)
    }
}

impl Response for ResponsePort<'_, '_> {
    fn start(&mut self, status: &str, headers: &[(&[u8], &[u8])]) -> io::Result<()> {
        lock(self.0).start(status, headers)
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        lock(self.0).send(chunk, None)
    }

    fn write_final(&mut self, chunk: &[u8]) -> io::Result<()> {
        lock(self.0).send(chunk, Some(0))
    }

    fn headers_sent(&self) -> bool {
        lock(self.0).headers_sent
    }
}

// The handles must be `Send` so the Python bridge can use them inside `py.detach`.
const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<BodyPort<'static, 'static>>();
    assert_send::<ResponsePort<'static, 'static>>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_block_puts_status_first_with_crlf() {
        let h = header_block(
            "201 Created",
            &[
                (b"Location", b"/x"),
                (b"Set-Cookie", b"a=1"),
                (b"Set-Cookie", b"b=2"),
            ],
        )
        .expect("valid");
        assert_eq!(
            h,
            b"Status: 201 Created\r\nLocation: /x\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
        );
    }

    #[test]
    fn header_block_rejects_response_splitting() {
        for (n, v) in [
            (&b"X-A"[..], &b"1\r\nInjected: yes"[..]),
            (b"X-A", b"a\nb"),
            (b"X-A", b"a\0b"),
            (b"Bad Name", b"v"),
            (b"", b"v"),
            (b"Status", b"200 OK"),
        ] {
            assert!(header_block("200 OK", &[(n, v)]).is_err(), "{n:?} {v:?}");
        }
        assert!(header_block("200 OK\r\nX: y", &[]).is_err());
    }
}
