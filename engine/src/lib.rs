//! The Mirrorlab engine: a journaled globals database server.
//!
//! See ARCHITECTURE.md at the repository root for the code map and each module's invariant.

pub mod error;
pub mod globals;
pub mod instance;
pub mod namespace;
pub mod storage;
pub mod vfs;
pub mod web;
