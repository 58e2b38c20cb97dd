//! The instance: databases, namespaces and the journal behind one write path.
//!
//! Invariants:
//! - Every change is appended to the journal and applied to the cache under one write lock,
//!   so journal order is apply order (recovery and, later, mirror members replay exactly).
//! - Database files are written only by a checkpoint, after the journal is durable up to the
//!   checkpoint's position (write-ahead rule).
//! - A transaction's writes carry old values, so an unfinished transaction can always be
//!   rolled back, online or at recovery.
//! - A mirror member has a second journal, the mirror journal: mirrored databases follow
//!   it, every other database the local journal (`mirror.rs`).

pub mod admin;
mod checkpoint;
pub mod config;
pub mod counters;
pub mod datadir;
mod dejournal;
pub mod ecp;
mod keyspace;
mod mirror;
mod mirror_dbs;
mod mirror_new_db;
mod ops;
mod receive;
mod recovery;
mod remote;
mod rewind;
pub use mirror::MirrorMode;
pub use ops::Update;
pub use recovery::RecoveryReport;
pub use rewind::RewindReport;
pub mod session;
#[cfg(test)]
mod tests;
mod txn;
mod users;
pub use users::{read_password_file, UserChange, UserInfo};

use crate::error::{EngineError, Result};
use crate::journal::{Journal, WriterHandle};
use crate::namespace::{GlobalMapping, Routing};
use crate::security::{Rights, Security};
use crate::storage::Database;
use crate::vfs::Vfs;
use config::Config;
use datadir::DataDir;
use parking_lot::{Condvar, Mutex, RwLock};
pub use session::{Direction, Durability, DurableWait, JournalId, Session, WriteAck};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A summary for INFO, qlist and the management API.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InstanceStatus {
    pub name: String,
    pub version: String,
    pub data_dir: String,
    pub started_at: String,
    pub superserver_port: u16,
    pub web_port: u16,
    /// The local journal's last and durable positions.
    pub journal_position: u64,
    pub durable_position: u64,
    /// The mirror journal's, on a mirror member.
    pub mirror_journal_position: Option<u64>,
    pub mirror_durable_position: Option<u64>,
    pub mirror_mode: MirrorMode,
    pub durability: Durability,
    pub frozen: bool,
    pub databases: usize,
    pub namespaces: usize,
}

/// How to open an instance.
pub struct InstanceOptions {
    pub data_dir: PathBuf,
    /// Where journal and database files live (the real disk, or a simulated one in tests).
    pub vfs: Arc<dyn Vfs>,
    /// Start the journal writer thread and the write daemon. Tests that drive flushes and
    /// checkpoints by hand leave this off.
    pub background: bool,
}

/// A namespace compiled for lookups.
pub(crate) struct NamespaceView {
    pub(crate) routing: Routing,
}

pub struct Instance {
    dir: DataDir,
    vfs: Arc<dyn Vfs>,
    config: Mutex<Config>,
    journal: Arc<Journal>,
    /// Serialises journal append + apply (see the module invariants).
    write_lock: Mutex<()>,
    databases: RwLock<BTreeMap<String, Arc<Database>>>,
    /// Why a configured database is not mounted (corrupt file, missing file...).
    mount_errors: Mutex<BTreeMap<String, String>>,
    namespaces: RwLock<BTreeMap<String, Arc<NamespaceView>>>,
    /// Open transactions of the local journal: id → position of their TSTART.
    open_txns: Mutex<BTreeMap<u64, u64>>,
    /// The mirror journal, once this instance is a mirror member.
    mirror: OnceLock<mirror::MirrorJournal>,
    mirror_state: Mutex<mirror::MirrorState>,
    /// Open transactions of the mirror journal, with their undo: the primary's own (its
    /// sessions), and those received or recovered, which the next primary rolls back.
    /// Kept here rather than in the sessions so that promotion and rewind reach them all.
    mirror_txns: Mutex<BTreeMap<u64, dejournal::TxnUndo>>,
    /// The runtime's acknowledgements of mirror journal positions (the commit rule).
    acks: tokio::sync::watch::Sender<mirror::AckState>,
    next_txn: AtomicU64,
    checkpoint_lock: Mutex<()>,
    frozen_until: Mutex<Option<Instant>>,
    ports: Mutex<(u16, u16)>,
    started_at: String,
    daemon: Mutex<Option<Daemon>>,
    recovery: Mutex<recovery::RecoveryReport>,
    /// The instance-wide durability setting, mirrored from the configuration for the
    /// write path (which must not take the configuration lock).
    durability: AtomicU8,
    /// Writes acknowledged so far (paces the memory-bound checks).
    writes: AtomicU64,
    /// The running mirror member, once the mirror runtime started (status and operator
    /// actions for the servers).
    mirror_control: RwLock<Option<Arc<dyn crate::mirror::status::MirrorControl>>>,
    /// The superserver's client counters (INFO, /metrics).
    superserver: Arc<counters::ServerCounters>,
    /// Users and roles in force (a copy of the configuration's `security`, changed with it).
    security: Arc<Security>,
    /// ECP: the data-server role's registry, the application-server role's data servers
    /// and remote databases (`remote.rs`).
    ecp: remote::EcpState,
}

struct Daemon {
    writer: WriterHandle,
    /// The mirror journal's writer, once it is open.
    mirror_writer: Mutex<Option<WriterHandle>>,
    wake: Arc<(Mutex<DaemonSignal>, Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct DaemonSignal {
    stop: bool,
    wake: bool,
}

/// Buffered journal bytes past which plain writes wait for their fsync (back-pressure).
const JOURNAL_BACKPRESSURE_BYTES: usize = 64 << 20;
/// Dirty cache bytes past which the write daemon runs at once.
const DIRTY_WAKE_BYTES: usize = 64 << 20;
/// Writes between two checks of the memory bounds above.
const BOUNDS_CHECK_EVERY: u64 = 1024;

fn durability_code(d: Durability) -> u8 {
    match d {
        Durability::Buffered => 0,
        Durability::Always => 1,
    }
}

fn durability_from(code: u8) -> Durability {
    if code == 1 {
        Durability::Always
    } else {
        Durability::Buffered
    }
}

impl Instance {
    /// Opens the instance in `data_dir`, initialising it on first start (configuration,
    /// database USER, namespace USER, journal), then recovers from the journal.
    pub fn open(options: InstanceOptions) -> Result<Arc<Instance>> {
        let dir = DataDir::new(&options.data_dir);
        let (config, first_start) = load_or_init_config(&dir)?;
        let journal = Arc::new(Journal::open(options.vfs.clone(), journal_options(dir.journal_dir(), &config))?);
        let has_mirror = config.mirror.is_some();
        let ports = (config.network.superserver_port, config.network.web_port);
        let durability = config.journal.durability;
        let security = Arc::new(Security::new(config.security.clone()));
        let ecp = remote::EcpState::new(&config.ecp);
        let instance = Arc::new(Instance {
            dir,
            vfs: options.vfs,
            config: Mutex::new(config),
            journal,
            write_lock: Mutex::new(()),
            databases: RwLock::new(BTreeMap::new()),
            mount_errors: Mutex::new(BTreeMap::new()),
            namespaces: RwLock::new(BTreeMap::new()),
            open_txns: Mutex::new(BTreeMap::new()),
            mirror: OnceLock::new(),
            mirror_state: Mutex::new(mirror::MirrorState::default()),
            mirror_txns: Mutex::new(BTreeMap::new()),
            acks: tokio::sync::watch::channel(mirror::AckState::default()).0,
            next_txn: AtomicU64::new(1),
            checkpoint_lock: Mutex::new(()),
            frozen_until: Mutex::new(None),
            ports: Mutex::new(ports),
            started_at: datadir::now_text(),
            daemon: Mutex::new(None),
            recovery: Mutex::new(recovery::RecoveryReport::default()),
            durability: AtomicU8::new(durability_code(durability)),
            writes: AtomicU64::new(0),
            mirror_control: RwLock::new(None),
            superserver: Arc::default(),
            security,
            ecp,
        });
        if has_mirror {
            instance.open_mirror_journal()?;
        }
        instance.mount_configured(first_start)?;
        // Transaction ids are unique across both journals: past every position of either
        // (each TSTART takes one), and past every id recovery saw.
        instance.next_txn.fetch_max(instance.journal.last_position() + 1, Ordering::SeqCst);
        *instance.recovery.lock() = instance.recover()?;
        instance.next_txn.fetch_max(instance.journal.last_position() + 1, Ordering::SeqCst);
        instance.rebuild_namespaces()?;
        if options.background {
            instance.start_daemons();
            // Data servers are reached by a serving engine only (their monitors connect).
            instance.rebuild_ecp(&instance.config());
        }
        Ok(instance)
    }

    /// What recovery did when this instance opened.
    pub fn recovery_report(&self) -> RecoveryReport {
        self.recovery.lock().clone()
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.dir
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    pub fn config(&self) -> Config {
        self.config.lock().clone()
    }

    /// Installs the running mirror member (done once by the mirror runtime at start).
    pub fn set_mirror_control(&self, control: Arc<dyn crate::mirror::status::MirrorControl>) {
        *self.mirror_control.write() = Some(control);
    }

    /// The running mirror member, if any.
    /// The superserver's client counters.
    pub fn superserver_counters(&self) -> Arc<counters::ServerCounters> {
        self.superserver.clone()
    }

    pub fn mirror_control(&self) -> Option<Arc<dyn crate::mirror::status::MirrorControl>> {
        self.mirror_control.read().clone()
    }

    /// Records the ports the servers actually bound (0 in the config picks free ones).
    pub fn set_ports(&self, superserver: u16, web: u16) {
        *self.ports.lock() = (superserver, web);
    }

    pub fn ports(&self) -> (u16, u16) {
        *self.ports.lock()
    }

    pub fn started_at(&self) -> &str {
        &self.started_at
    }

    /// Users and roles in force.
    pub fn security(&self) -> &Arc<Security> {
        &self.security
    }

    pub fn session(&self) -> Session {
        let rights = if self.security.required() { Rights::nobody() } else { Rights::open() };
        Session::new("USER", Arc::new(rights))
    }

    pub fn use_namespace(&self, s: &mut Session, name: &str) -> Result<()> {
        let name = name.to_ascii_uppercase();
        if !self.namespaces.read().contains_key(&name) {
            return Err(EngineError::NoNamespace(name));
        }
        s.namespace = name;
        Ok(())
    }

    pub(crate) fn namespace(&self, name: &str) -> Result<Arc<NamespaceView>> {
        self.namespaces.read().get(name).cloned().ok_or_else(|| EngineError::NoNamespace(name.to_string()))
    }

    /// The local journal's last position.
    pub fn journal_last_position(&self) -> u64 {
        self.journal.last_position()
    }

    pub(crate) fn database(&self, name: &str) -> Result<Arc<Database>> {
        self.databases.read().get(name).cloned().ok_or_else(|| EngineError::NotMounted { name: name.to_string() })
    }

    pub fn effective_durability(&self, s: &Session) -> Durability {
        s.durability.unwrap_or_else(|| durability_from(self.durability.load(Ordering::Relaxed)))
    }

    /// For a session in `always` durability: the positions a read may have seen, in both
    /// journals, to await before answering, so no client acts on a write a crash (or a
    /// failover) could still undo (as Redis with `appendfsync always` never shows one).
    /// Free when the journals are idle.
    pub fn read_barrier(&self, s: &Session) -> DurableWait {
        if self.effective_durability(s) != Durability::Always {
            return DurableWait::NONE;
        }
        self.sync_all()
    }

    /// Everything written so far to the local journal, to be awaited with
    /// [`Instance::wait_for`].
    pub fn sync(&self) -> WriteAck {
        WriteAck { journal: JournalId::Local, position: self.journal.last_position(), wait: true }
    }

    /// Everything written so far, in both journals.
    pub fn sync_all(&self) -> DurableWait {
        let mut wait = DurableWait::NONE;
        wait.note(JournalId::Local, self.journal.last_position());
        if let Some(m) = self.mirror.get() {
            wait.note(JournalId::Mirror, m.journal.last_position());
        }
        wait
    }

    /// Waits until a local journal position is durable.
    pub async fn wait_durable(&self, position: u64) -> Result<()> {
        self.journal.wait_durable(position).await
    }

    /// Waits until a position of either journal may be acknowledged to a client: durable,
    /// and for the mirror journal on the primary also confirmed by the backup
    /// (docs/design/mirroring.md, commit rule).
    pub async fn wait_durable_in(&self, journal: JournalId, position: u64) -> Result<()> {
        match journal {
            JournalId::Local => self.journal.wait_durable(position).await,
            JournalId::Mirror => self.wait_mirror(position).await,
        }
    }

    /// Waits for what a write's acknowledgement needs (nothing when `ack.wait` is false).
    pub async fn wait_for(&self, ack: WriteAck) -> Result<()> {
        if !ack.wait {
            return Ok(());
        }
        self.wait_durable_in(ack.journal, ack.position).await
    }

    pub(crate) fn ack(&self, s: &Session, journal: JournalId, position: u64, in_txn: bool) -> WriteAck {
        // Memory bounds are checked every so often, not on every write: they are sums
        // over locks, and a few thousand writes more or less do not matter to them.
        // A count of writes, not the position: positions also go to TSTART/TCOMMIT records,
        // and a periodic workload could always miss a multiple.
        let writes = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let over_budget = writes.is_multiple_of(BOUNDS_CHECK_EVERY) && self.check_memory_bounds();
        let wait = !in_txn && (self.effective_durability(s) == Durability::Always || over_budget);
        WriteAck { journal, position, wait }
    }

    /// Wakes the write daemon when dirty data piles up; true when the journal buffer is so
    /// large that writers should wait for the disk (back-pressure).
    fn check_memory_bounds(&self) -> bool {
        if self.dirty_bytes() > DIRTY_WAKE_BYTES {
            self.wake_daemon();
        }
        let mirror = self.mirror.get().map_or(0, |m| m.journal.buffered_bytes());
        self.journal.buffered_bytes() + mirror > JOURNAL_BACKPRESSURE_BYTES
    }

    fn dirty_bytes(&self) -> usize {
        self.databases.read().values().map(|d| d.dirty_bytes()).sum()
    }

    /// Each mounted database's cache: (name, bytes held, bytes not yet checkpointed).
    pub fn cache_usage(&self) -> Vec<(String, usize, usize)> {
        self.databases.read().iter().map(|(name, d)| (name.clone(), d.cache_bytes(), d.dirty_bytes())).collect()
    }

    pub fn status(&self) -> InstanceStatus {
        let config = self.config.lock();
        let (superserver_port, web_port) = self.ports();
        InstanceStatus {
            name: config.instance.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            data_dir: self.dir.root().display().to_string(),
            started_at: self.started_at.clone(),
            superserver_port,
            web_port,
            journal_position: self.journal.last_position(),
            durable_position: self.journal.durable_position(),
            mirror_journal_position: self.mirror.get().map(|m| m.journal.last_position()),
            mirror_durable_position: self.mirror.get().map(|m| m.journal.durable_position()),
            mirror_mode: self.mirror_state.lock().mode,
            durability: config.journal.durability,
            frozen: self.frozen_until.lock().is_some(),
            databases: self.databases.read().len(),
            namespaces: self.namespaces.read().len(),
        }
    }

    fn start_daemons(self: &Arc<Self>) {
        let writer = self.journal.start_writer();
        let mirror_writer = Mutex::new(self.mirror.get().map(|m| m.journal.start_writer()));
        let wake = Arc::new((Mutex::new(DaemonSignal::default()), Condvar::new()));
        let weak = Arc::downgrade(self);
        let signal = wake.clone();
        let interval = Duration::from_millis(self.config.lock().storage.flush_interval_ms.max(10));
        let thread = std::thread::Builder::new()
            .name("write-daemon".into())
            .spawn(move || loop {
                {
                    let (lock, cvar) = &*signal;
                    let mut s = lock.lock();
                    if !s.stop && !s.wake {
                        cvar.wait_for(&mut s, interval);
                    }
                    if s.stop {
                        return;
                    }
                    s.wake = false;
                }
                let Some(instance) = weak.upgrade() else { return };
                instance.thaw_if_expired();
                if let Err(e) = instance.checkpoint() {
                    tracing::error!("write daemon: {e}");
                }
            })
            .expect("spawn write daemon");
        *self.daemon.lock() = Some(Daemon { writer, mirror_writer, wake, thread });
    }

    fn wake_daemon(&self) {
        if let Some(d) = self.daemon.lock().as_ref() {
            d.wake.0.lock().wake = true;
            d.wake.1.notify_one();
        }
    }

    /// Clean shutdown: stop the daemons, write every database file, sync the journal.
    pub fn shutdown(&self) -> Result<()> {
        // Own statement: the daemon mutex must not be held while joining the daemon or
        // checkpointing (writers take it, under the write lock, to wake the daemon).
        let daemon = self.daemon.lock().take();
        if let Some(d) = daemon {
            d.wake.0.lock().stop = true;
            d.wake.1.notify_one();
            let _ = d.thread.join();
            *self.frozen_until.lock() = None;
            self.checkpoint()?;
            d.writer.stop()?;
            if let Some(w) = d.mirror_writer.lock().take() {
                w.stop()?;
            }
        } else {
            *self.frozen_until.lock() = None;
            self.checkpoint()?;
        }
        self.journal.flush()?;
        if let Some(m) = self.mirror.get() {
            m.journal.flush()?;
        }
        Ok(())
    }

    fn rebuild_namespaces(&self) -> Result<()> {
        let config = self.config.lock().clone();
        let mut views = BTreeMap::new();
        for (name, ns) in &config.namespaces {
            let mut mappings: Vec<(GlobalMapping, String)> = Vec::new();
            for m in &ns.mappings {
                let parsed = crate::namespace::mapping::parse(&m.global)
                    .map_err(|e| EngineError::Invalid(format!("namespace {name}: mapping {}: {e}", m.global)))?;
                mappings.push((parsed, m.database.clone()));
            }
            views.insert(name.clone(), Arc::new(NamespaceView { routing: Routing::new(&ns.globals, &mappings) }));
        }
        *self.namespaces.write() = views;
        Ok(())
    }
}

/// Both journals write with the same options, each in its own directory.
fn journal_options(dir: PathBuf, config: &Config) -> crate::journal::JournalOptions {
    crate::journal::JournalOptions {
        dir,
        file_size_limit: config.journal.file_size_mb.max(1) << 20,
        sync_interval: Duration::from_millis(config.journal.sync_interval_ms.max(1)),
        ..crate::journal::JournalOptions::default()
    }
}

/// The configuration, and whether this start initialised the data directory.
fn load_or_init_config(dir: &DataDir) -> Result<(Config, bool)> {
    let path = dir.config_file();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let config = Config::parse(&text, &path.display().to_string()).map_err(EngineError::Invalid)?;
            // A hand-edited file with a plaintext password or an unknown role is refused
            // whole rather than started half-secured.
            config.security.validate().map_err(|e| EngineError::Invalid(format!("{}: {e}", path.display())))?;
            Ok((config, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            refuse_to_reinitialise(dir)?;
            std::fs::create_dir_all(dir.root())
                .map_err(|e| EngineError::io(format!("creating {}", dir.root().display()), e))?;
            let config = Config::initial(crate::storage::meta::new_guid());
            datadir::write_atomically(&path, config.to_yaml().as_bytes())?;
            tracing::info!("initialised data directory {}", dir.root().display());
            Ok((config, true))
        }
        Err(e) => Err(EngineError::io(format!("reading {}", path.display()), e)),
    }
}

/// A data directory without `engine.yaml` is initialised only when it holds no instance's
/// data: with a journal, databases or a mirror state beside the missing file, a new
/// configuration would give the instance a new journal identity and lose every write that
/// is only in the journal. The engine refuses and says how to recover instead.
fn refuse_to_reinitialise(dir: &DataDir) -> Result<()> {
    let non_empty = |p: std::path::PathBuf| std::fs::read_dir(&p).is_ok_and(|mut d| d.next().is_some()).then_some(p);
    let mirror_state = dir.root().join(crate::agent::status::MIRROR_STATE_FILE);
    let found: Vec<String> =
        [non_empty(dir.journal_dir()), non_empty(dir.databases_dir()), mirror_state.exists().then_some(mirror_state)]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
    if found.is_empty() {
        return Ok(());
    }
    Err(EngineError::Invalid(format!(
        "{} is missing, but this data directory holds an instance's data ({}): starting would \
         initialise a new instance with a new journal identity and lose the writes that are only \
         in the journal. Restore engine.yaml from a backup (its instance guid must be the journal's), or, \
         to really start afresh, move those away first",
        dir.config_file().display(),
        found.join(", ")
    )))
}
