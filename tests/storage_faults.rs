//! Storage faults through the real binary: a full disk (a 512 KiB tmpfs) and a read-only store file
//! (`chattr +i`). Each sync fails with a clear error, the store keeps its last committed state and
//! passes `PRAGMA integrity_check`. Both need root in a container that allows `mount`/`chattr`;
//! where it does not, the test says so and skips.

mod common;

use std::process::Command;

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
    .replace("[[partners]]", &format!("[store]\npath = \"{store}\"\n\n[[partners]]"))
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
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mnt)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping: cannot mount a small tmpfs here (needs root and mount rights)");
        return;
    }
    let _guard = Unmount(mnt.clone());
    let feed = fake_partner(json_feed(&orgs(20, "First")));
    let db = mnt.join("t.db");
    let env = new_env(db.to_str().unwrap(), &feed.url("/o.json"));
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(live(&db), (20, "ok".into()));

    // Far more than 512 KiB of records: SQLite runs out of space mid-transaction.
    feed.set(|f| f.body = orgs(5000, "Second").into_bytes());
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
        eprintln!("skipping: chattr +i is not available here");
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
