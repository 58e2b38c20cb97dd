//! The in-memory layer over a database file (the "global buffers").
//!
//! Invariant: for every key, either the cache has an entry and that entry is the current
//! truth (`value: None` = deleted), or the cache has no entry and the file holds the truth.
//! Dirty entries are newer than the file; clean entries equal the file and may be evicted.

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
}

fn weight(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + 48
}

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
    /// read-only workload cannot grow the cache without bound.
    pub fn put_clean(&mut self, key: &[u8], value: Option<Vec<u8>>, evictions_seen: u64, budget: usize) {
        if self.evictions != evictions_seen || self.map.contains_key(key) {
            return;
        }
        self.total_bytes += weight(key, &value);
        self.map.insert(key.to_vec(), Entry { value, dirty: false, version: 0 });
        if self.total_bytes > budget {
            self.evict_clean();
        }
    }

    fn evict_clean(&mut self) {
        self.map.retain(|_, e| e.dirty);
        self.evictions += 1;
        self.total_bytes = self.dirty_bytes;
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
        if self.total_bytes > budget {
            self.map.retain(|_, e| e.dirty);
        }
        if self.map.len() != before {
            self.evictions += 1;
            self.total_bytes = self.map.iter().map(|(k, e)| weight(k, &e.value)).sum();
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
}
