//! The simulated network: per-message delay and loss, and partitions of any link between
//! hosts (host `i` runs member `i` and its agent; the arbiter has a host of its own).

use std::collections::{BTreeMap, BTreeSet};

use crate::mirror::failover::{AgentAnswer, ArbiterAnswer, ArbiterRequest, MemberId, Message, Millis};
use crate::vfs::sim::SimRng;

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    Member(MemberId),
    Agent(MemberId),
    Arbiter,
}

#[derive(Debug, Clone)]
pub enum Payload {
    Member(Message),
    ArbiterRequest(ArbiterRequest),
    ArbiterAnswer(ArbiterAnswer),
    AgentRequest { fence: bool },
    AgentAnswer(AgentAnswer),
}

#[derive(Debug, Clone)]
pub struct Packet {
    pub from_host: u8,
    pub to_host: u8,
    /// The member that sent it (or, for answers, the member being answered).
    pub member: MemberId,
    pub dest: Dest,
    pub payload: Payload,
}

pub struct Network {
    pub max_delay: Millis,
    pub loss_per_mille: u64,
    cut: BTreeSet<(u8, u8)>,
    queue: BTreeMap<(Millis, u64), Packet>,
    seq: u64,
}

impl Network {
    pub fn new(max_delay: Millis, loss_per_mille: u64) -> Network {
        Network { max_delay, loss_per_mille, cut: BTreeSet::new(), queue: BTreeMap::new(), seq: 0 }
    }

    fn key(a: u8, b: u8) -> (u8, u8) {
        (a.min(b), a.max(b))
    }

    pub fn cut(&mut self, a: u8, b: u8) {
        self.cut.insert(Network::key(a, b));
    }

    pub fn heal(&mut self, a: u8, b: u8) {
        self.cut.remove(&Network::key(a, b));
    }

    pub fn heal_all(&mut self) {
        self.cut.clear();
    }

    pub fn is_cut(&self, a: u8, b: u8) -> bool {
        a != b && self.cut.contains(&Network::key(a, b))
    }

    pub fn send(&mut self, rng: &mut SimRng, now: Millis, packet: Packet) {
        if self.is_cut(packet.from_host, packet.to_host) || rng.below(1000) < self.loss_per_mille {
            return;
        }
        let delay = 1 + rng.below(self.max_delay.max(1));
        self.seq += 1;
        self.queue.insert((now + delay, self.seq), packet);
    }

    /// The next packet due at or before `now` whose link is still up.
    pub fn pop_due(&mut self, now: Millis) -> Option<Packet> {
        loop {
            let (&key, _) = self.queue.iter().next()?;
            if key.0 > now {
                return None;
            }
            let p = self.queue.remove(&key).expect("key just seen");
            if !self.is_cut(p.from_host, p.to_host) {
                return Some(p);
            }
        }
    }
}
