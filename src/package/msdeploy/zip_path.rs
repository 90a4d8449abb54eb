//! `ZipPath`: an entry name as it is stored in a package zip, valid on Windows.
//!
//! Host paths are the wrong type for zip entry names: `\` would be a separator on Windows and a
//! character on Linux, and a name Linux happily stores (`aux.py`, `a:b`, `x.`) cannot be created
//! by msdeploy on the target. A `ZipPath` is relative, `/`-separated and made of segments Windows
//! accepts (spec §1.2); it is built only through [`ZipPath::new`] / [`ZipPath::join`], which
//! refuse anything else. [`name_problem`] is the same rule as a plain function, used by
//! `iiswsgi check` (Z02) on names found in third-party zips.
//!
//! Pure code: no I/O.

use std::fmt;

/// Longest entry name a zip header can hold.
pub const MAX_NAME_BYTES: usize = u16::MAX as usize;

/// Characters Windows refuses in a file or directory name (besides C0 controls).
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '|', '?', '*', '\\'];

/// DOS device names Windows will not create as files, with or without an extension.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A validated, relative, `/`-separated entry name without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZipPath(String);

/// Why a name cannot be a zip entry name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{name}` cannot be stored in the package: {reason}")]
pub struct ZipPathError {
    /// The rejected name.
    pub name: String,
    /// Which rule it breaks.
    pub reason: &'static str,
}

impl ZipPath {
    /// Validates `name` (no trailing `/`; directories are marked by the writer, not the name).
    pub fn new(name: impl Into<String>) -> Result<Self, ZipPathError> {
        let name = name.into();
        match name_problem(&name) {
            Some(reason) => Err(ZipPathError { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// `self/segment`, where `segment` may itself contain `/`.
    pub fn join(&self, rest: &str) -> Result<Self, ZipPathError> {
        Self::new(format!("{}/{rest}", self.0))
    }

    /// The name as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first segment (the top-level folder, or the file name of a root file).
    pub fn top(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    /// Every proper ancestor, outermost first: `a/b/c` gives `a`, `a/b`.
    pub fn ancestors(&self) -> impl Iterator<Item = ZipPath> + '_ {
        self.0
            .match_indices('/')
            .map(|(i, _)| ZipPath(self.0[..i].to_string()))
    }

    /// The key under which Windows sees two names as the same file.
    pub fn fold_key(&self) -> String {
        fold_case(&self.0)
    }
}

impl fmt::Display for ZipPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ZipPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Case folding for collision checks. Windows (NTFS) compares names through an upper-case
/// table; Unicode lower-casing agrees with it on every name this project is likely to see.
pub fn fold_case(name: &str) -> String {
    name.to_lowercase()
}

/// Why `name` (without a trailing `/`) is not a valid entry name, or `None` when it is.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the name is empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return Some("the name is longer than 65,535 bytes");
    }
    if name.contains('\\') {
        return Some("`\\` is not a zip separator; use `/`");
    }
    if name.starts_with('/') {
        return Some("the name is absolute");
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Some("the name starts with a drive letter");
    }
    for segment in name.split('/') {
        if let Some(reason) = segment_problem(segment) {
            return Some(reason);
        }
    }
    None
}

/// Why one path segment is not a valid Windows file name.
fn segment_problem(segment: &str) -> Option<&'static str> {
    match segment {
        "" => return Some("the name has an empty segment (`//` or a trailing `/`)"),
        "." | ".." => return Some("the name has a `.` or `..` segment"),
        _ => {}
    }
    if segment.chars().any(|c| c.is_control() && (c as u32) < 0x20) {
        return Some("the name contains a control character");
    }
    if segment.contains(FORBIDDEN) {
        return Some("the name contains one of < > : \" | ? * which Windows refuses");
    }
    if segment.ends_with('.') || segment.ends_with(' ') {
        return Some("a segment ends with `.` or a space, which Windows strips");
    }
    let stem = segment.split('.').next().unwrap_or(segment).trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Some("a segment is a reserved Windows device name (CON, NUL, COM1, …)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_slash_separated_names_are_accepted() {
        for ok in [
            "Manifest.xml",
            "MyIISApp/web.config",
            "MyIISApp/static/app.min.js",
            "a/ünïcode/名前.txt",
            "a/.hidden",
            "a/console.py",
            "a/auxiliary.py",
        ] {
            assert!(ZipPath::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn names_windows_or_zip_cannot_hold_are_refused_with_a_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("a\\b", "separator"),
            ("C:/x", "drive letter"),
            ("a/../b", "`..`"),
            ("./a", "`.`"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("a/b?.txt", "Windows refuses"),
            ("a/b:c", "Windows refuses"),
            ("a/b\u{1}", "control"),
            ("a/b.", "ends with"),
            ("a/b ", "ends with"),
            ("a/CON", "reserved"),
            ("a/nul.txt", "reserved"),
            ("a/Com1.py", "reserved"),
            ("lpt9", "reserved"),
        ] {
            let err = ZipPath::new(bad).expect_err(bad);
            assert!(err.reason.contains(why), "{bad:?}: {}", err.reason);
        }
    }

    #[test]
    fn ancestors_are_listed_outermost_first() {
        let p = ZipPath::new("a/b/c.txt").expect("valid");
        let a: Vec<String> = p.ancestors().map(|p| p.to_string()).collect();
        assert_eq!(a, ["a", "a/b"]);
        assert_eq!(p.top(), "a");
    }

    #[test]
    fn fold_key_ignores_case() {
        let a = ZipPath::new("App/Static/X.js").expect("valid");
        let b = ZipPath::new("app/static/x.JS").expect("valid");
        assert_eq!(a.fold_key(), b.fold_key());
    }
}
