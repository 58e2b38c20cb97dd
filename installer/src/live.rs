//! A member's live state read through the management API: databases, namespaces with
//! their mappings, mirror configuration and Mirror Monitor status.

use crate::api::{Api, ApiError};
use engine::mirror::config::MirrorConfig;
use engine::mirror::status::{DatabaseStatus, MirrorStatus};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct Live {
    /// Database name -> its API entry.
    pub databases: BTreeMap<String, Value>,
    /// Namespace -> (default database, global -> database).
    pub namespaces: BTreeMap<String, (String, BTreeMap<String, String>)>,
    /// The `mirror` object of GET /api/mirror/config, typed as the engine defines it (None
    /// when the member has no mirror configuration).
    pub mirror_config: Option<MirrorConfig>,
    /// GET /api/mirror/status's `status` (None: not a mirror member yet).
    pub status: Option<MirrorStatus>,
    /// The instance-wide durability (`always` or `buffered`) from GET /api/instance.
    pub durability: String,
    /// An app member's data servers as GET /api/ecp lists them (`name`, `address`,
    /// `mirror`, `state`, `member`, `pending`); empty on other members.
    pub ecp_servers: Vec<Value>,
}

impl Live {
    pub fn fetch(api: &Api) -> Result<Live, ApiError> {
        let mut live = Live::default();
        let instance = api.get("/api/instance")?;
        live.durability = instance["settings"]["journal"]["durability"].as_str().unwrap_or_default().to_string();
        // GET /api/databases answers a list of entries (docs/api.md).
        for d in api.get("/api/databases")?.as_array().into_iter().flatten() {
            if let Some(n) = d["name"].as_str() {
                live.databases.insert(n.to_string(), d.clone());
            }
        }
        if let Value::Array(nss) = api.get("/api/namespaces")? {
            for ns in nss {
                let Some(name) = ns["name"].as_str() else { continue };
                let mappings = ns["mappings"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .filter_map(|m| {
                                Some((m["global"].as_str()?.to_string(), m["database"].as_str()?.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                live.namespaces
                    .insert(name.to_string(), (ns["globals"].as_str().unwrap_or_default().to_string(), mappings));
            }
        }
        live.mirror_config = api.mirror_config()?;
        live.status = api.mirror_status()?;
        Ok(live)
    }

    /// An app member's data servers and their connection states (GET /api/ecp).
    pub fn fetch_ecp(api: &Api) -> Result<Vec<Value>, ApiError> {
        Ok(api.get("/api/ecp")?["servers"].as_array().cloned().unwrap_or_default())
    }

    /// Mirrored databases and their status on this member.
    pub fn mirrored(&self) -> BTreeMap<String, DatabaseStatus> {
        self.status.iter().flat_map(|s| &s.databases).map(|d| (d.name.clone(), d.status)).collect()
    }
}
