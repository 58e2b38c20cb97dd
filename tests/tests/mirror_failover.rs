//! Mirroring with real processes on loopback: an arbiter, two failover members (and a DR
//! async where a scenario needs one), each engine with its agent, driven through the
//! management API and the superserver.

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::mirror::Lab;
use mirrorlab_tests::wait_until;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const QOS_MS: u32 = 1000;

fn pair() -> Lab {
    let lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], QOS_MS);
    lab.add_mirrored_database("DATA");
    lab
}

/// Connects to whichever of `ports` accepts a write in namespace DATA.
fn writable_client(ports: &[u16]) -> Option<Client> {
    for &p in ports {
        if let Ok(mut c) = Client::connect(format!("127.0.0.1:{p}"), Duration::from_millis(500)) {
            let _ = c.set_timeout(Some(Duration::from_secs(5)));
            if c.namespace("DATA").is_ok() && c.command(&[b"DURABILITY", b"always"]).is_ok() {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn killing_the_primary_under_load_loses_no_acknowledged_commit_and_it_rejoins_as_backup() {
    let mut lab = pair();
    let ports = [lab.engine(0).superserver_port, lab.engine(1).superserver_port];
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut client = None;
                while !stop.load(Ordering::SeqCst) {
                    let Some(c) = client.as_mut() else {
                        client = writable_client(&ports);
                        continue;
                    };
                    let id = w * 1_000_000 + n;
                    match c.set(&format!("^w({id})"), id.to_string()) {
                        Ok(()) => {
                            acked.lock().unwrap().push(id);
                            n += 1;
                        }
                        Err(_) => {
                            client = None;
                            std::thread::sleep(Duration::from_millis(20)); // retry pacing, not a wait
                        }
                    }
                }
            })
        })
        .collect();
    wait_until("some commits", Duration::from_secs(30), || acked.lock().unwrap().len() > 200);
    lab.kill9(0);
    lab.wait_status(1, "Primary");
    let before = acked.lock().unwrap().len();
    wait_until("commits on the new primary", Duration::from_secs(30), || acked.lock().unwrap().len() > before + 200);
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let mut b = lab.client(1, "DATA");
    let acked = acked.lock().unwrap().clone();
    for id in &acked {
        assert_eq!(
            b.get(&format!("^w({id})")).unwrap().as_deref(),
            Some(id.to_string().as_bytes()),
            "acknowledged ^w({id}) lost"
        );
    }
    // The old primary restarts, rewinds what the backup never had, and follows.
    lab.start_engine(0);
    lab.wait_status(0, "Backup");
    let mut a = lab.client(0, "DATA");
    wait_until("the old primary to converge", Duration::from_secs(30), || {
        acked.iter().all(|id| a.get(&format!("^w({id})")).ok().flatten().is_some())
    });
    let err = a.set("^w(0)", "x").unwrap_err().to_string();
    assert!(err.starts_with("READONLY "), "writes on the backup are refused: {err}");
}

#[test]
fn a_planned_failover_hands_over_and_back_without_losing_a_write() {
    let lab = pair();
    let mut a = lab.client(0, "DATA");
    a.set("^p(1)", "one").unwrap();
    lab.act(0, r#"{"action":"planned-failover"}"#);
    lab.wait_status(1, "Primary");
    lab.wait_status(0, "Backup");
    let mut b = lab.client(1, "DATA");
    assert_eq!(b.get("^p(1)").unwrap().as_deref(), Some(&b"one"[..]), "{}", lab.describe());
    b.set("^p(2)", "two").unwrap();
    lab.act(1, r#"{"action":"planned-failover"}"#);
    lab.wait_status(0, "Primary");
    let mut a = lab.client(0, "DATA");
    assert_eq!(a.get("^p(2)").unwrap().as_deref(), Some(&b"two"[..]));
    let (code, _) = mirrorlab_tests::http(lab.web(0), "GET", "/mirror_status", None);
    assert_eq!(code, 200);
    let (code, _) = mirrorlab_tests::http(lab.web(1), "GET", "/mirror_status", None);
    assert_eq!(code, 503);
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

#[test]
fn a_hung_primary_is_fenced_and_never_accepts_writes_again() {
    let mut lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^h(1)", "before").unwrap();
    let pid = lab.engine(0).child.id();
    signal(pid, "-STOP");
    lab.wait_status(1, "Primary");
    signal(pid, "-CONT");
    // Fenced by its agent (killed) or, had it survived, demoted: either way no write of
    // the old primary is acknowledged any more.
    let refused = match a.set("^h(2)", "after") {
        Err(e) => e.to_string(),
        Ok(()) => panic!("the fenced primary acknowledged a write; {}", lab.describe()),
    };
    assert!(!refused.is_empty());
    let mut b = lab.client(1, "DATA");
    assert_eq!(b.get("^h(1)").unwrap().as_deref(), Some(&b"before"[..]));
    assert_eq!(b.get("^h(2)").unwrap(), None);
    // The old primary ends either fenced (its process gone) or demoted: a backup with the
    // unconfirmed write rewound, following the new primary.
    let engine = lab.members[0].engine.as_mut().expect("the old primary's process");
    wait_until("the old primary to be fenced or to follow as backup", Duration::from_secs(15), || {
        engine.child.try_wait().unwrap().is_some() || lab_status_word(engine.web_port) == "Backup"
    });
}

/// The status word of the member whose management API listens on `web_port`, or "" when it
/// does not answer.
fn lab_status_word(web_port: u16) -> String {
    let Ok((200, body)) = mirrorlab_tests::try_http(web_port, "GET", "/api/mirror/status", None) else {
        return String::new();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["status"]["status"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn losing_the_arbiter_changes_nothing() {
    let mut lab = pair();
    drop(lab.arbiter.take());
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    for i in 0..50 {
        a.set(&format!("^n({i})"), "v").unwrap();
    }
    wait_until("both members to lose the arbiter", Duration::from_secs(10), || {
        (0..2).all(|i| lab.status(i)["arbiter"].as_str().unwrap_or_default().contains("not connected"))
    });
    assert_eq!(lab.status_word(0), "Primary");
    assert_eq!(lab.status_word(1), "Backup");
    a.set("^n(50)", "v").unwrap();
    let mut b = lab.client(1, "DATA");
    wait_until("the backup to have every write", Duration::from_secs(10), || b.get("^n(50)").unwrap().is_some());
}

#[test]
fn cutting_only_the_link_between_the_failover_members_causes_no_failover() {
    let lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^c(0)", "v").unwrap();
    let epoch = lab.status(0)["epoch"].clone();
    lab.act(0, r#"{"action":"fault-drop","peers":["MIRRORB"]}"#);
    lab.act(1, r#"{"action":"fault-drop","peers":["MIRRORA"]}"#);
    // The primary holds commits while in trouble, then goes on alone once the arbiter
    // confirms the backup is no longer eligible; the backup is refused a takeover.
    a.set("^c(1)", "during the cut").unwrap();
    wait_until("the primary to go on alone", Duration::from_secs(10), || lab.status_word(0) == "Primary");
    assert_ne!(lab.status_word(1), "Primary", "{}", lab.describe());
    lab.act(0, r#"{"action":"fault-heal"}"#);
    lab.act(1, r#"{"action":"fault-heal"}"#);
    // Healed: the same primary, in the same epoch (no failover happened), and the backup
    // resynchronised with what was written during the cut.
    wait_until("MIRRORA primary and MIRRORB its backup again", Duration::from_secs(15), || {
        lab.status_word(0) == "Primary" && lab.status_word(1) == "Backup"
    });
    assert_eq!(lab.status(0)["epoch"], epoch, "no failover happened; {}", lab.describe());
    let mut b = lab.client(1, "DATA");
    wait_until("the backup to resync", Duration::from_secs(10), || b.get("^c(1)").unwrap().is_some());
    assert_eq!(b.get("^c(1)").unwrap().as_deref(), Some(&b"during the cut"[..]));
}

#[test]
fn an_existing_database_joins_by_copy_activation_and_catch_up() {
    let lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], QOS_MS);
    let (code, body) = mirrorlab_tests::http(lab.web(0), "POST", "/api/databases", Some(r#"{"name":"OLD"}"#));
    assert_eq!(code, 201, "{body}");
    let (code, body) =
        mirrorlab_tests::http(lab.web(0), "POST", "/api/namespaces", Some(r#"{"name":"OLD","globals":"OLD"}"#));
    assert_eq!(code, 201, "{body}");
    let mut a = lab.client(0, "OLD");
    for i in 0..300 {
        a.set(&format!("^old({i})"), format!("row {i}")).unwrap();
    }
    lab.add_mirrored_database("OLD");
    a.set("^old(\"after\")", "mirrored").unwrap();
    let mut b = lab.client(1, "OLD");
    wait_until("the copy to catch up", Duration::from_secs(10), || b.get("^old(\"after\")").unwrap().is_some());
    for i in [0, 150, 299] {
        assert_eq!(b.get(&format!("^old({i})")).unwrap(), Some(format!("row {i}").into_bytes()));
    }
    let st = lab.status(1);
    let old = st["databases"].as_array().unwrap().iter().find(|d| d["name"] == "OLD").cloned();
    assert!(old.is_some_and(|d| d["status"] == "Dejournaling"), "{st}");
}

#[test]
fn a_dr_member_is_promoted_after_both_failover_members_are_lost() {
    let mut lab = Lab::start(&[("MIRRORA", "failover"), ("MIRRORB", "failover"), ("DR", "dr")], QOS_MS);
    lab.add_mirrored_database("DATA");
    lab.wait_status(2, "Connected");
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^dr(1)", "kept").unwrap();
    let mut dr = lab.client(2, "DATA");
    wait_until("the DR member to have the write", Duration::from_secs(10), || dr.get("^dr(1)").unwrap().is_some());
    assert!(dr.set("^dr(2)", "x").unwrap_err().to_string().starts_with("READONLY "));
    lab.kill9(0);
    lab.kill9(1);
    lab.act(2, r#"{"action":"promote-dr"}"#);
    lab.wait_status(2, "Primary");
    let mut dr = lab.client(2, "DATA");
    dr.set("^dr(2)", "after promotion").unwrap();
    assert_eq!(dr.get("^dr(1)").unwrap().as_deref(), Some(&b"kept"[..]));
}

#[test]
fn mirroring_stopped_on_the_backup_resumes_where_it_left_off() {
    let lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^s(1)", "before").unwrap();
    // Not on the primary: that would be a failover in disguise.
    let (code, body) =
        mirrorlab_tests::http(lab.web(0), "POST", "/api/mirror/actions", Some(r#"{"action":"stop-mirror"}"#));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("is the primary: hand over first"), "{body}");

    lab.act(1, r#"{"action":"stop-mirror"}"#);
    assert_eq!(lab.status_word(1), "Stopped");
    // The primary goes on alone once the arbiter confirms the backup is gone.
    a.set("^s(2)", "while stopped").unwrap();
    let mut b = lab.client(1, "DATA");
    assert_eq!(b.get("^s(2)").unwrap(), None, "a stopped member receives nothing");
    assert!(b.set("^s(3)", "x").is_err(), "mirrored databases stay read-only on a stopped member");

    lab.act(1, r#"{"action":"start-mirror"}"#);
    lab.wait_status(1, "Backup");
    wait_until("the backup to catch up", Duration::from_secs(10), || b.get("^s(2)").unwrap().is_some());
    assert_eq!(b.get("^s(2)").unwrap().as_deref(), Some(&b"while stopped"[..]));
}

#[test]
fn a_new_empty_database_is_mirrored_on_every_member_without_a_copy() {
    let lab = pair();
    let create = |i: usize, name: &str| {
        let (code, body) =
            mirrorlab_tests::http(lab.web(i), "POST", "/api/databases", Some(&format!(r#"{{"name":"{name}"}}"#)));
        assert!(code == 201 || code == 200, "{body}");
        let ns = format!(r#"{{"name":"{name}","globals":"{name}"}}"#);
        let (code, body) = mirrorlab_tests::http(lab.web(i), "POST", "/api/namespaces", Some(&ns));
        assert!(code == 201 || code == 200, "{body}");
    };
    // EARLY exists on the backup before the primary mirrors it: it follows at once.
    create(0, "EARLY");
    create(1, "EARLY");
    lab.act(0, r#"{"action":"add-database","name":"EARLY"}"#);
    let mut a = lab.client(0, "EARLY");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^e(1)", "one").unwrap();
    let mut b = lab.client(1, "EARLY");
    wait_until("the backup to follow EARLY", Duration::from_secs(10), || b.get("^e(1)").unwrap().is_some());
    assert!(b.set("^e(2)", "x").is_err(), "a mirrored database is read-only on the backup");

    // LATE is created on the backup after the primary wrote to it: activating it catches
    // it up from the primary's marker.
    create(0, "LATE");
    lab.act(0, r#"{"action":"add-database","name":"LATE"}"#);
    let mut a = lab.client(0, "LATE");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^l(1)", "before the backup had it").unwrap();
    create(1, "LATE");
    lab.act(1, r#"{"action":"activate-database","name":"LATE"}"#);
    let mut b = lab.client(1, "LATE");
    assert_eq!(b.get("^l(1)").unwrap().as_deref(), Some(&b"before the backup had it"[..]));
    a.set("^l(2)", "after").unwrap();
    wait_until("the backup to follow LATE", Duration::from_secs(10), || b.get("^l(2)").unwrap().is_some());

    // A database with data of its own is never taken for the primary's new one.
    create(0, "OWN");
    create(1, "OWN");
    let (code, body) =
        mirrorlab_tests::http(lab.web(1), "PUT", "/api/globals/OWN", Some(r#"{"ref":"^o","value":"mine"}"#));
    assert!(code < 300, "{body}");
    lab.act(0, r#"{"action":"add-database","name":"OWN"}"#);
    let (code, body) = mirrorlab_tests::http(
        lab.web(1),
        "POST",
        "/api/mirror/actions",
        Some(r#"{"action":"activate-database","name":"OWN"}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("copy the primary's file"), "{body}");
}

#[test]
fn the_backup_demoted_to_dr_follows_as_an_async_and_is_promoted_back() {
    let mut lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^t(1)", "before").unwrap();
    let (code, body) =
        mirrorlab_tests::http(lab.web(0), "POST", "/api/mirror/actions", Some(r#"{"action":"demote-to-dr"}"#));
    assert_eq!(code, 400, "the primary is not demoted: {body}");

    lab.act(1, r#"{"action":"demote-to-dr"}"#);
    lab.wait_status(1, "Connected");
    wait_until("the primary to see MIRRORB as DR", Duration::from_secs(10), || {
        line(&lab, 0, "MIRRORB")["type"] == "dr"
    });
    assert_eq!(lab.status(1)["type"], "dr");
    // The primary goes on without a backup; the DR member still receives everything.
    a.set("^t(2)", "while DR").unwrap();
    let mut b = lab.client(1, "DATA");
    wait_until("the DR member to receive", Duration::from_secs(10), || b.get("^t(2)").unwrap().is_some());
    assert!(b.set("^t(3)", "x").is_err(), "mirrored databases are read-only on a DR member");
    // The type is the member's own from now on: a restart keeps it.
    drop(b);
    lab.kill9(1);
    lab.start_engine(1);
    lab.wait_status(1, "Connected");
    assert_eq!(lab.status(1)["type"], "dr");

    // Promoted with a live primary, it becomes the backup again.
    lab.act(1, r#"{"action":"promote-dr"}"#);
    lab.wait_status(1, "Backup");
    assert_eq!(lab.status_word(0), "Primary");
    wait_until("the primary to see MIRRORB as failover", Duration::from_secs(10), || {
        line(&lab, 0, "MIRRORB")["type"] == "failover"
    });
}

/// Member `name`'s line in member `i`'s Mirror Monitor.
fn line(lab: &Lab, i: usize, name: &str) -> serde_json::Value {
    let s = lab.status(i);
    s["members"].as_array().unwrap().iter().find(|m| m["name"] == name).cloned().unwrap_or_default()
}

#[test]
fn a_whole_mirror_restarted_elects_a_primary_without_forcing_anyone_down() {
    let mut lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^r(1)", "before the restart").unwrap();
    drop(a);
    // Stopping the primary first hands over to the backup; then the new primary stops.
    for i in 0..2 {
        let out = lab.members[i].engine.as_mut().unwrap().stop();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        lab.members[i].engine = None;
    }
    lab.start_engine(0);
    lab.start_engine(1);
    wait_until("one primary and one backup", Duration::from_secs(20), || {
        let words = [lab.status_word(0), lab.status_word(1)];
        words.contains(&"Primary".to_string()) && words.contains(&"Backup".to_string())
    });
    for i in 0..2 {
        let engine = lab.members[i].engine.as_mut().unwrap();
        assert!(engine.child.try_wait().unwrap().is_none(), "member {i} was forced down; {}", lab.describe());
    }
    let primary = if lab.status_word(0) == "Primary" { 0 } else { 1 };
    let mut p = lab.client(primary, "DATA");
    assert_eq!(p.get("^r(1)").unwrap().as_deref(), Some(&b"before the restart"[..]));
    p.command(&[b"DURABILITY", b"always"]).unwrap();
    p.set("^r(2)", "after").unwrap();
}

#[test]
fn a_commit_acknowledged_after_the_old_primary_rejoined_survives_the_next_failover() {
    let mut lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^j(1)", "first").unwrap();
    drop(a);
    lab.kill9(0);
    lab.wait_status(1, "Primary");
    lab.start_engine(0);
    lab.wait_status(0, "Backup");
    let mut b = lab.client(1, "DATA");
    b.command(&[b"DURABILITY", b"always"]).unwrap();
    b.set("^j(2)", "acknowledged by the new primary").unwrap();
    // Hang the new primary: the rejoined member takes over and must have the write.
    let pid = lab.engine(1).child.id();
    signal(pid, "-STOP");
    lab.wait_status(0, "Primary");
    let mut a = lab.client(0, "DATA");
    assert_eq!(a.get("^j(2)").unwrap().as_deref(), Some(&b"acknowledged by the new primary"[..]), "{}", lab.describe());
    signal(pid, "-CONT");
}

/// Regression: an old primary cut off under writes keeps records the new primary never
/// got; at its rejoin the new primary answers REWIND and it cuts them. It once followed as
/// Backup from then on but could never take over again: a planned failover to it left
/// every member Waiting, a lost primary got no failover.
#[test]
fn an_old_primary_rewound_at_its_rejoin_takes_over_again() {
    let lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    for i in 0..20 {
        a.set(&format!("^rw({i})"), "acknowledged").unwrap();
    }
    lab.act(0, r#"{"action":"fault-drop","peers":["MIRRORB","ARBITER"]}"#);
    lab.act(1, r#"{"action":"fault-drop","peers":["MIRRORA"]}"#);
    wait_until("MIRRORA to lose its backup", Duration::from_secs(10), || lab.status_word(0) == "In Trouble");
    // Written to the cut-off primary's journal, never confirmed: the tail to rewind.
    let _ = a.set_timeout(Some(Duration::from_millis(500)));
    assert!(a.set("^rw(\"cut\")", "never acknowledged").is_err(), "a cut-off primary confirms nothing");
    lab.wait_status(1, "Primary");
    lab.act(0, r#"{"action":"fault-heal"}"#);
    lab.act(1, r#"{"action":"fault-heal"}"#);
    lab.wait_status(0, "Backup");
    let log = std::fs::read_to_string(lab.members[0].dir.join("messages.log")).unwrap();
    assert!(log.contains("rewound the journal to position"), "MIRRORA rewound at its rejoin; {}", lab.describe());
    let mut b = lab.client(1, "DATA");
    b.command(&[b"DURABILITY", b"always"]).unwrap();
    b.set("^rw(\"new\")", "on the new primary").unwrap();
    lab.act(1, r#"{"action":"planned-failover"}"#);
    lab.wait_status(0, "Primary");
    lab.wait_status(1, "Backup");
    let mut a = lab.client(0, "DATA");
    assert_eq!(a.get("^rw(\"new\")").unwrap().as_deref(), Some(&b"on the new primary"[..]));
    assert_eq!(a.get("^rw(\"cut\")").unwrap(), None, "the rewound record is gone");
    assert_eq!(a.get("^rw(19)").unwrap().as_deref(), Some(&b"acknowledged"[..]));
}

/// A paused primary (its agent paused too, so nobody fences it) answers a health check
/// that was queued while it was stopped only after its acknowledgement lease is checked:
/// once the backup took over, a load balancer must never see two primaries.
#[test]
fn a_resumed_old_primary_never_answers_the_health_check_as_primary() {
    use std::io::{Read, Write};
    let lab = pair();
    let engine_pid = lab.engine(0).child.id();
    let agent_pid = lab.members[0].agent.as_ref().unwrap().child.id();
    signal(agent_pid, "-STOP");
    signal(engine_pid, "-STOP");
    // Queued in the stopped engine's listen backlog.
    let mut queued = std::net::TcpStream::connect(("127.0.0.1", lab.web(0))).unwrap();
    write!(queued, "GET /mirror_status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    lab.wait_status(1, "Primary");
    signal(agent_pid, "-CONT");
    signal(engine_pid, "-CONT");
    queued.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = String::new();
    let _ = queued.read_to_string(&mut answer);
    assert!(!answer.starts_with("HTTP/1.1 200"), "the resumed old primary answered\n{answer}");
    let (code, _) = mirrorlab_tests::http(lab.web(1), "GET", "/mirror_status", None);
    assert_eq!(code, 200, "the new primary is healthy");
}

/// Regression (issue 14): the only failover member left, its partner demoted to DR, takes
/// over again after a restart once the other member's agent says it is no primary (it
/// used to wait for ever for a failover partner it no longer had).
#[test]
fn a_lone_failover_member_takes_over_after_its_restart() {
    let mut lab = pair();
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    a.set("^l(1)", "before the restart").unwrap();
    drop(a);
    lab.act(1, r#"{"action":"demote-to-dr"}"#);
    lab.wait_status(1, "Connected");
    lab.kill9(0);
    lab.start_engine(0);
    lab.wait_status(0, "Primary");
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).unwrap();
    assert_eq!(a.get("^l(1)").unwrap().as_deref(), Some(&b"before the restart"[..]));
    a.set("^l(2)", "after").unwrap();
    assert_eq!(lab.status(1)["type"], "dr", "the DR member stays DR");
    let mut b = lab.client(1, "DATA");
    wait_until("the DR member to follow the new primary", Duration::from_secs(15), || {
        b.get("^l(2)").unwrap().is_some()
    });
}
