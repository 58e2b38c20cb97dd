//! The mirror on the web port:
//!
//! - `GET /api/mirror/config`, `PUT /api/mirror/config`: this instance's membership.
//! - `GET /api/mirror/status`: the running member's Mirror Monitor facts ([`MirrorStatus`]).
//! - `POST /api/mirror/actions`: operator actions ([`MirrorAction`]).
//! - `GET /mirror_status` (also under the reference product's path
//!   `/csp/user/mirror_status.cxw`): the load balancers' health check, plain text,
//!   `200 SUCCESS` on the primary and `503 FAILED` everywhere else.
//!
//! Status and actions go through the instance's [`MirrorControl`](crate::mirror::status::MirrorControl),
//! always off the async workers: the runtime behind it may take locks or wait for members.

use super::error::{ApiError, ApiJson, ApiResult};
use super::{blocking, AppState};
use crate::error::EngineError;
use crate::mirror::config::MirrorConfig;
use crate::mirror::status::{MirrorAction, MirrorStatus};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/mirror/config", get(show).put(configure))
        .route("/api/mirror/status", get(status))
        .route("/api/mirror/actions", post(act))
        .route("/mirror_status", get(health))
        .route("/csp/user/mirror_status.cxw", get(health))
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

#[derive(Serialize)]
struct StatusView {
    /// `null` while this instance is not a mirror member.
    status: Option<MirrorStatus>,
}

/// The running member's status; `None` when there is none.
async fn current(instance: &AppState) -> ApiResult<Option<MirrorStatus>> {
    let Some(control) = instance.mirror_control() else { return Ok(None) };
    blocking(move || Ok(control.status())).await
}

async fn status(State(instance): State<AppState>) -> ApiResult<Json<StatusView>> {
    Ok(Json(StatusView { status: current(&instance).await? }))
}

#[derive(Serialize)]
struct ActionView {
    message: String,
}

async fn act(State(instance): State<AppState>, ApiJson(body): ApiJson<Value>) -> ApiResult<Json<ActionView>> {
    let action = parse_action(body)?;
    let control = instance.mirror_control().ok_or(EngineError::NotMirrored)?;
    let message = blocking(move || control.act(action)).await?;
    Ok(Json(ActionView { message }))
}

/// A request body as a [`MirrorAction`]: its serde form, database names upper-cased, and no
/// field the action does not take (`{"action": "create", "name": "X"}` is refused rather
/// than `name` silently ignored).
fn parse_action(body: Value) -> Result<MirrorAction, ApiError> {
    let given: Vec<String> = match &body {
        Value::Object(fields) => fields.keys().cloned().collect(),
        _ => {
            return Err(ApiError::bad_request(
                "request body: expected an object such as {\"action\": \"add-database\", \"name\": \"COMPANY\"}",
            ))
        }
    };
    let action = serde_json::from_value::<MirrorAction>(body)
        .map_err(|e| ApiError::bad_request(format!("request body: {e}")))?;
    let action = normalized(action);
    let canonical = serde_json::to_value(&action).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(extra) = given.iter().find(|k| canonical.get(k.as_str()).is_none()) {
        let verb = canonical.get("action").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::bad_request(format!("request body: unknown field `{extra}` for action `{verb}`")));
    }
    Ok(action)
}

/// Database names are case-insensitive and kept upper-case.
fn normalized(action: MirrorAction) -> MirrorAction {
    match action {
        MirrorAction::AddDatabase { name } => MirrorAction::AddDatabase { name: name.to_ascii_uppercase() },
        MirrorAction::ActivateDatabase { name } => MirrorAction::ActivateDatabase { name: name.to_ascii_uppercase() },
        MirrorAction::RemoveDatabase { name } => MirrorAction::RemoveDatabase { name: name.to_ascii_uppercase() },
        other => other,
    }
}

/// `200 SUCCESS` when this member is the primary acknowledging writes, `503 FAILED`
/// otherwise (a backup, an async, not a member, or the status could not be read). A
/// primary "In Trouble" has stopped acknowledging (it waits for its backup, and may be
/// about to be superseded), so a load balancer must not send clients there; one in
/// "Transition" is not open for work yet. Plain text, never cached.
///
/// The answer is decided when it is sent, from the member's acknowledgement lease
/// ([`MirrorControl::acknowledging_primary`](crate::mirror::status::MirrorControl)): a
/// primary resumed after a pause may have been superseded before its mirror task ran
/// again, and must not answer a request queued during the pause with `SUCCESS`.
async fn health(State(instance): State<AppState>) -> Response {
    let primary = match instance.mirror_control() {
        Some(control) => blocking(move || Ok(control.acknowledging_primary())).await.unwrap_or(false),
        None => false,
    };
    let (code, text) = if primary { (StatusCode::OK, "SUCCESS") } else { (StatusCode::SERVICE_UNAVAILABLE, "FAILED") };
    (code, [(header::CACHE_CONTROL, "no-store")], text).into_response()
}
