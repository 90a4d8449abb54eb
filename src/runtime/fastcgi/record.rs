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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fastcgi::testkit::{allocated_by, raw_record};
    use proptest::prelude::*;

    /// Decodes `wire` fed in the given chunks with the low-level decoder.
    fn decode_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> (Vec<Record>, Option<DecodeError>, usize) {
        let mut decoder = Decoder::new();
        let mut buf = BytesMut::new();
        let mut records = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(record)) => records.push(record),
                    Ok(None) => break,
                    // What is left after a fault depends on the split; report none.
                    Err(e) => return (records, Some(e), 0),
                }
            }
        }
        (records, None, buf.len())
    }

    /// The low-level decoder's own split helper: whole, byte by byte, every two-way split.
    fn decode_any_split(wire: &[u8]) -> (Vec<Record>, Option<DecodeError>, usize) {
        let whole = decode_chunks([wire]);
        assert_eq!(decode_chunks(wire.chunks(1)), whole, "byte by byte");
        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            assert_eq!(decode_chunks([a, b]), whole, "split at {at}");
        }
        whole
    }

    mod header {
        use super::*;

        #[test]
        fn header_round_trips_every_field() {
            let header = RecordHeader {
                version: 1,
                record_type: RecordType::Stdout,
                request_id: 0xABCD,
                content_length: 0x1234,
                padding_length: 0xFE,
            };
            let bytes = header.to_bytes();
            assert_eq!(bytes, [1, 6, 0xAB, 0xCD, 0x12, 0x34, 0xFE, 0]);
            assert_eq!(RecordHeader::parse(&bytes), header);
            assert_eq!(header.record_len(), 8 + 0x1234 + 0xFE);
        }

        #[test]
        fn new_header_pads_records_to_a_multiple_of_8() {
            for len in [0u16, 1, 7, 8, 9, 65_528, 65_535] {
                let h = RecordHeader::new(RecordType::Stdout, 1, len);
                assert_eq!(h.record_len() % 8, 0, "len {len}");
                assert!(h.padding_length < 8);
            }
        }

        #[test]
        fn record_type_byte_round_trips_and_unknown_keeps_its_value() {
            for byte in 0..=255u8 {
                let kind = RecordType::from(byte);
                assert_eq!(u8::from(kind), byte);
                assert_eq!(
                    matches!(kind, RecordType::Unknown(_)),
                    !(1..=11).contains(&byte)
                );
            }
            for value in [0u16, 1, 2, 3, 4, 0xFFFF] {
                assert_eq!(u16::from(Role::from(value)), value);
            }
            for byte in 0..=255u8 {
                assert_eq!(u8::from(ProtocolStatus::from(byte)), byte);
            }
        }

        #[test]
        fn begin_and_end_request_bodies_round_trip() {
            let begin = BeginRequestBody {
                role: Role::Unknown(0xFFFF),
                flags: KEEP_CONN,
            };
            assert_eq!(BeginRequestBody::parse(&begin.to_bytes()), Some(begin));
            assert!(begin.keep_conn());
            assert_eq!(BeginRequestBody::parse(&[0, 1, 1]), None);
            let end = EndRequestBody {
                app_status: 0xDEAD_BEEF,
                protocol_status: ProtocolStatus::CantMpxConn,
            };
            assert_eq!(EndRequestBody::parse(&end.to_bytes()), Some(end));
        }
    }

    mod decoder {
        use super::*;

        #[test]
        fn records_with_any_padding_decode_identically_under_any_split() {
            let mut wire = Vec::new();
            for (i, padding) in [0u8, 1, 7, 8, 255, 0, 255].into_iter().enumerate() {
                let content = vec![i as u8; i * 3];
                wire.extend(raw_record(1, 5, 300, &content, padding));
            }
            let (records, error, left) = decode_any_split(&wire);
            assert_eq!(error, None);
            assert_eq!(left, 0);
            assert_eq!(records.len(), 7);
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.content().len(), i * 3);
                assert_eq!(r.header().request_id, 300);
            }
        }

        #[test]
        fn incomplete_record_is_not_an_error_and_consumes_nothing() {
            let wire = raw_record(1, 4, 1, b"abcdef", 2);
            for cut in 0..wire.len() {
                let mut buf = BytesMut::from(&wire[..cut]);
                assert_eq!(Decoder::new().decode(&mut buf), Ok(None), "cut {cut}");
                assert_eq!(buf.len(), cut);
            }
        }

        #[test]
        fn bad_version_is_reported_as_soon_as_the_header_is_complete() {
            let mut wire = raw_record(1, 5, 1, b"ok", 0);
            wire.extend(raw_record(0, 5, 1, b"no", 0));
            let (records, error, left) = decode_any_split(&wire);
            assert_eq!(records.len(), 1);
            assert_eq!(error, Some(DecodeError::UnsupportedVersion(0)));
            assert_eq!(left, 0);
        }

        #[test]
        fn decoder_reserves_room_for_the_whole_record_once_its_header_is_known() {
            let wire = raw_record(1, 5, 1, &[0u8; 65_535], 255);
            let mut buf = BytesMut::from(&wire[..8]);
            assert_eq!(Decoder::new().decode(&mut buf), Ok(None));
            assert!(buf.capacity() >= wire.len());
        }
    }

    mod framing {
        use super::*;

        #[test]
        fn stream_of_exactly_65528_bytes_is_one_unpadded_record() {
            let frames: Vec<Frame> =
                stream_frames(RecordType::Stdout, 1, MAX_STREAM_CHUNK).collect();
            assert_eq!(frames.len(), 1);
            assert!(frames[0].padding.is_empty());
            let frames: Vec<Frame> =
                stream_frames(RecordType::Stdout, 1, MAX_STREAM_CHUNK + 1).collect();
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[1].body, MAX_STREAM_CHUNK..MAX_STREAM_CHUNK + 1);
            assert_eq!(frames[1].padding.len(), 7);
            assert_eq!(frames[1].wire_len(), 16);
        }

        #[test]
        fn stream_encoded_len_matches_what_encode_stream_writes() {
            for len in [0usize, 1, 8, 65_527, 65_528, 65_529, 131_056, 1 << 20] {
                let mut out = Vec::new();
                encode_stream(&mut out, RecordType::Stdout, 1, &vec![1u8; len]);
                assert_eq!(out.len(), stream_encoded_len(len), "len {len}");
            }
        }

        #[test]
        fn end_request_bytes_are_an_empty_stdout_then_end_request() {
            let bytes = end_request_bytes(0x0102, 7, ProtocolStatus::RequestComplete);
            let (records, error, left) = decode_chunks([&bytes[..]]);
            assert_eq!((error, left), (None, 0));
            assert_eq!(records.len(), 2);
            assert_eq!(records[0].header().record_type, RecordType::Stdout);
            assert!(records[0].content().is_empty());
            assert_eq!(
                EndRequestBody::parse(records[1].content()),
                Some(EndRequestBody {
                    app_status: 7,
                    protocol_status: ProtocolStatus::RequestComplete
                })
            );
        }

        #[test]
        fn record_new_refuses_content_over_65535_bytes() {
            assert_eq!(
                Record::new(RecordType::Stdout, 1, vec![0u8; 65_536]),
                Err(EncodeError::ContentTooLong)
            );
            assert!(Record::new(RecordType::Stdout, 1, vec![0u8; 65_535]).is_ok());
        }
    }

    mod properties {
        use super::*;

        fn arb_record() -> impl Strategy<Value = Record> {
            (
                any::<u8>(),
                any::<u16>(),
                proptest::collection::vec(any::<u8>(), 0..600),
                any::<u8>(),
            )
                .prop_map(|(kind, id, content, padding)| {
                    let mut record =
                        Record::new(RecordType::from(kind), id, content).expect("short content");
                    record.header.padding_length = padding;
                    record
                })
        }

        proptest! {
            #[test]
            fn encoded_records_decode_to_the_same_records_under_any_chunking(
                records in proptest::collection::vec(arb_record(), 0..12),
                sizes in proptest::collection::vec(1usize..700, 1..10),
            ) {
                let mut wire = Vec::new();
                for r in &records {
                    r.encode(&mut wire);
                }
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
                let (decoded, error, left) = decode_chunks(chunks);
                prop_assert_eq!(error, None);
                prop_assert_eq!(left, 0);
                prop_assert_eq!(decoded, records);
            }

            #[test]
            fn arbitrary_bytes_never_panic_the_decoder_and_buffer_at_most_one_record(
                bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            ) {
                let (_, error, left) = decode_chunks(bytes.chunks(13));
                if error.is_none() {
                    prop_assert!(left < MAX_RECORD_LEN);
                }
            }

            #[test]
            fn stream_frames_cover_the_data_exactly_in_aligned_records(len in 0usize..300_000) {
                let mut next = 0;
                for frame in stream_frames(RecordType::Stdout, 9, len) {
                    prop_assert_eq!(frame.body.start, next);
                    prop_assert!(frame.body.len() <= MAX_STREAM_CHUNK && !frame.body.is_empty());
                    prop_assert_eq!(frame.wire_len() % 8, 0);
                    next = frame.body.end;
                }
                prop_assert_eq!(next, len);
            }
        }

        #[test]
        fn decoding_a_header_allocates_nothing() {
            let wire = raw_record(1, 5, 1, b"", 0);
            let mut buf = BytesMut::from(&wire[..4]);
            let (result, bytes) = allocated_by(|| Decoder::new().decode(&mut buf));
            assert_eq!(result, Ok(None));
            assert_eq!(bytes, 0);
        }
    }
}
