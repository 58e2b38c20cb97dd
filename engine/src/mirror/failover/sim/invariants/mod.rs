//! The checker: one file per invariant, each naming the design rule it guards.

pub mod acked_commits_survive;
pub mod health_check;
pub mod members_converge;
pub mod single_primary;
