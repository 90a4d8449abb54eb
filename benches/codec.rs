//! Codec throughput: decoding a typical IIS request (about 45 params), framing STDOUT for 64 KiB
//! and 1 MiB bodies (copying and zero-copy), and streaming a 64 MiB upload in 8 KiB records.
//!
//! Run with `cargo bench --no-default-features --bench codec`. End-to-end load against peers
//! (libfcgi, wfastcgi) lives under `bench/`, not here.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use iiswsgi::runtime::fastcgi::{
    BeginRequestBody, Config, Connection, Event, KEEP_CONN, ParamsParser, RecordHeader, RecordType,
    Role, encode_pair, encode_stream, end_request_bytes, stream_frames,
};
use iiswsgi::runtime::fastcgi::{Limits, ProtocolStatus};

/// The params IIS sends for a GET to a sub-application (iis-runtime.md §6.2 plus headers).
fn iis_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("HTTP_CACHE_CONTROL", "max-age=0"),
        ("HTTP_CONNECTION", "keep-alive"),
        (
            "HTTP_ACCEPT",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br"),
        ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.9"),
        (
            "HTTP_COOKIE",
            "session=0123456789abcdef0123456789abcdef; theme=dark",
        ),
        ("HTTP_HOST", "www.example.com"),
        (
            "HTTP_USER_AGENT",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        ),
        ("APPL_MD_PATH", "/LM/W3SVC/1/ROOT/shop"),
        ("APPL_PHYSICAL_PATH", "C:\\inetpub\\wwwroot\\shop\\"),
        ("AUTH_TYPE", ""),
        ("AUTH_PASSWORD", ""),
        ("AUTH_USER", ""),
        ("CERT_COOKIE", ""),
        ("CERT_FLAGS", ""),
        ("CERT_ISSUER", ""),
        ("CERT_SERIALNUMBER", ""),
        ("CERT_SUBJECT", ""),
        ("CONTENT_LENGTH", "0"),
        ("CONTENT_TYPE", ""),
        ("DOCUMENT_ROOT", "C:\\inetpub\\wwwroot\\shop"),
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("HTTPS", "off"),
        ("HTTPS_KEYSIZE", ""),
        ("HTTPS_SECRETKEYSIZE", ""),
        ("HTTPS_SERVER_ISSUER", ""),
        ("HTTPS_SERVER_SUBJECT", ""),
        ("INSTANCE_ID", "1"),
        ("INSTANCE_NAME", "DEFAULT WEB SITE"),
        ("INSTANCE_META_PATH", "/LM/W3SVC/1"),
        ("LOCAL_ADDR", "10.0.0.4"),
        ("LOGON_USER", ""),
        ("PATH_INFO", "/shop/cart"),
        ("PATH_TRANSLATED", "C:\\inetpub\\wwwroot\\shop\\cart"),
        ("QUERY_STRING", "id=7"),
        ("REMOTE_ADDR", "203.0.113.9"),
        ("REMOTE_HOST", "203.0.113.9"),
        ("REMOTE_PORT", "51234"),
        ("REMOTE_USER", ""),
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", "/shop/cart?id=7"),
        ("SCRIPT_FILENAME", "C:\\inetpub\\wwwroot\\shop\\cart"),
        ("SCRIPT_NAME", "/shop/cart"),
        ("SERVER_NAME", "www.example.com"),
        ("SERVER_PORT", "80"),
        ("SERVER_PORT_SECURE", "0"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("SERVER_SOFTWARE", "Microsoft-IIS/10.0"),
        ("URL", "/shop/cart"),
    ]
}

fn params_stream() -> Vec<u8> {
    let mut stream = Vec::new();
    for (n, v) in iis_pairs() {
        encode_pair(&mut stream, n.as_bytes(), v.as_bytes()).expect("small pair");
    }
    stream
}

fn record(out: &mut Vec<u8>, kind: RecordType, id: u16, content: &[u8]) {
    let header = RecordHeader::new(kind, id, u16::try_from(content.len()).expect("small"));
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(content);
    out.resize(out.len() + usize::from(header.padding_length), 0);
}

/// One whole IIS request as it arrives: BEGIN, PARAMS, empty PARAMS, empty STDIN.
fn iis_request_wire(id: u16) -> Vec<u8> {
    let mut wire = Vec::new();
    let begin = BeginRequestBody {
        role: Role::Responder,
        flags: KEEP_CONN,
    };
    record(&mut wire, RecordType::BeginRequest, id, &begin.to_bytes());
    record(&mut wire, RecordType::Params, id, &params_stream());
    record(&mut wire, RecordType::Params, id, &[]);
    record(&mut wire, RecordType::Stdin, id, &[]);
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
        record(&mut chunk, RecordType::Stdin, 1, &[b'u'; 8192]);
    }
    let reads = 64 * 1024 * 1024 / (8 * 8192);
    group.throughput(Throughput::Bytes((chunk.len() * reads) as u64));
    group.sample_size(10);
    group.bench_function("stdin_upload_64mib_in_8kib_records", |b| {
        b.iter(|| {
            let mut conn = Connection::new(Config::iis());
            let mut head = Vec::new();
            let begin = BeginRequestBody {
                role: Role::Responder,
                flags: KEEP_CONN,
            };
            record(&mut head, RecordType::BeginRequest, 1, &begin.to_bytes());
            record(&mut head, RecordType::Params, 1, &[]);
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
