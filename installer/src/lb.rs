//! What other tools need to watch a lab: `mirrorlab metrics-config` (Prometheus) and
//! `mirrorlab haproxy-config`: a load balancer in front of a lab that follows the primary,
//! as the reference product documents for its load balancers: every mirror member is a
//! server, and HAProxy's HTTP check of `/mirror_status` on its web port (200 on the
//! primary only) keeps exactly the primary in service. Clients connect to one address and
//! reach whichever member is primary now; after a failover, connections to the old primary
//! are closed so clients reconnect to the new one.
//!
//! With `security.tls_clients` the members' ports speak TLS only: HAProxy passes the
//! client connections through untouched (TLS from the client to the member, whose
//! certificate names 127.0.0.1, where HAProxy listens: the client verifies the member,
//! and HAProxy holds no key and never sees a password), and its health check speaks TLS
//! itself, verifying the member's certificate with the lab CA. Prometheus scrapes over
//! HTTPS with the same CA.

use crate::manifest::Manifest;
use crate::target::Target;
use std::path::Path;

/// How often HAProxy checks the member in service (the primary).
pub const CHECK_INTERVAL_MS: u32 = 500;
/// How often it checks the members out of service: a new primary reaches clients within
/// the lab's failover time plus about this.
pub const DOWN_CHECK_INTERVAL_MS: u32 = 100;

/// The configuration for `haproxy -f`: the superserver (RESP) on `127.0.0.1:port` and the
/// primary's portal and API on `127.0.0.1:port + 1`. `ca`: the lab CA, when the members'
/// ports speak TLS only.
pub fn haproxy_config(m: &Manifest, t: &dyn Target, port: u16, ca: Option<&Path>) -> String {
    let members: Vec<_> = m.mirror_members().map(|x| (x.name.clone(), t.ports(&x.name))).collect();
    let web_port = port.saturating_add(1);
    let docker_note = if m.target == crate::manifest::TargetKind::Docker {
        " (the docker target's host ports change when a container restarts: run it again then)"
    } else {
        ""
    };
    let mut out: Vec<String> = vec![
        format!("# HAProxy in front of lab {}: clients connect to 127.0.0.1:{port} (RESP) and", m.lab),
        format!("# 127.0.0.1:{web_port} (portal and API) and always reach the primary."),
        format!("# Written by `mirrorlab haproxy-config` for the ports the lab has now{docker_note}."),
        "# Run: haproxy -f this-file".into(),
        "global".into(),
        "    maxconn 4096".into(),
        String::new(),
        "defaults".into(),
        "    mode tcp".into(),
        "    # Members are on this machine: a connection is made at once or refused. HAProxy".into(),
        "    # waits up to this long before retrying a refused one on another member.".into(),
        "    timeout connect 250ms".into(),
        "    timeout client 1h".into(),
        "    timeout server 1h".into(),
        "    # While no member is in service (a failover), a new connection waits this long.".into(),
        "    timeout queue 10s".into(),
        "    # A member is in service only while /mirror_status answers 200: the primary.".into(),
        "    option httpchk GET /mirror_status".into(),
        "    http-check expect status 200".into(),
        "    # One failed check takes a member out and closes its client connections, so".into(),
        "    # clients reconnect to the new primary; one good check puts it in. Members out of".into(),
        format!("    # service are checked every {DOWN_CHECK_INTERVAL_MS} ms, so a new primary is in service that"),
        "    # soon after taking over; a refused connection takes a member out at once and is".into(),
        "    # retried on another.".into(),
        format!(
            "    default-server inter {CHECK_INTERVAL_MS}ms downinter {DOWN_CHECK_INTERVAL_MS}ms fastinter {DOWN_CHECK_INTERVAL_MS}ms fall 1 rise 1 on-marked-down shutdown-sessions observe layer4 error-limit 1 on-error mark-down"
        ),
        "    option redispatch".into(),
        "    retries 3".into(),
    ];
    // The check speaks TLS to the web port and believes only a certificate of the lab CA
    // naming `localhost` (as every member certificate does); client traffic passes through.
    let check_tls = ca.map_or(String::new(), |ca| {
        format!(" check-ssl verify required ca-file {} verifyhost localhost", ca.display())
    });
    if ca.is_some() {
        out.extend([
            String::new(),
            "# The members speak TLS only: clients connect with TLS through these ports and".into(),
            "# verify the member's certificate with the lab CA (it names 127.0.0.1).".into(),
        ]);
    }
    for (front, back, web) in [("superserver", "primary_superserver", false), ("portal", "primary_portal", true)] {
        let bind = if web { web_port } else { port };
        out.extend([
            String::new(),
            format!("frontend {front}"),
            format!("    bind 127.0.0.1:{bind}"),
            format!("    default_backend {back}"),
            String::new(),
            format!("backend {back}"),
        ]);
        for (name, p) in &members {
            let to = if web { p.web } else { p.superserver };
            out.push(format!("    server {name} 127.0.0.1:{to} check port {}{check_tls}", p.web));
        }
    }
    out.push(String::new());
    out.join("\n")
}

/// `mirrorlab metrics-config`: a Prometheus configuration that scrapes every member's
/// `/metrics` (its web port), labelled with the lab and the member, every `interval`.
/// `password_file`: the lab's admin password file, which Prometheus reads for HTTP Basic
/// (`/metrics` needs the monitor privilege once engines have users); `None` for a lab
/// without one.
/// `ca`: the lab CA, when the members' web ports speak TLS only (scheme https).
pub fn prometheus_config(
    m: &Manifest,
    t: &dyn Target,
    interval: &str,
    password_file: Option<&Path>,
    ca: Option<&Path>,
) -> String {
    let mut out = vec![
        format!("# Prometheus scraping lab {} (`mirrorlab metrics-config`, for the ports it has now).", m.lab),
        "# Run: prometheus --config.file=this-file; dashboards: docs/grafana-mirror.json".into(),
        "scrape_configs:".into(),
        format!("  - job_name: mirrorlab-{}", m.lab),
        format!("    scrape_interval: {interval}"),
        "    metrics_path: /metrics".into(),
    ];
    if let Some(ca) = ca {
        out.extend(["    scheme: https".into(), "    tls_config:".into(), format!("      ca_file: {}", ca.display())]);
    }
    if let Some(file) = password_file {
        out.extend([
            "    basic_auth:".into(),
            format!("      username: {}", crate::credentials::ADMIN_USER),
            format!("      password_file: {}", file.display()),
        ]);
    }
    out.push("    static_configs:".into());
    for x in &m.members {
        out.push(format!("      - targets: [\"127.0.0.1:{}\"]", t.ports(&x.name).web));
        out.push(format!("        labels: {{ lab: \"{}\", instance_name: \"{}\" }}", m.lab, x.name));
    }
    out.push(String::new());
    out.join("\n")
}
