//! An in-memory [`Backend`] for tests and demos: one tree for all namespaces (a namespace
//! is only a name here), nested transactions by snapshot, and globals that can be marked
//! read-only to exercise `<PROTECT>` the way a mirrored database on a backup would.

use super::backend::{Backend, BackendError};
use super::tree::Tree;
use crate::globals::reference::format;
use crate::globals::{GlobalRef, Number, Subscript};
use std::collections::BTreeSet;

/// The detail `<PROTECT>` prints after the reference, standing in for a database directory.
const READ_ONLY_DATABASE: &str = "/mem/readonly/";

#[derive(Debug)]
pub struct MemoryBackend {
    tree: Tree,
    namespace: String,
    namespaces: BTreeSet<String>,
    read_only: BTreeSet<String>,
    /// The tree as it was at the outermost TSTART; TROLLBACK restores it.
    snapshot: Option<Tree>,
    level: u32,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    /// Namespaces `USER` (current) and `%SYS`.
    pub fn new() -> MemoryBackend {
        MemoryBackend {
            tree: Tree::new(),
            namespace: "USER".into(),
            namespaces: ["USER", "%SYS"].into_iter().map(String::from).collect(),
            read_only: BTreeSet::new(),
            snapshot: None,
            level: 0,
        }
    }

    /// Adds a namespace ZNSPACE can switch to (names are case-insensitive).
    pub fn add_namespace(&mut self, name: &str) -> &mut Self {
        self.namespaces.insert(name.to_ascii_uppercase());
        self
    }

    /// Makes every write to `^name` fail with `<PROTECT>`.
    pub fn set_read_only(&mut self, name: &str) -> &mut Self {
        self.read_only.insert(name.to_string());
        self
    }

    fn writable(&self, r: &GlobalRef) -> Result<(), BackendError> {
        if self.read_only.contains(&r.name) {
            return Err(BackendError::new("PROTECT", format!("{},{READ_ONLY_DATABASE}", format(r))));
        }
        Ok(())
    }
}

impl Backend for MemoryBackend {
    fn get(&mut self, r: &GlobalRef) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.tree.get(r)?)
    }

    fn set(&mut self, r: &GlobalRef, value: &[u8]) -> Result<(), BackendError> {
        self.writable(r)?;
        Ok(self.tree.set(r, value)?)
    }

    fn kill(&mut self, r: &GlobalRef) -> Result<(), BackendError> {
        self.writable(r)?;
        Ok(self.tree.kill(r)?)
    }

    fn zkill(&mut self, r: &GlobalRef) -> Result<(), BackendError> {
        self.writable(r)?;
        Ok(self.tree.zkill(r)?)
    }

    fn data(&mut self, r: &GlobalRef) -> Result<u8, BackendError> {
        Ok(self.tree.data(r)?)
    }

    fn order(
        &mut self,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        backward: bool,
    ) -> Result<Option<Subscript>, BackendError> {
        Ok(self.tree.order(parent, after, backward)?)
    }

    fn query(&mut self, r: &GlobalRef, backward: bool) -> Result<Option<GlobalRef>, BackendError> {
        Ok(self.tree.query(r, backward)?)
    }

    fn increment(&mut self, r: &GlobalRef, by: Number) -> Result<Number, BackendError> {
        self.writable(r)?;
        Ok(self.tree.increment(r, by)?)
    }

    fn tstart(&mut self) -> Result<u32, BackendError> {
        if self.level == 0 {
            self.snapshot = Some(self.tree.clone());
        }
        self.level += 1;
        Ok(self.level)
    }

    fn tcommit(&mut self) -> Result<(), BackendError> {
        if self.level == 0 {
            return Err(BackendError::new("COMMAND", "TCOMMIT with no transaction open"));
        }
        self.level -= 1;
        if self.level == 0 {
            self.snapshot = None;
        }
        Ok(())
    }

    fn trollback(&mut self) -> Result<(), BackendError> {
        if let Some(t) = self.snapshot.take() {
            self.tree = t;
        }
        self.level = 0;
        Ok(())
    }

    fn set_namespace(&mut self, name: &str) -> Result<(), BackendError> {
        let upper = name.to_ascii_uppercase();
        if !self.namespaces.contains(&upper) {
            return Err(BackendError::new("NAMESPACE", format!("*{name}")));
        }
        self.namespace = upper;
        Ok(())
    }

    fn namespace(&mut self) -> Result<String, BackendError> {
        Ok(self.namespace.clone())
    }
}
