//! Public read routes: merged organisations and events (JSON, paged), the iCalendar feeds and the
//! health check. Handlers parse and check parameters (naming the bad one), query the store off the
//! async threads, and hand records to the pure renderers in `publish`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::{blocking, cached, cached_with_etag, ApiError, AppState};
use crate::model::{CanonicalEvent, RecordKind};
use crate::publish;
use crate::store::entities::{self, EventRow, Filter, Lookup};
use crate::store::runs;

type Params = Query<HashMap<String, String>>;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 500;
/// Response header stating what a calendar left out (absent when it carries its whole window).
pub const CUT_HEADER: &str = "x-tributary-truncated";
/// Days a deleted or merged-away event stays in calendars as CANCELLED.
pub const WITHDRAWN_DAYS: i64 = 30;

fn limit(p: &HashMap<String, String>) -> Result<usize, ApiError> {
    match p.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_param(
                "limit",
                format!("{s:?} must be a whole number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

/// RFC 3339 instant or a plain date (midnight UTC).
fn time_param(p: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(s) = p.get(name) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    Err(ApiError::bad_param(
        name,
        format!(
            "{s:?} must be a date (2027-01-31) or an RFC 3339 date-time (2027-01-31T09:00:00Z)"
        ),
    ))
}

fn filter(p: &HashMap<String, String>) -> Result<Filter, ApiError> {
    let get = |k: &str| {
        p.get(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(Filter {
        q: get("q"),
        category: get("category"),
        partner: get("partner"),
        postcode_area: get("postcode_area")
            .map(|s| postcode_area(&s))
            .transpose()?,
        rows: None,
    })
}

/// `postcode_area` is a postcode area (`CW`) or district, the outward code records are filed
/// under (`CW1`, `SK11`, `EC1A`); a full postcode is reduced to its district; anything else is
/// refused rather than matching nothing.
fn postcode_area(s: &str) -> Result<String, ApiError> {
    use crate::normalise::{outward_code, postcode};
    let t = s.trim();
    // A postcode area proper: its one or two letters (`CW`, `B`), matching every district in it.
    if (1..=2).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(t.to_ascii_uppercase());
    }
    if let Some(outward) = outward_code(s) {
        return Ok(outward);
    }
    // An outward code alone is valid when it makes a postcode with any inward code.
    let probe = format!("{} 1AA", s.trim());
    match postcode(&probe).and_then(|p| p.split(' ').next().map(str::to_string)) {
        Some(outward) if !s.contains(' ') => Ok(outward),
        _ => Err(ApiError::bad_param(
            "postcode_area",
            format!(
                "{s:?} is not a postcode's outward code (such as CW1 or SK11) or a full postcode"
            ),
        )),
    }
}

fn check_partner(state: &AppState, f: &Filter) -> Result<(), ApiError> {
    match &f.partner {
        Some(p) if state.config().partner(p).is_none() && known_partner(state, p).is_none() => Err(
            ApiError::bad_param("partner", format!("{p:?} is not a configured partner")),
        ),
        _ => Ok(()),
    }
}

/// The name of a partner the store knows though the config no longer lists it (removed: its
/// records are published through the grace period, then withdrawn).
fn known_partner(state: &AppState, id: &str) -> Option<String> {
    let conn = state.store.reader().ok()?;
    crate::store::withdrawal::known(&conn, id).ok().flatten()
}

fn window(
    p: &HashMap<String, String>,
    default_back: Duration,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let now = Utc::now();
    let from = time_param(p, "from")?.unwrap_or(now - default_back);
    let to = time_param(p, "to")?.unwrap_or(now + Duration::days(365));
    if to <= from {
        // With `to` left to its default, only `from` can be at fault.
        return Err(if p.contains_key("to") {
            ApiError::bad_param("to", "must be later than from")
        } else {
            ApiError::bad_param(
                "from",
                "is after the default end of the window (a year from now); give `to` too",
            )
        });
    }
    Ok((from, to))
}

/// Link to the next page: the same query with a new cursor, absolute from `server.base_url`.
fn next_link(state: &AppState, path: &str, p: &HashMap<String, String>, cursor: &str) -> String {
    let mut url = state.config().server.base_url.clone();
    url.set_path(path);
    {
        let mut q = url.query_pairs_mut();
        let mut keys: Vec<_> = p.iter().filter(|(k, _)| k.as_str() != "cursor").collect();
        keys.sort();
        for (k, v) in keys {
            q.append_pair(k, v);
        }
        q.append_pair("cursor", cursor);
    }
    url.to_string()
}

fn last_modified(conn: &rusqlite::Connection) -> Result<Option<DateTime<Utc>>, ApiError> {
    let (_, at) = entities::last_change(conn)?;
    Ok(at
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc)))
}

pub async fn organisations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let limit = limit(&p)?;
    let f = filter(&p)?;
    check_partner(&state, &f)?;
    let bad_cursor = || ApiError::bad_param("cursor", "is not a cursor this server issued");
    let after = match p.get("cursor") {
        None => None,
        Some(c) => Some(entities::OrgCursor::decode(c).ok_or_else(bad_cursor)?),
    };
    let near = near_within(&p, &f)?;
    // Pages (searches above all) are cached until the store changes, as event pages are.
    let keys = super::cache::key_params(
        &p,
        &[
            "category",
            "cursor",
            "limit",
            "near",
            "partner",
            "postcode_area",
            "q",
            "within",
        ],
    );
    let credits = state.credits();
    // Licences are applied as pages render: a reloaded licence must not be served from the cache.
    let key = format!(
        "organisations|{keys:?}|{}{}",
        credits.fingerprint,
        centroids_key(&state, near.is_some())
    );
    let st = state.clone();
    let render = move || {
        if near.is_some() {
            super::oruk_routes::ensure_places(&st, "near")?;
        }
        let conn = st.store.reader()?;
        let rows = match &near {
            None => entities::list_organisations(&conn, &f, after.as_ref(), limit + 1)?,
            // `near` + `within`: organisations within that distance (by their own point, else
            // their postcode's centroid, as ORUK's search), in name order.
            Some((postcode, metres)) => {
                let near = super::oruk_routes::postcodes_near(&conn, "near", postcode, *metres)?;
                let at =
                    crate::store::places::placed_near(&conn, RecordKind::Organisations, &near)?;
                match &after {
                    Some(entities::OrgCursor::Ranked { .. }) => None,
                    Some(entities::OrgCursor::Name { sort_key, id }) => {
                        Some(crate::store::oruk_queries::organisations_at(
                            &conn,
                            &f,
                            &at,
                            Some((sort_key, id)),
                            limit + 1,
                        )?)
                    }
                    None => Some(crate::store::oruk_queries::organisations_at(
                        &conn,
                        &f,
                        &at,
                        None,
                        limit + 1,
                    )?),
                }
            }
        }
        .ok_or_else(bad_cursor)?;
        let next = (rows.len() > limit).then(|| {
            next_link(
                &st,
                "/v1/organisations",
                &p,
                &rows[limit - 1].cursor.encode(),
            )
        });
        let bodies: Vec<String> = rows
            .iter()
            .take(limit)
            .map(|r| publish::json::with_attributions(&r.body, &credits.all))
            .collect();
        let body = publish::json::page(bodies.iter().map(String::as_str), next.as_deref());
        Ok((vec![body], last_modified(&conn)?))
    };
    from_cache(
        &state,
        &headers,
        key,
        "/v1/organisations",
        "application/json",
        render,
    )
    .await
}

/// A distance search's page depends on the centroid file as well as the store: the file as it is
/// now (its fingerprint) is part of the page's cache key, so after the operator replaces the file
/// the next search loads it instead of serving a page placed by the old one.
fn centroids_key(state: &AppState, near: bool) -> String {
    let path = state.config().store.postcode_centroids.clone();
    match path.filter(|_| near) {
        None => String::new(),
        Some(path) => format!(
            "|{}",
            crate::store::places::fingerprint(&path).unwrap_or_default()
        ),
    }
}

/// `near=<postcode>&within=<km>`, both or neither; not with `postcode_area`.
fn near_within(p: &HashMap<String, String>, f: &Filter) -> Result<Option<(String, f64)>, ApiError> {
    let (near, within) = match (p.get("near"), p.get("within")) {
        (None, None) => return Ok(None),
        (Some(n), Some(w)) => (n, w),
        (None, Some(_)) => return Err(ApiError::bad_param("within", "needs near=<postcode>")),
        (Some(_), None) => return Err(ApiError::bad_param("near", "needs within=<km>")),
    };
    let postcode = crate::normalise::postcode(near)
        .ok_or_else(|| ApiError::bad_param("near", format!("{near:?} is not a UK postcode")))?;
    let km = within
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|k| k.is_finite() && (0.0..=1500.0).contains(k))
        .ok_or_else(|| {
            ApiError::bad_param(
                "within",
                format!("{within:?} must be kilometres from 0 to 1500"),
            )
        })?;
    if f.postcode_area.is_some() {
        return Err(ApiError::bad_param(
            "near",
            "cannot be combined with postcode_area",
        ));
    }
    Ok(Some((postcode, km * 1000.0)))
}

async fn one(
    state: AppState,
    headers: HeaderMap,
    kind: RecordKind,
    id: String,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let id2 = id.clone();
    let (found, lm) = blocking(move || {
        let conn = st.store.reader()?;
        Ok((entities::get(&conn, kind, &id2)?, last_modified(&conn)?))
    })
    .await?;
    let path = match kind {
        RecordKind::Organisations => "/v1/organisations/",
        RecordKind::Events => "/v1/events/",
    };
    match found {
        Lookup::Found(body) => {
            let credits = super::licences::attributions(&state.config());
            let body = publish::json::with_attributions(&body, &credits);
            Ok(cached(&headers, "application/json", body, lm))
        }
        // 301 as designed (not 308): clients may re-issue any method as GET, which is all we serve.
        Lookup::MergedInto(survivor) => Ok((
            StatusCode::MOVED_PERMANENTLY,
            [(axum::http::header::LOCATION, format!("{path}{survivor}"))],
        )
            .into_response()),
        Lookup::Deleted => Err(ApiError {
            status: StatusCode::GONE,
            code: "gone",
            message: format!("{id} was deleted: no partner lists it any more"),
        }),
        Lookup::NotFound => Err(ApiError::not_found(format!(
            "no {} with id {id}",
            kind.as_str()
        ))),
    }
}

pub async fn organisation(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    one(state, headers, RecordKind::Organisations, id).await
}

pub async fn event(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    one(state, headers, RecordKind::Events, id).await
}

/// One listed occurrence: order key and body.
struct Item {
    start: i64,
    id: String,
    body: String,
}

/// A page candidate: a single event with its body, or one occurrence of a series.
struct Candidate {
    start: i64,
    id: String,
    occurrence: Option<publish::json::Occurrence>,
    body: Option<String>,
}

impl Candidate {
    fn key(&self) -> (i64, &str) {
        (self.start, self.id.as_str())
    }
}

fn stored_event(row: &EventRow) -> Result<CanonicalEvent, crate::store::StoreError> {
    serde_json::from_str(&row.body).map_err(|e| crate::store::StoreError::Corrupt {
        what: format!("stored event {}", row.id),
        reason: e.to_string(),
    })
}

/// `cursor=<start>.<id>` as `/v1/events` issues it.
fn event_cursor(p: &HashMap<String, String>) -> Result<Option<(i64, String)>, ApiError> {
    let Some(c) = p.get("cursor") else {
        return Ok(None);
    };
    c.split_once('.')
        .and_then(|(s, id)| s.parse::<i64>().ok().map(|s| (s, id.to_string())))
        .map(Some)
        .ok_or_else(|| ApiError::bad_param("cursor", "is not a cursor this server issued"))
}

/// The page's first `keep` entries by (start, id) after `cur` (one past the page, to know
/// whether another follows). Singles come from the index already in order; series occurrences
/// are merged in as each series streams past, and only that many entries are ever held: a
/// national store has thousands of series, each with dozens of occurrences a year.
fn page_candidates(
    conn: &rusqlite::Connection,
    f: &Filter,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cur: Option<(i64, &str)>,
    keep: usize,
) -> Result<Vec<Candidate>, crate::store::StoreError> {
    let mut best: Vec<Candidate> =
        entities::single_events(conn, f, from.timestamp(), to.timestamp(), cur, keep)?
            .into_iter()
            .map(|r| Candidate {
                start: r.start_utc,
                id: r.id,
                occurrence: None,
                body: Some(r.body),
            })
            .collect();
    // Expansion starts at the cursor, and no series needs more occurrences than a page.
    let expand_from = cur
        .map(|(s, _)| from.max(DateTime::from_timestamp(s, 0).unwrap_or(from)))
        .unwrap_or(from);
    entities::for_each_series(conn, f, to.timestamp(), |row| {
        let ev = stored_event(&row)?;
        let occs = occurrences_past(&ev, &row.id, expand_from, to, cur, keep);
        merge_occurrences(&mut best, &row.id, occs, cur, keep);
        Ok(())
    })?;
    Ok(best)
}

/// A series' first occurrences from `from`, enough that a page's worth lie past the cursor:
/// occurrences still under way at the cursor come first and are skipped, so it asks for more
/// until that many are past it (or the series has no more).
fn occurrences_past(
    ev: &CanonicalEvent,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cur: Option<(i64, &str)>,
    keep: usize,
) -> Vec<publish::json::Occurrence> {
    let mut want = keep + 1;
    loop {
        let occs = publish::json::first_occurrences(&ev.event, from, to, want);
        let before_cursor = occs
            .iter()
            .filter(|o| cur.is_some_and(|c| (o.start.timestamp(), id) <= c))
            .count();
        let max = publish::json::MAX_OCCURRENCES as usize;
        if occs.len() < want || occs.len() - before_cursor > keep || want >= max {
            return occs;
        }
        want = (want + before_cursor.max(1) * 2).min(max);
    }
}

/// Merges a series' occurrences into the page's best `keep` candidates, in (start, id) order.
fn merge_occurrences(
    best: &mut Vec<Candidate>,
    id: &str,
    occs: Vec<publish::json::Occurrence>,
    cur: Option<(i64, &str)>,
    keep: usize,
) {
    for occ in occs {
        let key = (occ.start.timestamp(), id);
        if cur.is_some_and(|c| key <= c) {
            continue;
        }
        // A series' occurrences come in time order: once one is past a full page, so are the
        // rest.
        if best.len() >= keep && best.last().is_some_and(|b| b.key() <= key) {
            break;
        }
        let at = best.partition_point(|b| b.key() < key);
        best.insert(
            at,
            Candidate {
                start: key.0,
                id: id.to_string(),
                occurrence: Some(occ),
                body: None,
            },
        );
        best.truncate(keep);
    }
}

/// The page's published bodies, with attributions: the series bodies of the occurrences that
/// made the page are read once per series.
fn page_items(
    conn: &rusqlite::Connection,
    best: Vec<Candidate>,
    credits: &crate::licence::Attributions,
) -> Result<Vec<Item>, crate::store::StoreError> {
    let mut series_bodies: HashMap<String, Option<String>> = HashMap::new();
    let mut items: Vec<Item> = Vec::with_capacity(best.len());
    for c in best {
        let body = match (c.occurrence, c.body) {
            (None, Some(body)) => Some(body),
            (Some(occ), _) => {
                if !series_bodies.contains_key(&c.id) {
                    let body = entities::event_body(conn, &c.id)?;
                    series_bodies.insert(c.id.clone(), body);
                }
                series_bodies
                    .get(&c.id)
                    .and_then(Option::as_deref)
                    .and_then(|b| publish::json::occurrence_body(b, &occ))
            }
            (None, None) => None,
        };
        if let Some(body) = body {
            items.push(Item {
                start: c.start,
                id: c.id,
                body: publish::json::with_attributions(&body, credits),
            });
        }
    }
    Ok(items)
}

pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let limit = limit(&p)?;
    let (from, to) = window(&p, Duration::zero())?;
    let mut f = filter(&p)?;
    check_partner(&state, &f)?;
    let near = near_within(&p, &f)?;
    let after = event_cursor(&p)?;
    // Pages are cached until the store changes; default bounds are taken to the minute so
    // repeated requests share one rendering.
    let minute = |t: DateTime<Utc>| t - Duration::seconds(t.timestamp().rem_euclid(60));
    let from = if p.contains_key("from") {
        from
    } else {
        minute(from)
    };
    let to = if p.contains_key("to") { to } else { minute(to) };
    let keys = super::cache::key_params(
        &p,
        &[
            "category",
            "cursor",
            "limit",
            "near",
            "partner",
            "postcode_area",
            "q",
            "within",
        ],
    );
    let credits = state.credits();
    // Licences are applied as pages render: a reloaded licence must not be served from the cache.
    let key = format!(
        "events|{}|{}|{keys:?}|{}{}",
        from.timestamp(),
        to.timestamp(),
        credits.fingerprint,
        centroids_key(&state, near.is_some())
    );
    let st = state.clone();
    let render = move || {
        if near.is_some() {
            super::oruk_routes::ensure_places(&st, "near")?;
        }
        let conn = st.store.reader()?;
        // `near` + `within`: events whose venue is within that distance (by its own point, else
        // its postcode's centroid), with every other filter and in the listing's own order.
        if let Some((postcode, metres)) = &near {
            let near = super::oruk_routes::postcodes_near(&conn, "near", postcode, *metres)?;
            f.rows = Some(crate::store::places::rows_near(
                &conn,
                RecordKind::Events,
                &near,
            )?);
        }
        let cur = after.as_ref().map(|(s, id)| (*s, id.as_str()));
        let best = page_candidates(&conn, &f, from, to, cur, limit + 1)?;
        let items = page_items(&conn, best, &credits.all)?;
        let next = (items.len() > limit).then(|| {
            let last = &items[limit - 1];
            next_link(
                &st,
                "/v1/events",
                &p,
                &format!("{}.{}", last.start, last.id),
            )
        });
        let body = publish::json::page(
            items.iter().take(limit).map(|i| i.body.as_str()),
            next.as_deref(),
        );
        Ok((vec![body], last_modified(&conn)?))
    };
    from_cache(
        &state,
        &headers,
        key,
        "/v1/events",
        "application/json",
        render,
    )
    .await
}

const CALENDAR_TYPE: &str = "text/calendar; charset=utf-8";

/// Answers from the response cache, valid while the store's change number stands still; on a
/// miss `render` makes the body's parts (on a blocking thread) and every request missing
/// meanwhile waits for that one rendering.
async fn from_cache<F>(
    state: &AppState,
    headers: &HeaderMap,
    key: String,
    route: &'static str,
    content_type: &'static str,
    render: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Result<(Vec<String>, Option<DateTime<Utc>>), ApiError> + Send + 'static,
{
    from_cache_stating_cut(state, headers, key, route, content_type, move || {
        render().map(|(parts, lm)| (parts, lm, None))
    })
    .await
}

/// As [`from_cache`], for a body that may leave something out: `render` also returns the
/// statement of what, sent with every response made from that rendering.
async fn from_cache_stating_cut<F>(
    state: &AppState,
    headers: &HeaderMap,
    key: String,
    route: &'static str,
    content_type: &'static str,
    render: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Result<(Vec<String>, Option<DateTime<Utc>>, Option<String>), ApiError>
        + Send
        + 'static,
{
    let change = current_change(state).await?;
    let entry =
        state
            .cache
            .get_or_render(&key, change, || async {
                state.metrics.record_render(route);
                blocking(move || {
                    let (parts, last_modified, cut) = render()?;
                    Ok(super::cache::Entry::new(
                        change,
                        super::cache::Parts::new(parts),
                        last_modified,
                    )
                    .with_cut(cut))
                })
                .await
            })
            .await?;
    serve_entry(headers, content_type, entry).await
}

/// The store's change number: from the hint while this process has written nothing since it
/// was read, else from the store (one index step, but a blocking thread and a reader).
async fn current_change(state: &AppState) -> Result<i64, ApiError> {
    let generation = state.store.generation();
    if let Some(change) = state.cache.change.get(generation) {
        return Ok(change);
    }
    let st = state.clone();
    let change = blocking(move || Ok(entities::last_change(&*st.store.reader()?)?.0)).await?;
    state.cache.change.set(generation, change);
    Ok(change)
}

/// Bodies smaller than this are not worth a stored gzip copy (the compression layer handles them).
const GZIP_MIN_BYTES: usize = 4096;

/// Answers from a cache entry: its stored gzip form to clients that accept gzip, else the body.
async fn serve_entry(
    headers: &HeaderMap,
    content_type: &'static str,
    entry: super::cache::Entry,
) -> Result<Response, ApiError> {
    let cut = entry.cut.clone();
    let mut resp = serve_body(headers, content_type, entry).await?;
    if let Some(v) = cut.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(CUT_HEADER, v);
    }
    Ok(resp)
}

async fn serve_body(
    headers: &HeaderMap,
    content_type: &'static str,
    entry: super::cache::Entry,
) -> Result<Response, ApiError> {
    if entry.body.len() < GZIP_MIN_BYTES || !super::cache::accepts_gzip(headers) {
        return Ok(cached_with_etag(
            headers,
            content_type,
            entry.body.body(),
            &entry.etag,
            entry.last_modified,
        ));
    }
    let etag = entry.gzip_etag();
    let lm = entry.last_modified;
    let gz = blocking(move || Ok(entry.gzip())).await?;
    let mut resp = cached_with_etag(headers, content_type, gz.body(), &etag, lm);
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("accept-encoding"),
    );
    if resp.status() == axum::http::StatusCode::OK {
        resp.headers_mut().insert(
            axum::http::header::CONTENT_ENCODING,
            axum::http::HeaderValue::from_static("gzip"),
        );
    }
    Ok(resp)
}

async fn change_feed(
    state: AppState,
    headers: HeaderMap,
    p: HashMap<String, String>,
    kind: RecordKind,
) -> Result<Response, ApiError> {
    let limit = limit(&p)?;
    let after = match p.get("afterChangeNumber") {
        None => 0,
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::bad_param("afterChangeNumber", format!("{s:?} must be a whole number"))
        })?,
    };
    let st = state.clone();
    let (mut items, lm) = blocking(move || {
        let conn = st.store.reader()?;
        Ok((
            entities::changed_since(&conn, kind, after, limit)?,
            last_modified(&conn)?,
        ))
    })
    .await?;
    let last = items.last().map(|i| i.change_number).unwrap_or(after);
    let mut next = state.config().server.base_url.clone();
    next.set_path(&format!("/v1/feeds/{}", kind.as_str()));
    next.query_pairs_mut()
        .append_pair("afterChangeNumber", &last.to_string());
    if p.contains_key("limit") {
        next.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
    }
    let config = state.config();
    let credits = super::licences::attributions(&config);
    for item in &mut items {
        if let Some(body) = item.body.as_mut() {
            *body = publish::json::with_attributions(body, &credits);
        }
    }
    let behind = super::licences::attributions_for(&config, kind);
    let list = super::licences::list_url(&config);
    // A record still credited to a partner no longer configured (in its grace period) is under
    // terms the config does not state: no common licence can be claimed for a page holding one.
    let all_stated = items.iter().filter_map(|i| i.body.as_deref()).all(|b| {
        publish::json::partners_of(b)
            .iter()
            .all(|p| behind.get(p).is_some())
    });
    let licence = if all_stated {
        publish::rpde::feed_licence(&behind, &list)
    } else {
        list
    };
    let body = publish::rpde::page(kind, &items, next.as_str(), &licence);
    Ok(cached(&headers, "application/json", body, lm))
}

pub async fn organisations_feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    change_feed(state, headers, p, RecordKind::Organisations).await
}

pub async fn events_feed(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    change_feed(state, headers, p, RecordKind::Events).await
}

async fn render_calendar(
    state: AppState,
    headers: HeaderMap,
    p: HashMap<String, String>,
    f: Filter,
    name: String,
    route: &'static str,
) -> Result<Response, ApiError> {
    // Subscribed calendars keep recent history, so the default window starts 30 days back. Default
    // bounds are whole days, so one rendering serves a whole day of requests from the cache.
    let (from, to) = window(&p, Duration::days(WITHDRAWN_DAYS))?;
    let day = |t: DateTime<Utc>| {
        t.date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .unwrap_or(t)
    };
    let from = if p.contains_key("from") {
        from
    } else {
        day(from)
    };
    let to = if p.contains_key("to") { to } else { day(to) };
    let keys = super::cache::key_params(&p, &["category", "partner", "postcode_area", "q"]);
    let config = state.config();
    // The partners behind this calendar: the one it is filtered to, else every events partner.
    let credits = super::licences::attributions_for(&config, RecordKind::Events)
        .filtered(|a| f.partner.as_ref().is_none_or(|p| *p == a.partner));
    let key = format!(
        "ics|{name}|{:?}|{}|{}|{keys:?}|{}",
        f.partner,
        from.timestamp(),
        to.timestamp(),
        credits.fingerprint()
    );
    let st = state.clone();
    let render = move || {
        let conn = st.store.reader()?;
        let lm = last_modified(&conn)?;
        let opts = publish::ical::CalendarOptions {
            name: &name,
            description: Some(publish::CALENDAR_DESCRIPTION),
            // DTSTAMP follows the data, not the clock, so an unchanged calendar keeps its ETag.
            now: lm.unwrap_or(DateTime::UNIX_EPOCH),
            uid_domain: publish::UID_DOMAIN,
        };
        let mut cal = publish::ical::Assembler::new(&opts, 0);
        cal.credit(&credits);
        let max = st.config().publish.calendar_max_events;
        let in_window = push_single_events(&conn, &f, from, to, max, &mut cal)?;
        let cut = (in_window > max).then(|| {
            let cut = crate::metrics::CalendarCut {
                route,
                published: max,
                in_window,
                at: Utc::now(),
            };
            let statement = cut_statement(&cut, max);
            cal.state_cut(&statement);
            st.metrics.record_calendar_cut(cut);
            statement
        });
        // Series are listed whole (clients expand RRULE) if any occurrence is in the window, and
        // recently withdrawn events as CANCELLED; both are parsed to check.
        let since = crate::store::timestamp(Utc::now() - Duration::days(WITHDRAWN_DAYS));
        let mut add = |row: EventRow, withdrawn: bool| -> Result<(), crate::store::StoreError> {
            let ev = stored_event(&row)?;
            if !publish::json::occurs_between(&ev.event, from, to) {
                return Ok(());
            }
            let rendered;
            let fragment = match &row.ical {
                Some(stored) => stored.as_str(),
                None => {
                    rendered = publish::ical::fragment(&ev, publish::UID_DOMAIN);
                    &rendered
                }
            };
            cal.push(&publish::ical::Piece {
                fragment,
                sequence: row.version - 1,
                withdrawn,
            });
            Ok(())
        };
        entities::for_each_series(&conn, &f, to.timestamp(), |row| add(row, false))?;
        entities::for_each_withdrawn(&conn, &f, &since, to.timestamp(), |row| add(row, true))?;
        Ok((cal.finish_parts(), lm, cut))
    };
    from_cache_stating_cut(&state, &headers, key, route, CALENDAR_TYPE, render).await
}

/// Streams the window's single events from the store into `cal`, the first `max` of them in
/// start order, and returns how many the window holds: those past the bound are counted, not
/// rendered, so the response can say what it left out.
fn push_single_events(
    conn: &rusqlite::Connection,
    f: &Filter,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    max: usize,
    cal: &mut publish::ical::Assembler,
) -> Result<usize, crate::store::StoreError> {
    let mut seen = 0usize;
    entities::for_each_calendar_event(
        conn,
        f,
        from.timestamp(),
        to.timestamp(),
        i64::MAX as usize,
        |row| {
            seen += 1;
            if seen > max {
                return Ok(());
            }
            let rendered;
            let fragment = match (row.ical, row.body) {
                (Some(stored), _) => stored,
                (None, body) => {
                    let ev: CanonicalEvent =
                        serde_json::from_str(body.unwrap_or("")).map_err(|e| {
                            crate::store::StoreError::Corrupt {
                                what: row.id.to_string(),
                                reason: e.to_string(),
                            }
                        })?;
                    rendered = publish::ical::fragment(&ev, publish::UID_DOMAIN);
                    &rendered
                }
            };
            cal.push(&publish::ical::Piece {
                fragment,
                sequence: row.version - 1,
                withdrawn: false,
            });
            Ok(())
        },
    )?;
    Ok(seen)
}

/// What a cut calendar says of itself, in its header and its body: ASCII only, so it is a valid
/// header value as it stands.
fn cut_statement(cut: &crate::metrics::CalendarCut, max: usize) -> String {
    format!(
        "cut at publish.calendar_max_events={max}: {} of {} single events in the window published (the earliest-starting); {} later ones omitted; ask again with a later from= for the rest",
        cut.published,
        cut.in_window,
        cut.omitted()
    )
}

pub async fn calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let f = filter(&p)?;
    check_partner(&state, &f)?;
    render_calendar(
        state,
        headers,
        p,
        f,
        publish::CALENDAR_NAME.into(),
        "/calendar.ics",
    )
    .await
}

pub async fn partner_calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Params,
) -> Result<Response, ApiError> {
    let config = state.config();
    let Some(name) = config
        .partner(&id)
        .map(|p| p.name.clone())
        .or_else(|| known_partner(&state, &id))
    else {
        return Err(ApiError::not_found(format!("no partner with id {id}")));
    };
    let mut f = filter(&p)?;
    f.partner = Some(id);
    render_calendar(state, headers, p, f, name, "/partners/{id}/calendar.ics").await
}

const STORE_DAMAGED: &str = "the store's file is damaged; see the log";

pub async fn healthz(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let result = blocking(move || {
        // A read that met a damaged page earlier makes the store unhealthy even though the
        // counts below may still be read from intact index pages.
        // Public text only: the details (with the store's path) are in the log.
        if crate::store::damage_seen().is_some() {
            return Err(ApiError::unavailable(STORE_DAMAGED));
        }
        st.store.probe().map_err(|e| {
            tracing::error!(error = %e, "healthz: the store does not answer");
            ApiError::unavailable(if e.is_corruption() {
                STORE_DAMAGED
            } else {
                "reads fail; see the log"
            })
        })?;
        let conn = st.store.reader()?;
        let (orgs, events) = entities::counts(&conn)?;
        let mut partners = Vec::new();
        let config = st.config();
        for p in &config.partners {
            let (last, ok) = runs::latest(&conn, p.id.as_str())?;
            partners.push(serde_json::json!({
                "id": p.id.as_str(),
                "last_run": last.map(|r| serde_json::json!({
                    "id": r.id, "result": r.result, "started_at": r.started_at,
                    "finished_at": r.finished_at, "error": r.error.as_deref().map(crate::redact::public),
                })),
                "last_success_at": ok.and_then(|r| r.finished_at),
            }));
        }
        Ok(serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "organisations": orgs,
            "events": events,
            "partners": partners,
        }))
    })
    .await;
    match result {
        Ok(v) => Ok(cached(&headers, "application/json", v.to_string(), None)),
        Err(e) => Err(ApiError::unavailable(format!(
            "the store does not answer: {}",
            e.message
        ))),
    }
}
