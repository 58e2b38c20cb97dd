//! Simulated clocks: one real timeline, and each member's own clock running a little fast
//! or slow (within the drift the timing contract allows) from its own offset.

use crate::mirror::failover::Millis;

#[derive(Debug, Clone, Copy)]
pub struct NodeClock {
    /// Rate error in parts per million (negative: slow).
    pub rate_ppm: i64,
    pub offset: Millis,
}

impl NodeClock {
    /// This member's clock reading at real time `real`.
    pub fn local(&self, real: Millis) -> Millis {
        let scaled = i128::from(real) * i128::from(1_000_000 + self.rate_ppm) / 1_000_000;
        self.offset + scaled as Millis
    }
}
