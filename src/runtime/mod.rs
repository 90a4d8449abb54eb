//! The runtime wing: `iiswsgi run`, the FastCGI process a web server talks to.
//!
//! Read it bottom-up:
//! - [`fastcgi`]: the sans-IO codec (records, params, a per-connection state machine); no
//!   I/O, no clock, nothing else from the crate;
//! - [`transport`]: listening and connected sockets, IIS's named pipe; moves bytes only;
//! - [`environ`], [`identity`], [`shutdown`], [`iis_env`]: what IIS's environment means to a
//!   running process (the CGI path rules and fix-ups, the per-request application check,
//!   `_FCGI_SHUTDOWN_EVENT_`, and the one place that reads IIS's variables);
//! - [`server`]: the event loop driving the codec over a transport, calling an
//!   [`server::Application`]; [`server::supervisor`] for `--processes`;
//! - [`wsgi`] (feature `python`): the embedded CPython and PEP 3333; the only module that
//!   names PyO3;
//! - [`logging`]: the rotating log file IIS-launched processes write instead of stderr;
//! - [`options`] and [`run()`]: the command's inputs, raw then resolved (every precedence
//!   rule between flags, the manifest and defaults), and the one entry point the CLI calls,
//!   which also maps how the run ended to an exit status ([`exit_code`]);
//! - [`access_log`] (`--access-log`, Apache's combined format) and [`reexec`] (a reload
//!   outside IIS: the binary re-executes itself, the listening socket kept open).
//!
//! May use: the shared ground ([`crate::manifest`], [`crate::venv`]). Never names
//! [`crate::package`] or [`crate::iis`]. A newcomer starts at [`server`]'s module doc.

pub mod access_log;
pub mod environ;
pub mod fastcgi;
pub mod identity;
pub mod iis_env;
pub mod logging;
pub mod options;
#[cfg(unix)]
pub mod reexec;
mod run;
pub mod server;
pub mod shutdown;
pub mod transport;
#[cfg(feature = "python")]
pub mod wsgi;

#[cfg(feature = "python")]
pub use options::WsgiPlan;
pub use options::{AccessLogTarget, RawOptions, RawWsgi, Resolved, RunConfigError, Serve};
pub use run::{RunFailure, exit_code, run};
