//! The running daemon as partners, consumers and admins meet it: the admin API and its token, the
//! RPDE change feed followed from zero through adds, changes, merges and deletes, the mass-deletion
//! guard, SIGHUP reloads, metrics, and every documented route answering.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "s3cret-admin-token-for-tests";

fn orgs_json(items: &[(&str, &str, Option<&str>, &str)]) -> String {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(id, name, charity, postcode)| {
            serde_json::json!({
                "id": id, "name": name,
                "identifiers": {"charity_number": charity},
                "address": {"postcode": postcode},
                "categories": ["Community"],
            })
        })
        .collect();
    serde_json::json!({ "organisations": items }).to_string()
}

fn partner_toml(id: &str, url: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{url}\"\nretries = 0\n\n"
    )
}

fn resync(base: &str, partner: &str) -> serde_json::Value {
    let (status, body) = post(
        &format!("{base}/admin/resync?partner={partner}&wait=true"),
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Follows an RPDE feed from `after` to its end, applying items to `mirror`.
fn follow(base: &str, after: i64, mirror: &mut BTreeMap<String, serde_json::Value>) -> i64 {
    let mut url = format!("{base}/v1/feeds/organisations?afterChangeNumber={after}&limit=2");
    let mut last = after;
    loop {
        let page = json(&url);
        let items = page["items"].as_array().unwrap();
        for item in items {
            let id = item["id"].as_str().unwrap().to_string();
            match item["state"].as_str().unwrap() {
                "updated" => {
                    mirror.insert(id, item["data"].clone());
                }
                "deleted" => {
                    mirror.remove(&id);
                }
                other => panic!("unknown state {other}"),
            }
            last = item["modified"].as_i64().unwrap();
        }
        let next = page["next"].as_str().unwrap().to_string();
        if items.is_empty() {
            assert!(
                next.ends_with(&format!("afterChangeNumber={last}&limit=2")),
                "{next}"
            );
            return last;
        }
        url = next;
    }
}

fn listed(base: &str) -> BTreeMap<String, serde_json::Value> {
    let page = json(&format!("{base}/v1/organisations?limit=500"));
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
        .collect()
}

#[test]
fn admin_api_change_feed_and_guards() {
    let a = fake_partner(json_feed(&orgs_json(&[
        ("a1", "Hull Food Bank", Some("1111111"), "HU1 1AA"),
        (
            "a2",
            "Goodwin Development Trust",
            Some("1082165"),
            "HU2 8DJ",
        ),
    ])));
    let b = fake_partner(json_feed(&orgs_json(&[
        ("b1", "Hull Foodbank", None, "HU3 3BB"),
        ("b2", "Age UK Hull", Some("1135581"), "HU1 3DZ"),
        ("b3", "Hull Sea Cadets", None, "HU9 1TS"),
    ])));
    let mut toml = partner_toml("alpha", &a.url("/orgs.json"));
    toml.push_str(&partner_toml("beta", &b.url("/orgs.json")));
    let env = TestEnv::new(&toml);
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();

    // Token: missing → 401, wrong → 401, right → 200.
    let (status, _, body) = blocking_get(&format!("{base}/admin/partners")).unwrap();
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = get_with(
        &format!("{base}/admin/partners"),
        &[("authorization", "Bearer nope")],
    )
    .unwrap();
    assert_eq!(status, 401);

    // The daemon synced both partners at start (they had never synced); wait for that.
    let deadline = Instant::now() + Duration::from_secs(20);
    while listed(&base).len() < 5 {
        assert!(Instant::now() < deadline, "startup sync did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut mirror = BTreeMap::new();
    let mut after = follow(&base, 0, &mut mirror);
    assert_eq!(mirror, listed(&base));

    // A change: b2 renamed.
    b.set(|f| {
        f.body = orgs_json(&[
            ("b1", "Hull Foodbank", None, "HU3 3BB"),
            (
                "b2",
                "Age UK Hull (Kingston upon Hull)",
                Some("1135581"),
                "HU1 3DZ",
            ),
            ("b3", "Hull Sea Cadets", None, "HU9 1TS"),
        ])
        .into_bytes()
    });
    let r = resync(&base, "beta");
    assert_eq!(r["runs"][0]["result"], "ok", "{r}");
    after = follow(&base, after, &mut mirror);
    assert_eq!(mirror, listed(&base));

    // A merge: b1 now carries a1's charity number, so the two become one entity.
    let before_merge = listed(&base);
    b.set(|f| {
        f.body = orgs_json(&[
            ("b1", "Hull Foodbank", Some("1111111"), "HU3 3BB"),
            (
                "b2",
                "Age UK Hull (Kingston upon Hull)",
                Some("1135581"),
                "HU1 3DZ",
            ),
            ("b3", "Hull Sea Cadets", None, "HU9 1TS"),
        ])
        .into_bytes()
    });
    resync(&base, "beta");
    let after_merge = listed(&base);
    assert_eq!(after_merge.len(), before_merge.len() - 1);
    let gone: Vec<&String> = before_merge
        .keys()
        .filter(|k| !after_merge.contains_key(*k))
        .collect();
    assert_eq!(gone.len(), 1);
    let (status, headers, _) =
        blocking_get(&format!("{base}/v1/organisations/{}", gone[0])).unwrap();
    assert_eq!(status, 301, "a merged id redirects to the survivor");
    let location = headers["location"].to_str().unwrap().to_string();
    let survivor = location.rsplit('/').next().unwrap();
    assert!(after_merge.contains_key(survivor));
    let partners = after_merge[survivor]["partners"].as_array().unwrap();
    assert_eq!(partners.len(), 2, "{partners:?}");
    after = follow(&base, after, &mut mirror);
    assert_eq!(mirror, listed(&base));

    // A deletion: alpha drops a2.
    a.set(|f| {
        f.body = orgs_json(&[("a1", "Hull Food Bank", Some("1111111"), "HU1 1AA")]).into_bytes()
    });
    resync(&base, "alpha");
    after = follow(&base, after, &mut mirror);
    assert_eq!(mirror, listed(&base));
    assert_eq!(mirror.len(), 3);

    // Mass-deletion guard: beta's feed suddenly empty → held, nothing applied.
    b.set(|f| f.body = br#"{"organisations": []}"#.to_vec());
    let r = resync(&base, "beta");
    assert_eq!(r["runs"][0]["result"], "held", "{r}");
    let held_run = r["runs"][0]["run_id"].as_i64().unwrap();
    assert_eq!(listed(&base).len(), 3);
    let (status, _, body) = get_with(
        &format!("{base}/admin/runs/{held_run}"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .unwrap();
    assert_eq!(status, 200);
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["result"], "held");
    assert!(
        run["error"].as_str().unwrap().contains("max_delete_share"),
        "{run}"
    );
    // ...and applied when an admin forces it.
    let (status, body) = post(
        &format!("{base}/admin/resync"),
        Some(TOKEN),
        r#"{"partners": ["beta"], "force": true, "wait": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    after = follow(&base, after, &mut mirror);
    let _ = after;
    assert_eq!(mirror, listed(&base));
    assert_eq!(mirror.len(), 1);

    // Admin partners view: counts, last runs.
    let (status, _, body) = get_with(
        &format!("{base}/admin/partners"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alpha = &v["partners"][0];
    assert_eq!(alpha["id"], "alpha");
    assert_eq!(alpha["records"]["organisations"], 1);
    assert!(alpha["last_success_at"].is_string());

    // Resync of an unknown partner: a clear 400.
    let (status, body) = post(
        &format!("{base}/admin/resync?partner=nobody"),
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("nobody"));

    // Metrics count syncs and requests.
    let (_, _, metrics) = blocking_get(&format!("{base}/metrics")).unwrap();
    assert!(
        metrics.contains("tributary_syncs_total{partner=\"beta\",result=\"held\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("tributary_http_requests_total{route=\"/v1/organisations\",status=\"200\"}"));

    // Every documented route is served (never the router's fallback).
    let doc = json(&format!("{base}/openapi.json"));
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let url = format!("{base}{}", path.replace("{id}", "alpha"));
        for method in ops.as_object().unwrap().keys() {
            let (status, body) = if method == "post" {
                post(&url, Some(TOKEN), "{}")
            } else {
                let (s, _, b) =
                    get_with(&url, &[("authorization", &format!("Bearer {TOKEN}"))]).unwrap();
                (s, b)
            };
            assert!(
                !body.contains("no such route") && !body.contains("no such admin route"),
                "{method} {path} → {status} {body}"
            );
            // Served means answered: a client error for the placeholder id or the empty body
            // is fine, a server error is not.
            assert!(
                (200..500).contains(&status),
                "{method} {path} → {status} {body}"
            );
        }
    }
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn admin_is_closed_without_a_token_and_sighup_reloads_config() {
    let a = fake_partner(json_feed(&orgs_json(&[(
        "a1",
        "Hull Food Bank",
        None,
        "HU1 1AA",
    )])));
    let env = TestEnv::new(&partner_toml("alpha", &a.url("/orgs.json")));
    let daemon = env.start();
    let (status, _, body) = blocking_get(&format!("{}/admin/partners", daemon.base)).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("admin_disabled"));

    // A broken config is refused and the old one kept.
    let good = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(env.config(), "this is = not [valid toml").unwrap();
    let pid = daemon.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    // The daemon read the broken file and said it refused it (not merely: nothing changed yet).
    daemon.wait_for_log("config reload refused", Duration::from_secs(10));
    let health = json(&format!("{}/healthz", daemon.base));
    assert_eq!(health["partners"].as_array().unwrap().len(), 1);

    // A good one with a new partner is taken up.
    let b = fake_partner(json_feed(&orgs_json(&[(
        "b1",
        "Age UK Hull",
        None,
        "HU1 3DZ",
    )])));
    std::fs::write(
        env.config(),
        format!("{good}{}", partner_toml("beta", &b.url("/o.json"))),
    )
    .unwrap();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    daemon.wait_for_partners(2, Duration::from_secs(10));
    assert_eq!(daemon.stop(), Some(0));
}

/// A partner calendar of `n` distinct events, one an hour from 1 March 2027.
fn big_ics(n: usize) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for i in 0..n {
        let (day, hour) = (1 + i / 24, i % 24);
        let (month, day) = (3 + (day - 1) / 28, 1 + (day - 1) % 28);
        s.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:big-{i}@test\r\nDTSTAMP:20261101T000000Z\r\n\
             DTSTART:2027{month:02}{day:02}T{hour:02}0000Z\r\nDTEND:2027{month:02}{day:02}T{hour:02}3000Z\r\n\
             SUMMARY:Drop-in session number {i} for volunteers\r\n\
             DESCRIPTION:Meet the team behind session {i}\\, ask questions and sign up.\r\n\
             LOCATION:Room {i}\\, Community Hub\\, Crewe CW1 2BJ\r\nEND:VEVENT\r\n"
        ));
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

#[test]
fn a_calendar_of_thousands_of_events_is_sent_whole_with_its_length_and_etag() {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    const N: usize = 2_500;
    let partner = fake_partner(ics_feed(&big_ics(N), None));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"big\"\nname = \"Big CVS\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n",
        partner.url("/events.ics")
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    let url = format!(
        "{}/calendar.ics?from=2027-01-01T00:00:00Z&to=2028-01-01T00:00:00Z",
        daemon.base
    );
    let (status, h, body) = get_bytes(&url, &[]).unwrap();
    assert_eq!(status, 200);
    // Several of the server's 256 KiB parts, sent as one body of the length announced.
    assert!(body.len() > 3 * 256 * 1024, "{} bytes", body.len());
    assert_eq!(
        h["content-length"].to_str().unwrap(),
        body.len().to_string()
    );
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    assert_eq!(text.matches("BEGIN:VEVENT\r\n").count(), N);
    let digest = Sha256::digest(&body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        h["etag"].to_str().unwrap(),
        format!("\"{hex}\""),
        "ETag over the whole body"
    );

    let (status, gz_h, gz) = get_bytes(&url, &[("accept-encoding", "gzip")]).unwrap();
    assert_eq!(status, 200);
    assert_eq!(gz_h["content-encoding"], "gzip");
    assert_eq!(
        gz_h["content-length"].to_str().unwrap(),
        gz.len().to_string()
    );
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, body, "the gzip form is the same calendar");
    daemon.stop();
}
