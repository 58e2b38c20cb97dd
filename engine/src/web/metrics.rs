//! `GET /metrics` and `GET /api/monitor/metrics` (the reference product's path): the
//! instance and its mirror in the Prometheus exposition format, for Prometheus and
//! Grafana. Read-only and cheap: every figure is read from memory at scrape time (the
//! mirror status is the Mirror Monitor's own, so a dashboard and the portal agree).
//!
//! Names are `mirrorlab_*`; a mirror member's status uses the reference product's numbers
//! (1 Not Initialized, 2 Primary, 3 Backup, 4 Connected, 5 Transition, 6 Synchronizing,
//! 7 Waiting, 8 Stopped, 9 Crashed/Down), one series per member this member sees.

use super::{blocking, AppState};
use crate::mirror::status::MirrorStatus;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// OpenMetrics text, for a scraper that asks for it (Prometheus does).
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format, for everyone else (curl, promtool).
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics)).route("/api/monitor/metrics", get(metrics))
}

async fn metrics(State(instance): State<AppState>, headers: HeaderMap) -> Response {
    let status = instance.status();
    let syncs = instance.journal().sync_count();
    let mirror_journal = instance.mirror_journal();
    let mirror_syncs = mirror_journal.as_ref().map(|j| j.sync_count());
    let mut commits = vec![("local", instance.journal().commit_stats().clone())];
    commits.extend(mirror_journal.map(|j| ("mirror", j.commit_stats().clone())));
    let control = instance.mirror_control();
    let stages = control.as_ref().and_then(|c| c.commit_stages());
    let mirror = match control {
        Some(c) => blocking(move || Ok(c.status())).await.ok().flatten(),
        None => None,
    };
    let text = render(&Figures {
        status: &status,
        syncs,
        mirror_syncs,
        commits: &commits,
        mirror: mirror.as_ref(),
        stages: stages.as_deref(),
        clients: &instance.superserver_counters(),
        caches: &instance.cache_usage(),
    });
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, text) = if openmetrics { (OPENMETRICS, text) } else { (PROMETHEUS_TEXT, classic(&text)) };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-store")], text).into_response()
}

/// OpenMetrics text as the classic format: a counter's HELP and TYPE name its `_total`
/// samples, and there is no `# EOF`.
fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> =
        openmetrics.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter")).collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines().filter(|l| *l != "# EOF") {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// What one scrape reports.
pub(crate) struct Figures<'a> {
    pub status: &'a crate::instance::InstanceStatus,
    pub syncs: u64,
    pub mirror_syncs: Option<u64>,
    /// Each journal's group-commit histograms.
    pub commits: &'a [(&'static str, crate::journal::CommitStats)],
    pub mirror: Option<&'a MirrorStatus>,
    /// Where mirrored commits spend their time (mirror::stages).
    pub stages: Option<&'a crate::mirror::stages::CommitStages>,
    /// The superserver's client counters (as INFO clients and stats show them).
    pub clients: &'a crate::instance::counters::ServerCounters,
    /// Each mounted database's cache: (name, bytes held, bytes not yet checkpointed).
    pub caches: &'a [(String, usize, usize)],
}

type Labels = Vec<(&'static str, String)>;

/// A gauge family registered under `name`.
fn family(registry: &mut Registry, name: &str, help: &str) -> Family<Labels, Gauge> {
    let f = Family::<Labels, Gauge>::default();
    registry.register(name, help, f.clone());
    f
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: i64) {
    let g: Gauge = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The exposition text for `f`.
pub(crate) fn render(f: &Figures) -> String {
    let mut r = Registry::with_prefix("mirrorlab");
    gauge(&mut r, "up", "1 while the instance serves", 1);
    let info = family(&mut r, "instance_info", "The instance's name and version (value 1)");
    info.get_or_create(&vec![("name", f.status.name.clone()), ("version", f.status.version.clone())]).set(1);
    let journal = |kind: &str| vec![("journal", kind.to_string())];
    let position = family(&mut r, "journal_position", "Last position written to the journal");
    let durable = family(&mut r, "journal_durable_position", "Last position synced to disk");
    position.get_or_create(&journal("local")).set(as_i64(f.status.journal_position));
    durable.get_or_create(&journal("local")).set(as_i64(f.status.durable_position));
    if let (Some(p), Some(d)) = (f.status.mirror_journal_position, f.status.mirror_durable_position) {
        position.get_or_create(&journal("mirror")).set(as_i64(p));
        durable.get_or_create(&journal("mirror")).set(as_i64(d));
    }
    let syncs: Family<Labels, Counter<u64, AtomicU64>> = Family::default();
    r.register(
        "journal_syncs",
        "fdatasync calls of the journal (group commit shares one among writers)",
        syncs.clone(),
    );
    syncs.get_or_create(&journal("local")).inc_by(f.syncs);
    if let Some(s) = f.mirror_syncs {
        syncs.get_or_create(&journal("mirror")).inc_by(s);
    }
    // One name per journal (`journal_...` and `mirror_journal_...`): histograms shared with
    // the journal cannot be one labelled family.
    for (journal, stats) in f.commits {
        let prefix = if *journal == "mirror" { "mirror_journal" } else { "journal" };
        r.register(
            format!("{prefix}_sync_seconds"),
            format!("How long each group commit's fdatasync of the {journal} journal took"),
            stats.sync_seconds.clone(),
        );
        r.register(
            format!("{prefix}_batch_records"),
            format!("Records each fdatasync of the {journal} journal made durable (the writers sharing it)"),
            stats.batch_records.clone(),
        );
    }
    let c = f.clients;
    gauge(
        &mut r,
        "resp_connected_clients",
        "Superserver connections open now",
        as_i64(c.connected.load(Relaxed) as u64),
    );
    for (name, help, value) in [
        ("resp_connections_received", "Superserver connections accepted", &c.connections),
        ("resp_connections_rejected", "Superserver connections refused at max_connections", &c.rejected),
        ("resp_commands_processed", "Commands the superserver ran (each command of a pipeline)", &c.commands),
        ("resp_error_replies", "Superserver commands answered with an error", &c.errors),
    ] {
        let counter: Counter<u64, AtomicU64> = Counter::default();
        counter.inc_by(value.load(Relaxed));
        r.register(name, help, counter);
    }
    let held = family(&mut r, "cache_bytes", "Bytes a database's cache holds (bounded by storage.cache_mb)");
    let dirty = family(&mut r, "cache_dirty_bytes", "Bytes of a database's cache not yet written to its file");
    for (name, bytes, not_written) in f.caches {
        let l = vec![("database", name.clone())];
        held.get_or_create(&l).set(as_i64(*bytes as u64));
        dirty.get_or_create(&l).set(as_i64(*not_written as u64));
    }
    gauge(&mut r, "frozen", "1 while database-file writes are frozen for a backup", i64::from(f.status.frozen));
    gauge(&mut r, "databases", "Databases configured", as_i64(f.status.databases as u64));
    gauge(&mut r, "namespaces", "Namespaces configured", as_i64(f.status.namespaces as u64));
    let Some(m) = f.mirror else {
        return finish(&r);
    };
    gauge(&mut r, "mirror_epoch", "This member's durable mirror epoch", as_i64(m.epoch));
    if let Some(stages) = f.stages {
        for ((name, help), histogram) in STAGES.iter().zip(stages.in_order()) {
            r.register(*name, *help, histogram.clone());
        }
    }
    gauge(
        &mut r,
        "mirror_acked_position",
        "On the primary: the highest position acknowledged to clients",
        as_i64(m.acked_position),
    );
    gauge(&mut r, "mirror_no_failover", "1 while no-failover is set", i64::from(m.no_failover));
    let me = vec![("mirror", m.mirror.clone()), ("member", m.member.clone())];
    family(&mut r, "mirror_status", "This member's mirror status (1 Not Initialized, 2 Primary, 3 Backup, 4 Connected, 5 Transition, 6 Synchronizing, 7 Waiting, 8 Stopped, 9 Crashed)")
        .get_or_create(&me)
        .set(i64::from(m.status.status.prometheus()));
    let member_status = family(
        &mut r,
        "mirror_member_status",
        "Each member's status as this member sees it (numbers as mirror_status)",
    );
    let position = family(
        &mut r,
        "mirror_member_position",
        "Each member's acknowledged mirror journal position, as this member sees it",
    );
    let latency_bytes = family(
        &mut r,
        "mirror_member_journal_latency_bytes",
        "Journal not yet received by the member (measured on the primary)",
    );
    let latency = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    r.register(
        "mirror_member_latency_seconds",
        "How long the member has been behind (journal plus database latency)",
        latency.clone(),
    );
    for line in &m.members {
        let l = vec![("mirror", m.mirror.clone()), ("member", line.name.clone())];
        member_status.get_or_create(&l).set(i64::from(line.status.prometheus()));
        position.get_or_create(&l).set(as_i64(line.position));
        latency_bytes.get_or_create(&l).set(as_i64(line.journal_latency.bytes));
        let ms = line.journal_latency.time_ms.saturating_add(line.database_latency.time_ms);
        latency.get_or_create(&l).set(ms as f64 / 1000.0);
    }
    finish(&r)
}

/// The stages of a mirrored commit (mirror::stages), in `CommitStages::in_order`'s order.
const STAGES: [(&str, &str); 4] = [
    (
        "mirror_commit_round_trip_seconds",
        "On the primary: a batch sent to a member until its acknowledgement that it is synced arrives",
    ),
    (
        "mirror_commit_confirm_seconds",
        "On the primary: a member's acknowledgement until the commits it covers are confirmed to clients",
    ),
    ("mirror_commit_member_append_seconds", "On a member: received records appended to its journal and applied"),
    ("mirror_commit_member_sync_seconds", "On a member: the fsync of received records (one per group of batches)"),
];

fn finish(r: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, r).expect("writing to a String cannot fail");
    out
}
