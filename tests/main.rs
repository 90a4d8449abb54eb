//! Integration tests: one crate, one module per subject, each exercising the built binary or
//! the library's public API against real files, real servers and real Python.

mod support;

mod iis;
mod peers;
