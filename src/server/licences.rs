//! Licences and attributions: who the published data comes from and under what terms, built from
//! the partners' configured `licence`, and the `/v1/licences` list the change feeds link to when
//! their partners' licences differ.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{cached, AppState};
use crate::config::Config;
use crate::licence::Attributions;
use crate::model::RecordKind;

/// Every configured partner's attribution.
pub fn attributions(config: &Config) -> Attributions {
    config.attributions()
}

/// The partners whose feeds can contribute records of `kind`: the ones behind that change feed.
pub fn attributions_for(config: &Config, kind: RecordKind) -> Attributions {
    attributions(config).filtered(|a| {
        config
            .partner(&a.partner)
            .is_some_and(|p| p.feeds.iter().any(|f| f.kind == kind))
    })
}

/// The absolute URL of the attribution list.
pub fn list_url(config: &Config) -> String {
    let mut url = config.server.base_url.clone();
    url.set_path("/v1/licences");
    url.set_query(None);
    url.to_string()
}

fn kind_entry(config: &Config, kind: RecordKind) -> serde_json::Value {
    let behind = attributions_for(config, kind);
    serde_json::json!({
        "partners": behind.all().iter().map(|a| a.partner.as_str()).collect::<Vec<_>>(),
        "licence": behind.common(),
    })
}

/// `GET /v1/licences`: each partner with its licence and attribution, and per kind of record the
/// partners behind it and their common licence (`null` when they differ or one states none).
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let config = state.config();
    let all = attributions(&config);
    let partners: Vec<serde_json::Value> = all
        .all()
        .iter()
        .map(|a| {
            serde_json::json!({
                "partner": a.partner,
                "name": a.name,
                "website": a.website,
                "licence": a.licence,
                "attribution": a.line(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "partners": partners,
        "organisations": kind_entry(&config, RecordKind::Organisations),
        "events": kind_entry(&config, RecordKind::Events),
    });
    cached(&headers, "application/json", body.to_string(), None)
}
