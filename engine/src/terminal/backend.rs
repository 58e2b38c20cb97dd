//! The seam between the terminal and the data: every global operation the terminal
//! performs goes through [`Backend`]. The RESP client implements it for a live engine;
//! [`super::MemoryBackend`] implements it in memory for tests.

use crate::globals::{GlobalRef, GlobalsError, Number, Subscript};
use std::fmt;

/// A failed global operation. `code` is the error name the terminal prints in angle
/// brackets (`SYNTAX`, `PROTECT`, `UNDEFINED`, `NAMESPACE`, `SUBSCRIPT`, `COMMAND`, ...);
/// `message` is the short detail printed after it (`^x(1),/db/path/` for `PROTECT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    pub code: String,
    pub message: String,
}

impl BackendError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> BackendError {
        BackendError { code: code.into(), message: message.into() }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "<{}>", self.code)
        } else {
            write!(f, "<{}> {}", self.code, self.message)
        }
    }
}

impl std::error::Error for BackendError {}

impl From<GlobalsError> for BackendError {
    fn from(e: GlobalsError) -> BackendError {
        BackendError::new(e.code(), e.to_string())
    }
}

/// The global operations the terminal needs. Every call may fail with a
/// [`BackendError`]; the terminal prints it and goes on with the next line.
///
/// All methods take `&mut self` because a network implementation owns a connection.
pub trait Backend {
    /// The value of a node, `None` when the node has no value.
    fn get(&mut self, r: &GlobalRef) -> Result<Option<Vec<u8>>, BackendError>;
    fn set(&mut self, r: &GlobalRef, value: &[u8]) -> Result<(), BackendError>;
    /// Removes a node and its whole subtree.
    fn kill(&mut self, r: &GlobalRef) -> Result<(), BackendError>;
    /// Removes the value of one node, keeping its children.
    fn zkill(&mut self, r: &GlobalRef) -> Result<(), BackendError>;
    /// `$DATA`: 0 none, 1 value only, 10 children only, 11 both.
    fn data(&mut self, r: &GlobalRef) -> Result<u8, BackendError>;
    /// `$ORDER`: the child subscript of `parent` after (or, `backward`, before) `after`;
    /// `after == None` starts from the first (or last) child.
    fn order(
        &mut self,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        backward: bool,
    ) -> Result<Option<Subscript>, BackendError>;
    /// `$QUERY`: the next (or previous) node holding a value, in depth-first collation
    /// order across the whole global. The unsubscripted root node is never returned.
    fn query(&mut self, r: &GlobalRef, backward: bool) -> Result<Option<GlobalRef>, BackendError>;
    /// `$INCREMENT`: atomically adds `by` to the node's numeric value (an undefined node
    /// counts as 0) and returns the new value.
    fn increment(&mut self, r: &GlobalRef, by: Number) -> Result<Number, BackendError>;
    /// Opens a (nested) transaction and returns the new transaction level.
    fn tstart(&mut self) -> Result<u32, BackendError>;
    /// Commits one level; `COMMAND` when no transaction is open.
    fn tcommit(&mut self) -> Result<(), BackendError>;
    /// Rolls back every open level.
    fn trollback(&mut self) -> Result<(), BackendError>;
    /// Switches namespace; `NAMESPACE` when it does not exist.
    fn set_namespace(&mut self, name: &str) -> Result<(), BackendError>;
    /// The current namespace as the prompt shows it (`USER`).
    fn namespace(&mut self) -> Result<String, BackendError>;
}
