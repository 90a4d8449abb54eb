//! Helpers shared by the integration tests: real peers and clients, started and stopped here.

pub mod iis_client;
pub mod peers;
