//! `mirrorlab-init install-file`: makes a file that was written without fsync (Docker's
//! archive extraction writes none) durable, then gives it its real name. The installer's
//! docker target uploads a database file under a staging name and runs this in the
//! member's container: fsync the file, rename it into place, fsync the directory. Until
//! the rename the real name points at the old file; after it, at the whole new one, and a
//! power cut cannot undo the rename while leaving the data unwritten.

use std::path::Path;

/// Installs `staging` as `to` (same directory, so the rename is atomic). Errors say what
/// failed on which path.
pub fn install_file(staging: &Path, to: &Path) -> Result<(), String> {
    let dir_of = |p: &Path| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let dir = dir_of(to);
    if dir_of(staging) != dir {
        return Err(format!(
            "{} and {} are in different directories: the rename would not be atomic",
            staging.display(),
            to.display()
        ));
    }
    let durable = std::fs::File::open(staging)
        .map_err(|e| format!("cannot open {}: {e}", staging.display()))
        .and_then(|f| f.sync_all().map_err(|e| format!("fsync of {} failed: {e}", staging.display())))
        .and_then(|()| {
            std::fs::rename(staging, to)
                .map_err(|e| format!("cannot rename {} to {}: {e}", staging.display(), to.display()))
        });
    if let Err(e) = durable {
        // A copy that cannot be installed is removed: it may be gigabytes.
        let _ = std::fs::remove_file(staging);
        return Err(e);
    }
    // The rename is a change of the directory: durable only once the directory is synced.
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("fsync of the directory {} failed: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_staging_file_replaces_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("mirrorlab.dat");
        let staging = dir.path().join("mirrorlab.dat.staging");
        std::fs::write(&to, b"old").unwrap();
        let new: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&staging, &new).unwrap();
        install_file(&staging, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), new);
        assert!(!staging.exists(), "the staging name is gone after the rename");
    }

    #[test]
    fn a_missing_staging_file_is_an_error_naming_it_and_the_old_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("mirrorlab.dat");
        std::fs::write(&to, b"old").unwrap();
        let staging = dir.path().join("mirrorlab.dat.staging");
        let err = install_file(&staging, &to).unwrap_err();
        assert!(err.contains("cannot open") && err.contains("mirrorlab.dat.staging"), "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), b"old");
    }

    #[test]
    fn a_copy_that_cannot_take_the_name_is_removed_and_the_error_names_both() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory under the real name: rename(2) refuses to replace it.
        let to = dir.path().join("mirrorlab.dat");
        std::fs::create_dir(&to).unwrap();
        std::fs::write(to.join("inside"), b"x").unwrap();
        let staging = dir.path().join("mirrorlab.dat.staging");
        std::fs::write(&staging, b"new").unwrap();
        let err = install_file(&staging, &to).unwrap_err();
        assert!(err.contains("cannot rename") && err.contains("mirrorlab.dat.staging"), "{err}");
        assert!(!staging.exists(), "the staging file is removed");
        assert!(to.join("inside").exists(), "what had the name is untouched");
    }

    #[test]
    fn files_in_different_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let staging = dir.path().join("a/f.staging");
        std::fs::write(&staging, b"x").unwrap();
        let err = install_file(&staging, &dir.path().join("f")).unwrap_err();
        assert!(err.contains("different directories"), "{err}");
        assert!(staging.exists());
    }
}
