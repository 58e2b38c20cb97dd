//! The arbiter's answers, as a pure state.
//!
//! The arbiter is not a quorum member: it records which member is primary of which epoch,
//! which backup may take over through it (arbiter-controlled mode), and when it last heard
//! from each member. It is the one place that serialises "the primary goes on alone" and
//! "the backup takes over": once it has told the primary to go on alone it refuses the
//! backup, and once it has granted a takeover it tells the old primary a failover happened.
//! Its record lives in memory only (the agent keeps no disk): a restarted or replaced
//! arbiter is blank, with a new `incarnation`, and the simulator restarts it blank too. A
//! primary never takes "go on alone" from an incarnation other than the one that recorded
//! its backup as eligible, since only that one can know whether it granted a takeover.

use std::collections::BTreeMap;

use super::commands::ArbiterRequest;
use super::events::ArbiterAnswer;
use super::types::{check_epoch, next_epoch, Epoch, ImplausibleEpoch, MemberId, Millis};

#[derive(Debug, Clone)]
pub struct Arbiter {
    incarnation: u64,
    qos: Millis,
    failover_members: Vec<MemberId>,
    epoch: Epoch,
    primary: Option<MemberId>,
    /// The backup the primary declared active: the only member that may take over here.
    eligible: Option<MemberId>,
    mode_seq: u64,
    primary_seen: Millis,
    /// The last grant, so a retried request gets the same answer.
    granted: Option<(MemberId, Epoch)>,
    last_seen: BTreeMap<MemberId, Millis>,
}

impl Arbiter {
    /// A blank arbiter; `incarnation` must differ from every earlier arbiter's.
    pub fn new(incarnation: u64, qos: Millis, failover_members: Vec<MemberId>) -> Arbiter {
        Arbiter {
            incarnation,
            qos,
            failover_members,
            epoch: 0,
            primary: None,
            eligible: None,
            mode_seq: 0,
            primary_seen: 0,
            granted: None,
            last_seen: BTreeMap::new(),
        }
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn primary(&self) -> Option<MemberId> {
        self.primary
    }

    fn sees(&self, now: Millis, m: MemberId) -> bool {
        self.last_seen.get(&m).is_some_and(|&t| now.saturating_sub(t) < self.qos)
    }

    fn pong(&self, now: Millis, from: MemberId) -> ArbiterAnswer {
        let other_connected = self.failover_members.iter().filter(|&&m| m != from).any(|&m| self.sees(now, m));
        ArbiterAnswer::Pong {
            incarnation: self.incarnation,
            epoch: self.epoch,
            primary: self.primary,
            eligible: self.eligible,
            mode_seq: self.mode_seq,
            other_connected,
        }
    }

    /// Whether the epoch a request carries is plausible (see [`check_epoch`]) against the
    /// arbiter's record. A request that is not must be refused before [`Arbiter::handle`]:
    /// the record never holds an epoch nobody can follow.
    pub fn check(&self, request: &ArbiterRequest) -> Result<(), ImplausibleEpoch> {
        let (ArbiterRequest::Ping { epoch, .. } | ArbiterRequest::Takeover { epoch }) = *request;
        check_epoch(epoch, self.epoch)
    }

    /// Answers one request from `from`, received at `now` on the arbiter's clock.
    pub fn handle(&mut self, now: Millis, from: MemberId, request: &ArbiterRequest) -> ArbiterAnswer {
        self.last_seen.insert(from, now);
        match *request {
            ArbiterRequest::Ping { epoch, primary, eligible, mode_seq } => {
                if !primary {
                    return self.pong(now, from);
                }
                if epoch < self.epoch {
                    return ArbiterAnswer::NewerEpoch { epoch: self.epoch };
                }
                if epoch > self.epoch {
                    self.epoch = epoch;
                    self.primary = Some(from);
                    self.eligible = None;
                    self.mode_seq = 0;
                    self.granted = None;
                }
                if self.primary == Some(from) {
                    self.primary_seen = now;
                    if mode_seq > self.mode_seq {
                        self.mode_seq = mode_seq;
                        self.eligible = eligible;
                    }
                }
                self.pong(now, from)
            }
            ArbiterRequest::Takeover { epoch } => {
                if self.granted == Some((from, epoch)) && self.primary == Some(from) {
                    return ArbiterAnswer::Granted { epoch: self.epoch };
                }
                if epoch < self.epoch {
                    return ArbiterAnswer::NewerEpoch { epoch: self.epoch };
                }
                let primary_lost = now.saturating_sub(self.primary_seen) >= self.qos;
                if epoch == self.epoch && self.eligible == Some(from) && self.primary != Some(from) && primary_lost {
                    self.epoch = next_epoch(self.epoch, from);
                    self.primary = Some(from);
                    self.eligible = None;
                    self.mode_seq = 0;
                    self.primary_seen = now;
                    self.granted = Some((from, epoch));
                    return ArbiterAnswer::Granted { epoch: self.epoch };
                }
                ArbiterAnswer::Refused { epoch: self.epoch }
            }
        }
    }
}
