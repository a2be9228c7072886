//! Webhooks as a subscriber meets them: a real receiver on 127.0.0.1 checks every signature,
//! applies deliveries in order, and must end holding exactly what the RPDE change feed holds —
//! through a receiver that fails and recovers, a daemon restart, and a dead-lettered subscriber an
//! admin takes back. Private targets are refused unless the config allows them.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post as route_post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use common::*;

const TOKEN: &str = "webhooks-test-admin-token";
const SECRET: &str = "a-long-shared-webhook-secret";

/// What a receiver saw and holds.
#[derive(Default)]
struct Seen {
    /// Entity id → its data, applied in change order.
    mirror: BTreeMap<String, serde_json::Value>,
    last: i64,
    delivered: usize,
    duplicates: usize,
    out_of_order: Vec<(i64, i64)>,
    bad_signatures: usize,
    refused: usize,
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    /// Answer 500 to this many more deliveries.
    fail_next: Arc<AtomicUsize>,
    secret: &'static str,
    url: String,
}

impl Receiver {
    fn mirror(&self) -> BTreeMap<String, serde_json::Value> {
        self.seen.lock().unwrap().mirror.clone()
    }
}

fn verified(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    // The documented scheme: `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`.
    let Some(sig) = headers
        .get("tributary-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in sig.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = Some(x.to_string()),
            Some(("v1", x)) => v1 = Some(x.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let fresh = t
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    fresh && want == v1
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut seen = r.seen.lock().unwrap();
    if !verified(r.secret, &headers, &body) {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if r.fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        seen.refused += 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let n = v["change_number"].as_i64().unwrap();
    let item = &v["item"];
    assert_eq!(item["modified"].as_i64(), Some(n));
    seen.delivered += 1;
    if n <= seen.last {
        // At least once: a repeat of the last change is expected after a restart; anything
        // older is out of order.
        if n == seen.last {
            seen.duplicates += 1;
        } else {
            let last = seen.last;
            seen.out_of_order.push((last, n));
        }
        return StatusCode::OK;
    }
    seen.last = n;
    let id = item["id"].as_str().unwrap().to_string();
    match item["state"].as_str() {
        Some("updated") => {
            seen.mirror.insert(id, item["data"].clone());
        }
        _ => {
            seen.mirror.remove(&id);
        }
    }
    StatusCode::OK
}

fn receiver(secret: &'static str) -> Receiver {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let r = Receiver {
        seen: Arc::default(),
        fail_next: Arc::default(),
        secret,
        url: format!("http://{addr}/hook"),
    };
    let state = r.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let app = Router::new()
                .route("/hook", route_post(receive))
                .with_state(state);
            let _ = axum::serve(listener, app).await;
        });
    });
    r
}

fn orgs(items: &[(&str, &str)]) -> String {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|(id, name)| serde_json::json!({"id": id, "name": name, "address": {"postcode": "HU1 1AA"}}))
        .collect();
    serde_json::json!({ "organisations": items }).to_string()
}

/// The merged organisations as a follower of the RPDE feed from 0 holds them.
fn feed(base: &str) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let mut url = format!("{base}/v1/feeds/organisations?afterChangeNumber=0");
    loop {
        let page = json(&url);
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return out;
        }
        for item in items {
            let id = item["id"].as_str().unwrap().to_string();
            if item["state"] == "updated" {
                out.insert(id, item["data"].clone());
            } else {
                out.remove(&id);
            }
        }
        url = page["next"].as_str().unwrap().to_string();
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn resync(base: &str) {
    let (status, body) = post(
        &format!("{base}/admin/resync?partner=hull&wait=true"),
        Some(TOKEN),
        "",
    );
    assert_eq!(status, 200, "{body}");
}

fn admin_subscribers(base: &str) -> Vec<serde_json::Value> {
    let (status, _, body) = get_with(
        &format!("{base}/admin/webhooks"),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["subscribers"].as_array().unwrap().clone()
}

fn config(partner_url: &str, hooks: &str, allow_private: bool) -> String {
    format!(
        "[[partners]]\nid = \"hull\"\nname = \"Hull partner\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{partner_url}\"\nretries = 0\n\n\
         [webhooks]\nallow_private_targets = {allow_private}\nmax_attempts = 4\nretry_initial_ms = 50\nretry_max_secs = 1\npoll_interval_ms = 100\n\n{hooks}"
    )
}

fn subscriber(id: &str, url: &str) -> String {
    format!(
        "[[webhooks.subscribers]]\nid = \"{id}\"\nurl = \"{url}\"\nsecret_env = \"HOOK_SECRET\"\nkinds = [\"organisations\"]\nfrom = \"beginning\"\n\n"
    )
}

#[test]
fn deliveries_end_with_exactly_the_change_feed_across_failures_and_a_restart() {
    let partner = fake_partner(json_feed(&orgs(&[
        ("o1", "Hull Food Bank"),
        ("o2", "Goodwin Development Trust"),
        ("o3", "Hull Community Church"),
    ])));
    let a = receiver(SECRET);
    let b = receiver(SECRET);
    // b fails every delivery until the test lets it through.
    b.fail_next.store(usize::MAX, Ordering::SeqCst);
    let env = TestEnv::new(&config(
        &partner.url("/orgs.json"),
        &format!("{}{}", subscriber("a", &a.url), subscriber("b", &b.url)),
        true,
    ));
    let daemon_env = [("TRIBUTARY_ADMIN_TOKEN", TOKEN), ("HOOK_SECRET", SECRET)];
    let daemon = env.start_with(&daemon_env);
    let base = daemon.base.clone();
    resync(&base);
    wait_until("a mirrors the first sync", || a.mirror() == feed(&base));
    assert_eq!(a.mirror().len(), 3);

    // a fails twice, then recovers; the changes made meanwhile all arrive, in order.
    a.fail_next.store(2, Ordering::SeqCst);
    partner.set(|f| {
        f.body = orgs(&[
            ("o1", "Hull Food Bank (Central)"),
            ("o3", "Hull Community Church"),
            ("o4", "Humber Youth Club"),
        ])
        .into_bytes()
    });
    resync(&base);
    wait_until("a mirrors the second sync", || a.mirror() == feed(&base));
    assert_eq!(a.seen.lock().unwrap().refused, 2);

    // b has failed max_attempts times in a row: dead-lettered, shown to admins and in metrics.
    wait_until("b is dead-lettered", || {
        admin_subscribers(&base)
            .iter()
            .any(|s| s["id"] == "b" && !s["dead_letter_at"].is_null())
    });
    let subs = admin_subscribers(&base);
    let sb = subs.iter().find(|s| s["id"] == "b").unwrap();
    assert_eq!(sb["failures"], 4, "{sb}");
    assert_eq!(sb["acknowledged"], 0, "{sb}");
    assert!(sb["behind"].as_i64().unwrap() > 0, "{sb}");
    assert!(sb["last_error"].as_str().unwrap().contains("500"), "{sb}");
    let refused_before = b.seen.lock().unwrap().refused;
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        b.seen.lock().unwrap().refused,
        refused_before,
        "a dead-lettered subscriber gets no more attempts"
    );
    let (_, _, metrics) = blocking_get(&format!("{base}/metrics")).unwrap();
    assert!(
        metrics.contains("tributary_webhook_dead_letter{subscriber=\"b\"} 1"),
        "{metrics}"
    );
    assert!(metrics
        .contains("tributary_webhook_deliveries_total{subscriber=\"b\",result=\"failed\"} 4"));

    // Across a restart nothing is lost: changes made while the daemon was down arrive after.
    daemon.stop();
    partner.set(|f| {
        f.body = orgs(&[
            ("o1", "Hull Food Bank (Central)"),
            ("o3", "Hull Community Church Centre"),
            ("o4", "Humber Youth Club"),
            ("o5", "East Riding Carers"),
        ])
        .into_bytes()
    });
    let daemon = env.start_with(&daemon_env);
    let base = daemon.base.clone();
    resync(&base);
    wait_until("a mirrors the sync after the restart", || {
        a.mirror() == feed(&base)
    });
    assert_eq!(a.mirror().len(), 4);

    // An admin takes b back: it catches up from the change it last acknowledged.
    b.fail_next.store(0, Ordering::SeqCst);
    let (status, body) = post(&format!("{base}/admin/webhooks/b/retry"), Some(TOKEN), "");
    assert_eq!(status, 200, "{body}");
    wait_until("b catches up", || b.mirror() == feed(&base));

    for (name, r) in [("a", &a), ("b", &b)] {
        let seen = r.seen.lock().unwrap();
        assert_eq!(seen.bad_signatures, 0, "{name}: every delivery is signed");
        assert!(
            seen.out_of_order.is_empty(),
            "{name}: out of order {:?}",
            seen.out_of_order
        );
    }
    let subs = admin_subscribers(&base);
    for s in &subs {
        assert_eq!(s["behind"], 0, "{s}");
        assert!(s["dead_letter_at"].is_null(), "{s}");
    }
    daemon.stop();
}

#[test]
fn private_targets_are_refused_unless_the_config_allows_them() {
    let partner = fake_partner(json_feed(&orgs(&[("o1", "Hull Food Bank")])));
    let r = receiver(SECRET);
    // A name that resolves to loopback is refused when connecting, not only a literal address.
    let named = r.url.replace("127.0.0.1", "localhost");
    let env = TestEnv::new(&config(
        &partner.url("/orgs.json"),
        &subscriber("inward", &named),
        false,
    ));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN), ("HOOK_SECRET", SECRET)]);
    let base = daemon.base.clone();
    resync(&base);
    wait_until("the delivery is refused", || {
        admin_subscribers(&base).iter().any(|s| {
            s["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("not a public address"))
        })
    });
    assert_eq!(
        r.seen.lock().unwrap().delivered,
        0,
        "nothing reached the receiver"
    );

    // Registering a private literal through the admin API is a 400 naming the url.
    let (status, body) = post(
        &format!("{base}/admin/webhooks"),
        Some(TOKEN),
        &serde_json::json!({"id": "sneaky", "url": r.url, "secret": SECRET}).to_string(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("url") && body.contains("allow_private_targets"),
        "{body}"
    );
    // A short secret is refused, naming it.
    let (status, body) = post(
        &format!("{base}/admin/webhooks"),
        Some(TOKEN),
        r#"{"id": "public", "url": "https://hooks.example.org/x", "secret": "short"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("secret"), "{body}");
    daemon.stop();
}
