//! A lab with `security: { tls_clients: true }`: `mirrorlab up` starts every engine with
//! its superserver and web port on TLS only, and everything that talks to them follows:
//! the installer (status, data scripts, session, failover), the agents' health probes,
//! the generated HAProxy (health check over TLS, client TLS passed through to the
//! primary) and Prometheus configurations.

use mirrorlab_tests::engine::client::{Client, Reply};
use mirrorlab_tests::{free_port, lab_member, mirrorlab_cmd, mirrorlab_ok, tool_available, wait_until, DownOnDrop};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MANIFEST: &str = r#"# Two failover members and an arbiter, every client port on TLS only.
lab: tlslab
target: local
faults: false
arbiter: {}
members:
  - { name: mirrora, type: failover }
  - { name: mirrorb, type: failover }
databases:
  - { name: COMPANY, mirrored: true }
namespaces:
  - name: PHONEBOOK
    globals: COMPANY
mirror:
  name: TLSLAB
  arbiter: true
  primary: mirrora
data:
  - namespace: PHONEBOOK
    script: |
      set ^Company(1)="Acme over TLS"
security:
  tls_clients: true
"#;

/// HAProxy in the foreground, stopped when the test ends however it ends.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A RESP client over TLS to 127.0.0.1:`port`, believing the lab CA, logged in as the
/// lab's admin, in namespace PHONEBOOK.
fn connect(port: u16, ca: &Path, password: Option<&str>) -> Result<Client, String> {
    let config = mirrorlab_tests::engine::tls::ca_client(ca).map_err(|e| e.to_string())?;
    let server = mirrorlab_tests::engine::tls::host_server_name("127.0.0.1").map_err(|e| e.to_string())?;
    let timeout = Duration::from_secs(5);
    let mut c =
        Client::connect_verified(format!("127.0.0.1:{port}"), timeout, config, server).map_err(|e| e.to_string())?;
    c.set_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    if let Some(p) = password {
        c.command(&[b"AUTH", b"admin", p.as_bytes()]).map_err(|e| e.to_string())?;
    }
    c.namespace("PHONEBOOK").map_err(|e| e.to_string())?;
    Ok(c)
}

fn port(dir: &Path, labs: &Path, member: &str, which: &str) -> u16 {
    lab_member(dir, labs, member)[which].as_u64().unwrap_or_else(|| panic!("{member} {which}")) as u16
}

#[test]
fn a_lab_with_tls_clients_serves_tls_only_and_every_verb_and_config_follows() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let manifest = dir.path().join("tlslab.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let manifest = manifest.display().to_string();
    mirrorlab_ok(dir.path(), &labs, &["up", &manifest]);
    let _lab = DownOnDrop(dir.path(), labs.clone());
    let url = lab_member(dir.path(), &labs, "MIRRORA")["url"].as_str().unwrap_or_default().to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "the portal's URL is https: {url}");
    let ca: PathBuf = labs.join("tlslab/tls/ca.pem");
    let password = mirrorlab_tests::lab_password(&labs);
    let status = mirrorlab_ok(dir.path(), &labs, &["status"]);
    assert!(status.contains("MIRRORA") && status.contains("primary"), "{status}");
    wait_until("MIRRORB to be backup", Duration::from_secs(60), || {
        lab_member(dir.path(), &labs, "MIRRORB")["status"] == "backup"
    });

    // The ports speak TLS only; the data script of `up` went in over TLS.
    let a = port(dir.path(), &labs, "MIRRORA", "superserver_port");
    let mut plain = Client::connect(format!("127.0.0.1:{a}"), Duration::from_secs(5)).unwrap();
    plain.set_timeout(Some(Duration::from_secs(5))).unwrap();
    let refused = plain.command(&[b"PING"]);
    assert!(format!("{refused:?}").contains("TLS only"), "{refused:?}");
    let mut c = connect(a, &ca, password.as_deref()).unwrap();
    assert_eq!(c.get("^Company(1)").unwrap().as_deref(), Some(&b"Acme over TLS"[..]));

    // The agents' health probes reach their engines over TLS: each says `running`.
    let operator = installer::certs::LabCerts::new(labs.join("tlslab/tls")).operator().unwrap();
    for member in ["MIRRORA", "MIRRORB"] {
        let agent = port(dir.path(), &labs, member, "agent_port");
        let mut c =
            Client::connect_tls(format!("127.0.0.1:{agent}"), Duration::from_secs(5), &operator, member).unwrap();
        c.set_timeout(Some(Duration::from_secs(10))).unwrap();
        let Reply::Array(fields) = c.command(&[b"AGENT", b"STATUS"]).unwrap() else { panic!("AGENT STATUS") };
        let words: Vec<String> = fields
            .iter()
            .map(|f| match f {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(words.windows(2).any(|w| w[0] == "state" && w[1] == "running"), "{member}: {words:?}");
    }

    // Prometheus scrapes over HTTPS with the lab CA.
    let prometheus = mirrorlab_ok(dir.path(), &labs, &["metrics-config"]);
    assert!(
        prometheus.contains("scheme: https") && prometheus.contains(&format!("ca_file: {}", ca.display())),
        "{prometheus}"
    );
    if tool_available("promtool", "a_lab_with_tls_clients: metrics-config") {
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, &prometheus).unwrap();
        let check = Command::new("promtool").args(["check", "config"]).arg(&file).output().unwrap();
        assert!(check.status.success(), "promtool: {}", String::from_utf8_lossy(&check.stderr));
    }

    // HAProxy: health checks over TLS, client TLS passed through to the primary.
    let haproxy = tool_available("haproxy", "a_lab_with_tls_clients: haproxy").then(|| {
        let front = free_port();
        let config = mirrorlab_ok(dir.path(), &labs, &["haproxy-config", "--port", &front.to_string()]);
        assert!(config.contains(&format!("check-ssl verify required ca-file {}", ca.display())), "{config}");
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, &config).unwrap();
        let check = Command::new("haproxy").arg("-c").arg("-f").arg(&file).output().unwrap();
        assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
        let child =
            Command::new("haproxy").arg("-db").arg("-f").arg(&file).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        (front, Haproxy(child.unwrap()))
    });
    let through = |front: u16, member: &str| {
        connect(front, &ca, password.as_deref())
            .and_then(|mut c| c.command(&[b"ROLE"]).map_err(|e| e.to_string()))
            .is_ok_and(|r| matches!(&r, Reply::Array(a) if matches!(a.first(), Some(Reply::Bulk(b)) if b == b"master")))
            && connect(front, &ca, password.as_deref())
                .is_ok_and(|mut c| c.set(&format!("^Company(\"via\",\"{member}\")"), member).is_ok())
    };
    if let Some((front, _)) = &haproxy {
        wait_until("HAProxy to reach the primary over TLS", Duration::from_secs(30), || through(*front, "MIRRORA"));
    }

    // A planned failover, driven and confirmed over TLS.
    let out = mirrorlab_ok(dir.path(), &labs, &["failover"]);
    assert!(out.contains("MIRRORB is primary"), "{out}");
    wait_until("MIRRORA to be backup", Duration::from_secs(60), || {
        lab_member(dir.path(), &labs, "MIRRORA")["status"] == "backup"
    });
    if let Some((front, _)) = &haproxy {
        wait_until("HAProxy to follow the primary to MIRRORB", Duration::from_secs(30), || through(*front, "MIRRORB"));
    }

    // `mirrorlab session` speaks TLS to the new primary.
    use std::io::Write;
    let mut session = mirrorlab_cmd()
        .current_dir(dir.path())
        .arg("--lab-dir")
        .arg(&labs)
        .args(["session", "mirrorb", "-U", "PHONEBOOK"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    session.stdin.take().unwrap().write_all(b"write ^Company(1),!\n").unwrap();
    let out = session.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("Acme over TLS"), "{text}{}", String::from_utf8_lossy(&out.stderr));
}
