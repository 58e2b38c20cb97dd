//! ECP status, as `/api/ecp`, `ECP STATUS`, INFO and `mirrorlab status` show it.

use super::app::DataServerStatus;
use super::service::AttachedApp;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct EcpStatus {
    /// Application-server role: the Data Servers list and each one's state.
    pub servers: Vec<DataServerStatus>,
    /// Data-server role: the application servers attached now.
    pub app_servers: Vec<AttachedAppStatus>,
    /// Data-server role: `ecp.max_app_servers`.
    pub max_app_servers: u32,
    /// Data-server role: ECP requests served since start.
    pub requests_served: u64,
}

/// [`AttachedApp`], deserializable for clients of the API.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct AttachedAppStatus {
    pub name: String,
    pub incarnation: u64,
    pub connections: u32,
    pub attached_at: String,
}

impl From<AttachedApp> for AttachedAppStatus {
    fn from(a: AttachedApp) -> Self {
        AttachedAppStatus {
            name: a.name,
            incarnation: a.incarnation,
            connections: a.connections,
            attached_at: a.attached_at,
        }
    }
}
