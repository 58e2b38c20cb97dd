//! The scenario driver: real state machines for the three data members (A and B failover,
//! D a DR async) and the arbiter, agents answering for their hosts, a simulated clock and
//! network, faults, client commits, and the invariant checks after every command.

use super::clock::NodeClock;
use super::invariants::acked_commits_survive::AckedCommits;
use super::invariants::health_check::HealthCheck;
use super::invariants::single_primary::SinglePrimary;
use super::network::{Dest, Network, Packet, Payload};
use super::node::SimNode;
use crate::mirror::failover::types::common_prefix;
use crate::mirror::failover::{
    AgentAnswer, Arbiter, Command, DatabaseStatus, Event, InstanceState, JournalOp, Member, MemberId, MemberKind,
    MemberSpec, MemberStatus, Millis, MirrorConfig, OperatorCommand, Position, Timing,
};
use crate::vfs::sim::SimRng;

pub const A: MemberId = MemberId(0);
pub const B: MemberId = MemberId(1);
pub const D: MemberId = MemberId(2);
pub const ARBITER_HOST: u8 = 3;
const TICK_MS: Millis = 50;

pub struct Options {
    pub arbiter: bool,
    pub max_delay: Millis,
    pub loss_per_mille: u64,
    /// Largest clock-rate error given to a member, in ppm.
    pub drift_ppm: u64,
    pub trace: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { arbiter: true, max_delay: 5, loss_per_mille: 0, drift_ppm: 0, trace: false }
    }
}

pub struct Sim {
    pub now: Millis,
    pub rng: SimRng,
    pub cfg: MirrorConfig,
    pub nodes: Vec<SimNode>,
    pub arbiter: Option<Arbiter>,
    arbiter_incarnations: u64,
    pub net: Network,
    pub single_primary: SinglePrimary,
    pub health: HealthCheck,
    pub acked: AckedCommits,
    /// Real time of every acknowledgement: (time, member, epoch).
    pub acks: Vec<(Millis, MemberId, u64)>,
    pub late_acks_dropped: u64,
    pub trace: bool,
    pub failure: Option<String>,
    next_tick: Millis,
}

impl Sim {
    pub fn new(seed: u64, opts: Options) -> Sim {
        let mut rng = SimRng::new(seed);
        let cfg = MirrorConfig {
            members: vec![
                MemberSpec { id: A, kind: MemberKind::Failover },
                MemberSpec { id: B, kind: MemberKind::Failover },
                MemberSpec { id: D, kind: MemberKind::DrAsync },
            ],
            arbiter: opts.arbiter,
            timing: Timing::default(),
        };
        let mut nodes = Vec::new();
        for spec in &cfg.members {
            let drift =
                if opts.drift_ppm == 0 { 0 } else { rng.below(2 * opts.drift_ppm + 1) as i64 - opts.drift_ppm as i64 };
            let clock = NodeClock { rate_ppm: drift, offset: 1_000 + rng.below(100_000) };
            nodes.push(SimNode {
                id: spec.id,
                member: None,
                hung_until: None,
                backlog: Vec::new(),
                agent_paused_until: None,
                agent_backlog: Vec::new(),
                clock,
                durable_epoch: 0,
                journal: Vec::new(),
                no_failover: false,
                pending: Vec::new(),
                writable: None,
                queued_commits: 0,
                restart_at: None,
            });
        }
        let arbiter = opts.arbiter.then(|| Arbiter::new(1, cfg.timing.qos(), vec![A, B]));
        let mut sim = Sim {
            now: 0,
            rng,
            cfg: cfg.clone(),
            nodes,
            arbiter,
            arbiter_incarnations: 1,
            net: Network::new(opts.max_delay, opts.loss_per_mille),
            single_primary: SinglePrimary::default(),
            health: HealthCheck::default(),
            acked: AckedCommits::default(),
            acks: Vec::new(),
            late_acks_dropped: 0,
            trace: opts.trace,
            failure: None,
            next_tick: 0,
        };
        let local = sim.nodes[0].clock.local(0);
        let (m, cmds) = Member::create_primary(cfg.clone(), A, local);
        sim.nodes[0].member = Some(m);
        sim.execute(0, cmds);
        for i in 1..sim.nodes.len() {
            let local = sim.nodes[i].clock.local(0);
            sim.nodes[i].member = Some(Member::start(cfg.clone(), sim.nodes[i].id, sim.nodes[i].durable(), local));
            sim.deliver(i, Event::Databases(vec![DatabaseStatus::Dejournaling]));
        }
        sim
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("{:>7} {}", self.now, line());
        }
    }

    fn fail(&mut self, e: String) {
        if self.failure.is_none() {
            self.log(|| format!("INVARIANT BROKEN: {e}"));
            self.failure = Some(e);
        }
    }

    pub fn status(&self, id: MemberId) -> Option<MemberStatus> {
        self.nodes[id.0 as usize].member.as_ref().map(|m| m.status())
    }

    pub fn is_open_primary(&self, id: MemberId) -> bool {
        self.nodes[id.0 as usize].member.as_ref().is_some_and(|m| m.is_open_primary())
    }

    /// Feeds one event to node `i` (queued if it is hung, dropped if it is down).
    pub fn deliver(&mut self, i: usize, event: Event) {
        let node = &mut self.nodes[i];
        if node.member.is_none() {
            return;
        }
        if node.hung() {
            node.backlog.push(event);
            return;
        }
        let local = node.clock.local(self.now);
        if self.trace && !matches!(event, Event::Tick) {
            eprintln!("{:>7} {} <- {:?}", self.now, node.id, event);
        }
        // What the driver does with an operator command before stepping: close writes
        // before a primary starts a planned failover (the hand-over waits for every record
        // written so far); persist the no-failover flag.
        match event {
            Event::Operator(OperatorCommand::PlannedFailover)
                if node.member.as_ref().is_some_and(Member::is_primary) =>
            {
                node.writable = None;
            }
            Event::Operator(OperatorCommand::SetNoFailover) => node.no_failover = true,
            Event::Operator(OperatorCommand::ClearNoFailover) => node.no_failover = false,
            _ => {}
        }
        let cmds = node.member.as_mut().expect("running").step(local, event);
        self.execute(i, cmds);
        self.check_health(i, local);
    }

    /// What member `i` would answer a health check with, right after its step at `local`.
    fn check_health(&mut self, i: usize, local: Millis) {
        let node = &self.nodes[i];
        let Some(m) = &node.member else { return };
        if m.acking_until(local).is_some() {
            if let Err(e) = self.health.on_success(node.id, m.epoch()) {
                self.fail(e);
            }
        }
    }

    fn execute(&mut self, i: usize, cmds: Vec<Command>) {
        for cmd in cmds {
            self.execute_one(i, cmd);
        }
        let node = &self.nodes[i];
        if let Some(member) = &node.member {
            assert_eq!(&node.summary(), member.journal(), "{}: state machine and disk agree on the journal", node.id);
        }
    }

    fn send(&mut self, from_host: u8, to_host: u8, member: MemberId, dest: Dest, payload: Payload) {
        let packet = Packet { from_host, to_host, member, dest, payload };
        self.net.send(&mut self.rng, self.now, packet);
    }

    fn execute_one(&mut self, i: usize, cmd: Command) {
        let id = self.nodes[i].id;
        if self.trace && !matches!(cmd, Command::Send { .. } | Command::AskArbiter(_)) {
            eprintln!("{:>7} {} -> {:?}", self.now, id, cmd);
        }
        let host = id.0;
        match cmd {
            Command::PersistEpoch(e) => {
                let node = &mut self.nodes[i];
                assert!(e > node.durable_epoch, "{id} persisted epoch {e} after {}", node.durable_epoch);
                node.durable_epoch = e;
            }
            Command::Journal(op) => self.journal_op(i, op),
            Command::Send { to, msg } => self.send(host, to.0, id, Dest::Member(to), Payload::Member(msg)),
            Command::AskArbiter(req) => self.send(host, ARBITER_HOST, id, Dest::Arbiter, Payload::ArbiterRequest(req)),
            Command::AskAgent { member, fence } => {
                self.send(host, member.0, id, Dest::Agent(member), Payload::AgentRequest { fence })
            }
            Command::AckCommits { upto, send_before } => {
                let node = &mut self.nodes[i];
                if node.clock.local(self.now) >= send_before {
                    self.late_acks_dropped += 1;
                    return;
                }
                let epoch = node.member.as_ref().expect("running").epoch();
                let (done, keep): (Vec<_>, Vec<_>) = node.pending.drain(..).partition(|&(_, p)| p <= upto);
                node.pending = keep;
                if done.is_empty() {
                    return;
                }
                if let Err(e) = self.single_primary.on_ack(id, epoch) {
                    self.fail(e);
                }
                self.acks.push((self.now, id, epoch));
                for (e, p) in done {
                    assert_eq!(e, epoch, "pending records belong to the primary's epoch");
                    if let Err(err) = self.acked.on_ack(e, p) {
                        self.fail(err);
                    }
                }
            }
            Command::BecomePrimary { .. } => {
                if let Err(e) = self.acked.check_primary(&self.nodes[i], "became primary") {
                    self.fail(e);
                }
            }
            Command::OpenForWrites { epoch } => {
                if let Err(e) = self.acked.check_primary(&self.nodes[i], "opened for writes") {
                    self.fail(e);
                }
                self.nodes[i].writable = Some(epoch);
                self.health.on_open(id, epoch);
            }
            Command::DemoteToBackup { .. } => {
                self.nodes[i].pending.clear();
                self.nodes[i].writable = None;
            }
            Command::KindChanged(kind) => {
                // The member's state file keeps its type across restarts, and the others
                // learn it (the primary from its rejoin, followers from its agent).
                self.cfg.members[i].kind = kind;
                for j in (0..self.nodes.len()).filter(|&j| j != i) {
                    self.deliver(j, Event::PeerKind { peer: id, kind });
                }
            }
            Command::StopAcking | Command::StartAcking | Command::StatusChanged { .. } | Command::Log(_) => {}
        }
    }

    fn journal_op(&mut self, i: usize, op: JournalOp) {
        let node = &mut self.nodes[i];
        match op {
            JournalOp::Truncate { to } => node.journal.truncate(to as usize),
            JournalOp::Receive { target, .. } => {
                for pos in node.journal.len() as u64 + 1..=target.end() {
                    node.journal.push(target.epoch_at(pos).expect("inside target"));
                }
            }
        }
    }

    fn agent_answer(&mut self, target: usize, fence: bool) -> AgentAnswer {
        if fence && self.nodes[target].running() {
            self.log(|| format!("agent forces {} down", MemberId(target as u8)));
            self.crash(target);
            self.nodes[target].restart_at = Some(self.now + 1_000 + self.rng.below(2_000));
        }
        let node = &self.nodes[target];
        let state = match &node.member {
            None => InstanceState::Down,
            Some(_) if node.hung() => InstanceState::Hung,
            Some(m) => InstanceState::Running { primary: m.is_primary(), active: m.is_active_backup() },
        };
        AgentAnswer { member: node.id, state, epoch: node.durable_epoch, journal: node.summary() }
    }

    fn dispatch(&mut self, p: Packet) {
        match (p.dest, p.payload) {
            (Dest::Member(to), Payload::Member(msg)) => {
                self.deliver(to.0 as usize, Event::Message { from: p.member, msg });
            }
            (Dest::Member(to), Payload::ArbiterAnswer(a)) => self.deliver(to.0 as usize, Event::Arbiter(a)),
            (Dest::Member(to), Payload::AgentAnswer(a)) => self.deliver(to.0 as usize, Event::Agent(a)),
            (Dest::Arbiter, Payload::ArbiterRequest(req)) => {
                let now = self.now;
                if let Some(arb) = &mut self.arbiter {
                    let answer = arb.handle(now, p.member, &req);
                    self.log(|| format!("arbiter {:?} from {} -> {:?}", req, p.member, answer));
                    self.send(
                        ARBITER_HOST,
                        p.from_host,
                        p.member,
                        Dest::Member(p.member),
                        Payload::ArbiterAnswer(answer),
                    );
                }
            }
            (Dest::Agent(target), Payload::AgentRequest { fence }) => {
                let agent = &mut self.nodes[target.0 as usize];
                if agent.agent_paused_until.is_some() {
                    // In the stopped agent's listen backlog: answered when it resumes.
                    agent.agent_backlog.push(Packet { dest: p.dest, payload: Payload::AgentRequest { fence }, ..p });
                    return;
                }
                let answer = self.agent_answer(target.0 as usize, fence);
                self.send(p.to_host, p.from_host, p.member, Dest::Member(p.member), Payload::AgentAnswer(answer));
            }
            (dest, payload) => panic!("misrouted packet to {dest:?}: {payload:?}"),
        }
    }

    // ---- faults ----

    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if node.member.take().is_some() {
            node.hung_until = None;
            node.backlog.clear();
            node.pending.clear();
            node.writable = None;
            node.queued_commits = 0;
            let id = node.id;
            self.log(|| format!("{id} crashes"));
            // The peers' connections break (kill -9: the kernel resets them).
            for j in 0..self.nodes.len() {
                if j != i && !self.net.is_cut(i as u8, j as u8) {
                    self.deliver(j, Event::Connection { peer: id, up: false });
                }
            }
        }
    }

    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.restart_at = None;
        if node.member.is_none() {
            let local = node.clock.local(self.now);
            let mut durable = node.durable();
            durable.no_failover = node.no_failover;
            node.member = Some(Member::start(self.cfg.clone(), node.id, durable, local));
            let id = node.id;
            self.log(|| format!("{id} restarts"));
            self.deliver(i, Event::Databases(vec![DatabaseStatus::Dejournaling]));
        }
    }

    pub fn hang(&mut self, i: usize, until: Millis) {
        if self.nodes[i].running() {
            self.log(|| format!("{} hangs until {until}", MemberId(i as u8)));
            self.nodes[i].hung_until = Some(until);
        }
    }

    /// Member `i` stops (SIGSTOP) until `until`, and with `agent` its agent too: nobody
    /// can force it down or ask about it until the agent resumes, just before it.
    pub fn pause(&mut self, i: usize, until: Millis, agent: bool) {
        self.hang(i, until);
        if agent {
            self.log(|| format!("{}'s agent stops until {until}", MemberId(i as u8)));
            self.nodes[i].agent_paused_until = Some(until);
        }
    }

    /// The stopped agent on host `i` resumes and answers what waited for it.
    pub fn resume_agent(&mut self, i: usize) {
        if self.nodes[i].agent_paused_until.take().is_some() {
            self.log(|| format!("{}'s agent resumes", MemberId(i as u8)));
            for p in std::mem::take(&mut self.nodes[i].agent_backlog) {
                self.dispatch(p);
            }
        }
    }

    pub fn resume(&mut self, i: usize) {
        if self.nodes[i].hung_until.take().is_some() {
            self.log(|| format!("{} resumes", MemberId(i as u8)));
            // The client writes queued in its sockets are served before it hears anything.
            for _ in 0..std::mem::take(&mut self.nodes[i].queued_commits) {
                self.commit(i);
            }
            let backlog = std::mem::take(&mut self.nodes[i].backlog);
            for e in backlog {
                self.deliver(i, e);
            }
        }
    }

    /// Cuts the link between two hosts; members on both ends see the connection drop.
    pub fn cut(&mut self, a: u8, b: u8) {
        self.net.cut(a, b);
        let n = self.nodes.len() as u8;
        if a < n && b < n {
            self.deliver(a as usize, Event::Connection { peer: MemberId(b), up: false });
            self.deliver(b as usize, Event::Connection { peer: MemberId(a), up: false });
        }
    }

    pub fn isolate(&mut self, host: u8) {
        for other in 0..=ARBITER_HOST {
            if other != host {
                self.cut(host, other);
            }
        }
    }

    /// The arbiter stops. Its record is lost: the real arbiter keeps it in memory only.
    pub fn arbiter_down(&mut self) {
        self.arbiter = None;
    }

    /// The arbiter restarts, blank (a new incarnation), as the real one does.
    pub fn arbiter_up(&mut self) {
        if self.arbiter.is_none() {
            self.arbiter_replaced();
        }
    }

    /// A blank arbiter (a new incarnation) takes over the arbiter's address, whether the
    /// old one still ran or not.
    pub fn arbiter_replaced(&mut self) {
        if self.cfg.arbiter {
            self.arbiter_incarnations += 1;
            self.arbiter = Some(Arbiter::new(self.arbiter_incarnations, self.cfg.timing.qos(), vec![A, B]));
        }
    }

    /// Member `i` joins the open primary over the data channel, as a real member's
    /// connector does: a JOIN whose journal is not a prefix of the primary's is answered
    /// with REWIND, the member cuts its journal back to the common prefix and tells its
    /// state machine what the driver tells it. Returns the position rewound to, if any.
    pub fn rejoin(&mut self, i: usize) -> Option<Position> {
        let p = self.primary_index()?;
        let node = &self.nodes[i];
        if p == i || !node.running() || node.hung() || node.member.as_ref().is_some_and(|m| m.is_primary()) {
            return None;
        }
        let primary = self.nodes[p].summary();
        let to = common_prefix(&node.summary(), &primary);
        if to == node.summary().end() {
            return None;
        }
        self.log(|| format!("{} rejoins {} and rewinds to {to}", MemberId(i as u8), MemberId(p as u8)));
        self.nodes[i].journal.truncate(to as usize);
        self.deliver(i, Event::JournalRewound { to });
        Some(to)
    }

    /// A client sends one write to member `i`, as to a real engine: an engine open for
    /// writes appends it to its journal (durable at once here) and its driver tells the
    /// machine `JournalAppended`; any other refuses it; a hung one serves it on resuming.
    pub fn commit(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.running() {
            return;
        }
        if node.hung() {
            node.queued_commits += 1;
            return;
        }
        let Some(epoch) = node.writable else { return };
        node.journal.push(epoch);
        let pos = node.journal.len() as Position;
        node.pending.push((epoch, pos));
        self.deliver(i, Event::JournalAppended { upto: pos });
    }

    /// The member a client would pick: whichever says it is primary.
    pub fn primary_index(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.member.as_ref().is_some_and(|m| m.is_open_primary()))
    }

    // ---- time ----

    /// Runs until real time `until`, committing every `commit_every` ms (0: no commits).
    pub fn run_until(&mut self, until: Millis, commit_every: Millis) {
        let mut next_commit = self.now;
        while self.now < until {
            let step_to = (self.now + 10).min(until);
            self.now = step_to;
            while let Some(p) = self.net.pop_due(self.now) {
                self.dispatch(p);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].agent_paused_until.is_some_and(|t| t <= self.now) {
                    self.resume_agent(i);
                }
                if self.nodes[i].hung_until.is_some_and(|t| t <= self.now) {
                    self.resume(i);
                }
                if self.nodes[i].restart_at.is_some_and(|t| t <= self.now) {
                    self.restart(i);
                }
            }
            if self.now >= self.next_tick {
                self.next_tick = self.now + TICK_MS;
                for i in 0..self.nodes.len() {
                    self.deliver(i, Event::Tick);
                }
            }
            if commit_every > 0 && self.now >= next_commit {
                next_commit = self.now + commit_every;
                let target = match self.primary_index() {
                    Some(p) if self.rng.below(10) < 9 => p,
                    _ => self.rng.below(self.nodes.len() as u64) as usize,
                };
                self.commit(target);
            }
        }
    }

    pub fn run_for(&mut self, ms: Millis, commit_every: Millis) {
        self.run_until(self.now + ms, commit_every);
    }

    /// Every fault ends: links heal, the arbiter runs, hung members resume, crashed ones
    /// restart.
    pub fn heal_everything(&mut self) {
        self.net.heal_all();
        self.arbiter_up();
        for i in 0..self.nodes.len() {
            self.resume_agent(i);
            self.resume(i);
            self.restart(i);
        }
    }
}
