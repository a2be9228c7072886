//! In-tree fuzzing, bounded so it runs in every test run: thousands of mutated partner feeds (bit
//! flips, truncation, splices of hostile fragments, shuffled lines) through every parser, the
//! normaliser and the calendar renderer. Nothing may panic; a crash prints the seed that made it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tributary::config::Format;
use tributary::ingest;
use tributary::model::{CanonicalEvent, Payload, RecordKind};
use tributary::normalise;
use tributary::publish::ical::{render, CalendarEntry, CalendarOptions};

const ITERATIONS: u64 = 1500;

const FRAGMENTS: &[&str] = &[
    "\r\n",
    "\n ",
    ";",
    ",",
    ":",
    "\\",
    "\"",
    "\u{0}",
    "\u{feff}",
    "é",
    "💥",
    "BEGIN:VEVENT\r\n",
    "END:VEVENT\r\n",
    "END:VCALENDAR",
    "DTSTART;TZID=Nowhere/Else:20271301T250000\r\n",
    "RRULE:FREQ=SECONDLY;INTERVAL=0\r\n",
    "DURATION:P99999999W\r\n",
    "DTSTART;VALUE=DATE:00000000\r\n",
    "{",
    "}",
    "[",
    "]",
    "null",
    "\"start\": \"9999-99-99\"",
    "1e999",
    "-0",
    "\"id\": {}",
    "\"recurrence\": [\"RRULE:FREQ=DAILY;COUNT=999999999\"]",
    "id,name\n",
    ",,,,,,,,\n",
    "\"\"\"",
    "99999999999999999999",
    "GB-CHC-",
    "SC",
    "+44",
    "00440",
    "https://",
    "mailto:",
    "<script type=\"application/ld+json\">",
    "</script>",
    "<![CDATA[",
    "<!DOCTYPE x [<!ENTITY e \"&e;&e;\">]>",
    "&e;",
    "&#x0;",
    "\"@type\": \"SessionSeries\"",
    "\"eventSchedule\": [{\"repeatFrequency\": \"P1W\", \"startDate\": \"2027-01-01\", \"startTime\": \"25:00\"}]",
    "\"state\": \"deleted\"",
    "Tuesday 31st February 2027, 11pm – 1am",
    "\"totalPages\": 18446744073709551615",
];

/// Where a seed's pages pretend to come from (adapters read paging from the URL).
const PAGE_URLS: &[(Format, &str)] = &[
    (
        Format::Oruk,
        "http://127.0.0.1/oruk/services?page=1&per_page=100",
    ),
    (Format::Rpde, "http://127.0.0.1/openactive/session-series"),
    (Format::Jsonld, "http://127.0.0.1/events/"),
    (
        Format::WpEvents,
        "http://127.0.0.1/wp-json/tribe/events/v1/events?page=1",
    ),
];

fn seeds() -> Vec<(Format, RecordKind, Vec<u8>)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/config/demo/");
    let read = |f: &str| std::fs::read(format!("{root}{f}")).unwrap();
    let fixture = |f: &str| {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/").to_string() + f)
            .unwrap()
    };
    vec![
        (Format::Rss, RecordKind::Events, fixture("rss/cvs-news.xml")),
        (Format::Jsonld, RecordKind::Events, fixture("jsonld/events.html")),
        (Format::Jsonld, RecordKind::Events, fixture("jsonld/events-page-2.html")),
        (Format::Oruk, RecordKind::Organisations, fixture("oruk/services-1.json")),
        (Format::Rpde, RecordKind::Events, fixture("rpde/sessions-1.json")),
        (Format::Rpde, RecordKind::Events, fixture("rpde/sessions-2.json")),
        (Format::WpEvents, RecordKind::Events, fixture("wp-events/events-1.json")),
        (Format::Ical, RecordKind::Events, read("cvs-cheshire-east-events.ics")),
        (Format::Ical, RecordKind::Events, read("hull-vcse-events.ics")),
        (Format::Csv, RecordKind::Organisations, read("cvs-cheshire-east-members.csv")),
        (Format::TributaryJson, RecordKind::Organisations, read("hcv-vcse-organisations.json")),
        (Format::TributaryJson, RecordKind::Events, read("hcv-vcse-events.json")),
        (
            Format::Csv,
            RecordKind::Events,
            b"id,title,start,end,timezone,recurrence,status\ne1,Cafe,2027-01-05 10:00,2027-01-05 12:00,Europe/London,RRULE:FREQ=WEEKLY,scheduled\n".to_vec(),
        ),
    ]
}

fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.usize(1..6) {
        if b.is_empty() {
            b.extend_from_slice(rng.choice(FRAGMENTS).unwrap_or(&"").as_bytes());
            continue;
        }
        let at = rng.usize(..b.len());
        match rng.u8(0..6) {
            0 => b[at] ^= 1 << rng.u8(0..8),
            1 => b.truncate(at),
            2 => {
                let frag = rng.choice(FRAGMENTS).unwrap_or(&"");
                b.splice(at..at, frag.bytes());
            }
            3 => {
                let end = (at + rng.usize(..64)).min(b.len());
                b.drain(at..end);
            }
            4 => {
                let end = (at + rng.usize(..200)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
            _ => {
                let mut lines: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
                rng.shuffle(&mut lines);
                b = lines.join(&b'\n');
            }
        }
    }
    b
}

fn exercise(format: Format, kind: RecordKind, bytes: &[u8]) {
    let url = PAGE_URLS
        .iter()
        .find(|(f, _)| *f == format)
        .map_or("", |(_, u)| u);
    let mut harvest = ingest::Harvest::new(format, kind, Default::default());
    if harvest
        .add_page(url, ingest::PageRole::Listing, bytes)
        .is_err()
    {
        return;
    }
    let feed = harvest.finish().parsed;
    let mut events = Vec::new();
    for rec in feed.records {
        if let Ok(rec) = normalise::record(rec) {
            if let Payload::Event(e) = rec.payload {
                let _ = tributary::publish::json::occurrences(
                    &e,
                    chrono::DateTime::UNIX_EPOCH,
                    chrono::DateTime::UNIX_EPOCH + chrono::Duration::days(365 * 80),
                );
                events.push(CalendarEntry {
                    event: CanonicalEvent {
                        id: format!("evt_{}", events.len()),
                        event: e,
                        partners: vec![],
                        field_sources: Default::default(),
                        updated_at: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
                    },
                    sequence: 0,
                    withdrawn: false,
                });
            }
        }
    }
    let text = render(
        &events,
        &CalendarOptions {
            name: "fuzz",
            description: None,
            now: chrono::DateTime::UNIX_EPOCH,
            uid_domain: "tributary",
        },
    );
    // Whatever went in, what comes out is still one well-formed calendar.
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    if let Some(bad) = text
        .split("\r\n")
        .find(|l| l.len() > 75 || l.contains('\n') || l.contains('\r'))
    {
        panic!("bad calendar line {bad:?}");
    }
}

#[test]
fn parsers_normaliser_and_renderer_never_panic_on_mutated_feeds() {
    let seeds = seeds();
    for seed in 0..ITERATIONS {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (format, kind, input) = &seeds[rng.usize(..seeds.len())];
        let bytes = mutate(&mut rng, input);
        let result = catch_unwind(AssertUnwindSafe(|| exercise(*format, *kind, &bytes)));
        assert!(
            result.is_ok(),
            "panic on seed {seed} ({} {}):\n{}",
            format.as_str(),
            kind.as_str(),
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(2000)
                .collect::<String>()
        );
    }
}

#[test]
fn normalisers_never_panic_on_arbitrary_text() {
    let mut rng = fastrand::Rng::with_seed(42);
    for _ in 0..20_000 {
        let len = rng.usize(..40);
        let s: String = (0..len)
            .map(|_| match rng.u8(0..4) {
                0 => rng.choice(FRAGMENTS).unwrap_or(&"").to_string(),
                1 => char::from_u32(rng.u32(..0x2_0000))
                    .unwrap_or('x')
                    .to_string(),
                _ => rng.alphanumeric().to_string(),
            })
            .collect();
        let _ = normalise::postcode(&s);
        let _ = normalise::charity_number(&s);
        let _ = normalise::company_number(&s);
        let _ = normalise::org_id(&s);
        let _ = normalise::website(&s);
        let _ = normalise::email(&s);
        let _ = normalise::phone(&s);
        let _ = normalise::name_key(&s);
        let _ = normalise::title_key(&s);
        let _ = tributary::dedupe::features::name_keys(&s);
        let _ = tributary::dedupe::score::name_similarity(&s, "hull community shop");
    }
}
