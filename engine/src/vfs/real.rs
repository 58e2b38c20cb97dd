//! The real file system: the only place that touches `std::fs` for journal and database
//! data.

use super::{OpenMode, Vfs, VfsFile};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`Vfs`] over `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealVfs;

impl RealVfs {
    pub fn new() -> RealVfs {
        RealVfs
    }
}

/// A file opened through [`RealVfs`]: positional reads and writes (`pread`/`pwrite`).
#[derive(Debug)]
pub struct RealFile {
    file: File,
}

impl VfsFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    /// Growing allocates the blocks (`fallocate`, where supported) so that later writes
    /// inside the file need fewer metadata updates at `fdatasync`; the new bytes read as
    /// zeros either way.
    fn set_len(&self, len: u64) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::io::AsRawFd;
            let current = self.len()?;
            if len > current {
                let (Ok(start), Ok(extra)) = (i64::try_from(current), i64::try_from(len - current)) else {
                    return Err(io::Error::new(io::ErrorKind::InvalidInput, "file length out of range"));
                };
                // SAFETY: fallocate only reads its integer arguments; the descriptor is open
                // for as long as `self.file` lives.
                let rc = unsafe { libc::fallocate(self.file.as_raw_fd(), 0, start, extra) };
                if rc == 0 {
                    return Ok(());
                }
                // Unsupported by this file system: fall through to a plain (sparse) extension.
            }
        }
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// `flock(LOCK_EX | LOCK_NB)`: held by the open file description, so a second open of
    /// the same inode (through another path or a hard link), in this process or another,
    /// conflicts.
    fn try_lock(&self) -> io::Result<()> {
        self.flock(libc::LOCK_EX | libc::LOCK_NB)
    }

    fn unlock(&self) -> io::Result<()> {
        self.flock(libc::LOCK_UN)
    }
}

impl RealFile {
    fn flock(&self, operation: libc::c_int) -> io::Result<()> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock only reads its integer arguments; the descriptor is open for as long
        // as `self.file` lives.
        let rc = unsafe { libc::flock(self.file.as_raw_fd(), operation) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Vfs for RealVfs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::CreateNew => options.read(true).write(true).create_new(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::ReadOnly => options.read(true),
        };
        let file = options.open(path).map_err(|e| with_path(e, path))?;
        Ok(Arc::new(RealFile { file }))
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path).map_err(|e| with_path(e, path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| with_path(e, dir))? {
            out.push(entry?.path());
        }
        out.sort();
        Ok(out)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to).map_err(|e| with_path(e, from))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path).map_err(|e| with_path(e, path))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| with_path(e, dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_write_grow_read_list_rename_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let vfs = RealVfs::new();
        let dir = tmp.path().join("d");
        vfs.create_dir_all(&dir).unwrap();
        let a = dir.join("a");
        let f = vfs.open(&a, OpenMode::CreateNew).unwrap();
        assert!(vfs.open(&a, OpenMode::CreateNew).is_err());
        f.write_all_at(0, b"hello").unwrap();
        f.set_len(4096).unwrap();
        f.sync_data().unwrap();
        vfs.sync_dir(&dir).unwrap();
        assert_eq!(f.len().unwrap(), 4096);
        let mut buf = [1u8; 8];
        f.read_exact_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"hello\0\0\0");
        assert!(f.read_exact_at(4090, &mut buf).is_err());
        f.set_len(5).unwrap();
        assert_eq!(f.len().unwrap(), 5);
        let b = dir.join("b");
        vfs.rename(&a, &b).unwrap();
        assert_eq!(vfs.list(&dir).unwrap(), vec![b.clone()]);
        let ro = vfs.open(&b, OpenMode::ReadOnly).unwrap();
        f.try_lock().unwrap();
        assert_eq!(ro.try_lock().unwrap_err().kind(), io::ErrorKind::WouldBlock, "a second open conflicts");
        let linked = dir.join("linked");
        std::fs::hard_link(&b, &linked).unwrap();
        let through_link = vfs.open(&linked, OpenMode::ReadWrite).unwrap();
        assert_eq!(through_link.try_lock().unwrap_err().kind(), io::ErrorKind::WouldBlock, "a hard link conflicts");
        f.unlock().unwrap();
        through_link.try_lock().unwrap();
        drop(through_link);
        ro.try_lock().unwrap();
        ro.unlock().unwrap();
        vfs.remove_file(&linked).unwrap();
        assert!(ro.write_all_at(0, b"x").is_err());
        vfs.remove_file(&b).unwrap();
        assert!(!vfs.exists(&b));
    }
}
