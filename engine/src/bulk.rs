//! Pipelined appends for bulk loads (`logpulse-replay`): batches are encoded
//! on any number of threads ahead of time, queued to the writer in the order
//! the caller chooses, and waited for later, so that encoding, writing and
//! the caller's own work (parsing) overlap. The rows and their visibility
//! are exactly those of [`Engine::append`].

use crossbeam_channel::{bounded, Receiver};

use crate::durability::Durability;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::row::Row;
use crate::writer::{AppendReceipt, Batch, WriterMsg};

/// A batch encoded by [`Engine::prepare_append`], not yet queued.
pub struct PreparedAppend(Option<Batch>);

/// A queued batch; [`PendingAppend::wait`] returns what `append` would have.
pub struct PendingAppend(Receiver<Result<AppendReceipt>>);

impl PendingAppend {
    /// Waits until the batch is visible (or fsynced, for `Synced`).
    pub fn wait(self) -> Result<AppendReceipt> {
        self.0.recv().map_err(|_| Error::ShuttingDown)?
    }
}

impl Engine {
    /// The encoding half of [`Engine::append`]; runs on the calling thread
    /// and may run ahead of the batches before it.
    pub fn prepare_append(
        &self,
        rows: &[Row<'_>],
        durability: Durability,
    ) -> Result<PreparedAppend> {
        if rows.is_empty() {
            return Ok(PreparedAppend(None));
        }
        if let Some(p) = self.shared.poison_message() {
            return Err(Error::Poisoned(p));
        }
        self.prepare(rows, durability)
            .map(|b| PreparedAppend(Some(b)))
    }

    /// The writing half: queues the batch and returns without waiting for
    /// it. Batches get their seqs in the order they are queued. Blocks while
    /// the writer's queue is full (where `append` answers `Busy`).
    pub fn submit_append(&self, batch: PreparedAppend) -> Result<PendingAppend> {
        let (reply, answer) = bounded(1);
        match batch.0 {
            None => {
                let _ = reply.send(Ok(AppendReceipt::default()));
            }
            Some(batch) => self
                .tx
                .send(WriterMsg::Append { batch, reply })
                .map_err(|_| Error::ShuttingDown)?,
        }
        Ok(PendingAppend(answer))
    }
}
