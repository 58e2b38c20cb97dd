//! Fuzz harness of the mirror data channel's wire format (`wire::read`, `wire::decode`)
//! and of the record frames a member reads from `Records` (`epoch_changes`): mutated corpus
//! messages (`testdata/fuzz/`, one encoded stream per file) and random bytes. How to run
//! longer: see `crate::fuzz`.
//!
//! Properties: never panics; a decoded message re-encodes to as many bytes as it was read
//! from and decodes to itself; nothing decoded exceeds the wire's limits; truncated,
//! extended or unknown messages are errors; `decode(encode(m)) == m` for every message the
//! encoder can carry whole.

use super::wire::{self, decode, encode, summary_of, Message, MAX_MESSAGE_BYTES, MAX_SUMMARY_EPOCHS};
use super::{epoch_changes, ShippingError};
use crate::fuzz::{config, corpus, mutated};
use crate::mirror::failover::Message as Control;
use proptest::prelude::*;

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    mutated(corpus("src/mirror/shipping/testdata/fuzz"), 1024)
}

/// Reads messages from `stream` until its end or an error, as a member or the primary does.
fn read_all(stream: &[u8]) -> Result<Vec<Message>, ShippingError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    rt.block_on(async {
        let mut r = stream;
        let mut out = vec![];
        while let Some(m) = wire::read(&mut r).await? {
            out.push(m);
        }
        Ok(out)
    })
}

/// The limits every decoded message keeps.
fn check_limits(m: &Message, payload_len: usize) {
    match m {
        Message::Join { mirror, member, member_type, summary, .. } => {
            assert!([mirror, member, member_type].iter().all(|s| s.len() <= usize::from(u16::MAX)));
            assert!(summary.len() <= MAX_SUMMARY_EPOCHS);
            assert!(summary.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "summary increases");
        }
        Message::Reject { reason } => assert!(reason.len() <= usize::from(u16::MAX)),
        Message::Records { first, last, frames } => {
            assert!(first <= last);
            assert!(frames.len() <= payload_len);
        }
        Message::Control(Control::Journal { journal, .. }) => {
            assert!(journal.segments().len() <= MAX_SUMMARY_EPOCHS)
        }
        _ => {}
    }
}

fn reencodes(kind: u8, payload: &[u8]) {
    if let Ok(m) = decode(kind, payload) {
        check_limits(&m, payload.len());
        let again = encode(&m);
        assert_eq!(again.len(), payload.len() + 5, "{m:?} re-encodes to another length");
        assert_eq!(decode(again[4], &again[5..]).expect("a re-encoded message decodes"), m);
    }
}

/// `unit` repeated to at most `len` bytes.
fn long_string(unit: char, len: usize) -> String {
    unit.to_string().repeat(len / unit.len_utf8())
}

proptest! {
    #![proptest_config(config(2000, 0x7769_7265))]

    #[test]
    fn mutated_streams_never_panic_and_decode_within_the_limits(stream in inputs()) {
        if let Ok(messages) = read_all(&stream) {
            for m in &messages {
                check_limits(m, stream.len());
            }
        }
        // The same bytes as one message body, whatever the kind byte says.
        if let Some((&kind, payload)) = stream.split_first() {
            reencodes(kind, payload);
        }
        let _ = epoch_changes(&stream, 0);
    }

    #[test]
    fn any_payload_of_any_kind_is_a_message_or_an_error(kind in 0u8..12, payload in prop::collection::vec(any::<u8>(), 0..256)) {
        reencodes(kind, &payload);
    }

    #[test]
    fn cut_or_extended_messages_are_errors(stream in inputs(), extra in any::<u8>(), cut in any::<prop::sample::Index>()) {
        if let Some((&kind, payload)) = stream.split_first() {
            // Records takes the rest of the payload as frames: only its fixed part counts.
            if kind != 4 && decode(kind, payload).is_ok() {
                let mut longer = payload.to_vec();
                longer.push(extra);
                prop_assert!(decode(kind, &longer).is_err());
                if !payload.is_empty() {
                    prop_assert!(decode(kind, &payload[..cut.index(payload.len())]).is_err());
                }
            }
        }
    }
}

/// Every width of character, cut at each offset around the `u16` limit (all 32 cases, so
/// no sampling).
#[test]
fn long_names_and_reasons_round_trip_cut_at_a_character() {
    for unit in ['a', 'é', '€', '𝄞'] {
        for extra in 0..8 {
            let reason = long_string(unit, usize::from(u16::MAX) + extra);
            let bytes = encode(&Message::Reject { reason: reason.clone() });
            let Ok(Message::Reject { reason: got }) = decode(bytes[4], &bytes[5..]) else {
                panic!("a reason of {} bytes of {unit:?} does not decode", reason.len())
            };
            assert!(got.len() <= usize::from(u16::MAX) && usize::from(u16::MAX) - got.len() < unit.len_utf8());
            assert!(reason.starts_with(&got));
        }
    }
}

/// Regression: a string longer than a `u16` length was cut inside a multi-byte character,
/// so the peer got "a name is not UTF-8" instead of the rejection's reason.
#[test]
fn reject_reason_cut_inside_a_character_is_not_utf8() {
    let reason = "é".repeat(usize::from(u16::MAX) / 2 + 1);
    assert_eq!(reason.len(), usize::from(u16::MAX) + 1, "the cut falls inside the last é");
    let bytes = encode(&Message::Reject { reason: reason.clone() });
    let Ok(Message::Reject { reason: got }) = decode(bytes[4], &bytes[5..]) else {
        panic!("the reason does not decode")
    };
    assert_eq!(got, reason[..reason.len() - 2]);
}

#[test]
fn a_length_over_the_limit_is_refused_before_the_body_is_read() {
    for len in [0, MAX_MESSAGE_BYTES + 1, u32::MAX] {
        let mut stream = len.to_le_bytes().to_vec();
        stream.extend([1, 2, 3]);
        assert!(matches!(read_all(&stream), Err(ShippingError::Protocol(_))), "length {len}");
    }
}

#[test]
fn a_summary_longer_than_the_wire_allows_keeps_its_newest_epochs() {
    let segments: Vec<(u64, u64)> = (1..=MAX_SUMMARY_EPOCHS as u64 + 10).map(|e| (e, e * 10)).collect();
    let m = Message::Control(Control::Journal {
        epoch: 1,
        journal: summary_of(&segments),
        acked: 0,
        active: true,
        sent_at: 0,
    });
    let bytes = encode(&m);
    let Message::Control(Control::Journal { journal, .. }) = decode(bytes[4], &bytes[5..]).unwrap() else {
        panic!("not a journal message")
    };
    assert_eq!(journal.segments(), &segments[10..]);
}

#[test]
fn every_corpus_stream_reads_whole() {
    for stream in corpus("src/mirror/shipping/testdata/fuzz") {
        let messages = read_all(&stream).unwrap_or_else(|e| panic!("a corpus stream does not read: {e}"));
        let again: Vec<u8> = messages.iter().flat_map(encode).collect();
        assert_eq!(again, stream, "a corpus stream re-encodes to itself");
    }
}

/// Writes the corpus from sample messages (run once by hand with `--ignored` after a
/// format change, then review the files).
#[test]
#[ignore]
fn write_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mirror/shipping/testdata/fuzz");
    let escape = |b: &[u8]| b.iter().map(|b| format!("\\x{b:02x}")).collect::<String>();
    let sets: Vec<(&str, &str, Vec<Message>)> = vec![
        (
            "join",
            "a member joins: names, its journal end, a summary of two epochs",
            vec![Message::Join {
                mirror: "DEMO".into(),
                member: "MIRRORB".into(),
                member_type: "failover".into(),
                last_position: 1200,
                last_epoch: 2,
                summary: vec![(1, 800), (2, 1200)],
            }],
        ),
        (
            "welcome-records-ack",
            "the primary accepts, ships two records, the member acknowledges",
            vec![
                Message::Welcome { epoch: 2, durable: 1300 },
                Message::Records {
                    first: 1201,
                    last: 1202,
                    frames: vec![0x4d, 0x4c, 0x01, 0x00, 0x10, 0x20, 0x30, 0x40],
                },
                Message::Ack { durable: 1202, sent_at: 99 },
                Message::Heartbeat { durable: 1300 },
            ],
        ),
        (
            "reject-rewind",
            "a refusal with a reason, a rewind",
            vec![
                Message::Reject { reason: "member MIRRORC is ahead of the primary: rebuild it from a copy".into() },
                Message::Rewind { to: 1100 },
            ],
        ),
        (
            "control",
            "the failover state machine's messages",
            vec![
                Message::Control(Control::Journal {
                    epoch: 3,
                    journal: summary_of(&[(1, 5), (3, 9)]),
                    acked: 9,
                    active: true,
                    sent_at: 7,
                }),
                Message::Control(Control::JournalAck { epoch: 3, end: 9, sent_at: 7 }),
                Message::Control(Control::NewerEpoch { epoch: 4 }),
                Message::Control(Control::Handover { epoch: 4, end: 9 }),
            ],
        ),
    ];
    for (name, what, messages) in sets {
        let mut text = format!("# {what}\n");
        for m in &messages {
            text.push_str(&escape(&encode(m)));
            text.push('\n');
        }
        std::fs::write(dir.join(format!("{name}.txt")), text).unwrap();
    }
}
