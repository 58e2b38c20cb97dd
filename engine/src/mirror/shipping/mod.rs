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

/// The epoch of the record at `position` in `journal` (0 for position 0), `None` when the
/// journal no longer holds it (purged). Blocking: reads journal files.
pub(crate) fn epoch_at(journal: &crate::journal::Journal, position: u64) -> Result<Option<u64>, EngineError> {
    if position == 0 {
        return Ok(Some(0));
    }
    let oldest = journal.segments().first().map_or(1, |s| s.first_position);
    if position < oldest {
        return Ok(None);
    }
    match journal.read_from(position)?.next() {
        Some(record) => {
            let record = record?;
            Ok((record.position == position).then_some(record.epoch))
        }
        None => Ok(None),
    }
}
