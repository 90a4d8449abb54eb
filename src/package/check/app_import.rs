//! Rules I01–I07 of `iiswsgi check --import`: `[wsgi] app` imports in the app's venv and is a
//! WSGI callable. The probe itself ([`crate::probe`]) is shared with `iiswsgi doctor`; this
//! file only decides where the app folder is on the build machine and turns the verdict into
//! findings.
//!
//! The app folder is `[package] root` under the manifest's folder (what `package` zips and the
//! server's `iiswsgi run` uses as its working directory); the interpreter is chosen as
//! `iiswsgi run` would choose it: `--venv`, else `[wsgi] venv`, else the venv holding this
//! iiswsgi, else a base `python3` on `PATH`.

use std::path::Path;

use super::Findings;
use crate::manifest::Manifest;
use crate::probe::{self, Outcome, ProbeRequest, Problem};

/// Imports the app of `manifest` (read from `manifest_path`); returns the findings and, when it
/// imported, a one-line summary of what was found.
pub fn lint(
    manifest: &Manifest,
    manifest_path: &Path,
    venv: Option<&Path>,
) -> (Findings, Option<String>) {
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let app_dir = base.join(&manifest.package.root);
    let app_dir = std::path::absolute(&app_dir).unwrap_or(app_dir);
    let label = manifest_path.display().to_string();
    let mut f = Findings::default();
    let located = crate::venv::this_venv();
    let interpreter = match probe::interpreter(manifest, &app_dir, venv, located.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            push(&mut f, &label, &Problem::interpreter(&e));
            return (f, None);
        }
    };
    let request = ProbeRequest::for_manifest(manifest, &app_dir, interpreter.python.clone());
    match probe::probe(&request) {
        Ok(Outcome::Imported(i)) => {
            let summary = format!(
                "ok: {label}: `{}` imports with Python {} ({}): {}",
                request.target, i.python, interpreter.source, i.object
            );
            (f, Some(summary))
        }
        Ok(Outcome::Failed(p)) => {
            push(&mut f, &label, &p);
            (f, None)
        }
        Err(e) => {
            push(&mut f, &label, &Problem::probe(&e));
            (f, None)
        }
    }
}

fn push(f: &mut Findings, label: &str, p: &Problem) {
    let mut message = format!("[wsgi] app: {}\n  help: {}", p.message, p.hint);
    if let Some(detail) = &p.detail {
        for line in detail.lines() {
            message.push_str("\n  | ");
            message.push_str(line);
        }
    }
    f.error(p.kind.rule(), label.to_string(), message);
}
