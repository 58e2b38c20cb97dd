//! The operations CLI against a running engine: freeze/thaw, integrity, journal list and
//! dump, and a merge file re-applied when it changes.

use mirrorlab_tests::{engine_cmd, wait_until, Engine};
use std::time::Duration;

fn run(e: &Engine, args: &[&str]) -> (bool, String, String) {
    let out = engine_cmd().args(args).arg("--data-dir").arg(&e.data_dir).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn freeze_thaw_integrity_and_journal_tools() {
    let e = Engine::start();
    let mut c = e.client();
    for n in 0..50 {
        c.set(&format!("^j({n})"), format!("v{n}")).unwrap();
    }
    c.sync().unwrap();

    let (ok, out, err) = run(&e, &["freeze", "--timeout", "60"]);
    assert!(ok, "{err}");
    assert!(out.contains("frozen"), "{out}");
    // Writes go on while frozen (the journal keeps accepting them).
    c.set("^j(\"frozen\")", "yes").unwrap();
    let (ok, _, err) = run(&e, &["freeze"]);
    assert!(!ok && err.contains("already frozen"), "{err}");
    let (ok, _, err) = run(&e, &["thaw"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&e, &["thaw"]);
    assert!(!ok && err.contains("not frozen"), "{err}");

    let (ok, out, err) = run(&e, &["integrity", "user"]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["nodes"], 51, "{out}");
    let (ok, _, err) = run(&e, &["integrity", "NOPE"]);
    assert!(!ok && err.contains("NOPE"), "{err}");

    let (ok, out, err) = run(&e, &["journal", "list"]);
    assert!(ok, "{err}");
    let file = out.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("a journal file").to_string();
    let (ok, out, err) = run(&e, &["journal", "dump", &file]);
    assert!(ok, "{err}");
    assert!(out.contains("SET USER ^j(0)=\"v0\""), "{out}");
    assert!(out.contains("SET USER ^j(\"frozen\")=\"yes\""), "{out}");
}

#[test]
fn a_changed_merge_file_is_applied_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let merge = dir.path().join("merge.yaml");
    std::fs::write(&merge, "actions:\n  create_database:\n    - name: FIRST\n").unwrap();
    let data = dir.path().join("data");
    let e = Engine::start_in(&data, &["--merge", merge.to_str().unwrap()]);
    let config = || std::fs::read_to_string(data.join("engine.yaml")).unwrap();
    assert!(config().contains("FIRST"));
    std::fs::write(
        &merge,
        "actions:\n  create_database:\n    - name: FIRST\n    - name: SECOND\n  create_namespace:\n    - name: LATER\n      globals: SECOND\n",
    )
    .unwrap();
    // Applied means usable: the namespace answers (engine.yaml is written just before the
    // routing tables are rebuilt, so the file alone is not the condition).
    let mut c = e.client();
    wait_until("the changed merge file to be applied", Duration::from_secs(20), || c.namespace("LATER").is_ok());
    assert!(config().contains("LATER"));
    c.set("^x", "1").unwrap();
    // A broken edit is logged and changes nothing; the engine keeps serving.
    std::fs::write(
        &merge,
        "actions:\n  create_namespace:\n    - name: BROKEN\n      globals: SECOND\n      extra: 1\n",
    )
    .unwrap();
    let log = data.join("messages.log");
    wait_until("the broken merge file to be reported", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("not applied")
    });
    assert!(!config().contains("BROKEN"));
    assert_eq!(c.get("^x").unwrap(), Some(b"1".to_vec()));
}
