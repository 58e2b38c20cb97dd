//! Database files and the cache in front of them.

pub mod cache;
pub mod database;
pub mod dbfile;
pub mod meta;

pub use database::Database;
pub use dbfile::DbFile;
pub use meta::DbMeta;

/// The file inside `<data-dir>/databases/<NAME>/` that holds a database.
pub const DB_FILE_NAME: &str = "mirrorlab.dat";
