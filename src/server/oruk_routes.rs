//! The Open Referral UK 3.0 API under `/oruk/`: handlers check the profile's parameters (a bad or
//! unsupported one is a 400 naming it), query the merged store off the async threads and hand
//! records to `publish::oruk`. ORUK ids are v5 UUIDs of canonical ids, resolved by an index kept here.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Connection;
use serde_json::Value;
use uuid::Uuid;

use super::places_loader::Readiness;
use super::{blocking, cached, ApiError, AppState};
use crate::model::{CanonicalEvent, CanonicalOrganisation, RecordKind};
use crate::publish::oruk::{self, Links, Part};
use crate::store::entities::{self, Lookup};
use crate::store::oruk_queries::{self, ServiceQuery, ServiceRow};
use crate::store::places;
use crate::store::StoreError;

type Params = Query<HashMap<String, String>>;

pub const DEFAULT_PER_PAGE: u64 = 50;
pub const MAX_PER_PAGE: u64 = 500;

/// Profile parameters this server does not implement: refused by name rather than ignored, so a
/// consumer never mistakes an unfiltered listing for a filtered one.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "taxonomy_id",
        "is not supported: every term belongs to the one taxonomy at /oruk/taxonomies",
    ),
    ("organization_id", "is not supported by this server"),
    (
        "minimum_age",
        "is not supported: tributary holds no eligibility ages",
    ),
    (
        "maximum_age",
        "is not supported: tributary holds no eligibility ages",
    ),
    ("start_time", "is not supported by this server"),
    ("end_time", "is not supported by this server"),
    ("day", "is not supported by this server"),
    ("format", "is not supported: only json is served"),
];

fn links(state: &AppState) -> Links {
    Links {
        base_url: state.config().server.base_url.clone(),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

/// Renders one stored entity as the ORUK service it stands for.
fn render_service(
    kind: &str,
    id: &str,
    body: &str,
    links: &Links,
    minimal: bool,
) -> Result<Value, StoreError> {
    if kind == RecordKind::Organisations.as_str() {
        let org: CanonicalOrganisation = serde_json::from_str(body).map_err(|e| corrupt(id, e))?;
        Ok(oruk::organisation_service(&org, links, minimal))
    } else {
        let ev: CanonicalEvent = serde_json::from_str(body).map_err(|e| corrupt(id, e))?;
        Ok(oruk::event_service(&ev, minimal))
    }
}

fn last_modified(conn: &Connection) -> Result<Option<DateTime<Utc>>, ApiError> {
    let (_, at) = entities::last_change(conn)?;
    Ok(at
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc)))
}

fn json_response(headers: &HeaderMap, v: &Value, lm: Option<DateTime<Utc>>) -> Response {
    cached(headers, "application/json", v.to_string(), lm)
}

/// `page` and `per_page`, checked.
fn paging(p: &HashMap<String, String>) -> Result<(u64, u64), ApiError> {
    let number = |name: &str, default: u64, max: u64| match p.get(name) {
        None => Ok(default),
        Some(s) => match s.trim().parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_param(
                name,
                format!("{s:?} must be a whole number from 1 to {max}"),
            )),
        },
    };
    Ok((
        number("page", 1, u32::MAX as u64)?,
        number("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)?,
    ))
}

fn boolean(p: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match p
        .get(name)
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_param(
            name,
            format!("{other:?} must be true or false"),
        )),
    }
}

/// RFC 3339 instant or a plain date (midnight UTC).
fn instant(name: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::bad_param(
                name,
                format!("{s:?} must be a date (2027-01-31) or an RFC 3339 date-time (2027-01-31T09:00:00Z)"),
            )
        })
}

/// A listing's checked parameters; the store-dependent ones (term, time) are resolved later.
#[derive(Debug, Clone)]
struct Listing {
    page: u64,
    per_page: u64,
    minimal: bool,
    text: Option<String>,
    term: Option<Uuid>,
    modified_after: Option<DateTime<Utc>>,
    /// `postcode` (standard form) and `proximity` in metres (0: that postcode only).
    near: Option<(String, f64)>,
}

/// Farthest `proximity` accepted, in metres: the length of Great Britain, with room to spare.
const MAX_PROXIMITY_M: f64 = 1_500_000.0;

fn near(p: &HashMap<String, String>) -> Result<Option<(String, f64)>, ApiError> {
    let proximity = match p.get("proximity") {
        None => None,
        Some(s) => Some(
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|m| m.is_finite() && (0.0..=MAX_PROXIMITY_M).contains(m))
                .ok_or_else(|| {
                    ApiError::bad_param(
                        "proximity",
                        format!("{s:?} must be a distance in metres from 0 to {MAX_PROXIMITY_M}"),
                    )
                })?,
        ),
    };
    match (p.get("postcode"), proximity) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ApiError::bad_param(
            "proximity",
            "needs a postcode to measure from",
        )),
        (Some(s), m) => crate::normalise::postcode(s)
            .map(|pc| Some((pc, m.unwrap_or(0.0))))
            .ok_or_else(|| ApiError::bad_param("postcode", format!("{s:?} is not a UK postcode"))),
    }
}

fn listing(p: &HashMap<String, String>) -> Result<Listing, ApiError> {
    for (name, why) in UNSUPPORTED {
        if p.contains_key(*name) {
            return Err(ApiError::bad_param(name, why));
        }
    }
    let (page, per_page) = paging(p)?;
    let text = ["text", "search"]
        .iter()
        .find_map(|k| p.get(*k))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let term = match p.get("taxonomy_term_id") {
        None => None,
        Some(s) => Some(Uuid::parse_str(s.trim()).map_err(|_| {
            ApiError::bad_param("taxonomy_term_id", format!("{s:?} is not a UUID"))
        })?),
    };
    let modified_after = p
        .get("modified_after")
        .map(|s| instant("modified_after", s))
        .transpose()?;
    Ok(Listing {
        page,
        per_page,
        minimal: boolean(p, "minimal")?,
        text,
        term,
        modified_after,
        near: near(p)?,
    })
}

/// The published category set, read again only when the store has changed: reading it is a pass
/// over every entity's categories, too much for each filtered request on a national directory.
fn categories(conn: &Connection, store: &std::path::Path) -> Result<Arc<Vec<String>>, StoreError> {
    type Cache = Mutex<HashMap<PathBuf, (i64, Arc<Vec<String>>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let change = entities::last_change(conn)?.0;
    if let Some((at, cats)) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(store) {
        if *at == change {
            return Ok(cats.clone());
        }
    }
    let cats = Arc::new(oruk_queries::categories(conn)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(store.to_path_buf(), (change, cats.clone()));
    Ok(cats)
}

/// The store query for a listing, or `None` when no service can match (an unknown term, no
/// change since `modified_after`).
fn service_query(
    conn: &Connection,
    store: &std::path::Path,
    l: &Listing,
    located: bool,
) -> Result<Option<ServiceQuery>, ApiError> {
    let mut q = ServiceQuery {
        text: l.text.clone(),
        located,
        ..Default::default()
    };
    if let Some(term) = l.term {
        match categories(conn, store)?
            .iter()
            .find(|c| oruk::term_id(c) == term)
        {
            Some(c) => q.category = Some(c.clone()),
            None => return Ok(None),
        }
    }
    if let Some((postcode, metres)) = &l.near {
        let near = postcodes_near(conn, "postcode", postcode, *metres)?;
        q.near = Some(oruk_queries::NearRows::find(conn, &near)?);
    }
    if let Some(t) = l.modified_after {
        match oruk_queries::first_change_since(conn, &crate::store::timestamp(t))? {
            Some(n) => q.min_change = Some(n),
            None => return Ok(None),
        }
    }
    Ok(Some(q))
}

/// One page of services (or their service_at_locations).
fn services_listing(
    conn: &Connection,
    store: &std::path::Path,
    l: &Listing,
    links: &Links,
    as_locations: bool,
) -> Result<Value, ApiError> {
    let (rows, total): (Vec<ServiceRow>, u64) = match service_query(conn, store, l, as_locations)? {
        None => (Vec::new(), 0),
        Some(q) => {
            let counts = oruk_queries::count_services(conn, &q)?;
            let total = counts.0 + counts.1;
            let offset = (l.page - 1).saturating_mul(l.per_page);
            let rows = if offset < total {
                oruk_queries::services_page(conn, &q, counts, offset, l.per_page)?
            } else {
                Vec::new()
            };
            (rows, total)
        }
    };
    let mut contents = Vec::with_capacity(rows.len());
    for r in rows {
        // A location listing needs the full service to find its location; `minimal` trims after.
        let service = render_service(&r.kind, &r.id, &r.body, links, l.minimal && !as_locations)?;
        if as_locations {
            if let Some(sal) = oruk::service_at_location(&service, false) {
                contents.push(sal);
            }
        } else {
            contents.push(service);
        }
    }
    Ok(oruk::page(contents, total, l.page, l.per_page))
}

/// The search within `metres` of `postcode`'s centroid; `param` names the request parameter a
/// postcode the centroids lack is blamed on.
pub(super) fn postcodes_near(
    conn: &Connection,
    param: &str,
    postcode: &str,
    metres: f64,
) -> Result<places::Near, ApiError> {
    places::Near::around(conn, postcode, metres)?.ok_or_else(|| {
        ApiError::bad_param(
            param,
            format!("{postcode} is not in this server's postcode centroids"),
        )
    })
}

/// Makes sure the configured postcode centroids are in the store as the file is now: a load under
/// way (at start-up, or after the file changed) is waited for a few seconds at most, then the
/// search answers 503 until it is done.
pub(super) fn ensure_places(st: &AppState, param: &str) -> Result<(), ApiError> {
    let Some(path) = st.config().store.postcode_centroids.clone() else {
        return Err(ApiError::bad_param(
            param,
            "postcode search needs postcode centroids, and this server's config sets no store.postcode_centroids",
        ));
    };
    let readiness = st
        .places
        .ensure(&st.store, &path, super::places_loader::WAIT)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot check the postcode centroids");
            ApiError::unavailable("postcode search is unavailable: see the log")
        })?;
    match readiness {
        Readiness::Ready => Ok(()),
        Readiness::Loading => Err(ApiError::unavailable(
            "postcode search is not ready: the postcode centroids are being loaded; try again in a minute",
        )),
        Readiness::Failed => Err(ApiError::unavailable(
            "postcode search is unavailable: the postcode centroid file cannot be loaded; see the log",
        )),
    }
}

pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    json_response(&headers, &links(&state).root(), None)
}

async fn list(
    state: AppState,
    headers: HeaderMap,
    p: HashMap<String, String>,
    as_locations: bool,
) -> Result<Response, ApiError> {
    let l = listing(&p)?;
    let links = links(&state);
    let st = state.clone();
    let (v, lm) = blocking(move || {
        if l.near.is_some() {
            ensure_places(&st, "postcode")?;
        }
        let conn = st.store.reader()?;
        Ok((
            services_listing(&conn, st.store.path(), &l, &links, as_locations)?,
            last_modified(&conn)?,
        ))
    })
    .await?;
    Ok(json_response(&headers, &v, lm))
}

pub async fn services(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    list(state, headers, p, false).await
}

pub async fn service_at_locations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    list(state, headers, p, true).await
}

/// ORUK UUID → (rowid, part), for every entity id the store has held, grown as rows are added.
#[derive(Default)]
struct IdIndex {
    last_rowid: i64,
    map: HashMap<u128, (i64, Part)>,
}

/// Parts of an entity that answer by id.
const INDEXED: [Part; 2] = [Part::Service, Part::ServiceAtLocation];

/// Rows read per step when the index catches up.
const INDEX_BATCH: usize = 10_000;

impl IdIndex {
    fn catch_up(&mut self, conn: &Connection) -> Result<(), StoreError> {
        loop {
            let rows = oruk_queries::ids_after(conn, self.last_rowid, INDEX_BATCH)?;
            let Some((last, _)) = rows.last() else {
                return Ok(());
            };
            self.last_rowid = *last;
            for (rowid, id) in &rows {
                for part in INDEXED {
                    self.map
                        .insert(oruk::uuid_of(id, part).as_u128(), (*rowid, part));
                }
            }
            if rows.len() < INDEX_BATCH {
                return Ok(());
            }
        }
    }

    /// The canonical id and part a UUID names, checked against the row it points at.
    fn find(&self, conn: &Connection, id: Uuid) -> Result<Option<(String, Part)>, StoreError> {
        let Some((rowid, part)) = self.map.get(&id.as_u128()).copied() else {
            return Ok(None);
        };
        Ok(oruk_queries::id_at(conn, rowid)?
            .filter(|canonical| oruk::uuid_of(canonical, part) == id)
            .map(|canonical| (canonical, part)))
    }
}

/// One index per store file (tests run several servers in one process).
fn indexes() -> &'static Mutex<HashMap<PathBuf, IdIndex>> {
    static INDEXES: OnceLock<Mutex<HashMap<PathBuf, IdIndex>>> = OnceLock::new();
    INDEXES.get_or_init(Default::default)
}

/// Resolves an ORUK UUID to the canonical id and part it was derived from. A miss catches the
/// index up with new rows; a stale hit (rowids moved by VACUUM) rebuilds it once.
fn resolve(
    conn: &Connection,
    store: &std::path::Path,
    id: Uuid,
) -> Result<Option<(String, Part)>, StoreError> {
    let mut all = indexes().lock().unwrap_or_else(|e| e.into_inner());
    let index = all.entry(store.to_path_buf()).or_default();
    if let Some(hit) = index.find(conn, id)? {
        return Ok(Some(hit));
    }
    let stale = index.map.contains_key(&id.as_u128());
    if stale {
        *index = IdIndex::default();
    }
    index.catch_up(conn)?;
    index.find(conn, id)
}

/// What a lookup of one service or service_at_location found.
enum Found {
    Record(Value),
    Moved(String),
    Gone(String),
    Missing(String),
}

fn find_service(
    conn: &Connection,
    store: &std::path::Path,
    raw: &str,
    want: Part,
    links: &Links,
) -> Result<Found, StoreError> {
    let missing = || Found::Missing(format!("no {} with id {raw}", path_of(want)));
    let Ok(id) = Uuid::parse_str(raw.trim()) else {
        return Ok(missing());
    };
    let Some((canonical, part)) = resolve(conn, store, id)? else {
        return Ok(missing());
    };
    if part != want {
        return Ok(missing());
    }
    let kind = if canonical.starts_with(RecordKind::Events.id_prefix()) {
        RecordKind::Events
    } else {
        RecordKind::Organisations
    };
    Ok(match entities::get(conn, kind, &canonical)? {
        Lookup::Found(body) => {
            let service = render_service(kind.as_str(), &canonical, &body, links, false)?;
            // The profile answers a service_at_location with its fully nested service (its
            // openapi.json names compiled/service.json), whose service_at_locations hold it.
            let record = match want {
                Part::ServiceAtLocation => {
                    oruk::service_at_location(&service, false).map(|_| service)
                }
                _ => Some(service),
            };
            match record {
                // A single event is in the store but not published as a service.
                Some(r) if !is_single_event(kind, &body) => Found::Record(r),
                _ => missing(),
            }
        }
        Lookup::MergedInto(survivor) => Found::Moved(format!(
            "/oruk/{}/{}",
            path_of(want),
            oruk::uuid_of(&survivor, want)
        )),
        Lookup::Deleted => Found::Gone(format!("{raw} was deleted: no partner lists it any more")),
        Lookup::NotFound => missing(),
    })
}

fn is_single_event(kind: RecordKind, body: &str) -> bool {
    kind == RecordKind::Events
        && serde_json::from_str::<CanonicalEvent>(body)
            .map(|e| e.event.recurrence.as_ref().is_none_or(|r| r.is_empty()))
            .unwrap_or(true)
}

fn path_of(part: Part) -> &'static str {
    match part {
        Part::ServiceAtLocation => "service_at_locations",
        _ => "services",
    }
}

async fn one(
    state: AppState,
    headers: HeaderMap,
    id: String,
    want: Part,
) -> Result<Response, ApiError> {
    let links = links(&state);
    let st = state.clone();
    let (found, lm) = blocking(move || {
        let conn = st.store.reader()?;
        let found = find_service(&conn, st.store.path(), &id, want, &links)?;
        Ok((found, last_modified(&conn)?))
    })
    .await?;
    match found {
        Found::Record(v) => Ok(json_response(&headers, &v, lm)),
        // Merged-away ids answer as /v1/organisations/{id} does: a permanent redirect.
        Found::Moved(to) => {
            Ok((StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response())
        }
        Found::Gone(message) => Err(ApiError {
            status: StatusCode::GONE,
            code: "gone",
            message,
        }),
        Found::Missing(message) => Err(ApiError::not_found(message)),
    }
}

pub async fn service(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    one(state, headers, id, Part::Service).await
}

pub async fn service_at_location(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    one(state, headers, id, Part::ServiceAtLocation).await
}

/// The categories as published: each lowercased key with the spelling a service gives it.
fn terms(conn: &Connection, keys: &[String]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let spelled = oruk_queries::body_with_category(conn, key)?
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
            .and_then(|v| {
                v.get("categories")?
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|c| c.to_lowercase() == *key)
                    .map(str::to_string)
            });
        out.push(spelled.unwrap_or_else(|| key.clone()));
    }
    Ok(out)
}

fn checked_paging(p: &HashMap<String, String>) -> Result<(u64, u64), ApiError> {
    if let Some(k) = p
        .keys()
        .find(|k| !["page", "per_page"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_param(k, "is not a parameter of this listing"));
    }
    paging(p)
}

fn slice<T: Clone>(all: &[T], page: u64, per_page: u64) -> Vec<T> {
    let start = (page - 1).saturating_mul(per_page);
    let start = usize::try_from(start).unwrap_or(usize::MAX).min(all.len());
    let end = start.saturating_add(per_page as usize).min(all.len());
    all.get(start..end).map(<[T]>::to_vec).unwrap_or_default()
}

pub async fn taxonomy_terms(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let (page, per_page) = checked_paging(&p)?;
    let st = state.clone();
    let (v, lm) = blocking(move || {
        let conn = st.store.reader()?;
        let keys = categories(&conn, st.store.path())?;
        let names = terms(&conn, &slice(&keys, page, per_page))?;
        let contents = names.iter().map(|n| oruk::taxonomy_term(n)).collect();
        Ok((
            oruk::page(contents, keys.len() as u64, page, per_page),
            last_modified(&conn)?,
        ))
    })
    .await?;
    Ok(json_response(&headers, &v, lm))
}

pub async fn taxonomy_term(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let (v, lm) = blocking(move || {
        let conn = st.store.reader()?;
        let wanted = Uuid::parse_str(id.trim()).ok();
        let key = categories(&conn, st.store.path())?
            .iter()
            .find(|c| Some(oruk::term_id(c)) == wanted)
            .cloned();
        let v = match key {
            Some(k) => terms(&conn, &[k])?.first().map(|n| oruk::taxonomy_term(n)),
            None => None,
        };
        Ok((
            v.ok_or_else(|| ApiError::not_found(format!("no taxonomy_term with id {id}")))?,
            last_modified(&conn)?,
        ))
    })
    .await?;
    Ok(json_response(&headers, &v, lm))
}

pub async fn taxonomies(
    State(_state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let (page, per_page) = checked_paging(&p)?;
    let all = [oruk::taxonomy(None)];
    let v = oruk::page(slice(&all, page, per_page), 1, page, per_page);
    Ok(json_response(&headers, &v, None))
}

pub async fn taxonomy(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if Uuid::parse_str(id.trim()).ok() != Some(oruk::taxonomy_id()) {
        return Err(ApiError::not_found(format!("no taxonomy with id {id}")));
    }
    let st = state.clone();
    let (v, lm) = blocking(move || {
        let conn = st.store.reader()?;
        let keys = categories(&conn, st.store.path())?;
        let names = terms(&conn, &keys)?;
        Ok((oruk::taxonomy(Some(&names)), last_modified(&conn)?))
    })
    .await?;
    Ok(json_response(&headers, &v, lm))
}
