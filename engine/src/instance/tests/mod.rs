//! Instance tests: globals semantics through namespaces, transactions, recovery, and
//! power cuts at any disk operation.

mod crash;
mod globals;
mod model;
mod mount;
mod recovery;

use super::{Instance, InstanceOptions};
use crate::globals::reference::parse;
use crate::globals::GlobalRef;
use crate::vfs::sim::SimVfs;
use crate::vfs::Vfs;
use std::path::Path;
use std::sync::Arc;

pub(super) fn r(text: &str) -> GlobalRef {
    parse(text).unwrap()
}

/// An instance on a simulated disk; the configuration file lives in `dir` on the real one.
pub(super) fn open(dir: &Path, vfs: Arc<dyn Vfs>) -> Arc<Instance> {
    Instance::open(InstanceOptions { data_dir: dir.to_path_buf(), vfs, background: false }).unwrap()
}

pub(super) fn sim_instance() -> (tempfile::TempDir, Arc<SimVfs>, Arc<Instance>) {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(SimVfs::new(1));
    let instance = open(dir.path(), vfs.clone());
    (dir, vfs, instance)
}
