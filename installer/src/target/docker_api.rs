//! The Docker daemon as the docker target needs it: blocking calls over bollard, each run
//! on a small current-thread tokio runtime owned here, each bounded by a timeout, and each
//! error saying what was asked of which object.

use bollard::container::{
    Config, CreateContainerOptions, DownloadFromContainerOptions, InspectContainerOptions, KillContainerOptions,
    LogOutput, LogsOptions, RemoveContainerOptions, StopContainerOptions, UploadToContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::image::{BuildImageOptions, TagImageOptions};
use bollard::models::{ContainerInspectResponse, EndpointSettings, HealthConfig, HostConfig, PortBinding};
use bollard::network::{ConnectNetworkOptions, CreateNetworkOptions, DisconnectNetworkOptions};
use bollard::volume::{CreateVolumeOptions, RemoveVolumeOptions};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

/// Longest any single daemon call may take (an archive transfer of a lab database
/// included) before it is reported as hung.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Label put on everything the target creates, valued with the lab's name, so leftovers
/// can be found and removed by lab.
pub const LAB_LABEL: &str = "org.mirrorlab.lab";

pub struct DockerApi {
    rt: tokio::runtime::Runtime,
    docker: Docker,
}

/// A container's state as the target sees it.
#[derive(Clone, Debug, Default)]
pub struct ContainerState {
    pub running: bool,
    pub paused: bool,
    /// Container port (`1972/tcp`) -> host port Docker chose.
    pub host_ports: HashMap<String, u16>,
    pub networks: Vec<String>,
}

/// What `create_container` needs.
pub struct Spec<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub hostname: &'a str,
    pub network: &'a str,
    pub alias: &'a str,
    pub lab: &'a str,
    /// Container ports (`1972/tcp`) published to host ports Docker chooses, on 127.0.0.1.
    pub publish: &'a [&'a str],
    /// Empty: the image's entry point.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// `volume:/path`.
    pub binds: Vec<String>,
    /// `container:<name>`: join that container's PID namespace.
    pub pid_mode: Option<String>,
    /// Turns off the image's HEALTHCHECK (a container that does not run what it probes).
    pub no_healthcheck: bool,
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Whether the daemon said 404 (no such object).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

fn is_status(e: &bollard::errors::Error, code: u16) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code, .. } if *status_code == code)
}

impl DockerApi {
    /// Connects to the local daemon (DOCKER_HOST or the default socket) and agrees on an
    /// API version it speaks (the daemon may be older than bollard's default).
    pub fn connect() -> Result<DockerApi, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| err("cannot start the Docker client's runtime", e))?;
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| err("cannot reach the Docker daemon (is it running? is DOCKER_HOST right?)", e))?;
        let docker = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await })
            .map_err(|_| "the Docker daemon did not answer within 10 s".to_string())?
            .map_err(|e| err("cannot reach the Docker daemon (is it running? is DOCKER_HOST right?)", e))?;
        Ok(DockerApi { rt, docker })
    }

    fn run<T>(&self, what: &str, f: impl Future<Output = Result<T, bollard::errors::Error>>) -> Result<T, String> {
        match self.rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await }) {
            Ok(r) => r.map_err(|e| err(what, e)),
            Err(_) => Err(format!("{what}: the Docker daemon did not answer within {CALL_TIMEOUT:?}")),
        }
    }

    /// Like `run`, but a 404 is `Ok(None)`.
    fn run_opt<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, bollard::errors::Error>>,
    ) -> Result<Option<T>, String> {
        match self.rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await }) {
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(e)) if is_not_found(&e) => Ok(None),
            Ok(Err(e)) => Err(err(what, e)),
            Err(_) => Err(format!("{what}: the Docker daemon did not answer within {CALL_TIMEOUT:?}")),
        }
    }

    pub fn image_exists(&self, image: &str) -> Result<bool, String> {
        Ok(self.run_opt(&format!("inspect image {image}"), self.docker.inspect_image(image))?.is_some())
    }

    /// Creates the lab network unless it exists.
    pub fn ensure_network(&self, name: &str, lab: &str) -> Result<(), String> {
        let opts = CreateNetworkOptions {
            name,
            // Without it Docker happily creates a second network of the same name.
            check_duplicate: true,
            driver: "bridge",
            labels: HashMap::from([(LAB_LABEL, lab)]),
            ..Default::default()
        };
        match self.rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, self.docker.create_network(opts)).await }) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if is_status(&e, 409) => Ok(()),
            Ok(Err(e)) => Err(err(&format!("create network {name}"), e)),
            Err(_) => Err(format!("create network {name}: no answer within {CALL_TIMEOUT:?}")),
        }
    }

    pub fn remove_network(&self, name: &str) -> Result<(), String> {
        self.run_opt(&format!("remove network {name}"), self.docker.remove_network(name)).map(|_| ())
    }

    pub fn ensure_volume(&self, name: &str, lab: &str) -> Result<(), String> {
        let opts = CreateVolumeOptions { name, labels: HashMap::from([(LAB_LABEL, lab)]), ..Default::default() };
        self.run(&format!("create volume {name}"), self.docker.create_volume(opts)).map(|_| ())
    }

    pub fn volume_exists(&self, name: &str) -> Result<bool, String> {
        Ok(self.run_opt(&format!("inspect volume {name}"), self.docker.inspect_volume(name))?.is_some())
    }

    pub fn remove_volume(&self, name: &str) -> Result<(), String> {
        let opts = Some(RemoveVolumeOptions { force: true });
        self.run_opt(&format!("remove volume {name}"), self.docker.remove_volume(name, opts)).map(|_| ())
    }

    pub fn inspect(&self, name: &str) -> Result<Option<ContainerState>, String> {
        let r = self.run_opt(
            &format!("inspect container {name}"),
            self.docker.inspect_container(name, None::<InspectContainerOptions>),
        )?;
        Ok(r.map(|r| state_of(&r)))
    }

    pub fn create_container(&self, spec: &Spec) -> Result<(), String> {
        let publish: HashMap<String, Option<Vec<PortBinding>>> = spec
            .publish
            .iter()
            .map(|p| {
                // Host port left empty: Docker picks a free one; bound to loopback only, a lab
                // is not meant to be reachable from the network.
                let b = PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) };
                (p.to_string(), Some(vec![b]))
            })
            .collect();
        let exposed: HashMap<&str, HashMap<(), ()>> = spec.publish.iter().map(|p| (*p, HashMap::new())).collect();
        let endpoint = EndpointSettings { aliases: Some(vec![spec.alias.to_string()]), ..Default::default() };
        let config = Config {
            image: Some(spec.image),
            hostname: Some(spec.hostname),
            entrypoint: (!spec.entrypoint.is_empty()).then(|| spec.entrypoint.iter().map(String::as_str).collect()),
            cmd: Some(spec.cmd.iter().map(String::as_str).collect()),
            healthcheck: spec
                .no_healthcheck
                .then(|| HealthConfig { test: Some(vec!["NONE".into()]), ..Default::default() }),
            env: Some(spec.env.iter().map(String::as_str).collect()),
            exposed_ports: Some(exposed),
            labels: Some(HashMap::from([(LAB_LABEL, spec.lab)])),
            host_config: Some(HostConfig {
                port_bindings: Some(publish),
                binds: Some(spec.binds.clone()),
                network_mode: Some(spec.network.to_string()),
                pid_mode: spec.pid_mode.clone(),
                ..Default::default()
            }),
            networking_config: Some(bollard::container::NetworkingConfig {
                endpoints_config: HashMap::from([(spec.network, endpoint)]),
            }),
            ..Default::default()
        };
        let opts = Some(CreateContainerOptions { name: spec.name, platform: None });
        self.run(&format!("create container {}", spec.name), self.docker.create_container(opts, config)).map(|_| ())
    }

    pub fn start(&self, name: &str) -> Result<(), String> {
        self.run(&format!("start container {name}"), self.docker.start_container::<String>(name, None))
    }

    pub fn stop(&self, name: &str, timeout: Duration) -> Result<(), String> {
        let opts = Some(StopContainerOptions { t: timeout.as_secs() as i64 });
        self.run_opt(&format!("stop container {name}"), self.docker.stop_container(name, opts)).map(|_| ())
    }

    pub fn kill(&self, name: &str) -> Result<(), String> {
        let opts = Some(KillContainerOptions { signal: "SIGKILL" });
        self.run(&format!("kill container {name}"), self.docker.kill_container(name, opts))
    }

    pub fn pause(&self, name: &str) -> Result<(), String> {
        self.run(&format!("pause container {name}"), self.docker.pause_container(name))
    }

    pub fn unpause(&self, name: &str) -> Result<(), String> {
        self.run(&format!("unpause container {name}"), self.docker.unpause_container(name))
    }

    pub fn remove_container(&self, name: &str) -> Result<(), String> {
        // `v` removes the container's anonymous volumes only (an image's declared VOLUME
        // that nothing was mounted on); the members' named data volumes stay until `--wipe`.
        let opts = Some(RemoveContainerOptions { force: true, v: true, link: false });
        self.run_opt(&format!("remove container {name}"), self.docker.remove_container(name, opts)).map(|_| ())
    }

    pub fn connect_network(&self, network: &str, container: &str, alias: &str) -> Result<(), String> {
        let opts = ConnectNetworkOptions {
            container,
            endpoint_config: EndpointSettings { aliases: Some(vec![alias.to_string()]), ..Default::default() },
        };
        self.run(&format!("connect {container} to network {network}"), self.docker.connect_network(network, opts))
    }

    pub fn disconnect_network(&self, network: &str, container: &str) -> Result<(), String> {
        let opts = DisconnectNetworkOptions { container, force: true };
        self.run(
            &format!("disconnect {container} from network {network}"),
            self.docker.disconnect_network(network, opts),
        )
    }

    /// The container's log (stdout and stderr, oldest first).
    pub fn logs(&self, name: &str) -> Result<String, String> {
        let opts = Some(LogsOptions::<String> { stdout: true, stderr: true, ..Default::default() });
        self.run(&format!("logs of container {name}"), async {
            let mut out = String::new();
            let mut s = self.docker.logs(name, opts);
            while let Some(item) = s.next().await {
                match item? {
                    LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } => {
                        out.push_str(&String::from_utf8_lossy(&message))
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok(out)
        })
    }

    /// Follows the container's log: its last `tail` lines, then each line as it is written
    /// (`docker logs -f`), to `out`, until `done` says so (looked at every `period`) or
    /// the container's log ends (it was removed).
    pub fn follow_logs(
        &self,
        name: &str,
        tail: usize,
        period: Duration,
        done: &dyn Fn() -> bool,
        out: &mut dyn FnMut(&str),
    ) -> Result<(), String> {
        let opts = Some(LogsOptions::<String> {
            stdout: true,
            stderr: true,
            follow: true,
            tail: tail.to_string(),
            ..Default::default()
        });
        self.rt.block_on(async {
            let mut s = self.docker.logs(name, opts);
            // Bytes of a line whose newline has not come yet.
            let mut pending = Vec::new();
            loop {
                if done() {
                    return Ok(());
                }
                // No deadline on the stream itself: a quiet container is not a failure.
                let item = match tokio::time::timeout(period, s.next()).await {
                    Err(_) => continue,
                    Ok(None) => return Ok(()),
                    Ok(Some(item)) => item.map_err(|e| format!("following the log of container {name}: {e}"))?,
                };
                match item {
                    LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } => {
                        pending.extend_from_slice(&message);
                        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=end).collect();
                            out(String::from_utf8_lossy(&line[..end]).trim_end_matches('\r'));
                        }
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
        })
    }

    /// `path` in the container as a tar archive (Docker's archive API), written to `sink`.
    /// `Ok(false)` when the path does not exist.
    pub fn download(&self, container: &str, path: &str, sink: &mut dyn std::io::Write) -> Result<bool, String> {
        let what = format!("download {path} from container {container}");
        let r = self.rt.block_on(async {
            tokio::time::timeout(CALL_TIMEOUT, async {
                let mut s = self.docker.download_from_container(container, Some(DownloadFromContainerOptions { path }));
                while let Some(chunk) = s.next().await {
                    let chunk = chunk?;
                    sink.write_all(&chunk).map_err(bollard::errors::Error::from)?;
                }
                Ok::<(), bollard::errors::Error>(())
            })
            .await
        });
        match r {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) if is_not_found(&e) => Ok(false),
            Ok(Err(e)) => Err(err(&what, e)),
            Err(_) => Err(format!("{what}: no answer within {CALL_TIMEOUT:?}")),
        }
    }

    /// Builds an image from the tar build context `context` (the Dockerfile at `dockerfile`
    /// inside it) and tags it `image`, handing each line of the build's output to `line`.
    /// The build may take long as a whole; the timeout is on the daemon's silence between
    /// two lines. A failed step is `Err` with the daemon's message for it.
    pub fn build_image(
        &self,
        image: &str,
        dockerfile: &str,
        context: Vec<u8>,
        no_cache: bool,
        line: &mut dyn FnMut(&str),
    ) -> Result<(), String> {
        let opts = BuildImageOptions {
            dockerfile: dockerfile.to_string(),
            t: image.to_string(),
            nocache: no_cache,
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        self.rt.block_on(async {
            let mut s = self.docker.build_image(opts, None, Some(context.into()));
            loop {
                let item = match tokio::time::timeout(CALL_TIMEOUT, s.next()).await {
                    Err(_) => return Err(format!("build {image}: the Docker daemon was silent for {CALL_TIMEOUT:?}")),
                    Ok(None) => return Ok(()),
                    Ok(Some(item)) => item,
                };
                match item {
                    Ok(info) => {
                        for l in info.stream.iter().chain(info.status.iter()).flat_map(|t| t.lines()) {
                            if !l.trim().is_empty() {
                                line(l.trim_end());
                            }
                        }
                    }
                    // The stream's error item carries the failed step's message; the
                    // error's own text ("Docker stream error") does not.
                    Err(bollard::errors::Error::DockerStreamError { error }) => return Err(error.trim().to_string()),
                    Err(e) => return Err(err(&format!("build {image}"), e)),
                }
            }
        })
    }

    /// Adds the tag `repo:tag` to `image`.
    pub fn tag_image(&self, image: &str, repo: &str, tag: &str) -> Result<(), String> {
        let opts = Some(TagImageOptions { repo, tag });
        self.run(&format!("tag {image} as {repo}:{tag}"), self.docker.tag_image(image, opts))
    }

    /// An image's size in bytes (what `docker image ls` shows); `None` when there is no such image.
    pub fn image_size(&self, image: &str) -> Result<Option<u64>, String> {
        let r = self.run_opt(&format!("inspect image {image}"), self.docker.inspect_image(image))?;
        Ok(r.map(|i| i.size.unwrap_or(0).max(0) as u64))
    }

    /// Extracts the tar archive `tar` into `dir` in the container.
    pub fn upload(&self, container: &str, dir: &str, tar: Vec<u8>) -> Result<(), String> {
        let opts = Some(UploadToContainerOptions { path: dir, no_overwrite_dir_non_dir: "true" });
        self.run(
            &format!("upload an archive into {dir} of container {container}"),
            self.docker.upload_to_container(container, opts, tar.into()),
        )
    }
}

impl DockerApi {
    /// Runs `cmd` in the running container `container` (as the image's user) and waits
    /// for it; an exit status other than 0 is an error carrying the command's output.
    pub fn exec(&self, container: &str, cmd: &[&str]) -> Result<(), String> {
        let what = format!("run `{}` in container {container}", cmd.join(" "));
        let opts = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let (output, code) = self.run(&what, async {
            let id = self.docker.create_exec(container, opts).await?.id;
            let mut output = String::new();
            if let StartExecResults::Attached { output: mut s, .. } = self.docker.start_exec(&id, None).await? {
                while let Some(item) = s.next().await {
                    output.push_str(&String::from_utf8_lossy(&item?.into_bytes()));
                }
            }
            // The output ends when the process does; the daemon records its exit code a
            // moment later: ask until it has one (bounded by the call's timeout).
            loop {
                let r = self.docker.inspect_exec(&id).await?;
                if r.running != Some(true) {
                    if let Some(code) = r.exit_code {
                        return Ok((output, code));
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })?;
        if code != 0 {
            return Err(format!("{what}: exit status {code}: {}", output.trim()));
        }
        Ok(())
    }
}

fn state_of(r: &ContainerInspectResponse) -> ContainerState {
    let st = r.state.as_ref();
    let host_ports = r
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|(k, v)| {
                    let port = v.as_ref()?.iter().find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())?;
                    Some((k.clone(), port))
                })
                .collect()
        })
        .unwrap_or_default();
    let networks = r
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    ContainerState {
        running: st.and_then(|s| s.running).unwrap_or(false),
        paused: st.and_then(|s| s.paused).unwrap_or(false),
        host_ports,
        networks,
    }
}
