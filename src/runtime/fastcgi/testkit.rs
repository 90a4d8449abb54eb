//! Test support for the codec (compiled only for tests): a client-side wire builder, a tiny
//! scripted server that drives a [`Connection`], the one split helper every decoder case goes
//! through (style.md item 9), and an allocation counter for the "claims allocate nothing"
//! properties.
//!
//! The client bytes come from the shared test kit (`crates/fcgi-testkit`, a dev-dependency),
//! not from this codec's own encoders: a record or pair encoder that shared the codec's
//! misreading of the spec would agree with it. [`Wire`] only adds the codec's enums on top.

use std::cell::Cell;
use std::collections::BTreeMap;

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

use fcgi_testkit::iis::{IisApp, IisRequest};
use fcgi_testkit::wire::{self, Lengths, Padding};

use super::record::{
    BeginRequestBody, Decoder, EndRequestBody, HEADER_LEN, KEEP_CONN, ProtocolStatus, Record,
    RecordType, Role,
};
use super::{Config, Connection, DecodeError, Event};

// ---------------------------------------------------------------------------------------------
// Client side: building wires the way nginx, IIS and HAProxy would.

/// Builds the bytes a web server would send.
#[derive(Debug, Default, Clone)]
pub struct Wire {
    pub bytes: Vec<u8>,
}

impl Wire {
    pub fn new() -> Self {
        Self::default()
    }

    /// One record with explicit padding.
    pub fn record_padded(
        mut self,
        record_type: RecordType,
        id: u16,
        content: &[u8],
        padding: u8,
    ) -> Self {
        // Non-zero padding bytes: receivers must ignore their value.
        let kind = u8::from(record_type);
        wire::push_record_exact(&mut self.bytes, 1, kind, id, content, padding, 0xA5);
        self
    }

    /// One record with no padding.
    pub fn record(self, record_type: RecordType, id: u16, content: &[u8]) -> Self {
        self.record_padded(record_type, id, content, 0)
    }

    pub fn begin(self, id: u16, keep_conn: bool) -> Self {
        self.begin_role(id, Role::Responder, keep_conn)
    }

    pub fn begin_role(self, id: u16, role: Role, keep_conn: bool) -> Self {
        let body = BeginRequestBody {
            role,
            flags: if keep_conn { KEEP_CONN } else { 0 },
        };
        self.record(RecordType::BeginRequest, id, &body.to_bytes())
    }

    /// The pairs as one PARAMS stream cut into records of at most `per_record` bytes, then
    /// the empty PARAMS record.
    pub fn params(self, id: u16, pairs: &[(&[u8], &[u8])], per_record: usize) -> Self {
        let stream = wire::encode_pairs(pairs, Lengths::Shortest);
        self.params_stream(id, &stream, per_record)
    }

    /// A raw PARAMS stream cut into records of at most `per_record` bytes, then the empty
    /// record.
    pub fn params_stream(mut self, id: u16, stream: &[u8], per_record: usize) -> Self {
        let records = wire::stream(wire::PARAMS, id, stream, per_record, Padding::None);
        self.bytes.extend_from_slice(&records);
        self
    }

    /// The body in STDIN records of at most `per_record` bytes, then the empty record.
    pub fn stdin(mut self, id: u16, body: &[u8], per_record: usize) -> Self {
        let records = wire::stream(wire::STDIN, id, body, per_record, Padding::None);
        self.bytes.extend_from_slice(&records);
        self
    }

    pub fn abort(self, id: u16) -> Self {
        self.record(RecordType::AbortRequest, id, &[])
    }

    pub fn get_values(self, names: &[&[u8]]) -> Self {
        let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (*n, &b""[..])).collect();
        let body = wire::encode_pairs(&pairs, Lengths::Shortest);
        self.record(RecordType::GetValues, 0, &body)
    }
}

/// A pair with the 4-byte length form for both lengths, whatever their size.
pub fn long_form_pair(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::push_pair_long(&mut out, name, value);
    out
}

/// The params IIS sends for a browser's `GET uri` to the application `/shop`: the shared
/// kit's table (request headers, then the 41 fixed variables), 48 pairs.
pub fn iis_params(uri: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    IisRequest::browser_get(uri)
        .params(&IisApp::sub("/shop"))
        .into_iter()
        .map(|(n, v)| (n.into_bytes(), v))
        .collect()
}

/// Borrowed view of owned pairs, for [`Wire::params`].
pub fn as_refs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect()
}

/// One record of a random but well-framed client conversation over a few ids: mostly
/// RESPONDER begins, valid pairs and stream ends, with some of everything else.
pub fn arb_conversation_record() -> impl Strategy<Value = (u8, u16, Vec<u8>, u8)> {
    let id = prop_oneof![1 => Just(0u16), 12 => 1u16..4];
    let bytes = || proptest::collection::vec(any::<u8>(), 0..24);
    let begin = (
        prop_oneof![9 => Just(1u8), 1 => any::<u8>()],
        any::<bool>(),
        0..20u8,
    )
        .prop_map(|(role, keep, truncate)| {
            let mut body = vec![0, role, u8::from(keep), 0, 0, 0, 0, 0];
            if truncate == 0 {
                body.truncate(3);
            }
            (1u8, body)
        });
    let pair = (bytes(), bytes()).prop_map(|(n, v)| {
        let mut out = Vec::new();
        wire::push_pair(&mut out, &n, &v);
        out
    });
    let params = prop_oneof![3 => Just(Vec::new()), 5 => pair, 1 => bytes()]
        .prop_map(|content| (4u8, content));
    let stdin = prop_oneof![3 => Just(Vec::new()), 4 => bytes()].prop_map(|c| (5u8, c));
    let other = (
        prop_oneof![3 => Just(2u8), 1 => Just(8u8), 2 => Just(9u8), 1 => any::<u8>()],
        bytes(),
    );
    let record = prop_oneof![5 => begin, 7 => params, 7 => stdin, 3 => other];
    (record, id, 0u8..12).prop_map(|((kind, content), id, padding)| (kind, id, content, padding))
}

pub fn wire_of(records: &[(u8, u16, Vec<u8>, u8)]) -> Vec<u8> {
    let mut wire = Wire::new();
    for (kind, id, content, padding) in records {
        wire = wire.record_padded(RecordType::from(*kind), *id, content, *padding);
    }
    wire.bytes
}

// ---------------------------------------------------------------------------------------------
// Server side: a scripted responder that reacts to events the way crate::runtime::server will.

/// How the scripted server reacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Never answers: events only.
    Passive,
    /// At `StdinEnd`: STDOUT `Status: 200 OK` + the body it received, then `END_REQUEST`
    /// (431/400 for rejected requests); at `Abort`: `END_REQUEST` at once.
    Echo,
}

/// Everything observable from one run: events in order, the output demultiplexed by id
/// (records, in order, per id; id 0 for management), and the framing fault if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub events: Vec<Event>,
    pub output: BTreeMap<u16, Vec<Record>>,
    pub error: Option<DecodeError>,
    pub wants_close: bool,
}

impl Transcript {
    /// The output records for `id`.
    pub fn out(&self, id: u16) -> &[Record] {
        self.output.get(&id).map_or(&[], Vec::as_slice)
    }

    /// The output record types for `id`.
    pub fn out_types(&self, id: u16) -> Vec<RecordType> {
        self.out(id)
            .iter()
            .map(|r| r.header().record_type)
            .collect()
    }

    /// The `END_REQUEST` bodies sent for `id`.
    pub fn end_requests(&self, id: u16) -> Vec<EndRequestBody> {
        self.out(id)
            .iter()
            .filter(|r| r.header().record_type == RecordType::EndRequest)
            .filter_map(|r| EndRequestBody::parse(r.content()))
            .collect()
    }

    /// The STDOUT bytes sent for `id`, concatenated.
    pub fn stdout(&self, id: u16) -> Vec<u8> {
        self.out(id)
            .iter()
            .filter(|r| r.header().record_type == RecordType::Stdout)
            .flat_map(|r| r.content().iter().copied())
            .collect()
    }

    /// The `(name, value)` pairs of the `GET_VALUES_RESULT` records sent.
    pub fn get_values_results(&self) -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
        self.out(0)
            .iter()
            .filter(|r| r.header().record_type == RecordType::GetValuesResult)
            .map(|r| {
                super::params::pairs_in(r.content())
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect()
            })
            .collect()
    }
}

/// Drives one connection through a sequence of input chunks.
struct Driver {
    conn: Connection,
    script: Script,
    bodies: BTreeMap<u16, Vec<u8>>,
    rejected: BTreeMap<u16, u16>,
    events: Vec<Event>,
    raw_output: Vec<u8>,
}

impl Driver {
    fn new(config: Config, script: Script) -> Self {
        Self {
            conn: Connection::new(config),
            script,
            bodies: BTreeMap::new(),
            rejected: BTreeMap::new(),
            events: Vec::new(),
            raw_output: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        // A framing fault is kept by the connection and shows up in the transcript.
        let _ = self.conn.recv(chunk);
        self.react();
    }

    fn react(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            self.events.push(event.clone());
            if self.script == Script::Passive {
                continue;
            }
            match event {
                Event::Request { id, .. } => {
                    self.bodies.insert(id, Vec::new());
                }
                Event::Rejected { id, reason, .. } => {
                    self.bodies.insert(id, Vec::new());
                    self.rejected.insert(id, reason.http_status());
                }
                Event::Stdin { id, data } => {
                    self.bodies.entry(id).or_default().extend_from_slice(&data);
                }
                Event::StdinEnd { id } => {
                    let body = self.bodies.remove(&id).unwrap_or_default();
                    let status = self.rejected.remove(&id).unwrap_or(200);
                    let mut response = format!("Status: {status}\r\n\r\n").into_bytes();
                    if status == 200 {
                        response.extend_from_slice(&body);
                    }
                    self.conn.send_stdout(id, &response).expect("open request");
                    self.conn.end_request(id, 0).expect("open request");
                }
                Event::Abort { id } => {
                    self.bodies.remove(&id);
                    self.conn.end_request(id, 0).expect("open request");
                }
                Event::UnknownRecord { .. } => {}
            }
        }
        let out = self.conn.pending_output();
        self.raw_output.extend_from_slice(out);
        let n = out.len();
        self.conn.consume_output(n);
    }

    fn finish(self) -> Transcript {
        let mut output: BTreeMap<u16, Vec<Record>> = BTreeMap::new();
        for record in decode_all(&self.raw_output) {
            output
                .entry(record.header().request_id)
                .or_default()
                .push(record);
        }
        Transcript {
            events: self.events,
            output,
            error: self.conn.error(),
            wants_close: self.conn.wants_close(),
        }
    }
}

/// Decodes a complete output stream into records, asserting it ends on a record boundary
/// and that, per id, an empty STDOUT is always followed by that id's `END_REQUEST`.
pub fn decode_all(bytes: &[u8]) -> Vec<Record> {
    let mut buf = BytesMut::from(bytes);
    let mut decoder = Decoder::new();
    let mut records = Vec::new();
    while let Some(record) = decoder.decode(&mut buf).expect("our output is well framed") {
        records.push(record);
    }
    assert!(buf.is_empty(), "output ends inside a record");
    let mut stream_ended = std::collections::BTreeSet::new();
    for r in &records {
        let id = r.header().request_id;
        let kind = r.header().record_type;
        if stream_ended.remove(&id) {
            assert_eq!(
                kind,
                RecordType::EndRequest,
                "empty STDOUT not followed by END_REQUEST"
            );
        }
        if kind == RecordType::Stdout && r.content().is_empty() {
            stream_ended.insert(id);
        }
    }
    assert!(stream_ended.is_empty(), "empty STDOUT without END_REQUEST");
    records
}

/// Runs `wire` through a fresh connection in the given chunks.
pub fn run_chunks<'a>(
    config: &Config,
    script: Script,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Transcript {
    let mut driver = Driver::new(config.clone(), script);
    for chunk in chunks {
        driver.feed(chunk);
    }
    driver.finish()
}

/// Split points used for "split in two at every offset": every offset for short wires; for
/// long ones the first and last 600 offsets plus 400 spread evenly (quadratic cost otherwise).
fn two_way_offsets(len: usize) -> Vec<usize> {
    if len <= 4096 {
        return (0..=len).collect();
    }
    let mut offsets: Vec<usize> = (0..600).chain(len - 600..=len).collect();
    offsets.extend((0..400).map(|i| i * len / 400));
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

/// THE split helper: feeds `wire` whole, byte by byte, split in two at every offset, and in
/// proptest-chosen chunks, asserts every run gives the same transcript, and returns it.
pub fn assert_any_split(config: &Config, script: Script, wire: &[u8]) -> Transcript {
    let whole = run_chunks(config, script, [wire]);

    let trickle = run_chunks(config, script, wire.chunks(1));
    assert_eq!(trickle, whole, "byte-by-byte differs from whole");

    for at in two_way_offsets(wire.len()) {
        let (a, b) = wire.split_at(at);
        let split = run_chunks(config, script, [a, b]);
        assert_eq!(split, whole, "split at {at} differs from whole");
    }

    let mut runner = TestRunner::new(RunnerConfig {
        cases: if wire.len() > 65536 { 8 } else { 48 },
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let sizes = proptest::collection::vec(1usize..=300, 1..24);
    runner
        .run(&sizes, |sizes| {
            let mut chunks = Vec::new();
            let mut rest = wire;
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes[i % sizes.len()].min(rest.len());
                let (a, b) = rest.split_at(n);
                chunks.push(a);
                rest = b;
                i += 1;
            }
            let chunked = run_chunks(config, script, chunks);
            prop_assert_eq!(&chunked, &whole);
            Ok(())
        })
        .expect("proptest-chosen chunks differ from whole");
    whole
}

// ---------------------------------------------------------------------------------------------
// Allocation counting (per thread, so parallel tests do not disturb each other).

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// Counts bytes allocated by this thread, then defers to the system allocator.
pub struct CountingAlloc;

// SAFETY: every call is forwarded unchanged to `System`; the counter has no effect on memory.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|c| c.set(c.get().saturating_add(layout.size())));
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let grow = new_size.saturating_sub(layout.size());
        let _ = ALLOCATED.try_with(|c| c.set(c.get().saturating_add(grow)));
        // SAFETY: forwarded with the caller's arguments.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Bytes this thread allocated while running `f`.
pub fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let value = f();
    let after = ALLOCATED.with(Cell::get);
    (value, after - before)
}

/// A header followed by `content` and `padding` bytes, as raw bytes (for framing tests).
pub fn raw_record(version: u8, kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
    let mut out = Vec::new();
    wire::push_record_exact(&mut out, version, kind, id, content, padding, 0);
    assert_eq!(out.len(), HEADER_LEN + content.len() + usize::from(padding));
    out
}

/// The protocol status of the single `END_REQUEST` sent for `id`.
pub fn ended_with(t: &Transcript, id: u16) -> Option<ProtocolStatus> {
    match t.end_requests(id).as_slice() {
        [one] => Some(one.protocol_status),
        _ => None,
    }
}

/// Parses a `tests/vectors/*.hex` file: hex byte pairs, `"text"`, `"text"*N`, `#` comments.
pub fn parse_hex_vector(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut rest = line.trim_start();
        while !rest.is_empty() {
            if rest.starts_with('#') {
                break;
            }
            if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"').expect("closing quote");
                let text = &quoted.as_bytes()[..end];
                rest = &quoted[end + 1..];
                let mut times = 1;
                if let Some(after) = rest.strip_prefix('*') {
                    let digits = after
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(after.len());
                    times = after[..digits].parse().expect("repeat count");
                    rest = &after[digits..];
                }
                for _ in 0..times {
                    out.extend_from_slice(text);
                }
            } else {
                let byte = rest.get(..2).expect("two hex digits");
                out.push(u8::from_str_radix(byte, 16).expect("hex byte"));
                rest = &rest[2..];
            }
            rest = rest.trim_start();
        }
    }
    out
}

/// The raw output of feeding `wire` in one piece.
pub fn raw_output_whole(config: &Config, script: Script, wire: &[u8]) -> Vec<u8> {
    let mut driver = Driver::new(config.clone(), script);
    driver.feed(wire);
    driver.raw_output
}
