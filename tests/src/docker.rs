//! Docker helpers for the image and compose tests (testcontainers-style): every name is
//! unique to the run, readiness is a condition awaited (health status, an HTTP answer),
//! and everything created is removed by a guard's `Drop`, on failure too.
//!
//! The `docker` command is `docker` unless `DOCKER` names another.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The repository root (the images' build context, where `compose/` lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

pub fn docker_program() -> String {
    std::env::var("DOCKER").unwrap_or_else(|_| "docker".into())
}

pub fn docker_cmd() -> Command {
    Command::new(docker_program())
}

/// Why Docker cannot be used here, if it cannot: the tests print it and return (they
/// never skip without saying so).
pub fn unavailable() -> Option<String> {
    match docker_cmd().args(["version", "--format", "{{.Server.Version}}"]).output() {
        Err(e) => Some(format!("cannot run `{} version`: {e}", docker_program())),
        Ok(o) if !o.status.success() => {
            Some(format!("no Docker daemon answers: {}", String::from_utf8_lossy(&o.stderr).trim()))
        }
        Ok(_) => None,
    }
}

/// A name unique to this test process and `what` (parallel and leftover runs never
/// collide: a leftover from a dead process has another pid).
pub fn unique(what: &str) -> String {
    format!("mlt{}{what}", std::process::id())
}

fn describe(args: &[&str], o: &Output) -> String {
    format!(
        "`docker {}` exited with {}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs docker; panics with its output unless it succeeds; returns its stdout, trimmed.
pub fn docker(args: &[&str]) -> String {
    let o = docker_cmd().args(args).output().expect("run docker");
    assert!(o.status.success(), "{}", describe(args, &o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Runs docker and returns its output whatever the status (teardown, polling).
pub fn docker_quiet(args: &[&str]) -> Output {
    docker_cmd().args(args).output().expect("run docker")
}

/// An image's size in bytes.
pub fn image_size(image: &str) -> u64 {
    docker(&["image", "inspect", "--format", "{{.Size}}", image]).parse().expect("a size")
}

/// The host port Docker published for `container`'s `port`/tcp. Panics unless it is
/// published on 127.0.0.1 only: a lab is never reachable from the network by default.
pub fn host_port(container: &str, port: u16) -> u16 {
    let out = docker(&["port", container, &format!("{port}/tcp")]);
    assert!(
        !out.trim().is_empty() && out.lines().all(|l| l.starts_with("127.0.0.1:")),
        "{container} publishes {port}/tcp beyond 127.0.0.1: `docker port` said {out:?}"
    );
    let first = out.lines().next().unwrap_or_default();
    first.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("`docker port` said {out:?}"))
}

/// Polls `docker inspect` until `container`'s health status is `healthy`; panics with its
/// state and last log lines when it becomes unhealthy, exits, or `timeout` passes.
pub fn await_healthy(container: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let o = docker_quiet(&["inspect", "--format", "{{.State.Status}} {{.State.Health.Status}}", container]);
        let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if state == "running healthy" {
            return;
        }
        let failed = state.ends_with("unhealthy") || state.starts_with("exited") || state.starts_with("dead");
        if failed || Instant::now() > deadline {
            panic!("container {container} is {state:?} (waited {timeout:?}); its log:\n{}", logs(container));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last lines of a container's log, for failure messages.
pub fn logs(container: &str) -> String {
    let o = docker_quiet(&["logs", "--tail", "60", container]);
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Everything a test created, removed on drop in reverse dependency order: containers,
/// then networks, volumes, images. Removal failures are printed, not raised (a panic in
/// drop during a panic would abort and hide the test's own message).
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
    /// Commands run first (e.g. `docker-compose ... down -v`).
    pub commands: Vec<Vec<String>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |program: &str, args: &[String]| match Command::new(program).args(args).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                eprintln!("teardown: `{program} {}`: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim())
            }
            Err(e) => eprintln!("teardown: `{program}`: {e}"),
        };
        for c in &self.commands {
            if let Some((program, args)) = c.split_first() {
                run(program, args);
            }
        }
        let docker = docker_program();
        let batch = |verb: &[&str], names: &[String]| {
            if !names.is_empty() {
                let mut args: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
                args.extend(names.iter().cloned());
                run(&docker, &args);
            }
        };
        batch(&["rm", "-f", "-v"], &self.containers);
        batch(&["network", "rm"], &self.networks);
        batch(&["volume", "rm", "-f"], &self.volumes);
        batch(&["image", "rm", "-f"], &self.images);
    }
}

/// The compose command: `DOCKER_COMPOSE` if set (split on spaces), else `docker compose`
/// (v2) where the Docker CLI has it, else `docker-compose` (1.29, what Debian 12 ships).
pub fn compose_program() -> Vec<String> {
    if let Ok(p) = std::env::var("DOCKER_COMPOSE") {
        return p.split_whitespace().map(String::from).collect();
    }
    let v2 = docker_cmd().args(["compose", "version"]).output().is_ok_and(|o| o.status.success());
    if v2 {
        vec![docker_program(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

/// What `compose_program` runs, with its version (test output names the tool tested).
pub fn compose_version() -> String {
    let p = compose_program();
    let out = Command::new(&p[0]).args(&p[1..]).arg("version").output();
    let first = out.map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().to_string());
    format!("`{}`: {}", p.join(" "), first.unwrap_or_default())
}

/// Why the compose tool cannot be used here, if it cannot.
pub fn compose_unavailable() -> Option<String> {
    let p = compose_program();
    match Command::new(&p[0]).args(&p[1..]).arg("version").output() {
        Err(e) => Some(format!("cannot run `{} version`: {e}", p.join(" "))),
        Ok(o) if !o.status.success() => {
            Some(format!("`{} version` failed: {}", p.join(" "), String::from_utf8_lossy(&o.stderr).trim()))
        }
        Ok(_) => None,
    }
}

/// One compose project on one file, with its environment; every call passes both.
pub struct Compose {
    pub project: String,
    pub file: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Compose {
    /// The full command line for `args` (also used for the teardown command).
    pub fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut argv = compose_program();
        argv.extend(["-p".to_string(), self.project.clone(), "-f".to_string(), self.file.display().to_string()]);
        argv.extend(args.iter().map(|s| s.to_string()));
        argv
    }

    /// Runs compose; panics with its output unless it succeeds; returns stdout, trimmed.
    pub fn run(&self, args: &[&str]) -> String {
        let argv = self.argv(args);
        let o = Command::new(&argv[0]).args(&argv[1..]).envs(self.env.iter().cloned()).output().expect("run compose");
        assert!(
            o.status.success(),
            "`{}` exited with {}\n{}{}",
            argv.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The container id of `service`.
    pub fn container(&self, service: &str) -> String {
        let id = self.run(&["ps", "-a", "-q", service]);
        assert!(!id.is_empty(), "no container for service {service}");
        id
    }
}

/// Waits until `container` has exited: its exit code, or its state and log on timeout.
pub fn await_exit(container: &str, timeout: Duration) -> Result<i32, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let state = docker(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container]);
        if let Some(code) = state.strip_prefix("exited ") {
            return Ok(code.parse().expect("an exit code"));
        }
        if Instant::now() > deadline {
            return Err(format!("container {container} is {state:?} after {timeout:?}; its log:\n{}", logs(container)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes whatever a lab of the installer's docker target left behind: its containers,
/// networks and volumes (all labelled with the lab's name). Teardown after `down`, so a
/// failed test leaves nothing running.
pub fn remove_lab_resources(lab: &str) {
    let filter = format!("label=org.mirrorlab.lab={lab}");
    for (list, rm) in [
        (vec!["ps", "-aq", "--filter", &filter], vec!["rm", "-f", "-v"]),
        (vec!["network", "ls", "-q", "--filter", &filter], vec!["network", "rm"]),
        (vec!["volume", "ls", "-q", "--filter", &filter], vec!["volume", "rm", "-f"]),
    ] {
        let ids = String::from_utf8_lossy(&docker_quiet(&list).stdout).to_string();
        for id in ids.split_whitespace() {
            let mut args = rm.clone();
            args.push(id);
            let _ = docker_quiet(&args);
        }
    }
}

/// Builds both images from this checkout under `tag` (images/build.sh), failing the test
/// with the script's output if it fails.
pub fn build_images(tag: &str) {
    let build =
        std::process::Command::new(repo_root().join("images/build.sh")).arg(tag).output().expect("run images/build.sh");
    assert!(build.status.success(), "images/build.sh failed:\n{}", String::from_utf8_lossy(&build.stderr));
}
