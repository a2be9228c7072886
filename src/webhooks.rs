//! Webhook delivery: every change that reaches the change feed is POSTed, signed, to each
//! subscriber whose kinds and partners it matches, one change at a time in change order, each
//! acknowledged in the store before the next, so delivery is at least once and resumes after an
//! outage or a restart from the last acknowledged change. Failures back off exponentially; after
//! `max_attempts` failures in a row the subscriber is dead-lettered until an admin retries it.

pub mod sign;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, SecretSource, StartAt};
use crate::licence::Attributions;
use crate::metrics::Metrics;
use crate::model::RecordKind;
use crate::publish;
use crate::store::entities::FeedItem;
use crate::store::webhooks::{self, NewSubscriber, Subscriber};
use crate::store::{Store, StoreError};

/// Changes read from the log at a time for one subscriber.
const BATCH: usize = 100;

/// The JSON body of one delivery: the change as the RPDE feed publishes it, partners credited.
pub fn payload(
    subscriber: &str,
    kind: RecordKind,
    item: &FeedItem,
    credits: &Attributions,
) -> String {
    let credited = FeedItem {
        body: item
            .body
            .as_deref()
            .map(|b| publish::json::with_attributions(b, credits)),
        ..item.clone()
    };
    format!(
        "{{\"subscriber\":{},\"change_number\":{},\"kind\":\"{}\",\"item\":{}}}",
        serde_json::Value::String(subscriber.to_string()),
        item.change_number,
        kind.as_str(),
        publish::rpde::item(kind, &credited)
    )
}

/// Delay before the next attempt after `failures` failures in a row: doubling from
/// `retry_initial`, capped at `retry_max`.
pub fn backoff(failures: u32, initial: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    initial.saturating_mul(factor).min(max)
}

/// Reads a configured subscriber's secret from where the config says.
fn read_secret(source: &SecretSource) -> Result<String, String> {
    let text = match source {
        SecretSource::Env(name) => std::env::var(name)
            .map_err(|_| format!("the environment variable {name} is not set"))?,
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("secret_file {}: {e}", path.display()))?,
    };
    let t = text.trim().to_string();
    if t.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(t)
}

async fn on_store<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// Brings the configured subscribers into the store.
async fn register_configured(store: &Arc<Store>, config: &Config) -> Result<(), String> {
    let list: Vec<NewSubscriber> = config
        .webhooks
        .subscribers
        .iter()
        .map(|s| NewSubscriber {
            id: s.id.clone(),
            url: s.url.to_string(),
            kinds: s.kinds.clone(),
            partners: s.partners.clone(),
            from_now: s.start == StartAt::Now,
            secret: None,
        })
        .collect();
    let now = crate::store::timestamp(chrono::Utc::now());
    on_store(store, move |st| {
        webhooks::sync_configured(&st.writer(), &list, &now)
    })
    .await
}

/// Runs delivery until `stop` turns true: one task per subscriber, the set kept in step with the
/// store (configured subscribers on each reload, admins' as they register or remove them).
pub async fn run(
    store: Arc<Store>,
    config: Arc<arc_swap::ArcSwap<Config>>,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    let mut registered: Option<Arc<Config>> = None;
    let mut tasks: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let current = config.load_full();
        if !registered
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &current))
        {
            match register_configured(&store, &current).await {
                Ok(()) => registered = Some(current.clone()),
                Err(e) => {
                    tracing::error!(error = %e, "cannot register the configured webhook subscribers")
                }
            }
        }
        match on_store(&store, |st| webhooks::list(&*st.reader()?)).await {
            Ok(list) => {
                let ids: Vec<String> = list.iter().map(|s| s.id.clone()).collect();
                tasks.retain(|id, task| {
                    let keep = ids.contains(id) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for s in list {
                    tasks.entry(s.id.clone()).or_insert_with(|| {
                        tokio::spawn(deliver_loop(
                            s.id,
                            store.clone(),
                            config.clone(),
                            metrics.clone(),
                        ))
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list webhook subscribers"),
        }
        let poll = current
            .webhooks
            .poll_interval
            .max(Duration::from_millis(10));
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            break;
        }
    }
    for (_, t) in tasks {
        t.abort();
    }
}

/// What one attempt at the subscriber's next change came to.
enum Step {
    /// Nothing to deliver (or dead-lettered): wait for the next poll.
    Idle,
    /// Delivered (or passed over by the filter) up to here: go on.
    Progressed,
    /// Failed: wait this long before trying the same change again.
    Failed(Duration),
    /// The subscriber is gone.
    Gone,
}

async fn deliver_loop(
    id: String,
    store: Arc<Store>,
    config: Arc<arc_swap::ArcSwap<Config>>,
    metrics: Arc<Metrics>,
) {
    loop {
        let cfg = config.load_full();
        let step = match deliver_some(&id, &store, &cfg, &metrics).await {
            Ok(step) => step,
            Err(e) => {
                tracing::warn!(subscriber = %id, error = %e, "webhook delivery could not read the store");
                Step::Idle
            }
        };
        match step {
            Step::Gone => return,
            Step::Progressed => {}
            Step::Idle => tokio::time::sleep(cfg.webhooks.poll_interval).await,
            Step::Failed(wait) => tokio::time::sleep(wait).await,
        }
    }
}

/// The secret a subscriber's deliveries are signed with.
fn secret_of(sub: &Subscriber, config: &Config) -> Result<String, String> {
    if sub.source == "api" {
        return sub
            .secret
            .clone()
            .ok_or_else(|| "no secret stored".to_string());
    }
    match config.webhooks.subscribers.iter().find(|s| s.id == sub.id) {
        Some(s) => read_secret(&s.secret),
        None => Err("no longer configured".into()),
    }
}

/// Delivers the subscriber's pending changes in order until one fails or none is left.
async fn deliver_some(
    id: &str,
    store: &Arc<Store>,
    config: &Config,
    metrics: &Metrics,
) -> Result<Step, String> {
    let key = id.to_string();
    let Some(sub) = on_store(store, move |st| webhooks::get(&*st.reader()?, &key)).await? else {
        return Ok(Step::Gone);
    };
    if sub.dead_letter_at.is_some() {
        return Ok(Step::Idle);
    }
    let (kinds, after) = (sub.kinds(), sub.acknowledged);
    let items = on_store(store, move |st| {
        webhooks::pending(&*st.reader()?, &kinds, after, BATCH)
    })
    .await?;
    if items.is_empty() {
        return Ok(Step::Idle);
    }
    let settings = &config.webhooks;
    let timeout = config
        .webhooks
        .subscribers
        .iter()
        .find(|s| s.id == sub.id)
        .map_or(Duration::from_secs(10), |s| s.timeout);
    let client =
        target::client(settings.allow_private_targets, timeout).map_err(|e| e.to_string())?;
    for (kind, item) in items {
        if !wanted(store, &sub, &item).await? {
            acknowledge(store, &sub.id, item.change_number, false).await?;
            continue;
        }
        match attempt(&client, &sub, config, kind, &item).await {
            Ok(()) => {
                metrics.record_delivery(&sub.id, true);
                acknowledge(store, &sub.id, item.change_number, true).await?;
            }
            Err(error) => {
                metrics.record_delivery(&sub.id, false);
                let failures = u32::try_from(sub.failures)
                    .unwrap_or(u32::MAX)
                    .saturating_add(1);
                let dead = failures >= settings.max_attempts;
                tracing::warn!(subscriber = %sub.id, change = item.change_number, failures, dead, error = %error, "webhook delivery failed");
                let (sid, now) = (sub.id.clone(), crate::store::timestamp(chrono::Utc::now()));
                on_store(store, move |st| {
                    webhooks::failed(&st.writer(), &sid, &error, dead, &now)
                })
                .await?;
                return Ok(Step::Failed(backoff(
                    failures,
                    settings.retry_initial,
                    settings.retry_max,
                )));
            }
        }
    }
    Ok(Step::Progressed)
}

/// Whether the change passes the subscriber's partner filter (tombstones always do: the entity's
/// partners are gone with it, and a receiver ignores an id it never had).
async fn wanted(store: &Arc<Store>, sub: &Subscriber, item: &FeedItem) -> Result<bool, String> {
    if sub.partners.is_empty() || item.body.is_none() {
        return Ok(true);
    }
    let (entity, partners) = (item.id.clone(), sub.partners.clone());
    on_store(store, move |st| {
        webhooks::listed_by(&*st.reader()?, &entity, &partners)
    })
    .await
}

async fn acknowledge(
    store: &Arc<Store>,
    id: &str,
    change_number: i64,
    delivered: bool,
) -> Result<(), String> {
    let (id, now) = (id.to_string(), crate::store::timestamp(chrono::Utc::now()));
    on_store(store, move |st| {
        webhooks::acknowledge(&st.writer(), &id, change_number, delivered, &now)
    })
    .await
}

/// One signed POST of one change; any answer but 2xx is a failure.
async fn attempt(
    client: &reqwest::Client,
    sub: &Subscriber,
    config: &Config,
    kind: RecordKind,
    item: &FeedItem,
) -> Result<(), String> {
    let url = url::Url::parse(&sub.url).map_err(|e| format!("{:?} is not a URL: {e}", sub.url))?;
    target::check_url(&url, config.webhooks.allow_private_targets)?;
    let secret = secret_of(sub, config)?;
    let body = payload(&sub.id, kind, item, &config.attributions());
    let now = chrono::Utc::now().timestamp();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            sign::SIGNATURE_HEADER,
            sign::signature(secret.as_bytes(), now, body.as_bytes()),
        )
        .header(
            "tributary-delivery",
            format!("{}-{}", sub.id, item.change_number),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| crate::redact::secrets(&describe(&e)))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the subscriber answered {status}"))
    }
}

/// A request error with its causes, which name what was refused.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=6).map(|f| backoff(f, i, m).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(u32::MAX, i, m), m);
    }

    #[test]
    fn the_payload_carries_the_feed_item_and_its_change_number() {
        let item = FeedItem {
            id: "org_a".into(),
            change_number: 7,
            body: Some(r#"{"id":"org_a","name":"A"}"#.into()),
            updated_at: "2027-01-01T00:00:00Z".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&payload(
            "sp",
            RecordKind::Organisations,
            &item,
            &Attributions::new(Vec::new()),
        ))
        .unwrap();
        assert_eq!(v["change_number"], 7);
        assert_eq!(v["subscriber"], "sp");
        assert_eq!(v["item"]["state"], "updated");
        assert_eq!(v["item"]["modified"], 7);
        assert_eq!(v["item"]["data"]["name"], "A");
    }
}
