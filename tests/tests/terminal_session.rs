//! `engine session` with a piped script, as CI and trainers use it.

use mirrorlab_tests::{engine_cmd, Engine};
use std::io::Write;
use std::process::Stdio;

fn session(e: &Engine, script: &str) -> String {
    let mut child = engine_cmd()
        .args(["session", "--port", &e.superserver_port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn piped_script_with_increment_zwrite_and_protect() {
    let e = Engine::start();
    let mut c = e.client();
    c.command(&[b"SET", b"^ro(1)", b"x"]).unwrap();
    let script = "set ^k8stest($i(^k8stest))=\"run \"_$zu(110)\nset ^k8stest($i(^k8stest))=\"second\"\nzw ^k8stest\nw $d(^k8stest),!\nw $o(^k8stest(\"\")),\",\",$o(^k8stest(\"\"),-1),!\nh\n";
    let out = session(&e, script);
    assert!(out.contains("^k8stest=2"), "{out}");
    assert!(out.contains("^k8stest(1)=\"run "), "{out}");
    assert!(out.contains("^k8stest(2)=\"second\""), "{out}");
    assert!(out.contains("11\n"), "{out}");
    assert!(out.contains("1,2\n"), "{out}");
    assert!(out.starts_with("USER>"), "{out}");

    // Make USER read-only through the management API, then a write is a <PROTECT> error and
    // the session goes on.
    let r = engine::cli::http::call(
        e.web_port,
        "POST",
        "/api/databases/USER/mount",
        Some("{\"read_only\":true}"),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let out = session(&e, "set ^ro(1)=\"y\"\nw \"still here \",^ro(1),!\n");
    assert!(out.contains("<PROTECT>"), "{out}");
    assert!(out.contains("still here x"), "{out}");
}
