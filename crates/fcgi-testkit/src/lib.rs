//! The web server's side of FastCGI, as every test of iiswsgi plays it: one record encoder and
//! decoder, one IIS param table, one CGI response parser.
//!
//! Users: the codec's unit tests (`src/runtime/fastcgi/testkit.rs` wraps [`wire`] in its
//! `Wire` builder), the integration tests (`tests/support/fcgi_client.rs`,
//! `tests/support/iis_client.rs`, `tests/support/peers.rs`), the codec benchmark
//! (`benches/codec.rs`) and the Windows harness (`tests/windows-harness`).
//!
//! # Why a crate of its own, not a `testkit` feature of iiswsgi
//!
//! - **The Windows harness must build alone.** `.ci/windows` cross-builds
//!   `tests/windows-harness` for `x86_64-pc-windows-gnu` and runs it under Wine against the
//!   Python-free `iiswsgi.exe`. As a path dependency, this crate is all the harness builds
//!   besides `windows-sys`. A feature would make the harness depend on iiswsgi itself, so
//!   every build of it would compile iiswsgi and its dependency tree (clap, handlebars,
//!   quick-xml, mio, …) for Windows, and PyO3 too unless every manifest naming iiswsgi also
//!   remembered `default-features = false`.
//! - **Independent of the codec under test.** Everything here is written from
//!   `fastcgi-protocol.md` §1–§2 and `iis-runtime.md` §4–§7 and cannot reach
//!   `iiswsgi::runtime::fastcgi`: an encoder that shared the codec's misreading of the spec
//!   would agree with it and catch nothing. Inside the crate, behind a feature, nothing would
//!   stop the kit from borrowing the codec's types.
//! - **Test code stays out of the library.** A feature would put these helpers in iiswsgi's
//!   public API and in `src/`, where `tests/architecture.rs` forbids I/O next to the codec;
//!   the kit reads records from any `std::io::Read`.
//!
//! Standard library only: no dependencies, so it builds for any target in seconds.
//!
//! # Modules
//!
//! - [`wire`]: record types, the encoder (records, streams, name–value pairs in either length
//!   form) and the decoder (one record from a buffer, from a reader, or buffered).
//! - [`iis`]: IIS's param table for a request to an application ([`iis::IisRequest`],
//!   [`iis::IisApp`]), its ANSI path decoding, its request ids, and reading a reply the way
//!   IIS accepts it ([`iis::read_reply`]).
//! - [`cgi`]: the CGI response on STDOUT, and reading values back from the page of
//!   `iiswsgi run --diagnostic`.

pub mod cgi;
pub mod iis;
pub mod wire;
