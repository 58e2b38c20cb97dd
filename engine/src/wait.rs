//! Waiting for another process: a lock released, a PID gone, an HTTP answer. Those have no
//! event to await, so the condition is polled until it holds or the deadline passes. One
//! loop for the agent, the CLI and the installer, so every such wait is bounded the same way.

use std::time::{Duration, Instant};

/// Polls `condition` every `poll` until it holds (true) or `timeout` has passed (false).
/// The condition is checked at least once, and once more at the deadline.
pub fn until(timeout: Duration, poll: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(poll.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_that_holds_is_checked_once() {
        let mut checks = 0;
        assert!(until(Duration::from_secs(60), Duration::from_secs(60), || {
            checks += 1;
            true
        }));
        assert_eq!(checks, 1);
    }

    #[test]
    fn a_condition_is_polled_until_it_holds() {
        let mut checks = 0;
        assert!(until(Duration::from_secs(60), Duration::from_millis(1), || {
            checks += 1;
            checks == 3
        }));
        assert_eq!(checks, 3);
    }

    #[test]
    fn a_condition_that_never_holds_is_checked_again_at_the_deadline_then_fails() {
        let mut checks = 0;
        // A poll longer than the timeout: the wait is cut to the deadline, not overslept.
        assert!(!until(Duration::ZERO, Duration::from_secs(60), || {
            checks += 1;
            false
        }));
        assert_eq!(checks, 1);
        let mut checks = 0;
        assert!(!until(Duration::from_millis(20), Duration::from_secs(60), || {
            checks += 1;
            false
        }));
        assert_eq!(checks, 2);
    }
}
