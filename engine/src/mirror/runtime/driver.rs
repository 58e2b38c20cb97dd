//! The loop that runs the failover state machine ([`crate::mirror::failover::Member`])
//! for a real engine: it turns sockets, timers and the journal into events, and carries
//! out the commands in order (docs/design/failover.md, "The driver").
//!
//! Invariants: the machine is stepped from this one task only; commands of one step run
//! to completion, in order, before the next event (a persisted epoch is on disk before
//! anything that carries it); commits are confirmed to clients only through
//! `AckCommits` whose lease has not run out.

use super::net::{self, NetShared};
use super::peers::{self, ArbiterClient};
use super::state;
use super::store::WriteMode;
use crate::agent::status::MirrorRole;
use crate::journal::Position;
use crate::mirror::config::{MemberType, MirrorConfig as Config};
use crate::mirror::failover::{
    AgentAnswer, ArbiterAnswer, ArbiterRequest, Command, DatabaseStatus, Durable, Event, JournalOp, Member, MemberId,
    MemberKind, MemberSpec, MemberStatus, Message as Control, MirrorConfig, OperatorCommand, Timing,
};
use crate::mirror::shipping::follower::FromPrimary;
use crate::mirror::shipping::sender::FromMember;
use crate::mirror::shipping::wire::Message;
use crate::mirror::stages::Marks;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often the machine is ticked (timers resolve to this).
const TICK: Duration = Duration::from_millis(20);

pub enum Input {
    // On the primary, from member connections.
    Link(MemberId, mpsc::Sender<Control>),
    FromMember(MemberId, FromMember),
    LinkClosed(MemberId, String),
    // On other members, from the connection to the primary.
    Upstream(MemberId, mpsc::Sender<Message>),
    FromPrimary(MemberId, FromPrimary),
    UpstreamClosed(MemberId, String),
    /// The journal was rewound to this position to rejoin.
    Rewound(Position),
    /// This member cannot rejoin without being rebuilt; the reason says how.
    Inconsistent(String),
    Arbiter(ArbiterAnswer),
    /// A member's agent answered, with the member's type when its state file says.
    Agent(AgentAnswer, Option<MemberType>),
    /// A member's agent did not answer.
    AgentSilent(MemberId),
    Operator(OperatorCommand),
    /// The fault switch: behave as a broken invariant does (panic).
    FaultPanic,
}

/// What other members look like from here, for the status.
#[derive(Debug, Clone, Default)]
pub struct PeerView {
    pub connected: bool,
    pub position: Position,
    pub since: Option<String>,
    pub caught_up_at: Option<Instant>,
    /// When a message from this member last arrived over the data channel (the Mirror
    /// Monitor's "last heard from").
    pub heard_at: Option<Instant>,
}

/// The driver's published view, read by the status.
#[derive(Debug, Clone, Default)]
pub struct Published {
    pub status: MemberStatus,
    pub epoch: u64,
    pub primary: Option<MemberId>,
    pub failover_mode: String,
    pub arbiter: String,
    pub no_failover: bool,
    pub acked: Position,
    pub peers: BTreeMap<MemberId, PeerView>,
    pub active_backup: Option<MemberId>,
    pub problem: Option<String>,
    /// Members whose type changed since the configuration was written (demoted to DR,
    /// promoted to failover), as this member last learned.
    pub types: BTreeMap<MemberId, MemberType>,
    /// This member is the primary and takes writes (after its takeover steps).
    pub open_for_writes: bool,
    /// Until when this member, an open primary, may acknowledge commits (its backup's
    /// ack lease, or `ack_lease` past the last step when alone); `None` when it may not.
    /// The health check compares it with the clock when it answers.
    pub acking_until: Option<Instant>,
}

pub struct Driver {
    pub cfg: Config,
    pub me: MemberId,
    pub machine: Member,
    pub net: Arc<NetShared>,
    pub published: Arc<parking_lot::Mutex<Published>>,
    clock: Instant,
    links: BTreeMap<MemberId, mpsc::Sender<Control>>,
    upstream: Option<(MemberId, mpsc::Sender<Message>)>,
    connector: Option<tokio::task::JoinHandle<()>>,
    arbiter: Option<mpsc::Sender<ArbiterRequest>>,
    asking_agents: BTreeSet<MemberId>,
    acked: Position,
    /// Data acknowledgements received and the commits they cover not yet confirmed
    /// (the `confirm` stage of mirror::stages).
    confirming: Marks,
    /// The mirrored databases' statuses the machine was last told.
    databases: Option<Vec<DatabaseStatus>>,
}

/// The failover core's view of a mirror configuration.
pub fn machine_config(cfg: &Config) -> MirrorConfig {
    let members = cfg
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| MemberSpec { id: MemberId(i as u8), kind: kind_of_type(m.member_type) })
        .collect();
    MirrorConfig { members, arbiter: cfg.arbiter.is_some(), timing: Timing::with_qos(cfg.qos_ms) }
}

/// The failover core's kind of member for a configured type.
pub fn kind_of_type(t: MemberType) -> MemberKind {
    match t {
        MemberType::Failover => MemberKind::Failover,
        MemberType::Dr => MemberKind::DrAsync,
        MemberType::ReportingRo | MemberType::ReportingRw => MemberKind::ReportingAsync,
    }
}

impl Driver {
    /// A driver for this member; `create` makes it the first primary of a new mirror.
    /// Returns the commands the machine already asked for (a created primary's).
    pub fn new(cfg: Config, me: MemberId, net: Arc<NetShared>, create: bool) -> (Driver, Vec<Command>) {
        let mcfg = machine_config(&cfg);
        let durable = {
            let s = net.state.lock();
            let last = net.store.mirror_journal().last_position();
            Durable { epoch: s.epoch, journal: state::summary(&s, last), no_failover: s.no_failover }
        };
        #[cfg(test)]
        let start = (mcfg.clone(), durable.clone());
        let (machine, first) = if create {
            Member::create_primary(mcfg, me, 0)
        } else {
            (Member::start(mcfg, me, durable, 0), Vec::new())
        };
        #[cfg(test)]
        recording::start(net.dir.root(), create, me, start, &first);
        let driver = Driver {
            cfg,
            me,
            machine,
            net,
            published: Arc::default(),
            clock: Instant::now(),
            links: BTreeMap::new(),
            upstream: None,
            connector: None,
            arbiter: None,
            asking_agents: BTreeSet::new(),
            acked: 0,
            confirming: Marks::default(),
            databases: None,
        };
        (driver, first)
    }

    fn now(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn name(&self, id: MemberId) -> &str {
        &self.cfg.members[id.0 as usize].name
    }

    fn member_type(&self) -> MemberType {
        self.published.lock().types.get(&self.me).copied().unwrap_or(self.cfg.members[self.me.0 as usize].member_type)
    }

    /// Runs until `inputs` closes (the engine stops).
    pub async fn run(mut self, first: Vec<Command>, mut inputs: mpsc::Receiver<Input>) {
        self.arbiter = self.start_arbiter_client();
        if first.is_empty() {
            self.net
                .store
                .set_write_mode(WriteMode::Member { writable: self.member_type() == MemberType::ReportingRw });
            self.start_connector();
        } else {
            self.execute(first).await;
        }
        let journal = self.net.store.mirror_journal();
        let mut durable = journal.watch_durable();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.step(Event::Tick).await,
                input = inputs.recv() => match input {
                    Some(i) => self.input(i).await,
                    None => break,
                },
                changed = durable.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    if self.machine.is_primary() {
                        self.step(Event::Tick).await;
                    }
                }
            }
        }
        if let Some(c) = self.connector.take() {
            c.abort();
        }
    }

    async fn input(&mut self, input: Input) {
        if let Input::FromMember(id, _) | Input::FromPrimary(id, _) = &input {
            let id = *id;
            self.peer(id, |p| p.heard_at = Some(Instant::now()));
        }
        match input {
            Input::Link(id, tx) => {
                self.links.insert(id, tx);
                self.peer(id, |p| {
                    p.connected = true;
                    p.since = None;
                });
                self.step(Event::Connection { peer: id, up: true }).await;
            }
            Input::FromMember(id, FromMember::Joined { member_type, from_position, .. }) => {
                tracing::info!("mirror: {} joined as {member_type}", self.name(id));
                // An accepted join's journal is a prefix of ours up to there.
                self.peer(id, |p| p.position = p.position.max(from_position));
                if let Some(t) = MemberType::from_word(&member_type) {
                    self.learn_type(id, t).await;
                }
            }
            Input::FromMember(id, FromMember::Ack { durable, received, round_trip, .. }) => {
                if let Some(d) = round_trip {
                    self.net.stages.round_trip.observe(d.as_secs_f64());
                }
                self.confirming.start(durable, received);
                let caught_up = durable >= self.net.store.mirror_journal().durable_position();
                self.peer(id, |p| {
                    p.position = p.position.max(durable);
                    if caught_up {
                        p.caught_up_at = Some(Instant::now());
                    }
                });
                self.step(Event::DataAck { from: id, end: durable }).await;
            }
            Input::FromMember(id, FromMember::Control(msg)) => {
                if let Control::JournalAck { end, .. } = msg {
                    // A member with nothing to receive sends no data acknowledgement: its
                    // control acknowledgement says how far it is.
                    let caught_up = end >= self.net.store.mirror_journal().durable_position();
                    self.peer(id, |p| {
                        p.position = p.position.max(end);
                        if caught_up {
                            p.caught_up_at = Some(Instant::now());
                        }
                    });
                }
                self.step(Event::Message { from: id, msg }).await;
            }
            Input::LinkClosed(id, why) => {
                tracing::info!("mirror: {} disconnected: {why}", self.name(id));
                self.links.remove(&id);
                self.peer(id, |p| {
                    p.connected = false;
                    p.since = Some(crate::instance::datadir::now_text());
                });
                self.step(Event::Connection { peer: id, up: false }).await;
            }
            Input::Upstream(id, tx) => {
                tracing::info!("mirror: following the primary {}", self.name(id));
                self.upstream = Some((id, tx));
                self.peer(id, |p| {
                    p.connected = true;
                    p.since = None;
                });
                self.published.lock().problem = None;
                self.step(Event::Connection { peer: id, up: true }).await;
            }
            Input::FromPrimary(id, event) => match event {
                FromPrimary::Control(msg) => self.step(Event::Message { from: id, msg }).await,
                FromPrimary::Durable(p) => {
                    // Caught up with what the primary last reported durable: the member's
                    // latency counts from here.
                    self.peer(id, |v| {
                        if p >= v.position {
                            v.caught_up_at = Some(Instant::now());
                        }
                    });
                    let journal = state::summary(&self.net.state.lock(), p);
                    self.step(Event::JournalReceived { journal }).await;
                }
                FromPrimary::PrimaryDurable(p) | FromPrimary::Welcome { durable: p, .. } => {
                    self.peer(id, |v| v.position = v.position.max(p));
                }
            },
            Input::UpstreamClosed(id, why) => {
                tracing::info!("mirror: lost the primary {}: {why}", self.name(id));
                if self.upstream.as_ref().is_some_and(|(u, _)| *u == id) {
                    self.upstream = None;
                }
                self.peer(id, |p| {
                    p.connected = false;
                    p.since = Some(crate::instance::datadir::now_text());
                });
                self.step(Event::Connection { peer: id, up: false }).await;
            }
            Input::Rewound(to) => {
                tracing::info!("mirror: rejoining after a rewind to position {to}");
                self.step(Event::JournalRewound { to }).await;
            }
            Input::Inconsistent(reason) => {
                self.published.lock().problem = Some(reason);
            }
            Input::Arbiter(answer) => self.step(Event::Arbiter(answer)).await,
            Input::Agent(answer, member_type) => {
                self.asking_agents.remove(&answer.member);
                if let Some(t) = member_type {
                    self.learn_type(answer.member, t).await;
                }
                self.step(Event::Agent(answer)).await;
            }
            Input::FaultPanic => panic!("mirror: the fault switch asked for a broken invariant"),
            Input::AgentSilent(member) => {
                self.asking_agents.remove(&member);
            }
            Input::Operator(cmd) => {
                match cmd {
                    OperatorCommand::SetNoFailover | OperatorCommand::ClearNoFailover => {
                        let mut s = self.net.state.lock();
                        s.no_failover = cmd == OperatorCommand::SetNoFailover;
                        if let Err(e) = self.net.save_state(&s) {
                            tracing::error!("mirror: {e}");
                        }
                    }
                    OperatorCommand::PlannedFailover if self.machine.is_primary() => {
                        // Close writes and sync first, so the hand-over waits for every
                        // record written so far, buffered ones included.
                        self.net.store.set_write_mode(WriteMode::Primary { open: false });
                        let journal = self.net.store.mirror_journal();
                        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || journal.flush()).await {
                            tracing::error!("mirror: syncing the journal before a planned failover: {e}");
                        }
                    }
                    OperatorCommand::PlannedFailover | OperatorCommand::DemoteToDr | OperatorCommand::PromoteDr => {}
                }
                self.step(Event::Operator(cmd)).await;
            }
        }
    }

    /// The one place the machine is stepped: everything it decides from is in `event`
    /// (tests record every call and replay it through a fresh machine).
    fn feed(&mut self, now: u64, event: Event) -> Vec<Command> {
        #[cfg(test)]
        let recorded = event.clone();
        let commands = self.machine.step(now, event);
        #[cfg(test)]
        recording::step(self.net.dir.root(), now, recorded, &commands);
        commands
    }

    fn peer(&self, id: MemberId, f: impl FnOnce(&mut PeerView)) {
        f(self.published.lock().peers.entry(id).or_default());
    }

    /// Steps the machine with `event`, after telling a primary how far its journal is
    /// durable (records exist whether or not the machine counted them).
    async fn step(&mut self, event: Event) {
        let now = self.now();
        let mut commands = Vec::new();
        if self.machine.is_primary() {
            let upto = self.net.store.mirror_journal().durable_position();
            if upto > self.machine.journal().end() {
                commands.extend(self.feed(now, Event::JournalAppended { upto }));
            }
        }
        // The machine decides from the databases' statuses whether it may be promoted.
        let statuses: Vec<DatabaseStatus> = self.net.store.databases().iter().map(|d| d.status).collect();
        if self.databases.as_ref() != Some(&statuses) {
            self.databases = Some(statuses.clone());
            commands.extend(self.feed(now, Event::Databases(statuses)));
        }
        commands.extend(self.feed(now, event));
        self.execute(commands).await;
        self.publish(now);
    }

    async fn execute(&mut self, commands: Vec<Command>) {
        for command in commands {
            self.execute_one(command).await;
        }
    }

    async fn execute_one(&mut self, command: Command) {
        let store = self.net.store.clone();
        match command {
            Command::PersistEpoch(epoch) => {
                let mut s = self.net.state.lock();
                s.epoch = s.epoch.max(epoch);
                if let Err(e) = self.net.save_state(&s) {
                    // Nothing may carry an epoch that is not durable: stop here loudly.
                    panic!("mirror: cannot persist epoch {epoch}: {e}");
                }
            }
            Command::Journal(JournalOp::Truncate { to }) => {
                let net = self.net.clone();
                let result = tokio::task::spawn_blocking(move || -> Result<(), crate::error::EngineError> {
                    net.store.rewind(to)?;
                    let mut s = net.state.lock();
                    state::cut_epochs(&mut s, to);
                    net.save_state(&s)
                })
                .await;
                if let Ok(Err(e)) | Err(e) = result.map_err(|e| crate::error::EngineError::Invalid(e.to_string())) {
                    tracing::error!("mirror: cannot rewind to position {to}: {e}");
                    self.published.lock().problem = Some(e.to_string());
                }
            }
            Command::Journal(JournalOp::Receive { source, from_agent: true, target }) => {
                let address = self.cfg.members[source.0 as usize].agent.clone();
                let name = self.name(source).to_string();
                let net = self.net.clone();
                let fetched =
                    tokio::task::spawn_blocking(move || fetch_from_agent(&net, (&address, &name), target.end())).await;
                match fetched {
                    Ok(Ok(n)) => {
                        tracing::info!("mirror: fetched {n} journal records from {}'s agent", self.name(source))
                    }
                    Ok(Err(e)) => {
                        tracing::error!("mirror: fetching journal records from {}'s agent: {e}", self.name(source))
                    }
                    Err(e) => tracing::error!("mirror: {e}"),
                }
            }
            // The records came over the data channel before the message that names them.
            Command::Journal(JournalOp::Receive { .. }) => {}
            Command::Send { to, msg } => self.send(to, msg),
            Command::AskArbiter(request) => {
                if let Some(a) = &self.arbiter {
                    let _ = a.try_send(request);
                }
            }
            Command::AskAgent { member, fence } => {
                if !self.asking_agents.insert(member) && !fence {
                    return;
                }
                let address = self.cfg.members[member.0 as usize].agent.clone();
                let inputs = self.net.inputs.clone();
                let reason = format!("{} takes over mirror {}", self.name(self.me), self.cfg.name);
                let dropped = self.net.is_dropped(self.name(member));
                let name = self.name(member).to_string();
                let tls = self.net.tls.clone();
                tokio::spawn(async move {
                    let answer = if dropped {
                        None
                    } else {
                        tokio::task::spawn_blocking(move || {
                            peers::ask_agent(&address, (member, &name), tls.as_deref(), fence, &reason)
                        })
                        .await
                        .ok()
                        .flatten()
                    };
                    // No answer (its host may be down): forget the request so the machine's
                    // next retry asks again.
                    let input = match answer {
                        Some((answer, member_type)) => Input::Agent(answer, member_type),
                        None => Input::AgentSilent(member),
                    };
                    let _ = inputs.send(input).await;
                });
            }
            Command::AckCommits { upto, send_before } => {
                if self.now() < send_before {
                    self.acked = self.acked.max(upto);
                    // Measured before the clients are released, so a scrape after a
                    // confirmed commit counts it.
                    if let Some(d) = self.confirming.end(self.acked, Instant::now()) {
                        self.net.stages.confirm.observe(d.as_secs_f64());
                    }
                    store.ack_commits(upto);
                }
            }
            Command::StopAcking => tracing::debug!("mirror: holding commits"),
            Command::StartAcking => tracing::debug!("mirror: confirming commits"),
            Command::BecomePrimary { epoch } => {
                tracing::warn!("mirror: {} becomes primary of epoch {epoch}", self.name(self.me));
                // Acknowledgements of an earlier term confirm nothing in this one.
                self.confirming.clear();
                if let Some(c) = self.connector.take() {
                    c.abort();
                }
                self.upstream = None;
                let net = self.net.clone();
                let result = tokio::task::spawn_blocking(move || -> Result<(), crate::error::EngineError> {
                    let last = net.store.mirror_journal().flush()?;
                    {
                        let mut s = net.state.lock();
                        state::note_epoch_start(&mut s, epoch, last + 1);
                        s.role = MirrorRole::Primary;
                        net.save_state(&s)?;
                    }
                    net.store.promote(epoch)
                })
                .await;
                if let Ok(Err(e)) | Err(e) = result.map_err(|e| crate::error::EngineError::Invalid(e.to_string())) {
                    panic!("mirror: cannot become primary of epoch {epoch}: {e}");
                }
                // The listener judges joins against this summary from the moment it says
                // primary: both change together (a stale summary would make a member that
                // is a prefix look diverged, and rewind it for nothing).
                let mut view = self.net.view.lock();
                view.summary = self.machine.journal().clone();
                view.oldest_kept = store.mirror_journal().segments().first().map_or(1, |s| s.first_position);
                view.primary = true;
            }
            Command::OpenForWrites { epoch } => {
                tracing::warn!("mirror: {} is primary of epoch {epoch}, open for writes", self.name(self.me));
                store.set_write_mode(WriteMode::Primary { open: true });
                self.published.lock().open_for_writes = true;
            }
            Command::DemoteToBackup { epoch } => {
                tracing::warn!("mirror: {} stops being primary (epoch {epoch})", self.name(self.me));
                store.fail_pending_commits(
                    "this member stopped being primary before the backup confirmed the commit: its outcome is unknown",
                );
                store.set_write_mode(WriteMode::Member { writable: self.member_type() == MemberType::ReportingRw });
                self.published.lock().open_for_writes = false;
                self.net.view.lock().primary = false;
                self.links.clear();
                self.start_connector();
            }
            Command::StatusChanged { from, to } => {
                tracing::info!("mirror: member status {from} -> {to}");
                let member_type = self.member_type();
                let mut s = self.net.state.lock();
                s.status = to.to_string();
                s.active = self.machine.is_active_backup();
                s.role = state::role_word(self.machine.is_primary(), member_type == MemberType::Failover);
                if let Err(e) = self.net.save_state(&s) {
                    tracing::error!("mirror: {e}");
                }
            }
            Command::Log(line) => tracing::warn!("mirror: {line:?}"),
            Command::KindChanged(kind) => {
                let t = match kind {
                    MemberKind::Failover => MemberType::Failover,
                    _ => MemberType::Dr,
                };
                tracing::warn!("mirror: {} is now a {} member", self.name(self.me), t.label());
                self.published.lock().types.insert(self.me, t);
                {
                    let mut s = self.net.state.lock();
                    s.member_type = t.word().to_string();
                    s.active = self.machine.is_active_backup();
                    s.role = state::role_word(self.machine.is_primary(), t == MemberType::Failover);
                    if let Err(e) = self.net.save_state(&s) {
                        tracing::error!("mirror: {e}");
                    }
                }
                // Rejoin, so that the primary learns the new type from the join.
                if let Some(c) = self.connector.take() {
                    c.abort();
                }
                self.upstream = None;
                if !self.machine.is_primary() {
                    self.start_connector();
                }
            }
        }
    }

    /// Another member's type, as its join or its agent says: for the machine and the
    /// Mirror Monitor.
    async fn learn_type(&mut self, id: MemberId, t: MemberType) {
        if id == self.me {
            return;
        }
        let configured = self.cfg.members[id.0 as usize].member_type;
        {
            let mut p = self.published.lock();
            if t == configured {
                p.types.remove(&id);
            } else {
                p.types.insert(id, t);
            }
        }
        self.step(Event::PeerKind { peer: id, kind: kind_of_type(t) }).await;
    }

    fn send(&mut self, to: MemberId, msg: Control) {
        if self.net.is_dropped(self.name(to)) {
            return;
        }
        if self.machine.is_primary() || matches!(msg, Control::Handover { .. }) {
            if let Some(link) = self.links.get(&to) {
                // A full queue means the member is far behind: the next heartbeat carries
                // the same news.
                let _ = link.try_send(msg);
            }
            return;
        }
        if let Some((id, tx)) = &self.upstream {
            if *id == to {
                let _ = tx.try_send(Message::Control(msg));
            }
        }
    }

    fn start_connector(&mut self) {
        if self.connector.is_some() {
            return;
        }
        let candidates: Vec<MemberId> =
            (0..self.cfg.members.len()).map(|i| MemberId(i as u8)).filter(|&m| m != self.me).collect();
        self.connector = Some(tokio::spawn(net::connect_and_follow(self.net.clone(), candidates)));
    }

    fn start_arbiter_client(&self) -> Option<mpsc::Sender<ArbiterRequest>> {
        let address = self.cfg.arbiter.clone()?;
        if self.member_type() != MemberType::Failover && self.member_type() != MemberType::Dr {
            return None;
        }
        let failover: Vec<MemberId> = self
            .cfg
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.member_type == MemberType::Failover)
            .map(|(i, _)| MemberId(i as u8))
            .collect();
        let mut client = ArbiterClient::new(
            address,
            self.cfg.name.clone(),
            self.me,
            failover,
            u64::from(self.cfg.qos_ms),
            self.net.tls.clone(),
        );
        let (tx, mut rx) = mpsc::channel::<ArbiterRequest>(4);
        let inputs = self.net.inputs.clone();
        let net = self.net.clone();
        std::thread::Builder::new()
            .name("mirror-arbiter".into())
            .spawn(move || {
                while let Some(request) = rx.blocking_recv() {
                    if net.is_dropped("ARBITER") {
                        continue;
                    }
                    if let Some(answer) = client.ask(&request) {
                        if inputs.blocking_send(Input::Arbiter(answer)).is_err() {
                            return;
                        }
                    }
                }
            })
            .expect("spawn the arbiter client");
        Some(tx)
    }

    fn publish(&self, now: u64) {
        let mut p = self.published.lock();
        p.status = self.machine.status();
        p.epoch = self.machine.epoch();
        p.primary = if self.machine.is_primary() { Some(self.me) } else { self.upstream.as_ref().map(|u| u.0) };
        p.failover_mode = self.machine.failover_mode().to_string();
        p.arbiter = if self.cfg.arbiter.is_some() {
            self.machine.arbiter_line(now).to_string()
        } else {
            "No arbiter is configured".into()
        };
        p.no_failover = self.machine.durable().no_failover;
        p.acked = self.acked;
        p.active_backup = self.machine.active_backup();
        p.acking_until = self.machine.acking_until(now).map(|ms| self.clock + Duration::from_millis(ms));
        let view_primary = p.primary.map(|m| self.name(m).to_string());
        // Only the primary serves other members from its journal.
        let floor = self.machine.purge_floor(now);
        drop(p);
        self.net.store.set_purge_floor(floor);
        let mut v = self.net.view.lock();
        v.primary_name = view_primary;
        if self.machine.is_primary() {
            v.summary = self.machine.journal().clone();
            v.oldest_kept = self.net.store.mirror_journal().segments().first().map_or(1, |s| s.first_position);
        }
    }
}

impl Drop for Driver {
    /// The connector is a task of its own: it must not outlive the driver (an aborted
    /// driver, when the operator stops mirroring, would leave it following the primary).
    fn drop(&mut self) {
        if let Some(c) = self.connector.take() {
            c.abort();
        }
    }
}

/// Copies records `last+1..=end` from another member's agent into this member's journal
/// (agent-controlled takeover with a peer whose journal is longer). Returns how many.
fn fetch_from_agent(net: &NetShared, (address, name): (&str, &str), end: Position) -> Result<u64, String> {
    let mut client =
        peers::connect(address, name, net.tls.as_deref(), peers::PEER_TIMEOUT).map_err(|e| e.to_string())?;
    let _ = client.set_timeout(Some(Duration::from_secs(10)));
    let journal = net.store.mirror_journal();
    let mut count = 0;
    loop {
        let from = journal.last_position() + 1;
        if from > end {
            break;
        }
        let reply = client.command(&[b"JOURNAL", b"RANGE", from.to_string().as_bytes()]).map_err(|e| e.to_string())?;
        let crate::client::Reply::Array(frames) = reply else { return Err(format!("unexpected reply {reply:?}")) };
        if frames.is_empty() {
            return Err(format!("the agent has nothing from position {from}, short of {end}"));
        }
        let mut batch = Vec::new();
        let mut last = from - 1;
        for f in frames {
            let crate::client::Reply::Bulk(f) = f else { return Err("a journal frame that is not a string".into()) };
            let (record, _) = crate::journal::record::decode(&f)?;
            if record.position > end {
                break;
            }
            last = record.position;
            batch.extend_from_slice(&f);
        }
        if last < from {
            break;
        }
        net::receive_noting_epochs(net, from, last, &batch).map_err(|e| e.to_string())?;
        count += last + 1 - from;
    }
    journal.flush().map_err(|e| e.to_string())?;
    Ok(count)
}

/// Tests only: every driver's machine start and every step (time, event, commands), by
/// data directory, so a test can replay a real run through a fresh machine and require
/// the same commands: the driver decides nothing the events do not carry.
#[cfg(test)]
pub(crate) mod recording {
    use crate::mirror::failover::{Command, Durable, Event, MemberId, MirrorConfig};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    pub struct Recording {
        pub create: bool,
        pub me: MemberId,
        pub cfg: MirrorConfig,
        pub durable: Durable,
        pub first: Vec<Command>,
        pub steps: Vec<(u64, Event, Vec<Command>)>,
    }

    static RECORDINGS: parking_lot::Mutex<BTreeMap<PathBuf, Recording>> = parking_lot::const_mutex(BTreeMap::new());

    pub fn start(dir: &Path, create: bool, me: MemberId, (cfg, durable): (MirrorConfig, Durable), first: &[Command]) {
        let r = Recording { create, me, cfg, durable, first: first.to_vec(), steps: Vec::new() };
        RECORDINGS.lock().insert(dir.to_path_buf(), r);
    }

    pub fn step(dir: &Path, now: u64, event: Event, commands: &[Command]) {
        if let Some(r) = RECORDINGS.lock().get_mut(dir) {
            r.steps.push((now, event, commands.to_vec()));
        }
    }

    pub fn take(dir: &Path) -> Option<Recording> {
        RECORDINGS.lock().remove(dir)
    }
}
