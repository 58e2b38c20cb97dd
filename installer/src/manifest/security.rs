//! The manifest's `roles` and `users`: checked here with the engine's own rules, applied
//! to every member by converge (mirroring does not copy users, so each member needs them).
//!
//! ```yaml
//! roles:
//!   - name: reader
//!     databases: { PHONEBOOK: R }     # R or RW; `*` for every database
//!     privileges: [monitor]           # admin, mirror_operator, monitor
//! users:
//!   - name: alice
//!     password: "{{env.ALICE_PASSWORD}}"   # or password_hash: "$argon2id$..."
//!     roles: [reader, "%DB_USER"]
//! security:
//!   tls_clients: true     # superserver and web port: TLS only, with the lab's certificates
//! ```

use super::walk::{join, Walker};
use engine::security::rights::builtin_role;
use engine::security::{Access, Privilege};
use std::collections::BTreeMap;

pub const MAX_USERS: usize = 64;
pub const MAX_ROLES: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub databases: BTreeMap<String, Access>,
    pub privileges: Vec<Privilege>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub secret: Secret,
    pub roles: Vec<String>,
    pub enabled: bool,
}

/// Never printed: a plan shows what changes, not the password.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("enabled", &self.enabled)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// An argon2id PHC string.
    Hash(String),
}

/// `security.tls_clients` (default false); `None` when it is not a boolean (reported).
pub fn tls_clients(w: &mut Walker, top: &serde_yaml::Mapping) -> Option<bool> {
    let Some(section) = top.get("security").filter(|v| !v.is_null()) else { return Some(false) };
    let m = w.map(section, "security", &["tls_clients"])?;
    match m.get("tls_clients") {
        None | Some(serde_yaml::Value::Null) => Some(false),
        Some(v) => w.boolean(v, "security.tls_clients"),
    }
}

pub fn roles(w: &mut Walker, top: &serde_yaml::Mapping) -> Vec<Role> {
    let mut out: Vec<Role> = vec![];
    let list = top.get("roles").and_then(|v| w.list(v, "roles", MAX_ROLES)).unwrap_or(&[]);
    for (i, v) in list.iter().enumerate() {
        let path = format!("roles.{i}");
        let Some(m) = w.map(v, &path, &["name", "databases", "privileges"]) else { continue };
        let np = join(&path, "name");
        let name = w.required(m, &path, "name").and_then(|v| w.string(v, &np)).and_then(|n| {
            match engine::security::config::check_role_name(&n) {
                Ok(()) => Some(n),
                Err(e) => {
                    let pos = w.at_value(&np);
                    w.error(pos, e, "built-in roles (%All, %Operator, %Monitor, %DB_<NAME>) need no definition");
                    None
                }
            }
        });
        let mut databases = BTreeMap::new();
        let dp = join(&path, "databases");
        if let Some(d) = m.get("databases").and_then(|v| w.any_map(v, &dp)) {
            for (k, v) in d {
                let Some(db) = k.as_str().map(str::to_ascii_uppercase) else { continue };
                let vp = join(&dp, k.as_str().unwrap_or_default());
                match w.string(v, &vp).as_deref() {
                    Some("R") => {
                        databases.insert(db, Access::R);
                    }
                    Some("RW") => {
                        databases.insert(db, Access::RW);
                    }
                    Some(other) => {
                        let pos = w.at_value(&vp);
                        w.error(
                            pos,
                            format!("unknown access `{other}`"),
                            "use R (read globals) or RW (read and write)",
                        );
                    }
                    None => {}
                }
            }
        }
        let mut privileges = vec![];
        let pp = join(&path, "privileges");
        if let Some(l) = m.get("privileges").and_then(|v| w.list(v, &pp, 3)) {
            for (j, v) in l.iter().enumerate() {
                let ip = join(&pp, &j.to_string());
                match w.string(v, &ip).as_deref() {
                    Some("admin") => privileges.push(Privilege::Admin),
                    Some("mirror_operator") => privileges.push(Privilege::MirrorOperator),
                    Some("monitor") => privileges.push(Privilege::Monitor),
                    Some(other) => {
                        let pos = w.at_value(&ip);
                        w.error(pos, format!("unknown privilege `{other}`"), "use admin, mirror_operator or monitor");
                    }
                    None => {}
                }
            }
        }
        privileges.sort();
        privileges.dedup();
        if let Some(name) = name {
            if out.iter().any(|r| r.name == name) {
                let pos = w.at_value(&np);
                w.error(pos, format!("duplicate role {name}"), "define each role once");
                continue;
            }
            out.push(Role { name, databases, privileges });
        }
    }
    out
}

pub fn users(w: &mut Walker, top: &serde_yaml::Mapping, roles: &[Role]) -> Vec<User> {
    let mut out: Vec<User> = vec![];
    let list = top.get("users").and_then(|v| w.list(v, "users", MAX_USERS)).unwrap_or(&[]);
    for (i, v) in list.iter().enumerate() {
        let path = format!("users.{i}");
        let Some(m) = w.map(v, &path, &["name", "password", "password_hash", "roles", "enabled"]) else { continue };
        let np = join(&path, "name");
        let name = w.required(m, &path, "name").and_then(|v| w.string(v, &np)).and_then(|n| {
            if n == crate::credentials::ADMIN_USER {
                let pos = w.at_value(&np);
                w.error(
                    pos,
                    format!("user {n} is the lab's own"),
                    "the installer keeps admin's password in the lab directory; name your users otherwise",
                );
                return None;
            }
            match engine::security::config::check_user_name(&n) {
                Ok(()) => Some(n),
                Err(e) => {
                    let pos = w.at_value(&np);
                    w.error(pos, e, "user names are case-sensitive, as in Redis");
                    None
                }
            }
        });
        let secret = match (m.get("password"), m.get("password_hash")) {
            (Some(p), None) => {
                let pp = join(&path, "password");
                w.string(p, &pp).and_then(|p| match engine::security::password::check_password(&p) {
                    Ok(()) => Some(Secret::Password(p)),
                    Err(e) => {
                        let pos = w.at_value(&pp);
                        w.error(pos, e, "take it from the environment: password: \"{{env.ALICE_PASSWORD}}\"");
                        None
                    }
                })
            }
            (None, Some(h)) => {
                let hp = join(&path, "password_hash");
                w.string(h, &hp).and_then(|h| match engine::security::password::check_hash(&h) {
                    Ok(()) => Some(Secret::Hash(h)),
                    Err(e) => {
                        let pos = w.at_value(&hp);
                        w.error(
                            pos,
                            format!("password_hash: {e}"),
                            "an argon2id PHC string, as GET /api/security/users shows",
                        );
                        None
                    }
                })
            }
            _ => {
                let pos = w.at_key(&path);
                w.error(
                    pos,
                    "a user needs exactly one of `password` and `password_hash`",
                    "password: \"{{env.ALICE_PASSWORD}}\" (from the environment), or password_hash: \"$argon2id$...\"",
                );
                None
            }
        };
        let mut user_roles = vec![];
        let rp = join(&path, "roles");
        if let Some(l) = m.get("roles").and_then(|v| w.list(v, &rp, engine::security::config::MAX_USER_ROLES)) {
            for (j, v) in l.iter().enumerate() {
                let ip = join(&rp, &j.to_string());
                if let Some(r) = w.string(v, &ip) {
                    if builtin_role(&r).is_none() && !roles.iter().any(|x| x.name == r) {
                        let pos = w.at_value(&ip);
                        w.error(
                            pos,
                            format!("role {r} is not defined"),
                            "define it under `roles:`, or use a built-in one: %All, %Operator, %Monitor, %DB_<DATABASE>",
                        );
                    }
                    user_roles.push(r);
                }
            }
        }
        let enabled = m.get("enabled").map(|v| w.boolean(v, &join(&path, "enabled"))).unwrap_or(Some(true));
        if let (Some(name), Some(secret), Some(enabled)) = (name, secret, enabled) {
            if out.iter().any(|u| u.name == name) {
                let pos = w.at_value(&np);
                w.error(pos, format!("duplicate user {name}"), "define each user once");
                continue;
            }
            out.push(User { name, secret, roles: user_roles, enabled });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::manifest::load_str;
    use crate::template::Inputs;
    use std::path::Path;

    const LAB: &str = "lab: t\nmembers:\n  - { name: a, type: standalone }\n";

    fn load(extra: &str) -> Result<crate::manifest::Manifest, String> {
        load_str("m.yaml", &format!("{LAB}{extra}"), Path::new("."), &Inputs::default()).map_err(|p| p.to_string())
    }

    #[test]
    fn tls_clients_is_off_unless_the_manifest_says_so() {
        assert!(!load("").unwrap().tls_clients);
        assert!(!load("security: {}\n").unwrap().tls_clients);
        assert!(!load("security:\n  tls_clients: false\n").unwrap().tls_clients);
        assert!(load("security:\n  tls_clients: true\n").unwrap().tls_clients);
    }

    #[test]
    fn a_wrong_tls_clients_is_refused_at_its_line_and_column() {
        let e = load("security:\n  tls_clients: yes please\n").unwrap_err();
        assert!(e.contains("m.yaml:5:16: error: `security.tls_clients` must be true or false"), "{e}");
        let e = load("security:\n  tls_client: true\n").unwrap_err();
        assert!(e.contains("m.yaml:5:3: error: unknown key `tls_client`"), "{e}");
        assert!(e.contains("did you mean `tls_clients`?"), "{e}");
        let e = load("security: [tls_clients]\n").unwrap_err();
        assert!(e.contains("m.yaml:4:11: error: `security` must be a mapping"), "{e}");
    }
}
