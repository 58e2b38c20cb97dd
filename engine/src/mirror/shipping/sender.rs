//! The primary's side of the data channel: one task per connected member.

use super::wire::{self, Message, BATCH_BYTES};
use super::{AbortOnDrop, ShippingError};
use crate::journal::{record, FeedChunk, Journal, Position};
use crate::mirror::failover::{common_prefix, JournalSummary, Message as Control};
use crate::mirror::stages::Marks;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc};

/// How often an idle primary tells members its durable position.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);
/// A connection must send its JOIN within this long, or it is closed: idle connections
/// must not hold the primary's member slots (a restarted backup was locked out by them).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A member's JOIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub mirror: String,
    pub member: String,
    /// The member's mirror journal, summarised by epoch.
    pub summary: JournalSummary,
}

/// What the primary answers to a JOIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinDecision {
    /// Stream from the member's journal end.
    Accept,
    /// The member holds records after this position that the primary does not: it must
    /// undo them first.
    Rewind(Position),
    /// Refused; the reason says what to do.
    Reject(String),
}

/// The join matrix (peers.md): other mirror → rejected; journal a prefix of ours → catch
/// up; holds records we do not → rewind to where the two part ways; needs records we
/// purged → a fresh copy. `oldest_kept` is the first position still in our journal files.
pub fn decide_join(mirror: &str, ours: &JournalSummary, oldest_kept: Position, join: &JoinRequest) -> JoinDecision {
    let member = &join.member;
    if !join.mirror.eq_ignore_ascii_case(mirror) {
        return JoinDecision::Reject(format!(
            "member {member} belongs to mirror {}; this primary serves mirror {mirror}",
            join.mirror
        ));
    }
    let common = common_prefix(ours, &join.summary);
    if common < join.summary.end() {
        return JoinDecision::Rewind(common);
    }
    if common < ours.end() && common + 1 < oldest_kept {
        return JoinDecision::Reject(format!(
            "the primary's journal no longer holds position {} (purged): member {member} needs a fresh copy of the mirrored databases",
            common + 1
        ));
    }
    JoinDecision::Accept
}

/// What the primary hears from a member, for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromMember {
    Joined {
        member: String,
        /// Its type as it says (`failover`, `dr`, ...).
        member_type: String,
        from_position: Position,
    },
    /// Data acknowledgement: records up to `durable` are synced on the member.
    Ack {
        durable: Position,
        sent_at: u64,
        /// When it was read off the connection.
        received: Instant,
        /// From sending the oldest live batch it covers to receiving it (`None`: it
        /// covers none, e.g. records read from the files to catch up).
        round_trip: Option<Duration>,
    },
    Control(Control),
}

/// Serves one member: decides its JOIN, catches it up, streams records and control
/// messages, and reports acknowledgements. A control message that names a journal end
/// (`Journal`, `Handover`) is held until every record up to that end has been sent, so
/// the member always has the records a control message speaks of. Returns the member's
/// name when it disconnects, or an error; a refused member gets a REJECT (or a REWIND)
/// and `Err(Rejected)`.
pub async fn serve_member<S>(
    stream: S,
    journal: Arc<Journal>,
    decide: impl FnOnce(&JoinRequest) -> JoinDecision,
    mut control: mpsc::Receiver<Control>,
    events: mpsc::Sender<FromMember>,
) -> Result<String, ShippingError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let first = tokio::time::timeout(JOIN_TIMEOUT, wire::read(&mut reader)).await.map_err(|_| {
        ShippingError::Protocol(format!("no JOIN within {} s of connecting; closed", JOIN_TIMEOUT.as_secs()))
    })?;
    let Some(Message::Join { mirror, member, member_type, last_position, summary, .. }) = first? else {
        return Err(ShippingError::Protocol("expected JOIN as the first message".into()));
    };
    let join = JoinRequest { mirror, member: member.clone(), summary: wire::summary_of(&summary) };
    if join.summary.end() != last_position {
        return Err(ShippingError::Protocol(format!(
            "JOIN says the journal ends at {last_position} but its summary ends at {}",
            join.summary.end()
        )));
    }
    match decide(&join) {
        JoinDecision::Accept => {}
        JoinDecision::Rewind(to) => {
            wire::write(&mut writer, &Message::Rewind { to }).await?;
            return Err(ShippingError::Rejected(format!("member {member} must rewind to position {to}")));
        }
        JoinDecision::Reject(reason) => {
            wire::write(&mut writer, &Message::Reject { reason: reason.clone() }).await?;
            return Err(ShippingError::Rejected(reason));
        }
    }
    // Subscribe before reading files, so no record falls between the two.
    let mut feed = journal.subscribe_feed();
    let mut durable = journal.watch_durable();
    wire::write(&mut writer, &Message::Welcome { epoch: journal.epoch(), durable: journal.durable_position() }).await?;
    let _ = events.send(FromMember::Joined { member: member.clone(), member_type, from_position: last_position }).await;

    // The member's messages arrive on their own task: reading a message is not cancel
    // safe. The guard ends that task with this one (it holds half of the connection open).
    let from_member = events.clone();
    // Live batches sent and not yet acknowledged, for the round trip (mirror::stages).
    let sent = Arc::new(parking_lot::Mutex::new(Marks::default()));
    let acked = sent.clone();
    let mut acks = AbortOnDrop(tokio::spawn(async move {
        loop {
            let event = match wire::read(&mut reader).await? {
                Some(Message::Ack { durable, sent_at }) => {
                    let received = Instant::now();
                    let round_trip = acked.lock().end(durable, received);
                    FromMember::Ack { durable, sent_at, received, round_trip }
                }
                Some(Message::Control(c)) => FromMember::Control(c),
                Some(other) => {
                    return Err(ShippingError::Protocol(format!("unexpected message from a member: {other:?}")))
                }
                None => return Ok(()),
            };
            if from_member.send(event).await.is_err() {
                return Ok(());
            }
        }
    }));
    let mut next = last_position + 1;
    let mut held: Option<Control> = None;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        if let Some(c) = held.take() {
            if control_end(&c) < next {
                wire::write(&mut writer, &Message::Control(c)).await?;
            } else {
                held = Some(c);
            }
        }
        // The feed holds every record written since we subscribed, published before its
        // fsync: whatever it has queued goes first. Only a position it cannot give (written
        // before we subscribed, or dropped because we lagged) is read from the files, and
        // only once it is durable. Reading files for records the feed still holds made
        // every commit under load re-read the journal (the mirrored-commit collapse).
        match feed.try_recv() {
            Ok(chunk) => {
                if let Some(m) = trim(&chunk, next)? {
                    wire::write(&mut writer, &m).await?;
                    sent.lock().start(chunk.last, Instant::now());
                    next = chunk.last + 1;
                }
                continue;
            }
            Err(broadcast::error::TryRecvError::Closed) => return Ok(member),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Lagged(_)) => {}
        }
        if next <= journal.durable_position() {
            next = send_from_files(&journal, next, &mut writer).await?;
            continue;
        }
        tokio::select! {
            chunk = feed.recv() => match chunk {
                Ok(chunk) => {
                    if let Some(m) = trim(&chunk, next)? {
                        wire::write(&mut writer, &m).await?;
                        sent.lock().start(chunk.last, Instant::now());
                        next = chunk.last + 1;
                    }
                }
                // Too far behind the feed, or records written before we subscribed: the
                // files have them once they are durable.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(member),
            },
            c = control.recv() => match c {
                // Only the newest journal message matters: it replaces a held one.
                Some(c) if control_end(&c) >= next => held = Some(c),
                Some(c) => wire::write(&mut writer, &Message::Control(c)).await?,
                None => return Ok(member),
            },
            _ = durable.changed() => {}
            ended = &mut acks.0 => {
                ended.map_err(|e| ShippingError::Protocol(format!("member reader failed: {e}")))??;
                return Ok(member);
            }
            _ = heartbeat.tick() => wire::write(&mut writer, &Message::Heartbeat { durable: journal.durable_position() }).await?,
        }
    }
}

/// The journal end a control message speaks of (0: none).
fn control_end(c: &Control) -> Position {
    match c {
        Control::Journal { journal, .. } => journal.end(),
        Control::Handover { end, .. } => *end,
        Control::JournalAck { .. } | Control::NewerEpoch { .. } => 0,
    }
}

/// Sends durable records from `from` read from the journal files, in batches; returns the
/// next position to send.
async fn send_from_files<W: AsyncWrite + Unpin>(
    journal: &Arc<Journal>,
    from: Position,
    writer: &mut W,
) -> Result<Position, ShippingError> {
    let (tx, mut rx) = mpsc::channel::<Result<Message, crate::error::EngineError>>(4);
    let j = journal.clone();
    let reading = tokio::task::spawn_blocking(move || {
        let reader = match j.read_from(from) {
            Ok(r) => r,
            Err(e) => return drop(tx.blocking_send(Err(e))),
        };
        let (mut frames, mut first, mut last) = (Vec::with_capacity(BATCH_BYTES), from, 0);
        for r in reader {
            let r = match r {
                Ok(r) => r,
                Err(e) => return drop(tx.blocking_send(Err(e))),
            };
            record::encode_into(&r, &mut frames);
            last = r.position;
            if frames.len() >= BATCH_BYTES {
                let m = Message::Records { first, last, frames: std::mem::take(&mut frames) };
                if tx.blocking_send(Ok(m)).is_err() {
                    return;
                }
                first = last + 1;
            }
        }
        if !frames.is_empty() {
            let _ = tx.blocking_send(Ok(Message::Records { first, last, frames }));
        }
    });
    let mut next = from;
    while let Some(m) = rx.recv().await {
        let m = m?;
        if let Message::Records { last, .. } = &m {
            next = last + 1;
        }
        wire::write(writer, &m).await?;
    }
    reading.await.map_err(|e| ShippingError::Protocol(format!("journal reader failed: {e}")))?;
    Ok(next)
}

/// The part of a feed chunk from `next` on, as a message; `None` when it holds nothing
/// new or starts past `next` (a gap the files will fill).
fn trim(chunk: &FeedChunk, next: Position) -> Result<Option<Message>, ShippingError> {
    if chunk.last < next || chunk.first > next {
        return Ok(None);
    }
    let mut offset = 0;
    for _ in chunk.first..next {
        match record::check_frame(&chunk.frames[offset..]) {
            record::Frame::Record(body) => offset += record::FRAME_HEADER_BYTES + body.len(),
            _ => return Err(ShippingError::Protocol("the journal feed holds a malformed frame".into())),
        }
    }
    Ok(Some(Message::Records { first: next, last: chunk.last, frames: chunk.frames[offset..].to_vec() }))
}
