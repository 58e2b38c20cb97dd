//! A member's side of the data channel: join, then append, sync and acknowledge.

use super::wire::{self, Message};
use super::{AbortOnDrop, ShippingError};
use crate::error::EngineError;
use crate::journal::{Journal, Position};
use crate::mirror::failover::Message as Control;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

/// Where received records go: appended verbatim to the mirror journal (and applied to the
/// databases, on a real member).
pub trait RecordSink: Send + Sync + 'static {
    /// Appends the records `first..=last` encoded in `frames`; returns the last appended.
    fn receive(&self, first: Position, last: Position, frames: &[u8]) -> Result<Position, EngineError>;
    /// Syncs; returns the durable position.
    fn flush(&self) -> Result<Position, EngineError>;
}

/// A bare journal as a sink (no databases to apply to).
impl RecordSink for Journal {
    fn receive(&self, first: Position, last: Position, frames: &[u8]) -> Result<Position, EngineError> {
        append_frames(self, first, last, frames)
    }

    fn flush(&self) -> Result<Position, EngineError> {
        Journal::flush(self)
    }
}

/// What a member hears from the primary, for the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromPrimary {
    /// Accepted: the primary's epoch and durable position.
    Welcome {
        epoch: u64,
        durable: Position,
    },
    /// Records up to `durable` are in this member's journal, synced.
    Durable(Position),
    /// The primary's durable position, from a heartbeat.
    PrimaryDurable(Position),
    Control(Control),
}

/// How following ended without an I/O or protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEnd {
    /// The primary closed the connection.
    Closed,
    /// The primary says this member holds records it does not: rewind to `to`, then join
    /// again.
    Rewind(Position),
}

/// Joins with `join` and follows the primary until the stream ends. Every batch goes to
/// `sink`, is synced, then acknowledged. Messages in `outgoing` (control messages of the
/// runtime) are written to the primary; `events` receives what the runtime must know.
pub async fn follow<S>(
    stream: S,
    sink: Arc<dyn RecordSink>,
    join: Message,
    mut outgoing: mpsc::Receiver<Message>,
    events: mpsc::Sender<FromPrimary>,
) -> Result<FollowEnd, ShippingError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    wire::write(&mut writer, &join).await?;
    match wire::read(&mut reader).await? {
        Some(Message::Welcome { epoch, durable }) => {
            let _ = events.send(FromPrimary::Welcome { epoch, durable }).await;
        }
        Some(Message::Reject { reason }) => return Err(ShippingError::Rejected(reason)),
        Some(Message::Rewind { to }) => return Ok(FollowEnd::Rewind(to)),
        other => return Err(ShippingError::Protocol(format!("expected WELCOME, REWIND or REJECT, got {other:?}"))),
    }
    // Writes go through one task so that acknowledgements and the runtime's control
    // messages never interleave mid-message.
    let (acks, mut ack_rx) = mpsc::channel::<Message>(64);
    let writing = tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                m = ack_rx.recv() => m,
                m = outgoing.recv() => m,
            };
            let Some(m) = m else { return Ok::<_, ShippingError>(()) };
            wire::write(&mut writer, &m).await?;
        }
    });
    // Reading runs ahead on its own task (reading a message is not cancel safe), so that
    // batches that arrive while one is being synced are journaled together and synced
    // once: the member's group commit.
    let (incoming_tx, mut incoming) = mpsc::channel::<Result<Option<Message>, ShippingError>>(READ_AHEAD);
    let _reading = AbortOnDrop(tokio::spawn(async move {
        loop {
            let m = wire::read(&mut reader).await;
            let end = !matches!(m, Ok(Some(_)));
            if incoming_tx.send(m).await.is_err() || end {
                return;
            }
        }
    }));
    let mut next: Option<Message> = None;
    let result = async {
        loop {
            let message = match next.take() {
                Some(m) => m,
                None => match incoming.recv().await {
                    Some(m) => match m? {
                        Some(m) => m,
                        None => return Ok(FollowEnd::Closed),
                    },
                    None => return Ok(FollowEnd::Closed),
                },
            };
            match message {
                Message::Heartbeat { durable } => {
                    let _ = events.send(FromPrimary::PrimaryDurable(durable)).await;
                }
                Message::Records { first, last, frames } => {
                    let mut batches = vec![(first, last, frames)];
                    let mut bytes = batches[0].2.len();
                    while bytes < GROUP_BYTES {
                        match incoming.try_recv() {
                            Ok(Ok(Some(Message::Records { first, last, frames }))) => {
                                bytes += frames.len();
                                batches.push((first, last, frames));
                            }
                            // Anything else comes after these records, in order.
                            Ok(other) => {
                                next = other?;
                                if next.is_none() {
                                    // The primary closed after these records: keep them.
                                    incoming.close();
                                }
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let s = sink.clone();
                    let durable = tokio::task::spawn_blocking(move || -> Result<Position, EngineError> {
                        for (first, last, frames) in batches {
                            s.receive(first, last, &frames)?;
                        }
                        s.flush()
                    })
                    .await
                    .map_err(|e| ShippingError::Protocol(format!("appending received records: {e}")))??;
                    // The primary's clients wait on the acknowledgement: it goes before
                    // this member's own bookkeeping, which may queue behind its driver.
                    if acks.send(Message::Ack { durable, sent_at: 0 }).await.is_err() {
                        return Ok(FollowEnd::Closed);
                    }
                    let _ = events.send(FromPrimary::Durable(durable)).await;
                }
                Message::Control(c) => {
                    let _ = events.send(FromPrimary::Control(c)).await;
                }
                other => {
                    return Err(ShippingError::Protocol(format!("unexpected message from the primary: {other:?}")))
                }
            }
        }
    }
    .await;
    writing.abort();
    result
}

/// Messages read ahead of the one being journaled.
const READ_AHEAD: usize = 64;
/// Most bytes of record frames journaled under one sync.
const GROUP_BYTES: usize = 8 << 20;

/// Appends the frames of one batch verbatim; returns the last position appended.
pub fn append_frames(
    journal: &Journal,
    first: Position,
    last: Position,
    frames: &[u8],
) -> Result<Position, EngineError> {
    for r in super::decode_batch(first, last, frames)? {
        journal.append_received(&r)?;
    }
    Ok(last)
}
