//! Simulated disk with power cuts.
//!
//! [`SimVfs`] keeps everything in memory. Each file holds its *durable* bytes plus the
//! writes made since its last `sync_data`; directory entries (create, rename, remove)
//! become durable only at `sync_dir` of their parent. [`SimVfs::crash`] returns the state
//! a power cut leaves behind, chosen deterministically from the seed:
//!
//! - each file: its durable content plus none, a prefix, or all of its unsynced writes,
//!   the last applied write possibly torn (only a prefix of its bytes reached the disk);
//! - directory entries: as of the last `sync_dir` of their directory.
//!
//! [`SimVfs::fail_after`] cuts the power after a number of further mutating operations
//! (write, set_len, sync_data, create, rename, remove, sync_dir): from then on every call
//! fails with "simulated power cut". Crash tests enumerate every cut point using
//! [`SimVfs::operations`].
//!
//! Simplification: directories themselves (`create_dir_all`) are durable at once.

use super::{OpenMode, Vfs, VfsFile};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A small deterministic PRNG (xorshift64*), seeded through splitmix64.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        SimRng(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "SimRng::below(0)");
        self.next_u64() % n
    }
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Pending {
    fn apply(&self, content: &mut Vec<u8>) {
        match self {
            Pending::Write { offset, data } => apply_write(content, *offset, data),
            Pending::SetLen(len) => content.resize(to_usize(*len), 0),
        }
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("simulated file larger than memory")
}

fn apply_write(content: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start + data.len();
    if content.len() < end {
        content.resize(end, 0);
    }
    content[start..end].copy_from_slice(data);
}

#[derive(Debug, Default)]
struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Debug)]
struct State {
    rng: SimRng,
    files: HashMap<u64, FileData>,
    next_inode: u64,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    operations: u64,
    fail_at: Option<u64>,
    sync_delay: Duration,
}

fn power_cut() -> io::Error {
    io::Error::other("simulated power cut")
}

impl State {
    fn check_alive(&self) -> io::Result<()> {
        match self.fail_at {
            Some(at) if self.operations >= at => Err(power_cut()),
            _ => Ok(()),
        }
    }

    /// Counts one mutating operation, or fails if the power is cut.
    fn mutation(&mut self) -> io::Result<()> {
        self.check_alive()?;
        self.operations += 1;
        Ok(())
    }

    fn file(&mut self, inode: u64) -> &mut FileData {
        self.files.get_mut(&inode).expect("simulated inode exists while a handle is open")
    }
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// An in-memory file system that can lose unsynced data at a simulated power cut.
/// Clones share the same state.
#[derive(Debug, Clone)]
pub struct SimVfs {
    state: Arc<Mutex<State>>,
}

impl SimVfs {
    pub fn new(seed: u64) -> SimVfs {
        let mut dirs = BTreeSet::new();
        dirs.insert(PathBuf::new());
        dirs.insert(PathBuf::from("/"));
        SimVfs {
            state: Arc::new(Mutex::new(State {
                rng: SimRng::new(seed),
                files: HashMap::new(),
                next_inode: 1,
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                dirs,
                operations: 0,
                fail_at: None,
                sync_delay: Duration::ZERO,
            })),
        }
    }

    /// Cuts the power after `n` more mutating operations.
    pub fn fail_after(&self, n: u64) {
        let mut s = self.state.lock();
        s.fail_at = Some(s.operations + n);
    }

    /// Mutating operations so far.
    pub fn operations(&self) -> u64 {
        self.state.lock().operations
    }

    /// Whether the simulated power is cut.
    pub fn is_cut(&self) -> bool {
        self.state.lock().check_alive().is_err()
    }

    /// Makes every `sync_data` take this long (outside the file-system lock), as a real
    /// disk does; lets tests observe group commit.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.state.lock().sync_delay = delay;
    }

    /// The state after a power cut now: see the module documentation.
    pub fn crash(&self) -> SimVfs {
        let mut s = self.state.lock();
        let seed = s.rng.next_u64();
        let mut rng = SimRng::new(seed);
        let mut files = HashMap::new();
        let mut renumber: HashMap<u64, u64> = HashMap::new();
        let mut names = BTreeMap::new();
        let mut next_inode = 1;
        for (path, inode) in &s.durable_names {
            let new_inode = *renumber.entry(*inode).or_insert_with(|| {
                let data = &s.files[inode];
                let content = crashed_content(data, &mut rng);
                let n = next_inode;
                next_inode += 1;
                files.insert(n, FileData { current: content.clone(), durable: content, pending: Vec::new() });
                n
            });
            names.insert(path.clone(), new_inode);
        }
        SimVfs {
            state: Arc::new(Mutex::new(State {
                rng: SimRng::new(rng.next_u64()),
                files,
                next_inode,
                durable_names: names.clone(),
                names,
                dirs: s.dirs.clone(),
                operations: 0,
                fail_at: None,
                sync_delay: s.sync_delay,
            })),
        }
    }

    /// The current content of a file (test helper).
    pub fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.state.lock();
        let inode = s.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(s.files[inode].current.clone())
    }

    /// Overwrites bytes of a file durably, bypassing power-cut accounting: a test helper
    /// to simulate media corruption.
    pub fn corrupt(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        let inode = *s.names.get(path).ok_or_else(|| not_found(path))?;
        let f = s.file(inode);
        apply_write(&mut f.current, offset, data);
        apply_write(&mut f.durable, offset, data);
        Ok(())
    }
}

fn crashed_content(data: &FileData, rng: &mut SimRng) -> Vec<u8> {
    let mut content = data.durable.clone();
    let n = data.pending.len() as u64;
    let keep = match rng.below(3) {
        0 => 0,
        1 => n,
        _ => rng.below(n + 1),
    };
    let keep = to_usize(keep);
    for op in &data.pending[..keep] {
        op.apply(&mut content);
    }
    if let Some(Pending::Write { offset, data }) = data.pending.get(keep) {
        if rng.below(2) == 0 {
            let cut = to_usize(rng.below(data.len() as u64 + 1));
            apply_write(&mut content, *offset, &data[..cut]);
        }
    }
    content
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
}

impl Vfs for SimVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut s = self.state.lock();
        let inode = match mode {
            OpenMode::CreateNew => {
                s.check_alive()?;
                if s.names.contains_key(path) || s.dirs.contains(path) {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{}: exists", path.display())));
                }
                if !s.dirs.contains(&parent_of(path)) {
                    return Err(not_found(&parent_of(path)));
                }
                s.mutation()?;
                let inode = s.next_inode;
                s.next_inode += 1;
                s.files.insert(inode, FileData::default());
                s.names.insert(path.to_path_buf(), inode);
                inode
            }
            OpenMode::ReadWrite | OpenMode::ReadOnly => {
                s.check_alive()?;
                *s.names.get(path).ok_or_else(|| not_found(path))?
            }
        };
        Ok(Arc::new(SimFile { state: self.state.clone(), inode, read_only: mode == OpenMode::ReadOnly }))
    }

    fn exists(&self, path: &Path) -> bool {
        let s = self.state.lock();
        s.names.contains_key(path) || s.dirs.contains(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        for dir in path.ancestors() {
            s.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let s = self.state.lock();
        s.check_alive()?;
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        let mut out: Vec<PathBuf> = s
            .names
            .keys()
            .chain(s.dirs.iter())
            .filter(|p| p.as_path() != dir && p.parent() == Some(dir))
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        if !s.names.contains_key(from) {
            return Err(not_found(from));
        }
        if !s.dirs.contains(&parent_of(to)) {
            return Err(not_found(&parent_of(to)));
        }
        s.mutation()?;
        let inode = s.names.remove(from).expect("checked above");
        s.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        if !s.names.contains_key(path) {
            return Err(not_found(path));
        }
        s.mutation()?;
        s.names.remove(path);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        if !s.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        s.mutation()?;
        s.durable_names.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<(PathBuf, u64)> =
            s.names.iter().filter(|(p, _)| p.parent() == Some(dir)).map(|(p, i)| (p.clone(), *i)).collect();
        s.durable_names.extend(entries);
        Ok(())
    }
}

/// An open simulated file.
#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    inode: u64,
    read_only: bool,
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only"));
        }
        Ok(())
    }
}

impl VfsFile for SimFile {
    /// The simulated disk serves one process (a crash test's restarts run one after the
    /// other in it): there is nobody to exclude, so locks always succeed.
    fn try_lock(&self) -> io::Result<()> {
        Ok(())
    }

    fn unlock(&self) -> io::Result<()> {
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut s = self.state.lock();
        s.check_alive()?;
        Ok(s.file(self.inode).current.len() as u64)
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut s = self.state.lock();
        s.check_alive()?;
        let content = &s.file(self.inode).current;
        let start = to_usize(offset);
        let end = start
            .checked_add(buf.len())
            .filter(|&e| e <= content.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of a simulated file"))?;
        buf.copy_from_slice(&content[start..end]);
        Ok(())
    }

    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_writable()?;
        let mut s = self.state.lock();
        s.mutation()?;
        let f = s.file(self.inode);
        apply_write(&mut f.current, offset, data);
        f.pending.push(Pending::Write { offset, data: data.to_vec() });
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.check_writable()?;
        let mut s = self.state.lock();
        s.mutation()?;
        let f = s.file(self.inode);
        f.current.resize(to_usize(len), 0);
        f.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let delay = {
            let mut s = self.state.lock();
            s.mutation()?;
            let f = s.file(self.inode);
            let pending = std::mem::take(&mut f.pending);
            for op in &pending {
                op.apply(&mut f.durable);
            }
            debug_assert_eq!(f.durable, f.current);
            s.sync_delay
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(vfs: &SimVfs, path: &str, data: &[u8], sync: bool) -> Arc<dyn VfsFile> {
        let f = vfs.open(Path::new(path), OpenMode::CreateNew).unwrap();
        f.write_all_at(0, data).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
        f
    }

    #[test]
    fn synced_file_and_dir_survive_a_crash() {
        let vfs = SimVfs::new(1);
        vfs.create_dir_all(Path::new("/d")).unwrap();
        write_file(&vfs, "/d/a", b"hello", true);
        vfs.sync_dir(Path::new("/d")).unwrap();
        for _ in 0..20 {
            let after = vfs.crash();
            assert_eq!(after.read_all(Path::new("/d/a")).unwrap(), b"hello");
        }
    }

    #[test]
    fn unsynced_directory_entries_vanish() {
        let vfs = SimVfs::new(2);
        vfs.create_dir_all(Path::new("/d")).unwrap();
        write_file(&vfs, "/d/a", b"x", true);
        let after = vfs.crash();
        assert!(!after.exists(Path::new("/d/a")));
        vfs.sync_dir(Path::new("/d")).unwrap();
        vfs.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
        let after = vfs.crash();
        assert!(after.exists(Path::new("/d/a")));
        assert!(!after.exists(Path::new("/d/b")));
    }

    #[test]
    fn unsynced_writes_become_a_prefix_possibly_torn() {
        let mut seen_none = false;
        let mut seen_all = false;
        let mut seen_torn = false;
        for seed in 0..200 {
            let vfs = SimVfs::new(seed);
            vfs.create_dir_all(Path::new("/d")).unwrap();
            let f = write_file(&vfs, "/d/a", b"base", true);
            vfs.sync_dir(Path::new("/d")).unwrap();
            f.write_all_at(4, b"11111").unwrap();
            f.write_all_at(9, b"22222").unwrap();
            let content = vfs.crash().read_all(Path::new("/d/a")).unwrap();
            let full = b"base1111122222";
            assert!(full.starts_with(&content), "seed {seed}: {content:?}");
            seen_none |= content == b"base";
            seen_all |= content == full;
            seen_torn |= content.len() != 4 && content.len() != 9 && content.len() != 14;
        }
        assert!(seen_none && seen_all && seen_torn);
    }

    #[test]
    fn fail_after_cuts_power_at_the_nth_mutation() {
        let vfs = SimVfs::new(3);
        vfs.create_dir_all(Path::new("/d")).unwrap();
        vfs.fail_after(2);
        let f = vfs.open(Path::new("/d/a"), OpenMode::CreateNew).unwrap();
        f.write_all_at(0, b"x").unwrap();
        assert_eq!(vfs.operations(), 2);
        let err = f.sync_data().unwrap_err();
        assert!(err.to_string().contains("simulated power cut"));
        assert!(f.len().is_err());
        assert!(vfs.is_cut());
    }

    #[test]
    fn crash_is_deterministic_per_seed() {
        let run = |seed| {
            let vfs = SimVfs::new(seed);
            vfs.create_dir_all(Path::new("/d")).unwrap();
            let f = write_file(&vfs, "/d/a", b"", true);
            vfs.sync_dir(Path::new("/d")).unwrap();
            for i in 0..10u8 {
                f.write_all_at(u64::from(i) * 3, &[i; 3]).unwrap();
            }
            vfs.crash().read_all(Path::new("/d/a")).unwrap()
        };
        for seed in 0..20 {
            assert_eq!(run(seed), run(seed));
        }
    }
}
