//! A reload on a listening socket (`--reload`, outside IIS): the loop stops accepting, but the
//! socket stays open (the transport keeps a descriptor for the next image, `RunReport::handover`)
//! and no request is refused, since a refusal is a 502 at the web server. What the
//! connections already carry is answered; idle connections close at once, busy ones as soon as
//! their requests are answered. A web server that sends on a connection just as it closes sees
//! it fail before any response byte, which nginx retries on another connection for a kept-alive
//! one. Over IIS's single connection a reload is a plain stop after the current request.

use std::time::{Duration, Instant};

use mio::Token;

use super::super::Application;
use super::super::conn::Conn;
use super::super::report::StopReason;
use super::super::signals::{Shutdown, Trigger};
use super::Engine;

/// How long the loop waits for requests whose records have started arriving on its
/// connections before it closes them anyway.
const RELOAD_DRAIN: Duration = Duration::from_secs(10);

/// A reload that a stop request overtook during the drain is a stop.
pub(in crate::runtime::server) fn settle(reason: StopReason, shutdown: &Shutdown) -> StopReason {
    match (reason, shutdown.requested()) {
        (StopReason::Reload, Some(Trigger::Signal)) => StopReason::Signal,
        (StopReason::Reload, Some(Trigger::ShutdownEvent)) => StopReason::ShutdownEvent,
        (reason, _) => reason,
    }
}

impl<A: Application> Engine<'_, A> {
    /// Whether this loop is draining for a reload on a listening socket.
    pub(super) fn draining(&self) -> bool {
        self.stop == Some(StopReason::Reload) && !self.single
    }

    /// Starts the drain (module doc); the listener is already gone from the poller.
    pub(super) fn begin_drain(&mut self) {
        self.drain_until = Some(Instant::now() + RELOAD_DRAIN);
        // A request already sent is served: read what every connection holds before telling
        // idle ones from busy ones (its readiness may not have been reported yet).
        let all: Vec<Token> = self.conns.keys().copied().collect();
        for &t in &all {
            if let Some(c) = self.conns.get_mut(&t) {
                c.flags.readable = true;
            }
            self.service(t);
        }
        for t in all {
            self.close_if_drained(t);
        }
    }

    /// While draining, closes connection `t` (lingering) once it has nothing queued, running
    /// or begun.
    pub(super) fn close_if_drained(&mut self, t: Token) {
        if self.draining() && self.conns.get(&t).is_some_and(is_idle) {
            self.linger(t);
        }
    }

    /// While draining: whether a connection carries a request that has begun to arrive (it
    /// will be answered), within [`RELOAD_DRAIN`].
    pub(super) fn awaits_started_requests(&self) -> bool {
        self.draining()
            && self.drain_until.is_some_and(|until| Instant::now() < until)
            && self
                .conns
                .values()
                .any(|c| c.closing.is_none() && c.codec.open_requests() > 0)
    }
}

/// A connection with nothing queued, running or begun, not yet closing.
fn is_idle(c: &Conn) -> bool {
    c.closing.is_none() && c.jobs.is_empty() && c.running.is_none() && c.codec.open_requests() == 0
}
