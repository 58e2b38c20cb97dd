//! What replication-aware Redis clients read: ROLE, INFO's `# Replication`, HELLO's role,
//! WAIT, and `-READONLY` for a write on a follower.
//!
//! Redis terms for the mirror: the primary is the `master`; every other member (backup,
//! DR and reporting asyncs) is a `slave` whose `master_host`/`master_port` are the
//! primary's superserver address from the mirror configuration, and whose offset is its
//! durable mirror journal position. An instance in no mirror is a master without replicas.
//!
//! The mirror status may take locks in the runtime, so it is awaited here, by the server
//! loop, for the few commands that need it (INFO, ROLE, HELLO, WAIT, and a write refused
//! with PROTECT), never on the hot path of other commands.
//!
//! A write on a follower answers `-READONLY You can't write against a read only replica.
//! (primary is HOST:PORT)`, the error Redis client libraries read as "go to the primary";
//! the management API keeps the engine's PROTECT wording, and so does a connection that
//! asked for it with `CLIENT ERRORS ENGINE` (the terminal, `engine session`). Inside EXEC
//! a queued write refused on a follower has READONLY in its place in the array.

use super::backend::Backend;
use super::codec::Frame;
use super::commands::{self, Command};
use super::execute::{execute, Conn, Flow};
use super::reply::ReplyWriter;
use super::server::Shared;
use crate::instance::JournalId;
use crate::mirror::status::{MemberStatus, MirrorStatus};
use std::time::Duration;

/// The longest WAIT; `WAIT n 0` (forever in Redis) waits this long at most.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// This member as a Redis replication topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Replication {
    /// The mirror primary, or an instance in no mirror.
    pub master: bool,
    /// On a follower: the primary's superserver, when a primary is known.
    pub primary: Option<(String, u16)>,
    /// On a follower: receiving the primary's journal (status Backup or Connected).
    pub link_up: bool,
    /// The durable mirror journal position (this member's replication offset).
    pub offset: u64,
    /// On the primary: the other members.
    pub replicas: Vec<Replica>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Replica {
    pub host: String,
    pub port: u16,
    pub offset: u64,
    pub online: bool,
}

fn split_address(a: &str) -> Option<(String, u16)> {
    let (host, port) = a.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port.parse().ok()?))
}

/// Statuses in which a member receives the primary's journal.
fn streaming(status: MemberStatus) -> bool {
    matches!(status, MemberStatus::Backup | MemberStatus::Connected)
}

/// The topology from a mirror member's status and the members' superserver addresses.
pub(crate) fn from_status(s: &MirrorStatus, superservers: &[(String, String)]) -> Replication {
    let address = |name: &str| superservers.iter().find(|(n, _)| n == name).and_then(|(_, a)| split_address(a));
    let master = s.status == MemberStatus::Primary;
    let replicas = if master {
        s.members
            .iter()
            .filter(|m| m.name != s.member)
            .filter_map(|m| {
                let (host, port) = address(&m.name)?;
                Some(Replica { host, port, offset: m.position, online: streaming(m.status) })
            })
            .collect()
    } else {
        Vec::new()
    };
    Replication {
        master,
        primary: if master { None } else { s.primary.as_deref().and_then(address) },
        link_up: !master && streaming(s.status.status),
        offset: s.durable_position,
        replicas,
    }
}

/// This member's topology; `None` when it runs no mirror member.
pub(crate) async fn fetch<B: Backend>(b: &B) -> Option<Replication> {
    let status = b.mirror_status().await?;
    Some(from_status(&status, &b.member_superservers()))
}

/// Whether a command's reply tells the role.
fn needs_topology(cmd: &Command<'_>) -> bool {
    match cmd {
        // EXEC: to answer READONLY in place of a queued write's PROTECT.
        Command::Role | Command::Hello { .. } | Command::Exec => true,
        Command::Info { sections } => super::info::wants_section(sections, "replication"),
        _ => false,
    }
}

/// Runs one command with what it needs from the mirror: the topology fetched before
/// (INFO, ROLE, HELLO), WAIT awaited, and PROTECT on a follower turned into READONLY.
pub(crate) async fn run<B: Backend>(
    b: &B,
    shared: &Shared,
    conn: &mut Conn,
    frame: &Frame,
    cmd: Command<'_>,
    out: &mut Vec<u8>,
) -> Flow {
    if conn.multi.is_none() {
        if let Command::Wait { timeout } = cmd {
            wait(b, conn, timeout, out).await;
            return Flow::Continue;
        }
    }
    // Inside MULTI only EXEC runs now (and with it the queued INFO, ROLE, HELLO).
    if needs_topology(&cmd) && (conn.multi.is_none() || matches!(cmd, Command::Exec)) {
        conn.replication = fetch(b).await;
    }
    let start = out.len();
    let changes_view = matches!(
        cmd,
        Command::Hello { .. }
            | Command::ClientSetName { .. }
            | Command::Namespace { name: Some(_) }
            | Command::TStart
            | Command::TCommit
            | Command::TRollback
            | Command::Durability { mode: Some(_) }
            | Command::Reset
            | Command::Multi
            | Command::Exec
            | Command::Discard
    ) || conn.multi.is_some();
    let flow = execute(b, shared, conn, frame, cmd, out);
    conn.replication = None;
    if changes_view {
        shared.clients.update(conn);
    }
    // The cheap check first: most replies are not PROTECT errors.
    if !conn.engine_errors && refused_as_follower(&out[start..]) && is_write(frame) {
        if let Some(r) = fetch(b).await {
            readonly_instead(conn, &r, frame, out, start);
        }
    }
    flow
}

fn is_write(frame: &Frame) -> bool {
    commands::lookup(frame.arg(0)).is_some_and(|c| c.flags.contains(&"write"))
}

/// On a follower, replaces the write's PROTECT reply at `out[start..]` (the command's
/// whole reply) with READONLY, unless the connection asked for the engine's errors.
pub(crate) fn readonly_instead(conn: &Conn, r: &Replication, frame: &Frame, out: &mut Vec<u8>, start: usize) {
    if !r.master && !conn.engine_errors && refused_as_follower(&out[start..]) && is_write(frame) {
        out.truncate(start);
        ReplyWriter { out, proto: conn.proto }.error(&readonly_error(r));
    }
}

/// A PROTECT refusal because the database is mirrored and this member does not write it.
fn refused_as_follower(reply: &[u8]) -> bool {
    const MARK: &[u8] = b"it is mirrored";
    reply.starts_with(b"-PROTECT ") && reply.windows(MARK.len()).any(|w| w == MARK)
}

pub(crate) fn readonly_error(r: &Replication) -> String {
    let primary = match &r.primary {
        Some((host, port)) => format!("primary is {host}:{port}"),
        None => "no primary is known right now".into(),
    };
    format!("READONLY You can't write against a read only replica. ({primary})")
}

/// WAIT: once everything written so far is confirmed by the backup (or `timeout` passed),
/// answers how many replicas confirmed it: the active backup, or none. Asyncs never
/// confirm (as Redis counts only acknowledging replicas).
async fn wait<B: Backend>(b: &B, conn: &mut Conn, timeout: Duration, out: &mut Vec<u8>) {
    let proto = conn.proto;
    let Some(r) = fetch(b).await else {
        ReplyWriter { out, proto }.integer(0);
        return;
    };
    if !r.master {
        ReplyWriter { out, proto }.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
        return;
    }
    let position = b.sync().mirror;
    let confirmed = match position {
        Some(p) => matches!(tokio::time::timeout(timeout, b.wait_durable(JournalId::Mirror, p)).await, Ok(Ok(()))),
        None => true,
    };
    // Ask again: the backup may have joined or left while waiting.
    let backups = match (confirmed, fetch(b).await) {
        (true, Some(r)) => r.replicas.iter().filter(|x| x.online).count().min(1),
        _ => 0,
    };
    ReplyWriter { out, proto }.integer(backups as i64);
}

/// ROLE's reply.
pub(crate) fn write_role(w: &mut ReplyWriter, r: Option<&Replication>, local_offset: u64) {
    match r {
        None => {
            w.array(3);
            w.bulk(b"master");
            w.integer(local_offset as i64);
            w.array(0);
        }
        Some(r) if r.master => {
            w.array(3);
            w.bulk(b"master");
            w.integer(r.offset as i64);
            w.array(r.replicas.len());
            for x in &r.replicas {
                w.array(3);
                w.bulk(x.host.as_bytes());
                w.bulk(x.port.to_string().as_bytes());
                w.bulk(x.offset.to_string().as_bytes());
            }
        }
        Some(r) => {
            let (host, port) = r.primary.clone().unwrap_or_default();
            w.array(5);
            w.bulk(b"slave");
            w.bulk(host.as_bytes());
            w.integer(i64::from(port));
            w.bulk(if r.link_up { b"connected".as_slice() } else { b"connect" });
            w.integer(r.offset as i64);
        }
    }
}

/// INFO's `# Replication` section.
pub(crate) fn write_info(out: &mut String, r: Option<&Replication>, local_offset: u64) {
    use std::fmt::Write;
    out.push_str("# Replication\r\n");
    // Writing to a String cannot fail.
    let _ = match r {
        None => write!(out, "role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:{local_offset}\r\n"),
        Some(r) if r.master => {
            let online: Vec<&Replica> = r.replicas.iter().filter(|x| x.online).collect();
            let _ = write!(out, "role:master\r\nconnected_slaves:{}\r\n", online.len());
            for (i, x) in online.iter().enumerate() {
                let _ =
                    write!(out, "slave{i}:ip={},port={},state=online,offset={},lag=0\r\n", x.host, x.port, x.offset);
            }
            write!(out, "master_repl_offset:{}\r\n", r.offset)
        }
        Some(r) => {
            let (host, port) = r.primary.clone().unwrap_or_default();
            write!(
                out,
                "role:slave\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nslave_repl_offset:{}\r\nslave_read_only:1\r\nconnected_slaves:0\r\nmaster_repl_offset:{}\r\n",
                if r.link_up { "up" } else { "down" },
                r.offset,
                r.offset
            )
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::memory::sample_status;

    fn addresses() -> Vec<(String, String)> {
        vec![
            ("MIRRORA".into(), "10.0.0.1:1972".into()),
            ("MIRRORB".into(), "10.0.0.2:1972".into()),
            ("DR".into(), "dr.example:51773".into()),
        ]
    }

    #[test]
    fn the_primary_is_the_master_and_the_others_its_replicas() {
        let r = from_status(&sample_status(), &addresses());
        assert!(r.master);
        assert_eq!(r.primary, None);
        assert_eq!(
            r.replicas,
            vec![
                Replica { host: "10.0.0.2".into(), port: 1972, offset: 1042, online: true },
                Replica { host: "dr.example".into(), port: 51773, offset: 1001, online: true },
            ]
        );
    }

    #[test]
    fn backup_and_dr_are_slaves_of_the_primary() {
        for (member, status) in
            [("MIRRORB", MemberStatus::Backup), ("DR", MemberStatus::Connected), ("DR", MemberStatus::Waiting)]
        {
            let mut s = sample_status();
            s.member = member.into();
            s.status = status.into();
            s.durable_position = 1001;
            let r = from_status(&s, &addresses());
            assert!(!r.master);
            assert_eq!(r.primary, Some(("10.0.0.1".into(), 1972)));
            assert_eq!(r.link_up, status != MemberStatus::Waiting);
            assert_eq!(r.offset, 1001);
            assert_eq!(
                readonly_error(&r),
                "READONLY You can't write against a read only replica. (primary is 10.0.0.1:1972)"
            );
        }
        let mut s = sample_status();
        s.status = MemberStatus::Waiting.into();
        s.primary = None;
        let r = from_status(&s, &addresses());
        assert_eq!(
            readonly_error(&r),
            "READONLY You can't write against a read only replica. (no primary is known right now)"
        );
    }

    #[test]
    fn only_follower_refusals_become_readonly() {
        assert!(refused_as_follower(
            b"-PROTECT <PROTECT> COMPANY on this member (backup): it is mirrored, and only the primary writes it\r\n"
        ));
        assert!(!refused_as_follower(b"-PROTECT <PROTECT> USER (mounted read-only)\r\n"));
        assert!(!refused_as_follower(b"+OK\r\n"));
    }
}
