//! Journal shipping between mirror members (docs/design/mirroring.md, "Shipping").
//!
//! The primary runs [`sender::serve_member`] for each connected member: it checks the
//! member's JOIN (mirror, and where the member's journal ends), catches the member up from
//! its journal files, then streams records from the journal's feed as they are written. The
//! member runs [`follower::follow`]: it appends what it receives verbatim
//! (`Journal::append_received`), syncs, and acknowledges its durable position.
//!
//! Invariant: a member's mirror journal is always a prefix of the primary's (same
//! positions, epochs and bytes); a member whose journal is not is refused at JOIN, never
//! streamed to.

pub mod follower;
#[cfg(test)]
mod fuzz_tests;
pub mod sender;
#[cfg(test)]
mod tests;
pub mod wire;

use crate::error::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum ShippingError {
    #[error("mirror channel I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("mirror channel protocol error: {0}")]
    Protocol(String),
    /// The primary refused this member; the reason says what to do.
    #[error("refused by the primary: {0}")]
    Rejected(String),
    #[error(transparent)]
    Journal(#[from] EngineError),
}

/// Each `(epoch, position)` in `frames` (consecutive record frames) where the epoch differs
/// from the record before it (`previous` for the first), in order: how a member's journal
/// summary grows as it receives records. Reads only the fixed header of each record.
pub fn epoch_changes(frames: &[u8], mut previous: u64) -> Result<Vec<(u64, u64)>, EngineError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < frames.len() {
        let crate::journal::record::Frame::Record(body) = crate::journal::record::check_frame(&frames[offset..]) else {
            return Err(EngineError::Invalid(format!("a malformed record frame at byte {offset} of a received batch")));
        };
        let field = |at: usize| body.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
        let (Some(position), Some(epoch)) = (field(0), field(8)) else {
            return Err(EngineError::Invalid(format!("a record too short for its header at byte {offset}")));
        };
        if epoch != previous {
            out.push((epoch, position));
            previous = epoch;
        }
        offset += crate::journal::record::FRAME_HEADER_BYTES + body.len();
    }
    Ok(out)
}

/// The summary of a journal read record by record from position 1 (`None` when the
/// journal no longer starts at 1). Blocking; for tests and for a member whose state file
/// lost its epoch list.
pub fn scan_summary(
    journal: &crate::journal::Journal,
) -> Result<Option<crate::mirror::failover::JournalSummary>, EngineError> {
    let mut summary = crate::mirror::failover::JournalSummary::new();
    if journal.segments().first().is_some_and(|s| s.first_position > 1) {
        return Ok(None);
    }
    for record in journal.read_from(1)? {
        let record = record?;
        summary.push(record.epoch, record.position);
    }
    Ok(Some(summary))
}

/// Aborts a task when dropped, so a cancelled sender or follower leaves nothing running
/// behind it (a follower task outliving its member would go on writing records).
pub(crate) struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Decodes a batch's frames, checking they hold exactly the positions `first..=last`.
pub fn decode_batch(first: u64, last: u64, frames: &[u8]) -> Result<Vec<crate::journal::Record>, EngineError> {
    let mut records = Vec::new();
    let mut offset = 0;
    let mut expected = first;
    while offset < frames.len() {
        let (r, used) = crate::journal::record::decode(&frames[offset..])
            .map_err(|e| EngineError::Invalid(format!("received record at position {expected}: {e}")))?;
        if r.position != expected {
            return Err(EngineError::Invalid(format!("received record {} where {expected} was announced", r.position)));
        }
        records.push(r);
        offset += used;
        expected += 1;
    }
    if expected != last + 1 {
        return Err(EngineError::Invalid(format!("batch {first}..={last} held records up to {}", expected - 1)));
    }
    Ok(records)
}
