//! Mirrored databases: adding one to the mirror on the primary, activating a copy on a
//! member (catch-up from the position recorded in its file), removing one from the
//! mirror, and their statuses in the reference vocabulary (Mirror Monitor).

use super::dejournal::{self, Counts, Follower, Followers, OpenTxns, TxnUndo};
use super::mirror::MirrorMode;
use super::mirror_new_db;
use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::RecordBody;
use crate::mirror::failover::DatabaseStatus;
use crate::mirror::status::MirroredDatabase;
use crate::storage::Database;
use std::sync::atomic::Ordering;

impl Instance {
    fn mirror_or_err(&self) -> Result<&super::mirror::MirrorJournal> {
        self.mirror.get().ok_or(EngineError::NotMirrored)
    }

    /// On the primary: marks a database mirrored. Its file is first brought up to date
    /// (checkpoint) in the same durable transaction that records its mirror attributes and
    /// its position, the mirror journal's durable end; from then on its writes go to the
    /// mirror journal. Returns that position: a copy of the file catches up from there.
    /// An empty database is also marked in the mirror journal (`MirrorNewDatabase`), so
    /// members may create theirs empty instead of copying the file.
    /// Idempotent (returns the position in the file).
    pub fn mirror_add_database(&self, name: &str) -> Result<u64> {
        let name = name.to_ascii_uppercase();
        let mirror = self.mirror_or_err()?;
        if !matches!(self.mirror_mode(), MirrorMode::Primary { .. }) {
            return Err(EngineError::Invalid(format!(
                "database {name} can be added to mirror {} only on the primary",
                mirror.name
            )));
        }
        let db = self.database(&name)?;
        let meta = db.meta();
        if meta.is_mirrored() {
            if meta.mirror_name == mirror.name {
                return Ok(meta.journal_position);
            }
            return Err(EngineError::Invalid(format!(
                "database {name} belongs to mirror {}, not {}",
                meta.mirror_name, mirror.name
            )));
        }
        let guid = self.config.lock().instance.guid.clone();
        let _c = self.checkpoint_lock.lock();
        if self.is_frozen() {
            return Err(EngineError::Frozen);
        }
        let _w = self.write_lock.lock();
        // An open transaction may have written the database through the local journal;
        // its commit or rollback must stay there.
        let open = self.open_txns.lock().len();
        if open > 0 {
            return Err(EngineError::Invalid(format!(
                "database {name} cannot be added to the mirror while {open} transaction(s) are open; retry when they end"
            )));
        }
        let empty = mirror_new_db::is_empty(&db)?;
        let captured = db.capture_checkpoint();
        let local = self.journal.last_position();
        self.journal.flush_to(local)?;
        let mut position = mirror.journal.last_position();
        mirror.journal.flush_to(position)?;
        db.write_checkpoint_with(captured, |m| {
            mirror_new_db::mark_mirrored(m, &mirror.name, position, &guid, local, true)
        })?;
        if empty {
            // Still under the write lock: no write of this database precedes the marker.
            position = mirror.journal.append(0, &RecordBody::MirrorNewDatabase { db: name.clone() });
            // Write-ahead: the file may claim the marker's position only once it is durable.
            mirror.journal.flush_to(position)?;
            db.update_meta(|m| {
                m.journal_position = position;
                m.recovery_from = position + 1;
            })?;
        }
        tracing::info!("database {name} added to mirror {} at mirror journal position {position}", mirror.name);
        Ok(position)
    }

    /// On a member: activates a mirrored database whose file (a copy of the primary's,
    /// mounted) says it is current to position P of the mirror journal: replays this
    /// member's mirror journal from P + 1 into it, then applies what arrives. Fails, with
    /// status Needs Catchup, when P + 1 is no longer in this member's journal. Idempotent.
    pub fn mirror_activate_database(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        let mirror = self.mirror_or_err()?;
        let db = self.database(&name)?;
        if !db.with_meta(|m| m.is_mirrored()) {
            // A new database the primary added empty: this member's empty one follows it
            // from the primary's marker, if that is still in this member's journal.
            let adopted = match self.find_new_database_marker(&name)? {
                Some(at) => self.adopt_empty(&db, at, false)?,
                None => false,
            };
            if !adopted {
                return Err(EngineError::Invalid(format!(
                    "database {name} is not a mirrored database here: copy the primary's file (a database the primary added empty can start empty here only while it is empty and the primary's marker is in this member's journal)"
                )));
            }
        }
        let meta = db.meta();
        if meta.mirror_name != mirror.name {
            return Err(EngineError::Invalid(format!(
                "database {name} belongs to mirror {}, not {}",
                meta.mirror_name, mirror.name
            )));
        }
        if meta.activated {
            return Ok(());
        }
        // Under the write lock: nothing is received while the database catches up, so it
        // is current with the journal's end when it starts following it.
        let _w = self.write_lock.lock();
        let journal = &mirror.journal;
        journal.flush_to(journal.last_position())?;
        let p = meta.journal_position;
        let oldest = journal.segments().first().map_or(1, |s| s.first_position);
        if p + 1 < oldest {
            self.mirror_state.lock().needs_catchup.insert(name.clone());
            return Err(EngineError::Invalid(format!(
                "database {name} needs catch-up from the primary: journal from position {} is no longer here (this member's mirror journal starts at {oldest}); copy the database again or catch it up from the primary's journal",
                p + 1
            )));
        }
        // From where its transactions open at P started, if still here (their undo is
        // needed should the next primary roll them back).
        let from = if meta.recovery_from >= oldest { meta.recovery_from } else { p + 1 };
        self.mirror_state.lock().catchup_running.insert(name.clone());
        let result = self.catch_up(&db, p, from);
        let mut state = self.mirror_state.lock();
        state.catchup_running.remove(&name);
        let counts = result?;
        state.needs_catchup.remove(&name);
        drop(state);
        tracing::info!(
            "database {name} activated in mirror {}: caught up from position {} ({} records applied)",
            mirror.name,
            p + 1,
            counts.applied
        );
        Ok(())
    }

    /// With the write lock held: replays the mirror journal from `from` into `db` (redo
    /// above `after`), adds its open transactions' undo to the instance's, marks it
    /// activated.
    fn catch_up(&self, db: &std::sync::Arc<Database>, after: u64, from: u64) -> Result<Counts> {
        let journal = &self.mirror_or_err()?.journal;
        let followers: Followers = [(db.name().to_string(), Follower { db: db.clone(), after })].into();
        let mut open = OpenTxns::new();
        let mut counts = Counts::default();
        if from <= journal.last_position() {
            for record in journal.read_from(from)? {
                dejournal::apply(record?, &followers, &mut open, &mut counts)?;
            }
        }
        {
            let mut txns = self.mirror_txns.lock();
            for (id, t) in open {
                let entry = txns.entry(id).or_insert_with(|| TxnUndo { tstart: t.tstart, undo: Vec::new() });
                entry.tstart = entry.tstart.min(t.tstart);
                entry.undo.extend(t.undo);
            }
        }
        self.next_txn.fetch_max(counts.max_txn + 1, Ordering::SeqCst);
        db.update_meta(|m| m.activated = true)?;
        Ok(counts)
    }

    /// Stops mirroring a database: it stays, as a database of this instance that follows
    /// the local journal from its end on. Idempotent.
    pub fn mirror_remove_database(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        let db = self.database(&name)?;
        if !db.with_meta(|m| m.is_mirrored()) {
            return Ok(());
        }
        let guid = self.config.lock().instance.guid.clone();
        let _c = self.checkpoint_lock.lock();
        if self.is_frozen() {
            return Err(EngineError::Frozen);
        }
        let _w = self.write_lock.lock();
        let open = self.mirror_txns.lock().values().filter(|t| t.undo.iter().any(|u| u.db.name() == name)).count();
        if open > 0 {
            return Err(EngineError::Invalid(format!(
                "database {name} cannot leave the mirror while {open} open mirror transaction(s) wrote it; retry when they end"
            )));
        }
        let captured = db.capture_checkpoint();
        // Write-ahead rule for whatever the cache holds from either journal.
        if let Some(m) = self.mirror.get() {
            m.journal.flush_to(m.journal.last_position())?;
        }
        let local = self.journal.last_position();
        self.journal.flush_to(local)?;
        let recovery_from = self.open_txns.lock().values().next().copied().unwrap_or(local + 1).min(local + 1);
        db.write_checkpoint_with(captured, |m| {
            m.mirror_name.clear();
            m.mirror_db_name.clear();
            m.activated = false;
            m.journal_instance = guid.clone();
            m.journal_position = local;
            m.recovery_from = recovery_from;
            m.local_instance.clear();
            m.local_position = 0;
            m.local_recovery_from = 0;
        })?;
        self.mirror_state.lock().needs_catchup.remove(&name);
        tracing::info!("database {name} removed from the mirror: it follows the local journal from position {local}");
        Ok(())
    }

    /// A mirrored database mounted while the instance runs missed what arrived while it was
    /// not mounted: it needs activation again, which catches it up.
    pub(crate) fn deactivate_if_behind(&self, db: &Database) -> Result<()> {
        let Some(mirror) = self.mirror.get() else { return Ok(()) };
        let meta = db.meta();
        let last = mirror.journal.last_position();
        if self.follows_mirror(&meta) && meta.journal_position < last {
            db.update_meta(|m| m.activated = false)?;
            tracing::warn!(
                "database {}: mirrored database at position {} while the mirror journal is at {last}; activate it to catch up",
                db.name(),
                meta.journal_position
            );
        }
        Ok(())
    }

    /// Every mirrored database this member holds, with its status and the mirror journal
    /// position its content reflects. A database this member follows applies every record
    /// when it is appended (under the write lock), so its position is the journal's end
    /// unless its file is further still.
    pub fn mirror_databases(&self) -> Vec<MirroredDatabase> {
        let last = self.mirror.get().map_or(0, |m| m.journal.last_position());
        let primary = matches!(self.mirror_mode(), MirrorMode::Primary { .. });
        let dbs: Vec<_> = self.databases.read().values().cloned().collect();
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for db in dbs {
            let meta = db.meta();
            if !meta.is_mirrored() {
                continue;
            }
            let follows = self.follows_mirror(&meta);
            let state = self.mirror_state.lock();
            let status = if state.catchup_running.contains(db.name()) {
                DatabaseStatus::CatchupRunning
            } else if state.needs_catchup.contains(db.name()) {
                DatabaseStatus::NeedsCatchup
            } else if Some(meta.mirror_name.as_str()) != self.mirror_name() {
                DatabaseStatus::Obsolete
            } else if !follows {
                DatabaseStatus::NeedsActivation
            } else if primary {
                DatabaseStatus::Normal
            } else {
                DatabaseStatus::Dejournaling
            };
            let position = if follows { meta.journal_position.max(last) } else { meta.journal_position };
            seen.push(db.name().to_string());
            out.push(MirroredDatabase { name: db.name().to_string(), status, position });
        }
        for (name, position) in self.mirror_state.lock().dismounted.iter() {
            if !seen.contains(name) {
                out.push(MirroredDatabase {
                    name: name.clone(),
                    status: DatabaseStatus::Dismounted,
                    position: *position,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
