//! Who is asking, and may they: authentication and the privilege each endpoint needs.
//!
//! With no users configured every request passes with open rights (the engine of
//! before). Once a user exists, a request carries HTTP Basic credentials (scripts, the
//! installer, Prometheus) or the portal's session cookie, except on the open endpoints:
//! `/health`, `/mirror_status` (load balancers probe them; they tell only liveness and
//! which member is primary), the portal page itself (static; its data comes from the
//! API) and login/logout. Basic credentials are checked with argon2 once, then found in
//! the keyed cache (`security::credentials`). The handlers see the request's rights as
//! an `Extension<Arc<Rights>>`; globals check them per database in the instance.

use super::error::ApiError;
use super::AppState;
use crate::security::{Privilege, Rights};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::sync::Arc;

/// The portal's session cookie.
pub const SESSION_COOKIE: &str = "mirrorlab_session";
/// Header the portal sends so that a 401 does not pop up the browser's Basic dialog.
pub const PORTAL_HEADER: &str = "x-mirrorlab-portal";

/// Endpoints served without credentials (see the module comment).
fn is_open(path: &str) -> bool {
    matches!(path, "/" | "/health" | "/mirror_status" | "/csp/user/mirror_status.cxw" | "/api/login" | "/api/logout")
}

/// The privilege an endpoint needs; `None`: any authenticated user (globals are checked
/// per database by the instance, `/api/whoami` tells who you are).
fn needed(method: &Method, path: &str) -> Option<(Privilege, &'static str)> {
    if path.starts_with("/api/globals/") || path == "/api/whoami" {
        return None;
    }
    if path.starts_with("/api/security") {
        return Some((Privilege::Admin, "manage users and roles"));
    }
    if (path == "/api/mirror/actions" && method == Method::POST)
        || (path == "/api/mirror/config" && method == Method::PUT)
    {
        return Some((Privilege::MirrorOperator, "act on or configure the mirror"));
    }
    if method == Method::GET || method == Method::HEAD {
        return Some((Privilege::Monitor, "read the instance's status"));
    }
    Some((Privilege::Admin, "change the instance"))
}

/// The middleware: authenticates, checks the endpoint's privilege, hands the rights on.
pub(super) async fn authenticate(State(instance): State<AppState>, mut request: Request, next: Next) -> Response {
    let security = instance.security().clone();
    let path = request.uri().path().to_string();
    if is_open(&path) {
        return next.run(request).await;
    }
    if !security.required() {
        request.extensions_mut().insert(Arc::new(Rights::open()));
        return next.run(request).await;
    }
    let portal = request.headers().contains_key(PORTAL_HEADER);
    let Some(rights) = identify(&security, request.headers()).await else { return unauthorized(portal) };
    if let Some((p, action)) = needed(request.method(), &path) {
        if let Err(e) = rights.check(p, action) {
            return ApiError::from(e).into_response();
        }
    }
    request.extensions_mut().insert(Arc::new(rights));
    next.run(request).await
}

/// The rights of the request's Basic credentials or portal session; `None` without valid
/// ones.
pub(super) async fn identify(security: &Arc<crate::security::Security>, headers: &HeaderMap) -> Option<Rights> {
    match credentials(headers)? {
        Credentials::Basic(user, password) => security.authenticate(&user, &password, "web").await.ok(),
        Credentials::Session(token) => security.session_user(&token).and_then(|u| security.rights_of(Some(&u))),
    }
}

enum Credentials {
    Basic(String, String),
    Session(String),
}

fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
        // Bounded before decoding: a user name and a password of at most 1 KiB each.
        if encoded.len() > 4096 {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Credentials::Basic(user.to_string(), password.to_string()));
    }
    session_token(headers).map(Credentials::Session)
}

/// The portal session cookie's value, if sent.
pub(super) fn session_token(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == SESSION_COOKIE && value.len() <= 128).then(|| value.to_string())
    })
}

pub(super) fn unauthorized(portal: bool) -> Response {
    let mut response = ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "NOAUTH",
        message: "authentication required: HTTP Basic credentials (curl -u user:password) or a portal login".into(),
    }
    .into_response();
    if !portal {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"mirrorlab\", charset=\"UTF-8\""));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_need_the_privilege_of_what_they_do() {
        let get = Method::GET;
        assert_eq!(needed(&get, "/api/globals/USER"), None);
        assert_eq!(needed(&Method::PUT, "/api/globals/USER"), None);
        assert_eq!(needed(&get, "/api/security/users").unwrap().0, Privilege::Admin);
        assert_eq!(needed(&Method::POST, "/api/mirror/actions").unwrap().0, Privilege::MirrorOperator);
        assert_eq!(needed(&Method::PUT, "/api/mirror/config").unwrap().0, Privilege::MirrorOperator);
        assert_eq!(needed(&get, "/api/mirror/status").unwrap().0, Privilege::Monitor);
        assert_eq!(needed(&get, "/metrics").unwrap().0, Privilege::Monitor);
        assert_eq!(needed(&Method::POST, "/api/databases").unwrap().0, Privilege::Admin);
        assert_eq!(needed(&Method::PATCH, "/api/settings").unwrap().0, Privilege::Admin);
        assert!(is_open("/health") && is_open("/mirror_status") && !is_open("/metrics") && !is_open("/api/instance"));
    }

    #[test]
    fn credentials_from_basic_or_the_session_cookie() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWRtaW46cGE6c3M=")); // admin:pa:ss
        assert!(matches!(credentials(&h), Some(Credentials::Basic(u, p)) if u == "admin" && p == "pa:ss"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; mirrorlab_session=abc"));
        assert!(matches!(credentials(&h), Some(Credentials::Session(t)) if t == "abc"));
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(credentials(&h).is_none());
    }
}
