//! Quality of service, trouble timeout, and the timing contract.
//!
//! The contract, with every duration on the measuring member's own clock and `ρ` the
//! largest clock-rate error we allow (`MAX_DRIFT_PPM`):
//!
//! ```text
//! heartbeat + max_rtt  <  ack_lease  <  QoS · (1 − ρ) / (1 + ρ)
//! ```
//!
//! The right half is safety: the primary acknowledges a commit only while the newest
//! journal message its active backup acknowledged was sent less than `ack_lease` ago, and
//! the backup may take over only after `QoS` without hearing from the primary, so the
//! isolated primary stops acknowledging (after at most `ack_lease · (1 + ρ)` real time)
//! before the backup may take over (after at least `QoS · (1 − ρ)`). The left half is
//! liveness: a healthy primary renews its lease before it runs out, so load and normal
//! round trips never stall it.

use super::types::Millis;

/// Our default quality-of-service timeout. The reference product's default is 8000 ms;
/// ours is chosen for failover p50 ≤ 2 s and max ≤ 4 s (see docs/design/failover.md).
pub const DEFAULT_QOS_MS: u32 = 3000;

/// The largest clock-rate error between two members we design for: 10 % (100 000 ppm).
pub const MAX_DRIFT_PPM: u32 = 100_000;

/// Timers of one mirror, all derived from QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Quality-of-service timeout: how long a member waits before deciding another is
    /// unresponsive.
    pub qos_ms: u32,
    /// Heartbeat interval (journal or empty message to every member, ping to the arbiter).
    pub heartbeat_ms: u32,
    /// Largest clock-rate error allowed, in parts per million.
    pub max_drift_ppm: u32,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing::with_qos(DEFAULT_QOS_MS)
    }
}

impl Timing {
    /// Timers for a QoS: heartbeat QoS/6, drift bound 10 %.
    pub fn with_qos(qos_ms: u32) -> Timing {
        Timing { qos_ms, heartbeat_ms: (qos_ms / 6).max(1), max_drift_ppm: MAX_DRIFT_PPM }
    }

    pub fn qos(&self) -> Millis {
        Millis::from(self.qos_ms)
    }

    pub fn heartbeat(&self) -> Millis {
        Millis::from(self.heartbeat_ms)
    }

    /// The primary acknowledges only while its active backup acknowledged a message sent
    /// less than this long ago: QoS/2, the short end of the reference's waits.
    pub fn ack_lease(&self) -> Millis {
        self.qos() / 2
    }

    /// In agent-controlled mode, how long a primary that lost its backup stays in trouble
    /// (not acknowledging) before it continues alone: 2 × QoS.
    pub fn trouble_timeout(&self) -> Millis {
        2 * self.qos()
    }

    /// The round trip a heartbeat may take without stalling acknowledgements.
    pub fn max_rtt(&self) -> Millis {
        self.ack_lease().saturating_sub(self.heartbeat())
    }

    /// The longest gap between two steps of a member that still counts as time it watched
    /// pass: the ack lease (QoS/2). The driver steps at least every 20 ms (its tick) and
    /// the simulator every 50 ms, so a longer gap means the member did not run (SIGSTOP, a
    /// VM pause, a stalled disk); any lease it held ran out inside it. A primary restarts
    /// its trouble timer after such a gap and, alone, needs fresh word before it
    /// acknowledges again (docs/design/failover.md, "Pauses").
    pub fn pause_bound(&self) -> Millis {
        self.ack_lease()
    }

    /// How often a member that lost the primary retries the arbiter and the agents.
    pub fn retry(&self) -> Millis {
        (self.qos() / 2).max(1)
    }

    /// Left side of the safety half, in real time: the longest an isolated primary can go
    /// on acknowledging after sending the last message its backup acknowledged,
    /// `ack_lease · (1 + ρ)`, rounded up.
    pub fn primary_stops_acking_after(&self) -> Millis {
        let ppm = u64::from(self.max_drift_ppm);
        (self.ack_lease() * (1_000_000 + ppm)).div_ceil(1_000_000)
    }

    /// Right side, in real time: the soonest the backup may take over after receiving the
    /// primary's last message, `QoS · (1 − ρ)`, rounded down.
    pub fn backup_may_take_over_after(&self) -> Millis {
        let ppm = u64::from(self.max_drift_ppm);
        self.qos() * (1_000_000 - ppm) / 1_000_000
    }

    /// How long a new primary waits, on its own clock, after it last acknowledged the old
    /// primary's journal before it acknowledges anything itself: the old primary's lease
    /// measured with the worst drift, `ack_lease · (1 + ρ) / (1 − ρ)`, rounded up.
    pub fn lease_guard(&self) -> Millis {
        let ppm = u64::from(self.max_drift_ppm);
        (self.ack_lease() * (1_000_000 + ppm)).div_ceil(1_000_000 - ppm)
    }

    /// Both halves of the contract hold.
    pub fn contract_holds(&self) -> bool {
        self.heartbeat() + self.max_rtt() <= self.ack_lease()
            && self.heartbeat() < self.ack_lease()
            && self.primary_stops_acking_after() < self.backup_may_take_over_after()
            && self.lease_guard() < self.qos()
    }
}
