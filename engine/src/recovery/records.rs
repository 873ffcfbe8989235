//! Scanning a segment file on open: validate every frame, find where the
//! valid records end, and tell a torn tail from damage in synced data.
//!
//! Policy (fjall's `TolerateCorruptTail`): an invalid frame at or past the
//! header's `synced_len` is a torn tail and is dropped; an invalid frame
//! before it is corruption, reported with file and offset.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::segment::format::{read_frame, Frame, FrameRead, Header, HEADER_LEN};
use crate::segment::mmap::ReadMap;

/// Damage found after the last valid frame.
#[derive(Debug, Clone)]
pub struct Tail {
    pub offset: u64,
    pub reason: &'static str,
    /// Non-zero bytes follow the last valid frame (not just preallocation).
    pub garbage: bool,
}

/// What a scan found.
#[derive(Debug)]
pub struct Scan {
    pub header: Header,
    pub file_len: u64,
    /// End of the last valid frame.
    pub valid_end: u64,
    pub tail: Option<Tail>,
}

/// Scans `path`, calling `on_record(offset, frame, body)` for every valid
/// frame in file order.
pub fn scan(
    path: &Path,
    mut on_record: impl FnMut(u32, Frame, &[u8]) -> Result<()>,
) -> Result<Scan> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let map = ReadMap::open(&file).map_err(|e| Error::io(path, e))?;
    let data = map.bytes();
    let header = Header::decode(path, data)?;
    let mut off = HEADER_LEN;
    let mut tail = None;
    loop {
        match read_frame(data, off) {
            FrameRead::Frame(f) => {
                let body =
                    &data[off + crate::segment::format::FRAME_HEADER_LEN..off + f.total_len()];
                on_record(off as u32, f, body)?;
                off += f.total_len();
            }
            FrameRead::End => {
                let garbage = data[off.min(data.len())..].iter().any(|b| *b != 0);
                if garbage {
                    tail = Some(Tail {
                        offset: off as u64,
                        reason: "non-zero bytes after the end marker",
                        garbage,
                    });
                }
                break;
            }
            FrameRead::Invalid(reason) => {
                tail = Some(Tail {
                    offset: off as u64,
                    reason,
                    garbage: true,
                });
                break;
            }
        }
    }
    if (off as u64) < header.synced_len {
        let reason = tail
            .as_ref()
            .map_or("records end before the synced length", |t| t.reason);
        return Err(Error::corrupt(
            path,
            off as u64,
            format!(
                "{reason} inside synced data (synced up to {})",
                header.synced_len
            ),
        ));
    }
    Ok(Scan {
        header,
        file_len: data.len() as u64,
        valid_end: off as u64,
        tail,
    })
}
