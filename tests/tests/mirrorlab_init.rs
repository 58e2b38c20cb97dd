//! `mirrorlab-init`, the engine container's PID 1, as a real process: it runs the agent
//! and the engine, prefixes their output, forwards SIGTERM to the engine and stops the
//! agent after it, exits with the engine's status; the image's HEALTHCHECK
//! (`engine qlist --wait 0`) sees it healthy. With
//! `--no-agent` it runs the engine alone; `agent` runs the agent alone (the Compose lab's
//! agent containers), which finds its engine by host name and fences it.

use engine::client::{Client, Reply};
use mirrorlab_tests::{bin, engine, wait_until, Engine};
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
        Init::run(dir, &["start", "--superserver-port", "0", "--web-port", "0"])
    }

    fn run(dir: &Path, args: &[&str]) -> Init {
        let mut child = Command::new(bin("mirrorlab-init"))
            .env("MIRRORLAB_DATA_DIR", dir)
            .env("MIRRORLAB_AGENT_PORT", "0")
            .args(args)
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
    wait_until("the engine to be healthy (engine qlist --wait 0)", Duration::from_secs(30), || health(dir));
}

/// The image's HEALTHCHECK command.
fn health(dir: &Path) -> bool {
    Command::new(bin("engine"))
        .env("MIRRORLAB_DATA_DIR", dir)
        .args(["qlist", "--wait", "0"])
        .stdout(Stdio::null())
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

#[test]
fn no_agent_runs_the_engine_alone() {
    let temp = tempfile::tempdir().unwrap();
    let mut init = Init::run(temp.path(), &["start", "--no-agent", "--superserver-port", "0", "--web-port", "0"]);
    let l = init.line("engine pid ");
    assert!(!l.contains("agent pid"), "no agent is started: {l}");
    let engine: u32 = l.rsplit(' ').next().unwrap().parse().unwrap();
    await_healthy(temp.path(), engine);
    kill(init.child.id(), "-TERM");
    assert_eq!(init.child.wait().unwrap().code(), Some(0));
    init.line("the engine exited with status 0");
    while let Ok(l) = init.lines.recv_timeout(Duration::from_secs(5)) {
        init.seen.push(l);
    }
    assert!(!init.seen.iter().any(|l| l.starts_with("[agent] ")), "an agent wrote:\n{}", init.seen.join("\n"));
}

fn agent_status(port: u16) -> std::collections::HashMap<String, String> {
    let mut c = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
    let Ok(Reply::Array(items)) = c.command(&[b"AGENT", b"STATUS"]) else { panic!("AGENT STATUS is not a map") };
    let text = |r: &Reply| match r {
        Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not a bulk string: {other:?}"),
    };
    items.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect()
}

/// The Compose lab's agent container: the agent alone, probing an engine it did not start
/// by host name, fencing it, and stopping on SIGTERM with its status.
#[test]
fn agent_mode_runs_the_agent_alone_which_reports_and_fences_an_engine_by_host_name() {
    let temp = tempfile::tempdir().unwrap();
    let mut engine = Engine::start_in(temp.path(), &[]);
    let mut init = Init::run(temp.path(), &["agent", "--interface", "127.0.0.1", "--engine-host", "localhost"]);
    let l = init.line("agent pid ");
    assert!(!l.contains(','), "the agent alone: {l}");
    let addr = init.line("agent listening on ");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let status = agent_status(port);
    assert_eq!(status["state"], "running", "{status:?}");
    assert_eq!(status["pid"], engine.child.id().to_string());

    let mut c = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
    let fenced = c.command(&[b"AGENT", b"FENCE", b"test"]).unwrap();
    assert_eq!(fenced, Reply::Simple(format!("FENCED {}", engine.child.id())));
    let exit = engine.child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&exit), Some(9), "the engine was SIGKILLed");
    assert_eq!(agent_status(port)["state"], "down");

    kill(init.child.id(), "-TERM");
    assert_eq!(init.child.wait().unwrap().code(), Some(0));
    init.line("the agent exited with status 0");
}
