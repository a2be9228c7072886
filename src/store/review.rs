//! The review queue and admins' match decisions (`review_queue`, `match_decisions`): uncertain
//! pairs are kept for an admin to settle, and every merge or split they decide is stored by the
//! partner records' row ids so it holds across future syncs.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::Result;
use crate::dedupe::ManualLink;
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
    pub evidence: Vec<String>,
    pub a: ReviewRecord,
    pub b: ReviewRecord,
    pub created_at: String,
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

pub fn list(conn: &Connection, kind: Option<RecordKind>, limit: usize) -> Result<Vec<ReviewItem>> {
    let mut st = conn.prepare(
        "SELECT id, kind, a_row, b_row, score, evidence, created_at FROM review_queue
         WHERE (?1 IS NULL OR kind = ?1) ORDER BY score DESC, id LIMIT ?2",
    )?;
    let rows: Vec<(i64, String, i64, i64, f64, String, String)> = st
        .query_map(params![kind.map(|k| k.as_str()), limit as i64], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, kind, a, b, score, evidence, created_at) in rows {
        let (Some(a), Some(b)) = (side(conn, a)?, side(conn, b)?) else {
            continue;
        };
        out.push(ReviewItem {
            id,
            kind,
            score,
            evidence: serde_json::from_str(&evidence).unwrap_or_default(),
            a,
            b,
            created_at,
        });
    }
    Ok(out)
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
