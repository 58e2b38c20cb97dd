//! `GET /api/instance`, `POST /api/freeze`, `POST /api/thaw`.

use super::error::{ApiJson, ApiResult};
use super::{blocking, AppState};
use crate::instance::config::{JournalSettings, StorageSettings};
use crate::instance::InstanceStatus;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/instance", get(status)).route("/api/freeze", post(freeze)).route("/api/thaw", post(thaw))
}

#[derive(Serialize)]
struct InstanceView {
    #[serde(flatten)]
    status: InstanceStatus,
    settings: Settings,
}

#[derive(Serialize)]
struct Settings {
    journal: JournalSettings,
    storage: StorageSettings,
}

async fn status(State(instance): State<AppState>) -> Json<InstanceView> {
    let config = instance.config();
    Json(InstanceView {
        status: instance.status(),
        settings: Settings { journal: config.journal, storage: config.storage },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeRequest {
    /// Thaw by itself after this long; the instance's `storage.freeze_timeout_s` when absent.
    timeout_s: Option<u64>,
}

#[derive(Serialize)]
struct FrozenView {
    frozen: bool,
    /// After a freeze: when it thaws by itself, in seconds from now.
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_s: Option<u64>,
}

async fn freeze(State(instance): State<AppState>, ApiJson(req): ApiJson<FreezeRequest>) -> ApiResult<Json<FrozenView>> {
    let timeout_s = req.timeout_s.unwrap_or_else(|| instance.config().storage.freeze_timeout_s);
    let i = instance.clone();
    blocking(move || i.freeze(Some(Duration::from_secs(timeout_s)))).await?;
    Ok(Json(FrozenView { frozen: instance.is_frozen(), timeout_s: Some(timeout_s) }))
}

async fn thaw(State(instance): State<AppState>) -> ApiResult<Json<FrozenView>> {
    instance.thaw()?;
    Ok(Json(FrozenView { frozen: instance.is_frozen(), timeout_s: None }))
}
