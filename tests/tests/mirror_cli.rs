//! The mirror surfaces of a real engine that is no mirror member: `engine mirror <verb>`
//! (exit codes, messages), `/mirror_status`, `MIRROR` over RESP, and the qlist mirror
//! fields from the mirror state file. (The surfaces over a running member are tested
//! in-process with a fake member: `web/tests.rs`, `resp/tests.rs`, `cli/mirror.rs`.)

use mirrorlab_tests::{engine_cmd, Engine};
use std::path::Path;
use std::time::Duration;

fn engine(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = engine_cmd().args(args).arg("--data-dir").arg(dir).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn mirror_commands_without_an_engine_say_so() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["mirror", "status"][..], &["mirror", "failover"], &["mirror", "add", "COMPANY"]] {
        let (code, out, err) = engine(dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("no engine is running on ") && err.contains("engine start"), "{args:?}: {err}");
    }
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let (code, _, err) = engine(dir.path(), &["mirror", "status", "--port", &port]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach the engine's management API"), "{err}");
}

#[test]
fn a_running_engine_that_is_no_mirror_member() {
    let mut e = Engine::start();
    let dir = e.data_dir.clone();

    let (code, out, err) = engine(&dir, &["mirror", "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("This instance is not a mirror member."), "{out}");
    let (code, out, err) = engine(&dir, &["mirror", "status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), serde_json::json!({ "status": null }));

    // Creating or joining needs the mirror's configuration first, and says where to put it.
    for args in [&["mirror", "create"][..], &["mirror", "join"]] {
        let (code, out, err) = engine(&dir, args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("no mirror is configured: PUT /api/mirror/config"), "{args:?}: {err}");
    }
    for args in [
        &["mirror", "add", "company"][..],
        &["mirror", "activate", "COMPANY"],
        &["mirror", "remove", "COMPANY"],
        &["mirror", "failover"],
        &["mirror", "no-failover", "set"],
        &["mirror", "no-failover", "clear"],
        &["mirror", "promote"],
    ] {
        let (code, out, err) = engine(&dir, args);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert_eq!(
            err.trim(),
            "engine: error: NOTMIRRORED this instance is not a mirror member: create or join a mirror first",
            "{args:?}"
        );
    }
    // Another data directory, the engine named by its port.
    let elsewhere = tempfile::tempdir().unwrap();
    let port = e.web_port.to_string();
    let (code, out, err) = engine(elsewhere.path(), &["mirror", "--port", &port, "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("This instance is not a mirror member."), "{out}");
    let (code, _, err) = engine(elsewhere.path(), &["mirror", "failover", "--host", "localhost", "--port", &port]);
    assert_eq!(code, 1);
    assert!(err.contains("NOTMIRRORED"), "{err}");
    // Usage errors are clap's.
    let (code, _, err) = engine(&dir, &["mirror", "no-failover", "maybe"]);
    assert_ne!(code, 0);
    assert!(err.contains("maybe"), "{err}");

    // Waiting for a status that never comes ends with the last one seen.
    let (code, _, err) = engine(&dir, &["mirror", "wait", "Primary", "--timeout", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("did not become Primary within 1 s (last: not a mirror member)"), "{err}");
    // qlist --wait answers at once for a ready engine.
    let (code, out, err) = engine(&dir, &["qlist", "--wait", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("^running, since "), "{out}");

    // The load balancers' check: not a primary.
    let r = engine::cli::http::call(e.web_port, "GET", "/mirror_status", None, Duration::from_secs(10)).unwrap();
    assert_eq!((r.status, r.body.as_str()), (503, "FAILED"));

    // RESP.
    let mut c = e.client();
    assert_eq!(c.command(&[b"MIRROR", b"STATUS"]).unwrap(), engine::client::Reply::Nil);
    let err = c.command(&[b"MIRROR", b"FAILOVER"]).unwrap_err();
    assert_eq!(err.code(), Some("NOTMIRRORED"), "{err}");

    // qlist: the mirror fields come from the mirror state file once there is one.
    let qlist = || {
        let (_, out, _) = engine(&dir, &["qlist"]);
        out.trim_end().split('^').map(str::to_string).collect::<Vec<_>>()
    };
    let fields = qlist();
    assert_eq!((fields[10].as_str(), fields[11].as_str()), ("", ""), "{fields:?}");
    std::fs::write(
        dir.join("mirror.state.json"),
        r#"{"mirror":"DEMO","member":"MIRRORA","role":"primary","epoch":3,"status":"Primary","type":"failover"}"#,
    )
    .unwrap();
    let fields = qlist();
    assert_eq!((fields[10].as_str(), fields[11].as_str()), ("Failover", "Primary"), "{fields:?}");
    assert_eq!(fields.len(), 13, "{fields:?}");
    let out = e.stop();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fields = qlist();
    assert_eq!((fields[10].as_str(), fields[11].as_str()), ("Failover", ""), "no live status while down: {fields:?}");
}
