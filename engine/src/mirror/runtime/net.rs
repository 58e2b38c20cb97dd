//! The data channel's sockets: the listener every member runs (only a primary accepts
//! joins), and the connector a non-primary member runs to find and follow the primary.

use super::driver::Input;
use super::state;
use super::store::MirrorStore;
use crate::agent::status::MirrorState;
use crate::error::EngineError;
use crate::instance::datadir::DataDir;
use crate::journal::Position;
use crate::mirror::failover::{JournalSummary, MemberId};
use crate::mirror::shipping::follower::{follow, FollowEnd, FromPrimary, RecordSink};
use crate::mirror::shipping::sender::{decide_join, serve_member, FromMember, JoinDecision};
use crate::mirror::shipping::AbortOnDrop;
use crate::mirror::shipping::{epoch_changes, wire, ShippingError};
use crate::tls::{Identity, HANDSHAKE_TIMEOUT};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long a member waits between two attempts to reach a primary.
const RECONNECT_DELAY: Duration = Duration::from_millis(150);
/// Connect timeout to another member's data channel.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Control messages waiting for one member's connection (the newest matter).
const CONTROL_QUEUE: usize = 64;
/// Most member connections a primary serves at once (two failover members, fourteen
/// asyncs, and room for reconnections racing old ones).
const MAX_MEMBER_CONNECTIONS: usize = 32;
/// Of those, most that have not joined yet (each has `JOIN_TIMEOUT` to do so): the rest
/// stay free for members that do join.
const MAX_UNJOINED_CONNECTIONS: usize = 8;

/// What the listener needs to know, kept current by the driver.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    pub primary: bool,
    pub summary: JournalSummary,
    pub oldest_kept: Position,
    pub primary_name: Option<String>,
}

/// Everything the network tasks share with the driver.
pub struct NetShared {
    pub mirror: String,
    pub me: String,
    /// Member names by index.
    pub names: Vec<String>,
    pub addresses: Vec<String>,
    pub view: Mutex<NetView>,
    /// Peers whose traffic the fault switch drops (tests and labs only).
    pub dropped: Mutex<BTreeSet<String>>,
    pub store: Arc<dyn MirrorStore>,
    pub dir: DataDir,
    pub state: Arc<Mutex<MirrorState>>,
    pub inputs: mpsc::Sender<Input>,
    /// Where mirrored commits spend their time.
    pub stages: Arc<crate::mirror::stages::CommitStages>,
    /// Mutual TLS with the lab CA; `None`: plain TCP, peers believed by their JOIN.
    pub tls: Option<Arc<crate::tls::Tls>>,
}

impl NetShared {
    /// Writes the mirror state file through the instance's file system.
    pub fn save_state(&self, state: &crate::agent::status::MirrorState) -> Result<(), EngineError> {
        super::state::save(&*self.store.mirror_journal().vfs(), &self.dir, state)
    }

    pub fn is_dropped(&self, name: &str) -> bool {
        self.dropped.lock().contains(name)
    }

    fn id_of(&self, name: &str) -> Option<MemberId> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| MemberId(i as u8))
    }
}

/// Accepts member connections on the data channel until the task is aborted.
pub async fn listen(listener: TcpListener, net: Arc<NetShared>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_MEMBER_CONNECTIONS));
    let unjoined = Arc::new(tokio::sync::Semaphore::new(MAX_UNJOINED_CONNECTIONS));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(RECONNECT_DELAY).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "mirror: refusing a connection from {peer}: {MAX_MEMBER_CONNECTIONS} member connections open"
            );
            continue;
        };
        let Ok(waiting) = unjoined.clone().try_acquire_owned() else {
            tracing::warn!(
                "mirror: refusing a connection from {peer}: {MAX_UNJOINED_CONNECTIONS} connections have not joined yet"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let net = net.clone();
        tokio::spawn(async move {
            match net.tls.clone() {
                None => serve_one(stream, Identity::Plain, net, waiting).await,
                // The handshake counts as not joined yet: it holds `waiting`, and is
                // bounded like the JOIN that follows it.
                Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let identity = tls.identify(stream.get_ref().1.peer_certificates());
                        serve_one(stream, identity, net, waiting).await;
                    }
                    Ok(Err(e)) => tracing::warn!(
                        "mirror: refused a connection from {peer}: TLS handshake failed (a member needs a certificate of the lab CA): {e}"
                    ),
                    Err(_) => tracing::warn!(
                        "mirror: closed a connection from {peer}: no TLS handshake within {} s",
                        HANDSHAKE_TIMEOUT.as_secs()
                    ),
                },
            }
            drop(slot);
        });
    }
}

/// `waiting`: this connection's place among those not joined yet, given up at its JOIN.
/// `identity`: what the peer's certificate proved ([`Identity::Plain`] without TLS).
async fn serve_one<S>(stream: S, identity: Identity, net: Arc<NetShared>, waiting: tokio::sync::OwnedSemaphorePermit)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut waiting = Some(waiting);
    let view = net.view.lock().clone();
    let joined: Arc<Mutex<Option<MemberId>>> = Arc::default();
    let decide = {
        let (net, joined) = (net.clone(), joined.clone());
        move |j: &crate::mirror::shipping::sender::JoinRequest| {
            let Some(id) = net.id_of(&j.member) else {
                return JoinDecision::Reject(format!(
                    "{} is not a member of mirror {} (configure it on every member first)",
                    j.member, net.mirror
                ));
            };
            if !identity.names_member(&j.member) {
                tracing::warn!(
                    "mirror: refused a JOIN as {}: the peer presented {} that does not name {}",
                    j.member,
                    identity.describe(),
                    j.member
                );
                return JoinDecision::Reject(format!(
                    "the certificate presented does not name member {}: a member joins under its own name only",
                    j.member
                ));
            }
            if net.is_dropped(&j.member) {
                return JoinDecision::Reject("traffic from this member is dropped by the fault switch".into());
            }
            if !view.primary {
                let primary = view.primary_name.map_or("not known here".to_string(), |p| p);
                return JoinDecision::Reject(format!("{} is not the primary (the primary: {primary})", net.me));
            }
            let decision = decide_join(&net.mirror, &view.summary, view.oldest_kept, j);
            if decision == JoinDecision::Accept {
                *joined.lock() = Some(id);
            }
            decision
        }
    };
    let (control_tx, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (events_tx, mut events_rx) = mpsc::channel::<FromMember>(256);
    let journal = net.store.mirror_journal();
    let mut serving = AbortOnDrop(tokio::spawn(serve_member(stream, journal, decide, control_rx, events_tx)));
    let mut control_tx = Some(control_tx);
    while let Some(event) = events_rx.recv().await {
        let Some(id) = *joined.lock() else { continue };
        if matches!(event, FromMember::Joined { .. }) {
            waiting.take();
        }
        if let (FromMember::Joined { .. }, Some(tx)) = (&event, control_tx.take()) {
            let _ = net.inputs.send(Input::Link(id, tx)).await;
        }
        if net.inputs.send(Input::FromMember(id, event)).await.is_err() {
            break;
        }
    }
    let result = (&mut serving.0).await;
    let id = *joined.lock();
    if let Some(id) = id {
        let why = match result {
            Ok(Ok(_)) => "closed".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let _ = net.inputs.send(Input::LinkClosed(id, why)).await;
    } else if let Ok(Err(ShippingError::Rejected(reason))) = result {
        tracing::debug!("mirror: refused a join: {reason}");
    }
}

/// Received records go to the store; a record of a new epoch first has its epoch start
/// written to the state file, so the agent's summary of this journal is never behind.
struct MemberSink {
    net: Arc<NetShared>,
}

/// Appends received records to the store, first writing the start of any new epoch among
/// them to the state file.
pub fn receive_noting_epochs(
    net: &NetShared,
    first: Position,
    last: Position,
    frames: &[u8],
) -> Result<Position, EngineError> {
    let (previous, known) = {
        let s = net.state.lock();
        let previous = s.epochs.last().map_or(0, |e| e.0);
        (previous, previous.max(s.epoch))
    };
    let changes = epoch_changes(frames, previous)?;
    for &(epoch, position) in &changes {
        // An epoch from the wire is checked before it is written anywhere.
        if let Err(bad) = crate::mirror::failover::check_epoch(epoch, known) {
            tracing::error!("mirror: record {position} from the primary: {bad}");
            return Err(EngineError::Invalid(format!("record {position} from the primary: {bad}")));
        }
    }
    if !changes.is_empty() {
        let mut s = net.state.lock();
        for (epoch, position) in changes {
            state::note_epoch_start(&mut s, epoch, position);
        }
        net.save_state(&s)?;
    }
    net.store.receive(first, last, frames)
}

impl RecordSink for MemberSink {
    fn receive(&self, first: Position, last: Position, frames: &[u8]) -> Result<Position, EngineError> {
        let started = std::time::Instant::now();
        let result = receive_noting_epochs(&self.net, first, last, frames);
        self.net.stages.member_append.observe(started.elapsed().as_secs_f64());
        result
    }

    fn flush(&self) -> Result<Position, EngineError> {
        let started = std::time::Instant::now();
        let result = self.net.store.mirror_journal().flush();
        self.net.stages.member_sync.observe(started.elapsed().as_secs_f64());
        result
    }
}

/// The JOIN this member sends: its journal and summary as they are on disk now.
fn join_message(net: &NetShared) -> Result<wire::Message, EngineError> {
    let last = net.store.mirror_journal().flush()?;
    let summary = state::summary(&net.state.lock(), last);
    let member_type = net.state.lock().member_type.clone();
    Ok(wire::Message::Join {
        mirror: net.mirror.clone(),
        member: net.me.clone(),
        member_type,
        last_position: summary.end(),
        last_epoch: summary.last_epoch(),
        summary: summary.segments().to_vec(),
    })
}

/// Looks for the primary among `candidates` and follows it, forever (the driver aborts
/// this task when the member becomes primary).
pub async fn connect_and_follow(net: Arc<NetShared>, candidates: Vec<MemberId>) {
    let mut turn = 0usize;
    // The last TLS failure logged.
    let mut refused: Option<String> = None;
    loop {
        if candidates.is_empty() {
            return;
        }
        let id = candidates[turn % candidates.len()];
        turn += 1;
        let name = net.names[id.0 as usize].clone();
        if net.is_dropped(&name) {
            tokio::time::sleep(RECONNECT_DELAY).await;
            continue;
        }
        let address = net.addresses[id.0 as usize].clone();
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, crate::resolve::connect(&address)).await {
            Ok(Ok(s)) => s,
            _ => {
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = match secure(&net, &name, stream).await {
            Ok(s) => {
                refused = None;
                s
            }
            Err(why) => {
                // A refused handshake is a configuration problem: said once, not at every
                // retry.
                if refused.as_ref() != Some(&why) {
                    tracing::warn!("mirror: cannot reach {name} at {address}: {why}");
                }
                refused = Some(why);
                tokio::time::sleep(RECONNECT_DELAY).await;
                continue;
            }
        };
        let n = net.clone();
        let join = match tokio::task::spawn_blocking(move || join_message(&n)).await {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::error!("mirror: cannot read the mirror journal to join: {e}");
                tokio::time::sleep(RECONNECT_DELAY * 10).await;
                continue;
            }
            Err(_) => return,
        };
        match follow_one(&net, id, stream, join).await {
            Ok(FollowEnd::Rewind(to)) => {
                let n = net.clone();
                let rewound = tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
                    n.store.rewind(to)?;
                    let mut s = n.state.lock();
                    state::cut_epochs(&mut s, to);
                    n.save_state(&s)
                })
                .await;
                match rewound {
                    Ok(Ok(())) => {
                        tracing::warn!("mirror: rewound the journal to position {to}: its later records never reached the primary {name}");
                        let _ = net.inputs.send(Input::Rewound(to)).await;
                        turn -= 1; // join the same primary again at once
                        continue;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(
                            "mirror: this member's data is inconsistent with the mirror and cannot be rewound: {e}"
                        );
                        let _ = net.inputs.send(Input::Inconsistent(e.to_string())).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
            Ok(FollowEnd::Closed) => {}
            Err(ShippingError::Rejected(reason)) => {
                tracing::debug!("mirror: {name} refused the join: {reason}");
                if reason.contains("needs a fresh copy")
                    || reason.contains("not a member")
                    || reason.contains("belongs to mirror")
                {
                    let _ = net.inputs.send(Input::Inconsistent(reason)).await;
                }
            }
            Err(e) => tracing::info!("mirror: connection to {name} ended: {e}"),
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// A stream to member `name`: TLS over `stream` when the mirror uses TLS (the member must
/// present a lab certificate naming it), else `stream` itself.
async fn secure(net: &NetShared, name: &str, stream: TcpStream) -> Result<Box<dyn Channel>, String> {
    let Some(tls) = &net.tls else { return Ok(Box::new(stream)) };
    let server = crate::tls::server_name(name).map_err(|e| e.to_string())?;
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connector().connect(server, stream)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err(format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())),
    }
}

/// A data channel connection, plain or TLS.
trait Channel: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Channel for T {}

async fn follow_one(
    net: &Arc<NetShared>,
    id: MemberId,
    stream: Box<dyn Channel>,
    join: wire::Message,
) -> Result<FollowEnd, ShippingError> {
    let (out_tx, out_rx) = mpsc::channel(CONTROL_QUEUE);
    let (events_tx, mut events_rx) = mpsc::channel::<FromPrimary>(256);
    let sink: Arc<dyn RecordSink> = Arc::new(MemberSink { net: net.clone() });
    let mut following = AbortOnDrop(tokio::spawn(follow(stream, sink, join, out_rx, events_tx)));
    let mut welcomed = false;
    let mut out_tx = Some(out_tx);
    while let Some(event) = events_rx.recv().await {
        if let (FromPrimary::Welcome { .. }, Some(tx)) = (&event, out_tx.take()) {
            welcomed = true;
            let _ = net.inputs.send(Input::Upstream(id, tx)).await;
        }
        if net.inputs.send(Input::FromPrimary(id, event)).await.is_err() {
            break;
        }
        if net.is_dropped(&net.names[id.0 as usize]) {
            following.0.abort();
            break;
        }
    }
    let result = match (&mut following.0).await {
        Ok(r) => r,
        Err(e) if e.is_cancelled() => Err(ShippingError::Protocol("dropped by the fault switch".into())),
        Err(e) => Err(ShippingError::Protocol(e.to_string())),
    };
    if welcomed {
        let why = match &result {
            Ok(end) => format!("{end:?}"),
            Err(e) => e.to_string(),
        };
        let _ = net.inputs.send(Input::UpstreamClosed(id, why)).await;
    }
    result
}
