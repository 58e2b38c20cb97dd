//! `mirrorlab-init configure`: the Compose lab's one-shot configuring step, until the
//! installer (`mirrorlab apply`) takes this role. The mirror's membership comes from each
//! engine's merge file (`config_mirror`); what a merge file cannot do is done here, over
//! the management API, idempotently (a second `up` finds everything done):
//!
//! 1. wait until every member answers `/health`;
//! 2. create the mirror on the first member if no member runs it yet, else wait for the
//!    primary (after a restart the members elect it themselves); join the others;
//! 3. per database: create it and its namespace on the primary, add it to the mirror;
//!    give every other member that lacks it a copy of the primary's file, taken while the
//!    primary is frozen (this container mounts every member's volume), then activate it;
//! 4. verify: every failover member other than the primary is `Backup` with the
//!    databases `Dejournaling`.

use crate::cli::http::{call_host, error_message};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One API call's timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Between two polls of a condition.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct Member {
    /// Host name (the Compose service name).
    pub host: String,
    pub web_port: u16,
    /// The member's data directory as mounted in this container.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// The first one creates the mirror.
    pub members: Vec<Member>,
    /// Mirrored databases, each with a namespace of the same name.
    pub databases: Vec<String>,
    /// Bound on the whole run.
    pub timeout: Duration,
}

struct Run<'a> {
    plan: &'a Plan,
    deadline: Instant,
    say: &'a mut dyn FnMut(&str),
}

impl Run<'_> {
    fn call(&self, m: &Member, method: &str, path: &str, body: Option<&str>) -> Result<(u16, Value), String> {
        let r = call_host(&m.host, m.web_port, method, path, body, CALL_TIMEOUT)
            .map_err(|e| format!("{method} {path} on {}: {e}", m.host))?;
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        if r.status >= 300 && r.status != 404 {
            return Err(format!("{method} {path} on {}: {} {}", m.host, r.status, error_message(&r.body)));
        }
        Ok((r.status, v))
    }

    fn act(&mut self, m: &Member, action: &str, name: Option<&str>) -> Result<(), String> {
        let body = match name {
            Some(n) => serde_json::json!({ "action": action, "name": n }),
            None => serde_json::json!({ "action": action }),
        };
        let (_, v) = self.call(m, "POST", "/api/mirror/actions", Some(&body.to_string()))?;
        let said = v["message"].as_str().unwrap_or("done").to_string();
        (self.say)(&format!("{}: {said}", m.host));
        Ok(())
    }

    /// Polls `f` until it gives `Some`, or fails naming `what` at the deadline.
    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Result<Option<T>, String>) -> Result<T, String> {
        let mut last = String::new();
        loop {
            match f() {
                Ok(Some(t)) => return Ok(t),
                Ok(None) => {}
                Err(e) => last = e,
            }
            if Instant::now() > self.deadline {
                let why = if last.is_empty() { String::new() } else { format!(" (last seen: {last})") };
                return Err(format!("timed out waiting for {what}{why}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// `GET /api/mirror/status`'s `status` (null when the member runs no mirror).
    fn status(&self, m: &Member) -> Result<Value, String> {
        Ok(self.call(m, "GET", "/api/mirror/status", None)?.1["status"].clone())
    }

    /// The status once the member answers: a member may be restarting (a fenced engine
    /// ends its container, and the restart policy brings it back).
    fn status_when_up(&self, m: &Member) -> Result<Value, String> {
        self.wait(&format!("{} to answer", m.host), || Ok(self.status(m).ok()))
    }
}

fn word(status: &Value) -> &str {
    status["status"].as_str().unwrap_or("")
}

fn has_database(status: &Value, db: &str) -> bool {
    status["databases"].as_array().is_some_and(|d| d.iter().any(|x| x["name"] == db))
}

/// Runs the plan; `say` gets one line per step taken.
pub fn run(plan: &Plan, say: &mut dyn FnMut(&str)) -> Result<(), String> {
    if plan.members.is_empty() {
        return Err("no members to configure".into());
    }
    let mut r = Run { plan, deadline: Instant::now() + plan.timeout, say };
    for m in &plan.members {
        r.wait(&format!("{} to answer /health", m.host), || {
            let ok =
                call_host(&m.host, m.web_port, "GET", "/health", None, CALL_TIMEOUT).is_ok_and(|x| x.status == 200);
            Ok(ok.then_some(()))
        })?;
        let (_, config) = r.call(m, "GET", "/api/mirror/config", None)?;
        if config["mirror"].is_null() {
            return Err(format!(
                "{} has no mirror configuration: give it a merge file with actions.config_mirror",
                m.host
            ));
        }
    }
    let primary = elect(&mut r)?;
    (r.say)(&format!("primary: {}", plan.members[primary].host));
    for (i, m) in plan.members.iter().enumerate() {
        if i != primary && r.status_when_up(m)?.is_null() {
            r.act(m, "join", None)?;
        }
    }
    for db in &plan.databases {
        mirror_database(&mut r, primary, db)?;
    }
    verify(&mut r, primary)
}

/// The index of the primary: the one running, else the first member made primary.
fn elect(r: &mut Run) -> Result<usize, String> {
    let members = &r.plan.members;
    let mut any_member = false;
    for m in members {
        any_member |= !r.status_when_up(m)?.is_null();
    }
    if !any_member {
        r.act(&members[0], "create", None)?;
    }
    r.wait("a primary", || {
        let mut seen = Vec::new();
        for (i, m) in members.iter().enumerate() {
            // One member down (restarting) must not hide the other being primary.
            match r.status(m) {
                Ok(s) if word(&s) == "Primary" => return Ok(Some(i)),
                Ok(s) => seen.push(format!(
                    "{} is {}",
                    m.host,
                    if word(&s).is_empty() { "no mirror member" } else { word(&s) }
                )),
                Err(e) => seen.push(e),
            }
        }
        // Not an error yet: what the timeout message reports if no primary appears.
        Err(seen.join(", "))
    })
}

fn mirror_database(r: &mut Run, primary: usize, db: &str) -> Result<(), String> {
    let p = r.plan.members[primary].clone();
    let create = serde_json::json!({ "name": db }).to_string();
    let namespace = serde_json::json!({ "name": db, "globals": db }).to_string();
    if !has_database(&r.status_when_up(&p)?, db) {
        r.call(&p, "POST", "/api/databases", Some(&create))?;
        r.act(&p, "add-database", Some(db))?;
    }
    r.call(&p, "POST", "/api/namespaces", Some(&namespace))?;
    for (i, m) in r.plan.members.clone().iter().enumerate() {
        if i == primary || has_database(&r.status_when_up(m)?, db) {
            continue;
        }
        copy_from_primary(r, &p, m, db)?;
        r.call(m, "POST", "/api/databases", Some(&create))?;
        r.act(m, "activate-database", Some(db))?;
        r.call(m, "POST", "/api/namespaces", Some(&namespace))?;
    }
    Ok(())
}

/// The primary's database file into the member's data directory, written under a
/// temporary name then renamed (a half-copied file is never mounted); the primary is
/// frozen meanwhile and thawed whatever happens.
fn copy_from_primary(r: &mut Run, p: &Member, m: &Member, db: &str) -> Result<(), String> {
    let source = p.data_dir.join("databases").join(db).join("mirrorlab.dat");
    let dir = m.data_dir.join("databases").join(db);
    let target = dir.join("mirrorlab.dat");
    if target.exists() {
        return Err(format!(
            "{} already has a file {} for database {db}, not a mirrored copy; remove it (or the member's volume) and run again",
            m.host,
            target.display()
        ));
    }
    r.call(p, "POST", "/api/freeze", Some("{}"))?;
    let copied = (|| -> std::io::Result<u64> {
        std::fs::create_dir_all(&dir)?;
        let staging = dir.join("mirrorlab.dat.copying");
        let n = std::fs::copy(&source, &staging)?;
        std::fs::File::open(&staging)?.sync_all()?;
        std::fs::rename(&staging, &target)?;
        Ok(n)
    })();
    let thawed = r.call(p, "POST", "/api/thaw", None);
    let n = copied.map_err(|e| format!("copying {} to {}: {e}", source.display(), target.display()))?;
    thawed?;
    (r.say)(&format!("{db}: copied {n} bytes from {} to {}", p.host, m.host));
    Ok(())
}

fn verify(r: &mut Run, primary: usize) -> Result<(), String> {
    let plan = r.plan;
    for (i, m) in plan.members.iter().enumerate() {
        if i == primary {
            continue;
        }
        r.wait(&format!("{} to be a caught-up backup or async", m.host), || {
            let s = r.status(m)?;
            let member_ok = match s["type"].as_str() {
                Some("failover") => word(&s) == "Backup",
                _ => !word(&s).is_empty() && word(&s) != "Waiting",
            };
            let dbs_ok = plan.databases.iter().all(|db| {
                s["databases"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|x| x["name"] == *db && x["status"] == "Dejournaling"))
            });
            Ok((member_ok && dbs_ok).then_some(()))
        })?;
        (r.say)(&format!("{}: verified", m.host));
    }
    Ok(())
}
