//! Fuzz harness of the RESP request codec (`codec::parse`): mutated corpus inputs
//! (`testdata/fuzz/`) and random bytes, under the default limits and under small ones so
//! the limit checks are reached. How to run longer: see `crate::fuzz`.
//!
//! Properties: parsing never panics; a parsed frame and the input a connection must hold
//! stay within the documented limits; `parse(encode(frame))` gives the frame back, as
//! multibulk and as inline words; input that is not RESP is an error, never a frame.

use super::codec::{parse, CodecLimits, Frame, ProtocolError};
use crate::fuzz::{config, corpus, mutated};
use proptest::prelude::*;

/// The longest `*N` / `$len` header line with its CRLF (codec.rs, MAX_HEADER_LEN + 2).
const HEADER_LINE: usize = 23;

const SMALL: CodecLimits = CodecLimits { max_args: 4, max_bulk_len: 16, max_inline_len: 32, max_request_len: 48 };

fn inputs() -> impl Strategy<Value = Vec<u8>> {
    mutated(corpus("src/resp/testdata/fuzz"), 512)
}

/// One frame's arguments.
type Args = Vec<Vec<u8>>;

/// Parses frame after frame, checking each against the limits; returns the frames and
/// the unparsed rest, or the error.
fn parse_checked(buf: &[u8], limits: &CodecLimits) -> Result<(Vec<Args>, usize), ProtocolError> {
    let mut frame = Frame::default();
    let mut pos = 0;
    let mut frames = vec![];
    let most_consumed = limits.max_request_len.max(limits.max_inline_len + 2);
    loop {
        match parse(&buf[pos..], limits, &mut frame)? {
            Some(n) => {
                assert!(n > 0 && pos + n <= buf.len(), "frame of {n} bytes at {pos} of {}", buf.len());
                assert!(n <= most_consumed, "a frame of {n} bytes passed the limits {limits:?}");
                assert!(frame.len() <= limits.max_args, "{} arguments passed the limit", frame.len());
                for a in frame.args() {
                    assert!(a.len() <= limits.max_bulk_len.max(limits.max_inline_len), "argument of {} bytes", a.len());
                }
                pos += n;
                frames.push(frame.args().map(<[u8]>::to_vec).collect());
            }
            None => {
                // What a connection keeps buffered while it waits for the rest.
                let held = buf.len() - pos;
                let bound = (limits.max_request_len + HEADER_LINE).max(limits.max_inline_len + 2);
                assert!(held < bound, "{held} bytes held waiting for more (bound {bound}, limits {limits:?})");
                return Ok((frames, pos));
            }
        }
    }
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).bytes());
        out.extend(a);
        out.extend(b"\r\n");
    }
    out
}

/// One argument as an inline double-quoted word, every byte that needs it escaped.
fn quoted(arg: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in arg {
        match b {
            b'"' | b'\\' => out.extend([b'\\', b]),
            0x20..=0x7e => out.push(b),
            _ => out.extend(format!("\\x{b:02x}").bytes()),
        }
    }
    out.push(b'"');
    out
}

proptest! {
    #![proptest_config(config(2000, 0x7265_7370))]

    #[test]
    fn mutated_inputs_never_panic_and_stay_within_the_limits(input in inputs()) {
        let _ = parse_checked(&input, &CodecLimits::default());
        let _ = parse_checked(&input, &SMALL);
    }

    #[test]
    fn multibulk_frames_round_trip(frames in prop::collection::vec(
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 1..6), 1..4)
    ) {
        let input: Vec<u8> = frames.iter().flat_map(|f| multibulk(f)).collect();
        let (got, used) = parse_checked(&input, &CodecLimits::default()).unwrap();
        prop_assert_eq!(used, input.len());
        prop_assert_eq!(got, frames);
    }

    #[test]
    fn quoted_inline_words_round_trip(args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..24), 1..6)) {
        let mut line = args.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(&b' ');
        line.extend(b"\r\n");
        let (got, used) = parse_checked(&line, &CodecLimits::default()).unwrap();
        prop_assert_eq!(used, line.len());
        prop_assert_eq!(got, vec![args]);
    }

    #[test]
    fn a_header_that_is_not_resp_is_an_error(
        args in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 1..4),
        junk in prop::collection::vec(any::<u8>().prop_filter("not a bulk header", |b| *b != b'$'), 1..8),
    ) {
        // A whole frame, then a multibulk whose first argument header is garbage.
        let mut input = multibulk(&args);
        input.extend(format!("*{}\r\n", args.len()).bytes());
        input.extend(&junk);
        input.extend(b"\r\n");
        prop_assert!(parse_checked(&input, &CodecLimits::default()).is_err());
    }
}

#[test]
fn every_corpus_input_parses_within_the_limits() {
    for input in corpus("src/resp/testdata/fuzz") {
        let _ = parse_checked(&input, &CodecLimits::default());
        let _ = parse_checked(&input, &SMALL);
    }
}
