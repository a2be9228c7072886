//! Previewing a new source from the admin console, through the real binary and partner sites on
//! 127.0.0.1: what would land, merge and be rejected is shown; the store is left exactly as it
//! was (every table, row for row); bad forms are refused naming the field.

mod common;

use std::time::{Duration, Instant};

use common::console::{send, sign_in};
use common::*;

const TOKEN: &str = "preview-token-2718";

const ALPHA: &str = r#"{"organisations": [
  {"id": "a1", "name": "Hull Community Shop", "address": {"postcode": "HU1 1AA"}},
  {"id": "a2", "name": "Selby Arts Collective", "identifiers": {"charity_number": "2222222"}}
]}"#;

/// A new partner's directory: one charity alpha lists, one nobody does, one record with no name.
const NEW: &str = r#"{"organisations": [
  {"id": "n1", "name": "Selby Arts Collective CIO", "identifiers": {"charity_number": "2222222"}},
  {"id": "n2", "name": "Goole Men's Shed", "address": {"postcode": "DN14 5AA"}},
  {"id": "n3"}
]}"#;

/// Every row of every table, in order: two equal dumps are the same store content.
fn dump(env: &TestEnv) -> String {
    let conn = db(env);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = String::new();
    for t in tables {
        let mut st = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let rows: Vec<String> = st
            .query_map([], |r| {
                let mut line = String::new();
                for i in 0..n {
                    line.push_str(&format!("{:?}|", r.get_ref(i)?));
                }
                Ok(line)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.push_str(&format!(
            "## {t} ({} rows)\n{}\n",
            rows.len(),
            rows.join("\n")
        ));
    }
    out
}

fn names(base: &str) -> Vec<String> {
    json(&format!("{base}/v1/organisations?limit=100"))["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}

/// Waits for alpha's start-up sync to have published its two organisations.
fn wait_synced(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while names(base).len() != 2 {
        assert!(Instant::now() < deadline, "alpha never synced");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn form(csrf: &str, url: &str, kind: &str, format: &str) -> String {
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!("csrf={csrf}&url={}&kind={kind}&format={format}", enc(url))
}

#[test]
fn a_preview_shows_what_would_land_merge_and_be_rejected_and_keeps_nothing() {
    let (a, new) = (fake_site(), fake_site());
    a.put("/orgs.json", "application/json", ALPHA);
    new.put("/directory.json", "application/json", NEW);
    new.put_fixture(
        "/openactive/session-series",
        "application/json",
        "rpde/sessions-1.json",
    );
    new.put_fixture(
        "/openactive/session-series?afterTimestamp=1732700000&afterId=ss-chair-yoga",
        "application/json",
        "rpde/sessions-2.json",
    );
    new.put_fixture(
        "/openactive/session-series?afterTimestamp=1732710000&afterId=ss-broken",
        "application/json",
        "rpde/sessions-3.json",
    );
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"alpha\"\nname = \"Hull CVS\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n",
        a.url("/orgs.json")
    ));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    wait_synced(&base);
    let selby = json(&format!("{base}/v1/organisations?q=Selby"))["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = dump(&env);
    let (session, _, csrf) = sign_in(&base, TOKEN, &[]);
    let preview = format!("{base}/admin/console/preview");

    // The form, linked from every page.
    let (status, _, page) = send("GET", &preview, Some(&session), "", &[]);
    assert_eq!(status, 200);
    assert!(page.contains("id=\"preview-form\"") && page.contains("Preview a source"));

    // A signed-in preview of `url` as `kind` in `format`: (status, page).
    let run = |url: &str, kind: &str, format: &str| {
        let (status, _, page) = send(
            "POST",
            &preview,
            Some(&session),
            &form(&csrf, url, kind, format),
            &[],
        );
        (status, page)
    };
    let (status, page) = run(
        &new.url("/directory.json"),
        "organisations",
        "tributary-json",
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("1 page read")
            && page.contains("2 would land")
            && page.contains("1 would merge with published records")
            && page.contains("1 would be rejected"),
        "{page}"
    );
    let merges = page
        .split("id=\"preview-merges\"")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("a table of merges");
    assert!(
        merges.contains("n1")
            && merges.contains("alpha")
            && merges.contains("a2")
            && merges.contains(&format!("/admin/console/entities/{selby}")),
        "n1 would join the published Selby entity {selby}: {merges}"
    );
    assert!(!merges.contains("n2"), "{merges}");
    let rejected = page
        .split("id=\"preview-rejections\"")
        .nth(1)
        .expect("a table of rejections");
    assert!(
        rejected.contains("n3") && rejected.contains("name"),
        "{rejected}"
    );

    // A paged OpenActive feed: every page read, its sessions' series found, none kept.
    let (status, page) = run(&new.url("/openactive/session-series"), "events", "rpde");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("3 pages read"), "{page}");
    assert!(
        page.contains("would land") && page.contains("Walking Football"),
        "{page}"
    );

    // A source that cannot be read fails as the partner's sync would, with the reason.
    let (status, page) = run(&new.url("/gone.json"), "organisations", "tributary-json");
    assert_eq!(status, 200);
    let error = page
        .split("id=\"preview-error\"")
        .nth(1)
        .expect("the reason shown");
    assert!(error.contains("404"), "{error}");

    // Nothing of it was kept: every table as it was, the directory as it was.
    assert_eq!(dump(&env), before, "a preview writes nothing");
    assert_eq!(names(&base).len(), 2);
    assert!(!names(&base).iter().any(|n| n.contains("Goole")));
    daemon.stop();
}

#[test]
fn a_bad_preview_form_is_refused_naming_the_field() {
    let a = fake_site();
    a.put("/orgs.json", "application/json", ALPHA);
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"alpha\"\nname = \"Hull CVS\"\n\n\
         [[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n\n",
        a.url("/orgs.json")
    ));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let base = daemon.base.clone();
    wait_synced(&base);
    let preview = format!("{base}/admin/console/preview");
    let hits_before = a.hits().len();

    // No session, or a wrong CSRF token: refused before anything is fetched.
    let body = form("x", &a.url("/orgs.json"), "organisations", "tributary-json");
    assert_eq!(send("POST", &preview, None, &body, &[]).0, 401);
    let (session, _, csrf) = sign_in(&base, TOKEN, &[]);
    assert_eq!(send("POST", &preview, Some(&session), &body, &[]).0, 403);

    for (url, kind, format, field, says) in [
        ("/etc/passwd", "organisations", "csv", "url", "http(s)"),
        (
            "file:///etc/passwd",
            "organisations",
            "csv",
            "url",
            "http(s)",
        ),
        ("", "organisations", "csv", "url", "http(s)"),
        (
            "http://127.0.0.1:1/x",
            "organisations",
            "nope",
            "format",
            "not a known format",
        ),
        (
            "http://127.0.0.1:1/x",
            "things",
            "csv",
            "kind",
            "organisations",
        ),
        (
            "http://127.0.0.1:1/x",
            "organisations",
            "ical",
            "format",
            "events",
        ),
    ] {
        let (status, _, page) = send(
            "POST",
            &preview,
            Some(&session),
            &form(&csrf, url, kind, format),
            &[],
        );
        assert_eq!(status, 400, "{url} {kind} {format}: {page}");
        let problems = page
            .split("id=\"preview-problems\"")
            .nth(1)
            .and_then(|s| s.split("</div>").next())
            .unwrap_or_else(|| panic!("problems listed: {page}"));
        assert!(
            problems.contains(&format!("<code>{field}</code>")) && problems.contains(says),
            "{url} {kind} {format}: {problems}"
        );
        // The form keeps what was typed.
        assert!(page.contains("id=\"preview-form\""));
    }
    assert_eq!(
        a.hits().len(),
        hits_before,
        "no refused preview fetched anything"
    );
    daemon.stop();
}
