//! MSDeploy (Web Deploy) packages: the App Gallery zip, its Manifest.xml options blobs, its writer.

pub mod provider_options;

pub use provider_options::{OptionsError, ProviderOptions};
