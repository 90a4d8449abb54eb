//! An IIS-emulating FastCGI client, written from `iis-runtime.md` (§3, §4, §6) and independent
//! of the crate's codec, because IIS itself cannot run here.
//!
//! It behaves as IIS's `FastCgiModule` does toward one process in named-pipe mode, with a unix
//! socketpair standing in for the already-connected pipe: the server end is the child's fd 0,
//! `_FCGI_X_PIPE_` and w3wp's variables are in its environment, `BEGIN_REQUEST` is its own
//! 16-byte write with `FCGI_KEEP_CONN` always set, request ids run 1..=255 and wrap to 1, the
//! params are the full ordered table of §6.1/§6.2 (HTTP_* headers in IIS's known-header order,
//! module variables, then the 41 fixed server variables with IIS's value formats and ANSI
//! path decoding), PARAMS + empty PARAMS + empty STDIN go in one write for a bodiless request,
//! a body goes as ~8 KiB STDIN records, exactly one request is in flight, and the connection
//! is never closed until shutdown. Replies are held to IIS's rules (§4.2): only types 3, 6, 7
//! (and 10 on id 0) are accepted, ids must echo with a zero high byte, padding is honoured,
//! END_REQUEST completes the response. Anything else fails the test with what IIS would do.
//!
//! [`wire`] holds the record encoding and decoding shared with the peer tests' tap and the
//! hostile-input tests.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use super::peers::Proc;

/// How long the client waits for the rest of a response before failing (IIS's
/// `activityTimeout` is 70 s; tests should never come close).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to exit after the pipe closes.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Content bytes per STDIN record ("about 8 KiB", §4.1).
pub const STDIN_RECORD: usize = 8192;
/// Content bytes per PARAMS record. IIS's 4 KiB pipe buffer makes larger param sets span
/// records, splitting pairs at arbitrary bytes.
pub const PARAMS_RECORD: usize = 4096;

/// FastCGI record encoding and decoding (spec §1), for test clients only.
pub mod wire {
    use std::io::{self, Read};

    /// `FCGI_BEGIN_REQUEST`.
    pub const BEGIN_REQUEST: u8 = 1;
    /// `FCGI_ABORT_REQUEST`.
    pub const ABORT_REQUEST: u8 = 2;
    /// `FCGI_END_REQUEST`.
    pub const END_REQUEST: u8 = 3;
    /// `FCGI_PARAMS`.
    pub const PARAMS: u8 = 4;
    /// `FCGI_STDIN`.
    pub const STDIN: u8 = 5;
    /// `FCGI_STDOUT`.
    pub const STDOUT: u8 = 6;
    /// `FCGI_STDERR`.
    pub const STDERR: u8 = 7;
    /// `FCGI_GET_VALUES`.
    pub const GET_VALUES: u8 = 9;
    /// `FCGI_GET_VALUES_RESULT`.
    pub const GET_VALUES_RESULT: u8 = 10;
    /// `FCGI_UNKNOWN_TYPE`.
    pub const UNKNOWN_TYPE: u8 = 11;
    /// Role `FCGI_RESPONDER`.
    pub const RESPONDER: u16 = 1;
    /// Flag `FCGI_KEEP_CONN`.
    pub const KEEP_CONN: u8 = 1;

    /// Appends one record.
    pub fn push_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8], padding: u8) {
        let len = u16::try_from(content.len()).expect("record content over 65535 bytes");
        out.extend_from_slice(&[1, kind]);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&[padding, 0]);
        out.extend_from_slice(content);
        out.extend(std::iter::repeat_n(0u8, usize::from(padding)));
    }

    /// One record as bytes.
    pub fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        push_record(&mut out, kind, id, content, 0);
        out
    }

    /// `BEGIN_REQUEST{role, flags}`: 16 bytes.
    pub fn begin_request(id: u16, role: u16, flags: u8) -> Vec<u8> {
        let r = role.to_be_bytes();
        record(BEGIN_REQUEST, id, &[r[0], r[1], flags, 0, 0, 0, 0, 0])
    }

    /// Appends `data` as records of `kind` of at most `max` content bytes (no terminator).
    pub fn push_stream(out: &mut Vec<u8>, kind: u8, id: u16, data: &[u8], max: usize) {
        for chunk in data.chunks(max) {
            push_record(out, kind, id, chunk, 0);
        }
    }

    /// Appends a name–value length: 1 byte up to 127, else the 4-byte form.
    pub fn push_len(out: &mut Vec<u8>, len: usize) {
        if len <= 127 {
            out.push(len as u8);
        } else {
            push_long_len(out, u32::try_from(len).expect("pair length over 2^31"));
        }
    }

    /// Appends the 4-byte length form, whatever the length (hostile claims use this).
    pub fn push_long_len(out: &mut Vec<u8>, len: u32) {
        out.extend_from_slice(&(len | 0x8000_0000).to_be_bytes());
    }

    /// Appends one name–value pair.
    pub fn push_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        push_len(out, name.len());
        push_len(out, value.len());
        out.extend_from_slice(name);
        out.extend_from_slice(value);
    }

    /// Encodes pairs into one PARAMS byte stream.
    pub fn encode_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in pairs {
            push_pair(&mut out, n.as_ref(), v.as_ref());
        }
        out
    }

    /// A decoded name–value pair.
    pub type Pair = (Vec<u8>, Vec<u8>);

    /// Decodes a complete name–value byte stream.
    pub fn decode_pairs(mut data: &[u8]) -> Result<Vec<Pair>, String> {
        fn len(data: &mut &[u8]) -> Result<usize, String> {
            let first = *data.first().ok_or("truncated length")?;
            if first & 0x80 == 0 {
                *data = &data[1..];
                Ok(usize::from(first))
            } else {
                let b: [u8; 4] = data
                    .get(..4)
                    .ok_or("truncated long length")?
                    .try_into()
                    .unwrap();
                *data = &data[4..];
                Ok((u32::from_be_bytes(b) & 0x7fff_ffff) as usize)
            }
        }
        let mut pairs = Vec::new();
        while !data.is_empty() {
            let n = len(&mut data)?;
            let v = len(&mut data)?;
            if data.len() < n.saturating_add(v) {
                return Err(format!("pair of {n}+{v} bytes overruns the stream"));
            }
            pairs.push((data[..n].to_vec(), data[n..n + v].to_vec()));
            data = &data[n + v..];
        }
        Ok(pairs)
    }

    /// A decoded record.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Record {
        /// Version byte (IIS does not check it).
        pub version: u8,
        /// Record type.
        pub kind: u8,
        /// Request id.
        pub id: u16,
        /// Content.
        pub content: Vec<u8>,
        /// Padding length that followed the content.
        pub padding: u8,
    }

    impl Record {
        /// Parses one record from the front of `buf`: `Some((record, bytes used))`, or `None`
        /// if `buf` holds only part of one.
        pub fn parse(buf: &[u8]) -> Option<(Record, usize)> {
            let header = buf.get(..8)?;
            let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            let padding = header[6];
            let total = 8 + len + usize::from(padding);
            if buf.len() < total {
                return None;
            }
            Some((
                Record {
                    version: header[0],
                    kind: header[1],
                    id: u16::from_be_bytes([header[2], header[3]]),
                    content: buf[8..8 + len].to_vec(),
                    padding,
                },
                total,
            ))
        }

        /// `(appStatus, protocolStatus)` of an END_REQUEST body.
        pub fn end_request(&self) -> Option<(u32, u8)> {
            let c = self.content.get(..5)?;
            Some((u32::from_be_bytes([c[0], c[1], c[2], c[3]]), c[4]))
        }
    }

    /// Reads whole records from a byte stream, keeping what follows in a buffer.
    pub struct RecordReader<R> {
        inner: R,
        buf: Vec<u8>,
    }

    impl<R: Read> RecordReader<R> {
        /// Wraps a reader.
        pub fn new(inner: R) -> Self {
            RecordReader {
                inner,
                buf: Vec::new(),
            }
        }

        /// The wrapped reader.
        pub fn get_mut(&mut self) -> &mut R {
            &mut self.inner
        }

        /// Bytes read past the last returned record.
        pub fn buffered(&self) -> usize {
            self.buf.len()
        }

        /// The next record; `Ok(None)` on EOF at a record boundary, `UnexpectedEof` inside one.
        pub fn next_record(&mut self) -> io::Result<Option<Record>> {
            loop {
                if let Some((record, used)) = Record::parse(&self.buf) {
                    self.buf.drain(..used);
                    return Ok(Some(record));
                }
                let mut chunk = [0u8; 16 * 1024];
                let n = self.inner.read(&mut chunk)?;
                if n == 0 {
                    return if self.buf.is_empty() {
                        Ok(None)
                    } else {
                        Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("EOF inside a record ({} bytes buffered)", self.buf.len()),
                        ))
                    };
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    /// A CGI response as a FastCGI responder writes it on STDOUT.
    #[derive(Clone, Debug)]
    pub struct CgiResponse {
        /// From the `Status:` line.
        pub status: u16,
        /// The reason phrase of the `Status:` line.
        pub reason: String,
        /// The other header lines, in order.
        pub headers: Vec<(String, String)>,
        /// Everything after the blank line.
        pub body: Vec<u8>,
    }

    impl CgiResponse {
        /// The first header with this name (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// The body as text (lossy).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// Parses STDOUT as IIS does (§7.1: LF or CRLF, blank line ends the headers), and insists
    /// on what iiswsgi promises: `Status:` is the first line, each line is `Name: value`.
    pub fn parse_cgi(stdout: &[u8]) -> Result<CgiResponse, String> {
        let mut rest = stdout;
        let mut lines = Vec::new();
        loop {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or("headers are not terminated by a blank line")?;
            let mut line = &rest[..end];
            rest = &rest[end + 1..];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                break;
            }
            let text =
                std::str::from_utf8(line).map_err(|_| format!("non-UTF-8 header {line:?}"))?;
            let (name, value) = text
                .split_once(':')
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| format!("header line without `name:` {text:?}"))?;
            lines.push((
                name.trim_end().to_owned(),
                value.trim_start_matches(' ').to_owned(),
            ));
        }
        let (first, value) = lines.first().ok_or("no header lines")?;
        if !first.eq_ignore_ascii_case("Status") {
            return Err(format!("first header is {first:?}, not Status"));
        }
        let (code, reason) = value.split_once(' ').unwrap_or((value.as_str(), ""));
        let status = code
            .parse()
            .map_err(|_| format!("bad Status value {value:?}"))?;
        Ok(CgiResponse {
            status,
            reason: reason.to_owned(),
            headers: lines[1..].to_vec(),
            body: rest.to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The IIS side of the configuration: site and application
// ---------------------------------------------------------------------------------------------

/// The IIS application a process serves: which site, which virtual path, which folder.
#[derive(Clone, Debug)]
pub struct IisApp {
    /// Site id (`INSTANCE_ID`), 1 for "Default Web Site".
    pub site_id: u32,
    /// Site name as configured; IIS sends it upper-cased in `INSTANCE_NAME`.
    pub site_name: String,
    /// Virtual path of the application: `""` for the site root, `/shop` for a sub-app.
    pub virtual_path: String,
    /// Physical folder, without a trailing `\`.
    pub physical_path: String,
}

impl IisApp {
    /// The root application of "Default Web Site" at `C:\inetpub\wwwroot`.
    pub fn root() -> IisApp {
        IisApp {
            site_id: 1,
            site_name: "Default Web Site".into(),
            virtual_path: String::new(),
            physical_path: r"C:\inetpub\wwwroot".into(),
        }
    }

    /// A sub-application (`/shop`, `/a/b`) of "Default Web Site" at `C:\inetpub\wwwroot\...`.
    pub fn sub(virtual_path: &str) -> IisApp {
        assert!(virtual_path.starts_with('/') && !virtual_path.ends_with('/'));
        IisApp {
            virtual_path: virtual_path.to_owned(),
            physical_path: format!(r"C:\inetpub\wwwroot{}", virtual_path.replace('/', r"\")),
            ..IisApp::root()
        }
    }

    /// `APPL_MD_PATH`: `/LM/W3SVC/<site>/ROOT<virtual path>`.
    pub fn appl_md_path(&self) -> String {
        format!("/LM/W3SVC/{}/ROOT{}", self.site_id, self.virtual_path)
    }
}

// ---------------------------------------------------------------------------------------------
// Requests: the params IIS would send
// ---------------------------------------------------------------------------------------------

/// One HTTP request as it reached IIS.
#[derive(Clone, Debug)]
pub struct IisRequest {
    /// `REQUEST_METHOD`.
    pub method: String,
    /// The request target as the client sent it (raw, percent-encoded, with query).
    pub raw_url: String,
    /// Client headers in the order sent (`Host` defaults to `localhost`).
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
    /// URL Rewrite: the raw URL the rule rewrote `raw_url` to. IIS then adds
    /// `X-Original-URL: <raw_url>`, `IIS_WasUrlRewritten=1` and serves the rewritten URL.
    pub rewritten_to: Option<String>,
    /// `REMOTE_PORT`.
    pub remote_port: u16,
}

/// IIS's fixed order of known request headers (http.sys `HTTP_HEADER_ID`), which `ALL_HTTP`
/// and therefore the HTTP_* params follow (§6.1). Other headers come after, in arrival order.
const KNOWN_HEADER_ORDER: &[&str] = &[
    "cache-control",
    "connection",
    "date",
    "keep-alive",
    "pragma",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
    "warning",
    "allow",
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
    "content-md5",
    "content-range",
    "expires",
    "last-modified",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cookie",
    "expect",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "max-forwards",
    "proxy-authorization",
    "referer",
    "range",
    "te",
    "translate",
    "user-agent",
];

impl IisRequest {
    /// A GET of `raw_url`.
    pub fn get(raw_url: &str) -> IisRequest {
        IisRequest {
            method: "GET".into(),
            raw_url: raw_url.into(),
            headers: vec![
                ("Host".into(), "localhost".into()),
                ("User-Agent".into(), "iiswsgi-tests".into()),
                ("Accept".into(), "*/*".into()),
            ],
            body: Vec::new(),
            rewritten_to: None,
            remote_port: 51234,
        }
    }

    /// A POST of `body` to `raw_url`, with Content-Type and Content-Length headers.
    pub fn post(raw_url: &str, content_type: &str, body: Vec<u8>) -> IisRequest {
        let mut r = IisRequest::get(raw_url);
        r.method = "POST".into();
        r.headers.push(("Content-Type".into(), content_type.into()));
        r.headers
            .push(("Content-Length".into(), body.len().to_string()));
        r.body = body;
        r
    }

    /// Adds a client header.
    pub fn header(mut self, name: &str, value: &str) -> IisRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Marks the request as rewritten by URL Rewrite to `target` (a raw URL).
    pub fn rewritten_to(mut self, target: &str) -> IisRequest {
        self.rewritten_to = Some(target.into());
        self
    }

    /// The full ordered param list IIS sends for this request to `app` (§6.1, §6.2).
    pub fn params(&self, app: &IisApp) -> Vec<(String, Vec<u8>)> {
        let mut params: Vec<(String, Vec<u8>)> = Vec::new();

        // The URL IIS routes and decodes: after URL Rewrite, the rewritten one.
        let served_url = self.rewritten_to.as_deref().unwrap_or(&self.raw_url);
        let (served_path, query) = served_url.split_once('?').unwrap_or((served_url, ""));
        let decoded = ansi_path(served_path);

        // 1. Request headers (ALL_HTTP): known ones in IIS's order, then the rest.
        let mut headers = self.headers.clone();
        if let Some(original) = self.rewritten_to.as_ref().map(|_| self.raw_url.clone()) {
            headers.push(("X-Original-URL".into(), original));
        }
        let rank = |name: &str| {
            KNOWN_HEADER_ORDER
                .iter()
                .position(|k| k.eq_ignore_ascii_case(name))
                .unwrap_or(KNOWN_HEADER_ORDER.len())
        };
        headers.sort_by_key(|(n, _)| rank(n)); // stable: unknown headers keep arrival order
        for (name, value) in &headers {
            let cgi = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
            params.push((cgi, value.clone().into_bytes()));
        }

        // 2. Variables added by other modules: URL Rewrite.
        if self.rewritten_to.is_some() {
            params.push(("IIS_UrlRewriteModule".into(), b"7.1.1952.0".to_vec()));
            params.push(("IIS_WasUrlRewritten".into(), b"1".to_vec()));
            params.push(("UNENCODED_URL".into(), self.raw_url.clone().into_bytes()));
        }

        // 3. The fixed table.
        let header = |name: &str| {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let host = header("Host");
        let server_name = host.split(':').next().unwrap_or("").to_owned();
        // Physical file IIS maps the URL to: app folder + the rest of the path, with `\`.
        let mut translated = app.physical_path.clone().into_bytes();
        let prefix_len = app.virtual_path.len();
        let rest = if decoded.len() >= prefix_len
            && decoded[..prefix_len].eq_ignore_ascii_case(app.virtual_path.as_bytes())
        {
            &decoded[prefix_len..]
        } else {
            &decoded[..]
        };
        translated.extend(rest.iter().map(|&b| if b == b'/' { b'\\' } else { b }));

        let mut fixed: Vec<(&str, Vec<u8>)> = vec![
            ("APPL_MD_PATH", app.appl_md_path().into_bytes()),
            (
                "APPL_PHYSICAL_PATH",
                format!("{}\\", app.physical_path).into_bytes(),
            ),
            ("AUTH_TYPE", vec![]),
            ("AUTH_PASSWORD", vec![]),
            ("AUTH_USER", vec![]),
            ("CERT_COOKIE", vec![]),
            ("CERT_FLAGS", vec![]),
            ("CERT_ISSUER", vec![]),
            ("CERT_SERIALNUMBER", vec![]),
            ("CERT_SUBJECT", vec![]),
            ("CONTENT_LENGTH", self.body.len().to_string().into_bytes()),
            ("CONTENT_TYPE", header("Content-Type").into_bytes()),
            ("DOCUMENT_ROOT", app.physical_path.clone().into_bytes()),
            ("GATEWAY_INTERFACE", b"CGI/1.1".to_vec()),
            ("HTTPS", b"off".to_vec()),
            ("HTTPS_KEYSIZE", vec![]),
            ("HTTPS_SECRETKEYSIZE", vec![]),
            ("HTTPS_SERVER_ISSUER", vec![]),
            ("HTTPS_SERVER_SUBJECT", vec![]),
            ("INSTANCE_ID", app.site_id.to_string().into_bytes()),
            ("INSTANCE_NAME", app.site_name.to_uppercase().into_bytes()),
            (
                "INSTANCE_META_PATH",
                format!("/LM/W3SVC/{}", app.site_id).into_bytes(),
            ),
            ("LOCAL_ADDR", b"::1".to_vec()),
            ("LOGON_USER", vec![]),
            ("PATH_INFO", decoded.clone()),
            ("PATH_TRANSLATED", translated.clone()),
            ("QUERY_STRING", query.as_bytes().to_vec()),
            ("REMOTE_ADDR", b"::1".to_vec()),
            ("REMOTE_HOST", b"::1".to_vec()),
            ("REMOTE_PORT", self.remote_port.to_string().into_bytes()),
            ("REMOTE_USER", vec![]),
            ("REQUEST_METHOD", self.method.clone().into_bytes()),
            ("REQUEST_URI", served_url.as_bytes().to_vec()),
            ("SCRIPT_FILENAME", translated),
            ("SCRIPT_NAME", decoded.clone()),
            ("SERVER_NAME", server_name.into_bytes()),
            ("SERVER_PORT", b"80".to_vec()),
            ("SERVER_PORT_SECURE", b"0".to_vec()),
            ("SERVER_PROTOCOL", b"HTTP/1.1".to_vec()),
            ("SERVER_SOFTWARE", b"Microsoft-IIS/10.0".to_vec()),
            ("URL", decoded),
        ];
        params.extend(fixed.drain(..).map(|(n, v)| (n.to_owned(), v)));
        params
    }
}

/// The fixed-table names in IIS's order (§6.2), for tests that check the table itself.
pub const FIXED_TABLE: [&str; 41] = [
    "APPL_MD_PATH",
    "APPL_PHYSICAL_PATH",
    "AUTH_TYPE",
    "AUTH_PASSWORD",
    "AUTH_USER",
    "CERT_COOKIE",
    "CERT_FLAGS",
    "CERT_ISSUER",
    "CERT_SERIALNUMBER",
    "CERT_SUBJECT",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "DOCUMENT_ROOT",
    "GATEWAY_INTERFACE",
    "HTTPS",
    "HTTPS_KEYSIZE",
    "HTTPS_SECRETKEYSIZE",
    "HTTPS_SERVER_ISSUER",
    "HTTPS_SERVER_SUBJECT",
    "INSTANCE_ID",
    "INSTANCE_NAME",
    "INSTANCE_META_PATH",
    "LOCAL_ADDR",
    "LOGON_USER",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "REQUEST_URI",
    "SCRIPT_FILENAME",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PORT_SECURE",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "URL",
];

/// Percent-decodes a URL path to bytes, leaving invalid escapes as they are.
pub fn percent_decode(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// What IIS puts in `PATH_INFO`/`URL`: the path percent-decoded, read as UTF-8 (or as ANSI when
/// it is not valid UTF-8, http.sys's `EnableNonUTF8`), then written in the system ANSI code
/// page, Windows-1252 here, with `?` for every character it cannot represent (§6.3).
pub fn ansi_path(raw_path: &str) -> Vec<u8> {
    let bytes = percent_decode(raw_path);
    match String::from_utf8(bytes) {
        Ok(text) => text
            .chars()
            .map(|c| cp1252_byte(c).unwrap_or(b'?'))
            .collect(),
        Err(e) => e.into_bytes(),
    }
}

/// The Windows-1252 byte for `c`, if the code page has one.
pub fn cp1252_byte(c: char) -> Option<u8> {
    const HIGH: [(u8, char); 27] = [
        (0x80, '\u{20AC}'),
        (0x82, '\u{201A}'),
        (0x83, '\u{0192}'),
        (0x84, '\u{201E}'),
        (0x85, '\u{2026}'),
        (0x86, '\u{2020}'),
        (0x87, '\u{2021}'),
        (0x88, '\u{02C6}'),
        (0x89, '\u{2030}'),
        (0x8A, '\u{0160}'),
        (0x8B, '\u{2039}'),
        (0x8C, '\u{0152}'),
        (0x8E, '\u{017D}'),
        (0x91, '\u{2018}'),
        (0x92, '\u{2019}'),
        (0x93, '\u{201C}'),
        (0x94, '\u{201D}'),
        (0x95, '\u{2022}'),
        (0x96, '\u{2013}'),
        (0x97, '\u{2014}'),
        (0x98, '\u{02DC}'),
        (0x99, '\u{2122}'),
        (0x9A, '\u{0161}'),
        (0x9B, '\u{203A}'),
        (0x9C, '\u{0153}'),
        (0x9E, '\u{017E}'),
        (0x9F, '\u{0178}'),
    ];
    let code = u32::from(c);
    if code < 0x80 || (0xA0..=0xFF).contains(&code) {
        return Some(code as u8);
    }
    HIGH.iter().find(|(_, ch)| *ch == c).map(|(b, _)| *b)
}

// ---------------------------------------------------------------------------------------------
// The process and the pipe
// ---------------------------------------------------------------------------------------------

/// A response as IIS received it.
#[derive(Clone, Debug)]
pub struct IisResponse {
    /// The request id used.
    pub request_id: u8,
    /// The CGI response parsed from STDOUT.
    pub cgi: wire::CgiResponse,
    /// `END_REQUEST.appStatus`.
    pub app_status: u32,
    /// `END_REQUEST.protocolStatus`.
    pub protocol_status: u8,
    /// Bytes on STDERR. Under IIS's default `stderrMode` any byte here turns the response
    /// into a 500 (§7.2).
    pub stderr: Vec<u8>,
    /// `(type, id, content length, padding)` of every record received, in order.
    pub records: Vec<(u8, u16, usize, u8)>,
}

impl IisResponse {
    /// The HTTP status the browser would see: the CGI status, or 500 if STDERR had bytes.
    pub fn browser_status(&self) -> u16 {
        if self.stderr.is_empty() {
            self.cgi.status
        } else {
            500
        }
    }
}

/// One FastCGI process driven the way IIS drives it.
pub struct IisProcess {
    proc: Proc,
    conn: Option<wire::RecordReader<UnixStream>>,
    next_id: u8,
    /// The IIS application this process serves.
    pub app: IisApp,
    /// Requests completed so far.
    pub served: usize,
}

impl IisProcess {
    /// Starts `cmd` as IIS would in named-pipe mode: the server end of a connected socketpair
    /// as fd 0, stdout/stderr captured (IIS gives invalid handles; here every byte is a
    /// failure), `_FCGI_X_PIPE_` and w3wp's variables in the environment.
    pub fn spawn(mut cmd: Command, app: IisApp, dir: &Path, logs: Vec<PathBuf>) -> IisProcess {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_read_timeout(Some(RESPONSE_TIMEOUT))
            .expect("timeout");
        ours.set_write_timeout(Some(RESPONSE_TIMEOUT))
            .expect("timeout");
        let pipe_name = format!(
            r"\\.\pipe\IISFCGI-{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() & 0xffff_ffff_ffff)
        );
        cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
            .env("_FCGI_X_PIPE_", pipe_name)
            .env("APP_POOL_ID", "DefaultAppPool")
            .env(
                "APP_POOL_CONFIG",
                r"C:\inetpub\temp\apppools\DefaultAppPool\DefaultAppPool.config",
            )
            .env("PROCESSOR_ARCHITECTURE", "AMD64")
            .env_remove("_FCGI_SHUTDOWN_EVENT_");
        let proc = Proc::spawn("iis-fastcgi", dir, cmd, logs);
        // `Proc::spawn` consumed `cmd` and with it our copy of the child's end, so EOF on
        // `ours` can only mean the child closed it.
        IisProcess {
            proc,
            conn: Some(wire::RecordReader::new(ours)),
            next_id: 1,
            app,
            served: 0,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The id the next request will use.
    pub fn next_id(&self) -> u8 {
        self.next_id
    }

    /// Sends one request and reads its response, failing the test on anything IIS would
    /// reject.
    pub fn send(&mut self, request: &IisRequest) -> IisResponse {
        let id = self.next_id;
        self.next_id = if id == 255 { 1 } else { id + 1 };
        let params = request.params(&self.app);
        let context = format!(
            "request #{} (id {id}) {} {}",
            self.served + 1,
            request.method,
            request.raw_url
        );
        let result = self.exchange(u16::from(id), &params, &request.body);
        let response = result.unwrap_or_else(|e| {
            let exit = self.proc.wait_exit(Duration::from_millis(200));
            panic!(
                "{context}: {e}\nprocess exit: {exit:?}\n{}",
                self.proc.output()
            )
        });
        self.served += 1;
        response
    }

    fn exchange(
        &mut self,
        id: u16,
        params: &[(String, Vec<u8>)],
        body: &[u8],
    ) -> Result<IisResponse, String> {
        let reader = self.conn.as_mut().ok_or("the pipe is closed")?;
        let io = |what: &str, e: io::Error| format!("{what}: {e}");

        // BEGIN_REQUEST as its own 16-byte write, KEEP_CONN always.
        let begin = wire::begin_request(id, wire::RESPONDER, wire::KEEP_CONN);
        reader
            .get_mut()
            .write_all(&begin)
            .map_err(|e| io("write BEGIN_REQUEST", e))?;

        // PARAMS records, the empty PARAMS, and (bodiless) the empty STDIN in one write.
        let stream = wire::encode_pairs(params);
        let mut out = Vec::with_capacity(stream.len() + 64);
        wire::push_stream(&mut out, wire::PARAMS, id, &stream, PARAMS_RECORD);
        wire::push_record(&mut out, wire::PARAMS, id, &[], 0);
        if body.is_empty() {
            wire::push_record(&mut out, wire::STDIN, id, &[], 0);
        }
        reader
            .get_mut()
            .write_all(&out)
            .map_err(|e| io("write PARAMS", e))?;

        // The body as ~8 KiB STDIN records, one write each, as IIS reads it; then the end.
        if !body.is_empty() {
            for chunk in body.chunks(STDIN_RECORD) {
                let record = wire::record(wire::STDIN, id, chunk);
                reader
                    .get_mut()
                    .write_all(&record)
                    .map_err(|e| io("write STDIN", e))?;
            }
            let end = wire::record(wire::STDIN, id, &[]);
            reader
                .get_mut()
                .write_all(&end)
                .map_err(|e| io("write empty STDIN", e))?;
        }

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut records = Vec::new();
        loop {
            let record = match reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Err("the process closed the pipe before END_REQUEST (IIS: \
                                \"The FastCGI process exited unexpectedly\")"
                        .into());
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(format!("no END_REQUEST within {RESPONSE_TIMEOUT:?}"));
                }
                Err(e) => return Err(io("read", e)),
            };
            records.push((record.kind, record.id, record.content.len(), record.padding));
            let invalid = |why: &str| {
                format!(
                    "{why}: record type {} id {:#06x} ({} bytes) — IIS would answer 500 \
                     ERROR_INVALID_DATA (0x8007000D); records so far {records:?}",
                    record.kind,
                    record.id,
                    record.content.len()
                )
            };
            match record.kind {
                wire::GET_VALUES_RESULT if record.id == 0 => {}
                wire::STDOUT | wire::STDERR | wire::END_REQUEST => {
                    if record.id >> 8 != 0 {
                        return Err(invalid("request id high byte is not 0"));
                    }
                    if record.id != id {
                        return Err(invalid(&format!("request id is not the current id {id}")));
                    }
                }
                _ => return Err(invalid("record type IIS does not accept")),
            }
            match record.kind {
                wire::STDOUT => stdout.extend_from_slice(&record.content),
                wire::STDERR => stderr.extend_from_slice(&record.content),
                wire::END_REQUEST => {
                    let (app_status, protocol_status) = record
                        .end_request()
                        .ok_or_else(|| invalid("END_REQUEST shorter than 8 bytes"))?;
                    if reader.buffered() != 0 {
                        return Err(format!(
                            "{} bytes followed END_REQUEST while no request was in flight",
                            reader.buffered()
                        ));
                    }
                    let cgi = wire::parse_cgi(&stdout).map_err(|e| {
                        format!(
                            "unparsable STDOUT ({e}): {:?}",
                            String::from_utf8_lossy(&stdout[..stdout.len().min(2000)])
                        )
                    })?;
                    return Ok(IisResponse {
                        request_id: id as u8,
                        cgi,
                        app_status,
                        protocol_status,
                        stderr,
                        records,
                    });
                }
                _ => {}
            }
        }
    }

    /// IIS's graceful shutdown without a shutdown event (§5): close the pipe, then expect the
    /// process to exit 0 having written nothing to stdout or stderr.
    pub fn close_pipe_and_expect_clean_exit(mut self) -> ExitStatus {
        self.conn = None;
        let status = self.proc.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "process still running {EXIT_TIMEOUT:?} after the pipe closed\n{}",
                self.proc.output()
            )
        });
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after EOF\n{}",
            self.proc.output()
        );
        let (stdout, stderr) = self.proc.std_streams();
        assert!(
            stdout.is_empty() && stderr.is_empty(),
            "IIS mode must write nothing to stdout/stderr; got stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
        status
    }
}
