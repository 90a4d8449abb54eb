//! The crate's dependency rules, enforced by reading `src/`: who may name whom.
//!
//! These rules keep the codec testable without I/O, keep PyO3 in one room, and keep the
//! manifest the thing everything reads rather than something that reads everything.

use std::path::{Path, PathBuf};

fn src_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(src_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Code lines only: `//` comments (including docs) are dropped, so prose may name anything.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every (file, forbidden needle) pair found under `module`.
fn violations(module: &str, forbidden: &[&str]) -> Vec<String> {
    let root = src().join(module);
    let mut found = Vec::new();
    for file in src_files(&root) {
        let code = code_of(&file);
        for needle in forbidden {
            if code.contains(needle) {
                let rel = file
                    .strip_prefix(src())
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                found.push(format!("src/{rel} names `{needle}`"));
            }
        }
    }
    found
}

#[test]
fn fastcgi_codec_does_no_io_and_imports_nothing_else_from_the_crate() {
    let found = violations(
        "fastcgi",
        &[
            "std::net",
            "std::io::Read",
            "std::io::Write",
            "io::Read",
            "io::Write",
            "std::fs",
            "std::thread",
            "Instant::now",
            "SystemTime::now",
            "tokio",
            "pyo3",
            "crate::manifest",
            "crate::server",
            "crate::transport",
            "crate::wsgi",
            "crate::iis",
        ],
    );
    assert!(
        found.is_empty(),
        "the codec must stay sans-IO:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_wsgi_module_names_pyo3() {
    let mut found = Vec::new();
    for file in src_files(&src()) {
        if file.starts_with(src().join("wsgi")) {
            continue;
        }
        if code_of(&file).contains("pyo3") {
            found.push(file.display().to_string());
        }
    }
    assert!(
        found.is_empty(),
        "pyo3 outside src/wsgi:\n{}",
        found.join("\n")
    );
}

#[test]
fn manifest_reads_no_output_module() {
    let found = violations(
        "manifest",
        &[
            "crate::render",
            "crate::msdeploy",
            "crate::webpi",
            "crate::check",
            "crate::server",
            "crate::transport",
            "crate::wsgi",
            "crate::iis",
        ],
    );
    assert!(
        found.is_empty(),
        "manifest must not depend on its readers:\n{}",
        found.join("\n")
    );
}

#[test]
fn transport_moves_bytes_without_interpreting_them() {
    let found = violations(
        "transport",
        &["crate::fastcgi", "crate::wsgi", "crate::server"],
    );
    assert!(
        found.is_empty(),
        "transport must not interpret bytes:\n{}",
        found.join("\n")
    );
}

#[test]
fn server_and_packaging_never_name_python() {
    for module in [
        "server",
        "transport",
        "fastcgi",
        "msdeploy",
        "render",
        "webpi",
        "check",
    ] {
        let found = violations(module, &["crate::wsgi", "pyo3"]);
        assert!(
            found.is_empty(),
            "{module} must stay Python-agnostic:\n{}",
            found.join("\n")
        );
    }
}
