//! What only IIS does: its FastCGI environment variables, its environ quirks, appcmd and ACLs.
pub mod acl;
pub mod appcmd;
pub mod discover;
pub mod doctor;
pub mod python;
pub mod register;
pub mod report;
pub mod runner;
mod shim;
pub mod webconfig;
