//! The agent: runs beside every engine (status, fencing, journal files for other members)
//! and, alone on a third host, as the arbiter of one or more mirrors. It speaks RESP, so
//! redis-cli can talk to it; docs/agent.md lists its commands.
//!
//! Invariant: *nothing the agent reports or does depends on the engine answering*, except
//! the health probe, which is bounded by a timeout. It reads the data directory (lock,
//! state file, journal files) read-only and never repairs or truncates anything.
//!
//! - [`protocol`]: frames to typed requests, every argument checked;
//! - [`server`]: connections, limits, shutdown, dispatch;
//! - [`status`]: running / hung / down, journal positions, mirror role;
//! - [`fence`]: SIGKILL the lock holder and wait for the lock;
//! - [`journal_ranges`]: record frames from the files on disk;
//! - [`arbiter`]: the pure arbiter (time passed in);
//! - [`fault`]: the fault switch for partition tests.

pub mod arbiter;
pub mod fault;
pub mod fence;
#[cfg(test)]
mod fuzz_tests;
pub mod journal_ranges;
pub mod protocol;
pub mod server;
pub mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// The reference product's agent port.
pub const DEFAULT_PORT: u16 = 2188;
/// Most concurrent connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// A member whose last heartbeat is older than this is not connected.
pub const DEFAULT_MEMBER_TIMEOUT: Duration = Duration::from_millis(2000);
/// How long the health probe waits for the engine's PONG.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_millis(2000);
/// The engine beside the agent, on the same host.
pub const DEFAULT_ENGINE_HOST: &str = "127.0.0.1";

/// What the agent serves and how.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The engine's data directory; `None` for a pure arbiter.
    pub data_dir: Option<PathBuf>,
    /// Enables the FAULT commands (tests only).
    pub allow_fault_injection: bool,
    pub member_timeout: Duration,
    pub probe_timeout: Duration,
    /// Where the health probe finds the engine's superserver: loopback when the agent
    /// shares the engine's host, the engine's host name when it runs in a container of
    /// its own (Docker: the agent container survives the engine's).
    pub engine_host: String,
    pub fence_timeout: Duration,
    pub max_connections: usize,
    /// Protected mode: only loopback peers are served (see [`crate::access`]).
    pub protected_mode: bool,
    /// Mutual TLS with the lab CA: only holders of a lab certificate are served, and what
    /// a certificate names decides what its holder may do (`server::authorize`).
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
}

impl Default for AgentConfig {
    fn default() -> AgentConfig {
        AgentConfig {
            data_dir: None,
            allow_fault_injection: false,
            member_timeout: DEFAULT_MEMBER_TIMEOUT,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            engine_host: DEFAULT_ENGINE_HOST.to_string(),
            fence_timeout: fence::DEFAULT_FENCE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            protected_mode: true,
            tls: None,
        }
    }
}

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("cannot listen on {addr}: {source} (is another agent running on that port?)")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("--data-dir {path} is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{what}: {source}")]
    Io { what: &'static str, source: std::io::Error },
}

/// Runs the agent in the foreground until SIGTERM or SIGINT. Prints
/// `agent listening on ADDR` on stdout once it accepts connections (with `--port 0`, ADDR
/// names the port chosen).
pub fn run(listen: SocketAddr, config: AgentConfig) -> Result<(), AgentError> {
    if let Some(dir) = &config.data_dir {
        if dir.exists() && !dir.is_dir() {
            return Err(AgentError::NotADirectory { path: dir.clone() });
        }
        if !dir.exists() {
            tracing::warn!(data_dir = %dir.display(), "the data directory does not exist yet: the engine is down");
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(server::MAX_BLOCKING_JOBS + 4)
        .enable_all()
        .build()
        .map_err(|source| AgentError::Io { what: "starting the async runtime", source })?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|source| AgentError::Bind { addr: listen, source })?;
        let local = listener.local_addr().map_err(|source| AgentError::Io { what: "reading the bound address", source })?;
        let mode = if config.data_dir.is_some() { "agent" } else { "arbiter" };
        tracing::info!(%local, mode, data_dir = ?config.data_dir, fault_injection = config.allow_fault_injection, "agent started");
        {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "agent listening on {local}");
            let _ = stdout.flush();
        }
        server::serve(listener, config, wait_for_signal()).await;
        tracing::info!("agent stopped");
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
}
