//! `MSDeploy.MSDeployProviderOptions`: the base64(gzip(MS-NRBF)) blob msdeploy reads provider
//! settings from (spec §3).
//!
//! msdeploy ignores runCommand settings written as plain attributes; they only take effect inside
//! this blob, which the original iiswsgi could only obtain by running msdeploy.exe on Windows.
//! Here it is encoded natively: a .NET BinaryFormatter stream holding one
//! `Microsoft.Web.Deployment.DeploymentProviderOptions`, gzipped with the exact 10-byte header
//! .NET's `GZipStream` writes, then base64. The decoder is what `iiswsgi check` uses to read
//! third-party blobs; it accepts both library spellings and the MS-NRBF array forms of §3.5,
//! refuses trailing bytes and never allocates more than the input can justify.
//!
//! Pure code: no I/O.

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flate2::Compression;
use flate2::write::DeflateEncoder;

/// The assembly name iiswsgi writes (Web Deploy V3 and dotnet publish spell it this way).
pub const LIBRARY_NAME: &str =
    "Microsoft.web.deployment, Version=7.1.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35";

/// The serialized class; always spelled with capital `W` and `D`.
pub const CLASS_NAME: &str = "Microsoft.Web.Deployment.DeploymentProviderOptions";

/// The four members of [`CLASS_NAME`], in stream order.
const MEMBER_NAMES: [&str; 4] = ["providerName", "path", "names", "values"];

/// BinaryType of each member: String, String, StringArray, StringArray.
const MEMBER_TYPES: [u8; 4] = [0x01, 0x01, 0x06, 0x06];

/// The 10 bytes .NET `GZipStream` puts before the deflate body: magic, CM=8, FLG=0, MTIME=0,
/// XFL=4, OS=0.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x04, 0x00];

/// Largest decompressed NRBF stream the decoder inflates (real blobs are a few hundred bytes).
pub const MAX_NRBF_BYTES: u64 = 1 << 20;

/// Most array items (settings) the decoder accepts; bounds `ObjectNullMultiple` counts.
pub const MAX_ARRAY_ITEMS: usize = 1 << 16;

/// Longest string a LengthPrefixedString may declare (MS-NRBF 2.1.1.6).
const MAX_LPS: u32 = i32::MAX as u32;

// MS-NRBF RecordTypeEnumeration values used here.
const SERIALIZATION_HEADER: u8 = 0x00;
const CLASS_WITH_MEMBERS_AND_TYPES: u8 = 0x05;
const BINARY_OBJECT_STRING: u8 = 0x06;
const MEMBER_REFERENCE: u8 = 0x09;
const OBJECT_NULL: u8 = 0x0A;
const MESSAGE_END: u8 = 0x0B;
const BINARY_LIBRARY: u8 = 0x0C;
const OBJECT_NULL_MULTIPLE_256: u8 = 0x0D;
const OBJECT_NULL_MULTIPLE: u8 = 0x0E;
const ARRAY_SINGLE_STRING: u8 = 0x11;

/// One provider's options: what goes into the blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOptions {
    /// The provider element name (`runCommand`, `iisApp`, …).
    pub provider_name: String,
    /// The provider's path, the element's `path` attribute unchanged.
    pub path: String,
    /// Settings in their configured order (`successReturnCodes` = `0x0`, …).
    pub settings: Vec<(String, String)>,
}

/// A decoded blob: the options plus what the stream said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedOptions {
    /// The options. A null setting name drops its pair; a null value reads as "".
    pub options: ProviderOptions,
    /// The library (assembly) name, in the spelling found.
    pub library: String,
    /// How many array items were MS-NRBF nulls (msdeploy has never been seen writing them).
    pub nulls: usize,
}

/// Why a blob does not decode. Offsets are into the decompressed NRBF stream.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OptionsError {
    /// Not base64 (standard alphabet with padding).
    #[error("not base64: {0}")]
    Base64(String),
    /// The first bytes are not a gzip header.
    #[error("not gzip (the blob must start with H4sI)")]
    NotGzip,
    /// Inflating failed, or the CRC-32 / length trailer does not match.
    #[error("gzip stream is corrupt: {0}")]
    Gzip(String),
    /// Bytes follow the gzip member.
    #[error("bytes after the end of the gzip stream")]
    TrailingGzip,
    /// The NRBF stream inflates to more than [`MAX_NRBF_BYTES`].
    #[error("NRBF stream is larger than {MAX_NRBF_BYTES} bytes")]
    TooLarge,
    /// The stream ends inside a record.
    #[error("NRBF stream ends early at byte {at}, inside {what}")]
    Truncated {
        /// Offset where more bytes were needed.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A record of the wrong type where another was required.
    #[error("NRBF byte {at}: expected {expected}, found record type 0x{found:02X}")]
    UnexpectedRecord {
        /// Offset of the record type byte.
        at: usize,
        /// The record type found.
        found: u8,
        /// What the layout requires there.
        expected: &'static str,
    },
    /// A fixed field holds a value other than the layout's.
    #[error("NRBF byte {at}: {field} must be {expected}, found {found}")]
    BadField {
        /// Offset of the field.
        at: usize,
        /// Field name.
        field: &'static str,
        /// Required value.
        expected: String,
        /// Value found.
        found: String,
    },
    /// A LengthPrefixedString length is malformed (over 5 bytes or above 2³¹−1).
    #[error("NRBF byte {at}: malformed string length")]
    BadLength {
        /// Offset of the length.
        at: usize,
    },
    /// A string is not UTF-8.
    #[error("NRBF byte {at}: string is not UTF-8")]
    NotUtf8 {
        /// Offset of the string bytes.
        at: usize,
    },
    /// An array length is negative or above [`MAX_ARRAY_ITEMS`], or nulls overflow it.
    #[error("NRBF byte {at}: bad array length {len}")]
    BadArrayLength {
        /// Offset of the length or null count.
        at: usize,
        /// The length found.
        len: i64,
    },
    /// A MemberReference inside an array points at no earlier string.
    #[error("NRBF byte {at}: reference to unknown object {id}")]
    DanglingReference {
        /// Offset of the reference.
        at: usize,
        /// The object id referenced.
        id: i32,
    },
    /// `names` and `values` have different lengths.
    #[error("names has {names} items but values has {values}")]
    UnequalArrays {
        /// Length of `names`.
        names: usize,
        /// Length of `values`.
        values: usize,
    },
    /// Bytes follow MessageEnd.
    #[error("NRBF byte {at}: {count} bytes after MessageEnd")]
    TrailingBytes {
        /// Offset just after MessageEnd.
        at: usize,
        /// How many bytes follow.
        count: usize,
    },
}

impl ProviderOptions {
    /// Options for `provider_name` at `path` with `settings` in order.
    pub fn new(
        provider_name: impl Into<String>,
        path: impl Into<String>,
        settings: Vec<(String, String)>,
    ) -> Self {
        Self {
            provider_name: provider_name.into(),
            path: path.into(),
            settings,
        }
    }

    /// The MS-NRBF stream with iiswsgi's library spelling ([`LIBRARY_NAME`]).
    pub fn to_nrbf(&self) -> Vec<u8> {
        self.to_nrbf_with_library(LIBRARY_NAME)
    }

    /// The MS-NRBF stream naming `library` as the assembly (§3.4 record sequence).
    pub fn to_nrbf_with_library(&self, library: &str) -> Vec<u8> {
        let n = self.settings.len();
        let mut out = Vec::with_capacity(256 + self.path.len() + 32 * n);
        // 1. SerializationHeader: RootId 1, HeaderId -1, version 1.0.
        out.push(SERIALIZATION_HEADER);
        for v in [1i32, -1, 1, 0] {
            put_i32(&mut out, v);
        }
        // 2. BinaryLibrary 2.
        out.push(BINARY_LIBRARY);
        put_i32(&mut out, 2);
        put_lps(&mut out, library);
        // 3. ClassWithMembersAndTypes, object 1.
        out.push(CLASS_WITH_MEMBERS_AND_TYPES);
        put_i32(&mut out, 1);
        put_lps(&mut out, CLASS_NAME);
        put_i32(&mut out, MEMBER_NAMES.len() as i32);
        for name in MEMBER_NAMES {
            put_lps(&mut out, name);
        }
        out.extend_from_slice(&MEMBER_TYPES);
        put_i32(&mut out, 2);
        // 4-5. providerName and path as objects 3 and 4.
        put_object_string(&mut out, 3, &self.provider_name);
        put_object_string(&mut out, 4, &self.path);
        // 6-7. names and values by reference to objects 5 and 6.
        for id in [5, 6] {
            out.push(MEMBER_REFERENCE);
            put_i32(&mut out, id);
        }
        // 8-9. The arrays; string ids continue from 7.
        let mut next_id = 7i32;
        let names = self.settings.iter().map(|(k, _)| k.as_str());
        let values = self.settings.iter().map(|(_, v)| v.as_str());
        for (array_id, items) in [(5, names.collect::<Vec<_>>()), (6, values.collect())] {
            out.push(ARRAY_SINGLE_STRING);
            put_i32(&mut out, array_id);
            put_i32(&mut out, items.len() as i32);
            for item in items {
                put_object_string(&mut out, next_id, item);
                next_id += 1;
            }
        }
        // 10. MessageEnd.
        out.push(MESSAGE_END);
        out
    }

    /// The attribute value: base64(gzip(NRBF)), gzip header exactly as .NET writes it.
    pub fn encode(&self) -> String {
        BASE64.encode(gzip_dotnet(&self.to_nrbf()))
    }

    /// Decodes an attribute value (§3.5): base64, gzip (CRC and length verified), NRBF.
    pub fn decode(blob: &str) -> Result<DecodedOptions, OptionsError> {
        let gz = BASE64
            .decode(blob.trim())
            .map_err(|e| OptionsError::Base64(e.to_string()))?;
        let nrbf = gunzip(&gz)?;
        Self::from_nrbf(&nrbf)
    }

    /// Parses an MS-NRBF stream with the §3.4 layout (and the §3.5 array extras).
    pub fn from_nrbf(bytes: &[u8]) -> Result<DecodedOptions, OptionsError> {
        Parser { bytes, pos: 0 }.parse()
    }
}

/// gzip as .NET's `GZipStream` frames it: [`GZIP_HEADER`], raw deflate, CRC-32, ISIZE.
fn gzip_dotnet(data: &[u8]) -> Vec<u8> {
    let mut out = GZIP_HEADER.to_vec();
    let mut deflate = DeflateEncoder::new(out, Compression::best());
    let written = deflate.write_all(data).and_then(|()| deflate.finish());
    out = written.expect("deflating into a Vec cannot fail");
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Inflates one gzip member, bounded by [`MAX_NRBF_BYTES`], refusing trailing bytes.
fn gunzip(gz: &[u8]) -> Result<Vec<u8>, OptionsError> {
    if gz.len() < 18 || gz[0..3] != [0x1f, 0x8b, 0x08] {
        return Err(OptionsError::NotGzip);
    }
    let mut cursor = std::io::Cursor::new(gz);
    let mut decoder = flate2::bufread::GzDecoder::new(&mut cursor);
    let mut out = Vec::new();
    (&mut decoder)
        .take(MAX_NRBF_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| OptionsError::Gzip(e.to_string()))?;
    if out.len() as u64 > MAX_NRBF_BYTES {
        return Err(OptionsError::TooLarge);
    }
    drop(decoder);
    if (cursor.position() as usize) < gz.len() {
        return Err(OptionsError::TrailingGzip);
    }
    Ok(out)
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// LengthPrefixedString: UTF-8 byte length as a 7-bit varint, then the bytes.
fn put_lps(out: &mut Vec<u8>, s: &str) {
    let mut len = s.len();
    loop {
        let low = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(low);
            break;
        }
        out.push(low | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

fn put_object_string(out: &mut Vec<u8>, id: i32, s: &str) {
    out.push(BINARY_OBJECT_STRING);
    put_i32(out, id);
    put_lps(out, s);
}

/// A cursor over the NRBF bytes with offset-carrying errors.
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn parse(mut self) -> Result<DecodedOptions, OptionsError> {
        // 1. SerializationHeader.
        self.record(SERIALIZATION_HEADER, "SerializationHeader")?;
        self.expect_i32("RootId", 1)?;
        self.expect_i32("HeaderId", -1)?;
        self.expect_i32("MajorVersion", 1)?;
        self.expect_i32("MinorVersion", 0)?;
        // 2. BinaryLibrary.
        self.record(BINARY_LIBRARY, "BinaryLibrary")?;
        let library_id = self.i32("LibraryId")?;
        let at = self.pos;
        let library = self.lps()?;
        let expected_library = LIBRARY_NAME.to_ascii_lowercase();
        if library.to_ascii_lowercase() != expected_library {
            return Err(bad_field(at, "LibraryName", LIBRARY_NAME, &library));
        }
        // 3. ClassWithMembersAndTypes.
        self.record(CLASS_WITH_MEMBERS_AND_TYPES, "ClassWithMembersAndTypes")?;
        self.expect_i32("ObjectId", 1)?;
        let at = self.pos;
        let class = self.lps()?;
        if class != CLASS_NAME {
            return Err(bad_field(at, "ClassName", CLASS_NAME, &class));
        }
        self.expect_i32("MemberCount", MEMBER_NAMES.len() as i32)?;
        for name in MEMBER_NAMES {
            let at = self.pos;
            let found = self.lps()?;
            if found != name {
                return Err(bad_field(at, "member name", name, &found));
            }
        }
        for (i, ty) in MEMBER_TYPES.iter().enumerate() {
            let at = self.pos;
            let found = self.u8("BinaryType")?;
            if found != *ty {
                return Err(bad_field(
                    at,
                    "BinaryType",
                    &format!("{ty} for {}", MEMBER_NAMES[i]),
                    &found.to_string(),
                ));
            }
        }
        self.expect_i32("LibraryId", library_id)?;
        // 4-5. providerName and path.
        let mut strings: Vec<(i32, String)> = Vec::new();
        self.record(BINARY_OBJECT_STRING, "providerName BinaryObjectString")?;
        let id = self.i32("ObjectId")?;
        let provider_name = self.lps()?;
        strings.push((id, provider_name.clone()));
        self.record(BINARY_OBJECT_STRING, "path BinaryObjectString")?;
        let id = self.i32("ObjectId")?;
        let path = self.lps()?;
        strings.push((id, path.clone()));
        // 6-7. References to the arrays.
        self.record(MEMBER_REFERENCE, "MemberReference to names")?;
        let names_id = self.i32("IdRef")?;
        self.record(MEMBER_REFERENCE, "MemberReference to values")?;
        let values_id = self.i32("IdRef")?;
        // 8-9. The arrays, in either order, matched by id.
        let mut names = None;
        let mut values = None;
        let mut nulls = 0;
        for _ in 0..2 {
            self.record(ARRAY_SINGLE_STRING, "ArraySingleString")?;
            let at = self.pos;
            let id = self.i32("ObjectId")?;
            let items = self.array_items(&mut strings, &mut nulls)?;
            let slot = if id == names_id && names.is_none() {
                &mut names
            } else if id == values_id && values.is_none() {
                &mut values
            } else {
                return Err(bad_field(
                    at,
                    "array ObjectId",
                    &format!("{names_id} or {values_id}"),
                    &id.to_string(),
                ));
            };
            *slot = Some(items);
        }
        let (Some(names), Some(values)) = (names, values) else {
            // Both loop iterations fill a distinct slot or return an error.
            return Err(OptionsError::Truncated {
                at: self.pos,
                what: "arrays",
            });
        };
        if names.len() != values.len() {
            return Err(OptionsError::UnequalArrays {
                names: names.len(),
                values: values.len(),
            });
        }
        // 10. MessageEnd, and nothing after it.
        self.record(MESSAGE_END, "MessageEnd")?;
        if self.pos < self.bytes.len() {
            return Err(OptionsError::TrailingBytes {
                at: self.pos,
                count: self.bytes.len() - self.pos,
            });
        }
        let settings = names
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| Some((k?, v.unwrap_or_default())))
            .collect();
        Ok(DecodedOptions {
            options: ProviderOptions {
                provider_name,
                path,
                settings,
            },
            library,
            nulls,
        })
    }

    /// Length then items of an ArraySingleString: strings, references, nulls.
    fn array_items(
        &mut self,
        strings: &mut Vec<(i32, String)>,
        nulls: &mut usize,
    ) -> Result<Vec<Option<String>>, OptionsError> {
        let at = self.pos;
        let len = self.i32("array Length")?;
        if len < 0 || len as usize > MAX_ARRAY_ITEMS {
            return Err(OptionsError::BadArrayLength {
                at,
                len: len.into(),
            });
        }
        let len = len as usize;
        let mut items = Vec::new();
        while items.len() < len {
            let at = self.pos;
            match self.u8("array item record")? {
                BINARY_OBJECT_STRING => {
                    let id = self.i32("ObjectId")?;
                    let s = self.lps()?;
                    strings.push((id, s.clone()));
                    items.push(Some(s));
                }
                MEMBER_REFERENCE => {
                    let ref_at = self.pos;
                    let id = self.i32("IdRef")?;
                    let s = strings
                        .iter()
                        .find(|(i, _)| *i == id)
                        .map(|(_, s)| s.clone())
                        .ok_or(OptionsError::DanglingReference { at: ref_at, id })?;
                    items.push(Some(s));
                }
                OBJECT_NULL => {
                    *nulls += 1;
                    items.push(None);
                }
                kind @ (OBJECT_NULL_MULTIPLE_256 | OBJECT_NULL_MULTIPLE) => {
                    let count_at = self.pos;
                    let count: i64 = if kind == OBJECT_NULL_MULTIPLE_256 {
                        self.u8("NullCount")?.into()
                    } else {
                        self.i32("NullCount")?.into()
                    };
                    if count < 0 || items.len() as i64 + count > len as i64 {
                        return Err(OptionsError::BadArrayLength {
                            at: count_at,
                            len: count,
                        });
                    }
                    *nulls += count as usize;
                    items.extend(std::iter::repeat_n(None, count as usize));
                }
                found => {
                    return Err(OptionsError::UnexpectedRecord {
                        at,
                        found,
                        expected: "a string, reference or null inside an array",
                    });
                }
            }
        }
        Ok(items)
    }

    fn record(&mut self, kind: u8, expected: &'static str) -> Result<(), OptionsError> {
        let at = self.pos;
        let found = self.u8(expected)?;
        if found != kind {
            return Err(OptionsError::UnexpectedRecord {
                at,
                found,
                expected,
            });
        }
        Ok(())
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], OptionsError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(OptionsError::Truncated { at: self.pos, what })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, OptionsError> {
        Ok(self.take(1, what)?[0])
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, OptionsError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn expect_i32(&mut self, field: &'static str, expected: i32) -> Result<(), OptionsError> {
        let at = self.pos;
        let found = self.i32(field)?;
        if found != expected {
            return Err(bad_field(
                at,
                field,
                &expected.to_string(),
                &found.to_string(),
            ));
        }
        Ok(())
    }

    /// LengthPrefixedString: at most 5 varint bytes, length ≤ 2³¹−1, UTF-8.
    fn lps(&mut self) -> Result<String, OptionsError> {
        let at = self.pos;
        let mut len: u64 = 0;
        for i in 0..5 {
            let b = self.u8("string length")?;
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if len > u64::from(MAX_LPS) {
                    return Err(OptionsError::BadLength { at });
                }
                let start = self.pos;
                let bytes = self.take(len as usize, "string")?;
                return String::from_utf8(bytes.to_vec())
                    .map_err(|_| OptionsError::NotUtf8 { at: start });
            }
        }
        Err(OptionsError::BadLength { at })
    }
}

fn bad_field(at: usize, field: &'static str, expected: &str, found: &str) -> OptionsError {
    OptionsError::BadField {
        at,
        field,
        expected: expected.to_string(),
        found: found.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry of `spec/vectors/provider-options.json` (copied into `tests/vectors/`).
    #[derive(serde::Deserialize)]
    struct Vector {
        provider: String,
        path: String,
        settings: Vec<(String, String)>,
        blob: String,
    }

    const VECTORS: &str = include_str!("../../../tests/vectors/provider-options.json");
    const CAPITAL_LIBRARY: &str = "Microsoft.Web.Deployment, Version=7.1.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35";

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(VECTORS).expect("vector file is valid JSON")
    }

    fn nrbf_of(blob: &str) -> Vec<u8> {
        let gz = BASE64.decode(blob).expect("vector is base64");
        gunzip(&gz).expect("vector is gzip")
    }

    fn options_of(v: &Vector) -> ProviderOptions {
        ProviderOptions::new(&v.provider, &v.path, v.settings.clone())
    }

    mod vectors {
        use super::*;

        #[test]
        fn every_vector_decodes_to_its_listed_fields() {
            let all = vectors();
            assert_eq!(all.len(), 4);
            for (i, v) in all.iter().enumerate() {
                let decoded = ProviderOptions::decode(&v.blob)
                    .unwrap_or_else(|e| panic!("vector {}: {e}", i + 1));
                assert_eq!(decoded.options, options_of(v), "vector {}", i + 1);
                assert_eq!(decoded.nulls, 0);
            }
        }

        #[test]
        fn every_vector_reencodes_to_identical_nrbf_bytes() {
            for (i, v) in vectors().iter().enumerate() {
                let expected = nrbf_of(&v.blob);
                let decoded = ProviderOptions::decode(&v.blob).expect("decodes");
                // Vector 2 (Web Deploy 1.0) spells the library with capitals: swap first.
                let ours = options_of(v).to_nrbf_with_library(&decoded.library);
                assert_eq!(ours, expected, "vector {} NRBF differs", i + 1);
            }
        }

        #[test]
        fn vector_two_keeps_its_capitalised_library_name() {
            let v = &vectors()[1];
            let decoded = ProviderOptions::decode(&v.blob).expect("decodes");
            assert_eq!(decoded.library, CAPITAL_LIBRARY);
            let ours = options_of(v).to_nrbf();
            let theirs = nrbf_of(&v.blob);
            assert_ne!(ours, theirs, "spelling differs before the swap");
            let swapped = options_of(v).to_nrbf_with_library(CAPITAL_LIBRARY);
            assert_eq!(swapped, theirs);
        }

        #[test]
        fn vectors_one_three_four_use_iiswsgis_library_spelling() {
            let all = vectors();
            for i in [0, 2, 3] {
                assert_eq!(options_of(&all[i]).to_nrbf(), nrbf_of(&all[i].blob));
            }
        }

        #[test]
        fn nrbf_lengths_match_the_vector_notes() {
            let lens: Vec<usize> = vectors().iter().map(|v| nrbf_of(&v.blob).len()).collect();
            assert_eq!(lens, [367, 298, 362, 424]);
        }

        #[test]
        fn constant_prefix_is_213_bytes() {
            let a = options_of(&vectors()[0]).to_nrbf();
            let b = ProviderOptions::new("x", "", vec![]).to_nrbf();
            assert_eq!(a[..213], b[..213]);
            assert_eq!(b[213], BINARY_OBJECT_STRING);
        }
    }

    mod encoding {
        use super::*;

        #[test]
        fn blob_has_dotnet_gzip_header_and_starts_h4si() {
            let blob = options_of(&vectors()[3]).encode();
            assert!(blob.starts_with("H4sI"));
            let gz = BASE64.decode(&blob).expect("base64");
            assert_eq!(gz[..10], GZIP_HEADER);
            let n = gz.len();
            let nrbf = options_of(&vectors()[3]).to_nrbf();
            assert_eq!(gz[n - 8..n - 4], crc32fast::hash(&nrbf).to_le_bytes());
            assert_eq!(gz[n - 4..], (nrbf.len() as u32).to_le_bytes());
        }

        #[test]
        fn blob_uses_standard_base64_without_line_breaks() {
            let long = "x".repeat(5000);
            let blob = ProviderOptions::new("runCommand", long, vec![]).encode();
            assert!(!blob.contains('\n') && !blob.contains('\r'));
            assert!(
                blob.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            );
        }

        #[test]
        fn round_trip_keeps_settings_in_order() {
            let opts = ProviderOptions::new(
                "runCommand",
                "\"%ProgramFiles%\\iiswsgi\\iiswsgi.exe\" install --app-name Ünïcode",
                vec![
                    ("waitInterval".into(), "60000".into()),
                    ("dontUseCommandExe".into(), "false".into()),
                    ("empty".into(), String::new()),
                    ("successReturnCodes".into(), "0x0".into()),
                ],
            );
            let decoded = ProviderOptions::decode(&opts.encode()).expect("round trip");
            assert_eq!(decoded.options, opts);
            assert_eq!(decoded.library, LIBRARY_NAME);
        }

        #[test]
        fn empty_value_is_a_single_zero_length_byte() {
            let nrbf = ProviderOptions::new("runCommand", "", vec![]).to_nrbf();
            // providerName object then path object with LPS 00.
            let path_record = [0x06, 4, 0, 0, 0, 0x00];
            assert!(nrbf.windows(6).any(|w| w == path_record));
        }

        #[test]
        fn empty_array_is_id_then_zero_length() {
            let nrbf = ProviderOptions::new("iisApp", "a", vec![]).to_nrbf();
            let tail = [
                0x11, 5, 0, 0, 0, 0, 0, 0, 0, 0x11, 6, 0, 0, 0, 0, 0, 0, 0, 0x0B,
            ];
            assert!(nrbf.ends_with(&tail));
        }
    }

    mod lps {
        use super::*;

        fn prefix(len: usize) -> Vec<u8> {
            let mut out = Vec::new();
            put_lps(&mut out, &"a".repeat(len));
            out.truncate(out.len() - len);
            out
        }

        #[test]
        fn lengths_encode_as_seven_bit_groups() {
            assert_eq!(prefix(0), [0x00]);
            assert_eq!(prefix(91), [0x5B]);
            assert_eq!(prefix(127), [0x7F]);
            assert_eq!(prefix(128), [0x80, 0x01]);
            assert_eq!(prefix(200), [0xC8, 0x01]);
            assert_eq!(prefix(16384), [0x80, 0x80, 0x01]);
        }

        #[test]
        fn long_paths_round_trip_at_127_128_and_16384_bytes() {
            for len in [127, 128, 16383, 16384] {
                let opts = ProviderOptions::new("runCommand", "p".repeat(len), vec![]);
                let decoded = ProviderOptions::decode(&opts.encode()).expect("decodes");
                assert_eq!(decoded.options.path.len(), len);
                assert_eq!(decoded.options, opts);
            }
        }

        #[test]
        fn multibyte_utf8_counts_bytes_not_chars() {
            let mut out = Vec::new();
            put_lps(&mut out, "é"); // two UTF-8 bytes
            assert_eq!(out, [0x02, 0xC3, 0xA9]);
        }

        #[test]
        fn six_byte_length_is_rejected() {
            let mut nrbf = ProviderOptions::new("x", "", vec![]).to_nrbf();
            // Replace the path's LPS 00 with an overlong varint.
            let at = nrbf.len() - 1 - 18 - 10 - 1;
            assert_eq!(nrbf[at], 0x00);
            nrbf.splice(at..=at, [0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
            assert!(matches!(
                ProviderOptions::from_nrbf(&nrbf),
                Err(OptionsError::BadLength { .. })
            ));
        }

        #[test]
        fn length_past_the_end_is_truncation_not_allocation() {
            let mut nrbf = ProviderOptions::new("x", "", vec![]).to_nrbf();
            let at = nrbf.len() - 1 - 18 - 10 - 1;
            nrbf.splice(at..=at, [0xFF, 0xFF, 0xFF, 0xFF, 0x07]);
            assert!(matches!(
                ProviderOptions::from_nrbf(&nrbf),
                Err(OptionsError::Truncated { .. })
            ));
        }
    }

    mod decoder {
        use super::*;

        /// Builds the stream up to (not including) the arrays, then appends `arrays`.
        fn with_arrays(arrays: &[u8]) -> Vec<u8> {
            let base = ProviderOptions::new("runCommand", "cmd", vec![]).to_nrbf();
            // Strip both empty arrays (9 bytes each) and MessageEnd.
            let mut out = base[..base.len() - 19].to_vec();
            out.extend_from_slice(arrays);
            out.push(MESSAGE_END);
            out
        }

        fn string(id: u8, s: &str) -> Vec<u8> {
            let mut out = vec![BINARY_OBJECT_STRING, id, 0, 0, 0];
            put_lps(&mut out, s);
            out
        }

        #[test]
        fn member_reference_in_array_repeats_an_earlier_string() {
            let mut a = vec![0x11, 5, 0, 0, 0, 2, 0, 0, 0];
            a.extend(string(7, "a"));
            a.extend(string(8, "b"));
            a.extend([0x11, 6, 0, 0, 0, 2, 0, 0, 0]);
            a.extend(string(9, "v"));
            a.extend([MEMBER_REFERENCE, 9, 0, 0, 0]);
            let d = ProviderOptions::from_nrbf(&with_arrays(&a)).expect("decodes");
            assert_eq!(
                d.options.settings,
                [("a".into(), "v".into()), ("b".into(), "v".into())]
            );
        }

        #[test]
        fn nulls_of_all_three_forms_read_as_no_value() {
            let mut a = vec![0x11, 5, 0, 0, 0, 5, 0, 0, 0];
            for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
                a.extend(string(7 + i as u8, name));
            }
            a.extend([0x11, 6, 0, 0, 0, 5, 0, 0, 0]);
            a.extend([OBJECT_NULL]);
            a.extend([OBJECT_NULL_MULTIPLE_256, 2]);
            a.extend([OBJECT_NULL_MULTIPLE, 1, 0, 0, 0]);
            a.extend(string(20, "x"));
            let d = ProviderOptions::from_nrbf(&with_arrays(&a)).expect("decodes");
            assert_eq!(d.nulls, 4);
            let values: Vec<&str> = d.options.settings.iter().map(|(_, v)| v.as_str()).collect();
            assert_eq!(values, ["", "", "", "", "x"]);
        }

        #[test]
        fn null_name_drops_its_pair() {
            let mut a = vec![0x11, 5, 0, 0, 0, 1, 0, 0, 0, OBJECT_NULL];
            a.extend([0x11, 6, 0, 0, 0, 1, 0, 0, 0]);
            a.extend(string(8, "v"));
            let d = ProviderOptions::from_nrbf(&with_arrays(&a)).expect("decodes");
            assert!(d.options.settings.is_empty());
        }

        #[test]
        fn null_count_beyond_array_length_is_rejected() {
            let mut a = vec![0x11, 5, 0, 0, 0, 1, 0, 0, 0];
            a.extend([OBJECT_NULL_MULTIPLE, 0xFF, 0xFF, 0xFF, 0x7F]);
            a.extend([0x11, 6, 0, 0, 0, 0, 0, 0, 0]);
            assert!(matches!(
                ProviderOptions::from_nrbf(&with_arrays(&a)),
                Err(OptionsError::BadArrayLength { .. })
            ));
        }

        #[test]
        fn huge_array_length_is_rejected_before_allocating() {
            let a = [0x11, 5, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F];
            assert!(matches!(
                ProviderOptions::from_nrbf(&with_arrays(&a)),
                Err(OptionsError::BadArrayLength { .. })
            ));
        }

        #[test]
        fn dangling_member_reference_is_rejected() {
            let mut a = vec![0x11, 5, 0, 0, 0, 1, 0, 0, 0, MEMBER_REFERENCE, 99, 0, 0, 0];
            a.extend([0x11, 6, 0, 0, 0, 1, 0, 0, 0, OBJECT_NULL]);
            assert!(matches!(
                ProviderOptions::from_nrbf(&with_arrays(&a)),
                Err(OptionsError::DanglingReference { id: 99, .. })
            ));
        }

        #[test]
        fn unequal_arrays_are_rejected() {
            let mut a = vec![0x11, 5, 0, 0, 0, 1, 0, 0, 0];
            a.extend(string(7, "a"));
            a.extend([0x11, 6, 0, 0, 0, 0, 0, 0, 0]);
            assert_eq!(
                ProviderOptions::from_nrbf(&with_arrays(&a)),
                Err(OptionsError::UnequalArrays {
                    names: 1,
                    values: 0
                })
            );
        }

        #[test]
        fn trailing_bytes_after_message_end_are_rejected() {
            let mut nrbf = ProviderOptions::new("iisApp", "a", vec![]).to_nrbf();
            nrbf.push(0);
            assert!(matches!(
                ProviderOptions::from_nrbf(&nrbf),
                Err(OptionsError::TrailingBytes { count: 1, .. })
            ));
        }

        #[test]
        fn trailing_bytes_after_gzip_member_are_rejected() {
            let opts = ProviderOptions::new("iisApp", "a", vec![]);
            let mut gz = gzip_dotnet(&opts.to_nrbf());
            gz.extend_from_slice(b"junk");
            assert_eq!(
                ProviderOptions::decode(&BASE64.encode(gz)),
                Err(OptionsError::TrailingGzip)
            );
        }

        #[test]
        fn corrupt_crc_is_rejected() {
            let opts = ProviderOptions::new("iisApp", "a", vec![]);
            let mut gz = gzip_dotnet(&opts.to_nrbf());
            let n = gz.len();
            gz[n - 8] ^= 0xFF;
            assert!(matches!(
                ProviderOptions::decode(&BASE64.encode(gz)),
                Err(OptionsError::Gzip(_))
            ));
        }

        #[test]
        fn every_truncation_is_an_error_not_a_panic() {
            let nrbf = options_of(&vectors()[3]).to_nrbf();
            for cut in 0..nrbf.len() {
                assert!(
                    ProviderOptions::from_nrbf(&nrbf[..cut]).is_err(),
                    "cut {cut}"
                );
            }
        }

        #[test]
        fn wrong_class_name_is_rejected() {
            let mut nrbf = ProviderOptions::new("iisApp", "a", vec![]).to_nrbf();
            let at = nrbf
                .windows(CLASS_NAME.len())
                .position(|w| w == CLASS_NAME.as_bytes())
                .expect("class name present");
            nrbf[at + 10] = b'w'; // Microsoft.web…
            assert!(matches!(
                ProviderOptions::from_nrbf(&nrbf),
                Err(OptionsError::BadField {
                    field: "ClassName",
                    ..
                })
            ));
        }

        #[test]
        fn not_gzip_and_not_base64_are_distinct_errors() {
            assert!(matches!(
                ProviderOptions::decode("!!!"),
                Err(OptionsError::Base64(_))
            ));
            assert_eq!(
                ProviderOptions::decode(&BASE64.encode([0u8; 32])),
                Err(OptionsError::NotGzip)
            );
        }

        proptest::proptest! {
            #[test]
            fn arbitrary_options_round_trip(
                provider in "[a-zA-Z]{1,20}",
                path in "\\PC{0,300}",
                settings in proptest::collection::vec(("\\PC{0,20}", "\\PC{0,40}"), 0..6),
            ) {
                let opts = ProviderOptions::new(provider, path, settings);
                let decoded = ProviderOptions::decode(&opts.encode()).expect("round trip");
                proptest::prop_assert_eq!(decoded.options, opts);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
                let _ = ProviderOptions::from_nrbf(&bytes);
            }
        }
    }
}
