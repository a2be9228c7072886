//! A run's page: what the sync did (counts, error) and its rejections with their reasons,
//! searchable by feed, record id or reason.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::session::SignedIn;
use super::{failure, page, BASE};
use crate::server::{blocking, ApiError, AppState};
use crate::store::{console, runs};

/// Rejections listed at once; the count says how many more matched.
const SHOWN: usize = 500;

#[derive(Debug, Default, Deserialize)]
pub struct RunQuery {
    q: Option<String>,
}

/// `GET /admin/console/runs/{id}?q=`.
pub async fn detail(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<i64>,
    Query(query): Query<RunQuery>,
) -> Response {
    // A search longer than any reason is no search an admin typed.
    let search: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(200)
        .collect();
    let st = state.clone();
    let s = search.clone();
    let found = blocking(move || {
        let conn = st.store.reader()?;
        match runs::get(&conn, id)? {
            Some(run) => Ok(Some((
                run,
                console::rejections_matching(&conn, id, &s, SHOWN)?,
            ))),
            None => Ok(None),
        }
    })
    .await;
    let (run, (rejections, matched)) = match found {
        Ok(Some(v)) => v,
        Ok(None) => return failure(ApiError::not_found(format!("There is no run {id}."))),
        Err(e) => return failure(e),
    };
    let c = &run.counts;
    page(
        &format!("Run {id}"),
        Some(&signed.session.csrf),
        html! {
            h1 { "Run " (run.id) " of " a href={ (BASE) "/partners/" (super::enc(&run.partner)) } { (run.partner) } }
            p { span class=(run.result) { (run.result) } " · " (run.trigger) " · started " (run.started_at)
                @if let Some(f) = &run.finished_at { ", finished " (f) } }
            @if let Some(e) = &run.error { p.error #run-error { (e) } }
            p #counts { (c.feeds_fetched) " feeds fetched (" (c.feeds_unchanged) " unchanged), " (c.records_seen) " records seen: "
                (c.inserted) " new, " (c.updated) " updated, " (c.unchanged) " unchanged, " (c.deleted) " deleted, " (c.rejected) " rejected." }
            h2 { "Rejections" }
            form method="get" action={ (BASE) "/runs/" (run.id) } role="search" {
                label for="q" { "Search feed, record or reason " }
                input #q type="search" name="q" value=(search);
                " " button type="submit" { "Search" }
            }
            p #matched { (matched) " of " (c.rejected) " rejections match"
                @if matched > rejections.len() { "; the first " (rejections.len()) " are shown" } "." }
            div.scroll { table #rejections {
                thead { tr { th scope="col" { "Feed" } th scope="col" { "Record" } th scope="col" { "Reason" } } }
                tbody {
                    @for r in &rejections {
                        tr { td { code { (r.feed) } } td { (r.record_id.as_deref().unwrap_or("—")) } td { (r.reason) } }
                    }
                }
            } }
        },
    )
    .into_response()
}
