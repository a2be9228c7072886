//! Scale benchmark of the real daemon: generates 50 partners' feeds (tributary-json directories and
//! iCalendar event feeds, overlapping listings, some recurring events), serves them from a real
//! HTTP server on 127.0.0.1 with ETags, and measures with the release binary: a full first sync, an
//! unchanged re-sync (304s only), a sync with 1% changed, peak RSS, calendar.ics and /v1/events
//! latency, load with `wrk` (the calendar also against nginx serving the same bytes), a Python
//! `icalendar` merge of the same .ics feeds as a baseline, and with `--peers <dir>` the calendar
//! mergers `mergecal` and `open-web-calendar` on them.
//!
//! `cargo bench --bench scale -- --orgs 100000 --events 20000` (one size);
//! `cargo bench --bench scale -- --quick` (smoke: 5k organisations, 2k events).
//!
//! No figure is printed for a step that failed: every command's exit status, every sync's run
//! results and the store's record counts are checked first, and a failure ends the bench with
//! exit status 1 (so CI's smoke run fails).

#[path = "common/nginx.rs"]
mod nginx;
#[path = "common/synth.rs"]
mod synth;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Response, StatusCode};
use tributary::model::{CanonicalEvent, Payload};
use tributary::publish::ical::{render, CalendarEntry, CalendarOptions};

const BIN: &str = env!("CARGO_BIN_EXE_tributary");
const PARTNERS: usize = 50;

type Files = Arc<RwLock<HashMap<String, (Vec<u8>, String)>>>;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn serve(
    State(files): State<Files>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let files = files.read().unwrap_or_else(|e| e.into_inner());
    let Some((body, etag)) = files.get(&name) else {
        return Response::builder()
            .status(404)
            .body(Body::empty())
            .unwrap_or_default();
    };
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header("etag", etag)
            .body(Body::empty())
            .unwrap_or_default();
    }
    Response::builder()
        .header("etag", etag)
        .body(Body::from(body.clone()))
        .unwrap_or_default()
}

fn start_server(files: Files) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/{name}", axum::routing::get(serve))
                .with_state(files);
            let l = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(l, app).await;
        });
    });
    format!("http://{addr}")
}

fn org_feed(records: &[&tributary::store::records::StoredRecord]) -> Vec<u8> {
    let items: Vec<serde_json::Value> = records
        .iter()
        .filter_map(|r| match &r.payload {
            Payload::Organisation(o) => {
                let mut v = serde_json::to_value(o).ok()?;
                v.as_object_mut()?
                    .insert("id".into(), r.record_id.clone().into());
                Some(v)
            }
            Payload::Event(_) => None,
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "organisations": items })).unwrap_or_default()
}

fn event_feed(records: &[&tributary::store::records::StoredRecord], partner: &str) -> Vec<u8> {
    let entries: Vec<CalendarEntry> = records
        .iter()
        .filter_map(|r| match &r.payload {
            Payload::Event(e) => Some(CalendarEntry {
                event: CanonicalEvent {
                    id: r.record_id.clone(),
                    event: e.clone(),
                    partners: vec![],
                    field_sources: Default::default(),
                    updated_at: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
                },
                sequence: 0,
                withdrawn: false,
            }),
            Payload::Organisation(_) => None,
        })
        .collect();
    render(
        &entries,
        &CalendarOptions {
            name: partner,
            description: None,
            now: chrono::DateTime::UNIX_EPOCH,
            uid_domain: partner,
        },
    )
    .into_bytes()
}

fn etag(body: &[u8], version: u32) -> String {
    format!("\"{}-{version}\"", body.len())
}

/// Ends the bench: a failed step has no figure to report.
fn fail(what: &str) -> ! {
    eprintln!("bench failed: {what}");
    std::process::exit(1);
}

/// Runs a command to completion, sampling its peak RSS; returns (seconds, peak MB, stdout), or
/// ends the bench with the command's stderr if it did not exit 0.
fn measured(cmd: &mut Command) -> (f64, u64, String) {
    let log = std::env::args().any(|a| a == "--log");
    let err_file = tempfile::NamedTempFile::new().unwrap_or_else(|e| fail(&e.to_string()));
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(if log {
            Stdio::inherit()
        } else {
            err_file
                .reopen()
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null())
        })
        .spawn()
        .unwrap_or_else(|e| fail(&format!("cannot start {cmd:?}: {e}")));
    let pid = child.id();
    let mut peak_kb = 0u64;
    // Read stdout as it comes, so a chatty child never blocks on a full pipe.
    let mut pipe = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(p) = pipe.as_mut() {
            let _ = std::io::Read::read_to_string(p, &mut text);
        }
        text
    });
    let status = loop {
        if let Some((_, peak)) = tributary::process_memory::resident_bytes_of(pid) {
            peak_kb = peak_kb.max(peak / 1024);
        }
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => fail(&format!("cannot wait for {cmd:?}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    let out = reader.join().unwrap_or_default();
    if !status.success() {
        let err = std::fs::read_to_string(err_file.path()).unwrap_or_default();
        fail(&format!("{cmd:?} exited with {status}\n{out}\n{err}"));
    }
    (secs, peak_kb / 1024, out)
}

/// Live source records and entities of `kind` in the store.
fn counts(store: &Path, kind: &str) -> (usize, usize) {
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| fail(&format!("cannot open {}: {e}", store.display())));
    let n = |sql: &str| -> usize {
        conn.query_row(sql, [kind], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .unwrap_or_else(|e| fail(&format!("{sql}: {e}")))
    };
    (
        n("SELECT COUNT(*) FROM source_records WHERE kind = ?1 AND deleted_at IS NULL"),
        n("SELECT COUNT(*) FROM entities WHERE kind = ?1 AND deleted_at IS NULL"),
    )
}

/// Checks the store after a sync: every generated record of each kind is stored live (none
/// rejected or lost), they resolved into at least one and at most as many entities, and each
/// partner's latest run has one of the `results` expected.
fn check_store(store: &Path, expected: &[(&str, usize)], results: &[&str]) {
    for &(kind, records) in expected {
        let (live, entities) = counts(store, kind);
        if live != records || entities == 0 || entities > live {
            fail(&format!(
                "{kind}: {live} live records of {records} generated, {entities} entities"
            ));
        }
    }
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| fail(&e.to_string()));
    let latest: Vec<(String, String)> = conn
        .prepare(
            "SELECT partner_id, result FROM runs WHERE id IN (SELECT MAX(id) FROM runs GROUP BY partner_id)",
        )
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    if latest.len() != PARTNERS {
        fail(&format!(
            "{} partners have runs, not {PARTNERS}",
            latest.len()
        ));
    }
    if let Some((p, r)) = latest.iter().find(|(_, r)| !results.contains(&r.as_str())) {
        fail(&format!(
            "partner {p}'s last run is {r}, expected one of {results:?}"
        ));
    }
}

/// Checks that the calendar at `url` (the window 2027-01-01 to 2028-01-01) carries every live
/// single event the store holds in that window, and says nothing of a cut; returns the number of
/// VEVENTs it holds (series and their overrides included).
fn check_calendar_whole(store: &Path, url: &str) -> usize {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", url])
        .output()
        .unwrap_or_else(|e| fail(&format!("curl: {e}")));
    let text = String::from_utf8_lossy(&out.stdout);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", &text));
    if let Some(cut) = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-tributary-truncated:"))
    {
        fail(&format!("calendar.ics was cut: {cut}"));
    }
    let uids: HashSet<&str> = body
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("UID:"))
        .filter_map(|u| u.strip_suffix("@tributary"))
        .collect();
    let conn =
        rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| fail(&e.to_string()));
    let (from, to) = (1_798_761_600i64, 1_830_297_600i64); // 2027-01-01, 2028-01-01 UTC
    let in_window: Vec<String> = conn
        .prepare(
            "SELECT id FROM entities WHERE kind = 'events' AND deleted_at IS NULL AND recurring = 0
             AND start_utc < ?1 AND end_utc >= ?2",
        )
        .and_then(|mut st| {
            st.query_map([to, from], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .unwrap_or_else(|e| fail(&e.to_string()));
    if in_window.is_empty() {
        fail("the store holds no single events in the calendar's window");
    }
    let missing = in_window
        .iter()
        .filter(|id| !uids.contains(id.as_str()))
        .count();
    if missing > 0 {
        fail(&format!(
            "calendar.ics lacks {missing} of the {} merged single events in its window",
            in_window.len()
        ));
    }
    println!(
        "calendar.ics is whole: all {} merged single events in the window are in it",
        in_window.len()
    );
    body.matches("BEGIN:VEVENT").count()
}

fn write_config(dir: &Path, base: &str, orgs: bool, events: bool) -> PathBuf {
    let mut text = String::from(
        "[store]\npath = \"store.db\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[scheduler]\ndefault_schedule = \"0 0 3 * * *\"\nmax_concurrent = 4\n\n",
    );
    for p in 0..PARTNERS {
        text.push_str(&format!(
            "[[partners]]\nid = \"partner-{p:02}\"\nname = \"Partner {p}\"\npriority = {}\n\n",
            p % 5
        ));
        if orgs {
            text.push_str(&format!("[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{base}/p{p:02}-orgs.json\"\nrate_limit_per_minute = 100000\ntimeout_secs = 600\nmax_body_bytes = 2000000000\n\n"));
        }
        if events {
            text.push_str(&format!("[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{base}/p{p:02}-events.ics\"\nrate_limit_per_minute = 100000\ntimeout_secs = 600\nmax_body_bytes = 2000000000\n\n"));
        }
    }
    let path = dir.join(format!("tributary-{}{}.toml", orgs as u8, events as u8));
    std::fs::write(&path, text).expect("config");
    path
}

/// One GET with curl: (milliseconds, bytes); ends the bench unless it answered 200.
fn http_ms(url: &str) -> (f64, usize) {
    let started = Instant::now();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download}",
            url,
        ])
        .output()
        .unwrap_or_else(|e| fail(&format!("curl: {e}")));
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.split_whitespace();
    if parts.next() != Some("200") {
        fail(&format!("GET {url} answered {text:?}"));
    }
    let size = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (ms, size)
}

fn wrk(url: &str) -> Option<String> {
    wrk_with(url, &[])
}

/// `wrk` with extra request headers (`-H "Name: value"`).
fn wrk_with(url: &str, headers: &[&str]) -> Option<String> {
    let mut cmd = Command::new("wrk");
    // A whole year's national calendar is ~47 MB: 32 connections sharing 2 cores with the daemon
    // take longer than wrk's default 2 s over one, which it would count as an error.
    cmd.args(["-t2", "-c32", "-d5s", "--timeout", "10s", "--latency"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Load figures count only good answers: any error or non-2xx/3xx answer fails the bench.
    if !out.status.success()
        || text.contains("Non-2xx or 3xx responses")
        || text.contains("Socket errors")
    {
        fail(&format!("wrk against {url} saw errors:\n{text}"));
    }
    let rps = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .to_string();
    let pct = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("?")
            .to_string()
    };
    Some(format!(
        "{rps} req/s, p50 {}, p99 {}",
        pct("50%"),
        pct("99%")
    ))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n_orgs = arg("--orgs", if quick { 5_000 } else { 100_000 });
    let n_events = arg("--events", if quick { 2_000 } else { 20_000 });
    println!("# scale: {n_orgs} organisations, {n_events} events, {PARTNERS} partners");
    let dir = tempfile::tempdir().expect("tempdir");
    // `--keep` leaves the generated feeds, config and store behind for profiling.
    let kept = std::env::args()
        .any(|a| a == "--keep")
        .then(|| dir.path().to_path_buf());

    let t = Instant::now();
    let orgs = synth::organisations(n_orgs, PARTNERS, 11);
    let events = synth::events(n_events, PARTNERS, 12);
    let files: Files = Arc::new(RwLock::new(HashMap::new()));
    let ics_dir = dir.path().join("ics");
    std::fs::create_dir_all(&ics_dir).expect("ics dir");
    let mut total_bytes = 0usize;
    for p in 0..PARTNERS {
        let pid = format!("partner-{p:02}");
        let o: Vec<_> = orgs.records.iter().filter(|r| r.partner == pid).collect();
        let e: Vec<_> = events.records.iter().filter(|r| r.partner == pid).collect();
        let (ob, eb) = (org_feed(&o), event_feed(&e, &pid));
        total_bytes += ob.len() + eb.len();
        std::fs::write(ics_dir.join(format!("p{p:02}.ics")), &eb).expect("ics");
        // Kept runs also leave the organisation feeds on disk, to replay a sync without the bench.
        if kept.is_some() {
            std::fs::write(ics_dir.join(format!("p{p:02}-orgs.json")), &ob).expect("orgs");
        }
        let mut f = files.write().unwrap_or_else(|e| e.into_inner());
        f.insert(format!("p{p:02}-orgs.json"), (ob.clone(), etag(&ob, 1)));
        f.insert(format!("p{p:02}-events.ics"), (eb.clone(), etag(&eb, 1)));
    }
    println!(
        "generated {} MB of feeds in {:.1}s",
        total_bytes / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    let base = start_server(files.clone());
    let config = write_config(dir.path(), &base, true, true);
    let store = dir.path().join("store.db");
    let all = [
        ("organisations", orgs.records.len()),
        ("events", events.records.len()),
    ];
    let sync = |full: bool| {
        let mut c = Command::new(BIN);
        c.arg("--config").arg(&config).arg("sync");
        if full {
            c.arg("--full");
        }
        // `--log` shows each sync's phases (resolution scope and timings) on stderr.
        let log = std::env::args().any(|a| a == "--log");
        c.env(
            "RUST_LOG",
            if log { "warn,tributary=debug" } else { "warn" },
        );
        measured(&mut c)
    };

    let (secs, mb, out) = sync(false);
    check_store(&store, &all, &["ok"]);
    println!(
        "full first sync: {secs:.2}s, peak RSS {mb} MB ({})",
        out.lines().last().unwrap_or("")
    );
    let (secs, mb, _) = sync(false);
    check_store(&store, &all, &["unchanged"]);
    println!("unchanged re-sync (conditional GETs, 304s): {secs:.3}s, peak RSS {mb} MB");

    // 1% of every partner's organisations change their description.
    {
        let mut f = files.write().unwrap_or_else(|e| e.into_inner());
        for p in 0..PARTNERS {
            let key = format!("p{p:02}-orgs.json");
            if let Some((body, _)) = f.get(&key).cloned() {
                let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if let Some(items) = v["organisations"].as_array_mut() {
                    let n = items.len();
                    for item in items.iter_mut().step_by(100.min(n.max(1))) {
                        item["description"] = "Updated this week".into();
                    }
                }
                let nb = serde_json::to_vec(&v).unwrap_or_default();
                let tag = etag(&nb, 2);
                f.insert(key, (nb, tag));
            }
        }
    }
    let (secs, mb, _) = sync(false);
    // Partners with events only in a changed feed still sync "ok"; none may fail or be held.
    check_store(&store, &all, &["ok"]);
    println!("sync with 1% of organisations changed: {secs:.2}s, peak RSS {mb} MB");

    // The daemon serving the result, on a port the OS picks (written to a file once bound).
    let address_file = dir.path().join("bound-address");
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("--bound-address-file")
        .arg(&address_file)
        .arg("run")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| fail(&format!("daemon: {e}")));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut web = String::new();
    loop {
        if let Ok(Some(st)) = daemon.try_wait() {
            fail(&format!("the daemon exited with {st}"));
        }
        if web.is_empty() {
            if let Ok(addr) = std::fs::read_to_string(&address_file) {
                web = format!("http://{}", addr.trim());
            }
        }
        let up = !web.is_empty()
            && Command::new("curl")
                .args(["-sf", &format!("{web}/healthz")])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
        if up {
            break;
        }
        if Instant::now() > deadline {
            let _ = daemon.kill();
            fail("the daemon did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cal = format!("{web}/calendar.ics?from=2027-01-01&to=2028-01-01");
    let (cold, size) = http_ms(&cal);
    let (warm, _) = http_ms(&cal);
    let count = check_calendar_whole(&store, &cal);
    println!("calendar.ics ({count} events, {} KB): first request {cold:.1} ms (query + render), cached {warm:.1} ms", size / 1024);
    let page = format!("{web}/v1/events?from=2027-01-01&to=2028-01-01&limit=50");
    let (p1, _) = http_ms(&page);
    println!("/v1/events page of 50: {p1:.1} ms");
    match (wrk(&cal), wrk(&page)) {
        (Some(c), Some(p)) => {
            println!("load, calendar.ics (wrk -t2 -c32 -d5s): {c}");
            println!("load, /v1/events page: {p}");
        }
        _ => println!("load: wrk not installed (apt-get install wrk)"),
    }
    against_nginx(&cal, dir.path());
    // What calendar clients really send: gzip accepted, and the ETag they hold.
    let gz_size = Command::new("curl")
        .args(["-s", "-H", "Accept-Encoding: gzip", &cal])
        .output()
        .map(|o| o.stdout.len())
        .unwrap_or(0);
    let etag = Command::new("curl")
        .args(["-sI", &cal])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("etag:"))
                .map(|l| l[5..].trim().to_string())
        })
        .unwrap_or_default();
    if let Some(g) = wrk_with(&cal, &["Accept-Encoding: gzip"]) {
        println!(
            "load, calendar.ics gzip ({} KB on the wire): {g}",
            gz_size / 1024
        );
    }
    if let Some(r) = wrk_with(&cal, &[&format!("If-None-Match: {etag}")]) {
        println!("load, calendar.ics revalidation (If-None-Match, 304): {r}");
    }
    let rss = tributary::process_memory::resident_bytes_of(daemon.id())
        .map_or("unknown".to_string(), |(_, peak)| {
            format!("{} kB", peak / 1024)
        });
    println!("daemon peak RSS while serving: VmHWM: {rss}");
    let _ = daemon.kill();
    let _ = daemon.wait();

    // Baseline: what a partner would script — merge the same .ics feeds with Python's icalendar,
    // dedupe by UID — against tributary syncing only those event feeds into a fresh store.
    let events_only = write_config(dir.path(), &base, false, true);
    let _ = std::fs::remove_file(&store);
    let (ours, ours_mb, _) = measured(
        Command::new(BIN)
            .arg("--config")
            .arg(&events_only)
            .arg("sync")
            .env("RUST_LOG", "warn"),
    );
    check_store(&store, &[("events", events.records.len())], &["ok"]);
    let ours_out = counts(&store, "events").1;
    let script = r#"
import sys, glob, icalendar
merged = icalendar.Calendar(); merged.add('prodid', '-//baseline//EN'); merged.add('version', '2.0')
seen = set()
for path in sorted(glob.glob(sys.argv[1] + '/*.ics')):
    cal = icalendar.Calendar.from_ical(open(path, 'rb').read())
    for ev in cal.walk('VEVENT'):
        uid = str(ev.get('UID'))
        if uid not in seen:
            seen.add(uid); merged.add_component(ev)
open(sys.argv[1] + '/merged.out', 'wb').write(merged.to_ical())
print(len(seen))
"#;
    let has_icalendar = Command::new("python3")
        .args(["-c", "import icalendar"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !has_icalendar {
        println!(
            "baseline: python3 with icalendar not available (pip install icalendar); no ratio"
        );
    } else {
        // `measured` ends the bench if the script fails; the ratio needs both runs good.
        let (py, _, n) = measured(Command::new("python3").args(["-c", script]).arg(&ics_dir));
        let kept_events: usize = n
            .trim()
            .parse()
            .unwrap_or_else(|_| fail(&format!("the Python baseline printed {n:?}")));
        if kept_events == 0 {
            fail("the Python baseline kept no events");
        }
        println!(
            "baseline, events only: Python icalendar merge (dedupe by UID, {kept_events} events kept) {py:.2}s vs tributary full sync with dedupe {ours:.2}s: {:.1}x",
            py / ours.max(1e-9)
        );
    }
    let ours = Merged {
        secs: ours,
        peak_mb: ours_mb,
        events_out: ours_out,
    };
    peers(&ics_dir, &base, &ours, events.records.len());
    if let Some(path) = kept {
        std::mem::forget(dir);
        println!("kept: {}", path.display());
    }
}

/// One merge of the partners' calendars: its time, peak memory and the events it published.
struct Merged {
    secs: f64,
    peak_mb: u64,
    events_out: usize,
}

/// The calendar mergers a partner could use instead, from `--peers <dir>` (a folder with their
/// executables, e.g. a venv's `bin/` after `pip install mergecal open-web-calendar`), on the
/// same `.ics` feeds: `mergecal` on the files, `open-web-calendar` fetching them from the same
/// server tributary synced from (its URL cache off). Each beside tributary's events-only sync.
fn peers(ics_dir: &Path, base: &str, ours: &Merged, events_in: usize) {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args
        .iter()
        .position(|a| a == "--peers")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
    else {
        println!("peers: not run (give --peers <folder with mergecal and open-web-calendar>)");
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(ics_dir)
        .unwrap_or_else(|e| fail(&e.to_string()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .collect();
    files.sort();
    let report = |name: &str, m: &Merged| {
        println!(
            "peer {name}: {:.2}s, peak {} MB, {} events out of {events_in} in; tributary {:.2}s, peak {} MB, {} events out ({:.1}x faster, {:.2}x the memory)",
            m.secs, m.peak_mb, m.events_out, ours.secs, ours.peak_mb, ours.events_out,
            m.secs / ours.secs.max(1e-9),
            ours.peak_mb as f64 / (m.peak_mb.max(1) as f64),
        );
    };
    let out = ics_dir.join("mergecal.out");
    let (secs, peak_mb, _) = measured(
        Command::new(dir.join("mergecal"))
            .args(&files)
            .arg("--output")
            .arg(&out),
    );
    report(
        "mergecal",
        &Merged {
            secs,
            peak_mb,
            events_out: vevents(&std::fs::read(&out).unwrap_or_default()),
        },
    );
    match open_web_calendar(&dir, base, &files) {
        Ok(m) => report("open-web-calendar", &m),
        Err(e) => println!("peer open-web-calendar: failed: {e}"),
    }
}

/// VEVENTs in a calendar's bytes.
fn vevents(ics: &[u8]) -> usize {
    let needle = b"BEGIN:VEVENT";
    ics.windows(needle.len()).filter(|w| w == needle).count()
}

/// Runs open-web-calendar's server and times one `/calendar.ics` merging every feed by URL.
fn open_web_calendar(dir: &Path, base: &str, files: &[PathBuf]) -> Result<Merged, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let cache = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut server = Command::new(dir.join("open-web-calendar"))
        .env("PORT", port.to_string())
        .env("CACHE_REQUESTED_URLS_FOR_SECONDS", "0")
        .env("CACHE_DIRECTORY", cache.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start it: {e}"))?;
    let root = format!("http://127.0.0.1:{port}");
    let up = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", &format!("{root}/about.html")])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !up {
        let _ = server.kill();
        return Err("its server did not answer".into());
    }
    // The feeds as tributary's partners publish them (`pNN-events.ics` beside the `pNN.ics` files).
    let query: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_stem()?.to_str().map(String::from))
        .map(|stem| format!("url={}", enc(&format!("{base}/{stem}-events.ics"))))
        .collect();
    let url = format!("{root}/calendar.ics?{}", query.join("&"));
    let body = cache.path().join("merged.ics");
    let pid = server.id();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = peak.clone();
        std::thread::spawn(move || loop {
            match tributary::process_memory::resident_bytes_of(pid) {
                Some((_, p)) => {
                    peak.fetch_max(p / 1024 / 1024, std::sync::atomic::Ordering::Relaxed);
                }
                None => return,
            }
            std::thread::sleep(Duration::from_millis(20));
        })
    };
    let started = Instant::now();
    let got = Command::new("curl")
        .args(["-s", "-f", "-o"])
        .arg(&body)
        .arg(&url)
        .status();
    let secs = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    let _ = sampler.join();
    if !got.is_ok_and(|s| s.success()) {
        return Err(format!("GET {root}/calendar.ics?… did not answer 200"));
    }
    Ok(Merged {
        secs,
        peak_mb: peak.load(std::sync::atomic::Ordering::Relaxed),
        events_out: vevents(&std::fs::read(&body).unwrap_or_default()),
    })
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The year's calendar body served by nginx from disk beside tributary serving it, alternating.
fn against_nginx(cal: &str, dir: &Path) {
    let body = Command::new("curl")
        .args(["-sf", cal])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if body.is_empty() {
        fail("the calendar did not answer");
    }
    let ngx_dir = dir.join("nginx");
    let _ = std::fs::create_dir_all(&ngx_dir);
    let files = [("calendar.ics".to_string(), body)];
    let (child, addr) = match nginx::start(&ngx_dir, &files, "text/calendar") {
        Ok(v) => v,
        Err(e) => {
            println!("load, calendar.ics against nginx: not run ({e})");
            return;
        }
    };
    let (ours, theirs) = (wrk(cal), wrk(&format!("http://{addr}/calendar.ics")));
    nginx::stop(child);
    if let (Some(o), Some(t)) = (ours, theirs) {
        let rate = |s: &str| -> f64 {
            s.split_whitespace()
                .next()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0.0)
        };
        println!(
            "load, calendar.ics against nginx serving the same {} KB from disk: tributary {o}; nginx {t}; ratio {:.2}x",
            files[0].1.len() / 1024,
            rate(&o) / rate(&t).max(1e-9)
        );
    }
}
