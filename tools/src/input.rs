//! NDJSON input: plain files, `.gz` files and stdin (`-`), cut into chunks of
//! whole lines. Line numbers count every line (blank ones too) across all
//! inputs in the order given, starting at 0, so that `--from-line N` skips
//! exactly the first N lines of the concatenation.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

/// One input as named on the command line.
#[derive(Clone, Debug)]
pub enum Source {
    Stdin,
    Plain(PathBuf),
    Gzip(PathBuf),
}

impl Source {
    /// `-` is stdin; a name ending in `.gz` is gzip; anything else is plain.
    pub fn parse(arg: &Path) -> Source {
        if arg == Path::new("-") {
            Source::Stdin
        } else if arg.extension().is_some_and(|e| e == "gz") {
            Source::Gzip(arg.to_path_buf())
        } else {
            Source::Plain(arg.to_path_buf())
        }
    }

    /// Bytes on disk, when known (for the progress bar).
    pub fn size(&self) -> Option<u64> {
        match self {
            Source::Stdin => None,
            Source::Plain(p) | Source::Gzip(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".into(),
            Source::Plain(p) | Source::Gzip(p) => p.display().to_string(),
        }
    }

    /// A reader of the decoded bytes; `consumed` counts raw bytes read.
    pub fn open(&self, consumed: Arc<AtomicU64>) -> Result<Box<dyn Read + Send>> {
        Ok(match self {
            Source::Stdin => Box::new(Counting {
                inner: io::stdin(),
                consumed,
            }),
            Source::Plain(p) => Box::new(Counting {
                inner: File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
                consumed,
            }),
            Source::Gzip(p) => {
                let f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
                let raw = io::BufReader::with_capacity(1 << 20, Counting { inner: f, consumed });
                Box::new(flate2::bufread::MultiGzDecoder::new(raw))
            }
        })
    }
}

struct Counting<R> {
    inner: R,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A run of whole lines.
#[derive(Debug)]
pub struct Chunk {
    /// Position of the chunk in the stream (0, 1, 2, ...).
    pub no: u64,
    /// Line number of its first line.
    pub first_line: u64,
    /// Lines it holds (blank ones included).
    pub lines: u64,
    /// The lines, each ending in `\n` (the last one may lack it).
    pub data: Vec<u8>,
}

/// Cuts the concatenation of `sources` into chunks of `lines_per_chunk`
/// lines, skipping the first `from_line` lines, and hands each to `emit`
/// (which may stop the reading by returning `false`). `buffers` recycles
/// chunk buffers. Returns the number of lines seen (skipped ones included).
pub fn read_chunks(
    sources: &[Source],
    lines_per_chunk: usize,
    from_line: u64,
    consumed: Arc<AtomicU64>,
    mut next_buffer: impl FnMut() -> Vec<u8>,
    mut emit: impl FnMut(Chunk) -> bool,
) -> Result<u64> {
    let mut cut = Cutter {
        lines_per_chunk: lines_per_chunk.max(1) as u64,
        skip: from_line,
        line: 0,
        no: 0,
        cur: Chunk {
            no: 0,
            first_line: from_line,
            lines: 0,
            data: next_buffer(),
        },
    };
    let mut buf = vec![0u8; 1 << 20];
    for src in sources {
        let mut r = src.open(consumed.clone())?;
        let mut last = b'\n';
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", src.name())),
            };
            last = buf[n - 1];
            if !cut.feed(&buf[..n], &mut next_buffer, &mut emit) {
                return Ok(cut.line);
            }
        }
        // An input whose last line lacks its newline: the line ends there.
        if last != b'\n' && !cut.feed(b"\n", &mut next_buffer, &mut emit) {
            return Ok(cut.line);
        }
    }
    if cut.cur.lines > 0 {
        emit(cut.cur);
    }
    Ok(cut.line)
}

struct Cutter {
    lines_per_chunk: u64,
    /// Lines still to skip.
    skip: u64,
    /// Lines completed so far.
    line: u64,
    no: u64,
    cur: Chunk,
}

impl Cutter {
    /// Takes in bytes; returns false if `emit` asked to stop.
    fn feed(
        &mut self,
        mut bytes: &[u8],
        next_buffer: &mut impl FnMut() -> Vec<u8>,
        emit: &mut impl FnMut(Chunk) -> bool,
    ) -> bool {
        while self.skip > 0 {
            let Some(i) = memchr::memchr(b'\n', bytes) else {
                return true;
            };
            bytes = &bytes[i + 1..];
            self.skip -= 1;
            self.line += 1;
        }
        while !bytes.is_empty() {
            let want = (self.lines_per_chunk - self.cur.lines) as usize;
            let (mut taken, mut end) = (0, 0);
            for i in memchr::memchr_iter(b'\n', bytes) {
                taken += 1;
                end = i + 1;
                if taken == want {
                    break;
                }
            }
            self.cur.lines += taken as u64;
            self.line += taken as u64;
            if taken < want {
                self.cur.data.extend_from_slice(bytes);
                return true;
            }
            self.cur.data.extend_from_slice(&bytes[..end]);
            bytes = &bytes[end..];
            self.no += 1;
            let next = Chunk {
                no: self.no,
                first_line: self.line,
                lines: 0,
                data: next_buffer(),
            };
            if !emit(std::mem::replace(&mut self.cur, next)) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str, per: usize, from: u64) -> Vec<(u64, u64, String)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("in.ndjson");
        std::fs::write(&p, text).unwrap();
        let mut out = Vec::new();
        read_chunks(
            &[Source::Plain(p)],
            per,
            from,
            Arc::default(),
            Vec::new,
            |c| {
                out.push((c.first_line, c.lines, String::from_utf8(c.data).unwrap()));
                true
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn cuts_whole_lines_and_skips() {
        let t = "a\nb\n\nc\nd";
        assert_eq!(
            chunks(t, 2, 0),
            vec![
                (0, 2, "a\nb\n".into()),
                (2, 2, "\nc\n".into()),
                (4, 1, "d\n".into())
            ]
        );
        assert_eq!(chunks(t, 10, 3), vec![(3, 2, "c\nd\n".into())]);
        assert_eq!(chunks(t, 10, 9), Vec::<(u64, u64, String)>::new());
    }
}
