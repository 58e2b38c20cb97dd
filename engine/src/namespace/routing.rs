//! A namespace's routing table: the whole key space cut into ranges, each owned by one
//! database.
//!
//! Invariant: ranges are disjoint, sorted and cover every key; the first starts at the
//! empty key. More specific mappings win: default < prefix (longer wins) < name < subscript
//! range (deeper wins), because they are painted in that order.

use super::mapping::GlobalMapping;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Routing {
    /// Range start → database; a range ends where the next one starts.
    starts: BTreeMap<Vec<u8>, String>,
}

impl Routing {
    pub fn new(default_db: &str, mappings: &[(GlobalMapping, String)]) -> Routing {
        let mut r = Routing { starts: BTreeMap::from([(Vec::new(), default_db.to_string())]) };
        let mut ordered: Vec<_> = mappings.iter().collect();
        ordered.sort_by_key(|(m, _)| m.precedence);
        for (m, db) in ordered {
            r.paint(&m.lo, &m.hi, db);
        }
        r
    }

    fn owner(&self, key: &[u8]) -> &String {
        self.starts
            .range::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
            .expect("the empty key starts the first range")
            .1
    }

    fn paint(&mut self, lo: &[u8], hi: &[u8], db: &str) {
        let after = self.owner(hi).clone();
        let inside: Vec<Vec<u8>> = self
            .starts
            .range::<[u8], _>((std::ops::Bound::Included(lo), std::ops::Bound::Excluded(hi)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in inside {
            self.starts.remove(&k);
        }
        self.starts.insert(lo.to_vec(), db.to_string());
        self.starts.entry(hi.to_vec()).or_insert(after);
    }

    /// The database that holds `key`.
    pub fn route(&self, key: &[u8]) -> &str {
        self.owner(key)
    }

    /// The pieces of `[lo, hi)` with their databases, in key order.
    pub fn pieces(&self, lo: &[u8], hi: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, &str)> {
        let mut out = Vec::new();
        let mut start = lo.to_vec();
        while start.as_slice() < hi {
            let db = self.owner(&start);
            let end = self
                .starts
                .range::<[u8], _>((std::ops::Bound::Excluded(start.as_slice()), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, _)| k.clone());
            let end = match end {
                Some(e) if e.as_slice() < hi => e,
                _ => hi.to_vec(),
            };
            out.push((start, end.clone(), db.as_str()));
            start = end;
        }
        out
    }

    /// Every database this namespace can reach.
    pub fn databases(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.starts.values().map(String::as_str).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::globals::key::encode;
    use crate::globals::reference::parse;
    use crate::namespace::mapping;

    fn key(r: &str) -> Vec<u8> {
        encode(&parse(r).unwrap()).unwrap()
    }

    fn routing() -> Routing {
        let m = |s: &str, db: &str| (mapping::parse(s).unwrap(), db.to_string());
        Routing::new(
            "USER",
            &[m("Log(2024):(2025)", "ARCHIVE"), m("Company*", "COMPANY"), m("CompanyX", "SPECIAL"), m("Comp*", "C")],
        )
    }

    #[test]
    fn specific_mappings_win() {
        let r = routing();
        assert_eq!(r.route(&key("^x(1)")), "USER");
        assert_eq!(r.route(&key("^Company(1,\"a\")")), "COMPANY");
        assert_eq!(r.route(&key("^Companies")), "C");
        assert_eq!(r.route(&key("^CompanyAB")), "COMPANY");
        assert_eq!(r.route(&key("^CompanyX")), "SPECIAL");
        assert_eq!(r.route(&key("^CompanyXY")), "COMPANY");
        assert_eq!(r.route(&key("^Compo")), "C");
        assert_eq!(r.route(&key("^Log(2024,5)")), "ARCHIVE");
        assert_eq!(r.route(&key("^Log(2024.5)")), "ARCHIVE");
        assert_eq!(r.route(&key("^Log(2025)")), "USER");
        assert_eq!(r.route(&key("^Log(2023)")), "USER");
        assert_eq!(r.route(&key("^Log")), "USER");
    }

    #[test]
    fn pieces_cover_a_range_exactly() {
        let r = routing();
        let lo = key("^Log");
        let hi = crate::globals::key::subtree_end(&lo);
        let p = r.pieces(&lo, &hi);
        let dbs: Vec<&str> = p.iter().map(|x| x.2).collect();
        assert_eq!(dbs, vec!["USER", "ARCHIVE", "USER"]);
        assert_eq!(p[0].0, lo);
        assert_eq!(p[2].1, hi);
        for w in p.windows(2) {
            assert_eq!(w[0].1, w[1].0);
        }
    }
}
