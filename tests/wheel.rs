//! The binary as `pip install iiswsgi` leaves it: in a venv's `bin/`, serving that venv without
//! `--venv` (issue #8).
//!
//! Which binary: with `IISWSGI_WHEEL_BIN=/path/to/venv/bin/iiswsgi` (set by `.ci/wheels`, which
//! pip-installs the built wheel and Flask into a fresh venv), that installed binary; otherwise
//! the cargo-built binary copied into a venv these tests make (cached under the target dir,
//! Flask from PyPI), so plain `cargo test` runs the same checks rather than skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::iis_client::{IisApp, IisProcess, IisRequest};

/// The binary under test and the venv it sits in.
struct Installed {
    bin: PathBuf,
    venv: PathBuf,
    /// `"wheel"` or `"cargo"`, for the printed figures.
    origin: &'static str,
}

fn installed() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| match std::env::var_os("IISWSGI_WHEEL_BIN") {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            let venv = bin
                .parent()
                .and_then(Path::parent)
                .expect("IISWSGI_WHEEL_BIN is <venv>/bin/iiswsgi")
                .to_path_buf();
            assert!(
                venv.join("pyvenv.cfg").is_file(),
                "IISWSGI_WHEEL_BIN={} is not in a venv's bin/",
                bin.display()
            );
            Installed {
                bin,
                venv,
                origin: "wheel",
            }
        }
        None => copied_into_venv(),
    })
}

/// A venv with Flask (`<target>/tmp/wheel-venv-py<minor>`, made once), and the cargo-built
/// binary copied into its `bin/` on every run (a copy, not a symlink: the binary locates itself
/// through `/proc/self/exe`, which resolves symlinks).
fn copied_into_venv() -> Installed {
    let requirements = flask_hello().join("requirements.txt");
    let venv = crate::support::venv::cached("wheel-venv", &["-r".as_ref(), requirements.as_ref()]);
    let bin = venv.join("bin/iiswsgi");
    let _ = std::fs::remove_file(&bin);
    std::fs::copy(env!("CARGO_BIN_EXE_iiswsgi"), &bin).expect("copy iiswsgi into the venv");
    Installed {
        bin,
        venv,
        origin: "cargo",
    }
}

fn flask_hello() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flask-hello")
}

/// The files of examples/flask-hello copied into `dir`, with the manifest's `venv` key
/// commented out: the app's venv is then the one the binary sits in.
fn flask_hello_naming_no_venv(dir: &Path) {
    for entry in std::fs::read_dir(flask_hello()).expect("examples/flask-hello") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let name = path.file_name().expect("file name");
            std::fs::copy(&path, dir.join(name)).expect("copy the example");
        }
    }
    crate::support::replace_in_file(
        &dir.join("iiswsgi.toml"),
        "\nvenv = \".venv\"\n",
        "\n# venv = \".venv\"\n",
    );
}

/// `venv` as the binary sees it (`/proc/self/exe` is canonical).
fn canonical(venv: &Path) -> PathBuf {
    venv.canonicalize().expect("canonical venv")
}

#[test]
fn version_names_the_venv_the_binary_sits_in() {
    let it = installed();
    let out = Command::new(&it.bin)
        .arg("--version")
        .env_remove("IISWSGI_VENV")
        .output()
        .expect("iiswsgi --version");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            format!(
                "iiswsgi {} (embeds CPython 3.9 or later through the stable ABI; built with {})",
                env!("CARGO_PKG_VERSION"),
                env!("IISWSGI_PY_VERSION")
            )
            .as_str()
        ),
        "the first line is stable for scripts\n{text}"
    );
    assert_eq!(
        lines.get(1).copied(),
        Some(
            format!(
                "venv: {} (from the binary's location)",
                canonical(&it.venv).display()
            )
            .as_str()
        ),
        "{text}"
    );
    println!("{} binary --version:\n{text}", it.origin);
}

#[test]
fn version_outside_a_venv_says_none() {
    let out = Command::new(env!("CARGO_BIN_EXE_iiswsgi"))
        .arg("--version")
        .env_remove("IISWSGI_VENV")
        .output()
        .expect("iiswsgi --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().nth(1), Some("venv: none"), "{text}");
}

#[test]
fn explicit_venv_beats_the_binary_location() {
    let it = installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-venv");
    let out = Command::new(&it.bin)
        .args([
            "run",
            "--app",
            "hello:app",
            "--log",
            "-",
            "--reload-pattern",
            "",
        ])
        .arg(format!("--listen=unix:{}", dir.path().join("s").display()))
        .arg("--venv")
        .arg(&missing)
        .arg("--chdir")
        .arg(flask_hello())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("iiswsgi run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("the venv {} cannot be opened", missing.display())),
        "the --venv given, not the binary's venv, is used\n{stderr}"
    );
}

/// The IIS-emulating client starts the installed binary as IIS would (no `--venv`: the
/// binary's venv is the app's) and sends the Flask example real requests.
#[test]
fn installed_binary_serves_flask_hello_from_its_own_venv_through_iis() {
    let it = installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = tempfile::tempdir().expect("tempdir");
    flask_hello_naming_no_venv(app.path());
    let log = dir.path().join("iiswsgi.log");
    let mut cmd = Command::new(&it.bin);
    cmd.arg("run")
        .arg("--manifest")
        .arg(app.path().join("iiswsgi.toml"))
        .arg("--log")
        .arg(&log)
        .args(["--reload-pattern", ""])
        .env_remove("IISWSGI_VENV");
    let mut iis = IisProcess::spawn(cmd, IisApp::sub("/hello"), dir.path(), vec![log.clone()]);

    let gets = 200;
    for i in 0..gets {
        let r = iis.send(&IisRequest::get("/hello/"));
        assert_eq!(
            (r.browser_status(), r.cgi.text()),
            (200, "Hello from Flask on IIS!\n".to_owned()),
            "GET #{i}"
        );
    }
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let posts = 20;
    for i in 0..posts {
        let r = iis.send(&IisRequest::post(
            "/hello/echo",
            "application/octet-stream",
            body.clone(),
        ));
        assert_eq!(r.browser_status(), 200, "POST #{i}");
        assert!(r.cgi.body == body, "POST #{i}: echo differs");
    }
    let r = iis.send(&IisRequest::get("/hello/stream"));
    let expected: String = (0..10).map(|i| format!("line {i}\n")).collect();
    assert_eq!((r.browser_status(), r.cgi.text()), (200, expected));
    let served = iis.served;
    iis.close_pipe_and_expect_clean_exit();

    let text = std::fs::read_to_string(&log).expect("log");
    let venv = canonical(&it.venv);
    assert!(
        text.contains(&format!(
            "venv: {} (from the binary's location)",
            venv.display()
        )),
        "the log names the venv and why\n{text}"
    );
    assert!(
        text.contains(&format!("sys.prefix {} ", venv.display())),
        "Python runs in the binary's venv\n{text}"
    );
    println!(
        "{} binary {} served {served} requests through the IIS client \
         ({gets} GET /, {posts} POST /echo of {} bytes, 1 streamed GET) from venv {}",
        it.origin,
        it.bin.display(),
        body.len(),
        venv.display()
    );
}

/// `iis enable` run by the binary in a venv registers that binary as `fullPath` and, with a
/// manifest that names no venv, puts that venv's Python on the FastCGI `PATH` (off Windows the
/// appcmd lines are printed, a dry run).
#[test]
fn iis_enable_registers_the_binary_and_the_python_of_its_venv() {
    let it = installed();
    let dir = tempfile::tempdir().expect("tempdir");
    flask_hello_naming_no_venv(dir.path());
    let out = Command::new(&it.bin)
        .args(["iis", "enable"])
        .arg(dir.path())
        .args(["--physical-path", r"C:\inetpub\wwwroot\hello"])
        .args(["--site", "Default Web Site/hello"])
        .output()
        .expect("iiswsgi iis enable");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exe = it.bin.canonicalize().expect("canonical binary");
    assert!(
        text.contains(&format!("[fullPath='{}',", exe.display())),
        "fullPath is this binary\n{text}"
    );
    let venv = canonical(&it.venv);
    let cfg = std::fs::read_to_string(venv.join("pyvenv.cfg")).expect("pyvenv.cfg");
    let home = cfg
        .lines()
        .find_map(|l| l.split_once('=').filter(|(k, _)| k.trim() == "home"))
        .map(|(_, v)| v.trim().to_owned())
        .expect("home in pyvenv.cfg");
    assert!(
        text.contains(&format!(
            "Python DLL folder from {}",
            venv.join("pyvenv.cfg").display()
        )) && text.contains(&format!("name='PATH',value='{home};")),
        "PATH names the Python of the binary's venv ({home})\n{text}"
    );
}
