//! The lab's admin password: drawn once from the operating system's generator when the
//! lab is first built, kept in `<lab-dir>/admin.password` (mode 0600, never printed again
//! after `up` showed it), handed to each engine with `engine start --password-file`, and
//! sent by every verb that talks to a member (HTTP Basic, or `MIRRORLAB_PASSWORD` for
//! `engine session`).
//!
//! Invariant: the password never appears on a command line (`ps` shows those to every
//! user) and is written only to files only its owner can read.

use crate::labdir::LabDir;
use rand::Rng;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The engine's bootstrap user, which `--password-file` sets.
pub const ADMIN_USER: &str = engine::security::BOOTSTRAP_USER;
/// The file in the lab directory.
pub const PASSWORD_FILE: &str = "admin.password";
/// 24 characters of 62: about 143 bits.
const PASSWORD_CHARS: usize = 24;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn password_file(dir: &LabDir) -> PathBuf {
    dir.root.join(PASSWORD_FILE)
}

/// The lab's password, if the lab has one.
pub fn load(dir: &LabDir) -> Option<String> {
    read(&password_file(dir))
}

/// A password file's password (one line).
pub fn read(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let p = text.trim_end_matches(['\n', '\r']).to_string();
    (!p.is_empty()).then_some(p)
}

/// The password the Compose target's installer service reads from the file
/// `MIRRORLAB_PASSWORD_FILE` names (the secrets volume), as the engines do.
pub fn from_env() -> Option<String> {
    read(Path::new(&std::env::var_os("MIRRORLAB_PASSWORD_FILE")?))
}

/// The lab's password, drawn and saved when it has none; `true` when drawn now.
pub fn ensure(dir: &LabDir) -> std::io::Result<(String, bool)> {
    ensure_in(&dir.root)
}

/// The password file in `dir` (`mirrorlab secrets --dir`: the Compose lab's secrets
/// volume), drawn when missing; `true` when drawn now.
pub fn ensure_in(dir: &Path) -> std::io::Result<(String, bool)> {
    if let Some(p) = read(&dir.join(PASSWORD_FILE)) {
        return Ok((p, false));
    }
    std::fs::create_dir_all(dir)?;
    let mut rng = rand::rngs::OsRng;
    let password: String = (0..PASSWORD_CHARS).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
    write_private(&dir.join(PASSWORD_FILE), &password)?;
    Ok((password, true))
}

/// Writes a password file: created 0600 (never readable by others, not even for a
/// moment), synced, renamed into place, the directory synced.
pub fn write_private(path: &Path, password: &str) -> std::io::Result<()> {
    let staging = path.with_extension("tmp");
    let _ = std::fs::remove_file(&staging);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staging)?;
    f.write_all(format!("{password}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&staging, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Where a docker member's engine reads the password: its data volume, which only the
/// engine's user can read (the file is 0600 and owned by it).
pub const PASSWORD_IN_VOLUME: &str = "/data/admin.password";
/// The environment that points `engine start` at it.
pub const PASSWORD_FILE_ENV: &str = "MIRRORLAB_PASSWORD_FILE=/data/admin.password";

/// A tar archive holding `admin.password` (0600, owned by the engine's user in the image),
/// to extract into a created, not yet started engine container's `/data`.
pub fn volume_archive(password: &str, uid: u64) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("building the password archive: {e}");
    let bytes = format!("{password}\n").into_bytes();
    let mut b = tar::Builder::new(Vec::new());
    crate::target::docker_copy::append_entry(&mut b, PASSWORD_FILE, Some(&bytes), 0o600, uid).map_err(io)?;
    b.into_inner().map_err(io)
}

/// What `up` prints once, when it drew the password.
pub fn first_login_text(dir: &LabDir, password: &str) -> String {
    format!(
        "Admin password (shown once; stored in {}, mode 0600): {password}\n\
         Log in: mirrorlab session MEMBER (uses it), redis-cli --user {ADMIN_USER} --pass \"$(cat {})\" -p PORT, \
         curl -u {ADMIN_USER}:PASSWORD, or the portal's login as user {ADMIN_USER}",
        password_file(dir).display(),
        password_file(dir).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_password_is_drawn_once_and_kept_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LabDir::new(tmp.path(), "lab");
        assert!(load(&dir).is_none());
        let (p, drawn) = ensure(&dir).unwrap();
        assert!(drawn);
        assert_eq!(p.len(), PASSWORD_CHARS);
        assert!(p.bytes().all(|b| ALPHABET.contains(&b)));
        let mode = std::fs::metadata(password_file(&dir)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ensure(&dir).unwrap(), (p.clone(), false));
        assert_eq!(load(&dir), Some(p));
    }
}
