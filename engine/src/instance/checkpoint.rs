//! The write daemon's work: checkpoints (database files brought up to a journal position),
//! journal purge, and freeze/thaw for external backups.

use super::Instance;
use crate::error::{EngineError, Result};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

impl Instance {
    /// Writes every database's changes up to one journal position. Skipped while frozen.
    pub fn checkpoint(&self) -> Result<()> {
        let _c = self.checkpoint_lock.lock();
        self.checkpoint_locked()
    }

    /// A checkpoint with `checkpoint_lock` held by the caller.
    pub(crate) fn checkpoint_locked(&self) -> Result<()> {
        if self.frozen_until.lock().is_some() {
            return Ok(());
        }
        let dbs: Vec<_> = self.databases.read().values().cloned().collect();
        let (position, recovery_from, captured) = {
            let _w = self.write_lock.lock();
            let position = self.journal.last_position();
            let oldest_open = self.open_txns.lock().values().next().copied();
            let recovery_from = oldest_open.unwrap_or(position + 1).min(position + 1);
            let captured: Vec<_> = dbs.iter().map(|d| d.capture_checkpoint()).collect();
            (position, recovery_from, captured)
        };
        // Write-ahead rule: the journal first, then the files.
        self.journal.flush_to(position)?;
        for (db, cp) in dbs.iter().zip(captured) {
            let meta = db.meta();
            if cp.is_empty() && meta.journal_position == position && meta.recovery_from == recovery_from {
                continue;
            }
            db.write_checkpoint(cp, position, recovery_from)?;
        }
        self.purge_journal()?;
        Ok(())
    }

    /// Removes journal files that recovery no longer needs and that are older than the
    /// retention setting; never the current file, never one with an open transaction.
    fn purge_journal(&self) -> Result<()> {
        // A database that failed to mount still needs its part of the journal (recovery
        // replays it once the database is back); nothing is purged until then.
        if !self.mount_errors.lock().is_empty() {
            return Ok(());
        }
        let needed = self
            .databases
            .read()
            .values()
            .map(|d| d.meta().recovery_from)
            .chain(self.open_txns.lock().values().copied())
            .min()
            .unwrap_or(self.journal.last_position() + 1);
        let retention = Duration::from_secs(self.config.lock().journal.purge_after_minutes * 60);
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .unwrap_or(UNIX_EPOCH)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        // A file ends when the next one starts: it is old once its successor was created
        // before the cutoff.
        let segments = self.journal.segments();
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
        for path in self.journal.purge(keep_from)? {
            tracing::info!("purged journal file {}", path.display());
        }
        Ok(())
    }

    /// Freeze for an external backup: database files are brought up to date, then not
    /// written until [`Instance::thaw`] or the timeout; the journal keeps accepting writes.
    pub fn freeze(&self, timeout: Option<Duration>) -> Result<()> {
        if self.frozen_until.lock().is_some() {
            return Err(EngineError::Invalid("the instance is already frozen".into()));
        }
        self.checkpoint()?;
        let timeout = timeout.unwrap_or(Duration::from_secs(self.config.lock().storage.freeze_timeout_s));
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
