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
        )
        .unwrap();
        meta.format_version = 99;
        db.write_batch(&[], &meta).unwrap();
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
