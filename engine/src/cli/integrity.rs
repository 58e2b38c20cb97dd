//! `engine integrity DB`: through the running engine when there is one (it first writes
//! pending changes), otherwise by opening the file directly.

use crate::instance::config::Config;
use crate::instance::datadir::DataDir;
use crate::storage::database::file_name;
use crate::storage::DbFile;
use crate::vfs::real::RealVfs;
use crate::vfs::redb_backend::VfsBackend;
use crate::vfs::{OpenMode, Vfs};
use anyhow::{bail, Context, Result};
use std::time::Duration;

pub fn check(dir: &DataDir, database: &str) -> Result<serde_json::Value> {
    let name = database.to_ascii_uppercase();
    if let Some(state) = dir.read_state().filter(|_| dir.lock_holder().is_some()) {
        let tls = super::transport::of_running(&state)?;
        let r = super::http::call_over(
            state.web_port,
            "GET",
            &format!("/api/databases/{name}/integrity"),
            None,
            Duration::from_secs(600),
            tls.as_ref(),
        )?;
        if r.status >= 300 {
            bail!("{}", super::http::error_message(&r.body));
        }
        return Ok(serde_json::from_str(&r.body)?);
    }
    let text = std::fs::read_to_string(dir.config_file())
        .with_context(|| format!("reading {}", dir.config_file().display()))?;
    let config = Config::parse(&text, &dir.config_file().display().to_string()).map_err(anyhow::Error::msg)?;
    let Some(db) = config.databases.get(&name) else {
        bail!("database {name} is not configured in {}", dir.config_file().display())
    };
    let path = file_name(&dir.database_dir(&db.directory));
    let file =
        RealVfs::new().open(&path, OpenMode::ReadWrite).with_context(|| format!("opening {}", path.display()))?;
    let (mut dbfile, _) = DbFile::open(&path, VfsBackend::new(file), config.storage.file_cache_bytes())?;
    Ok(serde_json::to_value(dbfile.integrity()?)?)
}
