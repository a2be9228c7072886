//! Queries only the admin console needs: how many open review pairs a filter matches, the next
//! pair of one partner's, and a run's rejections matching a search.

use rusqlite::{params, Connection};

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
    settings: &crate::dedupe::Settings,
) -> Result<Option<ReviewItem>> {
    let mut cursor = cursor.map(str::to_string);
    loop {
        let page = review::page(conn, kind, STEP, cursor.as_deref(), settings)?;
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
