//! Power cuts at any disk operation (journal write, fsync, database-file write, directory
//! sync) during a transactional workload. After recovery:
//! - every transaction whose commit was acknowledged is present;
//! - no transaction is partial (a money-transfer workload keeps its total);
//! - rolled-back transactions, and those cut mid-rollback, left no trace.
//!
//! Each case is a seed; a failure prints the seed and cut point that replay it.

use super::{open, r};
use crate::instance::Instance;
use crate::vfs::sim::{SimRng, SimVfs};
use std::collections::BTreeSet;
use std::sync::Arc;

const ACCOUNTS: u64 = 5;
const OPENING_BALANCE: i64 = 1000;

/// What the workload saw acknowledged before the cut.
#[derive(Default)]
struct Acked {
    /// Transactions `^t(i,...)` whose commit was durable.
    committed: BTreeSet<u64>,
    /// Every transaction started (committed or not).
    started: BTreeSet<u64>,
    /// Transactions rolled back on purpose (started too).
    rolled_back: BTreeSet<u64>,
    /// Plain sets `^p(i)` acknowledged durable.
    plain: BTreeSet<u64>,
    /// The setup (opening balances) was durable.
    setup_done: bool,
}

const WRITES_PER_TXN: u64 = 3;

/// Runs the workload until the disk fails; returns what was acknowledged.
fn workload(i: &Instance, seed: u64) -> Acked {
    let mut acked = Acked::default();
    let mut rng = SimRng::new(seed);
    let _ = run(i, &mut rng, &mut acked);
    acked
}

fn run(i: &Instance, rng: &mut SimRng, acked: &mut Acked) -> crate::error::Result<()> {
    let mut s = i.session();
    let _ = i.tstart(&mut s)?;
    for a in 0..ACCOUNTS {
        let _ = i.set(&mut s, &r(&format!("^acct({a})")), OPENING_BALANCE.to_string().as_bytes())?;
    }
    let ack = i.tcommit(&mut s)?;
    i.journal().flush_to(ack.position)?;
    acked.setup_done = true;
    for n in 0..40u64 {
        match rng.below(6) {
            0 | 1 => {
                // A transaction of fresh keys, committed.
                acked.started.insert(n);
                let _ = i.tstart(&mut s)?;
                for j in 0..WRITES_PER_TXN {
                    let _ = i.set(&mut s, &r(&format!("^t({n},{j})")), b"v")?;
                    maybe_checkpoint(i, rng)?;
                }
                let ack = i.tcommit(&mut s)?;
                i.journal().flush_to(ack.position)?;
                acked.committed.insert(n);
            }
            2 => {
                // A transfer between two accounts: the total never changes.
                let (from, to) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
                let amount = rng.below(100) as i64;
                let _ = i.tstart(&mut s)?;
                for (acct, delta) in [(from, -amount), (to, amount)] {
                    let reference = r(&format!("^acct({acct})"));
                    let _ = i.increment(&mut s, &reference, crate::globals::Number::from(delta))?;
                    maybe_checkpoint(i, rng)?;
                }
                let ack = i.tcommit(&mut s)?;
                i.journal().flush_to(ack.position)?;
            }
            3 => {
                // Kill an earlier committed transaction's keys, then roll back.
                acked.started.insert(n);
                acked.rolled_back.insert(n);
                let _ = i.tstart(&mut s)?;
                if let Some(&victim) =
                    acked.committed.iter().nth(rng.below(acked.committed.len().max(1) as u64) as usize)
                {
                    let _ = i.kill(&mut s, &r(&format!("^t({victim})")))?;
                }
                let _ = i.set(&mut s, &r(&format!("^t({n},0)")), b"never")?;
                maybe_checkpoint(i, rng)?;
                let _ = i.trollback(&mut s)?;
            }
            4 => {
                let ack = i.set(&mut s, &r(&format!("^p({n})")), b"plain")?;
                i.journal().flush_to(ack.position)?;
                acked.plain.insert(n);
            }
            _ => i.checkpoint()?,
        }
    }
    Ok(())
}

/// Checkpoints in the middle of things: open transactions and unsynced journal records
/// are exactly where the write-ahead rule matters.
fn maybe_checkpoint(i: &Instance, rng: &mut SimRng) -> crate::error::Result<()> {
    if rng.below(3) == 0 {
        i.checkpoint()?;
    }
    Ok(())
}

fn check(i: &Instance, acked: &Acked, context: &str) {
    let s = i.session();
    let get = |text: &str| i.get(&s, &r(text)).unwrap_or_else(|e| panic!("{context}: reading {text}: {e}"));
    if acked.setup_done {
        let total: i64 = (0..ACCOUNTS)
            .map(|a| String::from_utf8(get(&format!("^acct({a})")).expect("balance")).unwrap().parse::<i64>().unwrap())
            .sum();
        assert_eq!(total, OPENING_BALANCE * ACCOUNTS as i64, "{context}: a transfer was half applied");
    }
    for n in &acked.started {
        let present: Vec<bool> = (0..WRITES_PER_TXN).map(|j| get(&format!("^t({n},{j})")).is_some()).collect();
        if acked.rolled_back.contains(n) {
            assert!(get(&format!("^t({n},0)")).is_none(), "{context}: rolled-back transaction {n} is visible");
            continue;
        }
        assert!(
            present.iter().all(|p| *p) || present.iter().all(|p| !*p),
            "{context}: transaction {n} is partial: {present:?}"
        );
        if acked.committed.contains(n) {
            assert!(present[0], "{context}: acknowledged transaction {n} was lost");
        }
    }
    for n in &acked.plain {
        assert!(get(&format!("^p({n})")).is_some(), "{context}: acknowledged durable write ^p({n}) was lost");
    }
}

#[test]
fn power_cut_at_any_disk_operation_loses_no_acknowledged_commit() {
    let seeds: u64 = std::env::var("CRASH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut cases = 0;
    for seed in 0..seeds {
        // A run without a cut tells how many disk operations the workload makes.
        let total = {
            let dir = tempfile::tempdir().unwrap();
            let vfs = Arc::new(SimVfs::new(seed));
            let i = open(dir.path(), vfs.clone());
            let before = vfs.operations();
            workload(&i, seed);
            vfs.operations() - before
        };
        let mut cut_rng = SimRng::new(seed ^ 0x5eed);
        for _ in 0..8 {
            let cut = cut_rng.below(total + 1);
            let dir = tempfile::tempdir().unwrap();
            let vfs = Arc::new(SimVfs::new(seed));
            let i = open(dir.path(), vfs.clone());
            vfs.fail_after(cut);
            let acked = workload(&i, seed);
            drop(i);
            let context = format!("seed {seed}, cut after {cut} of {total} operations (replay: CRASH_SEEDS={} cargo test -p mirrorlab-engine power_cut)", seed + 1);
            let after = Arc::new(vfs.crash());
            let recovered = crate::instance::Instance::open(crate::instance::InstanceOptions {
                data_dir: dir.path().to_path_buf(),
                vfs: after.clone(),
                background: false,
            })
            .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
            check(&recovered, &acked, &context);
            // Recovery itself is crash safe: cut again right after, recover again.
            drop(recovered);
            let twice = open(dir.path(), Arc::new(after.crash()));
            check(&twice, &acked, &format!("{context}, second recovery"));
            cases += 1;
        }
    }
    assert!(cases >= 10);
}
