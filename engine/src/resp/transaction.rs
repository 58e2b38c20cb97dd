//! MULTI / EXEC / DISCARD: Redis's queued transactions, run as one engine transaction.
//!
//! After MULTI, every command is checked (the same parse as outside) and queued: the reply
//! is `+QUEUED`. A command that fails its check (unknown, wrong arity, bad reference) or
//! may not run inside a transaction (TSTART, TCOMMIT, TROLLBACK, MIRROR, FLUSHDB, WAIT,
//! HELLO) is answered with its error and marks the transaction: EXEC then answers
//! `-EXECABORT` and runs nothing. EXEC runs the queue between TSTART and TCOMMIT and
//! answers the array of replies; a command that fails while running (READONLY on a
//! follower, a cross-journal write, ...) has its error in its place in the array and the others commit
//! (as in Redis). EXEC's reply is sent only once TCOMMIT is durable, and on a mirror
//! primary confirmed by the backup, like every TCOMMIT (`server.rs`). If TCOMMIT itself
//! fails the transaction is rolled back and EXEC answers the error: a client told that
//! EXEC failed never has any of its writes applied.
//!
//! EXEC is atomic (all of it commits, or a failed commit rolls all of it back) but not
//! isolated: other connections' writes may land between its commands, as between the
//! writes of any engine transaction. So WATCH is refused (optimistic locking would need a
//! per-node version and an EXEC that holds other writers off; the engine has neither):
//! the error comes before anything is queued, and UNWATCH has nothing to forget.
//!
//! Invariant: nothing queued runs before EXEC; a connection closed with a queue drops it,
//! a connection closed inside EXEC cannot happen (EXEC runs to its end within one batch),
//! and a connection closed inside TSTART is rolled back by `end_session`.

use super::backend::Backend;
use super::codec::Frame;
use super::commands::{self, engine_error_line, Command};
use super::execute::{execute, Conn, Flow};
use super::reply::ReplyWriter;
use super::server::Shared;

/// Most commands one MULTI may queue.
pub const MAX_QUEUED_COMMANDS: usize = 10_000;
/// Most argument bytes one MULTI may queue.
pub const MAX_QUEUED_BYTES: usize = 16 << 20;

pub(crate) const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
pub(crate) const WATCH_REFUSED: &str = "ERR WATCH is not supported: Mirrorlab keeps no per-key versions for \
     optimistic locking; use MULTI/EXEC (one engine transaction), or TSTART/TCOMMIT";

/// The open MULTI of a connection.
#[derive(Default)]
pub(crate) struct Multi {
    queue: Vec<Frame>,
    bytes: usize,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    aborted: bool,
}

impl Multi {
    /// Commands queued so far.
    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

/// A request that failed its check (`server.rs`): inside MULTI it aborts the transaction.
pub(crate) fn note_rejected(conn: &mut Conn) {
    if let Some(m) = conn.multi.as_mut() {
        m.aborted = true;
    }
}

/// Inside MULTI: queues `cmd` (or refuses it) and answers; `None` for the commands that act
/// at once (EXEC, DISCARD, RESET, QUIT).
pub(crate) fn queue(conn: &mut Conn, frame: &Frame, cmd: &Command<'_>, out: &mut Vec<u8>) -> Option<Flow> {
    let mut w = ReplyWriter { out, proto: conn.proto };
    let multi = conn.multi.as_mut().expect("queue is called inside MULTI");
    let refused = match cmd {
        Command::Exec | Command::Discard | Command::Reset | Command::Quit => return None,
        // Redis answers these two without aborting the transaction.
        Command::Multi => {
            w.error("ERR MULTI calls can not be nested");
            return Some(Flow::Continue);
        }
        Command::Watch => {
            w.error("ERR WATCH inside MULTI is not allowed");
            return Some(Flow::Continue);
        }
        Command::TStart | Command::TCommit | Command::TRollback => {
            Some("ERR TSTART, TCOMMIT and TROLLBACK are not allowed inside MULTI: EXEC is the transaction")
        }
        Command::Mirror(_) => Some("ERR MIRROR is not allowed inside MULTI"),
        Command::Ecp { .. } => Some("ERR ECP is not allowed inside MULTI"),
        Command::Wait { .. } => Some("ERR WAIT is not allowed inside MULTI"),
        // It would switch the protocol in the middle of EXEC's reply.
        Command::Hello { .. } => Some("ERR HELLO is not allowed inside MULTI"),
        Command::FlushDb { .. } => Some("ERR FLUSHDB is not allowed inside MULTI: it is not transactional"),
        _ => None,
    };
    if let Some(e) = refused {
        multi.aborted = true;
        w.error(e);
        return Some(Flow::Continue);
    }
    let size: usize = frame.args().map(<[u8]>::len).sum();
    if multi.queue.len() >= MAX_QUEUED_COMMANDS || multi.bytes + size > MAX_QUEUED_BYTES {
        multi.aborted = true;
        w.error(&format!(
            "ERR the transaction is too large (at most {MAX_QUEUED_COMMANDS} commands and {MAX_QUEUED_BYTES} bytes are queued); EXEC will discard it"
        ));
        return Some(Flow::Continue);
    }
    multi.bytes += size;
    multi.queue.push(frame.clone());
    w.simple("QUEUED");
    Some(Flow::Continue)
}

/// MULTI outside a transaction.
pub(crate) fn multi<B: Backend>(_b: &B, conn: &mut Conn, w: &mut ReplyWriter) {
    if conn.session.tlevel() > 0 {
        w.error("ERR MULTI inside a TSTART transaction is not supported: TCOMMIT or TROLLBACK first");
        return;
    }
    conn.multi = Some(Multi::default());
    w.ok();
}

/// EXEC: runs the queue in one engine transaction.
pub(crate) fn exec<B: Backend>(b: &B, shared: &Shared, conn: &mut Conn, out: &mut Vec<u8>) {
    let proto = conn.proto;
    let Some(multi) = conn.multi.take() else {
        ReplyWriter { out, proto }.error("ERR EXEC without MULTI");
        return;
    };
    if multi.aborted {
        ReplyWriter { out, proto }.error(EXECABORT);
        return;
    }
    if let Err(e) = b.tstart(&mut conn.session) {
        ReplyWriter { out, proto }.error(&engine_error_line(&e));
        return;
    }
    let mut replies = Vec::new();
    // Fetched by the server loop for EXEC (`replication.rs`).
    let topology = conn.replication.clone();
    for frame in &multi.queue {
        match commands::parse(frame) {
            Ok(cmd) => {
                let start = replies.len();
                let flow = execute(b, shared, conn, frame, cmd, &mut replies);
                debug_assert_eq!(flow, Flow::Continue, "QUIT is never queued");
                if let Some(r) = &topology {
                    super::replication::readonly_instead(conn, r, frame, &mut replies, start);
                }
            }
            // Checked when queued; the check does not depend on state.
            Err(e) => ReplyWriter { out: &mut replies, proto: conn.proto }.error(&e.0),
        }
    }
    match b.tcommit(&mut conn.session) {
        Ok(ack) => {
            conn.durable_wait.note_ack(ack);
            let mut w = ReplyWriter { out, proto: conn.proto };
            w.array(multi.queue.len());
            w.out.extend_from_slice(&replies);
        }
        Err(e) => {
            if conn.session.tlevel() > 0 {
                if let Err(r) = b.trollback(&mut conn.session) {
                    tracing::error!(id = conn.id, error = %r, "rolling back a failed EXEC");
                }
            }
            ReplyWriter { out, proto: conn.proto }.error(&engine_error_line(&e));
        }
    }
}

/// DISCARD: drops the queue.
pub(crate) fn discard(conn: &mut Conn, w: &mut ReplyWriter) {
    match conn.multi.take() {
        Some(_) => w.ok(),
        None => w.error("ERR DISCARD without MULTI"),
    }
}

/// RESET: as a new connection (no MULTI, no open TSTART, default namespace, RESP2, no
/// name, default durability). The authenticated user stays (unlike Redis, which falls back
/// to its default user): this engine has no passwordless default user to fall back to.
pub(crate) fn reset<B: Backend>(b: &B, conn: &mut Conn, w: &mut ReplyWriter) {
    conn.multi = None;
    b.end_session(&mut conn.session);
    let rights = conn.session.rights.clone();
    conn.session = b.session();
    conn.session.rights = rights;
    conn.proto = super::reply::Protocol::Resp2;
    conn.engine_errors = false;
    w.proto = conn.proto;
    w.simple("RESET");
}
