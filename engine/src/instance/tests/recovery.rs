use super::{open, r};
use crate::vfs::sim::SimVfs;
use std::sync::Arc;

#[test]
fn unflushed_checkpoint_is_rebuilt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(SimVfs::new(7));
    let i = open(dir.path(), vfs.clone());
    let mut s = i.session();
    for n in 0..100 {
        let _ = i.set(&mut s, &r(&format!("^k({n})")), format!("v{n}").as_bytes()).unwrap();
    }
    i.journal().flush().unwrap();
    drop(i);
    // Nothing was checkpointed: the database file is empty, the journal has it all.
    let again = open(dir.path(), Arc::new(vfs.crash()));
    let s = again.session();
    for n in 0..100 {
        assert_eq!(again.get(&s, &r(&format!("^k({n})"))).unwrap(), Some(format!("v{n}").into_bytes()));
    }
}

#[test]
fn an_open_transaction_is_rolled_back_at_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(SimVfs::new(8));
    let i = open(dir.path(), vfs.clone());
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^acct(1)"), b"100").unwrap();
    let _ = i.tstart(&mut s).unwrap();
    let _ = i.set(&mut s, &r("^acct(1)"), b"50").unwrap();
    let _ = i.set(&mut s, &r("^acct(2)"), b"50").unwrap();
    // The half-done transaction even reaches the database file.
    i.checkpoint().unwrap();
    i.journal().flush().unwrap();
    drop(i);
    let after_crash = Arc::new(vfs.crash());
    let again = open(dir.path(), after_crash.clone());
    let s = again.session();
    assert_eq!(again.get(&s, &r("^acct(1)")).unwrap(), Some(b"100".to_vec()));
    assert_eq!(again.get(&s, &r("^acct(2)")).unwrap(), None);
    // And a second recovery finds nothing left to do.
    drop(again);
    let third = open(dir.path(), Arc::new(after_crash.crash()));
    assert_eq!(third.get(&third.session(), &r("^acct(1)")).unwrap(), Some(b"100".to_vec()));
}

/// Old values beyond one journal record's limit are split over several KILL records;
/// rollback, online and at recovery, restores every node.
#[test]
fn a_transactional_kill_of_a_large_subtree_rolls_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(SimVfs::new(9));
    let i = open(dir.path(), vfs.clone());
    let mut s = i.session();
    let big = vec![b'z'; 2 << 20];
    for n in 0..6 {
        let _ = i.set(&mut s, &r(&format!("^big({n})")), &big).unwrap();
    }
    let _ = i.tstart(&mut s).unwrap();
    let _ = i.kill(&mut s, &r("^big")).unwrap();
    assert_eq!(i.data(&s, &r("^big")).unwrap(), 0);
    let _ = i.trollback(&mut s).unwrap();
    assert_eq!(i.get(&s, &r("^big(5)")).unwrap().map(|v| v.len()), Some(big.len()));

    let _ = i.tstart(&mut s).unwrap();
    let _ = i.kill(&mut s, &r("^big")).unwrap();
    i.journal().flush().unwrap();
    drop(i);
    let again = open(dir.path(), Arc::new(vfs.crash()));
    let s = again.session();
    for n in 0..6 {
        assert_eq!(again.get(&s, &r(&format!("^big({n})"))).unwrap().map(|v| v.len()), Some(big.len()), "^big({n})");
    }
}

/// Purge never removes a journal file that recovery needs or that holds an open
/// transaction's TSTART; once the transaction ends and a checkpoint passes, it goes.
#[test]
fn purge_keeps_files_with_open_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(SimVfs::new(10));
    let i = open(dir.path(), vfs.clone());
    i.update_config(|c| {
        c.journal.file_size_mb = 1;
        c.journal.purge_after_minutes = 0;
        Ok(())
    })
    .unwrap();
    drop(i);
    let i = open(dir.path(), vfs.clone());
    let mut tx = i.session();
    let _ = i.tstart(&mut tx).unwrap();
    let _ = i.set(&mut tx, &r("^open"), b"pending").unwrap();
    let first = i.journal().segments()[0].path.clone();
    let mut s = i.session();
    let value = vec![b'v'; 32 * 1024];
    for n in 0..200 {
        let _ = i.set(&mut s, &r(&format!("^fill({n})")), &value).unwrap();
        i.journal().flush().unwrap(); // rotation happens at flush
    }
    i.checkpoint().unwrap();
    let segments = i.journal().segments();
    assert!(segments.len() > 3, "the workload spans several files");
    assert_eq!(segments[0].path, first, "the file with the open TSTART is kept");
    let _ = i.tcommit(&mut tx).unwrap();
    i.checkpoint().unwrap();
    let after = i.journal().segments();
    assert!(after.len() < segments.len(), "files no longer needed are purged");
    assert_ne!(after[0].path, first);
    assert_eq!(i.get(&s, &r("^open")).unwrap(), Some(b"pending".to_vec()));
}
