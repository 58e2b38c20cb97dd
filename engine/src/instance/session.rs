//! Per-connection state: current namespace, open transaction, durability override.

/// When a plain (non-transactional) write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Acknowledged once in the journal buffer; synced within `journal.sync_interval_ms`.
    Buffered,
    /// Acknowledged only after its journal fsync (Redis's `appendfsync always`).
    Always,
}

/// Direction of `$ORDER` and `$QUERY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// Which of the instance's journals a position belongs to (docs/design/mirroring.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalId {
    /// `journal/`: every database that is not mirrored.
    Local,
    /// `journal/mirror-<MIRROR>/`: the mirrored databases.
    Mirror,
}

/// What a write returns. The caller acknowledges the client only after
/// `Instance::wait_for(ack)` (the journal's durable wait, and on a mirror primary the
/// backup's acknowledgement) when `wait` is true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct WriteAck {
    /// The journal `position` belongs to.
    pub journal: JournalId,
    pub position: u64,
    pub wait: bool,
}

/// The highest position to await in each journal: what a pipeline of replies promises.
/// Awaiting the highest one per journal covers every lower one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DurableWait {
    pub local: Option<u64>,
    pub mirror: Option<u64>,
}

impl DurableWait {
    /// Nothing to wait for.
    pub const NONE: DurableWait = DurableWait { local: None, mirror: None };

    pub fn note(&mut self, journal: JournalId, position: u64) {
        let slot = match journal {
            JournalId::Local => &mut self.local,
            JournalId::Mirror => &mut self.mirror,
        };
        *slot = Some(slot.map_or(position, |p| p.max(position)));
    }

    /// Notes a write's position if its acknowledgement must wait.
    pub fn note_ack(&mut self, ack: WriteAck) {
        if ack.wait {
            self.note(ack.journal, ack.position);
        }
    }

    pub fn merge(&mut self, other: DurableWait) {
        for (journal, position) in other.points() {
            self.note(journal, position);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.local.is_none() && self.mirror.is_none()
    }

    /// The positions to await, at most one per journal.
    pub fn points(&self) -> impl Iterator<Item = (JournalId, u64)> {
        let local = self.local.map(|p| (JournalId::Local, p));
        let mirror = self.mirror.map(|p| (JournalId::Mirror, p));
        local.into_iter().chain(mirror)
    }
}

/// An open transaction of one session.
#[derive(Debug)]
pub(crate) struct OpenTxn {
    /// 0 until the first write journals TSTART (read-only transactions journal nothing).
    pub(crate) id: u64,
    pub(crate) level: u32,
    /// The journal of the first database written: every record of the transaction goes
    /// there, so it commits atomically. `None` until the first write.
    pub(crate) journal: Option<JournalId>,
    /// The first database written (to name it when a write would need the other journal).
    pub(crate) first_db: String,
    /// How to undo each write, in order (local journal only: a mirror journal
    /// transaction's undo is kept by the instance, see `Instance::mirror_txns`).
    pub(crate) undo: Vec<Undo>,
}

/// Restores one node: `old` is its value before the write (`None`: it had none).
#[derive(Debug, Clone)]
pub(crate) struct Undo {
    pub(crate) db: std::sync::Arc<crate::storage::Database>,
    pub(crate) key: Vec<u8>,
    pub(crate) old: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct Session {
    pub namespace: String,
    pub client_name: Option<String>,
    /// `None` follows the instance-wide setting.
    pub durability: Option<Durability>,
    pub(crate) txn: Option<OpenTxn>,
    /// What the session's user may do with globals: every read and write checks the
    /// database the global maps to (`ops.rs`, `keyspace.rs`).
    pub rights: std::sync::Arc<crate::security::Rights>,
    /// Data-server side of ECP: the database every global of the current request lives
    /// in, whatever the namespace maps (the request names it).
    pub(crate) pinned: Option<String>,
    /// Data-server side of ECP: the origin the next write journals just before its own
    /// records (taken by that write).
    pub(crate) origin: Option<crate::journal::record::EcpOrigin>,
    /// Application-server side of ECP: this session's channels to data servers.
    /// Locked only by this session's own requests (the reads take `&Session`).
    pub(crate) remote: parking_lot::Mutex<crate::ecp::app::Channels>,
}

impl Session {
    /// A session in `namespace` with `rights`, nothing else set.
    pub fn new(namespace: &str, rights: std::sync::Arc<crate::security::Rights>) -> Session {
        Session {
            namespace: namespace.into(),
            client_name: None,
            durability: None,
            txn: None,
            rights,
            pinned: None,
            origin: None,
            remote: Default::default(),
        }
    }
}

impl Session {
    /// `$TLEVEL`: nesting depth of the open transaction, 0 when none.
    pub fn tlevel(&self) -> u32 {
        self.txn.as_ref().map_or(0, |t| t.level)
    }
}
