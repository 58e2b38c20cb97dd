//! The management API and portal on the web port (52773): JSON over HTTP for operators,
//! the `engine` CLI and demos, plus one self-contained HTML page.
//!
//! Invariants:
//! - Handlers never block the async runtime: every instance call that may touch disk runs
//!   in [`blocking`]; only in-memory reads (`status`, `config`) run inline.
//! - Every failure is an [`error::ApiError`]: an engine error name, a message, a status.
//! - Request bodies and requests in flight are bounded ([`MAX_BODY_BYTES`],
//!   [`MAX_IN_FLIGHT`]), and a body must arrive whole within the header read timeout of
//!   its head, so a client trickling one holds no connection or place for long.

mod auth;
mod databases;
mod ecp;
mod error;
mod globals;
mod guard;
mod health;
mod instance;
mod journal;
mod listener;
mod metrics;
mod mirror;
mod namespaces;
mod portal;
mod security;
mod settings;
#[cfg(test)]
mod tests;

use crate::instance::Instance;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::{ApiError, ApiResult};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Largest request body accepted (a global value is at most 3,641,144 bytes, plus JSON
/// quoting and the reference).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Requests handled at once; more are refused with 503 rather than queued without bound.
pub const MAX_IN_FLIGHT: usize = 256;

type AppState = Arc<Instance>;

/// The management API and portal for `instance`.
pub fn router(instance: Arc<Instance>) -> Router {
    router_with(instance, listener::HEADER_READ_TIMEOUT)
}

/// [`router`] whose request bodies must arrive within `body_timeout`.
fn router_with(instance: Arc<Instance>, body_timeout: std::time::Duration) -> Router {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let allowed = Arc::new(guard::AllowedHosts::new(&instance.config().network.allowed_hosts));
    Router::new()
        .merge(health::routes())
        .merge(portal::routes())
        .merge(instance::routes())
        .merge(ecp::routes())
        .merge(settings::routes())
        .merge(databases::routes())
        .merge(namespaces::routes())
        .merge(globals::routes())
        .merge(journal::routes())
        .merge(metrics::routes())
        .merge(mirror::routes())
        .merge(security::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint; see docs/api.md") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(body_timeout, body_in_time))
        .layer(middleware::from_fn_with_state(instance.clone(), auth::authenticate))
        .layer(middleware::from_fn_with_state(in_flight, limit_in_flight))
        .layer(middleware::from_fn_with_state(allowed, guard_request))
        .with_state(instance)
}

/// Reads the request's body whole (at most [`MAX_BODY_BYTES`]) within `timeout`, before
/// any handler sees it: 408 when it is not all there in time, 413 when it is too large.
async fn body_in_time(State(timeout): State<std::time::Duration>, request: Request, next: Next) -> Response {
    use axum::http::StatusCode;
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Ok(Err(_)) => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "ILLEGAL",
            message: format!("the request body is larger than {MAX_BODY_BYTES} bytes, or was cut off"),
        }
        .into_response(),
        Err(_) => {
            tracing::warn!(method = %parts.method, uri = %parts.uri, "web: request body not complete within {timeout:?}");
            ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "ILLEGAL",
                message: format!("the request body did not arrive whole within {} s", timeout.as_secs_f64()),
            }
            .into_response()
        }
    }
}

/// Host allow-list and cross-site request checks (see [`guard`]).
async fn guard_request(State(allowed): State<Arc<guard::AllowedHosts>>, request: Request, next: Next) -> Response {
    match guard::check(request.method(), request.headers(), &allowed) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::warn!(method = %request.method(), uri = %request.uri(), "web: {}", e.message);
            e.into_response()
        }
    }
}

/// Serves the management API on `listener` until `shutdown` completes, then lets requests
/// in progress finish.
/// `protected_mode`: only loopback peers are served (see [`crate::access`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    instance: Arc<Instance>,
    protected_mode: bool,
    tls: Option<crate::tls::client_ports::ClientPortTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, instance, protected_mode, listener::HEADER_READ_TIMEOUT, tls, shutdown).await
}

/// [`serve`] with another header read timeout (tests).
pub(crate) async fn serve_with(
    listener: tokio::net::TcpListener,
    instance: Arc<Instance>,
    protected_mode: bool,
    header_timeout: std::time::Duration,
    tls: Option<crate::tls::client_ports::ClientPortTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!("management API and portal on {scheme}://{addr}/");
    }
    let listener =
        listener::GuardedListener::new(listener, protected_mode, listener::MAX_WEB_CONNECTIONS, header_timeout, tls);
    axum::serve(listener, router_with(instance, header_timeout)).with_graceful_shutdown(shutdown).await
}

async fn limit_in_flight(State(permits): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match permits.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "BUSY",
            message: format!("more than {MAX_IN_FLIGHT} requests in progress; retry shortly"),
        }
        .into_response(),
    }
}

/// The answer to a DELETE of a database or namespace.
#[derive(serde::Serialize)]
struct Deleted {
    deleted: String,
}

/// Runs an instance call that may touch disk on the blocking pool.
async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> crate::error::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format!("request handler failed: {e}"))),
    }
}
