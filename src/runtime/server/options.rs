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
    /// Most connections open at once; further ones wait in the listen backlog. Also the
    /// `FCGI_MAX_CONNS`/`FCGI_MAX_REQS` answer to `GET_VALUES`. Default 64.
    pub max_conns: u32,
    /// Exit gracefully after this many requests (like IIS `instanceMaxRequests`, gunicorn
    /// `max_requests`), counted over all worker threads; `None` never.
    pub max_requests: Option<u64>,
    /// Request threads when serving a listening socket (`--listen`, or one on fd 0): each
    /// runs its own event loop and accepts from the shared socket. Over IIS's single
    /// connection there is always one. Default 1.
    pub threads: usize,
    /// Longest wait for the next body bytes while the app reads the body. Default 60 s.
    pub read_timeout: Duration,
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
            write_timeout: Duration::from_secs(60),
            drain_bytes: 64 * 1024 * 1024,
            drain_time: Duration::from_secs(10),
            linger: Duration::from_secs(2),
            queued_body_bytes: 1024 * 1024,
        }
    }
}
