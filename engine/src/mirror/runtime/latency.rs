//! Journal and database latency as the Mirror Monitor shows them: how far a member is
//! behind the primary's durable journal, in time, bytes and files.
//!
//! Measured on the primary from its own journal files: `files` counts the files holding
//! records the member lacks; `bytes` adds whole files after the member's position and,
//! for the file it is in, that file's share at its average record size (the files keep no
//! per-position offsets); `time` is the age of the oldest record the member lacks. A
//! member applies each record as it receives it (dejournaling is part of receipt), so its
//! database latency is its journal latency.

use crate::journal::{Journal, SegmentInfo};
use crate::mirror::status::Latency;

/// What a member that has every record up to `has` still lacks of a journal whose files
/// are `segments` and whose durable end is `durable`; `oldest_lacking_ms` is the write
/// time of record `has + 1` (when known).
pub fn behind(
    segments: &[SegmentInfo],
    has: u64,
    durable: u64,
    now_ms: u64,
    oldest_lacking_ms: Option<u64>,
) -> Latency {
    if has >= durable {
        return Latency::default();
    }
    let mut latency =
        Latency { time_ms: oldest_lacking_ms.map_or(0, |t| now_ms.saturating_sub(t)), ..Latency::default() };
    for s in segments {
        let last = s.last_position.unwrap_or(s.first_position.saturating_sub(1)).min(durable);
        if s.records == 0 || last <= has {
            continue;
        }
        latency.files += 1;
        let lacking = last - has.max(s.first_position - 1);
        latency.bytes += if lacking >= s.records { s.bytes } else { s.bytes * lacking / s.records };
    }
    latency
}

/// [`behind`] read from the primary's journal (the write time of the first missing record
/// read from its file).
pub fn of_member(journal: &Journal, has: u64) -> Latency {
    let durable = journal.durable_position();
    if has >= durable {
        return Latency::default();
    }
    let oldest = journal.read_from(has + 1).ok().and_then(|mut r| r.next()).and_then(|r| r.ok()).map(|r| r.time_ms);
    behind(&journal.segments(), has, durable, crate::journal::now_ms(), oldest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn segment(first: u64, last: Option<u64>, records: u64, bytes: u64) -> SegmentInfo {
        SegmentInfo {
            path: PathBuf::new(),
            sequence: first,
            first_position: first,
            last_position: last,
            bytes,
            created_ms: 0,
            records,
        }
    }

    #[test]
    fn a_caught_up_member_has_no_latency() {
        assert_eq!(behind(&[segment(1, Some(10), 10, 1000)], 10, 10, 5, Some(1)), Latency::default());
    }

    #[test]
    fn latency_counts_the_files_and_bytes_the_member_lacks() {
        let segments =
            [segment(1, Some(100), 100, 10_000), segment(101, Some(150), 50, 4_000), segment(151, None, 0, 64)];
        let l = behind(&segments, 80, 150, 10_000, Some(9_250));
        assert_eq!(l, Latency { time_ms: 750, bytes: 2_000 + 4_000, files: 2 });
        let l = behind(&segments, 120, 150, 10_000, None);
        assert_eq!(l, Latency { time_ms: 0, bytes: 4_000 * 30 / 50, files: 1 });
    }

    #[test]
    fn records_past_the_durable_end_are_not_latency_yet() {
        let segments = [segment(1, Some(100), 100, 10_000)];
        assert_eq!(behind(&segments, 40, 50, 0, None).bytes, 1_000);
    }
}
