//! redb storage backend over a [`VfsFile`], so database files run on [`super::sim::SimVfs`]
//! in crash tests exactly as they run on the real disk.

use super::VfsFile;
use std::io;
use std::sync::Arc;

/// A `redb::StorageBackend` that stores the database in one [`VfsFile`].
#[derive(Debug, Clone)]
pub struct VfsBackend {
    file: Arc<dyn VfsFile>,
}

impl VfsBackend {
    pub fn new(file: Arc<dyn VfsFile>) -> VfsBackend {
        VfsBackend { file }
    }
}

impl redb::StorageBackend for VfsBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read_exact_at(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.file.write_all_at(offset, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::sim::SimVfs;
    use crate::vfs::{OpenMode, Vfs};
    use redb::{ReadableDatabase, TableDefinition};
    use std::path::Path;

    const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("globals");

    #[test]
    fn committed_data_survives_a_crash_on_simvfs() {
        for seed in 0..4 {
            let vfs = SimVfs::new(seed);
            let dir = Path::new("/data");
            let path = dir.join("db.redb");
            vfs.create_dir_all(dir).unwrap();
            let file = vfs.open(&path, OpenMode::CreateNew).unwrap();
            vfs.sync_dir(dir).unwrap();
            let db = redb::Builder::new().create_with_backend(VfsBackend::new(file)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(TABLE).unwrap();
                table.insert(b"committed".as_slice(), b"yes".as_slice()).unwrap();
            }
            txn.commit().unwrap();
            // An uncommitted change the crash may or may not keep partially: must not matter.
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(TABLE).unwrap();
                table.insert(b"uncommitted".as_slice(), b"?".as_slice()).unwrap();
            }
            drop(txn);

            let after = vfs.crash();
            drop(db);
            let file = after.open(&path, OpenMode::ReadWrite).unwrap();
            let db = redb::Builder::new().create_with_backend(VfsBackend::new(file)).unwrap();
            let read = db.begin_read().unwrap();
            let table = read.open_table(TABLE).unwrap();
            let value = table.get(b"committed".as_slice()).unwrap().expect("committed key present");
            assert_eq!(value.value(), b"yes", "seed {seed}");
            assert!(table.get(b"uncommitted".as_slice()).unwrap().is_none(), "seed {seed}");
        }
    }
}
