//! `mirrorlab up manifests/phonebook-ecp.yaml --target docker` against the real Docker
//! daemon: each app member is one engine container (no agent container), its data server
//! reached by in-network names; a write through app1 is read through app2; both report
//! their data server Normal; a second apply has nothing to do; `down --wipe` removes it
//! all. Without a daemon it prints why and returns.
//!
//! The lab's name is unique to the run (the manifest is copied with another `lab:`), so
//! every Docker object (`mirrorlab-<lab>-...`) is too; teardown always runs.

use mirrorlab_tests::docker::{self, docker_quiet, unavailable};
use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::{lab_client, lab_member, lab_password, mirrorlab_in, mirrorlab_ok, repo_manifest, wait_until};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

struct Lab {
    dir: tempfile::TempDir,
    name: String,
}

impl Lab {
    fn new() -> (Lab, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let name = docker::unique("ecp");
        let text = std::fs::read_to_string(repo_manifest("phonebook-ecp.yaml")).unwrap();
        assert!(text.contains("\nlab: phonebook-ecp\n"), "the manifest names its lab on one line");
        let manifest = dir.path().join("phonebook-ecp.yaml");
        std::fs::write(&manifest, text.replace("\nlab: phonebook-ecp\n", &format!("\nlab: {name}\n"))).unwrap();
        (Lab { dir, name }, manifest)
    }

    fn labs(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    fn ok(&self, args: &[&str]) -> String {
        mirrorlab_ok(self.dir.path(), &self.labs(), args)
    }

    fn member(&self, name: &str) -> Value {
        lab_member(self.dir.path(), &self.labs(), name)
    }

    fn client(&self, name: &str) -> Client {
        let port = self.member(name)["superserver_port"].as_u64().unwrap() as u16;
        let mut c = lab_client(port, lab_password(&self.labs()).as_deref(), Duration::from_secs(5)).unwrap();
        c.namespace("PHONEBOOK").unwrap();
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = mirrorlab_in(self.dir.path(), &self.labs(), &["down", "--wipe"]);
        docker::remove_lab_resources(&self.name);
    }
}

fn read(c: &mut Client, r: &str) -> Option<String> {
    c.get(r).ok().flatten().map(|v| String::from_utf8_lossy(&v).into_owned())
}

fn container_exists(name: &str) -> bool {
    docker_quiet(&["container", "inspect", name]).status.success()
}

#[test]
fn docker_target_app_members_are_one_container_each_and_share_the_mirrors_data() {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED installer_docker_ecp: {why}");
        return;
    }
    let (lab, manifest) = Lab::new();
    let m = manifest.to_str().unwrap();
    // `up` builds the images from the binaries beside mirrorlab when they are missing.
    let up = lab.ok(&["up", m, "--target", "docker"]);
    assert!(up.contains("APP1") && up.contains("APP2"), "{up}");
    for app in ["APP1", "APP2"] {
        let member = lab.member(app);
        let link = member["ecp"].as_array().and_then(|l| l.first().cloned()).unwrap_or(Value::Null);
        assert_eq!(
            (link["server"].as_str(), link["state"].as_str()),
            (Some("PHONEBOOK_DS"), Some("Normal")),
            "{member}"
        );
        let engine = format!("mirrorlab-{}-{}", lab.name, app.to_ascii_lowercase());
        assert!(container_exists(&engine), "{engine} is missing");
        assert!(!container_exists(&format!("{engine}-agent")), "an app member runs no agent");
    }
    let mut app1 = lab.client("APP1");
    let mut app2 = lab.client("APP2");
    assert_eq!(read(&mut app2, "^Company(1,\"name\")").as_deref(), Some("Acme Corporation"));
    app1.set("^Company(30,\"name\")", "Vandelay").unwrap();
    wait_until("app1's write read through app2", Duration::from_secs(10), || {
        read(&mut app2, "^Company(30,\"name\")").as_deref() == Some("Vandelay")
    });
    let plan: Value = serde_json::from_str(&lab.ok(&["plan", "--json", m, "--target", "docker"])).unwrap();
    assert_eq!(plan["changes"], serde_json::json!([]), "{plan}");
    lab.ok(&["verify", m, "--target", "docker"]);
}
