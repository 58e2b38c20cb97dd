//! Users and roles as `engine.yaml` holds them (section `security`).
//!
//! Invariant: a validated [`SecurityConfig`] has well-formed user and role names, every
//! password as an argon2id PHC string (never plaintext), and every role a user names
//! exists (built in or defined here).

use super::rights::{builtin_role, Access, Privilege};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most users and roles one engine keeps (a lab, not a directory service).
pub const MAX_USERS: usize = 256;
pub const MAX_ROLES: usize = 256;
/// Most roles one user holds, most database grants one role holds.
pub const MAX_USER_ROLES: usize = 32;
pub const MAX_ROLE_DATABASES: usize = 256;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// By user name (case-sensitive, as in Redis).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, UserConfig>,
    /// Roles defined here; the built-in ones (`%All`, `%Operator`, `%Monitor`,
    /// `%DB_<NAME>`) are never stored.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, RoleConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// argon2id PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
    pub password_hash: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A disabled user cannot authenticate (Redis's `off`).
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// `true`, for `#[serde(default = ...)]` of a flag that is on unless said otherwise.
pub(crate) fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RoleConfig {
    /// Database name (upper case) or `*` (every database) -> `R` or `RW`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub databases: BTreeMap<String, Access>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub privileges: Vec<Privilege>,
}

impl SecurityConfig {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.roles.is_empty()
    }

    /// Whether connections must authenticate: once any user exists.
    pub fn auth_required(&self) -> bool {
        !self.users.is_empty()
    }

    /// Every rule of the module invariant; the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.users.len() > MAX_USERS {
            return Err(format!("security: {} users, at most {MAX_USERS}", self.users.len()));
        }
        if self.roles.len() > MAX_ROLES {
            return Err(format!("security: {} roles, at most {MAX_ROLES}", self.roles.len()));
        }
        for (name, role) in &self.roles {
            check_role_name(name)?;
            if role.databases.len() > MAX_ROLE_DATABASES {
                return Err(format!("role {name}: at most {MAX_ROLE_DATABASES} databases"));
            }
            for db in role.databases.keys() {
                let ok = db == "*" || crate::instance::config::normalize_name("database", db).is_ok_and(|n| n == *db);
                if !ok {
                    return Err(format!("role {name}: database {db:?} is not an upper-case database name or `*`"));
                }
            }
        }
        for (name, user) in &self.users {
            check_user_name(name)?;
            super::password::check_hash(&user.password_hash).map_err(|e| format!("user {name}: password_hash: {e}"))?;
            if user.roles.len() > MAX_USER_ROLES {
                return Err(format!("user {name}: at most {MAX_USER_ROLES} roles"));
            }
            for role in &user.roles {
                if builtin_role(role).is_none() && !self.roles.contains_key(role) {
                    return Err(format!(
                        "user {name}: role {role} does not exist (built in: %All, %Operator, %Monitor, %DB_<DATABASE>)"
                    ));
                }
            }
        }
        // Without an enabled admin nobody could ever change users again.
        let admin = self.users.keys().any(|u| super::rights::resolve(self, u).is_some_and(|r| r.has(Privilege::Admin)));
        if !self.users.is_empty() && !admin {
            return Err(
                "security: no enabled user would have the admin privilege (role %All or a role with `admin`), so nobody could manage users any more".into(),
            );
        }
        Ok(())
    }
}

/// User names: 1-64 of letters, digits, `_ . - @`.
pub fn check_user_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!("user name {name:?} is not valid: use 1-64 letters, digits, _ . - or @"))
    }
}

/// Role names: 1-64 of letters, digits, `_ -`, starting with a letter (`%` is kept for the
/// built-in roles).
pub fn check_role_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphabetic()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "role name {name:?} is not valid: use 1-64 letters, digits, _ or -, starting with a letter (names starting with % are built in)"
        ))
    }
}
