//! Issue 16, the runtime under pressure: idle and slow connections cannot starve real ones,
//! and a request that never returns cannot block shutdown.
//!
//! - `crowding`: 500 idle connections held open against `--max-conns 64`, then a real request,
//!   directly and through a real nginx, answered within a second; idle connections past the
//!   cap are closed, oldest first.
//! - `deadlines`: in process, with short deadlines: params that stop arriving and a queued body
//!   that stalls are cut at their deadline, and other connections are served meanwhile.
//! - `shutdown`: a request stuck in the application and SIGTERM: the process exits within
//!   `--graceful-timeout`, killed by the signal; a second SIGTERM/SIGINT exits at once.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{log_arg, read_log, shown, temp_dir, wait_log};
use crate::support::fcgi_client::{self as fc, Server, exchange, nginx_params};
use crate::support::wait;

/// How long a test waits for the server to act on what it was sent.
const ACT: Duration = Duration::from_secs(10);

/// A real request must be answered this fast, whatever else holds the socket.
const AT_ONCE: Duration = Duration::from_secs(1);

/// `iiswsgi run --diagnostic --listen unix:<dir>/gw.sock` plus `extra`.
struct Listening {
    dir: tempfile::TempDir,
    socket: PathBuf,
    server: Server,
}

fn start(extra: &[&str]) -> Listening {
    raise_fd_limit();
    let dir = temp_dir("pressure");
    let socket = dir.path().join("gw.sock");
    let listen = format!("unix:{}", socket.display());
    let log = log_arg(dir.path());
    let mut args = vec!["--diagnostic", "--listen", &listen, "--log", &log];
    args.extend_from_slice(extra);
    let server = Server::spawn_listen(&args);
    fc::wait_for_path(&socket, ACT);
    Listening {
        dir,
        socket,
        server,
    }
}

/// 500 idle connections and a few hundred more for the peers need more than the usual soft
/// limit of 1024 descriptors once tests run in parallel: raise it to the hard limit.
fn raise_fd_limit() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let wanted = limit.maximum.map_or(8192, |m| m.min(8192));
    if limit.current.is_some_and(|c| c < wanted) {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        );
    }
}

/// Connections that never send a byte, opened from a thread (a connect waits once the
/// listen backlog is full, as it did when the server stopped accepting at its cap).
struct IdleFlood {
    conns: Arc<Mutex<Vec<UnixStream>>>,
}

impl IdleFlood {
    /// Opens `n` idle connections to `socket`; returns once all are open or after 5 s.
    fn open(socket: &Path, n: usize) -> IdleFlood {
        let conns = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let held = Arc::clone(&conns);
        let socket = socket.to_owned();
        std::thread::spawn(move || {
            for _ in 0..n {
                match UnixStream::connect(&socket) {
                    Ok(s) => held.lock().expect("lock").push(s),
                    Err(_) => return,
                }
            }
        });
        wait::poll(Duration::from_secs(5), || {
            (conns.lock().expect("lock").len() == n).then_some(())
        });
        IdleFlood { conns }
    }

    /// How many of the connections the server has closed (EOF).
    fn closed(&self) -> usize {
        let conns = self.conns.lock().expect("lock");
        conns
            .iter()
            .filter(|s| {
                s.set_nonblocking(true).expect("nonblocking");
                matches!((&**s).read(&mut [0u8; 1]), Ok(0))
            })
            .count()
    }
}

/// One GET on a fresh connection, with a read timeout of 5 s so that a request left waiting
/// fails the test quickly; returns how long the answer took.
fn timed_get(socket: &Path, path: &str) -> Duration {
    let started = Instant::now();
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(&fc::request_bytes(
        1,
        true,
        &nginx_params("GET", path, None),
        b"",
        8192,
    ))
    .expect("write");
    let reply = fc::read_reply(&mut s, 1)
        .unwrap_or_else(|e| panic!("no answer to {path} after {:?}: {e}", started.elapsed()));
    assert_eq!(shown(&reply.cgi().text(), "PATH_INFO"), path);
    started.elapsed()
}

mod crowding {
    use super::*;

    /// Issue 16: with the cap at 64 and idle connections never closed, 500 of them left
    /// every real request waiting in the backlog (10/10 failed).
    #[test]
    fn a_request_is_answered_at_once_while_500_idle_connections_are_open() {
        let l = start(&[]);
        let flood = IdleFlood::open(&l.socket, 500);
        let took = timed_get(&l.socket, "/real");
        assert!(took < AT_ONCE, "answered after {took:?}");
        // All 500 were accepted before the real one (the backlog is FIFO), each past the cap
        // closing the longest-idle connection.
        wait::until_true("idle connections past the cap are closed", ACT, || {
            flood.closed() >= 500 - 64
        });
        let log = wait_log(l.dir.path(), "holds --max-conns 64 connections");
        assert!(!log.contains("ERROR") && !log.contains("WARN"), "{log}");
    }

    #[test]
    fn the_cap_is_per_request_thread() {
        let l = start(&["--threads", "4", "--max-conns", "16"]);
        let flood = IdleFlood::open(&l.socket, 500);
        let took = timed_get(&l.socket, "/real");
        assert!(took < AT_ONCE, "answered after {took:?}");
        wait::until_true("idle connections past 4 × 16 are closed", ACT, || {
            flood.closed() >= 500 - 4 * 16
        });
        // Each thread holds up to 16: 64 stay open, not 16 in all.
        let open = 500 - flood.closed();
        assert!(open > 16 && open <= 64, "{open} left open");
    }

    #[test]
    fn the_oldest_idle_connection_is_closed_first_and_busy_ones_never() {
        let l = start(&["--max-conns", "3"]);
        // A keep-alive connection that served a request, then two idle ones.
        let mut used = UnixStream::connect(&l.socket).expect("connect");
        used.set_read_timeout(Some(ACT)).expect("timeout");
        exchange(&mut used, 1, true, &nginx_params("GET", "/a", None), b"");
        let second = UnixStream::connect(&l.socket).expect("connect");
        // A request whose body is still arriving: never closed to make room.
        let mut busy = UnixStream::connect(&l.socket).expect("connect");
        busy.set_read_timeout(Some(ACT)).expect("timeout");
        let full = fc::request_bytes(1, true, &nginx_params("POST", "/b", Some(4)), b"abcd", 64);
        busy.write_all(&full[..full.len() - 12]).expect("partial");
        wait::peer_has_read(&busy, ACT);
        // A fourth connection needs room: `used`, idle longest, goes.
        timed_get(&l.socket, "/c");
        used.set_nonblocking(true).expect("nonblocking");
        wait::until_true("the oldest idle connection is closed", ACT, || {
            matches!(used.read(&mut [0u8; 1]), Ok(0))
        });
        second.set_nonblocking(true).expect("nonblocking");
        assert!(
            matches!((&second).read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the younger idle connection stays"
        );
        busy.write_all(&full[full.len() - 12..]).expect("rest");
        let reply = fc::read_reply(&mut busy, 1).expect("the busy request is answered");
        assert_eq!(shown(&reply.cgi().text(), "iiswsgi.body_bytes"), "4");
    }

    /// Through nginx (keep-alive upstream pool): before the fix each request waited for
    /// `fastcgi_read_timeout` and ended as a 504 after 60 s.
    #[test]
    fn nginx_answers_at_once_while_500_idle_connections_are_open() {
        use crate::support::peers::{Peer, Sandbox};
        let sandbox = Sandbox::new("crowd-nginx");
        let socket = sandbox.join("gw.sock");
        let log = sandbox.join("iiswsgi.log").display().to_string();
        let listen = format!("unix:{}", socket.display());
        let _server = Server::spawn_listen(&["--diagnostic", "--listen", &listen, "--log", &log]);
        fc::wait_for_path(&socket, ACT);
        let nginx = Peer::nginx(&sandbox, &socket);
        let ten_gets = |round: &str| {
            for n in 0..10 {
                let mut client = nginx.connect();
                client
                    .stream()
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let started = Instant::now();
                let path = format!("/{round}/{n}");
                let r = client
                    .request("GET", &path, &[], b"")
                    .unwrap_or_else(|e| panic!("{path}: {e}\n{}", nginx.proc.output()));
                let took = started.elapsed();
                assert_eq!(r.status, 200, "{}", r.text());
                assert!(took < AT_ONCE, "{path} answered after {took:?}");
            }
        };
        // nginx holds no upstream connection yet: its first must get past 500 idle ones.
        raise_fd_limit();
        let first = IdleFlood::open(&socket, 500);
        ten_gets("first");
        // 500 more: the cap now also closes nginx's pooled connection, idle by then; nginx
        // notices (or retries on a fresh connection) and answers as before.
        let second = IdleFlood::open(&socket, 500);
        ten_gets("second");
        drop((first, second));
    }
}

mod deadlines {
    //! In process (`server::run`), so the deadlines can be short.
    use super::*;
    use iiswsgi::runtime::server::{
        self, Application, Body, Outcome, Request, Response, RunOptions,
    };
    use iiswsgi::runtime::transport::ListenAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts its calls; answers `ok`.
    struct Counting(Arc<AtomicUsize>);
    impl Application for Counting {
        fn handle(&self, _: &Request, body: &mut dyn Body, r: &mut dyn Response) -> Outcome {
            self.0.fetch_add(1, Ordering::SeqCst);
            let _ = std::io::copy(body, &mut std::io::sink());
            let _ = r.start("200 OK", &[(b"Content-Length", b"2")]);
            let _ = r.write_final(b"ok");
            Outcome::Complete
        }
    }

    /// A server run in a thread of the test process, stopped when dropped.
    struct InProcess {
        _dir: tempfile::TempDir,
        socket: PathBuf,
        calls: Arc<AtomicUsize>,
        stop: Arc<Mutex<Option<server::StopHandle>>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    impl Drop for InProcess {
        fn drop(&mut self) {
            if let Some(stop) = self.stop.lock().expect("lock").take() {
                stop.request();
            }
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// Serves [`Counting`] with 1 s deadlines for params and queued bodies.
    fn serve() -> InProcess {
        let dir = temp_dir("deadline");
        let socket = dir.path().join("app.sock");
        let calls = Arc::new(AtomicUsize::new(0));
        let options = RunOptions {
            listen: Some(ListenAddr::Unix(socket.clone())),
            params_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            // The logger is process-wide; share the file the other in-process servers use.
            log: iiswsgi::runtime::logging::LogConfig {
                path: Some(
                    std::env::temp_dir()
                        .join(format!("iiswsgi-boundary-{}.log", std::process::id())),
                ),
                ..Default::default()
            },
            ..RunOptions::default()
        };
        let app = Counting(Arc::clone(&calls));
        let stop = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let _ = server::run(options, move |info| {
                *slot.lock().expect("lock") = info.stop.clone();
                Ok(app)
            });
        });
        fc::wait_for_path(&socket, ACT);
        InProcess {
            _dir: dir,
            socket,
            calls,
            stop,
            thread: Some(thread),
        }
    }

    /// Reads until the server closes `s`; returns how long that took from `since`.
    fn closed_after(s: &mut UnixStream, since: Instant) -> Duration {
        s.set_read_timeout(Some(ACT)).expect("timeout");
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "nothing is answered: {rest:?}");
        since.elapsed()
    }

    /// Issue 16: params stopping below every cap held the connection for good.
    #[test]
    fn params_that_stop_arriving_are_cut_at_the_params_timeout() {
        let srv = serve();
        let (socket, calls) = (&srv.socket, &srv.calls);
        let mut slow = UnixStream::connect(socket).expect("connect");
        let full = fc::request_bytes(1, true, &nginx_params("GET", "/slow", None), b"", 8192);
        let sent = Instant::now();
        slow.write_all(&full[..30])
            .expect("begin and part of the params");
        let mut ok = UnixStream::connect(socket).expect("connect");
        ok.set_read_timeout(Some(ACT)).expect("timeout");
        assert_eq!(
            exchange(&mut ok, 1, true, &nginx_params("GET", "/", None), b"")
                .cgi()
                .status,
            200,
            "served meanwhile"
        );
        let took = closed_after(&mut slow, sent);
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "cut after {took:?} with a 1 s params timeout"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "only the complete request ran"
        );
    }

    /// Issue 16: a body stalling below the 1 MiB buffer cap held its request for 200 s.
    #[test]
    fn a_queued_body_that_stops_arriving_is_cut_at_the_read_timeout() {
        let srv = serve();
        let (socket, calls) = (&srv.socket, &srv.calls);
        let mut slow = UnixStream::connect(socket).expect("connect");
        let full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/up", Some(1000)),
            &[b'u'; 1000],
            100,
        );
        slow.write_all(&full[..full.len() - 600])
            .expect("part of the body");
        wait::peer_has_read(&slow, ACT);
        let last_bytes = Instant::now();
        let took = closed_after(&mut slow, last_bytes);
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "cut after {took:?} with a 1 s read timeout"
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the application never ran it"
        );
    }

    #[test]
    fn a_body_that_keeps_arriving_slowly_is_not_cut() {
        let srv = serve();
        let (socket, calls) = (&srv.socket, &srv.calls);
        let mut s = UnixStream::connect(socket).expect("connect");
        s.set_read_timeout(Some(ACT)).expect("timeout");
        let full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/trickle", Some(60)),
            &[b't'; 60],
            10,
        );
        // The params at once, then the body a 10-byte record every 300 ms: 2.1 s in all,
        // never 1 s without progress.
        let body_start = full.len() - fc::stream(fc::STDIN, 1, &[b't'; 60], 10).len();
        s.write_all(&full[..body_start]).expect("params");
        for piece in full[body_start..].chunks(24) {
            std::thread::sleep(Duration::from_millis(300));
            s.write_all(piece).expect("write");
        }
        let reply = fc::read_reply(&mut s, 1).expect("answered");
        assert_eq!(reply.cgi().body, b"ok");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

mod shutdown {
    use super::*;

    /// A body larger than what the server buffers before calling the application, sent but
    /// for its last bytes: the application sits in the call reading it, as a request that
    /// never returns does.
    fn hang_a_request(socket: &Path) -> UnixStream {
        let body = vec![b'h'; 1_500_000];
        let full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/hang", Some(body.len())),
            &body,
            65535,
        );
        let mut c = UnixStream::connect(socket).expect("connect");
        c.write_all(&full[..full.len() - 100])
            .expect("all but the end");
        wait::peer_has_read(&c, ACT);
        c
    }

    /// Issue 16: SIGTERM did nothing for 40 s while a request hung.
    #[test]
    fn sigterm_with_a_hung_request_exits_within_the_graceful_timeout() {
        let l = start(&["--graceful-timeout", "1"]);
        let _hung = hang_a_request(&l.socket);
        let sent = Instant::now();
        l.server.signal(Signal::TERM);
        let (status, out, err) = l.server.wait(Duration::from_secs(5));
        let took = sent.elapsed();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(4),
            "exited after {took:?} with a 1 s grace period"
        );
        assert!(out.is_empty() && err.is_empty());
        assert!(!l.socket.exists(), "the socket file is removed");
        let log = read_log(l.dir.path());
        assert!(
            log.contains("SIGTERM: requests still running after --graceful-timeout (1 s)"),
            "{log}"
        );
    }

    /// Issue 16: a second SIGTERM or SIGINT did nothing either.
    #[test]
    fn a_second_signal_exits_at_once() {
        for (first, second, died_by) in [
            (Signal::TERM, Signal::TERM, libc::SIGTERM),
            (Signal::TERM, Signal::INT, libc::SIGINT),
        ] {
            let l = start(&["--graceful-timeout", "60"]);
            let _hung = hang_a_request(&l.socket);
            l.server.signal(first);
            wait_log(l.dir.path(), "finishing the current request");
            let sent = Instant::now();
            l.server.signal(second);
            let (status, ..) = l.server.wait(Duration::from_secs(5));
            assert!(
                sent.elapsed() < Duration::from_secs(2),
                "{:?}",
                sent.elapsed()
            );
            assert_eq!(status.signal(), Some(died_by), "{status:?}");
            assert!(!l.socket.exists(), "the socket file is removed");
            let log = read_log(l.dir.path());
            assert!(
                log.contains("again: exiting now, without the requests still running"),
                "{log}"
            );
        }
    }

    #[test]
    fn a_request_finishing_within_the_grace_period_still_ends_normally() {
        let l = start(&["--graceful-timeout", "30"]);
        let mut c = hang_a_request(&l.socket);
        l.server.signal(Signal::TERM);
        wait_log(l.dir.path(), "finishing the current request");
        let full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/hang", Some(1_500_000)),
            &vec![b'h'; 1_500_000],
            65535,
        );
        c.write_all(&full[full.len() - 100..]).expect("the end");
        c.set_read_timeout(Some(ACT)).expect("timeout");
        let reply = fc::read_reply(&mut c, 1).expect("answered");
        assert_eq!(reply.cgi().status, 200);
        let (status, ..) = l.server.wait(ACT);
        assert!(status.success(), "{status:?}");
    }
}
