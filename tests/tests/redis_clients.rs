//! Real Redis tools against a real engine binary: `redis-cli` (`--scan`, `--bigkeys`,
//! `--stat`) and redis-py from PyPI (tests/scripts/redis_py_check.py). `.ci/run` installs
//! both; elsewhere a missing tool is reported and the test returns, under CI (`CI=true`)
//! it fails.

use mirrorlab_tests::{tool_works, Engine};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn redis_cli() -> bool {
    tool_works("redis-cli (apt-get install redis-tools)", Command::new("redis-cli").arg("--version"))
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
    let rx = mirrorlab_tests::stdout_lines(&mut child);
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
fn redis_cli_monitor_shows_every_command_as_redis_does() {
    if !redis_cli() {
        return;
    }
    let e = Engine::start();
    let mut child = Command::new("redis-cli")
        .args(["-p", &e.superserver_port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run redis-cli monitor");
    let rx = mirrorlab_tests::stdout_lines(&mut child);
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).as_deref(), Ok("OK"), "redis-cli monitor starts with OK");
    let mut c = e.client();
    c.set("^mon(1)", "seen").unwrap();
    let line = rx.recv_timeout(Duration::from_secs(10)).expect("a monitor line for the SET");
    let _ = child.kill();
    let _ = child.wait();
    // 1339518083.107412 [0 127.0.0.1:60866] "SET" "^mon(1)" "seen"
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    assert!(time.parse::<f64>().is_ok(), "a timestamp first: {line}");
    assert!(rest.starts_with("[0 127.0.0.1:") && rest.ends_with(r#"] "SET" "^mon(1)" "seen""#), "{line}");
}

#[test]
fn redis_py_transactions_watch_and_scan() {
    let has_redis_py = tool_works("redis-py (pip install redis)", Command::new("python3").args(["-c", "import redis"]));
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

/// Regression: every member said `role:master`, and a write on a follower got `-PROTECT`,
/// which no client library reads as "go to the primary".
#[test]
fn a_mirror_tells_redis_clients_who_is_primary() {
    use mirrorlab_tests::engine::client::Reply;
    use mirrorlab_tests::mirror::Lab;
    let lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover"), ("DR", "dr")], 1000);
    lab.add_mirrored_database("DATA");
    lab.wait_status(2, "Connected");
    let info = |i: usize, field: &str| {
        let Reply::Bulk(text) = lab.client(i, "DATA").command(&[b"INFO", b"replication"]).unwrap() else {
            panic!("INFO")
        };
        let text = String::from_utf8(text).unwrap();
        let prefix = format!("{field}:");
        text.lines().find_map(|l| l.strip_prefix(&prefix).map(str::to_string)).unwrap_or_else(|| panic!("{text}"))
    };
    assert_eq!(info(0, "role"), "master");
    assert_eq!(info(0, "connected_slaves"), "2");
    // The members' superserver address is the one the mirror configuration names.
    for i in [1, 2] {
        assert_eq!(info(i, "role"), "slave", "{}", lab.members[i].name);
        assert_eq!((info(i, "master_host"), info(i, "master_port")), ("127.0.0.1".into(), "1972".into()));
        assert_eq!(info(i, "master_link_status"), "up");
    }
    let mut a = lab.client(0, "DATA");
    a.set("^r(1)", "x").unwrap();
    assert_eq!(a.command(&[b"WAIT", b"1", b"5000"]).unwrap(), Reply::Integer(1));
    let Reply::Array(role) = lab.client(1, "DATA").command(&[b"ROLE"]).unwrap() else { panic!("ROLE") };
    assert_eq!(role[..3], [Reply::Bulk(b"slave".to_vec()), Reply::Bulk(b"127.0.0.1".to_vec()), Reply::Integer(1972)]);
    let err = lab.client(1, "DATA").set("^r(2)", "x").unwrap_err().to_string();
    assert_eq!(err, "READONLY You can't write against a read only replica. (primary is 127.0.0.1:1972)");
    // Inside EXEC too, in the write's place.
    let mut b = lab.client(1, "DATA");
    for c in [&[&b"MULTI"[..]][..], &[b"SET", b"^r(2)", b"x"], &[b"GET", b"^r(1)"]] {
        b.command(c).unwrap();
    }
    let Reply::Array(replies) = b.command(&[b"EXEC"]).unwrap() else { panic!("EXEC") };
    assert!(matches!(&replies[0], Reply::Error(e) if e.code == "READONLY"), "{replies:?}");
    assert_eq!(replies[1], Reply::Bulk(b"x".to_vec()));
    // The engine's own wording, for a connection that asks (the terminal does).
    let mut b = lab.client(1, "DATA");
    b.command(&[b"CLIENT", b"ERRORS", b"ENGINE"]).unwrap();
    let err = b.set("^r(2)", "x").unwrap_err().to_string();
    assert!(err.starts_with("PROTECT ") && err.contains("only the primary writes it"), "{err}");

    // redis-py turns it into its ReadOnlyError; redis-cli sees the roles.
    if redis_cli() {
        assert!(cli(lab.engine(0).superserver_port, &["ROLE"]).starts_with("master\n"));
        assert!(cli(lab.engine(2).superserver_port, &["ROLE"]).starts_with("slave\n127.0.0.1\n1972\n"));
    }
    let has_redis_py = tool_works("redis-py (pip install redis)", Command::new("python3").args(["-c", "import redis"]));
    if has_redis_py {
        let script = "import sys, redis\n\
                      r = redis.Redis(port=int(sys.argv[1]))\n\
                      r.execute_command('NAMESPACE', 'DATA')\n\
                      try:\n    r.set('^r(3)', 'x')\nexcept redis.exceptions.ReadOnlyError as e:\n    print('readonly:', e)\n";
        let out = Command::new("python3")
            .args(["-c", script, &lab.engine(1).superserver_port.to_string()])
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("readonly:"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    }
}
