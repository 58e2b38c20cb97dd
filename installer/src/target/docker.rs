//! The docker target: every member is two containers of the engine image, its agent and
//! its engine in the agent's PID namespace (docker_layout.rs says why), with its data on a
//! named volume; the arbiter a container of the arbiter image; all on the lab's own
//! network `mirrorlab-<lab>`.
//!
//! Two address spaces: inside the network a member is its hostname (the member's name in
//! lower case) and its agent `<member>-agent`, on the image's fixed ports, and that is all
//! the mirror configuration ever names; from this machine a member is 127.0.0.1 on the
//! host ports Docker chose when the containers started, read back from the containers
//! (they change when one restarts) and recorded in the lab state for `status`.

use super::docker_api::{ContainerState, DockerApi, Spec};
use super::docker_layout::{network_name, plan, volume_name, Part, AGENT_KEY, MIRROR_PORT, SUPERSERVER_KEY, WEB_KEY};
use super::{docker_copy, failed, Addresses, Proc, Target, TargetError};
use crate::api::{Api, ApiTls};
use crate::certs::{LabCerts, Party};
use crate::labdir::{LabDir, LabState, MemberPorts};
use crate::manifest::Manifest;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a container's engine may take to serve (recovery included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `docker stop`'s grace period before Docker kills the container.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Docker {
    api: DockerApi,
    lab: String,
    dir: LabDir,
    /// The lab CA and certificates (the lab directory's `tls/`): each container gets its
    /// own before it first starts; the installer talks to agents with the operator's.
    certs: LabCerts,
    faults: bool,
    /// `security.tls_clients`: the engines' superserver and web port speak TLS only.
    tls_clients: bool,
    /// The operator's HTTPS configuration, made on first use.
    api_tls: std::sync::OnceLock<Option<ApiTls>>,
    members: Vec<String>,
    /// App members (ECP application servers): an engine container alone, no agent.
    apps: Vec<String>,
    /// Members whose engine reads the installer's merge file (crate::ecp_merge) from its
    /// volume: the container is told so when it is created.
    merged: Vec<String>,
    has_arbiter: bool,
    tag: String,
    /// Containers as last inspected (by container name), refreshed after every change.
    seen: RefCell<BTreeMap<String, ContainerState>>,
}

/// The image tag the lab runs: `MIRRORLAB_IMAGE_TAG`, default `latest` (which every
/// `mirrorlab images` build gets).
pub fn image_tag() -> String {
    std::env::var("MIRRORLAB_IMAGE_TAG").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| crate::images::LATEST.into())
}

impl Docker {
    /// HTTPS to the engines, as the operator, when they serve TLS only.
    fn api_tls(&self) -> Option<ApiTls> {
        if !self.tls_clients {
            return None;
        }
        let load = || {
            let loaded = self.certs.ensure(&[Party::Operator]).map_err(|e| e.to_string());
            match loaded.and_then(|()| self.certs.operator().map_err(|e| e.to_string())) {
                Ok(tls) => Some(tls.client_config()),
                Err(e) => {
                    eprintln!("mirrorlab: {e}: the engines' web ports cannot be reached over TLS");
                    None
                }
            }
        };
        self.api_tls.get_or_init(load).clone()
    }

    pub fn open(manifest: &Manifest, base: &Path) -> Result<Docker, TargetError> {
        let api = DockerApi::connect().map_err(|e| failed("DOCKER", e))?;
        let t = Docker {
            api,
            lab: manifest.lab.clone(),
            dir: LabDir::new(base, &manifest.lab),
            certs: LabCerts::new(LabDir::new(base, &manifest.lab).root.join("tls")),
            faults: manifest.faults,
            tls_clients: manifest.tls_clients,
            api_tls: std::sync::OnceLock::new(),
            members: manifest.members.iter().map(|m| m.name.clone()).collect(),
            apps: manifest.app_members().map(|m| m.name.clone()).collect(),
            merged: manifest
                .members
                .iter()
                .filter(|m| crate::ecp_merge::render(manifest, &m.name, &|_| String::new()).is_some())
                .map(|m| m.name.clone())
                .collect(),
            has_arbiter: manifest.arbiter.is_some(),
            tag: image_tag(),
            seen: RefCell::new(BTreeMap::new()),
        };
        for part in t.parts() {
            t.refresh(part)?;
        }
        Ok(t)
    }

    /// Every container the lab has: per member its engine then its agent (the order they
    /// stop in), then the arbiter.
    fn parts(&self) -> Vec<Part<'_>> {
        self.members
            .iter()
            .flat_map(|m| self.member_parts(m))
            .chain(self.has_arbiter.then_some(Part::Arbiter))
            .collect()
    }

    /// A member's containers, engine first: an app member has no agent.
    fn member_parts<'m>(&self, member: &'m str) -> Vec<Part<'m>> {
        if self.is_app(member) {
            vec![Part::Engine(member)]
        } else {
            vec![Part::Engine(member), Part::Agent(member)]
        }
    }

    fn is_app(&self, member: &str) -> bool {
        self.apps.iter().any(|a| a == member)
    }

    fn name(&self, part: Part) -> String {
        part.container(&self.lab)
    }

    /// Re-reads a container's state; returns it (None: no such container).
    fn refresh(&self, part: Part) -> Result<Option<ContainerState>, TargetError> {
        let name = self.name(part);
        let st = self.api.inspect(&name).map_err(|e| failed(part.who(), e))?;
        let mut seen = self.seen.borrow_mut();
        match &st {
            Some(s) => seen.insert(name, s.clone()),
            None => seen.remove(&name),
        };
        Ok(st)
    }

    fn state(&self, part: Part) -> Option<ContainerState> {
        self.seen.borrow().get(&self.name(part)).cloned()
    }

    fn running(&self, part: Part) -> bool {
        self.state(part).is_some_and(|s| s.running && !s.paused)
    }

    fn host_port(&self, part: Part, key: &str) -> u16 {
        self.state(part).and_then(|s| s.host_ports.get(key).copied()).unwrap_or(0)
    }

    /// Records the host ports now published in the lab state (for `status` and people).
    fn record_ports(&self) -> Result<(), TargetError> {
        let mut state = self.dir.read()?.unwrap_or_else(|| LabState { lab: self.lab.clone(), ..LabState::default() });
        for m in &self.members {
            state.members.insert(m.clone(), self.ports(m));
        }
        state.arbiter_port = self.host_port(Part::Arbiter, AGENT_KEY);
        self.dir.write(&state)?;
        Ok(())
    }

    /// The image must be there: no registry is reachable, so a missing one is built here,
    /// as `mirrorlab images` would (both images, from the binaries next to this mirrorlab),
    /// which needs no checkout, but tagged with the lab's tag alone.
    fn ensure_image(&self, which: &str, who: &str) -> Result<String, TargetError> {
        let image = format!("mirrorlab/{which}:{}", self.tag);
        if self.api.image_exists(&image).map_err(|e| failed(who, e))? {
            return Ok(image);
        }
        eprintln!(
            "mirrorlab: image {image} is missing: building the images (as `mirrorlab images`, tag {} only)",
            self.tag
        );
        let dir = crate::images::binaries_dir().map_err(|e| failed(who, e.to_string()))?;
        let opts =
            crate::images::Options { extra_tags: vec![self.tag.clone()], only_extra_tags: true, no_cache: false };
        // Progress on stderr: stdout may be the command's JSON document.
        crate::images::build(&self.api, &dir, &opts, &mut |name, line| eprintln!("[{name}] {line}"))
            .map_err(|e| failed(who, format!("image {image} is missing and building it failed: {e}")))?;
        Ok(image)
    }

    fn create(&self, part: Part) -> Result<(), TargetError> {
        let who = part.who();
        let f = |e: String| failed(who, e);
        let mut p = plan(&self.lab, part, self.faults, self.tls_clients);
        // The lab's password reaches the engine before it starts (see `create`'s end).
        let password = match part {
            Part::Engine(_) => crate::credentials::load(&self.dir),
            _ => None,
        };
        if password.is_some() {
            p.env.push(crate::credentials::PASSWORD_FILE_ENV.into());
        }
        if let Part::Engine(m) = part {
            if self.merged.iter().any(|x| x == m) {
                p.env.push(format!("MIRRORLAB_MERGE_FILE={}", merge_file_in_volume()));
            }
            if self.is_app(m) {
                // Alone: no agent container whose PID namespace it would join.
                p.pid_of = None;
            }
        }
        let image = self.ensure_image(p.image, who)?;
        if let Some(v) = &p.volume {
            self.api.ensure_volume(v, &self.lab).map_err(f)?;
        }
        let alias = part.alias();
        self.api
            .create_container(&Spec {
                name: &self.name(part),
                image: &image,
                hostname: &alias,
                network: &network_name(&self.lab),
                alias: &alias,
                lab: &self.lab,
                publish: p.publish,
                entrypoint: p.entrypoint,
                cmd: p.cmd,
                env: p.env,
                binds: p.volume.iter().map(|v| format!("{v}:/data")).collect(),
                pid_mode: p.pid_of.map(|c| format!("container:{c}")),
                no_healthcheck: p.no_healthcheck,
            })
            .map_err(f)?;
        // Into the data volume through the created container, before its first start: the
        // engine never serves without it.
        if let Some(password) = password {
            let archive = crate::credentials::volume_archive(&password, docker_copy::ENGINE_UID).map_err(f)?;
            self.api.upload(&self.name(part), "/data", archive).map_err(f)?;
        }
        self.give_tls_files(part)
    }

    /// Uploads the container's TLS files (made once in the lab directory) into the new,
    /// not yet started container: the process finds them at its first start.
    fn give_tls_files(&self, part: Part) -> Result<(), TargetError> {
        let who = part.who();
        let party = super::docker_layout::party(part);
        self.certs.ensure(&[party, Party::Operator]).map_err(|e| failed(who, e.to_string()))?;
        let (cert, key) = self.certs.paths(party);
        let read = |p: &Path| std::fs::read(p).map_err(|e| failed(who, format!("reading {}: {e}", p.display())));
        let archive = docker_copy::tls_archive(&read(&self.certs.ca_file())?, &read(&cert)?, &read(&key)?)
            .map_err(|e| failed(who, e))?;
        self.api.upload(&self.name(part), "/", archive).map_err(|e| failed(who, e))
    }

    /// Creates (if needed) and starts a container, then waits for `ready`.
    fn run_container(&self, part: Part, ready: &dyn Fn(&Docker) -> bool) -> Result<(), TargetError> {
        let who = part.who();
        let name = self.name(part);
        let f = |e: String| failed(who, e);
        self.api.ensure_network(&network_name(&self.lab), &self.lab).map_err(f)?;
        let state = match self.refresh(part)? {
            Some(s) => s,
            None => {
                self.create(part)?;
                ContainerState::default()
            }
        };
        if state.paused {
            self.api.unpause(&name).map_err(f)?;
        } else if !state.running {
            self.api.start(&name).map_err(f)?;
        }
        // Await readiness; a container that stops meanwhile is reported with its log.
        let mut stopped = Ok(false);
        let became_ready = engine::wait::until(START_TIMEOUT, Duration::from_millis(50), || match self.refresh(part) {
            Ok(Some(s)) if s.running => ready(self),
            Ok(_) => {
                stopped = Ok(true);
                true
            }
            Err(e) => {
                stopped = Err(e);
                true
            }
        });
        if stopped? {
            let log = self.api.logs(&name).unwrap_or_default();
            return Err(failed(
                who,
                format!("container {name} stopped while starting; its log ends:\n{}", tail(&log, 15)),
            ));
        }
        if !became_ready {
            return Err(failed(
                who,
                format!("container {name} did not become ready within {START_TIMEOUT:?}; see `docker logs {name}`"),
            ));
        }
        self.record_ports()
    }

    /// Readiness of an agent (member's or arbiter): its published port accepts a connection.
    fn agent_port_open(&self, part: Part) -> bool {
        let p = self.host_port(part, AGENT_KEY);
        p != 0 && std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
    }

    /// Stops a container (unpausing it first: a paused one cannot take SIGTERM).
    fn stop_container(&self, part: Part) -> Result<(), TargetError> {
        let name = self.name(part);
        if self.state(part).is_some_and(|s| s.paused) {
            self.api.unpause(&name).map_err(|e| failed(part.who(), e))?;
        }
        self.api.stop(&name, STOP_TIMEOUT).map_err(|e| failed(part.who(), e))?;
        self.refresh(part)?;
        Ok(())
    }
}

/// Where a member's engine finds the installer's merge file: its data volume.
fn merge_file_in_volume() -> String {
    format!("/data/{}", crate::ecp_merge::MERGE_FILE)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Target for Docker {
    fn is_fresh(&self, member: &str) -> bool {
        // The engine writes engine.yaml on its first start; the archive API reads it from
        // a stopped container too, and both of a member's containers mount its volume.
        for part in [Part::Engine(member), Part::Agent(member)] {
            if self.state(part).is_some() {
                let mut sink = std::io::sink();
                return !self.api.download(&self.name(part), "/data/engine.yaml", &mut sink).unwrap_or(true);
            }
        }
        // No container: the member is fresh unless a volume with its data is left.
        !self.api.volume_exists(&volume_name(&self.lab, member)).unwrap_or(true)
    }

    fn proc_state(&self, member: &str) -> Proc {
        match self.state(Part::Engine(member)) {
            Some(s) if s.paused => Proc::Paused,
            Some(s) if s.running => Proc::Running,
            _ => Proc::Down,
        }
    }

    /// The agent first (the engine joins its PID namespace), then the engine.
    fn start(&self, member: &str) -> Result<(), TargetError> {
        let (agent, engine) = (Part::Agent(member), Part::Engine(member));
        if self.is_app(member) {
            return self.run_container(engine, &|t: &Docker| t.api(member).healthy());
        }
        let agent_state = self.refresh(agent)?;
        if agent_state.is_none() && self.refresh(engine)?.is_some() {
            // An engine container without its agent's was made for a PID namespace that
            // is gone (or by the one-container layout of older versions): made anew.
            self.api.remove_container(&self.name(engine)).map_err(|e| failed(member, e))?;
            self.refresh(engine)?;
        }
        if !agent_state.is_some_and(|s| s.running) {
            // The engine died with the agent's namespace; its container may not have been
            // seen to exit yet. Stopping it first makes the start below a fresh one.
            self.stop_container(engine)?;
        }
        self.run_container(agent, &|t: &Docker| t.agent_port_open(agent))?;
        self.run_container(engine, &|t: &Docker| t.api(member).healthy())
    }

    /// The engine first (SIGTERM: a primary hands over while its agent still answers),
    /// then the agent.
    fn stop(&self, member: &str) -> Result<(), TargetError> {
        for part in self.member_parts(member) {
            self.stop_container(part)?;
        }
        Ok(())
    }

    /// SIGKILL of the engine's container only: the agent survives and reports it down.
    fn kill(&self, member: &str) -> Result<(), TargetError> {
        if self.proc_state(member) != Proc::Running {
            return Err(failed(member, "the engine's container is not running"));
        }
        let engine = Part::Engine(member);
        let name = self.name(engine);
        self.api.kill(&name).map_err(|e| failed(member, e))?;
        let ok = super::process::await_condition(STOP_TIMEOUT, || {
            self.refresh(engine).ok().flatten().is_some_and(|s| !s.running)
        });
        if !ok {
            return Err(failed(member, format!("container {name} still runs {STOP_TIMEOUT:?} after SIGKILL")));
        }
        Ok(())
    }

    /// The engine's container hangs; its agent still answers, as when an instance hangs.
    fn pause(&self, member: &str) -> Result<(), TargetError> {
        let engine = Part::Engine(member);
        self.api.pause(&self.name(engine)).map_err(|e| failed(member, e))?;
        self.refresh(engine)?;
        Ok(())
    }

    fn resume(&self, member: &str) -> Result<(), TargetError> {
        let engine = Part::Engine(member);
        self.api.unpause(&self.name(engine)).map_err(|e| failed(member, e))?;
        self.refresh(engine)?;
        Ok(())
    }

    fn arbiter_running(&self) -> bool {
        self.state(Part::Arbiter).is_some_and(|s| s.running)
    }

    fn start_arbiter(&self) -> Result<(), TargetError> {
        self.run_container(Part::Arbiter, &|t: &Docker| t.agent_port_open(Part::Arbiter))
    }

    fn stop_arbiter(&self) -> Result<(), TargetError> {
        self.stop_container(Part::Arbiter)
    }

    fn arbiter_address(&self) -> String {
        super::docker_layout::arbiter_address()
    }

    fn addresses(&self, member: &str) -> Addresses {
        super::docker_layout::addresses(member)
    }

    fn api(&self, member: &str) -> Api {
        let port = self.host_port(Part::Engine(member), WEB_KEY);
        Api::reaching(member, "127.0.0.1", port, self.api_tls().as_ref())
            .with_password(crate::credentials::load(&self.dir))
    }

    /// Host ports (0 while the container is down), and the in-network mirror port.
    fn ports(&self, member: &str) -> MemberPorts {
        let engine = Part::Engine(member);
        MemberPorts {
            superserver: self.host_port(engine, SUPERSERVER_KEY),
            web: self.host_port(engine, WEB_KEY),
            mirror: MIRROR_PORT,
            agent: self.host_port(Part::Agent(member), AGENT_KEY),
        }
    }

    fn copy_database(
        &self,
        from: &str,
        source: &str,
        to: &str,
        db: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<u64, TargetError> {
        let container = self.name(Part::Engine(from));
        let mut archive = Vec::new();
        let found = self.api.download(&container, source, &mut archive).map_err(|e| failed(from, e))?;
        if !found {
            return Err(failed(from, format!("{source} does not exist in container {container}")));
        }
        let bytes = docker_copy::file_from_archive(&archive).map_err(|e| failed(from, format!("{source}: {e}")))?;
        drop(archive);
        self.upload(to, db, &bytes, progress)
    }

    fn seed_database(&self, member: &str, db: &str, seed: &Path) -> Result<u64, TargetError> {
        let bytes =
            std::fs::read(seed).map_err(|e| failed(member, format!("cannot read the seed {}: {e}", seed.display())))?;
        self.upload(member, db, &bytes, &|_, _| {})
    }

    fn run_script(&self, member: &str, namespace: &str, script: &str) -> Result<String, TargetError> {
        let port = self.host_port(Part::Engine(member), SUPERSERVER_KEY);
        let password = crate::credentials::load(&self.dir);
        let ca = self.tls_clients.then(|| self.certs.ca_file());
        super::local::engine_session_script(member, port, namespace, script, password.as_deref(), ca.as_deref())
    }

    fn session(&self, member: &str, namespace: &str) -> Result<i32, TargetError> {
        let password = crate::credentials::load(&self.dir);
        let port = self.host_port(Part::Engine(member), SUPERSERVER_KEY);
        let ca = self.tls_clients.then(|| self.certs.ca_file());
        super::local::engine_session(member, port, namespace, password.as_deref(), ca.as_deref())
    }

    /// The engine's container log (the agent's is its own container's, `docker logs`).
    fn logs(&self, member: &str) -> Result<String, TargetError> {
        self.api.logs(&self.name(Part::Engine(member))).map_err(|e| failed(member, e))
    }

    fn agent_logs(&self, member: Option<&str>) -> Result<String, TargetError> {
        let part = member.map_or(Part::Arbiter, Part::Agent);
        self.api.logs(&self.name(part)).map_err(|e| failed(part.who(), e))
    }

    fn follow_log(
        &self,
        member: Option<&str>,
        agent: bool,
        lines: usize,
        done: &dyn Fn() -> bool,
        out: &mut dyn FnMut(&str),
    ) -> Result<bool, TargetError> {
        let part = match member {
            Some(m) if agent => Part::Agent(m),
            Some(m) => Part::Engine(m),
            None => Part::Arbiter,
        };
        self.api
            .follow_logs(&self.name(part), lines, crate::commands::FOLLOW_PERIOD, done, out)
            .map_err(|e| failed(part.who(), e))?;
        Ok(true)
    }

    /// Through the agent's published port: the member's agent container (started with the
    /// switch from the environment when the manifest says `faults: true`) or the arbiter.
    fn agent_fault(&self, member: Option<&str>, peers: &[String]) -> Result<(), TargetError> {
        let part = member.map_or(Part::Arbiter, Part::Agent);
        let port = self.host_port(part, AGENT_KEY);
        if port == 0 {
            return Err(failed(
                part.who(),
                format!(
                    "container {} publishes no agent port (stopped, or cut off the lab network: `mirrorlab heal`)",
                    self.name(part)
                ),
            ));
        }
        self.certs.ensure(&[Party::Operator]).map_err(|e| failed(part.who(), e.to_string()))?;
        let tls = self.certs.operator().map_err(|e| failed(part.who(), e.to_string()))?;
        super::local::agent_fault_at(member, port, peers, Some(&tls))
    }

    /// Disconnects both of the member's containers: the others can reach neither its
    /// engine nor its agent, as when a machine drops off the network.
    fn isolate(&self, member: &str) -> Result<bool, TargetError> {
        let network = network_name(&self.lab);
        for part in [Part::Engine(member), Part::Agent(member)] {
            if self.refresh(part)?.is_some_and(|s| s.networks.contains(&network)) {
                self.api.disconnect_network(&network, &self.name(part)).map_err(|e| failed(member, e))?;
                self.refresh(part)?;
            }
        }
        Ok(true)
    }

    fn reconnect(&self) -> Result<(), TargetError> {
        let network = network_name(&self.lab);
        for m in &self.members {
            for part in [Part::Agent(m), Part::Engine(m)] {
                if self.refresh(part)?.is_some_and(|s| !s.networks.contains(&network)) {
                    self.api.connect_network(&network, &self.name(part), &part.alias()).map_err(|e| failed(m, e))?;
                    self.refresh(part)?;
                }
            }
        }
        self.record_ports()
    }

    fn writes_merge_files(&self) -> bool {
        true
    }

    fn merge_file(&self, member: &str) -> Result<Option<String>, TargetError> {
        let Some(part) = self.member_parts(member).into_iter().find(|p| self.state(*p).is_some()) else {
            return Ok(None);
        };
        let mut archive = Vec::new();
        let found = self
            .api
            .download(&self.name(part), &merge_file_in_volume(), &mut archive)
            .map_err(|e| failed(member, e))?;
        if !found {
            return Ok(None);
        }
        let bytes = docker_copy::file_from_archive(&archive).map_err(|e| failed(member, e))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Into the member's volume through one of its containers, created (not started) when
    /// it has none yet: the engine container of an app member, else the agent's, whose
    /// namespace the engine joins later. Files belong to the engine's user, the password
    /// 0600.
    fn write_merge_file(&self, member: &str, text: &str, ecp_password: Option<&str>) -> Result<(), TargetError> {
        let part = if self.is_app(member) { Part::Engine(member) } else { Part::Agent(member) };
        if self.refresh(part)?.is_none() {
            self.api.ensure_network(&network_name(&self.lab), &self.lab).map_err(|e| failed(member, e))?;
            self.create(part)?;
            self.refresh(part)?;
        }
        let io = |e: std::io::Error| failed(member, format!("building the merge file's archive: {e}"));
        let mut b = tar::Builder::new(Vec::new());
        if let Some(p) = ecp_password {
            let bytes = format!("{p}\n").into_bytes();
            docker_copy::append_entry(
                &mut b,
                crate::ecp_merge::ECP_PASSWORD_FILE,
                Some(&bytes),
                0o600,
                docker_copy::ENGINE_UID,
            )
            .map_err(io)?;
        }
        docker_copy::append_entry(
            &mut b,
            crate::ecp_merge::MERGE_FILE,
            Some(text.as_bytes()),
            0o644,
            docker_copy::ENGINE_UID,
        )
        .map_err(io)?;
        let archive = b.into_inner().map_err(io)?;
        self.api.upload(&self.name(part), "/data", archive).map_err(|e| failed(member, e))
    }

    fn down(&self, wipe: bool) -> Result<(), TargetError> {
        let mut first_error: Option<TargetError> = None;
        for part in self.parts() {
            let name = self.name(part);
            // A graceful stop first so a primary's journal is closed cleanly; then removal.
            let r = self.api.stop(&name, STOP_TIMEOUT).and_then(|_| self.api.remove_container(&name));
            if let Err(e) = r {
                first_error.get_or_insert(failed(part.who(), e));
            }
        }
        if let Err(e) = self.api.remove_network(&network_name(&self.lab)) {
            first_error.get_or_insert(failed("LAB", e));
        }
        if wipe {
            for m in &self.members {
                if let Err(e) = self.api.remove_volume(&volume_name(&self.lab, m)) {
                    first_error.get_or_insert(failed(m, e));
                }
            }
            if let Err(e) = std::fs::remove_dir_all(&self.dir.root) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    first_error.get_or_insert(failed("LAB", format!("cannot remove {}: {e}", self.dir.root.display())));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn url(&self, member: &str) -> String {
        let scheme = if self.tls_clients { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/", self.host_port(Part::Engine(member), WEB_KEY))
    }
}

impl Docker {
    /// Uploads the file under its staging name into the member's volume (through its agent
    /// container, which runs whenever the member does), then has `mirrorlab-init
    /// install-file` there fsync it and rename it into place: Docker's extraction fsyncs
    /// nothing.
    fn upload(&self, to: &str, db: &str, bytes: &[u8], progress: &dyn Fn(u64, u64)) -> Result<u64, TargetError> {
        let agent = Part::Agent(to);
        let container = self.name(agent);
        if !self.running(agent) {
            return Err(failed(to, format!("container {container} is not running: no way to install {db}'s file")));
        }
        let total = bytes.len() as u64;
        let archive = docker_copy::staging_archive(db, bytes).map_err(|e| failed(to, e))?;
        self.api.upload(&container, "/data", archive).map_err(|e| failed(to, e))?;
        let (staging, file) = docker_copy::paths_in_volume("/data", db);
        let cmd = super::docker_layout::install_file_command(&staging, &file);
        self.api.exec(&container, &cmd.iter().map(String::as_str).collect::<Vec<_>>()).map_err(|e| failed(to, e))?;
        progress(total, total);
        Ok(total)
    }
}
