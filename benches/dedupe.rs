//! Dedupe engine benchmark: pairwise precision/recall/F1 on labelled synthetic data, and resolve
//! time and peak memory at 10k, 100k and 1M records (each size in a fresh process so peak RSS is
//! its own). Run: `cargo bench --bench dedupe` (full) or `cargo bench --bench dedupe -- --quick`.

#[path = "common/synth.rs"]
mod synth;

use std::process::Command;
use std::time::Instant;

use tributary::dedupe::{resolve, Settings};
use tributary::model::RecordKind;

// The daemon's allocator (src/main.rs), so the figures are the daemon's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds this process has used (user + system, all threads): on a shared machine a
/// steadier figure than wall time for comparing two builds.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Resident memory now and at its peak, in MiB (0 when unknown), as the daemon's gauges read it.
fn memory_mb() -> (u64, u64) {
    tributary::metrics::resident_bytes().map_or((0, 0), |(now, peak)| (now >> 20, peak >> 20))
}

/// One measurement in this process; prints a JSON line.
fn one(kind: &str, n: usize) {
    let (kind, data) = match kind {
        "events" => (RecordKind::Events, synth::events(n, 50, 7)),
        _ => (RecordKind::Organisations, synth::organisations(n, 50, 7)),
    };
    let (rss_before, _) = memory_mb();
    let settings = Settings::default();
    let started = Instant::now();
    let cpu_before = cpu_secs();
    let res = resolve(kind, &data.records, &|_| false, &settings, &[]);
    // Survivorship is part of the work: the store merges each cluster as it writes it.
    let merged = res
        .clusters
        .iter()
        .map(|c| {
            tributary::dedupe::merge_cluster(c, &data.records)
                .partners
                .len()
        })
        .sum::<usize>();
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_before;
    assert_eq!(merged, data.records.len());
    let mut predicted = vec![0u32; data.records.len()];
    for (ci, c) in res.clusters.iter().enumerate() {
        for &m in &c.members {
            predicted[m] = ci as u32;
        }
    }
    let (p, r, f1) = synth::pairwise(&data.truth, &predicted);
    if std::env::var_os("DEDUPE_DEBUG").is_some() {
        // Show a sample of missed and wrong pairs with the engine's evidence, to tune weights.
        let feats: Vec<_> = data
            .records
            .iter()
            .map(|r| tributary::dedupe::features::of(&r.payload))
            .collect();
        let mut shown = 0;
        for c in &res.clusters {
            let first = c.members[0];
            if let Some(&other) = c
                .members
                .iter()
                .find(|&&m| data.truth[m] != data.truth[first])
            {
                if shown < 15 {
                    shown += 1;
                    let s = tributary::dedupe::score::score(&feats[first], &feats[other], 0);
                    eprintln!(
                        "JOINED {:?}\n  {:?}\n  {:?}\n",
                        s.evidence, data.records[first].payload, data.records[other].payload
                    );
                }
            }
        }
        let (mut missed, mut wrong) = (0, 0);
        for i in 0..data.records.len() {
            for j in i + 1..(i + 6).min(data.records.len()) {
                let same_truth = data.truth[i] == data.truth[j];
                let same_pred = predicted[i] == predicted[j];
                if same_truth != same_pred && (if same_truth { missed < 15 } else { wrong < 15 }) {
                    if same_truth {
                        missed += 1
                    } else {
                        wrong += 1
                    }
                    let s = tributary::dedupe::score::score(&feats[i], &feats[j], 0);
                    eprintln!(
                        "{} {:?}\n  {:?}\n  {:?}\n",
                        if same_truth { "MISSED" } else { "WRONG" },
                        s.evidence,
                        data.records[i].payload,
                        data.records[j].payload
                    );
                }
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "kind": kind.as_str(), "records": data.records.len(), "resolve_secs": secs, "resolve_cpu_secs": cpu,
            "peak_rss_mb": memory_mb().1, "data_rss_mb": rss_before,
            "precision": p, "recall": r, "f1": f1,
            "clusters": res.clusters.len(), "review": res.review.len(),
        })
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let kind = args
            .get(i + 1)
            .map(String::as_str)
            .unwrap_or("organisations");
        let n = args
            .get(i + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        one(kind, n);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let runs: Vec<(&str, usize)> = if quick {
        vec![("organisations", 10_000), ("events", 10_000)]
    } else {
        vec![
            ("organisations", 10_000),
            ("organisations", 100_000),
            ("organisations", 1_000_000),
            ("events", 10_000),
            ("events", 100_000),
        ]
    };
    println!(
        "{:<14} {:>9} {:>9} {:>8} {:>8} {:>9} {:>7} {:>7} {:>7}",
        "kind", "records", "secs", "rec/s", "peak MB", "data MB", "P", "R", "F1"
    );
    let exe = std::env::current_exe().expect("own path");
    for (kind, n) in runs {
        let out = Command::new(&exe)
            .args(["--one", kind, &n.to_string()])
            .output()
            .expect("run measurement");
        let line = String::from_utf8_lossy(&out.stdout);
        let Some(v) = line
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        else {
            eprintln!(
                "{kind} {n}: no result ({})",
                String::from_utf8_lossy(&out.stderr)
            );
            std::process::exit(1);
        };
        let secs = v["resolve_secs"].as_f64().unwrap_or(0.0);
        let records = v["records"].as_f64().unwrap_or(0.0);
        println!(
            "{:<14} {:>9} {:>9.3} {:>8.0} {:>8} {:>9} {:>7.4} {:>7.4} {:>7.4}",
            kind,
            records,
            secs,
            records / secs.max(1e-9),
            v["peak_rss_mb"],
            v["data_rss_mb"],
            v["precision"].as_f64().unwrap_or(0.0),
            v["recall"].as_f64().unwrap_or(0.0),
            v["f1"].as_f64().unwrap_or(0.0),
        );
    }
}
