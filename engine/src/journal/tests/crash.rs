//! Power cuts at every mutating operation, for several seeds: every record reported
//! durable before the cut survives, intact, with contiguous positions.

use super::*;
use crate::error::Result;

const FILE_LIMIT: u64 = 700;

/// Appends and flushes in batches, purging now and then; returns the last durable position
/// reported and the highest `keep_from` passed to purge, until the first error.
fn workload(vfs: Arc<dyn Vfs>, seed: u64) -> (Position, Position, Result<()>) {
    let mut durable = 0;
    let mut kept = 0;
    let journal = match Journal::open(vfs, options(FILE_LIMIT)) {
        Ok(j) => j,
        Err(e) => return (0, 0, Err(e)),
    };
    for batch in 0..12u64 {
        append_n(&journal, 1 + (seed + batch) % 6);
        match journal.flush() {
            Ok(d) => durable = d,
            Err(e) => return (durable, kept, Err(e)),
        }
        if batch % 4 == 3 {
            kept = durable.saturating_sub(8);
            if let Err(e) = journal.purge(kept) {
                return (durable, kept, Err(e));
            }
        }
    }
    (durable, kept, Ok(()))
}

fn check_after_crash(vfs: Arc<dyn Vfs>, durable: Position, kept: Position, context: &str) {
    let journal =
        Journal::open(vfs.clone(), options(FILE_LIMIT)).unwrap_or_else(|e| panic!("{context}: reopen failed: {e}"));
    assert!(
        journal.durable_position() >= durable,
        "{context}: lost durable records: {} < {durable}",
        journal.durable_position()
    );
    let first = journal.segments()[0].first_position;
    assert!(first <= kept.max(1), "{context}: purge removed records >= keep_from {kept} (first kept {first})");
    let from = if durable > 0 { first } else { 1 };
    check_records(&journal, from);
    // The journal goes on from where it stopped, and survives another reopen.
    let next = append_n(&journal, 3);
    journal.flush().unwrap();
    drop(journal);
    let journal = Journal::open(vfs, options(FILE_LIMIT)).unwrap();
    assert_eq!(journal.durable_position(), next, "{context}");
    check_records(&journal, from);
}

#[test]
fn durable_records_survive_a_power_cut_at_every_operation() {
    for seed in 0..16u64 {
        let (dry, _) = sim(seed);
        let (_, _, result) = workload(Arc::new(dry.clone()), seed);
        result.unwrap();
        let total = dry.operations();
        assert!(total > 40, "the workload should exercise rotation and purge ({total} operations)");
        for cut in 0..=total {
            let (sim, vfs) = sim(seed);
            sim.fail_after(cut);
            let (durable, kept, result) = workload(vfs, seed);
            assert!(result.is_err() || cut == total, "seed {seed} cut {cut}: no error");
            let context = format!("seed {seed}, power cut after {cut} of {total} operations");
            let crashed = sim.crash();
            check_after_crash(Arc::new(crashed), durable, kept, &context);
        }
    }
}
