//! The health check never names a superseded primary.
//!
//! Guards what load balancers rely on (`/mirror_status`, docs/design/failover.md,
//! "Pauses"): a member answers SUCCESS only while its acknowledgement window
//! (`Member::acking_until`) is open when it answers, and once any member has opened for
//! writes in epoch `e`, no member answers SUCCESS in an older epoch, a primary that
//! resumes from a pause with its stale state included. Checked after every step of every
//! member: a health check may be waiting at any of them, as one waits in a stopped
//! engine's listen backlog.

use crate::mirror::failover::{Epoch, MemberId};

#[derive(Default)]
pub struct HealthCheck {
    /// The newest epoch some member opened for writes in, and that member.
    newest_open: Option<(Epoch, MemberId)>,
}

impl HealthCheck {
    /// `member` opened for writes in `epoch`.
    pub fn on_open(&mut self, member: MemberId, epoch: Epoch) {
        if self.newest_open.is_none_or(|(e, _)| epoch > e) {
            self.newest_open = Some((epoch, member));
        }
    }

    /// `member`, primary of `epoch`, would answer the health check with SUCCESS now.
    pub fn on_success(&self, member: MemberId, epoch: Epoch) -> Result<(), String> {
        match self.newest_open {
            Some((newer, other)) if epoch < newer => Err(format!(
                "health_check: {member} answered as primary of epoch {epoch} after {other} opened epoch {newer}"
            )),
            _ => Ok(()),
        }
    }
}
