//! `deploy/nginx.conf` run by real nginx (as the test user, everything in a temp prefix) in front
//! of the real daemon: cacheable answers are stored and served for the daemon's max-age, a sync's
//! change shows through the cache once that runs out, expired entries are revalidated and the
//! daemon answers them 304, gzip passes through as the daemon made it, and /metrics and admin
//! routes are never stored. The daemon's max-age is configured down to 8 s (`publish.max_age_secs`;
//! the default is 60), so the test waits seconds, not a minute.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CONF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf");
const TOKEN: &str = "nginx-test-token";
/// The daemon's `Cache-Control: public, max-age=8`, as its config below sets it.
const MAX_AGE: Duration = Duration::from_secs(8);

/// `nginx`, or `None` (a loud skip) outside CI when it is not installed; in CI it must be there.
fn nginx() -> Option<&'static str> {
    // Debian puts it in /usr/sbin, which a user's PATH often lacks.
    let found = ["nginx", "/usr/sbin/nginx"].into_iter().find(|bin| {
        Command::new(bin)
            .arg("-v")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is required in CI (.ci/run installs Debian's nginx package)"
        );
        eprintln!(
            "skipping: nginx not installed (apt-get install nginx; bash .ci/run installs it)"
        );
    }
    found
}

/// nginx in the foreground on its own prefix, stopped when dropped.
struct Nginx {
    child: Child,
    prefix: PathBuf,
    base: String,
}

impl Nginx {
    /// Starts `deploy/nginx.conf` with only its two addresses changed: listening on a free
    /// loopback port, proxying to `upstream` (host:port).
    fn start(bin: &str, prefix: &Path, upstream: &str) -> Nginx {
        for d in ["logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(d)).unwrap();
        }
        let text = std::fs::read_to_string(CONF).unwrap();
        assert!(text.contains("listen 80;") && text.contains("server 127.0.0.1:8080;"));
        let port = free_port();
        let text = text
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
            .replace("server 127.0.0.1:8080;", &format!("server {upstream};"));
        let conf = prefix.join("nginx.conf");
        std::fs::write(&conf, text).unwrap();
        let stderr = std::fs::File::create(prefix.join("stderr.log")).unwrap();
        // One process (no master): it holds the socket and the cache, and killing it ends all.
        let child = Command::new(bin)
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let n = Nginx {
            child,
            prefix: prefix.to_path_buf(),
            base: format!("http://127.0.0.1:{port}"),
        };
        n.wait_listening();
        n
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if blocking_get(&format!("{}/healthz", self.base)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nginx did not come up:\n{}", self.log("stderr.log"));
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.prefix.join(name)).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master takes its workers down (SIGKILL would orphan them on the port).
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn feed(title_of_first: &str) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n");
    for (i, title) in [(0, title_of_first), (1, "Befriending training")] {
        s.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:ev-{i}@test\r\nDTSTAMP:20261101T000000Z\r\n\
             DTSTART:2027031{i}T100000Z\r\nDTEND:2027031{i}T110000Z\r\nSUMMARY:{title}\r\nEND:VEVENT\r\n"
        ));
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

fn cache_status(h: &reqwest::header::HeaderMap) -> String {
    h.get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Requests the daemon answered on `route` with `status`, from its own /metrics.
fn daemon_answers(base: &str, route: &str, status: u16) -> u64 {
    let (_, _, text) = blocking_get(&format!("{base}/metrics")).unwrap();
    let prefix = format!("tributary_http_requests_total{{route=\"{route}\",status=\"{status}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn nginx_caches_for_max_age_then_revalidates_and_shows_a_sync_change() {
    let Some(bin) = nginx() else { return };
    let partner = fake_partner(ics_feed(&feed("Coffee morning"), None));
    let env = TestEnv::new(&format!(
        "[publish]\nmax_age_secs = {}\n\n[[partners]]\nid = \"cvs\"\nname = \"CVS\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"{}\"\nretries = 0\n",
        MAX_AGE.as_secs(),
        partner.url("/events.ics")
    ));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let direct = daemon.base.clone();
    let prefix = tempfile::tempdir().unwrap();
    let proxy = Nginx::start(bin, prefix.path(), direct.trim_start_matches("http://"));
    let via = proxy.base.clone();

    // The unchanged event's own URL: its body (and so its ETag) stays the same across the sync.
    let list = json(&format!("{direct}/v1/events?from=2027-01-01&to=2028-01-01"));
    let unchanged_id = list["items"]
        .as_array()
        .or_else(|| list["data"].as_array())
        .unwrap_or_else(|| panic!("no event list: {list}"))
        .iter()
        .find(|e| e.to_string().contains("Befriending training"))
        .and_then(|e| e["id"].as_str())
        .unwrap_or_else(|| panic!("no id for the unchanged event: {list}"))
        .to_string();
    let cal = format!("{via}/calendar.ics");
    let one = format!("{via}/v1/events/{unchanged_id}");

    // Filled, then served from the cache without the daemon.
    let filled = Instant::now();
    let (s, h, body) = blocking_get(&cal).unwrap();
    assert_eq!((s, cache_status(&h).as_str()), (200, "MISS"), "{h:?}");
    assert_eq!(
        h["cache-control"],
        format!("public, max-age={}", MAX_AGE.as_secs())
    );
    assert!(body.contains("SUMMARY:Coffee morning"));
    let (_, h, _) = blocking_get(&one).unwrap();
    assert_eq!(cache_status(&h), "MISS");
    let renders_before = daemon_answers(&direct, "/calendar.ics", 200);
    let (_, h, body2) = blocking_get(&cal).unwrap();
    assert_eq!(cache_status(&h), "HIT");
    assert_eq!(body2, body);
    assert_eq!(h["etag"], blocking_get(&cal).unwrap().1["etag"]);
    assert_eq!(
        daemon_answers(&direct, "/calendar.ics", 200),
        renders_before
    );

    // gzip: the daemon's own gzip body, stored apart from the plain one.
    let gz = || get_bytes(&cal, &[("accept-encoding", "gzip, deflate, br")]).unwrap();
    let (_, h, zipped) = gz();
    assert_eq!(h["content-encoding"], "gzip", "{h:?}");
    assert_eq!(cache_status(&h), "MISS");
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&zipped[..]), &mut plain)
        .unwrap();
    assert_eq!(plain, body);
    let (_, h, zipped2) = get_bytes(&cal, &[("accept-encoding", "gzip")]).unwrap();
    assert_eq!(
        cache_status(&h),
        "HIT",
        "another spelling of gzip shares the entry"
    );
    assert_eq!(zipped2, zipped);

    // Operator routes go to the daemon every time.
    let (_, h, m1) = blocking_get(&format!("{via}/metrics")).unwrap();
    assert_eq!(cache_status(&h), "", "{h:?}");
    let (_, _, m2) = blocking_get(&format!("{via}/metrics")).unwrap();
    assert_ne!(m1, m2, "a second scrape through the proxy must be fresh");
    for _ in 0..2 {
        let (s, h, _) = get_with(
            &format!("{via}/admin/partners"),
            &[("authorization", &format!("Bearer {TOKEN}"))],
        )
        .unwrap();
        assert_eq!((s, cache_status(&h).as_str()), (200, ""), "{h:?}");
    }
    let (s, _, _) = blocking_get(&format!("{via}/admin/partners")).unwrap();
    assert_eq!(
        s, 401,
        "an admin answer must never be replayed to a client without the token"
    );

    // The partner renames an event and a sync takes it in: the daemon has it at once, the cache
    // keeps its copy until max-age runs out, then shows the change.
    partner.set(|f| f.body = feed("Coffee and chat").into_bytes());
    let (s, body) = post(&format!("{direct}/admin/resync?wait=true"), Some(TOKEN), "");
    assert_eq!(s, 200, "{body}");
    let (_, _, fresh) = blocking_get(&format!("{direct}/calendar.ics")).unwrap();
    assert!(fresh.contains("SUMMARY:Coffee and chat"));
    let (_, h, held) = blocking_get(&cal).unwrap();
    if filled.elapsed() < MAX_AGE - Duration::from_secs(2) {
        assert_eq!(cache_status(&h), "HIT");
        assert!(
            held.contains("SUMMARY:Coffee morning"),
            "within max-age the copy is served"
        );
    }
    let changed = loop {
        let (_, h, body) = blocking_get(&cal).unwrap();
        if body.contains("SUMMARY:Coffee and chat") {
            break (h, filled.elapsed());
        }
        assert!(
            filled.elapsed() < MAX_AGE + Duration::from_secs(5),
            "the change did not show through the cache within max-age:\n{}",
            proxy.log("logs/access.log")
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        changed.1 >= MAX_AGE - Duration::from_secs(1),
        "shown before max-age ran out"
    );
    assert_eq!(cache_status(&changed.0), "EXPIRED");

    // The unchanged event's entry has expired too: nginx asks again with its validators and
    // the daemon answers 304, which refreshes the entry without a body.
    let not_modified_before = daemon_answers(&direct, "/v1/events/{id}", 304);
    let (s, h, _) = blocking_get(&one).unwrap();
    assert_eq!(
        (s, cache_status(&h).as_str()),
        (200, "REVALIDATED"),
        "{h:?}"
    );
    assert_eq!(
        daemon_answers(&direct, "/v1/events/{id}", 304),
        not_modified_before + 1,
        "the revalidation reached the daemon as a 304"
    );
    let log = proxy.log("logs/access.log");
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("/v1/events/{unchanged_id}"))
                && l.contains("cache=REVALIDATED upstream=304")),
        "{log}"
    );
    let (_, h, _) = blocking_get(&one).unwrap();
    assert_eq!(cache_status(&h), "HIT");
    daemon.stop();
}

#[test]
fn check_config_names_a_max_age_out_of_range() {
    let env = TestEnv::new("[publish]\nmax_age_secs = 100000\n");
    let out = env.cmd(&["check-config"]);
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("publish.max_age_secs") && text.contains("86400"),
        "{text}"
    );
}
