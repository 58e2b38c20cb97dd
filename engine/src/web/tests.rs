//! The management API end to end: a real instance on a temporary directory, the router on
//! a free port, and plain HTTP/1.0 requests over TCP.

use super::{serve_with, MAX_BODY_BYTES};
use crate::instance::{Instance, InstanceOptions};
use crate::vfs::real::RealVfs;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Server {
    addr: SocketAddr,
    instance: Arc<Instance>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.body)).to_string()
    }
}

impl Server {
    async fn start() -> Server {
        Server::start_with(super::listener::HEADER_READ_TIMEOUT).await
    }

    /// A server whose request heads must arrive within `header_timeout`.
    async fn start_with(header_timeout: std::time::Duration) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance::open(InstanceOptions {
            data_dir: dir.path().to_path_buf(),
            vfs: Arc::new(RealVfs::new()),
            background: true,
        })
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(listener, instance.clone(), true, header_timeout, None, async {
            let _ = stopped.await;
        }));
        Server { addr, instance, stop, task, _dir: dir }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        let instance = self.instance;
        tokio::task::spawn_blocking(move || instance.shutdown()).await.unwrap().unwrap();
    }

    async fn send(&self, method: &str, target: &str, body: Option<&str>) -> Reply {
        self.send_with(method, target, "Content-Type: application/json\r\n", body).await
    }

    /// A request with the given header lines (each ending in CRLF) instead of the JSON
    /// content type.
    async fn send_with(&self, method: &str, target: &str, headers: &str, body: Option<&str>) -> Reply {
        let (mut reader, mut writer) = TcpStream::connect(self.addr).await.unwrap().into_split();
        let body = body.unwrap_or("");
        let request = format!("{method} {target} HTTP/1.0\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
        // The server may answer (413) and close before reading a large body: write on the
        // side, keep the write half open until the answer is read, and keep what was read
        // before a reset.
        let write = tokio::spawn(async move {
            let _ = writer.write_all(request.as_bytes()).await;
            writer
        });
        let mut raw = Vec::new();
        let read = reader.read_to_end(&mut raw).await;
        drop(write.await.unwrap());
        assert!(!raw.is_empty(), "{method} {target}: no answer ({read:?})");
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no header end in {text:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let content_type = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        Reply { status, content_type, body: body.to_string() }
    }

    async fn get(&self, target: &str) -> Reply {
        self.send("GET", target, None).await
    }

    async fn post(&self, target: &str, body: Value) -> Reply {
        self.send("POST", target, Some(&body.to_string())).await
    }

    async fn put(&self, target: &str, body: Value) -> Reply {
        self.send("PUT", target, Some(&body.to_string())).await
    }

    async fn delete(&self, target: &str) -> Reply {
        self.send("DELETE", target, None).await
    }

    async fn set(&self, namespace: &str, reference: &str, value: &str) {
        let r = self.put(&format!("/api/globals/{namespace}"), json!({ "ref": reference, "value": value })).await;
        assert_eq!(r.status, 200, "SET {reference}: {}", r.body);
    }
}

/// Percent-encodes a query value.
fn q(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn health_instance_and_portal() {
    let s = Server::start().await;
    let r = s.get("/health").await;
    assert_eq!((r.status, r.json()), (200, json!({ "status": "ok" })));

    let r = s.get("/api/instance").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["name"], "MIRRORLAB");
    assert_eq!(v["frozen"], false);
    assert_eq!(v["settings"]["journal"]["durability"], "buffered");
    assert!(v["settings"]["journal"]["sync_interval_ms"].is_u64(), "{v}");

    let r = s.get("/").await;
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"), "{}", r.content_type);
    assert!(r.body.contains("<title>MIRRORLAB · Mirrorlab</title>"), "{}", r.body);
    assert!(!r.body.contains("{{NAME}}"));
    // No external assets: nothing is loaded from another address (the SVG namespace URI
    // the charts name is an identifier, not a request).
    for load in ["src=\"http", "href=\"http", "url(http", "fetch(\"http", "@import"] {
        assert!(!r.body.contains(load), "the portal loads an external asset ({load})");
    }
    assert_eq!(r.body.matches("http://").count(), r.body.matches("http://www.w3.org/2000/svg").count());

    let r = s.get("/api/nothing-here").await;
    assert_eq!((r.status, r.error_code()), (404, "NOTFOUND".into()));
    s.stop().await;
}

#[tokio::test]
async fn databases_namespaces_mappings_and_globals_through_a_mapping() {
    let s = Server::start().await;
    let r = s.post("/api/databases", json!({ "name": "company" })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["name"], "COMPANY");
    assert_eq!(r.json()["mounted"], true);
    let r = s.post("/api/databases", json!({ "name": "COMPANY" })).await;
    assert_eq!(r.status, 200, "an identical request is idempotent: {}", r.body);
    let r = s.post("/api/databases", json!({ "name": "COMPANY", "read_only": true })).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    let names: Vec<Value> =
        s.get("/api/databases").await.json().as_array().unwrap().iter().map(|d| d["name"].clone()).collect();
    assert_eq!(names, vec![json!("COMPANY"), json!("USER")]);
    assert_eq!(s.get("/api/databases/company").await.json()["name"], "COMPANY");

    let r = s.post("/api/namespaces", json!({ "name": "app", "globals": "USER" })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(s.post("/api/namespaces", json!({ "name": "APP", "globals": "USER" })).await.status, 200);
    for _ in 0..2 {
        let r = s.put("/api/namespaces/APP/mappings", json!({ "global": "Company", "database": "COMPANY" })).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json(), json!([{ "global": "Company", "database": "COMPANY" }]));
    }
    assert_eq!(
        s.get("/api/namespaces/app/mappings").await.json(),
        json!([{ "global": "Company", "database": "COMPANY" }])
    );
    assert_eq!(s.get("/api/namespaces/APP").await.json()["globals"], "USER");

    s.set("APP", "^Company(1,\"name\")", "Acme").await;
    let r = s.get(&format!("/api/globals/APP?ref={}", q("^Company(1,\"name\")"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "ref": "^Company(1,\"name\")", "value": "Acme", "literal": "\"Acme\"", "data": 1 }));
    assert_eq!(s.get(&format!("/api/globals/APP?ref={}", q("^Company(1)"))).await.json()["data"], 10);
    // The node lives in COMPANY, not in the namespace's default database USER.
    assert_eq!(s.post("/api/namespaces", json!({ "name": "DIRECT", "globals": "COMPANY" })).await.status, 201);
    assert_eq!(s.get(&format!("/api/globals/DIRECT?ref={}", q("^Company(1,\"name\")"))).await.json()["value"], "Acme");
    let r = s.get(&format!("/api/globals/USER?ref={}", q("^Company(1,\"name\")"))).await.json();
    assert_eq!((r["value"].clone(), r["data"].clone()), (Value::Null, json!(0)));

    // A database in use cannot be deleted; the namespace and mapping go first.
    assert_eq!(s.delete("/api/databases/COMPANY").await.error_code(), "ILLEGAL");
    let r = s.delete(&format!("/api/namespaces/APP/mappings?global={}", q("Company"))).await;
    assert_eq!((r.status, r.json()), (200, json!([])));
    assert_eq!(s.delete("/api/namespaces/DIRECT").await.status, 200);
    assert_eq!(s.get("/api/namespaces/DIRECT").await.error_code(), "NAMESPACE");
    let r = s.delete("/api/databases/COMPANY").await;
    assert_eq!((r.status, r.json()), (200, json!({ "deleted": "COMPANY" })));
    assert_eq!(s.get("/api/databases/COMPANY").await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn listing_is_in_collation_order_and_bounded() {
    let s = Server::start().await;
    for (r, v) in [
        ("^Company(\"a\")", "x"),
        ("^Company(10)", "ten"),
        ("^Company(2)", "two"),
        ("^Company(1,\"name\")", "Acme"),
        ("^Company", "top"),
        ("^Other(1)", "no"),
    ] {
        s.set("USER", r, v).await;
    }
    let r = s.get(&format!("/api/globals/USER/list?ref={}", q("^Company"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["lines"],
        json!([
            "^Company=\"top\"",
            "^Company(1,\"name\")=\"Acme\"",
            "^Company(2)=\"two\"",
            "^Company(10)=\"ten\"",
            "^Company(\"a\")=\"x\""
        ])
    );
    assert_eq!(v["nodes"][1], json!({ "ref": "^Company(1,\"name\")", "value": "Acme", "literal": "\"Acme\"" }));
    assert_eq!(v["truncated"], false);

    let v = s.get(&format!("/api/globals/USER/list?ref={}&max=2", q("^Company"))).await.json();
    assert_eq!(v["lines"], json!(["^Company=\"top\"", "^Company(1,\"name\")=\"Acme\""]));
    assert_eq!(v["truncated"], true);
    // The next page starts after the last node listed.
    assert_eq!(v["next"], "^Company(1,\"name\")");
    let after = q(v["next"].as_str().unwrap());
    let v = s.get(&format!("/api/globals/USER/list?ref={}&max=2&after={after}", q("^Company"))).await.json();
    assert_eq!(v["lines"], json!(["^Company(2)=\"two\"", "^Company(10)=\"ten\""]));
    let r = s.get(&format!("/api/globals/USER/list?ref={}&after={}", q("^Company"), q("^Other(1)"))).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);

    let v = s.get(&format!("/api/globals/USER/list?ref={}", q("^Company(1)"))).await.json();
    assert_eq!(v["lines"], json!(["^Company(1,\"name\")=\"Acme\""]), "a subtree stops at its end");

    for max in ["0", "10001"] {
        let r = s.get(&format!("/api/globals/USER/list?ref={}&max={max}", q("^Company"))).await;
        assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    }

    let r = s.delete(&format!("/api/globals/USER?ref={}", q("^Company(1)"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = s.get(&format!("/api/globals/USER/list?ref={}", q("^Company"))).await.json();
    assert_eq!(v["lines"].as_array().unwrap().len(), 4, "{v}");
    s.stop().await;
}

/// Regression: listing large values built every value whole, three times over (RSS grew
/// 25 times the data). A listed value is cut to 1 KiB, and a page ends by size too.
#[tokio::test]
async fn listing_large_values_is_bounded() {
    let s = Server::start().await;
    let big = "v".repeat(200_000);
    for i in 0..8 {
        s.set("USER", &format!("^Big({i})"), &big).await;
    }
    let r = s.get(&format!("/api/globals/USER/list?ref={}&max=10000", q("^Big"))).await;
    assert_eq!(r.status, 200);
    assert!(r.body.len() < 8 * 4 * 1024, "a listing of 8 x 200 kB values is {} bytes", r.body.len());
    let v = r.json();
    let node = &v["nodes"][0];
    assert_eq!((node["truncated"].as_bool(), node["bytes"].as_u64()), (Some(true), Some(200_000)), "{node}");
    assert_eq!(node["value"].as_str().unwrap().len(), super::globals::MAX_LISTED_VALUE_BYTES);
    assert!(v["lines"][0].as_str().unwrap().ends_with("... (200000 bytes)"));
    assert_eq!(v["nodes"].as_array().unwrap().len(), 8);
    s.stop().await;
}

/// A client that never finishes its request head (slowloris) is closed after the header
/// read timeout instead of holding one of the web port's connections for ever; one that
/// does is served.
#[tokio::test]
async fn a_request_head_that_never_ends_is_timed_out() {
    use std::time::{Duration, Instant};
    let timeout = Duration::from_millis(500);
    let s = Server::start_with(timeout).await;
    let addr = s.addr;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /api/instance HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was still open after 10 s");
    assert!(started.elapsed() >= timeout / 2, "closed too early: {:?}", started.elapsed());
    // A whole request is served, and keep-alive still works for a prompt next request.
    let mut ok = TcpStream::connect(addr).await.unwrap();
    ok.write_all(b"GET /api/instance HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = ok.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    drop(ok);
    s.stop().await;
}

/// A body that never arrives whole is answered 408 within the timeout, not waited for.
#[tokio::test]
async fn a_request_body_that_never_ends_is_timed_out() {
    use std::time::Duration;
    let timeout = Duration::from_millis(500);
    let s = Server::start_with(timeout).await;
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(
        b"PUT /api/globals/USER HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ref\":",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive whole"), "{answer}");
    s.stop().await;
}

#[tokio::test]
async fn errors_have_a_code_and_a_status() {
    let s = Server::start().await;
    let r = s.get(&format!("/api/globals/NOPE?ref={}", q("^a"))).await;
    assert_eq!((r.status, r.error_code()), (404, "NAMESPACE".into()));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("NOPE"), "{}", r.body);

    let r = s.get(&format!("/api/globals/USER?ref={}", q("^a(1,)"))).await;
    assert_eq!((r.status, r.error_code()), (400, "SYNTAX".into()));
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("column 6"), "{}", r.body);

    let r = s.put("/api/globals/USER", json!({ "ref": "^a(\"\")", "value": "v" })).await;
    assert_eq!((r.status, r.error_code()), (400, "SUBSCRIPT".into()));

    let r = s.get("/api/globals/USER").await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()));
    assert!(r.body.contains("ref"), "names the missing parameter: {}", r.body);

    let r = s.post("/api/databases", json!({ "name": "X", "readonly": true })).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()));
    assert!(r.body.contains("unknown field `readonly`"), "{}", r.body);

    let r = s.send("POST", "/api/databases", Some("{not json")).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()));

    let r = s.get("/api/databases/NOPE").await;
    assert_eq!((r.status, r.error_code()), (404, "DIRECTORY".into()));
    let r = s.post("/api/databases/NOPE/mount", json!({})).await;
    assert_eq!((r.status, r.error_code()), (404, "DIRECTORY".into()));

    let big = "x".repeat(MAX_BODY_BYTES + 1);
    let r = s.put("/api/globals/USER", json!({ "ref": "^big", "value": big })).await;
    assert_eq!(r.status, 413, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn dismount_and_mount_read_only() {
    let s = Server::start().await;
    s.set("USER", "^kept", "1").await;
    let r = s.post("/api/databases/USER/dismount", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["mounted"], false);
    let r = s.get(&format!("/api/globals/USER?ref={}", q("^kept"))).await;
    assert_eq!((r.status, r.error_code()), (404, "DIRECTORY".into()));

    // An empty body mounts read-write; read_only: true protects the database.
    let r = s.send("POST", "/api/databases/user/mount", None).await;
    assert_eq!((r.status, r.json()["read_only"].clone()), (200, json!(false)), "{}", r.body);
    let r = s.post("/api/databases/USER/mount", json!({ "read_only": true })).await;
    assert_eq!((r.status, r.json()["read_only"].clone()), (200, json!(true)));
    let r = s.put("/api/globals/USER", json!({ "ref": "^kept", "value": "2" })).await;
    assert_eq!((r.status, r.error_code()), (403, "PROTECT".into()));
    assert_eq!(s.get(&format!("/api/globals/USER?ref={}", q("^kept"))).await.json()["value"], "1");

    assert_eq!(s.post("/api/databases/USER/mount", json!({ "read_only": false })).await.status, 200);
    s.set("USER", "^kept", "2").await;
    let r = s.get("/api/databases/USER/integrity").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["nodes"], 1);
    s.stop().await;
}

#[tokio::test]
async fn freeze_and_thaw() {
    let s = Server::start().await;
    let r = s.post("/api/freeze", json!({ "timeout_s": 60 })).await;
    assert_eq!((r.status, r.json()), (200, json!({ "frozen": true, "timeout_s": 60 })), "{}", r.body);
    assert_eq!(s.get("/api/instance").await.json()["frozen"], true);
    let r = s.post("/api/freeze", json!({})).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "a second freeze is refused");
    // The journal keeps accepting writes while database files are frozen.
    s.set("USER", "^during", "freeze").await;

    let r = s.send("POST", "/api/thaw", None).await;
    assert_eq!((r.status, r.json()), (200, json!({ "frozen": false })));
    let r = s.send("POST", "/api/thaw", None).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()));
    s.stop().await;
}

/// Regression: a huge `timeout_s` overflowed the thaw deadline and panicked the handler.
#[tokio::test]
async fn a_freeze_longer_than_a_day_is_refused_clearly() {
    let s = Server::start().await;
    for timeout_s in [u64::MAX, 86_401] {
        let r = s.post("/api/freeze", json!({ "timeout_s": timeout_s })).await;
        assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
        assert!(r.body.contains("at most 86400 s"), "{}", r.body);
    }
    assert_eq!(s.get("/api/instance").await.json()["frozen"], false);
    s.stop().await;
}

/// A database directory from a request stays inside the data directory: no absolute
/// path, no `..`, no symbolic link out; nor does DELETE remove a file outside it.
#[tokio::test]
async fn database_directories_are_confined_to_the_data_directory() {
    let s = Server::start().await;
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), s.instance.data_dir().root().join("escape")).unwrap();
    let abs = outside.path().join("db").display().to_string();
    for dir in [abs.as_str(), "../elsewhere", "databases/../../elsewhere", "escape/db", "escape"] {
        let r = s.post("/api/databases", json!({ "name": "EVIL", "directory": dir })).await;
        assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{dir}: {}", r.body);
        assert!(r.body.contains("inside the data directory"), "{}", r.body);
    }
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "a file was created outside");
    let r = s.post("/api/databases", json!({ "name": "GOOD", "directory": "databases/sub/GOOD" })).await;
    assert_eq!(r.status, 201, "{}", r.body);
    // A database that engine.yaml places outside (edited by hand) is not deleted through the API.
    let victim = outside.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("mirrorlab.dat"), b"precious").unwrap();
    s.instance
        .change_config(|c| {
            c.databases.insert(
                "OUT".into(),
                crate::instance::config::DatabaseConfig {
                    directory: victim.display().to_string(),
                    read_only: false,
                    mounted: false,
                },
            );
            Ok(())
        })
        .unwrap();
    let r = s.delete("/api/databases/OUT").await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    assert_eq!(std::fs::read(victim.join("mirrorlab.dat")).unwrap(), b"precious");
    s.stop().await;
}

/// A browser can be made to send a form POST or to resolve an attacker's name to
/// 127.0.0.1: neither reaches a handler.
#[tokio::test]
async fn cross_site_and_rebinding_requests_are_refused() {
    let s = Server::start().await;
    let body = r#"{"name": "CSRF"}"#;
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let r = s.send_with("POST", "/api/databases", form, Some(body)).await;
    assert_eq!((r.status, r.error_code()), (415, "ILLEGAL".into()), "{}", r.body);
    let r = s.send_with("POST", "/api/databases", "Content-Type: text/plain\r\n", Some(body)).await;
    assert_eq!(r.status, 415, "{}", r.body);
    let cross = "Content-Type: application/json\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n";
    let r = s.send_with("POST", "/api/databases", cross, Some(body)).await;
    assert_eq!((r.status, r.error_code()), (403, "FORBIDDEN".into()), "{}", r.body);
    let rebound = "Host: evil.example:52773\r\n";
    let r = s.send_with("GET", "/api/instance", rebound, None).await;
    assert_eq!((r.status, r.error_code()), (403, "FORBIDDEN".into()), "{}", r.body);
    assert!(r.body.contains("network.allowed_hosts"), "{}", r.body);
    let r = s.get("/api/databases/CSRF").await;
    assert_eq!(r.status, 404, "the database was created: {}", r.body);
    // A script that is not a browser says so with the header.
    let r = s.send_with("POST", "/api/databases", "X-Mirrorlab-Request: 1\r\nHost: localhost\r\n", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn journal_lists_files_and_positions() {
    let s = Server::start().await;
    s.set("USER", "^j(1)", "a").await;
    s.set("USER", "^j(2)", "b").await;
    // File sizes and record counts describe what is on disk: wait for the sync.
    let ack = s.instance.sync();
    s.instance.wait_durable(ack.position).await.unwrap();
    let r = s.get("/api/journal").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["last_position"], ack.position, "{v}");
    assert_eq!(v["durable_position"], ack.position, "{v}");
    let files = v["files"].as_array().unwrap();
    let last = files.last().unwrap_or_else(|| panic!("no journal file in {v}"));
    assert_eq!(last["last_position"], ack.position, "{v}");
    assert!(last["records"].as_u64().unwrap() >= 2, "{v}");
    assert!(last["bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(last["path"].as_str().unwrap().contains("journal"), "{v}");
    s.stop().await;
}

#[tokio::test]
async fn mirror_configuration_is_validated_saved_and_idempotent() {
    let s = Server::start().await;
    assert_eq!(s.get("/api/mirror/config").await.json(), json!({ "mirror": null }));
    let member = |name: &str, kind: &str| json!({ "name": name, "type": kind, "superserver": format!("{name}:1972"), "mirror_address": format!("{name}:2188"), "agent": format!("{name}:2188") });
    let wanted = json!({
        "name": "demo", "this_member": "mirrora", "arbiter": "arbiter:2188",
        "members": [member("mirrora", "failover"), member("mirrorb", "failover"), member("dr", "dr")]
    });
    let r = s.put("/api/mirror/config", wanted.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["changed"], true);
    assert_eq!(r.json()["mirror"]["name"], "DEMO");
    assert_eq!(r.json()["mirror"]["qos_ms"], crate::mirror::config::DEFAULT_QOS_MS);
    assert_eq!(s.put("/api/mirror/config", wanted.clone()).await.json()["changed"], false);

    // Every problem at once, nothing changed.
    let bad = json!({ "name": "a_b", "this_member": "x", "members": [member("x y", "failover")] });
    let r = s.put("/api/mirror/config", bad).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    assert!(r.body.contains("mirror name") && r.body.contains("\\\"X Y\\\""), "{}", r.body);
    // Another identity is refused in place.
    let mut other = wanted.clone();
    other["name"] = json!("OTHER");
    let r = s.put("/api/mirror/config", other).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("cannot become member"), "{}", r.body);
    assert_eq!(s.get("/api/mirror/config").await.json()["mirror"]["name"], "DEMO");
    s.stop().await;
}

#[tokio::test]
async fn mirror_status_and_health_without_a_mirror_member() {
    let s = Server::start().await;
    let r = s.get("/api/mirror/status").await;
    assert_eq!((r.status, r.json()), (200, json!({ "status": null })));
    for path in ["/mirror_status", "/csp/user/mirror_status.cxw"] {
        let r = s.get(path).await;
        assert_eq!((r.status, r.body.as_str()), (503, "FAILED"), "{path}");
        assert!(r.content_type.starts_with("text/plain"), "{}", r.content_type);
    }
    // A well-formed action on no member: 409; a malformed one: 400 first.
    let r = s.post("/api/mirror/actions", json!({ "action": "planned-failover" })).await;
    assert_eq!((r.status, r.error_code()), (409, "NOTMIRRORED".into()), "{}", r.body);
    assert_eq!(r.json()["error"]["message"], "this instance is not a mirror member: create or join a mirror first");
    let r = s.post("/api/mirror/actions", json!({ "action": "fly" })).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    // The portal's Mirror Monitor panel reads the status endpoint.
    let r = s.get("/").await;
    assert!(r.body.contains("Mirror Monitor") && r.body.contains("\"/api/mirror/status\""), "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn mirror_status_actions_and_health_with_a_member() {
    use crate::mirror::status::MirrorAction;
    use crate::resp::memory::{sample_status, FakeMirror};
    let s = Server::start().await;
    let fake = FakeMirror::new(Some(sample_status()));
    s.instance.set_mirror_control(fake.clone());

    // The status is MirrorStatus's serde form, whole.
    let r = s.get("/api/mirror/status").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "status": serde_json::to_value(sample_status()).unwrap() }));
    let v = r.json();
    assert_eq!(v["status"]["type"], "failover");
    assert_eq!(v["status"]["members"][2]["type"], "dr");
    assert_eq!(v["status"]["members"][1]["database_latency"], json!({ "time_ms": 120, "bytes": 4096, "files": 1 }));

    // Health: SUCCESS only for a primary acknowledging writes.
    let r = s.get("/mirror_status").await;
    assert_eq!((r.status, r.body.as_str()), (200, "SUCCESS"));
    use crate::mirror::status::MemberStatus;
    for other in [
        MemberStatus::InTrouble,
        MemberStatus::Transition,
        MemberStatus::Backup,
        MemberStatus::Connected,
        MemberStatus::Down,
    ] {
        fake.set_member_status(other);
        let r = s.get("/mirror_status").await;
        assert_eq!((r.status, r.body.as_str()), (503, "FAILED"), "{other}");
    }
    // A member that is configured but not created or joined has no status yet.
    *fake.status.lock() = None;
    assert_eq!(s.get("/api/mirror/status").await.json(), json!({ "status": null }));
    assert_eq!(s.get("/mirror_status").await.status, 503);
    *fake.status.lock() = Some(sample_status());

    // Actions: the body is MirrorAction's serde form; database names are upper-cased.
    let r = s.post("/api/mirror/actions", json!({ "action": "add-database", "name": "company" })).await;
    assert_eq!((r.status, r.json()), (200, json!({ "message": "database COMPANY is mirrored" })), "{}", r.body);
    let r = s.post("/api/mirror/actions", json!({ "action": "planned-failover" })).await;
    assert_eq!((r.status, r.json()), (200, json!({ "message": "MIRRORB is taking over as primary" })));
    for body in [
        json!({ "action": "create" }),
        json!({ "action": "join" }),
        json!({ "action": "activate-database", "name": "Personal" }),
        json!({ "action": "remove-database", "name": "PERSONAL" }),
        json!({ "action": "set-no-failover" }),
        json!({ "action": "clear-no-failover" }),
        json!({ "action": "promote-dr" }),
    ] {
        let r = s.post("/api/mirror/actions", body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.body);
    }
    assert_eq!(
        *fake.actions.lock(),
        vec![
            MirrorAction::AddDatabase { name: "COMPANY".into() },
            MirrorAction::PlannedFailover,
            MirrorAction::Create,
            MirrorAction::Join,
            MirrorAction::ActivateDatabase { name: "PERSONAL".into() },
            MirrorAction::RemoveDatabase { name: "PERSONAL".into() },
            MirrorAction::SetNoFailover,
            MirrorAction::ClearNoFailover,
            MirrorAction::PromoteDr,
        ]
    );

    // The runtime's refusals keep their engine error names.
    let r = s.post("/api/mirror/actions", json!({ "action": "add-database", "name": "nope" })).await;
    assert_eq!((r.status, r.error_code()), (404, "DIRECTORY".into()), "{}", r.body);
    fake.set_member_status(crate::mirror::status::MemberStatus::Backup);
    let r = s.post("/api/mirror/actions", json!({ "action": "planned-failover" })).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    assert!(r.body.contains("starts on the primary"), "{}", r.body);

    // Bad bodies are refused before the runtime sees them.
    let before = fake.actions.lock().len();
    for (body, says) in [
        ("", "missing field `action`"),
        ("[]", "expected an object"),
        ("{\"action\": \"fly\"}", "unknown variant `fly`"),
        ("{\"action\": \"add-database\"}", "missing field `name`"),
        ("{\"action\": \"create\", \"name\": \"X\"}", "unknown field `name` for action `create`"),
        ("{\"action\": \"add-database\", \"name\": \"X\", \"force\": true}", "unknown field `force`"),
        ("{\"action\": ", "request body"),
    ] {
        let r = s.send("POST", "/api/mirror/actions", Some(body)).await;
        assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{body}: {}", r.body);
        assert!(r.body.contains(says), "{body}: {}", r.body);
    }
    assert_eq!(fake.actions.lock().len(), before);
    let r = s.get("/api/mirror/actions").await;
    assert_eq!(r.status, 405, "{}", r.body);
    s.stop().await;
}

#[tokio::test]
async fn durability_changes_while_running_is_saved_and_unknown_settings_are_refused() {
    let s = Server::start().await;
    assert_eq!(s.get("/api/instance").await.json()["settings"]["journal"]["durability"], "buffered");
    let r = s.send("PATCH", "/api/settings", Some(&json!({ "journal": { "durability": "always" } }).to_string())).await;
    assert_eq!((r.status, r.json()["durability"].clone()), (200, json!("always")), "{}", r.body);
    let instance = s.get("/api/instance").await.json();
    assert_eq!(instance["settings"]["journal"]["durability"], "always");
    assert_eq!(instance["durability"], "always", "the running instance applies it, not only the file");
    let saved = std::fs::read_to_string(s._dir.path().join("engine.yaml")).unwrap();
    assert!(saved.contains("durability: always"), "{saved}");

    // A setting that would only take effect at the next start is refused by name.
    let r = s.send("PATCH", "/api/settings", Some(&json!({ "journal": { "file_size_mb": 1 } }).to_string())).await;
    assert_eq!((r.status, r.error_code()), (400, "ILLEGAL".into()), "{}", r.body);
    assert!(r.body.contains("file_size_mb"), "{}", r.body);
    let r =
        s.send("PATCH", "/api/settings", Some(&json!({ "journal": { "durability": "sometimes" } }).to_string())).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(s.get("/api/instance").await.json()["settings"]["journal"]["durability"], "always");
    s.stop().await;
}
