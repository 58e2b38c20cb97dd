//! The engine as an operator runs it: start, qlist, stop, a second engine refused, the
//! merge file, garbage on the wire, and kill -9 under a committing workload.

use mirrorlab_tests::{engine_cmd, wait_until, Engine};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn qlist(dir: &std::path::Path) -> (bool, String) {
    let out = engine_cmd().arg("qlist").arg("--data-dir").arg(dir).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn start_qlist_stop() {
    let mut e = Engine::start();
    let (ok, line) = qlist(&e.data_dir);
    assert!(ok, "qlist exits 0 while running: {line}");
    let fields: Vec<&str> = line.trim_end().split('^').collect();
    assert_eq!(fields.len(), 13, "{line}");
    assert!(fields[3].starts_with("running, since "), "{line}");
    assert_eq!(fields[5], e.superserver_port.to_string());
    assert_eq!(fields[6], e.web_port.to_string());
    assert_eq!(fields[8], "ok");
    assert_eq!(fields[12], e.data_dir.display().to_string());

    let out = e.stop();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, line) = qlist(&e.data_dir);
    assert!(!ok, "qlist exits non-zero when down");
    assert!(line.split('^').nth(3).unwrap().starts_with("down, last used "), "{line}");
    // A first start initialised the directory.
    for f in ["engine.yaml", "messages.log", "journal", "databases/USER/mirrorlab.dat"] {
        assert!(e.data_dir.join(f).exists(), "{f} missing");
    }
}

#[test]
fn a_second_engine_on_the_same_directory_is_refused() {
    let e = Engine::start();
    let out = engine_cmd()
        .arg("start")
        .arg("--data-dir")
        .arg(&e.data_dir)
        .args(["--superserver-port", "0", "--web-port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("in use by engine process {}", e.child.id())), "{err}");
    // The first engine is undisturbed.
    e.client().ping().unwrap();
}

#[test]
fn merge_file_creates_databases_namespaces_and_mappings_once() {
    let dir = tempfile::tempdir().unwrap();
    let merge = dir.path().join("merge.yaml");
    std::fs::write(
        &merge,
        "config:\n  journal:\n    durability: always\nactions:\n  create_database:\n    - name: COMPANY\n    - name: PERSONAL\n  create_namespace:\n    - name: PHONEBOOK\n      globals: PERSONAL\n  create_mapping:\n    - namespace: PHONEBOOK\n      global: \"Company*\"\n      database: COMPANY\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let merge_arg = merge.to_str().unwrap();
    let mut e = Engine::start_in(&data, &["--merge", merge_arg]);
    let mut c = e.client();
    c.namespace("PHONEBOOK").unwrap();
    c.set("^Company(1)", "Acme").unwrap();
    c.set("^Person(1)", "Ann").unwrap();
    let config = std::fs::read_to_string(data.join("engine.yaml")).unwrap();
    assert!(config.contains("durability: always"), "{config}");
    assert!(config.contains("Company*"), "{config}");
    drop(c);
    assert!(e.stop().status.success());
    let files = std::fs::read_dir(data.join("databases")).unwrap().count();

    // A second start with the same file changes nothing and keeps the data.
    let mut e = Engine::start_in(&data, &["--merge", merge_arg]);
    assert_eq!(std::fs::read_to_string(data.join("engine.yaml")).unwrap(), config);
    assert_eq!(std::fs::read_dir(data.join("databases")).unwrap().count(), files);
    let mut c = e.client();
    c.namespace("PHONEBOOK").unwrap();
    assert_eq!(c.get("^Company(1)").unwrap(), Some(b"Acme".to_vec()));
    assert_eq!(c.get("^Person(1)").unwrap(), Some(b"Ann".to_vec()));
    drop(c);
    assert!(e.stop().status.success());

    // A malformed merge file names the line and changes nothing.
    std::fs::write(&merge, "actions:\n  create_database:\n    - name: X\n      sise: 1\n").unwrap();
    let out = engine_cmd().arg("start").arg("--data-dir").arg(&data).args(["--merge", merge_arg]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("merge.yaml:4:"), "{err}");
    assert_eq!(std::fs::read_to_string(data.join("engine.yaml")).unwrap(), config);
}

#[test]
fn garbage_on_one_connection_does_not_disturb_others() {
    let e = Engine::start();
    let mut good = e.client();
    good.set("^g", "1").unwrap();
    let mut bad = TcpStream::connect(("127.0.0.1", e.superserver_port)).unwrap();
    bad.write_all(b"*2\r\n$3\r\nGET\r\n$-7\r\n\x00\x01garbage").unwrap();
    let mut reply = String::new();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = bad.read_to_string(&mut reply);
    assert!(reply.starts_with("-ERR Protocol error"), "{reply:?}");
    // The bad connection is closed; the good one goes on.
    assert_eq!(good.get("^g").unwrap(), Some(b"1".to_vec()));
}

/// kill -9 while clients commit transactions: after restart every acknowledged commit is
/// there, and no transaction is half applied.
#[test]
fn kill_9_under_committing_load_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Engine::start_in(dir.path(), &[]);
    let acked: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let port = e.superserver_port;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let Ok(mut c) = engine::client::Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5))
                else {
                    return;
                };
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let commit = (|| -> Result<(), engine::client::ClientError> {
                        c.tstart()?;
                        c.set(&format!("^w({w},{n},1)"), "a")?;
                        c.set(&format!("^w({w},{n},2)"), "b")?;
                        c.tcommit()
                    })();
                    match commit {
                        Ok(()) => acked.lock().unwrap().push((w, n)),
                        Err(_) => return, // the engine died under us
                    }
                }
            })
        })
        .collect();
    wait_until("a few hundred commits", Duration::from_secs(60), || acked.lock().unwrap().len() >= 300);
    e.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let e = Engine::start_in(dir.path(), &[]);
    let mut c = e.client();
    for (w, n) in &acked {
        assert_eq!(c.get(&format!("^w({w},{n},1)")).unwrap(), Some(b"a".to_vec()), "commit ({w},{n}) lost");
        assert_eq!(c.get(&format!("^w({w},{n},2)")).unwrap(), Some(b"b".to_vec()), "commit ({w},{n}) half applied");
    }
    // Whatever else survived is whole: walk every transaction present.
    for w in 0..4 {
        let mut n = String::new();
        while let Some(next) = c
            .order(
                &format!("^w({w},{})", if n.is_empty() { "\"\"".into() } else { n.clone() }),
                engine::instance::Direction::Forward,
            )
            .unwrap()
        {
            n = String::from_utf8(next).unwrap();
            assert_eq!(c.data(&format!("^w({w},{n})")).unwrap(), 10);
            assert!(
                c.get(&format!("^w({w},{n},1)")).unwrap().is_some()
                    && c.get(&format!("^w({w},{n},2)")).unwrap().is_some(),
                "({w},{n}) partial"
            );
        }
    }
}
