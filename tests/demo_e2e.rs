//! The bundled demo, end to end through the real daemon: the seed webinar re-posted by two partners
//! becomes one merged event in `/v1/events` and `/calendar.ics` with a stable UID, the HTTP caching
//! contract holds, and a real iCalendar client library reads the same events the JSON API lists.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

const WINDOW: &str = "from=2022-01-25&to=2022-01-26";

fn unfold(ics: &str) -> String {
    ics.replace("\r\n ", "").replace("\r\n\t", "")
}

/// (UID, SUMMARY) of every VEVENT in a calendar.
fn vevents(ics: &str) -> Vec<(String, String)> {
    let text = unfold(ics);
    let mut out = Vec::new();
    for block in text.split("BEGIN:VEVENT").skip(1) {
        let field = |name: &str| {
            block
                .lines()
                .find(|l| l.starts_with(&format!("{name}:")) || l.starts_with(&format!("{name};")))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        out.push((field("UID"), field("SUMMARY")));
    }
    out
}

fn webinar(base: &str) -> serde_json::Value {
    let page = json(&format!("{base}/v1/events?{WINDOW}"));
    let items: Vec<&serde_json::Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["title"]
                .as_str()
                .unwrap_or("")
                .to_lowercase()
                .contains("anchor institutions")
        })
        .collect();
    assert_eq!(
        items.len(),
        1,
        "the webinar should be listed once: {page:#}"
    );
    items[0].clone()
}

fn calendar_uid(base: &str) -> String {
    let (status, headers, ics) = blocking_get(&format!("{base}/calendar.ics?{WINDOW}")).unwrap();
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/calendar"));
    assert!(
        ics.contains("\r\n") && !ics.replace("\r\n", "").contains('\n'),
        "CRLF only"
    );
    let hits: Vec<(String, String)> = vevents(&ics)
        .into_iter()
        .filter(|(_, s)| s.to_lowercase().contains("anchor institutions"))
        .collect();
    assert_eq!(hits.len(), 1, "one VEVENT for the webinar:\n{ics}");
    hits[0].0.clone()
}

#[test]
fn seed_webinar_is_one_event_with_both_partners_and_a_stable_uid() {
    let env = TestEnv::demo();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The three partners synced concurrently; the last one resolved the batch.
    let pending: i64 = db(&env)
        .query_row("SELECT COUNT(*) FROM dirty_kinds", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0);

    let daemon = env.start();
    let ev = webinar(&daemon.base);
    let partners: Vec<&str> = ev["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partner"].as_str().unwrap())
        .collect();
    assert!(partners.contains(&"cvs-cheshire-east"), "{partners:?}");
    assert!(partners.contains(&"hcv-vcse"), "{partners:?}");
    assert!(
        partners.contains(&"hull-vcse"),
        "the RSS news post with the date in its text joins too: {partners:?}"
    );
    assert_eq!(ev["start"], "2022-01-25T13:00:00+00:00");
    let id = ev["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("evt_"));
    let uid = calendar_uid(&daemon.base);
    assert_eq!(uid, format!("{id}@tributary"));

    // One merged organisation is listed by two partners.
    let orgs = json(&format!("{}/v1/organisations?limit=500", daemon.base));
    let shared = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["partners"].as_array().unwrap().len() >= 2)
        .count();
    assert!(
        shared >= 1,
        "expected an organisation listed by two partners"
    );

    // The single-event route, and caching: ETag + If-None-Match → 304.
    let (status, headers, _) = blocking_get(&format!("{}/v1/events/{id}", daemon.base)).unwrap();
    assert_eq!(status, 200);
    for path in [
        format!("/v1/events?{WINDOW}"),
        format!("/calendar.ics?{WINDOW}"),
        "/v1/organisations".to_string(),
        format!("/v1/events/{id}"),
        "/healthz".to_string(),
    ] {
        let url = format!("{}{path}", daemon.base);
        let (status, headers, _) = blocking_get(&url).unwrap();
        assert_eq!(status, 200, "{path}");
        let etag = headers["etag"].to_str().unwrap().to_string();
        let (status, _, body) = get_with(&url, &[("if-none-match", &etag)]).unwrap();
        assert_eq!(status, 304, "{path}");
        assert!(body.is_empty());
    }
    assert!(headers.contains_key("last-modified"));

    // Errors are JSON naming the parameter.
    let (status, _, body) =
        blocking_get(&format!("{}/v1/events?from=yesterday", daemon.base)).unwrap();
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_parameter");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("from:"));
    let (status, _, _) = blocking_get(&format!("{}/v1/events/evt_nope", daemon.base)).unwrap();
    assert_eq!(status, 404);

    assert_eq!(daemon.stop(), Some(0), "clean stop on SIGTERM");

    // Full re-sync and a restart keep the id and UID.
    let out = env.cmd(&["sync", "--full"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    assert_eq!(webinar(&daemon.base)["id"], id.as_str());
    assert_eq!(calendar_uid(&daemon.base), uid);
    daemon.stop();
}

const PY_ICALENDAR: &str = r#"
import json, sys, icalendar
from datetime import datetime, date, timezone
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
out = []
for ev in cal.walk('VEVENT'):
    start = ev.decoded('DTSTART')
    if isinstance(start, datetime):
        start = start.astimezone(timezone.utc).isoformat()
    else:
        start = start.isoformat()
    out.append({'uid': str(ev['UID']), 'summary': str(ev['SUMMARY']), 'start': start,
                'recurring': 'RRULE' in ev, 'status': str(ev.get('STATUS', ''))})
print(json.dumps(out))
"#;

/// Checks a consumer's reading of calendar.ics against every event the JSON API lists.
fn check_consumer_matches_api(base: &str, window: &str, parsed: &[serde_json::Value], who: &str) {
    let by_uid: BTreeMap<String, &serde_json::Value> = parsed
        .iter()
        .map(|e| (e["uid"].as_str().unwrap().to_string(), e))
        .collect();
    assert_eq!(by_uid.len(), parsed.len(), "{who}: UIDs are unique");
    let mut url = format!("{base}/v1/events?{window}&limit=500");
    let mut checked = 0;
    loop {
        let page = json(&url);
        for item in page["items"].as_array().unwrap() {
            let uid = format!("{}@tributary", item["id"].as_str().unwrap());
            let cal = by_uid
                .get(&uid)
                .unwrap_or_else(|| panic!("{who}: {uid} missing from calendar.ics"));
            assert_eq!(cal["summary"], item["title"], "{who}: {uid}");
            if item.get("series_start").is_none() {
                let json_start =
                    chrono::DateTime::parse_from_rfc3339(item["start"].as_str().unwrap()).unwrap();
                let cal_start = cal["start"].as_str().unwrap();
                if item["all_day"].as_bool().unwrap_or(false) {
                    assert_eq!(
                        cal_start,
                        json_start.date_naive().to_string(),
                        "{who}: {uid}"
                    );
                } else {
                    let cal_start = chrono::DateTime::parse_from_rfc3339(cal_start).unwrap();
                    assert_eq!(cal_start, json_start, "{who}: {uid}");
                }
            } else {
                assert_eq!(cal["recurring"], true, "{who}: {uid}");
            }
            let cancelled = item["status"] == "cancelled";
            assert_eq!(cal["status"] == "CANCELLED", cancelled, "{who}: {uid}");
            checked += 1;
        }
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert!(checked >= 10, "{who}: checked only {checked} events");
}

#[test]
fn calendar_reads_in_real_clients_and_matches_the_json_api() {
    let env = TestEnv::demo();
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    let window = "from=2020-01-01&to=2030-01-01";
    let (status, _, ics) = blocking_get(&format!("{}/calendar.ics?{window}", daemon.base)).unwrap();
    assert_eq!(status, 200);
    let path = env.dir.path().join("merged.ics");
    std::fs::write(&path, &ics).unwrap();
    let path = path.to_str().unwrap();

    if let Some(parsed) = consumer(
        &python(),
        &["-c", PY_ICALENDAR, path],
        &["-c", "import icalendar"],
        "python3 with icalendar",
    ) {
        check_consumer_matches_api(&daemon.base, window, &parsed, "python icalendar");
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/consumers/parse_ics.mjs");
    let module = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/consumers/node_modules/ical.js/package.json"
    );
    if let Some(parsed) = consumer(
        "node",
        &[script, path],
        &["-e", &format!("require('fs').accessSync({module:?})")],
        "node with ical.js (npm ci --prefix tests/consumers)",
    ) {
        check_consumer_matches_api(&daemon.base, window, &parsed, "ical.js");
    }
    daemon.stop();
}

const PY_VALIDATE: &str = r#"
import json, sys, urllib.request, jsonschema
base, doc = sys.argv[1], json.load(open(sys.argv[2]))
schemas = doc['components']['schemas']
text = json.dumps(schemas).replace('#/components/schemas/', '#/$defs/')
defs = json.loads(text)
def check(path, name):
    body = json.load(urllib.request.urlopen(base + path))
    jsonschema.validate(body, {'$ref': '#/$defs/' + name, '$defs': defs})
    return body
orgs = check('/v1/organisations?limit=500', 'OrganisationPage')
for o in orgs['items'][:5]:
    check('/v1/organisations/' + o['id'], 'Organisation')
events = check('/v1/events?from=2020-01-01&to=2030-01-01&limit=500', 'EventPage')
for e in events['items'][:5]:
    check('/v1/events/' + e['id'], 'Event')
check('/v1/feeds/organisations', 'RpdePage')
check('/v1/feeds/events', 'RpdePage')
check('/healthz', 'Health')
check('/v1/licences', 'Licences')
print(json.dumps({'organisations': len(orgs['items']), 'events': len(events['items'])}))
"#;

#[test]
fn json_responses_validate_against_the_openapi_schemas() {
    let env = TestEnv::demo();
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    let doc = env.dir.path().join("openapi.json");
    let (status, _, text) = blocking_get(&format!("{}/openapi.json", daemon.base)).unwrap();
    assert_eq!(status, 200);
    std::fs::write(&doc, text).unwrap();
    let out = Command::new(python())
        .args(["-c", "import jsonschema"])
        .output();
    if !out.map(|o| o.status.success()).unwrap_or(false) {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 jsonschema is required in CI"
        );
        eprintln!("skipping: python3 jsonschema is not installed");
        return;
    }
    let out = Command::new(python())
        .args(["-c", PY_VALIDATE, &daemon.base, doc.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "schema validation failed: {}",
        stderr(&out)
    );
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(counts["organisations"].as_u64().unwrap() > 10, "{counts}");
    daemon.stop();
}

#[test]
fn calendar_from_stored_blocks_matches_one_rendered_from_event_bodies() {
    // Each event's VEVENT block is stored when it changes; a store written before that column
    // existed has none and the calendar renders from the JSON bodies. Both must say the same.
    let env = TestEnv::demo();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    // Each daemon binds a port of its own: the URL is built from the one running.
    let url = |d: &Daemon| {
        format!(
            "{}/calendar.ics?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
            d.base
        )
    };
    let (_, _, stored) = blocking_get(&url(&daemon)).unwrap();
    daemon.stop();
    let stored_blocks: i64 = db(&env)
        .query_row(
            "SELECT COUNT(*) FROM entities WHERE kind = 'events' AND ical IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(stored_blocks >= 20, "{stored_blocks}");
    db(&env)
        .execute("UPDATE entities SET ical = NULL", [])
        .unwrap();
    let daemon = env.start();
    let (_, _, rebuilt) = blocking_get(&url(&daemon)).unwrap();
    daemon.stop();
    assert_eq!(vevents(&stored).len(), vevents(&rebuilt).len());
    assert!(vevents(&stored).len() >= 20);
    assert_eq!(stored, rebuilt);
}

#[test]
fn cached_calendar_is_served_gzipped_once_compressed_with_its_own_etag() {
    use std::io::Read;
    let env = TestEnv::demo();
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    let url = format!(
        "{}/calendar.ics?from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
        daemon.base
    );
    let (status, plain_h, plain) = get_bytes(&url, &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        plain.len() > 4096,
        "the demo calendar is big enough to keep a gzip copy"
    );
    assert!(plain_h.get("content-encoding").is_none());
    for _ in 0..2 {
        // First from a fresh compression, then from the cached copy.
        let (status, h, gz) = get_bytes(&url, &[("accept-encoding", "br;q=0, gzip")]).unwrap();
        assert_eq!(status, 200);
        assert_eq!(h["content-encoding"], "gzip");
        assert_eq!(h["vary"], "accept-encoding");
        assert_ne!(
            h["etag"], plain_h["etag"],
            "each representation has its own strong ETag"
        );
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut decoded)
            .expect("one layer of gzip");
        assert_eq!(decoded, plain);
        let etag = h["etag"].to_str().unwrap().to_string();
        let (status, _, body) = get_bytes(
            &url,
            &[("accept-encoding", "gzip"), ("if-none-match", &etag)],
        )
        .unwrap();
        assert_eq!((status, body.len()), (304, 0));
    }
    let (_, h, _) = get_bytes(&url, &[("accept-encoding", "gzip;q=0")]).unwrap();
    assert!(h.get("content-encoding").is_none(), "gzip;q=0 refuses gzip");
    daemon.stop();
}

#[test]
fn event_pages_walked_by_cursor_list_exactly_what_one_big_page_lists() {
    let env = TestEnv::demo();
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    // The demo's weekly café series runs through this window alongside single events.
    let window = "from=2026-01-01&to=2027-12-31";
    let key = |e: &serde_json::Value| {
        (
            e["start"].as_str().unwrap().to_string(),
            e["id"].as_str().unwrap().to_string(),
        )
    };
    let whole: Vec<_> = json(&format!("{}/v1/events?{window}&limit=500", daemon.base))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    assert!(
        whole.iter().filter(|(_, id)| id == &whole[0].1).count() > 1 || whole.len() > 20,
        "the window holds a series' occurrences: {whole:?}"
    );
    let mut walked = Vec::new();
    let mut url = format!("{}/v1/events?{window}&limit=3", daemon.base);
    loop {
        let page = json(&url);
        walked.extend(page["items"].as_array().unwrap().iter().map(key));
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(walked, whole);
}
