//! Installing a database file on a member: copy into a staging file, fsync it, rename it
//! into place, fsync the directory. Until the rename the member's database directory holds
//! nothing new; after it, the whole file. A crash or an error never leaves half a copy
//! where the engine would mount it.

use std::io::Read;
use std::path::Path;

/// The file name the engine mounts in a database directory.
pub const DATABASE_FILE: &str = "mirrorlab.dat";
/// The name a copy is written under beside the database file until it is installed.
pub const STAGING_FILE: &str = "mirrorlab.dat.staging";
/// Copy chunk: progress is reported after each.
const COPY_CHUNK: u64 = 64 * 1024 * 1024;

/// Copies `from` into `dir/mirrorlab.dat` (creating `dir`); returns the bytes copied.
/// Errors say what failed and where.
pub fn install_file(from: &Path, dir: &Path, progress: &dyn Fn(u64, u64)) -> Result<u64, String> {
    let io = |what: &str, e: std::io::Error| format!("{what} ({}): {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the database directory", e))?;
    let mut src = std::fs::File::open(from).map_err(|e| format!("cannot open {}: {e}", from.display()))?;
    let total = src.metadata().map_err(|e| io("cannot stat the source", e))?.len();
    let staging = dir.join(STAGING_FILE);
    let result = (|| {
        let mut dst = std::fs::File::create(&staging).map_err(|e| io("cannot create the staging file", e))?;
        let mut done = 0u64;
        loop {
            // io::copy of a Take<File> into a File uses copy_file_range on Linux: the
            // kernel moves the bytes, no round trip through this process.
            let n = std::io::copy(&mut (&mut src).take(COPY_CHUNK), &mut dst).map_err(|e| io("copy failed", e))?;
            if n == 0 {
                break;
            }
            done += n;
            progress(done, total);
        }
        if done != total {
            return Err(format!(
                "copied {done} bytes of {total} from {}: the source changed during the copy",
                from.display()
            ));
        }
        drop(dst);
        // fsync, rename into place, fsync the directory: the rule the docker target's
        // `mirrorlab-init install-file` applies inside a container.
        engine::container::install::install_file(&staging, &dir.join(DATABASE_FILE))?;
        Ok(done)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    result
}

/// Writes a small file whole (a merge file the engine watches): a staging file, synced,
/// renamed into place, so the engine never reads half of it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let staging = path.with_extension("staging");
    let mut f = std::fs::File::create(&staging)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&staging, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_lands_whole_and_leaves_no_staging_file() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src.dat");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &bytes).unwrap();
        let dir = t.path().join("member/databases/COMPANY");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(DATABASE_FILE), b"old").unwrap();
        let seen = std::cell::Cell::new(0);
        let n = install_file(&src, &dir, &|done, total| {
            assert!(done <= total);
            seen.set(done);
        })
        .unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(seen.get(), n);
        assert_eq!(std::fs::read(dir.join(DATABASE_FILE)).unwrap(), bytes);
        assert!(!dir.join(STAGING_FILE).exists());
    }

    #[test]
    fn a_failed_copy_leaves_the_old_file_in_place() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("db");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(DATABASE_FILE), b"old").unwrap();
        let err = install_file(&t.path().join("missing.dat"), &dir, &|_, _| {}).unwrap_err();
        assert!(err.contains("missing.dat"), "{err}");
        assert_eq!(std::fs::read(dir.join(DATABASE_FILE)).unwrap(), b"old");
        assert!(!dir.join(STAGING_FILE).exists());
    }
}
