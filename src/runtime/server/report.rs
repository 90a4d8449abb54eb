//! What the server tells its caller: what the application factory learns before the first
//! request ([`ServerInfo`], with a [`StopHandle`] to end the run), why a run stopped
//! ([`StopReason`], [`RunReport`]) or could not start ([`RunError`]). Plain data; the event
//! loop that produces it is `super::engine`.

use std::fmt;
use std::io;
use std::sync::Arc;

use super::signals::{Shutdown, Trigger};
use crate::runtime::logging::Destination;
use crate::runtime::transport::{Kind, TransportError};

/// Why [`super::run`] returned normally.
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
    /// The application raised `SystemExit` ([`super::Outcome::Exit`]).
    AppExit,
    /// `max_requests` were served.
    MaxRequests,
    /// A watched file changed ([`StopHandle::reload`]); outside IIS the caller restarts in
    /// place with [`RunReport::handover`].
    Reload,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::TransportClosed => "the web server closed the connection",
            StopReason::FramingError => "the web server sent malformed FastCGI",
            StopReason::Signal => "a termination signal",
            StopReason::ShutdownEvent => "IIS's shutdown event",
            StopReason::AppExit => "the application raised SystemExit",
            StopReason::MaxRequests => "the request limit was reached",
            StopReason::Reload => "a watched file changed (reload)",
        })
    }
}

/// What a run did.
#[derive(Debug)]
pub struct RunReport {
    /// Requests handled (including ones answered by the server itself).
    pub requests: u64,
    /// Why the server stopped.
    pub reason: StopReason,
    /// How many times the event loop waited for readiness between requests (a keep-alive
    /// connection sending one request at a time costs one each; more means spurious
    /// wake-ups).
    pub waits: u64,
    /// After a reload outside IIS: the listening socket, still open (its unix socket file
    /// kept), for the caller to carry into the re-executed process.
    #[cfg(unix)]
    pub handover: Option<crate::runtime::transport::Handover>,
}

/// Why `iiswsgi run` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No transport.
    #[error("no FastCGI transport")]
    Transport(#[source] TransportError),
    /// The readiness poller failed.
    #[error("the event loop failed")]
    Poll(#[source] io::Error),
    /// The application could not be created (Python failed to start).
    #[error("the application could not start")]
    App(#[source] Box<dyn std::error::Error + Send + Sync>),
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
    /// A handle on the run-wide shutdown flag.
    pub(super) fn new(shutdown: Arc<Shutdown>) -> Self {
        StopHandle(shutdown)
    }

    /// Requests the stop (idempotent; the first trigger of any kind wins).
    pub fn request(&self) {
        self.0.trigger(Trigger::App);
    }

    /// Requests a reload: like [`StopHandle::request`] over IIS's single connection; on a
    /// listening socket the server stops accepting (the socket stays open), serves what its
    /// connections already carry, closes each once idle, and returns [`StopReason::Reload`]
    /// with the socket in [`RunReport::handover`]. A SIGTERM meanwhile turns it into a stop.
    pub fn reload(&self) {
        self.0.trigger(Trigger::Reload);
    }
}
