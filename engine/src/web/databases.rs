//! `/api/databases`: list, create, show, delete, mount, dismount, integrity check.

use super::error::{ApiJson, ApiResult};
use super::{blocking, AppState, Deleted};
use crate::error::EngineError;
use crate::instance::admin::DatabaseInfo;
use crate::instance::config::normalize_name;
use crate::instance::Instance;
use crate::storage::dbfile::IntegrityReport;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/databases", get(list).post(create))
        .route("/api/databases/{name}", get(show).delete(delete))
        .route("/api/databases/{name}/mount", post(mount))
        .route("/api/databases/{name}/dismount", post(dismount))
        .route("/api/databases/{name}/integrity", get(integrity))
}

async fn list(State(instance): State<AppState>) -> ApiResult<Json<Vec<DatabaseInfo>>> {
    Ok(Json(blocking(move || Ok(instance.databases())).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    /// Relative to the data directory; `databases/<NAME>` when absent.
    directory: Option<String>,
    #[serde(default)]
    read_only: bool,
}

/// 201 when the database is new, 200 when an identical one already existed.
async fn create(
    State(instance): State<AppState>,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<DatabaseInfo>)> {
    let name = normalize_name("database", &req.name).map_err(EngineError::Invalid)?;
    blocking(move || {
        let existed = find(&instance, &name).is_ok();
        let info = instance.create_database(&name, req.directory.as_deref(), req.read_only)?;
        Ok((if existed { StatusCode::OK } else { StatusCode::CREATED }, Json(info)))
    })
    .await
}

async fn show(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<DatabaseInfo>> {
    Ok(Json(blocking(move || find(&instance, &name)).await?))
}

async fn delete(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Deleted>> {
    let name = name.to_ascii_uppercase();
    let deleted = name.clone();
    blocking(move || instance.delete_database(&name)).await?;
    Ok(Json(Deleted { deleted }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MountRequest {
    #[serde(default)]
    read_only: bool,
}

async fn mount(
    State(instance): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<MountRequest>,
) -> ApiResult<Json<DatabaseInfo>> {
    Ok(Json(blocking(move || instance.mount_database(&name, req.read_only)).await?))
}

async fn dismount(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<DatabaseInfo>> {
    Ok(Json(
        blocking(move || {
            instance.dismount_database(&name)?;
            find(&instance, &name)
        })
        .await?,
    ))
}

async fn integrity(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<IntegrityReport>> {
    Ok(Json(blocking(move || instance.integrity(&name)).await?))
}

/// A configured database by name (any case), mounted or not.
fn find(instance: &Instance, name: &str) -> crate::error::Result<DatabaseInfo> {
    let name = name.to_ascii_uppercase();
    instance.databases().into_iter().find(|d| d.name == name).ok_or(EngineError::NoDatabase(name))
}
