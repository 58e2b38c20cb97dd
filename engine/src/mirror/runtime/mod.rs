//! The mirror runtime: runs this member's failover state machine over real sockets, the
//! journal and the databases (see `driver`), and answers the servers' status and operator
//! requests ([`MirrorControl`]).
//!
//! - `store`: what the runtime needs from the engine (a trait; the instance implements it
//!   in `instance_store`).
//! - `state`: the durable mirror state file.
//! - `driver`: the loop around the state machine.
//! - `net`: the data channel's listener and connector.
//! - `peers`: the arbiter and agent clients.
//! - `view`: the status as operators read it.

mod driver;
pub mod instance_store;
mod latency;

mod net;
mod peers;
pub mod state;
pub mod store;
mod view;

use crate::agent::status::MirrorState;
use crate::error::EngineError;
use crate::instance::datadir::DataDir;
use crate::mirror::config::{MemberType, MirrorConfig};
use crate::mirror::failover::{MemberId, OperatorCommand};
use crate::mirror::stages::CommitStages;
use crate::mirror::status::{MemberStatus, MirrorAction, MirrorControl, MirrorStatus};
use driver::{Driver, Input, Published};
use net::{NetShared, NetView};
use parking_lot::Mutex;
use std::sync::Arc;
use store::MirrorStore;
use tokio::sync::mpsc;

/// How long `create` waits for the new primary to open for writes.
const CREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Inputs waiting for the driver (sockets and timers wait when it is full).
const INPUT_QUEUE: usize = 1024;

/// Opens the store for the configured mirror (the instance's mirror journal).
pub type StoreFactory = Arc<dyn Fn() -> Result<(Arc<dyn MirrorStore>, MirrorConfig), EngineError> + Send + Sync>;

/// The servers' handle: starts the member on `create`/`join` (or at engine start when it
/// already was one), then reports and forwards operator actions.
pub struct MirrorService {
    dir: DataDir,
    open_store: StoreFactory,
    handle: tokio::runtime::Handle,
    running: Mutex<Option<Running>>,
    /// Set while the operator stopped mirroring on this member (`stop-mirror`).
    stopped: Mutex<Option<Stopped>>,
    allow_faults: bool,
    /// Where the data channel listens (the engine's `network.interface`).
    interface: String,
    /// Where mirrored commits spend their time, across stops and starts of mirroring.
    stages: Arc<CommitStages>,
    /// Mutual TLS with the lab CA for the data channel, agents and the arbiter.
    tls: Option<Arc<crate::tls::Tls>>,
}

/// A member whose mirroring the operator stopped: enough to report it.
struct Stopped {
    cfg: MirrorConfig,
    me: MemberId,
    store: Arc<dyn MirrorStore>,
    state: MirrorState,
}

struct Running {
    cfg: MirrorConfig,
    me: MemberId,
    net: Arc<NetShared>,
    published: Arc<Mutex<Published>>,
    inputs: mpsc::Sender<Input>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl MirrorService {
    /// A service for the engine on `dir`; starts the member at once when the state file
    /// says it was created or joined before.
    pub fn start(
        dir: DataDir,
        open_store: StoreFactory,
        interface: String,
        allow_faults: bool,
        tls: Option<Arc<crate::tls::Tls>>,
    ) -> Result<Arc<MirrorService>, EngineError> {
        let service = Arc::new(MirrorService {
            dir,
            open_store,
            handle: tokio::runtime::Handle::current(),
            running: Mutex::new(None),
            stopped: Mutex::new(None),
            allow_faults,
            interface,
            stages: Arc::default(),
            tls,
        });
        if state::load(&service.dir)?.is_some_and(|s| s.joined) {
            service.launch(false)?;
        }
        Ok(service)
    }

    fn launch(&self, create: bool) -> Result<String, EngineError> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Err(EngineError::Invalid("this member already runs in its mirror".into()));
        }
        let (store, cfg) = (self.open_store)()?;
        let me_index =
            cfg.members.iter().position(|m| m.name == cfg.this_member).ok_or_else(|| {
                EngineError::Invalid(format!("{} is not among the mirror's members", cfg.this_member))
            })?;
        let me = MemberId(me_index as u8);
        let mine = &cfg.members[me_index];
        let mut state = state::load(&self.dir)?.unwrap_or_default();
        if create && state.joined {
            return Err(EngineError::Invalid(format!(
                "{} already belongs to mirror {}: it cannot create it again",
                cfg.this_member, state.mirror
            )));
        }
        if state.joined && !state.mirror.eq_ignore_ascii_case(&cfg.name) {
            return Err(EngineError::Invalid(format!(
                "this member belongs to mirror {}, not {}: remove it from that mirror first",
                state.mirror, cfg.name
            )));
        }
        // Once joined, the member's type is its own: promotions and demotions change it
        // after the configuration was written.
        let current_type = MemberType::from_word(&state.member_type).filter(|_| state.joined);
        let member_type = current_type.unwrap_or(mine.member_type);
        state.mirror = cfg.name.clone();
        state.member = cfg.this_member.clone();
        state.member_type = member_type.word().to_string();
        state.joined = true;
        // A member always starts as a follower: the role and status a former primary left
        // in the file are stale, and the other members' agents read them (a failover
        // member that believed its stopped partner still primary would wait for it for
        // ever). A created mirror's primary records its role when it becomes primary.
        state.role = state::role_word(false, member_type == MemberType::Failover);
        state.status = "Waiting".into();
        state.active = false;
        state::save(&*store.mirror_journal().vfs(), &self.dir, &state)?;
        let listen_on = listen_address(&self.interface, &mine.mirror_address);
        let listener = self.handle.block_on_listener(&listen_on).map_err(|e| {
            EngineError::Invalid(format!("cannot listen for the mirror data channel on {listen_on}: {e}"))
        })?;
        let (inputs, inputs_rx) = mpsc::channel(INPUT_QUEUE);
        let net = Arc::new(NetShared {
            mirror: cfg.name.clone(),
            me: cfg.this_member.clone(),
            names: cfg.members.iter().map(|m| m.name.clone()).collect(),
            addresses: cfg.members.iter().map(|m| m.mirror_address.clone()).collect(),
            view: Mutex::new(NetView::default()),
            dropped: Mutex::default(),
            store,
            dir: self.dir.clone(),
            state: Arc::new(Mutex::new(state)),
            inputs: inputs.clone(),
            stages: self.stages.clone(),
            tls: self.tls.clone(),
        });
        let _guard = self.handle.enter();
        let mut driver_cfg = cfg.clone();
        driver_cfg.members[me_index].member_type = member_type;
        let (driver, first) = Driver::new(driver_cfg, me, net.clone(), create);
        let published = driver.published.clone();
        if member_type != cfg.members[me_index].member_type {
            published.lock().types.insert(me, member_type);
        }
        let tasks = vec![
            self.handle.spawn(net::listen(listener, net.clone())),
            self.handle.spawn(driver.run(first, inputs_rx)),
        ];
        let what = if create { "created mirror" } else { "joined mirror" };
        let text = format!("{} {what} {} as {}", cfg.this_member, cfg.name, member_type.label());
        tracing::info!("{text}");
        *running = Some(Running { cfg, me, net, published, inputs, tasks });
        *self.stopped.lock() = None;
        Ok(text)
    }

    /// Stops mirroring on a member that is not the primary: its tasks end (connections
    /// close, the listener goes), its databases stay as they are, read-only.
    fn stop_mirror(&self) -> Result<String, EngineError> {
        let status = self.status().ok_or_else(not_a_member)?;
        if status.status == MemberStatus::Stopped {
            return Ok(format!("mirroring is already stopped on {}", status.member));
        }
        if status.primary.as_deref() == Some(status.member.as_str()) {
            return Err(EngineError::Invalid(format!(
                "{} is the primary: hand over first (planned-failover) or stop the engine",
                status.member
            )));
        }
        let r = self.running.lock().take().ok_or_else(not_a_member)?;
        let state = r.net.state.lock().clone();
        let member = r.cfg.this_member.clone();
        *self.stopped.lock() = Some(Stopped { cfg: r.cfg.clone(), me: r.me, store: r.net.store.clone(), state });
        drop(r);
        tracing::warn!("mirror: mirroring stopped on {member} by the operator");
        Ok(format!("mirroring stopped on {member}: start it again with start-mirror"))
    }

    fn start_mirror(&self) -> Result<String, EngineError> {
        if self.running.lock().is_some() {
            let member = self.status().map(|s| s.member).unwrap_or_default();
            return Ok(format!("mirroring already runs on {member}"));
        }
        if self.stopped.lock().is_none() {
            return Err(not_a_member());
        }
        self.launch(false)
    }

    fn send(&self, command: OperatorCommand) -> Result<(), EngineError> {
        let running = self.running.lock();
        let r = running.as_ref().ok_or_else(not_a_member)?;
        r.inputs
            .try_send(Input::Operator(command))
            .map_err(|_| EngineError::Invalid("the mirror is busy: try again".into()))
    }

    fn fault_allowed(&self) -> Result<(), EngineError> {
        if !self.allow_faults {
            return Err(EngineError::Invalid(
                "fault injection is disabled (start the engine with --allow-fault-injection)".into(),
            ));
        }
        Ok(())
    }

    /// Drops mirror traffic to and from `peers` (member names, or ARBITER), or heals all.
    pub fn fault(&self, drop: Option<Vec<String>>) -> Result<String, EngineError> {
        self.fault_allowed()?;
        let running = self.running.lock();
        let r = running.as_ref().ok_or_else(not_a_member)?;
        let mut dropped = r.net.dropped.lock();
        match drop {
            Some(peers) => dropped.extend(peers.into_iter().map(|p| p.to_ascii_uppercase())),
            None => dropped.clear(),
        }
        Ok(format!("dropping mirror traffic of: {}", dropped.iter().cloned().collect::<Vec<_>>().join(", ")))
    }
}

fn not_a_member() -> EngineError {
    EngineError::NotMirrored
}

/// The data channel listens on the engine's interface (`network.interface`) at the port of
/// the member's mirror address.
fn listen_address(interface: &str, mirror_address: &str) -> String {
    let port = mirror_address.rsplit_once(':').map_or(mirror_address, |(_, p)| p);
    if interface.contains(':') {
        format!("[{interface}]:{port}")
    } else {
        format!("{interface}:{port}")
    }
}

trait BindListener {
    fn block_on_listener(&self, address: &str) -> std::io::Result<tokio::net::TcpListener>;
}

impl BindListener for tokio::runtime::Handle {
    /// Binds with the standard library (callable from inside or outside the runtime).
    fn block_on_listener(&self, address: &str) -> std::io::Result<tokio::net::TcpListener> {
        let std_listener = std::net::TcpListener::bind(address)?;
        std_listener.set_nonblocking(true)?;
        let _guard = self.enter();
        tokio::net::TcpListener::from_std(std_listener)
    }
}

impl MirrorControl for MirrorService {
    fn status(&self) -> Option<MirrorStatus> {
        let running = self.running.lock();
        let Some(r) = running.as_ref() else {
            let stopped = self.stopped.lock();
            let s = stopped.as_ref()?;
            let published = Published { status: MemberStatus::Stopped, ..Published::default() };
            return Some(view::status(&s.cfg, s.me, &published, &s.state, &*s.store));
        };
        let published = r.published.lock().clone();
        let state: MirrorState = r.net.state.lock().clone();
        Some(view::status(&r.cfg, r.me, &published, &state, &*r.net.store))
    }

    fn commit_stages(&self) -> Option<Arc<CommitStages>> {
        Some(self.stages.clone())
    }

    fn acknowledging_primary(&self) -> bool {
        let running = self.running.lock();
        running.as_ref().is_some_and(|r| r.published.lock().acking_until.is_some_and(|t| std::time::Instant::now() < t))
    }

    fn act(&self, action: MirrorAction) -> Result<String, EngineError> {
        match action {
            MirrorAction::Create => {
                let text = self.launch(true)?;
                self.wait_open_for_writes(CREATE_TIMEOUT)?;
                Ok(text)
            }
            MirrorAction::Join => self.launch(false),
            MirrorAction::PlannedFailover => {
                let status = self.status().ok_or_else(not_a_member)?;
                if status.status != MemberStatus::Primary {
                    return Err(EngineError::Invalid(format!(
                        "a planned failover starts on the primary; {} is {}",
                        status.member, status.status
                    )));
                }
                if !status.members.iter().any(|m| m.status == MemberStatus::Backup && m.name != status.member) {
                    return Err(EngineError::Invalid("there is no active backup to hand over to".into()));
                }
                self.send(OperatorCommand::PlannedFailover)?;
                Ok(format!("{} hands over to the backup once it has every record", status.member))
            }
            MirrorAction::SetNoFailover => self.send(OperatorCommand::SetNoFailover).map(|()| "no failover set".into()),
            MirrorAction::ClearNoFailover => {
                self.send(OperatorCommand::ClearNoFailover).map(|()| "no failover cleared".into())
            }
            MirrorAction::PromoteDr => {
                let status = self.status().ok_or_else(not_a_member)?;
                if status.member_type != MemberType::Dr {
                    return Err(EngineError::Invalid(format!(
                        "only a DR member can be promoted; {} is {}",
                        status.member,
                        status.member_type.label()
                    )));
                }
                self.send(OperatorCommand::PromoteDr)?;
                Ok(if status.primary.as_deref().is_some_and(|p| p != status.member) {
                    format!("{} becomes a failover member (the backup once caught up)", status.member)
                } else {
                    format!("{} forces the failover members down and takes over", status.member)
                })
            }
            MirrorAction::DemoteToDr => {
                let status = self.status().ok_or_else(not_a_member)?;
                if status.primary.as_deref() == Some(status.member.as_str()) {
                    return Err(EngineError::Invalid(format!(
                        "{} is the primary: hand over first (planned-failover), then demote it",
                        status.member
                    )));
                }
                if status.member_type != MemberType::Failover {
                    return Err(EngineError::Invalid(format!(
                        "only a failover member can be demoted to DR; {} is {}",
                        status.member,
                        status.member_type.label()
                    )));
                }
                self.send(OperatorCommand::DemoteToDr)?;
                Ok(format!("{} becomes a DR member", status.member))
            }
            MirrorAction::StopMirror => self.stop_mirror(),
            MirrorAction::StartMirror => self.start_mirror(),
            MirrorAction::FaultDrop { peers } => self.fault(Some(peers)),
            MirrorAction::FaultHeal => self.fault(None),
            MirrorAction::FaultPanic => {
                self.fault_allowed()?;
                let running = self.running.lock();
                let r = running.as_ref().ok_or_else(not_a_member)?;
                r.inputs
                    .try_send(Input::FaultPanic)
                    .map_err(|_| EngineError::Invalid("the mirror is busy: try again".into()))?;
                Ok("the mirror task panics: the engine stops".into())
            }
            MirrorAction::AddDatabase { name } => {
                let store = self.store()?;
                let position = store.add_database(&name)?;
                Ok(format!("database {} is mirrored from journal position {position}", name.to_ascii_uppercase()))
            }
            MirrorAction::ActivateDatabase { name } => {
                self.store()?.activate_database(&name)?;
                Ok(format!("database {} is activated and caught up", name.to_ascii_uppercase()))
            }
            MirrorAction::RemoveDatabase { name } => {
                self.store()?.remove_database(&name)?;
                Ok(format!("database {} is no longer mirrored", name.to_ascii_uppercase()))
            }
        }
    }
}

impl MirrorService {
    /// Returns once the member created the mirror and opened for writes, so that what an
    /// operator does next on the primary (add a database) finds it primary.
    fn wait_open_for_writes(&self, timeout: std::time::Duration) -> Result<(), EngineError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let open = self.running.lock().as_ref().is_some_and(|r| r.published.lock().open_for_writes);
            if open {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(EngineError::Invalid(format!(
                    "the mirror was created but this member did not open for writes within {} s: see messages.log",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn store(&self) -> Result<Arc<dyn MirrorStore>, EngineError> {
        let running = self.running.lock();
        Ok(running.as_ref().ok_or_else(not_a_member)?.net.store.clone())
    }
}
#[cfg(test)]
mod tests;
