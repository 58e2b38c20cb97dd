//! The local target: every member is an `engine` process with its `agent` beside it on
//! 127.0.0.1, the arbiter an `agent` alone, all under the lab directory. Ports come from
//! the lab state (chosen once), so restarts keep the addresses the mirror names.

use super::process::{self, alive, find_binary, read_pid};
use super::{failed, Addresses, Proc, Target, TargetError};
use crate::api::{Api, ApiTls};
use crate::certs::{LabCerts, Party};
use crate::labdir::{LabDir, LabState, MemberPorts};
use crate::manifest::Manifest;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long an engine may take to start (recovery included) before `start` gives up.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a graceful stop may take before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Local {
    dir: LabDir,
    /// The lab CA and certificates: engines, agents and the arbiter speak mutual TLS.
    certs: LabCerts,
    state: LabState,
    faults: bool,
    members: Vec<String>,
    /// App members (ECP application servers): an engine alone, no agent.
    apps: Vec<String>,
    /// `security.tls_clients`: superservers and web ports speak TLS only.
    tls_clients: bool,
    /// The operator's HTTPS configuration, made on first use.
    api_tls: std::sync::OnceLock<Option<ApiTls>>,
}

#[derive(serde::Deserialize)]
struct RunState {
    pid: u32,
    stopped_at: Option<String>,
}

impl Local {
    pub fn open(manifest: &Manifest, base: &Path) -> Result<Local, TargetError> {
        let dir = LabDir::new(base, &manifest.lab);
        let state = dir.state_for(manifest)?;
        let certs = LabCerts::new(dir.root.join("tls"));
        Ok(Local {
            certs,
            dir,
            state,
            faults: manifest.faults,
            members: manifest.members.iter().map(|m| m.name.clone()).collect(),
            apps: manifest.app_members().map(|m| m.name.clone()).collect(),
            tls_clients: manifest.tls_clients,
            api_tls: std::sync::OnceLock::new(),
        })
    }

    /// The lab CA, when clients must speak TLS to the engines.
    fn cacert(&self) -> Option<PathBuf> {
        self.tls_clients.then(|| self.certs.ca_file())
    }

    /// HTTPS to the engines, as the operator, when they serve TLS only.
    fn api_tls(&self) -> Option<ApiTls> {
        if !self.tls_clients {
            return None;
        }
        let load = || match self.operator_tls("LAB") {
            Ok(tls) => Some(tls.client_config()),
            Err(e) => {
                eprintln!("mirrorlab: {e}: the engines' web ports cannot be reached over TLS");
                None
            }
        };
        self.api_tls.get_or_init(load).clone()
    }

    fn engine_pid(&self, member: &str) -> Option<u32> {
        let bytes = std::fs::read(self.dir.data_dir(member).join("engine.state.json")).ok()?;
        let s: RunState = serde_json::from_slice(&bytes).ok()?;
        Some(s.pid).filter(|&pid| s.stopped_at.is_none() && alive(pid, "engine"))
    }

    fn agent_pid_file(&self, member: Option<&str>) -> PathBuf {
        match member {
            Some(m) => self.dir.member_dir(m).join("agent.pid"),
            None => self.dir.arbiter_dir().join("agent.pid"),
        }
    }

    fn agent_pid(&self, member: Option<&str>) -> Option<u32> {
        read_pid(&self.agent_pid_file(member)).filter(|&pid| alive(pid, "agent"))
    }

    /// Makes `party`'s certificate if it has none yet and names its files on `cmd`.
    fn tls_args(&self, cmd: &mut Command, party: Party<'_>) -> Result<(), String> {
        self.certs.ensure(&[party, Party::Operator]).map_err(|e| e.to_string())?;
        let files = self.certs.files(party);
        cmd.args(["--tls-ca", &files.ca, "--tls-cert", &files.certificate, "--tls-key", &files.key]);
        Ok(())
    }

    /// The installer's own certificate, for talking to the agents.
    fn operator_tls(&self, who: &str) -> Result<engine::tls::Tls, TargetError> {
        self.certs.ensure(&[Party::Operator]).map_err(|e| failed(who, e.to_string()))?;
        self.certs.operator().map_err(|e| failed(who, e.to_string()))
    }

    fn port(&self, member: &str) -> &MemberPorts {
        self.state.members.get(member).expect("the lab state has every manifest member (LabDir::state_for)")
    }

    /// Starts an agent (beside `member`'s data directory, or the arbiter) and waits until
    /// its port accepts connections.
    fn start_agent(&self, member: Option<&str>, port: u16) -> Result<(), TargetError> {
        let who = member.unwrap_or("ARBITER");
        let bin = find_binary("agent").map_err(|e| failed(who, e.to_string()))?;
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port.to_string(), "--interface", "127.0.0.1", "--log-level", "info"]);
        let party = member.map_or(Party::Arbiter, Party::Member);
        self.tls_args(&mut cmd, party).map_err(|e| failed(who, e))?;
        let dir = match member {
            Some(m) => {
                cmd.arg("--data-dir").arg(self.dir.data_dir(m));
                self.dir.member_dir(m)
            }
            None => self.dir.arbiter_dir(),
        };
        if self.faults {
            cmd.arg("--allow-fault-injection");
        }
        let log = dir.join("agent.log");
        let mut child = process::spawn(cmd, &log).map_err(|e| failed(who, format!("cannot start the agent: {e}")))?;
        std::fs::write(self.agent_pid_file(member), child.id().to_string())
            .map_err(|e| failed(who, format!("cannot record the agent's pid: {e}")))?;
        let mut exited = None;
        let up = process::await_condition(START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if let Some(status) = exited {
            return Err(failed(
                who,
                format!("the agent exited ({status}) on port {port}:\n{}", process::tail(&log, 15)),
            ));
        }
        if !up {
            return Err(failed(
                who,
                format!("the agent did not listen on port {port} within {START_TIMEOUT:?}; see {}", log.display()),
            ));
        }
        Ok(())
    }

    fn start_engine(&self, member: &str) -> Result<(), TargetError> {
        let bin = find_binary("engine").map_err(|e| failed(member, e.to_string()))?;
        let p = self.port(member);
        let data = self.dir.data_dir(member);
        std::fs::create_dir_all(&data).map_err(|e| failed(member, format!("cannot create {}: {e}", data.display())))?;
        let mut cmd = Command::new(bin);
        cmd.arg("start").arg("--data-dir").arg(&data);
        self.tls_args(&mut cmd, Party::Member(member)).map_err(|e| failed(member, e))?;
        if self.tls_clients {
            // The member's own lab certificate: it names the member and 127.0.0.1.
            let files = self.certs.files(Party::Member(member));
            cmd.args(["--client-tls-ca", &files.ca, "--client-tls-cert", &files.certificate]);
            cmd.args(["--client-tls-key", &files.key]);
        }
        cmd.args([
            "--superserver-port",
            &p.superserver.to_string(),
            "--web-port",
            &p.web.to_string(),
            "--log-level",
            "info",
        ]);
        if self.faults {
            cmd.arg("--allow-fault-injection");
        }
        // The lab's password, when it has one: set before the engine opens a port.
        let password_file = crate::credentials::password_file(&self.dir);
        if password_file.exists() {
            cmd.arg("--password-file").arg(&password_file);
        }
        let merge = self.merge_path(member);
        if merge.exists() {
            cmd.arg("--merge").arg(&merge);
        }
        let log = self.dir.member_dir(member).join("engine.log");
        let mut child =
            process::spawn(cmd, &log).map_err(|e| failed(member, format!("cannot start the engine: {e}")))?;
        let pid = child.id();
        let api = self.api(member);
        let mut exited = None;
        let up = process::await_condition(START_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            self.engine_pid(member) == Some(pid) && api.healthy()
        });
        if let Some(status) = exited {
            return Err(failed(
                member,
                format!("the engine exited ({status}) while starting:\n{}", process::tail(&log, 15)),
            ));
        }
        if !up {
            return Err(failed(
                member,
                format!("the engine did not serve within {START_TIMEOUT:?}; see {}", log.display()),
            ));
        }
        Ok(())
    }

    /// The installer's merge file of `member` (crate::ecp_merge), beside its data directory.
    fn merge_path(&self, member: &str) -> PathBuf {
        self.dir.member_dir(member).join(crate::ecp_merge::MERGE_FILE)
    }

    /// Installs `from` as database `db`'s file on `member` (target::copy's staging rule).
    fn install(&self, member: &str, from: &Path, db: &str, progress: &dyn Fn(u64, u64)) -> Result<u64, TargetError> {
        let dir = self.dir.data_dir(member).join("databases").join(db);
        super::copy::install_file(from, &dir, progress).map_err(|e| failed(member, e))
    }
}

impl Target for Local {
    fn is_fresh(&self, member: &str) -> bool {
        !self.dir.data_dir(member).join("engine.yaml").exists()
    }

    fn proc_state(&self, member: &str) -> Proc {
        match self.engine_pid(member) {
            Some(pid) if process::stopped(pid, "engine") => Proc::Paused,
            Some(_) => Proc::Running,
            None => Proc::Down,
        }
    }

    fn start(&self, member: &str) -> Result<(), TargetError> {
        if self.agent_pid(Some(member)).is_none() && !self.apps.iter().any(|a| a == member) {
            self.start_agent(Some(member), self.port(member).agent)?;
        }
        match self.proc_state(member) {
            Proc::Running => Ok(()),
            Proc::Paused => self.resume(member),
            Proc::Down => self.start_engine(member),
        }
    }

    fn stop(&self, member: &str) -> Result<(), TargetError> {
        if let Some(pid) = self.engine_pid(member) {
            process::terminate(pid, "engine", STOP_TIMEOUT)
                .map_err(|e| failed(member, format!("stopping the engine: {e}")))?;
        }
        if let Some(pid) = self.agent_pid(Some(member)) {
            process::terminate(pid, "agent", STOP_TIMEOUT)
                .map_err(|e| failed(member, format!("stopping the agent: {e}")))?;
        }
        Ok(())
    }

    fn kill(&self, member: &str) -> Result<(), TargetError> {
        let pid = self.engine_pid(member).ok_or_else(|| failed(member, "the engine is not running"))?;
        process::signal(pid, libc::SIGKILL).map_err(|e| failed(member, format!("SIGKILL: {e}")))?;
        if !process::await_condition(STOP_TIMEOUT, || !alive(pid, "engine")) {
            return Err(failed(member, format!("the engine (pid {pid}) survived SIGKILL for {STOP_TIMEOUT:?}")));
        }
        Ok(())
    }

    fn pause(&self, member: &str) -> Result<(), TargetError> {
        let pid = self.engine_pid(member).ok_or_else(|| failed(member, "the engine is not running"))?;
        process::signal(pid, libc::SIGSTOP).map_err(|e| failed(member, format!("SIGSTOP: {e}")))?;
        process::await_condition(Duration::from_secs(5), || process::stopped(pid, "engine"));
        Ok(())
    }

    fn resume(&self, member: &str) -> Result<(), TargetError> {
        let pid = self.engine_pid(member).ok_or_else(|| failed(member, "the engine is not running"))?;
        process::signal(pid, libc::SIGCONT).map_err(|e| failed(member, format!("SIGCONT: {e}")))?;
        process::await_condition(Duration::from_secs(5), || !process::stopped(pid, "engine"));
        Ok(())
    }

    fn arbiter_running(&self) -> bool {
        self.agent_pid(None).is_some()
    }

    fn start_arbiter(&self) -> Result<(), TargetError> {
        std::fs::create_dir_all(self.dir.arbiter_dir()).map_err(|e| failed("ARBITER", e.to_string()))?;
        self.start_agent(None, self.state.arbiter_port)
    }

    fn stop_arbiter(&self) -> Result<(), TargetError> {
        if let Some(pid) = self.agent_pid(None) {
            process::terminate(pid, "agent", STOP_TIMEOUT).map_err(|e| failed("ARBITER", format!("stopping: {e}")))?;
        }
        Ok(())
    }

    fn arbiter_address(&self) -> String {
        format!("127.0.0.1:{}", self.state.arbiter_port)
    }

    fn addresses(&self, member: &str) -> Addresses {
        let p = self.port(member);
        Addresses {
            superserver: format!("127.0.0.1:{}", p.superserver),
            mirror: format!("127.0.0.1:{}", p.mirror),
            agent: format!("127.0.0.1:{}", p.agent),
        }
    }

    fn api(&self, member: &str) -> Api {
        Api::reaching(member, "127.0.0.1", self.port(member).web, self.api_tls().as_ref())
            .with_password(crate::credentials::load(&self.dir))
    }

    fn ports(&self, member: &str) -> MemberPorts {
        self.port(member).clone()
    }

    fn copy_database(
        &self,
        _from: &str,
        source: &str,
        to: &str,
        db: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<u64, TargetError> {
        // Same machine: the source member's path is readable here as it is.
        self.install(to, Path::new(source), db, progress)
    }

    fn seed_database(&self, member: &str, db: &str, seed: &Path) -> Result<u64, TargetError> {
        self.install(member, seed, db, &|_, _| {})
    }

    fn run_script(&self, member: &str, namespace: &str, script: &str) -> Result<String, TargetError> {
        let password = crate::credentials::load(&self.dir);
        let ca = self.cacert();
        engine_session_script(
            member,
            self.port(member).superserver,
            namespace,
            script,
            password.as_deref(),
            ca.as_deref(),
        )
    }

    fn session(&self, member: &str, namespace: &str) -> Result<i32, TargetError> {
        let password = crate::credentials::load(&self.dir);
        let ca = self.cacert();
        engine_session(member, self.port(member).superserver, namespace, password.as_deref(), ca.as_deref())
    }

    fn logs(&self, member: &str) -> Result<String, TargetError> {
        let path = self.dir.data_dir(member).join("messages.log");
        std::fs::read_to_string(&path).map_err(|e| failed(member, format!("cannot read {}: {e}", path.display())))
    }

    fn agent_logs(&self, member: Option<&str>) -> Result<String, TargetError> {
        let path = self.log_file(member, true).expect("the local target's logs are files");
        std::fs::read_to_string(&path)
            .map_err(|e| failed(member.unwrap_or("ARBITER"), format!("cannot read {}: {e}", path.display())))
    }

    fn log_file(&self, member: Option<&str>, agent: bool) -> Option<PathBuf> {
        Some(match (member, agent) {
            (Some(m), false) => self.dir.data_dir(m).join("messages.log"),
            // Where start_agent sends the agent's output.
            (Some(m), true) => self.dir.member_dir(m).join("agent.log"),
            (None, _) => self.dir.arbiter_dir().join("agent.log"),
        })
    }

    fn agent_fault(&self, member: Option<&str>, peers: &[String]) -> Result<(), TargetError> {
        let port = match member {
            Some(m) => self.port(m).agent,
            None => self.state.arbiter_port,
        };
        let tls = self.operator_tls(member.unwrap_or("ARBITER"))?;
        agent_fault_at(member, port, peers, Some(&tls))
    }

    fn writes_merge_files(&self) -> bool {
        true
    }

    fn merge_file(&self, member: &str) -> Result<Option<String>, TargetError> {
        let path = self.merge_path(member);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(member, format!("cannot read {}: {e}", path.display()))),
        }
    }

    fn write_merge_file(&self, member: &str, text: &str, ecp_password: Option<&str>) -> Result<(), TargetError> {
        let data = self.dir.data_dir(member);
        std::fs::create_dir_all(&data).map_err(|e| failed(member, format!("cannot create {}: {e}", data.display())))?;
        // The password first: the engine reads the merge file as soon as it changes.
        if let Some(p) = ecp_password {
            let file = data.join(crate::ecp_merge::ECP_PASSWORD_FILE);
            crate::credentials::write_private(&file, p)
                .map_err(|e| failed(member, format!("cannot write {}: {e}", file.display())))?;
        }
        let path = self.merge_path(member);
        super::copy::write_atomically(&path, text.as_bytes())
            .map_err(|e| failed(member, format!("cannot write {}: {e}", path.display())))
    }

    fn down(&self, wipe: bool) -> Result<(), TargetError> {
        let mut first_error = None;
        for m in &self.members {
            if let Err(e) = self.stop(m) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = self.stop_arbiter() {
            first_error.get_or_insert(e);
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        if wipe {
            std::fs::remove_dir_all(&self.dir.root)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                .map_err(|e| failed("LAB", format!("cannot remove {}: {e}", self.dir.root.display())))?;
        }
        Ok(())
    }

    fn url(&self, member: &str) -> String {
        let scheme = if self.tls_clients { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/", self.port(member).web)
    }
}

/// Runs terminal commands through `engine session` against the superserver on
/// 127.0.0.1:`port` (the member's, or one a container publishes), returning its output;
/// a terminal error line fails the script.
pub(crate) fn engine_session_script(
    member: &str,
    port: u16,
    namespace: &str,
    script: &str,
    password: Option<&str>,
    cacert: Option<&Path>,
) -> Result<String, TargetError> {
    engine_session_script_on(member, "127.0.0.1", port, namespace, script, password, cacert)
}

/// `engine_session_script` against `host`:`port`.
pub(crate) fn engine_session_script_on(
    member: &str,
    host: &str,
    port: u16,
    namespace: &str,
    script: &str,
    password: Option<&str>,
    cacert: Option<&Path>,
) -> Result<String, TargetError> {
    let bin = find_binary("engine").map_err(|e| failed(member, e.to_string()))?;
    let mut cmd = Command::new(bin);
    with_login(&mut cmd, password, cacert);
    let mut child = cmd
        .args(["session", "-U", namespace, "--host", host, "--port", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(member, format!("cannot run engine session: {e}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let text = script.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let out = child.wait_with_output().map_err(|e| failed(member, format!("engine session: {e}")))?;
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() || stdout.lines().chain(stderr.lines()).any(is_error_line) {
        return Err(failed(
            member,
            format!("the script failed in namespace {namespace} ({}):\n{stdout}{stderr}", out.status),
        ));
    }
    Ok(stdout)
}

/// An interactive `engine session` on 127.0.0.1:`port`, inheriting this terminal.
pub(crate) fn engine_session(
    member: &str,
    port: u16,
    namespace: &str,
    password: Option<&str>,
    cacert: Option<&Path>,
) -> Result<i32, TargetError> {
    engine_session_on(member, "127.0.0.1", port, namespace, password, cacert)
}

/// `engine session` logs in as the lab's admin: the password through the environment,
/// never on the command line (which `ps` shows to everyone). `cacert`: the lab CA, when
/// the superserver speaks TLS only (`security.tls_clients`); else an inherited
/// `MIRRORLAB_CACERT` stays (the Compose lab's installer service sets it).
fn with_login(cmd: &mut Command, password: Option<&str>, cacert: Option<&Path>) {
    cmd.env_remove("MIRRORLAB_USER").env_remove("MIRRORLAB_PASSWORD");
    if let Some(p) = password {
        cmd.env("MIRRORLAB_USER", crate::credentials::ADMIN_USER).env("MIRRORLAB_PASSWORD", p);
    }
    if let Some(ca) = cacert {
        cmd.env("MIRRORLAB_CACERT", ca);
    }
}

/// `engine_session` against `host`:`port`.
pub(crate) fn engine_session_on(
    member: &str,
    host: &str,
    port: u16,
    namespace: &str,
    password: Option<&str>,
    cacert: Option<&Path>,
) -> Result<i32, TargetError> {
    let bin = find_binary("engine").map_err(|e| failed(member, e.to_string()))?;
    let mut cmd = Command::new(bin);
    with_login(&mut cmd, password, cacert);
    let status = cmd
        .args(["session", "-U", namespace, "--host", host, "--port", &port.to_string()])
        .status()
        .map_err(|e| failed(member, format!("cannot run engine session: {e}")))?;
    Ok(status.code().unwrap_or(1))
}

/// The fault switch of the agent (or arbiter, `member` None) listening on 127.0.0.1:`port`.
/// `tls`: the operator's certificate, when the lab's agents speak TLS.
pub(crate) fn agent_fault_at(
    member: Option<&str>,
    port: u16,
    peers: &[String],
    tls: Option<&engine::tls::Tls>,
) -> Result<(), TargetError> {
    let who = member.unwrap_or("ARBITER");
    let mut args: Vec<&str> = vec!["FAULT"];
    if peers.is_empty() {
        args.push("HEAL");
    } else {
        args.push("DROP");
        args.extend(peers.iter().map(String::as_str));
    }
    let address = format!("127.0.0.1:{port}");
    let timeout = Duration::from_secs(5);
    // The agent's certificate names its member, the arbiter's ARBITER_NAME.
    let peer = member.unwrap_or(engine::tls::ARBITER_NAME);
    let connected = match tls {
        Some(tls) => engine::client::Client::connect_tls(&address, timeout, tls, peer),
        None => engine::client::Client::connect(&address, timeout),
    };
    let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let reply = connected.and_then(|mut c| {
        c.set_timeout(Some(timeout))?;
        c.command(&argv)
    });
    match reply {
        Ok(_) => Ok(()),
        Err(engine::client::ClientError::Server(e)) => {
            Err(failed(who, format!("the agent refused {}: {e}", args.join(" "))))
        }
        Err(e) => Err(failed(who, format!("agent fault switch on port {port}: {e}"))),
    }
}

/// A terminal error line: `<CODE> detail` (docs/terminal.md).
fn is_error_line(line: &str) -> bool {
    let l = line.trim_start();
    l.strip_prefix('<')
        .and_then(|r| r.split_once('>'))
        .is_some_and(|(code, _)| !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase()))
}
