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
