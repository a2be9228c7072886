//! Crash safety: `kill -9` during a large sync, again and again; each time the store opens, passes
//! `PRAGMA integrity_check`, holds either the last committed state or the new one (never half),
//! the dead run is marked interrupted, and the next sync completes.

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
    let mut committed = false;
    for delay_ms in [50u64, 150, 300, 500, 800, 1200, 2000] {
        let mut child = Command::new(BIN)
            .args(["--config", env.config().to_str().unwrap(), "sync", "--full"])
            .env("RUST_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        let _ = child.wait();

        let conn = db(&env);
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "after kill at {delay_ms} ms");
        let state = names(&conn);
        assert!(
            state == (N as i64, 0) || state == (0, N as i64),
            "half-applied sync after kill at {delay_ms} ms: {state:?}"
        );
        committed |= state == (0, N as i64);
        if committed {
            break;
        }
    }
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
