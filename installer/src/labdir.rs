//! The lab's own state on disk: `<lab-dir>/lab.json` (ports chosen once, whether the
//! initial data was loaded) beside one directory per member and one for the arbiter.
//! Ports are chosen when the lab is first created and kept, so a restarted member comes
//! back on the addresses the mirror configuration names.

use crate::manifest::{Manifest, Ports};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberPorts {
    pub superserver: u16,
    pub web: u16,
    pub mirror: u16,
    pub agent: u16,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    pub lab: String,
    pub arbiter_port: u16,
    pub members: BTreeMap<String, MemberPorts>,
    /// The manifest's `data:` was loaded (it is loaded once, when the lab is first built).
    pub data_loaded: bool,
}

/// The name of the directory holding labs, found as git finds `.git`.
pub const BASE_NAME: &str = ".mirrorlab";

/// The lab directory when `--lab-dir` is not given: the nearest `.mirrorlab` directory in
/// `cwd` or one of its parents, so the verbs work from a subdirectory of where `up` ran;
/// `cwd/.mirrorlab` when there is none (where `up` creates it). The path is absolute when
/// `cwd` is, so an error naming it says which one was used.
pub fn find_base(cwd: &Path) -> PathBuf {
    cwd.ancestors().map(|d| d.join(BASE_NAME)).find(|d| d.is_dir()).unwrap_or_else(|| cwd.join(BASE_NAME))
}

#[derive(Clone, Debug)]
pub struct LabDir {
    pub root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LabDirError {
    #[error("lab directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(
        "lab state {path} is unreadable ({reason}); remove the lab with `mirrorlab down --wipe` and run `up` again"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("no free port could be found: {0}")]
    NoPort(std::io::Error),
}

impl LabDir {
    /// `<base>/<lab>`; the default base is the nearest `.mirrorlab` ([`find_base`]).
    pub fn new(base: &Path, lab: &str) -> LabDir {
        LabDir { root: base.join(lab) }
    }

    pub fn state_file(&self) -> PathBuf {
        self.root.join("lab.json")
    }

    pub fn member_dir(&self, member: &str) -> PathBuf {
        self.root.join(member.to_ascii_lowercase())
    }

    pub fn data_dir(&self, member: &str) -> PathBuf {
        self.member_dir(member).join("data")
    }

    pub fn arbiter_dir(&self) -> PathBuf {
        self.root.join("arbiter")
    }

    pub fn exists(&self) -> bool {
        self.state_file().exists()
    }

    pub fn read(&self) -> Result<Option<LabState>, LabDirError> {
        let path = self.state_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| LabDirError::Corrupt { path, reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LabDirError::Io { path, source }),
        }
    }

    /// Writes the state so that a reader sees the old or the new one, never a mix.
    pub fn write(&self, state: &LabState) -> Result<(), LabDirError> {
        let path = self.state_file();
        let io = |source| LabDirError::Io { path: path.clone(), source };
        std::fs::create_dir_all(&self.root).map_err(io)?;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(serde_json::to_string_pretty(state).expect("plain data serialises").as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(())
    }

    /// The lab's state, creating it (ports chosen now) on first use, and adding members
    /// that the manifest gained since. Ports the manifest fixes win.
    pub fn state_for(&self, manifest: &Manifest) -> Result<LabState, LabDirError> {
        let mut state = self.read()?.unwrap_or_else(|| LabState { lab: manifest.lab.clone(), ..LabState::default() });
        let before = state.clone();
        let mut taken: Vec<u16> = std::iter::once(state.arbiter_port)
            .chain(state.members.values().flat_map(|p| [p.superserver, p.web, p.mirror, p.agent]))
            .filter(|&p| p != 0)
            .collect();
        if manifest.arbiter.is_some() {
            let want = manifest.arbiter.as_ref().map(|a| a.port).unwrap_or(0);
            if want != 0 {
                state.arbiter_port = want;
            } else if state.arbiter_port == 0 {
                state.arbiter_port = free_port(&self.root, &mut taken)?;
            }
        }
        for m in &manifest.members {
            let Ports { superserver, web, mirror, agent } = m.ports;
            let entry = state.members.entry(m.name.clone()).or_default();
            for (slot, want) in [
                (&mut entry.superserver, superserver),
                (&mut entry.web, web),
                (&mut entry.mirror, mirror),
                (&mut entry.agent, agent),
            ] {
                if want != 0 {
                    *slot = want;
                } else if *slot == 0 {
                    *slot = free_port(&self.root, &mut taken)?;
                }
            }
        }
        if state != before {
            self.write(&state)?;
        }
        Ok(state)
    }
}

/// Lowest port handed out; below are well-known and registered services.
const PORT_FLOOR: u16 = 10_000;
/// Most ports probed before giving up.
const MAX_PROBES: u32 = 4096;

/// A port free now, distinct from the others chosen in this run, and outside the
/// kernel's ephemeral range: a port from that range could be taken by any outgoing
/// connection (a client, a mirror data channel) between this choice and the member's
/// start. Probing starts at an offset derived from the lab's path, so labs created at the
/// same moment look in different places, and the choice is reproducible.
fn free_port(root: &Path, taken: &mut Vec<u16>) -> Result<u16, LabDirError> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32_768);
    let span = u32::from(ephemeral_low.saturating_sub(PORT_FLOOR));
    if span < 256 {
        return ephemeral_port(taken);
    }
    // FNV-1a of the path: stable across runs, different for different labs.
    let hash = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    let start = (hash % u64::from(span)) as u32;
    for i in 0..MAX_PROBES.min(span) {
        let port = PORT_FLOOR + ((start + i) % span) as u16;
        if taken.contains(&port) {
            continue;
        }
        // The engine binds its ports on every interface: probe the same way.
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            taken.push(port);
            return Ok(port);
        }
    }
    ephemeral_port(taken)
}

/// Fallback when no range outside the ephemeral one is usable: a port the OS picks.
fn ephemeral_port(taken: &mut Vec<u16>) -> Result<u16, LabDirError> {
    for _ in 0..64 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(LabDirError::NoPort)?
            .port();
        if !taken.contains(&port) {
            taken.push(port);
            return Ok(port);
        }
    }
    Err(LabDirError::NoPort(std::io::Error::other("the OS kept handing out taken ports")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_directory_is_found_in_a_parent_as_git_finds_its_own() {
        let t = tempfile::tempdir().unwrap();
        let deep = t.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        // None anywhere: the current directory's, where `up` will create it.
        assert_eq!(find_base(&deep), deep.join(BASE_NAME));
        std::fs::create_dir_all(t.path().join(BASE_NAME)).unwrap();
        assert_eq!(find_base(&deep), t.path().join(BASE_NAME));
        // The nearest wins; a file of that name is no lab directory.
        std::fs::create_dir_all(t.path().join("a").join(BASE_NAME)).unwrap();
        std::fs::write(t.path().join("a/b").join(BASE_NAME), b"").unwrap();
        assert_eq!(find_base(&deep), t.path().join("a").join(BASE_NAME));
    }
}
