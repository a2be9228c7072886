//! Partners' licences through the real binary: two partners under different licences, each
//! record's provenance naming its partner's licence in the JSON API and the exports, the change
//! feeds stating a licence only when their partners share one (else linking `/v1/licences`), the
//! calendar crediting its partners, a reloaded licence showing at once, and a bad id refused.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const OGL: &str = "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/";
const CC_BY: &str = "https://creativecommons.org/licenses/by/4.0/";

const ALPHA_ORGS: &str = r#"{"organisations": [
  {"id": "a1", "name": "Hull Food Bank", "identifiers": {"charity_number": "1111111"}, "address": {"postcode": "HU1 1AA"}}
]}"#;
const BETA_ORGS: &str = r#"{"organisations": [
  {"id": "b1", "name": "Hull Foodbank", "identifiers": {"charity_number": "1111111"}},
  {"id": "b2", "name": "Beverley Walking Group", "address": {"postcode": "HU17 9AA"}}
]}"#;
const BETA_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//beta//EN\r\n\
BEGIN:VEVENT\r\nUID:w1@beta\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20270310T100000Z\r\nDTEND:20270310T120000Z\r\n\
SUMMARY:Beverley Westwood Walk\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn partners(a: &FakeSite, b: &FakeSite, alpha_licence: &str) -> String {
    format!(
        "[[partners]]\nid = \"alpha\"\nname = \"Hull CVS\"\nlicence = \"{alpha_licence}\"\nwebsite = \"https://hullcvs.example\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n\
         [[partners]]\nid = \"beta\"\nname = \"East Riding Voluntary Action\"\nlicence = \"cc-by-4.0\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n\
         [[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n\n",
        a.url("/orgs.json"),
        b.url("/orgs.json"),
        b.url("/events.ics")
    )
}

/// Each partner of a record's provenance → its licence id (or null) and attribution.
fn provenance(record: &serde_json::Value) -> Vec<(String, serde_json::Value, String)> {
    let mut out: Vec<_> = record["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partner"].as_str().unwrap().to_string(),
                p["licence"]["id"].clone(),
                p["attribution"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn by_name<'a>(items: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {items}"))
}

fn unfolded(ics: &str) -> String {
    ics.replace("\r\n ", "")
}

#[test]
fn each_record_names_its_partners_licence_and_feeds_state_theirs_truthfully() {
    let (a, b) = (fake_site(), fake_site());
    a.put("/orgs.json", "application/json", ALPHA_ORGS);
    b.put("/orgs.json", "application/json", BETA_ORGS);
    b.put("/events.ics", "text/calendar", BETA_ICS);
    let env = TestEnv::new(&partners(&a, &b, "OGL-UK-3.0"));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    let base = daemon.base.clone();

    // The merged food bank credits both partners, each under its own licence.
    let orgs = json(&format!("{base}/v1/organisations?limit=500"));
    let food = by_name(&orgs, "Hull Food Bank");
    let expected = vec![
        (
            "alpha".to_string(),
            serde_json::json!("OGL-UK-3.0"),
            "Hull CVS".to_string(),
        ),
        (
            "beta".to_string(),
            serde_json::json!("CC-BY-4.0"),
            "East Riding Voluntary Action".to_string(),
        ),
    ];
    assert_eq!(provenance(food), expected, "{food}");
    assert_eq!(food["partners"][0]["licence"]["url"], OGL);
    let id = food["id"].as_str().unwrap();
    let one = json(&format!("{base}/v1/organisations/{id}"));
    assert_eq!(provenance(&one), expected);
    let events = json(&format!("{base}/v1/events?from=2027-01-01&to=2027-12-31"));
    let walk = &events["items"][0];
    assert_eq!(walk["partners"][0]["licence"]["url"], CC_BY, "{walk}");
    let walk_id = walk["id"].as_str().unwrap();
    let walk_one = json(&format!("{base}/v1/events/{walk_id}"));
    assert_eq!(walk_one["partners"][0]["licence"]["id"], "CC-BY-4.0");

    // Organisations come under two licences: the feed links the list instead of claiming one.
    // Only beta lists events, so that feed's licence is beta's.
    let feed = json(&format!("{base}/v1/feeds/organisations"));
    assert_eq!(feed["license"], format!("{base}/v1/licences"));
    let in_feed = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap();
    assert_eq!(provenance(&in_feed["data"]), expected);
    let feed = json(&format!("{base}/v1/feeds/events"));
    assert_eq!(feed["license"], CC_BY);
    let list = json(&format!("{base}/v1/licences"));
    let listed: Vec<(String, String)> = list["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partner"].as_str().unwrap().to_string(),
                p["licence"]["url"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![("alpha".into(), OGL.into()), ("beta".into(), CC_BY.into())]
    );
    assert!(list["partners"][0]["attribution"]
        .as_str()
        .unwrap()
        .contains("Hull CVS (https://hullcvs.example)"));
    assert!(list["organisations"]["licence"].is_null());
    assert_eq!(list["events"]["licence"]["id"], "CC-BY-4.0");

    // The calendar credits the events partner in X- properties, before its first component.
    let (status, _, ics) = blocking_get(&format!("{base}/calendar.ics")).unwrap();
    assert_eq!(status, 200);
    let ics = unfolded(&ics);
    let head = ics.split("BEGIN:V").nth(1).unwrap_or("");
    assert!(
        head.contains(&format!("X-TRIBUTARY-LICENSE:{CC_BY}\r\n")),
        "{ics}"
    );
    assert!(head.contains(
        "X-TRIBUTARY-ATTRIBUTION:East Riding Voluntary Action\\, licensed under CC-BY-4.0"
    ));
    assert!(!head.contains("Hull CVS"), "alpha has no events: {head}");

    // Exports carry the same provenance.
    let out = env.cmd(&["export", "--kind", "organisations", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let food_x = exported
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == id)
        .unwrap();
    assert_eq!(provenance(food_x), expected);
    let out = env.cmd(&["export", "--kind", "organisations", "--format", "csv"]);
    let mut csv = csv::Reader::from_reader(out.stdout.as_slice());
    let headers = csv.headers().unwrap().clone();
    let col = headers.iter().position(|h| h == "licences").unwrap();
    let row = csv
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == id)
        .unwrap();
    let mut cell: Vec<&str> = row[col].split(';').collect();
    cell.sort();
    assert_eq!(cell, vec!["alpha:OGL-UK-3.0", "beta:CC-BY-4.0"]);
    let out = env.cmd(&["export", "--kind", "events", "--format", "ics"]);
    assert!(unfolded(&stdout(&out)).contains(&format!("X-TRIBUTARY-LICENSE:{CC_BY}\r\n")));

    // Alpha relicenses under CC BY: after a reload the partners agree and the feed says so, and
    // the cached event pages and calendars are not served stale either.
    let text = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        text.replace("\"OGL-UK-3.0\"", "\"CC-BY-4.0\""),
    )
    .unwrap();
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while json(&format!("{base}/v1/feeds/organisations"))["license"] != CC_BY {
        assert!(
            Instant::now() < deadline,
            "the reloaded licence never showed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let one = json(&format!("{base}/v1/organisations/{id}"));
    assert_eq!(one["partners"][0]["licence"]["id"], "CC-BY-4.0");
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn an_unknown_licence_is_refused_with_its_key() {
    let (a, b) = (fake_site(), fake_site());
    let env = TestEnv::new(&partners(&a, &b, "OGL-3"));
    let out = env.cmd(&["check-config"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("partners[0].licence"), "{text}");
    assert!(text.contains("SPDX"), "{text}");
}

#[test]
fn a_removed_partners_records_are_never_covered_by_the_others_licence() {
    let (a, b) = (fake_site(), fake_site());
    a.put("/orgs.json", "application/json", ALPHA_ORGS);
    b.put("/orgs.json", "application/json", BETA_ORGS);
    b.put("/events.ics", "text/calendar", BETA_ICS);
    // Both under CC BY: the organisations feed states it.
    let env = TestEnv::new(&partners(&a, &b, "CC-BY-4.0"));
    assert!(env.cmd(&["sync"]).status.success());
    let daemon = env.start();
    let base = daemon.base.clone();
    assert_eq!(
        json(&format!("{base}/v1/feeds/organisations"))["license"],
        CC_BY
    );
    // Beta's block goes: through the grace period its records are still published, credited by
    // id under no stated licence, and the feed no longer claims CC BY for them.
    let text = std::fs::read_to_string(env.config()).unwrap();
    let alpha_only = text
        .split("[[partners]]\nid = \"beta\"")
        .next()
        .unwrap()
        .to_string();
    std::fs::write(env.config(), alpha_only).unwrap();
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    daemon.wait_for_log("partner removed from the config", Duration::from_secs(10));
    // The removal is logged inside the store's transaction, before the new config serves.
    daemon.wait_for_partners(1, Duration::from_secs(10));
    let feed = json(&format!("{base}/v1/feeds/organisations"));
    assert_eq!(feed["license"], format!("{base}/v1/licences"), "{feed}");
    let orgs = json(&format!("{base}/v1/organisations?limit=500"));
    let walkers = by_name(&orgs, "Beverley Walking Group");
    assert_eq!(
        provenance(walkers),
        vec![(
            "beta".to_string(),
            serde_json::Value::Null,
            "beta".to_string()
        )]
    );
    assert!(walkers["partners"][0]["licence"].is_null());
    assert_eq!(daemon.stop(), Some(0));
}
