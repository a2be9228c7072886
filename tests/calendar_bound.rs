//! The calendar's bound (`publish.calendar_max_events`) through the real binary: a calendar cut
//! at it says so in a header and in the calendar, and the cut is counted in `/metrics` and shown
//! on the status page; a window within the bound is published whole and says nothing.

mod common;

use common::*;

/// A partner calendar of `n` distinct events, one a day from 1 March 2027.
fn daily_ics(n: usize) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for i in 0..n {
        let (month, day) = (3 + i / 28, 1 + i % 28);
        s.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:day-{i}@test\r\nDTSTAMP:20261101T000000Z\r\n\
             DTSTART:2027{month:02}{day:02}T100000Z\r\nDTEND:2027{month:02}{day:02}T110000Z\r\n\
             SUMMARY:Volunteer drop-in number {i}\r\nEND:VEVENT\r\n"
        ));
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

const WINDOW: &str = "from=2027-01-01T00:00:00Z&to=2028-01-01T00:00:00Z";

#[test]
fn a_calendar_cut_at_its_configured_bound_says_so_and_is_counted_and_shown() {
    const EVENTS: usize = 12;
    const BOUND: usize = 5;
    let partner = fake_partner(ics_feed(&daily_ics(EVENTS), None));
    let env = TestEnv::new(&format!(
        "[publish]\ncalendar_max_events = {BOUND}\n\n[[partners]]\nid = \"daily\"\nname = \"Daily CVS\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n",
        partner.url("/events.ics")
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    let base = daemon.base.clone();

    // Before any cut, the status page has no cut line.
    let (_, _, page) = blocking_get(&format!("{base}/")).unwrap();
    assert!(!page.contains("calendar-cut"), "{page}");

    let (status, h, cal) = blocking_get(&format!("{base}/calendar.ics?{WINDOW}")).unwrap();
    assert_eq!(status, 200, "{cal}");
    let header = h
        .get("x-tributary-truncated")
        .expect("a cut calendar names the cut in a header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        header.contains("calendar_max_events=5") && header.contains("5 of 12"),
        "{header}"
    );
    assert!(header.contains("7 later ones omitted"), "{header}");
    let unfolded = cal.replace("\r\n ", "");
    let stated = unfolded
        .lines()
        .find(|l| l.starts_with("X-TRIBUTARY-TRUNCATED:"))
        .expect("the calendar states the cut itself");
    assert!(stated.contains("5 of 12"), "{stated}");
    // The published ones are the earliest-starting.
    assert_eq!(cal.matches("BEGIN:VEVENT\r\n").count(), BOUND);
    for i in 0..EVENTS {
        let number = format!("SUMMARY:Volunteer drop-in number {i}\r\n");
        assert_eq!(cal.contains(&number), i < BOUND, "event {i}");
    }
    // The same rendering from the cache still carries the statement, gzip too.
    let (_, h2, _) = get_with(
        &format!("{base}/calendar.ics?{WINDOW}"),
        &[("accept-encoding", "gzip")],
    )
    .unwrap();
    assert_eq!(h2["x-tributary-truncated"].to_str().unwrap(), header);

    let (_, _, metrics) = blocking_get(&format!("{base}/metrics")).unwrap();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tributary_calendar_omitted_events_total{route=\"/calendar.ics\"}"))
        .unwrap_or_else(|| panic!("no omitted-events counter:\n{metrics}"));
    assert!(line.ends_with(" 7"), "{line}");

    let (_, _, page) = blocking_get(&format!("{base}/")).unwrap();
    let cut = page
        .split("id=\"calendar-cut\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no cut line on the status page:\n{page}"));
    let cut = cut.split("</p>").next().unwrap();
    assert!(
        cut.contains("/calendar.ics")
            && cut.contains("published 5 of 12")
            && cut.contains("7 omitted"),
        "{cut}"
    );

    // A window within the bound is whole and states nothing.
    let (status, h, cal) = blocking_get(&format!(
        "{base}/calendar.ics?from=2027-03-01T00:00:00Z&to=2027-03-04T00:00:00Z"
    ))
    .unwrap();
    assert_eq!(status, 200);
    assert!(h.get("x-tributary-truncated").is_none(), "{h:?}");
    assert!(!cal.contains("X-TRIBUTARY-TRUNCATED"), "{cal}");
    assert_eq!(cal.matches("BEGIN:VEVENT\r\n").count(), 3);
    daemon.stop();
}

#[test]
fn check_config_refuses_a_calendar_bound_of_zero() {
    let env = TestEnv::new("[publish]\ncalendar_max_events = 0\n");
    let out = env.cmd(&["check-config"]);
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("publish.calendar_max_events"), "{text}");
}
