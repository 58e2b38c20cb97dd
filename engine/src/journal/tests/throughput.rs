//! Recovery speed: validating and reading must do at least a million records a second.
//! Timing is meaningless in debug builds, so this runs on demand:
//! `cargo test --release -p mirrorlab-engine -- --ignored decode_throughput`.

use super::*;
use std::time::Instant;

#[test]
#[ignore = "timing test: run in release builds"]
fn decode_throughput() {
    let n = 1_000_000u64;
    let (_sim, vfs) = sim(30);
    let journal = Journal::open(vfs.clone(), options(4 << 30)).unwrap();
    append_n(&journal, n);
    journal.flush().unwrap();
    drop(journal);

    let start = Instant::now();
    let journal = Journal::open(vfs, options(4 << 30)).unwrap();
    let validate = start.elapsed();
    assert_eq!(journal.durable_position(), n);

    let start = Instant::now();
    let mut count = 0u64;
    for r in journal.read_from(1).unwrap() {
        count += r.unwrap().position & 1;
    }
    let read = start.elapsed();
    assert_eq!(count, n / 2);
    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!("validate at open: {:.0} records/s; read_from: {:.0} records/s", rate(validate), rate(read));
    assert!(rate(validate) >= 1e6 && rate(read) >= 1e6);
}
