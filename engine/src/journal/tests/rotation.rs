use super::*;
use crate::journal::{dump_segment, list_segments};

#[test]
fn append_flush_reopen_reads_everything() {
    let (_sim, vfs) = sim(1);
    let journal = Journal::open(vfs.clone(), options(1 << 20)).unwrap();
    assert_eq!((journal.last_position(), journal.durable_position()), (0, 0));
    append_n(&journal, 100);
    assert_eq!(journal.last_position(), 100);
    assert_eq!(journal.durable_position(), 0);
    assert!(journal.buffered_bytes() > 0);
    assert_eq!(journal.flush().unwrap(), 100);
    assert_eq!(journal.buffered_bytes(), 0);
    drop(journal);
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    assert_eq!((journal.last_position(), journal.durable_position()), (100, 100));
    assert_eq!(check_records(&journal, 1).len(), 100);
    assert_eq!(journal.append(7, &body_for(101)), 101);
}

fn rotated_journal(vfs: &Arc<dyn Vfs>) -> Journal {
    let journal = Journal::open(vfs.clone(), options(1024)).unwrap();
    for _ in 0..40 {
        append_n(&journal, 5);
        journal.flush().unwrap();
    }
    journal
}

#[test]
fn rotation_by_size_keeps_positions_contiguous() {
    let (_sim, vfs) = sim(2);
    let journal = rotated_journal(&vfs);
    let segments = journal.segments();
    assert!(segments.len() >= 4, "{segments:?}");
    assert_eq!(segments[0].first_position, 1);
    for pair in segments.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert_eq!(pair[1].first_position, pair[0].last_position.unwrap() + 1);
        assert!(pair[0].bytes >= 1024, "rotated before the size limit: {pair:?}");
    }
    assert_eq!(segments.last().unwrap().last_position, Some(200));
    let total: u64 = segments.iter().map(|s| s.records).sum();
    assert_eq!(total, 200);
    drop(journal);
    let journal = Journal::open(vfs.clone(), options(1024)).unwrap();
    assert_eq!(journal.segments(), segments);
    assert_eq!(list_segments(vfs.as_ref(), &options(0).dir).unwrap(), segments);
    let dumped = dump_segment(vfs.as_ref(), &segments[1].path).unwrap();
    assert_eq!(dumped.len() as u64, segments[1].records);
    assert_eq!(dumped[0].0, crate::journal::segment::HEADER_BYTES);
    assert_eq!(dumped[0].1.position, segments[1].first_position);
}

#[test]
fn read_from_starts_at_any_position() {
    let (_sim, vfs) = sim(3);
    let journal = rotated_journal(&vfs);
    let segments = journal.segments();
    let mut starts = vec![0, 1, 2, 57, 199, 200];
    for s in &segments {
        starts.push(s.first_position);
        starts.push(s.last_position.unwrap());
    }
    for from in starts {
        let positions = check_records(&journal, from);
        assert_eq!(positions.first().copied(), Some(from.max(1)));
    }
    assert_eq!(journal.read_from(201).unwrap().count(), 0);
}

#[test]
fn read_from_stops_at_the_durable_position() {
    let (_sim, vfs) = sim(4);
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    append_n(&journal, 10);
    journal.flush().unwrap();
    append_n(&journal, 10);
    assert_eq!(check_records(&journal, 1).len(), 10);
}

#[test]
fn purge_removes_only_whole_old_segments() {
    let (_sim, vfs) = sim(5);
    let journal = rotated_journal(&vfs);
    let before = journal.segments();
    let keep_from = before[2].first_position + 1;
    let removed = journal.purge(keep_from).unwrap();
    assert_eq!(removed, vec![before[0].path.clone(), before[1].path.clone()]);
    for path in &removed {
        assert!(!vfs.exists(path));
    }
    let after = journal.segments();
    assert_eq!(after, before[2..].to_vec());
    assert!(after[0].first_position <= keep_from);
    check_records(&journal, keep_from);
    assert!(journal.read_from(1).is_err(), "purged positions cannot be read");
    // Even a keep_from beyond everything keeps the current segment.
    journal.purge(u64::MAX).unwrap();
    let last = journal.segments();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0], *before.last().unwrap());
    drop(journal);
    let journal = Journal::open(vfs, options(1024)).unwrap();
    assert_eq!(journal.segments(), last);
    check_records(&journal, last[0].first_position);
}

/// Regression: a reader racing the writer's rotation read past the end of the segment the
/// rotation had just trimmed ("read past the end"), because it sized reads from a length
/// it had seen earlier.
#[test]
fn reading_while_the_writer_rotates_never_fails() {
    let (_sim, vfs) = super::sim(31);
    let journal = std::sync::Arc::new(crate::journal::Journal::open(vfs, super::options(8 << 10)).unwrap());
    let writer = {
        let j = journal.clone();
        std::thread::spawn(move || {
            for _ in 0..150 {
                super::append_n(&j, 7);
                j.flush().unwrap();
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 5 {
        let mut count = 0;
        for record in journal.read_from(1).unwrap() {
            record.unwrap(); // every record read while the writer rotates must be intact
            count += 1;
        }
        assert!(count <= journal.durable_position());
        reads += 1;
    }
    writer.join().unwrap();
    assert!(journal.segments().len() > 5, "the workload rotated");
    let all: Vec<_> = journal.read_from(1).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 1050);
}
