//! A member's side of the data channel: join, then append, sync and acknowledge.

use super::wire::{self, Message};
use super::{epoch_at, ShippingError};
use crate::journal::{record, Journal, Position};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

/// What a member knows of the primary while following it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrimaryView {
    pub epoch: u64,
    /// The primary's durable position, from WELCOME and heartbeats.
    pub durable: Position,
}

/// Joins the primary at the end of `journal` and follows it until the stream ends
/// (`Ok`) or fails. Every batch is appended verbatim, synced, then acknowledged;
/// `primary` receives the primary's durable position as it learns it.
pub async fn follow<S>(
    stream: S,
    journal: Arc<Journal>,
    mirror: &str,
    member: &str,
    primary: watch::Sender<PrimaryView>,
) -> Result<(), ShippingError>
where
    S: AsyncRead + AsyncWrite,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let j = journal.clone();
    let (last_position, last_epoch) = tokio::task::spawn_blocking(move || -> Result<_, crate::error::EngineError> {
        let last = j.flush()?;
        Ok((last, epoch_at(&j, last)?.unwrap_or(0)))
    })
    .await
    .map_err(|e| ShippingError::Protocol(format!("reading the journal: {e}")))??;
    let join = Message::Join { mirror: mirror.to_string(), member: member.to_string(), last_position, last_epoch };
    wire::write(&mut writer, &join).await?;
    match wire::read(&mut reader).await? {
        Some(Message::Welcome { epoch, durable }) => {
            primary.send_replace(PrimaryView { epoch, durable });
        }
        Some(Message::Reject { reason }) => return Err(ShippingError::Rejected(reason)),
        other => return Err(ShippingError::Protocol(format!("expected WELCOME or REJECT, got {other:?}"))),
    }
    loop {
        match wire::read(&mut reader).await? {
            None => return Ok(()),
            Some(Message::Heartbeat { durable }) => {
                primary.send_modify(|p| p.durable = p.durable.max(durable));
            }
            Some(Message::Records { first, last, frames }) => {
                let j = journal.clone();
                let durable = tokio::task::spawn_blocking(move || append_batch(&j, first, last, &frames))
                    .await
                    .map_err(|e| ShippingError::Protocol(format!("appending received records: {e}")))??;
                primary.send_modify(|p| p.durable = p.durable.max(durable));
                wire::write(&mut writer, &Message::Ack { durable }).await?;
            }
            Some(other) => {
                return Err(ShippingError::Protocol(format!("unexpected message from the primary: {other:?}")))
            }
        }
    }
}

/// Appends the frames of one batch verbatim and syncs; returns the durable position.
fn append_batch(journal: &Journal, first: Position, last: Position, frames: &[u8]) -> Result<Position, ShippingError> {
    let mut offset = 0;
    let mut expected = first;
    while offset < frames.len() {
        let (r, used) = record::decode(&frames[offset..])
            .map_err(|e| ShippingError::Protocol(format!("received record at position {expected}: {e}")))?;
        if r.position != expected {
            return Err(ShippingError::Protocol(format!(
                "received record {} where {expected} was announced",
                r.position
            )));
        }
        journal.append_received(&r)?;
        offset += used;
        expected += 1;
    }
    if expected != last + 1 {
        return Err(ShippingError::Protocol(format!("batch {first}..={last} held records up to {}", expected - 1)));
    }
    Ok(journal.flush()?)
}
