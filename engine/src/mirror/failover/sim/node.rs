//! A data member in the simulator: the real state machine plus what its host keeps on
//! disk (epoch and journal), its clock, and whether it is running, hung or crashed.

use super::clock::NodeClock;
use super::network::Packet;
use crate::mirror::failover::{Durable, Epoch, Event, JournalSummary, Member, MemberId, Position};

pub struct SimNode {
    pub id: MemberId,
    /// `None` while crashed (or forced down by its agent).
    pub member: Option<Member>,
    /// Hung (SIGSTOP-like) until this real time: events wait in `backlog`.
    pub hung_until: Option<u64>,
    pub backlog: Vec<Event>,
    /// The agent on this host is stopped too until this real time (as when an engine and
    /// its agent are both SIGSTOPped): requests to it wait in `agent_backlog`.
    pub agent_paused_until: Option<u64>,
    pub agent_backlog: Vec<Packet>,
    pub clock: NodeClock,
    /// On disk: the persisted epoch and the journal, one epoch per record.
    pub durable_epoch: Epoch,
    pub journal: Vec<Epoch>,
    pub no_failover: bool,
    /// Records this member appended as primary, not yet acknowledged to clients.
    pub pending: Vec<(Epoch, Position)>,
    /// The driver's write mode: open for client writes, in this epoch (from
    /// `OpenForWrites` until `DemoteToBackup`, a planned failover's start or a crash).
    pub writable: Option<Epoch>,
    /// Client writes that arrived while the process was hung: served when it resumes.
    pub queued_commits: u32,
    /// Real time of a scheduled restart after a crash.
    pub restart_at: Option<u64>,
}

impl SimNode {
    pub fn summary(&self) -> JournalSummary {
        JournalSummary::from_records(&self.journal)
    }

    pub fn durable(&self) -> Durable {
        Durable { epoch: self.durable_epoch, journal: self.summary(), no_failover: self.no_failover }
    }

    pub fn running(&self) -> bool {
        self.member.is_some()
    }

    pub fn hung(&self) -> bool {
        self.hung_until.is_some()
    }

    pub fn has(&self, epoch: Epoch, pos: Position) -> bool {
        pos >= 1 && self.journal.get(pos as usize - 1) == Some(&epoch)
    }
}
