//! Entity resolution through real syncs and the admin API: a confident merge, a review-queue entry
//! with its evidence, an admin's merge and split that survive re-syncs, and ids that stay stable.

mod common;

use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "dedupe-test-token";

fn orgs(items: &[serde_json::Value]) -> String {
    serde_json::json!({ "organisations": items }).to_string()
}

fn partner(id: &str, url: &str, priority: i64) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\npriority = {priority}\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{url}\"\nretries = 0\n\n"
    )
}

fn auth() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

fn admin_get(base: &str, path: &str) -> serde_json::Value {
    let (k, v) = auth();
    let (status, _, body) = get_with(&format!("{base}{path}"), &[(k, &v)]).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn admin_post(base: &str, path: &str, body: &str) -> serde_json::Value {
    let (status, text) = post(&format!("{base}{path}"), Some(TOKEN), body);
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn resync(base: &str) {
    admin_post(base, "/admin/resync?wait=true&full=true", "");
}

/// Organisation ids by name.
fn ids(base: &str) -> Vec<(String, String, usize)> {
    let page = json(&format!("{base}/v1/organisations?limit=500"));
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["id"].as_str().unwrap().to_string(),
                o["partners"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn merge_review_manual_split_and_stable_ids() {
    let a = fake_partner(json_feed(&orgs(&[
        serde_json::json!({"id": "a1", "name": "Child Dynamix", "identifiers": {"charity_number": "1171101"},
                           "website": "https://www.childdynamix.co.uk", "address": {"postcode": "HU4 6TD"}}),
        serde_json::json!({"id": "a2", "name": "Hull Community Shop"}),
        serde_json::json!({"id": "a3", "name": "Age UK Hull", "identifiers": {"charity_number": "1170001"},
                           "address": {"postcode": "HU1 2RE"}}),
    ])));
    let b = fake_partner(json_feed(&orgs(&[
        // Same charity, written differently, slightly different name: a confident merge.
        serde_json::json!({"id": "b1", "name": "Child Dynamix Ltd", "identifiers": {"charity_number": "Registered charity no. 1171101"}}),
        // Same name, nothing else: uncertain, goes to review.
        serde_json::json!({"id": "b2", "name": "Hull Community Shop"}),
        // A branch of the same national charity elsewhere: separate.
        serde_json::json!({"id": "b3", "name": "Age UK Cheshire East", "address": {"postcode": "SK11 6JF"}}),
    ])));
    let mut toml = partner("alpha", &a.url("/o.json"), 10);
    toml.push_str(&partner("beta", &b.url("/o.json"), 5));
    let env = TestEnv::new(&toml);
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids(&base).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "startup sync did not finish: {:?}",
            ids(&base)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = ids(&base);
    assert_eq!(listed.len(), 5, "{listed:?}");
    let child = listed
        .iter()
        .find(|(n, _, _)| n == "Child Dynamix")
        .unwrap();
    assert_eq!(child.2, 2, "both partners behind the merged record");
    let child_id = child.1.clone();
    let org = json(&format!("{base}/v1/organisations/{child_id}"));
    assert_eq!(
        org["field_sources"]["name"], "alpha",
        "the higher-priority partner wins the name"
    );
    assert_eq!(org["alternate_names"][0], "Child Dynamix Ltd");

    // The uncertain pair is queued with its evidence.
    let queue = admin_get(&base, "/admin/review?kind=organisations");
    let items = queue["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{queue:#}");
    assert_eq!(items[0]["a"]["record"]["name"], "Hull Community Shop");
    assert!(items[0]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains("same name")));
    let review_id = items[0]["id"].as_i64().unwrap();

    // The admin says they are the same; the decision holds across a full re-sync.
    admin_post(
        &base,
        &format!("/admin/review/{review_id}"),
        r#"{"decision": "merge"}"#,
    );
    let shop: Vec<_> = ids(&base)
        .into_iter()
        .filter(|(n, _, _)| n == "Hull Community Shop")
        .collect();
    assert_eq!(shop.len(), 1);
    assert_eq!(shop[0].2, 2);
    let shop_id = shop[0].1.clone();
    resync(&base);
    let shop_after: Vec<_> = ids(&base)
        .into_iter()
        .filter(|(n, _, _)| n == "Hull Community Shop")
        .collect();
    assert_eq!(shop_after.len(), 1, "manual merge survives re-sync");
    assert_eq!(shop_after[0].1, shop_id, "and keeps its id");
    assert!(
        admin_get(&base, "/admin/review").as_object().unwrap()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A manual split beats the shared charity number, and survives re-sync.
    admin_post(
        &base,
        "/admin/split",
        &serde_json::json!({"entity_id": child_id, "partner": "beta", "record_id": "b1"})
            .to_string(),
    );
    resync(&base);
    let after_split = ids(&base);
    let children: Vec<_> = after_split
        .iter()
        .filter(|(n, _, _)| n.starts_with("Child Dynamix"))
        .collect();
    assert_eq!(children.len(), 2, "{after_split:?}");
    assert!(
        children.iter().any(|(_, id, _)| *id == child_id),
        "the original keeps its id"
    );

    // Ids are stable across a restart and a re-sync.
    let before: Vec<String> = ids(&base).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(daemon.stop(), Some(0));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    resync(&daemon.base);
    let after: Vec<String> = ids(&daemon.base).into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(before, after);

    // A manual merge of two entities: the loser redirects to the survivor.
    let age: Vec<_> = ids(&daemon.base)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("Age UK"))
        .collect();
    assert_eq!(age.len(), 2);
    admin_post(
        &daemon.base,
        "/admin/merge",
        &serde_json::json!({"ids": [age[0].1, age[1].1]}).to_string(),
    );
    let merged: Vec<_> = ids(&daemon.base)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("Age UK"))
        .collect();
    assert_eq!(merged.len(), 1);
    let loser = if merged[0].1 == age[0].1 {
        &age[1].1
    } else {
        &age[0].1
    };
    let (status, headers, _) =
        blocking_get(&format!("{}/v1/organisations/{loser}", daemon.base)).unwrap();
    assert_eq!(status, 301);
    assert!(headers["location"]
        .to_str()
        .unwrap()
        .ends_with(&merged[0].1));
    daemon.stop();
}

#[test]
fn several_partners_shared_numbers_subsidiaries_and_a_paged_review_queue() {
    let groups = [
        "Anlaby",
        "Bransholme",
        "Cottingham",
        "Hessle",
        "Marfleet",
        "Sutton",
    ];
    let postcodes = [
        "HU10 6AA", "HU7 4EY", "HU16 4BB", "HU13 0AA", "HU9 5SS", "HU8 9AA",
    ];
    // A charity register lists each local group with the national body's number, in capitals.
    let register: Vec<serde_json::Value> = groups
        .iter()
        .zip(postcodes)
        .enumerate()
        .map(|(i, (g, pc))| {
            serde_json::json!({"id": format!("r{i}"), "name": format!("{} SCOUT GROUP", g.to_uppercase()),
                               "identifiers": {"charity_number": "306101"}, "address": {"postcode": pc}})
        })
        .collect();
    // A council directory gives the same groups at their venues, without numbers.
    let mut council: Vec<serde_json::Value> = groups
        .iter()
        .zip(postcodes)
        .enumerate()
        .map(|(i, (g, pc))| {
            serde_json::json!({"id": format!("c{i}"), "name": format!("{g} Scout Group"),
                               "address": {"postcode": pc, "locality": "Kingston upon Hull"}})
        })
        .collect();
    let clubs = ["Hull Knit Club", "Hull Chess Club", "Hull Walking Group"];
    for (i, c) in clubs.iter().enumerate() {
        council.push(serde_json::json!({"id": format!("k{i}"), "name": c}));
    }
    // Grants data: org-ids, a parent charity and its trading subsidiary, and the clubs by name.
    let mut grants = vec![
        serde_json::json!({"id": "g1", "name": "Age UK Hull", "identifiers": {"org_id": "GB-CHC-1170001"},
                           "address": {"postcode": "HU1 3AA"}}),
        serde_json::json!({"id": "g2", "name": "Age UK Hull Trading Limited", "identifiers": {"company_number": "3456789"},
                           "address": {"postcode": "HU1 3AA"}}),
    ];
    for (i, c) in clubs.iter().enumerate() {
        grants.push(serde_json::json!({"id": format!("gk{i}"), "name": c}));
    }
    let feeds = [
        fake_partner(json_feed(&orgs(&register))),
        fake_partner(json_feed(&orgs(&council))),
        fake_partner(json_feed(&orgs(&grants))),
    ];
    let mut toml = String::new();
    for (name, feed) in ["register", "council", "grants"].iter().zip(&feeds) {
        toml.push_str(&partner(name, &feed.url("/o.json"), 5));
    }
    let env = TestEnv::new(&toml);
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    // 6 groups, the charity, its subsidiary, and the 3 clubs twice each (uncertain).
    let expected = groups.len() + 2 + 2 * clubs.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ids(&base).len() != expected || ids(&base).iter().any(|(_, _, n)| *n == 0) {
        assert!(Instant::now() < deadline, "{:?}", ids(&base));
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let listed = ids(&base);
    assert_eq!(listed.len(), expected, "{listed:#?}");
    let scouts: Vec<_> = listed
        .iter()
        .filter(|(n, _, _)| n.to_lowercase().contains("scout"))
        .collect();
    assert_eq!(
        scouts.len(),
        groups.len(),
        "one entity per local group: {scouts:?}"
    );
    assert!(
        scouts.iter().all(|(_, _, partners)| *partners == 2),
        "{scouts:?}"
    );
    assert_eq!(
        listed
            .iter()
            .filter(|(n, _, _)| n.starts_with("Age UK Hull"))
            .count(),
        2,
        "the trading subsidiary is not its parent"
    );

    // The queue pages through every uncertain pair, most consequential first, each item with
    // both whole clusters.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/admin/review?kind=organisations&limit=1".to_string(),
            Some(c) => format!("/admin/review?kind=organisations&limit=1&cursor={c}"),
        };
        let page = admin_get(&base, &path);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        for item in items {
            assert_eq!(item["cluster_a"]["size"], 1, "{item:#}");
            assert_eq!(item["cluster_a"]["members"].as_array().unwrap().len(), 1);
            assert_eq!(
                item["cluster_b"]["members"][0]["record"]["name"],
                item["b"]["record"]["name"]
            );
            assert!(item["priority"].as_f64().unwrap() > 0.0);
            seen.push(item["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), clubs.len(), "each uncertain pair once");
    let (k, v) = auth();
    let (status, _, _) =
        get_with(&format!("{base}/admin/review?cursor=nonsense"), &[(k, &v)]).unwrap();
    assert_eq!(status, 400);
    daemon.stop();
}
