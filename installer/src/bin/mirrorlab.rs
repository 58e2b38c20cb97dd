//! The `mirrorlab` binary: argument parsing, printing and exit codes only; the work is in
//! the `installer` library. Exit codes: 0 done, 1 failed (or `verify` found differences,
//! or the manifest is invalid), 2 usage error.

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
    /// Exit non-zero with the differences when the live lab differs from the manifest.
    Verify { manifest: PathBuf },
    /// Validate, start and apply, then print each member's role, ports and URLs.
    Up { manifest: PathBuf },
    /// Stop every process of the lab; --wipe also removes its directory.
    Down {
        #[arg(long)]
        wipe: bool,
    },
    /// Members with type, status, journal transfer, dejournaling, latency.
    Status {
        /// Redraw every second until interrupted.
        #[arg(long)]
        watch: bool,
    },
    /// Planned failover: the primary hands over to its backup.
    Failover,
    /// SIGKILL a member's engine (a crash).
    Kill { member: String },
    /// SIGSTOP a member's engine (a hang).
    Pause { member: String },
    /// SIGCONT a paused member's engine.
    Resume { member: String },
    /// Cut mirror traffic between MEMBER and every other member and the arbiter (or only OTHER).
    Partition {
        member: String,
        #[arg(long)]
        from: Option<String>,
    },
    /// Clear every partition.
    Heal,
    /// Stop (gracefully) and start a member.
    Restart { member: String },
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
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Up { manifest } => {
            let (m, changes) = commands::apply(ctx, manifest)?;
            let st = commands::status(ctx, Some(&m.lab))?;
            if json {
                print_json(serde_json::json!({ "ok": true, "changes": changes, "status": st }));
            } else {
                print!("{}", installer::status::table(&st));
                println!("\nTerminal: mirrorlab session MEMBER -U NAMESPACE    Status: mirrorlab status    Stop: mirrorlab down");
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
        Cmd::Failover => {
            let (old, new) = commands::failover(ctx, lab)?;
            if json {
                print_json(serde_json::json!({ "ok": true, "old_primary": old, "primary": new }));
            } else {
                println!("{new} is now primary ({old} handed over).");
            }
        }
        Cmd::Kill { member } | Cmd::Pause { member } | Cmd::Resume { member } | Cmd::Restart { member } => {
            let verb = match &args.command {
                Cmd::Kill { .. } => "kill",
                Cmd::Pause { .. } => "pause",
                Cmd::Resume { .. } => "resume",
                _ => "restart",
            };
            let name = commands::member_verb(ctx, lab, verb, member)?;
            let done = match verb {
                "kill" => "killed (SIGKILL)",
                "pause" => "paused (SIGSTOP)",
                "resume" => "resumed (SIGCONT)",
                _ => "restarted",
            };
            if json {
                print_json(serde_json::json!({ "ok": true, "member": name, "done": verb }));
            } else {
                println!("{name} {done}.");
            }
        }
        Cmd::Partition { member, from } => {
            let cut = commands::partition(ctx, lab, member, from.as_deref())?;
            if json {
                print_json(serde_json::json!({ "ok": true, "member": member.to_ascii_uppercase(), "cut_from": cut }));
            } else {
                println!(
                    "{} is cut off from {}. `mirrorlab heal` restores it.",
                    member.to_ascii_uppercase(),
                    cut.join(", ")
                );
            }
        }
        Cmd::Heal => {
            commands::heal(ctx, lab)?;
            if json {
                print_json(serde_json::json!({ "ok": true }));
            } else {
                println!("Every partition is healed.");
            }
        }
        Cmd::Session { member, namespace } => {
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
