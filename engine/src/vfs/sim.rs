//! Simulated disk with power cuts.
