//! An IIS-emulating FastCGI client, written from `iis-runtime.md` (§3, §4, §6) and independent
//! of the crate's codec, because IIS itself cannot run here.
//!
//! It behaves as IIS's `FastCgiModule` does toward one process in named-pipe mode, with a unix
//! socketpair standing in for the already-connected pipe: the server end is the child's fd 0,
//! `_FCGI_X_PIPE_` and w3wp's variables are in its environment, `BEGIN_REQUEST` is its own
//! 16-byte write with `FCGI_KEEP_CONN` always set, request ids run 1..=255 and wrap to 1, the
//! params are the full ordered table of §6.1/§6.2 (HTTP_* headers in IIS's known-header order,
//! module variables, then the 41 fixed server variables with IIS's value formats and ANSI
//! path decoding), PARAMS + empty PARAMS + empty STDIN go in one write for a bodiless request,
//! a body goes as ~8 KiB STDIN records, exactly one request is in flight, and the connection
//! is never closed until shutdown. Replies are held to IIS's rules (§4.2): only types 3, 6, 7
//! (and 10 on id 0) are accepted, ids must echo with a zero high byte, padding is honoured,
//! END_REQUEST completes the response. Anything else fails the test with what IIS would do.
//!
//! The wire format, the param table and the CGI parser come from the shared kit
//! (`crates/fcgi-testkit`), re-exported here as [`wire`], [`IisApp`], [`IisRequest`]; this
//! module adds the process, the pipe and IIS's acceptance rules for one exchange.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use fcgi_testkit::cgi::Cgi;
pub use fcgi_testkit::iis::{FIXED_TABLE, IisApp, IisRequest, ansi_path};
pub use fcgi_testkit::wire;
use fcgi_testkit::wire::Padding;

use super::peers::Proc;

/// How long the client waits for the rest of a response before failing (IIS's
/// `activityTimeout` is 70 s; tests should never come close).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to exit after the pipe closes.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Content bytes per STDIN record ("about 8 KiB", §4.1).
pub const STDIN_RECORD: usize = 8192;
/// Content bytes per PARAMS record. IIS's 4 KiB pipe buffer makes larger param sets span
/// records, splitting pairs at arbitrary bytes.
pub const PARAMS_RECORD: usize = 4096;

// ---------------------------------------------------------------------------------------------
// The process and the pipe
// ---------------------------------------------------------------------------------------------

/// A response as IIS received it.
#[derive(Clone, Debug)]
pub struct IisResponse {
    /// The request id used.
    pub request_id: u8,
    /// The CGI response parsed from STDOUT.
    pub cgi: Cgi,
    /// `END_REQUEST.appStatus`.
    pub app_status: u32,
    /// `END_REQUEST.protocolStatus`.
    pub protocol_status: u8,
    /// Bytes on STDERR. Under IIS's default `stderrMode` any byte here turns the response
    /// into a 500 (§7.2).
    pub stderr: Vec<u8>,
    /// `(type, id, content length, padding)` of every record received, in order.
    pub records: Vec<(u8, u16, usize, u8)>,
}

impl IisResponse {
    /// The HTTP status the browser would see: the CGI status, or 500 if STDERR had bytes.
    pub fn browser_status(&self) -> u16 {
        if self.stderr.is_empty() {
            self.cgi.status
        } else {
            500
        }
    }
}

/// One FastCGI process driven the way IIS drives it.
pub struct IisProcess {
    proc: Proc,
    conn: Option<wire::RecordReader<UnixStream>>,
    next_id: u8,
    /// The IIS application this process serves.
    pub app: IisApp,
    /// Requests completed so far.
    pub served: usize,
}

impl IisProcess {
    /// Starts `cmd` as IIS would in named-pipe mode: the server end of a connected socketpair
    /// as fd 0, stdout/stderr captured (IIS gives invalid handles; here every byte is a
    /// failure), `_FCGI_X_PIPE_` and w3wp's variables in the environment.
    pub fn spawn(mut cmd: Command, app: IisApp, dir: &Path, logs: Vec<PathBuf>) -> IisProcess {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_read_timeout(Some(RESPONSE_TIMEOUT))
            .expect("timeout");
        ours.set_write_timeout(Some(RESPONSE_TIMEOUT))
            .expect("timeout");
        let pipe_name = format!(
            r"\\.\pipe\IISFCGI-{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() & 0xffff_ffff_ffff)
        );
        cmd.stdin(Stdio::from(OwnedFd::from(theirs)))
            .env("_FCGI_X_PIPE_", pipe_name)
            .env("APP_POOL_ID", "DefaultAppPool")
            .env(
                "APP_POOL_CONFIG",
                r"C:\inetpub\temp\apppools\DefaultAppPool\DefaultAppPool.config",
            )
            .env("PROCESSOR_ARCHITECTURE", "AMD64")
            .env_remove("_FCGI_SHUTDOWN_EVENT_");
        let proc = Proc::spawn("iis-fastcgi", dir, cmd, logs);
        // `Proc::spawn` consumed `cmd` and with it our copy of the child's end, so EOF on
        // `ours` can only mean the child closed it.
        IisProcess {
            proc,
            conn: Some(wire::RecordReader::new(ours)),
            next_id: 1,
            app,
            served: 0,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The id the next request will use.
    pub fn next_id(&self) -> u8 {
        self.next_id
    }

    /// Sends one request and reads its response, failing the test on anything IIS would
    /// reject.
    pub fn send(&mut self, request: &IisRequest) -> IisResponse {
        let id = self.next_id;
        self.next_id = if id == 255 { 1 } else { id + 1 };
        let params = request.params(&self.app);
        let context = format!(
            "request #{} (id {id}) {} {}",
            self.served + 1,
            request.method,
            request.raw_url
        );
        let result = self.exchange(u16::from(id), &params, &request.body);
        let response = result.unwrap_or_else(|e| {
            let exit = self.proc.wait_exit(Duration::from_millis(200));
            panic!(
                "{context}: {e}\nprocess exit: {exit:?}\n{}",
                self.proc.output()
            )
        });
        self.served += 1;
        response
    }

    fn exchange(
        &mut self,
        id: u16,
        params: &[(String, Vec<u8>)],
        body: &[u8],
    ) -> Result<IisResponse, String> {
        let reader = self.conn.as_mut().ok_or("the pipe is closed")?;
        let io = |what: &str, e: io::Error| format!("{what}: {e}");

        // BEGIN_REQUEST as its own 16-byte write, KEEP_CONN always.
        let begin = wire::begin_request(id, wire::RESPONDER, wire::KEEP_CONN);
        reader
            .get_mut()
            .write_all(&begin)
            .map_err(|e| io("write BEGIN_REQUEST", e))?;

        // PARAMS records, the empty PARAMS, and (bodiless) the empty STDIN in one write.
        let stream = wire::encode_pairs(params, wire::Lengths::Shortest);
        let mut out = Vec::with_capacity(stream.len() + 64);
        wire::push_stream(
            &mut out,
            wire::PARAMS,
            id,
            &stream,
            PARAMS_RECORD,
            Padding::None,
        );
        wire::push_record(&mut out, wire::PARAMS, id, &[], 0);
        if body.is_empty() {
            wire::push_record(&mut out, wire::STDIN, id, &[], 0);
        }
        reader
            .get_mut()
            .write_all(&out)
            .map_err(|e| io("write PARAMS", e))?;

        // The body as ~8 KiB STDIN records, one write each, as IIS reads it; then the end.
        if !body.is_empty() {
            for chunk in body.chunks(STDIN_RECORD) {
                let record = wire::record(wire::STDIN, id, chunk);
                reader
                    .get_mut()
                    .write_all(&record)
                    .map_err(|e| io("write STDIN", e))?;
            }
            let end = wire::record(wire::STDIN, id, &[]);
            reader
                .get_mut()
                .write_all(&end)
                .map_err(|e| io("write empty STDIN", e))?;
        }

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut records = Vec::new();
        loop {
            let record = match reader.next_record() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Err("the process closed the pipe before END_REQUEST (IIS: \
                                \"The FastCGI process exited unexpectedly\")"
                        .into());
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(format!("no END_REQUEST within {RESPONSE_TIMEOUT:?}"));
                }
                Err(e) => return Err(io("read", e)),
            };
            records.push((record.kind, record.id, record.content.len(), record.padding));
            let invalid = |why: &str| {
                format!(
                    "{why}: record type {} id {:#06x} ({} bytes) — IIS would answer 500 \
                     ERROR_INVALID_DATA (0x8007000D); records so far {records:?}",
                    record.kind,
                    record.id,
                    record.content.len()
                )
            };
            match record.kind {
                wire::GET_VALUES_RESULT if record.id == 0 => {}
                wire::STDOUT | wire::STDERR | wire::END_REQUEST => {
                    if record.id >> 8 != 0 {
                        return Err(invalid("request id high byte is not 0"));
                    }
                    if record.id != id {
                        return Err(invalid(&format!("request id is not the current id {id}")));
                    }
                }
                _ => return Err(invalid("record type IIS does not accept")),
            }
            match record.kind {
                wire::STDOUT => stdout.extend_from_slice(&record.content),
                wire::STDERR => stderr.extend_from_slice(&record.content),
                wire::END_REQUEST => {
                    let (app_status, protocol_status) = record
                        .end_request()
                        .ok_or_else(|| invalid("END_REQUEST shorter than 8 bytes"))?;
                    if reader.buffered() != 0 {
                        return Err(format!(
                            "{} bytes followed END_REQUEST while no request was in flight",
                            reader.buffered()
                        ));
                    }
                    let cgi = Cgi::parse(&stdout).map_err(|e| {
                        format!(
                            "unparsable STDOUT ({e}): {:?}",
                            String::from_utf8_lossy(&stdout[..stdout.len().min(2000)])
                        )
                    })?;
                    return Ok(IisResponse {
                        request_id: id as u8,
                        cgi,
                        app_status,
                        protocol_status,
                        stderr,
                        records,
                    });
                }
                _ => {}
            }
        }
    }

    /// IIS's graceful shutdown without a shutdown event (§5): close the pipe, then expect the
    /// process to exit 0 having written nothing to stdout or stderr.
    pub fn close_pipe_and_expect_clean_exit(mut self) -> ExitStatus {
        self.conn = None;
        let status = self.proc.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "process still running {EXIT_TIMEOUT:?} after the pipe closed\n{}",
                self.proc.output()
            )
        });
        assert_eq!(
            status.code(),
            Some(0),
            "exit status after EOF\n{}",
            self.proc.output()
        );
        let (stdout, stderr) = self.proc.std_streams();
        assert!(
            stdout.is_empty() && stderr.is_empty(),
            "IIS mode must write nothing to stdout/stderr; got stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
        status
    }
}
