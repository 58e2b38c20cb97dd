//! Deliberate bugs, compiled into tests only, that prove the simulator can fail: with a
//! mutation switched on, some seed must break an invariant and print its replay command
//! (`sim::mutation_is_caught`). A simulator that passes with a known bug in the machine
//! proves nothing.
//!
//! The switch is per thread (a seed runs on one thread), so the other tests running at the
//! same time see the real machine. Replay a seed under a mutation with
//! `SIM_MUTATION=<name> SIM_SEED=<n> cargo test -p mirrorlab-engine failover::sim`.

use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// The primary acknowledges commits up to its own journal end instead of what its
    /// active backup acknowledged (it skips the backup's acknowledgement).
    SkipBackupAck,
}

impl Mutation {
    pub fn name(self) -> &'static str {
        match self {
            Mutation::SkipBackupAck => "skip-backup-ack",
        }
    }

    pub fn from_name(name: &str) -> Option<Mutation> {
        [Mutation::SkipBackupAck].into_iter().find(|m| m.name() == name)
    }
}

thread_local! {
    static ACTIVE: Cell<Option<Mutation>> = const { Cell::new(None) };
}

/// Whether `m` is switched on in this thread.
pub fn active(m: Mutation) -> bool {
    ACTIVE.with(|a| a.get() == Some(m))
}

/// The mutation switched on in this thread, if any.
pub fn current() -> Option<Mutation> {
    ACTIVE.with(Cell::get)
}

/// Switches `m` on in this thread until the guard is dropped.
pub fn enable(m: Mutation) -> Guard {
    ACTIVE.with(|a| a.set(Some(m)));
    Guard
}

pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(None));
    }
}
