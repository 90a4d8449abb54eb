//! How a run starts its event loops: [`run`] opens the log and the transport, installs the
//! shutdown triggers and makes the application, then drives one loop on the calling thread
//! or, with `--threads N` on a listening socket, N loops on worker threads ([`serve_threads`]):
//! each with its own poller and its own handle on the listening socket, accepting for itself
//! (a connection stays with the loop that accepted it). The loop itself is `super::engine`.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use mio::Poll;

use super::Application;
use super::conn::WAKER;
use super::engine::{Setup, Workers, settle};
use super::options::RunOptions;
use super::report::{RunError, RunReport, ServerInfo, StopHandle, StopReason};
use super::signals::{self, ForcedExit, Shutdown, Trigger};
use crate::runtime::fastcgi;
use crate::runtime::logging;
use crate::runtime::transport::{self, Endpoint, Listener};

/// Runs `iiswsgi run`: opens the log (first, so every later failure is recorded), takes over
/// the transport, installs the shutdown triggers, creates the application with `make_app`
/// (after stdin points at the null device, before the first record is read), then serves until
/// shutdown. Returns after the current request has finished.
pub fn run<A, F>(options: RunOptions, make_app: F) -> Result<RunReport, RunError>
where
    A: Application,
    F: FnOnce(&ServerInfo) -> Result<A, Box<dyn std::error::Error + Send + Sync>>,
{
    // Stop signals wait (pending) until their handlers are installed in `serve`.
    let held = signals::HeldStopSignals::hold();
    let destination = logging::init(&options.log);
    log::info!(
        "iiswsgi {} starting (pid {}); log: {destination}",
        crate::VERSION,
        std::process::id()
    );
    let mut transport = match transport::open(options.listen.as_ref(), options.socket_mode) {
        Ok(t) => t,
        Err(e) => {
            log::error!("{e}");
            logging::flush();
            return Err(RunError::Transport(e));
        }
    };
    log::info!("transport: {}", transport.description);
    let info = ServerInfo {
        kind: transport.kind,
        transport: transport.description.clone(),
        log: destination,
        single_connection: transport.kind.is_single_connection(),
        stop: None,
    };
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut result = serve(&options, &mut transport, &info, make_app, held);
    #[cfg(unix)]
    if let Ok(report) = &mut result
        && report.reason == StopReason::Reload
        && !info.single_connection
    {
        // The listening socket (and its file) outlive this image: see `RunReport::handover`.
        report.handover = transport.handover();
    }
    transport.cleanup();
    match &result {
        #[cfg(unix)]
        Ok(report) if report.handover.is_some() => log::info!(
            "restarting in place after {} request(s): {}; the listening socket stays open",
            report.requests,
            report.reason
        ),
        Ok(report) => log::info!(
            "exiting after {} request(s): {}",
            report.requests,
            report.reason
        ),
        Err(e) => log::error!("{}", crate::error_chain(e, ": ")),
    }
    logging::flush();
    result
}

fn serve<A, F>(
    options: &RunOptions,
    transport: &mut transport::Transport,
    info: &ServerInfo,
    make_app: F,
    held: signals::HeldStopSignals,
) -> Result<RunReport, RunError>
where
    A: Application,
    F: FnOnce(&ServerInfo) -> Result<A, Box<dyn std::error::Error + Send + Sync>>,
{
    let single = info.single_connection;
    // IIS's single connection is served by one thread; a listener by `threads` loops.
    let workers = if single { 1 } else { options.threads.max(1) };
    let mut polls = Vec::with_capacity(workers);
    let mut wakers = Vec::with_capacity(workers);
    for _ in 0..workers {
        let poll = Poll::new().map_err(RunError::Poll)?;
        wakers.push(mio::Waker::new(poll.registry(), WAKER).map_err(RunError::Poll)?);
        polls.push(poll);
    }
    let shutdown = Shutdown::new(wakers);
    signals::install(
        &shutdown,
        ForcedExit {
            grace: options.graceful_timeout,
            socket: transport.created_socket().map(Path::to_path_buf),
        },
    );
    drop(held);

    let info = ServerInfo {
        stop: Some(StopHandle::new(Arc::clone(&shutdown))),
        ..info.clone()
    };
    let app = make_app(&info).map_err(RunError::App)?;

    let under_iis = crate::runtime::iis_env::get().started_by_iis();
    let mut codec_config = if single {
        fastcgi::Config::iis()
    } else {
        // The cap is per loop: the process holds up to that many per worker thread.
        let workers = u32::try_from(workers).unwrap_or(u32::MAX);
        fastcgi::Config::generic(options.max_conns.saturating_mul(workers))
    };
    if under_iis {
        // IIS fails the request on a type-11 record (iis-runtime §4.2), whatever the transport.
        codec_config.unknown_type_replies = false;
    }
    let endpoint = transport
        .take_endpoint()
        .ok_or_else(|| RunError::Poll(io::Error::other("the transport was already served")))?;
    let setup = Setup {
        app: &app,
        opts: options,
        shutdown: &shutdown,
        single,
        iis: single || under_iis,
        codec_config,
        transport_name: info.kind.name(),
    };
    match endpoint {
        Endpoint::Listener(l) if workers > 1 => serve_threads(&setup, polls, l),
        endpoint => {
            let poll = polls
                .pop()
                .ok_or_else(|| RunError::Poll(io::Error::other("no poller")))?;
            let mut engine = setup.engine(poll, None);
            match endpoint {
                Endpoint::Connection(stream) => {
                    engine
                        .add_conn(stream, "the IIS connection on stdin".into())
                        .map_err(RunError::Poll)?;
                }
                Endpoint::Listener(l) => engine.listen(l).map_err(RunError::Poll)?,
            }
            let reason = settle(engine.serve()?, &shutdown);
            Ok(RunReport {
                requests: engine.requests,
                reason,
                waits: engine.waits,
                #[cfg(unix)]
                handover: None,
            })
        }
    }
}

/// `--threads N`: N event loops, one per worker thread, each with its own poller and its own
/// handle on the listening socket, accepting for itself (a connection stays with the loop that
/// accepted it). The calling thread only waits; the shutdown flag, the request count and the
/// log's request ids are process-wide.
pub(super) fn serve_threads<A: Application>(
    setup: &Setup<'_, A>,
    polls: Vec<Poll>,
    listener: Listener,
) -> Result<RunReport, RunError> {
    let count = polls.len();
    let mut listeners = Vec::with_capacity(count);
    for _ in 1..count {
        listeners.push(listener.try_clone().map_err(RunError::Poll)?);
    }
    listeners.push(listener);
    let started = AtomicU64::new(0);
    let started = setup.opts.max_requests.map(|_| &started);
    log::info!("serving with {count} request threads");
    let results: Vec<Result<RunReport, RunError>> = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(count);
        for (i, (poll, listener)) in polls.into_iter().zip(listeners).enumerate() {
            let workers = Workers {
                started,
                ready_since: None,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("iiswsgi-worker-{}", i + 1))
                .spawn_scoped(scope, move || worker(setup, poll, listener, workers));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    log::error!("cannot start request thread {}: {e}", i + 1);
                    setup.shutdown.trigger(Trigger::App);
                    break;
                }
            }
        }
        let spawned = handles.len();
        let mut results: Vec<_> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(RunError::Poll(io::Error::other(
                        "a request thread panicked",
                    )))
                })
            })
            .collect();
        if spawned < count {
            results.push(Err(RunError::Poll(io::Error::other(
                "cannot start the request threads",
            ))));
        }
        results
    });
    let mut requests = 0;
    let mut waits = 0;
    let mut first = None;
    for r in results {
        let report = r?;
        requests += report.requests;
        waits += report.waits;
        first.get_or_insert(report.reason);
    }
    // The process-wide trigger says why all stopped; a loop's own reason otherwise.
    let reason = match setup.shutdown.requested() {
        Some(Trigger::Signal) => StopReason::Signal,
        Some(Trigger::ShutdownEvent) => StopReason::ShutdownEvent,
        Some(Trigger::MaxRequests) => StopReason::MaxRequests,
        Some(Trigger::Reload) => StopReason::Reload,
        Some(Trigger::App) => first.unwrap_or(StopReason::AppExit),
        _ => first.unwrap_or(StopReason::AppExit),
    };
    Ok(RunReport {
        requests,
        reason,
        waits,
        #[cfg(unix)]
        handover: None,
    })
}

/// One worker thread: its event loop, inside [`Application::run_worker`]. A failing loop
/// stops the others.
fn worker<'a, A: Application>(
    setup: &Setup<'a, A>,
    poll: Poll,
    listener: Listener,
    workers: Workers<'a>,
) -> Result<RunReport, RunError> {
    /// Stops the other workers if this one unwinds.
    struct StopOthers<'s>(&'s Shutdown);
    impl Drop for StopOthers<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.trigger(Trigger::App);
            }
        }
    }
    let _guard = StopOthers(setup.shutdown);
    let mut engine = setup.engine(poll, Some(workers));
    let mut listener = Some(listener);
    let mut result = None;
    setup.app.run_worker(&mut || {
        let Some(l) = listener.take() else {
            return; // `run_worker` must call `serve` once; a second call has nothing to do.
        };
        result = Some(
            engine
                .listen(l)
                .map_err(RunError::Poll)
                .and_then(|()| engine.serve()),
        );
    });
    let result = result.unwrap_or_else(|| {
        Err(RunError::Poll(io::Error::other(
            "the application did not run the request thread",
        )))
    });
    match result {
        Ok(reason) => Ok(RunReport {
            requests: engine.requests,
            reason,
            waits: engine.waits,
            #[cfg(unix)]
            handover: None,
        }),
        Err(e) => {
            setup.shutdown.trigger(Trigger::App);
            Err(e)
        }
    }
}
