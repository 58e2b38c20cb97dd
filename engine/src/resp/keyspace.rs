//! The namespace's nodes as Redis tools see keys: SCAN, KEYS, DBSIZE, the keyspace line of
//! INFO.
//!
//! A "key" is a node with a value, in collation order (the order of `$QUERY`, global by
//! global). Its name is the bare Redis-style key when that form reads back as the same node
//! (`^user(1000,"name")` is `user:1000:name`, `^a("007")` is `a:007`), the reference
//! otherwise (`^a("x:y")`: a colon in a subscript would split it). Either way, a name SCAN or KEYS returns works in GET, DEL and the
//! rest: [`key_name`] checks the round trip rather than assuming it.
//!
//! SCAN cursors name the last node returned; the server keeps the newest
//! [`MAX_CURSORS`] of them (a cursor is a number, as Redis clients expect). Nodes written
//! during a scan may or may not be returned; nodes that exist for the whole scan are
//! returned exactly once, in order.

use super::backend::Backend;
use crate::error::{EngineError, Result};
use crate::globals::{key, reference, GlobalRef, Subscript};
use crate::instance::Session;
use parking_lot::Mutex;
use std::collections::BTreeMap;

/// SCAN cursors kept per server; older ones are forgotten (a client using one gets an
/// error telling it to start again).
pub const MAX_CURSORS: usize = 4096;
/// Most names KEYS answers; past it, the error says to use SCAN.
pub const MAX_KEYS_REPLY: usize = 100_000;
/// Nodes read per step when walking the whole namespace (KEYS, DBSIZE, FLUSHDB).
const WALK_CHUNK: usize = 1024;

/// The name tools see for a node: the bare key when it reads back as the same reference.
pub(crate) fn key_name(r: &GlobalRef) -> Vec<u8> {
    let mut bare = r.name.as_bytes().to_vec();
    let mut plain = true;
    for s in &r.subscripts {
        let bytes = s.as_bytes();
        if bytes.contains(&b':') {
            plain = false;
            break;
        }
        bare.push(b':');
        bare.extend_from_slice(bytes);
    }
    if plain && reference::parse_key(&bare).is_ok_and(|back| back == *r) {
        bare
    } else {
        reference::format(r).into_bytes()
    }
}

/// Redis's glob patterns (`*`, `?`, `[abc]`, `[^a-z]`, `\x`), in linear time: only the
/// last `*` is backtracked to, which is exact because every other token matches one byte.
pub(crate) fn pattern_match(pattern: &[u8], text: &[u8]) -> bool {
    let p = tokens(pattern);
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match p.get(pi) {
            Some(Token::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(t) if t.matches(text[ti]) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|t| matches!(t, Token::Star))
}

enum Token {
    Star,
    Any,
    Byte(u8),
    Class { negate: bool, ranges: Vec<(u8, u8)> },
}

impl Token {
    fn matches(&self, b: u8) -> bool {
        match self {
            Token::Star => true,
            Token::Any => true,
            Token::Byte(c) => *c == b,
            Token::Class { negate, ranges } => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&b)) != *negate,
        }
    }
}

fn tokens(p: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => {
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
            }
            b'?' => out.push(Token::Any),
            b'\\' if i + 1 < p.len() => {
                i += 1;
                out.push(Token::Byte(p[i]));
            }
            b'[' => {
                i += 1;
                let negate = p.get(i) == Some(&b'^');
                if negate {
                    i += 1;
                }
                let mut ranges = Vec::new();
                // An unclosed class runs to the end of the pattern, as in Redis.
                while i < p.len() && p[i] != b']' {
                    let mut lo = p[i];
                    if lo == b'\\' && i + 1 < p.len() {
                        i += 1;
                        lo = p[i];
                    }
                    if p.get(i + 1) == Some(&b'-') && i + 2 < p.len() && p[i + 2] != b']' {
                        let hi = p[i + 2];
                        ranges.push((lo.min(hi), lo.max(hi)));
                        i += 3;
                    } else {
                        ranges.push((lo, lo));
                        i += 1;
                    }
                }
                out.push(Token::Class { negate, ranges });
            }
            c => out.push(Token::Byte(c)),
        }
        i += 1;
    }
    out
}

/// The SCAN cursors of one server: number → the encoded key of the last node returned.
pub(crate) struct Cursors {
    table: Mutex<(u64, BTreeMap<u64, Vec<u8>>)>,
}

impl Default for Cursors {
    fn default() -> Self {
        // Numbers start from the clock so that a cursor from before a restart is unknown
        // rather than silently resuming somewhere else.
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64 & ((1 << 52) - 1))
            .max(1);
        Cursors { table: Mutex::new((base, BTreeMap::new())) }
    }
}

impl Cursors {
    fn save(&self, after: Vec<u8>) -> u64 {
        let mut t = self.table.lock();
        t.0 += 1;
        let id = t.0;
        t.1.insert(id, after);
        while t.1.len() > MAX_CURSORS {
            t.1.pop_first();
        }
        id
    }

    fn resume(&self, id: u64) -> Option<Vec<u8>> {
        self.table.lock().1.get(&id).cloned()
    }
}

/// One SCAN step: the next cursor (0 at the end) and the names found.
pub(crate) fn scan<B: Backend>(
    b: &B,
    s: &Session,
    cursors: &Cursors,
    args: &super::commands::ScanArgs<'_>,
) -> std::result::Result<(u64, Vec<Vec<u8>>), String> {
    let after = match args.cursor {
        0 => None,
        c => Some(cursors.resume(c).ok_or_else(|| {
            format!(
                "ERR invalid cursor {c}: it is not from this server or has expired (the newest {MAX_CURSORS} are kept); start again from 0"
            )
        })?),
    };
    let nodes = b.scan_keys(s, after.as_deref(), args.count).map_err(|e| super::commands::engine_error_line(&e))?;
    let next = match nodes.last() {
        Some((k, _)) if nodes.len() >= args.count => cursors.save(k.clone()),
        _ => 0,
    };
    let mut names = Vec::new();
    if !args.other_type {
        for (k, _) in &nodes {
            let name = name_of(k).map_err(|e| super::commands::engine_error_line(&e))?;
            if args.pattern.is_none_or(|p| pattern_match(p, &name)) {
                names.push(name);
            }
        }
    }
    Ok((next, names))
}

fn name_of(encoded: &[u8]) -> Result<Vec<u8>> {
    Ok(key_name(&key::decode(encoded).map_err(EngineError::from)?))
}

/// Calls `each` with every node of the namespace (encoded key, value length), in order,
/// until it returns false.
pub(crate) fn walk<B: Backend>(b: &B, s: &Session, mut each: impl FnMut(&[u8], usize) -> bool) -> Result<()> {
    let mut after: Option<Vec<u8>> = None;
    loop {
        let nodes = b.scan_keys(s, after.as_deref(), WALK_CHUNK)?;
        for (k, len) in &nodes {
            if !each(k, *len) {
                return Ok(());
            }
        }
        match nodes.into_iter().last() {
            Some((k, _)) => after = Some(k),
            None => return Ok(()),
        }
    }
}

/// DBSIZE: the nodes with a value in the namespace (a walk over all of them).
pub(crate) fn count<B: Backend>(b: &B, s: &Session) -> Result<u64> {
    let mut n = 0u64;
    walk(b, s, |_, _| {
        n += 1;
        true
    })?;
    Ok(n)
}

/// KEYS: every matching name, or an error past [`MAX_KEYS_REPLY`].
pub(crate) fn keys<B: Backend>(b: &B, s: &Session, pattern: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut names = Vec::new();
    let mut failure = None;
    walk(b, s, |k, _| match name_of(k) {
        Ok(name) => {
            if pattern_match(pattern, &name) {
                names.push(name);
            }
            if names.len() > MAX_KEYS_REPLY {
                failure = Some(format!(
                    "ERR KEYS matches more than {MAX_KEYS_REPLY} names; iterate with SCAN (redis-cli --scan) instead"
                ));
            }
            failure.is_none()
        }
        Err(e) => {
            failure = Some(super::commands::engine_error_line(&e));
            false
        }
    })
    .map_err(|e| super::commands::engine_error_line(&e))?;
    match failure {
        Some(f) => Err(f),
        None => Ok(names),
    }
}

/// The global names of the namespace, in order (FLUSHDB kills them one by one).
pub(crate) fn global_names<B: Backend>(b: &B, s: &Session) -> Result<Vec<GlobalRef>> {
    let mut names: Vec<GlobalRef> = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let Some((k, _)) = b.scan_keys(s, after.as_deref(), 1)?.pop() else { return Ok(names) };
        let r = key::decode(&k).map_err(EngineError::from)?;
        let global = GlobalRef::new(r.name.clone(), Vec::<Subscript>::new()).map_err(EngineError::from)?;
        // Past the whole global: its subtree ends before the next name.
        after = Some(key::subtree_end(&key::encode_name(&r.name)));
        names.push(global);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: &str) -> String {
        String::from_utf8(key_name(&reference::parse(r).unwrap())).unwrap()
    }

    #[test]
    fn names_round_trip_through_parse_key() {
        assert_eq!(name("^user(1000,\"name\")"), "user:1000:name");
        assert_eq!(name("^foo"), "foo");
        assert_eq!(name("^a(-1.5,\"x\")"), "a:-1.5:x");
        // The bare form would read back differently: the reference is the name.
        assert_eq!(name("^a(\"x:y\")"), "^a(\"x:y\")");
        // A canonical number in quotes is that number, as in ObjectScript.
        assert_eq!(name("^a(\"12\")"), "a:12");
        assert_eq!(name("^a(\"007\")"), "a:007");
        for r in ["^user(1000,\"name\")", "^a(\"x:y\")", "^a(\"12\")", "^a(\"007\")", "^a(1E3)", "^x(\"a\"_$c(0))"] {
            let g = reference::parse(r).unwrap();
            assert_eq!(reference::parse_key(&key_name(&g)).unwrap(), g, "{r}");
        }
    }

    #[test]
    fn redis_globs() {
        assert!(pattern_match(b"*", b"anything"));
        assert!(pattern_match(b"user:*", b"user:1000:name"));
        assert!(!pattern_match(b"user:*", b"users"));
        assert!(pattern_match(b"h?llo", b"hello"));
        assert!(pattern_match(b"h[ae]llo", b"hallo"));
        assert!(!pattern_match(b"h[ae]llo", b"hillo"));
        assert!(pattern_match(b"h[^e]llo", b"hallo"));
        assert!(!pattern_match(b"h[^e]llo", b"hello"));
        assert!(pattern_match(b"h[a-b]llo", b"hbllo"));
        assert!(pattern_match(b"a\\*b", b"a*b"));
        assert!(!pattern_match(b"a\\*b", b"axb"));
        assert!(pattern_match(b"*o*l*", b"appendonly"));
        assert!(pattern_match(b"", b""));
        assert!(!pattern_match(b"", b"x"));
        // Linear: a hostile pattern answers at once.
        let hostile: Vec<u8> = b"*a".repeat(200).into_iter().chain(*b"b").collect();
        assert!(!pattern_match(&hostile, &[b'a'; 5000]));
    }
}
