//! The agent's RESP server: a listener, one task per connection, a shutdown signal.
//!
//! Disk and process work (STATUS, FENCE, JOURNAL RANGE) runs on the blocking pool, at most
//! [`MAX_BLOCKING_JOBS`] at once, so a hung engine or a slow disk never stalls the
//! arbiter's heartbeats. Every connection's registrations end when it closes.

use super::arbiter::{Arbiter, ConnId};
use super::fault::FaultSet;
use super::fence::{fence, FenceOutcome};
use super::journal_ranges::{self, RangeError, MAX_RANGE_BYTES};
use super::protocol::{self, Request, LIMITS};
use super::status::{status, PingProbe};
use super::AgentConfig;
use crate::instance::datadir::DataDir;
use crate::resp::codec::{self, Frame};
use crate::resp::reply::{Protocol, ReplyWriter};
use crate::tls::{Identity, HANDSHAKE_TIMEOUT};
use crate::vfs::real::RealVfs;
use parking_lot::Mutex;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Disk or process jobs running at once; more wait their turn.
pub const MAX_BLOCKING_JOBS: usize = 16;
/// Reply bytes buffered before they are sent.
const FLUSH_BYTES: usize = 1 << 20;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 4 * 1024;

/// The clock the arbiter is given (tokio's, so tests can pause it).
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Mirrors one arbiter decides for.
const MAX_MIRRORS: usize = 1024;

struct Shared {
    config: AgentConfig,
    dir: Option<DataDir>,
    arbiter: Mutex<Arbiter>,
    /// The failover core's arbiter, one per mirror, created at the first request.
    decisions: Mutex<std::collections::BTreeMap<String, crate::mirror::failover::Arbiter>>,
    /// Distinguishes this arbiter process from every earlier one (it keeps no disk): a
    /// primary never takes "go on alone" from another incarnation than the one that
    /// recorded its backup.
    incarnation: u64,
    started: std::time::Instant,
    faults: Mutex<FaultSet>,
    /// Bumped at every FAULT DROP so open connections re-check whether they are dropped.
    fault_generation: watch::Sender<u64>,
    blocking: Semaphore,
    /// One fence at a time.
    fencing: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
}

/// Serves the agent protocol on `listener` until `shutdown` completes, then closes every
/// connection and returns.
pub async fn serve(listener: TcpListener, config: AgentConfig, shutdown: impl Future) {
    let (fault_generation, _) = watch::channel(0);
    let shared = Arc::new(Shared {
        dir: config.data_dir.clone().map(DataDir::new),
        arbiter: Mutex::new(Arbiter::new(config.member_timeout)),
        decisions: Mutex::new(std::collections::BTreeMap::new()),
        incarnation: incarnation(),
        started: std::time::Instant::now(),
        faults: Mutex::new(FaultSet::default()),
        fault_generation,
        blocking: Semaphore::new(MAX_BLOCKING_JOBS),
        fencing: tokio::sync::Mutex::new(()),
        next_id: AtomicU64::new(1),
        config,
    });
    let max = shared.config.max_connections;
    let protected = shared.config.protected_mode.then_some(crate::access::AGENT_DENIED);
    crate::connections::accept_connections(listener, "agent", max, protected, shutdown, AgentConnections(shared)).await;
}

/// Wall-clock nanoseconds mixed with the process id: different for every start.
fn incarnation() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 48)
}

struct AgentConnections(Arc<Shared>);

impl crate::connections::ConnectionHandler for AgentConnections {
    fn admit(&mut self, peer: SocketAddr) -> bool {
        let dropped = self.0.faults.lock().drops(Some(peer), []);
        if dropped {
            tracing::debug!(%peer, "connection refused: peer dropped by fault injection");
        }
        !dropped
    }

    fn serve(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.0.clone();
        async move {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            match shared.config.tls.clone() {
                None => handle(stream, peer, Identity::Plain, id, &shared, stop).await,
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let identity = tls.identify(stream.get_ref().1.peer_certificates());
                        handle(stream, peer, identity, id, &shared, stop).await;
                    }
                    Ok(Err(e)) => tracing::warn!(
                        %peer,
                        "connection refused: TLS handshake failed (only holders of a lab certificate are served): {e}"
                    ),
                    Err(_) => {
                        tracing::warn!(%peer, "connection closed: no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())
                    }
                },
            }
            shared.arbiter.lock().disconnect(id);
        }
    }
}

/// One connection's state.
struct Conn {
    id: ConnId,
    peer: SocketAddr,
    /// What the peer's certificate proved (`Plain` without TLS: everything allowed).
    identity: Identity,
    /// CLIENT SETNAME.
    name: Option<String>,
    /// (mirror, member) pairs this connection said HELLO as.
    members: Vec<(String, String)>,
}

impl Conn {
    /// Whether the fault set drops this connection, or would once it takes `also` as a name.
    fn dropped(&self, faults: &FaultSet, also: Option<&str>) -> bool {
        let names = self.name.iter().map(String::as_str);
        let members = self.members.iter().map(|(_, m)| m.as_str());
        faults.drops(Some(self.peer), names.chain(members).chain(also))
    }
}

enum Flow {
    Continue,
    /// Send what is buffered, then close (QUIT, protocol error).
    Close,
    /// Close without another byte (a peer dropped by fault injection).
    Drop,
}

async fn handle<S>(
    mut stream: S,
    peer: SocketAddr,
    identity: Identity,
    id: ConnId,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = Conn { id, peer, identity, name: None, members: Vec::new() };
    let mut faults_changed = shared.fault_generation.subscribe();
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::new();
    let mut frame = Frame::default();
    tracing::debug!(%peer, id, "connection opened");
    'conn: loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            _ = stop.changed() => break,
            _ = faults_changed.changed() => {
                if conn.dropped(&shared.faults.lock(), None) {
                    tracing::info!(%peer, id, "closing a connection of a peer dropped by fault injection");
                    break;
                }
                continue;
            }
        };
        match read {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%peer, id, error = %e, "connection failed");
                break;
            }
        }
        let mut used = 0;
        let mut flow = Flow::Continue;
        loop {
            match codec::parse(&input[used..], &LIMITS, &mut frame) {
                Ok(Some(n)) => {
                    used += n;
                    if frame.is_empty() {
                        continue;
                    }
                    if crate::resp::server::looks_like_http(&frame) {
                        // As the superserver: a web page made a browser send HTTP here.
                        tracing::warn!(
                            %peer,
                            id,
                            "Possible SECURITY ATTACK detected: an HTTP request reached the agent, likely a \
                             cross-protocol attack from a web page. Connection closed."
                        );
                        break 'conn;
                    }
                    flow = match protocol::parse(&frame) {
                        Ok(request) => execute(shared, &mut conn, request, &mut out).await,
                        Err(line) => {
                            ReplyWriter { out: &mut out, proto: Protocol::Resp2 }.error(&line);
                            Flow::Continue
                        }
                    };
                    if !matches!(flow, Flow::Continue) {
                        break;
                    }
                    if out.len() >= FLUSH_BYTES {
                        if stream.write_all(&out).await.is_err() {
                            break 'conn;
                        }
                        out.clear();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(%peer, id, error = %e, "protocol error; closing the connection");
                    ReplyWriter { out: &mut out, proto: Protocol::Resp2 }.error(&format!("ERR Protocol error: {e}"));
                    flow = Flow::Close;
                    break;
                }
            }
        }
        input.drain(..used);
        if matches!(flow, Flow::Drop) {
            tracing::info!(%peer, id, "closing a connection of a peer dropped by fault injection");
            break;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
            out.shrink_to(64 * 1024);
        }
        if matches!(flow, Flow::Close) {
            break;
        }
    }
    tracing::debug!(%peer, id, "connection closed");
}

/// Who may do what once TLS is on (without TLS, [`Identity::Plain`], anyone may do
/// anything, as before): members fence, read journal ranges and ask the arbiter; the
/// operator (the installer) reads status and works the fault switches; the greeting
/// commands are everyone's who completed the handshake.
fn authorize(identity: &Identity, request: &Request) -> Result<(), String> {
    let members_only = matches!(
        request,
        Request::AgentFence { .. }
            | Request::JournalRange { .. }
            | Request::ArbiterHello { .. }
            | Request::ArbiterPing { .. }
            | Request::ArbiterSees { .. }
            | Request::ArbiterAsk(_)
    );
    let operators_too = matches!(
        request,
        Request::AgentStatus | Request::ArbiterStatus | Request::FaultDrop(_) | Request::FaultHeal | Request::FaultList
    );
    if members_only && !identity.is_member() {
        return Err(format!(
            "NOPERM only mirror members (a member certificate of the lab CA) may do this; the peer presented {}",
            identity.describe()
        ));
    }
    if operators_too && !identity.is_operator_or_member() {
        return Err(format!(
            "NOPERM only members and the operator may do this; the peer presented {}",
            identity.describe()
        ));
    }
    Ok(())
}

/// The command's name for the log.
fn request_word(request: &Request) -> &'static str {
    match request {
        Request::AgentFence { .. } => "AGENT FENCE",
        Request::JournalRange { .. } => "JOURNAL RANGE",
        Request::ArbiterAsk(_) => "ARBITER ASK",
        Request::ArbiterHello { .. } | Request::ArbiterPing { .. } | Request::ArbiterSees { .. } => "ARBITER",
        Request::AgentStatus => "AGENT STATUS",
        Request::ArbiterStatus => "ARBITER STATUS",
        Request::FaultDrop(_) | Request::FaultHeal | Request::FaultList => "FAULT",
        _ => "a command",
    }
}

/// Runs `job` on the blocking pool, at most [`MAX_BLOCKING_JOBS`] at once.
async fn blocking<T: Send + 'static>(shared: &Shared, job: impl FnOnce() -> T + Send + 'static) -> T {
    let _permit = shared.blocking.acquire().await.expect("the semaphore is never closed");
    tokio::task::spawn_blocking(job).await.expect("agent job panicked")
}

const NO_DATA_DIR: &str = "NODATADIR this agent runs as a pure arbiter (started without --data-dir): it has no engine";
const FAULTS_DISABLED: &str = "ERR fault injection is disabled (start the agent with --allow-fault-injection)";

async fn execute(shared: &Shared, conn: &mut Conn, request: Request, out: &mut Vec<u8>) -> Flow {
    if conn.dropped(&shared.faults.lock(), None) {
        return Flow::Drop;
    }
    let mut w = ReplyWriter { out, proto: Protocol::Resp2 };
    if let Err(refusal) = authorize(&conn.identity, &request) {
        tracing::warn!(peer = %conn.peer, id = conn.id, "refused {}: {refusal}", request_word(&request));
        w.error(&refusal);
        return Flow::Continue;
    }
    match request {
        Request::Ping(None) => w.simple("PONG"),
        Request::Ping(Some(msg)) => w.bulk(&msg),
        Request::Hello(_) => {
            let mode = if shared.dir.is_some() { "agent" } else { "arbiter" };
            w.map(5);
            for (k, v) in [("server", "mirrorlab-agent"), ("version", env!("CARGO_PKG_VERSION")), ("mode", mode)] {
                w.bulk(k.as_bytes());
                w.bulk(v.as_bytes());
            }
            w.bulk(b"proto");
            w.integer(2);
            w.bulk(b"id");
            w.integer(i64::try_from(conn.id).unwrap_or(i64::MAX));
        }
        Request::Quit => {
            w.ok();
            return Flow::Close;
        }
        Request::ClientSetName(name) => {
            if name.is_empty() || name.len() > 128 || !name.bytes().all(|b| b.is_ascii_graphic()) {
                w.error("ERR client names are 1 to 128 printable ASCII characters without spaces");
            } else if conn.dropped(&shared.faults.lock(), Some(&name)) {
                return Flow::Drop;
            } else {
                conn.name = Some(name);
                w.ok();
            }
        }
        Request::ClientGetName => match &conn.name {
            Some(n) => w.bulk(n.as_bytes()),
            None => w.null(),
        },
        Request::AgentVersion => w.bulk(env!("CARGO_PKG_VERSION").as_bytes()),
        Request::AgentStatus => {
            let Some(dir) = shared.dir.clone() else {
                w.error(NO_DATA_DIR);
                return Flow::Continue;
            };
            let probe = PingProbe {
                host: shared.config.engine_host.clone(),
                timeout: shared.config.probe_timeout,
                tls: shared.config.tls.clone(),
            };
            let s = blocking(shared, move || status(&dir, &probe)).await;
            let fields = s.fields();
            let mut w = ReplyWriter { out, proto: Protocol::Resp2 };
            w.map(fields.len());
            for (k, v) in fields {
                w.bulk(k.as_bytes());
                w.bulk(v.as_bytes());
            }
        }
        Request::AgentFence { reason } => {
            let Some(dir) = shared.dir.clone() else {
                w.error(NO_DATA_DIR);
                return Flow::Continue;
            };
            let _one = shared.fencing.lock().await;
            let timeout = shared.config.fence_timeout;
            let peer = conn.peer;
            let reason = format!("{reason} (asked by {peer})");
            let outcome = blocking(shared, move || fence(&dir, &reason, timeout)).await;
            let mut w = ReplyWriter { out, proto: Protocol::Resp2 };
            match outcome {
                Ok(FenceOutcome::Fenced(pid)) => w.simple(&format!("FENCED {pid}")),
                Ok(FenceOutcome::AlreadyDown) => w.simple("DOWN"),
                Err(e) => w.error(&e.to_string()),
            }
        }
        Request::JournalRange { from, max_records } => {
            let Some(dir) = shared.dir.clone() else {
                w.error(NO_DATA_DIR);
                return Flow::Continue;
            };
            let result = blocking(shared, move || {
                // A mirror member serves its mirror journal: that is what other members
                // need from it when it is down.
                let mirror = super::status::read_mirror_state(&dir).ok().flatten().unwrap_or_default();
                let journal = super::status::journal_dir_for(&dir, &mirror);
                journal_ranges::range(&RealVfs::new(), &journal, from, max_records, MAX_RANGE_BYTES)
            })
            .await;
            let mut w = ReplyWriter { out, proto: Protocol::Resp2 };
            match result {
                Ok(range) => {
                    w.array(range.frames.len());
                    for f in &range.frames {
                        w.bulk(f);
                    }
                }
                Err(e @ RangeError::Purged { .. }) => w.error(&e.to_string()),
                Err(RangeError::Journal(e)) => w.error(&format!("JOURNAL {e}")),
            }
        }
        Request::ArbiterHello { mirror, member } => {
            if conn.dropped(&shared.faults.lock(), Some(&member)) {
                return Flow::Drop;
            }
            match shared.arbiter.lock().hello(&mirror, &member, conn.id, now()) {
                Ok(()) => {
                    tracing::info!(peer = %conn.peer, mirror, member, "arbiter: member connected");
                    if !conn.members.contains(&(mirror.clone(), member.clone())) {
                        conn.members.push((mirror, member));
                    }
                    w.ok();
                }
                Err(e) => w.error(&e.to_string()),
            }
        }
        Request::ArbiterPing { mirror, member } => match shared.arbiter.lock().ping(&mirror, &member, conn.id, now()) {
            Ok(()) => w.simple("PONG"),
            Err(e) => w.error(&e.to_string()),
        },
        Request::ArbiterSees { mirror, member } => {
            let sees = shared.arbiter.lock().sees_other(&mirror, &member, now());
            w.integer(i64::from(sees));
        }
        Request::ArbiterAsk(ask) => {
            use crate::mirror::failover::{Arbiter as Decisions, ArbiterAnswer, MemberId};
            let now = shared.started.elapsed().as_millis() as u64;
            let answer = {
                let mut decisions = shared.decisions.lock();
                if decisions.len() >= MAX_MIRRORS && !decisions.contains_key(&ask.mirror) {
                    w.error("FULL this arbiter already serves its limit of mirrors");
                    return Flow::Continue;
                }
                let members: Vec<MemberId> = ask.failover_members.iter().map(|&m| MemberId(m)).collect();
                let fresh = Decisions::new(shared.incarnation, ask.qos_ms, members);
                let record = decisions.get(&ask.mirror).unwrap_or(&fresh);
                if let Err(bad) = record.check(&ask.request) {
                    tracing::warn!(peer = %conn.peer, mirror = ask.mirror, member = ask.member, "arbiter: {bad}");
                    w.error(&format!("EPOCH {bad}"));
                    return Flow::Continue;
                }
                decisions.entry(ask.mirror.clone()).or_insert(fresh).handle(now, MemberId(ask.member), &ask.request)
            };
            let id = |m: Option<MemberId>| m.map_or(-1, |m| i64::from(m.0));
            match answer {
                ArbiterAnswer::Pong { incarnation, epoch, primary, eligible, mode_seq, other_connected } => {
                    w.array(7);
                    w.bulk(b"PONG");
                    w.bulk(incarnation.to_string().as_bytes());
                    w.bulk(epoch.to_string().as_bytes());
                    w.integer(id(primary));
                    w.integer(id(eligible));
                    w.bulk(mode_seq.to_string().as_bytes());
                    w.integer(i64::from(other_connected));
                }
                ArbiterAnswer::Granted { epoch }
                | ArbiterAnswer::Refused { epoch }
                | ArbiterAnswer::NewerEpoch { epoch } => {
                    let word: &[u8] = match answer {
                        ArbiterAnswer::Granted { .. } => b"GRANTED",
                        ArbiterAnswer::Refused { .. } => b"REFUSED",
                        _ => b"NEWER",
                    };
                    w.array(2);
                    w.bulk(word);
                    w.bulk(epoch.to_string().as_bytes());
                }
            }
        }
        Request::ArbiterStatus => {
            let status = shared.arbiter.lock().status(now());
            w.map(status.len());
            for (mirror, members) in status {
                w.bulk(mirror.as_bytes());
                w.map(members.len());
                for m in members {
                    w.bulk(m.member.as_bytes());
                    w.map(2);
                    w.bulk(b"last_seen_ms");
                    w.integer(i64::try_from(m.last_seen_ms).unwrap_or(i64::MAX));
                    w.bulk(b"connected");
                    w.integer(i64::from(m.connected));
                }
            }
        }
        Request::FaultDrop(_) | Request::FaultHeal | Request::FaultList if !shared.config.allow_fault_injection => {
            w.error(FAULTS_DISABLED);
        }
        Request::FaultDrop(peers) => {
            let result = shared.faults.lock().drop_peers(&peers);
            match result {
                Ok(()) => {
                    tracing::warn!(?peers, by = %conn.peer, "fault injection: dropping peers");
                    shared.fault_generation.send_modify(|g| *g += 1);
                    w.ok();
                    // The asking connection may have dropped itself; it gets its OK first.
                }
                Err(e) => w.error(&e),
            }
        }
        Request::FaultHeal => {
            shared.faults.lock().heal();
            tracing::warn!(by = %conn.peer, "fault injection: healed, no peer is dropped");
            w.ok();
        }
        Request::FaultList => {
            let peers = shared.faults.lock().list();
            w.array(peers.len());
            for p in peers {
                w.bulk(p.as_bytes());
            }
        }
    }
    Flow::Continue
}
