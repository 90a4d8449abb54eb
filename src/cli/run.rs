//! `iiswsgi run`: the FastCGI runtime IIS (or nginx, lighttpd, Apache, HAProxy) starts.
//!
//! Raw flags only (ripgrep's low args): this file declares them and hands them, as given, to
//! [`iiswsgi::runtime::run`], which resolves them (precedence, paths, the manifest, the venv),
//! serves, and says which exit status the end deserves.

use std::path::PathBuf;
use std::process::ExitCode;

use iiswsgi::runtime::environ::OriginalUrlPolicy;
use iiswsgi::runtime::transport::ListenAddr;
use iiswsgi::runtime::{RawOptions, RawWsgi};

const LONG_ABOUT: &str = "\
Serve FastCGI: the process IIS starts for each request queue (or that nginx, lighttpd, Apache \
or HAProxy talk to).

Without --listen, the transport is whatever standard input holds: IIS's named pipe (or any \
connected socket: one connection, served until it closes), or a listening socket (IIS TCP \
mode, lighttpd bin-path, spawn-fcgi, mod_fcgid). With --listen, iiswsgi binds a unix socket \
(mode --socket-mode, 0666 by default) or a loopback TCP port itself.

Nothing is ever written to stdout or stderr while serving: IIS would turn it into a 500. The \
log goes to --log, else <app root>/logs/iiswsgi.log, else <temp dir>/iiswsgi.log.

Under IIS a process serves one request at a time on one thread (IIS runs maxInstances processes). Behind other servers, --threads N (or `[run] threads` of --manifest) runs N request threads, each with its own event loop accepting from the shared socket; they help I/O-bound apps (the GIL lets one thread run Python at a time).

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

    /// Listen on ADDR instead of serving what stdin holds: `unix:PATH` (created with
    /// --socket-mode, a stale socket file is replaced) or `HOST:PORT` / `tcp:HOST:PORT`
    /// (loopback only, unless FCGI_WEB_SERVER_ADDRS lists the web servers allowed to connect).
    #[arg(long, value_name = "ADDR")]
    listen: Option<ListenAddr>,

    /// Permissions of the unix socket --listen creates, in octal. Connecting needs write
    /// permission: 0660 lets only the owner and the socket's group in (make the folder's group
    /// the web server's, e.g. www-data, with the setgid bit). Default: `[run] socket-mode` of
    /// --manifest, else 0666 (any local user).
    #[arg(long, value_name = "MODE", value_parser = iiswsgi::runtime::options::socket_mode)]
    socket_mode: Option<u32>,

    /// The application's root folder (where iiswsgi.toml and the code live). Also decides the
    /// default log file, <DIR>/logs/iiswsgi.log.
    #[arg(long, value_name = "DIR")]
    app_root: Option<PathBuf>,

    /// The iiswsgi.toml to serve; its folder is the application root unless --app-root says
    /// otherwise. Default: iiswsgi.toml in the current folder, if there is one (not under IIS).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,

    /// Log file; `-` logs to stderr (never under IIS, where stderr is not shown). Default:
    /// `[run] log-file` of the manifest, else <app root>/logs/iiswsgi.log.
    #[arg(long, value_name = "FILE", env = "IISWSGI_LOG")]
    log: Option<PathBuf>,

    /// Least severe level logged: error, warn, info, debug or trace. Default: `[run]
    /// log-level`, else info.
    #[arg(long, value_name = "LEVEL", env = "IISWSGI_LOG_LEVEL")]
    log_level: Option<log::LevelFilter>,

    /// Rotate the log file when it reaches this many bytes (0: never). Default: `[run]
    /// log-max-bytes`, else 10485760.
    #[arg(long, value_name = "BYTES")]
    log_max_size: Option<u64>,

    /// Rotated log files to keep (iiswsgi.log.1 … .N). Default: `[run] log-keep`, else 5.
    #[arg(long, value_name = "N")]
    log_keep: Option<u32>,

    /// Write one line per request, Apache's combined format (gunicorn's --access-logfile), to
    /// FILE; `-` is stdout (never under IIS). Off by default.
    #[arg(long, value_name = "FILE", env = "IISWSGI_ACCESS_LOG")]
    access_log: Option<PathBuf>,

    /// The URL prefix the application is mounted at. Under IIS it replaces the prefix derived
    /// from APPL_MD_PATH; behind other servers it makes iiswsgi compute SCRIPT_NAME and
    /// PATH_INFO from REQUEST_URI (needed behind Apache mod_proxy_fcgi at a sub-path).
    /// Default: `[run] mount-point`.
    #[arg(long, value_name = "PREFIX", env = "IISWSGI_MOUNT")]
    mount: Option<String>,

    /// When IIS's HTTP_X_ORIGINAL_URL supplies the path: `auto` only after a URL Rewrite
    /// (IIS_WasUrlRewritten=1), `always` (ARR front ends), `never`.
    #[arg(long, value_name = "POLICY", default_value = "auto", env = "IISWSGI_ORIGINAL_URL",
          value_parser = OriginalUrlPolicy::NAMES)]
    original_url: String,

    /// Most connections each request thread holds; at the cap the longest-idle one is closed
    /// to make room for a new one (times the threads, the GET_VALUES answer).
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_conns: u32,

    /// Exit gracefully after N requests (the web server or the supervisor starts a fresh
    /// process), counted over all request threads.
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,

    /// Worker processes sharing the listening socket (--listen, or a listening socket on
    /// fd 0). With N > 1 this process only supervises: it starts N copies of itself,
    /// restarts any that exit (at once after a reload or --max-requests, with backoff after a
    /// crash), and on SIGTERM/SIGINT stops them all; SIGHUP restarts them. Ignored, with a
    /// warning in the log, under IIS (use the FastCGI application's maxInstances).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    processes: u32,

    /// After SIGTERM/SIGINT (or IIS's shutdown event), how long the requests in flight may
    /// take before the process exits without them (with --processes, before the workers are
    /// killed). A second SIGTERM/SIGINT exits at once.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    graceful_timeout: u64,
    /// Request threads when serving a socket (--listen, or a listening socket on stdin),
    /// 1–1024; each accepts connections for itself and keeps them. Ignored under IIS (one
    /// request thread per process). Default: `[run] threads` of --manifest, else 1.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads: Option<u16>,

    #[command(flatten)]
    wsgi: WsgiArgs,
}

/// The Python application to serve (`iiswsgi run --app module:callable`).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Python application")]
pub struct WsgiArgs {
    /// The WSGI application: `module:callable` (`myproject.wsgi:application`); the callable
    /// may be a dotted path and end in a factory call with literal arguments, as gunicorn
    /// allows (`app:create_app()`, `app:create_app(debug=False)`). Default: `[wsgi] app` of
    /// the manifest.
    #[arg(long, value_name = "MODULE:CALLABLE", env = "IISWSGI_APP")]
    app: Option<String>,

    /// The virtual environment (or full Python installation) to run in. It must be made by
    /// the Python minor this build embeds. Default: `[wsgi] venv` of --manifest, else the venv
    /// whose bin/ (Scripts\) folder holds this binary (where `pip install iiswsgi` puts it).
    #[arg(long, value_name = "DIR", env = "IISWSGI_VENV")]
    venv: Option<PathBuf>,

    /// Working directory for the app, also put first on sys.path. Default: --app-root, else
    /// the current folder (as gunicorn).
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,

    /// Extra sys.path entry (repeatable), after --chdir and before the standard entries (and
    /// before the manifest's `[wsgi] python-paths`).
    #[arg(long = "python-path", value_name = "DIR")]
    python_paths: Vec<PathBuf>,

    /// Restart when code changes, as gunicorn's --reload: outside IIS, watch the app folder
    /// and, once the requests in flight are done, re-execute in place with the listening
    /// socket kept open. Under IIS the --reload-pattern rule applies without this flag (the
    /// process exits after its request; IIS starts a fresh one).
    #[arg(long)]
    reload: bool,

    /// Which changed files reload: a regex on the path relative to the app directory,
    /// matched from its start like wfastcgi's WSGI_RESTART_FILE_REGEX; empty disables. The
    /// venv, logs/, __pycache__ and VCS folders are never watched. Default: `[wsgi]
    /// reload-regex` of the manifest, else `.*((\.py)|(\.config))$`.
    #[arg(long, value_name = "REGEX", env = "IISWSGI_RELOAD_PATTERN")]
    reload_pattern: Option<String>,
}

/// Runs `iiswsgi run`.
pub fn run(args: Args) -> ExitCode {
    let outcome = iiswsgi::runtime::run(args.into_raw());
    if let Err(e) = &outcome {
        let _ = super::report_error(e);
    }
    ExitCode::from(iiswsgi::runtime::exit_code(&outcome))
}

impl Args {
    /// The flags as given, plus this process's command line (for worker processes).
    fn into_raw(self) -> RawOptions {
        let w = self.wsgi;
        RawOptions {
            working_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            diagnostic: self.diagnostic,
            listen: self.listen,
            app_root: self.app_root,
            manifest: self.manifest,
            log: self.log,
            log_level: self.log_level,
            log_max_size: self.log_max_size,
            log_keep: self.log_keep,
            access_log: self.access_log,
            mount: self.mount,
            original_url: self.original_url,
            max_conns: self.max_conns,
            max_requests: self.max_requests,
            processes: self.processes,
            graceful_timeout: self.graceful_timeout,
            socket_mode: self.socket_mode,
            threads: self.threads,
            argv: std::env::args_os().collect(),
            wsgi: RawWsgi {
                app: w.app,
                venv: w.venv,
                chdir: w.chdir,
                python_paths: w.python_paths,
                reload_pattern: w.reload_pattern,
                reload: w.reload,
            },
        }
    }
}
