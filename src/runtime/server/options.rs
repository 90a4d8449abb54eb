//! [`RunOptions`]: everything `iiswsgi run` needs, resolved (no clap, absolute paths).

use std::path::PathBuf;
use std::time::Duration;

use crate::runtime::environ::EnvironOptions;
use crate::runtime::logging::LogConfig;
use crate::runtime::transport::ListenAddr;

/// How `iiswsgi run` serves. Built by [`crate::runtime::RawOptions::resolve`] from the flags;
/// every field has a documented default ([`RunOptions::default`]).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Bind this address; `None` serves what stdin holds (IIS, lighttpd, spawn-fcgi).
    pub listen: Option<ListenAddr>,
    /// Where to log.
    pub log: LogConfig,
    /// Environ rules: `X-Original-URL` policy, app prefix / mount point.
    pub environ: EnvironOptions,
    /// The application root (for the WSGI bridge; also the default log folder's parent).
    pub app_root: Option<PathBuf>,
    /// The `iiswsgi.toml` manifest (for the WSGI bridge).
    pub manifest: Option<PathBuf>,
    /// Most connections each event loop (each request thread) holds at once. At the cap the
    /// loop closes its longest-idle connection to accept a new one (`super::admission`);
    /// connections that all carry requests make new ones wait in the listen backlog. Times
    /// the threads, also the `FCGI_MAX_CONNS`/`FCGI_MAX_REQS` answer to `GET_VALUES`.
    /// Default 64.
    pub max_conns: u32,
    /// Exit gracefully after this many requests (like IIS `instanceMaxRequests`, gunicorn
    /// `max_requests`), counted over all worker threads; `None` never.
    pub max_requests: Option<u64>,
    /// Request threads when serving a listening socket (`--listen`, or one on fd 0): each
    /// runs its own event loop and accepts from the shared socket. Over IIS's single
    /// connection there is always one. Default 1.
    pub threads: usize,
    /// Longest wait for the next body bytes, while the app reads the body and while a request
    /// waits its turn with its body incomplete (then the connection is cut). Default 60 s.
    pub read_timeout: Duration,
    /// Longest time a request may take to arrive from its `BEGIN_REQUEST` (or a record from
    /// its first byte) to the end of its params; then the connection is cut. Web servers
    /// send the params in one go. Not applied to IIS's single connection. Default 10 s.
    pub params_timeout: Duration,
    /// After SIGTERM/SIGINT (or IIS's shutdown event), how long the request in flight may
    /// take before the process exits without it (`--graceful-timeout`). Default 30 s.
    pub graceful_timeout: Duration,
    /// Permissions of the unix socket `--listen unix:PATH` creates (`--socket-mode`).
    /// Default 0o666.
    pub socket_mode: u32,
    /// Longest wait for the peer to accept response bytes. Default 60 s.
    pub write_timeout: Duration,
    /// Unread body bytes drained before `END_REQUEST` at most. Default 64 MiB.
    pub drain_bytes: u64,
    /// Longest time spent draining unread body bytes. Default 10 s.
    pub drain_time: Duration,
    /// How long a closing connection is read and discarded after `shutdown(SHUT_WR)` (the
    /// lingering close). Default 2 s.
    pub linger: Duration,
    /// Body bytes buffered for a request that waits its turn; beyond this the server stops
    /// reading that connection until the request runs. Default 1 MiB.
    pub queued_body_bytes: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            listen: None,
            log: LogConfig::default(),
            environ: EnvironOptions::default(),
            app_root: None,
            manifest: None,
            max_conns: 64,
            max_requests: None,
            threads: 1,
            read_timeout: Duration::from_secs(60),
            params_timeout: Duration::from_secs(10),
            graceful_timeout: Duration::from_secs(30),
            socket_mode: 0o666,
            write_timeout: Duration::from_secs(60),
            drain_bytes: 64 * 1024 * 1024,
            drain_time: Duration::from_secs(10),
            linger: Duration::from_secs(2),
            queued_body_bytes: 1024 * 1024,
        }
    }
}
