//! ECP in `Converge::run`. A data server's limit (`ecp.max_app_servers`) is its merge file,
//! written before it starts. App members come last, once the data servers hold their
//! databases: each gets its merge file (its data servers and remote databases, which the
//! engine takes only from a merge file: crate::ecp_merge), starts, gets its settings,
//! users and namespaces like any member, and apply waits until every app member reports
//! each of its data servers Normal.

use super::*;
use crate::ecp_merge;
use crate::manifest::DataServerAt;

impl Converge<'_> {
    fn desired_merge(&self, member: &str) -> Option<String> {
        ecp_merge::render(self.manifest, member, &|m| self.target.addresses(m).superserver)
    }

    /// Writes the merge file `member` needs when the one it has differs; returns whether
    /// it did (or, planning, would). A running member gets it applied before the next
    /// step: a data server's limit is awaited through GET /api/ecp; an app member is
    /// restarted, since the engine shows its remote databases nowhere and so the moment
    /// its watcher applied them cannot be awaited (it applies the file at start).
    fn merge_file(&mut self, member: &str) -> Result<bool, StepError> {
        if !self.target.writes_merge_files() {
            return Ok(false);
        }
        let Some(want) = self.desired_merge(member) else { return Ok(false) };
        let have = self.target.merge_file(member).during("read its merge file", member)?;
        if have.as_deref() == Some(want.as_str()) {
            return Ok(false);
        }
        let running = self.target.proc_state(member) == Proc::Running;
        let app = self.manifest.is_app(member);
        let mut step = format!("write its merge file ({})", ecp_merge::summary(self.manifest, member));
        if running && app {
            step.push_str(" and restart to apply it");
        }
        if !self.change(member, step.clone()) {
            return Ok(true);
        }
        // The app member signs in to its data servers as the lab's admin (a dedicated ECP
        // user with only the rights it needs would be better: see docs/manifest.md).
        let password =
            if app { crate::credentials::load(self.lab).or_else(crate::credentials::from_env) } else { None };
        self.target.write_merge_file(member, &want, password.as_deref()).during(&step, member)?;
        if running && app {
            self.target.stop(member).during(&step, member)?;
            self.target.start(member).during(&step, member)?;
        } else if running {
            let limit = self.manifest.ecp.max_app_servers.map(u64::from);
            let api = self.api(member);
            let applied = crate::target::process::await_condition(SETTLE_TIMEOUT, || {
                api.get("/api/ecp").is_ok_and(|v| v["max_app_servers"].as_u64() == limit)
            });
            if !applied {
                return Err(StepError {
                    step,
                    member: member.into(),
                    reason: format!(
                        "the engine did not apply its changed merge file within {SETTLE_TIMEOUT:?} (GET /api/ecp shows another max_app_servers); `mirrorlab logs {}` says why",
                        member.to_ascii_lowercase()
                    ),
                });
            }
        }
        Ok(true)
    }

    /// The merge files of the members that hold data, before any of them starts (the
    /// docker target gives a container its merge file when it creates it).
    pub(super) fn data_merge_files(&mut self) -> Result<(), StepError> {
        let members: Vec<String> =
            self.manifest.members.iter().filter(|m| m.member_type.holds_data()).map(|m| m.name.clone()).collect();
        for m in &members {
            self.merge_file(m)?;
        }
        Ok(())
    }

    /// Every app member, after the data servers are complete.
    pub(super) fn app_members(&mut self) -> Result<(), StepError> {
        let apps: Vec<String> = self.manifest.app_members().map(|m| m.name.clone()).collect();
        for app in &apps {
            let rewritten = self.merge_file(app)?;
            let running = self.target.proc_state(app) == Proc::Running;
            if !running {
                let what = match self.target.proc_state(app) {
                    Proc::Paused => "resume the app member (it is paused)",
                    _ => "start the app member",
                };
                if self.change(app, what.into()) {
                    self.target.start(app).during(what, app)?;
                } else if !self.target.is_fresh(app) {
                    // Planning: a stopped app member with data cannot be read; its start
                    // is all there is to say.
                    continue;
                }
            }
            self.refresh(app)?;
            if self.target.proc_state(app) == Proc::Running {
                let servers = Live::fetch_ecp(&self.api(app)).during("read its data servers", app)?;
                self.live.get_mut(app).expect("refreshed").ecp_servers = servers;
                // Planned rewrites fix what is missing: no restart to plan on top.
                if !(rewritten && self.mode == Mode::Plan) {
                    self.ecp_drift(app)?;
                }
            }
            self.durability(app)?;
            self.users(app)?;
            self.namespaces(app)?;
        }
        if self.mode == Mode::Apply && !apps.is_empty() {
            self.wait_ecp_normal(&apps)?;
        }
        Ok(())
    }

    /// The data servers the manifest gives an app member that GET /api/ecp does not list
    /// as given (by name, mirror flag and address). Remote databases are not compared:
    /// the engine lists them nowhere (GET /api/databases has the local ones only), so the
    /// merge file's text is all there is to compare for them.
    fn missing_ecp(&self, servers: &[Value]) -> Vec<String> {
        let mirror_addresses: Vec<String> =
            self.manifest.mirror_members().map(|m| self.target.addresses(&m.name).superserver).collect();
        let mut missing = vec![];
        for d in &self.manifest.ecp.data_servers {
            let found = servers.iter().find(|s| s["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&d.name)));
            let address = found.and_then(|s| s["address"].as_str()).unwrap_or_default();
            let right = match (&d.at, found) {
                (_, None) => false,
                // Any member of the mirror will do: the app member follows the primary.
                (DataServerAt::Mirror, Some(s)) => s["mirror"] == true && mirror_addresses.iter().any(|a| a == address),
                (DataServerAt::Member(m), Some(s)) => {
                    s["mirror"] != true && address == self.target.addresses(m).superserver
                }
            };
            if !right {
                missing.push(format!("data server {}", d.name));
            }
        }
        missing
    }

    /// A running app member lacking what its merge file gives (a data server deleted by
    /// hand, say): the engine applies its merge file at start, so it is restarted.
    fn ecp_drift(&mut self, app: &str) -> Result<(), StepError> {
        let missing = self.missing_ecp(&self.live(app).ecp_servers.clone());
        if missing.is_empty() {
            return Ok(());
        }
        if !self.target.writes_merge_files() {
            return Err(StepError {
                step: "ECP configuration".into(),
                member: app.into(),
                reason: format!(
                    "it lacks {} that the manifest gives; in a Compose lab app members take their ECP configuration from their merge file (compose/merge/): correct it there, then `docker compose restart {}`",
                    missing.join(", "),
                    app.to_ascii_lowercase()
                ),
            });
        }
        let step = format!("restart to apply its merge file again ({} not configured)", missing.join(", "));
        if self.change(app, step.clone()) {
            self.target.stop(app).during(&step, app)?;
            self.target.start(app).during(&step, app)?;
            self.refresh(app)?;
        }
        Ok(())
    }

    /// Waits until every app member reports each of its data servers Normal; the error
    /// names each app member that is not and the state it was left in.
    fn wait_ecp_normal(&self, apps: &[String]) -> Result<(), StepError> {
        let bar = self.ui.spinner("waiting for the app members' ECP connections".into());
        // On the mirror's primary: apply waited for one, and the app members follow it.
        let view = crate::settle::View::read(self.manifest, self.target);
        let primary = view.primary().map(|p| p.name.as_str());
        let mut waiting: Vec<String> = vec![];
        let ok = crate::target::process::await_condition(WAIT_TIMEOUT, || {
            waiting = apps
                .iter()
                .filter_map(|a| crate::settle::ecp_not_normal(self.manifest, self.target, a, primary))
                .collect();
            waiting.is_empty()
        });
        bar.finish_and_clear();
        if ok {
            return Ok(());
        }
        let who: Vec<&str> = waiting.iter().filter_map(|w| w.split(':').next()).collect();
        Err(StepError {
            step: "wait for ECP Normal".into(),
            member: who.join(", "),
            reason: format!(
                "not Normal within {WAIT_TIMEOUT:?}: {}; `mirrorlab status` shows each app member's ECP state, `mirrorlab logs MEMBER` why",
                waiting.join("; ")
            ),
        })
    }
}
