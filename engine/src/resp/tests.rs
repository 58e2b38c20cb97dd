//! Server tests over real sockets: an in-process server on port 0 and the blocking client.
//!
//! The suites are generic over [`Backend`]: they run against the in-memory backend
//! (`memory.rs`) and, in the `instance_*` tests, against the real [`Instance`].

use super::backend::Backend;
use super::memory::MemoryBackend;
use super::server::{serve, ServerLimits};
use crate::client::{Client, ClientError, Reply};
use crate::instance::{Direction, Durability, Instance};
use crate::mirror::status::MemberStatus;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

struct TestServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Runtime,
}

fn start<B: Backend>(backend: Arc<B>, limits: ServerLimits) -> TestServer {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = rt.spawn(serve(listener, backend, limits, async {
        let _ = rx.await;
    }));
    TestServer { addr, stop: Some(tx), done: Some(done), rt }
}

impl TestServer {
    fn client(&self) -> Client {
        let mut c = Client::connect(self.addr, TIMEOUT).unwrap();
        c.set_timeout(Some(TIMEOUT)).unwrap();
        c
    }

    fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    }

    /// Stops the server and waits until every connection is closed.
    fn shutdown(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let done = self.done.take().unwrap();
        self.rt.block_on(async { tokio::time::timeout(TIMEOUT, done).await }).expect("server drains").unwrap();
    }
}

/// Reads until the peer closes; returns everything it sent.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("the server closes the connection");
    String::from_utf8_lossy(&all).into_owned()
}

/// Reads until the input ends with `suffix`.
fn read_until_suffix(s: &mut TcpStream, suffix: &str) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while !all.ends_with(suffix.as_bytes()) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early after {:?}", String::from_utf8_lossy(&all));
        all.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&all).into_owned()
}

fn code(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(ClientError::Server(e)) => e.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn memory() -> Arc<MemoryBackend> {
    Arc::new(MemoryBackend::new(Durability::Buffered))
}

// ---- suites shared by the in-memory backend and the instance ----

fn suite_globals(server: &TestServer) {
    let mut c = server.client();
    c.kill(&["^t"]).unwrap();
    c.set("^t(1,\"name\")", "Acme").unwrap();
    c.set("t:2", "two").unwrap();
    c.set("^t(10)", "ten").unwrap();
    c.set("^t", "root").unwrap();
    assert_eq!(c.get("^t(1,\"name\")").unwrap(), Some(b"Acme".to_vec()));
    assert_eq!(c.get("t:1:name").unwrap(), Some(b"Acme".to_vec()));
    assert_eq!(c.get("^t(2)").unwrap(), Some(b"two".to_vec()));
    assert_eq!(c.get("^t(3)").unwrap(), None);
    assert_eq!(c.command(&[b"GET", b"^t(3)", b"dflt"]).unwrap(), Reply::Bulk(b"dflt".to_vec()));
    assert_eq!(c.data("^t").unwrap(), 11);
    assert_eq!(c.data("^t(1)").unwrap(), 10);
    assert_eq!(c.data("^t(2)").unwrap(), 1);
    assert_eq!(c.data("^t(3)").unwrap(), 0);
    // Numbers collate numerically, before strings.
    assert_eq!(c.order("^t(\"\")", Direction::Forward).unwrap(), Some(b"1".to_vec()));
    assert_eq!(c.order("^t(2)", Direction::Forward).unwrap(), Some(b"10".to_vec()));
    assert_eq!(c.order("^t(10)", Direction::Forward).unwrap(), None);
    assert_eq!(c.order("^t(\"\")", Direction::Backward).unwrap(), Some(b"10".to_vec()));
    assert_eq!(c.order("^t(1,\"\")", Direction::Forward).unwrap(), Some(b"name".to_vec()));
    assert_eq!(c.query("^t", Direction::Forward).unwrap(), Some("^t(1,\"name\")".into()));
    assert_eq!(c.query("^t(1,\"name\")", Direction::Forward).unwrap(), Some("^t(2)".into()));
    assert_eq!(c.query("^t(10)", Direction::Forward).unwrap(), None);
    assert_eq!(c.query("^t(2)", Direction::Backward).unwrap(), Some("^t(1,\"name\")".into()));
    assert_eq!(c.incr("^t(\"n\")", "1").unwrap(), "1");
    assert_eq!(c.command(&[b"INCR", b"^t(\"n\")"]).unwrap(), Reply::Integer(2));
    assert_eq!(c.command(&[b"INCRBY", b"^t(\"n\")", b"0.5"]).unwrap(), Reply::Bulk(b"2.5".to_vec()));
    assert_eq!(c.get("^t(\"n\")").unwrap(), Some(b"2.5".to_vec()));
    assert!(c.zkill("^t").unwrap());
    assert!(!c.zkill("^t").unwrap());
    assert_eq!(c.data("^t").unwrap(), 10);
    assert_eq!(c.kill(&["^t(1)", "^t(99)", "^t(2)"]).unwrap(), 2);
    assert_eq!(c.command(&[b"DEL", b"^t"]).unwrap(), Reply::Integer(1));
    assert_eq!(c.data("^t").unwrap(), 0);
    // Engine errors carry their name; the connection stays usable.
    assert_eq!(code(c.get("^t(1,)")), "SYNTAX");
    assert_eq!(code(c.set("^t(\"\")", "x")), "SUBSCRIPT");
    assert_eq!(code(c.namespace("NOPE")), "NAMESPACE");
    assert_eq!(code(c.command(&[b"FLY"])), "ERR");
    c.ping().unwrap();
}

fn suite_session(server: &TestServer) {
    let mut c = server.client();
    assert_eq!(c.current_namespace().unwrap(), "USER");
    c.namespace("user").unwrap();
    assert_eq!(c.current_namespace().unwrap(), "USER", "namespace names are case-insensitive");
    c.sync().unwrap();
    assert_eq!(c.command(&[b"DURABILITY", b"always"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(c.command(&[b"DURABILITY"]).unwrap(), Reply::Bulk(b"always".to_vec()));
    c.set("^s", "1").unwrap();
    assert_eq!(c.command(&[b"DURABILITY", b"default"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(c.command(&[b"CLIENT", b"SETNAME", b"tester"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(c.command(&[b"CLIENT", b"GETNAME"]).unwrap(), Reply::Bulk(b"tester".to_vec()));
    let Reply::Integer(id) = c.command(&[b"CLIENT", b"ID"]).unwrap() else { panic!("CLIENT ID") };
    let Reply::Bulk(info) = c.command(&[b"CLIENT", b"INFO"]).unwrap() else { panic!("CLIENT INFO") };
    let info = String::from_utf8(info).unwrap();
    assert!(info.starts_with(&format!("id={id} ")) && info.contains(" name=tester "), "{info}");
    assert_eq!(c.command(&[b"ECHO", b"hi"]).unwrap(), Reply::Bulk(b"hi".to_vec()));
    assert_eq!(c.command(&[b"PING", b"hi"]).unwrap(), Reply::Bulk(b"hi".to_vec()));
    assert_eq!(c.command(&[b"SELECT", b"0"]).unwrap(), Reply::Simple("OK".into()));
    assert!(c.command(&[b"SELECT", b"1"]).unwrap_err().to_string().contains("NAMESPACE"));
    let e = c.command(&[b"AUTH", b"secret"]).unwrap_err().to_string();
    assert!(e.starts_with("ERR AUTH <password> called without any password configured"), "{e}");
    assert_eq!(c.command(&[b"AUTH", b"default", b"x"]).unwrap(), Reply::Simple("OK".into()));
    assert_eq!(code(c.command(&[b"AUTH", b"bob", b"x"])), "WRONGPASS");
    c.kill(&["^s"]).unwrap();
}

fn suite_tools(server: &TestServer) {
    let mut c = server.client();
    // What redis-benchmark and redis-cli ask on start.
    let save = c.command(&[b"CONFIG", b"GET", b"save"]).unwrap();
    assert_eq!(save, Reply::Array(vec![Reply::Bulk(b"save".to_vec()), Reply::Bulk(vec![])]));
    let aof = c.command(&[b"CONFIG", b"GET", b"appendonly"]).unwrap();
    assert_eq!(aof, Reply::Array(vec![Reply::Bulk(b"appendonly".to_vec()), Reply::Bulk(b"yes".to_vec())]));
    assert_eq!(c.command(&[b"CONFIG", b"GET", b"no-such"]).unwrap(), Reply::Array(vec![]));
    assert_eq!(c.command(&[b"COMMAND", b"DOCS"]).unwrap(), Reply::Array(vec![]));
    let Reply::Integer(count) = c.command(&[b"COMMAND", b"COUNT"]).unwrap() else { panic!("COMMAND COUNT") };
    let Reply::Array(all) = c.command(&[b"COMMAND"]).unwrap() else { panic!("COMMAND") };
    assert_eq!(all.len() as i64, count);
    let Reply::Array(info) = c.command(&[b"COMMAND", b"INFO", b"get", b"nope"]).unwrap() else { panic!() };
    assert_eq!(info[1], Reply::Nil);
    let Reply::Array(get) = &info[0] else { panic!("COMMAND INFO get") };
    assert_eq!(&get[..2], &[Reply::Bulk(b"get".to_vec()), Reply::Integer(-2)]);
    let Reply::Bulk(text) = c.command(&[b"INFO"]).unwrap() else { panic!("INFO") };
    let text = String::from_utf8(text).unwrap();
    for needle in ["# Server\r\n", "redis_version:", "connected_clients:", "# Persistence\r\n", "role:master"] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let Reply::Bulk(text) = c.command(&[b"INFO", b"clients"]).unwrap() else { panic!("INFO clients") };
    assert!(String::from_utf8(text).unwrap().starts_with("# Clients\r\nconnected_clients:"));
}

/// Pipelined requests execute in order and answer in order, across batch boundaries.
fn suite_pipeline(server: &TestServer) {
    let mut c = server.client();
    let keys: Vec<String> = (0..3000).map(|i| format!("^p({i})")).collect();
    let sets: Vec<[&[u8]; 3]> = keys.iter().map(|k| [b"SET".as_slice(), k.as_bytes(), k.as_bytes()]).collect();
    let set_refs: Vec<&[&[u8]]> = sets.iter().map(|s| s.as_slice()).collect();
    let replies = c.pipeline(&set_refs).unwrap();
    assert!(replies.iter().all(|r| *r == Reply::Simple("OK".into())));
    let gets: Vec<[&[u8]; 2]> = keys.iter().map(|k| [b"GET".as_slice(), k.as_bytes()]).collect();
    let get_refs: Vec<&[&[u8]]> = gets.iter().map(|g| g.as_slice()).collect();
    let replies = c.pipeline(&get_refs).unwrap();
    for (k, r) in keys.iter().zip(replies) {
        assert_eq!(r, Reply::Bulk(k.as_bytes().to_vec()));
    }
    assert_eq!(c.kill(&["^p"]).unwrap(), 1);
}

fn suite_values(server: &TestServer) {
    let mut c = server.client();
    let max = vec![b'v'; crate::globals::limits::MAX_VALUE_BYTES];
    c.set("^big", &max).unwrap();
    assert_eq!(c.get("^big").unwrap(), Some(max.clone()));
    let too_big = vec![b'v'; crate::globals::limits::MAX_VALUE_BYTES + 1];
    assert_eq!(code(c.set("^big", &too_big)), "MAXSTRING");
    let binary: Vec<u8> = (0..=255).collect();
    c.set("^big", &binary).unwrap();
    assert_eq!(c.get("^big").unwrap(), Some(binary));
    c.kill(&["^big"]).unwrap();
}

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn cmd(c: &mut Client, args: &[&str]) -> Reply {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.command(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn cmd_err(c: &mut Client, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    match c.command(&args) {
        Err(ClientError::Server(e)) => e.to_string(),
        other => panic!("{args:?}: expected an error, got {other:?}"),
    }
}

fn names(r: Reply) -> Vec<String> {
    let Reply::Array(items) = r else { panic!("an array: {r:?}") };
    items
        .into_iter()
        .map(|i| match i {
            Reply::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("a name: {other:?}"),
        })
        .collect()
}

/// SCAN from 0 to the end with COUNT `count`; every name of every step, in order.
fn scan_all(c: &mut Client, count: usize, pattern: Option<&str>) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut all = Vec::new();
    let count = count.to_string();
    loop {
        let mut args = vec!["SCAN", cursor.as_str(), "COUNT", count.as_str()];
        if let Some(p) = pattern {
            args.extend(["MATCH", p]);
        }
        let Reply::Array(mut step) = cmd(c, &args) else { panic!("SCAN") };
        let found = names(step.pop().unwrap());
        let Reply::Bulk(next) = step.pop().unwrap() else { panic!("SCAN cursor") };
        all.extend(found);
        cursor = String::from_utf8(next).unwrap();
        if cursor == "0" {
            return all;
        }
    }
}

/// The keyspace and string commands Redis tools and clients call.
fn suite_keyspace(server: &TestServer) {
    let mut c = server.client();
    assert_eq!(cmd(&mut c, &["FLUSHDB"]), ok());
    assert_eq!(cmd(&mut c, &["DBSIZE"]), Reply::Integer(0));
    assert_eq!(scan_all(&mut c, 10, None), Vec::<String>::new());
    for (k, v) in [
        ("user:1000:name", "Ada"),
        ("user:1000:email", "ada@example.com"),
        ("user:2:name", "Bob"),
        ("^a(\"x:y\")", "colon"),
        ("^a(\"007\")", "string 007"),
        ("^a(12)", "number twelve"),
        ("counter", "5"),
    ] {
        c.set(k, v).unwrap();
    }
    // Collation order: global by global, numbers before strings, numerically.
    let expected = ["a:007", "^a(\"x:y\")", "a:12", "counter", "user:2:name", "user:1000:email", "user:1000:name"];
    let all = scan_all(&mut c, 2, None);
    assert_eq!(all.len(), 7, "{all:?}");
    assert_eq!(sorted(all.clone()), sorted(expected.iter().map(|s| s.to_string()).collect()));
    // Every name SCAN returns works in GET.
    for name in &all {
        assert!(c.get(name).unwrap().is_some(), "{name} does not round-trip");
    }
    assert_eq!(all[0], "a:12");
    assert_eq!(&all[1..3], ["a:007", "^a(\"x:y\")"]);
    assert_eq!(&all[4..], ["user:2:name", "user:1000:email", "user:1000:name"]);
    assert_eq!(scan_all(&mut c, 1, Some("user:*:name")), ["user:2:name", "user:1000:name"]);
    assert_eq!(scan_all(&mut c, 1000, Some("nothing*")), Vec::<String>::new());
    assert_eq!(names(cmd(&mut c, &["KEYS", "user:1000:*"])), ["user:1000:email", "user:1000:name"]);
    assert_eq!(names(cmd(&mut c, &["KEYS", "*"])).len(), 7);
    assert_eq!(cmd(&mut c, &["DBSIZE"]), Reply::Integer(7));
    assert!(cmd_err(&mut c, &["SCAN", "12345"]).starts_with("ERR invalid cursor 12345"));
    let Reply::Array(step) = cmd(&mut c, &["SCAN", "0", "TYPE", "hash"]) else { panic!() };
    assert_eq!(step[1], Reply::Array(vec![]));

    assert_eq!(cmd(&mut c, &["EXISTS", "user:1000:name", "user:1000", "nope", "counter"]), Reply::Integer(2));
    assert_eq!(cmd(&mut c, &["TYPE", "counter"]), Reply::Simple("string".into()));
    assert_eq!(cmd(&mut c, &["TYPE", "user:1000"]), Reply::Simple("none".into()));
    assert_eq!(
        cmd(&mut c, &["MGET", "user:2:name", "nope", "counter"]),
        Reply::Array(vec![bulk("Bob"), Reply::Nil, bulk("5")])
    );
    assert_eq!(cmd(&mut c, &["STRLEN", "user:1000:email"]), Reply::Integer(15));
    assert_eq!(cmd(&mut c, &["STRLEN", "nope"]), Reply::Integer(0));
    assert_eq!(cmd(&mut c, &["DECR", "counter"]), Reply::Integer(4));
    assert_eq!(cmd(&mut c, &["DECRBY", "counter", "10"]), Reply::Integer(-6));
    assert_eq!(cmd(&mut c, &["APPEND", "s", "ab"]), Reply::Integer(2));
    assert_eq!(cmd(&mut c, &["APPEND", "s", "cd"]), Reply::Integer(4));
    assert_eq!(c.get("s").unwrap(), Some(b"abcd".to_vec()));
    assert_eq!(cmd(&mut c, &["SETNX", "s", "x"]), Reply::Integer(0));
    assert_eq!(cmd(&mut c, &["SETNX", "n", "x"]), Reply::Integer(1));
    assert_eq!(cmd(&mut c, &["SET", "n", "y", "NX"]), Reply::Nil);
    assert_eq!(cmd(&mut c, &["SET", "n", "y", "XX", "GET"]), bulk("x"));
    assert_eq!(cmd(&mut c, &["SET", "m", "y", "XX"]), Reply::Nil);
    assert_eq!(cmd(&mut c, &["SET", "m", "z", "GET"]), Reply::Nil);
    assert_eq!(c.get("m").unwrap(), Some(b"z".to_vec()));
    assert_eq!(
        cmd_err(&mut c, &["SET", "m", "z", "EX", "10"]),
        "ERR SET option EX is not supported: Mirrorlab keys do not expire"
    );
    assert_eq!(c.get("m").unwrap(), Some(b"z".to_vec()));
    assert_eq!(cmd(&mut c, &["GETDEL", "n"]), bulk("y"));
    assert_eq!(cmd(&mut c, &["GETDEL", "n"]), Reply::Nil);
    // The encoded key (`m` and a 0 byte) and the value.
    assert_eq!(cmd(&mut c, &["MEMORY", "USAGE", "m"]), Reply::Integer(3));
    assert_eq!(cmd(&mut c, &["MEMORY", "USAGE", "nope"]), Reply::Nil);
    assert_eq!(cmd(&mut c, &["UNLINK", "m", "nope"]), Reply::Integer(1));
    let Reply::Array(time) = cmd(&mut c, &["TIME"]) else { panic!("TIME") };
    assert_eq!(time.len(), 2);
    assert_eq!(cmd(&mut c, &["SLOWLOG", "GET"]), Reply::Array(vec![]));
    assert_eq!(cmd(&mut c, &["SLOWLOG", "LEN"]), Reply::Integer(0));
    let Reply::Bulk(info) = cmd(&mut c, &["INFO"]) else { panic!("INFO") };
    let info = String::from_utf8(info).unwrap();
    for needle in ["used_memory:", "used_memory_human:", "blocked_clients:0", "db0:keys=8,expires=0,avg_ttl=0"] {
        assert!(info.contains(needle), "{needle} in {info}");
    }
    assert_eq!(cmd(&mut c, &["FLUSHDB"]), ok());
    assert_eq!(cmd(&mut c, &["DBSIZE"]), Reply::Integer(0));
    let Reply::Bulk(info) = cmd(&mut c, &["INFO", "keyspace"]) else { panic!("INFO") };
    assert_eq!(String::from_utf8(info).unwrap(), "# Keyspace\r\n");
}

fn run_suites(server: &TestServer) {
    suite_globals(server);
    suite_session(server);
    suite_tools(server);
    suite_pipeline(server);
    suite_values(server);
    suite_keyspace(server);
}

// ---- against the in-memory backend ----

#[test]
fn memory_backend_suites() {
    let mut server = start(memory(), ServerLimits::default());
    run_suites(&server);
    server.shutdown();
}

#[test]
fn garbage_closes_only_its_own_connection() {
    let mut server = start(memory(), ServerLimits::default());
    let mut good = server.client();
    good.set("^g", "1").unwrap();
    let mut bad = server.raw();
    // A valid request, then garbage in the same read: the first is answered, then the error.
    bad.write_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n+oops\r\n").unwrap();
    assert_eq!(read_to_close(&mut bad), "+PONG\r\n-ERR Protocol error: expected '$', got '+'\r\n");
    let mut bad = server.raw();
    bad.write_all(format!("*1\r\n${}\r\n", 1u64 << 40).as_bytes()).unwrap();
    assert!(read_to_close(&mut bad).starts_with("-ERR Protocol error: bulk length"));
    assert_eq!(good.get("^g").unwrap(), Some(b"1".to_vec()));
    server.shutdown();
}

/// As Redis: an HTTP request on the superserver is a cross-protocol attack (a web page
/// making a browser POST here); the connection is closed without an answer.
#[test]
fn http_requests_are_closed_without_an_answer() {
    let mut server = start(memory(), ServerLimits::default());
    let mut good = server.client();
    for request in [
        &b"POST /api/databases HTTP/1.1\r\nHost: evil.example\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\n",
        b"get /x http/1.0\r\n",
        b"Host: 127.0.0.1:1972\r\n",
        b"*2\r\n$4\r\nPOST\r\n$1\r\n/\r\n",
    ] {
        let mut s = server.raw();
        s.write_all(request).unwrap();
        assert_eq!(read_to_close(&mut s), "", "{:?}", String::from_utf8_lossy(request));
    }
    assert_eq!(good.command(&[b"PING"]).unwrap(), Reply::Simple("PONG".into()));
    server.shutdown();
}

/// Regression: a 3 MiB key in a bad reference came back whole in the error reply.
#[test]
fn error_replies_echo_a_bounded_excerpt_of_the_input() {
    let mut server = start(memory(), ServerLimits::default());
    let mut c = server.client();
    let key = format!("^a({}", "x".repeat(3 << 20));
    let long_name = format!("^{}", "a".repeat(3 << 20));
    let bad_name = format!("{}:1", "\u{e9}".repeat(1 << 20));
    for key in [key, long_name, bad_name] {
        match c.command(&[b"GET", key.as_bytes()]) {
            Err(ClientError::Server(e)) => {
                let start: String = e.message.chars().take(100).collect();
                assert!(e.message.len() < 400, "{} bytes echoed: {start}...", e.message.len());
            }
            other => panic!("expected an error, got {other:?}"),
        }
    }
    server.shutdown();
}

/// Regression: ^n(1e300) and ^n(1e500) were the same key (numbers >= 1e301 saturated).
#[test]
fn numbers_beyond_the_range_are_maxnumber() {
    let mut server = start(memory(), ServerLimits::default());
    let mut c = server.client();
    c.set("^n(1e300)", "in range").unwrap();
    assert_eq!(code(c.get("^n(1e500)")), "MAXNUMBER");
    assert_eq!(code(c.set("^n(1e301)", "x")), "MAXNUMBER");
    assert_eq!(c.get("^n(1e300)").unwrap(), Some(b"in range".to_vec()));
    // An increment beyond the range is refused, not saturated, and changes nothing.
    c.set("^n(2)", "5").unwrap();
    assert_eq!(code(c.command(&[b"INCRBY", b"^n(2)", b"1e400"])), "MAXNUMBER");
    assert_eq!(c.get("^n(2)").unwrap(), Some(b"5".to_vec()));
    server.shutdown();
}

#[test]
fn inline_commands_work_like_telnet() {
    let mut server = start(memory(), ServerLimits::default());
    let mut s = server.raw();
    s.write_all(b"SET ^a(\"x y\") \"hello world\"\r\nGET ^a(\"x y\")\r\n\r\nget a:nothing\r\nQUIT\r\n").unwrap();
    assert_eq!(read_to_close(&mut s), "+OK\r\n$11\r\nhello world\r\n$-1\r\n+OK\r\n");
    server.shutdown();
}

#[test]
fn hello_3_switches_to_resp3() {
    let mut server = start(memory(), ServerLimits::default());
    let mut s = server.raw();
    s.write_all(b"HELLO 3 SETNAME me\r\nGET ^nothing\r\nCONFIG GET appendonly\r\n").unwrap();
    let got = read_until_suffix(&mut s, "%1\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n");
    assert!(got.starts_with("%7\r\n$6\r\nserver\r\n$9\r\nmirrorlab\r\n$7\r\nversion\r\n"), "{got}");
    assert!(got.contains("$5\r\nproto\r\n:3\r\n") && got.contains("$7\r\nmodules\r\n*0\r\n_\r\n%1"), "{got}");
    server.shutdown();
}

#[test]
fn a_pipeline_of_durable_writes_waits_once() {
    let backend = Arc::new(MemoryBackend::new(Durability::Always));
    let mut server = start(backend.clone(), ServerLimits::default());
    let mut c = server.client();
    let cmds: Vec<[&[u8]; 3]> = (0..100).map(|_| [b"SET".as_slice(), b"^d", b"x"]).collect();
    let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| c.as_slice()).collect();
    let replies = c.pipeline(&refs).unwrap();
    assert!(replies.iter().all(|r| *r == Reply::Simple("OK".into())));
    let waits = backend.waits.lock().clone();
    // One write syscall from the client is one read here: one wait covers all 100.
    assert!(!waits.is_empty() && waits.len() <= 2, "{waits:?}");
    assert_eq!(*waits.last().unwrap(), 100);
    // Buffered writes do not wait; SYNC always does.
    c.command(&[b"DURABILITY", b"buffered"]).unwrap();
    c.set("^d", "y").unwrap();
    assert_eq!(backend.waits.lock().len(), waits.len());
    c.sync().unwrap();
    assert_eq!(*backend.waits.lock().last().unwrap(), 101);
    server.shutdown();
}

/// In `always` durability a read answers only once what it saw is durable; buffered
/// reads never wait.
#[test]
fn reads_in_always_mode_wait_for_what_they_saw() {
    let backend = Arc::new(MemoryBackend::new(Durability::Buffered));
    let mut server = start(backend.clone(), ServerLimits::default());
    let mut writer = server.client();
    writer.set("^r", "1").unwrap();
    writer.set("^r", "2").unwrap();
    let mut reader = server.client();
    assert_eq!(reader.get("^r").unwrap(), Some(b"2".to_vec()));
    assert!(backend.waits.lock().is_empty(), "buffered reads do not wait");
    reader.command(&[b"DURABILITY", b"always"]).unwrap();
    assert_eq!(reader.get("^r").unwrap(), Some(b"2".to_vec()));
    assert_eq!(reader.data("^r").unwrap(), 1);
    assert_eq!(*backend.waits.lock(), vec![2, 2], "each read waited for position 2, the write it saw");
    server.shutdown();
}

#[test]
fn a_failed_durability_wait_never_acknowledges() {
    let backend = Arc::new(MemoryBackend::new(Durability::Always));
    let mut server = start(backend.clone(), ServerLimits::default());
    let mut s = server.raw();
    backend.fail_durable.store(true, Ordering::SeqCst);
    s.write_all(b"PING\r\nSET ^f 1\r\nPING\r\n").unwrap();
    let got = read_to_close(&mut s);
    assert!(got.starts_with("-DISKHARD journal sync: simulated disk failure"), "{got}");
    assert!(!got.contains("+OK"), "{got}");
    server.shutdown();
}

#[test]
fn connections_over_the_limit_are_refused() {
    let limits = ServerLimits { max_connections: 1, ..ServerLimits::default() };
    let mut server = start(memory(), limits);
    let mut first = server.client();
    first.ping().unwrap();
    let mut second = server.raw();
    assert_eq!(read_to_close(&mut second), "-ERR max number of clients reached\r\n");
    first.command(&[b"QUIT"]).unwrap();
    drop(first);
    // The slot frees once the first connection's task ends.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = server.client();
        match c.ping() {
            Ok(()) => break,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no slot freed: {e}"),
        }
    }
    server.shutdown();
}

#[test]
fn shutdown_closes_connections_and_ends_their_sessions() {
    let backend = memory();
    let mut server = start(backend.clone(), ServerLimits::default());
    let mut a = server.client();
    let mut b = server.client();
    a.ping().unwrap();
    b.ping().unwrap();
    server.shutdown();
    assert_eq!(backend.ended_sessions.load(Ordering::SeqCst), 2);
    assert!(a.ping().is_err());
    assert!(TcpStream::connect(server.addr).is_err(), "the listener is closed");
}

#[test]
fn quit_answers_then_closes() {
    let mut server = start(memory(), ServerLimits::default());
    let mut s = server.raw();
    s.write_all(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n").unwrap();
    assert_eq!(read_to_close(&mut s), "+OK\r\n");
    server.shutdown();
}

// ---- against the real instance (needs Instance::open) ----

/// Opens a fresh instance in `dir` with its background writer, as `engine start` does.
fn open_instance(dir: &std::path::Path) -> Arc<Instance> {
    crate::instance::Instance::open(crate::instance::InstanceOptions {
        data_dir: dir.into(),
        vfs: Arc::new(crate::vfs::real::RealVfs::new()),
        background: true,
    })
    .unwrap()
}

#[test]
fn instance_suites() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(open_instance(dir.path()), ServerLimits::default());
    run_suites(&server);
    server.shutdown();
}

#[test]
fn instance_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(open_instance(dir.path()), ServerLimits::default());
    let mut a = server.client();
    let mut b = server.client();
    assert_eq!(a.tstart().unwrap(), 1);
    assert_eq!(a.tstart().unwrap(), 2);
    a.set("^tx(1)", "x").unwrap();
    a.tcommit().unwrap();
    a.tcommit().unwrap();
    assert_eq!(b.get("^tx(1)").unwrap(), Some(b"x".to_vec()));
    assert_eq!(code(a.tcommit()), "NOTRANSACTION");
    a.tstart().unwrap();
    a.set("^tx(2)", "y").unwrap();
    a.trollback().unwrap();
    assert_eq!(b.get("^tx(2)").unwrap(), None);
    // A connection closed inside a transaction rolls it back.
    a.tstart().unwrap();
    a.set("^tx(3)", "z").unwrap();
    a.command(&[b"QUIT"]).unwrap();
    drop(a);
    let deadline = Instant::now() + TIMEOUT;
    while b.get("^tx(3)").unwrap().is_some() {
        assert!(Instant::now() < deadline, "the open transaction was not rolled back");
        std::thread::sleep(Duration::from_millis(10));
    }
    server.shutdown();
}

fn queued() -> Reply {
    Reply::Simple("QUEUED".into())
}

fn info_field(c: &mut Client, section: &str, field: &str) -> String {
    let Reply::Bulk(text) = cmd(c, &["INFO", section]) else { panic!("INFO {section}") };
    let text = String::from_utf8(text).unwrap();
    let prefix = format!("{field}:");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("{field} in {text}")).to_string()
}

/// Regression: a redis-py `pipeline()` transaction got "unknown command 'EXEC'" while the
/// writes queued in it were applied anyway (a retry applied them twice).
#[test]
fn instance_multi_exec_applies_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(open_instance(dir.path()), ServerLimits::default());
    let mut a = server.client();
    let mut b = server.client();

    // Queued commands run at EXEC only, in one transaction, and answer as an array.
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["SET", "m:1", "one"]), queued());
    assert_eq!(cmd(&mut a, &["INCR", "m:n"]), queued());
    assert_eq!(cmd(&mut a, &["GET", "m:1"]), queued());
    assert_eq!(b.get("m:1").unwrap(), None, "nothing runs before EXEC");
    assert_eq!(cmd(&mut a, &["EXEC"]), Reply::Array(vec![ok(), Reply::Integer(1), bulk("one")]));
    assert_eq!(b.get("m:1").unwrap(), Some(b"one".to_vec()));
    // EXEC's reply waits for TCOMMIT's fsync, even with buffered durability.
    let (journal, durable) =
        (info_field(&mut a, "persistence", "journal_position"), info_field(&mut a, "persistence", "durable_position"));
    assert!(durable.parse::<u64>().unwrap() >= journal.parse::<u64>().unwrap(), "{durable} < {journal}");

    // A command refused while queuing: EXEC answers EXECABORT and applies nothing.
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["SET", "m:2", "two"]), queued());
    assert!(cmd_err(&mut a, &["FLY"]).starts_with("ERR unknown command"));
    assert!(cmd_err(&mut a, &["GET", "^bad("]).starts_with("SYNTAX"));
    assert_eq!(cmd(&mut a, &["SET", "m:3", "three"]), queued());
    assert_eq!(cmd_err(&mut a, &["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(b.get("m:2").unwrap(), None);
    assert_eq!(b.get("m:3").unwrap(), None);
    assert!(cmd_err(&mut a, &["EXEC"]).starts_with("ERR EXEC without MULTI"));

    // An error while running is reported in its place; the others commit.
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["SET", "m:4", "four"]), queued());
    assert_eq!(cmd(&mut a, &["NAMESPACE", "NOSUCH"]), queued());
    assert_eq!(cmd(&mut a, &["SET", "m:5", "five"]), queued());
    let Reply::Array(replies) = cmd(&mut a, &["EXEC"]) else { panic!("EXEC") };
    assert_eq!(replies[0], ok());
    assert!(matches!(&replies[1], Reply::Error(e) if e.code == "NAMESPACE"), "{replies:?}");
    assert_eq!(replies[2], ok());
    assert_eq!(b.get("m:4").unwrap(), Some(b"four".to_vec()));
    assert_eq!(b.get("m:5").unwrap(), Some(b"five".to_vec()));

    // DISCARD drops the queue.
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["SET", "m:6", "six"]), queued());
    assert_eq!(cmd(&mut a, &["DISCARD"]), ok());
    assert_eq!(b.get("m:6").unwrap(), None);
    assert!(cmd_err(&mut a, &["DISCARD"]).starts_with("ERR DISCARD without MULTI"));

    // WATCH is refused before anything is queued; inside MULTI too, without aborting.
    assert!(cmd_err(&mut a, &["WATCH", "m:1"]).starts_with("ERR WATCH is not supported"));
    assert_eq!(cmd(&mut a, &["UNWATCH"]), ok());
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd_err(&mut a, &["WATCH", "m:1"]), "ERR WATCH inside MULTI is not allowed");
    assert_eq!(cmd_err(&mut a, &["MULTI"]), "ERR MULTI calls can not be nested");
    assert_eq!(cmd(&mut a, &["SET", "m:7", "seven"]), queued());
    assert_eq!(cmd(&mut a, &["EXEC"]), Reply::Array(vec![ok()]));
    assert_eq!(b.get("m:7").unwrap(), Some(b"seven".to_vec()));

    // The engine's own transaction commands do not mix with MULTI.
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert!(cmd_err(&mut a, &["TSTART"]).contains("not allowed inside MULTI"));
    assert!(cmd_err(&mut a, &["MIRROR", "STATUS"]).contains("not allowed inside MULTI"));
    assert!(cmd_err(&mut a, &["HELLO", "3"]).contains("not allowed inside MULTI"));
    assert!(cmd_err(&mut a, &["WAIT", "1", "10"]).contains("not allowed inside MULTI"));
    assert!(cmd_err(&mut a, &["EXEC"]).starts_with("EXECABORT"));
    a.tstart().unwrap();
    assert!(cmd_err(&mut a, &["MULTI"]).contains("TCOMMIT or TROLLBACK first"));
    a.trollback().unwrap();

    // MSET is one transaction: a refused pair applies none.
    assert_eq!(cmd(&mut a, &["MSET", "ms:1", "a", "ms:2", "b"]), ok());
    assert_eq!(cmd(&mut a, &["MGET", "ms:1", "ms:2"]), Reply::Array(vec![bulk("a"), bulk("b")]));
    let big = "v".repeat(crate::globals::limits::MAX_VALUE_BYTES + 1);
    assert!(cmd_err(&mut a, &["MSET", "ms:1", "changed", "ms:2", &big]).starts_with("MAXSTRING"));
    assert_eq!(b.get("ms:1").unwrap(), Some(b"a".to_vec()));

    // A connection closed with a queue applies none of it.
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["SET", "m:8", "eight"]), queued());
    drop(a);
    let mut a = server.client();
    assert_eq!(a.get("m:8").unwrap(), None);

    // RESET: rolls back TSTART, drops MULTI, back to the default namespace and RESP2.
    a.tstart().unwrap();
    a.set("m:9", "nine").unwrap();
    cmd(&mut a, &["DURABILITY", "always"]);
    assert_eq!(cmd(&mut a, &["RESET"]), Reply::Simple("RESET".into()));
    assert_eq!(b.get("m:9").unwrap(), None);
    let Reply::Bulk(line) = cmd(&mut a, &["CLIENT", "INFO"]) else { panic!("CLIENT INFO in RESP2") };
    let line = String::from_utf8(line).unwrap();
    assert!(line.contains(" tlevel=0 resp=2 durability=default"), "{line}");
    assert_eq!(cmd(&mut a, &["MULTI"]), ok());
    assert_eq!(cmd(&mut a, &["SET", "m:10", "ten"]), queued());
    assert_eq!(cmd(&mut a, &["RESET"]), Reply::Simple("RESET".into()));
    assert!(cmd_err(&mut a, &["EXEC"]).starts_with("ERR EXEC without MULTI"));
    assert_eq!(b.get("m:10").unwrap(), None);
    let mut raw = server.raw();
    raw.write_all(b"HELLO 3\r\nRESET\r\nCLIENT INFO\r\n").unwrap();
    let seen = read_until_suffix(&mut raw, "\n\r\n");
    assert!(seen.contains("+RESET\r\n$") && seen.contains(" resp=2 "), "{seen}");
    server.shutdown();
}

/// FLUSHDB would empty a mirrored database on every member: refused unless forced.
#[test]
fn flushdb_refuses_mirrored_databases_unless_forced() {
    let backend = memory();
    *backend.mirrored.lock() = vec!["COMPANY".into()];
    let mut server = start(backend, ServerLimits::default());
    let mut c = server.client();
    c.set("k", "v").unwrap();
    let e = cmd_err(&mut c, &["FLUSHDB"]);
    assert!(e.contains("mirrored database(s) COMPANY") && e.contains("FLUSHDB FORCE"), "{e}");
    assert_eq!(c.get("k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(cmd(&mut c, &["FLUSHDB", "FORCE"]), ok());
    assert_eq!(c.get("k").unwrap(), None);
    server.shutdown();
}

#[test]
fn instance_durable_writes_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(open_instance(dir.path()), ServerLimits::default());
    let mut c = server.client();
    c.command(&[b"DURABILITY", b"always"]).unwrap();
    let cmds: Vec<[&[u8]; 3]> = (0..500).map(|_| [b"SET".as_slice(), b"^dur", b"v"]).collect();
    let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| c.as_slice()).collect();
    assert!(c.pipeline(&refs).unwrap().iter().all(|r| *r == Reply::Simple("OK".into())));
    c.sync().unwrap();
    let Reply::Bulk(info) = c.command(&[b"INFO", b"persistence"]).unwrap() else { panic!("INFO") };
    assert!(String::from_utf8(info).unwrap().contains("journal_position:"));
    server.shutdown();
}

/// A server on `MIRRORLAB_BENCH_PORT` over the in-memory backend for `MIRRORLAB_BENCH_SECS`
/// seconds, to compare the protocol path with redis-server using redis-benchmark:
/// `MIRRORLAB_BENCH_PORT=7000 cargo test --release -p mirrorlab-engine --lib bench_target -- --ignored`.
#[test]
#[ignore = "manual: a redis-benchmark target"]
fn bench_target() {
    let port: u16 = std::env::var("MIRRORLAB_BENCH_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(7000);
    let secs: u64 = std::env::var("MIRRORLAB_BENCH_SECS").ok().and_then(|p| p.parse().ok()).unwrap_or(30);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        serve(listener, memory(), ServerLimits::default(), tokio::time::sleep(Duration::from_secs(secs))).await;
    });
}

// ---- MIRROR ----

/// A RESP2 map (flat array of field/value pairs) as (field, value) pairs.
fn pairs(reply: Reply) -> Vec<(String, Reply)> {
    let Reply::Array(items) = reply else { panic!("not an array: {reply:?}") };
    assert_eq!(items.len() % 2, 0, "odd map {items:?}");
    items
        .chunks(2)
        .map(|kv| match &kv[0] {
            Reply::Bulk(k) => (String::from_utf8(k.clone()).unwrap(), kv[1].clone()),
            other => panic!("map key {other:?}"),
        })
        .collect()
}

fn keys(reply: Reply) -> Vec<String> {
    pairs(reply).into_iter().map(|(k, _)| k).collect()
}

fn json_keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

#[test]
fn mirror_commands_without_a_mirror_member() {
    let mut server = start(memory(), ServerLimits::default());
    let mut c = server.client();
    assert_eq!(c.command(&[b"MIRROR", b"STATUS"]).unwrap(), Reply::Nil);
    let Err(ClientError::Server(e)) = c.command(&[b"MIRROR", b"FAILOVER"]) else { panic!("MIRROR FAILOVER") };
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("NOTMIRRORED", "this instance is not a mirror member: create or join a mirror first")
    );
    assert_eq!(code(c.command(&[b"MIRROR", b"ADD", b"COMPANY"])), "NOTMIRRORED");
    let Reply::Array(help) = c.command(&[b"MIRROR", b"HELP"]).unwrap() else { panic!("HELP") };
    assert!(help.contains(&Reply::Simple("NOFAILOVER SET|CLEAR".into())), "{help:?}");
    assert_eq!(code(c.command(&[b"MIRROR", b"FLY"])), "ERR");
    server.shutdown();
}

#[test]
fn mirror_status_has_the_json_fields_and_actions_reach_the_member() {
    use crate::mirror::status::MirrorAction;
    use crate::resp::memory::{sample_status, FakeMirror};
    let backend = memory();
    let fake = FakeMirror::new(Some(sample_status()));
    *backend.mirror.lock() = Some(fake.clone());
    let mut server = start(backend, ServerLimits::default());
    let mut c = server.client();

    // Same field names as GET /api/mirror/status, nested the same way.
    let json = serde_json::to_value(sample_status()).unwrap();
    let status = c.command(&[b"MIRROR", b"status"]).unwrap();
    assert_eq!(sorted(keys(status.clone())), json_keys(&json));
    let fields = pairs(status);
    // In MirrorStatus's order, as the JSON text has them.
    let text = serde_json::to_string(&sample_status()).unwrap();
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(
        fields.windows(2).all(|w| at(&w[0].0) < at(&w[1].0)),
        "{:?}",
        fields.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).unwrap().1.clone();
    assert_eq!(field("mirror"), bulk("DEMO"));
    assert_eq!(field("type"), bulk("failover"));
    assert_eq!(field("status"), bulk("Primary"));
    assert_eq!(field("primary"), bulk("MIRRORA"));
    assert_eq!(field("epoch"), Reply::Integer(7));
    assert_eq!(field("no_failover"), Reply::Integer(0));
    assert_eq!(field("acked_position"), Reply::Integer(1040));
    assert_eq!(field("arbiter"), bulk("Both failover members are connected to the arbiter"));
    let Reply::Array(members) = field("members") else { panic!("members") };
    assert_eq!(members.len(), 3);
    assert_eq!(sorted(keys(members[1].clone())), json_keys(&json["members"][1]));
    let backup = pairs(members[1].clone());
    assert_eq!(backup[0], ("name".into(), bulk("MIRRORB")));
    let latency = backup.iter().find(|(k, _)| k == "database_latency").unwrap().1.clone();
    assert_eq!(sorted(keys(latency.clone())), json_keys(&json["members"][1]["database_latency"]));
    assert_eq!(pairs(latency)[0], ("time_ms".into(), Reply::Integer(120)));
    assert_eq!(pairs(members[2].clone())[1], ("type".into(), bulk("dr")));
    let Reply::Array(databases) = field("databases") else { panic!("databases") };
    assert_eq!(sorted(keys(databases[0].clone())), json_keys(&json["databases"][0]));

    // Actions answer the member's sentence, or its error with the engine error name.
    assert_eq!(
        c.command(&[b"MIRROR", b"ADD", b"company"]).unwrap(),
        Reply::Simple("database COMPANY is mirrored".into())
    );
    let Err(ClientError::Server(e)) = c.command(&[b"MIRROR", b"ADD", b"nope"]) else { panic!("ADD nope") };
    assert_eq!((e.code.as_str(), e.message.as_str()), ("DIRECTORY", "database NOPE does not exist"));
    assert_eq!(c.command(&[b"MIRROR", b"NOFAILOVER", b"set"]).unwrap(), Reply::Simple("no failover is set".into()));
    fake.set_member_status(MemberStatus::Backup);
    assert_eq!(code(c.command(&[b"MIRROR", b"FAILOVER"])), "ILLEGAL");
    // In a pipeline, MIRROR's reply keeps its place.
    let replies = c
        .pipeline(&[&[b"SET", b"^m", b"1"], &[b"MIRROR", b"PROMOTE"], &[b"GET", b"^m"], &[b"MIRROR", b"JOIN"]])
        .unwrap();
    assert_eq!(replies[0], Reply::Simple("OK".into()));
    assert_eq!(replies[1], Reply::Simple("done: PromoteDr".into()));
    assert_eq!(replies[2], bulk("1"));
    assert_eq!(replies[3], Reply::Simple("done: Join".into()));
    assert_eq!(
        *fake.actions.lock(),
        vec![
            MirrorAction::AddDatabase { name: "COMPANY".into() },
            MirrorAction::AddDatabase { name: "NOPE".into() },
            MirrorAction::SetNoFailover,
            MirrorAction::PlannedFailover,
            MirrorAction::PromoteDr,
            MirrorAction::Join,
        ]
    );

    // RESP3: a map with a boolean and a null where RESP2 has an integer and a nil.
    fake.set_member_status(MemberStatus::Primary);
    if let Some(s) = fake.status.lock().as_mut() {
        s.primary = None;
        s.no_failover = true;
    }
    let mut s = server.raw();
    s.write_all(b"HELLO 3\r\nMIRROR STATUS\r\nPING\r\n").unwrap();
    let got = read_until_suffix(&mut s, "+PONG\r\n");
    let status = &got[got.find("%14\r\n").expect("a map of 14 fields")..];
    assert!(status.starts_with("%14\r\n$6\r\nmirror\r\n$4\r\nDEMO\r\n$6\r\nmember\r\n$7\r\nMIRRORA\r\n"), "{status}");
    assert!(status.contains("$7\r\nprimary\r\n_\r\n$5\r\nepoch\r\n:7\r\n"), "{status}");
    assert!(status.contains("$11\r\nno_failover\r\n#t\r\n"), "{status}");
    assert!(status.contains("$7\r\nmembers\r\n*3\r\n%9\r\n$4\r\nname\r\n$7\r\nMIRRORA\r\n"), "{status}");
    assert!(status.contains("$15\r\njournal_latency\r\n%3\r\n$7\r\ntime_ms\r\n:0\r\n"), "{status}");
    assert!(status.contains("$9\r\ndatabases\r\n*2\r\n%3\r\n$4\r\nname\r\n$7\r\nCOMPANY\r\n"), "{status}");
    server.shutdown();
}

#[test]
fn instance_mirror_commands_go_through_its_mirror_control() {
    use crate::resp::memory::{sample_status, FakeMirror};
    let dir = tempfile::tempdir().unwrap();
    let instance = open_instance(dir.path());
    let mut server = start(instance.clone(), ServerLimits::default());
    let mut c = server.client();
    assert_eq!(c.command(&[b"MIRROR", b"STATUS"]).unwrap(), Reply::Nil);
    assert_eq!(code(c.command(&[b"MIRROR", b"CREATE"])), "NOTMIRRORED");
    let fake = FakeMirror::new(None);
    instance.set_mirror_control(fake.clone());
    // Installed but not yet created or joined: no status, actions reach it.
    assert_eq!(c.command(&[b"MIRROR", b"STATUS"]).unwrap(), Reply::Nil);
    assert_eq!(c.command(&[b"MIRROR", b"CREATE"]).unwrap(), Reply::Simple("done: Create".into()));
    *fake.status.lock() = Some(sample_status());
    let fields = pairs(c.command(&[b"MIRROR", b"STATUS"]).unwrap());
    assert_eq!(fields[3], ("status".into(), bulk("Primary")));
    assert_eq!(
        c.command(&[b"MIRROR", b"FAILOVER"]).unwrap(),
        Reply::Simple("MIRRORB is taking over as primary".into())
    );
    server.shutdown();
}

/// Regression: INFO said `role:master` on the primary, the backup and the DR member alike.
#[test]
fn role_info_hello_and_wait_tell_the_mirror_topology() {
    use crate::resp::memory::{sample_status, FakeMirror};
    let backend = memory();
    let mut server = start(backend.clone(), ServerLimits::default());
    let mut c = server.client();

    // No mirror: a master without replicas; WAIT has nobody to wait for.
    let Reply::Array(role) = cmd(&mut c, &["ROLE"]) else { panic!("ROLE") };
    assert_eq!((&role[0], &role[2]), (&bulk("master"), &Reply::Array(vec![])));
    assert_eq!(cmd(&mut c, &["WAIT", "1", "0"]), Reply::Integer(0));
    assert_eq!(info_field(&mut c, "replication", "role"), "master");

    // The backup: a slave of the primary's superserver.
    *backend.superservers.lock() = vec![
        ("MIRRORA".into(), "10.0.0.1:1972".into()),
        ("MIRRORB".into(), "10.0.0.2:1972".into()),
        ("DR".into(), "10.0.0.3:1972".into()),
    ];
    let mut backup = sample_status();
    backup.member = "MIRRORB".into();
    backup.status = MemberStatus::Backup.into();
    backup.durable_position = 1041;
    let fake = FakeMirror::new(Some(backup));
    *backend.mirror.lock() = Some(fake.clone());
    assert_eq!(
        cmd(&mut c, &["ROLE"]),
        Reply::Array(vec![
            bulk("slave"),
            bulk("10.0.0.1"),
            Reply::Integer(1972),
            bulk("connected"),
            Reply::Integer(1041)
        ])
    );
    for (field, value) in [
        ("role", "slave"),
        ("master_host", "10.0.0.1"),
        ("master_port", "1972"),
        ("master_link_status", "up"),
        ("slave_repl_offset", "1041"),
    ] {
        assert_eq!(info_field(&mut c, "replication", field), value, "{field}");
    }
    let hello = pairs(cmd(&mut c, &["HELLO", "2"]));
    assert!(hello.contains(&("role".into(), bulk("slave"))), "{hello:?}");
    assert!(hello.contains(&("version".into(), bulk(crate::resp::REDIS_COMPATIBLE_VERSION))), "{hello:?}");
    assert_eq!(info_field(&mut c, "server", "redis_version"), crate::resp::REDIS_COMPATIBLE_VERSION);
    assert!(cmd_err(&mut c, &["WAIT", "1", "10"]).starts_with("ERR WAIT cannot be used with replica instances"));

    // The primary: a master with the backup and the DR member as replicas.
    *fake.status.lock() = Some(sample_status());
    assert_eq!(info_field(&mut c, "replication", "role"), "master");
    assert_eq!(info_field(&mut c, "replication", "connected_slaves"), "2");
    assert_eq!(info_field(&mut c, "replication", "slave0"), "ip=10.0.0.2,port=1972,state=online,offset=1042,lag=0");
    let Reply::Array(role) = cmd(&mut c, &["ROLE"]) else { panic!("ROLE") };
    assert_eq!(role[0], bulk("master"));
    assert_eq!(
        role[2],
        Reply::Array(vec![
            Reply::Array(vec![bulk("10.0.0.2"), bulk("1972"), bulk("1042")]),
            Reply::Array(vec![bulk("10.0.0.3"), bulk("1972"), bulk("1001")]),
        ])
    );
    assert_eq!(cmd(&mut c, &["WAIT", "1", "1000"]), Reply::Integer(1));
    // Without an active backup nobody confirms.
    let mut alone = sample_status();
    alone.members.retain(|m| m.name == "MIRRORA");
    *fake.status.lock() = Some(alone);
    assert_eq!(cmd(&mut c, &["WAIT", "1", "1000"]), Reply::Integer(0));
    assert!(cmd_err(&mut c, &["WAIT", "1", "-1"]).contains("negative"));
    server.shutdown();
}

#[test]
fn instance_client_list_and_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(open_instance(dir.path()), ServerLimits::default());
    let mut a = server.client();
    let mut b = server.client();
    cmd(&mut b, &["CLIENT", "SETNAME", "victim"]);
    b.tstart().unwrap();
    b.set("ck:1", "uncommitted").unwrap();
    let Reply::Integer(b_id) = cmd(&mut b, &["CLIENT", "ID"]) else { panic!("CLIENT ID") };
    let Reply::Bulk(list) = cmd(&mut a, &["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
    let list = String::from_utf8(list).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    let line = list.lines().find(|l| l.starts_with(&format!("id={b_id} "))).unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains(" name=victim ") && line.contains(" tlevel=1 "), "{line}");

    // Killing a connection closes it, and its open transaction is rolled back.
    assert_eq!(cmd(&mut a, &["CLIENT", "KILL", "ID", &b_id.to_string()]), Reply::Integer(1));
    assert!(b.command(&[b"PING"]).is_err(), "the killed connection is closed");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let Reply::Bulk(list) = cmd(&mut a, &["CLIENT", "LIST"]) else { panic!("CLIENT LIST") };
        if String::from_utf8(list).unwrap().lines().count() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the killed connection is still listed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Unregistered after its session ended: the rollback is done.
    assert_eq!(a.get("ck:1").unwrap(), None);
    // SKIPME: by default a client does not kill itself.
    assert_eq!(cmd(&mut a, &["CLIENT", "KILL", "LADDR", &server.addr.to_string()]), Reply::Integer(0));
    let mut c = server.client();
    let Reply::Bulk(info) = cmd(&mut c, &["CLIENT", "INFO"]) else { panic!("CLIENT INFO") };
    let addr = String::from_utf8(info).unwrap().split(' ').find_map(|f| f.strip_prefix("addr=")).unwrap().to_string();
    assert_eq!(cmd(&mut a, &["CLIENT", "KILL", &addr]), ok());
    assert!(c.command(&[b"PING"]).is_err());
    assert_eq!(cmd_err(&mut a, &["CLIENT", "KILL", &addr]), "ERR No such client");
    server.shutdown();
}

/// Reads one CRLF-terminated line from a raw connection.
fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed after {:?}", String::from_utf8_lossy(&line));
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap().trim_end().to_string()
}

#[test]
fn monitor_streams_other_clients_commands_with_passwords_redacted_until_reset() {
    let mut server = start(memory(), ServerLimits::default());
    let mut monitor = server.raw();
    monitor.write_all(b"MONITOR\r\n").unwrap();
    assert_eq!(read_line(&mut monitor), "+OK");
    let mut c = server.client();
    c.set("^watched(1)", "value \"quoted\"").unwrap();
    let _ = c.command(&[b"AUTH", b"secret-password"]);
    let line = read_line(&mut monitor);
    assert!(line.starts_with('+') && line.contains("] \"SET\" \"^watched(1)\" \"value \\\"quoted\\\"\""), "{line}");
    let line = read_line(&mut monitor);
    assert!(line.ends_with("\"AUTH\" \"(redacted)\"") && !line.contains("secret"), "{line}");
    // Only QUIT and RESET run on a monitoring connection; RESET makes it a client again.
    monitor.write_all(b"GET ^watched(1)\r\n").unwrap();
    assert!(read_line(&mut monitor).starts_with("-ERR only QUIT and RESET"));
    monitor.write_all(b"RESET\r\nPING\r\n").unwrap();
    assert_eq!(read_line(&mut monitor), "+RESET");
    assert_eq!(read_line(&mut monitor), "+PONG");
    // No longer monitoring: another client's command reaches nobody.
    c.set("^watched(2)", "x").unwrap();
    monitor.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_line(&mut monitor), "+PONG");
    server.shutdown();
}

#[test]
fn error_replies_are_counted_as_info_and_metrics_show_them() {
    let backend = memory();
    let mut server = start(backend.clone(), ServerLimits::default());
    let mut c = server.client();
    c.set("^a", "1").unwrap();
    assert!(c.command(&[b"NOSUCHCOMMAND"]).is_err());
    assert!(c.command(&[b"INCRBY", b"^a", b"not-a-number"]).is_err());
    assert_eq!(backend.counters.errors.load(Ordering::Relaxed), 2, "two commands were refused");
    let info = match c.command(&[b"INFO", b"stats"]).unwrap() {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("INFO answered {other:?}"),
    };
    assert!(info.contains("total_error_replies:2\r\n"), "{info}");
    server.shutdown();
}
