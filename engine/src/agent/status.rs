//! `AGENT STATUS`: what the agent can tell about its engine without the engine's help.
//!
//! Everything comes from the data directory (instance lock, state file, journal files,
//! mirror state file) except the health probe, a PING on the superserver port bounded by
//! a timeout. So a hung engine yields a status within about one probe timeout, and a down
//! one at once.

use super::journal_ranges::{self, Positions};
use crate::instance::datadir::{DataDir, RunState};
use crate::vfs::real::RealVfs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The file the engine writes when mirroring is configured (format in docs/agent.md).
pub const MIRROR_STATE_FILE: &str = "mirror.state.json";
/// The mirror state file is read only up to this size.
const MAX_MIRROR_STATE_BYTES: u64 = 64 * 1024;

/// The engine as the agent sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineState {
    /// It holds the instance lock and answers PING within the probe timeout.
    Running,
    /// It holds the instance lock but does not answer (stopped, overloaded, deadlocked, or
    /// still starting and not yet serving).
    Hung,
    /// Nothing holds the instance lock.
    Down,
}

impl EngineState {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineState::Running => "running",
            EngineState::Hung => "hung",
            EngineState::Down => "down",
        }
    }
}

/// A member's role as the engine records it in the mirror state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MirrorRole {
    Primary,
    Backup,
    Async,
    #[default]
    None,
}

impl MirrorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorRole::Primary => "primary",
            MirrorRole::Backup => "backup",
            MirrorRole::Async => "async",
            MirrorRole::None => "none",
        }
    }
}

/// `<data-dir>/mirror.state.json`, written by the engine.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorState {
    pub mirror: String,
    pub member: String,
    pub role: MirrorRole,
    pub epoch: u64,
    /// The member status as the Mirror Monitor shows it ("Primary", "Backup", ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The member type (failover, dr, reporting-ro, reporting-rw).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub member_type: String,
    /// Where each epoch starts in the mirror journal: `[epoch, first position]`, both
    /// increasing. With the journal's last position this is the journal's summary, which
    /// the failover core compares between members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<(u64, u64)>,
    /// The operator set "no failover" on this member.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_failover: bool,
    /// The member is (or, having lost its primary, was) the active backup: it may take over
    /// through the arbiter. Other members' agent questions read it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
    /// The member was created or joined: the engine starts its mirror runtime at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joined: bool,
}

impl MirrorState {
    /// The journal summary `(epoch, last position)` for a journal ending at `last`.
    pub fn summary(&self, last: u64) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let starts: Vec<(u64, u64)> = self.epochs.iter().copied().filter(|&(_, first)| first <= last).collect();
        for (i, &(epoch, _)) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(last, |next| next.1 - 1);
            if end >= starts[i].1 {
                out.push((epoch, end));
            }
        }
        out
    }
}

/// Answers whether the engine serves on a superserver port; `tls_ca`: the CA the engine
/// says (state file) it serves the port with, TLS only, when it does.
pub trait Probe {
    fn answers(&self, port: u16, tls_ca: Option<&str>) -> bool;
}

/// PING over RESP to `host` (loopback, or the engine container's host name), connect and
/// answer each within `timeout`. A host name is resolved at every probe: a restarted
/// engine container may come back with another address, and one that is gone does not
/// resolve (the lock says `down` before the probe is tried anyway).
///
/// Over TLS when the engine serves its superserver with TLS only: the server's certificate
/// must be signed by the CA the engine names and carry `host`. Where that file cannot be
/// read here (another container), the agent's own lab identity (`tls`) verifies it.
#[derive(Debug, Clone)]
pub struct PingProbe {
    pub host: String,
    pub timeout: Duration,
    /// The agent's lab identity, if it has one.
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
}

impl PingProbe {
    /// The client configuration for a superserver serving TLS with `ca`.
    fn tls_config(&self, ca: &str) -> std::io::Result<std::sync::Arc<rustls::ClientConfig>> {
        match (crate::tls::ca_client(std::path::Path::new(ca)), &self.tls) {
            (Ok(config), _) => Ok(config),
            (Err(_), Some(own)) => Ok(own.client_config()),
            (Err(e), None) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

impl Probe for PingProbe {
    fn answers(&self, port: u16, tls_ca: Option<&str>) -> bool {
        let deadline = Instant::now() + self.timeout;
        let ping = || -> std::io::Result<bool> {
            // Our own resolver: getaddrinfo cannot resolve names in a scratch image.
            let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
            let socket = crate::resolve::connect_std(&format!("{host}:{port}"), self.timeout)?;
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            // Bounded reads and writes, TLS or not: a hung engine accepts and never answers.
            socket.set_read_timeout(Some(left))?;
            socket.set_write_timeout(Some(left))?;
            let mut s: Box<dyn ReadWrite> = match tls_ca {
                None => Box::new(socket),
                Some(ca) => {
                    let server = crate::tls::host_server_name(&self.host).map_err(std::io::Error::other)?;
                    let config = self.tls_config(ca)?;
                    Box::new(crate::client::tls_handshake(socket, config, server, left).map_err(std::io::Error::other)?)
                }
            };
            s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
            s.flush()?;
            let mut buf = [0u8; 7];
            s.read_exact(&mut buf)?;
            Ok(&buf == b"+PONG\r\n")
        };
        match ping() {
            Ok(answered) => answered,
            Err(e) => {
                if tls_ca.is_some() {
                    // A TLS failure is a configuration to fix, not a hung engine: say so.
                    tracing::warn!(host = self.host, port, "health probe over TLS failed: {e}");
                }
                false
            }
        }
    }
}

/// A probe connection: plain TCP or TLS.
trait ReadWrite: Read + Write {}
impl<S: Read + Write> ReadWrite for S {}

/// The engine's process facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineFacts {
    pub state: EngineState,
    /// The lock holder's PID (0 when down).
    pub pid: u32,
    /// Ports from the state file of the running process (0 when unknown).
    pub superserver_port: u16,
    pub web_port: u16,
}

/// Derives the engine state from the lock holder, the state file and the probe. The
/// state file counts only when it was written by the lock holder (a stale one from an
/// earlier run names other ports).
pub fn engine_facts(lock_holder: Option<u32>, state: Option<&RunState>, probe: &dyn Probe) -> EngineFacts {
    let Some(pid) = lock_holder else {
        return EngineFacts { state: EngineState::Down, pid: 0, superserver_port: 0, web_port: 0 };
    };
    match state.filter(|s| s.pid == pid && s.stopped_at.is_none()) {
        Some(s) => {
            let answers = probe.answers(s.superserver_port, s.client_tls_ca.as_deref());
            let state = if answers { EngineState::Running } else { EngineState::Hung };
            EngineFacts { state, pid, superserver_port: s.superserver_port, web_port: s.web_port }
        }
        None => EngineFacts { state: EngineState::Hung, pid, superserver_port: 0, web_port: 0 },
    }
}

/// Reads the mirror state file: `Ok(None)` when absent, an error text when unreadable.
pub fn read_mirror_state(dir: &DataDir) -> Result<Option<MirrorState>, String> {
    let path = dir.root().join(MIRROR_STATE_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_MIRROR_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_MIRROR_STATE_BYTES {
        return Err(format!("{} is larger than {MAX_MIRROR_STATE_BYTES} bytes", path.display()));
    }
    serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{} is not a mirror state: {e}", path.display()))
}

/// Everything `AGENT STATUS` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub engine: EngineFacts,
    pub data_dir: PathBuf,
    pub journal: Positions,
    /// Why the journal could not be read (positions are then 0).
    pub journal_error: Option<String>,
    pub mirror: MirrorState,
    /// Why the mirror state file could not be read (role is then "none").
    pub mirror_error: Option<String>,
}

impl Status {
    /// The key/value pairs of the STATUS reply, in order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("state", self.engine.state.as_str().to_string()),
            ("pid", self.engine.pid.to_string()),
            ("superserver_port", self.engine.superserver_port.to_string()),
            ("web_port", self.engine.web_port.to_string()),
            ("data_dir", self.data_dir.display().to_string()),
            ("oldest_position", self.journal.oldest.to_string()),
            ("last_position", self.journal.last.to_string()),
            ("durable_position", self.journal.last.to_string()),
            ("torn_tail", u8::from(self.journal.torn_tail).to_string()),
            ("mirror", self.mirror.mirror.clone()),
            ("mirror_member", self.mirror.member.clone()),
            ("mirror_role", self.mirror.role.as_str().to_string()),
            ("mirror_type", self.mirror.member_type.clone()),
            ("mirror_active", u8::from(self.mirror.active).to_string()),
            ("epoch", self.mirror.epoch.to_string()),
            ("journal_epochs", summary_text(&self.mirror.summary(self.journal.last))),
        ];
        if let Some(e) = &self.journal_error {
            f.push(("journal_error", e.clone()));
        }
        if let Some(e) = &self.mirror_error {
            f.push(("mirror_error", e.clone()));
        }
        f
    }
}

/// `epoch:last,epoch:last` (empty for an empty journal).
pub fn summary_text(summary: &[(u64, u64)]) -> String {
    summary.iter().map(|(e, p)| format!("{e}:{p}")).collect::<Vec<_>>().join(",")
}

/// Parses [`summary_text`]'s form.
pub fn parse_summary(text: &str) -> Option<Vec<(u64, u64)>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|pair| {
            let (e, p) = pair.split_once(':')?;
            Some((e.parse().ok()?, p.parse().ok()?))
        })
        .collect()
}

/// The journal a member's facts come from: the mirror journal once the member belongs to
/// a mirror, the instance's own journal otherwise.
pub fn journal_dir_for(dir: &DataDir, mirror: &MirrorState) -> PathBuf {
    if mirror.mirror.is_empty() {
        dir.journal_dir()
    } else {
        dir.mirror_journal_dir(&mirror.mirror)
    }
}

/// The status of the engine on `dir`. Blocking (file reads and the probe).
pub fn status(dir: &DataDir, probe: &dyn Probe) -> Status {
    let engine = engine_facts(dir.lock_holder(), dir.read_state().as_ref(), probe);
    let (mirror, mirror_error) = match read_mirror_state(dir) {
        Ok(m) => (m.unwrap_or_default(), None),
        Err(e) => (MirrorState::default(), Some(e)),
    };
    let (journal, journal_error) = match journal_ranges::positions(&RealVfs::new(), &journal_dir_for(dir, &mirror)) {
        Ok(p) => (p, None),
        Err(e) => (Positions::default(), Some(e.to_string())),
    };
    let data_dir = std::path::absolute(dir.root()).unwrap_or_else(|_| dir.root().to_path_buf());
    Status { engine, data_dir, journal, journal_error, mirror, mirror_error }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct FakeProbe {
        answers: bool,
        asked: Cell<Option<u16>>,
    }

    impl Probe for FakeProbe {
        fn answers(&self, port: u16, _tls_ca: Option<&str>) -> bool {
            self.asked.set(Some(port));
            self.answers
        }
    }

    fn fake(answers: bool) -> FakeProbe {
        FakeProbe { answers, asked: Cell::new(None) }
    }

    fn run_state(pid: u32) -> RunState {
        RunState {
            client_tls_ca: None,
            pid,
            superserver_port: 1972,
            web_port: 52773,
            started_at: "2026-01-01 00:00:00".into(),
            version: "0".into(),
            stopped_at: None,
        }
    }

    #[test]
    fn down_when_the_lock_is_free_without_probing() {
        let p = fake(true);
        let f = engine_facts(None, Some(&run_state(7)), &p);
        assert_eq!(f, EngineFacts { state: EngineState::Down, pid: 0, superserver_port: 0, web_port: 0 });
        assert_eq!(p.asked.get(), None);
    }

    #[test]
    fn running_or_hung_by_the_probe_on_the_published_port() {
        let p = fake(true);
        let f = engine_facts(Some(7), Some(&run_state(7)), &p);
        assert_eq!(f, EngineFacts { state: EngineState::Running, pid: 7, superserver_port: 1972, web_port: 52773 });
        assert_eq!(p.asked.get(), Some(1972));
        let f = engine_facts(Some(7), Some(&run_state(7)), &fake(false));
        assert_eq!(f.state, EngineState::Hung);
        assert_eq!(f.pid, 7);
    }

    #[test]
    fn hung_when_the_holder_published_no_ports() {
        // A state file of an earlier process, or of a clean stop, does not count.
        let p = fake(true);
        assert_eq!(engine_facts(Some(8), Some(&run_state(7)), &p).state, EngineState::Hung);
        let stopped = RunState { stopped_at: Some("x".into()), ..run_state(8) };
        assert_eq!(engine_facts(Some(8), Some(&stopped), &p).state, EngineState::Hung);
        assert_eq!(engine_facts(Some(8), None, &p).state, EngineState::Hung);
        assert_eq!(p.asked.get(), None);
    }

    #[test]
    fn status_of_an_empty_directory_and_the_mirror_state_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let s = status(&dir, &fake(true));
        assert_eq!(s.engine.state, EngineState::Down);
        assert_eq!(s.journal, Positions::default());
        assert_eq!(s.mirror.role, MirrorRole::None);
        assert_eq!(s.mirror.epoch, 0);
        assert!(s.fields().iter().any(|(k, v)| *k == "mirror_role" && v == "none"));

        std::fs::write(
            tmp.path().join(MIRROR_STATE_FILE),
            br#"{ "mirror": "MIR", "member": "A", "role": "backup", "epoch": 12 }"#,
        )
        .unwrap();
        let s = status(&dir, &fake(true));
        assert_eq!(
            s.mirror,
            MirrorState {
                mirror: "MIR".into(),
                member: "A".into(),
                role: MirrorRole::Backup,
                epoch: 12,
                ..MirrorState::default()
            }
        );
        assert_eq!(s.mirror_error, None);

        std::fs::write(tmp.path().join(MIRROR_STATE_FILE), br#"{ "role": "boss" }"#).unwrap();
        let s = status(&dir, &fake(true));
        assert_eq!(s.mirror.role, MirrorRole::None);
        assert!(s.mirror_error.as_deref().unwrap().contains("is not a mirror state"), "{:?}", s.mirror_error);
    }

    #[test]
    fn the_summary_comes_from_epoch_starts_and_the_last_position() {
        let m = MirrorState { epochs: vec![(16, 1), (33, 11), (49, 30)], ..MirrorState::default() };
        assert_eq!(m.summary(40), vec![(16, 10), (33, 29), (49, 40)]);
        // A journal cut back before the newest epoch started.
        assert_eq!(m.summary(20), vec![(16, 10), (33, 20)]);
        assert_eq!(m.summary(0), vec![]);
        assert_eq!(parse_summary(&summary_text(&m.summary(40))), Some(m.summary(40)));
        assert_eq!(parse_summary(""), Some(vec![]));
        assert_eq!(parse_summary("1:x"), None);
    }

    #[test]
    fn a_held_lock_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let _lock = dir.lock().unwrap();
        let s = status(&dir, &fake(true));
        assert_eq!(s.engine.state, EngineState::Hung, "no state file published yet");
        assert_eq!(s.engine.pid, std::process::id());
    }

    #[test]
    fn the_ping_probe_finds_the_engine_by_host_name() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = [0u8; 14];
            s.read_exact(&mut request).unwrap();
            s.write_all(b"+PONG\r\n").unwrap();
        });
        let probe = |host: &str| {
            PingProbe { host: host.into(), timeout: Duration::from_secs(2), tls: None }.answers(port, None)
        };
        assert!(probe("localhost"), "a host name is resolved");
        server.join().unwrap();
        // Nothing listens any more; a name that does not resolve is not an engine either.
        assert!(!probe("127.0.0.1"));
        assert!(!probe("no-such-host.invalid"));
    }
}
