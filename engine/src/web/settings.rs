//! `PATCH /api/settings`: the instance settings that take effect while it runs. Today that
//! is the journal's instance-wide durability, which the installer sets on every member of
//! a lab (a lab with a mirror acknowledges a write only once it is synced, and confirmed by
//! the backup). The change is validated, saved to `engine.yaml`, then applied, like every
//! admin change; `GET /api/instance` shows the result under `settings`.

use super::error::{ApiJson, ApiResult};
use super::{blocking, AppState};
use crate::instance::config::JournalSettings;
use crate::instance::session::Durability;
use axum::extract::State;
use axum::routing::patch;
use axum::{Json, Router};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/settings", patch(change))
}

/// The settings a running instance can change. Unknown keys are refused by name, so a
/// setting that would only apply at the next start is never silently accepted.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsChange {
    journal: Option<JournalChange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalChange {
    durability: Option<Durability>,
}

async fn change(
    State(instance): State<AppState>,
    ApiJson(req): ApiJson<SettingsChange>,
) -> ApiResult<Json<JournalSettings>> {
    let durability = req.journal.and_then(|j| j.durability);
    let i = instance.clone();
    let config = blocking(move || {
        i.update_config(|c| {
            if let Some(d) = durability {
                c.journal.durability = d;
            }
            Ok(())
        })
    })
    .await?;
    Ok(Json(config.journal))
}
