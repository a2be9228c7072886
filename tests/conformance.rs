//! Conformance against the public corpus (`../shared/corpus`): every file through the real binary,
//! read back from the daemon and scored against independent readers by `tests/conformance/`. Fails
//! when any figure recorded in `docs/conformance.md` drops; `CONFORMANCE_RECORD=1` re-records them.

mod common;

use std::process::Command;

use common::{python, tool_available, BIN};

const HARNESS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/harness.py");
const READERS: &str = "import icalendar, recurring_ical_events, feedparser";

#[test]
fn corpus_conformance_does_not_drop_below_the_recorded_scorecard() {
    let py = python();
    if !tool_available(
        &py,
        &["-c", READERS],
        "the reference readers (icalendar, recurring-ical-events, feedparser)",
    ) {
        return;
    }
    let mut cmd = Command::new(&py);
    cmd.args([HARNESS, "--bin", BIN]);
    if let Ok(only) = std::env::var("CONFORMANCE_ONLY") {
        cmd.args(["--only", &only]);
    }
    let out = cmd.output().expect("the conformance harness runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "conformance harness failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
