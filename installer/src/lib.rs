//! `mirrorlab`: a whole mirrored lab from one YAML manifest. The binary only parses
//! arguments; everything here can be driven by tests.

pub mod api;
pub mod certs;
pub mod commands;
pub mod converge;
pub mod credentials;
pub mod ecp_merge;
pub mod help;
pub mod images;
pub mod labdir;
pub mod lb;
pub mod live;
pub mod manifest;
pub mod positions;
pub mod problem;
pub mod settle;
pub mod status;
pub mod target;
pub mod template;
pub mod ui;
pub mod users;
