//! Builds a `Manifest` from rendered YAML, checking every rule and collecting every
//! problem. The rules mirror the engine's own (docs/api.md) so a lab never fails halfway
//! through `apply` on a name the engine would refuse.

use super::walk::{join, Walker};
use super::*;
use crate::positions::Positions;
use crate::problem::{Pos, Problems};
use serde_yaml::Value;
use std::collections::BTreeMap;

pub const MAX_MEMBERS: usize = 16;
pub const MAX_DATABASES: usize = 64;
pub const MAX_NAMESPACES: usize = 64;
pub const MAX_MAPPINGS: usize = 256;
pub const MAX_DATA: usize = 64;
pub const MAX_GLOBALS: usize = 10_000;
const MAX_FAILOVER: usize = 2;
const MAX_ASYNC: usize = 14;

const TOP: &[&str] = &[
    "lab",
    "target",
    "faults",
    "durability",
    "vars",
    "arbiter",
    "members",
    "databases",
    "namespaces",
    "mirror",
    "data",
    "ecp",
    "remote_databases",
    "users",
    "roles",
    "security",
];

/// Renders and checks `text`; `base` resolves relative seed paths.
pub fn load_str(file: &str, text: &str, base: &Path, inputs: &Inputs) -> Result<Manifest, Problems> {
    let rendered = crate::template::render(text, inputs).map_err(|p| Problems::sorted(file, p))?;
    let value: Value = serde_yaml::from_str(&rendered)
        .map_err(|e| Problems::sorted(file, vec![crate::template::syntax_problem(&e)]))?;
    let positions = Positions::index(&rendered);
    let mut w = Walker { positions: &positions, problems: vec![] };
    let manifest = build(&mut w, &value, base);
    match manifest {
        Some(m) if w.problems.is_empty() => Ok(m),
        _ => Err(Problems::sorted(file, w.problems)),
    }
}

fn build(w: &mut Walker, root: &Value, base: &Path) -> Option<Manifest> {
    let top = w.map(root, "", TOP)?;
    let lab = w.required(top, "", "lab").and_then(|v| w.string(v, "lab"));
    if let Some(l) = &lab {
        let ok = !l.is_empty()
            && l.len() <= 32
            && l.as_bytes()[0].is_ascii_lowercase()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if l == "engine" {
            let pos = w.at_value("lab");
            w.error(
                pos,
                "lab name `engine` is reserved",
                "`.mirrorlab/engine` is the default data directory of `engine start`; pick another name",
            );
        } else if !ok {
            let pos = w.at_value("lab");
            w.error(
                pos,
                format!("lab name {l:?} is not valid"),
                "use 1-32 lower-case letters, digits, - or _, starting with a letter (it names the lab directory)",
            );
        }
    }
    let target = match top.get("target") {
        None | Some(Value::Null) => Some(TargetKind::Local),
        Some(v) => match w.string(v, "target").as_deref() {
            Some("local") => Some(TargetKind::Local),
            Some("docker") => Some(TargetKind::Docker),
            Some("compose") => Some(TargetKind::Compose),
            Some(other) => {
                let pos = w.at_value("target");
                w.error(
                    pos,
                    format!("unknown target `{other}`"),
                    "use `local` (processes on this machine), `docker` (containers) or `compose` (inside a Compose lab)",
                );
                None
            }
            None => None,
        },
    };
    let faults = match top.get("faults") {
        None | Some(Value::Null) => Some(true),
        Some(v) => w.boolean(v, "faults"),
    };
    let durability = match top.get("durability") {
        None | Some(Value::Null) => Some(None),
        Some(v) => match w.string(v, "durability").as_deref() {
            Some("always") => Some(Some(Durability::Always)),
            Some("buffered") => Some(Some(Durability::Buffered)),
            Some(other) => {
                let pos = w.at_value("durability");
                w.error(
                    pos,
                    format!("unknown durability `{other}`"),
                    "use `always` (a write is acknowledged once synced, and confirmed by the backup) or `buffered` (synced within a second: faster, but a failover can lose the last second)",
                );
                None
            }
            None => None,
        },
    };
    let arbiter = match top.get("arbiter") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(Arbiter { port: 0 }),
        Some(v) => w.map(v, "arbiter", &["port"]).map(|m| Arbiter {
            port: m.get("port").and_then(|p| w.integer(p, "arbiter.port", 0, 65535)).unwrap_or(0) as u16,
        }),
    };
    let members = members(w, top, target);
    let databases = databases(w, top, base);
    let known_dbs: Vec<String> = top
        .get("databases")
        .and_then(Value::as_sequence)
        .map(|l| {
            l.iter()
                .filter_map(|e| e.get("name").and_then(Value::as_str))
                .map(str::to_ascii_uppercase)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(["USER".to_string()])
        .collect();
    let mirror = mirror(w, top, &members, arbiter.is_some());
    let mirror_name =
        top.get("mirror").and_then(|m| m.get("name")).and_then(Value::as_str).map(str::to_ascii_uppercase);
    let ecp = super::ecp::ecp(w, top, &members, mirror_name.as_deref());
    let remote_databases = super::ecp::remote_databases(w, top, &ecp, &databases);
    let remote_names: Vec<String> = super::ecp::declared_remote(top);
    let namespaces = namespaces(w, top, &Placement { local: &known_dbs, remote: &remote_names, members: &members });
    // Declared names count even when their entry has other problems: one mistake, one message.
    let declared = |section: &str| -> Vec<String> {
        top.get(section)
            .and_then(Value::as_sequence)
            .map(|l| {
                l.iter().filter_map(|e| e.get("name").and_then(Value::as_str)).map(str::to_ascii_uppercase).collect()
            })
            .unwrap_or_default()
    };
    let known_ns: Vec<String> = declared("namespaces").into_iter().chain(["USER".to_string()]).collect();
    let data = data(w, top, &known_ns);
    super::ecp::data_on_data_members(w, &data, &namespaces, &members);
    let mirror_declared = top.get("mirror").is_some_and(|v| !v.is_null());
    let roles = super::security::roles(w, top);
    let users = super::security::users(w, top, &roles);
    let tls_clients = super::security::tls_clients(w, top);
    if tls_clients == Some(true) && members.iter().any(|m| m.member_type == MemberType::App) {
        // An app server reaches a TLS-only superserver only with the lab CA in its Data
        // Servers entry, which the installer does not give yet: refuse rather than time out.
        let pos = w.at_value("security.tls_clients");
        w.error(
            pos,
            "app members cannot reach data servers whose client ports speak TLS only yet",
            "the installer does not give app members the lab CA for their data servers: set `tls_clients: false` in a lab with app members",
        );
    }
    cross_checks(w, &members, &databases, mirror_declared);
    distinct_ports(w, top);
    Some(Manifest {
        lab: lab?,
        target: target?,
        faults: faults?,
        // What a client was told is written must survive any failover the trainer causes:
        // a lab with a mirror is `always` unless it asks for speed.
        durability: durability?.unwrap_or(if mirror_declared { Durability::Always } else { Durability::Buffered }),
        arbiter,
        members,
        databases,
        namespaces,
        mirror,
        data,
        ecp,
        remote_databases,
        roles,
        users,
        tls_clients: tls_clients?,
    })
}

fn entries<'v>(w: &mut Walker, top: &'v serde_yaml::Mapping, key: &str, max: usize) -> &'v [Value] {
    top.get(key).and_then(|v| w.list(v, key, max)).unwrap_or(&[])
}

/// Engine rule for database and namespace names (ECP data servers and remote databases
/// follow it too).
pub(super) fn engine_name(w: &mut Walker, v: &Value, path: &str, kind: &str) -> Option<String> {
    let name = w.string(v, path)?;
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphabetic();
    if !ok {
        let pos = w.at_value(path);
        w.error(
            pos,
            format!("{kind} name {name:?} is not valid"),
            "use 1-64 letters, digits, _ or -, starting with a letter",
        );
        return None;
    }
    Some(name.to_ascii_uppercase())
}

/// Reports a second definition of a name, pointing at the first.
fn unique(w: &mut Walker, seen: &mut BTreeMap<String, Pos>, name: &str, path: &str, kind: &str) -> bool {
    let pos = w.at_value(path);
    if let Some(first) = seen.get(name) {
        let hint = if kind == "mapping of" {
            format!("{name} is first mapped at line {}; keep one mapping per global", first.line)
        } else {
            format!("{kind} names are case-insensitive; {name} is first defined at line {}", first.line)
        };
        w.error(pos, format!("duplicate {kind} {name}"), hint);
        return false;
    }
    seen.insert(name.to_string(), pos);
    true
}

fn members(w: &mut Walker, top: &serde_yaml::Mapping, target: Option<TargetKind>) -> Vec<Member> {
    let mut out = vec![];
    let mut seen = BTreeMap::new();
    let list = match top.get("members") {
        Some(v) => w.list(v, "members", MAX_MEMBERS).unwrap_or(&[]),
        None => {
            w.required(top, "", "members");
            &[]
        }
    };
    for (i, v) in list.iter().enumerate() {
        let path = format!("members.{i}");
        let Some(m) = w.map(v, &path, &["name", "type", "host", "ports", "primary"]) else { continue };
        let name = w.required(m, &path, "name").and_then(|v| w.string(v, &join(&path, "name")));
        let name = name.and_then(|n| {
            let ok = !n.is_empty() && n.len() <= 32 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                let pos = w.at_value(&join(&path, "name"));
                w.error(pos, format!("member name {n:?} is not valid"), "use 1-32 letters, digits, - or _ (it names the member's directory and is upper-cased in the mirror)");
                return None;
            }
            Some(n.to_ascii_uppercase())
        });
        let member_type = w.required(m, &path, "type").and_then(|v| w.string(v, &join(&path, "type"))).and_then(|t| {
            let found = MemberType::ALL.iter().find(|(s, _)| *s == t).map(|(_, t)| *t);
            if found.is_none() {
                let pos = w.at_value(&join(&path, "type"));
                w.error(
                    pos,
                    format!("unknown member type `{t}`"),
                    "use failover, dr, reporting-ro, reporting-rw, standalone or app (an ECP application server)",
                );
            }
            found
        });
        let host = match m.get("host") {
            None | Some(Value::Null) => Some("127.0.0.1".to_string()),
            Some(v) => w.string(v, &join(&path, "host")),
        };
        if let (Some(h), Some(TargetKind::Local)) = (&host, target) {
            if h != "127.0.0.1" && h != "localhost" {
                let pos = w.at_value(&join(&path, "host"));
                w.error(
                    pos,
                    format!("host `{h}` cannot be used with the local target"),
                    "the local target runs every member on this machine: remove `host` or use 127.0.0.1",
                );
            }
        }
        let ports = match m.get("ports") {
            None | Some(Value::Null) => Some(Ports::default()),
            Some(v) => {
                let pp = join(&path, "ports");
                w.map(v, &pp, &["superserver", "web", "mirror", "agent"]).map(|pm| {
                    let mut port =
                        |k: &str| pm.get(k).and_then(|v| w.integer(v, &join(&pp, k), 0, 65535)).unwrap_or(0) as u16;
                    Ports {
                        superserver: port("superserver"),
                        web: port("web"),
                        mirror: port("mirror"),
                        agent: port("agent"),
                    }
                })
            }
        };
        if let Some(v) = m.get("primary") {
            w.boolean(v, &join(&path, "primary"));
        }
        if member_type == Some(MemberType::App) {
            for k in ["mirror", "agent"] {
                let kp = join(&join(&path, "ports"), k);
                if m.get("ports").and_then(|p| p.get(k)).is_some_and(|v| v.as_u64() != Some(0)) {
                    let pos = w.at_key(&kp);
                    w.error(
                        pos,
                        format!("an app member has no {k} port"),
                        "an app member is an engine outside the mirror, without an agent: give only `superserver` and `web`",
                    );
                }
            }
        }
        if let Some(n) = &name {
            if !unique(w, &mut seen, n, &join(&path, "name"), "member") {
                continue;
            }
        }
        if let (Some(name), Some(member_type), Some(host), Some(ports)) = (name, member_type, host, ports) {
            out.push(Member { name, member_type, host, ports });
        }
    }
    out
}

fn databases(w: &mut Walker, top: &serde_yaml::Mapping, base: &Path) -> Vec<Database> {
    let mut out = vec![];
    let mut seen = BTreeMap::new();
    for (i, v) in entries(w, top, "databases", MAX_DATABASES).iter().enumerate() {
        let path = format!("databases.{i}");
        let Some(m) = w.map(v, &path, &["name", "mirrored", "seed"]) else { continue };
        let name = w.required(m, &path, "name").and_then(|v| engine_name(w, v, &join(&path, "name"), "database"));
        let mirrored = m.get("mirrored").map(|v| w.boolean(v, &join(&path, "mirrored"))).unwrap_or(Some(false));
        let sp = join(&path, "seed");
        let seed = m.get("seed").and_then(|v| w.string(v, &sp)).and_then(|s| seed_path(w, &s, base, &sp));
        if let Some(n) = &name {
            if n == "USER" {
                let pos = w.at_value(&join(&path, "name"));
                w.error(pos, "database USER is built in", "every engine has USER; pick another name");
                continue;
            }
            if !unique(w, &mut seen, n, &join(&path, "name"), "database") {
                continue;
            }
        }
        if let (Some(name), Some(mirrored)) = (name, mirrored) {
            out.push(Database { name, mirrored, seed });
        }
    }
    out
}

/// A seed is a file in the manifest's directory or below it: a manifest from elsewhere
/// must not be able to copy any file this user can read into a lab's database.
fn seed_path(w: &mut Walker, seed: &str, base: &Path, path: &str) -> Option<PathBuf> {
    use std::path::Component;
    let pos = w.at_value(path);
    let hint = "a seed is a file in the manifest's directory or below it: give its path relative to the manifest";
    let p = Path::new(seed);
    if p.is_absolute() || p.components().any(|c| matches!(c, Component::Prefix(_) | Component::RootDir)) {
        w.error(pos, format!("seed path {seed} is absolute"), hint);
        return None;
    }
    if p.components().any(|c| c == Component::ParentDir) {
        w.error(pos, format!("seed path {seed} leaves the manifest's directory (`..`)"), hint);
        return None;
    }
    let full = base.join(p);
    if !full.is_file() {
        w.error(
            pos,
            format!("seed file {} does not exist", full.display()),
            "a seed path is relative to the manifest's directory",
        );
        return None;
    }
    // A symbolic link on the way may still lead out: compare the real paths.
    match (std::fs::canonicalize(&full), std::fs::canonicalize(base)) {
        (Ok(real), Ok(dir)) if real.starts_with(&dir) => Some(full),
        (Ok(_), Ok(_)) => {
            w.error(
                pos,
                format!("seed path {seed} leads out of the manifest's directory through a symbolic link"),
                format!("{hint}; a link may point only inside it"),
            );
            None
        }
        (Err(e), _) | (_, Err(e)) => {
            w.error(pos, format!("cannot resolve seed path {seed}: {e}"), hint);
            None
        }
    }
}

/// What a namespace's databases resolve against, and where.
struct Placement<'a> {
    /// The lab's own databases (and USER).
    local: &'a [String],
    /// The names `remote_databases:` declares.
    remote: &'a [String],
    members: &'a [Member],
}

fn namespaces(w: &mut Walker, top: &serde_yaml::Mapping, place: &Placement) -> Vec<Namespace> {
    let mut out = vec![];
    let mut seen = BTreeMap::new();
    let known = |w: &mut Walker, db: Option<String>, path: &str| -> Option<String> {
        let db = db?;
        if !place.local.contains(&db) && !place.remote.contains(&db) {
            let pos = w.at_value(path);
            let hint = if place.remote.is_empty() {
                format!("declare it under `databases:` (known: {})", place.local.join(", "))
            } else {
                format!(
                    "declare it under `databases:` or `remote_databases:` (known: {}; remote: {})",
                    place.local.join(", "),
                    place.remote.join(", ")
                )
            };
            w.error(pos, format!("unknown database {db}"), hint);
            return None;
        }
        Some(db)
    };
    for (i, v) in entries(w, top, "namespaces", MAX_NAMESPACES).iter().enumerate() {
        let path = format!("namespaces.{i}");
        let Some(m) = w.map(v, &path, &["name", "globals", "mappings", "members"]) else { continue };
        let name = w.required(m, &path, "name").and_then(|v| engine_name(w, v, &join(&path, "name"), "namespace"));
        let gp = join(&path, "globals");
        let globals = w.required(m, &path, "globals").and_then(|v| engine_name(w, v, &gp, "database"));
        let globals = known(w, globals, &gp);
        let mut mappings = vec![];
        let mp = join(&path, "mappings");
        let list = m.get("mappings").and_then(|v| w.list(v, &mp, MAX_MAPPINGS)).unwrap_or(&[]);
        let mut seen_globals = BTreeMap::new();
        for (j, v) in list.iter().enumerate() {
            let p = format!("{mp}.{j}");
            let Some(mm) = w.map(v, &p, &["global", "database"]) else { continue };
            let global = w.required(mm, &p, "global").and_then(|v| w.string(v, &join(&p, "global")));
            let global = global.map(|g| g.strip_prefix('^').unwrap_or(&g).to_string()).and_then(|g| {
                let first = g.chars().next();
                if !first.is_some_and(|c| c.is_ascii_alphabetic() || c == '%') || g.len() > 511 {
                    let pos = w.at_value(&join(&p, "global"));
                    w.error(
                        pos,
                        format!("mapping `{g}` is not a global name, prefix or subscript range"),
                        "write `Company`, `Company*` or `Log(2024):(2025)`",
                    );
                    return None;
                }
                Some(g)
            });
            let dp = join(&p, "database");
            let database = w.required(mm, &p, "database").and_then(|v| engine_name(w, v, &dp, "database"));
            let database = known(w, database, &dp);
            if let Some(g) = &global {
                if !unique(w, &mut seen_globals, g, &join(&p, "global"), "mapping of") {
                    continue;
                }
            }
            if let (Some(global), Some(database)) = (global, database) {
                mappings.push(Mapping { global, database });
            }
        }
        if let Some(n) = &name {
            if n == "USER" {
                let pos = w.at_value(&join(&path, "name"));
                w.error(pos, "namespace USER is built in", "every engine has USER; pick another name");
                continue;
            }
            if !unique(w, &mut seen, n, &join(&path, "name"), "namespace") {
                continue;
            }
        }
        if let (Some(name), Some(globals)) = (name, globals) {
            let mut dbs: Vec<&str> = mappings.iter().map(|x| x.database.as_str()).collect();
            dbs.push(&globals);
            let Some(members) =
                super::ecp::place_namespace(w, m, &path, &name, &dbs, place.local, place.remote, place.members)
            else {
                continue;
            };
            out.push(Namespace { name, globals, mappings, members });
        }
    }
    out
}

fn mirror(w: &mut Walker, top: &serde_yaml::Mapping, members: &[Member], have_arbiter: bool) -> Option<Mirror> {
    let v = top.get("mirror").filter(|v| !v.is_null())?;
    let m = w.map(v, "mirror", &["name", "qos_ms", "arbiter", "primary"])?;
    let name = w.required(m, "mirror", "name").and_then(|v| w.string(v, "mirror.name")).and_then(|n| {
        if n.is_empty() || n.len() > 15 || !n.bytes().all(|b| b.is_ascii_alphanumeric()) {
            let pos = w.at_value("mirror.name");
            w.error(pos, format!("mirror name {n:?} is not valid"), "a mirror name is 1-15 letters or digits");
            return None;
        }
        Some(n.to_ascii_uppercase())
    });
    let qos_ms = m.get("qos_ms").map(|v| w.integer(v, "mirror.qos_ms", 300, 60_000)).unwrap_or(Some(3000));
    let arbiter = match m.get("arbiter") {
        None => Some(have_arbiter),
        Some(v) => w.boolean(v, "mirror.arbiter"),
    };
    if arbiter == Some(true) && !have_arbiter {
        let pos = w.at_value("mirror.arbiter");
        w.error(
            pos,
            "the mirror uses an arbiter but the lab has none",
            "add `arbiter: {}` at the top level, or set `mirror.arbiter: false`",
        );
    }
    // The initial primary: `mirror.primary`, or a member marked `primary: true`.
    let mut flagged: Vec<(usize, String)> = vec![];
    if let Some(list) = top.get("members").and_then(Value::as_sequence) {
        for (i, mv) in list.iter().enumerate() {
            if mv.get("primary").and_then(Value::as_bool) == Some(true) {
                flagged.push((i, mv.get("name").and_then(Value::as_str).unwrap_or("?").to_ascii_uppercase()));
            }
        }
    }
    let named = m.get("primary").and_then(|v| w.string(v, "mirror.primary")).map(|s| s.to_ascii_uppercase());
    let mut candidates: Vec<String> = named.iter().cloned().collect();
    for (i, n) in &flagged {
        if !candidates.contains(n) {
            candidates.push(n.clone());
        } else {
            continue;
        }
        if candidates.len() > 1 {
            let pos = w.at_key(&format!("members.{i}.primary"));
            w.error(
                pos,
                format!("two primaries: {} and {n}", candidates[0]),
                "a mirror starts with exactly one primary: keep one `primary`",
            );
        }
    }
    let primary = match candidates.first() {
        None => {
            let pos = w.at_key("mirror");
            w.error(
                pos,
                "the mirror has no initial primary",
                "add `primary: MEMBER` under `mirror:` (a failover member)",
            );
            None
        }
        Some(p) => match members.iter().find(|m| &m.name == p) {
            Some(m) if m.member_type == MemberType::Failover => Some(p.clone()),
            Some(m) if m.member_type == MemberType::App => {
                let pos = w.at_value("mirror.primary");
                w.error(
                    pos,
                    format!("the initial primary {p} is an app member"),
                    "an app member (ECP application server) is outside the mirror: the first primary must be a failover member",
                );
                None
            }
            Some(m) => {
                let pos = w.at_value("mirror.primary");
                w.error(
                    pos,
                    format!("the initial primary {p} is a {} member", m.member_type.as_str()),
                    "the first primary must be a failover member",
                );
                None
            }
            None => {
                let pos = w.at_value("mirror.primary");
                let known: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
                w.error(
                    pos,
                    format!("unknown member {p}"),
                    format!("the primary must be one of the members: {}", known.join(", ")),
                );
                None
            }
        },
    };
    Some(Mirror { name: name?, qos_ms: qos_ms? as u32, arbiter: arbiter?, primary: primary? })
}

fn data(w: &mut Walker, top: &serde_yaml::Mapping, namespaces: &[String]) -> Vec<Data> {
    let mut out = vec![];
    for (i, v) in entries(w, top, "data", MAX_DATA).iter().enumerate() {
        let path = format!("data.{i}");
        let Some(m) = w.map(v, &path, &["namespace", "script", "globals"]) else { continue };
        let np = join(&path, "namespace");
        let namespace =
            w.required(m, &path, "namespace").and_then(|v| engine_name(w, v, &np, "namespace")).and_then(|n| {
                if !namespaces.contains(&n) {
                    let pos = w.at_value(&np);
                    w.error(
                        pos,
                        format!("unknown namespace {n}"),
                        format!("declare it under `namespaces:` (known: {})", namespaces.join(", ")),
                    );
                    return None;
                }
                Some(n)
            });
        let script = m.get("script").and_then(|v| w.string(v, &join(&path, "script")));
        let mut globals = vec![];
        if let Some(v) = m.get("globals") {
            let gp = join(&path, "globals");
            if let Some(gm) = w.any_map(v, &gp) {
                if gm.len() > MAX_GLOBALS {
                    let pos = w.at_value(&gp);
                    w.error(
                        pos,
                        format!("more than {MAX_GLOBALS} globals"),
                        "load large data with a script or a seed database",
                    );
                }
                for (k, v) in gm.iter().take(MAX_GLOBALS) {
                    let key = k.as_str().unwrap_or_default().to_string();
                    let kp = join(&gp, &key);
                    if !key.starts_with('^') {
                        let pos = w.at_key(&kp);
                        w.error(
                            pos,
                            format!("`{key}` is not a global reference"),
                            "write references like '^Company(1,\"name\")' (quoted)",
                        );
                        continue;
                    }
                    if let Some(val) = w.string(v, &kp) {
                        globals.push((key, val));
                    }
                }
            }
        }
        if !m.contains_key("script") && !m.contains_key("globals") {
            let pos = w.at_key(&path);
            w.error(
                pos,
                "a data entry needs `script` or `globals`",
                "give terminal commands under `script: |` or references under `globals:`",
            );
        }
        if let Some(namespace) = namespace {
            out.push(Data { namespace, script, globals });
        }
    }
    out
}

/// Every fixed port of the lab (each member's four, the arbiter's) is given once: the
/// members and the arbiter all run on this machine, so two of them cannot listen on one
/// port. 0 (chosen free) may repeat.
fn distinct_ports(w: &mut Walker, top: &serde_yaml::Mapping) {
    let mut given: Vec<(String, String)> = vec![];
    if let Some(list) = top.get("members").and_then(Value::as_sequence) {
        for (i, m) in list.iter().enumerate().take(MAX_MEMBERS) {
            let name = m.get("name").and_then(Value::as_str).map(str::to_ascii_uppercase);
            let who = name.map(|n| format!("member {n}")).unwrap_or_else(|| format!("member #{}", i + 1));
            for k in ["superserver", "web", "mirror", "agent"] {
                given.push((format!("members.{i}.ports.{k}"), format!("{who}'s {k} port")));
            }
        }
    }
    given.push(("arbiter.port".to_string(), "the arbiter's port".to_string()));
    let mut fixed: Vec<(Pos, u64, String)> = given
        .into_iter()
        .filter_map(|(path, what)| {
            let port = lookup(top, &path).and_then(Value::as_u64).filter(|p| (1..=65535).contains(p))?;
            Some((w.at_value(&path), port, what))
        })
        .collect();
    // In file order, so the second one written is the one reported.
    fixed.sort_by_key(|(pos, _, _)| *pos);
    let mut seen: BTreeMap<u64, (Pos, String)> = BTreeMap::new();
    for (pos, port, what) in fixed {
        match seen.get(&port) {
            Some((first, first_what)) => w.error(
                pos,
                format!("port {port} is given twice: {what} and {first_what}"),
                format!(
                    "each fixed port of a lab is used once ({first_what} is at line {}); pick another, or 0 to have a free one chosen",
                    first.line
                ),
            ),
            None => drop(seen.insert(port, (pos, what))),
        }
    }
}

/// The node at a dotted path (`members.1.ports.web`).
fn lookup<'v>(top: &'v serde_yaml::Mapping, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut node = top.get(parts.next()?)?;
    for part in parts {
        node = match (node, part.parse::<usize>()) {
            (Value::Sequence(l), Ok(i)) => l.get(i)?,
            (v, _) => v.get(part)?,
        };
    }
    Some(node)
}

/// Rules that need several sections at once.
fn cross_checks(w: &mut Walker, members: &[Member], databases: &[Database], mirror: bool) {
    let count = |t: &[MemberType]| members.iter().filter(|m| t.contains(&m.member_type)).count();
    if !mirror {
        for (i, m) in members.iter().enumerate() {
            if m.member_type.in_mirror() {
                let pos = w.at_value(&format!("members.{i}.type"));
                w.error(
                    pos,
                    format!("member {} is of type {} but the lab has no mirror", m.name, m.member_type.as_str()),
                    "add a `mirror:` section, or use type standalone",
                );
            }
        }
        for (i, d) in databases.iter().enumerate() {
            if d.mirrored {
                let pos = w.at_value(&format!("databases.{i}.mirrored"));
                w.error(
                    pos,
                    format!("database {} is mirrored but the lab has no mirror", d.name),
                    "add a `mirror:` section, or set `mirrored: false`",
                );
            }
        }
    }
    if mirror {
        if count(&[MemberType::Failover]) > MAX_FAILOVER {
            let pos = w.at_key("members");
            w.error(
                pos,
                format!("{} failover members; a mirror has at most {MAX_FAILOVER}", count(&[MemberType::Failover])),
                "make the others dr or reporting members",
            );
        }
        let asyncs = count(&[MemberType::Dr, MemberType::ReportingRo, MemberType::ReportingRw]);
        if asyncs > MAX_ASYNC {
            let pos = w.at_key("members");
            w.error(pos, format!("{asyncs} async members; a mirror has at most {MAX_ASYNC}"), "remove some");
        }
    }
    if members.is_empty() && w.problems.is_empty() {
        let pos = w.at_key("members");
        w.error(pos, "the lab has no members", "add at least one member");
    }
}
