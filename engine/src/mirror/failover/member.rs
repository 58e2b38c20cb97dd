//! The state machine of one data member: primary, backup (failover member) or async.
//!
//! [`Member::step`] takes the time and one event and returns the commands to carry out, in
//! order. Nothing here does I/O or reads a clock.

use std::collections::BTreeMap;

use super::commands::{ArbiterRequest, Command, JournalOp, LogLine};
use super::events::{AgentAnswer, ArbiterAnswer, Event, InstanceState, Message, OperatorCommand};
use super::timing::Timing;
use super::types::{
    check_epoch, common_prefix, next_epoch, ArbiterLine, Epoch, FailoverMode, ImplausibleEpoch, JournalSummary,
    MemberId, MemberKind, MemberSpec, MemberStatus, Millis, Position,
};

/// The mirror as every member knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    pub members: Vec<MemberSpec>,
    /// An arbiter is configured (arbiter-controlled mode is possible).
    pub arbiter: bool,
    pub timing: Timing,
}

impl MirrorConfig {
    pub fn kind_of(&self, id: MemberId) -> Option<MemberKind> {
        self.members.iter().find(|m| m.id == id).map(|m| m.kind)
    }

    fn set_kind(&mut self, id: MemberId, kind: MemberKind) {
        if let Some(m) = self.members.iter_mut().find(|m| m.id == id) {
            m.kind = kind;
        }
    }
}

/// What a member keeps across restarts (besides the journal records themselves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Durable {
    /// The highest epoch this member has persisted.
    pub epoch: Epoch,
    pub journal: JournalSummary,
    pub no_failover: bool,
}

#[derive(Debug, Clone, Default)]
struct PeerProgress {
    /// Highest journal end the peer acknowledged in this epoch.
    recv: Position,
    last_ack_at: Option<Millis>,
    /// `sent_at` of the newest journal message the peer acknowledged: the lease start.
    lease_from: Option<Millis>,
    connected: bool,
    /// When its connection last went down (`None` while connected or never seen).
    gone_at: Option<Millis>,
}

/// How long a disconnected async member keeps holding the primary's journal purges back:
/// the reference's 14 days. A failover member holds them back however long it is away.
pub const ASYNC_PURGE_HOLD_MS: Millis = 14 * 24 * 3600 * 1000;

#[derive(Debug, Clone)]
struct Primary {
    /// When this member became primary (members not seen since count as gone since).
    since: Millis,
    open: bool,
    open_at: Millis,
    acked: Position,
    acking: bool,
    peers: BTreeMap<MemberId, PeerProgress>,
    backup: Option<MemberId>,
    trouble_since: Option<Millis>,
    /// Sequence of our declarations to the arbiter of which backup may take over.
    mode_seq: u64,
    /// Highest sequence under which we declared a backup eligible.
    eligible_sent: Option<u64>,
    /// Highest sequence the arbiter confirmed with no eligible backup, and when.
    alone_confirmed: u64,
    alone_confirmed_at: Option<Millis>,
    arbiter_confirmed_eligible: bool,
    /// The arbiter incarnation that confirmed our eligible backup: the only one whose
    /// "go on alone" we trust.
    eligible_incarnation: Option<u64>,
    handover: Option<MemberId>,
}

#[derive(Debug, Clone)]
struct Follower {
    primary: Option<MemberId>,
    last_heard: Millis,
    last_sent_at: Millis,
    connection_lost: bool,
    active: bool,
    primary_acked: Position,
    /// When we last acknowledged an older primary's journal (its lease may still run).
    last_acked_old: Option<Millis>,
    asking_arbiter: Option<Millis>,
    next_try: Millis,
    agent_answers: BTreeMap<MemberId, AgentAnswer>,
    /// Operator-forced promotion of a DR async.
    forced: bool,
    /// Planned failover we started: resend until the new primary shows up.
    /// To whom, in which epoch, up to where, and when (a hand-over not taken within the
    /// trouble timeout is given up: the member then looks for a primary as any other).
    handed_over: Option<(MemberId, Epoch, Position, Millis)>,
}

#[derive(Debug, Clone)]
enum Role {
    Primary(Box<Primary>),
    Follower(Box<Follower>),
}

/// One data member's failover state machine.
#[derive(Debug, Clone)]
pub struct Member {
    id: MemberId,
    kind: MemberKind,
    cfg: MirrorConfig,
    epoch: Epoch,
    journal: JournalSummary,
    no_failover: bool,
    dbs_ready: bool,
    status: MemberStatus,
    role: Role,
    arbiter_answer_at: Option<Millis>,
    arbiter_other: bool,
    arbiter_epoch: Epoch,
    next_heartbeat: Millis,
    /// When this member last stepped: a longer gap than [`Timing::pause_bound`] before the
    /// next step is a pause (see [`Member::notice_pause`]).
    last_step_at: Millis,
    out: Vec<Command>,
}

impl Member {
    /// Starts a member from its durable state. It always starts as a follower and looks for
    /// the primary; a former primary never resumes as primary by itself.
    pub fn start(cfg: MirrorConfig, id: MemberId, durable: Durable, now: Millis) -> Member {
        let kind = cfg.kind_of(id).expect("member is in the mirror configuration");
        Member {
            id,
            kind,
            epoch: durable.epoch,
            journal: durable.journal,
            no_failover: durable.no_failover,
            dbs_ready: false,
            status: MemberStatus::Waiting,
            role: Role::Follower(Box::new(Follower::new(now))),
            arbiter_answer_at: None,
            arbiter_other: false,
            arbiter_epoch: 0,
            next_heartbeat: now,
            last_step_at: now,
            out: Vec::new(),
            cfg,
        }
    }

    /// The first member of a new mirror becomes primary of the first epoch.
    pub fn create_primary(cfg: MirrorConfig, id: MemberId, now: Millis) -> (Member, Vec<Command>) {
        let mut m = Member::start(cfg, id, Durable::default(), now);
        m.dbs_ready = true;
        m.become_primary(now, next_epoch(0, id), now);
        let out = std::mem::take(&mut m.out);
        (m, out)
    }

    pub fn id(&self) -> MemberId {
        self.id
    }

    pub fn kind(&self) -> MemberKind {
        self.kind
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn journal(&self) -> &JournalSummary {
        &self.journal
    }

    pub fn status(&self) -> MemberStatus {
        self.status
    }

    /// Primary (open for writes or not yet).
    pub fn is_primary(&self) -> bool {
        matches!(self.role, Role::Primary(_))
    }

    /// A follower that is (or, having lost its primary, was) the active backup.
    pub fn is_active_backup(&self) -> bool {
        matches!(&self.role, Role::Follower(f) if f.active)
    }

    /// Primary and open for writes.
    pub fn is_open_primary(&self) -> bool {
        matches!(&self.role, Role::Primary(p) if p.open)
    }

    /// The active backup (on the primary) or whether this member is it (elsewhere).
    pub fn active_backup(&self) -> Option<MemberId> {
        match &self.role {
            Role::Primary(p) => p.backup,
            Role::Follower(f) => f.active.then_some(self.id),
        }
    }

    /// On the primary, the lowest journal position another member still needs (0 when
    /// nobody holds purges back, and on every other member: followers keep what their own
    /// databases need). Every member's need is the position after the last one it
    /// acknowledged to this primary (1, everything, until it has); a failover member holds
    /// purges back however long it is away (it must be able to catch up rather than be
    /// rebuilt), an async member until it has been out of touch for
    /// [`ASYNC_PURGE_HOLD_MS`]. A member not seen since this member became primary counts
    /// as gone since then.
    pub fn purge_floor(&self, now: Millis) -> Position {
        let Role::Primary(p) = &self.role else { return 0 };
        self.cfg
            .members
            .iter()
            .filter(|m| m.id != self.id)
            .filter_map(|m| {
                let seen = p.peers.get(&m.id);
                let has = seen.map_or(0, |s| s.recv);
                let connected = seen.is_some_and(|s| s.connected);
                let gone_since = seen.and_then(|s| s.gone_at).unwrap_or(p.since);
                let holds =
                    m.kind == MemberKind::Failover || connected || now.saturating_sub(gone_since) < ASYNC_PURGE_HOLD_MS;
                holds.then_some(has + 1)
            })
            .min()
            .unwrap_or(0)
    }

    pub fn durable(&self) -> Durable {
        Durable { epoch: self.epoch, journal: self.journal.clone(), no_failover: self.no_failover }
    }

    pub fn arbiter_line(&self, now: Millis) -> ArbiterLine {
        match self.arbiter_answer_at {
            Some(t) if now.saturating_sub(t) < self.cfg.timing.qos() => {
                if self.arbiter_other {
                    ArbiterLine::BothConnected
                } else {
                    ArbiterLine::OnlyThisMember
                }
            }
            _ => ArbiterLine::NotConnected,
        }
    }

    pub fn failover_mode(&self) -> FailoverMode {
        match &self.role {
            Role::Primary(p) if p.backup.is_some() && p.arbiter_confirmed_eligible => FailoverMode::ArbiterControlled,
            Role::Follower(f) if f.active && self.arbiter_answer_at.is_some() && self.arbiter_other => {
                FailoverMode::ArbiterControlled
            }
            _ => FailoverMode::AgentControlled,
        }
    }

    /// Feeds one event at `now` (milliseconds on this member's monotonic clock) and returns
    /// the commands to execute, in order.
    pub fn step(&mut self, now: Millis, event: Event) -> Vec<Command> {
        self.notice_pause(now);
        if let Err(bad) = self.check_epochs(&event) {
            // Refused whole: nothing of the event is believed, nothing is persisted.
            self.out.push(Command::Log(LogLine::ImplausibleEpoch { epoch: bad.epoch, known: bad.known }));
            self.on_tick(now);
            return std::mem::take(&mut self.out);
        }
        match event {
            Event::Tick => {}
            Event::Message { from, msg } => self.on_message(now, from, msg),
            Event::JournalAppended { upto } => self.on_appended(now, upto),
            Event::DataAck { from, end } => self.on_peer_ack(now, from, end, None),
            Event::JournalReceived { journal } => {
                if !self.is_primary() && common_prefix(&self.journal, &journal) == self.journal.end() {
                    self.journal = journal;
                }
            }
            Event::JournalRewound { to } => {
                // Only a follower joins a primary: a rewind under a primary's feet would
                // drop records it may have acknowledged.
                assert!(!self.is_primary(), "{}: the journal of a primary was rewound to {to}", self.id);
                self.journal.truncate(to);
            }
            Event::Arbiter(answer) => self.on_arbiter(now, answer),
            Event::Agent(answer) => self.on_agent(now, answer),
            Event::Connection { peer, up } => self.on_connection(now, peer, up),
            Event::Databases(statuses) => self.dbs_ready = statuses.iter().all(|s| s.ready()),
            Event::Operator(cmd) => self.on_operator(now, cmd),
            Event::PeerKind { peer, kind } => self.on_peer_kind(now, peer, kind),
        }
        self.on_tick(now);
        std::mem::take(&mut self.out)
    }

    /// The highest epoch this member knows: its durable one, its journal's, the arbiter's.
    fn known_epoch(&self) -> Epoch {
        self.epoch.max(self.journal.last_epoch()).max(self.arbiter_epoch)
    }

    /// Every epoch an event carries from outside (a peer, the arbiter, an agent, the data
    /// channel) must be plausible (see [`check_epoch`]): one implausible epoch refuses the
    /// whole event.
    fn check_epochs(&self, event: &Event) -> Result<(), ImplausibleEpoch> {
        let known = self.known_epoch();
        let summary = |j: &JournalSummary| j.segments().iter().try_for_each(|&(e, _)| check_epoch(e, known));
        match event {
            Event::Message { msg, .. } => match msg {
                Message::Journal { epoch, journal, .. } => {
                    check_epoch(*epoch, known)?;
                    summary(journal)
                }
                Message::JournalAck { epoch, .. } | Message::NewerEpoch { epoch } | Message::Handover { epoch, .. } => {
                    check_epoch(*epoch, known)
                }
            },
            Event::JournalReceived { journal } => summary(journal),
            Event::Arbiter(answer) => match answer {
                ArbiterAnswer::Pong { epoch, .. }
                | ArbiterAnswer::Granted { epoch }
                | ArbiterAnswer::Refused { epoch }
                | ArbiterAnswer::NewerEpoch { epoch } => check_epoch(*epoch, known),
            },
            Event::Agent(answer) => {
                check_epoch(answer.epoch, known)?;
                summary(&answer.journal)
            }
            Event::Tick
            | Event::JournalAppended { .. }
            | Event::DataAck { .. }
            | Event::JournalRewound { .. }
            | Event::Connection { .. }
            | Event::Databases(_)
            | Event::Operator(_)
            | Event::PeerKind { .. } => Ok(()),
        }
    }

    fn set_status(&mut self, to: MemberStatus) {
        if self.status != to {
            self.out.push(Command::StatusChanged { from: self.status, to });
            self.status = to;
        }
    }

    fn persist_epoch(&mut self, epoch: Epoch) {
        if epoch > self.epoch {
            self.out.push(Command::PersistEpoch(epoch));
            self.epoch = epoch;
        }
    }

    fn promotable(&self) -> bool {
        self.kind == MemberKind::Failover && !self.no_failover && self.dbs_ready
    }

    fn other_failover_members(&self) -> Vec<MemberId> {
        self.cfg.members.iter().filter(|m| m.kind == MemberKind::Failover && m.id != self.id).map(|m| m.id).collect()
    }

    /// The members whose agents must answer before a takeover through the agents: the
    /// other failover members. A lone failover member (its partner was demoted to DR)
    /// asks every other member instead: one promoted while it was down may be primary
    /// now, and an async's agent says so (its type comes with the answer).
    fn takeover_peers(&self) -> Vec<MemberId> {
        let failover = self.other_failover_members();
        if !failover.is_empty() {
            return failover;
        }
        self.cfg.members.iter().map(|m| m.id).filter(|&m| m != self.id).collect()
    }

    // ---- becoming and leaving primary ----

    fn become_primary(&mut self, now: Millis, epoch: Epoch, open_at: Millis) {
        assert!(epoch > self.epoch, "a takeover always makes a newer epoch");
        self.persist_epoch(epoch);
        self.out.push(Command::BecomePrimary { epoch });
        self.set_status(MemberStatus::Transition);
        self.role = Role::Primary(Box::new(Primary {
            since: now,
            open: false,
            open_at,
            acked: 0,
            acking: false,
            peers: BTreeMap::new(),
            backup: None,
            trouble_since: None,
            mode_seq: 0,
            eligible_sent: None,
            alone_confirmed: 0,
            alone_confirmed_at: None,
            arbiter_confirmed_eligible: false,
            eligible_incarnation: None,
            handover: None,
        }));
        self.next_heartbeat = now;
    }

    fn demote(&mut self, now: Millis, epoch: Epoch) {
        self.persist_epoch(epoch);
        if matches!(self.role, Role::Primary(_)) {
            self.out.push(Command::Log(LogLine::FailoverHappened { epoch }));
            self.out.push(Command::DemoteToBackup { epoch: self.epoch });
            self.role = Role::Follower(Box::new(Follower::new(now)));
            self.set_status(MemberStatus::Waiting);
        }
    }

    // ---- events ----

    fn on_message(&mut self, now: Millis, from: MemberId, msg: Message) {
        let msg_epoch = match &msg {
            Message::Journal { epoch, .. }
            | Message::JournalAck { epoch, .. }
            | Message::NewerEpoch { epoch }
            | Message::Handover { epoch, .. } => *epoch,
        };
        if msg_epoch > self.epoch && matches!(self.role, Role::Primary(_)) {
            self.demote(now, msg_epoch);
        }
        if matches!(self.role, Role::Primary(_)) {
            self.primary_message(now, from, msg);
        } else {
            self.follower_message(now, from, msg);
        }
    }

    fn primary_message(&mut self, now: Millis, from: MemberId, msg: Message) {
        let epoch = self.epoch;
        match msg {
            Message::Journal { epoch: e, .. } | Message::Handover { epoch: e, .. } if e < epoch => {
                self.out.push(Command::Send { to: from, msg: Message::NewerEpoch { epoch } });
            }
            Message::JournalAck { epoch: e, end, sent_at } if e == epoch => {
                self.on_peer_ack(now, from, end, Some(sent_at))
            }
            _ => {}
        }
    }

    /// A member acknowledged the journal up to `end` in this epoch; `lease_start` is the
    /// `sent_at` of the journal message it echoed (`None` for a data acknowledgement,
    /// which confirms records but never starts or extends the ack lease).
    fn on_peer_ack(&mut self, now: Millis, from: MemberId, end: Position, lease_start: Option<Millis>) {
        let end_now = self.journal.end();
        let failover_peer = self.cfg.kind_of(from) == Some(MemberKind::Failover);
        let arbiter = self.cfg.arbiter;
        let Role::Primary(p) = &mut self.role else { return };
        let peer = p.peers.entry(from).or_default();
        peer.recv = peer.recv.max(end);
        peer.last_ack_at = Some(now);
        if let Some(sent_at) = lease_start {
            peer.lease_from = Some(peer.lease_from.map_or(sent_at, |l| l.max(sent_at)));
        }
        if p.backup.is_none() && failover_peer && end >= end_now && p.handover.is_none() {
            p.backup = Some(from);
            p.trouble_since = None;
            p.mode_seq += 1;
            // Declared to the arbiter, when there is one: from then on only the arbiter can
            // say whether this backup took over. Without one (agent-controlled mode) the
            // backup takes over only once our agent says we are down, so losing it we may
            // go on alone after the trouble timeout, as the reference does.
            p.eligible_sent = arbiter.then_some(p.mode_seq);
            p.arbiter_confirmed_eligible = false;
            self.out.push(Command::Log(LogLine::BackupActive { backup: from }));
            self.ping_arbiter();
            if self.status == MemberStatus::InTrouble {
                self.set_status(MemberStatus::Primary);
            }
        } else if p.backup != Some(from) && failover_peer && end < end_now {
            // Catching up: send the rest now rather than at the next heartbeat.
            let msg = self.journal_message(now, from);
            self.out.push(Command::Send { to: from, msg });
        }
    }

    fn follower_message(&mut self, now: Millis, from: MemberId, msg: Message) {
        match msg {
            Message::Journal { epoch, journal, acked, active, sent_at } => {
                if epoch < self.epoch {
                    self.out.push(Command::Send { to: from, msg: Message::NewerEpoch { epoch: self.epoch } });
                    return;
                }
                let newer = epoch > self.epoch;
                {
                    let f = self.follower();
                    if !newer && f.asking_arbiter.is_some() {
                        // Not a word to the old primary while the arbiter decides: its lease
                        // must be able to run out.
                        return;
                    }
                }
                self.persist_epoch(epoch);
                let kind = self.kind;
                let f = self.follower_mut();
                if newer || f.primary != Some(from) {
                    f.primary = Some(from);
                    f.last_sent_at = 0;
                    f.active = false;
                    f.primary_acked = 0;
                    f.asking_arbiter = None;
                    f.handed_over = None;
                } else if sent_at <= f.last_sent_at {
                    return;
                }
                f.last_sent_at = sent_at;
                f.last_heard = now;
                f.connection_lost = false;
                f.active = active && kind == MemberKind::Failover;
                f.primary_acked = f.primary_acked.max(acked);
                f.agent_answers.clear();
                f.forced = false;
                self.reconcile(from, epoch, &journal);
                let end = self.journal.end();
                self.out.push(Command::Send { to: from, msg: Message::JournalAck { epoch, end, sent_at } });
                let f = self.follower_mut();
                f.last_acked_old = Some(now);
                let active = f.active;
                let status = match (kind, active) {
                    (MemberKind::Failover, true) => MemberStatus::Backup,
                    (MemberKind::Failover, false) => MemberStatus::Synchronizing,
                    _ if end >= journal.end() => MemberStatus::Connected,
                    _ => MemberStatus::Synchronizing,
                };
                self.set_status(status);
            }
            Message::NewerEpoch { epoch } => self.persist_epoch(epoch),
            Message::Handover { epoch, end } => {
                let f = self.follower();
                if epoch == self.epoch && f.primary == Some(from) && self.promotable() && self.journal.end() >= end {
                    let e = next_epoch(self.epoch.max(self.arbiter_epoch), self.id);
                    self.become_primary(now, e, now);
                }
            }
            Message::JournalAck { .. } => {}
        }
    }

    /// Makes the local journal the primary's: drop a diverged tail, copy what is missing.
    fn reconcile(&mut self, from: MemberId, epoch: Epoch, theirs: &JournalSummary) {
        let common = common_prefix(&self.journal, theirs);
        let mine_end = self.journal.end();
        if mine_end > common {
            let keep = if common < theirs.end() {
                common
            } else if self.journal.epoch_at(common + 1) == Some(epoch) {
                mine_end // records of this epoch from a newer message: ours to keep
            } else {
                common
            };
            if keep < mine_end {
                self.out.push(Command::Log(LogLine::InconsistentWithMirror { rewound_to: keep }));
                self.out.push(Command::Journal(JournalOp::Truncate { to: keep }));
                self.journal.truncate(keep);
            }
        }
        if theirs.end() > self.journal.end() && common_prefix(&self.journal, theirs) == self.journal.end() {
            self.journal.extend_from(theirs);
            self.out.push(Command::Journal(JournalOp::Receive {
                source: from,
                from_agent: false,
                target: theirs.clone(),
            }));
        }
    }

    fn on_appended(&mut self, now: Millis, upto: Position) {
        if !matches!(self.role, Role::Primary(_)) || upto <= self.journal.end() {
            return;
        }
        let epoch = self.epoch;
        for pos in self.journal.end() + 1..=upto {
            self.journal.push(epoch, pos);
        }
        // To the active backup, or to every failover member catching up to become it.
        let targets = match &self.role {
            Role::Primary(p) => p.backup.map_or_else(|| self.other_failover_members(), |b| vec![b]),
            Role::Follower(_) => Vec::new(),
        };
        for to in targets {
            let msg = self.journal_message(now, to);
            self.out.push(Command::Send { to, msg });
        }
    }

    fn on_arbiter(&mut self, now: Millis, answer: ArbiterAnswer) {
        match answer {
            ArbiterAnswer::Pong { incarnation, epoch, primary, eligible, mode_seq, other_connected } => {
                self.arbiter_answer_at = Some(now);
                self.arbiter_other = other_connected;
                self.arbiter_epoch = self.arbiter_epoch.max(epoch);
                if epoch > self.epoch && matches!(self.role, Role::Primary(_)) {
                    self.demote(now, epoch);
                    return;
                }
                let me = self.id;
                if let Role::Primary(p) = &mut self.role {
                    if epoch == self.epoch && primary == Some(me) && mode_seq == p.mode_seq {
                        p.arbiter_confirmed_eligible = eligible.is_some();
                        if eligible.is_some() {
                            p.eligible_incarnation = Some(incarnation);
                        } else if p.eligible_sent.is_none() || p.eligible_incarnation == Some(incarnation) {
                            p.alone_confirmed = mode_seq;
                            p.alone_confirmed_at = Some(now);
                        }
                    }
                }
            }
            ArbiterAnswer::NewerEpoch { epoch } => {
                self.arbiter_answer_at = Some(now);
                self.arbiter_epoch = self.arbiter_epoch.max(epoch);
                if matches!(self.role, Role::Primary(_)) {
                    self.demote(now, epoch);
                } else {
                    self.follower_mut().asking_arbiter = None;
                }
            }
            ArbiterAnswer::Refused { epoch } => {
                self.arbiter_answer_at = Some(now);
                self.arbiter_epoch = self.arbiter_epoch.max(epoch);
                if let Role::Follower(f) = &mut self.role {
                    f.asking_arbiter = None;
                }
            }
            ArbiterAnswer::Granted { epoch } => {
                self.arbiter_answer_at = Some(now);
                let guard = self.cfg.timing.lease_guard();
                let Role::Follower(f) = &self.role else { return };
                let caught_up = self.journal.end() >= f.primary_acked;
                if f.asking_arbiter.is_some() && epoch > self.epoch && self.promotable() && caught_up {
                    let open_at = f.last_acked_old.map_or(now, |t| t + guard);
                    self.out.push(Command::Log(LogLine::TakeoverByArbiter { epoch }));
                    self.become_primary(now, epoch, open_at);
                }
            }
        }
    }

    fn on_agent(&mut self, now: Millis, answer: AgentAnswer) {
        let better_than_peer = (self.journal.rank(), std::cmp::Reverse(self.id))
            > (answer.journal.rank(), std::cmp::Reverse(answer.member));
        let of_async = self.cfg.kind_of(answer.member) != Some(MemberKind::Failover);
        let Role::Follower(f) = &mut self.role else { return };
        if !f.lost(now, self.cfg.timing.qos()) && !f.forced {
            return;
        }
        let forced = f.forced;
        match answer.state {
            InstanceState::Running { primary: true, .. } if !forced => {}
            // An async member (asked only by a lone failover member) never becomes
            // primary by itself: a promoted one is a failover member again, and its agent
            // says so before this answer is stepped. Running as a follower, hung or down,
            // it is out of the way; its journal still counts as the others' do.
            InstanceState::Running { primary: false, .. } | InstanceState::Hung | InstanceState::Down if of_async => {
                f.agent_answers.insert(answer.member, answer);
                self.try_agent_takeover(now);
            }
            InstanceState::Running { primary: false, .. } if !forced && !better_than_peer => {}
            // A running follower that is nobody's active backup and whose journal is not
            // ahead of ours cannot become primary by itself (the only primary it could
            // follow is this member): it is out of the way without being forced down, as
            // when a whole mirror restarts.
            InstanceState::Running { primary: false, active: false } if !forced => {
                f.agent_answers.insert(answer.member, answer);
                self.try_agent_takeover(now);
            }
            InstanceState::Running { .. } | InstanceState::Hung => {
                self.out.push(Command::AskAgent { member: answer.member, fence: true });
            }
            InstanceState::Down => {
                f.agent_answers.insert(answer.member, answer);
                self.try_agent_takeover(now);
            }
        }
    }

    /// Every other failover member is down (crashed or forced down): take the most complete
    /// journal among ours and theirs, then take over.
    fn try_agent_takeover(&mut self, now: Millis) {
        if !self.promotable() {
            return;
        }
        let peers = self.takeover_peers();
        let Role::Follower(f) = &self.role else { return };
        if !peers.iter().all(|p| f.agent_answers.contains_key(p)) {
            return;
        }
        let answers: Vec<AgentAnswer> = peers.iter().map(|p| f.agent_answers[p].clone()).collect();
        let mut epoch_floor = self.epoch.max(self.arbiter_epoch);
        let mut best: Option<&AgentAnswer> = None;
        for a in &answers {
            epoch_floor = epoch_floor.max(a.epoch);
            if a.journal.rank() > best.map_or(self.journal.rank(), |b| b.journal.rank()) {
                best = Some(a);
            }
        }
        if let Some(b) = best {
            let common = common_prefix(&self.journal, &b.journal);
            if common < self.journal.end() {
                self.out.push(Command::Log(LogLine::InconsistentWithMirror { rewound_to: common }));
                self.out.push(Command::Journal(JournalOp::Truncate { to: common }));
            }
            self.journal.adopt(&b.journal);
            self.out.push(Command::Journal(JournalOp::Receive {
                source: b.member,
                from_agent: true,
                target: b.journal.clone(),
            }));
        }
        let epoch = next_epoch(epoch_floor, self.id);
        let peer = answers[0].member;
        self.out.push(Command::Log(LogLine::TakeoverByAgent { epoch, peer }));
        // Every failover member is down: no lease of theirs can still be running.
        self.become_primary(now, epoch, now);
    }

    fn on_connection(&mut self, now: Millis, peer: MemberId, up: bool) {
        if let Role::Primary(p) = &mut self.role {
            let progress = p.peers.entry(peer).or_default();
            progress.connected = up;
            progress.gone_at = if up { None } else { Some(now) };
        }
        if up {
            return;
        }
        match &mut self.role {
            Role::Primary(p) => {
                if p.backup == Some(peer) {
                    self.revoke_backup(now);
                }
            }
            Role::Follower(f) => {
                if f.primary == Some(peer) {
                    f.connection_lost = true;
                    f.next_try = now;
                }
            }
        }
    }

    fn on_operator(&mut self, now: Millis, cmd: OperatorCommand) {
        match cmd {
            OperatorCommand::SetNoFailover => self.no_failover = true,
            OperatorCommand::ClearNoFailover => self.no_failover = false,
            OperatorCommand::PlannedFailover => {
                if let Role::Primary(p) = &mut self.role {
                    if let Some(b) = p.backup {
                        p.handover = Some(b);
                    }
                }
            }
            OperatorCommand::PromoteDr => {
                if self.kind == MemberKind::DrAsync {
                    let id = self.id;
                    self.kind = MemberKind::Failover;
                    self.cfg.set_kind(id, MemberKind::Failover);
                    self.out.push(Command::KindChanged(MemberKind::Failover));
                    let qos = self.cfg.timing.qos();
                    if let Role::Follower(f) = &mut self.role {
                        // With a live primary it becomes a failover member like any
                        // other; without one, it takes over (the operator's call).
                        if f.primary.is_none() || f.lost(now, qos) {
                            self.dbs_ready = true;
                            f.forced = true;
                            f.next_try = now;
                        }
                    }
                }
            }
            OperatorCommand::DemoteToDr => {
                if self.kind == MemberKind::Failover && matches!(self.role, Role::Follower(_)) {
                    let id = self.id;
                    self.kind = MemberKind::DrAsync;
                    self.cfg.set_kind(id, MemberKind::DrAsync);
                    self.out.push(Command::KindChanged(MemberKind::DrAsync));
                    let f = self.follower_mut();
                    f.active = false;
                    f.asking_arbiter = None;
                    f.forced = false;
                    if self.status == MemberStatus::Backup {
                        self.set_status(MemberStatus::Connected);
                    }
                }
            }
        }
    }

    /// Another member changed type. A primary whose backup stops being a failover member
    /// revokes it as it would a lost one (trouble, then on alone once the arbiter agrees).
    fn on_peer_kind(&mut self, now: Millis, peer: MemberId, kind: MemberKind) {
        if peer == self.id || self.cfg.kind_of(peer) == Some(kind) {
            return;
        }
        self.cfg.set_kind(peer, kind);
        match &mut self.role {
            Role::Primary(p) if p.backup == Some(peer) && kind != MemberKind::Failover => self.revoke_backup(now),
            Role::Primary(_) => {}
            Role::Follower(f) => {
                f.agent_answers.remove(&peer);
            }
        }
    }

    // ---- time ----

    fn on_tick(&mut self, now: Millis) {
        let heartbeat = now >= self.next_heartbeat;
        if heartbeat {
            self.next_heartbeat = now + self.cfg.timing.heartbeat();
        }
        if matches!(self.role, Role::Primary(_)) {
            self.primary_tick(now, heartbeat);
        } else {
            self.follower_tick(now, heartbeat);
        }
    }

    fn journal_message(&self, now: Millis, to: MemberId) -> Message {
        let (acked, active) = match &self.role {
            Role::Primary(p) => (p.acked, p.backup == Some(to)),
            Role::Follower(_) => (0, false),
        };
        Message::Journal { epoch: self.epoch, journal: self.journal.clone(), acked, active, sent_at: now }
    }

    fn ping_arbiter(&mut self) {
        if !self.cfg.arbiter {
            return;
        }
        let req = match &self.role {
            Role::Primary(p) => {
                ArbiterRequest::Ping { epoch: self.epoch, primary: true, eligible: p.backup, mode_seq: p.mode_seq }
            }
            Role::Follower(_) => {
                ArbiterRequest::Ping { epoch: self.epoch, primary: false, eligible: None, mode_seq: 0 }
            }
        };
        self.out.push(Command::AskArbiter(req));
    }

    fn revoke_backup(&mut self, now: Millis) {
        let Role::Primary(p) = &mut self.role else { return };
        let Some(b) = p.backup.take() else { return };
        self.out.push(Command::Log(LogLine::BackupRevoked { backup: b }));
        self.enter_trouble(now);
    }

    /// The primary stops acknowledging and tells the arbiter it has no eligible backup (a
    /// new declaration, `mode_seq`): it goes on alone once the arbiter confirms that
    /// declaration, or after the trouble timeout when it may (see `primary_tick`).
    fn enter_trouble(&mut self, now: Millis) {
        let Role::Primary(p) = &mut self.role else { return };
        p.trouble_since = Some(now);
        p.mode_seq += 1;
        p.arbiter_confirmed_eligible = false;
        self.set_status(MemberStatus::InTrouble);
        self.ping_arbiter();
    }

    /// Every decision a primary makes on its own clock (going on alone after the trouble
    /// timeout, acknowledging alone for `ack_lease` from now) assumes it watched that time
    /// pass. A gap between two steps longer than [`Timing::pause_bound`] means it did not
    /// (SIGSTOP, a VM pause, a stalled disk): whatever it knew before the gap proves
    /// nothing now, since the backup may have taken over meanwhile. So the trouble timer
    /// restarts (only a confirmation received after the gap, or a whole trouble timeout of
    /// steps from now, lets it go on alone), and a primary that was acknowledging alone
    /// enters trouble until it has fresh word. A primary with an active backup needs
    /// nothing more: its lease counts from the `sent_at` its backup echoed, which a pause
    /// never renews. A follower's timers only make it *ask* (the arbiter, the agents),
    /// and the answer is the fresh evidence, so followers keep theirs.
    fn notice_pause(&mut self, now: Millis) {
        let gap = now.saturating_sub(self.last_step_at);
        self.last_step_at = self.last_step_at.max(now);
        if gap <= self.cfg.timing.pause_bound() {
            return;
        }
        let Role::Primary(p) = &mut self.role else { return };
        self.out.push(Command::Log(LogLine::Paused { gap }));
        if p.trouble_since.is_some() {
            p.trouble_since = Some(now);
        } else if p.open && p.backup.is_none() && p.handover.is_none() {
            self.enter_trouble(now);
        }
    }

    fn primary_tick(&mut self, now: Millis, heartbeat: bool) {
        let t = self.cfg.timing;
        let epoch = self.epoch;
        if heartbeat {
            let others: Vec<MemberId> = self.cfg.members.iter().map(|m| m.id).filter(|&m| m != self.id).collect();
            for m in others {
                let msg = self.journal_message(now, m);
                self.out.push(Command::Send { to: m, msg });
            }
            self.ping_arbiter();
        }
        let Role::Primary(p) = &mut self.role else { unreachable!() };
        if !p.open && now >= p.open_at {
            p.open = true;
            p.acking = true;
            self.out.push(Command::OpenForWrites { epoch });
            self.set_status(MemberStatus::Primary);
        }
        let Role::Primary(p) = &mut self.role else { unreachable!() };
        if let Some(b) = p.backup {
            let last = p.peers.get(&b).and_then(|x| x.last_ack_at).unwrap_or(0);
            if now.saturating_sub(last) >= t.qos() {
                self.revoke_backup(now);
            }
        }
        let Role::Primary(p) = &mut self.role else { unreachable!() };
        let may_go_alone = p.eligible_sent.is_none_or(|s| p.alone_confirmed > s);
        if let Some(since) = p.trouble_since {
            let confirmed = p.alone_confirmed_at.is_some_and(|at| at >= since);
            if may_go_alone && (confirmed || now.saturating_sub(since) >= t.trouble_timeout()) {
                p.trouble_since = None;
                self.out.push(Command::Log(LogLine::ContinuingAlone));
                self.set_status(MemberStatus::Primary);
            }
        }
        // Planned failover: once the backup has everything, hand over and step down.
        let Role::Primary(p) = &mut self.role else { unreachable!() };
        if let Some(b) = p.handover {
            let end = self.journal.end();
            if p.peers.get(&b).is_some_and(|x| x.recv >= end) {
                self.out.push(Command::Send { to: b, msg: Message::Handover { epoch, end } });
                self.out.push(Command::DemoteToBackup { epoch });
                let mut f = Follower::new(now);
                f.handed_over = Some((b, epoch, end, now));
                self.role = Role::Follower(Box::new(f));
                self.set_status(MemberStatus::Waiting);
                return;
            }
        }
        self.pump_acks(now);
    }

    /// Whether this member, primary, may acknowledge commits at `now`: up to which
    /// position, and until when (`send_before`). With an active backup, up to what it
    /// received and while its lease holds; alone, everything, for `ack_lease` from `now`.
    fn ack_window(&self, now: Millis) -> (bool, Position, Millis) {
        let t = self.cfg.timing;
        let end = self.journal.end();
        let Role::Primary(p) = &self.role else { return (false, 0, 0) };
        let may_go_alone = p.eligible_sent.is_none_or(|s| p.alone_confirmed > s);
        if !p.open || p.handover.is_some() || p.trouble_since.is_some() {
            (false, 0, 0)
        } else if let Some(b) = p.backup {
            let peer = p.peers.get(&b).cloned().unwrap_or_default();
            let until = peer.lease_from.map_or(0, |l| l + t.ack_lease());
            #[cfg(test)]
            if super::mutation::active(super::mutation::Mutation::SkipBackupAck) {
                return (now < until, end, until);
            }
            (now < until, peer.recv.min(end), until)
        } else {
            (may_go_alone, end, now + t.ack_lease())
        }
    }

    /// The time (this member's clock) until which it may go on acknowledging commits as
    /// of `now`, if it is an open primary that acknowledges: the end of its backup's ack
    /// lease, or `ack_lease` from `now` when alone. Past it, the member must not present
    /// itself as the primary (a health check answered late, after a pause, would
    /// otherwise name a primary that may have been superseded).
    pub fn acking_until(&self, now: Millis) -> Option<Millis> {
        let (can, _, until) = self.ack_window(now);
        can.then_some(until)
    }

    fn pump_acks(&mut self, now: Millis) {
        let (can, upto, send_before) = self.ack_window(now);
        let Role::Primary(p) = &mut self.role else { return };
        if can != p.acking {
            p.acking = can;
            self.out.push(if can { Command::StartAcking } else { Command::StopAcking });
        }
        let Role::Primary(p) = &mut self.role else { return };
        if can && upto > p.acked {
            p.acked = upto;
            self.out.push(Command::AckCommits { upto, send_before });
        }
    }

    fn follower_tick(&mut self, now: Millis, heartbeat: bool) {
        let t = self.cfg.timing;
        if heartbeat {
            self.ping_arbiter();
            if let Some((to, epoch, end, _)) = self.follower().handed_over {
                self.out.push(Command::Send { to, msg: Message::Handover { epoch, end } });
            }
        }
        // A hand-over the backup does not take (it was marked no-failover, or lost its
        // databases, after the primary chose it) is given up after the trouble timeout;
        // without it every member would wait for another forever.
        if let Some((to, _, _, at)) = self.follower().handed_over {
            if now.saturating_sub(at) >= t.trouble_timeout() {
                self.follower_mut().handed_over = None;
                self.out.push(Command::Log(LogLine::HandoverNotTaken { backup: to }));
            }
        }
        let promotable = self.promotable();
        let arbiter = self.cfg.arbiter;
        let epoch = self.epoch;
        let peers = self.takeover_peers();
        let f = self.follower_mut();
        if let Some(asked) = f.asking_arbiter {
            if now.saturating_sub(asked) >= t.qos() {
                f.asking_arbiter = None;
            }
        }
        let lost = f.lost(now, t.qos()) || f.forced;
        if f.primary.is_some() && lost && now.saturating_sub(f.last_heard) >= t.qos() {
            f.primary = None;
        }
        if !lost || !promotable || now < f.next_try || f.handed_over.is_some() {
            if f.primary.is_none() && !matches!(self.status, MemberStatus::Waiting) {
                self.set_status(MemberStatus::Waiting);
            }
            return;
        }
        f.next_try = now + t.retry();
        let mut cmds = Vec::new();
        if f.active && arbiter && !f.forced {
            f.asking_arbiter = Some(now);
            cmds.push(Command::AskArbiter(ArbiterRequest::Takeover { epoch }));
        }
        for p in peers {
            cmds.push(Command::AskAgent { member: p, fence: false });
        }
        self.out.extend(cmds);
        if self.follower().primary.is_none() {
            self.set_status(MemberStatus::Waiting);
        }
    }

    fn follower(&self) -> &Follower {
        match &self.role {
            Role::Follower(f) => f,
            Role::Primary(_) => panic!("not a follower"),
        }
    }

    fn follower_mut(&mut self) -> &mut Follower {
        match &mut self.role {
            Role::Follower(f) => f,
            Role::Primary(_) => panic!("not a follower"),
        }
    }
}

impl Follower {
    fn new(now: Millis) -> Follower {
        Follower {
            primary: None,
            last_heard: now,
            last_sent_at: 0,
            connection_lost: false,
            active: false,
            primary_acked: 0,
            last_acked_old: None,
            asking_arbiter: None,
            next_try: now,
            agent_answers: BTreeMap::new(),
            forced: false,
            handed_over: None,
        }
    }

    fn lost(&self, now: Millis, qos: Millis) -> bool {
        self.connection_lost || now.saturating_sub(self.last_heard) >= qos
    }
}
