//! What IIS's `FastCgiModule` sends and accepts (`iis-runtime.md` §4, §6, §7): the ordered
//! param table for a request to an IIS application, the ANSI path decoding behind `PATH_INFO`
//! and `URL`, request ids that wrap 255 → 1, and the rules a reply must meet.
//!
//! There is one table here. Every client that plays IIS builds its params from
//! [`IisRequest::params`], changing only the request and the application.

use std::io::{self, Read};

use crate::cgi::Cgi;
use crate::wire::{self, Record};

// ---------------------------------------------------------------------------------------------
// The IIS side of the configuration: site and application
// ---------------------------------------------------------------------------------------------

/// The system ANSI code page IIS writes `PATH_INFO`, `SCRIPT_NAME` and `URL` in (§6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnsiCodePage {
    /// Windows-1252 (Western European Windows): é stays one byte (0xE9), 日 becomes `?`.
    Windows1252,
    /// US-ASCII (code page 20127): every non-ASCII character becomes `?`.
    UsAscii,
}

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
    /// The server's ANSI code page.
    pub code_page: AnsiCodePage,
}

impl IisApp {
    /// The root application of "Default Web Site" at `C:\inetpub\wwwroot`.
    pub fn root() -> IisApp {
        IisApp {
            site_id: 1,
            site_name: "Default Web Site".into(),
            virtual_path: String::new(),
            physical_path: r"C:\inetpub\wwwroot".into(),
            code_page: AnsiCodePage::Windows1252,
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

    /// The application of "Default Web Site" whose `APPL_MD_PATH` is `md`
    /// (`/LM/W3SVC/1/ROOT` or `/LM/W3SVC/1/ROOT/shop`).
    pub fn at_md_path(md: &str) -> IisApp {
        let vpath = md
            .strip_prefix("/LM/W3SVC/1/ROOT")
            .unwrap_or_else(|| panic!("{md:?} is not an application of site 1"));
        if vpath.is_empty() {
            IisApp::root()
        } else {
            IisApp::sub(vpath)
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
    /// Client headers in the order sent.
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
    /// A GET of `raw_url` with `Host: localhost`, a test `User-Agent` and `Accept: */*`.
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

    /// A GET of `raw_url` with the seven headers a desktop browser sends to
    /// `www.example.com`: 48 params in all.
    pub fn browser_get(raw_url: &str) -> IisRequest {
        let mut r = IisRequest::get(raw_url);
        r.headers = [
            ("Host", "www.example.com"),
            ("Connection", "keep-alive"),
            ("Cache-Control", "max-age=0"),
            (
                "User-Agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            ),
            (
                "Accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
            ("Accept-Encoding", "gzip, deflate, br"),
            ("Accept-Language", "en-US,en;q=0.9"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .to_vec();
        r
    }

    /// `method raw_url` as a command-line client sends it to `www.example.com`: `Host`, the
    /// given `User-Agent`, `Accept: */*`, and for `body_len > 0` an octet-stream
    /// `Content-Type`, `Content-Length` and a body of that many zero bytes.
    pub fn client(method: &str, raw_url: &str, user_agent: &str, body_len: usize) -> IisRequest {
        let mut r = IisRequest::get(raw_url);
        r.method = method.to_owned();
        r.headers = vec![
            ("Host".into(), "www.example.com".into()),
            ("User-Agent".into(), user_agent.into()),
            ("Accept".into(), "*/*".into()),
        ];
        if body_len > 0 {
            r.headers.extend([
                ("Content-Type".into(), "application/octet-stream".into()),
                ("Content-Length".into(), body_len.to_string()),
            ]);
            r.body = vec![0; body_len];
        }
        r
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

    /// The full ordered param list IIS sends for this request to `app` (§6.1, §6.2): the
    /// request headers, variables of other modules, then the [`FIXED_TABLE`].
    pub fn params(&self, app: &IisApp) -> Vec<(String, Vec<u8>)> {
        let mut params: Vec<(String, Vec<u8>)> = Vec::new();

        // The URL IIS routes and decodes: after URL Rewrite, the rewritten one.
        let served_url = self.rewritten_to.as_deref().unwrap_or(&self.raw_url);
        let (served_path, query) = served_url.split_once('?').unwrap_or((served_url, ""));
        let decoded = ansi_path_in(served_path, app.code_page);

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

        let fixed: [(&str, Vec<u8>); 41] = [
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
        debug_assert!(fixed.iter().map(|(n, _)| *n).eq(FIXED_TABLE));
        params.extend(fixed.map(|(n, v)| (n.to_owned(), v)));
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

/// What IIS puts in `PATH_INFO`/`URL` on a Windows-1252 server: see [`ansi_path_in`].
pub fn ansi_path(raw_path: &str) -> Vec<u8> {
    ansi_path_in(raw_path, AnsiCodePage::Windows1252)
}

/// What IIS puts in `PATH_INFO`/`URL`: the path percent-decoded, read as UTF-8 (or as ANSI
/// when it is not valid UTF-8, http.sys's `EnableNonUTF8`), then written in the system ANSI
/// code page with `?` for every character it cannot represent (§6.3).
pub fn ansi_path_in(raw_path: &str, code_page: AnsiCodePage) -> Vec<u8> {
    let bytes = percent_decode(raw_path);
    let byte_of = |c: char| match code_page {
        AnsiCodePage::Windows1252 => cp1252_byte(c),
        AnsiCodePage::UsAscii => c.is_ascii().then_some(c as u8),
    };
    match String::from_utf8(bytes) {
        Ok(text) => text.chars().map(|c| byte_of(c).unwrap_or(b'?')).collect(),
        Err(e) => match code_page {
            AnsiCodePage::Windows1252 => e.into_bytes(),
            AnsiCodePage::UsAscii => e
                .into_bytes()
                .into_iter()
                .map(|b| if b.is_ascii() { b } else { b'?' })
                .collect(),
        },
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

/// IIS's request id for the `nth` request (0-based) on one connection: 1, 2, …, 255, then 1
/// again (§4.1).
pub fn iis_id(nth: usize) -> u16 {
    (nth % 255) as u16 + 1
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/// What came back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request id.
    pub id: u16,
    /// STDOUT, concatenated.
    pub stdout: Vec<u8>,
    /// STDERR, concatenated. Under IIS's default `stderrMode` any byte here is a 500 (§7.2).
    pub stderr: Vec<u8>,
    /// `END_REQUEST.appStatus`.
    pub app_status: u32,
    /// `END_REQUEST.protocolStatus`.
    pub protocol_status: u8,
    /// `(type, content length)` of every record, in order, for framing checks.
    pub records: Vec<(u8, usize)>,
}

impl Reply {
    /// The CGI response on STDOUT, which must parse with every line ending in CRLF (what
    /// iiswsgi promises; IIS itself would take bare LFs): panics otherwise, showing STDOUT.
    pub fn cgi(&self) -> Cgi {
        let show = || String::from_utf8_lossy(&self.stdout).into_owned();
        let cgi = Cgi::parse(&self.stdout)
            .unwrap_or_else(|e| panic!("bad CGI response ({e}): {:?}", show()));
        assert!(cgi.crlf, "CGI response with a bare LF: {:?}", show());
        cgi
    }
}

/// Reads records up to `END_REQUEST` for `id` (reading nothing past it), holding them to
/// what IIS accepts (§4.2): version 1, only STDOUT, STDERR and `END_REQUEST`, the id echoed,
/// an 8-byte `END_REQUEST` body. Empty STDOUT records are allowed (IIS ignores them).
/// EOF before `END_REQUEST` is `UnexpectedEof`; anything IIS would reject is `InvalidData`.
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
        let rec: Record = wire::read_record(r)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("EOF before END_REQUEST for id {id}"),
            )
        })?;
        let bad = |why: String| Err(io::Error::new(io::ErrorKind::InvalidData, why));
        if rec.version != 1 {
            return bad(format!("record version {}", rec.version));
        }
        if rec.id != id {
            return bad(format!(
                "record type {} carries id {} (high byte {}) while waiting for {id}",
                rec.kind,
                rec.id,
                rec.id >> 8
            ));
        }
        reply.records.push((rec.kind, rec.content.len()));
        match rec.kind {
            wire::STDOUT => reply.stdout.extend_from_slice(&rec.content),
            wire::STDERR => reply.stderr.extend_from_slice(&rec.content),
            wire::END_REQUEST => {
                let Some((app_status, protocol_status)) =
                    rec.end_request().filter(|_| rec.content.len() == 8)
                else {
                    return bad(format!("END_REQUEST body of {} bytes", rec.content.len()));
                };
                reply.app_status = app_status;
                reply.protocol_status = protocol_status;
                return Ok(reply);
            }
            other => {
                return bad(format!(
                    "record type {other}: IIS accepts only 3, 6 and 7 and fails the request \
                     with 0x8007000D"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_get_to_a_sub_application_is_48_params_ending_in_the_fixed_table() {
        let params = IisRequest::browser_get("/shop/cart?id=7").params(&IisApp::sub("/shop"));
        assert_eq!(params.len(), 48);
        assert_eq!(params[0].0, "HTTP_CACHE_CONTROL");
        let names: Vec<&str> = params[7..].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, FIXED_TABLE);
    }

    #[test]
    fn md_path_names_the_root_or_a_sub_application() {
        assert_eq!(IisApp::at_md_path("/LM/W3SVC/1/ROOT").virtual_path, "");
        let shop = IisApp::at_md_path("/LM/W3SVC/1/ROOT/shop");
        assert_eq!(shop.physical_path, r"C:\inetpub\wwwroot\shop");
    }

    #[test]
    fn us_ascii_code_page_turns_every_non_ascii_character_into_one_question_mark() {
        assert_eq!(
            ansi_path_in("/caf%C3%A9/%E6%97%A5", AnsiCodePage::UsAscii),
            b"/caf?/?".to_vec()
        );
        // Not UTF-8: read as ANSI, one `?` per byte.
        assert_eq!(
            ansi_path_in("/%C3%FF", AnsiCodePage::UsAscii),
            b"/??".to_vec()
        );
    }

    #[test]
    fn ids_wrap_from_255_to_1() {
        assert_eq!((iis_id(0), iis_id(254), iis_id(255)), (1, 255, 1));
    }

    #[test]
    fn read_reply_rejects_a_type_iis_does_not_accept() {
        let bytes = wire::record(wire::GET_VALUES_RESULT, 1, b"");
        let err = read_reply(&mut &bytes[..], 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = read_reply(&mut &[][..], 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
