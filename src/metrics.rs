//! Prometheus metrics for `GET /metrics`: syncs by partner and result, their durations, records and
//! rejections, HTTP requests by route and status. Store-derived gauges are set at scrape time.
//! Rendered as OpenMetrics or, for scrapers that do not ask for it, the Prometheus text format 0.0.4.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub use crate::process_memory::{resident_bytes, resident_mb};

use crate::sync::SyncReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    partner: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabels {
    partner: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubscriberLabels {
    subscriber: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    subscriber: String,
    result: String,
}

/// One webhook subscriber's standing, for its gauges.
#[derive(Debug, Clone)]
pub struct SubscriberHealth {
    pub subscriber: String,
    /// Changes in the log after the one it last acknowledged.
    pub behind: i64,
    pub dead_letter: bool,
}

/// Store operations that failed while serving (a process-wide count: the server's error path
/// reaches it without a handle on the registry).
static STORE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts one failed store operation for `tributary_store_errors_total`.
pub fn note_store_error() {
    STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
}

/// The two exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what `promtool` and scrapers that send no `Accept` expect.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Picks the format from an `Accept` header: OpenMetrics only when the client ranks it above
    /// plain text (Prometheus itself does); no header, `text/plain`, `*/*` or a tie get plain text.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::PrometheusText;
        };
        let (mut open_q, mut text_q) = (0.0f32, 0.0f32);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            match media.as_str() {
                "application/openmetrics-text" => open_q = open_q.max(q),
                "text/plain" | "text/*" | "*/*" => text_q = text_q.max(q),
                _ => {}
            }
        }
        if open_q > 0.0 && open_q > text_q {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

/// A calendar rendering that carried only the first `published` of the `in_window` single events
/// its window held (the bound is `publish.calendar_max_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarCut {
    pub route: &'static str,
    pub published: usize,
    pub in_window: usize,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl CalendarCut {
    pub fn omitted(&self) -> usize {
        self.in_window.saturating_sub(self.published)
    }
}

/// What the store says about one partner's syncs, for the per-partner gauges.
#[derive(Debug, Clone)]
pub struct PartnerHealth {
    pub partner: String,
    /// Unix seconds of the last run that ended `ok` or `unchanged`; `None` if none ever did.
    pub last_success: Option<i64>,
    /// Runs in a row that failed (or were interrupted) since the last success.
    pub consecutive_failures: usize,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    partner_last_success: Family<PartnerLabels, Gauge>,
    partner_failures: Family<PartnerLabels, Gauge>,
    store_up: Gauge,
    store_errors: Counter,
    syncs: Family<SyncLabels, Counter>,
    sync_seconds: Family<PartnerLabels, Histogram>,
    records_seen: Family<PartnerLabels, Counter>,
    rejections: Family<PartnerLabels, Counter>,
    warnings: Family<PartnerLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    subscriber_behind: Family<SubscriberLabels, Gauge>,
    subscriber_dead: Family<SubscriberLabels, Gauge>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    entities: Family<KindLabels, Gauge>,
    renders: Family<RouteLabels, Counter>,
    calendar_omitted: Family<RouteLabels, Counter>,
    /// The latest calendar rendering cut at its bound, for the status page.
    last_cut: Mutex<Option<CalendarCut>>,
    resident: Gauge,
    resident_peak: Gauge,
    cache_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tributary");
        let syncs = Family::<SyncLabels, Counter>::default();
        registry.register("syncs", "Partner syncs by result", syncs.clone());
        let sync_seconds = Family::<PartnerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 2.0, 16))
        });
        registry.register(
            "sync_duration_seconds",
            "Duration of partner syncs",
            sync_seconds.clone(),
        );
        let records_seen = Family::<PartnerLabels, Counter>::default();
        registry.register(
            "records_seen",
            "Records read from partners' feeds",
            records_seen.clone(),
        );
        let rejections = Family::<PartnerLabels, Counter>::default();
        registry.register(
            "rejections",
            "Partner records rejected with a reason",
            rejections.clone(),
        );
        let warnings = Family::<PartnerLabels, Counter>::default();
        registry.register(
            "record_warnings",
            "Partner records that landed with a caveat (a value dropped or read another way)",
            warnings.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by subscriber and result (ok, failed)",
            deliveries.clone(),
        );
        let subscriber_behind = Family::<SubscriberLabels, Gauge>::default();
        registry.register(
            "webhook_changes_behind",
            "Changes in the log a webhook subscriber has not yet acknowledged",
            subscriber_behind.clone(),
        );
        let subscriber_dead = Family::<SubscriberLabels, Gauge>::default();
        registry.register(
            "webhook_dead_letter",
            "1 while a webhook subscriber is dead-lettered (delivery stopped until an admin retries)",
            subscriber_dead.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_seconds.clone(),
        );
        let entities = Family::<KindLabels, Gauge>::default();
        registry.register(
            "entities",
            "Live canonical entities in the store",
            entities.clone(),
        );
        let renders = Family::<RouteLabels, Counter>::default();
        registry.register(
            "response_renders",
            "Cached responses rendered afresh (cache misses; concurrent misses share one)",
            renders.clone(),
        );
        let calendar_omitted = Family::<RouteLabels, Counter>::default();
        registry.register(
            "calendar_omitted_events",
            "Single events left out of calendar renderings past publish.calendar_max_events",
            calendar_omitted.clone(),
        );
        let resident = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the process",
            resident.clone(),
        );
        let resident_peak = Gauge::default();
        registry.register(
            "process_resident_memory_peak_bytes",
            "Highest resident memory of the process since it started",
            resident_peak.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register(
            "response_cache_bytes",
            "Bytes of rendered responses (and their gzip forms) the server keeps",
            cache_bytes.clone(),
        );
        let partner_last_success = Family::<PartnerLabels, Gauge>::default();
        registry.register(
            "partner_last_success_timestamp_seconds",
            "Unix time at which the partner's last successful sync finished (0: never)",
            partner_last_success.clone(),
        );
        let partner_failures = Family::<PartnerLabels, Gauge>::default();
        registry.register(
            "partner_consecutive_failures",
            "Syncs of the partner in a row that failed since its last success",
            partner_failures.clone(),
        );
        let store_up = Gauge::default();
        registry.register(
            "store_up",
            "1 if the store answered this scrape and no damage has been seen, else 0",
            store_up.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Store operations that failed while serving requests or scrapes",
            store_errors.clone(),
        );
        Metrics {
            partner_last_success,
            partner_failures,
            store_up,
            store_errors,
            resident,
            resident_peak,
            cache_bytes,
            registry: Mutex::new(registry),
            syncs,
            sync_seconds,
            records_seen,
            rejections,
            warnings,
            deliveries,
            subscriber_behind,
            subscriber_dead,
            http_requests,
            http_seconds,
            entities,
            renders,
            calendar_omitted,
            last_cut: Mutex::new(None),
        }
    }

    /// Counts a calendar rendering cut at its bound and keeps it for the status page.
    pub fn record_calendar_cut(&self, cut: CalendarCut) {
        self.calendar_omitted
            .get_or_create(&RouteLabels {
                route: cut.route.to_string(),
            })
            .inc_by(cut.omitted() as u64);
        *self.last_cut.lock().unwrap_or_else(|e| e.into_inner()) = Some(cut);
    }

    /// The latest calendar rendering that was cut, if any was since the daemon started.
    pub fn last_calendar_cut(&self) -> Option<CalendarCut> {
        self.last_cut
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn record_sync(&self, r: &SyncReport) {
        let partner = PartnerLabels {
            partner: r.partner.clone(),
        };
        self.syncs
            .get_or_create(&SyncLabels {
                partner: r.partner.clone(),
                result: r.outcome.as_str().to_string(),
            })
            .inc();
        self.sync_seconds
            .get_or_create(&partner)
            .observe(r.duration.as_secs_f64());
        self.records_seen
            .get_or_create(&partner)
            .inc_by(r.counts.records_seen as u64);
        self.rejections
            .get_or_create(&partner)
            .inc_by(r.counts.rejected as u64);
        self.warnings
            .get_or_create(&partner)
            .inc_by(r.counts.warned as u64);
    }

    pub fn record_http(&self, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(seconds);
    }

    pub fn record_render(&self, route: &str) {
        self.renders
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .inc();
    }

    pub fn set_entities(&self, organisations: usize, events: usize) {
        for (kind, n) in [("organisations", organisations), ("events", events)] {
            self.entities
                .get_or_create(&KindLabels { kind: kind.into() })
                .set(n as i64);
        }
    }

    /// Memory gauges, set at scrape time.
    pub fn set_memory(&self, response_cache_bytes: usize) {
        if let Some((now, peak)) = resident_bytes() {
            self.resident.set(now as i64);
            self.resident_peak.set(peak as i64);
        }
        self.cache_bytes.set(response_cache_bytes as i64);
    }

    /// Per-partner gauges, replaced whole at scrape time so a partner removed from the config
    /// stops being reported.
    pub fn set_partners(&self, partners: &[PartnerHealth]) {
        // Under the registry's lock: a render never sees the families half refilled.
        let _registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        self.partner_last_success.clear();
        self.partner_failures.clear();
        for p in partners {
            let labels = PartnerLabels {
                partner: p.partner.clone(),
            };
            self.partner_last_success
                .get_or_create(&labels)
                .set(p.last_success.unwrap_or(0));
            self.partner_failures
                .get_or_create(&labels)
                .set(i64::try_from(p.consecutive_failures).unwrap_or(i64::MAX));
        }
    }

    /// Counts one webhook delivery attempt.
    pub fn record_delivery(&self, subscriber: &str, ok: bool) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                subscriber: subscriber.to_string(),
                result: if ok { "ok" } else { "failed" }.to_string(),
            })
            .inc();
    }

    /// Per-subscriber gauges, replaced whole at scrape time.
    pub fn set_subscribers(&self, subscribers: &[SubscriberHealth]) {
        let _registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        self.subscriber_behind.clear();
        self.subscriber_dead.clear();
        for s in subscribers {
            let labels = SubscriberLabels {
                subscriber: s.subscriber.clone(),
            };
            self.subscriber_behind.get_or_create(&labels).set(s.behind);
            self.subscriber_dead
                .get_or_create(&labels)
                .set(i64::from(s.dead_letter));
        }
    }

    /// Whether the store answered this scrape; also brings the store error count up to date.
    pub fn set_store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
        let total = STORE_ERRORS.load(Ordering::Relaxed);
        let counted = self.store_errors.get();
        if total > counted {
            self.store_errors.inc_by(total - counted);
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    /// The exposition in the format asked for.
    pub fn render_as(&self, format: Format) -> String {
        match format {
            Format::OpenMetrics => self.render(),
            Format::PrometheusText => to_prometheus_text(&self.render()),
        }
    }
}

/// Rewrites OpenMetrics text (as `prometheus-client` writes it) into the Prometheus text format
/// 0.0.4: a counter's HELP and TYPE name its `_total` samples, `_created` samples, UNIT lines,
/// exemplars and the `# EOF` trailer go, and types 0.0.4 lacks become `untyped`.
fn to_prometheus_text(open: &str) -> String {
    let counters: HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, kind)| kind.trim() == "counter")
        .map(|(name, _)| name)
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            // OpenMetrics escapes quotes in HELP; 0.0.4 escapes only backslash and newline.
            let help = help.replace("\\\"", "\"");
            let name = family_name(name, &counters);
            out.push_str(&format!("# HELP {name} {help}\n"));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind = match kind.trim() {
                k @ ("counter" | "gauge" | "histogram" | "summary") => k,
                _ => "untyped",
            };
            out.push_str(&format!("# TYPE {} {kind}\n", family_name(name, &counters)));
        } else if line.starts_with('#') {
            continue;
        } else {
            let sample = line.split(" # ").next().unwrap_or(line);
            let metric = sample.split(['{', ' ']).next().unwrap_or("");
            let created = metric.strip_suffix("_created").is_some_and(|base| {
                counters.contains(base) || counters.contains(format!("{base}_total").as_str())
            });
            if created || sample.is_empty() {
                continue;
            }
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

fn family_name(name: &str, counters: &HashSet<&str>) -> String {
    if counters.contains(name) && !name.ends_with("_total") {
        format!("{name}_total")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.record_http("/v1/events", 200, 0.002);
        m.set_entities(3, 4);
        let text = m.render();
        assert!(
            text.contains("tributary_http_requests_total{route=\"/v1/events\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tributary_entities{kind=\"events\"} 4"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn negotiates_openmetrics_only_when_ranked_first() {
        use Format::*;
        for (accept, want) in [
            (None, PrometheusText),
            (Some("text/plain"), PrometheusText),
            (Some("*/*"), PrometheusText),
            (Some("application/openmetrics-text"), OpenMetrics),
            (Some("Application/OpenMetrics-Text; version=1.0.0"), OpenMetrics),
            (
                Some("application/openmetrics-text;q=0.5,text/plain;version=0.0.4"),
                PrometheusText,
            ),
            (
                Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=0"), PrometheusText),
            (Some("application/json"), PrometheusText),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn prometheus_text_names_counter_families_by_their_samples() {
        let m = Metrics::new();
        m.record_http("/v1/events", 200, 0.002);
        let text = m.render_as(Format::PrometheusText);
        assert!(
            text.contains("# HELP tributary_http_requests_total "),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tributary_http_requests_total counter"),
            "{text}"
        );
        assert!(
            !text.contains("# TYPE tributary_http_requests counter"),
            "{text}"
        );
        assert!(text.contains("# TYPE tributary_http_request_duration_seconds histogram"));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        let open = "# HELP a_seconds A \\\"quoted\\\" help.\n# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1\na_seconds_created 17 # {x=\"y\"} 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(open),
            "# HELP a_seconds_total A \"quoted\" help.\n# TYPE a_seconds_total counter\na_seconds_total 1\n"
        );
    }

    #[test]
    fn partner_gauges_follow_the_latest_scrape() {
        let m = Metrics::new();
        let health = |p: &str, at, n| PartnerHealth {
            partner: p.into(),
            last_success: at,
            consecutive_failures: n,
        };
        m.set_partners(&[health("a", Some(1_700_000_000), 0), health("b", None, 3)]);
        let text = m.render();
        assert!(
            text.contains(
                "tributary_partner_last_success_timestamp_seconds{partner=\"a\"} 1700000000"
            ),
            "{text}"
        );
        assert!(
            text.contains("tributary_partner_last_success_timestamp_seconds{partner=\"b\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("tributary_partner_consecutive_failures{partner=\"b\"} 3"),
            "{text}"
        );
        // A partner gone from the config is no longer reported.
        m.set_partners(&[health("a", Some(1_700_000_100), 0)]);
        let text = m.render();
        assert!(!text.contains("partner=\"b\""), "{text}");
    }

    fn gauge(text: &str, name: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn memory_gauges_follow_the_process() {
        const GROW: usize = 128 << 20;
        let m = Metrics::new();
        m.set_memory(0);
        let before = gauge(&m.render(), "tributary_process_resident_memory_bytes");
        // Touch every page so the kernel counts it resident.
        let mut block = vec![0u8; GROW];
        for i in (0..GROW).step_by(4096) {
            block[i] = 1;
        }
        m.set_memory(0);
        let text = m.render();
        std::hint::black_box(&block);
        let after = gauge(&text, "tributary_process_resident_memory_bytes");
        let peak = gauge(&text, "tributary_process_resident_memory_peak_bytes");
        assert!(
            after >= before + (GROW as u64) / 2,
            "resident {before} -> {after} after touching {GROW} bytes"
        );
        assert!(peak >= after, "peak {peak} below resident {after}");
    }
}
