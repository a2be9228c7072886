//! Admins' merges and splits as exact inverses: a merge ties entities together (lifting any
//! split between them), a split undoes the admin's merge that brought a record's cluster in, or,
//! when the engine itself matched the record, keeps it apart from the rest.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rusqlite::{params, Transaction};

use crate::dedupe::{self, features, ManualLink};
use crate::model::RecordKind;
use crate::store::records::{self, StoredRecord};
use crate::store::{self, block_keys, entities, review, StoreError};

/// What an admin's merge or split changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stats: entities::ApplyStats,
    /// Merge: the id the merged entity answers to. Split: the split record's entity now.
    pub entity_id: Option<String>,
    /// Split: the entity the rest of the records are in now.
    pub rest_id: Option<String>,
    /// Split: an admin's merge was undone (rather than the record kept apart from the engine's
    /// match).
    pub undid_merge: bool,
}

/// Different identifiers of one scheme across the entities to merge: each a sentence naming
/// the entities and the two values.
pub fn identifier_conflicts(
    tx: &Transaction,
    kind: RecordKind,
    ids: &[String],
) -> Result<Vec<String>, StoreError> {
    if kind != RecordKind::Organisations {
        return Ok(Vec::new());
    }
    // Per entity, per scheme, the normalised values its records carry.
    let mut per: Vec<(String, BTreeMap<&'static str, BTreeSet<String>>)> = Vec::new();
    for id in ids {
        let rows = records::members_of(tx, id)?;
        let mut schemes: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for r in records::live_by_rows(tx, &rows)? {
            if let features::Features::Org(f) = features::of(&r.payload) {
                for (scheme, v) in [
                    ("charity number", f.charity),
                    ("company number", f.company),
                    ("org-id", f.org_id),
                ] {
                    if let Some(v) = v {
                        schemes.entry(scheme).or_default().insert(v);
                    }
                }
            }
        }
        per.push((id.clone(), schemes));
    }
    let mut out = Vec::new();
    for (i, (a, sa)) in per.iter().enumerate() {
        for (b, sb) in &per[i + 1..] {
            for (scheme, va) in sa {
                let Some(vb) = sb.get(scheme) else { continue };
                if va.is_disjoint(vb) {
                    out.push(format!(
                        "{a} has {scheme} {} and {b} has {}",
                        join(va),
                        join(vb)
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn join(v: &BTreeSet<String>) -> String {
    v.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Merges the live entities `ids` (each with live records) into one: splits recorded between
/// their records are lifted, and every record is tied to the first entity's first record under
/// one merge number, so a split can later undo this merge and no other.
pub fn merge(
    tx: &Transaction,
    kind: RecordKind,
    ids: &[String],
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let groups: Vec<Vec<i64>> = ids
        .iter()
        .map(|id| {
            records::members_of(tx, id).map(|mut m| {
                m.sort_unstable();
                m
            })
        })
        .collect::<Result<_, _>>()?;
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            lift_splits(tx, a, b)?;
        }
    }
    let merge_id: i64 = tx.query_row(
        "SELECT COALESCE(MAX(merge_id), 0) + 1 FROM match_decisions",
        [],
        |r| r.get(0),
    )?;
    let all: Vec<i64> = groups.iter().flatten().copied().collect();
    tie(tx, kind, &all, merge_id, &store::timestamp(now))?;
    block_keys::mark_dirty(tx, &all)?;
    let stats = crate::resolve::resolve_kind(tx, kind, settings, now)?;
    let survivor = match all.first() {
        Some(&r) => records::entities_of(tx, &[r])?.into_iter().next(),
        None => None,
    };
    Ok(Outcome {
        stats,
        entity_id: survivor,
        rest_id: None,
        undid_merge: false,
    })
}

/// Ties every row of `rows` to the first under merge `merge_id`. Every record, not one per
/// entity: the engine's own matches inside each entity must not be weighed against the records
/// merged in (they would be refused as incoherent). A pair already tied keeps its merge.
fn tie(
    tx: &Transaction,
    kind: RecordKind,
    rows: &[i64],
    merge_id: i64,
    now: &str,
) -> Result<(), StoreError> {
    let Some((&center, rest)) = rows.split_first() else {
        return Ok(());
    };
    let mut st = tx.prepare_cached(
        "INSERT INTO match_decisions (kind, a_row, b_row, same, decided_at, merge_id)
         VALUES (?1, ?2, ?3, 1, ?4, ?5)
         ON CONFLICT (a_row, b_row) DO UPDATE SET same = 1, decided_at = excluded.decided_at,
             merge_id = excluded.merge_id WHERE match_decisions.same = 0",
    )?;
    for &other in rest.iter().filter(|&&o| o != center) {
        st.execute(params![
            kind.as_str(),
            center.min(other),
            center.max(other),
            now,
            merge_id
        ])?;
    }
    Ok(())
}

/// Removes the admin's "never the same" decisions between a record of `a` and one of `b`.
fn lift_splits(tx: &Transaction, a: &[i64], b: &[i64]) -> Result<(), StoreError> {
    let mut st = tx.prepare_cached(
        "DELETE FROM match_decisions WHERE same = 0 AND a_row = ?1 AND b_row = ?2",
    )?;
    for &x in a {
        for &y in b {
            st.execute(params![x.min(y), x.max(y)])?;
        }
    }
    Ok(())
}

/// An admin's "same" decision between two records of the entity, with the merge that made it.
struct Tie {
    a: i64,
    b: i64,
    merge_id: Option<i64>,
}

fn ties_among(tx: &Transaction, rows: &HashSet<i64>) -> Result<Vec<Tie>, StoreError> {
    let mut st = tx.prepare_cached(
        "SELECT a_row, b_row, merge_id FROM match_decisions WHERE same = 1 AND (a_row = ?1 OR b_row = ?1)",
    )?;
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for &r in rows {
        let found = st
            .query_map(params![r], |row| {
                Ok(Tie {
                    a: row.get(0)?,
                    b: row.get(1)?,
                    merge_id: row.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<Tie>>>()?;
        for t in found {
            if rows.contains(&t.a) && rows.contains(&t.b) && seen.insert((t.a, t.b)) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Splits the record at `row` out of `entity`. When an admin's merge joined the record's own
/// cluster (as the engine forms it without admins' merges) to the rest, that merge is undone
/// for this cluster: it leaves, whatever else that merge joined stays joined, and ids go back
/// to the records they came with. When the engine matched the record itself, it is kept apart
/// from every other record of the entity.
pub fn split(
    tx: &Transaction,
    kind: RecordKind,
    entity: &str,
    row: i64,
    settings: &dedupe::Settings,
    now: DateTime<Utc>,
) -> Result<Outcome, StoreError> {
    let rows = records::members_of(tx, entity)?;
    let members = records::live_by_rows(tx, &rows)?;
    let manual = review::decisions(tx, kind)?;
    let in_entity: HashSet<i64> = rows.iter().copied().collect();
    let cluster_of = engine_clusters(tx, kind, &members, &manual, settings)?;
    let own = cluster_of.get(&row).copied();
    let engine_side: HashSet<i64> = rows
        .iter()
        .copied()
        .filter(|r| cluster_of.get(r).copied() == own)
        .collect();
    let ties = ties_among(tx, &in_entity)?;
    let crosses = |t: &Tie| engine_side.contains(&t.a) != engine_side.contains(&t.b);
    let undid_merge = engine_side.len() < rows.len() && ties.iter().any(crosses);
    let now_s = store::timestamp(now);
    if undid_merge {
        undo_merges(tx, kind, &ties, &engine_side, &cluster_of, &now_s)?;
    } else {
        for &other in rows.iter().filter(|&&r| r != row) {
            review::add_decision(tx, kind, row, other, false, &now_s)?;
        }
    }
    block_keys::mark_dirty(tx, &rows)?;
    let stats = crate::resolve::resolve_kind(tx, kind, settings, now)?;
    let entity_id = records::entities_of(tx, &[row])?.into_iter().next();
    let rest = rows
        .iter()
        .find(|r| !engine_side.contains(r) || (!undid_merge && **r != row));
    let rest_id = match rest {
        Some(&r) => records::entities_of(tx, &[r])?.into_iter().next(),
        None => None,
    };
    Ok(Outcome {
        stats,
        entity_id,
        rest_id,
        undid_merge,
    })
}

/// Takes `leaving` (one engine cluster) out of every admin merge that holds it: each such merge
/// is re-tied over the engine clusters it still joins (none, when only one is left); review
/// "merge" decisions crossing to `leaving` are dropped.
fn undo_merges(
    tx: &Transaction,
    kind: RecordKind,
    ties: &[Tie],
    leaving: &HashSet<i64>,
    cluster_of: &HashMap<i64, usize>,
    now: &str,
) -> Result<(), StoreError> {
    let mut drop = tx.prepare_cached(
        "DELETE FROM match_decisions WHERE same = 1 AND a_row = ?1 AND b_row = ?2",
    )?;
    let touched: BTreeSet<i64> = ties
        .iter()
        .filter(|t| leaving.contains(&t.a) || leaving.contains(&t.b))
        .filter_map(|t| t.merge_id)
        .collect();
    for t in ties {
        let crossing = leaving.contains(&t.a) != leaving.contains(&t.b);
        let redo = t.merge_id.is_some_and(|k| touched.contains(&k));
        if redo || (t.merge_id.is_none() && crossing) {
            drop.execute(params![t.a, t.b])?;
        }
    }
    for k in touched {
        // The engine clusters this merge still joins, without the leaving one.
        let clusters: BTreeSet<usize> = ties
            .iter()
            .filter(|t| t.merge_id == Some(k))
            .flat_map(|t| [t.a, t.b])
            .filter(|r| !leaving.contains(r))
            .filter_map(|r| cluster_of.get(&r).copied())
            .collect();
        if clusters.len() < 2 {
            continue;
        }
        let mut rows: Vec<i64> = cluster_of
            .iter()
            .filter(|(_, c)| clusters.contains(c))
            .map(|(r, _)| *r)
            .collect();
        rows.sort_unstable();
        tie(tx, kind, &rows, k, now)?;
    }
    Ok(())
}

/// Each of `members`' engine cluster (an index) with no admin's merge among them (admins'
/// splits still hold), weighed by the store's value frequencies like any resolution.
fn engine_clusters(
    tx: &Transaction,
    kind: RecordKind,
    members: &[StoredRecord],
    manual: &[ManualLink],
    settings: &dedupe::Settings,
) -> Result<HashMap<i64, usize>, StoreError> {
    let splits: Vec<ManualLink> = manual.iter().filter(|m| !m.same).copied().collect();
    let feats = members
        .par_iter()
        .map(|r| features::of(&r.payload))
        .collect::<Vec<_>>();
    let frequencies = super::stored_frequencies(tx, kind, &feats)?;
    let grouping = dedupe::group_with(members, &feats, settings, &splits, Some(&frequencies));
    let resolution = grouping.with_ids(kind, members, &|_| false);
    let mut out = HashMap::new();
    for (ci, c) in resolution.clusters.iter().enumerate() {
        for r in c.members.iter().filter_map(|&m| members.get(m)) {
            out.insert(r.row_id, ci);
        }
    }
    Ok(out)
}
