//! IIS's side of FastCGI, from the shared kit (`crates/fcgi-testkit`: written from
//! `iis-runtime.md` §4 and `fastcgi-protocol.md` §1–§2 and independent of iiswsgi's codec, so
//! that it catches that codec's bugs instead of sharing them).
//!
//! What this module adds is the harness's request: IIS's param table for the application
//! `/LM/W3SVC/1/ROOT/shop`, written the way IIS writes it (`BEGIN_REQUEST` with `KEEP_CONN` as
//! its own write, PARAMS in one or more records then an empty one, the body in STDIN records
//! of 8 KiB then an empty one). Replies are read by [`read_reply`], which holds them to what
//! IIS accepts: only types 3, 6 and 7, the request id echoed, an 8-byte `END_REQUEST`.

pub use fcgi_testkit::cgi::{Cgi, diag_value, fnv1a64};
use fcgi_testkit::iis::{IisApp, IisRequest};
pub use fcgi_testkit::iis::{iis_id, read_reply};
use fcgi_testkit::wire::{self, Lengths, Padding};

/// The params IIS sends (`iis-runtime.md` §6.1–§6.2) for `method uri` to the IIS application
/// `/LM/W3SVC/1/ROOT/shop`: request headers first (`HTTP_CONTENT_LENGTH` included), then the
/// fixed server-variable table, where `SCRIPT_NAME`, `PATH_INFO` and `URL` all hold the full
/// decoded path.
pub fn iis_params(method: &str, uri: &str, body_len: usize) -> Vec<(String, Vec<u8>)> {
    IisRequest::client(method, uri, "iiswsgi-windows-harness", body_len)
        .params(&IisApp::sub("/shop"))
}

/// One request the way IIS writes it: `BEGIN_REQUEST` alone (first element), then PARAMS, the
/// empty PARAMS, the body in 8 KiB STDIN records and the empty STDIN (second element).
/// `long_form` writes every pair length in the 4-byte form.
pub fn request_writes(
    id: u16,
    params: &[(String, Vec<u8>)],
    long_form: bool,
    body: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let lengths = if long_form {
        Lengths::Long
    } else {
        Lengths::Shortest
    };
    let pairs = wire::encode_pairs(params, lengths);
    let mut rest = wire::stream(wire::PARAMS, id, &pairs, 4096, Padding::None);
    rest.extend(wire::stream(wire::STDIN, id, body, 8192, Padding::None));
    let begin = wire::begin_request(id, wire::RESPONDER, wire::KEEP_CONN);
    (begin, rest)
}
