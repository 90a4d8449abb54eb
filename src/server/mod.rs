//! The FastCGI server: drives the [`crate::fastcgi`] codec over a [`crate::transport`] and hands
//! each complete request to an [`Application`].
//!
//! The boundary below is what a WSGI app (`crate::wsgi`) and the built-in diagnostic responder
//! both implement, so the server never changes when the Python side does.

use std::io;

/// One CGI/FastCGI parameter as it came off the wire: raw bytes, no decoding.
pub type Param = (Vec<u8>, Vec<u8>);

/// A request as the server hands it to an [`Application`].
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The FastCGI request id, echoed in every record of the response.
    pub id: u16,
    /// The parameters after the server's normalisation (IIS rules, last-wins duplicates),
    /// in arrival order.
    pub params: Vec<Param>,
    /// A short name for the transport this request came over, for logs and the diagnostic page.
    pub transport: &'static str,
}

impl Request {
    /// The value of the parameter `name`, if present.
    pub fn param(&self, name: &[u8]) -> Option<&[u8]> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The request body, pulled on demand from the connection's STDIN records.
///
/// `read` returns `Ok(0)` at the end of the body (the empty STDIN record).
pub trait Body: io::Read + Send {}
impl<T: io::Read + Send> Body for T {}

/// Where an application writes its response. The server frames it as STDOUT records.
pub trait Response: Send {
    /// Sends the status line (`"200 OK"`) and headers. Called at most once, before any body byte;
    /// the server writes a CGI `Status:` line first, then the headers in order.
    fn start(&mut self, status: &str, headers: &[(String, String)]) -> io::Result<()>;
    /// Sends one body chunk now (no buffering across chunks, so streaming works).
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
}

/// How an application call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The response is complete.
    Complete,
    /// The response failed after its headers were sent: end the request with a non-zero app
    /// status (IIS) or drop the connection (other servers) so the client sees a truncated body.
    Aborted,
    /// The application asks the process to exit after this response (reload, `SystemExit`).
    Exit,
}

/// A FastCGI responder: what `iiswsgi run` serves.
pub trait Application: Send + Sync {
    /// Handles one request. Errors the application cannot recover from are reported through
    /// the response (a generic 500) and the log, never through a panic.
    fn handle(
        &self,
        request: &Request,
        body: &mut dyn Body,
        response: &mut dyn Response,
    ) -> Outcome;
}
