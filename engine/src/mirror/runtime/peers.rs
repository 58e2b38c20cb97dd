//! Requests to the arbiter and to other members' agents (RESP, blocking, each bounded by
//! a timeout). The runtime runs them off its loop; an unanswered request simply produces
//! no event, and the failover core retries on its own schedule.

use crate::agent::status::parse_summary;
use crate::client::{Client, ClientError, Reply};
use crate::mirror::config::MemberType;
use crate::mirror::failover::{AgentAnswer, ArbiterAnswer, ArbiterRequest, InstanceState, JournalSummary, MemberId};
use crate::tls::Tls;
use std::sync::Arc;
use std::time::Duration;

/// Connect and answer timeout for arbiter and agent requests: well under the QoS, so a
/// dead peer costs one retry interval, not a failover.
pub const PEER_TIMEOUT: Duration = Duration::from_millis(800);

/// Opens a connection to an agent or the arbiter: with TLS, presenting this member's
/// certificate and believing the server only with a lab certificate naming `peer` (the
/// member whose agent it is, or [`crate::tls::ARBITER_NAME`]).
pub fn connect(address: &str, peer: &str, tls: Option<&Tls>, timeout: Duration) -> Result<Client, ClientError> {
    match tls {
        Some(tls) => Client::connect_tls(address, timeout, tls, peer),
        None => Client::connect(address, timeout),
    }
}

/// One connection to the arbiter, reopened when it fails.
pub struct ArbiterClient {
    pub address: String,
    pub mirror: String,
    pub me: MemberId,
    pub failover_members: Vec<MemberId>,
    pub qos_ms: u64,
    tls: Option<Arc<Tls>>,
    conn: Option<Client>,
}

impl ArbiterClient {
    pub fn new(
        address: String,
        mirror: String,
        me: MemberId,
        failover_members: Vec<MemberId>,
        qos_ms: u64,
        tls: Option<Arc<Tls>>,
    ) -> Self {
        ArbiterClient { address, mirror, me, failover_members, qos_ms, tls, conn: None }
    }

    pub fn ask(&mut self, request: &ArbiterRequest) -> Option<ArbiterAnswer> {
        let members = self.failover_members.iter().map(|m| m.0.to_string()).collect::<Vec<_>>().join(",");
        let mut args: Vec<String> = vec![
            "ARBITER".into(),
            "ASK".into(),
            self.mirror.clone(),
            self.me.0.to_string(),
            members,
            self.qos_ms.to_string(),
        ];
        match request {
            ArbiterRequest::Ping { epoch, primary, eligible, mode_seq } => args.extend([
                "PING".into(),
                epoch.to_string(),
                u8::from(*primary).to_string(),
                eligible.map_or("-".into(), |m| m.0.to_string()),
                mode_seq.to_string(),
            ]),
            ArbiterRequest::Takeover { epoch } => args.extend(["TAKEOVER".into(), epoch.to_string()]),
        }
        let reply = self.command(&args)?;
        parse_arbiter(&reply)
    }

    fn command(&mut self, args: &[String]) -> Option<Reply> {
        if self.conn.is_none() {
            let connected = connect(&self.address, crate::tls::ARBITER_NAME, self.tls.as_deref(), PEER_TIMEOUT);
            let mut c = match connected {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("mirror: cannot reach the arbiter at {}: {e}", self.address);
                    return None;
                }
            };
            c.set_timeout(Some(PEER_TIMEOUT)).ok()?;
            // Named, so a test's fault switch can drop this member's arbiter traffic.
            let name = format!("{}-{}", self.mirror, self.me.0);
            c.command(&[b"CLIENT", b"SETNAME", name.as_bytes()]).ok()?;
            self.conn = Some(c);
        }
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        match self.conn.as_mut()?.command(&argv) {
            Ok(r) => Some(r),
            Err(_) => {
                self.conn = None;
                None
            }
        }
    }
}

fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Simple(s) => Some(s.clone()),
        Reply::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn member(r: &Reply) -> Option<Option<MemberId>> {
    match r {
        Reply::Integer(-1) => Some(None),
        Reply::Integer(i) => u8::try_from(*i).ok().map(|m| Some(MemberId(m))),
        _ => None,
    }
}

fn parse_arbiter(reply: &Reply) -> Option<ArbiterAnswer> {
    let Reply::Array(items) = reply else { return None };
    let word = text(items.first()?)?;
    let num = |i: usize| text(items.get(i)?)?.parse::<u64>().ok();
    Some(match (word.as_str(), items.len()) {
        ("PONG", 7) => ArbiterAnswer::Pong {
            incarnation: num(1)?,
            epoch: num(2)?,
            primary: member(&items[3])?,
            eligible: member(&items[4])?,
            mode_seq: num(5)?,
            other_connected: num(6)? != 0,
        },
        ("GRANTED", 2) => ArbiterAnswer::Granted { epoch: num(1)? },
        ("REFUSED", 2) => ArbiterAnswer::Refused { epoch: num(1)? },
        ("NEWER", 2) => ArbiterAnswer::NewerEpoch { epoch: num(1)? },
        _ => return None,
    })
}

/// Asks `member`'s agent at `address` for its instance's state, after forcing it down
/// when `fence`. `None` when the agent does not answer (its host may be down: then no
/// agent-controlled takeover is possible, as in the reference).
pub fn ask_agent(
    address: &str,
    (member, name): (MemberId, &str),
    tls: Option<&Tls>,
    fence: bool,
    reason: &str,
) -> Option<(AgentAnswer, Option<MemberType>)> {
    let mut c = match connect(address, name, tls, PEER_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!("mirror: cannot reach {name}'s agent at {address}: {e}");
            return None;
        }
    };
    // A fence waits for the killed engine's lock: allow for it.
    c.set_timeout(Some(if fence { Duration::from_secs(12) } else { PEER_TIMEOUT * 3 })).ok()?;
    if fence {
        c.command(&[b"AGENT", b"FENCE", reason.as_bytes()]).ok()?;
    }
    let Reply::Array(items) = c.command(&[b"AGENT", b"STATUS"]).ok()? else { return None };
    let mut fields = std::collections::BTreeMap::new();
    for pair in items.chunks(2) {
        if let [k, v] = pair {
            fields.insert(text(k)?, text(v)?);
        }
    }
    let state = match (fields.get("state")?.as_str(), fields.get("mirror_role").map(String::as_str)) {
        ("running", Some("primary")) => InstanceState::Running { primary: true, active: false },
        ("running", _) => {
            InstanceState::Running { primary: false, active: fields.get("mirror_active").is_some_and(|a| a == "1") }
        }
        ("hung", _) => InstanceState::Hung,
        _ => InstanceState::Down,
    };
    let epoch = fields.get("epoch")?.parse().ok()?;
    let summary = parse_summary(fields.get("journal_epochs").map_or("", String::as_str))?;
    // A member's role word says whether it is a failover member now (it may have been
    // demoted to DR or promoted since the configuration was written).
    let member_type = match fields.get("mirror_role").map(String::as_str) {
        Some("primary" | "backup") => Some(MemberType::Failover),
        Some("async") => fields.get("mirror_type").and_then(|t| MemberType::from_word(t)).or(Some(MemberType::Dr)),
        _ => None,
    };
    let journal = match JournalSummary::checked(&summary) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!("mirror: the agent at {address} answered a bad journal summary: {e}");
            return None;
        }
    };
    let answer = AgentAnswer { member, state, epoch, journal };
    Some((answer, member_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbiter_replies_parse() {
        let pong = Reply::Array(vec![
            Reply::Bulk(b"PONG".to_vec()),
            Reply::Bulk(b"77".to_vec()),
            Reply::Bulk(b"16".to_vec()),
            Reply::Integer(0),
            Reply::Integer(-1),
            Reply::Bulk(b"3".to_vec()),
            Reply::Integer(1),
        ]);
        assert_eq!(
            parse_arbiter(&pong),
            Some(ArbiterAnswer::Pong {
                incarnation: 77,
                epoch: 16,
                primary: Some(MemberId(0)),
                eligible: None,
                mode_seq: 3,
                other_connected: true
            })
        );
        let granted = Reply::Array(vec![Reply::Bulk(b"GRANTED".to_vec()), Reply::Bulk(b"33".to_vec())]);
        assert_eq!(parse_arbiter(&granted), Some(ArbiterAnswer::Granted { epoch: 33 }));
        assert_eq!(parse_arbiter(&Reply::Simple("OK".into())), None);
    }
}
