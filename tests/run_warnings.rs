//! A record that lands with a caveat is a warning, not a rejection: the run counts it apart, the
//! admin API lists it apart, metrics count it apart, and the record is published. A record that is
//! lost stays a rejection beside it.

mod common;

use common::*;

const TOKEN: &str = "warnings-test-admin-token";

/// One event whose DTEND cannot be read (it lands, without its end), one whose DTEND is before its
/// DTSTART (it lands, read the other way round) and one with no date at all (it is lost).
const CALENDAR: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:bad-end@test\r\nDTSTART:20270601T100000Z\r\nDTEND:tomorrow\r\nSUMMARY:Coffee morning\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:swapped@test\r\nDTSTART:20270602T110000Z\r\nDTEND:20270602T100000Z\r\nSUMMARY:Swapped times\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:no-date@test\r\nSUMMARY:Some day\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

#[test]
fn a_kept_record_is_a_warning_and_a_lost_one_a_rejection() {
    let partner = fake_partner(ics_feed(CALENDAR, None));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"cal\"\nname = \"Calendar partner\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n",
        partner.url("/events.ics")
    ));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = env.base();

    let (status, body) = post(
        &format!("{base}/admin/resync?partner=cal&wait=true"),
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run_id = reply["runs"][0]["run_id"].as_i64().unwrap();

    let (status, _, body) = get_with(
        &format!("{base}/admin/runs/{run_id}"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let run: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(run["result"], "ok", "{run}");
    assert_eq!(run["counts"]["rejected"], 1, "{run}");
    assert_eq!(run["counts"]["warned"], 2, "{run}");

    let rejected = run["rejections"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{run}");
    assert_eq!(rejected[0]["record_id"], "no-date@test");
    let warned: Vec<(&str, &str)> = run["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["record_id"].as_str().unwrap(),
                w["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(warned.len(), 2, "{run}");
    assert!(warned
        .iter()
        .any(|(id, why)| *id == "bad-end@test" && why.contains("the end is dropped")));
    assert!(warned
        .iter()
        .any(|(id, why)| *id == "swapped@test" && why.contains("swapped")));

    // Both warned events are published; the dateless one is not.
    let events = json(&format!("{base}/v1/events?from=2027-05-01&to=2027-07-01"));
    let mut titles: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap())
        .collect();
    titles.sort_unstable();
    assert_eq!(titles, ["Coffee morning", "Swapped times"], "{events}");

    // The daemon's start-up sync may run as well as the resync: each counts its own 2 and 1.
    let (_, _, metrics) = blocking_get(&format!("{base}/metrics")).unwrap();
    let value = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
    };
    let syncs = value("tributary_syncs_total{partner=\"cal\",result=\"ok\"}");
    assert!(syncs >= 1, "{metrics}");
    assert_eq!(
        value("tributary_record_warnings_total{partner=\"cal\"}"),
        2 * syncs,
        "{metrics}"
    );
    assert_eq!(
        value("tributary_rejections_total{partner=\"cal\"}"),
        syncs,
        "{metrics}"
    );
    daemon.stop();
}
