//! The per-connection state machine, in the manner of quinn-proto: the server feeds it the
//! bytes it read ([`Connection::recv`]), takes [`Event`]s out ([`Connection::poll_event`]),
//! tells it what the application produced ([`Connection::send_stdout`],
//! [`Connection::end_request`]) and writes whatever [`Connection::pending_output`] holds.
//!
//! It tracks requests by id, answers what the protocol lets the codec answer on its own
//! (`GET_VALUES`, `UNKNOWN_TYPE`, `CANT_MPX_CONN`, `UNKNOWN_ROLE`, `OVERLOADED`, aborts of
//! requests not yet started) and guarantees that nothing is ever sent for an id after its
//! `END_REQUEST`. It never reads a socket or a clock.

use std::collections::VecDeque;
use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::config::Config;
use super::params::{Params, ParamsParser, Rejection, encode_pair, pairs_in};
use super::record::{
    BeginRequestBody, DecodeError, HEADER_LEN, ProtocolStatus, RecordHeader, RecordType, Role,
    StreamFrames, encode_end_request, encode_stream, end_request_bytes, peek_header, stream_frames,
};

/// `FCGI_MAX_CONNS`, a `GET_VALUES` name.
pub const FCGI_MAX_CONNS: &[u8] = b"FCGI_MAX_CONNS";
/// `FCGI_MAX_REQS`, a `GET_VALUES` name.
pub const FCGI_MAX_REQS: &[u8] = b"FCGI_MAX_REQS";
/// `FCGI_MPXS_CONNS`, a `GET_VALUES` name.
pub const FCGI_MPXS_CONNS: &[u8] = b"FCGI_MPXS_CONNS";

/// Output is compacted once this many sent bytes sit at its front.
const OUTPUT_COMPACT_AT: usize = 64 * 1024;

/// What happened on the connection, for the server to act on. Per request id the order is:
/// [`Event::Request`] or [`Event::Rejected`], then any [`Event::Stdin`], then
/// [`Event::StdinEnd`]; an [`Event::Abort`] may come at any point after the first. After
/// either of the first two, the request stays open until the server calls
/// [`Connection::end_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The PARAMS stream ended: the request is runnable.
    Request {
        /// The request id, to be echoed exactly.
        id: u16,
        /// `FCGI_KEEP_CONN`: the web server keeps the connection after the request.
        keep_conn: bool,
        /// The params in arrival order.
        params: Params,
    },
    /// The PARAMS stream ended but was refused. Answer with `reason.http_status()` (431 or
    /// 400) and end the request normally; the connection stays usable. Its STDIN events
    /// still follow, so the server can drain the body before ending it.
    Rejected {
        /// The request id.
        id: u16,
        /// `FCGI_KEEP_CONN`.
        keep_conn: bool,
        /// Why.
        reason: Rejection,
    },
    /// Body bytes (the content of one STDIN record, shared with the input buffer, no copy).
    Stdin {
        /// The request id.
        id: u16,
        /// The bytes, never empty.
        data: Bytes,
    },
    /// The empty STDIN record: the body is complete.
    StdinEnd {
        /// The request id.
        id: u16,
    },
    /// `ABORT_REQUEST` for a request the server already has: stop the application, then end
    /// the request (`END_REQUEST{REQUEST_COMPLETE}`). Aborts of requests whose params had not
    /// ended yet are answered by the codec and produce no event.
    Abort {
        /// The request id.
        id: u16,
    },
    /// A record of a type this codec does not know, on a request id: ignored, reported so the
    /// server can log it.
    UnknownRecord {
        /// The request id it carried.
        id: u16,
        /// Its type byte.
        record_type: u8,
    },
}

impl Event {
    /// The request id the event is about.
    pub fn id(&self) -> u16 {
        match *self {
            Self::Request { id, .. }
            | Self::Rejected { id, .. }
            | Self::Stdin { id, .. }
            | Self::StdinEnd { id }
            | Self::Abort { id }
            | Self::UnknownRecord { id, .. } => id,
        }
    }
}

/// Where an open request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestState {
    /// `BEGIN_REQUEST` seen, PARAMS still arriving; the server does not know it yet.
    ReadingParams,
    /// [`Event::Request`] or [`Event::Rejected`] emitted; STDIN arriving.
    ReadingStdin,
    /// The empty STDIN record has arrived; the response is up to the server.
    StdinClosed,
    /// [`Event::Abort`] emitted; the server must end the request.
    Aborted,
}

impl RequestState {
    /// Whether the server knows the request (it got `Request` or `Rejected`), so output for
    /// it is allowed.
    pub const fn is_started(self) -> bool {
        !matches!(self, Self::ReadingParams)
    }

    /// Whether no more input will be delivered for the request.
    pub const fn input_finished(self) -> bool {
        matches!(self, Self::StdinClosed | Self::Aborted)
    }
}

/// The server asked for output on an id that cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateError {
    /// No open request has this id: never begun, refused, or already ended. Nothing is sent
    /// for an id after its `END_REQUEST`.
    UnknownRequest,
    /// The request's params have not ended, so the server has not been given it.
    NotStarted,
}

impl StateError {
    /// A short static description, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownRequest => "no open FastCGI request has this id",
            Self::NotStarted => "the FastCGI request has not been handed to the server yet",
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for StateError {}

/// An open request.
#[derive(Debug)]
struct Slot {
    id: u16,
    keep_conn: bool,
    state: RequestState,
    /// Present while [`RequestState::ReadingParams`].
    parser: Option<ParamsParser>,
}

/// One FastCGI connection, sans I/O.
///
/// **Input.** [`Connection::recv`] buffers the bytes and decodes every whole record; events
/// queue until [`Connection::poll_event`] takes them. Any split of the input gives the same
/// events and the same output. A framing fault ([`DecodeError`]) is returned by `recv` and
/// sticks: close the connection (in IIS mode, exit).
///
/// **Requests.** Ids are echoed exactly and never assumed to be 1. Without multiplexing, a
/// `BEGIN_REQUEST` that arrives while the open request is still receiving PARAMS or STDIN gets
/// `END_REQUEST{CANT_MPX_CONN}` and the open request continues. One that arrives after the
/// open request's input is complete is a pipelined request: decoding stops in front of it
/// (the bytes stay buffered, [`Connection::wants_input`] turns false once
/// [`super::Limits::max_pending_input`] is buffered) and resumes when the open request ends,
/// so pipelining clients are served in order rather than refused. Likewise nothing after the
/// input of a request without `FCGI_KEEP_CONN` is decoded: the connection closes after it.
/// The result: any split of the input, and any timing of the server's calls, gives the same
/// events and output per request id. (With multiplexing, a request without `FCGI_KEEP_CONN`
/// closes the connection once no other request is open; which later records were still
/// decoded then depends on timing, as it would for any client that mixes the two.)
///
/// **Output.** Everything the codec sends, and what the server asks it to frame, is appended
/// to one buffer: write [`Connection::pending_output`] and report progress with
/// [`Connection::consume_output`]. The zero-copy path ([`Connection::stdout_frames`]) hands
/// back record headers instead; write them only once the pending output is fully written,
/// because records must not interleave on the wire.
#[derive(Debug)]
pub struct Connection {
    config: Config,
    input: BytesMut,
    output: Vec<u8>,
    output_pos: usize,
    events: VecDeque<Event>,
    requests: Vec<Slot>,
    error: Option<DecodeError>,
    /// Decoding stopped in front of a pipelined `BEGIN_REQUEST`.
    paused: bool,
    /// A request without `KEEP_CONN` ended: close once no request is open.
    close_when_idle: bool,
    /// New requests get `END_REQUEST{OVERLOADED}` (shutting down).
    refuse_new: bool,
    /// Params handed back by the server, reused for the next request.
    spare_params: Option<Params>,
}

impl Connection {
    /// A connection with no bytes seen yet.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            input: BytesMut::new(),
            output: Vec::new(),
            output_pos: 0,
            events: VecDeque::new(),
            requests: Vec::new(),
            error: None,
            paused: false,
            close_when_idle: false,
            refuse_new: false,
            spare_params: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Feeds bytes read from the peer and decodes every whole record among them.
    ///
    /// `Err` is a framing fault; it is returned again by every later call. Events produced
    /// before the fault can still be polled.
    pub fn recv(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if self.wants_close() {
            // The connection is closing; a lingering close discards what still arrives.
            return Ok(());
        }
        self.input.extend_from_slice(data);
        self.process();
        self.error.map_or(Ok(()), Err)
    }

    /// Tells the codec the peer closed its side. `Err(TruncatedRecord)` if it stopped inside
    /// a record. (In IIS mode EOF means shut down either way.)
    pub fn recv_eof(&mut self) -> Result<(), DecodeError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut rest: &[u8] = &self.input;
        while !rest.is_empty() {
            match peek_header(rest) {
                Ok(Some(header)) if header.record_len() <= rest.len() => {
                    rest = &rest[header.record_len()..];
                }
                Ok(_) => {
                    self.error = Some(DecodeError::TruncatedRecord);
                    break;
                }
                Err(error) => {
                    self.error = Some(error);
                    break;
                }
            }
        }
        self.error.map_or(Ok(()), Err)
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes waiting to be written to the peer.
    pub fn pending_output(&self) -> &[u8] {
        &self.output[self.output_pos..]
    }

    /// Whether [`Connection::pending_output`] is non-empty.
    pub fn has_pending_output(&self) -> bool {
        self.output_pos < self.output.len()
    }

    /// Marks the first `n` bytes of [`Connection::pending_output`] as written.
    pub fn consume_output(&mut self, n: usize) {
        self.output_pos = (self.output_pos + n).min(self.output.len());
        if self.output_pos == self.output.len() {
            self.output.clear();
            self.output_pos = 0;
        } else if self.output_pos >= OUTPUT_COMPACT_AT {
            self.output.drain(..self.output_pos);
            self.output_pos = 0;
        }
    }

    /// Frames `data` as STDOUT records for request `id` into the pending output (a copy; see
    /// [`Connection::stdout_frames`] for the zero-copy form). Empty `data` sends nothing.
    pub fn send_stdout(&mut self, id: u16, data: &[u8]) -> Result<(), StateError> {
        self.started(id)?;
        encode_stream(&mut self.output, RecordType::Stdout, id, data);
        Ok(())
    }

    /// Frames `data` as STDERR records for request `id`. The server does not use STDERR by
    /// default: nginx logs it, HAProxy answers 502, IIS may fail the request.
    pub fn send_stderr(&mut self, id: u16, data: &[u8]) -> Result<(), StateError> {
        self.started(id)?;
        encode_stream(&mut self.output, RecordType::Stderr, id, data);
        Ok(())
    }

    /// The STDOUT record headers and padding for `len` bytes of the application's data, for a
    /// vectored write that leaves the data where it is. Write [`Connection::pending_output`]
    /// fully first.
    pub fn stdout_frames(&self, id: u16, len: usize) -> Result<StreamFrames, StateError> {
        self.started(id)?;
        Ok(stream_frames(RecordType::Stdout, id, len))
    }

    /// Ends request `id`: appends the empty STDOUT record and
    /// `END_REQUEST{app_status, REQUEST_COMPLETE}` to the pending output as one contiguous
    /// 24-byte run, and forgets the id. Later output for `id` is refused until a new
    /// `BEGIN_REQUEST` opens it again.
    ///
    /// Request events still queued for `id` are dropped, so none names an ended request. Decoding
    /// resumes if it was paused in front of a pipelined request, so poll events again
    /// afterwards; a framing fault met while resuming shows in [`Connection::error`],
    /// [`Connection::wants_input`] and the next [`Connection::recv`].
    pub fn end_request(&mut self, id: u16, app_status: u32) -> Result<(), StateError> {
        self.started(id)?;
        if let Some(i) = self.slot_index(id) {
            let slot = self.requests.swap_remove(i);
            if !slot.keep_conn {
                self.close_when_idle = true;
            }
        }
        self.output.extend_from_slice(&end_request_bytes(
            id,
            app_status,
            ProtocolStatus::RequestComplete,
        ));
        // Input that arrived for the id before the server ended it (a late abort, unread
        // STDIN) is moot now; dropping it means no request event ever names an ended id.
        // (Unknown-record reports are about the wire, not the request: they stay.)
        self.events
            .retain(|event| event.id() != id || matches!(event, Event::UnknownRecord { .. }));
        if self.paused {
            self.paused = false;
            self.process();
        }
        Ok(())
    }

    /// Where request `id` is, if it is open.
    pub fn request_state(&self, id: u16) -> Option<RequestState> {
        self.slot(id).map(|slot| slot.state)
    }

    /// How many requests are open (begun and not ended).
    pub fn open_requests(&self) -> usize {
        self.requests.len()
    }

    /// Whether a request has begun and its PARAMS stream has not ended yet: the server has
    /// nothing to run, and a peer that stops here holds the connection for nothing.
    pub fn reading_params(&self) -> bool {
        self.requests
            .iter()
            .any(|slot| slot.state == RequestState::ReadingParams)
    }

    /// Whether bytes of an incomplete record are buffered (a record split across reads, or a
    /// peer that stopped inside one).
    pub fn holds_partial_record(&self) -> bool {
        !self.input.is_empty() && !self.paused
    }

    /// Gives up on request `id` after its response has started, so that the web server
    /// cannot mistake the truncated response for a complete one: appends an `UNKNOWN_TYPE`
    /// record (id 0), which nginx, Apache `mod_proxy_fcgi`, HAProxy and lighttpd all refuse
    /// in a response (they abort the client's response instead of ending it cleanly, which
    /// nginx does when the connection merely closes without `FCGI_KEEP_CONN` or with
    /// `fastcgi_buffering off`). Every request on the connection is forgotten and nothing
    /// more is decoded: write the pending output, then close the connection. Never use it
    /// towards IIS, which fails a request on type 11 but expects `END_REQUEST` regardless
    /// (end it with a non-zero app status instead).
    pub fn cut_response(&mut self, id: u16) -> Result<(), StateError> {
        self.started(id)?;
        self.requests.clear();
        self.close_when_idle = true;
        self.events.clear();
        let header = RecordHeader::new(RecordType::UnknownType, 0, 8);
        self.output.extend_from_slice(&header.to_bytes());
        self.output
            .extend_from_slice(&[u8::from(RecordType::Stdout), 0, 0, 0, 0, 0, 0, 0]);
        Ok(())
    }

    /// Whether the server should read more from the peer: false after a framing fault, once
    /// the connection is closing, while unsent output exceeds
    /// [`super::Limits::max_pending_output`], and while decoding is paused in front of a
    /// pipelined request with [`super::Limits::max_pending_input`] buffered.
    pub fn wants_input(&self) -> bool {
        let limits = &self.config.limits;
        self.error.is_none()
            && !self.wants_close()
            && self.pending_output().len() < limits.max_pending_output
            && (!self.paused || self.input.len() < limits.max_pending_input)
    }

    /// Whether the server should close the connection (after writing the pending output, with
    /// a lingering close): a request without `FCGI_KEEP_CONN` has ended and none is open.
    pub fn wants_close(&self) -> bool {
        self.close_when_idle && self.requests.is_empty()
    }

    /// The framing fault that stopped decoding, if any.
    pub fn error(&self) -> Option<DecodeError> {
        self.error
    }

    /// While `refuse` is set, new requests get `END_REQUEST{OVERLOADED}` (graceful shutdown).
    pub fn set_refuse_new_requests(&mut self, refuse: bool) {
        self.refuse_new = refuse;
    }

    /// Hands finished params back so the next request reuses their buffers.
    pub fn recycle_params(&mut self, params: Params) {
        self.spare_params = Some(params);
    }

    fn slot_index(&self, id: u16) -> Option<usize> {
        self.requests.iter().position(|slot| slot.id == id)
    }

    fn slot(&self, id: u16) -> Option<&Slot> {
        self.requests.iter().find(|slot| slot.id == id)
    }

    fn slot_mut(&mut self, id: u16) -> Option<&mut Slot> {
        self.requests.iter_mut().find(|slot| slot.id == id)
    }

    fn started(&self, id: u16) -> Result<(), StateError> {
        match self.slot(id) {
            None => Err(StateError::UnknownRequest),
            Some(slot) if !slot.state.is_started() => Err(StateError::NotStarted),
            Some(_) => Ok(()),
        }
    }

    /// Decodes whole records until the buffer runs dry, a fault, a pause or a close.
    fn process(&mut self) {
        while self.error.is_none() && !self.paused && !self.wants_close() {
            let header = match peek_header(&self.input) {
                Ok(Some(header)) => header,
                Ok(None) => break,
                Err(error) => {
                    self.error = Some(error);
                    break;
                }
            };
            let total = header.record_len();
            if self.input.len() < total {
                self.input.reserve(total - self.input.len());
                break;
            }
            if self.must_wait_before(&header) {
                self.paused = true;
                break;
            }
            let mut content = self.input.split_to(total);
            content.advance(HEADER_LEN);
            content.truncate(usize::from(header.content_length));
            self.dispatch(header, content);
        }
    }

    /// Whether decoding must stop in front of this record until the server ends a request.
    ///
    /// - Without multiplexing, a request without `KEEP_CONN` has all its input: the
    ///   connection closes after it, so nothing behind it is read.
    /// - A pipelined `BEGIN_REQUEST`: without multiplexing, every open request has all its
    ///   input; with multiplexing, the id is still open but has all its input (the client
    ///   reused it before our `END_REQUEST`).
    ///
    /// Waiting (instead of refusing) is what makes the outcome independent of how the input
    /// was split across reads and of when the server ends requests.
    fn must_wait_before(&self, header: &RecordHeader) -> bool {
        let finished = |slot: &Slot| slot.state.input_finished();
        if !self.config.multiplex && self.requests.iter().any(|s| !s.keep_conn && finished(s)) {
            return true;
        }
        if header.record_type != RecordType::BeginRequest || header.request_id == 0 {
            return false;
        }
        if self.config.multiplex {
            self.slot(header.request_id).is_some_and(finished)
        } else {
            !self.requests.is_empty() && self.requests.iter().all(finished)
        }
    }

    fn dispatch(&mut self, header: RecordHeader, content: BytesMut) {
        let id = header.request_id;
        if id == 0 {
            self.management(header.record_type, &content);
            return;
        }
        match header.record_type {
            RecordType::BeginRequest => self.begin(id, &content),
            RecordType::AbortRequest => self.abort(id),
            RecordType::Params => self.params(id, &content),
            RecordType::Stdin => self.stdin(id, content),
            RecordType::Unknown(record_type) => {
                self.events
                    .push_back(Event::UnknownRecord { id, record_type });
            }
            // DATA (FILTER only) and the types only an application sends: ignored.
            _ => {}
        }
    }

    fn management(&mut self, record_type: RecordType, content: &[u8]) {
        if record_type == RecordType::GetValues {
            let mut body = Vec::new();
            let mut answered = [false; 3];
            for (name, _) in pairs_in(content) {
                let (slot, value) = match name {
                    FCGI_MAX_CONNS => (0, self.config.max_conns),
                    FCGI_MAX_REQS => (1, self.config.max_reqs),
                    FCGI_MPXS_CONNS => (2, u32::from(self.config.multiplex)),
                    _ => continue,
                };
                if !std::mem::replace(&mut answered[slot], true) {
                    // Three short pairs: cannot exceed the pair or record limits.
                    let _ = encode_pair(&mut body, name, value.to_string().as_bytes());
                }
            }
            let header = RecordHeader::new(RecordType::GetValuesResult, 0, body.len() as u16);
            self.output.extend_from_slice(&header.to_bytes());
            self.output.extend_from_slice(&body);
            let padded = self.output.len() + usize::from(header.padding_length);
            self.output.resize(padded, 0);
        } else if self.config.unknown_type_replies {
            let header = RecordHeader::new(RecordType::UnknownType, 0, 8);
            self.output.extend_from_slice(&header.to_bytes());
            self.output
                .extend_from_slice(&[u8::from(record_type), 0, 0, 0, 0, 0, 0, 0]);
        }
    }

    fn begin(&mut self, id: u16, content: &[u8]) {
        let Some(body) = BeginRequestBody::parse(content) else {
            self.error = Some(DecodeError::BeginRequestTooShort);
            return;
        };
        if self.slot(id).is_some() {
            // A second BEGIN_REQUEST for an open id: the first one stands.
            return;
        }
        let refusal = if body.role != Role::Responder {
            Some(ProtocolStatus::UnknownRole)
        } else if self.refuse_new {
            Some(ProtocolStatus::Overloaded)
        } else if !self.config.multiplex && !self.requests.is_empty() {
            Some(ProtocolStatus::CantMpxConn)
        } else if self.requests.len() >= self.config.limits.max_requests {
            Some(ProtocolStatus::Overloaded)
        } else {
            None
        };
        if let Some(status) = refusal {
            encode_end_request(&mut self.output, id, 0, status);
            if !body.keep_conn() && self.requests.is_empty() && !self.config.multiplex {
                self.close_when_idle = true;
            }
            return;
        }
        let params = self.spare_params.take().unwrap_or_default();
        self.requests.push(Slot {
            id,
            keep_conn: body.keep_conn(),
            state: RequestState::ReadingParams,
            parser: Some(ParamsParser::with_params(&self.config.limits, params)),
        });
    }

    fn abort(&mut self, id: u16) {
        let Some(i) = self.slot_index(id) else {
            return;
        };
        let slot = &mut self.requests[i];
        match slot.state {
            RequestState::ReadingParams => {
                let slot = self.requests.swap_remove(i);
                if !slot.keep_conn {
                    self.close_when_idle = true;
                }
                self.output.extend_from_slice(&end_request_bytes(
                    id,
                    0,
                    ProtocolStatus::RequestComplete,
                ));
            }
            RequestState::ReadingStdin | RequestState::StdinClosed => {
                slot.state = RequestState::Aborted;
                self.events.push_back(Event::Abort { id });
            }
            RequestState::Aborted => {}
        }
    }

    fn params(&mut self, id: u16, content: &[u8]) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        if !content.is_empty() {
            // PARAMS after the stream ended (no parser left) are ignored.
            if let Some(parser) = slot.parser.as_mut() {
                parser.feed(content);
            }
            return;
        }
        let Some(parser) = slot.parser.take() else {
            return;
        };
        slot.state = RequestState::ReadingStdin;
        let keep_conn = slot.keep_conn;
        let event = match parser.finish() {
            Ok(params) => Event::Request {
                id,
                keep_conn,
                params,
            },
            Err(reason) => Event::Rejected {
                id,
                keep_conn,
                reason,
            },
        };
        self.events.push_back(event);
    }

    fn stdin(&mut self, id: u16, content: BytesMut) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        match slot.state {
            RequestState::ReadingParams => {
                if let Some(parser) = slot.parser.as_mut() {
                    parser.reject(Rejection::Malformed);
                }
            }
            RequestState::ReadingStdin if content.is_empty() => {
                slot.state = RequestState::StdinClosed;
                self.events.push_back(Event::StdinEnd { id });
            }
            RequestState::ReadingStdin => {
                self.events.push_back(Event::Stdin {
                    id,
                    data: content.freeze(),
                });
            }
            RequestState::StdinClosed | RequestState::Aborted => {}
        }
    }
}

/// The edge cases of `fastcgi-protocol.md` §4 that a codec can decide, and their tests
/// (the others — read timeouts, lingering close, slow peers — belong to `crate::runtime::server`):
///
/// | # | Test |
/// |---|---|
/// | 1 | `framing::record_padding_of_any_length_is_skipped_even_on_empty_records` (+ `record.rs`) |
/// | 2 | `ids::request_id_is_echoed_exactly_when_not_one`, `vectors::iis_…_wrap…` |
/// | 3 | `overlap::begin_request_while_params_open_gets_cant_mpx_and_first_continues` |
/// | 4 | `roles::non_responder_roles_get_unknown_role_and_their_streams_are_ignored` |
/// | 5 | `params.rs` `lengths::long_form_length_is_accepted_for_lengths_up_to_127`, `…_127_128_boundary…` |
/// | 6 | `params.rs` `splitting::pair_split_across_params_records_at_any_offset_decodes_once` |
/// | 7 | `params_caps::pair_claiming_2_pow_31_bytes_…`, `params.rs` `caps::claims_near_2_pow_31_allocate_nothing` |
/// | 8 | `params_caps::params_ending_inside_a_pair_are_rejected_as_malformed_and_connection_continues` |
/// | 9 | `params_caps::param_sets_over_8_kib_across_many_records_are_accepted_up_to_the_cap` |
/// | 10 | `lifecycle::stdin_without_its_empty_record_never_reports_end` (the timeout is the server's) |
/// | 11 | `lifecycle::body_spread_over_many_stdin_records_is_delivered_in_order` |
/// | 12 | `lifecycle::stdin_is_delivered_whatever_content_length_says` |
/// | 13 | `framing::stdout_over_65535_bytes_spans_several_records` |
/// | 14 | `lifecycle::output_for_an_id_after_its_end_request_is_refused`, `framing::end_request_puts_…` |
/// | 15 | `lifecycle::request_without_keep_conn_asks_to_close_after_end_request` |
/// | 16 | `framing::version_other_than_one_is_a_framing_error`, `framing::eof_inside_a_record_…`, `vectors::ten_thousand_pipelined_…` |
/// | 17 | `framing::stderr_is_framed_as_its_own_stream` (the server never sends it by default) |
/// | 18 | `params.rs` `splitting::duplicate_name_resolves_last_wins_and_both_are_kept` |
#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fastcgi::Limits;
    use crate::runtime::fastcgi::record::{EndRequestBody, MAX_STREAM_CHUNK};
    use crate::runtime::fastcgi::testkit::{
        Script, Wire, as_refs, assert_any_split, ended_with, iis_params, raw_record,
    };

    fn request_params(
        t: &crate::runtime::fastcgi::testkit::Transcript,
        id: u16,
    ) -> Option<&Params> {
        t.events.iter().find_map(|e| match e {
            Event::Request { id: i, params, .. } if *i == id => Some(params),
            _ => None,
        })
    }

    const HELLO: &[(&[u8], &[u8])] = &[(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/hello")];

    mod lifecycle {
        use super::*;

        #[test]
        fn nginx_like_request_on_id_1_with_keep_conn_is_served_and_connection_kept() {
            let wire = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 4096)
                .stdin(1, b"", 8192);
            let t = assert_any_split(&Config::generic(16), Script::Echo, &wire.bytes);
            assert!(matches!(
                &t.events[0],
                Event::Request { id: 1, keep_conn: true, params }
                    if params.get(b"REQUEST_URI") == Some(&b"/hello"[..])
            ));
            assert_eq!(t.events[1], Event::StdinEnd { id: 1 });
            assert_eq!(t.stdout(1), b"Status: 200\r\n\r\n");
            assert_eq!(
                t.out_types(1),
                [
                    RecordType::Stdout,
                    RecordType::Stdout,
                    RecordType::EndRequest
                ]
            );
            assert_eq!(ended_with(&t, 1), Some(ProtocolStatus::RequestComplete));
            assert!(!t.wants_close);
        }

        #[test]
        fn request_without_keep_conn_asks_to_close_after_end_request() {
            let wire = Wire::new()
                .begin(1, false)
                .params(1, HELLO, 4096)
                .stdin(1, b"", 8192);
            let t = assert_any_split(&Config::generic(16), Script::Echo, &wire.bytes);
            assert_eq!(ended_with(&t, 1), Some(ProtocolStatus::RequestComplete));
            assert!(t.wants_close);
        }

        #[test]
        fn body_spread_over_many_stdin_records_is_delivered_in_order() {
            let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let wire = Wire::new()
                .begin(3, true)
                .params(3, HELLO, 4096)
                .stdin(3, &body, 8192);
            let t = assert_any_split(&Config::generic(16), Script::Echo, &wire.bytes);
            let stdin: Vec<u8> = t
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Stdin { id: 3, data } => Some(data.to_vec()),
                    _ => None,
                })
                .flatten()
                .collect();
            assert_eq!(stdin, body);
            assert_eq!(&t.stdout(3)[b"Status: 200\r\n\r\n".len()..], &body[..]);
        }

        #[test]
        fn stdin_is_delivered_whatever_content_length_says() {
            // nginx with fastcgi_request_buffering off and a chunked body: CONTENT_LENGTH "".
            for declared in [&b""[..], b"0", b"3"] {
                let pairs: &[(&[u8], &[u8])] = &[(b"CONTENT_LENGTH", declared)];
                let wire =
                    Wire::new()
                        .begin(1, true)
                        .params(1, pairs, 64)
                        .stdin(1, b"chunked body", 5);
                let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
                assert_eq!(t.stdout(1), b"Status: 200\r\n\r\nchunked body");
            }
        }

        #[test]
        fn stdin_without_its_empty_record_never_reports_end() {
            let wire = Wire::new().begin(1, true).params(1, HELLO, 4096).record(
                RecordType::Stdin,
                1,
                b"partial",
            );
            let t = assert_any_split(&Config::generic(16), Script::Echo, &wire.bytes);
            assert!(!t.events.iter().any(|e| matches!(e, Event::StdinEnd { .. })));
            assert!(t.out(1).is_empty());
        }

        #[test]
        fn output_for_an_id_after_its_end_request_is_refused() {
            let mut conn = Connection::new(Config::iis());
            let wire = Wire::new()
                .begin(9, true)
                .params(9, HELLO, 64)
                .stdin(9, b"", 1);
            conn.recv(&wire.bytes).unwrap();
            conn.end_request(9, 0).unwrap();
            assert_eq!(
                conn.send_stdout(9, b"late"),
                Err(StateError::UnknownRequest)
            );
            assert_eq!(conn.end_request(9, 0), Err(StateError::UnknownRequest));
            assert!(conn.stdout_frames(9, 4).is_err());
            let out = conn.pending_output();
            assert_eq!(
                &out[out.len() - 24..],
                &end_request_bytes(9, 0, ProtocolStatus::RequestComplete)
            );
        }

        #[test]
        fn output_before_params_end_is_refused() {
            let mut conn = Connection::new(Config::iis());
            conn.recv(&Wire::new().begin(2, true).bytes).unwrap();
            assert_eq!(conn.request_state(2), Some(RequestState::ReadingParams));
            assert_eq!(conn.send_stdout(2, b"x"), Err(StateError::NotStarted));
            assert_eq!(conn.end_request(2, 0), Err(StateError::NotStarted));
        }

        #[test]
        fn stdin_before_params_end_rejects_the_request_as_malformed() {
            let wire = Wire::new()
                .begin(1, true)
                .record(RecordType::Params, 1, b"\x01\x01ab")
                .record(RecordType::Stdin, 1, b"early")
                .record(RecordType::Params, 1, b"")
                .stdin(1, b"", 1);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert!(matches!(
                t.events[0],
                Event::Rejected {
                    id: 1,
                    reason: Rejection::Malformed,
                    ..
                }
            ));
            assert_eq!(t.stdout(1), b"Status: 400\r\n\r\n");
        }

        #[test]
        fn duplicate_begin_request_for_an_open_id_is_ignored() {
            let wire = Wire::new()
                .begin(4, true)
                .begin(4, true)
                .params(4, HELLO, 7)
                .stdin(4, b"", 1);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(t.end_requests(4).len(), 1);
            assert_eq!(ended_with(&t, 4), Some(ProtocolStatus::RequestComplete));
        }
    }

    mod ids {
        use super::*;

        #[test]
        fn request_id_is_echoed_exactly_when_not_one() {
            for id in [2u16, 127, 128, 255, 256, 4097, 65535] {
                let wire = Wire::new()
                    .begin(id, true)
                    .params(id, HELLO, 5)
                    .stdin(id, b"x", 1);
                let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
                assert_eq!(
                    ended_with(&t, id),
                    Some(ProtocolStatus::RequestComplete),
                    "id {id}"
                );
                assert!(t.output.keys().all(|&k| k == id), "only id {id} in output");
            }
        }

        #[test]
        fn records_with_stale_ids_are_discarded_silently() {
            let wire = Wire::new()
                .record(RecordType::Params, 5, b"\x01\x01ab")
                .record(RecordType::Stdin, 5, b"stale")
                .abort(5)
                .record(RecordType::Data, 5, b"data")
                .begin(6, true)
                .params(6, HELLO, 64)
                .record(RecordType::Stdin, 99, b"other")
                .stdin(6, b"", 1)
                .record(RecordType::Stdin, 6, b"after end");
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(t.events.len(), 2, "{:?}", t.events);
            assert_eq!(t.output.keys().copied().collect::<Vec<_>>(), [6]);
            assert_eq!(t.error, None);
        }
    }

    mod overlap {
        use super::*;

        #[test]
        fn begin_request_while_params_open_gets_cant_mpx_and_first_continues() {
            let wire = Wire::new()
                .begin(1, true)
                .record(RecordType::Params, 1, b"\x01\x01ab")
                .begin(2, true)
                .params(2, HELLO, 64)
                .stdin(2, b"ignored", 64)
                .record(RecordType::Params, 1, b"")
                .stdin(1, b"body", 64);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(t.out_types(2), [RecordType::EndRequest]);
            assert_eq!(ended_with(&t, 2), Some(ProtocolStatus::CantMpxConn));
            assert_eq!(ended_with(&t, 1), Some(ProtocolStatus::RequestComplete));
            assert_eq!(t.stdout(1), b"Status: 200\r\n\r\nbody");
        }

        #[test]
        fn begin_request_while_stdin_open_gets_cant_mpx() {
            let wire = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 64)
                .record(RecordType::Stdin, 1, b"part")
                .begin(2, true)
                .record(RecordType::Stdin, 1, b"")
                .params(2, HELLO, 64);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(ended_with(&t, 2), Some(ProtocolStatus::CantMpxConn));
            assert_eq!(t.stdout(1), b"Status: 200\r\n\r\npart");
        }

        #[test]
        fn pipelined_begin_request_waits_for_the_open_request() {
            let mut wire = Wire::new();
            for id in [1u16, 1, 2, 1] {
                wire = wire
                    .begin(id, true)
                    .params(id, HELLO, 64)
                    .stdin(id, b"b", 64);
            }
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(t.end_requests(1).len(), 3);
            assert_eq!(t.end_requests(2).len(), 1);
            assert!(
                t.end_requests(1)
                    .iter()
                    .all(|e| e.protocol_status == ProtocolStatus::RequestComplete)
            );
        }

        #[test]
        fn paused_connection_stops_wanting_input_at_the_pending_input_limit() {
            let mut config = Config::generic(4);
            config.limits.max_pending_input = 50;
            let mut conn = Connection::new(config);
            let first = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 64)
                .stdin(1, b"", 1);
            conn.recv(&first.bytes).unwrap();
            assert!(conn.wants_input());
            let second = Wire::new()
                .begin(2, true)
                .params(2, HELLO, 64)
                .stdin(2, b"", 1);
            conn.recv(&second.bytes).unwrap();
            assert!(
                !conn.wants_input(),
                "paused with {} bytes",
                second.bytes.len()
            );
            while conn.poll_event().is_some() {}
            conn.end_request(1, 0).unwrap();
            assert!(conn.wants_input());
            assert!(matches!(
                conn.poll_event(),
                Some(Event::Request { id: 2, .. })
            ));
        }

        #[test]
        fn multiplexed_requests_are_demultiplexed_by_id() {
            let mut wire = Wire::new();
            for id in [300u16, 301, 302] {
                wire = wire.begin(id, true);
            }
            for id in [302u16, 300, 301] {
                wire = wire.params(id, HELLO, 5);
            }
            for round in 0..3u8 {
                for id in [301u16, 302, 300] {
                    wire = wire.record(RecordType::Stdin, id, &[b'a' + round, id as u8]);
                }
            }
            for id in [300u16, 302, 301] {
                wire = wire.record(RecordType::Stdin, id, b"");
            }
            let t = assert_any_split(&Config::multiplexing(4), Script::Echo, &wire.bytes);
            for id in [300u16, 301, 302] {
                let lo = id as u8;
                let body = [b'a', lo, b'b', lo, b'c', lo];
                let mut expected = b"Status: 200\r\n\r\n".to_vec();
                expected.extend_from_slice(&body);
                assert_eq!(t.stdout(id), expected, "id {id}");
                assert_eq!(ended_with(&t, id), Some(ProtocolStatus::RequestComplete));
            }
        }

        #[test]
        fn multiplexed_requests_beyond_the_limit_get_overloaded() {
            let mut config = Config::multiplexing(4);
            config.limits.max_requests = 2;
            let wire = Wire::new().begin(1, true).begin(2, true).begin(3, true);
            let t = assert_any_split(&config, Script::Echo, &wire.bytes);
            assert_eq!(ended_with(&t, 3), Some(ProtocolStatus::Overloaded));
            assert!(t.out(1).is_empty() && t.out(2).is_empty());
        }

        #[test]
        fn refusing_new_requests_answers_overloaded() {
            let mut conn = Connection::new(Config::iis());
            conn.set_refuse_new_requests(true);
            conn.recv(&Wire::new().begin(1, true).bytes).unwrap();
            let out = crate::runtime::fastcgi::testkit::decode_all(conn.pending_output());
            assert_eq!(
                EndRequestBody::parse(out[0].content()).map(|b| b.protocol_status),
                Some(ProtocolStatus::Overloaded)
            );
            assert_eq!(conn.open_requests(), 0);
        }
    }

    mod roles {
        use super::*;

        #[test]
        fn non_responder_roles_get_unknown_role_and_their_streams_are_ignored() {
            for role in [
                Role::Authorizer,
                Role::Filter,
                Role::Unknown(0),
                Role::Unknown(0xFFFF),
            ] {
                let wire = Wire::new()
                    .begin_role(7, role, true)
                    .params(7, HELLO, 64)
                    .stdin(7, b"x", 64)
                    .record(RecordType::Data, 7, b"d")
                    .begin(8, true)
                    .params(8, HELLO, 64)
                    .stdin(8, b"", 64);
                let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
                assert_eq!(t.out_types(7), [RecordType::EndRequest], "{role:?}");
                assert_eq!(ended_with(&t, 7), Some(ProtocolStatus::UnknownRole));
                assert_eq!(ended_with(&t, 8), Some(ProtocolStatus::RequestComplete));
                assert!(t.events.iter().all(|e| !matches!(
                    e,
                    Event::Request { id: 7, .. } | Event::Stdin { id: 7, .. }
                )));
            }
        }
    }

    mod abort {
        use super::*;

        #[test]
        fn abort_before_params_end_drops_request_and_answers_request_complete() {
            let wire = Wire::new()
                .begin(12, true)
                .record(RecordType::Params, 12, b"\x01\x01ab")
                .abort(12)
                .record(RecordType::Params, 12, b"")
                .stdin(12, b"late", 64);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert!(t.events.is_empty(), "{:?}", t.events);
            assert_eq!(
                t.out_types(12),
                [RecordType::Stdout, RecordType::EndRequest]
            );
            assert_eq!(ended_with(&t, 12), Some(ProtocolStatus::RequestComplete));
        }

        #[test]
        fn abort_of_a_running_request_is_reported_to_the_server() {
            let wire = Wire::new()
                .begin(12, true)
                .params(12, HELLO, 64)
                .record(RecordType::Stdin, 12, b"part")
                .abort(12)
                .record(RecordType::Stdin, 12, b"more")
                .begin(13, true)
                .params(13, HELLO, 64)
                .stdin(13, b"", 64);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert!(t.events.contains(&Event::Abort { id: 12 }));
            assert!(
                !t.events
                    .iter()
                    .any(|e| matches!(e, Event::StdinEnd { id: 12 }))
            );
            assert_eq!(ended_with(&t, 12), Some(ProtocolStatus::RequestComplete));
            assert_eq!(ended_with(&t, 13), Some(ProtocolStatus::RequestComplete));
        }

        #[test]
        fn abort_for_an_unknown_or_finished_id_is_ignored() {
            let wire = Wire::new()
                .abort(40)
                .begin(41, true)
                .params(41, HELLO, 64)
                .stdin(41, b"", 64)
                .abort(41);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert!(!t.events.iter().any(|e| matches!(e, Event::Abort { .. })));
            assert!(t.out(40).is_empty());
            assert_eq!(t.end_requests(41).len(), 1);
        }
    }

    mod arrival {
        //! What the server's deadlines and its connection cap ask the codec: is a request
        //! still arriving?
        use super::*;

        #[test]
        fn reading_params_lasts_from_begin_request_to_the_empty_params_record() {
            let mut c = Connection::new(Config::generic(4));
            assert!(!c.reading_params());
            let begun = Wire::new().begin(1, true).bytes;
            c.recv(&begun).expect("framed");
            assert!(c.reading_params(), "begun, no params yet");
            c.recv(&Wire::new().params(1, HELLO, 4096).bytes)
                .expect("framed");
            assert!(!c.reading_params(), "the params ended");
            assert_eq!(c.open_requests(), 1, "the request itself is still open");
        }

        #[test]
        fn a_record_cut_anywhere_is_a_partial_record_until_its_last_byte() {
            let wire = Wire::new().begin(1, true).bytes;
            for at in 1..wire.len() {
                let mut c = Connection::new(Config::generic(4));
                c.recv(&wire[..at]).expect("framed so far");
                assert!(c.holds_partial_record(), "cut at {at}");
                c.recv(&wire[at..]).expect("framed");
                assert!(!c.holds_partial_record(), "whole after {at}");
            }
        }

        #[test]
        fn a_pipelined_request_waiting_its_turn_is_not_a_partial_record() {
            let wire = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 4096)
                .stdin(1, b"", 64)
                .begin(2, true);
            let mut c = Connection::new(Config::generic(4));
            c.recv(&wire.bytes).expect("framed");
            assert!(!c.holds_partial_record());
        }
    }

    mod cut {
        use super::*;

        /// A started request on a kept connection, its events taken.
        fn started() -> Connection {
            let mut c = Connection::new(Config::generic(4));
            let wire = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 4096)
                .stdin(1, b"", 64);
            c.recv(&wire.bytes).expect("framed");
            while c.poll_event().is_some() {}
            c
        }

        #[test]
        fn a_cut_response_ends_with_an_unknown_type_record_and_no_end_request() {
            let mut c = started();
            c.send_stdout(1, b"Status: 200 OK\r\n\r\nhalf")
                .expect("started");
            c.cut_response(1).expect("started");
            let out = crate::runtime::fastcgi::testkit::decode_all(c.pending_output());
            let types: Vec<RecordType> = out.iter().map(|r| r.header().record_type).collect();
            assert_eq!(types, [RecordType::Stdout, RecordType::UnknownType]);
            let last = &out[1];
            assert_eq!(last.header().request_id, 0, "a management record");
            assert_eq!(last.content()[0], u8::from(RecordType::Stdout));
            assert!(c.wants_close(), "the connection must close");
        }

        #[test]
        fn after_a_cut_nothing_more_is_sent_or_decoded() {
            let mut c = started();
            c.cut_response(1).expect("started");
            assert_eq!(c.end_request(1, 0), Err(StateError::UnknownRequest));
            assert_eq!(c.open_requests(), 0);
            let next = Wire::new()
                .begin(2, true)
                .params(2, HELLO, 4096)
                .stdin(2, b"", 64);
            c.recv(&next.bytes).expect("ignored");
            assert_eq!(c.poll_event(), None, "a later request is not decoded");
        }

        #[test]
        fn a_request_whose_params_are_still_arriving_cannot_be_cut() {
            let mut c = Connection::new(Config::generic(4));
            c.recv(&Wire::new().begin(1, true).bytes).expect("framed");
            assert_eq!(c.cut_response(1), Err(StateError::NotStarted));
            assert_eq!(c.cut_response(9), Err(StateError::UnknownRequest));
            assert!(!c.has_pending_output());
        }
    }

    mod management {
        use super::*;

        fn values(config: &Config) -> Vec<(Vec<u8>, Vec<u8>)> {
            let wire = Wire::new().get_values(&[
                b"FCGI_MAX_CONNS",
                b"FCGI_UNKNOWN_NAME",
                b"FCGI_MAX_REQS",
                b"FCGI_MPXS_CONNS",
            ]);
            let t = assert_any_split(config, Script::Echo, &wire.bytes);
            assert_eq!(t.out_types(0), [RecordType::GetValuesResult]);
            t.get_values_results().remove(0)
        }

        fn pairs(list: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
            list.iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect()
        }

        #[test]
        fn get_values_in_iis_mode_answers_one_one_zero() {
            assert_eq!(
                values(&Config::iis()),
                pairs(&[
                    ("FCGI_MAX_CONNS", "1"),
                    ("FCGI_MAX_REQS", "1"),
                    ("FCGI_MPXS_CONNS", "0")
                ])
            );
        }

        #[test]
        fn get_values_answers_configured_values_and_omits_unknown_names() {
            assert_eq!(
                values(&Config::generic(32)),
                pairs(&[
                    ("FCGI_MAX_CONNS", "32"),
                    ("FCGI_MAX_REQS", "32"),
                    ("FCGI_MPXS_CONNS", "0")
                ])
            );
            let mut config = Config::multiplexing(8);
            config.max_reqs = 100;
            assert_eq!(
                values(&config),
                pairs(&[
                    ("FCGI_MAX_CONNS", "8"),
                    ("FCGI_MAX_REQS", "100"),
                    ("FCGI_MPXS_CONNS", "1")
                ])
            );
        }

        #[test]
        fn get_values_between_requests_does_not_disturb_them() {
            let wire = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 3)
                .get_values(&[b"FCGI_MPXS_CONNS"])
                .stdin(1, b"abc", 2);
            let t = assert_any_split(&Config::iis(), Script::Echo, &wire.bytes);
            assert_eq!(t.get_values_results(), [pairs(&[("FCGI_MPXS_CONNS", "0")])]);
            assert_eq!(t.stdout(1), b"Status: 200\r\n\r\nabc");
        }

        #[test]
        fn unknown_type_on_id_zero_gets_unknown_type_reply() {
            let wire = Wire::new().record_padded(RecordType::Unknown(42), 0, b"xyz", 5);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            let out = t.out(0);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].header().record_type, RecordType::UnknownType);
            assert_eq!(&out[0].content()[..], &[42, 0, 0, 0, 0, 0, 0, 0]);
        }

        #[test]
        fn unknown_type_is_never_sent_in_iis_mode() {
            let wire = Wire::new()
                .record(RecordType::Unknown(42), 0, b"")
                .record(RecordType::BeginRequest, 0, &[0, 1, 1, 0, 0, 0, 0, 0])
                .record(RecordType::UnknownType, 0, &[9; 8]);
            let t = assert_any_split(&Config::iis(), Script::Echo, &wire.bytes);
            assert!(t.output.is_empty(), "{:?}", t.output);
        }

        #[test]
        fn unknown_type_with_nonzero_id_is_reported_and_ignored() {
            let wire = Wire::new()
                .record(RecordType::Unknown(200), 3, b"junk")
                .begin(3, true)
                .params(3, HELLO, 64)
                .record(RecordType::Unknown(12), 3, b"")
                .stdin(3, b"", 1);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(
                t.events[0],
                Event::UnknownRecord {
                    id: 3,
                    record_type: 200
                }
            );
            assert!(t.events.contains(&Event::UnknownRecord {
                id: 3,
                record_type: 12
            }));
            assert!(t.out(0).is_empty());
            assert_eq!(ended_with(&t, 3), Some(ProtocolStatus::RequestComplete));
        }
    }

    mod framing {
        use super::*;

        #[test]
        fn record_padding_of_any_length_is_skipped_even_on_empty_records() {
            for padding in [0u8, 1, 7, 8, 9, 200, 255] {
                let wire = Wire::new()
                    .record_padded(
                        RecordType::BeginRequest,
                        1,
                        &[0, 1, 1, 0, 0, 0, 0, 0],
                        padding,
                    )
                    .record_padded(RecordType::Params, 1, b"\x01\x02ab", padding)
                    .record_padded(RecordType::Params, 1, b"c", padding)
                    .record_padded(RecordType::Params, 1, b"", padding)
                    .record_padded(RecordType::Stdin, 1, b"body", padding)
                    .record_padded(RecordType::Stdin, 1, b"", padding)
                    .get_values(&[b"FCGI_MAX_REQS"]);
                let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
                let params = request_params(&t, 1).expect("request");
                assert_eq!(params.get(b"a"), Some(&b"bc"[..]), "padding {padding}");
                assert_eq!(t.stdout(1), b"Status: 200\r\n\r\nbody");
                assert_eq!(t.get_values_results().len(), 1);
            }
        }

        #[test]
        fn version_other_than_one_is_a_framing_error() {
            for version in [0u8, 2, 255] {
                let mut wire = Wire::new().begin(1, true).bytes;
                wire.extend(raw_record(version, 4, 1, b"", 0));
                let t = assert_any_split(&Config::generic(4), Script::Echo, &wire);
                assert_eq!(t.error, Some(DecodeError::UnsupportedVersion(version)));
            }
        }

        #[test]
        fn framing_error_sticks_and_stops_decoding() {
            let mut conn = Connection::new(Config::iis());
            let mut wire = raw_record(0, 1, 1, &[0, 1, 1, 0, 0, 0, 0, 0], 0);
            wire.extend(Wire::new().begin(1, true).bytes);
            assert_eq!(conn.recv(&wire), Err(DecodeError::UnsupportedVersion(0)));
            assert_eq!(conn.recv(&[]), Err(DecodeError::UnsupportedVersion(0)));
            assert!(!conn.wants_input());
            assert_eq!(conn.poll_event(), None);
        }

        #[test]
        fn begin_request_shorter_than_eight_bytes_is_a_framing_error() {
            let wire = Wire::new().record(RecordType::BeginRequest, 1, &[0, 1, 1]);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(t.error, Some(DecodeError::BeginRequestTooShort));
        }

        #[test]
        fn eof_inside_a_record_is_reported_as_truncated() {
            let wire = Wire::new().begin(1, true).params(1, HELLO, 64).bytes;
            for cut in 0..wire.len() {
                let mut conn = Connection::new(Config::generic(4));
                conn.recv(&wire[..cut]).unwrap();
                let at_boundary = cut == 0 || cut == 16 || cut == wire.len() - 8;
                let expected = if at_boundary {
                    Ok(())
                } else {
                    Err(DecodeError::TruncatedRecord)
                };
                assert_eq!(conn.recv_eof(), expected, "cut at {cut}");
            }
        }

        #[test]
        fn stdout_over_65535_bytes_spans_several_records() {
            for len in [8 * 1024usize, 65_535, 65_536, 65_537, 1024 * 1024] {
                let body: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
                let mut conn = Connection::new(Config::generic(4));
                conn.recv(&Wire::new().begin(5, true).params(5, HELLO, 64).bytes)
                    .unwrap();
                conn.send_stdout(5, &body).unwrap();
                let records = crate::runtime::fastcgi::testkit::decode_all(conn.pending_output());
                assert_eq!(records.len(), len.div_ceil(MAX_STREAM_CHUNK), "len {len}");
                for r in &records {
                    assert!(r.content().len() <= MAX_STREAM_CHUNK);
                    assert_eq!(r.header().record_len() % 8, 0);
                    assert_eq!(r.header().request_id, 5);
                }
                let joined: Vec<u8> = records.iter().flat_map(|r| r.content().to_vec()).collect();
                assert_eq!(joined, body);
            }
        }

        #[test]
        fn stdout_frames_match_the_copying_encoder() {
            let mut conn = Connection::new(Config::generic(4));
            conn.recv(&Wire::new().begin(5, true).params(5, HELLO, 64).bytes)
                .unwrap();
            let body: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
            let mut vectored = Vec::new();
            for frame in conn.stdout_frames(5, body.len()).unwrap() {
                vectored.extend_from_slice(&frame.header);
                vectored.extend_from_slice(&body[frame.body.clone()]);
                vectored.extend_from_slice(frame.padding);
            }
            conn.send_stdout(5, &body).unwrap();
            assert_eq!(vectored, conn.pending_output());
        }

        #[test]
        fn empty_stdout_chunk_sends_nothing() {
            let mut conn = Connection::new(Config::generic(4));
            conn.recv(&Wire::new().begin(5, true).params(5, HELLO, 64).bytes)
                .unwrap();
            conn.send_stdout(5, b"").unwrap();
            assert!(!conn.has_pending_output());
            assert_eq!(conn.stdout_frames(5, 0).unwrap().count(), 0);
        }

        #[test]
        fn end_request_puts_stream_end_and_end_request_in_one_contiguous_run() {
            let mut conn = Connection::new(Config::generic(4));
            conn.recv(&Wire::new().begin(258, true).params(258, HELLO, 64).bytes)
                .unwrap();
            conn.send_stdout(258, b"Status: 200\r\n\r\n").unwrap();
            let before = conn.pending_output().len();
            conn.end_request(258, 3).unwrap();
            let tail = &conn.pending_output()[before..];
            assert_eq!(
                tail,
                [
                    1, 6, 1, 2, 0, 0, 0, 0, 1, 3, 1, 2, 0, 8, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0
                ]
            );
        }

        #[test]
        fn stderr_is_framed_as_its_own_stream() {
            let mut conn = Connection::new(Config::generic(4));
            conn.recv(&Wire::new().begin(5, true).params(5, HELLO, 64).bytes)
                .unwrap();
            conn.send_stderr(5, b"oops").unwrap();
            let records = crate::runtime::fastcgi::testkit::decode_all(conn.pending_output());
            assert_eq!(records[0].header().record_type, RecordType::Stderr);
            assert_eq!(&records[0].content()[..], b"oops");
        }

        #[test]
        fn consume_output_in_pieces_keeps_order() {
            let mut conn = Connection::new(Config::generic(4));
            conn.recv(&Wire::new().get_values(&[b"FCGI_MAX_CONNS"]).bytes)
                .unwrap();
            let all = conn.pending_output().to_vec();
            let mut seen = Vec::new();
            while conn.has_pending_output() {
                seen.push(conn.pending_output()[0]);
                conn.consume_output(1);
            }
            assert_eq!(seen, all);
        }
    }

    mod params_caps {
        use super::*;

        #[test]
        fn oversized_value_rejects_the_request_with_431_and_connection_stays_usable() {
            let mut config = Config::generic(4);
            config.limits.max_value_len = 16;
            let big = [b'v'; 17];
            let wire = Wire::new()
                .begin(1, true)
                .params(1, &[(b"A", b"ok"), (b"B", &big)], 5)
                .stdin(1, b"body", 2)
                .begin(2, true)
                .params(2, HELLO, 64)
                .stdin(2, b"", 1);
            let t = assert_any_split(&config, Script::Echo, &wire.bytes);
            assert_eq!(
                t.events[0],
                Event::Rejected {
                    id: 1,
                    keep_conn: true,
                    reason: Rejection::ValueTooLong
                }
            );
            assert_eq!(t.stdout(1), b"Status: 431\r\n\r\n");
            assert_eq!(ended_with(&t, 1), Some(ProtocolStatus::RequestComplete));
            assert_eq!(ended_with(&t, 2), Some(ProtocolStatus::RequestComplete));
            assert_eq!(t.error, None);
        }

        #[test]
        fn param_sets_over_8_kib_across_many_records_are_accepted_up_to_the_cap() {
            let value = vec![b'x'; 1000];
            let names: Vec<Vec<u8>> = (0..40)
                .map(|i| format!("HTTP_X_{i}").into_bytes())
                .collect();
            let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (&n[..], &value[..])).collect();
            let wire = Wire::new()
                .begin(1, true)
                .params(1, &pairs, 8192)
                .stdin(1, b"", 1);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(request_params(&t, 1).map(Params::len), Some(40));

            let mut config = Config::generic(4);
            config.limits.max_params_len = 20_000;
            let t = assert_any_split(&config, Script::Echo, &wire.bytes);
            assert!(matches!(
                t.events[0],
                Event::Rejected {
                    reason: Rejection::ParamsTooLarge,
                    ..
                }
            ));
            assert_eq!(t.stdout(1), b"Status: 431\r\n\r\n");
        }

        #[test]
        fn params_ending_inside_a_pair_are_rejected_as_malformed_and_connection_continues() {
            // nginx 1.22 with a name of 128+ bytes: the stream no longer parses.
            let wire = Wire::new()
                .begin(1, true)
                .params_stream(1, b"\x05\x10HELLOshort", 64)
                .stdin(1, b"", 1)
                .begin(2, true)
                .params(2, HELLO, 64)
                .stdin(2, b"", 1);
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert!(matches!(
                t.events[0],
                Event::Rejected {
                    id: 1,
                    reason: Rejection::Malformed,
                    ..
                }
            ));
            assert_eq!(t.stdout(1), b"Status: 400\r\n\r\n");
            assert_eq!(ended_with(&t, 2), Some(ProtocolStatus::RequestComplete));
        }

        #[test]
        fn pair_claiming_2_pow_31_bytes_is_rejected_without_allocating_and_framing_holds() {
            let wire = Wire::new()
                .begin(1, true)
                .params_stream(1, &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, b'a', b'b'], 64)
                .stdin(1, b"", 1)
                .begin(2, true)
                .params(2, HELLO, 64)
                .stdin(2, b"", 1);
            let (t, bytes) = crate::runtime::fastcgi::testkit::allocated_by(|| {
                let mut conn = Connection::new(Config::generic(4));
                conn.recv(&wire.bytes).unwrap();
                let mut events = Vec::new();
                while let Some(e) = conn.poll_event() {
                    events.push(e);
                }
                events
            });
            assert!(bytes < 16 * 1024, "allocated {bytes} bytes");
            assert!(matches!(
                t[0],
                Event::Rejected {
                    id: 1,
                    reason: Rejection::ValueTooLong,
                    ..
                }
            ));
            let t = assert_any_split(&Config::generic(4), Script::Echo, &wire.bytes);
            assert_eq!(ended_with(&t, 2), Some(ProtocolStatus::RequestComplete));
        }
    }

    mod vectors {
        use super::*;
        use crate::runtime::fastcgi::testkit::{parse_hex_vector, raw_output_whole};

        /// Feeds a `tests/vectors` input through every split, checks the whole-buffer output
        /// against the expected file byte for byte, and returns the transcript.
        fn check_vector(
            config: &Config,
            input: &str,
            expected: &str,
        ) -> crate::runtime::fastcgi::testkit::Transcript {
            let wire = parse_hex_vector(input);
            let t = assert_any_split(config, Script::Echo, &wire);
            let out = raw_output_whole(config, Script::Echo, &wire);
            assert_eq!(out, parse_hex_vector(expected), "output bytes");
            t
        }

        #[test]
        fn nginx_vector_get_with_keep_conn_on_id_1_gives_exact_bytes() {
            let t = check_vector(
                &Config::generic(16),
                include_str!("../../../tests/vectors/nginx_get_keep_conn.hex"),
                include_str!("../../../tests/vectors/nginx_get_keep_conn.out.hex"),
            );
            let params = request_params(&t, 1).expect("request");
            assert_eq!(params.len(), 7);
            assert_eq!(params.get(b"REQUEST_URI"), Some(&b"/hello?a=1"[..]));
            assert_eq!(params.get(b"SCRIPT_NAME"), Some(&b""[..]));
            assert_eq!(params.get(b"HTTP_HOST"), Some(&b"localhost"[..]));
        }

        #[test]
        fn iis_vector_post_at_id_255_then_wrap_to_1_gives_exact_bytes() {
            let t = check_vector(
                &Config::iis(),
                include_str!("../../../tests/vectors/iis_post_id_wrap.hex"),
                include_str!("../../../tests/vectors/iis_post_id_wrap.out.hex"),
            );
            let params = request_params(&t, 255).expect("request");
            assert_eq!(params.get(b"HTTP_COOKIE"), Some(&[b'c'; 130][..]));
            assert_eq!(params.get(b"HTTPS"), Some(&b"off"[..]));
            assert_eq!(params.get(b"CONTENT_LENGTH"), Some(&b"7"[..]));
            assert!(request_params(&t, 1).is_some());
        }

        #[test]
        fn haproxy_vector_get_values_and_multiplexed_ids_give_exact_bytes() {
            let t = check_vector(
                &Config::multiplexing(8),
                include_str!("../../../tests/vectors/haproxy_get_values_mpx.hex"),
                include_str!("../../../tests/vectors/haproxy_get_values_mpx.out.hex"),
            );
            assert_eq!(
                request_params(&t, 257).and_then(|p| p.get(b"REQUEST_METHOD")),
                Some(&b"POST"[..])
            );
            assert!(t.events.contains(&Event::Abort { id: 257 }));
            assert!(t.events.contains(&Event::Stdin {
                id: 257,
                data: Bytes::from_static(b"hi")
            }));
        }

        #[test]
        fn iis_like_client_600_sequential_requests_with_wrapping_ids_are_all_served() {
            let params = iis_params("/shop/cart?id=7");
            let refs = as_refs(&params);
            let mut wire = Wire::new();
            let mut ids = Vec::new();
            for n in 0..600u32 {
                let id = (n % 255 + 1) as u16;
                ids.push(id);
                // IIS: BEGIN alone; PARAMS + empty PARAMS + empty STDIN in one write.
                wire = wire.begin(id, true).params(id, &refs, 4096);
                wire = if n % 10 == 0 {
                    wire.stdin(id, &vec![b'p'; 20_000], 8192)
                } else {
                    wire.stdin(id, b"", 8192)
                };
            }
            let t = assert_any_split(&Config::iis(), Script::Echo, &wire.bytes);
            let served: Vec<u16> = t
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Request {
                        id,
                        keep_conn: true,
                        params,
                    } => {
                        assert_eq!(params.len(), 48);
                        Some(*id)
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(served, ids);
            assert_eq!(ids[255], 1, "ids wrap 255 -> 1");
            for id in 1..=255u16 {
                let expected = ids.iter().filter(|&&i| i == id).count();
                assert_eq!(t.end_requests(id).len(), expected, "id {id}");
                assert!(
                    t.out_types(id)
                        .iter()
                        .all(|k| matches!(k, RecordType::Stdout | RecordType::EndRequest))
                );
            }
            assert!(t.out(0).is_empty(), "nothing on id 0 toward IIS");
            assert!(!t.wants_close);
        }

        #[test]
        fn haproxy_like_client_asks_get_values_then_multiplexes_ids_above_255() {
            let mut wire =
                Wire::new().get_values(&[b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"]);
            let ids = [256u16, 1000, 65535, 40000];
            for &id in &ids {
                wire =
                    wire.begin(id, true)
                        .record(RecordType::Params, id, b"\x0e\x04REQUEST_METHOD");
            }
            for &id in ids.iter().rev() {
                wire = wire
                    .record(RecordType::Params, id, b"POST")
                    .record(RecordType::Params, id, b"")
                    .record(RecordType::Stdin, id, &id.to_be_bytes());
            }
            wire = wire.abort(1000);
            for &id in &ids {
                wire = wire.record(RecordType::Stdin, id, b"");
            }
            let t = assert_any_split(&Config::multiplexing(16), Script::Echo, &wire.bytes);
            assert_eq!(
                t.get_values_results()[0][2],
                (b"FCGI_MPXS_CONNS".to_vec(), b"1".to_vec())
            );
            for &id in &ids {
                assert_eq!(
                    ended_with(&t, id),
                    Some(ProtocolStatus::RequestComplete),
                    "id {id}"
                );
                let params = request_params(&t, id).expect("request");
                assert_eq!(params.get(b"REQUEST_METHOD"), Some(&b"POST"[..]));
            }
            assert!(t.events.contains(&Event::Abort { id: 1000 }));
            let mut expected = b"Status: 200\r\n\r\n".to_vec();
            expected.extend_from_slice(&65535u16.to_be_bytes());
            assert_eq!(t.stdout(65535), expected);
            assert!(t.stdout(1000).is_empty());
        }

        #[test]
        fn ten_thousand_pipelined_requests_on_id_1_are_served_in_order() {
            let one = Wire::new()
                .begin(1, true)
                .params(1, HELLO, 64)
                .stdin(1, b"", 1)
                .bytes;
            let wire = one.repeat(10_000);
            let mut conn = Connection::new(Config::generic(4));
            let mut served = 0;
            for chunk in wire.chunks(4093) {
                conn.recv(chunk).unwrap();
                while let Some(event) = conn.poll_event() {
                    if let Event::StdinEnd { id } = event {
                        conn.end_request(id, 0).unwrap();
                        served += 1;
                    }
                }
                let n = conn.pending_output().len();
                conn.consume_output(n);
            }
            assert_eq!(served, 10_000);
        }

        #[test]
        fn upload_of_64_mib_in_8_kib_records_keeps_the_input_buffer_small() {
            let mut conn = Connection::new(Config::iis());
            conn.recv(&Wire::new().begin(1, true).params(1, HELLO, 64).bytes)
                .unwrap();
            let record = Wire::new().record(RecordType::Stdin, 1, &[7u8; 8192]).bytes;
            let read = record.repeat(8);
            let mut total = 0usize;
            for _ in 0..(64 * 1024 * 1024 / (8 * 8192)) {
                conn.recv(&read).unwrap();
                while let Some(event) = conn.poll_event() {
                    if let Event::Stdin { data, .. } = event {
                        total += data.len();
                    }
                }
                assert!(
                    conn.input.capacity() <= 4 * read.len(),
                    "{}",
                    conn.input.capacity()
                );
            }
            assert_eq!(total, 64 * 1024 * 1024);
        }

        #[test]
        fn config_limits_default_to_documented_constants() {
            let l = Limits::default();
            assert_eq!(
                (
                    l.max_name_len,
                    l.max_value_len,
                    l.max_params_len,
                    l.max_pairs
                ),
                (1024, 65536, 1 << 20, 10_000)
            );
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::runtime::fastcgi::testkit::{
        Script, allocated_by, arb_conversation_record, run_chunks, wire_of,
    };
    use proptest::prelude::*;

    fn configs() -> [Config; 3] {
        [Config::iis(), Config::generic(8), Config::multiplexing(8)]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn random_conversations_give_the_same_transcript_under_any_split(
            records in proptest::collection::vec(arb_conversation_record(), 0..60),
            sizes in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let wire = wire_of(&records);
            // A multiplexing client that also asks for close-after-request makes the outcome
            // depend on timing (see `Connection`); such clients keep the connection.
            let keep: Vec<_> = records
                .iter()
                .cloned()
                .map(|(kind, id, mut content, padding)| {
                    if kind == 1 && content.len() > 2 {
                        content[2] |= 1;
                    }
                    (kind, id, content, padding)
                })
                .collect();
            let mpx_wire = wire_of(&keep);
            for config in configs() {
                let wire = if config.multiplex { &mpx_wire } else { &wire };
                let whole = run_chunks(&config, Script::Echo, [&wire[..]]);
                let trickle = run_chunks(&config, Script::Echo, wire.chunks(1));
                prop_assert_eq!(&trickle, &whole);
                let mut chunks = Vec::new();
                let mut rest = &wire[..];
                for i in 0.. {
                    if rest.is_empty() {
                        break;
                    }
                    let (a, b) = rest.split_at(sizes[i % sizes.len()].min(rest.len()));
                    chunks.push(a);
                    rest = b;
                }
                prop_assert_eq!(&run_chunks(&config, Script::Echo, chunks), &whole);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_memory_stays_bounded(
            bytes in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk in 1usize..200,
        ) {
            for config in configs() {
                let (_, allocated) = allocated_by(|| {
                    run_chunks(&config, Script::Echo, bytes.chunks(chunk))
                });
                // A header may make the decoder reserve one record (≤ 65,798 bytes) a few
                // times over; beyond that, memory follows the input, not its claims.
                prop_assert!(
                    allocated <= 4 * crate::runtime::fastcgi::MAX_RECORD_LEN + 64 * bytes.len() + 65_536,
                    "allocated {} for {} bytes", allocated, bytes.len()
                );
            }
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_prefix_never_panic(
            records in proptest::collection::vec(arb_conversation_record(), 0..10),
            tail in proptest::collection::vec(any::<u8>(), 0..500),
        ) {
            let mut wire = wire_of(&records);
            wire.extend_from_slice(&tail);
            for config in configs() {
                let t = run_chunks(&config, Script::Echo, wire.chunks(17));
                // Whatever happened, every END_REQUEST is well formed and single per request.
                for records in t.output.values() {
                    for r in records {
                        prop_assert!(r.header().record_type != RecordType::UnknownType
                            || config.unknown_type_replies);
                    }
                }
            }
        }
    }
}
