//! FastCGI records and name–value pairs (`fastcgi-protocol.md` §1–§2), encoded and decoded the
//! way a test client needs them: every header byte may be chosen (a wrong version, non-zero
//! padding, hostile length claims), and replies are read whole, one record at a time or
//! through a buffer.

use std::io::{self, Read};

/// `FCGI_BEGIN_REQUEST`.
pub const BEGIN_REQUEST: u8 = 1;
/// `FCGI_ABORT_REQUEST`.
pub const ABORT_REQUEST: u8 = 2;
/// `FCGI_END_REQUEST`.
pub const END_REQUEST: u8 = 3;
/// `FCGI_PARAMS`.
pub const PARAMS: u8 = 4;
/// `FCGI_STDIN`.
pub const STDIN: u8 = 5;
/// `FCGI_STDOUT`.
pub const STDOUT: u8 = 6;
/// `FCGI_STDERR`.
pub const STDERR: u8 = 7;
/// `FCGI_DATA`.
pub const DATA: u8 = 8;
/// `FCGI_GET_VALUES`.
pub const GET_VALUES: u8 = 9;
/// `FCGI_GET_VALUES_RESULT`.
pub const GET_VALUES_RESULT: u8 = 10;
/// `FCGI_UNKNOWN_TYPE`.
pub const UNKNOWN_TYPE: u8 = 11;
/// Role `FCGI_RESPONDER`.
pub const RESPONDER: u16 = 1;
/// Flag `FCGI_KEEP_CONN`.
pub const KEEP_CONN: u8 = 1;
/// Bytes in a record header.
pub const HEADER_LEN: usize = 8;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends one record with every byte chosen by the caller: the `version` byte, and `padding`
/// bytes of value `fill` after the content (receivers must ignore the padding's value).
///
/// Panics if `content` is over 65535 bytes: no client can send that in one record.
pub fn push_record_exact(
    out: &mut Vec<u8>,
    version: u8,
    kind: u8,
    id: u16,
    content: &[u8],
    padding: u8,
    fill: u8,
) {
    let len = u16::try_from(content.len()).expect("record content over 65535 bytes");
    out.extend_from_slice(&[version, kind]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[padding, 0]);
    out.extend_from_slice(content);
    out.extend(std::iter::repeat_n(fill, usize::from(padding)));
}

/// Appends one version-1 record followed by `padding` zero bytes.
pub fn push_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8], padding: u8) {
    push_record_exact(out, 1, kind, id, content, padding, 0);
}

/// One version-1 record without padding, as bytes.
pub fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + content.len());
    push_record(&mut out, kind, id, content, 0);
    out
}

/// `BEGIN_REQUEST{role, flags}`: 16 bytes.
pub fn begin_request(id: u16, role: u16, flags: u8) -> Vec<u8> {
    let r = role.to_be_bytes();
    record(BEGIN_REQUEST, id, &[r[0], r[1], flags, 0, 0, 0, 0, 0])
}

/// How the records of a stream are padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding (IIS).
    None,
    /// Each record padded to a multiple of 8 bytes, as the spec recommends (nginx, libfcgi).
    Align8,
}

impl Padding {
    /// The padding after `content_len` bytes of content.
    pub fn after(self, content_len: usize) -> u8 {
        match self {
            Padding::None => 0,
            Padding::Align8 => ((8 - content_len % 8) % 8) as u8,
        }
    }
}

/// Appends `data` as records of `kind` of at most `max` content bytes, without the empty
/// record that ends a stream.
pub fn push_stream(out: &mut Vec<u8>, kind: u8, id: u16, data: &[u8], max: usize, pad: Padding) {
    for chunk in data.chunks(max.max(1)) {
        push_record(out, kind, id, chunk, pad.after(chunk.len()));
    }
}

/// A whole stream (PARAMS or STDIN): `data` as records of at most `max` content bytes, then
/// the empty record that ends it.
pub fn stream(kind: u8, id: u16, data: &[u8], max: usize, pad: Padding) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + HEADER_LEN * (2 + data.len() / max.max(1)));
    push_stream(&mut out, kind, id, data, max, pad);
    push_record(&mut out, kind, id, &[], 0);
    out
}

/// Appends a name–value length in its shortest form: 1 byte up to 127, else 4 bytes.
pub fn push_len(out: &mut Vec<u8>, len: usize) {
    if len <= 127 {
        out.push(len as u8);
    } else {
        push_long_len(out, u32::try_from(len).expect("pair length over 2^31"));
    }
}

/// Appends the 4-byte length form, whatever the length (hostile claims use this).
pub fn push_long_len(out: &mut Vec<u8>, len: u32) {
    out.extend_from_slice(&(len | 0x8000_0000).to_be_bytes());
}

/// Appends one name–value pair, each length in its shortest form.
pub fn push_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    push_len(out, name.len());
    push_len(out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Appends one name–value pair with the 4-byte form for both lengths, whatever their size.
pub fn push_pair_long(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let long = |len: usize| u32::try_from(len).expect("pair length over 2^31");
    push_long_len(out, long(name.len()));
    push_long_len(out, long(value.len()));
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Which length form [`encode_pairs`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lengths {
    /// 1 byte up to 127, else 4 bytes.
    Shortest,
    /// Always 4 bytes (IIS's own choice for some variables; legal for any length).
    Long,
}

/// Encodes pairs into one PARAMS (or `GET_VALUES`) byte stream.
pub fn encode_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)], lengths: Lengths) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in pairs {
        match lengths {
            Lengths::Shortest => push_pair(&mut out, n.as_ref(), v.as_ref()),
            Lengths::Long => push_pair_long(&mut out, n.as_ref(), v.as_ref()),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// A decoded name–value pair.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Decodes a complete name–value byte stream.
pub fn decode_pairs(mut data: &[u8]) -> Result<Vec<Pair>, String> {
    fn len(data: &mut &[u8]) -> Result<usize, String> {
        let first = *data.first().ok_or("truncated length")?;
        if first & 0x80 == 0 {
            *data = &data[1..];
            Ok(usize::from(first))
        } else {
            let b: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or("truncated long length")?;
            *data = &data[4..];
            Ok((u32::from_be_bytes(b) & 0x7fff_ffff) as usize)
        }
    }
    let mut pairs = Vec::new();
    while !data.is_empty() {
        let n = len(&mut data)?;
        let v = len(&mut data)?;
        if data.len() < n.saturating_add(v) {
            return Err(format!("pair of {n}+{v} bytes overruns the stream"));
        }
        pairs.push((data[..n].to_vec(), data[n..n + v].to_vec()));
        data = &data[n + v..];
    }
    Ok(pairs)
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Version byte (IIS does not check it).
    pub version: u8,
    /// Record type.
    pub kind: u8,
    /// Request id.
    pub id: u16,
    /// Content.
    pub content: Vec<u8>,
    /// Padding length that followed the content.
    pub padding: u8,
}

/// `(content length, padding length)` from a record header.
fn lengths(header: &[u8]) -> (usize, u8) {
    (
        usize::from(u16::from_be_bytes([header[4], header[5]])),
        header[6],
    )
}

impl Record {
    fn from_parts(header: &[u8], content: Vec<u8>) -> Record {
        Record {
            version: header[0],
            kind: header[1],
            id: u16::from_be_bytes([header[2], header[3]]),
            content,
            padding: header[6],
        }
    }

    /// Parses one record from the front of `buf`: `Some((record, bytes used))`, or `None` if
    /// `buf` holds only part of one.
    pub fn parse(buf: &[u8]) -> Option<(Record, usize)> {
        let header = buf.get(..HEADER_LEN)?;
        let (len, padding) = lengths(header);
        let total = HEADER_LEN + len + usize::from(padding);
        let content = buf.get(HEADER_LEN..HEADER_LEN + len)?.to_vec();
        (buf.len() >= total).then(|| (Record::from_parts(header, content), total))
    }

    /// `(appStatus, protocolStatus)` of an `END_REQUEST` body.
    pub fn end_request(&self) -> Option<(u32, u8)> {
        let c = self.content.get(..5)?;
        Some((u32::from_be_bytes([c[0], c[1], c[2], c[3]]), c[4]))
    }
}

/// Reads exactly one record and nothing past it (so the caller may go on reading the same
/// stream by other means); `Ok(None)` on EOF at a record boundary, `UnexpectedEof` inside one.
pub fn read_record(r: &mut impl Read) -> io::Result<Option<Record>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        let n = r.read(&mut header[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF inside a record header",
                ))
            };
        }
        got += n;
    }
    let (len, padding) = lengths(&header);
    let mut content = vec![0u8; len + usize::from(padding)];
    r.read_exact(&mut content)?;
    content.truncate(len);
    Ok(Some(Record::from_parts(&header, content)))
}

/// Reads whole records from a byte stream, keeping what follows in a buffer (so a test can
/// tell whether anything came after a reply).
pub struct RecordReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> RecordReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        RecordReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// The wrapped reader.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Bytes read past the last returned record.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next record; `Ok(None)` on EOF at a record boundary, `UnexpectedEof` inside one.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            if let Some((record, used)) = Record::parse(&self.buf) {
                self.buf.drain(..used);
                return Ok(Some(record));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("EOF inside a record ({} bytes buffered)", self.buf.len()),
                    ))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_header_is_big_endian_with_padding_after_content() {
        let mut out = Vec::new();
        push_record_exact(&mut out, 1, STDIN, 0x0102, b"abc", 2, 0xA5);
        assert_eq!(out, [1, 5, 1, 2, 0, 3, 2, 0, b'a', b'b', b'c', 0xA5, 0xA5]);
        assert_eq!(
            Record::parse(&out),
            Some((
                Record {
                    version: 1,
                    kind: STDIN,
                    id: 0x0102,
                    content: b"abc".to_vec(),
                    padding: 2
                },
                13
            ))
        );
        assert_eq!(Record::parse(&out[..12]), None);
    }

    #[test]
    fn stream_aligned_pads_each_record_to_8_and_ends_with_an_empty_record() {
        let s = stream(PARAMS, 1, &[7u8; 11], 5, Padding::Align8);
        // 5 + 3 pad, 5 + 3 pad, 1 + 7 pad, then the empty record.
        assert_eq!(s.len(), 3 * (8 + 8) + 8);
        assert_eq!(&s[s.len() - 8..], &[1, PARAMS, 0, 1, 0, 0, 0, 0]);
        assert_eq!(stream(STDIN, 1, b"", 8192, Padding::None).len(), 8);
    }

    #[test]
    fn pairs_use_one_byte_lengths_up_to_127_and_decode_back() {
        let long_value = vec![b'v'; 128];
        let pairs = [(&b"A"[..], &b"1"[..]), (b"B", &long_value)];
        let short = encode_pairs(&pairs, Lengths::Shortest);
        assert_eq!(&short[..4], &[1, 1, b'A', b'1']);
        assert_eq!(&short[4..9], &[1, 0x80, 0, 0, 128]);
        let long = encode_pairs(&pairs, Lengths::Long);
        assert_eq!(&long[..8], &[0x80, 0, 0, 1, 0x80, 0, 0, 1]);
        for bytes in [short, long] {
            let decoded = decode_pairs(&bytes).expect("decodes");
            assert_eq!(decoded[1], (b"B".to_vec(), long_value.clone()));
        }
    }

    #[test]
    fn read_record_stops_at_the_record_boundary() {
        let mut bytes = record(STDOUT, 3, b"hi");
        bytes.extend(record(END_REQUEST, 3, &[0; 8]));
        let mut r = &bytes[..];
        assert_eq!(read_record(&mut r).unwrap().unwrap().content, b"hi");
        assert_eq!(r.len(), 16);
        let mut reader = RecordReader::new(r);
        assert_eq!(reader.next_record().unwrap().unwrap().kind, END_REQUEST);
        assert!(reader.next_record().unwrap().is_none());
        let mut cut = &bytes[..5];
        assert_eq!(
            read_record(&mut cut).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
