//! The merge files the installer keeps for ECP (the engine's `--merge FILE`, applied at
//! every start and again whenever the file changes): an app member's data servers and
//! remote databases, which the engine takes only from a merge file, and its name on them
//! (`ecp.app_name`, the member's); a data server's `ecp.max_app_servers`. Rendered from the manifest alone, so the same manifest always
//! gives the same text and comparing texts is how `plan` sees a change.

use crate::manifest::{DataServerAt, Manifest, MemberType};
use serde::Serialize;

/// The file's name: in the member's directory (local target) or data volume (docker).
pub const MERGE_FILE: &str = "mirrorlab.merge.yaml";
/// The app member's copy of the password its data servers check, relative to its data
/// directory (the engine's `password_file`), mode 0600.
pub const ECP_PASSWORD_FILE: &str = "ecp-password";

#[derive(Serialize)]
struct MergeFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<Config>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<Actions>,
}

#[derive(Serialize)]
struct Config {
    ecp: EcpConfig,
}

#[derive(Serialize)]
struct EcpConfig {
    /// An app member's name on its data servers (their status and limit): the member's.
    #[serde(skip_serializing_if = "Option::is_none")]
    app_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_app_servers: Option<u32>,
}

#[derive(Serialize)]
struct Actions {
    create_ecp_server: Vec<EcpServer>,
    create_database: Vec<RemoteDb>,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct EcpServer {
    pub name: String,
    /// `host:superserver-port` of the data server; for a mirror, its initial primary (any
    /// member will do: the app member then follows the primary itself).
    pub address: String,
    pub mirror: bool,
    pub user: String,
    pub password_file: String,
}

#[derive(Serialize)]
struct RemoteDb {
    name: String,
    server: String,
    path: String,
}

/// The data servers an app member is given, with the addresses `superserver` says
/// (the target's view of a member's superserver address).
pub fn ecp_servers(m: &Manifest, superserver: &dyn Fn(&str) -> String) -> Vec<EcpServer> {
    m.ecp
        .data_servers
        .iter()
        .map(|d| {
            let (member, mirror) = match &d.at {
                DataServerAt::Mirror => (m.primary().map(|p| p.name.clone()).unwrap_or_default(), true),
                DataServerAt::Member(x) => (x.clone(), false),
            };
            EcpServer {
                name: d.name.clone(),
                address: superserver(&member),
                mirror,
                user: crate::credentials::ADMIN_USER.to_string(),
                password_file: ECP_PASSWORD_FILE.to_string(),
            }
        })
        .collect()
}

/// The merge file `member` needs, or None when it needs none: every app member has one;
/// a member holding data has one when the manifest sets `ecp.max_app_servers`.
pub fn render(m: &Manifest, member: &str, superserver: &dyn Fn(&str) -> String) -> Option<String> {
    let me = m.member(member)?;
    let file = if me.member_type == MemberType::App {
        MergeFile {
            config: Some(Config { ecp: EcpConfig { app_name: Some(me.name.clone()), max_app_servers: None } }),
            actions: Some(Actions {
                create_ecp_server: ecp_servers(m, superserver),
                create_database: m
                    .remote_databases
                    .iter()
                    .map(|r| RemoteDb { name: r.name.clone(), server: r.server.clone(), path: r.database.clone() })
                    .collect(),
            }),
        }
    } else {
        let max = m.ecp.max_app_servers?;
        MergeFile {
            config: Some(Config { ecp: EcpConfig { app_name: None, max_app_servers: Some(max) } }),
            actions: None,
        }
    };
    let body = serde_yaml::to_string(&file).expect("plain structs always serialize");
    Some(format!(
        "# Written by `mirrorlab apply` from the lab's manifest ({} member {}); the engine applies it\n# at every start and whenever it changes. Edit the manifest, not this file.\n{body}",
        me.member_type.as_str(),
        me.name
    ))
}

/// What a merge file gives, in a few words, for plan lines.
pub fn summary(m: &Manifest, member: &str) -> String {
    if !m.is_app(member) {
        return format!("ecp.max_app_servers {}", m.ecp.max_app_servers.unwrap_or_default());
    }
    let servers: Vec<String> = m
        .ecp
        .data_servers
        .iter()
        .map(|d| match &d.at {
            DataServerAt::Mirror => {
                format!("{} (mirror {})", d.name, m.mirror.as_ref().map_or("", |x| x.name.as_str()))
            }
            DataServerAt::Member(x) => format!("{} ({x})", d.name),
        })
        .collect();
    let dbs: Vec<&str> = m.remote_databases.iter().map(|r| r.name.as_str()).collect();
    let servers = if servers.is_empty() { "none".to_string() } else { servers.join(", ") };
    let dbs = if dbs.is_empty() { "none".to_string() } else { dbs.join(", ") };
    format!("data servers {servers}; remote databases {dbs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        crate::manifest::load_str("m.yaml", text, std::path::Path::new("."), &crate::template::Inputs::default())
            .unwrap_or_else(|p| panic!("{p}"))
    }

    const LAB: &str = "lab: t\nmembers:\n  - { name: a, type: failover }\n  - { name: b, type: failover }\n  - { name: app1, type: app }\ndatabases:\n  - { name: PB, mirrored: true }\nmirror: { name: M, primary: a, arbiter: false }\necp:\n  max_app_servers: 4\n  data_servers: [ { name: DS, mirror: M } ]\nremote_databases:\n  - { name: PB, server: DS }\n  - { name: OTHER, server: DS, database: PB }\n";

    #[test]
    fn an_app_member_gets_its_data_servers_and_remote_databases_and_a_data_member_the_limit() {
        let m = manifest(LAB);
        let address = |member: &str| format!("{}:1972", member.to_ascii_lowercase());
        let app = render(&m, "APP1", &address).unwrap();
        let body: serde_yaml::Value = serde_yaml::from_str(&app).unwrap();
        let server = &body["actions"]["create_ecp_server"][0];
        assert_eq!(server["name"], "DS");
        assert_eq!(server["address"], "a:1972", "a mirror is reached through its initial primary");
        assert_eq!(server["mirror"], true);
        assert_eq!(server["user"], "admin");
        assert_eq!(server["password_file"], ECP_PASSWORD_FILE);
        let dbs = &body["actions"]["create_database"];
        assert_eq!(
            (dbs[0]["name"].as_str(), dbs[0]["server"].as_str(), dbs[0]["path"].as_str()),
            (Some("PB"), Some("DS"), Some("PB"))
        );
        assert_eq!(dbs[1]["path"], "PB");
        assert_eq!(body["config"]["ecp"]["app_name"], "APP1", "data servers know it by the member's name");
        assert!(body["config"]["ecp"].get("max_app_servers").is_none());
        let data = render(&m, "B", &address).unwrap();
        let body: serde_yaml::Value = serde_yaml::from_str(&data).unwrap();
        assert_eq!(body["config"]["ecp"]["max_app_servers"], 4);
        assert!(body.get("actions").is_none());
        assert_eq!(render(&m, "B", &address), Some(data), "the same manifest gives the same text");
        assert_eq!(summary(&m, "APP1"), "data servers DS (mirror M); remote databases PB, OTHER");
        let no_limit = manifest(&LAB.replace("  max_app_servers: 4\n", ""));
        assert_eq!(render(&no_limit, "A", &address), None, "no limit set: the engine's default, no file");
    }

    /// The Compose lab's app servers take their configuration from compose/merge/ecp-app.yaml,
    /// which the installer only checks: it must say what the shipped manifest gives them.
    #[test]
    fn the_compose_labs_merge_file_gives_what_the_ecp_manifest_does() {
        use crate::target::Target;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let m = crate::manifest::load(&root.join("manifests/phonebook-ecp.yaml"), &crate::template::Inputs::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let compose = crate::target::compose::Compose::from_env(false).unwrap();
        let ours: serde_yaml::Value =
            serde_yaml::from_str(&render(&m, "APP1", &|x| compose.addresses(x).superserver).unwrap()).unwrap();
        let text = std::fs::read_to_string(root.join("compose/merge/ecp-app.yaml")).unwrap();
        let theirs: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let (ours, theirs) = (&ours["actions"], &theirs["actions"]);
        let without_password = |v: &serde_yaml::Value| {
            let mut v = v.clone();
            for s in v.as_sequence_mut().unwrap() {
                s.as_mapping_mut().unwrap().remove("password_file");
            }
            v
        };
        assert_eq!(without_password(&ours["create_ecp_server"]), without_password(&theirs["create_ecp_server"]));
        assert_eq!(ours["create_database"], theirs["create_database"]);
        let ns = &m.namespaces[0];
        assert_eq!(theirs["create_namespace"][0]["name"].as_str(), Some(ns.name.as_str()));
        assert_eq!(theirs["create_namespace"][0]["globals"].as_str(), Some(ns.globals.as_str()));
        let maps: Vec<(String, String)> = theirs["create_mapping"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|x| (x["global"].as_str().unwrap().to_string(), x["database"].as_str().unwrap().to_string()))
            .collect();
        let want: Vec<(String, String)> = ns.mappings.iter().map(|x| (x.global.clone(), x.database.clone())).collect();
        assert_eq!(maps, want);
    }
}
