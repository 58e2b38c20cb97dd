//! The application-server role: the Data Servers list at run time, and one channel per
//! session and data server.
//!
//! A [`DataServer`] keeps what every channel to it shares: where the data server (for a
//! mirror: its current primary) is, the highest mirror epoch seen, the state the reference
//! reports (Normal, Trouble, ...). A monitor thread per data server keeps a connection of
//! its own and pings it, so the state is known (and a failover noticed) before any client
//! asks, and so `mirrorlab apply` can wait for Normal.
//!
//! A [`Channel`] carries one session's requests, one at a time. When its connection fails,
//! it finds the data server again (a mirror: the primary, never a lower epoch) and asks
//! whether its unanswered write was applied (`ECP OUTCOME`) before reissuing it, so every
//! write is applied once. Requests wait at most `ecp.wait_s`, then fail with `NETWORK`.

use super::config::DataServerConfig;
use super::wire;
use crate::client::{Client, ClientError, Reply};
use crate::error::{EngineError, Result};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long one connection attempt to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long a reply may take on an open connection before it counts as lost. Generous:
/// a durable write on a mirror waits for the backup, and a data server under load is slow
/// rather than gone. A channel waits in slices and gives up sooner when its monitor has
/// moved to another member (a failover away from a paused primary).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const REPLY_SLICE: Duration = Duration::from_millis(100);
/// Between rounds of connection attempts.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How often the monitor pings its data server.
const MONITOR_INTERVAL: Duration = Duration::from_millis(250);
/// How long a monitor's ping may take before the data server counts as in trouble.
const MONITOR_TIMEOUT: Duration = Duration::from_millis(1000);

/// A data server's state as the application server sees it (the reference's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServerState {
    #[serde(rename = "Not Connected")]
    NotConnected,
    #[serde(rename = "Connection in Progress")]
    Connecting,
    Normal,
    /// The connection failed; requests wait while it is found again.
    Trouble,
    /// Refused by the data server (limit, mirror flag, credentials): requests fail at once.
    Disabled,
}

impl ServerState {
    pub fn name(self) -> &'static str {
        match self {
            ServerState::NotConnected => "Not Connected",
            ServerState::Connecting => "Connection in Progress",
            ServerState::Normal => "Normal",
            ServerState::Trouble => "Trouble",
            ServerState::Disabled => "Disabled",
        }
    }
}

/// What the application server knows of one data server.
#[derive(Clone, Debug)]
struct Known {
    state: ServerState,
    /// The member (or instance) attached to, and its superserver address.
    member: String,
    address: String,
    /// The highest mirror epoch seen: a member reporting a lower one is a stale primary.
    epoch: u64,
    /// The mirror's members and their superserver addresses, as the last ATTACH said.
    members: Vec<(String, String)>,
    last_error: String,
}

/// One entry of the Data Servers list, running.
pub struct DataServer {
    pub name: String,
    pub config: DataServerConfig,
    password: Option<String>,
    /// TLS to the data server's client ports (`ca` in the configuration).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// This application server's name and incarnation (a new one per start).
    app: String,
    incarnation: u64,
    wait: Duration,
    known: Mutex<Known>,
    next_channel: AtomicU64,
    pub requests: AtomicU64,
    pub reconnects: AtomicU64,
    pub reissued: AtomicU64,
    /// Writes whose reply was lost and which the data server said were applied.
    pub recovered: AtomicU64,
    /// Requests sent and not answered yet.
    pub pending: AtomicU64,
}

/// The ATTACH reply.
struct Attached {
    role: String,
    epoch: u64,
    member: String,
    primary: String,
    members: Vec<(String, String)>,
    ends: [u64; 2],
}

/// The status of one data server (`/api/ecp`, INFO, `engine qlist`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct DataServerStatus {
    pub name: String,
    pub address: String,
    pub mirror: bool,
    pub state: ServerState,
    /// The member attached to (for a mirror, the primary).
    pub member: String,
    pub member_address: String,
    pub epoch: u64,
    pub pending: u64,
    pub requests: u64,
    pub reconnects: u64,
    pub reissued: u64,
    /// Writes whose reply was lost, found applied by the data server (not sent again).
    #[serde(default)]
    pub recovered: u64,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub last_error: String,
}

impl DataServer {
    /// Starts the data server's monitor thread; it ends when the last `Arc` is dropped.
    pub fn start(
        name: String,
        config: DataServerConfig,
        password: Option<String>,
        tls: Option<Arc<rustls::ClientConfig>>,
        app: String,
        incarnation: u64,
        wait: Duration,
    ) -> Arc<DataServer> {
        let server = Arc::new(DataServer {
            known: Mutex::new(Known {
                state: ServerState::NotConnected,
                member: String::new(),
                address: config.address.clone(),
                epoch: 0,
                members: Vec::new(),
                last_error: String::new(),
            }),
            name,
            config,
            password,
            tls,
            app,
            incarnation,
            wait,
            next_channel: AtomicU64::new(1),
            requests: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            reissued: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&server);
        let thread_name = format!("ecp-{}", server.name.to_ascii_lowercase());
        if let Err(e) = std::thread::Builder::new().name(thread_name).spawn(move || monitor(weak)) {
            tracing::error!("ECP: cannot start the monitor of data server: {e}");
        }
        server
    }

    /// The name this application server attaches under.
    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn wait(&self) -> Duration {
        self.wait
    }

    pub fn password_matches(&self, password: Option<&str>) -> bool {
        self.password.as_deref() == password
    }

    pub fn status(&self) -> DataServerStatus {
        let k = self.known.lock().clone();
        DataServerStatus {
            name: self.name.clone(),
            address: self.config.address.clone(),
            mirror: self.config.mirror,
            state: k.state,
            member: k.member,
            member_address: k.address,
            epoch: k.epoch,
            pending: self.pending.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            reissued: self.reissued.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
            last_error: k.last_error,
        }
    }

    fn set_state(&self, state: ServerState, error: Option<String>) {
        let mut k = self.known.lock();
        if k.state != state {
            tracing::info!(server = self.name, "ECP data server {}: {} -> {}", self.name, k.state.name(), state.name());
        }
        k.state = state;
        if let Some(e) = error {
            k.last_error = e;
        } else if state == ServerState::Normal {
            k.last_error.clear();
        }
    }

    /// The addresses to try, best first: the member last attached to, the primary the
    /// members named, the configured address, then every member.
    fn candidates(&self, hint: Option<&str>) -> Vec<String> {
        let k = self.known.lock();
        let mut out: Vec<String> = Vec::new();
        let mut add = |a: &str| {
            if !a.is_empty() && !out.iter().any(|x| x == a) {
                out.push(a.to_string());
            }
        };
        if let Some(h) = hint {
            add(h);
        }
        add(&k.address);
        add(&self.config.address);
        for (_, a) in &k.members {
            add(a);
        }
        out
    }

    /// Connects channel `channel` before `deadline`: to the data server, or for a mirror
    /// connection to the open primary with the highest epoch seen.
    fn connect(&self, channel: u64, deadline: Instant) -> Result<(Client, Attached)> {
        let mut hint: Option<String> = None;
        let mut last = String::from("no address to try");
        loop {
            for address in self.candidates(hint.as_deref()) {
                match self.attach_to(&address, channel) {
                    Ok((client, a)) => {
                        if !self.config.mirror {
                            self.note_attached(&address, &a);
                            return Ok((client, a));
                        }
                        let epoch = self.known.lock().epoch;
                        if a.role == wire::ROLE_PRIMARY && a.epoch >= epoch {
                            self.note_attached(&address, &a);
                            return Ok((client, a));
                        }
                        last = if a.role == wire::ROLE_PRIMARY {
                            format!("{address} ({}) is a primary of an older epoch {} < {epoch}", a.member, a.epoch)
                        } else {
                            format!("{address} ({}) is not the primary ({})", a.member, a.role)
                        };
                        self.learn_members(&a.members);
                        hint = a.members.iter().find(|(n, _)| *n == a.primary).map(|(_, addr)| addr.clone());
                    }
                    Err(Refusal::Final(e)) => {
                        self.set_state(ServerState::Disabled, Some(e.clone()));
                        return Err(EngineError::Network(format!("ECP data server {}: {e}", self.name)));
                    }
                    Err(Refusal::Retry(e)) => last = e,
                }
            }
            if Instant::now() + RETRY_PAUSE >= deadline {
                return Err(EngineError::Network(format!(
                    "ECP data server {} not reached within {} s: {last}",
                    self.name,
                    self.wait.as_secs()
                )));
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }

    fn learn_members(&self, members: &[(String, String)]) {
        if !members.is_empty() {
            self.known.lock().members = members.to_vec();
        }
    }

    fn note_attached(&self, address: &str, a: &Attached) {
        let mut k = self.known.lock();
        if k.address != address || k.member != a.member {
            tracing::info!(server = self.name, "ECP data server {}: attached to {} at {address}", self.name, a.member);
        }
        k.address = address.to_string();
        k.member = a.member.clone();
        k.epoch = k.epoch.max(a.epoch);
        if !a.members.is_empty() {
            k.members = a.members.clone();
        }
    }

    /// One connection attempt: connect, log in, ATTACH.
    fn attach_to(&self, address: &str, channel: u64) -> std::result::Result<(Client, Attached), Refusal> {
        let retry = |e: ClientError| Refusal::Retry(format!("{address}: {e}"));
        let mut client = match &self.tls {
            None => Client::connect(address, CONNECT_TIMEOUT).map_err(retry)?,
            Some(config) => {
                let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
                let server = crate::tls::host_server_name(host).map_err(|e| Refusal::Final(e.to_string()))?;
                Client::connect_verified(address, CONNECT_TIMEOUT, config.clone(), server).map_err(|e| match e {
                    // A certificate that does not verify will not verify later either.
                    ClientError::Tls { .. } => Refusal::Final(e.to_string()),
                    e => retry(e),
                })?
            }
        };
        // A paused member accepts connections and never answers: short, until attached.
        client.set_timeout(Some(CONNECT_TIMEOUT)).map_err(|e| retry(e.into()))?;
        if let (Some(user), Some(password)) = (&self.config.user, &self.password) {
            match reply_of(client.command(&[b"AUTH", user.as_bytes(), password.as_bytes()])) {
                Ok(Reply::Error(e)) => {
                    return Err(Refusal::Final(format!("{address} refused the login of {user}: {e}")))
                }
                Ok(_) => {}
                Err(e) => return Err(retry(e)),
            }
        }
        let reply = reply_of(client.command(&[
            b"ECP",
            b"ATTACH",
            self.app.as_bytes(),
            self.incarnation.to_string().as_bytes(),
            channel.to_string().as_bytes(),
            if self.config.mirror { b"1" } else { b"0" },
        ]))
        .map_err(retry)?;
        match reply {
            Reply::Error(e) if e.code == "NOAUTH" || e.code == "WRONGPASS" || e.code == "NOPERM" => {
                Err(Refusal::Final(format!("{address}: {e} (set user and password_file of the data server)")))
            }
            Reply::Error(e) if e.code.starts_with("ECP") => Err(Refusal::Final(format!("{address}: {e}"))),
            Reply::Error(e) => Err(Refusal::Retry(format!("{address}: {e}"))),
            other => {
                let a = parse_attached(&other)
                    .ok_or_else(|| Refusal::Retry(format!("{address}: unexpected ATTACH reply {other:?}")))?;
                client.set_timeout(Some(REPLY_TIMEOUT)).map_err(|e| retry(e.into()))?;
                Ok((client, a))
            }
        }
    }

    /// Sends a request and waits for its reply in slices: a mirror connection whose
    /// member the monitor has left (it found another primary) stops waiting at once.
    fn exchange(
        &self,
        client: &mut Client,
        request: &[&[u8]],
        member: &str,
    ) -> std::result::Result<Reply, ClientError> {
        client.send(request)?;
        let started = Instant::now();
        while !client.reply_started(REPLY_SLICE)? {
            let moved = self.config.mirror && {
                let k = self.known.lock();
                k.state == ServerState::Normal && k.member != member
            };
            if moved || started.elapsed() >= REPLY_TIMEOUT {
                let why = if moved { "the mirror's primary moved" } else { "no reply in time" };
                return Err(ClientError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, why)));
            }
        }
        client.read_reply()
    }

    /// A new channel for one session.
    pub fn channel(self: &Arc<Self>) -> Channel {
        Channel {
            server: self.clone(),
            id: self.next_channel.fetch_add(1, Ordering::Relaxed),
            client: None,
            member: String::new(),
            seq: 0,
            from: [u64::MAX; 2],
            txn: false,
            txn_lost: false,
        }
    }
}

enum Refusal {
    /// Try again (another address, later).
    Retry(String),
    /// The data server refuses this application server: waiting will not help.
    Final(String),
}

fn parse_attached(r: &Reply) -> Option<Attached> {
    let Reply::Array(items) = r else { return None };
    let text = |i: usize| match items.get(i)? {
        Reply::Bulk(b) => String::from_utf8(b.clone()).ok(),
        Reply::Simple(s) => Some(s.clone()),
        _ => None,
    };
    let int = |i: usize| match items.get(i)? {
        Reply::Integer(n) => u64::try_from(*n).ok(),
        _ => None,
    };
    let Some(Reply::Array(list)) = items.get(4) else { return None };
    let mut members = Vec::new();
    for m in list {
        let Reply::Array(pair) = m else { return None };
        match (pair.first(), pair.get(1)) {
            (Some(Reply::Bulk(n)), Some(Reply::Bulk(a))) => {
                members.push((String::from_utf8_lossy(n).into_owned(), String::from_utf8_lossy(a).into_owned()))
            }
            _ => return None,
        }
    }
    Some(Attached {
        role: text(0)?,
        epoch: int(1)?,
        member: text(2)?,
        primary: text(3)?,
        members,
        ends: [int(5)?, int(6)?],
    })
}

/// Keeps a connection of its own to the data server and pings it: the state and the
/// primary are known before a client asks.
fn monitor(server: Weak<DataServer>) {
    let mut client: Option<Client> = None;
    loop {
        let Some(s) = server.upgrade() else { return };
        let healthy = match client.as_mut() {
            Some(c) => matches!(c.command(&[b"PING"]), Ok(Reply::Simple(_))),
            None => false,
        };
        if !healthy {
            client = None;
            let was = s.known.lock().state;
            if was == ServerState::Normal {
                s.set_state(ServerState::Trouble, Some("the monitor's connection failed".into()));
            } else if was == ServerState::NotConnected {
                s.set_state(ServerState::Connecting, None);
            }
            // Channel 0 is the monitor's.
            match s.connect(0, Instant::now() + MONITOR_TIMEOUT) {
                Ok((mut c, _)) => {
                    let _ = c.set_timeout(Some(MONITOR_TIMEOUT));
                    client = Some(c);
                    s.set_state(ServerState::Normal, None);
                }
                Err(e) => {
                    let state = s.known.lock().state;
                    if state != ServerState::Disabled {
                        let next = if state == ServerState::Connecting { state } else { ServerState::Trouble };
                        s.set_state(next, Some(e.to_string()));
                    }
                }
            }
        }
        drop(s);
        std::thread::sleep(MONITOR_INTERVAL);
    }
}

/// One session's connection to one data server.
pub struct Channel {
    server: Arc<DataServer>,
    id: u64,
    client: Option<Client>,
    /// The member the connection is attached to.
    member: String,
    /// The last write request's sequence number.
    seq: u64,
    /// Where in each journal (local, mirror) a lost write is looked for: after the last
    /// write this channel saw answered, or the journal end when it attached.
    from: [u64; 2],
    /// A transaction is open on the data server for this session.
    pub txn: bool,
    /// The connection was lost while a transaction was open there: the data server rolled
    /// it back, and the session must TROLLBACK.
    pub txn_lost: bool,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("server", &self.server.name).field("id", &self.id).finish()
    }
}

/// What a request is, for its reissue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reads: reissued freely.
    Read,
    /// Writes: numbered; reissued only when `ECP OUTCOME` says they were not applied.
    Write,
}

impl Channel {
    pub fn server(&self) -> &Arc<DataServer> {
        &self.server
    }

    /// Sends `ECP <args>` (for a write, the sequence number goes in as the second
    /// argument) and returns the reply, reconnecting and reissuing as needed until the
    /// wait runs out.
    pub fn call(&mut self, kind: Kind, args: &[&[u8]]) -> Result<Reply> {
        let server = self.server.clone();
        server.requests.fetch_add(1, Ordering::Relaxed);
        server.pending.fetch_add(1, Ordering::Relaxed);
        let out = off_async(|| self.call_blocking(kind, args));
        server.pending.fetch_sub(1, Ordering::Relaxed);
        out
    }

    fn call_blocking(&mut self, kind: Kind, args: &[&[u8]]) -> Result<Reply> {
        let deadline = Instant::now() + self.server.wait;
        let seq = match kind {
            Kind::Write => {
                self.seq += 1;
                Some(self.seq.to_string())
            }
            Kind::Read => None,
        };
        let mut request: Vec<&[u8]> = vec![b"ECP", args[0]];
        if let Some(seq) = &seq {
            request.push(seq.as_bytes());
        }
        request.extend_from_slice(&args[1..]);
        let mut sent = false;
        loop {
            if self.client.is_none() {
                if self.server.known.lock().state == ServerState::Disabled {
                    let e = self.server.known.lock().last_error.clone();
                    return Err(EngineError::Network(format!("ECP data server {} is disabled: {e}", self.server.name)));
                }
                let (client, attached) = self.server.connect(self.id, deadline)?;
                self.client = Some(client);
                self.member = attached.member.clone();
                if self.txn {
                    self.txn = false;
                    self.txn_lost = true;
                }
                if sent && seq.is_some() {
                    // The reply of a write was lost: applied or not?
                    match self.outcome(self.seq) {
                        Ok(Some(reply)) => {
                            self.server.recovered.fetch_add(1, Ordering::Relaxed);
                            return Ok(reply);
                        }
                        Ok(None) => {
                            self.server.reissued.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e @ (ClientError::Io(_) | ClientError::Protocol(_))) => {
                            // This connection failed too: find the data server again.
                            self.client = None;
                            if Instant::now() >= deadline {
                                return Err(self.lost(&e));
                            }
                            continue;
                        }
                        Err(e) => {
                            return Err(EngineError::Network(format!(
                                "ECP data server {}: the outcome of a write whose reply was lost is unknown: {e}",
                                self.server.name
                            )))
                        }
                    }
                } else {
                    self.from = attached.ends.map(|e| e.saturating_add(1));
                }
            }
            let client = self.client.as_mut().expect("connected above");
            sent = true;
            match reply_of(self.server.exchange(client, &request, &self.member)) {
                Ok(Reply::Error(e)) if e.code == wire::MOVED || e.code == wire::REPLACED => {
                    // Refused before it ran: find the primary and send it again.
                    self.client = None;
                }
                Ok(reply) => {
                    if seq.is_some() {
                        self.note_position(&reply);
                    }
                    return Ok(reply);
                }
                Err(e @ (ClientError::Io(_) | ClientError::Protocol(_))) => {
                    tracing::debug!(server = self.server.name, "ECP channel {}: {e}", self.id);
                    self.client = None;
                    self.server.reconnects.fetch_add(1, Ordering::Relaxed);
                    self.server.set_state(ServerState::Trouble, Some(e.to_string()));
                    if Instant::now() >= deadline {
                        return Err(self.lost(&e));
                    }
                }
                Err(e) => return Err(EngineError::Network(format!("ECP data server {}: {e}", self.server.name))),
            }
        }
    }

    /// After a reconnection: whether write `seq` was applied, as the reply it would have
    /// had (`[journal, position, result]`).
    fn outcome(&mut self, seq: u64) -> std::result::Result<Option<Reply>, ClientError> {
        let client = self.client.as_mut().expect("connected");
        let [local, mirror] = self.from;
        let reply = reply_of(client.command(&[
            b"ECP",
            b"OUTCOME",
            seq.to_string().as_bytes(),
            local.to_string().as_bytes(),
            mirror.to_string().as_bytes(),
        ]))?;
        match reply {
            Reply::Nil => Ok(None),
            Reply::Array(items) => {
                let reply = Reply::Array(items);
                self.note_position(&reply);
                Ok(Some(reply))
            }
            Reply::Error(e) => Err(ClientError::Server(e)),
            other => Err(ClientError::Protocol(format!("unexpected OUTCOME reply {other:?}"))),
        }
    }

    fn lost(&self, e: &ClientError) -> EngineError {
        EngineError::Network(format!(
            "ECP data server {}: no reply within {} s ({e})",
            self.server.name,
            self.server.wait.as_secs()
        ))
    }

    /// A write's reply starts with its journal and position: a lost write after this one
    /// is looked for from there.
    fn note_position(&mut self, reply: &Reply) {
        if let Reply::Array(items) = reply {
            if let (Some(Reply::Integer(j)), Some(Reply::Integer(p))) = (items.first(), items.get(1)) {
                let slot = usize::from(*j == wire::JOURNAL_MIRROR);
                if let Ok(p) = u64::try_from(*p) {
                    self.from[slot] = p.saturating_add(1);
                }
            }
        }
    }
}

/// The client reports a server's refusal as an error; here it is a reply like any other.
fn reply_of(r: std::result::Result<Reply, ClientError>) -> std::result::Result<Reply, ClientError> {
    match r {
        Err(ClientError::Server(e)) => Ok(Reply::Error(e)),
        other => other,
    }
}

/// A session's channels, by data server name.
#[derive(Debug, Default)]
pub struct Channels {
    pub by_server: BTreeMap<String, Channel>,
}

impl Channels {
    pub fn get(&mut self, server: &Arc<DataServer>) -> &mut Channel {
        let current = self.by_server.get(&server.name).is_some_and(|c| Arc::ptr_eq(&c.server, server));
        if !current {
            // New, or the Data Servers list changed under the session.
            self.by_server.insert(server.name.clone(), server.channel());
        }
        self.by_server.get_mut(&server.name).expect("inserted above")
    }

    /// The data server with an open transaction, if any.
    pub fn in_txn(&self) -> Option<&Channel> {
        self.by_server.values().find(|c| c.txn || c.txn_lost)
    }
}

/// Runs blocking network I/O from wherever a request comes from: on a multi-threaded
/// async worker (RESP, the web API) the worker hands its other tasks over first.
pub(crate) fn off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
