//! The README's mirroring demo, run as written: the block between the `mirror-demo`
//! markers, by bash, with the binaries under test first on PATH (the block's first line,
//! which builds them in release mode, is the test's own build instead). It uses the
//! ports the README shows (1972-1973, 2188-2192, 52773-52774): tests that start engines
//! use port 0, which the system picks above these.

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

#[test]
fn the_readme_mirror_demo_works_as_written() {
    let script = demo_block();
    let dir = tempfile::tempdir().unwrap();
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
