//! From a request frame to a typed [`Command`]: the command table (names, arity, key
//! positions, also served by `COMMAND`), argument checks and key parsing. No instance
//! access here, so every rejection is unit-tested without a database.
//!
//! Errors are the RESP error line (without the leading `-`): Redis's own wording for
//! unknown commands and wrong arity, the engine error name first (`SYNTAX ...`,
//! `SUBSCRIPT ...`) for bad references.

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
    spec("set", 3, 3, WRITE, ONE_KEY, "Sets a node: SET ref value"),
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
    spec("durability", 1, 2, CONN, NO_KEYS, "Per-connection durability: always, buffered or default"),
    spec("ping", 1, 2, CONN, NO_KEYS, "PONG, or the message"),
    spec("echo", 2, 2, CONN, NO_KEYS, "Returns the message"),
    spec("hello", 1, ANY, CONN, NO_KEYS, "Handshake: protocol version, AUTH, SETNAME"),
    spec("auth", 2, 3, CONN, NO_KEYS, "Authenticates (no users are configured yet)"),
    spec("client", 2, ANY, CONN, NO_KEYS, "CLIENT SETNAME, GETNAME, ID, INFO, SETINFO"),
    spec("select", 2, 2, CONN, NO_KEYS, "Only database 0: use NAMESPACE to switch"),
    spec("info", 1, ANY, &["loading", "stale"], NO_KEYS, "Server information in Redis INFO format"),
    spec("command", 1, ANY, &["loading", "stale"], NO_KEYS, "Describes the commands"),
    spec("config", 2, ANY, &["admin", "loading", "stale"], NO_KEYS, "CONFIG GET for tools that ask"),
    spec("quit", 1, ANY, CONN, NO_KEYS, "Closes the connection"),
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

/// A checked request, borrowing values from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Set {
        key: GlobalRef,
        value: &'a [u8],
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
        "set" => Command::Set { key: key(arg(1))?, value: arg(2) },
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
        "incrby" => Command::Increment {
            key: key(arg(1))?,
            by: number_arg(arg(2)).ok_or_else(|| CommandError::err("value is not a number"))?,
        },
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
        assert_eq!(p(&["set", "foo", "1"]).unwrap(), Command::Set { key: r("^foo"), value: b"1" });
        assert_eq!(p(&["SeT", "^foo(1,\"a\")", "x"]).unwrap(), Command::Set { key: r("^foo(1,\"a\")"), value: b"x" });
        assert_eq!(err(&["FLY", "x"]), "ERR unknown command 'FLY'");
        assert_eq!(err(&["a\r\nb"]), "ERR unknown command 'a??b'");
    }

    #[test]
    fn arity_is_checked_before_arguments() {
        assert_eq!(err(&["GET"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["get", "a", "b", "c"]), "ERR wrong number of arguments for 'get' command");
        assert_eq!(err(&["SET", "^a(", "1", "2"]), "ERR wrong number of arguments for 'set' command");
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
        assert_eq!(err(&["CLIENT", "KILL"]), "ERR unknown subcommand 'KILL'. Try CLIENT HELP.");
        assert_eq!(p(&["QUIT"]).unwrap(), Command::Quit);
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
    fn the_table_is_consistent() {
        for c in COMMANDS {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(c.min_args >= 1 && c.min_args <= c.max_args, "{}", c.name);
            assert!(std::ptr::eq(lookup(c.name.to_ascii_uppercase().as_bytes()).unwrap(), c));
        }
        assert_eq!(lookup(b"get").unwrap().arity(), -2);
        assert_eq!(lookup(b"set").unwrap().arity(), 3);
    }
}
