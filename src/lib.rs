//! iiswsgi: Python WSGI apps on IIS, over FastCGI, from one binary.
//!
//! The crate is one house with three wings over a small shared ground:
//! - [`runtime`]: `iiswsgi run`, the process IIS (or nginx, lighttpd, Apache, HAProxy)
//!   talks to: the sans-IO FastCGI codec, transports, the event-loop server, the embedded
//!   CPython WSGI bridge, logging, and what IIS's environment means to a running process;
//! - [`package`]: the build side, on any OS: `init`, templates, the MSDeploy zip, the WebPI
//!   feed and the `check` lint rules;
//! - [`iis`]: server administration on Windows: `install`, `iis enable|disable`, `doctor`,
//!   built on appcmd and icacls command lines.
//!
//! Shared ground: [`manifest`] (`iiswsgi.toml`, read by every wing and reading none),
//! [`venv`] (`pyvenv.cfg`), [`xml`] (a bounded XML tree), [`fsutil`] (atomic writes),
//! [`probe`] (does `[wsgi] app` import in its venv: `check --import` and `doctor`) and
//! [`deploy`], the contract the package and the installer agree on (the FastCGI key, the
//! install stamp, the web.config context). `src/main.rs` and `src/cli/` only parse arguments,
//! call one entry point per subcommand and print the report or the error chain.
//!
//! Dependency rules (checked by `tests/architecture.rs`, which reads every `use`):
//! - `runtime` never names `package` or `iis`; `package` never names `runtime` or `iis`;
//! - `iis` reaches the package wing only through [`deploy`];
//! - `runtime::fastcgi` is sans-IO: no I/O, no clock, no other module of this crate;
//! - only `runtime::wsgi` names `pyo3`; shared ground names no wing, except [`deploy`],
//!   which may name `package`.
#![warn(missing_docs)]

pub mod deploy;
pub mod fsutil;
pub mod iis;
pub mod manifest;
pub mod package;
pub mod probe;
pub mod runtime;
pub mod venv;
pub mod xml;

/// The version of this build, as `iiswsgi --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `major.minor` of the CPython this binary embeds, when built with the `python` feature.
pub const PYTHON_VERSION: Option<&str> = option_env!("IISWSGI_PY_VERSION");

/// An error and every cause under it (`source()`, then its source, …), outermost first, joined
/// by `separator`. Each error's `Display` prints its own level only, so this is the one place a
/// chain is walked: `": "` for one line (a finding, a log record), `"\n  caused by: "` for the
/// CLI's `error:` block.
pub fn error_chain(err: &dyn std::error::Error, separator: &str) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(separator);
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot write web.config")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_every_level_outermost_first() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(
            super::error_chain(&e, ": "),
            "cannot write web.config: disk full"
        );
        assert_eq!(
            super::error_chain(&e, "\n  caused by: "),
            "cannot write web.config\n  caused by: disk full"
        );
        let alone = std::io::Error::other("alone");
        assert_eq!(super::error_chain(&alone, ": "), "alone");
    }
}
