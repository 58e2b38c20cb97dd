//! Template rendering: `{{vars.x}}`, `{{env.X}}` and `{{default env.X "fallback"}}`,
//! substituted before the YAML is parsed.
//!
//! The manifest's `vars:` block is read first (it must be plain YAML). Every expression is
//! checked before anything is substituted, so that *all* undefined variables are reported
//! with their line and column, not only the first one. Rendered values may not contain
//! line breaks: lines stay where they were written, so positions found in the rendered YAML
//! are positions in the file.
//!
//! A substituted value is data, never structure: it stays one YAML scalar whatever it
//! holds. The manifest is first rendered with a *placeholder* per expression (a plain
//! word as long as the expression, so positions in this skeleton are the file's). The
//! skeleton's parse says in which kind of scalar each expression sits; values going into
//! a quoted scalar are escaped for that quoting. Then both texts are parsed and compared:
//! the rendered document must have the skeleton's shape, and every scalar holding
//! placeholders must read as exactly the values written in their place. A value that adds
//! a key, a list, a mapping, an anchor, a tag or a comment, or that breaks the syntax, is
//! reported with its variable and the expression's position.

use crate::problem::{Pos, Problem};
use serde_json::{Map, Value};
use serde_yaml::Value as Yaml;
use std::collections::BTreeMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most template expressions in one manifest.
pub const MAX_EXPRESSIONS: usize = 4096;

/// What templates may refer to.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    /// `--var name=value` overrides of the manifest's `vars:`.
    pub overrides: BTreeMap<String, String>,
    /// The environment (`env.X`); a map so tests stay independent of the real one.
    pub env: BTreeMap<String, String>,
}

impl Inputs {
    pub fn from_process(overrides: BTreeMap<String, String>) -> Inputs {
        Inputs { overrides, env: std::env::vars().collect() }
    }
}

/// One `{{...}}` of the manifest, resolved.
#[derive(Debug)]
struct Expr {
    pos: Pos,
    /// Byte range of `{{...}}` in the text.
    start: usize,
    end: usize,
    /// `env.X` or `vars.x`: what a message names.
    variable: String,
    value: String,
}

const HINT_SCALAR: &str = "a template value is inserted as one YAML value: change the value, or quote the \
     expression (\"{{...}}\") so it is read as a string";

/// Renders `text`; on failure every problem found.
pub fn render(text: &str, inputs: &Inputs) -> Result<String, Vec<Problem>> {
    let (vars, mut problems) = read_vars(text);
    let mut vars = vars;
    for (k, v) in &inputs.overrides {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    let env: Map<String, Value> = inputs.env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let context = serde_json::json!({ "vars": vars, "env": env });
    let exprs = scan(text, &context, &mut problems);
    for e in &exprs {
        if e.value.contains(['\n', '\r']) {
            problems.push(
                Problem::new(e.pos, format!("the value of `{}` contains a line break", e.variable))
                    .hint("variables must be single-line values"),
            );
        } else if e.value.contains("{{") {
            problems.push(
                Problem::new(e.pos, format!("the value of `{}` contains `{{{{`", e.variable))
                    .hint("a value is data, never a template: remove the `{{`"),
            );
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if exprs.is_empty() {
        return Ok(text.to_string());
    }
    let Some(prefix) = placeholder_prefix(text) else {
        return Err(vec![Problem::new(Pos { line: 1, column: 1 }, "the manifest uses every placeholder word")
            .hint("the manifest contains every three-letter word; it cannot be rendered")]);
    };
    let tokens: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{prefix}{i:04}{}", "_".repeat((e.end - e.start).saturating_sub(prefix.len() + 4))))
        .collect();
    let skeleton = splice(text, &exprs, |i, _| tokens[i].clone());
    let styles = scalar_styles(&skeleton, &tokens);
    // Only a double-quoted scalar can carry a character YAML does not print (escaped).
    let unprintable: Vec<Problem> = exprs
        .iter()
        .zip(&styles)
        .filter(|(e, style)| **style != Some(TScalarStyle::DoubleQuoted) && !e.value.chars().all(printable))
        .map(|(e, _)| {
            let c = e.value.chars().find(|c| !printable(*c)).unwrap_or_default();
            Problem::new(
                e.pos,
                format!("the value of `{}` contains U+{:04X}, which YAML holds only escaped", e.variable, c as u32),
            )
            .hint("write the expression inside double quotes (\"{{...}}\"), or change the value")
        })
        .collect();
    if !unprintable.is_empty() {
        return Err(unprintable);
    }
    let values: Vec<String> = exprs
        .iter()
        .zip(&styles)
        .map(|(e, style)| match style {
            Some(TScalarStyle::DoubleQuoted) => escape_double(&e.value),
            Some(TScalarStyle::SingleQuoted) => e.value.replace('\'', "''"),
            _ => e.value.clone(),
        })
        .collect();
    let rendered = splice(text, &exprs, |i, _| values[i].clone());
    verify(Texts { source: text, skeleton: &skeleton }, &exprs, &tokens, &values)?;
    Ok(rendered)
}

/// The problem for a YAML syntax error, at the parser's position.
pub fn syntax_problem(e: &serde_yaml::Error) -> Problem {
    let pos = e.location().map(|l| Pos { line: l.line(), column: l.column() }).unwrap_or(Pos { line: 1, column: 1 });
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    Problem::new(pos, format!("YAML syntax: {message}"))
        .hint("check indentation and quoting; a value starting with {{ or * must be quoted")
}

/// A three-letter word the manifest does not contain: placeholders are it, four digits
/// (the expression's index) and `_` up to the expression's length (at least 9 bytes).
fn placeholder_prefix(text: &str) -> Option<String> {
    let letters = || b'a'..=b'z';
    letters()
        .flat_map(|a| letters().flat_map(move |b| letters().map(move |c| [a, b, c])))
        .map(|w| String::from_utf8_lossy(&w).into_owned())
        .find(|w| !text.contains(w.as_str()))
}

fn splice(text: &str, exprs: &[Expr], mut with: impl FnMut(usize, &Expr) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (i, e) in exprs.iter().enumerate() {
        out.push_str(&text[at..e.start]);
        out.push_str(&with(i, e));
        at = e.end;
    }
    out.push_str(&text[at..]);
    out
}

fn escape_double(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if !printable(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A character a value may hold unescaped: YAML's printable set (1.2, 5.1), less the
/// byte-order mark and the characters YAML 1.1 parsers read as line breaks (NEL, LS, PS).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')
}

/// For each placeholder, the style of the scalar it sits in (None: outside any scalar, or
/// a skeleton that does not parse; such values are verified like plain ones).
fn scalar_styles(skeleton: &str, tokens: &[String]) -> Vec<Option<TScalarStyle>> {
    struct Rx<'t> {
        tokens: &'t [String],
        out: Vec<Option<TScalarStyle>>,
    }
    impl MarkedEventReceiver for Rx<'_> {
        fn on_event(&mut self, ev: Event, _: Marker) {
            if let Event::Scalar(text, style, ..) = ev {
                for (i, t) in self.tokens.iter().enumerate() {
                    if text.contains(t.as_str()) {
                        self.out[i] = Some(style);
                    }
                }
            }
        }
    }
    let mut rx = Rx { tokens, out: vec![None; tokens.len()] };
    let _ = Parser::new_from_str(skeleton).load(&mut rx, false);
    rx.out
}

/// Most expressions on one line tried one by one to find the value that breaks it.
const MAX_SUSPECTS: usize = 16;
/// Most values reported as not staying one scalar (each costs a parse of the manifest).
const MAX_BAD_VALUES: usize = 32;

struct Texts<'t> {
    source: &'t str,
    skeleton: &'t str,
}

/// The rendered document has the skeleton's shape and reads every value literally. A
/// value found wrong is reported and put back as its placeholder, and the check runs
/// again, so every wrong value is reported, not only the first.
fn verify(texts: Texts, exprs: &[Expr], tokens: &[String], values: &[String]) -> Result<(), Vec<Problem>> {
    // The skeleton is the manifest as written: its syntax errors are the file's, at the
    // file's positions.
    let sk: Yaml = serde_yaml::from_str(texts.skeleton).map_err(|e| vec![syntax_problem(&e)])?;
    let mut real = vec![true; exprs.len()];
    let mut problems = vec![];
    while problems.len() < MAX_BAD_VALUES {
        let bad = check_once(&texts, &sk, exprs, tokens, values, &real);
        if bad.is_empty() {
            break;
        }
        for (i, message) in bad {
            real[i] = false;
            problems.push(Problem::new(exprs[i].pos, message).hint(HINT_SCALAR));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The values (index, message) that do not stay one scalar when the expressions marked
/// in `real` get their values and the others their placeholders; empty when all do.
fn check_once(
    texts: &Texts,
    sk: &Yaml,
    exprs: &[Expr],
    tokens: &[String],
    values: &[String],
    real: &[bool],
) -> Vec<(usize, String)> {
    let text_for = |i: usize| if real[i] { values[i].clone() } else { tokens[i].clone() };
    let rendered = splice(texts.source, exprs, |i, _| text_for(i));
    let re: Yaml = match serde_yaml::from_str(&rendered) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map(|l| l.line()).unwrap_or(1);
            let mut suspects: Vec<usize> = (0..exprs.len()).filter(|&i| real[i] && exprs[i].pos.line == line).collect();
            if suspects.is_empty() {
                suspects = (0..exprs.len()).rev().find(|&i| real[i] && exprs[i].pos.line < line).into_iter().collect();
            }
            if suspects.is_empty() {
                suspects = (0..exprs.len()).filter(|&i| real[i]).take(1).collect();
            }
            // Several on the line: the ones that break it alone (a bounded number of
            // parses), when any does.
            if (2..=MAX_SUSPECTS).contains(&suspects.len()) {
                let alone: Vec<usize> = suspects
                    .iter()
                    .copied()
                    .filter(|&x| {
                        let one =
                            splice(
                                texts.source,
                                exprs,
                                |i, _| if i == x { values[i].clone() } else { tokens[i].clone() },
                            );
                        serde_yaml::from_str::<Yaml>(&one).is_err()
                    })
                    .collect();
                if !alone.is_empty() {
                    suspects = alone;
                }
            }
            return suspects
                .into_iter()
                .map(|i| (i, format!("the value of `{}` breaks the manifest's YAML syntax here", exprs[i].variable)))
                .collect();
        }
    };
    let subs: Vec<(&str, String)> =
        (0..exprs.len()).map(|i| (tokens[i].as_str(), text_raw(exprs, tokens, real, i))).collect();
    let Err(at) = same_shape(sk, &re, &subs) else { return vec![] };
    let mut inside = vec![];
    collect_tokens(at, tokens, &mut inside);
    inside.retain(|&i| real[i]);
    if inside.is_empty() {
        // The mismatch holds no placeholder (a value that closed a collection early, say):
        // the last expression at or before it in the file is the culprit.
        let pos = first_pos(texts.skeleton, at);
        let i = (0..exprs.len()).filter(|&i| real[i]).rfind(|&i| exprs[i].pos <= pos);
        inside.extend(i.or_else(|| real.iter().position(|&r| r)));
    }
    inside.sort_unstable();
    inside.dedup();
    inside
        .into_iter()
        .map(|i| (i, format!("the value of `{}` would change the manifest's structure here", exprs[i].variable)))
        .collect()
}

/// What a scalar holding placeholder `i` must read as: the raw value, or the placeholder
/// itself while that value is held back.
fn text_raw(exprs: &[Expr], tokens: &[String], real: &[bool], i: usize) -> String {
    if real[i] {
        exprs[i].value.clone()
    } else {
        tokens[i].clone()
    }
}

/// The first node of `sk` that `re` does not match; Ok when they match everywhere.
fn same_shape<'s>(sk: &'s Yaml, re: &Yaml, subs: &[(&str, String)]) -> Result<(), &'s Yaml> {
    match (sk, re) {
        (Yaml::String(s), _) if subs.iter().any(|(t, _)| s.contains(t)) => {
            let mut expected = s.clone();
            for (t, v) in subs {
                expected = expected.replace(t, v);
            }
            let literal = match re {
                Yaml::String(r) => *r == expected,
                // A bare value read as a number, boolean or null: it must read the same
                // alone, with no comment, anchor or tag.
                Yaml::Number(_) | Yaml::Bool(_) | Yaml::Null => {
                    !expected.contains('#')
                        && !expected.trim_start().starts_with(['&', '!', '*', '|', '>', '\'', '"', '%', '@', '`'])
                        && serde_yaml::from_str::<Yaml>(&expected).ok().as_ref() == Some(re)
                }
                _ => false,
            };
            if literal {
                Ok(())
            } else {
                Err(sk)
            }
        }
        (Yaml::Sequence(a), Yaml::Sequence(b)) => {
            for (x, y) in a.iter().zip(b) {
                same_shape(x, y, subs)?;
            }
            if a.len() == b.len() {
                Ok(())
            } else {
                Err(sk)
            }
        }
        (Yaml::Mapping(a), Yaml::Mapping(b)) => {
            for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                same_shape(ka, kb, subs)?;
                same_shape(va, vb, subs)?;
            }
            if a.len() == b.len() {
                Ok(())
            } else {
                Err(sk)
            }
        }
        (Yaml::Tagged(a), Yaml::Tagged(b)) if a.tag == b.tag => same_shape(&a.value, &b.value, subs),
        (a, b) if a == b => Ok(()),
        _ => Err(sk),
    }
}

/// Indexes of the placeholders anywhere in `v`.
fn collect_tokens(v: &Yaml, tokens: &[String], out: &mut Vec<usize>) {
    match v {
        Yaml::String(s) => {
            out.extend(tokens.iter().enumerate().filter(|(_, t)| s.contains(t.as_str())).map(|(i, _)| i))
        }
        Yaml::Sequence(l) => l.iter().for_each(|x| collect_tokens(x, tokens, out)),
        Yaml::Mapping(m) => m.iter().for_each(|(k, x)| {
            collect_tokens(k, tokens, out);
            collect_tokens(x, tokens, out)
        }),
        Yaml::Tagged(t) => collect_tokens(&t.value, tokens, out),
        _ => {}
    }
}

/// Where `node` starts in the skeleton (the file's position): found by its text when it
/// is a scalar, else the start of the document.
fn first_pos(skeleton: &str, node: &Yaml) -> Pos {
    let needle = match node {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => return Pos { line: 1, column: 1 },
    };
    skeleton
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(&needle).map(|c| Pos { line: i + 1, column: c + 1 }))
        .unwrap_or(Pos { line: 1, column: 1 })
}

/// The top-level `vars:` block, read as plain YAML before anything is rendered.
fn read_vars(text: &str) -> (Map<String, Value>, Vec<Problem>) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.starts_with("vars:")) else {
        return (Map::new(), vec![]);
    };
    let mut end = start + 1;
    while end < lines.len() && (lines[end].starts_with([' ', '\t', '#']) || lines[end].trim().is_empty()) {
        end += 1;
    }
    let block = lines[start..end].join("\n");
    let at = Pos { line: start + 1, column: 1 };
    if block.contains("{{") {
        return (
            Map::new(),
            vec![Problem::new(at, "`vars` cannot use templates")
                .hint("vars are read before the manifest is rendered; give plain values")],
        );
    }
    let parsed: Result<BTreeMap<String, Option<BTreeMap<String, serde_yaml::Value>>>, _> = serde_yaml::from_str(&block);
    match parsed {
        Ok(m) => {
            let mut out = Map::new();
            let mut problems = vec![];
            for (k, v) in m.into_values().flat_map(|v| v.unwrap_or_default()) {
                match v {
                    serde_yaml::Value::String(s) => drop(out.insert(k, Value::String(s))),
                    serde_yaml::Value::Number(n) => drop(out.insert(k, Value::String(n.to_string()))),
                    serde_yaml::Value::Bool(b) => drop(out.insert(k, Value::String(b.to_string()))),
                    _ => problems.push(
                        Problem::new(at, format!("variable `{k}` must be a string, number or boolean"))
                            .hint("templates insert text: lists and maps cannot be inserted"),
                    ),
                }
            }
            (out, problems)
        }
        Err(e) => (Map::new(), vec![Problem::new(at, format!("`vars` must map names to values: {e}"))]),
    }
}

/// Every `{{...}}` expression, resolved: it must be `vars.NAME`, `env.NAME` or
/// `default (vars|env).NAME "fallback"`, and a plain reference must resolve. Problems are
/// added to `problems`; an expression with a problem is left out.
fn scan(text: &str, context: &Value, problems: &mut Vec<Problem>) -> Vec<Expr> {
    let mut out = vec![];
    let mut count = 0;
    let mut line_start = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let mut offset = 0;
        while let Some(open) = line[offset..].find("{{").map(|o| offset + o) {
            count += 1;
            let pos = Pos { line: i + 1, column: open + 1 };
            if count > MAX_EXPRESSIONS {
                problems.push(Problem::new(pos, format!("more than {MAX_EXPRESSIONS} template expressions")));
                return out;
            }
            let Some(close) = line[open..].find("}}").map(|c| open + c) else {
                problems.push(
                    Problem::new(pos, "`{{` without `}}` on the same line").hint("an expression fits on one line"),
                );
                break;
            };
            let expr = line[open + 2..close].trim();
            match resolve(expr, context) {
                Ok((variable, value)) => {
                    out.push(Expr { pos, start: line_start + open, end: line_start + close + 2, variable, value })
                }
                Err((message, hint)) => problems.push(Problem::new(pos, message).hint(hint)),
            }
            offset = close + 2;
        }
        line_start += line.len();
    }
    out
}

/// The variable an expression names and its value, or what is wrong with it.
fn resolve(expr: &str, context: &Value) -> Result<(String, String), (String, String)> {
    let words: Vec<&str> = expr.split_whitespace().collect();
    let unsupported = || {
        (
            format!("unsupported template expression `{{{{{expr}}}}}`"),
            "use {{vars.NAME}}, {{env.NAME}} or {{default env.NAME \"fallback\"}}".to_string(),
        )
    };
    let split = |path: &str| match path.split_once('.') {
        Some((scope @ ("vars" | "env"), name)) if !name.is_empty() && !name.contains('.') => {
            Some((scope.to_string(), name.to_string()))
        }
        _ => None,
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match words.as_slice() {
        [path] => {
            let (scope, name) = split(path).ok_or_else(unsupported)?;
            match context[&scope].get(&name) {
                Some(v) => Ok((path.to_string(), text(v))),
                None => {
                    let hint = if scope == "vars" {
                        format!("define `{name}` under `vars:` or pass --var {name}=VALUE")
                    } else {
                        format!("set the environment variable {name}, or write {{{{default env.{name} \"VALUE\"}}}}")
                    };
                    Err((format!("undefined template variable `{path}`"), hint))
                }
            }
        }
        ["default", path, fallback] if fallback.len() >= 2 && fallback.starts_with('"') && fallback.ends_with('"') => {
            let (scope, name) = split(path).ok_or_else(unsupported)?;
            let value = match context[&scope].get(&name) {
                Some(v) => text(v),
                None => fallback[1..fallback.len() - 1].to_string(),
            };
            Ok((path.to_string(), value))
        }
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(env: &[(&str, &str)], overrides: &[(&str, &str)]) -> Inputs {
        Inputs {
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn vars_env_and_defaults_are_rendered() {
        let text =
            "vars:\n  qos: 2000\nlab: \"{{env.LAB}}\"\nqos_ms: {{vars.qos}}\nport: {{default env.PORT \"1972\"}}\n";
        let out = render(text, &inputs(&[("LAB", "demo")], &[])).unwrap();
        assert_eq!(out, "vars:\n  qos: 2000\nlab: \"demo\"\nqos_ms: 2000\nport: 1972\n");
        let out = render(text, &inputs(&[("LAB", "x"), ("PORT", "2000")], &[("qos", "500")])).unwrap();
        assert!(out.contains("qos_ms: 500\nport: 2000"), "{out}");
    }

    #[test]
    fn every_undefined_variable_is_reported_with_its_position() {
        let text = "lab: {{vars.nope}}\nx: 1\ny: {{env.MISSING}} and {{vars.also}}\n";
        let problems = render(text, &inputs(&[], &[])).unwrap_err();
        let at: Vec<(usize, usize)> = problems.iter().map(|p| (p.pos.line, p.pos.column)).collect();
        assert_eq!(at, vec![(1, 6), (3, 4), (3, 24)]);
        assert!(problems[0].message.contains("vars.nope"));
        assert!(problems[1].hint.as_deref().unwrap().contains("default env.MISSING"));
    }

    #[test]
    fn unsupported_expressions_and_templated_vars_are_refused() {
        let problems = render("a: {{#each x}}\n", &inputs(&[], &[])).unwrap_err();
        assert!(problems[0].message.contains("unsupported"), "{problems:?}");
        let problems = render("vars:\n  a: \"{{env.X}}\"\n", &inputs(&[("X", "1")], &[])).unwrap_err();
        assert!(problems[0].message.contains("cannot use templates"));
    }

    #[test]
    fn values_with_line_breaks_are_refused() {
        let problems = render("a: {{env.X}}\n", &inputs(&[("X", "1\n2")], &[])).unwrap_err();
        assert!(problems[0].message.contains("line break"));
    }

    /// Renders `text` with env X = `value`; the problems' (line, column, message).
    fn with_x(text: &str, value: &str) -> Result<String, Vec<(usize, usize, String)>> {
        render(text, &inputs(&[("X", value)], &[]))
            .map_err(|ps| ps.into_iter().map(|p| (p.pos.line, p.pos.column, p.message)).collect())
    }

    #[test]
    fn values_that_would_add_structure_are_refused_with_their_variable_and_position() {
        let text = "lab: demo\nmembers:\n  - { name: a, type: standalone, ports: { web: {{env.X}} } }\n";
        for value in ["1, evil: 2", "[a, b]", "{a: 1}", "1 # comment", "&anchor 1", "!!str 1", "*alias", "a: b"] {
            let problems = with_x(text, value).unwrap_err();
            assert_eq!(problems.len(), 1, "{value:?}: {problems:?}");
            assert_eq!((problems[0].0, problems[0].1), (3, 48), "{value:?}: {problems:?}");
            assert!(problems[0].2.contains("`env.X`"), "{value:?}: {problems:?}");
        }
        let block = "lab: {{env.X}}\nmembers: []\n";
        for value in ["x\n  evil: 1", "- a", "? a", "'a'", "\"a\"", "|", "a #b"] {
            let problems = with_x(block, value).unwrap_err();
            assert_eq!((problems[0].0, problems[0].1), (1, 6), "{value:?}: {problems:?}");
            assert!(problems[0].2.contains("`env.X`"), "{value:?}: {problems:?}");
        }
    }

    #[test]
    fn quoted_expressions_take_any_single_line_value_literally() {
        for value in ["a\", evil: \"1", "back\\slash", "[a, b]", "{a: 1}", "it's", "# not a comment", "tab\there"] {
            for text in ["lab: \"{{env.X}}\"\n", "lab: '{{env.X}}'\n", "lab: \"x-{{env.X}}-y\"\n"] {
                let out = with_x(text, value).unwrap_or_else(|p| panic!("{text:?} {value:?}: {p:?}"));
                let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
                let expected = if text.contains("x-") { format!("x-{value}-y") } else { value.to_string() };
                assert_eq!(v["lab"].as_str(), Some(expected.as_str()), "{text:?} {value:?} -> {out:?}");
                assert_eq!(v.as_mapping().unwrap().len(), 1, "{out:?}");
            }
        }
    }

    #[test]
    fn plain_values_keep_their_type_and_block_scalars_take_text() {
        let out = with_x("port: {{env.X}}\nname: a-{{env.X}}\n", "1972").unwrap();
        assert_eq!(out, "port: 1972\nname: a-1972\n");
        let out = with_x("script: |\n  set ^X = \"{{env.X}}\"\n  write ^X\n", "v: [1]").unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["script"].as_str(), Some("set ^X = \"v: [1]\"\nwrite ^X\n"));
        assert!(with_x("on: {{env.X}}\n", "true").is_ok());
        assert!(with_x("# {{env.X}} in a comment\nlab: a\n", "a: b").is_ok());
    }

    #[test]
    fn a_value_that_breaks_the_syntax_is_refused_and_the_manifest_s_own_errors_keep_file_positions() {
        let problems = with_x("lab: [{{env.X}}\n", "]").unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].2.starts_with("YAML syntax"), "the skeleton is broken, not the value: {problems:?}");
        let problems = with_x("a: {{env.X}}\nb: [1\n", "x").unwrap_err();
        assert_eq!(problems[0].0, 3, "{problems:?}");
        let problems = with_x("a: [{{env.X}}]\n", "1]]").unwrap_err();
        assert_eq!(problems, vec![(1, 5, "the value of `env.X` breaks the manifest's YAML syntax here".to_string())]);
    }

    #[test]
    fn values_holding_a_template_are_refused() {
        let problems = with_x("lab: \"{{env.X}}\"\n", "{{env.SECRET}}").unwrap_err();
        assert!(problems[0].2.contains("`{{`"), "{problems:?}");
    }

    #[test]
    fn placeholders_avoid_words_the_manifest_contains() {
        let out = with_x("aaa: aab\naac: \"{{env.X}}\"\n", "aaa0000__").unwrap();
        assert_eq!(out, "aaa: aab\naac: \"aaa0000__\"\n");
    }

    /// Regression (found by the manifest fuzz harness): U+007F in a single-quoted value made
    /// the whole manifest unreadable; it is now refused by name, and escaped in double quotes.
    #[test]
    fn control_character_in_a_single_quoted_value_broke_the_yaml() {
        let problems = with_x("lab: '{{env.X}}'\n", "a\u{7f}").unwrap_err();
        assert_eq!(
            problems,
            vec![(1, 7, "the value of `env.X` contains U+007F, which YAML holds only escaped".into())]
        );
        let out = with_x("lab: \"{{env.X}}\"\n", "a\u{7f}").unwrap();
        assert_eq!(out, "lab: \"a\\u007f\"\n");
    }

    /// Regression (found by the manifest fuzz harness): NEL (U+0085) in a double-quoted value
    /// was read as a line break by the YAML parser; it is now escaped.
    #[test]
    fn nel_in_a_double_quoted_value_was_read_as_a_line_break() {
        for c in ['\u{85}', '\u{2028}', '\u{2029}'] {
            let out = with_x("lab: \"x{{env.X}}y\"\n", &c.to_string()).unwrap();
            let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
            assert_eq!(v["lab"].as_str(), Some(format!("x{c}y").as_str()));
        }
    }
}
