//! Reload on change: watch the app's directory and ask the process to restart after the
//! requests in flight when a matching file changes (wsgi-embedding.md §5.6). Under IIS the
//! process exits and IIS starts a fresh one; elsewhere it re-executes itself in place with the
//! listening socket kept open (`crate::runtime::reexec`). Nothing here re-imports Python.
//!
//! The rule is wfastcgi's `WSGI_RESTART_FILE_REGEX`: default `.*((\.py)|(\.config))$`, matched
//! from the start of the path relative to the watched directory; an empty pattern disables the
//! watcher; a watcher overflow counts as a match. A change is acted on once the tree has been
//! quiet for [`QUIET`] (an editor's save or a checkout is a burst of events), at most
//! [`MAX_HOLD`] after it.
//!
//! What is never watched ([`ReloadRule::watches_dir`]): `__pycache__`, virtual environments
//! (the configured one, any folder holding a `pyvenv.cfg`, `.venv`, `venv`), the log folder
//! (`logs/`, and wherever the log file is), VCS and tool folders (`.git`, `node_modules`, …).
//! On Linux and other Unixes each remaining folder gets a watch of its own and folders that
//! appear are added as they come, so a project with a 3,000-folder `.venv` inside costs a few
//! dozen watches and Python writing `.pyc` files or the log growing raise no event at all.
//! (A recursive inotify watch would cover the venv too, and the events of one start-up
//! overflowed its queue, which reads as "something changed".) On Windows one recursive watch
//! of the root stays (one directory handle, as before), and events from those folders are
//! ignored. The watcher threads are pure Rust and never touch Python.

use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use regex::Regex;

use super::app::{ExitReason, ExitSignal};
use super::{LogSink, Record};
use log::Level;

/// wfastcgi's default `WSGI_RESTART_FILE_REGEX`.
pub const DEFAULT_PATTERN: &str = r".*((\.py)|(\.config))$";

/// Folder names never watched, wherever they are: bytecode caches, virtual environments by
/// their usual names, version control, tool caches, JavaScript dependencies.
const SKIPPED_NAMES: &[&str] = &[
    "__pycache__",
    ".venv",
    "venv",
    ".git",
    ".hg",
    ".svn",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
];

/// Which changed paths trigger a reload, and which folders are watched at all.
#[derive(Debug, Clone)]
pub struct ReloadRule {
    root: PathBuf,
    regex: Regex,
    exclude: Vec<PathBuf>,
}

impl ReloadRule {
    /// A rule for paths under `root`; `pattern` is anchored at the start like Python's
    /// `re.match`; nothing under an `exclude` folder (the venv, the log folder) is watched.
    /// `root/logs` is always excluded. Returns `Ok(None)` for an empty pattern (reload
    /// disabled).
    pub fn new(
        root: &Path,
        pattern: &str,
        mut exclude: Vec<PathBuf>,
    ) -> Result<Option<ReloadRule>, regex::Error> {
        if pattern.is_empty() {
            return Ok(None);
        }
        let regex = Regex::new(&format!("^(?:{pattern})"))?;
        // An exclusion holding the root itself (a log file next to the code) would hide
        // everything: only folders below the root are excluded.
        exclude.retain(|dir| !root.starts_with(dir));
        exclude.push(root.join("logs"));
        Ok(Some(ReloadRule {
            root: root.to_path_buf(),
            regex,
            exclude,
        }))
    }

    /// Whether the folder `dir` is walked and watched (module doc). The root always is.
    pub fn watches_dir(&self, dir: &Path) -> bool {
        if dir == self.root {
            return true;
        }
        let skipped_name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| SKIPPED_NAMES.contains(&n));
        !(skipped_name
            || self.exclude.iter().any(|e| dir.starts_with(e))
            || dir.join("pyvenv.cfg").is_file())
    }

    /// The path relative to the root if it should trigger a reload.
    pub fn matches(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let in_skipped = rel.parent().into_iter().flat_map(Path::components).any(|c| {
            matches!(c, Component::Normal(n) if n.to_str().is_some_and(|n| SKIPPED_NAMES.contains(&n)))
        });
        if in_skipped || self.exclude.iter().any(|dir| path.starts_with(dir)) {
            return None;
        }
        let rel = rel.to_string_lossy();
        self.regex.is_match(&rel).then(|| rel.into_owned())
    }

    /// Whether a watcher event should trigger a reload, and which path it names.
    fn triggered_by(&self, event: &Event) -> Option<String> {
        if event.need_rescan() {
            return Some("(watcher overflow: changes were lost)".to_owned());
        }
        if !matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
        ) {
            // Reads (Python opening modules) and other noise never reload.
            return None;
        }
        event
            .paths
            .iter()
            .find_map(|p| self.matches(p).or_else(|| self.matches_inside(p)))
    }

    /// A folder that appears (created, or moved in) may already hold files whose own events
    /// came before the watcher covered it: look inside.
    fn matches_inside(&self, path: &Path) -> Option<String> {
        if !path.is_dir() {
            return None;
        }
        self.folders(path)
            .into_iter()
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .find_map(|e| self.matches(&e.path()))
    }

    /// `top` and every folder below it that [`Self::watches_dir`] admits (16 levels at most).
    fn folders(&self, top: &Path) -> Vec<PathBuf> {
        if !self.watches_dir(top) {
            return Vec::new();
        }
        walkdir::WalkDir::new(top)
            .max_depth(16)
            .into_iter()
            .filter_entry(|e| e.file_type().is_dir() && self.watches_dir(e.path()))
            .flatten()
            .map(walkdir::DirEntry::into_path)
            .collect()
    }
}

/// A file the rule watches whose modification time is after `since`, if any: what changed
/// while a reload was under way (the old image's watcher had already fired, the new one did
/// not watch yet).
pub(super) fn changed_since(rule: &ReloadRule, since: std::time::SystemTime) -> Option<String> {
    rule.folders(&rule.root)
        .into_iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.is_file() && m.modified().is_ok_and(|t| t > since))
        })
        .find_map(|e| rule.matches(&e.path()))
}

/// A running watcher; dropping it stops the watch (and with it the event thread).
pub(super) struct Watcher {
    _inner: Arc<Mutex<notify::RecommendedWatcher>>,
    /// Folders watched at the start.
    pub(super) folders: usize,
}

/// Starts watching `rule`'s root (module doc for how).
pub(super) fn watch(
    rule: ReloadRule,
    signal: Arc<ExitSignal>,
    log: Arc<dyn LogSink>,
) -> notify::Result<Watcher> {
    let (tx, rx) = mpsc::channel();
    let inner = notify::recommended_watcher(move |event: notify::Result<Event>| {
        let _ = tx.send(event);
    })?;
    let inner = Arc::new(Mutex::new(inner));
    let folders = {
        let mut w = inner.lock().unwrap_or_else(PoisonError::into_inner);
        if cfg!(windows) {
            w.watch(&rule.root, RecursiveMode::Recursive)?;
            1
        } else {
            let mut folders = rule.folders(&rule.root).into_iter();
            // The root must be watched; a failure further down is logged and skipped.
            if let Some(root) = folders.next() {
                w.watch(&root, RecursiveMode::NonRecursive)?;
            }
            1 + folders.filter(|dir| add_watch(&mut w, dir, &*log)).count()
        }
    };
    let weak = Arc::downgrade(&inner);
    std::thread::Builder::new()
        .name("iiswsgi-reload".into())
        .spawn(move || events(&rule, &rx, &weak, &signal, &*log))
        .map_err(notify::Error::io)?;
    Ok(Watcher {
        _inner: inner,
        folders,
    })
}

/// Watches one folder (not its subfolders); logs and returns false when that fails (the
/// folder vanished, or the OS limit on watches is reached).
fn add_watch(w: &mut notify::RecommendedWatcher, dir: &Path, log: &dyn LogSink) -> bool {
    match w.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => true,
        Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
            let message = format!(
                "reload: cannot watch {}: the OS limit on watched folders is reached (raise \
                 fs.inotify.max_user_watches); changes there go unnoticed",
                dir.display()
            );
            log.log(&Record {
                level: Level::Warn,
                from_app: false,
                message: &message,
            });
            false
        }
        Err(_) => false,
    }
}

/// How long the watched tree must stay quiet after a matching change before the reload is
/// asked for: an editor saving (truncate, then write), `git checkout` or a deploy tool copying
/// several files raises a burst of events, and a reload decided at the first of them would
/// start the new image while the files are still half-written (one wasted start at best, a
/// `SyntaxError` and 503s at worst).
const QUIET: Duration = Duration::from_millis(150);

/// The longest a burst may hold the reload back: a tree that never goes quiet reloads anyway
/// this long after its first change (the next image then finds what changed since
/// [`changed_since`]).
const MAX_HOLD: Duration = Duration::from_secs(2);

/// The event thread: until the watcher is dropped, adds watches for folders that appear and,
/// once a matching change is followed by [`QUIET`], asks for the reload.
fn events(
    rule: &ReloadRule,
    rx: &mpsc::Receiver<notify::Result<Event>>,
    watcher: &Weak<Mutex<notify::RecommendedWatcher>>,
    signal: &ExitSignal,
    log: &dyn LogSink,
) {
    while let Ok(event) = rx.recv() {
        let path = match handle(rule, event, watcher, log) {
            Seen::Gone => return,
            Seen::Nothing => continue,
            Seen::Change(path) => path,
        };
        // A change that matters: let the burst it belongs to end before acting on it. Only
        // matching changes extend the hold (a log file next to the code grows all the time).
        let held_since = Instant::now();
        let mut last_change = held_since;
        loop {
            let quiet_left = QUIET.saturating_sub(last_change.elapsed());
            let hold_left = MAX_HOLD.saturating_sub(held_since.elapsed());
            let wait = quiet_left.min(hold_left);
            if wait.is_zero() {
                break;
            }
            match rx.recv_timeout(wait) {
                Ok(event) => match handle(rule, event, watcher, log) {
                    Seen::Gone => return,
                    Seen::Nothing => {}
                    Seen::Change(_) => last_change = Instant::now(),
                },
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        if signal.request(ExitReason::Reload(path.clone())) {
            log.log(&Record {
                level: Level::Info,
                from_app: false,
                message: &format!(
                    "reload: {path} changed; restarting once the requests in flight are done"
                ),
            });
        }
    }
}

/// What one event means to the event thread.
enum Seen {
    /// The watcher was dropped: the thread ends.
    Gone,
    /// Nothing the rule watches changed.
    Nothing,
    /// This path (relative to the root) changed.
    Change(String),
}

/// One event: watches a folder that appeared, logs a watcher error, says what changed.
fn handle(
    rule: &ReloadRule,
    event: notify::Result<Event>,
    watcher: &Weak<Mutex<notify::RecommendedWatcher>>,
    log: &dyn LogSink,
) -> Seen {
    let event = match event {
        Ok(event) => event,
        Err(err) => {
            log.log(&Record {
                level: Level::Warn,
                from_app: false,
                message: &format!("reload watcher error: {err}"),
            });
            return Seen::Nothing;
        }
    };
    if !cfg!(windows) && matches!(event.kind, EventKind::Create(_)) {
        // A new folder (or one moved in): watch it and what it holds.
        let Some(strong) = watcher.upgrade() else {
            return Seen::Gone;
        };
        let mut w = strong.lock().unwrap_or_else(PoisonError::into_inner);
        for dir in event.paths.iter().filter(|p| p.is_dir()) {
            for sub in rule.folders(dir) {
                add_watch(&mut w, &sub, log);
            }
        }
    }
    rule.triggered_by(&event)
        .map_or(Seen::Nothing, Seen::Change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str) -> ReloadRule {
        ReloadRule::new(
            Path::new("/srv/app"),
            pattern,
            vec![PathBuf::from("/srv/app/env-elsewhere")],
        )
        .unwrap()
        .unwrap()
    }

    #[test]
    fn default_pattern_matches_python_and_config_files() {
        let r = rule(DEFAULT_PATTERN);
        assert_eq!(
            r.matches(Path::new("/srv/app/app.py")).as_deref(),
            Some("app.py")
        );
        assert!(r.matches(Path::new("/srv/app/pkg/views.py")).is_some());
        assert!(r.matches(Path::new("/srv/app/web.config")).is_some());
        assert!(r.matches(Path::new("/srv/app/static/site.css")).is_none());
        assert!(r.matches(Path::new("/srv/app/app.pyc")).is_none());
    }

    #[test]
    fn pycache_venvs_logs_and_outside_paths_never_match() {
        let r = rule(DEFAULT_PATTERN);
        for path in [
            "/srv/app/__pycache__/app.py",
            "/srv/app/pkg/__pycache__/m.py",
            "/srv/app/.venv/lib/x.py",
            "/srv/app/venv/lib/x.py",
            "/srv/app/env-elsewhere/lib/x.py",
            "/srv/app/logs/x.py",
            "/srv/app/.git/hooks/x.py",
            "/elsewhere/app.py",
        ] {
            assert!(r.matches(Path::new(path)).is_none(), "{path}");
        }
    }

    #[test]
    fn the_walk_skips_venvs_by_name_or_by_pyvenv_cfg_logs_and_caches() {
        let root = tempfile::tempdir().unwrap();
        let r = ReloadRule::new(root.path(), DEFAULT_PATTERN, vec![])
            .unwrap()
            .unwrap();
        for dir in [
            "pkg/sub",
            "pkg/__pycache__",
            ".venv/lib/python3.11/site-packages/django/contrib",
            "myenv/lib/python3.11/site-packages/flask",
            "logs/old",
            ".git/objects/ab",
            "node_modules/x",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::write(root.path().join("myenv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let mut found: Vec<String> = r
            .folders(root.path())
            .iter()
            .map(|d| d.strip_prefix(root.path()).unwrap().display().to_string())
            .collect();
        found.sort();
        assert_eq!(found, ["", "pkg", "pkg/sub"]);
    }

    #[test]
    fn an_exclusion_that_holds_the_root_hides_nothing() {
        let r = ReloadRule::new(
            Path::new("/srv/app"),
            DEFAULT_PATTERN,
            vec![PathBuf::from("/srv/app"), PathBuf::from("/srv")],
        )
        .unwrap()
        .unwrap();
        assert!(r.matches(Path::new("/srv/app/app.py")).is_some());
        assert!(r.watches_dir(Path::new("/srv/app/pkg")));
    }

    #[test]
    fn pattern_is_anchored_at_the_start_like_re_match() {
        let r = rule(r"pkg/.*\.py$");
        assert!(r.matches(Path::new("/srv/app/pkg/a.py")).is_some());
        assert!(r.matches(Path::new("/srv/app/other/pkg/a.py")).is_none());
    }

    #[test]
    fn empty_pattern_disables_reload() {
        assert!(
            ReloadRule::new(Path::new("/srv"), "", vec![])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn invalid_pattern_is_an_error() {
        assert!(ReloadRule::new(Path::new("/srv"), "(", vec![]).is_err());
    }

    #[test]
    fn folder_appearing_with_matching_files_counts_as_a_change() {
        let root = tempfile::tempdir().unwrap();
        let r = ReloadRule::new(root.path(), DEFAULT_PATTERN, vec![])
            .unwrap()
            .unwrap();
        std::fs::create_dir_all(root.path().join("pkg/sub")).unwrap();
        let created = Event::new(EventKind::Create(notify::event::CreateKind::Folder))
            .add_path(root.path().join("pkg"));
        assert!(
            r.triggered_by(&created).is_none(),
            "an empty folder is no change"
        );
        std::fs::write(root.path().join("pkg/sub/m.py"), "").unwrap();
        assert_eq!(r.triggered_by(&created).as_deref(), Some("pkg/sub/m.py"));
        std::fs::create_dir_all(root.path().join("new/.venv/lib")).unwrap();
        std::fs::write(root.path().join("new/.venv/lib/site.py"), "").unwrap();
        let venv = Event::new(EventKind::Create(notify::event::CreateKind::Folder))
            .add_path(root.path().join("new"));
        assert!(
            r.triggered_by(&venv).is_none(),
            "a venv appearing is no change"
        );
    }

    #[test]
    fn overflow_counts_as_a_change_and_reads_do_not() {
        let r = rule(DEFAULT_PATTERN);
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(r.triggered_by(&overflow).is_some());
        let read = Event::new(EventKind::Access(notify::event::AccessKind::Any))
            .add_path(PathBuf::from("/srv/app/app.py"));
        assert!(r.triggered_by(&read).is_none());
        let write = Event::new(EventKind::Modify(notify::event::ModifyKind::Any))
            .add_path(PathBuf::from("/srv/app/app.py"));
        assert_eq!(r.triggered_by(&write).as_deref(), Some("app.py"));
    }

    #[test]
    fn a_change_after_the_reload_was_decided_is_found_by_the_next_start() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("pkg/__pycache__")).unwrap();
        std::fs::write(root.path().join("pkg/old.py"), "").unwrap();
        let r = ReloadRule::new(root.path(), DEFAULT_PATTERN, vec![])
            .unwrap()
            .unwrap();
        let since = std::time::SystemTime::now();
        assert_eq!(changed_since(&r, since), None, "nothing since");
        std::fs::write(root.path().join("pkg/__pycache__/old.cpython-311.pyc"), "x").unwrap();
        std::fs::write(root.path().join("notes.txt"), "x").unwrap();
        assert_eq!(
            changed_since(&r, since),
            None,
            "bytecode and unwatched names"
        );
        std::fs::write(root.path().join("pkg/new.py"), "x").unwrap();
        assert_eq!(changed_since(&r, since).as_deref(), Some("pkg/new.py"));
    }

    /// The regression of issue 13: a project with a venv inside (2,866 folders in the real
    /// one) got a recursive watch on all of it, and Python writing bytecode there at start-up
    /// overflowed the event queue, which reads as a change: a restart ~1 s after every start.
    #[test]
    fn a_venv_inside_the_project_is_not_watched_and_writing_into_it_reloads_nothing() {
        let root = tempfile::tempdir().unwrap();
        let venv = root.path().join(".venv/lib/python3.11/site-packages");
        for i in 0..300 {
            std::fs::create_dir_all(venv.join(format!("pkg{i}/sub"))).unwrap();
        }
        std::fs::write(root.path().join(".venv/pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        std::fs::write(root.path().join("app.py"), "").unwrap();
        let r = ReloadRule::new(root.path(), DEFAULT_PATTERN, vec![])
            .unwrap()
            .unwrap();
        let signal = Arc::new(ExitSignal::new());
        let log: Arc<dyn LogSink> = Arc::new(super::super::StderrLog);
        let w = watch(r, signal.clone(), log).expect("watching");
        assert_eq!(w.folders, 1, "the root alone");
        for i in 0..300 {
            let cache = venv.join(format!("pkg{i}/sub/__pycache__"));
            std::fs::create_dir_all(&cache).unwrap();
            std::fs::write(cache.join("m.cpython-311.pyc"), b"x").unwrap();
            std::fs::write(venv.join(format!("pkg{i}/sub/new.py")), b"x").unwrap();
        }
        std::fs::create_dir_all(root.path().join("logs")).unwrap();
        std::fs::write(root.path().join("logs/iiswsgi.py"), b"x").unwrap();
        // A real change, written last: the events above, had they been seen, came first.
        std::fs::write(root.path().join("app.py"), "# changed\n").unwrap();
        assert_eq!(
            wait_for_request(&signal, Duration::from_secs(10)),
            Some(ExitReason::Reload("app.py".into()))
        );
    }

    /// The event thread fed by the test: events go in when the test says, and the thread's
    /// request shows on the signal. Returns the sender, the signal and the thread.
    fn fed_thread() -> (
        mpsc::Sender<notify::Result<Event>>,
        Arc<ExitSignal>,
        std::thread::JoinHandle<()>,
    ) {
        let r = rule(DEFAULT_PATTERN);
        let (tx, rx) = mpsc::channel();
        let signal = Arc::new(ExitSignal::new());
        let thread_signal = signal.clone();
        let thread = std::thread::spawn(move || {
            // No Create events are sent: the watcher is never needed.
            let gone = Weak::new();
            events(&r, &rx, &gone, &thread_signal, &super::super::StderrLog);
        });
        (tx, signal, thread)
    }

    fn modified(rel: &str) -> notify::Result<Event> {
        Ok(
            Event::new(EventKind::Modify(notify::event::ModifyKind::Data(
                notify::event::DataChange::Content,
            )))
            .add_path(Path::new("/srv/app").join(rel)),
        )
    }

    fn wait_for_request(signal: &ExitSignal, within: Duration) -> Option<ExitReason> {
        let deadline = Instant::now() + within;
        while signal.reason().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        signal.reason()
    }

    #[test]
    fn a_burst_of_changes_reloads_once_after_it_went_quiet_naming_its_first_file() {
        let (tx, signal, thread) = fed_thread();
        tx.send(modified("app.py")).unwrap();
        // The thread cannot have acted yet: it holds the change for QUIET after receiving it.
        std::thread::sleep(QUIET / 3);
        assert_eq!(signal.reason(), None, "held while the burst may go on");
        let last = std::time::SystemTime::now();
        tx.send(modified("views.py")).unwrap();
        tx.send(modified("static/site.css")).unwrap();
        assert_eq!(
            wait_for_request(&signal, Duration::from_secs(10)),
            Some(ExitReason::Reload("app.py".into()))
        );
        let at = signal_at(&signal);
        let held = at.duration_since(last).unwrap_or_default();
        assert!(
            held >= QUIET,
            "asked {held:?} after the last change, not QUIET"
        );
        drop(tx);
        thread.join().unwrap();
    }

    #[test]
    fn a_tree_that_never_goes_quiet_reloads_after_the_longest_hold() {
        let (tx, signal, thread) = fed_thread();
        let first = std::time::SystemTime::now();
        let held = send_until_asked(&tx, &signal, "app.py", QUIET / 4, first);
        assert_eq!(signal.reason(), Some(ExitReason::Reload("app.py".into())));
        assert!(held >= MAX_HOLD, "asked after {held:?}");
        drop(tx);
        thread.join().unwrap();
    }

    #[test]
    fn events_that_do_not_match_do_not_extend_the_hold() {
        let (tx, signal, thread) = fed_thread();
        let first = std::time::SystemTime::now();
        tx.send(modified("app.py")).unwrap();
        // A log next to the code growing all the time: it must not hold the reload back.
        let held = send_until_asked(&tx, &signal, "iiswsgi.log", QUIET / 10, first);
        assert_eq!(signal.reason(), Some(ExitReason::Reload("app.py".into())));
        assert!(
            held < MAX_HOLD,
            "held {held:?}: the log kept it from going quiet"
        );
        drop(tx);
        thread.join().unwrap();
    }

    #[test]
    fn changes_that_do_not_match_hold_nothing_and_ask_nothing() {
        let (tx, signal, thread) = fed_thread();
        tx.send(modified("static/site.css")).unwrap();
        tx.send(modified("__pycache__/app.cpython-311.pyc"))
            .unwrap();
        drop(tx);
        // The thread drains what was sent and ends when the sender is gone.
        thread.join().unwrap();
        assert_eq!(signal.reason(), None);
    }

    /// Sends a change of `rel` every `gap` until the thread asks for the reload (or
    /// `5 × MAX_HOLD` passed); returns how long after `first` it asked (zero if it did not).
    fn send_until_asked(
        tx: &mpsc::Sender<notify::Result<Event>>,
        signal: &ExitSignal,
        rel: &str,
        gap: Duration,
        first: std::time::SystemTime,
    ) -> Duration {
        let deadline = Instant::now() + MAX_HOLD * 5;
        while signal.reason().is_none() && Instant::now() < deadline {
            tx.send(modified(rel)).unwrap();
            std::thread::sleep(gap);
        }
        signal
            .requested_at()
            .and_then(|at| at.duration_since(first).ok())
            .unwrap_or_default()
    }

    fn signal_at(signal: &ExitSignal) -> std::time::SystemTime {
        signal
            .requested_at()
            .expect("a request records its instant")
    }
}
