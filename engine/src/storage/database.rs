//! A mounted database: its file plus the cache in front of it, seen as one ordered map.
//!
//! Invariant: reads see the cache over the file (see [`super::cache`]); the file is written
//! only by [`Database::write_checkpoint`], after the caller has made the journal durable up to
//! the checkpoint's position (write-ahead rule).

use super::cache::{Cache, DirtyEntry};
use super::dbfile::{DbFile, IntegrityReport};
use super::meta::DbMeta;
use crate::error::{EngineError, Result};
use crate::vfs::VfsFile;
use parking_lot::{Mutex, RwLock};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Database {
    name: String,
    /// Reads share the file (redb reads run concurrently); only the integrity check needs
    /// it alone.
    file: RwLock<DbFile>,
    cache: RwLock<Cache>,
    /// Bytes of values read from the file the cache may keep (`storage.cache_mb`).
    cache_budget: AtomicUsize,
    meta: Mutex<DbMeta>,
    read_only: AtomicBool,
    /// Cleared by dismount under the instance write lock; a write that found this database
    /// before the dismount checks it after taking the lock.
    mounted: AtomicBool,
    /// The file handle whose advisory lock says "mounted here" (held from mount to
    /// dismount); `None` for files not opened through the engine's file system.
    lock: Mutex<Option<Arc<dyn VfsFile>>>,
    /// The last damage a read found in the file since it was mounted (the database stays
    /// mounted: other nodes still read; `engine integrity` checks the whole file).
    corruption: Mutex<Option<String>>,
}

/// What a checkpoint captured from one database.
pub struct Checkpoint {
    entries: Vec<DirtyEntry>,
}

impl Checkpoint {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Database {
    pub fn new(file: DbFile, meta: DbMeta, read_only: bool, cache_budget: usize) -> Database {
        Database {
            name: meta.name.clone(),
            file: RwLock::new(file),
            cache: RwLock::new(Cache::default()),
            cache_budget: AtomicUsize::new(cache_budget),
            meta: Mutex::new(meta),
            read_only: AtomicBool::new(read_only),
            mounted: AtomicBool::new(true),
            lock: Mutex::new(None),
            corruption: Mutex::new(None),
        }
    }

    pub fn set_cache_budget(&self, bytes: usize) {
        self.cache_budget.store(bytes, Ordering::Relaxed);
    }

    /// Bytes the cache holds now (clean and dirty entries).
    pub fn cache_bytes(&self) -> usize {
        self.cache.read().total_bytes()
    }

    /// Keeps `file`, whose lock the caller took, until dismount releases it.
    pub fn holding_lock(self, file: Arc<dyn VfsFile>) -> Database {
        *self.lock.lock() = Some(file);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.file.read().path().to_path_buf()
    }

    pub fn is_mounted(&self) -> bool {
        self.mounted.load(Ordering::SeqCst)
    }

    /// Marks the database dismounted and releases its file's lock: nothing writes the file
    /// any more (a session may still hold this value for a while), so another engine, or
    /// this one, may mount it.
    pub fn set_dismounted(&self) {
        self.mounted.store(false, Ordering::SeqCst);
        if let Some(file) = self.lock.lock().take() {
            if let Err(e) = file.unlock() {
                tracing::warn!("database {}: releasing the lock of {}: {e}", self.name, self.path().display());
            }
        }
    }

    /// The last damage a read found in the file since mount, if any.
    pub fn corruption(&self) -> Option<String> {
        self.corruption.lock().clone()
    }

    /// Logs and remembers damage found by a read; the error itself goes to the caller (the
    /// client sees `-DATABASE ...`). Repeats of the same damage are logged once.
    fn noted<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e @ EngineError::CorruptDatabase { .. }) = &result {
            let text = e.to_string();
            let mut last = self.corruption.lock();
            if last.as_deref() != Some(text.as_str()) {
                tracing::error!(
                    "database {}: {text}; the node is not served, other nodes are; run `engine integrity {}` to check the whole file",
                    self.name,
                    self.name
                );
                *last = Some(text);
            }
        }
        result
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    pub fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Relaxed);
    }

    pub fn meta(&self) -> DbMeta {
        self.meta.lock().clone()
    }

    /// Reads the metadata without copying it (the write path asks on every write whether
    /// the database is mirrored).
    pub fn with_meta<R>(&self, f: impl FnOnce(&DbMeta) -> R) -> R {
        f(&self.meta.lock())
    }

    pub fn dirty_bytes(&self) -> usize {
        self.cache.read().dirty_bytes()
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let evictions = {
            let cache = self.cache.read();
            if let Some(e) = cache.get(key) {
                return Ok(e.value.clone());
            }
            cache.evictions()
        };
        let value = self.noted(self.file.read().get(key))?;
        self.cache.write().put_clean(key, value.clone(), evictions, self.cache_budget.load(Ordering::Relaxed));
        Ok(value)
    }

    pub fn set(&self, key: Vec<u8>, value: Vec<u8>) {
        self.cache.write().put_dirty(key, Some(value));
    }

    pub fn remove(&self, key: Vec<u8>) {
        self.cache.write().put_dirty(key, None);
    }

    /// Live entries in the range, in order (descending when `reverse`), at most `limit`.
    pub fn scan(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.noted(self.scan_unnoted(lo, hi, reverse, limit))
    }

    fn scan_unnoted(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let cache = self.cache.read();
        // The file stays read-locked through the scan, so the integrity check (which takes
        // it alone) never finds a read transaction of ours open.
        let file = self.file.read();
        let reader = file.reader()?;
        let mut from_file = reader.range(lo, hi, reverse)?.peekable();
        let cached = cache.range(lo, hi);
        let mut from_cache: Box<dyn Iterator<Item = _>> =
            if reverse { Box::new(cached.rev()) } else { Box::new(cached) };
        let mut next_cached = from_cache.next();
        let mut out = Vec::new();
        // `before(a, b)`: a comes first in scan order.
        let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
        while out.len() < limit {
            let file_head = match from_file.peek() {
                Some(Ok((k, _))) => Some(k.as_slice()),
                Some(Err(_)) => return Err(from_file.next().expect("peeked").expect_err("peeked an error")),
                None => None,
            };
            match (next_cached, file_head) {
                (None, None) => break,
                (Some((ck, ce)), fh) if fh.is_none_or(|fk| !before(fk, ck)) => {
                    if fh == Some(ck.as_slice()) {
                        from_file.next(); // shadowed by the cache
                    }
                    if let Some(v) = &ce.value {
                        out.push((ck.clone(), v.clone()));
                    }
                    next_cached = from_cache.next();
                }
                _ => {
                    let (k, sealed) = from_file.next().expect("peeked").expect("peeked ok");
                    let v = reader.open(&k, sealed)?;
                    out.push((k, v));
                }
            }
        }
        Ok(out)
    }

    /// Captures the dirty entries. The caller holds the instance write lock so that the
    /// capture is exactly the state at one journal position.
    pub fn capture_checkpoint(&self) -> Checkpoint {
        Checkpoint { entries: self.cache.read().dirty() }
    }

    /// Writes a captured checkpoint to the file as of `position`, then marks the written
    /// entries clean. The journal must already be durable up to `position`.
    pub fn write_checkpoint(&self, checkpoint: Checkpoint, position: u64, recovery_from: u64) -> Result<()> {
        self.write_checkpoint_with(checkpoint, |meta| {
            meta.journal_position = position;
            meta.recovery_from = recovery_from.min(position + 1);
        })
    }

    /// [`Database::write_checkpoint`] with the metadata changed by `update` (a mirrored
    /// database records positions in two journals; adding it to a mirror changes its
    /// mirror fields in the same durable transaction as its data).
    pub fn write_checkpoint_with(&self, checkpoint: Checkpoint, update: impl FnOnce(&mut DbMeta)) -> Result<()> {
        let mut meta = self.meta.lock().clone();
        update(&mut meta);
        let changes = checkpoint.entries.iter().map(|(k, v, _)| (k.as_slice(), v.as_deref()));
        self.file.read().write_batch(changes, &meta)?;
        *self.meta.lock() = meta;
        self.cache.write().mark_clean(&checkpoint.entries, self.cache_budget.load(Ordering::Relaxed));
        Ok(())
    }

    /// Rewrites the metadata alone (mirror attributes, adoption by another instance).
    pub fn update_meta(&self, change: impl FnOnce(&mut DbMeta)) -> Result<()> {
        let mut meta = self.meta.lock().clone();
        change(&mut meta);
        self.file.read().write_meta(&meta)?;
        *self.meta.lock() = meta;
        Ok(())
    }

    pub fn integrity(&self) -> Result<IntegrityReport> {
        self.file.write().integrity()
    }
}

/// Opens the redb backend for a database file through the engine's file system layer.
pub fn file_name(dir: &Path) -> std::path::PathBuf {
    dir.join(super::DB_FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::backends::InMemoryBackend;

    fn db() -> Database {
        let meta = DbMeta::new("T", "g".into(), "i", 0);
        let file = DbFile::create(Path::new("t.dat"), InMemoryBackend::new(), &meta, 1 << 20).unwrap();
        Database::new(file, meta, false, 1 << 20)
    }

    fn keys(v: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
        v.into_iter().map(|(k, _)| k[0]).collect()
    }

    #[test]
    fn merged_view_over_cache_and_file() {
        let d = db();
        for k in [1u8, 3, 5, 7] {
            d.set(vec![k], vec![k]);
        }
        let cp = d.capture_checkpoint();
        d.write_checkpoint(cp, 10, 11).unwrap();
        d.remove(vec![3]);
        d.set(vec![4], vec![4]);
        d.set(vec![5], vec![55]);
        let all = d.scan(Bound::Unbounded, Bound::Unbounded, false, usize::MAX).unwrap();
        assert_eq!(keys(all.clone()), vec![1, 4, 5, 7]);
        assert_eq!(all[2].1, vec![55]);
        let back = d.scan(Bound::Unbounded, Bound::Excluded(&[7][..]), true, 2).unwrap();
        assert_eq!(keys(back), vec![5, 4]);
        assert_eq!(d.get(&[3]).unwrap(), None);
        assert_eq!(d.get(&[7]).unwrap(), Some(vec![7]));
        let cp = d.capture_checkpoint();
        assert_eq!(cp.len(), 3);
        d.write_checkpoint(cp, 20, 21).unwrap();
        assert_eq!(d.dirty_bytes(), 0);
        assert_eq!(keys(d.scan(Bound::Unbounded, Bound::Unbounded, false, 9).unwrap()), vec![1, 4, 5, 7]);
        assert_eq!(d.meta().journal_position, 20);
    }

    #[test]
    fn a_change_during_a_checkpoint_stays_dirty() {
        let d = db();
        d.set(vec![1], vec![1]);
        let cp = d.capture_checkpoint();
        d.set(vec![1], vec![2]);
        d.write_checkpoint(cp, 1, 2).unwrap();
        assert!(d.dirty_bytes() > 0);
        assert_eq!(d.get(&[1]).unwrap(), Some(vec![2]));
    }
}
