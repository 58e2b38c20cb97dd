//! The `mirrorlab` binary: argument parsing, printing and exit codes only; the work is in
//! the `installer` library. Exit codes: 0 done, 1 failed (or the manifest is invalid),
//! 2 usage error, 3 `verify` found differences (the lab runs, but not as the manifest says).

use clap::{Parser, Subcommand};
use installer::commands::{self, Ctx};
use installer::template::Inputs;
use installer::ui::Ui;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mirrorlab",
    version,
    about = "Build and drive a mirrored Mirrorlab lab from one YAML manifest (docs/manifest.md)"
)]
struct Args {
    /// Directory holding the labs; each lab lives in <DIR>/<lab name>.
    #[arg(long, global = true, env = "MIRRORLAB_LAB_DIR", default_value = ".mirrorlab")]
    lab_dir: PathBuf,
    /// Which lab (its name) for the verbs that take no manifest; default: the only one.
    #[arg(long, global = true)]
    lab: Option<String>,
    /// Print one JSON document on stdout instead of text (for CI).
    #[arg(long, global = true)]
    json: bool,
    /// Where the lab runs, overriding the manifest's `target:` (`local`, `docker`, or
    /// `compose` inside a Compose lab's installer service); kept
    /// with the lab, so later verbs need not repeat it.
    #[arg(long, global = true, value_parser = parse_target)]
    target: Option<installer::manifest::TargetKind>,
    /// Template variable overriding the manifest's `vars:` (repeatable).
    #[arg(long = "var", global = true, value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a manifest: every problem at once, with file:line:column and a hint.
    Validate { manifest: PathBuf },
    /// Show what `apply` would change, from the live lab; empty when converged.
    Plan { manifest: PathBuf },
    /// Converge the lab to the manifest (resumable, idempotent).
    Apply { manifest: PathBuf },
    /// Exit 3 with the differences when the live lab differs from the manifest (1: the
    /// check itself failed).
    Verify { manifest: PathBuf },
    /// Validate, start and apply, then print each member's role, ports and URLs.
    Up { manifest: PathBuf },
    /// Stop every process of the lab; --wipe also removes its directory.
    Down {
        #[arg(long)]
        wipe: bool,
    },
    /// The labs under the lab directory: target, members running, primary.
    Ls,
    /// Members with type, status, journal transfer, dejournaling, latency.
    Status {
        /// Redraw every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Planned failover: the primary hands over to its backup; returns once the new
    /// primary takes writes and the old one is its caught-up backup.
    Failover {
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// SIGKILL a member's engine (a crash); returns once a new primary takes writes (or
    /// says why none will).
    Kill {
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// SIGSTOP a member's engine (a hang); returns once a new primary takes writes, or
    /// the primary goes on without the member.
    Pause {
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// SIGCONT a paused member's engine; returns once it is back in its role, caught up.
    Resume {
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Cut mirror traffic between MEMBER and every other member and the arbiter (or only
    /// OTHER); returns once the mirror shows the cut.
    Partition {
        member: String,
        #[arg(long)]
        from: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Clear every partition; returns once the mirror has mended.
    Heal {
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop (gracefully) and start a member; returns once it is back in its role, caught up.
    Restart {
        member: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Wait until the mirror (or MEMBER) reaches a state: for scripts that caused a change
    /// themselves.
    Wait {
        /// `primary` (a member, or MEMBER, takes writes), `caught-up` (every running member,
        /// or MEMBER, in its role and caught up), or a status word for MEMBER (`backup`,
        /// `down`, `waiting`, ...).
        #[arg(long = "for", default_value = "caught-up", value_name = "WHAT")]
        what: String,
        member: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
        timeout: f64,
    },
    /// Print an HAProxy configuration whose one address always reaches the primary
    /// (`haproxy -f FILE`): RESP on 127.0.0.1:PORT, the primary's portal on PORT + 1.
    HaproxyConfig {
        /// The address clients connect to (127.0.0.1:PORT).
        #[arg(long, default_value_t = 1972)]
        port: u16,
    },
    /// Print a Prometheus configuration that scrapes every member's /metrics
    /// (`prometheus --config.file=FILE`).
    MetricsConfig {
        /// How often Prometheus scrapes (a Prometheus duration: 5s, 1m).
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        interval: String,
    },
    /// The engine terminal on a member.
    Session {
        member: String,
        #[arg(short = 'U', long = "namespace", default_value = "USER")]
        namespace: String,
    },
    /// Build the lab images (mirrorlab/engine, mirrorlab/arbiter) from the binaries next to
    /// this mirrorlab, tagged with the version and `latest` (no checkout needed).
    Images {
        /// An extra tag for both images (repeatable).
        #[arg(long = "tag", value_name = "TAG", value_parser = parse_tag)]
        tags: Vec<String>,
        /// Rebuild every layer.
        #[arg(long)]
        no_cache: bool,
    },
    /// A member's messages.log.
    Logs {
        member: String,
        #[arg(long, default_value_t = 200)]
        lines: usize,
    },
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
    let ctx = Ctx { base: args.lab_dir.clone(), ui, inputs: Inputs::from_process(overrides), target: args.target };
    match run(&ctx, &args) {
        Ok(code) => code,
        Err(commands::CliError::Load(installer::manifest::LoadError::Invalid(problems))) => {
            if args.json {
                let list: Vec<serde_json::Value> = problems
                    .list
                    .iter()
                    .map(|p| serde_json::json!({ "file": problems.file, "line": p.pos.line, "column": p.pos.column, "message": p.message, "hint": p.hint }))
                    .collect();
                println!("{}", serde_json::json!({ "ok": false, "problems": list }));
            } else {
                eprintln!("{problems}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "ok": false, "error": e.to_string() }));
            } else {
                eprintln!("mirrorlab: error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).expect("JSON values serialise"));
}

fn run(ctx: &Ctx, args: &Args) -> Result<ExitCode, commands::CliError> {
    let lab = args.lab.as_deref();
    let json = args.json;
    match &args.command {
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
            let (_, changes) = commands::apply(ctx, manifest)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "changes": changes }));
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
            let (m, changes) = commands::apply(ctx, manifest)?;
            let st = commands::status(ctx, Some(&m.lab))?;
            if json {
                print_json(serde_json::json!({ "ok": true, "changes": changes, "status": st }));
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
                }
                println!("Terminal: mirrorlab session MEMBER -U NAMESPACE    Status: mirrorlab status    Stop: mirrorlab down");
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
        Cmd::Status { watch } => loop {
            let st = commands::status(ctx, lab)?;
            if json {
                println!("{}", serde_json::to_string(&st).expect("status serialises"));
            } else {
                if *watch {
                    print!("\x1b[2J\x1b[H");
                }
                print!("{}", installer::status::table(&st));
            }
            if !*watch {
                break;
            }
            // --watch redraws on a period a person reads at; it waits for nothing.
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
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
        Cmd::Logs { member, lines } => {
            println!("{}", commands::logs(ctx, lab, member, *lines)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
