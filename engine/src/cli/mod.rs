//! Library side of the `engine` subcommands, so tests drive them without a process.

pub mod credentials;
pub mod http;
pub mod integrity;
pub mod journal;
pub mod mirror;
pub mod qlist;
pub mod session;
pub mod stop;
pub mod transport;
