//! The engine container's entry point (`mirrorlab-init`): a small PID 1 that runs the
//! agent and the engine side by side (the image's HEALTHCHECK is `engine qlist --wait 0`).
//!
//! Invariant: *the supervisor exits only after the engine has exited, and with the
//! engine's status*; a stop signal reaches the engine first, so it can hand over to the
//! backup while its agent still answers.

pub mod install;
pub mod output;
pub mod supervisor;
