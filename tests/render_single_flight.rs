//! A burst of identical requests that arrives while a response is being rendered shares that one
//! rendering (single-flight), rather than each rendering it again. The calendar is made big enough
//! that its render takes a while, and the test checks that every request was in flight at once
//! before it counts renderings, so a cache filled by the first answer cannot explain the result.

mod common;

use std::sync::Barrier;
use std::time::Instant;

use common::*;

const WINDOW: &str = "from=2027-01-01&to=2028-01-01";
const EVENTS: usize = 20_000;
const BURST: usize = 12;

/// `EVENTS` single events through 2027, each with its own UID and title.
fn big_calendar() -> String {
    let mut ics = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for i in 0..EVENTS {
        let day = 1 + (i % 360);
        let (month, dom) = (1 + (day - 1) / 30, 1 + (day - 1) % 30);
        let (month, dom) = (month.min(12), if month == 2 { dom.min(28) } else { dom });
        ics.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:e{i}@burst.test\r\nDTSTART:2027{month:02}{dom:02}T{:02}0000Z\r\n\
             DURATION:PT1H\r\nSUMMARY:Session {i} of the community programme\r\n\
             DESCRIPTION:A description long enough to cost something to render, number {i}.\r\n\
             LOCATION:Hall {}\\, High Street\r\nEND:VEVENT\r\n",
            8 + i % 10,
            i % 50
        ));
    }
    ics.push_str("END:VCALENDAR\r\n");
    ics
}

#[test]
fn a_burst_during_a_render_shares_that_one_rendering() {
    let partner = fake_partner(ics_feed(&big_calendar(), None));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"burst\"\nname = \"Burst partner\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n",
        partner.url("/events.ics")
    ));
    let sync = env.cmd(&["sync"]);
    assert!(sync.status.success(), "{}{}", stdout(&sync), stderr(&sync));
    let daemon = env.start();
    // The whole year's calendar: the costliest render, so the burst provably overlaps it. Every
    // cached route shares the same single-flight cache.
    {
        let path = format!("/calendar.ics?{WINDOW}");
        let url = format!("{}{path}", daemon.base);
        let start = Barrier::new(BURST);
        let answers: Vec<(Instant, Instant, u16, String)> = std::thread::scope(|s| {
            let asks: Vec<_> = (0..BURST)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        let sent = Instant::now();
                        let (status, _, body) = blocking_get(&url).unwrap();
                        (sent, Instant::now(), status, body)
                    })
                })
                .collect();
            asks.into_iter().map(|a| a.join().unwrap()).collect()
        });
        assert!(answers.iter().all(|a| a.2 == 200), "{path}: all answered");
        assert!(
            answers.iter().all(|a| a.3 == answers[0].3),
            "{path}: one answer"
        );
        // Every request was sent before any answer came back: all were in flight together.
        let last_sent = answers.iter().map(|a| a.0).max().unwrap();
        let first_done = answers.iter().map(|a| a.1).min().unwrap();
        assert!(
            last_sent < first_done,
            "{path}: the burst did not overlap (the last request left {:?} after the first answer)",
            last_sent - first_done
        );
    }
    let (_, _, metrics) = blocking_get(&format!("{}/metrics", daemon.base)).unwrap();
    let line = "tributary_response_renders_total{route=\"/calendar.ics\"} 1\n";
    assert!(metrics.contains(line), "rendered once:\n{metrics}");
    daemon.stop();
}
