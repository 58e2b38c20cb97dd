//! RESP on the superserver port: Redis clients and tools talk to the engine (what works,
//! differs and is refused: README.md, "Redis compatibility").
//!
//! A request goes through four small steps, each in its own file:
//! [`codec`] (bytes to a [`Frame`]), [`commands`] (frame to a typed [`Command`], all argument
//! checks), `execute` (command to instance calls and a reply, written by [`reply`]) and
//! [`server`] (connections, pipelined batches, durability waits, shutdown). `MIRROR`'s
//! replies are written by `mirror`, awaited by the server loop; so are the mirror topology
//! and WAIT (`replication`). `transaction` queues MULTI and runs EXEC, `keyspace` names
//! nodes for SCAN/KEYS/DBSIZE, `clients` registers connections for CLIENT LIST/KILL, `auth`
//! authenticates connections once users exist, `ecp` serves application servers (ECP).
//!
//! Keys are global references (`^Company(1,"name")`) or Redis-style keys mapped onto them
//! (`user:1000` is `^user(1000)`), see [`crate::globals::reference::parse_key`].

mod auth;
pub mod backend;
mod clients;
pub mod codec;
pub mod commands;
pub(crate) mod ecp;
mod execute;
#[cfg(test)]
mod fuzz_tests;
mod info;
mod keyspace;
mod mirror;
mod monitor;
mod replication;
pub mod reply;
pub mod server;
mod transaction;

#[cfg(test)]
pub(crate) mod memory;
#[cfg(test)]
mod tests;

pub use backend::Backend;
pub use codec::{CodecLimits, Frame, ProtocolError};
pub use commands::{Command, CommandError};
pub use info::REDIS_COMPATIBLE_VERSION;
pub use reply::{Protocol, ReplyWriter};
pub use server::{serve, serve_with_tls, ServerLimits};
