//! The environ rules: turns the params a web server sent into the CGI variables an app may
//! trust, as byte pairs (the WSGI bridge decodes them as latin-1 later).
//!
//! Pure functions only: no I/O, no logging, no globals. Things worth a log line (a fallback
//! was used, the app prefix did not match) come back as [`Notes`]; the server logs each kind
//! once per process.
//!
//! Two modes, chosen per request by [`Mode::of`]:
//! - **IIS** (`APPL_MD_PATH` present): `iis-runtime.md` §6.4. The raw target comes from
//!   `HTTP_X_ORIGINAL_URL` (only after a URL Rewrite, by default), else `REQUEST_URI`, else
//!   `URL`; it is cut at `?`, stripped of scheme and authority, percent-decoded to bytes and
//!   cleared of dot-segments; `SCRIPT_NAME` is the app prefix from `APPL_MD_PATH` as spelled in
//!   the request and `PATH_INFO` the rest. IIS's own `PATH_INFO` is ANSI-mangled and never used.
//! - **Generic** (nginx, lighttpd, HAProxy, Apache: `fastcgi-protocol.md` §10): the server's
//!   `SCRIPT_NAME`/`PATH_INFO` are kept, unless a mount point is configured, in which case the
//!   IIS rule runs on `REQUEST_URI` with the mount point as the prefix. One exception
//!   (serving-behind-web-servers.md §1): with no `PATH_INFO` and a `SCRIPT_NAME` equal to the
//!   request's path (`DOCUMENT_URI`, else `REQUEST_URI` without its query), which is what
//!   nginx's stock `fastcgi_params`, HAProxy without `path-info` and Apache at `/` send, the
//!   app is mounted at `/`: `SCRIPT_NAME` `""`, `PATH_INFO` the path. An explicit
//!   `PATH_INFO`, even empty, is trusted.
//!
//! In both modes: `CONTENT_LENGTH` `""` is removed and non-digits are a 400;
//! `HTTP_CONTENT_LENGTH`/`HTTP_CONTENT_TYPE` are dropped (used only to fill a missing
//! `CONTENT_LENGTH`/`CONTENT_TYPE`); a repeated name keeps its last value, except repeated
//! `HTTP_*` headers, which are joined with `", "` (`"; "` for `HTTP_COOKIE`) so no header value is
//! lost; the scheme is `https` iff `HTTPS` is `on` (IIS always sends `HTTPS`, `off` on plain
//! HTTP; the variable itself passes through).

use std::fmt;

/// One CGI/FastCGI parameter: raw name and value bytes.
pub type Param = (Vec<u8>, Vec<u8>);

/// When `HTTP_X_ORIGINAL_URL` supplies the request path (`iis-runtime.md` §6.4 step 1).
///
/// The header is an ordinary request header any client can send, so trusting it
/// unconditionally lets clients choose the route (CVE-2018-14773).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginalUrlPolicy {
    /// Only when IIS URL Rewrite says it rewrote the request (`IIS_WasUrlRewritten=1`).
    #[default]
    Auto,
    /// Whenever it is non-empty (ARR front ends, or rewrite setups where
    /// `IIS_WasUrlRewritten` is not delivered).
    Always,
    /// Never; the path always comes from `REQUEST_URI`.
    Never,
}

impl OriginalUrlPolicy {
    /// The names accepted on the command line, in the order they are documented.
    pub const NAMES: [&'static str; 3] = ["auto", "always", "never"];

    /// Parses `auto`, `always` or `never`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "always" => Some(Self::Always),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// How the environ is normalised; fixed for the process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironOptions {
    /// The `HTTP_X_ORIGINAL_URL` policy (IIS mode).
    pub original_url: OriginalUrlPolicy,
    /// The app prefix: replaces the one derived from `APPL_MD_PATH` in IIS mode, and is the
    /// mount point in generic mode (where it switches on the IIS path rule). Normalised with
    /// [`normalise_prefix`]; `None` means "derive" (IIS) or "keep the server's" (generic).
    pub prefix: Option<Vec<u8>>,
}

/// Which rule set a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The request came from IIS's FastCGI module.
    Iis,
    /// Any other FastCGI client.
    Generic,
}

impl Mode {
    /// IIS always sends `APPL_MD_PATH` (the first name of its fixed table); no other web server
    /// does. Params come from the web server, not the HTTP client, so this cannot be spoofed
    /// through a header (headers arrive as `HTTP_*`).
    pub fn of(params: &[Param]) -> Self {
        if params.iter().any(|(n, _)| n == b"APPL_MD_PATH") {
            Mode::Iis
        } else {
            Mode::Generic
        }
    }
}

/// The URL scheme an app should see (`wsgi.url_scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Things the caller should log once per process (they are not errors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notes {
    /// Neither the original URL nor `REQUEST_URI` was usable; the path came from `URL`, which
    /// IIS has already decoded (and possibly rewritten to a default document).
    pub used_url_fallback: bool,
    /// No raw target at all: the path is empty.
    pub no_target: bool,
    /// The request path does not start with the app prefix: `SCRIPT_NAME` is empty.
    pub prefix_mismatch: bool,
    /// `APPL_MD_PATH` has no `/ROOT` segment, so the prefix is empty.
    pub no_root_segment: bool,
    /// Generic mode: no `PATH_INFO` and `SCRIPT_NAME` was the whole request path (nginx's
    /// stock `fastcgi_params`), so the app was mounted at `/`.
    pub root_mount_inferred: bool,
}

/// The normalised environ of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environ {
    /// The CGI variables, in arrival order (a repeated name sits where it first appeared).
    pub params: Vec<Param>,
    /// `https` iff the request came over TLS.
    pub url_scheme: Scheme,
    /// The declared body length, if any (`None`: read to the end of STDIN).
    pub content_length: Option<u64>,
    /// Which rule set applied.
    pub mode: Mode,
    /// What the caller should log once.
    pub notes: Notes,
}

impl Environ {
    /// The value of `name`, if present.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        get(&self.params, name)
    }
}

/// Why a request cannot be handed to the app. Each maps to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvironError {
    /// The decoded path contains a NUL byte (`%00`).
    NulInPath,
    /// `CONTENT_LENGTH` is neither empty nor a decimal number that fits in 64 bits.
    BadContentLength,
}

impl EnvironError {
    /// The HTTP status line to answer with.
    pub fn status(self) -> &'static str {
        "400 Bad Request"
    }
}

impl fmt::Display for EnvironError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EnvironError::NulInPath => "the request path contains a NUL byte (%00)",
            EnvironError::BadContentLength => "CONTENT_LENGTH is not a decimal number",
        })
    }
}

impl std::error::Error for EnvironError {}

/// The last value of `name` in `params`.
pub fn get<'a>(params: &'a [Param], name: &[u8]) -> Option<&'a [u8]> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Normalises the params of one request, keeping `raw` intact.
pub fn normalise(raw: &[Param], options: &EnvironOptions) -> Result<Environ, EnvironError> {
    normalise_owned(raw.to_vec(), options)
}

/// Normalises the params of one request, reusing their buffers (no copy of a name or value
/// that passes through unchanged).
pub fn normalise_owned(raw: Vec<Param>, options: &EnvironOptions) -> Result<Environ, EnvironError> {
    let mode = Mode::of(&raw);
    let mut notes = Notes::default();
    let mut params = merge_duplicates(raw);

    // Body headers: the CGI variables win; the HTTP_ copies only fill gaps, then go.
    let http_cl = take(&mut params, b"HTTP_CONTENT_LENGTH");
    let http_ct = take(&mut params, b"HTTP_CONTENT_TYPE");
    if get(&params, b"CONTENT_LENGTH").is_none()
        && let Some(v) = http_cl
    {
        params.push((b"CONTENT_LENGTH".to_vec(), v));
    }
    if get(&params, b"CONTENT_TYPE").is_none()
        && let Some(v) = http_ct
    {
        params.push((b"CONTENT_TYPE".to_vec(), v));
    }
    let content_length = match get(&params, b"CONTENT_LENGTH") {
        None => None,
        Some([]) => {
            take(&mut params, b"CONTENT_LENGTH");
            None
        }
        Some(v) => Some(parse_decimal(v).ok_or(EnvironError::BadContentLength)?),
    };

    // `HTTPS=off` stays as IIS sent it (apps ported from wfastcgi compare it to "on"); the
    // scheme is what frameworks read.
    let url_scheme = scheme(&params, mode);

    let split = match mode {
        Mode::Iis => {
            let target = raw_target(&params, options.original_url, &mut notes);
            let prefix = match &options.prefix {
                Some(p) => p.clone(),
                None => match get(&params, b"APPL_MD_PATH").map(app_prefix) {
                    Some(Some(p)) => p,
                    _ => {
                        notes.no_root_segment = true;
                        Vec::new()
                    }
                },
            };
            Some((target, prefix))
        }
        Mode::Generic => options.prefix.as_ref().map(|prefix| {
            let target = match get(&params, b"REQUEST_URI") {
                Some(t) if !t.is_empty() => t.to_vec(),
                _ => {
                    notes.no_target = true;
                    Vec::new()
                }
            };
            (target, prefix.clone())
        }),
    };
    if let Some((target, prefix)) = split {
        let path = decode_path(&target)?;
        let (script_name, path_info) = split_prefix(&path, &prefix);
        if script_name.is_empty() && !prefix.is_empty() {
            notes.prefix_mismatch = true;
        }
        set(&mut params, b"SCRIPT_NAME", script_name.to_vec());
        set(&mut params, b"PATH_INFO", path_info.to_vec());
    } else {
        // Generic mode without a mount point: the server's values, made present.
        if let Some(path) = whole_path_as_script_name(&params)? {
            notes.root_mount_inferred = true;
            set(&mut params, b"SCRIPT_NAME", Vec::new());
            params.push((b"PATH_INFO".to_vec(), path));
        }
        if get(&params, b"SCRIPT_NAME") == Some(b"/") {
            set(&mut params, b"SCRIPT_NAME", Vec::new());
        }
        for name in [&b"SCRIPT_NAME"[..], b"PATH_INFO"] {
            if get(&params, name).is_none() {
                params.push((name.to_vec(), Vec::new()));
            }
        }
    }
    if get(&params, b"QUERY_STRING").is_none() {
        params.push((b"QUERY_STRING".to_vec(), Vec::new()));
    }

    Ok(Environ {
        params,
        url_scheme,
        content_length,
        mode,
        notes,
    })
}

/// The request path, when a generic server sent no `PATH_INFO` and a `SCRIPT_NAME` equal to
/// that path (module doc): `DOCUMENT_URI` when the server sends it (nginx, HAProxy; after an
/// nginx `rewrite` it is the rewritten path, as is `SCRIPT_NAME`), else `REQUEST_URI` without
/// its query, raw or decoded. The result is the decoded path.
fn whole_path_as_script_name(params: &[Param]) -> Result<Option<Vec<u8>>, EnvironError> {
    if get(params, b"PATH_INFO").is_some() {
        return Ok(None);
    }
    let Some(script_name) = get(params, b"SCRIPT_NAME").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Some(document_uri) = get(params, b"DOCUMENT_URI") {
        return Ok((script_name == document_uri).then(|| script_name.to_vec()));
    }
    let Some(target) = get(params, b"REQUEST_URI") else {
        return Ok(None);
    };
    let raw = strip_scheme_authority(cut_query(target));
    if script_name == raw {
        return decode_path(raw).map(Some);
    }
    // A path that does not decode (`%00`) is not the one the server matched.
    Ok(decode_path(raw)
        .ok()
        .filter(|decoded| decoded.as_slice() == script_name))
}

/// Trims a configured prefix to the form [`split_prefix`] expects: leading `/`, no trailing
/// `/`, `""` for the root.
pub fn normalise_prefix(prefix: &[u8]) -> Vec<u8> {
    let trimmed = trim_trailing_slashes(prefix);
    if trimmed.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] != b'/' {
        out.push(b'/');
    }
    out.extend_from_slice(trimmed);
    out
}

fn trim_trailing_slashes(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'/'] = s {
        s = rest;
    }
    s
}

/// Removes every pair named `name`, returning the last value.
fn take(params: &mut Vec<Param>, name: &[u8]) -> Option<Vec<u8>> {
    let mut last = None;
    params.retain_mut(|(n, v)| {
        if n == name {
            last = Some(std::mem::take(v));
            false
        } else {
            true
        }
    });
    last
}

/// Replaces the value of `name`, or appends the pair.
fn set(params: &mut Vec<Param>, name: &[u8], value: Vec<u8>) {
    match params.iter_mut().find(|(n, _)| n == name) {
        Some((_, v)) => *v = value,
        None => params.push((name.to_vec(), value)),
    }
}

/// One entry per name, at its first position. The last value wins, except for `HTTP_*`
/// headers, whose values are joined as HTTP joins repeated fields.
fn merge_duplicates(raw: Vec<Param>) -> Vec<Param> {
    let mut out: Vec<Param> = Vec::with_capacity(raw.len() + 2);
    for (name, value) in raw {
        // Params sets are small (IIS sends ~60): a linear scan beats hashing here.
        match out.iter_mut().find(|(n, _)| *n == name) {
            None => out.push((name, value)),
            Some((_, existing)) if name.starts_with(b"HTTP_") => {
                if existing.is_empty() {
                    *existing = value;
                } else if !value.is_empty() {
                    let sep: &[u8] = if name == b"HTTP_COOKIE" { b"; " } else { b", " };
                    existing.extend_from_slice(sep);
                    existing.extend_from_slice(&value);
                }
            }
            Some((_, existing)) => *existing = value,
        }
    }
    out
}

/// IIS: `https` iff `HTTPS` is `on` (any case); it sends `off` on plain HTTP. Other servers
/// also signal TLS with `HTTPS=1` or `REQUEST_SCHEME=https`.
fn scheme(params: &[Param], mode: Mode) -> Scheme {
    let https = get(params, b"HTTPS").unwrap_or_default();
    let tls = https.eq_ignore_ascii_case(b"on")
        || (mode == Mode::Generic
            && (https == b"1"
                || get(params, b"REQUEST_SCHEME")
                    .is_some_and(|s| s.eq_ignore_ascii_case(b"https"))));
    if tls { Scheme::Https } else { Scheme::Http }
}

/// §6.4 step 1: which variable holds the client's request target.
fn raw_target(params: &[Param], policy: OriginalUrlPolicy, notes: &mut Notes) -> Vec<u8> {
    let original = get(params, b"HTTP_X_ORIGINAL_URL").filter(|v| !v.is_empty());
    let rewritten = get(params, b"IIS_WasUrlRewritten") == Some(b"1");
    let use_original = match policy {
        OriginalUrlPolicy::Auto => rewritten,
        OriginalUrlPolicy::Always => true,
        OriginalUrlPolicy::Never => false,
    };
    if use_original && let Some(v) = original {
        return v.to_vec();
    }
    if let Some(v) = get(params, b"REQUEST_URI").filter(|v| !v.is_empty()) {
        return v.to_vec();
    }
    if let Some(v) = get(params, b"URL").filter(|v| !v.is_empty()) {
        notes.used_url_fallback = true;
        return v.to_vec();
    }
    notes.no_target = true;
    Vec::new()
}

/// §6.4 step 5: the part of `APPL_MD_PATH` after its `/ROOT` segment (case-insensitive),
/// without a trailing slash. `None` if there is no such segment.
pub fn app_prefix(appl_md_path: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    while let Some(pos) = find_ci(&appl_md_path[at..], b"/root") {
        let start = at + pos;
        let end = start + 5;
        if end == appl_md_path.len() || appl_md_path[end] == b'/' {
            return Some(normalise_prefix(&appl_md_path[end..]));
        }
        at = start + 1;
    }
    None
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// §6.4 steps 2–4: the decoded, dot-segment-free path of a request target.
pub fn decode_path(target: &[u8]) -> Result<Vec<u8>, EnvironError> {
    let path = strip_scheme_authority(cut_query(target));
    let decoded = percent_decode(path);
    if decoded.contains(&0) {
        return Err(EnvironError::NulInPath);
    }
    Ok(remove_dot_segments(&decoded))
}

fn cut_query(target: &[u8]) -> &[u8] {
    match target.iter().position(|&b| b == b'?') {
        Some(q) => &target[..q],
        None => target,
    }
}

/// `http://host:80/a` → `/a`; `https://host` → `/`. Anything that does not start with
/// `scheme://` is returned unchanged (`//a` is a path with an empty first segment here).
fn strip_scheme_authority(target: &[u8]) -> &[u8] {
    let Some(colon) = target.iter().position(|&b| b == b':') else {
        return target;
    };
    let scheme = &target[..colon];
    let is_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !is_scheme || !target[colon + 1..].starts_with(b"//") {
        return target;
    }
    let authority_start = colon + 3;
    match target[authority_start..].iter().position(|&b| b == b'/') {
        Some(slash) => &target[authority_start + slash..],
        None => b"/",
    }
}

/// Decodes `%XX` escapes to bytes; an invalid escape (`%zz`, a trailing `%`) stays as it is.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%'
            && let (Some(&h), Some(&l)) = (input.get(i + 1), input.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 on bytes. Empty segments (repeated slashes) are kept.
pub fn remove_dot_segments(input: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len());
    let mut rest = input;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(b"../") {
            // A. leading "../" or "./"
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"./") {
            rest = r;
        } else if rest.starts_with(b"/./") {
            // B. "/./" → "/"
            rest = &rest[2..];
        } else if rest == b"/." {
            out.push(b'/');
            rest = b"";
        } else if rest.starts_with(b"/../") {
            // C. "/../" → "/", dropping the last output segment
            rest = &rest[3..];
            pop_segment(&mut out);
        } else if rest == b"/.." {
            pop_segment(&mut out);
            out.push(b'/');
            rest = b"";
        } else if rest == b"." || rest == b".." {
            // D.
            rest = b"";
        } else {
            // E. move the first segment, with its leading "/" if any, to the output
            let start = usize::from(rest[0] == b'/');
            let end = rest[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(rest.len(), |p| p + start);
            out.extend_from_slice(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

fn pop_segment(out: &mut Vec<u8>) {
    let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
    out.truncate(cut);
}

/// §6.4 step 6: `(SCRIPT_NAME, PATH_INFO)` with `SCRIPT_NAME + PATH_INFO == path`.
/// `SCRIPT_NAME` is the prefix as spelled in `path` when `path` starts with `prefix`
/// (ASCII case-insensitive, ending at `/` or the end); otherwise it is empty.
pub fn split_prefix<'a>(path: &'a [u8], prefix: &[u8]) -> (&'a [u8], &'a [u8]) {
    let prefix = trim_trailing_slashes(prefix);
    if prefix.is_empty() {
        return (b"", path);
    }
    let n = prefix.len();
    if path.len() >= n
        && path[..n].eq_ignore_ascii_case(prefix)
        && (path.len() == n || path[n] == b'/')
    {
        (&path[..n], &path[n..])
    } else {
        (b"", path)
    }
}

/// Parses a non-empty run of ASCII digits into a `u64`.
fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<Param> {
        pairs
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// The params IIS sends for `GET <uri>` to the application at `APPL_MD_PATH` `md`, with
    /// IIS's own (ANSI, full-path) PATH_INFO/SCRIPT_NAME/URL values.
    fn iis(md: &str, uri: &str, extra: &[(&str, &str)]) -> Vec<Param> {
        let path = uri.split('?').next().unwrap_or_default();
        let query = uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let mut v = p(&[
            ("HTTP_CONTENT_LENGTH", "0"),
            ("HTTP_HOST", "www.example.com"),
            ("APPL_MD_PATH", md),
            ("APPL_PHYSICAL_PATH", "C:\\inetpub\\wwwroot\\shop\\"),
            ("CONTENT_LENGTH", "0"),
            ("CONTENT_TYPE", ""),
            ("HTTPS", "off"),
            ("PATH_INFO", "/garbled?ansi"),
            ("QUERY_STRING", query),
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", uri),
            ("SCRIPT_NAME", path),
            ("URL", path),
        ]);
        v.extend(p(extra));
        v
    }

    fn env(params: &[Param]) -> Environ {
        normalise(params, &EnvironOptions::default()).expect("valid request")
    }

    fn sn_pi(e: &Environ) -> (String, String) {
        let s = |n: &[u8]| String::from_utf8_lossy(e.get(n).expect("present")).into_owned();
        (s(b"SCRIPT_NAME"), s(b"PATH_INFO"))
    }

    mod iis_paths {
        use super::*;

        #[test]
        fn root_app_gets_empty_script_name_and_full_path_info() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/cart/items?id=7", &[]));
            assert_eq!(sn_pi(&e), ("".into(), "/cart/items".into()));
            assert_eq!(e.mode, Mode::Iis);
            assert_eq!(e.get(b"QUERY_STRING"), Some(&b"id=7"[..]));
        }

        #[test]
        fn root_app_request_for_slash_gets_path_info_slash() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/", &[]));
            assert_eq!(sn_pi(&e), ("".into(), "/".into()));
        }

        #[test]
        fn sub_application_prefix_becomes_script_name() {
            let e = env(&iis("/LM/W3SVC/1/ROOT/shop", "/shop/cart?id=7", &[]));
            assert_eq!(sn_pi(&e), ("/shop".into(), "/cart".into()));
            assert_eq!(e.notes, Notes::default());
        }

        #[test]
        fn sub_application_root_request_has_empty_path_info() {
            let e = env(&iis("/LM/W3SVC/1/ROOT/shop", "/shop", &[]));
            assert_eq!(sn_pi(&e), ("/shop".into(), "".into()));
            let e = env(&iis("/LM/W3SVC/1/ROOT/shop", "/shop/", &[]));
            assert_eq!(sn_pi(&e), ("/shop".into(), "/".into()));
        }

        #[test]
        fn nested_sub_application_prefix_is_every_segment_after_root() {
            let e = env(&iis("/LM/W3SVC/3/ROOT/apps/shop", "/apps/shop/x", &[]));
            assert_eq!(sn_pi(&e), ("/apps/shop".into(), "/x".into()));
        }

        #[test]
        fn prefix_keeps_the_spelling_of_the_request() {
            let e = env(&iis("/LM/W3SVC/1/root/Shop", "/SHOP/Cart", &[]));
            assert_eq!(sn_pi(&e), ("/SHOP".into(), "/Cart".into()));
        }

        #[test]
        fn prefix_must_end_at_a_segment_boundary() {
            let e = env(&iis("/LM/W3SVC/1/ROOT/shop", "/shopping/x", &[]));
            assert_eq!(sn_pi(&e), ("".into(), "/shopping/x".into()));
            assert!(e.notes.prefix_mismatch);
        }

        #[test]
        fn missing_root_segment_gives_empty_prefix_and_a_note() {
            let e = env(&iis("/LM/W3SVC/1", "/a", &[]));
            assert_eq!(sn_pi(&e), ("".into(), "/a".into()));
            assert!(e.notes.no_root_segment);
        }

        #[test]
        fn root_segment_inside_a_name_is_not_the_root() {
            assert_eq!(app_prefix(b"/LM/W3SVC/1/ROOTS/x"), None);
            assert_eq!(
                app_prefix(b"/LM/W3SVC/1/ROOT/rootbeer"),
                Some(b"/rootbeer".to_vec())
            );
            assert_eq!(app_prefix(b"/LM/W3SVC/1/ROOT/"), Some(Vec::new()));
        }

        #[test]
        fn configured_prefix_overrides_appl_md_path() {
            let opts = EnvironOptions {
                prefix: Some(normalise_prefix(b"shop/")),
                ..Default::default()
            };
            let e = normalise(&iis("/LM/W3SVC/1/ROOT", "/shop/a", &[]), &opts).expect("ok");
            assert_eq!(sn_pi(&e), ("/shop".into(), "/a".into()));
        }

        #[test]
        fn non_ascii_percent_encoded_path_decodes_to_utf8_bytes() {
            // "/shop/café/日本" as a browser sends it; IIS's ANSI PATH_INFO would hold '?'.
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT/shop",
                "/shop/caf%C3%A9/%E6%97%A5%E6%9C%AC?q=%C3%A9",
                &[],
            ));
            assert_eq!(e.get(b"SCRIPT_NAME"), Some(&b"/shop"[..]));
            assert_eq!(e.get(b"PATH_INFO"), Some("/café/日本".as_bytes()));
            assert_eq!(e.get(b"QUERY_STRING"), Some(&b"q=%C3%A9"[..]));
        }

        #[test]
        fn path_info_bytes_need_not_be_utf8() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/%FF%FE", &[]));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/\xff\xfe"[..]));
        }

        #[test]
        fn encoded_space_and_slash_are_decoded() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/a%20b/c%2Fd", &[]));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/a b/c/d"[..]));
        }

        #[test]
        fn invalid_escapes_are_kept_as_they_are() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/a%zz/b%4/c%", &[]));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/a%zz/b%4/c%"[..]));
        }

        #[test]
        fn encoded_nul_is_a_bad_request() {
            let err = normalise(&iis("/LM/W3SVC/1/ROOT", "/a%00b", &[]), &Default::default());
            assert_eq!(err, Err(EnvironError::NulInPath));
            assert_eq!(EnvironError::NulInPath.status(), "400 Bad Request");
        }

        #[test]
        fn dot_segments_are_removed_and_repeated_slashes_kept() {
            let e = env(&iis("/LM/W3SVC/1/ROOT/shop", "/shop/a//b/./c/../d", &[]));
            assert_eq!(sn_pi(&e), ("/shop".into(), "/a//b/d".into()));
        }

        #[test]
        fn encoded_dot_segments_cannot_climb_out_of_the_root() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT/shop",
                "/shop/%2e%2e/%2E%2E/etc",
                &[],
            ));
            assert_eq!(sn_pi(&e), ("".into(), "/etc".into()));
        }

        #[test]
        fn absolute_uri_loses_scheme_and_authority() {
            let e = env(&iis("/LM/W3SVC/1/ROOT/shop", "http://h:80/shop/x?q", &[]));
            assert_eq!(sn_pi(&e), ("/shop".into(), "/x".into()));
            let e = env(&iis("/LM/W3SVC/1/ROOT", "https://h", &[]));
            assert_eq!(sn_pi(&e), ("".into(), "/".into()));
        }

        #[test]
        fn leading_double_slash_is_a_path_not_an_authority() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "//evil.example/x", &[]));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"//evil.example/x"[..]));
        }

        #[test]
        fn iis_ansi_path_info_is_never_used() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT",
                "/caf%C3%A9",
                &[("PATH_INFO", "/caf?")],
            ));
            assert_eq!(e.get(b"PATH_INFO"), Some("/café".as_bytes()));
        }

        #[test]
        fn script_name_plus_path_info_is_the_decoded_path() {
            for (md, uri) in [
                ("/LM/W3SVC/1/ROOT", "/"),
                ("/LM/W3SVC/1/ROOT/shop", "/shop"),
                ("/LM/W3SVC/1/ROOT/shop", "/Shop/x%20y/"),
                ("/LM/W3SVC/1/ROOT/a/b", "/a/b//c/./d"),
                ("/LM/W3SVC/1/ROOT/shop", "/other"),
            ] {
                let e = env(&iis(md, uri, &[]));
                let (sn, pi) = sn_pi(&e);
                let decoded = decode_path(uri.as_bytes()).expect("valid");
                assert_eq!(format!("{sn}{pi}").into_bytes(), decoded, "{md} {uri}");
                assert_ne!(sn, "/");
            }
        }
    }

    mod url_rewrite {
        use super::*;

        #[test]
        fn original_url_is_used_when_iis_says_it_rewrote() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT",
                "/index.py?route=a",
                &[
                    ("HTTP_X_ORIGINAL_URL", "/pretty/a%20b?x=1"),
                    ("IIS_WasUrlRewritten", "1"),
                ],
            ));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/pretty/a b"[..]));
            // The query string stays the rewritten one (rewrite rules may rely on it).
            assert_eq!(e.get(b"QUERY_STRING"), Some(&b"route=a"[..]));
            assert_eq!(e.get(b"REQUEST_URI"), Some(&b"/index.py?route=a"[..]));
        }

        #[test]
        fn spoofed_original_url_without_rewrite_is_ignored() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT",
                "/public",
                &[("HTTP_X_ORIGINAL_URL", "/admin")],
            ));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/public"[..]));
        }

        #[test]
        fn was_url_rewritten_other_than_one_does_not_count() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT",
                "/public",
                &[
                    ("HTTP_X_ORIGINAL_URL", "/admin"),
                    ("IIS_WasUrlRewritten", "0"),
                ],
            ));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/public"[..]));
        }

        #[test]
        fn policy_always_trusts_original_url_without_the_flag() {
            let opts = EnvironOptions {
                original_url: OriginalUrlPolicy::Always,
                ..Default::default()
            };
            let params = iis("/LM/W3SVC/1/ROOT", "/x", &[("HTTP_X_ORIGINAL_URL", "/y")]);
            let e = normalise(&params, &opts).expect("ok");
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/y"[..]));
        }

        #[test]
        fn policy_never_ignores_original_url_even_when_rewritten() {
            let opts = EnvironOptions {
                original_url: OriginalUrlPolicy::Never,
                ..Default::default()
            };
            let params = iis(
                "/LM/W3SVC/1/ROOT",
                "/x",
                &[("HTTP_X_ORIGINAL_URL", "/y"), ("IIS_WasUrlRewritten", "1")],
            );
            let e = normalise(&params, &opts).expect("ok");
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/x"[..]));
        }

        #[test]
        fn empty_original_url_falls_back_to_request_uri() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT",
                "/x",
                &[("HTTP_X_ORIGINAL_URL", ""), ("IIS_WasUrlRewritten", "1")],
            ));
            assert_eq!(e.get(b"PATH_INFO"), Some(&b"/x"[..]));
        }

        #[test]
        fn missing_request_uri_falls_back_to_url_with_a_note() {
            let mut params = iis("/LM/W3SVC/1/ROOT/shop", "/ignored", &[]);
            params.retain(|(n, _)| n != b"REQUEST_URI");
            set(&mut params, b"URL", b"/shop/index.py".to_vec());
            let e = env(&params);
            assert_eq!(sn_pi(&e), ("/shop".into(), "/index.py".into()));
            assert!(e.notes.used_url_fallback);
        }

        #[test]
        fn original_url_is_parsed_policy_names() {
            for name in OriginalUrlPolicy::NAMES {
                assert!(OriginalUrlPolicy::parse(name).is_some());
            }
            assert_eq!(OriginalUrlPolicy::parse("yes"), None);
        }
    }

    mod fixups {
        use super::*;

        #[test]
        fn https_off_means_http_and_passes_through() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/", &[]));
            assert_eq!(e.url_scheme, Scheme::Http);
            assert_eq!(e.get(b"HTTPS"), Some(&b"off"[..]));
        }

        #[test]
        fn https_on_in_any_case_means_https() {
            for v in ["on", "ON", "On"] {
                let e = env(&iis("/LM/W3SVC/1/ROOT", "/", &[("HTTPS", v)]));
                assert_eq!(e.url_scheme, Scheme::Https, "{v}");
                assert_eq!(e.get(b"HTTPS"), Some(v.as_bytes()));
            }
        }

        #[test]
        fn iis_https_one_is_not_tls_but_generic_https_one_is() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/", &[("HTTPS", "1")]));
            assert_eq!(e.url_scheme, Scheme::Http);
            let e = env(&p(&[("HTTPS", "1")]));
            assert_eq!(e.url_scheme, Scheme::Https);
            let e = env(&p(&[("REQUEST_SCHEME", "https")]));
            assert_eq!(e.url_scheme, Scheme::Https);
        }

        #[test]
        fn content_length_zero_is_kept() {
            let e = env(&iis("/LM/W3SVC/1/ROOT", "/", &[]));
            assert_eq!(e.get(b"CONTENT_LENGTH"), Some(&b"0"[..]));
            assert_eq!(e.content_length, Some(0));
        }

        #[test]
        fn content_length_empty_is_removed() {
            let e = env(&p(&[("CONTENT_LENGTH", ""), ("REQUEST_URI", "/")]));
            assert_eq!(e.get(b"CONTENT_LENGTH"), None);
            assert_eq!(e.content_length, None);
        }

        #[test]
        fn content_length_not_digits_is_a_bad_request() {
            for bad in ["12a", "-1", " 1", "1 ", "0x10", "99999999999999999999999"] {
                let r = normalise(&p(&[("CONTENT_LENGTH", bad)]), &Default::default());
                assert_eq!(r, Err(EnvironError::BadContentLength), "{bad:?}");
            }
        }

        #[test]
        fn http_content_headers_are_dropped() {
            let e = env(&iis(
                "/LM/W3SVC/1/ROOT",
                "/",
                &[("HTTP_CONTENT_TYPE", "text/plain")],
            ));
            assert_eq!(e.get(b"HTTP_CONTENT_LENGTH"), None);
            assert_eq!(e.get(b"HTTP_CONTENT_TYPE"), None);
            assert_eq!(e.get(b"CONTENT_TYPE"), Some(&b""[..]));
        }

        #[test]
        fn http_content_headers_fill_missing_cgi_variables() {
            let e = env(&p(&[
                ("HTTP_CONTENT_LENGTH", "5"),
                ("HTTP_CONTENT_TYPE", "text/plain"),
            ]));
            assert_eq!(e.get(b"CONTENT_LENGTH"), Some(&b"5"[..]));
            assert_eq!(e.content_length, Some(5));
            assert_eq!(e.get(b"CONTENT_TYPE"), Some(&b"text/plain"[..]));
        }

        #[test]
        fn duplicate_cgi_variable_last_value_wins_at_first_position() {
            let e = env(&p(&[
                ("SCRIPT_NAME", "/index.php"),
                ("REQUEST_METHOD", "GET"),
                ("SCRIPT_NAME", ""),
            ]));
            assert_eq!(e.get(b"SCRIPT_NAME"), Some(&b""[..]));
            assert_eq!(
                e.params.iter().filter(|(n, _)| n == b"SCRIPT_NAME").count(),
                1
            );
            assert_eq!(e.params[0].0, b"SCRIPT_NAME");
        }

        #[test]
        fn duplicate_headers_are_joined_like_http_fields() {
            let e = env(&p(&[
                ("HTTP_ACCEPT", "a"),
                ("HTTP_COOKIE", "x=1"),
                ("HTTP_ACCEPT", "b"),
                ("HTTP_COOKIE", "y=2"),
            ]));
            assert_eq!(e.get(b"HTTP_ACCEPT"), Some(&b"a, b"[..]));
            assert_eq!(e.get(b"HTTP_COOKIE"), Some(&b"x=1; y=2"[..]));
        }

        #[test]
        fn query_string_is_always_present() {
            let e = env(&p(&[("REQUEST_METHOD", "GET")]));
            assert_eq!(e.get(b"QUERY_STRING"), Some(&b""[..]));
        }
    }

    mod generic {
        use super::*;

        #[test]
        fn server_script_name_and_path_info_are_kept() {
            let e = env(&p(&[
                ("REQUEST_URI", "/a%20b/c"),
                ("SCRIPT_NAME", ""),
                ("PATH_INFO", "/a b/c"),
            ]));
            assert_eq!(e.mode, Mode::Generic);
            assert_eq!(sn_pi(&e), ("".into(), "/a b/c".into()));
        }

        #[test]
        fn missing_path_variables_become_empty() {
            let e = env(&p(&[("REQUEST_URI", "/x")]));
            assert_eq!(sn_pi(&e), ("".into(), "".into()));
            let e = env(&p(&[("SCRIPT_NAME", "/"), ("PATH_INFO", "/x")]));
            assert_eq!(sn_pi(&e), ("".into(), "/x".into()));
        }

        /// serving-behind-web-servers.md §1: Debian's `fastcgi_params`, no split.
        fn nginx_stock(uri: &str, document_uri: &str) -> Vec<Param> {
            p(&[
                ("SCRIPT_NAME", document_uri),
                ("REQUEST_URI", uri),
                ("DOCUMENT_URI", document_uri),
                ("QUERY_STRING", ""),
            ])
        }

        #[test]
        fn whole_path_as_script_name_without_path_info_mounts_the_app_at_the_root() {
            let e = env(&nginx_stock("/polls/3/?x=1", "/polls/3/"));
            assert_eq!(sn_pi(&e), ("".into(), "/polls/3/".into()));
            assert!(e.notes.root_mount_inferred);
            let e = env(&nginx_stock("/", "/"));
            assert_eq!(sn_pi(&e), ("".into(), "/".into()), "the root itself");
        }

        #[test]
        fn whole_path_rule_keeps_the_servers_decoded_and_rewritten_path() {
            // nginx decodes $uri; a `rewrite` changes it but not $request_uri.
            let e = env(&nginx_stock("/caf%C3%A9/a%20b", "/café/a b"));
            assert_eq!(sn_pi(&e), ("".into(), "/café/a b".into()));
            let e = env(&nginx_stock("/old/x", "/new/x"));
            assert_eq!(sn_pi(&e), ("".into(), "/new/x".into()));
        }

        #[test]
        fn whole_path_rule_compares_request_uri_raw_or_decoded_without_document_uri() {
            // HAProxy without `path-info` and Apache at `/` send no DOCUMENT_URI.
            let raw = p(&[("SCRIPT_NAME", "/a%20b"), ("REQUEST_URI", "/a%20b?q")]);
            assert_eq!(sn_pi(&env(&raw)), ("".into(), "/a b".into()));
            let decoded = p(&[("SCRIPT_NAME", "/a b"), ("REQUEST_URI", "/a%20b?q")]);
            assert_eq!(sn_pi(&env(&decoded)), ("".into(), "/a b".into()));
            let nul = p(&[("SCRIPT_NAME", "/%00"), ("REQUEST_URI", "/%00")]);
            assert_eq!(
                normalise(&nul, &EnvironOptions::default()),
                Err(EnvironError::NulInPath)
            );
        }

        #[test]
        fn an_explicit_path_info_or_a_script_name_that_is_not_the_path_is_trusted() {
            let split = p(&[
                ("SCRIPT_NAME", "/app"),
                ("PATH_INFO", ""),
                ("REQUEST_URI", "/app"),
                ("DOCUMENT_URI", "/app"),
            ]);
            let e = env(&split);
            assert_eq!(
                sn_pi(&e),
                ("/app".into(), "".into()),
                "a sub-path mount's root"
            );
            assert!(!e.notes.root_mount_inferred);
            let php = p(&[("SCRIPT_NAME", "/index.php"), ("REQUEST_URI", "/x")]);
            assert_eq!(sn_pi(&env(&php)), ("/index.php".into(), "".into()));
        }

        #[test]
        fn a_mount_point_beats_the_whole_path_rule() {
            let opts = EnvironOptions {
                prefix: Some(normalise_prefix(b"/polls")),
                ..Default::default()
            };
            let e = normalise(&nginx_stock("/polls/3/", "/polls/3/"), &opts).expect("ok");
            assert_eq!(sn_pi(&e), ("/polls".into(), "/3/".into()));
            assert!(!e.notes.root_mount_inferred);
        }

        #[test]
        fn mount_point_applies_the_iis_rule_to_request_uri() {
            let opts = EnvironOptions {
                prefix: Some(normalise_prefix(b"/app")),
                ..Default::default()
            };
            let params = p(&[
                ("REQUEST_URI", "/App/caf%C3%A9/../x?y=1"),
                ("SCRIPT_NAME", "/App/café/../x"),
            ]);
            let e = normalise(&params, &opts).expect("ok");
            assert_eq!(sn_pi(&e), ("/App".into(), "/x".into()));
        }

        #[test]
        fn mount_point_with_nul_in_path_is_a_bad_request() {
            let opts = EnvironOptions {
                prefix: Some(b"/app".to_vec()),
                ..Default::default()
            };
            let params = p(&[("REQUEST_URI", "/app/%00")]);
            assert_eq!(normalise(&params, &opts), Err(EnvironError::NulInPath));
        }
    }

    mod pieces {
        use super::*;

        #[test]
        fn remove_dot_segments_matches_rfc_3986_examples() {
            assert_eq!(remove_dot_segments(b"/a/b/c/./../../g"), b"/a/g");
            assert_eq!(remove_dot_segments(b"mid/content=5/../6"), b"mid/6");
            assert_eq!(remove_dot_segments(b"/.."), b"/");
            assert_eq!(remove_dot_segments(b"/a/.."), b"/");
            assert_eq!(remove_dot_segments(b"/a/."), b"/a/");
            assert_eq!(remove_dot_segments(b"/a/..b/.c"), b"/a/..b/.c");
            assert_eq!(remove_dot_segments(b""), b"");
            assert_eq!(remove_dot_segments(b"*"), b"*");
        }

        #[test]
        fn normalise_prefix_adds_leading_and_trims_trailing_slashes() {
            assert_eq!(normalise_prefix(b"/"), b"");
            assert_eq!(normalise_prefix(b""), b"");
            assert_eq!(normalise_prefix(b"shop"), b"/shop");
            assert_eq!(normalise_prefix(b"/shop//"), b"/shop");
        }

        #[test]
        fn decoding_is_total_on_arbitrary_bytes() {
            // Never panics, whatever the input; NUL is the only refusal.
            for input in [
                &b"%"[..],
                b"%%",
                b"%4",
                b"%G0",
                b"http:",
                b"a:b//c",
                b"http://",
                b"?",
            ] {
                let _ = decode_path(input);
            }
        }
    }
}
