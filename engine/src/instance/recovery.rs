//! Crash recovery: replay the journal into the databases from the position each one is
//! durable to, then roll back transactions that never finished.
//!
//! Records at or below a database's position are already in its file and are not redone,
//! but records of transactions are still collected, because an unfinished transaction must
//! be undone in full (its early writes may be in the file). See docs/design/journal.md,
//! "Crash analysis".

use super::session::Undo;
use super::Instance;
use crate::error::Result;
use crate::globals::key::subtree_end;
use crate::journal::{OldValue, RecordBody};
use crate::storage::Database;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

/// What recovery did, for the log and for tests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecoveryReport {
    pub from_position: u64,
    pub records_read: u64,
    pub records_applied: u64,
    pub transactions_rolled_back: u64,
    /// Time to read and apply the journal (the replay rate is records_read / this).
    pub replay_seconds: f64,
    /// Time to write the recovered changes to the database files.
    pub checkpoint_seconds: f64,
}

impl Instance {
    pub(crate) fn recover(&self) -> Result<RecoveryReport> {
        let started = Instant::now();
        let dbs: HashMap<String, (Arc<Database>, u64)> = self
            .databases
            .read()
            .values()
            .map(|d| (d.name().to_string(), (d.clone(), d.meta().journal_position)))
            .collect();
        let mut report = RecoveryReport::default();
        let Some(start) = dbs.values().map(|(d, _)| d.meta().recovery_from).min() else { return Ok(report) };
        if start > self.journal.last_position() {
            return Ok(report);
        }
        report.from_position = start;
        let mut open: BTreeMap<u64, Vec<Undo>> = BTreeMap::new();
        let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
        for record in self.journal.read_from(start)? {
            let record = record?;
            report.records_read += 1;
            let (name, key) = match &record.body {
                RecordBody::TStart => {
                    open.insert(record.txn, Vec::new());
                    continue;
                }
                RecordBody::TCommit => {
                    open.remove(&record.txn);
                    continue;
                }
                RecordBody::TRollback => {
                    // Undo the transaction's writes in every database this TROLLBACK is
                    // newer than. Where the online rollback's compensations were replayed
                    // this changes nothing (undoing compensation then original lands on
                    // the old value); where a database missed them (it was not mounted
                    // when an earlier recovery rolled the transaction back), it is what
                    // rolls it back.
                    for u in open.remove(&record.txn).unwrap_or_default().into_iter().rev() {
                        if dbs.get(u.db.name()).is_some_and(|(_, durable_to)| record.position > *durable_to) {
                            match u.old {
                                Some(v) => u.db.set(u.key, v),
                                None => u.db.remove(u.key),
                            }
                        }
                    }
                    continue;
                }
                RecordBody::Sync => continue,
                RecordBody::Set { db, key, .. }
                | RecordBody::Kill { db, key, .. }
                | RecordBody::ZKill { db, key, .. } => (db, key),
            };
            let Some((db, durable_to)) = dbs.get(name) else {
                *unknown.entry(name.clone()).or_default() += 1;
                continue;
            };
            let redo = record.position > *durable_to;
            let undo = open.get_mut(&record.txn);
            match &record.body {
                RecordBody::Set { value, old, .. } => {
                    if let Some(undo) = undo {
                        undo.push(Undo { db: db.clone(), key: key.clone(), old: old_to_option(old) });
                    }
                    if redo {
                        db.set(key.clone(), value.clone());
                    }
                }
                RecordBody::ZKill { old, .. } => {
                    if let Some(undo) = undo {
                        undo.push(Undo { db: db.clone(), key: key.clone(), old: old_to_option(old) });
                    }
                    if redo {
                        db.remove(key.clone());
                    }
                }
                RecordBody::Kill { old, .. } => {
                    if let (Some(undo), Some(old)) = (undo, old) {
                        undo.extend(old.iter().map(|(k, v)| Undo {
                            db: db.clone(),
                            key: k.clone(),
                            old: Some(v.clone()),
                        }));
                    }
                    if redo {
                        let hi = subtree_end(key);
                        for (k, _) in db.scan(Bound::Included(key), Bound::Excluded(&hi), false, usize::MAX)? {
                            db.remove(k);
                        }
                    }
                }
                _ => unreachable!("handled above"),
            }
            if redo {
                report.records_applied += 1;
            }
        }
        for (name, count) in unknown {
            tracing::warn!("recovery skipped {count} journal records for database {name}, which is not mounted");
        }
        {
            let _w = self.write_lock.lock();
            for (txn, undo) in open {
                tracing::warn!(
                    "rolling back transaction {txn}, left open when the engine stopped ({} writes)",
                    undo.len()
                );
                self.rollback_locked(txn, undo)?;
                report.transactions_rolled_back += 1;
            }
        }
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
        Ok(report)
    }
}

fn old_to_option(old: &OldValue) -> Option<Vec<u8>> {
    match old {
        OldValue::Present(v) => Some(v.clone()),
        OldValue::Absent | OldValue::NotRecorded => None,
    }
}
