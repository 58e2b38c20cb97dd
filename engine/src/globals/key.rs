//! Order-preserving binary encoding of global references.
//!
//! Invariant: for any two references `a`, `b`, `encode(a) < encode(b)` (bytewise) exactly
//! when `a` collates before `b`: by name, then subscript by subscript with canonical numbers
//! before strings, numbers in numeric order, strings in byte order, and a node before its
//! descendants. Every subscript encoding is self-delimiting, so the keys of a subtree are
//! exactly the keys that start with the subtree's key. The format is on disk (database
//! files and journal records): see docs/design/journal.md before changing it.
//!
//! Layout: `name 0x00` then, per subscript, a tag and a payload:
//! - `0x01` negative number: complement of the positive-number payload;
//! - `0x02` zero (no payload);
//! - `0x03` positive number: exponent as big-endian `u16` biased by 0x8000, then each
//!   significant digit + 1 (bytes 0x01..=0x0A), then `0x00`;
//! - `0x04` string: the bytes with `0x00` escaped as `0x00 0xFF`, then `0x00 0x00`.
//!
//! A number `0.d1d2d3… × 10^e` (with `d1 ≠ 0`) stores `e` and the digits `d1d2d3…`.

use super::error::GlobalsError;
use super::limits::MAX_KEY_BYTES;
use super::subscript::{GlobalRef, Subscript};

const TAG_NEGATIVE: u8 = 0x01;
const TAG_ZERO: u8 = 0x02;
const TAG_POSITIVE: u8 = 0x03;
const TAG_STRING: u8 = 0x04;
/// Greater than every tag: `prefix + [SUBTREE_END]` bounds a subtree from above.
pub const SUBTREE_END: u8 = 0xFF;
const EXPONENT_BIAS: i32 = 0x8000;

/// Encodes a reference, enforcing the key-size limit.
pub fn encode(r: &GlobalRef) -> Result<Vec<u8>, GlobalsError> {
    let mut out = Vec::with_capacity(r.name.len() + 1 + r.subscripts.len() * 8);
    out.extend_from_slice(r.name.as_bytes());
    out.push(0);
    for s in &r.subscripts {
        encode_subscript(s, &mut out);
    }
    if out.len() > MAX_KEY_BYTES {
        return Err(GlobalsError::KeyTooLong { len: out.len(), max: MAX_KEY_BYTES });
    }
    Ok(out)
}

/// Encodes just the global name part (`name 0x00`): the prefix of every key of that global.
pub fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 1);
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out
}

/// The exclusive upper bound of the subtree whose keys start with `prefix`.
pub fn subtree_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = Vec::with_capacity(prefix.len() + 1);
    end.extend_from_slice(prefix);
    end.push(SUBTREE_END);
    end
}

fn encode_subscript(s: &Subscript, out: &mut Vec<u8>) {
    match s {
        Subscript::String(bytes) => {
            out.push(TAG_STRING);
            for &b in bytes {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Subscript::Number(text) => {
            let (negative, exponent, digits) = split_number(text);
            if digits.is_empty() {
                out.push(TAG_ZERO);
                return;
            }
            let start = out.len() + 1;
            out.push(if negative { TAG_NEGATIVE } else { TAG_POSITIVE });
            let biased = (exponent + EXPONENT_BIAS).clamp(0, u16::MAX as i32) as u16;
            out.extend_from_slice(&biased.to_be_bytes());
            out.extend(digits.iter().map(|d| d - b'0' + 1));
            out.push(0);
            if negative {
                for b in &mut out[start..] {
                    *b = !*b;
                }
            }
        }
    }
}

/// Splits canonical number text into sign, decimal exponent and significant digits.
fn split_number(text: &str) -> (bool, i32, Vec<u8>) {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    if int.is_empty() {
        let significant = frac.trim_start_matches('0');
        let leading_zeros = (frac.len() - significant.len()) as i32;
        (negative, -leading_zeros, significant.as_bytes().to_vec())
    } else {
        let mut digits = int.as_bytes().to_vec();
        digits.extend_from_slice(frac.as_bytes());
        // `10` is the digit 1 at exponent 2: one encoding per number.
        while digits.last() == Some(&b'0') {
            digits.pop();
        }
        (negative, int.len() as i32, digits)
    }
}

fn join_number(negative: bool, exponent: i32, digits: &[u8]) -> String {
    let digits: String = digits.iter().map(|&d| (b'0' + d) as char).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exponent <= 0 {
        out.push('.');
        out.extend(std::iter::repeat_n('0', (-exponent) as usize));
        out.push_str(&digits);
    } else if exponent as usize >= digits.len() {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', exponent as usize - digits.len()));
    } else {
        out.push_str(&digits[..exponent as usize]);
        out.push('.');
        out.push_str(&digits[exponent as usize..]);
    }
    out
}

/// Decodes a key produced by [`encode`]. Errors name the byte offset of the first
/// malformed byte (a corrupt database or journal record).
pub fn decode(key: &[u8]) -> Result<GlobalRef, GlobalsError> {
    let bad = |offset| GlobalsError::BadKey { offset };
    let name_end = key.iter().position(|&b| b == 0).ok_or(bad(key.len()))?;
    let name = std::str::from_utf8(&key[..name_end]).map_err(|_| bad(0))?.to_string();
    let mut subscripts = Vec::new();
    let mut i = name_end + 1;
    while i < key.len() {
        let tag = key[i];
        i += 1;
        match tag {
            TAG_ZERO => subscripts.push(Subscript::Number("0".into())),
            TAG_STRING => {
                let mut s = Vec::new();
                loop {
                    let b = *key.get(i).ok_or(bad(i))?;
                    if b != 0 {
                        s.push(b);
                        i += 1;
                        continue;
                    }
                    match key.get(i + 1) {
                        Some(0xFF) => s.push(0),
                        Some(0) => break,
                        _ => return Err(bad(i + 1)),
                    }
                    i += 2;
                }
                i += 2;
                subscripts.push(Subscript::String(s));
            }
            TAG_POSITIVE | TAG_NEGATIVE => {
                let negative = tag == TAG_NEGATIVE;
                let flip = |b: u8| if negative { !b } else { b };
                let hi = flip(*key.get(i).ok_or(bad(i))?);
                let lo = flip(*key.get(i + 1).ok_or(bad(i + 1))?);
                let exponent = u16::from_be_bytes([hi, lo]) as i32 - EXPONENT_BIAS;
                i += 2;
                let mut digits = Vec::new();
                loop {
                    let b = flip(*key.get(i).ok_or(bad(i))?);
                    i += 1;
                    match b {
                        0 => break,
                        1..=10 => digits.push(b - 1),
                        _ => return Err(bad(i - 1)),
                    }
                }
                if digits.is_empty() || digits[0] == 0 || digits[digits.len() - 1] == 0 {
                    return Err(bad(i - 1));
                }
                subscripts.push(Subscript::Number(join_number(negative, exponent, &digits)));
            }
            _ => return Err(bad(i - 1)),
        }
    }
    Ok(GlobalRef { name, subscripts })
}

/// For a key inside the subtree of `parent` (encoded), the first subscript below
/// `parent` and the end of its encoding. Used by `$ORDER` to step from a descendant key to
/// the sibling subscript it lies under.
pub fn first_subscript_after(parent: &[u8], key: &[u8]) -> Result<(Subscript, usize), GlobalsError> {
    debug_assert!(key.starts_with(parent) && key.len() > parent.len());
    let len = subscript_len(&key[parent.len()..]).ok_or(GlobalsError::BadKey { offset: parent.len() })?;
    let end = parent.len() + len;
    let mut tmp = encode_name("x");
    tmp.extend_from_slice(&key[parent.len()..end]);
    let r = decode(&tmp)?;
    Ok((r.subscripts.into_iter().next().expect("one subscript decoded"), end))
}

/// Length in bytes of the first encoded subscript of `bytes`.
fn subscript_len(bytes: &[u8]) -> Option<usize> {
    match *bytes.first()? {
        TAG_ZERO => Some(1),
        TAG_STRING => {
            let mut i = 1;
            loop {
                if *bytes.get(i)? == 0 {
                    if *bytes.get(i + 1)? == 0 {
                        return Some(i + 2);
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
        TAG_POSITIVE => Some(3 + bytes[3..].iter().position(|&b| b == 0)? + 1),
        TAG_NEGATIVE => Some(3 + bytes.get(3..)?.iter().position(|&b| b == 0xFF)? + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::globals::number::{is_canonical_number, Number};
    use proptest::prelude::*;
    use std::cmp::Ordering;

    /// The reference model of collation, written from the rules, not from the encoding.
    fn model_cmp_sub(a: &Subscript, b: &Subscript) -> Ordering {
        match (a, b) {
            (Subscript::Number(x), Subscript::Number(y)) => {
                Number::parse_prefix(x.as_bytes()).cmp(&Number::parse_prefix(y.as_bytes()))
            }
            (Subscript::Number(_), Subscript::String(_)) => Ordering::Less,
            (Subscript::String(_), Subscript::Number(_)) => Ordering::Greater,
            (Subscript::String(x), Subscript::String(y)) => x.cmp(y),
        }
    }

    fn model_cmp(a: &GlobalRef, b: &GlobalRef) -> Ordering {
        a.name.as_bytes().cmp(b.name.as_bytes()).then_with(|| {
            for (x, y) in a.subscripts.iter().zip(&b.subscripts) {
                let c = model_cmp_sub(x, y);
                if c != Ordering::Equal {
                    return c;
                }
            }
            a.subscripts.len().cmp(&b.subscripts.len())
        })
    }

    fn subscript() -> impl Strategy<Value = Subscript> {
        prop_oneof![
            (-1000i64..1000).prop_map(|n| Subscript::Number(Number::from(n).to_canonical())),
            ("-?[0-9]{1,12}(\\.[0-9]{1,8})?")
                .prop_map(|s| { Subscript::Number(Number::parse_prefix(s.as_bytes()).to_canonical()) }),
            prop::collection::vec(any::<u8>(), 1..6).prop_map(|b| Subscript::from_bytes(b, 1).unwrap()),
            ("[a-c0-9.]{1,4}").prop_map(|s| Subscript::from_bytes(s.into_bytes(), 1).unwrap()),
        ]
    }

    fn reference() -> impl Strategy<Value = GlobalRef> {
        ("[a-c][a-c]?", prop::collection::vec(subscript(), 0..4))
            .prop_map(|(name, subscripts)| GlobalRef { name, subscripts })
    }

    proptest! {
        // Seeded, so a run is reproducible (PROPTEST_CASES / PROPTEST_RNG_SEED vary it).
        #![proptest_config(crate::fuzz::config(256, 0x4b455931))]
        #[test]
        fn round_trips(r in reference()) {
            let k = encode(&r).unwrap();
            prop_assert_eq!(decode(&k).unwrap(), r);
        }

        #[test]
        fn sorts_like_the_model(a in reference(), b in reference()) {
            let (ka, kb) = (encode(&a).unwrap(), encode(&b).unwrap());
            prop_assert_eq!(ka.cmp(&kb), model_cmp(&a, &b), "{:?} vs {:?}", a, b);
        }

        #[test]
        fn descendants_share_the_prefix(a in reference(), extra in prop::collection::vec(subscript(), 1..3)) {
            let mut child = a.clone();
            child.subscripts.extend(extra);
            let (ka, kc) = (encode(&a).unwrap(), encode(&child).unwrap());
            prop_assert!(kc.starts_with(&ka));
            prop_assert!(kc < subtree_end(&ka));
            let (first, end) = first_subscript_after(&ka, &kc).unwrap();
            prop_assert_eq!(&first, &child.subscripts[a.subscripts.len()]);
            prop_assert!(end <= kc.len());
        }

        #[test]
        fn canonical_numbers_from_strings(s in "-?[0-9]{0,3}(\\.[0-9]{0,3})?") {
            let sub = Subscript::from_bytes(s.clone().into_bytes(), 1);
            if s.is_empty() {
                prop_assert!(sub.is_err());
            } else if is_canonical_number(s.as_bytes()) {
                prop_assert_eq!(sub.unwrap(), Subscript::Number(s));
            } else {
                let is_string = matches!(sub.unwrap(), Subscript::String(_));
                prop_assert!(is_string);
            }
        }
    }

    #[test]
    fn known_order() {
        let refs: Vec<GlobalRef> = [
            "^a",
            "^a(-10)",
            "^a(-2.5)",
            "^a(-.5)",
            "^a(0)",
            "^a(.001)",
            "^a(.5)",
            "^a(1)",
            "^a(1,\"x\")",
            "^a(1.5)",
            "^a(2)",
            "^a(10)",
            "^a(100)",
            "^a(\"\"\"q\")",
            "^a(\"01\")",
            "^a(\"A\")",
            "^a(\"a\")",
            "^a(\"ab\")",
            "^aa",
            "^b",
        ]
        .iter()
        .map(|s| crate::globals::reference::parse(s).unwrap())
        .collect();
        let keys: Vec<Vec<u8>> = refs.iter().map(|r| encode(r).unwrap()).collect();
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", decode(&w[0]), decode(&w[1]));
        }
    }

    #[test]
    fn key_limit_is_enforced() {
        let long = Subscript::String(vec![b'x'; 600]);
        let r = GlobalRef::new("a", vec![long]).unwrap();
        assert!(matches!(encode(&r), Err(GlobalsError::KeyTooLong { .. })));
    }

    #[test]
    fn malformed_keys_name_the_offset() {
        assert_eq!(decode(b"a\0\x09"), Err(GlobalsError::BadKey { offset: 2 }));
        assert_eq!(decode(b"a\0\x04ab"), Err(GlobalsError::BadKey { offset: 5 }));
    }
}
