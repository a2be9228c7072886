//! The ORUK 3.0 API through the real daemon: every response over the demo's store and a generated
//! store of 10k organisations validates against the official profile in `../shared/oruk-3.0` (a
//! real JSON Schema validator, Python `jsonschema`); paging, filters, stable ids, merged-away ids
//! and bad parameters; and a second daemon reading the first's `/oruk/` ends with the same
//! organisations.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

const PROFILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oruk-3.0");
const VALIDATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oruk_api/validate.py");
const TOKEN: &str = "oruk-admin-token";

/// Responses collected for the validator: (profile route template, URL, body).
#[derive(Default)]
struct Checked(Vec<Value>);

impl Checked {
    fn get(&mut self, base: &str, template: &str, path_and_query: &str) -> Value {
        let url = format!("{base}/oruk{path_and_query}");
        let body = json(&url);
        self.0
            .push(json!({"path": template, "url": url, "body": body.clone()}));
        body
    }

    /// Runs the profile validator over everything collected; panics with its report on failure.
    fn validate(&self, dir: &std::path::Path) -> String {
        let file = dir.join("oruk-responses.json");
        std::fs::write(&file, serde_json::to_vec(&self.0).unwrap()).unwrap();
        let out = Command::new(python())
            .arg(VALIDATOR)
            .arg(PROFILE)
            .arg(&file)
            .output()
            .expect("python runs (set TRIBUTARY_PYTHON to the venv with jsonschema)");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "profile validation failed:\n{report}");
        report
    }
}

/// Every page of a listing, checked page by page against the profile's paging fields.
fn all_pages(c: &mut Checked, base: &str, route: &str, query: &str, per_page: u64) -> Vec<Value> {
    let mut items = Vec::new();
    let mut page = 1u64;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let p = c.get(
            base,
            route,
            &format!("{route}?{query}{sep}page={page}&per_page={per_page}"),
        );
        let contents = p["contents"].as_array().unwrap().clone();
        let total_pages = p["total_pages"].as_u64().unwrap();
        let total_items = p["total_items"].as_u64().unwrap();
        assert_eq!(p["page_number"], page, "{p}");
        assert_eq!(p["first_page"], page == 1);
        assert_eq!(p["last_page"], page == total_pages);
        assert_eq!(p["size"].as_u64().unwrap(), contents.len() as u64);
        assert_eq!(p["empty"], contents.is_empty());
        assert_eq!(total_pages, total_items.div_ceil(per_page).max(1));
        items.extend(contents);
        if page >= total_pages {
            assert_eq!(items.len() as u64, total_items, "{route}?{query}");
            return items;
        }
        page += 1;
    }
}

fn status_of(url: &str) -> (u16, String) {
    let (s, _, body) = blocking_get(url).unwrap();
    (s, body)
}

fn assert_bad_param(base: &str, query: &str, param: &str) {
    let (s, body) = status_of(&format!("{base}/oruk/services?{query}"));
    assert_eq!(s, 400, "{query}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "invalid_parameter", "{body}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{param}:")),
        "{query}: {body}"
    );
}

fn count(env: &TestEnv, sql: &str) -> u64 {
    db(env).query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
}

fn live_orgs(env: &TestEnv) -> u64 {
    count(
        env,
        "SELECT COUNT(*) FROM entities WHERE kind = 'organisations' AND deleted_at IS NULL",
    )
}

fn live_series(env: &TestEnv) -> u64 {
    count(
        env,
        "SELECT COUNT(*) FROM entities WHERE kind = 'events' AND deleted_at IS NULL AND recurring = 1",
    )
}

fn synced_demo() -> TestEnv {
    let env = TestEnv::demo();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env
}

#[test]
fn demo_store_answers_the_profile_with_stable_ids_filters_and_paging() {
    let env = synced_demo();
    let mut daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    daemon.wait_healthy(&env);
    let base = env.base();
    let mut c = Checked::default();

    let root = c.get(&base, "/", "/");
    assert_eq!(root["version"], "3.0");

    let services = all_pages(&mut c, &base, "/services", "", 7);
    let (orgs, series) = (live_orgs(&env), live_series(&env));
    assert!(
        orgs > 0 && series > 0,
        "the demo has organisations and series"
    );
    assert_eq!(services.len() as u64, orgs + series);
    let ids: BTreeSet<&str> = services.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), services.len(), "service ids are unique");
    assert!(
        services
            .iter()
            .any(|s| s["schedules"][0]["freq"].is_string()),
        "a recurring event carries its RRULE as a schedule"
    );
    assert!(services
        .iter()
        .any(|s| !s["organization"]["organization_identifiers"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true)));

    // Each one by id, fully nested, the same as listed.
    for s in &services {
        let id = s["id"].as_str().unwrap();
        let one = c.get(&base, "/services/{id}", &format!("/services/{id}"));
        assert_eq!(&one, s);
    }

    // Ids are stable: a second sync and a restart change none.
    daemon.stop();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    daemon.wait_healthy(&env);
    let base = env.base();
    let again = all_pages(&mut c, &base, "/services", "minimal=true", 500);
    let again_ids: BTreeSet<&str> = again.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(again_ids, ids);
    assert!(
        again.iter().all(|s| s.get("organization").is_none()),
        "minimal"
    );

    // service_at_locations: one per service with a place, each by id with its service.
    let sals = all_pages(&mut c, &base, "/service_at_locations", "", 500);
    let located = services
        .iter()
        .filter(|s| !s["service_at_locations"].as_array().unwrap().is_empty())
        .count();
    assert!(located > 0);
    assert_eq!(sals.len(), located);
    for sal in &sals {
        let id = sal["id"].as_str().unwrap();
        let one = c.get(
            &base,
            "/service_at_locations/{id}",
            &format!("/service_at_locations/{id}"),
        );
        // The profile answers with the fully nested service holding this service_at_location.
        assert_eq!(one["id"], sal["service_id"]);
        assert_eq!(&one["service_at_locations"][0], sal);
    }

    // Taxonomy and terms; filtering by a term returns exactly the services carrying it.
    let tax = all_pages(&mut c, &base, "/taxonomies", "", 10);
    assert_eq!(tax.len(), 1);
    let tax_id = tax[0]["id"].as_str().unwrap();
    let full = c.get(&base, "/taxonomies/{id}", &format!("/taxonomies/{tax_id}"));
    let terms = all_pages(&mut c, &base, "/taxonomy_terms", "", 3);
    assert!(!terms.is_empty());
    assert_eq!(
        full["taxonomy_terms"].as_array().unwrap().len(),
        terms.len()
    );
    for term in &terms {
        let tid = term["id"].as_str().unwrap();
        let one = c.get(
            &base,
            "/taxonomy_terms/{id}",
            &format!("/taxonomy_terms/{tid}"),
        );
        assert_eq!(&one, term);
        let filtered = all_pages(
            &mut c,
            &base,
            "/services",
            &format!("taxonomy_term_id={tid}"),
            500,
        );
        let expected: BTreeSet<&str> = services
            .iter()
            .filter(|s| {
                s["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["taxonomy_term_id"] == tid)
            })
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        let got: BTreeSet<&str> = filtered.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert!(!got.is_empty(), "term {term} has services");
        assert_eq!(got, expected, "term {term}");
    }

    // text: a substring of one name finds it, case-insensitively.
    let name = services[0]["name"].as_str().unwrap();
    let word = name
        .split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap()
        .to_uppercase();
    let found = all_pages(
        &mut c,
        &base,
        "/services",
        &format!("text={}", url_escape(&word)),
        500,
    );
    assert!(found.iter().any(|s| s["id"] == services[0]["id"]), "{word}");
    assert!(found.iter().all(|s| s["name"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains(&word.to_lowercase())
        || s["schedules"].is_array()));

    // modified_after: everything changed since long ago, nothing from the future.
    let all = all_pages(&mut c, &base, "/services", "modified_after=2000-01-01", 500);
    assert_eq!(all.len(), services.len());
    let none = all_pages(
        &mut c,
        &base,
        "/services",
        "modified_after=2999-01-01T00:00:00Z",
        500,
    );
    assert!(none.is_empty());

    // Conditional GET as on the JSON API: the ETag answers 304.
    let (s, h, _) = blocking_get(&format!("{base}/oruk/services?per_page=5")).unwrap();
    assert_eq!(s, 200);
    let etag = h["etag"].to_str().unwrap().to_string();
    let (s, _, _) = get_with(
        &format!("{base}/oruk/services?per_page=5"),
        &[("if-none-match", &etag)],
    )
    .unwrap();
    assert_eq!(s, 304);

    // A page past the end is empty, and valid.
    let past = c.get(&base, "/services", "/services?page=999&per_page=50");
    assert_eq!(past["empty"], true);

    // Merged-away ids answer 301 to the survivor's ORUK id, as /v1/organisations/{id} does.
    let page = json(&format!("{base}/v1/organisations?limit=2"));
    let (a, b) = (
        page["items"][0]["id"].as_str().unwrap().to_string(),
        page["items"][1]["id"].as_str().unwrap().to_string(),
    );
    let service_of = |canonical: &str| {
        services
            .iter()
            .find(|s| {
                s["organization"]["uri"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!("/v1/organisations/{canonical}")))
            })
            .map(|s| s["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (sa, sb) = (service_of(&a), service_of(&b));
    let (s, reply) = post(
        &format!("{base}/admin/merge"),
        Some(TOKEN),
        &json!({"ids": [a, b], "force": true}).to_string(),
    );
    assert_eq!(s, 200, "{reply}");
    let reply: Value = serde_json::from_str(&reply).unwrap();
    let survivor = reply["survivor"].as_str().unwrap();
    let (kept, gone) = if survivor == a {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    let (s, h, _) = blocking_get(&format!("{base}/oruk/services/{gone}")).unwrap();
    assert_eq!(s, 301);
    assert_eq!(h["location"], format!("/oruk/services/{kept}").as_str());
    let (s, _) = status_of(&format!("{base}/oruk/services/{kept}"));
    assert_eq!(s, 200);
    let (s, _) = status_of(&format!(
        "{base}/oruk/services/00000000-0000-5000-8000-000000000000"
    ));
    assert_eq!(s, 404);
    let (s, _) = status_of(&format!("{base}/oruk/services/not-a-uuid"));
    assert_eq!(s, 404);

    // Bad and unsupported parameters are refused by name.
    for (query, param) in [
        ("page=0", "page"),
        ("page=two", "page"),
        ("per_page=501", "per_page"),
        ("per_page=-1", "per_page"),
        ("minimal=maybe", "minimal"),
        ("modified_after=yesterday", "modified_after"),
        ("taxonomy_term_id=food", "taxonomy_term_id"),
        ("postcode=CW1%202BJ", "postcode"),
        ("postcode=CW1%202BJ&proximity=1000", "postcode"),
        ("proximity=1000", "proximity"),
        ("minimum_age=12", "minimum_age"),
    ] {
        assert_bad_param(&base, query, param);
    }
    let (s, _) = status_of(&format!("{base}/oruk/taxonomy_terms?text=x"));
    assert_eq!(s, 400);

    let report = c.validate(env.dir.path());
    eprintln!("demo: {report}");
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// 10k organisations in the tributary-json input format, with identifiers, addresses, phones
/// and categories in varied combinations (some fields missing, some malformed).
fn generated_orgs(n: usize) -> String {
    let towns = [
        "Crewe",
        "Hull",
        "Macclesfield",
        "Goole",
        "Nantwich",
        "Beverley",
    ];
    let cats = [
        "Food banks",
        "Youth",
        "Older people",
        "Mental health",
        "Carers",
        "Sport",
    ];
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let town = towns[i % towns.len()];
        let mut o = json!({
            "id": format!("gen-{i}"),
            "name": format!("{town} Community Group {i}"),
            "categories": [cats[i % cats.len()], cats[(i / 7) % cats.len()]],
        });
        if i % 3 != 0 {
            o["identifiers"] = json!({"charity_number": format!("{}", 1_100_000 + i)});
        }
        if i % 5 == 0 {
            o["identifiers"]["company_number"] = json!(format!("{:08}", 4_000_000 + i));
        }
        if i % 2 == 0 {
            o["address"] = json!({"street": format!("{} High Street", i % 200 + 1), "locality": town, "postcode": "CW1 2BJ"});
        }
        if i % 4 == 0 {
            o["website"] = json!(format!("https://group{i}.example.org"));
            o["email"] = json!(format!("hello@group{i}.example.org"));
        }
        if i % 6 == 1 {
            o["phone"] = json!(format!("01270 {:06}", i));
            o["description"] = json!("<p>Weekly meet-ups &amp; <b>support</b></p>");
        }
        items.push(o);
    }
    json!({ "organisations": items }).to_string()
}

#[test]
fn a_generated_store_of_10k_organisations_validates_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let feed = dir.path().join("orgs.json");
    std::fs::write(&feed, generated_orgs(10_000)).unwrap();
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"gen\"\nname = \"Generated\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\n",
        feed.display()
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _daemon = env.start();
    let base = env.base();
    let orgs = live_orgs(&env);
    assert!(orgs >= 9_000, "{orgs} organisations after dedupe");
    let mut c = Checked::default();
    let services = all_pages(&mut c, &base, "/services", "", 500);
    assert_eq!(services.len() as u64, orgs);
    all_pages(&mut c, &base, "/service_at_locations", "", 500);
    all_pages(&mut c, &base, "/taxonomy_terms", "", 500);
    let report = c.validate(env.dir.path());
    eprintln!("10k: {report}");
}

fn sorted(v: &Value) -> Vec<String> {
    let mut v: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The fields tributary's ORUK reader can recover, per organisation name.
fn org_summary(base: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut url = format!("{base}/v1/organisations?limit=500");
    loop {
        let page = json(&url);
        for o in page["items"].as_array().unwrap() {
            out.insert(
                o["name"].as_str().unwrap().to_string(),
                json!({
                    "identifiers": o["identifiers"],
                    "website": o["website"],
                    "description": o["description"],
                    "description_html": o["description_html"],
                    "alternate_names": o["alternate_names"],
                    "email": o["email"],
                    "phone": o["phone"],
                    "postcode": o["address"]["postcode"],
                    "locality": o["address"]["locality"],
                    "categories": sorted(&o["categories"]),
                }),
            );
        }
        match page["next"].as_str() {
            Some(n) => url = n.to_string(),
            None => return out,
        }
    }
}

#[test]
fn a_second_daemon_reading_the_first_ones_oruk_api_ends_with_the_same_organisations() {
    let first = synced_demo();
    let mut a = first.start();
    a.wait_healthy(&first);
    let base_a = first.base();

    let second = TestEnv::new(&format!(
        "[[partners]]\nid = \"upstream\"\nname = \"Upstream tributary\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"oruk\"\nurl = \"{base_a}/oruk/\"\nretries = 0\ntimeout_secs = 10\n"
    ));
    let out = second.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let _b = second.start();
    let base_b = second.base();

    // Event series are services linked to their organiser only by id, so the reader (which lists
    // organisations from services' nested organizations) passes over each with its reason.
    let conn = db(&second);
    let reasons: Vec<String> = conn
        .prepare(
            "SELECT x.reason FROM rejections x JOIN runs r ON r.id = x.run_id
             WHERE r.partner_id = 'upstream'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reasons.len() as u64, live_series(&first), "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.contains("no organization")),
        "{reasons:?}"
    );

    let (orgs_a, orgs_b) = (org_summary(&base_a), org_summary(&base_b));
    assert_eq!(
        orgs_a.keys().collect::<Vec<_>>(),
        orgs_b.keys().collect::<Vec<_>>(),
        "the same organisations by name"
    );
    for (name, a) in &orgs_a {
        let mut b = orgs_b[name].clone();
        // The reader derives an org-id from an identifier's scheme where the source had none.
        if a["identifiers"].get("org_id").is_none() {
            if let Some(ids) = b["identifiers"].as_object_mut() {
                ids.remove("org_id");
            }
        }
        assert_eq!(a, &b, "{name}");
    }
}
