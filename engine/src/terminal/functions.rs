//! The string functions, pure over byte strings. Positions are 1-based as in ObjectScript;
//! lengths count bytes (a UTF-8 character outside ASCII counts as several).

use super::error::TermError;
use super::limits::MAX_WIDTH;
use super::value::num;
use crate::globals::Number;

fn pieces<'a>(s: &'a [u8], delim: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + delim.len() <= s.len() {
        if &s[i..i + delim.len()] == delim {
            out.push(&s[start..i]);
            i += delim.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// `$LENGTH(s,delim)`: the number of pieces; 0 for an empty delimiter.
pub fn length_pieces(s: &[u8], delim: &[u8]) -> i64 {
    if delim.is_empty() {
        return 0;
    }
    pieces(s, delim).len() as i64
}

/// `$PIECE(s,delim,from,to)`.
pub fn piece(s: &[u8], delim: &[u8], from: i64, to: i64) -> Vec<u8> {
    if delim.is_empty() || to < 1 || to < from {
        return Vec::new();
    }
    let p = pieces(s, delim);
    let from = from.max(1) as usize;
    if from > p.len() {
        return Vec::new();
    }
    let to = (to as usize).min(p.len());
    p[from - 1..to].join(delim)
}

/// `SET $PIECE(var,delim,from,to)=value`: replaces pieces `from..=to`, adding empty pieces
/// when the string has fewer.
pub fn set_piece(old: &[u8], delim: &[u8], from: i64, to: i64, value: &[u8]) -> Vec<u8> {
    if to < from || to < 1 {
        return old.to_vec();
    }
    let from = from.max(1) as usize;
    let to = to as usize;
    let mut p: Vec<Vec<u8>> =
        if old.is_empty() { vec![Vec::new()] } else { pieces(old, delim).into_iter().map(<[u8]>::to_vec).collect() };
    while p.len() < from {
        p.push(Vec::new());
    }
    let end = to.min(p.len());
    p.splice(from - 1..end, [value.to_vec()]);
    p.join(delim)
}

/// `$EXTRACT(s,from,to)`.
pub fn extract(s: &[u8], from: i64, to: i64) -> Vec<u8> {
    let from = from.max(1);
    let to = to.min(s.len() as i64);
    if to < from {
        return Vec::new();
    }
    s[from as usize - 1..to as usize].to_vec()
}

/// `SET $EXTRACT(var,from,to)=value`: pads with spaces up to `from`.
pub fn set_extract(old: &[u8], from: i64, to: i64, value: &[u8]) -> Vec<u8> {
    if to < from || to < 1 {
        return old.to_vec();
    }
    let from = from.max(1) as usize;
    let mut s = old.to_vec();
    if s.len() < from - 1 {
        s.resize(from - 1, b' ');
    }
    let end = (to as usize).min(s.len());
    let start = (from - 1).min(s.len());
    s.splice(start..end.max(start), value.iter().copied());
    s
}

/// `$FIND(s,sub,start)`: the position just after the match, or 0.
pub fn find(s: &[u8], sub: &[u8], start: i64) -> i64 {
    let start = start.max(1) as usize - 1;
    if start > s.len() {
        return 0;
    }
    if sub.is_empty() {
        return start as i64 + 1;
    }
    s[start..].windows(sub.len()).position(|w| w == sub).map(|p| (start + p + sub.len() + 1) as i64).unwrap_or(0)
}

/// `$CHAR(code,...)`: bytes 0-255, larger codes as UTF-8, negative codes nothing.
pub fn char(codes: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in codes {
        match c {
            0..=255 => out.push(c as u8),
            _ => {
                if let Some(ch) = u32::try_from(c).ok().and_then(char::from_u32) {
                    out.extend_from_slice(ch.to_string().as_bytes());
                }
            }
        }
    }
    out
}

/// `$ASCII(s,pos)`: the byte at `pos`, or -1.
pub fn ascii(s: &[u8], pos: i64) -> i64 {
    if pos < 1 {
        return -1;
    }
    s.get(pos as usize - 1).map(|&b| b as i64).unwrap_or(-1)
}

fn check_width(width: i64) -> Result<usize, TermError> {
    if width > MAX_WIDTH {
        return Err(TermError::new("MAXSTRING", format!("width {width} is more than {MAX_WIDTH}")));
    }
    Ok(width.max(0) as usize)
}

/// `$JUSTIFY(v,width[,decimals])`: right-aligned; with `decimals`, `v` is rounded (half
/// away from zero) to that many decimals with a leading `0` before the point.
pub fn justify(v: &[u8], width: i64, decimals: Option<i64>) -> Result<Vec<u8>, TermError> {
    let width = check_width(width)?;
    let text = match decimals {
        None => v.to_vec(),
        Some(d) if d < 0 => return Err(TermError::function("$JUSTIFY decimals must not be negative")),
        Some(d) => fixed(num(v), check_width(d)?).into_bytes(),
    };
    let mut out = vec![b' '; width.saturating_sub(text.len())];
    out.extend_from_slice(&text);
    Ok(out)
}

fn fixed(n: Number, decimals: usize) -> String {
    let scale = Number::parse_prefix(format!("1E{decimals}").as_bytes());
    let half = Number::parse_prefix(b".5");
    let scaled = n.mul(scale);
    let rounded = if scaled < Number::ZERO { scaled.sub(half) } else { scaled.add(half) }.trunc();
    let negative = rounded < Number::ZERO;
    let mut digits = rounded.to_canonical().trim_start_matches('-').to_string();
    if digits.len() < decimals + 1 {
        digits = format!("{}{digits}", "0".repeat(decimals + 1 - digits.len()));
    }
    let point = digits.len() - decimals;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&digits[..point]);
    if decimals > 0 {
        out.push('.');
        out.push_str(&digits[point..]);
    }
    out
}

/// `$TRANSLATE(s,from[,to])`: each byte of `from` becomes the byte at the same place in
/// `to`, or is removed when `to` is shorter.
pub fn translate(s: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    s.iter()
        .filter_map(|b| match from.iter().position(|f| f == b) {
            Some(i) => to.get(i).copied(),
            None => Some(*b),
        })
        .collect()
}

/// `$ZCONVERT(s,mode)`: `U` upper case, `L` lower case, `W` each word capitalised (ASCII).
pub fn zconvert(s: &[u8], mode: &[u8]) -> Result<Vec<u8>, TermError> {
    Ok(match mode.to_ascii_uppercase().as_slice() {
        b"U" => s.to_ascii_uppercase(),
        b"L" => s.to_ascii_lowercase(),
        b"W" => {
            let mut start = true;
            s.iter()
                .map(|&b| {
                    let c = if start { b.to_ascii_uppercase() } else { b.to_ascii_lowercase() };
                    start = b == b' ';
                    c
                })
                .collect()
        }
        _ => {
            return Err(TermError::function(format!(
                "$ZCONVERT mode {:?} (use U, L or W)",
                String::from_utf8_lossy(mode)
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_and_extracts() {
        assert_eq!(piece(b"a,b,c", b",", 2, 2), b"b");
        assert_eq!(piece(b"a,b,c", b",", 2, 9), b"b,c");
        assert_eq!(piece(b"a,b,c", b",", 4, 4), b"");
        assert_eq!(piece(b"a::b", b"::", 2, 2), b"b");
        assert_eq!(length_pieces(b"a,b,c", b","), 3);
        assert_eq!(length_pieces(b"", b","), 1);
        assert_eq!(set_piece(b"a,b,c", b",", 2, 2, b"X"), b"a,X,c");
        assert_eq!(set_piece(b"a", b",", 3, 3, b"X"), b"a,,X");
        assert_eq!(set_piece(b"", b",", 2, 2, b"X"), b",X");
        assert_eq!(extract(b"hello", 2, 3), b"el");
        assert_eq!(extract(b"hello", 0, 1), b"h");
        assert_eq!(extract(b"hello", 9, 9), b"");
        assert_eq!(set_extract(b"ab", 4, 4, b"X"), b"ab X");
        assert_eq!(set_extract(b"hello", 1, 1, b"J"), b"Jello");
        assert_eq!(find(b"hello", b"l", 1), 4);
        assert_eq!(find(b"hello", b"l", 4), 5);
        assert_eq!(find(b"hello", b"z", 1), 0);
        assert_eq!(char(&[72, 105, -1]), b"Hi");
        assert_eq!(ascii(b"A", 1), 65);
        assert_eq!(ascii(b"", 1), -1);
        assert_eq!(translate(b"hello", b"lo", b"L"), b"heLL");
    }

    #[test]
    fn justify_rounds() {
        assert_eq!(justify(b"3.14159", 8, Some(2)).unwrap(), b"    3.14");
        assert_eq!(justify(b".5", 1, Some(0)).unwrap(), b"1");
        assert_eq!(justify(b"-.005", 0, Some(2)).unwrap(), b"-0.01");
        assert_eq!(justify(b".5", 5, Some(2)).unwrap(), b" 0.50");
        assert_eq!(justify(b"abc", 5, None).unwrap(), b"  abc");
        assert_eq!(justify(b"abcdef", 2, None).unwrap(), b"abcdef");
        assert_eq!(justify(b"1", 1 << 40, None).unwrap_err().code, "MAXSTRING");
    }
}
