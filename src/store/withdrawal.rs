//! A removed partner's lifecycle (`partners.removed_at`, `withdraw_after`, `withdrawn_at`): when
//! its `[[partners]]` block leaves the config its records stay published for a grace period,
//! then are withdrawn — marked deleted and left for the next resolution to re-resolve.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{block_keys, records, timestamp, Result};

/// Days a removed partner's records stay published when the caller names no grace period.
pub const DEFAULT_GRACE_DAYS: u32 = 7;

/// What withdrawing a partner took out of publication.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawn {
    pub organisations: usize,
    pub events: usize,
}

/// Clears the removal of every partner in `configured`, and dates the removal of every other
/// partner the store knows and has not yet seen removed: withdrawn `grace_days` from `now`.
pub fn note_configured(
    tx: &Transaction,
    configured: &[&str],
    grace_days: u32,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut back = tx.prepare_cached(
        "UPDATE partners SET removed_at = NULL, withdraw_after = NULL, withdrawn_at = NULL
         WHERE id = ?1 AND removed_at IS NOT NULL",
    )?;
    for id in configured {
        if back.execute(params![id])? > 0 {
            tracing::info!(partner = %id, "partner configured again; its records return with its next sync");
        }
    }
    let known: Vec<String> = tx
        .prepare("SELECT id FROM partners WHERE removed_at IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let due = now + Duration::days(i64::from(grace_days));
    let mut gone = tx
        .prepare_cached("UPDATE partners SET removed_at = ?2, withdraw_after = ?3 WHERE id = ?1")?;
    for id in known.iter().filter(|id| !configured.contains(&id.as_str())) {
        gone.execute(params![id, timestamp(now), timestamp(due)])?;
        tracing::warn!(partner = %id, withdraw_after = %timestamp(due),
            "partner removed from the config; its records are withdrawn after the grace period");
    }
    // The grace period is the config's as it is now: a changed one re-dates pending withdrawals.
    let pending: Vec<(String, String)> = tx
        .prepare(
            "SELECT id, removed_at FROM partners WHERE removed_at IS NOT NULL AND withdrawn_at IS NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut redate = tx.prepare_cached("UPDATE partners SET withdraw_after = ?2 WHERE id = ?1")?;
    for (id, removed) in pending {
        let Ok(removed) = DateTime::parse_from_rfc3339(&removed) else {
            continue;
        };
        let due = removed.with_timezone(&Utc) + Duration::days(i64::from(grace_days));
        redate.execute(params![id, timestamp(due)])?;
    }
    Ok(())
}

/// Withdraws every removed partner whose grace period has run out; returns their ids.
pub fn withdraw_due(tx: &Transaction, now: DateTime<Utc>) -> Result<Vec<String>> {
    let due: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM partners WHERE withdraw_after IS NOT NULL AND withdraw_after <= ?1
             AND withdrawn_at IS NULL ORDER BY id",
        )?
        .query_map(params![timestamp(now)], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in &due {
        let w = withdraw(tx, id, now)?;
        tracing::warn!(partner = %id, organisations = w.organisations, events = w.events,
            "removed partner's grace period over: its records are withdrawn");
    }
    Ok(due)
}

/// Marks every live record of `partner` deleted and due for resolution, and the partner as
/// withdrawn. The caller resolves (or leaves the kinds marked for the next resolution).
pub fn withdraw(tx: &Transaction, partner: &str, now: DateTime<Utc>) -> Result<Withdrawn> {
    let live: Vec<(i64, String)> = tx
        .prepare_cached(
            "SELECT id, kind FROM source_records WHERE partner_id = ?1 AND deleted_at IS NULL",
        )?
        .query_map(params![partner], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let rows: Vec<i64> = live.iter().map(|(r, _)| *r).collect();
    let now_s = timestamp(now);
    records::mark_deleted(tx, &rows, &now_s)?;
    block_keys::mark_dirty(tx, &rows)?;
    let mut out = Withdrawn::default();
    for (_, kind) in &live {
        match kind.as_str() {
            "organisations" => out.organisations += 1,
            _ => out.events += 1,
        }
    }
    let mut kinds: Vec<&str> = live.iter().map(|(_, k)| k.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        tx.execute(
            "INSERT OR IGNORE INTO dirty_kinds (kind) VALUES (?1)",
            params![kind],
        )?;
    }
    // Configured again later, the partner's feeds must be read whole: a 304 or a resumed
    // cursor would leave its withdrawn records withdrawn.
    tx.execute(
        "UPDATE feeds SET etag = NULL, last_modified = NULL, cursor = NULL WHERE partner_id = ?1",
        params![partner],
    )?;
    tx.execute(
        "DELETE FROM feed_high_water WHERE partner_id = ?1",
        params![partner],
    )?;
    // Its published series go too: a withdrawn partner's sessions must not borrow them later.
    tx.execute(
        "DELETE FROM rpde_series WHERE partner_id = ?1",
        params![partner],
    )?;
    tx.execute(
        "UPDATE partners SET withdrawn_at = ?2, removed_at = COALESCE(removed_at, ?2),
             withdraw_after = COALESCE(withdraw_after, ?2)
         WHERE id = ?1",
        params![partner, now_s],
    )?;
    Ok(out)
}

/// Whether the store knows `partner` and still publishes its records (configured, or removed
/// and within its grace period).
pub fn publishing(conn: &Connection, partner: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM partners WHERE id = ?1 AND withdrawn_at IS NULL",
            params![partner],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The name of `partner` if the store has ever known it (configured, removed, or withdrawn).
pub fn known(conn: &Connection, partner: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT name FROM partners WHERE id = ?1",
            params![partner],
            |r| r.get(0),
        )
        .optional()?)
}
