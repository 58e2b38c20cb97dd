//! All disk I/O of the journal and the database files goes through [`Vfs`], so tests can
//! swap the real file system for [`sim::SimVfs`], which loses unsynced writes at a
//! simulated power cut.
//!
//! Invariant: code above this module never touches `std::fs` for journal or database
//! data; only `real.rs` does.

use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod real;
pub mod redb_backend;
pub mod sim;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new file; fails if it exists.
    CreateNew,
    /// Open an existing file for reading and writing.
    ReadWrite,
    /// Open an existing file for reading only.
    ReadOnly,
}

/// A file opened through a [`Vfs`]. Positional I/O only, so one handle can be shared.
pub trait VfsFile: Send + Sync + Debug {
    fn len(&self) -> io::Result<u64>;
    /// Fills `buf` from `offset`; an error if the file is shorter.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// Takes an exclusive advisory lock on the file through this handle, without waiting:
    /// `ErrorKind::WouldBlock` when another open handle holds it (another process, or another
    /// open of the same file, a hard link included). Released by [`VfsFile::unlock`] or when
    /// the last clone of the handle is dropped.
    fn try_lock(&self) -> io::Result<()>;
    fn unlock(&self) -> io::Result<()>;
}

/// A file system. Creation, rename and removal become durable only after
/// [`Vfs::sync_dir`] on the parent directory, as on a real POSIX file system.
pub trait Vfs: Send + Sync + Debug + 'static {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>>;
    fn exists(&self, path: &Path) -> bool;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The entries of a directory (full paths), sorted by name.
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}
