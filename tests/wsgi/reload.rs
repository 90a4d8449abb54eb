//! Issue 13: a reload never takes the service down. A real nginx (`keepalive`, so requests
//! also arrive on connections the old image holds) in front of `iiswsgi run --listen
//! unix:… --reload`, alone and with `--processes 2`, under `wrk`; a file changes mid-run. No
//! request may fail, the socket file may never disappear, and the old process is replaced in
//! place (same pid). Without `--reload`, the same change restarts nothing.
//!
//! These runs are a few seconds long; `bench/reload.sh` runs the 30-second version against a
//! `django-admin startproject` site and prints the figures.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::peers::{Peer, Proc, Sandbox, iiswsgi_bin, require_program};
use crate::support::wait;

const APP: &str = "\
import os
def application(environ, start_response):
    body = ('%d\\n' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
";

/// What one `wrk` run reports.
#[derive(Debug)]
struct WrkRun {
    requests: u64,
    /// `Non-2xx or 3xx responses`, 0 when wrk prints no such line.
    non_2xx: u64,
    /// `Socket errors: connect, read, write, timeout`, summed.
    socket_errors: u64,
    text: String,
}

fn wrk(port: u16, seconds: u32) -> WrkRun {
    let out = Command::new(require_program("wrk"))
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "--timeout", "10s"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let number_after = |label: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches(',').parse::<u64>().ok())
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("wrk printed no total: {text}"));
    let socket_errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        });
    WrkRun {
        requests,
        non_2xx: number_after("Non-2xx or 3xx responses:").unwrap_or(0),
        socket_errors,
        text,
    }
}

/// `iiswsgi run` serving `APP` on `<sandbox>/gw.sock` behind nginx, with an access log.
struct Served {
    sandbox: Sandbox,
    proc: Proc,
    peer: Peer,
    socket: PathBuf,
}

impl Served {
    fn start(label: &str, extra: &[&str]) -> Served {
        let sandbox = Sandbox::new(label);
        sandbox.write("app.py", APP);
        let socket = sandbox.join("gw.sock");
        let mut cmd = Command::new(iiswsgi_bin());
        cmd.arg("run")
            .arg("--app")
            .arg("app:application")
            .arg("--chdir")
            .arg(sandbox.path())
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--log")
            .arg(sandbox.join("iiswsgi.log"))
            .arg("--access-log")
            .arg(sandbox.join("access.log"))
            .args(extra)
            .stdin(Stdio::null());
        let mut proc = Proc::spawn(
            "iiswsgi",
            sandbox.path(),
            cmd,
            vec![sandbox.join("iiswsgi.log")],
        );
        let log = sandbox.join("iiswsgi.log");
        proc.wait_until("the app is imported", || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("imported app:application"))
        });
        let peer = Peer::nginx(&sandbox, &socket);
        Served {
            sandbox,
            proc,
            peer,
            socket,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.sandbox.join("iiswsgi.log")).unwrap_or_default()
    }

    fn access_lines(&self) -> usize {
        std::fs::read_to_string(self.sandbox.join("access.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Runs wrk for `seconds` while, once requests flow, `app.py` changes; meanwhile checks
    /// without pause that the socket file exists. Returns wrk's figures and how many times
    /// the socket was seen missing.
    fn wrk_with_a_change(&self, seconds: u32) -> (WrkRun, usize) {
        let stop = Arc::new(AtomicBool::new(false));
        let missing = Arc::new(AtomicUsize::new(0));
        let watcher = {
            let (stop, missing, socket) = (stop.clone(), missing.clone(), self.socket.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if !socket.exists() {
                        missing.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let port = self.peer.port;
        let run = std::thread::spawn(move || wrk(port, seconds));
        wait::until_true("requests flow", Duration::from_secs(10), || {
            self.access_lines() >= 200
        });
        touch(&self.sandbox.join("app.py"));
        let result = run.join().expect("wrk");
        stop.store(true, Ordering::Relaxed);
        watcher.join().expect("socket watcher");
        (result, missing.load(Ordering::Relaxed))
    }
}

fn touch(path: &Path) {
    let mut text = std::fs::read_to_string(path).expect("read");
    text.push_str("# changed\n");
    std::fs::write(path, text).expect("write");
}

fn assert_no_failure(run: &WrkRun, missing: usize, log: &str) {
    assert!(run.requests > 200, "{}", run.text);
    assert_eq!(
        (run.non_2xx, run.socket_errors),
        (0, 0),
        "every request answered 2xx across the reload:\n{}\n{log}",
        run.text
    );
    assert_eq!(missing, 0, "the socket file never disappeared");
}

#[test]
fn a_reload_under_load_fails_no_request_and_keeps_the_socket() {
    let s = Served::start("reload-one", &["--reload"]);
    let (run, missing) = s.wrk_with_a_change(4);
    let log = s.log();
    assert_no_failure(&run, missing, &log);
    assert!(
        log.contains("reload: app.py changed") && log.contains("restarting in place"),
        "{log}"
    );
    let pid = s.proc.pid();
    assert!(
        log.matches(&format!("starting (pid {pid})")).count() >= 2,
        "the same process, re-executed: {log}"
    );
}

#[test]
fn a_reload_under_load_with_two_workers_fails_no_request() {
    let s = Served::start("reload-two", &["--reload", "--processes", "2"]);
    wait::log_count(
        &s.sandbox.join("iiswsgi.log"),
        "imported app:application",
        2,
        Duration::from_secs(20),
    );
    let (run, missing) = s.wrk_with_a_change(4);
    let log = wait::log_count(
        &s.sandbox.join("iiswsgi.log"),
        "restarting in place",
        2,
        Duration::from_secs(10),
    );
    assert_no_failure(&run, missing, &log);
    assert_eq!(
        log.lines().filter(|l| l.contains("started (pid")).count(),
        2,
        "each worker restarted itself in place; the supervisor started no other: {log}"
    );
}

/// A reload into code that no longer imports keeps the service: 503 (never a dead socket),
/// and the fix brings it back, by the next reload or by the import retried every second,
/// whichever comes first. Only the first start stops on a failed import.
///
/// How many starts a change causes is not the point: the test waits for what a client sees.
#[test]
fn a_reload_into_a_broken_app_answers_503_until_the_fix_reloads_it() {
    let s = Served::start("reload-broken", &["--reload"]);
    let log = s.sandbox.join("iiswsgi.log");
    let app = s.sandbox.join("app.py");
    std::fs::write(&app, "import not_installed_anywhere\n").expect("break the app");
    wait::log_count(
        &log,
        "importing app:application failed",
        1,
        Duration::from_secs(20),
    );
    let mut client = s.peer.connect();
    let r = client.request("GET", "/", &[], b"").expect("GET");
    assert_eq!(r.status, 503, "{}", s.log());
    assert!(s.socket.exists());
    std::fs::write(&app, APP).expect("fix the app");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut unavailable = 0;
    let r = loop {
        let r = client
            .request("GET", "/", &[], b"")
            .expect("GET: the socket stays up");
        match r.status {
            200 => break r,
            503 if std::time::Instant::now() < deadline => unavailable += 1,
            other => panic!("{other} after {unavailable} answer(s) 503: {}", s.log()),
        }
        assert!(s.socket.exists());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        r.text().trim(),
        s.proc.pid().to_string(),
        "still the same process"
    );
}

/// A change made while the new image is still starting (its watcher not armed yet, the old
/// one already fired) is not lost: the new image compares modification times with the
/// instant the reload was decided and reloads again.
#[test]
fn a_change_while_the_new_image_starts_reloads_it_again() {
    let sandbox = Sandbox::new("reload-window");
    let slow = format!("import time\ntime.sleep(0.5)\n{APP}");
    sandbox.write("app.py", &slow);
    let socket = sandbox.join("gw.sock");
    let log = sandbox.join("iiswsgi.log");
    let mut cmd = Command::new(iiswsgi_bin());
    cmd.arg("run")
        .args(["--app", "app:application", "--reload", "--chdir"])
        .arg(sandbox.path())
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .arg("--log")
        .arg(&log)
        .stdin(Stdio::null());
    let mut proc = Proc::spawn("iiswsgi", sandbox.path(), cmd, vec![log.clone()]);
    proc.wait_until("watching", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("reload: watching"))
    });
    std::fs::write(sandbox.join("helper.py"), "X = 1\n").expect("first change");
    // The new image has started and is importing (0.5 s), not watching yet.
    proc.wait_until("the second start", || {
        std::fs::read_to_string(&log).is_ok_and(|t| {
            t.matches("starting (pid").count() == 2 && t.matches("reload: watching").count() == 1
        })
    });
    std::fs::write(sandbox.join("helper.py"), "X = 2\n").expect("second change");
    let text = wait::log_count(&log, "reload: watching", 3, Duration::from_secs(20));
    assert!(
        text.contains("reload: helper.py changed while the previous start was under way"),
        "{text}"
    );
}

#[test]
fn without_reload_a_change_under_load_restarts_nothing() {
    let s = Served::start("reload-off", &[]);
    let (run, missing) = s.wrk_with_a_change(2);
    let log = s.log();
    assert_no_failure(&run, missing, &log);
    assert!(
        !log.contains("reload: ") && !log.contains("restarting"),
        "{log}"
    );
    assert_eq!(
        log.matches("starting (pid").count(),
        1,
        "one start, no restart: {log}"
    );
}
