//! A typed walk over a parsed YAML value that collects problems instead of stopping at
//! the first one, each at the position of the offending key or value.

use crate::positions::Positions;
use crate::problem::{Pos, Problem};
use serde_yaml::{Mapping, Value};

pub struct Walker<'a> {
    pub positions: &'a Positions,
    pub problems: Vec<Problem>,
}

pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// The YAML type as a person says it.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl<'a> Walker<'a> {
    pub fn at_key(&self, path: &str) -> Pos {
        self.positions.key(path)
    }

    pub fn at_value(&self, path: &str) -> Pos {
        self.positions.value(path)
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<String>) {
        self.problems.push(Problem::new(pos, message).hint(hint));
    }

    fn wrong_type(&mut self, path: &str, v: &Value, expected: &str) {
        let field = if path.is_empty() { "the manifest".to_string() } else { format!("`{path}`") };
        let pos = self.at_value(path);
        self.error(pos, format!("{field} must be {expected}, not {}", kind(v)), format!("write {expected} here"));
    }

    /// A mapping whose keys are all in `allowed`; unknown keys are reported (with the
    /// closest allowed key as hint) and the mapping is still walked.
    pub fn map<'v>(&mut self, v: &'v Value, path: &str, allowed: &[&str]) -> Option<&'v Mapping> {
        let Value::Mapping(m) = v else {
            self.wrong_type(path, v, "a mapping");
            return None;
        };
        for k in m.keys() {
            let Some(key) = k.as_str() else {
                let pos = self.at_value(path);
                self.error(pos, format!("a key of `{path}` is not a string"), "keys are plain words");
                continue;
            };
            if !allowed.contains(&key) {
                let hint = match closest(key, allowed) {
                    Some(c) => format!("did you mean `{c}`? expected one of: {}", allowed.join(", ")),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                let pos = self.at_key(&join(path, key));
                self.error(pos, format!("unknown key `{key}`"), hint);
            }
        }
        Some(m)
    }

    /// A mapping with free-form keys.
    pub fn any_map<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Mapping> {
        let m = v.as_mapping();
        if m.is_none() {
            self.wrong_type(path, v, "a mapping");
        }
        m
    }

    /// A required field; a missing one is reported at its parent.
    pub fn required<'v>(&mut self, m: &'v Mapping, path: &str, key: &str) -> Option<&'v Value> {
        let v = m.get(key).filter(|v| !v.is_null());
        if v.is_none() {
            let pos = self.at_key(path);
            let where_ = if path.is_empty() { "the manifest".to_string() } else { format!("`{path}`") };
            self.error(pos, format!("{where_} needs `{key}`"), format!("add `{key}:`; see docs/manifest.md"));
        }
        v
    }

    pub fn string(&mut self, v: &Value, path: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            // A bare number where a name is expected (`name: 2024`) reads as its text.
            Value::Number(n) => Some(n.to_string()),
            _ => {
                self.wrong_type(path, v, "a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(path, v, "true or false");
                None
            }
        }
    }

    pub fn integer(&mut self, v: &Value, path: &str, lo: u64, hi: u64) -> Option<u64> {
        match v.as_u64() {
            Some(n) if (lo..=hi).contains(&n) => Some(n),
            Some(n) => {
                let pos = self.at_value(path);
                self.error(
                    pos,
                    format!("`{path}` is {n}; it must be between {lo} and {hi}"),
                    format!("pick a value in {lo}..={hi}"),
                );
                None
            }
            None => {
                self.wrong_type(path, v, &format!("a whole number from {lo} to {hi}"));
                None
            }
        }
    }

    pub fn list<'v>(&mut self, v: &'v Value, path: &str, max: usize) -> Option<&'v [Value]> {
        match v {
            Value::Sequence(s) if s.len() <= max => Some(s),
            Value::Sequence(s) => {
                let pos = self.at_value(path);
                self.error(
                    pos,
                    format!("`{path}` has {} entries; at most {max} are supported", s.len()),
                    "split the lab",
                );
                None
            }
            Value::Null => Some(&[]),
            _ => {
                self.wrong_type(path, v, "a list");
                None
            }
        }
    }
}

/// The allowed word closest to `word` (edit distance at most 2), for "did you mean".
fn closest<'s>(word: &str, allowed: &[&'s str]) -> Option<&'s str> {
    allowed.iter().map(|a| (distance(word, a), *a)).filter(|(d, _)| *d <= 2).min().map(|(_, a)| a)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn closest_suggests_near_words_only() {
        assert_eq!(super::closest("memebrs", &["members", "mirror"]), Some("members"));
        assert_eq!(super::closest("zzzz", &["members", "mirror"]), None);
    }
}
