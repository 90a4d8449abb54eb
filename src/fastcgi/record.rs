//! Record framing: the 8-byte header, the record types and fixed-size bodies, the low-level
//! [`Decoder`], and the output framers that split a stream into records.
//!
//! Nothing here keeps request state; [`super::Connection`] does. No I/O: the decoder works on
//! a [`BytesMut`] the caller filled, the framers write into a `Vec<u8>` or hand back headers
//! for a vectored write.

use std::fmt;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};

/// `FCGI_VERSION_1`, the only version this codec reads or writes.
pub const VERSION_1: u8 = 1;
/// Length of a record header.
pub const HEADER_LEN: usize = 8;
/// Largest `contentLength` a record can carry (16 bits).
pub const MAX_CONTENT_LEN: usize = 65_535;
/// Largest `paddingLength` (8 bits).
pub const MAX_PADDING_LEN: usize = 255;
/// Largest record on the wire: header, content and padding. The decoder never buffers more
/// than this for one record.
pub const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_CONTENT_LEN + MAX_PADDING_LEN;
/// Content bytes per output stream record: the largest multiple of 8 that fits in 16 bits, so
/// that full records need no padding (`fastcgi-protocol.md` §9).
pub const MAX_STREAM_CHUNK: usize = 65_528;
/// `FCGI_NULL_REQUEST_ID`: the id of management records.
pub const NULL_REQUEST_ID: u16 = 0;
/// `FCGI_KEEP_CONN`, bit 0 of the `BEGIN_REQUEST` flags.
pub const KEEP_CONN: u8 = 1;
/// Length of the bytes [`end_request_bytes`] returns: an empty stream record plus
/// `END_REQUEST`.
pub const END_REQUEST_BYTES_LEN: usize = 2 * HEADER_LEN + 8;

/// Zero bytes used as padding.
static ZEROS: [u8; 8] = [0; 8];

/// A FastCGI record type (`fastcgi-protocol.md` §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// 1, web server → app: starts a request.
    BeginRequest,
    /// 2, web server → app: aborts a request.
    AbortRequest,
    /// 3, app → web server: ends a request.
    EndRequest,
    /// 4, web server → app: the name-value pair stream.
    Params,
    /// 5, web server → app: the request body stream.
    Stdin,
    /// 6, app → web server: the CGI response stream.
    Stdout,
    /// 7, app → web server: the error stream.
    Stderr,
    /// 8, web server → app: FILTER data (never used by a responder).
    Data,
    /// 9, management query.
    GetValues,
    /// 10, management answer.
    GetValuesResult,
    /// 11, management answer to an unknown management type.
    UnknownType,
    /// Any other type byte. [`RecordType::from`] never yields `Unknown` for 1–11.
    Unknown(u8),
}

impl From<u8> for RecordType {
    fn from(byte: u8) -> Self {
        match byte {
            1 => Self::BeginRequest,
            2 => Self::AbortRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            8 => Self::Data,
            9 => Self::GetValues,
            10 => Self::GetValuesResult,
            11 => Self::UnknownType,
            other => Self::Unknown(other),
        }
    }
}

impl From<RecordType> for u8 {
    fn from(kind: RecordType) -> u8 {
        match kind {
            RecordType::BeginRequest => 1,
            RecordType::AbortRequest => 2,
            RecordType::EndRequest => 3,
            RecordType::Params => 4,
            RecordType::Stdin => 5,
            RecordType::Stdout => 6,
            RecordType::Stderr => 7,
            RecordType::Data => 8,
            RecordType::GetValues => 9,
            RecordType::GetValuesResult => 10,
            RecordType::UnknownType => 11,
            RecordType::Unknown(other) => other,
        }
    }
}

/// The role in a `BEGIN_REQUEST` body. Only [`Role::Responder`] is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// 1: the role iiswsgi implements.
    Responder,
    /// 2: refused with `UNKNOWN_ROLE`.
    Authorizer,
    /// 3: refused with `UNKNOWN_ROLE`.
    Filter,
    /// Anything else, refused with `UNKNOWN_ROLE`.
    Unknown(u16),
}

impl From<u16> for Role {
    fn from(value: u16) -> Self {
        match value {
            1 => Self::Responder,
            2 => Self::Authorizer,
            3 => Self::Filter,
            other => Self::Unknown(other),
        }
    }
}

impl From<Role> for u16 {
    fn from(role: Role) -> u16 {
        match role {
            Role::Responder => 1,
            Role::Authorizer => 2,
            Role::Filter => 3,
            Role::Unknown(other) => other,
        }
    }
}

/// The `protocolStatus` of an `END_REQUEST` body (`fastcgi-protocol.md` §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolStatus {
    /// 0: normal end, also used after an abort.
    RequestComplete,
    /// 1: a second request on a connection that does not multiplex.
    CantMpxConn,
    /// 2: the application cannot take the request.
    Overloaded,
    /// 3: the role is not supported.
    UnknownRole,
    /// Any other value (only seen when decoding what some other app sent).
    Unknown(u8),
}

impl From<u8> for ProtocolStatus {
    fn from(byte: u8) -> Self {
        match byte {
            0 => Self::RequestComplete,
            1 => Self::CantMpxConn,
            2 => Self::Overloaded,
            3 => Self::UnknownRole,
            other => Self::Unknown(other),
        }
    }
}

impl From<ProtocolStatus> for u8 {
    fn from(status: ProtocolStatus) -> u8 {
        match status {
            ProtocolStatus::RequestComplete => 0,
            ProtocolStatus::CantMpxConn => 1,
            ProtocolStatus::Overloaded => 2,
            ProtocolStatus::UnknownRole => 3,
            ProtocolStatus::Unknown(other) => other,
        }
    }
}

/// A framing fault: the byte stream can no longer be trusted and the connection must close
/// (in IIS mode the process exits, `iis-runtime.md` §5).
///
/// Oversized or malformed *params* are not framing faults; they reject one request
/// ([`super::Rejection`]) and the connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The version byte is not 1. This is how a desynchronised stream usually shows itself,
    /// so the codec refuses it rather than guessing where the next record starts. The byte
    /// seen is kept for the log.
    UnsupportedVersion(u8),
    /// A `BEGIN_REQUEST` record with fewer than 8 content bytes: its role and flags are
    /// unknown, so no correct answer exists.
    BeginRequestTooShort,
    /// The peer closed the connection in the middle of a record.
    TruncatedRecord,
}

impl DecodeError {
    /// A short static description, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnsupportedVersion(_) => "FastCGI record with a version other than 1",
            Self::BeginRequestTooShort => "FastCGI BEGIN_REQUEST record shorter than 8 bytes",
            Self::TruncatedRecord => "connection closed in the middle of a FastCGI record",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DecodeError {}

/// A value that cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EncodeError {
    /// Record content longer than [`MAX_CONTENT_LEN`].
    ContentTooLong,
    /// A name or value longer than 2³¹−1 bytes.
    PairTooLong,
}

impl EncodeError {
    /// A short static description, for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ContentTooLong => "FastCGI record content longer than 65535 bytes",
            Self::PairTooLong => "FastCGI name or value longer than 2^31-1 bytes",
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for EncodeError {}

/// The 8-byte record header (`fastcgi-protocol.md` §1.1). The reserved byte is not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// The version byte; the decoder only lets [`VERSION_1`] through.
    pub version: u8,
    /// The record type.
    pub record_type: RecordType,
    /// 0 for management records, otherwise the request id (echoed exactly).
    pub request_id: u16,
    /// Content bytes after the header.
    pub content_length: u16,
    /// Ignored bytes after the content.
    pub padding_length: u8,
}

impl RecordHeader {
    /// A version-1 header whose padding brings the record to a multiple of 8 bytes.
    pub const fn new(record_type: RecordType, request_id: u16, content_length: u16) -> Self {
        Self {
            version: VERSION_1,
            record_type,
            request_id,
            content_length,
            padding_length: padding_for(content_length as usize) as u8,
        }
    }

    /// Reads a header. Every byte pattern is a header; the version is checked by the decoder.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Self {
            version: bytes[0],
            record_type: RecordType::from(bytes[1]),
            request_id: u16::from_be_bytes([bytes[2], bytes[3]]),
            content_length: u16::from_be_bytes([bytes[4], bytes[5]]),
            padding_length: bytes[6],
        }
    }

    /// The header's wire form (reserved byte 0).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let id = self.request_id.to_be_bytes();
        let len = self.content_length.to_be_bytes();
        [
            self.version,
            u8::from(self.record_type),
            id[0],
            id[1],
            len[0],
            len[1],
            self.padding_length,
            0,
        ]
    }

    /// The whole record's length on the wire: header, content and padding.
    pub const fn record_len(&self) -> usize {
        HEADER_LEN + self.content_length as usize + self.padding_length as usize
    }
}

/// Padding that brings `content_len` to a multiple of 8: `(8 − len mod 8) mod 8`.
pub const fn padding_for(content_len: usize) -> usize {
    (8 - content_len % 8) % 8
}

/// One decoded record: its header and its content (padding dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    header: RecordHeader,
    content: Bytes,
}

impl Record {
    /// A version-1 record padded to 8-byte alignment.
    pub fn new(
        record_type: RecordType,
        request_id: u16,
        content: impl Into<Bytes>,
    ) -> Result<Self, EncodeError> {
        let content = content.into();
        let len = u16::try_from(content.len()).map_err(|_| EncodeError::ContentTooLong)?;
        Ok(Self {
            header: RecordHeader::new(record_type, request_id, len),
            content,
        })
    }

    /// The header as read (or as built by [`Record::new`]).
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The content bytes, without padding.
    pub fn content(&self) -> &Bytes {
        &self.content
    }

    /// Appends the record's wire form, padding included, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.content);
        out.resize(out.len() + usize::from(self.header.padding_length), 0);
    }
}

/// The low-level record decoder: takes whole records off the front of a buffer.
///
/// It accepts any padding (0–255, on empty records too) and any split of the input: until a
/// whole record (header, content and padding) is buffered it returns `Ok(None)` and consumes
/// nothing. It never buffers more than [`MAX_RECORD_LEN`] bytes for one record; it reserves
/// room for the rest of a record once its header is known, so filling a large record from
/// many small reads stays linear.
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    _private: (),
}

impl Decoder {
    /// A decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next whole record off `buf`.
    ///
    /// `Ok(None)`: more bytes are needed. `Err`: a framing fault; the stream is unusable.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Record>, DecodeError> {
        let Some(header) = peek_header(buf)? else {
            return Ok(None);
        };
        let total = header.record_len();
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut record = buf.split_to(total);
        record.advance(HEADER_LEN);
        record.truncate(usize::from(header.content_length));
        Ok(Some(Record {
            header,
            content: record.freeze(),
        }))
    }
}

/// Reads the header at the front of `buf` without consuming it; `Ok(None)` if fewer than 8
/// bytes are buffered, `Err` if the version is not 1.
pub(crate) fn peek_header(buf: &[u8]) -> Result<Option<RecordHeader>, DecodeError> {
    let Some(bytes) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = RecordHeader::parse(bytes);
    if header.version != VERSION_1 {
        return Err(DecodeError::UnsupportedVersion(header.version));
    }
    Ok(Some(header))
}

/// The body of a `BEGIN_REQUEST` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BeginRequestBody {
    /// The requested role.
    pub role: Role,
    /// The flags byte; bit 0 is [`KEEP_CONN`].
    pub flags: u8,
}

impl BeginRequestBody {
    /// Reads the first 8 bytes of `content`; `None` if there are fewer. Extra bytes are
    /// ignored.
    pub fn parse(content: &[u8]) -> Option<Self> {
        let bytes = content.first_chunk::<8>()?;
        Some(Self {
            role: Role::from(u16::from_be_bytes([bytes[0], bytes[1]])),
            flags: bytes[2],
        })
    }

    /// Whether the web server keeps the connection open after the request.
    pub const fn keep_conn(&self) -> bool {
        self.flags & KEEP_CONN != 0
    }

    /// The body's wire form.
    pub fn to_bytes(&self) -> [u8; 8] {
        let role = u16::from(self.role).to_be_bytes();
        [role[0], role[1], self.flags, 0, 0, 0, 0, 0]
    }
}

/// The body of an `END_REQUEST` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndRequestBody {
    /// The application's exit status (0 for success).
    pub app_status: u32,
    /// How the request ended at the protocol level.
    pub protocol_status: ProtocolStatus,
}

impl EndRequestBody {
    /// Reads the first 8 bytes of `content`; `None` if there are fewer.
    pub fn parse(content: &[u8]) -> Option<Self> {
        let bytes = content.first_chunk::<8>()?;
        Some(Self {
            app_status: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            protocol_status: ProtocolStatus::from(bytes[4]),
        })
    }

    /// The body's wire form.
    pub fn to_bytes(&self) -> [u8; 8] {
        let status = self.app_status.to_be_bytes();
        [
            status[0],
            status[1],
            status[2],
            status[3],
            u8::from(self.protocol_status),
            0,
            0,
            0,
        ]
    }
}

/// Appends `END_REQUEST{app_status, protocol_status}` for `request_id` (16 bytes) to `out`.
pub fn encode_end_request(
    out: &mut Vec<u8>,
    request_id: u16,
    app_status: u32,
    protocol_status: ProtocolStatus,
) {
    let header = RecordHeader::new(RecordType::EndRequest, request_id, 8);
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(
        &EndRequestBody {
            app_status,
            protocol_status,
        }
        .to_bytes(),
    );
}

/// The 24 bytes that finish a response, in one buffer: the empty `STDOUT` record that ends
/// the stream, then `END_REQUEST{app_status, protocol_status}`.
pub fn end_request_bytes(
    request_id: u16,
    app_status: u32,
    protocol_status: ProtocolStatus,
) -> [u8; END_REQUEST_BYTES_LEN] {
    let mut out = [0u8; END_REQUEST_BYTES_LEN];
    out[..HEADER_LEN]
        .copy_from_slice(&RecordHeader::new(RecordType::Stdout, request_id, 0).to_bytes());
    out[HEADER_LEN..2 * HEADER_LEN]
        .copy_from_slice(&RecordHeader::new(RecordType::EndRequest, request_id, 8).to_bytes());
    out[2 * HEADER_LEN..].copy_from_slice(
        &EndRequestBody {
            app_status,
            protocol_status,
        }
        .to_bytes(),
    );
    out
}

/// Appends `data` to `out` as stream records of type `record_type` for `request_id`: records
/// of [`MAX_STREAM_CHUNK`] content bytes, the last one padded to 8-byte alignment.
///
/// Empty `data` appends nothing: an empty record would end the stream. Use
/// [`end_request_bytes`] (or [`encode_stream_end`]) for that.
pub fn encode_stream(out: &mut Vec<u8>, record_type: RecordType, request_id: u16, data: &[u8]) {
    out.reserve(stream_encoded_len(data.len()));
    for frame in stream_frames(record_type, request_id, data.len()) {
        out.extend_from_slice(&frame.header);
        out.extend_from_slice(&data[frame.body.clone()]);
        out.extend_from_slice(frame.padding);
    }
}

/// Appends the empty record that ends a stream of type `record_type` for `request_id`.
pub fn encode_stream_end(out: &mut Vec<u8>, record_type: RecordType, request_id: u16) {
    out.extend_from_slice(&RecordHeader::new(record_type, request_id, 0).to_bytes());
}

/// Bytes [`encode_stream`] writes for `len` bytes of data.
pub const fn stream_encoded_len(len: usize) -> usize {
    let full = len / MAX_STREAM_CHUNK;
    let rest = len % MAX_STREAM_CHUNK;
    let mut total = full * (HEADER_LEN + MAX_STREAM_CHUNK);
    if rest > 0 {
        total += HEADER_LEN + rest + padding_for(rest);
    }
    total
}

/// The framing of `len` bytes of stream data, without touching the data: for a vectored
/// write of `header`, `&data[body]`, `padding` per [`Frame`], so the application's bytes are
/// never copied. Empty `len` yields no frame.
pub fn stream_frames(record_type: RecordType, request_id: u16, len: usize) -> StreamFrames {
    StreamFrames {
        record_type,
        request_id,
        len,
        offset: 0,
    }
}

/// Iterator over the records that carry one chunk of stream data; see [`stream_frames`].
#[derive(Debug, Clone)]
pub struct StreamFrames {
    record_type: RecordType,
    request_id: u16,
    len: usize,
    offset: usize,
}

/// One output record as three slices for a vectored write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The 8-byte record header.
    pub header: [u8; HEADER_LEN],
    /// The range of the caller's data that forms this record's content.
    pub body: Range<usize>,
    /// Zero bytes to write after the content (empty except on the last record).
    pub padding: &'static [u8],
}

impl Frame {
    /// Bytes this record occupies on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.body.len() + self.padding.len()
    }
}

impl Iterator for StreamFrames {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        if self.offset >= self.len {
            return None;
        }
        let chunk = (self.len - self.offset).min(MAX_STREAM_CHUNK);
        let start = self.offset;
        self.offset += chunk;
        // `chunk` ≤ MAX_STREAM_CHUNK < 65536, so the cast cannot truncate.
        let header = RecordHeader::new(self.record_type, self.request_id, chunk as u16);
        Some(Frame {
            header: header.to_bytes(),
            body: start..start + chunk,
            padding: &ZEROS[..usize::from(header.padding_length)],
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.len - self.offset).div_ceil(MAX_STREAM_CHUNK);
        (n, Some(n))
    }
}

impl ExactSizeIterator for StreamFrames {}
