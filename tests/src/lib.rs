//! Helpers for end-to-end tests: each test gets its own data directory and ports, drives
//! the real binaries, and waits for conditions (never fixed sleeps).

pub mod docker;
pub mod mirror;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use engine;

/// Path of a workspace binary (`engine`, `agent`). The first call in a test process runs
/// `cargo build --bins` once, so a test never drives a binary older than the code under
/// test (a plain `cargo test -p` builds only the test's own package).
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target profile directory").to_path_buf();
    BUILT.get_or_init(|| {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--bins", "--workspace"]);
        if dir.file_name().is_some_and(|profile| profile == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    dir.join(name)
}

/// A command for the `engine` binary.
pub fn engine_cmd() -> Command {
    Command::new(bin("engine"))
}

/// Polls `condition` every few milliseconds until it holds; panics with `what` after
/// `timeout`. Waiting for a condition, not sleeping for a guess.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An engine process on its own data directory with ports chosen by the OS.
pub struct Engine {
    pub data_dir: PathBuf,
    pub child: Child,
    pub superserver_port: u16,
    pub web_port: u16,
    _temp: Option<tempfile::TempDir>,
}

impl Engine {
    /// Starts an engine on a new temporary data directory.
    pub fn start() -> Engine {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut e = Engine::start_in(temp.path(), &[]);
        e._temp = Some(temp);
        e
    }

    /// Starts an engine on `data_dir` with extra arguments, and waits until it serves.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Engine {
        let child = Engine::spawn(data_dir, extra);
        Engine::attach(data_dir, child)
    }

    pub fn spawn(data_dir: &Path, extra: &[&str]) -> Child {
        let _ = std::fs::remove_file(data_dir.join("engine.state.json"));
        engine_cmd()
            .arg("start")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--superserver-port", "0", "--web-port", "0", "--log-level", "warn"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn engine")
    }

    /// Waits until the spawned engine has published its ports and answers PING.
    pub fn attach(data_dir: &Path, mut child: Child) -> Engine {
        let dir = engine::instance::datadir::DataDir::new(data_dir);
        let pid = child.id();
        let mut state = None;
        wait_until("the engine to publish its ports", Duration::from_secs(30), || {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().map(|mut s| s.read_to_string(&mut err));
                panic!("engine exited with {status} before serving:\n{err}");
            }
            state = dir.read_state().filter(|s| s.pid == pid && s.stopped_at.is_none());
            state.is_some()
        });
        let state = state.expect("state");
        Engine {
            data_dir: data_dir.to_path_buf(),
            child,
            superserver_port: state.superserver_port,
            web_port: state.web_port,
            _temp: None,
        }
    }

    pub fn client(&self) -> engine::client::Client {
        engine::client::Client::connect(format!("127.0.0.1:{}", self.superserver_port), Duration::from_secs(5))
            .expect("connect")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Graceful stop through `engine stop`; returns its exit status.
    pub fn stop(&mut self) -> std::process::Output {
        let out = engine_cmd().arg("stop").arg("--data-dir").arg(&self.data_dir).output().expect("run engine stop");
        let _ = self.child.wait();
        out
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A command for the `agent` binary.
pub fn agent_cmd() -> Command {
    Command::new(bin("agent"))
}

/// An agent process on 127.0.0.1 (unless `--interface` says otherwise) with a port chosen by the OS: beside an engine (with
/// `--data-dir`) or a pure arbiter.
pub struct Agent {
    pub child: Child,
    pub port: u16,
}

impl Agent {
    /// A pure arbiter with extra arguments.
    pub fn arbiter(extra: &[&str]) -> Agent {
        Agent::spawn(None, extra)
    }

    /// The agent of the engine on `data_dir`, with extra arguments.
    pub fn beside(data_dir: &Path, extra: &[&str]) -> Agent {
        Agent::spawn(Some(data_dir), extra)
    }

    /// Starts the agent and waits for its `agent listening on ADDR` line.
    pub fn spawn(data_dir: Option<&Path>, extra: &[&str]) -> Agent {
        use std::io::{BufRead, Read};
        let mut cmd = agent_cmd();
        cmd.args(["--port", "0", "--log-level", "warn"]);
        if !extra.contains(&"--interface") {
            cmd.args(["--interface", "127.0.0.1"]);
        }
        if let Some(dir) = data_dir {
            cmd.arg("--data-dir").arg(dir);
        }
        let mut child = cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn agent");
        // Drain stderr so a chatty agent never blocks on a full pipe; keep it for errors.
        let mut stderr = child.stderr.take().expect("piped stderr");
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut line).expect("read the agent's first line");
        let Some(addr) = line.trim().strip_prefix("agent listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let err = log.join().unwrap_or_default();
            panic!("the agent did not start (first line {line:?}):\n{err}");
        };
        let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in the ready line");
        Agent { child, port }
    }

    pub fn client(&self) -> engine::client::Client {
        engine::client::Client::connect(format!("127.0.0.1:{}", self.port), Duration::from_secs(5))
            .expect("connect to the agent")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request to the management API on 127.0.0.1:`port`; returns the status
/// code and the body. Enough for tests: `Connection: close`, no chunked bodies sent.
pub fn http(port: u16, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    try_http(port, method, path, body).unwrap_or_else(|e| panic!("{method} {path} on port {port}: {e}"))
}

/// `http`, for a server that may be gone: a refused or broken connection is an error.
pub fn try_http(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    try_http_as(port, method, path, body, None)
}

/// [`try_http`] as the lab's admin (HTTP Basic) when `password` is given.
pub fn try_http_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    password: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use base64::Engine as _;
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    let auth = password.map_or(String::new(), |p| {
        format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("admin:{p}")))
    });
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line"))?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_string() };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n.min(tail.len())]);
        rest = tail.get(n + 2..).unwrap_or("");
    }
    out
}

/// A port free now, for addresses that must be known before a process binds them (a
/// mirror data channel). Chosen below the kernel's ephemeral range (which starts at 32768
/// by default): a port the OS handed out for port 0 could be taken again by any outgoing
/// connection before the process binds it. Each call moves on, so one test process never
/// gets the same port twice; the starting point comes from the process id, so test
/// processes running at the same time look in different places.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN)
}

/// A command for the `mirrorlab` binary. The first call of a test process runs cargo so
/// the installer and the engine binaries it starts are current (cargo is quick when they
/// are), since `cargo test -p mirrorlab-tests` does not build other packages' binaries.
pub fn mirrorlab_cmd() -> Command {
    let mut cmd = Command::new(bin("mirrorlab"));
    // The binaries beside mirrorlab, never an `engine` found on PATH.
    cmd.env_remove("MIRRORLAB_BIN_DIR");
    cmd
}

/// Runs `mirrorlab --lab-dir LABS ARGS` in `dir`.
pub fn mirrorlab_in(dir: &Path, labs: &Path, args: &[&str]) -> std::process::Output {
    mirrorlab_cmd().current_dir(dir).arg("--lab-dir").arg(labs).args(args).output().expect("run mirrorlab")
}

/// The admin password `mirrorlab up` drew for the (one) lab under `labs`
/// (`<labs>/<lab>/admin.password`), if any.
pub fn lab_password(labs: &Path) -> Option<String> {
    std::fs::read_dir(labs).ok()?.flatten().find_map(|d| {
        let text = std::fs::read_to_string(d.path().join("admin.password")).ok()?;
        Some(text.trim_end().to_string())
    })
}

/// A RESP client on 127.0.0.1:`port`, logged in as the lab's admin when `password` is given.
pub fn lab_client(port: u16, password: Option<&str>, timeout: Duration) -> Result<engine::client::Client, String> {
    let mut c = engine::client::Client::connect(format!("127.0.0.1:{port}"), timeout).map_err(|e| e.to_string())?;
    if let Some(p) = password {
        c.command(&[b"AUTH", b"admin", p.as_bytes()]).map_err(|e| e.to_string())?;
    }
    Ok(c)
}

/// [`mirrorlab_in`], failing the test with both outputs unless it succeeds; its stdout.
pub fn mirrorlab_ok(dir: &Path, labs: &Path, args: &[&str]) -> String {
    let out = mirrorlab_in(dir, labs, args);
    assert!(
        out.status.success(),
        "mirrorlab {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The members of the lab under `labs`, as `mirrorlab status --json` run in `dir` lists
/// them (name, type, status, ports, ...).
pub fn lab_members(dir: &Path, labs: &Path) -> Vec<serde_json::Value> {
    let out = mirrorlab_ok(dir, labs, &["status", "--json"]);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {out}"));
    v["members"].as_array().cloned().unwrap_or_default()
}

/// One member of [`lab_members`]; fails the test when the lab has no such member.
pub fn lab_member(dir: &Path, labs: &Path, name: &str) -> serde_json::Value {
    lab_members(dir, labs).into_iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("no member {name}"))
}

/// Whether an outside tool the test drives (`haproxy`, `redis-cli`, ...) is on `PATH`. In
/// CI (`CI=true`) a missing tool fails the test: `.ci/run` installs every one. Elsewhere
/// the test prints why it does not run and returns: never a silent skip.
pub fn tool_available(tool: &str, test: &str) -> bool {
    let found =
        std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    if !found {
        tool_missing(&format!("{test}: `{tool}`"));
    }
    found
}

/// Whether `check` (`redis-cli --version`, `python3 -c 'import redis'`) runs successfully;
/// a missing tool is handled as in [`tool_available`].
pub fn tool_works(what: &str, check: &mut Command) -> bool {
    let works = check.output().is_ok_and(|o| o.status.success());
    if !works {
        tool_missing(what);
    }
    works
}

/// Under CI a missing tool is a failure; elsewhere it is said, and the test returns.
fn tool_missing(what: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{what} is not installed; .ci/run installs it");
    eprintln!("SKIPPED {what}: not installed (apt-get or pip install it, or let .ci/run do it)");
}

/// The lines a child writes to its piped stdout, as they come (a thread reads them until
/// the pipe closes or the receiver is dropped).
pub fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What a child writes to its piped stdout, chunk by chunk as it comes: for programs on a
/// terminal, whose prompts and screens end without a newline.
pub fn stdout_chunks(child: &mut Child) -> std::sync::mpsc::Receiver<Vec<u8>> {
    use std::io::Read;
    let mut stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// `manifests/NAME` in this repository.
pub fn repo_manifest(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("manifests").join(name)
}

/// Takes the lab under the lab directory `.1` (run from `.0`) down with `down --wipe` when
/// dropped, however the test ends.
pub struct DownOnDrop<'a>(pub &'a Path, pub PathBuf);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        let _ = mirrorlab_in(self.0, &self.1, &["down", "--wipe"]);
    }
}

/// Headless Chromium (Debian's) on `url`, with time for the page's requests; `args` say
/// what to write (`--dump-dom`, `--screenshot=...`).
pub fn chromium(url: &str, profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium")
}
