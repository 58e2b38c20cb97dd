//! The `engine` binary: argument parsing and exit codes only; the work is in the library.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use engine::cli;
use engine::instance::datadir::DataDir;
use engine::mirror::status::MirrorAction;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "engine", version, about = "Mirrorlab engine: a journaled globals database server that speaks RESP")]
struct Args {
    /// Durable data directory (configuration, databases, journal, messages.log).
    #[arg(long, global = true, env = "MIRRORLAB_DATA_DIR", default_value = ".mirrorlab/engine")]
    data_dir: PathBuf,
    /// User for the commands that talk to a running engine (session, freeze, thaw,
    /// integrity, mirror); the password comes from MIRRORLAB_PASSWORD or a prompt.
    #[arg(long, global = true, env = "MIRRORLAB_USER")]
    user: Option<String>,
    /// The CA (PEM) that signed the engine's certificate, for the commands that talk to an
    /// engine whose superserver and web port speak TLS only. Default: the CA the engine
    /// running on --data-dir serves with (its state file says), else plain TCP.
    #[arg(long, global = true, env = "MIRRORLAB_CACERT", value_name = "FILE")]
    cacert: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine in the foreground until SIGTERM or SIGINT.
    Start {
        /// Client protocol (RESP) port; 0 picks a free port. Default: configured, 1972.
        #[arg(long)]
        superserver_port: Option<u16>,
        /// Management API and portal port; 0 picks a free port. Default: configured, 52773.
        #[arg(long)]
        web_port: Option<u16>,
        /// Merge file of settings and actions applied at start and whenever it changes.
        #[arg(long, env = "MIRRORLAB_MERGE_FILE")]
        merge: Option<PathBuf>,
        #[arg(long, default_value = "info", env = "MIRRORLAB_LOG_LEVEL")]
        log_level: String,
        /// Accept the mirror fault switch (FAULT-DROP/HEAL actions): for tests and labs only.
        #[arg(long, env = "MIRRORLAB_ALLOW_FAULT_INJECTION")]
        allow_fault_injection: bool,
        /// Address every listener binds (superserver, web, mirror data channel). Default:
        /// configured `network.interface`, 127.0.0.1.
        #[arg(long, env = "MIRRORLAB_INTERFACE")]
        interface: Option<String>,
        /// Protected mode (loopback peers only): `false` to serve other hosts. Default:
        /// configured `network.protected_mode`, true.
        #[arg(long, action = clap::ArgAction::Set, env = "MIRRORLAB_PROTECTED_MODE")]
        protected_mode: Option<bool>,
        /// The lab CA (PEM): with --tls-cert and --tls-key, the mirror's data channel,
        /// agents and arbiter use mutual TLS. Default: engine.yaml's `tls`, else plain TCP.
        #[arg(long, env = "MIRRORLAB_TLS_CA", requires_all = ["tls_cert", "tls_key"])]
        tls_ca: Option<PathBuf>,
        /// This member's certificate (PEM), signed by the lab CA, naming the member.
        #[arg(long, env = "MIRRORLAB_TLS_CERT", requires_all = ["tls_ca", "tls_key"])]
        tls_cert: Option<PathBuf>,
        /// This member's private key (PEM).
        #[arg(long, env = "MIRRORLAB_TLS_KEY", requires_all = ["tls_ca", "tls_cert"])]
        tls_key: Option<PathBuf>,
        /// The CA (PEM) for the superserver and the web port: with --client-tls-cert and
        /// --client-tls-key, both serve TLS only (a client certificate is optional; one
        /// given must be signed by this CA). Default: engine.yaml's `network.client_tls`,
        /// else plain TCP.
        #[arg(long, env = "MIRRORLAB_CLIENT_TLS_CA", requires_all = ["client_tls_cert", "client_tls_key"])]
        client_tls_ca: Option<PathBuf>,
        /// The certificate (PEM) the superserver and the web port present: it must name the
        /// addresses clients dial (127.0.0.1, localhost, a host name).
        #[arg(long, env = "MIRRORLAB_CLIENT_TLS_CERT", requires_all = ["client_tls_ca", "client_tls_key"])]
        client_tls_cert: Option<PathBuf>,
        /// Its private key (PEM).
        #[arg(long, env = "MIRRORLAB_CLIENT_TLS_KEY", requires_all = ["client_tls_ca", "client_tls_cert"])]
        client_tls_key: Option<PathBuf>,
        /// File holding the password of user `admin` (role %All), set before any port
        /// opens; from then on every client must authenticate. One line, at most 1 KiB.
        #[arg(long, env = "MIRRORLAB_PASSWORD_FILE", value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Stop the engine running on the data directory and wait until it has.
    Stop {
        /// Seconds to wait.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print the instance line (caret-separated); exit 0 only when running.
    Qlist {
        /// Wait up to this many seconds for the engine to be ready (running, answering on
        /// its superserver and web ports); exit 0 only once it is. For scripts that start
        /// an engine in the background, instead of sleeping.
        #[arg(long, value_name = "SECONDS")]
        wait: Option<u64>,
    },
    /// Open a terminal (USER> prompt) on an engine.
    Session {
        /// Namespace to start in.
        #[arg(short = 'U', long = "namespace", default_value = "USER")]
        namespace: String,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Superserver port. Default: the port of the engine on --data-dir, else 1972.
        #[arg(long)]
        port: Option<u16>,
    },
    /// Suspend database-file writes for an external backup (the journal keeps going).
    Freeze {
        /// Thaw automatically after this many seconds. Default: configured, 600.
        #[arg(long)]
        timeout: Option<u64>,
    },
    /// Resume database-file writes after a freeze.
    Thaw,
    /// Verify a database file.
    Integrity {
        /// Database name.
        database: String,
    },
    /// Inspect journal files.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Mirror Monitor and operator actions, through the running engine's management API.
    Mirror {
        /// Host of the engine's management API. Default: 127.0.0.1.
        #[arg(long, global = true)]
        host: Option<String>,
        /// Web (management API) port. Default: the engine running on --data-dir; with --host, 52773.
        #[arg(long, global = true)]
        port: Option<u16>,
        #[command(subcommand)]
        command: MirrorCommand,
    },
}

#[derive(Subcommand)]
enum MirrorCommand {
    /// Wait until this member's status is STATUS (Primary, Backup, Connected, ...), then
    /// print the Mirror Monitor; exit 1 with the last status after --timeout. For scripts
    /// and demos, instead of sleeping.
    Wait {
        /// The member status to wait for (case-insensitive).
        status: String,
        /// Seconds to wait.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Show this member's Mirror Monitor: members, arbiter, failover mode, databases.
    Status {
        /// Print the management API's JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Make this member the first primary of the configured mirror.
    Create,
    /// Join the configured mirror as the type the configuration gives this member.
    Join,
    /// On the primary: mirror a database.
    Add {
        /// Database name.
        database: String,
    },
    /// On another member: activate its copy of a mirrored database and catch it up.
    Activate {
        /// Database name.
        database: String,
    },
    /// Stop mirroring a database (it stays, as a local database).
    Remove {
        /// Database name.
        database: String,
    },
    /// On the primary: hand over to the active backup (planned failover).
    Failover,
    /// Set or clear no failover on this member.
    NoFailover {
        #[arg(value_enum)]
        switch: Switch,
    },
    /// On a DR async: become a failover member (the backup), or primary when both failover
    /// members are lost.
    Promote,
    /// On the backup: become a DR async member (demote to DR).
    Demote,
    /// On a backup or async: stop mirroring on this member (until `start` or a restart).
    Stop,
    /// Start mirroring again on this member.
    Start,
}

#[derive(Clone, Copy, ValueEnum)]
enum Switch {
    Set,
    Clear,
}

#[derive(Subcommand)]
enum JournalCommand {
    /// List journal files with their positions.
    List,
    /// Print the records of a journal file.
    Dump {
        /// A journal file (path, or a name in the data directory's journal/).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    engine::fatal::abort_on_panic();
    let args = Args::parse();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("engine: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut args: Args) -> Result<ExitCode> {
    // Absolute, so that qlist, logs and the state file name the directory unambiguously.
    args.data_dir = std::path::absolute(&args.data_dir).context("resolving --data-dir")?;
    let dir = DataDir::new(&args.data_dir);
    if matches!(
        args.command,
        Command::Session { .. }
            | Command::Freeze { .. }
            | Command::Thaw
            | Command::Integrity { .. }
            | Command::Mirror { .. }
    ) {
        let password = std::env::var("MIRRORLAB_PASSWORD").ok().filter(|p| !p.is_empty());
        cli::credentials::init(args.user.clone(), password).map_err(anyhow::Error::msg)?;
    }
    cli::transport::init(args.cacert.clone());
    match args.command {
        Command::Start {
            superserver_port,
            web_port,
            merge,
            log_level,
            allow_fault_injection,
            interface,
            protected_mode,
            tls_ca,
            tls_cert,
            tls_key,
            client_tls_ca,
            client_tls_cert,
            client_tls_key,
            password_file,
        } => {
            let tls = engine::tls::files_from_flags(tls_ca, tls_cert, tls_key).map_err(anyhow::Error::msg)?;
            let client_tls = engine::tls::files_from_flags(client_tls_ca, client_tls_cert, client_tls_key)
                .map_err(anyhow::Error::msg)?;
            engine::start::run(engine::start::StartOptions {
                data_dir: args.data_dir,
                superserver_port,
                web_port,
                merge_file: merge,
                log_level,
                allow_fault_injection,
                interface,
                protected_mode,
                tls,
                client_tls,
                password_file,
            })?;
        }
        Command::Stop { timeout } => {
            match cli::stop::stop(&dir, Duration::from_secs(timeout)).map_err(anyhow::Error::msg)? {
                cli::stop::Stopped::WasNotRunning => println!("engine on {} is not running", dir.root().display()),
                cli::stop::Stopped::Stopped { pid } => println!("engine process {pid} stopped"),
            }
        }
        Command::Qlist { wait: None } => {
            let q = cli::qlist::qlist(&dir);
            println!("{}", q.line);
            if !q.running {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Qlist { wait: Some(seconds) } => {
            let q = cli::qlist::wait_ready(&dir, std::time::Duration::from_secs(seconds));
            println!("{}", q.line);
            if !q.ready {
                eprintln!("engine: the engine on {} was not ready within {seconds} s", dir.root().display());
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Session { namespace, host, port } => {
            // Without --port: the engine running on --data-dir, with its TLS if it has it.
            let running = port.is_none().then(|| dir.read_state().filter(|_| dir.lock_holder().is_some())).flatten();
            let (port, tls) = match running {
                Some(state) => (state.superserver_port, cli::transport::of_running(&state)?),
                None => (port.unwrap_or(1972), cli::transport::named()?),
            };
            return cli::session::run(&host, port, &namespace, tls.as_ref());
        }
        Command::Freeze { timeout } => {
            let body = serde_json::json!({ "timeout_s": timeout }).to_string();
            let r = api(&dir, "POST", "/api/freeze", Some(&body))?;
            println!("database writes frozen{}", r.map(|_| String::new()).unwrap_or_default());
        }
        Command::Thaw => {
            api(&dir, "POST", "/api/thaw", None)?;
            println!("database writes thawed");
        }
        Command::Integrity { database } => {
            let report = cli::integrity::check(&dir, &database)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Journal { command } => match command {
            JournalCommand::List => cli::journal::list(&dir, &mut std::io::stdout())?,
            JournalCommand::Dump { file } => cli::journal::dump(&dir, &file, &mut std::io::stdout())?,
        },
        Command::Mirror { host, port, command } => {
            let find = || cli::mirror::Target::find(&dir, host.as_deref(), port);
            if let MirrorCommand::Wait { status, timeout } = &command {
                // The engine may still be starting: finding it is part of the wait.
                let body = cli::mirror::wait_for(find, status, std::time::Duration::from_secs(*timeout))?;
                print!("{}", cli::mirror::monitor(body.status.as_ref()));
                return Ok(ExitCode::SUCCESS);
            }
            let target = find()?;
            let action = match command {
                MirrorCommand::Status { json } => {
                    let body = cli::mirror::status(&target)?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&body)?);
                    } else {
                        print!("{}", cli::mirror::monitor(body.status.as_ref()));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                MirrorCommand::Wait { .. } => unreachable!("handled above"),
                MirrorCommand::Create => MirrorAction::Create,
                MirrorCommand::Join => MirrorAction::Join,
                MirrorCommand::Add { database } => MirrorAction::AddDatabase { name: database },
                MirrorCommand::Activate { database } => MirrorAction::ActivateDatabase { name: database },
                MirrorCommand::Remove { database } => MirrorAction::RemoveDatabase { name: database },
                MirrorCommand::Failover => MirrorAction::PlannedFailover,
                MirrorCommand::NoFailover { switch: Switch::Set } => MirrorAction::SetNoFailover,
                MirrorCommand::NoFailover { switch: Switch::Clear } => MirrorAction::ClearNoFailover,
                MirrorCommand::Promote => MirrorAction::PromoteDr,
                MirrorCommand::Demote => MirrorAction::DemoteToDr,
                MirrorCommand::Stop => MirrorAction::StopMirror,
                MirrorCommand::Start => MirrorAction::StartMirror,
            };
            println!("{}", cli::mirror::act(&target, &action)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Calls the management API of the engine running on `dir`.
fn api(dir: &DataDir, method: &str, path: &str, body: Option<&str>) -> Result<Option<String>> {
    let state = dir.read_state().filter(|_| dir.lock_holder().is_some());
    let Some(state) = state else { bail!("no engine is running on {}", dir.root().display()) };
    let tls = cli::transport::of_running(&state)?;
    let r = cli::http::call_over(state.web_port, method, path, body, Duration::from_secs(30), tls.as_ref())
        .with_context(|| format!("calling the engine's management API on port {}", state.web_port))?;
    if r.status >= 300 {
        bail!("{}", cli::http::error_message(&r.body));
    }
    Ok(None)
}
