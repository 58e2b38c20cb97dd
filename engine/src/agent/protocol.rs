//! The agent's commands: RESP frames to typed requests, with every argument checked here.
//!
//! Command and subcommand names are case-insensitive; names and reasons are taken as
//! given. An `Err` is the complete error line to send (`ERR ...`, `SYNTAX ...`).

use super::journal_ranges::MAX_RANGE_RECORDS;
use crate::journal::record::Position;
use crate::resp::codec::{CodecLimits, Frame};

/// Request limits: the agent's commands are short, so its requests are small.
pub const LIMITS: CodecLimits =
    CodecLimits { max_args: 256, max_bulk_len: 4 * 1024, max_inline_len: 16 * 1024, max_request_len: 64 * 1024 };

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Ping(Option<Vec<u8>>),
    /// `HELLO [2]`: the agent speaks RESP2 only.
    Hello(Option<u8>),
    Quit,
    ClientSetName(String),
    ClientGetName,
    AgentVersion,
    AgentStatus,
    AgentFence {
        reason: String,
    },
    JournalRange {
        from: Position,
        max_records: u32,
    },
    ArbiterHello {
        mirror: String,
        member: String,
    },
    ArbiterPing {
        mirror: String,
        member: String,
    },
    ArbiterSees {
        mirror: String,
        member: String,
    },
    ArbiterStatus,
    /// A failover decision request of a mirror member (the failover core's arbiter).
    ArbiterAsk(ArbiterAsk),
    FaultDrop(Vec<String>),
    FaultHeal,
    FaultList,
}

/// `ARBITER ASK mirror member failover_members qos_ms PING epoch primary eligible mode_seq`
/// or `ARBITER ASK mirror member failover_members qos_ms TAKEOVER epoch`. Members are the
/// indexes of the mirror configuration; `failover_members` is a comma list; `eligible` is
/// an index or `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArbiterAsk {
    pub mirror: String,
    pub member: u8,
    pub failover_members: Vec<u8>,
    pub qos_ms: u64,
    pub request: crate::mirror::failover::ArbiterRequest,
}

fn parse_ask(frame: &Frame, n: usize) -> Result<ArbiterAsk, String> {
    use crate::mirror::failover::{ArbiterRequest, MemberId};
    let bad = || {
        "ERR usage: ARBITER ASK mirror member failover_members qos_ms PING epoch primary eligible mode_seq | TAKEOVER epoch".to_string()
    };
    if n < 8 {
        return Err(bad());
    }
    let mirror = text(frame.arg(2), "the mirror name")?;
    let member = uint::<u8>(frame.arg(3), "the member index")?;
    let failover_members = String::from_utf8_lossy(frame.arg(4))
        .split(',')
        .map(|m| m.parse::<u8>().map_err(|_| bad()))
        .collect::<Result<Vec<_>, _>>()?;
    let qos_ms = uint::<u64>(frame.arg(5), "qos_ms")?;
    let epoch = uint::<u64>(frame.arg(7), "the epoch")?;
    let request = match (upper(frame.arg(6)).as_str(), n) {
        ("PING", 11) => ArbiterRequest::Ping {
            epoch,
            primary: uint::<u8>(frame.arg(8), "primary")? != 0,
            eligible: match frame.arg(9) {
                b"-" => None,
                id => Some(MemberId(uint::<u8>(id, "eligible")?)),
            },
            mode_seq: uint::<u64>(frame.arg(10), "mode_seq")?,
        },
        ("TAKEOVER", 8) => ArbiterRequest::Takeover { epoch },
        _ => return Err(bad()),
    };
    if member >= crate::mirror::failover::MAX_MEMBERS || failover_members.len() > 2 {
        return Err(bad());
    }
    Ok(ArbiterAsk { mirror, member, failover_members, qos_ms, request })
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}

fn text(arg: &[u8], what: &str) -> Result<String, String> {
    String::from_utf8(arg.to_vec()).map_err(|_| format!("ERR {what} must be UTF-8 text"))
}

fn wrong_args(name: &str) -> String {
    format!("ERR wrong number of arguments for '{}' command", name.to_ascii_lowercase())
}

fn uint<T: std::str::FromStr>(arg: &[u8], what: &str) -> Result<T, String> {
    std::str::from_utf8(arg)
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("ERR {what} must be a non-negative integer, got '{}'", String::from_utf8_lossy(arg)))
}

/// Parses one request frame (never empty).
pub fn parse(frame: &Frame) -> Result<Request, String> {
    let n = frame.len();
    let name = upper(frame.arg(0));
    let sub = if n > 1 { upper(frame.arg(1)) } else { String::new() };
    let full = format!("{name} {sub}");
    let two = |f: fn(String, String) -> Request| -> Result<Request, String> {
        if n != 4 {
            return Err(wrong_args(&full));
        }
        Ok(f(text(frame.arg(2), "the mirror name")?, text(frame.arg(3), "the member name")?))
    };
    match name.as_str() {
        "PING" => match n {
            1 => Ok(Request::Ping(None)),
            2 => Ok(Request::Ping(Some(frame.arg(1).to_vec()))),
            _ => Err(wrong_args("ping")),
        },
        "HELLO" => match n {
            1 => Ok(Request::Hello(None)),
            _ => match frame.arg(1) {
                b"2" if n == 2 => Ok(Request::Hello(Some(2))),
                b"2" => Err("ERR the agent takes no HELLO options (no authentication, no client name here)".into()),
                _ => Err("NOPROTO the agent speaks RESP2 only: send HELLO 2 or nothing".into()),
            },
        },
        "QUIT" => Ok(Request::Quit),
        "CLIENT" => match sub.as_str() {
            "SETNAME" if n == 3 => Ok(Request::ClientSetName(text(frame.arg(2), "the client name")?)),
            "GETNAME" if n == 2 => Ok(Request::ClientGetName),
            "SETNAME" | "GETNAME" => Err(wrong_args(&full)),
            _ => Err(format!("ERR unknown subcommand '{sub}' of CLIENT: the agent knows SETNAME and GETNAME")),
        },
        "AGENT" => match sub.as_str() {
            "VERSION" if n == 2 => Ok(Request::AgentVersion),
            "STATUS" if n == 2 => Ok(Request::AgentStatus),
            "FENCE" if n <= 3 => Ok(Request::AgentFence {
                reason: if n == 3 { text(frame.arg(2), "the reason")? } else { "no reason given".into() },
            }),
            "VERSION" | "STATUS" | "FENCE" => Err(wrong_args(&full)),
            _ => Err(format!("ERR unknown subcommand '{sub}' of AGENT: use VERSION, STATUS or FENCE")),
        },
        "JOURNAL" => match sub.as_str() {
            "RANGE" if n == 3 || n == 4 => {
                let from = uint(frame.arg(2), "the start position")?;
                let max_records = if n == 4 { uint::<u32>(frame.arg(3), "max_records")? } else { MAX_RANGE_RECORDS };
                if max_records == 0 || max_records > MAX_RANGE_RECORDS {
                    return Err(format!("ERR max_records must be 1 to {MAX_RANGE_RECORDS}, got {max_records}"));
                }
                Ok(Request::JournalRange { from, max_records })
            }
            "RANGE" => Err(wrong_args(&full)),
            _ => Err(format!("ERR unknown subcommand '{sub}' of JOURNAL: use RANGE")),
        },
        "ARBITER" => match sub.as_str() {
            "HELLO" => two(|mirror, member| Request::ArbiterHello { mirror, member }),
            "PING" => two(|mirror, member| Request::ArbiterPing { mirror, member }),
            "SEES" => two(|mirror, member| Request::ArbiterSees { mirror, member }),
            "STATUS" if n == 2 => Ok(Request::ArbiterStatus),
            "STATUS" => Err(wrong_args(&full)),
            "ASK" => parse_ask(frame, n).map(Request::ArbiterAsk),
            _ => Err(format!("ERR unknown subcommand '{sub}' of ARBITER: use HELLO, PING, SEES, STATUS or ASK")),
        },
        "FAULT" => match sub.as_str() {
            "DROP" if n >= 3 => {
                Ok(Request::FaultDrop((2..n).map(|i| text(frame.arg(i), "a peer name")).collect::<Result<_, _>>()?))
            }
            "HEAL" if n == 2 => Ok(Request::FaultHeal),
            "LIST" if n == 2 => Ok(Request::FaultList),
            "DROP" | "HEAL" | "LIST" => Err(wrong_args(&full)),
            _ => Err(format!("ERR unknown subcommand '{sub}' of FAULT: use DROP, HEAL or LIST")),
        },
        _ => Err(format!(
            "ERR unknown command '{}': the agent knows PING, HELLO, QUIT, CLIENT, AGENT, JOURNAL, ARBITER and FAULT",
            String::from_utf8_lossy(frame.arg(0)).chars().take(64).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Request, String> {
        parse(&Frame::from_args(args))
    }

    #[test]
    fn commands_parse_case_insensitively() {
        assert_eq!(p(&["ping"]), Ok(Request::Ping(None)));
        assert_eq!(p(&["agent", "status"]), Ok(Request::AgentStatus));
        assert_eq!(p(&["AGENT", "FENCE"]), Ok(Request::AgentFence { reason: "no reason given".into() }));
        assert_eq!(
            p(&["AGENT", "FENCE", "backup took over"]),
            Ok(Request::AgentFence { reason: "backup took over".into() })
        );
        assert_eq!(
            p(&["journal", "range", "5"]),
            Ok(Request::JournalRange { from: 5, max_records: MAX_RANGE_RECORDS })
        );
        assert_eq!(p(&["JOURNAL", "RANGE", "5", "10"]), Ok(Request::JournalRange { from: 5, max_records: 10 }));
        assert_eq!(
            p(&["arbiter", "hello", "M", "A"]),
            Ok(Request::ArbiterHello { mirror: "M".into(), member: "A".into() })
        );
        assert_eq!(p(&["FAULT", "DROP", "A", "B"]), Ok(Request::FaultDrop(vec!["A".into(), "B".into()])));
        assert_eq!(p(&["HELLO", "2"]), Ok(Request::Hello(Some(2))));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        assert!(p(&["JOURNAL", "RANGE", "-1"]).unwrap_err().contains("non-negative integer"));
        assert!(p(&["JOURNAL", "RANGE", "1", "0"]).unwrap_err().contains("1 to 10000"));
        assert!(p(&["JOURNAL", "RANGE", "1", "10001"]).unwrap_err().contains("1 to 10000"));
        assert_eq!(
            p(&["ARBITER", "PING", "M"]).unwrap_err(),
            "ERR wrong number of arguments for 'arbiter ping' command"
        );
        assert!(p(&["FAULT", "DROP"]).unwrap_err().starts_with("ERR wrong number"));
        assert!(p(&["HELLO", "3"]).unwrap_err().starts_with("NOPROTO"));
        assert!(p(&["SET", "a", "b"]).unwrap_err().starts_with("ERR unknown command 'SET'"));
        assert!(p(&["AGENT", "REBOOT"]).unwrap_err().contains("use VERSION, STATUS or FENCE"));
    }
}
