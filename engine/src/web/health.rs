//! `GET /health`: liveness. Answers as long as the web server runs; it reads nothing.

use super::AppState;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
