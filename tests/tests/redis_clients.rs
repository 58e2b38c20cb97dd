//! Real Redis tools against a real engine binary: `redis-cli` (`--scan`, `--bigkeys`,
//! `--stat`) and redis-py from PyPI (tests/scripts/redis_py_check.py). `.ci/run` installs
//! both; elsewhere a missing tool is reported and the test returns, under CI (`CI=true`)
//! it fails.

use mirrorlab_tests::Engine;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Whether `check` runs successfully; if not, says why, and fails under CI.
fn tool(what: &str, check: &mut Command) -> bool {
    if check.output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = format!("{what} is not installed (.ci/run installs it)");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}; under CI it must be there");
    eprintln!("not run: {why}");
    false
}

fn redis_cli() -> bool {
    tool("redis-cli (apt-get install redis-tools)", Command::new("redis-cli").arg("--version"))
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &port.to_string()]).args(args).output().expect("run redis-cli");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "redis-cli {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn load(e: &Engine) {
    let mut c = e.client();
    for i in 0..120 {
        c.set(&format!("user:{i}:name"), format!("name {i}")).unwrap();
    }
    c.set("^big(1)", "x".repeat(5000)).unwrap();
    c.set("^odd(\"a:b\")", "colon").unwrap();
}

#[test]
fn redis_cli_scan_lists_every_key_in_order_with_names_that_work() {
    if !redis_cli() {
        return;
    }
    let e = Engine::start();
    load(&e);
    let all: Vec<String> = cli(e.superserver_port, &["--scan"]).lines().map(str::to_string).collect();
    assert_eq!(all.len(), 122, "{all:?}");
    assert_eq!(all[0], "big:1");
    assert_eq!(all[1], "^odd(\"a:b\")");
    let users: Vec<String> = (0..120).map(|i| format!("user:{i}:name")).collect();
    assert_eq!(all[2..], users[..], "numbers collate numerically");
    let some = cli(e.superserver_port, &["--scan", "--pattern", "user:1?:*"]);
    assert_eq!(some.lines().count(), 10, "{some}");
    // Each name round-trips through GET.
    for name in [&all[0], &all[1], &all[121]] {
        assert!(!cli(e.superserver_port, &["GET", name]).trim().is_empty(), "{name}");
    }
}

#[test]
fn redis_cli_bigkeys_finds_the_biggest_string() {
    if !redis_cli() {
        return;
    }
    let e = Engine::start();
    load(&e);
    let out = cli(e.superserver_port, &["--bigkeys"]);
    assert!(out.contains("Biggest string found") && out.contains("'\"big:1\"'") && out.contains("5000 bytes"), "{out}");
    assert!(out.contains("Sampled 122 keys") && out.contains("122 strings with 5855 bytes"), "{out}");
}

#[test]
fn redis_cli_stat_shows_keys_memory_and_clients() {
    if !redis_cli() {
        return;
    }
    let e = Engine::start();
    load(&e);
    let mut child = Command::new("redis-cli")
        .args(["-p", &e.superserver_port.to_string(), "--stat", "-i", "0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run redis-cli --stat");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The header, then a line of figures: keys, memory, clients, ...
    let mut lines = Vec::new();
    while lines.len() < 4 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => lines.push(line),
            Err(e) => panic!("redis-cli --stat printed {lines:?}, then {e}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = lines.join("\n");
    assert!(text.contains("keys") && text.contains("mem") && text.contains("clients"), "{text}");
    let figures = lines.iter().find(|l| l.trim_start().starts_with("122 ")).unwrap_or_else(|| panic!("{text}"));
    assert!(figures.contains('M') || figures.contains('K'), "used memory in {figures}");
}

#[test]
fn redis_py_transactions_watch_and_scan() {
    let has_redis_py = tool("redis-py (pip install redis)", Command::new("python3").args(["-c", "import redis"]));
    if !has_redis_py {
        return;
    }
    let e = Engine::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis_py_check.py");
    let out = Command::new("python3").arg(&script).arg(e.superserver_port.to_string()).output().expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{}\n{stdout}{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
