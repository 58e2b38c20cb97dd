//! The failover core: a pure state machine, no I/O.
//!
//! A driver owns one [`Member`] per data member and calls
//! [`Member::step`]`(now, event) -> Vec<Command>` for every event: a tick, a message from
//! another member, the journal growing, an arbiter or agent answer, a connection going down, an
//! operator command. `now` is the member's monotonic clock in milliseconds; every timer
//! derives from it. The driver executes the returned [`Command`]s in order (persist the
//! epoch before anything after it, journal writes before the acknowledgements after them)
//! and feeds the answers back as events. The arbiter is the pure [`Arbiter`]: one request
//! in, one answer out. Design, timing contract and the simulator: docs/design/failover.md.

pub mod arbiter;
pub mod commands;
pub mod events;
pub mod member;
pub mod timing;
pub mod types;

pub use arbiter::Arbiter;
pub use commands::{ArbiterRequest, Command, JournalOp, LogLine};
pub use events::{AgentAnswer, ArbiterAnswer, Event, InstanceState, Message, OperatorCommand};
pub use member::{Durable, Member, MirrorConfig};
pub use timing::{Timing, DEFAULT_QOS_MS, MAX_DRIFT_PPM};
pub use types::{
    check_epoch, common_prefix, next_epoch, ArbiterLine, DatabaseStatus, Epoch, FailoverMode, ImplausibleEpoch,
    JournalSummary, MemberId, MemberKind, MemberSpec, MemberStatus, Millis, Position, MAX_EPOCH, MAX_EPOCH_STEP,
    MAX_MEMBERS,
};

#[cfg(test)]
pub(crate) mod mutation;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
