//! Storage faults through the real binary: a full disk (a 2 MiB tmpfs) and a read-only store file
//! (`chattr +i`): each sync fails with a clear error, the store keeps its last committed state and
//! passes `PRAGMA integrity_check`. Both need root in a container that allows `mount`/`chattr`;
//! where it does not, they fail when `CI` is set (CI must prove them) and skip loudly elsewhere.
//! Then a damaged store (refused at start, `/healthz` 503 when damaged under a running daemon),
//! a 0-byte store file, and two processes writing one store (the second refuses).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn orgs(n: usize, tag: &str) -> String {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"id": format!("o{i}"), "name": format!("{tag} group {i}"), "description": "x".repeat(200)}))
        .collect();
    serde_json::json!({ "organisations": items }).to_string()
}

fn config(store: &str, url: &str) -> String {
    format!(
        "[[partners]]\nid = \"p\"\nname = \"P\"\nmax_delete_share = 1.0\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{url}\"\n"
    )
    .replace(
        "[[partners]]",
        &format!("[store]\npath = \"{store}\"\n\n[server]\nlisten = \"127.0.0.1:0\"\n\n[[partners]]"),
    )
}

fn live(db: &std::path::Path) -> (i64, String) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let n = conn
        .query_row(
            "SELECT COUNT(*) FROM entities WHERE deleted_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let check = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (n, check)
}

fn new_env(store: &str, url: &str) -> TestEnv {
    let env = TestEnv::new("");
    std::fs::write(env.config(), config(store, url)).unwrap();
    env
}

/// A missing capability: a failure in CI, where the test must prove its claim; a loud skip elsewhere.
fn missing_capability(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {what}: this test cannot prove its claim here; give the CI job the capability");
    }
    eprintln!("SKIPPED (not proven here): {what}; set up the capability or run in CI");
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_sync_cleanly_and_keeps_the_last_state() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&mnt)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        missing_capability("cannot mount a small tmpfs (needs root and mount rights)");
        return;
    }
    let _guard = Unmount(mnt.clone());
    let feed = fake_partner(json_feed(&orgs(20, "First")));
    let db = mnt.join("t.db");
    let env = new_env(db.to_str().unwrap(), &feed.url("/o.json"));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(live(&db), (20, "ok".into()));

    // Far more than 2 MiB of records: SQLite runs out of space mid-transaction.
    feed.set(|f| f.body = orgs(20000, "Second").into_bytes());
    let out = env.cmd(&["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("full"), "a clear disk-full error: {text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(
        live(&db),
        (20, "ok".into()),
        "the last committed state is intact"
    );
}

struct Mutable(std::path::PathBuf);
impl Drop for Mutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_store_fails_the_sync_cleanly() {
    let feed = fake_partner(json_feed(&orgs(10, "First")));
    let env = new_env("data/t.db", &feed.url("/o.json"));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = env.dir.path().join("data/t.db");
    // Checkpoint the WAL so the main file holds everything, then make it immutable.
    rusqlite::Connection::open(&db)
        .unwrap()
        .pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    let locked = Command::new("chattr")
        .arg("+i")
        .arg(&db)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !locked {
        missing_capability("chattr +i is not available");
        return;
    }
    let _guard = Mutable(db.clone());
    feed.set(|f| f.body = orgs(12, "Second").into_bytes());
    let out = env.cmd(&["sync"]);
    assert_ne!(out.status.code(), Some(0));
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("readonly") || text.contains("read-only") || text.contains("unable to open"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    drop(_guard);
    assert_eq!(live(&db), (10, "ok".into()));
}

fn org_env(n: usize) -> (FakePartner, TestEnv) {
    let feed = fake_partner(json_feed(&orgs(n, "First")));
    let env = new_env("data/t.db", &feed.url("/o.json"));
    (feed, env)
}

fn store_of(env: &TestEnv) -> std::path::PathBuf {
    env.dir.path().join("data/t.db")
}

/// Makes the `entities` table's root page unreadable (an invalid page type), after folding the
/// log into the main file, as a disk or a careless copy would.
fn damage_entities_root(db: &std::path::Path) {
    use std::io::{Seek, SeekFrom, Write};
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .unwrap();
    let page_size: u64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: u64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'entities'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start((root - 1) * page_size)).unwrap();
    f.write_all(&[0xFF; 16]).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn a_damaged_store_is_refused_at_start_and_kept_as_it_is() {
    let (_feed, env) = org_env(30);
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = store_of(&env);
    damage_entities_root(&db);
    let before = std::fs::read(&db).unwrap();

    let (code, log) = env.spawn_with(&[]).wait_exit(Duration::from_secs(20));
    assert_eq!(
        code,
        Some(1),
        "the daemon must refuse a damaged store: {log}"
    );
    assert!(log.contains("fails its integrity check"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let out = env.cmd(&["sync"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("fails its integrity check"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the damaged file is left for recovery"
    );
}

#[test]
fn healthz_answers_503_once_the_store_under_a_running_daemon_is_damaged() {
    let (_feed, env) = org_env(30);
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let daemon = env.start();
    let (status, _, body) = blocking_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 200, "{body}");

    damage_entities_root(&store_of(&env));
    let (status, _, body) = blocking_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 503, "healthz must report the damaged store: {body}");
    assert!(body.contains("damaged"), "{body}");
    // It stays unhealthy: the damage does not go away between polls.
    let (status, _, _) = blocking_get(&format!("{}/healthz", daemon.base)).unwrap();
    assert_eq!(status, 503);
}

#[test]
fn a_zero_byte_store_file_is_not_taken_for_a_new_empty_store() {
    let (_feed, env) = org_env(5);
    let db = store_of(&env);
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"").unwrap();
    for args in [&["sync"][..], &["run"][..], &["status"][..]] {
        let out = env.cmd(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("empty file (0 bytes)"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left as found");
}

#[test]
fn a_second_process_writing_one_store_refuses_to_start_whenever_it_starts() {
    let (feed, env) = org_env(10);
    feed.hold();
    let first = env.start();
    let pid = first.child.id();
    // The first daemon's startup sync is in flight, held by the partner.
    feed.wait_held(1);
    let refused = |what: &str, code: Option<i32>, text: &str| {
        assert_eq!(code, Some(1), "{what}: {text}");
        assert!(
            text.contains("already in use by another tributary process"),
            "{what}: {text}"
        );
        assert!(
            text.contains(&format!("pid {pid}")),
            "{what} names the holder: {text}"
        );
    };
    let (code, log) = env.spawn_with(&[]).wait_exit(Duration::from_secs(20));
    refused("second daemon during a sync", code, &log);
    let out = env.cmd(&["sync"]);
    refused("sync during a sync", out.status.code(), &stderr(&out));

    feed.open();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while live(&store_of(&env)).0 < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first sync did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, log) = env.spawn_with(&[]).wait_exit(Duration::from_secs(20));
    refused("second daemon while idle", code, &log);
    let (status, _, _) = blocking_get(&format!("{}/healthz", first.base)).unwrap();
    assert_eq!(status, 200, "the first daemon keeps serving");
    assert_eq!(first.stop(), Some(0));

    // Its lock went with it: the next one starts.
    let next = env.start();
    assert_eq!(next.stop(), Some(0));
}
