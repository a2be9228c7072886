//! OpenActive's split layout through the real binary: a SessionSeries feed and a ScheduledSession
//! feed of one partner on 127.0.0.1; sessions that only reference their series by `superEvent`
//! take its name and place, in the same sync and in later ones where only the session feed changed.

mod common;

use common::*;
use serde_json::Value;

fn page(next: &str, items: &str) -> String {
    format!(
        r#"{{"next":"{next}","items":[{items}],"license":"https://creativecommons.org/licenses/by/4.0/"}}"#
    )
}

fn session(id: &str, start: &str) -> String {
    format!(
        r#"{{"state":"updated","kind":"ScheduledSession","id":"{id}","modified":1,
            "data":{{"@type":"ScheduledSession","@id":"https://ex.org/sessions/{id}",
                     "superEvent":"https://ex.org/series/yoga","startDate":"{start}",
                     "duration":"PT1H"}}}}"#
    )
}

fn live(env: &TestEnv) -> Vec<(String, Value)> {
    let conn = db(env);
    let mut st = conn
        .prepare("SELECT source_id, payload FROM source_records WHERE partner_id = 'active' AND deleted_at IS NULL ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (id, p) = r.unwrap();
            (id, serde_json::from_str(&p).unwrap())
        })
        .collect()
}

fn sync(env: &TestEnv) -> String {
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
fn split_layout_sessions_find_their_series_across_feeds_and_syncs() {
    split_layout(false);
}

#[test]
fn split_layout_works_with_the_session_feed_listed_first() {
    split_layout(true);
}

fn split_layout(sessions_first: bool) {
    let site = fake_site();
    let (series_end, sessions_1, sessions_2) = (
        site.url("/series?afterChangeNumber=1"),
        site.url("/sessions?afterChangeNumber=1"),
        site.url("/sessions?afterChangeNumber=2"),
    );
    site.put(
        "/series",
        "application/json",
        page(
            &series_end,
            r#"{"state":"updated","kind":"SessionSeries","id":"yoga","modified":1,
                "data":{"@type":"SessionSeries","@id":"https://ex.org/series/yoga","name":"Chair Yoga",
                        "location":{"@type":"Place","name":"Crewe Library",
                                    "address":{"@type":"PostalAddress","postalCode":"CW1 2DD"}}}}"#,
        ),
    );
    site.put(
        "/series?afterChangeNumber=1",
        "application/json",
        page(&series_end, ""),
    );
    site.put(
        "/sessions",
        "application/json",
        page(&sessions_1, &session("s1", "2027-02-02T10:00:00Z")),
    );
    site.put(
        "/sessions?afterChangeNumber=1",
        "application/json",
        page(&sessions_1, ""),
    );
    let feed = |url: String| {
        format!("[[partners.feeds]]\nkind = \"events\"\nformat = \"rpde\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 5\n\n")
    };
    let (mut first, mut second) = (feed(site.url("/series")), feed(site.url("/sessions")));
    if sessions_first {
        std::mem::swap(&mut first, &mut second);
    }
    let toml =
        format!("[[partners]]\nid = \"active\"\nname = \"Active Cheshire\"\n\n{first}{second}");
    let env = TestEnv::new(&toml);
    let out = sync(&env);

    let recs = live(&env);
    let s1 = recs
        .iter()
        .find(|(id, _)| id == "s1")
        .unwrap_or_else(|| panic!("s1 did not land: {recs:#?}\n{out}"));
    assert_eq!(s1.1["title"], "Chair Yoga");
    assert_eq!(s1.1["location"]["name"], "Crewe Library");

    // A later sync: the series feed has nothing new; only the session feed does.
    site.put(
        "/sessions?afterChangeNumber=1",
        "application/json",
        page(&sessions_2, &session("s2", "2027-02-09T10:00:00Z")),
    );
    site.put(
        "/sessions?afterChangeNumber=2",
        "application/json",
        page(&sessions_2, ""),
    );
    let out = sync(&env);
    let recs = live(&env);
    let s2 = recs
        .iter()
        .find(|(id, _)| id == "s2")
        .unwrap_or_else(|| panic!("s2 did not land: {recs:#?}\n{out}"));
    assert_eq!(s2.1["title"], "Chair Yoga");
    assert_eq!(s2.1["location"]["postcode"], "CW1 2DD");
    assert_eq!(s2.1["start"], "2027-02-09T10:00:00+00:00");
}
