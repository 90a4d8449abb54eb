//! IIS's side of FastCGI, written from `iis-runtime.md` §4 and `fastcgi-protocol.md` §1–§2 and
//! independent of iiswsgi's codec (it must catch that codec's bugs, not share them).
//!
//! Encodes what IIS sends (`BEGIN_REQUEST` with `KEEP_CONN` as its own write, PARAMS in one or
//! more records then an empty one, the body in STDIN records of 8 KiB then an empty one) and
//! reads replies holding them to what IIS accepts: only types 3, 6 and 7, the request id
//! echoed with a zero high byte, an 8-byte `END_REQUEST`. Also parses the CGI response and
//! reads values back from the diagnostic page.

use std::io::{self, Read};

pub const BEGIN_REQUEST: u8 = 1;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;

/// IIS's request ids on one connection: 1, 2, …, 255, then 1 again (`iis-runtime.md` §4.1).
pub fn iis_id(nth: usize) -> u16 {
    (nth % 255) as u16 + 1
}

/// One record with `padding` zero bytes after the content.
pub fn record(kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let len = u16::try_from(content.len()).unwrap_or(u16::MAX);
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
    out.extend_from_slice(&content[..usize::from(len)]);
    out.extend(std::iter::repeat_n(0u8, usize::from(padding)));
    out
}

/// `BEGIN_REQUEST{RESPONDER, FCGI_KEEP_CONN}`: IIS always sets KEEP_CONN.
pub fn begin(id: u16) -> Vec<u8> {
    record(BEGIN_REQUEST, id, &[0, 1, 1, 0, 0, 0, 0, 0], 0)
}

fn push_len(out: &mut Vec<u8>, len: usize, long: bool) {
    if len <= 127 && !long {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
    }
}

/// Name–value pairs; `long_form` uses the 4-byte length form for every length.
pub fn pairs(params: &[(String, String)], long_form: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in params {
        push_len(&mut out, n.len(), long_form);
        push_len(&mut out, v.len(), long_form);
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// A PARAMS or STDIN stream: records of at most `chunk` content bytes (padding 0, as IIS
/// sends PARAMS), then the empty record that ends it.
pub fn stream(kind: u8, id: u16, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        out.extend(record(kind, id, part, 0));
    }
    out.extend(record(kind, id, &[], 0));
    out
}

/// The params IIS sends (`iis-runtime.md` §6.1–§6.2) for `method uri` to the IIS application
/// `/LM/W3SVC/1/ROOT/shop`: request headers first (`HTTP_CONTENT_LENGTH` included), then the
/// fixed server-variable table, where `SCRIPT_NAME`, `PATH_INFO` and `URL` all hold the full
/// decoded path.
pub fn iis_params(method: &str, uri: &str, body_len: usize) -> Vec<(String, String)> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut p: Vec<(String, String)> = Vec::new();
    let mut add = |n: &str, v: &str| p.push((n.to_owned(), v.to_owned()));
    let len = body_len.to_string();
    let ctype = if body_len > 0 {
        "application/octet-stream"
    } else {
        ""
    };
    if body_len > 0 {
        add("HTTP_CONTENT_LENGTH", &len);
        add("HTTP_CONTENT_TYPE", ctype);
    }
    add("HTTP_ACCEPT", "*/*");
    add("HTTP_HOST", "www.example.com");
    add("HTTP_USER_AGENT", "iiswsgi-windows-harness");
    for (n, v) in [
        ("APPL_MD_PATH", "/LM/W3SVC/1/ROOT/shop"),
        ("APPL_PHYSICAL_PATH", "C:\\inetpub\\wwwroot\\shop\\"),
        ("AUTH_TYPE", ""),
        ("AUTH_PASSWORD", ""),
        ("AUTH_USER", ""),
        ("CERT_COOKIE", ""),
        ("CERT_FLAGS", ""),
        ("CERT_ISSUER", ""),
        ("CERT_SERIALNUMBER", ""),
        ("CERT_SUBJECT", ""),
        ("CONTENT_LENGTH", &len),
        ("CONTENT_TYPE", ctype),
        ("DOCUMENT_ROOT", "C:\\inetpub\\wwwroot\\shop"),
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
        ("PATH_INFO", path),
        ("PATH_TRANSLATED", "C:\\inetpub\\wwwroot\\shop\\item"),
        ("QUERY_STRING", query),
        ("REMOTE_ADDR", "::1"),
        ("REMOTE_HOST", "::1"),
        ("REMOTE_PORT", "51234"),
        ("REMOTE_USER", ""),
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("SCRIPT_FILENAME", "C:\\inetpub\\wwwroot\\shop\\item"),
        ("SCRIPT_NAME", path),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "80"),
        ("SERVER_PORT_SECURE", "0"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "Microsoft-IIS/10.0"),
        ("URL", path),
    ] {
        add(n, v);
    }
    p
}

/// One request the way IIS writes it: `BEGIN_REQUEST` alone (first element), then PARAMS, the
/// empty PARAMS, the body in 8 KiB STDIN records and the empty STDIN (second element).
pub fn request_writes(
    id: u16,
    params: &[(String, String)],
    long_form: bool,
    body: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut rest = stream(PARAMS, id, &pairs(params, long_form), 4096);
    rest.extend(stream(STDIN, id, body, 8192));
    (begin(id), rest)
}

/// What came back for one request.
#[derive(Debug)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub app_status: u32,
    pub protocol_status: u8,
    /// Records received, for the summary.
    pub records: usize,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads records up to `END_REQUEST` for `id`, failing on anything IIS would reject.
pub fn read_reply(r: &mut impl Read, id: u16) -> io::Result<Reply> {
    let mut reply = Reply {
        stdout: Vec::new(),
        stderr: Vec::new(),
        app_status: 0,
        protocol_status: 0,
        records: 0,
    };
    loop {
        let mut header = [0u8; 8];
        r.read_exact(&mut header).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("reading a record header for id {id}: {e}"),
            )
        })?;
        let kind = header[1];
        let rid = u16::from_be_bytes([header[2], header[3]]);
        let len = usize::from(u16::from_be_bytes([header[4], header[5]]));
        let mut content = vec![0u8; len + usize::from(header[6])];
        r.read_exact(&mut content)?;
        content.truncate(len);
        reply.records += 1;
        if header[0] != 1 {
            return Err(invalid(format!("record version {}", header[0])));
        }
        if rid != id {
            return Err(invalid(format!(
                "record type {kind} carries id {rid} (high byte {}), expected {id}",
                header[2]
            )));
        }
        match kind {
            STDOUT => reply.stdout.extend_from_slice(&content),
            STDERR => reply.stderr.extend_from_slice(&content),
            END_REQUEST => {
                if content.len() != 8 {
                    return Err(invalid(format!("END_REQUEST of {} bytes", content.len())));
                }
                reply.app_status =
                    u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                reply.protocol_status = content[4];
                return Ok(reply);
            }
            other => {
                return Err(invalid(format!(
                    "record type {other}: IIS accepts only 3, 6 and 7 and fails the request \
                     with 0x8007000D"
                )));
            }
        }
    }
}

/// A CGI response: `Status:` line, headers, body.
#[derive(Debug)]
pub struct Cgi {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Cgi {
    /// Parses `out`, requiring CRLF line ends and `Status:` as the first header
    /// (`iis-runtime.md` §7.1).
    pub fn parse(out: &[u8]) -> Result<Cgi, String> {
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no CRLF CRLF after the headers")?;
        let head = std::str::from_utf8(&out[..end]).map_err(|e| e.to_string())?;
        let mut status = None;
        let mut headers = Vec::new();
        for (i, line) in head.split("\r\n").enumerate() {
            let (name, value) = line
                .split_once(": ")
                .ok_or(format!("bad header line {line:?}"))?;
            if name.eq_ignore_ascii_case("Status") {
                if i != 0 {
                    return Err("Status: is not the first header".into());
                }
                let code = value.split(' ').next().unwrap_or_default();
                status = Some(code.parse::<u16>().map_err(|e| e.to_string())?);
            } else {
                headers.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(Cgi {
            status: status.ok_or("no Status header")?,
            headers,
            body: out[end + 4..].to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The value the diagnostic page shows for `name`: the cell after `<td>NAME</td>`, with the
/// few HTML entities the page uses decoded.
pub fn diag_value(page: &str, name: &str) -> Option<String> {
    let key = format!("<tr><td>{name}</td><td>");
    let at = page.find(&key)? + key.len();
    let end = at + page[at..].find("</td>")?;
    Some(
        page[at..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

/// FNV-1a 64 of the body, as the diagnostic page prints it.
pub fn fnv1a64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
