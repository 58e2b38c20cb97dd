//! `engine mirror <verb>`: the Mirror Monitor and the operator actions, through a running
//! engine's management API (`GET /api/mirror/status`, `POST /api/mirror/actions`). The
//! engine is found as the other commands find it: the state file of the engine holding the
//! data directory, unless `--port` (and `--host`) name one.

use super::http;
use crate::instance::datadir::DataDir;
use crate::mirror::status::{Latency, MirrorAction, MirrorStatus};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The web port assumed for `--host` without `--port`.
pub const DEFAULT_WEB_PORT: u16 = 52773;
/// How long a status read may take.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an action may take (a planned failover waits for the backup to take over).
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

/// The management API to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// TLS when the web port serves it (`--cacert`, or the running engine's state file).
    pub tls: Option<super::transport::Tls>,
}

impl Target {
    /// `--host`/`--port` when given (`--host` alone: port 52773); otherwise the engine
    /// running on `dir`, on 127.0.0.1.
    pub fn find(dir: &DataDir, host: Option<&str>, port: Option<u16>) -> Result<Target> {
        let target = |port, tls| Target { host: host.unwrap_or("127.0.0.1").to_string(), port, tls };
        if let Some(port) = port {
            return Ok(target(port, super::transport::named()?));
        }
        if host.is_some() {
            return Ok(target(DEFAULT_WEB_PORT, super::transport::named()?));
        }
        match dir.read_state().filter(|_| dir.lock_holder().is_some()) {
            Some(state) => Ok(target(state.web_port, super::transport::of_running(&state)?)),
            None => bail!(
                "no engine is running on {} (start one with `engine start`, or pass --port with a running engine's web port)",
                dir.root().display()
            ),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>, timeout: Duration) -> Result<String> {
        let r =
            http::call_host(&self.host, self.port, method, path, body, timeout, self.tls.as_ref()).map_err(|e| {
                anyhow!(
                    "cannot reach the engine's management API on {}:{}: {e} (is the engine running?)",
                    self.host,
                    self.port
                )
            })?;
        if r.status >= 300 {
            bail!("{}", http::error_message(&r.body));
        }
        Ok(r.body)
    }
}

/// `GET /api/mirror/status`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    /// `None` while the instance is not a mirror member.
    pub status: Option<MirrorStatus>,
}

/// This member's status as the engine reports it.
pub fn status(target: &Target) -> Result<StatusBody> {
    let body = target.call("GET", "/api/mirror/status", None, STATUS_TIMEOUT)?;
    serde_json::from_str(&body).with_context(|| format!("unexpected answer from the engine: {body}"))
}

/// Polls this member's status until its member status is `want` (case-insensitive); an
/// error naming the last status after `timeout`. The engine may be absent or unreachable
/// for a while (starting, restarting): that counts as "not yet".
pub fn wait_for(find: impl Fn() -> Result<Target>, want: &str, timeout: Duration) -> Result<StatusBody> {
    let mut last = String::new();
    let mut reached = None;
    crate::wait::until(timeout, Duration::from_millis(100), || match find().and_then(|target| status(&target)) {
        Ok(body) => {
            let now = body.status.as_ref().map(|s| s.status.status.to_string());
            if now.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(want)) {
                reached = Some(body);
                return true;
            }
            last = now.unwrap_or_else(|| "not a mirror member".into());
            false
        }
        Err(e) => {
            last = e.to_string();
            false
        }
    });
    match reached {
        Some(body) => Ok(body),
        None => bail!("this member did not become {want} within {} s (last: {last})", timeout.as_secs()),
    }
}

/// Carries out an operator action; returns the engine's sentence.
pub fn act(target: &Target, action: &MirrorAction) -> Result<String> {
    let request = serde_json::to_string(action)?;
    let body = target.call("POST", "/api/mirror/actions", Some(&request), ACTION_TIMEOUT)?;
    #[derive(Deserialize)]
    struct Answer {
        message: String,
    }
    let answer: Answer =
        serde_json::from_str(&body).with_context(|| format!("unexpected answer from the engine: {body}"))?;
    Ok(answer.message)
}

/// The text `engine mirror status` prints: a summary, the member table, the databases.
pub fn monitor(status: Option<&MirrorStatus>) -> String {
    let Some(s) = status else {
        return "This instance is not a mirror member.\n\
                Configure the mirror (PUT /api/mirror/config, or the merge file's config_mirror), \
                then run `engine mirror create` on the first primary or `engine mirror join` on the \
                other members.\n"
            .to_string();
    };
    let mut out = String::new();
    out.push_str(&format!("Mirror {}: this member {} ({}), {}\n", s.mirror, s.member, s.member_type.label(), s.status));
    let summary = [
        ("Primary", s.primary.clone().unwrap_or_else(|| "unknown".into())),
        ("Failover mode", s.failover_mode.clone()),
        ("Arbiter", s.arbiter.clone()),
        ("No failover", if s.no_failover { "set".into() } else { "clear".into() }),
        ("Epoch", s.epoch.to_string()),
        (
            "Journal",
            format!(
                "position {}, durable {}, acknowledged {}",
                s.journal_position, s.durable_position, s.acked_position
            ),
        ),
    ];
    for (label, value) in summary {
        out.push_str(&format!("{:<15}{}\n", format!("{label}:"), or_dash(&value)));
    }
    out.push('\n');
    let members: Vec<Vec<String>> = s
        .members
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.member_type.label().to_string(),
                m.status.to_string(),
                or_dash(&m.journal_transfer),
                or_dash(&m.dejournaling),
                latency(&m.journal_latency),
                latency(&m.database_latency),
            ]
        })
        .collect();
    out.push_str(&table(
        &["MEMBER", "TYPE", "STATUS", "JOURNAL TRANSFER", "DEJOURNALING", "JOURNAL LATENCY", "DATABASE LATENCY"],
        &members,
    ));
    out.push('\n');
    if s.databases.is_empty() {
        out.push_str("No mirrored databases.\n");
    } else {
        let databases: Vec<Vec<String>> = s
            .databases
            .iter()
            .map(|d| vec![d.name.clone(), d.status.word().to_string(), d.position.to_string()])
            .collect();
        out.push_str(&table(&["DATABASE", "STATUS", "POSITION"], &databases));
    }
    out
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.into()
    }
}

/// `120 ms, 4.0 KiB, 1 file`.
pub fn latency(l: &Latency) -> String {
    let time =
        if l.time_ms < 1000 { format!("{} ms", l.time_ms) } else { format!("{:.1} s", l.time_ms as f64 / 1000.0) };
    let files = if l.files == 1 { "1 file".to_string() } else { format!("{} files", l.files) };
    format!("{time}, {}, {files}", bytes(l.bytes))
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Left-aligned columns two spaces apart, no trailing spaces.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            } else {
                text.push_str(cell);
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{Instance, InstanceOptions};
    use crate::resp::memory::{sample_status, FakeMirror};
    use crate::vfs::real::RealVfs;
    use std::sync::Arc;

    #[test]
    fn the_monitor_shows_members_arbiter_mode_and_databases() {
        let text = monitor(Some(&sample_status()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Mirror DEMO: this member MIRRORA (Failover), Primary");
        assert!(text.contains("Failover mode: Arbiter Controlled\n"), "{text}");
        assert!(text.contains("Arbiter:       Both failover members are connected to the arbiter\n"), "{text}");
        assert!(text.contains("Journal:       position 1042, durable 1042, acknowledged 1040\n"), "{text}");
        let header = lines.iter().position(|l| l.starts_with("MEMBER")).expect("member table");
        assert_eq!(
            lines[header],
            "MEMBER   TYPE               STATUS     JOURNAL TRANSFER  DEJOURNALING  JOURNAL LATENCY     DATABASE LATENCY"
        );
        assert_eq!(
            lines[header + 2],
            "MIRRORB  Failover           Backup     Active            Caught up     0 ms, 0 B, 0 files  120 ms, 4.0 KiB, 1 file"
        );
        assert!(lines[header + 1].starts_with("MIRRORA  Failover           Primary    -                 -  "));
        assert!(lines[header + 3].starts_with("DR       Disaster Recovery  Connected  2 s behind        Caught up"));
        assert!(
            text.contains("DATABASE  STATUS  POSITION\nCOMPANY   Normal  1042\nPERSONAL  Normal  1042\n"),
            "{text}"
        );
        assert!(text.lines().all(|l| l == l.trim_end()), "no trailing spaces:\n{text}");
        assert!(monitor(None).starts_with("This instance is not a mirror member."));
        assert_eq!(latency(&Latency { time_ms: 2500, bytes: 3 << 20, files: 2 }), "2.5 s, 3.0 MiB, 2 files");
    }

    #[test]
    fn no_running_engine_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = Target::find(&DataDir::new(dir.path()), None, None).unwrap_err().to_string();
        assert!(e.starts_with("no engine is running on ") && e.contains("engine start"), "{e}");
        assert_eq!(
            Target::find(&DataDir::new(dir.path()), Some("mirrorb"), None).unwrap(),
            Target { host: "mirrorb".into(), port: DEFAULT_WEB_PORT, tls: None }
        );
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = status(&Target { host: "127.0.0.1".into(), port, tls: None }).unwrap_err().to_string();
        assert!(e.contains("cannot reach the engine's management API on 127.0.0.1:"), "{e}");
    }

    /// The CLI's calls against the real management API with a fake mirror member.
    #[test]
    fn status_and_actions_through_the_management_api() {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::open(InstanceOptions {
            data_dir: dir.path().to_path_buf(),
            vfs: Arc::new(RealVfs::new()),
            background: true,
        })
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let target = Target { host: "localhost".into(), port: listener.local_addr().unwrap().port(), tls: None };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = rt.spawn(crate::web::serve(listener, instance.clone(), true, None, async {
            let _ = stopped.await;
        }));

        assert_eq!(status(&target).unwrap(), StatusBody { status: None });
        let e = act(&target, &MirrorAction::PlannedFailover).unwrap_err().to_string();
        assert_eq!(e, "NOTMIRRORED this instance is not a mirror member: create or join a mirror first");

        let fake = FakeMirror::new(Some(sample_status()));
        instance.set_mirror_control(fake.clone());
        assert_eq!(status(&target).unwrap(), StatusBody { status: Some(sample_status()) });
        let added = act(&target, &MirrorAction::AddDatabase { name: "company".into() }).unwrap();
        assert_eq!(added, "database COMPANY is mirrored");
        let e = act(&target, &MirrorAction::AddDatabase { name: "nope".into() }).unwrap_err().to_string();
        assert_eq!(e, "DIRECTORY database NOPE does not exist");
        fake.set_member_status(crate::mirror::status::MemberStatus::Backup);
        let e = act(&target, &MirrorAction::PlannedFailover).unwrap_err().to_string();
        assert_eq!(e, "ILLEGAL a planned failover starts on the primary");
        assert_eq!(act(&target, &MirrorAction::SetNoFailover).unwrap(), "no failover is set");
        assert_eq!(fake.actions.lock().len(), 4);

        let _ = stop.send(());
        rt.block_on(server).unwrap().unwrap();
        instance.shutdown().unwrap();
    }
}
