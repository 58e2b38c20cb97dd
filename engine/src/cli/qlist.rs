//! `engine qlist`: one caret-separated line in the reference product's layout, for
//! liveness probes (`engine qlist | grep running`).
//!
//! `name^directory^version^state^config file^superserver port^web port^gateway port^health^product^mirror member type^mirror status^data directory`
//!
//! The mirror fields come from the mirror state file the engine writes
//! (`mirror.state.json`, format in docs/agent.md): the member type as the Mirror Monitor
//! names it (`Failover`, `Disaster Recovery`, `Read-Only Reporting`, `Read-Write
//! Reporting`) and, while the engine runs, its member status (`Primary`, `Backup`, ...).
//! Both are empty when the file is absent or unreadable; the status is empty while the
//! engine is down (the file then says what it was, not what it is).

use crate::agent::status::MIRROR_STATE_FILE;
use crate::instance::config::Config;
use crate::instance::datadir::{DataDir, RunState};
use crate::mirror::config::MemberType;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QList {
    pub line: String,
    pub running: bool,
    /// Running, answering PING on the superserver, and listening on the web port: what a
    /// script waits for before it drives the engine (`engine qlist --wait`).
    pub ready: bool,
}

pub fn qlist(dir: &DataDir) -> QList {
    let config = std::fs::read_to_string(dir.config_file()).ok().and_then(|t| Config::parse(&t, "").ok());
    let name = config.as_ref().map_or("MIRRORLAB".to_string(), |c| c.instance.name.clone());
    let install_dir =
        std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.display().to_string())).unwrap_or_default();
    let state = dir.read_state();
    let holder = dir.lock_holder();
    let (member_type, mirror_status) = mirror_fields(dir, config.as_ref(), holder.is_some());
    let (running, state_text, ports, health) = match (&holder, &state) {
        (Some(_), Some(s)) => {
            let health = probe_health(s);
            (true, format!("running, since {}", s.started_at), (s.superserver_port, s.web_port), health)
        }
        (Some(_), None) => (true, "running, starting".to_string(), (0, 0), "warn"),
        (None, s) => {
            let last = s
                .as_ref()
                .map(|s| s.stopped_at.clone().unwrap_or_else(|| s.started_at.clone()))
                .unwrap_or_else(|| "never".into());
            let ports = config.as_ref().map_or((1972, 52773), |c| (c.network.superserver_port, c.network.web_port));
            (false, format!("down, last used {last}"), ports, "")
        }
    };
    let fields = [
        name,
        install_dir,
        env!("CARGO_PKG_VERSION").to_string(),
        state_text,
        dir.config_file().display().to_string(),
        ports.0.to_string(),
        ports.1.to_string(),
        String::new(),
        health.to_string(),
        "Mirrorlab".to_string(),
        member_type,
        mirror_status,
        dir.root().display().to_string(),
    ];
    let ready = running && health == "ok" && web_listening(ports.1);
    QList { line: fields.join("^"), running, ready }
}

/// Waits up to `timeout` for the engine on `dir` to be ready; the last reading either way.
pub fn wait_ready(dir: &DataDir, timeout: Duration) -> QList {
    let mut last = None;
    crate::wait::until(timeout, Duration::from_millis(50), || last.insert(qlist(dir)).ready);
    last.expect("wait::until checks the condition at least once")
}

fn web_listening(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// The mirror state file's fields qlist shows. Read leniently: fields it does not use are
/// ignored, so qlist keeps working as the file gains fields.
#[derive(serde::Deserialize, Default)]
struct MirrorStateFields {
    #[serde(default)]
    role: String,
    #[serde(default)]
    status: String,
    #[serde(default, rename = "type")]
    member_type: String,
}

/// The mirror state file is read only up to this size (as the agent reads it).
const MAX_MIRROR_STATE_BYTES: u64 = 64 * 1024;

/// (mirror member type, mirror status) for the qlist line.
fn mirror_fields(dir: &DataDir, config: Option<&Config>, running: bool) -> (String, String) {
    let read = || -> Option<MirrorStateFields> {
        let mut bytes = Vec::new();
        std::fs::File::open(dir.root().join(MIRROR_STATE_FILE))
            .ok()?
            .take(MAX_MIRROR_STATE_BYTES)
            .read_to_end(&mut bytes)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let Some(m) = read() else { return (String::new(), String::new()) };
    let member_type = if m.member_type.is_empty() {
        // Older files carry no type: the configuration says what this member is.
        config
            .and_then(|c| c.mirror.as_ref())
            .and_then(|mc| mc.members.iter().find(|x| x.name == mc.this_member))
            .map(|x| x.member_type.label().to_string())
            .unwrap_or_default()
    } else {
        serde_json::from_value::<MemberType>(serde_json::Value::String(m.member_type.clone()))
            .map_or(m.member_type, |t| t.label().to_string())
    };
    let status = match (running, m.status.is_empty(), m.role.as_str()) {
        (false, _, _) => String::new(),
        (true, false, _) => m.status,
        (true, true, "primary") => "Primary".to_string(),
        (true, true, "backup") => "Backup".to_string(),
        (true, true, _) => String::new(),
    };
    // A caret inside a field would shift every field after it.
    let clean = |s: String| s.replace(['^', '\n', '\r'], " ");
    (clean(member_type), clean(status))
}

/// `ok` when the superserver answers PING within two seconds (over TLS when the engine
/// serves it), `hung` otherwise.
fn probe_health(state: &RunState) -> &'static str {
    let ping = || -> std::io::Result<bool> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], state.superserver_port));
        let timeout = Duration::from_secs(2);
        let socket = TcpStream::connect_timeout(&addr, timeout)?;
        socket.set_read_timeout(Some(timeout))?;
        let tls = super::transport::of_running(state).map_err(|e| std::io::Error::other(format!("{e:#}")))?;
        let mut s = super::transport::over(tls.as_ref(), "127.0.0.1", socket, timeout)?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        s.flush()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    if ping().unwrap_or(false) {
        "ok"
    } else {
        "hung"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(file: Option<&str>, running: bool) -> (String, String) {
        let tmp = tempfile::tempdir().unwrap();
        if let Some(text) = file {
            std::fs::write(tmp.path().join(MIRROR_STATE_FILE), text).unwrap();
        }
        mirror_fields(&DataDir::new(tmp.path()), None, running)
    }

    #[test]
    fn mirror_fields_come_from_the_mirror_state_file() {
        let full = r#"{"mirror":"DEMO","member":"MIRRORA","role":"primary","epoch":7,"status":"In Trouble","type":"failover","joined":true}"#;
        assert_eq!(fields(Some(full), true), ("Failover".into(), "In Trouble".into()));
        assert_eq!(fields(Some(full), false), ("Failover".into(), String::new()), "no live status while down");
        let dr = r#"{"mirror":"DEMO","member":"DR","role":"async","epoch":7,"status":"Connected","type":"dr"}"#;
        assert_eq!(fields(Some(dr), true), ("Disaster Recovery".into(), "Connected".into()));
        // The documented minimum: the role alone.
        let minimal = r#"{"mirror":"DEMO","member":"MIRRORB","role":"backup","epoch":7}"#;
        assert_eq!(fields(Some(minimal), true), (String::new(), "Backup".into()));
        assert_eq!(fields(None, true), (String::new(), String::new()));
        assert_eq!(fields(Some("not json"), true), (String::new(), String::new()));
        let odd = r#"{"role":"primary","status":"Pri^mary","type":"future-kind"}"#;
        assert_eq!(fields(Some(odd), true), ("future-kind".into(), "Pri mary".into()));
    }
}
