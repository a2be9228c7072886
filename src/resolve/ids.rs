//! Canonical ids after a grouping: each id stays with the group holding most of its records
//! (ties to the records it started with), the longest-standing id survives a merge, and a group
//! left without an id takes back a retired one its records came with before minting a new one.

use std::collections::{HashMap, HashSet};

use rusqlite::Transaction;

use crate::dedupe::{self, Cluster};
use crate::model::RecordKind;
use crate::store::records::StoredRecord;
use crate::store::{entities, id_history, StoreError};

/// Per id, the clusters holding its records and how many.
type Holders<'a> = HashMap<&'a str, Vec<(usize, usize)>>;

fn holders<'a>(records: &'a [StoredRecord], clusters: &[Cluster]) -> Holders<'a> {
    let mut out: Holders = HashMap::new();
    for (ci, c) in clusters.iter().enumerate() {
        for &m in &c.members {
            let Some(id) = records.get(m).and_then(|r| r.entity_id.as_deref()) else {
                continue;
            };
            let list = out.entry(id).or_default();
            match list.iter_mut().find(|(c, _)| *c == ci) {
                Some((_, n)) => *n += 1,
                None => list.push((ci, 1)),
            }
        }
    }
    out
}

/// The id each record started with: its first recorded move, else the id it holds.
fn origins(
    records: &[StoredRecord],
    before: &HashMap<i64, Vec<String>>,
    members: &[usize],
) -> Vec<String> {
    members
        .iter()
        .filter_map(|&m| records.get(m))
        .filter_map(|r| {
            before
                .get(&r.row_id)
                .and_then(|ids| ids.first().cloned())
                .or_else(|| r.entity_id.clone())
        })
        .collect()
}

/// Rewrites the clusters' ids and absorbed ids; returns the retired ids brought back, which the
/// writer must treat as existing entities.
pub fn settle(
    tx: &Transaction,
    kind: RecordKind,
    records: &[StoredRecord],
    clusters: &mut [Cluster],
) -> Result<Vec<String>, StoreError> {
    let held = holders(records, clusters);
    // Only records whose id is contended, or that moved away from theirs, need their history.
    let mut history_rows: Vec<i64> = Vec::new();
    let mut involved: HashSet<usize> = HashSet::new();
    for list in held.values().filter(|l| l.len() > 1) {
        involved.extend(list.iter().map(|(ci, _)| *ci));
    }
    for ci in &involved {
        history_rows.extend(
            clusters[*ci]
                .members
                .iter()
                .filter_map(|&m| records.get(m))
                .map(|r| r.row_id),
        );
    }
    let mut before = id_history::held_before(tx, &history_rows)?;

    // Owners: most records, then most records that started there, then the engine's choice.
    let mut owned: Vec<Vec<String>> = vec![Vec::new(); clusters.len()];
    let mut ids: Vec<&&str> = held.keys().collect();
    ids.sort();
    for &&id in &ids {
        let list = &held[id];
        let best = list
            .iter()
            .map(|&(ci, n)| {
                let started = if list.len() > 1 {
                    origins(records, &before, &clusters[ci].members)
                        .iter()
                        .filter(|o| o.as_str() == id)
                        .count()
                } else {
                    0
                };
                let engine =
                    clusters[ci].entity_id == id || clusters[ci].absorbed.iter().any(|a| a == id);
                ((n, started, engine, std::cmp::Reverse(ci)), ci)
            })
            .max_by_key(|(k, _)| *k)
            .map(|(_, ci)| ci);
        if let Some(ci) = best {
            owned[ci].push(id.to_string());
        }
    }
    let mut used: HashSet<String> = owned.iter().flatten().cloned().collect();

    // Survivors: the longest-standing id; ties keep the engine's order.
    // Only ids competing for one cluster are looked up: a full resolution owns one per cluster.
    let competing: Vec<&str> = owned
        .iter()
        .filter(|l| l.len() > 1)
        .flatten()
        .map(String::as_str)
        .collect();
    let standing = entities::standing(tx, &competing)?;
    for (ci, list) in owned.iter_mut().enumerate() {
        if list.len() < 2 {
            continue;
        }
        let c = &clusters[ci];
        let engine_place = |id: &str| {
            std::iter::once(&c.entity_id)
                .chain(&c.absorbed)
                .position(|x| x == id)
                .unwrap_or(usize::MAX)
        };
        list.sort_by_cached_key(|id| {
            (
                standing.get(id).map(|s| s.created_at.clone()),
                engine_place(id),
                id.clone(),
            )
        });
    }

    // Groups left without an id: a retired id their records came with, else a fresh one.
    let orphans: Vec<usize> = (0..clusters.len())
        .filter(|&ci| owned[ci].is_empty())
        .collect();
    let moved_rows: Vec<i64> = orphans
        .iter()
        .flat_map(|&ci| clusters[ci].members.iter())
        .filter_map(|&m| records.get(m))
        .filter(|r| r.entity_id.is_some() && !before.contains_key(&r.row_id))
        .map(|r| r.row_id)
        .collect();
    before.extend(id_history::held_before(tx, &moved_rows)?);
    let mut revived = Vec::new();
    let mut chosen: Vec<Option<String>> = vec![None; clusters.len()];
    for &ci in &orphans {
        let reclaimed = reclaim(tx, records, &before, &clusters[ci], &used)?;
        let id = match reclaimed {
            Some(id) => {
                revived.push(id.clone());
                id
            }
            None => {
                let engine = &clusters[ci].entity_id;
                if !used.contains(engine) && !held.contains_key(engine.as_str()) {
                    engine.clone()
                } else {
                    mint(tx, kind, records, &clusters[ci], &used)
                }
            }
        };
        used.insert(id.clone());
        chosen[ci] = Some(id);
    }

    for (ci, c) in clusters.iter_mut().enumerate() {
        if let Some(id) = chosen[ci].take() {
            c.entity_id = id;
            c.absorbed.clear();
        } else {
            let mut list = std::mem::take(&mut owned[ci]).into_iter();
            if let Some(first) = list.next() {
                c.entity_id = first;
                c.absorbed = list.collect();
            }
        }
    }
    Ok(revived)
}

/// A retired id (merged away or withdrawn) the cluster's records held before, preferring the
/// one most of them started with.
fn reclaim(
    tx: &Transaction,
    records: &[StoredRecord],
    before: &HashMap<i64, Vec<String>>,
    cluster: &Cluster,
    used: &HashSet<String>,
) -> Result<Option<String>, StoreError> {
    let mut tally: HashMap<&str, (usize, usize)> = HashMap::new();
    for r in cluster.members.iter().filter_map(|&m| records.get(m)) {
        let Some(ids) = before.get(&r.row_id) else {
            continue;
        };
        for (i, id) in ids.iter().enumerate() {
            let t = tally.entry(id.as_str()).or_default();
            t.1 += 1;
            if i == 0 {
                t.0 += 1;
            }
        }
    }
    let candidates: Vec<&str> = tally
        .keys()
        .copied()
        .filter(|id| !used.contains(*id))
        .collect();
    if candidates.is_empty() {
        return Ok(None);
    }
    let standing = entities::standing(tx, &candidates)?;
    Ok(candidates
        .into_iter()
        .filter(|id| standing.get(*id).is_some_and(|s| !s.live))
        .max_by_key(|id| {
            let (started, held) = tally[id];
            let created = standing.get(*id).map(|s| s.created_at.clone());
            (
                started,
                held,
                std::cmp::Reverse(created),
                std::cmp::Reverse(*id),
            )
        })
        .map(str::to_string))
}

fn mint(
    tx: &Transaction,
    kind: RecordKind,
    records: &[StoredRecord],
    cluster: &Cluster,
    used: &HashSet<String>,
) -> String {
    let first = cluster
        .members
        .iter()
        .filter_map(|&m| records.get(m))
        .min_by(|a, b| (&a.partner, &a.record_id).cmp(&(&b.partner, &b.record_id)));
    match first {
        Some(r) => dedupe::new_id(kind, r, &|id| {
            used.contains(id) || entities::exists(tx, id).unwrap_or(true)
        }),
        None => cluster.entity_id.clone(),
    }
}
