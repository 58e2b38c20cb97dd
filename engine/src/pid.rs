//! The one way this code base signals a process by id ([`send_signal`]).
//!
//! A PID read from a lock file, a state file or /proc is data: `kill(0, sig)` signals our
//! whole process group, `kill(-1, sig)` every process we may signal, a PID above
//! `i32::MAX` turns negative (a process group) when cast, and PID 1 is init. None of these
//! is ever a process we mean, so they are refused before `kill(2)` is called, as is this
//! process itself.

use std::io;

/// Sends `signal` to process `pid`. Refused with `InvalidInput`: 0, 1, this process, and
/// anything that is not a positive `pid_t`. `ESRCH` (already gone) comes back as the OS
/// error for the caller to judge.
pub fn send_signal(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let checked = libc::pid_t::try_from(pid).ok().filter(|&p| p > 1 && pid != std::process::id());
    let Some(p) = checked else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal process id {pid}: not a single other process"),
        ));
    };
    // SAFETY: kill(2) touches no memory of ours; `p` names exactly one process (checked
    // above: never 0, -1, a process group, init or ourselves).
    if unsafe { libc::kill(p, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::send_signal;

    #[test]
    fn group_wide_and_own_pids_are_refused() {
        for pid in [0, 1, u32::MAX, i32::MAX as u32 + 1, std::process::id()] {
            let e = send_signal(pid, 0).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "pid {pid}: {e}");
        }
    }

    #[test]
    fn a_live_child_is_signalled_and_a_gone_one_gives_esrch() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        send_signal(child.id(), libc::SIGKILL).unwrap();
        child.wait().unwrap();
        let e = send_signal(child.id(), 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ESRCH));
    }
}
