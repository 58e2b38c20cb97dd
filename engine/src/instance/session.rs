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

/// What a write returns. The caller acknowledges the client only after
/// `Instance::wait_durable(position)` when `wait` is true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct WriteAck {
    pub position: u64,
    pub wait: bool,
}

/// An open transaction of one session.
#[derive(Debug)]
pub(crate) struct OpenTxn {
    /// 0 until the first write journals TSTART (read-only transactions journal nothing).
    pub(crate) id: u64,
    pub(crate) level: u32,
    /// How to undo each write, in order.
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
}

impl Session {
    /// `$TLEVEL`: nesting depth of the open transaction, 0 when none.
    pub fn tlevel(&self) -> u32 {
        self.txn.as_ref().map_or(0, |t| t.level)
    }
}
