//! `GET /metrics`: refreshes the store-derived gauges (entity counts, per-partner sync health, the
//! store's own health) and answers in the exposition format the scraper's `Accept` asks for.
//! A store that cannot answer still gets a scrape, reporting `tributary_store_up 0`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

use super::{blocking, ApiError, AppState};
use crate::metrics::{Format, PartnerHealth, SubscriberHealth};
use crate::store::{entities, runs, webhooks};

struct StoreFacts {
    organisations: usize,
    events: usize,
    partners: Vec<PartnerHealth>,
    subscribers: Vec<SubscriberHealth>,
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let st = state.clone();
    match blocking(move || read_store(&st)).await {
        Ok(facts) => {
            state
                .metrics
                .set_entities(facts.organisations, facts.events);
            state.metrics.set_partners(&facts.partners);
            state.metrics.set_subscribers(&facts.subscribers);
            state
                .metrics
                .set_store_up(crate::store::damage_seen().is_none());
        }
        Err(e) => {
            // `ApiError`'s conversion from a store error already counted it and logged it.
            tracing::warn!(error = %e.message, "metrics scrape without the store's figures");
            state.metrics.set_store_up(false);
        }
    }
    state.metrics.set_memory(state.cache.bytes());
    (
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.render_as(format),
    )
        .into_response()
}

fn read_store(state: &AppState) -> Result<StoreFacts, ApiError> {
    let config = state.config();
    let conn = state.store.reader()?;
    let (organisations, events) = entities::counts(&conn)?;
    let mut partners = Vec::with_capacity(config.partners.len());
    for p in &config.partners {
        let id = p.id.as_str();
        let (_, ok) = runs::latest(&conn, id)?;
        let (_, streak) = runs::failures(&conn, id)?;
        let last_success = ok
            .and_then(|r| r.finished_at)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp());
        partners.push(PartnerHealth {
            partner: id.to_string(),
            last_success,
            consecutive_failures: streak,
        });
    }
    let head = webhooks::head(&conn)?;
    let subscribers = webhooks::list(&conn)?
        .into_iter()
        .map(|s| SubscriberHealth {
            behind: (head - s.acknowledged).max(0),
            dead_letter: s.dead_letter_at.is_some(),
            subscriber: s.id,
        })
        .collect();
    Ok(StoreFacts {
        organisations,
        events,
        partners,
        subscribers,
    })
}
