//! Entity-resolution quality on data the engine was not tuned on: labelled UK listings from
//! `common/uk_listings.rs` (pairwise and B-cubed scores, cluster purity, review-queue precision,
//! time and peak memory, each measurement in a fresh process), and the real labelled pairs in
//! `../shared/dedupe-pairs`, each pair synced on its own through the real binary.
//!
//! `cargo bench --bench resolution -- [--tune | --holdout | --seed N] [--entities N] [--quick]
//! [--only organisations,events,pairs]`. `DEDUPE_DEBUG=1` (or a sample size) prints sample false
//! merges and misses with the engine's evidence, and which kinds of case they come from.

#[path = "common/uk_listings.rs"]
mod uk_listings;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use tributary::dedupe::{resolve, Resolution, Settings};
use tributary::model::{Payload, RecordKind};
use tributary::store::records::StoredRecord;

const TUNE_SEED: u64 = 1;
const HOLDOUT_SEED: u64 = 2;

/// Resident memory now and at its peak, in MiB (0 when unknown), as the daemon's gauges read it.
fn memory_mb() -> (u64, u64) {
    tributary::metrics::resident_bytes().map_or((0, 0), |(now, peak)| (now >> 20, peak >> 20))
}

// ---------------------------------------------------------------------------------------------
// One generated measurement (runs in its own process)

/// The `[dedupe]` settings a deployment gets when its config says nothing, read through the real
/// config loader, so the bench measures what operators run.
fn deployment_settings() -> Settings {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tributary.toml");
    std::fs::write(dir.path().join("p.json"), r#"{"organisations": []}"#).expect("write feed");
    let toml = format!(
        "[store]\npath = \"store.db\"\n\n{}",
        partner_toml("p", "p.json")
    );
    std::fs::write(&path, toml).expect("write config");
    tributary::config::load(&path)
        .map(|c| c.dedupe)
        .unwrap_or_else(|e| panic!("a minimal config does not load: {e}"))
}

/// Cluster label per record; panics unless every record is in exactly one cluster.
fn labels(res: &Resolution, n: usize) -> Vec<u32> {
    let mut predicted = vec![u32::MAX; n];
    for (ci, c) in res.clusters.iter().enumerate() {
        assert!(!c.members.is_empty(), "an empty cluster {}", c.entity_id);
        for &m in &c.members {
            assert!(m < n, "cluster member {m} out of range");
            assert_eq!(predicted[m], u32::MAX, "record {m} in two clusters");
            predicted[m] = ci as u32;
        }
    }
    assert!(
        predicted.iter().all(|&p| p != u32::MAX),
        "a record in no cluster"
    );
    let ids: HashSet<&str> = res.clusters.iter().map(|c| c.entity_id.as_str()).collect();
    assert_eq!(ids.len(), res.clusters.len(), "two clusters share an id");
    predicted
}

/// The clusters an admin would end with by answering *Same* to every queued pair: each pair's
/// two clusters joined.
fn accepting_every_pair(predicted: &[u32], res: &Resolution) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..res.clusters.len() as u32).collect();
    fn root(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    for q in &res.review {
        let (a, b) = (
            root(&mut parent, predicted[q.a]),
            root(&mut parent, predicted[q.b]),
        );
        parent[a.max(b) as usize] = a.min(b);
    }
    predicted.iter().map(|&c| root(&mut parent, c)).collect()
}

/// Per predicted cluster: (records, distinct true entities).
fn purity(truth: &[u32], res: &Resolution) -> Vec<(usize, usize)> {
    res.clusters
        .iter()
        .map(|c| {
            let distinct: HashSet<u32> = c.members.iter().map(|&m| truth[m]).collect();
            (c.members.len(), distinct.len())
        })
        .collect()
}

fn one(kind: &str, seed: u64, entities: usize) {
    let (kind, data) = match kind {
        "events" => (RecordKind::Events, uk_listings::events(entities, seed)),
        _ => (
            RecordKind::Organisations,
            uk_listings::organisations(entities, seed),
        ),
    };
    let n = data.records.len();
    let (rss_before, _) = memory_mb();
    let settings = deployment_settings();
    let started = Instant::now();
    let res = resolve(kind, &data.records, &|_| false, &settings, &[]);
    // Survivorship is part of the work: the store merges each cluster as it writes it.
    let merged: usize = res
        .clusters
        .iter()
        .map(|c| {
            tributary::dedupe::merge_cluster(c, &data.records)
                .partners
                .len()
        })
        .sum();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(merged, n, "survivorship lost or invented partner records");
    let predicted = labels(&res, n);
    let (p, r, f1) = uk_listings::pairwise(&data.truth, &predicted);
    let (bp, br, bf1) = uk_listings::bcubed(&data.truth, &predicted);
    let (_, _, accept_all_f1) =
        uk_listings::pairwise(&data.truth, &accepting_every_pair(&predicted, &res));
    let pure = purity(&data.truth, &res);
    let largest = pure.iter().copied().max().unwrap_or((0, 0));
    let most_mixed = pure
        .iter()
        .copied()
        .max_by_key(|&(r, e)| (e, r))
        .unwrap_or((0, 0));
    let over3 = pure.iter().filter(|&&(_, e)| e > 3).count();
    let review_true = res
        .review
        .iter()
        .filter(|q| data.truth[q.a] == data.truth[q.b])
        .count();
    check_generator(kind, seed, &data);
    if let Some(sample) = debug_sample() {
        debug(&data, &res, &predicted, sample);
    }
    println!(
        "{}",
        serde_json::json!({
            "kind": kind.as_str(), "seed": seed, "entities": entities, "records": n,
            "resolve_secs": secs, "peak_rss_mb": memory_mb().1,
            "data_rss_mb": rss_before,
            "precision": p, "recall": r, "f1": f1,
            "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": bf1,
            "clusters": res.clusters.len(),
            "largest_records": largest.0, "largest_entities": largest.1,
            "most_mixed_records": most_mixed.0, "most_mixed_entities": most_mixed.1,
            "clusters_over_3_entities": over3,
            "review": res.review.len(), "review_true": review_true,
            "review_precision": if res.review.is_empty() { serde_json::Value::Null }
                else { serde_json::json!(review_true as f64 / res.review.len() as f64) },
            "accept_all_f1": accept_all_f1,
        })
    );
}

/// The data is what the generator promises: the same for the same seed, organisations listed by
/// 2–8 partners and events by 1–5, never twice by one partner.
fn check_generator(kind: RecordKind, seed: u64, data: &uk_listings::Labelled) {
    let (listings, again) = match kind {
        RecordKind::Organisations => (2..=8, uk_listings::organisations(300, seed)),
        RecordKind::Events => (1..=5, uk_listings::events(300, seed)),
    };
    let prefix = |d: &uk_listings::Labelled| -> Vec<String> {
        d.records
            .iter()
            .take(again.records.len() / 2)
            .map(|r| format!("{} {} {:?}", r.partner, r.record_id, r.payload))
            .collect()
    };
    let small = match kind {
        RecordKind::Organisations => uk_listings::organisations(300, seed),
        RecordKind::Events => uk_listings::events(300, seed),
    };
    assert_eq!(
        prefix(&again),
        prefix(&small),
        "the generator is not deterministic"
    );
    let mut per_entity: HashMap<u32, HashSet<&str>> = HashMap::new();
    for (r, &t) in data.records.iter().zip(&data.truth) {
        assert!(
            per_entity.entry(t).or_default().insert(r.partner.as_str()),
            "entity {t} listed twice by {}",
            r.partner
        );
    }
    let counts: Vec<usize> = per_entity.values().map(HashSet::len).collect();
    assert!(
        counts.iter().all(|c| listings.contains(c)),
        "listings per entity outside {listings:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Debug output for tuning

fn debug_sample() -> Option<usize> {
    let v = std::env::var("DEDUPE_DEBUG").ok()?;
    Some(v.parse().unwrap_or(12))
}

/// The engine's own words for a pair. (The one place this bench reaches into the scorer.)
fn explain(a: &StoredRecord, b: &StoredRecord) -> String {
    let fa = tributary::dedupe::features::of(&a.payload);
    let fb = tributary::dedupe::features::of(&b.payload);
    let s = tributary::dedupe::score::score(&fa, &fb, deployment_settings().event_tolerance_secs);
    format!("{:.1} {:?}", s.weight, s.evidence)
}

fn show(r: &StoredRecord) -> String {
    match &r.payload {
        Payload::Organisation(o) => format!(
            "[{}] {:?} ch={:?} co={:?} oid={:?} pc={:?} town={:?} street={:?} tel={:?} web={:?} mail={:?}",
            r.partner,
            o.name,
            o.identifiers.charity_number,
            o.identifiers.company_number,
            o.identifiers.org_id,
            o.address.postcode,
            o.address.locality,
            o.address.street,
            o.phone,
            o.website,
            o.email
        ),
        Payload::Event(e) => format!(
            "[{}] {:?} {} tz={:?} allday={} rrule={:?} venue={:?} addr={:?} pc={:?} online={} loc_url={:?} url={:?} booking={:?}",
            r.partner,
            e.title,
            e.start.to_rfc3339(),
            e.timezone,
            e.all_day,
            e.recurrence,
            e.location.name,
            e.location.address,
            e.location.postcode,
            e.location.online,
            e.location.url,
            e.url,
            e.booking_url
        ),
    }
}

fn debug(data: &uk_listings::Labelled, res: &Resolution, predicted: &[u32], sample: usize) {
    let recs = &data.records;
    // Which kinds of case the errors come from.
    let mut wrong_by_tag: BTreeMap<&str, u64> = BTreeMap::new();
    let mut missed_by_tag: BTreeMap<&str, u64> = BTreeMap::new();
    let mut wrong = Vec::new();
    for c in &res.clusters {
        for (x, &i) in c.members.iter().enumerate() {
            for &j in &c.members[x + 1..] {
                if data.truth[i] != data.truth[j] {
                    *wrong_by_tag.entry(data.tags[i]).or_default() += 1;
                    if wrong.len() < sample * 20 {
                        wrong.push((i, j));
                    }
                }
            }
        }
    }
    let mut by_truth: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, &t) in data.truth.iter().enumerate() {
        by_truth.entry(t).or_default().push(i);
    }
    let mut truths: Vec<_> = by_truth.into_iter().collect();
    truths.sort_unstable_by_key(|t| t.0);
    let mut missed = Vec::new();
    for (_, members) in &truths {
        for (x, &i) in members.iter().enumerate() {
            for &j in &members[x + 1..] {
                if predicted[i] != predicted[j] {
                    *missed_by_tag.entry(data.tags[i]).or_default() += 1;
                    if missed.len() < sample * 20 {
                        missed.push((i, j));
                    }
                }
            }
        }
    }
    eprintln!("false-merge pairs by case: {wrong_by_tag:?}");
    eprintln!("missed pairs by case:      {missed_by_tag:?}");
    let mut mixed: Vec<&tributary::dedupe::Cluster> = res.clusters.iter().collect();
    mixed.sort_by_key(|c| {
        let d: HashSet<u32> = c.members.iter().map(|&m| data.truth[m]).collect();
        std::cmp::Reverse((d.len(), c.members.len()))
    });
    for c in mixed.iter().take(3) {
        let d: HashSet<u32> = c.members.iter().map(|&m| data.truth[m]).collect();
        if d.len() < 2 {
            break;
        }
        eprintln!(
            "\nMIXED CLUSTER {} records from {} entities, e.g.:",
            c.members.len(),
            d.len()
        );
        for &m in c.members.iter().take(sample) {
            eprintln!("  #{} {} {}", data.truth[m], data.tags[m], show(&recs[m]));
        }
    }
    // Spread the samples over the list rather than the first few clusters.
    let spread = |v: &[(usize, usize)]| -> Vec<(usize, usize)> {
        let step = (v.len() / sample.max(1)).max(1);
        v.iter().step_by(step).take(sample).copied().collect()
    };
    for (i, j) in spread(&wrong) {
        eprintln!(
            "\nWRONG ({} / {}) {}\n  {}\n  {}",
            data.tags[i],
            data.tags[j],
            explain(&recs[i], &recs[j]),
            show(&recs[i]),
            show(&recs[j])
        );
    }
    for (i, j) in spread(&missed) {
        eprintln!(
            "\nMISSED ({}) {}\n  {}\n  {}",
            data.tags[i],
            explain(&recs[i], &recs[j]),
            show(&recs[i]),
            show(&recs[j])
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Real labelled pairs through the real binary

fn binary() -> PathBuf {
    // The bench runs from target/<profile>/deps; cargo builds the binary beside that folder.
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(|d| d.join("tributary")));
    match beside {
        Some(p) if p.exists() => p,
        _ => PathBuf::from(env!("CARGO_BIN_EXE_tributary")),
    }
}

/// One side of a labelled pair as a partner's organisation record (tributary-json). The
/// organisations file names the organisation `o_name` (`l_name` is the location, not the body).
fn hsds_org(v: &serde_json::Value, id: &str) -> serde_json::Value {
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let street = match (s("address_1"), s("address_2")) {
        (Some(a), Some(b)) => Some(format!("{a}, {b}")),
        (a, b) => a.or(b),
    };
    let mut org = serde_json::json!({
        "id": id,
        "name": s("o_name").or_else(|| s("name")).unwrap_or_default(),
        "address": {"street": street, "locality": s("city"), "region": s("state_province"), "postcode": s("postal_code")},
    });
    if let Some(u) = s("o_url") {
        org["website"] = serde_json::json!(u);
    }
    org
}

struct LabelledPair {
    a: serde_json::Value,
    b: serde_json::Value,
    same: bool,
}

/// Pairs read at organisation level: the same organisation when labelled `match` or when both
/// records carry the same `organization_id` (see the data's README).
fn load_pairs(file: &str) -> Vec<LabelledPair> {
    let path = format!(
        "{}/../shared/dedupe-pairs/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    for (label, matched) in [("match", true), ("distinct", false)] {
        for entry in doc[label].as_array().into_iter().flatten() {
            let pair = &entry["__value__"];
            let (a, b) = (&pair[0], &pair[1]);
            let same_org = a["organization_id"].as_str().is_some()
                && a["organization_id"] == b["organization_id"];
            out.push(LabelledPair {
                a: a.clone(),
                b: b.clone(),
                same: matched || same_org,
            });
        }
    }
    out
}

fn partner_toml(id: &str, file: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"{id}\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{file}\"\nretries = 0\n\n"
    )
}

fn run_ok(bin: &Path, config: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "tributary {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Syncs the pair as two partners' feeds into a fresh store; true when they became one entity.
fn resolved_as_one(bin: &Path, pair: &LabelledPair) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, rec, id) in [("left.json", &pair.a, "l1"), ("right.json", &pair.b, "r1")] {
        let feed = serde_json::json!({ "organisations": [hsds_org(rec, id)] });
        std::fs::write(dir.path().join(file), feed.to_string()).expect("write feed");
    }
    let config = dir.path().join("tributary.toml");
    let mut toml = String::from("[store]\npath = \"store.db\"\n\n");
    toml.push_str(&partner_toml("left", "left.json"));
    toml.push_str(&partner_toml("right", "right.json"));
    std::fs::write(&config, toml).expect("write config");
    run_ok(bin, &config, &["sync"]);
    let text = run_ok(
        bin,
        &config,
        &["export", "--kind", "organisations", "--format", "json"],
    );
    let items: Vec<serde_json::Value> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("export is not JSON ({e}): {text}"));
    let partners: usize = items
        .iter()
        .map(|o| o["partners"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(partners, 2, "both records must be in the store: {text}");
    assert!(
        items.len() == 1 || items.len() == 2,
        "two records became {} entities",
        items.len()
    );
    items.len() == 1
}

struct PairScore {
    file: &'static str,
    pairs: usize,
    same: usize,
    tp: usize,
    fp: usize,
    fn_: usize,
    secs: f64,
}

fn real_pairs(quick: bool) -> Vec<PairScore> {
    let bin = binary();
    assert!(bin.exists(), "no binary at {}", bin.display());
    let mut scores = Vec::new();
    for file in [
        "hsds-organisations-labelled-pairs.json",
        "hsds-addresses-labelled-pairs.json",
    ] {
        let mut pairs = load_pairs(file);
        if quick {
            // A spread of both labels, the same each run.
            let (same, diff): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|p| p.same);
            let take = |v: Vec<LabelledPair>| {
                let step = (v.len() / 6).max(1);
                v.into_iter().step_by(step).take(6).collect::<Vec<_>>()
            };
            pairs = take(same);
            pairs.extend(take(diff));
        }
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let results = Mutex::new(vec![None; pairs.len()]);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(pair) = pairs.get(i) else { break };
                    let one = resolved_as_one(&bin, pair);
                    if let Ok(mut r) = results.lock() {
                        r[i] = Some(one);
                    }
                });
            }
        });
        let results = results.into_inner().expect("results");
        let mut sc = PairScore {
            file,
            pairs: pairs.len(),
            same: pairs.iter().filter(|p| p.same).count(),
            tp: 0,
            fp: 0,
            fn_: 0,
            secs: started.elapsed().as_secs_f64(),
        };
        let show = debug_sample();
        for (pair, got) in pairs.iter().zip(&results) {
            let got = got.unwrap_or_else(|| panic!("a pair of {file} was not resolved"));
            match (pair.same, got) {
                (true, true) => sc.tp += 1,
                (false, true) => sc.fp += 1,
                (true, false) => sc.fn_ += 1,
                (false, false) => {}
            }
            if show.is_some() && pair.same != got {
                eprintln!(
                    "{} {file}\n  {}\n  {}",
                    if got { "WRONG" } else { "MISSED" },
                    hsds_org(&pair.a, "a"),
                    hsds_org(&pair.b, "b")
                );
            }
        }
        scores.push(sc);
    }
    scores
}

// ---------------------------------------------------------------------------------------------

struct Args {
    seed: u64,
    entities: usize,
    quick: bool,
    only: Vec<String>,
}

fn parse_args(args: &[String]) -> Args {
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    let quick = args.iter().any(|a| a == "--quick");
    let seed = value("--seed").and_then(|s| s.parse().ok()).unwrap_or(
        if args.iter().any(|a| a == "--holdout") {
            HOLDOUT_SEED
        } else {
            TUNE_SEED
        },
    );
    let entities = value("--entities")
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 1_000 } else { 20_000 });
    let only = value("--only")
        .map(|s| s.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| vec!["organisations".into(), "events".into(), "pairs".into()]);
    Args {
        seed,
        entities,
        quick,
        only,
    }
}

fn measure(kind: &str, seed: u64, entities: usize) -> serde_json::Value {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(&exe)
        .args(["--one", kind, &seed.to_string(), &entities.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run measurement");
    assert!(
        out.status.success(),
        "{kind} measurement failed ({})",
        out.status
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap_or_else(|| panic!("{kind}: no result in {text}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let get = |k: usize| args.get(i + k).cloned().unwrap_or_default();
        one(
            &get(1),
            get(2).parse().unwrap_or(TUNE_SEED),
            get(3).parse().unwrap_or(1_000),
        );
        return;
    }
    let a = parse_args(&args);
    let mut generated = Vec::new();
    for kind in ["organisations", "events"] {
        if a.only.iter().any(|o| o == kind) {
            generated.push(measure(kind, a.seed, a.entities));
        }
    }
    let pairs = if a.only.iter().any(|o| o == "pairs") {
        real_pairs(a.quick)
    } else {
        Vec::new()
    };
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let seed_name = match a.seed {
        TUNE_SEED => "tuning",
        HOLDOUT_SEED => "held-back",
        _ => "other",
    };
    println!(
        "entity resolution on independent UK listings: seed {} ({seed_name}), {} true entities per kind, commit {commit}",
        a.seed, a.entities
    );
    if !generated.is_empty() {
        println!(
            "{:<14} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>11} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7}",
            "kind",
            "records",
            "P",
            "R",
            "F1",
            "B3 F1",
            "clust",
            "largest r/e",
            ">3",
            "review",
            "rev P",
            "all F1",
            "secs",
            "peakMB"
        );
    }
    for v in &generated {
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<14} {:>7} {:>7.4} {:>7.4} {:>7.4} {:>7.4} {:>7} {:>11} {:>5} {:>7} {:>7} {:>7.4} {:>7.2} {:>7}",
            v["kind"].as_str().unwrap_or(""),
            v["records"],
            f("precision"),
            f("recall"),
            f("f1"),
            f("bcubed_f1"),
            v["clusters"],
            format!("{}/{}", v["largest_records"], v["largest_entities"]),
            v["clusters_over_3_entities"],
            v["review"],
            v["review_precision"].as_f64().map_or("-".to_string(), |p| format!("{p:.3}")),
            f("accept_all_f1"),
            f("resolve_secs"),
            v["peak_rss_mb"],
        );
    }
    if !pairs.is_empty() {
        println!(
            "real pairs (organisation level, each through the binary){}",
            if a.quick { ", quick sample" } else { "" }
        );
        println!(
            "{:<40} {:>6} {:>6} {:>5} {:>5} {:>5} {:>7} {:>7} {:>7}",
            "file", "pairs", "same", "TP", "FP", "FN", "P", "R", "secs"
        );
    }
    for s in &pairs {
        let p = if s.tp + s.fp == 0 {
            1.0
        } else {
            s.tp as f64 / (s.tp + s.fp) as f64
        };
        let r = if s.same == 0 {
            1.0
        } else {
            s.tp as f64 / s.same as f64
        };
        println!(
            "{:<40} {:>6} {:>6} {:>5} {:>5} {:>5} {:>7.4} {:>7.4} {:>7.1}",
            s.file, s.pairs, s.same, s.tp, s.fp, s.fn_, p, r, s.secs
        );
    }
    for v in &generated {
        println!("{v}");
    }
}
