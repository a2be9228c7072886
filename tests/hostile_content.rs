//! Hostile content in partners' records, through the real binary and read back by real consumers:
//! markup in every text field, recurrence lines that try to smuggle properties into the calendar,
//! a withdrawn event whose text imitates a STATUS line, and series from 1900 that must be expanded
//! near the window asked for rather than walked from their start.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const WINDOW: &str = "from=2027-01-01T00:00:00Z&to=2027-12-31T00:00:00Z";

fn partner(id: &str, kind: &str, format: &str, url: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"{kind}\"\nformat = \"{format}\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 10\n\n"
    )
}

fn vcalendar(events: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n{events}END:VCALENDAR\r\n")
}

/// Reads a calendar as a strict client does: every VEVENT's UID, SUMMARY, STATUS, DESCRIPTION,
/// LOCATION, CATEGORIES and RRULE, and every occurrence start (UTC) between argv[2] and argv[3]
/// from `recurring-ical-events`, keyed by SUMMARY.
const PY_READ: &str = r#"
import json, sys, icalendar, recurring_ical_events
from datetime import datetime, timezone
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
window = [datetime.fromisoformat(a) for a in sys.argv[2:4]]
events = []
for ev in cal.walk('VEVENT'):
    cats = []
    for c in (ev.get('CATEGORIES') if isinstance(ev.get('CATEGORIES'), list) else [ev.get('CATEGORIES')]):
        if c is not None:
            cats.extend(str(x) for x in c.cats)
    events.append({k: str(ev.get(k, '')) for k in ('UID', 'SUMMARY', 'STATUS', 'DESCRIPTION', 'LOCATION')}
                  | {'CATEGORIES': cats, 'RRULE': ev.get('RRULE') is not None})
occ = {}
for o in recurring_ical_events.of(cal).between(*window):
    start = o.decoded('DTSTART')
    occ.setdefault(str(o.get('SUMMARY')), []).append(start.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))
print(json.dumps([{'events': events, 'occurrences': {k: sorted(v) for k, v in occ.items()}}]))
"#;

/// The calendar read by Python `icalendar` + `recurring-ical-events`; `None` outside CI when
/// they are not installed.
fn read_calendar(env: &TestEnv, name: &str, ics: &str, from: &str, to: &str) -> Option<Value> {
    let path = env.dir.path().join(name);
    std::fs::write(&path, ics).unwrap();
    let path = path.to_str().unwrap();
    consumer(
        &python(),
        &["-c", PY_READ, path, from, to],
        &["-c", "import icalendar, recurring_ical_events"],
        "python3 with icalendar and recurring-ical-events",
    )
    .map(|mut v| v.remove(0))
}

/// The merged `calendar.ics` over [`WINDOW`], and how the reference reader reads it (`None`
/// outside CI when the reader is not installed).
fn merged_calendar(env: &TestEnv, daemon: &Daemon) -> (String, Option<Value>) {
    let (status, _, ics) = blocking_get(&format!("{}/calendar.ics?{WINDOW}", daemon.base)).unwrap();
    assert_eq!(status, 200);
    let read = read_calendar(
        env,
        "merged.ics",
        &ics,
        "2027-01-01T00:00:00+00:00",
        "2027-12-31T00:00:00+00:00",
    );
    (ics, read)
}

fn items(url: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next {
        let page = json(&u);
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        next = page["next"].as_str().map(String::from);
    }
    all
}

/// Whether `s` holds something an HTML parser reads as a tag, a comment or a doctype.
fn has_tag(s: &str) -> bool {
    s.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
}

/// Every string in `v` with its JSON path.
fn strings<'a>(v: &'a Value, path: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                strings(x, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                strings(x, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// No text field holds markup; `description_html` holds only what the sanitiser allows.
fn assert_no_live_markup(item: &Value) {
    let mut all = Vec::new();
    strings(item, String::new(), &mut all);
    for (path, s) in all {
        let lower = s.to_ascii_lowercase();
        if path.ends_with(".description_html") {
            for bad in [
                "<script",
                "onerror",
                "onload",
                "<iframe",
                "<svg",
                "javascript:",
            ] {
                assert!(!lower.contains(bad), "{path} keeps {bad}: {s}");
            }
        } else {
            assert!(!has_tag(s), "{path} holds markup: {s}");
            assert!(
                !lower.contains("alert(1)") && !lower.contains("steal()"),
                "{path}: {s}"
            );
        }
    }
}

#[test]
fn markup_in_every_text_field_reaches_consumers_as_text_or_sanitised_html() {
    let site = fake_site();
    site.put(
        "/cal.ics",
        "text/calendar",
        vcalendar(concat!(
            "BEGIN:VEVENT\r\nUID:quiz@x\r\nDTSTART:20270310T190000Z\r\n",
            "SUMMARY:Quiz <svg onload=alert(1)>night</svg>\r\n",
            "DESCRIPTION:Come along <img src=x onerror=alert(1)><script>steal()</script>\r\n",
            "LOCATION:<iframe src=//evil.example></iframe>Town Hall\r\n",
            "ORGANIZER;CN=\"<b>Crewe</b> CVS\":mailto:crewe@example.org\r\n",
            "CATEGORIES:<em>Youth</em>,&lt\\;script&gt\\;x&lt\\;/script&gt\\;Sport\r\n",
            "END:VEVENT\r\n"
        )),
    );
    site.put(
        "/posts.xml",
        "application/rss+xml",
        r#"<?xml version="1.0"?><rss version="2.0" xmlns:ev="http://purl.org/rss/1.0/modules/event/"><channel><title>t</title><link>https://x.example/</link><description>d</description>
<item><title>Craft &lt;svg onload=alert(1)&gt;fair</title><guid>craft</guid><ev:startdate>2027-04-10T10:00:00+01:00</ev:startdate>
<ev:location>&lt;iframe src=//evil.example&gt;&lt;/iframe&gt;Guildhall</ev:location><ev:organizer>&lt;b&gt;Hull&lt;/b&gt; CVS</ev:organizer><category>&lt;em&gt;Arts&lt;/em&gt;</category>
<description><![CDATA[<p>Stalls <b>and</b> tea</p><script>steal()</script><img src="x" onerror="alert(1)"><a href="javascript:alert(1)">link</a>]]></description></item>
</channel></rss>"#,
    );
    site.put(
        "/orgs.json",
        "application/json",
        serde_json::json!({"organisations": [{
            "id": "fb", "name": "<b>Hull</b> Food Bank",
            "description": "Food for all <img src=x onerror=alert(1)><script>steal()</script>",
            "address": {"street": "<i>1</i> High St", "postcode": "HU1 1AA"},
            "categories": ["<em>Food</em>"]
        }]})
        .to_string(),
    );
    let env = TestEnv::new(
        &[
            partner("cal", "events", "ical", &site.url("/cal.ics")),
            partner("rss", "events", "rss", &site.url("/posts.xml")),
            partner(
                "orgs",
                "organisations",
                "tributary-json",
                &site.url("/orgs.json"),
            ),
        ]
        .concat(),
    );
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let daemon = env.start();

    let events = items(&format!("{}/v1/events?{WINDOW}", daemon.base));
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_no_live_markup(e);
    }
    let quiz = events.iter().find(|e| e["title"] == "Quiz night").unwrap();
    assert_eq!(quiz["location"]["name"], "Town Hall");
    assert_eq!(quiz["organiser"]["name"], "Crewe CVS");
    assert_eq!(quiz["categories"], serde_json::json!(["Youth", "Sport"]));
    assert_eq!(quiz["description"], "Come along");
    let craft = events.iter().find(|e| e["title"] == "Craft fair").unwrap();
    assert_eq!(craft["location"]["name"], "Guildhall");
    assert_eq!(craft["organiser"]["name"], "Hull CVS");
    let html = craft["description_html"].as_str().unwrap();
    assert!(html.contains("<b>and</b>"), "{html}");

    let orgs = items(&format!("{}/v1/organisations", daemon.base));
    assert_eq!(orgs.len(), 1);
    assert_no_live_markup(&orgs[0]);
    assert_eq!(orgs[0]["name"], "Hull Food Bank");
    // The change feeds carry the same canonical bodies.
    for feed in ["events", "organisations"] {
        let page = json(&format!("{}/v1/feeds/{feed}", daemon.base));
        for item in page["items"].as_array().unwrap() {
            assert_no_live_markup(&item["data"]);
        }
    }

    let (ics, read) = merged_calendar(&env, &daemon);
    let lower = ics.to_ascii_lowercase();
    for bad in [
        "<script", "onerror", "onload", "<iframe", "<svg", "<b>", "<em>",
    ] {
        assert!(!lower.contains(bad), "calendar.ics keeps {bad}:\n{ics}");
    }
    if let Some(read) = read {
        let summaries: Vec<&str> = read["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["SUMMARY"].as_str().unwrap())
            .collect();
        assert_eq!(summaries.len(), 2);
        assert!(summaries.contains(&"Quiz night") && summaries.contains(&"Craft fair"));
        let quiz = read["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["SUMMARY"] == "Quiz night")
            .unwrap();
        assert_eq!(quiz["LOCATION"], "Town Hall");
        assert_eq!(quiz["CATEGORIES"], serde_json::json!(["Youth", "Sport"]));
    }
    daemon.stop();
}

#[test]
fn tributary_json_recurrence_lines_cannot_smuggle_properties_into_the_calendar() {
    let site = fake_site();
    let doc = serde_json::json!({"events": [
        {"id": "cafe", "title": "Cafe", "start": "2027-01-05T10:00:00", "timezone": "Europe/London",
         "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Europe/London:20270112T100000"]},
        {"id": "quoted", "title": "Quoted colon", "start": "2027-01-05T10:00:00",
         "recurrence": ["EXDATE;TZID=\"Europe/London:X\":20270112T100000"]},
        {"id": "crlf", "title": "Smuggler", "start": "2027-01-05T10:00:00",
         "recurrence": ["RRULE:FREQ=WEEKLY\r\nBEGIN:VEVENT\r\nUID:evil\r\nSUMMARY:Injected\r\nEND:VEVENT"]},
        {"id": "lf", "title": "Bare LF", "start": "2027-01-05T10:00:00",
         "recurrence": ["RRULE:FREQ=DAILY;COUNT=2\nX-EVIL:1"]},
        {"id": "prop", "title": "Not a rule", "start": "2027-01-05T10:00:00",
         "recurrence": ["ATTACH:http://evil.example/x"]},
        {"id": "secondly", "title": "Every second", "start": "2027-01-05T10:00:00",
         "recurrence": ["RRULE:FREQ=SECONDLY"]}
    ]});
    site.put("/events.json", "application/json", doc.to_string());
    let env = TestEnv::new(&partner(
        "json",
        "events",
        "tributary-json",
        &site.url("/events.json"),
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // Each bad line rejects its event, with a reason naming what is wrong.
    let conn = db(&env);
    let mut st = conn
        .prepare("SELECT source_id, reason FROM rejections ORDER BY source_id")
        .unwrap();
    let rejected: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let ids: Vec<&str> = rejected.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["crlf", "lf", "prop", "quoted", "secondly"],
        "{rejected:?}"
    );
    for (id, reason) in &rejected {
        let expected = match id.as_str() {
            "crlf" | "lf" => "control character",
            "quoted" => "quote",
            "secondly" => "SECONDLY",
            _ => "RRULE",
        };
        assert!(reason.contains(expected), "{id}: {reason}");
    }

    let daemon = env.start();
    let events = items(&format!("{}/v1/events?{WINDOW}", daemon.base));
    let starts: Vec<&str> = events
        .iter()
        .map(|e| e["start"].as_str().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-01-05T10:00:00+00:00",
            "2027-01-19T10:00:00+00:00",
            "2027-01-26T10:00:00+00:00"
        ]
    );
    let (ics, read) = merged_calendar(&env, &daemon);
    for bad in ["evil", "Injected", "X-EVIL", "ATTACH"] {
        assert!(!ics.contains(bad), "calendar.ics holds {bad}:\n{ics}");
    }
    if let Some(read) = read {
        assert_eq!(read["events"].as_array().unwrap().len(), 1, "{read}");
        assert_eq!(
            read["occurrences"]["Cafe"],
            serde_json::json!([
                "2027-01-05T10:00:00Z",
                "2027-01-19T10:00:00Z",
                "2027-01-26T10:00:00Z"
            ])
        );
    }
    daemon.stop();
}

#[test]
fn a_withdrawn_event_is_cancelled_by_its_status_property_not_by_text_that_imitates_it() {
    let site = fake_site();
    // The description's text reads "STATUS:CONFIRMED" where a folded line starts, and again after
    // an escaped line break: neither is the event's STATUS property.
    let imitation = format!("{}STATUS:CONFIRMED", "x".repeat(63));
    let tea = format!(
        "BEGIN:VEVENT\r\nUID:tea@x\r\nDTSTART:20270310T140000Z\r\nSUMMARY:Tea dance\r\nDESCRIPTION:{imitation}\\nSTATUS:CONFIRMED\r\nEND:VEVENT\r\n"
    );
    let others: String = (1..=9)
        .map(|i| {
            format!(
                "BEGIN:VEVENT\r\nUID:e{i}@x\r\nDTSTART:202704{i:02}T100000Z\r\nSUMMARY:Session {i}\r\nEND:VEVENT\r\n"
            )
        })
        .collect();
    site.put(
        "/cal.ics",
        "text/calendar",
        vcalendar(&format!("{tea}{others}")),
    );
    let env = TestEnv::new(&partner("cal", "events", "ical", &site.url("/cal.ics")));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // The partner stops listing the tea dance (1 of 10, under the deletion guard's share).
    site.put("/cal.ics", "text/calendar", vcalendar(&others));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 deleted"), "{}", stdout(&out));

    let daemon = env.start();
    let (ics, read) = merged_calendar(&env, &daemon);
    if let Some(read) = read {
        let events = read["events"].as_array().unwrap();
        assert_eq!(events.len(), 10, "{read}");
        for e in events {
            let expected = if e["SUMMARY"] == "Tea dance" {
                assert_eq!(
                    e["DESCRIPTION"].as_str().unwrap(),
                    format!("{imitation}\nSTATUS:CONFIRMED")
                );
                "CANCELLED"
            } else {
                "CONFIRMED"
            };
            assert_eq!(e["STATUS"], expected, "{e}");
        }
    } else {
        // Without the reader, the property lines themselves.
        assert_eq!(ics.matches("\r\nSTATUS:CANCELLED\r\n").count(), 1, "{ics}");
    }
    daemon.stop();
}

#[test]
fn series_from_1900_are_expanded_near_the_window_and_match_a_reference_reader() {
    let site = fake_site();
    let hourly_and_daily = concat!(
        "BEGIN:VEVENT\r\nUID:hourly@x\r\nDTSTART:19000101T090000Z\r\nDTEND:19000101T093000Z\r\n",
        "RRULE:FREQ=HOURLY;INTERVAL=7\r\nSUMMARY:Every seven hours\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:daily@x\r\nDTSTART;TZID=Europe/London:19000102T100000\r\n",
        "RRULE:FREQ=DAILY;INTERVAL=3\r\nSUMMARY:Every third day\r\nEND:VEVENT\r\n",
    );
    let calendar = vcalendar(&format!(
        "{hourly_and_daily}{}",
        concat!(
            "BEGIN:VEVENT\r\nUID:minutely@x\r\nDTSTART:19000101T000000Z\r\n",
            "RRULE:FREQ=MINUTELY\r\nSUMMARY:Every minute\r\nEND:VEVENT\r\n",
        )
    ));
    site.put("/cal.ics", "text/calendar", calendar.clone());
    let env = TestEnv::new(&partner("cal", "events", "ical", &site.url("/cal.ics")));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let daemon = env.start();

    // The defaults a subscriber or an app asks first: answered, not walked from 1900. The bound
    // is a hang detector (such a request took over 120 s before the expansion jumped to the
    // window), not a speed target; the figures are printed for docs/reliability.md.
    for path in ["/v1/events", "/calendar.ics", "/v1/events?limit=500"] {
        let t = Instant::now();
        let (status, _, _) = blocking_get(&format!("{}{path}", daemon.base)).unwrap();
        let took = t.elapsed();
        eprintln!("{path}: {status} in {took:?}");
        assert_eq!(status, 200, "{path}");
        assert!(took < Duration::from_secs(10), "{path} took {took:?}");
    }

    // One week of 2027, read by us and by the reference reader from the partner's own file.
    let (from, to) = ("2027-03-22T00:00:00+00:00", "2027-04-05T00:00:00+00:00");
    let listed = items(&format!(
        "{}/v1/events?from=2027-03-22T00:00:00Z&to=2027-04-05T00:00:00Z&limit=100",
        daemon.base
    ));
    let utc = |title: &str| -> Vec<String> {
        let mut v: Vec<String> = listed
            .iter()
            .filter(|e| e["title"] == title)
            .map(|e| {
                chrono::DateTime::parse_from_rfc3339(e["start"].as_str().unwrap())
                    .unwrap()
                    .with_timezone(&chrono::Utc)
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    // The refused sub-hourly rule lists its first occurrence only (in 1900, outside the window).
    assert!(utc("Every minute").is_empty());
    assert_eq!(utc("Every seven hours").len(), 48, "{listed:?}");
    // The reference reads the two series it can: it walks every rule from its start, so the
    // minutely one from 1900 would take it hours (the very work tributary refuses).
    let reference = vcalendar(hourly_and_daily);
    if let Some(read) = read_calendar(&env, "partner.ics", &reference, from, to) {
        for title in ["Every seven hours", "Every third day"] {
            let reference: Vec<String> = read["occurrences"][title]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert!(!reference.is_empty(), "{title}");
            assert_eq!(utc(title), reference, "{title}");
        }
    }
    daemon.stop();
}
