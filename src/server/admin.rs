//! Admin routes under `/admin/`, behind a bearer token compared in constant time. With no token
//! configured every admin route answers 503 — never open. Resync requests go through the same
//! single-flight runner as the scheduler, so a resync of a partner already syncing joins that run.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{blocking, ApiError, AppState};
use crate::config::AdminToken;
use crate::model::RecordKind;
use crate::scheduler;
use crate::store::{records, review, runs};
use crate::sync::SyncOptions;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("admin.token_file {path}: {source}")]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("admin.token_file {0} is empty")]
    EmptyFile(std::path::PathBuf),
}

/// Reads the admin token from the configured place. `Ok(None)`: no token set, admin is closed.
pub fn load_token(token: &AdminToken) -> Result<Option<String>, TokenError> {
    match token {
        AdminToken::Env(name) => Ok(std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())),
        AdminToken::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| TokenError::File {
                path: path.clone(),
                source,
            })?;
            let t = text.trim().to_string();
            if t.is_empty() {
                return Err(TokenError::EmptyFile(path.clone()));
            }
            Ok(Some(t))
        }
    }
}

/// The credentials of an `Authorization: Bearer …` header; the scheme name is case-insensitive
/// (RFC 7235 §2.1).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware: 503 without a configured token, 401 on a missing or wrong one.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.admin_token.as_deref() else {
        return ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "admin_disabled",
            message: "no admin token is configured (admin.token_env or admin.token_file)".into(),
        }
        .into_response();
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    let ok = given
        .is_some_and(|g| constant_time_eq::constant_time_eq(g.as_bytes(), expected.as_bytes()));
    if !ok {
        let client = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::warn!(
            path = %req.uri().path(),
            %client,
            presented = given.is_some(),
            "admin request refused: missing or wrong bearer token"
        );
        let mut resp = ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "a valid bearer token is required".into(),
        }
        .into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"tributary-admin\""),
        );
        return resp;
    }
    next.run(req).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResyncBody {
    #[serde(default)]
    pub partners: Vec<String>,
    #[serde(default)]
    pub full: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub wait: bool,
}

fn flag(p: &HashMap<String, String>, name: &str) -> Result<Option<bool>, ApiError> {
    match p.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true" | "1" | "yes") => Ok(Some(true)),
        Some("false" | "0" | "no") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_param(
            name,
            format!("{other:?} must be true or false"),
        )),
    }
}

/// `POST /admin/resync` — body `{"partners": [...], "full": bool, "wait": bool}` or the query
/// parameters `partner`, `full`, `wait`. No partner means all. 202 with run ids, or 200 with the
/// finished runs when `wait` is set.
pub async fn resync(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let Some(runner) = state.runner.clone() else {
        return Err(ApiError::unavailable("this server runs no scheduler"));
    };
    // The body is optional: query parameters alone are a complete request.
    let mut req: ResyncBody = if body.iter().all(u8::is_ascii_whitespace) {
        ResyncBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_param("body", e))?
    };
    if let Some(partner) = p.get("partner") {
        req.partners
            .extend(partner.split(',').map(|s| s.trim().to_string()));
    }
    req.full |= flag(&p, "full")?.unwrap_or(false);
    req.force |= flag(&p, "force")?.unwrap_or(false);
    req.wait |= flag(&p, "wait")?.unwrap_or(false);
    for id in &req.partners {
        if state.config().partner(id).is_none() {
            return Err(ApiError::bad_param(
                "partners",
                format!("{id:?} is not a configured partner"),
            ));
        }
    }
    let ids: Vec<String> = if req.partners.is_empty() {
        state
            .config()
            .partners
            .iter()
            .map(|p| p.id.to_string())
            .collect()
    } else {
        req.partners.clone()
    };
    let opts = SyncOptions {
        full: req.full,
        trigger: "admin".into(),
        force: req.force,
    };
    let mut tickets = Vec::new();
    for id in &ids {
        let t = runner.start(id, opts.clone()).await.map_err(|e| match e {
            scheduler::RunError::UnknownPartner(p) => {
                ApiError::bad_param("partners", format!("{p:?} is not a configured partner"))
            }
            other => ApiError::internal(other),
        })?;
        tracing::info!(partner = %id, run = t.run_id, joined = t.joined, "resync requested");
        tickets.push(t);
    }
    if !req.wait {
        let runs: Vec<_> = tickets
            .iter()
            .map(|t| serde_json::json!({"partner": t.partner, "run_id": t.run_id, "joined": t.joined}))
            .collect();
        return Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "runs": runs })),
        )
            .into_response());
    }
    let mut runs = Vec::new();
    for t in tickets {
        let (partner, run_id, joined) = (t.partner.clone(), t.run_id, t.joined);
        let report = t.wait().await;
        runs.push(serde_json::json!({
            "partner": partner, "run_id": run_id, "joined": joined,
            "result": report.as_ref().map(|r| r.outcome.as_str()),
            "counts": report.as_ref().map(|r| r.counts),
            "error": report.and_then(|r| r.error),
        }));
    }
    Ok((StatusCode::OK, Json(serde_json::json!({ "runs": runs }))).into_response())
}

/// `GET /admin/partners` — each partner's health at a glance.
pub async fn partners(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut running = HashMap::new();
    let mut next = HashMap::new();
    if let Some(runner) = &state.runner {
        let config = state.config();
        for p in &config.partners {
            if let Some(live) = runner.progress(p.id.as_str()).await {
                running.insert(p.id.to_string(), live);
            }
            if let Some(at) = runner.next_sync(p.id.as_str()) {
                next.insert(p.id.to_string(), at);
            }
        }
    }
    let st = state.clone();
    let out = blocking(move || {
        let conn = st.store.reader()?;
        let mut out = Vec::new();
        let config = st.config();
        for p in &config.partners {
            let pid = p.id.as_str();
            let (last, ok) = runs::latest(&conn, pid)?;
            let (failed, streak) = runs::failures(&conn, pid)?;
            let (orgs, events) = records::partner_counts(&conn, pid)?;
            out.push(serde_json::json!({
                "id": pid,
                "name": p.name,
                "priority": p.priority,
                "schedule": p.schedule.expr,
                "next_run": next.get(pid).copied().or_else(|| scheduler::next_run(p, &config)).map(|t| t.to_rfc3339()),
                "running_run_id": running.get(pid).map(|(run, _)| run),
                "progress": running.get(pid).map(|(_, p)| p),
                "last_run": last,
                "last_success_at": ok.and_then(|r| r.finished_at),
                "last_failure": failed.map(|r| serde_json::json!({
                    "run_id": r.id, "at": r.finished_at.unwrap_or(r.started_at), "error": r.error,
                })),
                "consecutive_failures": streak,
                "records": {"organisations": orgs, "events": events},
                "feeds": p.feeds.iter().map(|f| serde_json::json!({
                    "key": f.key, "kind": f.kind.as_str(), "format": f.format.as_str(),
                    "source": f.source.to_string(),
                })).collect::<Vec<_>>(),
            }));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(serde_json::json!({ "partners": out })).into_response())
}

/// `GET /admin/runs?partner=&limit=` — recent runs, newest first.
pub async fn runs_list(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match p.get("limit") {
        None => 50,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_param("limit", format!("{s:?} must be 1 to 1000")))?,
    };
    let partner = p.get("partner").cloned();
    if let Some(id) = &partner {
        if state.config().partner(id).is_none() {
            return Err(ApiError::bad_param(
                "partner",
                format!("{id:?} is not a configured partner"),
            ));
        }
    }
    let st = state.clone();
    let list = blocking(move || {
        let conn = st.store.reader()?;
        Ok(runs::recent(&conn, partner.as_deref(), limit)?)
    })
    .await?;
    Ok(Json(serde_json::json!({ "runs": list })).into_response())
}

/// `GET /admin/runs/{id}` — one run with its rejections and warnings.
pub async fn run_detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run_id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_param("id", format!("{id:?} is not a run id")))?;
    let st = state.clone();
    let found = blocking(move || {
        let conn = st.store.reader()?;
        match runs::get(&conn, run_id)? {
            Some(run) => Ok(Some((
                run,
                runs::rejections(&conn, run_id)?,
                runs::warnings(&conn, run_id)?,
            ))),
            None => Ok(None),
        }
    })
    .await?;
    match found {
        Some((run, rejections, warnings)) => {
            let mut v = serde_json::to_value(&run).map_err(ApiError::internal)?;
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "rejections".into(),
                    serde_json::to_value(rejections).map_err(ApiError::internal)?,
                );
                o.insert(
                    "warnings".into(),
                    serde_json::to_value(warnings).map_err(ApiError::internal)?,
                );
            }
            Ok(Json(v).into_response())
        }
        None => Err(ApiError::not_found(format!("no run {run_id}"))),
    }
}

/// Keeps the runner type in one place for the router.
pub type SharedRunner = Arc<scheduler::Runner>;

/// `GET /admin/review?kind=&limit=&cursor=` — uncertain pairs, most consequential first (cluster
/// sizes × uncertainty), with both records, both whole clusters and the evidence; `next_cursor`
/// pages on through the whole queue.
pub async fn review_list(
    State(state): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let kind = match p.get("kind").map(String::as_str) {
        None => None,
        Some(k) => Some(RecordKind::parse(k).ok_or_else(|| {
            ApiError::bad_param("kind", format!("{k:?} must be organisations or events"))
        })?),
    };
    let limit = match p.get("limit") {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| ApiError::bad_param("limit", format!("{s:?} must be 1 to 1000")))?,
    };
    let cursor = p.get("cursor").cloned();
    if let Some(c) = cursor.as_deref().filter(|c| !review::valid_cursor(c)) {
        return Err(ApiError::bad_param(
            "cursor",
            format!("{c:?} is not a cursor this queue issued"),
        ));
    }
    let st = state.clone();
    let settings = state.config().dedupe;
    let page = blocking(move || {
        Ok(review::page(
            &*st.store.reader()?,
            kind,
            limit,
            cursor.as_deref(),
            &|w, a, b| crate::dedupe::review_priority(w, a, b, &settings),
        )?)
    })
    .await?;
    Ok(Json(page).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    /// `merge`: the same entity; `separate`: never the same.
    pub decision: String,
}

/// Records decisions between partner records and re-resolves their kind, in one transaction.
async fn decide(
    state: &AppState,
    kind: RecordKind,
    links: Vec<(i64, i64, bool)>,
) -> Result<Response, ApiError> {
    let stats = apply_decisions(state, kind, links).await?;
    Ok(Json(serde_json::json!({
        "applied": {"created": stats.created, "updated": stats.updated, "merged": stats.merged, "deleted": stats.deleted}
    }))
    .into_response())
}

/// What [`decide`] applies, shared with the admin console's review page.
pub(crate) async fn apply_decisions(
    state: &AppState,
    kind: RecordKind,
    links: Vec<(i64, i64, bool)>,
) -> Result<crate::store::entities::ApplyStats, ApiError> {
    let st = state.clone();
    let stats = blocking(move || {
        let settings = st.config().dedupe;
        let now = chrono::Utc::now();
        let mut conn = st.store.writer();
        let tx = conn.transaction().map_err(crate::store::StoreError::from)?;
        for (a, b, same) in &links {
            review::add_decision(&tx, kind, *a, *b, *same, &crate::store::timestamp(now))?;
            // The two records and their clusters are what the decision can change.
            crate::store::block_keys::mark_dirty(&tx, &[*a, *b])?;
        }
        let stats = crate::resolve::resolve_kind(&tx, kind, &settings, now)?;
        tx.commit().map_err(crate::store::StoreError::from)?;
        Ok(stats)
    })
    .await?;
    tracing::info!(kind = kind.as_str(), decisions = ?stats, "admin match decision applied");
    Ok(stats)
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_param("body", e))
}

/// `POST /admin/review/{id}` — `{"decision": "merge" | "separate"}`.
pub async fn review_decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let review_id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_param("id", format!("{id:?} is not a review id")))?;
    let d: ReviewDecision = parse_body(&body)?;
    let same = match d.decision.as_str() {
        "merge" => true,
        "separate" => false,
        other => {
            return Err(ApiError::bad_param(
                "decision",
                format!("{other:?} must be \"merge\" or \"separate\""),
            ))
        }
    };
    let st = state.clone();
    let found = blocking(move || Ok(review::item(&*st.store.reader()?, review_id)?)).await?;
    let Some((kind, a, b)) = found else {
        return Err(ApiError::not_found(format!(
            "no open review item {review_id} (it may have been settled by a later sync)"
        )));
    };
    decide(&state, kind, vec![(a, b, same)]).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    pub ids: Vec<String>,
    /// Merge even across different identifiers of one scheme (two charity numbers).
    #[serde(default)]
    pub force: bool,
}

fn kind_of(id: &str) -> Result<RecordKind, ApiError> {
    if id.starts_with(RecordKind::Organisations.id_prefix()) {
        Ok(RecordKind::Organisations)
    } else if id.starts_with(RecordKind::Events.id_prefix()) {
        Ok(RecordKind::Events)
    } else {
        Err(ApiError::bad_param(
            "ids",
            format!("{id:?} is not a canonical id (org_… or evt_…)"),
        ))
    }
}

fn applied(s: &crate::store::entities::ApplyStats) -> serde_json::Value {
    serde_json::json!({"created": s.created, "updated": s.updated, "merged": s.merged, "deleted": s.deleted})
}

/// Why a merge or split was refused inside its transaction.
enum Refusal {
    Api(ApiError),
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Refusal {
        Refusal::Store(e)
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Refusal {
        Refusal::Store(e.into())
    }
}

/// Runs `f` in one write transaction: committed when it returns `Ok`, rolled back otherwise.
async fn in_transaction<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&rusqlite::Transaction, &crate::dedupe::Settings) -> Result<T, Refusal>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let st = state.clone();
    blocking(move || {
        let settings = st.config().dedupe;
        let mut conn = st.store.writer();
        let tx = conn.transaction().map_err(crate::store::StoreError::from)?;
        match f(&tx, &settings) {
            Ok(v) => {
                tx.commit().map_err(crate::store::StoreError::from)?;
                Ok(Ok(v))
            }
            Err(Refusal::Api(e)) => Ok(Err(e)),
            Err(Refusal::Store(e)) => Err(e.into()),
        }
    })
    .await?
}

/// `POST /admin/merge` — `{"ids": ["org_a", "org_b", …], "force": false}`: one entity from now
/// on, answering to the longest-standing id (`survivor`); the others answer 301 to it. Entities
/// with different identifiers of one scheme are refused unless `force` is set.
pub async fn merge(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: MergeRequest = parse_body(&body)?;
    let (named, outcome) = merge_entities(&state, req.ids, req.force).await?;
    let survivor = outcome.entity_id.clone();
    let merged: Vec<&String> = named
        .iter()
        .filter(|id| Some(id.as_str()) != survivor.as_deref())
        .collect();
    Ok(Json(serde_json::json!({
        "survivor": survivor,
        "merged": merged,
        "applied": applied(&outcome.stats),
    }))
    .into_response())
}

/// What [`merge`] applies, shared with the admin console's entity page: the ids named (each once)
/// and the outcome.
pub(crate) async fn merge_entities(
    state: &AppState,
    requested: Vec<String>,
    force: bool,
) -> Result<(Vec<String>, crate::resolve::manual::Outcome), ApiError> {
    let mut ids: Vec<String> = Vec::new();
    for id in requested {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() < 2 {
        return Err(ApiError::bad_param(
            "ids",
            "name at least two different entities to merge",
        ));
    }
    let kind = kind_of(&ids[0])?;
    for id in &ids {
        if kind_of(id)? != kind {
            return Err(ApiError::bad_param(
                "ids",
                "cannot merge organisations with events",
            ));
        }
    }
    let named = ids.clone();
    let outcome = in_transaction(state, move |tx, settings| {
        for id in &ids {
            let live = crate::store::entities::live_body(tx, id)?.is_some();
            if !live || review::members(tx, id)?.is_empty() {
                return Err(Refusal::Api(ApiError::not_found(format!(
                    "no live entity {id} with partner records (a merged-away id: merge its survivor)"
                ))));
            }
        }
        let conflicts = crate::resolve::manual::identifier_conflicts(tx, kind, &ids)?;
        if !conflicts.is_empty() && !force {
            return Err(Refusal::Api(ApiError::bad_param(
                "force",
                format!(
                    "{}: different identifiers of one scheme usually mean different \
                     organisations; send \"force\": true to merge them anyway",
                    conflicts.join("; ")
                ),
            )));
        }
        Ok(crate::resolve::manual::merge(
            tx,
            kind,
            &ids,
            settings,
            chrono::Utc::now(),
        )?)
    })
    .await?;
    let survivor = outcome.entity_id.clone();
    let merged: Vec<&String> = named
        .iter()
        .filter(|id| Some(id.as_str()) != survivor.as_deref())
        .collect();
    tracing::info!(kind = kind.as_str(), survivor = ?survivor, merged = ?merged, force, "admin merge applied");
    Ok((named, outcome))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitRequest {
    pub entity_id: String,
    pub partner: String,
    pub record_id: String,
}

/// `POST /admin/split` — `{"entity_id", "partner", "record_id"}`: undoes the admin's merge that
/// brought that record's cluster into the entity (ids go back to their records); if the engine
/// matched the record itself, the record is never again the same entity as the others.
pub async fn split(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let req: SplitRequest = parse_body(&body)?;
    let outcome = split_record(&state, req).await?;
    Ok(Json(serde_json::json!({
        "record_entity_id": outcome.entity_id,
        "entity_id": outcome.rest_id,
        "undid_merge": outcome.undid_merge,
        "applied": applied(&outcome.stats),
    }))
    .into_response())
}

/// What [`split`] applies, shared with the admin console's entity page.
pub(crate) async fn split_record(
    state: &AppState,
    req: SplitRequest,
) -> Result<crate::resolve::manual::Outcome, ApiError> {
    let kind = kind_of(&req.entity_id).map_err(|_| {
        ApiError::bad_param(
            "entity_id",
            format!("{:?} is not a canonical id", req.entity_id),
        )
    })?;
    let entity = req.entity_id.clone();
    let outcome = in_transaction(state, move |tx, settings| {
        let members = review::members(tx, &req.entity_id)?;
        let Some((row, _, _)) = members
            .iter()
            .find(|(_, p, id)| *p == req.partner && *id == req.record_id)
        else {
            return Err(Refusal::Api(ApiError::not_found(format!(
                "{} has no record {} from partner {}",
                req.entity_id, req.record_id, req.partner
            ))));
        };
        if members.len() < 2 {
            return Err(Refusal::Api(ApiError::bad_param(
                "record_id",
                "the entity has no other record to split from",
            )));
        }
        Ok(crate::resolve::manual::split(
            tx,
            kind,
            &req.entity_id,
            *row,
            settings,
            chrono::Utc::now(),
        )?)
    })
    .await?;
    tracing::info!(kind = kind.as_str(), entity = %entity, record_entity = ?outcome.entity_id,
        undid_merge = outcome.undid_merge, "admin split applied");
    Ok(outcome)
}
