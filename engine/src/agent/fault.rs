//! The fault switch: simulated network partitions without root or containers.
//!
//! When the agent runs with `--allow-fault-injection`, `FAULT DROP peer...` puts peers in a
//! set; the agent then refuses and closes every connection of a dropped peer. A *peer* is
//! the name a connection gave (`ARBITER HELLO mirror member` or `CLIENT SETNAME name`), or
//! its source address as an IP (`127.0.0.1`) or IP and port (`127.0.0.1:50312`).

use std::collections::BTreeSet;
use std::net::SocketAddr;

/// Most peers in the set; a test partition needs a handful.
pub const MAX_DROPPED_PEERS: usize = 64;
/// Longest peer name, in bytes.
pub const MAX_PEER_BYTES: usize = 128;

/// The dropped peers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FaultSet {
    dropped: BTreeSet<String>,
}

impl FaultSet {
    /// Adds peers; all or none (an over-long name or a full set changes nothing).
    pub fn drop_peers<S: AsRef<str>>(&mut self, peers: &[S]) -> Result<(), String> {
        if let Some(p) = peers.iter().find(|p| p.as_ref().is_empty() || p.as_ref().len() > MAX_PEER_BYTES) {
            return Err(format!(
                "ERR peer name '{}' must be 1 to {MAX_PEER_BYTES} bytes",
                p.as_ref().chars().take(MAX_PEER_BYTES).collect::<String>()
            ));
        }
        let mut next = self.dropped.clone();
        next.extend(peers.iter().map(|p| p.as_ref().to_string()));
        if next.len() > MAX_DROPPED_PEERS {
            return Err(format!("ERR at most {MAX_DROPPED_PEERS} peers can be dropped at once"));
        }
        self.dropped = next;
        Ok(())
    }

    pub fn heal(&mut self) {
        self.dropped.clear();
    }

    pub fn list(&self) -> Vec<String> {
        self.dropped.iter().cloned().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.dropped.is_empty()
    }

    /// Whether a connection with this source and these names (CLIENT SETNAME, ARBITER
    /// HELLO members) is dropped.
    pub fn drops<'a>(&self, source: Option<SocketAddr>, names: impl IntoIterator<Item = &'a str>) -> bool {
        if self.dropped.is_empty() {
            return false;
        }
        if let Some(addr) = source {
            if self.dropped.contains(&addr.ip().to_string()) || self.dropped.contains(&addr.to_string()) {
                return true;
            }
        }
        names.into_iter().any(|n| self.dropped.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sources_are_dropped_until_healed() {
        let mut f = FaultSet::default();
        let src: SocketAddr = "10.0.0.7:50312".parse().unwrap();
        assert!(!f.drops(Some(src), ["A"]));
        f.drop_peers(&["A", "10.0.0.9"]).unwrap();
        assert!(f.drops(None, ["A"]));
        assert!(f.drops(Some(src), ["X", "A"]));
        assert!(!f.drops(Some(src), ["B"]));
        assert!(f.drops(Some("10.0.0.9:1".parse().unwrap()), []));
        f.drop_peers(&["10.0.0.7:50312"]).unwrap();
        assert!(f.drops(Some(src), []));
        assert!(!f.drops(Some("10.0.0.7:50313".parse().unwrap()), []));
        assert_eq!(f.list(), vec!["10.0.0.7:50312", "10.0.0.9", "A"]);
        f.heal();
        assert!(f.is_empty());
        assert!(!f.drops(Some(src), ["A"]));
    }

    #[test]
    fn limits_apply_to_the_whole_request() {
        let mut f = FaultSet::default();
        assert!(f.drop_peers(&["ok", ""]).is_err());
        assert!(f.is_empty(), "nothing added when one name is bad");
        let many: Vec<String> = (0..=MAX_DROPPED_PEERS).map(|i| format!("p{i}")).collect();
        assert!(f.drop_peers(&many).unwrap_err().contains("at most"));
        assert!(f.is_empty());
        f.drop_peers(&many[..MAX_DROPPED_PEERS]).unwrap();
        assert_eq!(f.list().len(), MAX_DROPPED_PEERS);
    }
}
