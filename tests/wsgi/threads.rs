//! `iiswsgi run --threads N` (wsgi-embedding §3.8, §4): concurrent requests on worker threads
//! attached to Python for life, behind nginx and over direct FastCGI connections; the
//! process-wide shutdown; one thread under IIS whatever was asked.
//!
//! The app is `tests/conformance/apps/threads_app.py`: every answer says which thread served
//! it and how many requests that thread's `threading.local` has counted.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Gateway, IisGateway, NginxGateway, Req, apps_dir, temp_dir};
use crate::support::fcgi_client::{self as fc, Server, wait_for_path};
use crate::support::wait;

const APP: &str = "threads_app:application";

/// `iiswsgi run --app threads_app --listen unix:... ARGS`, spoken to directly over FastCGI.
struct Direct {
    server: Option<Server>,
    socket: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Direct {
    fn start(extra: &[&str]) -> Direct {
        let dir = temp_dir("threads");
        let socket = dir.path().join("gw.sock");
        let log = dir.path().join("iiswsgi.log");
        let (listen, log_arg, chdir) = (
            format!("unix:{}", socket.display()),
            log.display().to_string(),
            apps_dir().display().to_string(),
        );
        let mut args = vec![
            "--app", APP, "--chdir", &chdir, "--listen", &listen, "--log", &log_arg,
        ];
        args.extend_from_slice(extra);
        let server = Server::spawn_listen(&args);
        wait_for_path(&socket, Duration::from_secs(20));
        Direct {
            server: Some(server),
            socket,
            log,
            _dir: dir,
        }
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.socket).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s
    }

    /// One request on its own connection: `(status, body)`.
    fn get(&self, uri: &str) -> (u16, String) {
        let mut s = self.connect();
        let reply = fc::exchange(&mut s, 1, false, &fc::nginx_params("GET", uri, None), b"");
        let cgi = reply.cgi();
        (cgi.status, cgi.text())
    }

    /// Each URI on its own connection, all at once; the replies in the same order.
    fn get_all(&self, uris: &[&str]) -> Vec<(u16, String)> {
        std::thread::scope(|s| {
            let handles: Vec<_> = uris.iter().map(|u| s.spawn(|| self.get(u))).collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("client thread"))
                .collect()
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn threads_serve_slow_requests_concurrently_behind_nginx() {
    let gw = NginxGateway::start(APP, &apps_dir(), &["--threads", "4"]);
    let bytes = gw.request_bytes(&Req::get("/slow?0.3"), "/app", false);
    // Warm up: nginx, the workers and the import are ready.
    assert_eq!(gw.exchange(&bytes, false).status, 200);
    let start = Instant::now();
    let replies: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| gw.exchange(&bytes, false)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let elapsed = start.elapsed();
    eprintln!("4 concurrent 0.3 s requests through nginx, --threads 4: {elapsed:?}");
    let mut idents = BTreeSet::new();
    for r in &replies {
        assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
        let v = r.json();
        assert_eq!(v["multithread"], Value::Bool(true), "wsgi.multithread");
        assert_eq!(
            v["multiprocess"],
            Value::Bool(false),
            "one --listen process"
        );
        assert_eq!(
            v["main"],
            Value::Bool(false),
            "requests run on worker threads"
        );
        idents.insert(v["ident"].as_u64().expect("ident"));
    }
    assert!(
        elapsed < Duration::from_millis(900),
        "4 × 0.3 s took {elapsed:?}: not concurrent"
    );
    assert!(idents.len() >= 2, "one thread served all: {idents:?}");
    assert!(gw.log().contains("serving with 4 request threads"));
}

#[test]
fn threads_keep_threading_local_per_worker() {
    let gw = Direct::start(&["--threads", "3"]);
    // Three rounds of three concurrent slow requests, then a keep-conn burst on one connection.
    let mut answers = Vec::new();
    for _ in 0..3 {
        for (status, body) in gw.get_all(&["/slow?0.15", "/slow?0.15", "/slow?0.15"]) {
            assert_eq!(status, 200, "{body}");
            answers.push(json(&body));
        }
    }
    let mut s = gw.connect();
    for id in 1..=4 {
        let r = fc::exchange(&mut s, id, true, &fc::nginx_params("GET", "/", None), b"");
        answers.push(json(&r.cgi().text()));
    }
    // Each thread's local count is the number of requests that thread served so far.
    answers.sort_by_key(|v| v["total"].as_u64());
    let mut per_thread: BTreeMap<u64, u64> = BTreeMap::new();
    for v in &answers {
        let seen = per_thread
            .entry(v["ident"].as_u64().expect("ident"))
            .or_default();
        *seen += 1;
        assert_eq!(
            v["local_count"].as_u64(),
            Some(*seen),
            "threading.local shared between threads: {answers:?}"
        );
    }
    assert!(per_thread.len() >= 2, "{per_thread:?}");
    assert!(
        per_thread.len() <= 3,
        "more threads than --threads 3: {per_thread:?}"
    );
    let last4: BTreeSet<_> = answers[answers.len() - 4..]
        .iter()
        .map(|v| v["ident"].as_u64())
        .collect();
    assert_eq!(last4.len(), 1, "a connection stays with its thread");
}

#[test]
fn threads_answer_500_in_the_failing_thread_while_the_others_succeed() {
    let gw = Direct::start(&["--threads", "4"]);
    let replies = gw.get_all(&["/slow?0.2", "/fail?0.2", "/slow?0.2", "/slow?0.2"]);
    for (i, (status, body)) in replies.iter().enumerate() {
        let expected = if i == 1 { 500 } else { 200 };
        assert_eq!(*status, expected, "request {i}: {body}");
    }
    assert!(replies[1].1.contains("Error id"), "{}", replies[1].1);
    let log = gw.log();
    assert!(log.contains("this request fails on purpose"), "{log}");
    // The failing thread keeps serving.
    let after = gw.get_all(&["/", "/", "/", "/"]);
    assert!(after.iter().all(|(s, _)| *s == 200), "{after:?}");
}

#[test]
fn threads_finish_every_request_in_flight_on_sigterm_then_exit_zero() {
    let mut gw = Direct::start(&["--threads", "4"]);
    let server = gw.server.take().expect("server");
    let (replies, status) = std::thread::scope(|s| {
        let clients: Vec<_> = (0..4).map(|_| s.spawn(|| gw.get("/slow?0.6"))).collect();
        // All four are in the application (sleeping on purpose) when SIGTERM comes.
        wait::log_count(&gw.log, "sleeping: /slow", 4, Duration::from_secs(20));
        server.signal(rustix::process::Signal::TERM);
        let replies: Vec<_> = clients
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect();
        (replies, server.wait(Duration::from_secs(20)).0)
    });
    let log = gw.log();
    for (code, body) in &replies {
        assert_eq!(*code, 200, "{body}\n{log}");
    }
    assert!(status.success(), "exit status {status:?}\n{log}");
    assert!(
        log.contains("exiting after 4 request(s): a termination signal"),
        "{log}"
    );
}

#[test]
fn threads_all_stop_after_system_exit_in_one_of_them() {
    let mut gw = Direct::start(&["--threads", "3"]);
    let server = gw.server.take().expect("server");
    // `/exit` only once `/slow` is running: an exit that comes first stops the server
    // before it has read the other connection's request.
    let (slow, exit) = std::thread::scope(|s| {
        let slow = s.spawn(|| gw.get("/slow?1"));
        wait::log_contains(&gw.log, "sleeping: /slow", Duration::from_secs(20));
        let exit = gw.get("/exit");
        (slow.join().expect("client thread"), exit)
    });
    assert_eq!(slow.0, 200, "the slow request in another thread finishes");
    assert_eq!(exit.0, 500, "SystemExit answers 500");
    let (status, _, _) = server.wait(Duration::from_secs(10));
    let log = gw.log();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("the application raised SystemExit"), "{log}");
}

#[test]
fn threads_flag_under_iis_serves_on_the_main_thread_with_multithread_false() {
    let mut gw = IisGateway::start(APP, &apps_dir(), &["--threads", "4"]);
    let mut idents = BTreeSet::new();
    for _ in 0..3 {
        let r = gw.send(&Req::get("/"));
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["multithread"], Value::Bool(false));
        assert_eq!(v["multiprocess"], Value::Bool(true));
        assert_eq!(
            v["main"],
            Value::Bool(true),
            "IIS requests run on the main thread"
        );
        idents.insert(v["ident"].as_u64());
    }
    assert_eq!(idents.len(), 1);
    let log = gw.log();
    assert!(
        log.contains("--threads 4 ignored: over IIS's single connection"),
        "{log}"
    );
    assert!(!log.contains("request threads"), "{log}");
    let (status, _, _) = gw.close();
    assert!(status.success());
}

/// `[run] threads` of the manifest applies when `--threads` is absent.
#[test]
fn threads_come_from_the_manifest_unless_the_flag_overrides_them() {
    let dir = temp_dir("threads-manifest");
    std::fs::copy(
        apps_dir().join("threads_app.py"),
        dir.path().join("threads_app.py"),
    )
    .expect("copy app");
    let toml = format!(
        "[app]\nname = \"Threads\"\ntitle = \"Threads\"\nversion = \"1.0.0\"\n\
         description = \"test app\"\n\n[wsgi]\napp = \"{APP}\"\nreload-regex = ''\n\n\
         [run]\nthreads = 3\n\n[iis]\n[iis.fastcgi]\n[package]\n"
    );
    let manifest = dir.path().join("iiswsgi.toml");
    std::fs::write(&manifest, toml).expect("manifest");
    for (extra, expected) in [(None, "3"), (Some("1"), "")] {
        let socket = dir.path().join("gw.sock");
        let log = dir.path().join(format!("log-{expected}"));
        let mut args = vec![
            "--manifest".to_owned(),
            manifest.display().to_string(),
            "--listen".to_owned(),
            format!("unix:{}", socket.display()),
            "--log".to_owned(),
            log.display().to_string(),
        ];
        if let Some(n) = extra {
            args.extend(["--threads".to_owned(), n.to_owned()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let server = Server::spawn_listen(&args);
        wait_for_path(&socket, Duration::from_secs(20));
        let mut s = UnixStream::connect(&socket).expect("connect");
        let r = fc::exchange(&mut s, 1, false, &fc::nginx_params("GET", "/", None), b"");
        let v = json(&r.cgi().text());
        assert_eq!(v["multithread"], Value::Bool(!expected.is_empty()));
        server.signal(rustix::process::Signal::TERM);
        let (status, _, _) = server.wait(Duration::from_secs(10));
        assert!(status.success());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            text.contains("serving with 3 request threads"),
            !expected.is_empty(),
            "{text}"
        );
        let _ = std::fs::remove_file(&socket);
    }
}
