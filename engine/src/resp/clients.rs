//! The connections of one server, for CLIENT LIST and CLIENT KILL.
//!
//! Each connection registers when it opens and unregisters before its socket is closed;
//! what CLIENT LIST shows of it (name, namespace, $TLEVEL, protocol, durability, MULTI)
//! is copied here by the commands that change it, not on every command. CLIENT KILL shuts
//! the socket down (both directions) under the registry's lock, so it can only ever reach
//! a socket that is still the connection's: the connection's read then ends, and it closes
//! the way a peer's close does, rolling back an open transaction.

use super::execute::Conn;
use crate::instance::Durability;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::time::Instant;

/// What CLIENT LIST and CLIENT INFO show of a connection's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct View {
    pub name: String,
    /// The authenticated user (`default` while none is, as Redis shows it).
    pub user: String,
    pub namespace: String,
    pub tlevel: u32,
    pub resp: i64,
    pub durability: &'static str,
    /// Commands queued after MULTI; -1 outside MULTI (Redis's convention).
    pub multi: i64,
}

impl View {
    pub fn of(c: &Conn) -> View {
        View {
            name: c.session.client_name.clone().unwrap_or_default(),
            user: c.user.clone().unwrap_or_else(|| "default".into()),
            namespace: c.session.namespace.clone(),
            tlevel: c.session.tlevel(),
            resp: c.proto.version(),
            durability: match c.session.durability {
                None => "default",
                Some(Durability::Always) => "always",
                Some(Durability::Buffered) => "buffered",
            },
            multi: c.multi.as_ref().map_or(-1, |m| m.len() as i64),
        }
    }
}

/// One connection's line, in Redis's `key=value` format.
pub(crate) fn line(id: u64, addr: &str, laddr: &str, age: u64, v: &View) -> String {
    format!(
        "id={id} addr={addr} laddr={laddr} name={} age={age} db=0 user={} namespace={} tlevel={} resp={} durability={} multi={}\n",
        v.name, v.user, v.namespace, v.tlevel, v.resp, v.durability, v.multi
    )
}

struct Entry {
    addr: String,
    laddr: String,
    connected_at: Instant,
    fd: RawFd,
    view: View,
}

/// Which connections CLIENT KILL reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillFilter {
    Id(u64),
    Addr(String),
    LAddr(String),
}

#[derive(Default)]
pub(crate) struct Clients {
    table: Mutex<BTreeMap<u64, Entry>>,
}

impl Clients {
    pub fn register(&self, c: &Conn, fd: RawFd) {
        let entry =
            Entry { addr: c.peer.clone(), laddr: c.local.clone(), connected_at: c.connected_at, fd, view: View::of(c) };
        self.table.lock().insert(c.id, entry);
    }

    /// Before the socket is closed (see the module comment).
    pub fn unregister(&self, id: u64) {
        self.table.lock().remove(&id);
    }

    pub fn update(&self, c: &Conn) {
        if let Some(e) = self.table.lock().get_mut(&c.id) {
            e.view = View::of(c);
        }
    }

    /// CLIENT LIST's text: every connection's line, by id.
    pub fn list(&self) -> String {
        self.table
            .lock()
            .iter()
            .map(|(id, e)| line(*id, &e.addr, &e.laddr, e.connected_at.elapsed().as_secs(), &e.view))
            .collect()
    }

    /// Shuts down every connection the filters all match (except `skip`); returns how many.
    pub fn kill(&self, filters: &[KillFilter], skip: Option<u64>) -> usize {
        let table = self.table.lock();
        let mut n = 0;
        for (id, e) in table.iter() {
            let hit = filters.iter().all(|f| match f {
                KillFilter::Id(want) => want == id,
                KillFilter::Addr(a) => *a == e.addr,
                KillFilter::LAddr(a) => *a == e.laddr,
            });
            if hit && skip != Some(*id) {
                // SAFETY: `fd` is the connection's open socket: it unregisters (under this
                // lock) before the socket is closed, so the descriptor cannot have been
                // reused. shutdown(2) does not close the descriptor.
                let rc = unsafe { libc::shutdown(e.fd, libc::SHUT_RDWR) };
                if rc == 0 {
                    n += 1;
                } else {
                    tracing::debug!(id, error = %std::io::Error::last_os_error(), "CLIENT KILL: shutdown failed");
                }
            }
        }
        n
    }
}
