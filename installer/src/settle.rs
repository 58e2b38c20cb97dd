//! Waiting until what a trainer verb caused has settled, so a script (or a trainer typing
//! fast) can run the next command at once: `kill` of the primary returns once a new
//! primary takes writes, `restart` once the member is back in its role and caught up, and
//! so on. Each wait polls the members' Mirror Monitors (there is no event to subscribe to
//! across processes) through the one bounded loop, and gives up with an error that names
//! the member and the status it was left in.
//!
//! Words: a member *takes writes* when its own status is `Primary` (a new primary reports
//! `Transition` until it has rolled back and opened); a member is *in its role and caught
//! up* when it is primary, or when the primary lists it as its active backup or as a
//! connected async with journal transfer and dejournaling caught up, and it says so itself.

use crate::manifest::{Manifest, MemberType};
use crate::target::{Proc, Target};
use engine::mirror::status::{MemberLine, MemberStatus, MirrorStatus};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long a verb waits by default for the state it caused.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// A paused or hung engine must not stall a poll.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How often the members are read while waiting.
const POLL: Duration = Duration::from_millis(20);

/// One mirror member as one poll saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub name: String,
    pub member_type: MemberType,
    pub proc: Proc,
    /// Its own Mirror Monitor; None when it is not running, does not answer, or is no
    /// mirror member yet.
    pub status: Option<MirrorStatus>,
}

impl Seen {
    /// The status word as `mirrorlab status` shows it (lower case).
    pub fn word(&self) -> String {
        match (self.proc, &self.status) {
            (Proc::Down, _) => "down".into(),
            (Proc::Paused, _) => "paused".into(),
            (Proc::Running, None) => "not answering".into(),
            (Proc::Running, Some(s)) => s.status.to_string().to_ascii_lowercase(),
        }
    }

    fn is(&self, status: MemberStatus) -> bool {
        self.proc == Proc::Running && self.status.as_ref().is_some_and(|s| s.status == status)
    }
}

/// Every mirror member of a lab at one moment.
#[derive(Clone, Debug)]
pub struct View {
    pub members: Vec<Seen>,
}

impl View {
    pub fn read(m: &Manifest, t: &dyn Target) -> View {
        let members = m
            .mirror_members()
            .map(|x| {
                let proc = t.proc_state(&x.name);
                let status = (proc == Proc::Running)
                    .then(|| t.api(&x.name).probe("/api/mirror/status", PROBE_TIMEOUT).ok())
                    .flatten()
                    .and_then(|v| serde_json::from_value::<MirrorStatus>(v["status"].clone()).ok());
                Seen { name: x.name.clone(), member_type: x.member_type, proc, status }
            })
            .collect();
        View { members }
    }

    pub fn member(&self, name: &str) -> Option<&Seen> {
        self.members.iter().find(|s| s.name == name)
    }

    /// The member that takes writes, if exactly one does.
    pub fn primary(&self) -> Option<&Seen> {
        let mut primaries = self.members.iter().filter(|s| s.is(MemberStatus::Primary));
        match (primaries.next(), primaries.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        }
    }

    /// The primary's line for `name`, if a primary answers.
    fn primary_line(&self, name: &str) -> Option<&MemberLine> {
        self.primary()?.status.as_ref()?.members.iter().find(|l| l.name == name)
    }

    /// `name` is primary, or the primary's active backup or a connected async, caught up
    /// in the primary's eyes and in its own.
    pub fn in_role_caught_up(&self, name: &str) -> bool {
        let Some(me) = self.member(name) else { return false };
        if me.is(MemberStatus::Primary) && self.primary().is_some_and(|p| p.name == name) {
            return true;
        }
        let Some(line) = self.primary_line(name) else { return false };
        let caught_up = |s: &str| s == "Caught up" || s == "Active";
        let own = if me.member_type == MemberType::Failover { MemberStatus::Backup } else { MemberStatus::Connected };
        line.status == own && caught_up(&line.journal_transfer) && line.dejournaling == "Caught up" && me.is(own)
    }

    /// The primary no longer counts on `name`: it lists it neither as its active backup
    /// nor as a connected member (or `name` was the primary and someone else is now).
    pub fn lost(&self, name: &str) -> bool {
        match self.primary() {
            Some(p) if p.name == name => false,
            Some(_) => self
                .primary_line(name)
                .is_none_or(|l| !matches!(l.status, MemberStatus::Backup | MemberStatus::Connected)),
            None => false,
        }
    }

    /// One line per member: what a timeout error shows.
    pub fn describe(&self) -> String {
        self.members.iter().map(|s| format!("{} {}", s.name, s.word())).collect::<Vec<_>>().join(", ")
    }

    /// What still differs from a settled mirror (one primary, every running member in
    /// its role and caught up); empty when settled.
    pub fn unsettled(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.primary().is_none() {
            let primaries: Vec<&str> =
                self.members.iter().filter(|s| s.is(MemberStatus::Primary)).map(|s| s.name.as_str()).collect();
            out.push(if primaries.is_empty() {
                "no member takes writes".to_string()
            } else {
                format!("several members say they are primary: {}", primaries.join(", "))
            });
        }
        for s in self.members.iter().filter(|s| s.proc == Proc::Running) {
            if !self.in_role_caught_up(&s.name) {
                out.push(format!("{} is {}", s.name, s.word()));
            }
        }
        out
    }
}

/// What a verb waited for and what it found.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Settled {
    /// The member that took writes before the verb.
    pub old_primary: Option<String>,
    /// The member that takes writes now.
    pub primary: Option<String>,
    /// The primary's epoch now.
    pub epoch: Option<u64>,
    /// How long the wait took.
    pub seconds: f64,
    /// What it settled on, in a sentence ("MIRRORB took over as primary (epoch 4)").
    pub what: String,
    /// Why the verb waited for no change (none is coming), when so.
    pub note: Option<String>,
}

/// A wait that ran out: the member it was about and the status it was left in.
#[derive(Debug, thiserror::Error)]
#[error("gave up after {timeout:?} waiting for {what}: {member} is {status}\n  members now: {members}\n  see `mirrorlab status`; `mirrorlab wait` (or `--timeout SECONDS`) waits longer")]
pub struct NotSettled {
    pub what: String,
    pub member: String,
    pub status: String,
    pub members: String,
    pub timeout: Duration,
}

/// Polls the lab until `done` holds for a view, or `timeout` passes. `about` names the
/// member the error reports (anything else, e.g. `MIRROR`: the whole mirror).
pub fn until(
    m: &Manifest,
    t: &dyn Target,
    timeout: Duration,
    what: &str,
    about: &str,
    mut done: impl FnMut(&View) -> bool,
) -> Result<View, NotSettled> {
    let mut last = View { members: vec![] };
    let ok = engine::wait::until(timeout, POLL, || {
        last = View::read(m, t);
        done(&last)
    });
    if ok {
        return Ok(last);
    }
    // A wait about the whole mirror reports what is still unsettled in it.
    let (member, status) = match last.member(about) {
        Some(s) => (about.to_string(), s.word()),
        None => ("the mirror".to_string(), format!("unsettled ({})", last.unsettled().join("; "))),
    };
    Err(NotSettled { what: what.into(), member, status, members: last.describe(), timeout })
}

/// `APP1: data server PHONEBOOK_DS is Trouble`, or None when each of the app member's
/// data servers is Normal (GET /api/ecp, as it reports them) and, given the mirror's
/// `primary`, a mirror data server is attached to it (an app server still Normal on a
/// killed primary has not noticed yet).
pub fn ecp_not_normal(m: &Manifest, t: &dyn Target, app: &str, primary: Option<&str>) -> Option<String> {
    let servers = match t.api(app).probe("/api/ecp", PROBE_TIMEOUT) {
        Ok(v) => v["servers"].as_array().cloned().unwrap_or_default(),
        Err(e) => return Some(format!("{app}: GET /api/ecp failed ({e})")),
    };
    let mut bad = vec![];
    for d in &m.ecp.data_servers {
        let s = servers.iter().find(|s| s["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&d.name)));
        let member = s.and_then(|s| s["member"].as_str()).unwrap_or_default();
        match s.map(|s| s["state"].as_str().unwrap_or("unknown")) {
            Some("Normal") => match (&d.at, primary) {
                (crate::manifest::DataServerAt::Mirror, Some(p)) if !member.eq_ignore_ascii_case(p) => {
                    bad.push(format!("data server {} is Normal on {member}, not yet on the primary {p}", d.name))
                }
                _ => {}
            },
            Some(state) => bad.push(format!("data server {} is {state}", d.name)),
            None => bad.push(format!("data server {} is not configured", d.name)),
        }
    }
    (!bad.is_empty()).then(|| format!("{app}: {}", bad.join(", ")))
}

/// Waits until every running app member reports each of its data servers Normal, on the
/// mirror's `primary` when given (after a failover an app server re-attaches to the new
/// primary: the verb that caused it returns once it has). Ok(None) in a lab without app
/// members; else what it found.
pub fn apps_normal(
    m: &Manifest,
    t: &dyn Target,
    primary: Option<&str>,
    timeout: Duration,
) -> Result<Option<String>, NotSettled> {
    let apps: Vec<String> = m.app_members().map(|x| x.name.clone()).collect();
    if apps.is_empty() {
        return Ok(None);
    }
    let mut waiting: Vec<String> = vec![];
    let ok = engine::wait::until(timeout, POLL, || {
        waiting = apps
            .iter()
            .filter(|a| t.proc_state(a) == Proc::Running)
            .filter_map(|a| ecp_not_normal(m, t, a, primary))
            .collect();
        waiting.is_empty()
    });
    if ok {
        let on = primary.map(|p| format!(" on {p}")).unwrap_or_default();
        return Ok(Some(format!("app members' data servers Normal{on} ({})", apps.join(", "))));
    }
    let first = waiting.first().cloned().unwrap_or_default();
    let (member, status) = first.split_once(": ").map(|(a, b)| (a.to_string(), b.to_string())).unwrap_or_default();
    Err(NotSettled {
        what: "the app members' data servers to be Normal".into(),
        member,
        status,
        members: waiting.join("; "),
        timeout,
    })
}

/// Why no failover will follow the loss of `primary` (killed, hung or cut off), or None
/// when one should: checked on the view from just before the verb.
pub fn no_failover_because(m: &Manifest, before: &View, primary: &str, needs_arbiter: bool) -> Option<String> {
    let p = before.member(primary)?.status.as_ref()?;
    if p.no_failover {
        return Some(format!(
            "no failover: failover is disabled on {primary} (no-failover is set); the mirror has no primary until {primary} is back"
        ));
    }
    let backup = before.members.iter().find(|s| s.name != primary && s.member_type == MemberType::Failover);
    match backup {
        None => return Some(format!("no failover: {primary} has no failover partner; the mirror has no primary until it is back")),
        Some(b) if !b.is(MemberStatus::Backup) => {
            return Some(format!(
                "no failover: {} was {}, not the active backup, so it cannot take over without losing commits; the mirror has no primary until {primary} is back",
                b.name,
                b.word()
            ))
        }
        Some(_) => {}
    }
    if needs_arbiter && m.mirror.as_ref().is_none_or(|x| !x.arbiter) {
        return Some(format!(
            "no failover: the mirror has no arbiter, so the backup cannot tell {primary} cut off from a cut link; {primary} stays primary once healed"
        ));
    }
    None
}

/// A settled outcome read off `view`, `started` being when the verb began its wait; `what`
/// says what it settled on.
pub fn outcome(view: &View, old_primary: Option<String>, started: Instant, what: impl Into<String>) -> Settled {
    let primary = view.primary();
    Settled {
        old_primary,
        primary: primary.map(|p| p.name.clone()),
        epoch: primary.and_then(|p| p.status.as_ref()).map(|s| s.epoch),
        seconds: started.elapsed().as_secs_f64(),
        what: what.into(),
        note: None,
    }
}

/// An outcome with no wait: nothing is coming, and `why`.
pub fn noted(view: &View, old_primary: Option<String>, started: Instant, why: String) -> Settled {
    Settled { note: Some(why.clone()), ..outcome(view, old_primary, started, why) }
}

/// "MIRRORB is primary (epoch 4)", or "no member takes writes".
pub fn primary_phrase(view: &View) -> String {
    match view.primary() {
        Some(p) => format!("{} is primary (epoch {})", p.name, p.status.as_ref().map_or(0, |s| s.epoch)),
        None => "no member takes writes".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::mirror::config::MemberType as EngineType;
    use engine::mirror::status::Latency;

    fn line(name: &str, status: &str, transfer: &str, dejournaling: &str) -> MemberLine {
        MemberLine {
            name: name.into(),
            member_type: EngineType::Failover,
            status: MemberStatus::from_word(status).expect("a status word"),
            journal_transfer: transfer.into(),
            dejournaling: dejournaling.into(),
            journal_latency: Latency::default(),
            database_latency: Latency::default(),
            position: 0,
            last_heard_ms: None,
        }
    }

    fn seen(name: &str, t: MemberType, status: &str, lines: Vec<MemberLine>) -> Seen {
        Seen {
            name: name.into(),
            member_type: t,
            proc: Proc::Running,
            status: Some(MirrorStatus {
                mirror: "M".into(),
                member: name.into(),
                member_type: EngineType::Failover,
                status: status.parse().expect("a status word"),
                primary: None,
                epoch: 7,
                failover_mode: String::new(),
                arbiter: String::new(),
                no_failover: false,
                journal_position: 0,
                durable_position: 0,
                acked_position: 0,
                members: lines,
                databases: vec![],
            }),
        }
    }

    fn lab(a: &str, b: &str, b_on_a: MemberLine) -> View {
        View {
            members: vec![
                seen("A", MemberType::Failover, a, vec![line("A", a, "N/A", "N/A"), b_on_a]),
                seen("B", MemberType::Failover, b, vec![]),
            ],
        }
    }

    #[test]
    fn a_backup_is_caught_up_only_when_the_primary_and_itself_agree() {
        let v = lab("Primary", "Backup", line("B", "Backup", "Active", "Caught up"));
        assert!(v.in_role_caught_up("A") && v.in_role_caught_up("B"));
        assert!(v.unsettled().is_empty());
        // The primary has not marked it active yet.
        let v = lab("Primary", "Synchronizing", line("B", "Synchronizing", "3 records behind", "0.1 s behind"));
        assert!(!v.in_role_caught_up("B"));
        assert_eq!(v.unsettled(), ["B is synchronizing"]);
        // It says Backup but the primary's monitor has not caught up with it.
        let v = lab("Primary", "Backup", line("B", "Down", "Disconnected on today", "Disconnected"));
        assert!(!v.in_role_caught_up("B") && v.lost("B"));
    }

    #[test]
    fn two_members_saying_primary_is_not_a_primary() {
        let v = lab("Primary", "Primary", line("B", "Backup", "Active", "Caught up"));
        assert!(v.primary().is_none());
        assert!(v.unsettled()[0].contains("several members say they are primary: A, B"), "{:?}", v.unsettled());
        let v = lab("Transition", "Waiting", line("B", "Backup", "Active", "Caught up"));
        assert_eq!(v.unsettled()[0], "no member takes writes");
    }

    #[test]
    fn a_primary_without_an_active_backup_has_no_failover_and_says_why() {
        let m = crate::manifest::load_str(
            "m.yaml",
            "lab: t\nmembers:\n  - { name: a, type: failover }\n  - { name: b, type: failover }\nmirror: { name: M, primary: a, arbiter: false }\n",
            std::path::Path::new("."),
            &crate::template::Inputs::default(),
        )
        .unwrap();
        let ready = lab("Primary", "Backup", line("B", "Backup", "Active", "Caught up"));
        assert_eq!(no_failover_because(&m, &ready, "A", false), None);
        let why = no_failover_because(&m, &ready, "A", true).unwrap();
        assert!(why.contains("no arbiter"), "{why}");
        let behind = lab("Primary", "Synchronizing", line("B", "Synchronizing", "3 records behind", "Caught up"));
        let why = no_failover_because(&m, &behind, "A", false).unwrap();
        assert!(why.contains("B was synchronizing, not the active backup"), "{why}");
    }
}
