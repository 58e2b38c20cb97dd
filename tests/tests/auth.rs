//! Users, roles and authentication with the real engine binary (docs/design/security.md,
//! "Users and roles"): an engine started with `--password-file` refuses unauthenticated
//! RESP and API access, checks passwords, and enforces each role's databases and
//! privileges; the open endpoints stay open for probes.

use base64::Engine as _;
use engine::cli::http::{request, Response};
use engine::client::{Client, ClientError, Reply};
use mirrorlab_tests::Engine;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);
const ADMIN_PASSWORD: &str = "correct horse battery staple";

fn command(c: &mut Client, args: &[&str]) -> Result<Reply, ClientError> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.command(&args)
}

fn server_error(r: Result<Reply, ClientError>) -> String {
    match r {
        Err(ClientError::Server(e)) => format!("{} {}", e.code, e.message),
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

fn http(e: &Engine, method: &str, path: &str, body: Option<&str>, headers: &str) -> Response {
    request("127.0.0.1", e.web_port, method, path, body, headers, TIMEOUT).expect("HTTP request")
}

/// An engine whose admin password comes from a password file.
fn secured_engine() -> (tempfile::TempDir, Engine) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("admin.password");
    std::fs::write(&file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let data = tmp.path().join("data");
    let e = Engine::start_in(&data, &["--password-file", file.to_str().unwrap()]);
    (tmp, e)
}

fn login(e: &Engine, user: &str, password: &str) -> Client {
    let mut c = e.client();
    command(&mut c, &["AUTH", user, password]).expect("AUTH");
    c
}

#[test]
fn without_credentials_nothing_but_probes_is_served() {
    let (_tmp, e) = secured_engine();
    let mut c = e.client();
    assert_eq!(server_error(command(&mut c, &["GET", "^x"])), "NOAUTH Authentication required.");
    assert_eq!(server_error(command(&mut c, &["SET", "^x", "1"])), "NOAUTH Authentication required.");
    assert!(server_error(command(&mut c, &["HELLO", "3"])).starts_with("NOAUTH HELLO must be called"));
    // The agent's health probe needs no password.
    assert_eq!(command(&mut c, &["PING"]).unwrap(), Reply::Simple("PONG".into()));

    for (method, path) in
        [("GET", "/api/globals/USER?ref=%5Ex"), ("PUT", "/api/globals/USER"), ("GET", "/api/instance")]
    {
        let r = http(&e, method, path, Some(r#"{"ref":"^x","value":"1"}"#), "");
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert!(r.body.contains("NOAUTH"), "{}", r.body);
        assert!(r.head.to_ascii_lowercase().contains("www-authenticate: basic"), "{}", r.head);
    }
    assert_eq!(http(&e, "GET", "/health", None, "").status, 200);
    // Not a mirror member: 503, but answered without credentials (load balancers).
    assert_ne!(http(&e, "GET", "/mirror_status", None, "").status, 401);
    // The portal page: a Basic challenge, and the page (its own login form) as the body.
    let page = http(&e, "GET", "/", None, "");
    assert_eq!(page.status, 401);
    assert!(page.body.contains("id=\"login-form\""), "{}", page.body);
    assert_eq!(http(&e, "GET", "/", None, &basic("admin", ADMIN_PASSWORD)).status, 200);
}

#[test]
fn a_wrong_password_is_refused_slowly_and_the_right_one_works() {
    let (_tmp, e) = secured_engine();
    let mut c = e.client();
    let started = Instant::now();
    let err = server_error(command(&mut c, &["AUTH", "admin", "guess"]));
    assert_eq!(err, "WRONGPASS invalid username-password pair or user is disabled.");
    assert!(started.elapsed() >= engine::security::FAILED_AUTH_DELAY, "a failure is answered no sooner than the delay");
    assert!(server_error(command(&mut c, &["AUTH", "nobody", ADMIN_PASSWORD])).starts_with("WRONGPASS"));
    assert_eq!(http(&e, "GET", "/api/instance", None, &basic("admin", "guess")).status, 401);

    // AUTH <password> alone is user admin when no user `default` exists (redis-cli -a).
    command(&mut c, &["AUTH", ADMIN_PASSWORD]).unwrap();
    assert_eq!(command(&mut c, &["ACL", "WHOAMI"]).unwrap(), Reply::Bulk(b"admin".to_vec()));
    command(&mut c, &["SET", "^x", "1"]).unwrap();
    let list = match command(&mut c, &["CLIENT", "LIST"]).unwrap() {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(list.contains("user=admin"), "{list}");

    let mut h = e.client();
    command(&mut h, &["HELLO", "2", "AUTH", "admin", ADMIN_PASSWORD]).unwrap();
    assert_eq!(command(&mut h, &["GET", "^x"]).unwrap(), Reply::Bulk(b"1".to_vec()));
    // RESET keeps the login (and its rights).
    command(&mut h, &["RESET"]).unwrap();
    assert_eq!(command(&mut h, &["GET", "^x"]).unwrap(), Reply::Bulk(b"1".to_vec()));

    let r = http(&e, "GET", "/api/globals/USER?ref=%5Ex", None, &basic("admin", ADMIN_PASSWORD));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(r#""value":"1""#), "{}", r.body);
    // The password file's password is stored as an argon2id hash, never in plaintext.
    let yaml = std::fs::read_to_string(e.data_dir.join("engine.yaml")).unwrap();
    assert!(yaml.contains("$argon2id$") && !yaml.contains(ADMIN_PASSWORD), "{yaml}");
}

#[test]
fn roles_limit_databases_and_privileges() {
    let (_tmp, e) = secured_engine();
    let admin = basic("admin", ADMIN_PASSWORD);
    let put = |path: &str, body: &str| {
        let r = http(&e, "PUT", path, Some(body), &admin);
        assert_eq!(r.status, 200, "PUT {path}: {}", r.body);
    };
    put("/api/security/roles/reader", r#"{"databases":{"USER":"R"}}"#);
    put("/api/security/users/reader", r#"{"password":"read-only pw","roles":["reader"]}"#);
    put("/api/security/users/writer", r#"{"password":"writer pw","roles":["%DB_USER"]}"#);
    put("/api/security/users/operator", r#"{"password":"operator pw","roles":["%Operator"]}"#);

    let mut a = login(&e, "admin", ADMIN_PASSWORD);
    command(&mut a, &["SET", "^x", "1"]).unwrap();

    let mut r = login(&e, "reader", "read-only pw");
    assert_eq!(command(&mut r, &["GET", "^x"]).unwrap(), Reply::Bulk(b"1".to_vec()));
    let err = server_error(command(&mut r, &["SET", "^x", "2"]));
    assert!(err.starts_with("NOPERM user reader may only read database USER"), "{err}");
    assert!(server_error(command(&mut r, &["KILL", "^x"])).starts_with("NOPERM"));
    let w = http(&e, "PUT", "/api/globals/USER", Some(r#"{"ref":"^x","value":"2"}"#), &basic("reader", "read-only pw"));
    assert_eq!(w.status, 403, "{}", w.body);
    assert!(w.body.contains("NOPERM"), "{}", w.body);

    let mut wr = login(&e, "writer", "writer pw");
    command(&mut wr, &["SET", "^x", "3"]).unwrap();
    // Globals only: no status, no users, no mirror actions.
    let err = server_error(command(&mut wr, &["MIRROR", "FAILOVER"]));
    assert!(err.starts_with("NOPERM user writer may not act on the mirror"), "{err}");
    assert_eq!(http(&e, "GET", "/api/instance", None, &basic("writer", "writer pw")).status, 403);
    let u = http(
        &e,
        "PUT",
        "/api/security/users/evil",
        Some(r#"{"password":"x","roles":["%All"]}"#),
        &basic("writer", "writer pw"),
    );
    assert_eq!(u.status, 403, "{}", u.body);

    // The operator may act on the mirror (this engine is none: NOTMIRRORED, not NOPERM)
    // but not manage users or read globals.
    let mut op = login(&e, "operator", "operator pw");
    let err = server_error(command(&mut op, &["MIRROR", "FAILOVER"]));
    assert!(err.starts_with("NOTMIRRORED"), "{err}");
    assert!(server_error(command(&mut op, &["GET", "^x"]))
        .starts_with("NOPERM user operator has no access to database USER"));
    let opb = basic("operator", "operator pw");
    assert_eq!(http(&e, "GET", "/api/security/users", None, &opb).status, 403);
    assert_eq!(http(&e, "GET", "/metrics", None, &opb).status, 200, "monitor comes with operator");

    // A change reaches open connections at their next command: a deleted user is out.
    let d = http(&e, "DELETE", "/api/security/users/reader", None, &admin);
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(server_error(command(&mut r, &["GET", "^x"])), "NOAUTH Authentication required.");
    // The last admin cannot be deleted: nobody could manage users any more.
    let last = http(&e, "DELETE", "/api/security/users/admin", None, &admin);
    assert_eq!(last.status, 400, "{}", last.body);
    assert!(last.body.contains("admin privilege"), "{}", last.body);
    // Hashes are shown to admins (drift checks), never plaintext.
    let list = http(&e, "GET", "/api/security/users", None, &admin);
    assert!(list.body.contains("$argon2id$") && !list.body.contains("writer pw"), "{}", list.body);
}

#[test]
fn the_portal_logs_in_with_a_session_cookie_and_out_again() {
    let (_tmp, e) = secured_engine();
    let json = "X-Mirrorlab-Portal: 1\r\n";
    let r = http(&e, "GET", "/api/instance", None, json);
    assert_eq!(r.status, 401);
    assert!(!r.head.to_ascii_lowercase().contains("www-authenticate"), "no browser dialog for the portal: {}", r.head);
    let bad = http(&e, "POST", "/api/login", Some(r#"{"user":"admin","password":"nope"}"#), json);
    assert_eq!(bad.status, 401, "{}", bad.body);
    let ok =
        http(&e, "POST", "/api/login", Some(&format!(r#"{{"user":"admin","password":"{ADMIN_PASSWORD}"}}"#)), json);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie_line = ok.head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a cookie");
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"), "{cookie_line}");
    let cookie = cookie_line.split_once(':').unwrap().1.trim().split(';').next().unwrap().to_string();
    let with_cookie = format!("{json}Cookie: {cookie}\r\n");
    let who = http(&e, "GET", "/api/whoami", None, &with_cookie);
    assert_eq!(who.status, 200, "{}", who.body);
    assert!(who.body.contains(r#""user":"admin""#), "{}", who.body);
    assert_eq!(http(&e, "GET", "/api/instance", None, &with_cookie).status, 200);
    assert_eq!(http(&e, "POST", "/api/logout", None, &with_cookie).status, 200);
    assert_eq!(http(&e, "GET", "/api/instance", None, &with_cookie).status, 401, "the session ended");
}

#[test]
fn the_engine_cli_takes_a_user_and_a_password_from_the_environment() {
    let (tmp, e) = secured_engine();
    let data = e.data_dir.clone();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = mirrorlab_tests::engine_cmd();
        cmd.arg("--data-dir").arg(&data).args(args).env_remove("MIRRORLAB_PASSWORD").env_remove("MIRRORLAB_USER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let out = run(&[], &["freeze"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NOAUTH"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[("MIRRORLAB_PASSWORD", ADMIN_PASSWORD)], &["--user", "admin", "freeze"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[("MIRRORLAB_PASSWORD", ADMIN_PASSWORD)], &["thaw"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let session = |env: &[(&str, &str)]| {
        let mut cmd = mirrorlab_tests::engine_cmd();
        cmd.arg("--data-dir").arg(&data).arg("session").env_remove("MIRRORLAB_PASSWORD").env_remove("MIRRORLAB_USER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"set ^s=42\nwrite ^s,!\n").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = session(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("MIRRORLAB_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = session(&[("MIRRORLAB_USER", "admin"), ("MIRRORLAB_PASSWORD", ADMIN_PASSWORD)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("42"), "{}", String::from_utf8_lossy(&out.stdout));
    drop(tmp);
}

#[test]
fn a_restart_keeps_users_and_the_password_file_changes_the_admin_password() {
    let (tmp, mut e) = secured_engine();
    assert!(e.stop().status.success());
    // Without the file the users stay: still no unauthenticated access.
    let data = tmp.path().join("data");
    let e = Engine::start_in(&data, &[]);
    let mut c = e.client();
    assert!(server_error(command(&mut c, &["GET", "^x"])).starts_with("NOAUTH"));
    login(&e, "admin", ADMIN_PASSWORD);
    drop(c);
    drop(e);
    let file = tmp.path().join("new.password");
    std::fs::write(&file, "another one").unwrap();
    let e = Engine::start_in(&data, &["--password-file", file.to_str().unwrap()]);
    login(&e, "admin", "another one");
    assert!(server_error(command(&mut e.client(), &["AUTH", "admin", ADMIN_PASSWORD])).starts_with("WRONGPASS"));
}

#[test]
fn no_users_is_the_open_engine_of_before() {
    let e = Engine::start();
    let mut c = e.client();
    command(&mut c, &["SET", "^x", "1"]).unwrap();
    assert_eq!(command(&mut c, &["ACL", "WHOAMI"]).unwrap(), Reply::Bulk(b"default".to_vec()));
    assert!(server_error(command(&mut c, &["AUTH", "pw"])).contains("without any password configured"));
    assert_eq!(http(&e, "GET", "/api/instance", None, "").status, 200);
}
