//! Helpers shared by the integration tests: real peers and clients, started and stopped here.

#[cfg(unix)]
pub mod fcgi_client;
#[cfg(unix)]
pub mod iis_client;
/// `msdeploy -verb:sync` with skip rules, emulated on a folder (the redeploy tests).
pub mod msdeploy_sync;
#[cfg(unix)]
pub mod peers;
#[cfg(all(unix, feature = "python"))]
pub mod sites;
#[cfg(all(unix, feature = "python"))]
pub mod venv;
#[cfg(unix)]
pub mod wait;
/// Wine's cmd.exe and the mingw stand-ins for the batch-file tests.
pub mod wine;

use std::path::Path;

/// Replaces `from` with `to` in the file at `path` (an example's manifest, a generated one),
/// failing the test when the file does not hold `from`: what it was copied or generated from
/// changed, and the test must follow it rather than run on something else.
pub fn replace_in_file(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.contains(from),
        "{} no longer holds {from:?} (what it came from changed):\n{text}",
        path.display()
    );
    std::fs::write(path, text.replace(from, to))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
