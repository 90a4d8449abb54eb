//! `iiswsgi run` end to end: the built binary serving `--diagnostic` over every transport,
//! driven by the independent client in `support::fcgi_client`.
//!
//! - `iis`: a socketpair on fd 0 as IIS's named pipe: ≥ 600 keep-conn requests with ids
//!   wrapping 1..255, 8 KiB STDIN records, IIS's param table, environ rules through the wire,
//!   EOF = clean exit with nothing on stdout/stderr.
//! - `fd0_listener`: a listening socket on fd 0 (IIS TCP mode, lighttpd bin-path).
//! - `listen`: `--listen unix:` with concurrent connections, KEEP_CONN=0, hostile params,
//!   disconnects, SIGTERM during a slow request.
//! - `nginx`: a smoke test through a real nginx and curl.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fcgi_testkit::iis::iis_id;
use rustix::process::Signal;

/// Issue 16: idle floods, stalled requests, hung requests at shutdown (`run/pressure.rs`).
mod pressure;
/// `--processes N`: the supervisor and its workers sharing one socket (`run/processes.rs`).
mod processes;

use crate::support::fcgi_client::{
    self as fc, Cgi, Reply, Server, diag_value, exchange, fnv1a64, iis_params, nginx_params,
};
use crate::support::wait;

/// How long a test waits for the server to act on what it was sent.
const ACT: Duration = Duration::from_secs(10);

fn page(reply: &Reply) -> (Cgi, String) {
    let cgi = reply.cgi();
    let text = cgi.text();
    (cgi, text)
}

fn shown(page: &str, name: &str) -> String {
    diag_value(page, name).unwrap_or_else(|| panic!("{name} not on the page:\n{page}"))
}

/// PEP 3333 shows bytes as latin-1: what the page shows for UTF-8 text.
fn as_latin1(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

/// Asserts the framing IIS needs at the end of a response: an empty STDOUT then END_REQUEST,
/// every STDOUT record within 65535 bytes, no STDERR.
fn assert_iis_framing(reply: &Reply) {
    let n = reply.records.len();
    assert!(n >= 3, "{:?}", reply.records);
    assert_eq!(reply.records[n - 2], (fc::STDOUT, 0), "{:?}", reply.records);
    assert_eq!(reply.records[n - 1], (fc::END_REQUEST, 8));
    assert!(
        reply.records[..n - 2]
            .iter()
            .all(|&(t, len)| t == fc::STDOUT && len > 0)
    );
    assert!(reply.stderr.is_empty());
    assert_eq!(reply.protocol_status, 0);
}

fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("iiswsgi-run-{tag}-"))
        .tempdir()
        .expect("tempdir")
}

fn log_arg(dir: &Path) -> String {
    dir.join("iiswsgi.log").display().to_string()
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("iiswsgi.log")).unwrap_or_default()
}

/// Waits until the server's log in `dir` says `needle`; returns the log.
fn wait_log(dir: &Path, needle: &str) -> String {
    wait::log_contains(&dir.join("iiswsgi.log"), needle, ACT)
}

mod iis {
    use super::*;

    #[test]
    fn socketpair_serves_600_keep_conn_requests_with_ids_wrapping_past_255() {
        let dir = temp_dir("iis600");
        let log = log_arg(dir.path());
        let (server, mut pipe) = Server::spawn_iis(
            &["--diagnostic", "--log", &log],
            &[
                ("APP_POOL_ID", "DefaultAppPool"),
                ("_FCGI_X_PIPE_", r"\\.\pipe\IISFCGI-test"),
            ],
        );
        for nth in 0..620 {
            let id = iis_id(nth);
            // Every third request uploads a body spread over 8 KiB STDIN records.
            let body: Vec<u8> = if nth % 3 == 0 {
                (0..(nth * 97 % 40_000 + 1))
                    .map(|i| (i * 7 + nth) as u8)
                    .collect()
            } else {
                Vec::new()
            };
            let method = if body.is_empty() { "GET" } else { "POST" };
            let uri = format!("/shop/item/{nth}?n={nth}");
            let params = iis_params(method, "/LM/W3SVC/1/ROOT/shop", &uri, body.len());
            // BEGIN_REQUEST as its own write, like IIS.
            pipe.write_all(&fc::begin(id, true)).expect("begin");
            let mut rest = fc::stream(fc::PARAMS, id, &fc::pairs(&params, nth % 2 == 1), 4096);
            rest.extend(fc::stream(fc::STDIN, id, &body, 8192));
            pipe.write_all(&rest).expect("params and stdin");
            let reply = fc::read_reply(&mut pipe, id)
                .unwrap_or_else(|e| panic!("request #{nth} (id {id}): {e}"));
            assert_iis_framing(&reply);
            assert_eq!(reply.app_status, 0);
            let (cgi, text) = page(&reply);
            assert_eq!(cgi.status, 200, "#{nth}: {text}");
            // `Status:` first is checked by the parse; every line must end in CRLF.
            assert!(cgi.crlf);
            assert_eq!(
                cgi.header("Content-Length"),
                Some(cgi.body.len().to_string().as_str())
            );
            assert_eq!(shown(&text, "iiswsgi.request_id"), id.to_string());
            assert_eq!(shown(&text, "SCRIPT_NAME"), "/shop");
            assert_eq!(shown(&text, "PATH_INFO"), format!("/item/{nth}"));
            assert_eq!(shown(&text, "QUERY_STRING"), format!("n={nth}"));
            assert_eq!(shown(&text, "REQUEST_METHOD"), method);
            assert_eq!(shown(&text, "iiswsgi.body_bytes"), body.len().to_string());
            assert_eq!(shown(&text, "iiswsgi.body_fnv1a64"), fnv1a64(&body));
            assert_eq!(shown(&text, "CONTENT_LENGTH"), body.len().to_string());
            assert!(diag_value(&text, "HTTP_CONTENT_LENGTH").is_none());
        }
        drop(pipe);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        assert!(status.success(), "{status:?}");
        assert!(out.is_empty(), "stdout: {}", String::from_utf8_lossy(&out));
        assert!(err.is_empty(), "stderr: {}", String::from_utf8_lossy(&err));
        let log = read_log(dir.path());
        assert!(log.contains(" DefaultAppPool INFO "), "{log}");
        assert!(log.contains("exiting after 620 request(s)"), "{log}");
    }

    fn one(args: &[&str], md: &str, uri: &str, extra: &[(&str, &str)]) -> (Reply, String) {
        let dir = temp_dir("iis-one");
        let log = log_arg(dir.path());
        let mut all = vec!["--diagnostic", "--log", &log];
        all.extend_from_slice(args);
        let (server, mut pipe) = Server::spawn_iis(&all, &[]);
        let mut params = iis_params("GET", md, uri, 0);
        for (n, v) in extra {
            match params.iter_mut().find(|(name, _)| name == n) {
                Some((_, value)) => *value = v.as_bytes().to_vec(),
                // Headers and module variables come before the fixed table.
                None => params.insert(0, ((*n).to_owned(), v.as_bytes().to_vec())),
            }
        }
        let reply = exchange(&mut pipe, 1, true, &params, b"");
        drop(pipe);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        assert!(status.success() && out.is_empty() && err.is_empty());
        let text = reply.cgi().text();
        (reply, text)
    }

    #[test]
    fn non_ascii_percent_encoded_path_reaches_the_app_as_utf8_bytes() {
        let (_, text) = one(
            &[],
            "/LM/W3SVC/1/ROOT/shop",
            "/shop/caf%C3%A9/%E6%97%A5?q=%E2%82%AC",
            &[],
        );
        assert_eq!(shown(&text, "SCRIPT_NAME"), "/shop");
        assert_eq!(shown(&text, "PATH_INFO"), as_latin1("/café/日"));
        assert_eq!(shown(&text, "QUERY_STRING"), "q=%E2%82%AC");
        // IIS's own ANSI PATH_INFO ("/shop/caf?/?") is only in the raw params.
        assert!(text.contains("PATH_INFO=/shop/caf?/?"), "{text}");
    }

    #[test]
    fn url_rewrite_uses_original_url_only_when_iis_rewrote() {
        let extra = [
            ("HTTP_X_ORIGINAL_URL", "/shop/pretty/a%20b"),
            ("IIS_WasUrlRewritten", "1"),
        ];
        let (_, text) = one(&[], "/LM/W3SVC/1/ROOT/shop", "/shop/app.py?x=1", &extra);
        assert_eq!(shown(&text, "PATH_INFO"), "/pretty/a b");
        assert_eq!(shown(&text, "QUERY_STRING"), "x=1");
        let spoof = [("HTTP_X_ORIGINAL_URL", "/shop/admin")];
        let (_, text) = one(&[], "/LM/W3SVC/1/ROOT/shop", "/shop/public", &spoof);
        assert_eq!(shown(&text, "PATH_INFO"), "/public");
        let (_, text) = one(
            &["--original-url", "always"],
            "/LM/W3SVC/1/ROOT/shop",
            "/shop/public",
            &spoof,
        );
        assert_eq!(shown(&text, "PATH_INFO"), "/admin");
    }

    #[test]
    fn root_application_and_https_off() {
        let (_, text) = one(&[], "/LM/W3SVC/1/ROOT", "/", &[]);
        assert_eq!(shown(&text, "SCRIPT_NAME"), "");
        assert_eq!(shown(&text, "PATH_INFO"), "/");
        assert_eq!(shown(&text, "HTTPS"), "off");
        assert_eq!(shown(&text, "wsgi.url_scheme"), "http");
        assert_eq!(shown(&text, "wsgi.multiprocess"), "True");
        assert_eq!(shown(&text, "wsgi.multithread"), "False");
    }

    #[test]
    fn mount_overrides_the_appl_md_path_prefix() {
        let (_, text) = one(
            &["--mount", "/apps/shop"],
            "/LM/W3SVC/1/ROOT",
            "/apps/shop/x",
            &[],
        );
        assert_eq!(shown(&text, "SCRIPT_NAME"), "/apps/shop");
        assert_eq!(shown(&text, "PATH_INFO"), "/x");
    }

    #[test]
    fn encoded_nul_in_the_path_is_answered_400_by_the_server() {
        let (reply, text) = one(&[], "/LM/W3SVC/1/ROOT", "/a%00b", &[]);
        assert_iis_framing(&reply);
        assert_eq!(reply.cgi().status, 400, "{text}");
        assert!(text.contains("NUL"), "{text}");
    }

    #[test]
    fn malformed_content_length_is_answered_400() {
        let (reply, _) = one(&[], "/LM/W3SVC/1/ROOT", "/", &[("CONTENT_LENGTH", "12abc")]);
        assert_eq!(reply.cgi().status, 400);
    }

    #[test]
    fn get_values_on_id_0_is_answered_for_one_request_at_a_time() {
        let (server, mut pipe) = Server::spawn_iis(&["--diagnostic", "--log", "/dev/null"], &[]);
        let names: [(&str, &str); 3] = [
            ("FCGI_MAX_CONNS", ""),
            ("FCGI_MAX_REQS", ""),
            ("FCGI_MPXS_CONNS", ""),
        ];
        pipe.write_all(&fc::record(fc::GET_VALUES, 0, &fc::pairs(&names, false), 0))
            .expect("write");
        let rec = fc::read_record(&mut pipe).expect("read").expect("record");
        assert_eq!((rec.kind, rec.id), (fc::GET_VALUES_RESULT, 0));
        let text = String::from_utf8_lossy(&rec.content).into_owned();
        assert!(
            text.contains("FCGI_MAX_CONNS1") && text.contains("FCGI_MPXS_CONNS0"),
            "{text:?}"
        );
        // The connection still serves requests.
        let reply = exchange(
            &mut pipe,
            1,
            true,
            &iis_params("GET", "/LM/W3SVC/1/ROOT", "/", 0),
            b"",
        );
        assert_eq!(reply.cgi().status, 200);
        drop(pipe);
        assert!(server.wait(Duration::from_secs(10)).0.success());
    }

    #[test]
    fn eof_before_any_request_exits_zero_silently() {
        let dir = temp_dir("iis-idle");
        let (server, pipe) =
            Server::spawn_iis(&["--diagnostic", "--log", &log_arg(dir.path())], &[]);
        // Idle on the pipe: it took over the transport and waits for a first request.
        wait_log(dir.path(), "transport: ");
        drop(pipe);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        assert!(status.success());
        assert!(out.is_empty() && err.is_empty(), "{out:?} {err:?}");
        assert!(read_log(dir.path()).contains("exiting after 0 request(s)"));
    }

    #[test]
    fn eof_in_the_middle_of_a_request_exits_zero_silently() {
        let (server, mut pipe) = Server::spawn_iis(&["--diagnostic", "--log", "/dev/null"], &[]);
        let params = iis_params("POST", "/LM/W3SVC/1/ROOT", "/", 100);
        let mut bytes = fc::begin(1, true);
        bytes.extend(fc::stream(fc::PARAMS, 1, &fc::pairs(&params, false), 4096));
        bytes.extend(fc::record(fc::STDIN, 1, &[b'x'; 50], 6));
        pipe.write_all(&bytes).expect("write");
        // In the middle of the request: it has read all of it so far.
        wait::peer_has_read(&pipe, ACT);
        drop(pipe);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        assert!(status.success());
        assert!(out.is_empty() && err.is_empty());
    }

    #[test]
    fn fd0_is_replaced_by_dev_null_so_children_cannot_read_the_pipe() {
        // The server's fd 0 must not be the socketpair any more: a child that inherits
        // stdin must not see protocol bytes. /proc shows where fd 0 points.
        let (server, mut pipe) = Server::spawn_iis(&["--diagnostic", "--log", "/dev/null"], &[]);
        let reply = exchange(
            &mut pipe,
            1,
            true,
            &iis_params("GET", "/LM/W3SVC/1/ROOT", "/", 0),
            b"",
        );
        assert_eq!(reply.cgi().status, 200);
        let fd0 = std::fs::read_link(format!("/proc/{}/fd/0", server.pid())).expect("readlink");
        assert_eq!(fd0, PathBuf::from("/dev/null"));
        drop(pipe);
        assert!(server.wait(Duration::from_secs(10)).0.success());
    }

    #[test]
    fn response_larger_than_a_record_is_split_within_65535_bytes() {
        let (server, mut pipe) = Server::spawn_iis(&["--diagnostic", "--log", "/dev/null"], &[]);
        let mut params = iis_params("GET", "/LM/W3SVC/1/ROOT", "/", 0);
        for i in 0..20 {
            params.push((format!("HTTP_X_FILL_{i}"), vec![b'a' + i as u8; 10_000]));
        }
        let reply = exchange(&mut pipe, 1, true, &params, b"");
        assert_iis_framing(&reply);
        assert!(reply.records.len() >= 6, "{:?}", reply.records);
        assert!(reply.records.iter().all(|&(_, len)| len <= 65535));
        let (cgi, text) = page(&reply);
        assert_eq!(
            cgi.header("Content-Length"),
            Some(cgi.body.len().to_string().as_str())
        );
        assert_eq!(shown(&text, "HTTP_X_FILL_19"), "t".repeat(10_000));
        drop(pipe);
        assert!(server.wait(Duration::from_secs(10)).0.success());
    }
}

mod fd0_listener {
    use super::*;

    #[test]
    fn listening_unix_socket_on_fd0_accepts_and_serves_keep_conn_0() {
        let dir = temp_dir("fd0");
        let path = dir.path().join("lgw.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = Server::spawn_on(
            OwnedFd::from(listener),
            &["--diagnostic", "--log", &log_arg(dir.path())],
            &[],
        );
        // Two connections at once, lighttpd style: id 1, KEEP_CONN=0, one request each.
        let mut a = UnixStream::connect(&path).expect("connect a");
        let mut b = UnixStream::connect(&path).expect("connect b");
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
        }
        let ra = exchange(&mut a, 1, false, &nginx_params("GET", "/a", None), b"");
        let rb = exchange(
            &mut b,
            1,
            false,
            &nginx_params("POST", "/b", Some(3)),
            b"xyz",
        );
        assert_eq!(shown(&ra.cgi().text(), "PATH_INFO"), "/a");
        assert_eq!(shown(&rb.cgi().text(), "iiswsgi.body_bytes"), "3");
        // KEEP_CONN=0: the server closes after END_REQUEST.
        for s in [&mut a, &mut b] {
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).expect("EOF after END_REQUEST");
            assert!(rest.is_empty(), "{rest:?}");
        }
        server.signal(Signal::TERM);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        assert!(status.success() && out.is_empty() && err.is_empty());
        assert!(read_log(dir.path()).contains("listening unix socket"));
    }

    #[test]
    fn listening_socket_on_fd0_is_served_by_several_threads() {
        let dir = temp_dir("fd0-threads");
        let path = dir.path().join("lgw.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let server = Server::spawn_on(
            OwnedFd::from(listener),
            &[
                "--diagnostic",
                "--threads",
                "2",
                "--log",
                &log_arg(dir.path()),
            ],
            &[],
        );
        let mut conns: Vec<UnixStream> = (0..4)
            .map(|_| UnixStream::connect(&path).expect("connect"))
            .collect();
        for (n, s) in conns.iter_mut().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let uri = format!("/{n}");
            let r = exchange(s, 1, false, &nginx_params("GET", &uri, None), b"");
            assert_eq!(shown(&r.cgi().text(), "PATH_INFO"), uri);
        }
        server.signal(Signal::TERM);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        let log = read_log(dir.path());
        assert!(
            status.success() && out.is_empty() && err.is_empty(),
            "{log}"
        );
        assert!(log.contains("serving with 2 request threads"), "{log}");
        assert!(log.contains("exiting after 4 request(s)"), "{log}");
    }

    #[test]
    fn listening_tcp_socket_on_fd0_is_iis_tcp_mode() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::spawn_on(
            OwnedFd::from(listener),
            &["--diagnostic", "--log", "/dev/null"],
            &[],
        );
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        for nth in 0..300 {
            let id = iis_id(nth);
            let reply = exchange(
                &mut s,
                id,
                true,
                &iis_params("GET", "/LM/W3SVC/1/ROOT", "/t", 0),
                b"",
            );
            assert_iis_framing(&reply);
            assert_eq!(
                shown(&reply.cgi().text(), "iiswsgi.request_id"),
                id.to_string()
            );
        }
        server.signal(Signal::TERM);
        assert!(server.wait(Duration::from_secs(10)).0.success());
    }

    #[test]
    fn tcp_peers_outside_fcgi_web_server_addrs_are_refused() {
        let dir = temp_dir("allow");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = Server::spawn_on(
            OwnedFd::from(listener),
            &["--diagnostic", "--log", &log_arg(dir.path())],
            &[("FCGI_WEB_SERVER_ADDRS", "192.0.2.10, 192.0.2.11")],
        );
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let _ = s.write_all(&fc::request_bytes(
            1,
            true,
            &nginx_params("GET", "/", None),
            b"",
            8192,
        ));
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got); // closed at once, or reset
        assert!(got.is_empty(), "a refused peer got {} bytes", got.len());
        server.signal(Signal::TERM);
        assert!(server.wait(Duration::from_secs(10)).0.success());
        assert!(read_log(dir.path()).contains("not in FCGI_WEB_SERVER_ADDRS"));
    }

    #[test]
    fn stdin_that_is_not_a_socket_is_a_clear_error() {
        let out = std::process::Command::new(fc::iiswsgi_bin())
            .args(["run", "--diagnostic", "--log", "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run");
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("stdin is a character device") && err.contains("--listen"),
            "{err}"
        );
    }
}

mod listen {
    use super::*;

    struct Listening {
        dir: tempfile::TempDir,
        socket: PathBuf,
        server: Server,
    }

    fn start(extra: &[&str]) -> Listening {
        let dir = temp_dir("listen");
        let socket = dir.path().join("gw.sock");
        let listen = format!("unix:{}", socket.display());
        let log = log_arg(dir.path());
        let mut args = vec!["--listen", &listen, "--log", &log];
        if !extra.iter().any(|a| a.starts_with("--diagnostic")) {
            args.push("--diagnostic");
        }
        args.extend_from_slice(extra);
        let server = Server::spawn_listen(&args);
        fc::wait_for_path(&socket, Duration::from_secs(10));
        Listening {
            dir,
            socket,
            server,
        }
    }

    fn connect(path: &Path) -> UnixStream {
        let s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s
    }

    #[test]
    fn socket_is_created_0666_and_removed_at_exit() {
        use std::os::unix::fs::PermissionsExt;
        let l = start(&[]);
        let mode = std::fs::metadata(&l.socket)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666);
        l.server.signal(Signal::TERM);
        let (status, out, err) = l.server.wait(Duration::from_secs(10));
        assert!(status.success() && out.is_empty() && err.is_empty());
        assert!(!l.socket.exists());
    }

    #[test]
    fn idle_keep_alive_and_half_sent_requests_do_not_block_another_connection() {
        let l = start(&[]);
        // A: a keep-alive connection that served one request and now sits idle.
        let mut a = connect(&l.socket);
        let r = exchange(&mut a, 1, true, &nginx_params("GET", "/a", None), b"");
        assert_eq!(r.cgi().status, 200);
        // B: a request whose params stop half-way.
        let mut b = connect(&l.socket);
        let full = fc::request_bytes(1, true, &nginx_params("GET", "/b", None), b"", 8192);
        b.write_all(&full[..20]).expect("partial");
        // C: a POST whose body has not finished arriving (its request is queued, not run).
        let mut c = connect(&l.socket);
        let c_full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/c", Some(10)),
            b"0123456789",
            8192,
        );
        let cut = c_full.len() - 16;
        c.write_all(&c_full[..cut]).expect("partial body");
        // The server holds B's half params and C's queued request.
        wait::peer_has_read(&b, ACT);
        wait::peer_has_read(&c, ACT);
        // D must be served at once despite A, B and C.
        let mut d = connect(&l.socket);
        let started = Instant::now();
        let r = exchange(&mut d, 1, true, &nginx_params("GET", "/d", None), b"");
        assert_eq!(shown(&r.cgi().text(), "PATH_INFO"), "/d");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Now B, C and A finish.
        b.write_all(&full[20..]).expect("rest");
        let r = fc::read_reply(&mut b, 1).expect("b");
        assert_eq!(shown(&r.cgi().text(), "PATH_INFO"), "/b");
        c.write_all(&c_full[cut..]).expect("rest");
        let r = fc::read_reply(&mut c, 1).expect("c");
        assert_eq!(shown(&r.cgi().text(), "iiswsgi.body_bytes"), "10");
        let r = exchange(&mut a, 1, true, &nginx_params("GET", "/a2", None), b"");
        assert_eq!(shown(&r.cgi().text(), "PATH_INFO"), "/a2");
    }

    #[test]
    fn keep_conn_0_closes_after_end_request_with_a_lingering_close() {
        let l = start(&[]);
        let mut s = connect(&l.socket);
        let reply = exchange(&mut s, 1, false, &nginx_params("GET", "/x", None), b"");
        assert_eq!(reply.cgi().status, 200);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("EOF");
        assert!(rest.is_empty());
    }

    #[test]
    fn keep_conn_serves_many_requests_on_one_connection_with_any_ids() {
        let l = start(&[]);
        let mut s = connect(&l.socket);
        for (n, id) in [1u16, 1, 2, 300, 65535, 7].into_iter().enumerate() {
            let reply = exchange(
                &mut s,
                id,
                true,
                &nginx_params("GET", &format!("/{n}"), None),
                b"",
            );
            assert_eq!(reply.id, id);
            assert_eq!(
                shown(&reply.cgi().text(), "iiswsgi.request_id"),
                id.to_string()
            );
        }
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let l = start(&[]);
        let mut s = connect(&l.socket);
        let mut all = Vec::new();
        for n in 0..50u16 {
            all.extend(fc::request_bytes(
                n + 1,
                true,
                &nginx_params("GET", &format!("/p{n}"), None),
                b"",
                8192,
            ));
        }
        s.write_all(&all).expect("write");
        for n in 0..50u16 {
            let reply = fc::read_reply(&mut s, n + 1).expect("reply");
            assert_eq!(shown(&reply.cgi().text(), "PATH_INFO"), format!("/p{n}"));
        }
    }

    #[test]
    fn oversized_params_get_431_and_the_connection_stays_usable() {
        let l = start(&[]);
        let mut s = connect(&l.socket);
        let mut params = nginx_params("GET", "/big", None);
        params.push(("HTTP_COOKIE".into(), "c".repeat(70_000)));
        let reply = exchange(&mut s, 1, true, &params, b"");
        assert_eq!(reply.cgi().status, 431);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/after", None), b"");
        assert_eq!(shown(&reply.cgi().text(), "PATH_INFO"), "/after");
    }

    #[test]
    fn large_upload_in_many_records_is_read_whole() {
        let l = start(&[]);
        let mut s = connect(&l.socket);
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let params = nginx_params("POST", "/up", Some(body.len()));
        let bytes = fc::request_bytes(1, true, &params, &body, 8192);
        let writer = {
            let mut w = s.try_clone().expect("clone");
            std::thread::spawn(move || w.write_all(&bytes).expect("write"))
        };
        let reply = fc::read_reply(&mut s, 1).expect("reply");
        writer.join().expect("writer");
        let text = reply.cgi().text();
        assert_eq!(shown(&text, "iiswsgi.body_bytes"), body.len().to_string());
        assert_eq!(shown(&text, "iiswsgi.body_fnv1a64"), fnv1a64(&body));
    }

    #[test]
    fn client_disconnect_mid_request_drops_only_that_connection() {
        let l = start(&[]);
        let mut gone = connect(&l.socket);
        let full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/x", Some(100)),
            &[b'z'; 100],
            8192,
        );
        gone.write_all(&full[..full.len() - 40]).expect("partial");
        wait::peer_has_read(&gone, ACT);
        drop(gone);
        wait_log(l.dir.path(), "closed the connection mid-request");
        let mut s = connect(&l.socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/still", None), b"");
        assert_eq!(reply.cgi().status, 200);
        let log = read_log(l.dir.path());
        assert!(log.contains("closed the connection mid-request"), "{log}");
        assert_eq!(
            log.matches("mid-request").count(),
            1,
            "one info line for the drop: {log}"
        );
        assert!(!log.contains("ERROR"), "{log}");
    }

    #[test]
    fn garbage_bytes_drop_the_connection_not_the_process() {
        let l = start(&[]);
        let mut bad = connect(&l.socket);
        bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("write");
        let mut rest = Vec::new();
        let _ = bad.read_to_end(&mut rest);
        let mut s = connect(&l.socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/ok", None), b"");
        assert_eq!(reply.cgi().status, 200);
    }

    #[test]
    fn sigterm_during_a_slow_request_finishes_it_then_exits_zero() {
        let l = start(&[]);
        let mut s = connect(&l.socket);
        let body = vec![b'q'; 10_000];
        let full = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/slow", Some(body.len())),
            &body,
            8192,
        );
        let cut = full.len() - 3000;
        s.write_all(&full[..cut]).expect("first part");
        wait::peer_has_read(&s, ACT); // the app is now reading the body
        l.server.signal(Signal::TERM);
        wait_log(l.dir.path(), "SIGTERM: finishing the current request");
        s.write_all(&full[cut..]).expect("rest");
        let reply = fc::read_reply(&mut s, 1).expect("reply after SIGTERM");
        assert_eq!(reply.cgi().status, 200);
        assert_eq!(shown(&reply.cgi().text(), "iiswsgi.body_bytes"), "10000");
        let (status, out, err) = l.server.wait(Duration::from_secs(10));
        assert!(status.success(), "{status:?}");
        assert!(out.is_empty() && err.is_empty());
        let log = read_log(l.dir.path());
        assert!(
            log.contains("SIGTERM") && log.contains("exiting after 1 request(s)"),
            "{log}"
        );
    }

    #[test]
    fn max_requests_exits_zero_after_the_last_response() {
        let l = start(&["--max-requests", "3"]);
        let mut s = connect(&l.socket);
        for n in 0..3 {
            let reply = exchange(
                &mut s,
                1,
                true,
                &nginx_params("GET", &format!("/{n}"), None),
                b"",
            );
            assert_eq!(reply.cgi().status, 200);
        }
        let (status, ..) = l.server.wait(Duration::from_secs(10));
        assert!(status.success());
    }

    #[test]
    fn threads_share_max_requests_and_exit_zero_after_the_last_response() {
        let l = start(&[
            "--threads",
            "3",
            "--max-requests",
            "6",
            "--log-level",
            "debug",
        ]);
        for n in 0..6 {
            let mut s = connect(&l.socket);
            let uri = format!("/{n}");
            let reply = exchange(&mut s, 1, false, &nginx_params("GET", &uri, None), b"");
            assert_eq!(reply.cgi().status, 200);
        }
        let (status, ..) = l.server.wait(Duration::from_secs(10));
        let log = read_log(l.dir.path());
        assert!(status.success(), "{log}");
        assert!(log.contains("serving with 3 request threads"), "{log}");
        assert!(
            log.contains("exiting after 6 request(s): the request limit was reached"),
            "{log}"
        );
        // Request ids in the log stay unique across threads.
        let mut ids: Vec<u64> = log
            .lines()
            .filter(|l| l.contains("(FastCGI id 1)"))
            .filter_map(|l| l.split(" req=").nth(1)?.split(' ').next()?.parse().ok())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6], "{log}");
    }

    #[test]
    fn mount_point_rebuilds_paths_from_request_uri() {
        let l = start(&["--mount", "/app"]);
        let mut s = connect(&l.socket);
        let mut params = nginx_params("GET", "/app/a%20b/./c?z=1", None);
        params.retain(|(n, _)| n != "SCRIPT_NAME" && n != "PATH_INFO");
        let reply = exchange(&mut s, 1, true, &params, b"");
        let text = reply.cgi().text();
        assert_eq!(shown(&text, "SCRIPT_NAME"), "/app");
        assert_eq!(shown(&text, "PATH_INFO"), "/a b/c");
    }

    #[test]
    fn hello_mode_answers_a_fixed_body() {
        let l = start(&["--diagnostic=hello"]);
        let mut s = connect(&l.socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"");
        let cgi = reply.cgi();
        assert_eq!(cgi.body, b"Hello, world!\n");
        assert_eq!(cgi.header("Content-Length"), Some("14"));
        // One write for the whole response: STDOUT + empty STDOUT + END_REQUEST.
        assert_eq!(reply.records.len(), 3);
    }

    #[test]
    fn a_live_socket_is_not_stolen_by_a_second_server() {
        let l = start(&[]);
        let out = std::process::Command::new(fc::iiswsgi_bin())
            .args(["run", "--diagnostic", "--log", "/dev/null", "--listen"])
            .arg(format!("unix:{}", l.socket.display()))
            .output()
            .expect("run");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("another process is accepting"));
        // The first server still answers.
        let mut s = connect(&l.socket);
        assert_eq!(
            exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"")
                .cgi()
                .status,
            200
        );
    }
}

mod boundary {
    //! The `Application` boundary, in process: custom apps served by `server::run` over a
    //! unix socket, checking what the server does with what an app does.
    use super::*;
    use iiswsgi::runtime::server::{
        self, Application, Body, Outcome, Request, Response, RunOptions,
    };
    use iiswsgi::runtime::transport::ListenAddr;

    /// Serves `app` for `requests` requests on a fresh socket, in a thread.
    fn serve<A: Application + 'static>(
        app: A,
        requests: u64,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        std::thread::JoinHandle<server::RunReport>,
    ) {
        serve_threads(app, requests, 1)
    }

    /// [`serve`] with `threads` request threads.
    fn serve_threads<A: Application + 'static>(
        app: A,
        requests: u64,
        threads: usize,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        std::thread::JoinHandle<server::RunReport>,
    ) {
        let dir = temp_dir("boundary");
        let socket = dir.path().join("app.sock");
        let options = RunOptions {
            listen: Some(ListenAddr::Unix(socket.clone())),
            max_requests: Some(requests),
            // The logger is process-wide: the first in-process server's config wins, so all
            // of them share one file.
            log: iiswsgi::runtime::logging::LogConfig {
                path: Some(shared_log()),
                ..Default::default()
            },
            drain_time: Duration::from_secs(5),
            threads,
            ..RunOptions::default()
        };
        let handle = std::thread::spawn(move || {
            server::run(options, move |_| Ok(app)).expect("server runs")
        });
        fc::wait_for_path(&socket, Duration::from_secs(10));
        (dir, socket, handle)
    }

    fn connect(path: &Path) -> UnixStream {
        let s = UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s
    }

    fn shared_log() -> PathBuf {
        std::env::temp_dir().join(format!("iiswsgi-boundary-{}.log", std::process::id()))
    }

    /// Ignores the body; streams three chunks.
    struct Streamer;
    impl Application for Streamer {
        fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
            let ok = r
                .start("200 OK", &[(b"Content-Type", b"text/plain")])
                .and_then(|()| r.write(b"one,"))
                .and_then(|()| r.write(b""))
                .and_then(|()| r.write(b"two,"))
                .and_then(|()| r.write(b"three"));
            assert!(ok.is_ok(), "{ok:?}");
            assert!(r.headers_sent());
            Outcome::Complete
        }
    }

    #[test]
    fn each_chunk_is_its_own_stdout_record_and_unread_body_is_drained() {
        let (_dir, socket, handle) = serve(Streamer, 2);
        let mut s = connect(&socket);
        let body = vec![b'u'; 300_000]; // never read by the app
        let bytes = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/s", Some(body.len())),
            &body,
            8192,
        );
        let writer = {
            let mut w = s.try_clone().expect("clone");
            std::thread::spawn(move || w.write_all(&bytes).expect("write"))
        };
        let reply = fc::read_reply(&mut s, 1).expect("reply");
        writer.join().expect("writer");
        let cgi = reply.cgi();
        assert_eq!(cgi.body, b"one,two,three");
        // Headers ride with the first chunk; every later chunk is its own record (no
        // coalescing across chunks); then the empty STDOUT and END_REQUEST.
        let stdout: Vec<usize> = reply
            .records
            .iter()
            .filter(|r| r.0 == fc::STDOUT)
            .map(|r| r.1)
            .collect();
        assert_eq!(stdout.len(), 4, "{:?}", reply.records);
        assert_eq!(&stdout[1..], [4, 5, 0]);
        // The body was drained before END_REQUEST: the connection is in sync for the next.
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/next", None), b"");
        assert_eq!(reply.cgi().body, b"one,two,three");
        assert_eq!(handle.join().expect("join").requests, 2);
    }

    #[test]
    fn header_values_are_sent_as_bytes_not_reencoded() {
        struct Latin1;
        impl Application for Latin1 {
            fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let _ = r.start("200 OK", &[(b"X-Name", b"caf\xe9")]);
                let _ = r.write_final(b"");
                Outcome::Complete
            }
        }
        let (_dir, socket, handle) = serve(Latin1, 1);
        let mut s = connect(&socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"");
        assert!(
            reply.stdout.windows(12).any(|w| w == b"X-Name: caf\xe9"),
            "{:?}",
            reply.stdout
        );
        handle.join().expect("join");
    }

    #[test]
    fn app_that_never_starts_a_response_gets_a_500_with_an_error_id() {
        struct Silent;
        impl Application for Silent {
            fn handle(&self, _: &Request, _: &mut dyn Body, _: &mut dyn Response) -> Outcome {
                Outcome::Complete
            }
        }
        let (_dir, socket, handle) = serve(Silent, 1);
        let mut s = connect(&socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"");
        let cgi = reply.cgi();
        assert_eq!(cgi.status, 500);
        let text = cgi.text();
        let id = text
            .split("error id ")
            .nth(1)
            .expect("error id")
            .trim_end_matches([')', '\n']);
        handle.join().expect("join");
        let log = std::fs::read_to_string(shared_log()).unwrap_or_default();
        assert!(log.contains(&format!("error id {id}")), "{id}: {log}");
    }

    #[test]
    fn invalid_headers_are_refused_to_the_app() {
        struct Splitter;
        impl Application for Splitter {
            fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let refused = r.start("200 OK", &[(b"X-A", b"1\r\nSet-Cookie: evil=1")]);
                assert_eq!(
                    refused.map_err(|e| e.kind()),
                    Err(std::io::ErrorKind::InvalidInput)
                );
                let early = r.write(b"body before start");
                assert!(early.is_err());
                let _ = r.start("418 I'm a teapot", &[]);
                let _ = r.write_final(b"short and stout");
                Outcome::Complete
            }
        }
        let (_dir, socket, handle) = serve(Splitter, 1);
        let mut s = connect(&socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"");
        let cgi = reply.cgi();
        assert_eq!(cgi.status, 418);
        assert!(cgi.header("Set-Cookie").is_none());
        handle.join().expect("join");
    }

    /// Issue 16: a close alone looks like a complete response to nginx without
    /// `fastcgi_keep_conn` or with `fastcgi_buffering off`; the record nginx, Apache, HAProxy
    /// and lighttpd refuse makes each of them abort the client's response.
    #[test]
    fn failure_after_headers_is_cut_with_a_record_web_servers_refuse_then_closed() {
        struct Breaks;
        impl Application for Breaks {
            fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let _ = r.start("200 OK", &[(b"Content-Length", b"100")]);
                let _ = r.write(b"partial");
                Outcome::Aborted
            }
        }
        let (_dir, socket, handle) = serve(Breaks, 1);
        let mut s = connect(&socket);
        s.write_all(&fc::request_bytes(
            1,
            true,
            &nginx_params("GET", "/", None),
            b"",
            8192,
        ))
        .expect("write");
        let mut records = Vec::new();
        while let Some(r) = fc::read_record(&mut s).expect("read") {
            records.push((r.kind, r.id, r.content));
        }
        let kinds: Vec<(u8, u16)> = records.iter().map(|(k, id, _)| (*k, *id)).collect();
        assert_eq!(
            kinds,
            [(fc::STDOUT, 1), (fc::UNKNOWN_TYPE, 0)],
            "the partial response, the refused record, then EOF: no END_REQUEST"
        );
        assert!(records[0].2.ends_with(b"\r\n\r\npartial"));
        handle.join().expect("join");
    }

    #[test]
    fn aborted_before_headers_becomes_a_500() {
        struct Gives;
        impl Application for Gives {
            fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let _ = r.start("200 OK", &[]);
                Outcome::Aborted
            }
        }
        let (_dir, socket, handle) = serve(Gives, 1);
        let mut s = connect(&socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"");
        assert_eq!(reply.cgi().status, 500);
        handle.join().expect("join");
    }

    #[test]
    fn outcome_exit_stops_the_server_after_the_response() {
        struct Leaves;
        impl Application for Leaves {
            fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let _ = r.start("200 OK", &[]);
                let _ = r.write_final(b"bye");
                Outcome::Exit
            }
        }
        let (_dir, socket, handle) = serve(Leaves, 100);
        let mut s = connect(&socket);
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/", None), b"");
        assert_eq!(reply.cgi().body, b"bye");
        let report = handle.join().expect("join");
        assert_eq!(report.reason, server::StopReason::AppExit);
    }

    /// `/slow` streams up to 200 chunks of 1 KiB, one every 20 ms, and records how its
    /// writes ended; any other path answers `quick` at once.
    #[derive(Default, Clone)]
    struct SlowStream {
        written: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        failed: std::sync::Arc<std::sync::Mutex<Option<std::io::ErrorKind>>>,
    }
    impl Application for SlowStream {
        fn handle(&self, req: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
            if req.param(b"PATH_INFO") != Some(b"/slow") {
                let _ = r.start("200 OK", &[]);
                let _ = r.write_final(b"quick");
                return Outcome::Complete;
            }
            let _ = r.start("200 OK", &[(b"Content-Type", b"text/plain")]);
            for _ in 0..200 {
                if let Err(e) = r.write(&[b'x'; 1024]) {
                    *self.failed.lock().expect("lock") = Some(e.kind());
                    return Outcome::Aborted;
                }
                self.written
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                // Slow on purpose: the peer hangs up while the response is still streaming.
                std::thread::sleep(Duration::from_millis(20));
            }
            Outcome::Complete
        }
    }

    /// Reads records until `n` non-empty STDOUT records of request `id` arrived.
    /// A [`SlowStream`] server for two requests, and a connection whose request 1 (`/slow`)
    /// is sent.
    fn start_slow_stream() -> (
        SlowStream,
        tempfile::TempDir,
        std::thread::JoinHandle<server::RunReport>,
        UnixStream,
    ) {
        let app = SlowStream::default();
        let (dir, socket, handle) = serve(app.clone(), 2);
        let mut s = connect(&socket);
        let request = fc::request_bytes(1, true, &nginx_params("GET", "/slow", None), b"", 8192);
        s.write_all(&request).expect("write");
        (app, dir, handle, s)
    }

    fn read_stdout_records(s: &mut UnixStream, id: u16, n: usize) {
        let mut seen = 0;
        while seen < n {
            let rec = fc::read_record(s).expect("read").expect("record");
            assert_eq!((rec.id, rec.kind), (id, fc::STDOUT), "{rec:?}");
            if !rec.content.is_empty() {
                seen += 1;
            }
        }
    }

    #[test]
    fn abort_request_mid_response_fails_the_next_write_and_ends_the_request_complete() {
        let (app, _dir, handle, mut s) = start_slow_stream();
        read_stdout_records(&mut s, 1, 3);
        // While request 1 streams: a GET_VALUES, the abort, then a pipelined request 2. The
        // server reads them all while writing; request 2 must be kept for later.
        let mut late = fc::record(
            fc::GET_VALUES,
            0,
            &fc::pairs(&[("FCGI_MPXS_CONNS", "")], false),
            0,
        );
        late.extend(fc::record(fc::ABORT_REQUEST, 1, &[], 0));
        late.extend(fc::request_bytes(
            2,
            true,
            &nginx_params("GET", "/quick", None),
            b"",
            8192,
        ));
        let aborted_at = Instant::now();
        s.write_all(&late).expect("write");
        let mut records = Vec::new();
        let end = loop {
            let rec = fc::read_record(&mut s).expect("read").expect("record");
            if rec.kind == fc::END_REQUEST {
                break rec;
            }
            records.push(rec);
        };
        let took = aborted_at.elapsed();
        assert_eq!(end.id, 1);
        // iis-runtime §12 item 5: app status 0, REQUEST_COMPLETE, after an empty STDOUT.
        assert_eq!(end.content, [0, 0, 0, 0, 0, 0, 0, 0]);
        let last = records.last().expect("records before END_REQUEST");
        assert_eq!((last.kind, last.id, last.content.len()), (fc::STDOUT, 1, 0));
        assert!(
            records.iter().any(|r| r.kind == fc::GET_VALUES_RESULT),
            "GET_VALUES answered while the response streamed: {records:?}"
        );
        assert!(took < Duration::from_secs(2), "the abort took {took:?}");
        assert_eq!(
            *app.failed.lock().expect("lock"),
            Some(std::io::ErrorKind::ConnectionAborted)
        );
        let written = app.written.load(std::sync::atomic::Ordering::SeqCst);
        assert!(written < 20, "{written} chunks written after the abort");
        // The pipelined request read during the response is served next, on the same
        // connection.
        let reply = fc::read_reply(&mut s, 2).expect("reply to request 2");
        assert_eq!(reply.cgi().body, b"quick");
        assert_eq!(handle.join().expect("join").requests, 2);
    }

    #[test]
    fn abort_request_mid_body_fails_the_read_and_keeps_the_connection() {
        /// Reads the body until it fails; records how.
        #[derive(Default, Clone)]
        struct Reader(std::sync::Arc<std::sync::Mutex<Option<std::io::ErrorKind>>>);
        impl Application for Reader {
            fn handle(&self, req: &Request, body: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                if req.param(b"PATH_INFO") == Some(b"/upload") {
                    let mut sink = Vec::new();
                    if let Err(e) = body.read_to_end(&mut sink) {
                        *self.0.lock().expect("lock") = Some(e.kind());
                        return Outcome::Aborted;
                    }
                }
                let _ = r.start("200 OK", &[]);
                let _ = r.write_final(b"next");
                Outcome::Complete
            }
        }
        let app = Reader::default();
        let (_dir, socket, handle) = serve(app.clone(), 2);
        let mut s = connect(&socket);
        // More than the queued-body cap (1 MiB), so the app starts before the body ends.
        let sent = vec![b'u'; 1_200_000];
        let mut bytes = fc::request_bytes(
            1,
            true,
            &nginx_params("POST", "/upload", Some(2_000_000)),
            &sent,
            65535,
        );
        bytes.truncate(bytes.len() - 8); // no empty STDIN: the body is still coming
        s.write_all(&bytes).expect("write");
        // The server took every byte, so the app is running and reading the body.
        wait::peer_has_read(&s, ACT);
        s.write_all(&fc::record(fc::ABORT_REQUEST, 1, &[], 0))
            .expect("abort");
        let reply = fc::read_reply(&mut s, 1).expect("END_REQUEST for the aborted request");
        assert_eq!((reply.app_status, reply.protocol_status), (0, 0));
        assert!(reply.stdout.is_empty(), "{:?}", reply.cgi().text());
        assert_eq!(
            *app.0.lock().expect("lock"),
            Some(std::io::ErrorKind::ConnectionAborted)
        );
        let reply = exchange(&mut s, 2, true, &nginx_params("GET", "/next", None), b"");
        assert_eq!(reply.cgi().body, b"next");
        assert_eq!(handle.join().expect("join").requests, 2);
    }

    #[test]
    fn peer_hang_up_mid_response_fails_the_next_write_and_the_server_serves_on() {
        let (app, dir, handle, mut s) = start_slow_stream();
        read_stdout_records(&mut s, 1, 2);
        // nginx on a client abort: shut the whole connection.
        drop(s);
        wait::until_true("the hang-up is noticed", Duration::from_secs(2), || {
            app.failed.lock().expect("lock").is_some()
        });
        assert!(app.written.load(std::sync::atomic::Ordering::SeqCst) < 20);
        let mut s = connect(&dir.path().join("app.sock"));
        let reply = exchange(&mut s, 1, true, &nginx_params("GET", "/quick", None), b"");
        assert_eq!(reply.cgi().body, b"quick");
        assert_eq!(handle.join().expect("join").requests, 2);
    }

    /// Sleeps 0.2 s per request, noting the thread; counts `run_worker` calls.
    #[derive(Default)]
    struct Sleeper {
        workers: std::sync::atomic::AtomicUsize,
        threads: std::sync::Mutex<Vec<std::thread::ThreadId>>,
    }
    impl Application for Sleeper {
        fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
            // Slow on purpose: four at once take 0.2 s only if they run concurrently.
            std::thread::sleep(Duration::from_millis(200));
            self.threads
                .lock()
                .expect("lock")
                .push(std::thread::current().id());
            let _ = r.start("200 OK", &[]);
            let _ = r.write_final(b"slept");
            Outcome::Complete
        }

        fn run_worker(&self, serve: &mut (dyn FnMut() + Send)) {
            self.workers
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            serve();
        }
    }

    #[test]
    fn threads_serve_concurrently_through_run_worker_and_share_the_request_limit() {
        let app = std::sync::Arc::new(Sleeper::default());
        struct Shared(std::sync::Arc<Sleeper>);
        impl Application for Shared {
            fn handle(&self, q: &Request, b: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                self.0.handle(q, b, r)
            }
            fn run_worker(&self, serve: &mut (dyn FnMut() + Send)) {
                self.0.run_worker(serve)
            }
        }
        let (_dir, socket, handle) = serve_threads(Shared(app.clone()), 8, 4);
        let start = Instant::now();
        for _ in 0..2 {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        let mut c = connect(&socket);
                        let reply =
                            exchange(&mut c, 1, false, &nginx_params("GET", "/", None), b"");
                        assert_eq!(reply.cgi().body, b"slept");
                    });
                }
            });
        }
        let elapsed = start.elapsed();
        let report = handle.join().expect("join");
        assert_eq!(report.requests, 8, "counted over all workers");
        assert_eq!(report.reason, server::StopReason::MaxRequests);
        assert_eq!(app.workers.load(std::sync::atomic::Ordering::SeqCst), 4);
        let threads: std::collections::HashSet<_> =
            app.threads.lock().expect("lock").iter().copied().collect();
        assert!(threads.len() >= 2, "{threads:?}");
        assert!(!threads.contains(&std::thread::current().id()));
        assert!(
            elapsed < Duration::from_millis(1200),
            "8 × 0.2 s on 4 threads took {elapsed:?}"
        );
    }

    #[test]
    fn request_carries_normalised_and_raw_params() {
        struct Inspect;
        impl Application for Inspect {
            fn wants_raw_params(&self) -> bool {
                true
            }
            fn handle(&self, req: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                assert_eq!(req.param(b"CONTENT_LENGTH"), None); // "" removed
                assert!(
                    req.raw_params
                        .iter()
                        .any(|(n, v)| n == b"CONTENT_LENGTH" && v.is_empty())
                );
                assert_eq!(req.content_length, None);
                assert_eq!(req.url_scheme.as_str(), "https");
                assert!(!req.single_connection);
                let _ = r.start("204 No Content", &[]);
                let _ = r.write_final(b"");
                Outcome::Complete
            }
        }
        let (_dir, socket, handle) = serve(Inspect, 1);
        let mut s = connect(&socket);
        let mut params = nginx_params("GET", "/", None);
        params.push(("CONTENT_LENGTH".into(), String::new()));
        params.push(("HTTPS".into(), "on".into()));
        let reply = exchange(&mut s, 1, true, &params, b"");
        assert_eq!(reply.cgi().status, 204);
        handle.join().expect("join");
    }

    #[test]
    fn keep_alive_requests_wake_the_event_loop_once_each() {
        struct Hello;
        impl Application for Hello {
            fn handle(&self, _: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let _ = r.start("200 OK", &[(b"Content-Type", b"text/plain")]);
                let _ = r.write_final(b"hello");
                Outcome::Complete
            }
        }
        const N: u64 = 100;
        let (_dir, socket, handle) = serve(Hello, N);
        let mut s = connect(&socket);
        for i in 0..N {
            // A pause, as between a web server's requests: the loop is asleep when this
            // client reads the previous response. The pause is the point (the waits counted
            // below are the loop's), so it stays a sleep.
            std::thread::sleep(Duration::from_millis(1));
            let id = (i % 255 + 1) as u16;
            let reply = exchange(&mut s, id, true, &nginx_params("GET", "/", None), b"");
            assert_eq!(reply.cgi().body, b"hello");
        }
        let report = handle.join().expect("join");
        assert_eq!(report.requests, N);
        // One wait per request, plus the accept: the web server reading a response (which
        // makes the socket writable again) must not wake the loop.
        assert!(
            report.waits <= N + 5,
            "{} readiness waits for {N} sequential requests",
            report.waits
        );
    }

    #[test]
    fn raw_params_stay_empty_unless_the_application_asks_for_them() {
        struct Plain;
        impl Application for Plain {
            fn handle(&self, req: &Request, _: &mut dyn Body, r: &mut dyn Response) -> Outcome {
                let status = if req.raw_params.is_empty() && req.param(b"HTTPS") == Some(b"on") {
                    "204 No Content"
                } else {
                    "500 Internal Server Error"
                };
                let _ = r.start(status, &[]);
                let _ = r.write_final(b"");
                Outcome::Complete
            }
        }
        let (_dir, socket, handle) = serve(Plain, 1);
        let mut s = connect(&socket);
        let mut params = nginx_params("GET", "/", None);
        params.push(("HTTPS".into(), "on".into()));
        let reply = exchange(&mut s, 1, true, &params, b"");
        assert_eq!(reply.cgi().status, 204);
        handle.join().expect("join");
    }
}

mod nginx {
    use super::*;
    use crate::support::peers::Proc;
    use std::process::{Command, Stdio};

    /// A private nginx on a loopback port, proxying to `socket` with keep-conn
    /// (`fastcgi-protocol.md` §11.3).
    struct Nginx {
        /// Stopped by its own Drop (SIGTERM to the master, SIGKILL to the group, reap), so the
        /// worker never outlives the test.
        _proc: Proc,
        port: u16,
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }

    fn start_nginx(dir: &Path, socket: &Path) -> Nginx {
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx is not installed: run .ci/setup");
        let port = free_port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\n\
             error_log {d}/nginx.err info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/t_body;\nfastcgi_temp_path {d}/t_fcgi;\n\
             proxy_temp_path {d}/t_proxy;\nuwsgi_temp_path {d}/t_uwsgi;\nscgi_temp_path {d}/t_scgi;\n\
             upstream gw {{ server unix:{s}; keepalive 4; }}\n\
             server {{\nlisten 127.0.0.1:{port};\nlocation / {{\n\
             fastcgi_param REQUEST_METHOD $request_method;\n\
             fastcgi_param REQUEST_URI $request_uri;\n\
             fastcgi_param QUERY_STRING $query_string;\n\
             fastcgi_param CONTENT_TYPE $content_type;\n\
             fastcgi_param CONTENT_LENGTH $content_length;\n\
             fastcgi_param SCRIPT_NAME \"\";\n\
             fastcgi_param PATH_INFO $uri;\n\
             fastcgi_param SERVER_PROTOCOL $server_protocol;\n\
             fastcgi_param REQUEST_SCHEME $scheme;\n\
             fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n\
             fastcgi_param REMOTE_ADDR $remote_addr;\n\
             fastcgi_param SERVER_NAME $server_name;\n\
             fastcgi_param SERVER_PORT $server_port;\n\
             fastcgi_keep_conn on;\nfastcgi_pass gw;\n}}\n}}\n}}\n",
            s = socket.display()
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("conf");
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("nginx.err"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null());
        let mut proc = Proc::spawn("nginx", dir, cmd, vec![dir.join("nginx.err")]);
        proc.wait_until("nginx listens", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nginx { _proc: proc, port }
    }

    fn curl(args: &[&str]) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()
            .expect("curl is not installed: run .ci/setup");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn nginx_keep_conn_serves_the_diagnostic_page_to_curl() {
        let dir = temp_dir("nginx");
        let socket = dir.path().join("gw.sock");
        let listen = format!("unix:{}", socket.display());
        let log = log_arg(dir.path());
        let server = Server::spawn_listen(&["--diagnostic", "--listen", &listen, "--log", &log]);
        fc::wait_for_path(&socket, Duration::from_secs(10));
        let nginx = start_nginx(dir.path(), &socket);
        let base = format!("http://127.0.0.1:{}", nginx.port);
        for n in 0..20 {
            let page = curl(&[&format!("{base}/caf%C3%A9/{n}?x={n}")]);
            assert_eq!(shown(&page, "PATH_INFO"), as_latin1(&format!("/café/{n}")));
            assert_eq!(shown(&page, "QUERY_STRING"), format!("x={n}"));
            assert_eq!(shown(&page, "iiswsgi.request_id"), "1");
        }
        let body_file = dir.path().join("upload.bin");
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&body_file, &body).expect("body");
        let page = curl(&[
            "--data-binary",
            &format!("@{}", body_file.display()),
            "-H",
            "Content-Type: application/octet-stream",
            &format!("{base}/upload"),
        ]);
        assert_eq!(shown(&page, "REQUEST_METHOD"), "POST");
        assert_eq!(shown(&page, "iiswsgi.body_bytes"), "200000");
        assert_eq!(shown(&page, "iiswsgi.body_fnv1a64"), fnv1a64(&body));
        assert_eq!(shown(&page, "CONTENT_LENGTH"), "200000");
        drop(nginx);
        server.signal(Signal::TERM);
        let (status, out, err) = server.wait(Duration::from_secs(10));
        assert!(status.success() && out.is_empty() && err.is_empty());
        let log = read_log(dir.path());
        assert!(!log.contains("WARN") && !log.contains("ERROR"), "{log}");
    }
}
