//! `iiswsgi run --processes N`: a supervisor that owns the listening socket and keeps N worker
//! processes serving it, so CPU-bound apps scale past one GIL behind nginx, Apache or HAProxy.
//!
//! The supervisor never starts Python and never forks a process that has (`wsgi-embedding.md`
//! §5.2): it binds `--listen` (or takes over the listening socket on its fd 0), then starts
//! each worker by executing this binary again with the same arguments minus `--processes`,
//! `--listen` and `--socket-mode`, the socket as the worker's fd 0 (a worker keeps
//! `--graceful-timeout`: it bounds its own shutdown too, `super::signals`). A worker is thus an
//! ordinary `iiswsgi run` started by lighttpd `bin-path` or spawn-fcgi; the kernel spreads
//! connections over the workers' accept loops. Workers write to the same log file (one `write`
//! per record, `crate::runtime::logging`).
//!
//! Supervision:
//! - a worker that exits 0 (`--max-requests` reached, SIGTERM sent to it alone) is replaced at
//!   once: that is how recycling works here (only a run of such exits right after start is
//!   slowed down like a crash loop). A reload (`--reload`) is no exit: the worker re-executes
//!   itself in place (`crate::runtime::reexec`), same pid, and the supervisor sees nothing;
//! - a worker that fails is replaced at once if it had run at least [`QUICK_DEATH`], else after
//!   an exponential backoff (100 ms doubling, capped at [`MAX_BACKOFF`]), logged. An app that
//!   fails to import exits 2 (below), so other quick deaths mean a crash;
//! - a worker that exits with status 2 (a usage or configuration error, e.g. a mismatched venv)
//!   before any worker has ever run [`QUICK_DEATH`] stops the supervisor with an error instead
//!   of looping: the configuration needs fixing, and a service manager should see a failure;
//! - SIGTERM or SIGINT: SIGTERM to every worker (each finishes its request in flight), wait
//!   up to the grace period, SIGKILL stragglers, remove the socket file the supervisor created,
//!   exit 0;
//! - SIGHUP: rolling restart: start N fresh workers, SIGTERM the old ones (they finish their
//!   requests); the socket never stops accepting.
//! - On Linux every worker gets SIGTERM if the supervisor dies (`PR_SET_PDEATHSIG`), so a
//!   SIGKILLed supervisor leaves no orphans holding the socket.
//!
//! Not supervised (one process serves, with a warning in the log): IIS's named pipe or any
//! connected stream on fd 0 (IIS runs more processes itself: `maxInstances`), and Windows.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::time::Duration;

use super::options::RunOptions;
use crate::runtime::transport::TransportError;

/// How long workers may take to finish after SIGTERM before they get SIGKILL, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// A worker that fails sooner than this after its start counts as a quick death (backoff).
pub const QUICK_DEATH: Duration = Duration::from_secs(1);
/// The longest backoff between restarts of a worker that keeps dying quickly.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Clean exits within [`QUICK_DEATH`] in a row after which even those are delayed.
#[cfg(unix)]
const CLEAN_EXITS_BEFORE_BACKOFF: u32 = 5;
/// The first backoff delay; it doubles with each further quick death in a row.
#[cfg(unix)]
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The worker processes to run.
#[derive(Debug, Clone)]
pub struct Workers {
    /// How many (≥ 2 to supervise; 1 means no supervisor).
    pub processes: u32,
    /// SIGTERM → SIGKILL grace period at shutdown and restart.
    pub grace: Duration,
    /// A worker's arguments (everything after the program name), from [`worker_args`].
    pub args: Vec<OsString>,
}

/// Options the supervisor consumes and its workers must not see: the worker count and the
/// address the supervisor binds, with its mode (workers find the socket on fd 0).
const SUPERVISOR_ONLY: [&str; 3] = ["--processes", "--listen", "--socket-mode"];

/// A worker's command line: this process's arguments without the program name and without
/// `--processes`, `--listen`, `--socket-mode` (as `--opt VALUE` or `--opt=VALUE`).
/// Everything after a `--` is kept as is.
pub fn worker_args(argv: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut it = argv.into_iter().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(it);
            break;
        }
        let text = arg.to_string_lossy();
        if SUPERVISOR_ONLY.contains(&text.as_ref()) {
            it.next(); // its value
            continue;
        }
        if SUPERVISOR_ONLY.iter().any(|o| {
            text.strip_prefix(o)
                .is_some_and(|rest| rest.starts_with('='))
        }) {
            continue;
        }
        out.push(arg);
    }
    out
}

/// Why the supervisor stopped normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorStop {
    /// SIGTERM or SIGINT.
    Signal,
}

/// What a supervised run did.
#[derive(Debug, Clone)]
pub struct SupervisorReport {
    /// Worker processes started, replacements included.
    pub started: u64,
    /// Why it stopped.
    pub reason: SupervisorStop,
}

/// Why the supervisor could not serve.
#[derive(Debug)]
pub enum SupervisorError {
    /// No listening socket.
    Transport(TransportError),
    /// This binary could not be located or started.
    Spawn(io::Error),
    /// The signal handlers could not be installed.
    Signals(io::Error),
    /// A worker exited with a usage or configuration error before any worker came up.
    WorkersCannotStart {
        /// The worker's exit status, as the OS describes it.
        status: String,
    },
}

impl fmt::Display for SupervisorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorError::Transport(_) => f.write_str("no FastCGI transport"),
            SupervisorError::Spawn(_) => f.write_str("cannot start worker processes"),
            SupervisorError::Signals(_) => f.write_str("cannot install the signal handlers"),
            SupervisorError::WorkersCannotStart { status } => write!(
                f,
                "the worker processes cannot start ({status}: a usage or configuration error, \
                 reported on stderr and in the log); fix it and start again"
            ),
        }
    }
}

impl std::error::Error for SupervisorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SupervisorError::Transport(e) => Some(e),
            SupervisorError::Spawn(e) | SupervisorError::Signals(e) => Some(e),
            SupervisorError::WorkersCannotStart { .. } => None,
        }
    }
}

/// Runs the supervisor: opens the log, opens the shared socket, starts `workers.processes`
/// workers and keeps them running until SIGTERM/SIGINT.
///
/// `Ok(None)`: supervising does not apply here (fd 0 is IIS's connection, or Windows); a
/// warning was logged and the caller serves as one process, as without `--processes`.
pub fn supervise(
    options: &RunOptions,
    workers: &Workers,
) -> Result<Option<SupervisorReport>, SupervisorError> {
    crate::runtime::logging::init(&options.log);
    #[cfg(unix)]
    return unix::supervise(options, workers);
    #[cfg(not(unix))]
    {
        log::warn!(
            "--processes {} ignored: worker processes are not supported on this platform; \
             serving as one process (under IIS, raise the FastCGI application's maxInstances \
             to run several)",
            workers.processes
        );
        crate::runtime::logging::flush();
        Ok(None)
    }
}

/// The delay before restarting a worker after `quick` quick deaths in a row (≥ 1).
#[cfg(unix)]
fn backoff(quick: u32) -> Duration {
    let doublings = quick.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[cfg(unix)]
mod unix {
    use std::path::PathBuf;
    use std::process::{Child, Command, ExitStatus, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use rustix::process::{Pid, Signal};

    use super::{
        CLEAN_EXITS_BEFORE_BACKOFF, QUICK_DEATH, RunOptions, SupervisorError, SupervisorReport,
        SupervisorStop, Workers, backoff,
    };
    use crate::runtime::server::signals::HeldStopSignals;
    use crate::runtime::transport::{self, SharedListener};

    /// What the signal thread tells the loop.
    enum Note {
        Stop(&'static str),
        Restart,
        Child,
    }

    /// One worker position: its process, or when to start the next one.
    struct Slot {
        child: Option<Child>,
        started: Instant,
        /// Quick deaths in a row.
        quick: u32,
        /// When to start a replacement (`None` while running).
        due: Option<Instant>,
    }

    impl Slot {
        /// `child` now runs in this slot, started at `now`.
        fn run(&mut self, child: Child, now: Instant) {
            self.child = Some(child);
            self.started = now;
            self.due = None;
        }
    }

    struct Supervisor<'a> {
        workers: &'a Workers,
        exe: PathBuf,
        listener: SharedListener,
        slots: Vec<Slot>,
        /// Workers replaced by a SIGHUP restart, with their SIGKILL deadline.
        retiring: Vec<(Child, Instant)>,
        started: u64,
        /// Whether any worker has ever run for [`QUICK_DEATH`].
        ever_up: bool,
        /// A worker reported a configuration error before any came up.
        fatal: Option<String>,
    }

    pub(super) fn supervise(
        options: &RunOptions,
        workers: &Workers,
    ) -> Result<Option<SupervisorReport>, SupervisorError> {
        log::info!(
            "iiswsgi {} supervisor starting (pid {}): {} worker processes",
            crate::VERSION,
            std::process::id(),
            workers.processes
        );
        // Stop signals wait (pending) until the signal thread's handlers exist (`run`).
        let held = HeldStopSignals::hold();
        let listener = match transport::open_shared(options.listen.as_ref(), options.socket_mode) {
            Ok(Some(l)) => l,
            Ok(None) => {
                log::warn!(
                    "--processes {} ignored: fd 0 is one connected stream (IIS's named pipe), \
                     which only one process can serve; serving as one process. IIS runs \
                     several processes itself: raise the FastCGI application's maxInstances",
                    workers.processes
                );
                return Ok(None);
            }
            Err(e) => {
                log::error!("{e}");
                crate::runtime::logging::flush();
                return Err(SupervisorError::Transport(e));
            }
        };
        log::info!(
            "transport: {} (shared by the workers)",
            listener.description
        );
        let result = std::env::current_exe()
            .map_err(SupervisorError::Spawn)
            .and_then(|exe| {
                let mut s = Supervisor {
                    workers,
                    exe,
                    listener,
                    slots: Vec::new(),
                    retiring: Vec::new(),
                    started: 0,
                    ever_up: false,
                    fatal: None,
                };
                let result = s.run(held);
                s.listener.cleanup();
                result
            });
        match &result {
            Ok(r) => log::info!(
                "supervisor exiting after starting {} worker(s): all workers stopped",
                r.started
            ),
            Err(e) => log::error!("supervisor: {e}"),
        }
        crate::runtime::logging::flush();
        result.map(Some)
    }

    fn signal_thread() -> Result<mpsc::Receiver<Note>, SupervisorError> {
        use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGCHLD])
            .map_err(SupervisorError::Signals)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("iiswsgi-supervisor-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    let note = match sig {
                        SIGTERM => Note::Stop("SIGTERM"),
                        SIGINT => Note::Stop("SIGINT"),
                        SIGHUP => Note::Restart,
                        _ => Note::Child,
                    };
                    if tx.send(note).is_err() {
                        return;
                    }
                }
            })
            .map_err(SupervisorError::Signals)?;
        Ok(rx)
    }

    fn send(child: &Child, signal: Signal) {
        if let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) {
            // ESRCH: it exited already and waits to be reaped.
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    fn describe(status: ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => {
                let name = Signal::from_named_raw(sig).map_or_else(
                    || format!("signal {sig}"),
                    |s| format!("signal {sig} ({s:?})"),
                );
                format!("was killed by {name}")
            }
            _ => format!("ended ({status})"),
        }
    }

    impl Supervisor<'_> {
        fn run(&mut self, held: HeldStopSignals) -> Result<SupervisorReport, SupervisorError> {
            let notes = signal_thread()?;
            drop(held);
            let now = Instant::now();
            for n in 0..self.workers.processes as usize {
                self.slots.push(Slot {
                    child: None,
                    started: now,
                    quick: 0,
                    due: None,
                });
                // The first generation must start: a binary that cannot be executed is fatal.
                let child = self.spawn(n).map_err(SupervisorError::Spawn)?;
                self.slots[n].child = Some(child);
            }
            let mut deadline: Option<Instant> = None;
            let mut note: Option<Note> = None;
            loop {
                // Signals before exits: Ctrl-C reaches the workers too, and their clean exits
                // must not be taken for reloads and replaced.
                while let Some(n) = note.take().or_else(|| notes.try_recv().ok()) {
                    self.on_note(n, &mut deadline);
                }
                let now = Instant::now();
                self.reap(deadline.is_none(), now);
                if deadline.is_none() {
                    if let Some(status) = self.fatal.clone() {
                        log::error!(
                            "a worker {status} before any worker came up (a usage or \
                             configuration error; see the worker's message on stderr and \
                             above): stopping"
                        );
                        deadline = Some(self.stop_all(now));
                        continue;
                    }
                    self.start_due(now);
                }
                if let Some(at) = deadline {
                    if self.running() == 0 {
                        break;
                    }
                    if now >= at {
                        self.kill_all();
                        break;
                    }
                }
                let wake = self
                    .slots
                    .iter()
                    .filter_map(|s| s.due)
                    .chain(deadline)
                    .chain(self.retiring.iter().map(|(_, at)| *at))
                    .min();
                // SIGCHLD wakes the loop; the 1 s tick is only a backstop.
                let timeout = wake
                    .map_or(Duration::from_secs(1), |w| w.saturating_duration_since(now))
                    .min(Duration::from_secs(1));
                match notes.recv_timeout(timeout) {
                    Ok(n) => note = Some(n),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    // No signal thread any more: poll.
                    Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
                }
            }
            if let Some(status) = self.fatal.take() {
                return Err(SupervisorError::WorkersCannotStart { status });
            }
            Ok(SupervisorReport {
                started: self.started,
                reason: SupervisorStop::Signal,
            })
        }

        /// Acts on a signal: stop (once), restart (unless stopping); SIGCHLD only wakes.
        fn on_note(&mut self, note: Note, deadline: &mut Option<Instant>) {
            if deadline.is_some() {
                return;
            }
            match note {
                Note::Stop(name) => {
                    log::info!(
                        "{name}: stopping {} worker(s) (SIGTERM; they finish their current \
                         request, SIGKILL after {:?})",
                        self.running(),
                        self.workers.grace
                    );
                    *deadline = Some(self.stop_all(Instant::now()));
                }
                Note::Restart => self.restart_all(),
                Note::Child => {}
            }
        }

        /// Starts worker `n` (0-based): this binary, the worker arguments, the socket on fd 0.
        fn spawn(&mut self, n: usize) -> std::io::Result<Child> {
            let mut cmd = Command::new(&self.exe);
            cmd.args(&self.workers.args)
                .stdin(Stdio::from(self.listener.for_worker()?));
            #[cfg(target_os = "linux")]
            {
                use std::os::unix::process::CommandExt;
                let supervisor = rustix::process::getpid();
                // SAFETY: the closure runs between fork and exec and only makes two system
                // calls (prctl, getppid); it allocates nothing and takes no lock.
                unsafe {
                    cmd.pre_exec(move || {
                        rustix::process::set_parent_process_death_signal(Some(Signal::TERM))?;
                        // The supervisor died before prctl: do not start an orphan.
                        if rustix::process::getppid() != Some(supervisor) {
                            return Err(std::io::Error::other("the supervisor is gone"));
                        }
                        Ok(())
                    });
                }
            }
            let child = cmd.spawn()?;
            self.started += 1;
            log::info!("worker {} started (pid {})", n + 1, child.id());
            Ok(child)
        }

        fn running(&self) -> usize {
            self.slots.iter().filter(|s| s.child.is_some()).count() + self.retiring.len()
        }

        /// Collects exited workers; schedules replacements unless `replace` is false.
        fn reap(&mut self, replace: bool, now: Instant) {
            self.retiring
                .retain_mut(|(child, kill_at)| match child.try_wait() {
                    Ok(Some(status)) => {
                        log::info!("old worker (pid {}) {}", child.id(), describe(status));
                        false
                    }
                    Ok(None) if now >= *kill_at => {
                        log::warn!(
                            "old worker (pid {}) still busy after the grace period: SIGKILL",
                            child.id()
                        );
                        send(child, Signal::KILL);
                        let _ = child.wait();
                        false
                    }
                    Ok(None) => true,
                    Err(_) => false,
                });
            for n in 0..self.slots.len() {
                let slot = &mut self.slots[n];
                let Some(child) = slot.child.as_mut() else {
                    continue;
                };
                let status = match child.try_wait() {
                    Ok(Some(status)) => status,
                    Ok(None) => {
                        if now.duration_since(slot.started) >= QUICK_DEATH {
                            self.ever_up = true;
                            slot.quick = 0;
                        }
                        continue;
                    }
                    Err(e) => {
                        log::warn!("worker {} (pid {}): cannot wait: {e}", n + 1, child.id());
                        continue;
                    }
                };
                let pid = child.id();
                slot.child = None;
                let uptime = now.duration_since(slot.started);
                let quick = uptime < QUICK_DEATH;
                if !quick {
                    self.ever_up = true;
                }
                let what = describe(status);
                if !replace {
                    log::info!("worker {} (pid {pid}) {what}", n + 1);
                    continue;
                }
                if status.code() == Some(2) && quick && !self.ever_up {
                    self.fatal = Some(what);
                    continue;
                }
                if status.success() {
                    // Reload, --max-requests, or a SIGTERM sent to this worker alone: at once,
                    // unless clean exits right after start keep coming (a runaway loop).
                    slot.quick = if quick { slot.quick + 1 } else { 0 };
                    let delay = match slot.quick {
                        q if q >= CLEAN_EXITS_BEFORE_BACKOFF => {
                            backoff(q + 1 - CLEAN_EXITS_BEFORE_BACKOFF)
                        }
                        _ => Duration::ZERO,
                    };
                    log::info!(
                        "worker {} (pid {pid}) {what} after {uptime:.1?}: starting a new one{}",
                        n + 1,
                        if delay.is_zero() {
                            String::new()
                        } else {
                            format!(" in {delay:?} (it keeps exiting right after starting)")
                        }
                    );
                    slot.due = Some(now + delay);
                } else if quick {
                    slot.quick += 1;
                    let delay = backoff(slot.quick);
                    log::warn!(
                        "worker {} (pid {pid}) {what} {uptime:.1?} after starting ({} quick \
                         death(s) in a row): starting a new one in {delay:?}",
                        n + 1,
                        slot.quick
                    );
                    slot.due = Some(now + delay);
                } else {
                    slot.quick = 0;
                    log::warn!(
                        "worker {} (pid {pid}) {what} after {uptime:.1?}: starting a new one",
                        n + 1
                    );
                    slot.due = Some(now);
                }
            }
        }

        /// Starts the workers whose replacement is due.
        fn start_due(&mut self, now: Instant) {
            for n in 0..self.slots.len() {
                if self.slots[n].due.is_none_or(|due| due > now) {
                    continue;
                }
                match self.spawn(n) {
                    Ok(child) => self.slots[n].run(child, now),
                    Err(e) => {
                        let slot = &mut self.slots[n];
                        slot.quick += 1;
                        let delay = backoff(slot.quick);
                        log::error!(
                            "cannot start worker {} ({}): {e}; retrying in {delay:?}",
                            n + 1,
                            self.exe.display()
                        );
                        slot.due = Some(now + delay);
                    }
                }
            }
        }

        /// SIGTERM to every worker; returns the SIGKILL deadline.
        fn stop_all(&mut self, now: Instant) -> Instant {
            for slot in &mut self.slots {
                slot.due = None;
                if let Some(child) = &slot.child {
                    send(child, Signal::TERM);
                }
            }
            for (child, _) in &self.retiring {
                send(child, Signal::TERM);
            }
            now + self.workers.grace
        }

        /// SIGKILL and reap whatever still runs after the grace period.
        fn kill_all(&mut self) {
            let slots = self.slots.iter_mut().filter_map(|s| s.child.take());
            let retiring = self.retiring.drain(..).map(|(c, _)| c);
            for mut child in slots.chain(retiring).collect::<Vec<_>>() {
                log::warn!(
                    "worker (pid {}) still busy after the grace period: SIGKILL",
                    child.id()
                );
                send(&child, Signal::KILL);
                let _ = child.wait();
            }
        }

        /// SIGHUP: fresh workers first, then SIGTERM to the old ones, so someone always accepts.
        fn restart_all(&mut self) {
            log::info!("SIGHUP: restarting the workers (new ones first, then SIGTERM to the old)");
            let now = Instant::now();
            for n in 0..self.slots.len() {
                let old = self.slots[n].child.take();
                match self.spawn(n) {
                    Ok(child) => {
                        let slot = &mut self.slots[n];
                        slot.run(child, now);
                        slot.quick = 0;
                        if let Some(old) = old {
                            send(&old, Signal::TERM);
                            self.retiring.push((old, now + self.workers.grace));
                        }
                    }
                    Err(e) => {
                        log::error!("SIGHUP: cannot start a new worker {}: {e}", n + 1);
                        self.slots[n].child = old;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn worker_args_drop_the_supervisor_options_in_both_forms() {
        let argv = args(&[
            "/usr/bin/iiswsgi",
            "run",
            "--processes",
            "4",
            "--listen=unix:/tmp/a.sock",
            "--diagnostic",
            "--socket-mode",
            "0660",
            "--graceful-timeout",
            "5",
            "--listen",
            "tcp:127.0.0.1:9000",
            "--processes=3",
            "--socket-mode=0600",
            "--log",
            "/tmp/x.log",
        ]);
        assert_eq!(
            worker_args(argv),
            args(&[
                "run",
                "--diagnostic",
                "--graceful-timeout",
                "5",
                "--log",
                "/tmp/x.log"
            ]),
            "the grace period bounds each worker's own shutdown too"
        );
    }

    #[test]
    fn worker_args_keep_lookalikes_and_everything_after_a_double_dash() {
        let argv = args(&[
            "iiswsgi",
            "run",
            "--processes-extra",
            "--app",
            "m:app",
            "--",
            "--listen",
            "x",
        ]);
        assert_eq!(
            worker_args(argv),
            args(&[
                "run",
                "--processes-extra",
                "--app",
                "m:app",
                "--",
                "--listen",
                "x"
            ])
        );
    }

    #[cfg(unix)]
    #[test]
    fn backoff_doubles_from_100ms_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
