//! Entity resolution against the store: runs the dedupe engine over the records that changed since
//! a kind was last resolved and everything they could now match or unmatch (scoped), or over every
//! live record (full), and writes entities, the change log, stored block keys and the review queue.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rusqlite::Transaction;

use crate::dedupe::{self, block, features, score};
use crate::model::RecordKind;
use crate::store::block_keys::{self, RecordKeys};
use crate::store::records::{self, StoredRecord};
use crate::store::{self, entities, review, StoreError};

mod ids;
pub mod manual;

/// A resolution goes full when more than one live record in this many changed: the scope would
/// be most of the kind anyway.
const FULL_SHARE: usize = 5;

/// Live records past which a resolution gets a bigger page cache.
const BIG_RESOLUTION: usize = 50_000;
/// The bigger cache, in KiB (negative, as SQLite takes it).
const BIG_CACHE_KIB: i64 = -131_072;

/// Resolves `kind` inside `tx`: clusters, canonical entities, the change log and the review
/// queue. Scoped to the changed records when the store holds block keys for the kind and few
/// changed; full otherwise (the first time, or after big changes). Admins' decisions hold.
pub fn resolve_kind(
    tx: &Transaction,
    kind: RecordKind,
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<entities::ApplyStats, StoreError> {
    let started = std::time::Instant::now();
    let dirty = block_keys::dirty(tx, kind)?;
    let live: i64 = tx.query_row(
        "SELECT COUNT(*) FROM source_records WHERE kind = ?1 AND deleted_at IS NULL",
        rusqlite::params![kind.as_str()],
        |r| r.get(0),
    )?;
    let full = needs_full(tx, kind, settings)? || dirty.len() * FULL_SHARE > live as usize;
    let big = live as usize > BIG_RESOLUTION && (full || dirty.len() > BIG_RESOLUTION / 10);
    // A big resolution rewrites much of the entity table and its indexes in one transaction;
    // with the everyday cache its pages spill to the log and are read back again and again.
    if big {
        tx.pragma_update(None, "cache_size", BIG_CACHE_KIB)?;
    }
    let result = if full {
        resolve_full(tx, kind, settings, now)
    } else {
        resolve_scoped(tx, kind, &dirty, settings, now)
    };
    if big {
        tx.pragma_update(None, "cache_size", store::CACHE_KIB)?;
    }
    let stats = result?;
    block_keys::clear_dirty(tx, kind)?;
    tracing::info!(
        kind = kind.as_str(),
        full,
        live,
        // Records noted as changed; a kind not yet resolved with stored keys notes none.
        changed = dirty.len(),
        created = stats.created,
        updated = stats.updated,
        merged = stats.merged,
        deleted = stats.deleted,
        ms = started.elapsed().as_millis() as u64,
        "entities resolved"
    );
    Ok(stats)
}

/// The settings that decide matches, as stored with a full resolution.
fn fingerprint(s: &dedupe::Settings) -> String {
    format!(
        "engine=3 merge_threshold={} review_threshold={} event_tolerance_secs={}",
        s.merge_threshold, s.review_threshold, s.event_tolerance_secs
    )
}

/// Whether `kind` must be resolved in full: never resolved with stored keys, or last resolved
/// in full under other `[dedupe]` settings (changed thresholds apply to every record at once).
pub fn needs_full(
    tx: &Transaction,
    kind: RecordKind,
    settings: &dedupe::Settings,
) -> Result<bool, StoreError> {
    Ok(!block_keys::any(tx, kind)?
        || block_keys::resolved_with(tx, kind)?.as_deref() != Some(fingerprint(settings).as_str()))
}

fn keys_of(r: &StoredRecord, f: &features::Features, settings: &dedupe::Settings) -> RecordKeys {
    RecordKeys {
        row_id: r.row_id,
        sort: block::sort_value(f),
        keys: block::stored_keys(f, settings.event_tolerance_secs),
        features: features::fingerprint(f),
    }
}

fn resolve_full(
    tx: &Transaction,
    kind: RecordKind,
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<entities::ApplyStats, StoreError> {
    let t = std::time::Instant::now();
    // Each record's stored keys are worked out with its features, on the cores parsing the load.
    let (live, feats, keys) = records::live(tx, kind, |r| {
        let f = features::of(&r.payload);
        let k = keys_of(r, &f, settings);
        (f, k)
    })?;
    let loaded = t.elapsed();
    tracing::debug!(
        kind = kind.as_str(),
        records = live.len(),
        ms = loaded.as_millis() as u64,
        rss_mb = crate::metrics::resident_mb(),
        "records loaded"
    );
    let manual = review::decisions(tx, kind)?;
    // Grouping needs no store and runs on the shared pool, while this thread, the one on the
    // connection (which cannot leave it), writes the stored keys: the writes overlap the scoring
    // instead of following the entities.
    let mut grouping = None;
    let written = rayon::in_place_scope(|s| {
        s.spawn(|_| grouping = Some(dedupe::group(&live, &feats, settings, &manual)));
        block_keys::replace_kind(tx, kind, &keys)
    });
    written?;
    // The scope returns once its job has run (a panic in it resumes here), so the grouping is
    // there; were it not, grouping on this thread is right, only slower.
    let grouping = match grouping {
        Some(g) => g,
        None => dedupe::group(&live, &feats, settings, &manual),
    };
    let keyed = keys.len();
    drop(keys);
    let grouped = t.elapsed();
    tracing::debug!(
        kind = kind.as_str(),
        ms = (grouped - loaded).as_millis() as u64,
        rss_mb = crate::metrics::resident_mb(),
        "grouped, stored keys written"
    );
    let mut resolution = with_ids(tx, kind, &live, grouping)?;
    ids::settle(tx, kind, &live, &mut resolution.clusters)?;
    let stats = write_resolution(tx, kind, &live, resolution, now, None)?;
    // Freeing every loaded record is one long walk of the heap; the writer need not wait for it.
    rayon::spawn(move || drop((live, feats)));
    tracing::debug!(
        kind = kind.as_str(),
        records = keyed,
        load_ms = loaded.as_millis() as u64,
        group_and_keys_ms = (grouped - loaded).as_millis() as u64,
        ids_and_write_ms = (t.elapsed() - grouped).as_millis() as u64,
        rss_mb = crate::metrics::resident_mb(),
        "full resolution"
    );
    block_keys::save_resolved_with(tx, kind, &fingerprint(settings))?;
    Ok(stats)
}

/// Canonical ids for a grouping: a kind with no entities yet (a first sync) has issued none,
/// so there is nothing to look up.
fn with_ids(
    tx: &Transaction,
    kind: RecordKind,
    records: &[StoredRecord],
    grouping: dedupe::Grouping,
) -> Result<dedupe::Resolution, StoreError> {
    let none_issued = !entities::any_of_kind(tx, kind)?;
    Ok(grouping.with_ids(kind, records, &|id| {
        !none_issued && entities::exists(tx, id).unwrap_or(true)
    }))
}

/// What a scoped resolution covers: the canonical entities it may rewrite or retire, the
/// records it resolves, and the ones that changed.
struct Scope<'a> {
    entities: &'a [String],
    rows: &'a [i64],
    changed: &'a [i64],
}

/// Resolves the changed records, the records they now score against (from the stored block
/// keys), and every record of the clusters any of those belonged to, so a cluster is always
/// re-resolved whole: records can join, leave, merge or split, and nothing else moves.
fn resolve_scoped(
    tx: &Transaction,
    kind: RecordKind,
    changed: &[i64],
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<entities::ApplyStats, StoreError> {
    let t = std::time::Instant::now();
    let rekeyed = rekey(tx, kind, changed, settings)?;
    let against = candidates(tx, kind, changed, &rekeyed)?;
    let looked_up = t.elapsed();
    let matching = matching(tx, &against, &rekeyed.feats, settings)?;
    let scored = t.elapsed();

    let mut rows: BTreeSet<i64> = rekeyed.current.iter().map(|r| r.row_id).collect();
    rows.extend(&matching);
    let seeds: Vec<i64> = changed.iter().chain(&matching).copied().collect();
    let (rows, mut entity_ids) = whole_clusters(tx, kind, rows, &seeds)?;
    let scoped = records::live_by_rows(tx, &rows)?;
    let scoped_feats = features_of(&scoped);
    tracing::debug!(
        kind = kind.as_str(),
        changed = changed.len(),
        same_features = rekeyed.same.len(),
        candidates = against.len(),
        matching = matching.len(),
        scope = scoped.len(),
        keys_and_lookup_ms = looked_up.as_millis() as u64,
        candidates_ms = (scored - looked_up).as_millis() as u64,
        clusters_ms = (t.elapsed() - scored).as_millis() as u64,
        "scoped resolution"
    );
    let mut resolution = group_scope(tx, kind, &scoped, &scoped_feats, settings)?;
    // Ids brought back are entities the write rewrites, like the scope's own.
    entity_ids.extend(ids::settle(tx, kind, &scoped, &mut resolution.clusters)?);
    entity_ids.sort();
    entity_ids.dedup();
    write_resolution(
        tx,
        kind,
        &scoped,
        resolution,
        now,
        Some(Scope {
            entities: &entity_ids,
            rows: &rows,
            changed,
        }),
    )
}

/// Each record's match features, worked out on the shared pool.
fn features_of(records: &[StoredRecord]) -> Vec<features::Features> {
    records
        .par_iter()
        .map(|r| features::of(&r.payload))
        .collect()
}

/// The changed records as they are now (deleted ones are absent), with their features and the
/// keys just stored for them.
struct Rekeyed {
    current: Vec<StoredRecord>,
    feats: Vec<features::Features>,
    keys: Vec<RecordKeys>,
    /// Rows whose match features did not change.
    same: BTreeSet<i64>,
}

/// Stores the changed records' new keys; deleted records lose theirs.
fn rekey(
    tx: &Transaction,
    kind: RecordKind,
    changed: &[i64],
    settings: &dedupe::Settings,
) -> Result<Rekeyed, StoreError> {
    let current = records::live_by_rows(tx, changed)?;
    let feats = features_of(&current);
    let keys: Vec<RecordKeys> = current
        .iter()
        .zip(&feats)
        .map(|(r, f)| keys_of(r, f, settings))
        .collect();
    // A record whose match features did not change (a new description, say) scores the same
    // against everything: its cluster is re-merged, but it needs no new candidates.
    let same: BTreeSet<i64> = block_keys::replace_rows(tx, kind, &keys)?
        .into_iter()
        .collect();
    let live_rows: BTreeSet<i64> = current.iter().map(|r| r.row_id).collect();
    let gone: Vec<RecordKeys> = changed
        .iter()
        .filter(|row| !live_rows.contains(row))
        .map(|&row_id| RecordKeys {
            row_id,
            sort: 0,
            keys: Vec::new(),
            features: 0,
        })
        .collect();
    block_keys::replace_rows(tx, kind, &gone)?;
    Ok(Rekeyed {
        current,
        feats,
        keys,
        same,
    })
}

/// Records sharing a stored key with a changed record whose features changed, each with the
/// changed records (indexes into `rekeyed`) it is to be scored against.
fn candidates(
    tx: &Transaction,
    kind: RecordKind,
    changed: &[i64],
    rekeyed: &Rekeyed,
) -> Result<HashMap<i64, Vec<usize>>, StoreError> {
    let changed_set: BTreeSet<i64> = changed.iter().copied().collect();
    let mut against: HashMap<i64, Vec<usize>> = HashMap::new();
    for (i, k) in rekeyed.keys.iter().enumerate() {
        if rekeyed.same.contains(&k.row_id) {
            continue;
        }
        for n in block_keys::neighbours(tx, kind, k, block::BOUNDS)? {
            if !changed_set.contains(&n) {
                against.entry(n).or_default().push(i);
            }
        }
    }
    Ok(against)
}

/// The candidates that score high enough to matter (merge, review or an identifier conflict)
/// against a changed record, in row order. Read and scored a chunk at a time: a wide change can
/// name many candidates.
fn matching(
    tx: &Transaction,
    against: &HashMap<i64, Vec<usize>>,
    feats: &[features::Features],
    settings: &dedupe::Settings,
) -> Result<Vec<i64>, StoreError> {
    let mut candidate_rows: Vec<i64> = against.keys().copied().collect();
    candidate_rows.sort_unstable();
    let mut matching: Vec<i64> = Vec::new();
    for rows in candidate_rows.chunks(4_096) {
        let candidates = records::live_by_rows(tx, rows)?;
        let hits: Vec<i64> = candidates
            .par_iter()
            .filter_map(|c| {
                let cf = features::of(&c.payload);
                let hit = against.get(&c.row_id).is_some_and(|idx| {
                    idx.iter().filter_map(|&i| feats.get(i)).any(|f| {
                        let s = score::weigh(f, &cf, settings.event_tolerance_secs);
                        s.conflict || s.weight >= settings.review_threshold
                    })
                });
                hit.then_some(c.row_id)
            })
            .collect();
        matching.extend(hits);
    }
    Ok(matching)
}

/// Widens `rows` to the whole clusters of every record of `seeds`, and of records admins tied to
/// any record in scope: the rows to resolve, and the entities they belonged to.
fn whole_clusters(
    tx: &Transaction,
    kind: RecordKind,
    mut rows: BTreeSet<i64>,
    seeds: &[i64],
) -> Result<(Vec<i64>, Vec<String>), StoreError> {
    let mut entity_ids: BTreeSet<String> = records::entities_of(tx, seeds)?.into_iter().collect();
    for e in &entity_ids {
        rows.extend(records::members_of(tx, e)?);
    }
    let manual = review::decisions(tx, kind)?;
    loop {
        let outside: Vec<i64> = manual
            .iter()
            .filter(|m| m.same && rows.contains(&m.a) != rows.contains(&m.b))
            .map(|m| if rows.contains(&m.a) { m.b } else { m.a })
            .collect();
        if outside.is_empty() {
            break;
        }
        rows.extend(&outside);
        for e in records::entities_of(tx, &outside)? {
            if entity_ids.insert(e.clone()) {
                rows.extend(records::members_of(tx, &e)?);
            }
        }
    }
    Ok((rows.into_iter().collect(), entity_ids.into_iter().collect()))
}

/// Groups a scope with the admins' decisions, weighing shared values by their frequency in the
/// whole store, and gives its clusters canonical ids.
fn group_scope(
    tx: &Transaction,
    kind: RecordKind,
    scoped: &[StoredRecord],
    scoped_feats: &[features::Features],
    settings: &dedupe::Settings,
) -> Result<dedupe::Resolution, StoreError> {
    let manual = review::decisions(tx, kind)?;
    let frequencies = stored_frequencies(tx, kind, scoped_feats)?;
    let grouping = dedupe::group_with(scoped, scoped_feats, settings, &manual, Some(&frequencies));
    with_ids(tx, kind, scoped, grouping)
}

/// Survivorship and the stored VEVENT block, for the store to write entities with.
const RENDERERS: entities::Renderers = entities::Renderers {
    merge: dedupe::merge_cluster,
    vevent: event_block,
};

fn event_block(event: &crate::model::CanonicalEvent) -> String {
    crate::publish::ical::fragment(event, crate::publish::UID_DOMAIN)
}

/// Writes a resolution of `records`: entities and their change log, record links, and the
/// review queue (the whole kind's, or the scope's).
fn write_resolution(
    tx: &Transaction,
    kind: RecordKind,
    records: &[StoredRecord],
    resolution: dedupe::Resolution,
    now: DateTime<Utc>,
    scope: Option<Scope>,
) -> Result<entities::ApplyStats, StoreError> {
    let t = std::time::Instant::now();
    let stats = entities::apply(
        tx,
        kind,
        records,
        &resolution.clusters,
        now,
        scope.as_ref().map(|s| s.entities),
        &RENDERERS,
    );
    let stats = stats?;
    let clusters = resolution.clusters.len();
    let pairs: Vec<(i64, i64, f64, Vec<String>)> = resolution
        .review
        .into_iter()
        .map(|p| {
            (
                records[p.a].row_id,
                records[p.b].row_id,
                p.score.weight,
                p.score.evidence,
            )
        })
        .collect();
    let written = t.elapsed();
    let now_s = store::timestamp(now);
    match scope {
        None => review::replace_queue(tx, kind, &pairs, &now_s)?,
        Some(s) => review::replace_in_scope(tx, kind, s.rows, s.changed, &pairs, &now_s)?,
    }
    tracing::debug!(
        kind = kind.as_str(),
        records = records.len(),
        clusters,
        review = pairs.len(),
        write_entities_ms = written.as_millis() as u64,
        review_ms = (t.elapsed() - written).as_millis() as u64,
        "resolution written"
    );
    Ok(stats)
}

/// Withdraws every record of `partner` at once (`tributary partner purge`) and re-resolves
/// the kinds it leaves: entities it alone stood behind are deleted (tombstones in the change
/// feeds, CANCELLED in calendars), the others are rebuilt from the partners that remain.
pub fn withdraw_partner(
    tx: &Transaction,
    partner: &str,
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<store::withdrawal::Withdrawn, StoreError> {
    let withdrawn = store::withdrawal::withdraw(tx, partner, now)?;
    resolve_pending(tx, settings, now)?;
    Ok(withdrawn)
}

/// Resolves the kinds marked as awaiting resolution, and clears their marks.
pub fn resolve_pending(
    tx: &Transaction,
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kinds: Vec<String> = tx
        .prepare("SELECT kind FROM dirty_kinds ORDER BY kind")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for kind in kinds.iter().filter_map(|k| RecordKind::parse(k)) {
        resolve_kind(tx, kind, settings, now)?;
        tx.execute(
            "DELETE FROM dirty_kinds WHERE kind = ?1",
            rusqlite::params![kind.as_str()],
        )?;
    }
    Ok(())
}

/// How many distinct live records in the store share each comparison value of `feats`, so a
/// partial resolution weighs shared values as a full one over the whole store would.
pub(crate) fn stored_frequencies(
    tx: &Transaction,
    kind: RecordKind,
    feats: &[features::Features],
) -> Result<block::Frequencies, StoreError> {
    let mut value_keys: Vec<u64> = feats
        .iter()
        .flat_map(|f| block::value_hashes(f).into_iter().flatten())
        .collect();
    value_keys.sort_unstable();
    value_keys.dedup();
    Ok(block::Frequencies::from_counts(block_keys::counts(
        tx,
        kind,
        &value_keys,
    )?))
}
