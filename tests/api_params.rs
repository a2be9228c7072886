//! Public API parameter checks through the real daemon: `postcode_area` (an outward code, a full
//! postcode reduced to it, anything else a 400 naming it), `from` beyond the default window blamed
//! on `from`, a 405 answered with the JSON error body, and the admin bearer scheme read without
//! regard to case (refusals logged with the client address).

mod common;

use std::time::{Duration, Instant};

use common::*;

const EVENTS: &str = r#"{"events": [{"id": "e1", "title": "Funding workshop", "start": "2027-02-10T10:00:00+00:00",
  "timezone": "Europe/London", "location": {"name": "Crewe Library", "postcode": "CW1 2DD"}}]}"#;

fn titles(base: &str, query: &str) -> (u16, serde_json::Value) {
    let (status, _, body) =
        blocking_get(&format!("{base}/v1/events?from=2022-01-01&{query}")).unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn parameters_are_checked_and_named() {
    let feed = fake_partner(json_feed(EVENTS));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"cvs\"\nname = \"CVS\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n",
        feed.url("/e.json")
    ));
    let daemon = env.start();
    let base = env.base();
    let deadline = Instant::now() + Duration::from_secs(30);
    while titles(&base, "").1["items"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "startup sync did not land: {}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    for area in ["CW", "cw", "CW1", "cw1", "CW1 2DD", "cw12dd"] {
        let (status, v) = titles(
            &base,
            &format!("postcode_area={}", area.replace(' ', "%20")),
        );
        assert_eq!(status, 200, "{area}: {v}");
        assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{area}: {v}");
    }
    for other in ["SK11", "SK", "CW2"] {
        let (status, v) = titles(&base, &format!("postcode_area={other}"));
        let found = v["items"].as_array().map(Vec::len);
        assert_eq!((status, found), (200, Some(0)), "{other}: {v}");
    }
    for bad in ["12", "CWX", "1CW", "not-a-postcode", "CW1%202"] {
        for path in ["/v1/events", "/v1/organisations", "/calendar.ics"] {
            let (status, _, body) =
                blocking_get(&format!("{base}{path}?postcode_area={bad}")).unwrap();
            assert_eq!(status, 400, "{path} {bad}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("postcode_area:"),
                "{path} {bad}: {v}"
            );
        }
    }

    // `from` alone past the default end of the window: `from` is at fault, not `to`.
    let (status, _, body) = blocking_get(&format!("{base}/v1/events?from=9999-12-31")).unwrap();
    assert_eq!(status, 400, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("from:"),
        "{v}"
    );
    let (status, _, body) =
        blocking_get(&format!("{base}/v1/events?from=2027-01-02&to=2027-01-01")).unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("\"to: must be later than from\""), "{body}");

    // A method a route does not serve: 405, Allow, and the JSON error body.
    let (status, body) = post(&format!("{base}/v1/events"), None, "{}");
    assert_eq!(status, 405, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    drop(daemon);
}

#[test]
fn bearer_scheme_is_case_insensitive_and_refusals_name_the_client() {
    const TOKEN: &str = "params-test-token";
    let feed = fake_partner(json_feed(EVENTS));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"cvs\"\nname = \"CVS\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"{}\"\nretries = 0\n",
        feed.url("/e.json")
    ));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let url = format!("{}/admin/partners", env.base());
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {TOKEN}");
        let (status, _, body) = get_with(&url, &[("authorization", &auth)]).unwrap();
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    for wrong in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        "Bearer ".to_string(),
        "Bearer not-the-token".to_string(),
    ] {
        let (status, _, _) = get_with(&url, &[("authorization", &wrong)]).unwrap();
        assert_eq!(status, 401, "{wrong:?}");
    }
    // The refusal is logged with the address the attempt came from.
    daemon.wait_for_log("client=127.0.0.1:", Duration::from_secs(10));
    assert!(
        daemon.log().contains("admin request refused"),
        "{}",
        daemon.log()
    );
}
