//! `GET /`: the portal, one self-contained page (no external assets) that reads the API.
//! The instance name is filled in on the server so the page says where it is at once.
//!
//! Once the engine has users, a request without valid credentials gets the same page
//! with status 401 and a Basic challenge: a browser asks for user and password (then
//! sends them with every request of the page), or, dismissed, shows the page, whose own
//! login form opens a session (cookie). The page holds no data: everything it shows comes
//! from the API, which checks every request.

use super::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("portal.html");

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(portal))
}

/// The page names the mirror member it is on (every member of a lab may share one
/// instance name), or the instance when it is no member.
async fn portal(State(instance): State<AppState>, headers: HeaderMap) -> Response {
    let config = instance.config();
    let name = config.mirror.as_ref().map_or(config.instance.name.clone(), |m| m.this_member.clone());
    let page = Html(PAGE.replace("{{NAME}}", &escape_html(&name)));
    let security = instance.security().clone();
    if security.required() && super::auth::identify(&security, &headers).await.is_none() {
        let mut response = super::auth::unauthorized(false);
        *response.body_mut() = page.into_response().into_body();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        return response;
    }
    page.into_response()
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
