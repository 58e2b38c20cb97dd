//! The lab at a glance: every member's type, status, ports and mirror figures, as a table
//! for people and as JSON for scripts (`name`, `type`, `status` lower-case,
//! `superserver_port`, `web_port`, ...).

use crate::manifest::Manifest;
use crate::target::{Proc, Target};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// A paused or hung engine must not stall `status`.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MemberStatus {
    pub name: String,
    #[serde(rename = "type")]
    pub member_type: String,
    /// `primary`, `backup`, `connected`, `in trouble`, ... (the Mirror Monitor's word in
    /// lower case); `running` for a standalone member; `paused`, `down`, `unreachable`.
    pub status: String,
    pub superserver_port: u16,
    pub web_port: u16,
    pub mirror_port: u16,
    pub agent_port: u16,
    pub url: String,
    pub journal_transfer: String,
    pub dejournaling: String,
    pub latency_ms: u64,
    pub arbiter: String,
    pub failover_mode: String,
    /// The member's durable epoch; null when it does not answer (down, paused, ...) or
    /// is no mirror member.
    pub epoch: Option<u64>,
    /// How far the member's mirror journal is behind the primary's, in journal positions
    /// (the primary's `journal_position` less the member's; 0 on the primary); null when
    /// either does not answer or the lab has no primary.
    pub lag: Option<u64>,
    /// The member's own mirror journal position (to compute `lag`).
    #[serde(skip)]
    pub position: Option<u64>,
    /// An app member's data servers and their ECP connection states (GET /api/ecp);
    /// empty on other members and when the member does not answer.
    pub ecp: Vec<EcpLink>,
}

/// One of an app member's data servers as it reports it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, serde::Deserialize)]
pub struct EcpLink {
    /// The data server's name.
    #[serde(rename = "server", alias = "name")]
    pub server: String,
    /// `Normal`, `Trouble`, `Not Connected`, `Connection in Progress`, `Recovering`,
    /// `Disabled` (the reference's words).
    #[serde(default)]
    pub state: String,
    /// The member it is connected to now (for a mirror: its primary), when it says.
    #[serde(default)]
    pub member: Option<String>,
    /// Requests sent and not yet answered.
    #[serde(default)]
    pub pending: u64,
}

impl EcpLink {
    /// `PHONEBOOK_DS Normal @MIRRORA`, `PHONEBOOK_DS Trouble, 3 pending`.
    pub fn describe(&self) -> String {
        let mut out = format!("{} {}", self.server, self.state);
        if let Some(m) = self.member.as_deref().filter(|m| !m.is_empty()) {
            out.push_str(&format!(" @{m}"));
        }
        if self.pending > 0 {
            out.push_str(&format!(", {} pending", self.pending));
        }
        out
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct LabStatus {
    pub lab: String,
    pub arbiter: Option<String>,
    pub members: Vec<MemberStatus>,
}

pub fn collect(manifest: &Manifest, target: &dyn Target) -> LabStatus {
    let mut members: Vec<MemberStatus> = manifest
        .members
        .iter()
        .map(|m| {
            let ports = target.ports(&m.name);
            let mut s = MemberStatus {
                name: m.name.clone(),
                member_type: m.member_type.as_str().to_string(),
                status: String::new(),
                superserver_port: ports.superserver,
                web_port: ports.web,
                mirror_port: ports.mirror,
                agent_port: ports.agent,
                url: target.url(&m.name),
                journal_transfer: String::new(),
                dejournaling: String::new(),
                latency_ms: 0,
                arbiter: String::new(),
                failover_mode: String::new(),
                epoch: None,
                lag: None,
                position: None,
                ecp: vec![],
            };
            s.status = match target.proc_state(&m.name) {
                Proc::Down => "down".into(),
                Proc::Paused => "paused".into(),
                Proc::Running => match target.api(&m.name).probe("/api/mirror/status", PROBE_TIMEOUT) {
                    Err(_) => "unreachable".into(),
                    Ok(v) if v["status"].is_null() => {
                        if m.member_type.in_mirror() && manifest.mirror.is_some() {
                            "not a member yet".into()
                        } else {
                            "running".into()
                        }
                    }
                    Ok(v) => {
                        fill(&mut s, &v["status"]);
                        v["status"]["status"].as_str().unwrap_or("unknown").to_ascii_lowercase()
                    }
                },
            };
            if m.member_type == crate::manifest::MemberType::App && s.status == "running" {
                s.ecp = ecp_links(target, &m.name);
            }
            s
        })
        .collect();
    let primary = members.iter().find(|m| m.status == "primary").and_then(|m| m.position);
    for m in &mut members {
        m.lag = primary.zip(m.position).map(|(p, x)| p.saturating_sub(x));
    }
    let arbiter = manifest.arbiter.as_ref().map(|_| {
        format!("{} ({})", target.arbiter_address(), if target.arbiter_running() { "running" } else { "down" })
    });
    LabStatus { lab: manifest.lab.clone(), arbiter, members }
}

/// An app member's data servers as it reports them (nothing when it does not answer).
fn ecp_links(target: &dyn Target, member: &str) -> Vec<EcpLink> {
    let Ok(v) = target.api(member).probe("/api/ecp", PROBE_TIMEOUT) else { return vec![] };
    v["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| serde_json::from_value::<EcpLink>(s.clone()).ok())
        .collect()
}

/// The member's own line of its Mirror Monitor.
fn fill(s: &mut MemberStatus, st: &Value) {
    s.arbiter = st["arbiter"].as_str().unwrap_or_default().to_string();
    s.failover_mode = st["failover_mode"].as_str().unwrap_or_default().to_string();
    s.epoch = st["epoch"].as_u64();
    s.position = st["journal_position"].as_u64();
    let me = st["members"].as_array().and_then(|ms| ms.iter().find(|m| m["name"].as_str() == Some(&s.name)).cloned());
    if let Some(me) = me {
        s.journal_transfer = me["journal_transfer"].as_str().unwrap_or_default().to_string();
        s.dejournaling = me["dejournaling"].as_str().unwrap_or_default().to_string();
        s.latency_ms = me["journal_latency"]["time_ms"].as_u64().unwrap_or(0)
            + me["database_latency"]["time_ms"].as_u64().unwrap_or(0);
    }
}

/// What the EPOCH and LAG columns show for a figure the member did not give (it is down,
/// paused, unreachable, or no mirror member).
pub const NO_FIGURE: &str = "\u{2013}";

/// The table people read.
pub fn table(status: &LabStatus) -> String {
    let dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    let figure = |n: Option<u64>| n.map_or_else(|| NO_FIGURE.to_string(), |n| n.to_string());
    let mut rows = vec![vec![
        "MEMBER".to_string(),
        "TYPE".into(),
        "STATUS".into(),
        "EPOCH".into(),
        "LAG".into(),
        "SUPERSERVER".into(),
        "PORTAL".into(),
        "JOURNAL TRANSFER".into(),
        "DEJOURNALING".into(),
        "LATENCY".into(),
    ]];
    // A lab with app members has one more column: each app member's data servers.
    let with_ecp = status.members.iter().any(|m| m.member_type == "app");
    if with_ecp {
        rows[0].push("ECP".into());
    }
    for m in &status.members {
        let mut row = vec![
            m.name.clone(),
            m.member_type.clone(),
            m.status.clone(),
            figure(m.epoch),
            figure(m.lag),
            m.superserver_port.to_string(),
            m.url.clone(),
            dash(&m.journal_transfer),
            dash(&m.dejournaling),
            format!("{} ms", m.latency_ms),
        ];
        if with_ecp {
            row.push(dash(&m.ecp.iter().map(EcpLink::describe).collect::<Vec<_>>().join(", ")));
        }
        rows.push(row);
    }
    // Widths in characters, not bytes: the dash is three bytes.
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| width(&r[c])).max().unwrap_or(0)).collect();
    let mut out = format!("Lab {}\n", status.lab);
    if let Some(a) = &status.arbiter {
        out.push_str(&format!("Arbiter: {a}\n"));
    }
    // Each arbiter line with the members that report it: the two failover members can see
    // the arbiter differently (one of them cut off from it).
    let mut lines: Vec<(&str, Vec<&str>)> = Vec::new();
    for m in status.members.iter().filter(|m| !m.arbiter.is_empty()) {
        match lines.iter_mut().find(|(line, _)| *line == m.arbiter) {
            Some((_, names)) => names.push(&m.name),
            None => lines.push((&m.arbiter, vec![&m.name])),
        }
    }
    for (line, names) in lines {
        out.push_str(&format!("Arbiter mode ({}): {line}\n", names.join(", ")));
    }
    out.push('\n');
    for r in rows {
        let line: Vec<String> =
            r.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c)))).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The epoch the lab is in: the primary's, else the highest any member reports.
pub fn lab_epoch(status: &LabStatus) -> Option<u64> {
    status
        .members
        .iter()
        .find(|m| m.status == "primary")
        .and_then(|m| m.epoch)
        .or_else(|| status.members.iter().filter_map(|m| m.epoch).max())
}

/// The first line of `status --watch`, as `patronictl list -W` heads its table: the lab,
/// the time of the reading (UTC) and the epoch.
pub fn watch_header(status: &LabStatus, now: std::time::SystemTime) -> String {
    let secs = now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let epoch = lab_epoch(status).map_or_else(|| NO_FIGURE.to_string(), |e| e.to_string());
    format!("+ Lab: {}  {h:02}:{m:02}:{s:02} UTC  epoch {epoch}  (Ctrl-C to quit)", status.lab)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, status: &str, epoch: Option<u64>, lag: Option<u64>, arbiter: &str) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            member_type: "failover".into(),
            status: status.into(),
            superserver_port: 1972,
            web_port: 52773,
            mirror_port: 2188,
            agent_port: 2189,
            url: "http://127.0.0.1:52773/".into(),
            journal_transfer: String::new(),
            dejournaling: String::new(),
            latency_ms: 0,
            arbiter: arbiter.into(),
            failover_mode: String::new(),
            epoch,
            lag,
            position: None,
            ecp: vec![],
        }
    }

    fn lab() -> LabStatus {
        LabStatus {
            lab: "demo".into(),
            arbiter: Some("127.0.0.1:2188 (running)".into()),
            members: vec![
                member("MIRRORA", "primary", Some(7), Some(0), "Both failover members are connected to the arbiter"),
                member("MIRRORB", "down", None, None, ""),
            ],
        }
    }

    #[test]
    fn the_table_has_epoch_and_lag_a_dash_for_a_member_that_is_down_and_names_the_arbiter_line() {
        let t = table(&lab());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[2], "Arbiter mode (MIRRORA): Both failover members are connected to the arbiter");
        let header = lines.iter().position(|l| l.starts_with("MEMBER")).unwrap();
        assert!(lines[header].starts_with("MEMBER   TYPE      STATUS   EPOCH  LAG  SUPERSERVER"), "{t}");
        assert!(lines[header + 1].starts_with("MIRRORA  failover  primary  7      0    1972"), "{t}");
        assert!(lines[header + 2].starts_with("MIRRORB  failover  down     \u{2013}      \u{2013}    1972"), "{t}");
        let mut cut = lab();
        cut.members.push(member(
            "MIRRORC",
            "connected",
            Some(7),
            Some(3),
            "Both failover members are connected to the arbiter",
        ));
        cut.members[1].arbiter = "This member is not connected to the arbiter".into();
        let t = table(&cut);
        assert!(t.contains("\nArbiter mode (MIRRORA, MIRRORC): Both failover members are connected to the arbiter\nArbiter mode (MIRRORB): This member is not connected to the arbiter\n"), "{t}");
    }

    #[test]
    fn the_watch_header_has_the_lab_the_time_and_the_primarys_epoch() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 9 * 3600 + 5 * 60 + 7);
        assert_eq!(watch_header(&lab(), at), "+ Lab: demo  09:05:07 UTC  epoch 7  (Ctrl-C to quit)");
        let mut down = lab();
        down.members[0].epoch = None;
        assert!(watch_header(&down, at).contains("epoch \u{2013}"));
    }

    #[test]
    fn the_json_has_epoch_and_lag_and_not_the_position() {
        let v = serde_json::to_value(lab()).unwrap();
        assert_eq!(v["members"][0]["epoch"], 7);
        assert_eq!(v["members"][0]["lag"], 0);
        assert!(v["members"][1]["epoch"].is_null() && v["members"][1]["lag"].is_null());
        assert!(v["members"][0].get("position").is_none());
        assert_eq!(v["members"][0]["ecp"], serde_json::json!([]));
    }

    #[test]
    fn app_members_add_an_ecp_column_with_each_data_servers_state() {
        let mut with_app = lab();
        let mut app = member("APP1", "running", None, None, "");
        app.member_type = "app".into();
        let link: EcpLink = serde_json::from_value(serde_json::json!(
            { "name": "PHONEBOOK_DS", "address": "127.0.0.1:1", "mirror": true, "state": "Normal", "member": "MIRRORA", "pending": 0 }
        ))
        .unwrap();
        app.ecp = vec![link, EcpLink { server: "OTHER".into(), state: "Trouble".into(), member: None, pending: 3 }];
        with_app.members.push(app);
        let t = table(&with_app);
        let header = t.lines().find(|l| l.starts_with("MEMBER")).unwrap();
        assert!(header.ends_with("LATENCY  ECP"), "{t}");
        let row = t.lines().find(|l| l.starts_with("APP1")).unwrap();
        assert!(row.ends_with("PHONEBOOK_DS Normal @MIRRORA, OTHER Trouble, 3 pending"), "{t}");
        let primary = t.lines().find(|l| l.starts_with("MIRRORA")).unwrap();
        assert!(primary.ends_with(" -"), "{t}");
        assert!(!table(&lab()).contains("ECP"), "no app member, no column");
        let v = serde_json::to_value(&with_app).unwrap();
        assert_eq!(v["members"][2]["ecp"][0]["server"], "PHONEBOOK_DS");
        assert_eq!(v["members"][2]["ecp"][0]["state"], "Normal");
    }
}
