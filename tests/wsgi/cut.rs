//! Issue 16: a response the application fails after its headers went out must reach the
//! client broken, not complete. Before the fix iiswsgi just closed the connection, and nginx
//! without `fastcgi_keep_conn` (Debian's stock snippets) or with `fastcgi_buffering off`
//! ended the chunked reply with a clean last chunk: a 200 the client took as whole.
//!
//! The app (`tests/conformance/apps/cut.py`) sends 128 KiB, then raises; `/stream` has no
//! Content-Length (the web server chunks it), `/length` declares 256 KiB. Each real web
//! server is configured as its docs or Debian configure it, and the client must see the
//! response broken wherever the server can show it (README, "A response cut short"): nginx
//! in every mode, Apache `mod_proxy_fcgi`, HAProxy with and without `keep-conn`, lighttpd
//! streaming responses. lighttpd's default buffers the whole response and sends it with a
//! Content-Length of what it got, whatever the backend does: pinned below as documented.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use super::apps_dir;
use crate::support::fcgi_client::{self as fc, Server};
use crate::support::peers::{HaproxyOptions, HttpResponse, Peer, Sandbox};
use crate::support::wait;

/// `iiswsgi run --app cut:application` on a unix socket in `sandbox` (mount point `/`, as
/// Apache needs).
fn serve(sandbox: &Sandbox) -> (Server, PathBuf) {
    let socket = sandbox.join("gw.sock");
    let (listen, log, chdir) = (
        format!("unix:{}", socket.display()),
        sandbox.join("iiswsgi.log").display().to_string(),
        apps_dir().display().to_string(),
    );
    let server = Server::spawn_listen(&[
        "--app",
        "cut:application",
        "--chdir",
        &chdir,
        "--listen",
        &listen,
        "--mount",
        "/",
        "--log",
        &log,
    ]);
    fc::wait_for_path(&socket, Duration::from_secs(20));
    (server, socket)
}

fn get(peer: &Peer, path: &str) -> std::io::Result<HttpResponse> {
    peer.connect().request("GET", path, &[], b"")
}

/// The peer serves the app: `/ok` comes back whole.
fn assert_serves(peer: &Peer) {
    let r = get(peer, "/ok").unwrap_or_else(|e| panic!("{:?}: {e}", peer.kind));
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "complete"),
        "{:?}",
        peer.kind
    );
}

/// The client sees `path` broken: the connection ends before the framing says the body is
/// complete (or an error status if nothing had gone out), promptly, never as a whole 200.
fn assert_broken(peer: &Peer, path: &str) {
    match get(peer, path) {
        Ok(r) => assert_ne!(
            r.status,
            200,
            "{:?} passed {path} on as a complete 200 of {} bytes",
            peer.kind,
            r.body.len()
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
            ),
            "{:?} {path}: {e} (a timeout is not a visible cut)",
            peer.kind
        ),
    }
}

/// The app is served, and both framings reach the client broken.
fn assert_cut_visible(peer: &Peer) {
    assert_serves(peer);
    assert_broken(peer, "/stream");
    assert_broken(peer, "/length");
}

/// iiswsgi's log has the traceback and says it cut `n` responses.
fn assert_logged(backend: &Sandbox, n: usize) {
    let log = backend.join("iiswsgi.log");
    wait::log_count(&log, "the database went away", n, Duration::from_secs(5));
    wait::log_count(&log, "cutting it short", n, Duration::from_secs(5));
}

#[test]
fn nginx_shows_the_cut_with_and_without_keep_conn_and_unbuffered() {
    let backend = Sandbox::new("cut-nginx");
    let (_server, socket) = serve(&backend);
    // Without keep-conn and unbuffered first: there a plain close looked complete.
    for directives in [
        "",
        "fastcgi_keep_conn on; fastcgi_buffering off;",
        "fastcgi_buffering off;",
        "fastcgi_keep_conn on;",
    ] {
        let sandbox = Sandbox::new("cut-nginx-peer");
        let nginx = Peer::nginx_with(&sandbox, &socket, directives);
        assert_cut_visible(&nginx);
        assert!(
            nginx
                .error_log()
                .contains("invalid FastCGI record type: 11"),
            "`{directives}`: nginx says why it aborted:\n{}",
            nginx.error_log()
        );
    }
    assert_logged(&backend, 8);
}

/// Apache shows the cut when it closes the client's connection, which it does only once its
/// keep-alive timeout (5 s by default) has passed: shortened here to keep the test quick.
#[test]
fn apache_proxy_fcgi_shows_the_cut() {
    let backend = Sandbox::new("cut-apache");
    let (_server, socket) = serve(&backend);
    let apache = Peer::apache_with(&backend, &socket, "KeepAliveTimeout 1");
    assert_cut_visible(&apache);
    assert_logged(&backend, 2);
}

#[test]
fn haproxy_shows_the_cut_with_and_without_keep_conn() {
    let backend = Sandbox::new("cut-haproxy");
    let (_server, socket) = serve(&backend);
    for keep_conn in [true, false] {
        let sandbox = Sandbox::new("cut-haproxy-peer");
        let options = HaproxyOptions {
            keep_conn,
            mpxs_conns: keep_conn,
            ..HaproxyOptions::default()
        };
        let haproxy = Peer::haproxy(&sandbox, &socket, &options);
        assert_cut_visible(&haproxy);
    }
    assert_logged(&backend, 4);
}

#[test]
fn lighttpd_streaming_responses_shows_the_cut() {
    let backend = Sandbox::new("cut-lighttpd");
    let (_server, socket) = serve(&backend);
    let lighttpd = Peer::lighttpd_to_socket(&backend, &socket, "server.stream-response-body = 2");
    assert_cut_visible(&lighttpd);
    assert_logged(&backend, 2);
}

/// The documented exception: lighttpd 1.4's default (`server.stream-response-body = 0`)
/// collects the whole response first, then sends what it got with a matching Content-Length,
/// so no backend can make it show a cut chunked response.
#[test]
fn lighttpd_buffering_the_whole_response_hides_the_cut_as_documented() {
    let backend = Sandbox::new("cut-lighttpd0");
    let (_server, socket) = serve(&backend);
    let lighttpd = Peer::lighttpd_to_socket(&backend, &socket, "");
    assert_serves(&lighttpd);
    let r = get(&lighttpd, "/stream").expect("a whole-looking response");
    assert_eq!((r.status, r.body.len()), (200, 128 * 1024));
    assert_eq!(r.header("Content-Length"), Some("131072"));
    assert_broken(&lighttpd, "/length");
}
