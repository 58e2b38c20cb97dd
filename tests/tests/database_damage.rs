//! No silent data loss from a damaged database file, with the real engine binary: a value
//! whose bytes changed on disk is refused with an error naming the file and the node (RESP
//! and the management API), logged, while the engine keeps serving everything else; a
//! database file another engine has mounted is refused. See docs/design/journal.md,
//! "Database files".

use engine::cli::http;
use engine::client::ClientError;
use mirrorlab_tests::Engine;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

fn user_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("databases/USER/mirrorlab.dat")
}

/// Flips a bit in every place `needle` is stored in `file` (a copy-on-write file may keep
/// an old page holding it too; the live one is among them).
fn damage(file: &Path, needle: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let places: Vec<usize> =
        (0..=bytes.len() - needle.len()).filter(|&at| bytes[at..at + needle.len()] == *needle).collect();
    assert!(!places.is_empty(), "the value is in the database file");
    for at in places {
        bytes[at + needle.len() / 2] ^= 0x04;
    }
    std::fs::write(file, &bytes).unwrap();
}

#[test]
fn a_value_damaged_on_disk_is_an_error_naming_file_and_node_and_the_engine_serves_the_rest() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let value = b"a customer record that the disk will damage".to_vec();
    {
        let mut e = Engine::start_in(dir, &[]);
        let mut c = e.client();
        c.set("^Customer(42,\"record\")", &value).unwrap();
        c.set("^Customer(43,\"record\")", "a neighbour").unwrap();
        c.set("^Invoice(1)", "another global").unwrap();
        let out = e.stop();
        assert!(out.status.success(), "engine stop: {out:?}");
    }
    let file = user_file(dir);
    damage(&file, &value);

    let e = Engine::start_in(dir, &[]);
    let mut c = e.client();
    let err = c.get("^Customer(42,\"record\")").expect_err("a damaged value is never served");
    let ClientError::Server(err) = err else { panic!("a server error, got {err:?}") };
    assert_eq!(err.code, "DATABASE", "{err:?}");
    let shown = file.canonicalize().unwrap_or(file.clone());
    assert!(
        (err.message.contains(&file.display().to_string()) || err.message.contains(&shown.display().to_string()))
            && err.message.contains("^Customer(42,\"record\")")
            && err.message.contains("checksum"),
        "the error names the file, the node and what failed: {}",
        err.message
    );
    // Everything else still reads, on the same connection, and the engine is up.
    assert_eq!(c.get("^Customer(43,\"record\")").unwrap(), Some(b"a neighbour".to_vec()));
    assert_eq!(c.get("^Invoice(1)").unwrap(), Some(b"another global".to_vec()));
    c.set("^Invoice(2)", "writes go on").unwrap();

    // The management API gives the same error as JSON, and lists the damage.
    let r = http::call(e.web_port, "GET", "/api/globals/USER?ref=%5ECustomer(42,%22record%22)", None, TIMEOUT).unwrap();
    assert!(r.status >= 400, "{} {}", r.status, r.body);
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["error"]["code"], "DATABASE", "{body}");
    let r = http::call(e.web_port, "GET", "/api/databases", None, TIMEOUT).unwrap();
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let user = list.as_array().unwrap().iter().find(|d| d["name"] == "USER").expect("USER listed").clone();
    assert_eq!(user["mounted"], true, "{user}");
    assert!(user["corruption"].as_str().is_some_and(|t| t.contains("^Customer(42")), "{user}");
    // And messages.log says so.
    let log = std::fs::read_to_string(dir.join("messages.log")).unwrap();
    assert!(log.contains("^Customer(42,\"record\")") && log.contains("engine integrity USER"), "{log}");

    // Rewriting the node repairs it.
    c.set("^Customer(42,\"record\")", "re-entered").unwrap();
    assert_eq!(c.get("^Customer(42,\"record\")").unwrap(), Some(b"re-entered".to_vec()));
}

#[test]
fn a_database_file_mounted_by_another_engine_is_refused() {
    let first = Engine::start();
    let mut c = first.client();
    c.set("^shared", "first engine's").unwrap();
    // A second instance whose USER database file is replaced, while it is down, by a hard
    // link to the first one's: both data directories are confined, one file.
    let temp = tempfile::tempdir().unwrap();
    let mut second = Engine::start_in(temp.path(), &[]);
    assert!(second.stop().status.success());
    let linked = user_file(temp.path());
    std::fs::remove_file(&linked).unwrap();
    std::fs::hard_link(user_file(&first.data_dir), &linked).unwrap();
    let second = Engine::start_in(temp.path(), &[]);
    let r = http::call(second.web_port, "GET", "/api/databases", None, TIMEOUT).unwrap();
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let user = list.as_array().unwrap().iter().find(|d| d["name"] == "USER").expect("USER listed").clone();
    assert_eq!(user["mounted"], false, "{user}");
    let error = user["error"].as_str().unwrap_or_default();
    assert!(error.contains("in use") && error.contains(&linked.display().to_string()), "{user}");
    let err = second.client().get("^shared").expect_err("not mounted there");
    assert_eq!(err.code(), Some("DIRECTORY"), "{err:?}");
    // The first engine is untouched.
    assert_eq!(c.get("^shared").unwrap(), Some(b"first engine's".to_vec()));
}
