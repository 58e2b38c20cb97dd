//! The Mirrorlab engine: a journaled globals database server.
//!
//! See ARCHITECTURE.md at the repository root for the code map and each module's invariant.

pub mod cli;
pub mod error;
pub mod globals;
pub mod instance;
pub mod logging;
pub mod merge;
pub mod namespace;
pub mod start;
pub mod storage;
pub mod vfs;
