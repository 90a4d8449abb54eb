//! The bodies of the `fuzz/` targets, kept in the crate so the very same code also runs under
//! stable Rust as proptest properties (`cargo test`), where nightly and libFuzzer are absent.
//!
//! Compiled only for tests and under `cargo fuzz` (which sets `--cfg fuzzing`). These are
//! harnesses: their `assert!`s state invariants of the codec, and a failure is a bug.

use std::collections::BTreeSet;

use super::{Config, Connection, Event, Limits, ParamsParser, encode_pair};

/// Feeds `data` to a [`Connection`]: the first byte picks the configuration (IIS, generic,
/// multiplexing) and the read size, the rest is the wire. Answers every request the way the
/// server would and checks that the codec always lets it.
pub fn record_decoder(data: &[u8]) {
    let Some((&selector, wire)) = data.split_first() else {
        return;
    };
    let config = match selector % 3 {
        0 => Config::iis(),
        1 => Config::generic(8),
        _ => Config::multiplexing(8),
    };
    let read_size = usize::from(selector / 3).max(1);
    let mut conn = Connection::new(config);
    // Ids ended and at once reopened by a pipelined BEGIN_REQUEST that `end_request` let
    // through: their next request event must announce the new request.
    let mut reopened = BTreeSet::new();
    for read in wire.chunks(read_size) {
        if conn.recv(read).is_err() {
            assert!(!conn.wants_input(), "a framing fault stops input");
            break;
        }
        while let Some(event) = conn.poll_event() {
            let announces = matches!(event, Event::Request { .. } | Event::Rejected { .. });
            if !matches!(event, Event::UnknownRecord { .. }) && reopened.remove(&event.id()) {
                assert!(announces, "a reused id is announced before its input");
            }
            if let Event::StdinEnd { id } | Event::Abort { id } = event {
                assert!(conn.send_stdout(id, b"Status: 204\r\n\r\n").is_ok());
                assert!(
                    conn.end_request(id, 0).is_ok(),
                    "an announced request can end"
                );
                if conn.request_state(id).is_some() {
                    reopened.insert(id);
                } else {
                    assert!(
                        conn.send_stdout(id, b"late").is_err(),
                        "nothing after END_REQUEST"
                    );
                }
            }
        }
        let written = conn.pending_output().len();
        conn.consume_output(written);
    }
    let _ = conn.recv_eof();
}

/// Feeds `data` to a [`ParamsParser`]: the first byte picks the split size, the rest is one
/// PARAMS stream. Accepted params stay within the caps and survive an encode/parse round trip.
pub fn params(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_params_len: 4096,
        max_pairs: 64,
        ..Limits::default()
    };
    let mut parser = ParamsParser::new(&limits);
    for piece in stream.chunks(usize::from(selector).max(1)) {
        parser.feed(piece);
    }
    let Ok(params) = parser.finish() else {
        return;
    };
    assert!(params.byte_len() <= limits.max_params_len && params.len() <= limits.max_pairs);
    let mut again = Vec::new();
    for (name, value) in &params {
        assert!(encode_pair(&mut again, name, value).is_ok());
    }
    let mut reparsed = ParamsParser::new(&limits);
    reparsed.feed(&again);
    assert_eq!(reparsed.finish().as_ref(), Ok(&params), "round trip");
}

#[cfg(test)]
mod tests {
    use crate::runtime::fastcgi::testkit::{arb_conversation_record, wire_of};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn fuzz_record_decoder_body_holds_for_arbitrary_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            super::record_decoder(&data);
        }

        #[test]
        fn fuzz_record_decoder_body_holds_for_random_conversations(
            selector in any::<u8>(),
            records in proptest::collection::vec(arb_conversation_record(), 0..60),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut data = vec![selector];
            data.extend(wire_of(&records));
            data.extend(tail);
            super::record_decoder(&data);
        }

        #[test]
        fn fuzz_params_body_holds_for_arbitrary_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            super::params(&data);
        }
    }
}
