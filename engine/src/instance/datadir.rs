//! The durable data directory: its layout, the instance lock and the state file.
//!
//! ```text
//! <data-dir>/engine.yaml        instance configuration (written atomically)
//! <data-dir>/engine.lock        instance lock (flock) holding the owner's PID
//! <data-dir>/engine.state.json  PID, ports and start time of the running engine
//! <data-dir>/messages.log       the instance's log
//! <data-dir>/databases/<NAME>/mirrorlab.dat
//! <data-dir>/journal/YYYYMMDD.NNN
//! <data-dir>/journal/mirror-<MIRROR>/YYYYMMDD.NNN   the mirror journal of a mirror member
//! ```
//!
//! Invariant: at most one engine process holds the lock of a data directory; the lock is
//! released by the kernel when the process dies, so a crash never leaves it stale.

use crate::error::{EngineError, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_file(&self) -> PathBuf {
        self.root.join("engine.yaml")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("engine.lock")
    }
    pub fn state_file(&self) -> PathBuf {
        self.root.join("engine.state.json")
    }
    pub fn messages_log(&self) -> PathBuf {
        self.root.join("messages.log")
    }
    pub fn journal_dir(&self) -> PathBuf {
        self.root.join("journal")
    }
    /// The mirror journal of a member of mirror `mirror`.
    pub fn mirror_journal_dir(&self, mirror: &str) -> PathBuf {
        self.journal_dir().join(format!("mirror-{mirror}"))
    }

    pub fn databases_dir(&self) -> PathBuf {
        self.root.join("databases")
    }
    /// Directory of a database given as configured: relative paths are under `databases/`.
    pub fn database_dir(&self, configured: &str) -> PathBuf {
        let p = Path::new(configured);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }

    /// The directory of a database that requests (the API, a merge file) may name: a
    /// relative path of plain components (no `..`, not absolute) that stays inside the data
    /// directory once symbolic links are followed. Configured paths elsewhere (engine.yaml
    /// edited by hand) still open; requests cannot create or delete files there.
    pub fn confined_database_dir(&self, configured: &str) -> Result<PathBuf> {
        use std::path::Component;
        let refuse = |why: &str| {
            EngineError::Invalid(format!(
                "database directory {configured:?} {why}: it must be a relative path inside the data directory \
                 (for example databases/NAME)"
            ))
        };
        let p = Path::new(configured);
        if configured.is_empty() || p.is_absolute() {
            return Err(refuse("is absolute or empty"));
        }
        if !p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(refuse("climbs out with .."));
        }
        let wanted = self.root.join(p);
        // Follow symbolic links as far as the path exists: it must still be inside.
        let root = std::fs::canonicalize(&self.root)
            .map_err(|e| EngineError::io(format!("resolving {}", self.root.display()), e))?;
        let mut existing = wanted.as_path();
        while !existing.exists() {
            existing = existing.parent().unwrap_or(&self.root);
        }
        let resolved = std::fs::canonicalize(existing)
            .map_err(|e| EngineError::io(format!("resolving {}", existing.display()), e))?;
        if !resolved.starts_with(&root) {
            return Err(refuse(&format!("leads outside through a symbolic link (to {})", resolved.display())));
        }
        Ok(wanted)
    }

    /// Takes the instance lock, or explains who holds it.
    pub fn lock(&self) -> Result<InstanceLock> {
        std::fs::create_dir_all(&self.root)
            .map_err(|e| EngineError::io(format!("creating data directory {}", self.root.display()), e))?;
        let path = self.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let holder = read_pid(&mut file)
                .map(|p| format!("engine process {p}"))
                .unwrap_or_else(|| "another engine process".into());
            return Err(EngineError::Invalid(format!(
                "data directory {} is in use by {holder}; stop it first (engine stop --data-dir {})",
                self.root.display(),
                self.root.display()
            )));
        }
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        Ok(InstanceLock { _file: file })
    }

    /// The PID of the engine holding the lock, if one does.
    pub fn lock_holder(&self) -> Option<u32> {
        let mut file = File::open(self.lock_file()).ok()?;
        // SAFETY: as above; a shared probe lock taken and released at once.
        let free = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0;
        if free {
            // SAFETY: releasing the probe lock we just took.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return None;
        }
        read_pid(&mut file)
    }

    pub fn write_state(&self, state: &RunState) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).expect("state serialises");
        write_atomically(&self.state_file(), &json)
    }

    pub fn read_state(&self) -> Option<RunState> {
        let bytes = std::fs::read(self.state_file()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Held for the life of the engine; dropping it (or dying) releases the directory.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// What a running engine publishes about itself (read by qlist, stop, the installer).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RunState {
    pub pid: u32,
    pub superserver_port: u16,
    pub web_port: u16,
    pub started_at: String,
    pub version: String,
    /// Set by a clean shutdown: `down, last used ...` in qlist.
    pub stopped_at: Option<String>,
    /// The CA of the superserver's and web port's certificate (absolute path) when they
    /// speak TLS only (`network.client_tls`): the CLI and the agent beside the engine
    /// connect with TLS and believe that CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_tls_ca: Option<String>,
}

/// Writes a file so that readers see the old or the new content, never a mix: temporary
/// file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut f = File::create(&tmp).map_err(|e| EngineError::io(ctx("writing"), e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| EngineError::io(ctx("writing"), e))?;
    std::fs::rename(&tmp, path).map_err(|e| EngineError::io(ctx("renaming into"), e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| EngineError::io(ctx("syncing the directory of"), e))?;
    Ok(())
}

pub use crate::calendar::now_text;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        let held = d.lock().unwrap();
        let err = d.lock().unwrap_err().to_string();
        assert!(err.contains(&format!("engine process {}", std::process::id())), "{err}");
        assert_eq!(d.lock_holder(), Some(std::process::id()));
        drop(held);
        assert_eq!(d.lock_holder(), None);
        d.lock().unwrap();
    }
}
