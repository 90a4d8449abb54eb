//! Graceful-shutdown triggers: SIGTERM/SIGINT on Unix, IIS's `_FCGI_SHUTDOWN_EVENT_` on
//! Windows. Each sets one flag and wakes every event loop (one per worker thread); each loop
//! stops accepting, finishes its current request and returns. The watcher threads never run
//! application code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

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

/// Installs the platform's triggers. Failures are logged, never fatal: the process still
/// shuts down on transport EOF.
pub(crate) fn install(shutdown: &Arc<Shutdown>) {
    #[cfg(unix)]
    unix(shutdown);
    #[cfg(windows)]
    windows(shutdown);
}

#[cfg(unix)]
fn unix(shutdown: &Arc<Shutdown>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::iterator::Signals;

    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
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
            for sig in signals.forever() {
                let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
                log::info!("{name}: finishing the current request, then exiting");
                shutdown.trigger(Trigger::Signal);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the signal thread: {e}");
    }
}

#[cfg(windows)]
fn windows(shutdown: &Arc<Shutdown>) {
    use crate::runtime::shutdown::{Watch, watch};

    let s = Arc::clone(shutdown);
    match watch(move || s.trigger(Trigger::ShutdownEvent)) {
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
}
