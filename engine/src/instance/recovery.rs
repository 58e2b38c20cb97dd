//! Crash recovery: replay each journal into the databases that follow it, from the
//! position each one is durable to; roll back the local journal's unfinished
//! transactions. The mirror journal's unfinished transactions are kept open, with their
//! undo, for whoever decides their fate: the primary may still commit them, and a member
//! that becomes primary rolls them back (`Instance::promote`). See docs/design/journal.md,
//! "Crash analysis", and docs/design/mirroring.md.

use super::dejournal::{self, Counts, Follower, Followers, OpenTxns};
use super::session::JournalId;
use super::Instance;
use crate::error::Result;
use crate::journal::Journal;
use crate::storage::Database;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What recovery did, for the log and for tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecoveryReport {
    /// The local journal: where replay started, records read and redone.
    pub from_position: u64,
    pub records_read: u64,
    pub records_applied: u64,
    pub transactions_rolled_back: u64,
    /// The mirror journal, on a mirror member.
    pub mirror_from_position: u64,
    pub mirror_records_read: u64,
    pub mirror_records_applied: u64,
    /// Transactions left open in the mirror journal (kept open, not rolled back).
    pub mirror_transactions_open: u64,
    /// Time to read and apply the journals (the replay rate is records_read / this).
    pub replay_seconds: f64,
    /// Time to write the recovered changes to the database files.
    pub checkpoint_seconds: f64,
}

impl Instance {
    pub(crate) fn recover(&self) -> Result<RecoveryReport> {
        let started = Instant::now();
        let dbs: Vec<Arc<Database>> = self.databases.read().values().cloned().collect();
        let mut report = RecoveryReport::default();
        self.recover_local(&dbs, &mut report)?;
        // After the local journal: for a node a read-write reporting member changed
        // locally and the primary changed too, the primary's value wins.
        self.recover_mirror(&dbs, &mut report)?;
        report.replay_seconds = started.elapsed().as_secs_f64();
        let written = Instant::now();
        self.checkpoint()?;
        report.checkpoint_seconds = written.elapsed().as_secs_f64();
        tracing::info!(
            "recovery: replayed {} journal records from position {} in {:.3} s ({} applied, {} transactions rolled back); database files written in {:.3} s",
            report.records_read,
            report.from_position,
            report.replay_seconds,
            report.records_applied,
            report.transactions_rolled_back,
            report.checkpoint_seconds
        );
        if self.mirror.get().is_some() {
            tracing::info!(
                "recovery: replayed {} mirror journal records from position {} ({} applied); {} mirror transactions left open for the primary to finish",
                report.mirror_records_read,
                report.mirror_from_position,
                report.mirror_records_applied,
                report.mirror_transactions_open
            );
        }
        Ok(report)
    }

    /// The local journal: every database that is not mirrored, and the local writes of a
    /// read-write reporting member to mirrored ones (their `local_*` positions).
    fn recover_local(&self, dbs: &[Arc<Database>], report: &mut RecoveryReport) -> Result<()> {
        let guid = self.config.lock().instance.guid.clone();
        let mut followers = Followers::new();
        let mut start = None::<u64>;
        for db in dbs {
            let m = db.meta();
            let (after, from) = if !m.is_mirrored() {
                (m.journal_position, m.recovery_from)
            } else if m.local_instance == guid {
                (m.local_position, m.local_recovery_from)
            } else {
                continue;
            };
            followers.insert(db.name().to_string(), Follower { db: db.clone(), after });
            start = Some(start.map_or(from, |s| s.min(from)));
        }
        let Some(start) = start else { return Ok(()) };
        let mut open = OpenTxns::new();
        let counts = self.replay(&self.journal, start, &followers, &mut open)?;
        for (name, count) in &counts.skipped {
            tracing::warn!("recovery skipped {count} journal records for database {name}, which is not mounted");
        }
        report.from_position = start;
        report.records_read = counts.read;
        report.records_applied = counts.applied;
        let _w = self.write_lock.lock();
        for (txn, t) in open {
            tracing::warn!(
                "rolling back transaction {txn}, left open when the engine stopped ({} writes)",
                t.undo.len()
            );
            self.rollback_in(JournalId::Local, txn, t.undo)?;
            report.transactions_rolled_back += 1;
        }
        Ok(())
    }

    /// The mirror journal: the mirrored databases this member has activated.
    fn recover_mirror(&self, dbs: &[Arc<Database>], report: &mut RecoveryReport) -> Result<()> {
        let Some(mirror) = self.mirror.get() else { return Ok(()) };
        let mut followers = Followers::new();
        let mut start = None::<u64>;
        for db in dbs {
            let m = db.meta();
            if m.mirror_name == mirror.name && m.activated {
                followers.insert(db.name().to_string(), Follower { db: db.clone(), after: m.journal_position });
                start = Some(start.map_or(m.recovery_from, |s| s.min(m.recovery_from)));
            }
        }
        let Some(start) = start else { return Ok(()) };
        let mut open = std::mem::take(&mut *self.mirror_txns.lock());
        let counts = self.replay(&mirror.journal, start, &followers, &mut open)?;
        report.mirror_from_position = start;
        report.mirror_records_read = counts.read;
        report.mirror_records_applied = counts.applied;
        report.mirror_transactions_open = open.len() as u64;
        for (txn, t) in &open {
            tracing::info!(
                "mirror transaction {txn} (from position {}, {} writes) is still open: the primary finishes it",
                t.tstart,
                t.undo.len()
            );
        }
        *self.mirror_txns.lock() = open;
        Ok(())
    }

    /// Applies `journal` from `start` to its durable end.
    fn replay(&self, journal: &Journal, start: u64, followers: &Followers, open: &mut OpenTxns) -> Result<Counts> {
        let mut counts = Counts::default();
        if start <= journal.last_position() {
            for record in journal.read_from(start)? {
                dejournal::apply(record?, followers, open, &mut counts)?;
            }
        }
        self.next_txn.fetch_max(counts.max_txn + 1, Ordering::SeqCst);
        Ok(counts)
    }
}
