//! `GET /api/journal`: the journal files and how far the journal is written and synced.

use super::error::ApiResult;
use super::{blocking, AppState};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/journal", get(journal))
}

#[derive(Serialize)]
struct JournalView {
    /// Position of the last record appended.
    last_position: u64,
    /// Every record up to here is synced to disk.
    durable_position: u64,
    /// Oldest first.
    files: Vec<FileView>,
    /// The mirror journal, on a mirror member (same fields; its own `mirror` is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror: Option<Box<JournalView>>,
}

#[derive(Serialize)]
struct FileView {
    path: String,
    sequence: u64,
    first_position: u64,
    /// `null` while the file holds no record.
    last_position: Option<u64>,
    bytes: u64,
    records: u64,
    /// When the file was started, in milliseconds since the Unix epoch.
    created_ms: u64,
}

fn view(journal: &crate::journal::Journal) -> JournalView {
    let files = journal
        .segments()
        .into_iter()
        .map(|s| FileView {
            path: s.path.display().to_string(),
            sequence: s.sequence,
            first_position: s.first_position,
            last_position: s.last_position,
            bytes: s.bytes,
            records: s.records,
            created_ms: s.created_ms,
        })
        .collect();
    JournalView {
        last_position: journal.last_position(),
        durable_position: journal.durable_position(),
        files,
        mirror: None,
    }
}

async fn journal(State(instance): State<AppState>) -> ApiResult<Json<JournalView>> {
    blocking(move || {
        let mut local = view(instance.journal());
        local.mirror = instance.mirror_journal().map(|j| Box::new(view(&j)));
        Ok(Json(local))
    })
    .await
}
