//! `iiswsgi run` from its raw inputs to its end: [`run`] resolves the options
//! ([`crate::runtime::options`]), supervises worker processes if asked, else serves the
//! diagnostic responder or the Python application through [`crate::runtime::server::run`],
//! and after a reload outside IIS re-executes itself in place ([`crate::runtime::reexec`]).
//!
//! Under IIS and elsewhere the same binary behaves as each world expects. Under IIS (IIS's
//! single connection on stdin, or IIS's environment variables): a failed import answers 503
//! and is retried (exiting would loop into rapid-fail protection), a changed file ends the
//! process after its request (IIS starts a fresh one), nothing is written to stdout or
//! stderr. Elsewhere, as gunicorn: a failed import stops the start with its traceback (exit
//! 2; after a reload it answers 503 until the next change instead), watching files is opt-in
//! (`--reload`) and a reload restarts in place with the socket kept open, and a terminal gets
//! a start-up line.
//!
//! How it ended maps to the process's exit status in one place, [`exit_code`]:
//! 0 served and stopped normally, 1 could not serve (no transport, a failed start of Python or
//! of the workers, a failed re-execution), 2 a usage or configuration error found before
//! serving, the app's import failing outside IIS included. The supervisor relies on that 2
//! (`server::supervisor`: a worker exiting 2 at once stops it, and it exits 2 too).

use std::io::IsTerminal as _;

use crate::runtime::access_log::{AccessLog, Logged};
use crate::runtime::options::{RawOptions, Resolved, RunConfigError, Serve};
use crate::runtime::server::diagnostic::Diagnostic;
use crate::runtime::server::supervisor::{self, SupervisorError};
use crate::runtime::server::{self, RunError, ServerInfo};

/// Why `iiswsgi run` ended unsuccessfully. `Display` and `source()` are those of the error
/// inside.
#[derive(Debug, thiserror::Error)]
pub enum RunFailure {
    /// A usage or configuration error, before serving.
    #[error(transparent)]
    Config(#[from] RunConfigError),
    /// The supervisor of `--processes N` could not serve.
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    /// The server could not serve.
    #[error(transparent)]
    Server(#[from] RunError),
    /// A reload could not re-execute the binary.
    #[cfg(unix)]
    #[error(transparent)]
    Reexec(#[from] crate::runtime::reexec::ReexecError),
}

/// The process exit status for how `iiswsgi run` ended: 0 served and stopped normally, 2 a
/// usage or configuration error (an app that does not import outside IIS, workers that
/// cannot start for that reason), 1 any other failure. The one place these codes are chosen.
pub fn exit_code(outcome: &Result<(), RunFailure>) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(RunFailure::Config(_)) => 2,
        Err(RunFailure::Supervisor(SupervisorError::WorkersCannotStart { .. })) => 2,
        Err(RunFailure::Server(e)) if wsgi::is_import_failure(e) => 2,
        Err(_) => 1,
    }
}

/// Runs `iiswsgi run`: resolves `raw`, then supervises (`--processes N`) or serves until
/// shutdown. `Ok` once the server or the supervisor stopped normally.
pub fn run(raw: RawOptions) -> Result<(), RunFailure> {
    let fallback = raw.fallback_log();
    let resolved = match raw.resolve() {
        Ok(r) => r,
        Err(e) => {
            // Under IIS stderr is nowhere: the log is the only place this can be read.
            if !fallback.stderr {
                crate::runtime::logging::init(&fallback);
                log::error!("{e}");
                crate::runtime::logging::flush();
            }
            return Err(e.into());
        }
    };
    if let Some(workers) = &resolved.workers {
        if on_terminal() {
            say(&format!(
                "iiswsgi {}: supervisor (pid {}) starting {} worker processes on {}",
                crate::VERSION,
                std::process::id(),
                workers.processes,
                resolved.server.listen.as_ref().map_or_else(
                    || "the listening socket on fd 0".to_owned(),
                    ToString::to_string
                )
            ));
        }
        // `None`: IIS or Windows, one process, as the log says.
        if supervisor::supervise(&resolved.server, workers)?.is_some() {
            return Ok(());
        }
    }
    match resolved.serve.clone() {
        Serve::Diagnostic(mode) => {
            let access = open_access_log(&resolved)?;
            let threads_flag = resolved.threads_flag;
            server::run(resolved.server, |info| {
                note_threads(info, threads_flag);
                Ok(Logged::new(Diagnostic::new(mode, info), access))
            })?;
            Ok(())
        }
        Serve::Wsgi(raw) => wsgi::serve(resolved, raw),
    }
}

fn open_access_log(resolved: &Resolved) -> Result<Option<AccessLog>, RunConfigError> {
    use crate::runtime::options::AccessLogTarget;
    let Some(target) = &resolved.access_log else {
        return Ok(None);
    };
    AccessLog::open(target)
        .map(Some)
        .map_err(|reason| RunConfigError::AccessLog {
            path: match target {
                AccessLogTarget::File(p) => p.clone(),
                AccessLogTarget::Stdout => "-".into(),
            },
            reason,
        })
}

/// One line to the terminal; a terminal that went away is no reason to fail.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether a person may read stderr: a terminal, and not IIS.
fn on_terminal() -> bool {
    !crate::runtime::iis_env::get().started_by_iis() && std::io::stderr().is_terminal()
}

/// Under IIS (one connection on stdin) there is one request thread whatever was asked: say so
/// once, at info level when `--threads` asked for more (`explicit`), else at debug level.
fn note_threads(info: &ServerInfo, explicit: Option<usize>) {
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

/// The Python application: the embedded-CPython WSGI bridge.
#[cfg(feature = "python")]
mod wsgi {
    use std::sync::Arc;

    use super::{Logged, RunFailure, note_threads, on_terminal, open_access_log};
    use crate::runtime::options::{RawWsgi, Resolved};
    use crate::runtime::server::{self, RunError, ServerInfo};
    use crate::runtime::transport::Kind;
    use crate::runtime::wsgi::{self, ExitReason, Mode, Runtime, ServerLog, StartError};

    /// Whether IIS drives this process: its single connection on stdin, or its variables.
    fn under_iis(info: &ServerInfo) -> bool {
        info.single_connection || crate::runtime::iis_env::get().started_by_iis()
    }

    /// Whether the server failed because the app does not import (outside IIS).
    pub(super) fn is_import_failure(e: &RunError) -> bool {
        matches!(e, RunError::App(e) if matches!(e.downcast_ref::<StartError>(), Some(StartError::Import { .. })))
    }

    /// Resolves the application (with the manifest the server side read), then starts Python
    /// inside the server's application factory (on the main thread, after the log and the
    /// transport are set up), serves, finalises Python on the same thread, and after a
    /// reload outside IIS re-executes this binary in place.
    pub(super) fn serve(resolved: Resolved, raw: RawWsgi) -> Result<(), RunFailure> {
        let plan = raw.resolve(
            &resolved.server,
            resolved.manifest.as_ref(),
            &resolved.working_dir,
            crate::venv::this_venv(),
        )?;
        // SAFETY: `run` is still the only thread (the server, its threads and the log start
        // below); this may replace the process image to load the venv's own libpython.
        unsafe { wsgi::prepare_process(plan.options.venv.as_deref()) };
        let access = open_access_log(&resolved)?;
        let Resolved {
            server: options,
            threads_flag,
            manifest_found,
            working_dir,
            argv,
            ..
        } = resolved;
        let threads = options.threads;
        let manifest = options.manifest.clone();
        let chosen = plan.venv.clone();
        let mut runtime: Option<Runtime> = None;
        let mut decided = None;
        let result = server::run(options, |info| {
            let iis = under_iis(info);
            note_threads(info, threads_flag);
            if let (Some(path), true) = (&manifest, manifest_found) {
                log::info!(
                    "manifest: {} (found in the working directory)",
                    path.display()
                );
            }
            match &chosen {
                Some((dir, source)) => log::info!("venv: {} ({source})", dir.display()),
                None => log::info!(
                    "venv: none (no --venv, no [wsgi] venv, and this binary is not in a \
                     venv's bin/Scripts folder): the interpreter iiswsgi was built against"
                ),
            }
            let mut wsgi_options = plan.options;
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
            // At the first start only: after a reload, a broken import answers 503 until the
            // next change reloads again (the service stays up, as gunicorn --reload keeps it).
            #[cfg(unix)]
            let reloaded = crate::runtime::reexec::reloaded();
            #[cfg(not(unix))]
            let reloaded = None;
            wsgi_options.stop_on_import_failure = !iis && reloaded.is_none();
            wsgi_options.reload_since = reloaded;
            if !iis && !plan.reload_opt_in {
                wsgi_options.reload = None;
            }
            let started = wsgi::start(&wsgi_options, Arc::new(ServerLog))?;
            let app = started.app();
            if let Some(stop) = info.stop.clone() {
                app.on_exit_request(move |reason| match reason {
                    ExitReason::Reload(_) => stop.reload(),
                    ExitReason::SystemExit => stop.request(),
                });
            }
            if !iis && on_terminal() {
                super::say(&startup_line(
                    info,
                    &wsgi_options,
                    &started,
                    &chosen,
                    threads,
                ));
            }
            runtime = Some(started);
            Ok(Logged::new(app, access))
        });
        if let Some(runtime) = runtime {
            decided = runtime.app().reload_requested_at();
            let status = runtime.finalize();
            if status != 0 {
                log::warn!("Python finalisation reported status {status}");
            }
            crate::runtime::logging::flush();
        }
        let report = result?;
        #[cfg(unix)]
        if let Some(handover) = report.handover {
            let decided = decided.unwrap_or_else(std::time::SystemTime::now);
            return Err(
                crate::runtime::reexec::reexec(&argv, &working_dir, handover, decided).into(),
            );
        }
        let _ = (report, argv, working_dir, decided);
        Ok(())
    }

    /// What a person starting `iiswsgi run` in a terminal wants to know, in one line (as
    /// gunicorn's "Listening at", "Booting worker"): the app, where, how many threads, which
    /// Python and venv, whether it reloads, where the log is.
    fn startup_line(
        info: &ServerInfo,
        options: &wsgi::Options,
        runtime: &Runtime,
        venv: &Option<(std::path::PathBuf, crate::venv::VenvSource)>,
        threads: usize,
    ) -> String {
        let threads = if info.single_connection { 1 } else { threads };
        format!(
            "iiswsgi {}: serving {}, {} (pid {}, {threads} thread{}); Python {}{}{}; log: {}",
            crate::VERSION,
            options.app,
            info.transport,
            std::process::id(),
            if threads == 1 { "" } else { "s" },
            runtime.python_version(),
            match venv {
                Some((dir, _)) => format!(" in {}", dir.display()),
                None => " (no venv)".to_owned(),
            },
            match runtime.watched_folders() {
                Some(n) => format!("; reloading on changes ({n} folders watched)"),
                None => String::new(),
            },
            info.log,
        )
    }
}

/// Built without Python: only `--diagnostic` can serve.
#[cfg(not(feature = "python"))]
mod wsgi {
    use super::RunFailure;
    use crate::runtime::options::{RawWsgi, Resolved, RunConfigError};
    use crate::runtime::server::RunError;

    pub(super) fn is_import_failure(_e: &RunError) -> bool {
        false
    }

    pub(super) fn serve(_resolved: Resolved, _raw: RawWsgi) -> Result<(), RunFailure> {
        Err(RunConfigError::NoPython.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_exits_0_configuration_errors_2_and_serving_failures_1() {
        assert_eq!(exit_code(&Ok(())), 0);
        let config = RunFailure::from(RunConfigError::NothingToServe);
        assert_eq!(exit_code(&Err(config)), 2);
        let server = RunFailure::from(RunError::Poll(std::io::Error::other("x")));
        assert_eq!(exit_code(&Err(server)), 1);
        let supervisor = RunFailure::from(SupervisorError::WorkersCannotStart {
            status: "exit status: 2".into(),
        });
        assert_eq!(
            exit_code(&Err(supervisor)),
            2,
            "the workers' configuration error"
        );
        let spawn = RunFailure::from(SupervisorError::Spawn(std::io::Error::other("x")));
        assert_eq!(exit_code(&Err(spawn)), 1);
    }

    #[cfg(feature = "python")]
    #[test]
    fn an_app_that_does_not_import_outside_iis_exits_2() {
        let import = crate::runtime::wsgi::StartError::Import {
            app: "flaskr:nope".into(),
            traceback: "AttributeError: module 'flaskr' has no attribute 'nope'".into(),
        };
        let failure = RunFailure::from(RunError::App(Box::new(import)));
        assert_eq!(exit_code(&Err(failure)), 2);
        let init = crate::runtime::wsgi::StartError::Setup {
            step: "x",
            message: "y".into(),
        };
        let failure = RunFailure::from(RunError::App(Box::new(init)));
        assert_eq!(
            exit_code(&Err(failure)),
            1,
            "Python itself failing is no usage error"
        );
    }

    #[test]
    fn a_failure_reads_as_the_error_inside_with_its_causes() {
        let failure = RunFailure::from(RunError::Poll(std::io::Error::other("epoll died")));
        assert_eq!(failure.to_string(), "the event loop failed");
        let cause = std::error::Error::source(&failure).map(ToString::to_string);
        assert_eq!(cause.as_deref(), Some("epoll died"));
    }

    #[test]
    fn a_configuration_error_is_one_line_with_no_cause() {
        let failure = RunFailure::from(RunConfigError::OriginalUrl("sometimes".into()));
        assert_eq!(
            failure.to_string(),
            "--original-url: unknown policy `sometimes`"
        );
        assert!(std::error::Error::source(&failure).is_none());
    }
}
