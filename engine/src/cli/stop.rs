//! `engine stop`: asks the engine holding a data directory to shut down (SIGTERM) and
//! waits until it has released the directory.

use crate::instance::datadir::DataDir;
use std::time::{Duration, Instant};

#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    WasNotRunning,
    Stopped { pid: u32 },
}

pub fn stop(dir: &DataDir, timeout: Duration) -> Result<Stopped, String> {
    let Some(pid) = dir.lock_holder() else { return Ok(Stopped::WasNotRunning) };
    if let Err(e) = crate::pid::send_signal(pid, libc::SIGTERM) {
        return Err(format!("cannot signal engine process {pid}: {e}"));
    }
    let deadline = Instant::now() + timeout;
    // The lock is released by the kernel when the process exits; poll for that condition.
    while dir.lock_holder().is_some() {
        if Instant::now() >= deadline {
            return Err(format!("engine process {pid} did not stop within {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Stopped::Stopped { pid })
}
