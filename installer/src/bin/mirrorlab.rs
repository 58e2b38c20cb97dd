//! The `mirrorlab` binary: argument parsing, printing and exit codes only; the work is in
//! the `installer` library. Exit codes: 0 done, 1 failed (or the manifest is invalid),
//! 2 usage error, 3 `verify` found differences (the lab runs, but not as the manifest says).

use clap::{CommandFactory, Parser, Subcommand};
use installer::commands::{self, Ctx};
use installer::template::Inputs;
use installer::ui::Ui;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// The heading the options every verb takes are grouped under in `--help`.
const GLOBAL: &str = "Global options";

#[derive(Parser)]
#[command(
    name = "mirrorlab",
    version,
    about = "Build and drive a mirrored Mirrorlab lab from one YAML manifest (docs/manifest.md)",
    after_help = "Examples:\n  mirrorlab up manifests/phonebook.yaml\n  mirrorlab status --watch\n  mirrorlab kill mirrora\n  mirrorlab completions bash > /etc/bash_completion.d/mirrorlab\n  mirrorlab man | man -l -"
)]
struct Args {
    /// Directory holding the labs; each lab lives in <DIR>/<lab name>. Default: the
    /// nearest `.mirrorlab` in this directory or above it (as git finds `.git`), else
    /// `./.mirrorlab`.
    #[arg(long, global = true, env = "MIRRORLAB_LAB_DIR", value_name = "DIR", help_heading = GLOBAL)]
    lab_dir: Option<PathBuf>,
    /// Which lab (its name) for the verbs that take no manifest; default: the only one.
    #[arg(long, global = true, value_name = "NAME", help_heading = GLOBAL)]
    lab: Option<String>,
    /// Print one JSON document on stdout instead of text (for CI; docs/json.md).
    #[arg(long, global = true, help_heading = GLOBAL)]
    json: bool,
    /// Where the lab runs, overriding the manifest's `target:` (`local`, `docker`, or
    /// `compose` inside a Compose lab's installer service); kept
    /// with the lab, so later verbs need not repeat it.
    #[arg(long, global = true, value_parser = parse_target, help_heading = GLOBAL)]
    target: Option<installer::manifest::TargetKind>,
    /// Template variable overriding the manifest's `vars:` (repeatable).
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = parse_var, help_heading = GLOBAL)]
    vars: Vec<(String, String)>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a manifest: every problem at once, with file:line:column and a hint.
    #[command(
        after_help = "Examples:\n  mirrorlab validate manifests/phonebook.yaml\n  mirrorlab validate --var MIRROR=DEMO2 lab.yaml"
    )]
    Validate {
        /// The lab's YAML manifest (docs/manifest.md).
        manifest: PathBuf,
    },
    /// Show what `apply` would change, from the live lab; empty when converged.
    #[command(
        after_help = "Examples:\n  mirrorlab plan manifests/phonebook.yaml\n  mirrorlab plan --json lab.yaml | jq '.changes | length'"
    )]
    Plan {
        /// The lab's YAML manifest (docs/manifest.md).
        manifest: PathBuf,
    },
    /// Converge the lab to the manifest (resumable, idempotent).
    #[command(
        after_help = "Examples:\n  mirrorlab apply manifests/phonebook.yaml\n  mirrorlab apply --target docker lab.yaml"
    )]
    Apply {
        /// The lab's YAML manifest (docs/manifest.md).
        manifest: PathBuf,
    },
    /// Exit 3 with the differences when the live lab differs from the manifest (1: the
    /// check itself failed).
    #[command(
        after_help = "Examples:\n  mirrorlab verify manifests/phonebook.yaml\n  mirrorlab verify --json lab.yaml || echo \"drift: $?\""
    )]
    Verify {
        /// The lab's YAML manifest (docs/manifest.md).
        manifest: PathBuf,
    },
    /// Validate, start and apply, then print each member's role, ports and URLs.
    #[command(
        after_help = "Examples:\n  mirrorlab up manifests/phonebook.yaml\n  mirrorlab up --target docker manifests/phonebook.yaml\n  mirrorlab --lab-dir /tmp/labs up lab.yaml"
    )]
    Up {
        /// The lab's YAML manifest (docs/manifest.md).
        manifest: PathBuf,
    },
    /// Stop every process of the lab; --wipe also removes its directory.
    #[command(after_help = "Examples:\n  mirrorlab down\n  mirrorlab down --wipe --lab phonebook")]
    Down {
        /// Also remove the lab's directory (its data, logs and saved manifest).
        #[arg(long)]
        wipe: bool,
    },
    /// The labs under the lab directory: target, members running, primary.
    #[command(after_help = "Examples:\n  mirrorlab ls\n  mirrorlab ls --json")]
    Ls,
    /// Members with type, status, epoch, lag, journal transfer, dejournaling, latency.
    #[command(
        after_help = "Examples:\n  mirrorlab status\n  mirrorlab status --watch\n  mirrorlab status --json | jq '.members[] | {name, status, lag}'"
    )]
    Status {
        /// Redraw every second on the terminal's alternate screen until interrupted
        /// (Ctrl-C); with --json, one document a line.
        #[arg(long, short = 'W')]
        watch: bool,
    },
    /// Planned failover: the primary hands over to its backup; returns once the new
    /// primary takes writes and the old one is its caught-up backup.
    #[command(after_help = "Examples:\n  mirrorlab failover\n  mirrorlab failover --no-wait")]
    Failover {
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// SIGKILL a member's engine (a crash); returns once a new primary takes writes (or
    /// says why none will).
    #[command(after_help = "Examples:\n  mirrorlab kill mirrora\n  mirrorlab kill mirrora --timeout 30")]
    Kill {
        /// The member (its name in the manifest, any case).
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// SIGSTOP a member's engine (a hang); returns once a new primary takes writes, or
    /// the primary goes on without the member.
    #[command(after_help = "Examples:\n  mirrorlab pause mirrorb\n  mirrorlab pause mirrorb --no-wait")]
    Pause {
        /// The member (its name in the manifest, any case).
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// SIGCONT a paused member's engine; returns once it is back in its role, caught up.
    #[command(after_help = "Examples:\n  mirrorlab resume mirrorb")]
    Resume {
        /// The member (its name in the manifest, any case).
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Cut mirror traffic between MEMBER and every other member and the arbiter (or only
    /// OTHER); returns once the mirror shows the cut.
    #[command(
        after_help = "Examples:\n  mirrorlab partition mirrorb\n  mirrorlab partition mirrora --from mirrorb\n  mirrorlab partition mirrora --from arbiter"
    )]
    Partition {
        /// The member to cut off.
        member: String,
        /// Cut only the link to this member (or `arbiter`); default: every link.
        #[arg(long, value_name = "OTHER")]
        from: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Clear every partition; returns once the mirror has mended.
    #[command(after_help = "Examples:\n  mirrorlab heal\n  mirrorlab heal --timeout 120")]
    Heal {
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop (gracefully) and start a member; returns once it is back in its role, caught up.
    #[command(after_help = "Examples:\n  mirrorlab restart mirrora")]
    Restart {
        /// The member (its name in the manifest, any case).
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Wait until the mirror (or MEMBER) reaches a state: for scripts that caused a change
    /// themselves.
    #[command(
        after_help = "Examples:\n  mirrorlab wait\n  mirrorlab wait --for primary\n  mirrorlab wait --for backup mirrora --timeout 30"
    )]
    Wait {
        /// `primary` (a member, or MEMBER, takes writes), `caught-up` (every running member,
        /// or MEMBER, in its role and caught up), or a status word for MEMBER (`backup`,
        /// `down`, `waiting`, ...).
        #[arg(long = "for", default_value = "caught-up", value_name = "WHAT")]
        what: String,
        /// Wait for this member only (needed with a status word).
        member: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
        timeout: f64,
    },
    /// Print an HAProxy configuration whose one address always reaches the primary
    /// (`haproxy -f FILE`): RESP on 127.0.0.1:PORT, the primary's portal on PORT + 1.
    #[command(
        after_help = "Examples:\n  mirrorlab haproxy-config > haproxy.cfg && haproxy -f haproxy.cfg\n  mirrorlab haproxy-config --port 6380"
    )]
    HaproxyConfig {
        /// The address clients connect to (127.0.0.1:PORT).
        #[arg(long, default_value_t = 1972)]
        port: u16,
    },
    /// Print a Prometheus configuration that scrapes every member's /metrics
    /// (`prometheus --config.file=FILE`).
    #[command(
        after_help = "Examples:\n  mirrorlab metrics-config > prometheus.yml\n  mirrorlab metrics-config --interval 1s"
    )]
    MetricsConfig {
        /// How often Prometheus scrapes (a Prometheus duration: 5s, 1m).
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: String,
    },
    /// The engine terminal on a member.
    #[command(
        after_help = "Examples:\n  mirrorlab session mirrora -U PHONEBOOK\n  echo 'zw ^Company' | mirrorlab session mirrorb -U PHONEBOOK"
    )]
    Session {
        /// The member (its name in the manifest, any case).
        member: String,
        /// The namespace the terminal starts in.
        #[arg(short = 'U', long = "namespace", default_value = "USER")]
        namespace: String,
    },
    /// Build the lab images (mirrorlab/engine, mirrorlab/arbiter) from the binaries next to
    /// this mirrorlab, tagged with the version and `latest` (no checkout needed).
    #[command(after_help = "Examples:\n  mirrorlab images\n  mirrorlab images --tag dev --no-cache")]
    Images {
        /// An extra tag for both images (repeatable).
        #[arg(long = "tag", value_name = "TAG", value_parser = parse_tag)]
        tags: Vec<String>,
        /// Rebuild every layer.
        #[arg(long)]
        no_cache: bool,
    },
    /// Draw the lab's admin password into OUT/admin.password and make the lab CA (once each,
    /// the CA in --dir) and the TLS files of the members, the arbiter and the operator, each
    /// under OUT/<name>/ (ca.pem, certificate.pem, key.pem): the Compose lab's one-shot
    /// `secrets` service. The CA's key stays in --dir; the engines read the password through
    /// MIRRORLAB_PASSWORD_FILE.
    #[command(
        after_help = "Examples:\n  mirrorlab secrets --dir /ca --out /tls --members mirrora,mirrorb,mirrorc --owner 10001\n  mirrorlab secrets --dir .mirrorlab/ca --out ./tls --members mirrora,mirrorb"
    )]
    Secrets {
        /// Where the lab CA's certificate and key are kept (made on the first run).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// Where admin.password (0600) and each party's files are written, one directory
        /// per member, `arbiter` and `operator`.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The members, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// The uid (and gid) that owns what is written under --out: the images' user.
        #[arg(long)]
        owner: Option<u32>,
    },
    /// A member's messages.log (or its agent's log, or the arbiter's).
    #[command(
        after_help = "Examples:\n  mirrorlab logs mirrora\n  mirrorlab logs mirrora --follow\n  mirrorlab logs mirrora --agent --lines 50\n  mirrorlab logs arbiter"
    )]
    Logs {
        /// The member (its name in the manifest, any case), or `arbiter`.
        member: String,
        /// How many of the last lines to print.
        #[arg(long, default_value_t = 200)]
        lines: usize,
        /// Go on printing lines as they are written, until interrupted (Ctrl-C).
        #[arg(long, short = 'f')]
        follow: bool,
        /// The member's agent's log instead of the engine's messages.log.
        #[arg(long)]
        agent: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  mirrorlab completions bash > ~/.local/share/bash-completion/completions/mirrorlab\n  mirrorlab completions zsh > \"${fpath[1]}/_mirrorlab\"\n  mirrorlab completions fish > ~/.config/fish/completions/mirrorlab.fish"
    )]
    Completions {
        /// The shell the script is for.
        shell: clap_complete::Shell,
    },
    /// Print mirrorlab's man page (roff) on stdout.
    #[command(
        after_help = "Examples:\n  mirrorlab man | man -l -\n  mirrorlab man > /usr/local/share/man/man1/mirrorlab.1"
    )]
    Man,
}

/// How the verbs that change the lab wait for what they caused.
#[derive(clap::Args, Clone, Copy)]
struct WaitArgs {
    /// Return as soon as the action is done, without waiting for the mirror to settle.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this many seconds (the error names the member and its status).
    #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
    timeout: f64,
}

impl WaitArgs {
    fn waiting(self) -> commands::Waiting {
        commands::Waiting { wait: !self.no_wait, timeout: std::time::Duration::from_secs_f64(self.timeout) }
    }
}

/// A Prometheus duration: a whole number and one of ms, s, m, h.
fn parse_duration(s: &str) -> Result<String, String> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    if !digits.is_empty()
        && digits.len() <= 6
        && digits.bytes().all(|b| b.is_ascii_digit())
        && ["ms", "s", "m", "h"].contains(&unit)
    {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a duration such as 500ms, 5s, 1m"))
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0 to 86400")),
    }
}

/// What a settled wait found, for people: "MIRRORB took over: MIRRORB is primary (epoch 3)
/// (0.21 s)".
fn settled_text(s: &installer::settle::Settled) -> String {
    match &s.note {
        Some(note) => format!("{note}."),
        None => format!("{} ({:.2} s).", s.what, s.seconds),
    }
}

/// The JSON of a verb that waited: its own fields plus what the wait found.
fn with_settled(mut v: serde_json::Value, s: Option<&installer::settle::Settled>) -> serde_json::Value {
    if let (Some(s), Some(obj)) = (s, v.as_object_mut()) {
        let extra = serde_json::to_value(s).expect("Settled serialises");
        for (k, x) in extra.as_object().expect("Settled is an object") {
            obj.insert(k.clone(), x.clone());
        }
    }
    v
}

/// `verify`'s exit code when the lab differs from the manifest: a script can tell "it
/// differs" (3) from "the check failed" (1).
const EXIT_DIFFERENCES: u8 = 3;

fn parse_target(s: &str) -> Result<installer::manifest::TargetKind, String> {
    commands::parse_target(s).ok_or_else(|| format!("unknown target `{s}`: use local, docker or compose"))
}

fn parse_tag(s: &str) -> Result<String, String> {
    if installer::images::is_valid_tag(s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a Docker tag: up to 128 of A-Z a-z 0-9 _ . -, not starting with . or -"))
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not NAME=VALUE"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ui = Ui { json: args.json };
    let overrides: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let base = args.lab_dir.clone().unwrap_or_else(|| installer::labdir::find_base(&cwd));
    let ctx = Ctx { base, ui, inputs: Inputs::from_process(overrides), target: args.target };
    match run(&ctx, &args) {
        Ok(code) => code,
        Err(commands::CliError::Load(installer::manifest::LoadError::Invalid(problems))) => {
            if args.json {
                let list: Vec<serde_json::Value> = problems
                    .list
                    .iter()
                    .map(|p| serde_json::json!({ "file": problems.file, "line": p.pos.line, "column": p.pos.column, "message": p.message, "hint": p.hint }))
                    .collect();
                println!("{}", with_schema(serde_json::json!({ "ok": false, "problems": list })));
            } else {
                eprintln!("{problems}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            if args.json {
                println!("{}", with_schema(serde_json::json!({ "ok": false, "error": e.to_string() })));
            } else {
                eprintln!("mirrorlab: error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The version of every `--json` document's shape (docs/json.md): raised when a field is
/// removed or changes meaning, not when one is added.
const SCHEMA_VERSION: u32 = 1;

/// `v` with `schema_version` added (an object only).
fn with_schema(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("schema_version".into(), SCHEMA_VERSION.into());
    }
    v
}

/// A `--json` document, with its `schema_version`.
fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&with_schema(v)).expect("JSON values serialise"));
}

fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode, commands::CliError> {
    let lab = args.lab.as_deref();
    let json = args.json;
    match &args.command {
        Cmd::Completions { shell } => {
            clap_complete::generate(*shell, &mut Args::command(), "mirrorlab", &mut std::io::stdout());
        }
        Cmd::Man => {
            let mut out = Vec::new();
            installer::help::man_page(Args::command(), &mut out)
                .map_err(|e| commands::CliError::Lab(format!("cannot write the man page: {e}")))?;
            use std::io::Write;
            let _ = std::io::stdout().write_all(&out);
        }
        Cmd::Validate { manifest } => {
            let m = ctx.load(manifest)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "lab": m.lab, "members": m.members.len() }));
            } else {
                println!("{}: valid (lab {}, {} members)", manifest.display(), m.lab, m.members.len());
            }
        }
        Cmd::Plan { manifest } => {
            let changes = commands::plan(ctx, manifest)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "changes": changes }));
            } else if changes.is_empty() {
                println!("No changes: the lab matches {}.", manifest.display());
            } else {
                for c in &changes {
                    println!("{c}");
                }
                println!("{} change{}", changes.len(), if changes.len() == 1 { "" } else { "s" });
            }
        }
        Cmd::Apply { manifest } => {
            let (m, changes, drawn) = commands::apply(ctx, manifest)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "changes": changes }));
            } else if let Some(password) = &drawn {
                println!("Applied {} changes.", changes.len());
                let dir = installer::labdir::LabDir::new(&ctx.base, &m.lab);
                println!("{}", installer::credentials::first_login_text(&dir, password));
            } else if changes.is_empty() {
                println!("No changes: the lab already matches {}.", manifest.display());
            } else {
                println!(
                    "Applied {} change{}; every member is caught up.",
                    changes.len(),
                    if changes.len() == 1 { "" } else { "s" }
                );
            }
        }
        Cmd::Verify { manifest } => {
            let diffs = commands::verify(ctx, manifest)?;
            if json {
                print_json(serde_json::json!({ "ok": diffs.is_empty(), "differences": diffs }));
            } else if diffs.is_empty() {
                println!("The lab matches {}.", manifest.display());
            } else {
                println!("The lab differs from {}:", manifest.display());
                for d in &diffs {
                    println!("  {d}");
                }
            }
            if !diffs.is_empty() {
                return Ok(ExitCode::from(EXIT_DIFFERENCES));
            }
        }
        Cmd::Up { manifest } => {
            let (m, changes, drawn) = commands::apply(ctx, manifest)?;
            let st = commands::status(ctx, Some(&m.lab))?;
            let dir = installer::labdir::LabDir::new(&ctx.base, &m.lab);
            if json {
                // The password itself stays out of JSON (logs keep JSON); its file is named.
                let file = installer::credentials::load(&dir).map(|_| installer::credentials::password_file(&dir));
                print_json(
                    serde_json::json!({ "ok": true, "changes": changes, "status": st, "admin_password_file": file }),
                );
            } else {
                print!("{}", installer::status::table(&st));
                let durability = match m.durability {
                    installer::manifest::Durability::Always if m.mirror.is_some() => {
                        "always (a write is acknowledged once it is synced on the primary and on the backup)"
                    }
                    installer::manifest::Durability::Always => "always (a write is acknowledged once it is synced)",
                    installer::manifest::Durability::Buffered => {
                        "buffered (a write is acknowledged once buffered; a crash or failover can lose the last second)"
                    }
                };
                println!("\nDurability: {durability}");
                // The primary (or the only member) is where a Redis client starts.
                let first = st.members.iter().find(|x| x.status == "primary").or(st.members.first());
                if let Some(x) = first {
                    println!("Redis clients: redis-cli -p {}    ({})", x.superserver_port, x.name);
                    if installer::credentials::load(&dir).is_some() {
                        println!(
                            "               add --user {} --pass \"$(cat {})\" (the lab's admin password)",
                            installer::credentials::ADMIN_USER,
                            installer::credentials::password_file(&dir).display()
                        );
                    }
                }
                println!("Terminal: mirrorlab session MEMBER -U NAMESPACE    Status: mirrorlab status    Stop: mirrorlab down");
                if let Some(password) = &drawn {
                    println!("{}", installer::credentials::first_login_text(&dir, password));
                }
            }
        }
        Cmd::Down { wipe } => {
            let name = commands::down(ctx, lab, *wipe)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "lab": name, "wiped": wipe }));
            } else {
                println!("Lab {name} is down{}.", if *wipe { " and its directory removed" } else { "" });
            }
        }
        Cmd::Status { watch: false } => {
            let st = commands::status(ctx, lab)?;
            if json {
                print_json(serde_json::to_value(&st).expect("status serialises"));
            } else {
                print!("{}", installer::status::table(&st));
            }
        }
        Cmd::Status { watch: true } => {
            use std::io::IsTerminal;
            // The alternate screen only on a terminal; piped, a reading a line per period.
            let screen = (!json && std::io::stdout().is_terminal()).then(installer::ui::AltScreen::enter);
            loop {
                let st = commands::status(ctx, lab)?;
                let header = installer::status::watch_header(&st, std::time::SystemTime::now());
                if json {
                    println!("{}", with_schema(serde_json::to_value(&st).expect("status serialises")));
                } else if let Some(screen) = &screen {
                    screen.draw(&format!("{header}\n{}", installer::status::table(&st)));
                } else {
                    println!("{header}\n{}", installer::status::table(&st));
                }
                // --watch redraws on a period a person reads at; it waits for nothing.
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        Cmd::Failover { wait } => {
            let s = commands::failover(ctx, lab, wait.waiting())?;
            let old = s.old_primary.clone().unwrap_or_default();
            if json {
                print_json(with_settled(serde_json::json!({ "ok": true }), Some(&s)));
            } else {
                println!("{old} handed over. {}", settled_text(&s));
            }
        }
        Cmd::Kill { member, wait }
        | Cmd::Pause { member, wait }
        | Cmd::Resume { member, wait }
        | Cmd::Restart { member, wait } => {
            let verb = match &args.command {
                Cmd::Kill { .. } => "kill",
                Cmd::Pause { .. } => "pause",
                Cmd::Resume { .. } => "resume",
                _ => "restart",
            };
            let (name, settled) = commands::member_verb(ctx, lab, verb, member, wait.waiting())?;
            let done = match verb {
                "kill" => "killed (SIGKILL)",
                "pause" => "paused (SIGSTOP)",
                "resume" => "resumed (SIGCONT)",
                _ => "restarted",
            };
            if json {
                print_json(with_settled(
                    serde_json::json!({ "ok": true, "member": name, "done": verb }),
                    settled.as_ref(),
                ));
            } else {
                match &settled {
                    Some(s) => println!("{name} {done}. {}", settled_text(s)),
                    None => println!("{name} {done}."),
                }
            }
        }
        Cmd::Partition { member, from, wait } => {
            let cut = commands::partition(ctx, lab, member, from.as_deref(), wait.waiting())?;
            if json {
                print_json(with_settled(
                    serde_json::json!({ "ok": true, "member": cut.member, "cut_from": cut.cut_from }),
                    cut.settled.as_ref(),
                ));
            } else {
                println!("{} is cut off from {}. `mirrorlab heal` restores it.", cut.member, cut.cut_from.join(", "));
                if let Some(s) = &cut.settled {
                    println!("{}", settled_text(s));
                }
            }
        }
        Cmd::Heal { wait } => {
            let settled = commands::heal(ctx, lab, wait.waiting())?;
            if json {
                print_json(with_settled(serde_json::json!({ "ok": true }), settled.as_ref()));
            } else {
                match &settled {
                    Some(s) => {
                        println!("Every partition is healed. {}", settled_text(s))
                    }
                    None => println!("Every partition is healed."),
                }
            }
        }
        Cmd::Wait { what, member, timeout } => {
            let what = commands::WaitFor::parse(what);
            let s = commands::wait(ctx, lab, &what, member.as_deref(), std::time::Duration::from_secs_f64(*timeout))?;
            if json {
                print_json(with_settled(serde_json::json!({ "ok": true }), Some(&s)));
            } else {
                println!("{}", settled_text(&s));
            }
        }
        Cmd::Ls => {
            let labs = commands::ls(ctx)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "labs": labs }));
            } else if labs.is_empty() {
                println!("No lab under {}: start one with `mirrorlab up MANIFEST`.", ctx.base.display());
            } else {
                println!("{:<24} {:<8} {:<8} PRIMARY", "LAB", "TARGET", "RUNNING");
                for l in &labs {
                    let running = format!("{}/{}", l.running, l.members);
                    println!("{:<24} {:<8} {:<8} {}", l.lab, l.target, running, l.primary.as_deref().unwrap_or("-"));
                }
            }
        }
        Cmd::MetricsConfig { interval } => {
            print!("{}", commands::metrics_config(ctx, lab, interval)?);
        }
        Cmd::HaproxyConfig { port } => {
            print!("{}", commands::haproxy_config(ctx, lab, *port)?);
        }
        Cmd::Session { member, namespace } => {
            // Before the terminal's own banner: which member, and what a write's
            // acknowledgement promises there.
            if let Ok(banner) = commands::session_banner(ctx, lab, member) {
                eprintln!("{banner}");
            }
            let code = commands::session(ctx, lab, member, namespace)?;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Cmd::Images { tags, no_cache } => {
            let opts =
                installer::images::Options { extra_tags: tags.clone(), only_extra_tags: false, no_cache: *no_cache };
            let built =
                installer::images::build_here(&opts, &mut |image, line| ctx.ui.step(&format!("[{image}] {line}")))?;
            if json {
                print_json(serde_json::json!({ "ok": true, "images": built }));
            } else {
                for b in &built {
                    let names: Vec<String> = b.tags.iter().map(|t| format!("{}:{t}", b.repository)).collect();
                    println!("{}  {:.1} MB", names.join(" "), b.size as f64 / 1e6);
                }
            }
        }
        Cmd::Secrets { dir, out, members, owner } => {
            use installer::certs::{export, LabCerts, Party};
            let file = out.join(installer::credentials::PASSWORD_FILE);
            let cannot = |e: std::io::Error| commands::CliError::Lab(format!("cannot write {}: {e}", file.display()));
            let (password, drawn) = installer::credentials::ensure_in(out).map_err(cannot)?;
            if let Some(uid) = owner {
                std::os::unix::fs::chown(&file, Some(*uid), Some(*uid)).map_err(cannot)?;
            }
            let mut parties: Vec<Party<'_>> = members.iter().map(|m| Party::Member(m)).collect();
            parties.extend([Party::Arbiter, Party::Operator]);
            let written = export(&LabCerts::new(dir), &parties, out, *owner)?;
            if json {
                print_json(serde_json::json!({
                    "ok": true,
                    "drawn": drawn,
                    "admin_password_file": file,
                    "files": written,
                }));
            } else {
                if drawn {
                    // Shown once, in this one-shot service's log: how a person learns it.
                    println!("Admin password (shown once; stored in {}): {password}", file.display());
                } else {
                    println!("The admin password is kept in {}.", file.display());
                }
                println!(
                    "TLS files of {} parties under {} (lab CA in {})",
                    parties.len(),
                    out.display(),
                    dir.display()
                );
            }
        }
        Cmd::Logs { member, lines, follow: false, agent } => {
            println!("{}", commands::logs(ctx, lab, member, *agent, *lines)?);
        }
        Cmd::Logs { member, lines, follow: true, agent } => {
            use std::io::Write;
            // Until interrupted (Ctrl-C ends the process), or until stdout is closed (`| head`).
            let closed = std::cell::Cell::new(false);
            commands::follow_logs(ctx, lab, member, *agent, *lines, &|| closed.get(), &mut |line| {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    closed.set(true);
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
