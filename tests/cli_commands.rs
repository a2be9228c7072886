//! CLI commands through the real binary: `resync` under the systemd layout (the config names a
//! service credential the CLI cannot read; `--token-file` or `$CREDENTIALS_DIRECTORY` supply the
//! token), `resync` of an unknown partner, `run` with a missing token file, `status` without a store.

mod common;

use std::time::Duration;

use common::*;

fn partner(id: &str, url: &str) -> String {
    format!(
        "[[partners]]\nid = \"{id}\"\nname = \"Partner {id}\"\n\n[[partners.feeds]]\nkind = \"events\"\nformat = \"tributary-json\"\nurl = \"{url}\"\nretries = 0\n\n"
    )
}

fn env_with_token_file(url: &str) -> TestEnv {
    let env = TestEnv::new(&format!(
        "[admin]\ntoken_file = \"creds/admin-token\"\n\n{}",
        partner("good", url)
    ));
    std::fs::create_dir_all(env.dir.path().join("creds")).unwrap();
    std::fs::write(env.dir.path().join("creds/admin-token"), "s3cret-token\n").unwrap();
    env
}

#[test]
fn resync_finds_the_token_outside_the_service() {
    let feed = fake_partner(json_feed(r#"{"events": []}"#));
    let env = env_with_token_file(&feed.url("/e.json"));
    let daemon = env.start();
    // As under systemd: the file the config names is the service's alone.
    let elsewhere = env.dir.path().join("operator");
    std::fs::rename(env.dir.path().join("creds"), &elsewhere).unwrap();
    let token = elsewhere.join("admin-token");

    let out = env.cmd(&["resync", "good"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("admin-token"), "{}", stderr(&out));

    let out = env.cmd(&[
        "resync",
        "--wait",
        "--token-file",
        token.to_str().unwrap(),
        "good",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("good"), "{}", stdout(&out));

    let out = env
        .command()
        .args(["resync", "--wait", "good"])
        .env("CREDENTIALS_DIRECTORY", &elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // A wrong token is refused by the daemon, not accepted by accident.
    std::fs::write(elsewhere.join("wrong"), "not-the-token").unwrap();
    let wrong = elsewhere.join("wrong");
    let out = env.cmd(&["resync", "--token-file", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));

    let out = env.cmd(&["resync", "--token-file", token.to_str().unwrap(), "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no partner \"nope\"") && stderr(&out).contains("known: good"),
        "{}",
        stderr(&out)
    );
    drop(daemon);
}

#[test]
fn run_with_a_missing_token_file_fails_before_it_claims_to_run() {
    let env = env_with_token_file("http://127.0.0.1:9/e.json");
    std::fs::remove_file(env.dir.path().join("creds/admin-token")).unwrap();
    let daemon = env.spawn_with(&[("RUST_LOG", "info")]);
    let (code, log) = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("admin token cannot be read"), "{log}");
    assert!(log.contains("admin-token"), "{log}");
    assert!(!log.contains("tributary running"), "{log}");
}

#[test]
fn status_without_a_store_creates_none() {
    let env = TestEnv::new(&partner("good", "http://127.0.0.1:9/e.json"));
    let out = env.cmd(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("never"), "{}", stdout(&out));
    assert!(!env.db().exists(), "status created the store");
    assert!(
        !env.dir.path().join("data").exists(),
        "status created the store's folder"
    );
}
