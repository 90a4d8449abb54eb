//! The app's venv as pip sees it: the environment of an activated venv, and whether the venv
//! still satisfies what `iiswsgi install` pip-installed into it (issue 14 item 8): a package uninstalled by hand, or a dependency broken since, makes the next install
//! reinstall instead of saying "same as last install".
//!
//! pip answers, offline: `pip install --no-index -r <requirements>` succeeds only when every
//! requirement and what it needs is installed (with no index it cannot fetch anything, so it
//! changes nothing when something is missing), and `pip check` finds broken dependencies. A
//! project installed from its folder (no requirements file) gets `pip check` only.

use std::path::Path;
use std::process::Command;

use crate::iis::python;

/// `PATH` with the venv's executables first, and `VIRTUAL_ENV`: the environment of an
/// activated venv, for pip and the post-install commands.
pub(super) fn activated_env(venv: &Path, windows: bool) -> Vec<(String, String)> {
    let bin = python::venv_bin(venv, windows);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let joined = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path)))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    vec![
        ("PATH".into(), joined),
        ("VIRTUAL_ENV".into(), venv.display().to_string()),
    ]
}

/// What pip says is wrong with `venv` against `pip_args` (`-r <file>` or the project folder),
/// run in `app_dir`; `None`: nothing wrong.
pub(super) fn venv_problem(
    venv: &Path,
    windows: bool,
    app_dir: &Path,
    pip_args: &[String],
) -> Option<String> {
    let python = python::venv_python(venv, windows);
    let env = activated_env(venv, windows);
    let mut checks = vec![vec!["-m", "pip", "check", "--disable-pip-version-check"]];
    if pip_args.first().is_some_and(|a| a == "-r") {
        let mut install = vec![
            "-m",
            "pip",
            "install",
            "--no-index",
            "--disable-pip-version-check",
            "--no-input",
        ];
        install.extend(pip_args.iter().map(String::as_str));
        checks.insert(0, install);
    }
    for args in checks {
        let mut c = Command::new(&python);
        c.args(&args)
            .current_dir(app_dir)
            .env_remove("PYTHONHOME")
            .env("PIP_NO_INDEX", "1");
        for (k, v) in &env {
            c.env(k, v);
        }
        match c.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let why = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                return Some(format!("`pip {}`: {why}", args[2]));
            }
            Err(e) => return Some(format!("cannot run {}: {e}", python.display())),
        }
    }
    None
}
