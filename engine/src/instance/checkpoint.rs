//! The write daemon's work: checkpoints (database files brought up to a journal position),
//! journal purge, and freeze/thaw for external backups.

use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::Journal;
use crate::storage::database::Checkpoint;
use crate::storage::Database;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest a freeze may last before it thaws by itself.
pub const MAX_FREEZE_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// A journal's position as of a capture, and where its recovery must start.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JournalPoint {
    pub(crate) position: u64,
    pub(crate) recovery_from: u64,
}

/// What a checkpoint captured under the write lock.
pub(crate) struct Captured {
    pub(crate) local: JournalPoint,
    pub(crate) mirror: Option<JournalPoint>,
    pub(crate) dbs: Vec<(Checkpoint, Arc<Database>)>,
}

impl Instance {
    /// Writes every database's changes up to one position of each journal. Skipped while
    /// frozen.
    pub fn checkpoint(&self) -> Result<()> {
        let _c = self.checkpoint_lock.lock();
        self.checkpoint_locked()
    }

    /// A checkpoint with `checkpoint_lock` held by the caller.
    pub(crate) fn checkpoint_locked(&self) -> Result<()> {
        if self.frozen_until.lock().is_some() {
            return Ok(());
        }
        let captured = {
            let _w = self.write_lock.lock();
            self.capture_locked()
        };
        self.write_captured(captured, None)?;
        self.purge_journals()
    }

    /// With the write lock held: each journal's last position and where recovery must
    /// read it from (the oldest open transaction's TSTART), and every database's dirty
    /// entries. The capture is exactly the state at those positions.
    pub(crate) fn capture_locked(&self) -> Captured {
        let local = self.journal.last_position();
        let oldest_local = self.open_txns.lock().values().next().copied();
        let mirror = self.mirror.get().map(|m| {
            let last = m.journal.last_position();
            let oldest = self.mirror_txns.lock().values().map(|t| t.tstart).min();
            JournalPoint { position: last, recovery_from: oldest.unwrap_or(last + 1).min(last + 1) }
        });
        let dbs: Vec<_> = self.databases.read().values().cloned().collect();
        Captured {
            local: JournalPoint { position: local, recovery_from: oldest_local.unwrap_or(local + 1).min(local + 1) },
            mirror,
            dbs: dbs.into_iter().map(|d| (d.capture_checkpoint(), d)).collect(),
        }
    }

    /// Writes a capture to the database files, after making each journal durable up to
    /// its captured position (write-ahead rule). `mirror_at` sets the mirror position of
    /// the mirrored databases instead of the captured one (a rewind sets it back).
    pub(crate) fn write_captured(&self, captured: Captured, mirror_at: Option<u64>) -> Result<()> {
        let local = captured.local;
        self.journal.flush_to(local.position)?;
        if let (Some(m), Some(point)) = (self.mirror.get(), captured.mirror) {
            m.journal.flush_to(point.position)?;
        }
        let guid = self.config.lock().instance.guid.clone();
        for (cp, db) in captured.dbs {
            let meta = db.meta();
            let mut next = meta.clone();
            if !meta.is_mirrored() {
                next.journal_position = local.position;
                next.recovery_from = local.recovery_from;
            } else {
                // A mirrored database also records the local journal: a read-write
                // reporting member writes it through that journal.
                next.local_instance = guid.clone();
                next.local_position = local.position;
                next.local_recovery_from = local.recovery_from;
                if let (Some(point), true) = (captured.mirror, self.follows_mirror(&meta)) {
                    // A copy can be ahead of this member's journal: never move it back,
                    // except on purpose (rewind).
                    let position = mirror_at.unwrap_or(point.position.max(meta.journal_position));
                    next.journal_position = position;
                    next.recovery_from = point.recovery_from.min(position + 1);
                }
            }
            if cp.is_empty() && next == meta {
                continue;
            }
            let (entries, started) = (cp.len(), std::time::Instant::now());
            db.write_checkpoint_with(cp, |m| *m = next)?;
            tracing::debug!(
                "checkpoint of database {}: {entries} entries in {} ms, {} bytes still dirty, {} cached",
                db.name(),
                started.elapsed().as_millis(),
                db.dirty_bytes(),
                db.cache_bytes()
            );
        }
        Ok(())
    }

    /// Whether this member applies the mirror journal to a database with this metadata.
    pub(crate) fn follows_mirror(&self, meta: &crate::storage::DbMeta) -> bool {
        meta.activated && self.mirror_name() == Some(meta.mirror_name.as_str())
    }

    /// Purges each journal of the files no database and no open transaction needs.
    fn purge_journals(&self) -> Result<()> {
        // A database that failed to mount still needs its part of the journals (recovery
        // replays it once the database is back); nothing is purged until then.
        if !self.mount_errors.lock().is_empty() {
            return Ok(());
        }
        let guid = self.config.lock().instance.guid.clone();
        let dbs: Vec<_> = self.databases.read().values().map(|d| d.meta()).collect();
        let local_needed = dbs
            .iter()
            .filter_map(|m| {
                if !m.is_mirrored() {
                    Some(m.recovery_from)
                } else {
                    (m.local_instance == guid).then_some(m.local_recovery_from)
                }
            })
            .chain(self.open_txns.lock().values().copied())
            .min();
        self.purge_journal(&self.journal, local_needed, "journal")?;
        if let Some(mirror) = self.mirror.get() {
            // Every mirrored database of this mirror, activated or not (an inactive copy
            // catches up from its position when activated), the open transactions, and
            // what the connected members still need.
            let floor = self.mirror_state.lock().purge_floor;
            let needed = dbs
                .iter()
                .filter(|m| m.mirror_name == mirror.name)
                .map(|m| m.recovery_from.min(m.journal_position + 1))
                .chain(self.mirror_txns.lock().values().map(|t| t.tstart))
                .chain((floor > 0).then_some(floor))
                .min();
            self.purge_journal(&mirror.journal, needed, "mirror journal")?;
        }
        Ok(())
    }

    /// Removes journal files that recovery no longer needs (`needed`: the lowest position
    /// still needed) and that are older than the retention setting; never the current file.
    fn purge_journal(&self, journal: &Journal, needed: Option<u64>, what: &str) -> Result<()> {
        let needed = needed.unwrap_or(journal.last_position() + 1);
        let retention = Duration::from_secs(self.config.lock().journal.purge_after_minutes * 60);
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        // A file ends when the next one starts: it is old once its successor was created
        // before the cutoff.
        let segments = journal.segments();
        let mut keep_from = needed;
        for pair in segments.windows(2) {
            if pair[1].created_ms >= cutoff {
                keep_from = keep_from.min(pair[0].first_position);
                break;
            }
        }
        if segments.len() < 2 {
            return Ok(());
        }
        for path in journal.purge(keep_from)? {
            tracing::info!("purged {what} file {}", path.display());
        }
        Ok(())
    }

    /// Freeze for an external backup: database files are brought up to date, then not
    /// written until [`Instance::thaw`] or the timeout; the journal keeps accepting writes.
    pub fn freeze(&self, timeout: Option<Duration>) -> Result<()> {
        let timeout = timeout.unwrap_or(Duration::from_secs(self.config.lock().storage.freeze_timeout_s));
        if timeout > MAX_FREEZE_TIMEOUT {
            return Err(EngineError::Invalid(format!(
                "a freeze thaws by itself after at most {} s (24 hours), not {} s: give a shorter timeout_s \
                 (or storage.freeze_timeout_s), and thaw when done",
                MAX_FREEZE_TIMEOUT.as_secs(),
                timeout.as_secs()
            )));
        }
        if self.frozen_until.lock().is_some() {
            return Err(EngineError::Invalid("the instance is already frozen".into()));
        }
        self.checkpoint()?;
        let _c = self.checkpoint_lock.lock();
        *self.frozen_until.lock() = Some(Instant::now() + timeout);
        tracing::info!("database writes frozen for up to {} s", timeout.as_secs());
        Ok(())
    }

    pub fn thaw(&self) -> Result<()> {
        if self.frozen_until.lock().take().is_none() {
            return Err(EngineError::Invalid("the instance is not frozen".into()));
        }
        tracing::info!("database writes thawed");
        Ok(())
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen_until.lock().is_some()
    }

    pub(crate) fn thaw_if_expired(&self) {
        let mut f = self.frozen_until.lock();
        if f.is_some_and(|deadline| Instant::now() >= deadline) {
            *f = None;
            tracing::warn!("freeze timed out: database writes thawed automatically");
        }
    }
}
