//! The data-server role: which application servers are attached, under
//! `ecp.max_app_servers`, and one generation per channel.
//!
//! Invariant: a channel's requests run one at a time under its lock, each after checking
//! that its connection still holds the channel's current generation; `ATTACH` bumps the
//! generation. So once an application server reattached, no request of an old connection
//! (in flight, or late in its socket buffer) starts anymore, and the outcome lookup that
//! follows the ATTACH (a request like any other) waits for the one that may be running:
//! it sees every request that ever ran on the channel. A channel's entry is forgotten only
//! when its latest connection closed and no request of it is running, so a newer ATTACH
//! never gets a fresh lock while an older request still runs under the old one.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// One channel: `(application server, incarnation, channel number)`.
pub type ChannelKey = (String, u64, u64);

#[derive(Default)]
pub struct EcpService {
    max_app_servers: AtomicU32,
    apps: Mutex<BTreeMap<String, AppEntry>>,
    channels: Mutex<HashMap<ChannelKey, Arc<ChannelState>>>,
    /// ECP requests served (for INFO and /metrics).
    pub requests: AtomicU64,
}

struct AppEntry {
    incarnation: u64,
    connections: u32,
    attached_at: String,
}

/// One channel's generation and the lock its requests run under.
#[derive(Debug, Default)]
struct ChannelState {
    generation: AtomicU64,
    running: Mutex<()>,
}

/// A connection's attachment: which channel it serves, at which generation.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub key: ChannelKey,
    pub mirror: bool,
    generation: u64,
    channel: Arc<ChannelState>,
}

/// One attached application server, as `ECP STATUS` and `/api/ecp` list it.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct AttachedApp {
    pub name: String,
    pub incarnation: u64,
    pub connections: u32,
    pub attached_at: String,
}

impl EcpService {
    pub fn new(max_app_servers: u32) -> EcpService {
        let s = EcpService::default();
        s.set_limit(max_app_servers);
        s
    }

    pub fn set_limit(&self, max_app_servers: u32) {
        self.max_app_servers.store(max_app_servers, Ordering::Relaxed);
    }

    /// Attaches a connection to channel `key`: refused past the limit of application
    /// servers; a new incarnation of an application server replaces the old one.
    pub fn attach(&self, key: ChannelKey, mirror: bool) -> Result<Attachment, String> {
        {
            let mut apps = self.apps.lock();
            let limit = self.max_app_servers.load(Ordering::Relaxed);
            let count = apps.len();
            match apps.get_mut(&key.0) {
                Some(entry) => {
                    if entry.incarnation != key.1 {
                        tracing::info!(app = key.0, "ECP: application server {} restarted (new incarnation)", key.0);
                        entry.incarnation = key.1;
                    }
                    entry.connections = entry.connections.saturating_add(1);
                }
                None if count >= limit as usize => {
                    return Err(format!(
                        "ECPLIMIT this data server already serves {limit} application servers (ecp.max_app_servers); {} is refused",
                        key.0
                    ));
                }
                None => {
                    tracing::info!(app = key.0, "ECP: application server {} attached", key.0);
                    apps.insert(
                        key.0.clone(),
                        AppEntry { incarnation: key.1, connections: 1, attached_at: crate::calendar::now_text() },
                    );
                }
            }
        }
        // Under the map's lock, so a closing connection cannot forget the entry between
        // this lookup and the bump (`detach`).
        let mut channels = self.channels.lock();
        let channel = channels.entry(key.clone()).or_default().clone();
        let generation = channel.generation.fetch_add(1, Ordering::SeqCst) + 1;
        drop(channels);
        Ok(Attachment { key, mirror, generation, channel })
    }

    /// The connection of `a` closed.
    pub fn detach(&self, a: &Attachment) {
        let mut apps = self.apps.lock();
        if let Some(entry) = apps.get_mut(&a.key.0) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                apps.remove(&a.key.0);
                tracing::info!(app = a.key.0, "ECP: application server {} detached", a.key.0);
            }
        }
        let mut channels = self.channels.lock();
        let latest = a.channel.generation.load(Ordering::SeqCst) == a.generation;
        let ours = channels.get(&a.key).is_some_and(|c| Arc::ptr_eq(c, &a.channel));
        // A request of an older connection may still run under this entry's lock: then
        // the entry stays, so the next ATTACH's outcome lookup waits for that request.
        if latest && ours && a.channel.running.try_lock().is_some() {
            channels.remove(&a.key);
        }
    }

    /// Runs `f` as a request of `a`'s channel: refused once another connection attached
    /// the channel since.
    pub fn run<T>(&self, a: &Attachment, f: impl FnOnce() -> T) -> Result<T, String> {
        let running = a.channel.running.lock();
        if a.channel.generation.load(Ordering::SeqCst) != a.generation {
            return Err(format!(
                "{} this ECP channel was attached again by another connection; this one is closed",
                super::wire::REPLACED
            ));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let out = f();
        drop(running);
        Ok(out)
    }

    pub fn attached(&self) -> Vec<AttachedApp> {
        self.apps
            .lock()
            .iter()
            .map(|(name, e)| AttachedApp {
                name: name.clone(),
                incarnation: e.incarnation,
                connections: e.connections,
                attached_at: e.attached_at.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, channel: u64) -> ChannelKey {
        (app.into(), 7, channel)
    }

    #[test]
    fn the_limit_counts_application_servers_not_connections() {
        let s = EcpService::new(2);
        let a1 = s.attach(key("APP1", 1), false).unwrap();
        let _a2 = s.attach(key("APP1", 2), false).unwrap();
        let b = s.attach(key("APP2", 1), false).unwrap();
        let refused = s.attach(key("APP3", 1), false).unwrap_err();
        assert!(refused.contains("ECPLIMIT") && refused.contains("APP3"), "{refused}");
        s.detach(&b);
        s.attach(key("APP3", 1), false).unwrap();
        s.detach(&a1);
        assert_eq!(s.attached().iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["APP1", "APP3"]);
    }

    #[test]
    fn a_reattached_channel_refuses_the_old_connection() {
        let s = EcpService::new(4);
        let old = s.attach(key("APP1", 1), false).unwrap();
        assert_eq!(s.run(&old, || 1).unwrap(), 1);
        let new = s.attach(key("APP1", 1), false).unwrap();
        assert!(s.run(&old, || 1).unwrap_err().contains(crate::ecp::wire::REPLACED));
        assert_eq!(s.run(&new, || 2).unwrap(), 2);
        // The old connection closing does not drop the new one's channel.
        s.detach(&old);
        assert_eq!(s.run(&new, || 3).unwrap(), 3);
    }

    #[test]
    fn a_channel_is_not_forgotten_while_an_older_request_still_runs() {
        let s = Arc::new(EcpService::new(4));
        let a = s.attach(key("APP1", 1), false).unwrap();
        let b = s.attach(key("APP1", 1), false).unwrap();
        // `a`'s request runs (it checked its generation before `b` attached; here it
        // holds the lock), and `b` closes meanwhile: the entry must stay.
        let running = a.channel.running.lock();
        s.detach(&b);
        drop(running);
        let c = s.attach(key("APP1", 1), false).unwrap();
        assert!(Arc::ptr_eq(&a.channel, &c.channel), "a new ATTACH shares the lock the old request ran under");
        // Nothing runs any more: the latest connection closing forgets the channel.
        s.detach(&c);
        assert!(s.channels.lock().is_empty());
    }
}
