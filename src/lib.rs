//! iiswsgi: Python WSGI apps on IIS, over FastCGI, from one binary.
//!
//! The library owns all logic; `src/main.rs` and `src/cli/` only parse arguments, call one
//! entry point per subcommand and print the report or the error chain.
//!
//! Dependency direction (checked by `tests/architecture.rs`):
//! - `manifest` is read by `render`, `msdeploy`, `webpi`, `check`, `init` and `iis`, never the reverse;
//! - `fastcgi` is a sans-IO codec: it imports nothing else from this crate and does no I/O;
//! - `transport` moves bytes and never interprets them;
//! - `server` drives the codec over a transport and calls an [`server::Application`];
//! - `wsgi` is the only module that names `pyo3`;
//! - `iis` knows IIS: `_FCGI_*` variables, pipe names, appcmd, the IIS environ rules.
#![warn(missing_docs)]

pub mod check;
pub mod fastcgi;
pub mod iis;
pub mod init;
pub mod logging;
pub mod manifest;
pub mod msdeploy;
pub mod render;
pub mod server;
pub mod transport;
pub mod venv;
pub mod webpi;
#[cfg(feature = "python")]
pub mod wsgi;

/// The version of this build, as `iiswsgi --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `major.minor` of the CPython this binary embeds, when built with the `python` feature.
pub const PYTHON_VERSION: Option<&str> = option_env!("IISWSGI_PY_VERSION");
