//! `mirrorlab-init`: the engine container's PID 1. Argument parsing
//! and exit codes only; the work is in `engine::container`.
//!
//! `mirrorlab-init start [ENGINE START OPTIONS]` runs `agent --data-dir D` and
//! `engine --data-dir D start [OPTIONS]`, both found next to this binary (`--no-agent`:
//! the engine alone, its agent running in a container of its own).
//! `mirrorlab-init agent [AGENT OPTIONS]` runs `agent --data-dir D [OPTIONS]` alone, as
//! PID 1 of the agent's container: it reaps the engine processes of the engine container
//! that shares its PID namespace.
//! `mirrorlab-init install-file --staging S --to F` fsyncs S, renames it to F and fsyncs
//! the directory (the installer runs it after uploading a database file).

use clap::{Parser, Subcommand};
use engine::container::{install, supervisor};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mirrorlab-init",
    version,
    about = "Mirrorlab container entry point: runs the engine and/or its agent"
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
    engine::fatal::abort_on_panic();
    let args = Args::parse();
    match args.command {
        Cmd::InstallFile { staging, to } => match install::install_file(&staging, &to) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mirrorlab-init install-file: {e}");
                ExitCode::FAILURE
            }
        },
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
