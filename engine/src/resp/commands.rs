//! From a request frame to a typed [`Command`]: the command table (names, arity, key
//! positions, also served by `COMMAND`), argument checks and key parsing. No instance
//! access here, so every rejection is unit-tested without a database.
//!
//! Errors are the RESP error line (without the leading `-`): Redis's own wording for
//! unknown commands and wrong arity, the engine error name first (`SYNTAX ...`,
//! `SUBSCRIPT ...`) for bad references.

pub use super::clients::KillFilter;
use super::codec::Frame;
use super::reply::Protocol;
use crate::error::EngineError;
use crate::globals::{reference, GlobalRef, GlobalsError, Number, Subscript};
use crate::instance::{Direction, Durability};
use crate::mirror::status::MirrorAction;

/// One entry of the command table.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// Lower case, as Redis reports names.
    pub name: &'static str,
    /// Fewest arguments, the name included.
    pub min_args: usize,
    /// Most arguments, the name included (`usize::MAX`: no limit).
    pub max_args: usize,
    pub flags: &'static [&'static str],
    /// Key positions as `COMMAND` reports them (`0` when the command takes no key).
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    pub summary: &'static str,
}

impl CommandSpec {
    /// Redis's arity: the exact count, or minus the minimum when more are allowed.
    pub fn arity(&self) -> i64 {
        if self.min_args == self.max_args {
            self.min_args as i64
        } else {
            -(self.min_args as i64)
        }
    }
}

const ANY: usize = usize::MAX;

const fn spec(
    name: &'static str,
    min_args: usize,
    max_args: usize,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    summary: &'static str,
) -> CommandSpec {
    CommandSpec { name, min_args, max_args, flags, first_key: keys.0, last_key: keys.1, step: keys.2, summary }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const WRITE: &[&str] = &["write"];
const READ: &[&str] = &["readonly", "fast"];
const CONN: &[&str] = &["fast", "loading", "stale"];

/// Every command we answer, in the order `COMMAND` lists them.
pub static COMMANDS: &[CommandSpec] = &[
    spec("set", 3, ANY, WRITE, ONE_KEY, "Sets a node: SET ref value [NX|XX] [GET]"),
    spec("get", 2, 3, READ, ONE_KEY, "Gets a node's value: GET ref [default]"),
    spec("kill", 2, ANY, WRITE, (1, -1, 1), "Kills nodes and their subtrees; returns how many had data"),
    spec("del", 2, ANY, WRITE, (1, -1, 1), "Alias of KILL"),
    spec("zkill", 2, 2, WRITE, ONE_KEY, "Kills one node's value, keeping its subtree"),
    spec("data", 2, 2, READ, ONE_KEY, "$DATA: 0 none, 1 value, 10 children, 11 both"),
    spec("order", 2, 3, READ, ONE_KEY, "$ORDER: the next (1) or previous (-1) sibling subscript"),
    spec("query", 2, 3, READ, ONE_KEY, "$QUERY: the next (1) or previous (-1) node with a value"),
    spec("incr", 2, 2, WRITE, ONE_KEY, "$INCREMENT by 1"),
    spec("incrby", 3, 3, WRITE, ONE_KEY, "$INCREMENT by a number (may be decimal)"),
    spec("namespace", 1, 2, CONN, NO_KEYS, "Switches to a namespace, or returns the current one"),
    spec("tstart", 1, 1, CONN, NO_KEYS, "Starts a (nested) transaction; returns $TLEVEL"),
    spec("tcommit", 1, 1, CONN, NO_KEYS, "Commits one transaction level"),
    spec("trollback", 1, 1, CONN, NO_KEYS, "Rolls back the whole transaction"),
    spec("sync", 1, 1, CONN, NO_KEYS, "Returns once everything written so far is durable"),
    spec("ecp", 2, 12, &["write"], NO_KEYS, "ECP requests of application servers (docs/design/ecp.md)"),
    spec("durability", 1, 2, CONN, NO_KEYS, "Per-connection durability: always, buffered or default"),
    spec("ping", 1, 2, CONN, NO_KEYS, "PONG, or the message"),
    spec("echo", 2, 2, CONN, NO_KEYS, "Returns the message"),
    spec("hello", 1, ANY, CONN, NO_KEYS, "Handshake: protocol version, AUTH, SETNAME"),
    spec("auth", 2, 3, CONN, NO_KEYS, "Authenticates: AUTH [user] password (user `default`, else `admin`)"),
    spec("acl", 2, 2, CONN, NO_KEYS, "ACL WHOAMI: the authenticated user (users are managed over the API)"),
    spec("client", 2, ANY, CONN, NO_KEYS, "CLIENT SETNAME, GETNAME, ID, INFO, SETINFO, LIST, KILL, ERRORS"),
    spec("select", 2, 2, CONN, NO_KEYS, "Only database 0: use NAMESPACE to switch"),
    spec("info", 1, ANY, &["loading", "stale"], NO_KEYS, "Server information in Redis INFO format"),
    spec("command", 1, ANY, &["loading", "stale"], NO_KEYS, "Describes the commands"),
    spec("config", 2, ANY, &["admin", "loading", "stale"], NO_KEYS, "CONFIG GET for tools that ask"),
    spec("quit", 1, ANY, CONN, NO_KEYS, "Closes the connection"),
    spec("multi", 1, 1, CONN, NO_KEYS, "Starts queuing commands for EXEC (a transaction)"),
    spec("exec", 1, 1, &["loading", "stale"], NO_KEYS, "Runs the queued commands in one transaction"),
    spec("discard", 1, 1, CONN, NO_KEYS, "Drops the queued commands"),
    spec("watch", 2, ANY, CONN, (1, -1, 1), "Refused: optimistic locking is not supported"),
    spec("unwatch", 1, 1, CONN, NO_KEYS, "Nothing to forget: WATCH is refused"),
    spec("reset", 1, 1, CONN, NO_KEYS, "Drops MULTI, rolls back TSTART, back to the default namespace"),
    spec(
        "monitor",
        1,
        1,
        &["admin", "loading", "stale"],
        NO_KEYS,
        "Streams every command the server runs, until QUIT or RESET",
    ),
    spec("exists", 2, ANY, READ, (1, -1, 1), "How many of the references have a value"),
    spec("type", 2, 2, READ, ONE_KEY, "string for a node with a value, none otherwise"),
    spec("strlen", 2, 2, READ, ONE_KEY, "Length of a node's value"),
    spec("mget", 2, ANY, READ, (1, -1, 1), "Values of several nodes"),
    spec("mset", 3, ANY, WRITE, (1, -1, 2), "Sets several nodes in one transaction"),
    spec("setnx", 3, 3, WRITE, ONE_KEY, "Sets a node that has no value; 1 if it did"),
    spec("getdel", 2, 2, WRITE, ONE_KEY, "Returns a node's value and removes it (as ZKILL)"),
    spec("append", 3, 3, WRITE, ONE_KEY, "Appends to a node's value; returns the new length"),
    spec("decr", 2, 2, WRITE, ONE_KEY, "$INCREMENT by -1"),
    spec("decrby", 3, 3, WRITE, ONE_KEY, "$INCREMENT by minus a number"),
    spec("unlink", 2, ANY, WRITE, (1, -1, 1), "Alias of KILL"),
    spec("dbsize", 1, 1, &["readonly"], NO_KEYS, "Nodes with a value in the current namespace"),
    spec("keys", 2, 2, &["readonly"], NO_KEYS, "Names of the nodes matching a pattern"),
    spec("scan", 2, ANY, &["readonly"], NO_KEYS, "Iterates node names: SCAN cursor [MATCH p] [COUNT n] [TYPE t]"),
    spec("flushdb", 1, 2, WRITE, NO_KEYS, "Kills every global of the namespace (FORCE for mirrored ones)"),
    spec("time", 1, 1, CONN, NO_KEYS, "Server time: seconds and microseconds"),
    spec("slowlog", 2, 3, &["admin", "loading", "stale"], NO_KEYS, "No slow log is kept: GET is empty"),
    spec("role", 1, 1, &["fast", "loading", "stale"], NO_KEYS, "master on the mirror primary, slave on the others"),
    spec("wait", 3, 3, &["readonly"], NO_KEYS, "Waits until the backup confirmed every write so far"),
    spec("memory", 2, ANY, &["readonly"], NO_KEYS, "MEMORY USAGE ref: bytes of key and value"),
    spec(
        "mirror",
        2,
        3,
        &["admin", "loading", "stale"],
        NO_KEYS,
        "Mirror status and operator actions: MIRROR STATUS, FAILOVER, ADD db, ... (MIRROR HELP)",
    ),
];

/// `MIRROR`'s subcommands: name, argument, what it does (also `MIRROR HELP`'s text).
pub static MIRROR_VERBS: &[(&str, &str, &str)] = &[
    ("STATUS", "", "This member's Mirror Monitor: members, arbiter, failover mode, databases."),
    ("CREATE", "", "Make this member the first primary of the configured mirror."),
    ("JOIN", "", "Join the configured mirror as the type its configuration gives this member."),
    ("ADD", "<database>", "On the primary: mirror a database."),
    ("ACTIVATE", "<database>", "On another member: activate its copy of a mirrored database and catch it up."),
    ("REMOVE", "<database>", "Stop mirroring a database (it stays, as a local database)."),
    ("FAILOVER", "", "On the primary: hand over to the active backup (planned failover)."),
    ("NOFAILOVER", "SET|CLEAR", "Set or clear no failover on this member."),
    ("PROMOTE", "", "On a DR async: become a failover member, or primary when both failover members are lost."),
    ("DEMOTE", "", "On the backup: become a DR async member."),
    ("STOP", "", "On a backup or async: stop mirroring on this member (until START or a restart)."),
    ("START", "", "Start mirroring again on this member."),
    ("HELP", "", "Print this help."),
];

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name.as_bytes().eq_ignore_ascii_case(name))
}

/// A rejected request; the text is the RESP error line without its leading `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError(pub String);

impl CommandError {
    fn err(msg: impl std::fmt::Display) -> CommandError {
        CommandError(format!("ERR {msg}"))
    }
}

impl From<GlobalsError> for CommandError {
    fn from(e: GlobalsError) -> Self {
        CommandError(engine_error_line(&EngineError::from(e)))
    }
}

/// The RESP error line of an engine error: its name, then its message.
pub fn engine_error_line(e: &EngineError) -> String {
    format!("{} {}", e.code(), e)
}

/// `DURABILITY`'s argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityArg {
    Set(Durability),
    /// Follow the instance-wide setting again.
    Default,
}

/// `COMMAND`'s forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandQuery<'a> {
    All,
    Count,
    List,
    Docs(Vec<&'a [u8]>),
    Info(Vec<&'a [u8]>),
}

/// SET's condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetCondition {
    Always,
    /// NX: only when the node has no value.
    Missing,
    /// XX: only when it has one.
    Present,
}

/// SCAN's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanArgs<'a> {
    pub cursor: u64,
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    /// `TYPE` other than `string`: no node can match.
    pub other_type: bool,
}

/// SCAN's COUNT when none is given, and the most nodes one call examines.
pub const SCAN_DEFAULT_COUNT: usize = 10;
pub const SCAN_MAX_COUNT: usize = 10_000;

/// A checked request, borrowing values from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Set {
        key: GlobalRef,
        value: &'a [u8],
        condition: SetCondition,
        /// GET: answer the old value.
        get: bool,
    },
    SetNx {
        key: GlobalRef,
        value: &'a [u8],
    },
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Reset,
    Monitor,
    Exists {
        keys: Vec<GlobalRef>,
    },
    Type {
        key: GlobalRef,
    },
    StrLen {
        key: GlobalRef,
    },
    MGet {
        keys: Vec<GlobalRef>,
    },
    MSet {
        pairs: Vec<(GlobalRef, &'a [u8])>,
    },
    GetDel {
        key: GlobalRef,
    },
    Append {
        key: GlobalRef,
        value: &'a [u8],
    },
    DbSize,
    Keys {
        pattern: &'a [u8],
    },
    Scan(ScanArgs<'a>),
    FlushDb {
        force: bool,
    },
    Time,
    SlowlogGet,
    SlowlogLen,
    SlowlogReset,
    MemoryUsage {
        key: GlobalRef,
    },
    Role,
    /// WAIT numreplicas timeout (numreplicas is checked, not used: the backup is the one
    /// replica that confirms).
    Wait {
        timeout: std::time::Duration,
    },
    Get {
        key: GlobalRef,
        default: Option<&'a [u8]>,
    },
    Kill {
        keys: Vec<GlobalRef>,
    },
    ZKill {
        key: GlobalRef,
    },
    Data {
        key: GlobalRef,
    },
    /// `after` is `None` for `^a("")`: start from the first (or last) subscript.
    Order {
        parent: GlobalRef,
        after: Option<Subscript>,
        dir: Direction,
    },
    Query {
        key: GlobalRef,
        dir: Direction,
    },
    Increment {
        key: GlobalRef,
        by: Number,
    },
    Namespace {
        name: Option<&'a str>,
    },
    TStart,
    TCommit,
    TRollback,
    Sync,
    Durability {
        mode: Option<DurabilityArg>,
    },
    Ping {
        message: Option<&'a [u8]>,
    },
    Echo {
        message: &'a [u8],
    },
    Hello {
        proto: Option<Protocol>,
        auth: Option<(&'a [u8], &'a [u8])>,
        setname: Option<&'a str>,
    },
    Auth {
        user: Option<&'a [u8]>,
        password: &'a [u8],
    },
    ClientSetName {
        name: &'a str,
    },
    ClientGetName,
    ClientId,
    ClientInfo,
    ClientSetInfo,
    ClientList,
    /// CLIENT ERRORS ENGINE|REDIS: whether a write on a mirror follower answers the
    /// engine's PROTECT (the terminal) or Redis's READONLY (the default).
    ClientErrors {
        engine: bool,
    },
    /// The old form (`CLIENT KILL addr`) answers OK or an error, the new one a count.
    ClientKill {
        filters: Vec<KillFilter>,
        skip_me: bool,
        old_form: bool,
    },
    Select,
    Info {
        sections: Vec<String>,
    },
    Command(CommandQuery<'a>),
    ConfigGet {
        patterns: Vec<&'a [u8]>,
    },
    ConfigResetStat,
    Quit,
    Mirror(MirrorCommand),
    /// An ECP request (`ECP ATTACH ...`, `ECP GET ...`): parsed by `ecp.rs`.
    Ecp {
        args: Vec<&'a [u8]>,
    },
    AclWhoami,
}

/// `MIRROR`'s forms. Database names are upper-cased here (they are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MirrorCommand {
    Status,
    Help,
    Act(MirrorAction),
}

fn key(arg: &[u8]) -> Result<GlobalRef, CommandError> {
    Ok(reference::parse_key(arg)?)
}

fn direction(arg: Option<&[u8]>) -> Result<Direction, CommandError> {
    match arg {
        None | Some(b"1") => Ok(Direction::Forward),
        Some(b"-1") => Ok(Direction::Backward),
        Some(_) => Err(CommandError::err("syntax error: the direction is 1 (forward) or -1 (backward)")),
    }
}

fn text<'a>(arg: &'a [u8], what: &str) -> Result<&'a str, CommandError> {
    std::str::from_utf8(arg).map_err(|_| CommandError::err(format!("{what} is not valid UTF-8")))
}

fn integer(arg: &[u8]) -> Result<i64, CommandError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CommandError::err("value is not an integer or out of range"))
}

/// A number argument: an optional sign, digits with an optional fraction, an optional
/// exponent, and nothing else (unlike ObjectScript's lenient `+"12abc"`, a typo here is an
/// error, not zero).
pub fn number_arg(arg: &[u8]) -> Option<Number> {
    let mut i = usize::from(matches!(arg.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while arg.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if arg.get(i) == Some(&b'.') {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return None;
    }
    if matches!(arg.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(arg.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    (i == arg.len()).then(|| Number::parse_prefix(arg))
}

/// INCRBY's increment: a number ([`number_arg`]) within the engine's range; beyond it
/// `MAXNUMBER`, never a saturated increment.
fn increment_arg(arg: &[u8]) -> Result<Number, CommandError> {
    number_arg(arg).ok_or_else(|| CommandError::err("value is not a number"))?;
    Number::parse_in_range(arg)
        .ok_or_else(|| GlobalsError::MaxNumber { literal: String::from_utf8_lossy(arg).into_owned() }.into())
}

/// Redis accepts client names of printable characters without spaces.
fn client_name(arg: &[u8]) -> Result<&str, CommandError> {
    if !arg.iter().all(|b| (b'!'..=b'~').contains(b)) {
        return Err(CommandError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    text(arg, "the client name")
}

fn arity_error(name: &str) -> CommandError {
    CommandError::err(format!("wrong number of arguments for '{name}' command"))
}

fn unknown_subcommand(sub: &[u8], command: &str) -> CommandError {
    CommandError::err(format!("unknown subcommand '{}'. Try {} HELP.", printable(sub), command.to_ascii_uppercase()))
}

/// Client-supplied text for an error message: lossy, short, no control characters.
fn printable(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(128)]).chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Checks a request and types its arguments. `frame` must not be empty.
pub fn parse(frame: &Frame) -> Result<Command<'_>, CommandError> {
    let name = frame.arg(0);
    let Some(spec) = lookup(name) else {
        return Err(CommandError::err(format!("unknown command '{}'", printable(name))));
    };
    let n = frame.len();
    if n < spec.min_args || n > spec.max_args {
        return Err(arity_error(spec.name));
    }
    let arg = |i: usize| frame.arg(i);
    let opt = |i: usize| (i < n).then(|| frame.arg(i));
    Ok(match spec.name {
        "set" => parse_set(frame)?,
        "setnx" => Command::SetNx { key: key(arg(1))?, value: arg(2) },
        "multi" => Command::Multi,
        "exec" => Command::Exec,
        "discard" => Command::Discard,
        "watch" => Command::Watch,
        "unwatch" => Command::Unwatch,
        "reset" => Command::Reset,
        "monitor" => Command::Monitor,
        "ecp" => Command::Ecp { args: (1..n).map(arg).collect() },
        "exists" => Command::Exists { keys: keys(frame, 1)? },
        "type" => Command::Type { key: key(arg(1))? },
        "strlen" => Command::StrLen { key: key(arg(1))? },
        "mget" => Command::MGet { keys: keys(frame, 1)? },
        "mset" => {
            if n.is_multiple_of(2) {
                return Err(arity_error("mset"));
            }
            Command::MSet {
                pairs: (1..n)
                    .step_by(2)
                    .map(|i| Ok((key(arg(i))?, arg(i + 1))))
                    .collect::<Result<_, CommandError>>()?,
            }
        }
        "getdel" => Command::GetDel { key: key(arg(1))? },
        "append" => Command::Append { key: key(arg(1))?, value: arg(2) },
        "decr" => Command::Increment { key: key(arg(1))?, by: Number::from(-1) },
        "decrby" => Command::Increment {
            key: key(arg(1))?,
            by: number_arg(arg(2)).ok_or_else(|| CommandError::err("value is not a number"))?.neg(),
        },
        "unlink" => Command::Kill { keys: keys(frame, 1)? },
        "dbsize" => Command::DbSize,
        "keys" => Command::Keys { pattern: arg(1) },
        "scan" => Command::Scan(parse_scan(frame)?),
        "flushdb" => Command::FlushDb {
            force: match opt(1) {
                None => false,
                Some(a) if a.eq_ignore_ascii_case(b"force") => true,
                Some(a) if a.eq_ignore_ascii_case(b"sync") || a.eq_ignore_ascii_case(b"async") => false,
                Some(_) => {
                    return Err(CommandError::err("FLUSHDB takes SYNC, ASYNC or FORCE (to flush mirrored databases)"))
                }
            },
        },
        "time" => Command::Time,
        "role" => Command::Role,
        "wait" => {
            let replicas = integer(arg(1))?;
            let ms = integer(arg(2))?;
            if replicas < 0 || ms < 0 {
                return Err(CommandError::err("timeout is negative"));
            }
            let max = super::replication::MAX_WAIT;
            let timeout = if ms == 0 { max } else { std::time::Duration::from_millis(ms as u64).min(max) };
            Command::Wait { timeout }
        }
        "slowlog" => match arg(1) {
            a if a.eq_ignore_ascii_case(b"get") => {
                if let Some(c) = opt(2) {
                    integer(c)?;
                }
                Command::SlowlogGet
            }
            a if a.eq_ignore_ascii_case(b"len") && n == 2 => Command::SlowlogLen,
            a if a.eq_ignore_ascii_case(b"reset") && n == 2 => Command::SlowlogReset,
            a if a.eq_ignore_ascii_case(b"len") || a.eq_ignore_ascii_case(b"reset") => {
                return Err(arity_error(&format!("slowlog|{}", String::from_utf8_lossy(a).to_ascii_lowercase())))
            }
            a => return Err(unknown_subcommand(a, "slowlog")),
        },
        "memory" => {
            let sub = arg(1);
            if !sub.eq_ignore_ascii_case(b"usage") {
                return Err(unknown_subcommand(sub, "memory"));
            }
            // MEMORY USAGE key [SAMPLES count]: values are not sampled, SAMPLES is accepted.
            let samples = n == 5 && arg(3).eq_ignore_ascii_case(b"samples") && integer(arg(4)).is_ok();
            if n != 3 && !samples {
                return Err(arity_error("memory|usage"));
            }
            Command::MemoryUsage { key: key(arg(2))? }
        }
        "get" => Command::Get { key: key(arg(1))?, default: opt(2) },
        "kill" | "del" => Command::Kill { keys: (1..n).map(|i| key(arg(i))).collect::<Result<_, _>>()? },
        "zkill" => Command::ZKill { key: key(arg(1))? },
        "data" => Command::Data { key: key(arg(1))? },
        "order" => {
            let (parent, after) = reference::parse_order_arg(arg(1))?;
            Command::Order { parent, after, dir: direction(opt(2))? }
        }
        "query" => Command::Query { key: key(arg(1))?, dir: direction(opt(2))? },
        "incr" => Command::Increment { key: key(arg(1))?, by: Number::from(1) },
        "incrby" => Command::Increment { key: key(arg(1))?, by: increment_arg(arg(2))? },
        "namespace" => Command::Namespace { name: opt(1).map(|a| text(a, "the namespace name")).transpose()? },
        "tstart" => Command::TStart,
        "tcommit" => Command::TCommit,
        "trollback" => Command::TRollback,
        "sync" => Command::Sync,
        "durability" => Command::Durability {
            mode: match opt(1) {
                None => None,
                Some(a) if a.eq_ignore_ascii_case(b"always") => Some(DurabilityArg::Set(Durability::Always)),
                Some(a) if a.eq_ignore_ascii_case(b"buffered") => Some(DurabilityArg::Set(Durability::Buffered)),
                Some(a) if a.eq_ignore_ascii_case(b"default") => Some(DurabilityArg::Default),
                Some(_) => return Err(CommandError::err("DURABILITY takes always, buffered or default")),
            },
        },
        "ping" => Command::Ping { message: opt(1) },
        "echo" => Command::Echo { message: arg(1) },
        "hello" => parse_hello(frame)?,
        "auth" => {
            if n == 3 {
                Command::Auth { user: Some(arg(1)), password: arg(2) }
            } else {
                Command::Auth { user: None, password: arg(1) }
            }
        }
        "acl" if arg(1).eq_ignore_ascii_case(b"whoami") => Command::AclWhoami,
        "acl" => {
            return Err(CommandError::err(format!(
                "ACL {} is not supported: ACL WHOAMI only; users and roles are managed over the management API (/api/security)",
                printable(arg(1))
            )))
        }
        "client" => parse_client(frame)?,
        "select" => match integer(arg(1))? {
            0 => Command::Select,
            _ => {
                return Err(CommandError::err(
                    "DB index is out of range: Mirrorlab has one database 0 per namespace; \
                     switch namespaces with NAMESPACE <name>",
                ))
            }
        },
        "info" => {
            Command::Info { sections: (1..n).map(|i| String::from_utf8_lossy(arg(i)).to_ascii_lowercase()).collect() }
        }
        "command" => Command::Command(match opt(1) {
            None => CommandQuery::All,
            Some(s) if s.eq_ignore_ascii_case(b"count") && n == 2 => CommandQuery::Count,
            Some(s) if s.eq_ignore_ascii_case(b"list") => CommandQuery::List,
            Some(s) if s.eq_ignore_ascii_case(b"docs") => CommandQuery::Docs((2..n).map(arg).collect()),
            Some(s) if s.eq_ignore_ascii_case(b"info") => CommandQuery::Info((2..n).map(arg).collect()),
            Some(s) if s.eq_ignore_ascii_case(b"count") => return Err(arity_error("command|count")),
            Some(s) => return Err(unknown_subcommand(s, "command")),
        }),
        "config" => {
            let sub = arg(1);
            if sub.eq_ignore_ascii_case(b"get") {
                if n < 3 {
                    return Err(arity_error("config|get"));
                }
                Command::ConfigGet { patterns: (2..n).map(arg).collect() }
            } else if sub.eq_ignore_ascii_case(b"resetstat") {
                Command::ConfigResetStat
            } else if sub.eq_ignore_ascii_case(b"set") || sub.eq_ignore_ascii_case(b"rewrite") {
                return Err(CommandError::err(
                    "CONFIG SET and CONFIG REWRITE are not supported: the engine is configured \
                     through its configuration file and management API",
                ));
            } else {
                return Err(unknown_subcommand(sub, "config"));
            }
        }
        "quit" => Command::Quit,
        "mirror" => Command::Mirror(parse_mirror(frame)?),
        other => unreachable!("command {other} is in the table but not parsed"),
    })
}

fn keys(frame: &Frame, from: usize) -> Result<Vec<GlobalRef>, CommandError> {
    (from..frame.len()).map(|i| key(frame.arg(i))).collect()
}

/// `SET key value [NX|XX] [GET]`; the expiry options are refused by name.
fn parse_set(frame: &Frame) -> Result<Command<'_>, CommandError> {
    let mut condition = SetCondition::Always;
    let mut get = false;
    for i in 3..frame.len() {
        let a = frame.arg(i);
        let wanted = if a.eq_ignore_ascii_case(b"nx") {
            SetCondition::Missing
        } else if a.eq_ignore_ascii_case(b"xx") {
            SetCondition::Present
        } else if a.eq_ignore_ascii_case(b"get") {
            get = true;
            continue;
        } else if [&b"ex"[..], b"px", b"exat", b"pxat", b"keepttl"].iter().any(|o| a.eq_ignore_ascii_case(o)) {
            return Err(CommandError::err(format!(
                "SET option {} is not supported: Mirrorlab keys do not expire",
                printable(a).to_ascii_uppercase()
            )));
        } else {
            return Err(CommandError::err("syntax error"));
        };
        if condition != SetCondition::Always && condition != wanted {
            return Err(CommandError::err("syntax error"));
        }
        condition = wanted;
    }
    Ok(Command::Set { key: key(frame.arg(1))?, value: frame.arg(2), condition, get })
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn parse_scan(frame: &Frame) -> Result<ScanArgs<'_>, CommandError> {
    let cursor = std::str::from_utf8(frame.arg(1))
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| CommandError::err("invalid cursor"))?;
    let mut args = ScanArgs { cursor, pattern: None, count: SCAN_DEFAULT_COUNT, other_type: false };
    let mut i = 2;
    while i < frame.len() {
        if i + 1 >= frame.len() {
            return Err(CommandError::err("syntax error"));
        }
        let (opt, value) = (frame.arg(i), frame.arg(i + 1));
        if opt.eq_ignore_ascii_case(b"match") {
            args.pattern = Some(value);
        } else if opt.eq_ignore_ascii_case(b"count") {
            let count = integer(value)?;
            if count < 1 {
                return Err(CommandError::err("syntax error"));
            }
            args.count = usize::try_from(count).unwrap_or(usize::MAX).min(SCAN_MAX_COUNT);
        } else if opt.eq_ignore_ascii_case(b"type") {
            args.other_type = !value.eq_ignore_ascii_case(b"string");
        } else {
            return Err(CommandError::err("syntax error"));
        }
        i += 2;
    }
    Ok(args)
}

/// `CLIENT KILL addr` or `CLIENT KILL [ID id] [ADDR addr] [LADDR addr] [SKIPME yes|no]`.
fn parse_client_kill(frame: &Frame) -> Result<Command<'_>, CommandError> {
    let n = frame.len();
    if n == 3 {
        let addr = text(frame.arg(2), "the address")?.to_string();
        return Ok(Command::ClientKill { filters: vec![KillFilter::Addr(addr)], skip_me: false, old_form: true });
    }
    if n < 3 || n % 2 == 1 {
        return Err(CommandError::err("syntax error"));
    }
    let mut filters = Vec::new();
    let mut skip_me = true;
    for i in (2..n).step_by(2) {
        let (opt, value) = (frame.arg(i), frame.arg(i + 1));
        if opt.eq_ignore_ascii_case(b"id") {
            let id = integer(value).ok().and_then(|v| u64::try_from(v).ok());
            filters.push(KillFilter::Id(id.ok_or_else(|| CommandError::err("client-id should be greater than 0"))?));
        } else if opt.eq_ignore_ascii_case(b"addr") {
            filters.push(KillFilter::Addr(text(value, "the address")?.to_string()));
        } else if opt.eq_ignore_ascii_case(b"laddr") {
            filters.push(KillFilter::LAddr(text(value, "the address")?.to_string()));
        } else if opt.eq_ignore_ascii_case(b"skipme") {
            skip_me = match value {
                v if v.eq_ignore_ascii_case(b"yes") => true,
                v if v.eq_ignore_ascii_case(b"no") => false,
                _ => return Err(CommandError::err("syntax error")),
            };
        } else if [&b"type"[..], b"user", b"maxage"].iter().any(|o| opt.eq_ignore_ascii_case(o)) {
            return Err(CommandError::err(format!(
                "CLIENT KILL {} is not supported: filter by ID, ADDR or LADDR",
                printable(opt).to_ascii_uppercase()
            )));
        } else {
            return Err(CommandError::err("syntax error"));
        }
    }
    Ok(Command::ClientKill { filters, skip_me, old_form: false })
}

fn parse_hello(frame: &Frame) -> Result<Command<'_>, CommandError> {
    let n = frame.len();
    let mut proto = None;
    if n >= 2 {
        proto = Some(
            match integer(frame.arg(1))
                .map_err(|_| CommandError::err("Protocol version is not an integer or out of range"))?
            {
                2 => Protocol::Resp2,
                3 => Protocol::Resp3,
                _ => return Err(CommandError("NOPROTO unsupported protocol version".into())),
            },
        );
    }
    let mut auth = None;
    let mut setname = None;
    let mut i = 2;
    while i < n {
        let opt = frame.arg(i);
        if opt.eq_ignore_ascii_case(b"auth") && i + 2 < n {
            auth = Some((frame.arg(i + 1), frame.arg(i + 2)));
            i += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && i + 1 < n {
            setname = Some(client_name(frame.arg(i + 1))?);
            i += 2;
        } else {
            return Err(CommandError::err(format!("Syntax error in HELLO option '{}'", printable(opt))));
        }
    }
    Ok(Command::Hello { proto, auth, setname })
}

fn parse_mirror(frame: &Frame) -> Result<MirrorCommand, CommandError> {
    let sub = frame.arg(1);
    let Some(&(verb, arg, _)) = MIRROR_VERBS.iter().find(|v| v.0.as_bytes().eq_ignore_ascii_case(sub)) else {
        return Err(unknown_subcommand(sub, "mirror"));
    };
    if frame.len() != if arg.is_empty() { 2 } else { 3 } {
        return Err(arity_error(&format!("mirror|{}", verb.to_ascii_lowercase())));
    }
    let database = || text(frame.arg(2), "the database name").map(str::to_ascii_uppercase);
    Ok(match verb {
        "STATUS" => MirrorCommand::Status,
        "HELP" => MirrorCommand::Help,
        "CREATE" => MirrorCommand::Act(MirrorAction::Create),
        "JOIN" => MirrorCommand::Act(MirrorAction::Join),
        "ADD" => MirrorCommand::Act(MirrorAction::AddDatabase { name: database()? }),
        "ACTIVATE" => MirrorCommand::Act(MirrorAction::ActivateDatabase { name: database()? }),
        "REMOVE" => MirrorCommand::Act(MirrorAction::RemoveDatabase { name: database()? }),
        "FAILOVER" => MirrorCommand::Act(MirrorAction::PlannedFailover),
        "PROMOTE" => MirrorCommand::Act(MirrorAction::PromoteDr),
        "DEMOTE" => MirrorCommand::Act(MirrorAction::DemoteToDr),
        "STOP" => MirrorCommand::Act(MirrorAction::StopMirror),
        "START" => MirrorCommand::Act(MirrorAction::StartMirror),
        "NOFAILOVER" => match frame.arg(2) {
            a if a.eq_ignore_ascii_case(b"set") => MirrorCommand::Act(MirrorAction::SetNoFailover),
            a if a.eq_ignore_ascii_case(b"clear") => MirrorCommand::Act(MirrorAction::ClearNoFailover),
            _ => return Err(CommandError::err("MIRROR NOFAILOVER takes SET or CLEAR")),
        },
        other => unreachable!("MIRROR {other} is in the verb table but not parsed"),
    })
}

fn parse_client(frame: &Frame) -> Result<Command<'_>, CommandError> {
    let sub = frame.arg(1);
    let n = frame.len();
    let (cmd, args, name) = if sub.eq_ignore_ascii_case(b"setname") {
        if n == 3 {
            return Ok(Command::ClientSetName { name: client_name(frame.arg(2))? });
        }
        (None, 3, "client|setname")
    } else if sub.eq_ignore_ascii_case(b"getname") {
        (Some(Command::ClientGetName), 2, "client|getname")
    } else if sub.eq_ignore_ascii_case(b"id") {
        (Some(Command::ClientId), 2, "client|id")
    } else if sub.eq_ignore_ascii_case(b"info") {
        (Some(Command::ClientInfo), 2, "client|info")
    } else if sub.eq_ignore_ascii_case(b"setinfo") {
        (Some(Command::ClientSetInfo), 4, "client|setinfo")
    } else if sub.eq_ignore_ascii_case(b"list") {
        (Some(Command::ClientList), 2, "client|list")
    } else if sub.eq_ignore_ascii_case(b"kill") {
        return parse_client_kill(frame);
    } else if sub.eq_ignore_ascii_case(b"errors") {
        if n != 3 {
            return Err(arity_error("client|errors"));
        }
        return match frame.arg(2) {
            a if a.eq_ignore_ascii_case(b"engine") => Ok(Command::ClientErrors { engine: true }),
            a if a.eq_ignore_ascii_case(b"redis") => Ok(Command::ClientErrors { engine: false }),
            _ => Err(CommandError::err("CLIENT ERRORS takes ENGINE or REDIS")),
        };
    } else {
        return Err(unknown_subcommand(sub, "client"));
    };
    match cmd {
        Some(c) if n == args => Ok(c),
        _ => Err(arity_error(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command<'static>, CommandError> {
        // Leaked so the borrowed command can outlive the helper; tests only.
        let frame: &'static Frame = Box::leak(Box::new(Frame::from_args(args)));
        parse(frame)
    }

    fn r(s: &str) -> GlobalRef {
        reference::parse(s).unwrap()
    }

    fn err(args: &[&str]) -> String {
        p(args).unwrap_err().0
    }

    #[test]
    fn names_are_case_insensitive_and_unknown_ones_are_reported() {
        let set = |k: &str, v: &'static [u8]| Command::Set {
            key: r(k),
            value: v,
            condition: SetCondition::Always,
            get: false,
        };
        assert_eq!(p(&["set", "foo", "1"]).unwrap(), set("^foo", b"1"));
        assert_eq!(p(&["SeT", "^foo(1,\"a\")", "x"]).unwrap(), set("^foo(1,\"a\")", b"x"));
        assert_eq!(err(&["FLY", "x"]), "ERR unknown command 'FLY'");
        assert_eq!(err(&["a\r\nb"]), "ERR unknown command 'a??b'");
    }

    #[test]
    fn arity_is_checked_before_arguments() {
        assert_eq!(err(&["GET"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["get", "a", "b", "c"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["SET"]), "ERR wrong number of arguments for 'set' command");
        assert_eq!(err(&["MSET", "a", "1", "b"]), "ERR wrong number of arguments for 'mset' command");
        assert_eq!(err(&["KILL"]), "ERR wrong number of arguments for 'kill' command");
        assert_eq!(err(&["del"]), "ERR wrong number of arguments for 'del' command");
        assert_eq!(err(&["TSTART", "x"]), "ERR wrong number of arguments for 'tstart' command");
        assert_eq!(err(&["CLIENT", "SETNAME"]), "ERR wrong number of arguments for 'client|setname' command");
        assert_eq!(err(&["CONFIG", "GET"]), "ERR wrong number of arguments for 'config|get' command");
        for c in COMMANDS {
            let too_many = vec![c.name; c.max_args.saturating_add(1).min(70)];
            if c.max_args != ANY {
                assert!(p(&too_many).unwrap_err().0.contains("wrong number"), "{}", c.name);
            }
        }
    }

    #[test]
    fn bad_references_carry_the_engine_error_name() {
        assert!(err(&["GET", "^a(1,)"]).starts_with("SYNTAX "), "{}", err(&["GET", "^a(1,)"]));
        assert!(err(&["SET", "^a(\"\")", "1"]).starts_with("SUBSCRIPT "));
        assert!(err(&["GET", "a::b"]).starts_with("SUBSCRIPT "));
        assert!(err(&["GET", "my-key"]).starts_with("SYNTAX "));
        assert!(err(&["KILL", "^a", "^b(", "^c"]).starts_with("SYNTAX "));
    }

    #[test]
    fn data_commands() {
        assert_eq!(p(&["GET", "key:123"]).unwrap(), Command::Get { key: r("^key(123)"), default: None });
        assert_eq!(p(&["GET", "^a", "dflt"]).unwrap(), Command::Get { key: r("^a"), default: Some(b"dflt") });
        assert_eq!(p(&["DEL", "a", "b:1"]).unwrap(), Command::Kill { keys: vec![r("^a"), r("^b(1)")] });
        assert_eq!(p(&["zkill", "^a(1)"]).unwrap(), Command::ZKill { key: r("^a(1)") });
        assert_eq!(p(&["DATA", "^a(1)"]).unwrap(), Command::Data { key: r("^a(1)") });
        assert_eq!(p(&["QUERY", "^a"]).unwrap(), Command::Query { key: r("^a"), dir: Direction::Forward });
        assert_eq!(p(&["QUERY", "^a", "-1"]).unwrap(), Command::Query { key: r("^a"), dir: Direction::Backward });
        assert!(err(&["QUERY", "^a", "2"]).starts_with("ERR syntax error"));
    }

    #[test]
    fn order_takes_an_empty_last_subscript() {
        assert_eq!(
            p(&["ORDER", "^a(\"\")"]).unwrap(),
            Command::Order { parent: r("^a"), after: None, dir: Direction::Forward }
        );
        assert_eq!(
            p(&["ORDER", "^a(1,\"\")", "-1"]).unwrap(),
            Command::Order { parent: r("^a(1)"), after: None, dir: Direction::Backward }
        );
        assert_eq!(
            p(&["order", "^a(1,\"x\")"]).unwrap(),
            Command::Order {
                parent: r("^a(1)"),
                after: Some(Subscript::String(b"x".to_vec())),
                dir: Direction::Forward
            }
        );
        assert!(err(&["ORDER", "^a"]).starts_with("SYNTAX "), "{}", err(&["ORDER", "^a"]));
    }

    #[test]
    fn increments() {
        assert_eq!(p(&["INCR", "c"]).unwrap(), Command::Increment { key: r("^c"), by: Number::from(1) });
        assert_eq!(
            p(&["INCRBY", "c", "-2.5"]).unwrap(),
            Command::Increment { key: r("^c"), by: Number::parse_prefix(b"-2.5") }
        );
        assert_eq!(p(&["INCRBY", "c", "1E3"]).unwrap(), Command::Increment { key: r("^c"), by: Number::from(1000) });
        for bad in ["", "abc", "1x", "--1", ".", "1e", "1.2.3"] {
            assert_eq!(err(&["INCRBY", "c", bad]), "ERR value is not a number", "{bad:?}");
        }
        assert_eq!(number_arg(b".5"), Some(Number::parse_prefix(b".5")));
        assert_eq!(number_arg(b"+7."), Some(Number::from(7)));
    }

    #[test]
    fn session_commands() {
        assert_eq!(p(&["NAMESPACE"]).unwrap(), Command::Namespace { name: None });
        assert_eq!(p(&["namespace", "user"]).unwrap(), Command::Namespace { name: Some("user") });
        assert_eq!(p(&["TSTART"]).unwrap(), Command::TStart);
        assert_eq!(p(&["tcommit"]).unwrap(), Command::TCommit);
        assert_eq!(p(&["TROLLBACK"]).unwrap(), Command::TRollback);
        assert_eq!(p(&["sync"]).unwrap(), Command::Sync);
        assert_eq!(p(&["DURABILITY"]).unwrap(), Command::Durability { mode: None });
        assert_eq!(
            p(&["DURABILITY", "Always"]).unwrap(),
            Command::Durability { mode: Some(DurabilityArg::Set(Durability::Always)) }
        );
        assert_eq!(
            p(&["DURABILITY", "buffered"]).unwrap(),
            Command::Durability { mode: Some(DurabilityArg::Set(Durability::Buffered)) }
        );
        assert_eq!(p(&["DURABILITY", "default"]).unwrap(), Command::Durability { mode: Some(DurabilityArg::Default) });
        assert!(err(&["DURABILITY", "often"]).starts_with("ERR DURABILITY takes"));
        assert_eq!(p(&["SELECT", "0"]).unwrap(), Command::Select);
        assert!(err(&["SELECT", "1"]).contains("NAMESPACE"));
        assert_eq!(err(&["SELECT", "x"]), "ERR value is not an integer or out of range");
    }

    #[test]
    fn connection_commands() {
        assert_eq!(p(&["PING"]).unwrap(), Command::Ping { message: None });
        assert_eq!(p(&["PING", "hi"]).unwrap(), Command::Ping { message: Some(b"hi") });
        assert_eq!(p(&["ECHO", "hi"]).unwrap(), Command::Echo { message: b"hi" });
        assert_eq!(p(&["HELLO"]).unwrap(), Command::Hello { proto: None, auth: None, setname: None });
        assert_eq!(
            p(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "me"]).unwrap(),
            Command::Hello { proto: Some(Protocol::Resp3), auth: Some((b"default", b"pw")), setname: Some("me") }
        );
        assert_eq!(err(&["HELLO", "4"]), "NOPROTO unsupported protocol version");
        assert_eq!(err(&["HELLO", "x"]), "ERR Protocol version is not an integer or out of range");
        assert_eq!(err(&["HELLO", "3", "AUTH", "u"]), "ERR Syntax error in HELLO option 'AUTH'");
        assert_eq!(p(&["AUTH", "pw"]).unwrap(), Command::Auth { user: None, password: b"pw" });
        assert_eq!(p(&["AUTH", "u", "pw"]).unwrap(), Command::Auth { user: Some(b"u"), password: b"pw" });
        assert_eq!(p(&["CLIENT", "setname", "app-1"]).unwrap(), Command::ClientSetName { name: "app-1" });
        assert!(err(&["CLIENT", "SETNAME", "a b"]).contains("cannot contain spaces"));
        assert_eq!(p(&["client", "GETNAME"]).unwrap(), Command::ClientGetName);
        assert_eq!(p(&["CLIENT", "ID"]).unwrap(), Command::ClientId);
        assert_eq!(p(&["CLIENT", "INFO"]).unwrap(), Command::ClientInfo);
        assert_eq!(p(&["CLIENT", "SETINFO", "LIB-NAME", "x"]).unwrap(), Command::ClientSetInfo);
        assert_eq!(err(&["CLIENT", "FLY"]), "ERR unknown subcommand 'FLY'. Try CLIENT HELP.");
        assert_eq!(p(&["CLIENT", "LIST"]).unwrap(), Command::ClientList);
        assert_eq!(p(&["CLIENT", "errors", "Engine"]).unwrap(), Command::ClientErrors { engine: true });
        assert_eq!(p(&["CLIENT", "ERRORS", "REDIS"]).unwrap(), Command::ClientErrors { engine: false });
        assert_eq!(err(&["CLIENT", "ERRORS", "x"]), "ERR CLIENT ERRORS takes ENGINE or REDIS");
        assert_eq!(
            p(&["CLIENT", "KILL", "1.2.3.4:5"]).unwrap(),
            Command::ClientKill { filters: vec![KillFilter::Addr("1.2.3.4:5".into())], skip_me: false, old_form: true }
        );
        assert_eq!(
            p(&["CLIENT", "KILL", "ID", "7", "SKIPME", "no"]).unwrap(),
            Command::ClientKill { filters: vec![KillFilter::Id(7)], skip_me: false, old_form: false }
        );
        assert!(err(&["CLIENT", "KILL", "USER", "x"]).contains("not supported"));
        assert_eq!(err(&["CLIENT", "KILL", "ID", "7", "SKIPME"]), "ERR syntax error");
        assert_eq!(p(&["QUIT"]).unwrap(), Command::Quit);
        assert_eq!(p(&["monitor"]).unwrap(), Command::Monitor);
    }

    #[test]
    fn introspection_commands() {
        assert_eq!(p(&["INFO"]).unwrap(), Command::Info { sections: vec![] });
        assert_eq!(
            p(&["INFO", "Server", "clients"]).unwrap(),
            Command::Info { sections: vec!["server".into(), "clients".into()] }
        );
        assert_eq!(p(&["COMMAND"]).unwrap(), Command::Command(CommandQuery::All));
        assert_eq!(p(&["COMMAND", "COUNT"]).unwrap(), Command::Command(CommandQuery::Count));
        assert_eq!(p(&["command", "docs"]).unwrap(), Command::Command(CommandQuery::Docs(vec![])));
        assert_eq!(p(&["COMMAND", "INFO", "get"]).unwrap(), Command::Command(CommandQuery::Info(vec![b"get"])));
        assert_eq!(err(&["COMMAND", "FLY"]), "ERR unknown subcommand 'FLY'. Try COMMAND HELP.");
        assert_eq!(p(&["CONFIG", "GET", "save"]).unwrap(), Command::ConfigGet { patterns: vec![b"save"] });
        assert!(err(&["CONFIG", "SET", "save", ""]).starts_with("ERR CONFIG SET"));
    }

    #[test]
    fn mirror_verbs() {
        let act = |args: &[&str]| match p(args) {
            Ok(Command::Mirror(MirrorCommand::Act(a))) => a,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(p(&["MIRROR", "status"]).unwrap(), Command::Mirror(MirrorCommand::Status));
        assert_eq!(p(&["mirror", "HELP"]).unwrap(), Command::Mirror(MirrorCommand::Help));
        assert_eq!(act(&["MIRROR", "CREATE"]), MirrorAction::Create);
        assert_eq!(act(&["MIRROR", "join"]), MirrorAction::Join);
        assert_eq!(act(&["MIRROR", "ADD", "company"]), MirrorAction::AddDatabase { name: "COMPANY".into() });
        assert_eq!(act(&["MIRROR", "Activate", "Company"]), MirrorAction::ActivateDatabase { name: "COMPANY".into() });
        assert_eq!(act(&["MIRROR", "REMOVE", "COMPANY"]), MirrorAction::RemoveDatabase { name: "COMPANY".into() });
        assert_eq!(act(&["MIRROR", "FAILOVER"]), MirrorAction::PlannedFailover);
        assert_eq!(act(&["MIRROR", "NOFAILOVER", "set"]), MirrorAction::SetNoFailover);
        assert_eq!(act(&["MIRROR", "NOFAILOVER", "CLEAR"]), MirrorAction::ClearNoFailover);
        assert_eq!(act(&["MIRROR", "PROMOTE"]), MirrorAction::PromoteDr);
        assert_eq!(act(&["MIRROR", "stop"]), MirrorAction::StopMirror);
        assert_eq!(act(&["MIRROR", "DEMOTE"]), MirrorAction::DemoteToDr);
        assert_eq!(act(&["MIRROR", "Start"]), MirrorAction::StartMirror);
        assert_eq!(err(&["MIRROR", "NOFAILOVER", "maybe"]), "ERR MIRROR NOFAILOVER takes SET or CLEAR");
        assert_eq!(err(&["MIRROR", "ADD"]), "ERR wrong number of arguments for 'mirror|add' command");
        assert_eq!(err(&["MIRROR", "STATUS", "x"]), "ERR wrong number of arguments for 'mirror|status' command");
        assert_eq!(err(&["MIRROR", "FLY"]), "ERR unknown subcommand 'FLY'. Try MIRROR HELP.");
        assert_eq!(err(&["MIRROR"]), "ERR wrong number of arguments for 'mirror' command");
    }

    #[test]
    fn set_options_and_redis_key_commands() {
        let set = |c: SetCondition, get: bool| Command::Set { key: r("^k"), value: b"v", condition: c, get };
        assert_eq!(p(&["SET", "k", "v", "NX"]).unwrap(), set(SetCondition::Missing, false));
        assert_eq!(p(&["SET", "k", "v", "xx", "GET"]).unwrap(), set(SetCondition::Present, true));
        assert_eq!(p(&["SET", "k", "v", "get"]).unwrap(), set(SetCondition::Always, true));
        assert_eq!(err(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
        assert_eq!(err(&["SET", "k", "v", "FLY"]), "ERR syntax error");
        for (opt, name) in [("EX", "EX"), ("px", "PX"), ("EXAT", "EXAT"), ("PXAT", "PXAT"), ("KeepTTL", "KEEPTTL")] {
            assert_eq!(
                err(&["SET", "k", "v", opt, "10"]),
                format!("ERR SET option {name} is not supported: Mirrorlab keys do not expire")
            );
        }
        assert_eq!(p(&["SETNX", "k", "v"]).unwrap(), Command::SetNx { key: r("^k"), value: b"v" });
        assert_eq!(p(&["DECR", "c"]).unwrap(), Command::Increment { key: r("^c"), by: Number::from(-1) });
        assert_eq!(p(&["DECRBY", "c", "5"]).unwrap(), Command::Increment { key: r("^c"), by: Number::from(-5) });
        assert_eq!(p(&["UNLINK", "a", "b"]).unwrap(), Command::Kill { keys: vec![r("^a"), r("^b")] });
        assert_eq!(
            p(&["MSET", "a", "1", "b:2", "x"]).unwrap(),
            Command::MSet { pairs: vec![(r("^a"), b"1".as_slice()), (r("^b(2)"), b"x".as_slice())] }
        );
        assert_eq!(
            p(&["SCAN", "0", "MATCH", "u:*", "COUNT", "100"]).unwrap(),
            Command::Scan(ScanArgs { cursor: 0, pattern: Some(b"u:*"), count: 100, other_type: false })
        );
        assert_eq!(
            p(&["scan", "7", "count", "1000000", "TYPE", "hash"]).unwrap(),
            Command::Scan(ScanArgs { cursor: 7, pattern: None, count: SCAN_MAX_COUNT, other_type: true })
        );
        assert_eq!(err(&["SCAN", "x"]), "ERR invalid cursor");
        assert_eq!(err(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
        assert_eq!(err(&["SCAN", "0", "MATCH"]), "ERR syntax error");
        assert_eq!(p(&["FLUSHDB"]).unwrap(), Command::FlushDb { force: false });
        assert_eq!(p(&["flushdb", "FORCE"]).unwrap(), Command::FlushDb { force: true });
        assert_eq!(p(&["FLUSHDB", "ASYNC"]).unwrap(), Command::FlushDb { force: false });
        assert_eq!(p(&["MEMORY", "USAGE", "k"]).unwrap(), Command::MemoryUsage { key: r("^k") });
        assert_eq!(p(&["MEMORY", "USAGE", "k", "SAMPLES", "5"]).unwrap(), Command::MemoryUsage { key: r("^k") });
        assert_eq!(err(&["MEMORY", "DOCTOR"]), "ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.");
        assert_eq!(p(&["SLOWLOG", "GET", "10"]).unwrap(), Command::SlowlogGet);
        assert_eq!(p(&["WATCH", "a", "b"]).unwrap(), Command::Watch);
        let max = crate::resp::replication::MAX_WAIT;
        assert_eq!(p(&["WAIT", "1", "0"]).unwrap(), Command::Wait { timeout: max });
        assert_eq!(p(&["WAIT", "1", "999999999"]).unwrap(), Command::Wait { timeout: max });
        assert_eq!(p(&["WAIT", "1", "250"]).unwrap(), Command::Wait { timeout: std::time::Duration::from_millis(250) });
    }

    #[test]
    fn the_table_is_consistent() {
        for c in COMMANDS {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.min_args >= 1 && c.min_args <= c.max_args, "{}", c.name);
            assert!(std::ptr::eq(lookup(c.name.to_ascii_uppercase().as_bytes()).unwrap(), c));
        }
        assert_eq!(lookup(b"get").unwrap().arity(), -2);
        assert_eq!(lookup(b"set").unwrap().arity(), -3);
        assert_eq!(lookup(b"exec").unwrap().arity(), 1);
    }
}
