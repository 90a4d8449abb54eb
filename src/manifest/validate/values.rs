//! The value checks every section shares: free text, URLs, relative paths, bounded integers,
//! appcmd-safe attribute text and regular expressions, each reporting its own diagnostic.

use regex::Regex;

use super::{Sp, Validator};
use crate::manifest::{
    Diagnostic, HttpUrl, RelPath, describe_char, dotnet_regex, is_windows_device_name,
};

impl Validator<'_> {
    /// Optional free text: trimmed; an empty string counts as absent (with a warning).
    pub(super) fn text(&mut self, s: Option<&Sp<String>>, key: &str) -> Option<String> {
        let s = s?;
        if self.is_todo(s) {
            return None;
        }
        if s.get().trim().is_empty() {
            self.warn(
                s.span(),
                format!("`{key}` is empty"),
                "remove the line or fill it in",
            );
            return None;
        }
        if let Some(c) = s
            .get()
            .chars()
            .find(|c| c.is_control() && *c != '\n' && *c != '\t')
        {
            self.error(
                s.span(),
                format!("`{key}` contains {}", describe_char(c)),
                "remove control characters; they are not allowed in XML",
            );
            return None;
        }
        Some(s.get().trim().to_string())
    }

    pub(super) fn url(&mut self, u: &Sp<String>, key: &str) -> Option<HttpUrl> {
        if self.is_todo(u) {
            return None;
        }
        match check_http_url(u.get()) {
            Ok(()) => Some(HttpUrl(u.get().clone())),
            Err(why) => {
                self.error(
                    u.span(),
                    format!("`{key}` is not an absolute http(s) URL: {why}"),
                    "write the full address, e.g. \"https://example.com/my-app\"",
                );
                None
            }
        }
    }

    /// A path inside the app (or the manifest's folder): relative, `/`, no `..`, Windows-valid.
    pub(super) fn rel_path(&mut self, s: &Sp<String>, key: &str, inside: &str) -> Option<RelPath> {
        if self.is_todo(s) {
            return None;
        }
        match check_rel_path(s.get()) {
            Ok(p) => Some(p),
            Err((why, help)) => {
                let help = help.unwrap_or_else(|| {
                    format!(
                        "paths are relative to {inside}, use `/` between folders and stay inside it"
                    )
                });
                self.error(s.span(), format!("`{key}` {why}"), help);
                None
            }
        }
    }

    pub(super) fn int(
        &mut self,
        v: Option<&Sp<i64>>,
        key: &str,
        range: (i64, i64),
        default: i64,
        why: &str,
    ) -> Option<i64> {
        let Some(v) = v else {
            return Some(default);
        };
        let n = *v.get();
        if n < range.0 || n > range.1 {
            self.error(
                v.span(),
                format!(
                    "`{key}` must be between {} and {}, found {n}",
                    range.0, range.1
                ),
                format!("{why}; the default is {default}"),
            );
            return None;
        }
        Some(n)
    }

    /// A non-empty string without characters that break appcmd or XML quoting.
    pub(super) fn attr_text(&mut self, s: &Sp<String>, key: &str) -> Option<String> {
        if self.is_todo(s) {
            return None;
        }
        let t = s.get();
        if t.trim().is_empty() {
            self.error(
                s.span(),
                format!("`{key}` must not be empty"),
                "remove the line to use the default",
            );
            return None;
        }
        if let Some(c) = t
            .chars()
            .find(|c| *c == '\'' || *c == '"' || c.is_control())
        {
            self.error(
                s.span(),
                format!("`{key}` must not contain {}", describe_char(c)),
                "appcmd takes values in single quotes and cannot escape quotes; choose a value without them",
            );
            return None;
        }
        Some(t.clone())
    }

    /// Whether a regex compiles; reports it when it does not. `dotnet` regexes are applied by
    /// MSDeploy with .NET's engine: constructs .NET has and Rust's `regex` lacks (look-around,
    /// backreferences) get a warning that they were not checked, not an error; they are
    /// judged by [`dotnet_regex::compile`], as `check` judges Parameters.xml.
    pub(super) fn check_regex(&mut self, s: &Sp<String>, key: &str, dotnet: bool) -> bool {
        let e = if dotnet {
            match dotnet_regex::compile(s.get()) {
                Ok(Some(_)) => return true,
                Ok(None) => dotnet_regex::unverifiable_reason(s.get()).unwrap_or_default(),
                Err(e) => e.detail(),
            }
        } else {
            match Regex::new(s.get()) {
                Ok(_) => return true,
                Err(e) => e.to_string(),
            }
        };
        if dotnet && dotnet_regex::unverifiable_reason(s.get()).is_some() {
            self.push(
                Diagnostic::warning(
                    self.src,
                    s.span(),
                    format!("`{key}` uses a .NET feature iiswsgi cannot check"),
                )
                .with_note(e)
                .with_help("MSDeploy will apply it with .NET's engine; test the install to be sure it matches"),
            );
            return true;
        }
        let help = if dotnet {
            "MSDeploy applies .NET regular expressions; iiswsgi checks them with Rust's `regex` syntax, the common subset. In TOML, single quotes keep backslashes literal: '\\\\settings\\.py$'"
        } else {
            "escape literal dots as `\\.`; in TOML, single quotes keep backslashes literal: '.*\\.py$'"
        };
        self.push(
            Diagnostic::error(
                self.src,
                s.span(),
                format!("`{key}` is not a valid regular expression"),
            )
            .with_note(e)
            .with_help(help),
        );
        false
    }
}

/// Compiles a built-in regex (a literal in the validator, so it always compiles).
pub(super) fn regex(s: &str) -> Regex {
    match Regex::new(s) {
        Ok(r) => r,
        Err(e) => panic!("built-in regex {s:?} does not compile: {e}"),
    }
}

pub(super) fn closest<'a>(s: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = s.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_lowercase()), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `C:\x`, `\\server\share`, `/opt/x`.
pub(super) fn is_absolute_any(s: &str) -> bool {
    let b = s.as_bytes();
    s.starts_with('/')
        || s.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// Checks a relative path; returns the normalised form or (reason, optional help).
fn check_rel_path(s: &str) -> Result<RelPath, (String, Option<String>)> {
    if s.trim().is_empty() {
        return Err(("must not be empty".into(), None));
    }
    if is_absolute_any(s) {
        return Err((format!("must be a relative path, found {s:?}"), None));
    }
    if s.contains('\\') {
        return Err((
            format!("uses `\\` in {s:?}"),
            Some(format!(
                "use `/` between folders: {:?}",
                s.replace('\\', "/")
            )),
        ));
    }
    let mut segs = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => continue,
            ".." => {
                return Err((
                    format!("must stay inside the app folder, but {s:?} uses `..`"),
                    Some("name a folder inside the app, e.g. \"App_Data\"; MSDeploy cannot set ACLs or package files outside it".into()),
                ));
            }
            _ => {}
        }
        if let Some(c) = seg
            .chars()
            .find(|c| matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') || c.is_control())
        {
            return Err((
                format!(
                    "contains {} in {s:?}, which Windows does not allow in file names",
                    describe_char(c)
                ),
                None,
            ));
        }
        if seg.ends_with('.') || seg.ends_with(' ') {
            return Err((
                format!("has a segment ending in a dot or space ({seg:?}), which Windows drops"),
                None,
            ));
        }
        if is_windows_device_name(seg) {
            return Err((
                format!("uses the reserved Windows device name {seg:?}"),
                None,
            ));
        }
        segs.push(seg);
    }
    Ok(RelPath(segs.join("/")))
}

/// Why a string is not an absolute http(s) URL; the text follows "is not an absolute
/// http(s) URL: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum UrlError {
    #[error("only http and https are allowed, found {url:?}")]
    NotHttp { url: String },
    #[error("{url:?} has no `https://`")]
    NoScheme { url: String },
    #[error("it contains {}", describe_char(*.0))]
    Forbidden(char),
    #[error("unclosed `[` in the host")]
    UnclosedBracket,
    #[error("it has no host name")]
    NoHost,
    #[error("the host {host:?} is not a valid host name")]
    BadHost { host: String },
    #[error("the port {port:?} is not a number from 0 to 65535")]
    BadPort { port: String },
}

/// Checks an absolute http(s) URL: scheme, a host of letters, digits, `.`, `-` (or an IPv6
/// literal), an optional port, and no whitespace or characters that need escaping in XML
/// attributes and URLs.
fn check_http_url(s: &str) -> Result<(), UrlError> {
    let rest = if let Some(r) = s.strip_prefix("https://") {
        r
    } else if let Some(r) = s.strip_prefix("http://") {
        r
    } else if s.contains("://") {
        return Err(UrlError::NotHttp { url: s.to_string() });
    } else {
        return Err(UrlError::NoScheme { url: s.to_string() });
    };
    if let Some(c) = s.chars().find(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
    }) {
        return Err(UrlError::Forbidden(c));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if host_port.starts_with('[') {
        match host_port.split_once(']') {
            Some((h, p)) => (&h[1..], p.strip_prefix(':')),
            None => return Err(UrlError::UnclosedBracket),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    if !host_port.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(UrlError::BadHost {
            host: host.to_string(),
        });
    }
    if let Some(p) = port
        && (p.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(UrlError::BadPort {
            port: p.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_path_normalises_and_rejects_escapes() {
        assert_eq!(
            check_rel_path("./App_Data//logs/").unwrap().as_str(),
            "App_Data/logs"
        );
        assert!(check_rel_path("../x").unwrap_err().0.contains("`..`"));
        assert!(check_rel_path("a\\b").unwrap_err().0.contains("`\\`"));
        assert!(check_rel_path("C:/x").unwrap_err().0.contains("relative"));
        assert!(
            check_rel_path("a/con.txt")
                .unwrap_err()
                .0
                .contains("device")
        );
        assert!(check_rel_path("a/b?").unwrap_err().0.contains("`?`"));
    }

    #[test]
    fn http_url_accepts_hosts_ports_and_ipv6() {
        assert!(check_http_url("https://example.com").is_ok());
        assert!(check_http_url("http://localhost:8080/a?b=c#d").is_ok());
        assert!(check_http_url("https://[::1]:443/x").is_ok());
    }

    #[test]
    fn http_url_errors_read_as_before() {
        let why = |url: &str| match check_http_url(url) {
            Ok(()) => panic!("{url:?} was accepted"),
            Err(e) => e.to_string(),
        };
        assert_eq!(
            why("ftp://x"),
            r#"only http and https are allowed, found "ftp://x""#
        );
        assert_eq!(why("example.com"), r#""example.com" has no `https://`"#);
        assert_eq!(why("https://exa mple.com"), "it contains ` ` (a space)");
        assert_eq!(why("https://[::1/x"), "unclosed `[` in the host");
        assert_eq!(why("https://"), "it has no host name");
        assert_eq!(
            why("https://a_b.com"),
            r#"the host "a_b.com" is not a valid host name"#
        );
        assert_eq!(
            why("https://x:99999"),
            r#"the port "99999" is not a number from 0 to 65535"#
        );
    }
}
