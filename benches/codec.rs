//! Codec throughput: decoding a typical IIS request (about 45 params), framing STDOUT for 64 KiB
//! and 1 MiB bodies (copying and zero-copy), and streaming a 64 MiB upload in 8 KiB records.
//!
//! Run with `cargo bench --no-default-features --bench codec`. End-to-end load against peers
//! (libfcgi, wfastcgi) lives under `bench/`, not here.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fcgi_testkit::iis::{IisApp, IisRequest};
use fcgi_testkit::wire::{self, Lengths, Padding};
use iiswsgi::runtime::fastcgi::{
    Config, Connection, Event, Limits, ParamsParser, ProtocolStatus, RecordType, encode_stream,
    end_request_bytes, stream_frames,
};

/// The PARAMS stream IIS sends for a browser's GET to a sub-application, with a session
/// cookie: the shared kit's table (iis-runtime.md §6.2) plus eight headers, 49 pairs.
fn params_stream() -> Vec<u8> {
    let request = IisRequest::browser_get("/shop/cart?id=7").header(
        "Cookie",
        "session=0123456789abcdef0123456789abcdef; theme=dark",
    );
    let pairs = request.params(&IisApp::sub("/shop"));
    assert_eq!(pairs.len(), 49);
    wire::encode_pairs(&pairs, Lengths::Shortest)
}

/// Appends one record padded to 8 bytes, as nginx and libfcgi send them.
fn record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    wire::push_record(out, kind, id, content, Padding::Align8.after(content.len()));
}

/// One whole IIS request as it arrives: BEGIN, PARAMS, empty PARAMS, empty STDIN.
fn iis_request_wire(id: u16) -> Vec<u8> {
    let mut wire = wire::begin_request(id, wire::RESPONDER, wire::KEEP_CONN);
    record(&mut wire, wire::PARAMS, id, &params_stream());
    record(&mut wire, wire::PARAMS, id, &[]);
    record(&mut wire, wire::STDIN, id, &[]);
    wire
}

fn decode(c: &mut Criterion) {
    let stream = params_stream();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("params_parser_iis_49_pairs", |b| {
        let limits = Limits::default();
        b.iter(|| {
            let mut parser = ParamsParser::new(&limits);
            parser.feed(black_box(&stream));
            black_box(parser.finish().expect("valid"))
        })
    });

    group.bench_function("params_parser_iis_49_pairs_reused_buffers", |b| {
        let limits = Limits::default();
        let mut spare = iiswsgi::runtime::fastcgi::Params::new();
        b.iter(|| {
            let mut parser = ParamsParser::with_params(&limits, std::mem::take(&mut spare));
            parser.feed(black_box(&stream));
            spare = parser.finish().expect("valid");
            black_box(spare.len())
        })
    });

    let wire = iis_request_wire(1);
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("connection_iis_request_and_response", |b| {
        let mut conn = Connection::new(Config::iis());
        b.iter(|| {
            conn.recv(black_box(&wire)).expect("valid");
            while let Some(event) = conn.poll_event() {
                match event {
                    Event::Request { id, params, .. } => {
                        conn.send_stdout(
                            id,
                            b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok",
                        )
                        .expect("open");
                        conn.recycle_params(params);
                    }
                    Event::StdinEnd { id } => conn.end_request(id, 0).expect("open"),
                    _ => {}
                }
            }
            let n = conn.pending_output().len();
            black_box(conn.pending_output());
            conn.consume_output(n);
        })
    });

    // A 64 MiB upload in 8 KiB STDIN records, fed in 64 KiB reads: must be linear.
    let mut chunk = Vec::new();
    for _ in 0..8 {
        record(&mut chunk, wire::STDIN, 1, &[b'u'; 8192]);
    }
    let reads = 64 * 1024 * 1024 / (8 * 8192);
    group.throughput(Throughput::Bytes((chunk.len() * reads) as u64));
    group.sample_size(10);
    group.bench_function("stdin_upload_64mib_in_8kib_records", |b| {
        b.iter(|| {
            let mut conn = Connection::new(Config::iis());
            let mut head = wire::begin_request(1, wire::RESPONDER, wire::KEEP_CONN);
            record(&mut head, wire::PARAMS, 1, &[]);
            conn.recv(&head).expect("valid");
            let mut total = 0usize;
            for _ in 0..reads {
                conn.recv(black_box(&chunk)).expect("valid");
                while let Some(event) = conn.poll_event() {
                    if let Event::Stdin { data, .. } = event {
                        total += data.len();
                    }
                }
            }
            assert_eq!(total, 64 * 1024 * 1024);
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_stdout");
    for (name, len) in [("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)] {
        let body = vec![b'x'; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("copying_{name}"), |b| {
            let mut out = Vec::with_capacity(len + 1024);
            b.iter(|| {
                out.clear();
                encode_stream(&mut out, RecordType::Stdout, 7, black_box(&body));
                out.extend_from_slice(&end_request_bytes(7, 0, ProtocolStatus::RequestComplete));
                black_box(&out);
            })
        });
        group.bench_function(format!("zero_copy_frames_{name}"), |b| {
            b.iter(|| {
                // What a server builds for writev: header, &body[range], padding per record.
                let mut slices: Vec<&[u8]> = Vec::with_capacity(64);
                let frames: Vec<_> = stream_frames(RecordType::Stdout, 7, len).collect();
                for frame in &frames {
                    slices.push(&frame.header);
                    slices.push(&body[frame.body.clone()]);
                    slices.push(frame.padding);
                }
                black_box(slices.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
