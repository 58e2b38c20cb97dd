//! ECP end to end: application servers (real engines) whose namespaces map globals to
//! databases on a data server (a standalone engine, or a mirror followed through a
//! failover).

use mirrorlab_tests::engine::client::{Client, ClientError, Reply};
use mirrorlab_tests::engine::instance::Direction;
use mirrorlab_tests::mirror::Lab;
use mirrorlab_tests::{http, wait_until, Engine};
use std::path::Path;
use std::time::Duration;

/// Creates database `db` and namespace `db` (its default database) on an engine.
fn create_database(web: u16, db: &str) {
    let (code, body) = http(web, "POST", "/api/databases", Some(&format!(r#"{{"name":"{db}"}}"#)));
    assert!(code == 200 || code == 201, "{body}");
    let (code, body) = http(web, "POST", "/api/namespaces", Some(&format!(r#"{{"name":"{db}","globals":"{db}"}}"#)));
    assert!(code == 200 || code == 201, "{body}");
}

/// Starts an application server whose namespace PHONEBOOK maps `^Person*` to remote
/// database PB on data server DS at `address`, everything else to its local USER.
fn app_server(dir: &Path, address: &str, mirror: bool) -> Engine {
    let merge = dir.join("merge.yaml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        &merge,
        format!(
            "config:\n  ecp: {{ wait_s: 30 }}\nactions:\n  create_ecp_server:\n    - {{ name: DS, address: \"{address}\", mirror: {mirror} }}\n  create_database:\n    - {{ name: PB, server: DS, path: PB }}\n  create_namespace:\n    - {{ name: PHONEBOOK, globals: USER }}\n  create_mapping:\n    - {{ namespace: PHONEBOOK, global: \"Person*\", database: PB }}\n"
        ),
    )
    .unwrap();
    let app = Engine::start_in(dir, &["--merge", merge.to_str().unwrap()]);
    wait_until("the application server to reach its data server", Duration::from_secs(30), || {
        ecp_state(app.web_port) == "Normal"
    });
    app
}

fn ecp_state(web: u16) -> String {
    let (_, body) = http(web, "GET", "/api/ecp", None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["servers"][0]["state"].as_str().unwrap_or_default().to_string()
}

fn client_in(port: u16, ns: &str) -> Client {
    let mut c = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).expect("connect");
    c.namespace(ns).expect("namespace");
    c
}

fn error_of(reply: Result<Reply, ClientError>) -> String {
    match reply {
        Err(ClientError::Server(e)) => format!("{} {}", e.code, e.message),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn an_application_server_reads_and_writes_remote_globals_as_its_own() {
    let ds = Engine::start();
    create_database(ds.web_port, "PB");
    let temp = tempfile::tempdir().unwrap();
    let app = app_server(&temp.path().join("app"), &format!("127.0.0.1:{}", ds.superserver_port), false);
    let mut a = client_in(app.superserver_port, "PHONEBOOK");
    let mut d = client_in(ds.superserver_port, "PB");

    // Remote and local globals side by side: each lands where the namespace maps it.
    a.set("^Person(1,\"name\")", "Ann").unwrap();
    a.set("^Person(2,\"name\")", "Bob").unwrap();
    a.set("^local(1)", "here").unwrap();
    assert_eq!(d.get("^Person(1,\"name\")").unwrap(), Some(b"Ann".to_vec()));
    assert_eq!(d.get("^local(1)").unwrap(), None, "local globals stay on the application server");
    assert_eq!(a.get("^local(1)").unwrap(), Some(b"here".to_vec()));
    d.set("^Person(3,\"name\")", "Cid").unwrap();
    assert_eq!(a.get("^Person(3,\"name\")").unwrap(), Some(b"Cid".to_vec()), "a write on the data server is seen");

    // $DATA, $ORDER and $QUERY walk remote subtrees.
    assert_eq!(a.data("^Person(1)").unwrap(), 10);
    assert_eq!(a.data("^Person(1,\"name\")").unwrap(), 1);
    assert_eq!(a.order("^Person(1)", Direction::Forward).unwrap(), Some(b"2".to_vec()));
    assert_eq!(a.order("^Person(\"\")", Direction::Backward).unwrap(), Some(b"3".to_vec()));
    assert_eq!(a.query("^Person(1,\"name\")", Direction::Forward).unwrap().as_deref(), Some("^Person(2,\"name\")"));

    // INCR answers unique values; ZKILL and KILL remove what they should.
    assert_eq!(a.incr("^Person(\"seq\")", "1").unwrap(), "1");
    assert_eq!(a.incr("^Person(\"seq\")", "2.5").unwrap(), "3.5");
    assert_eq!(d.get("^Person(\"seq\")").unwrap(), Some(b"3.5".to_vec()));
    a.set("^Person(2)", "top").unwrap();
    assert!(a.zkill("^Person(2)").unwrap());
    assert_eq!(d.data("^Person(2)").unwrap(), 10, "ZKILL keeps the subtree");
    assert_eq!(a.kill(&["^Person(2)"]).unwrap(), 1);
    assert_eq!(d.data("^Person(2)").unwrap(), 0);

    // Read-modify-write commands run atomically on the data server.
    assert_eq!(a.command(&[b"SET", b"^Person(9)", b"x", b"NX"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(a.command(&[b"SET", b"^Person(9)", b"y", b"NX"]).unwrap(), Reply::Nil);
    assert_eq!(a.command(&[b"APPEND", b"^Person(9)", b"yz"]).unwrap(), Reply::Integer(3));
    assert_eq!(d.get("^Person(9)").unwrap(), Some(b"xyz".to_vec()));
    assert_eq!(a.command(&[b"GETDEL", b"^Person(9)"]).unwrap(), Reply::Bulk(b"xyz".to_vec()));
    assert_eq!(d.get("^Person(9)").unwrap(), None);

    // Transactions commit and roll back on the data server.
    a.tstart().unwrap();
    a.set("^Person(4)", "committed").unwrap();
    assert_eq!(d.get("^Person(4)").unwrap(), Some(b"committed".to_vec()), "the data server holds it (uncommitted)");
    a.tcommit().unwrap();
    a.tstart().unwrap();
    a.set("^Person(5)", "rolled back").unwrap();
    a.trollback().unwrap();
    assert_eq!(d.get("^Person(5)").unwrap(), None);
    assert_eq!(d.get("^Person(4)").unwrap(), Some(b"committed".to_vec()));
    // One transaction cannot write both here and there: they would not commit together.
    a.tstart().unwrap();
    a.set("^local(2)", "x").unwrap();
    let refused = error_of(a.command(&[b"SET", b"^Person(6)", b"x"]));
    assert!(refused.contains("ECPTXN"), "{refused}");
    a.trollback().unwrap();

    // The status says where the application server is attached, on both sides.
    let (_, body) = http(app.web_port, "GET", "/api/ecp", None);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["servers"][0]["name"], "DS");
    assert_eq!(status["servers"][0]["state"], "Normal");
    let Reply::Bulk(info) = a.command(&[b"INFO", b"ecp"]).unwrap() else { panic!("INFO") };
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains("ecp_server_ds:state=Normal,member="), "{info}");
    // The portal shows the Data Servers list with each one's state.
    if mirrorlab_tests::tool_available("chromium", "ECP in the portal: headless Chromium") {
        let url = format!("http://127.0.0.1:{}/", app.web_port);
        let out = mirrorlab_tests::chromium(&url, &temp.path().join("profile"), &["--dump-dom"]);
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(dom.contains("<tr data-server=\"DS\" data-state=\"Normal\">"), "the portal's ECP panel:\n{dom}");
    }
    let (_, body) = http(ds.web_port, "GET", "/api/ecp", None);
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    let apps: Vec<&str> =
        served["app_servers"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(apps.len(), 1, "{served}");
    assert!(served["requests_served"].as_u64().unwrap() > 20, "{served}");
}

#[test]
fn a_data_server_refuses_mismatched_mirror_flags_and_garbage() {
    let ds = Engine::start();
    create_database(ds.web_port, "PB");
    let mut c = Client::connect(format!("127.0.0.1:{}", ds.superserver_port), Duration::from_secs(5)).unwrap();
    let mirror = error_of(c.command(&[b"ECP", b"ATTACH", b"APP1", b"1", b"1", b"1"]));
    assert!(mirror.starts_with("ECPMIRROR") && mirror.contains("mirror: false"), "{mirror}");
    assert!(matches!(c.command(&[b"ECP", b"ATTACH", b"APP1", b"1", b"1", b"0"]).unwrap(), Reply::Array(_)));
    // Requests need an attachment; garbage gets an error, not a crash.
    let mut other = Client::connect(format!("127.0.0.1:{}", ds.superserver_port), Duration::from_secs(5)).unwrap();
    let e = error_of(other.command(&[b"ECP", b"GET", b"PB", b"x"]));
    assert!(e.contains("ATTACH first"), "{e}");
    let e = error_of(c.command(&[b"ECP", b"GET", b"NOPE", b"\x01"]));
    assert!(e.starts_with("DIRECTORY"), "{e}");
    let e = error_of(c.command(&[b"ECP", b"SET", b"x", b"PB", b"k", b"v"]));
    assert!(e.contains("not a number"), "{e}");
    assert_eq!(c.command(&[b"PING"]).unwrap(), Reply::Simple("PONG".into()));
}

#[test]
fn application_servers_follow_the_mirror_through_a_kill_of_the_primary_and_lose_no_acknowledged_write() {
    writes_through_a_fault_of_the_primary(&mut |lab: &mut Lab| lab.kill9(0));
}

#[test]
fn application_servers_follow_the_mirror_away_from_a_paused_primary() {
    // The paused engine stays stopped until the lab ends (which kills it).
    writes_through_a_fault_of_the_primary(&mut |lab: &mut Lab| {
        let pid = lab.engine(0).child.id() as i32;
        // SAFETY: signals a child process this test started and still owns.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    });
}

/// A two-member mirror with an application server in front; a writer makes 400 INCRs
/// (and a row per value) through it while `fault` strikes the primary after the first 100:
/// every INCR is acknowledged, once, in order, and all of it is on the new primary.
fn writes_through_a_fault_of_the_primary(fault: &mut dyn FnMut(&mut Lab)) {
    let mut lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], 1000);
    lab.add_mirrored_database("PB");
    // The members' real superserver addresses, so the application server can find the
    // other member once the one it knows is gone.
    for i in 0..2 {
        let mut config: serde_json::Value = serde_json::from_str(&lab.config(i)).unwrap();
        for (j, m) in config["members"].as_array_mut().unwrap().iter_mut().enumerate() {
            m["superserver"] = format!("127.0.0.1:{}", lab.engine(j).superserver_port).into();
        }
        let (code, body) = http(lab.web(i), "PUT", "/api/mirror/config", Some(&config.to_string()));
        assert_eq!(code, 200, "{body}");
    }
    let temp = tempfile::tempdir().unwrap();
    let app = app_server(&temp.path().join("app1"), &format!("127.0.0.1:{}", lab.engine(0).superserver_port), true);
    let port = app.superserver_port;
    let writer = std::thread::spawn(move || {
        let mut c = client_in(port, "PHONEBOOK");
        let mut acknowledged = Vec::new();
        let mut errors = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while acknowledged.len() < 400 && std::time::Instant::now() < deadline {
            match c.incr("^Person(\"counter\")", "1") {
                Ok(v) => {
                    let n: u64 = v.parse().unwrap();
                    if let Err(e) = c.set(&format!("^Person(\"row\",{n})"), "x") {
                        errors.push(e.to_string());
                    }
                    acknowledged.push(n);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (acknowledged, errors)
    });
    let mut watcher = lab.client(0, "PB");
    wait_until("writes through the application server", Duration::from_secs(30), || {
        let counter = watcher.get("^Person(\"counter\")").unwrap();
        counter.and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok()).is_some_and(|n| n >= 100)
    });
    drop(watcher);
    fault(&mut lab);
    let (acknowledged, errors) = writer.join().unwrap();
    assert!(errors.is_empty(), "the application server's clients saw errors: {errors:?}");
    // INCR replies are unique and consecutive: none was applied twice, none lost.
    let expected: Vec<u64> = (1..=400).collect();
    assert_eq!(acknowledged, expected);
    lab.wait_status(1, "Primary");
    let mut b = lab.client(1, "PB");
    assert_eq!(b.get("^Person(\"counter\")").unwrap(), Some(b"400".to_vec()));
    for n in [1, 100, 250, 400] {
        assert_eq!(b.get(&format!("^Person(\"row\",{n})")).unwrap(), Some(b"x".to_vec()), "row {n}");
    }
    let (_, body) = http(app.web_port, "GET", "/api/ecp", None);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["servers"][0]["member"], "MIRRORB", "{status}");
}

/// The raw protocol: a reattached channel's old connection cannot act, and the outcome of
/// each write is told exactly (applied, with its reply; or not).
#[test]
fn a_reattached_channel_learns_the_outcome_of_each_write_and_its_old_connection_is_refused() {
    let ds = Engine::start();
    create_database(ds.web_port, "PB");
    let connect = || Client::connect(format!("127.0.0.1:{}", ds.superserver_port), Duration::from_secs(5)).unwrap();
    let attach = |c: &mut Client| match c.command(&[b"ECP", b"ATTACH", b"APP1", b"42", b"7", b"0"]).unwrap() {
        Reply::Array(items) => match (&items[5], &items[6]) {
            (Reply::Integer(local), Reply::Integer(_)) => *local as u64,
            other => panic!("ATTACH ends {other:?}"),
        },
        other => panic!("ATTACH {other:?}"),
    };
    let key = |r: &str| {
        mirrorlab_tests::engine::globals::key::encode(&mirrorlab_tests::engine::globals::reference::parse(r).unwrap())
            .unwrap()
    };
    let mut old = connect();
    let end = attach(&mut old);
    let from = (end + 1).to_string();
    let set = old.command(&[b"ECP", b"SET", b"1", b"PB", &key("^x(1)"), b"v"]).unwrap();
    let Reply::Array(set) = set else { panic!("{set:?}") };
    let incr = old.command(&[b"ECP", b"INCR", b"2", b"PB", &key("^n"), b"5"]).unwrap();
    assert!(matches!(&incr, Reply::Array(items) if items[2] == Reply::Bulk(b"5".to_vec())), "{incr:?}");

    let mut new = connect();
    attach(&mut new);
    let refused = error_of(old.command(&[b"ECP", b"SET", b"3", b"PB", &key("^x(2)"), b"w"]));
    assert!(refused.starts_with("ECPREPLACED"), "{refused}");
    let outcome =
        |c: &mut Client, seq: &str| c.command(&[b"ECP", b"OUTCOME", seq.as_bytes(), from.as_bytes(), b"1"]).unwrap();
    // SET 1 was applied where its reply said.
    assert_eq!(outcome(&mut new, "1"), Reply::Array(vec![set[0].clone(), set[1].clone(), Reply::Bulk(Vec::new())]));
    // INCR 2 answers the value it made, and is not applied again.
    assert!(matches!(outcome(&mut new, "2"), Reply::Array(items) if items[2] == Reply::Bulk(b"5".to_vec())));
    // The refused SET 3, and a request never sent, were not applied.
    assert_eq!(outcome(&mut new, "3"), Reply::Nil);
    assert_eq!(outcome(&mut new, "4"), Reply::Nil);
    let mut d = client_in(ds.superserver_port, "PB");
    assert_eq!(d.get("^x(2)").unwrap(), None);
    assert_eq!(d.get("^n").unwrap(), Some(b"5".to_vec()));
}

/// A standalone data server killed and restarted on its address: requests wait (Trouble)
/// and carry on, nothing acknowledged is lost and nothing is applied twice.
#[test]
fn requests_wait_out_a_data_server_restart() {
    let temp = tempfile::tempdir().unwrap();
    let (superserver, web) = (mirrorlab_tests::free_port(), mirrorlab_tests::free_port());
    let ds_dir = temp.path().join("ds");
    std::fs::create_dir_all(&ds_dir).unwrap();
    let start_ds = || {
        let child = mirrorlab_tests::engine_cmd()
            .arg("start")
            .arg("--data-dir")
            .arg(&ds_dir)
            .args(["--superserver-port", &superserver.to_string(), "--web-port", &web.to_string()])
            .args(["--log-level", "warn"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Engine::attach(&ds_dir, child)
    };
    let mut ds = start_ds();
    create_database(web, "PB");
    let app = app_server(&temp.path().join("app"), &format!("127.0.0.1:{superserver}"), false);
    let mut a = client_in(app.superserver_port, "PHONEBOOK");
    for n in 1..=50u32 {
        assert_eq!(a.incr("^Person(\"n\")", "1").unwrap(), n.to_string());
    }
    ds.kill9();
    wait_until("the application server to see its data server in trouble", Duration::from_secs(10), || {
        ecp_state(app.web_port) == "Trouble"
    });
    let port = app.superserver_port;
    let writer = std::thread::spawn(move || {
        let mut a = client_in(port, "PHONEBOOK");
        (51..=100u32).map(|_| a.incr("^Person(\"n\")", "1").map_err(|e| e.to_string())).collect::<Vec<_>>()
    });
    let _ds = start_ds();
    let replies = writer.join().unwrap();
    let expected: Vec<Result<String, String>> = (51..=100u32).map(|n| Ok(n.to_string())).collect();
    assert_eq!(replies, expected);
    wait_until("the application server to be Normal again", Duration::from_secs(10), || {
        ecp_state(app.web_port) == "Normal"
    });
    assert_eq!(client_in(superserver, "PB").get("^Person(\"n\")").unwrap(), Some(b"100".to_vec()));
}

/// Past `ecp.max_app_servers` a data server refuses the next application server: it is
/// Disabled, and its requests fail at once with the reason instead of waiting.
#[test]
fn an_application_server_past_the_limit_is_disabled_with_the_reason() {
    let temp = tempfile::tempdir().unwrap();
    let ds_dir = temp.path().join("ds");
    std::fs::create_dir_all(&ds_dir).unwrap();
    let merge = ds_dir.join("merge.yaml");
    std::fs::write(&merge, "config:\n  ecp: { max_app_servers: 1 }\n").unwrap();
    let ds = Engine::start_in(&ds_dir, &["--merge", merge.to_str().unwrap()]);
    create_database(ds.web_port, "PB");
    let address = format!("127.0.0.1:{}", ds.superserver_port);
    let _app1 = app_server(&temp.path().join("app1"), &address, false);
    let app2_dir = temp.path().join("app2");
    std::fs::create_dir_all(&app2_dir).unwrap();
    std::fs::write(
        app2_dir.join("merge.yaml"),
        format!(
            "actions:\n  create_ecp_server:\n    - {{ name: DS, address: \"{address}\" }}\n  create_database:\n    - {{ name: PB, server: DS, path: PB }}\n  create_mapping:\n    - {{ namespace: USER, global: \"Person*\", database: PB }}\n"
        ),
    )
    .unwrap();
    let app2 = Engine::start_in(&app2_dir, &["--merge", app2_dir.join("merge.yaml").to_str().unwrap()]);
    wait_until("the second application server to be refused", Duration::from_secs(30), || {
        ecp_state(app2.web_port) == "Disabled"
    });
    let started = std::time::Instant::now();
    let refused = error_of(client_in(app2.superserver_port, "USER").command(&[b"GET", b"^Person(1)"]));
    assert!(refused.starts_with("NETWORK") && refused.contains("ECPLIMIT"), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(5), "a disabled data server fails requests at once");
}

/// The data server drops the application server's connections again and again (CLIENT
/// KILL, at seeded intervals) while INCRs run through it: some replies are lost after the
/// change was applied, and each of those is answered from the journal, never applied
/// again; the others are sent again. Every INCR answers the next number.
#[test]
fn writes_whose_replies_are_lost_are_applied_exactly_once() {
    let ds = Engine::start();
    create_database(ds.web_port, "PB");
    let temp = tempfile::tempdir().unwrap();
    let app = app_server(&temp.path().join("app"), &format!("127.0.0.1:{}", ds.superserver_port), false);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let done = done.clone();
        let port = ds.superserver_port;
        std::thread::spawn(move || {
            let mut c = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
            let laddr = format!("127.0.0.1:{port}");
            // A fixed-seed linear congruential generator: the same intervals every run.
            let mut state: u64 = 0x5eed;
            let mut kills = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                std::thread::sleep(Duration::from_micros(500 + (state >> 33) % 8000));
                c.command(&[b"CLIENT", b"KILL", b"LADDR", laddr.as_bytes(), b"SKIPME", b"yes"]).unwrap();
                kills += 1;
            }
            kills
        })
    };
    let mut a = client_in(app.superserver_port, "PHONEBOOK");
    let mut replies = Vec::new();
    let mut recovered = 0;
    for _ in 0..3000 {
        replies.push(a.incr("^Person(\"n\")", "1").map_err(|e| e.to_string()));
        let (_, body) = http(app.web_port, "GET", "/api/ecp", None);
        recovered =
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["servers"][0]["recovered"].as_u64().unwrap();
        if replies.len() >= 300 && recovered >= 3 {
            break;
        }
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = killer.join().unwrap();
    let expected: Vec<Result<String, String>> = (1..=replies.len()).map(|n| Ok(n.to_string())).collect();
    assert_eq!(replies, expected, "after {kills} connection kills");
    assert!(
        recovered >= 3,
        "only {recovered} lost replies were found applied in {} INCRs and {kills} kills",
        replies.len()
    );
    assert_eq!(
        client_in(ds.superserver_port, "PB").get("^Person(\"n\")").unwrap(),
        Some(replies.len().to_string().into_bytes())
    );
}

/// A data server whose client ports speak TLS only: an application server given the lab
/// CA reaches it over TLS (verifying the certificate names the host it dials); one
/// without the CA never gets through in plain text.
#[test]
fn an_application_server_reaches_a_tls_data_server_with_the_lab_ca() {
    use mirrorlab_tests::mirror::{LabCerts, Party};
    let temp = tempfile::tempdir().unwrap();
    let certs = LabCerts::new(temp.path().join("tls"));
    certs.ensure(&[Party::Member("DS")]).unwrap();
    let files = certs.files(Party::Member("DS"));
    let ds_dir = temp.path().join("ds");
    std::fs::create_dir_all(&ds_dir).unwrap();
    let merge = ds_dir.join("merge.yaml");
    std::fs::write(
        &merge,
        "actions:\n  create_database: [ { name: PB } ]\n  create_namespace: [ { name: PB, globals: PB } ]\n",
    )
    .unwrap();
    let tls = ["--client-tls-ca", &files.ca, "--client-tls-cert", &files.certificate, "--client-tls-key", &files.key];
    let ds = Engine::start_in(&ds_dir, &[&["--merge", merge.to_str().unwrap()][..], &tls[..]].concat());
    let address = format!("127.0.0.1:{}", ds.superserver_port);
    let app_dir = temp.path().join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    let app_merge = app_dir.join("merge.yaml");
    std::fs::write(
        &app_merge,
        format!(
            "actions:\n  create_ecp_server:\n    - {{ name: DS, address: \"{address}\", ca: \"{}\" }}\n  create_database:\n    - {{ name: PB, server: DS, path: PB }}\n  create_mapping:\n    - {{ namespace: USER, global: \"Person*\", database: PB }}\n",
            certs.ca_file().display()
        ),
    )
    .unwrap();
    let app = Engine::start_in(&app_dir, &["--merge", app_merge.to_str().unwrap()]);
    wait_until("the application server to reach its data server over TLS", Duration::from_secs(30), || {
        ecp_state(app.web_port) == "Normal"
    });
    let mut a = client_in(app.superserver_port, "USER");
    a.set("^Person(1)", "over TLS").unwrap();
    let config = mirrorlab_tests::engine::tls::ca_client(&certs.ca_file()).unwrap();
    let server = mirrorlab_tests::engine::tls::host_server_name("127.0.0.1").unwrap();
    let mut d = Client::connect_verified(&address, Duration::from_secs(5), config, server).unwrap();
    d.namespace("PB").unwrap();
    assert_eq!(d.get("^Person(1)").unwrap(), Some(b"over TLS".to_vec()));

    // Without the CA: plain text to a TLS port gets nowhere, and says why.
    let plain_dir = temp.path().join("plain");
    std::fs::create_dir_all(&plain_dir).unwrap();
    let plain_merge = plain_dir.join("merge.yaml");
    std::fs::write(
        &plain_merge,
        format!("actions:\n  create_ecp_server:\n    - {{ name: DS, address: \"{address}\" }}\n"),
    )
    .unwrap();
    let plain = Engine::start_in(&plain_dir, &["--merge", plain_merge.to_str().unwrap()]);
    let mut status = serde_json::Value::Null;
    wait_until("the plain application server to say why it cannot attach", Duration::from_secs(30), || {
        let (_, body) = http(plain.web_port, "GET", "/api/ecp", None);
        status = serde_json::from_str(&body).unwrap_or_default();
        status["servers"][0]["last_error"].as_str().is_some_and(|e| !e.is_empty())
    });
    assert_ne!(status["servers"][0]["state"], "Normal", "{status}");
}
