//! Real-world iCalendar through the real binary: one partner serving a calendar with the quirks
//! Google, Outlook, Apple and Lotus Notes write (overrides, other zones, UNTIL forms, exceptions,
//! junk lines, hostile durations and nesting), synced into a real store, then read back from
//! `/v1/events` and `/calendar.ics`.

mod common;

use std::time::Instant;

use common::*;
use serde_json::Value;

const WINDOW: &str = "from=2027-01-01T00:00:00Z&to=2027-12-31T00:00:00Z";

fn calendar() -> String {
    let mut c = String::new();
    c.push_str("begin:vcalendar\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n\r\n");
    // Overrides of a New York series: one moved, one cancelled.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:ny@x\r\nDTSTART;TZID=America/New_York:20270302T180000\r\n",
        "DTEND;TZID=America/New_York:20270302T190000\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\n",
        "SUMMARY:NY board\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:ny@x\r\nRECURRENCE-ID;TZID=America/New_York:20270309T180000\r\n",
        "DTSTART;TZID=America/New_York:20270310T200000\r\nDTEND;TZID=America/New_York:20270310T210000\r\n",
        "SUMMARY:NY board (moved)\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:ny@x\r\nRECURRENCE-ID;TZID=America/New_York:20270316T180000\r\n",
        "DTSTART;TZID=America/New_York:20270316T180000\r\nSTATUS:CANCELLED\r\n",
        "SUMMARY:NY board\r\nEND:VEVENT\r\n",
    ));
    // Google's weekly all-day series with a DATE UNTIL; Apple's local UNTIL with a TZID start.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:allday@x\r\nDTSTART;VALUE=DATE:20270104\r\nDTEND;VALUE=DATE:20270105\r\n",
        "RRULE:FREQ=WEEKLY;UNTIL=20270125\r\nSUMMARY:Bin day\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:apple@x\r\nDTSTART;TZID=Europe/London:20270105T100000\r\n",
        "RRULE:FREQ=DAILY;UNTIL=20270107T100000\r\nSUMMARY:Apple daily\r\nEND:VEVENT\r\n",
    ));
    // Outlook's Windows zone names in EXDATE; EXDATE;VALUE=DATE on a timed series; RDATE PERIOD.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:outlook@x\r\nDTSTART;TZID=GMT Standard Time:20270601T090000\r\n",
        "DTEND;TZID=GMT Standard Time:20270601T100000\r\nRRULE:FREQ=DAILY;COUNT=5\r\n",
        "EXDATE;TZID=GMT Standard Time:20270602T090000\r\nEXDATE;VALUE=DATE:20270603\r\n",
        "RDATE;VALUE=PERIOD:20270610T080000Z/20270610T090000Z\r\n",
        "SUMMARY:Outlook standup\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:syd@x\r\nDTSTART;TZID=AUS Eastern Standard Time:20270701T090000\r\n",
        "SUMMARY:Sydney call\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:ba@x\r\n",
        "DTSTART;TZID=/freeassociation.sourceforge.net/Tzfile/America/Argentina/Buenos_Aires:20270801T090000\r\n",
        "SUMMARY:Buenos Aires call\r\nEND:VEVENT\r\n",
    ));
    // A repeated UID: an older SEQUENCE superseded, a publisher's run of dates under one UID.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:rev@x\r\nSEQUENCE:3\r\nDTSTART:20270502T100000Z\r\nSUMMARY:Revised\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:rev@x\r\nSEQUENCE:1\r\nDTSTART:20270501T100000Z\r\nSUMMARY:Superseded\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:run@x\r\nDTSTART:20270510T100000Z\r\nSUMMARY:Run\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:run@x\r\nDTSTART:20270517T100000Z\r\nSUMMARY:Run\r\nEND:VEVENT\r\n",
    ));
    // A zone nothing names, an unreadable DTEND, pasted text with a colon, swapped times, and
    // a weekly all-day series across the clocks going forward.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:wce@x\r\nDTSTART;TZID=\"Western/Central Europe\":20270520T160000\r\n",
        "SUMMARY:Unknown zone\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:badend@x\r\nDTSTART:20270521T100000Z\r\nDTEND:None\r\n",
        "SUMMARY:Bad end\r\nDESCRIPTION:Agenda\r\nItem 1: welcome\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:swap@x\r\nDTSTART:20270522T110000Z\r\nDTEND:20270522T100000Z\r\n",
        "SUMMARY:Swapped\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:market@x\r\nDTSTART;VALUE=DATE:20270321\r\nDTEND;VALUE=DATE:20270322\r\n",
        "RRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:Market day\r\nEND:VEVENT\r\n",
    ));
    // A daily all-day series longer than any page.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:daily@x\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270102\r\n",
        "RRULE:FREQ=DAILY;COUNT=300\r\nSUMMARY:Daily all-day\r\nEND:VEVENT\r\n",
    ));
    // Needless rejections: no UID, an empty RRULE, RSCALE.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nDTSTART:20270901T100000Z\r\nSUMMARY:No uid here\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:empty@x\r\nDTSTART:20270902T100000Z\r\nRRULE:\r\nSUMMARY:Empty rule\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:rscale@x\r\nDTSTART:20270903T100000Z\r\n",
        "RRULE:RSCALE=CHINESE;FREQ=YEARLY\r\nSUMMARY:Lunar new year\r\nEND:VEVENT\r\n",
    ));
    // Hostile: durations past any date, an end in year 10000, a SECONDLY rule from 2000.
    c.push_str(concat!(
        "BEGIN:VEVENT\r\nUID:d1@x\r\nDTSTART:20271001T100000Z\r\nDURATION:P99999999D\r\nSUMMARY:Long 1\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:d2@x\r\nDTSTART:20271001T100000Z\r\nDURATION:P999999999999999999W\r\nSUMMARY:Long 2\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:y10k@x\r\nDTSTART:20271001T100000Z\r\nDTEND:100000101T100000Z\r\nSUMMARY:Y10k\r\nEND:VEVENT\r\n",
        "BEGIN:VEVENT\r\nUID:sec@x\r\nDTSTART:20000101T000000Z\r\nRRULE:FREQ=SECONDLY\r\nSUMMARY:Every second\r\nEND:VEVENT\r\n",
    ));
    // Junk: a property with no colon, and a VEVENT nested 100,000 components deep.
    c.push_str(
        "JUNKLINE\r\nBEGIN:VEVENT\r\nUID:deep@x\r\nDTSTART:20271101T100000Z\r\nSUMMARY:Deep\r\n",
    );
    c.push_str(&"BEGIN:X-A\r\n".repeat(100_000));
    c.push_str(&"END:X-A\r\n".repeat(100_000));
    c.push_str("END:VEVENT\r\n");
    c.push_str("END:VCALENDAR\r\ntext after the calendar\r\n");
    // A second VCALENDAR in the same file.
    c.push_str("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:second@x\r\nDTSTART:20271201T100000Z\r\nSUMMARY:Second calendar\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
    c
}

fn starts(items: &[Value], title: &str) -> Vec<String> {
    items
        .iter()
        .filter(|e| e["title"] == title)
        .map(|e| e["start"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn real_world_calendar_quirks_land_exactly_in_both_outputs() {
    let partner = fake_partner(ics_feed(&calendar(), None));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"cal\"\nname = \"Calendar\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\ntimeout_secs = 10\n",
        partner.url("/cal.ics")
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let daemon = env.start();

    // Every page, small ones: occurrences under way at a cursor must not end the listing.
    let t = Instant::now();
    let _ = json(&format!("{}/v1/events?{WINDOW}", daemon.base));
    let first_request = t.elapsed();
    let mut items: Vec<Value> = Vec::new();
    let mut url = Some(format!("{}/v1/events?{WINDOW}&limit=40", daemon.base));
    while let Some(u) = url {
        let p = json(&u);
        items.extend(p["items"].as_array().unwrap().iter().cloned());
        url = p["next"].as_str().map(String::from);
    }
    assert_eq!(starts(&items, "Daily all-day").len(), 300);

    // Overrides: the moved occurrence replaces its slot, the cancelled one is gone.
    assert_eq!(
        starts(&items, "NY board"),
        ["2027-03-02T18:00:00-05:00", "2027-03-23T18:00:00-04:00"]
    );
    assert_eq!(
        starts(&items, "NY board (moved)"),
        ["2027-03-10T20:00:00-05:00"]
    );
    // UNTIL forms: a DATE UNTIL includes its day; a local UNTIL is read in the start's zone.
    assert_eq!(starts(&items, "Bin day").len(), 4);
    assert_eq!(starts(&items, "Apple daily").len(), 3);
    // Exceptions applied: Windows-zone EXDATE, a DATE EXDATE, a PERIOD RDATE.
    assert_eq!(
        starts(&items, "Outlook standup"),
        [
            "2027-06-01T09:00:00+01:00",
            "2027-06-04T09:00:00+01:00",
            "2027-06-05T09:00:00+01:00",
            "2027-06-10T09:00:00+01:00"
        ]
    );
    // The PERIOD keeps its own length (an hour from 08:00Z), the rule's dates the series' hour.
    let period = items
        .iter()
        .find(|e| e["title"] == "Outlook standup" && e["start"] == "2027-06-10T09:00:00+01:00")
        .expect("the PERIOD occurrence");
    assert_eq!(period["end"], "2027-06-10T10:00:00+01:00");
    // A repeated UID: the newest revision only; a run of dates under one UID, each date.
    assert_eq!(starts(&items, "Revised"), ["2027-05-02T10:00:00+00:00"]);
    assert!(starts(&items, "Superseded").is_empty());
    assert_eq!(
        starts(&items, "Run"),
        ["2027-05-10T10:00:00+00:00", "2027-05-17T10:00:00+00:00"]
    );
    // Land, with a warning each: an unknown zone read as the calendar's local time, an end that
    // cannot be read, swapped times read the other way round.
    assert_eq!(
        starts(&items, "Unknown zone"),
        ["2027-05-20T16:00:00+01:00"]
    );
    let bad_end: Vec<&Value> = items.iter().filter(|e| e["title"] == "Bad end").collect();
    assert_eq!(bad_end.len(), 1);
    assert!(bad_end[0]["description"]
        .as_str()
        .unwrap_or("")
        .contains("Agenda Item 1: welcome"));
    let swapped: Vec<&Value> = items.iter().filter(|e| e["title"] == "Swapped").collect();
    assert_eq!(swapped[0]["start"], "2027-05-22T10:00:00+00:00");
    assert_eq!(swapped[0]["end"], "2027-05-22T11:00:00+00:00");
    // An all-day series ends at the next local midnight, also on the 23-hour day.
    let market: Vec<String> = items
        .iter()
        .filter(|e| e["title"] == "Market day")
        .map(|e| e["end"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        market,
        [
            "2027-03-22T00:00:00+00:00",
            "2027-03-29T00:00:00+01:00",
            "2027-04-05T00:00:00+01:00"
        ]
    );
    assert_eq!(starts(&items, "Sydney call"), ["2027-07-01T09:00:00+10:00"]);
    assert_eq!(
        starts(&items, "Buenos Aires call"),
        ["2027-08-01T09:00:00-03:00"]
    );
    // Needless rejections gone: no UID, an empty RRULE, RSCALE (first occurrence kept).
    for title in [
        "No uid here",
        "Empty rule",
        "Lunar new year",
        "Second calendar",
    ] {
        assert_eq!(starts(&items, title).len(), 1, "{title}");
    }
    // A SECONDLY rule is refused: its first occurrence (in 2000) is outside the window.
    assert!(starts(&items, "Every second").is_empty());
    assert!(
        first_request.as_secs() < 5,
        "first events request took {first_request:?}"
    );
    for title in ["Long 1", "Long 2", "Deep"] {
        assert!(starts(&items, title).is_empty(), "{title} landed");
    }
    // An end past the year 9999 is dropped (with a warning); the event keeps its start.
    let y10k: Vec<&Value> = items.iter().filter(|e| e["title"] == "Y10k").collect();
    assert_eq!(y10k.len(), 1);
    assert!(y10k[0]["end"].is_null());
    // Each refusal is a rejection with its reason; each value dropped or read another way on an
    // event that landed is a warning.
    let conn = db(&env);
    let reasons = |severity: &str| -> String {
        conn.prepare("SELECT reason FROM rejections WHERE severity = ?1")
            .and_then(|mut st| {
                st.query_map([severity], |r| r.get::<_, String>(0))
                    .map(|rows| rows.filter_map(Result::ok).collect::<Vec<_>>())
            })
            .unwrap_or_default()
            .join("\n")
    };
    let (rejected, warned) = (reasons("rejected"), reasons("warning"));
    for needle in ["DURATION", "nested"] {
        assert!(
            rejected.contains(needle),
            "no rejection naming {needle}:\n{rejected}"
        );
    }
    for needle in [
        // The Y10k event's end (year 10000).
        "100000101T100000Z",
        "FREQ=SECONDLY",
        "RSCALE",
        "Western/Central Europe",
        "end is dropped",
        "read as swapped",
    ] {
        assert!(
            warned.contains(needle),
            "no warning naming {needle}:\n{warned}"
        );
        assert!(!rejected.contains(needle), "{needle} rejected:\n{rejected}");
    }

    // calendar.ics: the series' own zone with its VTIMEZONE, overrides under the master's UID.
    let (status, _, ics) = blocking_get(&format!("{}/calendar.ics?{WINDOW}", daemon.base)).unwrap();
    assert_eq!(status, 200);
    let ics = ics.replace("\r\n ", "");
    assert!(ics.contains("DTSTART;TZID=America/New_York:20270302T180000"));
    assert!(ics.contains("TZID:America/New_York\r\n"));
    assert!(ics.contains("RECURRENCE-ID;TZID=America/New_York:20270309T180000"));
    assert!(ics.contains("EXDATE;TZID=America/New_York:20270316T180000"));
    assert!(ics.contains("DTSTART;TZID=Australia/Sydney:20270701T090000"));
    assert!(ics.contains("RDATE;VALUE=PERIOD:20270610T080000Z/20270610T090000Z"));
    assert!(!ics.contains("duplicate UID"));
    let ny_uid = ics
        .split("BEGIN:VEVENT")
        .find(|b| b.contains("SUMMARY:NY board\r\n"))
        .and_then(|b| b.lines().find(|l| l.starts_with("UID:")))
        .unwrap()
        .to_string();
    assert_eq!(ics.matches(&format!("{ny_uid}\r\n")).count(), 2);
    // Every TZID used is defined.
    for part in ics.split("TZID=").skip(1) {
        let name = part.split([':', ';']).next().unwrap();
        assert!(
            ics.contains(&format!("TZID:{name}\r\n")),
            "{name} has no VTIMEZONE"
        );
    }
    drop(daemon);
}
