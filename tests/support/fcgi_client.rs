//! A small FastCGI client for `tests/run.rs`, written from `fastcgi-protocol.md` §1–§2 and
//! `iis-runtime.md` §4 and deliberately independent of the crate's codec: it must be able to
//! catch the codec's bugs, not share them.
//!
//! It encodes `BEGIN_REQUEST`, PARAMS (pairs in 1- or 4-byte length form, split into records
//! of a chosen size), STDIN (records of a chosen size) and `GET_VALUES`; reads replies record by
//! record, holding them to IIS's rules (only types 3, 6, 7 on the request id and 10 on id 0,
//! ids echoed, padding honoured, nothing after `END_REQUEST`); and parses the CGI response.
//! It also spawns `iiswsgi run` the way IIS does, with one end of a socketpair on fd 0.

#![allow(dead_code)] // each test module uses a different part

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;
pub const GET_VALUES: u8 = 9;
pub const GET_VALUES_RESULT: u8 = 10;
pub const UNKNOWN_TYPE: u8 = 11;

/// One record: header fields and content (padding already skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub version: u8,
    pub kind: u8,
    pub id: u16,
    pub content: Vec<u8>,
    pub padding: u8,
}

/// Encodes one record with `padding` zero bytes after the content.
pub fn record(kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    assert!(content.len() <= 0xffff, "record content too long");
    let len = content.len() as u16;
    let mut out = vec![
        1,
        kind,
        (id >> 8) as u8,
        id as u8,
        (len >> 8) as u8,
        len as u8,
        padding,
        0,
    ];
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(0u8, usize::from(padding)));
    out
}

/// `BEGIN_REQUEST{RESPONDER, flags}`.
pub fn begin(id: u16, keep_conn: bool) -> Vec<u8> {
    record(
        BEGIN_REQUEST,
        id,
        &[0, 1, u8::from(keep_conn), 0, 0, 0, 0, 0],
        0,
    )
}

fn push_len(out: &mut Vec<u8>, len: usize, long: bool) {
    if len <= 127 && !long {
        out.push(len as u8);
    } else {
        let l = len as u32 | 0x8000_0000;
        out.extend_from_slice(&l.to_be_bytes());
    }
}

/// Name–value pairs; `long_form` forces the 4-byte length form for every length.
pub fn pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(params: &[(N, V)], long_form: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in params {
        let (n, v) = (n.as_ref(), v.as_ref());
        push_len(&mut out, n.len(), long_form);
        push_len(&mut out, v.len(), long_form);
        out.extend_from_slice(n);
        out.extend_from_slice(v);
    }
    out
}

/// A stream (PARAMS or STDIN) as records of at most `chunk` content bytes, then the empty
/// record that ends it.
pub fn stream(kind: u8, id: u16, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        // Pad to 8-byte alignment like most servers do; the reader must skip it.
        let pad = (8 - part.len() % 8) % 8;
        out.extend(record(kind, id, part, pad as u8));
    }
    out.extend(record(kind, id, &[], 0));
    out
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

/// Reads exactly one record; `Ok(None)` on a clean EOF at a record boundary.
pub fn read_record(r: &mut impl Read) -> io::Result<Option<RawRecord>> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        let n = r.read(&mut header[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside a record header",
                ))
            };
        }
        got += n;
    }
    let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let padding = header[6];
    let mut content = vec![0u8; len];
    r.read_exact(&mut content)?;
    let mut pad = vec![0u8; usize::from(padding)];
    r.read_exact(&mut pad)?;
    Ok(Some(RawRecord {
        version: header[0],
        kind: header[1],
        id: u16::from_be_bytes([header[2], header[3]]),
        content,
        padding,
    }))
}

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: u16,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub app_status: u32,
    pub protocol_status: u8,
    /// `(type, content length)` of every record, in order, for framing checks.
    pub records: Vec<(u8, usize)>,
}

impl Reply {
    /// The CGI response in `stdout`.
    pub fn cgi(&self) -> Cgi {
        Cgi::parse(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "bad CGI response ({e}): {:?}",
                String::from_utf8_lossy(&self.stdout)
            )
        })
    }
}

/// Reads records until `END_REQUEST` for `id`, enforcing IIS's acceptance rules: only STDOUT,
/// STDERR and END_REQUEST on `id`; GET_VALUES_RESULT only on id 0; version 1; END_REQUEST
/// body 8 bytes. Empty STDOUT records are allowed (IIS ignores them).
pub fn read_reply(r: &mut impl Read, id: u16) -> io::Result<Reply> {
    let mut reply = Reply {
        id,
        stdout: Vec::new(),
        stderr: Vec::new(),
        app_status: 0,
        protocol_status: 0,
        records: Vec::new(),
    };
    loop {
        let rec = read_record(r)?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "EOF before END_REQUEST")
        })?;
        let bad = |why: String| Err(io::Error::new(io::ErrorKind::InvalidData, why));
        if rec.version != 1 {
            return bad(format!("record version {}", rec.version));
        }
        if rec.id != id {
            return bad(format!(
                "record type {} for id {} while waiting for {id}",
                rec.kind, rec.id
            ));
        }
        reply.records.push((rec.kind, rec.content.len()));
        match rec.kind {
            STDOUT => reply.stdout.extend_from_slice(&rec.content),
            STDERR => reply.stderr.extend_from_slice(&rec.content),
            END_REQUEST => {
                if rec.content.len() != 8 {
                    return bad(format!("END_REQUEST body of {} bytes", rec.content.len()));
                }
                reply.app_status = u32::from_be_bytes([
                    rec.content[0],
                    rec.content[1],
                    rec.content[2],
                    rec.content[3],
                ]);
                reply.protocol_status = rec.content[4];
                return Ok(reply);
            }
            other => return bad(format!("record type {other} (IIS accepts only 3, 6, 7)")),
        }
    }
}

/// A parsed CGI response: `Status:` line, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgi {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the first header line was `Status:` and every line ended in CRLF.
    pub status_first_crlf: bool,
}

impl Cgi {
    pub fn parse(out: &[u8]) -> Result<Cgi, String> {
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no CRLF CRLF after the headers")?;
        let head = std::str::from_utf8(&out[..end]).map_err(|e| e.to_string())?;
        let mut status = None;
        let mut headers = Vec::new();
        let mut first_is_status = false;
        for (i, line) in head.split("\r\n").enumerate() {
            if line.contains('\n') || line.contains('\r') {
                return Err(format!("bare CR or LF in header line {line:?}"));
            }
            let (name, value) = line
                .split_once(": ")
                .ok_or(format!("bad header line {line:?}"))?;
            if name.eq_ignore_ascii_case("Status") {
                first_is_status = i == 0;
                let (code, reason) = value.split_once(' ').unwrap_or((value, ""));
                status = Some((
                    code.parse::<u16>().map_err(|e| e.to_string())?,
                    reason.to_owned(),
                ));
            } else {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        let (status, reason) = status.ok_or("no Status header")?;
        Ok(Cgi {
            status,
            reason,
            headers,
            body: out[end + 4..].to_vec(),
            status_first_crlf: first_is_status,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The value the diagnostic page shows for `name` in its first table: the cell after the
/// `<td>` holding exactly `name`, HTML entities decoded.
pub fn diag_value(page: &str, name: &str) -> Option<String> {
    let key = format!("<tr><td>{}</td><td>", escape(name));
    let at = page.find(&key)? + key.len();
    let end = at + page[at..].find("</td>")?;
    Some(unescape(&page[at..end]))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';') else { break };
        let entity = &rest[1..semi];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "amp" => Some('&'),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `iiswsgi` binary under test.
pub fn iiswsgi_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iiswsgi"))
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
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut out = Vec::new();
                let mut err = Vec::new();
                if let Some(mut s) = self.child.stdout.take() {
                    let _ = s.read_to_end(&mut out);
                }
                if let Some(mut s) = self.child.stderr.take() {
                    let _ = s.read_to_end(&mut err);
                }
                return (status, out, err);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("iiswsgi did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// The IIS param table (iis-runtime §6.2) for `GET/POST uri` to the app at `APPL_MD_PATH`
/// `md`, with IIS's quirks: ANSI PATH_INFO (non-ASCII as `?`), SCRIPT_NAME = URL = the full
/// decoded path, HTTPS=off, HTTP_CONTENT_LENGTH sent.
pub fn iis_params(method: &str, md: &str, uri: &str, body_len: usize) -> Vec<(String, Vec<u8>)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    // IIS decodes the path through the ANSI code page: non-ASCII becomes '?'.
    let ansi: String = String::from_utf8_lossy(&percent_decode(path.as_bytes()))
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let s = |v: &str| v.as_bytes().to_vec();
    let mut p: Vec<(String, Vec<u8>)> = Vec::new();
    if body_len > 0 {
        p.push(("HTTP_CONTENT_LENGTH".into(), s(&body_len.to_string())));
        p.push(("HTTP_CONTENT_TYPE".into(), s("application/octet-stream")));
    }
    p.push(("HTTP_ACCEPT".into(), s("*/*")));
    p.push(("HTTP_HOST".into(), s("www.example.com")));
    p.push(("HTTP_USER_AGENT".into(), s("curl/8.0")));
    for (n, v) in [
        ("APPL_MD_PATH", md),
        ("APPL_PHYSICAL_PATH", "C:\\inetpub\\wwwroot\\app\\"),
        ("AUTH_TYPE", ""),
        ("AUTH_PASSWORD", ""),
        ("AUTH_USER", ""),
        ("CERT_COOKIE", ""),
        ("CERT_FLAGS", ""),
        ("CERT_ISSUER", ""),
        ("CERT_SERIALNUMBER", ""),
        ("CERT_SUBJECT", ""),
        ("CONTENT_LENGTH", &body_len.to_string()),
        (
            "CONTENT_TYPE",
            if body_len > 0 {
                "application/octet-stream"
            } else {
                ""
            },
        ),
        ("DOCUMENT_ROOT", "C:\\inetpub\\wwwroot\\app"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("HTTPS", "off"),
        ("HTTPS_KEYSIZE", ""),
        ("HTTPS_SECRETKEYSIZE", ""),
        ("HTTPS_SERVER_ISSUER", ""),
        ("HTTPS_SERVER_SUBJECT", ""),
        ("INSTANCE_ID", "1"),
        ("INSTANCE_NAME", "DEFAULT WEB SITE"),
        ("INSTANCE_META_PATH", "/LM/W3SVC/1"),
        ("LOCAL_ADDR", "::1"),
        ("LOGON_USER", ""),
        ("PATH_INFO", &ansi),
        ("PATH_TRANSLATED", "C:\\inetpub\\wwwroot\\app\\x"),
        ("QUERY_STRING", query),
        ("REMOTE_ADDR", "::1"),
        ("REMOTE_HOST", "::1"),
        ("REMOTE_PORT", "51234"),
        ("REMOTE_USER", ""),
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("SCRIPT_FILENAME", "C:\\inetpub\\wwwroot\\app\\x"),
        ("SCRIPT_NAME", &ansi),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "80"),
        ("SERVER_PORT_SECURE", "0"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "Microsoft-IIS/10.0"),
        ("URL", &ansi),
    ] {
        p.push((n.to_owned(), s(v)));
    }
    p
}

fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// The body's FNV-1a 64-bit hash, as the diagnostic page shows it.
pub fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
