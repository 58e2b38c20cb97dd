//! The member's status in the Mirror Monitor's words, from the driver's published view.

use super::driver::Published;
use super::latency;
use super::store::MirrorStore;
use crate::agent::status::MirrorState;
use crate::mirror::config::{MemberType, MirrorConfig};
use crate::mirror::failover::MemberId;
use crate::mirror::status::{Latency, MemberLine, MemberStatus, MirrorStatus, StatusLine};

pub fn status(
    cfg: &MirrorConfig,
    me: MemberId,
    p: &Published,
    state: &MirrorState,
    store: &dyn MirrorStore,
) -> MirrorStatus {
    let journal = store.mirror_journal();
    let (last, durable) = (journal.last_position(), journal.durable_position());
    let primary_here = p.primary == Some(me);
    // A member that cannot rejoin says so in its status line, as the reference does.
    let status = StatusLine { status: p.status, problem: p.problem.clone() };
    let mut members = Vec::new();
    // Types as changed by promotions and demotions since the configuration was written.
    let type_of = |id: MemberId| p.types.get(&id).copied().unwrap_or(cfg.members[id.0 as usize].member_type);
    for (i, m) in cfg.members.iter().enumerate() {
        let id = MemberId(i as u8);
        let line = if id == me {
            Some(MemberLine {
                name: m.name.clone(),
                member_type: type_of(id),
                status: p.status,
                journal_transfer: if primary_here {
                    "N/A".into()
                } else if p.status == MemberStatus::Backup {
                    // The active backup, as the primary's monitor also says.
                    "Active".into()
                } else {
                    transfer(p, p.primary, durable)
                },
                dejournaling: if primary_here {
                    "N/A".into()
                } else {
                    let upstream = p.primary.and_then(|m| p.peers.get(&m)).cloned().unwrap_or_default();
                    behind(durable, upstream.position, upstream.caught_up_at)
                },
                // Bytes and files are measured where the records are: on the primary.
                journal_latency: own_latency(p, durable),
                database_latency: own_latency(p, durable),
                position: durable,
                last_heard_ms: None,
            })
        } else if primary_here || p.primary == Some(id) {
            let peer = p.peers.get(&id).cloned().unwrap_or_default();
            let peer_status = if p.primary == Some(id) {
                MemberStatus::Primary
            } else if !peer.connected {
                MemberStatus::Down
            } else if p.active_backup == Some(id) {
                MemberStatus::Backup
            } else if type_of(id) == MemberType::Failover || peer.position < durable {
                MemberStatus::Synchronizing
            } else {
                MemberStatus::Connected
            };
            let journal_transfer = if p.primary == Some(id) {
                "N/A".to_string()
            } else if !peer.connected {
                format!("Disconnected on {}", peer.since.clone().unwrap_or_else(|| "an unknown time".into()))
            } else if p.active_backup == Some(id) {
                "Active".to_string()
            } else {
                behind(peer.position, durable, peer.caught_up_at)
            };
            let member_latency = if primary_here && p.primary != Some(id) {
                latency::of_member(&journal, peer.position)
            } else {
                Latency::default()
            };
            Some(MemberLine {
                name: m.name.clone(),
                member_type: type_of(id),
                status: peer_status,
                dejournaling: if journal_transfer.starts_with("Disconnected") {
                    "Disconnected".into()
                } else if p.primary == Some(id) {
                    "N/A".into()
                } else {
                    behind(peer.position, durable, peer.caught_up_at)
                },
                journal_transfer,
                journal_latency: member_latency,
                database_latency: member_latency,
                position: peer.position,
                last_heard_ms: peer.heard_at.map(|t| t.elapsed().as_millis() as u64),
            })
        } else {
            None
        };
        members.extend(line);
    }
    MirrorStatus {
        mirror: cfg.name.clone(),
        member: cfg.this_member.clone(),
        member_type: type_of(me),
        status,
        primary: p.primary.map(|m| cfg.members[m.0 as usize].name.clone()),
        epoch: state.epoch.max(p.epoch),
        failover_mode: p.failover_mode.clone(),
        arbiter: p.arbiter.clone(),
        no_failover: p.no_failover,
        journal_position: last,
        durable_position: durable,
        acked_position: p.acked,
        members,
        databases: store.databases(),
    }
}

/// A member's own latency: how long since it last had everything the primary reported
/// durable.
fn own_latency(p: &Published, durable: u64) -> Latency {
    let upstream = p.primary.and_then(|m| p.peers.get(&m));
    match upstream {
        Some(u) if u.position > durable => {
            Latency { time_ms: u.caught_up_at.map_or(0, |t| t.elapsed().as_millis() as u64), ..Latency::default() }
        }
        _ => Latency::default(),
    }
}

/// This member's journal transfer from the primary.
fn transfer(p: &Published, primary: Option<MemberId>, durable: u64) -> String {
    match primary.and_then(|m| p.peers.get(&m)) {
        Some(peer) if peer.connected && peer.position <= durable => "Caught up".into(),
        Some(peer) if peer.connected => format!("{} records behind", peer.position - durable),
        Some(peer) => format!("Disconnected on {}", peer.since.clone().unwrap_or_else(|| "an unknown time".into())),
        None => "Disconnected".into(),
    }
}

fn behind(position: u64, durable: u64, caught_up_at: Option<std::time::Instant>) -> String {
    if position >= durable {
        "Caught up".into()
    } else {
        let ms = caught_up_at.map_or(0, |t| t.elapsed().as_millis());
        format!("{:.1} s behind", ms as f64 / 1000.0)
    }
}
