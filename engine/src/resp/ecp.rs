//! `ECP`: the data-server side of ECP on the superserver port (request shapes in
//! `ecp::wire`, design in docs/design/ecp.md).
//!
//! A connection first attaches as one channel of an application server; every request
//! after that names the database it reads or writes, and runs with the session pinned to
//! it. Writes carry the channel's sequence number, journaled with the change (the origin
//! record), and their reply waits until the change is durable: an application server
//! acknowledges nothing a crash or a failover here could undo. Awaited by the server loop
//! (`server.rs`): ATTACH reads the mirror status, OUTCOME syncs the journals.

use super::backend::Backend;
use super::commands::engine_error_line;
use super::execute::Conn;
use super::reply::ReplyWriter;
use crate::ecp::service::Attachment;
use crate::ecp::wire;
use crate::error::{EngineError, Result};
use crate::globals::{key, GlobalRef, Number};
use crate::instance::ecp::RequestId;
use crate::instance::{Durability, JournalId, MirrorMode, Update, WriteAck};
use crate::journal::record::EcpOrigin;
use crate::mirror::config::MemberType;

/// The most nodes one `ECP SCAN` returns.
const MAX_SCAN: usize = 1000;

/// Runs one `ECP` request, appending its reply to `out`.
pub(crate) async fn execute<B: Backend>(b: &B, conn: &mut Conn, args: &[&[u8]], out: &mut Vec<u8>) {
    let verb = String::from_utf8_lossy(args[0]).to_ascii_uppercase();
    let result = match verb.as_str() {
        "ATTACH" => attach(b, conn, &args[1..]).await,
        "STATUS" => Ok(Answer::Bulk(serde_json::to_vec(&b.ecp_status()).unwrap_or_default())),
        _ => match conn.ecp.clone() {
            None => Err(EngineError::Invalid("ECP requests need ECP ATTACH first".into())),
            Some(a) => {
                let service = b.ecp_service().expect("attached, so served");
                let outcome = service.run(&a, || {
                    if verb == "OUTCOME" {
                        // It syncs the journals and reads them back.
                        crate::ecp::app::off_async(|| request(b, conn, &a, &verb, &args[1..]))
                    } else {
                        request(b, conn, &a, &verb, &args[1..])
                    }
                });
                outcome.unwrap_or_else(|refused| Err(EngineError::remote_line(&refused)))
            }
        },
    };
    let mut w = ReplyWriter { out, proto: conn.proto };
    match result {
        Ok(answer) => answer.write(&mut w),
        Err(EngineError::Remote { code, message }) => w.error(&format!("{code} {message}")),
        Err(e) => w.error(&engine_error_line(&e)),
    }
}

/// A reply, built before it is written.
enum Answer {
    Nil,
    Integer(i64),
    Bulk(Vec<u8>),
    /// `[journal, position]`, then more.
    Written(WriteAck, Vec<Vec<u8>>),
    Items(Vec<Item>),
    /// Already encoded.
    Raw(Vec<u8>),
}

enum Item {
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
}

impl Answer {
    fn write(self, w: &mut ReplyWriter) {
        match self {
            Answer::Nil => w.null(),
            Answer::Integer(n) => w.integer(n),
            Answer::Bulk(b) => w.bulk(&b),
            Answer::Written(ack, more) => {
                w.array(2 + more.len());
                w.integer(wire::journal_number(ack.journal));
                w.integer(i64::try_from(ack.position).unwrap_or(i64::MAX));
                for m in more {
                    w.bulk(&m);
                }
            }
            Answer::Raw(bytes) => w.out.extend_from_slice(&bytes),
            Answer::Items(items) => {
                w.array(items.len());
                for i in items {
                    match i {
                        Item::Integer(n) => w.integer(n),
                        Item::Bulk(b) => w.bulk(&b),
                        Item::Nil => w.null(),
                    }
                }
            }
        }
    }
}

fn text<'a>(arg: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(arg).map_err(|_| EngineError::Invalid(format!("ECP: {what} is not UTF-8")))
}

fn number(arg: &[u8], what: &str) -> Result<u64> {
    text(arg, what)?.parse().map_err(|_| EngineError::Invalid(format!("ECP: {what} is not a number")))
}

fn want(args: &[&[u8]], n: usize, shape: &str) -> Result<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!("ECP: wrong number of arguments, expected {shape}")))
    }
}

fn valid_app_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

async fn attach<B: Backend>(b: &B, conn: &mut Conn, args: &[&[u8]]) -> Result<Answer> {
    want(args, 4, "ATTACH app incarnation channel mirror")?;
    let app = text(args[0], "the application server's name")?.to_ascii_uppercase();
    if !valid_app_name(&app) {
        return Err(EngineError::Invalid(format!("ECP: {app:?} is not an application server name")));
    }
    let incarnation = number(args[1], "the incarnation")?;
    let channel = number(args[2], "the channel")?;
    let mirror = match args[3] {
        b"1" => true,
        b"0" => false,
        _ => return Err(EngineError::Invalid("ECP: the mirror flag is 0 or 1".into())),
    };
    let service = b.ecp_service().ok_or_else(|| EngineError::Invalid("this engine serves no ECP".into()))?;
    let status = b.mirror_status().await;
    match (&status, mirror) {
        (None, true) => {
            return Err(EngineError::remote_line(
                "ECPMIRROR this data server is no mirror member: its entry in the Data Servers list needs mirror: false",
            ))
        }
        (Some(s), false) if s.member_type == MemberType::Failover => {
            return Err(EngineError::remote_line(&format!(
                "ECPMIRROR this data server is failover member {} of mirror {}: ECP connections to it must be mirror connections (mirror: true), which follow the primary",
                s.member, s.mirror
            )))
        }
        _ => {}
    }
    let attachment = service.attach((app, incarnation, channel), mirror).map_err(|e| EngineError::remote_line(&e))?;
    if let Some(old) = conn.ecp.replace(attachment) {
        service.detach(&old);
    }
    // Every reply waits until what it says is durable (module doc).
    conn.session.durability = Some(Durability::Always);
    let role = match b.mirror_mode() {
        MirrorMode::Primary { open: true } => wire::ROLE_PRIMARY,
        MirrorMode::Primary { open: false } => wire::ROLE_TRANSITION,
        MirrorMode::Member { .. } => wire::ROLE_MEMBER,
        MirrorMode::None => wire::ROLE_STANDALONE,
    };
    let (epoch, member, primary) = match &status {
        Some(s) => (s.epoch, s.member.clone(), s.primary.clone().unwrap_or_default()),
        None => (0, b.status().name, String::new()),
    };
    let [local, mirror_end] = b.journal_ends();
    let members = b.member_superservers();
    // `[role, epoch, member, primary, [[name, superserver]...], local_end, mirror_end]`
    let mut out = Vec::new();
    let mut w = ReplyWriter { out: &mut out, proto: conn.proto };
    w.array(7);
    w.bulk(role.as_bytes());
    w.integer(i64::try_from(epoch).unwrap_or(i64::MAX));
    w.bulk(member.as_bytes());
    w.bulk(primary.as_bytes());
    w.array(members.len());
    for (name, address) in &members {
        w.array(2);
        w.bulk(name.as_bytes());
        w.bulk(address.as_bytes());
    }
    w.integer(i64::try_from(local).unwrap_or(i64::MAX));
    w.integer(i64::try_from(mirror_end).unwrap_or(i64::MAX));
    Ok(Answer::Raw(out))
}

/// One request of an attached channel, run under its generation lock.
fn request<B: Backend>(b: &B, conn: &mut Conn, a: &Attachment, verb: &str, args: &[&[u8]]) -> Result<Answer> {
    if a.mirror && b.mirror_mode() != (MirrorMode::Primary { open: true }) {
        return Err(EngineError::remote_line(&format!(
            "{} this member is not the mirror's open primary (any more)",
            wire::MOVED
        )));
    }
    if verb == "OUTCOME" {
        want(args, 3, "OUTCOME seq local_from mirror_from")?;
        let id = RequestId { app: &a.key.0, incarnation: a.key.1, channel: a.key.2, seq: number(args[0], "seq")? };
        let from = [(JournalId::Local, number(args[1], "from")?), (JournalId::Mirror, number(args[2], "from")?)];
        return Ok(match b.ecp_outcome(id, from)? {
            None => Answer::Nil,
            Some(applied) => Answer::Written(
                WriteAck { journal: applied.journal, position: applied.position, wait: false },
                vec![applied.result],
            ),
        });
    }
    match verb {
        "TSTART" => return Ok(Answer::Integer(i64::from(b.tstart(&mut conn.session)?))),
        "TROLLBACK" => {
            let ack = b.trollback(&mut conn.session)?;
            return Ok(written(conn, ack, Vec::new()));
        }
        "TCOMMIT" => {
            want(args, 1, "TCOMMIT seq")?;
            conn.session.origin = Some(origin(a, number(args[0], "seq")?));
            let ack = b.tcommit(&mut conn.session);
            conn.session.origin = None;
            return Ok(written(conn, ack?, Vec::new()));
        }
        _ => {}
    }
    let write = matches!(verb, "SET" | "ZKILL" | "KILL" | "INCR" | "CAS");
    let (seq, rest) = if write {
        let (seq, rest) = args.split_first().ok_or_else(|| EngineError::Invalid(format!("ECP {verb}: no seq")))?;
        (Some(number(seq, "seq")?), rest)
    } else {
        (None, args)
    };
    let (db, rest) = rest.split_first().ok_or_else(|| EngineError::Invalid(format!("ECP {verb}: no database")))?;
    let db = b.ecp_database(text(db, "the database")?)?;
    conn.session.pinned = Some(db.clone());
    if write && a.mirror && !b.mirrored_databases(&conn.session)?.contains(&db) {
        conn.session.pinned = None;
        return Err(EngineError::Protect {
            database: db,
            reason: " over ECP: through a mirror member only mirrored databases are writable".into(),
        });
    }
    conn.session.origin = seq.map(|seq| origin(a, seq));
    let result = pinned_request(b, conn, verb, rest);
    conn.session.pinned = None;
    conn.session.origin = None;
    result
}

fn origin(a: &Attachment, seq: u64) -> EcpOrigin {
    EcpOrigin { app: a.key.0.clone(), incarnation: a.key.1, channel: a.key.2, seq, records: 0, result: Vec::new() }
}

fn written(conn: &mut Conn, ack: WriteAck, more: Vec<Vec<u8>>) -> Answer {
    conn.durable_wait.note_ack(ack);
    Answer::Written(ack, more)
}

fn global(encoded: &[u8]) -> Result<GlobalRef> {
    key::decode(encoded).map_err(EngineError::from)
}

/// A request on one database (the session is pinned to it).
fn pinned_request<B: Backend>(b: &B, conn: &mut Conn, verb: &str, args: &[&[u8]]) -> Result<Answer> {
    match verb {
        "GET" => {
            want(args, 1, "GET db key")?;
            let value = b.get(&conn.session, &global(args[0])?)?;
            conn.durable_wait.merge(b.read_barrier(&conn.session));
            Ok(value.map_or(Answer::Nil, Answer::Bulk))
        }
        "SCAN" => {
            want(args, 4, "SCAN db lo hi reverse limit")?;
            let limit = usize::try_from(number(args[3], "limit")?).unwrap_or(MAX_SCAN).min(MAX_SCAN);
            let found = b.scan_range(&conn.session, args[0], args[1], args[2] == b"1", limit)?;
            conn.durable_wait.merge(b.read_barrier(&conn.session));
            let mut items = Vec::with_capacity(found.len() * 2);
            for (k, len) in found {
                items.push(Item::Bulk(k));
                items.push(Item::Integer(i64::try_from(len).unwrap_or(i64::MAX)));
            }
            Ok(Answer::Items(items))
        }
        "SET" => {
            want(args, 2, "SET seq db key value")?;
            let ack = b.set(&mut conn.session, &global(args[0])?, args[1])?;
            Ok(written(conn, ack, Vec::new()))
        }
        "ZKILL" => {
            want(args, 1, "ZKILL seq db key")?;
            let ack = b.zkill(&mut conn.session, &global(args[0])?)?;
            Ok(written(conn, ack, Vec::new()))
        }
        "KILL" => {
            want(args, 3, "KILL seq db key lo hi")?;
            global(args[0])?;
            let ack = b.kill_part(&mut conn.session, args[0], args[1].to_vec(), args[2].to_vec())?;
            Ok(written(conn, ack, Vec::new()))
        }
        "INCR" => {
            want(args, 2, "INCR seq db key by")?;
            let by = Number::parse_in_range(args[1])
                .ok_or_else(|| EngineError::Invalid("ECP INCR: the increment is not a number".into()))?;
            let (new, ack) = b.increment(&mut conn.session, &global(args[0])?, by)?;
            Ok(written(conn, ack, vec![new.to_canonical().into_bytes()]))
        }
        "CAS" => {
            want(args, 3, "CAS seq db key expected new")?;
            let bad = || EngineError::Invalid("ECP CAS: a value is =bytes or -".into());
            let expected = wire::decode_optional(args[1]).ok_or_else(bad)?;
            let new = wire::decode_optional(args[2]).ok_or_else(bad)?;
            let mut matched = false;
            let (current, ack) = b.update(&mut conn.session, &global(args[0])?, |current| {
                matched = current == expected;
                Ok(match (matched, new) {
                    (false, _) => Update::Keep,
                    (true, Some(v)) => Update::Set(v.to_vec()),
                    (true, None) => Update::Remove,
                })
            })?;
            if matched {
                let ack = ack.unwrap_or(WriteAck { journal: JournalId::Local, position: 0, wait: false });
                conn.durable_wait.note_ack(ack);
                Ok(Answer::Items(vec![
                    Item::Integer(1),
                    Item::Integer(wire::journal_number(ack.journal)),
                    Item::Integer(i64::try_from(ack.position).unwrap_or(i64::MAX)),
                ]))
            } else {
                conn.durable_wait.merge(b.read_barrier(&conn.session));
                Ok(Answer::Items(vec![Item::Integer(0), current.map_or(Item::Nil, Item::Bulk)]))
            }
        }
        _ => Err(EngineError::Invalid(format!("ECP {verb}: unknown request"))),
    }
}
