//! Converging a lab to its manifest. `plan` and `apply` run the same steps: each step
//! reads the live state, and when it differs records a `Change` (and, when applying,
//! makes it). So a plan is exactly what apply would do, and a converged lab plans nothing.
//!
//! Order (safe: nothing refers to what does not exist yet): arbiter -> members started ->
//! databases -> namespaces -> mirror configuration on every member -> create on the
//! primary -> mirrored databases on the primary -> per joining member: join, freeze the
//! primary, copy each missing file (staging, fsync, rename), thaw, create + activate,
//! namespaces -> initial data -> wait until every member is caught up -> app members (ECP
//! application servers: merge file, start, settings, users, namespaces; wait until each
//! reports its data servers Normal; ecp.rs).
//! Apply only adds and corrects; it never deletes a database, namespace, mapping, role or
//! user. Roles and users (`users.rs`) are put on every member, right after its settings.

use crate::api::{Api, ApiError};
use crate::labdir::LabDir;
use crate::live::Live;
use crate::manifest::{Manifest, MemberType};
use crate::target::{Proc, Target, TargetError};
use crate::ui::Ui;
use engine::mirror::config::{MemberConfig, MemberType as EngineType, MirrorConfig};
use engine::mirror::status::{DatabaseStatus, MemberStatus, MirrorStatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

mod ecp;

/// How long apply waits for a primary, for members to catch up, for a join to register.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a restarted member may take to report its mirror status. A member that was
/// configured but never joined reports none at all: it costs one such wait, then joins.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The durability a new engine starts with (its `journal.durability` default).
const ENGINE_DEFAULT_DURABILITY: &str = "buffered";
/// Freeze timeout asked of the primary while files are copied: a crashed `apply` never
/// leaves it frozen for longer.
const FREEZE_TIMEOUT_S: u64 = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plan,
    Apply,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub member: String,
    pub step: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:<9} {}", self.member, self.step)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("step `{step}` on {member} failed: {reason}\n  later steps were not run; fix the cause and run `mirrorlab apply` again: it resumes from the live state")]
pub struct StepError {
    pub step: String,
    pub member: String,
    pub reason: String,
}

impl From<ApiError> for StepError {
    fn from(e: ApiError) -> StepError {
        let member = match &e {
            ApiError::Unreachable { member, .. } | ApiError::Refused { member, .. } => member.clone(),
        };
        StepError { step: "management API request".into(), member, reason: e.to_string() }
    }
}

impl From<TargetError> for StepError {
    fn from(e: TargetError) -> StepError {
        match e {
            TargetError::Failed { member, what } => StepError { step: "target".into(), member, reason: what },
            other => StepError { step: "target".into(), member: "LAB".into(), reason: other.to_string() },
        }
    }
}

impl From<crate::labdir::LabDirError> for StepError {
    fn from(e: crate::labdir::LabDirError) -> StepError {
        StepError { step: "lab state".into(), member: "LAB".into(), reason: e.to_string() }
    }
}

/// Adds the step name to an error from inside it.
trait During<T> {
    fn during(self, step: &str, member: &str) -> Result<T, StepError>;
}

impl<T, E: Into<StepError>> During<T> for Result<T, E> {
    fn during(self, step: &str, member: &str) -> Result<T, StepError> {
        self.map_err(|e| {
            let mut e: StepError = e.into();
            e.step = step.to_string();
            if e.member == "LAB" {
                e.member = member.to_string();
            }
            e
        })
    }
}

pub struct Converge<'a> {
    pub manifest: &'a Manifest,
    pub target: &'a dyn Target,
    pub lab: &'a LabDir,
    pub mode: Mode,
    pub ui: Ui,
    pub changes: Vec<Change>,
    live: BTreeMap<String, Live>,
}

impl<'a> Converge<'a> {
    pub fn new(manifest: &'a Manifest, target: &'a dyn Target, lab: &'a LabDir, mode: Mode, ui: Ui) -> Converge<'a> {
        Converge { manifest, target, lab, mode, ui, changes: vec![], live: BTreeMap::new() }
    }

    /// Records a change; returns whether to carry it out.
    fn change(&mut self, member: &str, step: String) -> bool {
        if self.mode == Mode::Apply {
            self.ui.step(&format!("{member}: {step}"));
        }
        self.changes.push(Change { member: member.to_string(), step });
        self.mode == Mode::Apply
    }

    fn api(&self, member: &str) -> Api {
        self.target.api(member)
    }

    fn refresh(&mut self, member: &str) -> Result<(), StepError> {
        let live = if self.target.proc_state(member) == Proc::Running {
            Live::fetch(&self.api(member)).during("read the live state", member)?
        } else {
            Live::default()
        };
        self.live.insert(member.to_string(), live);
        Ok(())
    }

    fn live(&self, member: &str) -> &Live {
        self.live.get(member).expect("refreshed before use")
    }

    pub fn run(&mut self) -> Result<(), StepError> {
        self.data_merge_files()?;
        self.start_processes()?;
        // A stopped member with data cannot be read while planning: say so, plan no more
        // (a stopped app member is planned in its own phase: ecp.rs).
        if self.mode == Mode::Plan
            && self.manifest.members.iter().any(|m| {
                m.member_type.holds_data()
                    && self.target.proc_state(&m.name) != Proc::Running
                    && !self.target.is_fresh(&m.name)
            })
        {
            return Ok(());
        }
        // App members come last, once their data servers are complete (ecp.rs).
        let holding: Vec<String> =
            self.manifest.members.iter().filter(|m| m.member_type.holds_data()).map(|m| m.name.clone()).collect();
        for m in &holding {
            self.refresh(m)?;
            self.durability(m)?;
            self.users(m)?;
        }
        let standalone: Vec<String> = self
            .manifest
            .members
            .iter()
            .filter(|m| m.member_type.holds_data() && (!m.member_type.in_mirror() || self.manifest.mirror.is_none()))
            .map(|m| m.name.clone())
            .collect();
        if self.manifest.mirror.is_none() {
            for m in &standalone {
                self.databases(m, true)?;
                self.namespaces(m)?;
            }
            self.load_data(&standalone)?;
            return self.app_members();
        }
        for m in &standalone {
            self.databases(m, true)?;
            self.namespaces(m)?;
        }
        let primary = self.mirror_and_primary()?;
        let Some(primary) = primary else { return Ok(()) };
        let joiners: Vec<String> =
            self.manifest.mirror_members().map(|m| m.name.clone()).filter(|m| *m != primary).collect();
        for j in &joiners {
            self.join(&primary, j)?;
        }
        self.load_data(std::slice::from_ref(&primary))?;
        if self.mode == Mode::Apply {
            self.wait_caught_up(&primary, &joiners)?;
        }
        self.app_members()
    }

    fn start_processes(&mut self) -> Result<(), StepError> {
        if self.manifest.arbiter.is_some()
            && !self.target.arbiter_running()
            && self.change("ARBITER", "start the arbiter".into())
        {
            self.target.start_arbiter().during("start the arbiter", "ARBITER")?;
        }
        for m in self.manifest.members.iter().filter(|m| m.member_type.holds_data()) {
            let state = self.target.proc_state(&m.name);
            if state != Proc::Running {
                let what = match state {
                    Proc::Paused => format!("resume the {} member (it is paused)", m.member_type.as_str()),
                    _ => format!("start the {} member", m.member_type.as_str()),
                };
                if self.change(&m.name, what.clone()) {
                    self.target.start(&m.name).during(&what, &m.name)?;
                    self.settle_mirror(&m.name);
                }
            }
        }
        Ok(())
    }

    /// A restarted member that belongs to a mirror starts its mirror a moment after its
    /// API answers; until then it reports no status and would look like one that never
    /// joined. Waits (bounded) for the status so later steps read the truth.
    fn settle_mirror(&self, member: &str) {
        let api = self.api(member);
        let configured = api.get("/api/mirror/config").map(|c| !c["mirror"].is_null()).unwrap_or(false);
        if configured {
            crate::target::process::await_condition(SETTLE_TIMEOUT, || api.mirror_status().ok().flatten().is_some());
        }
    }

    /// The manifest's durability on `member` (every member: a backup that becomes primary
    /// must keep the promise the old primary made).
    fn durability(&mut self, member: &str) -> Result<(), StepError> {
        let want = self.manifest.durability.as_str();
        // A member not started yet will start with the engine's default.
        let live = match self.live(member).durability.as_str() {
            "" => ENGINE_DEFAULT_DURABILITY,
            d => d,
        };
        if live == want {
            return Ok(());
        }
        let step = format!("set durability {want}");
        if self.change(member, step.clone()) {
            self.api(member)
                .patch("/api/settings", &json!({ "journal": { "durability": want } }))
                .during(&step, member)?;
            self.live.get_mut(member).expect("refreshed").durability = want.to_string();
        }
        Ok(())
    }

    /// The manifest's roles and users on `member` (every member: mirroring does not copy
    /// them, see `users.rs`).
    fn users(&mut self, member: &str) -> Result<(), StepError> {
        let api = self.api(member);
        let running = self.target.proc_state(member) == Proc::Running;
        let fixes =
            crate::users::fixes(self.manifest, running.then_some(&api)).during("read users and roles", member)?;
        for fix in fixes {
            if self.change(member, fix.step.clone()) {
                api.put(&fix.path, &fix.body).during(&fix.step, member)?;
            }
        }
        Ok(())
    }

    /// Local databases of `member`; `all` includes mirrored ones (created locally on the
    /// primary and on standalone members; joiners receive copies instead).
    fn databases(&mut self, member: &str, all: bool) -> Result<(), StepError> {
        for db in &self.manifest.databases {
            if (db.mirrored && !all) || self.live(member).databases.contains_key(&db.name) {
                continue;
            }
            let step = match &db.seed {
                Some(seed) => format!("create database {} from seed {}", db.name, seed.display()),
                None => format!("create database {}", db.name),
            };
            if self.change(member, step.clone()) {
                if let Some(seed) = &db.seed {
                    self.target.seed_database(member, &db.name, seed).during(&step, member)?;
                }
                let entry =
                    self.api(member).post("/api/databases", &json!({ "name": db.name })).during(&step, member)?;
                self.live.get_mut(member).expect("refreshed").databases.insert(db.name.clone(), entry);
            }
        }
        Ok(())
    }

    fn namespaces(&mut self, member: &str) -> Result<(), StepError> {
        for ns in self.manifest.namespaces.iter().filter(|ns| ns.members.iter().any(|m| m == member)) {
            let live = self.live(member).namespaces.get(&ns.name).cloned();
            match &live {
                None => {
                    let step = format!("create namespace {} (globals in {})", ns.name, ns.globals);
                    if self.change(member, step.clone()) {
                        self.api(member)
                            .post("/api/namespaces", &json!({ "name": ns.name, "globals": ns.globals }))
                            .during(&step, member)?;
                    }
                }
                Some((globals, _)) if *globals != ns.globals => {
                    return Err(StepError {
                        step: format!("namespace {}", ns.name),
                        member: member.to_string(),
                        reason: format!("it exists with default database {globals}, the manifest says {}; the engine cannot change a namespace's default database: delete it (DELETE /api/namespaces/{}) or rename it in the manifest", ns.globals, ns.name),
                    });
                }
                Some(_) => {}
            }
            let live_maps = live.map(|(_, m)| m).unwrap_or_default();
            for map in &ns.mappings {
                if live_maps.get(&map.global) == Some(&map.database) {
                    continue;
                }
                let step = format!("map ^{} in {} to {}", map.global, ns.name, map.database);
                if self.change(member, step.clone()) {
                    self.api(member)
                        .put(
                            &format!("/api/namespaces/{}/mappings", ns.name),
                            &json!({ "global": map.global, "database": map.database }),
                        )
                        .during(&step, member)?;
                }
            }
        }
        Ok(())
    }

    fn desired_config(&self, this: &str) -> MirrorConfig {
        let mirror = self.manifest.mirror.as_ref().expect("called with a mirror");
        let members = self
            .manifest
            .mirror_members()
            .map(|m| {
                let a = self.target.addresses(&m.name);
                MemberConfig {
                    name: m.name.clone(),
                    member_type: EngineType::from_word(m.member_type.as_str())
                        .expect("the manifest's member types are the engine's words"),
                    superserver: a.superserver,
                    mirror_address: a.mirror,
                    agent: a.agent,
                }
            })
            .collect();
        MirrorConfig {
            name: mirror.name.clone(),
            this_member: this.to_string(),
            qos_ms: mirror.qos_ms,
            arbiter: mirror.arbiter.then(|| self.target.arbiter_address()),
            members,
        }
    }

    /// Configures the mirror everywhere, creates it when no member has it yet, waits for
    /// a primary, and mirrors the manifest's databases on it. Returns the primary.
    fn mirror_and_primary(&mut self) -> Result<Option<String>, StepError> {
        let names: Vec<String> = self.manifest.mirror_members().map(|m| m.name.clone()).collect();
        for m in &names {
            let desired = self.desired_config(m);
            if !config_matches(self.live(m).mirror_config.as_ref(), &desired) {
                let step = format!("configure mirror {}", desired.name);
                if self.change(m, step.clone()) {
                    let body = serde_json::to_value(&desired).expect("a configuration serialises");
                    self.api(m).put("/api/mirror/config", &body).during(&step, m)?;
                }
            }
        }
        let initial = self.manifest.primary().expect("a valid manifest with a mirror names its primary").name.clone();
        let anyone = names.iter().any(|m| self.live(m).status.is_some());
        if !anyone {
            // Databases and namespaces first, so the first primary opens complete.
            self.databases(&initial, true)?;
            self.namespaces(&initial)?;
            let step = "create the mirror (first primary)".to_string();
            if !self.change(&initial, step.clone()) {
                // Planning a fresh mirror: the mirrored databases on it, then the joins.
                for db in self.manifest.databases.iter().filter(|d| d.mirrored) {
                    self.change(&initial, format!("mirror database {}", db.name));
                }
                return Ok(Some(initial));
            }
            self.api(&initial).act(json!({ "action": "create" })).during(&step, &initial)?;
        }
        let primary = self.await_primary(&names)?;
        let Some(primary) = primary else {
            self.change("MIRROR", "wait for a primary (no member is primary now)".into());
            return Ok(None);
        };
        self.refresh(&primary)?;
        self.databases(&primary, true)?;
        self.namespaces(&primary)?;
        let mirrored = self.live(&primary).mirrored();
        for db in self.manifest.databases.iter().filter(|d| d.mirrored) {
            if !mirrored.contains_key(&db.name) {
                let step = format!("mirror database {}", db.name);
                if self.change(&primary, step.clone()) {
                    self.api(&primary)
                        .act(json!({ "action": "add-database", "name": db.name }))
                        .during(&step, &primary)?;
                }
            }
        }
        if self.mode == Mode::Apply {
            self.refresh(&primary)?;
        }
        Ok(Some(primary))
    }

    /// The member that reports `Primary`; when applying, waits for one to appear.
    fn await_primary(&mut self, names: &[String]) -> Result<Option<String>, StepError> {
        let find = |s: &Self| {
            names
                .iter()
                .find(|m| {
                    s.target.proc_state(m) == Proc::Running
                        && s.api(m).mirror_status().ok().flatten().is_some_and(|st| st.status == MemberStatus::Primary)
                })
                .cloned()
        };
        if self.mode == Mode::Plan {
            return Ok(find(self));
        }
        let bar = self.ui.spinner("waiting for a primary".into());
        let failover: Vec<String> = self
            .manifest
            .members
            .iter()
            .filter(|m| m.member_type == MemberType::Failover)
            .map(|m| m.name.clone())
            .collect();
        // Every failover member Waiting for this long means none will take over by itself.
        let qos = self.manifest.mirror.as_ref().map(|m| u64::from(m.qos_ms)).unwrap_or(3000);
        let stuck_after = Duration::from_millis((3 * qos).max(10_000));
        let mut waiting_since: Option<std::time::Instant> = None;
        let mut found = None;
        let mut stuck = false;
        crate::target::process::await_condition(WAIT_TIMEOUT, || {
            found = find(self);
            let all_waiting = failover.iter().all(|m| {
                self.target.proc_state(m) == Proc::Running
                    && self.api(m).mirror_status().ok().flatten().is_some_and(|st| st.status == MemberStatus::Waiting)
            });
            waiting_since = if all_waiting { waiting_since.or(Some(std::time::Instant::now())) } else { None };
            stuck = waiting_since.is_some_and(|t| t.elapsed() >= stuck_after);
            found.is_some() || stuck
        });
        bar.finish_and_clear();
        match found {
            Some(p) => Ok(Some(p)),
            None if stuck => Err(StepError {
                step: "wait for a primary".into(),
                member: failover.join(", "),
                reason: format!(
                    "every failover member has been Waiting for {stuck_after:?}: none could learn from the other's agent that it is down or behind (are the agents running? `mirrorlab status`, `mirrorlab logs MEMBER`); a lab that cannot recover can be rebuilt with `mirrorlab down --wipe` and `mirrorlab up`"
                ),
            }),
            None => Err(StepError {
                step: "wait for a primary".into(),
                member: "MIRROR".into(),
                reason: format!(
                    "no member became primary within {WAIT_TIMEOUT:?}; `mirrorlab status` and `mirrorlab logs MEMBER` show why"
                ),
            }),
        }
    }

    fn join(&mut self, primary: &str, member: &str) -> Result<(), StepError> {
        self.refresh(member)?;
        if self.live(member).status.is_none() {
            let step = "join the mirror".to_string();
            if self.change(member, step.clone()) {
                self.api(member).act(json!({ "action": "join" })).during(&step, member)?;
                let api = self.api(member);
                if !crate::target::process::await_condition(WAIT_TIMEOUT, || {
                    api.mirror_status().ok().flatten().is_some()
                }) {
                    return Err(StepError {
                        step,
                        member: member.into(),
                        reason: format!("the member reported no mirror status within {WAIT_TIMEOUT:?}"),
                    });
                }
            }
        }
        self.databases(member, false)?;
        let missing: Vec<String> = self
            .manifest
            .databases
            .iter()
            .filter(|d| d.mirrored && !self.live(member).databases.contains_key(&d.name))
            .map(|d| d.name.clone())
            .collect();
        if !missing.is_empty() {
            let step = format!("copy {} from {primary} (primary frozen meanwhile)", missing.join(", "));
            if self.change(member, step.clone()) {
                self.copy_from_primary(primary, member, &missing).during(&step, member)?;
            }
            for db in &missing {
                let step = format!("mount and activate database {db}");
                if self.change(member, step.clone()) {
                    self.api(member).post("/api/databases", &json!({ "name": db })).during(&step, member)?;
                    self.api(member).act(json!({ "action": "activate-database", "name": db })).during(&step, member)?;
                }
            }
        }
        if self.mode == Mode::Apply {
            self.refresh(member)?;
        }
        for (db, status) in self.live(member).mirrored() {
            if matches!(status, DatabaseStatus::NeedsActivation | DatabaseStatus::NeedsCatchup)
                && !missing.contains(&db)
            {
                let step = format!("activate database {db} ({})", status.word());
                if self.change(member, step.clone()) {
                    self.api(member).act(json!({ "action": "activate-database", "name": db })).during(&step, member)?;
                }
            }
        }
        if self.mode == Mode::Plan && !missing.is_empty() {
            // Planned copies will exist: namespaces can refer to them.
            for db in &missing {
                self.live.get_mut(member).expect("refreshed").databases.insert(db.clone(), Value::Null);
            }
        }
        self.namespaces(member)
    }

    /// Freezes the primary, copies each database file to the member, thaws (always, even
    /// when a copy fails).
    fn copy_from_primary(&self, primary: &str, member: &str, dbs: &[String]) -> Result<(), StepError> {
        let api = self.api(primary);
        let mut sources = vec![];
        for db in dbs {
            let entry = api.get(&format!("/api/databases/{db}"))?;
            let file = entry["file"].as_str().ok_or_else(|| StepError {
                step: String::new(),
                member: primary.into(),
                reason: format!("database {db} has no file path in {entry}"),
            })?;
            sources.push((db.clone(), file.to_string()));
        }
        if let Err(e) = api.post("/api/freeze", &json!({ "timeout_s": FREEZE_TIMEOUT_S })) {
            // A previous apply that died mid-copy may have left it frozen: thaw, retry once.
            if e.code() != Some("ILLEGAL") {
                return Err(e.into());
            }
            api.post("/api/thaw", &json!({}))?;
            api.post("/api/freeze", &json!({ "timeout_s": FREEZE_TIMEOUT_S }))?;
        }
        let copied: Result<(), StepError> = sources.iter().try_for_each(|(db, file)| {
            let bar = self.ui.bytes_bar(0, format!("{member}: copy {db}"));
            let n = self
                .target
                .copy_database(primary, file, member, db, &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .map_err(StepError::from)?;
            bar.finish_and_clear();
            self.ui.step(&format!("{member}: copied {db} ({n} bytes)"));
            Ok(())
        });
        let thawed = api.post("/api/thaw", &json!({}));
        copied?;
        thawed?;
        Ok(())
    }

    fn load_data(&mut self, members: &[String]) -> Result<(), StepError> {
        if self.manifest.data.is_empty() || self.lab.read().ok().flatten().is_some_and(|s| s.data_loaded) {
            return Ok(());
        }
        for m in members {
            for d in &self.manifest.data {
                let what = match (&d.script, d.globals.len()) {
                    (Some(_), 0) => "a terminal script".to_string(),
                    (None, n) => format!("{n} globals"),
                    (Some(_), n) => format!("a terminal script and {n} globals"),
                };
                let step = format!("load initial data into {}: {what}", d.namespace);
                if !self.change(m, step.clone()) {
                    continue;
                }
                if let Some(script) = &d.script {
                    self.target.run_script(m, &d.namespace, script).during(&step, m)?;
                }
                for (r, v) in &d.globals {
                    self.api(m)
                        .put(&format!("/api/globals/{}", d.namespace), &json!({ "ref": r, "value": v }))
                        .during(&step, m)?;
                }
            }
        }
        if self.mode == Mode::Apply {
            let mut state = self.lab.read().during("record the data as loaded", "LAB")?.unwrap_or_default();
            state.data_loaded = true;
            self.lab.write(&state).during("record the data as loaded", "LAB")?;
        }
        Ok(())
    }

    /// Waits until every joiner is Backup / Connected with its databases dejournaling and
    /// its mirror journal durable up to the primary's last position when the wait began.
    fn wait_caught_up(&self, primary: &str, joiners: &[String]) -> Result<(), StepError> {
        // The primary's last written position (not only its durable one): writes made just
        // before, like the initial data, are part of what must have arrived.
        let target_pos = self.api(primary).mirror_status()?.map_or(0, |s| s.journal_position);
        let bar = self.ui.spinner("waiting for every member to catch up".into());
        let mut lagging = String::new();
        let ok = crate::target::process::await_condition(WAIT_TIMEOUT, || {
            lagging = joiners.iter().filter(|j| !self.caught_up(j, target_pos)).cloned().collect::<Vec<_>>().join(", ");
            lagging.is_empty()
        });
        bar.finish_and_clear();
        if !ok {
            return Err(StepError { step: "wait until caught up".into(), member: lagging, reason: format!("not caught up with the primary's position {target_pos} within {WAIT_TIMEOUT:?}; `mirrorlab status` shows where it stands") });
        }
        Ok(())
    }

    fn caught_up(&self, member: &str, position: u64) -> bool {
        let Ok(Some(st)) = self.api(member).mirror_status() else { return false };
        caught_up(
            &st,
            self.manifest.member(member).map(|m| m.member_type),
            position,
            self.manifest.databases.iter().filter(|d| d.mirrored).count(),
        )
    }
}

/// A member's own status says it follows the primary, has every mirrored database
/// dejournaling, and its mirror journal is durable up to `position`.
pub fn caught_up(st: &MirrorStatus, member_type: Option<MemberType>, position: u64, mirrored: usize) -> bool {
    let role = match member_type {
        Some(MemberType::Failover) => MemberStatus::Backup,
        _ => MemberStatus::Connected,
    };
    st.status == role
        && st.databases.len() >= mirrored
        && st.databases.iter().all(|d| d.status == DatabaseStatus::Dejournaling)
        && st.durable_position >= position
}

/// Whether the live mirror configuration already says what `desired` says: equal once
/// both are normalised as the engine keeps them (names upper-cased, members in name order).
pub fn config_matches(live: Option<&MirrorConfig>, desired: &MirrorConfig) -> bool {
    live.is_some_and(|l| l.normalised() == desired.normalised())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> MirrorConfig {
        serde_json::from_value(json!({ "name": "PHONEBOOK", "this_member": "MIRRORA", "qos_ms": 2000, "arbiter": "127.0.0.1:5",
                "members": [
                    { "name": "MIRRORA", "type": "failover", "superserver": "127.0.0.1:1", "mirror_address": "127.0.0.1:2", "agent": "127.0.0.1:3" },
                    { "name": "MIRRORB", "type": "failover", "superserver": "127.0.0.1:6", "mirror_address": "127.0.0.1:7", "agent": "127.0.0.1:8" } ] }))
        .unwrap()
    }

    #[test]
    fn a_configuration_matches_when_equal_once_normalised() {
        let mut live = desired();
        live.name = "phonebook".into();
        live.members.reverse();
        assert!(config_matches(Some(&live), &desired()), "names upper-cased, member order ignored");
        assert!(!config_matches(None, &desired()));
        let mut moved = desired();
        moved.members[1].mirror_address = "127.0.0.1:9".into();
        assert!(!config_matches(Some(&moved), &desired()), "a member's address changed");
        let mut no_arbiter = desired();
        no_arbiter.arbiter = Some(String::new());
        assert!(!config_matches(Some(&no_arbiter), &desired()));
        let mut qos = desired();
        qos.qos_ms = 3000;
        assert!(!config_matches(Some(&qos), &desired()));
        let mut dr = desired();
        dr.members[1].member_type = EngineType::Dr;
        assert!(!config_matches(Some(&dr), &desired()), "a member's type changed");
    }

    #[test]
    fn caught_up_needs_the_role_every_database_dejournaling_and_the_position() {
        // A member's status as the engine sends it, read as the engine's type.
        let st = |word: &str, pos: u64, db: &str| -> MirrorStatus {
            serde_json::from_value(json!({
                "mirror": "M", "member": "B", "type": "failover", "status": word, "primary": "A", "epoch": 7,
                "failover_mode": "", "arbiter": "", "no_failover": false,
                "journal_position": pos, "durable_position": pos, "acked_position": 0, "members": [],
                "databases": [ { "name": "A", "status": "Dejournaling", "position": pos }, { "name": "B", "status": db, "position": pos } ] }))
            .unwrap()
        };
        let failover = Some(MemberType::Failover);
        assert!(caught_up(&st("Backup", 10, "Dejournaling"), failover, 10, 2));
        assert!(!caught_up(&st("Backup", 9, "Dejournaling"), failover, 10, 2), "behind the primary");
        assert!(!caught_up(&st("Backup", 10, "Needs Activation"), failover, 10, 2));
        assert!(!caught_up(&st("Synchronizing", 10, "Dejournaling"), failover, 10, 2));
        assert!(!caught_up(&st("Backup", 10, "Dejournaling"), failover, 10, 3), "a database is missing");
        assert!(caught_up(&st("Connected", 10, "Dejournaling"), Some(MemberType::Dr), 10, 2));
        assert!(!caught_up(&st("Backup", 10, "Dejournaling"), Some(MemberType::Dr), 10, 2));
    }
}
