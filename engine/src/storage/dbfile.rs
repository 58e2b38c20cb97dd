//! One database file: a redb file with two tables, `globals` (encoded key → value) and
//! `meta` (see [`super::meta`]).
//!
//! Invariant: the file changes only through [`DbFile::write_batch`], one durable redb
//! transaction that writes a batch of globals together with the journal position they are
//! current to, so the file is always a consistent state as of that position.

use super::meta::{DbMeta, FORMAT_VERSION};
use crate::error::{EngineError, Result};
use crate::globals::key;
use redb::{ReadableDatabase, ReadableTable, StorageBackend, TableDefinition};
use std::ops::Bound;
use std::path::{Path, PathBuf};

const GLOBALS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("globals");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// One change of a batch: a value to store, or `None` to remove the key.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

pub struct DbFile {
    path: PathBuf,
    db: redb::Database,
}

/// What `engine integrity` reports for a file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IntegrityReport {
    pub path: PathBuf,
    pub meta: DbMeta,
    pub globals: u64,
    pub nodes: u64,
    pub value_bytes: u64,
}

impl DbFile {
    /// Creates a new database file on an empty backend and writes its metadata.
    pub fn create(path: &Path, backend: impl StorageBackend, meta: &DbMeta) -> Result<DbFile> {
        let db = redb::Builder::new().create_with_backend(backend).map_err(|e| corrupt(path, e))?;
        let file = DbFile { path: path.to_path_buf(), db };
        file.write_batch(&[], meta)?;
        Ok(file)
    }

    /// Opens an existing file and reads its metadata. A file that is not a database, is
    /// truncated or corrupt, or comes from a newer engine is refused with an error naming it.
    pub fn open(path: &Path, backend: impl StorageBackend) -> Result<(DbFile, DbMeta)> {
        let db = redb::Builder::new().create_with_backend(backend).map_err(|e| corrupt(path, e))?;
        let file = DbFile { path: path.to_path_buf(), db };
        let meta = file.read_meta()?;
        if meta.format_version > FORMAT_VERSION {
            return Err(EngineError::FutureFormat {
                path: path.to_path_buf(),
                found: meta.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok((file, meta))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_meta(&self) -> Result<DbMeta> {
        let txn = self.db.begin_read().map_err(|e| corrupt(&self.path, e))?;
        let table = txn
            .open_table(META)
            .map_err(|e| corrupt(&self.path, format!("no metadata table ({e}); not a database file")))?;
        let get = |k: &str| table.get(k).ok().flatten().map(|v| v.value().to_vec());
        DbMeta::from_rows(get).map_err(|detail| corrupt(&self.path, detail))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = txn.open_table(GLOBALS).map_err(|e| self.io(e))?;
        let value = table.get(key).map_err(|e| self.io(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    /// A consistent read view for range scans.
    pub fn reader(&self) -> Result<FileReader> {
        let txn = self.db.begin_read().map_err(|e| self.io(e))?;
        let table = txn.open_table(GLOBALS).map_err(|e| self.io(e))?;
        Ok(FileReader { table, path: self.path.clone() })
    }

    /// Applies `changes` and stores `meta` in one durable transaction.
    pub fn write_batch(&self, changes: &[Change], meta: &DbMeta) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| self.io(e))?;
        {
            let mut globals = txn.open_table(GLOBALS).map_err(|e| self.io(e))?;
            for (k, v) in changes {
                match v {
                    Some(v) => {
                        globals.insert(k.as_slice(), v.as_slice()).map_err(|e| self.io(e))?;
                    }
                    None => {
                        globals.remove(k.as_slice()).map_err(|e| self.io(e))?;
                    }
                }
            }
            let mut table = txn.open_table(META).map_err(|e| self.io(e))?;
            for (k, v) in meta.to_rows() {
                table.insert(k, v.as_slice()).map_err(|e| self.io(e))?;
            }
        }
        txn.commit().map_err(|e| self.io(e))
    }

    /// Verifies the file: redb's page checksums and structure, then every key decodes and
    /// keys are in collation order.
    pub fn integrity(&mut self) -> Result<IntegrityReport> {
        let ok = self.db.check_integrity().map_err(|e| corrupt(&self.path, e))?;
        if !ok {
            return Err(corrupt(&self.path, "page checksums or structure do not verify"));
        }
        let meta = self.read_meta()?;
        let reader = self.reader()?;
        let (mut globals, mut nodes, mut value_bytes) = (0u64, 0u64, 0u64);
        let mut last_name: Option<String> = None;
        for item in reader.table.iter().map_err(|e| self.io(e))? {
            let (k, v) = item.map_err(|e| self.io(e))?;
            let r = key::decode(k.value()).map_err(|e| corrupt(&self.path, format!("key #{nodes}: {e}")))?;
            if last_name.as_deref() != Some(r.name.as_str()) {
                globals += 1;
                last_name = Some(r.name);
            }
            nodes += 1;
            value_bytes += v.value().len() as u64;
        }
        Ok(IntegrityReport { path: self.path.clone(), meta, globals, nodes, value_bytes })
    }

    fn io(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::io(format!("database file {}", self.path.display()), std::io::Error::other(e.to_string()))
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::CorruptDatabase { path: path.to_path_buf(), detail: e.to_string() }
}

/// Owned entries of a range scan, in scan order.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>)>> + 'a>;
type Guard = redb::AccessGuard<'static, &'static [u8]>;
type RawEntry = std::result::Result<(Guard, Guard), redb::StorageError>;

/// A read-only snapshot of a file's globals.
pub struct FileReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    path: PathBuf,
}

impl FileReader {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let v = self.table.get(key).map_err(|e| self.io(e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Entries with keys in `(lo, hi)` bounds, ascending or descending.
    pub fn range(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>, reverse: bool) -> Result<Entries<'_>> {
        let range = self.table.range::<&[u8]>((lo, hi)).map_err(|e| self.io(e))?;
        let map = move |item: RawEntry| -> Result<(Vec<u8>, Vec<u8>)> {
            let (k, v) = item.map_err(|e| self.io(e))?;
            Ok((k.value().to_vec(), v.value().to_vec()))
        };
        if reverse {
            Ok(Box::new(range.rev().map(map)))
        } else {
            Ok(Box::new(range.map(map)))
        }
    }

    fn io(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::io(format!("database file {}", self.path.display()), std::io::Error::other(e.to_string()))
    }
}
