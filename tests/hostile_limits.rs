//! Limits no partner or client may push past, through the real binary and real servers on
//! 127.0.0.1: a harvest's bytes, the deletion guard (tombstones, cut feeds, a ratchet of small
//! cuts), unread records kept, redirects and symlinks that leave the partner, formulas in CSV
//! exports, secrets on public pages, slow clients, and stopping while a partner dawdles.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "limits-test-token";

fn rpde_item(id: &str, deleted: bool) -> String {
    if deleted {
        format!(r#"{{"state":"deleted","kind":"Event","id":"{id}","modified":2}}"#)
    } else {
        format!(
            r#"{{"state":"updated","kind":"Event","id":"{id}","modified":1,"data":{{"@type":"Event","name":"Session {id}","startDate":"2027-02-02T10:00:00Z"}}}}"#
        )
    }
}

fn rpde_page(next: &str, items: &[String]) -> String {
    format!(r#"{{"next":"{next}","items":[{}]}}"#, items.join(","))
}

fn rpde_partner(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"rpde\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 5\n{extra}\n\n"
    )
}

fn csv_partner(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n{extra}\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"csv\"\nurl = \"{url}\"\nretries = 0\ntimeout_secs = 5\n\n"
    )
}

fn orgs_csv(ids: std::ops::Range<usize>) -> String {
    let mut s = String::from("id,name\n");
    for i in ids {
        s.push_str(&format!("o{i},Organisation number {i}\n"));
    }
    s
}

fn live(env: &TestEnv, partner: &str) -> i64 {
    db(env)
        .query_row(
            "SELECT COUNT(*) FROM source_records WHERE partner_id = ?1 AND deleted_at IS NULL",
            [partner],
            |r| r.get(0),
        )
        .unwrap()
}

fn sync(env: &TestEnv) -> String {
    let o = env.cmd(&["sync"]);
    format!("{}{}", stdout(&o), stderr(&o))
}

#[test]
fn tombstones_count_toward_the_mass_deletion_guard() {
    let site = fake_site();
    let items: Vec<String> = (0..100)
        .map(|i| rpde_item(&format!("e{i}"), false))
        .collect();
    site.put(
        "/feed",
        "application/json",
        rpde_page(&site.url("/feed?after=1"), &items),
    );
    site.put(
        "/feed?after=1",
        "application/json",
        rpde_page(&site.url("/feed?after=1"), &[]),
    );
    let env = TestEnv::new(&rpde_partner("rp", &site.url("/feed"), ""));
    let out = sync(&env);
    assert!(out.contains("100 new"), "{out}");
    let tombs: Vec<String> = (0..100)
        .map(|i| rpde_item(&format!("e{i}"), true))
        .collect();
    site.put(
        "/feed?after=1",
        "application/json",
        rpde_page(&site.url("/feed?after=2"), &tombs),
    );
    site.put(
        "/feed?after=2",
        "application/json",
        rpde_page(&site.url("/feed?after=2"), &[]),
    );
    let out = sync(&env);
    assert!(out.contains("HELD"), "{out}");
    assert!(out.contains("would delete 100 of 100"), "{out}");
    assert_eq!(live(&env, "rp"), 100, "nothing deleted while held");
    // A few tombstones are routine.
    let o = env.cmd(&["sync", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(live(&env, "rp"), 0, "--force applies the tombstones");
}

#[test]
fn a_ratchet_of_small_cuts_is_held_against_the_high_water_mark() {
    let p = fake_partner(json_feed(&orgs_csv(0..100)));
    p.set(|f| f.content_type = "text/csv");
    let env = TestEnv::new(&csv_partner("cut", &p.url("/orgs.csv"), ""));
    assert!(sync(&env).contains("100 new"));
    // 20% off: within the 25% share, applied.
    p.set(|f| f.body = orgs_csv(0..80).into_bytes());
    let out = sync(&env);
    assert!(out.contains("20 deleted"), "{out}");
    // Another 20% of what is left: 36% of the high-water mark, held.
    p.set(|f| f.body = orgs_csv(0..64).into_bytes());
    let out = sync(&env);
    assert!(out.contains("HELD"), "{out}");
    assert!(
        out.contains("high-water mark of 100 live records"),
        "says what it compared with: {out}"
    );
    assert_eq!(live(&env, "cut"), 80);
}

#[test]
fn a_cut_csv_fails_and_unreadable_rows_keep_their_record() {
    let p = fake_partner(json_feed(&orgs_csv(0..20)));
    p.set(|f| f.content_type = "text/csv");
    let env = TestEnv::new(&csv_partner("csv", &p.url("/orgs.csv"), ""));
    assert!(sync(&env).contains("20 new"));
    // Cut at 85%, mid-row, no Content-Length to tell (chunked): nothing applied.
    // The cut lands in row o17: its id arrived, the rest of the line did not.
    let whole = orgs_csv(0..20);
    let at = whole.find("o17,").unwrap() + 3;
    let cut = whole[..at].to_string();
    p.set(|f| f.body = cut.clone().into_bytes());
    let out = sync(&env);
    assert!(out.contains("cut short"), "{out}");
    assert_eq!(live(&env, "csv"), 20);
    // A row that no longer parses (no name) is rejected and its previous record kept.
    let mut broken = orgs_csv(0..20);
    broken = broken.replace("o7,Organisation number 7\n", "o7,\n");
    p.set(|f| f.body = broken.into_bytes());
    let out = sync(&env);
    assert!(out.contains("0 deleted, 1 rejected"), "{out}");
    assert_eq!(live(&env, "csv"), 20);
    let reason: String = db(&env)
        .query_row(
            "SELECT reason FROM rejections ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(reason.contains("previous record is kept"), "{reason}");
}

#[test]
fn a_harvest_past_max_harvest_bytes_fails_the_feed() {
    let site = fake_site();
    // Three pages of ~600 KB, each under max_body_bytes, 1.8 MB together.
    let pad = "x".repeat(600_000);
    for page in 0..4 {
        let items = if page < 3 {
            vec![format!(
                r#"{{"state":"updated","kind":"Event","id":"p{page}","modified":1,"data":{{"@type":"Event","name":"P{page}","description":"{pad}","startDate":"2027-02-02T10:00:00Z"}}}}"#
            )]
        } else {
            Vec::new()
        };
        site.put(
            &format!("/feed?page={page}"),
            "application/json",
            rpde_page(
                &site.url(&format!("/feed?page={}", page.min(2) + 1)),
                &items,
            ),
        );
    }
    let env = TestEnv::new(&rpde_partner(
        "big",
        &site.url("/feed?page=0"),
        "max_harvest_bytes = 1048576",
    ));
    let out = sync(&env);
    assert!(out.contains("FAILED"), "{out}");
    assert!(out.contains("max_harvest_bytes"), "{out}");
    assert_eq!(live(&env, "big"), 0);
}

#[test]
fn csv_exports_defuse_formulas() {
    let body = "id,name,phone\n1,\"=HYPERLINK(\"\"http://evil.example/\"\",\"\"x\"\")\",+44 1482 000000\n2,@SUM(A1),\n";
    let p = fake_partner(json_feed(body));
    p.set(|f| f.content_type = "text/csv");
    let env = TestEnv::new(&csv_partner("f", &p.url("/orgs.csv"), ""));
    sync(&env);
    let o = env.cmd(&["export", "--kind", "organisations", "--format", "csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut names = Vec::new();
    for row in r.records() {
        let row = row.unwrap();
        for cell in row.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "cell {cell:?} would run as a formula"
            );
        }
        names.push(row[1].to_string());
    }
    assert!(
        names.iter().any(|n| n.starts_with("'=HYPERLINK")),
        "{names:?}"
    );
}

/// A server that redirects every request to `location`.
fn redirector(location: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn redirects_to_another_port_and_symlinks_out_of_the_folder_are_refused() {
    let other = free_port();
    let r = redirector(format!("https://127.0.0.1:{other}/feed.ics"));
    let dir = tempfile::tempdir().unwrap();
    let feeds = dir.path().join("feeds");
    std::fs::create_dir_all(&feeds).unwrap();
    let outside = dir.path().join("outside.json");
    std::fs::write(
        &outside,
        rpde_page("outside.json", &[rpde_item("secret", false)]),
    )
    .unwrap();
    std::fs::write(
        feeds.join("page1.json"),
        rpde_page("page2.json", &[rpde_item("a", false)]),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, feeds.join("page2.json")).unwrap();
    let partners = format!(
        "[[partners]]\nid = \"redir\"\nname = \"R\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{r}/feed.ics\"\nretries = 0\n\n{}",
        rpde_partner("link", &feeds.join("page1.json").display().to_string(), "")
    );
    let env = TestEnv::new(&partners);
    let out = sync(&env);
    assert!(
        out.contains("refused redirect") && out.contains(&format!(":{other}")),
        "{out}"
    );
    assert!(out.contains("symlink to a file outside"), "{out}");
    assert_eq!(live(&env, "link"), 0);
}

#[test]
fn secrets_in_feed_urls_stay_off_public_pages_and_logs() {
    let p = fake_partner(ics_feed("", None));
    p.set(|f| f.status = 500);
    let url = format!("http://bob:hunter2@{}/feed.ics?api_key=s3cr3tvalue", p.addr);
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"sec\"\nname = \"S\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{url}\"\nretries = 0\n\n"
    ));
    let mut daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let h = blocking_get(&format!("{}/healthz", daemon.base)).unwrap().2;
        if h.contains("failed") {
            break h;
        }
        assert!(Instant::now() < deadline, "{h}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let page = blocking_get(&format!("{}/", daemon.base)).unwrap().2;
    for public in [&health, &page] {
        assert!(public.contains("HTTP 500"), "{public}");
        assert!(
            !public.contains("hunter2") && !public.contains("s3cr3tvalue"),
            "{public}"
        );
    }
    let runs = get_with(
        &format!("{}/admin/partners", daemon.base),
        &[("authorization", &format!("Bearer {TOKEN}"))],
    )
    .unwrap()
    .2;
    assert!(
        runs.contains("s3cr3tvalue"),
        "admins see the full text: {runs}"
    );
    let pid = daemon.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let _ = daemon.child.wait();
    daemon.wait_for_log("sync failed", Duration::from_secs(5));
    let log = daemon.log();
    assert!(
        !log.contains("hunter2") && !log.contains("s3cr3tvalue"),
        "{log}"
    );
}

#[test]
fn slow_clients_are_cut_off_and_capped() {
    let p = fake_partner(ics_feed(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n",
        None,
    ));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"ok\"\nname = \"OK\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\n\n",
        p.url("/x.ics")
    ));
    let text = std::fs::read_to_string(env.config()).unwrap().replace(
        "[server]\n",
        "[server]\nheader_read_timeout_secs = 1\nmax_connections = 64\n",
    );
    std::fs::write(env.config(), text).unwrap();
    let daemon = env.start();
    let addr = env.base().trim_start_matches("http://").to_string();
    // 200 connections that never finish a request head: three times the cap.
    let mut slow: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
            s
        })
        .collect();
    // Past the cap they wait, and the timeout frees the slots: /healthz still answers.
    let started = Instant::now();
    let (status, _, _) = blocking_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 200);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    std::thread::sleep(Duration::from_secs(3));
    let first = &mut slow[0];
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).unwrap_or(0);
    // Closed (0 bytes) or answered 408: either way not held.
    assert!(
        n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
        "a slow client's connection is still open"
    );
    assert_eq!(daemon.stop(), Some(0));
}

#[test]
fn sigterm_stops_a_dawdling_paged_sync_and_sighup_never_blocks_it() {
    // Every page takes 2 s and links another: a harvest that would take hours.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for (n, mut s) in listener.incoming().flatten().enumerate() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf);
                std::thread::sleep(Duration::from_secs(2));
                let body = rpde_page(
                    &format!("http://{addr}/feed?p={}", n + 1),
                    &[rpde_item(&format!("s{n}"), false)],
                );
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    let env = TestEnv::new(&rpde_partner(
        "slow",
        &format!("http://{addr}/feed?p=0"),
        "rate_limit_per_minute = 6000",
    ));
    let daemon = env.start();
    std::thread::sleep(Duration::from_secs(3));
    let pid = daemon.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(daemon.stop(), Some(0));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    let result: String = db(&env)
        .query_row(
            "SELECT result || ': ' || coalesce(error, '') FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(result.contains("shutting down"), "{result}");
    assert_eq!(
        live(&env, "slow"),
        0,
        "the unfinished harvest applied nothing"
    );
}

#[test]
fn unknown_query_parameters_share_one_cache_entry() {
    let p = fake_partner(ics_feed(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20270105T100000Z\r\nSUMMARY:A\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        None,
    ));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"ok\"\nname = \"OK\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\n\n",
        p.url("/x.ics")
    ));
    env.cmd(&["sync"]);
    let daemon = env.start();
    let renders = || -> f64 {
        let m = blocking_get(&format!("{}/metrics", daemon.base)).unwrap().2;
        m.lines()
            .filter(|l| l.contains("response_renders") && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // Default windows follow the clock (to the minute for pages, the day for calendars), so a
    // rendering is fresh when the minute turns mid-run; such a run is repeated, not excused.
    let minute = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 60)
            .unwrap_or(0)
    };
    for route in ["/v1/events", "/calendar.ics"] {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let started = minute();
            blocking_get(&format!("{}{route}", daemon.base)).unwrap();
            let before = renders();
            for i in 0..20 {
                let (s, _, _) =
                    blocking_get(&format!("{}{route}?junk{i}={i}", daemon.base)).unwrap();
                assert_eq!(s, 200);
            }
            let after = renders();
            if after != before && minute() != started && attempts < 3 {
                continue;
            }
            assert_eq!(after, before, "{route}: junk parameters rendered afresh");
            break;
        }
    }
}

/// A raw partner that answers each connection by `respond` on a thread of its own.
fn raw_partner(respond: fn(std::net::TcpStream)) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = s.read(&mut buf);
                respond(s);
            });
        }
    });
    format!("http://{addr}")
}

fn soak(secs: u64) -> (Vec<Duration>, usize) {
    const GOOD: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:g1\r\nDTSTART:20270105T100000Z\r\nSUMMARY:Good one\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:g2\r\nDTSTART:20270106T100000Z\r\nSUMMARY:Good two\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let good = fake_partner(ics_feed(GOOD, None));
    let erroring = fake_partner(ics_feed("", None));
    erroring.set(|f| f.status = 500);
    let huge = fake_partner(ics_feed(&GOOD.repeat(2000), None));
    let slow = raw_partner(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nBEGIN:");
        std::thread::sleep(Duration::from_secs(8));
    });
    let cut = raw_partner(|mut s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nBEGIN:VCALENDAR\r\n");
    });
    let feed = |id: &str, url: &str| {
        format!("[[partners]]\nid = \"{id}\"\nname = \"{id}\"\nschedule = \"*/5 * * * * *\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{url}\"\nretries = 1\ntimeout_secs = 2\nmax_body_bytes = 65536\nrate_limit_per_minute = 6000\n\n")
    };
    let env = TestEnv::new(
        &[
            feed("good", &good.url("/good.ics")),
            feed("erroring", &erroring.url("/e.ics")),
            feed("huge", &huge.url("/h.ics")),
            feed("slow", &format!("{slow}/s.ics")),
            feed("cut", &format!("{cut}/c.ics")),
        ]
        .concat(),
    );
    let text = std::fs::read_to_string(env.config()).unwrap().replace(
        "[server]\n",
        "[server]\nheader_read_timeout_secs = 2\nmax_connections = 256\n",
    );
    std::fs::write(env.config(), text).unwrap();
    let mut daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let pid = daemon.child.id();
    // Drain the daemon's log: a full pipe would block its logging, and with it the daemon.
    if let Some(mut log) = daemon.child.stderr.take() {
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    }
    let end = Instant::now() + Duration::from_secs(secs);
    let base = daemon.base.clone();
    // Failing partners back off for minutes; resyncs through the admin API keep them busy.
    let resyncs = {
        let base = base.clone();
        std::thread::spawn(move || {
            while Instant::now() < end {
                post(&format!("{base}/admin/resync"), Some(TOKEN), "{}");
                std::thread::sleep(Duration::from_secs(2));
            }
        })
    };
    // Slowloris: 100 connections that never finish their request head, reopened as they close.
    let addr = env.base().trim_start_matches("http://").to_string();
    let loris = std::thread::spawn(move || {
        while Instant::now() < end {
            let held: Vec<_> = (0..100)
                .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
                .map(|mut s| {
                    let _ = s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n");
                    s
                })
                .collect();
            std::thread::sleep(Duration::from_secs(3));
            drop(held);
        }
    });
    let readers: Vec<_> = ["/v1/events", "/healthz", "/calendar.ics"]
        .into_iter()
        .map(|route| {
            let url = format!("{base}{route}");
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < end {
                    let t = Instant::now();
                    match blocking_get(&url) {
                        Ok((200, _, _)) => lat.push(t.elapsed()),
                        _ => errors += 1,
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for r in readers {
        let (l, e) = r.join().unwrap();
        lat.extend(l);
        errors += e;
    }
    resyncs.join().unwrap();
    loris.join().unwrap();
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon died during the soak"
    );
    assert_eq!(daemon.child.id(), pid);
    let events = json(&format!("{base}/v1/events?from=2027-01-01&to=2027-02-01"));
    let titles: Vec<&str> = events["items"]
        .as_array()
        .or_else(|| events["data"].as_array())
        .map(|a| a.iter().filter_map(|e| e["title"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        titles.contains(&"Good one") && titles.contains(&"Good two"),
        "the good partner's data is intact: {events}"
    );
    assert_eq!(live(&env, "good"), 2);
    for bad in ["erroring", "huge", "slow", "cut"] {
        assert_eq!(live(&env, bad), 0, "{bad} applied something");
    }
    lat.sort();
    (lat, errors)
}

fn p99(lat: &[Duration]) -> Duration {
    lat.get(lat.len() * 99 / 100).copied().unwrap_or_default()
}

/// The short soak, in every run: correctness only (no timing asserted in the suite).
#[test]
fn soak_briefly_with_hostile_partners_and_readers() {
    let (lat, errors) = soak(15);
    eprintln!(
        "soak 15 s: {} reads, {errors} failed, p99 {:?}",
        lat.len(),
        p99(&lat)
    );
    assert!(!lat.is_empty());
    assert_eq!(errors, 0, "every read answered 200");
}

/// The soak: `SOAK_SECS=180 cargo test --release --test hostile_limits -- --ignored soak_for_minutes --nocapture`.
#[test]
#[ignore]
fn soak_for_minutes() {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let (lat, errors) = soak(secs);
    let p = p99(&lat);
    eprintln!(
        "soak {secs} s: {} reads, {errors} failed, p99 {p:?}",
        lat.len()
    );
    assert_eq!(errors, 0);
    assert!(p < Duration::from_millis(100), "reads p99 {p:?}");
}
