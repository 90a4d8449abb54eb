//! What a [`super::Connection`] may accept and how it answers management queries: the
//! [`Limits`] (every bound on hostile input, each a documented constant by default) and the
//! per-client-kind [`Config`] (IIS or a generic web server, multiplexing or not).

/// Default cap on one param name: 1 KiB (`fastcgi-protocol.md` §8).
pub const DEFAULT_MAX_NAME_LEN: usize = 1024;
/// Default cap on one param value: 64 KiB.
pub const DEFAULT_MAX_VALUE_LEN: usize = 64 * 1024;
/// Default cap on all names and values of one request together: 1 MiB.
pub const DEFAULT_MAX_PARAMS_LEN: usize = 1024 * 1024;
/// Default cap on the number of pairs of one request: 10,000.
pub const DEFAULT_MAX_PAIRS: usize = 10_000;
/// Default cap on requests open at once on one multiplexed connection. Beyond it a new
/// request gets `END_REQUEST{OVERLOADED}`. Each open request holds at most
/// [`Limits::max_params_len`] of params.
pub const DEFAULT_MAX_REQUESTS: usize = 64;
/// Default input the connection buffers before [`super::Connection::wants_input`] says stop
/// (used while a pipelined request waits for the running one): 256 KiB.
pub const DEFAULT_MAX_PENDING_INPUT: usize = 256 * 1024;
/// Default unsent output beyond which [`super::Connection::wants_input`] says stop, so a peer
/// that sends queries and never reads cannot grow the output buffer: 256 KiB.
pub const DEFAULT_MAX_PENDING_OUTPUT: usize = 256 * 1024;

/// Bounds on what one connection accepts. Each field defaults to the constant of the same
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest param name, in bytes ([`DEFAULT_MAX_NAME_LEN`]).
    pub max_name_len: usize,
    /// Longest param value, in bytes ([`DEFAULT_MAX_VALUE_LEN`]).
    pub max_value_len: usize,
    /// Most name and value bytes per request ([`DEFAULT_MAX_PARAMS_LEN`]).
    pub max_params_len: usize,
    /// Most pairs per request ([`DEFAULT_MAX_PAIRS`]).
    pub max_pairs: usize,
    /// Most requests open at once when multiplexing ([`DEFAULT_MAX_REQUESTS`]).
    pub max_requests: usize,
    /// Buffered input at which a paused connection stops wanting input
    /// ([`DEFAULT_MAX_PENDING_INPUT`]).
    pub max_pending_input: usize,
    /// Unsent output at which the connection stops wanting input
    /// ([`DEFAULT_MAX_PENDING_OUTPUT`]).
    pub max_pending_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_name_len: DEFAULT_MAX_NAME_LEN,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            max_params_len: DEFAULT_MAX_PARAMS_LEN,
            max_pairs: DEFAULT_MAX_PAIRS,
            max_requests: DEFAULT_MAX_REQUESTS,
            max_pending_input: DEFAULT_MAX_PENDING_INPUT,
            max_pending_output: DEFAULT_MAX_PENDING_OUTPUT,
        }
    }
}

/// How a connection behaves toward its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Bounds on hostile input.
    pub limits: Limits,
    /// Serve several requests at once on the connection (HAProxy `option mpxs-conns`). Off:
    /// an overlapping `BEGIN_REQUEST` gets `END_REQUEST{CANT_MPX_CONN}`. Also the
    /// `FCGI_MPXS_CONNS` answer.
    pub multiplex: bool,
    /// The `FCGI_MAX_CONNS` answer to `GET_VALUES`.
    pub max_conns: u32,
    /// The `FCGI_MAX_REQS` answer to `GET_VALUES`.
    pub max_reqs: u32,
    /// Answer unknown management types with `UNKNOWN_TYPE`. Off in IIS mode: IIS fails the
    /// request on a type-11 record (`iis-runtime.md` §4.2).
    pub unknown_type_replies: bool,
}

impl Config {
    /// IIS: one request at a time, never `UNKNOWN_TYPE`, `GET_VALUES` answered 1, 1, 0.
    pub fn iis() -> Self {
        Self {
            limits: Limits::default(),
            multiplex: false,
            max_conns: 1,
            max_reqs: 1,
            unknown_type_replies: false,
        }
    }

    /// A generic web server (nginx, lighttpd, Apache, HAProxy without multiplexing) with a
    /// cap of `max_conns` connections: `FCGI_MAX_CONNS` = `FCGI_MAX_REQS` = `max_conns`,
    /// `FCGI_MPXS_CONNS` = 0.
    pub fn generic(max_conns: u32) -> Self {
        Self {
            limits: Limits::default(),
            multiplex: false,
            max_conns,
            max_reqs: max_conns,
            unknown_type_replies: true,
        }
    }

    /// A generic web server that multiplexes (HAProxy `option mpxs-conns`): up to
    /// [`Limits::max_requests`] per connection; `FCGI_MAX_REQS` = `max_conns` × that,
    /// `FCGI_MPXS_CONNS` = 1. Changing `limits.max_requests` afterwards does not update
    /// `max_reqs`; set both.
    pub fn multiplexing(max_conns: u32) -> Self {
        let limits = Limits::default();
        let per_conn = u32::try_from(limits.max_requests).unwrap_or(u32::MAX);
        Self {
            max_reqs: max_conns.saturating_mul(per_conn),
            limits,
            multiplex: true,
            max_conns,
            unknown_type_replies: true,
        }
    }
}

impl Default for Config {
    /// [`Config::generic`] with a cap of 16 connections.
    fn default() -> Self {
        Self::generic(16)
    }
}
