//! The library side of every `mirrorlab` verb. Each returns data or an error a person
//! can act on; printing and exit codes are the binary's.

use crate::converge::{Change, Converge, Mode, StepError};
use crate::labdir::LabDir;
use crate::manifest::{self, LoadError, Manifest, TargetKind};
use crate::status::{self, LabStatus};
use crate::target::{self, Proc, Target, TargetError};
use crate::template::Inputs;
use crate::ui::Ui;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `failover` waits for the other member to take over.
pub const FAILOVER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error(transparent)]
    Api(Box<crate::api::ApiError>),
    #[error("{0}")]
    Lab(String),
    #[error(transparent)]
    Images(#[from] crate::images::ImagesError),
}

impl From<crate::api::ApiError> for CliError {
    fn from(e: crate::api::ApiError) -> CliError {
        CliError::Api(Box::new(e))
    }
}

pub struct Ctx {
    /// The directory holding labs (`.mirrorlab` by default); each lab is `<base>/<lab>`.
    pub base: PathBuf,
    pub ui: Ui,
    pub inputs: Inputs,
    /// `--target`: overrides the manifest's `target:` (kept with the lab, so the trainer
    /// verbs find the lab where `up` put it).
    pub target: Option<TargetKind>,
}

/// The file in the lab directory that records a `--target` override.
const TARGET_FILE: &str = "manifest.target";

pub fn target_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Local => "local",
        TargetKind::Docker => "docker",
        TargetKind::Compose => "compose",
    }
}

pub fn parse_target(s: &str) -> Option<TargetKind> {
    match s {
        "local" => Some(TargetKind::Local),
        "docker" => Some(TargetKind::Docker),
        "compose" => Some(TargetKind::Compose),
        _ => None,
    }
}

impl Ctx {
    pub fn load(&self, path: &Path) -> Result<Manifest, CliError> {
        let mut m = manifest::load(path, &self.inputs)?;
        if let Some(t) = self.target {
            m.target = t;
        }
        Ok(m)
    }

    /// Keeps the rendered manifest in the lab directory so the trainer verbs (`kill`,
    /// `status`...) need only the lab's name.
    fn remember(&self, path: &Path, m: &Manifest) -> Result<(), CliError> {
        let dir = LabDir::new(&self.base, &m.lab);
        let text =
            std::fs::read_to_string(path).map_err(|e| CliError::Lab(format!("cannot read {}: {e}", path.display())))?;
        let rendered = crate::template::render(&text, &self.inputs)
            .map_err(|_| CliError::Lab("the manifest no longer renders".into()))?;
        let base =
            path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).unwrap_or(Path::new("."));
        let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
        std::fs::create_dir_all(&dir.root)
            .map_err(|e| CliError::Lab(format!("cannot create {}: {e}", dir.root.display())))?;
        std::fs::write(dir.root.join("manifest.yaml"), rendered)
            .map_err(|e| CliError::Lab(format!("cannot save the manifest in {}: {e}", dir.root.display())))?;
        std::fs::write(dir.root.join("manifest.base"), base.display().to_string())
            .map_err(|e| CliError::Lab(e.to_string()))?;
        let override_file = dir.root.join(TARGET_FILE);
        match self.target {
            Some(t) => std::fs::write(&override_file, target_name(t))
                .map_err(|e| CliError::Lab(format!("cannot save the target in {}: {e}", dir.root.display())))?,
            None => {
                let _ = std::fs::remove_file(&override_file);
            }
        }
        Ok(())
    }

    /// The lab named `lab`, or the only lab under the base directory.
    pub fn open_lab(&self, lab: Option<&str>) -> Result<(Manifest, Box<dyn Target>), CliError> {
        let name = match lab {
            Some(l) => l.to_string(),
            None => {
                let labs = self.labs();
                match labs.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(CliError::Lab(format!(
                            "no lab under {}: start one with `mirrorlab up MANIFEST` (or pass --lab-dir)",
                            self.base.display()
                        )))
                    }
                    many => {
                        return Err(CliError::Lab(format!(
                            "several labs under {} ({}): pass --lab NAME",
                            self.base.display(),
                            many.join(", ")
                        )))
                    }
                }
            }
        };
        let dir = LabDir::new(&self.base, &name);
        let saved = dir.root.join("manifest.yaml");
        let text = std::fs::read_to_string(&saved).map_err(|_| {
            CliError::Lab(format!(
                "no lab `{name}` under {}: start it with `mirrorlab up MANIFEST`",
                self.base.display()
            ))
        })?;
        let base = std::fs::read_to_string(dir.root.join("manifest.base")).unwrap_or_else(|_| ".".into());
        let mut m = manifest::load_str(&saved.display().to_string(), &text, Path::new(base.trim()), &Inputs::default())
            .map_err(|p| CliError::Load(LoadError::Invalid(p)))?;
        let saved_target =
            std::fs::read_to_string(dir.root.join(TARGET_FILE)).ok().and_then(|t| parse_target(t.trim()));
        if let Some(t) = self.target.or(saved_target) {
            m.target = t;
        }
        let t = target::open(&m, &self.base)?;
        Ok((m, t))
    }

    /// Labs present under the base directory, by name.
    pub fn labs(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.base)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join("manifest.yaml").is_file())
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

pub fn plan(ctx: &Ctx, path: &Path) -> Result<Vec<Change>, CliError> {
    let m = ctx.load(path)?;
    let t = open_target_for_plan(ctx, &m)?;
    let dir = LabDir::new(&ctx.base, &m.lab);
    let mut c = Converge::new(&m, t.as_ref(), &dir, Mode::Plan, ctx.ui);
    c.run()?;
    Ok(c.changes)
}

/// Planning must change nothing, not even create the lab directory: a fresh lab is
/// planned over a scratch copy of its would-be state.
fn open_target_for_plan(ctx: &Ctx, m: &Manifest) -> Result<Box<dyn Target>, CliError> {
    if LabDir::new(&ctx.base, &m.lab).exists() {
        return Ok(target::open(m, &ctx.base)?);
    }
    let scratch = std::env::temp_dir().join(format!("mirrorlab-plan-{}-{}", m.lab, std::process::id()));
    let t = target::open(m, &scratch)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(t)
}

pub fn apply(ctx: &Ctx, path: &Path) -> Result<(Manifest, Vec<Change>), CliError> {
    let m = ctx.load(path)?;
    let t = target::open(&m, &ctx.base)?;
    ctx.remember(path, &m)?;
    let dir = LabDir::new(&ctx.base, &m.lab);
    let mut c = Converge::new(&m, t.as_ref(), &dir, Mode::Apply, ctx.ui);
    c.run()?;
    let changes = c.changes;
    Ok((m, changes))
}

/// Differences between the manifest and the live lab, one readable line each; empty
/// when the lab is converged and healthy.
pub fn verify(ctx: &Ctx, path: &Path) -> Result<Vec<String>, CliError> {
    let m = ctx.load(path)?;
    let t = open_target_for_plan(ctx, &m)?;
    let dir = LabDir::new(&ctx.base, &m.lab);
    let mut c = Converge::new(&m, t.as_ref(), &dir, Mode::Plan, ctx.ui);
    c.run()?;
    let mut diffs: Vec<String> = c.changes.iter().map(|ch| format!("{}: missing: {}", ch.member, ch.step)).collect();
    let st = status::collect(&m, t.as_ref());
    if m.mirror.is_some() {
        let primaries: Vec<&str> =
            st.members.iter().filter(|s| s.status == "primary").map(|s| s.name.as_str()).collect();
        if primaries.len() != 1 {
            diffs.push(format!(
                "MIRROR: expected one primary, found {}",
                if primaries.is_empty() { "none".into() } else { primaries.join(", ") }
            ));
        }
    }
    for s in &st.members {
        let member = m.member(&s.name).expect("status lists manifest members");
        let expected: &[&str] = match member.member_type {
            _ if m.mirror.is_none() || !member.member_type.in_mirror() => &["running"],
            crate::manifest::MemberType::Failover => &["primary", "backup"],
            _ => &["connected"],
        };
        if !expected.contains(&s.status.as_str()) {
            diffs.push(format!("{}: expected {}, live {}", s.name, expected.join(" or "), s.status));
        }
    }
    Ok(diffs)
}

pub fn status(ctx: &Ctx, lab: Option<&str>) -> Result<LabStatus, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    Ok(status::collect(&m, t.as_ref()))
}

pub fn down(ctx: &Ctx, lab: Option<&str>, wipe: bool) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    t.down(wipe)?;
    Ok(m.lab)
}

fn member_of(m: &Manifest, name: &str) -> Result<String, CliError> {
    m.member(name).map(|x| x.name.clone()).ok_or_else(|| {
        let names: Vec<&str> = m.members.iter().map(|x| x.name.as_str()).collect();
        CliError::Lab(format!("lab {} has no member {name}; its members: {}", m.lab, names.join(", ")))
    })
}

/// `kill`, `pause`, `resume`, `restart` on one member.
pub fn member_verb(ctx: &Ctx, lab: Option<&str>, verb: &str, member: &str) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let name = member_of(&m, member)?;
    match verb {
        "kill" => t.kill(&name)?,
        "pause" => t.pause(&name)?,
        "resume" => t.resume(&name)?,
        "restart" => {
            t.stop(&name)?;
            t.start(&name)?;
        }
        other => return Err(CliError::Lab(format!("unknown verb {other}"))),
    }
    Ok(name)
}

/// Planned failover: the primary hands over to its backup; waits for the new primary.
pub fn failover(ctx: &Ctx, lab: Option<&str>) -> Result<(String, String), CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let primary_of = |t: &dyn Target| {
        m.mirror_members()
            .find(|x| {
                t.proc_state(&x.name) == Proc::Running
                    && t.api(&x.name).mirror_status().ok().flatten().is_some_and(|s| s["status"] == "Primary")
            })
            .map(|x| x.name.clone())
    };
    let old =
        primary_of(t.as_ref()).ok_or_else(|| CliError::Lab("no member is primary now: nothing to fail over".into()))?;
    // A member that just restarted is `Waiting`/`Synchronizing` for a moment: hand over
    // only once a backup is active, as an operator would.
    let has_backup = || {
        m.mirror_members().any(|x| {
            t.proc_state(&x.name) == Proc::Running
                && t.api(&x.name).mirror_status().ok().flatten().is_some_and(|s| s["status"] == "Backup")
        })
    };
    if !target::process::await_condition(FAILOVER_TIMEOUT, has_backup) {
        return Err(CliError::Lab(format!("no failover member became an active backup within {FAILOVER_TIMEOUT:?}: nothing to hand over to; see `mirrorlab status`")));
    }
    t.api(&old).act(json!({ "action": "planned-failover" }))?;
    let mut new = None;
    let ok = target::process::await_condition(FAILOVER_TIMEOUT, || {
        new = primary_of(t.as_ref()).filter(|p| *p != old);
        new.is_some()
    });
    match new {
        Some(n) if ok => Ok((old, n)),
        _ => Err(CliError::Lab(format!(
            "{old} handed over but no other member became primary within {FAILOVER_TIMEOUT:?}; see `mirrorlab status`"
        ))),
    }
}

/// Cuts mirror traffic between `member` and `from` (every other member and the arbiter
/// when `from` is None), on both sides, through the engines' and agents' fault switches.
pub fn partition(ctx: &Ctx, lab: Option<&str>, member: &str, from: Option<&str>) -> Result<Vec<String>, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let name = member_of(&m, member)?;
    // Cut off from everyone: a target that can do it at the network does (docker).
    if from.is_none() && t.isolate(&name)? {
        return Ok(m
            .mirror_members()
            .map(|x| x.name.clone())
            .filter(|x| *x != name)
            .chain(m.arbiter.as_ref().map(|_| "ARBITER".to_string()))
            .collect());
    }
    if !m.faults {
        return Err(CliError::Lab(format!(
            "lab {} was built with `faults: false`; set `faults: true` and run `mirrorlab down` then `up` to partition",
            m.lab
        )));
    }
    let others: Vec<String> = match from {
        Some(o) if o.eq_ignore_ascii_case("arbiter") => vec!["ARBITER".into()],
        Some(o) => vec![member_of(&m, o)?],
        None => m
            .mirror_members()
            .map(|x| x.name.clone())
            .filter(|x| *x != name)
            .chain(m.arbiter.as_ref().map(|_| "ARBITER".to_string()))
            .collect(),
    };
    t.api(&name).act(json!({ "action": "fault-drop", "peers": others }))?;
    t.agent_fault(Some(&name), &others)?;
    for o in &others {
        if o == "ARBITER" {
            t.agent_fault(None, std::slice::from_ref(&name))?;
        } else if t.proc_state(o) == Proc::Running {
            t.api(o).act(json!({ "action": "fault-drop", "peers": [name] }))?;
            t.agent_fault(Some(o), std::slice::from_ref(&name))?;
        }
    }
    Ok(others)
}

/// Clears every fault switch of the lab.
pub fn heal(ctx: &Ctx, lab: Option<&str>) -> Result<(), CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    t.reconnect()?;
    if !m.faults {
        return Ok(());
    }
    for x in m.mirror_members() {
        if t.proc_state(&x.name) == Proc::Running {
            t.api(&x.name).act(json!({ "action": "fault-heal" }))?;
            t.agent_fault(Some(&x.name), &[])?;
        }
    }
    if m.arbiter.is_some() && t.arbiter_running() {
        t.agent_fault(None, &[])?;
    }
    Ok(())
}

pub fn session(ctx: &Ctx, lab: Option<&str>, member: &str, namespace: &str) -> Result<i32, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let name = member_of(&m, member)?;
    Ok(t.session(&name, namespace)?)
}

pub fn logs(ctx: &Ctx, lab: Option<&str>, member: &str, lines: usize) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let name = member_of(&m, member)?;
    let text = t.logs(&name)?;
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}
