//! `iiswsgi check`: lint rules for manifests, packages, their XML and feeds, as errors and warnings.
//!
//! Each rule has the id the spec gives it (msdeploy-webpi.md §7): Z (zip), M (Manifest.xml),
//! O (runCommand provider options), P (Parameters.xml), S (SetParameters.xml), C (web.config),
//! F (WebPI feed). Every [`Finding`] carries its rule id, severity and location; a report with
//! any error makes `iiswsgi check` exit 1. The rules run on iiswsgi's own output (the package
//! build runs the M, O, P and C rules on what it generated, and fails on errors) and on
//! third-party files alike; wherever msdeploy ignores case, so do they.
//!
//! [`lint`] is the entry point: it sniffs each file's kind (zip, feed, Manifest.xml,
//! Parameters.xml, SetParameters.xml, web.config, `iiswsgi.toml`) and returns a [`Report`].
//! Unreadable files are findings too, so one bad path does not hide the others.
//!
//! Modules: [`zip`] (central-directory reader and Z rules),
//! [`manifest_xml`] (M, O), [`parameters`] (P), [`set_parameters`] (S), [`web_config`] (C),
//! [`feed`] (F), and [`app_import`] (I: with `--import`, `[wsgi] app` imports in its venv).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::xml;

pub mod app_import;
pub mod feed;
pub mod manifest_xml;
pub mod parameters;
pub mod set_parameters;
pub mod web_config;
pub mod zip;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Fails the check (exit 1) and the package build.
    Error,
    /// Reported, does not fail.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found by one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule id (`P10`), or `IO` when a file could not be read.
    pub rule: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// Where: `Parameters.xml:12`, a zip entry name, or empty for the file as a whole.
    pub location: String,
    /// What is wrong, in one sentence.
    pub message: String,
}

/// One line: location and message quote the inspected files (entry names, attribute values),
/// so their control characters are escaped ([`crate::printable`]).
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: ", self.severity, self.rule)?;
        if !self.location.is_empty() {
            write!(f, "{}: ", crate::printable(&self.location, &[]))?;
        }
        f.write_str(&crate::printable(&self.message, &[]))
    }
}

/// Findings collected by the rules of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Adds an error.
    pub fn error(&mut self, rule: &'static str, location: impl Into<String>, message: String) {
        self.push(rule, Severity::Error, location.into(), message);
    }

    /// Adds a warning.
    pub fn warn(&mut self, rule: &'static str, location: impl Into<String>, message: String) {
        self.push(rule, Severity::Warning, location.into(), message);
    }

    /// Adds a finding of `severity`.
    pub fn push(
        &mut self,
        rule: &'static str,
        severity: Severity,
        location: String,
        message: String,
    ) {
        self.0.push(Finding {
            rule,
            severity,
            location,
            message,
        });
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.0
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.0.len() - self.errors()
    }

    /// Whether any rule with this id fired.
    pub fn has(&self, rule: &str) -> bool {
        self.0.iter().any(|f| f.rule == rule)
    }

    /// Prefixes every location with `prefix: ` (a zip's file name, …).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for f in &mut self.0 {
            f.location = if f.location.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}: {}", f.location)
            };
        }
        self
    }

    /// Appends `other`.
    pub fn extend(&mut self, other: Findings) {
        self.0.extend(other.0);
    }

    /// Only the errors, rendered one per line (for error messages of other commands).
    pub fn render_errors(&self) -> String {
        self.0
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| format!("{f}\n"))
            .collect()
    }
}

/// What kind of file a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An MSDeploy package zip.
    Package,
    /// A WebPI feed.
    Feed,
    /// A Manifest.xml (any root name).
    ManifestXml,
    /// A Parameters.xml.
    ParametersXml,
    /// A SetParameters.xml.
    SetParametersXml,
    /// A web.config.
    WebConfig,
    /// An `iiswsgi.toml`.
    IiswsgiToml,
    /// Could not be read or recognised.
    Unknown,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Package => "package",
            FileKind::Feed => "WebPI feed",
            FileKind::ManifestXml => "Manifest.xml",
            FileKind::ParametersXml => "Parameters.xml",
            FileKind::SetParametersXml => "SetParameters.xml",
            FileKind::WebConfig => "web.config",
            FileKind::IiswsgiToml => "iiswsgi.toml",
            FileKind::Unknown => "file",
        })
    }
}

/// What `iiswsgi check` found in one file.
#[derive(Debug)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// What it was recognised as.
    pub kind: FileKind,
    /// Findings of the M/O/P/S/C/F/Z rules.
    pub findings: Findings,
    /// For `iiswsgi.toml`: the manifest checker's own report (diagnostics with carets).
    pub manifest: Option<crate::manifest::CheckReport>,
    /// With `--import`, what the app imported as (the I rules passed).
    pub imported: Option<String>,
}

impl FileReport {
    /// Errors in this file.
    pub fn errors(&self) -> usize {
        self.findings.errors() + self.manifest.as_ref().map_or(0, |m| m.errors())
    }

    /// Warnings in this file.
    pub fn warnings(&self) -> usize {
        self.findings.warnings() + self.manifest.as_ref().map_or(0, |m| m.warnings())
    }

    /// Whether the file could not be read at all (the CLI prints such reports to stderr).
    pub fn unreadable(&self) -> bool {
        self.findings.has("IO")
    }

    /// The findings, then a one-line summary.
    pub fn render(&self) -> String {
        if let Some(m) = &self.manifest {
            let mut out = m.render();
            if !self.findings.0.is_empty() {
                // The import failed: one summary for the file replaces the manifest's "ok".
                let last = out.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
                if out[last..].starts_with("ok: ") {
                    out.truncate(last);
                }
                for f in &self.findings.0 {
                    out.push_str(&format!("{f}\n"));
                }
                let (e, w) = (self.errors(), self.warnings());
                out.push_str(&format!(
                    "error: {}: {e} error{}, {w} warning{}\n",
                    m.path.display(),
                    plural(e),
                    plural(w)
                ));
            }
            if let Some(line) = &self.imported {
                out.push_str(line);
                out.push('\n');
            }
            return out;
        }
        let mut out = String::new();
        for f in &self.findings.0 {
            out.push_str(&format!("{f}\n"));
        }
        let (e, w) = (self.errors(), self.warnings());
        let status = if e > 0 { "error" } else { "ok" };
        out.push_str(&format!(
            "{status}: {} ({}): {e} error{}, {w} warning{}\n",
            crate::printable(&self.path.display().to_string(), &[]),
            self.kind,
            plural(e),
            plural(w)
        ));
        out
    }
}

/// What `iiswsgi check` found in all its files.
#[derive(Debug, Default)]
pub struct Report {
    /// One report per file, in the order given.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Total errors.
    pub fn errors(&self) -> usize {
        self.files.iter().map(FileReport::errors).sum()
    }

    /// Total warnings.
    pub fn warnings(&self) -> usize {
        self.files.iter().map(FileReport::warnings).sum()
    }

    /// Findings, then one summary line per file.
    pub fn render(&self) -> String {
        self.files.iter().map(FileReport::render).collect()
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Options of `iiswsgi check`.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The previously published feed, for F09 (same installerURL, different sha1).
    pub previous_feed: Option<PathBuf>,
    /// `--import`: import `[wsgi] app` of each valid manifest in its venv (I rules).
    pub import_app: bool,
    /// `--venv`: the venv to import with, instead of the manifest's.
    pub venv: Option<PathBuf>,
}

/// Lints every file in `paths`; see the module doc.
pub fn lint(paths: &[PathBuf], options: &CheckOptions) -> Report {
    Report {
        files: paths.iter().map(|p| lint_file(p, options)).collect(),
    }
}

/// Lints one file.
pub fn lint_file(path: &Path, options: &CheckOptions) -> FileReport {
    let mut report = FileReport {
        path: path.to_path_buf(),
        kind: FileKind::Unknown,
        findings: Findings::default(),
        manifest: None,
        imported: None,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".toml") || path.is_dir() {
        report.kind = FileKind::IiswsgiToml;
        match crate::manifest::check_file(path) {
            Ok(m) => {
                if options.import_app
                    && let Some(valid) = &m.manifest
                {
                    let (findings, imported) =
                        app_import::lint(valid, &m.path, options.venv.as_deref());
                    report.findings = findings;
                    report.imported = imported;
                }
                report.manifest = Some(m);
            }
            Err(e) => report
                .findings
                .error("IO", "", crate::error_chain(&e, ": ")),
        }
        return report;
    }
    if name.ends_with(".cmd") || name.ends_with(".txt") {
        // `iiswsgi check dist/*` meets the deploy.cmd and readme package writes next to the zip.
        report.findings.warn(
            "IO",
            "",
            "not a file iiswsgi checks (a deploy.cmd or readme is checked through its package)"
                .into(),
        );
        return report;
    }
    if name.ends_with(".zip") {
        report.kind = FileKind::Package;
        report.findings = zip::lint_package(path);
        return report;
    }
    let text = match fs_err::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                report
                    .findings
                    .error("IO", "", "the file is not UTF-8 text".into());
                return report;
            }
        },
        Err(e) => {
            report
                .findings
                .error("IO", "", crate::error_chain(&e, ": "));
            return report;
        }
    };
    let label = path.display().to_string();
    let root = match xml::parse(&text) {
        Ok(root) => root,
        Err(e) => {
            report.kind = kind_from_name(&name);
            let rule = match report.kind {
                FileKind::Feed => "F01",
                FileKind::ParametersXml => "P01",
                FileKind::SetParametersXml => "S01",
                FileKind::WebConfig => "C01",
                _ => "M01",
            };
            report.findings.error(
                rule,
                format!("{label}:{}", e.line),
                format!("not well-formed XML: {}", e.message),
            );
            return report;
        }
    };
    report.kind = kind_from_root(&root, &name);
    report.findings = match report.kind {
        FileKind::Feed => feed::lint(&root, &label, path.parent(), options),
        FileKind::ParametersXml => parameters::lint_standalone(&root, &label),
        FileKind::SetParametersXml => {
            let (params, note) = sibling_parameters(path);
            let mut f = set_parameters::lint(&root, &label, params.as_ref());
            if let Some(note) = note {
                f.push("S02", Severity::Warning, label.clone(), note);
            }
            f
        }
        FileKind::WebConfig => web_config::lint(&root, &label, None),
        _ => manifest_xml::lint(&root, &label).findings,
    };
    report
}

/// The Parameters.xml of the package a SetParameters.xml belongs to: `X.zip` next to
/// `X.SetParameters.xml` (what `iiswsgi package` and Visual Studio write), else a
/// `Parameters.xml` in the same folder. Without either, a note says S02–S05 did not run.
fn sibling_parameters(path: &Path) -> (Option<xml::Element>, Option<String>) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .len()
        .checked_sub(".setparameters.xml".len())
        .filter(|&n| name[n..].eq_ignore_ascii_case(".setparameters.xml"))
        .map(|n| &name[..n]);
    let dir = path.parent().unwrap_or(Path::new(""));
    let zip = stem.map(|s| dir.join(format!("{s}.zip")));
    let text = match zip.as_deref().filter(|z| z.is_file()) {
        Some(zip) => read_parameters_from_zip(zip),
        None => fs_err::read_to_string(dir.join("Parameters.xml")).ok(),
    };
    match text.as_deref().map(xml::parse) {
        Some(Ok(root)) => (Some(root), None),
        _ => (
            None,
            Some(format!(
                "no {} (or Parameters.xml) next to it: names, hidden and required parameters and validations were not checked",
                zip.as_deref().map_or_else(
                    || "package".to_string(),
                    |z| z
                        .file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                )
            )),
        ),
    }
}

fn read_parameters_from_zip(zip: &Path) -> Option<String> {
    use crate::package::msdeploy::reader::{read_directory, read_text};
    let mut file = fs_err::File::open(zip).ok()?;
    let dir = read_directory(&mut file).ok()?;
    let entry = dir
        .entries
        .iter()
        .find(|e| !e.name.contains('/') && e.name.eq_ignore_ascii_case("parameters.xml"))?;
    read_text(&mut file, entry, zip::MAX_ENTRY_BYTES).ok()
}

/// Guess from the file name alone (used when the XML does not parse).
fn kind_from_name(name: &str) -> FileKind {
    if name.ends_with("setparameters.xml") {
        FileKind::SetParametersXml
    } else if name.ends_with("parameters.xml") {
        FileKind::ParametersXml
    } else if name.ends_with(".config") {
        FileKind::WebConfig
    } else if name.contains("feed") || name.ends_with(".webpi.xml") || name.ends_with(".atom") {
        FileKind::Feed
    } else {
        FileKind::ManifestXml
    }
}

/// Decide from the root element (then the name).
fn kind_from_root(root: &xml::Element, name: &str) -> FileKind {
    match root.local.as_str() {
        "feed" => FileKind::Feed,
        "configuration" => FileKind::WebConfig,
        "parameters" | "Parameters" => {
            if root.children.iter().any(|c| c.local == "setParameter") {
                FileKind::SetParametersXml
            } else if root.children.iter().any(|c| c.local == "parameter") {
                FileKind::ParametersXml
            } else {
                kind_from_name(name)
            }
        }
        _ => FileKind::ManifestXml,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_displays_severity_rule_and_location() {
        let mut f = Findings::default();
        f.error("P10", "Parameters.xml:7", "dangling".into());
        f.warn("Z10", "", "same time".into());
        assert_eq!(f.0[0].to_string(), "error[P10]: Parameters.xml:7: dangling");
        assert_eq!(f.0[1].to_string(), "warning[Z10]: same time");
        assert_eq!((f.errors(), f.warnings()), (1, 1));
        let f = f.prefixed("a.zip");
        assert_eq!(f.0[0].location, "a.zip: Parameters.xml:7");
        assert_eq!(f.0[1].location, "a.zip");
    }

    #[test]
    fn file_kind_is_sniffed_from_the_root_element() {
        let k = |doc: &str, name: &str| kind_from_root(&xml::parse(doc).expect("xml"), name);
        assert_eq!(
            k(r#"<feed xmlns="http://www.w3.org/2005/Atom"/>"#, "x.xml"),
            FileKind::Feed
        );
        assert_eq!(
            k("<parameters><parameter name='a'/></parameters>", "x.xml"),
            FileKind::ParametersXml
        );
        assert_eq!(
            k(
                "<parameters><setParameter name='a' value='b'/></parameters>",
                "x.xml"
            ),
            FileKind::SetParametersXml
        );
        assert_eq!(k("<configuration/>", "web.config"), FileKind::WebConfig);
        assert_eq!(
            k("<myManifest><iisApp path='a'/></myManifest>", "m.xml"),
            FileKind::ManifestXml
        );
    }

    #[test]
    fn unreadable_file_is_an_io_finding_naming_the_path() {
        let r = lint_file(
            Path::new("/nonexistent/iiswsgi/Parameters.xml"),
            &CheckOptions::default(),
        );
        assert_eq!(r.errors(), 1);
        assert!(
            r.findings.0[0].message.contains("/nonexistent/iiswsgi"),
            "{:?}",
            r.findings
        );
    }
}
