//! Global operations of a session: reads through the namespace's routing, writes through
//! the journal (see the invariants in `mod.rs`).

use super::session::{Direction, Session, Undo, WriteAck};
use super::{Instance, NamespaceView};
use crate::error::{EngineError, Result};
use crate::globals::key::{self, subtree_end};
use crate::globals::limits::MAX_VALUE_BYTES;
use crate::globals::{GlobalRef, GlobalsError, Number, Subscript};
use crate::journal::{OldValue, RecordBody};
use crate::storage::Database;
use std::ops::Bound;
use std::sync::Arc;

impl Instance {
    fn route(&self, s: &Session, key: &[u8]) -> Result<Arc<Database>> {
        let ns = self.namespace(&s.namespace)?;
        self.database(ns.routing.route(key))
    }

    pub fn get(&self, s: &Session, r: &GlobalRef) -> Result<Option<Vec<u8>>> {
        let key = key::encode(r)?;
        self.route(s, &key)?.get(&key)
    }

    pub fn set(&self, s: &mut Session, r: &GlobalRef, value: &[u8]) -> Result<WriteAck> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(GlobalsError::ValueTooLong { len: value.len(), max: MAX_VALUE_BYTES }.into());
        }
        let key = key::encode(r)?;
        let db = self.route(s, &key)?;
        let _w = self.write_lock.lock();
        let (position, in_txn) = self.set_locked(s, &db, key, value.to_vec())?;
        Ok(self.ack(s, position, in_txn))
    }

    /// SET with the write lock held. Returns the record's position and whether it is inside
    /// a transaction.
    fn set_locked(&self, s: &mut Session, db: &Arc<Database>, key: Vec<u8>, value: Vec<u8>) -> Result<(u64, bool)> {
        self.still_writable(db)?;
        let txn = self.txn_for_write(s);
        let old = if txn != 0 {
            let old = db.get(&key)?;
            push_undo(s, db, &key, old.clone());
            old_value(old)
        } else {
            OldValue::NotRecorded
        };
        let body = RecordBody::Set { db: db.name().to_string(), key, value, old };
        let position = self.journal.append(txn, &body);
        // The record is encoded: its key and value move on into the cache, uncopied.
        let RecordBody::Set { key, value, .. } = body else { unreachable!("built as Set above") };
        db.set(key, value);
        Ok((position, txn != 0))
    }

    /// KILL: removes the node and its subtree as the namespace sees it. A database that
    /// holds the whole subtree gets one KILL record; a database the namespace maps only
    /// part of it to loses exactly the nodes in those parts (one ZKILL record each), so
    /// nodes it holds for other namespaces are untouched.
    pub fn kill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        let key = key::encode(r)?;
        let hi = subtree_end(&key);
        let ns = self.namespace(&s.namespace)?;
        let pieces = ns.routing.pieces(&key, &hi);
        // Per database: its pieces of the subtree, in key order.
        let mut targets: Vec<(Arc<Database>, Vec<KeyRange>)> = Vec::new();
        for (lo, end, name) in pieces {
            match targets.iter_mut().find(|(d, _)| d.name() == name) {
                Some((_, ranges)) => ranges.push((lo, end)),
                None => {
                    let db = self.database(name)?;
                    targets.push((db, vec![(lo, end)]));
                }
            }
        }
        let _w = self.write_lock.lock();
        for (db, _) in &targets {
            self.still_writable(db)?;
        }
        let mut position = self.journal.last_position();
        let mut in_txn = false;
        for (db, ranges) in &targets {
            let whole = ranges.len() == 1 && ranges[0].0 == key && ranges[0].1 == hi;
            let mut nodes = Vec::new();
            for (lo, end) in ranges {
                nodes.extend(db.scan(Bound::Included(lo), Bound::Excluded(end), false, usize::MAX)?);
            }
            if nodes.is_empty() {
                continue;
            }
            let txn = self.txn_for_write(s);
            in_txn = txn != 0;
            if in_txn {
                for (k, v) in &nodes {
                    push_undo(s, db, k, Some(v.clone()));
                }
            }
            let name = db.name().to_string();
            if whole {
                // Old values travel in the KILL records; a large subtree takes several
                // records for the same subtree (redo is idempotent, undo reads them all).
                if in_txn {
                    for part in chunks_within(&nodes, KILL_RECORD_OLD_BYTES) {
                        let body = RecordBody::Kill { db: name.clone(), key: key.clone(), old: Some(part.to_vec()) };
                        position = self.journal.append(txn, &body);
                    }
                } else {
                    position =
                        self.journal.append(txn, &RecordBody::Kill { db: name.clone(), key: key.clone(), old: None });
                }
            } else {
                for (k, v) in &nodes {
                    let old = if in_txn { OldValue::Present(v.clone()) } else { OldValue::NotRecorded };
                    position = self.journal.append(txn, &RecordBody::ZKill { db: name.clone(), key: k.clone(), old });
                }
            }
            for (k, _) in nodes {
                db.remove(k);
            }
        }
        Ok(self.ack(s, position, in_txn))
    }

    /// ZKILL: removes the node's value, keeping its descendants.
    pub fn zkill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        let key = key::encode(r)?;
        let db = self.route(s, &key)?;
        let _w = self.write_lock.lock();
        self.still_writable(&db)?;
        let Some(current) = db.get(&key)? else {
            return Ok(WriteAck { position: self.journal.last_position(), wait: false });
        };
        let txn = self.txn_for_write(s);
        let old = if txn != 0 {
            push_undo(s, &db, &key, Some(current.clone()));
            OldValue::Present(current)
        } else {
            OldValue::NotRecorded
        };
        let position =
            self.journal.append(txn, &RecordBody::ZKill { db: db.name().to_string(), key: key.clone(), old });
        db.remove(key);
        Ok(self.ack(s, position, txn != 0))
    }

    /// `$DATA`: 0 none, 1 value only, 10 children only, 11 both.
    pub fn data(&self, s: &Session, r: &GlobalRef) -> Result<u8> {
        let key = key::encode(r)?;
        let ns = self.namespace(&s.namespace)?;
        let has_value = self.database(ns.routing.route(&key))?.get(&key)?.is_some();
        let mut lo = key.clone();
        lo.push(0x01);
        let has_children = self.first_in(&ns, &lo, &subtree_end(&key))?.is_some();
        Ok(u8::from(has_value) + 10 * u8::from(has_children))
    }

    /// `$ORDER`: the next (or previous) subscript under `parent` after `after` (`None`:
    /// from the first or last).
    pub fn order(
        &self,
        s: &Session,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        dir: Direction,
    ) -> Result<Option<Subscript>> {
        let pk = key::encode(parent)?;
        let ns = self.namespace(&s.namespace)?;
        let mut first_child = pk.clone();
        first_child.push(0x01);
        let end = subtree_end(&pk);
        let found = match (dir, after) {
            (Direction::Forward, None) => self.first_in(&ns, &first_child, &end)?,
            (Direction::Forward, Some(sub)) => {
                let ck = key::encode(&parent.child(sub.clone())?)?;
                self.first_in(&ns, &subtree_end(&ck), &end)?
            }
            (Direction::Backward, None) => self.last_in(&ns, &first_child, &end)?,
            (Direction::Backward, Some(sub)) => {
                let ck = key::encode(&parent.child(sub.clone())?)?;
                self.last_in(&ns, &first_child, &ck)?
            }
        };
        match found {
            Some(k) => Ok(Some(key::first_subscript_after(&pk, &k)?.0)),
            None => Ok(None),
        }
    }

    /// `$QUERY`: the next (or previous) node with a value, in collation order, within the
    /// same global.
    pub fn query(&self, s: &Session, r: &GlobalRef, dir: Direction) -> Result<Option<GlobalRef>> {
        let k = key::encode(r)?;
        let ns = self.namespace(&s.namespace)?;
        let name_lo = key::encode_name(&r.name);
        let name_hi = subtree_end(&name_lo);
        let found = match dir {
            Direction::Forward => {
                let mut after = k.clone();
                after.push(0); // the smallest key greater than k
                self.first_in(&ns, &after, &name_hi)?
            }
            Direction::Backward => self.last_in(&ns, &name_lo, &k)?,
        };
        found.map(|k| key::decode(&k).map_err(EngineError::from)).transpose()
    }

    /// `$INCREMENT`: atomic add; returns the new value.
    pub fn increment(&self, s: &mut Session, r: &GlobalRef, by: Number) -> Result<(Number, WriteAck)> {
        let key = key::encode(r)?;
        let db = self.route(s, &key)?;
        let _w = self.write_lock.lock();
        let current = db.get(&key)?.map(|v| Number::parse_prefix(&v)).unwrap_or(Number::ZERO);
        let new = current.add(by);
        let (position, in_txn) = self.set_locked(s, &db, key, new.to_canonical().into_bytes())?;
        Ok((new, self.ack(s, position, in_txn)))
    }

    /// First key in `[lo, hi)` of the namespace's view.
    fn first_in(&self, ns: &NamespaceView, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>> {
        for (plo, phi, db) in ns.routing.pieces(lo, hi) {
            let db = self.database(db)?;
            if let Some((k, _)) = db.scan(Bound::Included(&plo), Bound::Excluded(&phi), false, 1)?.pop() {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// Last key in `[lo, hi)` of the namespace's view.
    fn last_in(&self, ns: &NamespaceView, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>> {
        for (plo, phi, db) in ns.routing.pieces(lo, hi).into_iter().rev() {
            let db = self.database(db)?;
            if let Some((k, _)) = db.scan(Bound::Included(&plo), Bound::Excluded(&phi), true, 1)?.pop() {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }
}

/// `[lo, hi)` over encoded keys.
type KeyRange = (Vec<u8>, Vec<u8>);

/// Old values carried by one transactional KILL record, well inside the journal's
/// record limit.
const KILL_RECORD_OLD_BYTES: usize = 4 << 20;

/// Splits `nodes` into consecutive runs whose keys and values add up to at most `budget`
/// bytes each (a single larger node gets a run of its own).
fn chunks_within(nodes: &[(Vec<u8>, Vec<u8>)], budget: usize) -> Vec<&[(Vec<u8>, Vec<u8>)]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, (k, v)) in nodes.iter().enumerate() {
        let n = k.len() + v.len() + 8;
        if i > start && size + n > budget {
            out.push(&nodes[start..i]);
            (start, size) = (i, 0);
        }
        size += n;
    }
    out.push(&nodes[start..]);
    out
}

impl Instance {
    /// With the write lock held, so that no mount change or journal failure can slip in
    /// between the check and the write: the journal has not failed, and the database is
    /// still mounted and not read-only.
    fn still_writable(&self, db: &Database) -> Result<()> {
        self.journal.check_failed()?;
        if !db.is_mounted() {
            return Err(EngineError::NotMounted { name: db.name().to_string() });
        }
        if db.is_read_only() {
            return Err(EngineError::Protect {
                database: db.name().to_string(),
                reason: " (mounted read-only)".into(),
            });
        }
        Ok(())
    }
}

fn push_undo(s: &mut Session, db: &Arc<Database>, key: &[u8], old: Option<Vec<u8>>) {
    if let Some(t) = s.txn.as_mut() {
        t.undo.push(Undo { db: db.clone(), key: key.to_vec(), old });
    }
}

pub(crate) fn old_value(old: Option<Vec<u8>>) -> OldValue {
    match old {
        Some(v) => OldValue::Present(v),
        None => OldValue::Absent,
    }
}
