//! The IIS administration wing: setting a server up for an app, on Windows (and as dry runs
//! everywhere else).
//!
//! - [`install`], [`register`], [`doctor`]: `iiswsgi install`, `iiswsgi iis enable|disable`
//!   and `iiswsgi doctor`, built on [`appcmd`] and [`acl`] (command lines, pure), [`discover`]
//!   (the app folder), [`python`], [`webconfig`], [`runner`] and [`report`];
//! - [`request`]: the door for the binary: the flags as given, resolved (absolute paths, this
//!   executable, which IIS) and passed to one of the commands above.
//!
//! Everything that changes a server goes through a [`runner::Runner`], so each command has a
//! dry run (`--dry-run`, the default off Windows) that prints the exact command lines.
//!
//! May use: the shared ground ([`crate::manifest`], [`crate::venv`], [`crate::xml`],
//! [`crate::fsutil`]) and, for what the package decided (the FastCGI key, the install stamp,
//! the web.config template), only [`crate::deploy`]. Never names [`crate::runtime`]. A
//! newcomer starts at [`install`], the step msdeploy's runCommand runs on the server.

pub mod acl;
pub mod appcmd;
pub mod discover;
pub mod doctor;
pub mod install;
pub mod python;
pub mod register;
pub mod report;
pub mod request;
pub mod runner;
pub mod webconfig;
