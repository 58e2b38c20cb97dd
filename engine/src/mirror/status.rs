//! What a running mirror member reports, and what operators can ask of it.
//!
//! The management API (`GET /api/mirror/status`, `/mirror_status`), the `MIRROR STATUS`
//! RESP command, `engine mirror status` and `engine qlist` all read [`MirrorStatus`]; the
//! operator verbs all go through [`MirrorControl::act`]. The words in every status field are
//! the reference product's (Mirror Monitor), so operators read what they already know.

use super::config::MemberType;
use crate::error::EngineError;
pub use crate::mirror::failover::{DatabaseStatus, MemberStatus};
use serde::{Deserialize, Serialize};

/// One member's view of the mirror.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorStatus {
    pub mirror: String,
    /// This member's name.
    pub member: String,
    #[serde(rename = "type")]
    pub member_type: MemberType,
    /// Member status (Primary, Backup, Connected, In Trouble, ...), and why a member that
    /// cannot rejoin cannot.
    pub status: StatusLine,
    /// The primary's name, as this member knows it.
    pub primary: Option<String>,
    /// This member's durable epoch.
    pub epoch: u64,
    /// Arbiter Controlled or Agent Controlled.
    pub failover_mode: String,
    /// The arbiter line, e.g. "Both failover members are connected to the arbiter".
    pub arbiter: String,
    pub no_failover: bool,
    /// This member's mirror journal: last and durable positions.
    pub journal_position: u64,
    pub durable_position: u64,
    /// On the primary: the highest position acknowledged to clients.
    pub acked_position: u64,
    /// Every member as this one sees it (on the primary: all of them; elsewhere: itself
    /// and the primary).
    pub members: Vec<MemberLine>,
    pub databases: Vec<MirroredDatabase>,
}

/// One line of the Mirror Monitor's member table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLine {
    pub name: String,
    #[serde(rename = "type")]
    pub member_type: MemberType,
    pub status: MemberStatus,
    /// Active, Caught up, `<time> behind`, or `Disconnected on <time>`.
    pub journal_transfer: String,
    /// Caught up, `<time> behind`, or Disconnected.
    pub dejournaling: String,
    /// Received by the primary's stream but not yet in the member's journal.
    pub journal_latency: Latency,
    /// In the member's journal but not yet applied to its databases.
    pub database_latency: Latency,
    /// The member's acknowledged (durable) mirror journal position.
    pub position: u64,
    /// Milliseconds since a message from this member last arrived (None: never, or this
    /// member itself).
    #[serde(default)]
    pub last_heard_ms: Option<u64>,
}

/// A latency as the Mirror Monitor shows it: time, bytes and journal files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub time_ms: u64,
    pub bytes: u64,
    pub files: u64,
}

/// A mirrored database on this member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirroredDatabase {
    pub name: String,
    pub status: DatabaseStatus,
    /// The mirror journal position the database reflects.
    pub position: u64,
}

/// A member's status as its own Mirror Monitor shows it: the status, and, when the member
/// cannot rejoin without being rebuilt, why. On the wire it stays one string, the word
/// alone or `Waiting (data is inconsistent with the mirror: <why>)`, as it always was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub status: MemberStatus,
    /// Why this member cannot rejoin (it holds records the primary never had).
    pub problem: Option<String>,
}

const PROBLEM_PREFIX: &str = " (data is inconsistent with the mirror: ";

impl StatusLine {
    pub fn new(status: MemberStatus) -> StatusLine {
        StatusLine { status, problem: None }
    }
}

impl From<MemberStatus> for StatusLine {
    fn from(status: MemberStatus) -> StatusLine {
        StatusLine::new(status)
    }
}

impl PartialEq<MemberStatus> for StatusLine {
    fn eq(&self, other: &MemberStatus) -> bool {
        self.status == *other
    }
}

impl std::fmt::Display for StatusLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            None => write!(f, "{}", self.status),
            Some(why) => write!(f, "{}{PROBLEM_PREFIX}{why})", self.status),
        }
    }
}

impl std::str::FromStr for StatusLine {
    type Err = String;

    fn from_str(text: &str) -> Result<StatusLine, String> {
        let (word, problem) = match text.split_once(PROBLEM_PREFIX) {
            Some((word, rest)) => (word, Some(rest.strip_suffix(')').unwrap_or(rest).to_string())),
            None => (text, None),
        };
        let status = MemberStatus::from_word(word).ok_or_else(|| format!("unknown member status {word:?}"))?;
        Ok(StatusLine { status, problem })
    }
}

impl Serialize for StatusLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StatusLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StatusLine, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Operator actions (management API, `engine mirror <verb>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum MirrorAction {
    /// Make this member the first primary of the configured mirror.
    Create,
    /// Join the configured mirror as the type the configuration gives this member.
    Join,
    /// On the primary: mark a database mirrored (it must exist on every member that is to
    /// hold it; members activate their copy).
    AddDatabase {
        name: String,
    },
    /// On a member: start dejournaling into a copy of a mirrored database, catching up from
    /// the position recorded in its file.
    ActivateDatabase {
        name: String,
    },
    /// Stop mirroring a database (it stays, as a local database).
    RemoveDatabase {
        name: String,
    },
    /// On the primary: hand over to the active backup.
    PlannedFailover,
    SetNoFailover,
    ClearNoFailover,
    /// On a DR async: become a failover member (the backup, with a primary to follow), or
    /// primary after both failover members are lost.
    PromoteDr,
    /// On a failover member that is not primary: become a DR async member.
    DemoteToDr,
    /// On a backup or async: stop mirroring on this member until `start-mirror` or the
    /// engine's next start (it keeps its databases, read-only, and stops receiving).
    StopMirror,
    /// Start mirroring again on a member where it was stopped.
    StartMirror,
    /// Fault injection (only when the engine allows it): drop mirror traffic to and from
    /// these members (or `ARBITER`).
    FaultDrop {
        peers: Vec<String>,
    },
    FaultHeal,
    /// Fault injection (only when the engine allows it): the mirror task hits a broken
    /// invariant (panics), to show that the whole process stops, not the task alone.
    FaultPanic,
}

/// The running mirror, as the servers see it.
pub trait MirrorControl: Send + Sync {
    /// `None` while this instance belongs to no mirror.
    fn status(&self) -> Option<MirrorStatus>;
    /// Carries out an operator action; returns a sentence saying what happened.
    fn act(&self, action: MirrorAction) -> Result<String, EngineError>;
    /// This member is the primary and may acknowledge commits *now*, judged at the time
    /// of the call (its acknowledgement lease), not from a status published earlier: the
    /// load balancers' health check (`/mirror_status`) answers from this.
    fn acknowledging_primary(&self) -> bool;
    /// Where this member's mirrored commits spend their time (`None`: not measured).
    fn commit_stages(&self) -> Option<std::sync::Arc<crate::mirror::stages::CommitStages>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed statuses travel as the words they always were: every member status and
    /// database status is its Mirror Monitor word in JSON, and a status line with a
    /// problem is one string that reads back as the same status and problem.
    #[test]
    fn statuses_travel_as_their_words() {
        for s in MemberStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.to_string()));
            assert_eq!(MemberStatus::from_word(&s.to_string()), Some(s));
        }
        for d in DatabaseStatus::ALL {
            assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!(d.word()));
        }
        let inconsistent = StatusLine { status: MemberStatus::Waiting, problem: Some("rebuild (x)".into()) };
        let text = serde_json::to_string(&inconsistent).unwrap();
        assert_eq!(text, r#""Waiting (data is inconsistent with the mirror: rebuild (x))""#);
        assert_eq!(serde_json::from_str::<StatusLine>(&text).unwrap(), inconsistent);
        assert_eq!(serde_json::from_str::<StatusLine>(r#""In Trouble""#).unwrap(), MemberStatus::InTrouble);
        assert!(serde_json::from_str::<StatusLine>(r#""Sleeping""#).is_err());
        assert!(serde_json::from_str::<MemberStatus>(r#""InTrouble""#).is_err(), "only the words");
    }
}
