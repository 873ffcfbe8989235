//! Offline replay: NDJSON files straight into a data dir, through the same
//! `parse_body` and `Engine::append` as the Events API.
//!
//! A reader thread cuts the input into chunks of lines; worker threads parse
//! and encode chunks in parallel, then queue them to the engine's writer
//! strictly in input order (a turn counter), so rows get the same seqs as a
//! sequential replay would give them; a collector thread waits for the
//! queued batches in that same order and keeps the count, so workers never
//! wait for the writer.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use anyhow::{anyhow, Result};
use crossbeam_channel::{bounded, Sender};
use logpulse_engine::bulk::PendingAppend;
use logpulse_engine::{DataSource, Durability, Engine};
use logpulse_model::ingest::{parse_body, Import};

use super::{Progress, Summary};
use crate::input::{read_chunks, Chunk, Source};

/// Settings of an offline replay.
#[derive(Clone, Debug)]
pub struct OfflineOptions {
    pub datasource: DataSource,
    pub lines_per_batch: usize,
    pub from_line: u64,
    /// Parser threads (at least 1).
    pub threads: usize,
    /// Stamped on quarantine rows as `c__import_id`.
    pub import_id: String,
}

/// Whose turn it is to queue a batch: chunks are queued in input order.
struct Turn {
    next: Mutex<u64>,
    cv: Condvar,
    failed: AtomicBool,
}

impl Turn {
    /// Waits for chunk `no`'s turn; false if the replay failed meanwhile.
    fn wait(&self, no: u64) -> bool {
        let mut next = self.next.lock().expect("turn lock");
        while *next != no && !self.failed.load(Ordering::Relaxed) {
            next = self.cv.wait(next).expect("turn lock");
        }
        !self.failed.load(Ordering::Relaxed)
    }

    fn done(&self, no: u64) {
        *self.next.lock().expect("turn lock") = no + 1;
        self.cv.notify_all();
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Relaxed);
        let _g = self.next.lock().expect("turn lock");
        self.cv.notify_all();
    }
}

/// A batch queued to the writer, for the collector.
struct Queued {
    lines: Range<u64>,
    stored: u64,
    quarantined: u64,
    reasons: Vec<String>,
    pending: PendingAppend,
}

/// The first failure: the first line of its batch, and why.
type Failure = Mutex<Option<(u64, anyhow::Error)>>;

fn fail(failure: &Failure, turn: &Turn, line: u64, e: anyhow::Error) {
    let mut f = failure.lock().expect("failure lock");
    if f.as_ref().is_none_or(|(l, _)| line < *l) {
        *f = Some((line, e));
    }
    turn.fail();
}

/// Replays `sources` into `engine`. The engine is not closed here.
pub fn replay_files(
    engine: &Engine,
    sources: &[Source],
    opts: &OfflineOptions,
    progress: &Progress,
) -> Result<Summary> {
    let t0 = Instant::now();
    let threads = opts.threads.max(1);
    let (chunk_tx, chunk_rx) = bounded::<Chunk>(threads * 2);
    let (buf_tx, buf_rx) = bounded::<Vec<u8>>(threads * 3);
    let (queued_tx, queued_rx) = bounded::<Queued>(threads * 4);
    let mut summary = Summary::default();
    let turn = Turn {
        next: Mutex::new(0),
        cv: Condvar::new(),
        failed: AtomicBool::new(false),
    };
    let failure: Failure = Mutex::new(None);
    let lines = std::thread::scope(|s| {
        let (turn, failure, summary) = (&turn, &failure, &mut summary);
        s.spawn(move || {
            for q in queued_rx {
                match q.pending.wait() {
                    Ok(_) => {
                        summary.add_counts(q.stored, q.quarantined, &q.reasons, q.lines.end);
                        progress.rows(summary.stored + summary.quarantined);
                    }
                    Err(e) => {
                        let e = anyhow!(e).context(format!(
                            "append of lines {}..{} failed",
                            q.lines.start, q.lines.end
                        ));
                        fail(failure, turn, q.lines.start, e);
                    }
                }
            }
        });
        for _ in 0..threads {
            let (rx, buf_tx, queued_tx) = (chunk_rx.clone(), buf_tx.clone(), queued_tx.clone());
            s.spawn(move || {
                for mut chunk in rx {
                    let first = chunk.first_line;
                    if let Err(e) = queue_chunk(engine, opts, &mut chunk, turn, &buf_tx, &queued_tx)
                    {
                        fail(failure, turn, first, e);
                        return;
                    }
                }
            });
        }
        drop((chunk_rx, queued_tx));
        let next_buffer = || buf_rx.try_recv().unwrap_or_default();
        let res = read_chunks(
            sources,
            opts.lines_per_batch,
            opts.from_line,
            progress.consumed(),
            next_buffer,
            |c| !turn.failed.load(Ordering::Relaxed) && chunk_tx.send(c).is_ok(),
        );
        drop(chunk_tx);
        res
    });
    if let Some((line, e)) = failure.into_inner().expect("failure lock") {
        return Err(e.context(format!(
            "replay stopped; rows before line {line} are stored, resume with --from-line {line}"
        )));
    }
    summary.next_line = summary.next_line.max(lines?);
    summary.elapsed = t0.elapsed();
    Ok(summary)
}

/// Parses and encodes a chunk, then queues it in its turn.
fn queue_chunk(
    engine: &Engine,
    opts: &OfflineOptions,
    chunk: &mut Chunk,
    turn: &Turn,
    buffers: &Sender<Vec<u8>>,
    queued: &Sender<Queued>,
) -> Result<()> {
    let import = Import {
        id: &opts.import_id,
        now: logpulse_model::time::now(),
    };
    let lines = chunk.first_line..chunk.first_line + chunk.lines;
    let parsed = parse_body(opts.datasource, &chunk.data, &import);
    let (stored, quarantined) = (parsed.successful, parsed.quarantined);
    let reasons = parsed.reasons.clone();
    let batch = engine.prepare_append(&parsed.rows, Durability::Visible);
    drop(parsed);
    let mut data = std::mem::take(&mut chunk.data);
    data.clear();
    let _ = buffers.try_send(data);
    let batch = batch.map_err(|e| anyhow!(e).context("rows could not be encoded"))?;
    if !turn.wait(chunk.no) {
        return Ok(());
    }
    let pending = engine.submit_append(batch);
    let sent = pending.map(|pending| {
        queued.send(Queued {
            lines: lines.clone(),
            stored,
            quarantined,
            reasons,
            pending,
        })
    });
    turn.done(chunk.no);
    match sent {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(anyhow!("replay stopped")),
        Err(e) => Err(anyhow!(e).context(format!(
            "append of lines {}..{} failed",
            lines.start, lines.end
        ))),
    }
}
