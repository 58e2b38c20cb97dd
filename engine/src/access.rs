//! Who may connect at all: protected mode, as in Redis.
//!
//! With protected mode on (the default), the superserver, the web port and the agent
//! accept connections from the loopback interface only; any other peer gets one line that
//! says how to change that, and is closed. Together with listening on 127.0.0.1 by default
//! (`network.interface`), an engine started with no configuration is reachable from this
//! machine only. See docs/design/security.md.

use std::net::IpAddr;

/// Whether `ip` is this machine's loopback (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`
/// from a dual-stack listener).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Whether a server in `protected_mode` serves a peer at `ip`.
pub fn admits(protected_mode: bool, ip: IpAddr) -> bool {
    !protected_mode || is_loopback(ip)
}

/// The engine's answer to a refused peer (superserver and web port).
pub const ENGINE_DENIED: &str = "DENIED the engine is running in protected mode: it accepts connections from the \
loopback interface only. To accept connections from other computers, first make sure this port is not reachable \
from untrusted networks, then either set `network.protected_mode: false` in engine.yaml (or in a merge file's \
config.network) and restart, or start the engine with `--protected-mode false` (environment: \
MIRRORLAB_PROTECTED_MODE=false). The container images do this, since their peers connect over the container network.";

/// The agent's answer to a refused peer.
pub const AGENT_DENIED: &str = "DENIED the agent is running in protected mode: it accepts connections from the \
loopback interface only. To accept connections from other computers (mirror members asking the arbiter or another \
member's agent), first make sure this port is not reachable from untrusted networks, then start the agent with \
`--protected-mode false` (environment: MIRRORLAB_AGENT_PROTECTED_MODE=false). The container images do this.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_admitted_in_protected_mode() {
        for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(admits(true, ip.parse().unwrap()), "{ip}");
        }
        for ip in ["192.0.2.2", "10.0.0.1", "::ffff:192.0.2.2", "fe80::1", "0.0.0.0"] {
            assert!(!admits(true, ip.parse().unwrap()), "{ip}");
            assert!(admits(false, ip.parse().unwrap()), "{ip}");
        }
    }
}
