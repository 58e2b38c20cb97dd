//! Database files in and out of containers as tar archives (Docker's archive API), with
//! the installer's staging rule: the archive that goes in holds the file under a staging
//! name only. Docker's extraction fsyncs nothing, so the target then runs `mirrorlab-init
//! install-file` in the member's container (engine/src/container/install.rs): fsync of the
//! staging file, rename to the real name, fsync of the directory, as the local target does.
//! The engine's file name points at the old file until the new one is whole and durable.

use super::copy::{DATABASE_FILE, STAGING_FILE};
use std::io::Read;

/// Largest database file copied through the Docker API: the archive is held in memory.
pub const MAX_COPY_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// The engine's user in the image (images/engine/Dockerfile): files it must write to are
/// owned by it.
pub const ENGINE_UID: u64 = 10001;

/// The one regular file of a tar archive that Docker made of a file path.
pub fn file_from_archive(archive: &[u8]) -> Result<Vec<u8>, String> {
    let mut ar = tar::Archive::new(archive);
    let entries = ar.entries().map_err(|e| format!("unreadable archive from Docker: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("unreadable archive from Docker: {e}"))?;
        if entry.header().entry_type().is_file() {
            let size = entry.header().size().map_err(|e| format!("bad archive entry: {e}"))?;
            if size > MAX_COPY_BYTES {
                return Err(format!(
                    "the database file is {size} bytes, over the {MAX_COPY_BYTES} bytes the docker target copies"
                ));
            }
            let mut out = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut out).map_err(|e| format!("reading the archive: {e}"))?;
            if out.len() as u64 != size {
                return Err(format!("the archive holds {} of the file's {size} bytes", out.len()));
            }
            return Ok(out);
        }
    }
    Err("the archive from Docker holds no file".into())
}

/// Where the staging file and database `db`'s file are under the data directory `root`.
pub fn paths_in_volume(root: &str, db: &str) -> (String, String) {
    let dir = format!("{}/databases/{db}", root.trim_end_matches('/'));
    (format!("{dir}/{STAGING_FILE}"), format!("{dir}/{DATABASE_FILE}"))
}

/// Appends one entry to an archive for a container: a directory (`bytes` None, its path
/// ending in `/`) or a regular file, owned by `uid` with `mode`.
pub fn append_entry(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: Option<&[u8]>,
    mode: u32,
    uid: u64,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(if bytes.is_some() { tar::EntryType::Regular } else { tar::EntryType::Directory });
    h.set_path(path)?;
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(uid);
    h.set_size(bytes.map_or(0, |b| b.len() as u64));
    h.set_cksum();
    b.append(&h, bytes.unwrap_or_default())
}

/// The archive to extract into the data directory (`/data`) that puts `bytes` beside
/// database `db`'s file under the staging name: the directories, then the staging file.
pub fn staging_archive(db: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("building the archive for {db}: {e}");
    let mut b = tar::Builder::new(Vec::new());
    for d in ["databases/".to_string(), format!("databases/{db}/")] {
        append_entry(&mut b, &d, None, 0o755, ENGINE_UID).map_err(io)?;
    }
    append_entry(&mut b, &format!("databases/{db}/{STAGING_FILE}"), Some(bytes), 0o644, ENGINE_UID).map_err(io)?;
    b.into_inner().map_err(io)
}

/// The archive that gives a container its TLS files before it first starts (extracted at
/// `/`): `tls/` readable by the image's user only, the CA's and the party's certificates,
/// and the party's key mode 0600. They live in the container's own writable layer: never
/// in an image layer, never in the environment.
pub fn tls_archive(ca: &[u8], certificate: &[u8], key: &[u8]) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("building the TLS archive: {e}");
    let mut b = tar::Builder::new(Vec::new());
    append_entry(&mut b, "tls/", None, 0o500, ENGINE_UID).map_err(io)?;
    let names = super::docker_layout::TLS_FILES;
    for ((name, bytes), mode) in names.iter().zip([ca, certificate, key]).zip([0o444, 0o444, 0o600]) {
        append_entry(&mut b, &format!("tls/{name}"), Some(bytes), mode, ENGINE_UID).map_err(io)?;
    }
    b.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_holds_the_staging_file_only_never_the_real_name() {
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let ar = staging_archive("COMPANY", &bytes).unwrap();
        let mut a = tar::Archive::new(ar.as_slice());
        let entries: Vec<(String, tar::EntryType, Option<String>, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    h.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.link_name().unwrap().map(|l| l.display().to_string()),
                    h.uid().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["databases/", "databases/COMPANY/", "databases/COMPANY/mirrorlab.dat.staging"]);
        assert_eq!(entries[2].1, tar::EntryType::Regular);
        assert!(entries.iter().all(|e| e.2.is_none()), "no links: the rename is install-file's");
        assert!(entries.iter().all(|e| e.3 == ENGINE_UID));
        // The staging file lands where install-file is told to find it.
        let (staging, file) = paths_in_volume("/data/", "COMPANY");
        assert_eq!(staging, format!("/data/{}", names[2]));
        assert_eq!(file, "/data/databases/COMPANY/mirrorlab.dat");
        // What goes in comes out whole.
        assert_eq!(file_from_archive(&ar).unwrap(), bytes);
    }

    #[test]
    fn an_archive_without_a_file_is_an_error() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_path("d/").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        let err = file_from_archive(&b.into_inner().unwrap()).unwrap_err();
        assert!(err.contains("no file"), "{err}");
    }

    #[test]
    fn the_tls_archive_gives_the_key_to_the_images_user_only() {
        let archive = tls_archive(b"ca", b"cert", b"key").unwrap();
        let mut ar = tar::Archive::new(&archive[..]);
        let entries: Vec<(String, u32, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.mode().unwrap(), h.uid().unwrap())
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("tls/".to_string(), 0o500, ENGINE_UID),
                ("tls/ca.pem".to_string(), 0o444, ENGINE_UID),
                ("tls/certificate.pem".to_string(), 0o444, ENGINE_UID),
                ("tls/key.pem".to_string(), 0o600, ENGINE_UID),
            ]
        );
    }
}
