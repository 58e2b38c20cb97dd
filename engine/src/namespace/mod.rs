//! Namespaces: a default database plus global mappings, compiled into a routing table.

pub mod mapping;
pub mod routing;

pub use mapping::GlobalMapping;
pub use routing::Routing;
