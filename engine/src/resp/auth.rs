//! Authentication on the superserver, before a command runs (Redis ACL semantics).
//!
//! With no users configured nothing changes: `AUTH` answers as Redis without
//! `requirepass`. Once a user exists:
//! - before `AUTH user password` (or `AUTH password`, see
//!   [`crate::security::Security::default_user`]) or `HELLO 3 AUTH user password`
//!   succeeds, every command but `AUTH`, `HELLO`, `PING` and `QUIT` gets
//!   `-NOAUTH Authentication required.`; `PING` stays open so the agent's health probe
//!   needs no password (it tells only that the engine answers, which `/health` tells
//!   anyone too);
//! - a wrong password gets `-WRONGPASS ...` after [`crate::security::FAILED_AUTH_DELAY`]
//!   and a log line;
//! - a change of users or roles reaches open connections at their next command: their
//!   rights are read again, and a deleted or disabled user is back to `NOAUTH`;
//! - commands beyond globals need privileges: `MIRROR` (status: monitor; actions: mirror
//!   operator), `CLIENT KILL`, `CONFIG RESETSTAT` and `ECP` (admin). Globals are checked by the
//!   instance against the database each global maps to.

use super::backend::Backend;
use super::codec::Frame;
use super::commands::{self, Command};
use super::execute::{Conn, WRONGPASS};
use super::reply::ReplyWriter;
use super::server::Shared;
use crate::security::{Privilege, Rights, Security};
use std::sync::Arc;

const NOAUTH: &str = "NOAUTH Authentication required.";
const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                            HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
                            select the RESP protocol version at the same time";

/// Whether the command may run.
pub(crate) enum Gate {
    Pass,
    /// Answered here (authentication, or a refusal).
    Answered,
}

/// Checks one request against the connection's authentication.
pub(crate) async fn gate<B: Backend>(
    backend: &B,
    shared: &Shared,
    conn: &mut Conn,
    frame: &Frame,
    out: &mut Vec<u8>,
) -> Gate {
    let Some(security) = backend.security() else { return Gate::Pass };
    let mut w = ReplyWriter { out, proto: conn.proto };
    refresh(&security, conn);
    if !security.required() {
        return Gate::Pass;
    }
    let name = frame.arg(0).to_ascii_lowercase();
    match (name.as_slice(), commands::parse(frame)) {
        (b"auth", Ok(Command::Auth { user, password })) => {
            let user = match user {
                Some(u) => String::from_utf8_lossy(u).into_owned(),
                None => security.default_user().to_string(),
            };
            let password = String::from_utf8_lossy(password).into_owned();
            match security.authenticate(&user, &password, &conn.peer).await {
                Ok(rights) => {
                    signed_in(&security, shared, conn, user, rights);
                    ReplyWriter { out, proto: conn.proto }.ok();
                }
                Err(_) => ReplyWriter { out, proto: conn.proto }.error(WRONGPASS),
            }
            Gate::Answered
        }
        (b"hello", Ok(Command::Hello { auth: Some((user, password)), .. })) => {
            let user = String::from_utf8_lossy(user).into_owned();
            let password = String::from_utf8_lossy(password).into_owned();
            match security.authenticate(&user, &password, &conn.peer).await {
                Ok(rights) => {
                    signed_in(&security, shared, conn, user, rights);
                    Gate::Pass
                }
                Err(_) => {
                    ReplyWriter { out, proto: conn.proto }.error(WRONGPASS);
                    Gate::Answered
                }
            }
        }
        // Errors in these (arity, syntax) are the command's own to report.
        (b"auth" | b"ping" | b"quit", _) => Gate::Pass,
        (b"hello", _) if conn.user.is_none() => {
            w.error(NOAUTH_HELLO);
            Gate::Answered
        }
        _ if conn.user.is_none() => {
            w.error(NOAUTH);
            Gate::Answered
        }
        (_, Ok(cmd)) => match needed(&cmd) {
            Some((p, action)) => match conn.session.rights.check(p, action) {
                Ok(()) => Gate::Pass,
                Err(e) => {
                    w.error(&commands::engine_error_line(&e));
                    Gate::Answered
                }
            },
            None => Gate::Pass,
        },
        (_, Err(_)) => Gate::Pass,
    }
}

/// The privilege a command needs beyond globals, and what it does (for the refusal).
fn needed(cmd: &Command<'_>) -> Option<(Privilege, &'static str)> {
    use commands::MirrorCommand;
    match cmd {
        Command::Mirror(MirrorCommand::Status | MirrorCommand::Help) => {
            Some((Privilege::Monitor, "read the mirror status"))
        }
        Command::Mirror(MirrorCommand::Act(_)) => Some((Privilege::MirrorOperator, "act on the mirror")),
        Command::ClientKill { .. } => Some((Privilege::Admin, "kill clients")),
        // Every client's commands and their values, whatever the databases' roles say.
        Command::Monitor => Some((Privilege::Admin, "monitor every command")),
        Command::ConfigResetStat => Some((Privilege::Admin, "reset statistics")),
        // An application server acts for all of its users, and an ATTACH takes over a
        // channel (its old connection is refused from then on): the service's account.
        Command::Ecp { .. } => Some((Privilege::Admin, "serve as an ECP application server")),
        _ => None,
    }
}

fn signed_in(security: &Security, shared: &Shared, conn: &mut Conn, user: String, rights: Rights) {
    tracing::info!(user = %user, peer = conn.peer, id = conn.id, "authenticated");
    conn.user = Some(user);
    conn.session.rights = Arc::new(rights);
    conn.auth_generation = security.generation();
    shared.clients.update(conn);
}

/// After a change of users or roles: the connection's rights as they are now.
fn refresh(security: &Security, conn: &mut Conn) {
    let generation = security.generation();
    if generation == conn.auth_generation {
        return;
    }
    conn.auth_generation = generation;
    let rights = if security.required() {
        match security.rights_of(conn.user.as_deref()) {
            Some(r) => r,
            None => {
                conn.user = None;
                Rights::nobody()
            }
        }
    } else {
        conn.user = None;
        Rights::open()
    };
    conn.session.rights = Arc::new(rights);
}
