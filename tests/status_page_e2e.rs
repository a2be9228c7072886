//! The status page in a real browser: headless Chromium loads `/` from the running daemon and the
//! rendered page shows the demo partners and a failing partner's error; driven through
//! chromedriver at a phone's width (390 px, emulated) and a desktop's, it shows next runs, backoff,
//! rejection reasons, readable times and schedules in words, and never scrolls sideways.

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

/// The demo plus a partner whose feed is down (failing, so backing off) and one whose feed has a
/// record without a name (rejected), synced once; the daemon then serves the page.
fn env_with_trouble() -> (TestEnv, u16) {
    let env = TestEnv::demo();
    let down = free_port();
    std::fs::write(
        env.dir.path().join("patchy.json"),
        r#"{"organisations": [{"id": "p1", "name": "Patchy Lunch Club"}, {"id": "p2"}]}"#,
    )
    .unwrap();
    let mut text = std::fs::read_to_string(env.config()).unwrap();
    text.push_str(&format!(
        "\n[[partners]]\nid = \"broken-partner\"\nname = \"Broken Partner CVS\"\nschedule = \"0 30 9 * * Mon-Fri\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"http://127.0.0.1:{down}/a/very/long/path/to/the/partners/events/feed/that/does/not/break/anywhere/events.ics\"\nretries = 0\n\
         \n[[partners]]\nid = \"patchy\"\nname = \"Patchy Partner\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"patchy.json\"\n"
    ));
    std::fs::write(env.config(), text).unwrap();
    let out = env.cmd(&["sync"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    (env, down)
}

/// A WebDriver call to chromedriver: `method` on `path` with a JSON body; the answer's `value`.
fn webdriver(
    method: &str,
    url: String,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let mut req = reqwest::Client::new().request(method, &url);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.map_err(|e| e.to_string())?;
            let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
            Ok(v["value"].clone())
        })
    })
    .join()
    .map_err(|_| "webdriver thread panicked".to_string())?
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: std::process::Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Option<Driver> {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let driver = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if webdriver("GET", format!("{}/status", driver.base), None)
            .is_ok_and(|v| v["ready"] == true)
        {
            return Some(driver);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// Loads `url` at `width` CSS pixels (a phone's emulated, with its touch and pixel ratio, below
/// 500) and runs `script` there.
fn measure(
    driver: &Driver,
    browser: &str,
    url: &str,
    width: u32,
    script: &str,
) -> serde_json::Value {
    let profile = tempfile::tempdir().unwrap();
    let mut options = serde_json::json!({
        "binary": which(browser),
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={width},900"),
        ],
    });
    if width < 500 {
        options["mobileEmulation"] = serde_json::json!({
            "deviceMetrics": {"width": width, "height": 844, "pixelRatio": 3.0, "touch": true}
        });
    }
    let caps =
        serde_json::json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}});
    let session = webdriver("POST", format!("{}/session", driver.base), Some(caps)).unwrap();
    let id = session["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    let at = |p: &str| format!("{}/session/{id}{p}", driver.base);
    webdriver("POST", at("/url"), Some(serde_json::json!({"url": url}))).unwrap();
    let result = webdriver(
        "POST",
        at("/execute/sync"),
        Some(serde_json::json!({"script": script, "args": []})),
    )
    .unwrap();
    let _ = webdriver("DELETE", at(""), None);
    result
}

fn which(browser: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {browser}")])
        .output()
        .unwrap();
    stdout(&out).trim().to_string()
}

const MEASURE: &str = r#"
const doc = document.documentElement;
const row = id => { const r = document.getElementById('partner-' + id); return r ? r.innerText : ''; };
const cell = document.querySelector('#partners td');
return {
  scrollWidth: doc.scrollWidth, clientWidth: doc.clientWidth, innerWidth: window.innerWidth,
  cellDisplay: cell ? getComputedStyle(cell).display : '',
  broken: row('broken-partner'), patchy: row('patchy'), clock: document.getElementById('clock').innerText,
};
"#;

#[test]
fn status_page_fits_a_phone_and_a_desktop_with_next_runs_backoff_and_reasons() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is required in CI"
        );
        eprintln!("skipping: chromium is not installed");
        return;
    };
    let Some(driver) = chromedriver() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver is required in CI (Debian's chromium-driver)"
        );
        eprintln!("skipping: chromedriver is not installed");
        return;
    };
    let (env, down) = env_with_trouble();
    let daemon = env.start();
    let url = format!("{}/", daemon.base);
    for width in [390u32, 1280] {
        let m = measure(&driver, browser, &url, width, MEASURE);
        let n = |k: &str| m[k].as_i64().unwrap_or(-1);
        assert_eq!(n("innerWidth"), i64::from(width), "{m}");
        assert!(
            n("scrollWidth") <= n("clientWidth"),
            "{width} px: the page scrolls sideways ({} > {}): {m}",
            n("scrollWidth"),
            n("clientWidth")
        );
        // The phone gets one card per partner; the desktop keeps the table.
        let expected = if width < 500 { "block" } else { "table-cell" };
        assert_eq!(m["cellDisplay"], expected, "{width} px: {m}");
        let broken = m["broken"].as_str().unwrap();
        assert!(broken.contains("failed"), "{broken}");
        assert!(broken.contains(&format!("127.0.0.1:{down}")), "{broken}");
        assert!(
            broken.contains("(now)") || broken.contains("ago)"),
            "the last run's relative time: {broken}"
        );
        assert!(
            broken.contains("(in "),
            "the next run's relative time: {broken}"
        );
        assert!(
            broken.contains("Backing off 5 minutes after 1 failure: no retry before"),
            "{broken}"
        );
        assert!(broken.contains("At 09:30, Monday to Friday"), "{broken}");
        assert!(broken.contains("0 30 9 * * Mon-Fri"), "{broken}");
        assert!(
            broken.contains("GMT") || broken.contains("BST"),
            "local times in the configured zone: {broken}"
        );
        let patchy = m["patchy"].as_str().unwrap();
        assert!(patchy.contains("1 records rejected"), "{patchy}");
        assert!(patchy.contains("name"), "the reason is shown: {patchy}");
        assert!(patchy.contains("/admin/runs/"), "{patchy}");
        assert!(
            m["clock"].as_str().unwrap().contains("Europe/London"),
            "{m}"
        );
    }
    daemon.stop();
}
