//! Database mirroring: failover members (primary and synchronous backup), async members,
//! the agent beside every engine and the arbiter.
//!
//! `failover` is the decision core: a pure state machine with no I/O. The layers that carry
//! its commands out over sockets and the journal live beside it.

pub mod failover;
