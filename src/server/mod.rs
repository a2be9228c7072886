//! The HTTP server: the axum router, shared state, JSON errors and the conditional-GET wrapper every
//! public response goes through (strong ETag from the body, Last-Modified from the change log, 304s).

pub mod public;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub config: Arc<Config>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/organisations", get(public::organisations))
        .route("/v1/organisations/{id}", get(public::organisation))
        .route("/v1/events", get(public::events))
        .route("/v1/events/{id}", get(public::event))
        .route("/calendar.ics", get(public::calendar))
        .route("/partners/{id}/calendar.ics", get(public::partner_calendar))
        .route("/healthz", get(public::healthz))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(tower_http::cors::CorsLayer::permissive())
        .with_state(state)
}

/// An error answered as `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_param(param: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_parameter",
            message: format!("{param}: {message}"),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "the server could not answer this request; see its log".into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// A cacheable response: strong ETag over the body, Last-Modified, 304 when the client has it.
pub fn cached(
    req: &HeaderMap,
    content_type: &'static str,
    body: String,
    last_modified: Option<chrono::DateTime<chrono::Utc>>,
) -> Response {
    let digest = Sha256::digest(body.as_bytes());
    let etag = format!("\"{}\"", crate::store::records::hex(&digest[..16]));
    let lm = last_modified.map(|t| t.format("%a, %d %b %Y %H:%M:%S GMT").to_string());

    let not_modified = match req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        Some(inm) => inm
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag || t == "*"),
        None => match (
            req.get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok()),
            last_modified,
        ) {
            (Some(since), Some(lm)) => lm.timestamp() <= since.timestamp(),
            _ => false,
        },
    };

    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "public, max-age=60");
    if let Some(lm) = &lm {
        builder = builder.header(header::LAST_MODIFIED, lm);
    }
    let resp = if not_modified {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
            .body(Body::from(body))
    };
    resp.unwrap_or_else(|e| ApiError::internal(e).into_response())
}
