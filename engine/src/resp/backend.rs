//! What the RESP server needs from the database: exactly the [`Instance`] calls it makes.
//!
//! The server is generic over this trait so it can be tested against a small in-memory
//! backend (see `memory.rs`, tests only) and run against the real instance unchanged:
//! `serve(listener, instance, ...)` with an `Arc<Instance>` picks the implementation below.

use crate::error::{EngineError, Result};
use crate::globals::{GlobalRef, Number, Subscript};
use crate::instance::{Direction, DurableWait, Instance, InstanceStatus, JournalId, Session, Update, WriteAck};
use crate::mirror::status::{MirrorAction, MirrorStatus};
use std::future::Future;
use std::sync::Arc;

/// The database operations behind the commands. Signatures mirror [`Instance`]'s.
pub trait Backend: Send + Sync + 'static {
    /// The superserver's client counters (INFO reads them; the instance's are its own).
    fn counters(&self) -> Arc<crate::instance::counters::ServerCounters>;
    fn session(&self) -> Session;
    fn use_namespace(&self, s: &mut Session, name: &str) -> Result<()>;
    fn get(&self, s: &Session, r: &GlobalRef) -> Result<Option<Vec<u8>>>;
    fn set(&self, s: &mut Session, r: &GlobalRef, value: &[u8]) -> Result<WriteAck>;
    fn kill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck>;
    fn zkill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck>;
    fn data(&self, s: &Session, r: &GlobalRef) -> Result<u8>;
    fn order(
        &self,
        s: &Session,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        dir: Direction,
    ) -> Result<Option<Subscript>>;
    fn query(&self, s: &Session, r: &GlobalRef, dir: Direction) -> Result<Option<GlobalRef>>;
    fn increment(&self, s: &mut Session, r: &GlobalRef, by: Number) -> Result<(Number, WriteAck)>;
    /// Read-modify-write of one node, atomic with respect to other writes (see
    /// `Instance::update`).
    fn update<F: FnMut(Option<&[u8]>) -> Result<Update>>(
        &self,
        s: &mut Session,
        r: &GlobalRef,
        change: F,
    ) -> Result<(Option<Vec<u8>>, Option<WriteAck>)>;
    /// Nodes with a value after the encoded key `after`, in order, with their value lengths.
    fn scan_keys(&self, s: &Session, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, usize)>>;
    /// The mirrored databases behind the session's namespace (FLUSHDB refuses them).
    fn mirrored_databases(&self, s: &Session) -> Result<Vec<String>>;
    fn tstart(&self, s: &mut Session) -> Result<u32>;
    fn tcommit(&self, s: &mut Session) -> Result<WriteAck>;
    fn trollback(&self, s: &mut Session) -> Result<WriteAck>;
    /// Everything written so far, in each journal.
    fn sync(&self) -> DurableWait;
    /// The positions a read must see durable before its reply is sent (see
    /// `Instance::read_barrier`).
    fn read_barrier(&self, s: &Session) -> DurableWait;
    /// Waits until a position of a journal may be acknowledged to the client.
    fn wait_durable(&self, journal: JournalId, position: u64) -> impl Future<Output = Result<()>> + Send;
    fn end_session(&self, s: &mut Session);
    fn status(&self) -> InstanceStatus;
    /// Each mirror member's name and superserver address (`host:port`) from the mirror
    /// configuration; empty when this instance has none.
    fn member_superservers(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The running mirror member's status (`MIRROR STATUS`); `None` when this is no mirror
    /// member. Async because the mirror runtime may take locks: the instance reads it off the
    /// async workers.
    fn mirror_status(&self) -> impl Future<Output = Option<MirrorStatus>> + Send {
        async { None }
    }
    /// Users and roles (`auth.rs`); `None`: no authentication at all (test doubles).
    fn security(&self) -> Option<std::sync::Arc<crate::security::Security>> {
        None
    }
    /// The data-server role of ECP (`ecp.rs`); `None`: not served (test doubles).
    fn ecp_service(&self) -> Option<Arc<crate::ecp::service::EcpService>> {
        None
    }
    /// Both ECP roles' status (`ECP STATUS`).
    fn ecp_status(&self) -> crate::ecp::status::EcpStatus {
        crate::ecp::status::EcpStatus::default()
    }
    /// The database an ECP request names (by name or directory).
    fn ecp_database(&self, path: &str) -> Result<String> {
        Err(EngineError::NoDatabase(path.to_string()))
    }
    /// Nodes in `[lo, hi)` of the session's view (`Instance::scan_range`).
    fn scan_range(
        &self,
        s: &Session,
        lo: &[u8],
        hi: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, usize)>> {
        let _ = (s, lo, hi, reverse, limit);
        Err(EngineError::Invalid("ECP is not served here".into()))
    }
    /// KILL of part of a subtree (`Instance::kill_part`).
    fn kill_part(&self, s: &mut Session, key: &[u8], lo: Vec<u8>, hi: Vec<u8>) -> Result<WriteAck> {
        let _ = (s, key, lo, hi);
        Err(EngineError::Invalid("ECP is not served here".into()))
    }
    /// Whether an ECP request was applied (`Instance::ecp_outcome`).
    fn ecp_outcome(
        &self,
        id: crate::instance::ecp::RequestId<'_>,
        from: [(JournalId, u64); 2],
    ) -> Result<Option<crate::instance::ecp::Applied>> {
        let _ = (id, from);
        Err(EngineError::Invalid("ECP is not served here".into()))
    }
    /// This instance's mirror role, as the write path sees it.
    fn mirror_mode(&self) -> crate::instance::MirrorMode {
        crate::instance::MirrorMode::None
    }
    /// The last positions of the local and the mirror journal (0 without one).
    fn journal_ends(&self) -> [u64; 2] {
        [0, 0]
    }
    /// Carries out a mirror operator action (`MIRROR <verb>`); returns what happened.
    fn mirror_act(&self, action: MirrorAction) -> impl Future<Output = Result<String>> + Send {
        drop(action);
        async { Err(EngineError::NotMirrored) }
    }
}

impl Backend for Instance {
    fn counters(&self) -> Arc<crate::instance::counters::ServerCounters> {
        self.superserver_counters()
    }

    fn session(&self) -> Session {
        Instance::session(self)
    }
    fn security(&self) -> Option<std::sync::Arc<crate::security::Security>> {
        Some(Instance::security(self).clone())
    }
    fn use_namespace(&self, s: &mut Session, name: &str) -> Result<()> {
        Instance::use_namespace(self, s, name)
    }
    fn get(&self, s: &Session, r: &GlobalRef) -> Result<Option<Vec<u8>>> {
        Instance::get(self, s, r)
    }
    fn set(&self, s: &mut Session, r: &GlobalRef, value: &[u8]) -> Result<WriteAck> {
        Instance::set(self, s, r, value)
    }
    fn kill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        Instance::kill(self, s, r)
    }
    fn zkill(&self, s: &mut Session, r: &GlobalRef) -> Result<WriteAck> {
        Instance::zkill(self, s, r)
    }
    fn data(&self, s: &Session, r: &GlobalRef) -> Result<u8> {
        Instance::data(self, s, r)
    }
    fn order(
        &self,
        s: &Session,
        parent: &GlobalRef,
        after: Option<&Subscript>,
        dir: Direction,
    ) -> Result<Option<Subscript>> {
        Instance::order(self, s, parent, after, dir)
    }
    fn query(&self, s: &Session, r: &GlobalRef, dir: Direction) -> Result<Option<GlobalRef>> {
        Instance::query(self, s, r, dir)
    }
    fn increment(&self, s: &mut Session, r: &GlobalRef, by: Number) -> Result<(Number, WriteAck)> {
        Instance::increment(self, s, r, by)
    }
    fn update<F: FnMut(Option<&[u8]>) -> Result<Update>>(
        &self,
        s: &mut Session,
        r: &GlobalRef,
        change: F,
    ) -> Result<(Option<Vec<u8>>, Option<WriteAck>)> {
        Instance::update(self, s, r, change)
    }
    fn scan_keys(&self, s: &Session, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, usize)>> {
        Instance::scan_keys(self, s, after, limit)
    }
    fn mirrored_databases(&self, s: &Session) -> Result<Vec<String>> {
        Instance::mirrored_databases_of(self, s)
    }
    fn tstart(&self, s: &mut Session) -> Result<u32> {
        Instance::tstart(self, s)
    }
    fn tcommit(&self, s: &mut Session) -> Result<WriteAck> {
        Instance::tcommit(self, s)
    }
    fn trollback(&self, s: &mut Session) -> Result<WriteAck> {
        Instance::trollback(self, s)
    }
    fn sync(&self) -> DurableWait {
        Instance::sync_all(self)
    }
    fn read_barrier(&self, s: &Session) -> DurableWait {
        Instance::read_barrier(self, s)
    }
    fn wait_durable(&self, journal: JournalId, position: u64) -> impl Future<Output = Result<()>> + Send {
        Instance::wait_durable_in(self, journal, position)
    }
    fn end_session(&self, s: &mut Session) {
        Instance::end_session(self, s)
    }
    fn status(&self) -> InstanceStatus {
        Instance::status(self)
    }
    fn member_superservers(&self) -> Vec<(String, String)> {
        self.config()
            .mirror
            .map(|m| m.members.into_iter().map(|x| (x.name, x.superserver)).collect())
            .unwrap_or_default()
    }
    fn mirror_status(&self) -> impl Future<Output = Option<MirrorStatus>> + Send {
        let control = self.mirror_control();
        async move {
            let control = control?;
            tokio::task::spawn_blocking(move || control.status()).await.unwrap_or_else(|e| {
                tracing::warn!("reading the mirror status failed: {e}");
                None
            })
        }
    }
    fn ecp_service(&self) -> Option<Arc<crate::ecp::service::EcpService>> {
        Some(Instance::ecp_service(self).clone())
    }
    fn ecp_status(&self) -> crate::ecp::status::EcpStatus {
        Instance::ecp_status(self)
    }
    fn ecp_database(&self, path: &str) -> Result<String> {
        Instance::ecp_database(self, path)
    }
    fn scan_range(
        &self,
        s: &Session,
        lo: &[u8],
        hi: &[u8],
        reverse: bool,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, usize)>> {
        Instance::scan_range(self, s, lo, hi, reverse, limit)
    }
    fn kill_part(&self, s: &mut Session, key: &[u8], lo: Vec<u8>, hi: Vec<u8>) -> Result<WriteAck> {
        Instance::kill_part(self, s, key, lo, hi)
    }
    fn ecp_outcome(
        &self,
        id: crate::instance::ecp::RequestId<'_>,
        from: [(JournalId, u64); 2],
    ) -> Result<Option<crate::instance::ecp::Applied>> {
        Instance::ecp_outcome(self, id, from)
    }
    fn mirror_mode(&self) -> crate::instance::MirrorMode {
        Instance::mirror_mode(self)
    }
    fn journal_ends(&self) -> [u64; 2] {
        [self.journal_last_position(), self.mirror_journal().map_or(0, |j| j.last_position())]
    }
    fn mirror_act(&self, action: MirrorAction) -> impl Future<Output = Result<String>> + Send {
        let control = self.mirror_control();
        async move {
            let control = control.ok_or(EngineError::NotMirrored)?;
            tokio::task::spawn_blocking(move || control.act(action))
                .await
                .unwrap_or_else(|e| Err(EngineError::Invalid(format!("the mirror action failed unexpectedly: {e}"))))
        }
    }
}
