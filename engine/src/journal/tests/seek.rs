//! Reading from the middle of the current segment seeks to a noted record boundary
//! instead of decoding the segment from its top, and gives the same records.
use super::*;

/// Flushes of `per_flush` records until the journal holds `total`.
fn flushed(journal: &Journal, total: u64, per_flush: u64) {
    while journal.last_position() < total {
        append_n(journal, per_flush.min(total - journal.last_position()));
        journal.flush().unwrap();
    }
}

#[test]
fn a_read_from_the_middle_seeks_and_gives_the_same_records() {
    let (_sim, vfs) = sim(41);
    let journal = Journal::open(vfs, options(1 << 30)).unwrap();
    // About 50 bytes a record, 200 a flush: many seek points in one segment.
    flushed(&journal, 30_000, 200);
    assert_eq!(journal.segments().len(), 1);
    let points = journal.seek_points();
    assert!(points.len() >= 4, "seek points: {points:?}");
    for pair in points.windows(2) {
        assert!(pair[1].0 > pair[0].0 && pair[1].1 >= pair[0].1 + super::super::writer::SEEK_STRIDE, "{pair:?}");
    }
    for from in [1, 2, 199, 200, 201, points[2].0, points[2].0 + 1, 29_999, 30_000] {
        check_records(&journal, from);
    }
}

#[test]
fn seek_points_follow_rotation_and_are_dropped_by_a_truncation() {
    let (_sim, vfs) = sim(42);
    let journal = Journal::open(vfs, options(1 << 20)).unwrap();
    flushed(&journal, 60_000, 300);
    let segments = journal.segments();
    assert!(segments.len() >= 2, "{segments:?}");
    // The points are the current segment's only.
    let current = segments.last().unwrap().first_position;
    assert!(journal.seek_points().iter().all(|&(p, _)| p >= current));
    check_records(&journal, current + 1000);
    check_records(&journal, 5);

    journal.truncate_after(59_000).unwrap();
    assert!(journal.seek_points().is_empty(), "no point may name a record that is gone");
    check_records(&journal, 58_000);
    flushed(&journal, 61_000, 300);
    check_records(&journal, 59_500);
}
