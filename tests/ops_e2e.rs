//! Operations through the real binary: systemd readiness, JSON logs, `resync --wait` against the
//! running daemon (single-flight), `export` in every format, HTTP compression and CORS, and a
//! changed or deleted event moving SEQUENCE and staying in the calendar as CANCELLED.

mod common;

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::*;

const TOKEN: &str = "ops-test-token";

fn events_json(items: &[(&str, &str, &str)]) -> String {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(id, title, start)| {
            serde_json::json!({"id": id, "title": title, "start": start, "timezone": "Europe/London",
                               "categories": ["Training"], "location": {"name": "Crewe Library", "postcode": "CW1 2DD"}})
        })
        .collect();
    serde_json::json!({ "events": items }).to_string()
}

fn partner(id: &str, url: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"{url}\"\nretries = 0\n\n"
    )
}

fn vevent_of<'a>(ics: &'a str, uid: &str) -> &'a str {
    let start = ics.find(&format!("UID:{uid}")).expect("event in calendar");
    let from = ics[..start].rfind("BEGIN:VEVENT").unwrap();
    let to = start + ics[start..].find("END:VEVENT").unwrap();
    &ics[from..to]
}

/// A run's result as stored.
fn run_result(env: &TestEnv, id: i64) -> String {
    db(env)
        .query_row("SELECT result FROM runs WHERE id = ?1", [id], |r| r.get(0))
        .unwrap()
}

/// The newest run's id and result.
fn newest_run(env: &TestEnv) -> (i64, String) {
    db(env)
        .query_row(
            "SELECT id, result FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

#[test]
fn status_and_export_beside_a_running_sync_leave_its_run_running() {
    let feed = fake_partner(json_feed(&events_json(&[(
        "e1",
        "Funding workshop",
        "2027-02-10T10:00:00+00:00",
    )])));
    feed.hold();
    let env = TestEnv::new(&partner("cvs", &feed.url("/e.json")));
    // The daemon's startup sync (the partner never synced) waits on the held partner.
    let daemon = env.start();
    feed.wait_held(1);
    let (id, result) = newest_run(&env);
    assert_eq!(result, "running");

    let out = env.cmd(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["last_run"]["id"], id, "{v}");
    assert_eq!(v[0]["last_run"]["result"], "running", "{v}");
    let out = env.cmd(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("#{id} running at")),
        "{}",
        stdout(&out)
    );
    let out = env.cmd(&["export", "--kind", "events", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        newest_run(&env),
        (id, "running".to_string()),
        "status and export wrote nothing"
    );

    feed.open();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while run_result(&env, id) == "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the sync did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run_result(&env, id), "ok", "the live run ends as it went");
    let events = json(&format!(
        "{}/v1/events?from=2027-01-01&to=2027-12-31",
        daemon.base
    ));
    assert_eq!(events["items"].as_array().unwrap().len(), 1);
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn notify_logs_resync_export_and_calendar_lifecycle() {
    let feed = fake_partner(json_feed(&events_json(&[
        ("e1", "Funding workshop", "2027-02-10T10:00:00+00:00"),
        ("e2", "Safeguarding basics", "2027-02-11T14:00:00+00:00"),
    ])));
    let env = TestEnv::new(&partner("cvs", &feed.url("/e.json")));

    // systemd readiness: READY=1 arrives on NOTIFY_SOCKET once the daemon serves.
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let daemon = env.start_with(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("TRIBUTARY_ADMIN_TOKEN", TOKEN),
    ]);
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));

    // `tributary resync --wait` talks to the daemon with the token from the environment.
    // It finds the daemon's port (bound as 127.0.0.1:0) in the address file the daemon wrote.
    let out = env
        .command()
        .args(["resync", "--wait"])
        .env("TRIBUTARY_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("cvs"), "{}", stdout(&out));
    let window = "from=2027-01-01&to=2027-12-31";
    let events = json(&format!("{}/v1/events?{window}", daemon.base));
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
    let id1 = events["items"][0]["id"].as_str().unwrap().to_string();
    let id2 = events["items"][1]["id"].as_str().unwrap().to_string();

    // Two resyncs while a sync is provably in flight (the partner holds its answer): the second
    // joins the first (single-flight) instead of starting another.
    let base = daemon.base.clone();
    let before = feed.requests();
    feed.hold();
    let a = post(
        &format!("{base}/admin/resync?partner=cvs&full=true"),
        Some(TOKEN),
        "",
    );
    feed.wait_held(1);
    let b = post(
        &format!("{base}/admin/resync?partner=cvs&full=true"),
        Some(TOKEN),
        "",
    );
    feed.open();
    let ra: serde_json::Value = serde_json::from_str(&a.1).unwrap();
    let rb: serde_json::Value = serde_json::from_str(&b.1).unwrap();
    assert_eq!(a.0, 202, "{ra}");
    assert_eq!(b.0, 202, "{rb}");
    assert_eq!(ra["runs"][0]["joined"], false, "{ra}");
    assert_eq!(rb["runs"][0]["joined"], true, "the second joins: {rb}");
    assert_eq!(
        ra["runs"][0]["run_id"], rb["runs"][0]["run_id"],
        "{ra} {rb}"
    );
    let run_id = ra["runs"][0]["run_id"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while run_result(&env, run_id) == "running" {
        assert!(
            std::time::Instant::now() < deadline,
            "the joined sync did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run_result(&env, run_id), "ok");
    assert_eq!(feed.requests(), before + 1, "one fetch for both resyncs");

    // Gzip when asked, CORS for browsers.
    let (status, headers, _) = get_with(
        &format!("{base}/calendar.ics?{window}"),
        &[
            ("accept-encoding", "gzip"),
            ("origin", "https://example.org"),
        ],
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["access-control-allow-origin"], "*");

    // Per-partner calendars and calendar filters.
    let (status, _, ics) =
        blocking_get(&format!("{base}/partners/cvs/calendar.ics?{window}")).unwrap();
    assert_eq!(status, 200);
    assert!(
        ics.contains("X-WR-CALNAME:Partner cvs") && ics.contains(&format!("UID:{id1}@tributary"))
    );
    let (status, _, _) = blocking_get(&format!("{base}/partners/nobody/calendar.ics")).unwrap();
    assert_eq!(status, 404);
    let count = |query: &str| {
        let (status, _, ics) =
            blocking_get(&format!("{base}/calendar.ics?{window}&{query}")).unwrap();
        assert_eq!(status, 200, "{query}");
        ics.matches("BEGIN:VEVENT").count()
    };
    assert_eq!(count("category=Training"), 2);
    assert_eq!(count("category=Gardening"), 0);
    assert_eq!(count("postcode_area=CW"), 2);
    assert_eq!(count("postcode_area=CW1"), 2);
    assert_eq!(count("postcode_area=HU"), 0);
    assert_eq!(count("partner=cvs"), 2);
    assert_eq!(count("from=2027-02-11&to=2027-02-12"), 1);

    let calendar = |base: &str| {
        let (_, _, ics) = blocking_get(&format!("{base}/calendar.ics?{window}")).unwrap();
        ics.replace("\r\n ", "")
    };
    let before = calendar(&base);
    assert!(vevent_of(&before, &format!("{id1}@tributary")).contains("SEQUENCE:0"));

    // e1 changes, e2 is deleted: SEQUENCE moves on e1, e2 stays as CANCELLED.
    feed.set(|f| {
        f.body = events_json(&[(
            "e1",
            "Funding workshop (new room)",
            "2027-02-10T10:00:00+00:00",
        )])
        .into_bytes()
    });
    let (status, body) = post(
        &format!("{base}/admin/resync?partner=cvs&wait=true"),
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let after = calendar(&base);
    let e1 = vevent_of(&after, &format!("{id1}@tributary"));
    assert!(
        e1.contains("SEQUENCE:1") && e1.contains("SUMMARY:Funding workshop (new room)"),
        "{e1}"
    );
    let e2 = vevent_of(&after, &format!("{id2}@tributary"));
    assert!(e2.contains("STATUS:CANCELLED"), "{e2}");
    let listed = json(&format!("{base}/v1/events?{window}"));
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "the JSON API lists live events only"
    );
    let (status, _, _) = blocking_get(&format!("{base}/v1/events/{id2}")).unwrap();
    assert_eq!(status, 410);
    assert_eq!(daemon.stop(), Some(0));

    // Export in every format.
    let out_dir = env.dir.path();
    for (kind, format) in [
        ("events", "json"),
        ("events", "csv"),
        ("events", "ics"),
        ("organisations", "json"),
    ] {
        let file = out_dir.join(format!("{kind}.{format}"));
        let out = env.cmd(&[
            "export",
            "--kind",
            kind,
            "--format",
            format,
            "--out",
            file.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{kind} {format}: {}", stderr(&out));
        let mut text = String::new();
        std::fs::File::open(&file)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        match format {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let n = if kind == "events" { 1 } else { 0 };
                assert_eq!(v.as_array().unwrap().len(), n, "{text}");
            }
            "csv" => assert!(
                text.starts_with("id,title,") && text.contains("Funding workshop (new room)")
            ),
            _ => assert!(
                text.starts_with("BEGIN:VCALENDAR")
                    && text.contains(&format!("UID:{id1}@tributary"))
            ),
        }
    }
    let out = env.cmd(&["export", "--kind", "organisations", "--format", "ics"]);
    assert_eq!(out.status.code(), Some(2));

    // JSON logs for machines: every stderr line is a JSON object.
    let out = Command::new(BIN)
        .args([
            "--config",
            env.config().to_str().unwrap(),
            "--log-format",
            "json",
            "sync",
        ])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let logs = stderr(&out);
    assert!(!logs.trim().is_empty());
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string());
    }
}
