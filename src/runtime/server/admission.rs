//! Who may hold one of an event loop's connection slots, and for how long, so that idle and
//! slow connections can never starve real ones (issue 16).
//!
//! Each loop (one per worker thread) holds at most `--max-conns` connections. Without more, a
//! peer could fill them with connections that never send a request (any local user, on a
//! world-writable unix socket), or with requests that never finish arriving, and every real
//! request would wait in the listen backlog. So:
//!
//! - **At the cap, the loop makes room** ([`victim`]): it closes the connection idle longest
//!   (no request queued, running, arriving or being answered), else the one whose request has
//!   been arriving longest, if for more than [`SLOW_AFTER`]. A connection accepted in the
//!   current turn is never chosen (it has not been read yet), nor one carrying a complete
//!   request. A web server's idle keep-alive connection may be the one closed: nginx retries
//!   a request that fails on a cached upstream connection on a fresh one (verified with real
//!   nginx in `tests/peers.rs`), and the engine reads a candidate once more just before closing
//!   it, so the race is down to a request written in that very instant.
//! - **Requests that stop arriving are cut** ([`deadline`]): params (or a record) begun and not
//!   finished within [`RunOptions::params_timeout`], and a queued request whose body has made
//!   no progress for [`RunOptions::read_timeout`] (the same bound as a running application's
//!   body reads). Web servers send a request's params in one go, so only a broken or hostile
//!   peer meets these.
//!
//! Nothing here does I/O: it reads the connection table and the clock the engine passes.
//!
//! [`RunOptions::params_timeout`]: super::RunOptions::params_timeout
//! [`RunOptions::read_timeout`]: super::RunOptions::read_timeout

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use mio::Token;

use super::conn::Conn;
use super::options::RunOptions;

/// A request that has been arriving for longer than this counts as slow: at the cap its
/// connection may be closed (after every idle one) to make room.
pub(super) const SLOW_AFTER: Duration = Duration::from_secs(1);

/// Why a connection is cut before its request could run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overdue {
    /// A request (or a record) began and did not finish arriving in time.
    Params(Duration),
    /// A queued request's body made no progress in time.
    Body(Duration),
}

impl fmt::Display for Overdue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Overdue::Params(d) => write!(
                f,
                "its request did not finish arriving within {} s (params timeout)",
                d.as_secs_f32()
            ),
            Overdue::Body(d) => write!(
                f,
                "its request body made no progress for {} s (read timeout)",
                d.as_secs_f32()
            ),
        }
    }
}

/// Which connection to close so that a new one fits: the idle one whose last activity is
/// oldest; failing that, the one whose request has been arriving the longest, if for more than
/// [`SLOW_AFTER`] at `now`. `None` when every connection carries a request (the new one waits
/// in the backlog).
pub(super) fn victim(conns: &HashMap<Token, Conn>, now: Instant) -> Option<Token> {
    let candidates = || conns.iter().filter(|(_, c)| c.serviced);
    let idle = candidates()
        .filter(|(_, c)| c.is_idle())
        .min_by_key(|(t, c)| (c.active, t.0))
        .map(|(&t, _)| t);
    idle.or_else(|| {
        candidates()
            .filter(|(_, c)| c.is_arriving())
            .filter_map(|(t, c)| Some((t, c.arriving?)))
            .filter(|(_, since)| now.saturating_duration_since(*since) > SLOW_AFTER)
            .min_by_key(|(t, since)| (*since, t.0))
            .map(|(&t, _)| t)
    })
}

/// When a loop holding `conns` can take one more connection under a cap of `max`: now if
/// there is room or a [`victim`]; else when the longest-arriving request turns slow; `None`
/// when every connection carries a complete request or is being served.
pub(super) fn room_at(conns: &HashMap<Token, Conn>, max: usize, now: Instant) -> Option<Instant> {
    if conns.len() < max || victim(conns, now).is_some() {
        return Some(now);
    }
    conns
        .values()
        .filter(|c| c.serviced && c.is_arriving())
        .filter_map(|c| c.arriving)
        .min()
        .map(|since| since + SLOW_AFTER)
}

/// When `conn` must be cut if nothing arrives meanwhile, and why; `None` while it owes
/// nothing (idle, running, or a complete request waiting its turn).
pub(super) fn deadline(conn: &Conn, opts: &RunOptions) -> Option<(Instant, Overdue)> {
    if conn.running.is_some() || conn.closing.is_some() || conn.eof {
        return None;
    }
    if let Some(since) = conn.arriving {
        let limit = opts.params_timeout;
        return Some((since + limit, Overdue::Params(limit)));
    }
    let job = conn.jobs.front()?;
    let waiting_for_body = !job.stdin_done
        && !job.aborted
        && job.stdin_len < opts.queued_body_bytes
        && conn.want_read(opts.queued_body_bytes);
    waiting_for_body.then(|| {
        let limit = opts.read_timeout;
        (job.progress + limit, Overdue::Body(limit))
    })
}

/// The earliest [`deadline`] over all connections.
pub(super) fn next_deadline(conns: &HashMap<Token, Conn>, opts: &RunOptions) -> Option<Instant> {
    conns
        .values()
        .filter_map(|c| deadline(c, opts).map(|(at, _)| at))
        .min()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::net::UnixStream as StdUnixStream;

    use super::*;
    use crate::runtime::fastcgi::testkit::Wire;
    use crate::runtime::fastcgi::{self, Connection};
    use crate::runtime::transport::Stream;

    /// A connection the loop has read, with `wire` already fed to its codec.
    fn conn(wire: &[u8]) -> (Conn, StdUnixStream) {
        let (ours, theirs) = StdUnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        let stream = Stream::Unix(mio::net::UnixStream::from_std(ours));
        let codec = Connection::new(fastcgi::Config::generic(8));
        let mut c = Conn::new(stream, codec, "test".into());
        c.codec.recv(wire).expect("framed");
        c.take_events();
        c.serviced = true;
        (c, theirs)
    }

    fn get(id: u16) -> Wire {
        Wire::new()
            .begin(id, true)
            .params(id, &[(b"REQUEST_METHOD", b"GET")], 64)
    }

    fn table(conns: Vec<Conn>) -> HashMap<Token, Conn> {
        conns
            .into_iter()
            .enumerate()
            .map(|(i, c)| (Token(10 + i), c))
            .collect()
    }

    mod victims {
        use super::*;
        use crate::runtime::server::conn::{Job, JobKind};

        #[test]
        fn the_idle_connection_with_the_oldest_activity_goes_first() {
            let now = Instant::now();
            let (mut a, _pa) = conn(b"");
            let (mut b, _pb) = conn(b"");
            a.active = now - Duration::from_secs(5);
            b.active = now - Duration::from_secs(9);
            let conns = table(vec![a, b]);
            assert_eq!(victim(&conns, now), Some(Token(11)));
        }

        #[test]
        fn a_connection_carrying_a_request_is_never_chosen() {
            let now = Instant::now();
            let (queued, _p1) = conn(&get(1).stdin(1, b"", 64).bytes);
            let (mut running, _p2) = conn(b"");
            running.jobs.push_back(queued_job());
            running.running = running.jobs.pop_front();
            let (body_arriving, _p3) = conn(&get(1).bytes);
            let conns = table(vec![queued, running, body_arriving]);
            assert_eq!(victim(&conns, now + Duration::from_secs(60)), None);
        }

        #[test]
        fn a_connection_not_yet_read_is_never_chosen() {
            let (mut fresh, _p) = conn(b"");
            fresh.serviced = false;
            let conns = table(vec![fresh]);
            assert_eq!(victim(&conns, Instant::now()), None);
        }

        #[test]
        fn without_idle_ones_the_longest_arriving_request_goes_once_it_is_slow() {
            let now = Instant::now();
            let (mut a, _pa) = conn(&Wire::new().begin(1, true).bytes);
            let (mut b, _pb) = conn(&get(1).bytes[..5]);
            a.arriving = Some(now - Duration::from_millis(1500));
            b.arriving = Some(now - Duration::from_millis(3000));
            let mut conns = table(vec![a, b]);
            assert_eq!(victim(&conns, now), Some(Token(11)), "the older");
            for c in conns.values_mut() {
                c.arriving = Some(now - Duration::from_millis(500));
            }
            assert_eq!(victim(&conns, now), None, "not slow yet");
        }

        #[test]
        fn an_idle_connection_goes_before_any_slow_one() {
            let now = Instant::now();
            let (mut slow, _p1) = conn(&Wire::new().begin(1, true).bytes);
            slow.arriving = Some(now - Duration::from_secs(30));
            let (mut idle, _p2) = conn(b"");
            idle.active = now;
            let conns = table(vec![slow, idle]);
            assert_eq!(victim(&conns, now), Some(Token(11)));
        }

        fn queued_job() -> Job {
            Job {
                id: 1,
                kind: JobKind::Rejected(crate::runtime::fastcgi::Rejection::Malformed),
                stdin: std::collections::VecDeque::new(),
                stdin_len: 0,
                stdin_done: true,
                aborted: false,
                progress: Instant::now(),
            }
        }
    }

    mod deadlines {
        use super::*;

        fn opts() -> RunOptions {
            RunOptions {
                params_timeout: Duration::from_secs(3),
                read_timeout: Duration::from_secs(7),
                ..RunOptions::default()
            }
        }

        #[test]
        fn params_begun_and_unfinished_are_due_after_the_params_timeout() {
            let (mut c, _p) = conn(&Wire::new().begin(1, true).bytes);
            let since = Instant::now();
            c.note_arrival(since);
            assert_eq!(
                deadline(&c, &opts()),
                Some((
                    since + Duration::from_secs(3),
                    Overdue::Params(Duration::from_secs(3))
                ))
            );
        }

        #[test]
        fn a_queued_body_is_due_a_read_timeout_after_its_last_bytes() {
            let (c, _p) = conn(&get(1).record(fastcgi::RecordType::Stdin, 1, b"ab").bytes);
            let job = c.jobs.front().expect("queued");
            assert_eq!(
                deadline(&c, &opts()),
                Some((
                    job.progress + Duration::from_secs(7),
                    Overdue::Body(Duration::from_secs(7))
                ))
            );
        }

        #[test]
        fn idle_complete_running_or_capped_requests_owe_nothing() {
            let (idle, _p1) = conn(b"");
            assert_eq!(deadline(&idle, &opts()), None);
            let (complete, _p2) = conn(&get(1).stdin(1, b"", 64).bytes);
            assert_eq!(deadline(&complete, &opts()), None);
            let (mut running, _p3) = conn(&get(1).bytes);
            running.running = running.jobs.pop_front();
            assert_eq!(deadline(&running, &opts()), None);
            let capped = RunOptions {
                queued_body_bytes: 2,
                ..opts()
            };
            let (at_cap, _p4) = conn(&get(1).record(fastcgi::RecordType::Stdin, 1, b"ab").bytes);
            assert_eq!(deadline(&at_cap, &capped), None, "it may run: no deadline");
        }

        #[test]
        fn the_arrival_mark_is_set_once_and_cleared_when_the_request_is_complete() {
            let (mut c, _p) = conn(&Wire::new().begin(1, true).bytes);
            let first = Instant::now();
            c.note_arrival(first);
            c.note_arrival(first + Duration::from_secs(1));
            assert_eq!(c.arriving, Some(first), "kept from the first read");
            c.codec
                .recv(&Wire::new().params(1, &[(b"A", b"b")], 64).bytes)
                .expect("framed");
            c.take_events();
            c.note_arrival(first + Duration::from_secs(2));
            assert_eq!(c.arriving, None);
        }
    }
}
