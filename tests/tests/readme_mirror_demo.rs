//! The README's mirroring demo, run as written: the block between the `mirror-demo`
//! markers, by bash, with the binaries under test first on PATH (the block's first line,
//! which builds them in release mode, is the test's own build instead). Only its port
//! numbers are moved, to ports free at the time and below the kernel's ephemeral range:
//! the README's 52773-52774 lie inside that range, where any outgoing connection or a
//! Docker-published port of another test could hold them.

use mirrorlab_tests::bin;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Kills the demo's whole process group (its engines and agents run in the background)
/// when the test ends, passing or failing.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0)]).status();
    }
}

fn demo_block() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("<!-- mirror-demo:start -->").expect("the README's demo start marker");
    let end = readme.find("<!-- mirror-demo:end -->").expect("the README's demo end marker");
    let block = &readme[start..end];
    let body = block.split_once("```sh\n").expect("a sh block").1.rsplit_once("```").expect("the block's end").0;
    let (build, rest) = body.split_once('\n').expect("a build line, then the demo");
    assert!(build.starts_with("cargo build --release --bins"), "the block starts by building: {build}");
    rest.to_string()
}

/// The ports the README's demo uses.
const DEMO_PORTS: [u16; 9] = [1972, 1973, 2188, 2189, 2190, 2191, 2192, 52773, 52774];

/// `script` with each of [`DEMO_PORTS`] replaced by a free port from 20000 up (probing
/// from an offset derived from `seed`, so parallel runs look in different places).
fn with_free_ports(script: &str, seed: &str) -> String {
    let offset = seed.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 8000;
    let mut candidates = (0..8000u32).map(|i| 20_000 + ((offset + i) % 8000) as u16);
    let mut out = script.to_string();
    for port in DEMO_PORTS {
        let free = candidates
            .find(|&p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
            .expect("a free port between 20000 and 28000");
        out = replace_number(&out, &port.to_string(), &free.to_string());
    }
    out
}

/// Replaces `from` where it stands as a whole number (not inside a longer one).
fn replace_number(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + from.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(|c| c.is_ascii_digit()) || after.is_some_and(|c| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_readme_mirror_demo_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let script = with_free_ports(&demo_block(), &dir.path().display().to_string());
    let bin_dir = bin("engine").parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    // Output goes to a file: the engines and agents the script leaves in the background
    // would keep a pipe open after the script's own exit.
    let log_path = dir.path().join("demo.out");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new("bash")
        .args(["-e", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("run bash");
    let _group = Group(child.id() as i32);
    let status = child.wait().unwrap();
    let out = std::fs::read_to_string(&log_path).unwrap();
    assert!(status.success(), "the demo failed ({status}):\n{out}");
    assert!(out.contains("written on the primary"), "the backup reads the primary's write:\n{out}");
    assert!(out.contains("<PROTECT>"), "the backup refuses writes:\n{out}");
    assert!(out.contains("this member MIRRORB (Failover), Primary"), "the backup takes over:\n{out}");
    assert!(out.contains("^Demo(1)=\"written on the primary\""), "no acknowledged write lost:\n{out}");
    assert!(out.contains("^Demo(2)=\"written after the failover\""), "the new primary takes writes:\n{out}");
    assert!(out.contains("this member MIRRORA (Failover), Backup"), "the old primary rejoins as backup:\n{out}");
}
