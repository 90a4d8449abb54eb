//! iiswsgi: Python WSGI apps on IIS, over FastCGI, from one binary.
//!
//! The crate is one house with three wings over a small shared ground:
//! - [`runtime`]: `iiswsgi run`, the process IIS (or nginx, lighttpd, Apache, HAProxy)
//!   talks to: the sans-IO FastCGI codec, transports, the event-loop server, the embedded
//!   CPython WSGI bridge, logging, and what IIS's environment means to a running process;
//! - [`package`]: the build side, on any OS: `init`, templates, the MSDeploy zip, the WebPI
//!   feed and the `check` lint rules;
//! - [`iis`]: server administration on Windows: `install`, `iis enable|disable`, `doctor`,
//!   built on appcmd and icacls command lines.
//!
//! Shared ground: [`manifest`] (`iiswsgi.toml`, read by every wing and reading none),
//! [`venv`] (`pyvenv.cfg`), [`xml`] (a bounded XML tree), [`fsutil`] (atomic writes),
//! [`probe`] (does `[wsgi] app` import in its venv: `check --import` and `doctor`) and
//! [`deploy`], the contract the package and the installer agree on (the FastCGI key, the
//! install stamp, the web.config context). `src/main.rs` and `src/cli/` only parse arguments,
//! call one entry point per subcommand and print the report or the error chain.
//!
//! Dependency rules (checked by `tests/architecture.rs`, which reads every `use`):
//! - `runtime` never names `package` or `iis`; `package` never names `runtime` or `iis`;
//! - `iis` reaches the package wing only through [`deploy`];
//! - `runtime::fastcgi` is sans-IO: no I/O, no clock, no other module of this crate;
//! - only `runtime::wsgi` names `pyo3`; shared ground names no wing, except [`deploy`],
//!   which may name `package`.
#![warn(missing_docs)]

pub mod deploy;
pub mod fsutil;
pub mod iis;
pub mod manifest;
pub mod package;
pub mod probe;
pub mod runtime;
pub mod venv;
pub mod xml;

/// The version of this build, as `iiswsgi --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `major.minor` of the CPython this binary embeds, when built with the `python` feature.
pub const PYTHON_VERSION: Option<&str> = option_env!("IISWSGI_PY_VERSION");

/// An error and every cause under it (`source()`, then its source, …), outermost first, joined
/// by `separator`. Each error's `Display` prints its own level only, so this is the one place a
/// chain is walked: `": "` for one line (a finding, a log record), `"\n  caused by: "` for the
/// CLI's `error:` block.
pub fn error_chain(err: &dyn std::error::Error, separator: &str) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(separator);
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// `text` made safe to print on a terminal: control characters (C0, DEL, C1) and the Unicode
/// bidirectional controls, except those in `keep`, are written as escapes (`\n`, `\t`,
/// `\x1b`, `\u{202e}`). Every report that quotes text from outside the process (zip entry
/// names, XML values, manifest lines, file names) goes through this, so an inspected file cannot
/// move the cursor, retitle the window or forge a line of the report.
pub fn printable<'a>(text: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    let unsafe_char = |c: char| !keep.contains(&c) && (c.is_control() || is_bidi_control(c));
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !unsafe_char(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The characters that reorder how a terminal shows text (LRM, RLM, the embeddings, overrides
/// and isolates).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_controls_and_bidi_overrides_only() {
        use super::printable;
        assert!(matches!(
            printable("plain é ü \\ text", &[]),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            printable("a\x1b[2J\0b\nc\td\u{7f}\u{9b}e\u{202e}f", &[]),
            "a\\x1b[2J\\x00b\\nc\\td\\x7f\\x9be\\u{202e}f"
        );
        assert_eq!(printable("a\tb\nc\x07", &['\t', '\n']), "a\tb\nc\\x07");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot write web.config")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_every_level_outermost_first() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(
            super::error_chain(&e, ": "),
            "cannot write web.config: disk full"
        );
        assert_eq!(
            super::error_chain(&e, "\n  caused by: "),
            "cannot write web.config\n  caused by: disk full"
        );
        let alone = std::io::Error::other("alone");
        assert_eq!(super::error_chain(&alone, ": "), "alone");
    }
}
