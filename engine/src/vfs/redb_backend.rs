//! redb storage backend over a VfsFile.
