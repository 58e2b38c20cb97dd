//! Never two members acknowledging writes in overlapping epochs.
//!
//! Guards the epoch and lease rules of docs/design/failover.md: each epoch has one
//! primary, and once any member has acknowledged a commit in epoch `e`, no member ever
//! acknowledges again in an epoch older than `e` (the timing contract: an isolated primary
//! stops acknowledging before anyone may take over).

use std::collections::BTreeMap;

use crate::mirror::failover::{Epoch, MemberId};

#[derive(Default)]
pub struct SinglePrimary {
    acking_member: BTreeMap<Epoch, MemberId>,
    newest_acked_epoch: Epoch,
}

impl SinglePrimary {
    /// Records that `member` acknowledged a commit in `epoch`, now.
    pub fn on_ack(&mut self, member: MemberId, epoch: Epoch) -> Result<(), String> {
        if let Some(&other) = self.acking_member.get(&epoch) {
            if other != member {
                return Err(format!("single_primary: {member} and {other} both acknowledged in epoch {epoch}"));
            }
        }
        if epoch < self.newest_acked_epoch {
            return Err(format!(
                "single_primary: {member} acknowledged in epoch {epoch} after epoch {} started acknowledging",
                self.newest_acked_epoch
            ));
        }
        self.acking_member.insert(epoch, member);
        self.newest_acked_epoch = epoch;
        Ok(())
    }
}
