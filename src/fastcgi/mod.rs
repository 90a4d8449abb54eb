//! A sans-IO FastCGI 1.0 codec: bytes in, events out; responses in, bytes out.
//!
//! No sockets, no clocks, no threads, nothing else from this crate.
