//! `iiswsgi run` from its raw inputs to its end: [`run`] resolves the options
//! ([`crate::runtime::options`]), supervises worker processes if asked, else serves the
//! diagnostic responder or the Python application through [`crate::runtime::server::run`].
//!
//! How it ended maps to the process's exit status in one place, [`exit_code`]:
//! 0 served and stopped normally, 1 could not serve (no transport, a failed start of Python or
//! of the workers), 2 a usage or configuration error found before serving. The supervisor
//! relies on that 2 (`server::supervisor`: a worker exiting 2 at once stops it).

use crate::runtime::options::{RawOptions, RunConfigError, Serve};
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
}

/// The process exit status for how `iiswsgi run` ended: 0 served and stopped normally, 2 a
/// usage or configuration error, 1 any other failure. The one place these codes are chosen.
pub fn exit_code(outcome: &Result<(), RunFailure>) -> u8 {
    match outcome {
        Ok(()) => 0,
        Err(RunFailure::Config(_)) => 2,
        Err(RunFailure::Supervisor(_) | RunFailure::Server(_)) => 1,
    }
}

/// Runs `iiswsgi run`: resolves `raw`, then supervises (`--processes N`) or serves until
/// shutdown. `Ok` once the server or the supervisor stopped normally.
pub fn run(raw: RawOptions) -> Result<(), RunFailure> {
    let resolved = raw.resolve()?;
    if let Some(workers) = &resolved.workers {
        // `None`: IIS or Windows, one process, as the log says.
        if supervisor::supervise(&resolved.server, workers)?.is_some() {
            return Ok(());
        }
    }
    let threads_flag = resolved.threads_flag;
    match resolved.serve {
        Serve::Diagnostic(mode) => {
            server::run(resolved.server, |info| {
                note_threads(info, threads_flag);
                Ok(Diagnostic::new(mode, info))
            })?;
            Ok(())
        }
        Serve::Wsgi(raw) => wsgi::serve(resolved.server, raw, threads_flag),
    }
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

    use super::{RunFailure, note_threads};
    use crate::runtime::options::RawWsgi;
    use crate::runtime::server::{self, RunOptions};
    use crate::runtime::transport::Kind;
    use crate::runtime::wsgi::{self, Mode, Runtime, ServerLog};

    /// Resolves the application (reading the manifest), then starts Python inside the
    /// server's application factory (on the main thread, after the log and the transport are
    /// set up), serves, and finalises Python on the same thread.
    pub(super) fn serve(
        mut options: RunOptions,
        raw: RawWsgi,
        threads_flag: Option<usize>,
    ) -> Result<(), RunFailure> {
        let plan = raw.resolve(&options, threads_flag, crate::venv::this_venv())?;
        // SAFETY: `run` is still the only thread (the server, its threads and the log start
        // below); this may replace the process image to load the venv's own libpython.
        unsafe { wsgi::prepare_process(plan.options.venv.as_deref()) };
        options.threads = plan.threads;
        let threads = plan.threads;
        let chosen = plan.venv;
        let mut runtime: Option<Runtime> = None;
        let result = server::run(options, |info| {
            note_threads(info, threads_flag);
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
            crate::runtime::logging::flush();
        }
        result?;
        Ok(())
    }
}

/// Built without Python: only `--diagnostic` can serve.
#[cfg(not(feature = "python"))]
mod wsgi {
    use super::RunFailure;
    use crate::runtime::options::{RawWsgi, RunConfigError};
    use crate::runtime::server::RunOptions;

    pub(super) fn serve(
        _options: RunOptions,
        _raw: RawWsgi,
        _threads_flag: Option<usize>,
    ) -> Result<(), RunFailure> {
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
        assert_eq!(exit_code(&Err(supervisor)), 1);
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
