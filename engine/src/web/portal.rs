//! `GET /`: the portal, one self-contained page (no external assets) that reads the API.
//! The instance name is filled in on the server so the page says where it is at once.

use super::AppState;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;

const PAGE: &str = include_str!("portal.html");

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(portal))
}

/// The page names the mirror member it is on (every member of a lab may share one
/// instance name), or the instance when it is no member.
async fn portal(State(instance): State<AppState>) -> Html<String> {
    let config = instance.config();
    let name = config.mirror.as_ref().map_or(config.instance.name.clone(), |m| m.this_member.clone());
    Html(PAGE.replace("{{NAME}}", &escape_html(&name)))
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
