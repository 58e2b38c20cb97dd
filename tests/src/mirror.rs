//! A mirror lab of real processes on loopback: an arbiter agent and members, each an
//! engine with its agent beside it, configured through the management API.

use crate::{free_port, http, Agent, Engine};
pub use installer::certs::{LabCerts, Party};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Member {
    pub name: String,
    pub member_type: String,
    pub dir: PathBuf,
    pub mirror_port: u16,
    pub agent: Option<Agent>,
    pub engine: Option<Engine>,
}

pub struct Lab {
    pub arbiter: Option<Agent>,
    pub members: Vec<Member>,
    pub qos_ms: u32,
    /// The lab CA and certificates when the lab speaks mutual TLS.
    pub certs: Option<LabCerts>,
    _temp: tempfile::TempDir,
}

impl Lab {
    /// Starts the arbiter and every member's agent and engine (fault injection allowed),
    /// configures the mirror on each, creates it on the first and joins the others, and
    /// waits until the second member is the active backup.
    pub fn start(members: &[(&str, &str)], qos_ms: u32) -> Lab {
        Lab::build(members, qos_ms, false, &Engine::start_in)
    }

    /// [`Lab::start`], each engine started by `engine(data directory, arguments)` where
    /// `member` says which (a test that needs a member's process set up its own way).
    pub fn start_with(members: &[(&str, &str)], qos_ms: u32, engine: &dyn Fn(usize, &Path, &[&str]) -> Engine) -> Lab {
        Lab::build_each(members, qos_ms, false, engine)
    }

    /// [`Lab::start`] with mutual TLS: a lab CA and a certificate for every member, the
    /// arbiter and the operator (installer::certs, as `mirrorlab up` makes them).
    pub fn start_tls(members: &[(&str, &str)], qos_ms: u32) -> Lab {
        Lab::build(members, qos_ms, true, &Engine::start_in)
    }

    fn build(members: &[(&str, &str)], qos_ms: u32, tls: bool, engine: &dyn Fn(&Path, &[&str]) -> Engine) -> Lab {
        Lab::build_each(members, qos_ms, tls, &|_, dir, args| engine(dir, args))
    }

    fn build_each(
        members: &[(&str, &str)],
        qos_ms: u32,
        tls: bool,
        engine: &dyn Fn(usize, &Path, &[&str]) -> Engine,
    ) -> Lab {
        let temp = tempfile::tempdir().expect("temp dir");
        let certs = tls.then(|| {
            let certs = LabCerts::new(temp.path().join("tls"));
            let mut parties: Vec<Party<'_>> = members.iter().map(|&(name, _)| Party::Member(name)).collect();
            parties.extend([Party::Arbiter, Party::Operator]);
            certs.ensure(&parties).expect("make the lab certificates");
            certs
        });
        let flags = |party: Party<'_>| certs.as_ref().map(|c| tls_flags(c, party)).unwrap_or_default();
        let arbiter = Agent::arbiter(&with(&["--allow-fault-injection"], &flags(Party::Arbiter)));
        let mut lab = Lab { arbiter: Some(arbiter), members: Vec::new(), qos_ms, certs: certs.clone(), _temp: temp };
        for (name, member_type) in members {
            let dir = lab._temp.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let agent = Agent::beside(&dir, &with(&["--allow-fault-injection"], &flags(Party::Member(name))));
            lab.members.push(Member {
                name: name.to_string(),
                member_type: member_type.to_string(),
                dir,
                mirror_port: free_port(),
                agent: Some(agent),
                engine: None,
            });
        }
        for i in 0..lab.members.len() {
            let dir = lab.members[i].dir.clone();
            let args = lab.engine_args(i);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            lab.members[i].engine = Some(engine(i, &dir, &args));
            let config = lab.config(i);
            let (code, body) = http(lab.web(i), "PUT", "/api/mirror/config", Some(&config));
            assert_eq!(code, 200, "configuring {}: {body}", lab.members[i].name);
        }
        lab.act(0, r#"{"action":"create"}"#);
        lab.wait_status(0, "Primary");
        for i in 1..lab.members.len() {
            lab.act(i, r#"{"action":"join"}"#);
        }
        if lab.members.len() > 1 {
            lab.wait_status(1, "Backup");
        }
        lab
    }

    pub fn config(&self, this: usize) -> String {
        let members: Vec<serde_json::Value> = self
            .members
            .iter()
            .map(|m| {
                serde_json::json!({
                    "name": m.name,
                    "type": m.member_type,
                    "superserver": "127.0.0.1:1972",
                    "mirror_address": format!("127.0.0.1:{}", m.mirror_port),
                    "agent": format!("127.0.0.1:{}", m.agent.as_ref().expect("agent").port),
                })
            })
            .collect();
        serde_json::json!({
            "name": "LABMIRROR",
            "this_member": self.members[this].name,
            "qos_ms": self.qos_ms,
            "arbiter": format!("127.0.0.1:{}", self.arbiter.as_ref().expect("arbiter").port),
            "members": members,
        })
        .to_string()
    }

    pub fn start_engine(&mut self, i: usize) {
        let dir = self.members[i].dir.clone();
        let args = self.engine_args(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.members[i].engine = Some(Engine::start_in(&dir, &args));
    }

    /// The arguments member `i`'s engine starts with: fault injection allowed, and its
    /// certificate in a TLS lab.
    fn engine_args(&self, i: usize) -> Vec<String> {
        let tls = self.certs.as_ref().map(|c| tls_flags(c, Party::Member(&self.members[i].name))).unwrap_or_default();
        std::iter::once("--allow-fault-injection".to_string()).chain(tls).collect()
    }

    /// The TLS identity of `party` in this lab (a TLS lab only).
    pub fn tls(&self, party: Party<'_>) -> engine::tls::Tls {
        let certs = self.certs.as_ref().expect("a lab started with start_tls");
        engine::tls::Tls::load(&certs.files(party), std::path::Path::new("/")).expect("load the lab certificate")
    }

    /// A client of member `i`'s agent (the arbiter's with `None`), as the operator in a
    /// TLS lab.
    pub fn agent_client(&self, i: Option<usize>) -> engine::client::Client {
        let (agent, name) = match i {
            Some(i) => (self.members[i].agent.as_ref().expect("agent"), self.members[i].name.as_str()),
            None => (self.arbiter.as_ref().expect("arbiter"), engine::tls::ARBITER_NAME),
        };
        match &self.certs {
            None => agent.client(),
            Some(_) => {
                let address = format!("127.0.0.1:{}", agent.port);
                engine::client::Client::connect_tls(address, Duration::from_secs(5), &self.tls(Party::Operator), name)
                    .expect("connect to the agent with the operator's certificate")
            }
        }
    }

    pub fn engine(&self, i: usize) -> &Engine {
        self.members[i].engine.as_ref().expect("engine running")
    }

    pub fn web(&self, i: usize) -> u16 {
        self.engine(i).web_port
    }

    /// Runs a mirror action on member `i`; panics unless it succeeds.
    pub fn act(&self, i: usize, action: &str) -> String {
        let (code, body) = http(self.web(i), "POST", "/api/mirror/actions", Some(action));
        assert_eq!(code, 200, "{action} on {}: {body}", self.members[i].name);
        body
    }

    /// Member `i`'s mirror status JSON (`null` when it reports none).
    pub fn status(&self, i: usize) -> serde_json::Value {
        let (code, body) = http(self.web(i), "GET", "/api/mirror/status", None);
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).expect("status JSON")["status"].clone()
    }

    pub fn status_word(&self, i: usize) -> String {
        self.status(i)["status"].as_str().unwrap_or_default().to_string()
    }

    pub fn wait_status(&self, i: usize, word: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !(self.members[i].engine.is_some() && self.status_word(i) == word) {
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out waiting for {} to be {word}; the members say:\n{}",
                    self.members[i].name,
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every running member's status, for failure messages.
    pub fn describe(&self) -> String {
        (0..self.members.len())
            .filter(|&i| self.members[i].engine.is_some())
            .map(|i| {
                let log = std::fs::read_to_string(self.members[i].dir.join("messages.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(25).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("{}: {}\n  log:\n    {}", self.members[i].name, self.status(i), tail.join("\n    "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Creates database `name` and namespace `name` (its default database) on every
    /// member, mirrors it on member 0 (the primary), and gives every other member a copy
    /// of the primary's file (taken while frozen), mounted and activated.
    pub fn add_mirrored_database(&self, name: &str) {
        let db = format!(r#"{{"name":"{name}"}}"#);
        let ns = format!(r#"{{"name":"{name}","globals":"{name}"}}"#);
        let (code, body) = http(self.web(0), "POST", "/api/databases", Some(&db));
        assert!(code == 201 || code == 200, "{body}");
        self.act(0, &format!(r#"{{"action":"add-database","name":"{name}"}}"#));
        let (code, body) = http(self.web(0), "POST", "/api/freeze", Some("{}"));
        assert_eq!(code, 200, "{body}");
        let source = self.members[0].dir.join("databases").join(name).join("mirrorlab.dat");
        for i in 1..self.members.len() {
            let target = self.members[i].dir.join("databases").join(name);
            std::fs::create_dir_all(&target).unwrap();
            std::fs::copy(&source, target.join("mirrorlab.dat")).expect("copy the database file");
        }
        let (code, body) = http(self.web(0), "POST", "/api/thaw", None);
        assert_eq!(code, 200, "{body}");
        for i in 0..self.members.len() {
            if i > 0 {
                let (code, body) = http(self.web(i), "POST", "/api/databases", Some(&db));
                assert!(code == 201 || code == 200, "{body}");
                self.act(i, &format!(r#"{{"action":"activate-database","name":"{name}"}}"#));
            }
            let (code, body) = http(self.web(i), "POST", "/api/namespaces", Some(&ns));
            assert!(code == 201 || code == 200, "{body}");
        }
    }

    /// A client of member `i` in namespace `ns`.
    pub fn client(&self, i: usize, ns: &str) -> engine::client::Client {
        let mut c = self.engine(i).client();
        c.namespace(ns).expect("use the namespace");
        c
    }

    pub fn kill9(&mut self, i: usize) {
        if let Some(mut e) = self.members[i].engine.take() {
            e.kill9();
        }
    }

    /// Loses member `i`'s host: its agent is killed first (nobody can ask it any more),
    /// then its engine, both with SIGKILL.
    pub fn lose_host(&mut self, i: usize) {
        drop(self.members[i].agent.take());
        self.kill9(i);
    }
}

/// The `--tls-ca/--tls-cert/--tls-key` flags of `party`'s process.
pub fn tls_flags(certs: &LabCerts, party: Party<'_>) -> Vec<String> {
    let files = certs.files(party);
    ["--tls-ca".into(), files.ca, "--tls-cert".into(), files.certificate, "--tls-key".into(), files.key].into()
}

/// `base` followed by `more`, as the argument slices the process helpers take.
fn with<'a>(base: &[&'a str], more: &'a [String]) -> Vec<&'a str> {
    base.iter().copied().chain(more.iter().map(String::as_str)).collect()
}
