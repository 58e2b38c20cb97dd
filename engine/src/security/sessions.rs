//! Portal sessions: a random token in an HttpOnly, SameSite=Strict cookie names a user
//! for [`SESSION_TTL`]. Bounded; a user's sessions end when its password changes or it
//! is deleted or disabled.

use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions at once; the oldest is dropped for a new one.
pub const MAX_SESSIONS: usize = 1024;

#[derive(Default)]
pub(super) struct Sessions {
    live: Mutex<HashMap<String, (String, Instant)>>,
}

impl Sessions {
    pub fn open(&self, user: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut live = self.live.lock();
        let now = Instant::now();
        live.retain(|_, (_, expires)| *expires > now);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| k.clone()) {
                live.remove(&oldest);
            }
        }
        live.insert(token.clone(), (user.to_string(), now + SESSION_TTL));
        token
    }

    pub fn user(&self, token: &str) -> Option<String> {
        let live = self.live.lock();
        live.get(token).filter(|(_, expires)| *expires > Instant::now()).map(|(u, _)| u.clone())
    }

    pub fn close(&self, token: &str) {
        self.live.lock().remove(token);
    }

    pub fn forget_user(&self, user: &str) {
        self.live.lock().retain(|_, (u, _)| u != user);
    }
}
