//! The Compose lab end to end: `up` gives a configured mirror with no clicks (the
//! installer service runs `mirrorlab apply manifests/phonebook.yaml` and exits 0); the
//! manifest's data is on every member; a record written on mirrora is read on mirrorb
//! and on the DR member mirrorc; killing mirrora's container fails over to
//! mirrorb while mirrora's agent, in a container of its own, stays up to report the engine
//! down; mirrora comes back as backup; `down` then `up` keeps data and roles. Each run
//! has its own project (names, network, volumes) and lets Docker pick the host ports;
//! `down -v` runs whatever happens. Without Docker the test says why and returns.

use base64::Engine as _;
use mirrorlab_tests::docker::{self, await_exit, await_healthy, docker, host_port, Cleanup, Compose};
use mirrorlab_tests::engine;
use mirrorlab_tests::engine::client::Client;
use std::time::{Duration, Instant};

/// Longer than the installer's own bounds, so its error is what we see.
const CONFIGURED_WITHIN: Duration = Duration::from_secs(300);
const FAILOVER_WITHIN: Duration = Duration::from_secs(30);

/// The lab's admin password, which the one-shot `secrets` service drew and printed once.
static PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn password() -> &'static str {
    PASSWORD.get().expect("read from the secrets service's log after up")
}

fn api(port: u16, path: &str) -> Option<(u16, String)> {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", password()));
    let auth = format!("Authorization: Basic {token}\r\n");
    engine::cli::http::request("127.0.0.1", port, "GET", path, None, &auth, Duration::from_secs(5))
        .ok()
        .map(|r| (r.status, r.body))
}

fn status_word(web: u16) -> String {
    let body = api(web, "/api/mirror/status").map(|(_, b)| b).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["status"]["status"].as_str().unwrap_or_default().to_string()
}

/// A client on the PHONEBOOK namespace of the superserver published on `port`.
fn phonebook(port: u16) -> Option<Client> {
    let mut c = mirrorlab_tests::lab_client(port, Some(password()), Duration::from_secs(2)).ok()?;
    c.set_timeout(Some(Duration::from_secs(5))).ok()?;
    c.namespace("PHONEBOOK").ok()?;
    Some(c)
}

/// Polls `f` until it gives `Some`; panics naming `what` and the lab's state after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, lab: &Lab, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = f() {
            return t;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}\n{}", lab.describe());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Lab {
    compose: Compose,
}

impl Lab {
    fn ports(&self, service: &str) -> (u16, u16) {
        let c = self.compose.container(service);
        (host_port(&c, 1972), host_port(&c, 52773))
    }

    /// `up -d`, then the installer service's exit status; returns the time it took and
    /// the installer's log.
    fn up_configured(&self) -> (Duration, String) {
        let started = Instant::now();
        self.compose.run(&["up", "-d"]);
        let installer = self.compose.container("installer");
        match await_exit(&installer, CONFIGURED_WITHIN) {
            Ok(0) => {}
            Ok(code) => panic!("installer exited {code}; its log:\n{}\n{}", docker::logs(&installer), self.describe()),
            Err(e) => panic!("{e}\n{}", self.describe()),
        }
        (started.elapsed(), docker::logs(&installer))
    }

    fn describe(&self) -> String {
        ["mirrora", "mirrorb", "mirrorc", "mirrora-agent", "mirrorb-agent", "installer"]
            .iter()
            .map(|s| {
                let c = self.compose.container(s);
                format!("--- {s}:\n{}", docker::logs(&c))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Every port a Compose file publishes is on `${MIRRORLAB_BIND:-127.0.0.1}`, and every
/// engine reads the admin password before it opens a port (no Docker
/// needed: the files are read as text).
#[test]
fn compose_files_publish_on_loopback_and_every_engine_has_the_admin_password() {
    for file in ["compose/mirror.yml", "compose/standalone.yml", "compose/ecp.yml"] {
        let text = std::fs::read_to_string(docker::repo_root().join(file)).unwrap();
        let mut in_ports = false;
        let mut published = 0;
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t == "ports:" {
                in_ports = true;
            } else if in_ports && t.starts_with('-') {
                published += 1;
                let entry = t.trim_start_matches('-').trim().trim_matches('"');
                assert!(
                    entry.starts_with("${MIRRORLAB_BIND:-127.0.0.1}:"),
                    "{file}:{}: `{entry}` is not published on ${{MIRRORLAB_BIND:-127.0.0.1}}",
                    i + 1
                );
            } else {
                in_ports = false;
            }
        }
        assert!(published >= 2, "{file} publishes no ports: the check reads nothing");
        // Every engine has the admin password before it opens a port.
        let engines = text.matches("image: mirrorlab/engine:").count() - usize::from(text.contains("\n  secrets:"));
        let passwords = text.matches("MIRRORLAB_PASSWORD_FILE: /secrets/admin.password").count();
        assert!(engines >= 1 && passwords >= engines, "{file}: {engines} engines, {passwords} with the admin password");
    }
}

#[test]
fn compose_up_configures_a_mirror_that_fails_over_rejoins_and_survives_down_and_up() {
    if let Some(reason) = docker::unavailable().or_else(docker::compose_unavailable) {
        println!("docker_compose_mirror: not run: {reason}");
        return;
    }
    println!("compose tool: {}", docker::compose_version());
    if docker::compose_program()[0] != docker::docker_program() {
        println!("docker_compose_mirror: `docker compose` (v2) is not installed here; the lab is tested with docker-compose only");
    }
    let tag = docker::unique("");
    let mut cleanup = Cleanup::default();
    cleanup.images = vec![format!("mirrorlab/engine:{tag}"), format!("mirrorlab/arbiter:{tag}")];
    docker::build_images(&tag);

    let env = [
        ("MIRRORLAB_TAG", tag.as_str()),
        // Empty reads as unset: the default must publish on 127.0.0.1 (host_port checks).
        ("MIRRORLAB_BIND", ""),
        // Empty: Docker picks free host ports, so parallel runs never collide.
        ("MIRRORA_SUPERSERVER_PORT", ""),
        ("MIRRORA_WEB_PORT", ""),
        ("MIRRORB_SUPERSERVER_PORT", ""),
        ("MIRRORB_WEB_PORT", ""),
        ("MIRRORC_SUPERSERVER_PORT", ""),
        ("MIRRORC_WEB_PORT", ""),
    ];
    let compose = Compose {
        project: docker::unique("mirror"),
        file: docker::repo_root().join("compose/mirror.yml"),
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    cleanup.commands.push(compose.argv(&["down", "-v", "--remove-orphans", "--timeout", "5"]));
    let lab = Lab { compose };

    let (took, log) = lab.up_configured();
    println!("compose up to a configured, verified mirror: {:.1} s", took.as_secs_f64());
    // The engines started with the password the secrets service drew (printed once).
    let secrets = docker::logs(&lab.compose.container("secrets"));
    let drawn = secrets
        .lines()
        .find_map(|l| l.split_once("): ").filter(|(head, _)| head.contains("Admin password")).map(|(_, p)| p.trim()))
        .unwrap_or_else(|| panic!("the secrets service printed no password:\n{secrets}"));
    PASSWORD.set(drawn.to_string()).unwrap();
    let (a_port, _) = lab.ports("mirrora");
    let mut stranger = Client::connect(format!("127.0.0.1:{a_port}"), Duration::from_secs(5)).unwrap();
    let refused = stranger.command(&[b"GET", b"^Phone(1)"]).unwrap_err().to_string();
    assert!(refused.contains("NOAUTH"), "a client without the password: {refused}");
    assert!(log.contains("every member is caught up"), "the installer's log:\n{log}");
    // Mutual TLS from the `secrets` service's files: the engines and agents say so at start.
    for service in ["mirrora", "mirrorb-agent", "arbiter"] {
        let c = lab.compose.container(service);
        let out = docker::docker_quiet(&["logs", &c]);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("mutual TLS with the lab CA"), "{service} runs without TLS:\n{text}");
    }
    let (a_resp, a_web) = lab.ports("mirrora");
    let (b_resp, b_web) = lab.ports("mirrorb");
    let (c_resp, c_web) = lab.ports("mirrorc");
    assert_eq!(status_word(a_web), "Primary");
    assert_eq!(status_word(b_web), "Backup");
    assert_eq!(status_word(c_web), "Connected");
    // The manifest's initial data, loaded on the primary, is on every member.
    for port in [a_resp, b_resp, c_resp] {
        let mut c = phonebook(port).expect("a superserver");
        assert_eq!(c.get("^Company(1,\"name\")").unwrap().as_deref(), Some(&b"Acme Corporation"[..]));
    }

    let mut a = phonebook(a_resp).expect("mirrora's superserver");
    a.set("^Phone(1)", "Ann").unwrap();
    a.command(&[b"SYNC"]).unwrap();
    for (who, port) in [("mirrorb", b_resp), ("mirrorc", c_resp)] {
        wait_for(&format!("{who} to read the record written on mirrora"), Duration::from_secs(10), &lab, || {
            phonebook(port)?.get("^Phone(1)").ok().flatten().filter(|v| v == b"Ann")
        });
    }

    // Failover: mirrora's container killed (SIGKILL, no handover).
    let mirrora = lab.compose.container("mirrora");
    let killed = Instant::now();
    docker(&["kill", &mirrora]);
    wait_for("mirrorb's /mirror_status to answer 200", FAILOVER_WITHIN, &lab, || {
        api(b_web, "/mirror_status").filter(|(code, _)| *code == 200)
    });
    wait_for("mirrorb to accept a write", FAILOVER_WITHIN, &lab, || phonebook(b_resp)?.set("^Phone(2)", "Bob").ok());
    // A change to the manifest's initial data: the next `up` must not load it again.
    phonebook(b_resp).expect("mirrorb").set("^Company(1,\"name\")", "Acme Renamed").unwrap();
    println!(
        "failover under Docker (kill to first write accepted on mirrorb): {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    // The agent survives its engine's container: that is what lets mirrorb learn at once
    // that the engine is down instead of waiting for the QoS timeout.
    let agent = lab.compose.container("mirrora-agent");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &agent]).trim(),
        "true",
        "mirrora's agent container stopped with its engine's\n{}",
        lab.describe()
    );

    // mirrora comes back as backup and catches up.
    docker(&["start", &mirrora]);
    await_healthy(&mirrora, Duration::from_secs(60));
    let (a_resp, a_web) = lab.ports("mirrora");
    wait_for("mirrora to rejoin as backup", Duration::from_secs(60), &lab, || {
        (status_word(a_web) == "Backup").then_some(())
    });
    wait_for("mirrora to receive the write made during its absence", Duration::from_secs(10), &lab, || {
        phonebook(a_resp)?.get("^Phone(2)").ok().flatten().filter(|v| v == b"Bob")
    });

    // down (volumes kept) and up again: same data, same mirror, the installer finds it
    // done (the initial data is not loaded again over what the lab wrote since).
    lab.compose.run(&["down", "--timeout", "30"]);
    let (took, log) = lab.up_configured();
    println!("compose up again (existing volumes): {:.1} s\n{log}", took.as_secs_f64());
    let (a_resp, a_web) = lab.ports("mirrora");
    let (b_resp, b_web) = lab.ports("mirrorb");
    let (c_resp, _) = lab.ports("mirrorc");
    let roles = [status_word(a_web), status_word(b_web)];
    assert!(
        roles.contains(&"Primary".to_string()) && roles.contains(&"Backup".to_string()),
        "roles after down/up: {roles:?}\n{}",
        lab.describe()
    );
    for port in [a_resp, b_resp, c_resp] {
        wait_for("every member to hold the lab's writes after down and up", Duration::from_secs(30), &lab, || {
            let mut c = phonebook(port)?;
            let want: [(&str, &[u8]); 3] =
                [("^Phone(1)", b"Ann"), ("^Phone(2)", b"Bob"), ("^Company(1,\"name\")", b"Acme Renamed")];
            want.iter().all(|(r, v)| c.get(r).ok().flatten().as_deref() == Some(*v)).then_some(())
        });
    }
    drop(cleanup);
}
