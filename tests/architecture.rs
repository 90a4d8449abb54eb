//! The crate's plan, enforced by reading `src/`: three wings over a small shared ground, and
//! who may name whom.
//!
//! - `runtime/` (what `iiswsgi run` is) never names `package` or `iis`;
//! - `package/` (what `init`, `package`, `feed`, `check` are) never names `runtime` or `iis`;
//! - `iis/` (server administration) reaches the packaging wing only through `deploy`, the
//!   contract both sides agree on, and never names `runtime`;
//! - the shared ground (`manifest/`, `venv`, `xml`, `fsutil`, `probe/`) names no wing; `deploy` may
//!   name `package`;
//! - `runtime/fastcgi` is sans-IO: no I/O, no clock, no other module of the crate;
//! - only `runtime/wsgi` names PyO3;
//! - no import circle between files; no `Result<_, String>`; no production file over 800
//!   lines of code; every `cli/*.rs` stays a thin shell (at most 150 lines of code).
//!
//! The rules read real Rust: comments, strings and `#[cfg(test)]` items are stripped, `use`
//! trees are parsed (grouped imports, `self`, `super`, renames, globs), inline paths
//! (`crate::x::y()`, `super::z::W`, `child::f()`) count too, and every path is resolved to
//! the file that holds it. The parser's own tests are at the bottom.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Reading src/
// ---------------------------------------------------------------------------------------------

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rs_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rs_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Which compilation unit a file belongs to: the library (`lib.rs`) or the binary (`main.rs`
/// and `cli/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unit {
    Lib,
    Bin,
}

/// One source file, its module path, and what it names.
#[derive(Debug)]
struct SourceFile {
    /// Relative to `src/`, with `/`.
    rel: String,
    unit: Unit,
    /// The module path of the file (`["runtime", "server", "engine"]`).
    module: Vec<String>,
    /// Code with comments, strings and test-only items blanked out.
    code: String,
    /// Only compiled for tests (`#[cfg(test)] mod x;`, `tests.rs`, `testing.rs` declared so).
    test_only: bool,
}

fn module_of(rel: &str) -> (Unit, Vec<String>) {
    let unit = if rel == "main.rs" || rel.starts_with("cli/") {
        Unit::Bin
    } else {
        Unit::Lib
    };
    let stem = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = stem.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    (unit, parts)
}

/// Every file under `src/`, parsed, with test-only files marked.
fn crate_files() -> Vec<SourceFile> {
    let root = src();
    let mut files: Vec<SourceFile> = rs_files(&root)
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let (unit, module) = module_of(&rel);
            let stripped = strip_comments_and_strings(&text);
            SourceFile {
                rel,
                unit,
                module,
                code: blank_test_items(&stripped),
                test_only: false,
            }
        })
        .collect();
    // Files declared `#[cfg(test)] mod x;` by their parent are test-only, with everything
    // under them.
    let mut test_modules: Vec<(Unit, Vec<String>)> = Vec::new();
    for f in &files {
        let stripped = strip_comments_and_strings(
            &std::fs::read_to_string(root.join(&f.rel)).unwrap_or_default(),
        );
        for child in test_gated_module_declarations(&stripped) {
            let mut m = f.module.clone();
            m.push(child);
            test_modules.push((f.unit, m));
        }
    }
    for f in &mut files {
        f.test_only = test_modules
            .iter()
            .any(|(unit, m)| *unit == f.unit && f.module.starts_with(m));
    }
    files
}

// ---------------------------------------------------------------------------------------------
// A small Rust lexer: enough to find paths, `use` trees, `mod` items and `#[cfg(test)]`.
// ---------------------------------------------------------------------------------------------

/// Blanks comments, string literals and char literals (newlines kept, so line numbers stay).
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, 0usize);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(len) = raw_string_len(rest) {
            blank(&mut out, &rest[..len]);
            i += len;
        } else if rest[0] == b'"' || rest.starts_with(b"b\"") || rest.starts_with(b"c\"") {
            let mut j = if rest[0] == b'"' { 1 } else { 2 };
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}', '"') or a lifetime ('a).
            let len = char_literal_len(rest);
            blank(&mut out, &rest[..len]);
            i += len.max(1);
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Length of a raw string literal (`r"…"`, `r#"…"#`, `br#"…"#`) at the start of `s`.
fn raw_string_len(s: &[u8]) -> Option<usize> {
    let start = if s.starts_with(b"br") || s.starts_with(b"cr") {
        2
    } else if s.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = s[start..].iter().take_while(|&&c| c == b'#').count();
    if s.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = start + hashes + 1;
    let end = s[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(body + end + close.len())
}

/// Length of a char literal at the start of `s` (`'x'`, `'\n'`, `'\u{e9}'`, `'é'`), or 1 for
/// a lifetime's quote (`'a`).
fn char_literal_len(s: &[u8]) -> usize {
    if s.get(1) == Some(&b'\\') {
        let mut j = 3;
        while j < s.len() && j < 14 && s[j] != b'\'' {
            j += 1;
        }
        return if s.get(j) == Some(&b'\'') { j + 1 } else { 1 };
    }
    let width = match s.get(1) {
        Some(&c) if c < 0x80 => 1,
        Some(&c) if c >= 0xf0 => 4,
        Some(&c) if c >= 0xe0 => 3,
        Some(_) => 2,
        None => return 1,
    };
    if s.get(1 + width) == Some(&b'\'') {
        2 + width
    } else {
        1
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Sep, // ::
    Punct(char),
}

/// Tokens with their byte offsets.
fn tokens(code: &str) -> Vec<(usize, Tok)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &code[start..i];
            out.push((start, Tok::Ident(word.to_string())));
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                if b[i] == b'.' && b.get(i + 1).is_some_and(|d| !d.is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push((i, Tok::Sep));
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push((i, Tok::Punct(c as char)));
            i += 1;
        }
    }
    out
}

/// The byte range of the item that starts at token `at` (an item ends at its `;` outside
/// braces or at the brace that closes its first block).
fn item_end(toks: &[(usize, Tok)], code_len: usize, mut at: usize) -> usize {
    let mut depth = 0i32;
    while at < toks.len() {
        match &toks[at].1 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return toks[at].0 + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return toks[at].0 + 1,
            _ => {}
        }
        at += 1;
    }
    code_len
}

/// Index past the attribute `#[…]` starting at token `at`, and whether it gates on tests
/// (`cfg(test)`, `cfg(all(test, …))`, `cfg(any(test, fuzzing))`, but not `cfg(not(test))`).
fn attribute(toks: &[(usize, Tok)], at: usize) -> Option<(usize, bool)> {
    if toks.get(at)?.1 != Tok::Punct('#') || toks.get(at + 1)?.1 != Tok::Punct('[') {
        return None;
    }
    let mut depth = 0;
    let mut j = at + 1;
    let mut words = Vec::new();
    while j < toks.len() {
        match &toks[j].1 {
            Tok::Punct('[') => depth += 1,
            Tok::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Ident(w) => words.push(w.as_str()),
            _ => {}
        }
        j += 1;
    }
    let gated = words.first() == Some(&"cfg")
        && words.contains(&"test")
        && !words.windows(2).any(|w| w == ["not", "test"]);
    Some((j + 1, gated))
}

/// `code` with every `#[cfg(test)]`-gated item blanked.
fn blank_test_items(code: &str) -> String {
    let toks = tokens(code);
    let mut bytes = code.as_bytes().to_vec();
    let mut i = 0;
    while i < toks.len() {
        if let Some((after, gated)) = attribute(&toks, i) {
            if gated {
                // Skip further attributes, then the item.
                let mut k = after;
                while let Some((next, _)) = attribute(&toks, k) {
                    k = next;
                }
                let end = item_end(&toks, code.len(), k);
                for b in &mut bytes[toks[i].0..end] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                while i < toks.len() && toks[i].0 < end {
                    i += 1;
                }
                continue;
            }
            i = after;
            continue;
        }
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Names of `mod x;` declarations gated on tests.
fn test_gated_module_declarations(code: &str) -> Vec<String> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if let Some((after, gated)) = attribute(&toks, i) {
            let mut k = after;
            let mut gated = gated;
            while let Some((next, g)) = attribute(&toks, k) {
                gated |= g;
                k = next;
            }
            if gated {
                let mut m = k;
                if matches!(&toks.get(m).map(|t| &t.1), Some(Tok::Ident(w)) if w == "pub") {
                    m += 1;
                    if toks.get(m).map(|t| &t.1) == Some(&Tok::Punct('(')) {
                        while m < toks.len() && toks[m].1 != Tok::Punct(')') {
                            m += 1;
                        }
                        m += 1;
                    }
                }
                if let (Some(Tok::Ident(kw)), Some(Tok::Ident(name)), Some(Tok::Punct(';'))) = (
                    toks.get(m).map(|t| &t.1),
                    toks.get(m + 1).map(|t| &t.1),
                    toks.get(m + 2).map(|t| &t.1),
                ) && kw == "mod"
                {
                    out.push(name.clone());
                }
            }
            i = k;
            continue;
        }
        i += 1;
    }
    out
}

/// One path a file names, as written, with the inline modules (`mod win { … }`) around it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Named {
    /// Segments as written: `["super", "engine", "Conn"]`, `["std", "io", "Read"]`.
    path: Vec<String>,
    /// Inline modules enclosing the path inside its file.
    inline: Vec<String>,
    /// From a `use` item (otherwise an inline path in code).
    from_use: bool,
    /// 1-based line.
    line: usize,
}

/// Expands one `use` tree starting at token `at` (after `use`); returns the paths and the
/// index of the closing `;`.
fn use_tree(toks: &[(usize, Tok)], at: usize) -> (Vec<Vec<String>>, usize) {
    fn tree(toks: &[(usize, Tok)], mut i: usize, prefix: &[String]) -> (Vec<Vec<String>>, usize) {
        let mut path = prefix.to_vec();
        let mut out = Vec::new();
        loop {
            match toks.get(i).map(|t| &t.1) {
                Some(Tok::Ident(w)) if w == "as" => {
                    // `x as y`: skip the alias.
                    i += 2;
                }
                Some(Tok::Ident(w)) => {
                    path.push(w.clone());
                    i += 1;
                }
                Some(Tok::Sep) => i += 1,
                Some(Tok::Punct('*')) => {
                    i += 1;
                }
                Some(Tok::Punct('{')) => {
                    i += 1;
                    loop {
                        match toks.get(i).map(|t| &t.1) {
                            Some(Tok::Punct('}')) => {
                                i += 1;
                                break;
                            }
                            Some(Tok::Punct(',')) => i += 1,
                            None => return (out, i),
                            _ => {
                                let (sub, next) = tree(toks, i, &path);
                                out.extend(sub);
                                i = next;
                            }
                        }
                    }
                    return (out, i);
                }
                _ => {
                    if path.len() > prefix.len() {
                        // `a::{self}` names `a`.
                        if path.last().is_some_and(|s| s == "self") && path.len() > 1 {
                            path.pop();
                        }
                        out.push(path);
                    }
                    return (out, i);
                }
            }
        }
    }
    let mut all = Vec::new();
    let mut i = at;
    // `use ::std::x` or `use a::b, …` is not valid Rust for several trees; one tree per `use`.
    if toks.get(i).map(|t| &t.1) == Some(&Tok::Sep) {
        i += 1;
    }
    let (paths, next) = tree(toks, i, &[]);
    all.extend(paths);
    let mut end = next;
    while end < toks.len() && toks[end].1 != Tok::Punct(';') {
        end += 1;
    }
    (all, end)
}

/// Every path `code` names: `use` trees and inline `a::b` paths, with their inline modules.
fn named_paths(code: &str) -> Vec<Named> {
    let toks = tokens(code);
    let line_of = |offset: usize| code[..offset].bytes().filter(|&b| b == b'\n').count() + 1;
    let mut out = Vec::new();
    // Inline module stack: (name, brace depth at which it opened).
    let mut inline: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].1 {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            Tok::Ident(w) if w == "mod" => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct('{'))) =
                    (toks.get(i + 1).map(|t| &t.1), toks.get(i + 2).map(|t| &t.1))
                {
                    inline.push((name.clone(), depth));
                }
            }
            Tok::Ident(w) if w == "use" && i + 1 < toks.len() => {
                let prev_is_path = i > 0 && toks[i - 1].1 == Tok::Sep;
                if !prev_is_path {
                    let (paths, end) = use_tree(&toks, i + 1);
                    let line = line_of(toks[i].0);
                    for path in paths {
                        out.push(Named {
                            path,
                            inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                            from_use: true,
                            line,
                        });
                    }
                    i = end;
                    continue;
                }
            }
            Tok::Ident(first) if toks.get(i + 1).map(|t| &t.1) == Some(&Tok::Sep) => {
                let preceded_by_sep = i > 0 && toks[i - 1].1 == Tok::Sep;
                if !preceded_by_sep {
                    let mut path = vec![first.clone()];
                    let mut j = i + 1;
                    while toks.get(j).map(|t| &t.1) == Some(&Tok::Sep) {
                        match toks.get(j + 1).map(|t| &t.1) {
                            Some(Tok::Ident(seg)) => {
                                path.push(seg.clone());
                                j += 2;
                            }
                            _ => break,
                        }
                    }
                    out.push(Named {
                        path,
                        inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                        from_use: false,
                        line: line_of(toks[i].0),
                    });
                    i = j;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Resolving paths to files
// ---------------------------------------------------------------------------------------------

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A file of this crate (index into the file list).
    File(usize),
    /// Another crate, by its first segment (`std`, `pyo3`, …).
    External(String),
}

struct Crate {
    files: Vec<SourceFile>,
    by_module: BTreeMap<(Unit, Vec<String>), usize>,
}

impl Crate {
    fn load() -> Self {
        let files = crate_files();
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| ((f.unit, f.module.clone()), i))
            .collect();
        Crate { files, by_module }
    }

    /// The file holding `module` (the longest prefix that is a file).
    fn file_of(&self, unit: Unit, module: &[String]) -> Option<usize> {
        (0..=module.len())
            .rev()
            .find_map(|n| self.by_module.get(&(unit, module[..n].to_vec())).copied())
    }

    /// Resolves a path named in file `from`.
    fn resolve(&self, from: usize, named: &Named) -> Target {
        let f = &self.files[from];
        let mut here = f.module.clone();
        here.extend(named.inline.iter().cloned());
        let first = named.path[0].as_str();
        let (unit, mut abs) = match first {
            "crate" => (f.unit, named.path[1..].to_vec()),
            "iiswsgi" => (Unit::Lib, named.path[1..].to_vec()),
            "self" => {
                let mut m = here.clone();
                m.extend(named.path[1..].iter().cloned());
                (f.unit, m)
            }
            "super" => {
                let mut m = here.clone();
                let mut rest = &named.path[..];
                while rest.first().is_some_and(|s| s == "super") {
                    m.pop();
                    rest = &rest[1..];
                }
                m.extend(rest.iter().cloned());
                (f.unit, m)
            }
            _ => {
                let mut child = here.clone();
                child.push(first.to_string());
                if self.by_module.contains_key(&(f.unit, child.clone())) {
                    child.extend(named.path[1..].iter().cloned());
                    (f.unit, child)
                } else {
                    return Target::External(first.to_string());
                }
            }
        };
        abs.retain(|s| s != "self");
        match self.file_of(unit, &abs) {
            Some(i) => Target::File(i),
            None => Target::External(first.to_string()),
        }
    }

    /// Every (path, target) a non-test file names.
    fn references(&self, from: usize) -> Vec<(Named, Target)> {
        named_paths(&self.files[from].code)
            .into_iter()
            .map(|n| {
                let t = self.resolve(from, &n);
                (n, t)
            })
            .collect()
    }

    fn production(&self) -> impl Iterator<Item = (usize, &SourceFile)> {
        self.files.iter().enumerate().filter(|(_, f)| !f.test_only)
    }
}

/// The part of the plan a module belongs to.
fn area(f: &SourceFile) -> &'static str {
    if f.unit == Unit::Bin {
        return "cli";
    }
    match f.module.first().map(String::as_str) {
        None => "root",
        Some("runtime") => "runtime",
        Some("package") => "package",
        Some("iis") => "iis",
        Some("deploy") => "deploy",
        Some(_) => "shared",
    }
}

fn show(crate_: &Crate, from: usize, n: &Named, to: &Target) -> String {
    let target = match to {
        Target::File(i) => format!("src/{}", crate_.files[*i].rel),
        Target::External(c) => format!("crate {c}"),
    };
    format!(
        "src/{}:{}: `{}` -> {target}",
        crate_.files[from].rel,
        n.line,
        n.path.join("::")
    )
}

/// Every reference from files of area `from_area` into areas in `forbidden`.
fn crossings(crate_: &Crate, from_area: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, f) in crate_.production() {
        if area(f) != from_area {
            continue;
        }
        for (n, t) in crate_.references(i) {
            if let Target::File(j) = t
                && forbidden.contains(&area(&crate_.files[j]))
            {
                found.push(show(crate_, i, &n, &t));
            }
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

#[test]
fn the_three_wings_are_folders() {
    for wing in ["runtime", "package", "iis"] {
        assert!(
            src().join(wing).join("mod.rs").is_file(),
            "src/{wing}/mod.rs is missing"
        );
    }
    let crate_ = Crate::load();
    let top: BTreeSet<&str> = crate_
        .files
        .iter()
        .filter(|f| f.unit == Unit::Lib)
        .filter_map(|f| f.module.first().map(String::as_str))
        .collect();
    let expected: BTreeSet<&str> = [
        "deploy", "fsutil", "iis", "manifest", "package", "probe", "runtime", "venv", "xml",
    ]
    .into();
    assert_eq!(
        top, expected,
        "src/ holds the three wings and the shared ground only; a new top-level module \
         belongs in a wing, or is shared ground this test should name"
    );
}

#[test]
fn runtime_never_names_package_or_iis() {
    let found = crossings(&Crate::load(), "runtime", &["package", "iis", "deploy"]);
    assert!(
        found.is_empty(),
        "runtime must stand alone:\n{}",
        found.join("\n")
    );
}

#[test]
fn package_never_names_runtime_or_iis() {
    let found = crossings(&Crate::load(), "package", &["runtime", "iis"]);
    assert!(
        found.is_empty(),
        "package must stand alone:\n{}",
        found.join("\n")
    );
}

#[test]
fn iis_reaches_package_only_through_deploy() {
    let found = crossings(&Crate::load(), "iis", &["package", "runtime"]);
    assert!(
        found.is_empty(),
        "iis may use the packaging wing only through src/deploy.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn shared_ground_names_no_wing() {
    let crate_ = Crate::load();
    let mut found = crossings(&crate_, "shared", &["runtime", "package", "iis", "deploy"]);
    found.extend(crossings(&crate_, "deploy", &["runtime", "iis"]));
    assert!(
        found.is_empty(),
        "manifest, venv, xml, fsutil and probe are read by the wings and read none of them; \
         deploy may read package only:\n{}",
        found.join("\n")
    );
}

#[test]
fn fastcgi_codec_does_no_io_and_imports_nothing_else_from_the_crate() {
    let crate_ = Crate::load();
    let forbidden_external = ["tokio", "mio", "rustix", "libc", "pyo3", "socket2"];
    let forbidden_std: &[&[&str]] = &[
        &["std", "net"],
        &["std", "fs"],
        &["std", "thread"],
        &["std", "process"],
        &["std", "io", "Read"],
        &["std", "io", "Write"],
        &["io", "Read"],
        &["io", "Write"],
        &["fs_err"],
    ];
    let mut found = Vec::new();
    for (i, f) in crate_.production() {
        if !f
            .module
            .starts_with(&["runtime".to_string(), "fastcgi".to_string()])
        {
            continue;
        }
        for (n, t) in crate_.references(i) {
            let bad = match &t {
                Target::File(j) => {
                    let m = &crate_.files[*j].module;
                    !m.is_empty() && !m.starts_with(&["runtime".into(), "fastcgi".into()])
                }
                Target::External(c) => {
                    forbidden_external.contains(&c.as_str())
                        || forbidden_std.iter().any(|p| {
                            n.path
                                .starts_with(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                        })
                        || n.path.windows(2).any(|w| {
                            matches!(
                                (w[0].as_str(), w[1].as_str()),
                                ("Instant" | "SystemTime", "now")
                            )
                        })
                }
            };
            if bad {
                found.push(show(&crate_, i, &n, &t));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the codec must stay sans-IO and self-contained:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_runtime_wsgi_names_pyo3() {
    let crate_ = Crate::load();
    let mut found = Vec::new();
    for (i, f) in crate_.files.iter().enumerate() {
        if f.module
            .starts_with(&["runtime".to_string(), "wsgi".to_string()])
        {
            continue;
        }
        for (n, t) in crate_.references(i) {
            if t == Target::External("pyo3".into()) {
                found.push(show(&crate_, i, &n, &t));
            }
        }
        if f.code.contains("pyo3") && !found.iter().any(|s| s.contains(&f.rel)) {
            found.push(format!("src/{} names pyo3", f.rel));
        }
    }
    assert!(
        found.is_empty(),
        "pyo3 outside src/runtime/wsgi:\n{}",
        found.join("\n")
    );
}

/// Files that import each other, directly or around a loop, cannot be read or changed one at a
/// time. A file naming its own parent module (`super::Item` declared in `mod.rs`) is not a
/// circle: the parent owns the child.
#[test]
fn no_import_circle_between_files() {
    let crate_ = Crate::load();
    let n = crate_.files.len();
    let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    let mut why: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for (i, f) in crate_.production() {
        for (named, t) in crate_.references(i) {
            let Target::File(j) = t else { continue };
            let g = &crate_.files[j];
            let ancestor = g.unit == f.unit && f.module.starts_with(&g.module);
            if j == i || ancestor || g.test_only {
                continue;
            }
            edges[i].insert(j);
            why.entry((i, j))
                .or_insert_with(|| format!("line {}: {}", named.line, named.path.join("::")));
        }
    }
    let circles = strongly_connected(&edges);
    let mut report = Vec::new();
    for scc in circles.iter().filter(|c| c.len() > 1) {
        let names: Vec<String> = scc
            .iter()
            .map(|&i| format!("src/{}", crate_.files[i].rel))
            .collect();
        report.push(format!("circle: {}", names.join(" <-> ")));
        for &a in scc {
            for &b in scc {
                if let Some(w) = why.get(&(a, b)) {
                    report.push(format!(
                        "    src/{} -> src/{} ({w})",
                        crate_.files[a].rel, crate_.files[b].rel
                    ));
                }
            }
        }
    }
    assert!(report.is_empty(), "import circles:\n{}", report.join("\n"));
}

/// Tarjan's strongly connected components.
fn strongly_connected(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in s.edges[v].iter() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            scc.sort();
            s.out.push(scc);
        }
    }
    let n = edges.len();
    let mut s = State {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// `Result<T, String>` (with any `T`), found by matching angle brackets in stripped code.
fn string_results(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let mut lines = Vec::new();
    let mut from = 0;
    while let Some(p) = code[from..].find("Result<") {
        let start = from + p;
        from = start + 7;
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            continue;
        }
        let (mut depth, mut j, mut comma) = (1, start + 7, None);
        while j < b.len() && depth > 0 {
            match b[j] {
                b'<' => depth += 1,
                b'>' if b[j - 1] != b'-' => depth -= 1,
                b',' if depth == 1 && comma.is_none() => comma = Some(j),
                b'(' | b'[' => {
                    // Skip tuples and arrays as a unit: their commas are not Result's.
                    let (open, close) = (b[j], if b[j] == b'(' { b')' } else { b']' });
                    let mut d = 1;
                    j += 1;
                    while j < b.len() && d > 0 {
                        if b[j] == open {
                            d += 1;
                        } else if b[j] == close {
                            d -= 1;
                        }
                        j += 1;
                    }
                    continue;
                }
                _ => {}
            }
            j += 1;
        }
        if let Some(c) = comma
            && code[c + 1..j - 1].trim() == "String"
        {
            lines.push(code[..start].bytes().filter(|&x| x == b'\n').count() + 1);
        }
    }
    lines
}

#[test]
fn no_string_errors_in_src() {
    let crate_ = Crate::load();
    let mut found = Vec::new();
    for f in &crate_.files {
        let all = strip_comments_and_strings(
            &std::fs::read_to_string(src().join(&f.rel)).unwrap_or_default(),
        );
        for line in string_results(&all) {
            found.push(format!("src/{}:{line}", f.rel));
        }
    }
    assert!(
        found.is_empty(),
        "errors are typed (a thiserror enum), never Result<_, String>:\n{}",
        found.join("\n")
    );
}

/// Lines holding code (not blank, not only a comment), outside test-only items.
fn code_lines(f: &SourceFile) -> usize {
    f.code.lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn no_production_file_is_over_800_lines_of_code() {
    let crate_ = Crate::load();
    let found: Vec<String> = crate_
        .production()
        .filter(|(_, f)| code_lines(f) > 800)
        .map(|(_, f)| format!("src/{}: {} lines of code", f.rel, code_lines(f)))
        .collect();
    assert!(
        found.is_empty(),
        "split these along their seams:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cli_is_a_thin_shell() {
    let crate_ = Crate::load();
    let found: Vec<String> = crate_
        .production()
        .filter(|(_, f)| f.unit == Unit::Bin && code_lines(f) > 150)
        .map(|(_, f)| format!("src/{}: {} lines of code", f.rel, code_lines(f)))
        .collect();
    assert!(
        found.is_empty(),
        "each cli file declares flags and calls one library function; move decisions into \
         the library:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_wing_says_what_it_is_for_and_may_use() {
    for wing in ["runtime", "package", "iis"] {
        let text = std::fs::read_to_string(src().join(wing).join("mod.rs")).unwrap_or_default();
        let doc: String = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            doc.contains("May use") && doc.contains("starts"),
            "src/{wing}/mod.rs opens with what the wing is for, what it may use and where a \
             newcomer starts reading"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The parser's own tests
// ---------------------------------------------------------------------------------------------

mod parser {
    use super::*;

    fn paths(code: &str) -> Vec<String> {
        named_paths(&strip_comments_and_strings(code))
            .into_iter()
            .map(|n| n.path.join("::"))
            .collect()
    }

    #[test]
    fn grouped_and_nested_use_trees_expand_to_every_leaf() {
        assert_eq!(
            paths("use crate::a::{b, c::{d, e as f}, self, g::*};"),
            [
                "crate::a::b",
                "crate::a::c::d",
                "crate::a::c::e",
                "crate::a",
                "crate::a::g"
            ]
        );
        assert_eq!(
            paths("pub(crate) use super::{engine::{Conn, Flags}, exchange};"),
            [
                "super::engine::Conn",
                "super::engine::Flags",
                "super::exchange"
            ]
        );
        assert_eq!(
            paths("use std::io::{self, Read};"),
            ["std::io", "std::io::Read"]
        );
    }

    #[test]
    fn inline_paths_count_and_comments_and_strings_do_not() {
        let code = r##"
            // crate::package::x in a comment
            /* crate::iis::y */
            let s = "crate::runtime::z";
            let r = r#"crate::deploy"#;
            let c = '"';
            crate::xml::parse(s);
            super::super::win::watch();
        "##;
        assert_eq!(
            paths(code),
            ["crate::xml::parse", "super::super::win::watch"]
        );
    }

    #[test]
    fn test_gated_items_are_blanked() {
        let code = "fn a() {}\n#[cfg(test)]\nmod tests {\n use crate::iis::x;\n}\n\
                    #[cfg(all(test, unix))]\nuse crate::package::y;\nfn b() { crate::c::d(); }";
        let stripped = blank_test_items(&strip_comments_and_strings(code));
        assert_eq!(
            named_paths(&stripped)
                .into_iter()
                .map(|n| n.path.join("::"))
                .collect::<Vec<_>>(),
            ["crate::c::d"]
        );
        assert_eq!(
            test_gated_module_declarations("#[cfg(test)]\nmod tests;\n#[cfg(not(test))]\nmod x;"),
            ["tests"]
        );
    }

    #[test]
    fn inline_modules_shift_super() {
        let n = named_paths("mod win {\n use super::parse;\n}\nuse self::a::b;");
        assert_eq!(n[0].inline, ["win"]);
        assert!(n[1].inline.is_empty());
    }

    #[test]
    fn string_results_are_found_whatever_the_ok_type() {
        let code = "fn a() -> Result<(), String> {}\nfn b() -> Result<Vec<(u8, u8)>, String> {}\n\
                    fn c() -> Result<String, Error> {}\nfn d() -> io::Result<String> {}";
        assert_eq!(string_results(code), [1, 2]);
    }

    #[test]
    fn circles_are_found() {
        let edges = vec![
            BTreeSet::from([1]),
            BTreeSet::from([2]),
            BTreeSet::from([0]),
            BTreeSet::new(),
        ];
        let sccs = strongly_connected(&edges);
        assert!(sccs.contains(&vec![0, 1, 2]));
        assert!(sccs.contains(&vec![3]));
    }
}
