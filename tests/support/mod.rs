//! Helpers shared by the integration tests: real peers and clients, started and stopped here.

#[cfg(unix)]
pub mod fcgi_client;
#[cfg(unix)]
pub mod iis_client;
#[cfg(unix)]
pub mod peers;
#[cfg(all(unix, feature = "python"))]
pub mod sites;
#[cfg(all(unix, feature = "python"))]
pub mod venv;
#[cfg(unix)]
pub mod wait;
