//! Start-up, environment and shutdown: `--venv` selection and refusal, the eager import on the
//! main thread, 503 while an import fails, reload after the in-flight request, `SystemExit`,
//! `atexit` and the host keeping SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::{
    Gateway, IisGateway, NginxGateway, Req, apps_dir, build_python, temp_dir, wait_for_log,
};
use crate::support::fcgi_client::{self as fc, Server, iiswsgi_bin, wait_for_path};
use crate::support::wait;

/// A fresh app directory holding copies of `files` from `tests/conformance/apps`.
fn app_copy(files: &[&str]) -> tempfile::TempDir {
    let dir = temp_dir("app");
    for f in files {
        std::fs::copy(apps_dir().join(f), dir.path().join(f)).expect("copy app");
    }
    dir
}

/// `python -m venv --without-pip DIR` with the build's interpreter, plus a marker module in its
/// site-packages.
fn make_venv(dir: &Path) -> PathBuf {
    let venv = dir.join("venv");
    let status = Command::new(build_python())
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("python -m venv");
    assert!(status.success(), "venv creation failed");
    let site = std::fs::read_dir(venv.join("lib"))
        .expect("venv lib")
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("site-packages");
    std::fs::write(site.join("iiswsgi_marker.py"), "VALUE = 42\n").expect("marker");
    venv.canonicalize().expect("canonical venv")
}

fn wait_exit(server: Server, limit: Duration) -> std::process::ExitStatus {
    server.wait(limit).0
}

#[test]
fn venv_selection_puts_the_venv_first_and_the_request_on_the_main_thread() {
    let dir = temp_dir("venv");
    let venv = make_venv(dir.path());
    let venv_arg = venv.display().to_string();
    let mut gw = IisGateway::start("lifecycle:application", &apps_dir(), &["--venv", &venv_arg]);
    let facts = gw.send(&Req::get("/facts")).json();
    assert_eq!(
        facts["prefix"],
        json!(venv.display().to_string()),
        "sys.prefix is the venv"
    );
    assert_eq!(
        facts["executable"],
        json!(venv.join("bin/python").display().to_string())
    );
    assert_eq!(
        facts["marker"],
        json!(42),
        "the venv's site-packages are on sys.path"
    );
    assert_eq!(facts["argv"], json!(["iiswsgi"]));
    assert_eq!(
        facts["import_thread"],
        json!("MainThread"),
        "imported eagerly on the main thread"
    );
    assert_eq!(
        facts["request_on_main_thread"],
        json!(true),
        "IIS requests run on the main thread"
    );
    assert_eq!(
        facts["path0"],
        json!(apps_dir().display().to_string()),
        "--chdir first on sys.path"
    );
    assert_eq!(
        facts["cwd"],
        json!(apps_dir().display().to_string()),
        "--chdir is the cwd"
    );
    let log = gw.log();
    assert!(
        log.contains(&format!("sys.prefix {}", venv.display())),
        "start-up facts logged:\n{log}"
    );
}

#[test]
fn no_venv_runs_the_interpreter_the_binary_was_built_for() {
    let mut gw = IisGateway::start("lifecycle:application", &apps_dir(), &[]);
    let facts = gw.send(&Req::get("/facts")).json();
    assert_eq!(facts["executable"], json!(build_python()));
    assert_eq!(facts["marker"], json!(null));
}

/// A real venv of the build's Python with its pyvenv.cfg `version` rewritten: the checks read
/// only that file (and, for the library, `home`), so this exercises them honestly though no
/// such Python made the venv.
fn venv_claiming(version: &str, tag: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = temp_dir(tag);
    let venv = make_venv(dir.path());
    let cfg = venv.join("pyvenv.cfg");
    let text = std::fs::read_to_string(&cfg).expect("pyvenv.cfg");
    let edited: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("version") {
                format!("version = {version}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, edited).expect("edit pyvenv.cfg");
    (dir, venv)
}

fn run_refused(venv: &Path, dir: &Path) -> String {
    let socket = dir.join("s.sock");
    let out = Command::new(iiswsgi_bin())
        .args([
            "run",
            "--app",
            "lifecycle:application",
            "--log",
            "-",
            "--listen",
        ])
        .arg(format!("unix:{}", socket.display()))
        .arg("--venv")
        .arg(venv)
        .arg("--chdir")
        .arg(apps_dir())
        .output()
        .expect("run iiswsgi");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "refused: {stderr}");
    assert!(
        !stderr.contains("sys.prefix"),
        "refused before Python started:\n{stderr}"
    );
    stderr
}

#[test]
fn venv_older_than_3_9_is_refused_before_python_starts() {
    let (dir, venv) = venv_claiming("3.8.18", "venv38");
    let stderr = run_refused(&venv, dir.path());
    let expected = format!(
        "the venv at {} is Python 3.8, but iiswsgi needs CPython 3.9 or later; recreate the \
         venv with a newer Python",
        venv.display()
    );
    assert!(stderr.contains(&expected), "message:\n{stderr}");
}

/// The venv says 3.99 but its `home` is the build's Python: no libpython3.99 exists to load,
/// so the process keeps the one it has and refuses, naming both.
#[test]
fn venv_whose_python_library_cannot_be_loaded_is_refused_naming_both() {
    let (dir, venv) = venv_claiming("3.99.0", "venv399");
    let stderr = run_refused(&venv, dir.path());
    let built = env!("IISWSGI_PY_VERSION");
    assert!(
        stderr.contains(&format!(
            "the venv at {} was made by Python 3.99, but this process loaded CPython {built}",
            venv.display()
        )),
        "message:\n{stderr}"
    );
}

#[test]
fn failing_import_answers_503_and_recovers_once_the_dependency_appears() {
    let dir = app_copy(&["late_dependency.py"]);
    let mut gw = IisGateway::start("late_dependency:application", dir.path(), &[]);
    for _ in 0..3 {
        let r = gw.send(&Req::get("/"));
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(
            r.header("Retry-After")
                .is_some_and(|s| s.parse::<u64>().is_ok_and(|n| n >= 1))
        );
        assert!(
            r.text().contains("ImportError"),
            "short reason: {}",
            r.text()
        );
        assert!(
            !r.text().contains("not installed yet"),
            "no exception text on the page"
        );
    }
    let log = gw.log();
    assert!(
        log.contains("the dependency is not installed yet"),
        "traceback logged:\n{log}"
    );
    assert!(log.contains("answering 503 and retrying"), "{log}");
    std::fs::write(dir.path().join("dependency-installed"), "").expect("install dependency");
    let r = wait::until("the import is retried", Duration::from_secs(10), || {
        let r = gw.send(&Req::get("/"));
        if r.status == 200 {
            return Some(r);
        }
        assert_eq!(r.status, 503);
        None
    });
    assert_eq!(r.text(), "loaded at last");
    assert!(gw.log().contains("on attempt"), "{}", gw.log());
    let (status, out, err) = gw.close();
    assert!(
        status.success(),
        "the process stayed alive and exits cleanly: {status:?}"
    );
    assert!(out.is_empty() && err.is_empty());
}

#[test]
fn reload_waits_for_the_request_in_flight_then_exits_zero() {
    let dir = app_copy(&["lifecycle.py"]);
    let mut gw = IisGateway::start("lifecycle:application", dir.path(), &[]);
    assert_eq!(gw.send(&Req::get("/")).text(), "hello");
    let file = dir.path().join("lifecycle.py");
    let log = gw.log.clone();
    let touch = std::thread::spawn(move || {
        // The watcher is armed and the request is in flight (the app sleeps on purpose).
        wait::log_contains(&log, "reload: watching", Duration::from_secs(10));
        wait::log_contains(&log, "slow: sleeping", Duration::from_secs(10));
        let mut text = std::fs::read_to_string(&file).expect("read");
        text.push_str("\n# changed\n");
        std::fs::write(&file, text).expect("write");
    });
    let r = gw.send(&Req::get("/slow?1.5"));
    touch.join().expect("touch");
    assert_eq!(
        (r.status, r.text().as_str(), r.complete),
        (200, "slow done", true),
        "finished first"
    );
    let log = wait_for_log(&gw, "reload: lifecycle.py changed", Duration::from_secs(5));
    let server = gw.server.take().expect("server");
    let status = wait_exit(server, Duration::from_secs(10));
    assert!(
        status.success(),
        "exit 0 after the reload: {status:?}\n{log}"
    );
}

/// Outside IIS (`--listen`), `--reload` restarts in place: the same pid re-executes itself,
/// the socket stays open and in place, and nothing waits for another request to notice.
#[test]
fn reload_while_idle_restarts_in_place_without_waiting_for_another_request() {
    let dir = app_copy(&["lifecycle.py"]);
    let socket = dir.path().join("gw.sock");
    let log = dir.path().join("gw.log");
    let server = Server::spawn_listen(&[
        "--app",
        "lifecycle:application",
        "--chdir",
        &dir.path().display().to_string(),
        "--listen",
        &format!("unix:{}", socket.display()),
        "--log",
        &log.display().to_string(),
        "--reload",
    ]);
    wait_for_path(&socket, Duration::from_secs(20));
    wait::log_contains(&log, "reload: watching", Duration::from_secs(20));
    // A file in a brand-new folder: its own event may come before the folder is watched.
    std::fs::create_dir_all(dir.path().join("pkg")).expect("mkdir");
    std::fs::write(dir.path().join("pkg/new_module.py"), "X = 1\n").expect("new file");
    let text = wait::log_count(&log, "reload: watching", 2, Duration::from_secs(20));
    assert!(text.contains("reload: pkg/new_module.py changed"), "{text}");
    assert!(
        text.contains("restarting in place after 0 request(s): a watched file changed"),
        "{text}"
    );
    assert!(
        text.contains("(the socket kept across a reload)"),
        "the new image took the socket over: {text}"
    );
    let pid = server.pid().to_string();
    // At least twice: a write that lands after the reload was decided rightly reloads again.
    assert!(
        text.matches(&format!("starting (pid {pid})")).count() >= 2,
        "one process, started again: {text}"
    );
    assert!(socket.exists(), "the socket file never went away");
    let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let reply = fc::exchange(
        &mut conn,
        1,
        false,
        &fc::nginx_params("GET", "/", None),
        b"",
    );
    assert_eq!(reply.cgi().status, 200, "{}", reply.cgi().text());
    server.signal(rustix::process::Signal::TERM);
    let status = wait_exit(server, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "removed at the final exit");
}

/// Issue 13: outside IIS watching is opt-in (`--reload`, as gunicorn's): without it a
/// change restarts nothing.
#[test]
fn without_reload_a_change_outside_iis_restarts_nothing() {
    let dir = app_copy(&["lifecycle.py"]);
    let socket = dir.path().join("gw.sock");
    let log = dir.path().join("gw.log");
    let server = Server::spawn_listen(&[
        "--app",
        "lifecycle:application",
        "--chdir",
        &dir.path().display().to_string(),
        "--listen",
        &format!("unix:{}", socket.display()),
        "--log",
        &log.display().to_string(),
    ]);
    wait::log_contains(
        &log,
        "imported lifecycle:application",
        Duration::from_secs(20),
    );
    std::fs::write(dir.path().join("lifecycle.py"), "# changed\n").expect("change");
    // A watcher is armed before the first request is served and says so: none here.
    let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let reply = fc::exchange(
        &mut conn,
        1,
        false,
        &fc::nginx_params("GET", "/", None),
        b"",
    );
    assert_eq!(reply.cgi().status, 200, "still the first import");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("reload"), "{text}");
    server.signal(rustix::process::Signal::TERM);
    assert!(wait_exit(server, Duration::from_secs(10)).success());
}

#[test]
fn empty_reload_pattern_disables_reloading() {
    let dir = app_copy(&["lifecycle.py"]);
    let mut gw = IisGateway::start(
        "lifecycle:application",
        dir.path(),
        &["--reload-pattern", ""],
    );
    std::fs::write(dir.path().join("other.py"), "X = 1\n").expect("new file");
    // Proving that nothing happens: a window in which a reload would have started (the
    // watcher holds a change for 150 ms, then the process stops at once when idle).
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(gw.send(&Req::get("/")).text(), "hello", "still serving");
    assert!(!gw.log().contains("reload:"), "{}", gw.log());
}

#[test]
fn system_exit_answers_500_then_exits_gracefully() {
    let mut gw = IisGateway::start("lifecycle:application", &apps_dir(), &[]);
    let r = gw.send(&Req::get("/exit"));
    assert_eq!(r.status, 500, "50");
    assert!(r.complete);
    let server = gw.server.take().expect("server");
    let status = wait_exit(server, Duration::from_secs(10));
    assert!(status.success(), "50: graceful exit {status:?}");
    assert!(gw.log().contains("SystemExit"), "{}", gw.log());
}

/// iis-runtime §12 item 29: a fatal error leaves Python's traceback in the log, the only
/// place an admin can look after IIS says "the FastCGI process exited unexpectedly".
#[test]
fn segfault_in_the_app_leaves_the_python_traceback_in_the_log() {
    use std::os::unix::process::ExitStatusExt;
    let mut gw = IisGateway::start("lifecycle:application", &apps_dir(), &[]);
    assert_eq!(gw.send(&Req::get("/")).text(), "hello");
    gw.write_request(&Req::get("/crash"), b"", true);
    let server = gw.server.take().expect("server");
    let (status, out, err) = server.wait(Duration::from_secs(20));
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}");
    assert!(
        out.is_empty() && err.is_empty(),
        "nothing on stdout/stderr: {}",
        String::from_utf8_lossy(&err)
    );
    let log = gw.log();
    let fatal = log
        .find("Fatal Python error: Segmentation fault")
        .unwrap_or_else(|| panic!("no fatal error in the log:\n{log}"));
    let dump = &log[fatal..];
    for frame in [
        "in crash_like_a_broken_c_extension",
        "lifecycle.py",
        "in application",
    ] {
        assert!(dump.contains(frame), "{frame} missing from:\n{dump}");
    }
}

#[test]
fn pipe_eof_finalises_python_so_atexit_handlers_run() {
    let dir = temp_dir("atexit");
    let marker = dir.path().join("atexit.txt");
    let marker_arg = marker.display().to_string();
    let (server, pipe) = Server::spawn_iis(
        &[
            "--app",
            "lifecycle:application",
            "--chdir",
            &apps_dir().display().to_string(),
            "--log",
            &dir.path().join("log").display().to_string(),
        ],
        &[
            ("APP_POOL_ID", "WsgiTestPool"),
            ("IISWSGI_TEST_ATEXIT", &marker_arg),
        ],
    );
    // The app is imported (its atexit handler registered) before the pipe closes.
    let log = dir.path().join("log");
    wait::log_contains(
        &log,
        "imported lifecycle:application",
        Duration::from_secs(20),
    );
    drop(pipe);
    let (status, out, err) = server.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(out.is_empty() && err.is_empty(), "nothing on stdout/stderr");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap_or_default(),
        "atexit ran"
    );
}

#[test]
fn sigterm_stays_with_the_host_even_after_the_app_installs_a_handler() {
    let mut gw = NginxGateway::start("lifecycle:application", &apps_dir(), &[]);
    // The app's import ran `signal.signal(SIGTERM, ignore)`; the host restored its own.
    assert_eq!(gw.send(&Req::get("/")).text(), "hello");
    let (status, log) = gw.stop();
    assert!(
        status.success(),
        "SIGTERM stopped the gateway gracefully: {status:?}\n{log}"
    );
    assert!(
        log.contains("SIGTERM: finishing the current request"),
        "{log}"
    );
}

/// Issue 16: a request that never returns (here Python asleep for an hour) kept SIGTERM, and
/// a second one, from ending a lone process.
#[test]
fn sigterm_ends_a_process_whose_request_never_returns_after_the_graceful_timeout() {
    use std::io::Write as _;
    use std::os::unix::process::ExitStatusExt as _;
    let dir = temp_dir("hung");
    let socket = dir.path().join("gw.sock");
    let log = dir.path().join("iiswsgi.log");
    let (listen, log_arg, chdir) = (
        format!("unix:{}", socket.display()),
        log.display().to_string(),
        apps_dir().display().to_string(),
    );
    let server = Server::spawn_listen(&[
        "--app",
        "lifecycle:application",
        "--chdir",
        &chdir,
        "--listen",
        &listen,
        "--log",
        &log_arg,
        "--graceful-timeout",
        "1",
    ]);
    wait_for_path(&socket, Duration::from_secs(20));
    let mut c = std::os::unix::net::UnixStream::connect(&socket).expect("connect");
    let params = crate::support::fcgi_client::nginx_params("GET", "/slow?3600", None);
    c.write_all(&crate::support::fcgi_client::request_bytes(
        1, true, &params, b"", 8192,
    ))
    .expect("request");
    wait::log_contains(&log, "slow: sleeping", Duration::from_secs(10));
    let sent = std::time::Instant::now();
    server.signal(rustix::process::Signal::TERM);
    let (status, ..) = server.wait(Duration::from_secs(5));
    let took = sent.elapsed();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "exited after {took:?} with a 1 s grace period"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("requests still running after --graceful-timeout (1 s)"),
        "{text}"
    );
    assert!(!socket.exists(), "the socket file is removed");
}

/// A minimal manifest for `lifecycle.py` with `extra` lines appended to its `[wsgi]` table.
fn manifest_dir(wsgi: &str) -> tempfile::TempDir {
    let dir = app_copy(&["lifecycle.py"]);
    std::fs::create_dir_all(dir.path().join("lib")).expect("lib");
    std::fs::write(dir.path().join("lib/iiswsgi_marker.py"), "VALUE = 7\n").expect("marker");
    let toml = format!(
        "[app]\nname = \"Lifecycle\"\ntitle = \"Lifecycle\"\nversion = \"1.0.0\"\n\
         description = \"test app\"\n\n[wsgi]\napp = \"lifecycle:application\"\n{wsgi}\n\
         [wsgi.environment]\nIISWSGI_FROM_MANIFEST = \"yes\"\n\n[iis]\n[iis.fastcgi]\n[package]\n"
    );
    std::fs::write(dir.path().join("iiswsgi.toml"), toml).expect("manifest");
    dir
}

#[test]
fn manifest_wsgi_section_supplies_app_paths_environment_and_reload_rule() {
    let dir = manifest_dir("python-paths = [\"lib\"]\nreload-regex = ''");
    let manifest = dir.path().join("iiswsgi.toml").display().to_string();
    let mut gw = IisGateway::start_with(&["--manifest", &manifest]);
    let facts = gw.send(&Req::get("/facts")).json();
    assert_eq!(
        facts["marker"],
        json!(7),
        "python-paths from the manifest:\n{}",
        gw.log()
    );
    assert_eq!(facts["from_manifest"], json!("yes"), "[wsgi.environment]");
    assert_eq!(
        facts["cwd"],
        json!(dir.path().display().to_string()),
        "the manifest's folder"
    );
    std::fs::write(dir.path().join("other.py"), "X = 1\n").expect("change");
    // Proving that nothing happens: a window in which a reload would have started (the
    // watcher holds a change for 150 ms, then the process stops at once when idle).
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        gw.send(&Req::get("/")).text(),
        "hello",
        "reload-regex = '' disables reloading"
    );
}

#[test]
fn manifest_asking_for_a_python_older_than_3_9_is_refused() {
    let dir = manifest_dir("python-version = \"3.8\"");
    let out = Command::new(iiswsgi_bin())
        .args(["run", "--log", "-", "--manifest"])
        .arg(dir.path().join("iiswsgi.toml"))
        .output()
        .expect("run iiswsgi");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`wsgi.python-version` is 3.8 but iiswsgi needs CPython 3.9 or later"),
        "{stderr}"
    );
}
