//! Postcode-distance search at national scale: a store of 1M organisations spread over 200k
//! generated postcode centroids across Great Britain (loaded from an ONSPD-layout CSV), a share
//! of them (`--pointed`, per cent) placed by a partner-given point instead, then
//! `near`/`proximity` searches from random postcodes at several radii, each the store work behind
//! one API page (the grid cells of the box around the circle and the exact distance check,
//! over partner points and centroid-placed records alike, then the first 51 organisations in
//! name order). Prints load
//! time, per-radius median, p95 and worst, and what reloading the centroid file costs.
//!
//! `cargo bench --bench places -- [--orgs N] [--postcodes N] [--queries N] [--pointed PCT]`

use std::time::Instant;

use rusqlite::params;
use tributary::model::RecordKind;
use tributary::store::entities::Filter;
use tributary::store::{oruk_queries, places, Store};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn postcode(i: usize) -> String {
    // Distinct valid postcodes: area + district + sector + unit letters.
    const AREAS: [&str; 20] = [
        "AB", "B", "BS", "CF", "CW", "DH", "EH", "G", "HU", "IP", "L", "LS", "M", "NE", "NG", "OX",
        "PL", "S", "SK", "YO",
    ];
    const UNIT: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    let area = AREAS[i % AREAS.len()];
    let rest = i / AREAS.len();
    let district = rest % 99 + 1;
    let rest = rest / 99;
    let sector = rest % 10;
    let rest = rest / 10;
    let u1 = UNIT[rest % UNIT.len()] as char;
    let u2 = UNIT[(rest / UNIT.len()) % UNIT.len()] as char;
    format!("{area}{district} {sector}{u1}{u2}")
}

fn main() {
    let n_orgs = arg("--orgs", 1_000_000);
    let n_pcs = arg("--postcodes", 200_000);
    let n_queries = arg("--queries", 200);
    let pointed = arg("--pointed", 30).min(100);
    let mut rng = fastrand::Rng::with_seed(7);
    let dir = tempfile::tempdir().expect("temp dir");

    let csv_path = dir.path().join("onspd.csv");
    let mut csv = String::from("pcd,pcds,lat,long\n");
    let mut pcs = Vec::with_capacity(n_pcs);
    for i in 0..n_pcs {
        let pc = postcode(i);
        let (lat, lon) = (50.0 + rng.f64() * 8.5, -5.5 + rng.f64() * 7.2);
        csv.push_str(&format!("{},{pc},{lat:.6},{lon:.6}\n", pc.replace(' ', "")));
        pcs.push(pc);
    }
    std::fs::write(&csv_path, csv).expect("write csv");

    let store = Store::open(&dir.path().join("bench.db")).expect("open store");
    let started = Instant::now();
    let stats = places::load(&mut store.writer(), &csv_path).expect("load centroids");
    println!(
        "loaded {} centroids ({} skipped) in {:.2} s",
        stats.loaded,
        stats.skipped,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    {
        let mut w = store.writer();
        let tx = w.transaction().expect("tx");
        {
            let mut st = tx
                .prepare(
                    "INSERT INTO entities (id, kind, body, content_hash, sort_key, search_text,
                     categories, postcode_area, created_at, updated_at)
                     VALUES (?1, 'organisations', ?2, '', ?3, ?4, '|', ?5, ?6, ?6)",
                )
                .expect("prepare");
            for i in 0..n_orgs {
                let pc = &pcs[rng.usize(..pcs.len())];
                let name = format!("Community Group {i:07}");
                let mut address = serde_json::json!({ "postcode": pc });
                if rng.usize(..100) < pointed {
                    address["latitude"] = (50.0 + rng.f64() * 8.5).into();
                    address["longitude"] = (-5.5 + rng.f64() * 7.2).into();
                }
                let body = serde_json::json!({
                    "id": format!("org_{i:07}"), "name": name,
                    "address": address, "partners": [], "updated_at": "2027-01-01T00:00:00+00:00",
                })
                .to_string();
                let outward = pc.split(' ').next().unwrap_or_default();
                st.execute(params![
                    format!("org_{i:07}"),
                    body,
                    name.to_lowercase(),
                    name.to_lowercase(),
                    outward,
                    "2027-01-01T00:00:00Z"
                ])
                .expect("insert");
            }
        }
        tx.commit().expect("commit");
        w.execute_batch("ANALYZE").expect("analyze");
    }
    println!(
        "stored {n_orgs} organisations ({pointed}% with a partner-given point) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let conn = store.reader().expect("reader");
    let filter = Filter::default();
    for km in [1.0, 5.0, 20.0] {
        let mut times = Vec::with_capacity(n_queries);
        let mut finding = Vec::with_capacity(n_queries);
        let mut rows_found = 0usize;
        let mut found = 0usize;
        for _ in 0..n_queries {
            let centre_pc = &pcs[rng.usize(..pcs.len())];
            let t = Instant::now();
            let near = places::Near::around(&conn, centre_pc, km * 1000.0)
                .expect("centroid")
                .expect("known");
            let at = places::placed_near(&conn, RecordKind::Organisations, &near).expect("rows");
            finding.push(t.elapsed().as_secs_f64() * 1000.0);
            rows_found += at.len();
            let rows = oruk_queries::organisations_at(&conn, &filter, &at, None, 51).expect("page");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found += rows.len();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        finding.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "within {km:>4} km: median {:.2} ms, p95 {:.2} ms, worst {:.2} ms ({} queries, {:.1} organisations per page)",
            at(0.5),
            at(0.95),
            at(1.0),
            n_queries,
            found as f64 / n_queries as f64
        );
        // Where the time goes: finding the rows in the circle, then the name-ordered page of them.
        println!(
            "                 finding the rows: median {:.2} ms ({:.0} rows in the circle on average); the page: the rest",
            finding[finding.len() / 2],
            rows_found as f64 / n_queries as f64
        );
    }

    // Reloading the centroid file places every centroid-placed record again.
    drop(conn);
    let started = Instant::now();
    let stats = places::load(&mut store.writer(), &csv_path).expect("reload centroids");
    println!(
        "reloaded {} centroids and placed the records by them again in {:.1} s",
        stats.loaded,
        started.elapsed().as_secs_f64()
    );
}
