//! The in-memory layer over a database file (the "global buffers").
//!
//! Invariant: for every key, either the cache has an entry and that entry is the current
//! truth (`value: None` = deleted), or the cache has no entry and the file holds the truth.
//! Dirty entries are newer than the file; clean entries equal the file and may be evicted.
//!
//! Bound: clean entries are kept only while the cache's bytes stay within its budget
//! (`storage.cache_mb`); past it, a sweep drops clean entries, going round the key space
//! from where the last sweep stopped (a clock), until an eighth of the budget is free.
//! Dirty entries are never dropped (only a checkpoint makes them clean), and while they
//! fill half the budget reads are not cached at all, so a sweep never walks a cache of
//! dirty entries for nothing. Dirty bytes are bounded by the checkpoint that starts at
//! 64 MiB of them.

use std::collections::BTreeMap;
use std::ops::Bound;

#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Option<Vec<u8>>,
    pub dirty: bool,
    /// Bumped on every change, so a checkpoint marks clean only what it actually wrote.
    pub version: u64,
}

/// Entries captured by a checkpoint: key, value (`None` = delete), version.
pub type DirtyEntry = (Vec<u8>, Option<Vec<u8>>, u64);

#[derive(Debug, Default)]
pub struct Cache {
    map: BTreeMap<Vec<u8>, Entry>,
    next_version: u64,
    dirty_entries: usize,
    dirty_bytes: usize,
    total_bytes: usize,
    /// Bumped on eviction: a reader that missed, read the file, and wants to cache what it
    /// read may do so only if no eviction happened in between (the file may be newer).
    evictions: u64,
    /// Where the next sweep starts: sweeps go round the key space, so no range of keys is
    /// always the first to go.
    sweep_from: Vec<u8>,
}

/// Bytes an entry is counted for: key and value, plus what the map node, the two vectors
/// and the allocator cost per entry (measured: bench/keyspace-growth.sh).
fn weight(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
}

/// Per-entry memory beyond key and value bytes.
const ENTRY_OVERHEAD: usize = 96;

impl Cache {
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    pub fn dirty_bytes(&self) -> usize {
        self.dirty_bytes
    }

    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Records a change (a value or a deletion) as dirty.
    pub fn put_dirty(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.next_version += 1;
        let w = weight(&key, &value);
        let entry = Entry { value, dirty: true, version: self.next_version };
        match self.map.entry(key) {
            std::collections::btree_map::Entry::Occupied(mut o) => {
                let ow = weight(o.key(), &o.get().value);
                let old = o.insert(entry);
                self.total_bytes -= ow;
                if old.dirty {
                    self.dirty_entries -= 1;
                    self.dirty_bytes -= ow;
                }
            }
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(entry);
            }
        }
        self.total_bytes += w;
        self.dirty_entries += 1;
        self.dirty_bytes += w;
    }

    /// Caches a value read from the file, unless the key changed or an eviction happened
    /// since `evictions_seen` was read. Over `budget`, clean entries are dropped, so a
    /// read-only workload cannot grow the cache without bound; while dirty entries fill
    /// half the budget, nothing read is cached.
    pub fn put_clean(&mut self, key: &[u8], value: Option<Vec<u8>>, evictions_seen: u64, budget: usize) {
        if self.evictions != evictions_seen || self.dirty_bytes > budget / 2 || self.map.contains_key(key) {
            return;
        }
        self.total_bytes += weight(key, &value);
        self.map.insert(key.to_vec(), Entry { value, dirty: false, version: 0 });
        if self.total_bytes > budget {
            self.sweep(budget - budget / 8);
        }
    }

    /// Drops clean entries, from where the last sweep stopped and round, until the cache
    /// holds at most `target` bytes or no clean entry is left.
    fn sweep(&mut self, target: usize) {
        let mut victims = Vec::new();
        let mut freed = 0usize;
        let from = std::mem::take(&mut self.sweep_from);
        let after = self.map.range::<[u8], _>((Bound::Included(&from[..]), Bound::Unbounded));
        let before = self.map.range::<[u8], _>((Bound::Unbounded, Bound::Excluded(&from[..])));
        for (k, e) in after.chain(before) {
            if self.total_bytes - freed <= target {
                break;
            }
            if !e.dirty {
                freed += weight(k, &e.value);
                victims.push(k.clone());
            }
        }
        for k in &victims {
            self.map.remove(k);
        }
        self.sweep_from = victims.pop().unwrap_or_default();
        self.total_bytes -= freed;
        self.evictions += 1;
    }

    pub fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> std::collections::btree_map::Range<'_, Vec<u8>, Entry> {
        self.map.range::<[u8], _>((lo, hi))
    }

    /// Every dirty entry, for a checkpoint.
    pub fn dirty(&self) -> Vec<DirtyEntry> {
        let mut out = Vec::with_capacity(self.dirty_entries);
        out.extend(self.map.iter().filter(|(_, e)| e.dirty).map(|(k, e)| (k.clone(), e.value.clone(), e.version)));
        out
    }

    /// After a checkpoint wrote `written` to the file: entries not changed since become clean.
    /// Then, while the cache is over `budget` bytes, clean entries are dropped (deleted
    /// markers first: the file no longer has those keys, so they carry no information).
    pub fn mark_clean(&mut self, written: &[DirtyEntry], budget: usize) {
        for (k, value, version) in written {
            if let Some(e) = self.map.get_mut(k) {
                if e.dirty && e.version == *version {
                    e.dirty = false;
                    self.dirty_entries -= 1;
                    self.dirty_bytes -= weight(k, value);
                }
            }
        }
        let before = self.map.len();
        self.map.retain(|_, e| e.dirty || e.value.is_some());
        if self.map.len() != before {
            self.evictions += 1;
            self.total_bytes = self.map.iter().map(|(k, e)| weight(k, &e.value)).sum();
        }
        if self.total_bytes > budget {
            self.sweep(budget - budget / 8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_alone_cannot_grow_the_cache_past_its_budget() {
        let mut c = Cache::default();
        c.put_dirty(b"dirty".to_vec(), Some(vec![0; 10]));
        let budget = 10_000;
        for n in 0u32..1000 {
            let seen = c.evictions();
            c.put_clean(&n.to_be_bytes(), Some(vec![1; 50]), seen, budget);
            assert!(c.total_bytes() <= budget, "{} bytes after {n} reads", c.total_bytes());
        }
        assert!(c.get(b"dirty").is_some_and(|e| e.dirty), "dirty entries are never evicted");
        assert!(c.evictions() > 0);
    }

    #[test]
    fn a_sweep_frees_an_eighth_going_round_the_keys_not_everything() {
        let mut c = Cache::default();
        let entry = weight(&0u32.to_be_bytes(), &Some(vec![1; 50]));
        let budget = entry * 80;
        let mut first_sweep = None;
        for n in 0u32..400 {
            c.put_clean(&n.to_be_bytes(), Some(vec![1; 50]), c.evictions(), budget);
            assert!(c.total_bytes() <= budget);
            if c.evictions() == 1 && first_sweep.is_none() {
                first_sweep = Some(c.map.keys().next().cloned().unwrap());
                assert!(c.total_bytes() >= budget - budget / 8 - entry, "a sweep keeps most: {}", c.total_bytes());
            }
        }
        // 81 entries against a budget of 80: down to 70, so keys 0..=10 went.
        assert_eq!(first_sweep.unwrap(), 11u32.to_be_bytes().to_vec(), "the first sweep took the first keys");
        assert!(c.total_bytes() >= budget / 2, "the cache stays mostly full: {}", c.total_bytes());
        assert!(c.get(&399u32.to_be_bytes()).is_some(), "the newest read is kept");
    }

    #[test]
    fn reads_are_not_cached_while_dirty_entries_fill_half_the_budget() {
        let mut c = Cache::default();
        let budget = 1000;
        for n in 0u8..6 {
            c.put_dirty(vec![n], Some(vec![0; 20]));
        }
        assert!(c.dirty_bytes() > budget / 2);
        c.put_clean(b"read", Some(vec![1]), c.evictions(), budget);
        assert!(c.get(b"read").is_none());
        let all = c.dirty();
        c.mark_clean(&all, budget);
        c.put_clean(b"read", Some(vec![1]), c.evictions(), budget);
        assert!(c.get(b"read").is_some());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Write(u8, Option<u8>),
        StartRead(u8),
        FinishRead,
        Checkpoint,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            3 => (0u8..40, proptest::option::of(any::<u8>())).prop_map(|(k, v)| Op::Write(k, v)),
            4 => (0u8..40).prop_map(Op::StartRead),
            3 => Just(Op::FinishRead),
            1 => Just(Op::Checkpoint),
        ]
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config(256, 0x43414348))]

        /// The invariant under writes, checkpoints, evictions and reads that race them (a
        /// reader misses, reads the file, and caches what it read later): for every key the
        /// cache's entry is the truth, or there is none and the file holds the truth.
        #[test]
        fn the_cache_or_else_the_file_holds_the_truth(ops in proptest::collection::vec(op(), 1..300), budget in 200usize..3000) {
            let mut c = Cache::default();
            let mut truth: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut file: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let mut pending = std::collections::VecDeque::new();
            for op in ops {
                match op {
                    Op::Write(k, v) => {
                        let v = v.map(|b| vec![b; 1 + b as usize % 30]);
                        match &v { Some(v) => { truth.insert(vec![k], v.clone()); } None => { truth.remove(&vec![k]); } }
                        c.put_dirty(vec![k], v);
                    }
                    Op::StartRead(k) => {
                        if c.get(&[k]).is_none() {
                            pending.push_back((k, file.get(&vec![k]).cloned(), c.evictions()));
                        }
                    }
                    Op::FinishRead => {
                        if let Some((k, v, seen)) = pending.pop_front() {
                            c.put_clean(&[k], v, seen, budget);
                        }
                    }
                    Op::Checkpoint => {
                        let captured = c.dirty();
                        for (k, v, _) in &captured {
                            match v { Some(v) => { file.insert(k.clone(), v.clone()); } None => { file.remove(k); } }
                        }
                        c.mark_clean(&captured, budget);
                    }
                }
                for k in 0u8..40 {
                    let seen = match c.get(&[k]) { Some(e) => e.value.clone(), None => file.get(&vec![k]).cloned() };
                    proptest::prop_assert_eq!(seen, truth.get(&vec![k]).cloned(), "key {}", k);
                }
                let clean: usize = c.map.iter().filter(|(_, e)| !e.dirty).map(|(k, e)| weight(k, &e.value)).sum();
                proptest::prop_assert!(clean <= budget, "clean entries over the budget: {} > {}", clean, budget);
                proptest::prop_assert_eq!(c.total_bytes(), c.map.iter().map(|(k, e)| weight(k, &e.value)).sum::<usize>());
            }
        }
    }
}
