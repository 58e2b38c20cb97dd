//! The arbiter's facts: which failover members of which mirrors are connected to it.
//!
//! A pure struct: no sockets, no clock. The server passes the time of every event in, so
//! tests drive heartbeat expiry by moving an `Instant` forward. The arbiter decides
//! nothing about failover; it only answers "do I see the other member?".
//!
//! Invariant: a mirror holds at most [`MAX_MEMBERS_PER_MIRROR`] registrations, each owned
//! by exactly one connection; a member name is held by at most one connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use thiserror::Error;

/// A mirror has two failover members; the arbiter knows nothing of asyncs.
pub const MAX_MEMBERS_PER_MIRROR: usize = 2;
/// Most mirrors one arbiter serves.
pub const MAX_MIRRORS: usize = 1024;
/// Longest mirror or member name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// Identifies one connection to the agent (assigned by the server, never reused).
pub type ConnId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ArbiterError {
    #[error("DUPLICATE member {member} of mirror {mirror} is already connected from another connection")]
    Duplicate { mirror: String, member: String },
    #[error("FULL mirror {mirror} already has failover members {first} and {second} connected")]
    Full { mirror: String, first: String, second: String },
    #[error("ERR this arbiter already serves {MAX_MIRRORS} mirrors")]
    TooManyMirrors,
    #[error("ERR {what} name must be 1 to {MAX_NAME_BYTES} printable ASCII characters")]
    BadName { what: &'static str },
    #[error("NOTREGISTERED member {member} of mirror {mirror} is not registered on this connection: send ARBITER HELLO first")]
    NotRegistered { mirror: String, member: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Registration {
    conn: ConnId,
    last_seen: Instant,
}

/// One member as [`Arbiter::status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub member: String,
    /// Milliseconds since its last HELLO or PING.
    pub last_seen_ms: u64,
    pub connected: bool,
}

#[derive(Debug)]
pub struct Arbiter {
    member_timeout: Duration,
    mirrors: BTreeMap<String, BTreeMap<String, Registration>>,
}

fn check_name(name: &str, what: &'static str) -> Result<(), ArbiterError> {
    let ok = !name.is_empty() && name.len() <= MAX_NAME_BYTES && name.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(ArbiterError::BadName { what })
    }
}

impl Arbiter {
    pub fn new(member_timeout: Duration) -> Arbiter {
        Arbiter { member_timeout, mirrors: BTreeMap::new() }
    }

    pub fn member_timeout(&self) -> Duration {
        self.member_timeout
    }

    fn live(&self, r: &Registration, now: Instant) -> bool {
        now.saturating_duration_since(r.last_seen) <= self.member_timeout
    }

    /// Registers `conn` as failover member `member` of `mirror`. A registration whose
    /// heartbeat expired may be taken over by a new connection (the old one then gets
    /// `NOTREGISTERED` on its next PING); a live one may not.
    pub fn hello(&mut self, mirror: &str, member: &str, conn: ConnId, now: Instant) -> Result<(), ArbiterError> {
        check_name(mirror, "mirror")?;
        check_name(member, "member")?;
        if !self.mirrors.contains_key(mirror) && self.mirrors.len() >= MAX_MIRRORS {
            return Err(ArbiterError::TooManyMirrors);
        }
        let timeout = self.member_timeout;
        let members = self.mirrors.entry(mirror.to_string()).or_default();
        let live = |r: &Registration| now.saturating_duration_since(r.last_seen) <= timeout;
        if let Some(r) = members.get(member) {
            if r.conn != conn && live(r) {
                return Err(ArbiterError::Duplicate { mirror: mirror.into(), member: member.into() });
            }
        } else if members.len() >= MAX_MEMBERS_PER_MIRROR {
            // Make room by dropping expired registrations; live ones keep their place.
            members.retain(|_, r| live(r));
            if members.len() >= MAX_MEMBERS_PER_MIRROR {
                let mut names = members.keys();
                let first = names.next().cloned().unwrap_or_default();
                let second = names.next().cloned().unwrap_or_default();
                return Err(ArbiterError::Full { mirror: mirror.into(), first, second });
            }
        }
        members.insert(member.to_string(), Registration { conn, last_seen: now });
        Ok(())
    }

    /// A heartbeat from `member`, which `conn` must hold.
    pub fn ping(&mut self, mirror: &str, member: &str, conn: ConnId, now: Instant) -> Result<(), ArbiterError> {
        match self.mirrors.get_mut(mirror).and_then(|m| m.get_mut(member)) {
            Some(r) if r.conn == conn => {
                r.last_seen = now;
                Ok(())
            }
            _ => Err(ArbiterError::NotRegistered { mirror: mirror.into(), member: member.into() }),
        }
    }

    /// The connection closed: every registration it held ends.
    pub fn disconnect(&mut self, conn: ConnId) {
        for members in self.mirrors.values_mut() {
            members.retain(|_, r| r.conn != conn);
        }
        self.mirrors.retain(|_, members| !members.is_empty());
    }

    /// Whether the failover member of `mirror` other than `member` is connected now.
    pub fn sees_other(&self, mirror: &str, member: &str, now: Instant) -> bool {
        self.mirrors
            .get(mirror)
            .is_some_and(|members| members.iter().any(|(name, r)| name != member && self.live(r, now)))
    }

    /// Every mirror and its members, sorted by name.
    pub fn status(&self, now: Instant) -> Vec<(String, Vec<MemberStatus>)> {
        self.mirrors
            .iter()
            .map(|(mirror, members)| {
                let members = members
                    .iter()
                    .map(|(name, r)| MemberStatus {
                        member: name.clone(),
                        last_seen_ms: u64::try_from(now.saturating_duration_since(r.last_seen).as_millis())
                            .unwrap_or(u64::MAX),
                        connected: self.live(r, now),
                    })
                    .collect();
                (mirror.clone(), members)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(2000);

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn members_see_each_other_both_ways_while_connected() {
        let t0 = Instant::now();
        let mut a = Arbiter::new(TIMEOUT);
        a.hello("M", "A", 1, t0).unwrap();
        assert!(!a.sees_other("M", "A", t0), "B is not connected yet");
        a.hello("M", "B", 2, ms(t0, 10)).unwrap();
        assert!(a.sees_other("M", "A", ms(t0, 10)));
        assert!(a.sees_other("M", "B", ms(t0, 10)));
        a.disconnect(2);
        assert!(!a.sees_other("M", "A", ms(t0, 20)));
        assert!(a.sees_other("M", "B", ms(t0, 20)), "A is still there");
    }

    #[test]
    fn heartbeats_keep_a_member_connected_and_silence_expires_it() {
        let t0 = Instant::now();
        let mut a = Arbiter::new(TIMEOUT);
        a.hello("M", "A", 1, t0).unwrap();
        a.hello("M", "B", 2, t0).unwrap();
        a.ping("M", "B", 2, ms(t0, 1500)).unwrap();
        // At 2500 ms B pinged 1000 ms ago; A has been silent for 2500 ms.
        assert!(a.sees_other("M", "A", ms(t0, 2500)));
        assert!(!a.sees_other("M", "B", ms(t0, 2500)));
        // Exactly at the timeout a member still counts; a millisecond later it does not.
        assert!(a.sees_other("M", "A", ms(t0, 3500)));
        assert!(!a.sees_other("M", "A", ms(t0, 3501)));
        let status = a.status(ms(t0, 2500));
        assert_eq!(
            status,
            vec![(
                "M".to_string(),
                vec![
                    MemberStatus { member: "A".into(), last_seen_ms: 2500, connected: false },
                    MemberStatus { member: "B".into(), last_seen_ms: 1000, connected: true },
                ]
            )]
        );
    }

    #[test]
    fn a_live_member_name_cannot_be_taken_but_an_expired_one_can() {
        let t0 = Instant::now();
        let mut a = Arbiter::new(TIMEOUT);
        a.hello("M", "A", 1, t0).unwrap();
        let err = a.hello("M", "A", 2, ms(t0, 100)).unwrap_err();
        assert_eq!(err, ArbiterError::Duplicate { mirror: "M".into(), member: "A".into() });
        assert!(err.to_string().starts_with("DUPLICATE "));
        // The same connection may say HELLO again.
        a.hello("M", "A", 1, ms(t0, 200)).unwrap();
        // After expiry a new connection takes the name over; the old one is told so.
        a.hello("M", "A", 2, ms(t0, 2300)).unwrap();
        assert!(matches!(a.ping("M", "A", 1, ms(t0, 2400)), Err(ArbiterError::NotRegistered { .. })));
        a.ping("M", "A", 2, ms(t0, 2400)).unwrap();
        // Closing the old connection does not remove the new owner's registration.
        a.disconnect(1);
        assert_eq!(a.status(ms(t0, 2400))[0].1.len(), 1);
    }

    #[test]
    fn a_third_member_is_refused_while_both_are_live() {
        let t0 = Instant::now();
        let mut a = Arbiter::new(TIMEOUT);
        a.hello("M", "A", 1, t0).unwrap();
        a.hello("M", "B", 2, t0).unwrap();
        let err = a.hello("M", "C", 3, ms(t0, 10)).unwrap_err();
        assert_eq!(err, ArbiterError::Full { mirror: "M".into(), first: "A".into(), second: "B".into() });
        a.ping("M", "A", 1, ms(t0, 2100)).unwrap();
        // B expired: C takes its place.
        a.hello("M", "C", 3, ms(t0, 2100)).unwrap();
        assert!(a.sees_other("M", "A", ms(t0, 2100)));
    }

    #[test]
    fn several_mirrors_are_independent() {
        let t0 = Instant::now();
        let mut a = Arbiter::new(TIMEOUT);
        a.hello("M1", "A", 1, t0).unwrap();
        a.hello("M1", "B", 2, t0).unwrap();
        a.hello("M2", "A", 3, t0).unwrap();
        assert!(a.sees_other("M1", "A", t0));
        assert!(!a.sees_other("M2", "A", t0));
        assert!(!a.sees_other("NOPE", "A", t0));
        // One connection may be a member of several mirrors; closing it ends them all.
        a.hello("M2", "B", 2, t0).unwrap();
        assert!(a.sees_other("M2", "A", t0));
        a.disconnect(2);
        assert!(!a.sees_other("M1", "A", t0));
        assert!(!a.sees_other("M2", "A", t0));
        assert_eq!(a.status(t0).len(), 2);
        a.disconnect(1);
        a.disconnect(3);
        assert!(a.status(t0).is_empty());
    }

    #[test]
    fn names_are_checked() {
        let mut a = Arbiter::new(TIMEOUT);
        let now = Instant::now();
        assert!(matches!(a.hello("", "A", 1, now), Err(ArbiterError::BadName { what: "mirror" })));
        assert!(matches!(a.hello("M", "a b", 1, now), Err(ArbiterError::BadName { what: "member" })));
        assert!(matches!(a.hello("M", &"x".repeat(65), 1, now), Err(ArbiterError::BadName { .. })));
        assert!(matches!(a.ping("M", "A", 1, now), Err(ArbiterError::NotRegistered { .. })));
    }
}
