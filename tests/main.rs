//! Integration tests: one crate, one module per subject, each exercising the built binary or
//! the library's public API against real files, real servers and real Python.

mod architecture;
mod init;
mod manifest;
mod support;

#[cfg(unix)]
mod iis;
#[cfg(unix)]
mod peers;
#[cfg(unix)]
mod run;

#[cfg(all(unix, feature = "python"))]
mod wsgi;
