//! The superserver: accepts connections and runs one task per connection.
//!
//! Each connection reads what the socket has, executes every complete request in order into
//! one output buffer (a batch), waits once per journal for the durability of the batch's
//! writes (a mirror member has two journals), then sends the replies. One fsync so covers a whole pipeline, and the journal's group commit
//! covers concurrent connections.
//!
//! Invariant: a reply acknowledging a durable write never reaches the socket before
//! `wait_durable` of that write's position returned `Ok`. If it fails, the connection
//! answers with the error and closes instead of sending the batch.

use super::backend::Backend;
use super::codec::{self, CodecLimits, Frame};
use super::commands;
use super::execute::{Conn, Flow};
use super::reply::{Protocol, ReplyWriter};
use super::{auth, mirror, replication, transaction};
use crate::instance::DurableWait;
use crate::tls::client_ports::ClientPortTls;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What a connection is read and written through: plain TCP, or TLS over it. Each is
/// served by its own instance of the generic loop: plain TCP pays nothing for TLS.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Most concurrent connections by default (the configuration usually sets it).
pub const MAX_CONNECTIONS: usize = 1024;
/// Most requests executed before their replies are sent.
pub const MAX_BATCH_COMMANDS: usize = 1024;
/// Most reply bytes buffered before they are sent (one reply may exceed it).
pub const MAX_BATCH_OUTPUT: usize = 1 << 20;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// How long closing a connection may take (a TLS close_notify to a peer that reads no more).
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// Buffers larger than this after a big request are given back.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Limits of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections over this get `-ERR max number of clients reached` and are closed.
    pub max_connections: usize,
    pub max_batch_commands: usize,
    pub max_batch_output: usize,
    pub codec: CodecLimits,
    /// Protected mode: only loopback peers are served (see [`crate::access`]).
    pub protected_mode: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: MAX_CONNECTIONS,
            max_batch_commands: MAX_BATCH_COMMANDS,
            max_batch_output: MAX_BATCH_OUTPUT,
            codec: CodecLimits::default(),
            protected_mode: true,
        }
    }
}

/// State shared by the connections of one server (for INFO).
pub(crate) struct Shared {
    pub limits: ServerLimits,
    pub started: Instant,
    /// The backend's client counters (connections, commands).
    pub counters: Arc<crate::instance::counters::ServerCounters>,
    next_id: AtomicU64,
    /// SCAN's cursors (`keyspace.rs`).
    pub cursors: super::keyspace::Cursors,
    /// The connections, for CLIENT LIST and CLIENT KILL (`clients.rs`).
    pub clients: super::clients::Clients,
    /// The feed of every command, for MONITOR (`monitor.rs`).
    pub monitors: super::monitor::Monitors,
}

/// Serves RESP on `listener` until `shutdown` completes; then stops accepting, lets every
/// connection finish the batch it is executing, and returns once all are closed.
///
/// `backend` is the instance (`Arc<Instance>`), or a test double.
pub async fn serve<B: Backend>(listener: TcpListener, backend: Arc<B>, limits: ServerLimits, shutdown: impl Future) {
    serve_with_tls(listener, backend, limits, None, shutdown).await
}

/// [`serve`], speaking TLS only when `tls` is given (`network.client_tls`): each
/// connection's handshake runs in its own task, so a slow or silent one delays no other.
pub async fn serve_with_tls<B: Backend>(
    listener: TcpListener,
    backend: Arc<B>,
    limits: ServerLimits,
    tls: Option<ClientPortTls>,
    shutdown: impl Future,
) {
    let shared = Arc::new(Shared {
        limits,
        started: Instant::now(),
        counters: backend.counters(),
        next_id: AtomicU64::new(1),
        cursors: Default::default(),
        clients: Default::default(),
        monitors: Default::default(),
    });
    let handler = Superserver { backend, shared, tls };
    let protected = limits.protected_mode.then_some(crate::access::ENGINE_DENIED);
    crate::connections::accept_connections(
        listener,
        "superserver",
        limits.max_connections,
        protected,
        shutdown,
        handler,
    )
    .await;
}

struct Superserver<B> {
    backend: Arc<B>,
    shared: Arc<Shared>,
    tls: Option<ClientPortTls>,
}

impl<B: Backend> crate::connections::ConnectionHandler for Superserver<B> {
    fn admit(&mut self, _peer: SocketAddr) -> bool {
        self.shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn refused(&mut self, _peer: SocketAddr) {
        self.shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
    }

    fn serve(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (backend, shared, tls) = (self.backend.clone(), self.shared.clone(), self.tls.clone());
        async move {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
            }
            // CLIENT KILL shuts the TCP socket down, under TLS too.
            let socket = Socket {
                fd: stream.as_raw_fd(),
                local: stream.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            };
            match tls {
                None => serve_counted(stream, socket, peer, &*backend, &shared, stop).await,
                Some(tls) => {
                    // A shutdown does not wait for a handshake to finish or time out.
                    let mut stopping = stop.clone();
                    let accepted = tokio::select! {
                        accepted = tls.accept(stream, peer) => accepted,
                        _ = stopping.changed() => None,
                    };
                    if let Some(stream) = accepted {
                        serve_counted(stream, socket, peer, &*backend, &shared, stop).await;
                    }
                }
            }
        }
    }
}

/// The TCP socket under a connection's stream.
struct Socket {
    fd: RawFd,
    local: String,
}

async fn serve_counted<B: Backend>(
    stream: impl Stream,
    socket: Socket,
    peer: SocketAddr,
    backend: &B,
    shared: &Shared,
    stop: watch::Receiver<bool>,
) {
    shared.counters.connected.fetch_add(1, Ordering::Relaxed);
    handle(stream, socket, peer, backend, shared, stop).await;
    shared.counters.connected.fetch_sub(1, Ordering::Relaxed);
}

/// Why a connection ended.
enum End {
    /// The peer closed, QUIT, or shutdown.
    Done,
    /// A socket error; nothing more can be sent.
    Io(std::io::Error),
}

async fn handle<B: Backend>(
    mut stream: impl Stream,
    socket: Socket,
    peer: SocketAddr,
    backend: &B,
    shared: &Shared,
    stop: watch::Receiver<bool>,
) {
    let mut conn = Conn {
        session: backend.session(),
        proto: Protocol::Resp2,
        id: shared.next_id.fetch_add(1, Ordering::Relaxed),
        peer: peer.to_string(),
        local: socket.local,
        connected_at: Instant::now(),
        durable_wait: DurableWait::NONE,
        multi: None,
        replication: None,
        engine_errors: false,
        user: None,
        auth_generation: backend.security().map_or(0, |s| s.generation()),
        ecp: None,
    };
    tracing::debug!(%peer, id = conn.id, "connection opened");
    shared.clients.register(&conn, socket.fd);
    match run(&mut stream, backend, shared, &mut conn, stop).await {
        End::Done => {}
        End::Io(e) => tracing::debug!(%peer, id = conn.id, error = %e, "connection failed"),
    }
    backend.end_session(&mut conn.session);
    if let (Some(a), Some(service)) = (conn.ecp.take(), backend.ecp_service()) {
        service.detach(&a);
    }
    // After the rollback (CLIENT LIST then shows the transaction gone), before the socket
    // closes (so CLIENT KILL never reaches a reused descriptor).
    shared.clients.unregister(conn.id);
    // TLS: close_notify, so the client knows nothing was cut off (bounded: the peer may
    // read nothing more).
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.shutdown()).await;
    tracing::debug!(%peer, id = conn.id, "connection closed");
}

async fn run<B: Backend>(
    stream: &mut impl Stream,
    backend: &B,
    shared: &Shared,
    conn: &mut Conn,
    mut stop: watch::Receiver<bool>,
) -> End {
    let limits = &shared.limits;
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut frame = Frame::default();
    loop {
        input.reserve(READ_CHUNK);
        let read = tokio::select! {
            read = stream.read_buf(&mut input) => read,
            _ = stop.changed() => return End::Done,
        };
        match read {
            Ok(0) => return End::Done,
            Ok(_) => {}
            Err(e) => return End::Io(e),
        }
        let mut used = 0;
        let mut batch: u64 = 0;
        let mut flow = Flow::Continue;
        let mut protocol_error = None;
        loop {
            match codec::parse(&input[used..], &limits.codec, &mut frame) {
                Ok(Some(n)) => {
                    used += n;
                    if frame.is_empty() {
                        continue;
                    }
                    batch += 1;
                    if looks_like_http(&frame) {
                        // As Redis does: an HTTP request here is most likely a browser
                        // tricked into talking to this port. Close without an answer.
                        tracing::warn!(
                            id = conn.id,
                            peer = conn.peer,
                            "Possible SECURITY ATTACK detected: an HTTP request (POST, GET ... HTTP/1.x or a \
                             Host: line) reached the superserver, likely a cross-protocol attack from a web \
                             page. Connection closed."
                        );
                        return End::Done;
                    }
                    shared.monitors.publish(&frame, &conn.peer);
                    let reply_at = out.len();
                    let gate = auth::gate(backend, shared, conn, &frame, &mut out).await;
                    flow = match commands::parse(&frame) {
                        // Answered by the authentication gate (AUTH, or a refusal).
                        _ if matches!(gate, auth::Gate::Answered) => Flow::Continue,
                        Ok(commands::Command::Monitor) if conn.multi.is_none() => {
                            // Subscribed before +OK: every command after it is in the feed.
                            let feed = shared.monitors.subscribe();
                            // Replies to the commands before it go first, then the feed.
                            ReplyWriter { out: &mut out, proto: conn.proto }.ok();
                            if let Err(end) = flush(stream, backend, conn, &mut out).await {
                                return end;
                            }
                            // What the client sent after MONITOR is the monitor's to read.
                            let after = input.split_off(used);
                            match super::monitor::stream_to(stream, feed, after, &limits.codec, conn.proto, &mut stop)
                                .await
                            {
                                super::monitor::Left::Reset(rest) => {
                                    input.extend_from_slice(&rest);
                                    // The monitor answered +RESET itself.
                                    let mut answered = Vec::new();
                                    transaction::reset(
                                        backend,
                                        conn,
                                        &mut ReplyWriter { out: &mut answered, proto: conn.proto },
                                    );
                                    Flow::Continue
                                }
                                super::monitor::Left::Closed => return End::Done,
                                super::monitor::Left::Io(e) => return End::Io(e),
                            }
                        }
                        // The mirror runtime may block: awaited here, off the async workers.
                        Ok(commands::Command::Mirror(cmd)) if conn.multi.is_none() => {
                            mirror::execute(backend, conn.proto, cmd, &mut out).await;
                            Flow::Continue
                        }
                        Ok(commands::Command::Ecp { args }) if conn.multi.is_none() => {
                            super::ecp::execute(backend, conn, &args, &mut out).await;
                            Flow::Continue
                        }
                        Ok(cmd) => replication::run(backend, shared, conn, &frame, cmd, &mut out).await,
                        Err(e) => {
                            transaction::note_rejected(conn);
                            ReplyWriter { out: &mut out, proto: conn.proto }.error(&e.0);
                            Flow::Continue
                        }
                    };
                    // A simple or blob error (RESP3) starts the reply.
                    if matches!(out.get(reply_at), Some(b'-' | b'!')) {
                        shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if flow == Flow::Close {
                        break;
                    }
                    if batch >= limits.max_batch_commands as u64 || out.len() >= limits.max_batch_output {
                        shared.counters.commands.fetch_add(batch, Ordering::Relaxed);
                        batch = 0;
                        if let Err(end) = flush(stream, backend, conn, &mut out).await {
                            return end;
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        shared.counters.commands.fetch_add(batch, Ordering::Relaxed);
        input.drain(..used);
        if let Some(e) = protocol_error {
            tracing::debug!(id = conn.id, error = %e, "protocol error; closing the connection");
            ReplyWriter { out: &mut out, proto: conn.proto }.error(&format!("ERR Protocol error: {e}"));
            flow = Flow::Close;
        }
        if let Err(end) = flush(stream, backend, conn, &mut out).await {
            return end;
        }
        if flow == Flow::Close {
            return End::Done;
        }
        if input.capacity() > KEEP_CAPACITY && input.len() < KEEP_CAPACITY / 2 {
            input.shrink_to(KEEP_CAPACITY);
        }
        frame.shrink(KEEP_CAPACITY);
    }
}

/// Whether a request is really an HTTP request line or header (`POST ...`, `Host: ...`, or
/// any `METHOD target HTTP/1.x`): no RESP command is named `POST` or `HOST:`.
pub(crate) fn looks_like_http(frame: &Frame) -> bool {
    let n = frame.len();
    if n == 0 {
        return false;
    }
    let name = frame.arg(0);
    name.eq_ignore_ascii_case(b"POST")
        || name.eq_ignore_ascii_case(b"HOST:")
        || (n == 3 && frame.arg(2).len() >= 7 && frame.arg(2)[..7].eq_ignore_ascii_case(b"HTTP/1."))
}

/// Waits for the durability the buffered replies promise, then sends them.
async fn flush<B: Backend>(
    stream: &mut impl Stream,
    backend: &B,
    conn: &mut Conn,
    out: &mut Vec<u8>,
) -> Result<(), End> {
    let wait = std::mem::take(&mut conn.durable_wait);
    for (journal, position) in wait.points() {
        if let Err(e) = backend.wait_durable(journal, position).await {
            // The buffered replies may acknowledge writes that are not durable: drop them all.
            tracing::error!(id = conn.id, error = %e, "durability wait failed; closing the connection");
            out.clear();
            ReplyWriter { out, proto: conn.proto }.error(&commands::engine_error_line(&e));
            let _ = stream.write_all(out).await;
            let _ = stream.flush().await;
            return Err(End::Done);
        }
    }
    if !out.is_empty() {
        stream.write_all(out).await.map_err(End::Io)?;
        // TLS keeps what the socket did not take: flush sends it (free on plain TCP).
        stream.flush().await.map_err(End::Io)?;
        out.clear();
        if out.capacity() > 4 * MAX_BATCH_OUTPUT {
            out.shrink_to(KEEP_CAPACITY);
        }
    }
    Ok(())
}
