//! The partners pages: each partner's health (last success, failure streak, backoff, next run),
//! its recent runs with counts, syncs the mass-deletion guard held, and Resync now / full, with
//! the running sync followed by polling a small JSON endpoint (or a refresh without scripts).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;

use super::session::{refusal, SignedIn};
use super::{failure, page, page_with_head, see_other, BASE};
use crate::scheduler;
use crate::server::{blocking, ApiError, AppState};
use crate::store::runs::{self, Run};
use crate::store::{console, records};
use crate::sync::SyncOptions;

struct Health {
    id: String,
    name: String,
    last: Option<Run>,
    last_ok: Option<String>,
    streak: usize,
    backoff_minutes: i64,
    next_run: Option<String>,
    running: Option<i64>,
    /// How far the running sync has got, in words.
    progress: Option<String>,
    orgs: usize,
    events: usize,
}

/// Health of `ids` (configured partners), in config order.
async fn health(state: &AppState, ids: Vec<String>) -> Result<Vec<Health>, ApiError> {
    let mut live = Vec::new();
    for id in &ids {
        let (running, next) = match &state.runner {
            Some(r) => (r.progress(id).await, r.next_sync(id)),
            None => (None, None),
        };
        live.push((running, next));
    }
    let st = state.clone();
    blocking(move || {
        let conn = st.store.reader()?;
        let config = st.config();
        let mut out = Vec::new();
        for (id, (running, next)) in ids.into_iter().zip(live) {
            let Some(p) = config.partner(&id) else {
                continue;
            };
            let (last, ok) = runs::latest(&conn, &id)?;
            let (_, streak) = runs::failures(&conn, &id)?;
            let (orgs, events) = records::partner_counts(&conn, &id)?;
            let streak_u32 = u32::try_from(streak).unwrap_or(u32::MAX);
            out.push(Health {
                name: p.name.clone(),
                next_run: next
                    .or_else(|| scheduler::next_run(p, &config))
                    .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
                backoff_minutes: scheduler::backoff(streak_u32).num_minutes(),
                id,
                last,
                last_ok: ok.and_then(|r| r.finished_at),
                streak,
                running: running.map(|(run, _)| run),
                progress: running.map(|(_, p)| p.describe()),
                orgs,
                events,
            });
        }
        Ok(out)
    })
    .await
}

fn last_run(h: &Health) -> Markup {
    html! {
        @match &h.last {
            None => { "never run" }
            Some(run) => {
                span class=(run.result) { (run.result) } " "
                a href={ (BASE) "/runs/" (run.id) } { "run " (run.id) }
                " at " (run.finished_at.as_deref().unwrap_or(&run.started_at))
            }
        }
    }
}

fn streak(h: &Health) -> Markup {
    html! {
        @if h.streak == 0 { "none" } @else {
            span.error { (h.streak) " failed in a row" }
            br; "backoff " (h.backoff_minutes) " min"
        }
    }
}

/// `GET /admin/console/partners`.
pub async fn list(State(state): State<AppState>, signed: SignedIn) -> Response {
    let ids = state
        .config()
        .partners
        .iter()
        .map(|p| p.id.to_string())
        .collect();
    let rows = match health(&state, ids).await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    page(
        "Partners",
        Some(&signed.session.csrf),
        html! {
            h1 { "Partners" }
            div.scroll { table #partners {
                thead { tr {
                    th scope="col" { "Partner" } th scope="col" { "Last run" } th scope="col" { "Last success" }
                    th scope="col" { "Failures" } th scope="col" { "Next run" } th scope="col" { "Records" }
                } }
                tbody {
                    @for h in &rows {
                        tr id={ "partner-" (h.id) } {
                            th scope="row" { a href={ (BASE) "/partners/" (h.id) } { (h.name) } br; code { (h.id) } }
                            td { (last_run(h)) @if h.running.is_some() { br; strong { "syncing now" } } }
                            td { (h.last_ok.as_deref().unwrap_or("never")) }
                            td { (streak(h)) }
                            td { (h.next_run.as_deref().unwrap_or("not scheduled")) }
                            td { (h.orgs) " organisations" br; (h.events) " events" }
                        }
                    }
                }
            } }
        },
    )
    .into_response()
}

/// Runs listed on a partner's page.
const RUNS_SHOWN: usize = 30;

/// `GET /admin/console/partners/{id}`.
pub async fn detail(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if state.config().partner(&id).is_none() {
        return failure(ApiError::not_found(format!(
            "There is no partner {id:?} in the config."
        )));
    }
    let h = match health(&state, vec![id.clone()]).await {
        Ok(mut v) if !v.is_empty() => v.remove(0),
        Ok(_) => return failure(ApiError::not_found(format!("no partner {id:?}"))),
        Err(e) => return failure(e),
    };
    let st = state.clone();
    let pid = id.clone();
    let found = blocking(move || {
        let conn = st.store.reader()?;
        Ok((
            runs::recent(&conn, Some(&pid), RUNS_SHOWN)?,
            console::held_since_applied(&conn, &pid)?,
        ))
    })
    .await;
    let (recent, held) = match found {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let csrf = &signed.session.csrf;
    // Without scripts the page refreshes itself while a sync runs; with them it polls instead.
    let head = html! {
        @if h.running.is_some() { noscript { meta http-equiv="refresh" content="3"; } }
    };
    page_with_head(
        &h.name,
        Some(csrf),
        head,
        html! {
            h1 { (h.name) " " code { (h.id) } }
            dl #health {
                dt { "Last run" } dd { (last_run(&h)) }
                @if let Some(e) = h.last.as_ref().and_then(|r| r.error.as_deref()) { dt { "Its error" } dd.error { (e) } }
                dt { "Last success" } dd { (h.last_ok.as_deref().unwrap_or("never")) }
                dt { "Failures in a row" } dd { (streak(&h)) }
                dt { "Next run" } dd { (h.next_run.as_deref().unwrap_or("not scheduled")) }
                dt { "Records" } dd { (h.orgs) " organisations, " (h.events) " events" }
            }
            section aria-labelledby="sync-title" {
                h2 #sync-title { "Sync" }
                p #progress role="status" aria-live="polite" data-running=[h.running]
                    data-progress={ (BASE) "/partners/" (super::enc(&h.id)) "/progress" } {
                    @match h.running {
                        Some(run) => { "Run " (run) " is syncing: " (h.progress.as_deref().unwrap_or("")) }
                        None => { "No sync running." }
                    }
                }
                div.actions {
                    (resync_form(csrf, &h.id, "now", "Resync now", "resync"))
                    (resync_form(csrf, &h.id, "full", "Full resync", "resync-full"))
                }
                p.hint { "A full resync harvests every feed from the start instead of from the last change." }
            }
            @if !held.is_empty() {
                section aria-labelledby="held-title" #held {
                    h2 #held-title { "Held by the mass-deletion guard" }
                    @for run in &held {
                        p.held { "Run " a href={ (BASE) "/runs/" (run.id) } { (run.id) } " at " (run.started_at) ": " (run.error.as_deref().unwrap_or("held")) }
                    }
                    p { "Apply: sync again and let the deletions through. Keep: settle the hold and keep the records as they are; the next sync is checked again." }
                    div.actions {
                        (resync_form(csrf, &h.id, "force", "Apply the deletions", "apply-held"))
                        form method="post" action={ (BASE) "/partners/" (h.id) "/keep" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" id="keep-held" { "Keep the records" }
                        }
                    }
                }
            }
            h2 { "Recent runs" }
            div.scroll { table #runs {
                thead { tr {
                    th scope="col" { "Run" } th scope="col" { "Result" } th scope="col" { "Trigger" } th scope="col" { "Started" }
                    th scope="col" { "Seen" } th scope="col" { "New" } th scope="col" { "Updated" } th scope="col" { "Deleted" } th scope="col" { "Rejected" }
                } }
                tbody {
                    @for r in &recent {
                        tr {
                            td { a href={ (BASE) "/runs/" (r.id) } { (r.id) } }
                            td { span class=(r.result) { (r.result) } }
                            td { (r.trigger) } td { (r.started_at) }
                            td { (r.counts.records_seen) } td { (r.counts.inserted) } td { (r.counts.updated) }
                            td { (r.counts.deleted) } td { (r.counts.rejected) }
                        }
                    }
                }
            } }
            script { (PreEscaped(POLL)) }
        },
    )
    .into_response()
}

/// Polls the progress endpoint while a sync runs and reloads the page when it has finished.
const POLL: &str = "(function(){var el=document.getElementById('progress');if(!el||!el.dataset.running)return;\
function tick(){fetch(el.dataset.progress,{credentials:'same-origin'}).then(function(r){return r.json();}).then(function(p){\
if(p.running){el.textContent='Run '+p.running+' is syncing: '+(p.progress_text||'')+' ('+p.elapsed_secs+' s)';setTimeout(tick,1000);}\
else{el.textContent='Finished: '+(p.last?p.last.result:'');location.reload();}}).catch(function(){setTimeout(tick,3000);});}\
setTimeout(tick,500);})();";

fn resync_form(csrf: &str, partner: &str, mode: &str, label: &str, id: &str) -> Markup {
    html! {
        form method="post" action={ (BASE) "/partners/" (partner) "/resync" } {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="mode" value=(mode);
            button type="submit" id=(id) { (label) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ResyncForm {
    csrf: String,
    mode: String,
}

/// `POST /admin/console/partners/{id}/resync`: starts (or joins) a sync through the scheduler's
/// runner and goes back to the partner's page, which follows it.
pub async fn resync(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ResyncForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    let (full, force) = match form.mode.as_str() {
        "now" => (false, false),
        "full" => (true, false),
        "force" => (false, true),
        other => {
            return failure(ApiError::bad_param(
                "mode",
                format!("{other:?} must be now, full or force"),
            ))
        }
    };
    let Some(runner) = state.runner.clone() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "This server runs no scheduler, so it cannot sync.",
        );
    };
    if state.config().partner(&id).is_none() {
        return failure(ApiError::not_found(format!(
            "There is no partner {id:?} in the config."
        )));
    }
    let opts = SyncOptions {
        full,
        trigger: "admin".into(),
        force,
    };
    match runner.start(&id, opts).await {
        Ok(t) => {
            tracing::info!(partner = %id, run = t.run_id, joined = t.joined, full, force, "admin console resync");
            see_other(format!("{BASE}/partners/{}", super::enc(&id)))
        }
        Err(e) => failure(ApiError::internal(e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct KeepForm {
    csrf: String,
}

/// `POST /admin/console/partners/{id}/keep`: settles the partner's held syncs by keeping its
/// records as they are, and goes back to the partner's page.
pub async fn keep(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<KeepForm>,
) -> Response {
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    if state.config().partner(&id).is_none() {
        return failure(ApiError::not_found(format!(
            "There is no partner {id:?} in the config."
        )));
    }
    let st = state.clone();
    let pid = id.clone();
    match blocking(move || Ok(console::keep_held(&st.store.writer(), &pid)?)).await {
        Ok(kept) => {
            tracing::info!(partner = %id, kept, "admin console kept the records of held syncs");
            see_other(format!("{BASE}/partners/{}", super::enc(&id)))
        }
        Err(e) => failure(e),
    }
}

/// `GET /admin/console/partners/{id}/progress`: the running run (if any), how long it has run, and
/// the latest run's result and counts.
pub async fn progress(
    State(state): State<AppState>,
    _signed: SignedIn,
    Path(id): Path<String>,
) -> Response {
    if state.config().partner(&id).is_none() {
        return ApiError::not_found(format!("no partner {id:?}")).into_response();
    }
    let live = match &state.runner {
        Some(r) => r.progress(&id).await,
        None => None,
    };
    let running = live.map(|(run, _)| run);
    let st = state.clone();
    let found = blocking(move || {
        let conn = st.store.reader()?;
        let last = runs::latest(&conn, &id)?.0;
        let started = match running {
            Some(run) => runs::get(&conn, run)?.map(|r| r.started_at),
            None => None,
        };
        Ok((last, started))
    })
    .await;
    let (last, started) = match found {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let elapsed = started
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok())
        .map(|s| {
            (chrono::Utc::now() - s.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0)
        });
    let progress = live.map(|(_, p)| p);
    Json(serde_json::json!({
        "running": running,
        "elapsed_secs": elapsed,
        "progress": progress,
        "progress_text": progress.map(|p| p.describe()),
        "last": last.map(|r| serde_json::json!({
            "id": r.id, "result": r.result, "finished_at": r.finished_at, "counts": r.counts,
        })),
    }))
    .into_response()
}
