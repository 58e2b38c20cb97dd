//! Global operations of a session: reads through the namespace's routing, writes through
//! the journal (see the invariants in `mod.rs`).

use super::session::{Direction, JournalId, Session, Undo, WriteAck};
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
    /// How the session sees globals: its namespace's routing, or on a data server serving
    /// an ECP request, the one database the request names.
    pub(crate) fn view(&self, s: &Session) -> Result<Arc<NamespaceView>> {
        match &s.pinned {
            Some(db) => Ok(Arc::new(NamespaceView { routing: crate::namespace::Routing::new(db, &[]) })),
            None => self.namespace(&s.namespace),
        }
    }

    /// Data-server side of ECP: journals the session's request origin just before the
    /// `records` records of its change (with the write lock held, after the transaction's
    /// TSTART), so the request counts as applied exactly when all of them are journaled.
    pub(crate) fn append_origin(&self, s: &mut Session, journal: JournalId, txn: u64, records: u32) {
        if let Some(mut origin) = s.origin.take() {
            origin.records = records;
            self.journal_of(journal).append(txn, &RecordBody::EcpOrigin(origin));
        }
    }

    /// Where `key` lives in the session's namespace, once the session's user may read it
    /// (`write`: and write it); a local write inside a transaction that writes through a
    /// data server is refused.
    fn place(&self, s: &Session, key: &[u8], write: bool) -> Result<Place> {
        let ns = self.view(s)?;
        let name = ns.routing.route(key);
        s.rights.check_database(name, write)?;
        if let Some(r) = self.remote_database(name) {
            return Ok(Place::Remote(r));
        }
        if write {
            self.check_local_txn(s, name)?;
        }
        Ok(Place::Local(self.database(name)?))
    }

    pub fn get(&self, s: &Session, r: &GlobalRef) -> Result<Option<Vec<u8>>> {
        let key = key::encode(r)?;
        match self.place(s, &key, false)? {
            Place::Local(db) => db.get(&key),
            Place::Remote(remote) => self.remote_get(s, &remote, &key),
        }
    }

    pub fn set(&self, s: &mut Session, r: &GlobalRef, value: &[u8]) -> Result<WriteAck> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(GlobalsError::ValueTooLong { len: value.len(), max: MAX_VALUE_BYTES }.into());
        }
        let key = key::encode(r)?;
        let db = match self.place(s, &key, true)? {
            Place::Local(db) => db,
            Place::Remote(remote) => return self.remote_set(s, &remote, &key, value),
        };
        let _w = self.write_lock.lock();
        let (journal, position, in_txn) = self.set_locked(s, &db, key, value.to_vec())?;
        Ok(self.ack(s, journal, position, in_txn))
    }

    /// SET with the write lock held. Returns the record's journal and position and whether
    /// it is inside a transaction.
    fn set_locked(
        &self,
        s: &mut Session,
        db: &Arc<Database>,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(JournalId, u64, bool)> {
        let journal = self.write_journal(db)?;
        let t = self.begin_write(s, journal, db)?;
        self.append_origin(s, journal, t.txn, 1);
        let old = if t.record_old {
            let old = db.get(&key)?;
            self.push_undo(s, &t, db, &key, old.clone());
            old_value(old)
        } else {
            OldValue::NotRecorded
        };
        let body = RecordBody::Set { db: db.name().to_string(), key, value, old };
        let position = self.journal_of(journal).append(t.txn, &body);
        // The record is encoded: its key and value move on into the cache, uncopied.
        let RecordBody::Set { key, value, .. } = body else { unreachable!("built as Set above") };
        db.set(key, value);
        Ok((journal, position, t.txn != 0))
    }

    /// KILL: removes the node and its subtree as the namespace sees it. A database that
    /// holds the whole subtree gets one KILL record; a database the namespace maps only
    /// part of it to loses exactly the nodes in those parts (one ZKILL record each), so
    /// nodes it holds for other namespaces are untouched.
    pub fn kill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        let key = key::encode(r)?;
        let hi = subtree_end(&key);
        self.kill_part(s, &key, key.clone(), hi)
    }

    /// KILL of the part `[lo, hi)` of the subtree of `key` (ECP sends the pieces of a
    /// subtree its namespace maps to one remote database). `[key, subtree end)` is the
    /// whole subtree.
    pub(crate) fn kill_part(&self, s: &mut Session, key: &[u8], lo: Vec<u8>, hi: Vec<u8>) -> Result<WriteAck> {
        let end = subtree_end(key);
        let lo = lo.max(key.to_vec());
        let hi = hi.min(end.clone());
        let key = key.to_vec();
        if lo >= hi {
            return Ok(WriteAck { journal: JournalId::Local, position: self.journal.last_position(), wait: false });
        }
        let ns = self.view(s)?;
        let pieces = ns.routing.pieces(&lo, &hi);
        if pieces.iter().any(|(_, _, name)| self.remote_database(name).is_some()) {
            return self.kill_remote(s, &key, &pieces);
        }
        // Per database: its pieces of the subtree, in key order.
        let mut targets: Vec<(Arc<Database>, Vec<KeyRange>)> = Vec::new();
        for (lo, end, name) in pieces {
            match targets.iter_mut().find(|(d, _)| d.name() == name) {
                Some((_, ranges)) => ranges.push((lo, end)),
                None => {
                    s.rights.check_database(name, true)?;
                    self.check_local_txn(s, name)?;
                    let db = self.database(name)?;
                    targets.push((db, vec![(lo, end)]));
                }
            }
        }
        let _w = self.write_lock.lock();
        // Every check before any change: a refused KILL changes nothing.
        // Per database with nodes to remove: its journal, whether it holds the whole
        // subtree, the nodes.
        let mut work: Vec<(&Arc<Database>, JournalId, bool, Nodes)> = Vec::new();
        for (db, ranges) in &targets {
            let journal = self.write_journal(db)?;
            let whole = ranges.len() == 1 && ranges[0].0 == key && ranges[0].1 == end;
            let mut nodes = Vec::new();
            for (lo, end) in ranges {
                nodes.extend(db.scan(Bound::Included(lo), Bound::Excluded(end), false, usize::MAX)?);
            }
            if !nodes.is_empty() {
                work.push((db, journal, whole, nodes));
            }
        }
        if let Some((a, b)) = work.iter().find_map(|(a, ja, ..)| {
            work.iter()
                .find(|(_, jb, ..)| jb != ja)
                .map(|(b, ..)| if *ja == JournalId::Mirror { (a, b) } else { (b, a) })
        }) {
            return Err(EngineError::Invalid(format!(
                "a KILL cannot remove nodes of both mirrored database {} and non-mirrored database {}: they go through different journals; kill the parts separately",
                a.name(),
                b.name()
            )));
        }
        let mut journal = JournalId::Local;
        let mut position = self.journal.last_position();
        let mut in_txn = false;
        for (db, j, whole, nodes) in work {
            journal = j;
            let t = self.begin_write(s, journal, db)?;
            in_txn = t.txn != 0;
            if in_txn {
                for (k, v) in &nodes {
                    self.push_undo(s, &t, db, k, Some(v.clone()));
                }
            }
            let name = db.name().to_string();
            let records = match (whole, t.record_old) {
                (true, true) => chunks_within(&nodes, KILL_RECORD_OLD_BYTES).len(),
                (true, false) => 1,
                (false, _) => nodes.len(),
            };
            self.append_origin(s, journal, t.txn, u32::try_from(records).unwrap_or(u32::MAX));
            let out = self.journal_of(journal);
            if whole {
                // Old values travel in the KILL records; a large subtree takes several
                // records for the same subtree (redo is idempotent, undo reads them all).
                if t.record_old {
                    for part in chunks_within(&nodes, KILL_RECORD_OLD_BYTES) {
                        let body = RecordBody::Kill { db: name.clone(), key: key.clone(), old: Some(part.to_vec()) };
                        position = out.append(t.txn, &body);
                    }
                } else {
                    position = out.append(t.txn, &RecordBody::Kill { db: name.clone(), key: key.clone(), old: None });
                }
            } else {
                for (k, v) in &nodes {
                    let old = if t.record_old { OldValue::Present(v.clone()) } else { OldValue::NotRecorded };
                    position = out.append(t.txn, &RecordBody::ZKill { db: name.clone(), key: k.clone(), old });
                }
            }
            for (k, _) in nodes {
                db.remove(k);
            }
        }
        Ok(self.ack(s, journal, position, in_txn))
    }

    /// ZKILL: removes the node's value, keeping its descendants.
    pub fn zkill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        let key = key::encode(r)?;
        let db = match self.place(s, &key, true)? {
            Place::Local(db) => db,
            Place::Remote(remote) => return self.remote_zkill(s, &remote, &key),
        };
        let _w = self.write_lock.lock();
        let journal = self.write_journal(&db)?;
        let Some(current) = db.get(&key)? else {
            return Ok(WriteAck { journal, position: self.journal_of(journal).last_position(), wait: false });
        };
        self.zkill_locked(s, &db, journal, key, current)
    }

    /// ZKILL of a node whose value is `current`, with the write lock held and `journal`
    /// from [`Instance::write_journal`].
    fn zkill_locked(
        &self,
        s: &mut Session,
        db: &Arc<Database>,
        journal: JournalId,
        key: Vec<u8>,
        current: Vec<u8>,
    ) -> Result<WriteAck> {
        let t = self.begin_write(s, journal, db)?;
        self.append_origin(s, journal, t.txn, 1);
        let old = if t.record_old {
            self.push_undo(s, &t, db, &key, Some(current.clone()));
            OldValue::Present(current)
        } else {
            OldValue::NotRecorded
        };
        let position = self
            .journal_of(journal)
            .append(t.txn, &RecordBody::ZKill { db: db.name().to_string(), key: key.clone(), old });
        db.remove(key);
        Ok(self.ack(s, journal, position, t.txn != 0))
    }

    /// Read-modify-write of one node's value under the write lock, so no other write slips
    /// in between the read and the write (SET NX/XX/GET, SETNX, APPEND, GETDEL): `change`
    /// sees the current value and decides. Returns the value before, and the write's
    /// acknowledgement when something was written.
    pub fn update(
        &self,
        s: &mut Session,
        r: &GlobalRef,
        mut change: impl FnMut(Option<&[u8]>) -> Result<Update>,
    ) -> Result<(Option<Vec<u8>>, Option<WriteAck>)> {
        let key = key::encode(r)?;
        let db = match self.place(s, &key, true)? {
            Place::Local(db) => db,
            Place::Remote(remote) => return self.update_remote(s, &remote, &key, change),
        };
        let _w = self.write_lock.lock();
        let current = db.get(&key)?;
        match change(current.as_deref())? {
            Update::Keep => Ok((current, None)),
            Update::Set(value) => {
                if value.len() > MAX_VALUE_BYTES {
                    return Err(GlobalsError::ValueTooLong { len: value.len(), max: MAX_VALUE_BYTES }.into());
                }
                let (journal, position, in_txn) = self.set_locked(s, &db, key, value)?;
                Ok((current, Some(self.ack(s, journal, position, in_txn))))
            }
            Update::Remove => {
                let Some(old) = current else { return Ok((None, None)) };
                let journal = self.write_journal(&db)?;
                let ack = self.zkill_locked(s, &db, journal, key, old.clone())?;
                Ok((Some(old), Some(ack)))
            }
        }
    }

    /// `$DATA`: 0 none, 1 value only, 10 children only, 11 both.
    pub fn data(&self, s: &Session, r: &GlobalRef) -> Result<u8> {
        let key = key::encode(r)?;
        let has_value = match self.place(s, &key, false)? {
            Place::Local(db) => db.get(&key)?.is_some(),
            Place::Remote(remote) => self.remote_get(s, &remote, &key)?.is_some(),
        };
        let mut lo = key.clone();
        lo.push(0x01);
        let has_children = self.first_in(s, &lo, &subtree_end(&key))?.is_some();
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
        let mut first_child = pk.clone();
        first_child.push(0x01);
        let end = subtree_end(&pk);
        let found = match (dir, after) {
            (Direction::Forward, None) => self.first_in(s, &first_child, &end)?,
            (Direction::Forward, Some(sub)) => {
                let ck = key::encode(&parent.child(sub.clone())?)?;
                self.first_in(s, &subtree_end(&ck), &end)?
            }
            (Direction::Backward, None) => self.last_in(s, &first_child, &end)?,
            (Direction::Backward, Some(sub)) => {
                let ck = key::encode(&parent.child(sub.clone())?)?;
                self.last_in(s, &first_child, &ck)?
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
        let name_lo = key::encode_name(&r.name);
        let name_hi = subtree_end(&name_lo);
        let found = match dir {
            Direction::Forward => {
                let mut after = k.clone();
                after.push(0); // the smallest key greater than k
                self.first_in(s, &after, &name_hi)?
            }
            Direction::Backward => self.last_in(s, &name_lo, &k)?,
        };
        found.map(|k| key::decode(&k).map_err(EngineError::from)).transpose()
    }

    /// `$INCREMENT`: atomic add; returns the new value.
    pub fn increment(&self, s: &mut Session, r: &GlobalRef, by: Number) -> Result<(Number, WriteAck)> {
        let key = key::encode(r)?;
        let db = match self.place(s, &key, true)? {
            Place::Local(db) => db,
            Place::Remote(remote) => return self.remote_increment(s, &remote, &key, by),
        };
        let _w = self.write_lock.lock();
        let current = match db.get(&key)? {
            Some(v) => Number::parse_in_range(&v)
                .ok_or_else(|| GlobalsError::MaxNumber { literal: String::from_utf8_lossy(&v).into_owned() })?,
            None => Number::ZERO,
        };
        let new = current.checked_add(by).ok_or_else(|| GlobalsError::MaxNumber {
            literal: format!("{} + {}", current.to_canonical(), by.to_canonical()),
        })?;
        if let Some(origin) = s.origin.as_mut() {
            // A reissued INCR answers with the value it made, never a new one.
            origin.result = new.to_canonical().into_bytes();
        }
        let (journal, position, in_txn) = self.set_locked(s, &db, key, new.to_canonical().into_bytes())?;
        Ok((new, self.ack(s, journal, position, in_txn)))
    }

    /// First key in `[lo, hi)` of the namespace's view.
    /// Every database it looks into must be readable by the session's user.
    fn first_in(&self, s: &Session, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.scan_range(s, lo, hi, false, 1)?.pop().map(|(k, _)| k))
    }

    /// Last key in `[lo, hi)` of the namespace's view.
    fn last_in(&self, s: &Session, lo: &[u8], hi: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.scan_range(s, lo, hi, true, 1)?.pop().map(|(k, _)| k))
    }

    /// KILL of a subtree whose pieces (`pieces`, in key order) live on a data server:
    /// all of them on one remote database, since a KILL is one change.
    fn kill_remote(&self, s: &mut Session, key: &[u8], pieces: &[(Vec<u8>, Vec<u8>, &str)]) -> Result<WriteAck> {
        let name = pieces[0].2;
        if let Some((_, _, other)) = pieces.iter().find(|(_, _, n)| *n != name) {
            return Err(EngineError::Invalid(format!(
                "a KILL cannot remove nodes of both database {name} and database {other} when one of them is remote: kill the parts separately"
            )));
        }
        s.rights.check_database(name, true)?;
        let remote = self.remote_database(name).expect("checked by the caller");
        let mut ack = self.remote_ack_now();
        for (lo, hi, _) in pieces {
            ack = self.remote_kill(s, &remote, key, lo, hi)?;
        }
        Ok(ack)
    }

    /// [`Instance::update`] of a remote node: read, decide, then compare-and-set on the
    /// data server; if another write slipped in between, decide again on what it wrote.
    fn update_remote(
        &self,
        s: &mut Session,
        remote: &super::remote::RemoteDatabase,
        key: &[u8],
        mut change: impl FnMut(Option<&[u8]>) -> Result<Update>,
    ) -> Result<(Option<Vec<u8>>, Option<WriteAck>)> {
        let mut current = self.remote_get(s, remote, key)?;
        for _ in 0..UPDATE_REMOTE_ATTEMPTS {
            let new = match change(current.as_deref())? {
                Update::Keep => return Ok((current, None)),
                Update::Set(v) => {
                    if v.len() > MAX_VALUE_BYTES {
                        return Err(GlobalsError::ValueTooLong { len: v.len(), max: MAX_VALUE_BYTES }.into());
                    }
                    Some(v)
                }
                Update::Remove if current.is_none() => return Ok((None, None)),
                Update::Remove => None,
            };
            match self.remote_compare_and_set(s, remote, key, current.as_deref(), new.as_deref())? {
                Ok(()) => return Ok((current, Some(self.remote_ack_now()))),
                Err(now) => current = now,
            }
        }
        Err(EngineError::Invalid(format!(
            "the node kept changing on data server {} while this command tried {UPDATE_REMOTE_ATTEMPTS} times to update it; try again",
            remote.server.name
        )))
    }
}

/// How often a read-modify-write of a remote node tries before it gives up.
const UPDATE_REMOTE_ATTEMPTS: usize = 16;

/// Where a global lives.
enum Place {
    Local(Arc<Database>),
    Remote(super::remote::RemoteDatabase),
}

/// What [`Instance::update`] does with a node, given its current value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// Write nothing.
    Keep,
    Set(Vec<u8>),
    /// Remove the node's value (as ZKILL: its descendants stay).
    Remove,
}

/// `[lo, hi)` over encoded keys.
type KeyRange = (Vec<u8>, Vec<u8>);
/// Encoded keys and values, in key order.
type Nodes = Vec<(Vec<u8>, Vec<u8>)>;

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

/// Where one write goes, decided under the write lock.
struct Target {
    journal: JournalId,
    /// The transaction id; 0 outside transactions.
    txn: u64,
    /// Whether the record carries the old value: inside transactions (rollback), and in
    /// the mirror journal always (a diverged member rewinds with them).
    record_old: bool,
}

impl Instance {
    /// With the write lock held, so that no mount change, mirror role change or journal
    /// failure can slip in between the check and the write: the journal a write to `db`
    /// goes to, once the database is still mounted and writable here and that journal has
    /// not failed.
    fn write_journal(&self, db: &Database) -> Result<JournalId> {
        self.still_writable(db)?;
        let journal = self.journal_for_write(db)?;
        self.journal_of(journal).check_failed()?;
        Ok(journal)
    }

    /// With the write lock held, after [`Instance::write_journal`]: the session's
    /// transaction for this write (TSTART journaled at its first write).
    fn begin_write(&self, s: &mut Session, journal: JournalId, db: &Database) -> Result<Target> {
        let txn = self.txn_for_write(s, journal, db.name())?;
        Ok(Target { journal, txn, record_old: txn != 0 || journal == JournalId::Mirror })
    }

    /// Remembers how to undo a transactional write: in the session for the local journal,
    /// in the instance for the mirror journal (promotion and rewind reach it there).
    fn push_undo(&self, s: &mut Session, t: &Target, db: &Arc<Database>, key: &[u8], old: Option<Vec<u8>>) {
        if t.txn == 0 {
            return;
        }
        let undo = Undo { db: db.clone(), key: key.to_vec(), old };
        match t.journal {
            JournalId::Local => {
                if let Some(open) = s.txn.as_mut() {
                    open.undo.push(undo);
                }
            }
            JournalId::Mirror => {
                if let Some(open) = self.mirror_txns.lock().get_mut(&t.txn) {
                    open.undo.push(undo);
                }
            }
        }
    }

    /// The database is still mounted and not mounted read-only.
    fn still_writable(&self, db: &Database) -> Result<()> {
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

pub(crate) fn old_value(old: Option<Vec<u8>>) -> OldValue {
    match old {
        Some(v) => OldValue::Present(v),
        None => OldValue::Absent,
    }
}
