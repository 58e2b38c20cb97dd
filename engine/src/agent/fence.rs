//! `AGENT FENCE`: forcing the local engine down so it can no longer act as primary.
//!
//! The instance lock is the truth: its holder is the engine, and the kernel releases the
//! lock only when that process is gone. So fencing is SIGKILL to the holder (it works on a
//! stopped or hung process too) and then waiting until the lock is free.

use crate::instance::datadir::DataDir;
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long FENCE waits for the lock by default.
pub const DEFAULT_FENCE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the lock is checked while waiting.
const POLL: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceOutcome {
    /// The engine with this PID was killed and its lock is free.
    Fenced(u32),
    /// Nothing held the lock.
    AlreadyDown,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FenceError {
    #[error("ERR the instance lock names PID {pid}, which is not an engine this agent may kill")]
    BadPid { pid: u32 },
    #[error("ERR cannot kill engine process {pid}: {detail} (run the agent as the engine's user)")]
    Kill { pid: u32, detail: String },
    #[error("TIMEOUT engine process {pid} was sent SIGKILL but still holds the instance lock after {waited_ms} ms")]
    StillLocked { pid: u32, waited_ms: u64 },
}

/// Kills the engine holding the lock of `dir` and waits up to `timeout` for the lock to be
/// released. Blocking.
pub fn fence(dir: &DataDir, reason: &str, timeout: Duration) -> Result<FenceOutcome, FenceError> {
    let Some(pid) = dir.lock_holder() else {
        tracing::warn!(data_dir = %dir.root().display(), reason, "fence: the engine is already down");
        return Ok(FenceOutcome::AlreadyDown);
    };
    if pid <= 1 || pid == std::process::id() || i32::try_from(pid).is_err() {
        return Err(FenceError::BadPid { pid });
    }
    tracing::warn!(pid, data_dir = %dir.root().display(), reason, "fence: killing the engine");
    if let Err(e) = crate::pid::send_signal(pid, libc::SIGKILL) {
        // ESRCH: it died between reading the lock and the kill; the wait below confirms.
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(FenceError::Kill { pid, detail: e.to_string() });
        }
    }
    let started = Instant::now();
    if !crate::wait::until(timeout, POLL, || dir.lock_holder() != Some(pid)) {
        return Err(FenceError::StillLocked { pid, waited_ms: started.elapsed().as_millis() as u64 });
    }
    tracing::warn!(pid, waited_ms = started.elapsed().as_millis() as u64, reason, "fence: the engine is down");
    Ok(FenceOutcome::Fenced(pid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn an_unlocked_directory_is_already_down() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(fence(&DataDir::new(tmp.path()), "test", Duration::from_secs(1)), Ok(FenceOutcome::AlreadyDown));
    }

    #[test]
    fn the_agent_never_kills_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        let _lock = dir.lock().unwrap();
        let err = fence(&dir, "test", Duration::from_secs(1)).unwrap_err();
        assert_eq!(err, FenceError::BadPid { pid: std::process::id() });
    }

    #[test]
    fn a_stopped_lock_holder_is_killed_and_the_lock_released() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = tmp.path().join("engine.lock");
        // A stand-in engine: a shell that takes the lock (flock(1)), writes its PID, and
        // then sleeps forever.
        let script = format!("exec 9>>'{0}'; flock -n 9 || exit 3; echo $$ > '{0}'; exec sleep 600", lock.display());
        let mut child = match Command::new("sh").arg("-c").arg(&script).spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot run sh: {e}"),
        };
        let dir = DataDir::new(tmp.path());
        if !crate::wait::until(Duration::from_secs(10), POLL, || dir.lock_holder() == Some(child.id())) {
            let _ = child.kill();
            // flock(1) is missing on this host: nothing to test.
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            panic!("the stand-in engine never took the lock");
        }
        // SAFETY: stopping our own child.
        crate::pid::send_signal(child.id(), libc::SIGSTOP).unwrap();
        assert_eq!(fence(&dir, "test", Duration::from_secs(10)), Ok(FenceOutcome::Fenced(child.id())));
        assert_eq!(dir.lock_holder(), None);
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}
