//! Databases, namespaces and mappings: what the management API, the merge file and the
//! CLI change. Every change is validated first, then saved to the configuration file, then
//! applied, so a refused change leaves everything as it was.

use super::config::{normalize_name, Config, DatabaseConfig, MappingConfig, NamespaceConfig};
use super::datadir::write_atomically;
use super::Instance;
use crate::error::{EngineError, Result};
use crate::storage::dbfile::IntegrityReport;
use crate::storage::{database::file_name, Database, DbFile, DbMeta};
use crate::vfs::redb_backend::VfsBackend;
use crate::vfs::OpenMode;
use std::sync::Arc;

#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseInfo {
    pub name: String,
    pub directory: String,
    pub file: String,
    pub mounted: bool,
    pub read_only: bool,
    /// Why a configured database could not be mounted.
    pub error: Option<String>,
    /// The last damage a read found in the mounted file (a value failing its checksum);
    /// the database stays mounted and serves its other nodes.
    pub corruption: Option<String>,
    pub size_bytes: Option<u64>,
    pub meta: Option<DbMeta>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct NamespaceInfo {
    pub name: String,
    pub globals: String,
    pub mappings: Vec<MappingConfig>,
}

/// Takes the database file's lock, or says who may hold it.
fn lock_file(path: &std::path::Path, file: &dyn crate::vfs::VfsFile) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            Err(EngineError::DatabaseLocked { path: path.to_path_buf() })
        }
        Err(e) => Err(EngineError::io(format!("locking database file {}", path.display()), e)),
    }
}

impl Instance {
    /// Mounts every database the configuration marks mounted; a database that fails is
    /// logged and listed with its error, and the others stay up. Files are created only on
    /// the first start: later, a missing file is an error (a volume not mounted yet, a wrong
    /// path), never silently replaced by an empty database.
    pub(crate) fn mount_configured(&self, first_start: bool) -> Result<()> {
        let config = self.config.lock().clone();
        for (name, db) in &config.databases {
            if !db.mounted {
                continue;
            }
            match self.open_database(name, db, first_start) {
                Ok(d) => {
                    self.databases.write().insert(name.clone(), Arc::new(d));
                }
                Err(e) => {
                    tracing::error!("database {name} not mounted: {e}");
                    self.mount_errors.lock().insert(name.clone(), e.to_string());
                }
            }
        }
        Ok(())
    }

    /// Opens (or, when `create_missing`, creates) a database file.
    fn open_database(&self, name: &str, db: &DatabaseConfig, create_missing: bool) -> Result<Database> {
        let dir = self.dir.database_dir(&db.directory);
        let path = file_name(&dir);
        let ctx = |what: &str| format!("{what} database file {}", path.display());
        let (our_journal, storage) = {
            let config = self.config.lock();
            (config.instance.guid.clone(), config.storage.clone())
        };
        if !self.vfs.exists(&path) {
            if !create_missing {
                return Err(EngineError::Invalid(format!(
                    "database file {} does not exist (is its volume mounted?); restore it, or delete the database from the configuration",
                    path.display()
                )));
            }
            self.vfs.create_dir_all(&dir).map_err(|e| EngineError::io(ctx("creating the directory of"), e))?;
            let file = self.vfs.open(&path, OpenMode::CreateNew).map_err(|e| EngineError::io(ctx("creating"), e))?;
            lock_file(&path, file.as_ref())?;
            // A durable position: the file must never claim records a crash could lose.
            let position = self.journal.last_position();
            self.journal.flush_to(position)?;
            let meta = DbMeta::new(name, crate::storage::meta::new_guid(), &our_journal, position);
            let dbfile = DbFile::create(&path, VfsBackend::new(file.clone()), &meta, storage.file_cache_bytes())?;
            self.vfs.sync_dir(&dir).map_err(|e| EngineError::io(ctx("syncing the directory of"), e))?;
            tracing::info!("created database {name} at {}", path.display());
            return Ok(Database::new(dbfile, meta, db.read_only, storage.cache_bytes()).holding_lock(file));
        }
        let file = self.vfs.open(&path, OpenMode::ReadWrite).map_err(|e| EngineError::io(ctx("opening"), e))?;
        // Locked before anything reads or writes it: a file another engine has mounted
        // changes under us.
        lock_file(&path, file.as_ref())?;
        let (mut dbfile, mut meta) = DbFile::open(&path, VfsBackend::new(file.clone()), storage.file_cache_bytes())?;
        if dbfile.format() < crate::storage::meta::FORMAT_VERSION {
            meta = dbfile.upgrade(&meta)?;
        }
        let database = Database::new(dbfile, meta.clone(), db.read_only, storage.cache_bytes()).holding_lock(file);
        if meta.is_mirrored() {
            if meta.local_instance != our_journal {
                // A mirrored database copied from another member: its position refers to
                // the mirror journal, which every member shares, so it is kept (never
                // adopted onto our local journal). It needs activation here, which
                // catches it up from that position.
                let local = self.journal.last_position();
                self.journal.flush_to(local)?;
                database.update_meta(|m| {
                    m.activated = false;
                    m.local_instance = our_journal.clone();
                    m.local_position = local;
                    m.local_recovery_from = local + 1;
                })?;
                tracing::info!(
                    "database {name}: mirrored database of mirror {} copied from another member, at mirror journal position {}; it needs activation",
                    meta.mirror_name,
                    meta.journal_position
                );
            }
        } else if meta.journal_instance != our_journal {
            // A file copied from another instance: its position refers to that instance's
            // journal, not ours. Take it as it is, current to our journal's end.
            let position = self.journal.last_position();
            self.journal.flush_to(position)?;
            database.update_meta(|m| {
                m.journal_instance = our_journal.clone();
                m.journal_position = position;
                m.recovery_from = position + 1;
            })?;
            tracing::info!("database {name}: adopted file {} from another instance", path.display());
        }
        Ok(database)
    }

    /// Changes settings (the merge file's `config:` section): validated, then saved.
    pub fn update_config(&self, change: impl FnOnce(&mut Config) -> Result<()>) -> Result<Config> {
        self.change_config(change)
    }

    /// Validates a configuration change, saves it, and returns the new configuration.
    pub(crate) fn change_config(&self, change: impl FnOnce(&mut Config) -> Result<()>) -> Result<Config> {
        let mut config = self.config.lock();
        let mut next = config.clone();
        change(&mut next)?;
        validate(&next)?;
        write_atomically(&self.dir.config_file(), next.to_yaml().as_bytes())?;
        self.durability.store(super::durability_code(next.journal.durability), std::sync::atomic::Ordering::Relaxed);
        // The cache budget applies at once; redb's page cache is sized when a file opens.
        for db in self.databases.read().values() {
            db.set_cache_budget(next.storage.cache_bytes());
        }
        if next.security != config.security {
            self.security.replace(next.security.clone());
        }
        if next.ecp != config.ecp && self.daemon.lock().is_some() {
            self.rebuild_ecp(&next);
        }
        *config = next.clone();
        Ok(next)
    }

    pub fn databases(&self) -> Vec<DatabaseInfo> {
        let config = self.config.lock().clone();
        let mounted = self.databases.read();
        let errors = self.mount_errors.lock();
        config
            .databases
            .iter()
            .map(|(name, c)| {
                let dir = self.dir.database_dir(&c.directory);
                let file = file_name(&dir);
                let db = mounted.get(name);
                DatabaseInfo {
                    name: name.clone(),
                    directory: dir.display().to_string(),
                    file: file.display().to_string(),
                    mounted: db.is_some(),
                    read_only: db.map_or(c.read_only, |d| d.is_read_only()),
                    error: errors.get(name).cloned(),
                    corruption: db.and_then(|d| d.corruption()),
                    size_bytes: std::fs::metadata(&file).ok().map(|m| m.len()),
                    meta: db.map(|d| d.meta()),
                }
            })
            .collect()
    }

    /// Creates a database (a new, empty file unless one is already in the directory, e.g.
    /// copied from another instance) and mounts it. Idempotent for an identical request.
    pub fn create_database(&self, name: &str, directory: Option<&str>, read_only: bool) -> Result<DatabaseInfo> {
        let name = normalize_name("database", name).map_err(EngineError::Invalid)?;
        let directory = directory.map(str::to_string).unwrap_or_else(|| format!("databases/{name}"));
        self.dir.confined_database_dir(&directory)?;
        let wanted = DatabaseConfig { directory, read_only, mounted: true };
        // Copied out: a guard in the `if let` would be held through the block, and
        // `database_info` takes the config lock again.
        let existing = self.config.lock().databases.get(&name).cloned();
        if let Some(existing) = existing {
            if existing != wanted {
                return Err(EngineError::DatabaseExists(name));
            }
            if self.databases.read().contains_key(&name) {
                return Ok(self.database_info(&name));
            }
        }
        let db = self.open_database(&name, &wanted, true)?;
        self.change_config(|c| {
            c.databases.insert(name.clone(), wanted.clone());
            Ok(())
        })?;
        self.databases.write().insert(name.clone(), Arc::new(db));
        self.mount_errors.lock().remove(&name);
        Ok(self.database_info(&name))
    }

    fn database_info(&self, name: &str) -> DatabaseInfo {
        self.databases().into_iter().find(|d| d.name == name).expect("listed")
    }

    pub fn mount_database(&self, name: &str, read_only: bool) -> Result<DatabaseInfo> {
        let name = name.to_ascii_uppercase();
        let mut cfg =
            self.config.lock().databases.get(&name).cloned().ok_or_else(|| EngineError::NoDatabase(name.clone()))?;
        // Copied out: a read guard in the `if let` would be held through `else`, where the
        // write lock is taken.
        let mounted = self.databases.read().get(&name).cloned();
        if let Some(db) = mounted {
            db.set_read_only(read_only);
        } else {
            cfg.read_only = read_only;
            let db = self.open_database(&name, &cfg, false)?;
            // A database that failed to mount at startup missed recovery: its file may be
            // behind the journal. Replaying it is recovery's job, at the next start.
            let meta = db.meta();
            self.deactivate_if_behind(&db)?;
            let missed = self.mount_errors.lock().contains_key(&name)
                && meta.journal_instance == self.config.lock().instance.guid
                && meta.journal_position < self.journal.last_position();
            if missed {
                return Err(EngineError::Invalid(format!(
                    "database {name} was not mounted when the engine started, so the journal was not replayed into it (it is at position {}, the journal at {}); restart the engine to recover it",
                    meta.journal_position,
                    self.journal.last_position()
                )));
            }
            self.databases.write().insert(name.clone(), Arc::new(db));
        }
        self.mount_errors.lock().remove(&name);
        self.mirror_state.lock().dismounted.remove(&name);
        self.change_config(|c| {
            let d = c.databases.get_mut(&name).expect("checked");
            d.mounted = true;
            d.read_only = read_only;
            Ok(())
        })?;
        Ok(self.database_info(&name))
    }

    /// Writes the database's changes to its file and closes it; the file can then be copied.
    pub fn dismount_database(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        if !self.config.lock().databases.contains_key(&name) {
            return Err(EngineError::NoDatabase(name));
        }
        if self.is_frozen() {
            return Err(EngineError::Frozen);
        }
        // Held to the end: no checkpoint may write the file once it is dismounted.
        let _c = self.checkpoint_lock.lock();
        self.checkpoint_locked()?;
        {
            let _w = self.write_lock.lock();
            // A rollback after the dismount would change a database nobody writes back:
            // its file would keep the transaction's writes. Wait for transactions to end.
            let mirror_open =
                self.mirror_txns.lock().values().filter(|t| t.undo.iter().any(|u| u.db.name() == name)).count();
            let open = self.open_txns.lock().len() + mirror_open;
            if open > 0 {
                return Err(EngineError::Invalid(format!(
                    "database {name} cannot be dismounted while {open} transaction(s) are open; commit or roll them back, then retry"
                )));
            }
            if let Some(db) = self.databases.read().get(&name) {
                if db.dirty_bytes() > 0 {
                    return Err(EngineError::Invalid(format!("database {name} changed during dismount; retry")));
                }
            }
            if let Some(db) = self.databases.write().remove(&name) {
                db.set_dismounted();
                let meta = db.meta();
                if meta.is_mirrored() {
                    self.mirror_state.lock().dismounted.insert(name.clone(), meta.journal_position);
                }
            }
        }
        self.change_config(|c| {
            c.databases.get_mut(&name).expect("checked").mounted = false;
            Ok(())
        })?;
        tracing::info!("dismounted database {name}");
        Ok(())
    }

    /// Deletes a database that no namespace uses: dismounts it and removes its file.
    pub fn delete_database(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        let cfg =
            self.config.lock().databases.get(&name).cloned().ok_or_else(|| EngineError::NoDatabase(name.clone()))?;
        let users: Vec<String> = self
            .config
            .lock()
            .namespaces
            .iter()
            .filter(|(_, ns)| ns.globals == name || ns.mappings.iter().any(|m| m.database == name))
            .map(|(n, _)| n.clone())
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Invalid(format!(
                "database {name} is used by namespace {}; change those first",
                users.join(", ")
            )));
        }
        // The file is removed below: never one outside the data directory.
        self.dir.confined_database_dir(&cfg.directory).map_err(|e| {
            EngineError::Invalid(format!(
                "database {name} is not deleted: {e}. Remove it from engine.yaml while the engine is down, \
                 and its file by hand"
            ))
        })?;
        if self.databases.read().contains_key(&name) {
            self.dismount_database(&name)?;
        }
        self.change_config(|c| {
            c.databases.remove(&name);
            Ok(())
        })?;
        self.mirror_state.lock().dismounted.remove(&name);
        let dir = self.dir.database_dir(&cfg.directory);
        let file = file_name(&dir);
        if self.vfs.exists(&file) {
            self.vfs.remove_file(&file).map_err(|e| EngineError::io(format!("removing {}", file.display()), e))?;
        }
        let _ = std::fs::remove_dir(&dir);
        tracing::info!("deleted database {name}");
        Ok(())
    }

    pub fn integrity(&self, name: &str) -> Result<IntegrityReport> {
        self.checkpoint()?;
        self.database(&name.to_ascii_uppercase())?.integrity()
    }

    pub fn namespaces(&self) -> Vec<NamespaceInfo> {
        self.config
            .lock()
            .namespaces
            .iter()
            .map(|(name, ns)| NamespaceInfo {
                name: name.clone(),
                globals: ns.globals.clone(),
                mappings: ns.mappings.clone(),
            })
            .collect()
    }

    /// Creates a namespace on a default database. Idempotent for an identical request.
    pub fn create_namespace(&self, name: &str, globals: &str) -> Result<NamespaceInfo> {
        let name = normalize_name("namespace", name).map_err(EngineError::Invalid)?;
        let globals = globals.to_ascii_uppercase();
        self.change_config(|c| {
            match c.namespaces.get_mut(&name) {
                Some(ns) if ns.globals == globals => {}
                Some(_) => return Err(EngineError::NamespaceExists(name.clone())),
                None => {
                    c.namespaces.insert(name.clone(), NamespaceConfig { globals: globals.clone(), mappings: vec![] });
                }
            }
            Ok(())
        })?;
        self.rebuild_namespaces()?;
        Ok(self.namespaces().into_iter().find(|n| n.name == name).expect("created"))
    }

    pub fn delete_namespace(&self, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        self.change_config(|c| c.namespaces.remove(&name).map(|_| ()).ok_or(EngineError::NoNamespace(name.clone())))?;
        self.rebuild_namespaces()
    }

    /// Maps globals (`Company`, `Company*`, `Log(2024):(2025)`) of a namespace to a
    /// database. Idempotent; an existing mapping of the same globals is redirected.
    pub fn add_mapping(&self, namespace: &str, global: &str, database: &str) -> Result<()> {
        let namespace = namespace.to_ascii_uppercase();
        let mapping = MappingConfig {
            global: global.trim().trim_start_matches('^').to_string(),
            database: database.to_ascii_uppercase(),
        };
        self.change_config(|c| {
            let ns = c.namespaces.get_mut(&namespace).ok_or(EngineError::NoNamespace(namespace.clone()))?;
            ns.mappings.retain(|m| m.global != mapping.global);
            ns.mappings.push(mapping.clone());
            Ok(())
        })?;
        self.rebuild_namespaces()
    }

    pub fn remove_mapping(&self, namespace: &str, global: &str) -> Result<()> {
        let namespace = namespace.to_ascii_uppercase();
        let global = global.trim().trim_start_matches('^').to_string();
        self.change_config(|c| {
            let ns = c.namespaces.get_mut(&namespace).ok_or(EngineError::NoNamespace(namespace.clone()))?;
            let before = ns.mappings.len();
            ns.mappings.retain(|m| m.global != global);
            if ns.mappings.len() == before {
                return Err(EngineError::Invalid(format!("namespace {namespace} has no mapping for {global}")));
            }
            Ok(())
        })?;
        self.rebuild_namespaces()
    }
}

impl Instance {
    /// Configures this instance's mirror membership (idempotent). The mirror's identity
    /// (its name and this member's name) cannot be changed in place: that is a different
    /// mirror, and joining it is an operator action of its own.
    pub fn configure_mirror(&self, wanted: crate::mirror::config::MirrorConfig) -> Result<bool> {
        let wanted = wanted.validate().map_err(|problems| EngineError::Invalid(problems.join("; ")))?;
        let current = self.config.lock().mirror.clone();
        match &current {
            Some(c) if *c == wanted => return Ok(false),
            Some(c) if c.name != wanted.name || c.this_member != wanted.this_member => {
                return Err(EngineError::Invalid(format!(
                    "this instance is member {} of mirror {}; it cannot become member {} of mirror {} in place",
                    c.this_member, c.name, wanted.this_member, wanted.name
                )));
            }
            _ => {}
        }
        self.change_config(|c| {
            c.mirror = Some(wanted.clone());
            Ok(())
        })?;
        self.open_mirror_journal()?;
        tracing::info!("mirror {} configured: this member is {}", wanted.name, wanted.this_member);
        Ok(true)
    }
}

/// Cross-checks a configuration: namespaces and mappings name known databases, and every
/// mapping parses.
pub fn validate(c: &Config) -> Result<()> {
    // A limit on everything: 1 MiB ..= 1 TiB per database.
    for (name, mb) in [("storage.cache_mb", c.storage.cache_mb), ("storage.file_cache_mb", c.storage.file_cache_mb)] {
        if !(1..=1 << 20).contains(&mb) {
            return Err(EngineError::Invalid(format!(
                "{name} is {mb}; it must be between 1 and 1048576 (MiB, per database)"
            )));
        }
    }
    c.security.validate().map_err(EngineError::Invalid)?;
    c.ecp.validate().map_err(EngineError::Invalid)?;
    if let Some(name) = c.ecp.remote_databases.keys().find(|n| c.databases.contains_key(*n)) {
        return Err(EngineError::Invalid(format!(
            "database {name} is both a local and a remote database; give one of them another name"
        )));
    }
    let known = |db: &str| c.databases.contains_key(db) || c.ecp.remote_databases.contains_key(db);
    for (name, ns) in &c.namespaces {
        if !known(&ns.globals) {
            return Err(EngineError::Invalid(format!(
                "namespace {name}: default database {} does not exist",
                ns.globals
            )));
        }
        for m in &ns.mappings {
            crate::namespace::mapping::parse(&m.global)
                .map_err(|e| EngineError::Invalid(format!("namespace {name}: mapping {}: {e}", m.global)))?;
            if !known(&m.database) {
                return Err(EngineError::Invalid(format!(
                    "namespace {name}: mapping {} names database {}, which does not exist",
                    m.global, m.database
                )));
            }
        }
    }
    Ok(())
}
