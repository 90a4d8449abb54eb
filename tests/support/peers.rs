//! Real FastCGI peers (nginx, lighttpd, HAProxy, Apache) started as children of a test, on
//! loopback ports and unix sockets inside a per-test temporary directory, and stopped by it.
//!
//! Nothing here imitates a web server: every peer is the Debian binary with a config written
//! from `fastcgi-protocol.md` §11. What this module adds is the plumbing a test needs around
//! them: [`Sandbox`] (one directory per test, so tests run in parallel), [`Proc`] (a child in
//! its own process group, killed and reaped on drop even when the test panics), [`Backend`]
//! (the FastCGI application under test: `iiswsgi run` or the libfcgi C responder that validates
//! the harness), [`Peer`] (a running web server and its error log), [`HttpClient`] (a small
//! HTTP/1.1 client with keep-alive and chunked decoding) and [`WireTap`] (a unix-socket relay
//! that records the FastCGI records a peer really sends, without changing a byte).
//!
//! A missing peer binary is a failure that says "run .ci/setup", never a silent skip.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use fcgi_testkit::cgi::fnv1a64;

use super::iis_client::wire;
use super::wait;

/// How long a peer or backend may take to start listening.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a stopped process may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Read/write timeout of the HTTP client: a hung peer fails the test instead of hanging it.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Sandbox
// ---------------------------------------------------------------------------------------------

/// A per-test directory holding configs, sockets and logs. Mode 0755 so that Apache's
/// `www-data` children can reach a socket inside it. Removed on drop.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// Creates `/tmp/iiswsgi-<label>-XXXXXX` (short, so unix socket paths stay under 108 bytes).
    pub fn new(label: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("iiswsgi-{label}-"))
            .tempdir_in("/tmp")
            .expect("create the test's temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .expect("make the temp dir traversable");
        Sandbox { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

/// A loopback TCP port that was free a moment ago (bound to :0, then released). Callers that
/// lose the race see "Address already in use" and retry through [`start_with_port_retry`].
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Finds an installed program (PATH, then the sbin directories root's PATH may lack), or
/// fails the test with the fix.
pub fn require_program(name: &str) -> PathBuf {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path_var)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    for dir in candidates {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed: run .ci/setup (as root) to install the test peers");
}

// ---------------------------------------------------------------------------------------------
// Proc: a child process group that cannot leak
// ---------------------------------------------------------------------------------------------

/// A child started in its own process group, with stdout/stderr captured to files. Dropping
/// it sends SIGTERM to the leader (which stops its nginx workers or lighttpd backends), waits,
/// then SIGKILLs the whole group and reaps the leader: no daemon outlives its test.
pub struct Proc {
    name: String,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
    /// Extra log files to show when something fails (error logs named in configs).
    logs: Vec<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` with stdin closed (unless the caller set it) and output into
    /// `<dir>/<name>.stdout` / `.stderr`.
    pub fn spawn(name: &str, dir: &Path, mut cmd: Command, logs: Vec<PathBuf>) -> Proc {
        become_subreaper();
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let out = fs::File::create(&stdout).expect("create stdout file");
        let err = fs::File::create(&stderr).expect("create stderr file");
        cmd.stdout(out).stderr(err).process_group(0);
        // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
        // It kills the leader if the test thread that spawned it dies without unwinding.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            stdout,
            stderr,
            logs,
        }
    }

    /// [`Proc::spawn`] for a command whose stderr the caller has set (a terminal, say):
    /// stdout still goes to `<dir>/<name>.stdout`.
    #[cfg(feature = "python")]
    pub fn spawn_keeping_stderr(name: &str, dir: &Path, mut cmd: Command) -> Proc {
        become_subreaper();
        let stdout = dir.join(format!("{name}.stdout"));
        let out = fs::File::create(&stdout).expect("create stdout file");
        cmd.stdout(out).process_group(0);
        // SAFETY: as in `spawn`.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_owned(),
            child: Some(child),
            stdout,
            stderr: dir.join(format!("{name}.stderr-elsewhere")),
            logs: Vec::new(),
        }
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the process and its log files said so far, for assertion messages.
    pub fn output(&self) -> String {
        let mut text = String::new();
        for path in [&self.stdout, &self.stderr].into_iter().chain(&self.logs) {
            let content = fs::read(path).unwrap_or_default();
            if !content.is_empty() {
                let _ = write!(
                    text,
                    "\n----- {} -----\n{}",
                    path.display(),
                    String::from_utf8_lossy(&content)
                );
            }
        }
        if text.is_empty() {
            text.push_str(" (no output)");
        }
        format!("[{}]{}", self.name, text)
    }

    /// The bytes the process wrote to stdout and stderr.
    pub fn std_streams(&self) -> (Vec<u8>, Vec<u8>) {
        (
            fs::read(&self.stdout).unwrap_or_default(),
            fs::read(&self.stderr).unwrap_or_default(),
        )
    }

    /// `Some(status)` if the leader has exited. It is not reaped (`WNOWAIT`), so its pid, and
    /// with it the process group id, stays reserved until [`Proc::stop`].
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        // SAFETY: siginfo_t is plain data; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with WNOWAIT only inspects our own child; info is a valid out-pointer.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: the si_pid/si_status accessors are valid after a successful waitid(WEXITED).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if rc != 0 || pid == 0 {
            return None;
        }
        // Rebuild the wait(2) status word: exit code in bits 8..16, or the signal number.
        let raw = match info.si_code {
            libc::CLD_EXITED => (status & 0xff) << 8,
            libc::CLD_DUMPED => status | 0x80,
            _ => status,
        };
        Some(ExitStatus::from_raw(raw))
    }

    /// Polls `ready` until it holds; fails with the process output if the process exits or
    /// the startup timeout passes.
    pub fn wait_until(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let outcome = wait::poll(STARTUP_TIMEOUT, || {
            if ready() {
                Some(Ok(()))
            } else {
                self.exited().map(Err)
            }
        });
        match outcome {
            Some(Ok(())) => {}
            Some(Err(status)) => panic!(
                "{} exited ({status}) before {what}: {}",
                self.name,
                self.output()
            ),
            None => panic!(
                "{} not ready ({what}) after {STARTUP_TIMEOUT:?}: {}",
                self.name,
                self.output()
            ),
        }
    }

    /// Waits for the leader to exit by itself, up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait::poll(timeout, || self.exited())
    }

    /// Fails unless the process is still running.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.exited() {
            panic!("{} died ({status}): {}", self.name, self.output());
        }
    }

    /// Sends `signal` to the whole process group.
    pub fn signal_group(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: plain syscall; the group id is our child's pid, which stays reserved until
            // the child is reaped in `stop`.
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }

    /// Stops the process group: SIGTERM, a grace period, SIGKILL, reap. Returns the leader's
    /// exit status.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let leader = self.child.as_ref()?.id() as libc::pid_t;
        // The leader alone first, so that it stops and reaps its own children (nginx workers,
        // lighttpd's backends); orphans would stay zombies under a container's pid 1.
        // SAFETY: plain syscall on our own, not yet reaped, child.
        unsafe {
            libc::kill(leader, libc::SIGTERM);
        }
        let _ = self.wait_exit(STOP_TIMEOUT);
        // Kill stragglers (workers, spawned backends) while the zombie leader still holds the
        // group id, then reap.
        self.signal_group(libc::SIGKILL);
        let mut child = self.child.take()?;
        let status = child.wait().ok();
        reap_group(leader);
        status
    }
}

/// Makes this test process the reaper of orphaned descendants (once), so that processes a
/// peer spawned and left behind (lighttpd does not wait for its killed backends) become our
/// zombies, which [`reap_group`] collects, instead of lingering under the container's pid 1.
fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain prctl on this process.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        }
    });
}

/// Reaps the (already SIGKILLed) members of process group `pgid` that were reparented to us.
/// `waitpid(-pgid)` only touches that group, so no other test's child status is stolen.
fn reap_group(pgid: libc::pid_t) {
    // Gives up after 2 s: a member that outlives SIGKILL that long is not ours to wait for.
    let _ = wait::poll(Duration::from_secs(2), || {
        // SAFETY: plain syscall; a null status pointer is allowed.
        let rc = unsafe { libc::waitpid(-pgid, std::ptr::null_mut(), libc::WNOHANG) };
        // -1 is ECHILD: none left. A pid: one reaped, try the next at once.
        (rc == -1).then_some(())
    });
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Backends: the FastCGI application under test
// ---------------------------------------------------------------------------------------------

/// The FastCGI application behind a peer.
#[derive(Clone, Debug)]
pub enum Backend {
    /// `bench/c-responder/hello.c` built against libfcgi: proves the harness and the peer
    /// configs work with a known-good responder.
    CResponder,
    /// `iiswsgi run --diagnostic`, plus extra arguments (a mount point behind Apache).
    Iiswsgi(Vec<String>),
}

impl Backend {
    /// `iiswsgi run --diagnostic` with no extra arguments.
    pub fn iiswsgi() -> Backend {
        Backend::Iiswsgi(Vec::new())
    }

    /// A short name for process labels and messages.
    pub fn label(&self) -> &'static str {
        match self {
            Backend::CResponder => "c-responder",
            Backend::Iiswsgi(_) => "iiswsgi",
        }
    }

    /// The program and arguments that serve fd 0 (a listening socket from lighttpd, or the
    /// IIS-style connected stream). iiswsgi logs to `<dir>/iiswsgi.log`.
    pub fn argv(&self, dir: &Path) -> Vec<String> {
        match self {
            Backend::CResponder => vec![c_responder().display().to_string()],
            Backend::Iiswsgi(extra) => {
                let mut argv = vec![
                    iiswsgi_bin().display().to_string(),
                    "run".into(),
                    "--diagnostic".into(),
                    "--log".into(),
                    iiswsgi_log(dir).display().to_string(),
                ];
                argv.extend(extra.iter().cloned());
                argv
            }
        }
    }

    /// Log files worth showing when a test fails.
    pub fn logs(&self, dir: &Path) -> Vec<PathBuf> {
        match self {
            Backend::CResponder => vec![],
            Backend::Iiswsgi(_) => vec![iiswsgi_log(dir)],
        }
    }

    /// A command that listens on the unix socket `socket` itself.
    pub fn listen_command(&self, socket: &Path, dir: &Path) -> Command {
        let argv = self.argv(dir);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        match self {
            // Enough threads for every upstream connection a peer keeps open (see hello.c).
            Backend::CResponder => cmd.arg("--listen").arg(socket).args(["--threads", "32"]),
            Backend::Iiswsgi(_) => cmd
                .arg("--listen")
                .arg(format!("unix:{}", socket.display())),
        };
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Whether a POST to `/echo` comes back verbatim (the C responder); the iiswsgi
    /// diagnostic page shows the body's length and hash instead.
    pub fn echoes_body(&self) -> bool {
        matches!(self, Backend::CResponder)
    }
}

/// Where `iiswsgi run` logs in a test directory.
pub fn iiswsgi_log(dir: &Path) -> PathBuf {
    dir.join("iiswsgi.log")
}

/// The `iiswsgi` binary cargo built for these tests.
pub fn iiswsgi_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_iiswsgi"))
}

/// Builds `bench/c-responder/hello.c` once per test run and returns the binary.
pub fn c_responder() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/c-responder/hello.c");
        let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = out_dir.join("c-responder");
        let tmp = out_dir.join(format!("c-responder.{}", std::process::id()));
        if !Path::new("/usr/include/fcgiapp.h").exists() {
            panic!("libfcgi-dev is not installed: run .ci/setup (as root)");
        }
        let status = Command::new("cc")
            .args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(&tmp)
            .arg(&src)
            .arg("-lfcgi")
            .status()
            .expect("run cc (install build-essential / run .ci/setup)");
        assert!(status.success(), "cc failed to build {}", src.display());
        fs::rename(&tmp, &out).expect("move the C responder into place");
        out
    })
}

/// A backend listening on a unix socket (0666, so Apache's www-data may connect).
pub struct Gateway {
    /// The backend process.
    pub proc: Proc,
    /// Its socket.
    pub socket: PathBuf,
}

impl Gateway {
    /// Starts `backend` on `<sandbox>/<name>.sock` and waits until it accepts connections.
    pub fn start(sandbox: &Sandbox, backend: &Backend, name: &str) -> Gateway {
        let socket = sandbox.join(&format!("{name}.sock"));
        let cmd = backend.listen_command(&socket, sandbox.path());
        let mut proc = Proc::spawn(
            &format!("{name}-{}", backend.label()),
            sandbox.path(),
            cmd,
            backend.logs(sandbox.path()),
        );
        proc.wait_until("its unix socket accepts", || {
            UnixStream::connect(&socket).is_ok()
        });
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).expect("chmod socket");
        Gateway { proc, socket }
    }
}

// ---------------------------------------------------------------------------------------------
// Peers
// ---------------------------------------------------------------------------------------------

/// Which web server a [`Peer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// nginx `fastcgi_pass` (§11.3).
    Nginx,
    /// lighttpd `mod_fastcgi` with `bin-path` (§11.4).
    Lighttpd,
    /// HAProxy `fcgi-app` (§11.5).
    Haproxy,
    /// Apache `mod_proxy_fcgi` (§11.6).
    Apache,
}

/// A running web server in front of a FastCGI backend.
pub struct Peer {
    /// Which server.
    pub kind: PeerKind,
    /// Its process group.
    pub proc: Proc,
    /// The loopback HTTP port it listens on.
    pub port: u16,
    /// The file that holds its error log (HAProxy: its stderr).
    pub error_log: PathBuf,
}

/// Starts a peer whose config depends on its port, retrying with a new port if another test
/// grabbed it between [`free_port`] and the peer's bind.
pub fn start_with_port_retry(
    kind: PeerKind,
    mut start: impl FnMut(u16) -> (Proc, PathBuf),
) -> Peer {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let (mut proc, error_log) = start(port);
        let listening = wait::poll(STARTUP_TIMEOUT, || {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                Some(Ok(()))
            } else {
                proc.exited().map(Err)
            }
        });
        match listening {
            Some(Ok(())) => {
                return Peer {
                    kind,
                    proc,
                    port,
                    error_log,
                };
            }
            Some(Err(status)) => last = format!("exited ({status}): {}", proc.output()),
            None => panic!("{kind:?} did not listen on {port}: {}", proc.output()),
        }
        if !last.contains("in use") {
            break;
        }
    }
    panic!("{kind:?} failed to start: {last}");
}

impl Peer {
    /// nginx in front of the unix socket `upstream` (§11.3): `fastcgi_keep_conn on`, upstream
    /// `keepalive 8`, explicit params, workers as root.
    pub fn nginx(sandbox: &Sandbox, upstream: &Path) -> Peer {
        Peer::nginx_with(sandbox, upstream, "fastcgi_keep_conn on;")
    }

    /// [`Peer::nginx`] with `directives` in place of `fastcgi_keep_conn on;` in the location
    /// (`""`: nginx's default, no KEEP_CONN; `fastcgi_buffering off;` ...).
    pub fn nginx_with(sandbox: &Sandbox, upstream: &Path, directives: &str) -> Peer {
        let nginx = require_program("nginx");
        let dir = sandbox.path().display().to_string();
        let upstream = upstream.display().to_string();
        for sub in ["t_body", "t_fcgi", "t_proxy", "t_scgi", "t_uwsgi"] {
            fs::create_dir_all(sandbox.join(sub)).expect("nginx temp dir");
        }
        start_with_port_retry(PeerKind::Nginx, |port| {
            let conf = sandbox.write("nginx.conf", &nginx_conf(&dir, &upstream, port, directives));
            let err = sandbox.join("nginx.err");
            let mut cmd = Command::new(&nginx);
            cmd.arg("-p")
                .arg(&dir)
                .arg("-e")
                .arg(&err)
                .arg("-c")
                .arg(&conf);
            cmd.stdin(Stdio::null());
            (
                Proc::spawn("nginx", sandbox.path(), cmd, vec![err.clone()]),
                err,
            )
        })
    }

    /// lighttpd spawning `backend` itself through `bin-path`, with the listening socket on the
    /// backend's fd 0 and `max-procs` processes (§11.4). lighttpd never sets KEEP_CONN.
    pub fn lighttpd(sandbox: &Sandbox, backend: &Backend, max_procs: u32) -> Peer {
        let dir = sandbox.path().display().to_string();
        let backend_lines = format!(
            "\"socket\" => \"{dir}/lgw.sock\",\n    \"bin-path\" => \"{}\",\n    \
             \"max-procs\" => {max_procs},",
            backend.argv(sandbox.path()).join(" ")
        );
        Peer::lighttpd_with(sandbox, &backend_lines, backend.logs(sandbox.path()), "")
    }

    /// lighttpd in front of a unix socket somebody else listens on (no `bin-path`), with
    /// `server_lines` added to its configuration (`server.stream-response-body = 2` ...).
    pub fn lighttpd_to_socket(sandbox: &Sandbox, upstream: &Path, server_lines: &str) -> Peer {
        let backend_lines = format!("\"socket\" => \"{}\",", upstream.display());
        Peer::lighttpd_with(sandbox, &backend_lines, vec![], server_lines)
    }

    fn lighttpd_with(
        sandbox: &Sandbox,
        backend_lines: &str,
        extra_logs: Vec<PathBuf>,
        server_lines: &str,
    ) -> Peer {
        let lighttpd = require_program("lighttpd");
        let dir = sandbox.path().display().to_string();
        start_with_port_retry(PeerKind::Lighttpd, |port| {
            let err = sandbox.join("lighttpd.err");
            let conf = format!(
                "{}{server_lines}\n",
                lighttpd_conf(&dir, backend_lines, port)
            );
            let conf = sandbox.write("lighttpd.conf", &conf);
            let mut cmd = Command::new(&lighttpd);
            cmd.arg("-D").arg("-f").arg(&conf).stdin(Stdio::null());
            let mut logs = vec![err.clone()];
            logs.extend(extra_logs.iter().cloned());
            (Proc::spawn("lighttpd", sandbox.path(), cmd, logs), err)
        })
    }

    /// HAProxy 2.6 with an `fcgi-app` in front of the unix socket `upstream` (§11.5).
    pub fn haproxy(sandbox: &Sandbox, upstream: &Path, options: &HaproxyOptions) -> Peer {
        let haproxy = require_program("haproxy");
        let dir = sandbox.path().display().to_string();
        let upstream = upstream.display().to_string();
        start_with_port_retry(PeerKind::Haproxy, |port| {
            let conf = sandbox.write("haproxy.cfg", &haproxy_conf(&dir, &upstream, port, options));
            let mut cmd = Command::new(&haproxy);
            cmd.arg("-db").arg("-f").arg(&conf).stdin(Stdio::null());
            let proc = Proc::spawn("haproxy", sandbox.path(), cmd, vec![]);
            let err = proc.stderr.clone();
            (proc, err)
        })
    }

    /// Apache `mod_proxy_fcgi` (event MPM, `-X` single process) in front of the unix socket
    /// `upstream` with `enablereuse=on` (§11.6). Serves as www-data: Apache refuses root.
    pub fn apache(sandbox: &Sandbox, upstream: &Path) -> Peer {
        Peer::apache_with(sandbox, upstream, "")
    }

    /// [`Peer::apache`] with `directives` added to the server configuration.
    pub fn apache_with(sandbox: &Sandbox, upstream: &Path, directives: &str) -> Peer {
        let apache = require_program("apache2");
        let dir = sandbox.path().display().to_string();
        let upstream = upstream.display().to_string();
        start_with_port_retry(PeerKind::Apache, |port| {
            let err = sandbox.join("apache.err");
            let conf = format!("{}{directives}\n", apache_conf(&dir, &upstream, port));
            let conf = sandbox.write("apache.conf", &conf);
            let mut cmd = Command::new(&apache);
            cmd.arg("-X").arg("-f").arg(&conf).stdin(Stdio::null());
            (
                Proc::spawn("apache", sandbox.path(), cmd, vec![err.clone()]),
                err,
            )
        })
    }

    /// A fresh keep-alive HTTP connection to the peer.
    pub fn connect(&self) -> HttpClient {
        HttpClient::connect(self.port)
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.error_log).unwrap_or_default()).into_owned()
    }

    /// Lines of the error log that report an upstream (FastCGI) problem or an error-level
    /// event. Each peer words them differently; see the patterns below.
    pub fn upstream_errors(&self) -> Vec<String> {
        let log = self.error_log();
        log.lines()
            .filter(|line| is_error_line(self.kind, line))
            .map(str::to_owned)
            .collect()
    }

    /// Fails (showing the whole log) if [`Peer::upstream_errors`] found anything.
    pub fn assert_no_upstream_errors(&self) {
        let errors = self.upstream_errors();
        assert!(
            errors.is_empty(),
            "{:?} logged upstream errors: {errors:#?}\n{}",
            self.kind,
            self.proc.output()
        );
    }
}

fn is_error_line(kind: PeerKind, line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    match kind {
        // `[error]`, `[crit]`, `[alert]`, `[emerg]`, and "upstream sent ..." at any level.
        PeerKind::Nginx => {
            ["[error]", "[crit]", "[alert]", "[emerg]"]
                .iter()
                .any(|l| line.contains(l))
                || lower.contains("upstream sent")
                || lower.contains("upstream prematurely")
        }
        // lighttpd has no levels; its FastCGI module logs from gw_backend.c / mod_fastcgi.c.
        PeerKind::Lighttpd => {
            (line.contains("gw_backend.c") || line.contains("mod_fastcgi.c"))
                && !lower.contains("spawning")
                || lower.contains("unexpected")
                || lower.contains("died")
        }
        // HAProxy logs one `option httplog` line per request: status 5xx or a termination
        // state other than `----`, plus ALERT/WARNING lines from the fcgi mux.
        PeerKind::Haproxy => {
            line.contains("ALERT") || line.contains("[WARNING]") || haproxy_request_failed(line)
        }
        // `[proxy_fcgi:error]`, `[proxy:error]`, any `:crit]`/`:alert]`/`:emerg]`.
        PeerKind::Apache => [":error]", ":crit]", ":alert]", ":emerg]"]
            .iter()
            .any(|l| line.contains(l)),
    }
}

/// True for an `option httplog` line whose status is 5xx or whose termination state blames
/// the server or the proxy (`SH--` server closed, `SD--` server data error, ...).
fn haproxy_request_failed(line: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // client [date] frontend backend/server timers status bytes cookie cookie state ...
    let Some(pos) = fields.iter().position(|f| f.starts_with("be_gw/")) else {
        return false;
    };
    let status = fields.get(pos + 2).copied().unwrap_or("");
    let state = fields.get(pos + 6).copied().unwrap_or("");
    // The first letter of the termination state says who ended the session: C (client) is
    // the test's doing; S (server), P (proxy), I (internal), R (resource) are not.
    let by_server_or_proxy = matches!(state.chars().next(), Some('S' | 'P' | 'I' | 'R'));
    status.starts_with('5') || (state.len() == 4 && by_server_or_proxy)
}

fn nginx_conf(dir: &str, upstream: &str, port: u16, directives: &str) -> String {
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
user root;
pid {dir}/nginx.pid;
error_log {dir}/nginx.err info;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/t_body;
  fastcgi_temp_path {dir}/t_fcgi;
  proxy_temp_path {dir}/t_proxy;
  scgi_temp_path {dir}/t_scgi;
  uwsgi_temp_path {dir}/t_uwsgi;
  client_max_body_size 64m;
  upstream gw {{ server unix:{upstream}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      fastcgi_param REQUEST_METHOD    $request_method;
      fastcgi_param REQUEST_URI       $request_uri;
      fastcgi_param QUERY_STRING      $query_string;
      fastcgi_param CONTENT_TYPE      $content_type;
      fastcgi_param CONTENT_LENGTH    $content_length;
      fastcgi_param SCRIPT_NAME       "";
      fastcgi_param PATH_INFO         $uri;
      fastcgi_param SERVER_PROTOCOL   $server_protocol;
      fastcgi_param REQUEST_SCHEME    $scheme;
      fastcgi_param HTTPS             $https if_not_empty;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param REMOTE_ADDR       $remote_addr;
      fastcgi_param REMOTE_PORT       $remote_port;
      fastcgi_param SERVER_ADDR       $server_addr;
      fastcgi_param SERVER_PORT       $server_port;
      fastcgi_param SERVER_NAME       $server_name;
      {directives}
      fastcgi_pass gw;
    }}
  }}
}}
"#
    )
}

fn lighttpd_conf(dir: &str, backend_lines: &str, port: u16) -> String {
    format!(
        r#"server.modules       = ( "mod_fastcgi" )
server.bind          = "127.0.0.1"
server.port          = {port}
server.document-root = "{dir}"
server.errorlog      = "{dir}/lighttpd.err"
server.pid-file      = "{dir}/lighttpd.pid"
server.max-request-size = 65536
fastcgi.server = ( "/" => ((
    {backend_lines}
    "check-local"         => "disable",
    "fix-root-scriptname" => "enable"
)))
"#
    )
}

/// The `fcgi-app` options a HAProxy test wants; [`HaproxyOptions::default`] is §11.5.
#[derive(Clone, Debug)]
pub struct HaproxyOptions {
    /// `option keep-conn`.
    pub keep_conn: bool,
    /// `option get-values`.
    pub get_values: bool,
    /// `option mpxs-conns`.
    pub mpxs_conns: bool,
    /// `option max-reqs N`.
    pub max_reqs: u32,
    /// `server ... maxconn N`.
    pub maxconn: u32,
}

impl Default for HaproxyOptions {
    fn default() -> Self {
        HaproxyOptions {
            keep_conn: true,
            get_values: true,
            mpxs_conns: true,
            max_reqs: 16,
            maxconn: 16,
        }
    }
}

fn haproxy_conf(dir: &str, upstream: &str, port: u16, o: &HaproxyOptions) -> String {
    // `no option ...` is not accepted inside fcgi-app, and max-reqs without mpxs-conns is a
    // fatal config error: leave lines out instead.
    let mut options = String::new();
    for (on, line) in [
        (o.keep_conn, "option keep-conn".to_owned()),
        (o.get_values, "option get-values".to_owned()),
        (o.mpxs_conns, "option mpxs-conns".to_owned()),
        (o.mpxs_conns, format!("option max-reqs {}", o.max_reqs)),
    ] {
        if on {
            let _ = writeln!(options, "  {line}");
        }
    }
    format!(
        r#"global
  nbthread 1
  log stderr format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:{port}
  default_backend be_gw
backend be_gw
  use-fcgi-app gw
  http-reuse always
  server s1 {upstream} proto fcgi maxconn {maxconn}
fcgi-app gw
  docroot {dir}
  path-info ^()(/.*)$
{options}  log-stderr global
"#,
        maxconn = o.maxconn,
    )
}

fn apache_conf(dir: &str, upstream: &str, port: u16) -> String {
    format!(
        r#"ServerRoot {dir}
ServerName localhost
Listen 127.0.0.1:{port}
PidFile {dir}/apache.pid
ErrorLog {dir}/apache.err
LogLevel warn
Mutex file:{dir} default
DefaultRuntimeDir {dir}
User www-data
Group www-data
LoadModule mpm_event_module  /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module      /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
<VirtualHost 127.0.0.1:{port}>
  ProxyFCGIBackendType GENERIC
  ProxyPass "/" "unix:{upstream}|fcgi://localhost/" enablereuse=on
</VirtualHost>
"#
    )
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client over one keep-alive TCP connection: enough to drive a peer with
/// many sequential requests, bodies and chunked responses, and nothing more.
pub struct HttpClient {
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> HttpClient {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        stream
            .set_read_timeout(Some(HTTP_TIMEOUT))
            .expect("timeout");
        stream
            .set_write_timeout(Some(HTTP_TIMEOUT))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        HttpClient {
            reader: BufReader::new(stream),
        }
    }

    /// The underlying socket (to write a partial request and drop it, for aborts).
    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Sends one request (adding Host and Content-Length) and reads the response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if !body.is_empty() || method == "POST" || method == "PUT" {
            let _ = write!(head, "Content-Length: {}\r\n", body.len());
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        self.read_response(method == "HEAD")
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let n = self.reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read_response(&mut self, head_only: bool) -> io::Result<HttpResponse> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let status_line = self.read_line()?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line()?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = self.read_line()?;
                let size_hex = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    // Trailers, then the blank line.
                    while !self.read_line()?.is_empty() {}
                    break;
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                self.reader.read_exact(&mut response.body[start..])?;
                self.read_line()?;
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad content-length {len:?}")))?;
            response.body.resize(len, 0);
            self.reader.read_exact(&mut response.body)?;
        } else {
            self.reader.read_to_end(&mut response.body)?;
        }
        Ok(response)
    }
}

// ---------------------------------------------------------------------------------------------
// WireTap: see what a peer really sends
// ---------------------------------------------------------------------------------------------

/// Which way a tapped record travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Web server → application.
    ToApp,
    /// Application → web server.
    FromApp,
}

/// One FastCGI record seen on a tapped connection.
#[derive(Clone, Debug)]
pub struct TapRecord {
    /// Connection number (0, 1, ... in accept order).
    pub conn: usize,
    /// Direction.
    pub dir: Direction,
    /// Record type.
    pub kind: u8,
    /// Request id.
    pub id: u16,
    /// Content length.
    pub len: usize,
    /// The content of control records (BEGIN/ABORT/END_REQUEST, GET_VALUES[_RESULT],
    /// UNKNOWN_TYPE); empty for stream records.
    pub content: Vec<u8>,
}

/// A unix-socket relay between a peer and a backend that decodes (but never alters) the
/// records in both directions, so a test can assert what the peer sent: KEEP_CONN flags,
/// request ids, GET_VALUES, aborts, connection reuse.
pub struct WireTap {
    /// The socket the peer should connect to.
    pub socket: PathBuf,
    records: Arc<Mutex<Vec<TapRecord>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    conns: Arc<AtomicUsize>,
}

impl WireTap {
    /// Listens on `<sandbox>/<name>.sock` and relays every connection to `upstream`.
    pub fn start(sandbox: &Sandbox, name: &str, upstream: &Path) -> WireTap {
        let socket = sandbox.join(&format!("{name}.sock"));
        let listener = UnixListener::bind(&socket).expect("bind tap socket");
        fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).expect("chmod tap");
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(AtomicUsize::new(0));
        let upstream = upstream.to_owned();
        let acceptor = {
            let (records, stop, conns) = (records.clone(), stop.clone(), conns.clone());
            thread::spawn(move || {
                for incoming in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = incoming else { continue };
                    let Ok(server) = UnixStream::connect(&upstream) else {
                        continue;
                    };
                    let conn = conns.fetch_add(1, Ordering::SeqCst);
                    relay(conn, client, server, records.clone());
                }
            })
        };
        WireTap {
            socket,
            records,
            stop,
            acceptor: Some(acceptor),
            conns,
        }
    }

    /// Every record seen so far.
    pub fn records(&self) -> Vec<TapRecord> {
        self.records.lock().expect("tap lock").clone()
    }

    /// How many connections the peer opened.
    pub fn connections(&self) -> usize {
        self.conns.load(Ordering::SeqCst)
    }
}

impl Drop for WireTap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.socket);
        if let Some(handle) = self.acceptor.take() {
            let _ = handle.join();
        }
    }
}

fn relay(conn: usize, client: UnixStream, server: UnixStream, records: Arc<Mutex<Vec<TapRecord>>>) {
    let pipe =
        |from: UnixStream, to: UnixStream, dir: Direction, records: Arc<Mutex<Vec<TapRecord>>>| {
            thread::spawn(move || {
                let mut from = from;
                let mut to = to;
                let mut pending = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    while let Some((record, used)) = wire::Record::parse(&pending) {
                        let keep = matches!(record.kind, 1 | 2 | 3 | 9 | 10 | 11);
                        records.lock().expect("tap lock").push(TapRecord {
                            conn,
                            dir,
                            kind: record.kind,
                            id: record.id,
                            len: record.content.len(),
                            content: if keep { record.content } else { Vec::new() },
                        });
                        pending.drain(..used);
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Write);
                let _ = from.shutdown(Shutdown::Read);
            });
        };
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    pipe(client, server, Direction::ToApp, records.clone());
    pipe(server2, client2, Direction::FromApp, records);
}

// ---------------------------------------------------------------------------------------------
// Reading what a backend shows
// ---------------------------------------------------------------------------------------------

/// The value the `iiswsgi run --diagnostic` page shows for the environ key `name` (the kit's
/// [`fcgi_testkit::cgi::diag_value`] on a page read as lossy UTF-8).
pub fn diagnostic_value(page: &[u8], name: &str) -> Option<String> {
    fcgi_testkit::cgi::diag_value(&String::from_utf8_lossy(page), name)
}

/// The value the C responder shows for `name` (its `NAME=VALUE` lines).
pub fn c_responder_value(page: &[u8], name: &str) -> Option<String> {
    let page = String::from_utf8_lossy(page);
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}

/// What `backend` shows for `name` on its environ page.
pub fn shown_by(backend: &Backend, page: &[u8], name: &str) -> Option<String> {
    match backend {
        Backend::CResponder => c_responder_value(page, name),
        Backend::Iiswsgi(_) => diagnostic_value(page, name),
    }
}
