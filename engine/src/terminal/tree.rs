//! An ordered tree of nodes keyed by [`key::encode`]: the storage of the in-memory
//! backend and of the terminal's local variables (a local `x(1)` is stored as if it were
//! `^x(1)`, so locals collate exactly like globals).

use crate::globals::key::{self, subtree_end};
use crate::globals::{GlobalRef, GlobalsError, Number, Subscript};
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Included};

#[derive(Clone, Debug, Default)]
pub struct Tree {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Number of nodes holding a value.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn get(&self, r: &GlobalRef) -> Result<Option<Vec<u8>>, GlobalsError> {
        Ok(self.map.get(&key::encode(r)?).cloned())
    }

    pub fn set(&mut self, r: &GlobalRef, value: &[u8]) -> Result<(), GlobalsError> {
        self.map.insert(key::encode(r)?, value.to_vec());
        Ok(())
    }

    pub fn kill(&mut self, r: &GlobalRef) -> Result<(), GlobalsError> {
        let prefix = key::encode(r)?;
        let end = subtree_end(&prefix);
        let mut tail = self.map.split_off(&prefix);
        let mut after = tail.split_off(&end);
        self.map.append(&mut after);
        Ok(())
    }

    pub fn zkill(&mut self, r: &GlobalRef) -> Result<(), GlobalsError> {
        self.map.remove(&key::encode(r)?);
        Ok(())
    }

    pub fn data(&self, r: &GlobalRef) -> Result<u8, GlobalsError> {
        let prefix = key::encode(r)?;
        let value = if self.map.contains_key(&prefix) { 1 } else { 0 };
        let end = subtree_end(&prefix);
        let children = self.map.range::<[u8], _>((Excluded(&prefix[..]), Excluded(&end[..]))).next().is_some();
        Ok(value + if children { 10 } else { 0 })
    }

    pub fn order(
        &self,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        backward: bool,
    ) -> Result<Option<Subscript>, GlobalsError> {
        let prefix = key::encode(parent)?;
        let end = subtree_end(&prefix);
        let found = match (after, backward) {
            (None, false) => self.map.range::<[u8], _>((Excluded(&prefix[..]), Excluded(&end[..]))).next(),
            (None, true) => self.map.range::<[u8], _>((Excluded(&prefix[..]), Excluded(&end[..]))).next_back(),
            (Some(s), false) => {
                let child = key::encode(&parent.child(s.clone())?)?;
                let skip = subtree_end(&child);
                self.map.range::<[u8], _>((Included(&skip[..]), Excluded(&end[..]))).next()
            }
            (Some(s), true) => {
                let child = key::encode(&parent.child(s.clone())?)?;
                self.map.range::<[u8], _>((Excluded(&prefix[..]), Excluded(&child[..]))).next_back()
            }
        };
        match found {
            None => Ok(None),
            Some((k, _)) => Ok(Some(key::first_subscript_after(&prefix, k)?.0)),
        }
    }

    pub fn query(&self, r: &GlobalRef, backward: bool) -> Result<Option<GlobalRef>, GlobalsError> {
        let root = key::encode_name(&r.name);
        let end = subtree_end(&root);
        let at = key::encode(r)?;
        let found = if backward {
            self.map.range::<[u8], _>((Excluded(&root[..]), Excluded(&at[..]))).next_back()
        } else {
            self.map.range::<[u8], _>((Excluded(&at[..]), Excluded(&end[..]))).next()
        };
        found.map(|(k, _)| key::decode(k)).transpose()
    }

    pub fn increment(&mut self, r: &GlobalRef, by: Number) -> Result<Number, GlobalsError> {
        let k = key::encode(r)?;
        let old = match self.map.get(&k) {
            Some(v) => Number::parse_in_range(v)
                .ok_or_else(|| GlobalsError::MaxNumber { literal: String::from_utf8_lossy(v).into_owned() })?,
            None => Number::ZERO,
        };
        let new = old.checked_add(by).ok_or_else(|| GlobalsError::MaxNumber {
            literal: format!("{} + {}", old.to_canonical(), by.to_canonical()),
        })?;
        self.map.insert(k, new.to_canonical().into_bytes());
        Ok(new)
    }

    /// Every node holding a value, in collation order.
    pub fn entries(&self) -> impl Iterator<Item = (GlobalRef, &[u8])> + '_ {
        self.map.iter().map(|(k, v)| (key::decode(k).expect("tree keys are encoded by key::encode"), &v[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::globals::reference::{format, parse};

    fn r(s: &str) -> GlobalRef {
        parse(s).unwrap()
    }

    fn tree(nodes: &[&str]) -> Tree {
        let mut t = Tree::new();
        for n in nodes {
            t.set(&r(n), b"v").unwrap();
        }
        t
    }

    #[test]
    fn order_query_data_kill() {
        let mut t = tree(&["^x", "^x(1)", "^x(1,\"a\")", "^x(2)", "^x(\"b\",1)", "^y(1)"]);
        let sub = |s: Option<Subscript>| s.map(|s| String::from_utf8(s.as_bytes().to_vec()).unwrap());
        assert_eq!(sub(t.order(&r("^x"), None, false).unwrap()).as_deref(), Some("1"));
        assert_eq!(sub(t.order(&r("^x"), None, true).unwrap()).as_deref(), Some("b"));
        let one = Subscript::from_bytes(b"1".to_vec(), 1).unwrap();
        assert_eq!(sub(t.order(&r("^x"), Some(&one), false).unwrap()).as_deref(), Some("2"));
        assert_eq!(t.order(&r("^x"), Some(&one), true).unwrap(), None);
        assert_eq!(t.data(&r("^x")).unwrap(), 11);
        assert_eq!(t.data(&r("^x(\"b\")")).unwrap(), 10);
        assert_eq!(t.data(&r("^x(2)")).unwrap(), 1);
        assert_eq!(t.data(&r("^x(3)")).unwrap(), 0);
        assert_eq!(format(&t.query(&r("^x"), false).unwrap().unwrap()), "^x(1)");
        assert_eq!(format(&t.query(&r("^x(1)"), false).unwrap().unwrap()), "^x(1,\"a\")");
        assert_eq!(format(&t.query(&r("^x(2)"), true).unwrap().unwrap()), "^x(1,\"a\")");
        assert_eq!(t.query(&r("^x(1)"), true).unwrap(), None);
        assert_eq!(t.query(&r("^x(\"b\",1)"), false).unwrap(), None);
        t.kill(&r("^x(1)")).unwrap();
        assert_eq!(t.len(), 4);
        t.kill(&r("^x")).unwrap();
        assert_eq!(t.len(), 1);
    }
}
