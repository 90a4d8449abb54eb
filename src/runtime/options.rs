//! What `iiswsgi run` was asked, and what that means: [`RawOptions`] holds the inputs as the
//! command line gave them (no clap here, no defaults applied, paths as typed);
//! [`RawOptions::resolve`] reads the manifest and turns them into [`Resolved`], with absolute
//! paths and every precedence rule applied. The WSGI half ([`RawWsgi::resolve`]) runs later,
//! in the process that serves: a supervisor (`--processes N`) never starts Python.
//!
//! Precedence, strongest first (each rule has a unit test below):
//! - the manifest: `--manifest`, else `iiswsgi.toml` in the working directory (as gunicorn
//!   reads `gunicorn.conf.py`; not under IIS, whose working directory is not the site, nor for
//!   `--diagnostic`), else none;
//! - application root: `--app-root`, else the manifest's folder, else none;
//! - log: `--log -` is stderr, `--log FILE` that file, else `[run] log-file` (relative to the
//!   manifest's folder), else the default (`<app root>/logs/iiswsgi.log`, else the temp dir;
//!   [`crate::runtime::logging`]); `--log-level`, `--log-max-size`, `--log-keep` beat
//!   `[run] log-level`, `log-max-bytes`, `log-keep`;
//! - mount point: `--mount`, else `[run] mount-point`;
//! - request threads: `--threads`, else `[run] threads` of the manifest (whose default is 8),
//!   else 1;
//! - worker processes: `--processes N` above 1 makes this process a supervisor whose workers
//!   get this command line without the supervisor's own flags;
//! - the unix socket's permissions: `--socket-mode`, else `[run] socket-mode` of the manifest
//!   (read here, because a supervisor binds the socket and reads nothing else), else 0666;
//! - the app: `--app`, else `[wsgi] app`, else nothing to serve (an error);
//! - the venv: `--venv` (`IISWSGI_VENV`), else `[wsgi] venv`, else the venv whose `bin/`
//!   (`Scripts\`) holds this binary, else the interpreter the binary was built against;
//! - working directory: `--chdir`, else the application root, else the directory `run`
//!   started in; it is first on `sys.path` (so `iiswsgi run --app hello:app` finds hello.py,
//!   as gunicorn does);
//! - `sys.path`: the working directory, `--python-path` entries in order, then
//!   `[wsgi] python-paths`;
//! - reloading: the pattern is `--reload-pattern`, else `[wsgi] reload-regex` of the manifest
//!   (which has its own default), else [`crate::runtime::wsgi::DEFAULT_RELOAD_PATTERN`]; an
//!   empty pattern turns it off. Under IIS a non-empty pattern is enough (IIS starts a fresh
//!   process); elsewhere watching is opt-in with `--reload`, as gunicorn's ([`WsgiPlan`]);
//! - `[wsgi] python-version`, when set, must be the CPython this build embeds.
//!
//! Failures are [`RunConfigError`]s: usage or configuration errors.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::{self, Manifest, ManifestError};
use crate::runtime::environ::{EnvironOptions, OriginalUrlPolicy, normalise_prefix};
use crate::runtime::logging::{DEFAULT_KEEP, DEFAULT_MAX_BYTES, LogConfig};
use crate::runtime::server::RunOptions;
use crate::runtime::server::diagnostic::DiagnosticMode;
use crate::runtime::server::supervisor::{self, Workers};
use crate::runtime::transport::ListenAddr;

/// The inputs of `iiswsgi run`, one field per flag, as given.
#[derive(Debug, Clone)]
pub struct RawOptions {
    /// The directory `run` started in: relative paths are relative to it, an `iiswsgi.toml`
    /// there is the default manifest, and it is the default working directory of the app.
    pub working_dir: PathBuf,
    /// `--diagnostic[=MODE]`: `page` or `hello`; `None` serves the Python application.
    pub diagnostic: Option<String>,
    /// `--listen ADDR`; `None` serves what stdin holds.
    pub listen: Option<ListenAddr>,
    /// `--app-root DIR`.
    pub app_root: Option<PathBuf>,
    /// `--manifest FILE`.
    pub manifest: Option<PathBuf>,
    /// `--log FILE`; `-` is stderr.
    pub log: Option<PathBuf>,
    /// `--log-level`.
    pub log_level: Option<log::LevelFilter>,
    /// `--log-max-size BYTES`.
    pub log_max_size: Option<u64>,
    /// `--log-keep N`.
    pub log_keep: Option<u32>,
    /// `--access-log FILE`; `-` is stdout.
    pub access_log: Option<PathBuf>,
    /// `--mount PREFIX`.
    pub mount: Option<String>,
    /// `--original-url POLICY`: one of [`OriginalUrlPolicy::NAMES`].
    pub original_url: String,
    /// `--max-conns N`.
    pub max_conns: u32,
    /// `--max-requests N`.
    pub max_requests: Option<u64>,
    /// `--processes N`.
    pub processes: u32,
    /// `--graceful-timeout SECONDS`.
    pub graceful_timeout: u64,
    /// `--socket-mode MODE`, parsed ([`socket_mode`]).
    pub socket_mode: Option<u32>,
    /// `--threads N`.
    pub threads: Option<u16>,
    /// This process's whole command line, program name first (a supervisor starts its
    /// workers with it, minus its own flags; a reload re-executes it).
    pub argv: Vec<OsString>,
    /// The Python application's flags.
    pub wsgi: RawWsgi,
}

/// The inputs of `iiswsgi run` about the Python application, as given.
#[derive(Debug, Clone, Default)]
pub struct RawWsgi {
    /// `--app MODULE:CALLABLE`.
    pub app: Option<String>,
    /// `--venv DIR`.
    pub venv: Option<PathBuf>,
    /// `--chdir DIR`.
    pub chdir: Option<PathBuf>,
    /// `--python-path DIR`, repeated.
    pub python_paths: Vec<PathBuf>,
    /// `--reload-pattern REGEX`.
    pub reload_pattern: Option<String>,
    /// `--reload`: watch for changes outside IIS too.
    pub reload: bool,
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// Standard output (`--access-log -`).
    Stdout,
    /// A file, opened for append.
    File(PathBuf),
}

/// `iiswsgi run`'s inputs once the server-side rules ran.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// How the server runs (absolute paths).
    pub server: RunOptions,
    /// `Some` when this process supervises worker processes (`--processes N`, N > 1).
    pub workers: Option<Workers>,
    /// What answers the requests.
    pub serve: Serve,
    /// `--threads` as given: asking for more than one under IIS is worth a log line.
    pub threads_flag: Option<usize>,
    /// The manifest, read and valid.
    pub manifest: Option<Manifest>,
    /// Whether the manifest was found in the working directory rather than named.
    pub manifest_found: bool,
    /// `--access-log`, if given.
    pub access_log: Option<AccessLogTarget>,
    /// The directory `run` started in (a reload re-executes from it).
    pub working_dir: PathBuf,
    /// This process's command line (a reload re-executes it).
    pub argv: Vec<OsString>,
}

/// What answers the requests.
#[derive(Debug, Clone)]
pub enum Serve {
    /// The built-in diagnostic responder (no Python).
    Diagnostic(DiagnosticMode),
    /// The Python application, still to be resolved where it is served
    /// ([`RawWsgi::resolve`]).
    Wsgi(RawWsgi),
}

/// A usage or configuration error of `iiswsgi run`: the process exits with status 2 before
/// serving (see [`crate::runtime::exit_code`]). Each message is complete in itself: these
/// errors have no `source()`. All are one line but [`RunConfigError::Manifest`], which shows
/// every diagnostic with its line, column and source line.
#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    /// `--original-url` is none of [`OriginalUrlPolicy::NAMES`].
    #[error("--original-url: unknown policy `{0}`")]
    OriginalUrl(String),
    /// The manifest could not be read or is invalid: its diagnostics (`file:line:col`, the
    /// line, a caret, a hint), then the summary.
    #[error("{}", describe_manifest_error(.0))]
    Manifest(ManifestError),
    /// Neither `--app` nor a manifest names an application.
    #[error(
        "nothing to serve: give --app MODULE:CALLABLE or --manifest iiswsgi.toml (or \
         --diagnostic to check the FastCGI side without Python)"
    )]
    NothingToServe,
    /// The manifest asks for a CPython older than the oldest this build embeds.
    #[error(
        "{}: `wsgi.python-version` is {wanted} but iiswsgi needs CPython {minimum} or later",
        manifest.display()
    )]
    PythonVersion {
        /// The manifest.
        manifest: PathBuf,
        /// `major.minor` it asks for.
        wanted: String,
        /// The oldest `major.minor` this build embeds (the stable ABI it links, issue 15).
        minimum: &'static str,
    },
    /// `--app` (or `[wsgi] app`) is not `module:callable`.
    #[cfg(feature = "python")]
    #[error("--app: {0}")]
    App(crate::runtime::wsgi::AppSpecError),
    /// `--access-log FILE` cannot be opened for append.
    #[error("--access-log {}: {reason}", path.display())]
    AccessLog {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// A Python application was asked of a build without Python.
    #[error(
        "this build has no Python (built without the `python` feature); use `iiswsgi run \
         --diagnostic` to check the FastCGI side"
    )]
    NoPython,
}

/// A manifest error in full: the rendered diagnostics of an invalid manifest (what `iiswsgi
/// check` prints) before its summary; a read error with its cause, on one line.
fn describe_manifest_error(err: &ManifestError) -> String {
    let rendered = err.render();
    let summary = crate::error_chain(err, ": ");
    if rendered.is_empty() {
        summary
    } else {
        format!("{summary}:\n{}", rendered.trim_end())
    }
}

/// A `--socket-mode` that is not a unix permission mode.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an octal mode such as 0660 (owner and group) or 0666 (any local user)")]
pub struct SocketModeError(String);

/// Parses `--socket-mode` (octal digits, at most 777; [`crate::manifest::parse_socket_mode`]).
pub fn socket_mode(text: &str) -> Result<u32, SocketModeError> {
    crate::manifest::parse_socket_mode(text).ok_or_else(|| SocketModeError(text.to_owned()))
}

fn level_filter(level: manifest::LogLevel) -> log::LevelFilter {
    match level {
        manifest::LogLevel::Error => log::LevelFilter::Error,
        manifest::LogLevel::Warn => log::LevelFilter::Warn,
        manifest::LogLevel::Info => log::LevelFilter::Info,
        manifest::LogLevel::Debug => log::LevelFilter::Debug,
        manifest::LogLevel::Trace => log::LevelFilter::Trace,
    }
}

impl RawOptions {
    /// `p` made absolute against the working directory.
    fn absolute(&self, p: &Path) -> PathBuf {
        self.working_dir.join(p)
    }

    /// The manifest to read (module doc) and whether it was found rather than named.
    fn manifest_path(&self) -> Option<(PathBuf, bool)> {
        if let Some(p) = &self.manifest {
            return Some((self.absolute(p), false));
        }
        if self.diagnostic.is_some() || crate::runtime::iis_env::get().started_by_iis() {
            return None;
        }
        let here = self.working_dir.join(manifest::FILE_NAME);
        here.is_file().then_some((here, true))
    }

    /// Where to log when the options themselves are wrong: `--log`, else the named
    /// manifest's `logs/` folder, else the temp dir. Reads nothing.
    pub fn fallback_log(&self) -> LogConfig {
        let (path, stderr) = match self.log.as_deref() {
            Some(p) if p == Path::new("-") => (None, true),
            Some(p) => (Some(self.absolute(p)), false),
            None => (None, false),
        };
        let app_root = match (&self.app_root, &self.manifest) {
            (Some(dir), _) => Some(self.absolute(dir)),
            (None, Some(m)) => self.absolute(m).parent().map(Path::to_path_buf),
            (None, None) => None,
        };
        LogConfig {
            path,
            app_root,
            level: self.log_level.unwrap_or(log::LevelFilter::Info),
            stderr,
            ..LogConfig::default()
        }
    }

    /// Applies the server-side rules (module doc): reads and validates the manifest, makes
    /// paths absolute, picks the application root, the log, the mount point, the limits, the
    /// threads, the worker processes, the socket mode, diagnostic or WSGI.
    pub fn resolve(self) -> Result<Resolved, RunConfigError> {
        let found = self.manifest_path();
        let manifest = match &found {
            Some((path, _)) => Some(Manifest::load(path).map_err(RunConfigError::Manifest)?),
            None => None,
        };
        let run = manifest.as_ref().map(|m| &m.run);
        let base = manifest.as_ref().map(|m| m.base_dir().to_path_buf());
        let app_root = match (&self.app_root, &base) {
            (Some(dir), _) => Some(self.absolute(dir)),
            (None, Some(dir)) => Some(dir.clone()),
            (None, None) => None,
        };
        let (log_path, stderr) = match self.log.as_deref() {
            Some(p) if p == Path::new("-") => (None, true),
            Some(p) => (Some(self.absolute(p)), false),
            None => match (run.and_then(|r| r.log_file.as_deref()), &base) {
                (Some(f), Some(base)) => (Some(base.join(f)), false),
                _ => (None, false),
            },
        };
        let original_url = OriginalUrlPolicy::parse(&self.original_url)
            .ok_or_else(|| RunConfigError::OriginalUrl(self.original_url.clone()))?;
        let mount = self
            .mount
            .or_else(|| run.and_then(|r| r.mount_point.clone()));
        let threads_flag = self.threads.map(usize::from);
        let threads = threads_flag
            .or(run.map(|r| usize::from(r.threads)))
            .unwrap_or(1);
        let server = RunOptions {
            listen: self.listen,
            log: LogConfig {
                path: log_path,
                app_root: app_root.clone(),
                level: self
                    .log_level
                    .or(run.map(|r| level_filter(r.log_level)))
                    .unwrap_or(log::LevelFilter::Info),
                max_bytes: self
                    .log_max_size
                    .or(run.map(|r| r.log_max_bytes))
                    .unwrap_or(DEFAULT_MAX_BYTES),
                keep: self
                    .log_keep
                    .or(run.map(|r| r.log_keep))
                    .unwrap_or(DEFAULT_KEEP),
                stderr,
            },
            environ: EnvironOptions {
                original_url,
                prefix: mount.map(|m| normalise_prefix(m.as_bytes())),
            },
            app_root,
            manifest: found.as_ref().map(|(p, _)| p.clone()),
            max_conns: self.max_conns,
            max_requests: self.max_requests,
            threads,
            graceful_timeout: Duration::from_secs(self.graceful_timeout),
            socket_mode: self
                .socket_mode
                .or(run.and_then(|r| r.socket_mode))
                .unwrap_or(RunOptions::default().socket_mode),
            ..RunOptions::default()
        };
        let serve = match self.diagnostic.as_deref().and_then(DiagnosticMode::parse) {
            Some(mode) => Serve::Diagnostic(mode),
            None => Serve::Wsgi(self.wsgi),
        };
        let workers = (self.processes > 1).then(|| Workers {
            processes: self.processes,
            grace: Duration::from_secs(self.graceful_timeout),
            args: supervisor::worker_args(self.argv.clone()),
        });
        let access_log = self.access_log.as_deref().map(|p| {
            if p == Path::new("-") {
                AccessLogTarget::Stdout
            } else {
                AccessLogTarget::File(self.working_dir.join(p))
            }
        });
        Ok(Resolved {
            server,
            workers,
            serve,
            threads_flag,
            manifest,
            manifest_found: found.is_some_and(|(_, found)| found),
            access_log,
            working_dir: self.working_dir,
            argv: self.argv,
        })
    }
}

#[cfg(feature = "python")]
pub use self::python::WsgiPlan;

#[cfg(feature = "python")]
mod python {
    use std::path::{Path, PathBuf};

    use super::{RawWsgi, RunConfigError};
    use crate::manifest::{Manifest, Venv as ManifestVenv};
    use crate::runtime::server::RunOptions;
    use crate::runtime::wsgi::{self, AppSpec, Options, ReloadOptions};
    use crate::venv::{self, VenvSource};

    /// The Python application to serve, resolved.
    #[derive(Debug, Clone)]
    pub struct WsgiPlan {
        /// What [`wsgi::start`] needs, but `mode`, which depends on the transport. `reload`
        /// is the rule that applies under IIS; elsewhere it applies only if `reload_opt_in`.
        pub options: Options,
        /// `--reload` was given: watch outside IIS too.
        pub reload_opt_in: bool,
        /// The venv chosen and why (logged once the log is open); `None`: the interpreter
        /// this binary was built against.
        pub venv: Option<(PathBuf, VenvSource)>,
    }

    impl RawWsgi {
        /// Applies the WSGI rules (module doc) to the flags and the `manifest` the server side
        /// read: checks its Python version, picks the app, the venv (`located`: the venv this
        /// binary sits in, [`venv::this_venv`]), the working directory (`working_dir` when
        /// there is no other), `sys.path`, the environment and the reload rule.
        pub fn resolve(
            self,
            server: &RunOptions,
            manifest: Option<&Manifest>,
            working_dir: &Path,
            located: Option<PathBuf>,
        ) -> Result<WsgiPlan, RunConfigError> {
            let wsgi = manifest.map(|m| (&m.wsgi, m.base_dir()));
            let app = match (self.app, wsgi) {
                (Some(app), _) => app,
                (None, Some((w, _))) => w.app.to_string(),
                (None, None) => return Err(RunConfigError::NothingToServe),
            };
            if let Some(((major, minor), m)) =
                wsgi.and_then(|(w, _)| w.python_version).zip(manifest)
            {
                let (min_major, min_minor) = wsgi::MINIMUM_PYTHON;
                if (u32::from(major), u32::from(minor)) < (min_major, min_minor) {
                    return Err(RunConfigError::PythonVersion {
                        manifest: m.path.clone(),
                        wanted: format!("{major}.{minor}"),
                        minimum: "3.9",
                    });
                }
            }
            let spec: AppSpec = app.parse().map_err(RunConfigError::App)?;
            let mut options = Options::new(spec);
            let flag = self.venv.as_deref().map(|p| working_dir.join(p));
            let from_manifest = wsgi.and_then(|(w, base)| match w.venv.as_ref()? {
                ManifestVenv::InApp(rel) => Some(rel.under(base)),
                ManifestVenv::Absolute(dir) => Some(PathBuf::from(dir)),
            });
            let chosen = venv::choose(flag, from_manifest, located);
            options.venv = chosen.as_ref().map(|(dir, _)| dir.clone());
            options.chdir = Some(match self.chdir.as_deref() {
                Some(dir) => working_dir.join(dir),
                None => server
                    .app_root
                    .clone()
                    .unwrap_or_else(|| working_dir.to_path_buf()),
            });
            options.python_paths = self
                .python_paths
                .iter()
                .map(|p| working_dir.join(p))
                .collect();
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
            let pattern = match (self.reload_pattern, wsgi) {
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
            Ok(WsgiPlan {
                options,
                reload_opt_in: self.reload,
                venv: chosen,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs with every flag at its command-line default, run from a folder without a
    /// manifest.
    fn raw() -> RawOptions {
        RawOptions {
            working_dir: std::env::temp_dir(),
            diagnostic: None,
            listen: None,
            app_root: None,
            manifest: None,
            log: None,
            log_level: None,
            log_max_size: None,
            log_keep: None,
            access_log: None,
            mount: None,
            original_url: "auto".into(),
            max_conns: 64,
            max_requests: None,
            processes: 1,
            graceful_timeout: 30,
            socket_mode: None,
            threads: None,
            argv: vec!["iiswsgi".into(), "run".into()],
            wsgi: RawWsgi::default(),
        }
    }

    /// A folder with an `iiswsgi.toml` whose `[wsgi]` section holds `wsgi` after its app
    /// line, and `run` as the `[run]` section.
    fn site(wsgi: &str, run: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let toml = format!(
            "[app]\nname = \"Shop\"\ntitle = \"Shop\"\nversion = \"1.0.0\"\n\
             description = \"test app\"\n\n[wsgi]\napp = \"shop.wsgi:application\"\n\
             {wsgi}\n\n[run]\n{run}\n\n[iis]\n[iis.fastcgi]\n[package]\n"
        );
        let path = dir.path().join("iiswsgi.toml");
        std::fs::write(&path, toml).expect("manifest");
        (dir, path)
    }

    fn with_manifest(path: &Path) -> RawOptions {
        RawOptions {
            manifest: Some(path.to_path_buf()),
            ..raw()
        }
    }

    /// `p` made absolute as `resolve` does, against `raw()`'s working directory: unchanged on
    /// Unix, on the temp dir's drive on Windows.
    fn abs(p: &str) -> PathBuf {
        raw().working_dir.join(p)
    }

    mod server_side {
        use super::*;

        #[test]
        fn app_root_is_the_manifests_folder_unless_app_root_is_given() {
            let (dir, path) = site("", "");
            let r = with_manifest(&path).resolve().expect("valid");
            assert_eq!(r.server.app_root.as_deref(), Some(dir.path()));
            assert_eq!(
                r.server.log.app_root, r.server.app_root,
                "the default log's folder"
            );
            let r = RawOptions {
                app_root: Some("/srv/other".into()),
                ..with_manifest(&path)
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.app_root, Some(abs("/srv/other")));
            assert_eq!(r.server.manifest, Some(path));
            assert!(r.manifest.is_some() && !r.manifest_found);
        }

        #[test]
        fn no_manifest_and_no_app_root_means_no_app_root() {
            let r = raw().resolve().expect("valid");
            assert_eq!(r.server.app_root, None);
            assert_eq!(r.server.manifest, None);
            assert!(r.manifest.is_none());
        }

        #[test]
        fn an_iiswsgi_toml_in_the_working_directory_is_the_default_manifest() {
            let (dir, path) = site("", "threads = 2");
            let here = RawOptions {
                working_dir: dir.path().to_path_buf(),
                ..raw()
            };
            let r = here.clone().resolve().expect("valid");
            assert_eq!(r.server.manifest.as_ref(), Some(&path));
            assert!(r.manifest_found);
            assert_eq!(r.server.threads, 2, "its [run] applies");
            let named = tempfile::tempdir().expect("tempdir");
            let other = named.path().join("other.toml");
            std::fs::copy(&path, &other).expect("copy");
            let r = RawOptions {
                manifest: Some(other.clone()),
                ..here.clone()
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.manifest, Some(other), "--manifest wins");
            let r = RawOptions {
                diagnostic: Some("page".into()),
                ..here
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.manifest, None, "--diagnostic needs no manifest");
        }

        #[test]
        fn relative_paths_become_absolute_against_the_working_directory() {
            let (dir, _path) = site("", "");
            let r = RawOptions {
                working_dir: dir.path().to_path_buf(),
                manifest: Some(PathBuf::from("iiswsgi.toml")),
                log: Some(PathBuf::from("logs").join("run.log")),
                access_log: Some(PathBuf::from("access.log")),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.manifest, Some(dir.path().join("iiswsgi.toml")));
            assert_eq!(r.server.app_root.as_deref(), Some(dir.path()));
            assert_eq!(
                r.server.log.path,
                Some(dir.path().join("logs").join("run.log"))
            );
            assert_eq!(
                r.access_log,
                Some(AccessLogTarget::File(dir.path().join("access.log")))
            );
        }

        #[test]
        fn log_dash_means_stderr_and_no_file() {
            let r = RawOptions {
                log: Some("-".into()),
                access_log: Some("-".into()),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert!(r.server.log.stderr);
            assert_eq!(r.server.log.path, None);
            assert_eq!(r.access_log, Some(AccessLogTarget::Stdout));
            let r = raw().resolve().expect("valid");
            assert!(!r.server.log.stderr, "no --log: the default file");
            assert_eq!(r.server.log.path, None);
            assert_eq!(r.access_log, None, "no access log unless asked");
        }

        #[test]
        fn log_flags_beat_the_manifests_run_section_which_beats_the_defaults() {
            let (dir, path) = site(
                "",
                "log-file = \"var/app.log\"\nlog-level = \"debug\"\nlog-max-bytes = 8192\n\
                 log-keep = 2",
            );
            let r = with_manifest(&path).resolve().expect("valid");
            let log = &r.server.log;
            assert_eq!(log.path, Some(dir.path().join("var/app.log")));
            assert_eq!(
                (log.level, log.max_bytes, log.keep),
                (log::LevelFilter::Debug, 8192, 2)
            );
            let r = RawOptions {
                log: Some("/tmp/x.log".into()),
                log_level: Some(log::LevelFilter::Warn),
                log_max_size: Some(10),
                log_keep: Some(3),
                ..with_manifest(&path)
            }
            .resolve()
            .expect("valid");
            let log = &r.server.log;
            assert_eq!(log.path, Some(abs("/tmp/x.log")));
            assert_eq!(
                (log.level, log.max_bytes, log.keep),
                (log::LevelFilter::Warn, 10, 3)
            );
            let r = raw().resolve().expect("valid");
            let log = &r.server.log;
            assert_eq!(
                (log.level, log.max_bytes, log.keep),
                (log::LevelFilter::Info, DEFAULT_MAX_BYTES, DEFAULT_KEEP)
            );
        }

        #[test]
        fn mount_flag_beats_the_manifests_run_section() {
            let (_dir, path) = site("", "mount-point = \"/shop\"");
            let r = with_manifest(&path).resolve().expect("valid");
            assert_eq!(r.server.environ.prefix.as_deref(), Some(&b"/shop"[..]));
            let r = RawOptions {
                mount: Some("/other".into()),
                ..with_manifest(&path)
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.environ.prefix.as_deref(), Some(&b"/other"[..]));
        }

        #[test]
        fn threads_flag_beats_the_manifest_which_beats_one() {
            let r = raw().resolve().expect("valid");
            assert_eq!((r.server.threads, r.threads_flag), (1, None));
            let (_dir, path) = site("", "threads = 3");
            let r = with_manifest(&path).resolve().expect("valid");
            assert_eq!((r.server.threads, r.threads_flag), (3, None));
            let r = RawOptions {
                threads: Some(5),
                ..with_manifest(&path)
            }
            .resolve()
            .expect("valid");
            assert_eq!((r.server.threads, r.threads_flag), (5, Some(5)));
            let (_dir, path) = site("", "");
            let r = with_manifest(&path).resolve().expect("valid");
            assert_eq!(r.server.threads, 8, "the manifest's own default");
        }

        #[test]
        fn an_invalid_manifest_shows_every_diagnostic_with_its_line_and_column() {
            let (_dir, path) = site("", "threads = 0\nlog-kept = 2");
            let err = with_manifest(&path).resolve().expect_err("invalid");
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{} has 2 errors:\n", path.display())),
                "{text}"
            );
            for needle in [
                "iiswsgi.toml:12:11: `run.threads` must be between 1 and 1024, found 0",
                "iiswsgi.toml:13:1: unknown key `log-kept` in `[run]`",
                "13 | log-kept = 2",
            ] {
                assert!(text.contains(needle), "{needle}\n{text}");
            }
            assert!(std::error::Error::source(&err).is_none());
        }

        #[test]
        fn an_unreadable_manifest_is_one_line_with_its_cause() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("missing.toml");
            let err = with_manifest(&path).resolve().expect_err("missing");
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("cannot read manifest {}: ", path.display())),
                "{text}"
            );
            assert!(!text.contains('\n'), "{text}");
            assert!(
                std::error::Error::source(&err).is_none(),
                "all in the message"
            );
        }

        #[test]
        fn the_fallback_log_follows_the_flags_without_reading_the_manifest() {
            let bad = RawOptions {
                manifest: Some("/srv/shop/iiswsgi.toml".into()),
                log_level: Some(log::LevelFilter::Debug),
                ..raw()
            };
            let log = bad.fallback_log();
            assert_eq!(log.app_root, Some(abs("/srv/shop")));
            assert_eq!((log.path, log.level), (None, log::LevelFilter::Debug));
        }

        #[test]
        fn more_than_one_process_makes_a_supervisor_whose_workers_lose_its_flags() {
            let argv = [
                "iiswsgi",
                "run",
                "--processes",
                "3",
                "--listen",
                "unix:/tmp/s",
                "--graceful-timeout=5",
                "--app",
                "a:b",
            ];
            let r = RawOptions {
                processes: 3,
                graceful_timeout: 5,
                argv: argv.iter().map(OsString::from).collect(),
                ..raw()
            }
            .resolve()
            .expect("valid");
            let workers = r.workers.expect("a supervisor");
            assert_eq!(workers.processes, 3);
            assert_eq!(workers.grace, Duration::from_secs(5));
            assert_eq!(
                workers.args,
                ["run", "--graceful-timeout=5", "--app", "a:b"]
            );
        }

        #[test]
        fn one_process_needs_no_supervisor() {
            assert!(raw().resolve().expect("valid").workers.is_none());
        }

        #[test]
        fn diagnostic_serves_the_page_or_hello_and_otherwise_the_python_app() {
            let serve = |diagnostic: Option<&str>| {
                RawOptions {
                    diagnostic: diagnostic.map(str::to_owned),
                    wsgi: RawWsgi {
                        app: Some("a:b".into()),
                        ..RawWsgi::default()
                    },
                    ..raw()
                }
                .resolve()
                .expect("valid")
                .serve
            };
            assert!(matches!(
                serve(Some("page")),
                Serve::Diagnostic(DiagnosticMode::Page)
            ));
            assert!(matches!(
                serve(Some("hello")),
                Serve::Diagnostic(DiagnosticMode::Hello)
            ));
            assert!(matches!(serve(None), Serve::Wsgi(w) if w.app.as_deref() == Some("a:b")));
        }

        #[test]
        fn mount_is_normalised_to_one_leading_slash_and_no_trailing_one() {
            let r = RawOptions {
                mount: Some("shop/".into()),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.environ.prefix.as_deref(), Some(&b"/shop"[..]));
        }

        #[test]
        fn server_limits_pass_through() {
            let r = RawOptions {
                max_conns: 8,
                max_requests: Some(100),
                listen: Some(ListenAddr::Unix("/tmp/s".into())),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!((r.server.max_conns, r.server.max_requests), (8, Some(100)));
            assert!(matches!(r.server.listen, Some(ListenAddr::Unix(_))));
        }

        #[test]
        fn the_socket_mode_flag_beats_the_manifest_which_beats_0666() {
            let dir = tempfile::tempdir().expect("tempdir");
            let manifest = dir.path().join("iiswsgi.toml");
            std::fs::write(
                &manifest,
                "[app]\nname = \"Shop\"\nversion = \"1.0\"\n[wsgi]\napp = \"shop:app\"\n\
                 [run]\nsocket-mode = \"0660\"\n",
            )
            .expect("manifest");
            let unix = Some(ListenAddr::Unix(dir.path().join("s.sock")));
            let mode =
                |flag: Option<u32>, listen: Option<ListenAddr>, manifest: Option<PathBuf>| {
                    RawOptions {
                        socket_mode: flag,
                        listen,
                        manifest,
                        ..raw()
                    }
                    .resolve()
                    .expect("valid")
                    .server
                    .socket_mode
                };
            assert_eq!(
                mode(Some(0o600), unix.clone(), Some(manifest.clone())),
                0o600
            );
            assert_eq!(mode(None, unix.clone(), Some(manifest.clone())), 0o660);
            assert_eq!(mode(None, unix, None), 0o666);
        }

        #[test]
        fn an_unreadable_manifest_is_refused_before_the_socket_is_bound() {
            let dir = tempfile::tempdir().expect("tempdir");
            let err = RawOptions {
                listen: Some(ListenAddr::Unix(dir.path().join("s.sock"))),
                manifest: Some(dir.path().join("missing.toml")),
                ..raw()
            }
            .resolve()
            .expect_err("a named manifest that cannot be read");
            assert!(matches!(err, RunConfigError::Manifest(_)), "{err:?}");
        }

        #[test]
        fn socket_mode_flag_parses_octal_and_says_what_it_wants() {
            assert_eq!(socket_mode("0660").expect("octal"), 0o660);
            assert_eq!(
                socket_mode("rw-rw----").expect_err("not octal").to_string(),
                "`rw-rw----` is not an octal mode such as 0660 (owner and group) or 0666 (any \
                 local user)"
            );
        }

        #[test]
        fn the_graceful_timeout_bounds_the_lone_process_too() {
            let r = RawOptions {
                graceful_timeout: 7,
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.graceful_timeout, Duration::from_secs(7));
            assert!(
                r.workers.is_none(),
                "no supervisor: the server itself keeps it"
            );
        }

        #[test]
        fn an_unknown_original_url_policy_is_a_configuration_error() {
            let err = RawOptions {
                original_url: "sometimes".into(),
                ..raw()
            }
            .resolve()
            .expect_err("refused");
            assert_eq!(
                err.to_string(),
                "--original-url: unknown policy `sometimes`"
            );
        }
    }

    #[cfg(feature = "python")]
    mod wsgi_side {
        use super::*;
        use crate::runtime::wsgi;
        use crate::venv::VenvSource;

        /// The working directory of [`raw`].
        fn cwd() -> PathBuf {
            std::env::temp_dir()
        }

        /// Resolves both halves; `located` is the venv the binary would sit in.
        fn plan(raw: RawOptions, located: Option<&Path>) -> Result<WsgiPlan, RunConfigError> {
            let r = raw.resolve()?;
            let Serve::Wsgi(w) = r.serve else {
                panic!("not the WSGI branch");
            };
            w.resolve(
                &r.server,
                r.manifest.as_ref(),
                &r.working_dir,
                located.map(Path::to_path_buf),
            )
        }

        fn manifest_with(path: &Path, wsgi: RawWsgi) -> RawOptions {
            RawOptions {
                manifest: Some(path.to_path_buf()),
                wsgi,
                ..raw()
            }
        }

        fn app(spec: &str) -> RawWsgi {
            RawWsgi {
                app: Some(spec.into()),
                ..RawWsgi::default()
            }
        }

        #[test]
        fn the_app_flag_beats_the_manifest() {
            let (_dir, path) = site("", "");
            let p = plan(manifest_with(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.app.to_string(), "shop.wsgi:application");
            let p = plan(manifest_with(&path, app("other:make()")), None).expect("valid");
            assert_eq!(p.options.app.to_string(), "other:make()");
        }

        #[test]
        fn a_factory_with_literal_arguments_is_accepted_as_gunicorn_does() {
            let (_dir, path) = site("", "");
            let p = plan(
                manifest_with(&path, app("flaskr:create_app(test_config={'A': 1})")),
                None,
            )
            .expect("valid");
            assert_eq!(
                p.options.app.to_string(),
                "flaskr:create_app(test_config={'A': 1})"
            );
        }

        #[test]
        fn without_app_or_manifest_there_is_nothing_to_serve() {
            let err = plan(raw(), None).expect_err("nothing");
            assert_eq!(
                err.to_string(),
                "nothing to serve: give --app MODULE:CALLABLE or --manifest iiswsgi.toml (or \
                 --diagnostic to check the FastCGI side without Python)"
            );
        }

        #[test]
        fn an_invalid_app_is_reported_under_the_flags_name() {
            let err = plan(
                RawOptions {
                    wsgi: app("a b"),
                    ..raw()
                },
                None,
            )
            .expect_err("invalid");
            assert!(
                err.to_string()
                    .starts_with("--app: invalid app \"a b\": the module"),
                "{err}"
            );
        }

        #[test]
        fn a_manifest_asking_for_a_python_older_than_3_9_is_refused() {
            let (_dir, path) = site("python-version = \"3.8\"", "");
            let err = plan(manifest_with(&path, app("a:b")), None).expect_err("refused");
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: `wsgi.python-version` is 3.8 but iiswsgi needs CPython 3.9 or later",
                    path.display(),
                )
            );
            for version in ["3.9", wsgi::BUILT_FOR, "3.13", "3.14"] {
                let (_dir, path) = site(&format!("python-version = \"{version}\""), "");
                assert!(
                    plan(manifest_with(&path, app("a:b")), None).is_ok(),
                    "{version} is served by the stable-ABI build"
                );
            }
        }

        #[test]
        fn the_venv_flag_beats_the_manifest_which_beats_the_binarys_own_venv() {
            let (dir, path) = site("venv = \".venv\"", "");
            let located = Path::new("/opt/iiswsgi-venv");
            let flagged = RawWsgi {
                venv: Some("/srv/flag-venv".into()),
                ..RawWsgi::default()
            };
            let p = plan(manifest_with(&path, flagged), Some(located)).expect("valid");
            assert_eq!(
                p.venv,
                Some((PathBuf::from("/srv/flag-venv"), VenvSource::Flag))
            );
            let p = plan(manifest_with(&path, RawWsgi::default()), Some(located)).expect("valid");
            assert_eq!(
                p.venv,
                Some((dir.path().join(".venv"), VenvSource::Manifest)),
                "relative to the manifest's folder"
            );
            let bare = || RawOptions {
                wsgi: app("a:b"),
                ..raw()
            };
            let p = plan(bare(), Some(located)).expect("valid");
            assert_eq!(
                p.venv,
                Some((located.to_path_buf(), VenvSource::BinaryLocation))
            );
            let p = plan(bare(), None).expect("valid");
            assert_eq!(p.venv, None, "the build's interpreter");
            assert_eq!(p.options.venv, None);
        }

        #[test]
        fn the_working_directory_is_chdir_else_the_app_root_else_where_run_started() {
            let (dir, path) = site("", "");
            let p = plan(manifest_with(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.chdir.as_deref(), Some(dir.path()));
            let chdir = RawWsgi {
                chdir: Some("code".into()),
                ..RawWsgi::default()
            };
            let p = plan(manifest_with(&path, chdir), None).expect("valid");
            assert_eq!(p.options.chdir, Some(cwd().join("code")));
            let p = plan(
                RawOptions {
                    wsgi: app("a:b"),
                    ..raw()
                },
                None,
            )
            .expect("valid");
            assert_eq!(
                p.options.chdir,
                Some(cwd()),
                "as gunicorn: the current folder, first on sys.path"
            );
        }

        #[test]
        fn python_path_flags_come_before_the_manifests_entries() {
            let (dir, path) = site("python-paths = [\"lib\"]", "");
            let flags = RawWsgi {
                python_paths: vec!["/a".into(), "b".into()],
                ..RawWsgi::default()
            };
            let p = plan(manifest_with(&path, flags), None).expect("valid");
            assert_eq!(
                p.options.python_paths,
                [PathBuf::from("/a"), cwd().join("b"), dir.path().join("lib")]
            );
        }

        #[test]
        fn the_manifests_environment_is_set() {
            let (_dir, path) = site(
                "[wsgi.environment]\nDJANGO_SETTINGS_MODULE = \"shop.settings\"",
                "",
            );
            let p = plan(manifest_with(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(
                p.options.environment,
                [(
                    "DJANGO_SETTINGS_MODULE".to_owned(),
                    "shop.settings".to_owned()
                )]
            );
        }

        #[test]
        fn the_reload_pattern_flag_beats_the_manifest_which_beats_the_default() {
            let (dir, path) = site("reload-regex = 'app\\.py$'", "");
            let flagged = RawWsgi {
                reload_pattern: Some("x$".into()),
                ..RawWsgi::default()
            };
            let p = plan(manifest_with(&path, flagged), None).expect("valid");
            let reload = p.options.reload.expect("reloading");
            assert_eq!(
                (reload.root.as_path(), reload.pattern.as_str()),
                (dir.path(), "x$")
            );
            let p = plan(manifest_with(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.reload.expect("reloading").pattern, "app\\.py$");
            let in_code = RawWsgi {
                app: Some("a:b".into()),
                chdir: Some("/srv/code".into()),
                ..RawWsgi::default()
            };
            let p = plan(
                RawOptions {
                    wsgi: in_code,
                    ..raw()
                },
                None,
            )
            .expect("valid");
            assert_eq!(
                p.options.reload.expect("reloading").pattern,
                wsgi::DEFAULT_RELOAD_PATTERN
            );
        }

        #[test]
        fn an_empty_reload_pattern_turns_reloading_off() {
            let (_dir, path) = site("reload-regex = ''", "");
            let p = plan(manifest_with(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.reload, None, "empty in the manifest");
            let (_dir, path) = site("", "");
            let off = RawWsgi {
                reload_pattern: Some(String::new()),
                reload: true,
                ..RawWsgi::default()
            };
            assert_eq!(
                plan(manifest_with(&path, off), None)
                    .expect("valid")
                    .options
                    .reload,
                None
            );
        }

        #[test]
        fn watching_outside_iis_is_opt_in_with_the_reload_flag() {
            let (_dir, path) = site("", "");
            let p = plan(manifest_with(&path, RawWsgi::default()), None).expect("valid");
            assert!(!p.reload_opt_in, "IIS's rule only");
            let opted = RawWsgi {
                reload: true,
                ..RawWsgi::default()
            };
            let p = plan(manifest_with(&path, opted), None).expect("valid");
            assert!(p.reload_opt_in && p.options.reload.is_some());
        }
    }
}
