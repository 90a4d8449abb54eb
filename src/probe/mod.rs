//! The import probe: does `[wsgi] app` import, in the app's own venv, before anyone deploys or
//! serves it? Used by `iiswsgi check --import` (the packaging wing, on the build machine) and
//! `iiswsgi doctor` (the IIS wing, on the server).
//!
//! The probe runs the venv's own `python` in a child process (so no PyO3 and no embedded
//! interpreter are needed here, and a crashing or hanging import cannot take iiswsgi with it)
//! with `probe.py`, which imports the target as `iiswsgi run` would (the app folder first on
//! `sys.path`, then `[wsgi] python-paths`, `[wsgi.environment]` set) and writes one JSON
//! object. This side turns that object into a [`Problem`] worded for the user: the missing
//! module and whether it is the app's own or a dependency the venv lacks, the callables a
//! module really has, an ASGI app (`async def`, `(scope, receive, send)`), a factory whose
//! arguments do not fit, a WSGI callable that cannot take `(environ, start_response)`.
//!
//! Why shared ground and not a wing: both the package wing (`check`) and the IIS wing
//! (`doctor`) need it, the architecture lets neither name the other, and it depends only on
//! [`crate::manifest`] and the process: it is no part of the package/install contract
//! ([`crate::deploy`]), so it does not belong there either.
//!
//! Bounded like every reader of outside input: the result is read up to [`MAX_RESULT_BYTES`],
//! the child's stderr keeps its last [`MAX_STDERR_BYTES`], and an import that takes longer
//! than the timeout ([`DEFAULT_TIMEOUT`]) is killed and reported. The app's import code does
//! run, as it would under the server: that is the point of the probe.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::manifest::{Manifest, Venv};

mod words;

pub use words::{Kind, Problem};

/// The script the child runs (`python -c`).
pub const PROBE_SCRIPT: &str = include_str!("probe.py");
/// How long an import may take before the probe gives up on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of the child's result read.
pub const MAX_RESULT_BYTES: usize = 1 << 20;
/// Most bytes of the child's stderr kept (its end).
pub const MAX_STDERR_BYTES: usize = 16 << 10;

/// The Python that imports the app, and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpreter {
    /// The executable.
    pub python: PathBuf,
    /// Where it came from.
    pub source: Source,
}

/// Where the probe's interpreter came from, in `iiswsgi run`'s order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--venv DIR`.
    Flag(PathBuf),
    /// `[wsgi] venv` of the manifest.
    ManifestVenv(PathBuf),
    /// The venv whose `bin/` (`Scripts\`) holds the iiswsgi binary.
    BinaryVenv(PathBuf),
    /// No venv: the interpreter found on `PATH` (or the one this build embeds).
    Base,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(v) => write!(f, "the venv {} (--venv)", v.display()),
            Source::ManifestVenv(v) => write!(f, "the venv {} ([wsgi] venv)", v.display()),
            Source::BinaryVenv(v) => write!(f, "the venv {} (iiswsgi's own)", v.display()),
            Source::Base => f.write_str("no venv: the base interpreter"),
        }
    }
}

/// Why no interpreter could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpreterError {
    /// The venv folder has no `pyvenv.cfg`.
    #[error("the venv {} does not exist (no pyvenv.cfg)", .0.display())]
    NoVenv(PathBuf),
    /// The venv has no interpreter of its own (a copied or half-made venv).
    #[error("the venv {} has no python executable (bin/python or Scripts\\python.exe)", .0.display())]
    NoVenvPython(PathBuf),
    /// Without a venv, no `python3` was found on `PATH`.
    #[error("no venv is configured and no Python interpreter was found on PATH")]
    NoPython,
}

/// The interpreter `iiswsgi run` would import the app with, in its order: `flag` (`--venv`),
/// the manifest's venv, the venv `located` (where the iiswsgi binary sits), else a base
/// interpreter on `PATH`.
pub fn interpreter(
    manifest: &Manifest,
    app_dir: &Path,
    flag: Option<&Path>,
    located: Option<&Path>,
) -> Result<Interpreter, InterpreterError> {
    let configured = manifest.wsgi.venv.as_ref().map(|v| match v {
        Venv::InApp(rel) => rel.under(app_dir),
        Venv::Absolute(dir) => PathBuf::from(dir),
    });
    let (venv, source) = match (flag, configured, located) {
        (Some(v), _, _) => (v.to_path_buf(), Source::Flag(v.to_path_buf())),
        (None, Some(v), _) => (v.clone(), Source::ManifestVenv(v)),
        (None, None, Some(v)) => (v.to_path_buf(), Source::BinaryVenv(v.to_path_buf())),
        (None, None, None) => {
            return base_python()
                .map(|python| Interpreter {
                    python,
                    source: Source::Base,
                })
                .ok_or(InterpreterError::NoPython);
        }
    };
    if !venv.join("pyvenv.cfg").is_file() {
        return Err(InterpreterError::NoVenv(venv));
    }
    venv_python(&venv)
        .map(|python| Interpreter { python, source })
        .ok_or(InterpreterError::NoVenvPython(venv))
}

/// The venv's own interpreter: `Scripts\python.exe` (CPython on Windows) or `bin/python3`,
/// `bin/python`.
pub fn venv_python(venv: &Path) -> Option<PathBuf> {
    ["Scripts/python.exe", "bin/python3", "bin/python"]
        .iter()
        .map(|rel| venv.join(rel))
        .find(|p| p.is_file())
}

/// Without a venv: the CPython this build embeds when it is still where it was built,
/// else `python3.X` (the embedded minor), `python3`, `python` on `PATH`.
fn base_python() -> Option<PathBuf> {
    if let Some(exe) = option_env!("IISWSGI_PY_EXECUTABLE").map(PathBuf::from)
        && exe.is_file()
    {
        return Some(exe);
    }
    let mut names = Vec::new();
    if let Some(v) = crate::PYTHON_VERSION {
        names.push(format!("python{v}"));
    }
    names.extend(["python3".to_string(), "python".to_string()]);
    let path = std::env::var_os("PATH")?;
    for name in names {
        for dir in std::env::split_paths(&path) {
            for candidate in [dir.join(&name), dir.join(format!("{name}.exe"))] {
                if candidate.is_file() {
                    return Some(candidate);
                }
            }
        }
    }
    None
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// The interpreter.
    pub python: PathBuf,
    /// The app folder: the working directory and the first `sys.path` entry.
    pub app_dir: PathBuf,
    /// `module:callable`, `module:factory()` or `module:factory(literal args)`.
    pub target: String,
    /// `[wsgi] python-paths`, resolved.
    pub python_paths: Vec<PathBuf>,
    /// `[wsgi.environment]`.
    pub environment: BTreeMap<String, String>,
    /// How long the import may take.
    pub timeout: Duration,
}

impl ProbeRequest {
    /// The request for `manifest`'s app in `app_dir`, run by `python`.
    pub fn for_manifest(manifest: &Manifest, app_dir: &Path, python: PathBuf) -> Self {
        Self {
            python,
            app_dir: app_dir.to_path_buf(),
            target: manifest.wsgi.app.to_string(),
            python_paths: manifest
                .wsgi
                .python_paths
                .iter()
                .map(|p| p.under(app_dir))
                .collect(),
            environment: manifest.wsgi.environment.clone(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The app imported and is a WSGI callable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// What the target is (`flask.app.Flask`, `function app.application`).
    pub object: String,
    /// Its call signature, when Python can tell (`(environ, start_response)`).
    pub signature: String,
    /// The interpreter's version (`3.11.7`).
    pub python: String,
    /// `sys.prefix`: the venv it ran in.
    pub prefix: String,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Imports and is callable as `app(environ, start_response)`.
    Imported(Imported),
    /// Does not; why, worded for the user.
    Failed(Problem),
}

/// The child process could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The interpreter could not be started.
    #[error("cannot run {}", .python.display())]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The import took longer than allowed; the child was killed.
    #[error(
        "importing did not finish within {} s (killed); an import that waits on a database or \
         the network also stalls the server's start{}",
        .seconds,
        stderr_tail(.stderr)
    )]
    Timeout {
        /// The limit.
        seconds: u64,
        /// The end of the child's stderr.
        stderr: String,
    },
    /// The child ended without a result (a crash, `os._exit` in the app, a broken venv).
    #[error("{} exited ({status}) without a result{}", .python.display(), stderr_tail(.stderr))]
    NoResult {
        /// The interpreter.
        python: PathBuf,
        /// How it ended.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
}

fn stderr_tail(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends with:\n{}", last_lines(t, 12))
    }
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The JSON object `probe.py` writes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawResult {
    pub ok: bool,
    pub code: String,
    pub message: String,
    pub module: String,
    pub missing: String,
    pub own: bool,
    pub sys_path: Vec<String>,
    pub exception: String,
    pub traceback: String,
    pub owner: String,
    pub attribute: String,
    pub callables: Vec<String>,
    pub name: String,
    pub object: String,
    pub signature: String,
    pub factory: bool,
    pub python: String,
    pub prefix: String,
}

/// Runs the probe: starts `request.python` on [`PROBE_SCRIPT`] and reads its verdict.
pub fn probe(request: &ProbeRequest) -> Result<Outcome, ProbeError> {
    // Absolute, so the child's working directory (the app folder) cannot change its meaning.
    let python = std::path::absolute(&request.python).unwrap_or_else(|_| request.python.clone());
    let mut cmd = Command::new(&python);
    // -E: ignore PYTHON* variables, as the embedded interpreter does (use_environment = 0);
    // -B: write no __pycache__ into the project being checked.
    cmd.arg("-E")
        .arg("-B")
        .arg("-c")
        .arg(PROBE_SCRIPT)
        .arg(&request.target)
        .arg(&request.app_dir)
        .args(&request.python_paths)
        .current_dir(&request.app_dir)
        .envs(&request.environment)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| ProbeError::Spawn {
        python: request.python.clone(),
        source,
    })?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = child.stderr.take() {
        let keep = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut kept = keep.lock().unwrap_or_else(PoisonError::into_inner);
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(MAX_STDERR_BYTES);
                kept.drain(..excess);
            }
        });
    }
    let (done, finished) = mpsc::channel();
    if let Some(pipe) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.take(MAX_RESULT_BYTES as u64).read_to_end(&mut out);
            let _ = done.send(out);
        });
    }
    let started = Instant::now();
    let result = finished.recv_timeout(request.timeout);
    let stderr_text = || {
        String::from_utf8_lossy(&stderr.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    };
    let out = match result {
        Ok(out) => out,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ProbeError::Timeout {
                seconds: request.timeout.as_secs().max(started.elapsed().as_secs()),
                stderr: stderr_text(),
            });
        }
    };
    let status = child.wait().map_err(|source| ProbeError::Spawn {
        python: request.python.clone(),
        source,
    })?;
    match serde_json::from_slice::<RawResult>(&out) {
        Ok(raw) if !raw.python.is_empty() => Ok(words::outcome(raw, request)),
        _ => Err(ProbeError::NoResult {
            python: request.python.clone(),
            status: status.to_string(),
            stderr: stderr_text(),
        }),
    }
}

#[cfg(test)]
mod tests;
