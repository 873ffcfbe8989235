//! Byte layout of segment files (see `docs/format.md` for the diagram).
//!
//! ```text
//! file   := header frame* zero-fill                      (kind 1, hot)
//!         | header block* directory                      (kind 2, compact)
//! header := magic[8] version:u16 kind:u8 datasource:u8 hour:u32 file_no:u32
//!           synced_len:u64 reserved[32] crc32:u32              (64 bytes)
//! frame  := body_len:u32 crc32:u32 seq:u64 batch_rest:u32 body[body_len]
//! ```
//! All integers little endian. The header CRC covers header bytes 0..60; a
//! frame's CRC covers its bytes 8..20+body_len (seq, batch_rest and body).
//! A `body_len` of zero marks the end of the records (preallocated space is
//! zero-filled). Hot segments keep `reserved` zero and are written as
//! version 1; compact segments (see [`super::compact`]) use `reserved` for
//! their directory's place and are written as version 6 (`system_logs`
//! rows in key order, the directory compressed, a seconds section after the
//! counts; versions 2 to 5 are still read: 5 without the seconds, 4 with the
//! directory uncompressed, 2 and 3 in time order, 2 without the per-minute
//! counts section), which an older build refuses by name instead of
//! misreading.

use crate::error::{Error, Result};
use std::path::Path;

/// First 8 bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"LPSEG\0\r\n";
/// Format version of hot segments (written and read by this build).
pub const VERSION: u16 = 1;
/// Format version of compact segments written by this build: the oldest
/// reader that understands them. This build reads versions 2 to 6.
pub const VERSION_COMPACT: u16 = 6;
/// Compact segments without the seconds section, still read.
pub const VERSION_COMPACT_V5: u16 = 5;
/// Compact segments whose directory is stored uncompressed, still read.
pub const VERSION_COMPACT_V4: u16 = 4;
/// Compact segments with `system_logs` rows in time order and counts.
pub const VERSION_COMPACT_V3: u16 = 3;
/// Compact segments without the counts section, still read.
pub const VERSION_COMPACT_V2: u16 = 2;
/// Length of the file header; the first frame starts here.
pub const HEADER_LEN: usize = 64;
/// Offset of `synced_len` inside the header.
pub const SYNCED_LEN_OFFSET: usize = 20;
/// Offset of the header CRC.
pub const HEADER_CRC_OFFSET: usize = 60;
/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = 20;
/// Largest record body accepted (a row is limited to 1 MiB by the API).
pub const MAX_BODY_LEN: usize = 4 << 20;

/// Offset and length of the header's reserved area (zero in hot segments;
/// the directory's place in compact ones).
pub const RESERVED_OFFSET: usize = 28;
pub const RESERVED_LEN: usize = 32;

/// Segment kinds (header byte 10).
pub const KIND_HOT: u8 = 1;
/// A compacted hour: sorted, zstd-compressed blocks; never appended to.
pub const KIND_COMPACT: u8 = 2;

/// The decoded file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: u8,
    pub datasource: u8,
    pub hour: u32,
    pub file_no: u32,
    pub synced_len: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        self.encode_with_reserved(&[0u8; RESERVED_LEN])
    }

    /// The header with `reserved` filled in (compact segments), as the
    /// version its kind needs.
    pub fn encode_with_reserved(&self, reserved: &[u8; RESERVED_LEN]) -> [u8; HEADER_LEN] {
        let version = if self.kind == KIND_COMPACT {
            VERSION_COMPACT
        } else {
            VERSION
        };
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&version.to_le_bytes());
        b[10] = self.kind;
        b[11] = self.datasource;
        b[12..16].copy_from_slice(&self.hour.to_le_bytes());
        b[16..20].copy_from_slice(&self.file_no.to_le_bytes());
        b[20..28].copy_from_slice(&self.synced_len.to_le_bytes());
        b[RESERVED_OFFSET..RESERVED_OFFSET + RESERVED_LEN].copy_from_slice(reserved);
        let crc = crc32fast::hash(&b[..HEADER_CRC_OFFSET]);
        b[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The format version of a header [`Header::decode`] accepted.
    pub fn version_of(b: &[u8]) -> u16 {
        u16::from_le_bytes([b[8], b[9]])
    }

    /// Decodes and checks a header; errors name the file and offset.
    pub fn decode(path: &Path, b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(Error::corrupt(
                path,
                0,
                format!("file shorter than its {HEADER_LEN}-byte header"),
            ));
        }
        if b[0..8] != MAGIC {
            return Err(Error::corrupt(path, 0, "bad magic: not a logpulse segment"));
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        let older_compact = [
            VERSION_COMPACT_V2,
            VERSION_COMPACT_V3,
            VERSION_COMPACT_V4,
            VERSION_COMPACT_V5,
        ];
        if version != VERSION && version != VERSION_COMPACT && !older_compact.contains(&version) {
            return Err(Error::Version {
                path: path.into(),
                found: version,
                expected: VERSION_COMPACT,
            });
        }
        let crc = u32::from_le_bytes(b[60..64].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&b[..HEADER_CRC_OFFSET]) {
            return Err(Error::corrupt(
                path,
                HEADER_CRC_OFFSET as u64,
                "header checksum mismatch",
            ));
        }
        let kind = b[10];
        let want = match kind {
            KIND_HOT => VERSION,
            KIND_COMPACT => VERSION_COMPACT,
            _ => {
                return Err(Error::corrupt(
                    path,
                    10,
                    format!("unknown segment kind {kind}"),
                ))
            }
        };
        if version != want && !(kind == KIND_COMPACT && older_compact.contains(&version)) {
            return Err(Error::corrupt(
                path,
                8,
                format!("segment kind {kind} stored as format version {version}, not {want}"),
            ));
        }
        Ok(Header {
            kind,
            datasource: b[11],
            hour: u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")),
            file_no: u32::from_le_bytes(b[16..20].try_into().expect("4 bytes")),
            synced_len: u64::from_le_bytes(b[20..28].try_into().expect("8 bytes")),
        })
    }
}

/// The reserved area of an (already decoded) header.
pub fn header_reserved(b: &[u8]) -> [u8; RESERVED_LEN] {
    b[RESERVED_OFFSET..RESERVED_OFFSET + RESERVED_LEN]
        .try_into()
        .expect("32 bytes")
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub body_len: u32,
    pub seq: u64,
    pub batch_rest: u32,
}

impl Frame {
    pub fn total_len(&self) -> usize {
        FRAME_HEADER_LEN + self.body_len as usize
    }
}

/// Appends one frame (header and body) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, seq: u64, batch_rest: u32, body: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&batch_rest.to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What is found at an offset of a record area.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameRead {
    /// A valid frame.
    Frame(Frame),
    /// Zero length: the records end here.
    End,
    /// Bytes that are not a valid frame, and why.
    Invalid(&'static str),
}

/// Reads and validates the frame at `offset` of `data` (a whole file image).
pub fn read_frame(data: &[u8], offset: usize) -> FrameRead {
    if offset + 4 > data.len() {
        return if offset == data.len() {
            FrameRead::End
        } else {
            FrameRead::Invalid("truncated frame header")
        };
    }
    let body_len = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes"));
    if body_len == 0 {
        return FrameRead::End;
    }
    if body_len as usize > MAX_BODY_LEN {
        return FrameRead::Invalid("frame length out of range");
    }
    let end = offset + FRAME_HEADER_LEN + body_len as usize;
    if end > data.len() {
        return FrameRead::Invalid("frame runs past end of file");
    }
    let crc = u32::from_le_bytes(data[offset + 4..offset + 8].try_into().expect("4 bytes"));
    if crc != crc32fast::hash(&data[offset + 8..end]) {
        return FrameRead::Invalid("frame checksum mismatch");
    }
    FrameRead::Frame(Frame {
        body_len,
        seq: u64::from_le_bytes(data[offset + 8..offset + 16].try_into().expect("8 bytes")),
        batch_rest: u32::from_le_bytes(data[offset + 16..offset + 20].try_into().expect("4 bytes")),
    })
}

/// The seq stored in the (already validated) frame at `offset`.
pub fn frame_seq(data: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(data[offset + 8..offset + 16].try_into().expect("8 bytes"))
}

/// The body of the (already validated) frame at `offset`.
pub fn frame_body(data: &[u8], offset: usize) -> &[u8] {
    let len = u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes")) as usize;
    &data[offset + FRAME_HEADER_LEN..offset + FRAME_HEADER_LEN + len]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            kind: KIND_HOT,
            datasource: 1,
            hour: 470_000,
            file_no: 2,
            synced_len: 999,
        }
    }

    #[test]
    fn header_round_trips() {
        let b = header().encode();
        assert_eq!(Header::decode(Path::new("x"), &b).unwrap(), header());
    }

    #[test]
    fn every_header_byte_is_checked() {
        for i in 0..HEADER_LEN {
            let mut b = header().encode();
            b[i] ^= 0x40;
            assert!(
                Header::decode(Path::new("x"), &b).is_err(),
                "flip at byte {i} accepted"
            );
        }
    }

    #[test]
    fn other_version_is_refused_clearly() {
        let mut b = header().encode();
        b[8] = 9;
        let crc = crc32fast::hash(&b[..HEADER_CRC_OFFSET]);
        b[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        let err = Header::decode(Path::new("x"), &b).unwrap_err();
        assert!(matches!(err, Error::Version { found: 9, .. }), "{err}");
    }

    #[test]
    fn compact_headers_carry_their_version_and_reserved_bytes() {
        let h = Header {
            kind: KIND_COMPACT,
            ..header()
        };
        let mut r = [0u8; RESERVED_LEN];
        r[0] = 7;
        r[31] = 9;
        let b = h.encode_with_reserved(&r);
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), VERSION_COMPACT);
        assert_eq!(Header::decode(Path::new("x"), &b).unwrap(), h);
        assert_eq!(header_reserved(&b), r);
        assert_eq!(u16::from_le_bytes([header().encode()[8], 0]), VERSION);
    }

    #[test]
    fn kind_and_version_must_agree() {
        let fix = |b: &mut [u8; HEADER_LEN]| {
            let crc = crc32fast::hash(&b[..HEADER_CRC_OFFSET]);
            b[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        };
        let mut b = header().encode();
        b[10] = KIND_COMPACT;
        fix(&mut b);
        assert!(matches!(
            Header::decode(Path::new("x"), &b),
            Err(Error::Corrupt { offset: 8, .. })
        ));
        b[10] = 77;
        fix(&mut b);
        assert!(matches!(
            Header::decode(Path::new("x"), &b),
            Err(Error::Corrupt { offset: 10, .. })
        ));
    }

    #[test]
    fn truncated_file_is_rejected() {
        let b = header().encode();
        assert!(Header::decode(Path::new("x"), &b[..40]).is_err());
    }

    #[test]
    fn frames_validate_and_flips_are_caught() {
        let mut data = vec![0u8; 8];
        encode_frame(&mut data, 42, 3, b"hello");
        let f = match read_frame(&data, 8) {
            FrameRead::Frame(f) => f,
            other => panic!("{other:?}"),
        };
        assert_eq!((f.seq, f.batch_rest, f.body_len), (42, 3, 5));
        assert_eq!(frame_body(&data, 8), b"hello");
        assert_eq!(read_frame(&data, 8 + f.total_len()), FrameRead::End);
        for i in 4..data.len() - 8 {
            let mut d = data.clone();
            d[8 + i] ^= 1;
            assert!(
                matches!(read_frame(&d, 8), FrameRead::Invalid(_)),
                "flip at {i}"
            );
        }
        assert!(matches!(
            read_frame(&data[..data.len() - 1], 8),
            FrameRead::Invalid(_)
        ));
    }
}
