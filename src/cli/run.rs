//! `iiswsgi run`: the FastCGI runtime IIS (or nginx, lighttpd, Apache, HAProxy) starts.
//!
//! Raw flags only (ripgrep's low args): this file turns them into a
//! [`iiswsgi::runtime::server::RunOptions`] with absolute paths and calls [`iiswsgi::runtime::server::run`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use iiswsgi::runtime::environ::{EnvironOptions, OriginalUrlPolicy, normalise_prefix};
use iiswsgi::runtime::logging::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, LogConfig};
use iiswsgi::runtime::server::diagnostic::{Diagnostic, DiagnosticMode};
use iiswsgi::runtime::server::supervisor::{self, Workers};
use iiswsgi::runtime::server::{self, RunOptions};
use iiswsgi::runtime::transport::ListenAddr;

const LONG_ABOUT: &str = "\
Serve FastCGI: the process IIS starts for each request queue (or that nginx, lighttpd, Apache \
or HAProxy talk to).

Without --listen, the transport is whatever standard input holds: IIS's named pipe (or any \
connected socket: one connection, served until it closes), or a listening socket (IIS TCP \
mode, lighttpd bin-path, spawn-fcgi, mod_fcgid). With --listen, iiswsgi binds a unix socket \
(mode 0666) or a loopback TCP port itself.

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

    /// Exit gracefully after N requests (the web server starts a fresh process), counted over
    /// all request threads.
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

    /// With --processes: how long workers may finish their requests after SIGTERM before
    /// they are killed.
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
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Python application")]
pub struct WsgiArgs {
    /// The WSGI application: `module:callable` (`myproject.wsgi:application`); the callable
    /// may be a dotted path and end in `()` to call a factory (`app:create_app()`). Default:
    /// `[wsgi] app` of --manifest.
    #[arg(long, value_name = "MODULE:CALLABLE", env = "IISWSGI_APP")]
    app: Option<String>,

    /// The virtual environment (or full Python installation) to run in. It must be made by
    /// the Python minor this build embeds. Default: `[wsgi] venv` of --manifest, else the venv
    /// whose bin/ (Scripts\) folder holds this binary (where `pip install iiswsgi` puts it).
    #[arg(long, value_name = "DIR", env = "IISWSGI_VENV")]
    venv: Option<PathBuf>,

    /// Working directory for the app, also put first on sys.path. Default: --app-root.
    #[arg(long, value_name = "DIR")]
    chdir: Option<PathBuf>,

    /// Extra sys.path entry (repeatable), after --chdir and before the standard entries (and
    /// before the manifest's `[wsgi] python-paths`).
    #[arg(long = "python-path", value_name = "DIR")]
    python_paths: Vec<PathBuf>,

    /// Exit after the current request when a file whose path (relative to the app directory)
    /// matches this regex changes, so the web server starts a fresh process. Matched from the
    /// start of the path, like wfastcgi's WSGI_RESTART_FILE_REGEX; empty disables. Default:
    /// `[wsgi] reload-regex` of --manifest, else `.*((\.py)|(\.config))$`.
    #[arg(long, value_name = "REGEX", env = "IISWSGI_RELOAD_PATTERN")]
    reload_pattern: Option<String>,
}

/// Runs `iiswsgi run`.
pub fn run(mut args: Args) -> ExitCode {
    let mode = args.diagnostic.as_deref().and_then(DiagnosticMode::parse);
    let wsgi = std::mem::take(&mut args.wsgi);
    let workers = (args.processes > 1).then(|| Workers {
        processes: args.processes,
        grace: Duration::from_secs(args.graceful_timeout),
        args: supervisor::worker_args(std::env::args_os()),
    });
    let threads_flag = args.threads;
    let options = match options(args) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(workers) = workers {
        match supervisor::supervise(&options, &workers) {
            Ok(Some(_)) => return ExitCode::SUCCESS,
            Err(e) => return super::report_error(&e),
            Ok(None) => {} // IIS or Windows: one process, as the log says
        }
    }
    let Some(mode) = mode else {
        return wsgi::serve(options, wsgi, threads_flag);
    };
    match server::run(options, |info| {
        note_threads(info, threads_flag.map(usize::from));
        Ok(Diagnostic::new(mode, info))
    }) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => super::report_error(&e),
    }
}

/// Under IIS (one connection on stdin) there is one request thread whatever was asked: say so
/// once, at info level when `--threads` asked for more (`explicit`), else at debug level.
fn note_threads(info: &server::ServerInfo, explicit: Option<usize>) {
    if !info.single_connection {
        return;
    }
    match explicit {
        Some(n) if n > 1 => log::info!(
            "--threads {n} ignored: over IIS's single connection requests run one at a time on \
             one thread (IIS runs maxInstances processes)"
        ),
        _ => log::debug!("one request thread (IIS's single connection)"),
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
        threads: raw.threads.map_or(1, usize::from),
        ..RunOptions::default()
    })
}

/// The `--app` branch: the embedded-Python WSGI bridge instead of the diagnostic responder.
#[cfg(feature = "python")]
mod wsgi {
    use std::path::PathBuf;
    use std::process::ExitCode;
    use std::sync::Arc;

    use iiswsgi::manifest::{Manifest, Venv as ManifestVenv};
    use iiswsgi::runtime::server::{self, RunOptions};
    use iiswsgi::runtime::transport::Kind;
    use iiswsgi::runtime::wsgi::{self, AppSpec, Mode, Options, ReloadOptions, Runtime, ServerLog};
    use iiswsgi::venv::{self, VenvSource};

    use super::{WsgiArgs, absolute};

    /// The venv `run` uses and where that choice came from; `None`: the build's interpreter.
    type Chosen = Option<(PathBuf, VenvSource)>;

    /// Starts Python inside the server's application factory (on the main thread, after the
    /// log and the transport are set up), serves, then finalises Python on the same thread.
    pub(super) fn serve(
        mut options: RunOptions,
        args: WsgiArgs,
        threads_flag: Option<u16>,
    ) -> ExitCode {
        let (prepared, chosen, manifest_threads) = match prepare(&options, args) {
            Ok(p) => p,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        };
        // `--threads` wins over `[run] threads`; without either, one thread.
        if threads_flag.is_none()
            && let Some(n) = manifest_threads
        {
            options.threads = usize::from(n);
        }
        let threads = options.threads;
        let mut runtime: Option<Runtime> = None;
        let result = server::run(options, |info| {
            super::note_threads(info, threads_flag.map(usize::from));
            match &chosen {
                Some((dir, source)) => log::info!("venv: {} ({source})", dir.display()),
                None => log::info!(
                    "venv: none (no --venv, no [wsgi] venv, and this binary is not in a \
                     venv's bin/Scripts folder): the interpreter iiswsgi was built against"
                ),
            }
            let mut wsgi_options = prepared;
            // §3.8: IIS (one connection) is one of several processes with one request thread;
            // a web-server-spawned listener on stdin is one of several processes; `--listen` is
            // one process. Sockets get `threads` request threads.
            wsgi_options.mode = match info.kind {
                Kind::StdinConnection => Mode::SPAWNED,
                Kind::StdinListener => Mode {
                    multithread: threads > 1,
                    ..Mode::SPAWNED
                },
                Kind::Unix | Kind::Tcp => Mode::socket(threads, 1),
            };
            let started = wsgi::start(&wsgi_options, Arc::new(ServerLog))?;
            let app = started.app();
            if let Some(stop) = info.stop.clone() {
                app.on_exit_request(move || stop.request());
            }
            runtime = Some(started);
            Ok(app)
        });
        if let Some(runtime) = runtime {
            let status = runtime.finalize();
            if status != 0 {
                log::warn!("Python finalisation reported status {status}");
            }
            iiswsgi::runtime::logging::flush();
        }
        match result {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => crate::cli::report_error(&e),
        }
    }

    /// The WSGI options, which venv was chosen and why (logged once the log is open), and the
    /// manifest's `[run] threads`.
    fn prepare(run: &RunOptions, args: WsgiArgs) -> Result<(Options, Chosen, Option<u16>), String> {
        let manifest = match &run.manifest {
            Some(path) => Some(Manifest::load(path).map_err(|e| error_chain(&e))?),
            None => None,
        };
        let wsgi = manifest.as_ref().map(|m| (&m.wsgi, m.base_dir()));
        let app = match (args.app, wsgi) {
            (Some(app), _) => app,
            (None, Some((w, _))) => w.app.to_string(),
            (None, None) => {
                return Err(
                    "nothing to serve: give --app MODULE:CALLABLE or --manifest \
                            iiswsgi.toml (or --diagnostic to check the FastCGI side without \
                            Python)"
                        .into(),
                );
            }
        };
        if let Some(((major, minor), path)) = wsgi
            .and_then(|(w, _)| w.python_version)
            .zip(run.manifest.as_ref())
        {
            let wanted = format!("{major}.{minor}");
            if wanted != wsgi::BUILT_FOR {
                return Err(format!(
                    "{}: `wsgi.python-version` is {wanted} but this iiswsgi embeds Python {}; \
                     use the py{wanted} build",
                    path.display(),
                    wsgi::BUILT_FOR
                ));
            }
        }
        let spec: AppSpec = app.parse().map_err(|e| format!("--app: {e}"))?;
        let mut options = Options::new(spec);
        let flag = args.venv.as_deref().map(absolute).transpose()?;
        let from_manifest = wsgi.and_then(|(w, base)| match w.venv.as_ref()? {
            ManifestVenv::InApp(rel) => Some(rel.under(base)),
            ManifestVenv::Absolute(dir) => Some(PathBuf::from(dir)),
        });
        // Explicit choices win; otherwise the venv this binary was pip-installed into.
        let chosen = venv::choose(flag, from_manifest, venv::this_venv());
        options.venv = chosen.as_ref().map(|(dir, _)| dir.clone());
        options.chdir = match args.chdir.as_deref() {
            Some(dir) => Some(absolute(dir)?),
            None => run.app_root.clone(),
        };
        options.python_paths = args
            .python_paths
            .iter()
            .map(|p| absolute(p))
            .collect::<Result<Vec<PathBuf>, String>>()?;
        if let Some((w, base)) = wsgi {
            options
                .python_paths
                .extend(w.python_paths.iter().map(|p| p.under(base)));
            options.environment = w
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        let pattern = match (args.reload_pattern, wsgi) {
            (Some(p), _) => p,
            (None, Some((w, _))) => w
                .reload
                .as_ref()
                .map(|r| r.source.clone())
                .unwrap_or_default(),
            (None, None) => wsgi::DEFAULT_RELOAD_PATTERN.to_owned(),
        };
        options.reload = options
            .chdir
            .clone()
            .filter(|_| !pattern.is_empty())
            .map(|root| ReloadOptions { root, pattern });
        let threads = manifest.as_ref().map(|m| m.run.threads);
        Ok((options, chosen, threads))
    }

    fn error_chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// Built without Python: only `--diagnostic` can serve.
#[cfg(not(feature = "python"))]
mod wsgi {
    use std::process::ExitCode;

    use iiswsgi::runtime::server::RunOptions;

    use super::WsgiArgs;

    pub(super) fn serve(_options: RunOptions, _args: WsgiArgs, _threads: Option<u16>) -> ExitCode {
        eprintln!(
            "error: this build has no Python (built without the `python` feature); use \
             `iiswsgi run --diagnostic` to check the FastCGI side"
        );
        ExitCode::from(2)
    }
}
