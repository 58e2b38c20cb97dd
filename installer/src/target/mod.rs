//! Where a lab runs. The converge logic, plans and trainer verbs speak only this trait;
//! `local` runs processes on this machine, `docker` containers on the local Docker daemon,
//! `compose` configures the containers of a Compose lab from inside its network.

pub mod compose;
pub mod copy;
pub mod docker;
pub(crate) mod docker_api;
pub(crate) mod docker_copy;
mod docker_layout;
pub mod local;
pub mod process;

use crate::api::Api;
use crate::manifest::{Manifest, TargetKind};
use std::path::Path;

/// A member's process as the target sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    Running,
    /// Stopped with SIGSTOP (or the container paused).
    Paused,
    Down,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{member}: {what}")]
    Failed { member: String, what: String },
    #[error(transparent)]
    LabDir(#[from] crate::labdir::LabDirError),
}

pub fn failed(member: &str, what: impl Into<String>) -> TargetError {
    TargetError::Failed { member: member.to_string(), what: what.into() }
}

/// Addresses a member's mirror configuration names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addresses {
    pub superserver: String,
    pub mirror: String,
    pub agent: String,
}

pub trait Target {
    /// Whether the member has never been started (no data yet): its live state is empty.
    fn is_fresh(&self, member: &str) -> bool;
    fn proc_state(&self, member: &str) -> Proc;
    /// Starts the member's agent and engine (whichever is not running) and waits until
    /// the engine serves its management API.
    fn start(&self, member: &str) -> Result<(), TargetError>;
    /// Graceful stop of the engine and its agent.
    fn stop(&self, member: &str) -> Result<(), TargetError>;
    fn kill(&self, member: &str) -> Result<(), TargetError>;
    fn pause(&self, member: &str) -> Result<(), TargetError>;
    fn resume(&self, member: &str) -> Result<(), TargetError>;
    fn arbiter_running(&self) -> bool;
    fn start_arbiter(&self) -> Result<(), TargetError>;
    fn stop_arbiter(&self) -> Result<(), TargetError>;
    /// The arbiter's `host:port`.
    fn arbiter_address(&self) -> String;
    fn addresses(&self, member: &str) -> Addresses;
    fn api(&self, member: &str) -> Api;
    fn ports(&self, member: &str) -> crate::labdir::MemberPorts;
    /// Copies a database file (a frozen source on member `from`, at `source` as that
    /// member's engine names it) into database `db`'s directory on member `to`: staging
    /// file, fsync, rename, so a failure leaves nothing half-copied in place. Returns bytes.
    fn copy_database(
        &self,
        from: &str,
        source: &str,
        to: &str,
        db: &str,
        progress: &dyn Fn(u64, u64),
    ) -> Result<u64, TargetError>;
    /// Installs a seed file as database `db`'s file on `member` (same staging rule).
    fn seed_database(&self, member: &str, db: &str, seed: &Path) -> Result<u64, TargetError>;
    /// Runs terminal commands on the member (`engine session`), returning its output.
    fn run_script(&self, member: &str, namespace: &str, script: &str) -> Result<String, TargetError>;
    /// An interactive terminal on the member, inheriting this process's terminal.
    fn session(&self, member: &str, namespace: &str) -> Result<i32, TargetError>;
    /// The member's logs, oldest first.
    fn logs(&self, member: &str) -> Result<String, TargetError>;
    /// The log of a member's agent, or of the arbiter (`member` None), oldest first.
    fn agent_logs(&self, member: Option<&str>) -> Result<String, TargetError>;
    /// The file a log is written to, when it is a file on this machine (the local
    /// target): the member's messages.log, or with `agent` its agent's log; the arbiter's
    /// log for `member` None. `logs --follow` reads it as it grows.
    fn log_file(&self, _member: Option<&str>, _agent: bool) -> Option<std::path::PathBuf> {
        None
    }
    /// Follows a log that is not a file here (the docker target: a container's log): its
    /// last `lines` lines, then each line written, to `out`, until `done` says so.
    /// `Ok(false)`: this target cannot (the caller says what to do instead).
    fn follow_log(
        &self,
        _member: Option<&str>,
        _agent: bool,
        _lines: usize,
        _done: &dyn Fn() -> bool,
        _out: &mut dyn FnMut(&str),
    ) -> Result<bool, TargetError> {
        Ok(false)
    }
    /// Sends the fault switch to a member's agent or the arbiter (`FAULT DROP peers...`,
    /// `FAULT HEAL` when `peers` is empty).
    fn agent_fault(&self, member: Option<&str>, peers: &[String]) -> Result<(), TargetError>;
    /// Cuts the member off every other member and the arbiter at the network, when the
    /// target can (docker: disconnects its containers from the lab network). `Ok(false)`:
    /// it cannot; `partition` then uses the fault switches.
    fn isolate(&self, _member: &str) -> Result<bool, TargetError> {
        Ok(false)
    }
    /// Undoes every `isolate`.
    fn reconnect(&self) -> Result<(), TargetError> {
        Ok(())
    }
    /// Whether the installer keeps members' merge files (crate::ecp_merge) on this target.
    /// The Compose lab's are compose/merge/'s files, which Compose mounts: the installer
    /// only checks what the members report.
    fn writes_merge_files(&self) -> bool {
        false
    }
    /// The installer's merge file of `member` as it is now; None when there is none.
    fn merge_file(&self, _member: &str) -> Result<Option<String>, TargetError> {
        Ok(None)
    }
    /// Writes the member's merge file and, given, its ECP password file (0600, in its data
    /// directory): read at its next start, or at once by a running engine, which watches
    /// the file. A member first started after this starts with the file.
    fn write_merge_file(&self, member: &str, _text: &str, _ecp_password: Option<&str>) -> Result<(), TargetError> {
        Err(failed(member, "this target does not write merge files: its members' are compose/merge/'s"))
    }
    /// Stops everything; with `wipe` removes the lab's directory.
    fn down(&self, wipe: bool) -> Result<(), TargetError>;
    /// The portal URL of a member.
    fn url(&self, member: &str) -> String;
}

/// The target the manifest names, over the lab directory `base/<lab>`.
pub fn open(manifest: &Manifest, base: &Path) -> Result<Box<dyn Target>, TargetError> {
    match manifest.target {
        TargetKind::Local => Ok(Box::new(local::Local::open(manifest, base)?)),
        TargetKind::Docker => Ok(Box::new(docker::Docker::open(manifest, base)?)),
        TargetKind::Compose => Ok(Box::new(compose::Compose::from_env(manifest.tls_clients)?)),
    }
}
