//! Organisation search benchmark of the real daemon: syncs `--orgs` synthetic organisations from
//! 50 partners' feed files, then measures `/v1/organisations?q=` — each query's first (uncached)
//! answer over many distinct queries (p50/p99), and load with `wrk` on a few queries against
//! nginx serving the very same response bytes from disk.
//!
//! `cargo bench --bench search` (1M organisations); `-- --orgs 100000`; `-- --quick` (20k);
//! `-- --keep` leaves the generated feeds and store behind.
//! A step that fails (a sync, the daemon, nginx, a non-200 answer) ends the bench with status 1.

#[path = "common/nginx.rs"]
mod nginx;
#[path = "common/synth.rs"]
mod synth;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tributary::model::Payload;

const BIN: &str = env!("CARGO_BIN_EXE_tributary");
const PARTNERS: usize = 50;

fn fail(what: &str) -> ! {
    eprintln!("bench failed: {what}");
    std::process::exit(1);
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn enc(q: &str) -> String {
    url::form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// One GET over a fresh connection: (status, body, milliseconds).
fn get(addr: &str, path: &str) -> (u16, Vec<u8>, f64) {
    let started = Instant::now();
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| fail(&format!("{addr}: {e}")));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| fail(&e.to_string()));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| fail("no header end"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        fail(&format!("{path}: chunked answer, not measured"));
    }
    (status, raw[split + 4..].to_vec(), ms)
}

/// `wrk -t2 -c32 -d5s`: (req/s, p50, p99) as wrk prints them.
fn wrk(url: &str) -> (f64, String, String) {
    let out = Command::new("wrk")
        .args(["-t2", "-c32", "-d5s", "--latency", url])
        .output()
        .unwrap_or_else(|e| fail(&format!("wrk: {e}")));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success()
        || text.contains("Non-2xx or 3xx responses")
        || text.contains("Socket errors")
    {
        fail(&format!("wrk against {url} saw errors:\n{text}"));
    }
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| fail(&format!("wrk printed no rate:\n{text}")));
    let pct = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    (rps, pct("50%"), pct("99%"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn write_feeds(dir: &Path, n: usize) -> Vec<tributary::model::Organisation> {
    let orgs = synth::organisations(n, PARTNERS, 11);
    let mut sample = Vec::new();
    for p in 0..PARTNERS {
        let pid = format!("partner-{p:02}");
        let items: Vec<serde_json::Value> = orgs
            .records
            .iter()
            .filter(|r| r.partner == pid)
            .filter_map(|r| match &r.payload {
                Payload::Organisation(o) => {
                    if sample.len() < 4096 && r.row_id % 97 == 0 {
                        sample.push(o.clone());
                    }
                    let mut v = serde_json::to_value(o).ok()?;
                    v.as_object_mut()?
                        .insert("id".into(), r.record_id.clone().into());
                    Some(v)
                }
                Payload::Event(_) => None,
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "organisations": items }))
            .unwrap_or_else(|e| fail(&e.to_string()));
        std::fs::write(dir.join(format!("p{p:02}-orgs.json")), body)
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    sample
}

fn write_config(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from(
        "[store]\npath = \"store.db\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[scheduler]\ndefault_schedule = \"0 0 3 * * *\"\nmax_concurrent = 4\n\n",
    );
    for p in 0..PARTNERS {
        text.push_str(&format!(
            "[[partners]]\nid = \"partner-{p:02}\"\nname = \"Partner {p}\"\npriority = {}\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"p{p:02}-orgs.json\"\ntimeout_secs = 600\nmax_body_bytes = 2000000000\n\n",
            p % 5
        ));
    }
    let path = dir.join("tributary.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| fail(&e.to_string()));
    path
}

fn start_daemon(dir: &Path, config: &Path) -> (Child, String) {
    let address_file = dir.join("bound-address");
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--bound-address-file")
        .arg(&address_file)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("daemon: {e}")));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(st)) = daemon.try_wait() {
            fail(&format!("the daemon exited with {st}"));
        }
        if let Ok(addr) = std::fs::read_to_string(&address_file) {
            let addr = addr.trim().to_string();
            if !addr.is_empty() && std::net::TcpStream::connect(&addr).is_ok() {
                return (daemon, addr);
            }
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            fail("the daemon did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = arg("--orgs", if quick { 20_000 } else { 1_000_000 });
    println!("# search: {n} organisations, {PARTNERS} partners");
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&e.to_string()));
    let t = Instant::now();
    let sample = write_feeds(dir.path(), n);
    println!("generated feeds in {:.1}s", t.elapsed().as_secs_f64());
    let config = write_config(dir.path());

    let t = Instant::now();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("sync")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|e| fail(&e.to_string()));
    if !out.status.success() {
        fail(&format!("sync: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let store = dir.path().join("store.db");
    let conn = rusqlite::Connection::open(&store).unwrap_or_else(|e| fail(&e.to_string()));
    let live: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM entities WHERE kind = 'organisations' AND deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| fail(&e.to_string()));
    let indexed: i64 = conn
        .query_row("SELECT COUNT(*) FROM organisations_search", [], |r| {
            r.get(0)
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    // A charity number as the store holds it (the feeds' own spellings vary).
    let charity: String = conn
        .query_row(
            "SELECT json_extract(body, '$.identifiers.charity_number') FROM entities
             WHERE kind = 'organisations' AND deleted_at IS NULL
               AND json_extract(body, '$.identifiers.charity_number') IS NOT NULL
             ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| fail(&e.to_string()));
    drop(conn);
    if live == 0 || indexed != live {
        fail(&format!(
            "{live} live organisations but {indexed} search rows"
        ));
    }
    println!(
        "first sync (with the search index): {:.1}s, {live} merged organisations indexed",
        t.elapsed().as_secs_f64()
    );

    let (mut daemon, web) = start_daemon(dir.path(), &config);

    // Uncached: every query asked once, so each answer is a real FTS query and rendering.
    // Words of names, towns, two-word phrases, prefixes, charity numbers and postcodes.
    let mut queries: Vec<String> = Vec::new();
    for o in sample.iter().take(300) {
        let words: Vec<&str> = o.name.split_whitespace().collect();
        match queries.len() % 6 {
            0 => queries.extend(words.first().map(|w| w.to_string())),
            1 => queries.extend(words.get(..2).map(|w| w.join(" "))),
            2 => queries.extend(
                words
                    .last()
                    .map(|w| w.chars().take(4.max(w.len() / 2)).collect::<String>()),
            ),
            3 => queries.extend(o.identifiers.charity_number.clone()),
            4 => queries.extend(o.address.postcode.clone()),
            _ => queries.push(o.name.clone()),
        }
    }
    queries.sort();
    queries.dedup();
    let mut cold: Vec<f64> = Vec::new();
    let mut empty = 0;
    for q in &queries {
        let (status, body, ms) = get(&web, &format!("/v1/organisations?q={}", enc(q)));
        if status != 200 {
            fail(&format!("q={q} answered {status}"));
        }
        if body.starts_with(b"{\"items\":[]") {
            empty += 1;
        }
        cold.push(ms);
    }
    cold.sort_by(f64::total_cmp);
    println!(
        "uncached (first request of each of {} distinct queries, {empty} with no result): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        cold.len(),
        percentile(&cold, 0.5),
        percentile(&cold, 0.9),
        percentile(&cold, 0.99),
        cold.last().copied().unwrap_or(f64::NAN)
    );

    // Under load (cached by query and change number), against nginx serving the same bytes.
    let town = synth::TOWNS[0].0;
    let loaded = ["club".to_string(), format!("{town} comm"), charity];
    let mut bodies = Vec::new();
    for (i, q) in loaded.iter().enumerate() {
        let path = format!("/v1/organisations?q={}", enc(q));
        let (status, body, first) = get(&web, &path);
        if status != 200 {
            fail(&format!("{path} answered {status}"));
        }
        let items = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["items"].as_array().map(Vec::len))
            .unwrap_or(0);
        println!(
            "q={q:?}: {items} items on the first page, {} bytes, first request {first:.1} ms",
            body.len()
        );
        bodies.push((format!("q{i}.json"), body, path));
    }
    let files: Vec<(String, Vec<u8>)> = bodies
        .iter()
        .map(|(n, b, _)| (n.clone(), b.clone()))
        .collect();
    let (nginx, ngx) =
        nginx::start(dir.path(), &files, "application/json").unwrap_or_else(|e| fail(&e));
    for ((name, body, path), q) in bodies.iter().zip(&loaded) {
        let (status, served, _) = get(&ngx, &format!("/{name}"));
        if status != 200 || &served != body {
            fail("nginx does not serve the same bytes");
        }
        // Alternating, so neither side has the machine to itself more than the other.
        let ours = wrk(&format!("http://{web}{path}"));
        let theirs = wrk(&format!("http://{ngx}/{name}"));
        println!(
            "load q={q:?} (wrk -t2 -c32 -d5s): tributary {:.0} req/s, p50 {}, p99 {}; nginx same bytes {:.0} req/s, p50 {}, p99 {}; ratio {:.2}x",
            ours.0, ours.1, ours.2, theirs.0, theirs.1, theirs.2,
            ours.0 / theirs.0.max(1e-9)
        );
    }
    nginx::stop(nginx);
    let _ = daemon.kill();
    let _ = daemon.wait();
    // `--keep` leaves the feeds, config and store behind (to time a sync by another build).
    if std::env::args().any(|a| a == "--keep") {
        println!("kept: {}", dir.keep().display());
    }
}
