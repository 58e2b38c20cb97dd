//! ECP settings in `engine.yaml`: this instance's data servers and remote databases (the
//! application-server role) and the limits it serves application servers under (the
//! data-server role).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EcpConfig {
    /// Application-server role: the name data servers know this application server by
    /// (status, the limit). Default: the instance name and the start of its guid, unique
    /// per data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// Data-server role: how many application servers may attach at once; the next one is
    /// refused with the reason (the reference's `MaxServerConn`).
    pub max_app_servers: u32,
    /// Application-server role: how long a request waits for its data server (connecting,
    /// following a failover, reissuing) before the client gets `-NETWORK`.
    pub wait_s: u64,
    /// Application-server role: the Data Servers list.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub servers: BTreeMap<String, DataServerConfig>,
    /// Application-server role: databases that live on a data server.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub remote_databases: BTreeMap<String, RemoteDatabaseConfig>,
}

/// The reference's defaults: 20 s for a connection in progress.
pub const DEFAULT_WAIT_S: u64 = 20;
pub const DEFAULT_MAX_APP_SERVERS: u32 = 8;
/// Past this, `max_app_servers` is refused (the reference allows 254).
pub const MAX_APP_SERVERS_LIMIT: u32 = 254;

impl Default for EcpConfig {
    fn default() -> Self {
        EcpConfig {
            app_name: None,
            max_app_servers: DEFAULT_MAX_APP_SERVERS,
            wait_s: DEFAULT_WAIT_S,
            servers: BTreeMap::new(),
            remote_databases: BTreeMap::new(),
        }
    }
}

impl EcpConfig {
    pub fn is_default(&self) -> bool {
        *self == EcpConfig::default()
    }

    /// Every rule that does not need the rest of the configuration.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_APP_SERVERS_LIMIT).contains(&self.max_app_servers) {
            return Err(format!(
                "ecp.max_app_servers is {}; it must be between 1 and {MAX_APP_SERVERS_LIMIT}",
                self.max_app_servers
            ));
        }
        if !(1..=3600).contains(&self.wait_s) {
            return Err(format!("ecp.wait_s is {}; it must be between 1 and 3600 (seconds)", self.wait_s));
        }
        if let Some(name) = &self.app_name {
            check_name("ECP application server", name)?;
        }
        for (name, s) in &self.servers {
            check_name("ECP data server", name)?;
            s.validate().map_err(|e| format!("ECP data server {name}: {e}"))?;
        }
        for (name, r) in &self.remote_databases {
            check_name("remote database", name)?;
            if !self.servers.contains_key(&r.server) {
                return Err(format!(
                    "remote database {name} names ECP data server {}, which is not in the Data Servers list (create_ecp_server)",
                    r.server
                ));
            }
            if r.path.trim().is_empty() {
                return Err(format!("remote database {name}: `path` (the database on the data server) is empty"));
            }
        }
        Ok(())
    }
}

/// One entry of the Data Servers list.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataServerConfig {
    /// `host:port` of the data server's superserver; for a mirror, any member's (the
    /// application server then follows the primary).
    pub address: String,
    /// A mirror connection: follow whichever member is primary, never a lower epoch.
    #[serde(default)]
    pub mirror: bool,
    /// The user the application server logs in as, when the data server has users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The file holding that user's password (relative to the data directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// The CA that signed the data server's client-port certificate (relative to the data
    /// directory): connect over TLS and believe only a certificate of it that names the
    /// host dialled. Absent: plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

impl DataServerConfig {
    fn validate(&self) -> Result<(), String> {
        let Some((host, port)) = self.address.rsplit_once(':') else {
            return Err(format!("address {:?} is not host:port", self.address));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("address {:?} is not host:port with a port between 1 and 65535", self.address));
        }
        if self.password_file.is_some() && self.user.is_none() {
            return Err("a password_file needs a user".into());
        }
        Ok(())
    }
}

/// A database that lives on a data server (the reference's `:ds:DB` or `:mirror:M:DB`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteDatabaseConfig {
    /// The data server, by its name in the Data Servers list.
    pub server: String,
    /// The database on the data server: its name (or its directory there).
    pub path: String,
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name == name.to_ascii_uppercase();
    if ok {
        Ok(())
    } else {
        Err(format!("{what} name {name:?} must be 1 to 64 upper-case letters, digits, '_' or '-'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EcpConfig {
        let mut c = EcpConfig::default();
        c.servers.insert(
            "DS".into(),
            DataServerConfig {
                address: "127.0.0.1:1972".into(),
                mirror: true,
                user: None,
                password_file: None,
                ca: None,
            },
        );
        c.remote_databases.insert("PB".into(), RemoteDatabaseConfig { server: "DS".into(), path: "PHONEBOOK".into() });
        c
    }

    #[test]
    fn a_complete_configuration_is_accepted() {
        config().validate().unwrap();
        EcpConfig::default().validate().unwrap();
    }

    #[test]
    fn each_broken_rule_is_named() {
        let mut c = config();
        c.remote_databases.get_mut("PB").unwrap().server = "NOPE".into();
        assert!(c.validate().unwrap_err().contains("names ECP data server NOPE"));
        let mut c = config();
        c.servers.get_mut("DS").unwrap().address = "nohost".into();
        assert!(c.validate().unwrap_err().contains("not host:port"));
        let mut c = config();
        c.servers.get_mut("DS").unwrap().address = "h:0".into();
        assert!(c.validate().unwrap_err().contains("port between"));
        let mut c = config();
        c.max_app_servers = 0;
        assert!(c.validate().unwrap_err().contains("max_app_servers"));
        let mut c = config();
        c.servers.get_mut("DS").unwrap().password_file = Some("p".into());
        assert!(c.validate().unwrap_err().contains("needs a user"));
        let mut c = config();
        c.remote_databases.insert("lower".into(), RemoteDatabaseConfig { server: "DS".into(), path: "X".into() });
        assert!(c.validate().unwrap_err().contains("upper-case"));
    }
}
