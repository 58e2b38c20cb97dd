//! Database files that cannot be mounted are refused with an error naming the file, and
//! the rest of the instance stays up.

use super::r;
use crate::instance::{Instance, InstanceOptions};
use crate::storage::database::file_name;
use crate::vfs::real::RealVfs;
use std::sync::Arc;

fn open_real(dir: &std::path::Path) -> Arc<Instance> {
    Instance::open(InstanceOptions { data_dir: dir.to_path_buf(), vfs: Arc::new(RealVfs::new()), background: false })
        .unwrap()
}

fn company_file(dir: &std::path::Path) -> std::path::PathBuf {
    file_name(&dir.join("databases/COMPANY"))
}

fn with_company(dir: &std::path::Path) {
    let i = open_real(dir);
    i.create_database("COMPANY", None, false).unwrap();
    i.create_namespace("APP", "COMPANY").unwrap();
    let mut s = i.session();
    i.use_namespace(&mut s, "APP").unwrap();
    let _ = i.set(&mut s, &r("^Company(1)"), b"Acme").unwrap();
    let _ = i.set(&mut s, &r("^other"), b"kept").unwrap();
    i.shutdown().unwrap();
}

#[test]
fn a_truncated_file_is_refused_and_other_databases_stay_up() {
    let dir = tempfile::tempdir().unwrap();
    with_company(dir.path());
    let file = company_file(dir.path());
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(len / 3).unwrap();
    let i = open_real(dir.path());
    let listed = i.databases().into_iter().find(|d| d.name == "COMPANY").unwrap();
    assert!(!listed.mounted);
    let error = listed.error.expect("the error is listed");
    assert!(error.contains(&file.display().to_string()), "{error}");
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^still"), b"up").unwrap();
    i.use_namespace(&mut s, "APP").unwrap();
    assert_eq!(i.get(&s, &r("^Company(1)")).unwrap_err().code(), "DIRECTORY");
}

#[test]
fn garbage_and_future_formats_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    with_company(dir.path());
    let file = company_file(dir.path());
    // A file from a newer engine.
    {
        let (db, mut meta) = crate::storage::DbFile::open(
            &file,
            crate::vfs::redb_backend::VfsBackend::new(
                crate::vfs::Vfs::open(&RealVfs::new(), &file, crate::vfs::OpenMode::ReadWrite).unwrap(),
            ),
            1 << 20,
        )
        .unwrap();
        meta.format_version = 99;
        db.write_meta(&meta).unwrap();
    }
    let i = open_real(dir.path());
    let e = i.mount_database("COMPANY", false).unwrap_err();
    assert_eq!(e.code(), "DATABASE");
    assert!(e.to_string().contains("format version 99") && e.to_string().contains(&file.display().to_string()), "{e}");
    drop(i);
    // Not a database file at all.
    std::fs::write(&file, vec![0x5a; 8192]).unwrap();
    let i = open_real(dir.path());
    let e = i.mount_database("COMPANY", false).unwrap_err();
    assert_eq!(e.code(), "DATABASE");
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
}

#[test]
fn a_file_copied_from_another_instance_mounts_with_its_data() {
    let source = tempfile::tempdir().unwrap();
    with_company(source.path());
    let target = tempfile::tempdir().unwrap();
    let i = open_real(target.path());
    // Some journal history of its own, so positions differ from the source's.
    let mut s = i.session();
    for n in 0..10 {
        let _ = i.set(&mut s, &r(&format!("^local({n})")), b"x").unwrap();
    }
    let dest = company_file(target.path());
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(company_file(source.path()), &dest).unwrap();
    i.create_database("COMPANY", None, false).unwrap();
    i.create_namespace("APP", "COMPANY").unwrap();
    i.use_namespace(&mut s, "APP").unwrap();
    assert_eq!(i.get(&s, &r("^Company(1)")).unwrap(), Some(b"Acme".to_vec()));
    let _ = i.set(&mut s, &r("^Company(2)"), b"Beta").unwrap();
    i.journal().flush().unwrap();
    drop(i);
    // After a crash, recovery replays our journal into the adopted file correctly.
    let again = open_real(target.path());
    let mut s = again.session();
    again.use_namespace(&mut s, "APP").unwrap();
    assert_eq!(again.get(&s, &r("^Company(1)")).unwrap(), Some(b"Acme".to_vec()));
    assert_eq!(again.get(&s, &r("^Company(2)")).unwrap(), Some(b"Beta".to_vec()));
}

#[test]
fn a_missing_file_is_a_mount_error_not_a_new_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    with_company(dir.path());
    let file = company_file(dir.path());
    std::fs::rename(&file, dir.path().join("elsewhere.dat")).unwrap();
    let i = open_real(dir.path());
    let listed = i.databases().into_iter().find(|d| d.name == "COMPANY").unwrap();
    assert!(!listed.mounted);
    assert!(listed.error.unwrap().contains("does not exist"));
    assert!(!file.exists(), "no empty replacement was created");
    drop(i);
    // Put back, the data is all there.
    std::fs::rename(dir.path().join("elsewhere.dat"), &file).unwrap();
    let i = open_real(dir.path());
    let mut s = i.session();
    i.use_namespace(&mut s, "APP").unwrap();
    assert_eq!(i.get(&s, &r("^Company(1)")).unwrap(), Some(b"Acme".to_vec()));
}

/// A database missing at startup misses recovery: the journal is kept for it, a runtime
/// mount is refused, and the next start replays it, including the rollback of a
/// transaction that an earlier recovery rolled back in the other databases only.
#[test]
fn a_database_that_missed_recovery_is_recovered_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    with_company(dir.path());
    {
        let i = open_real(dir.path());
        let mut s = i.session();
        i.use_namespace(&mut s, "APP").unwrap();
        let _ = i.set(&mut s, &r("^Company(2)"), b"Beta").unwrap();
        let mut t = i.session();
        i.use_namespace(&mut t, "APP").unwrap();
        let _ = i.tstart(&mut t).unwrap();
        let _ = i.set(&mut t, &r("^Company(1)"), b"uncommitted").unwrap();
        let mut u = i.session();
        let _ = i.tstart(&mut u).unwrap();
        let _ = i.set(&mut u, &r("^user"), b"uncommitted").unwrap();
        let _ = i.set(&mut t, &r("^Company(3)"), b"in the transaction too").unwrap();
        i.journal().flush().unwrap();
        // Crash: no checkpoint, transactions open.
    }
    let file = company_file(dir.path());
    let aside = dir.path().join("aside.dat");
    std::fs::rename(&file, &aside).unwrap();
    {
        let i = open_real(dir.path());
        assert_eq!(i.get(&i.session(), &r("^user")).unwrap(), None, "USER's part rolled back");
        std::fs::rename(&aside, &file).unwrap();
        let e = i.mount_database("COMPANY", false).unwrap_err().to_string();
        assert!(e.contains("restart the engine to recover it"), "{e}");
        i.checkpoint().unwrap(); // purge must keep what COMPANY needs
    }
    let i = open_real(dir.path());
    let mut s = i.session();
    i.use_namespace(&mut s, "APP").unwrap();
    assert_eq!(
        i.get(&s, &r("^Company(1)")).unwrap(),
        Some(b"Acme".to_vec()),
        "the open transaction is rolled back here too"
    );
    assert_eq!(i.get(&s, &r("^Company(2)")).unwrap(), Some(b"Beta".to_vec()), "the acknowledged write is replayed");
    assert_eq!(i.get(&s, &r("^Company(3)")).unwrap(), None);
    assert_eq!(i.get(&i.session(), &r("^user")).unwrap(), None);
}

/// A file another engine has mounted is refused, here reached through a hard link from a
/// second data directory; once dismounted there, it mounts here.
#[test]
fn a_database_file_another_engine_has_mounted_is_refused() {
    let first = tempfile::tempdir().unwrap();
    with_company(first.path());
    let a = open_real(first.path());
    let second = tempfile::tempdir().unwrap();
    let b = open_real(second.path());
    let linked = company_file(second.path());
    std::fs::create_dir_all(linked.parent().unwrap()).unwrap();
    std::fs::hard_link(company_file(first.path()), &linked).unwrap();
    let e = b.create_database("COMPANY", None, false).unwrap_err();
    assert_eq!(e.code(), "DATABASE");
    assert!(e.to_string().contains(&linked.display().to_string()) && e.to_string().contains("in use"), "{e}");
    assert!(!b.databases().iter().any(|d| d.name == "COMPANY"), "nothing configured for a refused file");
    // The same engine cannot mount it twice either (two databases naming one file).
    a.dismount_database("COMPANY").unwrap();
    b.create_database("COMPANY", None, false).unwrap();
    let e = a.mount_database("COMPANY", false).unwrap_err();
    assert!(matches!(e, crate::error::EngineError::DatabaseLocked { .. }), "{e}");
    b.dismount_database("COMPANY").unwrap();
    a.mount_database("COMPANY", false).unwrap();
}

/// A value damaged on disk is a `DATABASE` error naming the file and the node, logged and
/// listed; the database stays mounted, its other nodes read, and a new SET repairs it.
#[test]
fn a_damaged_value_is_an_error_naming_the_file_and_the_node() {
    let dir = tempfile::tempdir().unwrap();
    with_company(dir.path());
    let marker = b"the value that will be damaged on disk".to_vec();
    {
        let i = open_real(dir.path());
        let mut s = i.session();
        i.use_namespace(&mut s, "APP").unwrap();
        let _ = i.set(&mut s, &r("^Company(2,\"name\")"), &marker).unwrap();
        i.shutdown().unwrap();
    }
    let file = company_file(dir.path());
    let mut bytes = std::fs::read(&file).unwrap();
    // Every copy (a copy-on-write file may keep an old page with it; the live one is among them).
    let places: Vec<usize> =
        (0..=bytes.len() - marker.len()).filter(|&at| bytes[at..at + marker.len()] == marker[..]).collect();
    assert!(!places.is_empty(), "the value is in the file");
    for at in places {
        bytes[at + 10] ^= 0xff;
    }
    std::fs::write(&file, &bytes).unwrap();
    let i = open_real(dir.path());
    let mut s = i.session();
    i.use_namespace(&mut s, "APP").unwrap();
    let e = i.get(&s, &r("^Company(2,\"name\")")).unwrap_err();
    assert_eq!(e.code(), "DATABASE");
    let text = e.to_string();
    assert!(text.contains(&file.display().to_string()) && text.contains("^Company(2,\"name\")"), "{text}");
    assert_eq!(i.get(&s, &r("^Company(1)")).unwrap(), Some(b"Acme".to_vec()), "other nodes still read");
    assert_eq!(i.get(&s, &r("^other")).unwrap(), Some(b"kept".to_vec()));
    // A scan that reaches it says so too ($ORDER over the subtree, KILL of it).
    assert_eq!(i.kill(&mut s, &r("^Company(2)")).unwrap_err().code(), "DATABASE");
    let listed = i.databases().into_iter().find(|d| d.name == "COMPANY").unwrap();
    assert!(listed.mounted);
    assert_eq!(listed.corruption.as_deref(), Some(text.as_str()));
    // Overwriting the node repairs it, through the checkpoint into the file.
    let _ = i.set(&mut s, &r("^Company(2,\"name\")"), b"rewritten").unwrap();
    i.shutdown().unwrap();
    drop(i);
    let i = open_real(dir.path());
    let mut s = i.session();
    i.use_namespace(&mut s, "APP").unwrap();
    assert_eq!(i.get(&s, &r("^Company(2,\"name\")")).unwrap(), Some(b"rewritten".to_vec()));
    assert_eq!(i.integrity("COMPANY").unwrap().nodes, 3);
}
