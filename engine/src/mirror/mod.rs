//! Database mirroring: failover members (primary and synchronous backup), async members,
//! the agent beside every engine and the arbiter.
//!
//! - `config`: the mirror's configuration and its naming rules.
//! - `failover`: the decision core, a pure state machine with no I/O, and its seeded
//!   simulator.
//! - `shipping`: the data channel that streams the journal from primary to members.
//! - `runtime`: the tokio layer that carries the state machine's commands out over
//!   sockets and the journal.
//! - `stages`: where a mirrored commit's time goes (histograms for `/metrics`).

pub mod config;
pub mod failover;
pub mod runtime;
pub mod shipping;
pub mod stages;
pub mod status;
