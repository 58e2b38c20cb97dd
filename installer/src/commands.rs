//! The library side of every `mirrorlab` verb. Each returns data or an error a person
//! can act on; printing and exit codes are the binary's.

use crate::converge::{Change, Converge, Mode, StepError};
use crate::labdir::LabDir;
use crate::live::Live;
use crate::manifest::{self, LoadError, Manifest, MemberType, TargetKind};
use crate::settle::{self, Settled, View};
use crate::status::{self, LabStatus};
use crate::target::{self, Proc, Target, TargetError};
use crate::template::Inputs;
use crate::ui::Ui;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    #[error(transparent)]
    Certs(#[from] crate::certs::CertError),
}

impl From<crate::api::ApiError> for CliError {
    fn from(e: crate::api::ApiError) -> CliError {
        CliError::Api(Box::new(e))
    }
}

pub struct Ctx {
    /// The directory holding labs (by default the nearest `.mirrorlab` upward, see
    /// `labdir::find_base`); each lab is `<base>/<lab>`.
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

/// Returns the manifest, the changes made, and the lab's admin password when this run
/// drew it (a new lab: `up` prints it once).
pub fn apply(ctx: &Ctx, path: &Path) -> Result<(Manifest, Vec<Change>, Option<String>), CliError> {
    let m = ctx.load(path)?;
    let t = target::open(&m, &ctx.base)?;
    ctx.remember(path, &m)?;
    let dir = LabDir::new(&ctx.base, &m.lab);
    // Before any engine starts, so each starts with it (local and docker targets; the
    // Compose lab's engines start before the installer, see docs/design/security.md).
    let drawn = match m.target {
        crate::manifest::TargetKind::Local | crate::manifest::TargetKind::Docker => {
            let (password, drawn) = crate::credentials::ensure(&dir).map_err(|e| {
                CliError::Lab(format!("cannot write {}: {e}", crate::credentials::password_file(&dir).display()))
            })?;
            drawn.then_some(password)
        }
        _ => None,
    };
    let mut c = Converge::new(&m, t.as_ref(), &dir, Mode::Apply, ctx.ui);
    c.run()?;
    let changes = c.changes;
    Ok((m, changes, drawn))
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
    diffs.extend(ecp_diffs(&m, &st));
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

/// Each running app member's data servers that are not Normal.
fn ecp_diffs(m: &Manifest, st: &LabStatus) -> Vec<String> {
    let mut diffs = vec![];
    for s in st.members.iter().filter(|s| m.is_app(&s.name) && s.status == "running") {
        for d in &m.ecp.data_servers {
            match s.ecp.iter().find(|l| l.server.eq_ignore_ascii_case(&d.name)) {
                Some(l) if l.state == "Normal" => {}
                Some(l) => {
                    diffs.push(format!("{}: expected ECP data server {} Normal, live {}", s.name, d.name, l.state))
                }
                None => {
                    diffs.push(format!("{}: expected ECP data server {} Normal, live not configured", s.name, d.name))
                }
            }
        }
    }
    diffs
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

/// Whether a verb waits for the state it causes, and for how long (`--no-wait`,
/// `--timeout`).
#[derive(Clone, Copy, Debug)]
pub struct Waiting {
    pub wait: bool,
    pub timeout: Duration,
}

impl Default for Waiting {
    fn default() -> Waiting {
        Waiting { wait: true, timeout: settle::DEFAULT_TIMEOUT }
    }
}

impl From<settle::NotSettled> for CliError {
    fn from(e: settle::NotSettled) -> CliError {
        CliError::Lab(e.to_string())
    }
}

/// `kill`, `pause`, `resume`, `restart` on one member; unless told not to, waits until what
/// it caused has settled (a new primary taking writes, the member back in its role and
/// caught up) and says what that is.
pub fn member_verb(
    ctx: &Ctx,
    lab: Option<&str>,
    verb: &str,
    member: &str,
    waiting: Waiting,
) -> Result<(String, Option<Settled>), CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let t = t.as_ref();
    let name = member_of(&m, member)?;
    let mirrored = m.mirror_members().any(|x| x.name == name);
    let before = (waiting.wait && mirrored).then(|| View::read(&m, t));
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
    if !waiting.wait {
        return Ok((name, None));
    }
    let started = Instant::now();
    let Some(before) = before else {
        // Not in a mirror: back means answering again; gone needs no wait.
        if matches!(verb, "resume" | "restart")
            && !target::process::await_condition(waiting.timeout, || t.api(&name).healthy())
        {
            return Err(CliError::Lab(format!(
                "{name} did not answer within {:?}: see `mirrorlab logs {member}`",
                waiting.timeout
            )));
        }
        // An app member is back once it reports its data servers Normal again.
        if matches!(verb, "resume" | "restart") && m.is_app(&name) {
            let primary = View::read(&m, t).primary().map(|p| p.name.clone());
            settle::apps_normal(&m, t, primary.as_deref(), waiting.timeout)?;
        }
        return Ok((name, None));
    };
    let mut settled = match verb {
        "kill" => gone(&m, t, &before, &name, Loss::Killed, waiting.timeout, started)?,
        "pause" => gone(&m, t, &before, &name, Loss::Paused, waiting.timeout, started)?,
        _ => back(&m, t, &before, &name, waiting.timeout, started)?,
    };
    // App members follow the primary: once the mirror has one, they are back too.
    if settled.primary.is_some() && settled.note.is_none() {
        if let Some(apps) = settle::apps_normal(&m, t, settled.primary.as_deref(), waiting.timeout)? {
            settled.what.push_str(&format!("; {apps}"));
            settled.seconds = started.elapsed().as_secs_f64();
        }
    }
    Ok((name, Some(settled)))
}

/// How a member was lost.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// Its engine killed: its agent says so at once.
    Killed,
    /// Its engine hung: its agent says so.
    Paused,
    /// Cut off from everyone, agent included: only the arbiter can tell.
    CutOff,
}

impl Loss {
    fn word(self) -> &'static str {
        match self {
            Loss::Killed => "killed",
            Loss::Paused => "paused",
            Loss::CutOff => "cut off",
        }
    }
}

/// After `name` was killed, paused or cut off: once a new primary takes writes (it was the
/// primary) or the primary goes on without it; or, at once, why nothing will change.
fn gone(
    m: &Manifest,
    t: &dyn Target,
    before: &View,
    name: &str,
    loss: Loss,
    timeout: Duration,
    started: Instant,
) -> Result<Settled, CliError> {
    let old = before.primary().map(|p| p.name.clone());
    let note = |why: String| Ok(settle::noted(&View::read(m, t), old.clone(), started, why));
    if old.as_deref() == Some(name) {
        if let Some(why) = settle::no_failover_because(m, before, name, loss == Loss::CutOff) {
            return note(why);
        }
        let partner = before
            .members
            .iter()
            .find(|s| s.name != name && s.member_type == MemberType::Failover)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let what = format!("a new primary taking writes after {name} was {}", loss.word());
        let v = settle::until(m, t, timeout, &what, &partner, |v| v.primary().is_some_and(|p| p.name != name))?;
        let took = format!("{} took over: {}", v.primary().map_or("", |p| p.name.as_str()), settle::primary_phrase(&v));
        return Ok(settle::outcome(&v, old, started, took));
    }
    if old.is_none() {
        return note("no member was primary: nothing to wait for".into());
    }
    let async_member = before.member(name).is_some_and(|s| s.member_type != MemberType::Failover);
    if loss == Loss::Paused && async_member {
        // The primary does not poll an async member: a hung one only falls behind.
        return note(format!(
            "{name} is an async member: the primary goes on as before, and {name} catches up once resumed"
        ));
    }
    let what = format!("the primary going on without {name}");
    let v = settle::until(m, t, timeout, &what, name, |v| v.primary().is_some() && v.lost(name))?;
    let on = format!("{} and goes on without {name}", settle::primary_phrase(&v));
    Ok(settle::outcome(&v, old, started, on))
}

/// After `name` was resumed or restarted: once it is back in its role and caught up.
fn back(
    m: &Manifest,
    t: &dyn Target,
    before: &View,
    name: &str,
    timeout: Duration,
    started: Instant,
) -> Result<Settled, CliError> {
    let old = before.primary().map(|p| p.name.clone());
    let down = |v: &View| v.member(name).is_some_and(|s| s.proc == Proc::Down);
    let what = format!("{name} back in its role and caught up");
    let v = settle::until(m, t, timeout, &what, name, |v| down(v) || v.in_role_caught_up(name))?;
    if down(&v) {
        return Err(CliError::Lab(format!(
            "{name} went down while coming back (its log says why: `mirrorlab logs {0}`); start it with `mirrorlab restart {0}`",
            name.to_ascii_lowercase()
        )));
    }
    let role = v.member(name).map(|s| s.word()).unwrap_or_default();
    let state = if role == "primary" { "primary".to_string() } else { format!("{role}, caught up") };
    Ok(settle::outcome(&v, old, started, format!("{name} is back: {state}")))
}

/// Planned failover: the primary hands over to its backup; waits until the new primary
/// takes writes and, unless told not to, until the old one is its caught-up backup.
pub fn failover(ctx: &Ctx, lab: Option<&str>, waiting: Waiting) -> Result<Settled, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let t = t.as_ref();
    let now = View::read(&m, t);
    let Some(old) = now.primary().map(|p| p.name.clone()) else {
        return Err(CliError::Lab(format!("no member is primary now: nothing to fail over ({})", now.describe())));
    };
    // A member that just restarted is `Synchronizing` for a moment: hand over only once a
    // backup is active, as an operator would.
    settle::until(&m, t, waiting.timeout.min(FAILOVER_TIMEOUT), "an active backup to hand over to", &old, |v| {
        v.primary().is_some_and(|p| p.name == old) && v.members.iter().any(|s| s.word() == "backup")
    })
    .map_err(|e| {
        CliError::Lab(format!("nothing to hand over to: no failover member is an active backup ({})", e.members))
    })?;
    t.api(&old).act(json!({ "action": "planned-failover" }))?;
    let started = Instant::now();
    let what = format!("another member taking writes after {old} handed over");
    let v = settle::until(&m, t, FAILOVER_TIMEOUT, &what, &old, |v| v.primary().is_some_and(|p| p.name != old))?;
    if !waiting.wait {
        let took = settle::primary_phrase(&v);
        return Ok(settle::outcome(&v, Some(old), started, took));
    }
    let what = format!("{old} following the new primary as its backup, caught up");
    let v = settle::until(&m, t, waiting.timeout, &what, &old, |v| {
        v.primary().is_some_and(|p| p.name != old) && v.in_role_caught_up(&old)
    })?;
    let mut took = format!("{}; {old} is its backup, caught up", settle::primary_phrase(&v));
    if let Some(apps) = settle::apps_normal(&m, t, v.primary().map(|p| p.name.as_str()), waiting.timeout)? {
        took.push_str(&format!("; {apps}"));
    }
    Ok(settle::outcome(&v, Some(old), started, took))
}

/// What `partition` did: who was cut off, and what followed.
#[derive(Clone, Debug, Serialize)]
pub struct Cut {
    pub member: String,
    pub cut_from: Vec<String>,
    pub settled: Option<Settled>,
}

/// Cuts mirror traffic between `member` and `from` (every other member and the arbiter
/// when `from` is None), on both sides, through the engines' and agents' fault switches.
/// Either every switch is set or, when one cannot be, those already set are cleared
/// again: an operator action completes or leaves nothing behind.
pub fn partition(
    ctx: &Ctx,
    lab: Option<&str>,
    member: &str,
    from: Option<&str>,
    waiting: Waiting,
) -> Result<Cut, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let t = t.as_ref();
    let name = member_of(&m, member)?;
    let other = from.filter(|o| !o.eq_ignore_ascii_case("arbiter")).map(|o| member_of(&m, o)).transpose()?;
    if m.is_app(&name) || other.as_deref().is_some_and(|o| m.is_app(o)) {
        return partition_app(&m, t, &name, other.as_deref(), waiting);
    }
    let before = waiting.wait.then(|| View::read(&m, t));
    let everyone: Vec<String> = m
        .mirror_members()
        .map(|x| x.name.clone())
        .filter(|x| *x != name)
        .chain(m.arbiter.as_ref().map(|_| "ARBITER".to_string()))
        .collect();
    // Cut off from everyone: a target that can do it at the network does (docker).
    let cut_from = if from.is_none() && t.isolate(&name)? {
        everyone
    } else {
        if !m.faults {
            return Err(CliError::Lab(format!(
                "lab {} was built with `faults: false`; set `faults: true` and run `mirrorlab down` then `up` to partition",
                m.lab
            )));
        }
        let others: Vec<String> = match from {
            Some(o) if o.eq_ignore_ascii_case("arbiter") => vec!["ARBITER".into()],
            Some(o) => vec![member_of(&m, o)?],
            None => everyone,
        };
        if let Err(e) = cut(&m, t, &name, &others) {
            return Err(CliError::Lab(format!("cannot cut {name} off from {}: {e}", others.join(", "))));
        }
        others
    };
    let Some(before) = before else { return Ok(Cut { member: name, cut_from, settled: None }) };
    let started = Instant::now();
    let old = before.primary().map(|p| p.name.clone());
    let settled = match from {
        None => gone(&m, t, &before, &name, Loss::CutOff, waiting.timeout, started)?,
        Some(_) if cut_from == ["ARBITER"] => settle::noted(
            &before,
            old,
            started,
            "cutting the arbiter link changes no member's status until the primary or backup is lost too".into(),
        ),
        Some(_) => {
            // Only the link between the two: the primary goes on without the other (after
            // its trouble window), unless neither was primary and nothing shows the cut.
            let other = &cut_from[0];
            match old.as_deref() {
                Some(p) if p == name || p == other => {
                    let lost = if p == name { other.clone() } else { name.clone() };
                    let what = format!("the primary going on without {lost}");
                    let v = settle::until(&m, t, waiting.timeout, &what, &lost, |v| {
                        v.primary().is_some_and(|x| x.name == p) && v.lost(&lost)
                    })?;
                    let on = format!("{} and goes on without {lost}", settle::primary_phrase(&v));
                    settle::outcome(&v, old.clone(), started, on)
                }
                _ => settle::noted(
                    &before,
                    old,
                    started,
                    format!("neither {name} nor {other} is primary: they exchange no mirror traffic, so nothing changes until one of them is"),
                ),
            }
        }
    };
    Ok(Cut { member: name, cut_from, settled: Some(settled) })
}

/// Cuts an app member's ECP links: from `other` (a data-holding member, or the app
/// member's data servers when `other` is None; either side may be the app member). The
/// app member opens every ECP connection, so its side is enough: on a target that can
/// (docker) cut off from everyone at the network, else through its engine's fault switch.
/// Then waits (bounded) until it reports a data server not Normal.
fn partition_app(
    m: &Manifest,
    t: &dyn Target,
    name: &str,
    other: Option<&str>,
    waiting: Waiting,
) -> Result<Cut, CliError> {
    let (app, peer) = match other {
        Some(o) if m.is_app(o) && m.is_app(name) => {
            return Err(CliError::Lab(format!("{name} and {o} are both app members: they exchange no traffic to cut")))
        }
        Some(o) if m.is_app(o) => (o.to_string(), Some(name.to_string())),
        _ => (name.to_string(), other.map(str::to_string)),
    };
    let servers: Vec<String> =
        m.members.iter().filter(|x| x.member_type.holds_data()).map(|x| x.name.clone()).collect();
    let cut_from = match &peer {
        Some(p) => vec![p.clone()],
        None => servers,
    };
    let isolated = peer.is_none() && t.isolate(&app)?;
    if !isolated {
        if !m.faults {
            return Err(CliError::Lab(format!(
                "lab {} was built with `faults: false`; set `faults: true` and run `mirrorlab down` then `up` to partition",
                m.lab
            )));
        }
        set_switch(t, &Switch::Engine(app.clone()), &cut_from).map_err(|e| {
            CliError::Lab(format!(
                "cannot cut {app}'s ECP links to {}: its engine's fault switch (the `fault-drop` mirror action) refused: {e}. \
                 Cutting an ECP link needs the engine's fault switch to cover an app member's ECP connections; \
                 on the docker target `mirrorlab partition {}` (no --from) cuts the app member off at the network",
                cut_from.join(", "),
                app.to_ascii_lowercase()
            ))
        })?;
    }
    if !waiting.wait {
        return Ok(Cut { member: app, cut_from, settled: None });
    }
    let started = Instant::now();
    if isolated {
        // Off the network, its API is out of reach from here too: nothing to read.
        let why = format!(
            "{app} is cut off at the network, from its data servers and from this machine alike; `mirrorlab heal` brings it back"
        );
        return Ok(Cut { member: app, cut_from, settled: Some(settle::noted(&View::read(m, t), None, started, why)) });
    }
    let api = t.api(&app);
    let mut seen = String::new();
    let troubled = target::process::await_condition(waiting.timeout, || {
        let links = Live::fetch_ecp(&api).unwrap_or_default();
        seen = links
            .iter()
            .map(|l| format!("{} {}", l["name"].as_str().unwrap_or("?"), l["state"].as_str().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ");
        links.iter().any(|l| l["state"] != "Normal")
    });
    if !troubled {
        return Err(CliError::Lab(format!(
            "{app}'s data servers still report Normal {:?} after the cut ({seen}): the cut does not reach its ECP connections",
            waiting.timeout
        )));
    }
    let view = View::read(m, t);
    let what = format!("{app}'s ECP links: {seen}");
    Ok(Cut { member: app, cut_from, settled: Some(settle::outcome(&view, None, started, what)) })
}

/// One fault switch `cut` set: a member's engine or agent, or the arbiter (None).
enum Switch {
    Engine(String),
    Agent(Option<String>),
}

/// Sets one fault switch to drop `peers` (none: clears it).
fn set_switch(t: &dyn Target, switch: &Switch, peers: &[String]) -> Result<(), CliError> {
    match switch {
        Switch::Engine(x) if peers.is_empty() => t.api(x).act(json!({ "action": "fault-heal" })).map(drop)?,
        Switch::Engine(x) => t.api(x).act(json!({ "action": "fault-drop", "peers": peers })).map(drop)?,
        Switch::Agent(x) => t.agent_fault(x.as_deref(), peers)?,
    }
    Ok(())
}

/// Sets the fault switches that cut `name` off from `others`, on both sides. When one
/// cannot be set, clears again exactly those it had set, and says what failed.
fn cut(m: &Manifest, t: &dyn Target, name: &str, others: &[String]) -> Result<(), CliError> {
    if others.iter().any(|o| o == "ARBITER") && m.arbiter.is_some() && !t.arbiter_running() {
        return Err(CliError::Lab("the arbiter is not running, so its side of the link cannot be cut".into()));
    }
    let mut plan: Vec<(Switch, Vec<String>)> =
        vec![(Switch::Engine(name.into()), others.to_vec()), (Switch::Agent(Some(name.into())), others.to_vec())];
    for o in others {
        if o == "ARBITER" {
            plan.push((Switch::Agent(None), vec![name.into()]));
        } else if t.proc_state(o) == Proc::Running {
            plan.push((Switch::Engine(o.clone()), vec![name.into()]));
            plan.push((Switch::Agent(Some(o.clone())), vec![name.into()]));
        }
    }
    let set = |switch: &Switch, peers: &[String]| set_switch(t, switch, peers);
    for (done, (switch, peers)) in plan.iter().enumerate() {
        if let Err(e) = set(switch, peers) {
            let left: Vec<String> =
                plan[..done].iter().filter_map(|(s, _)| set(s, &[]).err().map(|u| u.to_string())).collect();
            let undo = if left.is_empty() {
                "nothing was left cut".to_string()
            } else {
                format!("clearing what was already cut failed too ({}): run `mirrorlab heal`", left.join("; "))
            };
            return Err(CliError::Lab(format!("{e}; {undo}")));
        }
    }
    Ok(())
}

/// Clears every fault switch of the lab, and every network cut the target made. Goes on
/// past a switch it cannot reach, so one stopped agent does not keep the others cut; the
/// error lists every switch left set.
fn heal_switches(m: &Manifest, t: &dyn Target) -> Result<(), CliError> {
    let mut failed: Vec<String> = Vec::new();
    if let Err(e) = t.reconnect() {
        failed.push(e.to_string());
    }
    if m.faults {
        for x in m.mirror_members() {
            // An engine that is not running starts with its switch clear; its agent may
            // outlive it with its own switch set, so the agent is always asked, and only
            // a running member's agent must answer.
            let running = t.proc_state(&x.name) == Proc::Running;
            if running {
                if let Err(e) = set_switch(t, &Switch::Engine(x.name.clone()), &[]) {
                    failed.push(e.to_string());
                }
            }
            if let Err(e) = set_switch(t, &Switch::Agent(Some(x.name.clone())), &[]) {
                if running {
                    failed.push(e.to_string());
                }
            }
        }
        if m.arbiter.is_some() && t.arbiter_running() {
            if let Err(e) = set_switch(t, &Switch::Agent(None), &[]) {
                failed.push(e.to_string());
            }
        }
        // An app member's engine switch (partition_app); an engine whose switch does not
        // cover app members refuses, and then has nothing set.
        for x in m.app_members().filter(|x| t.proc_state(&x.name) == Proc::Running) {
            match set_switch(t, &Switch::Engine(x.name.clone()), &[]) {
                Err(CliError::Api(e)) if e.code() == Some("NOTMIRRORED") => {}
                Err(e) => failed.push(e.to_string()),
                Ok(()) => {}
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Lab(failed.join("; ")))
    }
}

/// Clears every fault switch of the lab; unless told not to, waits until the mirror has
/// mended: one primary, every running member back in its role and caught up.
pub fn heal(ctx: &Ctx, lab: Option<&str>, waiting: Waiting) -> Result<Option<Settled>, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let t = t.as_ref();
    heal_switches(&m, t)?;
    if !waiting.wait || m.mirror.is_none() {
        return Ok(None);
    }
    let started = Instant::now();
    let v = settle::until(&m, t, waiting.timeout, "the mirror mending", "MIRROR", |v| v.unsettled().is_empty())
        .map_err(|e| CliError::Lab(format!("{e}")))?;
    let mut mended = format!("{}; every member is back in its role, caught up", settle::primary_phrase(&v));
    if let Some(apps) = settle::apps_normal(&m, t, v.primary().map(|p| p.name.as_str()), waiting.timeout)? {
        mended.push_str(&format!("; {apps}"));
    }
    Ok(Some(settle::outcome(&v, None, started, mended)))
}

/// What `mirrorlab wait` waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// A member (or the given one) takes writes.
    Primary,
    /// Every running member (or the given one) in its role and caught up.
    CaughtUp,
    /// The given member's status word, as `mirrorlab status` shows it.
    Status(String),
}

impl WaitFor {
    pub fn parse(s: &str) -> WaitFor {
        match s.to_ascii_lowercase().as_str() {
            "primary" => WaitFor::Primary,
            "caught-up" | "caught up" => WaitFor::CaughtUp,
            other => WaitFor::Status(other.to_string()),
        }
    }
}

/// `mirrorlab wait`: for scripts that started something themselves.
pub fn wait(
    ctx: &Ctx,
    lab: Option<&str>,
    what: &WaitFor,
    member: Option<&str>,
    timeout: Duration,
) -> Result<Settled, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let t = t.as_ref();
    if m.mirror.is_none() {
        return Err(CliError::Lab(format!("lab {} has no mirror: there is nothing to wait for", m.lab)));
    }
    let name = member.map(|x| member_of(&m, x)).transpose()?;
    let about = name.clone().unwrap_or_else(|| "MIRROR".into());
    let started = Instant::now();
    let v = match (what, &name) {
        (WaitFor::Primary, None) => {
            settle::until(&m, t, timeout, "a primary taking writes", &about, |v| v.primary().is_some())?
        }
        (WaitFor::Primary, Some(n)) => settle::until(&m, t, timeout, &format!("{n} taking writes"), n, |v| {
            v.primary().is_some_and(|p| p.name == *n)
        })?,
        (WaitFor::CaughtUp, None) => {
            settle::until(&m, t, timeout, "every running member in its role and caught up", &about, |v| {
                v.unsettled().is_empty()
            })?
        }
        (WaitFor::CaughtUp, Some(n)) => {
            settle::until(&m, t, timeout, &format!("{n} in its role and caught up"), n, |v| v.in_role_caught_up(n))?
        }
        (WaitFor::Status(word), Some(n)) => settle::until(&m, t, timeout, &format!("{n} to be {word}"), n, |v| {
            v.member(n).is_some_and(|s| s.word() == *word)
        })?,
        (WaitFor::Status(word), None) => {
            return Err(CliError::Lab(format!(
                "`--for {word}` needs a MEMBER (or use --for primary or --for caught-up for the whole mirror)"
            )))
        }
    };
    let reached = match (what, &name) {
        (WaitFor::Status(word), Some(n)) => format!("{n} is {word}"),
        (WaitFor::CaughtUp, Some(n)) => format!("{n} is in its role and caught up"),
        (WaitFor::CaughtUp, None) => {
            format!("{}; every running member is in its role, caught up", settle::primary_phrase(&v))
        }
        _ => settle::primary_phrase(&v),
    };
    Ok(settle::outcome(&v, None, started, reached))
}

/// The line `mirrorlab session` shows before the terminal's own banner: which member, its
/// role, and the durability its writes get (read live, so it says what the member does).
pub fn session_banner(ctx: &Ctx, lab: Option<&str>, member: &str) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let name = member_of(&m, member)?;
    let api = t.api(&name);
    let probe = Duration::from_millis(1500);
    let durability = api
        .probe("/api/instance", probe)
        .ok()
        .and_then(|v| v["settings"]["journal"]["durability"].as_str().map(str::to_string))
        .unwrap_or_else(|| m.durability.as_str().to_string());
    let role = api
        .probe("/api/mirror/status", probe)
        .ok()
        .and_then(|v| v["status"]["status"].as_str().map(str::to_ascii_lowercase))
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let meaning = match (durability.as_str(), m.mirror.is_some()) {
        ("always", true) => "a write is acknowledged once it is synced here and on the backup",
        ("always", false) => "a write is acknowledged once it is synced",
        _ => "a write is acknowledged once buffered and synced within a second: a crash can lose the last second",
    };
    Ok(format!("{name}{role}, lab {}: durability {durability} ({meaning})", m.lab))
}

/// One lab under the base directory, as `mirrorlab ls` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct LabLine {
    pub lab: String,
    pub target: &'static str,
    pub members: usize,
    /// Members whose process runs.
    pub running: usize,
    /// The member that is primary now, if any.
    pub primary: Option<String>,
}

/// Every lab under the base directory, by name, with where it runs and how it is now.
pub fn ls(ctx: &Ctx) -> Result<Vec<LabLine>, CliError> {
    let mut out = Vec::new();
    for name in ctx.labs() {
        let (m, t) = ctx.open_lab(Some(&name))?;
        let st = status::collect(&m, t.as_ref());
        out.push(LabLine {
            lab: name,
            target: target_name(m.target),
            members: st.members.len(),
            running: st.members.iter().filter(|x| x.status != "down").count(),
            primary: st.members.iter().find(|x| x.status == "primary").map(|x| x.name.clone()),
        });
    }
    Ok(out)
}

/// A Prometheus configuration scraping every member of the lab (crate::lb).
pub fn metrics_config(ctx: &Ctx, lab: Option<&str>, interval: &str) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let dir = LabDir::new(&ctx.base, &m.lab);
    let file = crate::credentials::load(&dir).map(|_| crate::credentials::password_file(&dir));
    let ca = lab_ca(&m, &dir);
    Ok(crate::lb::prometheus_config(&m, t.as_ref(), interval, file.as_deref(), ca.as_deref()))
}

/// An HAProxy configuration that follows the lab's primary (crate::lb).
pub fn haproxy_config(ctx: &Ctx, lab: Option<&str>, port: u16) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    if m.mirror.is_none() {
        return Err(CliError::Lab(format!(
            "lab {} has no mirror: connect to its member directly (`mirrorlab status` shows the port)",
            m.lab
        )));
    }
    let ca = lab_ca(&m, &LabDir::new(&ctx.base, &m.lab));
    Ok(crate::lb::haproxy_config(&m, t.as_ref(), port, ca.as_deref()))
}

/// The lab CA's certificate, when the engines serve their client ports with TLS only
/// (`security.tls_clients`): what HAProxy and Prometheus verify them with.
fn lab_ca(m: &crate::manifest::Manifest, dir: &LabDir) -> Option<std::path::PathBuf> {
    m.tls_clients.then(|| crate::certs::LabCerts::new(dir.root.join("tls")).ca_file())
}

pub fn session(ctx: &Ctx, lab: Option<&str>, member: &str, namespace: &str) -> Result<i32, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let name = member_of(&m, member)?;
    Ok(t.session(&name, namespace)?)
}

/// Whose log `mirrorlab logs` reads: `arbiter` (any case) is the arbiter's, else the
/// member's engine messages.log, or with `agent` its agent's. Returns the member's name
/// (None for the arbiter).
fn log_owner(m: &Manifest, who: &str, agent: bool) -> Result<Option<String>, CliError> {
    if who.eq_ignore_ascii_case("arbiter") {
        if m.arbiter.is_none() {
            return Err(CliError::Lab(format!("lab {} has no arbiter", m.lab)));
        }
        return Ok(None);
    }
    let name = member_of(m, who)?;
    if agent && !m.member(&name).is_some_and(|x| x.member_type.in_mirror()) {
        return Err(CliError::Lab(format!("{name} runs no agent: only mirror members do")));
    }
    Ok(Some(name))
}

/// The last `lines` lines of a member's messages.log, its agent's log (`agent`), or the
/// arbiter's (`who` = `arbiter`).
pub fn logs(ctx: &Ctx, lab: Option<&str>, who: &str, agent: bool, lines: usize) -> Result<String, CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let text = match log_owner(&m, who, agent)? {
        Some(name) if !agent => t.logs(&name)?,
        owner => t.agent_logs(owner.as_deref())?,
    };
    Ok(last_lines(&text, lines))
}

fn last_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `logs --follow`: the last `lines` lines, then every line as it is written, to `out`,
/// until `done` says so (the binary's never does: it runs until interrupted).
pub fn follow_logs(
    ctx: &Ctx,
    lab: Option<&str>,
    who: &str,
    agent: bool,
    lines: usize,
    done: &dyn Fn() -> bool,
    out: &mut dyn FnMut(&str),
) -> Result<(), CliError> {
    let (m, t) = ctx.open_lab(lab)?;
    let owner = log_owner(&m, who, agent)?;
    if let Some(path) = t.log_file(owner.as_deref(), agent) {
        return follow_file(&path, lines, FOLLOW_PERIOD, done, out);
    }
    if t.follow_log(owner.as_deref(), agent, lines, done, out)? {
        return Ok(());
    }
    Err(CliError::Lab(format!(
        "--follow cannot follow the logs of lab {}, which runs on {}: follow its service with `docker compose logs -f`",
        m.lab,
        target_name(m.target)
    )))
}

/// How often `logs --follow` looks for new lines: a file's growth has no event to await
/// without inotify, and a person reads at this pace.
pub const FOLLOW_PERIOD: Duration = Duration::from_millis(200);

/// Sends the last `lines` lines of `path`, then each complete line appended to it, to
/// `out`, looking every `period` until `done` says so. A file that shrinks (replaced, or truncated) is read again
/// from its start; one that does not exist yet is waited for.
pub fn follow_file(
    path: &Path,
    lines: usize,
    period: Duration,
    done: &dyn Fn() -> bool,
    out: &mut dyn FnMut(&str),
) -> Result<(), CliError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut offset = 0u64;
    let mut pending = String::new();
    let mut first = true;
    loop {
        if let Ok(mut f) = std::fs::File::open(path) {
            let len = f.metadata().map(|md| md.len()).unwrap_or(0);
            if len < offset {
                offset = 0;
                pending.clear();
            }
            if len > offset {
                f.seek(SeekFrom::Start(offset))
                    .map_err(|e| CliError::Lab(format!("cannot read {}: {e}", path.display())))?;
                let mut buf = Vec::new();
                f.take(len - offset)
                    .read_to_end(&mut buf)
                    .map_err(|e| CliError::Lab(format!("cannot read {}: {e}", path.display())))?;
                offset += buf.len() as u64;
                pending.push_str(&String::from_utf8_lossy(&buf));
                // Only whole lines; the rest waits for its newline.
                let complete = pending.rfind('\n').map_or(0, |i| i + 1);
                let text: String = pending.drain(..complete).collect();
                let text = if first { last_lines(&text, lines) } else { text.trim_end_matches('\n').to_string() };
                text.lines().for_each(&mut *out);
            }
        }
        first = false;
        if done() {
            return Ok(());
        }
        std::thread::sleep(period);
    }
}

#[cfg(test)]
mod follow_tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follow_prints_the_last_lines_then_each_whole_line_appended_and_starts_over_on_a_shorter_file() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("messages.log");
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let seen = std::cell::RefCell::new(Vec::<String>::new());
        let step = std::cell::Cell::new(0);
        // Each look at the file, the test changes it; `done` is where it does, as the
        // follower waits between looks.
        let done = || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            step.set(step.get() + 1);
            match step.get() {
                1 => f.write_all(b"four\nfi").unwrap(),
                2 => f.write_all(b"ve\n").unwrap(),
                3 => std::fs::write(&path, "new\n").unwrap(),
                _ => return true,
            }
            false
        };
        follow_file(&path, 2, Duration::ZERO, &done, &mut |l| seen.borrow_mut().push(l.to_string())).unwrap();
        assert_eq!(*seen.borrow(), ["two", "three", "four", "five", "new"]);
    }
}
