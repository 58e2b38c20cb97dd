//! The compose target: `mirrorlab apply` run *inside* a Compose lab (compose/mirror.yml's
//! `installer` service). Compose owns the containers; this target only configures them.
//!
//! Every member is the Compose service named after it, reached by its in-network
//! hostname on the image's fixed ports, its agent the service `<member>-agent`, the
//! arbiter the service `arbiter`: the same addresses the docker target's mirror
//! configuration names. Each member's data volume is mounted in this container at
//! `$MIRRORLAB_MEMBERS_DIR/<member>` (default `/members/<member>`), which is how database
//! files are copied (staging file, fsync, rename, as on the local target).
//!
//! Lifecycle verbs (kill, pause, partition, down, ...) belong to Compose here; they fail
//! with the `docker compose` command to use instead.

use super::docker_layout::{Part, AGENT_PORT, ARBITER_HOST, MIRROR_PORT, SUPERSERVER_PORT, WEB_PORT};
use super::local::{engine_session_on, engine_session_script_on};
use super::{failed, Addresses, Proc, Target, TargetError};
use crate::api::{Api, ApiTls};
use crate::labdir::MemberPorts;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `apply` waits for a member (or the arbiter) Compose has not started yet, or
/// restarts (a fenced engine exits and its restart policy brings it back).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
/// Where the members' data volumes are mounted unless `MIRRORLAB_MEMBERS_DIR` says.
pub const DEFAULT_MEMBERS_DIR: &str = "/members";
/// The data directory inside the engine image (images/engine/Dockerfile); database paths
/// the engines report start with it.
const ENGINE_DATA_DIR: &str = "/data";

pub struct Compose {
    members_dir: PathBuf,
    /// `security.tls_clients`: HTTPS to the engines, believing the CA of
    /// `MIRRORLAB_CACERT` (the lab CA in the secrets volume).
    api_tls: Option<ApiTls>,
}

/// Where the Compose lab's installer service finds the lab CA (compose/mirror.yml); the
/// `engine session`s it runs read the same variable.
pub const CACERT_ENV: &str = "MIRRORLAB_CACERT";

/// A member's service name (its host name in the network): the docker target's.
fn hostname(member: &str) -> String {
    Part::Engine(member).alias()
}

impl Compose {
    /// The members' volumes are where `MIRRORLAB_MEMBERS_DIR` says (default /members);
    /// with `tls_clients`, the lab CA is where `MIRRORLAB_CACERT` says.
    pub fn from_env(tls_clients: bool) -> Result<Compose, TargetError> {
        let members_dir = std::env::var_os("MIRRORLAB_MEMBERS_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_MEMBERS_DIR), PathBuf::from);
        let api_tls = match (tls_clients, std::env::var_os(CACERT_ENV).filter(|c| !c.is_empty())) {
            (false, _) => None,
            (true, None) => {
                return Err(failed(
                    "LAB",
                    format!("security.tls_clients is on: set {CACERT_ENV} to the lab CA's certificate (compose/mirror.yml sets /secrets/operator/ca.pem)"),
                ))
            }
            (true, Some(ca)) => Some(engine::tls::ca_client(Path::new(&ca)).map_err(|e| failed("LAB", e.to_string()))?),
        };
        Ok(Compose { members_dir, api_tls })
    }

    /// The member's data directory as mounted here.
    fn data_dir(&self, member: &str) -> PathBuf {
        self.members_dir.join(hostname(member))
    }

    /// `path` as the member's engine names it (under /data), as mounted here.
    fn mounted(&self, member: &str, path: &str) -> Result<PathBuf, TargetError> {
        let rel = Path::new(path)
            .strip_prefix(ENGINE_DATA_DIR)
            .map_err(|_| failed(member, format!("{path} is outside the engine's data directory {ENGINE_DATA_DIR}")))?;
        Ok(self.data_dir(member).join(rel))
    }

    fn install(&self, member: &str, from: &Path, db: &str, progress: &dyn Fn(u64, u64)) -> Result<u64, TargetError> {
        let root = self.data_dir(member);
        if !root.is_dir() {
            return Err(failed(
                member,
                format!(
                    "its data volume is not mounted at {}: mount it in the installer service (volumes: - {}-data:{})",
                    root.display(),
                    hostname(member),
                    root.display()
                ),
            ));
        }
        super::copy::install_file(from, &root.join("databases").join(db), progress).map_err(|e| failed(member, e))
    }

    fn reachable(host_port: &str) -> bool {
        engine::resolve::connect_std(host_port, Duration::from_secs(1)).is_ok()
    }

    /// Waits for something Compose starts; the error names the service to look at.
    fn await_service(&self, who: &str, service: &str, up: impl FnMut() -> bool) -> Result<(), TargetError> {
        if super::process::await_condition(START_TIMEOUT, up) {
            return Ok(());
        }
        Err(failed(
            who,
            format!(
                "the Compose service `{service}` did not answer within {START_TIMEOUT:?}; see `docker compose ps` and `docker compose logs {service}`"
            ),
        ))
    }
}

/// The refusal of a verb that Compose does in this lab.
fn compose_does(member: &str, verb: &str) -> TargetError {
    failed(member, format!("in a Compose lab the containers belong to Compose: run `docker compose {verb}` instead"))
}

impl Target for Compose {
    fn is_fresh(&self, member: &str) -> bool {
        !self.data_dir(member).join("engine.yaml").exists()
    }

    fn proc_state(&self, member: &str) -> Proc {
        if self.api(member).healthy() {
            Proc::Running
        } else {
            Proc::Down
        }
    }

    fn start(&self, member: &str) -> Result<(), TargetError> {
        let api = self.api(member);
        self.await_service(member, &hostname(member), || api.healthy())
    }

    fn stop(&self, member: &str) -> Result<(), TargetError> {
        Err(compose_does(member, &format!("stop {}", hostname(member))))
    }

    fn kill(&self, member: &str) -> Result<(), TargetError> {
        Err(compose_does(member, &format!("kill {}", hostname(member))))
    }

    fn pause(&self, member: &str) -> Result<(), TargetError> {
        Err(compose_does(member, &format!("pause {}", hostname(member))))
    }

    fn resume(&self, member: &str) -> Result<(), TargetError> {
        Err(compose_does(member, &format!("unpause {}", hostname(member))))
    }

    fn arbiter_running(&self) -> bool {
        Self::reachable(&self.arbiter_address())
    }

    fn start_arbiter(&self) -> Result<(), TargetError> {
        let address = self.arbiter_address();
        self.await_service("ARBITER", ARBITER_HOST, || Self::reachable(&address))
    }

    fn stop_arbiter(&self) -> Result<(), TargetError> {
        Err(compose_does("ARBITER", &format!("stop {ARBITER_HOST}")))
    }

    /// The docker target's in-network names: the Compose services are named alike.
    fn arbiter_address(&self) -> String {
        super::docker_layout::arbiter_address()
    }

    fn addresses(&self, member: &str) -> Addresses {
        super::docker_layout::addresses(member)
    }

    fn api(&self, member: &str) -> Api {
        Api::reaching(member, &hostname(member), WEB_PORT, self.api_tls.as_ref())
            .with_password(crate::credentials::from_env())
    }

    /// The in-network ports (the host ports are the Compose file's business).
    fn ports(&self, _member: &str) -> MemberPorts {
        MemberPorts { superserver: SUPERSERVER_PORT, web: WEB_PORT, mirror: MIRROR_PORT, agent: AGENT_PORT }
    }

    fn copy_database(
        &self,
        from: &str,
        source: &str,
        to: &str,
        db: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<u64, TargetError> {
        let source = self.mounted(from, source)?;
        self.install(to, &source, db, progress)
    }

    fn seed_database(&self, member: &str, db: &str, seed: &Path) -> Result<u64, TargetError> {
        self.install(member, seed, db, &|_, _| {})
    }

    fn run_script(&self, member: &str, namespace: &str, script: &str) -> Result<String, TargetError> {
        let password = crate::credentials::from_env();
        // The session inherits MIRRORLAB_CACERT.
        engine_session_script_on(
            member,
            &hostname(member),
            SUPERSERVER_PORT,
            namespace,
            script,
            password.as_deref(),
            None,
        )
    }

    fn session(&self, member: &str, namespace: &str) -> Result<i32, TargetError> {
        let password = crate::credentials::from_env();
        engine_session_on(member, &hostname(member), SUPERSERVER_PORT, namespace, password.as_deref(), None)
    }

    fn logs(&self, member: &str) -> Result<String, TargetError> {
        Err(compose_does(member, &format!("logs {}", hostname(member))))
    }

    fn agent_logs(&self, member: Option<&str>) -> Result<String, TargetError> {
        let service = member.map_or_else(|| "arbiter".to_string(), |m| format!("{}-agent", hostname(m)));
        Err(compose_does(member.unwrap_or("ARBITER"), &format!("logs {service}")))
    }

    fn agent_fault(&self, member: Option<&str>, _peers: &[String]) -> Result<(), TargetError> {
        let who = member.unwrap_or("ARBITER");
        Err(failed(
            who,
            "the Compose lab has no fault switches: cut a member off with `docker network disconnect` instead",
        ))
    }

    fn down(&self, _wipe: bool) -> Result<(), TargetError> {
        Err(compose_does("LAB", "down (add -v to remove the data volumes)"))
    }

    fn url(&self, member: &str) -> String {
        let scheme = if self.api_tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{WEB_PORT}/", hostname(member))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dir: &Path) -> Compose {
        Compose { members_dir: dir.to_path_buf(), api_tls: None }
    }

    #[test]
    fn addresses_are_the_compose_services_on_the_image_ports() {
        let t = target(Path::new("/members"));
        let a = t.addresses("MIRRORA");
        assert_eq!(a.superserver, "mirrora:1972");
        assert_eq!(a.mirror, "mirrora:2189");
        assert_eq!(a.agent, "mirrora-agent:2188");
        assert_eq!(t.arbiter_address(), "arbiter:2188");
    }

    #[test]
    fn a_database_path_maps_into_the_members_mounted_volume() {
        let t = target(Path::new("/members"));
        let p = t.mounted("MIRRORB", "/data/databases/COMPANY/mirrorlab.dat").unwrap();
        assert_eq!(p, Path::new("/members/mirrorb/databases/COMPANY/mirrorlab.dat"));
        let err = t.mounted("MIRRORB", "/elsewhere/x.dat").unwrap_err().to_string();
        assert!(err.contains("MIRRORB") && err.contains("/elsewhere/x.dat"), "{err}");
    }

    #[test]
    fn a_copy_lands_in_the_target_members_volume() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("mirrora/databases/COMPANY");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("mirrorlab.dat"), b"pages").unwrap();
        std::fs::create_dir_all(t.path().join("mirrorb")).unwrap();
        let c = target(t.path());
        let n = c.copy_database("MIRRORA", "/data/databases/COMPANY/mirrorlab.dat", "MIRRORB", "COMPANY", &|_, _| {});
        assert_eq!(n.unwrap(), 5);
        assert_eq!(std::fs::read(t.path().join("mirrorb/databases/COMPANY/mirrorlab.dat")).unwrap(), b"pages");
    }

    #[test]
    fn a_member_whose_volume_is_not_mounted_is_named_with_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let seed = t.path().join("seed.dat");
        std::fs::write(&seed, b"x").unwrap();
        let err = target(t.path()).seed_database("MIRRORC", "COMPANY", &seed).unwrap_err().to_string();
        assert!(err.contains("MIRRORC") && err.contains("mirrorc-data:"), "{err}");
    }

    #[test]
    fn lifecycle_verbs_name_the_compose_command() {
        let t = target(Path::new("/members"));
        let err = t.kill("MIRRORA").unwrap_err().to_string();
        assert!(err.contains("docker compose kill mirrora"), "{err}");
        assert!(t.down(true).unwrap_err().to_string().contains("docker compose down"));
    }
}
