//! Random operation sequences against a model: a `BTreeMap` of encoded keys. Checkpoints
//! (cache written to the file) and crash-restarts (recovery from the journal) are among the
//! operations, so the merged cache/file view and recovery are held to the same model.

use super::open;
use crate::globals::key::{encode, first_subscript_after, subtree_end};
use crate::globals::{GlobalRef, Number, Subscript};
use crate::instance::{Direction, Instance};
use crate::vfs::sim::SimVfs;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
enum Op {
    Set(GlobalRef, Vec<u8>),
    Kill(GlobalRef),
    ZKill(GlobalRef),
    Increment(GlobalRef, i64),
    Get(GlobalRef),
    Data(GlobalRef),
    Order(GlobalRef, Option<Subscript>, bool),
    Query(GlobalRef, bool),
    Checkpoint,
    CrashRestart,
}

fn subscript() -> impl Strategy<Value = Subscript> {
    prop_oneof![
        (-2i64..4).prop_map(|n| Subscript::Number(Number::from(n).to_canonical())),
        prop_oneof![Just("x"), Just("y"), Just("1.5")].prop_map(|s| Subscript::from_bytes(s.into(), 1).unwrap()),
    ]
}

fn reference() -> impl Strategy<Value = GlobalRef> {
    (prop_oneof![Just("a"), Just("b")], prop::collection::vec(subscript(), 0..3))
        .prop_map(|(n, subs)| GlobalRef::new(n, subs).unwrap())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (reference(), prop::collection::vec(any::<u8>(), 0..4)).prop_map(|(r, v)| Op::Set(r, v)),
        1 => reference().prop_map(Op::Kill),
        1 => reference().prop_map(Op::ZKill),
        1 => (reference(), -3i64..4).prop_map(|(r, n)| Op::Increment(r, n)),
        2 => reference().prop_map(Op::Get),
        2 => reference().prop_map(Op::Data),
        2 => (reference(), prop::option::of(subscript()), any::<bool>()).prop_map(|(r, s, b)| Op::Order(r, s, b)),
        2 => (reference(), any::<bool>()).prop_map(|(r, b)| Op::Query(r, b)),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::CrashRestart),
    ]
}

fn key(r: &GlobalRef) -> Vec<u8> {
    encode(r).unwrap()
}

fn model_order(
    m: &BTreeMap<Vec<u8>, Vec<u8>>,
    parent: &GlobalRef,
    after: Option<&Subscript>,
    backward: bool,
) -> Option<Subscript> {
    let pk = key(parent);
    let mut children: Vec<(Vec<u8>, Subscript)> = m
        .range(pk.clone()..subtree_end(&pk))
        .filter(|(k, _)| k.len() > pk.len())
        .map(|(k, _)| {
            let (s, end) = first_subscript_after(&pk, k).unwrap();
            (k[..end].to_vec(), s)
        })
        .collect();
    children.dedup_by(|a, b| a.0 == b.0);
    let here = after.map(|s| key(&parent.child(s.clone()).unwrap()));
    let found = match (&here, backward) {
        (None, false) => children.first(),
        (None, true) => children.last(),
        (Some(h), false) => children.iter().find(|(k, _)| k > h),
        (Some(h), true) => children.iter().rev().find(|(k, _)| k < h),
    };
    found.map(|(_, s)| s.clone())
}

fn model_query(m: &BTreeMap<Vec<u8>, Vec<u8>>, r: &GlobalRef, backward: bool) -> Option<Vec<u8>> {
    let k = key(r);
    let name = crate::globals::key::encode_name(&r.name);
    let end = subtree_end(&name);
    if backward {
        m.range(name..k).next_back().map(|(k, _)| k.clone())
    } else {
        m.range((std::ops::Bound::Excluded(k), std::ops::Bound::Excluded(end))).next().map(|(k, _)| k.clone())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut vfs = Arc::new(SimVfs::new(3));
    let mut i: Arc<Instance> = open(dir.path(), vfs.clone());
    let mut s = i.session();
    let mut m: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Set(r, v) => {
                let _ = i.set(&mut s, &r, &v).unwrap();
                m.insert(key(&r), v);
            }
            Op::Kill(r) => {
                let _ = i.kill(&mut s, &r).unwrap();
                let k = key(&r);
                let doomed: Vec<_> = m.range(k.clone()..subtree_end(&k)).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    m.remove(&k);
                }
            }
            Op::ZKill(r) => {
                let _ = i.zkill(&mut s, &r).unwrap();
                m.remove(&key(&r));
            }
            Op::Increment(r, n) => {
                let (got, _) = i.increment(&mut s, &r, Number::from(n)).unwrap();
                let old = m.get(&key(&r)).map(|v| Number::parse_prefix(v)).unwrap_or(Number::ZERO);
                let want = old.add(Number::from(n)).to_canonical();
                prop_assert_eq!(got.to_canonical(), want.clone());
                m.insert(key(&r), want.into_bytes());
            }
            Op::Get(r) => prop_assert_eq!(i.get(&s, &r).unwrap(), m.get(&key(&r)).cloned()),
            Op::Data(r) => {
                let k = key(&r);
                let value = m.contains_key(&k);
                let children = m.range(k.clone()..subtree_end(&k)).any(|(x, _)| x.len() > k.len());
                prop_assert_eq!(i.data(&s, &r).unwrap(), u8::from(value) + 10 * u8::from(children));
            }
            Op::Order(parent, after, backward) => {
                let dir = if backward { Direction::Backward } else { Direction::Forward };
                prop_assert_eq!(
                    i.order(&s, &parent, after.as_ref(), dir).unwrap(),
                    model_order(&m, &parent, after.as_ref(), backward)
                );
            }
            Op::Query(r, backward) => {
                let dir = if backward { Direction::Backward } else { Direction::Forward };
                let got = i.query(&s, &r, dir).unwrap().map(|g| key(&g));
                prop_assert_eq!(got, model_query(&m, &r, backward));
            }
            Op::Checkpoint => i.checkpoint().unwrap(),
            Op::CrashRestart => {
                i.journal().flush().unwrap();
                drop(i);
                vfs = Arc::new(vfs.crash());
                i = open(dir.path(), vfs.clone());
                s = i.session();
            }
        }
    }
    // Whatever happened, the whole content matches the model.
    let mut content = BTreeMap::new();
    for name in ["a", "b"] {
        let mut cur = GlobalRef::new(name, vec![]).unwrap();
        if let Some(v) = i.get(&s, &cur).unwrap() {
            content.insert(key(&cur), v);
        }
        while let Some(next) = i.query(&s, &cur, Direction::Forward).unwrap() {
            content.insert(key(&next), i.get(&s, &next).unwrap().expect("query returns nodes with values"));
            cur = next;
        }
    }
    prop_assert_eq!(content, m);
    Ok(())
}

proptest! {
    #![proptest_config(crate::fuzz::config(48, 0x4d4f444c))]
    #[test]
    fn random_operations_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
