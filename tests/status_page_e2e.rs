//! The status page in a real browser: headless Chromium loads `/` from the running daemon and the
//! rendered page shows the demo partners and a failing partner's error.

mod common;

use std::process::Command;

use common::*;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
}

#[test]
fn status_page_shows_partners_and_a_failing_partners_error_in_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipping: chromium is not installed");
        return;
    };
    let env = TestEnv::demo();
    let down = free_port();
    let mut text = std::fs::read_to_string(env.config()).unwrap();
    text.push_str(&format!(
        "\n[[partners]]\nid = \"broken-partner\"\nname = \"Broken Partner CVS\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"http://127.0.0.1:{down}/events.ics\"\nretries = 0\n"
    ));
    std::fs::write(env.config(), text).unwrap();
    let out = env.cmd(&["sync"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the broken partner fails: {}",
        stdout(&out)
    );
    let daemon = env.start();

    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("{}/", daemon.base))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", stderr(&out));
    let dom = stdout(&out);
    assert!(dom.contains("<title>tributary status</title>"), "{dom}");
    for name in [
        "CVS Cheshire East",
        "Hull VCSE Sector Liaison Group",
        "Broken Partner CVS",
    ] {
        assert!(dom.contains(name), "{name} missing from the page:\n{dom}");
    }
    let broken = dom
        .split("id=\"partner-broken-partner\"")
        .nth(1)
        .expect("a row for the broken partner");
    let row = broken.split("</tr>").next().unwrap();
    assert!(row.contains("failed"), "{row}");
    assert!(
        row.contains(&format!("127.0.0.1:{down}")),
        "the error names the URL: {row}"
    );
    assert!(dom.contains("webcal://"), "a webcal link to subscribe");
    daemon.stop();
}
