//! Windows transports: IIS's stdin handle, a connected overlapped duplex named pipe
//! (named-pipe mode) or a listening socket (TCP mode), detected as `iis-runtime.md` §3.3 says.
//!
//! Compile-checked here; the full named-pipe transport (impersonation, a wire-capture test on
//! a real IIS) is issue #7. mio's `NamedPipe` does the overlapped I/O (never a NULL
//! `OVERLAPPED`, §3.1), so the server loop is the same as on Unix.

use std::os::windows::io::{FromRawHandle, FromRawSocket, IntoRawHandle};

use windows_sys::Win32::Foundation::{
    HANDLE, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, SetHandleInformation,
};
use windows_sys::Win32::Networking::WinSock::{WSADATA, WSAStartup};
use windows_sys::Win32::System::Console::{GetStdHandle, STD_INPUT_HANDLE, SetStdHandle};
use windows_sys::Win32::System::Pipes::GetNamedPipeInfo;

use super::{AllowList, Endpoint, Kind, Listener, Stream, Transport, TransportError};
use crate::iis::shutdown::PIPE_NAME_VAR;

pub(super) fn from_stdin() -> Result<Transport, TransportError> {
    // SAFETY: plain FFI call; the result is checked below.
    let stdin: HANDLE = unsafe { GetStdHandle(STD_INPUT_HANDLE) };
    if stdin.is_null() || stdin == INVALID_HANDLE_VALUE {
        return Err(TransportError::StdinUnusable {
            what: "missing (no standard input handle)".into(),
        });
    }
    // §3.3: `_FCGI_X_PIPE_` set, or GetNamedPipeInfo succeeds → named-pipe mode; otherwise a
    // listening socket. GetFileType is useless here: it says "pipe" for sockets too.
    let pipe_name = std::env::var(PIPE_NAME_VAR).ok();
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
    take_over_stdin(stdin)?;
    if is_pipe {
        // SAFETY: IIS created this handle as the server end of an overlapped duplex pipe and
        // handed it to us as stdin; after take_over_stdin nothing else in the process uses it.
        let pipe = unsafe { mio::windows::NamedPipe::from_raw_handle(stdin as _) };
        let name = pipe_name.unwrap_or_else(|| "(unnamed)".into());
        return Ok(Transport {
            kind: Kind::StdinConnection,
            description: format!("stdin: IIS named pipe {name} (one connection)"),
            endpoint: Some(Endpoint::Connection(Stream::Pipe(pipe))),
            created_socket: None,
        });
    }
    wsa_startup()?;
    // SAFETY: IIS TCP mode passes a listening socket as stdin; we own it from here on.
    let l = unsafe { std::net::TcpListener::from_raw_socket(stdin as u64) };
    l.set_nonblocking(true).map_err(TransportError::Stdin)?;
    let name = l
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    Ok(Transport {
        kind: Kind::StdinListener,
        description: format!("stdin: listening TCP socket {name} (IIS TCP mode, accept loop)"),
        endpoint: Some(Endpoint::Listener(Listener::Tcp(
            mio::net::TcpListener::from_std(l),
            AllowList::from_env()?,
        ))),
        created_socket: None,
    })
}

/// Makes the transport handle non-inheritable and points the standard input handle at `NUL`
/// (`iis-runtime.md` §12 item 2): children the app spawns get neither the pipe nor its bytes.
/// Clearing the inherit flag in place has the effect of "duplicate non-inheritable, close the
/// original" without a window where two handles exist.
fn take_over_stdin(stdin: HANDLE) -> Result<(), TransportError> {
    // SAFETY: `stdin` is a valid handle (checked by the caller).
    if unsafe { SetHandleInformation(stdin, HANDLE_FLAG_INHERIT, 0) } == 0 {
        return Err(TransportError::Stdin(std::io::Error::last_os_error()));
    }
    let nul = std::fs::File::open("NUL").map_err(TransportError::Stdin)?;
    // The NUL handle lives for the rest of the process as the standard input.
    let nul = nul.into_raw_handle();
    // SAFETY: `nul` is a valid, open file handle we deliberately leak.
    if unsafe { SetStdHandle(STD_INPUT_HANDLE, nul as HANDLE) } == 0 {
        return Err(TransportError::Stdin(std::io::Error::last_os_error()));
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
        return Err(TransportError::Stdin(std::io::Error::from_raw_os_error(r)));
    }
    Ok(())
}
