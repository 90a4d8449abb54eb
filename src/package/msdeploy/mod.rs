//! MSDeploy (Web Deploy) packages: the App Gallery zip, its Manifest.xml options blobs, its writer.
//!
//! - [`provider_options`]: the `MSDeploy.MSDeployProviderOptions` codec (spec §3);
//! - [`limits`]: what a package can hold (entries, bytes per file);
//! - [`zip_path`]: entry names valid in a zip and on Windows;
//! - [`timestamp`]: which time each entry gets (spec §1.3);
//! - [`writer`]: the single gate every entry passes, and the zip / in-memory backends;
//! - [`reader`]: the central directory and entries of an existing zip;
//! - [`redeploy`]: what the server owns in the app folder, and the skip rules that keep it;
//! - [`contents`]: what of the project goes into the package, and why the rest does not;
//! - [`deploy_files`]: SetParameters.xml, deploy.cmd and its readme next to the zip;
//! - [`package`]: `iiswsgi package`: plan (pure) then write.

pub mod contents;
pub mod deploy_files;
pub mod error;
pub mod limits;
pub mod package;
pub mod provider_options;
pub mod reader;
pub mod redeploy;
pub mod timestamp;
pub mod writer;
pub mod zip_path;

pub use error::PackageError;
pub use provider_options::{OptionsError, ProviderOptions};
pub use zip_path::ZipPath;
