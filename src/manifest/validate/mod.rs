//! Stage two of reading a manifest: raw values to the validated [`Manifest`], defaults applied.
//!
//! Every check runs even after an earlier one failed, so one run reports every problem; each
//! diagnostic points at the offending value and says how to fix it. A value placed by
//! `iiswsgi init` as a `TODO` gets one "fill this in" error and no other. The only I/O is the
//! optional existence check of files the manifest names, when a base folder is given
//! (`files`).
//!
//! This file holds the `Validator` (the diagnostics it collects and how it reports them) and
//! walks the sections in file order; each section is checked in its own file: `app`, `wsgi`,
//! `iis` (and `iis_static`), `package`, `parameters`, `feed`, `run`. The value checks they share (free text,
//! URLs, relative paths, bounded integers, regexes) are in `values`.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::diagnostic::{Diagnostic, SourceFile};
use super::load::{self, Parsed};
use super::raw::Spanned;
use super::{Manifest, ManifestError};

mod app;
mod feed;
mod files;
mod iis;
mod iis_static;
mod package;
mod parameters;
mod run;
mod values;
mod wsgi;

/// Reads `source` into a [`Manifest`]; `base` enables file-existence checks.
pub(super) fn validate(
    source: &SourceFile,
    path: &Path,
    base: Option<&Path>,
) -> Result<Manifest, ManifestError> {
    if source.text().len() > super::MAX_MANIFEST_BYTES {
        return Err(ManifestError::Invalid {
            path: path.to_path_buf(),
            diagnostics: vec![
                Diagnostic::at(
                    super::Severity::Error,
                    source,
                    None,
                    format!(
                        "the manifest is larger than {} bytes",
                        super::MAX_MANIFEST_BYTES
                    ),
                )
                .with_help("iiswsgi.toml describes one app; keep data in files it names"),
            ],
        });
    }
    let mut parsed = load::parse(source);
    let mut v = Validator {
        src: source,
        diags: std::mem::take(&mut parsed.diagnostics),
        todo: BTreeSet::new(),
        removed: std::mem::take(&mut parsed.removed),
        base: base.map(Path::to_path_buf),
    };
    let manifest = if parsed.syntax_failed {
        None
    } else {
        v.todo = load::todo_spans(source);
        for &at in &v.todo {
            let end = source.text()[at..]
                .find('\n')
                .map_or(source.text().len(), |i| at + i);
            v.diags.push(
                Diagnostic::error(source, at..end, "this value is a placeholder left by `iiswsgi init`")
                    .with_help("replace the TODO with the real value (the comment above it explains what goes here)"),
            );
        }
        v.manifest(path, &parsed)
    };
    let mut diags = v.diags;
    diags.sort_by_key(|d| (d.span.as_ref().map_or(0, |s| s.start), d.severity));
    match manifest {
        Some(mut m) if !diags.iter().any(Diagnostic::is_error) => {
            m.warnings = diags;
            Ok(m)
        }
        _ => Err(ManifestError::Invalid {
            path: path.to_path_buf(),
            diagnostics: diags,
        }),
    }
}

/// Collects the diagnostics of one manifest while its sections are checked.
struct Validator<'s> {
    src: &'s SourceFile,
    diags: Vec<Diagnostic>,
    /// Starts of string values that are `TODO` placeholders (already reported).
    todo: BTreeSet<usize>,
    /// Keys dropped for a type error (already reported).
    removed: BTreeSet<String>,
    base: Option<PathBuf>,
}

type Sp<T> = Spanned<T>;

impl Validator<'_> {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(self.src, span, message).with_help(help));
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        self.diags
            .push(Diagnostic::warning(self.src, span, message).with_help(help));
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn is_todo(&self, s: &Sp<String>) -> bool {
        self.todo.contains(&s.span().start)
    }

    /// Where "missing key" errors point: the section header, else the start of the file.
    fn header_span(&self, section: &str) -> Range<usize> {
        let text = self.src.text();
        let needle = format!("[{section}]");
        text.find(&needle)
            .map(|i| i..i + needle.len())
            .unwrap_or(0..0)
    }

    /// Reports the first item past `max` in a list of `what` (at `span`); whether the list fits.
    fn at_most(&mut self, what: &str, len: usize, max: usize, span: Range<usize>) -> bool {
        if len <= max {
            return true;
        }
        self.error(
            span,
            format!("more than {max} {what}"),
            "the package's Manifest.xml and Parameters.xml must stay small enough for `iiswsgi check` to read back; merge entries",
        );
        false
    }

    fn missing(&mut self, section: &str, key: &str, example: &str) {
        if self.removed.contains(&format!("{section}.{key}")) {
            return;
        }
        let span = self.header_span(section);
        let msg = format!("missing required key `{section}.{key}`");
        self.error(
            span,
            msg,
            format!("add `{key} = {example}` under `[{section}]`"),
        );
    }

    fn manifest(&mut self, path: &Path, parsed: &Parsed) -> Option<Manifest> {
        let r = &parsed.raw;
        let app = match &r.app {
            Some(a) => self.app(a),
            None => {
                if !parsed.failed.contains("app") {
                    self.error(
                        0..0,
                        "missing the `[app]` section",
                        "start the file with:\n[app]\nname = \"MyApp\"\nversion = \"1.0.0\"",
                    );
                }
                None
            }
        };
        let wsgi = match &r.wsgi {
            Some(w) => self.wsgi(w),
            None => {
                if !parsed.failed.contains("wsgi") {
                    self.error(
                        0..0,
                        "missing the `[wsgi]` section",
                        "add:\n[wsgi]\napp = \"module:callable\"   # e.g. \"hello:app\" for app = Flask(...) in hello.py",
                    );
                }
                None
            }
        };
        let name = app.as_ref().map(|a| a.name.clone());
        let iis = self.iis(r.iis.as_ref(), name.as_ref());
        let package = self.package(r.package.as_ref());
        let app_parameter = iis.as_ref().map_or(
            crate::manifest::ApplicationParameter::ApplicationPath,
            |i| i.application_parameter,
        );
        let parameters = self.parameters(r.parameters.as_deref().unwrap_or(&[]), app_parameter);
        let feed = self.feed(r.feed.as_ref());
        let run = self.run(r.run.as_ref());
        self.static_overlaps(r, wsgi.as_ref(), &run);
        if let (Some(app), Some(base)) = (&app, self.base.clone()) {
            self.files_exist(r, app, package.as_ref(), &base);
        }
        Some(Manifest {
            path: path.to_path_buf(),
            app: app?,
            wsgi: wsgi?,
            iis: iis?,
            package: package?,
            parameters,
            feed,
            run,
            warnings: Vec::new(),
        })
    }
}
