//! Applying journal records to databases (redo), with the transaction bookkeeping that
//! lets them be undone later. One routine for every reader of a journal: recovery of both
//! journals at start, a mirror member applying what the primary sends, the catch-up of a
//! database being activated, and the rewind rebuilding which transactions are open.
//!
//! Records at or below a database's position are already in it and are not redone, but
//! records of transactions are still collected: an unfinished transaction must be undone
//! in full (its early writes may be in the file). See docs/design/journal.md, "Recovery".

use super::session::Undo;
use crate::error::Result;
use crate::globals::key::subtree_end;
use crate::journal::{OldValue, Record, RecordBody};
use crate::storage::Database;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

/// An open transaction seen in a journal: where it started and how to undo its writes,
/// in order.
#[derive(Debug, Default)]
pub(crate) struct TxnUndo {
    /// Position of its TSTART (of its first record seen, if its TSTART was not read).
    pub(crate) tstart: u64,
    pub(crate) undo: Vec<Undo>,
}

/// Open transactions by id.
pub(crate) type OpenTxns = BTreeMap<u64, TxnUndo>;

/// A database that records are applied to, and the position (in the journal being read)
/// its content already reflects: records at or below it are not redone.
#[derive(Clone)]
pub(crate) struct Follower {
    pub(crate) db: Arc<Database>,
    pub(crate) after: u64,
}

/// The databases a journal is applied to, by the name records carry.
pub(crate) type Followers = HashMap<String, Follower>;

/// What applying records did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    pub(crate) read: u64,
    pub(crate) applied: u64,
    /// Data records naming a database not among the followers, per name.
    pub(crate) skipped: BTreeMap<String, u64>,
    /// The highest transaction id seen (new ids must go past it).
    pub(crate) max_txn: u64,
}

/// Applies one record: redo in the follower it names if the record is newer than the
/// follower's position; transaction bookkeeping in `open` whatever the position.
pub(crate) fn apply(record: Record, followers: &Followers, open: &mut OpenTxns, counts: &mut Counts) -> Result<()> {
    counts.read += 1;
    counts.max_txn = counts.max_txn.max(record.txn);
    let (position, txn) = (record.position, record.txn);
    let (name, change) = match record.body {
        RecordBody::TStart => {
            open.entry(txn).or_insert_with(|| TxnUndo { tstart: position, undo: Vec::new() });
            return Ok(());
        }
        RecordBody::TCommit => {
            open.remove(&txn);
            return Ok(());
        }
        RecordBody::TRollback => {
            // Undo the transaction's writes in every database this TROLLBACK is newer
            // than. Where the rollback's compensations were applied this changes nothing
            // (undoing compensation then original lands on the old value); where a
            // database missed them (it was not mounted when an earlier recovery rolled the
            // transaction back), it is what rolls it back.
            for u in open.remove(&txn).map(|t| t.undo).unwrap_or_default().into_iter().rev() {
                if followers.get(u.db.name()).is_some_and(|f| position > f.after) {
                    match u.old {
                        Some(v) => u.db.set(u.key, v),
                        None => u.db.remove(u.key),
                    }
                }
            }
            return Ok(());
        }
        // A new mirrored database is adopted by the receiving path, outside this loop
        // (it takes the checkpoint lock).
        RecordBody::Sync | RecordBody::MirrorNewDatabase { .. } | RecordBody::EcpOrigin(_) => return Ok(()),
        RecordBody::Set { db, key, value, old } => (db, Change::Set { key, value, old }),
        RecordBody::ZKill { db, key, old } => (db, Change::ZKill { key, old }),
        RecordBody::Kill { db, key, old } => (db, Change::Kill { key, old }),
    };
    let Some(follower) = followers.get(&name) else {
        *counts.skipped.entry(name).or_default() += 1;
        return Ok(());
    };
    let db = &follower.db;
    let redo = position > follower.after;
    // A transaction's record whose TSTART was not read (it precedes where reading began)
    // still makes the transaction open: only a TCOMMIT or TROLLBACK ends it.
    let mut undo =
        (txn != 0).then(|| &mut open.entry(txn).or_insert_with(|| TxnUndo { tstart: position, undo: Vec::new() }).undo);
    match change {
        Change::Set { key, value, old } => {
            if let Some(undo) = undo.as_mut() {
                undo.push(Undo { db: db.clone(), key: key.clone(), old: old_to_option(old) });
            }
            if redo {
                db.set(key, value);
            }
        }
        Change::ZKill { key, old } => {
            if let Some(undo) = undo.as_mut() {
                undo.push(Undo { db: db.clone(), key: key.clone(), old: old_to_option(old) });
            }
            if redo {
                db.remove(key);
            }
        }
        Change::Kill { key, old } => {
            if let (Some(undo), Some(old)) = (undo.as_mut(), old) {
                undo.extend(old.into_iter().map(|(k, v)| Undo { db: db.clone(), key: k, old: Some(v) }));
            }
            if redo {
                let hi = subtree_end(&key);
                for (k, _) in db.scan(Bound::Included(&key), Bound::Excluded(&hi), false, usize::MAX)? {
                    db.remove(k);
                }
            }
        }
    }
    if redo {
        counts.applied += 1;
    }
    Ok(())
}

/// A data record's change, moved out of the record.
enum Change {
    Set { key: Vec<u8>, value: Vec<u8>, old: OldValue },
    ZKill { key: Vec<u8>, old: OldValue },
    Kill { key: Vec<u8>, old: Option<Vec<(Vec<u8>, Vec<u8>)>> },
}

fn old_to_option(old: OldValue) -> Option<Vec<u8>> {
    match old {
        OldValue::Present(v) => Some(v),
        OldValue::Absent | OldValue::NotRecorded => None,
    }
}
