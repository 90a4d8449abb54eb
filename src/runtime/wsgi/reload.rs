//! Reload on change: watch the app's directory and ask the process to exit after the current
//! request when a matching file changes (wsgi-embedding.md §5.6). IIS, lighttpd or a supervisor
//! starts a fresh process; nothing here re-imports or re-initialises Python.
//!
//! The rule is wfastcgi's `WSGI_RESTART_FILE_REGEX`: default `.*((\.py)|(\.config))$`, matched
//! from the start of the path relative to the watched directory; an empty pattern disables the
//! watcher; a watcher overflow counts as a match. `__pycache__` and excluded directories (a venv
//! inside the app) never match. The watcher thread is pure Rust and never touches Python.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::{Event, EventKind, RecursiveMode, Watcher as _};
use regex::Regex;

use super::app::{ExitReason, ExitSignal};
use super::{LogSink, Record};
use log::Level;

/// wfastcgi's default `WSGI_RESTART_FILE_REGEX`.
pub const DEFAULT_PATTERN: &str = r".*((\.py)|(\.config))$";

/// Which changed paths trigger a reload.
#[derive(Debug, Clone)]
pub struct ReloadRule {
    root: PathBuf,
    regex: Regex,
    exclude: Vec<PathBuf>,
}

impl ReloadRule {
    /// A rule for paths under `root`; `pattern` is anchored at the start like Python's
    /// `re.match`. Returns `Ok(None)` for an empty pattern (reload disabled).
    pub fn new(
        root: &Path,
        pattern: &str,
        exclude: Vec<PathBuf>,
    ) -> Result<Option<ReloadRule>, regex::Error> {
        if pattern.is_empty() {
            return Ok(None);
        }
        let regex = Regex::new(&format!("^(?:{pattern})"))?;
        Ok(Some(ReloadRule {
            root: root.to_path_buf(),
            regex,
            exclude,
        }))
    }

    /// The path relative to the root if it should trigger a reload.
    pub fn matches(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        if rel.components().any(|c| c.as_os_str() == "__pycache__") {
            return None;
        }
        if self.exclude.iter().any(|dir| path.starts_with(dir)) {
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
        walkdir::WalkDir::new(path)
            .max_depth(16)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .find_map(|e| self.matches(e.path()))
    }
}

/// A running watcher; dropping it stops the watch.
pub(super) struct Watcher {
    _inner: notify::RecommendedWatcher,
}

/// Starts watching `rule.root` recursively.
pub(super) fn watch(
    rule: ReloadRule,
    signal: Arc<ExitSignal>,
    log: Arc<dyn LogSink>,
) -> notify::Result<Watcher> {
    let root = rule.root.clone();
    let mut inner = notify::recommended_watcher(move |event: notify::Result<Event>| {
        let trigger = match &event {
            Ok(event) => rule.triggered_by(event),
            Err(err) => {
                log.log(&Record {
                    level: Level::Warn,
                    from_app: false,
                    message: &format!("reload watcher error: {err}"),
                });
                None
            }
        };
        if let Some(path) = trigger {
            if signal.request(ExitReason::Reload(path.clone())) {
                log.log(&Record {
                    level: Level::Info,
                    from_app: false,
                    message: &format!(
                        "reload: {path} changed; exiting once the current request is done"
                    ),
                });
            }
        }
    })?;
    inner.watch(&root, RecursiveMode::Recursive)?;
    Ok(Watcher { _inner: inner })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str) -> ReloadRule {
        ReloadRule::new(
            Path::new("/srv/app"),
            pattern,
            vec![PathBuf::from("/srv/app/.venv")],
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
    fn pycache_venv_and_outside_paths_never_match() {
        let r = rule(DEFAULT_PATTERN);
        assert!(
            r.matches(Path::new("/srv/app/__pycache__/app.py"))
                .is_none()
        );
        assert!(r.matches(Path::new("/srv/app/.venv/lib/x.py")).is_none());
        assert!(r.matches(Path::new("/elsewhere/app.py")).is_none());
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
}
