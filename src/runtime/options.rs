//! What `iiswsgi run` was asked, and what that means: [`RawOptions`] holds the inputs as the
//! command line gave them (no clap here, no defaults applied beyond clap's own, paths as typed);
//! [`RawOptions::resolve`] turns them into [`Resolved`], with absolute paths and every
//! precedence rule applied. The WSGI half ([`RawWsgi::resolve`]) runs later, in the process
//! that serves: a supervisor (`--processes N`) never reads the manifest, its workers do.
//!
//! Precedence, strongest first (each rule has a unit test below):
//! - application root: `--app-root`, else the manifest's folder, else none;
//! - log: `--log -` is stderr, `--log FILE` that file, else the default
//!   (`<app root>/logs/iiswsgi.log`, else the temp dir; [`crate::runtime::logging`]);
//! - request threads: `--threads`, else `[run] threads` of the manifest (WSGI only; the
//!   manifest's default is 8), else 1;
//! - worker processes: `--processes N` above 1 makes this process a supervisor whose workers
//!   get this command line without the supervisor's own flags;
//! - the app: `--app`, else `[wsgi] app`, else nothing to serve (an error);
//! - the venv: `--venv` (`IISWSGI_VENV`), else `[wsgi] venv`, else the venv whose `bin/`
//!   (`Scripts\`) holds this binary, else the interpreter the binary was built against;
//! - working directory: `--chdir`, else the application root;
//! - `sys.path`: `--python-path` entries in order, then `[wsgi] python-paths`;
//! - reloading: `--reload-pattern`, else `[wsgi] reload-regex` of the manifest (which has its
//!   own default), else [`crate::runtime::wsgi::DEFAULT_RELOAD_PATTERN`]; an empty pattern or
//!   no working directory turns it off;
//! - `[wsgi] python-version`, when set, must be the CPython this build embeds.
//!
//! Failures are [`RunConfigError`]s: usage or configuration errors, printed on one line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::ManifestError;
use crate::runtime::environ::{EnvironOptions, OriginalUrlPolicy, normalise_prefix};
use crate::runtime::logging::LogConfig;
use crate::runtime::server::RunOptions;
use crate::runtime::server::diagnostic::DiagnosticMode;
use crate::runtime::server::supervisor::{self, Workers};
use crate::runtime::transport::ListenAddr;

/// The inputs of `iiswsgi run`, one field per flag, as given.
#[derive(Debug, Clone)]
pub struct RawOptions {
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
    pub log_level: log::LevelFilter,
    /// `--log-max-size BYTES`.
    pub log_max_size: u64,
    /// `--log-keep N`.
    pub log_keep: u32,
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
    /// `--threads N`.
    pub threads: Option<u16>,
    /// This process's whole command line, program name first (a supervisor starts its
    /// workers with it, minus its own flags).
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
}

/// `iiswsgi run`'s inputs once the server-side rules ran.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// How the server runs (absolute paths; `threads` from `--threads` alone so far).
    pub server: RunOptions,
    /// `Some` when this process supervises worker processes (`--processes N`, N > 1).
    pub workers: Option<Workers>,
    /// What answers the requests.
    pub serve: Serve,
    /// `--threads` as given: it beats the manifest's `[run] threads`, and asking for more
    /// than one under IIS is worth a log line.
    pub threads_flag: Option<usize>,
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
/// serving (see [`crate::runtime::exit_code`]). Each message is one line and
/// complete: these errors have no `source()`, the cause is in the text.
#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    /// A path could not be made absolute.
    #[error("{}: {reason}", path.display())]
    Path {
        /// The path as given.
        path: PathBuf,
        /// Why.
        reason: std::io::Error,
    },
    /// `--original-url` is none of [`OriginalUrlPolicy::NAMES`].
    #[error("--original-url: unknown policy `{0}`")]
    OriginalUrl(String),
    /// The manifest could not be read or is invalid (its error chain, on one line).
    #[error("{}", one_line(.0))]
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
    /// A Python application was asked of a build without Python.
    #[error(
        "this build has no Python (built without the `python` feature); use `iiswsgi run \
         --diagnostic` to check the FastCGI side"
    )]
    NoPython,
}

/// `err`, then each of its causes, joined with `: `.
fn one_line(err: &dyn std::error::Error) -> String {
    crate::error_chain(err, ": ")
}

fn absolute(p: &Path) -> Result<PathBuf, RunConfigError> {
    std::path::absolute(p).map_err(|reason| RunConfigError::Path {
        path: p.to_path_buf(),
        reason,
    })
}

impl RawOptions {
    /// Applies the server-side rules (module doc): absolute paths, the application root, the
    /// log, `--threads`, the worker processes, diagnostic or WSGI. Reads no file; makes
    /// relative paths absolute against the working directory.
    pub fn resolve(self) -> Result<Resolved, RunConfigError> {
        let serve = match self.diagnostic.as_deref().and_then(DiagnosticMode::parse) {
            Some(mode) => Serve::Diagnostic(mode),
            None => Serve::Wsgi(self.wsgi),
        };
        let workers = (self.processes > 1).then(|| Workers {
            processes: self.processes,
            grace: Duration::from_secs(self.graceful_timeout),
            args: supervisor::worker_args(self.argv),
        });
        let manifest = self.manifest.as_deref().map(absolute).transpose()?;
        let app_root = match (&self.app_root, &manifest) {
            (Some(dir), _) => Some(absolute(dir)?),
            (None, Some(m)) => m.parent().map(Path::to_path_buf),
            (None, None) => None,
        };
        let (log_path, stderr) = match self.log.as_deref() {
            Some(p) if p == Path::new("-") => (None, true),
            Some(p) => (Some(absolute(p)?), false),
            None => (None, false),
        };
        let original_url = OriginalUrlPolicy::parse(&self.original_url)
            .ok_or_else(|| RunConfigError::OriginalUrl(self.original_url.clone()))?;
        let server = RunOptions {
            listen: self.listen,
            log: LogConfig {
                path: log_path,
                app_root: app_root.clone(),
                level: self.log_level,
                max_bytes: self.log_max_size,
                keep: self.log_keep,
                stderr,
            },
            environ: EnvironOptions {
                original_url,
                prefix: self.mount.map(|m| normalise_prefix(m.as_bytes())),
            },
            app_root,
            manifest,
            max_conns: self.max_conns,
            max_requests: self.max_requests,
            threads: self.threads.map_or(1, usize::from),
            ..RunOptions::default()
        };
        Ok(Resolved {
            server,
            workers,
            serve,
            threads_flag: self.threads.map(usize::from),
        })
    }
}

#[cfg(feature = "python")]
pub use self::python::WsgiPlan;

#[cfg(feature = "python")]
mod python {
    use std::path::PathBuf;

    use super::{RawWsgi, RunConfigError, absolute};
    use crate::manifest::{Manifest, Venv as ManifestVenv};
    use crate::runtime::server::RunOptions;
    use crate::runtime::wsgi::{self, AppSpec, Options, ReloadOptions};
    use crate::venv::{self, VenvSource};

    /// The Python application to serve, resolved.
    #[derive(Debug, Clone)]
    pub struct WsgiPlan {
        /// What [`wsgi::start`] needs, but `mode`, which depends on the transport.
        pub options: Options,
        /// The venv chosen and why (logged once the log is open); `None`: the interpreter
        /// this binary was built against.
        pub venv: Option<(PathBuf, VenvSource)>,
        /// Request threads: `--threads`, else `[run] threads`, else 1.
        pub threads: usize,
    }

    impl RawWsgi {
        /// Applies the WSGI rules (module doc): reads the manifest named by `server`, checks
        /// its Python version, picks the app, the venv (`located`: the venv this binary sits
        /// in, [`venv::this_venv`]), the working directory, `sys.path`, the environment and
        /// the reload rule.
        pub fn resolve(
            self,
            server: &RunOptions,
            threads_flag: Option<usize>,
            located: Option<PathBuf>,
        ) -> Result<WsgiPlan, RunConfigError> {
            let manifest = match &server.manifest {
                Some(path) => Some(Manifest::load(path).map_err(RunConfigError::Manifest)?),
                None => None,
            };
            let wsgi = manifest.as_ref().map(|m| (&m.wsgi, m.base_dir()));
            let app = match (self.app, wsgi) {
                (Some(app), _) => app,
                (None, Some((w, _))) => w.app.to_string(),
                (None, None) => return Err(RunConfigError::NothingToServe),
            };
            if let Some(((major, minor), path)) = wsgi
                .and_then(|(w, _)| w.python_version)
                .zip(server.manifest.as_ref())
            {
                let (min_major, min_minor) = wsgi::MINIMUM_PYTHON;
                if (u32::from(major), u32::from(minor)) < (min_major, min_minor) {
                    return Err(RunConfigError::PythonVersion {
                        manifest: path.clone(),
                        wanted: format!("{major}.{minor}"),
                        minimum: "3.9",
                    });
                }
            }
            let spec: AppSpec = app.parse().map_err(RunConfigError::App)?;
            let mut options = Options::new(spec);
            let flag = self.venv.as_deref().map(absolute).transpose()?;
            let from_manifest = wsgi.and_then(|(w, base)| match w.venv.as_ref()? {
                ManifestVenv::InApp(rel) => Some(rel.under(base)),
                ManifestVenv::Absolute(dir) => Some(PathBuf::from(dir)),
            });
            let chosen = venv::choose(flag, from_manifest, located);
            options.venv = chosen.as_ref().map(|(dir, _)| dir.clone());
            options.chdir = match self.chdir.as_deref() {
                Some(dir) => Some(absolute(dir)?),
                None => server.app_root.clone(),
            };
            options.python_paths = self
                .python_paths
                .iter()
                .map(|p| absolute(p))
                .collect::<Result<Vec<PathBuf>, RunConfigError>>()?;
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
            let manifest_threads = manifest.as_ref().map(|m| usize::from(m.run.threads));
            Ok(WsgiPlan {
                options,
                venv: chosen,
                threads: threads_flag.or(manifest_threads).unwrap_or(1),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inputs with every flag at its command-line default.
    fn raw() -> RawOptions {
        RawOptions {
            diagnostic: None,
            listen: None,
            app_root: None,
            manifest: None,
            log: None,
            log_level: log::LevelFilter::Info,
            log_max_size: crate::runtime::logging::DEFAULT_MAX_BYTES,
            log_keep: crate::runtime::logging::DEFAULT_KEEP,
            mount: None,
            original_url: "auto".into(),
            max_conns: 64,
            max_requests: None,
            processes: 1,
            graceful_timeout: 30,
            threads: None,
            argv: vec!["iiswsgi".into(), "run".into()],
            wsgi: RawWsgi::default(),
        }
    }

    fn cwd() -> PathBuf {
        std::env::current_dir().expect("cwd")
    }

    mod server_side {
        use super::*;

        #[test]
        fn app_root_is_the_manifests_folder_unless_app_root_is_given() {
            let r = RawOptions {
                manifest: Some("/srv/shop/iiswsgi.toml".into()),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.app_root, Some(PathBuf::from("/srv/shop")));
            assert_eq!(
                r.server.log.app_root, r.server.app_root,
                "the default log's folder"
            );
            let r = RawOptions {
                manifest: Some("/srv/shop/iiswsgi.toml".into()),
                app_root: Some("/srv/other".into()),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!(r.server.app_root, Some(PathBuf::from("/srv/other")));
            assert_eq!(
                r.server.manifest,
                Some(PathBuf::from("/srv/shop/iiswsgi.toml"))
            );
        }

        #[test]
        fn no_manifest_and_no_app_root_means_no_app_root() {
            let r = raw().resolve().expect("valid");
            assert_eq!(r.server.app_root, None);
            assert_eq!(r.server.manifest, None);
        }

        #[test]
        fn relative_paths_become_absolute_against_the_working_directory() {
            let r = RawOptions {
                manifest: Some(PathBuf::from("site").join("iiswsgi.toml")),
                log: Some(PathBuf::from("logs").join("run.log")),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!(
                r.server.manifest,
                Some(cwd().join("site").join("iiswsgi.toml"))
            );
            assert_eq!(r.server.app_root, Some(cwd().join("site")));
            assert_eq!(r.server.log.path, Some(cwd().join("logs").join("run.log")));
        }

        #[test]
        fn log_dash_means_stderr_and_no_file() {
            let r = RawOptions {
                log: Some("-".into()),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert!(r.server.log.stderr);
            assert_eq!(r.server.log.path, None);
            let r = raw().resolve().expect("valid");
            assert!(!r.server.log.stderr, "no --log: the default file");
            assert_eq!(r.server.log.path, None);
        }

        #[test]
        fn log_flags_pass_through() {
            let r = RawOptions {
                log_level: log::LevelFilter::Debug,
                log_max_size: 10,
                log_keep: 3,
                ..raw()
            }
            .resolve()
            .expect("valid");
            let log = &r.server.log;
            assert_eq!(
                (log.level, log.max_bytes, log.keep),
                (log::LevelFilter::Debug, 10, 3)
            );
        }

        #[test]
        fn threads_are_one_unless_the_flag_says_and_the_flag_is_kept_for_the_manifest_rule() {
            let r = raw().resolve().expect("valid");
            assert_eq!((r.server.threads, r.threads_flag), (1, None));
            let r = RawOptions {
                threads: Some(4),
                ..raw()
            }
            .resolve()
            .expect("valid");
            assert_eq!((r.server.threads, r.threads_flag), (4, Some(4)));
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
            assert_eq!(workers.args, ["run", "--app", "a:b"]);
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
        use std::path::Path;

        use super::*;
        use crate::runtime::wsgi;
        use crate::venv::VenvSource;

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

        /// Resolves both halves; `located` is the venv the binary would sit in.
        fn plan(raw: RawOptions, located: Option<&Path>) -> Result<WsgiPlan, RunConfigError> {
            let r = raw.resolve()?;
            let Serve::Wsgi(w) = r.serve else {
                panic!("not the WSGI branch");
            };
            w.resolve(&r.server, r.threads_flag, located.map(Path::to_path_buf))
        }

        fn with_manifest(path: &Path, wsgi: RawWsgi) -> RawOptions {
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
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.app.to_string(), "shop.wsgi:application");
            let p = plan(with_manifest(&path, app("other:make()")), None).expect("valid");
            assert_eq!(p.options.app.to_string(), "other:make()");
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
            let err = plan(with_manifest(&path, app("a:b")), None).expect_err("refused");
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
                    plan(with_manifest(&path, app("a:b")), None).is_ok(),
                    "{version} is served by the stable-ABI build"
                );
            }
        }

        #[test]
        fn an_unreadable_manifest_is_one_line_with_its_cause() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("missing.toml");
            let err = plan(with_manifest(&path, RawWsgi::default()), None).expect_err("missing");
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("cannot read manifest {}: ", path.display())),
                "{text}"
            );
            assert!(
                std::error::Error::source(&err).is_none(),
                "all in the message"
            );
        }

        #[test]
        fn the_venv_flag_beats_the_manifest_which_beats_the_binarys_own_venv() {
            let (dir, path) = site("venv = \".venv\"", "");
            let located = Path::new("/opt/iiswsgi-venv");
            let flagged = RawWsgi {
                venv: Some("/srv/flag-venv".into()),
                ..RawWsgi::default()
            };
            let p = plan(with_manifest(&path, flagged), Some(located)).expect("valid");
            assert_eq!(
                p.venv,
                Some((PathBuf::from("/srv/flag-venv"), VenvSource::Flag))
            );
            let p = plan(with_manifest(&path, RawWsgi::default()), Some(located)).expect("valid");
            assert_eq!(
                p.venv,
                Some((dir.path().join(".venv"), VenvSource::Manifest)),
                "relative to the manifest's folder"
            );
            let p = plan(
                RawOptions {
                    wsgi: app("a:b"),
                    ..raw()
                },
                Some(located),
            )
            .expect("valid");
            assert_eq!(
                p.venv,
                Some((located.to_path_buf(), VenvSource::BinaryLocation))
            );
            let p = plan(
                RawOptions {
                    wsgi: app("a:b"),
                    ..raw()
                },
                None,
            )
            .expect("valid");
            assert_eq!(p.venv, None, "the build's interpreter");
            assert_eq!(p.options.venv, None);
        }

        #[test]
        fn the_working_directory_is_chdir_else_the_app_root() {
            let (dir, path) = site("", "");
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.chdir.as_deref(), Some(dir.path()));
            let chdir = RawWsgi {
                chdir: Some("code".into()),
                ..RawWsgi::default()
            };
            let p = plan(with_manifest(&path, chdir), None).expect("valid");
            assert_eq!(p.options.chdir, Some(cwd().join("code")));
            let p = plan(
                RawOptions {
                    wsgi: app("a:b"),
                    ..raw()
                },
                None,
            )
            .expect("valid");
            assert_eq!(p.options.chdir, None, "no app root, no chdir");
        }

        #[test]
        fn python_path_flags_come_before_the_manifests_entries() {
            let (dir, path) = site("python-paths = [\"lib\"]", "");
            let flags = RawWsgi {
                python_paths: vec!["/a".into(), "b".into()],
                ..RawWsgi::default()
            };
            let p = plan(with_manifest(&path, flags), None).expect("valid");
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
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(
                p.options.environment,
                [(
                    "DJANGO_SETTINGS_MODULE".to_owned(),
                    "shop.settings".to_owned()
                )]
            );
        }

        #[test]
        fn the_reload_flag_beats_the_manifest_which_beats_the_default() {
            let (dir, path) = site("reload-regex = 'app\\.py$'", "");
            let flagged = RawWsgi {
                reload_pattern: Some("x$".into()),
                ..RawWsgi::default()
            };
            let p = plan(with_manifest(&path, flagged), None).expect("valid");
            let reload = p.options.reload.expect("reloading");
            assert_eq!(
                (reload.root.as_path(), reload.pattern.as_str()),
                (dir.path(), "x$")
            );
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
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
        fn an_empty_reload_pattern_or_no_working_directory_turns_reloading_off() {
            let (_dir, path) = site("reload-regex = ''", "");
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.options.reload, None, "empty in the manifest");
            let (_dir, path) = site("", "");
            let off = RawWsgi {
                reload_pattern: Some(String::new()),
                ..RawWsgi::default()
            };
            assert_eq!(
                plan(with_manifest(&path, off), None)
                    .expect("valid")
                    .options
                    .reload,
                None
            );
            let p = plan(
                RawOptions {
                    wsgi: app("a:b"),
                    ..raw()
                },
                None,
            )
            .expect("valid");
            assert_eq!(p.options.reload, None, "no app root: nothing to watch");
        }

        #[test]
        fn threads_flag_beats_the_manifest_which_beats_one() {
            let (_dir, path) = site("", "threads = 3");
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.threads, 3);
            let p = plan(
                RawOptions {
                    threads: Some(5),
                    ..with_manifest(&path, RawWsgi::default())
                },
                None,
            )
            .expect("valid");
            assert_eq!(p.threads, 5);
            let p = plan(
                RawOptions {
                    wsgi: app("a:b"),
                    ..raw()
                },
                None,
            )
            .expect("valid");
            assert_eq!(p.threads, 1);
            let (_dir, path) = site("", "");
            let p = plan(with_manifest(&path, RawWsgi::default()), None).expect("valid");
            assert_eq!(p.threads, 8, "the manifest's own default");
        }
    }
}
