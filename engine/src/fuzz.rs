//! Support for the fuzz harnesses (`*/fuzz_tests.rs`): property tests that feed a parser
//! mutated corpus inputs and random bytes, on stable Rust, as ordinary `cargo test`s.
//!
//! Runs are reproducible: the random generator has a fixed seed per harness, so a failure
//! found once is found again by the same command. Longer or different runs:
//!
//! ```text
//! PROPTEST_CASES=100000 cargo test -p mirrorlab-engine --lib fuzz_tests   # more cases
//! PROPTEST_RNG_SEED=7 cargo test -p mirrorlab-engine --lib fuzz_tests     # another seed
//! ```
//!
//! A corpus file (`testdata/fuzz/<target>/*`) is text: line breaks are ignored, so long
//! inputs can be wrapped; `\r`, `\n`, `\t`, `\\`, `\xHH` and `\ ` (a space) are escapes;
//! a line starting with `#` is a comment. Add a file to add a seed input.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::path::Path;

/// The harness's configuration: `cases` and `seed` unless `PROPTEST_CASES` /
/// `PROPTEST_RNG_SEED` say otherwise; no failure files are written.
pub fn config(cases: u32, seed: u64) -> Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    Config {
        cases: env("PROPTEST_CASES").map(|c| c.min(u64::from(u32::MAX)) as u32).unwrap_or(cases),
        rng_seed: RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(seed)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Decodes one corpus file (format in the module comment).
pub fn decode_corpus(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && i + 1 < b.len() {
                let hex = |at: usize| {
                    b.get(at..at + 2)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                };
                match b[i + 1] {
                    b'r' => out.push(b'\r'),
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b' ' => out.push(b' '),
                    b'x' => match hex(i + 2) {
                        Some(v) => {
                            out.push(v);
                            i += 4;
                            continue;
                        }
                        None => panic!("corpus line {line:?}: \\x needs two hex digits"),
                    },
                    other => out.push(other),
                }
                i += 2;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Every file of `dir` (relative to the crate), decoded, in name order.
pub fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus {}: {e}", dir.display()))
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    files.iter().map(|f| decode_corpus(&std::fs::read_to_string(f).expect("a corpus file is text"))).collect()
}

/// Bytes that matter to length-prefixed and line-based formats.
const INTERESTING: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"-1",
    b"0",
    b"4294967295",
    b"18446744073709551615",
    b"99999999999999999999",
    b"\"",
    b"'",
    b"\\",
    b"*",
    b"$",
    b" ",
    b"\x00",
    b"\xff\xff\xff\xff",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\xc3",
];

/// One edit of an input.
#[derive(Clone, Debug)]
enum Edit {
    Set(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Remove(prop::sample::Index, usize),
    /// Copies a slice of the input elsewhere in it.
    Duplicate(prop::sample::Index, prop::sample::Index, usize),
    Truncate(prop::sample::Index),
    Interesting(prop::sample::Index, prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    use prop::sample::Index;
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Edit::Remove(i, n)),
        (any::<Index>(), any::<Index>(), 1usize..64).prop_map(|(a, b, n)| Edit::Duplicate(a, b, n)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(i, w)| Edit::Interesting(i, w)),
    ]
}

fn apply(mut v: Vec<u8>, edits: Vec<Edit>, max_len: usize) -> Vec<u8> {
    for e in edits {
        let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match e {
            Edit::Set(i, b) if !v.is_empty() => {
                let i = i.index(v.len());
                v[i] = b;
            }
            Edit::Set(..) => v.push(0),
            Edit::Insert(i, b) => v.insert(at(&i, v.len()), b),
            Edit::Remove(i, n) => {
                let i = at(&i, v.len());
                v.drain(i..(i + n).min(v.len()));
            }
            Edit::Duplicate(from, to, n) => {
                let from = at(&from, v.len());
                let chunk = v[from..(from + n).min(v.len())].to_vec();
                let to = at(&to, v.len());
                v.splice(to..to, chunk);
            }
            Edit::Truncate(i) => v.truncate(at(&i, v.len())),
            Edit::Interesting(i, w) => {
                let at = at(&i, v.len());
                v.splice(at..at, INTERESTING[w.index(INTERESTING.len())].iter().copied());
            }
        }
        v.truncate(max_len);
    }
    v
}

/// A corpus input with up to 8 edits, at most `max_len` bytes; or, one case in eight, up
/// to `max_len` random bytes.
pub fn mutated(corpus: Vec<Vec<u8>>, max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        7 => (prop::sample::select(corpus), prop::collection::vec(edit(), 0..8))
            .prop_map(move |(base, edits)| apply(base, edits, max_len)),
        1 => prop::collection::vec(any::<u8>(), 0..max_len.min(512)),
    ]
}

#[test]
fn corpus_files_decode_their_escapes() {
    assert_eq!(
        decode_corpus("# a comment\n*1\\r\\n$4\\r\\n\nPING\\r\\n\\x00\\\\\\ x"),
        b"*1\r\n$4\r\nPING\r\n\x00\\ x"
    );
}
