//! Partner-given points end to end through the real daemon: iCalendar `GEO` and tributary-json
//! coordinates land, are published in `/v1`, `/oruk` and `calendar.ics` (read back with Python's
//! icalendar), and place records for distance search ahead of their postcode's centroid.
//! `/v1/events?near=&within=` returns what a brute-force great-circle check over the listing
//! returns, with every other event filter, and refuses bad parameters naming them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// Great-circle distance in metres, written out here so the check does not lean on the server's.
fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let r = 6_371_008.8_f64;
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dl = (b.1 - a.1).to_radians();
    let h = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * h.sqrt().asin()
}

const WORDS: [&str; 4] = ["Alpha", "Beta", "Gamma", "Delta"];

/// A VEVENT as the generator wrote it.
struct Gen {
    title: String,
    point: Option<(f64, f64)>,
}

struct World {
    env: TestEnv,
    centroids: BTreeMap<String, (f64, f64)>,
    /// Title → what was generated, for both calendars.
    events: BTreeMap<String, Gen>,
    _partners: Vec<FakePartner>,
}

/// Where a fixed far-away postcode is (Penzance), for records whose own point is near Crewe.
const FAR: (&str, (f64, f64)) = ("TR18 2AA", (50.118, -5.537));

fn near_crewe(rng: &mut fastrand::Rng) -> (f64, f64) {
    (53.1 + rng.f64() * 0.4 - 0.2, -2.44 + rng.f64() * 0.6 - 0.3)
}

fn calendar(
    seed: u64,
    who: &str,
    postcodes: &[&String],
    events: &mut BTreeMap<String, Gen>,
) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ics = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//geo//EN\r\n");
    for i in 0..120 {
        let title = format!("{who} Session {i} {}", WORDS[i % WORDS.len()]);
        let day = 1 + rng.u32(0..300);
        let start = chrono::NaiveDate::from_yo_opt(2027, day)
            .unwrap()
            .and_hms_opt(rng.u32(8..20), 5 * rng.u32(0..12), 0)
            .unwrap();
        let mut lines = vec![
            format!("UID:{who}-{i}@geo.test"),
            "DTSTAMP:20270101T000000Z".into(),
            format!("DTSTART:{}", start.format("%Y%m%dT%H%M%SZ")),
            format!("SUMMARY:{title}"),
        ];
        if i % 9 == 0 {
            lines.push("RRULE:FREQ=MONTHLY;COUNT=4".into());
        }
        let point = match i % 5 {
            // A point and a postcode in the centroid file: the point decides.
            0 => {
                let pc = postcodes[rng.usize(..postcodes.len())];
                lines.push(format!("LOCATION:Hall {i}, Crewe, {pc}"));
                Some(near_crewe(&mut rng))
            }
            // A point near Crewe and a postcode at the other end of the country.
            1 => {
                lines.push(format!("LOCATION:Room {i}, Penzance, {}", FAR.0));
                Some(near_crewe(&mut rng))
            }
            // A postcode only: its centroid places it.
            2 | 3 => {
                let pc = postcodes[rng.usize(..postcodes.len())];
                lines.push(format!("LOCATION:Centre {i}, Crewe, {pc}"));
                None
            }
            // Nowhere.
            _ => None,
        };
        if let Some((lat, lon)) = point {
            lines.push(format!("GEO:{lat:.6};{lon:.6}"));
        }
        events.insert(
            title.clone(),
            Gen {
                title,
                point: point.map(|(a, b)| ((a * 1e6).round() / 1e6, (b * 1e6).round() / 1e6)),
            },
        );
        ics.push_str("BEGIN:VEVENT\r\n");
        for l in lines {
            ics.push_str(&l);
            ics.push_str("\r\n");
        }
        ics.push_str("END:VEVENT\r\n");
    }
    ics.push_str("END:VCALENDAR\r\n");
    ics
}

fn world() -> World {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut centroids = BTreeMap::new();
    let mut csv = String::from("pcd,pcds,lat,long\n");
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    for district in 1..=9 {
        for n in 0..12 {
            let inward = format!(
                "{}{}{}",
                n % 10,
                letters[rng.usize(..letters.len())] as char,
                letters[rng.usize(..letters.len())] as char
            );
            let pc = format!("CW{district} {inward}");
            let (lat, lon) = (53.1 + rng.f64() * 0.4 - 0.2, -2.44 + rng.f64() * 0.6 - 0.3);
            if !centroids.contains_key(&pc) {
                centroids.insert(pc.clone(), (lat, lon));
                csv.push_str(&format!(
                    "\"{}\",\"{pc}\",{lat:.6},{lon:.6}\n",
                    pc.replace(' ', "")
                ));
            }
        }
    }
    // Re-read what was written, so the oracle's centroids are the file's six decimals.
    let centroids: BTreeMap<String, (f64, f64)> = centroids
        .into_iter()
        .map(|(pc, (a, b))| {
            let r = |x: f64| format!("{x:.6}").parse::<f64>().unwrap();
            (pc, (r(a), r(b)))
        })
        .collect();
    csv.push_str(&format!(
        "\"TR182AA\",\"{}\",{},{}\n",
        FAR.0, FAR.1 .0, FAR.1 .1
    ));
    let mut centroids = centroids;
    centroids.insert(FAR.0.to_string(), FAR.1);

    let env = TestEnv::new("");
    std::fs::write(env.dir.path().join("centroids.csv"), csv).unwrap();
    let postcodes: Vec<&String> = centroids.keys().filter(|p| p.starts_with("CW")).collect();
    let mut events = BTreeMap::new();
    let one = fake_partner(ics_feed(
        &calendar(1, "North", &postcodes, &mut events),
        None,
    ));
    let two = fake_partner(ics_feed(
        &calendar(2, "South", &postcodes, &mut events),
        None,
    ));
    // Organisations: one placed by its own point far from its postcode's centroid, one by its
    // postcode alone.
    let orgs = json!({"organisations": [
        {"id": "pointed", "name": "Pointed Trust",
         "address": {"street": "1 Market St", "postcode": FAR.0, "latitude": 53.0979, "longitude": -2.4411}},
        {"id": "plain", "name": "Plain Society", "address": {"postcode": FAR.0}}
    ]});
    std::fs::write(env.dir.path().join("orgs.json"), orgs.to_string()).unwrap();
    let config = env.config();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[store]\npath = \"data/tributary.db\"\n",
        "[store]\npath = \"data/tributary.db\"\npostcode_centroids = \"centroids.csv\"\n",
    );
    let feed = |id: &str, url: &str, kind: &str, format: &str| {
        format!("[[partners]]\nid = \"{id}\"\nname = \"{id}\"\n\n[[partners.feeds]]\nkind = \"{kind}\"\nformat = \"{format}\"\nurl = \"{url}\"\nretries = 0\n\n")
    };
    std::fs::write(
        &config,
        format!(
            "{text}{}{}{}",
            feed("north", &one.url("/cal.ics"), "events", "ical"),
            feed("south", &two.url("/cal.ics"), "events", "ical"),
            feed("dir", "orgs.json", "organisations", "tributary-json"),
        ),
    )
    .unwrap();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    World {
        env,
        centroids,
        events,
        _partners: vec![one, two],
    }
}

/// Every listed occurrence of `/v1/events` with `query`, through its cursor pages: (id, start) →
/// its body.
fn listing(base: &str, query: &str) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let mut url = format!("{base}/v1/events?{query}&limit=97");
    loop {
        let (status, _, body) = blocking_get(&url).unwrap();
        assert_eq!(status, 200, "{url}: {body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        for e in page["items"].as_array().unwrap() {
            let key = (
                e["id"].as_str().unwrap().to_string(),
                e["start"].as_str().unwrap().to_string(),
            );
            assert!(out.insert(key, e.clone()).is_none(), "listed once: {e}");
        }
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => return out,
        }
    }
}

/// Where the brute force puts an event: its published point, else its postcode's centroid.
fn place_of(e: &Value, centroids: &BTreeMap<String, (f64, f64)>) -> Option<(f64, f64)> {
    let l = &e["location"];
    match (l["latitude"].as_f64(), l["longitude"].as_f64()) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => l["postcode"]
            .as_str()
            .and_then(|pc| centroids.get(pc).copied()),
    }
}

fn error_param(url: &str) -> String {
    let (status, _, body) = blocking_get(url).unwrap();
    assert_eq!(status, 400, "{url}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_parameter", "{body}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    message.split(':').next().unwrap_or_default().to_string()
}

#[test]
fn events_near_a_postcode_match_a_brute_force_distance_check_with_every_filter() {
    let w = world();
    let daemon = w.env.start();
    let base = daemon.base.clone();
    let window = "from=2027-01-01&to=2028-06-01";
    let all = listing(&base, window);
    assert!(all.len() > 240, "{}", all.len());

    // Every GEO given lands on its event as published, and no other event gains a point.
    let mut pointed = 0;
    for e in all.values() {
        let title = e["title"].as_str().unwrap();
        let generated = w.events.get(title).unwrap_or_else(|| panic!("{title}"));
        let l = &e["location"];
        let got = l["latitude"].as_f64().zip(l["longitude"].as_f64());
        assert_eq!(got, generated.point, "{}", generated.title);
        pointed += usize::from(got.is_some());
    }
    assert!(pointed > 50, "{pointed}");

    let centres: Vec<&String> = w
        .centroids
        .keys()
        .filter(|p| p.starts_with("CW"))
        .step_by(11)
        .collect();
    let mut found = 0;
    for centre in &centres {
        let at = w.centroids[*centre];
        let pc = centre.replace(' ', "%20");
        for km in [0.0, 2.5, 8.0, 20.0] {
            let expected: BTreeSet<&(String, String)> = all
                .iter()
                .filter(|(_, e)| {
                    place_of(e, &w.centroids).is_some_and(|p| haversine(at, p) <= km * 1000.0)
                })
                .map(|(k, _)| k)
                .collect();
            let got = listing(&base, &format!("{window}&near={pc}&within={km}"));
            let got_keys: BTreeSet<&(String, String)> = got.keys().collect();
            let odd: Vec<String> = got_keys
                .symmetric_difference(&expected)
                .map(|k| {
                    let e = all.get(*k).or_else(|| got.get(*k)).unwrap();
                    let d = place_of(e, &w.centroids).map(|p| haversine(at, p));
                    format!("{} at {:?} ({d:?} m)", e["title"], e["location"])
                })
                .collect();
            assert_eq!(got_keys, expected, "{centre} within {km} km: {odd:?}");
            found += got.len();
        }
    }
    assert!(found > 100, "searches found events: {found}");

    // Composed with the other filters: what each filter lists, narrowed by the same distance.
    let centre = centres[0];
    let at = w.centroids[centre];
    let pc = centre.replace(' ', "%20");
    for other in [
        "from=2027-03-01&to=2027-07-01",
        "from=2027-01-01&to=2028-06-01&q=Gamma",
        "from=2027-01-01&to=2028-06-01&partner=south",
        "from=2027-02-01&to=2027-11-01&q=session&partner=north",
    ] {
        let base_list = listing(&base, other);
        let expected: BTreeSet<&(String, String)> = base_list
            .iter()
            .filter(|(_, e)| {
                place_of(e, &w.centroids).is_some_and(|p| haversine(at, p) <= 20_000.0)
            })
            .map(|(k, _)| k)
            .collect();
        assert!(!expected.is_empty(), "{other}");
        assert!(
            expected.len() < base_list.len(),
            "{other}: the distance narrows it"
        );
        let got = listing(&base, &format!("{other}&near={pc}&within=20"));
        let got: BTreeSet<&(String, String)> = got.keys().collect();
        assert_eq!(got, expected, "{other} near {centre} within 20 km");
    }

    // A point near Crewe wins over a Penzance postcode: found near Crewe, not near Penzance.
    let near_far = listing(&base, &format!("{window}&near=TR18%202AA&within=1"));
    assert!(
        near_far
            .values()
            .all(|e| e["location"]["latitude"].is_null()),
        "only events placed by the Penzance centroid"
    );
    let orgs = json(&format!("{base}/v1/organisations?near=TR18%202AA&within=1"));
    let names: Vec<&str> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Plain Society"], "{orgs}");
    let orgs = json(&format!("{base}/v1/organisations?near={pc}&within=200"));
    let names: Vec<&str> = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Pointed Trust"], "{orgs}");

    // Bad parameters are 400s naming the parameter.
    for (query, param) in [
        ("near=NOT%20A%20PC&within=2", "near"),
        ("near=CW1%201AA", "near"),
        ("within=2", "within"),
        ("near=ZE1%200AA&within=2", "near"),
        (&*format!("near={pc}&within=far"), "within"),
        (&*format!("near={pc}&within=-1"), "within"),
        (&*format!("near={pc}&within=2&postcode_area=CW1"), "near"),
    ] {
        let url = format!("{base}/v1/events?{query}");
        assert_eq!(error_param(&url), param, "{url}");
    }
    daemon.stop();
}

const PY_GEO: &str = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
out = {}
for ev in cal.walk('VEVENT'):
    g = ev.get('GEO')
    if g is not None and 'RECURRENCE-ID' not in ev:
        out[str(ev.get('SUMMARY'))] = [g.latitude, g.longitude]
print(json.dumps(out))
"#;

#[test]
fn a_partner_given_point_is_published_in_v1_oruk_and_the_calendar() {
    let w = world();
    let daemon = w.env.start();
    let base = daemon.base.clone();

    let orgs = json(&format!("{base}/v1/organisations?q=Pointed"));
    let org = &orgs["items"][0];
    assert_eq!(org["address"]["latitude"], json!(53.0979), "{org}");
    assert_eq!(org["address"]["longitude"], json!(-2.4411), "{org}");
    let plain = json(&format!("{base}/v1/organisations?q=Plain"));
    assert!(
        plain["items"][0]["address"].get("latitude").is_none(),
        "no centroid is published as a point"
    );

    // ORUK: the organisation's service location carries it.
    let services = json(&format!("{base}/oruk/services?text=Pointed&per_page=10"));
    let loc = &services["contents"][0]["service_at_locations"][0]["location"];
    assert_eq!(loc["latitude"], json!(53.0979), "{services}");
    assert_eq!(loc["longitude"], json!(-2.4411), "{services}");
    // An event series (a service with a schedule) carries its venue's GEO.
    let (title, generated) = w
        .events
        .iter()
        .find(|(t, g)| g.point.is_some() && t.contains("Session 0 "))
        .unwrap();
    let series = json(&format!(
        "{base}/oruk/services?text={}&per_page=10",
        title.replace(' ', "%20")
    ));
    let hit = series["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == json!(title))
        .unwrap_or_else(|| panic!("{title} in {series}"));
    let loc = &hit["service_at_locations"][0]["location"];
    let point = generated.point.unwrap();
    assert_eq!(
        (loc["latitude"].as_f64(), loc["longitude"].as_f64()),
        (Some(point.0), Some(point.1)),
        "{hit}"
    );

    // The calendar, read by a real consumer.
    let (status, _, ics) = blocking_get(&format!(
        "{base}/calendar.ics?from=2027-01-01&to=2028-06-01"
    ))
    .unwrap();
    assert_eq!(status, 200);
    let path = w.env.dir.path().join("merged.ics");
    std::fs::write(&path, &ics).unwrap();
    let py = python();
    if !tool_available(&py, &["-c", "import icalendar"], "python icalendar") {
        daemon.stop();
        return;
    }
    let out = Command::new(&py)
        .args(["-c", PY_GEO, path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let read: BTreeMap<String, (f64, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    let expected: BTreeMap<String, (f64, f64)> = w
        .events
        .values()
        .filter_map(|g| g.point.map(|p| (g.title.clone(), p)))
        .collect();
    assert_eq!(read, expected);

    // The ORUK responses carrying points still validate against the official profile.
    let mut checked = vec![
        json!({"path": "/services", "body": services}),
        json!({"path": "/services", "body": series}),
    ];
    let sal = json(&format!("{base}/oruk/service_at_locations?per_page=500"));
    checked.push(json!({"path": "/service_at_locations", "body": sal}));
    let one = hit["id"].as_str().unwrap();
    checked.push(
        json!({"path": "/services/{id}", "body": json(&format!("{base}/oruk/services/{one}"))}),
    );
    let file = w.env.dir.path().join("oruk-responses.json");
    std::fs::write(&file, Value::Array(checked).to_string()).unwrap();
    let out = Command::new(&py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oruk_api/validate.py"
        ))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oruk-3.0"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.stop();
}
