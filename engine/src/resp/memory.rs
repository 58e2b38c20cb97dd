//! An in-memory [`Backend`] for the server's tests: globals in one ordered map keyed by the
//! real key encoding (so ORDER and QUERY collate as the instance does), a counter for journal
//! positions, and hooks to observe durability waits. Transactions are not modelled; their
//! tests run against the real instance.

use super::backend::Backend;
use crate::error::{EngineError, Result};
use crate::globals::limits::MAX_VALUE_BYTES;
use crate::globals::{key, GlobalRef, GlobalsError, Number, Subscript};
use crate::instance::{Direction, Durability, InstanceStatus, Session, WriteAck};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
        }
    }

    fn write(&self, s: &Session) -> WriteAck {
        let position = self.position.fetch_add(1, Ordering::SeqCst) + 1;
        WriteAck { position, wait: s.durability.unwrap_or(self.durability) == Durability::Always }
    }
}

impl Backend for MemoryBackend {
    fn session(&self) -> Session {
        Session { namespace: "USER".into(), client_name: None, durability: None, txn: None }
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

    fn tstart(&self, _: &mut Session) -> Result<u32> {
        Err(EngineError::Invalid("transactions need the real instance".into()))
    }

    fn tcommit(&self, _: &mut Session) -> Result<WriteAck> {
        Err(EngineError::NoTransaction)
    }

    fn trollback(&self, _: &mut Session) -> Result<WriteAck> {
        Err(EngineError::NoTransaction)
    }

    fn sync(&self) -> WriteAck {
        WriteAck { position: self.position.load(Ordering::SeqCst), wait: true }
    }

    fn read_barrier(&self, s: &Session) -> Option<u64> {
        (s.durability.unwrap_or(self.durability) == Durability::Always).then(|| self.position.load(Ordering::SeqCst))
    }

    async fn wait_durable(&self, position: u64) -> Result<()> {
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
            durability: self.durability,
            frozen: false,
            databases: 1,
            namespaces: 2,
        }
    }
}
