//! The mass-deletion guard's memory: a feed's largest live record count per day (its high-water
//! mark over `delete_guard_days`), and which live records a sync must keep because their update
//! failed (an item page that did not load, a row that did not parse).

use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Transaction};

use super::Result;

/// The largest live count a feed had on any day since `since_day` (`YYYY-MM-DD`), and that day.
pub fn high_water(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    since_day: &str,
) -> Result<Option<(usize, String)>> {
    let row: Option<(i64, String)> = tx
        .query_row(
            "SELECT live, day FROM feed_high_water
             WHERE partner_id = ?1 AND feed_key = ?2 AND day >= ?3
             ORDER BY live DESC, day DESC LIMIT 1",
            params![partner, feed_key, since_day],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map(|(n, d)| (n.max(0) as usize, d)))
}

/// Records a feed's live count after a sync: the day keeps its largest count. `reset` (a deletion
/// an admin forced) forgets the older days, so the new size is the mark from now on.
pub fn remember(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    day: &str,
    live: usize,
    reset: bool,
    forget_before: &str,
) -> Result<()> {
    if reset {
        tx.execute(
            "DELETE FROM feed_high_water WHERE partner_id = ?1 AND feed_key = ?2",
            params![partner, feed_key],
        )?;
    } else {
        tx.execute(
            "DELETE FROM feed_high_water WHERE partner_id = ?1 AND feed_key = ?2 AND day < ?3",
            params![partner, feed_key, forget_before],
        )?;
    }
    let live = live as i64;
    tx.execute(
        "INSERT INTO feed_high_water (partner_id, feed_key, day, live) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (partner_id, feed_key, day) DO UPDATE
         SET live = CASE WHEN ?5 THEN excluded.live ELSE max(live, excluded.live) END",
        params![partner, feed_key, day, live, reset],
    )?;
    Ok(())
}

/// Of the live rows `rows` (ids), those whose partner id or URL is in `kept`: records the sync
/// could not read this time and must not delete. Also returns which of `kept` matched a row.
pub fn kept_rows(
    tx: &Transaction,
    rows: &[i64],
    kept: &HashSet<String>,
) -> Result<(HashSet<i64>, HashSet<String>)> {
    let (mut out, mut matched) = (HashSet::new(), HashSet::new());
    if kept.is_empty() {
        return Ok((out, matched));
    }
    let mut st = tx.prepare_cached("SELECT source_id, url FROM source_records WHERE id = ?1")?;
    for id in rows {
        let (sid, url): (String, Option<String>) =
            st.query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let hit = [Some(sid), url]
            .into_iter()
            .flatten()
            .find(|k| kept.contains(k));
        if let Some(k) = hit {
            out.insert(*id);
            matched.insert(k);
        }
    }
    Ok((out, matched))
}
