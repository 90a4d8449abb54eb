//! One binary, every CPython ≥ 3.9 the machine has (issue 15): for each version `pyenv
//! versions` lists, a venv with Flask (cached under the target dir, like `support::venv`)
//! serves `examples/flask-hello` through the IIS-emulating client and through nginx, from the
//! binary under test (`IISWSGI_TEST_BIN`, else cargo's); the PEP 3333 suite (`conformance`)
//! runs on the oldest and the newest of them through both.
//!
//! A version of [`EXPECTED`] the machine lacks is never a silent pass: the table printed at
//! the end says `NOT TESTED` in capitals, and the same lines go to
//! `<target>/tmp/cpython-matrix.txt`, which `.ci/run` prints in its summary. The figures
//! (requests per second over [`REQUESTS`] sequential keep-alive requests) describe the run;
//! nothing asserts on them (`bench/wsgi.sh` is the speed check).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use super::conformance::{CONFORMANCE_APP, GROUPS};
use super::{Gateway, IisClient, NginxGateway, Req, apps_dir};

/// The minors the project supports on Linux; each is tested when pyenv has it.
const EXPECTED: [&str; 5] = ["3.9", "3.10", "3.11", "3.12", "3.13"];

/// Requests timed per version and gateway.
const REQUESTS: u32 = 300;

/// One CPython pyenv has.
#[derive(Debug, Clone)]
struct Cpython {
    /// `3.12.1`.
    version: String,
    /// `3.12`.
    minor: String,
    /// Its `bin/python3`.
    python: PathBuf,
}

/// The CPythons ≥ 3.9 `pyenv versions --bare` lists (one per minor, the newest patch), oldest
/// first. Empty without pyenv.
fn pythons() -> &'static [Cpython] {
    static LIST: OnceLock<Vec<Cpython>> = OnceLock::new();
    LIST.get_or_init(|| {
        let Ok(out) = Command::new("pyenv").args(["versions", "--bare"]).output() else {
            return Vec::new();
        };
        let root = Command::new("pyenv")
            .arg("root")
            .output()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .unwrap_or_default();
        let mut found: Vec<((u32, u32, u32), Cpython)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let version = line.trim();
                let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
                let key = (parts.next()??, parts.next()??, parts.next()??);
                let python = root.join("versions").join(version).join("bin/python3");
                (key >= (3, 9, 0) && python.is_file()).then(|| {
                    let minor = format!("{}.{}", key.0, key.1);
                    (
                        key,
                        Cpython {
                            version: version.to_string(),
                            minor,
                            python,
                        },
                    )
                })
            })
            .collect();
        found.sort_by_key(|(k, _)| *k);
        // The newest patch of each minor.
        let mut list: Vec<Cpython> = Vec::new();
        for (_, py) in found {
            match list.last_mut() {
                Some(last) if last.minor == py.minor => *last = py,
                _ => list.push(py),
            }
        }
        list
    })
}

/// The Flask venv of `py` (`<target>/tmp/matrix-flask-py<minor>`).
fn flask_venv(py: &Cpython) -> PathBuf {
    let requirements = examples().join("flask-hello/requirements.txt");
    crate::support::venv::cached_with(
        &py.python,
        &py.minor,
        "matrix-flask",
        &["-r".as_ref(), requirements.as_ref()],
    )
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Serves flask-hello through `gw`: its pages, then [`REQUESTS`] timed GETs. Returns req/s.
fn serve_flask(gw: &mut dyn Gateway, py: &Cpython) -> f64 {
    let who = format!("{} via {}", py.version, gw.name());
    let get = |uri: &str| Req::get(uri).header("Host", b"localhost");
    let r = gw.send(&get("/"));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Hello from Flask on IIS!\n"),
        "{who}\n{}",
        gw.log()
    );
    let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let echo = Req::post("/echo", &body).header("Content-Type", b"application/octet-stream");
    assert_eq!(gw.send(&echo).body, body, "{who}: echo");
    let lines: String = (0..10).map(|i| format!("line {i}\n")).collect();
    assert_eq!(gw.send(&get("/stream")).text(), lines, "{who}: stream");
    let log = gw.log();
    assert!(
        log.contains(&format!("python: CPython {} from", py.version)),
        "{who}: the start-up log names the Python it loaded\n{log}"
    );
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let r = gw.send(&get("/"));
        assert_eq!(r.status, 200, "{who}");
    }
    f64::from(REQUESTS) / start.elapsed().as_secs_f64()
}

/// The library line of the start-up log: `… from /x/libpython3.12.so.1.0 (…)`.
fn loaded_library(log: &str) -> String {
    log.lines()
        .find_map(|l| {
            l.split_once("python: CPython ")
                .map(|(_, rest)| rest.to_string())
        })
        .unwrap_or_else(|| "?".into())
}

#[test]
fn flask_hello_on_every_cpython_through_the_iis_client_and_nginx() {
    let bin = crate::support::fcgi_client::iiswsgi_bin();
    let mut rows = Vec::new();
    let mut lines = vec![format!("CPython matrix, one binary: {}", bin.display())];
    for minor in EXPECTED {
        let Some(py) = pythons().iter().find(|p| p.minor == minor) else {
            let line = format!(
                "CPython {minor}: NOT TESTED: `pyenv versions` lists no {minor} on this machine"
            );
            eprintln!("\n#####\n##### {line}\n#####\n");
            lines.push(line);
            continue;
        };
        let venv = flask_venv(py);
        let venv_arg = venv.display().to_string();
        let extra = ["--venv", venv_arg.as_str(), "--reload-pattern", ""];
        let dir = examples().join("flask-hello");
        let mut iis = IisClient::start("hello:app", &dir, &extra);
        let iis_rate = serve_flask(&mut iis, py);
        let library = loaded_library(&iis.log());
        iis.close();
        let mut nginx = NginxGateway::start("hello:app", &dir, &extra);
        let nginx_rate = serve_flask(&mut nginx, py);
        let line = format!(
            "CPython {:<8} IIS client: pass {:>6.0} req/s | nginx: pass {:>6.0} req/s | {library}",
            py.version, iis_rate, nginx_rate
        );
        lines.push(line);
        rows.push(py.version.clone());
    }
    let extra: Vec<&Cpython> = pythons()
        .iter()
        .filter(|p| !EXPECTED.contains(&p.minor.as_str()))
        .collect();
    for py in extra {
        lines.push(format!(
            "CPython {}: present but not in the expected list (3.9–3.13); not run",
            py.version
        ));
    }
    let text = lines.join("\n");
    println!("\n{text}\n");
    let summary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cpython-matrix.txt");
    std::fs::write(&summary, format!("{text}\n")).expect("write the matrix summary");
    assert!(
        !rows.is_empty(),
        "no CPython >= 3.9 from pyenv at all: the matrix tested nothing\n{text}"
    );
}

/// The conformance suite through both gateways on the `which` end of the versions the machine
/// has (`oldest` or `newest`), every group on a fresh gateway as `conformance` runs them.
fn conformance_on(which: &str) {
    let list = pythons();
    let py = match which {
        "oldest" => list.first(),
        _ => list.last(),
    };
    let Some(py) = py else {
        eprintln!(
            "\n#####\n##### conformance on the {which} CPython: NOT TESTED, no pyenv\n#####\n"
        );
        panic!("no CPython >= 3.9 from pyenv: the {which} one cannot be tested");
    };
    let venv = flask_venv(py);
    let venv_arg = venv.display().to_string();
    let extra = ["--venv", venv_arg.as_str()];
    for (name, group) in GROUPS {
        let mut iis = IisClient::start(CONFORMANCE_APP, &apps_dir(), &extra);
        group(&mut iis);
        assert!(
            iis.log()
                .contains(&format!("python: CPython {} from", py.version)),
            "{name} ran on CPython {}\n{}",
            py.version,
            iis.log()
        );
        iis.close();
        let mut nginx = NginxGateway::start(CONFORMANCE_APP, &apps_dir(), &extra);
        group(&mut nginx);
    }
    println!(
        "conformance: all {} groups passed on CPython {} ({which})",
        GROUPS.len(),
        py.version
    );
}

#[test]
fn conformance_on_the_oldest_cpython() {
    conformance_on("oldest");
}

#[test]
fn conformance_on_the_newest_cpython() {
    conformance_on("newest");
}

/// Today's isolation guarantees, kept without `PyConfig` (interpreter.rs): on the oldest
/// CPython (so the binary re-executes itself), a stray `PYTHONHOME` and `PYTHONOPTIMIZE` do not
/// reach the start but are back in `os.environ` for the app, user site-packages are off, the C
/// locale is coerced to UTF-8, and `LD_LIBRARY_PATH` is the caller's again, with no marker of
/// the re-execution left behind.
#[test]
fn the_start_ignores_python_variables_and_leaves_the_environment_as_given() {
    use crate::support::iis_client::{IisApp, IisProcess, IisRequest};
    let Some(py) = pythons().first() else {
        panic!("no CPython >= 3.9 from pyenv: NOT TESTED");
    };
    let venv = flask_venv(py);
    let dir = super::temp_dir("isolation");
    let log = dir.path().join("iiswsgi.log");
    let mut cmd = Command::new(crate::support::fcgi_client::iiswsgi_bin());
    cmd.args([
        "run",
        "--app",
        "lifecycle:application",
        "--reload-pattern",
        "",
    ])
    .arg("--venv")
    .arg(&venv)
    .arg("--chdir")
    .arg(apps_dir())
    .arg("--log")
    .arg(&log)
    .env("PYTHONHOME", "/nonexistent-python-home")
    .env("PYTHONOPTIMIZE", "2")
    .env("LD_LIBRARY_PATH", "/caller/lib")
    .env_remove("PYTHONNOUSERSITE")
    .env_remove("LANG")
    .env_remove("LC_ALL")
    .env_remove("LC_CTYPE");
    let mut iis = IisProcess::spawn(cmd, IisApp::sub("/app"), dir.path(), vec![log.clone()]);
    let r = iis.send(&IisRequest::get("/app/facts"));
    let text = r.cgi.text();
    let facts: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{e}: {text}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    iis.close_pipe_and_expect_clean_exit();
    assert_eq!(facts["full_version"], py.version.as_str(), "{facts}");
    assert_eq!(facts["optimize"], 0, "PYTHONOPTIMIZE ignored: {facts}");
    assert_eq!(facts["no_user_site"], 1, "no user site-packages: {facts}");
    assert_eq!(facts["fs_encoding"], "utf-8", "C locale coerced: {facts}");
    let env = &facts["env"];
    assert_eq!(
        env["PYTHONHOME"], "/nonexistent-python-home",
        "restored: {facts}"
    );
    assert_eq!(env["PYTHONOPTIMIZE"], "2", "restored: {facts}");
    assert_eq!(env["PYTHONNOUSERSITE"], serde_json::Value::Null, "{facts}");
    assert_eq!(env["LD_LIBRARY_PATH"], "/caller/lib", "{facts}");
    for marker in [
        "IISWSGI_LIBPYTHON",
        "IISWSGI_LIBPYTHON_TMP",
        "IISWSGI_ORIG_LD_LIBRARY_PATH",
    ] {
        assert_eq!(env[marker], serde_json::Value::Null, "{marker}: {facts}");
    }
    let log = std::fs::read_to_string(&log).expect("log");
    assert!(
        log.contains("re-executed once to load the venv's Python")
            || py.minor == env!("IISWSGI_PY_VERSION"),
        "{log}"
    );
}

/// `build.rs` links the stable-ABI name: the binary records `NEEDED libpython3.so` and no
/// versioned libpython (when the build Python has a `libpython3.so`, as pyenv's do), and a
/// `DT_RUNPATH` (which `LD_LIBRARY_PATH` overrides, as the re-execution needs), never a
/// `DT_RPATH` (which would override `LD_LIBRARY_PATH`).
#[test]
fn the_binary_records_libpython3_so_and_a_runpath() {
    let bin = crate::support::fcgi_client::iiswsgi_bin();
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&bin)
        .output()
        .expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!(
        "$ readelf -d {} | grep -E 'NEEDED|RPATH|RUNPATH'",
        bin.display()
    );
    for line in text
        .lines()
        .filter(|l| l.contains("NEEDED") || l.contains("PATH)"))
    {
        println!("{line}");
    }
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)") && l.contains("libpython"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    let build_has_stable = Path::new(env!("IISWSGI_PY_EXECUTABLE"))
        .parent()
        .and_then(Path::parent)
        .is_some_and(|prefix| prefix.join("lib/libpython3.so").exists());
    if build_has_stable {
        assert_eq!(needed, ["libpython3.so"], "{text}");
    } else {
        assert_eq!(needed.len(), 1, "{text}");
    }
    assert!(
        !text.contains("(RPATH)"),
        "DT_RPATH would beat LD_LIBRARY_PATH:\n{text}"
    );
}
