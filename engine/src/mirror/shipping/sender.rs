//! The primary's side of the data channel: one task per connected member.

use super::wire::{self, Message, BATCH_BYTES};
use super::{epoch_at, ShippingError};
use crate::journal::{record, FeedChunk, Journal, Position};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, watch};

/// How often an idle primary tells members its durable position.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(250);

/// What the primary learns about a member that joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub member: String,
    /// Where the member's journal ended when it joined.
    pub from_position: Position,
}

/// Serves one member: validates its JOIN, catches it up, streams, and publishes every
/// acknowledgement to `acked` (the member's durable position). Returns when the member
/// disconnects (`Ok`) or on an error; a refused member gets a REJECT with the reason and
/// `Err(Rejected)`.
pub async fn serve_member<S>(
    stream: S,
    journal: Arc<Journal>,
    mirror: &str,
    acked: watch::Sender<Position>,
    on_join: impl FnOnce(&Joined),
) -> Result<(), ShippingError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let Some(Message::Join { mirror: theirs, member, last_position, last_epoch }) = wire::read(&mut reader).await?
    else {
        return Err(ShippingError::Protocol("expected JOIN as the first message".into()));
    };
    if let Err(reason) = check_join(&journal, mirror, &theirs, &member, last_position, last_epoch).await {
        wire::write(&mut writer, &Message::Reject { reason: reason.clone() }).await?;
        return Err(ShippingError::Rejected(reason));
    }
    // Subscribe before reading files, so no record falls between the two.
    let mut feed = journal.subscribe_feed();
    let mut durable = journal.watch_durable();
    wire::write(&mut writer, &Message::Welcome { epoch: journal.epoch(), durable: journal.durable_position() }).await?;
    on_join(&Joined { member, from_position: last_position });
    acked.send_replace(last_position);

    // Acknowledgements arrive on their own task: reading a message is not cancel safe.
    // The guard ends that task with this one (it holds half of the connection open).
    let mut acks = AbortOnDrop(tokio::spawn(async move {
        loop {
            match wire::read(&mut reader).await? {
                Some(Message::Ack { durable }) => {
                    acked.send_if_modified(|a| {
                        let newer = durable > *a;
                        *a = (*a).max(durable);
                        newer
                    });
                }
                Some(other) => {
                    return Err(ShippingError::Protocol(format!("unexpected message from a member: {other:?}")))
                }
                None => return Ok(()),
            }
        }
    }));
    let mut next = last_position + 1;
    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        if next <= journal.durable_position() {
            next = send_from_files(&journal, next, &mut writer).await?;
            continue;
        }
        tokio::select! {
            chunk = feed.recv() => match chunk {
                Ok(chunk) => {
                    if let Some(m) = trim(&chunk, next)? {
                        wire::write(&mut writer, &m).await?;
                        next = chunk.last + 1;
                    }
                }
                // Too far behind the feed, or records written before we subscribed: the
                // files have them once they are durable.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = durable.changed() => {}
            ended = &mut acks.0 => return ended.map_err(|e| ShippingError::Protocol(format!("acknowledgement reader failed: {e}")))?,
            _ = heartbeat.tick() => wire::write(&mut writer, &Message::Heartbeat { durable: journal.durable_position() }).await?,
        }
    }
}

/// Aborts a task when dropped, so a cancelled sender leaves nothing running behind it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a member may not join, if it may not (the reason names what to do).
async fn check_join(
    journal: &Arc<Journal>,
    mirror: &str,
    theirs: &str,
    member: &str,
    last_position: Position,
    last_epoch: u64,
) -> Result<(), String> {
    if !theirs.eq_ignore_ascii_case(mirror) {
        return Err(format!("member {member} belongs to mirror {theirs}; this primary serves mirror {mirror}"));
    }
    let durable = journal.durable_position();
    if last_position > durable {
        return Err(format!(
            "member {member}'s journal ends at position {last_position}, past the primary's {durable}: it holds records the primary never had and must be rewound or rebuilt from a copy"
        ));
    }
    let j = journal.clone();
    let ours = tokio::task::spawn_blocking(move || epoch_at(&j, last_position))
        .await
        .map_err(|e| format!("reading the journal: {e}"))?
        .map_err(|e| e.to_string())?;
    match ours {
        None => Err(format!(
            "the primary's journal no longer holds position {last_position} (purged): member {member} needs a fresh copy of the mirrored databases"
        )),
        Some(epoch) if epoch != last_epoch => Err(format!(
            "member {member} diverged at position {last_position} (its epoch {last_epoch}, the primary's {epoch}): it must be rewound or rebuilt from a copy"
        )),
        Some(_) => Ok(()),
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
