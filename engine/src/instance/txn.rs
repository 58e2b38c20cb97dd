//! Transactions: TSTART / TCOMMIT / TROLLBACK, and the rollback used online, by recovery
//! and by a member becoming primary.
//!
//! A transaction's records all go to one journal, the journal of the first database it
//! writes, so it commits atomically: a write that would need the other journal is refused.
//!
//! A rollback undoes each write in reverse order by journaling a compensating write inside
//! the same transaction (with the value it overwrites as its own old value), then TROLLBACK.
//! If the engine dies mid-rollback, recovery undoes the compensations and the originals in
//! reverse, which lands on the same state: rollback is idempotent under crashes.

use super::dejournal::TxnUndo;
use super::mirror::MirrorMode;
use super::ops::old_value;
use super::session::{JournalId, OpenTxn, Session, Undo, WriteAck};
use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::RecordBody;
use std::sync::atomic::Ordering;

impl Instance {
    /// Returns the new `$TLEVEL`.
    pub fn tstart(&self, s: &mut Session) -> Result<u32> {
        match s.txn.as_mut() {
            Some(t) => {
                t.level = t
                    .level
                    .checked_add(1)
                    .ok_or_else(|| EngineError::Invalid("transactions nested too deeply".into()))?;
                Ok(t.level)
            }
            None => {
                s.txn = Some(OpenTxn { id: 0, level: 1, journal: None, first_db: String::new(), undo: Vec::new() });
                Ok(1)
            }
        }
    }

    /// With the write lock held: the id of the session's transaction for a write to
    /// database `db` through `journal`, journaling TSTART at its first write; 0 outside a
    /// transaction. Refused when the transaction already writes through the other journal.
    pub(crate) fn txn_for_write(&self, s: &mut Session, journal: JournalId, db: &str) -> Result<u64> {
        let Some(t) = s.txn.as_mut() else { return Ok(0) };
        if let Some(bound) = t.journal.filter(|j| *j != journal) {
            let (mirrored, other) =
                if bound == JournalId::Mirror { (t.first_db.as_str(), db) } else { (db, t.first_db.as_str()) };
            return Err(EngineError::Invalid(format!(
                "a transaction cannot write both mirrored database {mirrored} and non-mirrored database {other}: they commit through different journals"
            )));
        }
        if t.id == 0 {
            // Ids start past both journals' last positions at open and each TSTART takes a
            // position, so ids never repeat across restarts.
            t.id = self.next_txn.fetch_add(1, Ordering::SeqCst);
            let position = self.journal_of(journal).append(t.id, &RecordBody::TStart);
            match journal {
                JournalId::Local => {
                    self.open_txns.lock().insert(t.id, position);
                }
                JournalId::Mirror => {
                    self.mirror_txns.lock().insert(t.id, TxnUndo { tstart: position, undo: Vec::new() });
                }
            }
            t.journal = Some(journal);
            t.first_db = db.to_string();
        } else if journal == JournalId::Mirror && !self.mirror_txns.lock().contains_key(&t.id) {
            return Err(ended_by_role_change(t.id));
        }
        Ok(t.id)
    }

    pub fn tcommit(&self, s: &mut Session) -> Result<WriteAck> {
        let t = s.txn.as_mut().ok_or(EngineError::NoTransaction)?;
        if t.level > 1 {
            t.level -= 1;
            return Ok(WriteAck { journal: JournalId::Local, position: 0, wait: false });
        }
        // A transaction that wrote through a data server commits there (remote.rs); it
        // wrote nothing here.
        match self.remote_tcommit(s) {
            Ok(true) => {
                s.txn = None;
                return Ok(self.remote_ack_now());
            }
            Ok(false) => {}
            Err(e) => {
                if matches!(e, EngineError::Network(_)) {
                    // Rolled back there: nothing is left open here either.
                    s.txn = None;
                }
                return Err(e);
            }
        }
        let t = s.txn.take().expect("checked above");
        if t.id == 0 {
            return Ok(WriteAck { journal: JournalId::Local, position: 0, wait: false });
        }
        let journal = t.journal.unwrap_or(JournalId::Local);
        let _w = self.write_lock.lock();
        if journal == JournalId::Mirror {
            self.mirror_txn_still_ours(t.id)?;
        }
        self.append_origin(s, journal, t.id, 1);
        let position = self.journal_of(journal).append(t.id, &RecordBody::TCommit);
        self.forget_txn(journal, t.id);
        Ok(WriteAck { journal, position, wait: true })
    }

    /// Rolls back every level of the open transaction.
    pub fn trollback(&self, s: &mut Session) -> Result<WriteAck> {
        if s.txn.is_none() {
            return Err(EngineError::NoTransaction);
        }
        let remote = self.remote_trollback(s);
        let t = s.txn.take().ok_or(EngineError::NoTransaction)?;
        remote?;
        let journal = t.journal.unwrap_or(JournalId::Local);
        if t.id == 0 {
            return Ok(WriteAck { journal, position: 0, wait: false });
        }
        let _w = self.write_lock.lock();
        let undo = match journal {
            JournalId::Local => t.undo,
            JournalId::Mirror => {
                if !self.mirror_txns.lock().contains_key(&t.id) {
                    // Already rolled back when this member's role changed.
                    return Ok(WriteAck { journal, position: 0, wait: false });
                }
                self.mirror_txn_still_ours(t.id)?;
                self.mirror_txns.lock().remove(&t.id).map(|u| u.undo).unwrap_or_default()
            }
        };
        // If the rollback fails midway (a database read error), the transaction stays
        // registered as open: it holds the journal back, and the next start's recovery
        // finishes the rollback from the journal. Say so, rather than leave it silent.
        let position = self.rollback_in(journal, t.id, undo).map_err(|e| {
            tracing::error!("rollback of transaction {} failed: {e}; restart the engine to finish it", t.id);
            EngineError::Invalid(format!(
                "rollback of transaction {} failed ({e}); its changes stay until the engine restarts, which finishes the rollback",
                t.id
            ))
        })?;
        Ok(WriteAck { journal, position, wait: false })
    }

    /// With the write lock held: a mirror journal transaction may still be finished here
    /// (this member is the open primary, and no role change ended the transaction).
    fn mirror_txn_still_ours(&self, id: u64) -> Result<()> {
        if !self.mirror_txns.lock().contains_key(&id) {
            return Err(ended_by_role_change(id));
        }
        if self.mirror_state.lock().mode != (MirrorMode::Primary { open: true }) {
            return Err(EngineError::Mirror(format!(
                "transaction {id} writes mirrored databases, and this member is no longer the primary: it was not committed here, and the new primary rolls it back"
            )));
        }
        Ok(())
    }

    /// With the write lock held: undoes `undo` in reverse through `journal` and journals
    /// TROLLBACK. Each compensation records the value it overwrites, so it can be undone too.
    pub(crate) fn rollback_in(&self, journal: JournalId, txn: u64, undo: Vec<Undo>) -> Result<u64> {
        let j = self.journal_of(journal);
        for u in undo.into_iter().rev() {
            let current = u.db.get(&u.key)?;
            if current == u.old {
                continue;
            }
            let db = u.db.name().to_string();
            match u.old {
                Some(v) => {
                    j.append(
                        txn,
                        &RecordBody::Set { db, key: u.key.clone(), value: v.clone(), old: old_value(current) },
                    );
                    u.db.set(u.key, v);
                }
                None => {
                    j.append(txn, &RecordBody::ZKill { db, key: u.key.clone(), old: old_value(current) });
                    u.db.remove(u.key);
                }
            }
        }
        let position = j.append(txn, &RecordBody::TRollback);
        self.forget_txn(journal, txn);
        Ok(position)
    }

    /// The transaction ended: it no longer holds its journal back.
    fn forget_txn(&self, journal: JournalId, txn: u64) {
        match journal {
            JournalId::Local => {
                self.open_txns.lock().remove(&txn);
            }
            JournalId::Mirror => {
                self.mirror_txns.lock().remove(&txn);
            }
        }
    }

    /// Rolls back a transaction left open by a closed connection.
    pub fn end_session(&self, s: &mut Session) {
        if s.txn.is_some() {
            if let Err(e) = self.trollback(s) {
                tracing::error!("rolling back the transaction of a closed connection: {e}");
            }
        }
    }
}

fn ended_by_role_change(id: u64) -> EngineError {
    EngineError::Mirror(format!(
        "transaction {id} was rolled back when this member's mirror role changed; its changes are gone"
    ))
}
