//! Doctor's checks of the app itself rather than of IIS: does `[wsgi] app` import in the
//! app's venv ([`crate::probe`], the same probe as `iiswsgi check --import`).

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
