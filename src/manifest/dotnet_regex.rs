//! The one judgement of a regular expression that MSDeploy will apply (Parameters.xml
//! `scope`, `match` and RegularExpression validations), shared by the manifest validator
//! (`iiswsgi check iiswsgi.toml`) and the P rules `iiswsgi package` runs on what it generated,
//! so the two cannot disagree about a pattern.
//!
//! MSDeploy matches with .NET's engine and IgnoreCase; iiswsgi compiles with the `regex`
//! crate, case-insensitively, within [`SIZE_LIMIT`]. Constructs .NET has and `regex` lacks
//! (look-around, back-references) cannot be verified here and are told apart from errors.
//! [`literal_match`] is the pattern iiswsgi writes for a path it knows, so the validator can
//! judge a generated pattern before the package exists.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::{Regex, RegexBuilder};

/// Largest compiled program accepted, in bytes: a pattern past it (a 210,000-character path
/// escaped into a `match`) is refused rather than left to MSDeploy.
pub const SIZE_LIMIT: usize = 1 << 20;

/// A pattern the `regex` crate rejects. `Display` is the last line of its message: the reason,
/// without the excerpt of the pattern the caller quotes anyway.
#[derive(Debug, thiserror::Error)]
#[error("{}", last_line(.0))]
pub struct RegexError(regex::Error);

impl RegexError {
    /// The `regex` crate's whole message (with its excerpt and caret), for a note.
    pub fn detail(&self) -> String {
        self.0.to_string()
    }
}

fn last_line(e: &regex::Error) -> String {
    let msg = e.to_string();
    msg.lines().last().unwrap_or(&msg).trim().to_string()
}

/// Why a pattern compiled with `Ok(None)`: the .NET construct this build cannot check.
pub fn unverifiable_reason(pattern: &str) -> Option<String> {
    match build(pattern) {
        Err(e) if is_dotnet_only(&e) => Some(e.to_string()),
        _ => None,
    }
}

/// Compiles `pattern` as MSDeploy applies it: `Ok(None)` when it uses .NET syntax the `regex`
/// crate lacks (look-around, back-references) and so cannot be verified here.
pub fn compile(pattern: &str) -> Result<Option<Regex>, RegexError> {
    match build(pattern) {
        Ok(r) => Ok(Some(r)),
        Err(e) if is_dotnet_only(&e) => Ok(None),
        Err(e) => Err(RegexError(e)),
    }
}

/// `^…$` around `text` with every metacharacter escaped: the ProviderPath `match` iiswsgi
/// writes for a path it knows (the app folder, a setAcl path).
pub fn literal_match(text: &str) -> String {
    format!("^{}$", regex::escape(text))
}

/// Most patterns remembered by [`build`], and the longest remembered: a compiled pattern may
/// take up to [`SIZE_LIMIT`], so the cache holds at most 64 MiB.
const CACHE_ENTRIES: usize = 64;
const CACHE_PATTERN_BYTES: usize = 256;

/// Compiles `pattern`, once per process for short patterns: the P rules judge each pattern of
/// a Parameters.xml several times (P04, P05, P06, P08, P12), and the fuzz targets meet the
/// same few over and over. The cache is emptied when full.
fn build(pattern: &str) -> Result<Regex, regex::Error> {
    type Cache = Mutex<HashMap<String, Result<Regex, regex::Error>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let compile = || {
        RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(SIZE_LIMIT)
            .build()
    };
    if pattern.len() > CACHE_PATTERN_BYTES {
        return compile();
    }
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(pattern).cloned()) {
        return hit;
    }
    let built = compile();
    if let Ok(mut c) = cache.lock() {
        if c.len() >= CACHE_ENTRIES {
            c.clear();
        }
        c.insert(pattern.to_string(), built.clone());
    }
    built
}

fn is_dotnet_only(e: &regex::Error) -> bool {
    let msg = e.to_string();
    msg.contains("look-around") || msg.contains("backreference")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_compile_case_insensitively() {
        let r = compile("^app_data$").expect("valid").expect("verifiable");
        assert!(r.is_match("App_Data"));
    }

    #[test]
    fn dotnet_only_syntax_is_unverifiable_not_invalid() {
        assert!(compile(r"^(?!x)a$").expect("not an error").is_none());
        assert!(compile(r"(a)\1").expect("not an error").is_none());
        assert!(unverifiable_reason(r"(?<=a)b").is_some());
        assert!(unverifiable_reason("^a$").is_none());
    }

    #[test]
    fn a_literal_too_long_for_the_size_limit_is_an_error() {
        let long = literal_match(&format!("App/{}", "a".repeat(210_000)));
        let err = compile(&long).expect_err("too large");
        assert!(err.to_string().contains("size limit"), "{err}");
        assert!(compile(&literal_match("App/App_Data (1)")).is_ok());
    }
}
