//! A small FastCGI client for `tests/run.rs` and `tests/wsgi.rs`: the shared kit
//! (`crates/fcgi-testkit`, written from `fastcgi-protocol.md` §1–§2 and `iis-runtime.md` §4 and
//! deliberately independent of the crate's codec, so that it catches the codec's bugs instead
//! of sharing them) with the short names these tests use.
//!
//! It encodes `BEGIN_REQUEST`, PARAMS (pairs in 1- or 4-byte length form, split into records
//! of a chosen size, padded to 8 bytes as nginx does), STDIN (records of a chosen size) and
//! `GET_VALUES`; reads replies record by record, holding them to IIS's rules
//! ([`read_reply`]); and parses the CGI response. It also spawns `iiswsgi run` the way IIS
//! does, with one end of a socketpair on fd 0.

// Each test module, and bench/wsgi_peers.rs, uses a different part.
#![allow(dead_code, unused_imports)]

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use fcgi_testkit::cgi::{Cgi, diag_value, fnv1a64};
use fcgi_testkit::iis::{AnsiCodePage, IisApp, IisRequest};
pub use fcgi_testkit::iis::{Reply, read_reply};
use fcgi_testkit::wire::{self, Lengths, Padding};

use super::wait;
pub use fcgi_testkit::wire::{
    ABORT_REQUEST, END_REQUEST, GET_VALUES, GET_VALUES_RESULT, PARAMS, STDIN, STDOUT, UNKNOWN_TYPE,
    read_record,
};

/// One version-1 record with `padding` zero bytes after the content.
pub fn record(kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let mut out = Vec::new();
    wire::push_record(&mut out, kind, id, content, padding);
    out
}

/// `BEGIN_REQUEST{RESPONDER, flags}`.
pub fn begin(id: u16, keep_conn: bool) -> Vec<u8> {
    let flags = if keep_conn { wire::KEEP_CONN } else { 0 };
    wire::begin_request(id, wire::RESPONDER, flags)
}

/// Name–value pairs; `long_form` forces the 4-byte length form for every length.
pub fn pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(params: &[(N, V)], long_form: bool) -> Vec<u8> {
    let lengths = if long_form {
        Lengths::Long
    } else {
        Lengths::Shortest
    };
    wire::encode_pairs(params, lengths)
}

/// A stream (PARAMS or STDIN) as records of at most `chunk` content bytes, each padded to
/// 8-byte alignment like most servers do (the reader must skip it), then the empty record
/// that ends it.
pub fn stream(kind: u8, id: u16, data: &[u8], chunk: usize) -> Vec<u8> {
    wire::stream(kind, id, data, chunk, Padding::Align8)
}

/// A whole request as IIS writes it: BEGIN, PARAMS records + empty PARAMS, STDIN records +
/// empty STDIN.
pub fn request_bytes<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    id: u16,
    keep_conn: bool,
    params: &[(N, V)],
    body: &[u8],
    stdin_chunk: usize,
) -> Vec<u8> {
    let mut out = begin(id, keep_conn);
    out.extend(stream(PARAMS, id, &pairs(params, false), 4096));
    out.extend(stream(STDIN, id, body, stdin_chunk));
    out
}

/// The `iiswsgi` binary under test.
/// The binary under test: `IISWSGI_TEST_BIN` when set (the release binary the CPython matrix
/// names, `tests/wsgi/matrix.rs`), else the one cargo built.
pub fn iiswsgi_bin() -> PathBuf {
    std::env::var_os("IISWSGI_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_iiswsgi")))
}

/// A running `iiswsgi run` with captured stdout/stderr.
pub struct Server {
    pub child: Child,
}

impl Server {
    /// Starts `iiswsgi run ARGS` with `fd0` as its standard input (IIS style), stdout and stderr
    /// captured, and the given extra environment.
    pub fn spawn_on(fd0: OwnedFd, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(iiswsgi_bin());
        cmd.arg("run").args(args);
        cmd.stdin(Stdio::from(fd0))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server {
            child: cmd.spawn().expect("spawn iiswsgi"),
        }
    }

    /// Starts `iiswsgi run ARGS` IIS-style: a socketpair, the child's end on fd 0. Returns our
    /// end, blocking, with a read timeout so a hung server fails the test instead of hanging it.
    pub fn spawn_iis(args: &[&str], env: &[(&str, &str)]) -> (Server, UnixStream) {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let server = Server::spawn_on(OwnedFd::from(theirs), args, env);
        (server, ours)
    }

    /// Starts `iiswsgi run ARGS` with stdin closed to nothing (for `--listen`).
    pub fn spawn_listen(args: &[&str]) -> Server {
        let mut cmd = Command::new(iiswsgi_bin());
        cmd.arg("run").args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Server {
            child: cmd.spawn().expect("spawn iiswsgi"),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for exit (at most `limit`), returning the status and what the process printed.
    pub fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, Vec<u8>, Vec<u8>) {
        let exited = wait::poll(limit, || self.child.try_wait().expect("try_wait"));
        let Some(status) = exited else {
            let _ = self.child.kill();
            panic!("iiswsgi did not exit within {limit:?}");
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = s.read_to_end(&mut err);
        }
        (status, out, err)
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid()).expect("pid");
        rustix::process::kill_process(pid, sig).expect("kill");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits until `path` exists (a socket a server is about to bind).
pub fn wait_for_path(path: &Path, limit: Duration) {
    let what = format!("{} appears", path.display());
    wait::until_true(&what, limit, || path.exists());
}

/// Sends one request and reads its reply.
pub fn exchange<S: Read + Write, N: AsRef<[u8]>, V: AsRef<[u8]>>(
    s: &mut S,
    id: u16,
    keep_conn: bool,
    params: &[(N, V)],
    body: &[u8],
) -> Reply {
    s.write_all(&request_bytes(id, keep_conn, params, body, 8192))
        .expect("write request");
    read_reply(s, id).expect("reply")
}

/// A few generic (nginx-like) params for `uri`.
pub fn nginx_params(method: &str, uri: &str, body_len: Option<usize>) -> Vec<(String, String)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut p = vec![
        ("REQUEST_METHOD".to_owned(), method.to_owned()),
        ("REQUEST_URI".to_owned(), uri.to_owned()),
        ("QUERY_STRING".to_owned(), query.to_owned()),
        ("SCRIPT_NAME".to_owned(), String::new()),
        ("PATH_INFO".to_owned(), path.to_owned()),
        ("SERVER_PROTOCOL".to_owned(), "HTTP/1.1".to_owned()),
        ("SERVER_NAME".to_owned(), "localhost".to_owned()),
        ("SERVER_PORT".to_owned(), "80".to_owned()),
        ("GATEWAY_INTERFACE".to_owned(), "CGI/1.1".to_owned()),
        ("HTTP_HOST".to_owned(), "localhost".to_owned()),
    ];
    if let Some(n) = body_len {
        p.push(("CONTENT_LENGTH".to_owned(), n.to_string()));
    }
    p
}

/// IIS's param table (iis-runtime §6.2, from the kit's [`IisRequest::params`]) for
/// `method uri` to the application at `APPL_MD_PATH` `md`, as curl would send it to
/// `www.example.com`: `HTTP_CONTENT_LENGTH` and an octet-stream `CONTENT_TYPE` when there is a
/// body, and `PATH_INFO` = `SCRIPT_NAME` = `URL` = the full decoded path in an ASCII code page
/// (non-ASCII as `?`).
pub fn iis_params(method: &str, md: &str, uri: &str, body_len: usize) -> Vec<(String, Vec<u8>)> {
    let app = IisApp {
        code_page: AnsiCodePage::UsAscii,
        ..IisApp::at_md_path(md)
    };
    IisRequest::client(method, uri, "curl/8.0", body_len).params(&app)
}
