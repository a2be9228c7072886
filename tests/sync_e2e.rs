//! End-to-end syncs through the real binary against fake partners on 127.0.0.1 and a real SQLite
//! store in a temp dir: conditional GET, rejections, failing partners, config errors.

mod common;

use common::*;

fn calendar(events: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test Partner//EN\r\nX-WR-TIMEZONE:Europe/London\r\n",
    );
    for (uid, title, start) in events {
        s.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART;TZID=Europe/London:{start}\r\nDURATION:PT2H\r\nSUMMARY:{title}\r\nLOCATION:Macclesfield Library\\, Jordangate\\, SK10 1EE\r\nEND:VEVENT\r\n"
        ));
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

fn one_feed_partner(id: &str, url: &str, kind: &str, format: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"{kind}\"\nformat = \"{format}\"\nurl = \"{url}\"\nretries = 1\ntimeout_secs = 5\n\n"
    )
}

fn scalar(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn second_sync_sends_if_none_match_gets_304_and_changes_nothing() {
    let partner = fake_partner(ics_feed(
        &calendar(&[
            ("w1@cvs.example", "Funding workshop", "20270210T100000"),
            ("w2@cvs.example", "Safeguarding basics", "20270211T140000"),
        ]),
        Some("\"v1\""),
    ));
    let env = TestEnv::new(&one_feed_partner(
        "cvs-test",
        &partner.url("/events.ics"),
        "events",
        "ical",
    ));

    let first = env.cmd(&["sync"]);
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let conn = db(&env);
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM entities WHERE deleted_at IS NULL"
        ),
        2
    );
    let changes_before = scalar(&conn, "SELECT COUNT(*) FROM changes");
    let body_before: String = conn
        .query_row("SELECT group_concat(body) FROM entities", [], |r| r.get(0))
        .unwrap();

    let second = env.cmd(&["sync"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).contains("unchanged"), "{}", stdout(&second));
    {
        let seen = partner.seen.lock().unwrap();
        assert_eq!(seen.requests, 2);
        assert_eq!(seen.if_none_match[1].as_deref(), Some("\"v1\""));
        assert_eq!(seen.not_modified, 1);
        assert!(
            seen.user_agents[0].starts_with("tributary/"),
            "{:?}",
            seen.user_agents
        );
    }
    assert_eq!(
        scalar(&conn, "SELECT COUNT(*) FROM changes"),
        changes_before
    );
    let body_after: String = conn
        .query_row("SELECT group_concat(body) FROM entities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body_before, body_after);
    let result: String = conn
        .query_row(
            "SELECT result FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(result, "unchanged");

    // A changed feed (new ETag) is fetched, parsed and applied.
    partner.set(|f| {
        f.body = calendar(&[(
            "w1@cvs.example",
            "Funding workshop: applying to the Lottery",
            "20270210T100000",
        )])
        .into_bytes();
        f.etag = Some("\"v2\"".into());
    });
    let third = env.cmd(&["sync"]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM entities WHERE deleted_at IS NULL"
        ),
        1
    );
    let title: String = conn
        .query_row(
            "SELECT json_extract(body, '$.title') FROM entities WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(title, "Funding workshop: applying to the Lottery");
    // The dropped event is soft-deleted for this partner, with a delete in the change log.
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM source_records WHERE deleted_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM changes WHERE action = 'delete'"
        ),
        1
    );
}

#[test]
fn malformed_record_is_rejected_with_reason_and_the_rest_land() {
    let body = r#"{"events": [
        {"id": "e1", "title": "Volunteer fair", "start": "2027-03-01T10:00:00+00:00", "timezone": "Europe/London"},
        {"id": "e2", "title": "Trustee networking", "start": "not a date"},
        {"id": "e3", "title": "Green social prescribing walk", "start": "2027-03-05T11:00:00+00:00"}
    ]}"#;
    let partner = fake_partner(json_feed(body));
    let env = TestEnv::new(&one_feed_partner(
        "hcv-test",
        &partner.url("/events.json"),
        "events",
        "tributary-json",
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("1 rejected"), "{}", stdout(&out));
    let conn = db(&env);
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM entities WHERE deleted_at IS NULL"
        ),
        2
    );
    let (rejected, record, reason): (i64, String, String) = conn
        .query_row(
            "SELECT r.rejected, j.source_id, j.reason FROM runs r JOIN rejections j ON j.run_id = r.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(rejected, 1);
    assert_eq!(record, "e2");
    assert!(
        reason.contains("start"),
        "reason should name the field: {reason}"
    );
}

#[test]
fn failing_partner_fails_alone_and_keeps_its_data() {
    let good = fake_partner(ics_feed(
        &calendar(&[("g1@good.example", "Community cafe", "20270105T100000")]),
        None,
    ));
    let flaky = fake_partner(ics_feed(
        &calendar(&[(
            "f1@flaky.example",
            "Food bank volunteers' meeting",
            "20270106T180000",
        )]),
        None,
    ));
    let down_port = free_port();
    let mut toml = one_feed_partner("good", &good.url("/e.ics"), "events", "ical");
    toml.push_str(&one_feed_partner(
        "flaky",
        &flaky.url("/e.ics"),
        "events",
        "ical",
    ));
    let env = TestEnv::new(&toml);
    let first = env.cmd(&["sync"]);
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        stderr(&first)
    );
    let conn = db(&env);
    let snapshot = |conn: &rusqlite::Connection| -> String {
        conn.query_row(
            "SELECT group_concat(source_id || ':' || content_hash || ':' || COALESCE(deleted_at, '')) FROM source_records WHERE partner_id = 'flaky'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let before = snapshot(&conn);

    // The partner's server now answers 500.
    flaky.set(|f| f.status = 500);
    let out = env.cmd(&["sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("flaky") && text.contains("FAILED") && text.contains("500"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("good") && !l.contains("FAILED")),
        "{text}"
    );
    assert_eq!(snapshot(&conn), before);
    assert_eq!(
        scalar(
            &conn,
            "SELECT COUNT(*) FROM entities WHERE deleted_at IS NULL"
        ),
        2
    );
    let err: String = conn
        .query_row(
            "SELECT error FROM runs WHERE partner_id = 'flaky' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(err.contains("500"), "{err}");

    // `status` shows the failure and its reason.
    let st = env.cmd(&["status"]);
    assert!(st.status.success());
    assert!(
        stdout(&st).contains("failed") && stdout(&st).contains("500"),
        "{}",
        stdout(&st)
    );

    // A partner whose server is down entirely also fails alone.
    let mut toml = one_feed_partner("good", &good.url("/e.ics"), "events", "ical");
    toml.push_str(&one_feed_partner(
        "flaky",
        &format!("http://127.0.0.1:{down_port}/e.ics"),
        "events",
        "ical",
    ));
    std::fs::write(
        env.config(),
        std::fs::read_to_string(env.config())
            .unwrap()
            .split("[[partners]]")
            .next()
            .unwrap()
            .to_string()
            + &toml,
    )
    .unwrap();
    let out = env.cmd(&["sync", "--full"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("FAILED"), "{}", stdout(&out));
    assert_eq!(snapshot(&conn), before);
}

#[test]
fn check_config_names_every_bad_key_and_exits_2() {
    let env = TestEnv::new(
        r#"
[[partners]]
id = "Bad Id!"
name = "Broken partner"
schedule = "every tuesday"

[[partners.feeds]]
kind = "events"
format = "gcal"
url = "ftp://example.org/feed"

[[partners]]
id = "ok-partner"
name = "OK"

[[partners.feeds]]
kind = "people"
format = "csv"
url = "missing-file.csv"
timeout_secs = 0
"#,
    );
    let out = env.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for key in [
        "partners[0].id",
        "partners[0].schedule",
        "partners[0].feeds[0].format",
        "partners[0].feeds[0].url",
        "partners[1].feeds[0].kind",
        "partners[1].feeds[0].url",
        "partners[1].feeds[0].timeout_secs",
    ] {
        assert!(err.contains(key), "missing {key} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");

    // An unknown key is named too.
    std::fs::write(
        env.config(),
        "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n",
    )
    .unwrap();
    let out = env.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lisen"), "{}", stderr(&out));

    // So is a response cache size out of range.
    std::fs::write(
        env.config(),
        "[server]\nlisten = \"127.0.0.1:1\"\nresponse_cache_mb = -1\n",
    )
    .unwrap();
    let out = env.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("server.response_cache_mb"),
        "{}",
        stderr(&out)
    );

    // The bundled demo config is valid.
    let demo = TestEnv::demo();
    let out = demo.cmd(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
