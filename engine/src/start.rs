//! `engine start`: runs an instance in the foreground until SIGTERM or SIGINT.
//!
//! Order: take the instance lock → open (recover) → apply the merge file → bind the
//! superserver and web ports → publish the state file → serve. Shutdown reverses it and
//! finishes well inside Docker's 10 s grace period: servers stop accepting, in-flight
//! batches finish, database files are written, the journal is synced. A fatal failure
//! ([`crate::fatal`]: the journal cannot be written) stops it the same way, without the
//! hand-over, and `run` returns the failure (the binary exits non-zero).

use crate::error::EngineError;
use crate::instance::datadir::{now_text, DataDir, RunState};
use crate::instance::{Instance, InstanceOptions};
use crate::mirror::runtime::instance_store::InstanceStore;
use crate::mirror::runtime::store::MirrorStore;
use crate::mirror::runtime::{MirrorService, StoreFactory};
use crate::vfs::real::RealVfs;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct StartOptions {
    pub data_dir: PathBuf,
    /// Overrides the configured port; 0 picks a free one.
    pub superserver_port: Option<u16>,
    pub web_port: Option<u16>,
    pub merge_file: Option<PathBuf>,
    pub log_level: String,
    /// Accept the mirror fault switch (tests and labs only).
    pub allow_fault_injection: bool,
    /// Overrides `network.interface` (the image sets it: containers listen on 0.0.0.0).
    pub interface: Option<String>,
    /// Overrides `network.protected_mode`.
    pub protected_mode: Option<bool>,
    /// Overrides the `tls` section (absolute paths).
    pub tls: Option<crate::tls::TlsFiles>,
    /// Overrides `network.client_tls` (absolute paths): TLS on the superserver and the
    /// web port.
    pub client_tls: Option<crate::tls::TlsFiles>,
    /// `--password-file`: user `admin` (role `%All`) gets this file's content as its
    /// password before any port opens.
    pub password_file: Option<PathBuf>,
}

/// How long servers get to drain at shutdown before connections are dropped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopping primary waits for its backup to take over.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the merge file is checked for changes.
const MERGE_POLL: Duration = Duration::from_secs(1);

pub fn run(options: StartOptions) -> Result<()> {
    let dir = DataDir::new(&options.data_dir);
    let lock = dir.lock()?;
    crate::logging::init(Some(&dir.messages_log()), &options.log_level);
    tracing::info!("starting engine {} on data directory {}", env!("CARGO_PKG_VERSION"), dir.root().display());
    let merge = options.merge_file.as_deref().map(crate::merge::load_text).transpose()?;
    let secret = options
        .password_file
        .as_deref()
        .map(crate::instance::read_password_file)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let instance = Instance::open(InstanceOptions {
        data_dir: options.data_dir.clone(),
        vfs: Arc::new(RealVfs::new()),
        background: true,
    })?;
    // Before any listener opens: there is never a moment when the engine serves without
    // the password the operator gave it.
    if let Some(secret) = secret {
        instance.bootstrap_admin(&secret)?;
        tracing::info!("user {} set from the password file", crate::security::BOOTSTRAP_USER);
    }
    if let Some((m, _)) = &merge {
        for change in crate::merge::apply(&instance, m)?.changes {
            tracing::info!("merge file: {change}");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("engine-io")
        .build()
        .context("starting the I/O runtime")?;
    let applied = merge.map(|(_, text)| text.into_bytes());
    let served = runtime.block_on(serve(instance.clone(), &dir, &options, applied));
    drop(runtime);
    let stopped = instance.shutdown();
    if let Some(mut state) = dir.read_state() {
        state.stopped_at = Some(now_text());
        let _ = dir.write_state(&state);
    }
    tracing::info!("engine stopped");
    drop(lock);
    served.and(stopped.map_err(Into::into))
}

/// `merge_applied`: the merge file's text as applied at start (the watcher's baseline).
async fn serve(
    instance: Arc<Instance>,
    dir: &DataDir,
    options: &StartOptions,
    merge_applied: Option<Vec<u8>>,
) -> Result<()> {
    let config = instance.config();
    let interface = options.interface.clone().unwrap_or_else(|| config.network.interface.clone());
    // As in Redis, protected mode guards an engine nobody has to authenticate to: with
    // users configured at start every peer must authenticate, so the password lifts it.
    let protected_mode =
        options.protected_mode.unwrap_or(config.network.protected_mode) && !config.security.auth_required();
    if config.security.auth_required() {
        tracing::info!("users are configured: every client authenticates, and protected mode does not apply");
    }
    // Checked before any port opens: a missing or wrong file stops the start, named.
    let client_tls = crate::tls::client_ports::load_optional(
        options.client_tls.as_ref().or(config.network.client_tls.as_ref()),
        dir.root(),
    )?;
    let ss_port = options.superserver_port.unwrap_or(config.network.superserver_port);
    let web_port = options.web_port.unwrap_or(config.network.web_port);
    let resp_listener = TcpListener::bind((interface.as_str(), ss_port))
        .await
        .with_context(|| format!("cannot listen on superserver port {ss_port} ({interface}); use --superserver-port to pick another (0 = any free port)"))?;
    let web_listener = TcpListener::bind((interface.as_str(), web_port)).await.with_context(|| {
        format!(
            "cannot listen on web port {web_port} ({interface}); use --web-port to pick another (0 = any free port)"
        )
    })?;
    let ss_port = resp_listener.local_addr()?.port();
    let web_port = web_listener.local_addr()?.port();
    instance.set_ports(ss_port, web_port);
    dir.write_state(&RunState {
        pid: std::process::id(),
        superserver_port: ss_port,
        web_port,
        started_at: instance.started_at().to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        stopped_at: None,
        client_tls_ca: client_tls.as_ref().map(|t| t.ca.display().to_string()),
    })?;
    let scheme = if client_tls.is_some() { "https" } else { "http" };
    tracing::info!("superserver port {ss_port}, web port {web_port}: {scheme}://localhost:{web_port}/");
    println!(
        "engine running: superserver port {ss_port}, web port {web_port}{}, data directory {}",
        if client_tls.is_some() { " (TLS only)" } else { "" },
        dir.root().display()
    );

    if !protected_mode && !is_loopback_interface(&interface) {
        tracing::warn!(
            "protected mode is off and the engine listens on {interface}: anyone who can reach its ports can use it"
        );
    }
    // Relative paths in engine.yaml are under the data directory; the flags' are made
    // absolute by the binary.
    let tls = crate::tls::load_optional(options.tls.as_ref().or(config.tls.as_ref()), dir.root(), "mirror")?;
    let mirror = start_mirror(&instance, dir, &interface, options.allow_fault_injection, tls)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let limits = crate::resp::ServerLimits {
        max_connections: config.network.max_connections as usize,
        protected_mode,
        ..Default::default()
    };
    let (resp_tls, web_tls) = client_tls.map(|t| (t.superserver, t.web)).unzip();
    let resp = tokio::spawn(crate::resp::serve_with_tls(
        resp_listener,
        instance.clone(),
        limits,
        resp_tls,
        stopped(stop_rx.clone()),
    ));
    let web = tokio::spawn(crate::web::serve(
        web_listener,
        instance.clone(),
        protected_mode,
        web_tls,
        stopped(stop_rx.clone()),
    ));
    if let Some(path) = options.merge_file.clone() {
        tokio::spawn(watch_merge_file(instance.clone(), path, merge_applied, stopped(stop_rx.clone())));
    }

    // A stop signal, or a failure after which this process must not go on (the journal
    // cannot be written): then no hand-over (the journal is gone), the servers stop and
    // the engine exits non-zero; its agent reports it down and the backup takes over.
    let fatal = tokio::select! {
        () = wait_for_signal() => None,
        reason = crate::fatal::wait() => Some(reason),
    };
    match &fatal {
        None => {
            tracing::info!("shutting down");
            hand_over_before_stopping(&mirror).await;
        }
        Some(reason) => tracing::error!("fatal: {reason}; the engine stops"),
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let _ = resp.await;
        let _ = web.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("connections did not drain within {} s; closing them", DRAIN_TIMEOUT.as_secs());
    }
    match fatal {
        None => Ok(()),
        Some(reason) => Err(anyhow::anyhow!("stopped after a fatal failure: {reason}")),
    }
}

/// Whether `interface` is a loopback address (a name such as `localhost` counts as not).
fn is_loopback_interface(interface: &str) -> bool {
    interface.parse().is_ok_and(crate::access::is_loopback)
}

/// Installs the mirror service (it starts the member at once if it was one before); its
/// data channel listens on `interface` like the other listeners.
fn start_mirror(
    instance: &Arc<Instance>,
    dir: &DataDir,
    interface: &str,
    allow_faults: bool,
    tls: Option<Arc<crate::tls::Tls>>,
) -> Result<Arc<MirrorService>> {
    let weak = Arc::downgrade(instance);
    let open: StoreFactory = Arc::new(move || {
        let instance = weak.upgrade().ok_or_else(|| EngineError::Invalid("the engine is stopping".into()))?;
        let cfg = instance.config().mirror.ok_or_else(|| {
            EngineError::Invalid(
                "no mirror is configured: PUT /api/mirror/config (or the merge file's config_mirror) first".into(),
            )
        })?;
        let store: Arc<dyn MirrorStore> = Arc::new(InstanceStore::open(instance)?);
        Ok((store, cfg))
    });
    let service = MirrorService::start(dir.clone(), open, interface.to_string(), allow_faults, tls)
        .context("starting the mirror member")?;
    instance.set_mirror_control(service.clone());
    Ok(service)
}

/// A primary with an active backup hands over before it stops (a planned failover), so
/// stopping it never costs a failover timeout.
async fn hand_over_before_stopping(mirror: &Arc<MirrorService>) {
    use crate::mirror::status::{MemberStatus, MirrorAction, MirrorControl};
    let m = mirror.clone();
    let Ok(Ok(_)) = tokio::task::spawn_blocking(move || m.act(MirrorAction::PlannedFailover)).await else { return };
    tracing::info!("handing over to the backup before stopping");
    let deadline = tokio::time::Instant::now() + HANDOVER_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if mirror.status().is_none_or(|s| s.status != MemberStatus::Primary) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tracing::warn!("the backup did not take over within {} s; stopping anyway", HANDOVER_TIMEOUT.as_secs());
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Re-applies the merge file whenever its content changes. A bad edit is logged and
/// changes nothing; the engine keeps running.
/// `applied` is the text applied at start: a change made between that and the watcher's
/// first look is a change too.
async fn watch_merge_file(
    instance: Arc<Instance>,
    path: PathBuf,
    applied: Option<Vec<u8>>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut last = applied;
    let mut tick = tokio::time::interval(MERGE_POLL);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let now = std::fs::read(&path).ok();
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        let instance = instance.clone();
        let p = path.clone();
        let result = tokio::task::spawn_blocking(move || {
            crate::merge::load(&p).and_then(|m| crate::merge::apply(&instance, &m))
        })
        .await;
        match result {
            Ok(Ok(report)) => {
                for change in report.changes {
                    tracing::info!("merge file changed: {change}");
                }
            }
            Ok(Err(e)) => tracing::error!("merge file {} not applied: {e}", path.display()),
            Err(e) => tracing::error!("merge file {} not applied: {e}", path.display()),
        }
    }
}
