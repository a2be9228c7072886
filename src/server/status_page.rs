//! The status page at `/` for people: each partner's last run, its error if it failed, record
//! counts, and links to the calendar and feeds. Plain server-rendered HTML (maud escapes every
//! value), no scripts, no build step.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{html, Markup, DOCTYPE};

use super::{blocking, cached, ApiError, AppState};
use crate::store::runs::Run;
use crate::store::{entities, records, runs};

struct PartnerRow {
    id: String,
    name: String,
    schedule: String,
    last: Option<Run>,
    last_ok: Option<String>,
    streak: usize,
    orgs: usize,
    events: usize,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1b1b}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}\
.ok{color:#0a6b2d}.failed,.held,.interrupted{color:#a4000f;font-weight:600}.error{color:#a4000f;font-size:.9em}\
code{background:#f3f3f3;padding:0 .2rem}";

/// The line saying the latest calendar rendering cut at its bound left events out.
fn cut_line(cut: &crate::metrics::CalendarCut) -> Markup {
    html! {
        p #calendar-cut class="error" {
            "Calendar cut: at " (cut.at.format("%Y-%m-%dT%H:%M:%SZ")) " a rendering of "
            code { (cut.route) } " published " (cut.published) " of " (cut.in_window)
            " single events in its window (" (cut.omitted()) " omitted; raise "
            code { "publish.calendar_max_events" } ")."
        }
    }
}

fn render(
    rows: &[PartnerRow],
    counts: (usize, usize),
    cut: Option<&crate::metrics::CalendarCut>,
    base: &str,
    webcal: &str,
) -> Markup {
    let (orgs, events) = counts;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "tributary status" }
                style { (STYLE) }
            }
            body {
                h1 { "tributary" }
                p {
                    "Merged directory: " strong #org-count { (orgs) } " organisations and "
                    strong #event-count { (events) } " events from " (rows.len()) " partners."
                }
                h2 { "Partners" }
                table #partners {
                    thead { tr { th { "Partner" } th { "Last run" } th { "Records" } th { "Schedule" } } }
                    tbody {
                        @for r in rows {
                            tr id={ "partner-" (r.id) } {
                                td { strong { (r.name) } br; code { (r.id) } }
                                td {
                                    @match &r.last {
                                        None => { "never run" }
                                        Some(run) => {
                                            span class=(run.result) { (run.result) }
                                            " at " (run.finished_at.as_deref().unwrap_or(&run.started_at))
                                            " (run " (run.id) ", " (run.trigger) ")"
                                            @if run.counts.rejected > 0 {
                                                br; (run.counts.rejected) " records rejected"
                                            }
                                            @if let Some(e) = &run.error {
                                                p class="error" { (e) }
                                            }
                                        }
                                    }
                                    @if r.streak > 1 {
                                        p class="error" { (r.streak) " failures in a row" }
                                    }
                                    @if let Some(ok) = &r.last_ok {
                                        br; small { "last success " (ok) }
                                    }
                                }
                                td { (r.orgs) " organisations" br; (r.events) " events" }
                                td { code { (r.schedule) } }
                            }
                        }
                    }
                }
                h2 { "Data" }
                @if let Some(c) = cut { (cut_line(c)) }
                ul {
                    li { a href={ (base) "/calendar.ics" } { "Merged calendar (iCalendar)" } " — subscribe: " code { (webcal) } }
                    @for r in rows {
                        li { a href={ (base) "/partners/" (r.id) "/calendar.ics" } { (r.name) " calendar" } }
                    }
                    li { a href={ (base) "/v1/organisations" } { "Organisations (JSON)" } }
                    li { a href={ (base) "/v1/events" } { "Events (JSON)" } }
                    li { a href={ (base) "/v1/feeds/organisations" } { "Organisations change feed (RPDE)" } }
                    li { a href={ (base) "/v1/feeds/events" } { "Events change feed (RPDE)" } }
                    li { a href={ (base) "/healthz" } { "Health" } " · " a href={ (base) "/metrics" } { "Metrics" } }
                }
            }
        }
    }
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let st = state.clone();
    let (rows, orgs, events) = blocking(move || {
        let conn = st.store.reader()?;
        let config = st.config();
        let mut rows = Vec::new();
        for p in &config.partners {
            let pid = p.id.as_str();
            let (last, ok) = runs::latest(&conn, pid)?;
            let (_, streak) = runs::failures(&conn, pid)?;
            let (orgs, events) = records::partner_counts(&conn, pid)?;
            rows.push(PartnerRow {
                id: pid.to_string(),
                name: p.name.clone(),
                schedule: p.schedule.expr.clone(),
                // Unauthenticated: a failing feed's URL may carry credentials, its path the layout
                // of the server. The admin API has the full text.
                last: last.map(|mut r| {
                    r.error = r.error.as_deref().map(crate::redact::public);
                    r
                }),
                last_ok: ok.and_then(|r| r.finished_at),
                streak,
                orgs,
                events,
            });
        }
        let (orgs, events) = entities::counts(&conn)?;
        Ok((rows, orgs, events))
    })
    .await?;
    let config = state.config();
    let base = config
        .server
        .base_url
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let webcal = format!(
        "webcal://{}/calendar.ics",
        base.split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&base)
    );
    let cut = state.metrics.last_calendar_cut();
    let body = render(&rows, (orgs, events), cut.as_ref(), &base, &webcal).into_string();
    Ok(cached(&headers, "text/html; charset=utf-8", body, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_partner_errors() {
        let run = Run {
            id: 7,
            partner: "p".into(),
            trigger: "schedule".into(),
            started_at: "2026-11-25T10:00:00Z".into(),
            finished_at: Some("2026-11-25T10:00:01Z".into()),
            result: "failed".into(),
            counts: Default::default(),
            error: Some("<script>alert(1)</script> HTTP 500".into()),
        };
        let rows = vec![PartnerRow {
            id: "p".into(),
            name: "A & B <CVS>".into(),
            schedule: "0 0 * * * *".into(),
            last: Some(run),
            last_ok: None,
            streak: 2,
            orgs: 1,
            events: 2,
        }];
        let html = render(&rows, (1, 2), None, "http://x", "webcal://x/calendar.ics").into_string();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; HTTP 500"));
        assert!(html.contains("A &amp; B &lt;CVS&gt;"));
    }
}
