//! `GET /api/mirror/config` and `PUT /api/mirror/config`: this instance's mirror
//! membership.

use super::error::{ApiJson, ApiResult};
use super::{blocking, AppState};
use crate::mirror::config::MirrorConfig;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/mirror/config", get(show).put(configure))
}

#[derive(Serialize)]
struct MirrorView {
    /// `null` while this instance is not a mirror member.
    mirror: Option<MirrorConfig>,
    /// On PUT: whether anything changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
}

async fn show(State(instance): State<AppState>) -> Json<MirrorView> {
    Json(MirrorView { mirror: instance.config().mirror, changed: None })
}

async fn configure(
    State(instance): State<AppState>,
    ApiJson(wanted): ApiJson<MirrorConfig>,
) -> ApiResult<Json<MirrorView>> {
    let i = instance.clone();
    let changed = blocking(move || i.configure_mirror(wanted)).await?;
    Ok(Json(MirrorView { mirror: instance.config().mirror, changed: Some(changed) }))
}
