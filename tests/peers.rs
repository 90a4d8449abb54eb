//! `iiswsgi run` behind real web servers: nginx, lighttpd, HAProxy 2.6 and Apache, each
//! started by the test on loopback with the configs of `fastcgi-protocol.md` §11, each serving
//! the diagnostic responder through real HTTP requests. Each scenario runs twice: against
//! libfcgi's C responder (which proves the harness and the config) and against
//! `iiswsgi run --diagnostic`. A [`WireTap`] between peer and backend records what the peer
//! really sent (KEEP_CONN, ids, GET_VALUES, aborts) so the tests can assert the protocol path
//! they claim to exercise.
//!
//! `hostile` throws malformed FastCGI at `iiswsgi run --listen` over a raw socket.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::thread;
use std::time::Duration;

use crate::support::iis_client::wire;
use crate::support::peers::{
    Backend, Direction, Gateway, HaproxyOptions, HttpResponse, Peer, Sandbox, TapRecord, WireTap,
    fnv1a64, iiswsgi_log, shown_by,
};
use crate::support::wait;

/// Asserts a 200 whose page shows `path` as PATH_INFO (SCRIPT_NAME empty) and `query`.
/// (HAProxy 2.6 omits SCRIPT_NAME and QUERY_STRING when they are empty.)
fn assert_page(backend: &Backend, response: &HttpResponse, path: &str, query: &str) {
    assert_eq!(response.status, 200, "{}", response.text());
    let shown = |name| {
        shown_by(backend, &response.body, name)
            .unwrap_or_else(|| panic!("{name} not shown:\n{}", response.text()))
    };
    assert_eq!(shown("PATH_INFO"), path, "{}", response.text());
    // HAProxy 2.6 sends no SCRIPT_NAME when `path-info` captures an empty one; the C responder
    // shows raw params, but iiswsgi's environ must always have the key (PEP 3333).
    let script_name = match backend {
        Backend::CResponder => shown_by(backend, &response.body, "SCRIPT_NAME").unwrap_or_default(),
        Backend::Iiswsgi(_) => shown("SCRIPT_NAME"),
    };
    assert_eq!(script_name, "", "{}", response.text());
    // HAProxy sends no empty QUERY_STRING either; PEP 3333 allows it to be absent.
    let query_string = shown_by(backend, &response.body, "QUERY_STRING").unwrap_or_default();
    assert_eq!(query_string, query, "{}", response.text());
}

/// A POST of `size` bytes: the C responder echoes it back, the diagnostic page shows its
/// length.
fn assert_post(backend: &Backend, peer: &Peer, size: usize) {
    let body: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
    let mut client = peer.connect();
    let response = client
        .request(
            "POST",
            "/echo",
            &[("Content-Type", "application/octet-stream")],
            &body,
        )
        .unwrap_or_else(|e| panic!("POST via {:?}: {e}\n{}", peer.kind, peer.proc.output()));
    assert_eq!(response.status, 200, "{}", response.text());
    if backend.echoes_body() {
        assert!(
            response.body == body,
            "echoed body differs ({} bytes back)",
            response.body.len()
        );
    } else {
        // The diagnostic page reads the whole body and shows its length and hash.
        let shown = |name| shown_by(backend, &response.body, name);
        let size = size.to_string();
        assert_eq!(shown("CONTENT_LENGTH").as_deref(), Some(size.as_str()));
        assert_eq!(shown("REQUEST_METHOD").as_deref(), Some("POST"));
        assert_eq!(shown("iiswsgi.body_bytes").as_deref(), Some(size.as_str()));
        assert_eq!(shown("iiswsgi.body_fnv1a64"), Some(fnv1a64(&body)));
    }
}

/// `n` sequential GETs over one keep-alive HTTP connection.
fn sequential(backend: &Backend, peer: &Peer, n: usize, tag: &str) {
    let mut client = peer.connect();
    for i in 0..n {
        let path = format!("/{tag}/{i}");
        let response = client
            .request("GET", &format!("{path}?i={i}"), &[], b"")
            .unwrap_or_else(|e| {
                panic!(
                    "request {i} via {:?}: {e}\n{}",
                    peer.kind,
                    peer.proc.output()
                )
            });
        assert_page(backend, &response, &path, &format!("i={i}"));
    }
}

/// `threads` × `each` GETs from parallel HTTP connections.
fn concurrent(backend: &Backend, peer: &Peer, threads: usize, each: usize) {
    thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let mut client = peer.connect();
                for i in 0..each {
                    let path = format!("/par/{t}/{i}");
                    let response = client
                        .request("GET", &path, &[], b"")
                        .unwrap_or_else(|e| panic!("{path} via {:?}: {e}", peer.kind));
                    assert_page(backend, &response, &path, "");
                }
            });
        }
    });
}

fn begins(records: &[TapRecord]) -> Vec<&TapRecord> {
    records
        .iter()
        .filter(|r| r.dir == Direction::ToApp && r.kind == wire::BEGIN_REQUEST)
        .collect()
}

/// Every request the peer began got exactly one END_REQUEST on the same connection and id,
/// and the backend sent only the types a web server accepts (3, 6, 7; 10 on id 0).
fn assert_every_request_ended(records: &[TapRecord]) {
    for begin in begins(records) {
        let ends = records
            .iter()
            .filter(|r| {
                r.dir == Direction::FromApp
                    && r.kind == wire::END_REQUEST
                    && r.conn == begin.conn
                    && r.id == begin.id
            })
            .count();
        assert!(
            ends >= 1,
            "request {} on connection {} never ended",
            begin.id,
            begin.conn
        );
    }
    for r in records.iter().filter(|r| r.dir == Direction::FromApp) {
        let allowed = matches!(r.kind, wire::END_REQUEST | wire::STDOUT | wire::STDERR)
            || (r.kind == wire::GET_VALUES_RESULT && r.id == 0);
        assert!(allowed, "backend sent record type {} id {}", r.kind, r.id);
        assert_ne!(r.kind, wire::STDERR, "backend wrote STDERR");
    }
}

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

fn nginx_scenario(backend: Backend) {
    let sandbox = Sandbox::new("nginx");
    let mut gateway = Gateway::start(&sandbox, &backend, "gw");
    let tap = WireTap::start(&sandbox, "tap", &gateway.socket);
    let nginx = Peer::nginx(&sandbox, &tap.socket);

    sequential(&backend, &nginx, 200, "seq");
    let records = tap.records();
    let begun = begins(&records);
    assert_eq!(begun.len(), 200);
    for begin in &begun {
        assert_eq!(begin.id, 1, "nginx always uses id 1");
        assert_eq!(
            begin.content[2] & wire::KEEP_CONN,
            wire::KEEP_CONN,
            "fastcgi_keep_conn on"
        );
    }
    assert_eq!(
        tap.connections(),
        1,
        "200 sequential requests reuse one upstream connection"
    );

    concurrent(&backend, &nginx, 8, 25);
    assert_post(&backend, &nginx, 300_000);
    assert_post(&backend, &nginx, 0);

    let records = tap.records();
    assert_eq!(begins(&records).len(), 402);
    assert_every_request_ended(&records);
    assert!(
        tap.connections() <= 1 + 8 + 2,
        "{} upstream connections",
        tap.connections()
    );
    gateway.proc.assert_alive();
    nginx.assert_no_upstream_errors();
}

#[test]
fn nginx_keep_conn_unix_socket_serves_the_libfcgi_responder() {
    nginx_scenario(Backend::CResponder);
}

#[test]
fn nginx_keep_conn_unix_socket_serves_iiswsgi_diagnostic() {
    nginx_scenario(Backend::iiswsgi());
}

// ---------------------------------------------------------------------------------------------
// lighttpd
// ---------------------------------------------------------------------------------------------

fn lighttpd_scenario(backend: Backend) -> Sandbox {
    let sandbox = Sandbox::new("lighttpd");
    let mut lighttpd = Peer::lighttpd(&sandbox, &backend, 2);
    // bin-path spawned `max-procs` backends, each with its own listening socket on fd 0.
    for n in 0..2 {
        let socket = sandbox.join(&format!("lgw.sock-{n}"));
        lighttpd
            .proc
            .wait_until(&format!("{} exists", socket.display()), || socket.exists());
    }
    // Without KEEP_CONN the backend closes after every request: 100 requests, 100 connections.
    sequential(&backend, &lighttpd, 100, "seq");
    concurrent(&backend, &lighttpd, 4, 10);
    assert_post(&backend, &lighttpd, 60_000);
    lighttpd.proc.assert_alive();
    lighttpd.assert_no_upstream_errors();
    drop(lighttpd);
    sandbox
}

#[test]
fn lighttpd_bin_path_spawns_the_libfcgi_responder_on_fd_0() {
    lighttpd_scenario(Backend::CResponder);
}

#[test]
fn lighttpd_bin_path_spawns_iiswsgi_on_fd_0_without_keep_conn() {
    let backend = Backend::Iiswsgi(vec!["--log-level".into(), "debug".into()]);
    let sandbox = lighttpd_scenario(backend);
    // Without KEEP_CONN every request has its own connection, which iiswsgi closes after
    // END_REQUEST: the (debug) log of both processes shows at least one per request.
    let log = std::fs::read_to_string(iiswsgi_log(sandbox.path())).unwrap_or_default();
    let connections = log.matches("connection from").count();
    let requests = 100 + 4 * 10 + 1; // sequential + concurrent + the POST
    assert!(
        connections >= requests,
        "{connections} connections logged for {requests} requests:\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// HAProxy
// ---------------------------------------------------------------------------------------------

fn haproxy_scenario(backend: Backend, options: HaproxyOptions) {
    let sandbox = Sandbox::new("haproxy");
    let mut gateway = Gateway::start(&sandbox, &backend, "gw");
    let tap = WireTap::start(&sandbox, "tap", &gateway.socket);
    let haproxy = Peer::haproxy(&sandbox, &tap.socket, &options);

    // 300 sequential requests: HAProxy allocates a new id per request on a kept connection,
    // so ids pass 255.
    sequential(&backend, &haproxy, 300, "seq");
    concurrent(&backend, &haproxy, 8, 25);
    assert_post(&backend, &haproxy, 200_000);

    let records = tap.records();
    let asked = records
        .iter()
        .find(|r| r.dir == Direction::ToApp && r.kind == wire::GET_VALUES);
    if options.get_values {
        // `option get-values`: HAProxy asked on id 0 and the backend answered on id 0 that it
        // does not multiplex.
        let asked =
            asked.unwrap_or_else(|| panic!("no GET_VALUES seen\n{}", haproxy.proc.output()));
        assert_eq!(asked.id, 0);
        let answer = records
            .iter()
            .find(|r| r.dir == Direction::FromApp && r.kind == wire::GET_VALUES_RESULT)
            .expect("GET_VALUES_RESULT");
        assert_eq!(answer.id, 0);
        let values = wire::decode_pairs(&answer.content).expect("GET_VALUES_RESULT pairs");
        let mpxs = values
            .iter()
            .find(|(n, _)| n == b"FCGI_MPXS_CONNS")
            .map(|(_, v)| v.clone());
        assert_eq!(mpxs.as_deref(), Some(&b"0"[..]), "{values:?}");
    } else {
        assert!(asked.is_none(), "GET_VALUES sent although not configured");
    }

    let begun = begins(&records);
    assert_eq!(begun.len(), 300 + 200 + 1);
    let max_id = begun.iter().map(|b| b.id).max().unwrap_or(0);
    assert!(max_id > 255, "ids stayed at or below 255 (max {max_id})");
    for begin in &begun {
        assert_eq!(
            begin.content[2] & wire::KEEP_CONN,
            wire::KEEP_CONN,
            "option keep-conn"
        );
    }
    let overlaps = overlapping_begins(&records);
    if options.mpxs_conns {
        // HAProxy 2.6 puts several requests on one connection even after FCGI_MPXS_CONNS=0
        // (it takes FCGI_MAX_REQS as its stream limit). iiswsgi serves such requests in
        // order, as pipelined ones, instead of refusing them with CANT_MPX_CONN.
        assert!(
            overlaps > 0,
            "no connection carried overlapping requests: mpxs path unused"
        );
    } else {
        assert_eq!(overlaps, 0, "HAProxy multiplexed without mpxs-conns");
    }
    assert_all_complete(&records);
    assert_every_request_ended(&records);
    gateway.proc.assert_alive();
    haproxy.assert_no_upstream_errors();
}

/// How many BEGIN_REQUESTs arrived on a connection while another request on it was still
/// open (multiplexed, or pipelined ahead of the previous END_REQUEST).
fn overlapping_begins(records: &[TapRecord]) -> usize {
    let mut open: HashMap<usize, HashSet<u16>> = HashMap::new();
    let mut overlaps = 0;
    for r in records {
        match (r.dir, r.kind) {
            (Direction::ToApp, wire::BEGIN_REQUEST) => {
                let ids = open.entry(r.conn).or_default();
                if !ids.is_empty() {
                    overlaps += 1;
                }
                ids.insert(r.id);
            }
            (Direction::FromApp, wire::END_REQUEST) => {
                open.entry(r.conn).or_default().remove(&r.id);
            }
            _ => {}
        }
    }
    overlaps
}

/// Every END_REQUEST the backend sent says REQUEST_COMPLETE (no CANT_MPX_CONN, OVERLOADED...).
fn assert_all_complete(records: &[TapRecord]) {
    for r in records
        .iter()
        .filter(|r| r.dir == Direction::FromApp && r.kind == wire::END_REQUEST)
    {
        assert_eq!(
            r.content.get(4),
            Some(&0),
            "END_REQUEST {} protocolStatus",
            r.id
        );
    }
}

#[test]
fn haproxy_fcgi_app_keep_conn_and_ids_past_255_with_the_libfcgi_responder() {
    // libfcgi 2.4.2 never answers a GET_VALUES that arrives before a BEGIN_REQUEST: HAProxy
    // waits for the answer and the request dies on `timeout server` (`sD--`). So the C
    // responder runs without get-values (and therefore without mpxs-conns).
    let options = HaproxyOptions {
        get_values: false,
        mpxs_conns: false,
        ..HaproxyOptions::default()
    };
    haproxy_scenario(Backend::CResponder, options);
}

#[test]
fn haproxy_fcgi_app_get_values_mpxs_keep_conn_and_ids_past_255_with_iiswsgi() {
    haproxy_scenario(Backend::iiswsgi(), HaproxyOptions::default());
}

// ---------------------------------------------------------------------------------------------
// Apache
// ---------------------------------------------------------------------------------------------

fn apache_scenario(backend: Backend) {
    let sandbox = Sandbox::new("apache");
    let mut gateway = Gateway::start(&sandbox, &backend, "gw");
    let tap = WireTap::start(&sandbox, "tap", &gateway.socket);
    let apache = Peer::apache(&sandbox, &tap.socket);

    let mut client = apache.connect();
    for i in 0..100 {
        let path = format!("/seq/{i}");
        let response = client
            .request("GET", &format!("{path}?i={i}"), &[], b"")
            .unwrap_or_else(|e| panic!("request {i}: {e}\n{}", apache.proc.output()));
        assert_eq!(response.status, 200, "{}", response.text());
        // mod_proxy_fcgi sends no PATH_INFO; the request path shows in REQUEST_URI.
        let uri = shown_by(&backend, &response.body, "REQUEST_URI");
        assert_eq!(
            uri.as_deref(),
            Some(format!("{path}?i={i}").as_str()),
            "{}",
            response.text()
        );
        if let Backend::Iiswsgi(_) = backend {
            // With a mount point, iiswsgi rebuilds SCRIPT_NAME/PATH_INFO from REQUEST_URI.
            assert_page(&backend, &response, &path, &format!("i={i}"));
        }
    }
    assert_post(&backend, &apache, 100_000);

    let records = tap.records();
    assert_eq!(begins(&records).len(), 101);
    assert!(
        tap.connections() < 101,
        "enablereuse=on should reuse backend connections ({} for 101 requests)",
        tap.connections()
    );
    assert_every_request_ended(&records);
    gateway.proc.assert_alive();
    apache.assert_no_upstream_errors();
}

#[test]
fn apache_proxy_fcgi_enablereuse_serves_the_libfcgi_responder() {
    apache_scenario(Backend::CResponder);
}

#[test]
fn apache_proxy_fcgi_enablereuse_serves_iiswsgi_diagnostic_with_a_mount_point() {
    // §10: Apache sends no PATH_INFO, so iiswsgi runs with a mount point (here the root).
    apache_scenario(Backend::Iiswsgi(vec!["--mount".into(), "/".into()]));
}

/// A client that promises 1 MB, sends 100 KB and disconnects: HAProxy sends ABORT_REQUEST
/// (the only peer that does, §6). The backend must end that request and keep serving.
fn haproxy_abort_scenario(backend: Backend, options: HaproxyOptions) {
    let sandbox = Sandbox::new("haproxy-abort");
    let mut gateway = Gateway::start(&sandbox, &backend, "gw");
    let tap = WireTap::start(&sandbox, "tap", &gateway.socket);
    let haproxy = Peer::haproxy(&sandbox, &tap.socket, &options);

    let mut client = haproxy.connect();
    let head = "POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n";
    let stream = client.stream();
    stream.write_all(head.as_bytes()).expect("send head");
    stream
        .write_all(&vec![b'a'; 100_000])
        .expect("send part of the body");
    let saw = |what: &str, pred: &dyn Fn(&TapRecord) -> bool| {
        wait::poll(Duration::from_secs(10), || {
            tap.records().into_iter().find(|r| pred(r))
        })
        .unwrap_or_else(|| panic!("{what} never seen\n{}", haproxy.proc.output()))
    };
    saw("STDIN with data", &|r| {
        r.dir == Direction::ToApp && r.kind == wire::STDIN && r.len > 0
    });
    drop(client);

    let abort = saw("ABORT_REQUEST", &|r| {
        r.dir == Direction::ToApp && r.kind == wire::ABORT_REQUEST
    });
    let end = saw("END_REQUEST for the aborted request", &|r| {
        r.dir == Direction::FromApp
            && r.kind == wire::END_REQUEST
            && r.conn == abort.conn
            && r.id == abort.id
    });
    assert_eq!(
        end.content.get(4),
        Some(&0),
        "aborted request ends REQUEST_COMPLETE"
    );

    sequential(&backend, &haproxy, 5, "after");
    let records = tap.records();
    assert_every_request_ended(&records);
    gateway.proc.assert_alive();
    haproxy.assert_no_upstream_errors();
}

#[test]
fn haproxy_client_abort_mid_upload_sends_abort_request_and_the_libfcgi_responder_survives() {
    let options = HaproxyOptions {
        get_values: false,
        mpxs_conns: false,
        ..HaproxyOptions::default()
    };
    haproxy_abort_scenario(Backend::CResponder, options);
}

#[test]
fn haproxy_client_abort_mid_upload_is_answered_by_iiswsgi_which_keeps_serving() {
    haproxy_abort_scenario(Backend::iiswsgi(), HaproxyOptions::default());
}

// ---------------------------------------------------------------------------------------------
// The harness's own error detection
// ---------------------------------------------------------------------------------------------

/// `assert_no_upstream_errors` is only worth something if it fires: point each peer at a
/// socket nobody listens on and expect a 5xx and a flagged log line.
#[test]
fn peer_error_log_check_flags_an_unreachable_backend() {
    let sandbox = Sandbox::new("deadend");
    let nowhere = sandbox.join("nobody-listens.sock");
    let peers = [
        Peer::nginx(&sandbox, &nowhere),
        Peer::lighttpd_to_socket(&sandbox, &nowhere, ""),
        Peer::haproxy(&sandbox, &nowhere, &HaproxyOptions::default()),
        Peer::apache(&sandbox, &nowhere),
    ];
    for peer in &peers {
        let response = peer
            .connect()
            .request("GET", "/x", &[], b"")
            .expect("HTTP answer");
        assert!(
            response.status >= 500,
            "{:?} answered {}",
            peer.kind,
            response.status
        );
        // Logs are written after the response: the assertion below says what was missing.
        let _ = wait::poll(Duration::from_secs(5), || {
            (!peer.upstream_errors().is_empty()).then_some(())
        });
        assert!(
            !peer.upstream_errors().is_empty(),
            "{:?}: the failed upstream went unnoticed\n{}",
            peer.kind,
            peer.proc.output()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input over a raw socket
// ---------------------------------------------------------------------------------------------

/// Malformed FastCGI straight at `iiswsgi run --listen unix:…`: each case must cost at most
/// its own connection (or get an HTTP error on it), never the process, and never much memory.
mod hostile {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    use fcgi_testkit::cgi::Cgi;

    use crate::support::iis_client::wire::{self, Record, RecordReader};
    use crate::support::peers::{Backend, Gateway, Sandbox};

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn start(label: &str) -> (Sandbox, Gateway) {
        let sandbox = Sandbox::new(label);
        let gateway = Gateway::start(&sandbox, &Backend::iiswsgi(), "gw");
        (sandbox, gateway)
    }

    fn connect(gateway: &Gateway) -> UnixStream {
        let stream = UnixStream::connect(&gateway.socket).expect("connect to iiswsgi");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        stream.set_write_timeout(Some(TIMEOUT)).expect("timeout");
        stream
    }

    fn params(path: &str) -> Vec<(String, Vec<u8>)> {
        [
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", path),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", path),
            ("QUERY_STRING", ""),
            ("SERVER_NAME", "localhost"),
            ("SERVER_PORT", "80"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.as_bytes().to_vec()))
        .collect()
    }

    /// A whole request (`extra` pairs appended to a normal GET of `path`).
    fn request(id: u16, keep_conn: bool, path: &str, extra: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut pairs = params(path);
        pairs.extend(extra.iter().cloned());
        let flags = if keep_conn { wire::KEEP_CONN } else { 0 };
        let mut out = wire::begin_request(id, wire::RESPONDER, flags);
        wire::push_stream(
            &mut out,
            wire::PARAMS,
            id,
            &wire::encode_pairs(&pairs, wire::Lengths::Shortest),
            65_535,
            wire::Padding::None,
        );
        wire::push_record(&mut out, wire::PARAMS, id, &[], 0);
        wire::push_record(&mut out, wire::STDIN, id, &[], 0);
        out
    }

    /// What came back for one request.
    struct Reply {
        stdout: Vec<u8>,
        protocol_status: u8,
        /// Records for other ids or of other types, in order.
        others: Vec<Record>,
    }

    /// Reads records up to `id`'s END_REQUEST, or returns the records read before the
    /// connection closed.
    fn response(reader: &mut RecordReader<UnixStream>, id: u16) -> Result<Reply, Vec<Record>> {
        let mut seen = Vec::new();
        let mut stdout = Vec::new();
        loop {
            match reader.next_record() {
                Ok(Some(r)) if r.kind == wire::STDOUT && r.id == id => {
                    stdout.extend_from_slice(&r.content);
                }
                Ok(Some(r)) if r.kind == wire::END_REQUEST && r.id == id => {
                    return Ok(Reply {
                        stdout,
                        protocol_status: r.end_request().map_or(255, |(_, p)| p),
                        others: seen,
                    });
                }
                Ok(Some(r)) => seen.push(r),
                Ok(None) | Err(_) => return Err(seen),
            }
        }
    }

    fn status_of(stdout: &[u8]) -> u16 {
        Cgi::parse(stdout).map_or(0, |c| c.status)
    }

    /// The process is alive and a fresh connection gets a 200 for a normal request.
    fn still_serves(gateway: &mut Gateway) {
        gateway.proc.assert_alive();
        let mut stream = connect(gateway);
        stream
            .write_all(&request(1, false, "/still-here", &[]))
            .expect("send");
        let mut reader = RecordReader::new(stream);
        let reply = response(&mut reader, 1)
            .unwrap_or_else(|seen| panic!("no response, saw {seen:?}\n{}", gateway.proc.output()));
        let text = String::from_utf8_lossy(&reply.stdout);
        assert_eq!(status_of(&reply.stdout), 200, "{text}");
        gateway.proc.assert_alive();
    }

    /// Peak resident memory of the process, from /proc.
    fn peak_rss_kib(gateway: &Gateway) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.proc.pid()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// Reads until the server closes the connection; fails if it keeps it open.
    fn expect_close(stream: &mut UnixStream) {
        let mut sink = [0u8; 4096];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("the server neither answered nor closed: {e}"),
            }
        }
    }

    #[test]
    fn garbage_bytes_drop_the_connection_and_the_next_one_is_served() {
        let (_sandbox, mut gateway) = start("hostile-garbage");
        let mut stream = connect(&gateway);
        let mut garbage = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        garbage.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let _ = stream.write_all(&garbage);
        expect_close(&mut stream);
        still_serves(&mut gateway);
    }

    #[test]
    fn pair_length_claiming_2_pow_31_is_refused_without_allocating_it() {
        let (_sandbox, mut gateway) = start("hostile-2g");
        let before = peak_rss_kib(&gateway);
        let mut stream = connect(&gateway);
        let mut out = wire::begin_request(1, wire::RESPONDER, wire::KEEP_CONN);
        let mut claim = Vec::new();
        wire::push_long_len(&mut claim, 0x7fff_ffff); // name: 2 GiB - 1
        wire::push_long_len(&mut claim, 0x7fff_ffff); // value: 2 GiB - 1 (the sum wraps in u32)
        claim.extend_from_slice(b"HTTP_X");
        wire::push_record(&mut out, wire::PARAMS, 1, &claim, 0);
        wire::push_record(&mut out, wire::PARAMS, 1, &[], 0);
        wire::push_record(&mut out, wire::STDIN, 1, &[], 0);
        stream.write_all(&out).expect("send the claim");
        let mut reader = RecordReader::new(stream);
        // Either an HTTP error on this request or a dropped connection; never a 200.
        if let Ok(reply) = response(&mut reader, 1) {
            let status = status_of(&reply.stdout);
            assert!((400..500).contains(&status), "status {status}");
        }
        still_serves(&mut gateway);
        let grown = peak_rss_kib(&gateway).saturating_sub(before);
        assert!(grown < 64 * 1024, "peak RSS grew by {grown} KiB");
    }

    #[test]
    fn oversized_params_get_431_and_the_connection_stays_usable() {
        let (_sandbox, mut gateway) = start("hostile-431");
        let before = peak_rss_kib(&gateway);
        let mut stream = connect(&gateway);
        // 64 values of 64 KiB: over the per-value and the total caps, spread over records.
        let big: Vec<(String, Vec<u8>)> = (0..64)
            .map(|i| (format!("HTTP_X_BIG_{i}"), vec![b'v'; 65 * 1024]))
            .collect();
        stream
            .write_all(&request(1, true, "/big", &big))
            .expect("send oversized params");
        let mut reader = RecordReader::new(stream.try_clone().expect("clone"));
        let reply = response(&mut reader, 1)
            .unwrap_or_else(|seen| panic!("connection dropped instead of 431: {seen:?}"));
        let text = String::from_utf8_lossy(&reply.stdout);
        assert_eq!(status_of(&reply.stdout), 431, "{text}");
        assert_eq!(reply.protocol_status, 0);
        // Same connection, next request.
        stream
            .write_all(&request(2, true, "/next", &[]))
            .expect("send");
        let Ok(next) = response(&mut reader, 2) else {
            panic!("the connection did not survive the 431");
        };
        assert_eq!(status_of(&next.stdout), 200);
        still_serves(&mut gateway);
        let grown = peak_rss_kib(&gateway).saturating_sub(before);
        assert!(grown < 64 * 1024, "peak RSS grew by {grown} KiB");
    }

    #[test]
    fn truncated_record_then_eof_leaves_the_process_serving() {
        let (_sandbox, mut gateway) = start("hostile-trunc");
        let mut stream = connect(&gateway);
        let whole = request(1, true, "/cut", &[]);
        // BEGIN_REQUEST and part of the PARAMS record, then EOF.
        stream.write_all(&whole[..16 + 8 + 20]).expect("send");
        stream.shutdown(Shutdown::Write).expect("half-close");
        expect_close(&mut stream);
        // A header cut in half, then EOF.
        let mut stream = connect(&gateway);
        stream.write_all(&whole[..5]).expect("send");
        stream.shutdown(Shutdown::Write).expect("half-close");
        expect_close(&mut stream);
        still_serves(&mut gateway);
    }

    #[test]
    fn unknown_management_type_gets_unknown_type_and_the_connection_continues() {
        let (_sandbox, mut gateway) = start("hostile-unknown");
        let mut stream = connect(&gateway);
        let mut out = wire::record(42, 0, b"??");
        // An unknown type on a request id is logged and ignored.
        out.extend(wire::record(42, 7, b""));
        out.extend(request(1, true, "/after-unknown", &[]));
        stream.write_all(&out).expect("send");
        let mut reader = RecordReader::new(stream);
        let reply =
            response(&mut reader, 1).unwrap_or_else(|seen| panic!("connection dropped: {seen:?}"));
        assert_eq!(status_of(&reply.stdout), 200);
        // Exactly one reply to the two unknown records: UNKNOWN_TYPE{42} on id 0.
        let unknown: Vec<_> = reply
            .others
            .iter()
            .filter(|r| r.kind == wire::UNKNOWN_TYPE)
            .collect();
        assert_eq!(unknown.len(), 1, "{:?}", reply.others);
        assert_eq!(unknown[0].id, 0);
        assert_eq!(unknown[0].content.first(), Some(&42));
        assert!(
            reply.others.iter().all(|r| r.kind == wire::UNKNOWN_TYPE),
            "{:?}",
            reply.others
        );
        still_serves(&mut gateway);
    }
}

/// Issue 16: what the connection cap and `--socket-mode` rely on in real web servers.
mod crowding {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::os::unix::process::CommandExt as _;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::thread;

    use crate::support::iis_client::wire;
    use crate::support::peers::{Peer, Proc, Sandbox, iiswsgi_bin, iiswsgi_log};

    /// `iiswsgi run --diagnostic --listen unix:SOCKET` plus `extra`, waited for.
    fn serve(sandbox: &Sandbox, socket: &Path, extra: &[&str]) -> Proc {
        let mut cmd = Command::new(iiswsgi_bin());
        cmd.args(["run", "--diagnostic", "--log"])
            .arg(iiswsgi_log(sandbox.path()))
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .args(extra)
            .stdin(Stdio::null());
        let mut proc = Proc::spawn(
            "iiswsgi",
            sandbox.path(),
            cmd,
            vec![iiswsgi_log(sandbox.path())],
        );
        proc.wait_until("its socket exists", || socket.exists());
        proc
    }

    /// A relay that plays a backend closing an idle connection at the very moment the web
    /// server reuses it: every connection is passed through to `upstream` until the web
    /// server begins its second request on it; that request is swallowed and the connection
    /// closed (the web server reads EOF where it expects the response).
    fn closing_relay(sandbox: &Sandbox, upstream: &Path) -> std::path::PathBuf {
        let socket = sandbox.join("relay.sock");
        let listener = UnixListener::bind(&socket).expect("bind relay");
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
            .expect("chmod relay");
        let upstream = upstream.to_owned();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = UnixStream::connect(&upstream) else {
                    continue;
                };
                let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                // Backend → web server: copied as is.
                thread::spawn(move || {
                    let (mut from, mut to) = (server2, client2);
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
                // Web server → backend: copied until a second BEGIN_REQUEST shows up.
                thread::spawn(move || {
                    let (mut from, mut to) = (client, server);
                    let (mut pending, mut begins) = (Vec::new(), 0);
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from.read(&mut buf) {
                        pending.extend_from_slice(&buf[..n]);
                        let mut forward = Vec::new();
                        while let Some((record, used)) = wire::Record::parse(&pending) {
                            if record.kind == wire::BEGIN_REQUEST {
                                begins += 1;
                            }
                            if begins >= 2 {
                                let _ = to.write_all(&forward);
                                let _ = from.shutdown(Shutdown::Both);
                                let _ = to.shutdown(Shutdown::Both);
                                return;
                            }
                            forward.extend(pending.drain(..used));
                        }
                        if to.write_all(&forward).is_err() {
                            return;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        });
        socket
    }

    /// When the cap is reached iiswsgi closes the longest-idle connection, which may be one
    /// nginx keeps in its upstream pool. Closed while idle, nginx drops it silently; closed
    /// just as nginx reuses it, nginx sees the cached connection fail and retries the request
    /// on a fresh one, for idempotent methods: a GET is still answered, a POST gets 502
    /// (`non_idempotent` in `fastcgi_next_upstream` would retry it too). README, "Connection
    /// cap".
    #[test]
    fn nginx_retries_a_get_whose_cached_upstream_connection_fails_but_not_a_post() {
        let sandbox = Sandbox::new("nginx-retry");
        let socket = sandbox.join("gw.sock");
        let _server = serve(&sandbox, &socket, &[]);
        let relay = closing_relay(&sandbox, &socket);
        let nginx = Peer::nginx(&sandbox, &relay);
        let get = |path: &str| {
            nginx
                .connect()
                .request("GET", path, &[], b"")
                .unwrap_or_else(|e| panic!("{path}: {e}\n{}", nginx.proc.output()))
        };
        assert_eq!(get("/first").status, 200);
        // Its second request on the cached connection is cut: nginx retries it.
        let retried = get("/second");
        assert_eq!(retried.status, 200, "{}", nginx.proc.output());
        assert!(
            nginx
                .error_log()
                .contains("upstream prematurely closed connection"),
            "the cached connection really failed:\n{}",
            nginx.error_log()
        );
        let post = nginx
            .connect()
            .request("POST", "/third", &[], b"body")
            .expect("an HTTP answer");
        assert_eq!(post.status, 502, "a POST is not retried");
    }

    /// `--socket-mode 0660` with the socket in a folder of group www-data (setgid): Apache,
    /// serving as www-data, connects; a process of another user cannot, though it can reach
    /// a 0666 socket in the same folder.
    #[test]
    fn socket_mode_0660_in_a_www_data_folder_lets_the_web_server_in_and_no_one_else() {
        let sandbox = Sandbox::new("sockmode");
        let www_data = group_id("www-data");
        let run_dir = sandbox.join("run");
        std::fs::create_dir(&run_dir).expect("run dir");
        std::os::unix::fs::chown(&run_dir, None, Some(www_data)).expect("chgrp www-data");
        // Traversable by all here, so that the socket's own mode is what keeps others out
        // (the README's recipe also closes the folder: 2750).
        std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o2755))
            .expect("chmod 2755");
        let socket = run_dir.join("gw.sock");
        let _server = serve(
            &sandbox,
            &socket,
            &["--socket-mode", "0660", "--mount", "/"],
        );
        let open = run_dir.join("open.sock");
        let _open_server = serve(&sandbox, &open, &["--socket-mode", "0666"]);
        let meta = std::fs::metadata(&socket).expect("socket");
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(
            std::os::unix::fs::MetadataExt::gid(&meta),
            www_data,
            "the folder's group"
        );
        let apache = Peer::apache(&sandbox, &socket);
        let response = apache
            .connect()
            .request("GET", "/through-apache", &[], b"")
            .expect("HTTP answer");
        assert_eq!(response.status, 200, "{}", apache.proc.output());
        // `nobody` is neither the owner nor in www-data.
        let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("a system python3 (run .ci/setup)");
        let nobody_connects = |path: &Path| {
            Command::new(python)
                .args([
                    "-c",
                    "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
                ])
                .arg(path)
                .stderr(Stdio::null())
                .uid(65534)
                .gid(65534)
                .status()
                .expect("run python3 as nobody")
                .success()
        };
        assert!(nobody_connects(&open), "the control: a 0666 socket");
        assert!(
            !nobody_connects(&socket),
            "nobody connected to a 0660 socket"
        );
    }

    fn group_id(name: &str) -> u32 {
        std::fs::read_to_string("/etc/group")
            .expect("/etc/group")
            .lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name)).then(|| f.nth(1)?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no group {name} (install apache2: run .ci/setup)"))
    }
}
