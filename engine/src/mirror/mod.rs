//! Mirroring: configuration (and, as it lands, the failover core, journal shipping and
//! member statuses).

pub mod config;
pub mod shipping;
