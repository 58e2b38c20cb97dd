//! "Every input checked before it is believed" and "safe defaults", with the real
//! binaries: listeners on loopback by default, protected mode, epochs from outside checked,
//! a missing engine.yaml beside data refused. See docs/design/security.md.

use engine::client::{Client, ClientError, Reply};
use mirrorlab_tests::{Agent, Engine};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn command(c: &mut Client, args: &[&str]) -> Result<Reply, ClientError> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.command(&args)
}

/// An address of this machine that is not loopback, so a test can connect as a peer from
/// "another computer" would; `None` (the test prints why and returns) without one.
fn non_loopback_address() -> Option<IpAddr> {
    // Connecting a UDP socket sends nothing: it only asks the kernel for a route.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").or_else(|_| socket.connect("10.255.255.1:9")).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Everything a server says to a new connection before it closes it (after sending
/// `request`), or the connection error.
fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    let _ = s.write_all(request);
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !out.is_empty() => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Regression: one `ARBITER ASK` with an epoch near `u64::MAX` was recorded by the
/// arbiter, handed to the primary as a "newer epoch", saved, and wrapped the epoch
/// arithmetic of the next takeover; after a restart every write got PROTECT.
#[test]
fn the_arbiter_refuses_an_implausible_epoch_and_keeps_its_record() {
    let arbiter = Agent::arbiter(&[]);
    let mut c = arbiter.client();
    let ask = |c: &mut Client, epoch: &str, primary: &str| {
        command(c, &["ARBITER", "ASK", "M", "0", "0,1", "3000", "PING", epoch, primary, "-", "1"])
    };
    // The real primary of epoch 16.
    let Reply::Array(pong) = ask(&mut c, "16", "1").expect("a plausible ping") else { panic!("not a PONG") };
    assert_eq!(pong.len(), 7);
    let huge = (u64::MAX - 3).to_string();
    match ask(&mut c, &huge, "1") {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, "EPOCH", "{e:?}");
            assert!(e.message.contains("implausible epoch"), "{e:?}");
        }
        other => panic!("an epoch near u64::MAX was believed: {other:?}"),
    }
    // One past the bounded step above what the arbiter knows is refused too.
    let step = (16 + engine::mirror::failover::MAX_EPOCH_STEP + 1).to_string();
    assert!(matches!(ask(&mut c, &step, "1"), Err(ClientError::Server(_))));
    // The record still says epoch 16, primary 0: the mirror can go on.
    let Reply::Array(pong) = ask(&mut c, "16", "0").expect("a follower's ping") else { panic!("not a PONG") };
    assert_eq!(pong[2], Reply::Bulk(b"16".to_vec()), "{pong:?}");
    assert_eq!(pong[3], Reply::Integer(0), "{pong:?}");
}

/// Regression: a data directory that lost engine.yaml was silently initialised again (a
/// new journal identity; writes only in the journal lost).
#[test]
fn a_missing_engine_yaml_beside_a_journal_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut e = Engine::start_in(tmp.path(), &[]);
    e.client().set("^x", "1").unwrap();
    assert!(e.stop().status.success());
    let config = tmp.path().join("engine.yaml");
    let saved = std::fs::read(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    let mut child = Engine::spawn(tmp.path(), &[]);
    // It either exits or serves (publishes its state file): never wait for ever.
    let dir = engine::instance::datadir::DataDir::new(tmp.path());
    let mut status = None;
    mirrorlab_tests::wait_until("the engine to exit or serve", Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some() || dir.read_state().is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the engine started without engine.yaml, as a new instance");
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!status.success(), "exited 0 without engine.yaml:\n{err}");
    assert!(err.contains("engine.yaml is missing") && err.contains("Restore engine.yaml"), "{err}");
    assert!(!config.exists(), "a new engine.yaml was written");
    // Restored, the instance is the same one: the key is there.
    std::fs::write(&config, saved).unwrap();
    let e = Engine::start_in(tmp.path(), &[]);
    assert_eq!(e.client().get("^x").unwrap(), Some(b"1".to_vec()));
}

/// A bare `engine start` and agent are reachable from this machine only.
#[test]
fn a_bare_engine_and_agent_listen_on_loopback() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    let e = Engine::start();
    for port in [e.superserver_port, e.web_port] {
        let reached = TcpStream::connect_timeout(&SocketAddr::new(ip, port), IO_TIMEOUT);
        assert!(reached.is_err(), "port {port} answers on {ip}: the engine does not listen on loopback only");
    }
    // The agent's own default (no --interface at all).
    let mut bare = mirrorlab_tests::agent_cmd()
        .args(["--port", "0", "--log-level", "warn"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn agent");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(bare.stdout.take().unwrap()), &mut line).unwrap();
    let _ = bare.kill();
    let _ = bare.wait();
    assert!(line.starts_with("agent listening on 127.0.0.1:"), "{line:?}");
}

/// On every interface, protected mode still refuses peers that are not on loopback, and
/// says how to change that; configured off, they are served.
#[test]
fn protected_mode_refuses_other_hosts_until_configured_off() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let e = Engine::start_in(tmp.path(), &["--interface", "0.0.0.0"]);
    let said = exchange(SocketAddr::new(ip, e.superserver_port), b"PING\r\n").unwrap();
    assert!(said.starts_with("-DENIED") && said.contains("network.protected_mode: false"), "{said:?}");
    let said =
        exchange(SocketAddr::new(ip, e.web_port), b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
    assert!(said.starts_with("HTTP/1.1 403") && said.contains("protected mode"), "{said:?}");
    // Loopback is still served.
    let said = exchange(SocketAddr::from(([127, 0, 0, 1], e.superserver_port)), b"PING\r\nQUIT\r\n").unwrap();
    assert!(said.starts_with("+PONG"), "{said:?}");
    drop(e);

    let agent = Agent::spawn(None, &["--interface", "0.0.0.0"]);
    let said = exchange(SocketAddr::new(ip, agent.port), b"PING\r\n").unwrap();
    assert!(said.starts_with("-DENIED") && said.contains("--protected-mode false"), "{said:?}");
    drop(agent);

    // Off by configuration: served from anywhere.
    let tmp = tempfile::tempdir().unwrap();
    let e = Engine::start_in(tmp.path(), &["--interface", "0.0.0.0", "--protected-mode", "false"]);
    let said = exchange(SocketAddr::new(ip, e.superserver_port), b"PING\r\nQUIT\r\n").unwrap();
    assert!(said.starts_with("+PONG"), "{said:?}");
    let agent = Agent::spawn(None, &["--interface", "0.0.0.0", "--protected-mode", "false"]);
    let said = exchange(SocketAddr::new(ip, agent.port), b"PING\r\nQUIT\r\n").unwrap();
    assert!(said.starts_with("+PONG"), "{said:?}");
}

/// The mirror data channel listens on the configured interface, not on every one.
#[test]
fn the_mirror_data_channel_honours_the_interface() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    let lab = mirrorlab_tests::mirror::Lab::start(&[("A", "failover")], 3000);
    let port = lab.members[0].mirror_port;
    assert!(TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), IO_TIMEOUT).is_ok());
    let reached = TcpStream::connect_timeout(&SocketAddr::new(ip, port), IO_TIMEOUT);
    assert!(reached.is_err(), "the data channel answers on {ip}:{port} while the engine listens on 127.0.0.1");
}

/// Regression: 32 connections to the primary's data channel that never sent a JOIN held
/// every member slot, and a restarted backup could never join again.
#[test]
fn idle_data_channel_connections_do_not_lock_a_backup_out() {
    let mut lab = mirrorlab_tests::mirror::Lab::start(&[("A", "failover"), ("B", "failover")], 3000);
    lab.kill9(1);
    let primary = SocketAddr::from(([127, 0, 0, 1], lab.members[0].mirror_port));
    let idle: Vec<TcpStream> = (0..32).filter_map(|_| TcpStream::connect_timeout(&primary, IO_TIMEOUT).ok()).collect();
    assert!(!idle.is_empty());
    lab.start_engine(1);
    lab.wait_status(1, "Backup");
    drop(idle);
}

/// As Redis: an HTTP request on a RESP port (a browser made to POST there by a web page)
/// closes the connection without an answer, on the superserver and the agent alike.
#[test]
fn http_requests_on_resp_ports_are_closed_unanswered() {
    let e = Engine::start();
    let agent = Agent::arbiter(&[]);
    let request = b"POST /api/databases HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 2\r\n\r\n{}";
    for port in [e.superserver_port, agent.port] {
        let said = exchange(SocketAddr::from(([127, 0, 0, 1], port)), request).unwrap();
        assert_eq!(said, "", "port {port} answered an HTTP request");
    }
    // Both still serve RESP.
    assert_eq!(command(&mut e.client(), &["PING"]).unwrap(), Reply::Simple("PONG".into()));
    assert_eq!(command(&mut agent.client(), &["PING"]).unwrap(), Reply::Simple("PONG".into()));
}
