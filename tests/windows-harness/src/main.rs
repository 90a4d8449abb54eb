//! Plays IIS to `iiswsgi.exe` on Windows (in CI: under Wine), following `iis-runtime.md`.
//!
//! Each scenario starts `iiswsgi.exe run --diagnostic` the way w3wp.exe does ([`iis`]: the
//! transport as stdin, invalid stdout/stderr, `APP_POOL_ID`, `_FCGI_X_PIPE_`,
//! `_FCGI_SHUTDOWN_EVENT_`), talks FastCGI to it the way IIS does ([`fcgi`]: one request at a
//! time, `KEEP_CONN`, ids 1‥255 wrapping, bodies in 8 KiB STDIN records), checks every reply,
//! then ends the process the way IIS does (the shutdown event, or closing the transport) and
//! requires exit code 0 within a deadline and the matching line in iiswsgi's log.
//!
//! Usage: `iiswsgi-windows-harness IISWSGI_EXE [--requests N] [--only SUBSTRING]`. Prints one line per scenario
//! and a closing `N passed, N failed` line; exits 1 if any scenario failed.

mod fcgi;
mod iis;
#[path = "../../support/wait.rs"]
#[allow(dead_code)] // the harness uses a part
mod wait;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::windows::io::AsRawSocket;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fcgi::{Cgi, diag_value, fnv1a64, iis_id, iis_params, read_reply, request_writes};
use fcgi_testkit::wire::{self, Record};
use iis::{Event, Exit, OverlappedPipe, Pipe, Process};

/// How long one read or write on the transport may take before the run fails.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the process may take to exit after the shutdown event or EOF.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

struct Ctx {
    exe: PathBuf,
    logs: PathBuf,
    requests: usize,
}

/// The transport IIS uses for this scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    NamedPipe,
    Tcp,
}

/// What `_FCGI_SHUTDOWN_EVENT_` holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ShutdownVar {
    /// Not set (`signalBeforeTerminateSeconds` = 0).
    Unset,
    /// A real inherited event.
    Event,
    /// A number that is no handle in the child: it must log and carry on.
    Bogus,
}

/// Which diagnostic responder the process runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Page {
    Full,
    Hello,
}

enum Conn {
    Pipe(OverlappedPipe),
    Tcp(TcpStream),
}

impl Conn {
    fn close(&mut self) {
        match self {
            Conn::Pipe(p) => p.close(),
            Conn::Tcp(s) => {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Waits until the process has written something for us to read.
    fn wait_readable(&mut self, limit: Duration) -> Result<(), String> {
        match self {
            Conn::Pipe(p) => wait::poll(limit, || p.available().is_ok_and(|n| n > 0).then_some(()))
                .ok_or_else(|| format!("nothing to read within {limit:?}")),
            // Blocks (up to the read timeout, IO_TIMEOUT) until a byte arrives.
            Conn::Tcp(s) => s.peek(&mut [0u8; 1]).map(drop).map_err(|e| e.to_string()),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Pipe(p) => p.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Pipe(p) => p.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A started iiswsgi process and IIS's end of its transport.
struct Launch {
    process: Process,
    conn: Conn,
    event: Option<Event>,
    log: PathBuf,
    page: Page,
    /// What the diagnostic page's `iiswsgi.transport` row must mention.
    transport_hint: String,
}

fn launch(
    ctx: &Ctx,
    tag: &str,
    mode: Mode,
    page: Page,
    var: ShutdownVar,
) -> Result<Launch, String> {
    let log = ctx.logs.join(format!("{tag}.log"));
    let _ = std::fs::remove_file(&log);
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !k.starts_with("_FCGI_") && !k.starts_with("IISWSGI_"))
        .collect();
    env.push(("APP_POOL_ID".into(), "DefaultAppPool".into()));
    let event = match var {
        ShutdownVar::Unset => None,
        ShutdownVar::Event => {
            let e = Event::create(true).map_err(|e| e.to_string())?;
            env.push((
                "_FCGI_SHUTDOWN_EVENT_".into(),
                (e.raw() as usize).to_string(),
            ));
            Some(e)
        }
        ShutdownVar::Bogus => {
            env.push(("_FCGI_SHUTDOWN_EVENT_".into(), "2147483632".into()));
            None
        }
    };
    let args = vec![
        "run".to_owned(),
        match page {
            Page::Full => "--diagnostic".to_owned(),
            Page::Hello => "--diagnostic=hello".to_owned(),
        },
        "--log".to_owned(),
        log.display().to_string(),
    ];
    match mode {
        Mode::NamedPipe => {
            let name = iis::pipe_name(tag.len() as u64);
            let mut pipe = Pipe::create(&name, IO_TIMEOUT).map_err(|e| e.to_string())?;
            env.push(("_FCGI_X_PIPE_".into(), name.clone()));
            let server = pipe.server.take().ok_or("no server end")?;
            let process =
                Process::spawn(&ctx.exe, &args, server.raw(), &env).map_err(|e| e.to_string())?;
            // The child has its own copy now; IIS keeps only the client end.
            drop(server);
            Ok(Launch {
                process,
                conn: Conn::Pipe(pipe.client),
                event,
                log,
                page,
                transport_hint: format!("IIS named pipe {name}"),
            })
        }
        Mode::Tcp => {
            let listener = iis::tcp_listener().map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let process = Process::spawn(&ctx.exe, &args, listener.as_raw_socket() as _, &env)
                .map_err(|e| e.to_string())?;
            let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
                .map_err(|e| format!("connect {addr}: {e}"))?;
            drop(listener);
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            stream
                .set_read_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            stream
                .set_write_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            Ok(Launch {
                process,
                conn: Conn::Tcp(stream),
                event,
                log,
                page,
                transport_hint: "IIS TCP mode".into(),
            })
        }
    }
}

/// Totals for the report line.
#[derive(Default)]
struct Stats {
    requests: usize,
    with_body: usize,
    wraps: usize,
    bytes_up: usize,
    bytes_down: usize,
    records_down: usize,
}

/// The body of the `nth` request: every third one uploads up to ~40 KB, so STDIN spans
/// several 8 KiB records.
fn body_for(nth: usize) -> Vec<u8> {
    if !nth.is_multiple_of(3) {
        return Vec::new();
    }
    (0..(nth * 97 % 40_000 + 1))
        .map(|i| (i * 7 + nth) as u8)
        .collect()
}

/// Sends requests `from..to` one at a time and checks each reply.
fn serve(l: &mut Launch, from: usize, to: usize, stats: &mut Stats) -> Result<(), String> {
    for nth in from..to {
        let body = body_for(nth);
        let (begin, rest) = request(nth, &body);
        l.conn
            .write_all(&begin)
            .and_then(|()| l.conn.write_all(&rest))
            .map_err(|e| format!("request #{nth}: write: {e}"))?;
        stats.bytes_up += begin.len() + rest.len();
        check_reply(l, nth, &body, stats)?;
    }
    Ok(())
}

/// The two writes of request `nth` (BEGIN_REQUEST alone, then the rest), alternating the short
/// and long params length forms.
fn request(nth: usize, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let method = if body.is_empty() { "GET" } else { "POST" };
    let uri = format!("/shop/item/{nth}?n={nth}");
    let mut params = iis_params(method, &uri, body.len());
    if nth % 50 == 3 {
        // A 33 KB header: the page shows it twice, so the reply spans two STDOUT records and
        // is many times the pipe's 4 KiB buffer.
        params.insert(0, ("HTTP_X_PADDING".into(), vec![b'p'; 33_000]));
    }
    request_writes(iis_id(nth), &params, nth % 2 == 1, body)
}

fn check_reply(l: &mut Launch, nth: usize, body: &[u8], stats: &mut Stats) -> Result<(), String> {
    let id = iis_id(nth);
    let fail = |what: String| format!("request #{nth} (id {id}): {what}");
    let reply = read_reply(&mut l.conn, id).map_err(|e| fail(e.to_string()))?;
    stats.requests += 1;
    stats.records_down += reply.records.len();
    stats.bytes_down += reply.stdout.len();
    if !body.is_empty() {
        stats.with_body += 1;
    }
    if nth > 0 && id == 1 {
        stats.wraps += 1;
    }
    if reply.app_status != 0 || reply.protocol_status != 0 {
        return Err(fail(format!(
            "END_REQUEST app status {}, protocol status {}",
            reply.app_status, reply.protocol_status
        )));
    }
    if !reply.stderr.is_empty() {
        return Err(fail(format!(
            "{} bytes of FCGI_STDERR (IIS would answer 500)",
            reply.stderr.len()
        )));
    }
    let cgi = Cgi::parse(&reply.stdout).map_err(|e| fail(format!("CGI response: {e}")))?;
    if cgi.status != 200 {
        return Err(fail(format!(
            "status {}: {}",
            cgi.status,
            String::from_utf8_lossy(&cgi.body)
        )));
    }
    if cgi.header("Content-Length") != Some(cgi.body.len().to_string().as_str()) {
        return Err(fail(format!(
            "Content-Length {:?} for a {}-byte body",
            cgi.header("Content-Length"),
            cgi.body.len()
        )));
    }
    match l.page {
        Page::Hello => {
            if cgi.body != b"Hello, world!\n" {
                return Err(fail(format!(
                    "hello body {:?}",
                    String::from_utf8_lossy(&cgi.body)
                )));
            }
        }
        Page::Full => {
            let text = String::from_utf8_lossy(&cgi.body);
            let method = if body.is_empty() { "GET" } else { "POST" };
            let expect = [
                ("iiswsgi.request_id", id.to_string()),
                ("iiswsgi.body_bytes", body.len().to_string()),
                ("iiswsgi.body_fnv1a64", fnv1a64(body)),
                ("iiswsgi.app_pool", "DefaultAppPool".to_owned()),
                ("REQUEST_METHOD", method.to_owned()),
                ("SCRIPT_NAME", "/shop".to_owned()),
                ("PATH_INFO", format!("/item/{nth}")),
                ("QUERY_STRING", format!("n={nth}")),
                ("CONTENT_LENGTH", body.len().to_string()),
            ];
            for (name, want) in expect {
                let got = diag_value(&text, name);
                if got.as_deref() != Some(want.as_str()) {
                    return Err(fail(format!("{name} = {got:?}, expected {want:?}")));
                }
            }
            if diag_value(&text, "HTTP_CONTENT_LENGTH").is_some() {
                return Err(fail("HTTP_CONTENT_LENGTH reached the environ".into()));
            }
            // The transport as detected, and the standard handles pointed at NUL (they were
            // invalid, as IIS passes them; iis-runtime §12 item 28).
            let transport = diag_value(&text, "iiswsgi.transport").unwrap_or_default();
            for hint in [l.transport_hint.as_str(), "stdin, stdout, stderr now NUL"] {
                if !transport.contains(hint) {
                    return Err(fail(format!(
                        "iiswsgi.transport = {transport:?}, expected it to mention {hint:?}"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Waits for exit code 0 within [`EXIT_DEADLINE`]; returns how long it took.
fn expect_clean_exit(l: &Launch) -> Result<Duration, String> {
    let start = Instant::now();
    match l.process.wait(EXIT_DEADLINE).map_err(|e| e.to_string())? {
        Exit::Code(0) => Ok(start.elapsed()),
        Exit::Code(c) => Err(format!("exit code {c} (0x{c:08X}), expected 0")),
        Exit::StillRunning => Err(format!(
            "still running {} s after being asked to stop",
            EXIT_DEADLINE.as_secs()
        )),
    }
}

/// After the process exited, IIS's end reads EOF: the process closed the transport.
fn expect_eof(l: &mut Launch) -> Result<(), String> {
    let mut b = [0u8; 1];
    match l.conn.read(&mut b) {
        Ok(0) => Ok(()),
        Ok(_) => Err("bytes after the last END_REQUEST".into()),
        // A TCP reset after exit also means the connection is gone.
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(format!("reading after exit: {e}")),
    }
}

fn read_log(l: &Launch) -> String {
    std::fs::read_to_string(&l.log).unwrap_or_default()
}

fn expect_log(l: &Launch, needles: &[&str]) -> Result<(), String> {
    let log = read_log(l);
    for n in needles {
        if !log.contains(n) {
            return Err(format!(
                "the log {} lacks {n:?}; it reads:\n{log}",
                l.log.display()
            ));
        }
    }
    Ok(())
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.0} req/s", n as f64 / d.as_secs_f64().max(1e-9))
}

/// ≥ 600 requests on one process over `mode`, then the shutdown event: exit 0.
fn many_then_shutdown_event(ctx: &Ctx, tag: &str, mode: Mode) -> Result<String, String> {
    let mut l = launch(ctx, tag, mode, Page::Full, ShutdownVar::Event)?;
    let mut stats = Stats::default();
    let start = Instant::now();
    serve(&mut l, 0, ctx.requests, &mut stats)?;
    let took = start.elapsed();
    l.event
        .as_ref()
        .ok_or("no event")?
        .set()
        .map_err(|e| e.to_string())?;
    let exit = expect_clean_exit(&l)?;
    expect_eof(&mut l)?;
    expect_log(
        &l,
        &[
            "watching IIS's shutdown event",
            &format!(
                "exiting after {} request(s): IIS's shutdown event",
                ctx.requests
            ),
        ],
    )?;
    Ok(format!(
        "{} requests on pid {} ({} with bodies, ids 1..255 wrapped {}x, {} KiB up, {} KiB / {} \
         records down) in {:.2} s ({}); SetEvent -> exit 0 in {} ms",
        stats.requests,
        l.process.pid,
        stats.with_body,
        stats.wraps,
        stats.bytes_up / 1024,
        stats.bytes_down / 1024,
        stats.records_down,
        took.as_secs_f64(),
        rate(stats.requests, took),
        exit.as_millis()
    ))
}

/// Requests, then IIS closes its end of the transport: EOF means shutdown, exit 0.
fn eof_exits_zero(
    ctx: &Ctx,
    tag: &str,
    mode: Mode,
    var: ShutdownVar,
    n: usize,
) -> Result<String, String> {
    let mut l = launch(ctx, tag, mode, Page::Hello, var)?;
    let mut stats = Stats::default();
    let start = Instant::now();
    serve(&mut l, 0, n, &mut stats)?;
    let took = start.elapsed();
    l.conn.close();
    let exit = expect_clean_exit(&l)?;
    let mut needles = vec![format!(
        "exiting after {n} request(s): the web server closed the connection"
    )];
    if var == ShutdownVar::Bogus {
        needles.push("is not a waitable handle".into());
    }
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    expect_log(&l, &needles)?;
    Ok(format!(
        "{} hello requests on pid {} in {:.2} s ({}); close -> exit 0 in {} ms{}",
        stats.requests,
        l.process.pid,
        took.as_secs_f64(),
        rate(stats.requests, took),
        exit.as_millis(),
        match var {
            ShutdownVar::Unset => ", no _FCGI_SHUTDOWN_EVENT_",
            ShutdownVar::Bogus => ", bogus _FCGI_SHUTDOWN_EVENT_ logged and ignored",
            ShutdownVar::Event => "",
        }
    ))
}

/// The shutdown event arrives while a request's body is still coming: the process finishes
/// that request (the reply is complete and correct), then exits 0 without waiting for EOF.
fn shutdown_event_mid_request(ctx: &Ctx, tag: &str, mode: Mode) -> Result<String, String> {
    let mut l = launch(ctx, tag, mode, Page::Full, ShutdownVar::Event)?;
    let mut stats = Stats::default();
    serve(&mut l, 0, 3, &mut stats)?;
    let nth = 3;
    let body: Vec<u8> = (0..24 * 1024).map(|i| (i % 251) as u8).collect();
    let (begin, rest) = request(nth, &body);
    // Everything up to and including the first 8 KiB STDIN record.
    let params_end = find_first_stdin_end(&rest).ok_or("no STDIN record")?;
    l.conn
        .write_all(&begin)
        .and_then(|()| l.conn.write_all(&rest[..params_end]))
        .map_err(|e| format!("first half: {e}"))?;
    // Time for the process to take the first half before the event is set. Nothing outside
    // it shows that it has (the request starts only once its body is complete, and a pipe's
    // buffer sizes are advisory), so this stays a pause.
    std::thread::sleep(Duration::from_millis(300));
    l.event
        .as_ref()
        .ok_or("no event")?
        .set()
        .map_err(|e| e.to_string())?;
    // The process saw the event; it must stay for the request in flight. (Exiting a moment
    // later would fail the second half or the reply below.)
    wait::poll(EXIT_DEADLINE, || {
        read_log(&l)
            .contains("IIS set the shutdown event")
            .then_some(())
    })
    .ok_or_else(|| {
        format!(
            "the shutdown event was not noticed; the log reads:\n{}",
            read_log(&l)
        )
    })?;
    if l.process.wait(Duration::ZERO).map_err(|e| e.to_string())? != Exit::StillRunning {
        return Err("exited while a request was in flight".into());
    }
    l.conn
        .write_all(&rest[params_end..])
        .map_err(|e| format!("second half: {e}"))?;
    // The process finished the request: its reply has started to arrive. The reply is far
    // larger than the pipe's 4 KiB buffer, so the process must now wait until IIS has taken
    // every byte before it exits, or the tail is lost: leave it a window in which exiting
    // early would show (the reply check below then finds the tail missing).
    l.conn.wait_readable(IO_TIMEOUT)?;
    let _ = l.process.wait(Duration::from_millis(500));
    check_reply(&mut l, nth, &body, &mut stats)?;
    let exit = expect_clean_exit(&l)?;
    expect_eof(&mut l)?;
    expect_log(&l, &["exiting after 4 request(s): IIS's shutdown event"])?;
    Ok(format!(
        "event set mid-body; request completed ({} body bytes echoed), then exit 0 in {} ms",
        body.len(),
        exit.as_millis()
    ))
}

/// The offset just past the first STDIN record in `rest` (PARAMS records, then STDIN ones).
fn find_first_stdin_end(rest: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some((record, used)) = Record::parse(&rest[at..]) {
        at += used;
        if record.kind == wire::STDIN {
            return Some(at);
        }
    }
    None
}

fn windows_path(arg: &str) -> PathBuf {
    // Under Wine a Unix path is reachable through drive Z:.
    if let Some(rest) = arg.strip_prefix('/') {
        return PathBuf::from(format!("Z:\\{}", rest.replace('/', "\\")));
    }
    PathBuf::from(arg)
}

type Scenario = (&'static str, Box<dyn Fn(&Ctx) -> Result<String, String>>);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let Some(exe) = args.get(1).map(|a| windows_path(a)) else {
        eprintln!("usage: iiswsgi-windows-harness IISWSGI_EXE [--requests N] [--only SUBSTRING]");
        return ExitCode::from(2);
    };
    let requests = match args.iter().position(|a| a == "--requests") {
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(n) => n,
            None => {
                eprintln!("--requests needs a number");
                return ExitCode::from(2);
            }
        },
        None => 620,
    };
    let logs = std::env::temp_dir().join(format!("iiswsgi-harness-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("cannot create {}: {e}", logs.display());
        return ExitCode::from(2);
    }
    let ctx = Ctx {
        exe,
        logs,
        requests,
    };
    println!(
        "windows harness: playing IIS to {} (logs in {})",
        ctx.exe.display(),
        ctx.logs.display()
    );
    let scenarios: Vec<Scenario> = vec![
        (
            "named_pipe_serves_many_keep_conn_requests_then_exits_on_the_shutdown_event",
            Box::new(|c| many_then_shutdown_event(c, "pipe-event", Mode::NamedPipe)),
        ),
        (
            "named_pipe_eof_exits_zero_without_a_shutdown_event",
            Box::new(|c| eof_exits_zero(c, "pipe-eof", Mode::NamedPipe, ShutdownVar::Unset, 50)),
        ),
        (
            "named_pipe_shutdown_event_mid_request_finishes_the_request_first",
            Box::new(|c| shutdown_event_mid_request(c, "pipe-mid", Mode::NamedPipe)),
        ),
        (
            "tcp_mode_serves_many_keep_conn_requests_then_exits_on_the_shutdown_event",
            Box::new(|c| many_then_shutdown_event(c, "tcp-event", Mode::Tcp)),
        ),
        (
            "tcp_mode_eof_exits_zero_with_a_bogus_shutdown_event_value",
            Box::new(|c| eof_exits_zero(c, "tcp-eof", Mode::Tcp, ShutdownVar::Bogus, 50)),
        ),
    ];
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let (mut passed, mut failed) = (0, 0);
    for (name, run) in &scenarios {
        if only.is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let start = Instant::now();
        match run(&ctx) {
            Ok(summary) => {
                passed += 1;
                println!(
                    "ok     {name} ({:.1} s): {summary}",
                    start.elapsed().as_secs_f64()
                );
            }
            Err(why) => {
                failed += 1;
                println!(
                    "FAILED {name} ({:.1} s): {why}",
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }
    println!("windows harness: {passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
