//! Windows transports: what IIS hands the process as stdin (`iis-runtime.md` §3, §12 items
//! 1–3 and 28).
//!
//! | stdin | Detected by | Served as |
//! |---|---|---|
//! | the server end of IIS's connected overlapped duplex pipe | `_FCGI_X_PIPE_` set, else `GetNamedPipeInfo` succeeds | [`IisPipe`]: one connection until EOF |
//! | a listening socket (IIS TCP mode) | anything else (a non-socket fails the first socket call) | `accept()` once, then that one connection |
//!
//! `GetFileType` is never used for detection: it says "pipe" for sockets too. The pipe is never
//! opened by the name in `_FCGI_X_PIPE_` (the single instance is already connected); the name
//! is only shown in the log and on the diagnostic page.
//!
//! Before anything else runs, the process takes exclusive ownership of the transport: the pipe
//! handle is duplicated non-inheritable and the original closed (`DUPLICATE_CLOSE_SOURCE`, one
//! call, so no moment exists where a child could inherit it); a socket is marked
//! non-inheritable in place (sockets must not go through `DuplicateHandle`). The standard
//! input handle then points at `NUL`, and so do standard output and error when they are
//! missing or invalid (as under IIS) or when IIS started the process: C extensions and child
//! processes get valid handles that lead nowhere.
//!
//! The pipe's overlapped I/O is mio's `NamedPipe` (every read and write passes an
//! `OVERLAPPED`, completions arrive through the I/O completion port the event loop polls), so
//! the server loop is the same as on Unix. One difference matters at exit: mio's `write`
//! returns once the bytes are handed to an overlapped `WriteFile`, which stays pending while
//! IIS has not read them (the pipe buffers 4 KiB). Dropping an [`IisPipe`] therefore waits
//! (at most [`HANDOFF_LIMIT`]) in `FlushFileBuffers` until IIS has read everything, so the
//! last response is never cut short when the process exits.

use std::io::{self, IoSlice, Read, Write};
use std::os::windows::io::{AsRawHandle, AsRawSocket, FromRawHandle, FromRawSocket, IntoRawHandle};
use std::time::Duration;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use windows_sys::Win32::Foundation::{
    DUPLICATE_CLOSE_SOURCE, DUPLICATE_SAME_ACCESS, DuplicateHandle, HANDLE, HANDLE_FLAG_INHERIT,
    INVALID_HANDLE_VALUE, SetHandleInformation,
};
use windows_sys::Win32::Networking::WinSock::{WSADATA, WSAENOTSOCK, WSAStartup};
use windows_sys::Win32::Storage::FileSystem::FlushFileBuffers;
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, SetStdHandle,
};
use windows_sys::Win32::System::Pipes::GetNamedPipeInfo;
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use super::{Endpoint, Kind, Stream, Transport, TransportError};

/// Longest wait, when the pipe is dropped, for IIS to read the bytes still in flight.
pub const HANDOFF_LIMIT: Duration = Duration::from_secs(5);

/// IIS's named pipe on stdin: mio's overlapped `NamedPipe`, plus the hand-off wait on drop.
#[derive(Debug)]
pub struct IisPipe {
    pipe: mio::windows::NamedPipe,
}

impl IisPipe {
    /// Wraps a handle to the server end of a connected overlapped pipe.
    ///
    /// # Safety
    /// `handle` must be an open pipe handle created with `FILE_FLAG_OVERLAPPED`, owned by the
    /// caller and used by nothing else afterwards.
    unsafe fn from_raw(handle: HANDLE) -> Self {
        // SAFETY: the caller's contract.
        let pipe = unsafe { mio::windows::NamedPipe::from_raw_handle(handle as _) };
        IisPipe { pipe }
    }
}

impl Read for IisPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // mio turns ERROR_BROKEN_PIPE (IIS closed its end) into Ok(0): EOF, i.e. shutdown.
        self.pipe.read(buf)
    }
}

impl Write for IisPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.pipe.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.pipe.flush()
    }
}

impl Source for IisPipe {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.pipe.register(r, t, i)
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        self.pipe.reregister(r, t, i)
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        self.pipe.deregister(r)
    }
}

impl Drop for IisPipe {
    fn drop(&mut self) {
        // Wait until IIS has read what the last overlapped write still holds: the process may
        // be about to exit, which would cancel that write and cut the response short. When IIS
        // has closed its end, FlushFileBuffers fails at once. A thread bounds the wait.
        let handle = self.pipe.as_raw_handle() as usize;
        let (done, wait) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("iiswsgi-pipe-handoff".into())
            .spawn(move || {
                // SAFETY: the handle stays open until this drop returns, and past that only if
                // the wait timed out, in which case closing it cancels this call.
                unsafe { FlushFileBuffers(handle as HANDLE) };
                let _ = done.send(());
            });
        if spawned.is_ok() && wait.recv_timeout(HANDOFF_LIMIT).is_err() {
            log::warn!(
                "IIS did not read the rest of the last response within {} s; closing the pipe",
                HANDOFF_LIMIT.as_secs()
            );
        }
    }
}

pub(super) fn from_stdin() -> Result<Transport, TransportError> {
    // SAFETY: plain FFI call; the result is checked below.
    let stdin: HANDLE = unsafe { GetStdHandle(STD_INPUT_HANDLE) };
    if stdin.is_null() || stdin == INVALID_HANDLE_VALUE {
        return Err(TransportError::StdinUnusable {
            what: "missing (no standard input handle)".into(),
        });
    }
    // §3.3: `_FCGI_X_PIPE_` set, or GetNamedPipeInfo succeeds → named-pipe mode.
    let pipe_name = crate::runtime::iis_env::get().pipe_name.clone();
    // SAFETY: null out-pointers are allowed; the handle is only queried.
    let is_pipe = pipe_name.is_some()
        || unsafe {
            GetNamedPipeInfo(
                stdin,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        } != 0;
    if is_pipe {
        let owned = own_pipe(stdin)?;
        let streams = null_standard_streams()?;
        // SAFETY: IIS created this handle as the server end of an overlapped duplex pipe;
        // `owned` is our private duplicate, used by nothing else.
        let pipe = unsafe { IisPipe::from_raw(owned) };
        let name = pipe_name.unwrap_or_else(|| "(unnamed: _FCGI_X_PIPE_ not set)".into());
        return Ok(Transport {
            kind: Kind::StdinConnection,
            description: format!("stdin: IIS named pipe {name} (one connection; {streams})"),
            endpoint: Some(Endpoint::Connection(Stream::Pipe(pipe))),
            created_socket: None,
        });
    }
    // §3.3 step 3: anything else is treated as IIS TCP mode's listening socket.
    wsa_startup()?;
    // SAFETY: if `stdin` is a socket it is ours from here on; if it is not, the first socket
    // call below fails with WSAENOTSOCK and the value is forgotten, never closed.
    let listener = unsafe { std::net::TcpListener::from_raw_socket(stdin as u64) };
    // Blocking mode for the single accept. Also the socket test: unlike getsockopt or
    // getpeername, ioctlsocket works on an inherited socket under Wine too, whose ws2_32 only
    // recognises sockets created in the calling process for those calls.
    if let Err(e) = listener.set_nonblocking(false) {
        let what = if e.raw_os_error() == Some(WSAENOTSOCK) {
            "neither a named pipe (GetNamedPipeInfo failed) nor a socket (WSAENOTSOCK)".to_owned()
        } else {
            format!("not a usable socket ({e})")
        };
        std::mem::forget(listener);
        return Err(TransportError::StdinUnusable { what });
    }
    // Sockets are made non-inheritable in place: DuplicateHandle is not valid for them.
    // SAFETY: `stdin` is a socket handle (ioctlsocket accepted it); only a flag changes.
    if unsafe { SetHandleInformation(stdin, HANDLE_FLAG_INHERIT, 0) } == 0 {
        return Err(TransportError::Stdin(io::Error::last_os_error()));
    }
    let streams = null_standard_streams()?;
    let stream = accept_once(listener)?;
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    stream
        .set_nonblocking(true)
        .map_err(TransportError::Stdin)?;
    Ok(Transport {
        kind: Kind::StdinConnection,
        description: format!("stdin: IIS TCP mode, accepted {peer} (one connection; {streams})"),
        endpoint: Some(Endpoint::Connection(Stream::Tcp(
            mio::net::TcpStream::from_std(stream),
        ))),
        created_socket: None,
    })
}

/// IIS TCP mode: IIS connects once after starting the process and keeps that connection for
/// the process's life (`iis-runtime.md` §3.2), so accept one connection and close the
/// listener. The accept blocks; IIS connects right after the start.
fn accept_once(listener: std::net::TcpListener) -> Result<std::net::TcpStream, TransportError> {
    let local = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    log::debug!("IIS TCP mode: waiting for IIS to connect to {local}");
    let (stream, _) = loop {
        match listener.accept() {
            Ok(pair) => break pair,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(TransportError::Stdin(e)),
        }
    };
    // SAFETY: our accepted socket; only a flag changes (std already clears it; be explicit).
    unsafe { SetHandleInformation(stream.as_raw_socket() as HANDLE, HANDLE_FLAG_INHERIT, 0) };
    Ok(stream)
}

/// Duplicates the pipe handle non-inheritable, closing the original in the same call
/// (`iis-runtime.md` §12 item 2): children the app spawns can neither inherit the pipe nor
/// keep it open after we exit.
fn own_pipe(stdin: HANDLE) -> Result<HANDLE, TransportError> {
    let mut owned: HANDLE = std::ptr::null_mut();
    // SAFETY: `stdin` is a valid handle of this process; `owned` receives the duplicate.
    let ok = unsafe {
        let me = GetCurrentProcess();
        DuplicateHandle(
            me,
            stdin,
            me,
            &mut owned,
            0,
            0,
            DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE,
        )
    };
    if ok == 0 {
        return Err(TransportError::Stdin(io::Error::last_os_error()));
    }
    Ok(owned)
}

/// Whether IIS started this process (its environment says so).
fn started_by_iis() -> bool {
    crate::runtime::iis_env::get().started_by_iis()
}

/// Points standard input at `NUL`, and standard output and error too when they are missing or
/// invalid or IIS started the process (`iis-runtime.md` §12 items 2 and 28). Returns what it
/// did, for the transport description.
fn null_standard_streams() -> Result<String, TransportError> {
    let iis = started_by_iis();
    let mut nulled = vec!["stdin"];
    set_nul(STD_INPUT_HANDLE)?;
    for (which, name) in [(STD_OUTPUT_HANDLE, "stdout"), (STD_ERROR_HANDLE, "stderr")] {
        // SAFETY: plain FFI call.
        let h = unsafe { GetStdHandle(which) };
        if iis || h.is_null() || h == INVALID_HANDLE_VALUE {
            set_nul(which)?;
            nulled.push(name);
        }
    }
    Ok(format!("{} now NUL", nulled.join(", ")))
}

fn set_nul(which: STD_HANDLE) -> Result<(), TransportError> {
    // Opened for reading and writing, not inheritable (std's default); inherited by children
    // only through their STARTUPINFO standard handles.
    let nul = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("NUL")
        .map_err(TransportError::Stdin)?;
    // The handle stays open for the rest of the process as a standard handle.
    let nul = nul.into_raw_handle();
    // SAFETY: `nul` is a valid, open file handle we deliberately leak.
    if unsafe { SetStdHandle(which, nul as HANDLE) } == 0 {
        return Err(TransportError::Stdin(io::Error::last_os_error()));
    }
    Ok(())
}

/// Winsock must be started before a socket we did not create through std is used.
fn wsa_startup() -> Result<(), TransportError> {
    // SAFETY: WSADATA is plain old data; WSAStartup fills it in.
    let mut data: WSADATA = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a WSADATA; version 2.2.
    let r = unsafe { WSAStartup(0x0202, &mut data) };
    if r != 0 {
        return Err(TransportError::Stdin(io::Error::from_raw_os_error(r)));
    }
    Ok(())
}
