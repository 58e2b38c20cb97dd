//! Mutual TLS between the members of a real mirror (docs/design/security.md, "Member
//! authentication"): a lab CA and certificates as `mirrorlab up` makes them; the mirror
//! works over TLS end to end, and a peer without a lab certificate, with another CA's,
//! or with another member's, is refused at the data channel, the agents and the arbiter
//! while the mirror stays healthy.

use engine::client::{Client, ClientError, Reply};
use engine::mirror::shipping::wire::{self, Message};
use engine::tls::{TlsFiles, ARBITER_NAME, HANDSHAKE_TIMEOUT};
use mirrorlab_tests::mirror::{Lab, LabCerts, Party};
use mirrorlab_tests::wait_until;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const QOS_MS: u32 = 1000;
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn pair() -> Lab {
    let lab = Lab::start_tls(&[("MIRRORA", "failover"), ("MIRRORB", "failover")], QOS_MS);
    lab.add_mirrored_database("DATA");
    lab
}

/// Member 0 is the primary, member 1 the backup, and a durable write on the primary
/// reaches the backup.
fn assert_healthy(lab: &Lab, key: &str) {
    assert_eq!(lab.status_word(0), "Primary", "{}", lab.describe());
    assert_eq!(lab.status_word(1), "Backup", "{}", lab.describe());
    let mut a = lab.client(0, "DATA");
    a.command(&[b"DURABILITY", b"always"]).expect("durable writes");
    a.set(&format!("^health({key:?})"), key).expect("a write on the primary");
    let mut b = lab.client(1, "DATA");
    wait_until(&format!("the backup to receive ^health({key:?})"), IO_TIMEOUT, || {
        b.get(&format!("^health({key:?})")).unwrap().is_some()
    });
}

fn join_as(member: &str) -> Message {
    Message::Join {
        mirror: "LABMIRROR".into(),
        member: member.into(),
        member_type: "failover".into(),
        last_position: 0,
        last_epoch: 0,
        summary: Vec::new(),
    }
}

/// Whether `bytes` from a data channel start with a WELCOME (what a refused peer must
/// never get).
fn is_welcome(bytes: &[u8]) -> bool {
    bytes.len() >= 5 && matches!(wire::decode(bytes[4], &bytes[5..]), Ok(Message::Welcome { .. }))
}

/// Sends `request` over plain TCP and reads until the server closes the connection.
fn plain_exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("port {port}: the connection was not closed: {e}"),
    }
    out
}

/// Sends `request` over TLS with `config` (expecting the server to be `server`) and reads
/// until the connection ends; `Err` when the TLS layer fails (a refused certificate).
fn tls_exchange(port: u16, config: Arc<rustls::ClientConfig>, server: &str, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let name = engine::tls::server_name(server).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, &mut tcp);
    tls.write_all(request).map_err(|e| e.to_string())?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // A RESP reply or a data channel message is enough to judge.
                if resp_complete(&out) || (out.len() >= 4 && out.len() >= 4 + frame_len(&out)) {
                    return Ok(out);
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn frame_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize
}

fn resp_complete(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b'+' | b'-')) && bytes.ends_with(b"\r\n")
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// A client configuration that trusts the lab CA but presents `files`' certificate (one
/// the lab CA did not sign: `engine::tls::Tls::load` would refuse to load it).
fn presenting(lab_ca: &Path, files: &TlsFiles) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in engine::tls::load::certificates("CA certificate", lab_ca).unwrap() {
        roots.add(ca).unwrap();
    }
    let chain = engine::tls::load::certificates("certificate", Path::new(&files.certificate)).unwrap();
    let key = engine::tls::load::private_key(Path::new(&files.key)).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(engine::tls::load::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap(),
    )
}

fn log_of(lab: &Lab, i: usize) -> String {
    std::fs::read_to_string(lab.members[i].dir.join("messages.log")).unwrap_or_default()
}

#[test]
fn a_mirror_over_mutual_tls_replicates_and_fails_over_when_the_primary_is_killed() {
    let mut lab = pair();
    assert_healthy(&lab, "before");
    // Journal ranges from an agent over TLS, as a member fetches them at a takeover.
    let mut agent = Client::connect_tls(
        format!("127.0.0.1:{}", lab.members[0].agent.as_ref().unwrap().port),
        IO_TIMEOUT,
        &lab.tls(Party::Member("MIRRORB")),
        "MIRRORA",
    )
    .expect("member B reaches member A's agent");
    let Reply::Array(frames) = agent.command(&[b"JOURNAL", b"RANGE", b"1"]).expect("a member reads journal ranges")
    else {
        panic!("JOURNAL RANGE answers an array")
    };
    assert!(!frames.is_empty());

    lab.kill9(0);
    lab.wait_status(1, "Primary");
    let mut b = lab.client(1, "DATA");
    assert_eq!(b.get("^health(\"before\")").unwrap().as_deref(), Some(&b"before"[..]));
    b.set("^after(1)", "taken over").expect("the new primary takes writes");
    // The old primary comes back as the backup, over TLS again.
    lab.start_engine(0);
    lab.wait_status(0, "Backup");
    let mut a = lab.client(0, "DATA");
    wait_until("the old primary to catch up", IO_TIMEOUT, || a.get("^after(1)").unwrap().is_some());
}

#[test]
fn peers_without_a_lab_certificate_or_with_another_members_are_refused_and_the_mirror_stays_healthy() {
    let lab = pair();
    let certs = lab.certs.clone().unwrap();
    let mirror_port = lab.members[0].mirror_port;
    let agent_port = lab.members[0].agent.as_ref().unwrap().port;
    let arbiter_port = lab.arbiter.as_ref().unwrap().port;

    // Plain TCP: a JOIN, and a rogue acknowledgement, on the primary's data channel.
    for (what, message) in
        [("a JOIN", join_as("MIRRORB")), ("an acknowledgement", Message::Ack { durable: u64::MAX / 2, sent_at: 1 })]
    {
        let answer = plain_exchange(mirror_port, &wire::encode(&message));
        assert!(!is_welcome(&answer), "{what} in plain TCP was welcomed");
        wait_until(&format!("the primary to log the refusal of {what}"), IO_TIMEOUT, || {
            log_of(&lab, 0).contains("TLS handshake failed")
        });
        assert_healthy(&lab, &format!("plain {what}"));
    }

    // Plain TCP to the agent and the arbiter: no reply to FENCE, JOURNAL RANGE, ARBITER ASK.
    let ask = resp(&["ARBITER", "ASK", "LABMIRROR", "1", "0,1", "1000", "TAKEOVER", "99"]);
    for (port, request) in [
        (agent_port, resp(&["AGENT", "FENCE", "rogue"])),
        (agent_port, resp(&["JOURNAL", "RANGE", "1"])),
        (arbiter_port, ask.clone()),
    ] {
        let answer = plain_exchange(port, &request);
        assert!(!answer.starts_with(b"+") && !answer.starts_with(b"*"), "plain TCP got an answer: {answer:?}");
    }
    assert_healthy(&lab, "plain agent");

    // A certificate of another CA, naming member B: refused everywhere.
    let other = LabCerts::new(certs.dir.parent().unwrap().join("other-ca"));
    other.ensure(&[Party::Member("MIRRORB"), Party::Operator]).unwrap();
    let rogue = presenting(&certs.ca_file(), &other.files(Party::Member("MIRRORB")));
    let answer = tls_exchange(mirror_port, rogue.clone(), "MIRRORA", &wire::encode(&join_as("MIRRORB")));
    assert!(!answer.as_ref().is_ok_and(|a| is_welcome(a)), "another CA's certificate was welcomed: {answer:?}");
    for (port, server, request) in [
        (agent_port, "MIRRORA", resp(&["AGENT", "FENCE", "rogue"])),
        (agent_port, "MIRRORA", resp(&["JOURNAL", "RANGE", "1"])),
        (arbiter_port, ARBITER_NAME, ask.clone()),
    ] {
        let answer = tls_exchange(port, rogue.clone(), server, &request);
        assert!(
            !answer.as_ref().is_ok_and(|a| a.starts_with(b"+") || a.starts_with(b"*")),
            "another CA's certificate got an answer: {answer:?}"
        );
    }
    assert_healthy(&lab, "other CA");

    // Member B's own certificate, in a JOIN as member A: refused with the reason.
    let b = lab.tls(Party::Member("MIRRORB"));
    let answer = tls_exchange(mirror_port, b.client_config(), "MIRRORA", &wire::encode(&join_as("MIRRORA")))
        .expect("a lab certificate completes the handshake");
    match wire::decode(answer[4], &answer[5..frame_len(&answer) + 4]) {
        Ok(Message::Reject { reason }) => assert!(reason.contains("does not name member MIRRORA"), "{reason}"),
        other => panic!("a JOIN as MIRRORA with MIRRORB's certificate got {other:?}"),
    }
    wait_until("the primary to log the refused JOIN", IO_TIMEOUT, || {
        log_of(&lab, 0).contains("refused a JOIN as MIRRORA")
    });

    // The operator's certificate: status and fault switches, never fencing, journal
    // ranges or the arbiter's decisions.
    let operator = lab.tls(Party::Operator);
    let mut agent = lab.agent_client(Some(0));
    assert!(matches!(agent.command(&[b"AGENT", b"STATUS"]), Ok(Reply::Array(_))));
    assert!(matches!(agent.command(&[b"FAULT", b"LIST"]), Ok(Reply::Array(_))));
    for args in [&[&b"AGENT"[..], b"FENCE", b"operator"][..], &[b"JOURNAL", b"RANGE", b"1"]] {
        match agent.command(args) {
            Err(ClientError::Server(e)) => assert_eq!(e.code, "NOPERM", "{e}"),
            other => panic!("the operator's {args:?} got {other:?}"),
        }
    }
    let mut arbiter = Client::connect_tls(format!("127.0.0.1:{arbiter_port}"), IO_TIMEOUT, &operator, ARBITER_NAME)
        .expect("the operator reaches the arbiter");
    let ask: Vec<&str> = vec!["ARBITER", "ASK", "LABMIRROR", "1", "0,1", "1000", "TAKEOVER", "99"];
    let ask: Vec<&[u8]> = ask.iter().map(|a| a.as_bytes()).collect();
    match arbiter.command(&ask) {
        Err(ClientError::Server(e)) => assert_eq!(e.code, "NOPERM", "{e}"),
        other => panic!("the operator's ARBITER ASK got {other:?}"),
    }
    // The engine was never fenced, and the mirror is as it was.
    let Ok(Reply::Array(fields)) = agent.command(&[b"AGENT", b"STATUS"]) else { panic!("AGENT STATUS") };
    let running = fields.chunks(2).any(|kv| kv == [Reply::Bulk(b"state".to_vec()), Reply::Bulk(b"running".to_vec())]);
    assert!(running, "member A's engine is not running: {fields:?}");
    assert_healthy(&lab, "after");
}

#[test]
fn a_handshake_that_never_completes_or_garbage_closes_that_connection_only() {
    let lab = pair();
    let agent_port = lab.members[0].agent.as_ref().unwrap().port;
    for port in [lab.members[0].mirror_port, agent_port] {
        // Garbage: closed at once.
        let started = Instant::now();
        plain_exchange(port, &[0xff; 64]);
        assert!(started.elapsed() < HANDSHAKE_TIMEOUT, "garbage held port {port} for {:?}", started.elapsed());
        // The start of a TLS record and then silence: closed by the handshake timeout.
        let started = Instant::now();
        plain_exchange(port, &[0x16, 0x03, 0x01]);
        let held = started.elapsed();
        assert!(
            held >= HANDSHAKE_TIMEOUT - Duration::from_millis(500) && held < IO_TIMEOUT,
            "a stalled handshake on port {port} was closed after {held:?}"
        );
    }
    assert_healthy(&lab, "after stalled handshakes");
}
