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
}

#[derive(Clone, Debug, Serialize)]
pub struct LabStatus {
    pub lab: String,
    pub arbiter: Option<String>,
    pub members: Vec<MemberStatus>,
}

pub fn collect(manifest: &Manifest, target: &dyn Target) -> LabStatus {
    let members = manifest
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
            s
        })
        .collect();
    let arbiter = manifest.arbiter.as_ref().map(|_| {
        format!("{} ({})", target.arbiter_address(), if target.arbiter_running() { "running" } else { "down" })
    });
    LabStatus { lab: manifest.lab.clone(), arbiter, members }
}

/// The member's own line of its Mirror Monitor.
fn fill(s: &mut MemberStatus, st: &Value) {
    s.arbiter = st["arbiter"].as_str().unwrap_or_default().to_string();
    s.failover_mode = st["failover_mode"].as_str().unwrap_or_default().to_string();
    let me = st["members"].as_array().and_then(|ms| ms.iter().find(|m| m["name"].as_str() == Some(&s.name)).cloned());
    if let Some(me) = me {
        s.journal_transfer = me["journal_transfer"].as_str().unwrap_or_default().to_string();
        s.dejournaling = me["dejournaling"].as_str().unwrap_or_default().to_string();
        s.latency_ms = me["journal_latency"]["time_ms"].as_u64().unwrap_or(0)
            + me["database_latency"]["time_ms"].as_u64().unwrap_or(0);
    }
}

/// The table people read.
pub fn table(status: &LabStatus) -> String {
    let dash = |s: &str| if s.is_empty() { "-".to_string() } else { s.to_string() };
    let mut rows = vec![vec![
        "MEMBER".to_string(),
        "TYPE".into(),
        "STATUS".into(),
        "SUPERSERVER".into(),
        "PORTAL".into(),
        "JOURNAL TRANSFER".into(),
        "DEJOURNALING".into(),
        "LATENCY".into(),
    ]];
    for m in &status.members {
        rows.push(vec![
            m.name.clone(),
            m.member_type.clone(),
            m.status.clone(),
            m.superserver_port.to_string(),
            m.url.clone(),
            dash(&m.journal_transfer),
            dash(&m.dejournaling),
            format!("{} ms", m.latency_ms),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = format!("Lab {}\n", status.lab);
    if let Some(a) = &status.arbiter {
        out.push_str(&format!("Arbiter: {a}\n"));
    }
    if let Some(line) = status.members.iter().map(|m| m.arbiter.as_str()).find(|a| !a.is_empty()) {
        out.push_str(&format!("Arbiter mode: {line}\n"));
    }
    out.push('\n');
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
