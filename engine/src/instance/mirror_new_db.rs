//! New, empty mirrored databases (the reference's path that needs no file copy): the
//! primary marks the moment it added an empty database with a `MirrorNewDatabase` record
//! in the mirror journal; a member with an empty database of that name follows it from
//! that record on, adopted as the record arrives or when the operator activates it later.
//!
//! Invariant: only an empty, unmirrored database is adopted, so it equals the primary's
//! at the marker (both empty) and the records after the marker are exactly its history.

use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::RecordBody;
use crate::storage::{Database, DbMeta};
use std::ops::Bound;
use std::sync::Arc;

impl Instance {
    /// On a member, right after the marker at `position` was appended: adopts the local
    /// database `name` if it exists and is empty. Problems are logged, not returned: the
    /// record is in the journal either way, and `activate` finds it again.
    pub(crate) fn adopt_new_mirrored_database(&self, name: &str, position: u64) {
        let Ok(db) = self.database(name) else {
            tracing::info!(
                "the primary added new mirrored database {name}: create it here (empty) and activate it to follow it"
            );
            return;
        };
        match self.adopt_empty(&db, position, true) {
            Ok(true) => tracing::info!("database {name} follows the mirror from position {position} (new, empty)"),
            Ok(false) => {}
            Err(e) => tracing::warn!("database {name} could not follow the mirror as a new database: {e}"),
        }
    }

    /// Marks an empty, unmirrored database as a copy of the primary's at `position`.
    /// Returns false (changing nothing) when it is mirrored already or holds data.
    pub(crate) fn adopt_empty(&self, db: &Arc<Database>, position: u64, activated: bool) -> Result<bool> {
        let mirror = self.mirror.get().ok_or(EngineError::NotMirrored)?;
        if db.with_meta(DbMeta::is_mirrored) {
            return Ok(false);
        }
        let guid = self.config.lock().instance.guid.clone();
        let _c = self.checkpoint_lock.lock();
        let _w = self.write_lock.lock();
        if !is_empty(db)? {
            tracing::warn!(
                "database {} holds data here, so it cannot start as the primary's new empty database: copy the primary's file instead",
                db.name()
            );
            return Ok(false);
        }
        // Write-ahead: the file may claim the marker's position only once it is durable.
        mirror.journal.flush_to(position)?;
        let local = self.journal.last_position();
        db.update_meta(|m| mark_mirrored(m, &mirror.name, position, &guid, local, activated))?;
        Ok(true)
    }

    /// The position of the marker for new database `name` in this member's mirror
    /// journal, if it is still here.
    pub(crate) fn find_new_database_marker(&self, name: &str) -> Result<Option<u64>> {
        let journal = &self.mirror.get().ok_or(EngineError::NotMirrored)?.journal;
        let oldest = journal.segments().first().map_or(1, |s| s.first_position);
        if oldest > journal.last_position() {
            return Ok(None);
        }
        let mut found = None;
        for record in journal.read_from(oldest)? {
            let record = record?;
            if matches!(&record.body, RecordBody::MirrorNewDatabase { db } if db == name) {
                found = Some(record.position);
            }
        }
        Ok(found)
    }
}

pub(crate) fn is_empty(db: &Database) -> Result<bool> {
    Ok(db.scan(Bound::Unbounded, Bound::Unbounded, false, 1)?.is_empty())
}

/// The mirror attributes of a database that is current to `position` of the mirror
/// journal of `mirror` (and to `local` of this instance's own journal).
pub(crate) fn mark_mirrored(m: &mut DbMeta, mirror: &str, position: u64, guid: &str, local: u64, activated: bool) {
    m.mirror_name = mirror.to_string();
    m.mirror_db_name = m.name.clone();
    m.activated = activated;
    m.failover_eligible = true;
    m.journal_instance = format!("mirror:{mirror}");
    m.journal_position = position;
    m.recovery_from = position + 1;
    m.local_instance = guid.to_string();
    m.local_position = local;
    m.local_recovery_from = local + 1;
}
