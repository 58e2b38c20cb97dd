//! `mirrorlab up --target docker` with the phonebook manifest against the real Docker
//! daemon: verified lab, each member an agent container and an engine container in the
//! agent's PID namespace, replication through the published superserver ports, `kill`
//! failover through the surviving agent and rejoin, `partition --from` between the
//! failover members, `pause`/`resume` and `partition`/`heal` of the primary with no
//! acknowledged commit lost, `down --wipe`. Without a daemon it prints why and returns.
//!
//! The lab's name is unique to the run (the manifest is copied with another `lab:`), so
//! every Docker object (`mirrorlab-<lab>-...`) is too; teardown always runs.

use mirrorlab_tests::docker::{self, docker_quiet, unavailable};
use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::{lab_member, lab_members, mirrorlab_in, mirrorlab_ok, repo_manifest, wait_until};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

/// How long a failover, a rejoin or a catch-up may take before the test fails.
const AWAIT: Duration = Duration::from_secs(90);

struct Lab {
    dir: tempfile::TempDir,
    name: String,
    manifest: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let name = docker::unique("pb");
        let text = std::fs::read_to_string(repo_manifest("phonebook.yaml")).unwrap();
        assert!(text.contains("\nlab: phonebook\n"), "the phonebook manifest names its lab on one line");
        let manifest = dir.path().join("phonebook.yaml");
        std::fs::write(&manifest, text.replace("\nlab: phonebook\n", &format!("\nlab: {name}\n"))).unwrap();
        Lab { dir, name, manifest }
    }

    fn run(&self, args: &[&str]) -> Output {
        mirrorlab_in(self.dir.path(), &self.dir.path().join("labs"), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        mirrorlab_ok(self.dir.path(), &self.dir.path().join("labs"), args)
    }

    fn m(&self) -> &str {
        self.manifest.to_str().unwrap()
    }

    fn status(&self) -> Vec<Value> {
        lab_members(self.dir.path(), &self.dir.path().join("labs"))
    }

    fn member(&self, name: &str) -> Value {
        lab_member(self.dir.path(), &self.dir.path().join("labs"), name)
    }

    fn await_status(&self, name: &str, word: &str) {
        wait_until(&format!("{name} to be {word}"), AWAIT, || self.member(name)["status"] == word);
    }

    /// A client on the member's published superserver port, in PHONEBOOK.
    fn client(&self, name: &str) -> Client {
        let port = self.member(name)["superserver_port"].as_u64().unwrap();
        assert!(port > 0, "{name} publishes no superserver port");
        let mut c =
            mirrorlab_tests::lab_client(port as u16, self.password().as_deref(), Duration::from_secs(5)).unwrap();
        c.namespace("PHONEBOOK").unwrap();
        c
    }

    /// The admin password `up` drew for the lab (each engine got it in its volume).
    fn password(&self) -> Option<String> {
        mirrorlab_tests::lab_password(&self.dir.path().join("labs"))
    }

    /// A client whose writes are acknowledged only once durable on the mirror (the
    /// primary's sync and the backup's receipt): the commits that must survive a failover.
    /// A plain write is acknowledged once buffered, and a failover within the sync interval
    /// may lose it, as documented (README, Durability).
    fn durable_client(&self, name: &str) -> Client {
        let mut c = self.client(name);
        c.command(&[b"DURABILITY", b"always"]).unwrap();
        c
    }

    /// Waits until `name` reads `value` at `r` (reconnecting: ports change on restart).
    fn await_value(&self, name: &str, r: &str, value: &str) {
        wait_until(&format!("{r} = {value} on {name}"), AWAIT, || {
            let Ok(port) = std::panic::catch_unwind(|| self.member(name)["superserver_port"].as_u64().unwrap_or(0))
            else {
                return false;
            };
            let Ok(mut c) =
                mirrorlab_tests::lab_client(port as u16, self.password().as_deref(), Duration::from_secs(2))
            else {
                return false;
            };
            c.namespace("PHONEBOOK").is_ok() && read(&mut c, r).as_deref() == Some(value)
        });
    }

    /// A member the engine fenced (or that stopped itself) comes back through `restart`,
    /// as a trainer would; then it must rejoin as backup.
    fn await_rejoined(&self, name: &str) {
        let deadline = Instant::now() + AWAIT;
        loop {
            let s = self.member(name)["status"].as_str().unwrap_or_default().to_string();
            if s == "backup" {
                return;
            }
            if s == "down" {
                self.ok(&["restart", &name.to_ascii_lowercase()]);
            }
            assert!(Instant::now() < deadline, "{name} did not rejoin as backup within {AWAIT:?}: {s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Guaranteed teardown: the verb first, then anything still labelled with the lab.
        let _ = self.run(&["down", "--wipe"]);
        docker::remove_lab_resources(&self.name);
    }
}

fn read(c: &mut Client, r: &str) -> Option<String> {
    c.get(r).ok().flatten().map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// The images the lab runs; built from this checkout when missing (no registry here).
fn ensure_images() {
    let tag = std::env::var("MIRRORLAB_IMAGE_TAG").unwrap_or_else(|_| "latest".into());
    let missing = ["engine", "arbiter"]
        .iter()
        .any(|i| !docker_quiet(&["image", "inspect", &format!("mirrorlab/{i}:{tag}")]).status.success());
    if missing {
        let status = std::process::Command::new("bash")
            .arg(docker::repo_root().join("images/build.sh"))
            .arg(&tag)
            .status()
            .expect("run images/build.sh");
        assert!(status.success(), "images/build.sh {tag} failed");
    }
}

/// The one failover member that is primary now.
fn primary(lab: &Lab) -> Option<String> {
    let st = lab.status();
    let p: Vec<String> =
        st.iter().filter(|m| m["status"] == "primary").map(|m| m["name"].as_str().unwrap().to_string()).collect();
    (p.len() == 1).then(|| p[0].clone())
}

fn other(name: &str) -> &'static str {
    if name == "MIRRORA" {
        "MIRRORB"
    } else {
        "MIRRORA"
    }
}

#[test]
fn docker_target_up_replicate_kill_rejoin_pause_partition_down() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED installer_docker: {why}");
        return;
    }
    ensure_images();
    let lab = Lab::new();
    // Builds the binaries (once per test process) outside the timed `up`.
    lab.ok(&["--version"]);
    let started = Instant::now();
    let up = lab.ok(&["up", lab.m(), "--target", "docker"]);
    eprintln!("up --target docker took {:?}", started.elapsed());
    assert!(up.contains("MIRRORA") && up.contains("primary"), "{up}");
    lab.ok(&["verify", lab.m(), "--target", "docker"]);

    // Every member runs in its own container and publishes its ports on loopback; the
    // mirror names only in-network hostnames.
    let st = lab.status();
    let words: Vec<(&str, &str)> =
        st.iter().map(|m| (m["name"].as_str().unwrap(), m["status"].as_str().unwrap())).collect();
    assert_eq!(words, [("MIRRORA", "primary"), ("MIRRORB", "backup"), ("MIRRORC", "connected")]);
    // A member is two containers: its agent, owning the PID namespace, and its engine in it.
    let container = format!("mirrorlab-{}-mirrora", lab.name);
    let agent = format!("{container}-agent");
    let inspect = |c: &str, f: &str| docker::docker(&["inspect", "--format", f, c]);
    assert_eq!(inspect(&container, "{{.Config.Hostname}}"), "mirrora");
    assert_eq!(inspect(&agent, "{{.Config.Hostname}}"), "mirrora-agent");
    // Docker records the namespace's owner by id.
    let agent_id = inspect(&agent, "{{.Id}}");
    assert_eq!(inspect(&container, "{{.HostConfig.PidMode}}"), format!("container:{agent_id}"));
    assert_eq!(inspect(&agent, "{{.State.Running}}"), "true");
    let web = lab.member("MIRRORA")["web_port"].as_u64().unwrap();
    // The engines have the lab's password (from their volume): strangers are refused.
    let password = lab.password().expect("up drew an admin password");
    assert_eq!(mirrorlab_tests::try_http(web as u16, "GET", "/api/mirror/config", None).unwrap().0, 401);
    let config = mirror_config(web, &password);
    assert!(
        config.contains("mirrora:2189") && config.contains("mirrora-agent:2188") && config.contains("arbiter:2188"),
        "{config}"
    );
    for m in &st {
        for key in ["superserver_port", "web_port"] {
            let port = m[key].as_u64().unwrap().to_string();
            assert!(!config.contains(&format!(":{port}\"")), "the mirror names host port {port}: {config}");
        }
    }

    // Write through mirrora's published superserver; read on the backup and the DR.
    let mut a = lab.client("MIRRORA");
    a.set("^Company(10,\"name\")", "Initech").unwrap();
    for member in ["MIRRORB", "MIRRORC"] {
        lab.await_value(member, "^Company(10,\"name\")", "Initech");
        let err = lab.client(member).set("^Company(11,\"name\")", "x").unwrap_err().to_string();
        assert!(err.starts_with("READONLY "), "{member} must be read-only: {err}");
    }
    assert!(lab.ok(&["logs", "mirrora"]).contains("[engine]"));
    // Mutual TLS: each container got its certificate and key as files before it first
    // started; the key is in no environment variable, and the engine uses it.
    for c in [&container, &agent] {
        assert!(inspect(c, "{{json .Config.Cmd}}").contains("--tls-key"), "{c} runs without TLS");
        assert!(!inspect(c, "{{json .Config.Env}}").contains("PRIVATE KEY"), "{c} has a key in its environment");
    }
    assert!(lab.ok(&["logs", "mirrora"]).contains("mutual TLS with the lab CA"), "mirrora runs without TLS");

    // kill = SIGKILL the engine's container: its agent survives and tells mirrorb the
    // engine is down, so mirrorb takes over in one agent round trip, not after the QoS
    // (the time is printed; docs/benchmarks.md).
    let killed = Instant::now();
    lab.ok(&["kill", "mirrora"]);
    lab.await_status("MIRRORB", "primary");
    eprintln!("failover after `mirrorlab kill` of the primary's engine: {:?}", killed.elapsed());
    assert_eq!(lab.member("MIRRORA")["status"], "down");
    assert_eq!(inspect(&agent, "{{.State.Running}}"), "true", "mirrora's agent stopped with its engine");
    let mut b = lab.client("MIRRORB");
    assert_eq!(read(&mut b, "^Company(10,\"name\")").as_deref(), Some("Initech"));
    b.set("^Company(12,\"name\")", "after the kill").unwrap();
    // `logs --follow` of a container: the new primary's log, followed from now on, shows
    // mirrora joining again when it restarts.
    let follower = follow(&lab, "mirrorb");
    lab.ok(&["restart", "mirrora"]);
    lab.await_status("MIRRORA", "backup");
    follower.expect_line("MIRRORA joined");
    lab.await_value("MIRRORA", "^Company(12,\"name\")", "after the kill");

    // partition --from cuts only the link between the failover members (engines' and
    // agents' fault switches): no failover, the primary goes on alone; heal brings the
    // backup back with what was written meanwhile.
    let p = primary(&lab).expect("one primary");
    let cut = other(&p);
    let out = lab.ok(&["partition", &cut.to_ascii_lowercase(), "--from", &p.to_ascii_lowercase()]);
    assert!(out.contains(&format!("{cut} is cut off from {p}")), "{out}");
    wait_until("the primary to go on alone", AWAIT, || lab.member(cut)["status"] != "backup");
    assert_eq!(lab.member(&p)["status"], "primary");
    lab.client(&p).set("^Company(15,\"name\")", "during the cut").unwrap();
    lab.ok(&["heal"]);
    lab.await_status(cut, "backup");
    lab.await_value(cut, "^Company(15,\"name\")", "during the cut");

    // partition the primary (both its containers leave the lab network): the other member
    // takes over with every acknowledged write; heal reconnects and it rejoins.
    let p = primary(&lab).expect("one primary");
    lab.durable_client(&p).set("^Company(14,\"name\")", "before the cut").unwrap();
    let out = lab.ok(&["partition", &p.to_ascii_lowercase()]);
    assert!(out.contains(&format!("{p} is cut off")), "{out}");
    lab.await_status(other(&p), "primary");
    lab.await_value(other(&p), "^Company(14,\"name\")", "before the cut");
    lab.ok(&["heal"]);
    lab.await_rejoined(&p);
    lab.await_value(&p, "^Company(14,\"name\")", "before the cut");

    // pause the primary's engine container (the engine hangs, its agent reports it hung):
    // the other member takes over;
    // the acknowledged write survives; after resume the old primary rejoins.
    let p = primary(&lab).expect("one primary");
    lab.durable_client(&p).set("^Company(13,\"name\")", "before the pause").unwrap();
    lab.ok(&["pause", &p.to_ascii_lowercase()]);
    assert_eq!(lab.member(&p)["status"], "paused");
    lab.await_status(other(&p), "primary");
    lab.await_value(other(&p), "^Company(13,\"name\")", "before the pause");
    lab.ok(&["resume", &p.to_ascii_lowercase()]);
    lab.await_rejoined(&p);

    lab.ok(&["verify", lab.m(), "--target", "docker"]);

    // down --wipe leaves nothing of the lab behind.
    lab.ok(&["down", "--wipe"]);
    let filter = format!("label=org.mirrorlab.lab={}", lab.name);
    for list in [vec!["ps", "-aq", "--filter", &filter], vec!["volume", "ls", "-q", "--filter", &filter]] {
        assert_eq!(docker::docker(&list), "", "left after down --wipe: docker {list:?}");
    }
    assert!(!lab.dir.path().join("labs").join(&lab.name).exists());
}

/// `mirrorlab logs MEMBER --follow --lines 0` running in the background; killed when dropped.
struct Follower {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

fn follow(lab: &Lab, member: &str) -> Follower {
    let mut child = mirrorlab_tests::mirrorlab_cmd()
        .current_dir(lab.dir.path())
        .arg("--lab-dir")
        .arg(lab.dir.path().join("labs"))
        .args(["logs", member, "--follow", "--lines", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = mirrorlab_tests::stdout_lines(&mut child);
    Follower { child, lines }
}

impl Follower {
    /// Waits for a followed line containing `text`.
    fn expect_line(&self, text: &str) {
        let deadline = Instant::now() + AWAIT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("`logs --follow` printed no line with {text:?}; it printed:\n{}", seen.join("\n"));
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mirror configuration as the member's management API shows it (raw JSON text).
fn mirror_config(web_port: u64, password: &str) -> String {
    let (code, body) =
        mirrorlab_tests::try_http_as(web_port as u16, "GET", "/api/mirror/config", None, Some(password)).unwrap();
    assert_eq!(code, 200, "{body}");
    body
}
