//! Scoped (incremental) resolution against the full one: a store that synced labelled partner
//! feeds and then a round of changes (deleted, renamed, moved, newly duplicated and new
//! organisations) must end with the clusters a fresh store gets from the changed feeds alone,
//! while touching only the entities near the changes.

#[path = "../benches/common/synth.rs"]
mod synth;

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::TestEnv;
use tributary::model::Payload;
use tributary::store::records::StoredRecord;

const PARTNERS: usize = 6;

fn partners_toml() -> String {
    (0..PARTNERS)
        .map(|p| {
            format!(
                "[[partners]]\nid = \"partner-{p:02}\"\nname = \"Partner {p}\"\n\n[[partners.feeds]]\nkind = \"organisations\"\nformat = \"tributary-json\"\nurl = \"feeds/p{p:02}.json\"\n\n"
            )
        })
        .collect()
}

fn write_feeds(dir: &Path, records: &[StoredRecord]) {
    std::fs::create_dir_all(dir.join("feeds")).unwrap();
    for p in 0..PARTNERS {
        let pid = format!("partner-{p:02}");
        let items: Vec<serde_json::Value> = records
            .iter()
            .filter(|r| r.partner == pid)
            .filter_map(|r| match &r.payload {
                Payload::Organisation(o) => {
                    let mut v = serde_json::to_value(o).unwrap();
                    v["id"] = r.record_id.clone().into();
                    Some(v)
                }
                Payload::Event(_) => None,
            })
            .collect();
        let body = serde_json::json!({ "organisations": items });
        std::fs::write(
            dir.join(format!("feeds/p{p:02}.json")),
            serde_json::to_vec(&body).unwrap(),
        )
        .unwrap();
    }
}

fn sync(env: &TestEnv) {
    let out = env.cmd(&["sync"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

/// Syncs and returns, for each resolution the sync ran that wrote entities, whether it went full
/// (from the "entities resolved" line logged for every resolution, with its mode).
fn sync_modes(env: &TestEnv) -> Vec<bool> {
    let out = env
        .command()
        .args(["--log-format", "json", "sync"])
        .env("RUST_LOG", "tributary=info")
        .output()
        .unwrap();
    let logs = common::stderr(&out);
    assert!(out.status.success(), "{logs}");
    let modes: Vec<bool> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "entities resolved")
        // A batch may end with a resolution that finds nothing left to do; only the ones that
        // wrote entities say how the changes were resolved.
        .filter(|v| {
            ["created", "updated", "merged", "deleted"]
                .iter()
                .any(|k| v["fields"][k].as_u64().unwrap_or(0) > 0)
        })
        .map(|v| {
            v["fields"]["full"]
                .as_bool()
                .unwrap_or_else(|| panic!("a resolution line without its mode: {v}"))
        })
        .collect();
    assert!(
        !modes.is_empty(),
        "the sync logged no resolution that wrote: {logs}"
    );
    modes
}

/// Each live record's cluster, as the set of (partner, record id) it shares an entity with.
fn clusters(env: &TestEnv) -> BTreeSet<Vec<(String, String)>> {
    let db = common::db(env);
    let mut st = db
        .prepare(
            "SELECT e.entity_id, r.partner_id, r.source_id FROM source_records r
             JOIN record_entities e ON e.row_id = r.id
             WHERE r.deleted_at IS NULL AND r.kind = 'organisations'",
        )
        .unwrap();
    let mut by_entity: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (e, p, s) = row.unwrap();
        by_entity.entry(e).or_default().push((p, s));
    }
    by_entity
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect()
}

fn max_change(env: &TestEnv) -> i64 {
    common::db(env)
        .query_row(
            "SELECT COALESCE(MAX(change_number), 0) FROM changes",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

fn org(r: &mut StoredRecord) -> &mut tributary::model::Organisation {
    match &mut r.payload {
        Payload::Organisation(o) => o,
        Payload::Event(_) => unreachable!("organisations only"),
    }
}

#[test]
fn scoped_resolution_matches_a_full_one_and_touches_only_what_changed() {
    let data = synth::organisations(3_000, PARTNERS, 21);
    let env = TestEnv::new(&partners_toml());
    write_feeds(env.dir.path(), &data.records);
    let first = sync_modes(&env);
    assert!(
        first.iter().all(|&full| full),
        "a first resolution is full: {first:?}"
    );
    // The first resolution rebuilt the links' index in bulk: it must be there afterwards.
    let index: i64 = common::db(&env)
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'record_entities_entity'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    let before = clusters(&env);
    let changes_before = max_change(&env);
    let total_entities = before.len();

    // A round of changes across the partners (about 4% of the records).
    let mut changed = data.records.clone();
    let mut edited = 0usize;
    // Deletions.
    let gone: BTreeSet<usize> = (0..changed.len()).step_by(97).collect();
    edited += gone.len();
    // New duplicates: another partner starts listing an organisation, under its own id.
    let mut extra = Vec::new();
    for (n, i) in (5..changed.len()).step_by(151).enumerate() {
        let mut copy = changed[i].clone();
        // Another partner: one feed listing an organisation twice is two entities.
        let listed_by = |p: &str| {
            (0..changed.len()).any(|j| data.truth[j] == data.truth[i] && changed[j].partner == p)
        };
        let p = (0..PARTNERS)
            .map(|k| format!("partner-{:02}", (n + 3 + k) % PARTNERS))
            .find(|p| !listed_by(p));
        let Some(p) = p else { continue };
        copy.partner = p;
        copy.record_id = format!("new-dup-{n}");
        extra.push(copy);
    }
    edited += extra.len();
    // Renames to a distinct name: the record should leave its cluster.
    for i in (11..changed.len()).step_by(173) {
        let o = org(&mut changed[i]);
        o.name = format!("Zebedee Rowing Club {i}");
        o.identifiers = Default::default();
        o.website = None;
        o.email = None;
        o.phone = None;
        o.address.postcode = Some(format!("ZE{} 1AA", i % 9 + 1));
        edited += 1;
    }
    // Description-only edits: content changes, clusters do not.
    for i in (17..changed.len()).step_by(61) {
        org(&mut changed[i]).description = Some("Updated this week".into());
        edited += 1;
    }
    // Brand-new organisations.
    let fresh = synth::organisations(40, PARTNERS, 99);
    for (n, mut r) in fresh.records.into_iter().enumerate() {
        r.record_id = format!("fresh-{n}");
        extra.push(r);
    }
    edited += 40;
    let final_records: Vec<StoredRecord> = changed
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !gone.contains(i))
        .map(|(_, r)| r)
        .chain(extra)
        .collect();
    write_feeds(env.dir.path(), &final_records);
    // What this test compares must be a scoped resolution: a silent fall back to full would
    // match the fresh store trivially.
    let modes = sync_modes(&env);
    assert!(
        modes.iter().all(|&full| !full),
        "the round of changes was resolved scoped, not full: {modes:?}"
    );
    let incremental = clusters(&env);
    let logged = (max_change(&env) - changes_before) as usize;

    // The same final feeds into a fresh store: one full resolution.
    let fresh_env = TestEnv::new(&partners_toml());
    write_feeds(fresh_env.dir.path(), &final_records);
    assert!(sync_modes(&fresh_env).iter().all(|&full| full));
    let full = clusters(&fresh_env);

    let live_records: usize = full.iter().map(Vec::len).sum();
    assert_eq!(live_records, final_records.len());
    assert_eq!(
        incremental.iter().map(Vec::len).sum::<usize>(),
        live_records
    );
    let differing = incremental.symmetric_difference(&full).count();
    eprintln!(
        "{differing} of {} clusters differ; {logged} entity changes for {edited} edits",
        full.len()
    );
    assert_eq!(
        differing,
        0,
        "scoped and full resolution disagree on {differing} of {} clusters",
        full.len()
    );
    // Only entities near the changes were written: far fewer than a full rewrite.
    assert!(logged > 0, "the changes were applied");
    assert!(
        logged <= edited * 3,
        "{logged} entity changes logged for {edited} edited records ({total_entities} entities)"
    );
    // The renamed records stand alone, the new duplicates joined their originals.
    for c in &incremental {
        if c.iter().any(|(_, id)| id.starts_with("new-dup-")) {
            assert!(c.len() >= 2, "a new duplicate joined its original: {c:?}");
        }
    }
}

const TOKEN: &str = "incremental-test-token";

/// (entity id, partner, record id) of each live record.
fn membership(env: &TestEnv) -> Vec<(String, String, String)> {
    let db = common::db(env);
    let mut st = db
        .prepare(
            "SELECT e.entity_id, r.partner_id, r.source_id FROM source_records r
             JOIN record_entities e ON e.row_id = r.id
             WHERE r.deleted_at IS NULL ORDER BY r.id",
        )
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn admin_split_and_merge_are_scoped_and_stick_across_syncs() {
    let data = synth::organisations(1_500, PARTNERS, 8);
    let env = TestEnv::new(&partners_toml());
    write_feeds(env.dir.path(), &data.records);
    sync(&env);
    let before = membership(&env);
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for (e, _, _) in &before {
        *sizes.entry(e.as_str()).or_default() += 1;
    }
    let (entity, partner, record) = before
        .iter()
        .find(|(e, _, _)| sizes[e.as_str()] >= 2)
        .cloned()
        .expect("a merged organisation");
    let entity_of = |env: &TestEnv, p: &str, r: &str| -> String {
        membership(env)
            .into_iter()
            .find(|(_, pp, rr)| pp == p && rr == r)
            .map(|(e, _, _)| e)
            .unwrap()
    };
    let changes_before = max_change(&env);

    let daemon = env.start_with(&[("TRIBUTARY_ADMIN_TOKEN", TOKEN)]);
    let (status, body) = common::post(
        &format!("{}/admin/split", daemon.base),
        Some(TOKEN),
        &serde_json::json!({"entity_id": entity, "partner": partner, "record_id": record})
            .to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let mates: Vec<_> = before
        .iter()
        .filter(|(e, p, r)| *e == entity && !(*p == partner && *r == record))
        .map(|(_, p, r)| (p.clone(), r.clone()))
        .collect();
    let split_off = entity_of(&env, &partner, &record);
    let rest = entity_of(&env, &mates[0].0, &mates[0].1);
    assert_ne!(split_off, rest, "the record left its cluster");
    // Scoped: the split wrote the two entities involved, not the whole kind.
    let logged = max_change(&env) - changes_before;
    assert!((1..=4).contains(&logged), "{logged} changes for one split");

    // Merge them back by canonical id: the survivor keeps one of the two ids.
    let (status, body) = common::post(
        &format!("{}/admin/merge", daemon.base),
        Some(TOKEN),
        &serde_json::json!({"ids": [rest, split_off]}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(daemon.stop(), Some(0));
    let merged = entity_of(&env, &partner, &record);
    assert!(merged == rest || merged == split_off);
    for (p, r) in &mates {
        assert_eq!(entity_of(&env, p, r), merged, "{p}/{r} back together");
    }

    // A later sync that changes the record keeps the admin's merge.
    let mut changed = data.records.clone();
    for r in &mut changed {
        if r.partner == partner && r.record_id == record {
            org(r).description = Some("Changed after the merge".into());
        }
    }
    write_feeds(env.dir.path(), &changed);
    sync(&env);
    for (p, r) in &mates {
        assert_eq!(entity_of(&env, p, r), merged, "{p}/{r} still together");
    }
}

#[test]
fn changed_dedupe_settings_resolve_everything_again() {
    let data = synth::organisations(400, PARTNERS, 3);
    let env = TestEnv::new(&partners_toml());
    write_feeds(env.dir.path(), &data.records);
    sync(&env);
    let merged = clusters(&env).len();
    assert!(merged < data.records.len(), "some records merged");
    // Nothing changed in the feeds; only the threshold did. The next run resolves in full.
    let mut config = std::fs::read_to_string(env.config()).unwrap();
    config.push_str("\n[dedupe]\nmerge_threshold = 1000.0\nreview_threshold = 999.0\n");
    std::fs::write(env.config(), config).unwrap();
    sync(&env);
    assert_eq!(
        clusters(&env).len(),
        data.records.len(),
        "nothing merges now"
    );
}
