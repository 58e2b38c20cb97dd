//! `mirrorlab-init`, the engine container's PID 1, as a real process: it runs the agent
//! and the engine, prefixes their output, forwards SIGTERM to the engine and stops the
//! agent after it, exits with the engine's status; `health` probes `/health`.

use mirrorlab_tests::{bin, engine, wait_until};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Init {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Init {
    fn start(dir: &Path) -> Init {
        let mut child = Command::new(bin("mirrorlab-init"))
            .env("MIRRORLAB_DATA_DIR", dir)
            .env("MIRRORLAB_AGENT_PORT", "0")
            .args(["start", "--superserver-port", "0", "--web-port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mirrorlab-init");
        // Both streams into one channel: the test reads the container log as a whole.
        let (tx, lines) = mpsc::channel();
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().unwrap());
        for stream in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        Init { child, lines, seen: Vec::new() }
    }

    /// Waits for an output line containing `text` (seen before or new); returns it.
    fn line(&mut self, text: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        self.next_line(text)
    }

    /// Waits for a line containing `text` not yet read.
    fn next_line(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(_) => panic!("no line with {text:?}; the output was:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn pids(&mut self) -> (u32, u32) {
        let l = self.line("engine pid ");
        let words: Vec<&str> = l.split_whitespace().collect();
        let after =
            |w: &str| words[words.iter().position(|x| *x == w).unwrap() + 2].trim_end_matches(',').parse().unwrap();
        (after("engine"), after("agent"))
    }
}

fn alive(pid: u32) -> bool {
    // A zombie is not alive for our purpose: its /proc entry says state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

/// Waits until the engine `pid` has published its ports (so `health` probes it, not
/// whatever else listens on the default port), then until it is healthy.
fn await_healthy(dir: &Path, pid: u32) {
    let state = engine::instance::datadir::DataDir::new(dir);
    wait_until("the engine to publish its ports", Duration::from_secs(30), || {
        state.read_state().is_some_and(|s| s.pid == pid && s.stopped_at.is_none())
    });
    wait_until("the engine to answer /health", Duration::from_secs(30), || health(dir));
}

fn health(dir: &Path) -> bool {
    Command::new(bin("mirrorlab-init"))
        .env("MIRRORLAB_DATA_DIR", dir)
        .args(["health", "--timeout-ms", "2000"])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn kill(pid: u32, signal: &str) {
    assert!(Command::new("kill").args([signal, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn sigterm_stops_the_engine_then_the_agent_and_exits_with_the_engines_status() {
    let temp = tempfile::tempdir().unwrap();
    let mut init = Init::start(temp.path());
    let (engine, agent) = init.pids();
    init.line("[agent] ");
    init.line("[engine] ");
    await_healthy(temp.path(), engine);
    kill(init.child.id(), "-TERM");
    let status = init.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "a clean stop exits 0");
    assert!(!alive(engine) && !alive(agent), "both children are gone");
    init.line("the engine exited with status 0");
    let state = engine::instance::datadir::DataDir::new(temp.path()).read_state().unwrap();
    assert!(state.stopped_at.is_some(), "the engine stopped cleanly: {state:?}");
}

#[test]
fn an_engine_killed_with_sigkill_ends_the_container_with_status_137() {
    let temp = tempfile::tempdir().unwrap();
    let mut init = Init::start(temp.path());
    let (engine, agent) = init.pids();
    await_healthy(temp.path(), engine);
    kill(engine, "-KILL");
    let status = init.child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    assert!(!alive(agent), "the agent is stopped too");
}

#[test]
fn an_agent_that_dies_is_restarted() {
    let temp = tempfile::tempdir().unwrap();
    let mut init = Init::start(temp.path());
    let (_, agent) = init.pids();
    init.line("[agent] ");
    kill(agent, "-KILL");
    init.next_line("restarting it");
    let l = init.next_line("agent restarted, pid ");
    let pid: u32 = l.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(alive(pid) && pid != agent, "{l}");
    init.next_line("agent listening on");
    kill(init.child.id(), "-TERM");
    assert_eq!(init.child.wait().unwrap().code(), Some(0));
}
