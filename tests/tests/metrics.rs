//! `/metrics` on every member of a lab, as Prometheus and promtool see it: a real
//! Prometheus (Debian's) scrapes a local lab with the configuration `mirrorlab
//! metrics-config` prints, and its query API answers each member's mirror status.

use mirrorlab_tests::engine::client::Client;
use mirrorlab_tests::{free_port, lab_members, mirrorlab_ok, tool_available, try_http, try_http_as, wait_until};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Stop(Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of the series `name{...member="M"...}` in an exposition text.
fn series(text: &str, name: &str, member: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("member=\"{member}\"")))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn every_member_exports_its_mirror_status_promtool_accepts_it_and_prometheus_scrapes_it() {
    let dir = tempfile::tempdir().unwrap();
    let labs = dir.path().join("labs");
    let phonebook = mirrorlab_tests::repo_manifest("phonebook.yaml").display().to_string();
    mirrorlab_ok(dir.path(), &labs, &["up", &phonebook]);
    // /metrics needs the monitor privilege: the lab's admin password.
    let password = mirrorlab_tests::lab_password(&labs);
    let _lab = mirrorlab_tests::DownOnDrop(dir.path(), labs.clone());
    let members = lab_members(dir.path(), &labs);
    let expected = [("MIRRORA", 2.0), ("MIRRORB", 3.0), ("MIRRORC", 4.0)];
    for m in &members {
        let name = m["name"].as_str().unwrap();
        let web = m["web_port"].as_u64().unwrap() as u16;
        for path in ["/metrics", "/api/monitor/metrics"] {
            let (code, text) = try_http_as(web, "GET", path, None, password.as_deref()).unwrap();
            assert_eq!(code, 200, "{name} {path}: {text}");
            assert!(text.contains("\nmirrorlab_up 1\n"), "{text}");
            let own = series(&text, "mirrorlab_mirror_status", name);
            let want = expected.iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(own, Some(want), "{name}'s own status in {path}:\n{text}");
        }
        if name == "MIRRORA" {
            // A durable mirrored commit: the primary measured its stages (mirror::stages)
            // before it confirmed it.
            let port = m["superserver_port"].as_u64().unwrap() as u16;
            let mut client = Client::connect(format!("127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
            let admin = password.as_deref().expect("up drew an admin password");
            client.command(&[b"AUTH", b"admin", admin.as_bytes()]).unwrap();
            client.namespace("PHONEBOOK").unwrap();
            client.command(&[b"DURABILITY", b"always"]).unwrap();
            client.set("^Company(9,\"name\")", "Stages Inc").unwrap();
            // The primary sees every member, and has synced its mirror journal (the lab's
            // initial data): the group-commit histograms counted those syncs.
            let (_, text) = try_http_as(web, "GET", "/metrics", None, password.as_deref()).unwrap();
            let count = |series: &str| {
                text.lines().find_map(|l| l.strip_prefix(&format!("{series} "))?.parse::<f64>().ok()).unwrap_or(0.0)
            };
            assert!(count("mirrorlab_mirror_journal_sync_seconds_count") >= 1.0, "{text}");
            assert!(count("mirrorlab_mirror_journal_batch_records_sum") >= 1.0, "{text}");
            assert!(count("mirrorlab_mirror_commit_round_trip_seconds_count") >= 1.0, "{text}");
            assert!(count("mirrorlab_mirror_commit_confirm_seconds_count") >= 1.0, "{text}");
            // The superserver's counters, as INFO shows them: this test's client is open
            // and ran three commands.
            assert!(count("mirrorlab_resp_connected_clients") >= 1.0, "{text}");
            assert!(count("mirrorlab_resp_connections_received_total") >= 1.0, "{text}");
            assert!(count("mirrorlab_resp_commands_processed_total") >= 3.0, "{text}");
            // A refused command counts as an error reply; the caches hold the lab's data.
            assert!(client.command(&[b"INCRBY", b"^Company(9,\"name\")", b"1e400"]).is_err());
            let (_, text) = try_http_as(web, "GET", "/metrics", None, password.as_deref()).unwrap();
            let count = |series: &str| {
                text.lines().find_map(|l| l.strip_prefix(&format!("{series} "))?.parse::<f64>().ok()).unwrap_or(0.0)
            };
            assert!(count("mirrorlab_resp_error_replies_total") >= 1.0, "{text}");
            assert!(count("mirrorlab_cache_bytes{database=\"COMPANY\"}") > 0.0, "{text}");
            for (member, code) in expected {
                assert_eq!(series(&text, "mirrorlab_mirror_member_status", member), Some(code), "{member}:\n{text}");
            }
        }
        if name == "MIRRORB" {
            // The backup received the lab's initial data: appended, applied and synced.
            let (_, text) = try_http_as(web, "GET", "/metrics", None, password.as_deref()).unwrap();
            for series in [
                "mirrorlab_mirror_commit_member_append_seconds_count",
                "mirrorlab_mirror_commit_member_sync_seconds_count",
            ] {
                let n = text.lines().find_map(|l| l.strip_prefix(&format!("{series} "))?.parse::<f64>().ok());
                assert!(n.unwrap_or(0.0) >= 1.0, "{series} on the backup:\n{text}");
            }
        }
        if tool_available("promtool", "metrics: promtool check metrics") {
            let (_, text) = try_http_as(web, "GET", "/metrics", None, password.as_deref()).unwrap();
            let mut child = Command::new("promtool")
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool on {name}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    if !tool_available("prometheus", "metrics: a real Prometheus scraping the lab") {
        return;
    }
    let config = mirrorlab_ok(dir.path(), &labs, &["metrics-config", "--interval", "1s"]);
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let port = free_port();
    let _prometheus = Stop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Prometheus's own query API: one series per member, with the lab's labels.
    let query = "/api/v1/query?query=mirrorlab_mirror_status";
    let mut last = String::new();
    wait_until("Prometheus to have scraped every member", Duration::from_secs(60), || {
        let Ok((200, body)) = try_http(port, "GET", query, None) else { return false };
        last = body;
        let v: serde_json::Value = serde_json::from_str(&last).unwrap_or_default();
        v["data"]["result"].as_array().is_some_and(|r| r.len() == 3)
    });
    let v: serde_json::Value = serde_json::from_str(&last).unwrap();
    for r in v["data"]["result"].as_array().unwrap() {
        let member = r["metric"]["member"].as_str().unwrap();
        let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        let want = expected.iter().find(|(n, _)| *n == member).unwrap().1;
        assert_eq!(value, want, "{member} in Prometheus: {r}");
        assert_eq!(r["metric"]["lab"], "phonebook", "{r}");
    }
}

/// The Grafana dashboard in the repository is JSON, and every series its panels query is
/// one the engine exports (or Prometheus's own `up`).
#[test]
fn the_grafana_dashboard_queries_only_series_the_engine_exports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("docs/grafana-mirror.json")).unwrap()).unwrap();
    let exported = std::fs::read_to_string(root.join("engine/src/web/metrics.rs")).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 6);
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for name in
                expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("mirrorlab_"))
            {
                // A counter's `_total` and a histogram's series are named after the metric.
                let short = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .fold(name.trim_start_matches("mirrorlab_"), |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
                assert!(
                    exported.contains(&format!("\"{short}\"")),
                    "panel {} queries {name}, which is not exported",
                    p["title"]
                );
            }
        }
    }
}
