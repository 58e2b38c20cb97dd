//! Commands out: what the state machine asks the driver to do, in order.
//!
//! The driver executes each step's commands in the order given and finishes one before
//! starting the next: a `PersistEpoch` is durable before any later command runs, a journal
//! operation is durable before the acknowledgement that follows it.

use super::events::Message;
use super::types::{Epoch, JournalSummary, MemberId, MemberKind, MemberStatus, Millis, Position};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Write the epoch durably (fsync) before doing anything that depends on it.
    PersistEpoch(Epoch),
    /// Change the local journal.
    Journal(JournalOp),
    /// Send a message to another member (best effort).
    Send { to: MemberId, msg: Message },
    /// Send a request to the arbiter (best effort; the answer comes back as an event).
    AskArbiter(ArbiterRequest),
    /// Ask `member`'s agent for the instance's state, or to force it down first.
    AskAgent { member: MemberId, fence: bool },
    /// Tell clients their commits up to `upto` are durable on the mirror. The driver must
    /// drop this command if its clock already reads `send_before` or later (the lease ran
    /// out while the command waited).
    AckCommits { upto: Position, send_before: Millis },
    /// Clients' commits are held (trouble, lease lost, handing over).
    StopAcking,
    /// Commits are acknowledged again.
    StartAcking,
    /// Become primary of `epoch`: roll back the transactions left open in the journal,
    /// then start the primary's services. Writes open later, with `OpenForWrites`.
    BecomePrimary { epoch: Epoch },
    /// Accept client writes (after the rollback and after the old primary's lease ran out).
    OpenForWrites { epoch: Epoch },
    /// Stop being primary: refuse writes, fail commits not yet acknowledged, follow the
    /// primary of `epoch`.
    DemoteToBackup { epoch: Epoch },
    /// This member's own type changed (operator promote/demote): persist it, and tell the
    /// primary (the driver rejoins, and the join carries the type).
    KindChanged(MemberKind),
    /// The member status changed (for the Mirror Monitor and the log).
    StatusChanged { from: MemberStatus, to: MemberStatus },
    /// Something an operator should read in the log.
    Log(LogLine),
}

/// Local journal changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalOp {
    /// Drop every record after `to`: they were never acknowledged and the primary of a
    /// newer epoch does not have them (the member diverged).
    Truncate { to: Position },
    /// Copy records so that the journal equals `target` up to `target.end()` (the prefix
    /// already matches), from the primary or, when `from_agent`, from `source`'s agent.
    Receive { source: MemberId, from_agent: bool, target: JournalSummary },
}

/// Requests to the arbiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArbiterRequest {
    /// Every heartbeat. The primary also states which backup may take over through the
    /// arbiter (`eligible`, arbiter-controlled mode) under sequence `mode_seq`.
    Ping { epoch: Epoch, primary: bool, eligible: Option<MemberId>, mode_seq: u64 },
    /// The active backup of `epoch` lost the primary and asks to take over.
    Takeover { epoch: Epoch },
}

/// Log lines, so tests can match them exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLine {
    /// The member held records the primary of a newer epoch never got.
    InconsistentWithMirror {
        rewound_to: Position,
    },
    /// The primary learned a newer epoch and is demoting itself.
    FailoverHappened {
        epoch: Epoch,
    },
    TakeoverByArbiter {
        epoch: Epoch,
    },
    TakeoverByAgent {
        epoch: Epoch,
        peer: MemberId,
    },
    ContinuingAlone,
    BackupActive {
        backup: MemberId,
    },
    BackupRevoked {
        backup: MemberId,
    },
    /// The primary did not step for `gap` ms, more than the pause bound (it was stopped,
    /// paused or stalled): its trouble timer restarts, and alone it is in trouble again.
    Paused {
        gap: Millis,
    },
    /// The backup did not take over after a planned failover: the hand-over is given up.
    HandoverNotTaken {
        backup: MemberId,
    },
    /// An event carried an epoch far above anything this member knows (a broken or
    /// hostile peer, agent or arbiter): the whole event was refused, nothing saved.
    ImplausibleEpoch {
        epoch: Epoch,
        known: Epoch,
    },
}
