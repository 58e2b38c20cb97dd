//! What a user may do: roles resolved into [`Rights`], and the checks every command and
//! endpoint makes.
//!
//! Invariant: rights only ever come from [`Rights::open`] (no users configured: today's
//! open engine) or [`resolve`] of a user's roles; `admin` implies every other right.

use super::config::SecurityConfig;
use crate::error::EngineError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Access to one database's globals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Access {
    /// Read globals.
    R,
    /// Read and write globals.
    RW,
}

/// Rights beyond globals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// Everything: users and roles, databases, namespaces, settings, freeze, every
    /// database's globals, and what the other privileges allow.
    Admin,
    /// Mirror actions and configuration (failover, no failover, promote, ...), plus monitor.
    MirrorOperator,
    /// Read status: instance, journal, mirror status, metrics, client list.
    Monitor,
}

impl Privilege {
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Admin => "admin",
            Privilege::MirrorOperator => "mirror_operator",
            Privilege::Monitor => "monitor",
        }
    }
}

/// What a built-in role grants: a database's access (`%DB_<NAME>`), and privileges.
pub type BuiltinGrant = (Option<(String, Access)>, Vec<Privilege>);

/// The built-in roles, as in the reference product: `%All` (admin), `%Operator` (mirror
/// operator), `%Monitor`, and `%DB_<NAME>` (read-write on database NAME).
pub fn builtin_role(name: &str) -> Option<BuiltinGrant> {
    match name {
        "%All" => Some((None, vec![Privilege::Admin])),
        "%Operator" => Some((None, vec![Privilege::MirrorOperator])),
        "%Monitor" => Some((None, vec![Privilege::Monitor])),
        _ => {
            let db = name.strip_prefix("%DB_")?;
            let valid = crate::instance::config::normalize_name("database", db).is_ok_and(|n| n == db);
            valid.then(|| (Some((db.to_string(), Access::RW)), vec![]))
        }
    }
}

/// One connection's or request's rights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rights {
    /// `None`: no users are configured, nobody authenticated, everything is allowed.
    pub user: Option<String>,
    privileges: Vec<Privilege>,
    /// Access to every database (`*` in a role).
    all_databases: Option<Access>,
    databases: BTreeMap<String, Access>,
}

impl Rights {
    /// No users configured: everything, as before users existed.
    pub fn open() -> Rights {
        Rights {
            user: None,
            privileges: vec![Privilege::Admin],
            all_databases: Some(Access::RW),
            databases: BTreeMap::new(),
        }
    }

    /// Users exist and nobody authenticated yet: nothing is allowed.
    pub fn nobody() -> Rights {
        Rights {
            user: Some("(not authenticated)".into()),
            privileges: vec![],
            all_databases: None,
            databases: BTreeMap::new(),
        }
    }

    pub fn has(&self, p: Privilege) -> bool {
        let admin = self.privileges.contains(&Privilege::Admin);
        admin
            || self.privileges.contains(&p)
            || (p == Privilege::Monitor && self.privileges.contains(&Privilege::MirrorOperator))
    }

    /// The access to database `db`'s globals, if any.
    pub fn database(&self, db: &str) -> Option<Access> {
        if self.has(Privilege::Admin) {
            return Some(Access::RW);
        }
        self.all_databases.max(self.databases.get(db).copied())
    }

    fn who(&self) -> &str {
        self.user.as_deref().unwrap_or("default")
    }

    /// Refuses a read (`write` false) or write of database `db`'s globals without the access.
    pub fn check_database(&self, db: &str, write: bool) -> Result<(), EngineError> {
        match (self.database(db), write) {
            (Some(Access::RW), _) | (Some(Access::R), false) => Ok(()),
            (Some(Access::R), true) => Err(EngineError::NoPermission(format!(
                "user {} may only read database {db} (its roles grant R, writing needs RW)",
                self.who()
            ))),
            (None, _) => Err(EngineError::NoPermission(format!("user {} has no access to database {db}", self.who()))),
        }
    }

    /// Refuses an action that needs privilege `p`.
    pub fn check(&self, p: Privilege, action: &str) -> Result<(), EngineError> {
        if self.has(p) {
            Ok(())
        } else {
            Err(EngineError::NoPermission(format!(
                "user {} may not {action}: that needs the {} privilege (a role such as {})",
                self.who(),
                p.name(),
                match p {
                    Privilege::Admin => "%All",
                    Privilege::MirrorOperator => "%Operator",
                    Privilege::Monitor => "%Monitor",
                }
            )))
        }
    }
}

/// The rights of `user` under `config`: the union of its roles. `None` when the user does
/// not exist or is disabled.
pub fn resolve(config: &SecurityConfig, user: &str) -> Option<Rights> {
    let u = config.users.get(user).filter(|u| u.enabled)?;
    let mut rights =
        Rights { user: Some(user.to_string()), privileges: vec![], all_databases: None, databases: BTreeMap::new() };
    for role in &u.roles {
        if let Some((db, privileges)) = builtin_role(role) {
            if let Some((db, access)) = db {
                grant(&mut rights, &db, access);
            }
            rights.privileges.extend(privileges);
        } else if let Some(r) = config.roles.get(role) {
            for (db, access) in &r.databases {
                grant(&mut rights, db, *access);
            }
            rights.privileges.extend(r.privileges.iter().copied());
        }
    }
    rights.privileges.sort();
    rights.privileges.dedup();
    Some(rights)
}

fn grant(rights: &mut Rights, db: &str, access: Access) {
    if db == "*" {
        rights.all_databases = rights.all_databases.max(Some(access));
    } else {
        let slot = rights.databases.entry(db.to_string()).or_insert(access);
        *slot = (*slot).max(access);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::config::{RoleConfig, UserConfig};

    fn config() -> SecurityConfig {
        let user = |roles: &[&str]| UserConfig {
            password_hash: String::new(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            enabled: true,
        };
        let mut c = SecurityConfig::default();
        c.roles.insert(
            "reader".into(),
            RoleConfig { databases: BTreeMap::from([("USER".into(), Access::R)]), privileges: vec![] },
        );
        c.roles.insert(
            "everything_read".into(),
            RoleConfig { databases: BTreeMap::from([("*".into(), Access::R)]), privileges: vec![Privilege::Monitor] },
        );
        c.users.insert("admin".into(), user(&["%All"]));
        c.users.insert("ro".into(), user(&["reader"]));
        c.users.insert("mixed".into(), user(&["reader", "%DB_USER", "everything_read"]));
        c.users.insert("op".into(), user(&["%Operator"]));
        c.users.insert("off".into(), UserConfig { enabled: false, ..user(&["%All"]) });
        c
    }

    #[test]
    fn a_read_only_role_reads_but_cannot_write_and_says_why() {
        let r = resolve(&config(), "ro").unwrap();
        assert!(r.check_database("USER", false).is_ok());
        let e = r.check_database("USER", true).unwrap_err();
        assert_eq!(e.code(), "NOPERM");
        assert!(e.to_string().contains("user ro may only read database USER"), "{e}");
        assert!(r.check_database("OTHER", false).unwrap_err().to_string().contains("no access to database OTHER"));
        assert!(r.check(Privilege::Monitor, "read status").is_err());
    }

    #[test]
    fn roles_add_up_and_the_strongest_access_wins() {
        let r = resolve(&config(), "mixed").unwrap();
        assert_eq!(r.database("USER"), Some(Access::RW));
        assert_eq!(r.database("ANY"), Some(Access::R));
        assert!(r.has(Privilege::Monitor) && !r.has(Privilege::MirrorOperator) && !r.has(Privilege::Admin));
    }

    #[test]
    fn admin_implies_everything_and_operator_implies_monitor() {
        let a = resolve(&config(), "admin").unwrap();
        assert!(a.has(Privilege::MirrorOperator) && a.has(Privilege::Monitor));
        assert_eq!(a.database("ANY"), Some(Access::RW));
        let op = resolve(&config(), "op").unwrap();
        assert!(op.has(Privilege::Monitor) && op.has(Privilege::MirrorOperator));
        let e = op.check(Privilege::Admin, "manage users").unwrap_err().to_string();
        assert!(e.contains("user op may not manage users") && e.contains("%All"), "{e}");
        assert_eq!(op.database("USER"), None);
        assert!(Rights::open().has(Privilege::Admin));
    }

    #[test]
    fn unknown_and_disabled_users_have_no_rights() {
        assert!(resolve(&config(), "nobody").is_none());
        assert!(resolve(&config(), "off").is_none());
    }

    #[test]
    fn builtin_database_roles_need_a_valid_upper_case_name() {
        assert_eq!(builtin_role("%DB_USER").unwrap().0, Some(("USER".into(), Access::RW)));
        assert!(builtin_role("%DB_user").is_none());
        assert!(builtin_role("%DB_").is_none());
        assert!(builtin_role("%Nothing").is_none());
    }
}
