//! The `iiswsgi.toml` manifest through the library's public API: the examples are valid, the
//! committed JSON schema is current, and every kind of mistake is reported with its message
//! and `line:col`.

use std::path::{Path, PathBuf};

use iiswsgi::manifest::{self, Manifest, ManifestError};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

mod schema {
    use super::*;

    /// Regenerate with `IISWSGI_BLESS=1 cargo test --no-default-features manifest_schema`.
    #[test]
    fn manifest_schema_committed_file_is_current() {
        let path = repo().join(manifest::schema::SCHEMA_PATH);
        let generated = manifest::schema::json_schema();
        if std::env::var_os("IISWSGI_BLESS").is_some() {
            std::fs::write(&path, &generated).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is stale: the raw manifest types changed.\nRegenerate it with:\n    IISWSGI_BLESS=1 cargo test --no-default-features manifest_schema\nand commit the result.",
            path.display()
        );
    }
}
