//! Fetches one feed's bytes, politely: conditional GET with the validators of the last fetch, a
//! per-host rate limit, retries with backoff on timeouts/5xx/429 (honouring Retry-After), and a
//! size cap on the decompressed body. Local files get the same cap and a size+mtime validator.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;

use super::feed_spec::{Feed, Source};

/// Cache validators remembered from the last successful fetch of a feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub enum FetchOutcome {
    /// The partner says nothing changed since `validators` (HTTP 304, or the same file).
    NotModified,
    Fetched {
        body: Vec<u8>,
        validators: Validators,
        /// Where the body came from after redirects.
        final_url: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {status} from {url}")]
    Status { status: String, url: String },
    #[error("{url}: no answer within {secs}s")]
    Timeout { url: String, secs: u64 },
    #[error("{url}: cannot connect: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url}: refused redirect: {reason}")]
    Redirects { url: String, reason: String },
    #[error("{url}: {}", too_large(*.limit, .key))]
    TooLarge {
        url: String,
        limit: u64,
        /// The setting that set the limit: `max_body_bytes`, or `max_harvest_bytes` when the
        /// feed's earlier pages used up the rest.
        key: &'static str,
    },
    #[error("{url}: reading the body failed: {reason}")]
    Body { url: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

fn too_large(limit: u64, key: &str) -> String {
    if key == "max_harvest_bytes" {
        format!("the feed's pages together exceed the {key} limit; {limit} bytes were left for this page")
    } else {
        format!("body exceeds the {limit}-byte limit ({key})")
    }
}

/// How many bytes a page may have, and which setting said so.
#[derive(Debug, Clone, Copy)]
pub struct PageLimit {
    pub bytes: u64,
    pub key: &'static str,
}

impl PageLimit {
    /// The feed's own per-page limit.
    pub fn of(feed: &Feed) -> PageLimit {
        PageLimit {
            bytes: feed.max_body_bytes,
            key: "max_body_bytes",
        }
    }

    /// The per-page limit, or what is left of the harvest's budget if that is less.
    pub fn within_harvest(feed: &Feed, used: u64) -> PageLimit {
        let left = feed.max_harvest_bytes.saturating_sub(used);
        if left < feed.max_body_bytes {
            PageLimit {
                bytes: left,
                key: "max_harvest_bytes",
            }
        } else {
            PageLimit::of(feed)
        }
    }
}

impl FetchError {
    /// Whether the partner answered "not found" / "gone".
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Status { status, .. } if status.starts_with("404") || status.starts_with("410"))
    }

    /// Whether trying again may help.
    fn retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => {
                status.starts_with('5') || status.starts_with("429")
            }
            FetchError::Timeout { .. } | FetchError::Connect { .. } | FetchError::Body { .. } => {
                true
            }
            _ => false,
        }
    }
}

pub const USER_AGENT: &str = concat!(
    "tributary/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/tributary-vcse/tributary)"
);

/// Longest wait a partner's Retry-After may impose on one retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;

/// The shared HTTP client and per-host rate limiters.
pub struct Fetcher {
    client: reqwest::Client,
    limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    /// First retry delay; doubled per attempt.
    backoff_base: Duration,
}

impl Fetcher {
    pub fn new() -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .gzip(true)
            .redirect(reqwest::redirect::Policy::custom(same_host_redirects))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Fetcher {
            client,
            limiters: Mutex::new(HashMap::new()),
            backoff_base: Duration::from_millis(500),
        })
    }

    /// The limiter for a host; the first feed naming a host sets its quota.
    fn limiter(&self, host: &str, per_minute: u32) -> Arc<DefaultDirectRateLimiter> {
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(host.to_string())
            .or_insert_with(|| {
                let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
                Arc::new(RateLimiter::direct(Quota::per_minute(n)))
            })
            .clone()
    }

    pub async fn fetch(
        &self,
        feed: &Feed,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        self.fetch_source(feed, &feed.source, validators, PageLimit::of(feed))
            .await
    }

    /// Fetches one page of `feed` from `source` (a later page of a paged feed) with the feed's
    /// limits, headers and rate limit.
    pub async fn fetch_source(
        &self,
        feed: &Feed,
        source: &Source,
        validators: &Validators,
        limit: PageLimit,
    ) -> Result<FetchOutcome, FetchError> {
        match source {
            Source::File(path) => read_file(path, limit, validators),
            Source::Http(url) => self.fetch_http(feed, url, validators, limit).await,
        }
    }

    async fn fetch_http(
        &self,
        feed: &Feed,
        url: &url::Url,
        validators: &Validators,
        limit: PageLimit,
    ) -> Result<FetchOutcome, FetchError> {
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let limiter = self.limiter(&host, feed.rate_limit_per_minute);
        let mut attempt = 0u32;
        loop {
            limiter.until_ready().await;
            let result = self.attempt(feed, url, validators, limit).await;
            let (err, retry_after) = match result {
                Ok(outcome) => return Ok(outcome),
                Err(e) => e,
            };
            if attempt >= feed.retries || !err.retryable() {
                return Err(err);
            }
            let delay = retry_after
                .map(|d| d.min(MAX_RETRY_AFTER))
                .unwrap_or_else(|| backoff(self.backoff_base, attempt));
            tracing::warn!(url = %crate::redact::secrets(url.as_str()), attempt = attempt + 1, error = %crate::redact::secrets(&err.to_string()), wait_ms = delay.as_millis() as u64, "fetch failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One request. On failure also returns the server's Retry-After, if it gave one.
    async fn attempt(
        &self,
        feed: &Feed,
        url: &url::Url,
        validators: &Validators,
        limit: PageLimit,
    ) -> Result<FetchOutcome, (FetchError, Option<Duration>)> {
        let mut headers = HeaderMap::new();
        for (k, v) in &feed.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                headers.insert(k, v);
            }
        }
        if let Some(etag) = validators.etag.as_deref() {
            if let Ok(v) = HeaderValue::from_str(etag) {
                headers.insert(reqwest::header::IF_NONE_MATCH, v);
            }
        }
        if let Some(lm) = validators.last_modified.as_deref() {
            if let Ok(v) = HeaderValue::from_str(lm) {
                headers.insert(reqwest::header::IF_MODIFIED_SINCE, v);
            }
        }
        tracing::debug!(url = %crate::redact::secrets(url.as_str()), "GET");
        let u = url.to_string();
        let secs = feed.timeout.as_secs();
        let send = self
            .client
            .get(url.clone())
            .headers(headers)
            .timeout(feed.timeout)
            .send();
        let mut resp = send.await.map_err(|e| (classify(&e, &u, secs), None))?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Err((
                FetchError::Status {
                    status: status.to_string(),
                    url: u,
                },
                retry_after,
            ));
        }
        let (key, limit) = (limit.key, limit.bytes);
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err((FetchError::TooLarge { url: u, limit, key }, None));
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(String::from)
        };
        let new_validators = Validators {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        };
        let final_url = resp.url().to_string();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    // Counted after decompression, so a gzip bomb stops at the cap.
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        return Err((FetchError::TooLarge { url: u, limit, key }, None));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err((classify(&e, &u, secs), None)),
            }
        }
        Ok(FetchOutcome::Fetched {
            body,
            validators: new_validators,
            final_url,
        })
    }
}

/// Whether a redirect from `first` to `next` stays on the partner's server: the same host and
/// port, or the upgrade from plain http on its default port to https on its default port. Another
/// port on the same host is another service (an admin console, a database), https or not.
fn stays_on_server(first: &url::Url, next: &url::Url) -> bool {
    if next.host_str() != first.host_str() {
        return false;
    }
    if next.scheme() == first.scheme() {
        return next.port_or_known_default() == first.port_or_known_default();
    }
    first.scheme() == "http"
        && next.scheme() == "https"
        && first.port().is_none()
        && next.port().is_none()
}

/// Redirects stay on the configured server (see [`stays_on_server`]) and stop after a few hops: a
/// partner's server must not be able to point the daemon at another service (SSRF) or loop it.
fn same_host_redirects(attempt: reqwest::redirect::Attempt) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first().cloned() else {
        return attempt.follow();
    };
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(format!("more than {MAX_REDIRECTS} redirects (a loop?)"));
    }
    let same_host = stays_on_server(&first, attempt.url());
    let next = attempt.url().clone();
    if !same_host || !matches!(next.scheme(), "http" | "https") {
        return attempt.error(format!(
            "redirect to {next} leaves the configured host {} (or its port)",
            first.host_str().unwrap_or("")
        ));
    }
    attempt.follow()
}

fn classify(e: &reqwest::Error, url: &str, secs: u64) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout {
            url: url.to_string(),
            secs,
        };
    }
    if e.is_redirect() {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = s.to_string();
            source = s.source();
        }
        return FetchError::Redirects {
            url: url.to_string(),
            reason,
        };
    }
    // The innermost cause says what actually happened (refused, DNS, TLS).
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    if e.is_connect() || e.is_request() {
        FetchError::Connect {
            url: url.to_string(),
            reason,
        }
    } else {
        FetchError::Body {
            url: url.to_string(),
            reason,
        }
    }
}

/// Exponential backoff with jitter: base × 2^attempt, ±25%, capped at 30 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(10));
    // Jitter from the clock's sub-second noise: enough to spread retries, no RNG crate needed.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.75 + (nanos % 1000) as f64 / 2000.0;
    exp.mul_f64(jitter).min(Duration::from_secs(30))
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let when: SystemTime = when.with_timezone(&chrono::Utc).into();
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

fn read_file(
    path: &Path,
    limit: PageLimit,
    validators: &Validators,
) -> Result<FetchOutcome, FetchError> {
    let (key, limit) = (limit.key, limit.bytes);
    let io = |e: std::io::Error| FetchError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > limit {
        return Err(FetchError::TooLarge {
            url: path.display().to_string(),
            limit,
            key,
        });
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let etag = format!("\"{}-{mtime}\"", meta.len());
    if validators.etag.as_deref() == Some(etag.as_str()) {
        return Ok(FetchOutcome::NotModified);
    }
    // Read through a limit: the file may grow between the size check and the read.
    let mut body = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path).map_err(io)?, limit + 1),
        &mut body,
    )
    .map_err(io)?;
    if body.len() as u64 > limit {
        return Err(FetchError::TooLarge {
            url: path.display().to_string(),
            limit,
            key,
        });
    }
    Ok(FetchOutcome::Fetched {
        body,
        validators: Validators {
            etag: Some(etag),
            last_modified: None,
        },
        final_url: format!("file://{}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        let later = chrono::DateTime::<chrono::Utc>::from(now) + chrono::Duration::seconds(90);
        let header = later.to_rfc2822();
        assert_eq!(
            parse_retry_after(&header, now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(500);
        let first = backoff(base, 0);
        assert!(first >= Duration::from_millis(375) && first <= Duration::from_millis(625));
        let third = backoff(base, 2);
        assert!(third >= Duration::from_millis(1500) && third <= Duration::from_millis(2500));
        assert!(backoff(base, 20) <= Duration::from_secs(30));
    }

    fn lim(bytes: u64) -> PageLimit {
        PageLimit {
            bytes,
            key: "max_body_bytes",
        }
    }

    #[test]
    fn redirects_keep_to_the_server_and_its_port() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(stays_on_server(&u("http://a.org/f"), &u("https://a.org/g")));
        assert!(stays_on_server(
            &u("http://a.org:81/f"),
            &u("http://a.org:81/g")
        ));
        assert!(!stays_on_server(
            &u("http://a.org/f"),
            &u("https://a.org:8443/g")
        ));
        assert!(!stays_on_server(
            &u("http://a.org:8080/f"),
            &u("https://a.org:8443/")
        ));
        assert!(!stays_on_server(
            &u("https://a.org/f"),
            &u("https://a.org:9000/")
        ));
        assert!(!stays_on_server(&u("https://a.org/f"), &u("http://a.org/")));
        assert!(!stays_on_server(&u("http://a.org/f"), &u("http://b.org/")));
    }

    #[test]
    fn file_validator_short_circuits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.csv");
        std::fs::write(&path, "id,name\n1,Hull CVS\n").unwrap();
        let FetchOutcome::Fetched {
            body, validators, ..
        } = read_file(&path, lim(1024), &Validators::default()).unwrap()
        else {
            panic!("expected a body");
        };
        assert_eq!(body, b"id,name\n1,Hull CVS\n");
        assert!(matches!(
            read_file(&path, lim(1024), &validators).unwrap(),
            FetchOutcome::NotModified
        ));
        assert!(matches!(
            read_file(&path, lim(4), &Validators::default()),
            Err(FetchError::TooLarge { .. })
        ));
    }
}
