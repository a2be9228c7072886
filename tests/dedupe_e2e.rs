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
