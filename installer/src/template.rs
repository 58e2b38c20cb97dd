//! Template rendering: `{{vars.x}}`, `{{env.X}}` and `{{default env.X "fallback"}}`, with
//! handlebars in strict mode, before the YAML is parsed.
//!
//! The manifest's `vars:` block is read first (it must be plain YAML), then the whole text
//! is rendered. Every expression is checked before rendering so that *all* undefined
//! variables are reported with their line and column, not only the first one handlebars
//! trips on. Rendered values may not contain line breaks: lines stay where they were
//! written, so positions found in the rendered YAML are positions in the file.

use crate::problem::{Pos, Problem};
use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

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

/// Renders `text`; on failure every problem found.
pub fn render(text: &str, inputs: &Inputs) -> Result<String, Vec<Problem>> {
    let (vars, mut problems) = read_vars(text);
    let mut vars = vars;
    for (k, v) in &inputs.overrides {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    let env: Map<String, Value> = inputs.env.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let context = serde_json::json!({ "vars": vars, "env": env });
    problems.extend(check_expressions(text, &context));
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb.register_helper("default", Box::new(default_helper));
    let rendered = hb.render_template(text, &context).map_err(|e| {
        let pos = Pos { line: e.line_no.unwrap_or(1), column: e.column_no.unwrap_or(1) };
        vec![Problem::new(pos, format!("template error: {}", e.reason())).hint("see docs/manifest.md, Templates")]
    })?;
    if rendered.lines().count() != text.lines().count() {
        return Err(vec![Problem::new(Pos { line: 1, column: 1 }, "a template value contains a line break")
            .hint("variables must be single-line values")]);
    }
    Ok(rendered)
}

/// `{{default PATH "fallback"}}`: the value at PATH when it exists, else the fallback.
fn default_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h.param(0).filter(|p| !p.is_value_missing()).map(|p| p.value().clone());
    let fallback =
        h.param(1).map(|p| p.value().clone()).ok_or(RenderErrorReason::ParamNotFoundForIndex("default", 1))?;
    let v = value.unwrap_or(fallback);
    out.write(&scalar_text(&v))?;
    Ok(())
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
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

/// Every `{{...}}` expression: it must be `vars.NAME`, `env.NAME` or
/// `default (vars|env).NAME "fallback"`, and a plain reference must resolve.
fn check_expressions(text: &str, context: &Value) -> Vec<Problem> {
    let mut problems = vec![];
    let mut count = 0;
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            count += 1;
            let pos = Pos { line: i + 1, column: offset + open + 1 };
            if count > MAX_EXPRESSIONS {
                problems.push(Problem::new(pos, format!("more than {MAX_EXPRESSIONS} template expressions")));
                return problems;
            }
            let Some(close) = rest[open..].find("}}") else {
                problems.push(
                    Problem::new(pos, "`{{` without `}}` on the same line").hint("an expression fits on one line"),
                );
                break;
            };
            let expr = rest[open + 2..open + close].trim();
            if let Some(p) = check_one(expr, context) {
                problems.push(Problem::new(pos, p.0).hint(p.1));
            }
            offset += open + close + 2;
            rest = &rest[open + close + 2..];
        }
    }
    problems
}

fn check_one(expr: &str, context: &Value) -> Option<(String, String)> {
    let words: Vec<&str> = expr.split_whitespace().collect();
    let usage = "use {{vars.NAME}}, {{env.NAME}} or {{default env.NAME \"fallback\"}}".to_string();
    match words.as_slice() {
        [path] => {
            let (scope, name) = path.split_once('.')?;
            if !matches!(scope, "vars" | "env") || name.is_empty() || name.contains('.') {
                return Some((format!("unsupported template expression `{{{{{expr}}}}}`"), usage));
            }
            if context[scope].get(name).is_none() {
                let hint = if scope == "vars" {
                    format!("define `{name}` under `vars:` or pass --var {name}=VALUE")
                } else {
                    format!("set the environment variable {name}, or write {{{{default env.{name} \"VALUE\"}}}}")
                };
                return Some((format!("undefined template variable `{path}`"), hint));
            }
            None
        }
        ["default", path, fallback] if fallback.len() >= 2 && fallback.starts_with('"') && fallback.ends_with('"') => {
            match path.split_once('.') {
                Some(("vars" | "env", name)) if !name.is_empty() && !name.contains('.') => None,
                _ => Some((format!("unsupported template expression `{{{{{expr}}}}}`"), usage)),
            }
        }
        _ => Some((format!("unsupported template expression `{{{{{expr}}}}}`"), usage)),
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
}
