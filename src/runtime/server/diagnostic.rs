//! `iiswsgi run --diagnostic`: a built-in [`Application`] that needs no Python.
//!
//! It is the first thing to try when IIS says "The FastCGI process exited unexpectedly": if
//! this page shows, IIS can start iiswsgi, the handler mapping and FastCGI registration match,
//! and the transport works; what is left is the Python side. Every request gets an HTML page
//! listing, in this order:
//!
//! 1. the normalised environ, as a WSGI application would receive it (values shown as
//!    latin-1, PEP 3333's bytes-as-str), plus `wsgi.url_scheme`, `wsgi.multithread`,
//!    `wsgi.multiprocess`;
//! 2. the server: version, pid, `APP_POOL_ID`, transport, log file, environ rules applied,
//!    FastCGI request id, and the request body's length and FNV-1a hash (the body is read in
//!    full, so uploads exercise STDIN end to end);
//! 3. the params exactly as received, as `NAME=value` lines.
//!
//! Each environ row is `<tr><td>NAME</td><td>VALUE</td></tr>` with HTML escaping, so tests
//! can read values back.
//!
//! [`DiagnosticMode::Hello`] (`--diagnostic=hello`) answers a 14-byte `Hello, world!` instead:
//! the minimal responder the benchmark compares with a C libfcgi hello-world, so the figure
//! measures the server, not HTML rendering. It still reads (and discards) the body.

use std::fmt::Write as _;

use super::{Application, Body, Outcome, Request, Response, ServerInfo};
use crate::runtime::environ::Mode;

/// What the diagnostic responder answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiagnosticMode {
    /// The HTML page.
    #[default]
    Page,
    /// `Hello, world!\n` as text/plain.
    Hello,
}

impl DiagnosticMode {
    /// Parses `page` or `hello`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "page" => Some(Self::Page),
            "hello" => Some(Self::Hello),
            _ => None,
        }
    }
}

/// The diagnostic responder.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    mode: DiagnosticMode,
    info: ServerInfo,
    pool: String,
}

impl Diagnostic {
    /// A responder for a server described by `info`.
    pub fn new(mode: DiagnosticMode, info: &ServerInfo) -> Self {
        Diagnostic {
            mode,
            info: info.clone(),
            pool: crate::runtime::iis_env::get().pool().to_string(),
        }
    }
}

const HELLO: &[u8] = b"Hello, world!\n";

impl Application for Diagnostic {
    fn wants_raw_params(&self) -> bool {
        self.mode == DiagnosticMode::Page
    }

    fn handle(
        &self,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Outcome {
        let (len, hash) = match consume(body) {
            Ok(v) => v,
            // The server logs the failed connection; nothing can be sent anyway.
            Err(e) => {
                log::debug!("could not read the request body: {e}");
                return Outcome::Aborted;
            }
        };
        let head = request.param(b"REQUEST_METHOD") == Some(b"HEAD");
        let (page, content_type) = match self.mode {
            DiagnosticMode::Hello => (HELLO.to_vec(), &b"text/plain"[..]),
            DiagnosticMode::Page => (
                self.render(request, len, hash).into_bytes(),
                &b"text/html; charset=utf-8"[..],
            ),
        };
        let length = page.len().to_string();
        let headers: [(&[u8], &[u8]); 4] = [
            (b"Content-Type", content_type),
            (b"Content-Length", length.as_bytes()),
            (b"Cache-Control", b"no-store"),
            (b"X-Content-Type-Options", b"nosniff"),
        ];
        // The hello answer is byte for byte what the C libfcgi responder of bench/fastcgi.sh
        // sends, so the benchmark compares servers, not header counts.
        let headers = match self.mode {
            DiagnosticMode::Hello => &headers[..2],
            DiagnosticMode::Page => &headers[..],
        };
        let sent = response
            .start("200 OK", headers)
            .and_then(|()| response.write_final(if head { &[] } else { &page }));
        match sent {
            Ok(()) => Outcome::Complete,
            Err(e) => {
                log::info!("could not send the diagnostic page: {e}");
                Outcome::Aborted
            }
        }
    }
}

/// Reads the body to its end: its length and FNV-1a 64 hash.
///
/// Most requests have no body: the first read goes into a small stack buffer, and the 16 KiB
/// one is only allocated when there is more (zeroing 16 KiB per request was a third of the
/// hello responder's instructions).
fn consume(body: &mut dyn Body) -> std::io::Result<(u64, u64)> {
    let mut small = [0u8; 256];
    let mut big = Vec::new();
    let mut len = 0u64;
    let mut hash = FNV_OFFSET;
    loop {
        let buf: &mut [u8] = if len == 0 {
            &mut small
        } else {
            if big.is_empty() {
                big = vec![0u8; 16 * 1024];
            }
            &mut big
        };
        let n = body.read(buf)?;
        if n == 0 {
            return Ok((len, hash));
        }
        len += n as u64;
        for &b in &buf[..n] {
            hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Diagnostic {
    fn render(&self, request: &Request, body_len: u64, body_hash: u64) -> String {
        let mut html = String::with_capacity(8 * 1024);
        html.push_str(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <title>iiswsgi diagnostic</title><style>\
             body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
             td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;\
             font-family:monospace;white-space:pre-wrap;word-break:break-all}\
             pre{background:#f4f4f4;padding:1em;white-space:pre-wrap;word-break:break-all}\
             </style></head><body>\n<h1>iiswsgi run --diagnostic</h1>\n<p>This page comes \
             from iiswsgi's built-in responder (no Python involved). If you can read it, the \
             web server starts iiswsgi and speaks FastCGI to it; the handler mapping and the \
             FastCGI registration match.</p>\n<h2>Environ (normalised, as a WSGI application \
             receives it)</h2>\n<table>\n<tr><th>Name</th><th>Value</th></tr>\n",
        );
        let multithread = "False";
        // wsgi-embedding §3.8: spawned by the web server (IIS, lighttpd bin-path, spawn-fcgi)
        // means one of several processes; a --listen server is one process.
        let spawned = request.single_connection || request.transport.starts_with("stdin");
        let multiprocess = if spawned { "True" } else { "False" };
        row(
            &mut html,
            "wsgi.url_scheme",
            request.url_scheme.as_str().as_bytes(),
        );
        row(&mut html, "wsgi.multithread", multithread.as_bytes());
        row(&mut html, "wsgi.multiprocess", multiprocess.as_bytes());
        let mut sorted: Vec<_> = request.params.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in sorted {
            row(&mut html, &latin1(name), value);
        }
        html.push_str("</table>\n<h2>Server</h2>\n<table>\n");
        let mode = match request.mode {
            Mode::Iis => "IIS (SCRIPT_NAME from APPL_MD_PATH, PATH_INFO from the raw URL)",
            Mode::Generic => {
                "generic (the web server's SCRIPT_NAME/PATH_INFO, or --mount; a SCRIPT_NAME that is \
                 the whole path without PATH_INFO means the app is at /)"
            }
        };
        let facts: [(&str, String); 10] = [
            ("iiswsgi.version", crate::VERSION.to_owned()),
            (
                "iiswsgi.python",
                crate::PYTHON_VERSION
                    .unwrap_or("(not embedded in this build)")
                    .to_owned(),
            ),
            ("iiswsgi.pid", std::process::id().to_string()),
            (
                "iiswsgi.app_pool",
                if self.pool.is_empty() {
                    "(not under IIS)".into()
                } else {
                    self.pool.clone()
                },
            ),
            ("iiswsgi.transport", self.info.transport.clone()),
            ("iiswsgi.log", self.info.log.to_string()),
            ("iiswsgi.environ_rules", mode.to_owned()),
            ("iiswsgi.request_id", request.id.to_string()),
            ("iiswsgi.body_bytes", body_len.to_string()),
            ("iiswsgi.body_fnv1a64", format!("{body_hash:016x}")),
        ];
        for (k, v) in facts {
            row(&mut html, k, v.as_bytes());
        }
        html.push_str("</table>\n<h2>Params as received</h2>\n<pre>");
        for (name, value) in &request.raw_params {
            escape_into(&mut html, &latin1(name));
            html.push('=');
            escape_into(&mut html, &latin1(value));
            html.push('\n');
        }
        html.push_str("</pre>\n</body></html>\n");
        html
    }
}

fn row(html: &mut String, name: &str, value: &[u8]) {
    html.push_str("<tr><td>");
    escape_into(html, name);
    html.push_str("</td><td>");
    escape_into(html, &latin1(value));
    html.push_str("</td></tr>\n");
}

/// Bytes as latin-1 text (PEP 3333): every byte is one character, nothing is lost.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // C0 controls (not tab/newline) and DEL are invalid in HTML text; C1 controls are
            // latin-1 bytes 0x80–0x9F of UTF-8 text and stay as characters.
            c if (c < ' ' && c != '\t' && c != '\n') || c == '\u{7f}' => {
                let _ = write!(out, "&#x{:x};", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::environ::Scheme;
    use crate::runtime::logging::Destination;
    use crate::runtime::transport::Kind;

    fn info() -> ServerInfo {
        ServerInfo {
            kind: Kind::Unix,
            transport: "listening on unix:/tmp/x.sock".into(),
            log: Destination::Stderr,
            single_connection: false,
            stop: None,
        }
    }

    fn request(params: &[(&[u8], &[u8])]) -> Request {
        let params: Vec<_> = params
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        Request {
            id: 7,
            raw_params: params.clone(),
            params,
            url_scheme: Scheme::Http,
            content_length: None,
            mode: Mode::Generic,
            transport: "unix",
            single_connection: false,
            log_id: 1,
        }
    }

    #[test]
    fn page_escapes_html_and_shows_bytes_as_latin1() {
        let d = Diagnostic::new(DiagnosticMode::Page, &info());
        let html = d.render(
            &request(&[(b"PATH_INFO", "/<script>&\"é".as_bytes()), (b"X", b"\x01")]),
            5,
            FNV_OFFSET,
        );
        assert!(
            html.contains(
                "<tr><td>PATH_INFO</td><td>/&lt;script&gt;&amp;&quot;\u{c3}\u{a9}</td></tr>"
            ),
            "{html}"
        );
        assert!(html.contains("<tr><td>X</td><td>&#x1;</td></tr>"));
        assert!(html.contains("<tr><td>iiswsgi.body_bytes</td><td>5</td></tr>"));
        assert!(html.contains("<tr><td>iiswsgi.request_id</td><td>7</td></tr>"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn environ_table_comes_before_raw_params() {
        let d = Diagnostic::new(DiagnosticMode::Page, &info());
        let html = d.render(&request(&[(b"SCRIPT_NAME", b"")]), 0, FNV_OFFSET);
        let environ = html.find("<tr><td>SCRIPT_NAME</td>").expect("row");
        let raw = html.find("SCRIPT_NAME=").expect("raw");
        assert!(environ < raw);
    }

    #[test]
    fn mode_names_parse() {
        assert_eq!(DiagnosticMode::parse("page"), Some(DiagnosticMode::Page));
        assert_eq!(DiagnosticMode::parse("hello"), Some(DiagnosticMode::Hello));
        assert_eq!(DiagnosticMode::parse("x"), None);
    }
}
