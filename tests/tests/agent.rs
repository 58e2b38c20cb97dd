//! The agent with the real binaries: beside a running, stopped (hung) and fenced engine,
//! serving journal records, as a pure arbiter for two members, and the fault switch.

use engine::client::{Client, ClientError, Reply};
use engine::instance::datadir::DataDir;
use engine::journal::record::{decode, RecordBody};
use mirrorlab_tests::{engine, wait_until, Agent, Engine};
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn cmd(c: &mut Client, args: &[&str]) -> Result<Reply, ClientError> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.command(&args)
}

fn text(r: &Reply) -> String {
    match r {
        Reply::Simple(s) => s.clone(),
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Integer(i) => i.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A flat RESP2 map as key → text.
fn map(r: Reply) -> HashMap<String, String> {
    let Reply::Array(items) = r else { panic!("not a map: {r:?}") };
    items.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect()
}

fn status(agent: &Agent) -> HashMap<String, String> {
    map(cmd(&mut agent.client(), &["AGENT", "STATUS"]).expect("AGENT STATUS"))
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").arg(sig).arg(pid.to_string()).status().expect("run kill").success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// Decodes a JOURNAL RANGE reply into records, checking one frame per bulk string.
fn records(reply: Reply) -> Vec<engine::journal::Record> {
    let Reply::Array(items) = reply else { panic!("not an array: {reply:?}") };
    items
        .into_iter()
        .map(|item| {
            let Reply::Bulk(frame) = item else { panic!("not a bulk string: {item:?}") };
            let (record, used) = decode(&frame).expect("a valid record frame");
            assert_eq!(used, frame.len(), "one whole frame per bulk string");
            record
        })
        .collect()
}

#[test]
fn status_beside_a_running_engine_and_the_journal_it_wrote() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Engine::start_in(tmp.path(), &[]);
    let agent = Agent::beside(tmp.path(), &["--probe-timeout-ms", "1000"]);
    let s = status(&agent);
    assert_eq!(s["state"], "running", "{s:?}");
    assert_eq!(s["pid"], e.child.id().to_string());
    assert_eq!(s["superserver_port"], e.superserver_port.to_string());
    assert_eq!(s["web_port"], e.web_port.to_string());
    assert_eq!(s["data_dir"], std::path::absolute(tmp.path()).unwrap().display().to_string());
    assert_eq!(s["mirror_role"], "none");
    assert_eq!(s["epoch"], "0");
    let before: u64 = s["last_position"].parse().unwrap();
    assert_eq!(s["durable_position"], s["last_position"]);

    let mut c = e.client();
    for i in 0..25 {
        c.set(&format!("^Agent({i})"), format!("value {i}")).unwrap();
    }
    let mut now = 0;
    wait_until("the journal on disk to hold the writes", WAIT, || {
        now = status(&agent)["last_position"].parse().unwrap();
        now >= before + 25
    });

    // Everything after `before`, in chunks of 10, contiguous, and our values in order.
    let mut a = agent.client();
    let mut from = before + 1;
    let mut all = Vec::new();
    loop {
        let chunk = records(cmd(&mut a, &["JOURNAL", "RANGE", &from.to_string(), "10"]).unwrap());
        assert!(chunk.len() <= 10);
        let Some(last) = chunk.last() else { break };
        from = last.position + 1;
        all.extend(chunk);
    }
    let positions: Vec<u64> = all.iter().map(|r| r.position).collect();
    assert_eq!(positions, (before + 1..from).collect::<Vec<_>>(), "contiguous from the position asked for");
    assert!(from > now, "every record on disk was served");
    let values: Vec<String> = all
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Set { value, .. } => Some(String::from_utf8_lossy(value).into_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(values, (0..25).map(|i| format!("value {i}")).collect::<Vec<_>>());
    // The mirror state file, once the engine writes one, is reported.
    std::fs::write(tmp.path().join("mirror.state.json"), r#"{"mirror":"M","member":"A","role":"primary","epoch":3}"#)
        .unwrap();
    let s = status(&agent);
    assert_eq!((s["mirror_role"].as_str(), s["epoch"].as_str(), s["mirror"].as_str()), ("primary", "3", "M"));
}

#[test]
fn a_stopped_engine_is_hung_and_fencing_takes_it_down_for_a_clean_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = Engine::start_in(tmp.path(), &[]);
    let mut c = e.client();
    c.set("^Kept(1)", "before the fence").unwrap();
    c.sync().unwrap();
    let agent = Agent::beside(tmp.path(), &["--probe-timeout-ms", "300"]);
    assert_eq!(status(&agent)["state"], "running");
    let pid = e.child.id();

    signal(pid, "-STOP");
    let started = Instant::now();
    wait_until("STATUS to say hung", WAIT, || status(&agent)["state"] == "hung");
    assert!(started.elapsed() < Duration::from_secs(5), "hung seen within about one probe timeout");
    let s = status(&agent);
    assert_eq!(s["pid"], pid.to_string(), "{s:?}");

    let reply = cmd(&mut agent.client(), &["AGENT", "FENCE", "test: engine hung"]).unwrap();
    assert_eq!(reply, Reply::Simple(format!("FENCED {pid}")));
    wait_until("the engine process to be gone", WAIT, || matches!(e.child.try_wait(), Ok(Some(_))));
    assert_eq!(DataDir::new(tmp.path()).lock_holder(), None);
    let s = status(&agent);
    assert_eq!((s["state"].as_str(), s["pid"].as_str()), ("down", "0"), "{s:?}");
    assert_eq!(cmd(&mut agent.client(), &["AGENT", "FENCE"]).unwrap(), Reply::Simple("DOWN".into()));

    // The directory is intact: a new engine starts on it and has the data.
    let e2 = Engine::start_in(tmp.path(), &[]);
    assert_eq!(e2.client().get("^Kept(1)").unwrap().as_deref(), Some(&b"before the fence"[..]));
    wait_until("STATUS to say running again", WAIT, || status(&agent)["state"] == "running");
    assert_eq!(status(&agent)["pid"], e2.child.id().to_string());
}

#[test]
fn status_and_journal_work_while_the_engine_is_down() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = Engine::start_in(tmp.path(), &[]);
    e.client().set("^Down(1)", "x").unwrap();
    let out = e.stop();
    assert!(out.status.success());
    let agent = Agent::beside(tmp.path(), &[]);
    let s = status(&agent);
    assert_eq!(s["state"], "down");
    let last: u64 = s["last_position"].parse().unwrap();
    assert!(last >= 1, "{s:?}");
    let all = records(cmd(&mut agent.client(), &["JOURNAL", "RANGE", "0"]).unwrap());
    assert_eq!(all.last().map(|r| r.position), Some(last));
    assert_eq!(all.first().map(|r| r.position), Some(1));
    let err = cmd(&mut agent.client(), &["JOURNAL", "RANGE", "x"]).unwrap_err();
    assert_eq!(err.code(), Some("ERR"), "{err}");
}

fn hello(agent: &Agent, mirror: &str, member: &str) -> Client {
    let mut c = agent.client();
    assert_eq!(cmd(&mut c, &["ARBITER", "HELLO", mirror, member]).unwrap(), Reply::Simple("OK".into()));
    c
}

fn sees(c: &mut Client, mirror: &str, member: &str) -> bool {
    match cmd(c, &["ARBITER", "SEES", mirror, member]).unwrap() {
        Reply::Integer(1) => true,
        Reply::Integer(0) => false,
        other => panic!("SEES answered {other:?}"),
    }
}

#[test]
fn pure_arbiter_tells_each_member_whether_it_sees_the_other() {
    let agent = Agent::arbiter(&["--member-timeout-ms", "400"]);
    let mut a = hello(&agent, "MIR", "A");
    assert!(!sees(&mut a, "MIR", "A"));
    let mut b = hello(&agent, "MIR", "B");
    assert!(sees(&mut a, "MIR", "A"));
    assert!(sees(&mut b, "MIR", "B"));

    let mut intruder = agent.client();
    let err = cmd(&mut intruder, &["ARBITER", "HELLO", "MIR", "A"]).unwrap_err();
    assert_eq!(err.code(), Some("DUPLICATE"), "{err}");
    // Another mirror on the same arbiter is independent.
    let _other = hello(&agent, "OTHER", "A");

    // STATUS: mirror → member → { last_seen_ms, connected }.
    let Reply::Array(st) = cmd(&mut a, &["ARBITER", "STATUS"]).unwrap() else { panic!("STATUS is a map") };
    assert_eq!(st.iter().step_by(2).map(text).collect::<Vec<_>>(), ["MIR", "OTHER"]);
    let Reply::Array(members) = &st[1] else { panic!("members are a map") };
    assert_eq!(members.iter().step_by(2).map(text).collect::<Vec<_>>(), ["A", "B"]);
    let a_facts = map(members[1].clone());
    assert!(["0", "1"].contains(&a_facts["connected"].as_str()), "{a_facts:?}");
    a_facts["last_seen_ms"].parse::<u64>().expect("an age in milliseconds");

    // A closed connection is gone at once.
    drop(b);
    wait_until("A to stop seeing B after B disconnected", WAIT, || !sees(&mut a, "MIR", "A"));

    // A silent member expires while its connection stays open; A keeps pinging.
    let mut b = hello(&agent, "MIR", "B");
    assert!(sees(&mut a, "MIR", "A"));
    wait_until("B's heartbeat to expire", WAIT, || {
        assert_eq!(cmd(&mut a, &["ARBITER", "PING", "MIR", "A"]).unwrap(), Reply::Simple("PONG".into()));
        !sees(&mut a, "MIR", "A")
    });
    assert!(sees(&mut b, "MIR", "B"), "A kept pinging, so B still sees A");
    // B's next HELLO or PING (on its own connection) brings it back.
    assert_eq!(cmd(&mut b, &["ARBITER", "PING", "MIR", "B"]).unwrap(), Reply::Simple("PONG".into()));
    assert!(sees(&mut a, "MIR", "A"));

    let err = cmd(&mut a, &["AGENT", "STATUS"]).unwrap_err();
    assert_eq!(err.code(), Some("NODATADIR"), "{err}");
}

#[test]
fn fault_injection_is_refused_without_the_flag() {
    let agent = Agent::arbiter(&[]);
    let mut c = agent.client();
    for args in [&["FAULT", "DROP", "B"][..], &["FAULT", "HEAL"], &["FAULT", "LIST"]] {
        let err = cmd(&mut c, args).unwrap_err();
        assert_eq!(err.to_string(), "ERR fault injection is disabled (start the agent with --allow-fault-injection)");
    }
}

/// Whether the agent closed this connection (instead of answering).
fn closed(c: &mut Client) -> bool {
    c.set_timeout(Some(Duration::from_secs(5))).unwrap();
    matches!(cmd(c, &["PING"]), Err(ClientError::Io(_) | ClientError::Protocol(_)))
}

#[test]
fn fault_injection_drops_a_member_until_healed() {
    let agent = Agent::arbiter(&["--allow-fault-injection", "--member-timeout-ms", "5000"]);
    let mut a = hello(&agent, "MIR", "A");
    let mut b = hello(&agent, "MIR", "B");
    assert!(sees(&mut a, "MIR", "A"));

    let mut control = agent.client();
    assert_eq!(cmd(&mut control, &["FAULT", "DROP", "B"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(cmd(&mut control, &["FAULT", "LIST"]).unwrap(), Reply::Array(vec![Reply::Bulk(b"B".to_vec())]));
    // B's connection is closed and A no longer sees it, long before the member timeout.
    assert!(closed(&mut b));
    wait_until("A to stop seeing the dropped B", Duration::from_secs(3), || !sees(&mut a, "MIR", "A"));
    // B cannot come back under its name, by HELLO or by CLIENT SETNAME.
    let mut b2 = agent.client();
    b2.set_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(cmd(&mut b2, &["ARBITER", "HELLO", "MIR", "B"]).is_err());
    let mut b3 = agent.client();
    b3.set_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(cmd(&mut b3, &["CLIENT", "SETNAME", "B"]).is_err());
    assert!(!sees(&mut a, "MIR", "A"));

    assert_eq!(cmd(&mut control, &["FAULT", "HEAL"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(cmd(&mut control, &["FAULT", "LIST"]).unwrap(), Reply::Array(vec![]));
    let _b = hello(&agent, "MIR", "B");
    assert!(sees(&mut a, "MIR", "A"));

    // A source address can be dropped too: every new connection from it is refused.
    assert_eq!(cmd(&mut control, &["FAULT", "DROP", "127.0.0.1"]).unwrap(), Reply::Simple("OK".into()));
    assert!(closed(&mut agent.client()));
}

#[test]
fn sigterm_stops_the_agent_cleanly() {
    let mut agent = Agent::arbiter(&[]);
    let _member = hello(&agent, "MIR", "A");
    signal(agent.child.id(), "-TERM");
    let mut exit = None;
    wait_until("the agent to exit after SIGTERM", WAIT, || {
        exit = agent.child.try_wait().unwrap();
        exit.is_some()
    });
    assert!(exit.unwrap().success(), "{exit:?}");
}

#[test]
fn a_port_in_use_is_an_error_a_person_can_act_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = mirrorlab_tests::agent_cmd().args(["--interface", "127.0.0.1", "--port", &port]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
}
