//! `MIRROR`: the running mirror member over RESP.
//!
//! `MIRROR STATUS` answers the fields of `GET /api/mirror/status`, same names, same order
//! as [`MirrorStatus`]: a map in RESP3, a flat array of field/value pairs in RESP2; `members`
//! and `databases` are arrays of such maps, the latencies maps of `time_ms`, `bytes`,
//! `files`. Not a mirror member: null. The operator verbs map one-to-one onto
//! [`MirrorAction`] and answer the runtime's sentence as a simple string, or its error as
//! `-<NAME> message` like every engine error (`-NOTMIRRORED ...` when this instance runs no
//! mirror member).
//!
//! Both are awaited by the server loop (`server.rs`) rather than run by `execute`: the
//! runtime behind them may block, and the instance backend runs them off the async workers.

use super::backend::Backend;
use super::commands::{engine_error_line, MirrorCommand, MIRROR_VERBS};
use super::reply::{Protocol, ReplyWriter};
use crate::mirror::config::MemberType;
use crate::mirror::status::{Latency, MemberLine, MirrorStatus, MirroredDatabase};

/// Runs one `MIRROR` command, appending its reply to `out`.
pub(crate) async fn execute<B: Backend>(b: &B, proto: Protocol, cmd: MirrorCommand, out: &mut Vec<u8>) {
    match cmd {
        MirrorCommand::Status => {
            let status = b.mirror_status().await;
            let mut w = ReplyWriter { out, proto };
            match status {
                Some(s) => write_status(&mut w, &s),
                None => w.null(),
            }
        }
        MirrorCommand::Help => write_help(&mut ReplyWriter { out, proto }),
        MirrorCommand::Act(action) => {
            let result = b.mirror_act(action).await;
            let mut w = ReplyWriter { out, proto };
            match result {
                Ok(message) => w.simple(&message),
                Err(e) => w.error(&engine_error_line(&e)),
            }
        }
    }
}

/// The member type as the JSON shows it (its serde name).
pub fn member_type_name(t: MemberType) -> &'static str {
    match t {
        MemberType::Failover => "failover",
        MemberType::Dr => "dr",
        MemberType::ReportingRo => "reporting-ro",
        MemberType::ReportingRw => "reporting-rw",
    }
}

fn text(w: &mut ReplyWriter, key: &str, value: &str) {
    w.bulk(key.as_bytes());
    w.bulk(value.as_bytes());
}

fn number(w: &mut ReplyWriter, key: &str, value: u64) {
    w.bulk(key.as_bytes());
    w.integer(i64::try_from(value).unwrap_or(i64::MAX));
}

pub(crate) fn write_status(w: &mut ReplyWriter, s: &MirrorStatus) {
    w.map(14);
    text(w, "mirror", &s.mirror);
    text(w, "member", &s.member);
    text(w, "type", member_type_name(s.member_type));
    text(w, "status", &s.status.to_string());
    w.bulk(b"primary");
    match &s.primary {
        Some(p) => w.bulk(p.as_bytes()),
        None => w.null(),
    }
    number(w, "epoch", s.epoch);
    text(w, "failover_mode", &s.failover_mode);
    text(w, "arbiter", &s.arbiter);
    w.bulk(b"no_failover");
    w.boolean(s.no_failover);
    number(w, "journal_position", s.journal_position);
    number(w, "durable_position", s.durable_position);
    number(w, "acked_position", s.acked_position);
    w.bulk(b"members");
    w.array(s.members.len());
    for m in &s.members {
        write_member(w, m);
    }
    w.bulk(b"databases");
    w.array(s.databases.len());
    for d in &s.databases {
        write_database(w, d);
    }
}

fn write_member(w: &mut ReplyWriter, m: &MemberLine) {
    w.map(9);
    text(w, "name", &m.name);
    text(w, "type", member_type_name(m.member_type));
    text(w, "status", &m.status.to_string());
    text(w, "journal_transfer", &m.journal_transfer);
    text(w, "dejournaling", &m.dejournaling);
    w.bulk(b"journal_latency");
    write_latency(w, &m.journal_latency);
    w.bulk(b"database_latency");
    write_latency(w, &m.database_latency);
    number(w, "position", m.position);
    w.bulk(b"last_heard_ms");
    match m.last_heard_ms {
        Some(ms) => w.integer(i64::try_from(ms).unwrap_or(i64::MAX)),
        None => w.null(),
    }
}

fn write_latency(w: &mut ReplyWriter, l: &Latency) {
    w.map(3);
    number(w, "time_ms", l.time_ms);
    number(w, "bytes", l.bytes);
    number(w, "files", l.files);
}

fn write_database(w: &mut ReplyWriter, d: &MirroredDatabase) {
    w.map(3);
    text(w, "name", &d.name);
    text(w, "status", d.status.word());
    number(w, "position", d.position);
}

/// Redis's HELP layout: a title line, then each subcommand and its description indented.
fn write_help(w: &mut ReplyWriter) {
    w.array(1 + 2 * MIRROR_VERBS.len());
    w.simple("MIRROR <subcommand> [<arg>]. Subcommands are:");
    for (verb, arg, what) in MIRROR_VERBS {
        w.simple(&if arg.is_empty() { verb.to_string() } else { format!("{verb} {arg}") });
        w.simple(&format!("    {what}"));
    }
}
