//! PID 1 of a member's containers. It runs one *main* program (the engine, or in the
//! agent's own container the agent) and optionally the agent beside it. What a PID 1 owes
//! the processes under it:
//!
//! - signals: SIGTERM/SIGINT/SIGHUP/SIGQUIT go to the main program at once (the engine's
//!   stop hands over to the backup first); the agent beside it is stopped only once the
//!   engine has exited, because during the handover the other member may still ask this
//!   agent about the engine;
//! - reaping: every exited process is waited for, the orphans re-parented to us too (in
//!   the agent's container, whose PID namespace the engine's container joins, that
//!   includes an engine whose own container was killed);
//! - exit status: the main program's (128 + signal when a signal ended it);
//! - logs: both children's output, each line prefixed, on our stdout and stderr.
//!
//! Signals are blocked in every thread and taken synchronously with `sigtimedwait`, so
//! there is no async-signal-safety to get wrong.

use super::output;
use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the agent gets to stop before SIGKILL.
const AGENT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// An agent that exits on its own is restarted after this delay, at most this many times
/// (after that the engine runs on alone, and the log says so).
const AGENT_RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_AGENT_RESTARTS: u32 = 10;
/// How long the children's output threads get to drain after the engine exits.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Signal wait granularity: how late a scheduled agent restart can be.
const TICK: Duration = Duration::from_millis(200);

/// One program to run: its name in the log, path and arguments.
#[derive(Debug, Clone)]
pub struct Program {
    pub name: &'static str,
    pub path: PathBuf,
    pub args: Vec<OsString>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// The program whose exit ends the supervisor: the engine, or the agent alone.
    pub main: Program,
    /// `None`: the main program runs without an agent beside it.
    pub agent: Option<Program>,
}

/// The signals the supervisor takes: the stop signals it forwards, and SIGCHLD.
const STOP_SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS.iter().chain(&[libc::SIGCHLD]) {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Blocks the supervisor's signals in the calling thread, and so in every thread it
/// starts afterwards. Call first thing in `main`, before any thread exists. A child would
/// inherit the mask (exec keeps it), so [`spawn`] clears it in the child before exec.
pub fn block_signals() -> io::Result<()> {
    let set = signal_set();
    // SAFETY: the set is initialised; a null old set is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Waits up to `timeout` for one of the blocked signals; `None` on timeout.
fn wait_signal(timeout: Duration) -> Option<libc::c_int> {
    let set = signal_set();
    let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as _ };
    // SAFETY: set and timespec are initialised; no siginfo is asked for.
    let s = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// Reaps every exited child without blocking: `(pid, exit code)` pairs.
fn reap() -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return out;
        }
        out.push((pid as u32, exit_code(status)));
    }
}

/// The shell's convention: the exit status, or 128 + the signal that ended the process.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

fn send(pid: u32, signal: libc::c_int) {
    // A process already gone gives ESRCH, ignored.
    let _ = crate::pid::send_signal(pid, signal);
}

fn say(message: &str) {
    eprintln!("[mirrorlab-init] {message}");
}

/// Starts `program` with its output piped through prefixing threads.
fn spawn(program: &Program, drains: &mut Vec<std::thread::JoinHandle<()>>) -> io::Result<Child> {
    let mut command = Command::new(&program.path);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed;
    // sigemptyset and pthread_sigmask on a local set are.
    unsafe {
        command.pre_exec(|| {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) {
                0 => Ok(()),
                rc => Err(io::Error::from_raw_os_error(rc)),
            }
        });
    }
    let mut child = command
        .args(&program.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("cannot start {} ({}): {e}", program.name, program.path.display()))
        })?;
    let prefix = format!("[{}] ", program.name);
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let p = prefix.clone();
    drains.push(std::thread::spawn(move || output::copy_prefixed(out, || Box::new(io::stdout().lock()), &p)));
    drains.push(std::thread::spawn(move || output::copy_prefixed(err, || Box::new(io::stderr().lock()), &prefix)));
    Ok(child)
}

/// Runs the plan until the main program exits; returns its exit code. The caller must
/// have called [`block_signals`] before starting any thread.
pub fn run(plan: &Plan) -> io::Result<i32> {
    let mut drains = Vec::new();
    // The agent first: the engine's mirror asks its agent from its first moments.
    let mut agent = match &plan.agent {
        Some(p) => Some(spawn(p, &mut drains)?.id()),
        None => None,
    };
    let main = &plan.main.name;
    let main_pid = match spawn(&plan.main, &mut drains) {
        Ok(c) => c.id(),
        Err(e) => {
            if let Some(a) = agent {
                stop_agent(a);
            }
            return Err(e);
        }
    };
    match agent {
        Some(a) => say(&format!("{main} pid {main_pid}, agent pid {a}")),
        None => say(&format!("{main} pid {main_pid}")),
    }
    let mut restarts = 0u32;
    let mut restart_at: Option<Instant> = None;
    let code = loop {
        if let Some(sig) = wait_signal(TICK) {
            if STOP_SIGNALS.contains(&sig) {
                say(&format!("signal {sig}: stopping the {main} (an agent beside it stops after it)"));
                send(main_pid, sig);
            }
        }
        let mut main_code = None;
        for (pid, code) in reap() {
            if pid == main_pid {
                main_code = Some(code);
            } else if Some(pid) == agent {
                agent = None;
                if restarts < MAX_AGENT_RESTARTS && plan.agent.is_some() {
                    say(&format!("the agent exited with status {code}; restarting it in {AGENT_RESTART_DELAY:?}"));
                    restart_at = Some(Instant::now() + AGENT_RESTART_DELAY);
                } else {
                    say(&format!("the agent exited with status {code}; restarted {restarts} times already, the engine runs on without it"));
                }
            }
        }
        if let Some(code) = main_code {
            break code;
        }
        if restart_at.is_some_and(|t| Instant::now() >= t) {
            restart_at = None;
            restarts += 1;
            let program = plan.agent.as_ref().expect("a restart is scheduled only with an agent");
            match spawn(program, &mut drains) {
                Ok(c) => {
                    agent = Some(c.id());
                    say(&format!("agent restarted, pid {}", c.id()));
                }
                Err(e) => say(&format!("{e}")),
            }
        }
    };
    say(&format!("the {main} exited with status {code}"));
    if let Some(a) = agent {
        stop_agent(a);
    }
    let deadline = Instant::now() + OUTPUT_DRAIN_TIMEOUT;
    while drains.iter().any(|d| !d.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(code)
}

/// SIGTERM, then SIGKILL after [`AGENT_STOP_TIMEOUT`]; reaps whatever exits meanwhile.
fn stop_agent(agent: u32) {
    send(agent, libc::SIGTERM);
    let deadline = Instant::now() + AGENT_STOP_TIMEOUT;
    loop {
        if reap().iter().any(|&(pid, _)| pid == agent) {
            return;
        }
        if Instant::now() >= deadline {
            say(&format!("the agent did not stop within {AGENT_STOP_TIMEOUT:?}; killing it"));
            send(agent, libc::SIGKILL);
            let _ = wait_signal(Duration::from_secs(1));
            reap();
            return;
        }
        let _ = wait_signal(TICK);
    }
}
