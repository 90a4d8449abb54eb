//! `iiswsgi init`: scaffold an `iiswsgi.toml` from what a Python project already says about
//! itself.
//!
//! Two phases, as every subcommand: [`plan`] reads the project (metadata files, `.py` sources
//! and `.wsgi` scripts, never executing anything) and renders the manifest in memory;
//! [`Plan::write`] does the only writing. The library takes the project folder as a path and
//! never looks at the working directory. What could not be found becomes a `TODO` value that
//! `iiswsgi check` reports, so a half-filled manifest cannot be packaged by accident.
//!
//! Besides `iiswsgi.toml`, `init` may write two files, never over one of the user's:
//! `requirements.txt` from `[project] dependencies` when the project has none (the server
//! pip-installs it), and `<name>_wsgi.py` when the WSGI entry is a mod_wsgi script
//! (`*.wsgi`), which Python cannot import by name: the shim runs the script with `runpy` and
//! serves its `application`, as mod_wsgi does.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::manifest::{self, AppName, Manifest};

pub mod detect;
pub mod templates;

pub use detect::{Candidate, Detection, Framework};
use templates::{InitManifest, Templates};

/// The placeholder written for a WSGI callable that was not found.
pub const TODO_WSGI_APP: &str = "TODO:module:callable";

/// What `iiswsgi init` was asked to do.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The project folder.
    pub dir: PathBuf,
    /// Replace an existing `iiswsgi.toml` (the old one is kept as `iiswsgi.toml.bak`).
    pub force: bool,
}

/// Errors of `iiswsgi init`.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The project folder does not exist.
    #[error("{} is not a folder", .0.display())]
    NotADirectory(PathBuf),
    /// A manifest exists and `--force` was not given.
    #[error(
        "{} already exists; not overwriting it.\n  Pass --force to replace it (the current file is kept as {}.bak), or edit it and run `iiswsgi check`.",
        path.display(),
        manifest::FILE_NAME
    )]
    Exists {
        /// The existing manifest.
        path: PathBuf,
    },
    /// Rendering the template failed (a bug).
    #[error(transparent)]
    Template(#[from] templates::TemplateError),
    /// A file `init` would write besides the manifest exists and is not one `init` wrote.
    #[error(
        "{} already exists and was not written by iiswsgi init; not overwriting it",
        path.display()
    )]
    ExtraExists {
        /// The file.
        path: PathBuf,
    },
    /// Writing failed.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A row of the "detected" table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// What (`name`, `version`, `wsgi app`…).
    pub what: &'static str,
    /// The value written.
    pub value: String,
    /// Where it came from.
    pub source: String,
}

/// A file `init` writes besides the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Where.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Why it is written (for the report).
    pub why: String,
}

/// The rendered manifest and what `init` learned, before anything is written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where the manifest goes.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Other files to write: a generated requirements.txt, a shim for a `.wsgi` script.
    pub extra_files: Vec<ExtraFile>,
    /// Values taken from the project.
    pub detected: Vec<Detected>,
    /// What the user must still fill in or decide.
    pub todo: Vec<String>,
    /// Other observations (other candidates, skipped files).
    pub notes: Vec<String>,
    /// Neither metadata nor a WSGI callable was found.
    pub nothing_found: bool,
}

/// What `iiswsgi init` did.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The plan that was written.
    pub plan: Plan,
    /// The previous manifest's backup, when `--force` replaced one.
    pub backup: Option<PathBuf>,
}

/// Runs `iiswsgi init`: [`plan`], then [`Plan::write`].
pub fn init(options: &InitOptions) -> Result<InitReport, InitError> {
    let plan = plan(&options.dir)?;
    let backup = plan.write(options.force)?;
    Ok(InitReport { plan, backup })
}

/// Reads the project in `dir` and renders its manifest in memory.
pub fn plan(dir: &Path) -> Result<Plan, InitError> {
    if !dir.is_dir() {
        return Err(InitError::NotADirectory(dir.to_path_buf()));
    }
    let d = detect::detect(dir);
    let mut detected = Vec::new();
    let mut todo = Vec::new();
    let mut notes = Vec::new();
    let meta = &d.metadata;

    // [app] name: the project name, else the folder name, made valid.
    let folder = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let from_meta = meta
        .name
        .as_ref()
        .and_then(|n| AppName::sanitize(&n.value).map(|a| (a, n)));
    let name = match from_meta {
        Some((a, n)) => {
            detected.push(Detected {
                what: "name",
                value: a.to_string(),
                source: format!("{} name {:?}", n.source, n.value),
            });
            a.to_string()
        }
        None => match AppName::sanitize(&folder) {
            Some(a) => {
                detected.push(Detected {
                    what: "name",
                    value: a.to_string(),
                    source: format!("the folder name {folder:?}"),
                });
                a.to_string()
            }
            None => {
                todo.push("[app] name: choose the app's name (letters, digits, `_`)".to_string());
                "TODO".to_string()
            }
        },
    };
    let version = match &meta.version {
        Some(v) => {
            detected.push(Detected {
                what: "version",
                value: v.value.clone(),
                source: v.source.clone(),
            });
            v.value.clone()
        }
        None => {
            todo.push(
                "[app] version: no version found; \"0.1.0\" was written. Raise it for every release (each package needs a new file name)".to_string(),
            );
            "0.1.0".to_string()
        }
    };
    for (what, f) in [
        ("description", &meta.description),
        ("author", &meta.author),
        ("license", &meta.license),
    ] {
        if let Some(f) = f {
            detected.push(Detected {
                what,
                value: f.value.clone(),
                source: f.source.clone(),
            });
        }
    }
    let homepage_url = meta
        .homepage
        .as_ref()
        .map(|h| h.value.clone())
        .filter(|h| h.starts_with("https://") || h.starts_with("http://"));
    let title = meta
        .name
        .as_ref()
        .map(|n| titleize(&n.value))
        .unwrap_or_else(|| name.clone());

    // [wsgi] app.
    let mut extra_files = Vec::new();
    let mut wsgi_notes = Vec::new();
    let mut python_paths = Vec::new();
    let mut post_install = Vec::new();
    let usable = d
        .candidates
        .iter()
        .find(|c| c.framework != Framework::Pyramid);
    let pyramid = d
        .candidates
        .iter()
        .find(|c| c.framework == Framework::Pyramid);
    let wsgi_app = match (usable, pyramid) {
        (Some(c), _) => {
            detected.push(Detected {
                what: "wsgi app",
                value: c.target(),
                source: format!("{}:{}: `{}`", c.file, c.line, c.evidence),
            });
            wsgi_notes.push(format!(
                "Found by `iiswsgi init`: {} in {} line {}.",
                c.framework.label(),
                c.file,
                c.line
            ));
            if !c.python_path.is_empty() {
                python_paths.push(c.python_path.clone());
                detected.push(Detected {
                    what: "python path",
                    value: c.python_path.clone(),
                    source: format!("{} is importable from there", c.module),
                });
            }
            if c.framework == Framework::ModWsgi {
                extra_files.push(ExtraFile {
                    path: dir.join(format!("{}.py", c.module)),
                    text: templates::wsgi_script_shim(&c.file),
                    why: format!(
                        "serves the mod_wsgi script {} (a .wsgi file cannot be imported by name)",
                        c.file
                    ),
                });
                todo.push(format!(
                    "[wsgi] app: {} is a mod_wsgi script; check the paths it names (they are often placeholders such as /path/to/env) before deploying",
                    c.file
                ));
            }
            if c.framework == Framework::FlaskFactory {
                todo.push(format!(
                    "[wsgi] app: `{}` is called once with no arguments at start-up; check that this is how your factory is meant to be used",
                    c.target()
                ));
            }
            c.target()
        }
        (None, Some(p)) => {
            wsgi_notes.push(format!(
                "{}:{} has Pyramid's `def main(global_config, **settings)`: a PasteDeploy",
                p.file, p.line
            ));
            wsgi_notes.push(
                "factory that needs the settings from an .ini file, not a WSGI app. Add a module"
                    .to_string(),
            );
            wsgi_notes.push(
                "wsgi_app.py: `from pyramid.paster import get_app; application = get_app(\"production.ini\")`"
                    .to_string(),
            );
            wsgi_notes.push("and set app = \"wsgi_app:application\".".to_string());
            todo.push(format!(
                "[wsgi] app: {} defines Pyramid's paste factory `main`, which is not a WSGI app; add wsgi_app.py calling pyramid.paster.get_app(\"production.ini\") and set app = \"wsgi_app:application\" (see the comment in the file)",
                p.file
            ));
            TODO_WSGI_APP.to_string()
        }
        (None, None) => {
            wsgi_notes.push(
                "No WSGI callable was found. Name yours, e.g. \"hello:app\" for `app = Flask(__name__)` in hello.py,"
                    .to_string(),
            );
            wsgi_notes.push(
                "\"mysite.wsgi:application\" for Django, \"app:application\" for `def application(environ, start_response)`."
                    .to_string(),
            );
            todo.push(format!(
                "[wsgi] app: no WSGI callable found in {} Python file{}; write `module:callable`",
                d.py_files_read,
                if d.py_files_read == 1 { "" } else { "s" }
            ));
            TODO_WSGI_APP.to_string()
        }
    };
    if let Some(first) = usable {
        for other in d
            .candidates
            .iter()
            .filter(|c| c.framework != Framework::Pyramid && *c != first)
            .take(5)
        {
            notes.push(if other.framework == Framework::ModWsgi {
                format!(
                    "also found the mod_wsgi script {} (line {}), not chosen",
                    other.file, other.line
                )
            } else {
                format!(
                    "also found {} `{}` ({}:{}); edit [wsgi] app if that is the one to serve",
                    other.framework.label(),
                    other.target(),
                    other.file,
                    other.line
                )
            });
        }
        if first.framework == Framework::Django && d.has_manage_py {
            post_install.push("python manage.py migrate --noinput".to_string());
            post_install.push("python manage.py collectstatic --noinput".to_string());
            notes.push(
                "Django: migrate/collectstatic are suggested (commented out) under [package] post-install".to_string(),
            );
        }
    }
    for asgi in &d.asgi_skipped {
        notes.push(format!(
            "{asgi}: an ASGI application, which iiswsgi cannot serve (it would fail with a TypeError at request time); not proposed"
        ));
    }
    let mut requirements = d.requirements.clone();
    if let Some(r) = &d.requirements {
        detected.push(Detected {
            what: "requirements",
            value: r.clone(),
            source: "found next to the project files".to_string(),
        });
    } else if !meta.dependencies.is_empty() {
        let path = dir.join("requirements.txt");
        extra_files.push(ExtraFile {
            text: templates::requirements_from_pyproject(&meta.dependencies),
            why: format!(
                "pyproject.toml [project] dependencies ({}), for the server's pip",
                meta.dependencies.join(", ")
            ),
            path,
        });
        detected.push(Detected {
            what: "requirements",
            value: "requirements.txt".to_string(),
            source: format!(
                "written from pyproject.toml [project] dependencies: {}",
                meta.dependencies.join(", ")
            ),
        });
        requirements = Some("requirements.txt".to_string());
    } else {
        notes.push(
            "no requirements.txt: list the app's dependencies there (or set [package] requirements) so the server can install them".to_string(),
        );
    }
    // A venv when the project has one, or has requirements to install into one.
    let venv = d
        .local_venv
        .clone()
        .or_else(|| requirements.as_ref().map(|_| ".venv".to_string()));
    if let Some(v) = &d.local_venv {
        detected.push(Detected {
            what: "venv",
            value: v.clone(),
            source: format!(
                "{v}/pyvenv.cfg exists (check --import uses it; the package leaves it out)"
            ),
        });
    }
    if d.truncated {
        notes.push(format!(
            "stopped searching after {} Python files; set [wsgi] app yourself if it is elsewhere",
            detect::MAX_PY_FILES
        ));
    }
    notes.extend(d.problems.iter().map(|p| format!("could not read: {p}")));
    todo.push(
        "[iis] application-path, [iis.fastcgi] and [[iis.set-acl]]: review the commented defaults"
            .to_string(),
    );

    let nothing_found = meta.files.is_empty() && d.candidates.is_empty();
    let mut sources: Vec<String> = meta.files.clone();
    if let Some(c) = usable {
        sources.push(c.file.clone());
    }
    let data = InitManifest {
        iiswsgi_version: crate::VERSION.to_string(),
        detected_from: sources.join(", "),
        name,
        title,
        version,
        description: meta.description.as_ref().map(|f| f.value.clone()),
        author: meta.author.as_ref().map(|f| f.value.clone()),
        license: meta.license.as_ref().map(|f| f.value.clone()),
        homepage_url,
        wsgi_app,
        wsgi_notes,
        python_paths,
        environment: Default::default(),
        requirements,
        venv,
        post_install,
    };
    let text = Templates::new()?.manifest(&data)?;
    let path = dir.join(manifest::FILE_NAME);
    // The rendered file must be valid apart from its TODOs; anything else is reported.
    if let Err(e) = Manifest::parse(&text, &path) {
        for diag in e.diagnostics().iter().filter(|d| d.is_error()) {
            if !diag.message.contains("placeholder") {
                notes.push(format!(
                    "the written file needs attention: {}",
                    diag.headline()
                ));
            }
        }
    }
    Ok(Plan {
        path,
        text,
        extra_files,
        detected,
        todo,
        notes,
        nothing_found,
    })
}

impl Plan {
    /// Writes the manifest. Without `force` an existing file is an error; with it the old
    /// file is first copied to `iiswsgi.toml.bak`, whose path is returned.
    pub fn write(&self, force: bool) -> Result<Option<PathBuf>, InitError> {
        let mut backup = None;
        for f in &self.extra_files {
            let ours = fs_err::read_to_string(&f.path)
                .is_ok_and(|t| t.contains(templates::WRITTEN_BY_INIT));
            if f.path.exists() && !ours {
                return Err(InitError::ExtraExists {
                    path: f.path.clone(),
                });
            }
        }
        if self.path.exists() {
            if !force {
                return Err(InitError::Exists {
                    path: self.path.clone(),
                });
            }
            let bak = self.path.with_extension("toml.bak");
            fs_err::copy(&self.path, &bak).map_err(|source| InitError::Write {
                path: bak.clone(),
                source,
            })?;
            backup = Some(bak);
        }
        fs_err::write(&self.path, &self.text).map_err(|source| InitError::Write {
            path: self.path.clone(),
            source,
        })?;
        for f in &self.extra_files {
            fs_err::write(&f.path, &f.text).map_err(|source| InitError::Write {
                path: f.path.clone(),
                source,
            })?;
        }
        Ok(backup)
    }
}

/// `flask-hello` → `Flask Hello`.
fn titleize(name: &str) -> String {
    name.split(['-', '_', '.', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        writeln!(f, "wrote {}", p.path.display())?;
        if let Some(b) = &self.backup {
            writeln!(f, "  (the previous file is kept as {})", b.display())?;
        }
        for e in &p.extra_files {
            writeln!(f, "wrote {}: {}", e.path.display(), e.why)?;
        }
        if p.nothing_found {
            writeln!(
                f,
                "\nFound no project metadata (pyproject.toml, setup.cfg, setup.py) and no WSGI callable in {}.",
                p.path.parent().unwrap_or(Path::new(".")).display()
            )?;
            writeln!(
                f,
                "The manifest has TODO values that `iiswsgi check` reports until you fill them in."
            )?;
        }
        if !p.detected.is_empty() {
            writeln!(f, "\ndetected:")?;
            let width = p.detected.iter().map(|d| d.what.len()).max().unwrap_or(0);
            let vwidth = p
                .detected
                .iter()
                .map(|d| d.value.chars().count())
                .filter(|n| *n <= 32)
                .max()
                .unwrap_or(0);
            for d in &p.detected {
                writeln!(
                    f,
                    "  {:width$}  {:vwidth$}  ({})",
                    d.what, d.value, d.source
                )?;
            }
        }
        if !p.todo.is_empty() {
            writeln!(f, "\nstill to do:")?;
            for t in &p.todo {
                writeln!(f, "  - {t}")?;
            }
        }
        if !p.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &p.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        writeln!(f, "\nnext: iiswsgi check {}", p.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titleize_splits_on_separators() {
        assert_eq!(titleize("flask-hello"), "Flask Hello");
        assert_eq!(titleize("my_site.web"), "My Site Web");
    }
}
