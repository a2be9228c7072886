//! The admin console through the real binary and two partner sites on 127.0.0.1: a browser
//! (headless Chromium via chromedriver and Selenium) signs in, settles the queued pair, resyncs a
//! partner and watches it finish, splits a record off the merged entity; plain HTTP requests show
//! the session and CSRF rules refusing.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::console::{send, sign_in};
use common::*;

const TOKEN: &str = "console-token-3141";

const ALPHA: &str = r#"{"organisations": [
  {"id": "a1", "name": "Hull Community Shop", "address": {"postcode": "HU1 1AA"}},
  {"id": "a2", "name": "Selby Arts Collective", "identifiers": {"charity_number": "2222222"}},
  {"id": "a9"}
]}"#;
const BETA: &str = r#"{"organisations": [
  {"id": "b1", "name": "Hull Community Shop", "address": {"postcode": "HU9 9ZZ"}}
]}"#;

const NEW_SOURCE: &str = r#"{"organisations": [
  {"id": "n1", "name": "Selby Arts Collective", "identifiers": {"charity_number": "2222222"}},
  {"id": "n2", "name": "Goole Men's Shed"}
]}"#;

fn partner(id: &str, site: &FakeSite) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n",
        site.url("/orgs.json"),
    )
}

fn open_review(base: &str) -> Vec<serde_json::Value> {
    let auth = format!("Bearer {TOKEN}");
    let (status, _, body) =
        get_with(&format!("{base}/admin/review"), &[("authorization", &auth)]).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["items"].as_array().unwrap().clone()
}

/// The first of `names` found on `$PATH`, as a full path (Selenium wants paths, not names).
fn find_on_path(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

/// Whether the browser test can run here; in CI its absence is a failure.
fn browser() -> Option<(String, String)> {
    let driver = find_on_path(&["chromedriver"]);
    let chromium = find_on_path(&["chromium", "chromium-browser", "google-chrome"]);
    let selenium = Command::new(python())
        .args(["-c", "import selenium"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    match (driver.clone(), chromium.clone(), selenium) {
        (Some(d), Some(c), true) => Some((d, c)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the admin console test needs chromium, chromedriver (Debian chromium-driver) and \
                 selenium in $TRIBUTARY_PYTHON (tests/requirements.txt); .ci/run installs them"
            );
            eprintln!(
                "SKIPPING the admin console browser test: chromedriver {driver:?}, chromium \
                 {chromium:?}, selenium in {}: {selenium}",
                python()
            );
            None
        }
    }
}

#[test]
fn admin_console_in_a_browser_and_its_refusals() {
    let (a, b) = (fake_site(), fake_site());
    a.put("/orgs.json", "application/json", ALPHA);
    b.put("/orgs.json", "application/json", BETA);
    // A source nobody syncs, for the browser to preview.
    a.put("/new.json", "application/json", NEW_SOURCE);
    let env = TestEnv::new(&format!("{}{}", partner("alpha", &a), partner("beta", &b)));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_review(&base).is_empty() {
        assert!(Instant::now() < deadline, "no pair was queued for review");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pair = open_review(&base)[0]["id"].as_i64().unwrap();

    // Session rules, over plain HTTP. A page without a session sends the browser to sign in; a
    // form without one is refused and changes nothing.
    let (status, h, _) = send(
        "GET",
        &format!("{base}/admin/console/review"),
        None,
        "",
        &[],
    );
    assert_eq!(status, 303);
    assert!(h["location"]
        .to_str()
        .unwrap()
        .starts_with("/admin/console/sign-in?next="));
    let decide = format!("{base}/admin/console/review/{pair}");
    let (status, _, _) = send("POST", &decide, None, "csrf=x&decision=same", &[]);
    assert_eq!(status, 401, "a decision without a session");
    let (status, _, _) = send("POST", &decide, Some("forged"), "csrf=x&decision=same", &[]);
    assert_eq!(status, 401, "a decision with a made-up session");

    let (session, set_cookie, csrf) = sign_in(&base, TOKEN, &[]);
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=28800",
        "Path=/admin/console",
    ] {
        assert!(set_cookie.contains(attr), "{attr} in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let (_, https_cookie, _) = sign_in(&base, TOKEN, &[("x-forwarded-proto", "https")]);
    assert!(https_cookie.contains("; Secure"), "{https_cookie}");

    // CSRF: a valid session with a missing or wrong token is refused.
    let (status, _, _) = send("POST", &decide, Some(&session), "decision=same", &[]);
    assert!(status == 400 || status == 422, "no csrf field: {status}");
    let (status, _, body) = send(
        "POST",
        &decide,
        Some(&session),
        "csrf=0000&decision=same",
        &[],
    );
    assert_eq!(status, 403, "{body}");
    let resync = format!("{base}/admin/console/partners/alpha/resync");
    let (status, _, _) = send("POST", &resync, Some(&session), "csrf=bad&mode=now", &[]);
    assert_eq!(status, 403);
    let split = format!("{base}/admin/console/entities/org_x/split");
    let (status, _, _) = send(
        "POST",
        &split,
        Some(&session),
        "csrf=bad&partner=beta&record=b1",
        &[],
    );
    assert_eq!(status, 403, "a split with a wrong CSRF token");
    assert_eq!(open_review(&base).len(), 1, "nothing refused was applied");

    // The session cookie is no bearer token, and the bearer API keeps working.
    let (status, _, _) = send(
        "GET",
        &format!("{base}/admin/partners"),
        Some(&session),
        "",
        &[],
    );
    assert_eq!(status, 401);

    // Signing out ends the session: its cookie and CSRF token no longer work.
    let out = format!("{base}/admin/console/sign-out");
    let (status, h, _) = send("POST", &out, Some(&session), &format!("csrf={csrf}"), &[]);
    assert_eq!(status, 303);
    assert!(h["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (status, _, _) = send(
        "POST",
        &decide,
        Some(&session),
        &format!("csrf={csrf}&decision=same"),
        &[],
    );
    assert_eq!(status, 401, "a signed-out session");
    assert_eq!(open_review(&base).len(), 1);

    if let Some((driver, chromium)) = browser() {
        let shots = std::env::var("ADMIN_CONSOLE_SCREENSHOTS").ok();
        let tmp = tempfile::tempdir().unwrap();
        let dir = shots
            .clone()
            .unwrap_or_else(|| tmp.path().display().to_string());
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/admin_console_browser.py"
        );
        let out = Command::new(python())
            .args([
                script,
                &base,
                TOKEN,
                &driver,
                &chromium,
                &dir,
                "alpha",
                &a.url("/new.json"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "browser run failed:\n{}\n{}\ndaemon log:\n{}",
            stdout(&out),
            stderr(&out),
            daemon.log()
        );
        // What the browser did is in the store.
        // The browser saw the pair settled (no open pairs, one entity of both records); the split
        // undid that admin decision, so the engine's uncertain pair is open again.
        assert_eq!(open_review(&base).len(), 1, "the split reopened the pair");
        let orgs = json(&format!("{base}/v1/organisations?limit=50"));
        let shop: Vec<&serde_json::Value> = orgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["name"] == "Hull Community Shop")
            .collect();
        // Settled as the same (the browser saw both records in one entity), then split apart.
        assert_eq!(shop.len(), 2, "split again: two organisations");
        for o in &shop {
            assert_eq!(o["partners"].as_array().unwrap().len(), 1, "{o}");
        }
        let conn = db(&env);
        let admin_ok: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM runs WHERE partner_id = 'alpha' AND trigger = 'admin' AND result IN ('ok', 'unchanged')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(admin_ok >= 1, "the browser's resync finished");
        for page in [
            "sign-in", "review", "partners", "partner", "run", "entity", "split", "preview",
        ] {
            for width in ["desktop", "phone"] {
                let p = std::path::Path::new(&dir).join(format!("{page}-{width}.png"));
                assert!(p.exists(), "{} was taken", p.display());
            }
        }
    }

    // Merge-with from the entity page, as a browser without JavaScript sends it: the two shops
    // (apart again after the browser's split, or never joined without a browser) become one.
    let shops = |base: &str| -> Vec<String> {
        json(&format!("{base}/v1/organisations?limit=50"))["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["name"] == "Hull Community Shop")
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let ids = shops(&base);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let (session, _, csrf) = sign_in(&base, TOKEN, &[]);
    let entity = format!("{base}/admin/console/entities/{}", ids[0]);
    let (status, _, confirm) = send(
        "GET",
        &format!("{entity}/merge?with={}", ids[1]),
        Some(&session),
        "",
        &[],
    );
    assert_eq!(status, 200, "{confirm}");
    assert!(confirm.contains("confirm-merge") && confirm.contains(&ids[1]));
    let merge = format!("{entity}/merge");
    let form = format!("with={}", ids[1]);
    let (status, _, _) = send(
        "POST",
        &merge,
        Some(&session),
        &format!("csrf=bad&{form}"),
        &[],
    );
    assert_eq!(status, 403, "a merge with a wrong CSRF token");
    assert_eq!(shops(&base).len(), 2, "the refused merge changed nothing");
    let (status, h, body) = send(
        "POST",
        &merge,
        Some(&session),
        &format!("csrf={csrf}&{form}"),
        &[],
    );
    assert_eq!(status, 303, "{body}");
    let to = h["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/admin/console/entities/org_"), "{to}");
    let after = shops(&base);
    assert_eq!(after.len(), 1, "merged: {after:?}");
    assert!(to.contains(&after[0]), "{to} is the survivor {}", after[0]);
    let (status, _, page) = send("GET", &format!("{base}{to}"), Some(&session), "", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("Merged; both now answer as"), "{page}");
    assert_eq!(page.matches("Split off…").count(), 2, "both records listed");

    // Failed sign-ins: refused, then rate limited for this client (last: it locks the address out).
    let sign = format!("{base}/admin/console/sign-in");
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(send("POST", &sign, None, "token=wrong", &[]).0);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");
    let (status, _, _) = send("POST", &sign, None, &format!("token={TOKEN}"), &[]);
    assert_eq!(status, 429, "even the right token waits out the limit");
    let log = daemon.log();
    assert!(
        log.contains("admin console sign-in refused: wrong token") && log.contains("127.0.0.1"),
        "failed sign-ins are logged with the client address:\n{log}"
    );
    daemon.stop();
}

/// `admin.session_hours` sets the cookie's lifetime; outside 1–168 hours check-config says so.
#[test]
fn session_lifetime_is_configured() {
    let site = fake_site();
    site.put("/orgs.json", "application/json", BETA);
    let env = TestEnv::new(&format!(
        "[admin]\nsession_hours = 2\n\n{}",
        partner("beta", &site)
    ));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let (_, cookie, _) = sign_in(&daemon.base, TOKEN, &[]);
    assert!(cookie.contains("Max-Age=7200"), "{cookie}");
    daemon.stop();

    let config = env.dir.path().join("tributary.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("session_hours = 2", "session_hours = 0"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env("TRIBUTARY_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("admin.session_hours"), "{said}");
}

/// Resyncs `partner` through the bearer API and waits: the run's result.
fn resync_waiting(base: &str, partner: &str) -> String {
    let (status, body) = post(
        &format!("{base}/admin/resync?partner={partner}&wait=true"),
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["runs"][0]["result"].as_str().unwrap().to_string()
}

fn organisations_listed(base: &str) -> usize {
    let (status, _, body) = get_with(&format!("{base}/v1/organisations?limit=100"), &[]).unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["items"].as_array().unwrap().len()
}

#[test]
fn held_syncs_are_kept_or_applied_from_the_partner_page() {
    let site = fake_site();
    let many: Vec<String> = (0..8)
        .map(|i| format!(r#"{{"id": "g{i}", "name": "Goole Group {i}", "address": {{"postcode": "DN14 {i}AA"}}}}"#))
        .collect();
    site.put(
        "/orgs.json",
        "application/json",
        format!(r#"{{"organisations": [{}]}}"#, many.join(",")),
    );
    let env = TestEnv::new(&partner("gamma", &site));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    assert_eq!(resync_waiting(&base, "gamma"), "ok");
    assert_eq!(organisations_listed(&base), 8);

    // The feed loses six of its eight: the guard holds the sync and the page offers both ways.
    let two = format!(r#"{{"organisations": [{}]}}"#, many[..2].join(","));
    site.put("/orgs.json", "application/json", two);
    assert_eq!(resync_waiting(&base, "gamma"), "held");
    let (session, _, csrf) = sign_in(&base, TOKEN, &[]);
    let page_url = format!("{base}/admin/console/partners/gamma");
    let (_, _, page) = send("GET", &page_url, Some(&session), "", &[]);
    assert!(page.contains("Held by the mass-deletion guard"), "{page}");
    assert!(page.contains("id=\"keep-held\""), "{page}");
    assert!(page.contains("id=\"apply-held\""), "{page}");

    // Keep: refused without the CSRF token; with it the hold is settled, nothing is deleted.
    let keep = format!("{base}/admin/console/partners/gamma/keep");
    let (status, _, _) = send("POST", &keep, Some(&session), "csrf=bad", &[]);
    assert_eq!(status, 403);
    let (status, _, _) = send("POST", &keep, None, &format!("csrf={csrf}"), &[]);
    assert_eq!(status, 401, "no session");
    let (status, h, body) = send("POST", &keep, Some(&session), &format!("csrf={csrf}"), &[]);
    assert_eq!(status, 303, "{body}");
    assert_eq!(h["location"], "/admin/console/partners/gamma");
    let (_, _, page) = send("GET", &page_url, Some(&session), "", &[]);
    assert!(!page.contains("Held by the mass-deletion guard"), "{page}");
    assert!(
        page.contains("class=\"kept\""),
        "the run reads kept: {page}"
    );
    assert_eq!(organisations_listed(&base), 8, "keeping deletes nothing");

    // The next sync is checked again, and Apply lets the deletions through.
    assert_eq!(resync_waiting(&base, "gamma"), "held");
    let resync = format!("{base}/admin/console/partners/gamma/resync");
    let (status, _, _) = send(
        "POST",
        &resync,
        Some(&session),
        &format!("csrf={csrf}&mode=force"),
        &[],
    );
    assert_eq!(status, 303);
    let deadline = Instant::now() + Duration::from_secs(30);
    while organisations_listed(&base) != 2 {
        assert!(
            Instant::now() < deadline,
            "the applied sync never deleted the six"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.stop();
}
