//! Embeds for partners' sites: `/embed/events` and `/embed/organisations` (a page for an
//! `<iframe>`, or with `fragment=true` the bare listing the script inserts), `/embed/tributary.js`,
//! the snippets page `/embed/`, and one event as `.ics` (`/v1/events/{id}/calendar.ics`). Each
//! listing is a view of the public JSON API: the same handler answers it, so filters, their
//! checks and the response cache are the API's own.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{cached, public, ApiError, AppState};
use crate::model::{CanonicalEvent, CanonicalOrganisation};
use crate::publish::embed::{self, Attribution, EventItem, Layout, Look, OrganisationItem};
use crate::publish::{self, ical};

/// Records one embedded page lists unless `limit` says otherwise.
const DEFAULT_LIMIT: &str = "20";
/// Most bytes of the API page an embed reads back (500 records of a few KB each).
const MAX_PAGE_BYTES: usize = 16 << 20;
/// Parameters the embed reads itself; every other one goes to the API.
const OWN_PARAMS: &[&str] = &["layout", "accent", "fragment"];

const SCRIPT: &str = include_str!("embed.js");

/// A JSON API page, as the embed reads it back.
#[derive(Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// The embed's own parameters, checked (naming the bad one), and the API's, passed on.
struct Request {
    look: Look,
    fragment: bool,
    api: HashMap<String, String>,
}

fn request(mut p: HashMap<String, String>) -> Result<Request, ApiError> {
    let layout = match p.get("layout").map(|s| s.trim()) {
        None | Some("") | Some("list") => Layout::List,
        Some("compact") => Layout::Compact,
        Some(other) => {
            return Err(ApiError::bad_param(
                "layout",
                format!("{other:?} must be list or compact"),
            ))
        }
    };
    let accent = match p.get("accent").filter(|s| !s.trim().is_empty()) {
        None => embed::DEFAULT_ACCENT.to_string(),
        Some(a) => embed::accent(a).map_err(|m| ApiError::bad_param("accent", m))?,
    };
    let fragment = match p.get("fragment").map(|s| s.trim()) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_param(
                "fragment",
                format!("{other:?} must be true or false"),
            ))
        }
    };
    for k in OWN_PARAMS {
        p.remove(*k);
    }
    p.entry("limit".into())
        .or_insert_with(|| DEFAULT_LIMIT.into());
    Ok(Request {
        look: Look { layout, accent },
        fragment,
        api: p,
    })
}

/// Reads an API response back: its page, or the API's error as it was.
async fn read_page<T: serde::de::DeserializeOwned>(
    answer: Result<Response, ApiError>,
) -> Result<(Page<T>, Option<DateTime<Utc>>), ApiError> {
    let response = answer?;
    if response.status() != StatusCode::OK {
        return Err(ApiError::internal(format!(
            "the API answered {}",
            response.status()
        )));
    }
    let last_modified = response
        .headers()
        .get(header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .map(|t| t.with_timezone(&Utc));
    let bytes = axum::body::to_bytes(response.into_body(), MAX_PAGE_BYTES)
        .await
        .map_err(ApiError::internal)?;
    let page = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    Ok((page, last_modified))
}

/// The embed page that continues the listing where the API's `next` link does. Embed links are
/// relative to this server: a frame resolves them against it, and the script against the origin
/// it was loaded from, so they hold behind any proxy or host name.
fn more_link(kind: &str, p: &HashMap<String, String>, next: &str) -> Option<String> {
    let cursor = url::Url::parse(next)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())?;
    let mut keys: Vec<_> = p.iter().filter(|(k, _)| k.as_str() != "cursor").collect();
    keys.sort();
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in keys {
        q.append_pair(k, v);
    }
    q.append_pair("cursor", &cursor);
    Some(format!("/embed/{kind}?{}", q.finish()))
}

/// The partners behind a record, named as the config names them.
fn attributions(state: &AppState, ids: impl Iterator<Item = String>) -> Vec<Attribution> {
    let config = state.config();
    let mut out: Vec<Attribution> = Vec::new();
    for id in ids {
        let a = match config.partner(&id) {
            Some(p) => Attribution {
                name: p.name.clone(),
                website: p.website.clone(),
                licence: p
                    .licence
                    .as_ref()
                    .map(|l| (l.label().to_string(), l.url.clone())),
            },
            None => Attribution {
                name: id,
                website: None,
                licence: None,
            },
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// An API item as the embed lists it. The API has already expanded series: each item's start and
/// end are the occurrence's own.
fn event_item(state: &AppState, e: CanonicalEvent) -> EventItem {
    let (start, end) = (e.event.start, e.event.end);
    let zone = e
        .event
        .timezone
        .as_deref()
        .and_then(crate::recurrence::zone)
        .unwrap_or(chrono_tz::Europe::London);
    let ics = format!("/v1/events/{}/calendar.ics", e.id);
    let partners = attributions(state, e.partners.iter().map(|p| p.partner.clone()));
    EventItem {
        event: e,
        start,
        end,
        zone,
        partners,
        ics_url: ics,
    }
}

/// An HTML answer: the whole page for a frame, or the fragment for the script.
fn html_response(
    headers: &HeaderMap,
    fragment: maud::Markup,
    as_fragment: bool,
    title: &str,
    last_modified: Option<DateTime<Utc>>,
) -> Response {
    let body = if as_fragment {
        fragment.into_string()
    } else {
        embed::document(title, fragment)
    };
    cached(headers, "text/html; charset=utf-8", body, last_modified)
}

/// A wrong parameter, shown where the listing would be (with the API's status).
fn problem_response(e: ApiError, look: &Look, as_fragment: bool) -> Response {
    let fragment = embed::problem(&e.message, look);
    let body = if as_fragment {
        fragment.into_string()
    } else {
        embed::document("Listing unavailable", fragment)
    };
    (
        e.status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn heading(state: &AppState, p: &HashMap<String, String>, what: &str) -> String {
    match p
        .get("partner")
        .and_then(|id| state.config().partner(id).map(|c| c.name.clone()))
    {
        Some(name) => format!("{what} from {name}"),
        None => what.to_string(),
    }
}

/// The embed's request and the public API's page for it (`call` is the API route's handler), or
/// the problem page to answer instead.
async fn api_page<T, Fut>(
    p: HashMap<String, String>,
    call: impl FnOnce(HashMap<String, String>) -> Fut,
) -> Result<(Request, Page<T>, Option<DateTime<Utc>>), Response>
where
    T: serde::de::DeserializeOwned,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let as_fragment = p.get("fragment").map(|s| s.trim()) == Some("true");
    let req = request(p).map_err(|e| problem_response(e, &Look::default(), as_fragment))?;
    match read_page::<T>(call(req.api.clone()).await).await {
        Ok((page, lm)) => Ok((req, page, lm)),
        Err(e) => Err(problem_response(e, &req.look, req.fragment)),
    }
}

/// `GET /embed/events`
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let st = state.clone();
    let answer = api_page::<CanonicalEvent, _>(p, |api| {
        public::events(State(st), HeaderMap::new(), Query(api))
    });
    let (req, page, lm) = match answer.await {
        Ok(x) => x,
        Err(problem) => return problem,
    };
    let items: Vec<EventItem> = page
        .items
        .into_iter()
        .map(|e| event_item(&state, e))
        .collect();
    let next = page
        .next
        .as_deref()
        .and_then(|n| more_link("events", &own_params(&req), n));
    let title = heading(&state, &req.api, "Events");
    let fragment = embed::events_fragment(&items, next.as_deref(), &title, &req.look);
    html_response(&headers, fragment, req.fragment, &title, lm)
}

/// `GET /embed/organisations`
pub async fn organisations(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let st = state.clone();
    let answer = api_page::<CanonicalOrganisation, _>(p, |api| {
        public::organisations(State(st), HeaderMap::new(), Query(api))
    });
    let (req, page, lm) = match answer.await {
        Ok(x) => x,
        Err(problem) => return problem,
    };
    let items: Vec<OrganisationItem> = page
        .items
        .into_iter()
        .map(|o| OrganisationItem {
            partners: attributions(&state, o.partners.iter().map(|p| p.partner.clone())),
            organisation: o,
        })
        .collect();
    let next = page
        .next
        .as_deref()
        .and_then(|n| more_link("organisations", &own_params(&req), n));
    let title = heading(&state, &req.api, "Organisations");
    let fragment = embed::organisations_fragment(&items, next.as_deref(), &title, &req.look);
    html_response(&headers, fragment, req.fragment, &title, lm)
}

/// The embed's own parameters (the API's and its look), carried by its "more" link.
fn own_params(req: &Request) -> HashMap<String, String> {
    let mut own = req.api.clone();
    own.insert("layout".into(), layout_name(req.look.layout).into());
    own.insert(
        "accent".into(),
        req.look.accent.trim_start_matches('#').into(),
    );
    own
}

fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::List => "list",
        Layout::Compact => "compact",
    }
}

/// `GET /embed/tributary.js`: renders listings into `<div data-tributary-…>` on a host page.
pub async fn script(headers: HeaderMap) -> Response {
    cached(
        &headers,
        "text/javascript; charset=utf-8",
        SCRIPT.to_string(),
        None,
    )
}

/// `GET /embed/`: the snippets to paste, for the whole listing and for each partner.
pub async fn snippets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let config = state.config();
    let mut list = vec![embed::Snippet {
        label: "All partners' events".into(),
        query: String::new(),
    }];
    list.extend(config.partners.iter().map(|p| embed::Snippet {
        label: format!("Events from {}", p.name),
        query: format!("partner={}", p.id),
    }));
    let body = embed::snippets_page(config.server.base_url.as_str(), &list);
    cached(&headers, "text/html; charset=utf-8", body, None)
}

/// `GET /v1/events/{id}/calendar.ics`: one event (a series whole) to add to a calendar.
pub async fn event_calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let answer = public::event(State(state.clone()), HeaderMap::new(), Path(id)).await?;
    if answer.status() == StatusCode::MOVED_PERMANENTLY {
        // Merged away: the survivor's calendar, as the JSON route redirects to the survivor.
        let survivor = answer
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        if let Ok(v) = HeaderValue::from_str(&format!("/v1/events/{survivor}/calendar.ics")) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let bytes = axum::body::to_bytes(answer.into_body(), MAX_PAGE_BYTES)
        .await
        .map_err(ApiError::internal)?;
    let event: CanonicalEvent = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    let updated = event.updated_at.with_timezone(&Utc);
    let name = event.event.title.clone();
    let opts = ical::CalendarOptions {
        name: &name,
        description: Some(publish::CALENDAR_DESCRIPTION),
        now: updated,
        uid_domain: publish::UID_DOMAIN,
    };
    let entry = ical::CalendarEntry {
        event,
        sequence: 0,
        withdrawn: false,
    };
    let body = ical::render(std::slice::from_ref(&entry), &opts);
    let mut r = cached(
        &headers,
        "text/calendar; charset=utf-8",
        body,
        Some(updated),
    );
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"event.ics\""),
    );
    Ok(r)
}
