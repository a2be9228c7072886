//! Every input format through a real sync: fake partner sites and APIs on 127.0.0.1 serving the
//! fixtures in `tests/fixtures/`, the real binary, a real SQLite store; then what the store and
//! the published API hold.

mod common;

use common::*;
use serde_json::Value;

fn partner(id: &str, kind: &str, format: &str, url: &str, extra: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"{kind}\"\nformat = \"{format}\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 5\n{extra}\n\n"
    )
}

fn sync(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    let out = env.cmd(&all);
    assert!(
        out.status.success(),
        "sync failed:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Live source records of a partner: (source id, payload JSON).
fn records(env: &TestEnv, partner: &str) -> Vec<(String, Value)> {
    let conn = db(env);
    let mut st = conn
        .prepare("SELECT source_id, payload FROM source_records WHERE partner_id = ?1 AND deleted_at IS NULL ORDER BY id")
        .unwrap();
    st.query_map([partner], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })
    .unwrap()
    .map(|r| {
        let (id, p) = r.unwrap();
        (id, serde_json::from_str(&p).unwrap())
    })
    .collect()
}

fn rejections(env: &TestEnv, partner: &str) -> Vec<String> {
    let conn = db(env);
    let mut st = conn
        .prepare(
            "SELECT x.reason FROM rejections x JOIN runs r ON r.id = x.run_id
             WHERE r.partner_id = ?1 AND r.id = (SELECT MAX(id) FROM runs WHERE partner_id = ?1)",
        )
        .unwrap();
    st.query_map([partner], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The jsonld fixtures: a listing, its second page and one item page.
fn serve_jsonld_pages(site: &FakeSite) {
    site.put_fixture("/events/", "text/html", "jsonld/events.html");
    site.put_fixture("/events/page/2/", "text/html", "jsonld/events-page-2.html");
    site.put_fixture(
        "/events/anchor-institutions-webinar/",
        "text/html",
        "jsonld/anchor-institutions-webinar.html",
    );
}

fn find<'a>(recs: &'a [(String, Value)], field: &str, value: &str) -> &'a Value {
    &recs
        .iter()
        .find(|(_, p)| p[field].as_str() == Some(value))
        .unwrap_or_else(|| panic!("no record with {field} = {value:?} in {recs:#?}"))
        .1
}

#[test]
fn oruk_directory_pages_through_organizations_and_services() {
    let site = fake_site();
    site.put_fixture(
        "/oruk/organizations?page=1&per_page=100",
        "application/json",
        "oruk/organizations-1.json",
    );
    site.put_fixture(
        "/oruk/services?page=1&per_page=100",
        "application/json",
        "oruk/services-1.json",
    );
    site.put_fixture(
        "/oruk/services?page=2&per_page=100",
        "application/json",
        "oruk/services-2.json",
    );
    let env = TestEnv::new(&partner(
        "cec-directory",
        "organisations",
        "oruk",
        &site.url("/oruk/"),
        "",
    ));
    sync(&env, &[]);

    let recs = records(&env, "cec-directory");
    assert_eq!(recs.len(), 3, "{recs:#?}");
    let foodbank = find(&recs, "name", "Crewe Foodbank");
    assert_eq!(foodbank["identifiers"]["charity_number"], "1150000");
    assert_eq!(foodbank["address"]["postcode"], "CW1 6GS");
    assert_eq!(foodbank["phone"], "+441270211000");
    assert_eq!(
        foodbank["categories"],
        serde_json::json!(["Food banks", "Poverty"])
    );
    // Description HTML is sanitised and also rendered to text.
    assert_eq!(
        foodbank["description"],
        "Emergency food parcels & signposting for people in crisis across Crewe and Nantwich."
    );
    let carers = find(&recs, "name", "Cheshire East Carers Hub");
    assert_eq!(
        carers["address"]["postcode"], "CW1 2BJ",
        "an organisation known only from its service"
    );
    assert_eq!(carers["email"], "cafe@cecarers.example.org.uk");
    let rej = rejections(&env, "cec-directory");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert!(rej[0].contains("no organization"), "{rej:?}");
    let hits = site.hits();
    assert_eq!(hits.len(), 3, "one request per page: {hits:?}");
}

#[test]
fn oruk_without_an_organizations_endpoint_uses_services_alone() {
    let site = fake_site();
    site.put_fixture(
        "/api/services?page=1&per_page=100",
        "application/json",
        "oruk/services-1.json",
    );
    site.put_fixture(
        "/api/services?page=2&per_page=100",
        "application/json",
        "oruk/services-2.json",
    );
    let env = TestEnv::new(&partner(
        "hull-directory",
        "organisations",
        "oruk",
        &site.url("/api/services"),
        "",
    ));
    sync(&env, &[]);
    assert_eq!(records(&env, "hull-directory").len(), 3);
}

#[test]
fn rpde_harvests_incrementally_from_its_cursor_in_both_ordering_modes() {
    let site = fake_site();
    site.put_fixture(
        "/openactive/session-series",
        "application/json",
        "rpde/sessions-1.json",
    );
    site.put_fixture(
        "/openactive/session-series?afterTimestamp=1732700000&afterId=ss-chair-yoga",
        "application/json",
        "rpde/sessions-2.json",
    );
    site.put_fixture(
        "/openactive/session-series?afterTimestamp=1732710000&afterId=ss-broken",
        "application/json",
        "rpde/sessions-3.json",
    );
    site.put_fixture(
        "/openactive/events",
        "application/json",
        "rpde/events-1.json",
    );
    site.put_fixture(
        "/openactive/events?afterChangeNumber=2",
        "application/json",
        "rpde/events-2.json",
    );
    let toml = format!(
        "{}[[partners.feeds]]\nkind = \"events\"\nformat = \"rpde\"\nurl = \"{}\"\n",
        partner(
            "active-cheshire",
            "events",
            "rpde",
            &site.url("/openactive/session-series"),
            ""
        ),
        site.url("/openactive/events")
    );
    let env = TestEnv::new(&toml);
    sync(&env, &[]);

    let recs = records(&env, "active-cheshire");
    assert_eq!(recs.len(), 5, "{recs:#?}");
    let football = find(&recs, "title", "Walking Football for Over 50s");
    assert_eq!(
        football["recurrence"],
        serde_json::json!(["RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z"])
    );
    assert_eq!(football["start"], "2027-03-02T10:00:00+00:00");
    assert_eq!(football["location"]["postcode"], "CW2 6EB");
    // The session names itself through its series, found in the same harvest.
    let sessions: Vec<_> = recs
        .iter()
        .filter(|(id, _)| id == "sch-walking-football-special")
        .collect();
    assert_eq!(sessions[0].1["title"], "Walking Football for Over 50s");
    // afterChangeNumber feed: numeric ids, duration, cancellation.
    let run = find(&recs, "title", "Volunteer Fun Run");
    assert_eq!(run["end"], "2027-05-16T11:30:00+01:00");
    assert_eq!(
        find(&recs, "title", "Cancelled: Tai Chi taster")["status"],
        "cancelled"
    );
    let rej = rejections(&env, "active-cheshire");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert!(rej[0].contains("no startDate"), "{rej:?}");

    // The next sync resumes at the stored cursor: only the change pages are read, the deletion
    // lands, and nothing else is taken for deleted just because it was not repeated.
    site.put_fixture(
        "/openactive/session-series?afterTimestamp=1732710000&afterId=ss-broken",
        "application/json",
        "rpde/changes-1.json",
    );
    site.put_fixture(
        "/openactive/session-series?afterTimestamp=1732800000&afterId=ss-chair-yoga",
        "application/json",
        "rpde/changes-2.json",
    );
    let before = site.hits().len();
    let out = sync(&env, &[]);
    let hits: Vec<String> = site.hits()[before..].to_vec();
    assert!(
        !hits.iter().any(|h| h == "/openactive/session-series"),
        "restarted from the top: {hits:?}"
    );
    assert!(
        hits.contains(
            &"/openactive/session-series?afterTimestamp=1732710000&afterId=ss-broken".to_string()
        ),
        "{hits:?}"
    );
    let recs = records(&env, "active-cheshire");
    assert_eq!(
        recs.len(),
        4,
        "only Chair Yoga was deleted: {recs:#?}\n{out}"
    );
    assert!(!recs.iter().any(|(id, _)| id == "ss-chair-yoga"));

    // --full re-harvests from the start.
    let before = site.hits().len();
    sync(&env, &["--full"]);
    assert!(site.hits()[before..]
        .iter()
        .any(|h| h == "/openactive/session-series"));
    let recs = records(&env, "active-cheshire");
    assert_eq!(
        recs.len(),
        4,
        "the whole history replayed ends with Chair Yoga deleted: {recs:#?}"
    );
}

#[test]
fn rss_posts_become_events_and_news_is_rejected_with_its_reason() {
    let site = fake_site();
    site.put_fixture("/feed/", "application/rss+xml", "rss/cvs-news.xml");
    let env = TestEnv::new(&partner(
        "cvs-cheshire-east",
        "events",
        "rss",
        &site.url("/feed/"),
        "",
    ));
    sync(&env, &[]);
    let recs = records(&env, "cvs-cheshire-east");
    assert_eq!(recs.len(), 2, "{recs:#?}");
    let webinar = &recs[0].1;
    assert_eq!(webinar["start"], "2022-01-25T13:00:00+00:00");
    assert_eq!(webinar["end"], "2022-01-25T15:00:00+00:00");
    assert_eq!(webinar["booking_url"], "https://www.eventbrite.co.uk/e/next-steps-in-developing-anchor-institutions-in-our-region-tickets-226553470707");
    assert!(webinar["location"]["online"].as_bool().unwrap());
    let html = webinar["description_html"].as_str().unwrap();
    assert!(
        !html.contains("<script") && !html.contains("onclick"),
        "unsanitised: {html}"
    );
    assert!(html.contains("<strong>"), "{html}");
    let text = webinar["description"].as_str().unwrap();
    assert!(
        text.contains("Tuesday 25th January 2022") && !text.contains('<'),
        "{text}"
    );
    let fair = find(&recs, "title", "Volunteer Fair 2027");
    assert_eq!(fair["location"]["name"], "Crewe Lyceum Square");
    let rej = rejections(&env, "cvs-cheshire-east");
    assert_eq!(rej.len(), 1);
    assert!(rej[0].contains("news post"), "{rej:?}");
}

#[test]
fn jsonld_listing_follows_item_pages_and_next_page_but_not_other_hosts() {
    let site = fake_site();
    serve_jsonld_pages(&site);
    let env = TestEnv::new(&partner(
        "hnv-vcse",
        "events",
        "jsonld",
        &site.url("/events/"),
        "",
    ));
    sync(&env, &[]);
    let recs = records(&env, "hnv-vcse");
    let titles: Vec<&str> = recs
        .iter()
        .map(|(_, p)| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(recs.len(), 3, "{titles:?}");
    let webinar = find(
        &recs,
        "title",
        "Next Steps in Developing Anchor Institutions in Our Region",
    );
    assert_eq!(
        webinar["organiser"]["name"],
        "Cheshire and Merseyside Health and Care Partnership"
    );
    let fair = find(&recs, "title", "Funding Fair: Trusts & Foundations");
    assert_eq!(fair["location"]["postcode"], "YO15 3JH");
    let html = fair["description_html"].as_str().unwrap();
    assert!(!html.contains("onerror"), "{html}");
    let rej = rejections(&env, "hnv-vcse");
    assert_eq!(rej.len(), 3, "{rej:?}");
    assert!(rej.iter().any(|r| r.contains("another host")), "{rej:?}");
    assert!(rej.iter().any(|r| r.contains("not JSON")), "{rej:?}");
    assert!(rej.iter().any(|r| r.contains("no startDate")), "{rej:?}");
    assert!(
        !site
            .hits()
            .iter()
            .any(|h| h.contains("community-transport-forum")),
        "a complete listing summary needs no second request"
    );
}

#[test]
fn wp_events_pages_and_the_seed_webinar_merges_across_four_formats() {
    let site = fake_site();
    site.put_fixture(
        "/wp-json/tribe/events/v1/events?per_page=2",
        "application/json",
        "wp-events/events-1.json",
    );
    site.put_fixture(
        "/wp-json/tribe/events/v1/events?page=2&per_page=2",
        "application/json",
        "wp-events/events-2.json",
    );
    site.put_fixture("/feed/", "application/rss+xml", "rss/cvs-news.xml");
    serve_jsonld_pages(&site);
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\nBEGIN:VEVENT\r\nUID:anchor-2022@cvs.example\r\nDTSTAMP:20220101T000000Z\r\nDTSTART;TZID=Europe/London:20220125T130000\r\nDTEND;TZID=Europe/London:20220125T150000\r\nSUMMARY:NEXT STEPS IN DEVELOPING ANCHOR INSTITUTIONS IN OUR REGION\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    site.put("/cal.ics", "text/calendar", ics);
    let toml = [
        partner(
            "hull-cvs",
            "events",
            "wp-events",
            &site.url("/wp-json/tribe/events/v1/events?per_page=2"),
            "",
        ),
        partner(
            "cvs-cheshire-east",
            "events",
            "rss",
            &site.url("/feed/"),
            "",
        ),
        partner("hnv-vcse", "events", "jsonld", &site.url("/events/"), ""),
        partner("cvs-ical", "events", "ical", &site.url("/cal.ics"), ""),
    ]
    .concat();
    let env = TestEnv::new(&toml);
    sync(&env, &[]);

    let recs = records(&env, "hull-cvs");
    assert_eq!(recs.len(), 3, "{recs:#?}");
    assert_eq!(
        find(&recs, "title", "Trustee Training: Finance & Governance")["location"]["postcode"],
        "HU2 8NH"
    );
    let week = find(&recs, "title", "Volunteers’ Week 2027");
    assert_eq!(week["all_day"], true);
    assert_eq!(week["end"], "2027-06-08T00:00:00+01:00");
    assert!(rejections(&env, "hull-cvs")[0].contains("start_date"));

    // One canonical webinar, listed by all four partners.
    let conn = db(&env);
    let mut st = conn
        .prepare("SELECT body FROM entities WHERE kind = 'events' AND deleted_at IS NULL AND start_utc = ?1")
        .unwrap();
    let start = chrono::DateTime::parse_from_rfc3339("2022-01-25T13:00:00Z")
        .unwrap()
        .timestamp();
    let bodies: Vec<Value> = st
        .query_map([start], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|b| serde_json::from_str(&b.unwrap()).unwrap())
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let mut partners: Vec<&str> = bodies[0]["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partner"].as_str().unwrap())
        .collect();
    partners.sort();
    assert_eq!(
        partners,
        vec!["cvs-cheshire-east", "cvs-ical", "hnv-vcse", "hull-cvs"]
    );
}

#[test]
fn csv_column_mapping_reads_a_spreadsheet_export_and_bad_mappings_are_named() {
    let site = fake_site();
    site.put_fixture("/members.csv", "text/csv", "csv/spreadsheet-export.csv");
    let columns = "columns = { id = \"Member Ref\", name = \"Organisation Name\", charity_number = \"Charity No.\", street = \"Address Line 1\", locality = \"Town\", postcode = \"Post Code\", website = \"Web\", phone = \"Main Phone\", categories = \"Areas of Work\" }";
    let env = TestEnv::new(&partner(
        "cec-members",
        "organisations",
        "csv",
        &site.url("/members.csv"),
        columns,
    ));
    sync(&env, &[]);
    let recs = records(&env, "cec-members");
    assert_eq!(recs.len(), 2, "{recs:#?}");
    let foodbank = find(&recs, "name", "Crewe Foodbank");
    assert_eq!(foodbank["identifiers"]["charity_number"], "1150000");
    assert_eq!(foodbank["address"]["locality"], "Crewe");
    assert_eq!(
        foodbank["categories"],
        serde_json::json!(["Food", "Poverty"])
    );
    assert_eq!(rejections(&env, "cec-members").len(), 1);

    let bad = TestEnv::new(&partner(
        "cec-members",
        "organisations",
        "csv",
        &site.url("/members.csv"),
        "columns = { name = \"Organisation Name\", charity = \"Charity No.\" }",
    ));
    let out = bad.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out) + &stdout(&out);
    assert!(
        err.contains("partners[0].feeds[0].columns.charity: is not a organisations column"),
        "{err}"
    );
}

#[test]
fn config_refuses_formats_for_the_wrong_kind_or_a_file_for_an_api() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/oruk/organizations-1.json");
    let env = TestEnv::new(
        &[
            partner("a", "organisations", "rss", "http://127.0.0.1:9/feed", ""),
            partner("b", "organisations", "oruk", dir.to_str().unwrap(), ""),
        ]
        .concat(),
    );
    let out = env.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out) + &stdout(&out);
    assert!(
        err.contains("partners[0].feeds[0].format: a rss feed carries events, not organisations"),
        "{err}"
    );
    assert!(
        err.contains("partners[1].feeds[0].url: a oruk feed is an API"),
        "{err}"
    );
}

#[test]
fn a_paging_loop_fails_that_partner_alone_with_a_clear_message() {
    let site = fake_site();
    // Each page links to a new page forever.
    for n in 1..=6 {
        site.put(
            &format!("/wp-json/tribe/events/v1/events?page={n}"),
            "application/json",
            format!(r#"{{"events":[{{"id":{n},"title":"Loop {n}","start_date":"2027-01-0{n} 10:00:00","timezone":"Europe/London"}}],"next_rest_url":"{}"}}"#, site.url(&format!("/wp-json/tribe/events/v1/events?page={}", n + 1))),
        );
    }
    let env = TestEnv::new(&partner(
        "loopy",
        "events",
        "wp-events",
        &site.url("/wp-json/tribe/events/v1/events?page=1"),
        "max_pages = 3",
    ));
    let out = env.cmd(&["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("more than 3 pages (max_pages)"), "{text}");
    assert!(records(&env, "loopy").is_empty(), "nothing half-applied");
}

/// A listing of `n` item pages, each an Event of its own.
fn serve_jsonld_items(site: &FakeSite, n: usize) {
    let entries: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"@type":"ListItem","position":{},"url":"{}"}}"#,
                i + 1,
                site.url(&format!("/events/item-{i}/"))
            )
        })
        .collect();
    site.put(
        "/events/",
        "text/html",
        format!(
            r#"<html><head><script type="application/ld+json">{{"@context":"https://schema.org","@type":"ItemList","itemListElement":[{}]}}</script></head><body></body></html>"#,
            entries.join(",")
        ),
    );
    for i in 0..n {
        let url = site.url(&format!("/events/item-{i}/"));
        site.put(
            &format!("/events/item-{i}/"),
            "text/html",
            format!(
                r#"<html><head><script type="application/ld+json">{{"@context":"https://schema.org","@type":"Event","name":"Workshop {i}","url":"{url}","startDate":"2027-04-{:02}T10:00:00+01:00"}}</script></head><body></body></html>"#,
                i + 1
            ),
        );
    }
}

#[test]
fn jsonld_item_pages_that_fail_keep_their_events() {
    let site = fake_site();
    serve_jsonld_items(&site, 10);
    let env = TestEnv::new(&partner(
        "items",
        "events",
        "jsonld",
        &site.url("/events/"),
        "",
    ));
    sync(&env, &[]);
    assert_eq!(records(&env, "items").len(), 10);

    // Two item pages answer 500: their events are not deleted, and the run says why.
    for i in [3, 7] {
        site.put_status(
            &format!("/events/item-{i}/"),
            500,
            "text/html",
            "<html><body>Internal Server Error</body></html>",
        );
    }
    let out = sync(&env, &["--full"]);
    assert!(out.contains("0 deleted"), "{out}");
    let recs = records(&env, "items");
    let mut titles: Vec<&str> = recs
        .iter()
        .map(|(_, p)| p["title"].as_str().unwrap())
        .collect();
    titles.sort_unstable();
    let mut want: Vec<String> = (0..10).map(|i| format!("Workshop {i}")).collect();
    want.sort_unstable();
    assert_eq!(titles, want);
    let reasons = rejections(&env, "items");
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    for i in [3, 7] {
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(&format!("/events/item-{i}/"))
                    && r.contains("previous record is kept")),
            "item {i}: {reasons:?}"
        );
    }

    // Once they answer again, nothing was lost and nothing is rejected.
    serve_jsonld_items(&site, 10);
    sync(&env, &["--full"]);
    assert_eq!(records(&env, "items").len(), 10);
    assert!(rejections(&env, "items").is_empty());
}
