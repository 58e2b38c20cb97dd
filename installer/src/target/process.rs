//! Processes of the local target: finding the binaries, spawning detached processes with
//! their output in log files, and checking, signalling and awaiting PIDs. PIDs are checked
//! against /proc (the binary name, zombies) so a recycled PID is never signalled.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BinError {
    #[error("cannot find the `{name}` binary (looked in $MIRRORLAB_BIN_DIR, next to mirrorlab in {beside}, and on PATH); build it with `cargo build --release --bins` and run mirrorlab from the same target directory, or set MIRRORLAB_BIN_DIR to the directory that holds `engine` and `agent`")]
    Missing { name: String, beside: String },
    #[error("building the `{name}` binary with cargo failed: {reason}")]
    Build { name: String, reason: String },
}

/// Finds `name` (`engine` or `agent`): $MIRRORLAB_BIN_DIR, then beside this executable,
/// then PATH. Under `cargo run` (CARGO is set) a missing binary is built first, so the
/// README's one command works on a fresh checkout.
pub fn find_binary(name: &str) -> Result<PathBuf, BinError> {
    if let Some(dir) = std::env::var_os("MIRRORLAB_BIN_DIR") {
        let p = Path::new(&dir).join(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(BinError::Missing { name: name.into(), beside: p.display().to_string() })
        };
    }
    let exe = std::env::current_exe().ok();
    let beside = exe.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
    let candidate = beside.join(name);
    if candidate.is_file() {
        return Ok(candidate);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = beside.ends_with("release");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "-p", "mirrorlab-engine"]);
        if release {
            cmd.arg("--release");
        }
        eprintln!("mirrorlab: building the engine and agent binaries (first run)...");
        let status = cmd.status().map_err(|e| BinError::Build { name: name.into(), reason: e.to_string() })?;
        if !status.success() {
            return Err(BinError::Build { name: name.into(), reason: format!("cargo exited with {status}") });
        }
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(BinError::Missing { name: name.into(), beside: beside.display().to_string() })
}

/// Spawns `cmd` in its own process group (a Ctrl-C at the trainer's terminal does not
/// reach the lab), output appended to `log`.
pub fn spawn(mut cmd: Command, log: &Path) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0).spawn()
}

/// The process's state letter from /proc (`R`, `S`, `T` stopped, `Z` zombie...), if it
/// runs `binary`.
fn proc_state(pid: u32, binary: &str) -> Option<char> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let file = Path::new(std::str::from_utf8(argv0).ok()?).file_name()?.to_str()?.to_string();
    if file != binary {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the parenthesised command name, which may itself contain spaces.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

pub fn alive(pid: u32, binary: &str) -> bool {
    proc_state(pid, binary).is_some_and(|s| s != 'Z' && s != 'X')
}

pub fn stopped(pid: u32, binary: &str) -> bool {
    proc_state(pid, binary).is_some_and(|s| s == 'T' || s == 't')
}

/// The PID was checked against /proc just before; [`engine::pid::send_signal`] refuses
/// 0, 1, group-wide ids and this process.
pub fn signal(pid: u32, sig: i32) -> std::io::Result<()> {
    engine::pid::send_signal(pid, sig)
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
pub fn await_condition(timeout: Duration, condition: impl FnMut() -> bool) -> bool {
    engine::wait::until(timeout, Duration::from_millis(10), condition)
}

/// SIGTERM, then waits up to `timeout` for the process to go; SIGKILL after that.
pub fn terminate(pid: u32, binary: &str, timeout: Duration) -> std::io::Result<()> {
    if !alive(pid, binary) {
        return Ok(());
    }
    if stopped(pid, binary) {
        signal(pid, libc::SIGCONT)?;
    }
    signal(pid, libc::SIGTERM)?;
    if !await_condition(timeout, || !alive(pid, binary)) {
        signal(pid, libc::SIGKILL)?;
        await_condition(Duration::from_secs(10), || !alive(pid, binary));
    }
    Ok(())
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}
