//! Doctor's checks of the app itself rather than of IIS: does `[wsgi] app` import in the
//! app's venv ([`crate::probe`], the same probe as `iiswsgi check --import`), and is every
//! `[[iis.static]]` folder there and handed to IIS's StaticFileModule by web.config.

use std::path::Path;

use super::{Check, Facts, Status};
use crate::probe::{self, InterpreterError, Outcome, ProbeRequest, Problem};

/// `app-import`: imports the app the way `iiswsgi run` will, in a child process.
pub(super) fn import_check(facts: &Facts, dir: &Path, iiswsgi_exe: &str) -> Check {
    const ID: &str = "app-import";
    let Some(manifest) = &facts.manifest else {
        return Check::skip(ID, "no usable manifest");
    };
    let located = crate::venv::venv_of_executable(Path::new(iiswsgi_exe));
    let interpreter = match probe::interpreter(manifest, dir, None, located.as_deref()) {
        Ok(i) => i,
        // The venv check above already fails for these and says how to fix them.
        Err(e @ InterpreterError::NoVenv(_)) => return Check::skip(ID, e.to_string()),
        Err(e @ InterpreterError::NoVenvPython(_)) => {
            return Check::skip(
                ID,
                format!("{e}, so the import cannot be tried (iiswsgi run itself does not need it)"),
            );
        }
        Err(e) => return Check::skip(ID, e.to_string()),
    };
    let request = ProbeRequest::for_manifest(manifest, dir, interpreter.python.clone());
    let problem = match probe::probe(&request) {
        Ok(Outcome::Imported(i)) => {
            return Check::ok(
                ID,
                format!(
                    "`{}` imports with Python {} ({}): {}",
                    request.target, i.python, interpreter.source, i.object
                ),
            );
        }
        Ok(Outcome::Failed(p)) => p,
        Err(e) => Problem::probe(&e),
    };
    let mut detail = problem.message.clone();
    if let Some(last) = problem.detail.as_deref().and_then(|d| d.lines().last())
        && !detail.contains(last.trim())
    {
        detail.push_str(&format!(" [{}]", last.trim()));
    }
    Check::bad(ID, Status::Fail, detail, problem.hint)
}

/// `static-files`: each `[[iis.static]]` folder exists and web.config gives it to IIS.
pub(super) fn static_check(facts: &Facts, dir: &Path) -> Option<Check> {
    const ID: &str = "static-files";
    let manifest = facts.manifest.as_ref()?;
    if manifest.iis.static_files.is_empty() {
        return None;
    }
    let served = match &facts.web_config {
        Some(Ok(wc)) => wc.static_locations(),
        _ => return Some(Check::skip(ID, "no readable web.config")),
    };
    let mut missing_location = Vec::new();
    let mut missing_folder = Vec::new();
    for s in &manifest.iis.static_files {
        if !served
            .iter()
            .any(|l| l.eq_ignore_ascii_case(s.path.as_str()))
        {
            missing_location.push(s.path.to_string());
        }
        if !s.path.under(dir).is_dir() {
            missing_folder.push(s.path.to_string());
        }
    }
    Some(if !missing_location.is_empty() {
        Check::bad(
            ID,
            Status::Fail,
            format!(
                "web.config has no <location> handing {} to IIS's StaticFileModule: Python \
                 serves those files (or answers 404 for them)",
                missing_location.join(", ")
            ),
            "run `iiswsgi install` with a package built by this iiswsgi (its web.config.hbs \
             renders one <location> per [[iis.static]])",
        )
    } else if !missing_folder.is_empty() {
        Check::bad(
            ID,
            Status::Warn,
            format!(
                "{} does not exist in the app folder: IIS answers 404 for every file under it",
                missing_folder.join(", ")
            ),
            "create it: for Django run `python manage.py collectstatic --noinput` with \
             STATIC_ROOT pointing there (e.g. in [package] post-install)",
        )
    } else {
        let list: Vec<String> = manifest
            .iis
            .static_files
            .iter()
            .map(|s| format!("{}/", s.path))
            .collect();
        Check::ok(ID, format!("served by IIS: {}", list.join(", ")))
    })
}
