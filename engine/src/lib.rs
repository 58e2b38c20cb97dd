//! The Mirrorlab engine: a journaled globals database server.
//!
//! See ARCHITECTURE.md at the repository root for the code map and each module's invariant.

pub mod access;
pub mod agent;
pub mod calendar;
pub mod cli;
pub mod client;
mod connections;
pub mod container;
pub mod ecp;
pub mod error;
pub mod fatal;
#[cfg(test)]
mod fuzz;
pub mod globals;
pub mod instance;
pub mod journal;
pub mod logging;
pub mod merge;
pub mod mirror;
pub mod namespace;
pub mod pid;
pub mod resolve;
pub mod resp;
pub mod security;
pub mod start;
pub mod storage;
pub mod terminal;
pub mod tls;
// `VfsFile::len` is fallible I/O, so an `is_empty` beside it would only add a second syscall.
#[allow(clippy::len_without_is_empty)]
pub mod vfs;
pub mod wait;
pub mod web;
