//! `/api/namespaces`: list, create, show, delete, and global mappings.

use super::error::{ApiJson, ApiQuery, ApiResult};
use super::{blocking, AppState, Deleted};
use crate::error::EngineError;
use crate::instance::admin::NamespaceInfo;
use crate::instance::config::{normalize_name, MappingConfig};
use crate::instance::Instance;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/namespaces", get(list).post(create))
        .route("/api/namespaces/{name}", get(show).delete(delete))
        .route("/api/namespaces/{name}/mappings", get(mappings).put(add_mapping).delete(remove_mapping))
}

async fn list(State(instance): State<AppState>) -> ApiResult<Json<Vec<NamespaceInfo>>> {
    Ok(Json(blocking(move || Ok(instance.namespaces())).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
    /// The default database for the namespace's globals.
    globals: String,
}

/// 201 when the namespace is new, 200 when an identical one already existed.
async fn create(
    State(instance): State<AppState>,
    ApiJson(req): ApiJson<CreateRequest>,
) -> ApiResult<(StatusCode, Json<NamespaceInfo>)> {
    let name = normalize_name("namespace", &req.name).map_err(EngineError::Invalid)?;
    blocking(move || {
        let existed = find(&instance, &name).is_ok();
        let info = instance.create_namespace(&name, &req.globals)?;
        Ok((if existed { StatusCode::OK } else { StatusCode::CREATED }, Json(info)))
    })
    .await
}

async fn show(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<NamespaceInfo>> {
    Ok(Json(blocking(move || find(&instance, &name)).await?))
}

async fn delete(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Deleted>> {
    let name = name.to_ascii_uppercase();
    let deleted = name.clone();
    blocking(move || instance.delete_namespace(&name)).await?;
    Ok(Json(Deleted { deleted }))
}

async fn mappings(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Vec<MappingConfig>>> {
    Ok(Json(blocking(move || find(&instance, &name)).await?.mappings))
}

/// Idempotent: maps the globals to the database, redirecting an existing mapping of the
/// same globals. Answers with the namespace's mappings afterwards.
async fn add_mapping(
    State(instance): State<AppState>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<MappingConfig>,
) -> ApiResult<Json<Vec<MappingConfig>>> {
    blocking(move || {
        instance.add_mapping(&name, &req.global, &req.database)?;
        Ok(Json(find(&instance, &name)?.mappings))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveMappingQuery {
    global: String,
}

async fn remove_mapping(
    State(instance): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<RemoveMappingQuery>,
) -> ApiResult<Json<Vec<MappingConfig>>> {
    blocking(move || {
        instance.remove_mapping(&name, &q.global)?;
        Ok(Json(find(&instance, &name)?.mappings))
    })
    .await
}

/// A namespace by name (any case).
fn find(instance: &Instance, name: &str) -> crate::error::Result<NamespaceInfo> {
    let name = name.to_ascii_uppercase();
    instance.namespaces().into_iter().find(|n| n.name == name).ok_or(EngineError::NoNamespace(name))
}
