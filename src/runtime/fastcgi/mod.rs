//! A sans-IO FastCGI 1.0 codec: bytes in, events out; responses in, bytes out.
//!
//! This module exists so that every protocol decision (`fastcgi-protocol.md`, and the IIS
//! rules of `iis-runtime.md` §4 and §12) is made in one deterministic place that tests can
//! drive byte by byte. It refuses to do I/O: no sockets, no `Read`/`Write` streams, no
//! threads, no clocks, and nothing else from this crate. `crate::runtime::server` owns the sockets
//! and the application; it feeds bytes in and writes bytes out.
//!
//! # Layers
//!
//! - [`record`]: the 8-byte [`RecordHeader`], [`RecordType`] / [`Role`] /
//!   [`ProtocolStatus`] enums, the low-level [`Decoder`] (whole records off a `BytesMut`,
//!   any padding, any split), and the output framers: [`encode_stream`] (copying),
//!   [`stream_frames`] (headers only, for `writev(header, &data[range], padding)`) and
//!   [`end_request_bytes`] (empty STDOUT + `END_REQUEST` in one 24-byte buffer).
//! - [`params`]: the incremental [`ParamsParser`] (one PARAMS stream split at any byte,
//!   1- and 4-byte lengths, caps checked before allocating), [`Params`], [`encode_pair`].
//! - [`connection`]: the [`Connection`] state machine that a server drives:
//!
//! ```
//! use iiswsgi::runtime::fastcgi::{Config, Connection, Event};
//!
//! let mut conn = Connection::new(Config::iis());
//! # let wire: Vec<u8> = [
//! #     &[1u8, 1, 0, 7, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0][..],   // BEGIN_REQUEST id 7
//! #     &[1, 4, 0, 7, 0, 8, 0, 0, 3, 3, b'F', b'O', b'O', b'b', b'a', b'r'], // PARAMS
//! #     &[1, 4, 0, 7, 0, 0, 0, 0, 1, 5, 0, 7, 0, 0, 0, 0],        // empty PARAMS, STDIN
//! # ].concat();
//! conn.recv(&wire)?; // bytes the server read; any split works
//! while let Some(event) = conn.poll_event() {
//!     match event {
//!         Event::Request { id, params, .. } => {
//!             assert_eq!(params.get(b"FOO"), Some(&b"bar"[..]));
//!             conn.send_stdout(id, b"Status: 200 OK\r\n\r\nhello").unwrap();
//!         }
//!         Event::StdinEnd { id } => conn.end_request(id, 0).unwrap(),
//!         _ => {}
//!     }
//! }
//! let out = conn.pending_output().to_vec(); // write these, then:
//! conn.consume_output(out.len());
//! assert_eq!(&out[..8], &[1, 6, 0, 7, 0, 23, 1, 0]); // STDOUT, id 7 echoed, 23 bytes + 1 pad
//! # Ok::<(), iiswsgi::runtime::fastcgi::DecodeError>(())
//! ```
//!
//! # Decisions
//!
//! - **Version byte.** Only 1 is accepted; anything else is [`DecodeError::UnsupportedVersion`]
//!   and the connection must close (edge case 16). A wrong version almost always means the
//!   stream lost sync (HyperFastCgi #55 saw "version 0"), and guessing on would misread
//!   everything after. IIS does not check the version of what *we* send; we always send 1.
//! - **Limits.** Every bound is a [`Limits`] field whose default is a documented constant.
//!   Oversized or malformed params reject one request ([`Event::Rejected`], answered 431 or
//!   400); they never break framing.
//! - **Management.** `GET_VALUES` is answered by the codec from [`Config`], with only the
//!   three names it knows, each once. Any other type on id 0 — application types included,
//!   as libfcgi does — gets `UNKNOWN_TYPE` unless [`Config::unknown_type_replies`] is off
//!   (IIS). Unknown types on a request id are reported ([`Event::UnknownRecord`]) and
//!   ignored; management or app-side types on a request id, DATA, and records for ids that
//!   are not open are discarded silently. Nothing is ever sent unsolicited.
//! - **Streams.** STDIN before the PARAMS stream ended rejects the request as malformed
//!   (400); STDIN after its empty record, PARAMS after theirs, and a second `BEGIN_REQUEST`
//!   for an open id are ignored.
//! - **Ending.** [`Connection::end_request`] always sends the empty STDOUT and
//!   `END_REQUEST{app_status, REQUEST_COMPLETE}` together (IIS needs both, even for failed
//!   and aborted requests). Refusals the codec makes itself (`CANT_MPX_CONN`,
//!   `UNKNOWN_ROLE`, `OVERLOADED`) send `END_REQUEST` alone, as libfcgi does; an abort
//!   before the params ended gets the empty STDOUT too.
//! - **Pipelining.** See [`Connection`]: an overlapping request gets `CANT_MPX_CONN`, a
//!   pipelined one waits its turn.
//!
//! # Fuzzing
//!
//! `fuzz/` is a cargo-fuzz crate outside the workspace (see `fuzz/README.md`):
//! `cargo +nightly fuzz run record_decoder` and `cargo +nightly fuzz run params`. The target
//! bodies live in `fuzzing.rs` (compiled for tests and under `--cfg fuzzing` only), so the
//! same code also runs on stable as proptest properties in `cargo test`.

pub mod config;
pub mod connection;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod params;
pub mod record;
#[cfg(test)]
pub(crate) mod testkit;

pub use config::{Config, Limits};
pub use connection::{Connection, Event, RequestState, StateError};
pub use params::{Params, ParamsParser, Rejection, encode_pair};
pub use record::{
    BeginRequestBody, DecodeError, Decoder, END_REQUEST_BYTES_LEN, EncodeError, EndRequestBody,
    Frame, HEADER_LEN, KEEP_CONN, MAX_CONTENT_LEN, MAX_RECORD_LEN, MAX_STREAM_CHUNK,
    ProtocolStatus, Record, RecordHeader, RecordType, Role, StreamFrames, encode_stream,
    end_request_bytes, stream_frames,
};
