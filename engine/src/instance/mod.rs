//! The instance: databases, namespaces and the journal behind one write path.
//! (Scaffolding: the bodies are being written; the signatures are the contract.)

pub mod session;

use crate::error::Result;
use crate::globals::{GlobalRef, Number, Subscript};
pub use session::{Direction, Durability, Session, WriteAck};

/// A summary for INFO, qlist and the management API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub version: String,
    pub data_dir: String,
    pub started_at: String,
    pub superserver_port: u16,
    pub web_port: u16,
    pub journal_position: u64,
    pub durable_position: u64,
    pub durability: Durability,
    pub frozen: bool,
    pub databases: usize,
    pub namespaces: usize,
}

pub struct Instance {}

#[allow(unused_variables)]
impl Instance {
    pub fn session(&self) -> Session {
        todo!()
    }
    pub fn use_namespace(&self, s: &mut Session, name: &str) -> Result<()> {
        todo!()
    }
    pub fn get(&self, s: &Session, r: &GlobalRef) -> Result<Option<Vec<u8>>> {
        todo!()
    }
    pub fn set(&self, s: &mut Session, r: &GlobalRef, value: &[u8]) -> Result<WriteAck> {
        todo!()
    }
    pub fn kill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        todo!()
    }
    pub fn zkill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        todo!()
    }
    /// `$DATA`: 0 none, 1 value only, 10 children only, 11 both.
    pub fn data(&self, s: &Session, r: &GlobalRef) -> Result<u8> {
        todo!()
    }
    /// `$ORDER`: the next (or previous) sibling subscript of the last subscript of `r`;
    /// `r`'s last subscript may be the empty string to start from the first (or last).
    /// Takes the parent and an optional start because `""` is not a valid subscript.
    pub fn order(&self, s: &Session, parent: &GlobalRef, after: Option<&Subscript>, dir: Direction) -> Result<Option<Subscript>> {
        todo!()
    }
    /// `$QUERY`: the next (or previous) node holding a value, in depth-first order.
    pub fn query(&self, s: &Session, r: &GlobalRef, dir: Direction) -> Result<Option<GlobalRef>> {
        todo!()
    }
    /// `$INCREMENT`: atomic add; returns the new value.
    pub fn increment(&self, s: &mut Session, r: &GlobalRef, by: Number) -> Result<(Number, WriteAck)> {
        todo!()
    }
    /// Returns the new `$TLEVEL`.
    pub fn tstart(&self, s: &mut Session) -> Result<u32> {
        todo!()
    }
    pub fn tcommit(&self, s: &mut Session) -> Result<WriteAck> {
        todo!()
    }
    pub fn trollback(&self, s: &mut Session) -> Result<WriteAck> {
        todo!()
    }
    /// Everything written so far, to be awaited with [`Instance::wait_durable`].
    pub fn sync(&self) -> WriteAck {
        todo!()
    }
    pub async fn wait_durable(&self, position: u64) -> Result<()> {
        todo!()
    }
    /// Rolls back a transaction left open by a closed connection.
    pub fn end_session(&self, s: &mut Session) {
        todo!()
    }
    pub fn status(&self) -> InstanceStatus {
        todo!()
    }
}
