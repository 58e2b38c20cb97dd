//! Credentials verified recently, so that a client sending the same user and password on
//! every request (HTTP Basic: the installer, scripts) pays for argon2 once.
//!
//! Entries are BLAKE2b MACs of user and password under a key drawn at start from the
//! operating system and kept only in memory: the cache never holds a password, and its
//! entries are useless without the process's memory. It is bounded and emptied on every
//! change of users or roles (a changed password is never accepted from the cache).

use blake2::digest::{KeyInit, Mac};
use blake2::Blake2bMac512;
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashSet;

/// Most verified credentials remembered; beyond, the cache starts over.
pub const MAX_VERIFIED: usize = 1024;

pub(super) struct Verified {
    key: [u8; 32],
    entries: Mutex<(u64, HashSet<[u8; 64]>)>,
}

impl Verified {
    pub fn new() -> Verified {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Verified { key, entries: Mutex::new((0, HashSet::new())) }
    }

    fn mac(&self, user: &str, password: &str) -> [u8; 64] {
        let mut m = <Blake2bMac512 as KeyInit>::new_from_slice(&self.key).expect("a 32-byte key fits BLAKE2b");
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        m.update(&(user.len() as u64).to_le_bytes());
        m.update(user.as_bytes());
        m.update(password.as_bytes());
        m.finalize().into_bytes().into()
    }

    pub fn contains(&self, user: &str, password: &str, generation: u64) -> bool {
        let mac = self.mac(user, password);
        let e = self.entries.lock();
        e.0 == generation && e.1.contains(&mac)
    }

    pub fn insert(&self, user: &str, password: &str, generation: u64) {
        let mac = self.mac(user, password);
        let mut e = self.entries.lock();
        if e.0 != generation || e.1.len() >= MAX_VERIFIED {
            *e = (generation, HashSet::new());
        }
        e.1.insert(mac);
    }

    pub fn clear(&self) {
        *self.entries.lock() = (0, HashSet::new());
    }
}
