//! Fuzz harness of the manifest loader, template rendering included (`load_str`,
//! `template::render`): mutated corpus manifests (the example manifests, the golden files'
//! manifests and `tests/fuzz-corpus/`) and random template values, on a fixed seed.
//!
//! Properties: loading never panics; a refusal lists at least one problem, each at a line
//! of the file; a loaded manifest keeps the schema's limits; a template value is either
//! taken as exactly one scalar or refused with its variable's name; a manifest written from
//! a generated lab loads back as that lab.
//!
//! Longer runs: `PROPTEST_CASES=20000 cargo test -p mirrorlab-installer --test fuzz_manifest`;
//! another seed: `PROPTEST_RNG_SEED=<n>`.

use installer::manifest::{load_str, MemberType};
use installer::template::{render, Inputs};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::path::{Path, PathBuf};

fn config(cases: u32, seed: u64) -> Config {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    Config {
        cases: env("PROPTEST_CASES").map(|c| c.min(u64::from(u32::MAX)) as u32).unwrap_or(cases),
        rng_seed: RngSeed::Fixed(env("PROPTEST_RNG_SEED").unwrap_or(seed)),
        failure_persistence: None,
        ..Config::default()
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every manifest of the corpus, in name order.
fn corpus() -> Vec<String> {
    let mut out = vec![];
    for dir in ["../manifests", "tests/fuzz-corpus", "tests/golden"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "txt"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let manifest = text.split("==== expected ====\n").next().unwrap_or_default();
            out.push(manifest.to_string());
        }
    }
    assert!(out.len() >= 10, "the manifest corpus is missing");
    out
}

fn inputs() -> Inputs {
    let env = [("LAB", "fuzz"), ("WEB", "8080"), ("V", "v\"al'ue"), ("EMPTY", "")];
    Inputs { env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), overrides: Default::default() }
}

/// Edits that matter to YAML and templates.
fn edit() -> impl Strategy<Value = (prop::sample::Index, u8, &'static str)> {
    let pieces: &'static [&'static str] = &[
        "{{",
        "}}",
        "{{env.V}}",
        "{{vars.x}}",
        "{{env.EMPTY}}",
        "{{default env.NOPE \"[1]\"}}",
        "\n",
        "\n  ",
        ": ",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\"",
        "'",
        "#",
        "&a ",
        "*a",
        "!!str ",
        "|",
        ">",
        "---\n",
        "\t",
        "\u{e9}",
        "? ",
        "<<: ",
        "~",
        "0x1F",
        "99999999999999999999",
    ];
    (any::<prop::sample::Index>(), 0u8..3, prop::sample::select(pieces))
}

fn mutated() -> impl Strategy<Value = String> {
    (prop::sample::select(corpus()), prop::collection::vec(edit(), 0..6)).prop_map(|(base, edits)| {
        let mut text = base.into_bytes();
        for (at, op, piece) in edits {
            let i = at.index(text.len() + 1);
            match op {
                0 => drop(text.splice(i..i, piece.bytes())),
                1 => drop(text.drain(i..(i + piece.len()).min(text.len()))),
                _ => text.truncate(i),
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// Loads `text` in an empty directory (no seed exists there).
fn load(text: &str) -> Result<installer::manifest::Manifest, installer::problem::Problems> {
    load_str("fuzz.yaml", text, Path::new("/nonexistent-mirrorlab-fuzz-base"), &inputs())
}

/// Single-line values: any characters, or few of those YAML and parsers care about.
fn template_value() -> impl Strategy<Value = String> {
    "[^\n\r]{0,24}|[\u{0}-\u{ff}\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff} \"':,#{}\\[\\]&*!|>%@`-]{0,8}"
        .prop_map(|v| v.replace(['\n', '\r'], " "))
}

proptest! {
    #![proptest_config(config(1000, 0x6d61_6e69))]

    #[test]
    fn mutated_manifests_load_or_say_where_they_are_wrong(text in mutated()) {
        let lines = text.lines().count().max(1);
        match load(&text) {
            Ok(m) => {
                prop_assert!(!m.members.is_empty() && m.members.len() <= 16);
                prop_assert!(m.databases.len() <= 64 && m.namespaces.len() <= 64 && m.data.len() <= 64);
            }
            Err(problems) => {
                prop_assert!(!problems.list.is_empty());
                for p in &problems.list {
                    prop_assert!(p.pos.line >= 1 && p.pos.line <= lines + 1, "{} at line {} of {lines}", p.message, p.pos.line);
                    prop_assert!(p.pos.column >= 1);
                }
                prop_assert!(problems.to_string().ends_with("nothing was changed"));
            }
        }
    }

    #[test]
    fn a_template_value_is_one_scalar_or_refused_by_name(value in template_value(), context in 0usize..6) {
        prop_assume!(!value.contains("{{"));
        let (text, quoted) = [
            ("a: {{env.X}}\nb: 1\n", false),
            ("a: \"{{env.X}}\"\nb: 1\n", true),
            ("a: '{{env.X}}'\nb: 1\n", true),
            ("a: { k: {{env.X}}, l: 2 }\nb: 1\n", false),
            ("a: [ {{env.X}}, 2 ]\nb: 1\n", false),
            ("a: \"pre {{env.X}} post\"\nb: 1\n", true),
        ][context];
        let inputs = Inputs { env: [("X".to_string(), value.clone())].into_iter().collect(), overrides: Default::default() };
        match render(text, &inputs) {
            Ok(out) => {
                let doc: serde_yaml::Value = serde_yaml::from_str(&out).expect("a rendered manifest parses");
                let skeleton: serde_yaml::Value = serde_yaml::from_str(&text.replace("{{env.X}}", "placeholder")).unwrap();
                let map = doc.as_mapping().expect("a mapping");
                prop_assert_eq!(map.len(), 2, "{:?} -> {:?}", value, out);
                prop_assert_eq!(&doc["b"], &skeleton["b"]);
                let a = &doc["a"];
                let node = match context {
                    3 => { prop_assert_eq!(a.as_mapping().map(|m| m.len()), Some(2)); &a["k"] }
                    4 => { prop_assert_eq!(a.as_sequence().map(|s| s.len()), Some(2)); &a[0] }
                    _ => a,
                };
                prop_assert!(!node.is_mapping() && !node.is_sequence() && !matches!(node, serde_yaml::Value::Tagged(_)), "{:?} -> {:?}", value, out);
                if quoted {
                    let expected = if context == 5 { format!("pre {value} post") } else { value.clone() };
                    prop_assert_eq!(node.as_str(), Some(expected.as_str()));
                } else if let Some(s) = node.as_str() {
                    prop_assert_eq!(s, value.as_str());
                }
            }
            Err(problems) => {
                let double = matches!(context, 1 | 5);
                prop_assert!(!double, "a double-quoted value is refused: {:?} {:?}", value, problems);
                prop_assert!(!quoted || value.chars().any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}')),
                    "a quoted printable value is refused: {:?} {:?}", value, problems);
                prop_assert!(problems.iter().any(|p| p.message.contains("`env.X`")), "{:?}", problems);
            }
        }
    }

    #[test]
    fn a_written_lab_loads_back(
        members in prop::collection::btree_set("[a-z][a-z0-9_-]{0,8}", 1..5),
        dbs in prop::collection::btree_set("[A-Z][A-Z0-9_]{0,8}", 0..4),
        qos in 300u32..60_000,
        with_arbiter in any::<bool>(),
    ) {
        let members: Vec<String> = members.into_iter().collect();
        let upper: std::collections::BTreeSet<String> = members.iter().map(|m| m.to_ascii_uppercase()).collect();
        prop_assume!(upper.len() == members.len());
        let dbs: Vec<String> = dbs.into_iter().filter(|d| d != "USER").collect();
        let mut text = String::from("lab: fuzz\n");
        if with_arbiter {
            text.push_str("arbiter: {}\n");
        }
        text.push_str("members:\n");
        for (i, m) in members.iter().enumerate() {
            let t = if i < 2 { "failover" } else { "dr" };
            text.push_str(&format!("  - {{ name: {m}, type: {t} }}\n"));
        }
        text.push_str("databases:\n");
        for d in &dbs {
            text.push_str(&format!("  - {{ name: {d}, mirrored: true }}\n"));
        }
        text.push_str(&format!("mirror: {{ name: FUZZ, qos_ms: {qos}, primary: {} }}\n", members[0]));
        let m = load(&text).unwrap_or_else(|p| panic!("{text}\n{p}"));
        prop_assert_eq!(m.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(), members.iter().map(|m| m.to_ascii_uppercase()).collect::<Vec<_>>());
        prop_assert_eq!(m.members.iter().filter(|m| m.member_type == MemberType::Failover).count(), members.len().min(2));
        prop_assert_eq!(m.databases.iter().map(|d| d.name.clone()).collect::<Vec<_>>(), dbs);
        let mirror = m.mirror.expect("a mirror");
        prop_assert_eq!((mirror.qos_ms, mirror.arbiter, mirror.primary), (qos, with_arbiter, members[0].to_ascii_uppercase()));
        prop_assert_eq!(m.arbiter.is_some(), with_arbiter);
    }
}

#[test]
fn every_corpus_manifest_loads_or_is_refused_without_panicking() {
    for text in corpus() {
        let _ = load(&text);
    }
}

#[test]
fn the_fuzz_corpus_manifests_are_valid() {
    for name in ["templated-pair.yaml", "block-styles.yaml"] {
        let text = std::fs::read_to_string(root().join("tests/fuzz-corpus").join(name)).unwrap();
        if let Err(p) = load(&text) {
            panic!("{name}:\n{p}");
        }
    }
}

/// Nested aliases that would expand to hundreds of millions of nodes: refused, quickly.
#[test]
fn an_alias_bomb_is_refused() {
    let mut text = String::from("lab: bomb\nmembers: [{ name: a, type: standalone }]\nvars:\n  x: 1\n");
    text.push_str("data:\n  - namespace: USER\n    globals:\n      '^A': &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!("      '^A{i}': &a{i} [{}]\n", vec![prev; 9].join(", ")));
    }
    let started = std::time::Instant::now();
    assert!(load(&text).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}
