//! A running sync's progress as admins see it, through the real binary: a partner whose second
//! feed is held (its request provably waiting) reads "fetching, feed 2 of 2" with the first feed's
//! page and records counted; a partner queued behind it for the one sync slot reads "waiting";
//! both end finished, with no progress left.

mod common;

use std::time::{Duration, Instant};

use common::console::{send, sign_in};
use common::*;

const TOKEN: &str = "progress-token-1618";

const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n\
BEGIN:VEVENT\r\nUID:e1@t\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270301T100000Z\r\nSUMMARY:Coffee morning\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:e2@t\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270302T100000Z\r\nSUMMARY:Walking group\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:e3@t\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270303T100000Z\r\nSUMMARY:Repair cafe\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

fn ics_feed_toml(url: &str) -> String {
    format!("[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{url}\"\nretries = 0\n\n")
}

/// `/admin/partners`' entry for `id`.
fn partner_health(base: &str, id: &str) -> serde_json::Value {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) = get_with(
        &format!("{base}/admin/partners"),
        &[("authorization", &auth)],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v.as_array()
        .or_else(|| v["partners"].as_array())
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
        .unwrap()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_sync_reports_its_stage_feed_pages_and_records() {
    let site = fake_site();
    site.put("/first.ics", "text/calendar", ICS);
    site.put("/beta.ics", "text/calendar", ICS);
    let held = fake_partner(ics_feed(ICS, None));
    held.hold();
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"alpha\"\nname = \"Alpha\"\n\n{}{}\
         [[partners]]\nid = \"beta\"\nname = \"Beta\"\n\n{}",
        ics_feed_toml(&site.url("/first.ics")),
        ics_feed_toml(&held.url("/second.ics")),
        ics_feed_toml(&site.url("/beta.ics")),
    ));
    let text = std::fs::read_to_string(env.config()).unwrap();
    std::fs::write(
        env.config(),
        text.replace("[scheduler]\n", "[scheduler]\nmax_concurrent = 1\n"),
    )
    .unwrap();
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();

    // Alpha's start-up sync has read its first feed and is waiting on the second.
    held.wait_held(1);
    let alpha = partner_health(&base, "alpha");
    let p = &alpha["progress"];
    assert_eq!(p["stage"], "fetching", "{alpha}");
    assert_eq!(
        (p["feed"].as_u64(), p["feeds"].as_u64()),
        (Some(2), Some(2)),
        "{p}"
    );
    assert_eq!(p["pages"], 1, "the first feed's one page: {p}");
    assert_eq!(p["records"], 3, "the first feed's three events: {p}");
    assert_eq!(p["bytes"].as_u64(), Some(ICS.len() as u64), "{p}");
    assert!(alpha["running_run_id"].is_i64(), "{alpha}");

    // Beta, asked to resync now, waits for the one slot alpha holds.
    let (status, body) = post(
        &format!("{base}/admin/resync?partner=beta"),
        Some(TOKEN),
        "{}",
    );
    assert!(status == 200 || status == 202, "{status} {body}");
    wait_for("beta waiting", || {
        partner_health(&base, "beta")["progress"]["stage"] == "waiting"
    });

    // The console's partner page and its progress endpoint say the same in words.
    let (session, _, _) = sign_in(&base, TOKEN, &[]);
    let (status, _, page) = send(
        "GET",
        &format!("{base}/admin/console/partners/alpha"),
        Some(&session),
        "",
        &[],
    );
    assert_eq!(status, 200);
    assert!(
        page.contains("fetching feeds (feed 2 of 2): 1 page, 3 records read"),
        "{page}"
    );
    let (status, _, live) = send(
        "GET",
        &format!("{base}/admin/console/partners/beta/progress"),
        Some(&session),
        "",
        &[],
    );
    assert_eq!(status, 200);
    let live: serde_json::Value = serde_json::from_str(&live).unwrap();
    assert_eq!(live["progress"]["stage"], "waiting", "{live}");
    assert_eq!(
        live["progress_text"], "waiting for a free sync slot",
        "{live}"
    );

    // Let the held feed answer: both finish, and nothing reads as running any more.
    held.open();
    wait_for("both finished", || {
        ["alpha", "beta"].iter().all(|id| {
            let h = partner_health(&base, id);
            h["progress"].is_null() && h["running_run_id"].is_null()
        })
    });
    let alpha = partner_health(&base, "alpha");
    assert_eq!(alpha["last_run"]["result"], "ok", "{alpha}");
    assert_eq!(alpha["last_run"]["counts"]["records_seen"], 6, "{alpha}");
    daemon.stop();
}
