//! `GET /api/ecp`: both ECP roles' status (docs/design/ecp.md): the Data Servers list with
//! each one's state, member and counters; the application servers attached here.

use super::AppState;
use crate::ecp::status::EcpStatus;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/ecp", get(status))
}

async fn status(State(instance): State<AppState>) -> Json<EcpStatus> {
    Json(instance.ecp_status())
}
