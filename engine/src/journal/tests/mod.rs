//! Journal tests on the simulated disk: recovery rules, rotation and purge, group commit,
//! and power cuts at every operation.

mod crash;
mod group_commit;
mod received;
mod recovery;
mod rotation;
mod seek;
mod throughput;
mod truncate;

use super::{Journal, JournalOptions, OldValue, Position, RecordBody};
use crate::vfs::sim::SimVfs;
use crate::vfs::Vfs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn options(file_size_limit: u64) -> JournalOptions {
    JournalOptions {
        dir: PathBuf::from("/data/journal"),
        file_size_limit,
        sync_interval: Duration::from_millis(20),
        buffer_flush_bytes: 1 << 20,
    }
}

/// The body the tests append at `position`: deterministic, of varying size and kind.
pub(super) fn body_for(position: Position) -> RecordBody {
    let key = format!("^g\0{position}").into_bytes();
    match position % 5 {
        0 => RecordBody::Kill { db: "db".into(), key, old: Some(vec![(b"a".to_vec(), vec![position as u8; 3])]) },
        1 => RecordBody::ZKill { db: "db".into(), key, old: OldValue::Absent },
        2 => RecordBody::TStart,
        _ => RecordBody::Set {
            db: "db".into(),
            key,
            value: vec![position as u8; (position % 37) as usize],
            old: OldValue::Present(vec![1, 2]),
        },
    }
}

pub(super) fn sim(seed: u64) -> (SimVfs, Arc<dyn Vfs>) {
    let sim = SimVfs::new(seed);
    let vfs: Arc<dyn Vfs> = Arc::new(sim.clone());
    (sim, vfs)
}

pub(super) fn append_n(journal: &Journal, n: u64) -> Position {
    let mut last = 0;
    for _ in 0..n {
        let position = journal.last_position() + 1;
        last = journal.append(7, &body_for(position));
        assert_eq!(last, position);
    }
    last
}

/// Reads every record from `from` and checks positions and bodies.
pub(super) fn check_records(journal: &Journal, from: Position) -> Vec<Position> {
    let mut positions = Vec::new();
    for r in journal.read_from(from).unwrap() {
        let r = r.unwrap();
        assert_eq!(r.body, body_for(r.position), "record {}", r.position);
        assert_eq!(r.txn, 7);
        positions.push(r.position);
    }
    let expected: Vec<Position> = (from.max(1)..=journal.durable_position()).collect();
    assert_eq!(positions, expected);
    positions
}
