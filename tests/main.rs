//! Integration tests: one crate, one module per subject, each exercising the built binary or
//! the library's public API against real files, real servers and real Python.

mod support;

#[cfg(unix)]
mod iis;
#[cfg(unix)]
mod peers;
#[cfg(unix)]
mod run;
