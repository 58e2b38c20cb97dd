//! A broken invariant or a storage failure stops the process, never one thread of it: the
//! engine exits non-zero with a message saying why, so its agent reports it down and a
//! backup takes over (docs/design/failover.md, "Failures that stop a member").

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::mirror::Lab;
use mirrorlab_tests::{engine_cmd, wait_until, Engine};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// The largest file the engine may write: its first journal segment (preallocated 8 MiB)
/// and its database files fit; the journal's next preallocation does not, and fails with
/// EFBIG as a full disk fails with ENOSPC.
const FILE_SIZE_LIMIT: u64 = 12 << 20;

/// An engine on `dir` whose files cannot grow past [`FILE_SIZE_LIMIT`]: a full disk.
fn engine_on_a_small_disk(dir: &Path, extra: &[&str]) -> Engine {
    let _ = std::fs::remove_file(dir.join("engine.state.json"));
    let mut cmd = engine_cmd();
    cmd.arg("start")
        .arg("--data-dir")
        .arg(dir)
        .args(["--superserver-port", "0", "--web-port", "0", "--log-level", "warn"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Writes past the limit fail with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit { rlim_cur: FILE_SIZE_LIMIT, rlim_max: FILE_SIZE_LIMIT };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Engine::attach(dir, cmd.spawn().expect("spawn engine"))
}

/// Writes 60 KB values `^big(i)` until one is refused; returns the keys acknowledged and
/// the refusal.
fn fill(client: &mut Client) -> (Vec<String>, String) {
    client.command(&[b"DURABILITY", b"always"]).unwrap();
    let value = "x".repeat(60_000);
    let mut acknowledged = Vec::new();
    for i in 0..1_000 {
        let key = format!("^big({i})");
        match client.set(&key, value.clone()) {
            Ok(()) => acknowledged.push(key),
            Err(e) => return (acknowledged, e.to_string()),
        }
    }
    panic!("60 MB of writes all succeeded under a {FILE_SIZE_LIMIT}-byte file limit");
}

#[test]
fn an_engine_whose_journal_cannot_be_written_exits_non_zero_and_says_why() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let mut engine = engine_on_a_small_disk(dir, &[]);
    let mut client = engine.client();
    fill(&mut client);
    let mut status = None;
    wait_until("the engine to exit", Duration::from_secs(20), || {
        status = engine.child.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    assert!(!status.success(), "the engine exits non-zero: {status}");
    let mut stderr = String::new();
    engine.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(stderr.contains("fatal failure") && stderr.contains("journal"), "stderr says why:\n{stderr}");
    let log = std::fs::read_to_string(dir.join("messages.log")).unwrap();
    assert!(log.contains("fatal: journal") && log.contains("the engine stops"), "messages.log says why:\n{log}");
}

#[test]
fn a_panic_in_the_mirror_task_stops_the_engine_and_the_backup_takes_over() {
    let mut lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 1000);
    let _ = mirrorlab_tests::try_http(lab.web(0), "POST", "/api/mirror/actions", Some(r#"{"action":"fault-panic"}"#));
    let engine = lab.members[0].engine.as_mut().unwrap();
    let mut status = None;
    wait_until("the engine to stop", Duration::from_secs(20), || {
        status = engine.child.try_wait().unwrap();
        status.is_some()
    });
    assert!(!status.unwrap().success(), "a panic is not a clean exit");
    let log = std::fs::read_to_string(lab.members[0].dir.join("messages.log")).unwrap();
    assert!(log.contains("fatal: a broken invariant"), "messages.log says why:\n{log}");
    lab.members[0].engine = None;
    lab.wait_status(1, "Primary");
}

#[test]
fn a_primary_whose_disk_is_full_stops_and_the_backup_takes_over_with_every_acknowledged_write() {
    let mut lab = Lab::start_with(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 1000, &|i, dir, args| {
        if i == 0 {
            engine_on_a_small_disk(dir, args)
        } else {
            Engine::start_in(dir, args)
        }
    });
    lab.add_mirrored_database("DATA");
    let mut client = lab.client(0, "DATA");
    let (acknowledged, refused) = fill(&mut client);
    assert!(!acknowledged.is_empty(), "some writes fit before the disk filled: {refused}");
    let engine = lab.members[0].engine.as_mut().unwrap();
    let mut status = None;
    wait_until("the full primary to stop", Duration::from_secs(20), || {
        status = engine.child.try_wait().unwrap();
        status.is_some()
    });
    assert!(!status.unwrap().success(), "a full disk is not a clean exit");
    lab.members[0].engine = None;
    // Never "running but refusing": the backup takes over, holding every write the old
    // primary acknowledged.
    lab.wait_status(1, "Primary");
    let mut client = lab.client(1, "DATA");
    for key in &acknowledged {
        let value = client.get(key).unwrap_or_else(|e| panic!("reading {key} on the new primary: {e}"));
        assert_eq!(value.map(|v| v.len()), Some(60_000), "{key} was acknowledged before the disk filled");
    }
    client.set("^after", "the new primary takes writes").unwrap();
}
