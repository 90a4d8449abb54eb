//! Unix transports: classifying fd 0, taking it over, binding a unix socket.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::net::{AddressFamily, SocketType, sockopt};

use super::{AllowList, Endpoint, Kind, ListenAddr, Listener, Stream, Transport, TransportError};

/// What a file descriptor holds, as far as FastCGI cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FdKind {
    /// A connected stream socket.
    Connected(Family),
    /// A listening stream socket.
    Listening(Family),
    /// Anything else, with a description for the error message.
    Other(&'static str),
}

/// The address family of a socket on fd 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Unix,
    Inet,
}

/// Classifies `fd`: connected stream socket, listening stream socket, or something else.
///
/// `getpeername` succeeding means connected; failing with `ENOTCONN` on a stream socket means
/// listening (confirmed with `SO_ACCEPTCONN` where the platform implements it; Apple does not).
pub(crate) fn classify(fd: BorrowedFd<'_>) -> FdKind {
    match sockopt::socket_type(fd) {
        Ok(SocketType::STREAM) => {}
        Ok(_) => return FdKind::Other("a socket that is not a stream (datagram?)"),
        Err(rustix::io::Errno::NOTSOCK) => return FdKind::Other(not_socket_kind(fd)),
        Err(rustix::io::Errno::BADF) => return FdKind::Other("closed"),
        Err(_) => return FdKind::Other("unreadable"),
    }
    let family = match rustix::net::getsockname(fd).map(|a| a.address_family()) {
        Ok(AddressFamily::UNIX) => Family::Unix,
        Ok(AddressFamily::INET) | Ok(AddressFamily::INET6) => Family::Inet,
        _ => return FdKind::Other("a socket of an unsupported address family"),
    };
    match rustix::net::getpeername(fd) {
        Ok(_) => FdKind::Connected(family),
        Err(rustix::io::Errno::NOTCONN) => {
            #[cfg(not(target_vendor = "apple"))]
            if !sockopt::socket_acceptconn(fd).unwrap_or(true) {
                return FdKind::Other("an unconnected socket that is not listening");
            }
            FdKind::Listening(family)
        }
        Err(_) => FdKind::Other("a socket in an unusable state"),
    }
}

fn not_socket_kind(fd: BorrowedFd<'_>) -> &'static str {
    if rustix::termios::isatty(fd) {
        return "a terminal";
    }
    match rustix::fs::fstat(fd) {
        Ok(st) => match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::Fifo => "a pipe (FastCGI needs a socket)",
            rustix::fs::FileType::CharacterDevice => "a character device (e.g. /dev/null)",
            rustix::fs::FileType::RegularFile => "a regular file",
            _ => "not a socket",
        },
        Err(_) => "not a socket",
    }
}

/// Detects what fd 0 holds, takes it over (new close-on-exec fd, `/dev/null` on fd 0) and
/// wraps it for the server.
pub(super) fn from_stdin() -> Result<Transport, TransportError> {
    let stdin = io::stdin();
    let (listening, family) = match classify(stdin.as_fd()) {
        FdKind::Other(what) => return Err(TransportError::StdinUnusable { what: what.into() }),
        FdKind::Connected(family) => (false, family),
        FdKind::Listening(family) => (true, family),
    };
    let owned = take_over_stdin(stdin.as_fd()).map_err(TransportError::Stdin)?;
    let transport = match (listening, family) {
        (false, Family::Unix) => {
            let s = StdUnixStream::from(owned);
            s.set_nonblocking(true).map_err(TransportError::Stdin)?;
            Transport {
                kind: Kind::StdinConnection,
                description: "fd 0: connected unix socket (IIS named-pipe style, one connection)"
                    .into(),
                endpoint: Some(Endpoint::Connection(Stream::Unix(
                    mio::net::UnixStream::from_std(s),
                ))),
                created_socket: None,
                keeper: None,
            }
        }
        (false, Family::Inet) => {
            let s = std::net::TcpStream::from(owned);
            s.set_nonblocking(true).map_err(TransportError::Stdin)?;
            let _ = s.set_nodelay(true);
            let peer = s
                .peer_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            Transport {
                kind: Kind::StdinConnection,
                description: format!("fd 0: connected TCP socket from {peer} (one connection)"),
                endpoint: Some(Endpoint::Connection(Stream::Tcp(
                    mio::net::TcpStream::from_std(s),
                ))),
                created_socket: None,
                keeper: None,
            }
        }
        (true, Family::Unix) => {
            let l = StdUnixListener::from(owned);
            l.set_nonblocking(true).map_err(TransportError::Stdin)?;
            let name = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "(unnamed)".into());
            Transport {
                kind: Kind::StdinListener,
                description: format!("fd 0: listening unix socket {name} (accept loop)"),
                endpoint: Some(Endpoint::Listener(Listener::Unix(
                    mio::net::UnixListener::from_std(l),
                ))),
                created_socket: None,
                keeper: None,
            }
        }
        (true, Family::Inet) => {
            let l = std::net::TcpListener::from(owned);
            l.set_nonblocking(true).map_err(TransportError::Stdin)?;
            let name = l
                .local_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            Transport {
                kind: Kind::StdinListener,
                description: format!("fd 0: listening TCP socket {name} (accept loop)"),
                endpoint: Some(Endpoint::Listener(Listener::Tcp(
                    mio::net::TcpListener::from_std(l),
                    AllowList::from_env()?,
                ))),
                created_socket: None,
                keeper: None,
            }
        }
    };
    Ok(transport)
}

/// The supervisor's side of a listening socket on fd 0 (`--processes N` under lighttpd
/// `bin-path` or spawn-fcgi): takes it over like [`from_stdin`] without wrapping it.
/// `Ok(None)` when fd 0 is a connected stream (IIS): nothing to share.
pub(super) fn shared_from_stdin() -> Result<Option<super::SharedListener>, TransportError> {
    let stdin = io::stdin();
    let family = match classify(stdin.as_fd()) {
        FdKind::Other(what) => return Err(TransportError::StdinUnusable { what: what.into() }),
        FdKind::Connected(_) => return Ok(None),
        FdKind::Listening(family) => family,
    };
    let fd = take_over_stdin(stdin.as_fd()).map_err(TransportError::Stdin)?;
    // Through std's types only to name the socket for the log.
    let (fd, description) = match family {
        Family::Unix => {
            let l = StdUnixListener::from(fd);
            let name = l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "(unnamed)".into());
            (
                OwnedFd::from(l),
                format!("fd 0: listening unix socket {name}"),
            )
        }
        Family::Inet => {
            let l = std::net::TcpListener::from(fd);
            let name = l
                .local_addr()
                .map_or_else(|_| "?".to_owned(), |a| a.to_string());
            (
                OwnedFd::from(l),
                format!("fd 0: listening TCP socket {name}"),
            )
        }
    };
    Ok(Some(super::SharedListener {
        kind: Kind::StdinListener,
        description,
        fd,
        created_socket: None,
    }))
}

/// Moves `fd` (fd 0) to a new close-on-exec descriptor and opens `/dev/null` on fd 0, so that
/// children cannot inherit the transport and nothing that reads stdin eats protocol bytes.
fn take_over_stdin(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let owned = rustix::io::fcntl_dupfd_cloexec(fd, 3)?;
    let null = fs::File::open("/dev/null")?;
    rustix::stdio::dup2_stdin(&null)?;
    Ok(owned)
}

/// Names the descriptor of the listening socket a process hands to its re-executed self for
/// `--listen` ([`Handover`]); [`LISTEN_PID_VAR`] names the process it is meant for.
pub const LISTEN_FD_VAR: &str = "IISWSGI_LISTEN_FD";
/// The process id [`LISTEN_FD_VAR`] is meant for: a re-execution keeps its pid, so a child
/// that inherits the environment (never the descriptor) ignores it.
pub const LISTEN_PID_VAR: &str = "IISWSGI_LISTEN_PID";

/// A second, close-on-exec descriptor of `endpoint`'s listening socket, for a reload.
pub(super) fn keeper(endpoint: Option<&Endpoint>) -> Option<OwnedFd> {
    match endpoint? {
        Endpoint::Listener(Listener::Unix(l)) => l.as_fd().try_clone_to_owned().ok(),
        Endpoint::Listener(Listener::Tcp(l, _)) => l.as_fd().try_clone_to_owned().ok(),
        Endpoint::Connection(_) => None,
    }
}

/// The listening socket of a process that re-executes itself in place on a reload, the only
/// way out of [`super::Transport::handover`]. Neither closed nor unlinked when the server
/// stops: the kernel keeps queueing connections while the new image starts, and the socket
/// file never disappears.
#[derive(Debug)]
pub struct Handover {
    fd: OwnedFd,
    kind: Kind,
    socket_file: Option<PathBuf>,
}

impl Handover {
    pub(super) fn new(fd: OwnedFd, kind: Kind, socket_file: Option<PathBuf>) -> Handover {
        Handover {
            fd,
            kind,
            socket_file,
        }
    }

    /// Sets `cmd` (which will `exec` this binary again, same pid) up to receive the socket:
    /// on fd 0 when it came from there (lighttpd, spawn-fcgi, a `--processes` worker), else
    /// as an inheritable descriptor named by [`LISTEN_FD_VAR`], which the new image's
    /// `--listen` adopts instead of binding (so it keeps removing the socket file at its own
    /// exit).
    pub fn pass_to(self, cmd: &mut Command) -> io::Result<()> {
        if self.kind == Kind::StdinListener {
            cmd.stdin(Stdio::from(self.fd));
            return Ok(());
        }
        rustix::io::fcntl_setfd(&self.fd, rustix::io::FdFlags::empty())?;
        // Left open on purpose: it must outlive this image.
        let raw = self.fd.into_raw_fd();
        cmd.env(LISTEN_FD_VAR, raw.to_string())
            .env(LISTEN_PID_VAR, std::process::id().to_string());
        Ok(())
    }

    /// The unix socket file this process created, which the next image removes at its exit.
    pub fn socket_file(&self) -> Option<&Path> {
        self.socket_file.as_deref()
    }
}

/// The listening socket for `addr` that the previous image of this very process handed over
/// ([`Handover::pass_to`]), if any: only when [`LISTEN_PID_VAR`] is this pid and the
/// descriptor is a listening socket bound to `addr`. Anything else is left alone (the
/// variables may come from elsewhere) and `--listen` binds as usual.
pub(super) fn inherited(addr: &ListenAddr) -> Result<Option<Transport>, TransportError> {
    let ours = std::env::var(LISTEN_PID_VAR)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let Some(raw) = std::env::var(LISTEN_FD_VAR)
        .ok()
        .and_then(|v| v.parse::<RawFd>().ok())
        .filter(|&fd| ours && fd > 2)
    else {
        return Ok(None);
    };
    // SAFETY: F_GETFD only asks whether `raw` is an open descriptor; nothing is borrowed yet.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } == -1 {
        return Ok(None);
    }
    // SAFETY: `raw` is open (checked above) and stays open while borrowed: nothing closes it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    // Inspected through a duplicate, so that nothing here can close `raw`.
    let dup = || borrowed.try_clone_to_owned().map_err(TransportError::Stdin);
    let matches = match (classify(borrowed), addr) {
        (FdKind::Listening(Family::Unix), ListenAddr::Unix(path)) => {
            // `bind_unix` binds under a temporary name of this pid, then renames it.
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(format!(".{}.tmp", std::process::id()));
            StdUnixListener::from(dup()?).local_addr().is_ok_and(|a| {
                a.as_pathname()
                    .is_some_and(|p| p == path.as_path() || p.as_os_str() == tmp)
            })
        }
        (FdKind::Listening(Family::Inet), ListenAddr::Tcp(want)) => {
            std::net::TcpListener::from(dup()?)
                .local_addr()
                .is_ok_and(|got| got == *want || (want.port() == 0 && got.ip() == want.ip()))
        }
        _ => false,
    };
    if !matches {
        return Ok(None);
    }
    // SAFETY: the previous image of this process opened `raw` for this process alone and
    // nothing else owns it; it is ours from now on.
    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| TransportError::Stdin(e.into()))?;
    let transport = match addr {
        ListenAddr::Unix(path) => {
            let l = StdUnixListener::from(owned);
            l.set_nonblocking(true).map_err(TransportError::Stdin)?;
            Transport {
                kind: Kind::Unix,
                description: format!(
                    "listening on unix:{} (the socket kept across a reload)",
                    path.display()
                ),
                endpoint: Some(Endpoint::Listener(Listener::Unix(
                    mio::net::UnixListener::from_std(l),
                ))),
                created_socket: Some(path.clone()),
                keeper: None,
            }
        }
        ListenAddr::Tcp(_) => {
            let l = std::net::TcpListener::from(owned);
            l.set_nonblocking(true).map_err(TransportError::Stdin)?;
            let local = l
                .local_addr()
                .map_or_else(|_| addr.to_string(), |a| format!("tcp:{a}"));
            Transport {
                kind: Kind::Tcp,
                description: format!("listening on {local} (the socket kept across a reload)"),
                endpoint: Some(Endpoint::Listener(Listener::Tcp(
                    mio::net::TcpListener::from_std(l),
                    AllowList::from_env()?,
                ))),
                created_socket: None,
                keeper: None,
            }
        }
    };
    Ok(Some(transport))
}

/// Binds a unix socket at `path` with the permissions `mode` (`--socket-mode`; 0666 by
/// default, so a web server running as another user can connect; connecting needs write
/// permission). A stale socket file (nobody accepting) is removed first; a live one, or a
/// path that is not a socket, is an error.
pub(super) fn bind_unix(
    addr: &ListenAddr,
    path: &Path,
    mode: u32,
) -> Result<mio::net::UnixListener, TransportError> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(TransportError::AddressInUse {
                addr: addr.clone(),
                reason: "the path exists and is not a socket; refusing to delete it",
            });
        }
        match StdUnixStream::connect(path) {
            Ok(_) => {
                return Err(TransportError::AddressInUse {
                    addr: addr.clone(),
                    reason: "another process is accepting on this socket",
                });
            }
            Err(_) => {
                let _ = fs::remove_file(path);
            }
        }
    }
    let bind_err = |source| TransportError::Bind {
        addr: addr.clone(),
        source,
    };
    // Bind under a temporary name, set its mode, then rename it into place: the path appears
    // only once the socket is listening with its final mode, so a web server that starts
    // connecting as soon as the file exists is never refused.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let (l, bound) = match StdUnixListener::bind(&tmp) {
        Ok(l) => (l, tmp.as_path()),
        // The temporary name may exceed the 108-byte sun_path limit when the real one fits.
        Err(_) => (StdUnixListener::bind(path).map_err(bind_err)?, path),
    };
    let ready = fs::set_permissions(bound, fs::Permissions::from_mode(mode & 0o777))
        .and_then(|()| l.set_nonblocking(true))
        .and_then(|()| {
            if bound == path {
                Ok(())
            } else {
                fs::rename(bound, path)
            }
        });
    if let Err(e) = ready {
        let _ = fs::remove_file(bound);
        return Err(bind_err(e));
    }
    Ok(mio::net::UnixListener::from_std(l))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn socketpair_end_is_a_connected_unix_socket() {
        let (a, _b) = StdUnixStream::pair().expect("pair");
        assert_eq!(classify(a.as_fd()), FdKind::Connected(Family::Unix));
    }

    #[test]
    fn listening_unix_socket_is_a_listener() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = StdUnixListener::bind(dir.path().join("s")).expect("bind");
        assert_eq!(classify(l.as_fd()), FdKind::Listening(Family::Unix));
    }

    #[test]
    fn tcp_listener_and_connection_are_told_apart() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        assert_eq!(classify(l.as_fd()), FdKind::Listening(Family::Inet));
        let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        assert_eq!(classify(c.as_fd()), FdKind::Connected(Family::Inet));
    }

    #[test]
    fn unconnected_unlistening_socket_is_unusable() {
        let s = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).expect("sock");
        assert!(matches!(classify(s.as_fd()), FdKind::Other(_)));
    }

    #[test]
    fn datagram_socket_pipe_and_file_are_unusable() {
        let (d, _) = UnixDatagram::pair().expect("pair");
        assert!(matches!(classify(d.as_fd()), FdKind::Other(w) if w.contains("stream")));
        let (r, _w) = rustix::pipe::pipe().expect("pipe");
        assert!(matches!(classify(r.as_fd()), FdKind::Other(w) if w.contains("pipe")));
        let f = fs::File::open("/dev/null").expect("null");
        assert!(matches!(classify(f.as_fd()), FdKind::Other(w) if w.contains("device")));
    }

    #[test]
    fn bind_unix_sets_mode_0666_and_replaces_a_stale_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gw.sock");
        drop(StdUnixListener::bind(&path).expect("stale")); // file left behind, nobody listening
        let addr = ListenAddr::Unix(path.clone());
        let _l = bind_unix(&addr, &path, 0o666).expect("bind over stale socket");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
    }

    #[test]
    fn bind_unix_gives_the_socket_the_mode_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        for wanted in [0o660, 0o600, 0o666] {
            let path = dir.path().join(format!("s{wanted:o}.sock"));
            let addr = ListenAddr::Unix(path.clone());
            let _l = bind_unix(&addr, &path, wanted).expect("bind");
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, wanted, "{wanted:o}");
        }
    }

    #[test]
    fn bind_unix_refuses_a_live_socket_and_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gw.sock");
        let _live = StdUnixListener::bind(&path).expect("live");
        let addr = ListenAddr::Unix(path.clone());
        assert!(matches!(
            bind_unix(&addr, &path, 0o666),
            Err(TransportError::AddressInUse { .. })
        ));
        let file = dir.path().join("data.txt");
        fs::write(&file, b"keep me").expect("write");
        let addr = ListenAddr::Unix(file.clone());
        assert!(matches!(
            bind_unix(&addr, &file, 0o666),
            Err(TransportError::AddressInUse { .. })
        ));
        assert_eq!(fs::read(&file).expect("still there"), b"keep me");
    }
}
