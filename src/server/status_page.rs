//! The status page at `/` for people: each partner's last run (its error, its commonest rejection
//! reasons), its next run and any backoff, its schedule in words, record counts, and links to the
//! calendar and feeds; times in the scheduler's zone beside how long ago they were. Plain
//! server-rendered HTML (maud escapes every value), no scripts, no build step.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup, DOCTYPE};

use super::{blocking, cached, ApiError, AppState};
use crate::store::runs::Run;
use crate::store::{entities, records, runs};

/// Rejection reasons the page lists per partner; the admin API has every one.
const REASONS_SHOWN: usize = 5;

struct PartnerRow {
    id: String,
    name: String,
    schedule: String,
    /// The schedule in words, beside the cron expression.
    schedule_words: String,
    last: Option<Run>,
    last_ok: Option<String>,
    streak: usize,
    /// When the scheduler will next sync it (its schedule, pushed back while backing off).
    next: Option<DateTime<Utc>>,
    /// While failing: how long the scheduler waits after the last failure, and until when.
    backoff: Option<(chrono::Duration, DateTime<Utc>)>,
    /// The last run's commonest rejection reasons and their counts.
    reasons: Vec<(String, usize)>,
    orgs: usize,
    events: usize,
}

/// How times are shown: in the scheduler's zone, beside how long ago (or until) they are.
struct Clock {
    now: DateTime<Utc>,
    zone: Tz,
}

impl Clock {
    /// `Thu 3 Dec 2026, 01:37 GMT (3 minutes ago)`, machine-readable in `datetime`.
    fn show(&self, t: DateTime<Utc>) -> Markup {
        let local = t.with_timezone(&self.zone);
        let relative = chrono_humanize::HumanTime::from(t - self.now);
        html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) title=(t.format("%Y-%m-%d %H:%M:%S UTC")) {
                (local.format("%a %-d %b %Y, %H:%M %Z")) " "
                span.rel { "(" (relative) ")" }
            }
        }
    }

    /// A stored RFC 3339 time; shown as stored when it does not parse.
    fn show_text(&self, s: &str) -> Markup {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => self.show(t.with_timezone(&Utc)),
            Err(_) => html! { (s) },
        }
    }
}

/// Minutes or hours in words: `20 minutes`, `6 hours`.
fn span(d: chrono::Duration) -> String {
    let m = d.num_minutes();
    if m >= 60 && m % 60 == 0 {
        let h = m / 60;
        format!("{h} hour{}", if h == 1 { "" } else { "s" })
    } else {
        format!("{m} minute{}", if m == 1 { "" } else { "s" })
    }
}

// Below 40rem the partner table becomes one card per partner, each cell labelled by its
// `data-label`, and long unbroken text (URLs in errors) wraps, so a phone never scrolls sideways.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1b1b;overflow-wrap:anywhere}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}\
.ok{color:#0a6b2d}.failed,.held,.interrupted{color:#a4000f;font-weight:600}.error{color:#a4000f;font-size:.9em}\
.rel,.words{color:#555}.reasons{margin:.2rem 0;padding-left:1.2rem;font-size:.9em}\
code{background:#f3f3f3;padding:0 .2rem;overflow-wrap:anywhere}\
@media (max-width:40rem){body{margin:1rem auto}table,thead,tbody,tr,th,td{display:block}thead{display:none}\
tr{border-bottom:1px solid #ddd;padding:.5rem 0}td{border:0;padding:.2rem 0}\
td[data-label]::before{content:attr(data-label);display:block;font-size:.8em;color:#555;text-transform:uppercase}}";

fn last_run_cell(r: &PartnerRow, clock: &Clock) -> Markup {
    html! {
        @match &r.last {
            None => { "never run" }
            Some(run) => {
                span class=(run.result) { (run.result) }
                " " (clock.show_text(run.finished_at.as_deref().unwrap_or(&run.started_at)))
                " (run " (run.id) ", " (run.trigger) ")"
                @if run.counts.rejected > 0 {
                    br; (run.counts.rejected) " records rejected"
                    ul.reasons {
                        @for (reason, n) in &r.reasons {
                            li { (reason) @if *n > 1 { " (×" (n) ")" } }
                        }
                    }
                    small { "Every rejection: " code { "GET /admin/runs/" (run.id) } " (admin token)" }
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
            br; small { "last success " (clock.show_text(ok)) }
        }
    }
}

fn next_run_cell(r: &PartnerRow, clock: &Clock) -> Markup {
    html! {
        @match r.next {
            Some(t) => { (clock.show(t)) }
            None => { "not scheduled" }
        }
        @if let Some((wait, until)) = r.backoff {
            p class="error backoff" {
                "Backing off " (span(wait)) " after " (r.streak)
                @if r.streak == 1 { " failure" } @else { " failures" }
                ": no retry before " (clock.show(until))
            }
        }
    }
}

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
    clock: &Clock,
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
                p #clock { "Times in " (clock.zone.name()) "; page made " (clock.show(clock.now)) "." }
                h2 { "Partners" }
                table #partners {
                    thead { tr { th { "Partner" } th { "Last run" } th { "Next run" } th { "Records" } th { "Schedule" } } }
                    tbody {
                        @for r in rows {
                            tr id={ "partner-" (r.id) } {
                                td data-label="Partner" { strong { (r.name) } br; code { (r.id) } }
                                td.last data-label="Last run" { (last_run_cell(r, clock)) }
                                td.next data-label="Next run" { (next_run_cell(r, clock)) }
                                td data-label="Records" { (r.orgs) " organisations" br; (r.events) " events" }
                                td.schedule data-label="Schedule" { span.words { (r.schedule_words) } br; code { (r.schedule) } }
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
                    li { a href={ (base) "/v1/licences" } { "Licences and attribution" } }
                    li { a href={ (base) "/healthz" } { "Health" } " · " a href={ (base) "/metrics" } { "Metrics" } }
                }
            }
        }
    }
}

/// While a partner is failing, the backoff the scheduler applies and the time it ends.
fn backoff_of(
    last_failed: Option<&Run>,
    streak: usize,
) -> Option<(chrono::Duration, DateTime<Utc>)> {
    let run = last_failed?;
    let wait = crate::scheduler::backoff(u32::try_from(streak).unwrap_or(u32::MAX));
    if wait.is_zero() {
        return None;
    }
    let at =
        DateTime::parse_from_rfc3339(run.finished_at.as_deref().unwrap_or(&run.started_at)).ok()?;
    Some((wait, at.with_timezone(&Utc) + wait))
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
            let (last_failed, streak) = runs::failures(&conn, pid)?;
            let (orgs, events) = records::partner_counts(&conn, pid)?;
            let reasons = match &last {
                Some(run) if run.counts.rejected > 0 => {
                    runs::rejection_reasons(&conn, run.id, REASONS_SHOWN)?
                }
                _ => Vec::new(),
            };
            // The running scheduler's own plan when there is one (it includes the backoff),
            // else the schedule's next tick.
            let next = st
                .runner
                .as_ref()
                .and_then(|r| r.next_sync(pid))
                .or_else(|| crate::scheduler::next_run(p, &config));
            rows.push(PartnerRow {
                id: pid.to_string(),
                name: p.name.clone(),
                schedule: p.schedule.expr.clone(),
                schedule_words: super::cron_words::describe(&p.schedule.cron),
                // Unauthenticated: a failing feed's URL may carry credentials, its path the layout
                // of the server. The admin API has the full text.
                last: last.map(|mut r| {
                    r.error = r.error.as_deref().map(crate::redact::public);
                    r
                }),
                last_ok: ok.and_then(|r| r.finished_at),
                backoff: backoff_of(last_failed.as_ref(), streak),
                streak,
                next,
                reasons: reasons
                    .into_iter()
                    .map(|(reason, n)| (crate::redact::public(&reason), n))
                    .collect(),
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
    let clock = Clock {
        now: Utc::now(),
        zone: config.scheduler.timezone,
    };
    let cut = state.metrics.last_calendar_cut();
    let body = render(&rows, (orgs, events), cut.as_ref(), &base, &webcal, &clock).into_string();
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
            counts: runs::RunCounts {
                rejected: 3,
                ..Default::default()
            },
            error: Some("<script>alert(1)</script> HTTP 500".into()),
        };
        let rows = vec![PartnerRow {
            id: "p".into(),
            name: "A & B <CVS>".into(),
            schedule: "0 0 * * * *".into(),
            schedule_words: "Every hour, on the hour".into(),
            last: Some(run.clone()),
            last_ok: None,
            streak: 2,
            next: None,
            backoff: backoff_of(Some(&run), 2),
            reasons: vec![("<b>no name</b>".into(), 3)],
            orgs: 1,
            events: 2,
        }];
        let clock = Clock {
            now: DateTime::parse_from_rfc3339("2026-11-25T10:03:01Z")
                .unwrap()
                .with_timezone(&Utc),
            zone: chrono_tz::Europe::London,
        };
        let html = render(
            &rows,
            (1, 2),
            None,
            "http://x",
            "webcal://x/calendar.ics",
            &clock,
        )
        .into_string();
        assert!(html.contains("&lt;b&gt;no name&lt;/b&gt; (×3)"), "{html}");
        assert!(html.contains("Wed 25 Nov 2026, 10:00 GMT"), "{html}");
        assert!(html.contains("(3 minutes ago)"), "{html}");
        assert!(html.contains("GET /admin/runs/7"), "{html}");
        // Two failures: 10 minutes' backoff from the failure at 10:00:01.
        assert!(
            html.contains("Backing off 10 minutes after 2 failures"),
            "{html}"
        );
        assert!(
            html.contains("Wed 25 Nov 2026, 10:10 GMT <span class=\"rel\">(in 7 minutes)</span>"),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; HTTP 500"));
        assert!(html.contains("A &amp; B &lt;CVS&gt;"));
    }
}
