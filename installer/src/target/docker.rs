//! The docker target: every member is a container of the engine image (agent + engine
//! under `mirrorlab-init`) with its data on a named volume, the arbiter a container of the
//! arbiter image, all on the lab's own network `mirrorlab-<lab>`.
//!
//! Two address spaces: inside the network a member is its hostname (the member's name in
//! lower case) on the image's fixed ports, and that is all the mirror configuration ever
//! names; from this machine a member is 127.0.0.1 on the host ports Docker chose when the
//! container started, read back from the container (they change when it restarts) and
//! recorded in the lab state for `status`.
//!
//! Every object is named `mirrorlab-<lab>-...` and labelled with the lab, so labs (and
//! test runs) on one daemon never collide and leftovers can be found.

use super::docker_api::{ContainerState, DockerApi, Spec};
use super::{docker_copy, failed, Addresses, Proc, Target, TargetError};
use crate::api::Api;
use crate::labdir::{LabDir, LabState, MemberPorts};
use crate::manifest::Manifest;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Ports inside the network (images/engine/Dockerfile, docs/docker.md).
pub const SUPERSERVER_PORT: u16 = 1972;
pub const WEB_PORT: u16 = 52773;
pub const AGENT_PORT: u16 = 2188;
/// The mirror data channel: whatever the member's mirror address names; the lab's convention.
pub const MIRROR_PORT: u16 = 2189;
/// The arbiter's hostname in the lab network.
pub const ARBITER_HOST: &str = "arbiter";
/// How long a container's engine may take to serve (recovery included).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// `docker stop`'s grace period before Docker kills the container.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

const SUPERSERVER_KEY: &str = "1972/tcp";
const WEB_KEY: &str = "52773/tcp";
const AGENT_KEY: &str = "2188/tcp";

pub struct Docker {
    api: DockerApi,
    lab: String,
    dir: LabDir,
    faults: bool,
    members: Vec<String>,
    has_arbiter: bool,
    tag: String,
    /// Containers as last inspected (host ports), refreshed after every change.
    seen: RefCell<BTreeMap<String, ContainerState>>,
}

/// The image tag the lab runs: `MIRRORLAB_IMAGE_TAG`, default `latest` (which every
/// `mirrorlab images` build gets).
pub fn image_tag() -> String {
    std::env::var("MIRRORLAB_IMAGE_TAG").ok().filter(|t| !t.is_empty()).unwrap_or_else(|| crate::images::LATEST.into())
}

/// Docker object names of a lab: shared by the target and by tests that clean up.
pub fn network_name(lab: &str) -> String {
    format!("mirrorlab-{lab}")
}

pub fn container_name(lab: &str, member: Option<&str>) -> String {
    format!("mirrorlab-{lab}-{}", member.map_or(ARBITER_HOST.to_string(), |m| m.to_ascii_lowercase()))
}

pub fn volume_name(lab: &str, member: &str) -> String {
    format!("mirrorlab-{lab}-{}-data", member.to_ascii_lowercase())
}

/// A member's hostname in the lab network (Docker's DNS matches names case-blind, the
/// engine's resolver sends what it is given: lower case is the one spelling used).
pub fn hostname(member: &str) -> String {
    member.to_ascii_lowercase()
}

impl Docker {
    pub fn open(manifest: &Manifest, base: &Path) -> Result<Docker, TargetError> {
        let api = DockerApi::connect().map_err(|e| failed("DOCKER", e))?;
        let t = Docker {
            api,
            lab: manifest.lab.clone(),
            dir: LabDir::new(base, &manifest.lab),
            faults: manifest.faults,
            members: manifest.members.iter().map(|m| m.name.clone()).collect(),
            has_arbiter: manifest.arbiter.is_some(),
            tag: image_tag(),
            seen: RefCell::new(BTreeMap::new()),
        };
        for m in t.members.clone() {
            t.refresh(Some(&m)).map_err(|e| failed(&m, e))?;
        }
        if t.has_arbiter {
            t.refresh(None).map_err(|e| failed("ARBITER", e))?;
        }
        Ok(t)
    }

    fn key(member: Option<&str>) -> String {
        member.unwrap_or("ARBITER").to_string()
    }

    fn container(&self, member: Option<&str>) -> String {
        container_name(&self.lab, member)
    }

    /// Re-reads a container's state; returns it (None: no such container).
    fn refresh(&self, member: Option<&str>) -> Result<Option<ContainerState>, String> {
        let st = self.api.inspect(&self.container(member))?;
        let mut seen = self.seen.borrow_mut();
        match &st {
            Some(s) => seen.insert(Self::key(member), s.clone()),
            None => seen.remove(&Self::key(member)),
        };
        Ok(st)
    }

    fn host_port(&self, member: Option<&str>, key: &str) -> u16 {
        self.seen.borrow().get(&Self::key(member)).and_then(|s| s.host_ports.get(key).copied()).unwrap_or(0)
    }

    /// Records the host ports now published in the lab state (for `status` and people).
    fn record_ports(&self) -> Result<(), TargetError> {
        let mut state = self.dir.read()?.unwrap_or_else(|| LabState { lab: self.lab.clone(), ..LabState::default() });
        for m in &self.members {
            state.members.insert(m.clone(), self.ports(m));
        }
        state.arbiter_port = self.host_port(None, AGENT_KEY);
        self.dir.write(&state)?;
        Ok(())
    }

    fn image(&self, which: &str) -> String {
        format!("mirrorlab/{which}:{}", self.tag)
    }

    /// The image must be there: no registry is reachable, so a missing one is built here,
    /// as `mirrorlab images --tag <tag>` would (both images, from the binaries next to this
    /// mirrorlab), which needs no checkout.
    fn ensure_image(&self, which: &str, who: &str) -> Result<String, TargetError> {
        let image = self.image(which);
        if self.api.image_exists(&image).map_err(|e| failed(who, e))? {
            return Ok(image);
        }
        eprintln!(
            "mirrorlab: image {image} is missing: building the images (as `mirrorlab images --tag {}`)",
            self.tag
        );
        let dir = crate::images::binaries_dir().map_err(|e| failed(who, e.to_string()))?;
        let opts = crate::images::Options { extra_tags: vec![self.tag.clone()], no_cache: false };
        // Progress on stderr: stdout may be the command's JSON document.
        crate::images::build(&self.api, &dir, &opts, &mut |name, line| eprintln!("[{name}] {line}"))
            .map_err(|e| failed(who, format!("image {image} is missing and building it failed: {e}")))?;
        Ok(image)
    }

    /// Creates (if needed) and starts a container, then waits for `ready`.
    fn run_container(&self, member: Option<&str>, ready: &dyn Fn(&Docker) -> bool) -> Result<(), TargetError> {
        let who = Self::key(member);
        let name = self.container(member);
        let network = network_name(&self.lab);
        let f = |e: String| failed(&who, e);
        self.api.ensure_network(&network, &self.lab).map_err(f)?;
        let state = match self.refresh(member).map_err(f)? {
            Some(s) => s,
            None => {
                let c = self.container_plan(member)?;
                self.api
                    .create_container(&Spec {
                        name: &name,
                        image: &c.image,
                        hostname: &c.alias,
                        network: &network,
                        alias: &c.alias,
                        lab: &self.lab,
                        publish: c.publish,
                        cmd: c.cmd,
                        env: vec![],
                        binds: c.binds,
                    })
                    .map_err(f)?;
                ContainerState::default()
            }
        };
        if state.paused {
            self.api.unpause(&name).map_err(f)?;
        } else if !state.running {
            self.api.start(&name).map_err(f)?;
        }
        // Await readiness; a container that stops meanwhile is reported with its log.
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let st = self.refresh(member).map_err(f)?;
            if !st.as_ref().is_some_and(|s| s.running) {
                let log = self.api.logs(&name).unwrap_or_default();
                return Err(failed(
                    &who,
                    format!("container {name} stopped while starting; its log ends:\n{}", tail(&log, 15)),
                ));
            }
            if ready(self) {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(failed(
                    &who,
                    format!("container {name} did not become ready within {START_TIMEOUT:?}; see `docker logs {name}`"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.record_ports()
    }
}

/// What a new container runs: image, in-network name, command, volumes, published ports.
struct ContainerPlan {
    image: String,
    alias: String,
    cmd: Vec<String>,
    binds: Vec<String>,
    publish: &'static [&'static str],
}

impl Docker {
    fn container_plan(&self, member: Option<&str>) -> Result<ContainerPlan, TargetError> {
        let who = Self::key(member);
        let Some(m) = member else {
            return Ok(ContainerPlan {
                image: self.ensure_image("arbiter", &who)?,
                alias: ARBITER_HOST.to_string(),
                cmd: if self.faults { vec!["--allow-fault-injection".into()] } else { vec![] },
                binds: vec![],
                publish: &[AGENT_KEY],
            });
        };
        let volume = volume_name(&self.lab, m);
        self.api.ensure_volume(&volume, &self.lab).map_err(|e| failed(&who, e))?;
        // Arguments of `engine start` (mirrorlab-init passes them on).
        let mut cmd = vec![
            "--superserver-port".to_string(),
            SUPERSERVER_PORT.to_string(),
            "--web-port".to_string(),
            WEB_PORT.to_string(),
        ];
        if self.faults {
            cmd.push("--allow-fault-injection".into());
        }
        Ok(ContainerPlan {
            image: self.ensure_image("engine", &who)?,
            alias: hostname(m),
            cmd,
            binds: vec![format!("{volume}:/data")],
            publish: &[SUPERSERVER_KEY, WEB_KEY, AGENT_KEY],
        })
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Target for Docker {
    fn is_fresh(&self, member: &str) -> bool {
        let name = self.container(Some(member));
        if self.seen.borrow().contains_key(member) {
            // The engine writes engine.yaml on its first start; the archive API reads it
            // from a stopped container too.
            let mut sink = std::io::sink();
            return !self.api.download(&name, "/data/engine.yaml", &mut sink).unwrap_or(true);
        }
        // No container: the member is fresh unless a volume with its data is left.
        !self.api.volume_exists(&volume_name(&self.lab, member)).unwrap_or(true)
    }

    fn proc_state(&self, member: &str) -> Proc {
        match self.seen.borrow().get(member) {
            Some(s) if s.paused => Proc::Paused,
            Some(s) if s.running => Proc::Running,
            _ => Proc::Down,
        }
    }

    fn start(&self, member: &str) -> Result<(), TargetError> {
        self.run_container(Some(member), &|t: &Docker| t.api(member).healthy())
    }

    fn stop(&self, member: &str) -> Result<(), TargetError> {
        let name = self.container(Some(member));
        if self.proc_state(member) == Proc::Paused {
            self.api.unpause(&name).map_err(|e| failed(member, e))?;
        }
        // SIGTERM reaches the engine first (mirrorlab-init), so a primary hands over.
        self.api.stop(&name, STOP_TIMEOUT).map_err(|e| failed(member, e))?;
        self.refresh(Some(member)).map_err(|e| failed(member, e))?;
        Ok(())
    }

    fn kill(&self, member: &str) -> Result<(), TargetError> {
        if self.proc_state(member) != Proc::Running {
            return Err(failed(member, "the container is not running"));
        }
        let name = self.container(Some(member));
        self.api.kill(&name).map_err(|e| failed(member, e))?;
        let ok = super::process::await_condition(STOP_TIMEOUT, || {
            self.refresh(Some(member)).ok().flatten().is_some_and(|s| !s.running)
        });
        if !ok {
            return Err(failed(member, format!("container {name} still runs {STOP_TIMEOUT:?} after SIGKILL")));
        }
        Ok(())
    }

    fn pause(&self, member: &str) -> Result<(), TargetError> {
        self.api.pause(&self.container(Some(member))).map_err(|e| failed(member, e))?;
        self.refresh(Some(member)).map_err(|e| failed(member, e))?;
        Ok(())
    }

    fn resume(&self, member: &str) -> Result<(), TargetError> {
        self.api.unpause(&self.container(Some(member))).map_err(|e| failed(member, e))?;
        self.refresh(Some(member)).map_err(|e| failed(member, e))?;
        Ok(())
    }

    fn arbiter_running(&self) -> bool {
        self.seen.borrow().get("ARBITER").is_some_and(|s| s.running)
    }

    fn start_arbiter(&self) -> Result<(), TargetError> {
        let port_open = |t: &Docker| {
            let p = t.host_port(None, AGENT_KEY);
            p != 0 && std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
        };
        self.run_container(None, &port_open)
    }

    fn stop_arbiter(&self) -> Result<(), TargetError> {
        self.api.stop(&self.container(None), STOP_TIMEOUT).map_err(|e| failed("ARBITER", e))?;
        self.refresh(None).map_err(|e| failed("ARBITER", e))?;
        Ok(())
    }

    fn arbiter_address(&self) -> String {
        format!("{ARBITER_HOST}:{AGENT_PORT}")
    }

    fn addresses(&self, member: &str) -> Addresses {
        let h = hostname(member);
        Addresses {
            superserver: format!("{h}:{SUPERSERVER_PORT}"),
            mirror: format!("{h}:{MIRROR_PORT}"),
            agent: format!("{h}:{AGENT_PORT}"),
        }
    }

    fn api(&self, member: &str) -> Api {
        Api::new(member, "127.0.0.1", self.host_port(Some(member), WEB_KEY))
    }

    /// Host ports (0 while the container is down), and the in-network mirror port.
    fn ports(&self, member: &str) -> MemberPorts {
        MemberPorts {
            superserver: self.host_port(Some(member), SUPERSERVER_KEY),
            web: self.host_port(Some(member), WEB_KEY),
            mirror: MIRROR_PORT,
            agent: self.host_port(Some(member), AGENT_KEY),
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
        let mut archive = Vec::new();
        let found =
            self.api.download(&self.container(Some(from)), source, &mut archive).map_err(|e| failed(from, e))?;
        if !found {
            return Err(failed(from, format!("{source} does not exist in container {}", self.container(Some(from)))));
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
        super::local::engine_session_script(member, self.host_port(Some(member), SUPERSERVER_KEY), namespace, script)
    }

    fn session(&self, member: &str, namespace: &str) -> Result<i32, TargetError> {
        super::local::engine_session(member, self.host_port(Some(member), SUPERSERVER_KEY), namespace)
    }

    fn logs(&self, member: &str) -> Result<String, TargetError> {
        self.api.logs(&self.container(Some(member))).map_err(|e| failed(member, e))
    }

    fn agent_fault(&self, member: Option<&str>, peers: &[String]) -> Result<(), TargetError> {
        if let Some(m) = member {
            // mirrorlab-init starts a member's agent without the fault switch, so its
            // switch can never have been set: healing it is done; cutting it cannot be.
            if peers.is_empty() {
                return Ok(());
            }
            return Err(failed(
                m,
                "the engine image's agent runs without the fault switch: `partition --from` cannot cut an agent's links in a docker lab (the engines' switches may already be set: `mirrorlab heal` clears them); `partition MEMBER` (network disconnect) works",
            ));
        }
        super::local::agent_fault_at(member, self.host_port(member, AGENT_KEY), peers)
    }

    fn isolate(&self, member: &str) -> Result<bool, TargetError> {
        let network = network_name(&self.lab);
        self.api.disconnect_network(&network, &self.container(Some(member))).map_err(|e| failed(member, e))?;
        self.refresh(Some(member)).map_err(|e| failed(member, e))?;
        Ok(true)
    }

    fn reconnect(&self) -> Result<(), TargetError> {
        let network = network_name(&self.lab);
        for m in &self.members {
            let st = self.refresh(Some(m)).map_err(|e| failed(m, e))?;
            if st.is_some_and(|s| !s.networks.contains(&network)) {
                self.api.connect_network(&network, &self.container(Some(m)), &hostname(m)).map_err(|e| failed(m, e))?;
                self.refresh(Some(m)).map_err(|e| failed(m, e))?;
            }
        }
        self.record_ports()
    }

    fn down(&self, wipe: bool) -> Result<(), TargetError> {
        let mut first_error: Option<TargetError> = None;
        let names: Vec<(String, String)> = self
            .members
            .iter()
            .map(|m| (m.clone(), self.container(Some(m))))
            .chain(self.has_arbiter.then(|| ("ARBITER".to_string(), self.container(None))))
            .collect();
        for (who, name) in &names {
            // A graceful stop first so a primary's journal is closed cleanly; then removal.
            let r = self.api.stop(name, STOP_TIMEOUT).and_then(|_| self.api.remove_container(name));
            if let Err(e) = r {
                first_error.get_or_insert(failed(who, e));
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
        format!("http://127.0.0.1:{}/", self.host_port(Some(member), WEB_KEY))
    }
}

impl Docker {
    fn upload(&self, to: &str, db: &str, bytes: &[u8], progress: &dyn Fn(u64, u64)) -> Result<u64, TargetError> {
        let total = bytes.len() as u64;
        let archive = docker_copy::install_archive(db, bytes).map_err(|e| failed(to, e))?;
        self.api.upload(&self.container(Some(to)), "/data", archive).map_err(|e| failed(to, e))?;
        progress(total, total);
        Ok(total)
    }
}
