//! `/metrics` of a live daemon read by Prometheus' own `promtool`: the default (and `text/plain`)
//! answer is the Prometheus text format that `promtool check metrics` accepts, OpenMetrics only
//! when asked; per-partner sync health gauges; and the example alert rules in `deploy/` pass
//! `promtool check rules` and their own `promtool test rules` cases.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

/// `promtool`, or `None` (a loud skip) outside CI when it is not installed; in CI it must be there.
fn promtool() -> Option<&'static str> {
    tool_available(
        "promtool",
        &["--version"],
        "promtool (Debian's prometheus package)",
    )
    .then_some("promtool")
}

fn check_metrics(promtool: &str, text: &str) -> std::process::Output {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A sample's value: the line `name{labels} value`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn partners(good: &str, refused: u16) -> String {
    format!(
        "[[partners]]\nid = \"good\"\nname = \"Good partner\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"{good}\"\nretries = 0\n\n\
         [[partners]]\nid = \"down\"\nname = \"Down partner\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"http://127.0.0.1:{refused}/e.json\"\nretries = 0\n"
    )
}

#[test]
fn metrics_pass_promtool_and_report_partner_health() {
    let Some(promtool) = promtool() else { return };
    let feed = fake_partner(json_feed(
        &serde_json::json!({"events": [{"id": "e1", "title": "Volunteer fair", "start": "2027-03-01T10:00:00+00:00", "timezone": "Europe/London"}]})
            .to_string(),
    ));
    let env = TestEnv::new(&partners(&feed.url("/e.json"), free_port()));
    let started = chrono::Utc::now().timestamp();
    let daemon = env.start();
    let url = format!("{}/metrics", env.base());

    // The startup syncs (neither partner ever synced) finish: one ok, one failed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (status, _, text) = blocking_get(&url).unwrap();
        assert_eq!(status, 200, "{text}");
        let good = sample(
            &text,
            "tributary_partner_last_success_timestamp_seconds{partner=\"good\"}",
        );
        let down = sample(
            &text,
            "tributary_partner_consecutive_failures{partner=\"down\"}",
        );
        if good.is_some_and(|t| t > 0.0) && down.is_some_and(|n| n >= 1.0) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "startup syncs did not finish:\n{text}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let good_at = sample(
        &text,
        "tributary_partner_last_success_timestamp_seconds{partner=\"good\"}",
    )
    .unwrap();
    assert!(
        (started as f64 - 1.0..=chrono::Utc::now().timestamp() as f64 + 1.0).contains(&good_at),
        "last success {good_at} not within the test (started {started})"
    );
    assert_eq!(
        sample(
            &text,
            "tributary_partner_consecutive_failures{partner=\"good\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "tributary_partner_last_success_timestamp_seconds{partner=\"down\"}"
        ),
        Some(0.0),
        "a partner that never synced reports 0"
    );
    assert_eq!(sample(&text, "tributary_store_up"), Some(1.0), "{text}");
    assert!(
        text.contains("# TYPE tributary_store_errors_total counter"),
        "{text}"
    );

    // No Accept, and text/plain: the Prometheus text format, which promtool checks clean.
    for accept in [
        None,
        Some("text/plain"),
        Some("text/plain;version=0.0.4;q=1,*/*;q=0.1"),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let (status, h, text) = get_with(&url, &headers).unwrap();
        assert_eq!(status, 200);
        let ctype = h["content-type"].to_str().unwrap();
        assert!(
            ctype.starts_with("text/plain; version=0.0.4"),
            "{accept:?}: {ctype}"
        );
        assert!(
            !text.contains("# EOF"),
            "{accept:?}: OpenMetrics trailer in plain text"
        );
        let out = check_metrics(promtool, &text);
        assert!(
            out.status.success(),
            "promtool check metrics ({accept:?}) exit {:?}:\n{}{}\n---\n{text}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        // Every family has its HELP and TYPE, named as its samples are.
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split(' ').next().unwrap();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "no HELP for {name}"
            );
        }
    }

    // OpenMetrics when asked, as Prometheus itself asks.
    for accept in [
        "application/openmetrics-text",
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    ] {
        let (status, h, text) = get_with(&url, &[("accept", accept)]).unwrap();
        assert_eq!(status, 200);
        let ctype = h["content-type"].to_str().unwrap();
        assert!(ctype.starts_with("application/openmetrics-text; version=1.0.0"), "{accept}: {ctype}");
        assert!(text.ends_with("# EOF\n"), "{accept}: {text}");
    }
    drop(daemon);
}

#[test]
fn alert_rules_pass_promtool() {
    let Some(promtool) = promtool() else { return };
    let out = Command::new(promtool)
        .args(["check", "rules", &format!("{DEPLOY}/tributary-alerts.yml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("3 rules found"), "{}", stdout(&out));
    // The rules fire (and stay quiet) when their own unit tests say.
    let out = Command::new(promtool)
        .args([
            "test",
            "rules",
            &format!("{DEPLOY}/tributary-alerts.test.yml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}
