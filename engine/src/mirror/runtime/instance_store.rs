//! The instance as the mirror runtime's store.

use super::store::{MirrorStore, WriteMode};
use crate::error::EngineError;
use crate::instance::Instance;
use crate::instance::MirrorMode;
use crate::journal::{Journal, Position};
use crate::mirror::status::MirroredDatabase;
use std::sync::Arc;

pub struct InstanceStore {
    instance: Arc<Instance>,
    journal: Arc<Journal>,
}

impl InstanceStore {
    /// The store of `instance`'s configured mirror (opening its mirror journal).
    pub fn open(instance: Arc<Instance>) -> Result<InstanceStore, EngineError> {
        let journal = instance.open_mirror_journal()?;
        Ok(InstanceStore { instance, journal })
    }
}

impl MirrorStore for InstanceStore {
    fn mirror_journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    fn set_write_mode(&self, mode: WriteMode) {
        let mode = match mode {
            WriteMode::Primary { open } => MirrorMode::Primary { open },
            WriteMode::Member { writable } => MirrorMode::Member { writable },
        };
        if let Err(e) = self.instance.set_mirror_mode(mode) {
            tracing::error!("mirror: cannot switch to {mode:?}: {e}");
        }
    }

    fn ack_commits(&self, upto: Position) {
        self.instance.mirror_ack(upto);
    }

    fn fail_pending_commits(&self, reason: &str) {
        self.instance.mirror_fail_pending(reason);
    }

    fn promote(&self, epoch: u64) -> Result<(), EngineError> {
        self.instance.promote(epoch)
    }

    fn receive(&self, first: Position, last: Position, frames: &[u8]) -> Result<Position, EngineError> {
        self.instance.apply_received(first, last, frames)
    }

    fn rewind(&self, to: Position) -> Result<(), EngineError> {
        self.instance.rewind_mirror(to).map(|report| tracing::warn!("mirror: rewound: {report:?}"))
    }

    fn set_purge_floor(&self, floor: Position) {
        self.instance.set_mirror_purge_floor(floor);
    }

    fn add_database(&self, name: &str) -> Result<Position, EngineError> {
        self.instance.mirror_add_database(name)
    }

    fn activate_database(&self, name: &str) -> Result<(), EngineError> {
        self.instance.mirror_activate_database(name)
    }

    fn remove_database(&self, name: &str) -> Result<(), EngineError> {
        self.instance.mirror_remove_database(name)
    }

    fn databases(&self) -> Vec<MirroredDatabase> {
        self.instance.mirror_databases()
    }
}
