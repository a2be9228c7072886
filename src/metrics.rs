//! Prometheus metrics for `GET /metrics`: syncs by partner and result, their durations, records and
//! rejections, HTTP requests by route and status. Store-derived gauges are set at scrape time.

use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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

pub struct Metrics {
    registry: Mutex<Registry>,
    syncs: Family<SyncLabels, Counter>,
    sync_seconds: Family<PartnerLabels, Histogram>,
    records_seen: Family<PartnerLabels, Counter>,
    rejections: Family<PartnerLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabels, Histogram>,
    entities: Family<KindLabels, Gauge>,
    renders: Family<RouteLabels, Counter>,
    resident: Gauge,
    resident_peak: Gauge,
    cache_bytes: Gauge,
}

/// The process's resident memory now and at its peak, in bytes (Linux: `/proc/self/status`;
/// `None` elsewhere or if unreadable).
pub fn resident_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resident memory in MiB for log lines (0 when unknown).
pub fn resident_mb() -> u64 {
    resident_bytes().map_or(0, |(now, _)| now >> 20)
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
        Metrics {
            resident,
            resident_peak,
            cache_bytes,
            registry: Mutex::new(registry),
            syncs,
            sync_seconds,
            records_seen,
            rejections,
            http_requests,
            http_seconds,
            entities,
            renders,
        }
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

    /// The Prometheus/OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
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
