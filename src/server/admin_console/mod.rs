//! The admin console under `/admin/console/`: server-rendered pages (maud, no build step) for the
//! people who settle duplicates and chase failing partners, on the same store and runner as the
//! bearer-token admin API. Signed in by session cookie; every form that changes anything is CSRF-checked.

pub mod entities;
pub mod partners;
pub mod preview;
pub mod review;
pub mod runs;
pub mod session;

use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{ApiError, AppState};

/// Where the console lives.
pub const BASE: &str = "/admin/console";

/// What the console keeps between requests.
#[derive(Default)]
pub struct Console {
    pub sessions: session::Sessions,
}

/// The console's routes, relative to `/admin` (the caller nests them there, outside the bearer
/// token check: a browser signs in with a session instead).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route(
            "/console/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/review", get(review::queue))
        .route("/console/review/{id}", post(review::decide))
        .route("/console/partners", get(partners::list))
        .route("/console/partners/{id}", get(partners::detail))
        .route("/console/partners/{id}/progress", get(partners::progress))
        .route("/console/partners/{id}/resync", post(partners::resync))
        .route("/console/partners/{id}/keep", post(partners::keep))
        .route("/console/preview", get(preview::form).post(preview::run))
        .route("/console/runs/{id}", get(runs::detail))
        .route("/console/entities/{id}", get(entities::detail))
        .route(
            "/console/entities/{id}/split",
            get(entities::split_confirm).post(entities::split),
        )
        .route(
            "/console/entities/{id}/merge",
            get(entities::merge_confirm).post(entities::merge),
        )
        .layer(axum::Extension(Arc::new(Console::default())))
}

async fn home(_signed: session::SignedIn) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{BASE}/review"))],
    )
        .into_response()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:75rem;padding:0 1rem 2rem;color:#1b1b1b;line-height:1.45}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:center;border-bottom:2px solid #1b1b1b;padding:.6rem 0;margin-bottom:1rem}\
header nav a{margin-right:1rem}header form{margin-left:auto}\
a{color:#0b4dab}a:focus,button:focus,input:focus,select:focus{outline:3px solid #f0b400;outline-offset:2px}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ccc;vertical-align:top;overflow-wrap:break-word}th{white-space:nowrap}\
input,select{font:inherit;padding:.3rem}input[type=url]{width:40rem;max-width:100%;box-sizing:border-box}button{font:inherit;padding:.45rem 1rem;border:2px solid #1b1b1b;background:#fff;cursor:pointer;border-radius:.25rem}\
button.primary{background:#0b4dab;color:#fff;border-color:#0b4dab}\
.error,.failed,.held,.interrupted{color:#a4000f;font-weight:600}.ok{color:#0a6b2d}\
.agree{background:#e8f5ec}.differ{background:#fdecee}.mark{white-space:nowrap;font-weight:600}\
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1rem}@media(max-width:40rem){.pair{grid-template-columns:1fr}}\
.scroll{overflow-x:auto}.hint{color:#555;font-size:.9em}kbd{border:1px solid #888;border-radius:.2rem;padding:0 .25rem}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:1rem 0}code{background:#f3f3f3;padding:0 .2rem}\
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}";

/// A console page: the shared head, navigation (with sign-out when signed in) and `body`.
pub fn page(title: &str, csrf: Option<&str>, body: Markup) -> Page {
    page_with_head(title, csrf, html! {}, body)
}

/// As [`page`], with extra elements in `<head>` (a refresh while a sync runs).
pub fn page_with_head(title: &str, csrf: Option<&str>, head: Markup, body: Markup) -> Page {
    Page(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — tributary admin" }
                style { (PreEscaped(STYLE)) }
                (head)
            }
            body {
                header {
                    strong { "tributary admin" }
                    @if let Some(csrf) = csrf {
                        nav aria-label="Console" {
                            a href={ (BASE) "/review" } { "Review queue" }
                            a href={ (BASE) "/partners" } { "Partners" }
                            a href={ (BASE) "/preview" } { "Preview a source" }
                        }
                        form method="post" action={ (BASE) "/sign-out" } {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" #sign-out { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    })
}

/// A rendered console page. Never cached: it shows one admin's session and live state.
pub struct Page(pub Markup);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.0.into_string(),
        )
            .into_response()
    }
}

/// A store or request failure as a page for people (the log has the details).
pub fn failure(e: ApiError) -> Response {
    let status = e.status;
    let body = page(
        "Error",
        None,
        html! { h1 { "Something went wrong" } p role="alert" { (e.message) } },
    );
    (status, body).into_response()
}

/// A redirect after a form (303, so a reload does not send it again).
pub fn see_other(to: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
