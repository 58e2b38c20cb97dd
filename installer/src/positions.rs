//! Where each node of a YAML document is: a marked-event pass (yaml-rust2) that records,
//! for every path (`members.1.name`), the position of its key and of its value.
//! serde_yaml's values carry no positions; this index lets validation point at the exact
//! line and column of every problem it finds, not only the first.

use crate::problem::Pos;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

#[derive(Debug, Default)]
pub struct Positions {
    keys: HashMap<String, Pos>,
    values: HashMap<String, Pos>,
}

impl Positions {
    /// Indexes `text`; a document that does not parse yields an empty index (the syntax
    /// error is reported by the parser that reads the values).
    pub fn index(text: &str) -> Positions {
        let mut rx = Receiver::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut rx, false);
        rx.out
    }

    /// The key's position when the path names a mapping entry, else the value's.
    pub fn key(&self, path: &str) -> Pos {
        self.keys.get(path).or_else(|| self.values.get(path)).copied().unwrap_or_else(|| self.nearest(path))
    }

    pub fn value(&self, path: &str) -> Pos {
        self.values.get(path).copied().unwrap_or_else(|| self.key(path))
    }

    /// A missing node (a required field left out) is reported at its parent.
    fn nearest(&self, path: &str) -> Pos {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('.') {
            if let Some(pos) = self.keys.get(parent).or_else(|| self.values.get(parent)) {
                return *pos;
            }
            p = parent;
        }
        Pos { line: 1, column: 1 }
    }
}

enum Frame {
    /// A mapping: the key just read, if the next scalar/collection is its value.
    Map {
        path: String,
        pending_key: Option<String>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Receiver {
    stack: Vec<Frame>,
    out: Positions,
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

fn pos(m: Marker) -> Pos {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Pos { line: m.line(), column: m.col() + 1 }
}

impl Receiver {
    /// The path of the node that starts now, or None when it is a mapping key.
    fn node_path(&mut self, key_text: Option<&str>, mark: Marker) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = join(path, &next.to_string());
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    // This node is a key. Only scalar keys are addressable.
                    let k = key_text.unwrap_or("?").to_string();
                    self.out.keys.insert(join(path, &k), pos(mark));
                    *pending_key = Some(k);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Receiver {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, ..) => {
                if let Some(p) = self.node_path(Some(&text), mark) {
                    self.out.values.insert(p, pos(mark));
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.node_path(None, mark) {
                    self.out.values.insert(p, pos(mark));
                }
            }
            Event::MappingStart(..) => {
                let p = self.node_path(None, mark).unwrap_or_default();
                self.out.values.insert(p.clone(), pos(mark));
                self.stack.push(Frame::Map { path: p, pending_key: None });
            }
            Event::SequenceStart(..) => {
                let p = self.node_path(None, mark).unwrap_or_default();
                self.out.values.insert(p.clone(), pos(mark));
                self.stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_of_nested_nodes_have_their_positions() {
        let p = Positions::index("lab: x\nmembers:\n  - name: a\n    type: failover\n  - { name: b }\n");
        assert_eq!(p.key("lab"), Pos { line: 1, column: 1 });
        assert_eq!(p.value("lab"), Pos { line: 1, column: 6 });
        assert_eq!(p.key("members.0.type"), Pos { line: 4, column: 5 });
        assert_eq!(p.value("members.1.name"), Pos { line: 5, column: 13 });
        assert_eq!(p.key("members.1.nope"), p.value("members.1"), "a missing field points at its parent");
    }
}
