//! TOML → validated [`Config`]. Every default lives here; after `load` succeeds the rest of the daemon
//! holds types that cannot be wrong (parsed schedules, ids, URLs, absolute paths). Validation collects
//! every problem with its key path so `check-config` can show them all at once.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub use crate::ingest::feed_spec::{Feed, Format, Source};
use crate::model::RecordKind;

mod schema;
mod webhooks;

pub use webhooks::{
    kinds as webhook_kinds, target_url as webhook_target_url, SecretSource, StartAt, Subscriber,
    WebhooksConfig,
};

pub const DEFAULT_SCHEDULE: &str = "0 */30 * * * *";
pub const DEFAULT_MAX_BODY_BYTES: u64 = 50 * 1024 * 1024;
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60;
pub const DEFAULT_RETRIES: u32 = 3;
/// A paged feed longer than this is refused rather than followed forever.
pub const DEFAULT_MAX_PAGES: u32 = 10_000;
/// Bytes one sync may read from a feed across all its pages (`max_harvest_bytes`).
pub const DEFAULT_MAX_HARVEST_BYTES: u64 = 256 * 1024 * 1024;
/// Days of a feed's live counts the deletion guard remembers (`delete_guard_days`).
pub const DEFAULT_DELETE_GUARD_DAYS: u32 = 30;
/// Seconds a client may take to send a request head (`server.header_read_timeout_secs`).
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Connections the server holds at once (`server.max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Seconds SIGTERM waits for running syncs before rolling them back (`server.stop_grace_secs`).
pub const DEFAULT_STOP_GRACE_SECS: u64 = 20;
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Rendered responses kept for reuse, in MiB: room for a national year's calendar (26 MB at a
/// million organisations and 200,000 events) and its gzip form, while a daemon stays under
/// 100 MB.
pub const DEFAULT_RESPONSE_CACHE_MB: usize = 32;
pub const DEFAULT_TOKEN_ENV: &str = "TRIBUTARY_ADMIN_TOKEN";
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.25;
pub const DEFAULT_MERGE_THRESHOLD: f64 = 8.0;
pub const DEFAULT_REVIEW_THRESHOLD: f64 = 4.0;
pub const DEFAULT_EVENT_TOLERANCE_MINUTES: i64 = 10;
/// Single events one calendar response carries (`publish.calendar_max_events`): well over the
/// 105,024 a year of a 200,000-event region holds, so such a year publishes whole, while one
/// rendering stays near 0.4 KB an event (about 100 MB at the bound) however big the store grows.
pub const DEFAULT_CALENDAR_MAX_EVENTS: usize = 250_000;
/// How long a client or a cache in front may reuse a public answer (`publish.max_age_secs`).
pub const DEFAULT_MAX_AGE_SECS: u32 = 60;

/// One problem found in a config file, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    /// The key's line in the file, when the key is there (not for a missing required key).
    pub line: Option<usize>,
}

impl Problem {
    fn new(key: &str, message: impl Into<String>) -> Problem {
        Problem {
            key: key.to_string(),
            message: message.into(),
            line: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// A partner id: `[a-z0-9-]+`, stable, used in URLs and the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartnerId(String);

impl PartnerId {
    pub fn parse(s: &str) -> Result<PartnerId, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters".into());
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "{s:?} must use only lowercase letters, digits and '-'"
            ));
        }
        Ok(PartnerId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id a source being previewed is read under: never a configured one (those are
    /// `[a-z0-9-]`), so a preview's trial records cannot meet a partner's own.
    pub fn preview() -> PartnerId {
        PartnerId("~preview".to_string())
    }
}

impl fmt::Display for PartnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A cron schedule with a seconds field, parsed once.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    pub cron: cron::Schedule,
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let cron = cron::Schedule::from_str(s).map_err(|e| {
            format!(
                "{s:?} is not a cron schedule with a seconds field (e.g. \"0 */30 * * * *\"): {e}"
            )
        })?;
        Ok(Schedule {
            expr: s.to_string(),
            cron,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Partner {
    pub id: PartnerId,
    pub name: String,
    pub schedule: Schedule,
    pub priority: i64,
    /// The terms the partner's data is published under (`licence`), `None` when not stated.
    pub licence: Option<crate::licence::Licence>,
    pub website: Option<String>,
    /// Share of a feed's live records one sync may delete before it is held for an admin.
    pub max_delete_share: f64,
    /// Days the deletion guard remembers a feed's largest live count (its high-water mark).
    pub delete_guard_days: u32,
    pub feeds: Vec<Feed>,
}

/// The store keeps a partner's id, name and priority.
impl crate::store::PartnerEntry for Partner {
    fn id(&self) -> &str {
        self.id.as_str()
    }
    fn name(&self) -> &str {
        &self.name
    }
    fn priority(&self) -> i64 {
        self.priority
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// A postcode-centroid CSV (ONS Postcode Directory layout) for postcode and distance search.
    pub postcode_centroids: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: std::net::SocketAddr,
    pub base_url: url::Url,
    /// Bytes of rendered responses the server keeps (`response_cache_mb`).
    pub response_cache_bytes: usize,
    /// How long a client may take to send its request head before the connection is closed.
    pub header_read_timeout: Duration,
    /// Most connections held at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// How long SIGTERM lets running syncs finish before rolling them back.
    pub stop_grace: Duration,
}

#[derive(Debug, Clone)]
pub enum AdminToken {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub token: AdminToken,
    /// How long an admin console sign-in lasts (`session_hours`).
    pub session_lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub default_schedule: Schedule,
    pub timezone: chrono_tz::Tz,
    pub max_concurrent: usize,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was loaded from.
    pub path: PathBuf,
    pub store: StoreConfig,
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub scheduler: SchedulerConfig,
    pub dedupe: crate::dedupe::Settings,
    pub sync: SyncConfig,
    pub webhooks: WebhooksConfig,
    pub publish: PublishConfig,
    pub partners: Vec<Partner>,
}

/// `[publish]`: bounds on what one public response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishConfig {
    /// Most single events one calendar response carries; past it the response says it was cut.
    pub calendar_max_events: usize,
    /// `Cache-Control: public, max-age=` of every cacheable public answer (`max_age_secs`).
    pub max_age_secs: u32,
}

/// `[sync]`: partner lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConfig {
    /// Days a partner's records stay published after its `[[partners]]` block is removed.
    pub removed_partner_grace_days: u32,
}

/// Default of `sync.removed_partner_grace_days`: the store's own default grace.
pub const DEFAULT_REMOVED_PARTNER_GRACE_DAYS: i64 =
    crate::store::withdrawal::DEFAULT_GRACE_DAYS as i64;

impl Config {
    /// Every configured partner's attribution: who published records are credited to.
    pub fn attributions(&self) -> crate::licence::Attributions {
        crate::licence::Attributions::new(
            self.partners
                .iter()
                .map(|p| crate::licence::Attribution {
                    partner: p.id.as_str().to_string(),
                    name: p.name.clone(),
                    website: p.website.clone(),
                    licence: p.licence.clone(),
                })
                .collect(),
        )
    }

    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id.as_str() == id)
    }
}

// ---- raw, as written in TOML ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    scheduler: RawScheduler,
    #[serde(default)]
    dedupe: RawDedupe,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    webhooks: webhooks::RawWebhooks,
    #[serde(default)]
    publish: RawPublish,
    #[serde(default)]
    partners: Vec<RawPartner>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    calendar_max_events: Option<i64>,
    max_age_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    removed_partner_grace_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDedupe {
    merge_threshold: Option<f64>,
    review_threshold: Option<f64>,
    event_time_tolerance_minutes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<String>,
    postcode_centroids: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
    base_url: Option<String>,
    response_cache_mb: Option<i64>,
    header_read_timeout_secs: Option<i64>,
    max_connections: Option<i64>,
    stop_grace_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_env: Option<String>,
    token_file: Option<String>,
    session_hours: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    default_schedule: Option<String>,
    timezone: Option<String>,
    max_concurrent: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    id: Option<String>,
    name: Option<String>,
    schedule: Option<String>,
    priority: Option<i64>,
    licence: Option<String>,
    website: Option<String>,
    max_delete_share: Option<f64>,
    delete_guard_days: Option<i64>,
    #[serde(default)]
    feeds: Vec<RawFeed>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    kind: Option<String>,
    format: Option<String>,
    url: Option<String>,
    rate_limit_per_minute: Option<i64>,
    timeout_secs: Option<i64>,
    max_body_bytes: Option<i64>,
    retries: Option<i64>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    columns: BTreeMap<String, String>,
    max_pages: Option<i64>,
    max_harvest_bytes: Option<i64>,
}

/// Reads the config file that the CLI's rules point at: `--config`, else `$TRIBUTARY_CONFIG`, else
/// `config/tributary.toml` if it exists, else `/etc/tributary/tributary.toml`.
pub fn resolve_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Ok(p) = std::env::var("TRIBUTARY_CONFIG") {
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let local = PathBuf::from("config/tributary.toml");
    if local.exists() {
        return local;
    }
    PathBuf::from("/etc/tributary/tributary.toml")
}

pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::path::absolute(&base).unwrap_or(base);
    parse(&text, path, &base, &|name| std::env::var(name).ok())
}

/// Parses and validates config text. `base` anchors relative paths; `env` resolves `${VAR}`.
pub fn parse(
    text: &str,
    path: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    // Only a file that is not TOML at all stops here; wrong keys and types are problems below.
    let mut table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        path: path.to_path_buf(),
        message: describe_toml_error(&e),
    })?;
    let mut problems = Vec::new();
    schema::check(&mut table, &mut problems);
    let cfg = match RawConfig::deserialize(toml::Value::Table(table)) {
        Ok(raw) => validate(raw, path, base, env, &mut problems),
        Err(e) => {
            push(&mut problems, "", describe_toml_error(&e));
            None
        }
    };
    for p in &mut problems {
        p.line = schema::line_of(text, &p.key);
    }
    // In file order, so they can be fixed top to bottom; keys not in the file come last.
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    match cfg {
        Some(cfg) if problems.is_empty() => Ok(cfg),
        _ => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }),
    }
}

fn describe_toml_error(e: &toml::de::Error) -> String {
    // toml's message already names the unknown/mistyped key and the line; keep it on one line.
    e.to_string()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn resolve_file(base: &Path, p: &str) -> PathBuf {
    let pb = PathBuf::from(p);
    if pb.is_absolute() {
        pb
    } else {
        base.join(pb)
    }
}

/// Replaces `${VAR}` with the environment's value; a missing variable is a problem.
fn expand_env(
    s: &str,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match env(name) {
                    Some(v) => out.push_str(&v),
                    None => problems.push(Problem::new(
                        key,
                        format!("environment variable {name} is not set"),
                    )),
                }
                rest = &after[end + 1..];
            }
            None => {
                problems.push(Problem::new(key, "unterminated ${...}"));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn validate(
    raw: RawConfig,
    path: &Path,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let store_path = resolve_file(
        base,
        raw.store.path.as_deref().unwrap_or("data/tributary.db"),
    );

    let server = validate_server(&raw.server, problems);
    let admin = validate_admin(&raw.admin, base, problems);
    let scheduler = validate_scheduler(&raw.scheduler, problems);
    let dedupe = validate_dedupe(&raw.dedupe, problems);
    let sync = validate_sync(&raw.sync, problems);
    let webhooks = webhooks::validate(raw.webhooks, base, problems);
    let publish = validate_publish(&raw.publish, problems);
    let partners = validate_partners(
        raw.partners,
        scheduler.as_ref().map(|s| &s.default_schedule),
        base,
        env,
        problems,
    );
    Some(Config {
        path: path.to_path_buf(),
        store: StoreConfig {
            path: store_path,
            postcode_centroids: raw
                .store
                .postcode_centroids
                .as_deref()
                .map(|p| resolve_file(base, p)),
        },
        server: server?,
        admin,
        scheduler: scheduler?,
        dedupe,
        sync,
        webhooks,
        publish,
        partners,
    })
}

/// `[publish]`: the calendar's bound and how long public answers may be reused.
fn validate_publish(raw: &RawPublish, problems: &mut Vec<Problem>) -> PublishConfig {
    let max = bounded(
        problems,
        "publish.calendar_max_events",
        raw.calendar_max_events,
        DEFAULT_CALENDAR_MAX_EVENTS as i64,
        1..=100_000_000,
        "events",
    );
    let max_age = bounded(
        problems,
        "publish.max_age_secs",
        raw.max_age_secs,
        i64::from(DEFAULT_MAX_AGE_SECS),
        0..=86_400,
        "seconds",
    );
    PublishConfig {
        calendar_max_events: max as usize,
        max_age_secs: max_age as u32,
    }
}

/// `[sync]`: the partner lifecycle's grace period.
fn validate_sync(raw: &RawSync, problems: &mut Vec<Problem>) -> SyncConfig {
    let grace = bounded(
        problems,
        "sync.removed_partner_grace_days",
        raw.removed_partner_grace_days,
        DEFAULT_REMOVED_PARTNER_GRACE_DAYS,
        0..=3650,
        "days",
    );
    SyncConfig {
        removed_partner_grace_days: grace as u32,
    }
}

/// `[server]`; `None` when the listen address or base URL is unusable.
fn validate_server(raw: &RawServer, problems: &mut Vec<Problem>) -> Option<ServerConfig> {
    let listen_s = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = match listen_s.parse::<std::net::SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            push(
                problems,
                "server.listen",
                format!("{listen_s:?} is not an address:port such as \"127.0.0.1:8080\""),
            );
            None
        }
    };
    let base_url = match &raw.base_url {
        Some(s) => match url::Url::parse(s) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(u),
            Ok(_) => {
                push(
                    problems,
                    "server.base_url",
                    format!("{s:?} must be an http(s) URL"),
                );
                None
            }
            Err(e) => {
                push(
                    problems,
                    "server.base_url",
                    format!("{s:?} is not a URL: {e}"),
                );
                None
            }
        },
        None => listen.and_then(|a| url::Url::parse(&format!("http://{a}")).ok()),
    };

    let response_cache_mb = match raw.response_cache_mb {
        None => DEFAULT_RESPONSE_CACHE_MB,
        Some(n) if (0..=65_536).contains(&n) => n as usize,
        Some(n) => {
            push(
                problems,
                "server.response_cache_mb",
                format!("{n} must be between 0 and 65536 (MiB)"),
            );
            DEFAULT_RESPONSE_CACHE_MB
        }
    };

    let header_read_timeout = bounded(
        problems,
        "server.header_read_timeout_secs",
        raw.header_read_timeout_secs,
        DEFAULT_HEADER_READ_TIMEOUT_SECS as i64,
        1..=300,
        "seconds",
    );
    let max_connections = bounded(
        problems,
        "server.max_connections",
        raw.max_connections,
        DEFAULT_MAX_CONNECTIONS as i64,
        1..=1_000_000,
        "connections",
    );
    let stop_grace = bounded(
        problems,
        "server.stop_grace_secs",
        raw.stop_grace_secs,
        DEFAULT_STOP_GRACE_SECS as i64,
        0..=3600,
        "seconds",
    );
    Some(ServerConfig {
        listen: listen?,
        base_url: base_url?,
        response_cache_bytes: response_cache_mb << 20,
        header_read_timeout: Duration::from_secs(header_read_timeout as u64),
        max_connections: max_connections as usize,
        stop_grace: Duration::from_secs(stop_grace as u64),
    })
}

/// `[admin]`: where the token comes from (read only by `run` and the CLI).
fn validate_admin(raw: &RawAdmin, base: &Path, problems: &mut Vec<Problem>) -> AdminConfig {
    let token = match (&raw.token_env, &raw.token_file) {
        (Some(_), Some(_)) => {
            push(
                problems,
                "admin",
                "set either token_env or token_file, not both".into(),
            );
            AdminToken::Env(DEFAULT_TOKEN_ENV.into())
        }
        (_, Some(f)) => AdminToken::File(resolve_file(base, f)),
        (Some(e), None) => {
            if e.is_empty() {
                push(problems, "admin.token_env", "must not be empty".into());
            }
            AdminToken::Env(e.clone())
        }
        (None, None) => AdminToken::Env(DEFAULT_TOKEN_ENV.into()),
    };
    let hours = match raw.session_hours {
        None => DEFAULT_SESSION_HOURS,
        Some(h) if (1..=MAX_SESSION_HOURS).contains(&h) => h,
        Some(h) => {
            push(
                problems,
                "admin.session_hours",
                format!("{h} must be 1 to {MAX_SESSION_HOURS} hours"),
            );
            DEFAULT_SESSION_HOURS
        }
    };
    AdminConfig {
        token,
        session_lifetime: Duration::from_secs(hours.unsigned_abs() * 3600),
    }
}

/// An admin console sign-in lasts a working day unless configured otherwise, and never more
/// than a week: a forgotten session on a shared machine should not stay open for long.
const DEFAULT_SESSION_HOURS: i64 = 8;
const MAX_SESSION_HOURS: i64 = 168;

/// `[scheduler]`; `None` when the default schedule does not parse.
fn validate_scheduler(raw: &RawScheduler, problems: &mut Vec<Problem>) -> Option<SchedulerConfig> {
    let default_schedule =
        match Schedule::parse(raw.default_schedule.as_deref().unwrap_or(DEFAULT_SCHEDULE)) {
            Ok(s) => Some(s),
            Err(m) => {
                push(problems, "scheduler.default_schedule", m);
                None
            }
        };
    let tz_s = raw.timezone.as_deref().unwrap_or("Europe/London");
    let timezone = match tz_s.parse::<chrono_tz::Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            push(
                problems,
                "scheduler.timezone",
                format!("{tz_s:?} is not an IANA time zone such as \"Europe/London\""),
            );
            chrono_tz::Europe::London
        }
    };
    let max_concurrent = match raw.max_concurrent {
        None => 4,
        Some(n) if (1..=64).contains(&n) => n as usize,
        Some(n) => {
            push(
                problems,
                "scheduler.max_concurrent",
                format!("{n} must be between 1 and 64"),
            );
            1
        }
    };
    Some(SchedulerConfig {
        default_schedule: default_schedule?,
        timezone,
        max_concurrent,
    })
}

/// `[dedupe]`: the match thresholds and the event time tolerance.
fn validate_dedupe(raw: &RawDedupe, problems: &mut Vec<Problem>) -> crate::dedupe::Settings {
    let merge_threshold = raw.merge_threshold.unwrap_or(DEFAULT_MERGE_THRESHOLD);
    let review_threshold = raw.review_threshold.unwrap_or(DEFAULT_REVIEW_THRESHOLD);
    if !merge_threshold.is_finite() {
        push(
            problems,
            "dedupe.merge_threshold",
            "must be a number".into(),
        );
    }
    if !(review_threshold.is_finite() && review_threshold <= merge_threshold) {
        push(
            problems,
            "dedupe.review_threshold",
            format!("{review_threshold} must be a number no greater than merge_threshold ({merge_threshold})"),
        );
    }
    let tolerance = raw
        .event_time_tolerance_minutes
        .unwrap_or(DEFAULT_EVENT_TOLERANCE_MINUTES);
    if !(0..=24 * 60).contains(&tolerance) {
        push(
            problems,
            "dedupe.event_time_tolerance_minutes",
            format!("{tolerance} must be between 0 and 1440"),
        );
    }
    crate::dedupe::Settings {
        merge_threshold,
        review_threshold,
        event_tolerance_secs: tolerance.clamp(0, 24 * 60) * 60,
    }
}

/// `[[partners]]`: each partner whose id and schedule are usable, with its usable feeds.
fn validate_partners(
    raw: Vec<RawPartner>,
    default_schedule: Option<&Schedule>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Vec<Partner> {
    if raw.is_empty() {
        push(
            problems,
            "partners",
            "no [[partners]] configured: there is nothing to sync".into(),
        );
    }
    let mut seen = HashSet::new();
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, rp)| {
            validate_partner(i, rp, &mut seen, default_schedule, base, env, problems)
        })
        .collect()
}

fn validate_partner(
    i: usize,
    rp: RawPartner,
    seen: &mut HashSet<PartnerId>,
    default_schedule: Option<&Schedule>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Partner> {
    let pk = format!("partners[{i}]");
    let id = match rp.id.as_deref() {
        None => {
            push(problems, &format!("{pk}.id"), "is required".into());
            None
        }
        Some(s) => match PartnerId::parse(s) {
            Ok(id) => {
                if !seen.insert(id.clone()) {
                    push(
                        problems,
                        &format!("{pk}.id"),
                        format!("{s:?} is used by another partner"),
                    );
                }
                Some(id)
            }
            Err(m) => {
                push(problems, &format!("{pk}.id"), m);
                None
            }
        },
    };
    let name = match rp.name {
        Some(n) if !n.trim().is_empty() => n,
        _ => {
            push(problems, &format!("{pk}.name"), "is required".into());
            String::new()
        }
    };
    let schedule = match rp.schedule.as_deref() {
        None => default_schedule.cloned(),
        Some(s) => match Schedule::parse(s) {
            Ok(s) => Some(s),
            Err(m) => {
                push(problems, &format!("{pk}.schedule"), m);
                None
            }
        },
    };
    let licence = rp.licence.as_deref().and_then(|l| {
        crate::licence::Licence::parse(l)
            .map_err(|m| push(problems, &format!("{pk}.licence"), m))
            .ok()
    });
    let max_delete_share = match rp.max_delete_share {
        None => DEFAULT_MAX_DELETE_SHARE,
        Some(x) if x > 0.0 && x <= 1.0 => x,
        Some(x) => {
            push(
                problems,
                &format!("{pk}.max_delete_share"),
                format!("{x} must be more than 0 and at most 1 (e.g. 0.25 for 25%)"),
            );
            DEFAULT_MAX_DELETE_SHARE
        }
    };
    let delete_guard_days = bounded(
        problems,
        &format!("{pk}.delete_guard_days"),
        rp.delete_guard_days,
        DEFAULT_DELETE_GUARD_DAYS as i64,
        0..=3660,
        "days (0 compares with the previous sync only)",
    ) as u32;
    if rp.feeds.is_empty() {
        push(
            problems,
            &format!("{pk}.feeds"),
            "a partner needs at least one [[partners.feeds]]".into(),
        );
    }
    let mut feed_keys = HashSet::new();
    let feeds = rp
        .feeds
        .into_iter()
        .enumerate()
        .filter_map(|(j, rf)| validate_feed(&pk, j, rf, &mut feed_keys, base, env, problems))
        .collect();
    if let (Some(id), Some(schedule)) = (id, schedule) {
        return Some(Partner {
            id,
            name,
            schedule,
            priority: rp.priority.unwrap_or(0),
            licence,
            website: rp.website,
            max_delete_share,
            delete_guard_days,
            feeds,
        });
    }
    None
}

/// `[[partners.feeds]]`: one feed, `None` when its kind, format or source is unusable.
fn validate_feed(
    pk: &str,
    j: usize,
    rf: RawFeed,
    feed_keys: &mut HashSet<String>,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<Feed> {
    let fk = format!("{pk}.feeds[{j}]");
    let kind = match rf.kind.as_deref() {
        None => {
            push(
                problems,
                &format!("{fk}.kind"),
                "is required: \"organisations\" or \"events\"".into(),
            );
            None
        }
        Some(k) => match RecordKind::parse(k) {
            Some(k) => Some(k),
            None => {
                push(
                    problems,
                    &format!("{fk}.kind"),
                    format!("{k:?} must be \"organisations\" or \"events\""),
                );
                None
            }
        },
    };
    let format = match rf.format.as_deref() {
        None => {
            push(problems, &format!("{fk}.format"), "is required".into());
            None
        }
        Some(f) => match Format::parse(f) {
            Some(f) => Some(f),
            None => {
                let known: Vec<_> = Format::ALL.iter().map(|(n, _)| *n).collect();
                push(
                    problems,
                    &format!("{fk}.format"),
                    format!("{f:?} is not a known format ({})", known.join(", ")),
                );
                None
            }
        },
    };
    if let (Some(format), Some(kind)) = (format, kind) {
        if !format.kinds().contains(&kind) {
            let can: Vec<_> = format.kinds().iter().map(|k| k.as_str()).collect();
            push(
                problems,
                &format!("{fk}.format"),
                format!(
                    "a {} feed carries {}, not {}; set kind accordingly",
                    format.as_str(),
                    can.join(" or "),
                    kind.as_str()
                ),
            );
        }
    }
    let source = match rf.url.as_deref() {
        None | Some("") => {
            push(
                problems,
                &format!("{fk}.url"),
                "is required: an http(s) URL or a file path".into(),
            );
            None
        }
        Some(u) => parse_source(u, base).map_or_else(
            |m| {
                push(problems, &format!("{fk}.url"), m);
                None
            },
            Some,
        ),
    };
    if let (Some(format), Some(Source::File(_))) = (format, &source) {
        if format.needs_http() {
            push(
                problems,
                &format!("{fk}.url"),
                format!(
                    "a {} feed is an API that tributary pages through; give its http(s) root URL, not a file",
                    format.as_str()
                ),
            );
        }
    }
    feed_columns(&rf.columns, &fk, kind, format, problems);
    let FeedLimits {
        rate,
        timeout,
        max_body_bytes,
        retries,
        max_pages,
        max_harvest_bytes,
    } = feed_limits(&rf, &fk, problems);
    let headers = feed_headers(rf.headers, &fk, env, problems);
    if let (Some(kind), Some(format), Some(source)) = (kind, format, source) {
        let mut key = format!("{}-{j}", kind.as_str());
        while !feed_keys.insert(key.clone()) {
            key.push('x');
        }
        return Some(Feed {
            key,
            kind,
            format,
            source,
            rate_limit_per_minute: rate,
            timeout: Duration::from_secs(timeout),
            max_body_bytes,
            retries,
            headers,
            columns: rf.columns,
            max_pages,
            max_harvest_bytes,
        });
    }
    None
}

/// A feed to preview (from the admin console): `kind`, `format` and `url` checked as a
/// `[[partners.feeds]]` block's are, with that block's default limits. Only an http(s) URL: a
/// preview never reads the server's own files. Each problem names its field.
pub fn preview_feed(kind: &str, format: &str, url: &str) -> Result<Feed, Vec<Problem>> {
    let given = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let url = url.trim();
    // Checked before anything reads it, so no answer tells whether a path exists on the server.
    let http = url.starts_with("http://") || url.starts_with("https://");
    let raw = RawFeed {
        kind: given(kind),
        format: given(format),
        url: http.then(|| url.to_string()),
        rate_limit_per_minute: None,
        timeout_secs: None,
        max_body_bytes: None,
        retries: None,
        headers: BTreeMap::new(),
        columns: BTreeMap::new(),
        max_pages: None,
        max_harvest_bytes: None,
    };
    let mut problems = Vec::new();
    let feed = validate_feed(
        "preview",
        0,
        raw,
        &mut HashSet::new(),
        Path::new("."),
        &|_| None,
        &mut problems,
    );
    for p in &mut problems {
        p.key = p.key.trim_start_matches("preview.feeds[0].").to_string();
    }
    if !http {
        problems.retain(|p| p.key != "url");
        problems.push(Problem::new(
            "url",
            "must be an http(s) URL: a preview does not read files on the server",
        ));
    }
    match feed {
        Some(f) if problems.is_empty() => Ok(f),
        _ => Err(problems),
    }
}

/// A feed's request limits, each within its range (else a problem and a safe value).
struct FeedLimits {
    rate: u32,
    timeout: u64,
    max_body_bytes: u64,
    retries: u32,
    max_pages: u32,
    max_harvest_bytes: u64,
}

fn feed_limits(rf: &RawFeed, fk: &str, problems: &mut Vec<Problem>) -> FeedLimits {
    let mut limit = |key: &str, value: Option<i64>, default: i64, range, unit: &str| {
        bounded(
            problems,
            &format!("{fk}.{key}"),
            value,
            default,
            range,
            unit,
        )
    };
    let rate = limit(
        "rate_limit_per_minute",
        rf.rate_limit_per_minute,
        i64::from(DEFAULT_RATE_LIMIT_PER_MINUTE),
        1..=100_000,
        "requests a minute",
    ) as u32;
    let timeout = limit(
        "timeout_secs",
        rf.timeout_secs,
        DEFAULT_TIMEOUT_SECS as i64,
        1..=3600,
        "seconds",
    ) as u64;
    let max_body_bytes = limit(
        "max_body_bytes",
        rf.max_body_bytes,
        DEFAULT_MAX_BODY_BYTES as i64,
        1024..=i64::MAX,
        "bytes",
    ) as u64;
    let retries = limit(
        "retries",
        rf.retries,
        i64::from(DEFAULT_RETRIES),
        0..=10,
        "attempts after the first",
    ) as u32;
    let max_pages = limit(
        "max_pages",
        rf.max_pages,
        i64::from(DEFAULT_MAX_PAGES),
        1..=1_000_000,
        "pages",
    ) as u32;
    let max_harvest_bytes = limit(
        "max_harvest_bytes",
        rf.max_harvest_bytes,
        DEFAULT_MAX_HARVEST_BYTES as i64,
        1024..=i64::MAX,
        "bytes",
    ) as u64;
    FeedLimits {
        rate,
        timeout,
        max_body_bytes,
        retries,
        max_pages,
        max_harvest_bytes,
    }
}

/// A csv feed's column map: known canonical columns, each naming a header.
fn feed_columns(
    columns: &BTreeMap<String, String>,
    fk: &str,
    kind: Option<RecordKind>,
    format: Option<Format>,
    problems: &mut Vec<Problem>,
) {
    if !columns.is_empty() && format.is_some_and(|f| f != Format::Csv) {
        push(
            problems,
            &format!("{fk}.columns"),
            "applies to csv feeds only".into(),
        );
    }
    for (canonical, header) in columns {
        let ck = format!("{fk}.columns.{canonical}");
        if let Some(kind) = kind {
            if !crate::ingest::csv::columns(kind).contains(&canonical.as_str()) {
                push(
                    problems,
                    &ck,
                    format!(
                        "is not a {} column (known: {})",
                        kind.as_str(),
                        crate::ingest::csv::columns(kind).join(", ")
                    ),
                );
            }
        }
        if header.trim().is_empty() {
            push(
                problems,
                &ck,
                "must name the partner's column header".into(),
            );
        }
    }
}

/// Request headers with `${VAR}` expanded; a name HTTP cannot carry is a problem.
fn feed_headers(
    raw: BTreeMap<String, String>,
    fk: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String)> {
    let mut headers = Vec::new();
    for (name, value) in raw {
        let hk = format!("{fk}.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            push(problems, &hk, "is not a valid HTTP header name".into());
            continue;
        }
        let value = expand_env(&value, &hk, env, problems);
        headers.push((name, value));
    }
    headers
}

/// A whole-number setting within `range`, else a problem naming the key and the default used.
fn bounded(
    problems: &mut Vec<Problem>,
    key: &str,
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
    unit: &str,
) -> i64 {
    match value {
        None => default,
        Some(n) if range.contains(&n) => n,
        Some(n) => {
            let message = if *range.end() == i64::MAX {
                format!("{n} must be at least {} ({unit})", range.start())
            } else {
                format!(
                    "{n} must be between {} and {} ({unit})",
                    range.start(),
                    range.end()
                )
            };
            push(problems, key, message);
            default
        }
    }
}

fn push(problems: &mut Vec<Problem>, key: &str, message: String) {
    problems.push(Problem::new(key, message));
}

fn parse_source(u: &str, base: &Path) -> Result<Source, String> {
    if u.starts_with("http://") || u.starts_with("https://") {
        let url = url::Url::parse(u).map_err(|e| format!("{u:?} is not a valid URL: {e}"))?;
        if url.host_str().is_none() {
            return Err(format!("{u:?} has no host"));
        }
        return Ok(Source::Http(url));
    }
    if let Some((scheme, _)) = u.split_once("://") {
        if scheme != "file" {
            return Err(format!(
                "{u:?}: scheme {scheme:?} is not supported (use http, https or a file path)"
            ));
        }
    }
    let p = u.strip_prefix("file://").unwrap_or(u);
    let path = resolve_file(base, p);
    if !path.is_file() {
        return Err(format!("file {} does not exist", path.display()));
    }
    Ok(Source::File(path))
}

/// What `run` will need beyond a valid file: a readable, non-empty admin token file and a store
/// folder it can write (or create). Each problem names the key it comes from.
pub fn check_runtime(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let AdminToken::File(path) = &config.admin.token {
        match std::fs::read_to_string(path) {
            Ok(t) if t.trim().is_empty() => push(
                &mut problems,
                "admin.token_file",
                format!("{} is empty", path.display()),
            ),
            Ok(_) => {}
            Err(e) => push(
                &mut problems,
                "admin.token_file",
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    let store = &config.store.path;
    if store.exists() && !writable(store) {
        push(
            &mut problems,
            "store.path",
            format!("{} is not writable by this user", store.display()),
        );
    }
    // `run` creates missing folders: the nearest one that exists must take new entries.
    let mut folder = store.parent();
    while let Some(dir) = folder {
        if dir.exists() {
            if !dir.is_dir() || !writable(dir) {
                push(
                    &mut problems,
                    "store.path",
                    format!(
                        "folder {} is not writable by this user (the store needs to create files there)",
                        dir.display()
                    ),
                );
            }
            break;
        }
        folder = dir.parent();
    }
    problems
}

fn writable(path: &Path) -> bool {
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).is_ok()
}
