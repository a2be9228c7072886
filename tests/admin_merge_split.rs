//! Admins' merge and split as exact inverses, through the real binary: round trips merge→split,
//! split→merge and merge→merge→split, each checked against the entity API (bodies and 301s), the
//! RPDE change feeds and the calendar; a merge across two charity numbers needs `force`.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "merge-split-token";

const ALPHA_ORGS: &str = r#"{"organisations": [
  {"id": "a1", "name": "Hull Food Bank", "identifiers": {"charity_number": "1111111"}, "address": {"postcode": "HU1 1AA"}},
  {"id": "a2", "name": "Goole Youth Club", "website": "https://goole-youth.example.org", "address": {"postcode": "DN14 5AA"}},
  {"id": "a3", "name": "Selby Arts Collective", "identifiers": {"charity_number": "2222222"}, "address": {"postcode": "YO8 4AA"}}
]}"#;
const BETA_ORGS: &str = r#"{"organisations": [
  {"id": "b1", "name": "Hull Foodbank", "identifiers": {"charity_number": "1111111"}},
  {"id": "b2", "name": "Goole Youth Club", "website": "https://goole-youth.example.org", "address": {"postcode": "DN14 5AA"}}
]}"#;

const ALPHA_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//alpha//EN\r\n\
BEGIN:VEVENT\r\nUID:e1@alpha\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20270310T100000Z\r\nDTEND:20270310T120000Z\r\n\
SUMMARY:Coffee Morning at the Library\r\nLOCATION:Hull Central Library\\, Albion Street\\, HU1 3TF\r\nURL:https://alpha.example.org/coffee\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:e2@alpha\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20270412T180000Z\r\nDTEND:20270412T200000Z\r\n\
SUMMARY:Book Club for Young Readers\r\nLOCATION:Goole Library\\, Carlisle Street\\, DN14 5DS\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";
const BETA_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//beta//EN\r\n\
BEGIN:VEVENT\r\nUID:f1@beta\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20270310T100000Z\r\nDTEND:20270310T120000Z\r\n\
SUMMARY:Coffee Morning at the Library\r\nLOCATION:Hull Central Library\\, Albion Street\\, HU1 3TF\r\nURL:https://alpha.example.org/coffee\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

fn partner(id: &str, site: &FakeSite) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n\
         [[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n\n",
        site.url("/orgs.json"),
        site.url("/events.ics"),
    )
}

struct World {
    _env: TestEnv,
    daemon: Daemon,
    _sites: (FakeSite, FakeSite),
}

fn world() -> World {
    let (a, b) = (fake_site(), fake_site());
    a.put("/orgs.json", "application/json", ALPHA_ORGS);
    a.put("/events.ics", "text/calendar", ALPHA_ICS);
    b.put("/orgs.json", "application/json", BETA_ORGS);
    b.put("/events.ics", "text/calendar", BETA_ICS);
    let env = TestEnv::new(&format!("{}{}", partner("alpha", &a), partner("beta", &b)));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    // The startup sync, then a full one joined and waited for: nothing is in flight after.
    while orgs(&daemon.base).len() < 3 || events(&daemon.base).len() < 2 {
        assert!(Instant::now() < deadline, "the startup sync did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    admin(&daemon.base, "/admin/resync?wait=true", "");
    World {
        _env: env,
        daemon,
        _sites: (a, b),
    }
}

fn admin(base: &str, path: &str, body: &str) -> serde_json::Value {
    let (status, text) = post(&format!("{base}{path}"), Some(TOKEN), body);
    assert_eq!(status, 200, "{path} {body}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Live entities by name → (id, the records behind it as "partner/record").
fn listed(base: &str, path: &str, name: &str) -> HashMap<String, (String, Vec<String>)> {
    let page = json(&format!("{base}{path}"));
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let mut recs: Vec<String> = o["partners"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["partner"].as_str().unwrap(),
                        p["record_id"].as_str().unwrap()
                    )
                })
                .collect();
            recs.sort();
            (
                o[name].as_str().unwrap().to_string(),
                (o["id"].as_str().unwrap().to_string(), recs),
            )
        })
        .collect()
}

fn orgs(base: &str) -> HashMap<String, (String, Vec<String>)> {
    listed(base, "/v1/organisations?limit=500", "name")
}

fn events(base: &str) -> HashMap<String, (String, Vec<String>)> {
    listed(
        base,
        "/v1/events?from=2027-01-01&to=2027-12-31&limit=500",
        "title",
    )
}

/// What `/v1/{kind}/{id}` answers: 200 with the name, 301 with where to, or another status.
#[derive(Debug, PartialEq)]
enum Answer {
    Live(String),
    Moved(String),
    Status(u16),
}

fn answer(base: &str, kind: &str, id: &str) -> Answer {
    let (status, headers, body) = blocking_get(&format!("{base}/v1/{kind}/{id}")).unwrap();
    match status {
        200 => {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let name = v
                .get("name")
                .or_else(|| v.get("title"))
                .and_then(|n| n.as_str())
                .unwrap();
            Answer::Live(name.to_string())
        }
        301 => {
            let to = headers["location"].to_str().unwrap();
            Answer::Moved(to.rsplit('/').next().unwrap().to_string())
        }
        s => Answer::Status(s),
    }
}

/// Each entity's latest state in the RPDE change feed, read page by page to its end.
fn feed_states(base: &str, kind: &str) -> HashMap<String, String> {
    let mut states = HashMap::new();
    let mut after = 0i64;
    loop {
        let page = json(&format!(
            "{base}/v1/feeds/{kind}?afterChangeNumber={after}&limit=100"
        ));
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return states;
        }
        for item in items {
            states.insert(
                item["id"].as_str().unwrap().to_string(),
                item["state"].as_str().unwrap().to_string(),
            );
            after = item["modified"].as_i64().unwrap();
        }
    }
}

/// Each calendar UID's id part → whether its VEVENT is cancelled.
fn calendar(base: &str) -> HashMap<String, bool> {
    let (status, _, body) = blocking_get(&format!("{base}/calendar.ics")).unwrap();
    assert_eq!(status, 200);
    let mut out = HashMap::new();
    for block in body.split("BEGIN:VEVENT").skip(1) {
        let block = block.split("END:VEVENT").next().unwrap();
        let uid = block
            .lines()
            .find_map(|l| l.strip_prefix("UID:"))
            .unwrap()
            .trim();
        let id = uid.split('@').next().unwrap().to_string();
        out.insert(id, block.contains("STATUS:CANCELLED"));
    }
    out
}

/// The API, the feed and the calendar agree that exactly `live` are live and `moved` redirect
/// to their survivor (a tombstone in the feed).
fn assert_state(
    base: &str,
    kind: &str,
    live: &[(&str, &str)],
    moved: &[(&str, &str)],
    context: &str,
) {
    let feed = feed_states(base, kind);
    let cal = (kind == "events").then(|| calendar(base));
    for (id, name) in live {
        assert_eq!(
            answer(base, kind, id),
            Answer::Live(name.to_string()),
            "{context}: {id}"
        );
        assert_eq!(
            feed.get(*id).map(String::as_str),
            Some("updated"),
            "{context}: {id} in the feed"
        );
        if let Some(cal) = &cal {
            assert_eq!(
                cal.get(*id),
                Some(&false),
                "{context}: {id} in calendar.ics"
            );
        }
    }
    for (id, to) in moved {
        assert_eq!(
            answer(base, kind, id),
            Answer::Moved(to.to_string()),
            "{context}: {id}"
        );
        assert_eq!(
            feed.get(*id).map(String::as_str),
            Some("deleted"),
            "{context}: {id} in the feed"
        );
        if let Some(cal) = &cal {
            assert_ne!(
                cal.get(*id),
                Some(&false),
                "{context}: merged-away {id} is not live in calendar.ics"
            );
        }
    }
}

fn records(recs: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = recs.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn merge_then_split_restores_both_entities_ids_feed_and_calendar() {
    let w = world();
    let base = &w.daemon.base;
    let before = orgs(base);
    let (food, food_recs) = before["Hull Food Bank"].clone();
    let (goole, goole_recs) = before["Goole Youth Club"].clone();
    assert_eq!(food_recs, records(&["alpha/a1", "beta/b1"]));
    assert_eq!(goole_recs, records(&["alpha/a2", "beta/b2"]));

    // A wrong merge: the reply names the survivor; the other id answers 301 to it.
    let reply = admin(
        base,
        "/admin/merge",
        &serde_json::json!({"ids": [goole, food]}).to_string(),
    );
    let survivor = reply["survivor"].as_str().unwrap().to_string();
    assert!(survivor == food || survivor == goole, "{reply}");
    let loser = if survivor == food { &goole } else { &food };
    assert_eq!(reply["merged"], serde_json::json!([loser]), "{reply}");
    let merged = orgs(base);
    assert_eq!(merged.len(), 2, "{merged:?}");
    let (_, (id, recs)) = merged.iter().find(|(_, (id, _))| *id == survivor).unwrap();
    assert_eq!(id, &survivor);
    assert_eq!(
        recs,
        &records(&["alpha/a1", "beta/b1", "alpha/a2", "beta/b2"])
    );
    let survivor_name = merged
        .iter()
        .find(|(_, (id, _))| *id == survivor)
        .map(|(n, _)| n.clone())
        .unwrap();
    assert_state(
        base,
        "organisations",
        &[(&survivor, &survivor_name)],
        &[(loser, &survivor)],
        "after the merge",
    );

    // Splitting one of the wrongly merged records undoes the merge: both entities as the engine
    // formed them, with their own ids; no redirect is left.
    let reply = admin(
        base,
        "/admin/split",
        &serde_json::json!({"entity_id": survivor, "partner": "beta", "record_id": "b2"})
            .to_string(),
    );
    assert_eq!(reply["undid_merge"], true, "{reply}");
    assert_eq!(reply["record_entity_id"], goole.as_str(), "{reply}");
    assert_eq!(reply["entity_id"], food.as_str(), "{reply}");
    let after = orgs(base);
    assert_eq!(after, before, "the split restores the clusters and ids");
    assert_state(
        base,
        "organisations",
        &[(&food, "Hull Food Bank"), (&goole, "Goole Youth Club")],
        &[],
        "after the split",
    );

    // A full re-sync (every record resolved again) keeps it so.
    admin(base, "/admin/resync?wait=true&full=true", "");
    assert_eq!(orgs(base), before, "after a full re-sync");

    // The same round trip for events, seen in the calendar as well.
    let ev = events(base);
    let (coffee, coffee_recs) = ev["Coffee Morning at the Library"].clone();
    let (books, _) = ev["Book Club for Young Readers"].clone();
    assert_eq!(coffee_recs, records(&["alpha/e1@alpha", "beta/f1@beta"]));
    let reply = admin(
        base,
        "/admin/merge",
        &serde_json::json!({"ids": [coffee, books]}).to_string(),
    );
    let survivor = reply["survivor"].as_str().unwrap().to_string();
    let loser = if survivor == coffee { &books } else { &coffee };
    let title = if survivor == coffee {
        "Coffee Morning at the Library"
    } else {
        "Book Club for Young Readers"
    };
    assert_state(
        base,
        "events",
        &[(&survivor, title)],
        &[(loser, &survivor)],
        "events after the merge",
    );
    let reply = admin(
        base,
        "/admin/split",
        &serde_json::json!({"entity_id": survivor, "partner": "alpha", "record_id": "e2@alpha"})
            .to_string(),
    );
    assert_eq!(reply["undid_merge"], true, "{reply}");
    assert_eq!(events(base), ev, "events restored");
    assert_state(
        base,
        "events",
        &[
            (&coffee, "Coffee Morning at the Library"),
            (&books, "Book Club for Young Readers"),
        ],
        &[],
        "events after the split",
    );
}

#[test]
fn split_then_merge_gives_the_record_back_to_its_entity() {
    let w = world();
    let base = &w.daemon.base;
    let before = orgs(base);
    let (food, _) = before["Hull Food Bank"].clone();

    // The engine matched b1 by charity number; the admin says it is not the same.
    let reply = admin(
        base,
        "/admin/split",
        &serde_json::json!({"entity_id": food, "partner": "beta", "record_id": "b1"}).to_string(),
    );
    assert_eq!(reply["undid_merge"], false, "{reply}");
    assert_eq!(
        reply["entity_id"],
        food.as_str(),
        "the rest keeps the id: {reply}"
    );
    let apart = reply["record_entity_id"].as_str().unwrap().to_string();
    assert_ne!(apart, food);
    assert_eq!(orgs(base).len(), 4);
    assert_state(
        base,
        "organisations",
        &[(&food, "Hull Food Bank"), (&apart, "Hull Foodbank")],
        &[],
        "after the split",
    );
    // The split holds across a full re-sync.
    admin(base, "/admin/resync?wait=true&full=true", "");
    assert_eq!(orgs(base).len(), 4);

    // Merging them again lifts the split: the original entity, under its original id.
    let reply = admin(
        base,
        "/admin/merge",
        &serde_json::json!({"ids": [apart, food]}).to_string(),
    );
    assert_eq!(
        reply["survivor"],
        food.as_str(),
        "the older id survives: {reply}"
    );
    assert_eq!(orgs(base), before);
    assert_state(
        base,
        "organisations",
        &[(&food, "Hull Food Bank")],
        &[(&apart, &food)],
        "after the re-merge",
    );
}

#[test]
fn merge_merge_split_and_force_across_charity_numbers() {
    let w = world();
    let base = &w.daemon.base;
    let before = orgs(base);
    let (food, _) = before["Hull Food Bank"].clone();
    let (goole, _) = before["Goole Youth Club"].clone();
    let (selby, _) = before["Selby Arts Collective"].clone();

    let first = admin(
        base,
        "/admin/merge",
        &serde_json::json!({"ids": [food, goole]}).to_string(),
    );
    let survivor = first["survivor"].as_str().unwrap().to_string();
    let loser = if survivor == food { &goole } else { &food };

    // Two charity numbers: refused, naming the parameter and the numbers, and nothing changes.
    let (status, text) = post(
        &format!("{base}/admin/merge"),
        Some(TOKEN),
        &serde_json::json!({"ids": [survivor, selby]}).to_string(),
    );
    assert_eq!(status, 400, "{text}");
    let err: serde_json::Value = serde_json::from_str(&text).unwrap();
    let message = err.to_string();
    assert!(message.contains("force"), "{message}");
    assert!(
        message.contains("1111111") && message.contains("2222222"),
        "{message}"
    );
    assert_eq!(orgs(base).len(), 2);

    let second = admin(
        base,
        "/admin/merge",
        &serde_json::json!({"ids": [survivor, selby], "force": true}).to_string(),
    );
    let top = second["survivor"].as_str().unwrap().to_string();
    assert_eq!(orgs(base).len(), 1);
    let all = orgs(base);
    let (_, (_, recs)) = all.iter().next().unwrap();
    assert_eq!(recs.len(), 5);
    let others: Vec<&String> = [&food, &goole, &selby]
        .into_iter()
        .filter(|id| **id != top)
        .collect();
    for id in &others {
        assert_eq!(
            answer(base, "organisations", id),
            Answer::Moved(top.clone())
        );
    }

    // Splitting Selby's record undoes only the second merge.
    let reply = admin(
        base,
        "/admin/split",
        &serde_json::json!({"entity_id": top, "partner": "alpha", "record_id": "a3"}).to_string(),
    );
    assert_eq!(reply["undid_merge"], true, "{reply}");
    assert_eq!(reply["record_entity_id"], selby.as_str(), "{reply}");
    let after = orgs(base);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        after["Selby Arts Collective"],
        before["Selby Arts Collective"]
    );
    let survivor_name = if survivor == food {
        "Hull Food Bank"
    } else {
        "Goole Youth Club"
    };
    assert_state(
        base,
        "organisations",
        &[
            (&selby, "Selby Arts Collective"),
            (&survivor, survivor_name),
        ],
        &[(loser, &survivor)],
        "after merge, merge, split",
    );
    // And splitting again undoes the first merge too: back to where it began.
    admin(
        base,
        "/admin/split",
        &serde_json::json!({"entity_id": survivor, "partner": "beta", "record_id": "b2"})
            .to_string(),
    );
    assert_eq!(orgs(base), before);
}
