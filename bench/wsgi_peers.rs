//! Load figures for the embedded-Python WSGI bridge, printed side by side with its peers in
//! interleaved rounds (so machine noise hits every peer alike). Run through `bench/wsgi.sh`,
//! which builds the peers' venv; `cargo test` never runs this.
//!
//! - **IIS mode**: the IIS-emulating FastCGI client of `tests/support/fcgi_client.rs` over a
//!   socketpair on fd 0, one process, keep-conn, sequential requests to `bench/wsgi_hello.py`:
//!   `iiswsgi run` vs Microsoft's wfastcgi 3.0.0 (with inert `ctypes.windll` stand-ins), and
//!   two floors on the same client: `iiswsgi run --diagnostic=hello` (no Python) and the C
//!   libfcgi hello responder. Requests per second and the serving process's CPU per request;
//!   also cold start (spawn → first response), a 64 MiB upload echo, and RSS after 1k vs 100k
//!   requests.
//! - **nginx mode**: one nginx, `wrk -t1 -c16`, in front of `iiswsgi run --listen`, uWSGI
//!   (`pyuwsgi`, FastCGI socket, 1 process, 1 thread), flup (`fcgi_single`) and granian (WSGI
//!   over HTTP, 1 worker, 1 blocking thread); plus gateway RSS while streaming 16 MiB.
//!
//! Environment: `BENCH_VENV` (a venv with wfastcgi, flup, pyuwsgi, granian), `BENCH_ROUNDS`
//! (default 5), `BENCH_SECONDS` (wrk duration, default 5), `BENCH_C_RESPONDER` (the compiled
//! C responder; its row is left out without it), `BENCH_BASELINE_BIN` (another `iiswsgi`
//! build, e.g. main before the stable-ABI change of issue 15: an IIS-mode row of its own, same
//! app, venv and client, labelled with `BENCH_BASELINE_NAME`).

#[path = "../tests/support/fcgi_client.rs"]
mod fcgi_client;
#[path = "../tests/support/wait.rs"]
#[allow(dead_code)] // the bench uses a part
mod wait;

use std::io::{BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fcgi_client as fc;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 0 => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        n => v[n / 2],
    }
}

/// CPU time (user + system) the process has used so far, from `/proc/PID/schedstat`, in µs.
fn cpu_us(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1000.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A peer serving on a socketpair the way IIS talks to its FastCGI processes.
struct IisPeer {
    child: Child,
    pipe: UnixStream,
    /// The read side, buffered as IIS's overlapped reads are: one read takes in whatever the
    /// process wrote, not one record header at a time.
    reader: BufReader<UnixStream>,
    params: Vec<(String, Vec<u8>)>,
    /// The request id, 1..=255 then wrapping to 1, as IIS counts.
    id: u16,
}

impl Drop for IisPeer {
    fn drop(&mut self) {
        let _ = self.pipe.shutdown(std::net::Shutdown::Both);
        let child = &mut self.child;
        if wait::poll(Duration::from_secs(5), || child.try_wait().ok().flatten()).is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum IisKind {
    Iiswsgi,
    Wfastcgi,
    /// `iiswsgi run --diagnostic=hello`: the same server and client, no Python (the floor).
    Floor,
    /// The C libfcgi hello responder (`bench/c-responder/hello.c`) on the same client: what
    /// the client, the socketpair and the kernel cost with a minimal C server.
    CFloor,
    /// `BENCH_BASELINE_BIN`: another iiswsgi build on the same app, venv and client.
    Baseline,
}

impl IisKind {
    fn name(self) -> &'static str {
        match self {
            IisKind::Iiswsgi => "iiswsgi",
            IisKind::Wfastcgi => "wfastcgi 3.0.0",
            IisKind::Floor => "floor: no Python",
            IisKind::CFloor => "floor: C libfcgi",
            IisKind::Baseline => baseline_name(),
        }
    }
}

/// The baseline row's label (`BENCH_BASELINE_NAME`, default "iiswsgi baseline").
fn baseline_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("BENCH_BASELINE_NAME").unwrap_or_else(|_| "iiswsgi baseline".into())
    })
}

struct Setup {
    venv: PathBuf,
    /// APPL_PHYSICAL_PATH for wfastcgi: the hello app plus its Web.config.
    site: tempfile::TempDir,
    /// The compiled C libfcgi responder (`BENCH_C_RESPONDER`), when libfcgi-dev is there.
    c_responder: Option<PathBuf>,
    /// `BENCH_BASELINE_BIN`, when set and present.
    baseline: Option<PathBuf>,
}

impl Setup {
    fn new(venv: PathBuf) -> Setup {
        let site = tempfile::Builder::new()
            .prefix("iiswsgi-bench-site-")
            .tempdir()
            .expect("tempdir");
        std::fs::copy(
            bench_dir().join("wsgi_hello.py"),
            site.path().join("wsgi_hello.py"),
        )
        .expect("copy app");
        std::fs::write(
            site.path().join("Web.config"),
            "<?xml version=\"1.0\"?>\n<configuration><appSettings>\n\
             <add key=\"WSGI_HANDLER\" value=\"wsgi_hello.application\"/>\n\
             <add key=\"WSGI_RESTART_FILE_REGEX\" value=\"\"/>\n\
             </appSettings></configuration>\n",
        )
        .expect("Web.config");
        let c_responder = std::env::var_os("BENCH_C_RESPONDER")
            .map(PathBuf::from)
            .filter(|p| p.is_file());
        let baseline = std::env::var_os("BENCH_BASELINE_BIN")
            .map(PathBuf::from)
            .filter(|p| p.is_file());
        Setup {
            venv,
            site,
            c_responder,
            baseline,
        }
    }

    fn spawn_iis(&self, kind: IisKind) -> IisPeer {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_read_timeout(Some(Duration::from_secs(600)))
            .expect("timeout");
        let mut cmd = match kind {
            IisKind::Iiswsgi | IisKind::Baseline => {
                let bin = match kind {
                    IisKind::Baseline => self.baseline.clone().expect("baseline binary"),
                    _ => fc::iiswsgi_bin(),
                };
                let mut c = Command::new(bin);
                c.args([
                    "run",
                    "--app",
                    "wsgi_hello:application",
                    "--reload-pattern",
                    "",
                ])
                .arg("--chdir")
                .arg(self.site.path())
                .arg("--venv")
                .arg(&self.venv)
                .arg("--log")
                .arg(self.site.path().join("iiswsgi.log"));
                c
            }
            IisKind::Floor => {
                let mut c = Command::new(fc::iiswsgi_bin());
                c.args(["run", "--diagnostic=hello", "--log"])
                    .arg(self.site.path().join("floor.log"));
                c
            }
            IisKind::CFloor => Command::new(self.c_responder.as_ref().expect("C responder")),
            IisKind::Wfastcgi => {
                let mut c = Command::new(self.venv.join("bin/python"));
                c.arg(bench_dir().join("wsgi_wfastcgi_shim.py"));
                c
            }
        };
        cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env("APP_POOL_ID", "BenchPool");
        let child = cmd.spawn().expect("spawn peer");
        let mut params = fc::iis_params("GET", "/LM/W3SVC/1/ROOT", "/hello", 0);
        for (n, v) in params.iter_mut() {
            if n == "APPL_PHYSICAL_PATH" {
                *v = self.site.path().display().to_string().into_bytes();
            }
        }
        let reader = BufReader::with_capacity(64 << 10, ours.try_clone().expect("clone pipe"));
        IisPeer {
            child,
            pipe: ours,
            reader,
            params,
            id: 0,
        }
    }
}

impl IisPeer {
    fn request(&mut self, path: &str, body: &[u8]) -> fc::Reply {
        let mut params = self.params.clone();
        let method = if body.is_empty() { "GET" } else { "POST" };
        for (n, v) in params.iter_mut() {
            match n.as_str() {
                "REQUEST_METHOD" => *v = method.as_bytes().to_vec(),
                "REQUEST_URI" | "URL" | "PATH_INFO" | "SCRIPT_NAME" => {
                    *v = path.as_bytes().to_vec()
                }
                "CONTENT_LENGTH" => *v = body.len().to_string().into_bytes(),
                _ => {}
            }
        }
        self.id = self.id % 255 + 1;
        // BEGIN_REQUEST goes out as its own 16-byte write, then PARAMS, the empty PARAMS and
        // STDIN in one (iis-runtime.md §4.1).
        let bytes = fc::request_bytes(self.id, true, &params, body, 65535);
        let (begin, rest) = bytes.split_at(16);
        self.pipe.write_all(begin).expect("write BEGIN_REQUEST");
        self.pipe.write_all(rest).expect("write request");
        fc::read_reply(&mut self.reader, self.id).expect("reply")
    }

    fn hello(&mut self) {
        let reply = self.request("/hello", &[]);
        let body = reply.stdout.strip_suffix(b"\n").unwrap_or(&reply.stdout);
        // The Python hello app says "Hello, World!", the no-Python floor (`--diagnostic=hello`)
        // "Hello, world!": either proves the request went through.
        assert!(
            body.to_ascii_lowercase().ends_with(b"hello, world!"),
            "unexpected reply {:?}",
            String::from_utf8_lossy(&reply.stdout)
        );
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn print_table(title: &str, unit: &str, rows: &[(String, Vec<f64>)], better_high: bool) {
    println!("\n{title}");
    let rounds = rows.first().map_or(0, |r| r.1.len());
    print!("  {:<24}", "peer");
    for r in 0..rounds {
        print!("{:>12}", format!("round {}", r + 1));
    }
    println!("{:>14}{:>10}", format!("median {unit}"), "vs first");
    let mut first = None;
    for (name, values) in rows {
        print!("  {name:<24}");
        for v in values {
            print!("{v:>12.1}");
        }
        let m = median(&mut values.clone());
        let base = *first.get_or_insert(m);
        let ratio = if better_high {
            if m > 0.0 { base / m } else { 0.0 }
        } else if base > 0.0 {
            m / base
        } else {
            0.0
        };
        println!(
            "{m:>14.1}{:>9.2}x",
            if rows.len() > 1 { ratio } else { 1.0 }
        );
    }
}

fn iis_mode(setup: &Setup, rounds: u64) {
    println!(
        "\n== IIS mode: IIS-emulating client, socketpair on fd 0, one process, sequential keep-conn"
    );
    let mut kinds = vec![IisKind::Iiswsgi, IisKind::Wfastcgi, IisKind::Floor];
    if setup.c_responder.is_some() {
        kinds.push(IisKind::CFloor);
    }
    if setup.baseline.is_some() {
        kinds.insert(1, IisKind::Baseline);
    }
    let mut rps: Vec<(String, Vec<f64>)> = kinds
        .iter()
        .map(|k| (k.name().to_owned(), Vec::new()))
        .collect();
    let mut cold: Vec<(String, Vec<f64>)> =
        rps.iter().map(|(n, _)| (n.clone(), Vec::new())).collect();
    let mut cpu: Vec<(String, Vec<f64>)> =
        rps.iter().map(|(n, _)| (n.clone(), Vec::new())).collect();
    for _ in 0..rounds {
        for (i, kind) in kinds.iter().enumerate() {
            let start = Instant::now();
            let mut peer = setup.spawn_iis(*kind);
            peer.hello();
            cold[i].1.push(start.elapsed().as_secs_f64() * 1000.0);
            for _ in 0..200 {
                peer.hello();
            }
            let n = if matches!(kind, IisKind::Iiswsgi | IisKind::Baseline) {
                20_000
            } else {
                4_000
            };
            let cpu_before = cpu_us(peer.pid());
            let start = Instant::now();
            for _ in 0..n {
                peer.hello();
            }
            rps[i].1.push(n as f64 / start.elapsed().as_secs_f64());
            cpu[i].1.push((cpu_us(peer.pid()) - cpu_before) / n as f64);
        }
    }
    print_table(
        "sequential hello-world requests (req/s; 'vs first' = iiswsgi / peer)",
        "req/s",
        &rps,
        true,
    );
    print_table(
        "CPU the serving process spends per request, user + system (µs; 'vs first' = peer / iiswsgi)",
        "µs",
        &cpu,
        false,
    );
    print_table(
        "cold start, spawn to first response (ms; 'vs first' = peer / iiswsgi)",
        "ms",
        &cold,
        false,
    );

    println!("\nupload echo (POST body read with wsgi.input.read(CONTENT_LENGTH), echoed back)");
    for (kind, sizes, limit) in [
        (
            IisKind::Iiswsgi,
            vec![1usize, 16, 64],
            Duration::from_secs(60),
        ),
        (
            IisKind::Wfastcgi,
            vec![1, 4, 16, 64],
            Duration::from_secs(120),
        ),
    ] {
        let mut peer = setup.spawn_iis(kind);
        peer.hello();
        for mib in sizes {
            let body: Vec<u8> = (0..mib << 20).map(|i| (i % 251) as u8).collect();
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let start = Instant::now();
            let mut pipe = peer.pipe.try_clone().expect("clone pipe");
            let params = {
                let mut p = peer.params.clone();
                for (n, v) in p.iter_mut() {
                    match n.as_str() {
                        "REQUEST_METHOD" => *v = b"POST".to_vec(),
                        "REQUEST_URI" | "URL" | "PATH_INFO" | "SCRIPT_NAME" => {
                            *v = b"/echo".to_vec()
                        }
                        "CONTENT_LENGTH" => *v = body.len().to_string().into_bytes(),
                        _ => {}
                    }
                }
                p
            };
            let expected = body.len();
            std::thread::spawn(move || {
                let bytes = fc::request_bytes(1, true, &params, &body, 65535);
                let ok = pipe.write_all(&bytes).is_ok()
                    && fc::read_reply(&mut pipe, 1)
                        .map(|r| r.stdout.len() > expected)
                        .unwrap_or(false);
                let _ = done_tx.send(ok);
            });
            match done_rx.recv_timeout(limit) {
                Ok(true) => println!(
                    "  {:<24}{mib:>4} MiB: {:>10.3} s",
                    kind.name(),
                    start.elapsed().as_secs_f64()
                ),
                Ok(false) => println!("  {:<24}{mib:>4} MiB: failed", kind.name()),
                Err(_) => {
                    println!(
                        "  {:<24}{mib:>4} MiB: > {} s (gave up)",
                        kind.name(),
                        limit.as_secs()
                    );
                    break;
                }
            }
        }
    }

    println!("\nRSS after N hello-world requests (iiswsgi, IIS mode)");
    let mut peer = setup.spawn_iis(IisKind::Iiswsgi);
    let mut done = 0u64;
    for target in [1_000u64, 10_000, 100_000] {
        while done < target {
            peer.hello();
            done += 1;
        }
        println!(
            "  after {target:>7} requests: {:>8} KiB",
            rss_kib(peer.pid())
        );
    }
}

/// A peer behind nginx.
struct HttpPeer {
    name: &'static str,
    child: Child,
    nginx: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        for c in [&mut self.child, &mut self.nginx] {
            stop(c);
        }
    }
}

/// SIGTERM, up to 5 s to exit, then SIGKILL. A bare SIGKILL left nginx's worker (and a
/// server's own workers) orphaned under pid 1 after every run.
fn stop(child: &mut Child) {
    // SAFETY: a plain kill(2) on our own child, which is not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    if wait::poll(Duration::from_secs(5), || child.try_wait().ok().flatten()).is_some() {
        return;
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn wait_for(path: &Path) {
    fc::wait_for_path(path, Duration::from_secs(30));
}

fn start_http_peer(setup: &Setup, name: &'static str) -> HttpPeer {
    let dir = tempfile::Builder::new()
        .prefix("iiswsgi-bench-")
        .tempdir()
        .expect("tempdir");
    let sock = dir.path().join("peer.sock");
    let python = setup.venv.join("bin/python");
    let bench = bench_dir();
    let mut cmd = match name {
        "iiswsgi" => {
            let mut c = Command::new(fc::iiswsgi_bin());
            c.args([
                "run",
                "--app",
                "wsgi_hello:application",
                "--reload-pattern",
                "",
            ])
            .arg("--chdir")
            .arg(&bench)
            .arg("--venv")
            .arg(&setup.venv)
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .arg("--log")
            .arg(dir.path().join("iiswsgi.log"));
            c
        }
        "uWSGI (pyuwsgi)" => {
            let mut c = Command::new(setup.venv.join("bin/uwsgi"));
            c.arg("--fastcgi-socket")
                .arg(&sock)
                .args([
                    "--chmod-socket=666",
                    "--processes",
                    "1",
                    "--threads",
                    "1",
                    "--disable-logging",
                ])
                .arg("--wsgi-file")
                .arg(bench.join("wsgi_hello.py"));
            c
        }
        "flup 1.0.3" => {
            let mut c = Command::new(&python);
            c.arg("-c").arg(format!(
                "import sys, os; sys.path.insert(0, {bench:?}); import wsgi_hello\n\
                     from flup.server.fcgi_single import WSGIServer\n\
                     WSGIServer(wsgi_hello.application, bindAddress={sock:?}, umask=0).run()",
                bench = bench.display().to_string(),
                sock = sock.display().to_string()
            ));
            c
        }
        _ => {
            let mut c = Command::new(setup.venv.join("bin/granian"));
            c.args([
                "--interface",
                "wsgi",
                "--workers",
                "1",
                "--blocking-threads",
                "1",
                "--no-log",
            ])
            .arg("--working-dir")
            .arg(&bench)
            .arg("--uds")
            .arg(&sock)
            .args(["--uds-permissions", "438"])
            .arg("wsgi_hello:application");
            c
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn peer");
    wait_for(&sock);
    let port = free_port();
    let d = dir.path().display();
    let upstream = if name.starts_with("granian") {
        "location / { proxy_pass http://gw; proxy_http_version 1.1; \
         proxy_set_header Connection \"\"; proxy_buffering off; }"
            .to_owned()
    } else {
        "location / { fastcgi_param REQUEST_METHOD $request_method; fastcgi_param REQUEST_URI $request_uri;\n\
         fastcgi_param QUERY_STRING $query_string; fastcgi_param CONTENT_TYPE $content_type;\n\
         fastcgi_param CONTENT_LENGTH $content_length; fastcgi_param SCRIPT_NAME \"\";\n\
         fastcgi_param PATH_INFO $uri; fastcgi_param SERVER_PROTOCOL $server_protocol;\n\
         fastcgi_param REQUEST_SCHEME $scheme; fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n\
         fastcgi_param REMOTE_ADDR $remote_addr; fastcgi_param SERVER_NAME $server_name;\n\
         fastcgi_param SERVER_PORT $server_port; fastcgi_keep_conn on; fastcgi_buffering off;\n\
         fastcgi_pass gw; }"
            .to_owned()
    };
    let conf = format!(
        "daemon off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\nerror_log {d}/nginx.err;\n\
         events {{ worker_connections 256; }}\nhttp {{\naccess_log off;\nclient_body_temp_path {d}/tb;\n\
         fastcgi_temp_path {d}/tf;\nproxy_temp_path {d}/tp;\nuwsgi_temp_path {d}/tu;\nscgi_temp_path {d}/ts;\n\
         client_max_body_size 128m;\nupstream gw {{ server unix:{s}; keepalive 16; }}\n\
         server {{ listen 127.0.0.1:{port}; {upstream} }}\n}}\n",
        s = sock.display()
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("nginx.conf");
    let nginx = Command::new("/usr/sbin/nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("nginx.err"))
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    wait::until_true("nginx listens", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let peer = HttpPeer {
        name,
        child,
        nginx,
        port,
        _dir: dir,
    };
    let body = http_get(port, "/hello");
    assert!(
        body.ends_with(b"Hello, World!"),
        "{name} did not answer hello: {:?}",
        String::from_utf8_lossy(&body)
    );
    peer
}

/// One GET with `Connection: close`, the raw response.
fn http_get(port: u16, path: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn wrk(port: u16, seconds: u64) -> f64 {
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{seconds}s")])
        .arg(format!("http://127.0.0.1:{port}/hello"))
        .output()
        .expect("wrk is not installed (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        eprintln!("wrk reported errors:\n{text}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn nginx_mode(setup: &Setup, rounds: u64, seconds: u64) {
    println!(
        "\n== nginx mode: wrk -t1 -c16 -d{seconds}s -> nginx (keepalive upstream) -> one process, one thread"
    );
    let names = [
        "iiswsgi",
        "uWSGI (pyuwsgi)",
        "flup 1.0.3",
        "granian 2.8 (HTTP)",
    ];
    let mut rows: Vec<(String, Vec<f64>)> = names
        .iter()
        .map(|n| ((*n).to_owned(), Vec::new()))
        .collect();
    for _ in 0..rounds {
        for (i, name) in names.iter().enumerate() {
            let peer = start_http_peer(setup, name);
            wrk(peer.port, 1);
            rows[i].1.push(wrk(peer.port, seconds));
        }
    }
    print_table(
        "hello world behind nginx (req/s; 'vs first' = iiswsgi / peer)",
        "req/s",
        &rows,
        true,
    );

    println!(
        "\ngateway RSS while streaming 16 MiB (64 KiB chunks) to a client reading at ~32 MiB/s"
    );
    for name in ["iiswsgi", "uWSGI (pyuwsgi)", "flup 1.0.3"] {
        let peer = start_http_peer(setup, name);
        let pid = peer.child.id();
        let baseline = rss_kib(pid);
        let mut s = std::net::TcpStream::connect(("127.0.0.1", peer.port)).expect("connect");
        write!(
            s,
            "GET /stream HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut buf = vec![0u8; 256 * 1024];
        let (mut total, mut peak) = (0usize, baseline);
        let start = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
            peak = peak.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(8));
        }
        println!(
            "  {:<24} {:>6.1} MiB in {:>5.2} s; RSS {:>7} KiB -> peak {:>7} KiB (+{} KiB)",
            peer.name,
            total as f64 / (1 << 20) as f64,
            start.elapsed().as_secs_f64(),
            baseline,
            peak,
            peak.saturating_sub(baseline)
        );
    }
}

fn main() {
    let Some(venv) = std::env::var_os("BENCH_VENV").map(PathBuf::from) else {
        eprintln!("BENCH_VENV is not set: run bench/wsgi.sh (it builds the peers' venv)");
        std::process::exit(2);
    };
    let rounds = env_or("BENCH_ROUNDS", 5);
    let seconds = env_or("BENCH_SECONDS", 5);
    let setup = Setup::new(venv);
    println!(
        "iiswsgi WSGI bridge vs peers; {rounds} interleaved rounds; {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "iis" {
        iis_mode(&setup, rounds);
    }
    if only.is_empty() || only == "nginx" {
        nginx_mode(&setup, rounds, seconds);
    }
}
