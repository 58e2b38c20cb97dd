//! The engine's error type at its library boundary. Every variant has an error *name*
//! ([`EngineError::code`]) that clients see: `-PROTECT ...` on RESP, `<PROTECT>` in the
//! terminal, `"code": "PROTECT"` in the management API.

use crate::globals::GlobalsError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Globals(#[from] GlobalsError),
    #[error("database {database} is read-only{reason}")]
    Protect { database: String, reason: String },
    #[error("namespace {0} does not exist")]
    NoNamespace(String),
    #[error("database {0} does not exist")]
    NoDatabase(String),
    #[error("database {0} already exists")]
    DatabaseExists(String),
    #[error("namespace {0} already exists")]
    NamespaceExists(String),
    #[error("database {name} is not mounted")]
    NotMounted { name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no transaction is open")]
    NoTransaction,
    /// A database file that does not verify: at open (structure, metadata) or on a read
    /// (a value whose checksum does not match, a page redb finds malformed). `global` names
    /// the node when the damage is in one (decoded from the key as stored).
    #[error("database file {path} is corrupt{}: {detail}", at_global(.global))]
    CorruptDatabase { path: PathBuf, global: Option<String>, detail: String },
    /// The file's lock is held: another engine has it mounted (or another database of this
    /// one names the same file, through a link).
    #[error(
        "database file {path} is in use: another engine (or another database of this engine) has it mounted; \
         a file can be mounted by one engine at a time, so give the other instance a copy, not a link"
    )]
    DatabaseLocked { path: PathBuf },
    #[error("database file {path} has format version {found}; this engine reads up to {supported}")]
    FutureFormat { path: PathBuf, found: u32, supported: u32 },
    #[error("journal file {path} is corrupt at offset {offset}: {detail}")]
    CorruptJournal { path: PathBuf, offset: u64, detail: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// The journal could not be written or synced (no space left, an fsync error): it
    /// accepts nothing more and the process stops (see `fatal.rs`).
    #[error("journal {dir}: {detail}")]
    JournalFailed { dir: PathBuf, detail: String },
    #[error("database writes are frozen for an external backup (engine thaw resumes them)")]
    Frozen,
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// A mirror role change decided the fate of the request (a commit whose confirmation
    /// never came, a transaction the new primary rolls back).
    #[error("{0}")]
    Mirror(String),
    /// A mirror status or action asked of an instance that runs no mirror member.
    #[error("this instance is not a mirror member: create or join a mirror first")]
    NotMirrored,
    /// The authenticated user's roles do not allow the request (docs/design/security.md).
    #[error("{0}")]
    NoPermission(String),
    /// ECP: the data server of a remote database could not be reached within the wait
    /// (the reference's `<NETWORK>`), or a transaction was lost with its connection.
    #[error("{0}")]
    Network(String),
    /// ECP: the data server refused the request; `code` is its error name.
    #[error("{message}")]
    Remote { code: &'static str, message: String },
}

/// The error names a data server's refusal keeps on an application server; any other
/// becomes `ERR`.
const REMOTE_CODES: &[&str] = &[
    "PROTECT",
    "NAMESPACE",
    "DIRECTORY",
    "ILLEGAL",
    "NOTRANSACTION",
    "DATABASE",
    "JOURNAL",
    "DISKHARD",
    "FROZEN",
    "SHUTDOWN",
    "MIRROR",
    "NOPERM",
    "SUBSCRIPT",
    "SYNTAX",
    "MAXNUMBER",
    "MAXSTRING",
    "UNDEFINED",
    "READONLY",
    "WRONGPASS",
    "NOAUTH",
    "NETWORK",
    "ECPLIMIT",
    "ECPMIRROR",
    "ECPMOVED",
    "ECPREPLACED",
];

impl EngineError {
    /// A data server's refusal, named by its error code.
    pub fn remote(code: &str, message: String) -> EngineError {
        let code = REMOTE_CODES.iter().find(|c| **c == code).copied().unwrap_or("ERR");
        EngineError::Remote { code, message }
    }

    /// [`EngineError::remote`] from a whole error line, `CODE message`.
    pub fn remote_line(line: &str) -> EngineError {
        let (code, message) = line.split_once(' ').unwrap_or((line, ""));
        EngineError::remote(code, message.to_string())
    }
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Globals(e) => e.code(),
            EngineError::Protect { .. } => "PROTECT",
            EngineError::NoNamespace(_) => "NAMESPACE",
            EngineError::NoDatabase(_) | EngineError::NotMounted { .. } => "DIRECTORY",
            EngineError::DatabaseExists(_) | EngineError::NamespaceExists(_) | EngineError::Invalid(_) => "ILLEGAL",
            EngineError::NoTransaction => "NOTRANSACTION",
            EngineError::CorruptDatabase { .. }
            | EngineError::FutureFormat { .. }
            | EngineError::DatabaseLocked { .. } => "DATABASE",
            EngineError::CorruptJournal { .. } => "JOURNAL",
            EngineError::Io { .. } | EngineError::JournalFailed { .. } => "DISKHARD",
            EngineError::Frozen => "FROZEN",
            EngineError::ShuttingDown => "SHUTDOWN",
            EngineError::Mirror(_) => "MIRROR",
            EngineError::NotMirrored => "NOTMIRRORED",
            EngineError::NoPermission(_) => "NOPERM",
            EngineError::Network(_) => "NETWORK",
            EngineError::Remote { code, .. } => code,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> EngineError {
        EngineError::Io { context: context.into(), source }
    }
}

fn at_global(global: &Option<String>) -> String {
    global.as_ref().map(|g| format!(" at {g}")).unwrap_or_default()
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
