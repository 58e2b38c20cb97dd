//! The application-server role of ECP in the instance: remote databases, and the global
//! operations on them, forwarded to their data servers (docs/design/ecp.md).
//!
//! Invariants:
//! - a remote write returns once its data server made it durable, so its `WriteAck` asks
//!   for no wait here;
//! - a transaction writes through one data server, or only locally: the data server
//!   commits what it holds atomically, and nothing here could commit the rest with it;
//! - a transaction whose connection was lost has been rolled back by its data server:
//!   its session gets `NETWORK` until it rolls back too.

use super::session::{JournalId, Session, WriteAck};
use super::Instance;
use crate::client::Reply;
use crate::ecp::app::{DataServer, Kind};
use crate::ecp::config::{DataServerConfig, EcpConfig};
use crate::ecp::service::EcpService;
use crate::ecp::wire;
use crate::error::{EngineError, Result};
use crate::globals::Number;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A database on a data server.
#[derive(Clone)]
pub(crate) struct RemoteDatabase {
    pub(crate) server: Arc<DataServer>,
    /// Its name on the data server.
    pub(crate) path: String,
}

/// Both ECP roles' state in the instance.
pub(crate) struct EcpState {
    /// Data-server role.
    pub(crate) service: Arc<EcpService>,
    servers: RwLock<BTreeMap<String, Arc<DataServer>>>,
    remote: RwLock<BTreeMap<String, RemoteDatabase>>,
    /// This start of the instance, as data servers tell its sessions apart from the last.
    incarnation: u64,
}

impl EcpState {
    pub(crate) fn new(config: &EcpConfig) -> EcpState {
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 ^ u64::from(std::process::id()));
        EcpState {
            service: Arc::new(EcpService::new(config.max_app_servers)),
            servers: RwLock::new(BTreeMap::new()),
            remote: RwLock::new(BTreeMap::new()),
            incarnation,
        }
    }
}

impl Instance {
    pub fn ecp_service(&self) -> &Arc<EcpService> {
        &self.ecp.service
    }

    /// Both roles' status.
    pub fn ecp_status(&self) -> crate::ecp::status::EcpStatus {
        // The configuration lock first, released before the servers' lock is taken:
        // `change_config` holds it while `rebuild_ecp` takes the servers' write lock, so
        // holding both the other way round deadlocks a config change against a status read.
        let max_app_servers = self.config.lock().ecp.max_app_servers;
        crate::ecp::status::EcpStatus {
            servers: self.ecp.servers.read().values().map(|s| s.status()).collect(),
            app_servers: self.ecp.service.attached().into_iter().map(Into::into).collect(),
            max_app_servers,
            requests_served: self.ecp.service.requests.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Brings the running data servers and remote databases in line with the
    /// configuration: an unchanged data server keeps running (and its sessions' channels).
    pub(crate) fn rebuild_ecp(&self, config: &super::config::Config) {
        let ecp = &config.ecp;
        self.ecp.service.set_limit(ecp.max_app_servers);
        let wait = Duration::from_secs(ecp.wait_s);
        let app = app_name(config);
        let mut servers = self.ecp.servers.write();
        let mut next = BTreeMap::new();
        for (name, c) in &ecp.servers {
            let password = self.ecp_password(name, c);
            let tls = self.ecp_tls(name, c);
            let keep = servers.get(name).filter(|s| {
                s.config == *c && s.wait() == wait && s.app() == app && s.password_matches(password.as_deref())
            });
            let server = match keep {
                Some(s) => s.clone(),
                None => {
                    DataServer::start(name.clone(), c.clone(), password, tls, app.clone(), self.ecp.incarnation, wait)
                }
            };
            next.insert(name.clone(), server);
        }
        *servers = next;
        let remote = ecp
            .remote_databases
            .iter()
            .filter_map(|(name, r)| {
                let server = servers.get(&r.server)?.clone();
                Some((name.clone(), RemoteDatabase { server, path: r.path.clone() }))
            })
            .collect();
        *self.ecp.remote.write() = remote;
    }

    /// Adds or changes an entry of the Data Servers list; `true` when something changed.
    pub fn create_ecp_server(&self, name: &str, server: DataServerConfig) -> Result<bool> {
        let name = name.to_ascii_uppercase();
        if self.config().ecp.servers.get(&name) == Some(&server) {
            return Ok(false);
        }
        self.change_config(|c| {
            c.ecp.servers.insert(name.clone(), server);
            Ok(())
        })?;
        Ok(true)
    }

    /// Adds (or points elsewhere) remote database `name`; `true` when something changed.
    pub fn create_remote_database(&self, name: &str, server: &str, path: &str) -> Result<bool> {
        let name = name.to_ascii_uppercase();
        let wanted =
            crate::ecp::config::RemoteDatabaseConfig { server: server.to_ascii_uppercase(), path: path.to_string() };
        if self.config().ecp.remote_databases.get(&name) == Some(&wanted) {
            return Ok(false);
        }
        self.change_config(|c| {
            c.ecp.remote_databases.insert(name.clone(), wanted);
            Ok(())
        })?;
        self.rebuild_namespaces()?;
        Ok(true)
    }

    /// TLS to data server `name`, when its entry names a CA. A CA that cannot be read
    /// leaves the data server unreachable (TLS with no trust), never plain TCP.
    fn ecp_tls(&self, name: &str, c: &DataServerConfig) -> Option<Arc<rustls::ClientConfig>> {
        let ca = c.ca.as_ref()?;
        let path = self.data_dir().root().join(ca);
        match crate::tls::ca_client(&path) {
            Ok(config) => Some(config),
            Err(e) => {
                tracing::error!("ECP data server {name}: {e}; it stays unreachable until the CA can be read");
                let empty = rustls::RootCertStore::empty();
                Some(Arc::new(
                    rustls::ClientConfig::builder_with_provider(crate::tls::load::provider())
                        .with_safe_default_protocol_versions()
                        .expect("ring supports the default versions")
                        .with_root_certificates(empty)
                        .with_no_client_auth(),
                ))
            }
        }
    }

    fn ecp_password(&self, name: &str, c: &DataServerConfig) -> Option<String> {
        let file = c.password_file.as_ref()?;
        let path = self.data_dir().root().join(file);
        match super::read_password_file(&path) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!("ECP data server {name}: {e}; connecting without a password");
                None
            }
        }
    }

    /// The remote database `name`, if it is one.
    pub(crate) fn remote_database(&self, name: &str) -> Option<RemoteDatabase> {
        self.ecp.remote.read().get(name).cloned()
    }

    /// Sends a request for remote database `r` on the session's channel to its server.
    fn remote_call(&self, s: &Session, r: &RemoteDatabase, kind: Kind, args: &[&[u8]]) -> Result<Reply> {
        if kind == Kind::Write {
            self.check_remote_txn(s, r)?;
        }
        let in_txn = s.tlevel() > 0;
        let mut channels = s.remote.lock();
        let channel = channels.get(&r.server);
        if channel.txn_lost {
            return Err(lost_txn(&r.server.name));
        }
        if kind == Kind::Write && in_txn && !channel.txn {
            // The transaction's first write here: open it there too.
            match channel.call(Kind::Read, &[b"TSTART"])? {
                Reply::Integer(_) => channel.txn = true,
                other => return Err(unexpected(&r.server.name, "TSTART", other)),
            }
        }
        let reply = channel.call(kind, args)?;
        if channel.txn_lost {
            return Err(lost_txn(&r.server.name));
        }
        match reply {
            Reply::Error(e) => {
                Err(EngineError::remote(&e.code, format!("{} (data server {})", e.message, r.server.name)))
            }
            other => Ok(other),
        }
    }

    /// A write inside a transaction: the transaction must not also write locally, nor
    /// through another data server.
    fn check_remote_txn(&self, s: &Session, r: &RemoteDatabase) -> Result<()> {
        let Some(t) = s.txn.as_ref() else { return Ok(()) };
        if t.journal.is_some() {
            return Err(EngineError::Invalid(format!(
                "ECPTXN this transaction already wrote local database {}: it cannot also write remote databases of data server {} (they would not commit together)",
                t.first_db, r.server.name
            )));
        }
        if let Some(other) = s.remote.lock().in_txn().filter(|c| c.server().name != r.server.name) {
            return Err(EngineError::Invalid(format!(
                "ECPTXN this transaction already writes through data server {}: it cannot also write through {}",
                other.server().name,
                r.server.name
            )));
        }
        Ok(())
    }

    /// A local write inside a transaction that already writes through a data server.
    pub(crate) fn check_local_txn(&self, s: &Session, db: &str) -> Result<()> {
        if s.tlevel() > 0 {
            if let Some(c) = s.remote.lock().in_txn() {
                return Err(EngineError::Invalid(format!(
                    "ECPTXN this transaction writes through data server {}: it cannot also write local database {db}",
                    c.server().name
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn remote_get(&self, s: &Session, r: &RemoteDatabase, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.remote_call(s, r, Kind::Read, &[b"GET", r.path.as_bytes(), key])? {
            Reply::Bulk(v) => Ok(Some(v)),
            Reply::Nil => Ok(None),
            other => Err(unexpected(&r.server.name, "GET", other)),
        }
    }

    /// Nodes in `[lo, hi)` on the data server: keys and value lengths.
    pub(crate) fn remote_scan(
        &self,
        s: &Session,
        r: &RemoteDatabase,
        lo: &[u8],
        hi: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, usize)>> {
        let limit = limit.to_string();
        let reverse: &[u8] = if reverse { b"1" } else { b"0" };
        let reply =
            self.remote_call(s, r, Kind::Read, &[b"SCAN", r.path.as_bytes(), lo, hi, reverse, limit.as_bytes()])?;
        let Reply::Array(items) = reply else { return Err(unexpected(&r.server.name, "SCAN", reply)) };
        let mut out = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks(2) {
            match pair {
                [Reply::Bulk(k), Reply::Integer(n)] => out.push((k.clone(), usize::try_from(*n).unwrap_or(0))),
                _ => return Err(unexpected(&r.server.name, "SCAN", Reply::Array(items.clone()))),
            }
        }
        Ok(out)
    }

    pub(crate) fn remote_set(&self, s: &Session, r: &RemoteDatabase, key: &[u8], value: &[u8]) -> Result<WriteAck> {
        let reply = self.remote_call(s, r, Kind::Write, &[b"SET", r.path.as_bytes(), key, value])?;
        self.remote_written(&r.server.name, "SET", reply).map(|_| self.remote_ack_now())
    }

    pub(crate) fn remote_zkill(&self, s: &Session, r: &RemoteDatabase, key: &[u8]) -> Result<WriteAck> {
        let reply = self.remote_call(s, r, Kind::Write, &[b"ZKILL", r.path.as_bytes(), key])?;
        self.remote_written(&r.server.name, "ZKILL", reply).map(|_| self.remote_ack_now())
    }

    /// KILL of the part `[lo, hi)` of the subtree of `key`.
    pub(crate) fn remote_kill(
        &self,
        s: &Session,
        r: &RemoteDatabase,
        key: &[u8],
        lo: &[u8],
        hi: &[u8],
    ) -> Result<WriteAck> {
        let reply = self.remote_call(s, r, Kind::Write, &[b"KILL", r.path.as_bytes(), key, lo, hi])?;
        self.remote_written(&r.server.name, "KILL", reply).map(|_| self.remote_ack_now())
    }

    pub(crate) fn remote_increment(
        &self,
        s: &Session,
        r: &RemoteDatabase,
        key: &[u8],
        by: Number,
    ) -> Result<(Number, WriteAck)> {
        let by = by.to_canonical();
        let reply = self.remote_call(s, r, Kind::Write, &[b"INCR", r.path.as_bytes(), key, by.as_bytes()])?;
        let more = self.remote_written(&r.server.name, "INCR", reply)?;
        let new = more.first().and_then(|v| Number::parse_in_range(v)).ok_or_else(|| {
            EngineError::Network(format!("ECP data server {}: INCR answered no number", r.server.name))
        })?;
        Ok((new, self.remote_ack_now()))
    }

    /// Read-modify-write of one remote node: the data server applies `new` only if the
    /// node still holds `expected`; returns `Ok(None)` when it did, else the current value.
    pub(crate) fn remote_compare_and_set(
        &self,
        s: &Session,
        r: &RemoteDatabase,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<std::result::Result<(), Option<Vec<u8>>>> {
        let (expected, new) = (wire::encode_optional(expected), wire::encode_optional(new));
        let reply = self.remote_call(s, r, Kind::Write, &[b"CAS", r.path.as_bytes(), key, &expected, &new])?;
        match reply {
            // A reissued CAS that was applied answers as a write.
            // `[1, journal, position]`, or a reissued CAS that was applied: `[journal,
            // position, result]`; a refusal is `[0, current]`.
            Reply::Array(items) if items.len() == 3 => Ok(Ok(())),
            Reply::Array(items) => match items.get(1) {
                Some(Reply::Bulk(v)) => Ok(Err(Some(v.clone()))),
                Some(Reply::Nil) => Ok(Err(None)),
                _ => Err(unexpected(&r.server.name, "CAS", Reply::Array(items))),
            },
            other => Err(unexpected(&r.server.name, "CAS", other)),
        }
    }

    /// TCOMMIT of the outermost level: commits the session's transaction on its data
    /// server. `Ok(false)` when no data server holds one.
    pub(crate) fn remote_tcommit(&self, s: &Session) -> Result<bool> {
        let mut channels = s.remote.lock();
        let Some(server) = channels.in_txn().map(|c| c.server().clone()) else { return Ok(false) };
        let channel = channels.get(&server);
        if channel.txn_lost {
            return Err(lost_txn(&server.name));
        }
        let reply = channel.call(Kind::Write, &[b"TCOMMIT"]);
        let lost = channel.txn_lost;
        channel.txn = false;
        channel.txn_lost = false;
        match reply? {
            // The commit's reply arrived, or was lost and the data server says it was applied.
            Reply::Array(_) => Ok(true),
            Reply::Error(_) if lost => Err(lost_txn(&server.name)),
            Reply::Error(e) => {
                Err(EngineError::remote(&e.code, format!("{} (data server {})", e.message, server.name)))
            }
            other => Err(unexpected(&server.name, "TCOMMIT", other)),
        }
    }

    /// TROLLBACK: rolls back the session's transaction on its data server, if any.
    pub(crate) fn remote_trollback(&self, s: &Session) -> Result<()> {
        let mut channels = s.remote.lock();
        let Some(server) = channels.in_txn().map(|c| c.server().clone()) else { return Ok(()) };
        let channel = channels.get(&server);
        let was_lost = channel.txn_lost;
        channel.txn = false;
        channel.txn_lost = false;
        if was_lost {
            // The data server rolled it back when the connection went.
            return Ok(());
        }
        match channel.call(Kind::Read, &[b"TROLLBACK"]) {
            Ok(Reply::Error(e)) if e.code != "NOTRANSACTION" => {
                Err(EngineError::remote(&e.code, format!("{} (data server {})", e.message, server.name)))
            }
            Ok(_) => Ok(()),
            // Lost with the connection: rolled back there all the same.
            Err(EngineError::Network(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The reply of a write: `[journal, position, more...]`; returns `more`.
    fn remote_written(&self, server: &str, what: &str, reply: Reply) -> Result<Vec<Vec<u8>>> {
        match reply {
            Reply::Array(items) if items.len() >= 2 => Ok(items
                .into_iter()
                .skip(2)
                .filter_map(|i| match i {
                    Reply::Bulk(b) => Some(b),
                    _ => None,
                })
                .collect()),
            other => Err(unexpected(server, what, other)),
        }
    }

    /// A remote write is durable on its data server when it returns: nothing to wait for.
    pub(crate) fn remote_ack_now(&self) -> WriteAck {
        WriteAck { journal: JournalId::Local, position: self.journal.last_position(), wait: false }
    }
}

/// The name data servers know this application server by (`ecp.app_name`).
fn app_name(config: &super::config::Config) -> String {
    config.ecp.app_name.clone().unwrap_or_else(|| {
        let guid: String = config.instance.guid.chars().filter(char::is_ascii_alphanumeric).take(8).collect();
        format!("{}-{guid}", config.instance.name).to_ascii_uppercase()
    })
}

fn lost_txn(server: &str) -> EngineError {
    EngineError::Network(format!(
        "the connection to ECP data server {server} was lost inside this transaction, and the data server rolled it back: TROLLBACK, then start again"
    ))
}

fn unexpected(server: &str, what: &str, reply: Reply) -> EngineError {
    EngineError::Network(format!("ECP data server {server}: unexpected reply to {what}: {reply:?}"))
}
