//! The instance: databases, namespaces and the journal behind one write path.
//!
//! Invariants:
//! - Every change is appended to the journal and applied to the cache under one write lock,
//!   so journal order is apply order (recovery and, later, mirror members replay exactly).
//! - Database files are written only by a checkpoint, after the journal is durable up to the
//!   checkpoint's position (write-ahead rule).
//! - A transaction's writes carry old values, so an unfinished transaction can always be
//!   rolled back, online or at recovery.

pub mod admin;
mod checkpoint;
pub mod config;
pub mod datadir;
mod ops;
mod recovery;
pub use recovery::RecoveryReport;
pub mod session;
#[cfg(test)]
mod tests;
mod txn;

use crate::error::{EngineError, Result};
use crate::journal::{Journal, JournalOptions, WriterHandle};
use crate::namespace::{GlobalMapping, Routing};
use crate::storage::Database;
use crate::vfs::Vfs;
use config::Config;
use datadir::DataDir;
use parking_lot::{Condvar, Mutex, RwLock};
pub use session::{Direction, Durability, Session, WriteAck};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
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
    pub journal_position: u64,
    pub durable_position: u64,
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
    /// Open (journaled) transactions: id → position of their TSTART.
    open_txns: Mutex<BTreeMap<u64, u64>>,
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
}

struct Daemon {
    writer: WriterHandle,
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
        let journal_options = JournalOptions {
            dir: dir.journal_dir(),
            file_size_limit: config.journal.file_size_mb.max(1) << 20,
            sync_interval: Duration::from_millis(config.journal.sync_interval_ms.max(1)),
            ..JournalOptions::default()
        };
        let journal = Arc::new(Journal::open(options.vfs.clone(), journal_options)?);
        let ports = (config.network.superserver_port, config.network.web_port);
        let durability = config.journal.durability;
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
        });
        instance.mount_configured(first_start)?;
        *instance.recovery.lock() = instance.recover()?;
        instance.next_txn.store(instance.journal.last_position() + 1, Ordering::SeqCst);
        instance.rebuild_namespaces()?;
        if options.background {
            instance.start_daemons();
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

    pub fn session(&self) -> Session {
        Session { namespace: "USER".into(), client_name: None, durability: None, txn: None }
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

    pub(crate) fn database(&self, name: &str) -> Result<Arc<Database>> {
        self.databases.read().get(name).cloned().ok_or_else(|| EngineError::NotMounted { name: name.to_string() })
    }

    pub fn effective_durability(&self, s: &Session) -> Durability {
        s.durability.unwrap_or_else(|| durability_from(self.durability.load(Ordering::Relaxed)))
    }

    /// For a session in `always` durability: the journal position a read may have seen, to
    /// await before answering, so no client acts on a write a crash could still undo (as
    /// Redis with `appendfsync always` never shows one). Free when the journal is idle.
    pub fn read_barrier(&self, s: &Session) -> Option<u64> {
        (self.effective_durability(s) == Durability::Always).then(|| self.journal.last_position())
    }

    /// Everything written so far, to be awaited with [`Instance::wait_durable`].
    pub fn sync(&self) -> WriteAck {
        WriteAck { position: self.journal.last_position(), wait: true }
    }

    pub async fn wait_durable(&self, position: u64) -> Result<()> {
        self.journal.wait_durable(position).await
    }

    pub(crate) fn ack(&self, s: &Session, position: u64, in_txn: bool) -> WriteAck {
        // Memory bounds are checked every so often, not on every write: they are sums
        // over locks, and a few thousand writes more or less do not matter to them.
        // A count of writes, not the position: positions also go to TSTART/TCOMMIT records,
        // and a periodic workload could always miss a multiple.
        let writes = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        let over_budget = writes.is_multiple_of(BOUNDS_CHECK_EVERY) && self.check_memory_bounds();
        let wait = !in_txn && (self.effective_durability(s) == Durability::Always || over_budget);
        WriteAck { position, wait }
    }

    /// Wakes the write daemon when dirty data piles up; true when the journal buffer is so
    /// large that writers should wait for the disk (back-pressure).
    fn check_memory_bounds(&self) -> bool {
        if self.dirty_bytes() > DIRTY_WAKE_BYTES {
            self.wake_daemon();
        }
        self.journal.buffered_bytes() > JOURNAL_BACKPRESSURE_BYTES
    }

    fn dirty_bytes(&self) -> usize {
        self.databases.read().values().map(|d| d.dirty_bytes()).sum()
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
            durability: config.journal.durability,
            frozen: self.frozen_until.lock().is_some(),
            databases: self.databases.read().len(),
            namespaces: self.namespaces.read().len(),
        }
    }

    fn start_daemons(self: &Arc<Self>) {
        let writer = self.journal.start_writer();
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
        *self.daemon.lock() = Some(Daemon { writer, wake, thread });
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
        } else {
            *self.frozen_until.lock() = None;
            self.checkpoint()?;
        }
        self.journal.flush()?;
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

/// The configuration, and whether this start initialised the data directory.
fn load_or_init_config(dir: &DataDir) -> Result<(Config, bool)> {
    let path = dir.config_file();
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((Config::parse(&text, &path.display().to_string()).map_err(EngineError::Invalid)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
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
