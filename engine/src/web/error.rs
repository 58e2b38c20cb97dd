//! Errors as the management API shows them, and the extractors that turn bad input into
//! them: every failure is `{"error": {"code": "...", "message": "..."}}` with an HTTP
//! status chosen from the error name in one place, [`status_for`].

use crate::error::EngineError;
use crate::globals::GlobalsError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

/// An error response: an engine error name, a message a person can act on, a status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    /// A request the API refuses before reaching the engine (bad JSON, bad query).
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code: "ILLEGAL", message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code: "NOTFOUND", message: message.into() }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "INTERNAL", message: message.into() }
    }
}

/// The HTTP status for an engine error name.
pub fn status_for(code: &str) -> StatusCode {
    match code {
        "NAMESPACE" | "DIRECTORY" => StatusCode::NOT_FOUND,
        "ILLEGAL" | "SYNTAX" | "SUBSCRIPT" | "MAXSTRING" | "MAXNUMBER" => StatusCode::BAD_REQUEST,
        "PROTECT" | "NOPERM" => StatusCode::FORBIDDEN,
        "NOTMIRRORED" => StatusCode::CONFLICT,
        "FROZEN" | "SHUTDOWN" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let code = e.code();
        ApiError { status: status_for(code), code, message: e.to_string() }
    }
}

impl From<GlobalsError> for ApiError {
    fn from(e: GlobalsError) -> ApiError {
        EngineError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, "management API: {}", self.message);
        }
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON request body. Unlike `axum::Json` it does not insist on a `Content-Type` (so
/// `curl -d` works), reads an empty body as `{}` (so optional bodies can be left out), and
/// reports every failure, unknown fields included, as an [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // `Bytes` enforces the router's body limit.
        let bytes = Bytes::from_request(req, state).await.map_err(|e| ApiError {
            status: e.status(),
            code: "ILLEGAL",
            message: format!("request body: {}", e.body_text()),
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(text).map(ApiJson).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
    }
}

/// Query parameters, refused with an [`ApiError`] when they do not fit `T`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
