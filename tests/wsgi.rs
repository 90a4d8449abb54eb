//! `iiswsgi run --app`: the embedded-Python WSGI bridge end to end, through the built binary.
//!
//! Three ways in, all mounting the app under the sub-application path `/app`:
//! - [`IisClient`]: the IIS-emulating client of `support::iis_client` (IIS's exact param table
//!   and order, BEGIN_REQUEST as its own write, 8 KiB STDIN records, IIS's acceptance rules);
//! - [`IisGateway`]: the same transport driven through `support::fcgi_client`, for what the IIS
//!   client cannot express: raw param overrides (`CONTENT_LENGTH: abc`, `HTTPS: on`), a body
//!   without `CONTENT_LENGTH`, a truncated STDIN, `ABORT_REQUEST`, non-UTF-8 header bytes;
//! - [`NginxGateway`]: a real nginx (`fastcgi_keep_conn on`, unix socket) in front of
//!   `iiswsgi run --listen`, spoken to over raw HTTP/1.1 so header bytes and chunked framing
//!   are visible.
//!
//! Modules: `conformance` (the PEP 3333 checklist of wsgi-embedding.md §7, apps in
//! `tests/conformance/apps/`), `lifecycle` (venv selection, a refused venv, import failure,
//! reload, SystemExit, atexit), `reload` (`--reload` under wrk behind nginx), `threads` (`--threads N`),
//! `frameworks` (Flask and Django from PyPI in a cached venv), `cut` (a response failing mid-way
//! reaches the client broken through real web servers), `matrix` (the one binary on every
//! CPython >= 3.9 pyenv has).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::fcgi_client::{self as fc, Server};
use crate::support::iis_client::{IisApp, IisProcess, IisRequest};
use crate::support::peers::Proc;
use crate::support::wait;

mod conformance;
mod cut;
mod frameworks;
mod habits;
mod lifecycle;
mod matrix;
mod reload;
mod threads;

/// `tests/conformance/apps`.
fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/apps")
}

/// The interpreter this build embeds (for making venvs of the right minor).
fn build_python() -> &'static str {
    env!("IISWSGI_PY_EXECUTABLE")
}

fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("iiswsgi-wsgi-{tag}-"))
        .tempdir()
        .expect("tempdir")
}

/// One request, as a client of either gateway describes it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query under the mount point, e.g. `/env/a%20b?x=1`.
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// IIS only: extra or replacement raw params (`CONTENT_LENGTH = abc`).
    pub params: Vec<(String, Vec<u8>)>,
    /// IIS only: omit `CONTENT_LENGTH` (a chunked upload IIS would pass through).
    pub no_length: bool,
    /// IIS only: STDIN record size.
    pub stdin_chunk: usize,
}

impl Req {
    pub fn get(uri: &str) -> Req {
        Req {
            method: "GET".into(),
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
            params: Vec::new(),
            no_length: false,
            stdin_chunk: 8192,
        }
    }

    pub fn post(uri: &str, body: &[u8]) -> Req {
        Req {
            method: "POST".into(),
            body: body.to_vec(),
            ..Req::get(uri)
        }
    }

    pub fn method(mut self, m: &str) -> Req {
        self.method = m.into();
        self
    }

    pub fn header(mut self, name: &str, value: &[u8]) -> Req {
        self.headers.push((name.into(), value.to_vec()));
        self
    }
}

/// A response as the client saw it.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The response ended properly: IIS `END_REQUEST` with app status 0; HTTP a complete
    /// Content-Length or chunked body.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_bytes(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }
}

/// Splits `Name: value` lines (bytes, latin-1 values allowed) up to the blank line.
fn parse_head(head: &[u8]) -> Vec<(String, Vec<u8>)> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let colon = l.iter().position(|&b| b == b':')?;
            let name = String::from_utf8_lossy(&l[..colon]).into_owned();
            let value = l[colon + 1..]
                .strip_prefix(b" ")
                .unwrap_or(&l[colon + 1..])
                .to_vec();
            Some((name, value))
        })
        .collect()
}

fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&raw[..at], &raw[at + 4..]))
}

/// What both gateways offer a test.
pub trait Gateway {
    /// Sends one request and reads the whole response.
    fn send(&mut self, req: &Req) -> Resp;
    /// Sends a request, reads about `read` body bytes, then walks away (the client aborts).
    fn abandon(&mut self, req: &Req, read: usize);
    /// The gateway's log so far.
    fn log(&self) -> String;
    /// The gateway process id.
    fn pid(&self) -> i32;
    /// `"iis"` or `"nginx"`, for messages.
    fn name(&self) -> &'static str;
}

/// The gateway's resident set size in KiB (Linux `/proc`).
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Waits until the log contains `needle`; returns the log.
pub fn wait_for_log(gw: &dyn Gateway, needle: &str, limit: Duration) -> String {
    wait::poll(limit, || Some(gw.log()).filter(|log| log.contains(needle)))
        .unwrap_or_else(|| panic!("`{needle}` not logged within {limit:?}:\n{}", gw.log()))
}

/// `iiswsgi run --app APP` as IIS runs it: a socketpair on fd 0, `APP_POOL_ID` set, the app at
/// `/LM/W3SVC/1/ROOT/app`, keep-conn requests one at a time with IIS's param table.
pub struct IisGateway {
    pub server: Option<Server>,
    pipe: UnixStream,
    next: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl IisGateway {
    pub fn start(app: &str, chdir: &Path, extra: &[&str]) -> IisGateway {
        let chdir_arg = chdir.display().to_string();
        let mut args = vec!["--app", app, "--chdir", &chdir_arg];
        args.extend_from_slice(extra);
        IisGateway::start_with(&args)
    }

    /// `iiswsgi run ARGS --log <temp>` under IIS emulation.
    pub fn start_with(args: &[&str]) -> IisGateway {
        let dir = temp_dir("iis");
        let log = dir.path().join("iiswsgi.log");
        let log_arg = log.display().to_string();
        let mut args = args.to_vec();
        args.extend_from_slice(&["--log", &log_arg]);
        let (server, pipe) = Server::spawn_iis(
            &args,
            &[
                ("APP_POOL_ID", "WsgiTestPool"),
                ("_FCGI_X_PIPE_", r"\\.\pipe\IISFCGI-wsgi"),
            ],
        );
        pipe.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        IisGateway {
            server: Some(server),
            pipe,
            next: 0,
            log,
            _dir: dir,
        }
    }

    fn next_id(&mut self) -> u16 {
        self.next = self.next % 255 + 1;
        self.next
    }

    fn params(req: &Req) -> Vec<(String, Vec<u8>)> {
        let uri = format!("/app{}", req.uri);
        let mut params = fc::iis_params(&req.method, "/LM/W3SVC/1/ROOT/app", &uri, req.body.len());
        if req.no_length {
            params.retain(|(n, _)| n != "CONTENT_LENGTH" && n != "HTTP_CONTENT_LENGTH");
        }
        // A header the test sets replaces the one in IIS's table (Host, User-Agent...).
        let table: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
        for (name, _) in &req.headers {
            let cgi = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
            if table.contains(&cgi) {
                params.retain(|(n, _)| n != &cgi);
            }
        }
        for (name, value) in &req.headers {
            let cgi = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
            if cgi == "HTTP_CONTENT_TYPE" {
                // IIS fills CONTENT_TYPE from the request header itself.
                params.retain(|(n, _)| n != "CONTENT_TYPE" && n != "HTTP_CONTENT_TYPE");
                params.push(("CONTENT_TYPE".into(), value.clone()));
            }
            params.push((cgi, value.clone()));
        }
        for (name, value) in &req.params {
            params.retain(|(n, _)| n != name);
            params.push((name.clone(), value.clone()));
        }
        params
    }

    /// Sends the request bytes; returns the id used.
    fn write_request(&mut self, req: &Req, body: &[u8], end_stdin: bool) -> u16 {
        let id = self.next_id();
        let params = Self::params(req);
        self.pipe.write_all(&fc::begin(id, true)).expect("begin");
        let mut bytes = fc::stream(fc::PARAMS, id, &fc::pairs(&params, false), 4096);
        let mut stdin = fc::stream(fc::STDIN, id, body, req.stdin_chunk);
        if !end_stdin {
            // Drop the terminating empty STDIN record.
            stdin.truncate(stdin.len() - 8);
        }
        bytes.extend(stdin);
        self.pipe.write_all(&bytes).expect("params and stdin");
        id
    }

    /// Sends a request whose STDIN ends (empty record) after `sent` of the body bytes.
    pub fn send_truncated(&mut self, req: &Req, sent: usize) -> Resp {
        let id = self.write_request(req, &req.body[..sent], true);
        self.read(id)
    }

    /// Sends `ABORT_REQUEST` for a request in flight after reading some of its output.
    pub fn abort_after(&mut self, req: &Req, read: usize) -> Resp {
        let id = self.write_request(req, &req.body, true);
        let mut got = 0;
        while got < read {
            match fc::read_record(&mut self.pipe).expect("record") {
                Some(rec) if rec.kind == fc::STDOUT => got += rec.content.len(),
                Some(rec) if rec.kind == fc::END_REQUEST => panic!("ended before the abort"),
                _ => {}
            }
        }
        self.pipe
            .write_all(&fc::record(fc::ABORT_REQUEST, id, &[], 0))
            .expect("abort");
        self.read(id)
    }

    fn read(&mut self, id: u16) -> Resp {
        let reply = fc::read_reply(&mut self.pipe, id).expect("FastCGI reply");
        assert!(
            reply.stderr.is_empty(),
            "FCGI_STDERR must stay empty under IIS"
        );
        // iis-runtime §12 item 5: every request, aborted ones included, ends with an empty
        // STDOUT and END_REQUEST{REQUEST_COMPLETE}.
        assert_eq!(reply.protocol_status, 0, "protocol status REQUEST_COMPLETE");
        let n = reply.records.len();
        assert!(
            n >= 2 && reply.records[n - 2] == (fc::STDOUT, 0),
            "an empty STDOUT precedes END_REQUEST: {:?}",
            reply.records
        );
        let (head, body) = split_head(&reply.stdout).unwrap_or((&reply.stdout, &[]));
        let mut headers = parse_head(head);
        let status = headers
            .iter()
            .position(|(n, _)| n == "Status")
            .map(|i| headers.remove(i).1)
            .and_then(|v| {
                String::from_utf8_lossy(&v)
                    .get(..3)
                    .and_then(|c| c.parse().ok())
            })
            .unwrap_or(0);
        Resp {
            status,
            headers,
            body: body.to_vec(),
            complete: reply.app_status == 0,
        }
    }

    /// Closes the pipe (IIS recycling the process) and waits for a clean exit.
    pub fn close(mut self) -> (std::process::ExitStatus, Vec<u8>, Vec<u8>) {
        let _ = self.pipe.shutdown(std::net::Shutdown::Both);
        self.server
            .take()
            .expect("server")
            .wait(Duration::from_secs(20))
    }
}

impl Gateway for IisGateway {
    fn send(&mut self, req: &Req) -> Resp {
        let id = self.write_request(req, &req.body, true);
        self.read(id)
    }

    fn abandon(&mut self, req: &Req, read: usize) {
        let resp = self.abort_after(req, read);
        assert!(
            resp.body.len() < 200 * 1024,
            "the abort stopped the response"
        );
        assert!(
            resp.complete,
            "an aborted request ends with END_REQUEST app status 0"
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.server.as_ref().map(|s| s.pid()).unwrap_or(0)
    }

    fn name(&self) -> &'static str {
        "iis"
    }
}

/// A private nginx proxying `/app/` (and `/stream-app/`, request and response buffering off) to
/// `iiswsgi run --listen unix:...`.
pub struct NginxGateway {
    pub server: Option<Server>,
    /// Stopped by its own Drop: SIGTERM to the master (which stops its worker), then SIGKILL
    /// to the group, then reap. A bare `Child::kill` left nginx's worker orphaned.
    _nginx: Proc,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl NginxGateway {
    pub fn start(app: &str, chdir: &Path, extra: &[&str]) -> NginxGateway {
        let dir = temp_dir("nginx");
        let socket = dir.path().join("gw.sock");
        let log = dir.path().join("iiswsgi.log");
        let (listen, log_arg, chdir_arg) = (
            format!("unix:{}", socket.display()),
            log.display().to_string(),
            chdir.display().to_string(),
        );
        let mut args = vec![
            "--app", app, "--chdir", &chdir_arg, "--listen", &listen, "--log", &log_arg,
        ];
        args.extend_from_slice(extra);
        let server = Server::spawn_listen(&args);
        fc::wait_for_path(&socket, Duration::from_secs(20));
        let port = free_port();
        let d = dir.path().display();
        let params = "fastcgi_param REQUEST_METHOD $request_method;\n\
             fastcgi_param REQUEST_URI $request_uri;\n\
             fastcgi_param QUERY_STRING $query_string;\n\
             fastcgi_param CONTENT_TYPE $content_type;\n\
             fastcgi_param CONTENT_LENGTH $content_length;\n\
             fastcgi_param SCRIPT_NAME $fastcgi_script_name;\n\
             fastcgi_param PATH_INFO $fastcgi_path_info;\n\
             fastcgi_param SERVER_PROTOCOL $server_protocol;\n\
             fastcgi_param REQUEST_SCHEME $scheme;\n\
             fastcgi_param GATEWAY_INTERFACE CGI/1.1;\n\
             fastcgi_param REMOTE_ADDR $remote_addr;\n\
             fastcgi_param SERVER_NAME $server_name;\n\
             fastcgi_param SERVER_PORT $server_port;\n\
             fastcgi_keep_conn on;\nfastcgi_pass gw;\n";
        let conf = format!(
            "daemon off;\nworker_processes 1;\nuser root;\npid {d}/nginx.pid;\n\
             error_log {d}/nginx.err info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             access_log off;\nclient_body_temp_path {d}/t_body;\nfastcgi_temp_path {d}/t_fcgi;\n\
             proxy_temp_path {d}/t_proxy;\nuwsgi_temp_path {d}/t_uwsgi;\nscgi_temp_path {d}/t_scgi;\n\
             client_max_body_size 128m;\n\
             upstream gw {{ server unix:{s}; keepalive 4; }}\n\
             server {{\nlisten 127.0.0.1:{port};\nserver_name localhost;\n\
             location /app/ {{\nfastcgi_split_path_info ^(/app)(/.*)$;\n{params}}}\n\
             location /stream-app/ {{\nfastcgi_split_path_info ^(/stream-app)(/.*)$;\n\
             fastcgi_request_buffering off;\nfastcgi_buffering off;\n{params}}}\n}}\n}}\n",
            s = socket.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("nginx is not installed: run .ci/setup");
        let mut cmd = Command::new(nginx);
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("nginx.err"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null());
        let mut nginx = Proc::spawn("nginx", dir.path(), cmd, vec![dir.path().join("nginx.err")]);
        nginx.wait_until("nginx listens", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        NginxGateway {
            server: Some(server),
            _nginx: nginx,
            port,
            log,
            _dir: dir,
        }
    }

    /// The request as HTTP/1.1 bytes under `prefix`.
    fn request_bytes(&self, req: &Req, prefix: &str, chunked: bool) -> Vec<u8> {
        let mut out = format!(
            "{} {prefix}{} HTTP/1.1\r\nConnection: close\r\n",
            req.method, req.uri
        )
        .into_bytes();
        if !req
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        for (name, value) in &req.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for piece in req.body.chunks(7777) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            if !req.body.is_empty() || req.method == "POST" {
                out.extend_from_slice(format!("Content-Length: {}\r\n", req.body.len()).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&req.body);
        }
        out
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to nginx");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        s
    }

    /// Sends through `/stream-app/` (no buffering) with a chunked request body.
    pub fn send_chunked(&mut self, req: &Req) -> Resp {
        let bytes = self.request_bytes(req, "/stream-app", true);
        self.exchange(&bytes, req.method == "HEAD")
    }

    /// Sends `req` through `/stream-app/` with its full Content-Length but only `sent` body
    /// bytes, waits until the log says `started` (the app is running), then closes: a client
    /// that dies mid-upload. (The server starts a request once its body is complete or 1 MiB
    /// of it is buffered, so `sent` must exceed 1 MiB for the app to be running before the
    /// client dies.)
    pub fn die_mid_upload(&mut self, req: &Req, sent: usize, started: &str) {
        let mut bytes = self.request_bytes(req, "/stream-app", false);
        let head_len = bytes.len() - req.body.len();
        bytes.truncate(head_len + sent);
        let mut s = self.connect();
        s.write_all(&bytes).expect("partial upload");
        wait_for_log(self, started, Duration::from_secs(15));
        drop(s);
    }

    /// Streams a response through `/stream-app/`, reading slowly; returns the body length and
    /// the largest gateway RSS (KiB) seen while reading.
    pub fn stream_slowly(&mut self, uri: &str, pause_every: usize) -> (usize, u64) {
        let bytes = self.request_bytes(&Req::get(uri), "/stream-app", false);
        let mut s = self.connect();
        s.write_all(&bytes).expect("request");
        let pid = self.pid();
        let mut buf = vec![0u8; 64 * 1024];
        let (mut total, mut peak, mut since) = (0usize, 0u64, 0usize);
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            total += n;
            since += n;
            if since >= pause_every {
                since = 0;
                peak = peak.max(rss_kib(pid));
                // Reading slowly is the point: the gateway must not buffer what is unread.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        (total, peak)
    }

    fn exchange(&self, bytes: &[u8], head: bool) -> Resp {
        let mut s = self.connect();
        s.write_all(bytes).expect("request");
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        parse_http(&raw, head)
    }
}

/// Parses an HTTP/1.1 response read to EOF, decoding chunked bodies.
fn parse_http(raw: &[u8], head_request: bool) -> Resp {
    let Some((head, rest)) = split_head(raw) else {
        return Resp::default();
    };
    let status_line_end = head.iter().position(|&b| b == b'\n').unwrap_or(head.len());
    let status = String::from_utf8_lossy(&head[..status_line_end])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = parse_head(&head[status_line_end..]);
    let mut resp = Resp {
        status,
        headers,
        ..Resp::default()
    };
    if head_request || status == 204 || status == 304 {
        resp.complete = rest.is_empty();
        return resp;
    }
    if resp
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let mut at = 0;
        loop {
            let Some(nl) = rest[at..].windows(2).position(|w| w == b"\r\n") else {
                return resp;
            };
            let size =
                usize::from_str_radix(String::from_utf8_lossy(&rest[at..at + nl]).trim(), 16);
            let Ok(size) = size else {
                return resp;
            };
            at += nl + 2;
            if size == 0 {
                resp.complete = true;
                return resp;
            }
            if at + size > rest.len() {
                resp.body.extend_from_slice(&rest[at..]);
                return resp;
            }
            resp.body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
    }
    resp.body = rest.to_vec();
    resp.complete = match resp
        .header("Content-Length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) => n == resp.body.len(),
        None => true,
    };
    resp
}

impl Gateway for NginxGateway {
    fn send(&mut self, req: &Req) -> Resp {
        let bytes = self.request_bytes(req, "/app", false);
        self.exchange(&bytes, req.method == "HEAD")
    }

    fn abandon(&mut self, req: &Req, read: usize) {
        let bytes = self.request_bytes(req, "/stream-app", false);
        let mut s = self.connect();
        s.write_all(&bytes).expect("request");
        let mut got = 0;
        let mut buf = [0u8; 4096];
        while got < read {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        drop(s);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.server.as_ref().map(|s| s.pid()).unwrap_or(0)
    }

    fn name(&self) -> &'static str {
        "nginx"
    }
}

impl NginxGateway {
    /// Stops the gateway with SIGTERM, waits for its exit and returns the final log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let server = self.server.take().expect("server");
        server.signal(rustix::process::Signal::TERM);
        let (status, _, _) = server.wait(Duration::from_secs(20));
        (status, self.log())
    }
}

/// The peers branch's IIS-emulating client, behind [`Gateway`]. Requests it cannot express
/// (raw param overrides, non-UTF-8 header bytes) are a test bug and panic.
pub struct IisClient {
    process: Option<IisProcess>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl IisClient {
    pub fn start(app: &str, chdir: &Path, extra: &[&str]) -> IisClient {
        let dir = temp_dir("iis-client");
        let log = dir.path().join("iiswsgi.log");
        let mut cmd = Command::new(fc::iiswsgi_bin());
        cmd.args(["run", "--app", app])
            .arg("--chdir")
            .arg(chdir)
            .arg("--log")
            .arg(&log)
            .args(extra);
        let process = IisProcess::spawn(cmd, IisApp::sub("/app"), dir.path(), vec![log.clone()]);
        IisClient {
            process: Some(process),
            log,
            _dir: dir,
        }
    }

    fn request(req: &Req) -> IisRequest {
        assert!(
            req.params.is_empty() && !req.no_length,
            "not expressible through the IIS client"
        );
        let url = format!("/app{}", req.uri);
        let header = |(n, v): &(String, Vec<u8>)| {
            let v = String::from_utf8(v.clone()).expect("the IIS client takes UTF-8 header values");
            (n.clone(), v)
        };
        let content_type = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|h| header(h).1);
        let mut r = if req.method == "POST" {
            IisRequest::post(
                &url,
                content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
                req.body.clone(),
            )
        } else {
            let mut r = IisRequest::get(&url);
            r.method = req.method.clone();
            r
        };
        for h in req
            .headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"))
        {
            let (name, value) = header(h);
            r.headers.retain(|(n, _)| {
                !n.eq_ignore_ascii_case(&name)
                    || name.eq_ignore_ascii_case("cookie")
                    || name.starts_with("X-")
            });
            r = r.header(&name, &value);
        }
        r
    }

    /// Closes the pipe; the client asserts a clean exit with nothing on stdout/stderr.
    pub fn close(mut self) {
        if let Some(p) = self.process.take() {
            p.close_pipe_and_expect_clean_exit();
        }
    }
}

impl Gateway for IisClient {
    fn send(&mut self, req: &Req) -> Resp {
        let request = Self::request(req);
        let r = self.process.as_mut().expect("running").send(&request);
        Resp {
            status: r.cgi.status,
            headers: r
                .cgi
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
                .collect(),
            body: r.cgi.body.clone(),
            complete: r.app_status == 0,
        }
    }

    fn abandon(&mut self, _req: &Req, _read: usize) {
        panic!("the IIS client has no abort; use IisGateway::abort_after");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.process.as_ref().map_or(0, |p| p.pid() as i32)
    }

    fn name(&self) -> &'static str {
        "iis-client"
    }
}
