//! After faults stop, the mirror heals: one open primary, an active backup, the DR async
//! connected, identical journals, and every acknowledged record on all of them.
//!
//! Guards liveness: trouble ends, a lost primary is replaced, a former primary rejoins
//! (rewinding a diverged tail), and nothing waits forever on a member that came back.

use super::super::node::SimNode;
use super::acked_commits_survive::AckedCommits;
use crate::mirror::failover::{MemberKind, MemberStatus};

pub fn check(nodes: &[SimNode], acked: &AckedCommits) -> Result<(), String> {
    let describe = || {
        nodes
            .iter()
            .map(|n| {
                let status = n.member.as_ref().map_or("crashed".to_string(), |m| m.status().to_string());
                format!("{}: {status}, epoch {}, journal {}", n.id, n.durable_epoch, n.journal.len())
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut primaries = Vec::new();
    for n in nodes {
        let Some(m) = &n.member else {
            return Err(format!("members_converge: {} still down ({})", n.id, describe()));
        };
        if m.is_open_primary() {
            primaries.push(n);
        }
    }
    let [primary] = primaries.as_slice() else {
        return Err(format!("members_converge: {} open primaries ({})", primaries.len(), describe()));
    };
    for n in nodes {
        let m = n.member.as_ref().expect("checked running");
        if n.id != primary.id {
            let expected = match m.kind() {
                MemberKind::Failover => MemberStatus::Backup,
                _ => MemberStatus::Connected,
            };
            if m.status() != expected {
                return Err(format!("members_converge: {} is {} not {expected} ({})", n.id, m.status(), describe()));
            }
        }
        if n.journal != primary.journal {
            return Err(format!("members_converge: journals differ ({})", describe()));
        }
        acked.check_primary(n, "after healing")?;
    }
    Ok(())
}
