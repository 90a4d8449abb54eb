//! Where FastCGI bytes come from: an IIS pipe or socket on stdin, an inherited listening socket,
//! or a `--listen` address. Moves bytes; never interprets them.
//!
//! [`open`] picks the transport (`iis-runtime.md` §3, §12 items 1–4; `fastcgi-protocol.md` §1.5):
//!
//! | Source | What it is | Who does this |
//! |---|---|---|
//! | fd 0 / stdin, a connected stream | one connection for the life of the process, no accept | IIS named-pipe mode (Windows: an overlapped duplex pipe; Unix: a socketpair in tests) |
//! | fd 0 / stdin, a listening socket (Unix) | an accept loop | IIS-TCP-style tests, lighttpd `bin-path`, spawn-fcgi, mod_fcgid, `cgi-fcgi -start` |
//! | stdin, a listening socket (Windows) | one `accept()`, then that one connection until EOF | IIS TCP mode (§3.2) |
//! | `--listen unix:PATH` | a unix socket, mode `--socket-mode` (0666), stale file removed | nginx, Apache, HAProxy |
//! | `--listen tcp:HOST:PORT` | a loopback TCP socket, peers checked against `FCGI_WEB_SERVER_ADDRS` | same |
//!
//! In the stdin modes the transport is first moved to a new close-on-exec descriptor (a
//! non-inheritable handle on Windows) and stdin is pointed at the null device, so neither
//! child processes nor code that reads stdin can steal protocol bytes (`iis-runtime.md` §12
//! item 2, `wsgi-embedding.md` §5.3).
//!
//! Every socket is non-blocking and a [`mio`] event source: the server multiplexes idle
//! connections with readiness I/O. mio (rather than `polling`) because its sources are safe to
//! register and it wraps Windows overlapped named pipes (`mio::windows::NamedPipe`), which the
//! Windows IIS transport needs (issue #7); the Windows details are in `windows.rs`.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use mio::event::Source;
use mio::{Interest, Registry, Token};

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
#[cfg(unix)]
pub use unix::Handover;
#[cfg(windows)]
pub use windows::{HANDOFF_LIMIT, IisPipe};

/// An address given with `--listen`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `unix:PATH`.
    Unix(PathBuf),
    /// `tcp:HOST:PORT` or a bare `HOST:PORT` (HOST an IP address or `localhost`).
    Tcp(SocketAddr),
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a socket path, e.g. unix:/run/iiswsgi.sock".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        let tcp = |hostport: &str| {
            let hostport = match hostport.strip_prefix("localhost:") {
                Some(port) => format!("127.0.0.1:{port}"),
                None => hostport.to_owned(),
            };
            hostport.parse::<SocketAddr>().map(ListenAddr::Tcp)
        };
        if let Some(hostport) = s.strip_prefix("tcp:") {
            return tcp(hostport).map_err(|_| {
                format!("`{s}`: expected tcp:IP:PORT, e.g. tcp:127.0.0.1:9000 or tcp:[::1]:9000")
            });
        }
        // gunicorn's `--bind 127.0.0.1:8000`: a bare HOST:PORT is TCP.
        tcp(s).map_err(|_| {
            format!(
                "`{s}`: expected unix:PATH, HOST:PORT or tcp:HOST:PORT (e.g. \
                 unix:/run/iiswsgi.sock, 127.0.0.1:9000)"
            )
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
            ListenAddr::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Which transport is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// stdin is one connected stream (IIS named-pipe mode, or a socketpair): serve it until
    /// EOF, which means shutdown.
    StdinConnection,
    /// stdin is a listening socket: accept connections from it.
    StdinListener,
    /// `--listen unix:PATH`.
    Unix,
    /// `--listen tcp:HOST:PORT`.
    Tcp,
}

impl Kind {
    /// A short stable name for logs, the diagnostic page and [`crate::runtime::server::Request`].
    pub fn name(self) -> &'static str {
        match self {
            Kind::StdinConnection => "stdin-connection",
            Kind::StdinListener => "stdin-listener",
            Kind::Unix => "unix",
            Kind::Tcp => "tcp",
        }
    }

    /// Whether this is how IIS talks to its processes in named-pipe mode: one connection, one
    /// request at a time, EOF means shutdown.
    pub fn is_single_connection(self) -> bool {
        self == Kind::StdinConnection
    }
}

/// Why no transport could be set up.
#[derive(Debug)]
pub enum TransportError {
    /// stdin is not a socket or pipe the server can use.
    StdinUnusable {
        /// What stdin turned out to be.
        what: String,
    },
    /// Setting up the stdin transport failed.
    Stdin(io::Error),
    /// Binding `--listen` failed.
    Bind {
        /// The address.
        addr: ListenAddr,
        /// The cause.
        source: io::Error,
    },
    /// A unix socket path is taken by a live server or by something that is not a socket.
    AddressInUse {
        /// The address.
        addr: ListenAddr,
        /// Why it cannot be reused.
        reason: &'static str,
    },
    /// A non-loopback TCP address without an `FCGI_WEB_SERVER_ADDRS` allow-list.
    NotLoopback(SocketAddr),
    /// `FCGI_WEB_SERVER_ADDRS` holds something that is not an IP address.
    BadAllowList(String),
    /// The transport does not exist on this platform.
    Unsupported(&'static str),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::StdinUnusable { what } => write!(
                f,
                "stdin is {what}, not a FastCGI connection or listening socket; start iiswsgi \
                 from a FastCGI server (IIS, lighttpd bin-path, spawn-fcgi) or pass \
                 --listen unix:PATH / --listen tcp:127.0.0.1:PORT"
            ),
            TransportError::Stdin(_) => f.write_str("cannot take over the transport on stdin"),
            TransportError::Bind { addr, .. } => write!(f, "cannot listen on {addr}"),
            TransportError::AddressInUse { addr, reason } => {
                write!(f, "cannot listen on {addr}: {reason}")
            }
            TransportError::NotLoopback(a) => write!(
                f,
                "refusing to listen on {a}: not a loopback address. FastCGI has no \
                 authentication, so anyone who reaches the port can forge requests; listen on \
                 127.0.0.1/::1 or a unix socket, or set FCGI_WEB_SERVER_ADDRS to the web \
                 servers allowed to connect"
            ),
            TransportError::BadAllowList(v) => {
                write!(f, "FCGI_WEB_SERVER_ADDRS: `{v}` is not an IP address")
            }
            TransportError::Unsupported(what) => write!(f, "{what} is not supported here"),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransportError::Stdin(e) | TransportError::Bind { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// The allow-list of web-server addresses for TCP peers (`FCGI_WEB_SERVER_ADDRS`, FastCGI
/// spec §3.2): a comma-separated list of IP addresses. Empty or unset means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpAddr>);

impl AllowList {
    /// Parses the variable's value.
    pub fn parse(value: &str) -> Result<Self, TransportError> {
        let mut out = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            out.push(
                item.parse()
                    .map_err(|_| TransportError::BadAllowList(item.to_owned()))?,
            );
        }
        Ok(AllowList(out))
    }

    /// Reads `FCGI_WEB_SERVER_ADDRS` from the environment.
    pub fn from_env() -> Result<Self, TransportError> {
        match &crate::runtime::iis_env::get().web_server_addrs {
            Some(v) => Self::parse(v),
            None => Ok(AllowList::default()),
        }
    }

    /// Whether the list is empty (every peer allowed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `peer` may connect. IPv4-mapped IPv6 peers match their IPv4 form.
    pub fn allows(&self, peer: IpAddr) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let canonical = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&canonical) || self.0.contains(&peer)
    }
}

/// One FastCGI connection. Non-blocking; a [`mio`] source.
#[derive(Debug)]
pub enum Stream {
    /// A unix-domain stream socket (also a socketpair on fd 0).
    #[cfg(unix)]
    Unix(mio::net::UnixStream),
    /// A TCP connection.
    Tcp(mio::net::TcpStream),
    /// The IIS named pipe on stdin (Windows): overlapped I/O through mio's `NamedPipe`.
    #[cfg(windows)]
    Pipe(IisPipe),
}

impl Stream {
    /// Shuts down the write half: the peer reads EOF after everything sent so far (the first
    /// step of a lingering close, `fastcgi-protocol.md` §7).
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            // A pipe has no half-close; the caller just closes it.
            #[cfg(windows)]
            Stream::Pipe(_) => Ok(()),
        }
    }
}

macro_rules! each_stream {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            #[cfg(unix)]
            Stream::Unix($s) => $e,
            Stream::Tcp($s) => $e,
            #[cfg(windows)]
            Stream::Pipe($s) => $e,
        }
    };
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        each_stream!(self, s => s.read(buf))
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        each_stream!(self, s => s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        each_stream!(self, s => s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        each_stream!(self, s => s.flush())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        each_stream!(self, s => s.register(r, t, i))
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        each_stream!(self, s => s.reregister(r, t, i))
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        each_stream!(self, s => s.deregister(r))
    }
}

/// A listening socket. Non-blocking; a [`mio`] source.
#[derive(Debug)]
pub enum Listener {
    /// A unix-domain listener.
    #[cfg(unix)]
    Unix(mio::net::UnixListener),
    /// A TCP listener, with the `FCGI_WEB_SERVER_ADDRS` allow-list.
    Tcp(mio::net::TcpListener, AllowList),
}

/// What [`Listener::accept`] returns.
#[derive(Debug)]
pub enum Accepted {
    /// A connection, with a description of the peer for the log.
    Connection(Stream, String),
    /// A TCP peer not in `FCGI_WEB_SERVER_ADDRS`; the connection was closed.
    Refused(SocketAddr),
}

impl Listener {
    /// Accepts one connection; `WouldBlock` when none is pending.
    pub fn accept(&self) -> io::Result<Accepted> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => {
                let (s, addr) = l.accept()?;
                let peer = match addr.as_pathname() {
                    Some(p) => format!("unix:{}", p.display()),
                    None => "unix peer".to_owned(),
                };
                Ok(Accepted::Connection(Stream::Unix(s), peer))
            }
            Listener::Tcp(l, allow) => {
                let (s, addr) = l.accept()?;
                if !allow.allows(addr.ip()) {
                    return Ok(Accepted::Refused(addr));
                }
                // Small FastCGI records must not wait for Nagle.
                let _ = s.set_nodelay(true);
                Ok(Accepted::Connection(Stream::Tcp(s), format!("tcp:{addr}")))
            }
        }
    }

    /// A second handle on the same listening socket (a duplicated descriptor), so several
    /// worker threads can each register it with their own poller and accept from it.
    pub fn try_clone(&self) -> io::Result<Listener> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => {
                use std::os::fd::AsFd;
                let fd = l.as_fd().try_clone_to_owned()?;
                Ok(Listener::Unix(mio::net::UnixListener::from_std(
                    std::os::unix::net::UnixListener::from(fd),
                )))
            }
            Listener::Tcp(l, allow) => {
                #[cfg(unix)]
                let owned = std::os::fd::AsFd::as_fd(l).try_clone_to_owned()?;
                #[cfg(windows)]
                let owned = std::os::windows::io::AsSocket::as_socket(l).try_clone_to_owned()?;
                Ok(Listener::Tcp(
                    mio::net::TcpListener::from_std(std::net::TcpListener::from(owned)),
                    allow.clone(),
                ))
            }
        }
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => l.register(r, t, i),
            Listener::Tcp(l, _) => l.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => l.reregister(r, t, i),
            Listener::Tcp(l, _) => l.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Listener::Unix(l) => l.deregister(r),
            Listener::Tcp(l, _) => l.deregister(r),
        }
    }
}

/// What the server serves: one connection, or a listener.
#[derive(Debug)]
pub enum Endpoint {
    /// The single stdin connection.
    Connection(Stream),
    /// A listener to accept from.
    Listener(Listener),
}

/// The transport in use.
#[derive(Debug)]
pub struct Transport {
    /// Which kind.
    pub kind: Kind,
    /// A human description for the log and the diagnostic page, e.g.
    /// `fd 0: connected unix socket (IIS named-pipe style)`.
    pub description: String,
    /// The connection or listener, until [`Transport::take_endpoint`].
    endpoint: Option<Endpoint>,
    /// A unix socket file this process created, removed by [`Transport::cleanup`].
    created_socket: Option<PathBuf>,
    /// A second descriptor of the listening socket, close-on-exec, kept here while the server
    /// serves: after a reload the server's own are closed and this one goes into the
    /// re-executed process ([`Transport::handover`]).
    #[cfg(unix)]
    keeper: Option<std::os::fd::OwnedFd>,
}

impl Transport {
    /// Hands the connection or listener to the server (once).
    pub fn take_endpoint(&mut self) -> Option<Endpoint> {
        self.endpoint.take()
    }

    /// Removes the unix socket file this process bound, if any (at clean exit).
    pub fn cleanup(&mut self) {
        if let Some(p) = self.created_socket.take() {
            let _ = std::fs::remove_file(p);
        }
    }

    /// The unix socket file this process bound, if any.
    pub fn created_socket(&self) -> Option<&std::path::Path> {
        self.created_socket.as_deref()
    }

    /// The listening socket for a reload in place: still open, and its unix socket file no
    /// longer removed by [`Transport::cleanup`]. `None` for a connection (IIS).
    #[cfg(unix)]
    pub fn handover(&mut self) -> Option<Handover> {
        let fd = self.keeper.take()?;
        Some(Handover::new(fd, self.kind, self.created_socket.take()))
    }
}

/// Opens the transport: binds `listen` when given (a unix socket gets the permissions
/// `socket_mode`; after a reload, takes the socket the previous image of this process bound
/// for it), otherwise takes over what stdin holds.
pub fn open(listen: Option<&ListenAddr>, socket_mode: u32) -> Result<Transport, TransportError> {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut transport = match listen {
        #[cfg(unix)]
        Some(addr) => match unix::inherited(addr)? {
            Some(t) => t,
            None => bind(addr, socket_mode)?,
        },
        #[cfg(not(unix))]
        Some(addr) => bind(addr, socket_mode)?,
        None => from_stdin()?,
    };
    #[cfg(unix)]
    {
        transport.keeper = unix::keeper(transport.endpoint.as_ref());
    }
    Ok(transport)
}

fn bind(addr: &ListenAddr, socket_mode: u32) -> Result<Transport, TransportError> {
    match addr {
        ListenAddr::Tcp(sa) => {
            let allow = AllowList::from_env()?;
            if !sa.ip().is_loopback() && allow.is_empty() {
                return Err(TransportError::NotLoopback(*sa));
            }
            let l = mio::net::TcpListener::bind(*sa).map_err(|source| TransportError::Bind {
                addr: addr.clone(),
                source,
            })?;
            let local = l.local_addr().map_or(*sa, |a| a);
            Ok(Transport {
                kind: Kind::Tcp,
                description: format!("listening on tcp:{local}"),
                endpoint: Some(Endpoint::Listener(Listener::Tcp(l, allow))),
                created_socket: None,
                #[cfg(unix)]
                keeper: None,
            })
        }
        #[cfg(unix)]
        ListenAddr::Unix(path) => {
            let l = unix::bind_unix(addr, path, socket_mode)?;
            Ok(Transport {
                kind: Kind::Unix,
                description: format!("listening on unix:{}", path.display()),
                endpoint: Some(Endpoint::Listener(Listener::Unix(l))),
                created_socket: Some(path.clone()),
                keeper: None,
            })
        }
        #[cfg(not(unix))]
        ListenAddr::Unix(_) => {
            let _ = socket_mode; // only unix sockets have a mode
            Err(TransportError::Unsupported(
                "--listen unix: (unix sockets) on this platform",
            ))
        }
    }
}

/// A listening socket shared by worker processes (`iiswsgi run --processes N`): bound by the
/// supervisor or inherited on its fd 0, and handed to every worker as *its* fd 0, so each
/// worker takes the "listening socket on fd 0" path (lighttpd `bin-path`, spawn-fcgi).
#[cfg(unix)]
#[derive(Debug)]
pub struct SharedListener {
    /// [`Kind::Unix`], [`Kind::Tcp`] (bound here) or [`Kind::StdinListener`] (inherited).
    pub kind: Kind,
    /// A human description for the log.
    pub description: String,
    fd: std::os::fd::OwnedFd,
    created_socket: Option<PathBuf>,
}

#[cfg(unix)]
impl SharedListener {
    /// A new descriptor for the socket, close-on-exec, to become a worker's fd 0.
    pub fn for_worker(&self) -> io::Result<std::os::fd::OwnedFd> {
        self.fd.try_clone()
    }

    /// Removes the unix socket file the supervisor bound, if any (at clean exit).
    pub fn cleanup(&mut self) {
        if let Some(p) = self.created_socket.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Opens the listening socket worker processes share: binds `listen` when given, otherwise
/// takes over the listening socket on fd 0. `Ok(None)` when fd 0 is one connected stream
/// (IIS's pipe, a socketpair): there is nothing to share, one process serves it.
#[cfg(unix)]
pub fn open_shared(
    listen: Option<&ListenAddr>,
    socket_mode: u32,
) -> Result<Option<SharedListener>, TransportError> {
    let Some(addr) = listen else {
        return unix::shared_from_stdin();
    };
    let mut transport = bind(addr, socket_mode)?;
    let created_socket = transport.created_socket.take();
    let fd = match transport.take_endpoint() {
        Some(Endpoint::Listener(Listener::Unix(l))) => std::os::fd::OwnedFd::from(l),
        Some(Endpoint::Listener(Listener::Tcp(l, _))) => std::os::fd::OwnedFd::from(l),
        _ => return Err(TransportError::Unsupported("sharing this transport")),
    };
    Ok(Some(SharedListener {
        kind: transport.kind,
        description: transport.description,
        fd,
        created_socket,
    }))
}

fn from_stdin() -> Result<Transport, TransportError> {
    #[cfg(unix)]
    return unix::from_stdin();
    #[cfg(windows)]
    return windows::from_stdin();
    #[cfg(not(any(unix, windows)))]
    Err(TransportError::Unsupported("a FastCGI transport on stdin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addr_parses_unix_and_tcp_forms() {
        assert_eq!(
            "unix:/tmp/a.sock".parse::<ListenAddr>(),
            Ok(ListenAddr::Unix("/tmp/a.sock".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:9000".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("127.0.0.1:9000".parse().expect("addr")))
        );
        assert_eq!(
            "tcp:[::1]:9000".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("[::1]:9000".parse().expect("addr")))
        );
        assert_eq!(
            "tcp:localhost:9001".parse::<ListenAddr>(),
            Ok(ListenAddr::Tcp("127.0.0.1:9001".parse().expect("addr")))
        );
    }

    #[test]
    fn listen_addr_takes_a_bare_host_and_port_as_gunicorn_does() {
        for (bare, addr) in [
            ("127.0.0.1:8000", "127.0.0.1:8000"),
            ("localhost:8000", "127.0.0.1:8000"),
            ("[::1]:8000", "[::1]:8000"),
        ] {
            assert_eq!(
                bare.parse::<ListenAddr>(),
                Ok(ListenAddr::Tcp(addr.parse().expect("addr"))),
                "{bare}"
            );
            assert_eq!(
                bare.parse::<ListenAddr>().expect("valid").to_string(),
                format!("tcp:{addr}")
            );
        }
    }

    #[test]
    fn listen_addr_rejects_other_forms_with_an_example() {
        for bad in [
            "/tmp/a.sock",
            "unix:",
            "tcp:9000",
            "tcp:example.com:80",
            "example.com:80",
            "8000",
            "http://x",
        ] {
            let err = bad.parse::<ListenAddr>().expect_err(bad);
            assert!(err.contains("e.g."), "{bad}: {err}");
        }
    }

    #[test]
    fn listen_addr_displays_as_parsed() {
        for s in ["unix:/tmp/a.sock", "tcp:127.0.0.1:9000"] {
            assert_eq!(s.parse::<ListenAddr>().expect("valid").to_string(), s);
        }
    }

    #[test]
    fn allow_list_empty_allows_everyone() {
        let a = AllowList::parse(" ").expect("empty");
        assert!(a.allows("192.0.2.1".parse().expect("ip")));
    }

    #[test]
    fn allow_list_admits_only_listed_addresses() {
        let a = AllowList::parse("127.0.0.1, ::1").expect("valid");
        assert!(a.allows("127.0.0.1".parse().expect("ip")));
        assert!(a.allows("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(a.allows("::1".parse().expect("ip")));
        assert!(!a.allows("127.0.0.2".parse().expect("ip")));
    }

    #[test]
    fn allow_list_rejects_names() {
        assert!(matches!(
            AllowList::parse("127.0.0.1,localhost"),
            Err(TransportError::BadAllowList(v)) if v == "localhost"
        ));
    }

    #[test]
    fn tcp_listen_refuses_non_loopback_without_allow_list() {
        // SAFETY-free: the variable is only read; tests never set it.
        if crate::runtime::iis_env::get().web_server_addrs.is_some() {
            return;
        }
        let addr: ListenAddr = "tcp:0.0.0.0:0".parse().expect("valid");
        assert!(matches!(
            open(Some(&addr), 0o666),
            Err(TransportError::NotLoopback(_))
        ));
    }

    #[test]
    fn tcp_listen_on_loopback_reports_the_bound_port() {
        let addr: ListenAddr = "tcp:127.0.0.1:0".parse().expect("valid");
        let t = open(Some(&addr), 0o666).expect("bind");
        assert_eq!(t.kind, Kind::Tcp);
        assert!(t.description.starts_with("listening on tcp:127.0.0.1:"));
        assert!(!t.description.ends_with(":0"), "{}", t.description);
    }
}
