//! The bodies of the build side's `fuzz/` targets, kept in the crate so the very same code also
//! runs under stable Rust as proptest properties (`cargo test`), where nightly and libFuzzer
//! are absent.
//!
//! Compiled only for tests and under `cargo fuzz` (which sets `--cfg fuzzing`). These are
//! harnesses: their `assert!`s state invariants, and a failure is a bug.

use std::io::Cursor;
use std::path::Path;

use super::check::zip::lint_package_from;
use super::msdeploy::package::{PackageOptions, plan};
use super::msdeploy::reader::{read_directory, read_entry};
use super::msdeploy::timestamp::TimePolicy;
use crate::manifest::{Manifest, diagnostic};

/// Feeds `data`, as `iiswsgi.toml` text, to the manifest loader. Every diagnostic points
/// inside the text and renders without raw control characters; a manifest the loader
/// accepts (what `iiswsgi check iiswsgi.toml` passes) is one `iiswsgi package` can plan: its
/// generated Manifest.xml, Parameters.xml and web.config pass the M, O, P and C rules.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(text, Path::new("iiswsgi.toml")) {
        Err(e) => {
            for d in e.diagnostics() {
                if let Some(span) = &d.span {
                    assert!(span.start <= span.end && span.end <= text.len(), "{d:?}");
                }
            }
            assert_printable(&e.render());
        }
        Ok(m) => {
            assert_printable(&diagnostic::render(&m.warnings));
            let options = PackageOptions::new(
                "/nonexistent/dist",
                TimePolicy::new(1_700_000_000, Some(1_700_000_000)),
            );
            if let Err(e) = plan(&m, &options) {
                panic!(
                    "`check` accepts this manifest and `package` refuses it: {}\n{text}",
                    crate::error_chain(&e, ": ")
                );
            }
        }
    }
}

/// Feeds `data`, as a package zip, to `iiswsgi check`'s zip path (the reader, the Z rules, and
/// the M/O/P/C rules on the XML inside). No panic; every finding prints on one line without
/// raw control characters; no entry read yields more than its cap.
pub fn zip(data: &[u8]) {
    let findings = lint_package_from(&mut Cursor::new(data), "fuzz.zip");
    for f in &findings.0 {
        let line = f.to_string();
        assert!(!line.contains('\n'), "{line:?}");
        assert_printable(&line);
    }
    let mut cursor = Cursor::new(data);
    if let Ok(dir) = read_directory(&mut cursor) {
        for e in dir.entries.iter().take(64) {
            if let Ok(bytes) = read_entry(&mut cursor, e, 1 << 16) {
                assert!(bytes.len() as u64 == e.size && e.size <= 1 << 16);
            }
        }
    }
}

/// What `iiswsgi check` prints holds no character a terminal would act on but line feeds
/// and tabs.
fn assert_printable(out: &str) {
    assert_eq!(
        crate::printable(out, &['\n', '\t']),
        out,
        "unescaped control characters in the output"
    );
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// The examples' manifests: starting points that load, so that mutations reach the
    /// validator and the planner rather than stopping at TOML syntax.
    const SEEDS: [&str; 3] = [
        include_str!("../../examples/flask-hello/iiswsgi.toml"),
        include_str!("../../examples/django-site/iiswsgi.toml"),
        include_str!("../../examples/plain-wsgi/iiswsgi.toml"),
    ];

    /// A small package: Manifest.xml, Parameters.xml, web.config and a file.
    fn package() -> Vec<u8> {
        crate::package::check::zip::tests::zip_of(&[
            ("Manifest.xml", &b"<MSDeploy.iisApp><iisApp path='A'/><setAcl path='A/d' setAclAccess='Modify'/></MSDeploy.iisApp>"[..]),
            ("Parameters.xml", b"<parameters><parameter name='Application Path' defaultValue='Default Web Site/A' tags='IisApp'><parameterEntry kind='ProviderPath' scope='iisApp' match='^A$'/></parameter></parameters>"),
            ("A/web.config", b"<configuration><system.webServer/></configuration>"),
            ("A/d/x.txt", b"hello hello"),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn fuzz_manifest_body_holds_for_arbitrary_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            super::manifest(&data);
        }

        #[test]
        fn fuzz_manifest_body_holds_for_mutated_examples(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((any::<usize>(), "[ -~\n\u{1b}\u{0}é]{0,12}", 0usize..16), 1..6),
        ) {
            let mut text = SEEDS[seed].to_string();
            for (at, insert, remove) in edits {
                let mut at = at % (text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + remove).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, &insert);
            }
            super::manifest(text.as_bytes());
        }

        #[test]
        fn fuzz_zip_body_holds_for_arbitrary_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            super::zip(&data);
        }

        #[test]
        fn fuzz_zip_body_holds_for_mutated_packages(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        ) {
            let mut bytes = package();
            for (at, b) in edits {
                let n = bytes.len();
                bytes[at % n] = b;
            }
            super::zip(&bytes);
        }
    }

    #[test]
    fn fuzz_seeds_pass_both_bodies() {
        for seed in SEEDS {
            super::manifest(seed.as_bytes());
        }
        super::zip(&package());
    }
}
