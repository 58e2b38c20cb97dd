//! Mirror configuration: the mirror's name, this member, every member's type and
//! addresses, the arbiter, and the QoS timeout, with the reference product's naming rules.
//!
//! Invariant: a `MirrorConfig` that passed [`MirrorConfig::validate`] has upper-cased,
//! unique, well-formed names, at most two failover members and fourteen asyncs, this member
//! among the members, and `host:port` addresses everywhere.

use serde::{Deserialize, Serialize};

/// Longest mirror name (alphanumeric only).
pub const MAX_MIRROR_NAME: usize = 15;
/// Longest member name.
pub const MAX_MEMBER_NAME: usize = 32;
/// Characters the reference product forbids in member names (plus whitespace).
pub const FORBIDDEN_MEMBER_CHARS: &[char] = &[':', '[', ']', '#', ';', '/', '*', '=', '^', '~', ','];
pub const MAX_FAILOVER_MEMBERS: usize = 2;
pub const MAX_ASYNC_MEMBERS: usize = 14;

/// What a member is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberType {
    /// Primary or backup: takes part in automatic failover.
    Failover,
    /// Disaster-recovery async: read-only copy, promotable by an operator only.
    Dr,
    /// Read-only reporting async: never promoted.
    ReportingRo,
    /// Read-write reporting async: mirrored databases writable locally, never promoted.
    ReportingRw,
}

impl MemberType {
    pub fn is_async(self) -> bool {
        self != MemberType::Failover
    }

    /// As the Mirror Monitor shows it.
    /// The configuration's word for the type (`failover`, `dr`, `reporting-ro`, `reporting-rw`).
    pub fn word(self) -> &'static str {
        match self {
            MemberType::Failover => "failover",
            MemberType::Dr => "dr",
            MemberType::ReportingRo => "reporting-ro",
            MemberType::ReportingRw => "reporting-rw",
        }
    }

    /// The type a [`MemberType::word`] names.
    pub fn from_word(word: &str) -> Option<MemberType> {
        [MemberType::Failover, MemberType::Dr, MemberType::ReportingRo, MemberType::ReportingRw]
            .into_iter()
            .find(|t| t.word() == word)
    }

    pub fn label(self) -> &'static str {
        match self {
            MemberType::Failover => "Failover",
            MemberType::Dr => "Disaster Recovery",
            MemberType::ReportingRo => "Read-Only Reporting",
            MemberType::ReportingRw => "Read-Write Reporting",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub member_type: MemberType,
    /// Superserver (client protocol) address, `host:port`, as clients reach it.
    pub superserver: String,
    /// Mirror data channel, `host:port`.
    pub mirror_address: String,
    /// The member's agent, `host:port`.
    pub agent: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// 1–15 alphanumeric characters, upper-cased.
    pub name: String,
    /// Which of `members` this instance is.
    pub this_member: String,
    /// Quality-of-service timeout in milliseconds (see docs/design/failover.md).
    #[serde(default = "default_qos_ms")]
    pub qos_ms: u32,
    /// The arbiter's agent, `host:port`; none means agent-controlled failover only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arbiter: Option<String>,
    pub members: Vec<MemberConfig>,
}

/// Our default QoS timeout, owned by the failover core; the reasoning is in
/// docs/design/failover.md.
pub use super::failover::DEFAULT_QOS_MS;

fn default_qos_ms() -> u32 {
    DEFAULT_QOS_MS
}

/// Smallest and largest QoS accepted: below 300 ms scheduling noise alone causes false
/// failovers; above 60 s nobody would call it high availability.
pub const QOS_RANGE_MS: (u32, u32) = (300, 60_000);

impl MirrorConfig {
    /// The same configuration as the engine keeps it, for comparing two with `==`: names
    /// upper-cased and trimmed, an empty arbiter as none, members in name order (their
    /// order says nothing). Checks nothing: see [`MirrorConfig::validate`].
    pub fn normalised(&self) -> MirrorConfig {
        let mut c = self.clone();
        c.name = c.name.trim().to_ascii_uppercase();
        c.this_member = c.this_member.trim().to_ascii_uppercase();
        c.arbiter = c.arbiter.filter(|a| !a.trim().is_empty());
        for m in &mut c.members {
            m.name = m.name.trim().to_ascii_uppercase();
        }
        c.members.sort_by(|a, b| a.name.cmp(&b.name));
        c
    }

    /// Normalises names (upper case) and checks every rule; all problems at once, each
    /// naming the field.
    pub fn validate(mut self) -> Result<MirrorConfig, Vec<String>> {
        let mut problems = Vec::new();
        self.name = self.name.trim().to_ascii_uppercase();
        if self.name.is_empty()
            || self.name.len() > MAX_MIRROR_NAME
            || !self.name.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            problems.push(format!("mirror name {:?}: use 1-{MAX_MIRROR_NAME} letters or digits", self.name));
        }
        if !(QOS_RANGE_MS.0..=QOS_RANGE_MS.1).contains(&self.qos_ms) {
            problems.push(format!("qos_ms {}: must be between {} and {}", self.qos_ms, QOS_RANGE_MS.0, QOS_RANGE_MS.1));
        }
        if let Some(a) = &self.arbiter {
            check_address("arbiter", a, &mut problems);
        }
        self.this_member = self.this_member.trim().to_ascii_uppercase();
        let mut seen = std::collections::BTreeSet::new();
        for m in &mut self.members {
            m.name = m.name.trim().to_ascii_uppercase();
            if let Err(e) = check_member_name(&m.name) {
                problems.push(e);
            }
            if !seen.insert(m.name.clone()) {
                problems.push(format!("member {}: listed twice", m.name));
            }
            check_address(&format!("member {} superserver", m.name), &m.superserver, &mut problems);
            check_address(&format!("member {} mirror_address", m.name), &m.mirror_address, &mut problems);
            check_address(&format!("member {} agent", m.name), &m.agent, &mut problems);
        }
        let failover = self.members.iter().filter(|m| !m.member_type.is_async()).count();
        let asyncs = self.members.len() - failover;
        if failover == 0 {
            problems.push("members: a mirror needs at least one failover member".into());
        }
        if failover > MAX_FAILOVER_MEMBERS {
            problems.push(format!("members: {failover} failover members; a mirror has at most {MAX_FAILOVER_MEMBERS}"));
        }
        if asyncs > MAX_ASYNC_MEMBERS {
            problems.push(format!("members: {asyncs} async members; a mirror has at most {MAX_ASYNC_MEMBERS}"));
        }
        if !self.members.iter().any(|m| m.name == self.this_member) {
            problems.push(format!("this_member {}: not among the members", self.this_member));
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(problems)
        }
    }

    pub fn this(&self) -> Option<&MemberConfig> {
        self.members.iter().find(|m| m.name == self.this_member)
    }
}

/// Member names: at most 32 characters, none of `: [ ] # ; / * = ^ ~ ,` or whitespace.
pub fn check_member_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > MAX_MEMBER_NAME {
        return Err(format!("member name {name:?}: use 1-{MAX_MEMBER_NAME} characters"));
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || FORBIDDEN_MEMBER_CHARS.contains(c)) {
        return Err(format!("member name {name:?}: {c:?} is not allowed (nor spaces or any of : [ ] # ; / * = ^ ~ ,)"));
    }
    Ok(())
}

fn check_address(what: &str, address: &str, problems: &mut Vec<String>) {
    let ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !ok {
        problems.push(format!("{what} {address:?}: expected host:port"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, t: MemberType) -> MemberConfig {
        MemberConfig {
            name: name.into(),
            member_type: t,
            superserver: format!("{name}:1972"),
            mirror_address: format!("{name}:2188"),
            agent: format!("{name}:2188"),
        }
    }

    fn mirror() -> MirrorConfig {
        MirrorConfig {
            name: "demo".into(),
            this_member: "mirrora".into(),
            qos_ms: DEFAULT_QOS_MS,
            arbiter: Some("arbiter:2188".into()),
            members: vec![
                member("mirrora", MemberType::Failover),
                member("mirrorb", MemberType::Failover),
                member("dr", MemberType::Dr),
            ],
        }
    }

    #[test]
    fn a_good_mirror_is_normalised() {
        let m = mirror().validate().unwrap();
        assert_eq!(m.name, "DEMO");
        assert_eq!(m.this_member, "MIRRORA");
        assert_eq!(m.members[2].name, "DR");
        assert_eq!(m.this().unwrap().member_type, MemberType::Failover);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut m = mirror();
        m.name = "MIRROR_WITH_A_LONG_NAME".into();
        m.qos_ms = 50;
        m.members.push(member("mirrora", MemberType::Failover));
        m.members.push(member("bad name", MemberType::Dr));
        m.members[1].agent = "nohost".into();
        let problems = m.validate().unwrap_err();
        let all = problems.join("\n");
        for needle in
            ["mirror name", "qos_ms 50", "listed twice", "\"BAD NAME\"", "agent \"nohost\"", "3 failover members"]
        {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn member_names_follow_the_reference_rules() {
        assert!(check_member_name("MIRROR-A.1").is_ok());
        assert!(check_member_name(&"A".repeat(32)).is_ok());
        assert!(check_member_name(&"A".repeat(33)).is_err());
        for bad in ["A:B", "A B", "A^B", "A,B", "A/B", ""] {
            assert!(check_member_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn async_limits_and_this_member() {
        let mut m = mirror();
        m.this_member = "nobody".into();
        for n in 0..14 {
            m.members.push(member(&format!("async{n}"), MemberType::ReportingRo));
        }
        let all = m.validate().unwrap_err().join("\n");
        assert!(all.contains("15 async members"), "{all}");
        assert!(all.contains("this_member NOBODY"), "{all}");
    }

    #[test]
    fn yaml_round_trip_with_kebab_case_types() {
        let yaml = "name: demo\nthis_member: a\nmembers:\n  - {name: a, type: failover, superserver: 'a:1972', mirror_address: 'a:2188', agent: 'a:2188'}\n  - {name: r, type: reporting-rw, superserver: 'r:1972', mirror_address: 'r:2188', agent: 'r:2188'}\n";
        let m: MirrorConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(m.qos_ms, DEFAULT_QOS_MS);
        assert_eq!(m.members[1].member_type, MemberType::ReportingRw);
        let m = m.validate().unwrap();
        let again: MirrorConfig = serde_yaml::from_str(&serde_yaml::to_string(&m).unwrap()).unwrap();
        assert_eq!(again, m);
    }
}
