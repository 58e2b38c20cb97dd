//! Fuzz harness of the agent's request parsing: bytes through the RESP codec under the
//! agent's limits (`protocol::LIMITS`), then `protocol::parse`. Mutated corpus inputs
//! (`testdata/fuzz/`) and random bytes. How to run longer: see `crate::fuzz`.
//!
//! Properties: never panics; a request stays within the agent's limits; every refusal is
//! one bounded error line with a known prefix; `parse(args(request)) == request` for every
//! request; a frame whose command the agent does not know is refused.

use super::journal_ranges::MAX_RANGE_RECORDS;
use super::protocol::{parse, ArbiterAsk, Request, LIMITS};
use crate::fuzz::{config, corpus, mutated};
use crate::mirror::failover::{ArbiterRequest, MemberId, MAX_MEMBERS};
use crate::resp::codec::{self, Frame};
use crate::resp::reply::{Protocol, ReplyWriter};
use proptest::prelude::*;

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    mutated(corpus("src/agent/testdata/fuzz"), 1024)
}

/// Longest error line: an argument (at most a bulk) quoted back, each byte at most three
/// once made valid UTF-8, plus the sentence around it.
const MAX_ERROR_LINE: usize = 3 * LIMITS.max_bulk_len + 256;

/// Parses every frame of `input` as the agent's server does; checks each result.
fn serve(input: &[u8]) {
    let mut frame = Frame::default();
    let mut pos = 0;
    while let Ok(Some(n)) = codec::parse(&input[pos..], &LIMITS, &mut frame) {
        pos += n;
        if frame.is_empty() {
            continue;
        }
        assert!(frame.len() <= LIMITS.max_args);
        match parse(&frame) {
            Ok(request) => check_request(&request),
            Err(line) => check_error(&line),
        }
    }
}

fn check_request(r: &Request) {
    let text_ok = |s: &str| s.len() <= LIMITS.max_bulk_len;
    match r {
        Request::JournalRange { max_records, .. } => assert!((1..=MAX_RANGE_RECORDS).contains(max_records)),
        Request::FaultDrop(peers) => {
            assert!(!peers.is_empty() && peers.len() <= LIMITS.max_args - 2 && peers.iter().all(|p| text_ok(p)))
        }
        Request::ArbiterAsk(ask) => {
            assert!(ask.member < MAX_MEMBERS && ask.failover_members.len() <= 2 && text_ok(&ask.mirror))
        }
        Request::AgentFence { reason } => assert!(text_ok(reason)),
        _ => {}
    }
}

/// A refusal is sent as one RESP error line.
fn check_error(line: &str) {
    assert!(
        ["ERR ", "NOPROTO ", "SYNTAX "].iter().any(|p| line.starts_with(p)),
        "an error line without a known prefix: {line:?}"
    );
    assert!(line.len() <= MAX_ERROR_LINE, "an error line of {} bytes", line.len());
    let mut out = Vec::new();
    ReplyWriter { out: &mut out, proto: Protocol::Resp2 }.error(line);
    assert!(out.ends_with(b"\r\n"));
    assert!(!out[..out.len() - 2].iter().any(|&b| b == b'\r' || b == b'\n'), "a refusal spans lines: {line:?}");
}

/// The arguments a client sends for `r`.
fn args(r: &Request) -> Vec<Vec<u8>> {
    let s = |v: &[&str]| v.iter().map(|a| a.as_bytes().to_vec()).collect::<Vec<_>>();
    match r {
        Request::Ping(None) => s(&["PING"]),
        Request::Ping(Some(m)) => vec![b"PING".to_vec(), m.clone()],
        Request::Hello(None) => s(&["HELLO"]),
        Request::Hello(Some(v)) => vec![b"HELLO".to_vec(), v.to_string().into_bytes()],
        Request::Quit => s(&["QUIT"]),
        Request::ClientSetName(n) => s(&["CLIENT", "SETNAME", n]),
        Request::ClientGetName => s(&["CLIENT", "GETNAME"]),
        Request::AgentVersion => s(&["AGENT", "VERSION"]),
        Request::AgentStatus => s(&["AGENT", "STATUS"]),
        Request::AgentFence { reason } => s(&["AGENT", "FENCE", reason]),
        Request::JournalRange { from, max_records } => {
            s(&["JOURNAL", "RANGE", &from.to_string(), &max_records.to_string()])
        }
        Request::ArbiterHello { mirror, member } => s(&["ARBITER", "HELLO", mirror, member]),
        Request::ArbiterPing { mirror, member } => s(&["ARBITER", "PING", mirror, member]),
        Request::ArbiterSees { mirror, member } => s(&["ARBITER", "SEES", mirror, member]),
        Request::ArbiterStatus => s(&["ARBITER", "STATUS"]),
        Request::ArbiterAsk(a) => {
            let members = a.failover_members.iter().map(u8::to_string).collect::<Vec<_>>().join(",");
            let mut v = vec![
                "ARBITER".to_string(),
                "ASK".to_string(),
                a.mirror.clone(),
                a.member.to_string(),
                members,
                a.qos_ms.to_string(),
            ];
            match a.request {
                ArbiterRequest::Ping { epoch, primary, eligible, mode_seq } => v.extend([
                    "PING".to_string(),
                    epoch.to_string(),
                    u8::from(primary).to_string(),
                    eligible.map_or("-".to_string(), |m| m.0.to_string()),
                    mode_seq.to_string(),
                ]),
                ArbiterRequest::Takeover { epoch } => v.extend(["TAKEOVER".to_string(), epoch.to_string()]),
            }
            v.into_iter().map(String::into_bytes).collect()
        }
        Request::FaultDrop(peers) => [b"FAULT".to_vec(), b"DROP".to_vec()]
            .into_iter()
            .chain(peers.iter().map(|p| p.as_bytes().to_vec()))
            .collect(),
        Request::FaultHeal => s(&["FAULT", "HEAL"]),
        Request::FaultList => s(&["FAULT", "LIST"]),
    }
}

fn request() -> impl Strategy<Value = Request> {
    let text = || "\\PC{0,24}";
    let ask = (
        text(),
        0..MAX_MEMBERS,
        prop::collection::vec(0..MAX_MEMBERS, 1..=2),
        any::<u64>(),
        prop_oneof![
            (any::<u64>(), any::<bool>(), prop::option::of(0..MAX_MEMBERS), any::<u64>()).prop_map(
                |(epoch, primary, eligible, mode_seq)| ArbiterRequest::Ping {
                    epoch,
                    primary,
                    eligible: eligible.map(MemberId),
                    mode_seq
                }
            ),
            any::<u64>().prop_map(|epoch| ArbiterRequest::Takeover { epoch }),
        ],
    )
        .prop_map(|(mirror, member, failover_members, qos_ms, request)| {
            Request::ArbiterAsk(ArbiterAsk { mirror, member, failover_members, qos_ms, request })
        });
    prop_oneof![
        Just(Request::Ping(None)),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(|m| Request::Ping(Some(m))),
        Just(Request::Hello(None)),
        Just(Request::Hello(Some(2))),
        Just(Request::Quit),
        text().prop_map(Request::ClientSetName),
        Just(Request::ClientGetName),
        Just(Request::AgentVersion),
        Just(Request::AgentStatus),
        text().prop_map(|reason| Request::AgentFence { reason }),
        (any::<u64>(), 1..=MAX_RANGE_RECORDS)
            .prop_map(|(from, max_records)| Request::JournalRange { from, max_records }),
        (text(), text()).prop_map(|(mirror, member)| Request::ArbiterHello { mirror, member }),
        (text(), text()).prop_map(|(mirror, member)| Request::ArbiterPing { mirror, member }),
        (text(), text()).prop_map(|(mirror, member)| Request::ArbiterSees { mirror, member }),
        Just(Request::ArbiterStatus),
        ask,
        prop::collection::vec(text(), 1..8).prop_map(Request::FaultDrop),
        Just(Request::FaultHeal),
        Just(Request::FaultList),
    ]
}

proptest! {
    #![proptest_config(config(2000, 0x6167_656e))]

    #[test]
    fn mutated_requests_never_panic_and_refusals_are_one_line(input in inputs()) {
        serve(&input);
    }

    #[test]
    fn every_request_round_trips_through_the_wire(r in request()) {
        let args = args(&r);
        let mut wire = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            wire.extend(format!("${}\r\n", a.len()).bytes());
            wire.extend(a);
            wire.extend(b"\r\n");
        }
        let mut frame = Frame::default();
        prop_assert_eq!(codec::parse(&wire, &LIMITS, &mut frame), Ok(Some(wire.len())));
        prop_assert_eq!(parse(&frame), Ok(r));
    }

    #[test]
    fn unknown_commands_are_refused(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 1..6)) {
        let known = ["PING", "HELLO", "QUIT", "CLIENT", "AGENT", "JOURNAL", "ARBITER", "FAULT"];
        prop_assume!(!known.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(&args[0])));
        let line = parse(&Frame::from_args(&args)).unwrap_err();
        check_error(&line);
        prop_assert!(line.starts_with("ERR unknown command"));
    }
}

#[test]
fn every_corpus_input_is_a_request() {
    for input in corpus("src/agent/testdata/fuzz") {
        let mut frame = Frame::default();
        let mut pos = 0;
        while let Some(n) = codec::parse(&input[pos..], &LIMITS, &mut frame).expect("the corpus is valid RESP") {
            pos += n;
            let request = parse(&frame).unwrap_or_else(|e| panic!("a corpus request is refused: {e}"));
            check_request(&request);
        }
        assert_eq!(pos, input.len());
    }
}
