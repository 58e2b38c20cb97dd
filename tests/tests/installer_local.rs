//! `mirrorlab` on the local target with the real binaries: the trainer's demo end to end
//! (docs/demo.md runs exactly these commands), and a broken manifest changing nothing.

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::{lab_member, lab_members, mirrorlab_cmd, mirrorlab_in, mirrorlab_ok, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

fn manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("manifests").join(name)
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab { dir: tempfile::tempdir().unwrap() }
    }

    fn labs(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    /// Runs `mirrorlab --lab-dir <tmp> ARGS` in the temp directory.
    fn run(&self, args: &[&str]) -> Output {
        mirrorlab_in(self.dir.path(), &self.labs(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        mirrorlab_ok(self.dir.path(), &self.labs(), args)
    }

    fn status(&self) -> Vec<Value> {
        lab_members(self.dir.path(), &self.labs())
    }

    fn member(&self, name: &str) -> Value {
        lab_member(self.dir.path(), &self.labs(), name)
    }

    fn await_status(&self, name: &str, word: &str) {
        wait_until(&format!("{name} to be {word}"), Duration::from_secs(60), || self.member(name)["status"] == word);
    }

    /// `mirrorlab session MEMBER -U PHONEBOOK` with `script` on its standard input.
    fn session(&self, member: &str, script: &str) -> String {
        use std::io::Write;
        let mut child = mirrorlab_cmd()
            .current_dir(self.dir.path())
            .arg("--lab-dir")
            .arg(self.labs())
            .args(["session", member, "-U", "PHONEBOOK"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "session on {member} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn client(&self, name: &str) -> Client {
        let port = self.member(name)["superserver_port"].as_u64().unwrap();
        let password = mirrorlab_tests::lab_password(&self.labs());
        let mut c = mirrorlab_tests::lab_client(port as u16, password.as_deref(), Duration::from_secs(5)).unwrap();
        c.namespace("PHONEBOOK").unwrap();
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Guaranteed teardown, even when an assertion failed midway.
        let _ = self.run(&["down"]);
    }
}

fn read(c: &mut Client, r: &str) -> Option<String> {
    c.get(r).ok().flatten().map(|v| String::from_utf8_lossy(&v).into_owned())
}

#[test]
fn the_demo_up_write_read_kill_rejoin_reapply_failover_down() {
    let lab = Lab::new();
    let pb = manifest("phonebook.yaml");
    let pb = pb.to_str().unwrap();
    let up = lab.ok(&["up", pb]);
    assert!(up.contains("MIRRORA") && up.contains("primary"), "{up}");
    lab.ok(&["verify", pb]);
    let st = lab.status();
    let words: Vec<(String, String)> =
        st.iter().map(|m| (m["name"].as_str().unwrap().into(), m["status"].as_str().unwrap().into())).collect();
    assert_eq!(
        words,
        [
            ("MIRRORA".into(), "primary".into()),
            ("MIRRORB".into(), "backup".into()),
            ("MIRRORC".into(), "connected".into())
        ]
    );
    assert!(st.iter().all(|m| m["web_port"].as_u64().unwrap() > 0 && m["type"].is_string()));
    json_shapes(&lab, pb);
    the_lab_speaks_mutual_tls(&lab, &st);
    watch_leaves_the_alternate_screen_on_ctrl_c(&lab);

    // The manifest's sample records are on the backup and the DR member.
    let mut b = lab.client("MIRRORB");
    assert_eq!(read(&mut b, "^Company(1,\"name\")").as_deref(), Some("Acme Corporation"));

    // Add a company in the terminal on the primary, through the namespace's mappings.
    lab.session("mirrora", "set ^Company(10,\"name\")=\"Initech\"\nset ^Person(10,\"name\")=\"Bob\"\nset ^Customer(10,\"name\")=\"Hooli\"\n");
    for member in ["MIRRORB", "MIRRORC"] {
        let mut c = lab.client(member);
        wait_until(&format!("the new records on {member}"), Duration::from_secs(30), || {
            read(&mut c, "^Company(10,\"name\")").as_deref() == Some("Initech")
                && read(&mut c, "^Person(10,\"name\")").as_deref() == Some("Bob")
                && read(&mut c, "^Customer(10,\"name\")").as_deref() == Some("Hooli")
        });
        let err = c.set("^Company(11,\"name\")", "x").unwrap_err().to_string();
        assert!(err.starts_with("READONLY "), "{member} must be read-only: {err}");
    }
    // What the trainer types on the backup (docs/demo.md).
    let seen = lab.session("mirrorb", "zw ^Company\nset ^Company(11,\"name\")=\"nope\"\n");
    assert!(seen.contains("^Company(2,\"name\")=\"Globex\"\n^Company(10,\"name\")=\"Initech\""), "{seen}");
    assert!(seen.contains("<PROTECT>"), "{seen}");
    let table = lab.ok(&["status"]);
    assert!(table.contains("MIRRORB") && table.contains("backup"), "{table}");

    // Kill the primary: the backup takes over with the data intact.
    lab.ok(&["kill", "mirrora"]);
    lab.await_status("MIRRORB", "primary");
    assert_eq!(lab.member("MIRRORA")["status"], "down");
    let seen = lab.session("mirrorb", "zw ^Company(10)\nset ^Company(12,\"name\")=\"after the failover\"\n");
    assert!(seen.contains("^Company(10,\"name\")=\"Initech\"") && !seen.contains('<'), "{seen}");

    // The old primary restarts and rejoins as backup.
    lab.ok(&["restart", "mirrora"]);
    lab.await_status("MIRRORA", "backup");
    let mut a = lab.client("MIRRORA");
    wait_until("the rejoined member to catch up", Duration::from_secs(30), || {
        read(&mut a, "^Company(12,\"name\")").is_some()
    });

    // Converged: plan and apply change nothing.
    let plan = lab.ok(&["plan", pb]);
    assert!(plan.contains("No changes"), "{plan}");
    let applied: Value = serde_json::from_str(&lab.ok(&["--json", "apply", pb])).unwrap();
    assert_eq!(applied["changes"], serde_json::json!([]), "{applied}");
    assert!(!lab.ok(&["logs", "mirrora"]).is_empty());
    logs_of_agents_and_the_arbiter_and_followed(&lab);

    // Planned failover back to the original primary.
    let out = lab.ok(&["failover"]);
    assert!(out.contains("MIRRORB handed over. MIRRORA is primary (epoch "), "{out}");
    lab.await_status("MIRRORB", "backup");
    lab.ok(&["verify", pb]);

    lab.ok(&["down", "--wipe"]);
    assert!(!lab.labs().join("phonebook").exists());
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect();
    k.sort();
    k
}

/// `up` made the lab CA and the certificates under the lab directory (keys 0600), and the
/// agents serve holders of a lab certificate only.
fn the_lab_speaks_mutual_tls(lab: &Lab, members: &[Value]) {
    use std::os::unix::fs::PermissionsExt;
    let tls = lab.labs().join("phonebook").join("tls");
    for file in ["ca.pem", "mirrora.pem", "mirrorc.pem", "arbiter.pem", "operator.pem"] {
        assert!(tls.join(file).is_file(), "{file} missing in {}", tls.display());
    }
    for key in ["ca.key", "mirrora.key", "mirrorb.key", "arbiter.key", "operator.key"] {
        let mode = std::fs::metadata(tls.join(key)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let agent_port = members[0]["agent_port"].as_u64().unwrap();
    let address = format!("127.0.0.1:{agent_port}");
    let plain = Client::connect(&address, Duration::from_secs(5)).and_then(|mut c| c.command(&[b"AGENT", b"STATUS"]));
    assert!(plain.is_err(), "an agent answered plain TCP: {plain:?}");
    let operator = installer::certs::LabCerts::new(&tls).operator().unwrap();
    let mut c = Client::connect_tls(&address, Duration::from_secs(5), &operator, "MIRRORA").unwrap();
    assert!(c.command(&[b"AGENT", b"STATUS"]).is_ok());
}

/// The `--json` documents of a running lab keep the shapes docs/json.md gives them.
fn json_shapes(lab: &Lab, pb: &str) {
    let doc = |args: &[&str]| -> Value { serde_json::from_str(&lab.ok(args)).unwrap() };
    let st = doc(&["status", "--json"]);
    assert_eq!(sorted_keys(&st), ["arbiter", "lab", "members", "schema_version"], "{st}");
    assert_eq!(st["schema_version"], 1);
    let member_keys = [
        "agent_port",
        "arbiter",
        "dejournaling",
        "ecp",
        "epoch",
        "failover_mode",
        "journal_transfer",
        "lag",
        "latency_ms",
        "mirror_port",
        "name",
        "status",
        "superserver_port",
        "type",
        "url",
        "web_port",
    ];
    for m in st["members"].as_array().unwrap() {
        assert_eq!(sorted_keys(m), member_keys, "{m}");
        assert!(m["epoch"].as_u64().is_some_and(|e| e >= 1), "a running member has an epoch: {m}");
        assert!(m["lag"].as_u64().is_some(), "{m}");
        assert_eq!(m["ecp"], serde_json::json!([]), "only app members have ECP data servers: {m}");
    }
    let primary = st["members"].as_array().unwrap().iter().find(|m| m["status"] == "primary").unwrap();
    assert_eq!(primary["lag"], 0, "{primary}");
    let verify = doc(&["verify", "--json", pb]);
    assert_eq!(sorted_keys(&verify), ["differences", "ok", "schema_version"], "{verify}");
    assert_eq!(verify["ok"], true);
    let ls = doc(&["ls", "--json"]);
    assert_eq!(sorted_keys(&ls), ["labs", "ok", "schema_version"], "{ls}");
    assert_eq!(sorted_keys(&ls["labs"][0]), ["lab", "members", "primary", "running", "target"], "{ls}");
    // The table has the same figures, and names the member each arbiter line is from.
    let table = lab.ok(&["status"]);
    assert!(table.contains("EPOCH") && table.contains("LAG"), "{table}");
    assert!(table.contains("Arbiter mode (MIRRORA"), "{table}");
}

/// `status --watch` on a terminal (script(1) gives it one): the alternate screen, the
/// header line, and on Ctrl-C the screen given back and exit 130.
fn watch_leaves_the_alternate_screen_on_ctrl_c(lab: &Lab) {
    use std::io::Write;
    if !mirrorlab_tests::tool_available("script", "watch_leaves_the_alternate_screen_on_ctrl_c") {
        return;
    }
    let bin = mirrorlab_cmd().get_program().to_str().unwrap().to_string();
    let command = format!("{bin} --lab-dir '{}' status --watch", lab.labs().display());
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("MIRRORLAB_BIN_DIR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = mirrorlab_tests::stdout_chunks(&mut child);
    let mut seen = Vec::new();
    let mut text = String::new();
    while !text.contains("MIRRORC") {
        let chunk = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no table drawn: {text:?}"));
        seen.extend(chunk);
        text = String::from_utf8_lossy(&seen).into_owned();
    }
    assert!(text.contains("\x1b[?1049h"), "not on the alternate screen: {text:?}");
    assert!(text.contains("+ Lab: phonebook  ") && text.contains(" UTC  epoch "), "{text:?}");
    // Ctrl-C typed on the terminal.
    child.stdin.as_mut().unwrap().write_all(b"\x03").unwrap();
    let status = child.wait().unwrap();
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.extend(chunk);
    }
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(status.code(), Some(130), "{text:?}");
    let left = text.rfind("\x1b[?1049l").unwrap_or_else(|| panic!("the screen was not given back: {text:?}"));
    assert!(left > text.rfind("MIRRORC").unwrap(), "{text:?}");
}

/// `logs --agent`, `logs arbiter`, and `logs --follow` printing a line written after it
/// started.
fn logs_of_agents_and_the_arbiter_and_followed(lab: &Lab) {
    assert!(!lab.ok(&["logs", "mirrora", "--agent"]).trim().is_empty());
    assert!(!lab.ok(&["logs", "arbiter"]).trim().is_empty());
    let mut child = mirrorlab_cmd()
        .current_dir(lab.dir.path())
        .arg("--lab-dir")
        .arg(lab.labs())
        .args(["logs", "mirrora", "--follow", "--lines", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rx = mirrorlab_tests::stdout_lines(&mut child);
    // A restart of the backup writes to its messages.log after the follower started.
    lab.ok(&["restart", "mirrora"]);
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("a line written after `logs --follow` started");
    assert!(!line.is_empty());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_broken_manifest_changes_nothing_and_names_every_problem() {
    let lab = Lab::new();
    let broken = lab.dir.path().join("broken.yaml");
    std::fs::write(&broken, "lab: phonebook\nmembers:\n  - { name: a, type: failover }\n  - { name: A, type: failover }\nmirror: { name: WAY-TOO-LONG-A-NAME, primary: a }\n").unwrap();
    let out = lab.run(&["up", broken.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.yaml:4:") && err.contains("duplicate member A"), "{err}");
    assert!(err.contains("broken.yaml:5:") && err.contains("mirror name"), "{err}");
    assert!(!lab.labs().exists(), "an invalid manifest created {}", lab.labs().display());
    let out = lab.run(&["validate", broken.to_str().unwrap()]);
    assert!(!out.status.success());
}

#[test]
fn the_standalone_manifest_comes_up_with_its_data_and_a_second_apply_is_a_no_op() {
    let lab = Lab::new();
    let m = manifest("standalone.yaml");
    let m = m.to_str().unwrap();
    lab.ok(&["up", m]);
    assert_eq!(lab.member("DEV")["status"], "running");
    let mut c = lab.client("DEV");
    assert_eq!(read(&mut c, "^Company(1,\"name\")").as_deref(), Some("Acme Corporation"));
    let applied: Value = serde_json::from_str(&lab.ok(&["--json", "apply", m])).unwrap();
    assert_eq!(applied["changes"], serde_json::json!([]));
    lab.ok(&["down", "--wipe"]);
}

/// `up` draws the lab's admin password once, keeps it 0600 in the lab directory, prints it
/// once, and every member refuses whoever does not have it; the verbs log in with it.
#[test]
fn a_new_lab_has_a_private_admin_password_and_its_members_refuse_strangers() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new();
    let m = manifest("standalone.yaml");
    let m = m.to_str().unwrap();
    let up = lab.ok(&["up", m]);
    let password = mirrorlab_tests::lab_password(&lab.labs()).expect("a password file");
    let file = lab.labs().join("standalone").join("admin.password");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
    assert!(up.contains(&format!("Admin password (shown once; stored in {}", file.display())), "{up}");
    assert!(up.contains(&password), "printed once by up: {up}");
    let again = lab.ok(&["up", m]);
    assert!(!again.contains(&password), "never printed again: {again}");

    let dev = lab.member("DEV");
    let port = dev["superserver_port"].as_u64().unwrap() as u16;
    let mut stranger = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
    let refused = stranger.command(&[b"GET", b"^Company(1,\"name\")"]).unwrap_err().to_string();
    assert!(refused.contains("NOAUTH"), "{refused}");
    let web = dev["web_port"].as_u64().unwrap() as u16;
    assert_eq!(mirrorlab_tests::try_http(web, "GET", "/api/instance", None).unwrap().0, 401);
    assert_eq!(mirrorlab_tests::try_http_as(web, "GET", "/api/instance", None, Some(&password)).unwrap().0, 200);

    // The verbs use the stored password: status reads the members, session logs in.
    assert_eq!(lab.member("DEV")["status"], "running");
    let mut child = mirrorlab_cmd()
        .current_dir(lab.dir.path())
        .arg("--lab-dir")
        .arg(lab.labs())
        .args(["session", "DEV", "-U", "PHONEBOOK"])
        .env_remove("MIRRORLAB_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"write ^Company(1,\"name\"),!\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Acme Corporation"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let metrics = lab.ok(&["metrics-config"]);
    assert!(
        metrics.contains("basic_auth:") && metrics.contains(&format!("password_file: {}", file.display())),
        "{metrics}"
    );
    lab.ok(&["down", "--wipe"]);
}

/// The manifest's users reach every member (mirroring does not copy them); one deleted by
/// hand on one member is drift `verify` reports and `apply` repairs.
#[test]
fn manifest_users_are_on_every_member_and_a_deleted_one_is_drift_that_apply_repairs() {
    let lab = Lab::new();
    let text = std::fs::read_to_string(manifest("phonebook.yaml")).unwrap()
        + "\nroles:\n  - { name: reader, databases: { PERSONAL: R, COMPANY: R } }\n\
           users:\n  - { name: ann, password: \"{{env.ANN_PASSWORD}}\", roles: [reader] }\n";
    let file = lab.dir.path().join("phonebook-users.yaml");
    std::fs::write(&file, text).unwrap();
    let m = file.to_str().unwrap();
    let with_env = |args: &[&str]| {
        mirrorlab_cmd()
            .current_dir(lab.dir.path())
            .arg("--lab-dir")
            .arg(lab.labs())
            .args(args)
            .env("ANN_PASSWORD", "ann's secret")
            .output()
            .unwrap()
    };
    let up = with_env(&["up", m]);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let password = mirrorlab_tests::lab_password(&lab.labs()).unwrap();
    for member in ["MIRRORA", "MIRRORB", "MIRRORC"] {
        let port = lab.member(member)["superserver_port"].as_u64().unwrap() as u16;
        let mut c = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        c.command(&[b"AUTH", b"ann", b"ann's secret"]).unwrap_or_else(|e| panic!("ann on {member}: {e}"));
        c.namespace("PHONEBOOK").unwrap();
        let refused = c.set("^Person(9)", "x").unwrap_err().to_string();
        assert!(refused.contains("NOPERM") || refused.contains("READONLY"), "{member}: {refused}");
    }
    let verify = with_env(&["verify", m]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));

    // Deleted by hand on the backup only.
    let web = lab.member("MIRRORB")["web_port"].as_u64().unwrap() as u16;
    let (code, body) =
        mirrorlab_tests::try_http_as(web, "DELETE", "/api/security/users/ann", None, Some(&password)).unwrap();
    assert_eq!(code, 200, "{body}");
    let verify = with_env(&["verify", m]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(!verify.status.success() && said.contains("MIRRORB: missing: create user ann"), "{said}");
    assert!(!said.contains("MIRRORA: missing"), "{said}");
    let apply = with_env(&["apply", m]);
    assert!(apply.status.success(), "{}", String::from_utf8_lossy(&apply.stderr));
    let verify = with_env(&["verify", m]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    let (code, body) =
        mirrorlab_tests::try_http_as(web, "GET", "/api/security/users/ann", None, Some(&password)).unwrap();
    assert_eq!(code, 200, "{body}");
}

#[test]
fn pause_resume_partition_heal_then_a_whole_restart_elects_a_primary_with_the_data() {
    let lab = Lab::new();
    let pb = manifest("phonebook.yaml");
    let pb = pb.to_str().unwrap();
    lab.ok(&["up", pb]);

    // A hung backup shows as paused, and comes back.
    lab.ok(&["pause", "mirrorb"]);
    assert_eq!(lab.member("MIRRORB")["status"], "paused");
    lab.ok(&["resume", "mirrorb"]);
    lab.await_status("MIRRORB", "backup");

    // Cutting only the link between the failover members causes no failover.
    let out = lab.ok(&["partition", "mirrorb", "--from", "mirrora"]);
    assert!(out.contains("MIRRORB is cut off from MIRRORA"), "{out}");
    let mut a = lab.client("MIRRORA");
    a.set("^Company(5,\"name\")", "during the cut").unwrap();
    wait_until("the primary to go on alone", Duration::from_secs(30), || lab.member("MIRRORB")["status"] != "backup");
    assert_eq!(lab.member("MIRRORA")["status"], "primary");
    lab.ok(&["heal"]);
    lab.await_status("MIRRORB", "backup");
    let mut b = lab.client("MIRRORB");
    wait_until("the healed backup to catch up", Duration::from_secs(30), || {
        read(&mut b, "^Company(5,\"name\")").is_some()
    });

    // Cutting the primary off from everyone: the backup takes over (the arbiter sees only
    // it); once healed, the old primary rejoins as backup.
    let out = lab.ok(&["partition", "mirrora"]);
    assert!(out.contains("MIRRORA is cut off from MIRRORB, MIRRORC, ARBITER"), "{out}");
    lab.await_status("MIRRORB", "primary");
    lab.ok(&["heal"]);
    lab.await_status("MIRRORA", "backup");
    let mut b = lab.client("MIRRORB");
    assert_eq!(read(&mut b, "^Company(5,\"name\")").as_deref(), Some("during the cut"));

    // Down without wipe: the plan is only to start the processes again, and the whole
    // mirror comes back (a primary elected, nobody forced down) with its data.
    lab.ok(&["down"]);
    assert!(lab.status().iter().all(|m| m["status"] == "down"));
    let plan = lab.ok(&["plan", pb]);
    assert_eq!(plan.lines().filter(|l| l.contains("start the")).count(), 4, "{plan}");
    assert_eq!(plan.lines().count(), 5, "only the starts are planned:\n{plan}");
    lab.ok(&["up", pb]);
    lab.ok(&["verify", pb]);
    let statuses: Vec<String> =
        lab.status().iter().map(|m| m["status"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "primary").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "backup").count(), 1, "{statuses:?}");
    let primary = lab.status().into_iter().find(|m| m["status"] == "primary").expect("a primary after up");
    let mut c = lab.client(primary["name"].as_str().unwrap());
    assert_eq!(
        read(&mut c, "^Company(5,\"name\")").as_deref(),
        Some("during the cut"),
        "the data survives a whole restart"
    );
    assert!(lab.ok(&["plan", pb]).contains("No changes"));
}

#[test]
fn a_database_added_to_the_manifest_is_copied_to_every_member_with_its_data() {
    let lab = Lab::new();
    let text = std::fs::read_to_string(manifest("phonebook.yaml")).unwrap();
    let file = lab.dir.path().join("phonebook.yaml");
    std::fs::write(&file, &text).unwrap();
    let m = file.to_str().unwrap();
    lab.ok(&["up", m]);
    // Data written before the database is mirrored must reach the members by the copy.
    let grown = text
        .replace(
            "  - { name: CUSTOMER, mirrored: true }\n",
            "  - { name: CUSTOMER, mirrored: true }\n  - { name: ORDERS, mirrored: true }\n",
        )
        .replace(
            "      - { global: \"Customer*\", database: CUSTOMER }\n",
            "      - { global: \"Customer*\", database: CUSTOMER }\n      - { global: \"Order*\", database: ORDERS }\n",
        );
    assert_ne!(grown, text, "the manifest's shape changed: update this test");
    std::fs::write(&file, grown).unwrap();
    let plan = lab.ok(&["plan", m]);
    assert!(
        plan.contains("MIRRORA   create database ORDERS") && plan.contains("MIRRORB   copy ORDERS from MIRRORA"),
        "{plan}"
    );
    assert!(!plan.contains("COMPANY"), "only the new database is planned:\n{plan}");
    let out = lab.run(&["verify", m]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing: create database ORDERS"));
    lab.ok(&["apply", m]);
    let mut a = lab.client("MIRRORA");
    a.set("^Order(1)", "first order").unwrap();
    for member in ["MIRRORB", "MIRRORC"] {
        let mut c = lab.client(member);
        wait_until(&format!("^Order(1) on {member}"), Duration::from_secs(30), || read(&mut c, "^Order(1)").is_some());
    }
    assert!(lab.ok(&["plan", m]).contains("No changes"));
}

#[test]
fn the_docker_target_without_a_daemon_says_so_and_changes_nothing() {
    let lab = Lab::new();
    let file = lab.dir.path().join("docker.yaml");
    std::fs::write(&file, "lab: boxed\ntarget: docker\nmembers:\n  - { name: dev, type: standalone }\n").unwrap();
    lab.ok(&["validate", file.to_str().unwrap()]);
    // A socket nobody listens on stands for a machine without Docker.
    let socket = format!("unix://{}", lab.dir.path().join("no-docker.sock").display());
    let out = mirrorlab_cmd()
        .current_dir(lab.dir.path())
        .env("DOCKER_HOST", &socket)
        .arg("--lab-dir")
        .arg(lab.labs())
        .args(["up", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the Docker daemon"), "{err}");
    assert!(!lab.labs().exists());
}

#[test]
fn a_failed_step_names_itself_and_its_member_and_a_rerun_resumes() {
    let lab = Lab::new();
    // MIRRORC's portal port is held by someone else: its engine cannot start.
    let blocker = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let text = std::fs::read_to_string(manifest("phonebook.yaml")).unwrap().replace(
        "  - { name: mirrorc, type: dr }",
        &format!("  - {{ name: mirrorc, type: dr, ports: {{ web: {port} }} }}"),
    );
    let file = lab.dir.path().join("phonebook.yaml");
    std::fs::write(&file, text).unwrap();
    let m = file.to_str().unwrap();
    let out = lab.run(&["up", m]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("step `start the dr member` on MIRRORC failed"), "{err}");
    assert!(err.contains("run `mirrorlab apply` again"), "{err}");
    assert_ne!(lab.member("MIRRORA")["status"], "down", "the members before the failed step were started");
    assert_eq!(lab.member("MIRRORC")["status"], "down");

    // Once the port is free, the same command picks up where it stopped.
    drop(blocker);
    let up: Value = serde_json::from_str(&lab.ok(&["--json", "up", m])).unwrap();
    let steps: Vec<String> =
        up["changes"].as_array().unwrap().iter().map(|c| format!("{} {}", c["member"], c["step"])).collect();
    assert!(steps.first().is_some_and(|s| s.contains("MIRRORC") && s.contains("start the dr member")), "{steps:?}");
    assert!(
        !steps.iter().any(|s| s.contains("start the failover member")),
        "started members are not started again: {steps:?}"
    );
    lab.ok(&["verify", m]);
    let mut c = lab.client("MIRRORC");
    assert_eq!(read(&mut c, "^Company(1,\"name\")").as_deref(), Some("Acme Corporation"));
}

/// docs/demo.md typed as fast as a script types it: no wait between steps, `verify` right
/// after each one, and every write acknowledged along the way present on every member at
/// the end. The verbs return once what they caused has settled, and a lab with a mirror
/// acknowledges a write only once the backup has it (durability `always`), so a write
/// typed just before a kill survives it.
#[test]
fn the_demo_typed_back_to_back_verifies_after_every_step_and_keeps_every_acknowledged_write() {
    let lab = Lab::new();
    let pb = manifest("phonebook.yaml");
    let pb = pb.to_str().unwrap();
    let verify = || lab.ok(&["verify", pb]);
    let mut acked: Vec<(String, String)> = vec![];
    let set_in_session = |member: &str, reference: &str, value: &str, acked: &mut Vec<(String, String)>| {
        let out = lab.session(member, &format!("set {reference}=\"{value}\"\n"));
        assert!(!out.contains('<'), "set {reference} on {member}: {out}");
        acked.push((reference.to_string(), value.to_string()));
    };

    // 1. Up.
    lab.ok(&["up", pb]);
    verify();
    // 2. A company on the primary; 3. the backup has it at once.
    set_in_session("mirrora", "^Company(10,\"name\")", "Initech", &mut acked);
    verify();
    let seen = lab.session("mirrorb", "write ^Company(10,\"name\")\n");
    assert!(seen.contains("Initech"), "an acknowledged write is on the backup: {seen}");
    verify();

    // 4. A write, then the crash, typed back to back.
    set_in_session("mirrora", "^Company(13,\"name\")", "just before the crash", &mut acked);
    let out = lab.ok(&["kill", "mirrora"]);
    assert!(out.contains("MIRRORB took over: MIRRORB is primary (epoch "), "{out}");
    let seen = lab.session("mirrorb", "zw ^Company(13)\n");
    assert!(seen.contains("^Company(13,\"name\")=\"just before the crash\""), "{seen}");
    set_in_session("mirrorb", "^Company(12,\"name\")", "after the failover", &mut acked);
    // The crashed member is the one thing verify reports: down, and to be started (exit 3:
    // the lab differs).
    let out = lab.run(&["verify", pb]);
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let diffs: Vec<&str> = stdout.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        diffs,
        ["MIRRORA: missing: start the failover member", "MIRRORA: expected primary or backup, live down"],
        "{stdout}"
    );

    // 5. The old primary back as backup; 6. planned failover back.
    let out = lab.ok(&["restart", "mirrora"]);
    assert!(out.contains("MIRRORA is back: backup, caught up"), "{out}");
    verify();
    let out = lab.ok(&["failover"]);
    assert!(out.contains("MIRRORA is primary (epoch ") && out.contains("MIRRORB is its backup, caught up"), "{out}");
    verify();
    assert!(lab.ok(&["plan", pb]).contains("No changes"));

    // The verbs for questions from the room, each followed at once by a write and verify.
    let mut a = lab.client("MIRRORA");
    let write = |c: &mut Client, reference: &str, value: &str, acked: &mut Vec<(String, String)>| {
        c.set(reference, value).unwrap_or_else(|e| panic!("set {reference}: {e}"));
        acked.push((reference.to_string(), value.to_string()));
    };
    let out = lab.ok(&["pause", "mirrorb"]);
    assert!(out.contains("MIRRORA is primary (epoch") && out.contains("goes on without MIRRORB"), "{out}");
    write(&mut a, "^Company(20)", "while the backup hangs", &mut acked);
    lab.ok(&["resume", "mirrorb"]);
    verify();
    let out = lab.ok(&["partition", "mirrorb", "--from", "mirrora"]);
    assert!(out.contains("goes on without MIRRORB"), "{out}");
    write(&mut a, "^Company(21)", "during the cut", &mut acked);
    lab.ok(&["heal"]);
    verify();
    let out = lab.ok(&["partition", "mirrora"]);
    assert!(out.contains("MIRRORB took over"), "{out}");
    let mut b = lab.client("MIRRORB");
    write(&mut b, "^Company(22)", "on the new primary", &mut acked);
    lab.ok(&["heal"]);
    verify();

    // Every acknowledged write, on every member, with no waiting: verify said caught up.
    for member in ["MIRRORA", "MIRRORB", "MIRRORC"] {
        let mut c = lab.client(member);
        for (reference, value) in &acked {
            assert_eq!(read(&mut c, reference).as_deref(), Some(value.as_str()), "{reference} on {member}");
        }
    }
    lab.ok(&["down", "--wipe"]);
}

/// `mirrorlab session` shows the durability in force; a manifest can ask for `buffered`,
/// `plan` shows the drift and `apply` repairs it on every member.
#[test]
fn durability_is_shown_in_the_session_banner_and_kept_like_any_setting() {
    let lab = Lab::new();
    let text = std::fs::read_to_string(manifest("phonebook.yaml")).unwrap();
    let file = lab.dir.path().join("phonebook.yaml");
    std::fs::write(&file, &text).unwrap();
    let m = file.to_str().unwrap();
    let up = lab.ok(&["up", m]);
    let port = lab.member("MIRRORA")["superserver_port"].as_u64().unwrap();
    assert!(up.contains("Durability: always") && up.contains(&format!("redis-cli -p {port}    (MIRRORA)")), "{up}");
    let ls = lab.ok(&["ls"]);
    let line = ls.lines().find(|l| l.starts_with("phonebook")).unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(line.split_whitespace().collect::<Vec<_>>(), ["phonebook", "local", "3/3", "MIRRORA"], "{ls}");
    let banner = |member: &str| {
        let out = mirrorlab_cmd()
            .current_dir(lab.dir.path())
            .arg("--lab-dir")
            .arg(lab.labs())
            .args(["session", member])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let b = banner("mirrora");
    assert!(b.contains("MIRRORA (primary), lab phonebook: durability always"), "{b}");

    assert!(text.contains("durability: always"), "the phonebook manifest says its durability");
    std::fs::write(&file, text.replace("durability: always", "durability: buffered")).unwrap();
    let plan = lab.ok(&["plan", m]);
    let steps: Vec<&str> = plan.lines().filter(|l| l.contains("set durability buffered")).collect();
    assert_eq!(steps.len(), 3, "every member:\n{plan}");
    assert!(!lab.run(&["verify", m]).status.success(), "verify reports the drift");
    lab.ok(&["apply", m]);
    lab.ok(&["verify", m]);
    let b = banner("mirrorb");
    assert!(b.contains("durability buffered") && b.contains("can lose the last second"), "{b}");
}

/// A partition that cannot set every switch clears the ones it set: the mirror goes on as
/// before instead of being left half cut.
#[test]
fn a_partition_that_fails_halfway_leaves_nothing_cut() {
    let lab = Lab::new();
    let pb = manifest("phonebook.yaml");
    let pb = pb.to_str().unwrap();
    lab.ok(&["up", pb]);
    // MIRRORC's agent is gone: its switch, the last one set, cannot be.
    let pid: u32 = std::fs::read_to_string(lab.labs().join("phonebook").join("mirrorc").join("agent.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 1);
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    wait_until("the agent to go", Duration::from_secs(10), || !Path::new(&format!("/proc/{pid}")).exists());

    let out = lab.run(&["partition", "mirrorb"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot cut MIRRORB off from MIRRORA, MIRRORC, ARBITER") && err.contains("MIRRORC"), "{err}");
    assert!(err.contains("nothing was left cut"), "{err}");
    // Nothing is left cut: the switches set for a moment may have dropped MIRRORB's link
    // (MIRRORB may notice that only a read timeout later, after a first settle), but the
    // mirror settles with MIRRORB the backup again, and it receives the writes.
    wait_until("MIRRORB the backup again", Duration::from_secs(30), || lab.member("MIRRORB")["status"] == "backup");
    lab.ok(&["wait", "--for", "caught-up", "--timeout", "30"]);
    let mut a = lab.client("MIRRORA");
    a.set("^Company(30)", "after the failed partition").unwrap();
    let mut b = lab.client("MIRRORB");
    wait_until("the write on the backup", Duration::from_secs(30), || {
        read(&mut b, "^Company(30)").as_deref() == Some("after the failed partition")
    });
}
