//! The Compose ECP lab end to end: `docker compose -f compose/ecp.yml up` gives the
//! phonebook mirror and two app servers, configured (the installer service runs
//! `mirrorlab apply manifests/phonebook-ecp.yaml` and exits 0 once both report their data
//! server Normal); a write through app1's published port is read through app2's. Its own
//! project and image tag, Docker-picked host ports, `down -v` whatever happens. Without
//! Docker the test says why and returns.

use mirrorlab_tests::docker::{self, await_exit, host_port, Cleanup, Compose};
use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::wait_until;
use std::time::Duration;

/// Longer than the installer's own bounds, so its error is what we see.
const CONFIGURED_WITHIN: Duration = Duration::from_secs(300);

fn phonebook(port: u16, password: &str) -> Client {
    let mut c = mirrorlab_tests::lab_client(port, Some(password), Duration::from_secs(5)).unwrap();
    c.namespace("PHONEBOOK").unwrap();
    c
}

fn read(c: &mut Client, r: &str) -> Option<String> {
    c.get(r).ok().flatten().map(|v| String::from_utf8_lossy(&v).into_owned())
}

#[test]
fn compose_ecp_up_configures_two_app_servers_that_share_the_mirrors_data() {
    if let Some(reason) = docker::unavailable().or_else(docker::compose_unavailable) {
        println!("docker_compose_ecp: not run: {reason}");
        return;
    }
    let tag = docker::unique("");
    let mut cleanup = Cleanup::default();
    cleanup.images = vec![format!("mirrorlab/engine:{tag}"), format!("mirrorlab/arbiter:{tag}")];
    docker::build_images(&tag);
    let mut env = vec![("MIRRORLAB_TAG".to_string(), tag.clone()), ("MIRRORLAB_BIND".to_string(), String::new())];
    // Empty: Docker picks free host ports, so parallel runs never collide.
    for member in ["MIRRORA", "MIRRORB", "MIRRORC", "APP1", "APP2"] {
        env.push((format!("{member}_SUPERSERVER_PORT"), String::new()));
        env.push((format!("{member}_WEB_PORT"), String::new()));
    }
    let compose = Compose { project: docker::unique("ecp"), file: docker::repo_root().join("compose/ecp.yml"), env };
    cleanup.commands.push(compose.argv(&["down", "-v", "--remove-orphans", "--timeout", "5"]));

    compose.run(&["up", "-d"]);
    let installer = compose.container("installer");
    let describe = || {
        ["app1", "app2", "mirrora", "installer"]
            .iter()
            .map(|s| format!("--- {s}:\n{}", docker::logs(&compose.container(s))))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match await_exit(&installer, CONFIGURED_WITHIN) {
        Ok(0) => {}
        Ok(code) => panic!("installer exited {code}\n{}", describe()),
        Err(e) => panic!("{e}\n{}", describe()),
    }
    let secrets = docker::logs(&compose.container("secrets"));
    let password = secrets
        .lines()
        .find_map(|l| l.split_once("): ").filter(|(head, _)| head.contains("Admin password")).map(|(_, p)| p.trim()))
        .unwrap_or_else(|| panic!("the secrets service printed no password:\n{secrets}"))
        .to_string();
    let app1_port = host_port(&compose.container("app1"), 1972);
    let app2_port = host_port(&compose.container("app2"), 1972);
    let mut app1 = phonebook(app1_port, &password);
    let mut app2 = phonebook(app2_port, &password);
    assert_eq!(read(&mut app2, "^Company(1,\"name\")").as_deref(), Some("Acme Corporation"), "{}", describe());
    app1.set("^Company(40,\"name\")", "Kramerica").unwrap();
    wait_until("app1's write read through app2", Duration::from_secs(10), || {
        read(&mut app2, "^Company(40,\"name\")").as_deref() == Some("Kramerica")
    });
}
