//! Real frameworks from PyPI, in a venv the tests create (cached under the target dir), served
//! under the sub-application path `/app` through the IIS client and through nginx:
//! `examples/flask-hello` and `examples/django-site` as shipped, plus
//! `tests/conformance/apps/frameworks/{flask_full,django_full}.py` for forms, file uploads,
//! redirects, framework-served static files and 404/500 pages.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::{Gateway, IisGateway, NginxGateway, Req, apps_dir, build_python};

/// A venv with Flask and Django from PyPI, created once and reused across runs
/// (`<target>/tmp/wsgi-frameworks-py<minor>`).
fn framework_venv() -> &'static Path {
    crate::support::venv::frameworks()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn venv_arg() -> String {
    framework_venv().display().to_string()
}

fn both(app: &str, dir: &Path, check: fn(&mut dyn Gateway)) {
    let venv = venv_arg();
    let mut iis = IisGateway::start(app, dir, &["--venv", &venv, "--reload-pattern", ""]);
    check(&mut iis);
    let mut nginx = NginxGateway::start(app, dir, &["--venv", &venv, "--reload-pattern", ""]);
    check(&mut nginx);
    let (status, out, err) = iis.close();
    assert!(
        status.success() && out.is_empty() && err.is_empty(),
        "{status:?}"
    );
}

fn get(gw: &mut dyn Gateway, uri: &str) -> super::Resp {
    gw.send(&Req::get(uri).header("Host", b"localhost"))
}

fn multipart(comment: &str, filename: &str, data: &[u8]) -> (Vec<u8>, String) {
    let boundary = "iiswsgi-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"comment\"\r\n\r\n{comment}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

fn sha256(data: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new(build_python())
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
    String::from_utf8_lossy(&child.wait_with_output().expect("sha").stdout)
        .trim()
        .to_owned()
}

/// Forms, upload, redirect, static, 404, 500: the same routes in both fixtures.
fn full_site(gw: &mut dyn Gateway, framework: &str) {
    let who = format!("{framework} via {}", gw.name());
    let r = get(gw, "/");
    assert_eq!(
        (r.status, r.text()),
        (200, format!("{framework} index\n")),
        "{who}: routing"
    );
    // A form.
    let form = Req::post("/form", b"name=Ann+Lee&n=2")
        .header("Host", b"localhost")
        .header("Content-Type", b"application/x-www-form-urlencoded");
    let r = gw.send(&form);
    assert_eq!(
        (r.status, r.text()),
        (200, "Hello Ann Lee, n=2\n".into()),
        "{who}: form\n{}",
        gw.log()
    );
    // A file upload (binary, 300 KB).
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let (body, content_type) = multipart("a note", "report.bin", &data);
    let upload = Req::post("/upload", &body)
        .header("Host", b"localhost")
        .header("Content-Type", content_type.as_bytes());
    let r = gw.send(&upload);
    assert_eq!(r.status, 200, "{who}: upload {}\n{}", r.text(), gw.log());
    assert_eq!(
        r.json(),
        json!({"filename": "report.bin", "length": data.len(), "sha256": sha256(&data), "comment": "a note"}),
        "{who}: upload"
    );
    // A redirect stays under the mount point.
    let r = get(gw, "/go");
    assert_eq!(r.status, 302, "{who}: redirect");
    let location = r.header("Location").unwrap_or_default();
    assert!(
        location.ends_with("/app/target"),
        "{who}: Location {location}"
    );
    let target = get(gw, "/target").json();
    let script = target
        .get("script_root")
        .or_else(|| target.get("script_name"));
    assert_eq!(script, Some(&json!("/app")), "{who}: SCRIPT_NAME");
    // Static files through the framework (wsgi.file_wrapper underneath).
    let r = get(gw, "/static/hello.txt");
    assert_eq!(
        (r.status, r.text()),
        (200, "static file served by the framework\n".into()),
        "{who}: static"
    );
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{who}"
    );
    // 404 and 500 pages come from the framework; the failure is in the log.
    assert_eq!(get(gw, "/no/such/page").status, 404, "{who}: 404");
    let r = get(gw, "/boom");
    assert_eq!(r.status, 500, "{who}: 500");
    assert!(
        gw.log()
            .contains(&format!("{framework} view failed on purpose")),
        "{who}: logged\n{}",
        gw.log()
    );
    assert_eq!(get(gw, "/").status, 200, "{who}: serves on after a 500");
}

#[test]
fn flask_site_serves_forms_uploads_redirects_static_and_errors_under_a_sub_path() {
    both("flask_full:app", &apps_dir().join("frameworks"), |gw| {
        full_site(gw, "flask")
    });
}

#[test]
fn django_site_serves_forms_uploads_redirects_static_and_errors_under_a_sub_path() {
    both(
        "django_full:application",
        &apps_dir().join("frameworks"),
        |gw| full_site(gw, "django"),
    );
}

#[test]
fn flask_hello_example_is_served_as_shipped() {
    both("hello:app", &examples().join("flask-hello"), |gw| {
        let who = gw.name();
        assert_eq!(get(gw, "/").text(), "Hello from Flask on IIS!\n", "{who}");
        let body: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
        let echo = Req::post("/echo", &body).header("Content-Type", b"application/octet-stream");
        assert_eq!(gw.send(&echo).body, body, "{who}: echo");
        let lines: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(get(gw, "/stream").text(), lines, "{who}: stream");
        let me = get(gw, "/whoami").json();
        assert_eq!(
            me,
            json!({"script_name": "/app", "path_info": "/whoami", "scheme": "http"}),
            "{who}"
        );
    });
}

#[test]
fn django_site_example_is_served_as_shipped() {
    both(
        "mysite.wsgi:application",
        &examples().join("django-site"),
        |gw| {
            let who = gw.name();
            let r = get(gw, "/");
            assert_eq!(
                (r.status, r.text()),
                (200, "Hello from Django on IIS!\n".into()),
                "{who}\n{}",
                gw.log()
            );
            let r = get(gw, "/hello/caf%C3%A9/");
            assert_eq!(
                r.json(),
                json!({"hello": "café", "script_name": "/app"}),
                "{who}: non-ASCII path"
            );
            assert_eq!(get(gw, "/missing/").status, 404, "{who}");
        },
    );
}
