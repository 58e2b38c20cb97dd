//! Where a mirrored commit's time goes, stage by stage (docs/benchmarks.md, "Where the
//! time goes"), as histograms `/metrics` exports:
//!
//! - on the primary, `round_trip`: a batch of records leaves for the backup → the
//!   backup's acknowledgement that it holds them synced arrives (the wire both ways, the
//!   backup's append, apply and fsync);
//! - on the primary, `confirm`: that acknowledgement arrives → the commits it covers are
//!   confirmed to their clients (the driver's queue, the primary's own fsync when it is
//!   the slower one, the acknowledgement lease);
//! - on a member, `member_append`: received records appended to its journal and applied;
//! - on a member, `member_sync`: the fsync of what it appended, one per group of batches.
//!
//! Measuring costs two `Instant::now()` per batch, not per record.

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The stage histograms of one engine's mirror (they outlive a stop and start of
/// mirroring, as counters should).
#[derive(Debug, Clone)]
pub struct CommitStages {
    pub round_trip: Histogram,
    pub confirm: Histogram,
    pub member_append: Histogram,
    pub member_sync: Histogram,
}

impl Default for CommitStages {
    fn default() -> CommitStages {
        // 25 µs .. about 0.4 s, as the journal's own sync histogram.
        let buckets = || Histogram::new(exponential_buckets(25e-6, 2.0, 15));
        CommitStages { round_trip: buckets(), confirm: buckets(), member_append: buckets(), member_sync: buckets() }
    }
}

impl CommitStages {
    /// The stages in the order a commit passes them: round trip, confirm, member append,
    /// member sync.
    pub fn in_order(&self) -> [&Histogram; 4] {
        [&self.round_trip, &self.confirm, &self.member_append, &self.member_sync]
    }
}

/// Positions with the instant a stage started for them, awaiting the position that ends
/// it. Bounded: under a backlog the oldest marks are dropped (their timing is then not
/// measured, which a backlog's catch-up would not describe well anyway).
#[derive(Debug, Default)]
pub struct Marks {
    pending: VecDeque<(u64, Instant)>,
}

/// Most marks kept: a connection or a driver never holds more.
const MAX_MARKS: usize = 4096;

impl Marks {
    /// Notes that the stage started at `at` for everything up to `position`.
    pub fn start(&mut self, position: u64, at: Instant) {
        if self.pending.back().is_some_and(|&(p, _)| p >= position) {
            return;
        }
        if self.pending.len() == MAX_MARKS {
            self.pending.pop_front();
        }
        self.pending.push_back((position, at));
    }

    /// Ends the stage for everything up to `position` at `now`: the time since the oldest
    /// mark it covers (the commit in it that waited longest), or `None` when it covers none.
    pub fn end(&mut self, position: u64, now: Instant) -> Option<Duration> {
        let mut oldest = None;
        while let Some(&(p, at)) = self.pending.front() {
            if p > position {
                break;
            }
            oldest.get_or_insert(at);
            self.pending.pop_front();
        }
        oldest.map(|at| now.saturating_duration_since(at))
    }

    /// Forgets every mark (the positions they name were rewound or the link was lost).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_measures_from_the_oldest_mark_it_covers() {
        let t0 = Instant::now();
        let mut m = Marks::default();
        m.start(10, t0);
        m.start(20, t0 + Duration::from_millis(5));
        m.start(30, t0 + Duration::from_millis(9));
        assert_eq!(m.end(5, t0 + Duration::from_millis(1)), None);
        assert_eq!(m.end(20, t0 + Duration::from_millis(12)), Some(Duration::from_millis(12)));
        assert_eq!(m.end(25, t0 + Duration::from_millis(13)), None);
        assert_eq!(m.end(40, t0 + Duration::from_millis(14)), Some(Duration::from_millis(5)));
    }

    #[test]
    fn marks_never_go_backwards_and_stay_bounded() {
        let t0 = Instant::now();
        let mut m = Marks::default();
        m.start(10, t0);
        m.start(7, t0 + Duration::from_millis(3));
        assert_eq!(m.end(7, t0 + Duration::from_millis(4)), None, "a mark below the newest is ignored");
        for p in 0..(MAX_MARKS as u64 + 10) {
            m.start(100 + p, t0);
        }
        assert_eq!(m.pending.len(), MAX_MARKS);
        assert_eq!(m.pending.front().map(|x| x.0), Some(110), "the oldest marks went first");
    }
}
