//! The `mirrorlab` binary's own surface, run as a person or a script runs it: help with
//! examples for every verb, shell completions, the man page, finding the lab directory
//! from a subdirectory, and the shapes of the JSON documents that need no running lab.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn mirrorlab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirrorlab"))
        .current_dir(dir)
        .env_remove("MIRRORLAB_LAB_DIR")
        .args(args)
        .output()
        .expect("run mirrorlab")
}

fn stdout_ok(dir: &Path, args: &[&str]) -> String {
    let out = mirrorlab(dir, args);
    assert!(out.status.success(), "mirrorlab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The verbs `mirrorlab --help` lists (its `Commands:` block), without `help`.
fn verbs() -> Vec<String> {
    let help = stdout_ok(Path::new("."), &["--help"]);
    let block = help.split("Commands:\n").nth(1).expect("a Commands: block").split("\n\n").next().unwrap();
    let verbs: Vec<String> = block
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|v| *v != "help")
        .map(str::to_string)
        .collect();
    assert!(verbs.len() >= 20, "{verbs:?}");
    verbs
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().expect("an object").keys().map(String::as_str).collect();
    k.sort();
    k
}

#[test]
fn every_verb_has_examples_and_a_description_for_every_argument() {
    for verb in verbs() {
        let help = stdout_ok(Path::new("."), &[&verb, "--help"]);
        let examples =
            help.split("Examples:\n").nth(1).unwrap_or_else(|| panic!("{verb} --help has no examples:\n{help}"));
        assert!(
            examples.lines().all(|l| l.trim().is_empty()
                || l.trim_start().starts_with("mirrorlab ")
                || l.trim_start().starts_with("echo ")),
            "{verb}:\n{examples}"
        );
        assert!(
            examples.contains(&format!("mirrorlab {verb}")) || examples.contains(&format!("| mirrorlab {verb}")),
            "{verb}'s examples use another verb:\n{examples}"
        );
        // clap prints an argument with no description as its name alone on a line.
        for line in help.split("Examples:").next().unwrap().lines() {
            let t = line.trim();
            let bare = (t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
                && !t.contains("  ")
                && line.starts_with("  ");
            assert!(!bare, "{verb}: an argument without a description: {line:?}\n{help}");
        }
    }
}

#[test]
fn the_global_options_have_their_own_heading() {
    let help = stdout_ok(Path::new("."), &["status", "--help"]);
    let global = help.split("Global options:\n").nth(1).unwrap_or_else(|| panic!("no Global options heading:\n{help}"));
    for flag in ["--lab-dir", "--lab", "--json", "--target", "--var"] {
        assert!(global.contains(flag), "{flag} is not under Global options:\n{help}");
    }
    assert!(!help.split("Global options:").next().unwrap().contains("--lab-dir"), "{help}");
}

#[test]
fn completions_know_every_verb() {
    let verbs = verbs();
    let bash = stdout_ok(Path::new("."), &["completions", "bash"]);
    assert!(bash.contains("complete -F _mirrorlab"), "{bash}");
    for verb in &verbs {
        assert!(bash.contains(&format!("mirrorlab,{verb})")), "bash completion lacks {verb}");
    }
    let zsh = stdout_ok(Path::new("."), &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef mirrorlab") && zsh.contains("failover"), "{zsh}");
    let fish = stdout_ok(Path::new("."), &["completions", "fish"]);
    assert!(fish.contains("complete -c mirrorlab") && fish.contains("partition"), "{fish}");
    assert!(!mirrorlab(Path::new("."), &["completions", "tcsh"]).status.success());
}

#[test]
fn the_man_page_renders_with_every_verb_and_its_examples() {
    let page = stdout_ok(Path::new("."), &["man"]);
    assert!(page.contains("\n.TH mirrorlab 1 "), "{}", &page[..page.len().min(200)]);
    for verb in verbs() {
        assert!(page.contains(&format!(".SS \"mirrorlab {verb}\"")), "no entry for {verb}");
    }
    let has_man = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("man").is_file()));
    if !has_man {
        eprintln!("`man` is not installed: checked the roff text only");
        return;
    }
    let mut child = Command::new("man")
        .args(["-l", "-"])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l - failed: {warnings}");
    assert!(warnings.trim().is_empty(), "man warned: {warnings}");
    assert!(shown.contains("GLOBAL OPTIONS") && shown.contains("EXAMPLES"), "{shown}");
    assert!(shown.contains("mirrorlab partition mirrora --from mirrorb"), "{shown}");
}

#[test]
fn the_lab_directory_is_found_from_a_subdirectory_and_errors_name_it() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().canonicalize().unwrap();
    let sub = root.join("notes/today");
    std::fs::create_dir_all(&sub).unwrap();
    // None anywhere: the current directory's, named.
    let out = mirrorlab(&sub, &["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("no lab under {}", sub.join(".mirrorlab").display())), "{err}");
    // One above: that one.
    std::fs::create_dir_all(root.join(".mirrorlab")).unwrap();
    let out = mirrorlab(&sub, &["status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("no lab under {}:", root.join(".mirrorlab").display())), "{err}");
    let ls = stdout_ok(&sub, &["ls"]);
    assert!(ls.contains(&root.join(".mirrorlab").display().to_string()), "{ls}");
    // --lab-dir still wins.
    let out = mirrorlab(&sub, &["--lab-dir", "elsewhere", "status"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lab under elsewhere"));
}

#[test]
fn json_documents_carry_their_schema_version() {
    let t = tempfile::tempdir().unwrap();
    let ls: Value = serde_json::from_str(&stdout_ok(t.path(), &["--json", "ls"])).unwrap();
    assert_eq!(keys(&ls), ["labs", "ok", "schema_version"]);
    assert_eq!(ls["schema_version"], 1);
    let pb = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/phonebook.yaml");
    let v: Value = serde_json::from_str(&stdout_ok(t.path(), &["--json", "validate", pb.to_str().unwrap()])).unwrap();
    assert_eq!(keys(&v), ["lab", "members", "ok", "schema_version"]);
    let plan: Value = serde_json::from_str(&stdout_ok(t.path(), &["--json", "plan", pb.to_str().unwrap()])).unwrap();
    assert_eq!(keys(&plan), ["changes", "ok", "schema_version"]);
    let out = mirrorlab(t.path(), &["--json", "status"]);
    assert!(!out.status.success());
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(keys(&err), ["error", "ok", "schema_version"]);
}
