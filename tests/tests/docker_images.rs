//! The container images, built from clean with the documented script and run for real:
//! tagged with the version and the requested tag, sizes within bounds, the installer
//! runnable in the engine image, the engine container healthy, a value written and read back
//! through its superserver from the host, and the engine finding the arbiter by its
//! container hostname (our resolver: getaddrinfo cannot do it in a FROM scratch image).
//! Without a Docker daemon the test says why and returns.

use mirrorlab_tests::docker::{self, await_healthy, docker, host_port, image_size, Cleanup};
use mirrorlab_tests::engine;
use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::wait_until;
use std::process::Command;
use std::time::{Duration, Instant};

const MB: u64 = 1_000_000;
/// Size bound of each image (docs/benchmarks.md records the actual sizes). 48 MB since
/// mutual TLS and users: rustls, ring and webpki (and rcgen in `mirrorlab`) add about 2 MB
/// to each of the four static binaries, argon2 and the authentication about 1.2 MB to the
/// engine and the installer; they keep their symbols (the engine image went from about
/// 29 MB to about 39 MB).
const MAX_IMAGE: u64 = 48 * MB;
/// The workspace version: every build is tagged with it (and `latest`).
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn image_id(image: &str) -> Option<String> {
    let o = docker::docker_quiet(&["image", "inspect", "--format", "{{.Id}}", image]);
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The shared tags a build also sets (`latest`, the version), each with the image it
/// named before the test, if any.
fn shared_tags() -> Vec<(String, Option<String>)> {
    let names = ["engine", "arbiter"]
        .iter()
        .flat_map(|i| [format!("mirrorlab/{i}:{VERSION}"), format!("mirrorlab/{i}:latest")])
        .collect::<Vec<_>>();
    names.into_iter().map(|n| (n.clone(), image_id(&n))).collect()
}

/// Images the shared tags named before the build that no tag names any more: the build
/// moved those tags to its fresh image of this checkout (which stays, as a build's
/// result), and the old image would be left dangling.
fn orphaned(before: &[(String, Option<String>)]) -> Vec<String> {
    let untagged = |id: &str| {
        let o = docker::docker_quiet(&["image", "inspect", "--format", "{{len .RepoTags}}", id]);
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0"
    };
    let mut out: Vec<String> = before.iter().filter_map(|(_, old)| old.clone()).filter(|id| untagged(id)).collect();
    out.dedup();
    out
}

fn api(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    engine::cli::http::call(port, method, path, body, Duration::from_secs(10)).ok().map(|r| (r.status, r.body))
}

#[test]
fn images_build_from_clean_run_healthy_serve_writes_and_resolve_the_arbiter_by_name() {
    if let Some(reason) = docker::unavailable() {
        println!("docker_images: not run: {reason}");
        return;
    }
    let tag = docker::unique("");
    let engine_image = format!("mirrorlab/engine:{tag}");
    let arbiter_image = format!("mirrorlab/arbiter:{tag}");
    let network = docker::unique("net");
    let (arbiter, member) = (docker::unique("arbiter"), docker::unique("mirrora"));
    let mut cleanup = Cleanup::default();
    cleanup.images = vec![engine_image.clone(), arbiter_image.clone()];

    let before = shared_tags();
    // The shared tags the test creates go with it, even if the build fails half way (a
    // tag that is not there is reported at teardown, not raised).
    cleanup.images.extend(before.iter().filter(|(_, old)| old.is_none()).map(|(n, _)| n.clone()));

    let started = Instant::now();
    let build = Command::new(docker::repo_root().join("images/build.sh"))
        .args(["--no-cache", &tag])
        .output()
        .expect("run images/build.sh");
    assert!(
        build.status.success(),
        "images/build.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    println!("images built in {:.1} s", started.elapsed().as_secs_f64());
    cleanup.images.extend(orphaned(&before));

    // One build, three tags: the requested one, the version and `latest` name one image.
    for i in ["engine", "arbiter"] {
        let requested = image_id(&format!("mirrorlab/{i}:{tag}")).expect("the requested tag");
        let version = image_id(&format!("mirrorlab/{i}:{VERSION}"));
        assert_eq!(version.as_deref(), Some(requested.as_str()), "mirrorlab/{i}:{VERSION} is the image built");
        let latest = image_id(&format!("mirrorlab/{i}:latest"));
        assert_eq!(latest.as_deref(), Some(requested.as_str()), "mirrorlab/{i}:latest is the image built");
    }

    let (engine_size, arbiter_size) = (image_size(&engine_image), image_size(&arbiter_image));
    println!("image sizes: engine {engine_size} bytes, arbiter {arbiter_size} bytes");
    assert!(engine_size <= MAX_IMAGE, "engine image {engine_size} bytes, bound {MAX_IMAGE}");
    assert!(arbiter_size <= MAX_IMAGE, "arbiter image {arbiter_size} bytes, bound {MAX_IMAGE}");

    // The installer ships in the engine image and runs there (static, FROM scratch).
    let version = docker(&["run", "--rm", "--entrypoint", "/usr/local/bin/mirrorlab", &engine_image, "--version"]);
    assert_eq!(version, format!("mirrorlab {VERSION}"));

    docker(&["network", "create", &network]);
    cleanup.networks.push(network.clone());
    // The hostnames the mirror configuration uses; the container names stay unique.
    cleanup.containers.push(arbiter.clone());
    docker(&["run", "-d", "--name", &arbiter, "--network", &network, "--network-alias", "arbiter", &arbiter_image]);
    cleanup.containers.push(member.clone());
    let started = Instant::now();
    docker(&[
        "run",
        "-d",
        "--name",
        &member,
        "--network",
        &network,
        "--hostname",
        "mirrora",
        "--network-alias",
        "mirrora",
        "-p",
        "127.0.0.1::1972",
        "-p",
        "127.0.0.1::52773",
        &engine_image,
    ]);
    await_healthy(&member, Duration::from_secs(60));
    println!("engine container healthy {:.1} s after docker run", started.elapsed().as_secs_f64());

    let (resp, web) = (host_port(&member, 1972), host_port(&member, 52773));
    let mut c =
        Client::connect(format!("127.0.0.1:{resp}"), Duration::from_secs(5)).expect("the published superserver");
    c.set("^docker(\"written\")", "from the host").unwrap();
    let mut c2 = Client::connect(format!("127.0.0.1:{resp}"), Duration::from_secs(5)).unwrap();
    assert_eq!(c2.get("^docker(\"written\")").unwrap().as_deref(), Some(&b"from the host"[..]));

    // A one-member mirror whose arbiter is named by hostname: the engine reports being
    // connected to it only if it resolved "arbiter" through Docker's DNS.
    let config = r#"{"name":"IMAGES","this_member":"MIRRORA","arbiter":"arbiter:2188","members":[
        {"name":"MIRRORA","type":"failover","superserver":"mirrora:1972","mirror_address":"mirrora:2189","agent":"mirrora:2188"}]}"#;
    let (code, body) = api(web, "PUT", "/api/mirror/config", Some(config)).expect("configure");
    assert_eq!(code, 200, "{body}");
    let (code, body) = api(web, "POST", "/api/mirror/actions", Some(r#"{"action":"create"}"#)).expect("create");
    assert_eq!(code, 200, "{body}");
    let mut last = String::new();
    wait_until("the engine to reach the arbiter by name", Duration::from_secs(30), || {
        last = api(web, "GET", "/api/mirror/status", None).map(|(_, b)| b).unwrap_or_default();
        last.contains("\"arbiter\":\"Only this member is connected to the arbiter\"")
    });

    // docker stop = SIGTERM to mirrorlab-init: the engine stops cleanly and the
    // container exits with the engine's status.
    docker(&["stop", "--time", "30", &member]);
    let code = docker(&["inspect", "--format", "{{.State.ExitCode}}", &member]);
    assert_eq!(code, "0", "a stopped engine container exits 0; its log:\n{}", docker::logs(&member));
}
