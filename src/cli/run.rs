//! `iiswsgi run`: the FastCGI runtime IIS (or nginx, lighttpd, Apache, HAProxy) starts.
//!
//! Raw flags only (ripgrep's low args): this file turns them into a
//! [`iiswsgi::server::RunOptions`] with absolute paths and calls [`iiswsgi::server::run`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use iiswsgi::iis::environ::{EnvironOptions, OriginalUrlPolicy, normalise_prefix};
use iiswsgi::logging::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, LogConfig};
use iiswsgi::server::diagnostic::{Diagnostic, DiagnosticMode};
use iiswsgi::server::{self, RunOptions};
use iiswsgi::transport::ListenAddr;

const LONG_ABOUT: &str = "\
Serve FastCGI: the process IIS starts for each request queue (or that nginx, lighttpd, Apache \
or HAProxy talk to).

Without --listen, the transport is whatever standard input holds: IIS's named pipe (or any \
connected socket: one connection, served until it closes), or a listening socket (IIS TCP \
mode, lighttpd bin-path, spawn-fcgi, mod_fcgid). With --listen, iiswsgi binds a unix socket \
(mode 0666) or a loopback TCP port itself.

Nothing is ever written to stdout or stderr while serving: IIS would turn it into a 500. The \
log goes to --log, else <app root>/logs/iiswsgi.log, else <temp dir>/iiswsgi.log.

First step when IIS reports \"The FastCGI process exited unexpectedly\": register \
`iiswsgi run --diagnostic` and browse to the site; the page shows what iiswsgi receives.";

/// Arguments of `iiswsgi run`.
#[derive(Debug, clap::Args)]
#[command(long_about = LONG_ABOUT)]
pub struct Args {
    /// Answer every request with the built-in diagnostic page (no Python): the normalised
    /// environ, the raw params, the transport. `--diagnostic=hello` answers a minimal
    /// "Hello, world!" instead (for benchmarks).
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "page", value_parser = ["page", "hello"])]
    diagnostic: Option<String>,

    /// Listen on ADDR instead of serving what stdin holds: `unix:PATH` (created mode 0666, a
    /// stale socket file is replaced) or `tcp:HOST:PORT` (loopback only, unless
    /// FCGI_WEB_SERVER_ADDRS lists the web servers allowed to connect).
    #[arg(long, value_name = "ADDR")]
    listen: Option<ListenAddr>,

    /// The application's root folder (where iiswsgi.toml and the code live). Also decides the
    /// default log file, <DIR>/logs/iiswsgi.log.
    #[arg(long, value_name = "DIR")]
    app_root: Option<PathBuf>,

    /// The iiswsgi.toml to serve; its folder is the application root unless --app-root says
    /// otherwise.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// Log file; `-` logs to stderr (never under IIS, where stderr is not shown).
    #[arg(long, value_name = "FILE", env = "IISWSGI_LOG")]
    log: Option<PathBuf>,

    /// Least severe level logged: error, warn, info, debug or trace.
    #[arg(
        long,
        value_name = "LEVEL",
        default_value = "info",
        env = "IISWSGI_LOG_LEVEL"
    )]
    log_level: log::LevelFilter,

    /// Rotate the log file when it reaches this many bytes (0: never).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    log_max_size: u64,

    /// Rotated log files to keep (iiswsgi.log.1 … .N).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KEEP)]
    log_keep: u32,

    /// The URL prefix the application is mounted at. Under IIS it replaces the prefix derived
    /// from APPL_MD_PATH; behind other servers it makes iiswsgi compute SCRIPT_NAME and
    /// PATH_INFO from REQUEST_URI (needed behind Apache mod_proxy_fcgi).
    #[arg(long, value_name = "PREFIX", env = "IISWSGI_MOUNT")]
    mount: Option<String>,

    /// When IIS's HTTP_X_ORIGINAL_URL supplies the path: `auto` only after a URL Rewrite
    /// (IIS_WasUrlRewritten=1), `always` (ARR front ends), `never`.
    #[arg(long, value_name = "POLICY", default_value = "auto", env = "IISWSGI_ORIGINAL_URL",
          value_parser = OriginalUrlPolicy::NAMES)]
    original_url: String,

    /// Most connections served at once (also the GET_VALUES answer).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_conns: u32,

    /// Exit gracefully after N requests (the web server starts a fresh process).
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
}

/// Runs `iiswsgi run`.
pub fn run(args: Args) -> ExitCode {
    let mode = args.diagnostic.as_deref().and_then(DiagnosticMode::parse);
    let options = match options(args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let Some(mode) = mode else {
        eprintln!(
            "error: this build cannot serve a WSGI application yet (the Python bridge is not \
             part of it); use `iiswsgi run --diagnostic` to check the FastCGI side"
        );
        return ExitCode::from(2);
    };
    match server::run(options, |info| Ok(Diagnostic::new(mode, info))) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => super::report_error(&e),
    }
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn options(raw: Args) -> Result<RunOptions, String> {
    let manifest = raw.manifest.as_deref().map(absolute).transpose()?;
    let app_root = match (&raw.app_root, &manifest) {
        (Some(dir), _) => Some(absolute(dir)?),
        (None, Some(m)) => m.parent().map(Path::to_path_buf),
        (None, None) => None,
    };
    let (log_path, stderr) = match raw.log.as_deref() {
        Some(p) if p == Path::new("-") => (None, true),
        Some(p) => (Some(absolute(p)?), false),
        None => (None, false),
    };
    let original_url = OriginalUrlPolicy::parse(&raw.original_url)
        .ok_or_else(|| format!("--original-url: unknown policy `{}`", raw.original_url))?;
    Ok(RunOptions {
        listen: raw.listen,
        log: LogConfig {
            path: log_path,
            app_root: app_root.clone(),
            level: raw.log_level,
            max_bytes: raw.log_max_size,
            keep: raw.log_keep,
            stderr,
        },
        environ: EnvironOptions {
            original_url,
            prefix: raw.mount.map(|m| normalise_prefix(m.as_bytes())),
        },
        app_root,
        manifest,
        max_conns: raw.max_conns,
        max_requests: raw.max_requests,
        ..RunOptions::default()
    })
}
