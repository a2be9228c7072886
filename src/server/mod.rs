//! The HTTP server: the axum router, shared state, JSON errors and the conditional-GET wrapper every
//! public response goes through (strong ETag from the body, Last-Modified from the change log, 304s).

pub mod admin;
pub mod admin_console;
pub mod admin_webhooks;
pub mod cache;
pub mod cron_words;
pub mod embed;
pub mod licences;
pub mod metrics_route;
pub mod oruk_routes;
pub mod places_loader;
pub mod public;
pub mod status_page;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    /// The live config; SIGHUP swaps it.
    pub config: Arc<arc_swap::ArcSwap<Config>>,
    /// The admin bearer token; `None` closes the admin API (503).
    pub admin_token: Option<Arc<str>>,
    /// The daemon's sync runner, for admin resyncs.
    pub runner: Option<admin::SharedRunner>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Rendered calendars, reused until the store changes.
    pub cache: Arc<cache::ResponseCache>,
    /// Loads the postcode centroid file off the request path.
    pub places: Arc<places_loader::PlacesLoader>,
    /// The partners' attributions, worked out once per config.
    pub credits: Arc<licences::CreditsMemo>,
}

impl AppState {
    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The attributions of the config in force now.
    pub fn credits(&self) -> Arc<licences::Credits> {
        self.credits.of(&self.config())
    }
}

pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/resync", post(admin::resync))
        .route("/partners", get(admin::partners))
        .route("/runs", get(admin::runs_list))
        .route("/runs/{id}", get(admin::run_detail))
        .route("/review", get(admin::review_list))
        .route("/review/{id}", post(admin::review_decide))
        .route("/merge", post(admin::merge))
        .route("/split", post(admin::split))
        .route(
            "/webhooks",
            get(admin_webhooks::list).post(admin_webhooks::register),
        )
        .route("/webhooks/{id}", delete(admin_webhooks::remove))
        .route("/webhooks/{id}/retry", post(admin_webhooks::retry))
        .fallback(|| async { ApiError::not_found("no such admin route") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_token,
        ));
    // The admin console's pages, added after the bearer-token layer: they sign in by session.
    let admin = admin.merge(admin_console::router());
    Router::new()
        .nest("/admin", admin)
        .route("/", get(status_page::page))
        .route("/v1/organisations", get(public::organisations))
        .route("/v1/organisations/{id}", get(public::organisation))
        .route("/v1/events", get(public::events))
        .route("/v1/events/{id}", get(public::event))
        .route("/v1/feeds/organisations", get(public::organisations_feed))
        .route("/v1/feeds/events", get(public::events_feed))
        .route("/calendar.ics", get(public::calendar))
        .route("/partners/{id}/calendar.ics", get(public::partner_calendar))
        .route("/healthz", get(public::healthz))
        .route("/metrics", get(metrics_route::metrics))
        .route("/openapi.json", get(openapi))
        // Embeds for partners' sites (views of the public API) and one event as .ics.
        .route("/embed/", get(embed::snippets))
        .route("/embed/events", get(embed::events))
        .route("/embed/organisations", get(embed::organisations))
        .route("/embed/tributary.js", get(embed::script))
        .route("/v1/events/{id}/calendar.ics", get(embed::event_calendar))
        // Open Referral UK 3.0 over the merged store.
        .route("/oruk/", get(oruk_routes::root))
        .route("/oruk/services", get(oruk_routes::services))
        .route("/oruk/services/{id}", get(oruk_routes::service))
        .route(
            "/oruk/service_at_locations",
            get(oruk_routes::service_at_locations),
        )
        .route(
            "/oruk/service_at_locations/{id}",
            get(oruk_routes::service_at_location),
        )
        .route("/oruk/taxonomies", get(oruk_routes::taxonomies))
        .route("/oruk/taxonomies/{id}", get(oruk_routes::taxonomy))
        .route("/oruk/taxonomy_terms", get(oruk_routes::taxonomy_terms))
        .route("/oruk/taxonomy_terms/{id}", get(oruk_routes::taxonomy_term))
        // Partners' licences and attributions (the change feeds link here when they differ).
        .route("/v1/licences", get(licences::list))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            freshness,
        ))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(tower_http::cors::CorsLayer::permissive())
        .with_state(state)
}

/// A known route asked with a method it does not serve: 405 with the JSON error body every other
/// error has (axum adds the `Allow` header).
async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!("{method} is not allowed on this route"),
    }
}

/// The OpenAPI 3.1 document of every route (kept beside this file, checked against the router by
/// the tests).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route the router serves, as the OpenAPI document names them.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/v1/organisations"),
    ("get", "/v1/organisations/{id}"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{id}"),
    ("get", "/v1/feeds/organisations"),
    ("get", "/v1/feeds/events"),
    ("get", "/calendar.ics"),
    ("get", "/partners/{id}/calendar.ics"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/embed/"),
    ("get", "/embed/events"),
    ("get", "/embed/organisations"),
    ("get", "/embed/tributary.js"),
    ("get", "/v1/events/{id}/calendar.ics"),
    ("get", "/oruk/"),
    ("get", "/oruk/services"),
    ("get", "/oruk/services/{id}"),
    ("get", "/oruk/service_at_locations"),
    ("get", "/oruk/service_at_locations/{id}"),
    ("get", "/oruk/taxonomies"),
    ("get", "/oruk/taxonomies/{id}"),
    ("get", "/oruk/taxonomy_terms"),
    ("get", "/oruk/taxonomy_terms/{id}"),
    ("get", "/v1/licences"),
    ("post", "/admin/resync"),
    ("get", "/admin/partners"),
    ("get", "/admin/runs"),
    ("get", "/admin/runs/{id}"),
    ("get", "/admin/review"),
    ("post", "/admin/review/{id}"),
    ("post", "/admin/merge"),
    ("post", "/admin/split"),
    ("get", "/admin/webhooks"),
    ("post", "/admin/webhooks"),
    ("delete", "/admin/webhooks/{id}"),
    ("post", "/admin/webhooks/{id}/retry"),
];

async fn openapi(headers: HeaderMap) -> Response {
    cached(&headers, "application/json", OPENAPI.to_string(), None)
}

/// Records each request's route template, status and latency.
async fn count_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    state.metrics.record_http(
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
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
        crate::store::note_if_damaged(&e);
        crate::metrics::note_store_error();
        ApiError::internal(e)
    }
}

/// Runs blocking store work off the async threads, on a pool of its own with as many threads as
/// the store lends read connections. Requests beyond that queue for a thread instead of each
/// starting one: every extra thread would wait for a connection anyway, and keep an allocator
/// heap of its own after. Syncs keep the runtime's own blocking pool, so a long sync never
/// takes a request's thread.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    static POOL: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(crate::store::reader_limit())
            .thread_name("tributary-read")
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no separate pool for requests' store work"))
            .ok()
    });
    let task = match pool {
        Some(rt) => rt.spawn_blocking(f),
        None => tokio::task::spawn_blocking(f),
    };
    task.await.map_err(ApiError::internal)?
}

/// Strong ETag of a body.
pub fn etag_of(body: &[u8]) -> String {
    etag_of_parts([body])
}

/// Strong ETag of a body held in consecutive parts: the same as over its bytes in one piece.
pub fn etag_of_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    format!("\"{}\"", hex::encode(&h.finalize()[..16]))
}

/// What every cacheable answer says of its freshness until [`freshness`] puts the configured
/// `publish.max_age_secs` in its place (it is the default).
const PUBLIC_CACHE: &str = "public, max-age=60";

/// Gives every cacheable answer the configured `publish.max_age_secs`, read per request so a
/// reloaded config takes effect at once.
async fn freshness(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    let secs = state.config().publish.max_age_secs;
    if secs != crate::config::DEFAULT_MAX_AGE_SECS
        && resp
            .headers()
            .get(header::CACHE_CONTROL)
            .map(|v| v.as_bytes())
            == Some(PUBLIC_CACHE.as_bytes())
    {
        if let Ok(v) = header::HeaderValue::from_str(&format!("public, max-age={secs}")) {
            resp.headers_mut().insert(header::CACHE_CONTROL, v);
        }
    }
    resp
}

/// A cacheable response: strong ETag over the body, Last-Modified, 304 when the client has it.
pub fn cached(
    req: &HeaderMap,
    content_type: &'static str,
    body: String,
    last_modified: Option<chrono::DateTime<chrono::Utc>>,
) -> Response {
    let etag = etag_of(body.as_bytes());
    cached_with_etag(req, content_type, body.into(), &etag, last_modified)
}

/// As [`cached`], for a body whose ETag is already known.
pub fn cached_with_etag(
    req: &HeaderMap,
    content_type: &'static str,
    body: Body,
    etag: &str,
    last_modified: Option<chrono::DateTime<chrono::Utc>>,
) -> Response {
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
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, PUBLIC_CACHE);
    if let Some(lm) = &lm {
        builder = builder.header(header::LAST_MODIFIED, lm);
    }
    let resp = if not_modified {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
            .body(body)
    };
    resp.unwrap_or_else(|e| ApiError::internal(e).into_response())
}

/// What one client may hold of the server: how long it may take over a request head, and how many
/// connections all clients together may keep open.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_read_timeout: std::time::Duration,
    pub max_connections: usize,
}

/// Resolves once `stop` is true (or its sender is gone), holding no borrow of it across awaits.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Longest wait at shutdown for requests already being answered.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `app` on `listener` until `stop` turns true, then lets requests in progress finish (for
/// at most a few seconds). A connection that does not finish its request head within the timeout
/// is closed (slowloris); past `max_connections` new connections wait in the kernel's backlog
/// until one closes, so no client can make the daemon hold unbounded sockets and memory.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServeLimits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // The peer's address rides on each request, so a refused admin attempt names its client.
        let service = hyper_util::service::TowerToHyperService::new(
            tower_http::add_extension::AddExtension::new(
                app.clone(),
                axum::extract::ConnectInfo(peer),
            ),
        );
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still open at shutdown were cut off");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        documented.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
