//! Running a parsed [`Command`] against a [`Backend`] and writing its reply.
//!
//! Invariant: a reply that acknowledges a write is only ever *buffered* here; the write's
//! journal position goes into [`Conn::durable_wait`] and the connection sends the buffer
//! only after `wait_durable` of the highest such position of each journal (see
//! `server.rs`).

use super::backend::Backend;
use super::codec::Frame;
use super::commands::{engine_error_line, Command, CommandQuery, DurabilityArg, SetCondition, COMMANDS};
use super::replication::{self, Replication};
use super::reply::{Protocol, ReplyWriter};
use super::server::Shared;
use super::{info, keyspace, transaction};
use crate::error::EngineError;
use crate::globals::{key, reference, GlobalRef};
use crate::instance::{Durability, DurableWait, Session, Update, WriteAck};
use std::time::Instant;

/// One connection's state.
pub(crate) struct Conn {
    pub session: Session,
    pub proto: Protocol,
    pub id: u64,
    pub peer: String,
    pub local: String,
    pub connected_at: Instant,
    /// The highest position of each journal the buffered replies promise is durable.
    pub durable_wait: DurableWait,
    /// The open MULTI: commands queued for EXEC.
    pub multi: Option<transaction::Multi>,
    /// The mirror topology, fetched by the server loop for the command about to run when
    /// its reply tells the role (`replication.rs`).
    pub replication: Option<Replication>,
    /// CLIENT ERRORS ENGINE: PROTECT on a mirror follower rather than READONLY.
    pub engine_errors: bool,
    /// The authenticated user (`auth.rs`); `None` while none is, or no users exist.
    pub user: Option<String>,
    /// The users-and-roles generation the session's rights were read at.
    pub auth_generation: u64,
    /// The ECP channel this connection serves, once attached (`ecp.rs`).
    pub ecp: Option<crate::ecp::service::Attachment>,
}

impl Conn {
    fn note(&mut self, ack: WriteAck) {
        self.durable_wait.note_ack(ack);
    }

    /// After a read: in `always` durability the reply waits until what it saw is durable.
    fn read_barrier<B: Backend>(&mut self, b: &B) {
        self.durable_wait.merge(b.read_barrier(&self.session));
    }
}

/// What the connection does after a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Send what is buffered, then close (QUIT).
    Close,
}

fn error(w: &mut ReplyWriter, e: &EngineError) {
    w.error(&engine_error_line(e));
}

fn durability_name(d: Durability) -> &'static [u8] {
    match d {
        Durability::Always => b"always",
        Durability::Buffered => b"buffered",
    }
}

const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. \
                           Are you sure your configuration is correct?";
pub(crate) const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Executes one command (`frame` is its request, queued as is inside MULTI), appending its
/// reply to `out`.
pub(crate) fn execute<B: Backend>(
    b: &B,
    shared: &Shared,
    conn: &mut Conn,
    frame: &Frame,
    cmd: Command<'_>,
    out: &mut Vec<u8>,
) -> Flow {
    if conn.multi.is_some() {
        if let Some(flow) = transaction::queue(conn, frame, &cmd, out) {
            return flow;
        }
    }
    let mut w = ReplyWriter { out, proto: conn.proto };
    let s = &mut conn.session;
    match cmd {
        Command::Set { key, value, condition: SetCondition::Always, get: false } => match b.set(s, &key, value) {
            Ok(ack) => {
                conn.note(ack);
                w.ok();
            }
            Err(e) => error(&mut w, &e),
        },
        Command::Set { key, value, condition, get } => {
            let result = b.update(s, &key, |current| {
                Ok(match (condition, current) {
                    (SetCondition::Missing, Some(_)) | (SetCondition::Present, None) => Update::Keep,
                    _ => Update::Set(value.to_vec()),
                })
            });
            match result {
                Ok((old, ack)) => {
                    let wrote = ack.is_some();
                    if let Some(ack) = ack {
                        conn.note(ack);
                    }
                    match (get, old) {
                        (true, Some(v)) => w.bulk(&v),
                        (true, None) => w.null(),
                        (false, _) if wrote => w.ok(),
                        (false, _) => w.null(),
                    }
                }
                Err(e) => error(&mut w, &e),
            }
        }
        Command::SetNx { key, value } => {
            let result = b.update(s, &key, |current| {
                Ok(if current.is_some() { Update::Keep } else { Update::Set(value.to_vec()) })
            });
            match result {
                Ok((_, Some(ack))) => {
                    conn.note(ack);
                    w.integer(1);
                }
                Ok((_, None)) => w.integer(0),
                Err(e) => error(&mut w, &e),
            }
        }
        Command::GetDel { key } => {
            match b.update(s, &key, |current| Ok(current.map_or(Update::Keep, |_| Update::Remove))) {
                Ok((old, ack)) => {
                    if let Some(ack) = ack {
                        conn.note(ack);
                    }
                    match old {
                        Some(v) => w.bulk(&v),
                        None => w.null(),
                    }
                }
                Err(e) => error(&mut w, &e),
            }
        }
        Command::Append { key, value } => {
            let result = b.update(s, &key, |current| {
                let mut v = current.unwrap_or_default().to_vec();
                v.extend_from_slice(value);
                Ok(Update::Set(v))
            });
            match result {
                Ok((old, ack)) => {
                    if let Some(ack) = ack {
                        conn.note(ack);
                    }
                    w.integer((old.map_or(0, |v| v.len()) + value.len()) as i64);
                }
                Err(e) => error(&mut w, &e),
            }
        }
        Command::StrLen { key } => {
            match b.get(s, &key) {
                Ok(v) => w.integer(v.map_or(0, |v| v.len()) as i64),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Type { key } => {
            match b.data(s, &key) {
                Ok(d) => w.simple(if d & 1 == 1 { "string" } else { "none" }),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Exists { keys } => {
            let mut n = 0;
            for key in &keys {
                match b.data(s, key) {
                    Ok(d) => n += i64::from(d & 1),
                    Err(e) => {
                        error(&mut w, &e);
                        return Flow::Continue;
                    }
                }
            }
            w.integer(n);
            conn.read_barrier(b);
        }
        Command::MGet { keys } => {
            let mut values = Vec::with_capacity(keys.len());
            for key in &keys {
                match b.get(s, key) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        error(&mut w, &e);
                        return Flow::Continue;
                    }
                }
            }
            w.array(values.len());
            for v in values {
                match v {
                    Some(v) => w.bulk(&v),
                    None => w.null(),
                }
            }
            conn.read_barrier(b);
        }
        Command::MSet { pairs } => match mset(b, s, &pairs) {
            Ok(acks) => {
                for ack in acks {
                    conn.note(ack);
                }
                w.ok();
            }
            Err(e) => error(&mut w, &e),
        },
        Command::MemoryUsage { key: k } => {
            // The node's share of the store: its encoded key and its value.
            let usage = key::encode(&k)
                .map_err(EngineError::from)
                .and_then(|encoded| Ok(b.get(s, &k)?.map(|v| v.len() + encoded.len())));
            match usage {
                Ok(Some(n)) => w.integer(n as i64),
                Ok(None) => w.null(),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::DbSize => {
            match keyspace::count(b, s) {
                Ok(n) => w.integer(i64::try_from(n).unwrap_or(i64::MAX)),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Keys { pattern } => {
            match keyspace::keys(b, s, pattern) {
                Ok(names) => {
                    w.array(names.len());
                    for n in names {
                        w.bulk(&n);
                    }
                }
                Err(e) => w.error(&e),
            }
            conn.read_barrier(b);
        }
        Command::Scan(args) => {
            match keyspace::scan(b, s, &shared.cursors, &args) {
                Ok((next, names)) => {
                    w.array(2);
                    w.bulk(next.to_string().as_bytes());
                    w.array(names.len());
                    for n in names {
                        w.bulk(&n);
                    }
                }
                Err(e) => w.error(&e),
            }
            conn.read_barrier(b);
        }
        Command::FlushDb { force } => match flushdb(b, s, force) {
            Ok(acks) => {
                for ack in acks {
                    conn.note(ack);
                }
                w.ok();
            }
            Err(e) => w.error(&e),
        },
        Command::Time => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            w.array(2);
            w.bulk(now.as_secs().to_string().as_bytes());
            w.bulk(now.subsec_micros().to_string().as_bytes());
        }
        Command::Role => {
            let local = b.status().journal_position;
            replication::write_role(&mut w, conn.replication.as_ref(), local);
        }
        // Awaited by the server loop (`replication.rs`), refused inside MULTI.
        Command::Wait { .. } => w.error("ERR WAIT is not allowed inside MULTI"),
        Command::SlowlogGet => w.array(0),
        Command::SlowlogLen => w.integer(0),
        Command::SlowlogReset => w.ok(),
        Command::Multi => transaction::multi(b, conn, &mut w),
        Command::Exec => transaction::exec(b, shared, conn, w.out),
        Command::Discard => transaction::discard(conn, &mut w),
        Command::Watch => w.error(transaction::WATCH_REFUSED),
        Command::Unwatch => w.ok(),
        Command::Reset => transaction::reset(b, conn, &mut w),
        // The server loop turns the connection into a monitor; inside MULTI it is refused.
        Command::Monitor => w.error("ERR MONITOR is not allowed inside MULTI"),
        Command::Get { key, default } => {
            match b.get(s, &key) {
                Ok(Some(v)) => w.bulk(&v),
                Ok(None) => match default {
                    Some(d) => w.bulk(d),
                    None => w.null(),
                },
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Kill { keys } => {
            // Counts the references that had data; killing one that has none writes nothing.
            let mut count = 0;
            for key in &keys {
                let result = b.data(&conn.session, key).and_then(|d| {
                    if d == 0 {
                        return Ok(None);
                    }
                    b.kill(&mut conn.session, key).map(Some)
                });
                match result {
                    Ok(Some(ack)) => {
                        count += 1;
                        conn.note(ack);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        error(&mut w, &e);
                        return Flow::Continue;
                    }
                }
            }
            w.integer(count);
        }
        Command::ZKill { key } => {
            let result = b.data(s, &key).and_then(|d| if d & 1 == 0 { Ok(None) } else { b.zkill(s, &key).map(Some) });
            match result {
                Ok(Some(ack)) => {
                    conn.note(ack);
                    w.integer(1);
                }
                Ok(None) => w.integer(0),
                Err(e) => error(&mut w, &e),
            }
        }
        Command::Data { key } => {
            match b.data(s, &key) {
                Ok(d) => w.integer(i64::from(d)),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Order { parent, after, dir } => {
            match b.order(s, &parent, after.as_ref(), dir) {
                Ok(Some(sub)) => w.bulk(sub.as_bytes()),
                Ok(None) => w.null(),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Query { key, dir } => {
            match b.query(s, &key, dir) {
                Ok(Some(r)) => w.bulk(reference::format(&r).as_bytes()),
                Ok(None) => w.null(),
                Err(e) => error(&mut w, &e),
            }
            conn.read_barrier(b);
        }
        Command::Increment { key, by } => match b.increment(s, &key, by) {
            Ok((n, ack)) => {
                conn.note(ack);
                match n.to_i64() {
                    Some(i) => w.integer(i),
                    None => w.bulk(n.to_canonical().as_bytes()),
                }
            }
            Err(e) => error(&mut w, &e),
        },
        Command::Namespace { name: Some(name) } => match b.use_namespace(s, name) {
            Ok(()) => w.ok(),
            Err(e) => error(&mut w, &e),
        },
        Command::Namespace { name: None } => w.bulk(s.namespace.as_bytes()),
        Command::TStart => match b.tstart(s) {
            Ok(level) => w.integer(i64::from(level)),
            Err(e) => error(&mut w, &e),
        },
        Command::TCommit | Command::TRollback => {
            let result = if matches!(cmd, Command::TCommit) { b.tcommit(s) } else { b.trollback(s) };
            match result {
                Ok(ack) => {
                    conn.note(ack);
                    w.ok();
                }
                Err(e) => error(&mut w, &e),
            }
        }
        Command::Sync => {
            conn.durable_wait.merge(b.sync());
            w.ok();
        }
        Command::Durability { mode: Some(mode) } => {
            s.durability = match mode {
                DurabilityArg::Set(d) => Some(d),
                DurabilityArg::Default => None,
            };
            w.ok();
        }
        Command::Durability { mode: None } => {
            let effective = s.durability.unwrap_or_else(|| b.status().durability);
            w.bulk(durability_name(effective));
        }
        Command::Ping { message: None } => w.simple("PONG"),
        Command::Ping { message: Some(m) } | Command::Echo { message: m } => w.bulk(m),
        Command::Hello { proto, auth, setname } => {
            // With users configured, `auth.rs` checked the credentials before this runs.
            if let Some((user, _)) = auth.filter(|_| conn.user.is_none()) {
                if user != b"default" {
                    w.error(WRONGPASS);
                    return Flow::Continue;
                }
            }
            if let Some(p) = proto {
                conn.proto = p;
                w.proto = p;
            }
            if let Some(name) = setname {
                conn.session.client_name = Some(name.to_string());
            }
            w.map(7);
            w.bulk(b"server");
            w.bulk(b"mirrorlab");
            // The same version as INFO's redis_version (INFO has mirrorlab_version too).
            w.bulk(b"version");
            w.bulk(info::REDIS_COMPATIBLE_VERSION.as_bytes());
            w.bulk(b"proto");
            w.integer(conn.proto.version());
            w.bulk(b"id");
            w.integer(conn.id as i64);
            w.bulk(b"mode");
            w.bulk(b"standalone");
            w.bulk(b"role");
            w.bulk(if conn.replication.as_ref().is_none_or(|r| r.master) { b"master".as_slice() } else { b"slave" });
            w.bulk(b"modules");
            w.array(0);
        }
        // No users are configured: like Redis without `requirepass`, the default user needs
        // no password and AUTH with a password alone is a configuration mistake.
        Command::Auth { user: None, .. } => w.error(NO_PASSWORD),
        Command::Auth { user: Some(user), .. } => {
            if user == b"default" {
                w.ok()
            } else {
                w.error(WRONGPASS)
            }
        }
        Command::AclWhoami => w.bulk(conn.user.as_deref().unwrap_or("default").as_bytes()),
        Command::ClientSetName { name } => {
            s.client_name = (!name.is_empty()).then(|| name.to_string());
            w.ok();
        }
        Command::ClientGetName => match &s.client_name {
            Some(n) => w.bulk(n.as_bytes()),
            None => w.null(),
        },
        Command::ClientId => w.integer(conn.id as i64),
        Command::ClientInfo => w.verbatim(&info::client_line(conn)),
        Command::ClientList => w.verbatim(&shared.clients.list()),
        Command::ClientErrors { engine } => {
            conn.engine_errors = engine;
            w.ok();
        }
        Command::ClientKill { filters, skip_me, old_form } => {
            let n = shared.clients.kill(&filters, skip_me.then_some(conn.id));
            match (old_form, n) {
                (true, 0) => w.error("ERR No such client"),
                (true, _) => w.ok(),
                (false, n) => w.integer(n as i64),
            }
        }
        Command::ClientSetInfo | Command::Select | Command::ConfigResetStat => w.ok(),
        Command::Info { sections } => {
            let keys = if info::wants_keyspace(&sections) { keyspace::count(b, s).ok() } else { None };
            let ks = info::Keyspace { namespace: s.namespace.clone(), keys };
            let ecp = if info::wants_section(&sections, "ecp") { Some(b.ecp_status()) } else { None };
            let sources = info::Sources { keyspace: &ks, replication: conn.replication.as_ref(), ecp: ecp.as_ref() };
            w.verbatim(&info::info_text(&b.status(), shared, &sections, &sources));
        }
        Command::Command(q) => command_reply(&mut w, q),
        Command::ConfigGet { patterns } => {
            let pairs = info::config_values(&b.status(), shared, &patterns);
            w.map(pairs.len());
            for (k, v) in pairs {
                w.bulk(k.as_bytes());
                w.bulk(v.as_bytes());
            }
        }
        Command::Quit => {
            w.ok();
            return Flow::Close;
        }
        Command::Mirror(_) => unreachable!("MIRROR is awaited by the server loop (server.rs), never executed here"),
        Command::Ecp { .. } => unreachable!("ECP is awaited by the server loop (server.rs), never executed here"),
    }
    Flow::Continue
}

/// MSET: all pairs or none. Outside a transaction the pairs are set in one of their own
/// (its TCOMMIT acknowledgement is returned); inside one (TSTART, EXEC) they join it.
fn mset<B: Backend>(b: &B, s: &mut Session, pairs: &[(GlobalRef, &[u8])]) -> Result<Vec<WriteAck>, EngineError> {
    let own = s.tlevel() == 0;
    if own {
        b.tstart(s)?;
    }
    let mut acks = Vec::new();
    for (key, value) in pairs {
        match b.set(s, key, value) {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                if own {
                    // A rollback's acknowledgement never waits.
                    let _rolled_back = b.trollback(s)?;
                }
                return Err(e);
            }
        }
    }
    if own {
        acks.push(b.tcommit(s)?);
    }
    Ok(acks)
}

/// FLUSHDB: kills every global of the namespace, one KILL each (not one transaction: the
/// undo of a whole namespace would have no bound). Refused when the namespace maps globals
/// to mirrored databases, unless forced.
fn flushdb<B: Backend>(b: &B, s: &mut Session, force: bool) -> Result<Vec<WriteAck>, String> {
    let line = |e: EngineError| engine_error_line(&e);
    if !force {
        let mirrored = b.mirrored_databases(s).map_err(line)?;
        if !mirrored.is_empty() {
            return Err(format!(
                "ERR FLUSHDB refused: namespace {} maps globals to mirrored database(s) {}; every mirror member would lose them. Use FLUSHDB FORCE to flush anyway",
                s.namespace,
                mirrored.join(", ")
            ));
        }
    }
    let mut acks = Vec::new();
    for global in keyspace::global_names(b, s).map_err(line)? {
        acks.push(b.kill(s, &global).map_err(line)?);
    }
    Ok(acks)
}

fn command_entry(w: &mut ReplyWriter, c: &super::commands::CommandSpec) {
    w.array(10);
    w.bulk(c.name.as_bytes());
    w.integer(c.arity());
    w.set(c.flags.len());
    for f in c.flags {
        w.simple(f);
    }
    w.integer(c.first_key);
    w.integer(c.last_key);
    w.integer(c.step);
    w.set(0); // ACL categories
    w.set(0); // tips
    w.array(0); // key specifications
    w.array(0); // subcommands
}

fn command_reply(w: &mut ReplyWriter, q: CommandQuery<'_>) {
    match q {
        CommandQuery::All => {
            w.array(COMMANDS.len());
            for c in COMMANDS {
                command_entry(w, c);
            }
        }
        CommandQuery::Count => w.integer(COMMANDS.len() as i64),
        CommandQuery::List => {
            w.array(COMMANDS.len());
            for c in COMMANDS {
                w.bulk(c.name.as_bytes());
            }
        }
        CommandQuery::Info(names) => {
            if names.is_empty() {
                return command_reply(w, CommandQuery::All);
            }
            w.array(names.len());
            for n in names {
                match super::commands::lookup(n) {
                    Some(c) => command_entry(w, c),
                    None => w.null_array(),
                }
            }
        }
        // Documentation is optional for clients (redis-cli falls back to its built-in help).
        CommandQuery::Docs(_) => w.map(0),
    }
}
