//! What only IIS does: its FastCGI environment variables, its environ quirks, appcmd and ACLs.
//!
//! - [`environ`]: the request-path rules (`iis-runtime.md` §6.4) and the CGI fix-ups, pure;
//! - [`shutdown`]: `_FCGI_SHUTDOWN_EVENT_`, IIS's graceful-exit signal (watched on Windows).

pub mod environ;
pub mod shutdown;
