//! `iiswsgi run --access-log FILE`: one line per request in Apache's combined format, the
//! default of gunicorn's `--access-logfile`, so log analysers and `fail2ban` filters written
//! for those servers read it as is:
//!
//! ```text
//! 127.0.0.1 - - [01/May/2025:12:34:56 +0000] "GET /polls/3/?x=1 HTTP/1.1" 200 1234 "-" "curl/8.5.0"
//! ```
//!
//! [`Logged`] wraps any [`Application`] and counts what it sends through the
//! [`Response`]; the line is written when the request ends. Requests the server answers
//! itself before the application (a 400 for a malformed environ) are not in it. Times are UTC.
//! Every field that came from the client is escaped as Apache does (`\"`, `\\`, `\xhh`), so a
//! line is always one line. Each line is one `write` on a file opened for append, so the
//! worker processes of `--processes` share one file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use crate::runtime::options::AccessLogTarget;
use crate::runtime::server::{Application, Body, Outcome, Request, Response};

/// Where the lines go.
#[derive(Debug)]
enum Sink {
    Stdout,
    File(File),
}

/// An open access log.
#[derive(Debug)]
pub struct AccessLog {
    sink: Mutex<Sink>,
}

impl AccessLog {
    /// Opens `target` for append (creating the file, not its folder).
    pub fn open(target: &AccessLogTarget) -> io::Result<AccessLog> {
        let sink = match target {
            AccessLogTarget::Stdout => Sink::Stdout,
            AccessLogTarget::File(path) => Sink::File(open_append(path)?),
        };
        Ok(AccessLog {
            sink: Mutex::new(sink),
        })
    }

    fn write(&self, line: &str) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        // A failing access log never fails a request.
        let _ = match &mut *sink {
            Sink::Stdout => io::stdout().lock().write_all(line.as_bytes()),
            Sink::File(f) => f.write_all(line.as_bytes()),
        };
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// An [`Application`] whose requests are written to an [`AccessLog`], if there is one.
pub struct Logged<A> {
    app: A,
    log: Option<AccessLog>,
}

impl<A> Logged<A> {
    /// `app`, logging to `log` (`None`: `app` as it is).
    pub fn new(app: A, log: Option<AccessLog>) -> Self {
        Logged { app, log }
    }
}

impl<A: Application> Application for Logged<A> {
    fn handle(
        &self,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Outcome {
        let Some(log) = &self.log else {
            return self.app.handle(request, body, response);
        };
        let started = SystemTime::now();
        let mut counted = Counted {
            inner: response,
            status: None,
            bytes: 0,
        };
        let outcome = self.app.handle(request, body, &mut counted);
        // Nothing sent and a failure: the server answers 500 itself.
        let status = match (counted.status, outcome) {
            (Some(s), _) => s,
            (None, Outcome::Aborted) => 500,
            (None, _) => 0,
        };
        log.write(&combined_line(request, started, status, counted.bytes));
        outcome
    }

    fn wants_raw_params(&self) -> bool {
        self.app.wants_raw_params()
    }

    fn run_worker(&self, serve: &mut (dyn FnMut() + Send)) {
        self.app.run_worker(serve);
    }
}

/// A [`Response`] that remembers the status and counts the body bytes passed through.
struct Counted<'a> {
    inner: &'a mut dyn Response,
    status: Option<u16>,
    bytes: u64,
}

impl Response for Counted<'_> {
    fn start(&mut self, status: &str, headers: &[(&[u8], &[u8])]) -> io::Result<()> {
        self.inner.start(status, headers)?;
        self.status = status.get(..3).and_then(|code| code.parse().ok());
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.inner.write(chunk)?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    fn write_final(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.inner.write_final(chunk)?;
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    fn headers_sent(&self) -> bool {
        self.inner.headers_sent()
    }
}

/// One line of Apache's combined format: `%h %l %u %t "%r" %>s %b "%{Referer}i"
/// "%{User-agent}i"`, ending in `\n`.
pub fn combined_line(request: &Request, at: SystemTime, status: u16, bytes: u64) -> String {
    let field = |name: &[u8]| request.param(name).filter(|v| !v.is_empty());
    let dash = |v: Option<&[u8]>| v.map_or_else(|| "-".to_owned(), escape);
    let method = field(b"REQUEST_METHOD").map_or_else(String::new, escape);
    let target = field(b"REQUEST_URI").map_or_else(String::new, escape);
    let protocol = field(b"SERVER_PROTOCOL").map_or_else(String::new, escape);
    let size = if bytes == 0 {
        "-".to_owned()
    } else {
        bytes.to_string()
    };
    format!(
        "{} - {} [{}] \"{method} {target} {protocol}\" {status} {size} \"{}\" \"{}\"\n",
        dash(field(b"REMOTE_ADDR")),
        dash(field(b"REMOTE_USER")),
        apache_time(at),
        dash(field(b"HTTP_REFERER")),
        dash(field(b"HTTP_USER_AGENT")),
    )
}

/// `10/Oct/2000:13:55:36 +0000` (UTC).
fn apache_time(at: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // `2000-10-10T13:55:36Z`
    let iso = humantime::format_rfc3339_seconds(at).to_string();
    let (date, time) = iso.split_once('T').unwrap_or((&iso, "00:00:00Z"));
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (
        ymd.next().unwrap_or("1970"),
        ymd.next().unwrap_or("01"),
        ymd.next().unwrap_or("01"),
    );
    let month = m
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    format!("{d}/{month}/{y}:{} +0000", time.trim_end_matches('Z'))
}

/// Apache's escaping of logged request fields: `"` and `\` get a backslash, bytes outside
/// printable ASCII become `\xhh`.
fn escape(value: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len());
    for &b in value {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::environ::{Mode, Scheme};

    fn request(params: &[(&str, &[u8])]) -> Request {
        Request {
            id: 1,
            params: params
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec()))
                .collect(),
            raw_params: Vec::new(),
            url_scheme: Scheme::Http,
            content_length: None,
            mode: Mode::Generic,
            transport: "unix",
            single_connection: false,
            log_id: 1,
        }
    }

    fn at() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(971_186_136) // 2000-10-10T13:55:36Z
    }

    #[test]
    fn a_request_is_one_combined_format_line() {
        let r = request(&[
            ("REMOTE_ADDR", b"127.0.0.1"),
            ("REQUEST_METHOD", b"GET"),
            ("REQUEST_URI", b"/polls/3/?x=1"),
            ("SERVER_PROTOCOL", b"HTTP/1.1"),
            ("HTTP_REFERER", b"http://example.com/start.html"),
            ("HTTP_USER_AGENT", b"Mozilla/4.08"),
        ]);
        assert_eq!(
            combined_line(&r, at(), 200, 2326),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /polls/3/?x=1 HTTP/1.1\" 200 2326 \
             \"http://example.com/start.html\" \"Mozilla/4.08\"\n"
        );
    }

    #[test]
    fn missing_fields_are_dashes_and_an_empty_body_is_a_dash() {
        let r = request(&[("REQUEST_METHOD", b"HEAD"), ("REQUEST_URI", b"/")]);
        assert_eq!(
            combined_line(&r, at(), 304, 0),
            "- - - [10/Oct/2000:13:55:36 +0000] \"HEAD / \" 304 - \"-\" \"-\"\n"
        );
    }

    #[test]
    fn client_supplied_fields_cannot_break_the_line() {
        let r = request(&[
            ("REQUEST_METHOD", b"GET"),
            ("REQUEST_URI", b"/a\"b\\c\n\xc3\xa9"),
            ("REMOTE_USER", b"ann"),
            ("HTTP_USER_AGENT", b"x\" 200 1 \"forged"),
        ]);
        let line = combined_line(&r, at(), 200, 5);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.contains(r#""GET /a\"b\\c\x0a\xc3\xa9 ""#), "{line}");
        assert!(line.contains(r#""x\" 200 1 \"forged""#), "{line}");
        assert!(line.starts_with("- - ann ["), "{line}");
    }
}
