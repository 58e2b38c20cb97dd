//! A real HAProxy in front of a local mirror, configured by `mirrorlab haproxy-config`:
//! clients write through one address, the primary is killed, and the writes go on through
//! the same address on the new primary with nothing acknowledged lost.

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::{free_port, mirrorlab_ok, tool_available, wait_until};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// HAProxy in the foreground, stopped when the test ends however it ends.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client on the PHONEBOOK namespace (mirrored databases) through `port`.
/// Logged in as the lab's admin (`password`, from the lab directory).
fn connect(port: u16, password: Option<&str>) -> Option<Client> {
    let mut c = mirrorlab_tests::lab_client(port, password, Duration::from_millis(500)).ok()?;
    c.set_timeout(Some(Duration::from_secs(5))).ok()?;
    c.namespace("PHONEBOOK").ok()?;
    Some(c)
}

#[test]
fn writes_through_haproxy_follow_the_primary_across_a_kill_and_nothing_acknowledged_is_lost() {
    if !tool_available("haproxy", "writes_through_haproxy_follow_the_primary") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let phonebook = mirrorlab_tests::repo_manifest("phonebook.yaml").display().to_string();
    mirrorlab_ok(dir.path(), &labs, &["up", &phonebook]);
    let password = mirrorlab_tests::lab_password(&labs);
    let _lab = mirrorlab_tests::DownOnDrop(dir.path(), labs.clone());

    let port = free_port();
    let config = mirrorlab_ok(dir.path(), &labs, &["haproxy-config", "--port", &port.to_string()]);
    assert!(config.contains("option httpchk GET /mirror_status"), "{config}");
    let file = dir.path().join("haproxy.cfg");
    std::fs::write(&file, &config).unwrap();
    let check = Command::new("haproxy").arg("-c").arg("-f").arg(&file).output().unwrap();
    assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
    let _haproxy = Haproxy(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Through HAProxy once its first check found the primary.
    wait_until("HAProxy to reach the primary", Duration::from_secs(30), || {
        connect(port, password.as_deref()).is_some_and(|mut c| c.set("^Company(1000)", "through haproxy").is_ok())
    });

    // A writer through HAProxy's address only: it reconnects to the same address on error.
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop, password) = (acked.clone(), stop.clone(), password.clone());
        std::thread::spawn(move || {
            let mut client: Option<Client> = None;
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let Some(c) = client.as_mut() else {
                    client = connect(port, password.as_deref());
                    if client.is_none() {
                        std::thread::sleep(Duration::from_millis(20)); // reconnect pacing
                    }
                    continue;
                };
                match c.set(&format!("^Company(\"h\",{n})"), format!("write {n}")) {
                    Ok(()) => {
                        acked.lock().unwrap().push((n, Instant::now()));
                        n += 1;
                    }
                    // The write's outcome is unknown: try the next one on a new connection.
                    Err(_) => {
                        client = None;
                        n += 1;
                    }
                }
            }
        })
    };
    wait_until("writes through HAProxy", Duration::from_secs(30), || acked.lock().unwrap().len() >= 50);
    let before = acked.lock().unwrap().len();
    let killed_at = Instant::now();
    let out = mirrorlab_ok(dir.path(), &labs, &["kill", "mirrora"]);
    assert!(out.contains("MIRRORB took over"), "{out}");
    let failover = killed_at.elapsed();
    wait_until("writes through HAProxy on the new primary", Duration::from_secs(60), || {
        acked.lock().unwrap().iter().filter(|(_, at)| *at > killed_at).count() >= 50
    });
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();

    let acked = acked.lock().unwrap().clone();
    // The client's outage: the longest pause between two acknowledged writes.
    let outage = acked.windows(2).map(|w| w[1].1 - w[0].1).max().unwrap();
    eprintln!(
        "{before} writes before the kill; `mirrorlab kill` returned after {:.0} ms; the longest pause between two acknowledged writes through HAProxy: {:.0} ms",
        failover.as_secs_f64() * 1000.0,
        outage.as_secs_f64() * 1000.0
    );
    // Every acknowledged write is on the new primary, read directly, not through HAProxy.
    let b_port = mirrorlab_tests::lab_member(dir.path(), &labs, "MIRRORB")["superserver_port"].as_u64().unwrap();
    let mut b = connect(b_port as u16, password.as_deref()).unwrap();
    for (n, _) in &acked {
        let v = b.get(&format!("^Company(\"h\",{n})")).unwrap();
        assert_eq!(v.as_deref(), Some(format!("write {n}").as_bytes()), "acknowledged write {n} on MIRRORB");
    }
}

/// The configuration shipped for the Compose lab is one HAProxy accepts, and names the
/// ports compose/mirror.yml publishes.
#[test]
fn the_compose_labs_haproxy_config_is_valid_and_names_the_published_ports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = std::fs::read_to_string(root.join("compose/haproxy.cfg")).unwrap();
    let compose = std::fs::read_to_string(root.join("compose/mirror.yml")).unwrap();
    for (superserver, web) in [(1972, 52775), (1973, 52776), (1974, 52777)] {
        assert!(config.contains(&format!("127.0.0.1:{superserver} check port {web}")), "{superserver}");
        assert!(compose.contains(&format!("-{superserver}}}:1972\"")), "compose publishes {superserver}");
        assert!(compose.contains(&format!("-{web}}}:52773\"")), "compose publishes {web}");
    }
    if !tool_available("haproxy", "the_compose_labs_haproxy_config_is_valid") {
        return;
    }
    let check = Command::new("haproxy").arg("-c").arg("-f").arg(root.join("compose/haproxy.cfg")).output().unwrap();
    assert!(check.status.success(), "haproxy -c: {}", String::from_utf8_lossy(&check.stderr));
}
