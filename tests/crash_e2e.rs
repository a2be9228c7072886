//! Crash safety: `kill -9` during a large sync, again and again, each time once the sync provably
//! holds SQLite's write lock (another connection's `BEGIN IMMEDIATE` is refused as busy) and then
//! a little later; each time the store passes `PRAGMA integrity_check`, holds either the last
//! committed state or the new one (never half), the dead run is marked interrupted by the next
//! writer, and the next sync completes.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn big_feed(n: usize, tag: &str) -> String {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("o{i}"), "name": format!("{tag} Community Group {i}"),
                "identifiers": {"charity_number": format!("{}", 1_100_000 + i)},
                "address": {"postcode": "HU1 1AA", "locality": "Hull"},
                "categories": ["Community"],
            })
        })
        .collect();
    serde_json::json!({ "organisations": items }).to_string()
}

#[test]
fn kill_dash_nine_mid_sync_never_corrupts_or_half_applies() {
    const N: usize = 20_000;
    let feed = fake_partner(json_feed(&big_feed(N, "First")));
    let env = TestEnv::new(&format!(
        "[[partners]]\nid = \"big\"\nname = \"Big partner\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"{}\"\n",
        feed.url("/orgs.json")
    ));
    assert!(env.cmd(&["sync"]).status.success());
    let names = |conn: &rusqlite::Connection| -> (i64, i64) {
        conn.query_row(
            "SELECT SUM(name LIKE 'First%'), SUM(name LIKE 'Second%') FROM
               (SELECT json_extract(body, '$.name') AS name FROM entities WHERE deleted_at IS NULL)",
            [],
            |r| Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )
        .unwrap()
    };
    assert_eq!(names(&db(&env)), (N as i64, 0));

    // Every record changes, so a sync rewrites the whole store in one transaction.
    feed.set(|f| f.body = big_feed(N, "Second").into_bytes());
    let newest_run = |conn: &rusqlite::Connection| -> (i64, String) {
        conn.query_row(
            "SELECT id, result FROM runs ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let mut killed_inside = Vec::new();
    for extra_ms in [0u64, 400, 1500] {
        let (before, _) = newest_run(&db(&env));
        let mut child = Command::new(BIN)
            .args(["--config", env.config().to_str().unwrap(), "sync", "--full"])
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let run_id = wait_inside_write(&env, &mut child, before);
        std::thread::sleep(Duration::from_millis(extra_ms));
        Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        let _ = child.wait();

        let conn = db(&env);
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "after kill {extra_ms} ms into the write");
        let state = names(&conn);
        assert!(
            state == (N as i64, 0) || state == (0, N as i64),
            "half-applied sync after kill {extra_ms} ms into the write: {state:?}"
        );
        let committed = state == (0, N as i64);
        let (newest, result) = newest_run(&conn);
        assert_eq!(newest, run_id);
        if committed {
            assert_eq!(
                result, "ok",
                "a committed sync closed its run inside its transaction"
            );
            break;
        }
        // Killed inside the transaction: nothing applied, the run row left as the dead process
        // left it (only a writer opening the store may call it interrupted).
        assert_eq!(result, "running");
        killed_inside.push(run_id);
    }
    assert!(
        !killed_inside.is_empty(),
        "no kill landed inside the write transaction"
    );
    // The next sync completes, and no run is left looking alive.
    let out = env.cmd(&["sync", "--full"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let conn = db(&env);
    assert_eq!(names(&conn), (0, N as i64));
    let running: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE result = 'running'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(running, 0);
    for id in killed_inside {
        let (result, error): (String, String) = conn
            .query_row("SELECT result, error FROM runs WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(result, "interrupted", "run {id}");
        assert!(
            error.contains("stopped before this sync finished"),
            "{error}"
        );
    }
}

/// Waits until the sync `child` started has opened its run (a run newer than `before`) and then
/// holds SQLite's write lock, so a kill from here lands inside its transaction unless it commits
/// first. Returns the run's id.
fn wait_inside_write(env: &TestEnv, child: &mut std::process::Child, before: i64) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let probe = db(env);
    probe.busy_timeout(Duration::ZERO).unwrap();
    let mut run_id = None;
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sync ended before it was seen writing"
        );
        assert!(std::time::Instant::now() < deadline, "the sync never wrote");
        if run_id.is_none() {
            run_id = probe
                .query_row(
                    "SELECT id FROM runs WHERE id > ?1 AND result = 'running'",
                    [before],
                    |r| r.get::<_, i64>(0),
                )
                .ok();
        } else {
            match probe.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
                Ok(()) => {}
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                    return run_id.unwrap_or_default();
                }
                Err(e) => panic!("probe: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_store_that_cannot_be_opened_is_a_clear_error() {
    let env = TestEnv::new(
        "[store]\npath = \"/proc/version/tributary.db\"\n\n[[partners]]\nid = \"p\"\nname = \"P\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"http://127.0.0.1:9/x.ics\"\n",
    );
    // The [store] above replaces the default one the helper wrote first.
    let text = std::fs::read_to_string(env.config()).unwrap();
    let text = text.replacen("[store]\npath = \"data/tributary.db\"\n", "", 1);
    std::fs::write(env.config(), text).unwrap();
    let out = env.cmd(&["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("/proc/version"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
