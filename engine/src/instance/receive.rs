//! A mirror member applying what the primary sends: each record is appended verbatim to
//! the mirror journal and applied to the databases that follow it, in one step under the
//! write lock, so the journal and the databases never disagree about what was applied
//! (the same invariant as the write path: journal order is apply order).

use super::dejournal::{self, Counts, Follower, Followers};
use super::mirror::MirrorMode;
use super::Instance;
use crate::error::{EngineError, Result};
use crate::journal::{Record, RecordBody};
use std::sync::atomic::Ordering;

impl Instance {
    /// Appends the record frames of one received batch (positions `first..=last`) to the
    /// mirror journal, keeping their positions and epochs, and applies each to the
    /// mirrored, activated databases it names; records of other databases are skipped
    /// (counted, see [`Instance::mirror_skipped_records`]). Transactions are tracked as
    /// recovery tracks them, so the next primary can roll back those left open. Returns
    /// the last position appended; the caller flushes the mirror journal, then acknowledges.
    /// A batch that does not decode is refused whole.
    pub fn apply_received(&self, first: u64, last: u64, frames: &[u8]) -> Result<u64> {
        let mut records = crate::mirror::shipping::decode_batch(first, last, frames)?;
        let mut appended = 0;
        // A new mirrored database is adopted between the records before it and those
        // after, so that it follows exactly the records that came after it.
        while !records.is_empty() {
            let cut = records
                .iter()
                .position(|r| matches!(r.body, RecordBody::MirrorNewDatabase { .. }))
                .map_or(records.len(), |i| i + 1);
            let rest = records.split_off(cut);
            let new_database = match &records.last().expect("non-empty").body {
                RecordBody::MirrorNewDatabase { db } => Some((db.clone(), records.last().expect("non-empty").position)),
                _ => None,
            };
            appended = self.append_and_apply(records)?;
            if let Some((db, position)) = new_database {
                self.adopt_new_mirrored_database(&db, position);
            }
            records = rest;
        }
        Ok(appended)
    }

    /// Appends and applies records (none of them a new mirrored database but the last),
    /// under the write lock.
    fn append_and_apply(&self, records: Vec<Record>) -> Result<u64> {
        let mirror = self
            .mirror
            .get()
            .ok_or_else(|| EngineError::Invalid("records received, but this instance is not a mirror member".into()))?;
        let _w = self.write_lock.lock();
        if matches!(self.mirror_state.lock().mode, MirrorMode::Primary { .. }) {
            return Err(EngineError::Invalid(
                "this member is the primary: it applies no records received from another member".into(),
            ));
        }
        let followers = self.mirror_followers();
        let mut counts = Counts::default();
        let mut appended = mirror.journal.last_position();
        let result = {
            let mut open = self.mirror_txns.lock();
            records.into_iter().try_for_each(|r| {
                mirror.journal.append_received(&r)?;
                appended = r.position;
                // A failure here (a database read error while applying a KILL) leaves the
                // record in the journal, unapplied: the next start's recovery applies it.
                dejournal::apply(r, &followers, &mut open, &mut counts)
            })
        };
        {
            let mut state = self.mirror_state.lock();
            for (name, n) in counts.skipped {
                *state.skipped.entry(name).or_default() += n;
            }
        }
        // Ids this member gives out later, as primary, must not repeat the sender's.
        self.next_txn.fetch_max(counts.max_txn.max(appended) + 1, Ordering::SeqCst);
        result.map(|()| appended)
    }

    /// The databases this member applies the mirror journal to, with their positions.
    pub(crate) fn mirror_followers(&self) -> Followers {
        self.databases
            .read()
            .values()
            .filter_map(|db| {
                let meta = db.meta();
                (db.is_mounted() && self.follows_mirror(&meta))
                    .then(|| (db.name().to_string(), Follower { db: db.clone(), after: meta.journal_position }))
            })
            .collect()
    }
}
