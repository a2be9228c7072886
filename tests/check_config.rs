//! `tributary check-config` through the real binary: one run reports every problem (type errors,
//! unknown keys with the nearest valid name, out-of-range values), each with its key path and
//! line, and what `run` would trip over (the admin token file, the store's folder).

mod common;

use std::process::Command;

use common::*;

const TEN_MISTAKES: &str = r#"[store]
path = 5

[server]
listen = "127.0.0.1:0"
max_conections = 10
stop_grace_secs = 99999

[scheduler]
timezone = "Mars/Olympus"
max_concurrent = "four"

[dedupe]
merge_treshold = 8.0

[[partners]]
id = "Bad ID"
name = "Partner"
schedul = "0 0 * * * *"
max_delete_share = 2.0

[[partners.feeds]]
kind = "events"
format = "icall"
url = "https://example.org/e.ics"
timeout_secs = "30"
retries = 99
max_body_bytes = 10
"#;

fn check(dir: &std::path::Path, text: &str) -> (Option<i32>, String) {
    let config = dir.join("tributary.toml");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env_remove("TRIBUTARY_ADMIN_TOKEN")
        .output()
        .unwrap();
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn every_mistake_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = check(dir.path(), TEN_MISTAKES);
    assert_eq!(code, Some(2), "{out}");
    assert!(!out.contains("not valid TOML"), "{out}");
    for (key, line, says) in [
        ("store.path", 2, "must be a string, not a whole number"),
        (
            "server.max_conections",
            6,
            "did you mean \"max_connections\"",
        ),
        ("server.stop_grace_secs", 7, "must be between 0 and 3600"),
        ("scheduler.timezone", 10, "not an IANA time zone"),
        (
            "scheduler.max_concurrent",
            11,
            "must be a whole number, not a string",
        ),
        (
            "dedupe.merge_treshold",
            14,
            "did you mean \"merge_threshold\"",
        ),
        ("partners[0].id", 17, "lowercase letters"),
        ("partners[0].schedul", 19, "did you mean \"schedule\""),
        ("partners[0].max_delete_share", 20, "at most 1"),
        ("partners[0].feeds[0].format", 24, "not a known format"),
        (
            "partners[0].feeds[0].timeout_secs",
            26,
            "must be a whole number, not a string",
        ),
        (
            "partners[0].feeds[0].retries",
            27,
            "99 must be between 0 and 10 (attempts after the first)",
        ),
        (
            "partners[0].feeds[0].max_body_bytes",
            28,
            "10 must be at least 1024 (bytes)",
        ),
    ] {
        let want = format!("line {line}: {key}: ");
        let hit = out.lines().find(|l| l.contains(&want));
        assert!(
            hit.is_some_and(|l| l.contains(says)),
            "want {want}…{says} in:\n{out}"
        );
    }
    assert!(out.contains("has 13 problem(s)"), "{out}");
}

#[test]
fn what_run_needs_is_checked_too() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the store's folder should be, and a token file that is not there.
    std::fs::write(dir.path().join("occupied"), "").unwrap();
    let text = "[store]\npath = \"occupied/tributary.db\"\n\n[admin]\ntoken_file = \"creds/admin-token\"\n\n\
                [[partners]]\nid = \"a\"\nname = \"A\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"ical\"\nurl = \"https://example.org/e.ics\"\n";
    let (code, out) = check(dir.path(), text);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("admin.token_file"), "{out}");
    assert!(out.contains("creds/admin-token"), "{out}");
    assert!(
        out.contains("store.path") && out.contains("occupied"),
        "{out}"
    );

    // Both fixed: valid.
    std::fs::create_dir_all(dir.path().join("creds")).unwrap();
    std::fs::write(dir.path().join("creds/admin-token"), "t0ken\n").unwrap();
    let (code, out) = check(dir.path(), &text.replace("occupied/", "data/"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(": ok (1 partners, 1 feeds)"), "{out}");
}
