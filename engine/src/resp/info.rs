//! Text for INFO, CLIENT INFO and CONFIG GET in the formats Redis tools parse.
//!
//! `redis_version` reports the Redis protocol level we are compatible with (tools and client
//! libraries check it for features); `mirrorlab_version` is the engine's own version.

use super::execute::Conn;
use super::replication::Replication;
use super::server::Shared;
use crate::instance::{Durability, InstanceStatus};
use std::fmt::Write;
use std::sync::atomic::Ordering;

/// The Redis version whose protocol and command conventions we follow.
pub const REDIS_COMPATIBLE_VERSION: &str = "7.2.0";

const SECTIONS: &[&str] =
    &["server", "clients", "memory", "persistence", "stats", "replication", "keyspace", "mirrorlab", "ecp"];

/// What INFO reports beyond the instance's status and the server's counters.
pub(crate) struct Sources<'a> {
    pub keyspace: &'a Keyspace,
    pub replication: Option<&'a Replication>,
    /// Both ECP roles, when the ECP section is asked for.
    pub ecp: Option<&'a crate::ecp::status::EcpStatus>,
}

/// What INFO's keyspace section says: the connection's namespace and its node count
/// (`None` when counting failed, e.g. the namespace was deleted).
pub(crate) struct Keyspace {
    pub namespace: String,
    pub keys: Option<u64>,
}

/// Whether INFO with these sections shows the keyspace (so the caller counts the nodes
/// only then: counting walks the namespace).
pub(crate) fn wants_keyspace(requested: &[String]) -> bool {
    wants_section(requested, "keyspace")
}

/// Whether INFO with these sections shows `section`.
pub(crate) fn wants_section(requested: &[String], section: &str) -> bool {
    requested.is_empty()
        || requested.iter().any(|s| matches!(s.as_str(), "default" | "all" | "everything") || s == section)
}

/// The process's resident memory in bytes (Linux `/proc`), 0 where it cannot be read.
/// Redis reports its allocator's bytes; the resident set is the honest figure we have.
pub(crate) fn used_memory() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Redis's `used_memory_human`: 1.50M, 812.00K, 3.20G.
fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("G", 1073741824.0), ("M", 1048576.0), ("K", 1024.0)];
    for (unit, size) in UNITS {
        if n as f64 >= size {
            return format!("{:.2}{unit}", n as f64 / size);
        }
    }
    format!("{n}B")
}

/// INFO's text: the requested sections, or all of them for none, `default`, `all` or
/// `everything`. Unknown section names are ignored, as Redis does.
pub(crate) fn info_text(
    status: &InstanceStatus,
    shared: &Shared,
    requested: &[String],
    sources: &Sources<'_>,
) -> String {
    let all = requested.is_empty() || requested.iter().any(|s| matches!(s.as_str(), "default" | "all" | "everything"));
    let mut out = String::with_capacity(1024);
    for section in SECTIONS {
        if !all && !requested.iter().any(|r| r == section) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        // Writing to a String cannot fail.
        let _ = write_section(&mut out, section, status, shared, sources);
    }
    out
}

fn appendfsync(d: Durability) -> &'static str {
    match d {
        Durability::Always => "always",
        Durability::Buffered => "everysec",
    }
}

fn write_section(
    out: &mut String,
    section: &str,
    st: &InstanceStatus,
    shared: &Shared,
    sources: &Sources<'_>,
) -> std::fmt::Result {
    let (keyspace, replication) = (sources.keyspace, sources.replication);
    let uptime = shared.started.elapsed().as_secs();
    match section {
        "server" => {
            out.push_str("# Server\r\n");
            write!(out, "redis_version:{REDIS_COMPATIBLE_VERSION}\r\n")?;
            write!(out, "server_name:mirrorlab\r\nmirrorlab_version:{}\r\n", st.version)?;
            write!(out, "redis_mode:standalone\r\narch_bits:{}\r\n", usize::BITS)?;
            write!(out, "process_id:{}\r\n", std::process::id())?;
            write!(out, "tcp_port:{}\r\n", st.superserver_port)?;
            write!(out, "uptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n", uptime / 86_400)?;
            write!(out, "instance_name:{}\r\nstarted_at:{}\r\n", st.name, st.started_at)?;
        }
        "clients" => {
            out.push_str("# Clients\r\n");
            write!(out, "connected_clients:{}\r\n", shared.counters.connected.load(Ordering::Relaxed))?;
            write!(out, "maxclients:{}\r\n", shared.limits.max_connections)?;
            out.push_str("blocked_clients:0\r\n");
        }
        "memory" => {
            let used = used_memory();
            out.push_str("# Memory\r\n");
            write!(out, "used_memory:{used}\r\nused_memory_human:{}\r\n", human_bytes(used))?;
            write!(out, "used_memory_rss:{used}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n")?;
        }
        "persistence" => {
            out.push_str("# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:1\r\n");
            out.push_str("aof_rewrite_in_progress:0\r\n");
            write!(out, "appendfsync:{}\r\n", appendfsync(st.durability))?;
            write!(out, "journal_position:{}\r\ndurable_position:{}\r\n", st.journal_position, st.durable_position)?;
            write!(out, "frozen:{}\r\n", u8::from(st.frozen))?;
        }
        "stats" => {
            out.push_str("# Stats\r\n");
            write!(out, "total_connections_received:{}\r\n", shared.counters.connections.load(Ordering::Relaxed))?;
            write!(out, "total_commands_processed:{}\r\n", shared.counters.commands.load(Ordering::Relaxed))?;
            write!(out, "rejected_connections:{}\r\n", shared.counters.rejected.load(Ordering::Relaxed))?;
            write!(out, "total_error_replies:{}\r\n", shared.counters.errors.load(Ordering::Relaxed))?;
        }
        "replication" => super::replication::write_info(out, replication, st.journal_position),
        // Database 0 is the connection's namespace (SELECT takes only 0).
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            if let Some(keys) = keyspace.keys.filter(|k| *k > 0) {
                write!(out, "db0:keys={keys},expires=0,avg_ttl=0,namespace={}\r\n", keyspace.namespace)?;
            }
        }
        "mirrorlab" => {
            out.push_str("# Mirrorlab\r\n");
            write!(out, "data_dir:{}\r\n", st.data_dir)?;
            write!(out, "databases:{}\r\nnamespaces:{}\r\n", st.databases, st.namespaces)?;
            write!(out, "durability:{}\r\nweb_port:{}\r\n", appendfsync(st.durability), st.web_port)?;
        }
        // ECP (docs/design/ecp.md): one line per data server, then this data server's side.
        "ecp" => {
            out.push_str("# ECP\r\n");
            if let Some(e) = sources.ecp {
                for s in &e.servers {
                    write!(
                        out,
                        "ecp_server_{}:state={},member={},address={},mirror={},epoch={},pending={},requests={},reconnects={},reissued={}\r\n",
                        s.name.to_ascii_lowercase(),
                        s.state.name().replace(' ', "_"),
                        s.member,
                        s.member_address,
                        u8::from(s.mirror),
                        s.epoch,
                        s.pending,
                        s.requests,
                        s.reconnects,
                        s.reissued
                    )?;
                }
                write!(
                    out,
                    "ecp_app_servers:{}\r\necp_max_app_servers:{}\r\n",
                    e.app_servers.len(),
                    e.max_app_servers
                )?;
                write!(out, "ecp_requests_served:{}\r\n", e.requests_served)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// CLIENT INFO's line for this connection, in Redis's `key=value` format.
pub(crate) fn client_line(c: &Conn) -> String {
    let view = super::clients::View::of(c);
    super::clients::line(c.id, &c.peer, &c.local, c.connected_at.elapsed().as_secs(), &view)
}

/// CONFIG GET: the settings tools ask about (redis-benchmark asks `save` and `appendonly`),
/// with values that describe the engine in Redis terms. Patterns use Redis's `*`/`?` globs.
pub(crate) fn config_values(st: &InstanceStatus, shared: &Shared, patterns: &[&[u8]]) -> Vec<(&'static str, String)> {
    let all: [(&'static str, String); 8] = [
        ("save", String::new()),
        ("appendonly", "yes".into()),
        ("appendfsync", appendfsync(st.durability).into()),
        ("databases", "1".into()),
        ("maxclients", shared.limits.max_connections.to_string()),
        ("port", st.superserver_port.to_string()),
        ("timeout", "0".into()),
        ("maxmemory", "0".into()),
    ];
    all.into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes())))
        .collect()
}

/// `*` and `?` wildcards, as CONFIG GET patterns use them. Linear backtracking (the last
/// `*` only), so a hostile pattern cannot make it exponential.
pub(crate) fn glob_match(p: &[u8], t: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"save", b"save"));
        assert!(glob_match(b"*", b"save"));
        assert!(glob_match(b"app*", b"appendonly"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"s?ve", b"sve"));
        assert!(!glob_match(b"save", b"saves"));
        assert!(glob_match(b"*o*l*", b"appendonly"));
        assert!(!glob_match(&[b'*'; 64].iter().chain(b"x").copied().collect::<Vec<_>>(), b"appendonly"));
    }
}
