//! Events in: everything the state machine learns from the outside world.

use super::types::{DatabaseStatus, Epoch, JournalSummary, MemberId, MemberKind, Millis, Position};

/// One input to [`crate::mirror::failover::Member::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Time passed. The driver ticks every few tens of milliseconds; all timers derive
    /// from the `now` given with every event.
    Tick,
    /// A message from another member.
    Message { from: MemberId, msg: Message },
    /// The real journal of a primary grew to `upto` (durable) in its epoch: records written
    /// by clients (only while it is open for writes: the driver's write mode), or by the
    /// rollback that precedes opening. The records exist whether or not the member is
    /// open, so they are always counted; the primary sends its journal summary to its
    /// active backup (or to the failover members catching up to become it) at once, and
    /// the acknowledgements come back as `JournalAck`. The simulator sends exactly this
    /// after a client's write, as the driver does.
    JournalAppended { upto: Position },
    /// On a primary: a member acknowledged over the data channel that it has durably
    /// received the journal up to `end` (in this epoch). It confirms records as a
    /// `JournalAck` does, but never starts or extends the member's ack lease: only a
    /// journal message's echoed `sent_at` does.
    DataAck { from: MemberId, end: Position },
    /// A member's real journal now is `journal` (records arrived over the data channel
    /// and are synced). Taken only when the current summary is a prefix of it; it changes
    /// nothing else (in particular not when the primary was last heard from).
    JournalReceived { journal: JournalSummary },
    /// A follower's real journal was cut back to `to`: its JOIN was answered with REWIND
    /// (it held records the primary never had; they were undone). The machine's summary
    /// drops the same records; nothing else changes (the member stays promotable).
    JournalRewound { to: Position },
    /// The arbiter answered.
    Arbiter(ArbiterAnswer),
    /// A member's agent answered.
    Agent(AgentAnswer),
    /// The connection to another member went up or down (the driver's view of TCP).
    Connection { peer: MemberId, up: bool },
    /// The status of every mirrored database this member holds (sent when it changes);
    /// the member is promotable only while all are [`DatabaseStatus::ready`].
    Databases(Vec<DatabaseStatus>),
    /// An operator command.
    Operator(OperatorCommand),
    /// Another member's type is now `kind` (it was demoted to DR or promoted to failover;
    /// the driver learns it from the member's join or from its agent).
    PeerKind { peer: MemberId, kind: MemberKind },
}

/// Member-to-member messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// From the primary, every heartbeat and on every commit: its whole journal summary
    /// (the driver ships the records the receiver lacks), what it has acknowledged to
    /// clients, and whether the receiver is its active backup.
    Journal { epoch: Epoch, journal: JournalSummary, acked: Position, active: bool, sent_at: Millis },
    /// Receipt: the receiver's journal now ends at `end` (its records up to there are the
    /// primary's); `sent_at` echoes the journal message acknowledged.
    JournalAck { epoch: Epoch, end: Position, sent_at: Millis },
    /// "Your epoch is older than mine": the receiver demotes itself if it is primary.
    NewerEpoch { epoch: Epoch },
    /// Planned failover: the primary of `epoch` stopped acknowledging, its journal ends at
    /// `end`, and asks the receiver to take over.
    Handover { epoch: Epoch, end: Position },
}

/// The arbiter's answers (see [`crate::mirror::failover::Arbiter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArbiterAnswer {
    /// Answer to a ping: the arbiter's epoch and mode record, and whether it currently
    /// sees the other failover member.
    Pong {
        incarnation: u64,
        epoch: Epoch,
        primary: Option<MemberId>,
        eligible: Option<MemberId>,
        mode_seq: u64,
        other_connected: bool,
    },
    /// Takeover granted: the requester is primary of `epoch` at the arbiter.
    Granted { epoch: Epoch },
    /// Takeover refused; nothing changed at the arbiter.
    Refused { epoch: Epoch },
    /// The requester's epoch is older than the arbiter's: a failover happened.
    NewerEpoch { epoch: Epoch },
}

/// What an agent says about the instance beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    /// Running and answering; `primary` when it is primary of `epoch`; `active` when it is
    /// a follower that was the active backup of a primary (it may be asking the arbiter
    /// to take over).
    Running { primary: bool, active: bool },
    /// Running but not answering (hung): the agent can force it down.
    Hung,
    /// Not running (crashed, or forced down by this or an earlier request).
    Down,
}

/// An agent's answer about `member`; `epoch` and `journal` are the instance's durable ones
/// (final when the instance is down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAnswer {
    pub member: MemberId,
    pub state: InstanceState,
    pub epoch: Epoch,
    pub journal: JournalSummary,
}

/// Operator commands from the Mirror Monitor or the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorCommand {
    /// On the primary: hand over to the active backup once it has everything.
    PlannedFailover,
    /// This member is never promoted while set.
    SetNoFailover,
    ClearNoFailover,
    /// On a DR async: become a failover member. With a primary it follows, it simply
    /// becomes one (the backup, once caught up); with none, it becomes primary, forcing the
    /// failover members down through their agents first.
    PromoteDr,
    /// On a failover member that is not primary: become a DR async (never promoted).
    DemoteToDr,
}
