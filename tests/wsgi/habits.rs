//! Issue 13, item 3: what gunicorn users take for granted (serving-behind-web-servers.md §2),
//! through the built binary run as they would run it: from the project folder, on a terminal.

use std::io::Read as _;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::fcgi_client::{self as fc, iiswsgi_bin, wait_for_path};
use crate::support::peers::{HttpClient, Peer, Proc, Sandbox};
use crate::support::wait;

const HELLO: &str = "\
import sys
def make(greeting='hello', punctuation='!'):
    def app(environ, start_response):
        environ['wsgi.errors'].write('an app log line\\n')
        body = (greeting + punctuation + ' ' + environ['PATH_INFO']).encode()
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [body]
    return app
app = make()
";

fn get(socket: &Path, path: &str) -> (u16, String) {
    let mut conn = UnixStream::connect(socket).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let reply = fc::exchange(
        &mut conn,
        1,
        false,
        &fc::nginx_params("GET", path, None),
        b"",
    );
    (reply.cgi().status, reply.cgi().text())
}

/// `iiswsgi run ARGS` started in `dir` (no `--chdir`, no `--app-root`), stdin closed.
fn run_in(sandbox: &Sandbox, dir: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(iiswsgi_bin());
    cmd.arg("run")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null());
    Proc::spawn("iiswsgi", sandbox.path(), cmd, vec![])
}

#[test]
fn run_in_the_project_folder_finds_its_module_as_gunicorn_does() {
    let sandbox = Sandbox::new("habit-path");
    sandbox.write("hello.py", HELLO);
    let socket = sandbox.join("gw.sock");
    let log = sandbox.join("iiswsgi.log");
    let listen = format!("unix:{}", socket.display());
    let mut proc = run_in(
        &sandbox,
        sandbox.path(),
        &[
            "--app",
            "hello:app",
            "--listen",
            &listen,
            "--log",
            &log.display().to_string(),
        ],
    );
    proc.wait_until("the socket accepts", || {
        UnixStream::connect(&socket).is_ok()
    });
    assert_eq!(
        get(&socket, "/x"),
        (200, "hello! /x".into()),
        "{}",
        proc.output()
    );
}

#[test]
fn run_in_a_folder_with_iiswsgi_toml_serves_it_and_honours_its_run_section() {
    let sandbox = Sandbox::new("habit-toml");
    sandbox.write("hello.py", HELLO);
    sandbox.write(
        "iiswsgi.toml",
        "[app]\nname = \"Hello\"\ntitle = \"Hello\"\nversion = \"1.0.0\"\ndescription = \"x\"\n\n\
         [wsgi]\napp = \"hello:make(greeting='hi', punctuation='?')\"\n\n[run]\n\
         mount-point = \"/shop\"\nlog-file = \"var/app.log\"\nlog-level = \"debug\"\n\n\
         [iis]\n[iis.fastcgi]\n[package]\n",
    );
    std::fs::create_dir_all(sandbox.join("var")).expect("var");
    let socket = sandbox.join("gw.sock");
    let listen = format!("unix:{}", socket.display());
    let mut proc = run_in(&sandbox, sandbox.path(), &["--listen", &listen]);
    proc.wait_until("the socket accepts", || {
        UnixStream::connect(&socket).is_ok()
    });
    let log = sandbox.join("var/app.log");
    let (status, body) = get(&socket, "/shop/cart");
    assert_eq!(
        (status, body.as_str()),
        (200, "hi? /cart"),
        "the manifest's factory call with literal arguments and its mount point: {}",
        proc.output()
    );
    let text = wait::log_contains(&log, "GET /cart", Duration::from_secs(10));
    assert!(
        text.contains("(found in the working directory)"),
        "[run] log-file and log-level (debug shows the request line): {text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("an app log line"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" INFO "),
        "wsgi.errors is the app's own line: {line}"
    );
}

#[test]
fn listen_takes_a_bare_host_and_port() {
    let sandbox = Sandbox::new("habit-tcp");
    sandbox.write("hello.py", HELLO);
    let port = crate::support::peers::free_port();
    let log = sandbox.join("iiswsgi.log");
    let mut proc = run_in(
        &sandbox,
        sandbox.path(),
        &[
            "--app",
            "hello:app",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log",
            &log.display().to_string(),
        ],
    );
    proc.wait_until("the port accepts", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let reply = fc::exchange(
        &mut conn,
        1,
        false,
        &fc::nginx_params("GET", "/t", None),
        b"",
    );
    assert_eq!(reply.cgi().text(), "hello! /t", "{}", proc.output());
}

#[test]
fn an_app_that_does_not_import_stops_the_start_with_its_traceback_and_status_2() {
    let sandbox = Sandbox::new("habit-import");
    sandbox.write("hello.py", HELLO);
    let socket = sandbox.join("gw.sock");
    let listen = format!("unix:{}", socket.display());
    let log = sandbox.join("iiswsgi.log");
    let mut proc = run_in(
        &sandbox,
        sandbox.path(),
        &[
            "--app",
            "hello:nope",
            "--listen",
            &listen,
            "--log",
            &log.display().to_string(),
        ],
    );
    let status = proc
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("kept serving 503s: {}", proc.output()));
    assert_eq!(status.code(), Some(2), "{}", proc.output());
    let (_, err) = proc.std_streams();
    let err = String::from_utf8_lossy(&err);
    assert!(
        err.contains("cannot import hello:nope")
            && err.contains("AttributeError: module 'hello' has no attribute 'nope'"),
        "the traceback on stderr: {err}"
    );
    assert!(!socket.exists(), "nothing left listening");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("importing hello:nope failed; not serving") && !text.contains("503"),
        "{text}"
    );
}

#[test]
fn an_invalid_manifest_shows_its_diagnostics_with_line_and_column() {
    let sandbox = Sandbox::new("habit-badtoml");
    let manifest = sandbox.write(
        "iiswsgi.toml",
        "[app]\nname = \"Hello\"\ntitle = \"Hello\"\nversion = \"1.0.0\"\ndescription = \"x\"\n\n\
         [wsgi]\napp = \"hello:app\"\n\n[run]\nthreads = 0\nlog-kept = 2\n",
    );
    let mut proc = run_in(
        &sandbox,
        sandbox.path(),
        &[
            "--manifest",
            &manifest.display().to_string(),
            "--listen",
            "127.0.0.1:1",
        ],
    );
    let status = proc.wait_exit(Duration::from_secs(20)).expect("exits");
    assert_eq!(status.code(), Some(2));
    let (_, err) = proc.std_streams();
    let err = String::from_utf8_lossy(&err);
    for needle in [
        "has 2 errors",
        "iiswsgi.toml:11:11: `run.threads` must be between 1 and 1024, found 0",
        "11 | threads = 0",
        "iiswsgi.toml:12:1: unknown key `log-kept` in `[run]`",
        "did you mean `log-keep`?",
    ] {
        assert!(err.contains(needle), "{needle:?} in:\n{err}");
    }
}

/// A pseudo-terminal: (the side we read, the side the child writes to as its stderr).
fn pty() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors through the pointers; the other arguments may be
    // null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened for us and nothing else owns them.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

#[test]
fn a_terminal_gets_one_start_up_line_and_the_access_log_is_combined_format() {
    let sandbox = Sandbox::new("habit-tty");
    sandbox.write("hello.py", HELLO);
    let socket = sandbox.join("gw.sock");
    let access = sandbox.join("access.log");
    let (mut terminal, stderr) = pty();
    let mut cmd = Command::new(iiswsgi_bin());
    cmd.arg("run")
        .args(["--app", "hello:app", "--threads", "2", "--listen"])
        .arg(format!("unix:{}", socket.display()))
        .arg("--log")
        .arg(sandbox.join("iiswsgi.log"))
        .arg("--access-log")
        .arg(&access)
        .current_dir(sandbox.path())
        .stdin(Stdio::null())
        .stderr(Stdio::from(stderr));
    let _proc = Proc::spawn_keeping_stderr("iiswsgi", sandbox.path(), cmd);
    wait_for_path(&socket, Duration::from_secs(20));
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && terminal.read(&mut byte).is_ok_and(|n| n == 1) {
        line.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&line);
    for needle in [
        "iiswsgi ",
        ": serving hello:app, listening on unix:",
        "2 threads",
        "Python 3.",
        "; log: ",
    ] {
        assert!(line.contains(needle), "{needle:?} in {line:?}");
    }
    let peer = Peer::nginx(&sandbox, &socket);
    let mut client = HttpClient::connect(peer.port);
    let r = client
        .request(
            "GET",
            "/caf%C3%A9?q=1",
            &[("User-Agent", "habits/1.0")],
            b"",
        )
        .expect("GET");
    assert_eq!(r.status, 200);
    let text = wait::log_contains(&access, "habits/1.0", Duration::from_secs(10));
    let entry = text.lines().next().unwrap_or_default();
    let fields: Vec<&str> = entry.splitn(4, ' ').collect();
    assert_eq!(&fields[..3], ["127.0.0.1", "-", "-"], "{entry}");
    assert!(
        entry.contains("] \"GET /caf%C3%A9?q=1 HTTP/1.1\" 200 ")
            && entry.ends_with(" \"-\" \"habits/1.0\""),
        "{entry}"
    );
}
