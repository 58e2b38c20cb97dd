//! Users and roles: what the management API (`/api/security/...`) and `engine start
//! --password-file` change. As every admin change: validated, saved to `engine.yaml`, then
//! put in force (`change_config`). Passwords are hashed before the configuration lock is
//! taken (argon2 takes tens of milliseconds).

use super::Instance;
use crate::error::{EngineError, Result};
use crate::security::config::{check_role_name, check_user_name};
use crate::security::{password, RoleConfig, UserConfig, BOOTSTRAP_USER};

/// A user as the API shows it. The hash is shown (to admins only, as every security
/// endpoint is theirs) so that the installer can tell whether a member's password is the
/// manifest's without changing it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub roles: Vec<String>,
    pub enabled: bool,
    pub password_hash: String,
}

/// A request to create or replace a user: `password` (hashed here) or `password_hash`
/// (an argon2id PHC string made elsewhere); neither keeps an existing user's password.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default = "crate::security::config::yes")]
    pub enabled: bool,
}

impl Instance {
    pub fn users(&self) -> Vec<UserInfo> {
        let config = self.security.config();
        config
            .users
            .iter()
            .map(|(name, u)| UserInfo {
                name: name.clone(),
                roles: u.roles.clone(),
                enabled: u.enabled,
                password_hash: u.password_hash.clone(),
            })
            .collect()
    }

    pub fn roles(&self) -> Vec<(String, RoleConfig)> {
        self.security.config().roles.iter().map(|(n, r)| (n.clone(), r.clone())).collect()
    }

    /// Creates or replaces a user. Idempotent.
    pub fn put_user(&self, name: &str, change: UserChange) -> Result<UserInfo> {
        check_user_name(name).map_err(EngineError::Invalid)?;
        let new_hash = match (&change.password, &change.password_hash) {
            (Some(_), Some(_)) => {
                return Err(EngineError::Invalid(format!("user {name}: give password or password_hash, not both")))
            }
            (Some(p), None) => Some(password::hash(p).map_err(|e| EngineError::Invalid(format!("user {name}: {e}")))?),
            (None, Some(h)) => {
                password::check_hash(h)
                    .map_err(|e| EngineError::Invalid(format!("user {name}: password_hash: {e}")))?;
                Some(h.clone())
            }
            (None, None) => None,
        };
        self.change_config(|c| {
            let hash = match new_hash {
                Some(h) => h,
                None => match c.security.users.get(name) {
                    Some(u) => u.password_hash.clone(),
                    None => {
                        return Err(EngineError::Invalid(format!(
                            "user {name} does not exist yet: give it a password (or password_hash)"
                        )))
                    }
                },
            };
            let user = UserConfig { password_hash: hash, roles: change.roles.clone(), enabled: change.enabled };
            c.security.users.insert(name.to_string(), user);
            Ok(())
        })?;
        tracing::info!(user = name, roles = ?change.roles, enabled = change.enabled, "user saved");
        Ok(self.users().into_iter().find(|u| u.name == name).expect("just saved"))
    }

    pub fn delete_user(&self, name: &str) -> Result<()> {
        self.change_config(|c| {
            c.security
                .users
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| EngineError::Invalid(format!("user {name} does not exist")))
        })?;
        tracing::info!(user = name, "user deleted");
        Ok(())
    }

    /// Creates or replaces a role. Idempotent.
    pub fn put_role(&self, name: &str, role: RoleConfig) -> Result<()> {
        check_role_name(name).map_err(EngineError::Invalid)?;
        self.change_config(|c| {
            c.security.roles.insert(name.to_string(), role.clone());
            Ok(())
        })?;
        tracing::info!(role = name, "role saved");
        Ok(())
    }

    pub fn delete_role(&self, name: &str) -> Result<()> {
        self.change_config(|c| {
            if let Some(user) = c.security.users.iter().find(|(_, u)| u.roles.iter().any(|r| r == name)) {
                return Err(EngineError::Invalid(format!(
                    "role {name} is held by user {}: take it away first",
                    user.0
                )));
            }
            c.security
                .roles
                .remove(name)
                .map(|_| ())
                .ok_or_else(|| EngineError::Invalid(format!("role {name} does not exist")))
        })?;
        tracing::info!(role = name, "role deleted");
        Ok(())
    }

    /// `engine start --password-file`: user `admin` gets this password and role `%All`,
    /// before any listener opens (no unauthenticated window). Changes nothing when it
    /// already has them.
    pub fn bootstrap_admin(&self, secret: &str) -> Result<()> {
        let current = self.security.config().users.get(BOOTSTRAP_USER).cloned();
        let holds = |u: &UserConfig| u.enabled && u.roles.iter().any(|r| r == "%All");
        match current {
            Some(u) if holds(&u) && password::verify(&u.password_hash, secret) => Ok(()),
            Some(u) if password::verify(&u.password_hash, secret) => {
                let mut roles = u.roles.clone();
                if !roles.iter().any(|r| r == "%All") {
                    roles.push("%All".into());
                }
                let change =
                    UserChange { password_hash: Some(u.password_hash), roles, enabled: true, ..Default::default() };
                self.put_user(BOOTSTRAP_USER, change).map(|_| ())
            }
            other => {
                let mut roles = other.map(|u| u.roles).unwrap_or_default();
                if !roles.iter().any(|r| r == "%All") {
                    roles.push("%All".into());
                }
                let change =
                    UserChange { password: Some(secret.to_string()), roles, enabled: true, ..Default::default() };
                self.put_user(BOOTSTRAP_USER, change).map(|_| ())
            }
        }
    }
}

/// The password in a password file: its content without one trailing line end; at most
/// 1 KiB, not empty.
pub fn read_password_file(path: &std::path::Path) -> std::result::Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("password file {}: {e}", path.display()))?;
    if meta.len() > password::MAX_PASSWORD_BYTES as u64 + 2 {
        return Err(format!(
            "password file {}: {} bytes, at most {}",
            path.display(),
            meta.len(),
            password::MAX_PASSWORD_BYTES
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("password file {}: {e}", path.display()))?;
    let secret = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    password::check_password(secret).map_err(|e| format!("password file {}: {e}", path.display()))?;
    Ok(secret.to_string())
}
