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

/// On a terminal (script(1) gives it one), the session edits lines and keeps history: the
/// up arrow brings the last line back, and Enter runs it again.
#[test]
fn on_a_terminal_the_up_arrow_recalls_the_last_line() {
    use std::time::Duration;
    if !mirrorlab_tests::tool_available("script", "on_a_terminal_the_up_arrow_recalls_the_last_line") {
        return;
    }
    let e = Engine::start();
    let bin = engine_cmd().get_program().to_str().unwrap().to_string();
    let command = format!("{bin} session --port {}", e.superserver_port);
    let mut child = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = mirrorlab_tests::stdout_chunks(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = Vec::new();
    // Each keystroke batch goes once the session shows its `prompts`-th prompt.
    let mut type_at = |prompts: usize, keys: &[u8]| {
        while String::from_utf8_lossy(&seen).matches("USER>").count() < prompts {
            let chunk = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no prompt {prompts}: {:?}", String::from_utf8_lossy(&seen)));
            seen.extend(chunk);
        }
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    };
    type_at(1, b"set ^n=$increment(^n)\r");
    type_at(2, b"\x1b[A\r");
    type_at(3, b"halt\r");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut c = e.client();
    let n = c.get("^n").unwrap().map(|v| String::from_utf8(v).unwrap());
    assert_eq!(n.as_deref(), Some("2"), "the recalled line ran a second time");
}
