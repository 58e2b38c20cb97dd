//! Global mappings as users write them, and the key range each one covers.
//!
//! - `Company` : the global `^Company`;
//! - `Company*`: every global whose name starts with `Company`;
//! - `Log(2024)`: the subtree `^Log(2024)`;
//! - `Log(2024):(2025)`: subscripts from `^Log(2024)` up to, not including, `^Log(2025)`;
//!   `BEGIN` and `END` stand for the open ends: `Log(BEGIN):("M")`.
//!
//! A leading `^` is accepted. Ranges are over encoded keys (see `globals::key`), so one
//! routing table answers every operation.

use crate::globals::key::{encode, encode_name, subtree_end};
use crate::globals::reference;
use crate::globals::subscript::validate_name;
use crate::globals::GlobalsError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingKind {
    Name,
    Prefix,
    Subscripts,
}

/// A parsed mapping: the text it came from, its kind and its key range `[lo, hi)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalMapping {
    pub spec: String,
    pub kind: MappingKind,
    pub lo: Vec<u8>,
    pub hi: Vec<u8>,
    /// Painting order: prefix mappings by length, then names, then subscript mappings by depth.
    pub precedence: (u8, usize),
}

pub fn parse(spec: &str) -> Result<GlobalMapping, GlobalsError> {
    let text = spec.trim();
    let text = text.strip_prefix('^').unwrap_or(text);
    let bad = |reason: &str| GlobalsError::Syntax { input: spec.to_string(), column: 1, reason: reason.to_string() };
    if let Some(prefix) = text.strip_suffix('*') {
        if prefix.is_empty() {
            return Err(bad("a prefix mapping needs at least one character before *"));
        }
        // Validate as a name (a prefix of a valid name is itself name-shaped, bar a final dot).
        validate_name(prefix.trim_end_matches('.')).map_err(|_| bad("not a global name prefix"))?;
        let lo = prefix.as_bytes().to_vec();
        let mut hi = lo.clone();
        *hi.last_mut().expect("non-empty") += 1;
        return Ok(GlobalMapping {
            spec: spec.to_string(),
            kind: MappingKind::Prefix,
            lo,
            hi,
            precedence: (0, prefix.len()),
        });
    }
    let Some(open) = text.find('(') else {
        validate_name(text)?;
        let lo = encode_name(text);
        let hi = subtree_end(&lo);
        return Ok(GlobalMapping { spec: spec.to_string(), kind: MappingKind::Name, lo, hi, precedence: (1, 0) });
    };
    let name = &text[..open];
    validate_name(name)?;
    let (from, to) = match text[open..].split_once("):(") {
        Some((a, b)) => (format!("{a})"), Some(format!("({b}"))),
        None => (text[open..].to_string(), None),
    };
    let base = encode_name(name);
    let bound = |part: &str, is_from: bool| -> Result<Vec<u8>, GlobalsError> {
        let inner = part.trim_start_matches('(').trim_end_matches(')').trim();
        match inner.to_ascii_uppercase().as_str() {
            "BEGIN" if is_from => Ok([base.as_slice(), &[0x01]].concat()),
            "END" if !is_from => Ok(subtree_end(&base)),
            _ => Ok(encode(&reference::parse(&format!("^{name}{part}"))?)?),
        }
    };
    let lo = bound(&from, true)?;
    let depth = reference::parse(&format!("^{name}{}", from.replace("BEGIN", "0").replace("begin", "0")))
        .map(|r| r.subscripts.len())
        .unwrap_or(1);
    let hi = match &to {
        Some(to) => bound(to, false)?,
        None => subtree_end(&lo),
    };
    if lo >= hi {
        return Err(bad("the range is empty: the first bound must collate before the second"));
    }
    Ok(GlobalMapping { spec: spec.to_string(), kind: MappingKind::Subscripts, lo, hi, precedence: (2, depth) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(parse("Company*").unwrap().kind, MappingKind::Prefix);
        assert_eq!(parse("^Company").unwrap().kind, MappingKind::Name);
        let m = parse("Log(2024):(2025)").unwrap();
        assert_eq!(m.kind, MappingKind::Subscripts);
        assert_eq!(m.lo, encode(&reference::parse("^Log(2024)").unwrap()).unwrap());
        assert_eq!(m.hi, encode(&reference::parse("^Log(2025)").unwrap()).unwrap());
        assert!(parse("Log(BEGIN):(\"M\")").is_ok());
        assert!(parse("Log(\"M\"):(END)").is_ok());
        assert!(parse("Log(5)").is_ok());
    }

    #[test]
    fn rejects_bad_mappings() {
        assert!(parse("*").is_err());
        assert!(parse("1abc").is_err());
        assert!(parse("Log(2025):(2024)").is_err());
        assert!(parse("Log(\"\")").is_err());
    }
}
