//! `[webhooks]` and `[[webhooks.subscribers]]`: who is told of each change, how hard delivery tries,
//! and whether private network targets are allowed at all. Checked like every other section: each
//! problem with its key path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{bounded, push, resolve_file, PartnerId, Problem};
use crate::model::RecordKind;

/// Where a subscriber's signing secret is read from, at start and on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// Where a new subscriber starts in the change feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Only changes made after it was first registered.
    Now,
    /// Every change the feed holds, from change number 0 (a full mirror).
    Beginning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub id: String,
    pub url: url::Url,
    pub secret: SecretSource,
    pub kinds: Vec<RecordKind>,
    /// Only entities at least one of these partners lists (tombstones always go).
    pub partners: Vec<String>,
    pub start: StartAt,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhooksConfig {
    /// Loopback, private, link-local and other non-public targets are refused unless this is set.
    pub allow_private_targets: bool,
    /// Failed deliveries of one change in a row before the subscriber is dead-lettered.
    pub max_attempts: u32,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// How often the change log is checked for changes to deliver.
    pub poll_interval: Duration,
    pub subscribers: Vec<Subscriber>,
}

pub const DEFAULT_MAX_ATTEMPTS: i64 = 10;
pub const DEFAULT_RETRY_INITIAL_MS: i64 = 1_000;
pub const DEFAULT_RETRY_MAX_SECS: i64 = 300;
pub const DEFAULT_POLL_INTERVAL_MS: i64 = 1_000;
pub const DEFAULT_TIMEOUT_SECS: i64 = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhooks {
    allow_private_targets: Option<bool>,
    max_attempts: Option<i64>,
    retry_initial_ms: Option<i64>,
    retry_max_secs: Option<i64>,
    poll_interval_ms: Option<i64>,
    #[serde(default)]
    subscribers: Vec<RawSubscriber>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriber {
    id: Option<String>,
    url: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<String>,
    kinds: Option<Vec<String>>,
    partners: Option<Vec<String>>,
    from: Option<String>,
    timeout_secs: Option<i64>,
}

pub(super) fn validate(
    raw: RawWebhooks,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> WebhooksConfig {
    let max_attempts = bounded(
        problems,
        "webhooks.max_attempts",
        raw.max_attempts,
        DEFAULT_MAX_ATTEMPTS,
        1..=1_000,
        "attempts",
    );
    let retry_initial = bounded(
        problems,
        "webhooks.retry_initial_ms",
        raw.retry_initial_ms,
        DEFAULT_RETRY_INITIAL_MS,
        10..=3_600_000,
        "milliseconds",
    );
    let retry_max = bounded(
        problems,
        "webhooks.retry_max_secs",
        raw.retry_max_secs,
        DEFAULT_RETRY_MAX_SECS,
        1..=86_400,
        "seconds",
    );
    let poll = bounded(
        problems,
        "webhooks.poll_interval_ms",
        raw.poll_interval_ms,
        DEFAULT_POLL_INTERVAL_MS,
        10..=3_600_000,
        "milliseconds",
    );
    let mut seen = std::collections::HashSet::new();
    let mut subscribers = Vec::new();
    for (i, raw) in raw.subscribers.into_iter().enumerate() {
        let Some(s) = subscriber(raw, &format!("webhooks.subscribers[{i}]"), base, problems) else {
            continue;
        };
        if seen.insert(s.id.clone()) {
            subscribers.push(s);
        } else {
            push(
                problems,
                &format!("webhooks.subscribers[{i}].id"),
                format!("another subscriber has the id {:?}", s.id),
            );
        }
    }
    WebhooksConfig {
        allow_private_targets: raw.allow_private_targets.unwrap_or(false),
        max_attempts: max_attempts as u32,
        retry_initial: Duration::from_millis(retry_initial as u64),
        retry_max: Duration::from_secs(retry_max as u64),
        poll_interval: Duration::from_millis(poll as u64),
        subscribers,
    }
}

fn subscriber(
    raw: RawSubscriber,
    at: &str,
    base: &Path,
    problems: &mut Vec<Problem>,
) -> Option<Subscriber> {
    let before = problems.len();
    let id = match raw.id.as_deref().map(PartnerId::parse) {
        Some(Ok(id)) => Some(id.as_str().to_string()),
        Some(Err(e)) => {
            push(problems, &format!("{at}.id"), e);
            None
        }
        None => {
            push(problems, &format!("{at}.id"), "is required".into());
            None
        }
    };
    let url = match raw.url.as_deref() {
        None => {
            push(problems, &format!("{at}.url"), "is required".into());
            None
        }
        Some(s) => match target_url(s) {
            Ok(u) => Some(u),
            Err(e) => {
                push(problems, &format!("{at}.url"), e);
                None
            }
        },
    };
    let secret = match (raw.secret_env, raw.secret_file) {
        (Some(_), Some(_)) => {
            push(
                problems,
                at,
                "set either secret_env or secret_file, not both".into(),
            );
            None
        }
        (Some(e), None) if !e.trim().is_empty() => Some(SecretSource::Env(e)),
        (None, Some(f)) => Some(SecretSource::File(resolve_file(base, &f))),
        _ => {
            push(
                problems,
                at,
                "needs secret_env or secret_file: every delivery is signed".into(),
            );
            None
        }
    };
    let kinds = kinds(raw.kinds.as_deref(), &format!("{at}.kinds"), problems);
    let start = match raw.from.as_deref() {
        None | Some("now") => StartAt::Now,
        Some("beginning") => StartAt::Beginning,
        Some(other) => {
            push(
                problems,
                &format!("{at}.from"),
                format!("{other:?} must be \"now\" or \"beginning\""),
            );
            StartAt::Now
        }
    };
    let timeout = bounded(
        problems,
        &format!("{at}.timeout_secs"),
        raw.timeout_secs,
        DEFAULT_TIMEOUT_SECS,
        1..=300,
        "seconds",
    );
    if problems.len() > before {
        return None;
    }
    Some(Subscriber {
        id: id?,
        url: url?,
        secret: secret?,
        kinds,
        partners: raw.partners.unwrap_or_default(),
        start,
        timeout: Duration::from_secs(timeout as u64),
    })
}

/// A webhook target: an absolute http(s) URL without credentials in it.
pub fn target_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("{s:?} must be an http(s) URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry a user name or password; deliveries are signed instead".into());
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(u)
}

/// `kinds = ["organisations", "events"]`; both when left out.
pub fn kinds(raw: Option<&[String]>, key: &str, problems: &mut Vec<Problem>) -> Vec<RecordKind> {
    let Some(list) = raw else {
        return vec![RecordKind::Organisations, RecordKind::Events];
    };
    let mut out = Vec::new();
    for k in list {
        match RecordKind::parse(k) {
            Some(kind) if !out.contains(&kind) => out.push(kind),
            Some(_) => {}
            None => push(
                problems,
                key,
                format!("{k:?} must be \"organisations\" or \"events\""),
            ),
        }
    }
    if out.is_empty() && problems.iter().all(|p| p.key != key) {
        push(problems, key, "must name at least one kind".into());
    }
    out
}
