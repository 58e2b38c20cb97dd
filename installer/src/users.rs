//! What converge changes so a member has the manifest's roles and users: each read
//! through the member's API and compared, so a plan names exactly what apply changes and
//! a converged member plans nothing. Users and roles the manifest does not name are left
//! alone and not reported (apply only adds and corrects; people add users by hand).

use crate::api::{Api, ApiError};
use crate::manifest::security::{Secret, User};
use crate::manifest::Manifest;
use serde_json::{json, Value};

/// One change: what the plan says, and the PUT that makes it.
pub struct Fix {
    pub step: String,
    pub path: String,
    pub body: Value,
}

/// A GET that answers `None` for 404 (the role or user does not exist there).
fn fetch(api: &Api, path: &str) -> Result<Option<Value>, ApiError> {
    match api.get(path) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The fixes `member` needs; `api` is `None` for a member not started yet (it has none
/// of them).
pub fn fixes(m: &Manifest, api: Option<&Api>) -> Result<Vec<Fix>, ApiError> {
    let mut out = vec![];
    for role in &m.roles {
        let path = format!("/api/security/roles/{}", crate::api::encode(&role.name));
        let body = json!({ "databases": role.databases, "privileges": role.privileges });
        let live = match api {
            Some(a) => fetch(a, &path)?,
            None => None,
        };
        let step = match live {
            None => format!("create role {}", role.name),
            Some(v)
                if v["databases"] == body["databases"] || (v["databases"].is_null() && role.databases.is_empty()) =>
            {
                let same_privileges =
                    v["privileges"] == body["privileges"] || (v["privileges"].is_null() && role.privileges.is_empty());
                if same_privileges {
                    continue;
                }
                format!("correct role {} (privileges)", role.name)
            }
            Some(_) => format!("correct role {} (databases)", role.name),
        };
        out.push(Fix { step, path, body });
    }
    for user in &m.users {
        let path = format!("/api/security/users/{}", crate::api::encode(&user.name));
        let live = match api {
            Some(a) => fetch(a, &path)?,
            None => None,
        };
        let Some(step) = user_step(user, live.as_ref()) else { continue };
        let mut body = json!({ "roles": user.roles, "enabled": user.enabled });
        match &user.secret {
            Secret::Password(p) => body["password"] = json!(p),
            Secret::Hash(h) => body["password_hash"] = json!(h),
        }
        out.push(Fix { step, path, body });
    }
    Ok(out)
}

/// What differs between the manifest's user and the member's (`None`: nothing).
fn user_step(user: &User, live: Option<&Value>) -> Option<String> {
    let Some(v) = live else { return Some(format!("create user {}", user.name)) };
    let mut what = vec![];
    let mut live_roles: Vec<String> = v["roles"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut want_roles = user.roles.clone();
    live_roles.sort();
    want_roles.sort();
    if live_roles != want_roles {
        what.push("roles");
    }
    if v["enabled"].as_bool() != Some(user.enabled) {
        what.push("enabled");
    }
    let hash = v["password_hash"].as_str().unwrap_or_default();
    let same_secret = match &user.secret {
        // The member's salted hash is checked against the manifest's password (argon2).
        Secret::Password(p) => engine::security::password::verify(hash, p),
        Secret::Hash(h) => h == hash,
    };
    if !same_secret {
        what.push("password");
    }
    (!what.is_empty()).then(|| format!("correct user {} ({})", user.name, what.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(secret: Secret) -> User {
        User { name: "alice".into(), secret, roles: vec!["reader".into(), "%DB_USER".into()], enabled: true }
    }

    #[test]
    fn a_user_differs_by_roles_enabled_or_password_only() {
        let hash = engine::security::password::hash("pw").unwrap();
        let live = json!({ "name": "alice", "roles": ["%DB_USER", "reader"], "enabled": true, "password_hash": hash });
        assert_eq!(user_step(&user(Secret::Password("pw".into())), Some(&live)), None);
        assert_eq!(user_step(&user(Secret::Hash(hash.clone())), Some(&live)), None);
        assert_eq!(
            user_step(&user(Secret::Password("other".into())), Some(&live)).unwrap(),
            "correct user alice (password)"
        );
        let mut changed = live.clone();
        changed["roles"] = json!(["reader"]);
        changed["enabled"] = json!(false);
        assert_eq!(
            user_step(&user(Secret::Password("pw".into())), Some(&changed)).unwrap(),
            "correct user alice (roles, enabled)"
        );
        assert_eq!(user_step(&user(Secret::Password("pw".into())), None).unwrap(), "create user alice");
    }
}
