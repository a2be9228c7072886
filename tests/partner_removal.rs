//! A removed partner's records, through the real binary: kept through the grace period after a
//! SIGHUP (and `?partner=` still answers), withdrawn after it at a restart (tombstones in the
//! change feed, CANCELLED in the calendar, shared entities rebuilt from the partners left), and
//! `tributary partner purge` withdrawing at once behind the guard's `--force`.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const ALPHA_ORGS: &str = r#"{"organisations": [
  {"id": "a1", "name": "Hull Food Bank", "identifiers": {"charity_number": "1111111"}, "address": {"postcode": "HU1 1AA"}}
]}"#;
const BETA_ORGS: &str = r#"{"organisations": [
  {"id": "b1", "name": "Hull Foodbank", "identifiers": {"charity_number": "1111111"}, "phone": "01482 000000"},
  {"id": "b2", "name": "Beverley Walking Group", "address": {"postcode": "HU17 9AA"}}
]}"#;
const BETA_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//beta//EN\r\n\
BEGIN:VEVENT\r\nUID:w1@beta\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20270310T100000Z\r\nDTEND:20270310T120000Z\r\n\
SUMMARY:Beverley Westwood Walk\r\nLOCATION:Beverley Westwood\\, HU17 8RG\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

fn alpha(site: &FakeSite) -> String {
    format!(
        "[[partners]]\nid = \"alpha\"\nname = \"Partner alpha\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n",
        site.url("/orgs.json")
    )
}

fn beta(site: &FakeSite) -> String {
    format!(
        "[[partners]]\nid = \"beta\"\nname = \"Partner beta\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n\
         [[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n\n",
        site.url("/orgs.json"),
        site.url("/events.ics")
    )
}

fn sites() -> (FakeSite, FakeSite) {
    let (a, b) = (fake_site(), fake_site());
    a.put("/orgs.json", "application/json", ALPHA_ORGS);
    b.put("/orgs.json", "application/json", BETA_ORGS);
    b.put("/events.ics", "text/calendar", BETA_ICS);
    (a, b)
}

/// The config's header (as the harness wrote it) followed by `rest`.
fn rewrite(env: &TestEnv, rest: &str) {
    let text = std::fs::read_to_string(env.config()).unwrap();
    let head = text.split("[[partners]]").next().unwrap().to_string();
    std::fs::write(env.config(), format!("{head}{rest}")).unwrap();
}

fn orgs(base: &str, query: &str) -> HashMap<String, (String, usize)> {
    json(&format!("{base}/v1/organisations?limit=500{query}"))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                (
                    o["id"].as_str().unwrap().to_string(),
                    o["partners"].as_array().unwrap().len(),
                ),
            )
        })
        .collect()
}

fn event_ids(base: &str, query: &str) -> Vec<String> {
    json(&format!(
        "{base}/v1/events?from=2027-01-01&to=2027-12-31&limit=500{query}"
    ))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

fn feed_state(base: &str, kind: &str, id: &str) -> Option<String> {
    let mut state = None;
    let mut after = 0i64;
    loop {
        let page = json(&format!(
            "{base}/v1/feeds/{kind}?afterChangeNumber={after}&limit=100"
        ));
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return state;
        }
        for item in items {
            if item["id"] == id {
                state = item["state"].as_str().map(String::from);
            }
            after = item["modified"].as_i64().unwrap();
        }
    }
}

fn vevent(base: &str, path: &str, id: &str) -> Option<String> {
    let (status, _, body) = blocking_get(&format!("{base}{path}")).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body.split("BEGIN:VEVENT")
        .skip(1)
        .map(|b| b.split("END:VEVENT").next().unwrap().to_string())
        .find(|b| b.contains(&format!("UID:{id}@")))
}

fn status_of(base: &str, path: &str) -> u16 {
    blocking_get(&format!("{base}{path}")).unwrap().0
}

#[test]
fn removed_partner_kept_through_grace_then_withdrawn() {
    let (a, b) = sites();
    let env = TestEnv::new(&format!("{}{}", alpha(&a), beta(&b)));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    let base = daemon.base.clone();
    let before = orgs(&base, "");
    let (food, partners) = before["Hull Food Bank"].clone();
    assert_eq!(
        partners, 2,
        "alpha and beta behind the food bank: {before:?}"
    );
    let (walkers, _) = before["Beverley Walking Group"].clone();
    let walk = event_ids(&base, "");
    assert_eq!(walk.len(), 1);
    let walk = walk[0].clone();

    // The block goes and the daemon reloads: within the grace period nothing is withdrawn and
    // ?partner=beta answers as for any partner.
    rewrite(&env, &alpha(&a));
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    daemon.wait_for_log("partner removed from the config", Duration::from_secs(10));
    // The removal is logged inside the store's transaction, before the new config serves.
    daemon.wait_for_partners(1, Duration::from_secs(10));
    assert_eq!(orgs(&base, ""), before);
    let by_beta = orgs(&base, "&partner=beta");
    assert_eq!(by_beta.len(), 2, "{by_beta:?}");
    assert_eq!(event_ids(&base, "&partner=beta"), vec![walk.clone()]);
    assert_eq!(status_of(&base, "/partners/beta/calendar.ics"), 200);
    assert_eq!(status_of(&base, "/v1/organisations?partner=nobody"), 400);
    let (removed, due): (String, String) = db(&env)
        .query_row(
            "SELECT removed_at, withdraw_after FROM partners WHERE id = 'beta'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let days = chrono::DateTime::parse_from_rfc3339(&due).unwrap()
        - chrono::DateTime::parse_from_rfc3339(&removed).unwrap();
    assert_eq!(days.num_days(), 7, "the default grace period");
    assert_eq!(daemon.stop(), Some(0));

    // A restart after the grace period (here configured as none) withdraws beta's records.
    let text = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        format!("{text}\n[sync]\nremoved_partner_grace_days = 0\n"),
    )
    .unwrap();
    let daemon = env.start();
    let base = daemon.base.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while orgs(&base, "").len() != 1 {
        assert!(
            Instant::now() < deadline,
            "not withdrawn: {:?}",
            orgs(&base, "")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = orgs(&base, "");
    assert_eq!(
        after["Hull Food Bank"],
        (food.clone(), 1),
        "the shared entity keeps its id, from alpha alone"
    );
    let body = json(&format!("{base}/v1/organisations/{food}"));
    assert!(body["phone"].is_null(), "beta's phone is gone: {body}");
    assert_eq!(
        status_of(&base, &format!("/v1/organisations/{walkers}")),
        410
    );
    assert_eq!(
        feed_state(&base, "organisations", &walkers).as_deref(),
        Some("deleted")
    );
    assert_eq!(
        feed_state(&base, "organisations", &food).as_deref(),
        Some("updated")
    );
    assert_eq!(status_of(&base, &format!("/v1/events/{walk}")), 410);
    assert_eq!(
        feed_state(&base, "events", &walk).as_deref(),
        Some("deleted")
    );
    assert!(event_ids(&base, "").is_empty());
    let cancelled = vevent(&base, "/calendar.ics", &walk).expect("the walk is still announced");
    assert!(cancelled.contains("STATUS:CANCELLED"), "{cancelled}");
    let cancelled =
        vevent(&base, "/partners/beta/calendar.ics", &walk).expect("in beta's calendar too");
    assert!(cancelled.contains("STATUS:CANCELLED"), "{cancelled}");
    assert!(orgs(&base, "&partner=beta").is_empty());
    daemon.stop();
}

#[test]
fn purge_withdraws_at_once_behind_the_guard() {
    let (a, b) = sites();
    let env = TestEnv::new(&format!("{}{}", alpha(&a), beta(&b)));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // A configured partner cannot be purged; an unknown one is named with the ones known.
    let out = env.cmd(&["partner", "purge", "beta", "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("still configured"),
        "{}",
        stderr(&out)
    );
    rewrite(&env, &alpha(&a));
    let out = env.cmd(&["partner", "purge", "gamma"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("beta"), "{}", stderr(&out));

    // Without --force the guard holds it and nothing changes.
    let live = |env: &TestEnv| -> i64 {
        db(env)
            .query_row(
                "SELECT COUNT(*) FROM source_records WHERE partner_id = 'beta' AND deleted_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let out = env.cmd(&["partner", "purge", "beta"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(live(&env), 3);

    // As if beta's server had sent validators: a withdrawal must forget them.
    db(&env)
        .execute(
            "UPDATE feeds SET etag = '\"v1\"' WHERE partner_id = 'beta'",
            [],
        )
        .unwrap();
    let out = env.cmd(&["partner", "purge", "beta", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let validators: i64 = db(&env)
        .query_row(
            "SELECT COUNT(*) FROM feeds WHERE partner_id = 'beta' AND etag IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(validators, 0, "a re-added partner's feeds are read whole");
    assert!(
        stdout(&out).contains("withdrew 2 organisations and 1 events"),
        "{}",
        stdout(&out)
    );
    assert_eq!(live(&env), 0);
    let daemon = env.start();
    let listed = orgs(&daemon.base, "");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed["Hull Food Bank"].1, 1);
    assert!(event_ids(&daemon.base, "").is_empty());
    assert_eq!(daemon.stop(), Some(0));

    // Configured again, the partner's next sync brings its records back (its feeds are read
    // whole, not answered 304 from before the withdrawal).
    rewrite(&env, &format!("{}{}", alpha(&a), beta(&b)));
    let out = env.cmd(&["sync", "beta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(live(&env), 3);
}

#[test]
fn grace_days_is_validated_by_key() {
    let env = TestEnv::new("[sync]\nremoved_partner_grace_days = -1\n\n[[partners]]\nid = \"p\"\nname = \"P\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"http://127.0.0.1:9/x.ics\"\n");
    let out = env.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sync.removed_partner_grace_days"),
        "{}",
        stderr(&out)
    );
}
