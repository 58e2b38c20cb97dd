//! Every commit acknowledged to a client is present on whoever becomes primary.
//!
//! Guards the takeover conditions: a backup takes over only when caught up (everything the
//! primary acknowledged went through it), or after forcing every failover member down and
//! copying the most complete journal through the agents.

use std::collections::BTreeMap;

use super::super::node::SimNode;
use crate::mirror::failover::{Epoch, Position};

#[derive(Default)]
pub struct AckedCommits {
    /// Position -> epoch of every acknowledged record.
    acked: BTreeMap<Position, Epoch>,
}

impl AckedCommits {
    pub fn len(&self) -> usize {
        self.acked.len()
    }

    pub fn on_ack(&mut self, epoch: Epoch, pos: Position) -> Result<(), String> {
        match self.acked.insert(pos, epoch) {
            Some(old) if old != epoch => Err(format!(
                "acked_commits_survive: position {pos} acknowledged in epoch {old} and again in epoch {epoch}"
            )),
            _ => Ok(()),
        }
    }

    /// `node` is becoming (or opening as) primary: it must hold every acknowledged record.
    pub fn check_primary(&self, node: &SimNode, when: &str) -> Result<(), String> {
        for (&pos, &epoch) in &self.acked {
            if !node.has(epoch, pos) {
                return Err(format!(
                    "acked_commits_survive: {} {when} without acknowledged record (epoch {epoch}, position {pos}); \
                     its journal ends at {}",
                    node.id,
                    node.journal.len()
                ));
            }
        }
        Ok(())
    }
}
