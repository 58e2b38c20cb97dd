//! The `agent` binary: argument parsing and exit codes only; the work is in
//! `engine::agent`.

use clap::Parser;
use engine::agent::{self, AgentConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "agent",
    version,
    about = "Mirrorlab agent: engine status, fencing and journal files beside an engine; the arbiter alone"
)]
struct Args {
    /// Port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = agent::DEFAULT_PORT, env = "MIRRORLAB_AGENT_PORT")]
    port: u16,
    /// Address to listen on: loopback unless configured (0.0.0.0 = every interface).
    #[arg(long, default_value = "127.0.0.1", env = "MIRRORLAB_AGENT_INTERFACE")]
    interface: IpAddr,
    /// Protected mode: serve loopback peers only. Turn it off (`--protected-mode false`)
    /// where members on other hosts or containers must reach this agent.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "MIRRORLAB_AGENT_PROTECTED_MODE")]
    protected_mode: bool,
    /// Log filter: error, warn, info, debug (RUST_LOG overrides it).
    #[arg(long, default_value = "info", env = "MIRRORLAB_LOG_LEVEL")]
    log_level: String,
    /// The engine's data directory. Without it the agent is a pure arbiter.
    #[arg(long, env = "MIRRORLAB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Enable the FAULT commands that simulate network partitions (labs and tests only).
    /// From the environment: `MIRRORLAB_ALLOW_FAULT_INJECTION=true` (or `false`).
    #[arg(long, env = "MIRRORLAB_ALLOW_FAULT_INJECTION")]
    allow_fault_injection: bool,
    /// A member whose last arbiter heartbeat is older than this is not connected.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=3_600_000))]
    member_timeout_ms: u32,
    /// How long the health probe waits for the engine's answer to PING.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=600_000))]
    probe_timeout_ms: u32,
    /// Where the health probe finds the engine's superserver: the engine's host name when
    /// the agent runs in a container of its own.
    #[arg(long, default_value = agent::DEFAULT_ENGINE_HOST, env = "MIRRORLAB_AGENT_ENGINE_HOST")]
    engine_host: String,
    /// How long AGENT FENCE waits for the killed engine to release its lock.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=600_000))]
    fence_timeout_ms: u32,
    /// Most concurrent connections.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    max_connections: u32,
    /// The lab CA (PEM): with --tls-cert and --tls-key, only holders of a certificate of
    /// the lab CA are served (mutual TLS). Without: plain TCP.
    #[arg(long, env = "MIRRORLAB_AGENT_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<PathBuf>,
    /// This agent's certificate (PEM): its member's, or the arbiter's.
    #[arg(long, env = "MIRRORLAB_AGENT_TLS_CERT", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// This agent's private key (PEM).
    #[arg(long, env = "MIRRORLAB_AGENT_TLS_KEY", requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    engine::fatal::abort_on_panic();
    let args = Args::parse();
    engine::logging::init(None, &args.log_level);
    let tls = engine::tls::files_from_flags(args.tls_ca, args.tls_cert, args.tls_key).and_then(|files| {
        engine::tls::load_optional(files.as_ref(), Path::new("."), "agent").map_err(|e| e.to_string())
    });
    let tls = match tls {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = AgentConfig {
        data_dir: args.data_dir,
        allow_fault_injection: args.allow_fault_injection,
        member_timeout: Duration::from_millis(args.member_timeout_ms.into()),
        probe_timeout: Duration::from_millis(args.probe_timeout_ms.into()),
        engine_host: args.engine_host,
        fence_timeout: Duration::from_millis(args.fence_timeout_ms.into()),
        max_connections: args.max_connections as usize,
        protected_mode: args.protected_mode,
        tls,
    };
    match agent::run(SocketAddr::new(args.interface, args.port), config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent: {e}");
            ExitCode::FAILURE
        }
    }
}
