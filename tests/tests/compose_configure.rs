//! The Compose lab's configure step (`mirrorlab-init configure`, `engine::container::
//! configure`) against real engines on loopback, without Docker: from members that are
//! configured but not created to a verified mirror with a mirrored database; a second run
//! finds everything done and changes nothing.

use engine::container::configure::{self, Member, Plan};
use mirrorlab_tests::{engine, free_port, http, Agent, Engine};
use std::time::Duration;

fn status(web: u16) -> serde_json::Value {
    let (code, body) = http(web, "GET", "/api/mirror/status", None);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"].clone()
}

#[test]
fn configure_creates_joins_mirrors_and_verifies_then_finds_it_all_done() {
    let temp = tempfile::tempdir().unwrap();
    let arbiter = Agent::arbiter(&[]);
    let names = ["MIRRORA", "MIRRORB"];
    let dirs: Vec<_> = names.iter().map(|n| temp.path().join(n)).collect();
    let agents: Vec<Agent> = dirs
        .iter()
        .map(|d| {
            std::fs::create_dir_all(d).unwrap();
            Agent::beside(d, &[])
        })
        .collect();
    let mirror_ports = [free_port(), free_port()];
    let engines: Vec<Engine> = dirs.iter().map(|d| Engine::start_in(d, &[])).collect();
    let members: Vec<serde_json::Value> = (0..2)
        .map(|i| {
            serde_json::json!({
                "name": names[i], "type": "failover",
                "superserver": format!("127.0.0.1:{}", engines[i].superserver_port),
                "mirror_address": format!("127.0.0.1:{}", mirror_ports[i]),
                "agent": format!("127.0.0.1:{}", agents[i].port),
            })
        })
        .collect();
    for (i, e) in engines.iter().enumerate() {
        let config = serde_json::json!({
            "name": "LAB", "this_member": names[i], "arbiter": format!("127.0.0.1:{}", arbiter.port), "members": members,
        });
        let (code, body) = http(e.web_port, "PUT", "/api/mirror/config", Some(&config.to_string()));
        assert_eq!(code, 200, "{body}");
    }
    let plan = Plan {
        members: (0..2)
            .map(|i| Member { host: "127.0.0.1".into(), web_port: engines[i].web_port, data_dir: dirs[i].clone() })
            .collect(),
        databases: vec!["PHONEBOOK".into()],
        timeout: Duration::from_secs(60),
    };

    let mut said = Vec::new();
    configure::run(&plan, &mut |l| said.push(l.to_string())).unwrap_or_else(|e| panic!("{e}\n{}", said.join("\n")));
    assert_eq!(status(engines[0].web_port)["status"], "Primary", "{said:?}");
    let b = status(engines[1].web_port);
    assert_eq!(b["status"], "Backup");
    assert!(said.iter().any(|l| l.contains("PHONEBOOK: copied")), "{said:?}");

    // The mirrored database carries writes from the primary to the backup.
    let mut a = engines[0].client();
    a.namespace("PHONEBOOK").unwrap();
    a.set("^Phone(1)", "Ann").unwrap();
    let mut c = engines[1].client();
    c.namespace("PHONEBOOK").unwrap();
    mirrorlab_tests::wait_until("the backup to read the write", Duration::from_secs(10), || {
        c.get("^Phone(1)").unwrap().is_some()
    });

    // Again: nothing to create, join, copy or activate.
    let mut again = Vec::new();
    configure::run(&plan, &mut |l| again.push(l.to_string())).unwrap();
    assert_eq!(again, vec!["primary: 127.0.0.1".to_string(), "127.0.0.1: verified".to_string()]);
}

#[test]
fn a_member_without_a_mirror_configuration_is_named() {
    let temp = tempfile::tempdir().unwrap();
    let e = Engine::start_in(temp.path(), &[]);
    let plan = Plan {
        members: vec![Member { host: "127.0.0.1".into(), web_port: e.web_port, data_dir: temp.path().into() }],
        databases: vec![],
        timeout: Duration::from_secs(10),
    };
    let err = configure::run(&plan, &mut |_| {}).unwrap_err();
    assert!(err.contains("has no mirror configuration: give it a merge file with actions.config_mirror"), "{err}");
}
