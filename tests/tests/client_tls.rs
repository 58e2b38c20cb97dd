//! TLS on the superserver and the web port (`engine start --client-tls-*`), with the lab
//! certificates `mirrorlab up` makes: real `redis-cli --tls`, redis-py with `ssl=True`,
//! `curl --cacert` and the engine's own CLI verify the engine's certificate without
//! `--insecure`; a plain-text client, garbage, a silent connection and a foreign client
//! certificate each end only their own connection; CLIENT KILL and MONITOR work over TLS.

use installer::certs::{LabCerts, Party};
use mirrorlab_tests::engine::client::{Client, ClientError, Reply};
use mirrorlab_tests::{engine_cmd, tool_available, tool_works, wait_until, Engine};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// An engine whose client ports speak TLS only, with MIRRORA's lab certificate.
struct TlsEngine {
    engine: Engine,
    certs: LabCerts,
    _dir: tempfile::TempDir,
}

impl TlsEngine {
    fn start() -> TlsEngine {
        let dir = tempfile::tempdir().unwrap();
        let certs = LabCerts::new(dir.path().join("tls"));
        certs.ensure(&[Party::Member("MIRRORA"), Party::Operator]).unwrap();
        let files = certs.files(Party::Member("MIRRORA"));
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let flags =
            ["--client-tls-ca", &files.ca, "--client-tls-cert", &files.certificate, "--client-tls-key", &files.key];
        let engine = Engine::start_in(&data, &flags);
        TlsEngine { engine, certs, _dir: dir }
    }

    fn ca(&self) -> PathBuf {
        self.certs.ca_file()
    }

    /// A RESP client over TLS that believes the lab CA and presents no certificate.
    fn client(&self) -> Client {
        let config = mirrorlab_tests::engine::tls::ca_client(&self.ca()).unwrap();
        let server = mirrorlab_tests::engine::tls::host_server_name("127.0.0.1").unwrap();
        let mut c =
            Client::connect_verified(format!("127.0.0.1:{}", self.engine.superserver_port), TIMEOUT, config, server)
                .expect("a TLS client believing the lab CA connects");
        c.set_timeout(Some(TIMEOUT)).unwrap();
        c
    }

    fn redis_cli(&self, host: &str, args: &[&str]) -> std::process::Output {
        let port = self.engine.superserver_port.to_string();
        let ca = self.ca();
        Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(&ca)
            .args(["-h", host, "-p", &port])
            .args(args)
            .output()
            .expect("run redis-cli")
    }
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn redis_cli_over_tls_verifies_the_engine_by_address_and_by_name() {
    if !tool_works("redis-cli (apt-get install redis-tools)", Command::new("redis-cli").arg("--version")) {
        return;
    }
    let e = TlsEngine::start();
    for host in ["127.0.0.1", "localhost"] {
        let out = e.redis_cli(host, &["SET", "tls:key", host]);
        assert!(out.status.success() && text(&out).trim() == "OK", "{host}: {}", text(&out));
        let out = e.redis_cli(host, &["GET", "tls:key"]);
        assert_eq!(text(&out).trim(), host);
    }
    // Without TLS: the port says what it wants, and serves TLS clients on.
    let plain = Command::new("redis-cli")
        .args(["-p", &e.engine.superserver_port.to_string(), "PING"])
        .output()
        .expect("run redis-cli");
    assert!(text(&plain).contains("TLS only"), "{}", text(&plain));
    assert_eq!(text(&e.redis_cli("127.0.0.1", &["PING"])).trim(), "PONG");
}

#[test]
fn redis_py_with_ssl_runs_its_checks_over_tls() {
    if !tool_works("redis-py (pip install redis)", Command::new("python3").args(["-c", "import redis"])) {
        return;
    }
    let e = TlsEngine::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis_py_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(e.engine.superserver_port.to_string())
        .arg(e.ca())
        .output()
        .expect("run python3");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).trim_end().ends_with("ok"), "{}", text(&out));
}

#[test]
fn the_api_over_https_verifies_with_the_lab_ca_and_plain_http_is_told_to_use_https() {
    let e = TlsEngine::start();
    let port = e.engine.web_port;
    if tool_available("curl", "the_api_over_https_verifies_with_the_lab_ca") {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "--cacert"])
            .arg(e.ca())
            .arg(format!("https://127.0.0.1:{port}/health"))
            .output()
            .unwrap();
        assert!(out.status.success() && text(&out).contains("ok"), "{}", text(&out));
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", &format!("http://127.0.0.1:{port}/health")])
            .output()
            .unwrap();
        assert!(text(&out).contains("HTTPS only"), "{}", text(&out));
    }
    // The management API through the engine's own HTTPS client (it verifies the CA too).
    let (status, body) = https_get(&e, port, "/api/instance");
    assert_eq!(status, 200, "{body}");
    // Plain HTTP gets a plain 400 that says why, then the close.
    let (status, body) = mirrorlab_tests::http(port, "GET", "/health", None);
    assert_eq!(status, 400);
    assert!(body.contains("HTTPS only"), "{body}");
    assert_eq!(https_get(&e, port, "/health").0, 200, "the port serves TLS clients on");
}

/// GET over HTTPS through the CLI's client, believing the lab CA.
fn https_get(e: &TlsEngine, port: u16, path: &str) -> (u16, String) {
    let tls = mirrorlab_tests::engine::cli::transport::Tls::load(&e.ca()).unwrap();
    let r =
        mirrorlab_tests::engine::cli::http::request_over("127.0.0.1", port, "GET", path, None, "", TIMEOUT, Some(&tls))
            .expect("HTTPS request");
    (r.status, r.body)
}

#[test]
fn the_engine_cli_finds_the_tls_of_the_engine_on_its_data_directory() {
    let e = TlsEngine::start();
    let data = e.engine.data_dir.clone();
    // qlist's health probe speaks TLS: `ok`, not `hung`.
    let out = engine_cmd().arg("qlist").arg("--data-dir").arg(&data).args(["--wait", "30"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("^ok^"), "{}", text(&out));
    // freeze/thaw through the management API, session through the superserver.
    for verb in ["freeze", "thaw"] {
        let out = engine_cmd().arg(verb).arg("--data-dir").arg(&data).output().unwrap();
        assert!(out.status.success(), "{verb}: {}", text(&out));
    }
    let mut session = engine_cmd()
        .arg("session")
        .arg("--data-dir")
        .arg(&data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    session.stdin.take().unwrap().write_all(b"set ^tls(1)=\"over tls\"\nwrite ^tls(1),!\n").unwrap();
    let out = session.wait_with_output().unwrap();
    assert!(out.status.success() && text(&out).contains("over tls"), "{}", text(&out));
    // Another engine's address: --cacert names the CA.
    let out = engine_cmd()
        .args([
            "mirror",
            "status",
            "--json",
            "--host",
            "localhost",
            "--port",
            &e.engine.web_port.to_string(),
            "--cacert",
        ])
        .arg(e.ca())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn garbage_silence_plain_text_and_foreign_certificates_end_only_their_own_connection() {
    let e = TlsEngine::start();
    let addr = ("127.0.0.1", e.engine.superserver_port);
    // A connection that never says anything holds no one up.
    let _silent = std::net::TcpStream::connect(addr).unwrap();
    assert!(matches!(e.client().command(&[b"PING"]).unwrap(), Reply::Simple(s) if s == "PONG"));
    // Plain RESP: the refusal, then the close.
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(TIMEOUT)).unwrap();
    plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let mut answer = String::new();
    plain.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("-ERR this port speaks TLS only"), "{answer}");
    // A TLS handshake record followed by garbage: closed without an answer.
    let mut garbage = std::net::TcpStream::connect(addr).unwrap();
    garbage.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut bytes = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    bytes.extend((0u8..64).map(|i| i.wrapping_mul(37) ^ 0x5a));
    garbage.write_all(&bytes).unwrap();
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("PONG"));
    // A certificate of another CA is refused; the lab operator's is accepted.
    let other = tempfile::tempdir().unwrap();
    let foreign = LabCerts::new(other.path().join("tls"));
    foreign.ensure(&[Party::Operator]).unwrap();
    let refused = Client::connect_verified(
        format!("127.0.0.1:{}", e.engine.superserver_port),
        TIMEOUT,
        presenting(&e.ca(), &foreign, Party::Operator),
        mirrorlab_tests::engine::tls::host_server_name("127.0.0.1").unwrap(),
    )
    .and_then(|mut c| c.command(&[b"PING"]));
    assert!(refused.is_err(), "a client certificate of another CA must be refused");
    let mut operator = Client::connect_verified(
        format!("127.0.0.1:{}", e.engine.superserver_port),
        TIMEOUT,
        presenting(&e.ca(), &e.certs, Party::Operator),
        mirrorlab_tests::engine::tls::host_server_name("localhost").unwrap(),
    )
    .unwrap();
    operator.set_timeout(Some(TIMEOUT)).unwrap();
    assert!(operator.command(&[b"PING"]).is_ok());
    // Through it all the engine served on.
    let mut c = e.client();
    c.set("^after", "still serving").unwrap();
    assert_eq!(c.get("^after").unwrap().as_deref(), Some(&b"still serving"[..]));
    // A client that dials a name the certificate does not carry does not believe it.
    let wrong = Client::connect_verified(
        format!("127.0.0.1:{}", e.engine.superserver_port),
        TIMEOUT,
        mirrorlab_tests::engine::tls::ca_client(&e.ca()).unwrap(),
        mirrorlab_tests::engine::tls::host_server_name("mirrorb").unwrap(),
    );
    assert!(matches!(wrong, Err(ClientError::Tls { .. })), "{:?}", wrong.err());
}

/// A client configuration believing `ca` and presenting `party`'s certificate of `certs`.
fn presenting(ca: &Path, certs: &LabCerts, party: Party<'_>) -> Arc<rustls::ClientConfig> {
    use mirrorlab_tests::engine::tls::load;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(load::certificates("CA", ca).unwrap().remove(0)).unwrap();
    let (cert, key) = certs.paths(party);
    let config = rustls::ClientConfig::builder_with_provider(load::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(load::certificates("certificate", &cert).unwrap(), load::private_key(&key).unwrap())
        .unwrap();
    Arc::new(config)
}

#[test]
fn client_kill_and_monitor_work_over_tls() {
    let e = TlsEngine::start();
    let mut monitor = e.client();
    assert!(monitor.command(&[b"MONITOR"]).is_ok());
    let mut victim = e.client();
    let id = match victim.command(&[b"CLIENT", b"ID"]).unwrap() {
        Reply::Integer(id) => id,
        other => panic!("CLIENT ID: {other:?}"),
    };
    // MONITOR's feed arrives over TLS.
    let line = monitor.read_reply().unwrap();
    assert!(format!("{line:?}").contains("CLIENT"), "{line:?}");
    let mut admin = e.client();
    let killed = admin.command(&[b"CLIENT", b"KILL", b"ID", id.to_string().as_bytes()]).unwrap();
    assert!(matches!(killed, Reply::Integer(1)), "{killed:?}");
    // The killed connection is closed: its next command fails.
    wait_until("the killed TLS connection to close", TIMEOUT, || victim.command(&[b"PING"]).is_err());
    assert!(admin.command(&[b"PING"]).is_ok());
}
