//! Rewinding a mirror member that diverged: it holds mirror journal records the new
//! primary never received (docs/design/mirroring.md, "Divergence on rejoin"). They are
//! undone in reverse with the old values the primary recorded in every record, the
//! databases are written back at the rewind point, then the journal is cut there.
//!
//! Order, for crash safety: the database files are written at the rewind point while the
//! journal still holds the diverged records (a crash then replays them at the next start,
//! and the rewind can be done again); only then is the journal truncated (itself crash
//! safe, docs/design/journal.md). A file never claims a position the journal lacks.

use super::dejournal::{self, Counts, Follower, Followers, OpenTxns};
use super::mirror::MirrorMode;
use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::{OldValue, Record, RecordBody};

/// What a rewind did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RewindReport {
    /// Where the mirror journal ended before.
    pub from: u64,
    /// Where it ends now.
    pub to: u64,
    /// Data records undone in this member's databases.
    pub records_undone: u64,
    /// Records cut that this member had not applied (other databases, markers).
    pub records_cut: u64,
    /// The databases whose content changed back.
    pub databases: Vec<String>,
    /// Journal files removed.
    pub files_removed: u64,
}

impl Instance {
    /// Undoes every mirror journal record after `to`, newest first, using the old values
    /// the records carry, then truncates the mirror journal after `to`. Refused, with
    /// nothing changed, on the primary, and when a record to undo has no old value: this
    /// member's data is then inconsistent with the mirror and must be rebuilt from a copy
    /// of the primary's databases.
    pub fn rewind_mirror(&self, to: u64) -> Result<RewindReport> {
        let mirror = self.mirror.get().ok_or(EngineError::NotMirrored)?;
        let _c = self.checkpoint_lock.lock();
        if self.is_frozen() {
            return Err(EngineError::Frozen);
        }
        let _w = self.write_lock.lock();
        if matches!(self.mirror_state.lock().mode, MirrorMode::Primary { .. }) {
            return Err(EngineError::Invalid(
                "the primary's mirror journal is the mirror's: it is never rewound".into(),
            ));
        }
        let journal = &mirror.journal;
        let last = journal.last_position();
        journal.flush_to(last)?;
        let mut report = RewindReport { from: last, to, ..RewindReport::default() };
        if to >= last {
            if to > last {
                return Err(EngineError::Invalid(format!(
                    "cannot rewind the mirror journal to position {to}: it ends at {last}"
                )));
            }
            return Ok(report);
        }
        let followers = self.mirror_followers();
        self.check_rewindable(&followers, to, last)?;
        let records: Vec<Record> = journal.read_from(to + 1)?.collect::<Result<_>>()?;
        for r in &records {
            if let Some(db) = missing_old_value(r).filter(|db| followers.contains_key(*db)) {
                return Err(EngineError::Mirror(format!(
                    "cannot rewind the mirror journal to position {to}: record {} of database {db} carries no old value, so its change cannot be undone; this member's data is inconsistent with the mirror: rebuild database {db} from a copy of the primary's databases",
                    r.position
                )));
            }
        }
        let open = self.open_txns_at(to, &followers)?;
        for r in records.into_iter().rev() {
            if undo(r, &followers, &mut report) {
                report.records_undone += 1;
            } else {
                report.records_cut += 1;
            }
        }
        // The transactions open at `to` are what the next primary must settle.
        *self.mirror_txns.lock() = open;
        let captured = self.capture_locked();
        self.write_captured(captured, Some(to))?;
        report.files_removed = journal.truncate_after(to)?.len() as u64;
        report.databases.sort();
        report.databases.dedup();
        tracing::warn!(
            "mirror {}: rewound from position {last} to {to} ({} records undone in {})",
            mirror.name,
            report.records_undone,
            report.databases.join(", ")
        );
        Ok(report)
    }

    /// Every database this member holds of the mirror can be brought back to `to`.
    fn check_rewindable(&self, followers: &Followers, to: u64, last: u64) -> Result<()> {
        for (name, f) in followers {
            if f.after > last {
                return Err(EngineError::Mirror(format!(
                    "cannot rewind: database {name} is at mirror position {}, beyond this member's journal ({last}), so its changes after {to} cannot be undone; replace it with a copy of the primary's",
                    f.after
                )));
            }
        }
        let mirror_name = self.mirror_name().unwrap_or_default();
        for db in self.databases.read().values() {
            let m = db.meta();
            if m.mirror_name == mirror_name && !followers.contains_key(db.name()) && m.journal_position > to {
                return Err(EngineError::Mirror(format!(
                    "cannot rewind: database {} (not activated) is at mirror position {}, after the rewind point {to}; replace it with a copy of the primary's",
                    db.name(),
                    m.journal_position
                )));
            }
        }
        for (name, position) in &self.mirror_state.lock().dismounted {
            if *position > to {
                return Err(EngineError::Mirror(format!(
                    "cannot rewind: database {name} is dismounted at mirror position {position}, after the rewind point {to}; mount it first"
                )));
            }
        }
        Ok(())
    }

    /// The transactions open in the mirror journal at position `to`, with their undo, read
    /// from the oldest record kept (nothing is applied).
    fn open_txns_at(&self, to: u64, followers: &Followers) -> Result<OpenTxns> {
        let journal = &self.mirror.get().expect("checked by the caller").journal;
        let tracking: Followers =
            followers.iter().map(|(n, f)| (n.clone(), Follower { db: f.db.clone(), after: u64::MAX })).collect();
        let oldest = journal.segments().first().map_or(1, |s| s.first_position);
        let mut open = OpenTxns::new();
        let mut counts = Counts::default();
        for record in journal.read_from(oldest)? {
            let record = record?;
            if record.position > to {
                break;
            }
            dejournal::apply(record, &tracking, &mut open, &mut counts)?;
        }
        Ok(open)
    }
}

/// The database of a data record that carries no old value.
fn missing_old_value(r: &Record) -> Option<&str> {
    match &r.body {
        RecordBody::Set { db, old: OldValue::NotRecorded, .. }
        | RecordBody::ZKill { db, old: OldValue::NotRecorded, .. }
        | RecordBody::Kill { db, old: None, .. } => Some(db),
        _ => None,
    }
}

/// A node and the value to put back (`None`: it had none).
type Restore = (Vec<u8>, Option<Vec<u8>>);

/// Puts back what one record changed in a database this member holds; false when the
/// record changed nothing here.
fn undo(r: Record, followers: &Followers, report: &mut RewindReport) -> bool {
    let (name, restore): (String, Vec<Restore>) = match r.body {
        RecordBody::Set { db, key, old, .. } | RecordBody::ZKill { db, key, old } => {
            let old = match old {
                OldValue::Present(v) => Some(v),
                OldValue::Absent | OldValue::NotRecorded => None,
            };
            (db, vec![(key, old)])
        }
        // The subtree's nodes before the KILL; a node it did not have stays absent.
        RecordBody::Kill { db, old, .. } => {
            (db, old.unwrap_or_default().into_iter().map(|(k, v)| (k, Some(v))).collect())
        }
        _ => return false,
    };
    let Some(f) = followers.get(&name) else { return false };
    for (key, old) in restore {
        match old {
            Some(v) => f.db.set(key, v),
            None => f.db.remove(key),
        }
    }
    report.databases.push(name);
    true
}
