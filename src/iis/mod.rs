//! What only IIS does: its FastCGI environment variables, its environ quirks, appcmd and ACLs.
//!
//! - [`environ`]: the request-path rules (`iis-runtime.md` §6.4) and the CGI fix-ups, pure;
//! - [`identity`]: the per-request check that IIS sent this app's requests (§12 item 12);
//! - [`shutdown`]: `_FCGI_SHUTDOWN_EVENT_`, IIS's graceful-exit signal (watched on Windows);
//! - [`install`], [`register`], [`doctor`]: `iiswsgi install`, `iiswsgi iis enable|disable`
//!   and `iiswsgi doctor`, built on [`appcmd`] and [`acl`] (command lines, pure), [`discover`]
//!   (the app folder), [`python`], [`webconfig`], [`runner`] and [`report`].

pub mod acl;
pub mod appcmd;
pub mod discover;
pub mod doctor;
pub mod environ;
pub mod identity;
pub mod install;
pub mod python;
pub mod register;
pub mod report;
pub mod runner;
pub mod shutdown;
pub mod webconfig;
