//! The merge file (`--merge FILE` / `MIRRORLAB_MERGE_FILE`): declarative settings and
//! idempotent actions applied at every start and again whenever the file changes.
//!
//! ```yaml
//! config:                    # merged into engine.yaml
//!   journal: { durability: always, sync_interval_ms: 500 }
//! actions:                   # always run in this order, whatever the order in the file
//!   config_mirror:    { name: DEMO, this_member: MIRRORA, members: [...] }
//!   create_ecp_server: [ { name: DS, address: "host:1972", mirror: true, user: admin, password_file: ecp-password } ]
//!   create_database:  [ { name: COMPANY }, { name: REMOTE, server: DS, path: COMPANY } ]
//!   create_namespace: [ { name: PHONEBOOK, globals: COMPANY } ]
//!   create_mapping:   [ { namespace: PHONEBOOK, global: "Company*", database: COMPANY } ]
//! ```
//!
//! Invariant: the whole file is parsed and checked before anything is applied, so a
//! malformed file changes nothing. Errors name the file, line and column.

use crate::error::{EngineError, Result};
use crate::instance::config::{located, Config};
use crate::instance::{Durability, Instance};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeFile {
    #[serde(default)]
    pub config: SettingsPatch,
    #[serde(default)]
    pub actions: Actions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub journal: Option<JournalPatch>,
    pub storage: Option<StoragePatch>,
    pub network: Option<NetworkPatch>,
    pub ecp: Option<EcpPatch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcpPatch {
    pub app_name: Option<String>,
    pub max_app_servers: Option<u32>,
    pub wait_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalPatch {
    pub sync_interval_ms: Option<u64>,
    pub file_size_mb: Option<u64>,
    pub durability: Option<Durability>,
    pub purge_after_minutes: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoragePatch {
    pub flush_interval_ms: Option<u64>,
    pub freeze_timeout_s: Option<u64>,
    pub cache_mb: Option<u64>,
    pub file_cache_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPatch {
    pub superserver_port: Option<u16>,
    pub web_port: Option<u16>,
    pub interface: Option<String>,
    pub max_connections: Option<u32>,
    pub protected_mode: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    /// Mirror membership; applied first, as in the reference product's action order.
    pub config_mirror: Option<crate::mirror::config::MirrorConfig>,
    /// The Data Servers list (ECP), before the remote databases that name them.
    #[serde(default)]
    pub create_ecp_server: Vec<CreateEcpServer>,
    #[serde(default)]
    pub create_database: Vec<CreateDatabase>,
    #[serde(default)]
    pub create_namespace: Vec<CreateNamespace>,
    #[serde(default)]
    pub create_mapping: Vec<CreateMapping>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabase {
    pub name: String,
    pub directory: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// A remote database: the ECP data server it lives on...
    pub server: Option<String>,
    /// ... and its name there.
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateEcpServer {
    pub name: String,
    #[serde(flatten)]
    pub config: crate::ecp::config::DataServerConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    pub name: String,
    pub globals: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMapping {
    pub namespace: String,
    pub global: String,
    pub database: String,
}

/// What applying a merge file changed (empty when the instance already matched).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    pub changes: Vec<String>,
}

pub fn parse(text: &str, origin: &str) -> Result<MergeFile> {
    let file: MergeFile = serde_yaml::from_str(text).map_err(|e| EngineError::Invalid(located(origin, &e)))?;
    if let Some(m) = &file.actions.config_mirror {
        m.clone()
            .validate()
            .map_err(|problems| EngineError::Invalid(format!("{origin}: config_mirror: {}", problems.join("; "))))?;
    }
    for m in &file.actions.create_mapping {
        crate::namespace::mapping::parse(&m.global)
            .map_err(|e| EngineError::Invalid(format!("{origin}: create_mapping {:?}: {e}", m.global)))?;
    }
    Ok(file)
}

pub fn load(path: &Path) -> Result<MergeFile> {
    load_text(path).map(|(file, _)| file)
}

/// [`load`], also returning the text it parsed: the watcher compares later reads with
/// exactly what was applied.
pub fn load_text(path: &Path) -> Result<(MergeFile, String)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| EngineError::io(format!("reading merge file {}", path.display()), e))?;
    Ok((parse(&text, &path.display().to_string())?, text))
}

impl SettingsPatch {
    fn apply(&self, c: &mut Config) {
        if let Some(j) = &self.journal {
            set(&mut c.journal.sync_interval_ms, j.sync_interval_ms);
            set(&mut c.journal.file_size_mb, j.file_size_mb);
            set(&mut c.journal.durability, j.durability);
            set(&mut c.journal.purge_after_minutes, j.purge_after_minutes);
        }
        if let Some(s) = &self.storage {
            set(&mut c.storage.flush_interval_ms, s.flush_interval_ms);
            set(&mut c.storage.freeze_timeout_s, s.freeze_timeout_s);
            set(&mut c.storage.cache_mb, s.cache_mb);
            set(&mut c.storage.file_cache_mb, s.file_cache_mb);
        }
        if let Some(e) = &self.ecp {
            if let Some(name) = &e.app_name {
                c.ecp.app_name = Some(name.to_ascii_uppercase());
            }
            set(&mut c.ecp.max_app_servers, e.max_app_servers);
            set(&mut c.ecp.wait_s, e.wait_s);
        }
        if let Some(n) = &self.network {
            set(&mut c.network.superserver_port, n.superserver_port);
            set(&mut c.network.web_port, n.web_port);
            set(&mut c.network.interface, n.interface.clone());
            set(&mut c.network.max_connections, n.max_connections);
            set(&mut c.network.protected_mode, n.protected_mode);
            set(&mut c.network.allowed_hosts, n.allowed_hosts.clone());
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Applies settings, then databases, namespaces and mappings, each step idempotent.
pub fn apply(instance: &Instance, file: &MergeFile) -> Result<MergeReport> {
    let mut report = MergeReport::default();
    let before = instance.config();
    let mut wanted = before.clone();
    file.config.apply(&mut wanted);
    if wanted != before {
        instance.update_config(|c| {
            file.config.apply(c);
            Ok(())
        })?;
        report.changes.push("settings updated (ports, intervals and file sizes take effect at the next start)".into());
    }
    if let Some(m) = &file.actions.config_mirror {
        if instance.configure_mirror(m.clone())? {
            report.changes.push(format!("configured mirror {}", m.name.to_ascii_uppercase()));
        }
    }
    for e in &file.actions.create_ecp_server {
        if instance.create_ecp_server(&e.name, e.config.clone())? {
            report.changes.push(format!("ECP data server {} set to {}", e.name.to_ascii_uppercase(), e.config.address));
        }
    }
    for d in &file.actions.create_database {
        let name = d.name.to_ascii_uppercase();
        match (&d.server, &d.path) {
            (Some(server), Some(path)) => {
                if d.directory.is_some() || d.read_only {
                    return Err(EngineError::Invalid(format!(
                        "create_database {name}: a remote database (server, path) has no directory and no read_only here; the data server decides"
                    )));
                }
                if instance.create_remote_database(&name, server, path)? {
                    report.changes.push(format!("created remote database {name} on ECP data server {server}"));
                }
                continue;
            }
            (None, None) => {}
            _ => {
                return Err(EngineError::Invalid(format!(
                    "create_database {name}: a remote database needs both server and path"
                )))
            }
        }
        if !instance.config().databases.contains_key(&name) {
            report.changes.push(format!("created database {name}"));
        }
        instance.create_database(&d.name, d.directory.as_deref(), d.read_only)?;
    }
    for n in &file.actions.create_namespace {
        let name = n.name.to_ascii_uppercase();
        if !instance.config().namespaces.contains_key(&name) {
            report.changes.push(format!("created namespace {name}"));
        }
        instance.create_namespace(&n.name, &n.globals)?;
    }
    for m in &file.actions.create_mapping {
        let ns = m.namespace.to_ascii_uppercase();
        let global = m.global.trim().trim_start_matches('^').to_string();
        let database = m.database.to_ascii_uppercase();
        let exists = instance
            .config()
            .namespaces
            .get(&ns)
            .is_some_and(|n| n.mappings.iter().any(|x| x.global == global && x.database == database));
        if !exists {
            instance.add_mapping(&ns, &global, &database)?;
            report.changes.push(format!("mapped ^{global} in namespace {ns} to database {database}"));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let e =
            parse("actions:\n  create_database:\n    - name: A\n      size: 5\n", "m.yaml").unwrap_err().to_string();
        assert!(e.starts_with("m.yaml:4:"), "{e}");
        assert!(e.contains("size"), "{e}");
        let e = parse("config:\n  journal:\n    durability: sometimes\n", "m.yaml").unwrap_err().to_string();
        assert!(e.starts_with("m.yaml:3:"), "{e}");
        let e =
            parse("actions:\n  create_mapping:\n    - {namespace: N, global: \"Log(2):(1)\", database: D}\n", "m.yaml")
                .unwrap_err()
                .to_string();
        assert!(e.contains("Log(2):(1)"), "{e}");
        let e = parse(
            "actions:\n  config_mirror:\n    name: TOO_LONG_FOR_A_MIRROR\n    this_member: a\n    members: []\n",
            "m.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("config_mirror") && e.contains("mirror name") && e.contains("at least one failover member"),
            "{e}"
        );
    }
}
