//! `/api/security/...`: users and roles (admin only, see `auth.rs`); `/api/login`,
//! `/api/logout` (the portal's session cookie) and `/api/whoami`.

use super::auth::{session_token, SESSION_COOKIE};
use super::error::{ApiError, ApiJson, ApiResult};
use super::{blocking, AppState, Deleted};
use crate::instance::{UserChange, UserInfo};
use crate::security::{Rights, RoleConfig};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/security/users", get(users))
        .route("/api/security/users/{name}", get(user).put(put_user).delete(delete_user))
        .route("/api/security/roles", get(roles))
        .route("/api/security/roles/{name}", get(role).put(put_role).delete(delete_role))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/whoami", get(whoami))
}

async fn users(State(instance): State<AppState>) -> Json<Vec<UserInfo>> {
    Json(instance.users())
}

async fn user(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<UserInfo>> {
    instance
        .users()
        .into_iter()
        .find(|u| u.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("user {name} does not exist")))
}

/// Hashing a password takes tens of milliseconds: off the async workers.
async fn put_user(
    State(instance): State<AppState>,
    Path(name): Path<String>,
    ApiJson(change): ApiJson<UserChange>,
) -> ApiResult<Json<UserInfo>> {
    blocking(move || instance.put_user(&name, change)).await.map(Json)
}

async fn delete_user(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Deleted>> {
    let deleted = name.clone();
    blocking(move || instance.delete_user(&name)).await?;
    Ok(Json(Deleted { deleted }))
}

#[derive(Serialize)]
struct RoleView {
    name: String,
    #[serde(flatten)]
    role: RoleConfig,
}

async fn roles(State(instance): State<AppState>) -> Json<Vec<RoleView>> {
    Json(instance.roles().into_iter().map(|(name, role)| RoleView { name, role }).collect())
}

async fn role(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<RoleView>> {
    instance
        .roles()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(name, role)| Json(RoleView { name, role }))
        .ok_or_else(|| ApiError::not_found(format!("role {name} does not exist (built-in roles are not listed)")))
}

async fn put_role(
    State(instance): State<AppState>,
    Path(name): Path<String>,
    ApiJson(role): ApiJson<RoleConfig>,
) -> ApiResult<Json<RoleView>> {
    let (n, r) = (name.clone(), role.clone());
    blocking(move || instance.put_role(&n, r)).await?;
    Ok(Json(RoleView { name, role }))
}

async fn delete_role(State(instance): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Deleted>> {
    let deleted = name.clone();
    blocking(move || instance.delete_role(&name)).await?;
    Ok(Json(Deleted { deleted }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

#[derive(Serialize)]
struct WhoAmI {
    /// `null` when no users are configured (nobody needs to log in).
    user: Option<String>,
    auth_required: bool,
}

/// The portal's login: a session cookie (HttpOnly, SameSite=Strict) for valid credentials.
async fn login(State(instance): State<AppState>, ApiJson(req): ApiJson<Login>) -> Response {
    let security = instance.security().clone();
    match security.authenticate(&req.user, &req.password, "portal").await {
        Ok(_) => {
            let token = security.open_session(&req.user);
            let cookie = format!(
                "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                crate::security::SESSION_TTL.as_secs()
            );
            let mut response =
                Json(WhoAmI { user: Some(req.user), auth_required: security.required() }).into_response();
            response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ASCII cookie"));
            response
        }
        Err(_) => ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "WRONGPASS",
            message: "invalid username-password pair or user is disabled".into(),
        }
        .into_response(),
    }
}

async fn logout(State(instance): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = session_token(&headers) {
        instance.security().close_session(&token);
    }
    let mut response = Json(serde_json::json!({ "logged_out": true })).into_response();
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ASCII cookie"));
    response
}

async fn whoami(State(instance): State<AppState>, Extension(rights): Extension<Arc<Rights>>) -> Json<WhoAmI> {
    Json(WhoAmI { user: rights.user.clone(), auth_required: instance.security().required() })
}
