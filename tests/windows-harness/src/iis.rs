//! What w3wp.exe does before the first request, with raw Win32 calls (`iis-runtime.md` §1–§3):
//!
//! - [`Pipe::create`]: a duplex, overlapped, byte-mode named pipe `\\.\pipe\IISFCGI-<uuid>`,
//!   one instance, 4 KiB buffers; the server end inheritable (it becomes the child's stdin),
//!   the client end opened overlapped and kept by us;
//! - [`tcp_listener`]: TCP mode's listening socket on 127.0.0.1, made inheritable;
//! - [`Event::create`]: the unnamed, manual-reset, initially unsignalled, inheritable event
//!   whose decimal handle value goes into `_FCGI_SHUTDOWN_EVENT_`;
//! - [`Process::spawn`]: `CreateProcessW` with stdin = the transport, stdout and stderr
//!   invalid handles, no console, handle inheritance on, and the given environment.
//!
//! Our own I/O on the client end is overlapped too (an event per operation, with a timeout), so
//! a hung server fails the run instead of hanging it.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::AsRawSocket;
use std::path::Path;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_PIPE_CONNECTED, GENERIC_READ,
    GENERIC_WRITE, GetLastError, HANDLE, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE,
    SetHandleInformation, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, OPEN_EXISTING,
    PIPE_ACCESS_DUPLEX, ReadFile, WriteFile,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, PIPE_READMODE_BYTE, PIPE_TYPE_BYTE, PIPE_WAIT,
    PeekNamedPipe,
};
use windows_sys::Win32::System::Threading::{
    CREATE_UNICODE_ENVIRONMENT, CreateEventW, CreateProcessW, DETACHED_PROCESS, GetExitCodeProcess,
    PROCESS_INFORMATION, STARTF_USESTDHANDLES, STARTUPINFOW, SetEvent, TerminateProcess,
    WaitForSingleObject,
};

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}

fn last_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// An owned kernel handle, closed on drop.
#[derive(Debug)]
pub struct Handle(pub HANDLE);

impl Handle {
    pub fn raw(&self) -> HANDLE {
        self.0
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() && self.0 != INVALID_HANDLE_VALUE {
            // SAFETY: we own the handle and close it once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

fn inheritable() -> SECURITY_ATTRIBUTES {
    SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: std::ptr::null_mut(),
        bInheritHandle: 1,
    }
}

/// A name like IIS's: `\\.\pipe\IISFCGI-5d5d5f02-02a2-4db0-95ba-9568539bce5a`.
pub fn pipe_name(seed: u64) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let a = nanos ^ (u64::from(std::process::id()) << 32) ^ seed.wrapping_mul(0x9e37_79b9);
    let b = a.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ seed;
    format!(
        r"\\.\pipe\IISFCGI-{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (a >> 32) as u32,
        (a >> 16) as u16,
        a as u16 & 0xfff,
        (b >> 48) as u16 & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// The pipe as IIS sets it up: our client end (overlapped) and the server end for the child.
pub struct Pipe {
    /// The server end, inheritable; passed as the child's stdin, then closed here.
    pub server: Option<Handle>,
    /// Our end.
    pub client: OverlappedPipe,
}

impl Pipe {
    pub fn create(name: &str, timeout: Duration) -> io::Result<Pipe> {
        let wname = wide(OsStr::new(name));
        let sa = inheritable();
        // SAFETY: valid NUL-terminated name and security attributes; the result is checked.
        let server = unsafe {
            CreateNamedPipeW(
                wname.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                1,
                4096,
                4096,
                0,
                &sa,
            )
        };
        if server == INVALID_HANDLE_VALUE {
            return Err(last_error("CreateNamedPipeW"));
        }
        let server = Handle(server);
        // SAFETY: valid name; no security attributes, so the client end is not inheritable.
        let client = unsafe {
            CreateFileW(
                wname.as_ptr(),
                GENERIC_READ | GENERIC_WRITE,
                0,
                std::ptr::null(),
                OPEN_EXISTING,
                FILE_FLAG_OVERLAPPED,
                std::ptr::null_mut(),
            )
        };
        if client == INVALID_HANDLE_VALUE {
            return Err(last_error("CreateFileW (client end)"));
        }
        let client = OverlappedPipe::new(Handle(client), timeout)?;
        // IIS connects the client end before starting the process: the server end is already
        // connected, so ConnectNamedPipe only reports ERROR_PIPE_CONNECTED (§3.1).
        let event = Event::create(false)?;
        // SAFETY: an all-zero OVERLAPPED with our event is valid; it lives until the call
        // completes (synchronously here, or we wait below).
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        ov.hEvent = event.raw();
        // SAFETY: `server` is a pipe handle, `ov` outlives the operation.
        let ok = unsafe { ConnectNamedPipe(server.raw(), &mut ov) };
        // SAFETY: plain FFI call.
        let err = unsafe { GetLastError() };
        if ok == 0 && err != ERROR_PIPE_CONNECTED {
            if err == ERROR_IO_PENDING {
                // SAFETY: cancel and reap our own operation before `ov` goes away.
                unsafe {
                    CancelIoEx(server.raw(), &ov);
                    let mut n = 0;
                    GetOverlappedResult(server.raw(), &ov, &mut n, 1);
                }
            }
            return Err(io::Error::other(format!(
                "ConnectNamedPipe on the server end after the client connected: expected \
                 ERROR_PIPE_CONNECTED (535), got ok={ok} error={err}"
            )));
        }
        Ok(Pipe {
            server: Some(server),
            client,
        })
    }
}

/// Our end of the pipe: every read and write is overlapped, with a timeout.
pub struct OverlappedPipe {
    handle: Option<Handle>,
    event: Event,
    timeout_ms: u32,
}

impl OverlappedPipe {
    fn new(handle: Handle, timeout: Duration) -> io::Result<Self> {
        Ok(OverlappedPipe {
            handle: Some(handle),
            event: Event::create(false)?,
            timeout_ms: u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1),
        })
    }

    /// Closes our end: the server reads EOF (`ERROR_BROKEN_PIPE`).
    pub fn close(&mut self) {
        self.handle = None;
    }

    /// How many bytes the server has written that wait to be read at our end.
    pub fn available(&self) -> io::Result<u32> {
        let Some(h) = self.handle.as_ref().map(Handle::raw) else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "closed"));
        };
        let mut avail = 0u32;
        // SAFETY: our pipe handle; no buffer is passed, so only the count is written.
        let ok = unsafe {
            PeekNamedPipe(
                h,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut avail,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(last_error("PeekNamedPipe"));
        }
        Ok(avail)
    }

    fn io(&mut self, read: bool, ptr: *mut u8, len: usize) -> io::Result<usize> {
        let Some(h) = self.handle.as_ref().map(Handle::raw) else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "closed"));
        };
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        // SAFETY: zeroed OVERLAPPED is valid; it outlives the operation because every path
        // below waits for the operation to finish (or cancels and reaps it) before returning.
        let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
        ov.hEvent = self.event.raw();
        // SAFETY: `ptr` is valid for `len` bytes for the duration (caller's buffer).
        let ok = unsafe {
            if read {
                ReadFile(h, ptr, len, std::ptr::null_mut(), &mut ov)
            } else {
                WriteFile(h, ptr, len, std::ptr::null_mut(), &mut ov)
            }
        };
        if ok == 0 {
            // SAFETY: plain FFI call.
            let err = unsafe { GetLastError() };
            if read && err == ERROR_BROKEN_PIPE {
                return Ok(0);
            }
            if err != ERROR_IO_PENDING {
                return Err(io::Error::from_raw_os_error(err as i32));
            }
            // SAFETY: our event handle.
            let w = unsafe { WaitForSingleObject(self.event.raw(), self.timeout_ms) };
            if w == WAIT_TIMEOUT {
                // SAFETY: cancel and reap our own operation before `ov` goes away.
                unsafe {
                    CancelIoEx(h, &ov);
                    let mut n = 0;
                    GetOverlappedResult(h, &ov, &mut n, 1);
                }
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no {} completed within {} ms",
                        if read { "read" } else { "write" },
                        self.timeout_ms
                    ),
                ));
            }
        }
        let mut n = 0u32;
        // SAFETY: the operation was started with `ov`; bWait=TRUE reaps it.
        if unsafe { GetOverlappedResult(h, &ov, &mut n, 1) } == 0 {
            // SAFETY: plain FFI call.
            let err = unsafe { GetLastError() };
            if read && err == ERROR_BROKEN_PIPE {
                return Ok(0);
            }
            return Err(io::Error::from_raw_os_error(err as i32));
        }
        Ok(n as usize)
    }
}

impl Read for OverlappedPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io(true, buf.as_mut_ptr(), buf.len())
    }
}

impl Write for OverlappedPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.io(false, buf.as_ptr().cast_mut(), buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A manual-reset event, initially unsignalled.
#[derive(Debug)]
pub struct Event(Handle);

impl Event {
    /// `inherit`: whether child processes inherit it (the shutdown event) or not (ours).
    pub fn create(inherit: bool) -> io::Result<Event> {
        let sa = inheritable();
        let psa = if inherit {
            &sa as *const _
        } else {
            std::ptr::null()
        };
        // SAFETY: valid (or null) attributes, unnamed.
        let h = unsafe { CreateEventW(psa, 1, 0, std::ptr::null()) };
        if h.is_null() {
            return Err(last_error("CreateEventW"));
        }
        Ok(Event(Handle(h)))
    }

    pub fn raw(&self) -> HANDLE {
        self.0.raw()
    }

    pub fn set(&self) -> io::Result<()> {
        // SAFETY: our event handle.
        if unsafe { SetEvent(self.raw()) } == 0 {
            return Err(last_error("SetEvent"));
        }
        Ok(())
    }
}

/// TCP mode: a listening socket on 127.0.0.1, inheritable so it can be the child's stdin.
pub fn tcp_listener() -> io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    // std creates sockets non-inheritable; IIS's listening socket is inherited by the child.
    // SAFETY: our socket handle; only its inherit flag changes.
    if unsafe { SetHandleInformation(l.as_raw_socket() as HANDLE, HANDLE_FLAG_INHERIT, 1) } == 0 {
        return Err(last_error("SetHandleInformation(listening socket)"));
    }
    Ok(l)
}

/// The FastCGI process, as w3wp starts it.
pub struct Process {
    process: Handle,
    pub pid: u32,
}

/// How a wait for the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(u32),
    StillRunning,
}

impl Process {
    /// Starts `exe args…` with `stdin` as its standard input, stdout and stderr set to
    /// `INVALID_HANDLE_VALUE`, no console, inheritable handles inherited, and `env` as its whole
    /// environment.
    pub fn spawn(
        exe: &Path,
        args: &[String],
        stdin: HANDLE,
        env: &[(String, String)],
    ) -> io::Result<Process> {
        let mut line = quote(&exe.display().to_string());
        for a in args {
            line.push(' ');
            line.push_str(&quote(a));
        }
        let mut cmd = wide(OsStr::new(&line));
        let mut sorted: Vec<&(String, String)> = env.iter().collect();
        sorted.sort_by_key(|(k, _)| k.to_uppercase());
        let mut block: Vec<u16> = Vec::new();
        for (k, v) in sorted {
            block.extend(OsStr::new(&format!("{k}={v}")).encode_wide());
            block.push(0);
        }
        block.push(0);
        // SAFETY: zeroed STARTUPINFOW/PROCESS_INFORMATION are valid initial values.
        let mut si: STARTUPINFOW = unsafe { std::mem::zeroed() };
        si.cb = std::mem::size_of::<STARTUPINFOW>() as u32;
        si.dwFlags = STARTF_USESTDHANDLES;
        si.hStdInput = stdin;
        si.hStdOutput = INVALID_HANDLE_VALUE;
        si.hStdError = INVALID_HANDLE_VALUE;
        // SAFETY: as above.
        let mut pi: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
        let exe_w = wide(exe.as_os_str());
        // SAFETY: every pointer is valid for the call; `cmd` is mutable as CreateProcessW
        // requires; the environment block is double-NUL terminated UTF-16.
        let ok = unsafe {
            CreateProcessW(
                exe_w.as_ptr(),
                cmd.as_mut_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                1,
                CREATE_UNICODE_ENVIRONMENT | DETACHED_PROCESS,
                block.as_ptr().cast(),
                std::ptr::null(),
                &si,
                &mut pi,
            )
        };
        if ok == 0 {
            return Err(last_error("CreateProcessW"));
        }
        drop(Handle(pi.hThread));
        Ok(Process {
            process: Handle(pi.hProcess),
            pid: pi.dwProcessId,
        })
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait(&self, limit: Duration) -> io::Result<Exit> {
        let ms = u32::try_from(limit.as_millis()).unwrap_or(u32::MAX - 1);
        // SAFETY: our process handle.
        match unsafe { WaitForSingleObject(self.process.raw(), ms) } {
            WAIT_OBJECT_0 => {
                let mut code = 0u32;
                // SAFETY: our process handle, valid out-pointer.
                if unsafe { GetExitCodeProcess(self.process.raw(), &mut code) } == 0 {
                    return Err(last_error("GetExitCodeProcess"));
                }
                Ok(Exit::Code(code))
            }
            WAIT_TIMEOUT => Ok(Exit::StillRunning),
            other => Err(io::Error::other(format!(
                "WaitForSingleObject(process) returned {other}"
            ))),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A scenario that failed must not leave a server behind.
        if let Ok(Exit::StillRunning) = self.wait(Duration::ZERO) {
            // SAFETY: our process handle.
            unsafe { TerminateProcess(self.process.raw(), 1) };
        }
    }
}

/// Quotes a command-line argument for the MSVC/Rust argument parser (no embedded quotes in
/// anything the harness passes; backslashes before the closing quote are doubled).
fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
        return arg.to_owned();
    }
    let trailing = arg.len() - arg.trim_end_matches('\\').len();
    format!("\"{}{}\"", arg.replace('"', "\\\""), "\\".repeat(trailing))
}
