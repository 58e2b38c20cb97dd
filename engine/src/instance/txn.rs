//! Transactions: TSTART / TCOMMIT / TROLLBACK, and the rollback used both online and by
//! recovery.
//!
//! A rollback undoes each write in reverse order by journaling a compensating write inside
//! the same transaction (with the value it overwrites as its own old value), then TROLLBACK.
//! If the engine dies mid-rollback, recovery undoes the compensations and the originals in
//! reverse, which lands on the same state: rollback is idempotent under crashes.

use super::ops::old_value;
use super::session::{OpenTxn, Session, Undo, WriteAck};
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
                s.txn = Some(OpenTxn { id: 0, level: 1, undo: Vec::new() });
                Ok(1)
            }
        }
    }

    /// With the write lock held: the id of the session's transaction, journaling TSTART at
    /// its first write; 0 outside a transaction.
    pub(crate) fn txn_for_write(&self, s: &mut Session) -> u64 {
        let Some(t) = s.txn.as_mut() else { return 0 };
        if t.id == 0 {
            // Ids start past the last journal position at open and each TSTART takes a
            // position, so ids never repeat across restarts.
            t.id = self.next_txn.fetch_add(1, Ordering::SeqCst);
            let position = self.journal.append(t.id, &RecordBody::TStart);
            self.open_txns.lock().insert(t.id, position);
        }
        t.id
    }

    pub fn tcommit(&self, s: &mut Session) -> Result<WriteAck> {
        let t = s.txn.as_mut().ok_or(EngineError::NoTransaction)?;
        if t.level > 1 {
            t.level -= 1;
            return Ok(WriteAck { position: 0, wait: false });
        }
        let t = s.txn.take().expect("checked above");
        if t.id == 0 {
            return Ok(WriteAck { position: 0, wait: false });
        }
        let _w = self.write_lock.lock();
        let position = self.journal.append(t.id, &RecordBody::TCommit);
        self.open_txns.lock().remove(&t.id);
        Ok(WriteAck { position, wait: true })
    }

    /// Rolls back every level of the open transaction.
    pub fn trollback(&self, s: &mut Session) -> Result<WriteAck> {
        let t = s.txn.take().ok_or(EngineError::NoTransaction)?;
        if t.id == 0 {
            return Ok(WriteAck { position: 0, wait: false });
        }
        let _w = self.write_lock.lock();
        // If the rollback fails midway (a database read error), the transaction stays
        // registered as open: it holds the journal back, and the next start's recovery
        // finishes the rollback from the journal. Say so, rather than leave it silent.
        let position = self.rollback_locked(t.id, t.undo).map_err(|e| {
            tracing::error!("rollback of transaction {} failed: {e}; restart the engine to finish it", t.id);
            EngineError::Invalid(format!(
                "rollback of transaction {} failed ({e}); its changes stay until the engine restarts, which finishes the rollback",
                t.id
            ))
        })?;
        Ok(WriteAck { position, wait: false })
    }

    /// With the write lock held: undoes `undo` in reverse and journals TROLLBACK.
    pub(crate) fn rollback_locked(&self, txn: u64, undo: Vec<Undo>) -> Result<u64> {
        for u in undo.into_iter().rev() {
            let current = u.db.get(&u.key)?;
            if current == u.old {
                continue;
            }
            let db = u.db.name().to_string();
            match u.old {
                Some(v) => {
                    self.journal.append(
                        txn,
                        &RecordBody::Set { db, key: u.key.clone(), value: v.clone(), old: old_value(current) },
                    );
                    u.db.set(u.key, v);
                }
                None => {
                    self.journal.append(txn, &RecordBody::ZKill { db, key: u.key.clone(), old: old_value(current) });
                    u.db.remove(u.key);
                }
            }
        }
        let position = self.journal.append(txn, &RecordBody::TRollback);
        self.open_txns.lock().remove(&txn);
        Ok(position)
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
