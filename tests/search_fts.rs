//! Full-text search (`q`) through the real daemon: prefix matching, name matches ranked first,
//! charity and company numbers with and without their scheme, accents, hostile FTS syntax, other
//! filters and paging with `q`, the index in step after syncs and an admin's merge, search pages
//! cached until the store changes, a store migrated from before the index, and events' `q`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const TOKEN: &str = "search-test-token";

fn org_items(renamed: bool) -> Value {
    let mut items = vec![
        json!({"id": "o1", "name": "Hull Clubhouse Trust", "identifiers": {"charity_number": "1123456"},
               "address": {"locality": "Hull", "postcode": "HU1 1AA"}}),
        json!({"id": "o2", "name": "Riverside Community Centre",
               "address": {"locality": "Clubmoor", "postcode": "L4 1AA"}}),
        json!({"id": "o3", "name": "Café Crème Club", "address": {"locality": "Leeds", "postcode": "LS1 1AA"}}),
        json!({"id": "o6", "name": "Hebden Bridge Allotments", "identifiers": {"company_number": "01234567"},
               "address": {"postcode": "HX7 8AA"}}),
        json!({"id": "o7", "name": "Humber Food Bank", "address": {"locality": "Hull", "postcode": "HU9 1AA"}}),
    ];
    if renamed {
        items.push(json!({"id": "o4", "name": "Northern Painters Network", "address": {"postcode": "M1 1AA"}}));
    } else {
        items.push(json!({"id": "o4", "name": "Northern Arts Network", "alternate_names": ["Clubbers United"],
                          "address": {"postcode": "M1 1AA"}}));
        items.push(json!({"id": "o5", "name": "Sandwich Society",
                          "identifiers": {"charity_number": "SC045678", "org_id": "GB-SC-SC045678"},
                          "address": {"postcode": "CT13 9AA"}}));
    }
    json!({ "organisations": items })
}

const EVENTS: &str = r#"{"events": [{"id": "e1", "title": "Funding workshop", "start": "2027-02-10T10:00:00+00:00",
  "timezone": "Europe/London", "organiser": {"name": "Cheshire CVS"},
  "location": {"name": "Crewe Library", "postcode": "CW1 2DD"}}]}"#;

fn partners(orgs: &FakePartner, events: &FakePartner) -> String {
    format!(
        "[[partners]]\nid = \"alpha\"\nname = \"Alpha\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n",
        orgs.url("/o.json"),
        events.url("/e.json")
    )
}

fn enc(q: &str) -> String {
    url::form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

fn page(base: &str, path: &str, query: &str) -> Value {
    let (status, _, body) = blocking_get(&format!("{base}{path}?{query}")).unwrap();
    assert_eq!(status, 200, "{path}?{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Names found by `q` (and any other parameters), in the order served.
fn search(base: &str, q: &str, more: &str) -> Vec<String> {
    let v = page(base, "/v1/organisations", &format!("q={}{more}", enc(q)));
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}

fn ids_for(base: &str, q: &str) -> Vec<String> {
    let v = page(base, "/v1/organisations", &format!("q={}", enc(q)));
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn renders(base: &str) -> f64 {
    let (_, _, text) = blocking_get(&format!("{base}/metrics")).unwrap();
    text.lines()
        .filter(|l| l.contains("response_renders") && l.contains("route=\"/v1/organisations\""))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

fn wait_for_orgs(base: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = page(base, "/v1/organisations", "limit=500");
        if v["items"].as_array().map(Vec::len) == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "startup sync did not land: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What every store must answer, whether its index was written by syncs or by the migration.
fn check_search(base: &str) {
    // Prefix of the last word; name (and other-name) matches before a match by place.
    assert_eq!(
        search(base, "club", ""),
        [
            "Café Crème Club",
            "Hull Clubhouse Trust",
            "Northern Arts Network",
            "Riverside Community Centre"
        ]
    );
    assert_eq!(search(base, "clubh", ""), ["Hull Clubhouse Trust"]);
    assert_eq!(search(base, "hebden bri", ""), ["Hebden Bridge Allotments"]);
    assert_eq!(
        search(base, "hull", ""),
        ["Hull Clubhouse Trust", "Humber Food Bank"],
        "the name match first, then the one in Hull"
    );
    assert_eq!(search(base, "hull food", ""), ["Humber Food Bank"]);
    // Identifiers, bare or with their org-id.guide scheme, padded or not.
    for q in ["1123456", "GB-CHC-1123456", "gb-chc-1123456"] {
        assert_eq!(search(base, q, ""), ["Hull Clubhouse Trust"], "{q}");
    }
    for q in ["01234567", "1234567", "GB-COH-01234567", "GB-COH-1234567"] {
        assert_eq!(search(base, q, ""), ["Hebden Bridge Allotments"], "{q}");
    }
    for q in ["SC045678", "GB-SC-SC045678"] {
        assert_eq!(search(base, q, ""), ["Sandwich Society"], "{q}");
    }
    // Postcodes with or without their space; accents and case folded both ways.
    for q in ["HU1 1AA", "hu11aa"] {
        assert_eq!(search(base, q, ""), ["Hull Clubhouse Trust"], "{q}");
    }
    for q in ["cafe", "CRÈME club", "creme", "café"] {
        assert_eq!(search(base, q, ""), ["Café Crème Club"], "{q}");
    }
    // Other filters narrow a search.
    assert_eq!(
        search(base, "club", "&postcode_area=LS"),
        ["Café Crème Club"]
    );
    assert!(search(base, "club", "&postcode_area=SK").is_empty());
}

#[test]
fn search_ranks_finds_identifiers_survives_hostile_input_and_follows_syncs() {
    let orgs = fake_partner(json_feed(&org_items(false).to_string()));
    let events = fake_partner(json_feed(EVENTS));
    let env = TestEnv::new(&partners(&orgs, &events));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    wait_for_orgs(&base, 7);
    check_search(&base);

    // Nothing a user types is read as FTS syntax, and none of it fails.
    for q in [
        "\"",
        "AND",
        "*",
        "NEAR(",
        "club\"",
        "OR club",
        "name:club",
        "{name}",
        "^club",
        "club -",
        "NOT",
        "(((",
        "'",
        "\"\"\"",
        "c*l*u*b",
        "+",
        "🎉",
    ] {
        for path in ["/v1/organisations", "/v1/events"] {
            let (status, _, body) =
                blocking_get(&format!("{base}{path}?from=2020-01-01&q={}", enc(q))).unwrap();
            assert_eq!(status, 200, "{path} q={q}: {body}");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["items"].is_array(), "{path} q={q}: {v}");
        }
    }
    assert!(search(&base, "OR", "").is_empty(), "words, not operators");

    // Paging through a ranked search gives the same order as one page.
    let whole = search(&base, "club", "");
    let first = page(&base, "/v1/organisations", "q=club&limit=2");
    let next = first["next"].as_str().expect("a next page");
    let cursor = url::Url::parse(next)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let second = page(
        &base,
        "/v1/organisations",
        &format!("q=club&limit=2&cursor={}", enc(&cursor)),
    );
    let paged: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paged, whole);
    // A search's cursor means nothing to the name order, nor the other way round.
    let (status, _, _) =
        blocking_get(&format!("{base}/v1/organisations?cursor={}", enc(&cursor))).unwrap();
    assert_eq!(status, 400);

    // Events' `q` uses their index: title, organiser, venue and postcode, last word a prefix.
    for q in ["work", "librar", "cheshire fund", "CW12DD", "crewe"] {
        let v = page(
            &base,
            "/v1/events",
            &format!("from=2020-01-01&q={}", enc(q)),
        );
        assert_eq!(v["items"].as_array().unwrap().len(), 1, "events q={q}: {v}");
    }
    let v = page(&base, "/v1/events", "from=2020-01-01&q=clubhouse");
    assert!(v["items"].as_array().unwrap().is_empty());

    // A search page is rendered once while the store stands still.
    let before = renders(&base);
    search(&base, "allotments", "");
    search(&base, "allotments", "");
    search(&base, "allotments", "");
    assert_eq!(
        renders(&base),
        before + 1.0,
        "one rendering, then the cache"
    );

    // A sync that renames one organisation and drops another: the index follows.
    orgs.set(|f| f.body = org_items(true).to_string().into_bytes());
    let (status, text) = post(&format!("{base}/admin/resync?wait=true"), Some(TOKEN), "");
    assert_eq!(status, 200, "{text}");
    wait_for_orgs(&base, 6);
    assert!(
        search(&base, "clubbers", "").is_empty(),
        "old other name gone"
    );
    assert!(search(&base, "arts", "").is_empty(), "old name gone");
    assert_eq!(search(&base, "painters", ""), ["Northern Painters Network"]);
    assert!(search(&base, "sandwich", "").is_empty(), "removed");
    assert!(search(&base, "SC045678", "").is_empty(), "removed");
    assert_eq!(
        search(&base, "club", ""),
        [
            "Café Crème Club",
            "Hull Clubhouse Trust",
            "Riverside Community Centre"
        ]
    );
    let after_sync = renders(&base);
    search(&base, "allotments", "");
    search(&base, "allotments", "");
    assert_eq!(
        renders(&base),
        after_sync + 1.0,
        "the change made the cached page stale, and the new one is cached"
    );

    // An admin's merge: only the survivor is found, by either organisation's words.
    let hebden = ids_for(&base, "hebden");
    let humber = ids_for(&base, "humber");
    assert_eq!((hebden.len(), humber.len()), (1, 1));
    let (status, text) = post(
        &format!("{base}/admin/merge"),
        Some(TOKEN),
        &json!({"ids": [hebden[0], humber[0]]}).to_string(),
    );
    assert_eq!(status, 200, "{text}");
    wait_for_orgs(&base, 5);
    let survivor: Vec<String> = ids_for(&base, "hebden")
        .into_iter()
        .chain(ids_for(&base, "humber"))
        .chain(ids_for(&base, "01234567"))
        .collect();
    assert!(!survivor.is_empty());
    for id in &survivor {
        assert_eq!(id, &survivor[0], "one entity answers: {survivor:?}");
        let (status, _, _) = blocking_get(&format!("{base}/v1/organisations/{id}")).unwrap();
        assert_eq!(status, 200, "a live organisation, not a redirect");
    }
    assert_eq!(
        ids_for(&base, "food").len(),
        ids_for(&base, "food bank").len()
    );
    daemon.stop();
}

#[test]
fn a_store_from_before_the_index_is_searchable_after_migrating() {
    let orgs = fake_partner(json_feed(&org_items(false).to_string()));
    let events = fake_partner(json_feed(EVENTS));
    let env = TestEnv::new(&partners(&orgs, &events));
    let daemon = env.start();
    wait_for_orgs(&daemon.base, 7);
    daemon.stop();

    // The store as the build before the index (migration 17) left it: no search tables, and
    // nothing the steps after it made (18: partner points, 19: the change log by entity, 20:
    // every placed record in one table of places, replacing 18's).
    {
        let conn = db(&env);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 20, "a new migration: undo it here too");
        conn.execute_batch(
            "DROP TABLE organisations_search; DROP TABLE events_search;
             DROP TRIGGER entity_places_insert; DROP TRIGGER entity_places_update;
             DROP TRIGGER entity_places_delete; DROP VIEW entity_place_rows;
             DROP TABLE entity_places; DROP INDEX entities_event_postcode;
             DROP INDEX changes_entity;",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 16).unwrap();
    }

    let daemon = env.start();
    let base = daemon.base.clone();
    wait_for_orgs(&base, 7);
    check_search(&base);
    let v = page(&base, "/v1/events", "from=2020-01-01&q=crewe%20work");
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    daemon.stop();
}
