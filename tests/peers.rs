//! `iiswsgi run` behind real web servers: nginx, lighttpd, HAProxy 2.6 and Apache, each
//! started by the test on loopback with the configs of `fastcgi-protocol.md` §11, each serving
//! the diagnostic responder through real HTTP requests. Each scenario runs twice: against
//! libfcgi's C responder (which proves the harness and the config) and against
//! `iiswsgi run --diagnostic`. A [`WireTap`] between peer and backend records what the peer
//! really sent (KEEP_CONN, ids, GET_VALUES, aborts) so the tests can assert the protocol path
//! they claim to exercise.
//!
//! `hostile` throws malformed FastCGI at `iiswsgi run --listen` over a raw socket.

use std::thread;

use crate::support::iis_client::wire;
use crate::support::peers::{
    Backend, Direction, Gateway, HaproxyOptions, HttpResponse, Peer, Sandbox, TapRecord, WireTap,
    shown_by,
};

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
        let shown = |name| shown_by(backend, &response.body, name);
        assert_eq!(
            shown("CONTENT_LENGTH").as_deref(),
            Some(size.to_string().as_str())
        );
        assert_eq!(shown("REQUEST_METHOD").as_deref(), Some("POST"));
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

fn lighttpd_scenario(backend: Backend) {
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
}

#[test]
fn lighttpd_bin_path_spawns_the_libfcgi_responder_on_fd_0() {
    lighttpd_scenario(Backend::CResponder);
}

#[test]
fn lighttpd_bin_path_spawns_iiswsgi_on_fd_0_without_keep_conn() {
    lighttpd_scenario(Backend::iiswsgi());
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
    concurrent(&backend, &haproxy, 4, 25);
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
    assert_eq!(begun.len(), 300 + 100 + 1);
    let max_id = begun.iter().map(|b| b.id).max().unwrap_or(0);
    assert!(max_id > 255, "ids stayed at or below 255 (max {max_id})");
    for begin in &begun {
        assert_eq!(
            begin.content[2] & wire::KEEP_CONN,
            wire::KEEP_CONN,
            "option keep-conn"
        );
    }
    // The backend said MPXS_CONNS=0, so no connection carries two requests at once.
    assert_no_overlap(&records);
    assert_every_request_ended(&records);
    gateway.proc.assert_alive();
    haproxy.assert_no_upstream_errors();
}

/// No connection has a BEGIN_REQUEST while another request on it has not ended.
fn assert_no_overlap(records: &[TapRecord]) {
    let mut open: std::collections::HashMap<usize, u16> = std::collections::HashMap::new();
    for r in records {
        match (r.dir, r.kind) {
            (Direction::ToApp, wire::BEGIN_REQUEST) => {
                if let Some(active) = open.insert(r.conn, r.id) {
                    panic!(
                        "connection {} began {} while {active} was open",
                        r.conn, r.id
                    );
                }
            }
            (Direction::FromApp, wire::END_REQUEST) => {
                open.remove(&r.conn);
            }
            _ => {}
        }
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
fn apache_proxy_fcgi_enablereuse_serves_iiswsgi_diagnostic() {
    apache_scenario(Backend::iiswsgi());
}
