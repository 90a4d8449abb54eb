//! The WSGI `environ`: from the server's normalised params to the dict an app receives.
//!
//! The server ([`crate::runtime::environ`]) has already applied PEP 3333's fix-ups to the params
//! (IIS path rules, `CONTENT_LENGTH`, `HTTP_CONTENT_*`, repeated headers, `QUERY_STRING`,
//! `SCRIPT_NAME`/`PATH_INFO` always present) and worked out the scheme and body length; this
//! module does not repeat any of that. [`CgiEnviron::of`] only picks what the bridge needs from
//! the [`Request`] (pure, no Python); [`EnvironTemplate`] turns it into a Python `dict`: a copy
//! of a base dict built once per process, interned keys for the names we know (never for names
//! a client chose), and latin-1 `str` values decoded in one pass.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString, PyTuple};

use crate::runtime::server::{Param, Request, Scheme};

/// What the bridge needs from a request, before any Python object exists.
#[derive(Debug, Clone, Copy)]
pub struct CgiEnviron<'a> {
    /// The CGI/HTTP variables as the server normalised them, in order.
    pub vars: &'a [Param],
    /// `wsgi.url_scheme` is `https`.
    pub https: bool,
    /// The declared body length; `None` means "read to the end of STDIN".
    pub content_length: Option<u64>,
    /// `REQUEST_METHOD` is `HEAD`: the response carries headers only.
    pub head: bool,
}

impl<'a> CgiEnviron<'a> {
    /// Reads the request the server handed over.
    pub fn of(request: &'a Request) -> CgiEnviron<'a> {
        CgiEnviron {
            vars: &request.params,
            https: request.url_scheme == Scheme::Https,
            content_length: request.content_length,
            head: request.param(b"REQUEST_METHOD") == Some(b"HEAD"),
        }
    }
}

/// `METHOD /path` for log lines: the method and the path without its query string.
pub fn log_target(params: &[Param]) -> String {
    let find = |name: &[u8]| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    let method = find(b"REQUEST_METHOD").unwrap_or(b"-");
    let path: Cow<'_, [u8]> = match find(b"REQUEST_URI") {
        Some(uri) => Cow::Borrowed(uri.split(|&b| b == b'?').next().unwrap_or(uri)),
        None => {
            let mut p = find(b"SCRIPT_NAME").unwrap_or(b"").to_vec();
            p.extend_from_slice(find(b"PATH_INFO").unwrap_or(b""));
            Cow::Owned(p)
        }
    };
    format!("{} {}", latin1(method), latin1(&path).escape_debug())
}

/// Bytes as latin-1 text (every byte is one char), for messages.
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Environ names we intern: CGI/IIS server variables and common request headers. Only these
/// become interned strings; a name a client invents gets a fresh, collectable `str`.
const KNOWN_KEYS: &[&str] = &[
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "SERVER_ADDR",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "REMOTE_HOST",
    "REMOTE_USER",
    "AUTH_TYPE",
    "REQUEST_URI",
    "DOCUMENT_URI",
    "DOCUMENT_ROOT",
    "GATEWAY_INTERFACE",
    "HTTPS",
    "REQUEST_SCHEME",
    "PATH_TRANSLATED",
    "SCRIPT_FILENAME",
    "REDIRECT_STATUS",
    "SERVER_PORT_SECURE",
    "APPL_MD_PATH",
    "APPL_PHYSICAL_PATH",
    "INSTANCE_ID",
    "INSTANCE_META_PATH",
    "LOGON_USER",
    "URL",
    "LOCAL_ADDR",
    "ALL_HTTP",
    "ALL_RAW",
    "AUTH_PASSWORD",
    "AUTH_USER",
    "CACHE_URL",
    "UNMAPPED_REMOTE_USER",
    "HTTPS_KEYSIZE",
    "HTTPS_SECRETKEYSIZE",
    "HTTPS_SERVER_ISSUER",
    "HTTPS_SERVER_SUBJECT",
    "CERT_COOKIE",
    "CERT_FLAGS",
    "CERT_ISSUER",
    "CERT_KEYSIZE",
    "CERT_SECRETKEYSIZE",
    "CERT_SERIALNUMBER",
    "CERT_SERVER_ISSUER",
    "CERT_SERVER_SUBJECT",
    "CERT_SUBJECT",
    "IIS_WasUrlRewritten",
    "HTTP_URL",
    "HTTP_VERSION",
    "REQUEST_ID",
    "HTTP_HOST",
    "HTTP_USER_AGENT",
    "HTTP_ACCEPT",
    "HTTP_ACCEPT_ENCODING",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_ACCEPT_CHARSET",
    "HTTP_CONNECTION",
    "HTTP_COOKIE",
    "HTTP_REFERER",
    "HTTP_ORIGIN",
    "HTTP_CACHE_CONTROL",
    "HTTP_PRAGMA",
    "HTTP_AUTHORIZATION",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_RANGE",
    "HTTP_RANGE",
    "HTTP_DNT",
    "HTTP_TE",
    "HTTP_PRIORITY",
    "HTTP_EXPECT",
    "HTTP_UPGRADE_INSECURE_REQUESTS",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_REAL_IP",
    "HTTP_X_REQUESTED_WITH",
    "HTTP_X_ORIGINAL_URL",
    "HTTP_X_CSRFTOKEN",
    "HTTP_SEC_FETCH_SITE",
    "HTTP_SEC_FETCH_MODE",
    "HTTP_SEC_FETCH_DEST",
    "HTTP_SEC_FETCH_USER",
    "HTTP_SEC_CH_UA",
    "HTTP_SEC_CH_UA_MOBILE",
    "HTTP_SEC_CH_UA_PLATFORM",
    "HTTP_CONTENT_MD5",
    "HTTP_KEEP_ALIVE",
    "HTTP_VIA",
];

/// FNV-1a: the key table is fixed at start, so lookups with client-chosen names cannot degrade
/// it, and a cheap hash keeps the per-param cost low.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The per-process part of every environ: the base dict and the key table.
pub(super) struct EnvironTemplate {
    base: Py<PyDict>,
    keys: HashMap<&'static [u8], Py<PyString>, BuildHasherDefault<Fnv>>,
    wsgi_input: Py<PyString>,
    url_scheme: Py<PyString>,
    https: Py<PyString>,
}

/// The constant entries of the base environ.
pub(super) struct BaseEntries<'py> {
    /// `wsgi.errors`.
    pub errors: Bound<'py, PyAny>,
    /// `wsgi.file_wrapper`.
    pub file_wrapper: Bound<'py, PyAny>,
    /// `wsgi.multithread`.
    pub multithread: bool,
    /// `wsgi.multiprocess`.
    pub multiprocess: bool,
    /// `SERVER_SOFTWARE`, used when the web server sends none.
    pub server_software: &'py str,
}

impl EnvironTemplate {
    /// Builds the base dict (wsgi.* constants) and interns the known keys. Main thread, once.
    pub(super) fn new(py: Python<'_>, entries: BaseEntries<'_>) -> PyResult<EnvironTemplate> {
        let base = PyDict::new(py);
        base.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
        base.set_item("wsgi.url_scheme", "http")?;
        base.set_item("wsgi.errors", entries.errors)?;
        base.set_item("wsgi.file_wrapper", entries.file_wrapper)?;
        base.set_item("wsgi.input_terminated", PyBool::new(py, true))?;
        base.set_item("wsgi.multithread", PyBool::new(py, entries.multithread))?;
        base.set_item("wsgi.multiprocess", PyBool::new(py, entries.multiprocess))?;
        base.set_item("wsgi.run_once", PyBool::new(py, false))?;
        base.set_item("SERVER_SOFTWARE", entries.server_software)?;
        let mut keys = HashMap::with_capacity_and_hasher(KNOWN_KEYS.len(), Default::default());
        for key in KNOWN_KEYS {
            keys.insert(key.as_bytes(), PyString::intern(py, key).unbind());
        }
        Ok(EnvironTemplate {
            base: base.unbind(),
            keys,
            wsgi_input: PyString::intern(py, "wsgi.input").unbind(),
            url_scheme: PyString::intern(py, "wsgi.url_scheme").unbind(),
            https: PyString::intern(py, "https").unbind(),
        })
    }

    /// One request's environ: `PyDict_Copy` of the base, then one `set_item` per variable.
    pub(super) fn build<'py>(
        &self,
        py: Python<'py>,
        cgi: &CgiEnviron<'_>,
        input: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = self.base.bind(py).copy()?;
        for (name, value) in cgi.vars {
            let value = decode_latin1(py, value)?;
            match self.keys.get(name.as_slice()) {
                Some(key) => env.set_item(key.bind(py), value)?,
                None => env.set_item(decode_latin1(py, name)?, value)?,
            }
        }
        if cgi.https {
            env.set_item(self.url_scheme.bind(py), self.https.bind(py))?;
        }
        env.set_item(self.wsgi_input.bind(py), input)?;
        Ok(env)
    }
}

/// `bytes.decode("latin-1")` in one pass, without a `bytes` object in between.
pub(super) fn decode_latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let len = ffi::Py_ssize_t::try_from(bytes.len())
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("value too long"))?;
    // SAFETY: the pointer and length describe `bytes`, which outlives the call; latin-1
    // decoding cannot fail on content, so a NULL return only means an allocation failure,
    // which `from_owned_ptr_or_err` turns into the pending Python exception.
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(bytes.as_ptr().cast(), len, std::ptr::null());
        Bound::from_owned_ptr_or_err(py, ptr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &[u8])]) -> Vec<Param> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    mod of_request {
        use super::*;

        fn request(pairs: &[(&str, &[u8])], scheme: Scheme, length: Option<u64>) -> Request {
            Request {
                id: 1,
                params: params(pairs),
                raw_params: Vec::new(),
                url_scheme: scheme,
                content_length: length,
                mode: crate::runtime::server::Mode::Generic,
                transport: "test",
                single_connection: false,
                log_id: 1,
            }
        }

        #[test]
        fn reads_scheme_length_and_params_as_the_server_normalised_them() {
            let r = request(
                &[("REQUEST_METHOD", b"POST"), ("HTTP_X_T", b"caf\xe9")],
                Scheme::Https,
                Some(3),
            );
            let env = CgiEnviron::of(&r);
            assert!(env.https);
            assert_eq!(env.content_length, Some(3));
            assert!(!env.head);
            assert_eq!(env.vars, r.params.as_slice());
        }

        #[test]
        fn head_requests_are_flagged() {
            let r = request(&[("REQUEST_METHOD", b"HEAD")], Scheme::Http, None);
            assert!(CgiEnviron::of(&r).head);
            assert!(!CgiEnviron::of(&r).https);
        }
    }

    mod log_target {
        use super::*;

        #[test]
        fn uses_request_uri_without_query() {
            let p = params(&[
                ("REQUEST_METHOD", b"GET"),
                ("REQUEST_URI", b"/a/b?secret=1"),
            ]);
            assert_eq!(log_target(&p), "GET /a/b");
        }

        #[test]
        fn falls_back_to_script_name_and_path_info() {
            let p = params(&[
                ("REQUEST_METHOD", b"POST"),
                ("SCRIPT_NAME", b"/app"),
                ("PATH_INFO", b"/x"),
            ]);
            assert_eq!(log_target(&p), "POST /app/x");
        }
    }

    #[test]
    fn latin1_maps_each_byte_to_one_char() {
        assert_eq!(latin1(b"caf\xe9"), "café");
    }

    mod dict {
        use super::super::super::Mode;
        use super::super::super::testing::{Req, TestApp};

        const APP: &str = r#"
def app(environ, start_response):
    q = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if q == "types":
        bad = [k for k, v in environ.items() if "." not in k and type(v) is not str]
        return [repr((type(environ) is dict, bad)).encode()]
    if q == "wsgi":
        keys = ["wsgi.version", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess",
                "wsgi.run_once", "wsgi.input_terminated"]
        return [repr([environ[k] for k in keys]).encode()]
    return [repr(environ.get(q)).encode()]
"#;

        fn get(t: &TestApp, req: Req, key: &str) -> String {
            let path = req.path.clone();
            t.call(Req {
                query: key.to_owned(),
                path,
                ..req
            })
            .text()
        }

        #[test]
        fn environ_is_a_plain_dict_of_str_values() {
            let t = TestApp::new(APP);
            let req = Req::get("/").header("X-T", b"caf\xe9");
            assert_eq!(get(&t, req, "types"), "(True, [])");
        }

        #[test]
        fn wsgi_keys_follow_the_mode_and_https() {
            let t = TestApp::new(APP);
            assert_eq!(
                get(&t, Req::get("/"), "wsgi"),
                "[(1, 0), 'http', False, True, False, True]"
            );
            let https = Req::get("/").header("HTTPS", b"on");
            assert_eq!(
                get(&t, https, "wsgi"),
                "[(1, 0), 'https', False, True, False, True]"
            );
            let off = Req::get("/").header("HTTPS", b"off");
            assert!(get(&t, off, "wsgi").contains("'http'"));
            let threaded = TestApp::with(APP, Mode::socket(4, 1));
            assert_eq!(
                get(&threaded, Req::get("/"), "wsgi"),
                "[(1, 0), 'http', True, False, False, True]"
            );
        }

        #[test]
        fn header_values_decode_as_latin1() {
            let t = TestApp::new(APP);
            assert_eq!(
                get(&t, Req::get("/").header("X-T", b"caf\xe9"), "HTTP_X_T"),
                "'caf\u{e9}'"
            );
            let raw = Req::get("/").header("X-Custom-Header", b"v");
            assert_eq!(get(&t, raw, "HTTP_X_CUSTOM_HEADER"), "'v'");
            // The server percent-decodes `/%E2%82%AC`; its three bytes stay three latin-1 chars.
            let euro = Req::get("").header("PATH_INFO", b"/\xe2\x82\xac");
            assert_eq!(get(&t, euro, "PATH_INFO"), "'/\u{e2}\\x82\u{ac}'");
        }

        #[test]
        fn server_port_is_a_string_and_query_string_is_present() {
            let t = TestApp::new(APP);
            assert_eq!(get(&t, Req::get("/"), "SERVER_PORT"), "'8080'");
        }

        #[test]
        fn http_content_headers_never_reach_the_app() {
            let t = TestApp::new(APP);
            let req = Req::post("/", b"x").header("Content-Type", b"text/plain");
            assert_eq!(get(&t, req.clone(), "HTTP_CONTENT_TYPE"), "None");
            assert_eq!(get(&t, req.clone(), "HTTP_CONTENT_LENGTH"), "None");
            assert_eq!(get(&t, req, "CONTENT_TYPE"), "'text/plain'");
        }

        #[test]
        fn malformed_content_length_is_a_400_without_calling_the_app() {
            let t = TestApp::new(APP);
            let r = t.call(Req::get("/").header("CONTENT_LENGTH", b"abc"));
            assert_eq!(r.code(), 400);
            let r = t.call(Req::get("/").header("CONTENT_LENGTH", b"-1"));
            assert_eq!(r.code(), 400);
        }
    }
}
