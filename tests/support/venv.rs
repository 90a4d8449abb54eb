//! Venvs the tests build from PyPI once and reuse across runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A venv with Flask and Django from PyPI (`<target>/tmp/wsgi-frameworks-py<minor>`), made
/// once per run for every module that needs it (one call site, so two tests never build it
/// at the same time).
pub fn frameworks() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        cached(
            "wsgi-frameworks",
            &["Flask>=3.0,<4".as_ref(), "Django>=4.2,<6".as_ref()],
        )
    })
}

/// A fresh venv of the embedded Python at `dir` with nothing installed (no pip either).
pub fn empty(dir: &Path) {
    let status = Command::new(env!("IISWSGI_PY_EXECUTABLE"))
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .status()
        .expect("python -m venv");
    assert!(status.success(), "python -m venv --without-pip failed");
}

/// `<target>/tmp/<name>-py<minor>`: a venv of the embedded Python with `pip install
/// <pip_args>` done, built on first use. A venv records absolute paths, so it is built where
/// it lives; a ready marker records a finished build, and without it (an interrupted run) the
/// folder is rebuilt from scratch.
pub fn cached(name: &str, pip_args: &[&OsStr]) -> PathBuf {
    cached_with(
        Path::new(env!("IISWSGI_PY_EXECUTABLE")),
        env!("IISWSGI_PY_VERSION"),
        name,
        pip_args,
    )
}

/// [`cached`] for another interpreter: `<target>/tmp/<name>-py<minor>` made by `python`.
pub fn cached_with(python: &Path, minor: &str, name: &str, pip_args: &[&OsStr]) -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-py{minor}"));
    let ready = venv.join(".iiswsgi-ready");
    if ready.exists() {
        return venv;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let status = Command::new(python)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python -m venv");
    assert!(status.success(), "python -m venv failed");
    let status = Command::new(venv.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(pip_args)
        .status()
        .expect("pip");
    assert!(
        status.success(),
        "pip install {pip_args:?} from PyPI failed"
    );
    std::fs::write(&ready, "").expect("ready marker");
    venv
}
