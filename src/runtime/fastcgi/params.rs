//! Name-value pairs (`fastcgi-protocol.md` §1.4): the incremental [`ParamsParser`] that reads
//! a PARAMS stream split at any byte, the [`Params`] it produces, and the pair encoder.
//!
//! The parser is where the CVE-2025-23016 lesson lives (§8): lengths are masked to 31 bits,
//! added in checked `usize`, and checked against every cap *before* a byte is stored — the
//! name and value caps, the pair count, and the part of the total budget the stream may
//! still deliver. Bytes are stored only as they actually arrive, so a pair that claims
//! 2 GiB allocates nothing. A cap exceeded rejects the request ([`Rejection`]); the records
//! around it keep their framing, so the connection goes on.

use std::fmt;

use super::config::Limits;
use super::record::EncodeError;

/// Largest length the 4-byte form can express (31 bits).
pub const MAX_PAIR_LEN: usize = 0x7fff_ffff;
/// Largest length the 1-byte form can express.
pub const MAX_SHORT_LEN: usize = 127;

/// Why a request's params were refused. The records around them stayed well framed, so the
/// connection goes on; the server answers the request with [`Rejection::http_status`] and
/// ends it normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// A name longer than [`Limits::max_name_len`].
    NameTooLong,
    /// A value longer than [`Limits::max_value_len`].
    ValueTooLong,
    /// Names and values together longer than [`Limits::max_params_len`].
    ParamsTooLarge,
    /// More pairs than [`Limits::max_pairs`].
    TooManyPairs,
    /// The PARAMS stream ended inside a pair (nginx 1.22 sends such streams for names of 128
    /// bytes or more), or STDIN arrived before the PARAMS stream ended.
    Malformed,
}

impl Rejection {
    /// The HTTP status the server answers with: 431 for a cap, 400 for a malformed stream.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::Malformed => 400,
            _ => 431,
        }
    }

    /// A short static description, for logs and the error page.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NameTooLong => "a FastCGI param name exceeds the configured limit",
            Self::ValueTooLong => "a FastCGI param value exceeds the configured limit",
            Self::ParamsTooLarge => "the FastCGI params exceed the configured total size",
            Self::TooManyPairs => "the FastCGI params exceed the configured pair count",
            Self::Malformed => "the FastCGI params stream is malformed",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Rejection {}

/// A request's params in arrival order, stored as raw bytes (no decoding) in one buffer.
///
/// Duplicate names are kept; [`Params::get`] resolves them last-wins (`fastcgi-protocol.md`
/// edge case 18).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    bytes: Vec<u8>,
    /// Per pair: start of the name in `bytes`, name length, value length.
    index: Vec<(usize, usize, usize)>,
}

impl Params {
    /// Empty params.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of pairs, duplicates included.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Names and values together, in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The pair at `i` in arrival order.
    pub fn pair(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let &(start, name_len, value_len) = self.index.get(i)?;
        let mid = start + name_len;
        Some((&self.bytes[start..mid], &self.bytes[mid..mid + value_len]))
    }

    /// The pairs in arrival order.
    pub fn iter(&self) -> ParamsIter<'_> {
        ParamsIter {
            params: self,
            next: 0,
        }
    }

    /// The value of the last pair named `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        (0..self.len())
            .rev()
            .filter_map(|i| self.pair(i))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// Appends a pair (for servers that build or rewrite params).
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.index.push((start, name.len(), value.len()));
    }

    /// The pairs as owned byte vectors, in arrival order.
    pub fn to_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
    }

    /// Removes every pair, keeping the allocations.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.index.clear();
    }

    /// Starts a pair whose lengths are known; its bytes follow through `push_bytes`.
    fn begin_pair(&mut self, name_len: usize, value_len: usize) {
        self.index.push((self.bytes.len(), name_len, value_len));
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Drops a pair whose bytes did not all arrive.
    fn drop_incomplete_pair(&mut self) {
        if let Some((start, _, _)) = self.index.pop() {
            self.bytes.truncate(start);
        }
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

impl<'a> IntoIterator for &'a Params {
    type Item = (&'a [u8], &'a [u8]);
    type IntoIter = ParamsIter<'a>;
    fn into_iter(self) -> ParamsIter<'a> {
        self.iter()
    }
}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (n, v) in iter {
            params.push(n.as_ref(), v.as_ref());
        }
        params
    }
}

/// Iterator over [`Params`] pairs in arrival order.
#[derive(Debug, Clone)]
pub struct ParamsIter<'a> {
    params: &'a Params,
    next: usize,
}

impl<'a> Iterator for ParamsIter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let pair = self.params.pair(self.next)?;
        self.next += 1;
        Some(pair)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.params.len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ParamsIter<'_> {}

/// Where the parser is inside the pair stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    /// Reading the two length fields; `have` bytes of them are in `ParamsParser::lengths`.
    Lengths { have: usize },
    /// Storing name and value bytes; `remaining` of them are still to come.
    Data { remaining: usize },
    /// A cap was exceeded or the stream was malformed: everything else is discarded.
    Rejected(Rejection),
}

/// Incremental parser for one PARAMS stream: feed it the content of each PARAMS record in
/// order, split anywhere, then call [`ParamsParser::finish`] at the empty record.
#[derive(Debug, Clone)]
pub struct ParamsParser {
    state: PairState,
    lengths: [u8; 8],
    params: Params,
    name_max: usize,
    value_max: usize,
    total_max: usize,
    pairs_max: usize,
}

impl ParamsParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self::with_params(limits, Params::new())
    }

    /// A parser that fills `params` (cleared first), reusing its allocations.
    pub fn with_params(limits: &Limits, mut params: Params) -> Self {
        params.clear();
        Self {
            state: PairState::Lengths { have: 0 },
            lengths: [0; 8],
            params,
            name_max: limits.max_name_len,
            value_max: limits.max_value_len,
            total_max: limits.max_params_len,
            pairs_max: limits.max_pairs,
        }
    }

    /// Whether the stream has already been refused; later bytes are ignored.
    pub fn rejection(&self) -> Option<Rejection> {
        match self.state {
            PairState::Rejected(why) => Some(why),
            _ => None,
        }
    }

    /// Refuses the stream (for example because STDIN arrived before it ended).
    pub fn reject(&mut self, why: Rejection) {
        if self.rejection().is_none() {
            self.state = PairState::Rejected(why);
            self.params.clear();
        }
    }

    /// Parses the next bytes of the stream.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            match self.state {
                PairState::Rejected(_) => return,
                PairState::Lengths { mut have } => {
                    // Copy one length byte at a time until both lengths are known (≤ 8 bytes).
                    loop {
                        let need = lengths_needed(&self.lengths[..have]);
                        if have == need {
                            break;
                        }
                        let Some((&byte, rest)) = input.split_first() else {
                            self.state = PairState::Lengths { have };
                            return;
                        };
                        self.lengths[have] = byte;
                        have += 1;
                        input = rest;
                    }
                    let (name_len, used) = read_length(&self.lengths);
                    let (value_len, _) = read_length(&self.lengths[used..]);
                    if let Err(why) = self.admit(name_len, value_len) {
                        self.reject(why);
                        return;
                    }
                    self.params.begin_pair(name_len, value_len);
                    // Checked in `admit`: name_len + value_len ≤ total_max.
                    let remaining = name_len + value_len;
                    self.state = if remaining == 0 {
                        PairState::Lengths { have: 0 }
                    } else {
                        PairState::Data { remaining }
                    };
                }
                PairState::Data { remaining } => {
                    let take = remaining.min(input.len());
                    self.params.push_bytes(&input[..take]);
                    input = &input[take..];
                    self.state = if take == remaining {
                        PairState::Lengths { have: 0 }
                    } else {
                        PairState::Data {
                            remaining: remaining - take,
                        }
                    };
                }
            }
        }
    }

    /// Checks a pair's lengths against every cap before any of its bytes is stored.
    fn admit(&self, name_len: usize, value_len: usize) -> Result<(), Rejection> {
        if name_len > self.name_max {
            return Err(Rejection::NameTooLong);
        }
        if value_len > self.value_max {
            return Err(Rejection::ValueTooLong);
        }
        if self.params.len() >= self.pairs_max {
            return Err(Rejection::TooManyPairs);
        }
        let total = self
            .params
            .byte_len()
            .checked_add(name_len)
            .and_then(|t| t.checked_add(value_len));
        match total {
            Some(total) if total <= self.total_max => Ok(()),
            _ => Err(Rejection::ParamsTooLarge),
        }
    }

    /// Ends the stream: the params, or why they were refused. A stream that stops inside a
    /// pair is [`Rejection::Malformed`].
    pub fn finish(mut self) -> Result<Params, Rejection> {
        match self.state {
            PairState::Rejected(why) => Err(why),
            PairState::Lengths { have: 0 } => Ok(self.params),
            PairState::Lengths { .. } | PairState::Data { .. } => {
                self.params.drop_incomplete_pair();
                Err(Rejection::Malformed)
            }
        }
    }
}

/// How many length bytes a pair needs, given the ones read so far: 2 to 8.
fn lengths_needed(have: &[u8]) -> usize {
    let name = match have.first() {
        None => return 1,
        Some(&b) if b & 0x80 != 0 => 4,
        Some(_) => 1,
    };
    match have.get(name) {
        None => name + 1,
        Some(&b) if b & 0x80 != 0 => name + 4,
        Some(_) => name + 1,
    }
}

/// Reads one length field from the front of `bytes` (which holds a complete field): the
/// length and the bytes it used. The 4-byte form is masked to 31 bits.
fn read_length(bytes: &[u8]) -> (usize, usize) {
    match bytes {
        [b0, b1, b2, b3, ..] if b0 & 0x80 != 0 => {
            let raw = u32::from_be_bytes([*b0, *b1, *b2, *b3]) & 0x7fff_ffff;
            // u32 → usize is lossless on every target Rust supports here (≥ 32 bits).
            (raw as usize, 4)
        }
        [b0, ..] => (usize::from(*b0), 1),
        [] => (0, 0),
    }
}

/// Appends one length field: the 1-byte form for ≤ 127 unless `long`, else the 4-byte form.
pub fn encode_length(out: &mut Vec<u8>, len: usize, long: bool) -> Result<(), EncodeError> {
    if len > MAX_PAIR_LEN {
        return Err(EncodeError::PairTooLong);
    }
    if len <= MAX_SHORT_LEN && !long {
        out.push(len as u8);
    } else {
        out.extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
    }
    Ok(())
}

/// Appends one name-value pair, each length in its shortest form.
pub fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) -> Result<(), EncodeError> {
    if name.len() > MAX_PAIR_LEN || value.len() > MAX_PAIR_LEN {
        return Err(EncodeError::PairTooLong);
    }
    encode_length(out, name.len(), false)?;
    encode_length(out, value.len(), false)?;
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    Ok(())
}

/// Reads the pairs of one complete pair block (a `GET_VALUES` body), stopping at the first
/// pair that does not fit; lengths are bounded by the block itself, so nothing is allocated.
pub fn pairs_in(block: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = block;
    std::iter::from_fn(move || {
        let need = lengths_needed(rest.get(..1).unwrap_or(&[]));
        let need = lengths_needed(rest.get(..need.min(rest.len()))?);
        let head = rest.get(..need)?;
        let (name_len, used) = read_length(head);
        let (value_len, _) = read_length(&head[used..]);
        let body = &rest[need..];
        let name = body.get(..name_len)?;
        let value = body.get(name_len..name_len.checked_add(value_len)?)?;
        rest = &body[name_len + value_len..];
        Some((name, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fastcgi::testkit::{
        Script, Wire, allocated_by, assert_any_split, long_form_pair,
    };
    use crate::runtime::fastcgi::{Config, Event};
    use proptest::prelude::*;

    /// Runs a raw PARAMS stream through a connection with every split (of the stream across
    /// records of `per_record` bytes, and of the wire across reads) and returns the outcome.
    fn parse_via_connection(
        limits: Limits,
        stream: &[u8],
        per_record: usize,
    ) -> Result<Params, Rejection> {
        let mut config = Config::generic(4);
        config.limits = limits;
        let wire = Wire::new()
            .begin(1, true)
            .params_stream(1, stream, per_record)
            .stdin(1, b"", 1);
        let t = assert_any_split(&config, Script::Passive, &wire.bytes);
        match &t.events[0] {
            Event::Request { params, .. } => Ok(params.clone()),
            Event::Rejected { reason, .. } => Err(*reason),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn parse(stream: &[u8]) -> Result<Params, Rejection> {
        let mut parser = ParamsParser::new(&Limits::default());
        parser.feed(stream);
        parser.finish()
    }

    fn pairs(params: &Params) -> Vec<(Vec<u8>, Vec<u8>)> {
        params.to_pairs()
    }

    mod lengths {
        use super::*;

        #[test]
        fn long_form_length_is_accepted_for_lengths_up_to_127() {
            let mut stream = long_form_pair(b"NAME", b"v");
            stream.extend(long_form_pair(b"", b""));
            let params = parse_via_connection(Limits::default(), &stream, 3).unwrap();
            assert_eq!(
                pairs(&params),
                [(b"NAME".to_vec(), b"v".to_vec()), (vec![], vec![])]
            );
        }

        #[test]
        fn lengths_at_the_127_128_boundary_round_trip_in_both_forms() {
            for len in [0usize, 1, 126, 127, 128, 129, 255, 256, 1024] {
                let name = vec![b'n'; len.min(1024)];
                let value = vec![b'v'; len];
                let mut short = Vec::new();
                encode_pair(&mut short, &name, &value).unwrap();
                assert_eq!(short[0] & 0x80 != 0, name.len() > 127, "len {len}");
                for stream in [short, long_form_pair(&name, &value)] {
                    let params = parse(&stream).unwrap();
                    assert_eq!(params.pair(0), Some((&name[..], &value[..])), "len {len}");
                }
            }
        }

        #[test]
        fn long_form_high_bit_is_masked_to_31_bits() {
            let mut out = Vec::new();
            encode_length(&mut out, MAX_PAIR_LEN, false).unwrap();
            assert_eq!(out, [0xFF, 0xFF, 0xFF, 0xFF]);
            assert_eq!(read_length(&out), (MAX_PAIR_LEN, 4));
            assert_eq!(
                encode_length(&mut out, MAX_PAIR_LEN + 1, true),
                Err(EncodeError::PairTooLong)
            );
        }
    }

    mod splitting {
        use super::*;

        #[test]
        fn pair_split_across_params_records_at_any_offset_decodes_once() {
            let mut stream = Vec::new();
            encode_pair(&mut stream, b"REQUEST_URI", b"/a/b?c=d").unwrap();
            stream.extend(long_form_pair(b"HTTP_X", &[b'x'; 200]));
            encode_pair(&mut stream, &[b'N'; 130], b"").unwrap();
            for per_record in 1..=stream.len() {
                let params = parse_via_connection(Limits::default(), &stream, per_record).unwrap();
                assert_eq!(params.len(), 3, "records of {per_record}");
                assert_eq!(params.get(b"HTTP_X"), Some(&[b'x'; 200][..]));
                assert_eq!(params.get(&[b'N'; 130]), Some(&b""[..]));
            }
        }

        #[test]
        fn duplicate_name_resolves_last_wins_and_both_are_kept() {
            let mut stream = Vec::new();
            encode_pair(&mut stream, b"SCRIPT_NAME", b"/index.php").unwrap();
            encode_pair(&mut stream, b"SCRIPT_NAME", b"").unwrap();
            let params = parse_via_connection(Limits::default(), &stream, 5).unwrap();
            assert_eq!(params.get(b"SCRIPT_NAME"), Some(&b""[..]));
            assert_eq!(params.len(), 2);
        }

        #[test]
        fn stream_ending_inside_lengths_or_data_is_malformed() {
            let mut stream = Vec::new();
            encode_pair(&mut stream, b"NAME", b"value").unwrap();
            for cut in 1..stream.len() {
                assert_eq!(
                    parse(&stream[..cut]),
                    Err(Rejection::Malformed),
                    "cut {cut}"
                );
            }
            assert_eq!(parse(&[0x80, 0, 0]), Err(Rejection::Malformed));
            assert!(parse(&[]).unwrap().is_empty());
        }
    }

    mod caps {
        use super::*;

        fn limits(name: usize, value: usize, total: usize, pairs: usize) -> Limits {
            Limits {
                max_name_len: name,
                max_value_len: value,
                max_params_len: total,
                max_pairs: pairs,
                ..Limits::default()
            }
        }

        fn stream_of(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
            let mut out = Vec::new();
            for (n, v) in pairs {
                encode_pair(&mut out, n, v).unwrap();
            }
            out
        }

        #[test]
        fn each_cap_is_enforced_at_its_exact_boundary() {
            let s = stream_of(&[(b"abcd", b"12345678")]);
            let ok = |l| parse_via_connection(l, &s, 3).map(|p| p.len());
            assert_eq!(ok(limits(4, 8, 12, 1)), Ok(1));
            assert_eq!(ok(limits(3, 8, 12, 1)), Err(Rejection::NameTooLong));
            assert_eq!(ok(limits(4, 7, 12, 1)), Err(Rejection::ValueTooLong));
            assert_eq!(ok(limits(4, 8, 11, 1)), Err(Rejection::ParamsTooLarge));
            assert_eq!(ok(limits(4, 8, 12, 0)), Err(Rejection::TooManyPairs));
        }

        #[test]
        fn rejection_maps_caps_to_431_and_malformed_to_400() {
            for r in [
                Rejection::NameTooLong,
                Rejection::ValueTooLong,
                Rejection::ParamsTooLarge,
                Rejection::TooManyPairs,
            ] {
                assert_eq!(r.http_status(), 431);
            }
            assert_eq!(Rejection::Malformed.http_status(), 400);
        }

        #[test]
        fn pair_count_cap_defaults_to_10_000() {
            let s: Vec<u8> = [0u8, 0].repeat(10_000);
            assert_eq!(parse(&s).map(|p| p.len()), Ok(10_000));
            let s: Vec<u8> = [0u8, 0].repeat(10_001);
            assert_eq!(parse(&s).map(|p| p.len()), Err(Rejection::TooManyPairs));
        }

        #[test]
        fn claims_near_2_pow_31_allocate_nothing() {
            for head in [
                [0xFFu8, 0xFF, 0xFF, 0xFF, 0x00],
                [0x00, 0xFF, 0xFF, 0xFF, 0xFF],
                [0x80, 0x00, 0x04, 0x01, 0x7F],
            ] {
                let mut parser = ParamsParser::new(&limits(usize::MAX, usize::MAX, usize::MAX, 10));
                let (_, bytes) = allocated_by(|| parser.feed(&head));
                // Only the pair's 24-byte index entry (in a vector of 4): nothing sized by
                // the claim.
                assert!(bytes <= 128, "claim {head:x?} allocated {bytes} bytes");
                // Under the default caps the same claims are refused outright.
                let mut parser = ParamsParser::new(&Limits::default());
                parser.feed(&head);
                parser.feed(&[b'x'; 4096]);
                assert!(parser.rejection().is_some(), "claim {head:x?}");
            }
        }

        #[test]
        fn sum_of_two_huge_lengths_does_not_wrap() {
            // CVE-2025-23016: name + value overflowed 32-bit arithmetic in libfcgi.
            let mut parser = ParamsParser::new(&limits(usize::MAX, usize::MAX, usize::MAX, 10));
            parser.feed(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, b'a']);
            assert_eq!(parser.rejection(), None);
            assert_eq!(parser.finish().map(|p| p.len()), Err(Rejection::Malformed));
        }
    }

    mod properties {
        use super::*;

        fn arb_pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..200),
                    proptest::collection::vec(any::<u8>(), 0..300),
                ),
                0..20,
            )
        }

        proptest! {
            #[test]
            fn encoded_pairs_decode_to_the_same_pairs_under_any_split(
                pairs in arb_pairs(),
                long in any::<bool>(),
                cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
            ) {
                let mut stream = Vec::new();
                for (n, v) in &pairs {
                    if long {
                        stream.extend(long_form_pair(n, v));
                    } else {
                        encode_pair(&mut stream, n, v).unwrap();
                    }
                }
                let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
                at.sort_unstable();
                let mut parser = ParamsParser::new(&Limits::default());
                let mut last = 0;
                for cut in at.into_iter().chain([stream.len()]) {
                    parser.feed(&stream[last..cut]);
                    last = cut;
                }
                let params = parser.finish().unwrap();
                prop_assert_eq!(params.to_pairs(), pairs);
            }

            #[test]
            fn arbitrary_bytes_never_panic_and_stay_within_the_caps(
                bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            ) {
                let limits = Limits { max_params_len: 512, ..Limits::default() };
                let mut parser = ParamsParser::new(&limits);
                let (_, allocated) = allocated_by(|| {
                    for chunk in bytes.chunks(7) {
                        parser.feed(chunk);
                    }
                });
                // Stored bytes ≤ cap; growth of the two vectors is at most a few times that.
                prop_assert!(allocated <= 8 * 512 + 64 * 1024, "allocated {}", allocated);
                if let Ok(params) = parser.finish() {
                    prop_assert!(params.byte_len() <= 512);
                }
            }

            #[test]
            fn pairs_in_reads_what_encode_pair_wrote(pairs in arb_pairs()) {
                let mut block = Vec::new();
                for (n, v) in &pairs {
                    encode_pair(&mut block, n, v).unwrap();
                }
                let read: Vec<(Vec<u8>, Vec<u8>)> =
                    pairs_in(&block).map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
                prop_assert_eq!(read, pairs);
            }
        }
    }
}
