//! Hostile and broken partners, all real servers on 127.0.0.1: each fails its own sync (or has its
//! bad records rejected) with a clear reason, while a good partner beside it syncs, the store stays
//! intact and the daemon keeps answering.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::*;

const GOOD_ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:g1\r\nDTSTART:20270105T100000Z\r\nSUMMARY:Good event\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn gzip_bomb() -> Vec<u8> {
    use flate2::write::GzEncoder;
    let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..20 {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

/// One server, many bad behaviours, one per path.
fn hostile_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let bomb = gzip_bomb();
    let other = format!("http://127.0.0.1:{}/elsewhere", free_port());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/500", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
                .route(
                    "/loop",
                    get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]) }),
                )
                .route(
                    "/away",
                    get(move || {
                        let other = other.clone();
                        async move { (StatusCode::FOUND, [(header::LOCATION, other)]) }
                    }),
                )
                .route("/large", get(|| async { GOOD_ICS.repeat(2000) }))
                .route(
                    "/bomb",
                    get(move || {
                        let bomb = bomb.clone();
                        async move { ([(header::CONTENT_ENCODING, "gzip")], bomb).into_response() }
                    }),
                )
                .route(
                    "/html",
                    get(|| async {
                        "<!DOCTYPE html><html><body><h1>Site under maintenance</h1></body></html>"
                    }),
                )
                .route(
                    "/bad-utf8",
                    get(|| async {
                        let mut b = GOOD_ICS.as_bytes().to_vec();
                        b.splice(60..60, [0xff, 0xfe, 0xc3]);
                        b
                    }),
                )
                .route(
                    "/deep",
                    get(|| async { "{\"events\": ".to_string() + &"[".repeat(100_000) + &"]".repeat(100_000) + "}" }),
                )
                .route(
                    "/rejects",
                    get(|| async {
                        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n\
                         BEGIN:VEVENT\r\nUID:d1\r\nDTSTART:20270105T100000Z\r\nSUMMARY:One\r\nEND:VEVENT\r\n\
                         BEGIN:VEVENT\r\nUID:d2\r\nSUMMARY:No start\r\nEND:VEVENT\r\n\
                         BEGIN:VEVENT\r\nUID:z1\r\nDTSTART;TZID=Atlantis/Capital:20270105T100000\r\nSUMMARY:Nowhere\r\nEND:VEVENT\r\n\
                         BEGIN:VEVENT\r\nUID:z2\r\nDTSTART;TZID=Europe/London:20270328T013000\r\nSUMMARY:Skipped hour\r\nEND:VEVENT\r\n\
                         END:VCALENDAR\r\n"
                    }),
                );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(listener, app).await;
        });
    });
    format!("http://{addr}")
}

/// A raw server that answers every connection with `respond`, for what HTTP libraries refuse to
/// send: a body dripped a byte a second, or one cut short of its Content-Length.
fn raw_server(respond: fn(std::net::TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = stream;
                let mut buf = [0u8; 2048];
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = s.read(&mut buf);
                respond(s);
            });
        }
    });
    format!("http://{addr}")
}

fn drip(mut s: std::net::TcpStream) {
    let _ = s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: 100000\r\n\r\n",
    );
    for _ in 0..30 {
        if s.write_all(b"B").is_err() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn truncated(mut s: std::net::TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: 5000\r\n\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn partner(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"{}\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 3\n{extra}\n\n",
        if url.ends_with("/deep") { "tributary-json" } else { "ical" }
    )
}

#[test]
fn each_hostile_partner_fails_alone_with_a_clear_reason() {
    let good = fake_partner(ics_feed(GOOD_ICS, None));
    let h = hostile_server();
    let drip_url = raw_server(drip);
    let cut_url = raw_server(truncated);
    let tls_url = format!("https://{}/x.ics", h.trim_start_matches("http://"));
    // (partner, url, extra config, what the error must say)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "refused",
            format!("http://127.0.0.1:{}/x.ics", free_port()),
            "",
            "cannot connect",
        ),
        (
            "dns",
            "http://no-such-host.invalid/x.ics".into(),
            "",
            "no-such-host.invalid",
        ),
        ("tls", tls_url, "", "cannot connect"),
        (
            "drip",
            format!("{drip_url}/x.ics"),
            "",
            "no answer within 3s",
        ),
        ("status500", format!("{h}/500"), "", "HTTP 500"),
        ("loop", format!("{h}/loop"), "", "redirect"),
        (
            "ssrf",
            format!("{h}/away"),
            "",
            "leaves the configured host",
        ),
        (
            "large",
            format!("{h}/large"),
            "max_body_bytes = 4096",
            "exceeds the 4096-byte limit",
        ),
        (
            "bomb",
            format!("{h}/bomb"),
            "max_body_bytes = 1048576",
            "exceeds the 1048576-byte limit",
        ),
        (
            "truncated",
            format!("{cut_url}/x.ics"),
            "",
            "reading the body failed",
        ),
        (
            "html",
            format!("{h}/html"),
            "",
            "does not start with BEGIN:VCALENDAR",
        ),
        ("deep", format!("{h}/deep"), "", "recursion limit"),
    ];
    let mut toml = partner("good", &good.url("/e.ics"), "");
    for (id, url, extra, _) in &cases {
        toml.push_str(&partner(id, url, extra));
    }
    toml.push_str(&partner("rejects", &format!("{h}/rejects"), ""));
    let env = TestEnv::new(&toml);

    let started = Instant::now();
    let out = env.cmd(&["sync"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        took < Duration::from_secs(60),
        "hostile partners held the sync for {took:?}"
    );
    let text = stdout(&out);
    let line = |id: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}:\n{text}"))
            .to_string()
    };
    assert!(line("good").contains(" ok "), "{text}");
    for (id, _, _, reason) in &cases {
        let l = line(id);
        assert!(l.contains("FAILED"), "{l}");
        assert!(l.contains(reason), "{id}: expected {reason:?} in {l}");
    }
    // Bad records are rejected with reasons; the good one in the same feed lands, and so does
    // the one in an unknown zone, kept with a warning.
    let r = line("rejects");
    assert!(
        r.contains(" ok ") && r.contains("2 rejected, 1 warned"),
        "{r}"
    );
    let conn = db(&env);
    let reasons: Vec<String> = conn
        .prepare("SELECT reason FROM rejections ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("no DTSTART")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("Atlantis/Capital")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("does not exist in Europe/London")),
        "{reasons:?}"
    );

    // Only the good partner's and the rejects partner's records are in the store (the unknown
    // zone lands with its warning, read in the calendar's default zone), and it is sound.
    let live: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM source_records WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(live, 3);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // `status` names the failures.
    let st = stdout(&env.cmd(&["status"]));
    assert!(
        st.contains("HTTP 500") && st.contains("leaves the configured host"),
        "{st}"
    );
}

#[test]
fn retry_after_is_honoured() {
    // First answer 429 with Retry-After: 1, then the calendar.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().flatten().enumerate() {
            let mut s = stream;
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let resp = if n == 0 {
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{GOOD_ICS}",
                    GOOD_ICS.len()
                )
            };
            let _ = s.write_all(resp.as_bytes());
        }
    });
    let env = TestEnv::new(
        &partner("slow", &format!("http://{addr}/x.ics"), "").replace("retries = 0", "retries = 2"),
    );
    let started = Instant::now();
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
}

#[test]
fn readers_and_resyncs_hammer_the_daemon_without_errors() {
    let feed = fake_partner(ics_feed(GOOD_ICS, None));
    let mut toml = String::new();
    for i in 0..4 {
        toml.push_str(&partner(
            &format!("p{i}"),
            &feed.url(&format!("/{i}.ics")),
            "",
        ));
    }
    let env = TestEnv::new(&toml);
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", "t")]);
    let base = daemon.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2000 {
                    for path in [
                        "/v1/events?from=2027-01-01",
                        "/calendar.ics?from=2027-01-01",
                        "/healthz",
                    ] {
                        let (status, _, body) = blocking_get(&format!("{base}{path}")).unwrap();
                        assert_eq!(status, 200, "{path}: {body}");
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    for _ in 0..10 {
        let (status, body) = post(
            &format!("{base}/admin/resync?full=true&wait=true"),
            Some("t"),
            "",
        );
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("locked"), "{body}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    let runs: i64 = db(&env)
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE result NOT IN ('ok', 'unchanged')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 0, "every run succeeded");
    assert_eq!(daemon.stop(), Some(0));
}
