use super::{r, sim_instance};
use crate::globals::{Number, Subscript};
use crate::instance::{Direction, Durability};

fn num(n: &str) -> Subscript {
    Subscript::Number(n.into())
}
fn text(s: &str) -> Subscript {
    Subscript::String(s.as_bytes().to_vec())
}

#[test]
fn set_get_data_kill_zkill() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^a"), b"top").unwrap();
    let _ = i.set(&mut s, &r("^a(1)"), b"one").unwrap();
    let _ = i.set(&mut s, &r("^a(1,\"x\")"), b"x").unwrap();
    let _ = i.set(&mut s, &r("^a(2,3)"), b"deep").unwrap();
    assert_eq!(i.get(&s, &r("^a(1)")).unwrap(), Some(b"one".to_vec()));
    assert_eq!(i.data(&s, &r("^a(1)")).unwrap(), 11);
    assert_eq!(i.data(&s, &r("^a(2)")).unwrap(), 10);
    assert_eq!(i.data(&s, &r("^a(2,3)")).unwrap(), 1);
    assert_eq!(i.data(&s, &r("^a(9)")).unwrap(), 0);
    let _ = i.zkill(&mut s, &r("^a(1)")).unwrap();
    assert_eq!(i.data(&s, &r("^a(1)")).unwrap(), 10);
    let _ = i.kill(&mut s, &r("^a(1)")).unwrap();
    assert_eq!(i.data(&s, &r("^a(1)")).unwrap(), 0);
    assert_eq!(i.get(&s, &r("^a")).unwrap(), Some(b"top".to_vec()));
    let _ = i.kill(&mut s, &r("^a")).unwrap();
    assert_eq!(i.data(&s, &r("^a")).unwrap(), 0);
}

#[test]
fn order_and_query_follow_collation() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    for sub in ["10", "2", "-1", ".5", "\"b\"", "\"a\"", "2,\"k\""] {
        let _ = i.set(&mut s, &r(&format!("^o({sub})")), b"v").unwrap();
    }
    let parent = r("^o");
    let mut seen = vec![];
    let mut cur = None;
    while let Some(next) = i.order(&s, &parent, cur.as_ref(), Direction::Forward).unwrap() {
        seen.push(next.clone());
        cur = Some(next);
    }
    assert_eq!(seen, vec![num("-1"), num(".5"), num("2"), num("10"), text("a"), text("b")]);
    assert_eq!(i.order(&s, &parent, None, Direction::Backward).unwrap(), Some(text("b")));
    assert_eq!(i.order(&s, &parent, Some(&num("2")), Direction::Backward).unwrap(), Some(num(".5")));
    let q = i.query(&s, &r("^o(2)"), Direction::Forward).unwrap().unwrap();
    assert_eq!(crate::globals::reference::format(&q), "^o(2,\"k\")");
    let q = i.query(&s, &r("^o(10)"), Direction::Backward).unwrap().unwrap();
    assert_eq!(crate::globals::reference::format(&q), "^o(2,\"k\")");
    assert_eq!(i.query(&s, &r("^o(\"b\")"), Direction::Forward).unwrap(), None);
}

#[test]
fn increment_is_exact() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    for _ in 0..3 {
        let _ = i.increment(&mut s, &r("^n"), Number::from(1)).unwrap();
    }
    let (v, _) = i.increment(&mut s, &r("^n"), Number::parse_prefix(b"0.5")).unwrap();
    assert_eq!(v.to_canonical(), "3.5");
    assert_eq!(i.get(&s, &r("^n")).unwrap(), Some(b"3.5".to_vec()));
}

/// `$INCREMENT` / INCRBY past the engine's range is `MAXNUMBER` and changes nothing; it
/// used to saturate, so the node silently stopped counting at 10^300 times 36 digits.
#[test]
fn increment_beyond_the_range_is_maxnumber_and_changes_nothing() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^big"), b"1e300").unwrap();
    let nine = format!("9{}", "0".repeat(300));
    let (v, _) = i.increment(&mut s, &r("^big"), Number::parse_prefix(b"8e300")).unwrap();
    assert_eq!(v.to_canonical(), nine, "9e300 is in range");
    // 1e301, as a literal is refused (docs/design/security.md); it used to saturate to 1e300.
    let e = i.increment(&mut s, &r("^big"), Number::parse_prefix(b"1e300")).unwrap_err();
    assert_eq!(e.code(), "MAXNUMBER", "{e}");
    assert_eq!(i.get(&s, &r("^big")).unwrap(), Some(nine.into_bytes()), "unchanged");
    // A stored value beyond the range (values are not checked; subscripts are).
    let _ = i.set(&mut s, &r("^huge"), b"1e400").unwrap();
    let e = i.increment(&mut s, &r("^huge"), Number::from(1)).unwrap_err();
    assert_eq!(e.code(), "MAXNUMBER", "{e}");
    assert!(e.to_string().contains("1e400"), "{e}");
    assert_eq!(i.get(&s, &r("^huge")).unwrap(), Some(b"1e400".to_vec()));
}

#[test]
fn mappings_route_reads_writes_and_traversal() {
    let (_d, _v, i) = sim_instance();
    i.create_database("COMPANY", None, false).unwrap();
    i.create_database("ARCHIVE", None, false).unwrap();
    i.create_namespace("PHONEBOOK", "USER").unwrap();
    i.add_mapping("PHONEBOOK", "Company*", "COMPANY").unwrap();
    i.add_mapping("PHONEBOOK", "Log(2024):(2025)", "ARCHIVE").unwrap();
    let mut s = i.session();
    i.use_namespace(&mut s, "phonebook").unwrap();
    let _ = i.set(&mut s, &r("^Company(1)"), b"Acme").unwrap();
    for y in [2023, 2024, 2025] {
        let _ = i.set(&mut s, &r(&format!("^Log({y})")), y.to_string().as_bytes()).unwrap();
    }
    // Seen through USER, only the default database's part of ^Log exists.
    let mut u = i.session();
    assert_eq!(i.get(&u, &r("^Company(1)")).unwrap(), None);
    assert_eq!(i.get(&u, &r("^Log(2024)")).unwrap(), None);
    assert_eq!(i.get(&u, &r("^Log(2025)")).unwrap(), Some(b"2025".to_vec()));
    // Through PHONEBOOK, traversal crosses databases in collation order.
    let mut seen = vec![];
    let mut cur = None;
    while let Some(next) = i.order(&s, &r("^Log"), cur.as_ref(), Direction::Forward).unwrap() {
        seen.push(next.clone());
        cur = Some(next);
    }
    assert_eq!(seen, vec![num("2023"), num("2024"), num("2025")]);
    assert_eq!(
        i.database("ARCHIVE").unwrap().get(&crate::globals::key::encode(&r("^Log(2024)")).unwrap()).unwrap(),
        Some(b"2024".to_vec())
    );
    // ^Log(2024) also exists in USER, hidden from PHONEBOOK by the mapping; KILL through
    // PHONEBOOK must leave it, and everything PHONEBOOK sees must go.
    let _ = i.set(&mut u, &r("^Log(2024,\"in USER\")"), b"hidden").unwrap();
    let _ = i.kill(&mut s, &r("^Log")).unwrap();
    assert_eq!(i.data(&s, &r("^Log")).unwrap(), 0);
    assert_eq!(i.get(&u, &r("^Log(2024,\"in USER\")")).unwrap(), Some(b"hidden".to_vec()));
    assert_eq!(i.get(&u, &r("^Log(2025)")).unwrap(), None);
    assert!(i.use_namespace(&mut u, "NOPE").is_err());
    let e = i.add_mapping("PHONEBOOK", "X*", "MISSING").unwrap_err();
    assert!(e.to_string().contains("MISSING"), "{e}");
}

#[test]
fn read_only_database_refuses_writes_with_protect() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^p"), b"1").unwrap();
    i.mount_database("USER", true).unwrap();
    let e = i.set(&mut s, &r("^p"), b"2").unwrap_err();
    assert_eq!(e.code(), "PROTECT");
    assert_eq!(i.kill(&mut s, &r("^p")).unwrap_err().code(), "PROTECT");
    assert_eq!(i.zkill(&mut s, &r("^p")).unwrap_err().code(), "PROTECT");
    assert_eq!(i.increment(&mut s, &r("^p"), Number::from(1)).unwrap_err().code(), "PROTECT");
    assert_eq!(i.get(&s, &r("^p")).unwrap(), Some(b"1".to_vec()));
    i.mount_database("USER", false).unwrap();
    let _ = i.set(&mut s, &r("^p"), b"2").unwrap();
}

#[test]
fn transactions_commit_rollback_and_nest() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^t(1)"), b"before").unwrap();
    assert_eq!(i.tstart(&mut s).unwrap(), 1);
    let _ = i.set(&mut s, &r("^t(1)"), b"during").unwrap();
    let _ = i.set(&mut s, &r("^t(2)"), b"new").unwrap();
    let _ = i.kill(&mut s, &r("^t(1)")).unwrap();
    let ack = i.trollback(&mut s).unwrap();
    assert!(!ack.wait);
    assert_eq!(i.get(&s, &r("^t(1)")).unwrap(), Some(b"before".to_vec()));
    assert_eq!(i.get(&s, &r("^t(2)")).unwrap(), None);
    assert_eq!(i.tstart(&mut s).unwrap(), 1);
    assert_eq!(i.tstart(&mut s).unwrap(), 2);
    let _ = i.set(&mut s, &r("^t(3)"), b"x").unwrap();
    assert!(!i.tcommit(&mut s).unwrap().wait, "inner commit only lowers the level");
    assert_eq!(s.tlevel(), 1);
    assert!(i.tcommit(&mut s).unwrap().wait, "the outer commit waits for its fsync");
    assert_eq!(s.tlevel(), 0);
    assert_eq!(i.tcommit(&mut s).unwrap_err().code(), "NOTRANSACTION");
    // A connection that goes away mid-transaction is rolled back.
    let _ = i.tstart(&mut s).unwrap();
    let _ = i.set(&mut s, &r("^t(4)"), b"orphan").unwrap();
    i.end_session(&mut s);
    assert_eq!(i.get(&i.session(), &r("^t(4)")).unwrap(), None);
}

#[test]
fn durability_always_makes_plain_writes_wait() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    assert!(!i.set(&mut s, &r("^d"), b"1").unwrap().wait);
    s.durability = Some(Durability::Always);
    assert!(i.set(&mut s, &r("^d"), b"2").unwrap().wait);
}

#[test]
fn value_and_key_limits_are_enforced() {
    let (_d, _v, i) = sim_instance();
    let mut s = i.session();
    let big = vec![b'x'; crate::globals::limits::MAX_VALUE_BYTES + 1];
    assert_eq!(i.set(&mut s, &r("^big"), &big).unwrap_err().code(), "MAXSTRING");
}

#[test]
fn a_database_is_not_dismounted_under_an_open_transaction() {
    let (_d, _v, i) = sim_instance();
    i.create_database("OTHER", None, false).unwrap();
    let mut s = i.session();
    let _ = i.tstart(&mut s).unwrap();
    let _ = i.set(&mut s, &r("^t"), b"pending").unwrap();
    let e = i.dismount_database("OTHER").unwrap_err();
    assert!(e.to_string().contains("1 transaction(s) are open"), "{e}");
    let _ = i.trollback(&mut s).unwrap();
    i.dismount_database("OTHER").unwrap();
    assert_eq!(i.get(&s, &r("^t")).unwrap(), None);
}

#[test]
fn after_a_journal_failure_no_write_is_acknowledged() {
    let (_d, vfs, i) = sim_instance();
    let mut s = i.session();
    let _ = i.set(&mut s, &r("^before"), b"1").unwrap();
    vfs.fail_after(0);
    assert!(i.journal().flush().is_err(), "the disk is gone");
    let e = i.set(&mut s, &r("^after"), b"2").unwrap_err();
    assert_eq!(e.code(), "DISKHARD");
    assert!(e.to_string().contains("accepts no more writes; the engine must stop"), "{e}");
    assert_eq!(i.get(&s, &r("^after")).unwrap(), None, "the refused write is not visible");
}

/// `storage.cache_mb` bounds what a database keeps of what it read: a keyspace many times
/// the budget reads back whole (from the file for what is not cached) while the cache
/// stays within it. A budget of 0 is refused.
#[test]
fn the_cache_budget_bounds_memory_and_every_read_is_still_right() {
    let (_d, _v, i) = sim_instance();
    i.update_config(|c| {
        c.storage.cache_mb = 1;
        Ok(())
    })
    .unwrap();
    let e = i
        .update_config(|c| {
            c.storage.cache_mb = 0;
            Ok(())
        })
        .unwrap_err();
    assert!(e.to_string().contains("storage.cache_mb"), "{e}");
    let mut s = i.session();
    let value = |n: u32| format!("{n:0>200}").into_bytes();
    for n in 0..20_000u32 {
        let _ = i.set(&mut s, &r(&format!("^k({n})")), &value(n)).unwrap();
    }
    i.checkpoint().unwrap();
    let db = i.database("USER").unwrap();
    assert!(db.cache_bytes() <= 1 << 20, "after the checkpoint: {} bytes", db.cache_bytes());
    for round in 0..2 {
        for n in (0..20_000u32).step_by(7) {
            assert_eq!(i.get(&s, &r(&format!("^k({n})"))).unwrap(), Some(value(n)), "round {round}, key {n}");
            assert!(db.cache_bytes() <= 1 << 20, "{} bytes after reading {n}", db.cache_bytes());
        }
    }
}
