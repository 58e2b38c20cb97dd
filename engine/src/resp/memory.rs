//! An in-memory [`Backend`] for the server's tests: globals in one ordered map keyed by the
//! real key encoding (so ORDER and QUERY collate as the instance does), a counter for journal
//! positions, and hooks to observe durability waits. Transactions are not modelled; their
//! tests run against the real instance.
//!
//! Also [`FakeMirror`], a scripted mirror member the RESP, web and CLI tests install in
//! place of the mirror runtime.

use super::backend::Backend;
use crate::error::{EngineError, Result};
use crate::globals::limits::MAX_VALUE_BYTES;
use crate::globals::{key, GlobalRef, GlobalsError, Number, Subscript};
use crate::instance::{
    Direction, Durability, DurableWait, InstanceStatus, JournalId, MirrorMode, Session, Update, WriteAck,
};
use crate::mirror::config::MemberType;
use crate::mirror::status::{
    DatabaseStatus, Latency, MemberLine, MemberStatus, MirrorAction, MirrorControl, MirrorStatus, MirroredDatabase,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Encoded key → the reference and its value.
type Nodes = BTreeMap<Vec<u8>, (GlobalRef, Vec<u8>)>;

pub(crate) struct MemoryBackend {
    nodes: Mutex<Nodes>,
    position: AtomicU64,
    pub durability: Durability,
    /// Every `wait_durable` call's position, in order.
    pub waits: Mutex<Vec<u64>>,
    pub fail_durable: AtomicBool,
    pub ended_sessions: AtomicU64,
    /// The mirror member, as `Instance::mirror_control` would give it.
    pub mirror: Mutex<Option<Arc<dyn MirrorControl>>>,
    /// What `mirrored_databases` answers (FLUSHDB's refusal).
    pub mirrored: Mutex<Vec<String>>,
    /// What `member_superservers` answers.
    pub superservers: Mutex<Vec<(String, String)>>,
    pub counters: Arc<crate::instance::counters::ServerCounters>,
}

impl MemoryBackend {
    pub fn new(durability: Durability) -> MemoryBackend {
        MemoryBackend {
            nodes: Mutex::new(BTreeMap::new()),
            position: AtomicU64::new(0),
            durability,
            waits: Mutex::new(Vec::new()),
            fail_durable: AtomicBool::new(false),
            ended_sessions: AtomicU64::new(0),
            mirror: Mutex::new(None),
            mirrored: Mutex::new(Vec::new()),
            superservers: Mutex::new(Vec::new()),
            counters: Arc::default(),
        }
    }

    fn write(&self, s: &Session) -> WriteAck {
        let position = self.position.fetch_add(1, Ordering::SeqCst) + 1;
        WriteAck {
            journal: JournalId::Local,
            position,
            wait: s.durability.unwrap_or(self.durability) == Durability::Always,
        }
    }
}

impl Backend for MemoryBackend {
    fn counters(&self) -> Arc<crate::instance::counters::ServerCounters> {
        self.counters.clone()
    }

    fn session(&self) -> Session {
        Session::new("USER", std::sync::Arc::new(crate::security::Rights::open()))
    }

    fn use_namespace(&self, s: &mut Session, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        if name != "USER" && name != "%SYS" {
            return Err(EngineError::NoNamespace(name));
        }
        s.namespace = name;
        Ok(())
    }

    fn get(&self, _: &Session, r: &GlobalRef) -> Result<Option<Vec<u8>>> {
        Ok(self.nodes.lock().get(&key::encode(r)?).map(|(_, v)| v.clone()))
    }

    fn set(&self, s: &mut Session, r: &GlobalRef, value: &[u8]) -> Result<WriteAck> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(GlobalsError::ValueTooLong { len: value.len(), max: MAX_VALUE_BYTES }.into());
        }
        self.nodes.lock().insert(key::encode(r)?, (r.clone(), value.to_vec()));
        Ok(self.write(s))
    }

    fn kill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        let k = key::encode(r)?;
        let end = key::subtree_end(&k);
        let mut nodes = self.nodes.lock();
        let doomed: Vec<Vec<u8>> = nodes.range(k..end).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            nodes.remove(&k);
        }
        Ok(self.write(s))
    }

    fn zkill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        self.nodes.lock().remove(&key::encode(r)?);
        Ok(self.write(s))
    }

    fn data(&self, _: &Session, r: &GlobalRef) -> Result<u8> {
        let k = key::encode(r)?;
        let end = key::subtree_end(&k);
        let nodes = self.nodes.lock();
        let value = u8::from(nodes.contains_key(&k));
        let children = u8::from(nodes.range((Excluded(k), Excluded(end))).next().is_some());
        Ok(children * 10 + value)
    }

    fn order(
        &self,
        _: &Session,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        dir: Direction,
    ) -> Result<Option<Subscript>> {
        let p = key::encode(parent)?;
        let end = key::subtree_end(&p);
        let nodes = self.nodes.lock();
        let mut subs: Vec<(Vec<u8>, Subscript)> = Vec::new();
        for k in nodes.range((Excluded(p.clone()), Excluded(end))).map(|(k, _)| k) {
            let (sub, sub_end) = key::first_subscript_after(&p, k)?;
            if subs.last().is_none_or(|(prev, _)| prev.as_slice() != &k[..sub_end]) {
                subs.push((k[..sub_end].to_vec(), sub));
            }
        }
        let from = after.map(|a| parent.child(a.clone()).and_then(|c| key::encode(&c))).transpose()?;
        let found = match (dir, from) {
            (Direction::Forward, None) => subs.first(),
            (Direction::Backward, None) => subs.last(),
            (Direction::Forward, Some(f)) => subs.iter().find(|(k, _)| *k > f),
            (Direction::Backward, Some(f)) => subs.iter().rev().find(|(k, _)| *k < f),
        };
        Ok(found.map(|(_, s)| s.clone()))
    }

    fn query(&self, _: &Session, r: &GlobalRef, dir: Direction) -> Result<Option<GlobalRef>> {
        let k = key::encode(r)?;
        let name = key::encode_name(&r.name);
        let nodes = self.nodes.lock();
        let found = match dir {
            Direction::Forward => nodes.range((Excluded(k), Unbounded)).next(),
            Direction::Backward => nodes.range((Included(name.clone()), Excluded(k))).next_back(),
        };
        Ok(found.filter(|(k, _)| k.starts_with(&name)).map(|(_, (r, _))| r.clone()))
    }

    fn increment(&self, s: &mut Session, r: &GlobalRef, by: Number) -> Result<(Number, WriteAck)> {
        let k = key::encode(r)?;
        let mut nodes = self.nodes.lock();
        let old = nodes.get(&k).map_or(Number::ZERO, |(_, v)| Number::parse_prefix(v));
        let new = old.add(by);
        nodes.insert(k, (r.clone(), new.to_canonical().into_bytes()));
        Ok((new, self.write(s)))
    }

    fn update<F: FnMut(Option<&[u8]>) -> Result<Update>>(
        &self,
        s: &mut Session,
        r: &GlobalRef,
        mut change: F,
    ) -> Result<(Option<Vec<u8>>, Option<WriteAck>)> {
        let k = key::encode(r)?;
        let mut nodes = self.nodes.lock();
        let current = nodes.get(&k).map(|(_, v)| v.clone());
        match change(current.as_deref())? {
            Update::Keep => Ok((current, None)),
            Update::Set(v) => {
                if v.len() > MAX_VALUE_BYTES {
                    return Err(GlobalsError::ValueTooLong { len: v.len(), max: MAX_VALUE_BYTES }.into());
                }
                nodes.insert(k, (r.clone(), v));
                Ok((current, Some(self.write(s))))
            }
            Update::Remove => {
                if nodes.remove(&k).is_none() {
                    return Ok((None, None));
                }
                Ok((current, Some(self.write(s))))
            }
        }
    }

    fn scan_keys(&self, _: &Session, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, usize)>> {
        let nodes = self.nodes.lock();
        let lo = match after {
            Some(a) => Excluded(a.to_vec()),
            None => Unbounded,
        };
        Ok(nodes.range((lo, Unbounded)).take(limit).map(|(k, (_, v))| (k.clone(), v.len())).collect())
    }

    fn mirrored_databases(&self, _: &Session) -> Result<Vec<String>> {
        Ok(self.mirrored.lock().clone())
    }

    fn tstart(&self, _: &mut Session) -> Result<u32> {
        Err(EngineError::Invalid("transactions need the real instance".into()))
    }

    fn tcommit(&self, _: &mut Session) -> Result<WriteAck> {
        Err(EngineError::NoTransaction)
    }

    fn trollback(&self, _: &mut Session) -> Result<WriteAck> {
        Err(EngineError::NoTransaction)
    }

    fn sync(&self) -> DurableWait {
        DurableWait { local: Some(self.position.load(Ordering::SeqCst)), mirror: None }
    }

    fn read_barrier(&self, s: &Session) -> DurableWait {
        let always = s.durability.unwrap_or(self.durability) == Durability::Always;
        DurableWait { local: always.then(|| self.position.load(Ordering::SeqCst)), mirror: None }
    }

    /// One journal only: every position is the local journal's.
    async fn wait_durable(&self, _journal: JournalId, position: u64) -> Result<()> {
        self.waits.lock().push(position);
        if self.fail_durable.load(Ordering::SeqCst) {
            return Err(EngineError::io("journal sync", std::io::Error::other("simulated disk failure")));
        }
        Ok(())
    }

    fn end_session(&self, _: &mut Session) {
        self.ended_sessions.fetch_add(1, Ordering::SeqCst);
    }

    fn status(&self) -> InstanceStatus {
        InstanceStatus {
            name: "test".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            data_dir: "/nonexistent".into(),
            started_at: "2000-01-01T00:00:00Z".into(),
            superserver_port: 0,
            web_port: 0,
            journal_position: self.position.load(Ordering::SeqCst),
            durable_position: self.position.load(Ordering::SeqCst),
            mirror_journal_position: None,
            mirror_durable_position: None,
            mirror_mode: MirrorMode::None,
            durability: self.durability,
            frozen: false,
            databases: 1,
            namespaces: 2,
        }
    }

    fn member_superservers(&self) -> Vec<(String, String)> {
        self.superservers.lock().clone()
    }

    async fn mirror_status(&self) -> Option<MirrorStatus> {
        let control = self.mirror.lock().clone()?;
        control.status()
    }

    async fn mirror_act(&self, action: MirrorAction) -> Result<String> {
        let control = self.mirror.lock().clone().ok_or(EngineError::NotMirrored)?;
        control.act(action)
    }
}

/// A scripted mirror member: answers [`FakeMirror::status`] as set, records every action,
/// and refuses the ones the reference product refuses in its state (a planned failover when
/// not primary, adding a database that does not exist), so tests see both answers.
pub(crate) struct FakeMirror {
    pub status: Mutex<Option<MirrorStatus>>,
    pub actions: Mutex<Vec<MirrorAction>>,
}

impl FakeMirror {
    pub fn new(status: Option<MirrorStatus>) -> Arc<FakeMirror> {
        Arc::new(FakeMirror { status: Mutex::new(status), actions: Mutex::new(Vec::new()) })
    }

    /// Sets this member's status.
    pub fn set_member_status(&self, status: MemberStatus) {
        if let Some(s) = self.status.lock().as_mut() {
            s.status = status.into();
        }
    }
}

impl MirrorControl for FakeMirror {
    fn status(&self) -> Option<MirrorStatus> {
        self.status.lock().clone()
    }

    fn act(&self, action: MirrorAction) -> Result<String> {
        self.actions.lock().push(action.clone());
        let is_primary = self.status.lock().as_ref().is_some_and(|s| s.status == MemberStatus::Primary);
        match action {
            MirrorAction::PlannedFailover if !is_primary => {
                Err(EngineError::Invalid("a planned failover starts on the primary".into()))
            }
            MirrorAction::PlannedFailover => Ok("MIRRORB is taking over as primary".into()),
            MirrorAction::AddDatabase { name } if name == "NOPE" => Err(EngineError::NoDatabase(name)),
            MirrorAction::AddDatabase { name } => Ok(format!("database {name} is mirrored")),
            MirrorAction::SetNoFailover => Ok("no failover is set".into()),
            other => Ok(format!("done: {other:?}")),
        }
    }

    /// The fake has no lease: its primary acknowledges while its status says Primary.
    fn acknowledging_primary(&self) -> bool {
        self.status.lock().as_ref().is_some_and(|s| s.status == MemberStatus::Primary)
    }
}

/// A primary's view of a mirror of two failover members and a DR async.
pub(crate) fn sample_status() -> MirrorStatus {
    let member = |name: &str, member_type, status, transfer: &str, dejournaling: &str, position| MemberLine {
        name: name.into(),
        member_type,
        status,
        journal_transfer: transfer.into(),
        dejournaling: dejournaling.into(),
        journal_latency: Latency { time_ms: 0, bytes: 0, files: 0 },
        database_latency: Latency { time_ms: 120, bytes: 4096, files: 1 },
        position,
        last_heard_ms: Some(40),
    };
    MirrorStatus {
        mirror: "DEMO".into(),
        member: "MIRRORA".into(),
        member_type: MemberType::Failover,
        status: MemberStatus::Primary.into(),
        primary: Some("MIRRORA".into()),
        epoch: 7,
        failover_mode: "Arbiter Controlled".into(),
        arbiter: "Both failover members are connected to the arbiter".into(),
        no_failover: false,
        journal_position: 1042,
        durable_position: 1042,
        acked_position: 1040,
        members: vec![
            member("MIRRORA", MemberType::Failover, MemberStatus::Primary, "", "", 1042),
            member("MIRRORB", MemberType::Failover, MemberStatus::Backup, "Active", "Caught up", 1042),
            member("DR", MemberType::Dr, MemberStatus::Connected, "2 s behind", "Caught up", 1001),
        ],
        databases: vec![
            MirroredDatabase { name: "COMPANY".into(), status: DatabaseStatus::Normal, position: 1042 },
            MirroredDatabase { name: "PERSONAL".into(), status: DatabaseStatus::Normal, position: 1042 },
        ],
    }
}
