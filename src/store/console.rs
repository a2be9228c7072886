//! Queries only the admin console needs: how many open review pairs a filter matches, the next
//! pair of one partner's, and a run's rejections matching a search.

use rusqlite::{params, Connection, OptionalExtension};

use super::review::{self, ReviewItem};
use super::runs::StoredRejection;
use super::Result;
use crate::model::RecordKind;

/// Open review pairs of `kind` (or all) with at least one side from `partner` (or any).
pub fn open_count(
    conn: &Connection,
    kind: Option<RecordKind>,
    partner: Option<&str>,
) -> Result<usize> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM review_queue q
         JOIN source_records a ON a.id = q.a_row JOIN source_records b ON b.id = q.b_row
         WHERE (?1 IS NULL OR q.kind = ?1) AND (?2 IS NULL OR a.partner_id = ?2 OR b.partner_id = ?2)",
        params![kind.map(|k| k.as_str()), partner],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as usize)
}

/// Review pairs looked at per step while searching for a partner's next pair.
const STEP: usize = 25;

/// The first open pair after `cursor`, in queue order, with a side from `partner` when given.
pub fn next_item(
    conn: &Connection,
    kind: Option<RecordKind>,
    partner: Option<&str>,
    cursor: Option<&str>,
    priority: review::Priority,
) -> Result<Option<ReviewItem>> {
    let mut cursor = cursor.map(str::to_string);
    loop {
        let page = review::page(conn, kind, STEP, cursor.as_deref(), priority)?;
        let hit = page
            .items
            .into_iter()
            .find(|i| partner.is_none_or(|p| i.a.partner == p || i.b.partner == p));
        if hit.is_some() {
            return Ok(hit);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(None),
        }
    }
}

/// A run's rejections whose feed, record id or reason contain `search` (any case), at most
/// `limit` of them, and how many matched in all.
pub fn rejections_matching(
    conn: &Connection,
    run_id: i64,
    search: &str,
    limit: usize,
) -> Result<(Vec<StoredRejection>, usize)> {
    let pattern = format!(
        "%{}%",
        search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let filter = "FROM rejections WHERE run_id = ?1 AND (feed_key LIKE ?2 ESCAPE '\\'
        OR COALESCE(source_id, '') LIKE ?2 ESCAPE '\\' OR reason LIKE ?2 ESCAPE '\\')";
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {filter}"),
        params![run_id, pattern],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(&format!(
        "SELECT feed_key, source_id, reason {filter} ORDER BY rowid LIMIT ?3"
    ))?;
    let rows = st.query_map(params![run_id, pattern, limit as i64], |r| {
        Ok(StoredRejection {
            feed: r.get(0)?,
            record_id: r.get(1)?,
            reason: r.get(2)?,
        })
    })?;
    Ok((
        rows.collect::<rusqlite::Result<_>>()?,
        total.max(0) as usize,
    ))
}

/// Held runs of a partner since its last applied one: syncs the mass-deletion guard stopped.
pub fn held_since_applied(conn: &Connection, partner: &str) -> Result<Vec<super::runs::Run>> {
    let recent = super::runs::recent(conn, Some(partner), 20)?;
    Ok(recent
        .into_iter()
        .take_while(|r| r.result != "ok" && r.result != "unchanged")
        .filter(|r| r.result == "held")
        .collect())
}

/// An admin keeps a partner's records as they are: its held runs since the last applied one
/// become `kept`, so the hold is settled without letting the deletions through. The guard
/// checks the partner's next sync again. Returns how many runs were kept.
pub fn keep_held(conn: &Connection, partner: &str) -> Result<usize> {
    let held = held_since_applied(conn, partner)?;
    let mut st =
        conn.prepare_cached("UPDATE runs SET result = 'kept' WHERE id = ?1 AND result = 'held'")?;
    let mut kept = 0;
    for run in held {
        kept += st.execute(params![run.id])?;
    }
    Ok(kept)
}

/// One line of an entity's change history.
#[derive(Debug, Clone)]
pub struct Change {
    pub number: i64,
    pub action: String,
    pub merged_into: Option<String>,
    pub at: String,
}

/// An entity's latest `limit` changes, newest first: a range of the `changes_entity` index.
pub fn entity_changes(conn: &Connection, entity_id: &str, limit: usize) -> Result<Vec<Change>> {
    let mut st = conn.prepare(
        "SELECT change_number, action, merged_into, at FROM changes
         WHERE entity_id = ?1 ORDER BY change_number DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![entity_id, limit as i64], |r| {
        Ok(Change {
            number: r.get(0)?,
            action: r.get(1)?,
            merged_into: r.get(2)?,
            at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The entity an id answers to now: itself when live, the end of its merge chain when merged
/// away (at most `hops` steps, so a cycle cannot loop), `None` when unknown or withdrawn.
pub fn live_id(conn: &Connection, id: &str, hops: usize) -> Result<Option<String>> {
    let mut id = id.to_string();
    for _ in 0..hops {
        let row: Option<(Option<String>, Option<String>)> = conn
            .query_row(
                "SELECT deleted_at, merged_into FROM entities WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        match row {
            None => return Ok(None),
            Some((_, Some(next))) => id = next,
            Some((None, None)) => return Ok(Some(id)),
            Some((Some(_), None)) => return Ok(None),
        }
    }
    Ok(None)
}

/// One of a partner's records with the other partners' records that share its entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedEntity {
    pub record_id: String,
    pub payload: String,
    /// (row, partner, record id) of each other partner's record in the same entity.
    pub others: Vec<(i64, String, String)>,
}

/// Each live record of `partner` (in row order) with the other partners' live records in its
/// entity: after a trial resolution inside a transaction, what the partner's records would merge
/// with.
pub fn shared_entities(conn: &Connection, partner: &str) -> Result<Vec<SharedEntity>> {
    let mut st = conn.prepare(
        "SELECT p.id, p.source_id, p.payload, o.id, o.partner_id, o.source_id
         FROM source_records p
         LEFT JOIN record_entities pe ON pe.row_id = p.id
         LEFT JOIN record_entities oe ON oe.entity_id = pe.entity_id AND oe.row_id != p.id
         LEFT JOIN source_records o ON o.id = oe.row_id AND o.deleted_at IS NULL AND o.partner_id != ?1
         WHERE p.partner_id = ?1 AND p.deleted_at IS NULL
         ORDER BY p.id, o.id",
    )?;
    let mut rows = st.query(params![partner])?;
    let mut out: Vec<SharedEntity> = Vec::new();
    let mut last = None;
    while let Some(r) = rows.next()? {
        let row: i64 = r.get(0)?;
        if last != Some(row) {
            last = Some(row);
            out.push(SharedEntity {
                record_id: r.get(1)?,
                payload: r.get(2)?,
                others: Vec::new(),
            });
        }
        let other: Option<i64> = r.get(3)?;
        if let (Some(o), Some(entry)) = (other, out.last_mut()) {
            entry.others.push((o, r.get(4)?, r.get(5)?));
        }
    }
    Ok(out)
}

/// The entity each of `rows` belongs to as committed (rows with none are left out).
pub fn entities_of_rows(
    conn: &Connection,
    rows: &[i64],
) -> Result<std::collections::HashMap<i64, String>> {
    let mut st = conn.prepare_cached("SELECT entity_id FROM record_entities WHERE row_id = ?1")?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let entity: Option<String> = st.query_row(params![row], |r| r.get(0)).optional()?;
        if let Some(e) = entity {
            out.insert(*row, e);
        }
    }
    Ok(out)
}

/// Partner records of an entity at most shown on its page.
pub const MAX_MEMBERS: usize = 200;

/// An entity's live partner records (row, partner, record id, payload), at most [`MAX_MEMBERS`].
pub fn member_records(
    conn: &Connection,
    entity_id: &str,
) -> Result<Vec<(i64, String, String, String)>> {
    let mut st = conn.prepare(
        "SELECT r.id, r.partner_id, r.source_id, r.payload FROM record_entities e
         JOIN source_records r ON r.id = e.row_id
         WHERE e.entity_id = ?1 AND r.deleted_at IS NULL ORDER BY r.id LIMIT ?2",
    )?;
    let rows = st.query_map(params![entity_id, MAX_MEMBERS as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entitys_history_is_newest_first_and_read_through_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let conn = store.writer();
        for i in 0..300 {
            let id = format!("org_{}", i % 30);
            conn.execute(
                "INSERT INTO changes (kind, entity_id, action, merged_into, at)
                 VALUES ('organisations', ?1, 'upsert', NULL, ?2)",
                params![id, format!("2026-01-01T00:00:{:02}Z", i % 60)],
            )
            .unwrap();
        }
        let history = entity_changes(&conn, "org_7", 4).unwrap();
        let numbers: Vec<i64> = history.iter().map(|c| c.number).collect();
        // org_7's changes are numbers 8, 38, 68, … 278 (every 30th, from the 8th).
        assert_eq!(numbers, vec![278, 248, 218, 188]);
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT change_number, action, merged_into, at FROM changes
                 WHERE entity_id = ?1 ORDER BY change_number DESC LIMIT ?2",
            )
            .unwrap()
            .query_map(params!["org_7", 4], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let plan = plan.join("; ");
        assert!(plan.contains("changes_entity"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "sorted by the index itself: {plan}"
        );
    }
}
