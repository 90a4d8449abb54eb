//! Graceful-shutdown triggers: SIGTERM/SIGINT on Unix, IIS's `_FCGI_SHUTDOWN_EVENT_` on
//! Windows. Each sets one flag and wakes every event loop (one per worker thread); each loop
//! stops accepting, finishes its current request and returns. The watcher threads never run
//! application code.
//!
//! A request that never returns must not keep the process alive (issue 16), so the first
//! trigger also arms a watchdog ([`ForcedExit`]): after the grace period
//! ([`super::RunOptions::graceful_timeout`], `--graceful-timeout`) the log is flushed, the
//! unix socket this process created is removed, and the process ends without waiting:
//!
//! - on a signal it dies by that signal, as it would have with no handler (a service manager
//!   sees "killed by SIGTERM", which systemd counts as a clean stop);
//! - on IIS's shutdown event it exits with status 0, the way IIS's own `TerminateProcess`
//!   would end it a little later (`iis-runtime.md` §5, §12 item 21); keep the grace period
//!   below the application's `signalBeforeTerminateSeconds` to get the log line.
//!
//! A second SIGTERM or SIGINT ends the process at once the same way, with one exception: when
//! exactly one of the first two comes from the parent process, it is one stop delivered twice
//! (systemd's default `KillMode=control-group` signals every process of the unit, and a
//! supervisor such as `iiswsgi run --processes` or lighttpd passes the stop on to its
//! children), so it counts once; a third signal still ends the process.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

/// Why shutdown was requested (first trigger wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Trigger {
    None = 0,
    Signal = 1,
    ShutdownEvent = 2,
    /// The application asked to stop ([`super::StopHandle`]), or a worker thread failed.
    App = 3,
    /// The workers together served `max_requests`.
    MaxRequests = 4,
    /// A watched file changed: finish the requests in flight, then restart (outside IIS, in
    /// place with the listening socket kept; under IIS by exiting).
    Reload = 5,
}

/// The flag the triggers set and the loops read: one per process, shared by the workers.
#[derive(Debug)]
pub(crate) struct Shutdown {
    trigger: AtomicU8,
    /// One per event loop.
    wakers: Vec<mio::Waker>,
}

impl Shutdown {
    pub(crate) fn new(wakers: Vec<mio::Waker>) -> Arc<Self> {
        Arc::new(Shutdown {
            trigger: AtomicU8::new(Trigger::None as u8),
            wakers,
        })
    }

    pub(crate) fn trigger(&self, why: Trigger) {
        let first = self.trigger.compare_exchange(
            Trigger::None as u8,
            why as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        // A stop request during a reload's drain must not be lost to the restart.
        if first == Err(Trigger::Reload as u8)
            && matches!(why, Trigger::Signal | Trigger::ShutdownEvent)
        {
            let _ = self.trigger.compare_exchange(
                Trigger::Reload as u8,
                why as u8,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
        }
        for waker in &self.wakers {
            let _ = waker.wake();
        }
    }

    pub(crate) fn requested(&self) -> Option<Trigger> {
        match self.trigger.load(Ordering::SeqCst) {
            1 => Some(Trigger::Signal),
            2 => Some(Trigger::ShutdownEvent),
            3 => Some(Trigger::App),
            4 => Some(Trigger::MaxRequests),
            5 => Some(Trigger::Reload),
            _ => None,
        }
    }
}

/// How the process ends when it stops waiting for the request in flight.
#[derive(Debug, Clone)]
pub(crate) struct ForcedExit {
    /// The grace period after the first trigger.
    pub grace: Duration,
    /// The unix socket file this process created, removed before exiting.
    pub socket: Option<PathBuf>,
}

/// How [`ForcedExit::now`] ends the process.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Die by this signal (its default action).
    #[cfg(unix)]
    Signal(i32),
    /// Exit with this status at once (IIS's shutdown event: 0).
    #[cfg(windows)]
    Status(u32),
}

impl ForcedExit {
    /// Starts the watchdog: after the grace period, [`ForcedExit::now`]. The process exits
    /// on its own before that when the requests in flight finish.
    fn arm(self: &Arc<Self>, ending: Ending, why: &'static str) {
        let exit = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("iiswsgi-grace".into())
            .spawn(move || {
                std::thread::sleep(exit.grace);
                log::warn!(
                    "{why}: requests still running after --graceful-timeout ({} s); exiting \
                     without them",
                    exit.grace.as_secs_f32()
                );
                exit.now(ending);
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the graceful-timeout watchdog ({e}): no time limit");
        }
    }

    /// Flushes the log, removes the socket file, and ends the process as `ending` says.
    fn now(&self, ending: Ending) -> ! {
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        crate::runtime::logging::flush();
        match ending {
            #[cfg(unix)]
            Ending::Signal(sig) => {
                // Restores the default action and raises the signal: the process dies by it.
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig)
            }
            #[cfg(windows)]
            Ending::Status(code) => crate::runtime::shutdown::terminate_self(code),
        }
    }
}

/// Installs the platform's triggers and, with them, the graceful-timeout watchdog and the
/// second-signal rule. Failures are logged, never fatal: the process still shuts down on
/// transport EOF.
pub(crate) fn install(shutdown: &Arc<Shutdown>, exit: ForcedExit) {
    let exit = Arc::new(exit);
    #[cfg(unix)]
    unix(shutdown, exit);
    #[cfg(windows)]
    windows(shutdown, exit);
}

/// SIGTERM and SIGINT held pending on the thread that made this (and on every thread it starts
/// meanwhile) until it is dropped, which delivers a held signal to the handler installed by
/// then. Made before the socket is bound and dropped once the handlers exist ([`install`], or
/// the supervisor's signal thread): between the socket appearing and the handlers, a stop
/// signal would otherwise end the process with its default action, leaving the socket file
/// behind (a supervisor or test that stops the server as soon as its socket exists saw
/// "killed by SIGTERM" about once in 15 runs). Every early return drops it too. Nothing is
/// held on Windows, where a stop is IIS's shutdown event or the console's Ctrl-C handler.
#[must_use = "dropping it releases the signals at once"]
pub(crate) struct HeldStopSignals {
    /// The mask is the thread's: the guard stays on the thread that made it.
    _this_thread: std::marker::PhantomData<*const ()>,
}

impl HeldStopSignals {
    pub(crate) fn hold() -> HeldStopSignals {
        #[cfg(unix)]
        stop_signal_mask(libc::SIG_BLOCK);
        HeldStopSignals {
            _this_thread: std::marker::PhantomData,
        }
    }
}

impl Drop for HeldStopSignals {
    fn drop(&mut self) {
        #[cfg(unix)]
        stop_signal_mask(libc::SIG_UNBLOCK);
    }
}

#[cfg(unix)]
fn stop_signal_mask(how: libc::c_int) {
    // SAFETY: `set` is initialised by sigemptyset before any other use; pthread_sigmask only
    // reads it and changes this thread's mask, with no old mask requested.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
        libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
        libc::pthread_sigmask(how, set.as_ptr(), std::ptr::null_mut());
    }
}

/// Whether a second stop signal is the first one delivered twice: exactly one of the two
/// was sent by the parent process (`None`: the kernel or an unknown sender).
#[cfg(any(unix, test))]
fn relayed(first: Option<i32>, second: Option<i32>, parent: Option<i32>) -> bool {
    let from_parent = |sender: Option<i32>| sender.is_some() && sender == parent;
    from_parent(first) != from_parent(second)
}

#[cfg(unix)]
fn unix(shutdown: &Arc<Shutdown>, exit: Arc<ForcedExit>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::SignalsInfo;
    use signal_hook::iterator::exfiltrator::WithOrigin;

    let mut signals = match SignalsInfo::<WithOrigin>::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("cannot install SIGTERM/SIGINT handlers ({e}); they will kill the process");
            return;
        }
    };
    let shutdown = Arc::clone(shutdown);
    let spawned = std::thread::Builder::new()
        .name("iiswsgi-signals".into())
        .spawn(move || {
            let mut first: Option<Option<i32>> = None;
            let mut relay_seen = false;
            for origin in signals.forever() {
                let name = if origin.signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                let sender = origin.process.map(|p| p.pid);
                let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
                match first {
                    None => {
                        log::info!(
                            "{name}: finishing the current request, then exiting (within \
                             --graceful-timeout {} s; a second SIGTERM or SIGINT exits at once)",
                            exit.grace.as_secs_f32()
                        );
                        first = Some(sender);
                        shutdown.trigger(Trigger::Signal);
                        exit.arm(Ending::Signal(origin.signal), name);
                    }
                    Some(earlier) if !relay_seen && relayed(earlier, sender, parent) => {
                        relay_seen = true;
                        log::info!(
                            "{name} again, one of the two from the parent process: the same \
                             stop passed on, still finishing (a further signal exits at once)"
                        );
                    }
                    Some(_) => {
                        log::warn!("{name} again: exiting now, without the requests still running");
                        exit.now(Ending::Signal(origin.signal));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the signal thread: {e}");
    }
}

#[cfg(windows)]
fn windows(shutdown: &Arc<Shutdown>, exit: Arc<ForcedExit>) {
    use crate::runtime::shutdown::{Watch, watch};

    let s = Arc::clone(shutdown);
    let on_event = move || {
        s.trigger(Trigger::ShutdownEvent);
        exit.arm(Ending::Status(0), "IIS's shutdown event");
    };
    match watch(on_event) {
        Ok(Watch::NotConfigured) => {
            log::debug!("no _FCGI_SHUTDOWN_EVENT_ (signalBeforeTerminateSeconds is 0)")
        }
        Ok(Watch::Watching { handle }) => {
            log::info!("watching IIS's shutdown event (handle {handle})")
        }
        Err(e) => log::warn!("{e}; graceful shutdown relies on pipe EOF"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_trigger_wins_but_a_stop_overrides_a_reload() {
        let s = Shutdown::new(Vec::new());
        s.trigger(Trigger::Reload);
        s.trigger(Trigger::App);
        assert_eq!(s.requested(), Some(Trigger::Reload));
        s.trigger(Trigger::Signal);
        assert_eq!(
            s.requested(),
            Some(Trigger::Signal),
            "SIGTERM during the drain"
        );
        s.trigger(Trigger::Reload);
        assert_eq!(s.requested(), Some(Trigger::Signal));
    }

    #[test]
    fn a_second_signal_from_the_same_kind_of_sender_is_not_a_relay() {
        let parent = Some(100);
        assert!(
            !relayed(Some(100), Some(100), parent),
            "`kill` twice from the shell"
        );
        assert!(!relayed(None, None, parent), "Ctrl-C twice (the kernel)");
        assert!(!relayed(Some(7), Some(8), parent), "two other processes");
    }

    #[test]
    fn a_signal_pair_with_exactly_one_from_the_parent_is_a_relay_in_either_order() {
        let parent = Some(100);
        assert!(
            relayed(Some(1), Some(100), parent),
            "systemd, then the supervisor"
        );
        assert!(
            relayed(Some(100), Some(1), parent),
            "the supervisor, then systemd"
        );
        assert!(
            relayed(None, Some(100), parent),
            "Ctrl-C, then the supervisor"
        );
    }

    #[test]
    fn without_a_known_parent_nothing_is_a_relay() {
        assert!(!relayed(Some(1), None, None));
        assert!(!relayed(None, None, None));
    }
}
