//! ECP, the Enterprise Cache Protocol: application servers whose namespaces map globals
//! to databases on a data server (docs/design/ecp.md).
//!
//! - [`config`]: the Data Servers list, remote databases and limits (`engine.yaml` `ecp`);
//! - [`service`]: the data-server role: which application servers are attached, the
//!   limit, one generation per channel so a replaced connection's late requests are
//!   refused;
//! - [`app`]: the application-server role: one channel per session and data server,
//!   following a mirror's primary, reissuing a request whose reply was lost exactly once;
//! - [`wire`]: the `ECP` request names and reply shapes both roles share.
//!
//! Invariants: a write through an application server is acknowledged only once the data
//! server made it durable (on a mirror: acknowledged by the backup), so nothing an
//! application server acknowledged is lost by a data-server crash or a failover; every
//! write request carries `(app, incarnation, channel, seq)`, journaled with its change, so
//! a reissued request is applied at most once.

pub mod app;
pub mod config;
pub mod service;
pub mod status;
pub mod wire;

pub use config::EcpConfig;
