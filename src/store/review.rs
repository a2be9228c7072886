//! The review queue and admins' match decisions (`review_queue`, `match_decisions`): uncertain
//! pairs are kept for an admin to settle, and every merge or split they decide is stored by the
//! partner records' row ids so it holds across future syncs.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::Result;
use crate::model::ManualLink;
use crate::model::RecordKind;

/// One side of a review pair, as an admin needs to see it.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewRecord {
    pub partner: String,
    pub record_id: String,
    pub entity_id: Option<String>,
    pub record: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub id: i64,
    pub kind: String,
    pub score: f64,
    /// Cluster sizes × uncertainty: the queue's order.
    pub priority: f64,
    pub evidence: Vec<String>,
    pub a: ReviewRecord,
    pub b: ReviewRecord,
    /// The whole clusters the two records are in now: what a merge would join.
    pub cluster_a: ClusterView,
    pub cluster_b: ClusterView,
    pub created_at: String,
}

/// A cluster as a review item shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterView {
    /// Live records in the cluster.
    pub size: usize,
    /// Its first members (by row), up to [`CLUSTER_SHOWN`].
    pub members: Vec<ReviewRecord>,
}

pub fn decisions(tx: &Transaction, kind: RecordKind) -> Result<Vec<ManualLink>> {
    let mut st =
        tx.prepare_cached("SELECT a_row, b_row, same FROM match_decisions WHERE kind = ?1")?;
    let rows = st.query_map(params![kind.as_str()], |r| {
        Ok(ManualLink {
            a: r.get(0)?,
            b: r.get(1)?,
            same: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn add_decision(
    tx: &Transaction,
    kind: RecordKind,
    a: i64,
    b: i64,
    same: bool,
    now: &str,
) -> Result<()> {
    let (a, b) = (a.min(b), a.max(b));
    tx.execute(
        "INSERT INTO match_decisions (kind, a_row, b_row, same, decided_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (a_row, b_row) DO UPDATE SET same = excluded.same, decided_at = excluded.decided_at",
        params![kind.as_str(), a, b, same, now],
    )?;
    Ok(())
}

/// Writes `pairs` into the queue (a pair already there keeps its id) and lists them in
/// `temp.current_review`, keyed, so the caller can drop the pairs no longer uncertain.
fn upsert_current(
    tx: &Transaction,
    kind: RecordKind,
    pairs: &[(i64, i64, f64, Vec<String>)],
    now: &str,
) -> Result<()> {
    tx.execute(
        "CREATE TEMP TABLE IF NOT EXISTS current_review
           (a_row INTEGER, b_row INTEGER, PRIMARY KEY (a_row, b_row)) WITHOUT ROWID",
        [],
    )?;
    tx.execute("DELETE FROM temp.current_review", [])?;
    let mut keep =
        tx.prepare_cached("INSERT OR IGNORE INTO temp.current_review VALUES (?1, ?2)")?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO review_queue (kind, a_row, b_row, score, evidence, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (a_row, b_row) DO UPDATE SET score = excluded.score, evidence = excluded.evidence",
    )?;
    for (a, b, score, evidence) in pairs {
        let (a, b) = ((*a).min(*b), (*a).max(*b));
        keep.execute(params![a, b])?;
        let ev = serde_json::to_string(evidence).unwrap_or_else(|_| "[]".into());
        upsert.execute(params![kind.as_str(), a, b, score, ev, now])?;
    }
    Ok(())
}

/// Replaces the open pairs of `kind` with `pairs` (row a, row b, score, evidence); a pair that
/// is still uncertain keeps its id.
pub fn replace_queue(
    tx: &Transaction,
    kind: RecordKind,
    pairs: &[(i64, i64, f64, Vec<String>)],
    now: &str,
) -> Result<()> {
    upsert_current(tx, kind, pairs, now)?;
    tx.execute(
        "DELETE FROM review_queue WHERE kind = ?1 AND NOT EXISTS
           (SELECT 1 FROM temp.current_review c WHERE c.a_row = review_queue.a_row AND c.b_row = review_queue.b_row)",
        params![kind.as_str()],
    )?;
    Ok(())
}

/// After a scoped resolution: the open pairs of `kind` between two `scope` rows, or touching a
/// `changed` row, are replaced with `pairs`; pairs elsewhere stand. A pair still uncertain keeps
/// its id.
pub fn replace_in_scope(
    tx: &Transaction,
    kind: RecordKind,
    scope: &[i64],
    changed: &[i64],
    pairs: &[(i64, i64, f64, Vec<String>)],
    now: &str,
) -> Result<()> {
    tx.execute(
        "CREATE TEMP TABLE IF NOT EXISTS review_scope (row_id INTEGER PRIMARY KEY, changed INTEGER)",
        [],
    )?;
    tx.execute("DELETE FROM temp.review_scope", [])?;
    {
        let mut add = tx.prepare_cached(
            "INSERT INTO temp.review_scope VALUES (?1, ?2)
             ON CONFLICT (row_id) DO UPDATE SET changed = max(changed, excluded.changed)",
        )?;
        for r in scope {
            add.execute(params![r, 0])?;
        }
        for r in changed {
            add.execute(params![r, 1])?;
        }
    }
    upsert_current(tx, kind, pairs, now)?;
    tx.execute(
        "DELETE FROM review_queue WHERE kind = ?1
           AND ((a_row IN (SELECT row_id FROM temp.review_scope)
                 AND b_row IN (SELECT row_id FROM temp.review_scope))
                OR a_row IN (SELECT row_id FROM temp.review_scope WHERE changed = 1)
                OR b_row IN (SELECT row_id FROM temp.review_scope WHERE changed = 1))
           AND NOT EXISTS (SELECT 1 FROM temp.current_review c
                           WHERE c.a_row = review_queue.a_row AND c.b_row = review_queue.b_row)",
        params![kind.as_str()],
    )?;
    Ok(())
}

fn side(conn: &Connection, row: i64) -> Result<Option<ReviewRecord>> {
    Ok(conn
        .query_row(
            "SELECT r.partner_id, r.source_id, e.entity_id, r.payload
             FROM source_records r LEFT JOIN record_entities e ON e.row_id = r.id WHERE r.id = ?1",
            params![row],
            |r| {
                let payload: String = r.get(3)?;
                Ok(ReviewRecord {
                    partner: r.get(0)?,
                    record_id: r.get(1)?,
                    entity_id: r.get(2)?,
                    record: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                })
            },
        )
        .optional()?)
}

/// Members of one side's cluster shown with a review item; a larger cluster is summarised by
/// its size and these first members.
pub const CLUSTER_SHOWN: usize = 50;

/// One page of the review queue, most consequential first, and the cursor of the next page.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewPage {
    pub items: Vec<ReviewItem>,
    pub next_cursor: Option<String>,
}

/// An open pair with what orders it: cluster sizes × uncertainty.
struct Open {
    id: i64,
    kind: String,
    a: i64,
    b: i64,
    score: f64,
    evidence: String,
    created_at: String,
    size_a: usize,
    size_b: usize,
    priority: f64,
}

/// A page cursor: the last item's priority (its bits, so paging is exact) and id.
fn cursor_of(o: &Open) -> String {
    cursor(o.priority, o.id)
}

fn cursor(priority: f64, id: i64) -> String {
    format!("{:016x}.{}", priority.to_bits(), id)
}

/// The cursor of the page that starts just after `item`.
pub fn cursor_after(item: &ReviewItem) -> String {
    cursor(item.priority, item.id)
}

fn parse_cursor(c: &str) -> Option<(f64, i64)> {
    let (bits, id) = c.split_once('.')?;
    Some((
        f64::from_bits(u64::from_str_radix(bits, 16).ok()?),
        id.parse().ok()?,
    ))
}

/// How much settling a pair changes, from its score and its two clusters' sizes: the queue's
/// order. The engine that scored the pair knows how to weigh it, so the caller hands it in.
pub type Priority<'a> = &'a dyn Fn(f64, usize, usize) -> f64;

/// Whether `c` is a cursor [`page`] issued.
pub fn valid_cursor(c: &str) -> bool {
    parse_cursor(c).is_some()
}

fn open_pairs(
    conn: &Connection,
    kind: Option<RecordKind>,
    priority: Priority,
) -> Result<Vec<Open>> {
    let mut st = conn.prepare(
        "SELECT q.id, q.kind, q.a_row, q.b_row, q.score, q.evidence, q.created_at,
                (SELECT COUNT(*) FROM record_entities x JOIN source_records r ON r.id = x.row_id
                  WHERE x.entity_id = ea.entity_id AND r.deleted_at IS NULL),
                (SELECT COUNT(*) FROM record_entities x JOIN source_records r ON r.id = x.row_id
                  WHERE x.entity_id = eb.entity_id AND r.deleted_at IS NULL)
         FROM review_queue q
         LEFT JOIN record_entities ea ON ea.row_id = q.a_row
         LEFT JOIN record_entities eb ON eb.row_id = q.b_row
         WHERE (?1 IS NULL OR q.kind = ?1)",
    )?;
    let rows = st.query_map(params![kind.map(|k| k.as_str())], |r| {
        let size = |n: i64| usize::try_from(n).unwrap_or(0).max(1);
        Ok(Open {
            id: r.get(0)?,
            kind: r.get(1)?,
            a: r.get(2)?,
            b: r.get(3)?,
            score: r.get(4)?,
            evidence: r.get(5)?,
            created_at: r.get(6)?,
            size_a: size(r.get(7)?),
            size_b: size(r.get(8)?),
            priority: 0.0,
        })
    })?;
    let mut open: Vec<Open> = rows.collect::<rusqlite::Result<_>>()?;
    for o in &mut open {
        o.priority = priority(o.score, o.size_a, o.size_b);
    }
    // Most consequential first; ties by id, so pages never overlap or skip.
    open.sort_by(|x, y| y.priority.total_cmp(&x.priority).then(x.id.cmp(&y.id)));
    Ok(open)
}

/// The partner records of the cluster `row` belongs to (itself alone when it has none yet).
fn cluster_of(conn: &Connection, row: i64) -> Result<Vec<ReviewRecord>> {
    let mut st = conn.prepare_cached(
        "SELECT m.row_id FROM record_entities e JOIN record_entities m ON m.entity_id = e.entity_id
         JOIN source_records r ON r.id = m.row_id
         WHERE e.row_id = ?1 AND r.deleted_at IS NULL ORDER BY m.row_id LIMIT ?2",
    )?;
    let mut rows: Vec<i64> = st
        .query_map(params![row, CLUSTER_SHOWN as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if rows.is_empty() {
        rows.push(row);
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(side) = side(conn, r)? {
            out.push(side);
        }
    }
    Ok(out)
}

/// A page of open review items of `kind` (or all kinds), ordered by what settling each changes
/// (the two clusters' sizes × how unsure the engine is), after `cursor` when given. Each item
/// carries both records and both whole clusters (up to [`CLUSTER_SHOWN`] members each).
pub fn page(
    conn: &Connection,
    kind: Option<RecordKind>,
    limit: usize,
    cursor: Option<&str>,
    priority: Priority,
) -> Result<ReviewPage> {
    let open = open_pairs(conn, kind, priority)?;
    let after = cursor.and_then(parse_cursor);
    let start = match after {
        None => 0,
        Some((p, id)) => open.partition_point(|o| {
            o.priority.total_cmp(&p).is_gt() || (o.priority.to_bits() == p.to_bits() && o.id <= id)
        }),
    };
    let mut items = Vec::new();
    let mut last = None;
    for o in open.iter().skip(start) {
        if items.len() == limit {
            break;
        }
        last = Some(o);
        let (Some(a), Some(b)) = (side(conn, o.a)?, side(conn, o.b)?) else {
            continue;
        };
        items.push(ReviewItem {
            id: o.id,
            kind: o.kind.clone(),
            score: o.score,
            priority: o.priority,
            evidence: serde_json::from_str(&o.evidence).unwrap_or_default(),
            a,
            b,
            cluster_a: ClusterView {
                size: o.size_a,
                members: cluster_of(conn, o.a)?,
            },
            cluster_b: ClusterView {
                size: o.size_b,
                members: cluster_of(conn, o.b)?,
            },
            created_at: o.created_at.clone(),
        });
    }
    let more = last.is_some_and(|l| open.last().is_some_and(|end| end.id != l.id));
    Ok(ReviewPage {
        items,
        next_cursor: last.filter(|_| more).map(cursor_of),
    })
}

/// The pair behind a review item: (kind, row a, row b).
pub fn item(conn: &Connection, id: i64) -> Result<Option<(RecordKind, i64, i64)>> {
    let row: Option<(String, i64, i64)> = conn
        .query_row(
            "SELECT kind, a_row, b_row FROM review_queue WHERE id = ?1",
            params![id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.and_then(|(k, a, b)| RecordKind::parse(&k).map(|k| (k, a, b))))
}

/// Row ids of the partner records behind an entity (live or not).
pub fn members(conn: &Connection, entity_id: &str) -> Result<Vec<(i64, String, String)>> {
    let mut st = conn.prepare(
        "SELECT r.id, r.partner_id, r.source_id FROM record_entities e
         JOIN source_records r ON r.id = e.row_id
         WHERE e.entity_id = ?1 AND r.deleted_at IS NULL ORDER BY r.id",
    )?;
    let rows = st.query_map(params![entity_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
