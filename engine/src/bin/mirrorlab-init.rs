//! `mirrorlab-init`: the engine container's PID 1 and its health probe. Argument parsing
//! and exit codes only; the work is in `engine::container`.
//!
//! `mirrorlab-init start [ENGINE START OPTIONS]` runs `agent --data-dir D` and
//! `engine --data-dir D start [OPTIONS]`, both found next to this binary (`--no-agent`:
//! the engine alone, its agent running in a container of its own).
//! `mirrorlab-init agent [AGENT OPTIONS]` runs `agent --data-dir D [OPTIONS]` alone, as
//! PID 1 of the agent's container: it reaps the engine processes of the engine container
//! that shares its PID namespace.
//! `mirrorlab-init health` exits 0 when the engine's `/health` answers 200.
//! `mirrorlab-init install-file --staging S --to F` fsyncs S, renames it to F and fsyncs
//! the directory (the installer runs it after uploading a database file).

use clap::{Parser, Subcommand};
use engine::container::{configure, health, install, supervisor};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "mirrorlab-init",
    version,
    about = "Mirrorlab container entry point: runs the engine and/or its agent; health probe; Compose configuration"
)]
struct Args {
    /// The engine's durable data directory (shared with the agent beside it).
    #[arg(long, global = true, env = "MIRRORLAB_DATA_DIR", default_value = ".mirrorlab/engine")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent and the engine until the engine exits; forward stop signals.
    Start {
        /// Run the engine without an agent beside it.
        #[arg(long)]
        no_agent: bool,
        /// Options for `engine start` (`--merge F`, `--log-level L`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        engine_args: Vec<OsString>,
    },
    /// Run the agent alone (its own container, surviving the engine's); forward stop
    /// signals; reap every process of the shared PID namespace.
    Agent {
        /// Options for `agent` (`--engine-host mirrora`, `--port 2188`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        agent_args: Vec<OsString>,
    },
    /// One-shot configuration of a Compose lab: create or find the primary, join the
    /// others, mirror the databases (copying files between mounted member volumes).
    Configure {
        /// A member: its host name, optionally `=DIR` where its data volume is mounted
        /// here (default /members/HOST). The first member creates the mirror.
        #[arg(long = "member", required = true, value_name = "HOST[=DIR]")]
        members: Vec<String>,
        /// A database to mirror (with a namespace of the same name).
        #[arg(long = "database", value_name = "NAME")]
        databases: Vec<String>,
        /// The members' web port.
        #[arg(long, default_value_t = health::DEFAULT_WEB_PORT)]
        web_port: u16,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout_s: u64,
    },
    /// Exit 0 when the engine's management API answers GET /health with 200.
    Health {
        /// Web port. Default: the running engine's (its state file), else 52773.
        #[arg(long)]
        port: Option<u16>,
        #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        timeout_ms: u64,
    },
    /// Make an uploaded file durable under its real name: fsync it, rename it into place,
    /// fsync the directory.
    InstallFile {
        /// The file as uploaded (in the same directory as `--to`).
        #[arg(long)]
        staging: PathBuf,
        /// Its real name.
        #[arg(long)]
        to: PathBuf,
    },
}

fn main() -> ExitCode {
    // Before any thread exists, so every thread inherits the blocked mask.
    if let Err(e) = supervisor::block_signals() {
        eprintln!("mirrorlab-init: cannot block signals: {e}");
        return ExitCode::FAILURE;
    }
    let args = Args::parse();
    match args.command {
        Cmd::Health { port, timeout_ms } => {
            let port = health::web_port(port, &args.data_dir);
            match health::check(port, Duration::from_millis(timeout_ms)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mirrorlab-init health: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::InstallFile { staging, to } => match install::install_file(&staging, &to) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mirrorlab-init install-file: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Configure { members, databases, web_port, timeout_s } => {
            let members = members
                .iter()
                .map(|m| {
                    let (host, dir) = m.split_once('=').map_or((m.as_str(), None), |(h, d)| (h, Some(d)));
                    configure::Member {
                        host: host.to_string(),
                        web_port,
                        data_dir: dir.map_or_else(|| PathBuf::from("/members").join(host), PathBuf::from),
                    }
                })
                .collect();
            let databases = databases.iter().map(|d| d.to_ascii_uppercase()).collect();
            let plan = configure::Plan { members, databases, timeout: Duration::from_secs(timeout_s) };
            match configure::run(&plan, &mut |line| println!("configure: {line}")) {
                Ok(()) => {
                    println!("configure: the mirror is configured and verified");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("configure: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Start { no_agent, engine_args } => {
            let Some(bin_dir) = bin_dir() else { return ExitCode::FAILURE };
            let dir: OsString = args.data_dir.into_os_string();
            let mut engine = vec![OsString::from("--data-dir"), dir.clone(), OsString::from("start")];
            engine.extend(engine_args);
            supervise(supervisor::Plan {
                main: supervisor::Program { name: "engine", path: bin_dir.join("engine"), args: engine },
                agent: (!no_agent).then(|| supervisor::Program {
                    name: "agent",
                    path: bin_dir.join("agent"),
                    args: vec![OsString::from("--data-dir"), dir],
                }),
            })
        }
        Cmd::Agent { agent_args } => {
            let Some(bin_dir) = bin_dir() else { return ExitCode::FAILURE };
            let mut agent = vec![OsString::from("--data-dir"), args.data_dir.into_os_string()];
            agent.extend(agent_args);
            supervise(supervisor::Plan {
                main: supervisor::Program { name: "agent", path: bin_dir.join("agent"), args: agent },
                agent: None,
            })
        }
    }
}

/// Where `engine` and `agent` are: next to this binary.
fn bin_dir() -> Option<PathBuf> {
    let dir = std::env::current_exe().ok().and_then(|p| p.parent().map(PathBuf::from));
    if dir.is_none() {
        eprintln!("mirrorlab-init: cannot find the directory of this executable");
    }
    dir
}

fn supervise(plan: supervisor::Plan) -> ExitCode {
    match supervisor::run(&plan) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("mirrorlab-init: {e}");
            ExitCode::FAILURE
        }
    }
}
