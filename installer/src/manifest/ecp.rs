//! The ECP sections of a manifest: `ecp:` (the data servers app members use, the limit
//! data servers keep) and `remote_databases:` (a data server's database as app members
//! see it), and where each namespace goes once some databases are remote.
//!
//! The rules are the reference product's: a data server is the lab's mirror (the app
//! member follows its primary, so only mirrored databases are reachable) or one member
//! outside it; an app member is never a data server (no chaining), never in the mirror.

use super::check::engine_name;
use super::walk::{join, Walker};
use super::*;
use serde_yaml::Value;
use std::collections::BTreeMap;

pub const MAX_DATA_SERVERS: usize = 16;
pub const MAX_REMOTE_DATABASES: usize = 64;
/// The engine's range for `ecp.max_app_servers` (the reference's MaxServerConn).
const MAX_APP_SERVERS: u64 = 254;

fn first_at(w: &mut Walker, seen: &mut BTreeMap<String, usize>, name: &str, path: &str, kind: &str) -> bool {
    let pos = w.at_value(path);
    if let Some(line) = seen.get(name) {
        w.error(
            pos,
            format!("duplicate {kind} {name}"),
            format!("{kind} names are case-insensitive; {name} is first defined at line {line}"),
        );
        return false;
    }
    seen.insert(name.to_string(), pos.line);
    true
}

/// The `ecp:` section.
pub fn ecp(w: &mut Walker, top: &serde_yaml::Mapping, members: &[Member], mirror: Option<&str>) -> Ecp {
    let Some(v) = top.get("ecp").filter(|v| !v.is_null()) else { return Ecp::default() };
    let Some(m) = w.map(v, "ecp", &["max_app_servers", "data_servers"]) else { return Ecp::default() };
    let apps = members.iter().filter(|x| x.member_type == MemberType::App).count() as u64;
    let max_app_servers = m.get("max_app_servers").and_then(|v| {
        let n = w.integer(v, "ecp.max_app_servers", 1, MAX_APP_SERVERS)?;
        if n < apps {
            let pos = w.at_value("ecp.max_app_servers");
            w.error(
                pos,
                format!("`ecp.max_app_servers` is {n} but the lab has {apps} app members"),
                format!("a data server refuses app servers past its limit: raise it to at least {apps}"),
            );
        }
        Some(n as u32)
    });
    let mut data_servers = vec![];
    let mut seen = BTreeMap::new();
    let list = m.get("data_servers").and_then(|v| w.list(v, "ecp.data_servers", MAX_DATA_SERVERS)).unwrap_or(&[]);
    for (i, v) in list.iter().enumerate() {
        let path = format!("ecp.data_servers.{i}");
        let Some(d) = w.map(v, &path, &["name", "mirror", "member"]) else { continue };
        let name = w.required(d, &path, "name").and_then(|v| engine_name(w, v, &join(&path, "name"), "data server"));
        let at = match (d.get("mirror").filter(|v| !v.is_null()), d.get("member").filter(|v| !v.is_null())) {
            (Some(_), Some(_)) => {
                let pos = w.at_key(&join(&path, "member"));
                w.error(
                    pos,
                    "a data server is either the mirror or one member",
                    "keep `mirror:` or `member:`, not both",
                );
                None
            }
            (None, None) => {
                let pos = w.at_key(&path);
                w.error(
                    pos,
                    "a data server needs `mirror:` or `member:`",
                    "`mirror: NAME` (the lab's mirror: app members follow its primary) or `member: NAME` (a standalone member)",
                );
                None
            }
            (Some(v), None) => mirror_server(w, v, &join(&path, "mirror"), mirror),
            (None, Some(v)) => member_server(w, v, &join(&path, "member"), members),
        };
        if let Some(n) = &name {
            if !first_at(w, &mut seen, n, &join(&path, "name"), "data server") {
                continue;
            }
        }
        if let (Some(name), Some(at)) = (name, at) {
            data_servers.push(DataServer { name, at });
        }
    }
    Ecp { max_app_servers, data_servers }
}

/// `mirror: NAME` (or `true`): the lab's mirror.
fn mirror_server(w: &mut Walker, v: &Value, path: &str, mirror: Option<&str>) -> Option<DataServerAt> {
    let named = match v {
        Value::Bool(true) => None,
        Value::Bool(false) => {
            let pos = w.at_value(path);
            w.error(pos, "`mirror: false` names no data server", "use `member: NAME` for a member outside the mirror");
            return None;
        }
        other => Some(w.string(other, path)?.to_ascii_uppercase()),
    };
    let Some(lab_mirror) = mirror else {
        let pos = w.at_value(path);
        w.error(
            pos,
            "the data server is a mirror but the lab has none",
            "add a `mirror:` section, or use `member: NAME` for a standalone member",
        );
        return None;
    };
    if let Some(n) = named.filter(|n| n != lab_mirror) {
        let pos = w.at_value(path);
        w.error(pos, format!("unknown mirror {n}"), format!("the lab's mirror is {lab_mirror}"));
        return None;
    }
    Some(DataServerAt::Mirror)
}

/// `member: NAME`: a member outside the mirror that holds data.
fn member_server(w: &mut Walker, v: &Value, path: &str, members: &[Member]) -> Option<DataServerAt> {
    let n = w.string(v, path)?.to_ascii_uppercase();
    let pos = w.at_value(path);
    match members.iter().find(|m| m.name == n) {
        None => {
            let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
            w.error(pos, format!("unknown member {n}"), format!("the lab's members: {}", known.join(", ")));
            None
        }
        Some(m) if m.member_type == MemberType::App => {
            w.error(
                pos,
                format!("member {n} is an app member: it cannot be a data server"),
                "an app server serves no other app server (no chaining): name a standalone member",
            );
            None
        }
        Some(m) if m.member_type.in_mirror() => {
            w.error(
                pos,
                format!("member {n} is a {} member of the mirror", m.member_type.as_str()),
                "a mirror member is reached through the mirror, so app members follow its primary: write `mirror: NAME` instead of `member:`",
            );
            None
        }
        Some(_) => Some(DataServerAt::Member(n)),
    }
}

/// Names `remote_databases:` declares, even from entries with other problems (one
/// mistake, one message).
pub fn declared_remote(top: &serde_yaml::Mapping) -> Vec<String> {
    top.get("remote_databases")
        .and_then(Value::as_sequence)
        .map(|l| l.iter().filter_map(|e| e.get("name").and_then(Value::as_str)).map(str::to_ascii_uppercase).collect())
        .unwrap_or_default()
}

/// The `remote_databases:` section: each names a declared data server and a database that
/// server holds.
pub fn remote_databases(
    w: &mut Walker,
    top: &serde_yaml::Mapping,
    ecp: &Ecp,
    databases: &[Database],
) -> Vec<RemoteDatabase> {
    let mut out = vec![];
    let mut seen = BTreeMap::new();
    // Declared names count even when their entry has other problems: one mistake, one message.
    let declared: Vec<String> = top
        .get("ecp")
        .and_then(|e| e.get("data_servers"))
        .and_then(Value::as_sequence)
        .map(|l| l.iter().filter_map(|e| e.get("name").and_then(Value::as_str)).map(str::to_ascii_uppercase).collect())
        .unwrap_or_default();
    let list =
        top.get("remote_databases").and_then(|v| w.list(v, "remote_databases", MAX_REMOTE_DATABASES)).unwrap_or(&[]);
    for (i, v) in list.iter().enumerate() {
        let path = format!("remote_databases.{i}");
        let Some(m) = w.map(v, &path, &["name", "server", "database"]) else { continue };
        let name = w.required(m, &path, "name").and_then(|v| engine_name(w, v, &join(&path, "name"), "database"));
        let sp = join(&path, "server");
        let server = w.required(m, &path, "server").and_then(|v| engine_name(w, v, &sp, "data server")).and_then(|s| {
            let found = ecp.data_servers.iter().find(|d| d.name == s);
            if found.is_none() && !declared.contains(&s) {
                let pos = w.at_value(&sp);
                let known: Vec<&str> = ecp.data_servers.iter().map(|d| d.name.as_str()).collect();
                let hint = if known.is_empty() {
                    "declare it under `ecp.data_servers:`".to_string()
                } else {
                    format!("declare it under `ecp.data_servers:` (known: {})", known.join(", "))
                };
                w.error(pos, format!("unknown data server {s}"), hint);
            }
            found
        });
        let dp = join(&path, "database");
        let database = match m.get("database").filter(|v| !v.is_null()) {
            Some(v) => engine_name(w, v, &dp, "database"),
            None => name.clone(),
        };
        let held = match (server, &database) {
            (Some(s), Some(db)) => held_by(w, s, db, databases, if m.contains_key("database") { &dp } else { &path }),
            _ => false,
        };
        if let Some(n) = &name {
            if !first_at(w, &mut seen, n, &join(&path, "name"), "remote database") {
                continue;
            }
        }
        if let (Some(name), Some(server), Some(database), true) = (name, server, database, held) {
            out.push(RemoteDatabase { name, server: server.name.clone(), database });
        }
    }
    out
}

/// Whether data server `s` holds database `db`: a mirror only its mirrored databases (the
/// others do not follow the primary), a member every database of the lab and USER.
fn held_by(w: &mut Walker, s: &DataServer, db: &str, databases: &[Database], path: &str) -> bool {
    let found = databases.iter().find(|d| d.name == db);
    let problem = match (&s.at, found) {
        (DataServerAt::Mirror, Some(d)) if d.mirrored => None,
        (DataServerAt::Mirror, Some(_)) => Some((
            format!("database {db} is not mirrored, so data server {} (the mirror) does not hold it", s.name),
            "app members follow the mirror's primary: only a mirrored database is the same there after a failover; set `mirrored: true`".to_string(),
        )),
        (DataServerAt::Member(_), _) if db == "USER" => None,
        (DataServerAt::Member(_), Some(_)) => None,
        (_, None) => {
            let known: Vec<&str> = databases
                .iter()
                .filter(|d| d.mirrored || s.at != DataServerAt::Mirror)
                .map(|d| d.name.as_str())
                .collect();
            Some((
                format!("data server {} has no database {db}", s.name),
                format!(
                    "`database:` names a database of the data server (declared under `databases:`; there: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            ))
        }
    };
    match problem {
        Some((message, hint)) => {
            let pos = if path.ends_with(".database") { w.at_value(path) } else { w.at_key(path) };
            w.error(pos, message, hint);
            false
        }
        None => true,
    }
}

/// Where a namespace goes: `members:` when given (each checked), else every member where
/// all of `dbs` exist. None (with a problem reported) when it can go nowhere.
#[allow(clippy::too_many_arguments)]
pub fn place_namespace(
    w: &mut Walker,
    m: &serde_yaml::Mapping,
    path: &str,
    name: &str,
    dbs: &[&str],
    local: &[String],
    remote: &[String],
    members: &[Member],
) -> Option<Vec<String>> {
    let missing_on = |t: MemberType| -> Vec<&str> {
        dbs.iter()
            .copied()
            .filter(|db| {
                if t == MemberType::App {
                    *db != "USER" && !remote.iter().any(|r| r == db)
                } else {
                    !local.iter().any(|l| l == db)
                }
            })
            .collect()
    };
    let mp = join(path, "members");
    if let Some(v) = m.get("members").filter(|v| !v.is_null()) {
        let list = w.list(v, &mp, super::check::MAX_MEMBERS)?;
        let mut out = vec![];
        for (j, v) in list.iter().enumerate() {
            let p = format!("{mp}.{j}");
            let Some(n) = w.string(v, &p).map(|s| s.to_ascii_uppercase()) else { continue };
            let pos = w.at_value(&p);
            let Some(member) = members.iter().find(|x| x.name == n) else {
                let known: Vec<&str> = members.iter().map(|x| x.name.as_str()).collect();
                w.error(pos, format!("unknown member {n}"), format!("the lab's members: {}", known.join(", ")));
                continue;
            };
            let missing = missing_on(member.member_type);
            if !missing.is_empty() {
                let hint = if member.member_type == MemberType::App {
                    "an app member reaches the lab's databases as remote databases: declare them under `remote_databases:`"
                } else {
                    "remote databases exist only on app members: map this member's globals to the lab's own databases"
                };
                w.error(
                    pos,
                    format!("namespace {name} cannot be created on {n}: it has no database {}", missing.join(", ")),
                    hint,
                );
                continue;
            }
            out.push(n);
        }
        return Some(out);
    }
    let out: Vec<String> =
        members.iter().filter(|x| missing_on(x.member_type).is_empty()).map(|x| x.name.clone()).collect();
    if out.is_empty() && !members.is_empty() {
        let pos = w.at_value(&join(path, "name"));
        let remote_used: Vec<&str> = dbs.iter().copied().filter(|d| remote.iter().any(|r| r == d)).collect();
        let hint = if remote_used.is_empty() || members.iter().any(|x| x.member_type == MemberType::App) {
            "a namespace goes where all its databases are: the lab's own on the data members, remote ones on app members; don't mix the two"
        } else {
            "remote databases exist only on app members: add a member of `type: app`"
        };
        w.error(pos, format!("namespace {name} has its databases on no single member"), hint);
        return None;
    }
    Some(out)
}

/// Initial data is loaded on the members that hold data (the primary, or each standalone
/// member): its namespace must be there.
pub fn data_on_data_members(w: &mut Walker, data: &[Data], namespaces: &[Namespace], members: &[Member]) {
    for (i, d) in data.iter().enumerate() {
        let Some(ns) = namespaces.iter().find(|n| n.name == d.namespace) else { continue };
        let on_data = ns.members.iter().any(|n| members.iter().any(|m| m.name == *n && m.member_type.holds_data()));
        if !on_data {
            let pos = w.at_value(&format!("data.{i}.namespace"));
            w.error(
                pos,
                format!(
                    "namespace {} is only on app members; initial data is loaded on the members that hold data",
                    ns.name
                ),
                "load it through a namespace of the data server (the app members see it remotely)",
            );
        }
    }
}
