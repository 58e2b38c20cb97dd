//! Recovery speed: writes N journal records without any checkpoint, then reopens the
//! instance and reports how fast recovery replays them.
//!
//! `cargo run --release -p mirrorlab-engine --example recovery_bench -- 2000000`

use engine::globals::reference::parse;
use engine::instance::{Instance, InstanceOptions};
use engine::vfs::real::RealVfs;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || {
        Instance::open(InstanceOptions {
            data_dir: dir.path().to_path_buf(),
            vfs: Arc::new(RealVfs::new()),
            background: false,
        })
        .expect("open")
    };
    let instance = open();
    let mut s = instance.session();
    let started = Instant::now();
    for i in 0..n {
        let r = parse(&format!("^bench({})", i % 100_000)).expect("reference");
        let _ = instance.set(&mut s, &r, format!("value-{i:058}").as_bytes()).expect("set");
    }
    instance.journal().flush().expect("flush");
    println!("wrote {n} journal records (64-byte values) in {:.2} s", started.elapsed().as_secs_f64());
    drop(instance); // no shutdown: nothing reached the database file

    let started = Instant::now();
    let reopened = open();
    let total = started.elapsed().as_secs_f64();
    let r = reopened.recovery_report();
    println!(
        "recovery: replayed {} records in {:.3} s = {:.2} M records/s; database files written in {:.3} s; open total {:.3} s",
        r.records_read,
        r.replay_seconds,
        r.records_read as f64 / r.replay_seconds / 1e6,
        r.checkpoint_seconds,
        total
    );
}
