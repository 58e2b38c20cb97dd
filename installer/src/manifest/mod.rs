//! The manifest: a lab described in one YAML file (schema in docs/manifest.md).
//!
//! `load` renders the templates, parses the YAML, and checks everything, returning either
//! a `Manifest` that is valid as a whole or every problem found. Nothing downstream
//! re-checks what is established here (names are upper-cased, unique, references resolve).

mod check;
mod ecp;
pub mod security;
mod walk;

pub use check::load_str;

use crate::problem::Problems;
use crate::template::Inputs;
use std::path::{Path, PathBuf};

/// Largest manifest file read.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    Local,
    Docker,
    /// Inside a Compose lab's network: the members are its services (target/compose.rs).
    Compose,
}

/// When the lab's engines acknowledge a plain write (the engine's `journal.durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Once synced, and with a mirror once the backup has it too: nothing acknowledged is
    /// lost by a crash or a failover. The default for labs with a mirror.
    Always,
    /// Once buffered; synced within `journal.sync_interval_ms` (1 s). Faster; a crash or
    /// failover can lose what was acknowledged in the last second. The default otherwise.
    Buffered,
}

impl Durability {
    /// The engine's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Always => "always",
            Durability::Buffered => "buffered",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberType {
    Failover,
    Dr,
    ReportingRo,
    ReportingRw,
    Standalone,
    /// An ECP application server: an engine outside the mirror, with no agent, whose
    /// namespaces map globals to remote databases on data servers.
    App,
}

impl MemberType {
    pub const ALL: [(&'static str, MemberType); 6] = [
        ("failover", MemberType::Failover),
        ("dr", MemberType::Dr),
        ("reporting-ro", MemberType::ReportingRo),
        ("reporting-rw", MemberType::ReportingRw),
        ("standalone", MemberType::Standalone),
        ("app", MemberType::App),
    ];

    pub fn as_str(self) -> &'static str {
        MemberType::ALL.iter().find(|(_, t)| *t == self).map(|(s, _)| *s).unwrap_or("standalone")
    }

    pub fn in_mirror(self) -> bool {
        !matches!(self, MemberType::Standalone | MemberType::App)
    }

    /// Whether the member holds the lab's own databases (every type but `app`, which
    /// reaches them remotely).
    pub fn holds_data(self) -> bool {
        self != MemberType::App
    }
}

/// Fixed ports a member asks for; 0 or absent: chosen free when the lab is first created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ports {
    pub superserver: u16,
    pub web: u16,
    pub mirror: u16,
    pub agent: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Upper-cased, as the engine shows it.
    pub name: String,
    pub member_type: MemberType,
    pub host: String,
    pub ports: Ports,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Database {
    pub name: String,
    pub mirrored: bool,
    /// A database file to start from (resolved against the manifest's directory).
    pub seed: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// A name (`Company`), a prefix (`Company*`) or a subscript range (`Log(2024):(2025)`).
    pub global: String,
    pub database: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub globals: String,
    pub mappings: Vec<Mapping>,
    /// The members it is created on: `members:` when given, else every member where each
    /// database it names exists (local ones on data-holding members, remote ones on app
    /// members).
    pub members: Vec<String>,
}

/// Where an app member's data server is: the lab's mirror (the app member follows its
/// primary) or one member outside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataServerAt {
    Mirror,
    Member(String),
}

/// An ECP data server as app members name it (the reference's Data Servers list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataServer {
    /// Upper-cased.
    pub name: String,
    pub at: DataServerAt,
}

/// A database an app member reaches on a data server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteDatabase {
    /// Its name on the app members (upper-cased).
    pub name: String,
    /// The data server's name.
    pub server: String,
    /// Its name on the data server.
    pub database: String,
}

/// ECP: the data servers app members use and the limit data servers keep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ecp {
    /// The engine's `ecp.max_app_servers` on every data-holding member; None: the
    /// engine's default.
    pub max_app_servers: Option<u32>,
    pub data_servers: Vec<DataServer>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    pub name: String,
    pub qos_ms: u32,
    pub arbiter: bool,
    /// The member that starts as primary.
    pub primary: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arbiter {
    pub port: u16,
}

/// Data loaded once, when the lab is first built, on the primary (or the first member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Data {
    pub namespace: String,
    /// Terminal commands, one per line (docs/terminal.md).
    pub script: Option<String>,
    /// `^Ref(subs)` -> value.
    pub globals: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub lab: String,
    pub target: TargetKind,
    /// Engines and agents accept the fault switch (partition / heal).
    pub faults: bool,
    /// Every member's instance-wide durability, kept by `apply` like any other setting.
    pub durability: Durability,
    pub arbiter: Option<Arbiter>,
    pub members: Vec<Member>,
    pub databases: Vec<Database>,
    pub namespaces: Vec<Namespace>,
    pub mirror: Option<Mirror>,
    pub data: Vec<Data>,
    pub ecp: Ecp,
    /// Databases of data servers, as app members see them.
    pub remote_databases: Vec<RemoteDatabase>,
    /// Applied to every member (mirroring does not copy users).
    pub roles: Vec<security::Role>,
    pub users: Vec<security::User>,
    /// `security.tls_clients`: every member's superserver and web port speak TLS only,
    /// with its lab certificate (and the installer, the agents, the generated HAProxy and
    /// Prometheus configurations follow). Off by default.
    pub tls_clients: bool,
}

impl Manifest {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name.eq_ignore_ascii_case(name))
    }

    pub fn primary(&self) -> Option<&Member> {
        self.mirror.as_ref().and_then(|m| self.member(&m.primary))
    }

    pub fn mirror_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| self.mirror.is_some() && m.member_type.in_mirror())
    }

    /// The ECP application servers.
    pub fn app_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.member_type == MemberType::App)
    }

    pub fn is_app(&self, member: &str) -> bool {
        self.member(member).is_some_and(|m| m.member_type == MemberType::App)
    }

    pub fn data_server(&self, name: &str) -> Option<&DataServer> {
        self.ecp.data_servers.iter().find(|d| d.name == name)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read manifest {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("manifest {path} is {size} bytes; the limit is {MAX_MANIFEST_BYTES}")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{0}")]
    Invalid(Problems),
}

/// Reads, renders and checks a manifest file.
pub fn load(path: &Path, inputs: &Inputs) -> Result<Manifest, LoadError> {
    let read = |source| LoadError::Read { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_MANIFEST_BYTES {
        return Err(LoadError::TooLarge { path: path.to_path_buf(), size });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let base = path.parent().unwrap_or(Path::new("."));
    load_str(&path.display().to_string(), &text, base, inputs).map_err(LoadError::Invalid)
}
