//! The mirror data channel's messages: `u32` little-endian length, `u8` kind, payload.
//! Integers are fixed-width little-endian; strings are `u16` length + UTF-8. Every message
//! is bounded by [`MAX_MESSAGE_BYTES`], checked before anything is allocated.

use super::ShippingError;
use crate::mirror::failover::{JournalSummary, Message as Control};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest message: a batch of records is cut well below it.
pub const MAX_MESSAGE_BYTES: u32 = 32 << 20;
/// Records per message are cut at about this many bytes.
pub const BATCH_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Member → primary, first message: who it is and where its mirror journal ends
    /// (`last_epoch`: the epoch of its record at `last_position`, 0 when empty), with its
    /// journal summarised by epoch (`(epoch, last position in it)`, increasing) so the
    /// primary can tell where the two journals part ways.
    Join {
        mirror: String,
        member: String,
        /// The member's current type (`failover`, `dr`, `reporting-ro`, `reporting-rw`):
        /// the primary learns promotions and demotions from it.
        member_type: String,
        last_position: u64,
        last_epoch: u64,
        summary: Vec<(u64, u64)>,
    },
    /// Primary → member: accepted; the primary's epoch and durable position.
    Welcome { epoch: u64, durable: u64 },
    /// Primary → member: refused, and why (the member must act, e.g. rebuild from a copy).
    Reject { reason: String },
    /// Primary → member: consecutive journal frames for positions `first..=last`.
    Records { first: u64, last: u64, frames: Vec<u8> },
    /// Member → primary: everything up to `durable` is in the member's journal, synced;
    /// `sent_at` echoes the newest control message of the primary the member had read
    /// (the primary's acknowledgement lease runs from there).
    Ack { durable: u64, sent_at: u64 },
    /// Primary → member, when idle: the primary's durable position.
    Heartbeat { durable: u64 },
    /// Primary → member: your journal holds records after `to` that the primary does not
    /// have; undo them (old values are in the records) and join again.
    Rewind { to: u64 },
    /// Either way: a message of the failover state machine.
    Control(Control),
}

/// Most epochs a journal summary on the wire may hold.
pub const MAX_SUMMARY_EPOCHS: usize = crate::mirror::failover::types::MAX_SUMMARY_SEGMENTS;

const JOIN: u8 = 1;
const WELCOME: u8 = 2;
const REJECT: u8 = 3;
const RECORDS: u8 = 4;
const ACK: u8 = 5;
const HEARTBEAT: u8 = 6;
const REWIND: u8 = 7;
const CONTROL: u8 = 8;

const CONTROL_JOURNAL: u8 = 1;
const CONTROL_JOURNAL_ACK: u8 = 2;
const CONTROL_NEWER_EPOCH: u8 = 3;
const CONTROL_HANDOVER: u8 = 4;

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_summary(out: &mut Vec<u8>, segments: &[(u64, u64)]) {
    let n = segments.len().min(MAX_SUMMARY_EPOCHS);
    out.extend_from_slice(&(n as u32).to_le_bytes());
    for (epoch, last) in &segments[segments.len() - n..] {
        put_u64(out, *epoch);
        put_u64(out, *last);
    }
}

fn put_control(out: &mut Vec<u8>, c: &Control) {
    match c {
        Control::Journal { epoch, journal, acked, active, sent_at } => {
            out.push(CONTROL_JOURNAL);
            put_u64(out, *epoch);
            put_u64(out, *acked);
            out.push(u8::from(*active));
            put_u64(out, *sent_at);
            put_summary(out, journal.segments());
        }
        Control::JournalAck { epoch, end, sent_at } => {
            out.push(CONTROL_JOURNAL_ACK);
            put_u64(out, *epoch);
            put_u64(out, *end);
            put_u64(out, *sent_at);
        }
        Control::NewerEpoch { epoch } => {
            out.push(CONTROL_NEWER_EPOCH);
            put_u64(out, *epoch);
        }
        Control::Handover { epoch, end } => {
            out.push(CONTROL_HANDOVER);
            put_u64(out, *epoch);
            put_u64(out, *end);
        }
    }
}

/// At most `u16::MAX` bytes of `s`, cut at a character boundary so the cut string is
/// still UTF-8 (a reason cut inside a character would reach the peer as a protocol error).
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    let bytes = &s.as_bytes()[..n];
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.extend_from_slice(bytes);
}

pub fn encode(m: &Message) -> Vec<u8> {
    let mut out = vec![0; 4];
    match m {
        Message::Join { mirror, member, member_type, last_position, last_epoch, summary } => {
            out.push(JOIN);
            put_str(&mut out, mirror);
            put_str(&mut out, member);
            put_str(&mut out, member_type);
            out.extend_from_slice(&last_position.to_le_bytes());
            out.extend_from_slice(&last_epoch.to_le_bytes());
            put_summary(&mut out, summary);
        }
        Message::Welcome { epoch, durable } => {
            out.push(WELCOME);
            out.extend_from_slice(&epoch.to_le_bytes());
            out.extend_from_slice(&durable.to_le_bytes());
        }
        Message::Reject { reason } => {
            out.push(REJECT);
            put_str(&mut out, reason);
        }
        Message::Records { first, last, frames } => {
            out.push(RECORDS);
            out.extend_from_slice(&first.to_le_bytes());
            out.extend_from_slice(&last.to_le_bytes());
            out.extend_from_slice(frames);
        }
        Message::Ack { durable, sent_at } => {
            out.push(ACK);
            put_u64(&mut out, *durable);
            put_u64(&mut out, *sent_at);
        }
        Message::Heartbeat { durable } => {
            out.push(HEARTBEAT);
            out.extend_from_slice(&durable.to_le_bytes());
        }
        Message::Rewind { to } => {
            out.push(REWIND);
            put_u64(&mut out, *to);
        }
        Message::Control(c) => {
            out.push(CONTROL);
            put_control(&mut out, c);
        }
    }
    let len = (out.len() - 4) as u32;
    assert!(len <= MAX_MESSAGE_BYTES, "mirror message of {len} bytes: batches must be cut smaller");
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ShippingError> {
        if self.0.len() < n {
            return Err(ShippingError::Protocol("message shorter than its fields".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u64(&mut self) -> Result<u64, ShippingError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn u8(&mut self) -> Result<u8, ShippingError> {
        Ok(self.take(1)?[0])
    }
    fn summary(&mut self) -> Result<Vec<(u64, u64)>, ShippingError> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")) as usize;
        if n > MAX_SUMMARY_EPOCHS {
            return Err(ShippingError::Protocol(format!(
                "a journal summary of {n} epochs (at most {MAX_SUMMARY_EPOCHS})"
            )));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push((self.u64()?, self.u64()?));
        }
        JournalSummary::checked(&out).map_err(ShippingError::Protocol)?;
        Ok(out)
    }
    fn control(&mut self) -> Result<Control, ShippingError> {
        Ok(match self.u8()? {
            CONTROL_JOURNAL => {
                let (epoch, acked, active, sent_at) = (self.u64()?, self.u64()?, self.u8()? != 0, self.u64()?);
                Control::Journal { epoch, journal: summary_of(&self.summary()?), acked, active, sent_at }
            }
            CONTROL_JOURNAL_ACK => Control::JournalAck { epoch: self.u64()?, end: self.u64()?, sent_at: self.u64()? },
            CONTROL_NEWER_EPOCH => Control::NewerEpoch { epoch: self.u64()? },
            CONTROL_HANDOVER => Control::Handover { epoch: self.u64()?, end: self.u64()? },
            other => return Err(ShippingError::Protocol(format!("unknown control message kind {other}"))),
        })
    }
    fn string(&mut self) -> Result<String, ShippingError> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| ShippingError::Protocol("a name is not UTF-8".into()))
    }
    fn done(&self) -> Result<(), ShippingError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ShippingError::Protocol(format!("{} unexpected bytes at the end of a message", self.0.len())))
        }
    }
}

pub fn decode(kind: u8, payload: &[u8]) -> Result<Message, ShippingError> {
    let mut c = Cursor(payload);
    let m = match kind {
        JOIN => Message::Join {
            mirror: c.string()?,
            member: c.string()?,
            member_type: c.string()?,
            last_position: c.u64()?,
            last_epoch: c.u64()?,
            summary: c.summary()?,
        },
        WELCOME => Message::Welcome { epoch: c.u64()?, durable: c.u64()? },
        REJECT => Message::Reject { reason: c.string()? },
        RECORDS => {
            let first = c.u64()?;
            let last = c.u64()?;
            let frames = std::mem::take(&mut c.0).to_vec();
            if last < first {
                return Err(ShippingError::Protocol(format!("records {first}..={last} is an empty range")));
            }
            Message::Records { first, last, frames }
        }
        ACK => Message::Ack { durable: c.u64()?, sent_at: c.u64()? },
        HEARTBEAT => Message::Heartbeat { durable: c.u64()? },
        REWIND => Message::Rewind { to: c.u64()? },
        CONTROL => Message::Control(c.control()?),
        other => return Err(ShippingError::Protocol(format!("unknown message kind {other}"))),
    };
    c.done()?;
    Ok(m)
}

/// A summary from its `(epoch, last position)` pairs (already checked to increase).
pub fn summary_of(segments: &[(u64, u64)]) -> JournalSummary {
    JournalSummary::from_segments(segments)
}

/// Reads one message; `None` at a clean end of stream between messages.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Message>, ShippingError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_le_bytes(len);
    if len == 0 || len > MAX_MESSAGE_BYTES {
        return Err(ShippingError::Protocol(format!("message length {len} outside 1..={MAX_MESSAGE_BYTES}")));
    }
    let mut body = vec![0; len as usize];
    r.read_exact(&mut body).await?;
    decode(body[0], &body[1..]).map(Some)
}

pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, m: &Message) -> Result<(), ShippingError> {
    w.write_all(&encode(m)).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            ("[A-Z]{1,15}", "[A-Z0-9-]{1,32}", "[a-z-]{2,12}", any::<u64>(), any::<u64>(), summary()).prop_map(
                |(mirror, member, member_type, last_position, last_epoch, summary)| {
                    Message::Join { mirror, member, member_type, last_position, last_epoch, summary }
                }
            ),
            (any::<u64>(), any::<u64>()).prop_map(|(epoch, durable)| Message::Welcome { epoch, durable }),
            ".{0,80}".prop_map(|reason| Message::Reject { reason }),
            (0u64..1000, 0u64..1000, prop::collection::vec(any::<u8>(), 0..64))
                .prop_map(|(first, n, frames)| Message::Records { first, last: first + n, frames }),
            (any::<u64>(), any::<u64>()).prop_map(|(durable, sent_at)| Message::Ack { durable, sent_at }),
            any::<u64>().prop_map(|durable| Message::Heartbeat { durable }),
            any::<u64>().prop_map(|to| Message::Rewind { to }),
            (any::<u64>(), summary(), any::<u64>(), any::<bool>(), any::<u64>()).prop_map(
                |(epoch, s, acked, active, sent_at)| {
                    Message::Control(Control::Journal { epoch, journal: summary_of(&s), acked, active, sent_at })
                }
            ),
            (any::<u64>(), any::<u64>(), any::<u64>())
                .prop_map(|(epoch, end, sent_at)| Message::Control(Control::JournalAck { epoch, end, sent_at })),
            any::<u64>().prop_map(|epoch| Message::Control(Control::NewerEpoch { epoch })),
            (any::<u64>(), any::<u64>()).prop_map(|(epoch, end)| Message::Control(Control::Handover { epoch, end })),
        ]
    }

    /// Increasing `(epoch, last position)` pairs.
    fn summary() -> impl Strategy<Value = Vec<(u64, u64)>> {
        prop::collection::vec((1u64..100, 1u64..100), 0..6).prop_map(|steps| {
            let (mut e, mut p) = (0, 0);
            steps
                .into_iter()
                .map(|(de, dp)| {
                    e += de;
                    p += dp;
                    (e, p)
                })
                .collect()
        })
    }

    proptest! {
        // Seeded, so a run is reproducible (PROPTEST_CASES / PROPTEST_RNG_SEED vary it).
        #![proptest_config(crate::fuzz::config(256, 0x57495245))]
        #[test]
        fn messages_round_trip(m in message()) {
            let bytes = encode(&m);
            prop_assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
            prop_assert_eq!(decode(bytes[4], &bytes[5..]).unwrap(), m);
        }

        #[test]
        fn garbage_never_panics(kind in any::<u8>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(kind, &payload);
        }
    }

    #[tokio::test]
    async fn oversized_and_truncated_messages_are_errors() {
        let mut huge: &[u8] = &(MAX_MESSAGE_BYTES + 1).to_le_bytes();
        assert!(matches!(read(&mut huge).await, Err(ShippingError::Protocol(_))));
        let whole = encode(&Message::Ack { durable: 7, sent_at: 1 });
        let mut cut: &[u8] = &whole[..whole.len() - 1];
        assert!(read(&mut cut).await.is_err());
        let mut empty: &[u8] = &[];
        assert_eq!(read(&mut empty).await.unwrap(), None);
    }
}
