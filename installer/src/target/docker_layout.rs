//! The containers of a docker lab, their names and what each runs.
//!
//! A member is two containers, as in the Compose lab (compose/mirror.yml): its agent
//! (`mirrorlab-init agent`), which owns the member's PID namespace, and its engine
//! (`mirrorlab-init start --no-agent`), which joins that namespace. Why: the agent must
//! outlive a killed engine to tell the other member at once that the engine is down (one
//! agent round trip instead of the QoS timeout and the arbiter), and it must see the
//! engine's processes to fence (SIGKILL) them. Both mount the member's data volume at
//! `/data` (instance lock, state files, journal). The arbiter is one container.
//!
//! Every object is named `mirrorlab-<lab>-...` and labelled with the lab, so labs (and
//! test runs) on one daemon never collide and leftovers can be found.

/// Ports inside the network (images/engine/Dockerfile, docs/docker.md).
pub const SUPERSERVER_PORT: u16 = 1972;
pub const WEB_PORT: u16 = 52773;
pub const AGENT_PORT: u16 = 2188;
/// The mirror data channel: whatever the member's mirror address names; the lab's convention.
pub const MIRROR_PORT: u16 = 2189;
/// The arbiter's hostname in the lab network.
pub const ARBITER_HOST: &str = "arbiter";

pub const SUPERSERVER_KEY: &str = "1972/tcp";
pub const WEB_KEY: &str = "52773/tcp";
pub const AGENT_KEY: &str = "2188/tcp";

const INIT: &str = "/usr/local/bin/mirrorlab-init";
/// Where a container finds its TLS files, uploaded before it first starts
/// (docker_copy::tls_archive): the lab CA's certificate, its party's certificate and key.
pub const TLS_DIR: &str = "/tls";
pub use crate::certs::TLS_FILES;
/// The agent's fault switch from the environment (engine/src/bin/agent.rs): the agent
/// runs under `mirrorlab-init agent`, which passes no switch of its own.
const FAULT_ENV: &str = "MIRRORLAB_ALLOW_FAULT_INJECTION=true";

/// One of a lab's containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// A member's engine.
    Engine(&'a str),
    /// A member's agent, owner of the member's PID namespace.
    Agent(&'a str),
    Arbiter,
}

impl Part<'_> {
    /// Who errors name: the member, or ARBITER.
    pub fn who(&self) -> &str {
        match self {
            Part::Engine(m) | Part::Agent(m) => m,
            Part::Arbiter => "ARBITER",
        }
    }

    pub fn container(&self, lab: &str) -> String {
        format!("mirrorlab-{lab}-{}", self.alias())
    }

    /// Hostname and network alias in the lab network (Docker's DNS matches names
    /// case-blind, the engine's resolver sends what it is given: lower case is the one
    /// spelling used).
    pub fn alias(&self) -> String {
        match self {
            Part::Engine(m) => m.to_ascii_lowercase(),
            Part::Agent(m) => format!("{}-agent", m.to_ascii_lowercase()),
            Part::Arbiter => ARBITER_HOST.to_string(),
        }
    }
}

/// What a member's mirror configuration names for it inside the lab network: the docker
/// target's containers and the Compose lab's services answer to the same names and ports.
pub fn addresses(member: &str) -> super::Addresses {
    let h = Part::Engine(member).alias();
    super::Addresses {
        superserver: format!("{h}:{SUPERSERVER_PORT}"),
        mirror: format!("{h}:{MIRROR_PORT}"),
        agent: format!("{}:{AGENT_PORT}", Part::Agent(member).alias()),
    }
}

/// The arbiter's address inside the lab network.
pub fn arbiter_address() -> String {
    format!("{}:{AGENT_PORT}", Part::Arbiter.alias())
}

pub fn network_name(lab: &str) -> String {
    format!("mirrorlab-{lab}")
}

pub fn volume_name(lab: &str, member: &str) -> String {
    format!("mirrorlab-{lab}-{}-data", member.to_ascii_lowercase())
}

/// The flags that point an engine or agent at its TLS files.
pub fn tls_flags() -> Vec<String> {
    let [ca, cert, key] = TLS_FILES.map(|f| format!("{TLS_DIR}/{f}"));
    vec!["--tls-ca".into(), ca, "--tls-cert".into(), cert, "--tls-key".into(), key]
}

/// The flags that make an engine serve its superserver and web port with TLS only, with
/// its member certificate (`security.tls_clients`).
pub fn client_tls_flags() -> Vec<String> {
    let [ca, cert, key] = TLS_FILES.map(|f| format!("{TLS_DIR}/{f}"));
    vec!["--client-tls-ca".into(), ca, "--client-tls-cert".into(), cert, "--client-tls-key".into(), key]
}

/// Which certificate a container holds: its member's (engine and agent alike) or the
/// arbiter's.
pub fn party<'a>(part: Part<'a>) -> crate::certs::Party<'a> {
    match part {
        Part::Engine(m) | Part::Agent(m) => crate::certs::Party::Member(m),
        Part::Arbiter => crate::certs::Party::Arbiter,
    }
}

/// What a new container runs.
#[derive(Debug)]
pub struct Plan {
    /// `engine` or `arbiter` (the image is `mirrorlab/<which>:<tag>`).
    pub image: &'static str,
    /// Empty: the image's entry point.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// The member's data volume, if any.
    pub volume: Option<String>,
    /// Container ports published to host ports Docker chooses.
    pub publish: &'static [&'static str],
    /// The container whose PID namespace this one joins.
    pub pid_of: Option<String>,
    /// The image's HEALTHCHECK probes the engine: off where no engine runs.
    pub no_healthcheck: bool,
}

/// `tls_clients`: the engine's superserver and web port speak TLS only.
pub fn plan(lab: &str, part: Part, faults: bool, tls_clients: bool) -> Plan {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match part {
        Part::Arbiter => Plan {
            image: "arbiter",
            entrypoint: vec![],
            cmd: [if faults { strings(&["--allow-fault-injection"]) } else { vec![] }, tls_flags()].concat(),
            env: vec![],
            volume: None,
            publish: &[AGENT_KEY],
            pid_of: None,
            no_healthcheck: false,
        },
        Part::Agent(m) => Plan {
            image: "engine",
            entrypoint: strings(&[INIT, "agent"]),
            // The agent probes the engine's superserver by the engine's hostname.
            cmd: [vec!["--engine-host".into(), Part::Engine(m).alias()], tls_flags()].concat(),
            env: if faults { vec![FAULT_ENV.into()] } else { vec![] },
            volume: Some(volume_name(lab, m)),
            publish: &[AGENT_KEY],
            pid_of: None,
            no_healthcheck: true,
        },
        Part::Engine(m) => {
            // Arguments of `engine start` (mirrorlab-init passes them on).
            let mut cmd = vec![
                "--superserver-port".to_string(),
                SUPERSERVER_PORT.to_string(),
                "--web-port".to_string(),
                WEB_PORT.to_string(),
            ];
            if faults {
                cmd.push("--allow-fault-injection".into());
            }
            cmd.extend(tls_flags());
            if tls_clients {
                cmd.extend(client_tls_flags());
            }
            Plan {
                image: "engine",
                entrypoint: strings(&[INIT, "start", "--no-agent"]),
                cmd,
                env: vec![],
                volume: Some(volume_name(lab, m)),
                publish: &[SUPERSERVER_KEY, WEB_KEY],
                pid_of: Some(Part::Agent(m).container(lab)),
                no_healthcheck: false,
            }
        }
    }
}

/// The command that makes an uploaded database file durable under its real name, run in
/// the member's agent container (engine/src/container/install.rs).
pub fn install_file_command(staging: &str, to: &str) -> Vec<String> {
    [INIT, "install-file", "--staging", staging, "--to", to].iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_an_agent_owning_the_pid_namespace_and_an_engine_joining_it() {
        let agent = plan("pb", Part::Agent("MIRRORA"), false, false);
        let engine = plan("pb", Part::Engine("MIRRORA"), false, false);
        assert_eq!(Part::Agent("MIRRORA").container("pb"), "mirrorlab-pb-mirrora-agent");
        assert_eq!(Part::Engine("MIRRORA").container("pb"), "mirrorlab-pb-mirrora");
        assert_eq!(Part::Agent("MIRRORA").alias(), "mirrora-agent");
        assert_eq!(agent.entrypoint, [INIT, "agent"]);
        assert_eq!(agent.cmd, [&["--engine-host".to_string(), "mirrora".into()][..], &tls_flags()].concat());
        assert!(agent.no_healthcheck && agent.pid_of.is_none());
        assert_eq!(agent.publish, [AGENT_KEY]);
        assert_eq!(engine.entrypoint, [INIT, "start", "--no-agent"]);
        assert_eq!(engine.pid_of.as_deref(), Some("mirrorlab-pb-mirrora-agent"));
        assert!(!engine.publish.contains(&AGENT_KEY), "the agent's port is the agent container's");
        let volume = Some("mirrorlab-pb-mirrora-data".to_string());
        assert_eq!((&agent.volume, &engine.volume), (&volume, &volume));
        assert!(agent.env.is_empty() && !engine.cmd.contains(&"--allow-fault-injection".to_string()));
    }

    #[test]
    fn tls_clients_give_the_engine_its_member_certificate_for_the_client_ports() {
        let engine = plan("pb", Part::Engine("MIRRORA"), false, true);
        assert!(engine.cmd.ends_with(&client_tls_flags()), "{:?}", engine.cmd);
        assert!(client_tls_flags().contains(&"/tls/certificate.pem".to_string()));
        assert!(!plan("pb", Part::Engine("MIRRORA"), false, false).cmd.contains(&"--client-tls-ca".to_string()));
        assert!(!plan("pb", Part::Agent("MIRRORA"), false, true).cmd.contains(&"--client-tls-ca".to_string()));
    }

    #[test]
    fn faults_switch_on_the_agents_from_the_environment_and_the_engines_and_arbiter_by_flag() {
        assert_eq!(plan("pb", Part::Agent("MIRRORB"), true, false).env, [FAULT_ENV]);
        assert!(plan("pb", Part::Engine("MIRRORB"), true, false).cmd.contains(&"--allow-fault-injection".to_string()));
        assert_eq!(
            plan("pb", Part::Arbiter, true, false).cmd,
            [&["--allow-fault-injection".to_string()][..], &tls_flags()].concat()
        );
        assert!(!plan("pb", Part::Arbiter, false, false).cmd.contains(&"--allow-fault-injection".to_string()));
        assert_eq!(Part::Arbiter.container("pb"), "mirrorlab-pb-arbiter");
    }
}
