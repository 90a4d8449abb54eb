//! `iiswsgi run --processes N`: a supervisor re-executing the binary N times with the shared
//! listening socket on each worker's fd 0. Workers are found as the supervisor's children in
//! `/proc`; every process runs in its own group under [`Proc`], killed on drop even when a test
//! fails.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fcgi_client::{self as fc, Server, diag_value, exchange, nginx_params};
use crate::support::peers::{Proc, Sandbox, iiswsgi_bin};
use crate::support::wait;

/// How long a test waits for the supervisor or a worker to act.
const ACT: Duration = Duration::from_secs(10);

/// The live (not zombie) children of `parent`, from `/proc/*/stat`.
fn children(parent: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && state != "Z" {
            out.insert(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

/// Whether worker `pid` logged that SIGTERM came (log lines read `<time> <pid> - LEVEL - ...`).
fn logged_sigterm(log: &str, pid: u32) -> bool {
    let pid = pid.to_string();
    log.lines().any(|l| {
        l.contains("SIGTERM: finishing the current request")
            && l.split_whitespace().nth(1) == Some(pid.as_str())
    })
}

/// A supervisor under test: `iiswsgi run --processes N ...` in its own process group.
struct Supervised {
    proc: Proc,
    socket: PathBuf,
    sandbox: Sandbox,
}

impl Supervised {
    /// Starts `iiswsgi run --listen unix:<sandbox>/gw.sock --log ... ARGS` and waits until the
    /// socket accepts and `workers` workers run.
    fn start(label: &str, args: &[&str], workers: usize) -> Supervised {
        let sandbox = Sandbox::new(label);
        let socket = sandbox.join("gw.sock");
        let mut cmd = Command::new(iiswsgi_bin());
        cmd.arg("run")
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .arg("--log")
            .arg(sandbox.join("iiswsgi.log"))
            .args(args)
            .stdin(Stdio::null());
        Self::spawn(sandbox, socket, cmd, workers)
    }

    fn spawn(sandbox: Sandbox, socket: PathBuf, cmd: Command, workers: usize) -> Supervised {
        let log = sandbox.join("iiswsgi.log");
        let mut proc = Proc::spawn("supervisor", sandbox.path(), cmd, vec![log]);
        proc.wait_until("the socket accepts", || {
            UnixStream::connect(&socket).is_ok()
        });
        let mut s = Supervised {
            proc,
            socket,
            sandbox,
        };
        s.wait_workers("all workers run", |w| w.len() == workers);
        s
    }

    fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn workers(&self) -> BTreeSet<u32> {
        children(self.pid())
    }

    /// Polls the worker set until `ok` holds (10 s at most) and returns it.
    fn wait_workers(
        &mut self,
        what: &str,
        mut ok: impl FnMut(&BTreeSet<u32>) -> bool,
    ) -> BTreeSet<u32> {
        let pid = self.pid();
        let found = wait::poll(ACT, || {
            self.proc.assert_alive();
            Some(children(pid)).filter(|w| ok(w))
        });
        found.unwrap_or_else(|| {
            panic!(
                "{what}: workers {:?}\n{}",
                self.workers(),
                self.proc.output()
            )
        })
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s
    }

    /// One diagnostic request on a fresh connection; returns the pid the page shows.
    fn request_pid(&self) -> u32 {
        let mut s = self.connect();
        let reply = exchange(&mut s, 1, false, &nginx_params("GET", "/", None), b"");
        let text = reply.cgi().text();
        assert_eq!(reply.cgi().status, 200, "{text}");
        diag_value(&text, "iiswsgi.pid")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no pid on the page:\n{text}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.sandbox.join("iiswsgi.log")).unwrap_or_default()
    }

    fn terminate(&self) {
        // SAFETY: plain syscall on our own, not yet reaped, child.
        unsafe {
            libc::kill(self.pid() as libc::pid_t, libc::SIGTERM);
        }
    }
}

/// A body larger than the 1 MiB a worker buffers before it calls the application.
const HELD_BODY: usize = 1_500_000;

/// Sends a POST whose last 100 body bytes are held back, and returns once a worker has read
/// all the rest. The body exceeds what the server buffers before calling the application, so
/// that worker sits in the application call reading the body (and accepts nothing else) until
/// [`finish`].
fn hold_a_worker(s: &Supervised) -> (UnixStream, Vec<u8>) {
    let body = vec![b'b'; HELD_BODY];
    let full = fc::request_bytes(
        1,
        false,
        &nginx_params("POST", "/busy", Some(body.len())),
        &body,
        65535,
    );
    let mut c = s.connect();
    let cut = full.len() - 100;
    c.write_all(&full[..cut]).expect("first part");
    wait::peer_has_read(&c, ACT);
    (c, full[cut..].to_vec())
}

fn finish(mut c: UnixStream, rest: &[u8]) -> u32 {
    c.write_all(rest).expect("rest of the body");
    let reply = fc::read_reply(&mut c, 1).expect("reply");
    let text = reply.cgi().text();
    assert_eq!(reply.cgi().status, 200, "{text}");
    assert_eq!(
        diag_value(&text, "iiswsgi.body_bytes"),
        Some(HELD_BODY.to_string())
    );
    diag_value(&text, "iiswsgi.pid")
        .and_then(|p| p.parse().ok())
        .expect("pid on the page")
}

#[test]
fn three_workers_answer_concurrent_requests_from_three_distinct_pids() {
    let s = Supervised::start("procs3", &["--diagnostic", "--processes", "3"], 3);
    let workers = s.workers();
    assert!(!workers.contains(&s.pid()));
    // Each held request pins the worker that accepted it, so the next goes to another one.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(hold_a_worker(&s));
    }
    let pids: BTreeSet<u32> = held.into_iter().map(|(c, r)| finish(c, &r)).collect();
    assert_eq!(pids, workers, "{}", s.proc.output());
    let log = s.log();
    for pid in &workers {
        assert!(log.contains(&format!("started (pid {pid})")), "{log}");
    }
    assert!(log.contains("fd 0: listening unix socket"), "{log}");
}

#[test]
fn sigkilled_worker_is_replaced_and_requests_keep_succeeding() {
    let mut s = Supervised::start("procskill", &["--diagnostic", "--processes", "2"], 2);
    let before = s.workers();
    let victim = *before.iter().next().expect("a worker");
    // SAFETY: plain syscall on a grandchild we just listed.
    unsafe {
        libc::kill(victim as libc::pid_t, libc::SIGKILL);
    }
    let after = s.wait_workers("a replacement starts", |w| {
        w.len() == 2 && !w.contains(&victim)
    });
    assert_eq!(after.intersection(&before).count(), 1);
    for _ in 0..6 {
        assert!(after.contains(&s.request_pid()));
    }
    let log = s.log();
    assert!(
        log.contains(&format!("(pid {victim}) was killed by signal 9")),
        "{log}"
    );
}

#[test]
fn sigterm_finishes_requests_in_flight_stops_every_worker_and_removes_the_socket() {
    let mut s = Supervised::start("procsterm", &["--diagnostic", "--processes", "3"], 3);
    let workers = s.workers();
    let (c, rest) = hold_a_worker(&s);
    s.terminate();
    // SIGTERM reached every worker: the idle ones are gone (or logged it), and the one holding
    // the request, which cannot exit, logged that it drains it.
    wait::until_true("every worker got SIGTERM", ACT, || {
        let log = s.log();
        workers
            .iter()
            .all(|&p| logged_sigterm(&log, p) || !alive(p))
    });
    // The worker holding the request is draining: it still answers.
    assert!(workers.contains(&finish(c, &rest)));
    let status = s
        .proc
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("supervisor still running: {}", s.proc.output()));
    assert!(status.success(), "{status:?}: {}", s.proc.output());
    assert!(workers.iter().all(|&p| !alive(p)), "{workers:?} survive");
    assert!(!s.socket.exists(), "socket file left behind");
    let (out, err) = s.proc.std_streams();
    assert!(out.is_empty() && err.is_empty(), "{}", s.proc.output());
    let log = s.log();
    assert!(log.contains("SIGTERM: stopping 3 worker(s)"), "{log}");
}

/// A service manager or script that stops the supervisor as soon as its socket appears: the
/// signal waits until the supervisor's handlers exist, so the stop is a clean one (exit 0,
/// socket file removed). Before the hold, 13 runs in 40 were killed by SIGTERM with the
/// socket file left behind.
#[test]
fn sigterm_as_soon_as_the_socket_appears_is_a_clean_stop() {
    for run in 0..20 {
        let sandbox = Sandbox::new("procsterm-early");
        let socket = sandbox.join("gw.sock");
        let mut cmd = Command::new(iiswsgi_bin());
        cmd.arg("run")
            .args(["--diagnostic", "--processes", "2", "--listen"])
            .arg(format!("unix:{}", socket.display()))
            .arg("--log")
            .arg(sandbox.join("iiswsgi.log"))
            .stdin(Stdio::null());
        let mut proc = Proc::spawn("supervisor", sandbox.path(), cmd, vec![]);
        // As soon as the file exists: a tight poll, no pause that would let start-up finish.
        let deadline = Instant::now() + ACT;
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "run {run}: no socket: {}",
                proc.output()
            );
            std::hint::spin_loop();
        }
        // SAFETY: plain syscall on our own, not yet reaped, child.
        unsafe {
            libc::kill(proc.pid() as libc::pid_t, libc::SIGTERM);
        }
        let status = proc
            .wait_exit(ACT)
            .unwrap_or_else(|| panic!("run {run}: still running: {}", proc.output()));
        assert!(status.success(), "run {run}: {status:?}: {}", proc.output());
        assert!(!socket.exists(), "run {run}: socket file left behind");
    }
}

#[test]
fn worker_still_busy_after_the_grace_period_is_killed_and_the_supervisor_exits_zero() {
    let mut s = Supervised::start(
        "procgrace",
        &[
            "--diagnostic",
            "--processes",
            "2",
            "--graceful-timeout",
            "1",
        ],
        2,
    );
    let workers = s.workers();
    // This request's body never completes: its worker stays in the application call.
    let (_held, _rest) = hold_a_worker(&s);
    let start = Instant::now();
    s.terminate();
    let status = s
        .proc
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("supervisor still running: {}", s.proc.output()));
    let took = start.elapsed();
    assert!(status.success(), "{status:?}: {}", s.proc.output());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped after {took:?} with a 1 s grace period"
    );
    assert!(workers.iter().all(|&p| !alive(p)), "{workers:?} survive");
    // The worker keeps the grace period too (issue 16) and ends itself at about the moment
    // the supervisor would SIGKILL it: either line says the request was given up.
    let log = s.log();
    assert!(
        log.contains("still busy after the grace period: SIGKILL")
            || log.contains("requests still running after --graceful-timeout (1 s)"),
        "{log}"
    );
}

/// Issue 16's second-signal rule must not cut supervised stops short: systemd's default
/// `KillMode=control-group` sends SIGTERM to every process of the unit and the supervisor
/// passes its own on, so a busy worker gets two. One of them came from its parent: it is the
/// same stop, and the worker still finishes its request.
#[test]
fn a_worker_signalled_by_the_service_manager_and_the_supervisor_still_finishes_its_request() {
    let mut s = Supervised::start("procrelay", &["--diagnostic", "--processes", "2"], 2);
    let workers = s.workers();
    let (c, rest) = hold_a_worker(&s);
    for &w in &workers {
        // SAFETY: plain syscall on a grandchild we just listed.
        unsafe {
            libc::kill(w as libc::pid_t, libc::SIGTERM);
        }
    }
    // The service manager's signal is taken first (two pending ones would merge into one),
    // then the supervisor passes its own on.
    wait::until_true("every worker took the first SIGTERM", ACT, || {
        let log = s.log();
        workers
            .iter()
            .all(|&p| logged_sigterm(&log, p) || !alive(p))
    });
    s.terminate();
    let log = wait::log_contains(
        &s.sandbox.join("iiswsgi.log"),
        "one of the two from the parent process",
        ACT,
    );
    assert!(!log.contains("again: exiting now"), "{log}");
    assert!(workers.contains(&finish(c, &rest)));
    let status = s
        .proc
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("supervisor still running: {}", s.proc.output()));
    assert!(status.success(), "{status:?}: {}", s.proc.output());
}

#[test]
fn worker_exiting_zero_at_max_requests_is_replaced_at_once() {
    let mut s = Supervised::start(
        "procsmax",
        &["--diagnostic", "--processes", "2", "--max-requests", "1"],
        2,
    );
    let before = s.workers();
    let served_by = s.request_pid();
    assert!(before.contains(&served_by));
    let after = s.wait_workers("the recycled worker is replaced", |w| {
        w.len() == 2 && !w.contains(&served_by)
    });
    assert!(after.contains(&s.request_pid()));
    let log = s.log();
    assert!(
        log.contains(&format!("(pid {served_by}) exited with status 0 after"))
            && !log.contains("quick death"),
        "{log}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn sigkilled_supervisor_leaves_no_worker_behind() {
    let mut s = Supervised::start("procsorphan", &["--diagnostic", "--processes", "2"], 2);
    let workers = s.workers();
    // SAFETY: plain syscall on our own child.
    unsafe {
        libc::kill(s.pid() as libc::pid_t, libc::SIGKILL);
    }
    s.proc.wait_exit(Duration::from_secs(5)).expect("killed");
    let what = format!("orphaned workers {workers:?} stop");
    wait::until_true(&what, ACT, || !workers.iter().any(|&p| alive(p)));
}

#[test]
fn sighup_replaces_every_worker_without_closing_the_socket() {
    let mut s = Supervised::start("procshup", &["--diagnostic", "--processes", "2"], 2);
    let before = s.workers();
    // SAFETY: plain syscall on our own child.
    unsafe {
        libc::kill(s.pid() as libc::pid_t, libc::SIGHUP);
    }
    let after = s.wait_workers("two new workers, old ones gone", |w| {
        w.len() == 2 && w.is_disjoint(&before)
    });
    assert!(after.contains(&s.request_pid()));
    assert!(s.log().contains("SIGHUP: restarting the workers"));
}

#[test]
fn inherited_listening_socket_on_fd0_is_shared_and_left_in_place() {
    let sandbox = Sandbox::new("procsfd0");
    let socket = sandbox.join("spawned.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let mut cmd = Command::new(iiswsgi_bin());
    cmd.args(["run", "--diagnostic", "--processes", "2", "--log"])
        .arg(sandbox.join("iiswsgi.log"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)));
    let mut s = Supervised::spawn(sandbox, socket, cmd, 2);
    let workers = s.workers();
    assert!(workers.contains(&s.request_pid()));
    s.terminate();
    let status = s.proc.wait_exit(Duration::from_secs(10)).expect("exit");
    assert!(status.success());
    // spawn-fcgi or lighttpd made that socket file: not ours to remove.
    assert!(s.socket.exists());
}

#[test]
fn processes_on_an_iis_pipe_are_ignored_with_a_warning_and_one_process_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("iiswsgi.log");
    let log_arg = log.display().to_string();
    let (server, mut pipe) = Server::spawn_iis(
        &["--diagnostic", "--processes", "4", "--log", &log_arg],
        &[("APP_POOL_ID", "DefaultAppPool")],
    );
    let params = fc::iis_params("GET", "/LM/W3SVC/1/ROOT", "/", 0);
    let reply = exchange(&mut pipe, 1, true, &params, b"");
    let text = reply.cgi().text();
    assert_eq!(
        diag_value(&text, "iiswsgi.pid").as_deref(),
        Some(server.pid().to_string().as_str())
    );
    assert!(children(server.pid() as u32).is_empty());
    drop(pipe);
    let (status, out, err) = server.wait(Duration::from_secs(10));
    assert!(status.success() && out.is_empty() && err.is_empty());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("--processes 4 ignored") && text.contains("maxInstances"),
        "{text}"
    );
}

#[test]
fn a_manifest_that_cannot_be_read_stops_the_supervisor_before_any_worker() {
    let sandbox = Sandbox::new("procsbad");
    let socket = sandbox.join("gw.sock");
    let mut cmd = Command::new(iiswsgi_bin());
    // The supervisor reads the manifest itself now (its [run] section sets the log).
    cmd.arg("run")
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .arg("--processes")
        .arg("2")
        .arg("--manifest")
        .arg(sandbox.join("missing.toml"))
        .arg("--log")
        .arg(sandbox.join("iiswsgi.log"))
        .stdin(Stdio::null());
    let mut proc = Proc::spawn("supervisor", sandbox.path(), cmd, vec![]);
    let status = proc
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the supervisor kept looping: {}", proc.output()));
    assert_eq!(status.code(), Some(2), "{}", proc.output());
    let (_, err) = proc.std_streams();
    let err = String::from_utf8_lossy(&err);
    assert!(err.contains("cannot read manifest"), "{err}");
    assert!(!socket.exists());
}

/// Issue 13: outside IIS an app that does not import stops the start (exit 2, the traceback
/// on stderr), in each worker; the supervisor stops too, with 2, instead of looping.
#[cfg(feature = "python")]
#[test]
fn workers_whose_app_does_not_import_stop_the_supervisor_with_status_2() {
    let sandbox = Sandbox::new("procsimport");
    sandbox.write(
        "broken.py",
        "import not_installed_anywhere
app = None
",
    );
    let socket = sandbox.join("gw.sock");
    let mut cmd = Command::new(iiswsgi_bin());
    cmd.arg("run")
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .arg("--processes")
        .arg("2")
        .arg("--app")
        .arg("broken:app")
        .arg("--chdir")
        .arg(sandbox.path())
        .arg("--log")
        .arg(sandbox.join("iiswsgi.log"))
        .stdin(Stdio::null());
    let mut proc = Proc::spawn("supervisor", sandbox.path(), cmd, vec![]);
    let status = proc
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("the supervisor kept looping: {}", proc.output()));
    assert_eq!(status.code(), Some(2), "{}", proc.output());
    let (_, err) = proc.std_streams();
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("cannot import broken:app")
            && err.contains("ModuleNotFoundError: No module named 'not_installed_anywhere'"),
        "the workers' traceback reaches the terminal: {err}"
    );
    assert!(err.contains("worker processes cannot start"), "{err}");
    assert!(!socket.exists());
}

/// A real Python app behind a real nginx, two workers: a slow request pins one worker, so a
/// concurrent one is served by the other; both see `wsgi.multiprocess` true.
#[cfg(feature = "python")]
#[test]
fn python_app_behind_nginx_is_served_by_two_worker_processes() {
    use crate::support::peers::Peer;

    let sandbox = Sandbox::new("procspy");
    sandbox.write(
        "pidapp.py",
        "import os, time\n\
         def application(environ, start_response):\n\
         \x20   if environ['PATH_INFO'] == '/slow':\n\
         \x20       print('slow: sleeping', flush=True)\n\
         \x20       time.sleep(0.6)\n\
         \x20   body = '%d %s %s' % (os.getpid(), environ['wsgi.multiprocess'],\n\
         \x20                        environ['wsgi.multithread'])\n\
         \x20   start_response('200 OK', [('Content-Type', 'text/plain')])\n\
         \x20   return [body.encode()]\n",
    );
    let socket = sandbox.join("gw.sock");
    let mut cmd = Command::new(iiswsgi_bin());
    cmd.arg("run")
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .args(["--processes", "2", "--app", "pidapp:application", "--chdir"])
        .arg(sandbox.path())
        .arg("--log")
        .arg(sandbox.join("iiswsgi.log"))
        .stdin(Stdio::null());
    let s = Supervised::spawn(sandbox, socket, cmd, 2);
    let nginx = Peer::nginx(&s.sandbox, &s.socket);
    let port = nginx.port;
    let slow = std::thread::spawn(move || {
        crate::support::peers::HttpClient::connect(port)
            .request("GET", "/slow", &[], b"")
            .expect("slow request")
    });
    // The slow request holds one worker (its sleep is the point of the test).
    wait::log_contains(&s.sandbox.join("iiswsgi.log"), "slow: sleeping", ACT);
    let fast = nginx
        .connect()
        .request("GET", "/fast", &[], b"")
        .expect("fast request");
    let slow = slow.join().expect("slow thread");
    let workers = s.workers();
    let mut pids = BTreeSet::new();
    for r in [&slow, &fast] {
        assert_eq!(r.status, 200, "{}\n{}", r.text(), s.proc.output());
        let text = r.text();
        let mut f = text.split(' ');
        let pid: u32 = f.next().and_then(|p| p.parse().ok()).expect("pid");
        assert_eq!(f.collect::<Vec<_>>(), ["True", "False"], "{text}");
        pids.insert(pid);
    }
    assert_eq!(pids, workers, "{}", s.proc.output());
    nginx.assert_no_upstream_errors();
}
