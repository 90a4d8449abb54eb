//! The PEP 3333 checklist of wsgi-embedding.md §7, item by item, through the IIS client and
//! through nginx. The app is `tests/conformance/apps/conformance.py`: `/<scenario>` runs under
//! `wsgiref.validate.validator` (warnings are errors), `/raw/<scenario>` unwrapped.
//!
//! Each group is one check function run against both gateways; an item's number leads its
//! assertion messages. Items not here: 50 (`SystemExit`, in `lifecycle`), 49 via HAProxy's
//! `FCGI_ABORT_REQUEST` (the IIS client sends one instead).

use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Gateway, IisClient, IisGateway, NginxGateway, Req, Resp, apps_dir, rss_kib, wait_for_log,
};

const APP: &str = "conformance:application";

fn iis() -> IisGateway {
    IisGateway::start(APP, &apps_dir(), &[])
}

fn nginx() -> NginxGateway {
    NginxGateway::start(APP, &apps_dir(), &[])
}

fn iis_client() -> IisClient {
    IisClient::start(APP, &apps_dir(), &[])
}

fn ok(gw: &mut dyn Gateway, req: Req) -> Resp {
    let r = gw.send(&req);
    assert_eq!(
        r.status,
        200,
        "{} {} via {}: {}\n{}",
        req.method,
        req.uri,
        gw.name(),
        r.text(),
        gw.log()
    );
    r
}

fn json_of(gw: &mut dyn Gateway, req: Req) -> Value {
    ok(gw, req).json()
}

fn state(gw: &mut dyn Gateway) -> Value {
    json_of(gw, Req::get("/state"))
}

fn count(state: &Value, key: &str) -> i64 {
    state.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// No validator complaint and no traceback beyond the ones a test provoked.
fn assert_validator_quiet(gw: &dyn Gateway) {
    let log = gw.log();
    for bad in [
        "AssertionError",
        "WSGIWarning",
        "garbage collected without being closed",
    ] {
        assert!(
            !log.contains(bad),
            "{bad} in the log via {}:\n{log}",
            gw.name()
        );
    }
}

fn environ(gw: &mut dyn Gateway) {
    // Raw param overrides only through the fcgi_client-driven IIS gateway.
    let iis = gw.name() == "iis";
    let spawned = gw.name() != "nginx";
    // 1
    let r = ok(gw, Req::get("/hello"));
    assert_eq!(r.text(), "Hello, World!");
    // 2, 10 (the peers' IIS client sends UTF-8 header values: é arrives as two latin-1 chars)
    let (raw_t, seen_t): (&[u8], &str) = if gw.name() == "iis-client" {
        ("café".as_bytes(), "caf\u{c3}\u{a9}")
    } else {
        (b"caf\xe9", "caf\u{e9}")
    };
    let env = json_of(
        gw,
        Req::get("/env")
            .header("X-T", raw_t)
            .header("X-Custom-Header", b"v"),
    );
    assert_eq!(env["is_dict"], json!(true), "2");
    assert_eq!(env["non_str"], json!([]), "2");
    assert_eq!(env["HTTP_X_T"], json!(seen_t), "10");
    assert_eq!(env["HTTP_X_CUSTOM_HEADER"], json!("v"), "10");
    // 3, 4
    assert_eq!(env["wsgi.version"], json!([1, 0]), "3");
    assert_eq!(env["wsgi.url_scheme"], json!("http"), "3");
    assert_eq!(env["bool_types"], json!(true), "4");
    assert_eq!(env["wsgi.multithread"], json!(false), "4");
    assert_eq!(
        env["wsgi.multiprocess"],
        json!(spawned),
        "4: spawned by IIS vs one --listen process"
    );
    assert_eq!(env["wsgi.run_once"], json!(false), "4");
    assert_eq!(env["wsgi.input_terminated"], json!(true));
    if iis {
        let https = Req {
            params: vec![("HTTPS".into(), b"on".to_vec())],
            ..Req::get("/env")
        };
        assert_eq!(
            json_of(gw, https)["wsgi.url_scheme"],
            json!("https"),
            "3: HTTPS=on"
        );
    }
    // 5
    assert!(env["SERVER_PORT"].is_string(), "5");
    assert_eq!(env["REQUEST_METHOD"], json!("GET"), "5");
    assert_eq!(env["present"]["SERVER_NAME"], json!(true), "5");
    // 6
    assert_eq!(
        json_of(gw, Req::get("/env?a=1&b=%20x"))["QUERY_STRING"],
        json!("a=1&b=%20x"),
        "6"
    );
    assert_eq!(env["QUERY_STRING"], json!(""), "6");
    assert_eq!(env["present"]["QUERY_STRING"], json!(true), "6");
    // 7, 8: mounted at /app
    assert_eq!(env["SCRIPT_NAME"], json!("/app"), "8");
    assert_eq!(env["PATH_INFO"], json!("/env"), "8");
    if iis {
        let root = gw.send(&Req::get(""));
        assert_eq!(root.status, 404);
        assert_eq!(
            root.json(),
            json!({"SCRIPT_NAME": "/app", "PATH_INFO": ""}),
            "8: /app"
        );
    }
    // 9
    let spaced = json_of(gw, Req::get("/env/a%20b"));
    assert_eq!(spaced["PATH_INFO"], json!("/env/a b"), "9");
    let euro = json_of(gw, Req::get("/env/%E2%82%AC"));
    assert_eq!(
        euro["PATH_INFO"],
        json!("/env/\u{e2}\u{82}\u{ac}"),
        "9: UTF-8 bytes as latin-1"
    );
    // 11
    let post = json_of(
        gw,
        Req::post("/env", b"x=1").header("Content-Type", b"text/plain"),
    );
    assert_eq!(post["CONTENT_TYPE"], json!("text/plain"), "11");
    assert_eq!(post["CONTENT_LENGTH"], json!("3"), "11");
    assert_eq!(post["present"]["HTTP_CONTENT_TYPE"], json!(false), "11");
    assert_eq!(post["present"]["HTTP_CONTENT_LENGTH"], json!(false), "11");
    // 12
    let dup = Req::get("/env")
        .header("X-A", b"1")
        .header("X-A", b"2")
        .header("Cookie", b"a=1")
        .header("Cookie", b"b=2");
    let dup = json_of(gw, dup);
    assert_eq!(dup["HTTP_X_A"], json!("1, 2"), "12");
    assert_eq!(dup["HTTP_COOKIE"], json!("a=1; b=2"), "12");
    // 13
    if iis {
        assert_eq!(
            env["CONTENT_LENGTH"],
            json!("0"),
            "13: IIS sends 0 and it is kept"
        );
        for bad in [&b"abc"[..], b"-1"] {
            let r = gw.send(&Req {
                params: vec![("CONTENT_LENGTH".into(), bad.to_vec())],
                ..Req::get("/hello")
            });
            assert_eq!(r.status, 400, "13: CONTENT_LENGTH {bad:?}");
        }
        let empty = Req {
            params: vec![("CONTENT_LENGTH".into(), Vec::new())],
            ..Req::get("/env")
        };
        assert_eq!(
            json_of(gw, empty)["present"]["CONTENT_LENGTH"],
            json!(false),
            "13"
        );
    } else if !spawned {
        assert_eq!(
            env["present"]["CONTENT_LENGTH"],
            json!(false),
            "13: nginx sends \"\""
        );
    }
    assert_validator_quiet(gw);
}

fn reads(gw: &mut dyn Gateway, which: &str, body: &[u8]) -> Value {
    // The validator's input wrapper refuses bare read(): those scripts run unwrapped.
    let raw = matches!(
        which,
        "all" | "zero" | "none" | "eof" | "split" | "readlines1"
    );
    let uri = if raw {
        format!("/raw/reads/{which}")
    } else {
        format!("/reads/{which}")
    };
    json_of(gw, Req::post(&uri, body))
}

fn input(gw: &mut dyn Gateway) {
    // 14
    assert_eq!(
        json_of(gw, Req::get("/shape")),
        json!({"input": [true, true, true, true], "errors": [true, true, true]}),
        "14"
    );
    // 15
    assert_eq!(
        ok(gw, Req::post("/echo", b"hello world")).body,
        b"hello world",
        "15"
    );
    assert_eq!(ok(gw, Req::post("/echo", b"")).body, b"", "15");
    assert_eq!(
        reads(gw, "all", b"hello world"),
        json!(["hello world"]),
        "15 bare read()"
    );
    // 16
    assert_eq!(
        reads(gw, "split", b"0123456789abcdef"),
        json!(["0123456789", "abcdef"]),
        "16"
    );
    let body: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).collect();
    assert_eq!(ok(gw, Req::post("/read7", &body)).body, body, "16");
    // 17
    assert_eq!(reads(gw, "zero", b"abcdef"), json!(["", "abcdef"]), "17");
    assert_eq!(reads(gw, "none", b"abcdef"), json!(["abcdef"]), "17");
    // 18
    assert_eq!(
        reads(gw, "eof", b"x\n"),
        json!(["x\n", "", "", "", ""]),
        "18"
    );
    // 19
    assert_eq!(
        reads(gw, "lines", b"a\nb\nc\n"),
        json!(["a\n", "b\n", "c\n", ""]),
        "19"
    );
    assert_eq!(
        reads(gw, "lines", b"a\nlast"),
        json!(["a\n", "last", "", ""]),
        "19"
    );
    // 20
    assert_eq!(
        reads(gw, "line5", b"abcdefghijklm"),
        json!(["abcde", "fghij", "klm", ""]),
        "20"
    );
    assert_eq!(
        reads(gw, "line5", b"ab\ncdefgh"),
        json!(["ab\n", "cdefg", "h", ""]),
        "20"
    );
    // 21
    assert_eq!(
        reads(gw, "readlines", b"a\nb\nc"),
        json!([["a\n", "b\n", "c"]]),
        "21"
    );
    assert_eq!(
        reads(gw, "readlines1", b"a\nb\n"),
        json!([["a\n"], "b\n"]),
        "21"
    );
    assert_eq!(
        reads(gw, "iterate", b"x\ny\n"),
        json!([["x\n", "y\n"]]),
        "21"
    );
    // 22
    let big: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let sha = sha256_hex(&big);
    let before = rss_kib(gw.pid());
    let r = json_of(
        gw,
        Req {
            stdin_chunk: 10_000,
            ..Req::post("/sha", &big)
        },
    );
    assert_eq!(r, json!({"length": big.len(), "sha256": sha}), "22");
    let grown = rss_kib(gw.pid()).saturating_sub(before);
    assert!(
        grown < 4 * 1024,
        "22: RSS grew {grown} KiB reading 10 MiB via {}",
        gw.name()
    );
    // 25
    let r = gw.send(&Req::post("/too-large", &vec![b'z'; 1024 * 1024]));
    assert_eq!(r.status, 413, "25");
    assert_eq!(
        ok(gw, Req::get("/hello")).text(),
        "Hello, World!",
        "25: next request"
    );
    assert_validator_quiet(gw);
}

fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(super::build_python())
        .args([
            "-c",
            "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("feed");
    let out = child.wait_with_output().expect("sha256");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn start_response(gw: &mut dyn Gateway) {
    // 26
    let r = gw.send(&Req::get("/teapot"));
    assert_eq!(r.status, 418, "26");
    assert_eq!(r.text(), "short and stout", "26");
    // 27
    for bad in ["ok", "two-digits", "four-digits", "int", "bytes", "crlf"] {
        let r = gw.send(&Req::get(&format!("/raw/bad-status/{bad}")));
        assert_eq!(r.status, 500, "27: status {bad}");
        assert!(r.header("X-Injected").is_none(), "27");
    }
    // 28, 29 (euro), 30 (hop-by-hop)
    for bad in [
        "tuple",
        "lists",
        "bytes-name",
        "status",
        "space",
        "colon",
        "crlf",
        "lf",
        "nul",
        "euro",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
    ] {
        let r = gw.send(&Req::get(&format!("/raw/bad-header/{bad}")));
        assert_eq!(r.status, 500, "28-30: header {bad}");
        assert!(r.header("X-Injected").is_none(), "28");
    }
    // 29 (not through the peers' IIS client, whose parser takes UTF-8 header lines only)
    if gw.name() != "iis-client" {
        let r = ok(gw, Req::get("/latin1"));
        assert_eq!(
            r.header_bytes("X-Latin"),
            Some(&b"caf\xe9"[..]),
            "29: U+00E9 leaves as byte E9"
        );
    }
    // 31
    let r = ok(gw, Req::get("/many-headers"));
    assert_eq!(r.all("Set-Cookie"), ["a=1", "b=2"], "31");
    for i in 0..25 {
        assert_eq!(
            r.header(&format!("X-Custom-{i}")),
            Some(i.to_string()),
            "31"
        );
    }
    // 32
    assert_eq!(gw.send(&Req::get("/raw/twice")).status, 500, "32");
    // 33
    assert_eq!(
        ok(gw, Req::get("/raw/twice-after-write")).text(),
        "pre-err!",
        "33"
    );
    // 34
    let r = gw.send(&Req::get("/replace"));
    assert_eq!(r.status, 418, "34");
    assert!(
        r.header("X-After").is_some() && r.header("X-Before").is_none(),
        "34"
    );
    // 35
    assert_eq!(ok(gw, Req::get("/raw/reraise")).text(), "sent-same", "35");
    // 36
    assert_eq!(ok(gw, Req::get("/raw/bad-exc-info")).text(), "caught", "36");
    // 37
    let r = gw.send(&Req::get("/lazy"));
    assert_eq!(r.status, 201, "37");
    assert_eq!(r.text(), "made lazily", "37");
    // 38
    assert_eq!(
        ok(gw, Req::get("/write-then-iter")).text(),
        "via-write-via-iter",
        "38"
    );
    assert_eq!(ok(gw, Req::get("/interleave")).text(), "1234", "38");
    // 39
    assert_eq!(gw.send(&Req::get("/raw/write-str")).status, 500, "39");
    // 40
    let r = gw.send(&Req::get("/raw/no-start"));
    assert_eq!(r.status, 500, "40");
    assert!(
        gw.log().contains("before calling start_response"),
        "40: cause logged"
    );
}

fn iterables(gw: &mut dyn Gateway) {
    // 41
    assert_eq!(ok(gw, Req::get("/items/list")).text(), "abc", "41");
    assert_eq!(ok(gw, Req::get("/items/tuple")).text(), "abc", "41");
    let expected: String = (0..100).map(|i| format!("{i},")).collect();
    assert_eq!(ok(gw, Req::get("/items/gen100")).text(), expected, "41");
    // 42
    for kind in ["empty-list", "empty-gen"] {
        let r = ok(gw, Req::get(&format!("/items/{kind}")));
        assert!(r.body.is_empty() && r.complete, "42: {kind}");
    }
    // 43
    let before = state(gw);
    assert_eq!(ok(gw, Req::get("/items/closing")).text(), "onetwo", "43");
    ok(gw, Req::get("/items/gen100"));
    let after = state(gw);
    assert_eq!(
        count(&after, "closed"),
        count(&before, "closed") + 1,
        "43: close() once"
    );
    assert_eq!(
        count(&after, "finally"),
        count(&before, "finally") + 1,
        "43: finally ran"
    );
    // 44
    let one = ok(gw, Req::get("/raw/items/one"));
    assert_eq!(
        one.header("Content-Length").as_deref(),
        Some("6"),
        "44: len()==1 adds a length"
    );
    let two = ok(gw, Req::get("/raw/items/two"));
    assert_eq!(two.text(), "first,second");
    assert_eq!(
        two.header("Content-Length"),
        None,
        "44: two items, no length"
    );
    assert_eq!(
        ok(gw, Req::get("/items/one")).text(),
        "single",
        "44: via the validator"
    );
    // 45
    let r = gw.send(&Req::get("/raise-before"));
    assert_eq!(r.status, 500, "45");
    let page = r.text();
    let id = page
        .split("Error id: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap_or("?")
        .to_owned();
    assert!(
        !page.contains("outer failure"),
        "45: no traceback on the page"
    );
    let log = wait_for_log(gw, "RuntimeError: outer failure", Duration::from_secs(5));
    assert!(
        log.contains("KeyError: 'inner cause'"),
        "45: the whole chain is logged"
    );
    assert!(
        log.contains(&format!("GET /app/raise-before (error id {id})")),
        "45: id, method, path\n{log}"
    );
    // 46
    let before = state(gw);
    let r = gw.send(&Req::get("/raise-after"));
    assert!(
        cut_short(gw.name(), &r, b"before-"),
        "46: the client sees an aborted response via {}: {r:?}",
        gw.name()
    );
    assert_eq!(
        count(&state(gw), "finally"),
        count(&before, "finally") + 1,
        "46: finally ran"
    );
    // 47
    assert_eq!(gw.send(&Req::get("/raw/str-item")).status, 500, "47");
    let r = gw.send(&Req::get("/raw/str-item/later"));
    assert!(
        cut_short(gw.name(), &r, b"first") && (r.status == 0 || r.body == b"first"),
        "47: {r:?}"
    );
    // 48
    assert_eq!(gw.send(&Req::get("/raw/returns/bytes")).status, 500, "48");
    assert_eq!(gw.send(&Req::get("/raw/returns/str")).status, 500, "48");
}

/// A response the app failed after its headers went out, as the client saw it: a 200 whose
/// body starts with `prefix` and never completes, or nothing at all. The second is nginx's
/// way when the record iiswsgi cuts the response with arrives in the same read as the whole
/// small response: nginx drops what it buffered, headers included (an empty reply, curl's
/// exit 52). Either way the client cannot take it for a complete response. IIS always gets
/// the partial response (END_REQUEST with a non-zero app status).
fn cut_short(gateway: &str, r: &Resp, prefix: &[u8]) -> bool {
    let partial = r.status == 200 && r.body.starts_with(prefix) && !r.complete;
    let nothing = gateway == "nginx"
        && r.status == 0
        && r.headers.is_empty()
        && r.body.is_empty()
        && !r.complete;
    partial || nothing
}

fn content_length(gw: &mut dyn Gateway) {
    // 51
    let r = ok(gw, Req::get("/length/exact"));
    assert_eq!((r.text().as_str(), r.complete), ("abcdef", true), "51");
    // 52
    let before = state(gw);
    let r = ok(gw, Req::get("/length/short"));
    assert_eq!((r.text().as_str(), r.complete), ("01234", true), "52");
    assert_eq!(
        count(&state(gw), "finally"),
        count(&before, "finally") + 1,
        "52: closed"
    );
    assert_eq!(
        ok(gw, Req::get("/length/short-write")).text(),
        "01234",
        "52: via write()"
    );
    // 53
    let r = gw.send(&Req::get("/length/long"));
    assert!(
        cut_short(gw.name(), &r, b"only this") && (r.status == 0 || r.body == b"only this"),
        "53: incomplete for the client via {}: {r:?}",
        gw.name()
    );
    wait_for_log(
        gw,
        "declared Content-Length 100 but sent 9",
        Duration::from_secs(5),
    );
    // 54
    assert_eq!(gw.send(&Req::get("/length/abc")).status, 500, "54");
    assert_eq!(gw.send(&Req::get("/length/two")).status, 500, "54");
    // 55
    let get = ok(gw, Req::get("/raw/items/one"));
    let before = state(gw);
    let head = gw.send(&Req::get("/raw/items/one").method("HEAD"));
    assert_eq!(head.status, 200, "55");
    assert!(head.body.is_empty(), "55: no body");
    assert_eq!(
        head.header("Content-Length"),
        get.header("Content-Length"),
        "55: GET's headers"
    );
    assert_eq!(
        head.header("Content-Type"),
        get.header("Content-Type"),
        "55"
    );
    let head = gw.send(&Req::get("/head").method("HEAD"));
    assert!(head.body.is_empty(), "55");
    assert_eq!(
        count(&state(gw), "closed"),
        count(&before, "closed") + 1,
        "55: close() once"
    );
    // 56
    for code in [204, 304] {
        let r = gw.send(&Req::get(&format!("/no-content/{code}")));
        assert_eq!(r.status, code, "56");
        assert!(r.body.is_empty(), "56: {code} carries no body");
    }
    assert_eq!(
        ok(gw, Req::get("/hello")).text(),
        "Hello, World!",
        "56: in sync"
    );
    assert_validator_quiet(gw);
}

fn file_wrapper(gw: &mut dyn Gateway) {
    let data = std::fs::read(apps_dir().join("fixture-2700.bin")).expect("fixture");
    // 57
    let before = state(gw);
    let r = ok(gw, Req::get("/raw/file/whole"));
    assert_eq!(r.body, data, "57");
    assert_eq!(
        r.header("Content-Length"),
        Some("2700".into()),
        "57: the fast path knows the size"
    );
    assert_eq!(
        count(&state(gw), "files_closed"),
        count(&before, "files_closed") + 1,
        "57: closed"
    );
    // 58
    assert_eq!(
        ok(gw, Req::get("/raw/file/after-readline")).body,
        &data[41..],
        "58"
    );
    // 59
    assert_eq!(
        ok(gw, Req::get("/raw/file/short-cl")).body,
        &data[..10],
        "59"
    );
    let r = gw.send(&Req::get("/raw/file/long-cl"));
    assert!(
        cut_short(gw.name(), &r, &data) && (r.status == 0 || r.body == data),
        "59: incomplete via {} (status {}, {} bytes)",
        gw.name(),
        r.status,
        r.body.len()
    );
    // 60
    assert_eq!(ok(gw, Req::get("/raw/file/bytesio")).body, data, "60");
    assert_eq!(ok(gw, Req::get("/raw/file/raw")).body, data, "60");
    let sizes = state(gw)["raw_sizes"].clone();
    assert_eq!(
        sizes.as_array().and_then(|a| a.first()),
        Some(&json!(333)),
        "60: read(blksize)"
    );
    // 61
    assert_eq!(
        ok(gw, Req::get("/file/whole")).body,
        data,
        "61: through the validator"
    );
    assert_validator_quiet(gw);
}

fn streams(gw: &mut dyn Gateway) {
    // 62
    let r = ok(gw, Req::get("/big"));
    let expected: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    assert!(
        r.body == expected,
        "62: 1 MiB intact ({} bytes)",
        r.body.len()
    );
    // 64, 65
    // Unwrapped: the validator's own errors wrapper would catch `write(b"x")` first.
    let r = json_of(gw, Req::get("/raw/errors"));
    assert_eq!(r, json!({"bytes_refused": true, "stdin": ""}), "65");
    let log = wait_for_log(gw, "msg from wsgi.errors", Duration::from_secs(5));
    let line = log
        .lines()
        .find(|l| l.contains("msg from wsgi.errors"))
        .unwrap_or_default();
    // Issue 13: the app's own lines, at INFO like print(), not the server's warnings.
    assert!(
        line.contains(" INFO ") && line.contains("req="),
        "64: tagged with the request, as the app's own line: {line}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("INFO") && l.contains("printed to stdout")),
        "65: print()"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("printed to stderr")),
        "65"
    );
    assert_eq!(
        ok(gw, Req::get("/hello")).text(),
        "Hello, World!",
        "65: next request unaffected"
    );
}

/// One checklist group: its name and the function that runs it through a gateway.
pub(super) type Group = (&'static str, fn(&mut dyn Gateway));

/// Every checklist group, for running the whole suite elsewhere (`matrix`: on the oldest and the
/// newest CPython the machine has).
pub(super) const GROUPS: &[Group] = &[
    ("environ", environ),
    ("input", input),
    ("start_response", start_response),
    ("iterables", iterables),
    ("content_length", content_length),
    ("file_wrapper", file_wrapper),
    ("streams", streams),
];

/// The app every group talks to.
pub(super) const CONFORMANCE_APP: &str = APP;

macro_rules! through_both {
    ($($group:ident: $doc:literal;)*) => {$(
        mod $group {
            use super::*;

            #[test]
            #[doc = $doc]
            fn conform_through_the_iis_client() {
                let mut gw = iis();
                super::$group(&mut gw);
                let (status, out, err) = gw.close();
                assert!(status.success(), "exit {status:?}");
                assert!(out.is_empty() && err.is_empty(), "nothing on stdout/stderr under IIS");
            }

            #[test]
            #[doc = $doc]
            fn conform_through_nginx() {
                let mut gw = nginx();
                super::$group(&mut gw);
            }

            #[test]
            #[doc = $doc]
            fn conform_through_the_peers_iis_client() {
                let mut gw = iis_client();
                super::$group(&mut gw);
                gw.close();
            }
        }
    )*};
}

through_both! {
    environ: "Items 1–13: environ types, values, mount, decoding, fix-ups.";
    input: "Items 14–22, 25: wsgi.input semantics, a 10 MiB body, an unread body.";
    start_response: "Items 26–40: status and header validation, exc_info, write().";
    iterables: "Items 41–48: iterables, close(), len()==1, errors before and after output.";
    content_length: "Items 51–56: the app's Content-Length, HEAD, 204/304.";
    file_wrapper: "Items 57–61: wsgi.file_wrapper fast and general paths.";
    streams: "Items 62, 64, 65: a 1 MiB body, wsgi.errors, print(), sys.stdin.";
}

mod input_edges {
    use super::*;

    #[test]
    fn chunked_upload_without_length_reads_to_the_end_through_iis() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut gw = iis();
        let r = json_of(
            &mut gw,
            Req {
                no_length: true,
                ..Req::post("/raw/chunked", &body)
            },
        );
        assert_eq!(r["content_length_present"], json!(false), "23");
        assert_eq!(r["terminated"], json!(true), "23");
        assert_eq!(r["length"], json!(body.len()), "23");
        assert_eq!(r["sha256"], json!(sha256_hex(&body)), "23");
    }

    #[test]
    fn chunked_upload_without_length_reads_to_the_end_through_nginx() {
        let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut gw = nginx();
        let r = gw.send_chunked(&Req::post("/raw/chunked", &body));
        assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
        let r = r.json();
        assert_eq!(r["content_length_present"], json!(false), "23");
        assert_eq!(r["terminated"], json!(true), "23");
        assert_eq!(r["length"], json!(body.len()), "23");
    }

    #[test]
    fn body_shorter_than_its_length_raises_connection_error_through_iis() {
        let mut gw = iis();
        let r = gw.send_truncated(&Req::post("/raw/short", b"0123456789"), 4);
        assert_eq!(r.json(), json!({"read": "ConnectionError"}), "24");
        assert!(
            gw.log().contains("after 4 of the 10 bytes"),
            "24:\n{}",
            gw.log()
        );
        assert_eq!(ok(&mut gw, Req::get("/hello")).text(), "Hello, World!");
    }

    #[test]
    fn client_dying_mid_upload_raises_connection_error_through_nginx() {
        let mut gw = nginx();
        let upload = Req::post("/raw/short", &vec![b'u'; 4 << 20]);
        gw.die_mid_upload(&upload, 2 << 20, "short: reading the body");
        wait_for_log(&gw, "short body:", Duration::from_secs(15));
        assert_eq!(
            ok(&mut gw, Req::get("/hello")).text(),
            "Hello, World!",
            "24: serves on"
        );
    }

    #[test]
    fn streamed_response_keeps_gateway_memory_flat_through_nginx() {
        let mut gw = nginx();
        ok(&mut gw, Req::get("/hello"));
        let baseline = rss_kib(gw.pid());
        let (total, peak) = gw.stream_slowly("/stream/32", 1 << 20);
        assert!(
            total as u64 >= 32 << 20,
            "63: the whole 32 MiB arrived ({total} bytes)"
        );
        let grown = peak.saturating_sub(baseline);
        assert!(
            grown < 16 * 1024,
            "63: RSS grew {grown} KiB while streaming 32 MiB"
        );
    }
}

/// Item 49: the client goes away during a streamed response.
fn client_abort(gw: &mut dyn Gateway) {
    let before = state(gw);
    gw.abandon(&Req::get("/slow"), 5000);
    let log = wait_for_log(gw, "response abandoned", Duration::from_secs(15));
    assert_eq!(
        log.matches("response abandoned").count(),
        1,
        "49: one line\n{log}"
    );
    assert!(
        !log.contains("Traceback"),
        "49: no traceback for an abort\n{log}"
    );
    assert_eq!(
        count(&state(gw), "finally"),
        count(&before, "finally") + 1,
        "49: GeneratorExit"
    );
    assert_eq!(
        ok(gw, Req::get("/hello")).text(),
        "Hello, World!",
        "49: same process serves on"
    );
}

mod abort {
    use super::*;

    #[test]
    fn client_closing_mid_response_closes_the_iterable_through_nginx() {
        client_abort(&mut nginx());
    }

    #[test]
    fn abort_request_mid_response_closes_the_iterable_through_iis() {
        client_abort(&mut iis());
    }
}
