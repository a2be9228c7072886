//! Preview a new source: an admin pastes a feed URL and picks its kind and format; the console
//! reads it once through the sync's own fetcher and adapters and shows what would land, what would
//! be rejected and why, and which published entities it would merge with. Nothing is kept.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

use super::session::{refusal, SignedIn};
use super::{enc, page, BASE};
use crate::config::{self, Format};
use crate::server::AppState;
use crate::store::runs::StoredRejection;
use crate::sync::preview::{self, Preview};

/// Records listed on the page; the counts cover them all.
const SHOWN: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    format: String,
}

/// `GET /admin/console/preview`: the form.
pub async fn form(signed: SignedIn) -> Response {
    let filled = PreviewForm {
        kind: "events".into(),
        format: "ical".into(),
        ..PreviewForm::default()
    };
    page(
        "Preview a source",
        Some(&signed.session.csrf),
        the_form(&signed.session.csrf, &filled, &[]),
    )
    .into_response()
}

/// `POST /admin/console/preview`: reads the source once and shows what it would bring.
pub async fn run(
    State(state): State<AppState>,
    signed: SignedIn,
    Form(form): Form<PreviewForm>,
) -> Response {
    let csrf = signed.session.csrf.clone();
    if let Err(r) = signed.check_csrf(&form.csrf) {
        return r.into_response();
    }
    let feed = match config::preview_feed(&form.kind, &form.format, &form.url) {
        Ok(f) => f,
        Err(problems) => {
            let problems: Vec<(String, String)> =
                problems.into_iter().map(|p| (p.key, p.message)).collect();
            let body = the_form(&csrf, &form, &problems);
            return (
                StatusCode::BAD_REQUEST,
                page("Preview a source", Some(&csrf), body),
            )
                .into_response();
        }
    };
    let Some(runner) = state.runner.clone() else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "This server runs no scheduler, so it cannot read sources.",
        );
    };
    let schedule = state.config().scheduler.default_schedule.clone();
    tracing::info!(url = %crate::redact::secrets(&form.url), format = %form.format, "admin console preview");
    let outcome = preview::preview(runner.context(), feed, schedule).await;
    let body = html! {
        (the_form(&csrf, &form, &[]))
        @match &outcome {
            Ok(p) => (report(p)),
            Err(e) => {
                section aria-labelledby="result-title" #result {
                    h2 #result-title { "The source could not be read" }
                    p.error role="alert" #preview-error { (e) }
                    p { "Nothing was kept. A partner with this feed would fail its sync with this reason." }
                }
            }
        }
    };
    page("Preview a source", Some(&csrf), body).into_response()
}

fn the_form(csrf: &str, filled: &PreviewForm, problems: &[(String, String)]) -> Markup {
    let problem = |key: &str| {
        problems
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, m)| m.clone())
    };
    let field_error = |key: &str| {
        html! {
            @if let Some(m) = problem(key) {
                span.error id={ "error-" (key) } { (key) " " (m) }
            }
        }
    };
    html! {
        h1 { "Preview a source" }
        p { "Read a feed once, as a partner's sync would (the same fetcher, limits and redirect rules), and see what it would bring. Nothing is saved and the published directory does not change." }
        @if !problems.is_empty() {
            div role="alert" #preview-problems {
                p.error { "The preview was not run:" }
                ul { @for (k, m) in problems { li { code { (k) } " " (m) } } }
            }
        }
        form method="post" action={ (BASE) "/preview" } #preview-form {
            input type="hidden" name="csrf" value=(csrf);
            p {
                label for="url" { "Feed URL" } br;
                input #url type="url" name="url" required value=(filled.url)
                    aria-describedby=[problem("url").map(|_| "error-url")];
                br; (field_error("url"))
            }
            p {
                label for="kind" { "It lists" } br;
                select #kind name="kind" {
                    @for (value, label) in [("events", "events"), ("organisations", "organisations")] {
                        option value=(value) selected[filled.kind == value] { (label) }
                    }
                }
                br; (field_error("kind"))
            }
            p {
                label for="format" { "Format" } br;
                select #format name="format" {
                    @for (name, _) in Format::ALL {
                        option value=(name) selected[filled.format == *name] { (name) }
                    }
                }
                br; (field_error("format"))
            }
            button.primary type="submit" #preview-run { "Preview" }
        }
    }
}

fn report(p: &Preview) -> Markup {
    let merging: Vec<_> = p.landed.iter().filter(|l| !l.joins.is_empty()).collect();
    html! {
        section aria-labelledby="result-title" #result {
            h2 #result-title { "What this source would bring" }
            p #preview-summary role="status" {
                (p.pages) " page" @if p.pages != 1 { "s" } " read (" (p.bytes) " bytes): "
                strong { (p.landed.len()) " would land" } ", "
                strong { (p.merging()) " would merge with published records" } ", "
                strong { (p.rejections.len()) " would be rejected" }
                @if !p.warnings.is_empty() { ", " (p.warnings.len()) " would land with a warning" }
                ". Nothing was saved."
            }
            @if !merging.is_empty() {
                h3 { "Would merge with" }
                div.scroll { table #preview-merges {
                    thead { tr { th scope="col" { "Record" } th scope="col" { "Name" } th scope="col" { "Published as" } } }
                    tbody {
                        @for l in merging.iter().take(SHOWN) {
                            tr {
                                td { code { (l.record_id) } }
                                td { (l.name) }
                                td { @for j in &l.joins {
                                    @match &j.entity_id {
                                        Some(e) => { a href={ (BASE) "/entities/" (enc(e)) } { (e) } }
                                        None => { "not yet resolved" }
                                    }
                                    " (" code { (j.partner) } " record " code { (j.record_id) } ")" br;
                                } }
                            }
                        }
                    }
                } }
            }
            h3 { "Would land" }
            @if p.landed.is_empty() { p { "No records." } } @else {
                @if p.landed.len() > SHOWN { p.hint { "The first " (SHOWN) " of " (p.landed.len()) "." } }
                div.scroll { table #preview-landed {
                    thead { tr { th scope="col" { "Record" } th scope="col" { "Name" } th scope="col" { "Merges" } } }
                    tbody {
                        @for l in p.landed.iter().take(SHOWN) {
                            tr {
                                td { code { (l.record_id) } }
                                td { (l.name) }
                                td { @if l.joins.is_empty() { "new" } @else { "with " (l.joins.len()) " published record" @if l.joins.len() != 1 { "s" } } }
                            }
                        }
                    }
                } }
            }
            (caveats("Would be rejected", "preview-rejections", &p.rejections))
            (caveats("Would land with a warning", "preview-warnings", &p.warnings))
        }
    }
}

fn caveats(title: &str, id: &str, list: &[StoredRejection]) -> Markup {
    html! {
        @if !list.is_empty() {
            h3 { (title) }
            @if list.len() > SHOWN { p.hint { "The first " (SHOWN) " of " (list.len()) "." } }
            div.scroll { table id=(id) {
                thead { tr { th scope="col" { "Record" } th scope="col" { "Why" } } }
                tbody {
                    @for r in list.iter().take(SHOWN) {
                        tr { td { code { (r.record_id.as_deref().unwrap_or("-")) } } td { (r.reason) } }
                    }
                }
            } }
        }
    }
}
