//! Licences and attributions: who the published data comes from and under what terms, built from
//! the partners' configured `licence`, and the `/v1/licences` list the change feeds link to when
//! their partners' licences differ.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{cached, AppState};
use crate::config::Config;
use crate::licence::Attributions;
use crate::model::RecordKind;

/// Every configured partner's attribution with its fingerprint (part of a page's cache key, so a
/// reloaded licence is never served from a page rendered under the old one).
pub struct Credits {
    pub all: Attributions,
    pub fingerprint: String,
}

/// [`Credits`] worked out once per config in force (SIGHUP swaps it) rather than on every
/// request: with fifty partners, building and hashing them cost a cached page as much as
/// sending it. The config is held here, so the identity it is compared by cannot be reused.
#[derive(Default)]
pub struct CreditsMemo {
    last: Mutex<Option<(Arc<Config>, Arc<Credits>)>>,
}

impl CreditsMemo {
    pub fn of(&self, config: &Arc<Config>) -> Arc<Credits> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, credits)) = last.as_ref() {
            if Arc::ptr_eq(c, config) {
                return credits.clone();
            }
        }
        let all = attributions(config);
        let credits = Arc::new(Credits {
            fingerprint: all.fingerprint(),
            all,
        });
        *last = Some((config.clone(), credits.clone()));
        credits
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(licence: &str) -> Arc<Config> {
        let text = format!(
            "[[partners]]\nid = \"a\"\nname = \"A\"\nlicence = \"{licence}\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"https://a.example/cal.ics\"\n"
        );
        let dir = Path::new("/nonexistent");
        Arc::new(crate::config::parse(&text, &dir.join("t.toml"), dir, &|_| None).unwrap())
    }

    #[test]
    fn credits_are_worked_out_once_per_config_and_again_for_a_new_one() {
        let memo = CreditsMemo::default();
        let first = config("CC-BY-4.0");
        let a = memo.of(&first);
        assert!(
            Arc::ptr_eq(&a, &memo.of(&first)),
            "the same config: the same credits"
        );
        // A reload with another licence gives new credits and another fingerprint.
        let b = memo.of(&config("OGL-UK-3.0"));
        assert_ne!(a.fingerprint, b.fingerprint);
        assert_eq!(
            b.fingerprint,
            attributions(&config("OGL-UK-3.0")).fingerprint()
        );
    }
}
