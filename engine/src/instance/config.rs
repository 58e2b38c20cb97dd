//! The instance configuration file (`engine.yaml`): settings, databases, namespaces.
//!
//! Invariant: the file on disk always parses; it is replaced atomically after every change
//! made through the engine (API, merge file), so a crash never leaves half a config.

use super::session::Durability;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub instance: InstanceSection,
    #[serde(default)]
    pub network: NetworkSettings,
    #[serde(default)]
    pub journal: JournalSettings,
    #[serde(default)]
    pub storage: StorageSettings,
    #[serde(default)]
    pub databases: BTreeMap<String, DatabaseConfig>,
    #[serde(default)]
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// This instance's mirror membership, once configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<crate::mirror::config::MirrorConfig>,
    /// Mutual TLS with the lab CA for the mirror (data channel, agents, arbiter); paths
    /// relative to the data directory. Absent: plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsFiles>,
    /// ECP: data servers and remote databases (application-server role), limits
    /// (data-server role); docs/design/ecp.md.
    #[serde(default, skip_serializing_if = "crate::ecp::EcpConfig::is_default")]
    pub ecp: crate::ecp::EcpConfig,
    /// Users and roles; none configured means no authentication (docs/design/security.md).
    #[serde(default, skip_serializing_if = "crate::security::SecurityConfig::is_empty")]
    pub security: crate::security::SecurityConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InstanceSection {
    pub name: String,
    /// Identity of this instance's journal; database files record which journal their
    /// position refers to.
    pub guid: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    pub superserver_port: u16,
    pub web_port: u16,
    /// Address every listener binds (superserver, web port, mirror data channel):
    /// loopback by default; `0.0.0.0` for every interface.
    pub interface: String,
    pub max_connections: u32,
    /// Protected mode, as in Redis: only loopback peers are served unless this is false.
    pub protected_mode: bool,
    /// Host names the web port answers to besides IP addresses, `localhost` and this
    /// machine's host name (a guard against DNS rebinding).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// TLS on the superserver and the web port: `{ca, certificate, key}`, paths relative
    /// to the data directory. The ports then serve TLS clients only; a client need not
    /// present a certificate (its password authenticates it), one it presents must be
    /// signed by `ca`. Absent: plain TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<crate::tls::TlsFiles>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            superserver_port: 1972,
            web_port: 52773,
            interface: "127.0.0.1".into(),
            max_connections: 1024,
            protected_mode: true,
            allowed_hosts: Vec::new(),
            client_tls: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSettings {
    /// Plain writes are synced at least this often.
    pub sync_interval_ms: u64,
    /// A journal file is switched when it grows past this size.
    pub file_size_mb: u64,
    /// Instance-wide default for plain writes; connections may override it.
    pub durability: Durability,
    /// Files older than this are purged once recovery no longer needs them.
    pub purge_after_minutes: u64,
}

impl Default for JournalSettings {
    fn default() -> Self {
        JournalSettings {
            sync_interval_ms: 1000,
            file_size_mb: 1024,
            durability: Durability::Buffered,
            purge_after_minutes: 2 * 24 * 60,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// The write daemon writes database files at least this often.
    pub flush_interval_ms: u64,
    /// A freeze thaws by itself after this long.
    pub freeze_timeout_s: u64,
    /// Most memory, per database, for values read from its file and kept (the global
    /// buffers); changes not yet checkpointed come on top (a checkpoint starts at 64 MiB).
    pub cache_mb: u64,
    /// redb's page cache per database file (its B-tree pages); reads beyond it go to the
    /// operating system's page cache.
    pub file_cache_mb: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings { flush_interval_ms: 2000, freeze_timeout_s: 600, cache_mb: 256, file_cache_mb: 64 }
    }
}

impl StorageSettings {
    pub fn cache_bytes(&self) -> usize {
        usize::try_from(self.cache_mb << 20).unwrap_or(usize::MAX)
    }

    pub fn file_cache_bytes(&self) -> usize {
        usize::try_from(self.file_cache_mb << 20).unwrap_or(usize::MAX)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Relative paths are under the data directory.
    pub directory: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default = "yes")]
    pub mounted: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Default database for globals.
    pub globals: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mappings: Vec<MappingConfig>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    /// `Company`, `Company*`, `Log(2024):(2025)`.
    pub global: String,
    pub database: String,
}

impl Config {
    /// A first-start configuration: database USER and namespace USER on it.
    pub fn initial(guid: String) -> Config {
        Config {
            instance: InstanceSection { name: "MIRRORLAB".into(), guid },
            network: NetworkSettings::default(),
            journal: JournalSettings::default(),
            storage: StorageSettings::default(),
            databases: BTreeMap::from([(
                "USER".into(),
                DatabaseConfig { directory: "databases/USER".into(), read_only: false, mounted: true },
            )]),
            namespaces: BTreeMap::from([("USER".into(), NamespaceConfig { globals: "USER".into(), mappings: vec![] })]),
            mirror: None,
            tls: None,
            ecp: Default::default(),
            security: Default::default(),
        }
    }

    pub fn parse(text: &str, origin: &str) -> Result<Config, String> {
        serde_yaml::from_str(text).map_err(|e| located(origin, &e))
    }

    pub fn to_yaml(&self) -> String {
        let body = serde_yaml::to_string(self).expect("config serialises");
        format!("# Mirrorlab engine configuration. The engine rewrites this file on changes made\n# through the management API or a merge file; edit it only while the engine is down.\n{body}")
    }
}

/// `file:line:column: message` from a YAML error.
pub fn located(origin: &str, e: &serde_yaml::Error) -> String {
    match e.location() {
        Some(l) => format!("{origin}:{}:{}: {}", l.line(), l.column(), strip_location(&e.to_string())),
        None => format!("{origin}: {e}"),
    }
}

/// serde_yaml appends " at line N column M" to its messages; we print the location first.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Database and namespace names: letters, digits, `_`, `-`, at most 64, upper-cased as in
/// the reference product.
pub fn normalize_name(kind: &str, name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphabetic();
    if ok {
        Ok(name.to_ascii_uppercase())
    } else {
        Err(format!("{kind} name {name:?} is not valid: use 1-64 letters, digits, _ or -, starting with a letter"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_keys_with_a_line() {
        let c = Config::initial("abc".into());
        assert_eq!(Config::parse(&c.to_yaml(), "engine.yaml").unwrap(), c);
        let bad = "instance:\n  name: X\n  guid: g\njournal:\n  sync_intervl_ms: 5\n";
        let e = Config::parse(bad, "engine.yaml").unwrap_err();
        assert!(e.starts_with("engine.yaml:5:"), "{e}");
        assert!(e.contains("sync_intervl_ms"), "{e}");
    }

    #[test]
    fn names() {
        assert_eq!(normalize_name("database", "company").unwrap(), "COMPANY");
        assert!(normalize_name("database", "1x").is_err());
        assert!(normalize_name("database", "a b").is_err());
    }
}
