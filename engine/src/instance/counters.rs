//! The superserver's client counters: the RESP server counts, `INFO` and `/metrics` read
//! (so a dashboard and `redis-cli INFO` agree). Relaxed atomics: each is a count on its
//! own, never compared with another.

use std::sync::atomic::{AtomicU64, AtomicUsize};

#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Connections open now.
    pub connected: AtomicUsize,
    /// Connections accepted since the engine started.
    pub connections: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub rejected: AtomicU64,
    /// Commands run (a pipeline counts each of its commands).
    pub commands: AtomicU64,
    /// Commands answered with an error (Redis's `total_error_replies`; an error inside an
    /// EXEC's array counts once, as the EXEC).
    pub errors: AtomicU64,
}
