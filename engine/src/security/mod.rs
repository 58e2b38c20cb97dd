//! Users, roles and authentication (docs/design/security.md, "Users and roles").
//!
//! Invariants:
//! - *No users configured is the open engine of before*: every check passes
//!   ([`rights::Rights::open`]); once one user exists every connection and request
//!   authenticates first, except the few endpoints the design lists as open.
//! - *Plaintext passwords live only for the call that checks them*: configuration holds
//!   argon2id hashes; the cache of verified credentials holds keyed hashes under a key
//!   drawn at start and never written anywhere.
//! - *Every failed authentication is logged and answered no sooner than
//!   [`FAILED_AUTH_DELAY`]*, and at most [`MAX_VERIFYING`] argon2 checks run at once, so
//!   guessing runs far below wire speed.

pub mod config;
mod credentials;
pub mod password;
pub mod rights;
mod sessions;

pub use config::{RoleConfig, SecurityConfig, UserConfig};
pub use rights::{Access, Privilege, Rights};
pub use sessions::SESSION_TTL;

use parking_lot::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A failed authentication is answered after this long.
pub const FAILED_AUTH_DELAY: Duration = Duration::from_secs(1);
/// argon2 verifications running at once (each takes tens of milliseconds and 19 MiB).
pub const MAX_VERIFYING: usize = 4;
/// The user `engine start --password-file` creates or updates, with role `%All`.
pub const BOOTSTRAP_USER: &str = "admin";
/// The user `AUTH <password>` (no user name) authenticates when it exists; otherwise
/// [`BOOTSTRAP_USER`] (so `redis-cli -a <lab password>` works).
pub const DEFAULT_USER: &str = "default";

/// Why an authentication failed (one answer for every reason, as in Redis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailed;

/// The users and roles in force, and what remembers verified credentials.
pub struct Security {
    config: RwLock<Arc<SecurityConfig>>,
    /// Raised at every change: connections re-read their rights, caches are dropped.
    generation: AtomicU64,
    verified: credentials::Verified,
    sessions: sessions::Sessions,
    verifying: tokio::sync::Semaphore,
}

impl Security {
    pub fn new(config: SecurityConfig) -> Security {
        Security {
            config: RwLock::new(Arc::new(config)),
            generation: AtomicU64::new(1),
            verified: credentials::Verified::new(),
            sessions: sessions::Sessions::default(),
            verifying: tokio::sync::Semaphore::new(MAX_VERIFYING),
        }
    }

    /// Whether clients must authenticate (any user exists).
    pub fn required(&self) -> bool {
        self.config.read().auth_required()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn config(&self) -> Arc<SecurityConfig> {
        self.config.read().clone()
    }

    /// Puts a new (validated, saved) configuration in force.
    pub(crate) fn replace(&self, next: SecurityConfig) {
        let mut current = self.config.write();
        for (name, old) in &current.users {
            let same = next.users.get(name).is_some_and(|u| u.password_hash == old.password_hash && u.enabled);
            if !same {
                self.sessions.forget_user(name);
            }
        }
        *current = Arc::new(next);
        self.verified.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The rights of an authenticated user now; `None` once it is gone or disabled.
    /// Without users, the open rights.
    pub fn rights_of(&self, user: Option<&str>) -> Option<Rights> {
        let config = self.config();
        if !config.auth_required() {
            return Some(Rights::open());
        }
        rights::resolve(&config, user?)
    }

    /// The user `AUTH <password>` means.
    pub fn default_user(&self) -> &'static str {
        if self.config.read().users.contains_key(DEFAULT_USER) {
            DEFAULT_USER
        } else {
            BOOTSTRAP_USER
        }
    }

    /// Checks a user name and password (blocking: argon2 unless cached).
    pub fn verify_blocking(&self, user: &str, password: &str) -> Result<Rights, AuthFailed> {
        let generation = self.generation();
        if self.verified.contains(user, password, generation) {
            return self.rights_of(Some(user)).ok_or(AuthFailed);
        }
        let config = self.config();
        let Some(user_config) = config.users.get(user).filter(|u| u.enabled) else {
            // As long as a wrong password takes: the time tells nothing of which users exist.
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let dummy = DUMMY.get_or_init(|| password::hash("no user has this password").unwrap_or_default());
            let _ = password::verify(dummy, password);
            return Err(AuthFailed);
        };
        if !password::verify(&user_config.password_hash, password) {
            return Err(AuthFailed);
        }
        self.verified.insert(user, password, generation);
        rights::resolve(&config, user).ok_or(AuthFailed)
    }

    /// Checks credentials off the async workers, bounded, and slowed and logged when wrong.
    pub async fn authenticate(self: &Arc<Self>, user: &str, password: &str, peer: &str) -> Result<Rights, AuthFailed> {
        let result = {
            let _permit = self.verifying.acquire().await.expect("the semaphore is never closed");
            let (me, u, p) = (self.clone(), user.to_string(), password.to_string());
            tokio::task::spawn_blocking(move || me.verify_blocking(&u, &p)).await.unwrap_or(Err(AuthFailed))
        };
        if result.is_err() {
            let shown: String = user.chars().take(64).collect();
            tracing::warn!(user = %shown.escape_debug(), peer, "authentication failed");
            tokio::time::sleep(FAILED_AUTH_DELAY).await;
        }
        result
    }

    /// A new portal session for an authenticated user: its cookie value.
    pub fn open_session(&self, user: &str) -> String {
        self.sessions.open(user)
    }

    /// The user of a live portal session.
    pub fn session_user(&self, token: &str) -> Option<String> {
        self.sessions.user(token)
    }

    pub fn close_session(&self, token: &str) {
        self.sessions.close(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(password: &str) -> SecurityConfig {
        let mut c = SecurityConfig::default();
        let user =
            UserConfig { password_hash: password::hash(password).unwrap(), roles: vec!["%All".into()], enabled: true };
        c.users.insert("admin".into(), user);
        c
    }

    #[test]
    fn a_changed_password_is_never_accepted_from_the_cache_and_ends_sessions() {
        let s = Security::new(config("one"));
        assert!(s.required());
        assert!(s.verify_blocking("admin", "one").is_ok());
        assert!(s.verify_blocking("admin", "one").is_ok(), "from the cache");
        assert!(s.verify_blocking("admin", "two").is_err());
        assert!(s.verify_blocking("nobody", "one").is_err());
        let token = s.open_session("admin");
        assert_eq!(s.session_user(&token).as_deref(), Some("admin"));
        let before = s.generation();
        s.replace(config("two"));
        assert!(s.generation() > before, "connections re-read their rights");
        assert!(s.verify_blocking("admin", "one").is_err(), "the old password is gone, cached or not");
        assert!(s.verify_blocking("admin", "two").is_ok());
        assert_eq!(s.session_user(&token), None, "a password change ends the user's sessions");
    }

    #[test]
    fn without_users_everything_is_open_and_auth_means_admin() {
        let s = Security::new(SecurityConfig::default());
        assert!(!s.required());
        assert_eq!(s.rights_of(None), Some(Rights::open()));
        assert_eq!(s.default_user(), BOOTSTRAP_USER);
    }
}
