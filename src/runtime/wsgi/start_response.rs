//! `start_response` and the `write()` it returns: PEP 3333's state table for `exc_info`, and
//! the checks a status line and headers must pass before they can reach the wire.
//!
//! A bad status or header raises inside the app (uncaught, it becomes a 500), so a response
//! splitting attempt or a non-latin-1 value never reaches the web server. The checks
//! themselves ([`check_status`], [`check_header`]) are pure functions.

use std::sync::Arc;

use pyo3::exceptions::{PyConnectionAbortedError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::errors::type_name;
use super::exchange::{DeliverError, Exchange, Head};

/// Hop-by-hop headers (RFC 9110 §7.6.1): the gateway's business, never the app's.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Why a status line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusProblem {
    /// Not three digits at the start.
    NoCode,
    /// The code is below 100.
    CodeOutOfRange,
    /// Something other than a space follows the code.
    NoSpace,
    /// A control character (CR, LF, NUL...) or a char above U+00FF in the reason phrase.
    BadReason,
}

impl StatusProblem {
    fn message(self) -> &'static str {
        match self {
            StatusProblem::NoCode => "status must start with a three-digit code",
            StatusProblem::CodeOutOfRange => "status code must be between 100 and 999",
            StatusProblem::NoSpace => "status code must be followed by a space and a reason",
            StatusProblem::BadReason => {
                "status reason must be latin-1 text without control characters"
            }
        }
    }
}

/// `"200 OK"` → 200. Three digits 100–999, then the end or a space and a reason phrase of
/// latin-1 text without control characters.
pub fn check_status(status: &str) -> Result<u16, StatusProblem> {
    let bytes = status.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return Err(StatusProblem::NoCode);
    }
    let code = bytes[..3]
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    if code < 100 {
        return Err(StatusProblem::CodeOutOfRange);
    }
    match bytes.get(3) {
        None => Ok(code),
        Some(b' ') if field_text_ok(&status[4..]) => Ok(code),
        Some(b' ') => Err(StatusProblem::BadReason),
        Some(_) => Err(StatusProblem::NoSpace),
    }
}

/// Why a header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderProblem {
    /// The name is empty or not an RFC 9110 token (spaces, colons, controls...).
    BadName,
    /// The name is `Status`, which the CGI response format reserves.
    StatusName,
    /// A hop-by-hop header.
    HopByHop,
    /// The value holds CR, LF, NUL or another control character other than HTAB.
    ControlInValue,
    /// The value holds a char above U+00FF, which latin-1 cannot carry.
    NotLatin1,
}

impl HeaderProblem {
    fn message(self) -> &'static str {
        match self {
            HeaderProblem::BadName => "header name must be a token (no spaces, colons or controls)",
            HeaderProblem::StatusName => "the header name Status is reserved",
            HeaderProblem::HopByHop => "hop-by-hop headers are set by the server, not the app",
            HeaderProblem::ControlInValue => {
                "header value must not contain CR, LF, NUL or other control characters"
            }
            HeaderProblem::NotLatin1 => "header value must be latin-1 encodable",
        }
    }
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Latin-1 text with no controls except HTAB.
fn field_text_ok(text: &str) -> bool {
    text.chars()
        .all(|c| c == '\t' || (c >= ' ' && c != '\x7f' && c <= '\u{ff}'))
}

/// Checks one header pair.
pub fn check_header(name: &str, value: &str) -> Result<(), HeaderProblem> {
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err(HeaderProblem::BadName);
    }
    if name.eq_ignore_ascii_case("status") {
        return Err(HeaderProblem::StatusName);
    }
    if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return Err(HeaderProblem::HopByHop);
    }
    for c in value.chars() {
        if c == '\t' {
            continue;
        }
        if c < ' ' || c == '\x7f' {
            return Err(HeaderProblem::ControlInValue);
        }
        if c > '\u{ff}' {
            return Err(HeaderProblem::NotLatin1);
        }
    }
    Ok(())
}

/// Decimal digits only, fitting in `u64`.
fn parse_content_length(value: &str) -> Option<u64> {
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Turns the app's `(status, headers)` into a checked [`Head`], raising what the app did wrong.
fn checked_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<Head> {
    if !status.is_exact_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "status must be a str, not {}",
            type_name(status)
        )));
    }
    let status = super::utf8::utf8(status.cast::<PyString>()?)?.into_owned();
    let code = check_status(&status)
        .map_err(|p| PyValueError::new_err(format!("{}: {status:?}", p.message())))?;
    let list = headers.cast_exact::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "headers must be a list, not {}",
            type_name(headers)
        ))
    })?;
    let mut out = Vec::with_capacity(list.len());
    let mut content_length = None;
    for item in list.iter() {
        let pair = item.cast_exact::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "each header must be a (name, value) tuple, not {}",
                type_name(&item)
            ))
        })?;
        if pair.len() != 2 {
            return Err(PyTypeError::new_err(format!(
                "each header must be a (name, value) tuple, got {} items",
                pair.len()
            )));
        }
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let (Ok(name), Ok(value)) = (
            name.cast_exact::<PyString>(),
            value.cast_exact::<PyString>(),
        ) else {
            return Err(PyTypeError::new_err(format!(
                "header names and values must be str, not ({}, {})",
                type_name(&name),
                type_name(&value)
            )));
        };
        let (name, value) = (super::utf8::utf8(name)?, super::utf8::utf8(value)?);
        let (name, value) = (&*name, &*value);
        check_header(name, value)
            .map_err(|p| PyValueError::new_err(format!("{}: {name:?}: {value:?}", p.message())))?;
        if name.eq_ignore_ascii_case("content-length") {
            let n = parse_content_length(value).ok_or_else(|| {
                PyValueError::new_err(format!("Content-Length is not a number: {value:?}"))
            })?;
            match content_length {
                Some(previous) if previous != n => {
                    return Err(PyValueError::new_err(format!(
                        "two different Content-Length headers: {previous} and {n}"
                    )));
                }
                // Identical repeats collapse into the first.
                Some(_) => continue,
                None => content_length = Some(n),
            }
        }
        // Checked above: every char fits one latin-1 byte.
        let latin1 = |s: &str| s.chars().map(|c| c as u8).collect::<Vec<u8>>();
        out.push((latin1(name), latin1(value)));
    }
    Ok(Head {
        status,
        code,
        headers: out,
        content_length,
    })
}

/// `exc_info` as PEP 3333 reads it: `None` and `(None, None, None)` mean "absent".
fn exc_info_of<'py>(exc_info: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let Some(exc_info) = exc_info.filter(|e| !e.is_none()) else {
        return Ok(None);
    };
    let tuple = exc_info.cast::<PyTuple>().map_err(|_| {
        PyTypeError::new_err(format!(
            "exc_info must be a (type, value, traceback) tuple, not {}",
            type_name(exc_info)
        ))
    })?;
    if tuple.len() != 3 {
        return Err(PyTypeError::new_err("exc_info must be a 3-tuple"));
    }
    if tuple.iter().all(|x| x.is_none()) {
        return Ok(None);
    }
    Ok(Some(tuple.clone()))
}

/// The `start_response` callable for one request.
#[pyclass(frozen, module = "iiswsgi", name = "StartResponse")]
pub(super) struct StartResponse {
    exchange: Arc<Exchange>,
}

impl StartResponse {
    pub(super) fn new(exchange: Arc<Exchange>) -> StartResponse {
        StartResponse { exchange }
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        slf: &Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let exc_info = exc_info_of(exc_info)?;
        let (called, committed) = this.exchange.progress()?;
        match &exc_info {
            Some(exc) if committed => {
                // Headers are out: PEP 3333 says re-raise the app's exception.
                let value = exc.get_item(1)?;
                let tb = exc.get_item(2)?;
                if !tb.is_none() {
                    value.call_method1(intern!(py, "with_traceback"), (tb,))?;
                }
                return Err(PyErr::from_value(value));
            }
            None if committed => {
                return Err(PyRuntimeError::new_err(
                    "start_response() called after the headers were sent, without exc_info",
                ));
            }
            None if called => {
                return Err(PyRuntimeError::new_err(
                    "start_response() called a second time without exc_info",
                ));
            }
            _ => {}
        }
        let head = checked_head(status, headers)?;
        this.exchange.set_head(head)?;
        slf.getattr(intern!(py, "write"))
    }

    /// PEP 3333's `write(data)`: sends `data` now, committing the headers first.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                type_name(data)
            ))
        })?;
        self.exchange.mark_write()?;
        match self.exchange.deliver(py, data.as_bytes()) {
            Ok(_) => Ok(()),
            Err(DeliverError::NotStarted) => Err(PyRuntimeError::new_err(
                "write() called before start_response()",
            )),
            Err(DeliverError::ClientGone(msg)) => Err(PyConnectionAbortedError::new_err(msg)),
            Err(DeliverError::Finished) => Err(PyRuntimeError::new_err(
                "write() called after the request finished",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod status {
        use super::*;

        #[test]
        fn common_lines_are_accepted() {
            assert_eq!(check_status("200 OK"), Ok(200));
            assert_eq!(check_status("418 I'm a teapot"), Ok(418));
            assert_eq!(check_status("599 Caf\u{e9}"), Ok(599));
            assert_eq!(check_status("204"), Ok(204));
            assert_eq!(check_status("999 x"), Ok(999));
        }

        #[test]
        fn malformed_lines_are_refused() {
            assert_eq!(check_status("OK"), Err(StatusProblem::NoCode));
            assert_eq!(check_status("20 OK"), Err(StatusProblem::NoCode));
            assert_eq!(check_status("2000 OK"), Err(StatusProblem::NoSpace));
            assert_eq!(check_status("099 Low"), Err(StatusProblem::CodeOutOfRange));
            assert_eq!(
                check_status("200 OK\r\nX: y"),
                Err(StatusProblem::BadReason)
            );
            assert_eq!(check_status("200 OK\0"), Err(StatusProblem::BadReason));
            assert_eq!(check_status("200 \u{20ac}"), Err(StatusProblem::BadReason));
        }
    }

    mod header {
        use super::*;

        #[test]
        fn ordinary_headers_are_accepted() {
            assert_eq!(check_header("Content-Type", "text/plain"), Ok(()));
            assert_eq!(check_header("X-Tab", "a\tb"), Ok(()));
            assert_eq!(check_header("X-Latin", "caf\u{e9}"), Ok(()));
            assert_eq!(check_header("Set-Cookie", "a=1; Path=/"), Ok(()));
        }

        #[test]
        fn names_must_be_tokens_and_not_status() {
            assert_eq!(check_header("", "v"), Err(HeaderProblem::BadName));
            assert_eq!(check_header("X Y", "v"), Err(HeaderProblem::BadName));
            assert_eq!(check_header("X:Y", "v"), Err(HeaderProblem::BadName));
            assert_eq!(check_header("X\u{e9}", "v"), Err(HeaderProblem::BadName));
            assert_eq!(
                check_header("status", "200"),
                Err(HeaderProblem::StatusName)
            );
        }

        #[test]
        fn hop_by_hop_headers_are_refused_in_any_case() {
            for name in [
                "Connection",
                "keep-alive",
                "TE",
                "Trailer",
                "Transfer-Encoding",
                "Upgrade",
            ] {
                assert_eq!(
                    check_header(name, "x"),
                    Err(HeaderProblem::HopByHop),
                    "{name}"
                );
            }
        }

        #[test]
        fn values_refuse_controls_and_non_latin1() {
            assert_eq!(
                check_header("X", "a\r\nB: c"),
                Err(HeaderProblem::ControlInValue)
            );
            assert_eq!(
                check_header("X", "a\nb"),
                Err(HeaderProblem::ControlInValue)
            );
            assert_eq!(
                check_header("X", "a\0b"),
                Err(HeaderProblem::ControlInValue)
            );
            assert_eq!(check_header("X", "\u{20ac}"), Err(HeaderProblem::NotLatin1));
        }

        #[test]
        fn content_length_parses_digits_only() {
            assert_eq!(parse_content_length("12"), Some(12));
            assert_eq!(parse_content_length(" 12 "), Some(12));
            assert_eq!(parse_content_length("abc"), None);
            assert_eq!(parse_content_length("-1"), None);
            assert_eq!(parse_content_length(""), None);
        }
    }

    mod through_python {
        use super::super::super::testing::TestApp;

        const APPS: &str = r#"
import sys
def app(environ, start_response):
    p = environ["PATH_INFO"]
    q = environ["QUERY_STRING"]
    if p == "/status":
        start_response(eval(q.replace("%20", " ")), [])
        return [b"x"]
    if p == "/headers":
        start_response("200 OK", eval(q.replace("%20", " ")))
        return [b"x"]
    if p == "/teapot":
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return [b"short and stout"]
    if p == "/latin1":
        start_response("200 OK", [("X-Latin", "caf\u00e9")])
        return [b""]
    if p == "/cookies":
        hs = [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")] + [("X-H%d" % i, str(i)) for i in range(25)]
        start_response("200 OK", hs)
        return [b""]
    if p == "/twice":
        start_response("200 OK", [])
        start_response("201 Created", [])
        return [b""]
    if p == "/twice-after-write":
        w = start_response("200 OK", [])
        w(b"pre-")
        try:
            start_response("500 Oops", [])
        except RuntimeError:
            w(b"err")
        return [b"!"]
    if p == "/replace":
        start_response("200 OK", [("X-Before", "1")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("418 Teapot", [("X-After", "1")], sys.exc_info())
        return [b"replaced"]
    if p == "/reraise":
        w = start_response("200 OK", [])
        w(b"sent")
        err = ValueError("original")
        try:
            raise err
        except ValueError:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except ValueError as again:
                assert again is err
                w(b"-same")
        return [b""]
    if p == "/bad-exc-info":
        try:
            start_response("200 OK", [], "x")
        except TypeError:
            start_response("200 OK", [])
            return [b"caught"]
    if p == "/none-exc-info":
        start_response("200 OK", [], (None, None, None))
        return [b"fine"]
    return [b"?"]
"#;

        fn status(t: &TestApp, expr: &str) -> u16 {
            t.get(&format!("/status?{}", expr.replace(' ', "%20")))
                .code()
        }

        fn headers(t: &TestApp, expr: &str) -> u16 {
            t.get(&format!("/headers?{}", expr.replace(' ', "%20")))
                .code()
        }

        #[test]
        fn custom_status_line_is_passed_through() {
            let r = TestApp::new(APPS).get("/teapot");
            assert_eq!(r.status.as_deref(), Some("418 I'm a teapot"));
        }

        #[test]
        fn malformed_status_lines_become_500() {
            let t = TestApp::new(APPS);
            assert_eq!(status(&t, "'200 OK'"), 200);
            for bad in [
                "'OK'",
                "'20 OK'",
                "'2000 OK'",
                "200",
                "b'200 OK'",
                r"'200 OK\r\nX: y'",
            ] {
                assert_eq!(status(&t, bad), 500, "{bad}");
            }
        }

        #[test]
        fn malformed_headers_become_500() {
            let t = TestApp::new(APPS);
            assert_eq!(headers(&t, "[('X-A', 'b')]"), 200);
            for bad in [
                "(('X-A', 'b'),)",
                "[['X-A', 'b']]",
                "[(b'X-A', 'b')]",
                "[('Status', '200')]",
                "[('X A', 'b')]",
                "[('X:A', 'b')]",
                r"[('X-A', 'b\r\nX-B: c')]",
                r"[('X-A', 'b\x00')]",
                r"[('X-A', '\u20ac')]",
                "[('Connection', 'close')]",
                "[('Transfer-Encoding', 'chunked')]",
                "[('X-A', 'b', 'c')]",
            ] {
                assert_eq!(headers(&t, bad), 500, "{bad}");
            }
        }

        #[test]
        fn latin1_header_values_keep_their_char() {
            let r = TestApp::new(APPS).get("/latin1");
            assert_eq!(r.header("X-Latin"), Some("caf\u{e9}"));
        }

        #[test]
        fn repeated_and_many_headers_all_arrive() {
            let r = TestApp::new(APPS).get("/cookies");
            let cookies: Vec<&str> = r
                .headers
                .iter()
                .filter(|(n, _)| n == "Set-Cookie")
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(cookies, ["a=1", "b=2"]);
            assert!((0..25).all(|i| r.header(&format!("X-H{i}")) == Some(i.to_string().as_str())));
        }

        #[test]
        fn second_call_without_exc_info_is_a_runtime_error() {
            let t = TestApp::new(APPS);
            let r = t.get("/twice");
            assert_eq!(r.code(), 500);
            assert!(
                r.log.contains("called a second time without exc_info"),
                "{}",
                r.log
            );
            assert_eq!(t.get("/twice-after-write").body, b"pre-err!");
        }

        #[test]
        fn exc_info_before_output_replaces_status_and_headers() {
            let r = TestApp::new(APPS).get("/replace");
            assert_eq!(r.code(), 418);
            assert_eq!(r.header("X-After"), Some("1"));
            assert_eq!(r.header("X-Before"), None);
            assert_eq!(r.body, b"replaced");
        }

        #[test]
        fn exc_info_after_output_reraises_the_same_exception() {
            let r = TestApp::new(APPS).get("/reraise");
            assert_eq!(r.code(), 200);
            assert_eq!(r.body, b"sent-same");
        }

        #[test]
        fn exc_info_must_be_a_triple_and_none_triple_counts_as_absent() {
            let t = TestApp::new(APPS);
            assert_eq!(t.get("/bad-exc-info").body, b"caught");
            assert_eq!(t.get("/none-exc-info").body, b"fine");
        }
    }
}
