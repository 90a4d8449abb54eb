//! The packaging wing: everything `iiswsgi init`, `package`, `feed` and `check` do, on any OS.
//!
//! - [`init`]: scaffolds `iiswsgi.toml` from a project;
//! - [`render`]: the handlebars templates in `templates/` and their context structs;
//! - [`msdeploy`]: the MSDeploy (Web Deploy) zip: plan, single-gate writer, reader;
//! - [`webpi`]: the WebPI feed entry and `iiswsgi feed`;
//! - [`check`]: the lint rules (Z, M, O, P, S, C, F) run on our output and on anyone's;
//! - `fuzzing`: the bodies of the `manifest` and `zip` fuzz targets (`fuzz/README.md`),
//!   compiled for tests and under `--cfg fuzzing` only.
//!
//! May use: the shared ground ([`crate::manifest`], [`crate::xml`], [`crate::fsutil`],
//! [`crate::deploy`]'s types). Never names [`crate::runtime`] or [`crate::iis`]. A newcomer
//! starts at [`msdeploy::package`], the `iiswsgi package` entry point.

pub mod check;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod init;
pub mod msdeploy;
pub mod render;
pub mod webpi;

/// Lowercase hex of `bytes`: how a package's SHA-1 is written (the build's summary, the feed's
/// `sha1`, `check`'s F rules comparing the two).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
