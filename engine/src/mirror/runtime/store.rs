//! What the mirror runtime needs from the engine beside it: the mirror journal, the write
//! gate, the commit gate, and the database operations of failover and rejoin. Behind a
//! trait so the runtime can be driven over a fake in tests and the instance stays unaware
//! of sockets.

use crate::error::EngineError;
use crate::journal::{Journal, Position};
use crate::mirror::status::MirroredDatabase;
use std::sync::Arc;

/// Who may write mirrored databases on this member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Primary: writes go to the mirror journal; refused while not `open` (transition).
    Primary { open: bool },
    /// Backup or async: mirrored databases are read-only unless `writable` (read-write
    /// reporting).
    Member { writable: bool },
}

pub trait MirrorStore: Send + Sync + 'static {
    fn mirror_journal(&self) -> Arc<Journal>;
    fn set_write_mode(&self, mode: WriteMode);
    /// The failover core confirmed commits up to `upto` (local fsync and backup receipt).
    fn ack_commits(&self, upto: Position);
    /// Fails every commit waiting for confirmation (this member stopped being primary).
    fn fail_pending_commits(&self, reason: &str);
    /// Becomes primary of `epoch`: stamps new records with it and rolls back the
    /// transactions left open in the mirror journal. Blocking.
    fn promote(&self, epoch: u64) -> Result<(), EngineError>;
    /// Appends received records verbatim and applies them; returns the last position
    /// appended. Blocking.
    fn receive(&self, first: Position, last: Position, frames: &[u8]) -> Result<Position, EngineError>;
    /// Undoes and drops every mirror journal record after `to`. Blocking.
    fn rewind(&self, to: Position) -> Result<(), EngineError>;
    /// Journal positions a connected member still needs start at `floor` (purge keeps them).
    fn set_purge_floor(&self, floor: Position);
    fn add_database(&self, name: &str) -> Result<Position, EngineError>;
    fn activate_database(&self, name: &str) -> Result<(), EngineError>;
    fn remove_database(&self, name: &str) -> Result<(), EngineError>;
    fn databases(&self) -> Vec<MirroredDatabase>;
}
