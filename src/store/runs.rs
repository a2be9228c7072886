//! Sync runs, their rejections and warnings: what each partner's sync did, when, and why it failed. A
//! run row is written before the sync's transaction so that a failure or crash still leaves a record
//! of it. Rejections are records lost; warnings are about records that landed with a caveat.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::Result;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    pub feeds_fetched: usize,
    pub feeds_unchanged: usize,
    pub records_seen: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub rejected: usize,
    /// Records that landed with a caveat (a value dropped or read another way); not rejected.
    pub warned: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRejection {
    pub feed: String,
    pub record_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub partner: String,
    pub trigger: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// `running`, `ok`, `unchanged`, `failed` or `interrupted`.
    pub result: String,
    pub counts: RunCounts,
    pub error: Option<String>,
}

pub fn begin(conn: &Connection, partner: &str, trigger: &str, now: &str) -> Result<i64> {
    conn.execute(
        "INSERT INTO runs (partner_id, trigger, started_at, result) VALUES (?1, ?2, ?3, 'running')",
        params![partner, trigger, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Closes a run. Called inside the sync's transaction on success, or on its own after a failure.
pub fn finish(
    conn: &Connection,
    run_id: i64,
    result: &str,
    counts: &RunCounts,
    error: Option<&str>,
    now: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE runs SET finished_at = ?2, result = ?3, feeds_fetched = ?4, feeds_unchanged = ?5,
             records_seen = ?6, inserted = ?7, updated = ?8, unchanged = ?9, deleted = ?10,
             rejected = ?11, error = ?12, warned = ?13
         WHERE id = ?1",
        params![
            run_id,
            now,
            result,
            counts.feeds_fetched as i64,
            counts.feeds_unchanged as i64,
            counts.records_seen as i64,
            counts.inserted as i64,
            counts.updated as i64,
            counts.unchanged as i64,
            counts.deleted as i64,
            counts.rejected as i64,
            error,
            counts.warned as i64
        ],
    )?;
    Ok(())
}

/// What a stored reason says of its record: lost, or landed with a caveat.
#[derive(Debug, Clone, Copy)]
enum Severity {
    Rejected,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Rejected => "rejected",
            Severity::Warning => "warning",
        }
    }
}

pub fn add_rejections(
    conn: &Connection,
    run_id: i64,
    rejections: &[StoredRejection],
) -> Result<()> {
    add_reasons(conn, run_id, rejections, Severity::Rejected)
}

/// Keeps the warnings about records that landed, beside the run's rejections.
pub fn add_warnings(conn: &Connection, run_id: i64, warnings: &[StoredRejection]) -> Result<()> {
    add_reasons(conn, run_id, warnings, Severity::Warning)
}

fn add_reasons(
    conn: &Connection,
    run_id: i64,
    reasons: &[StoredRejection],
    severity: Severity,
) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO rejections (run_id, feed_key, source_id, reason, severity)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for r in reasons {
        st.execute(params![
            run_id,
            r.feed,
            r.record_id,
            r.reason,
            severity.as_str()
        ])?;
    }
    Ok(())
}

const RUN_COLUMNS: &str = "id, partner_id, trigger, started_at, finished_at, result, feeds_fetched,
    feeds_unchanged, records_seen, inserted, updated, unchanged, deleted, rejected, error, warned";

fn run_from_row(r: &rusqlite::Row) -> rusqlite::Result<Run> {
    let n = |i: usize| -> rusqlite::Result<usize> { Ok(r.get::<_, i64>(i)?.max(0) as usize) };
    Ok(Run {
        id: r.get(0)?,
        partner: r.get(1)?,
        trigger: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        result: r.get(5)?,
        counts: RunCounts {
            feeds_fetched: n(6)?,
            feeds_unchanged: n(7)?,
            records_seen: n(8)?,
            inserted: n(9)?,
            updated: n(10)?,
            unchanged: n(11)?,
            deleted: n(12)?,
            rejected: n(13)?,
            warned: n(15)?,
        },
        error: r.get(14)?,
    })
}

pub fn get(conn: &Connection, run_id: i64) -> Result<Option<Run>> {
    Ok(conn
        .query_row(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"),
            params![run_id],
            run_from_row,
        )
        .optional()?)
}

/// The records a run rejected, with their reasons.
pub fn rejections(conn: &Connection, run_id: i64) -> Result<Vec<StoredRejection>> {
    reasons(conn, run_id, Severity::Rejected)
}

/// The warnings of a run: records that landed with a caveat.
pub fn warnings(conn: &Connection, run_id: i64) -> Result<Vec<StoredRejection>> {
    reasons(conn, run_id, Severity::Warning)
}

fn reasons(conn: &Connection, run_id: i64, severity: Severity) -> Result<Vec<StoredRejection>> {
    let mut st = conn.prepare(
        "SELECT feed_key, source_id, reason FROM rejections WHERE run_id = ?1 AND severity = ?2
         ORDER BY rowid",
    )?;
    let rows = st.query_map(params![run_id, severity.as_str()], |r| {
        Ok(StoredRejection {
            feed: r.get(0)?,
            record_id: r.get(1)?,
            reason: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Most recent runs, newest first, optionally for one partner.
pub fn recent(conn: &Connection, partner: Option<&str>, limit: usize) -> Result<Vec<Run>> {
    let mut st = conn.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR partner_id = ?1) ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(params![partner, limit as i64], run_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest run of a partner, and its latest successful one.
pub fn latest(conn: &Connection, partner: &str) -> Result<(Option<Run>, Option<Run>)> {
    let last = conn
        .query_row(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE partner_id = ?1 ORDER BY id DESC LIMIT 1"
            ),
            params![partner],
            run_from_row,
        )
        .optional()?;
    let ok = conn
        .query_row(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE partner_id = ?1 AND result IN ('ok', 'unchanged')
                 ORDER BY id DESC LIMIT 1"
            ),
            params![partner],
            run_from_row,
        )
        .optional()?;
    Ok((last, ok))
}

/// The latest failed run of a partner, and how many runs in a row have failed.
pub fn failures(conn: &Connection, partner: &str) -> Result<(Option<Run>, usize)> {
    let last = conn
        .query_row(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE partner_id = ?1 AND result IN ('failed', 'interrupted')
                 ORDER BY id DESC LIMIT 1"
            ),
            params![partner],
            run_from_row,
        )
        .optional()?;
    let streak: i64 = conn.query_row(
        "SELECT COUNT(*) FROM runs WHERE partner_id = ?1 AND result IN ('failed', 'interrupted')
           AND id > COALESCE((SELECT MAX(id) FROM runs WHERE partner_id = ?1 AND result IN ('ok', 'unchanged')), 0)",
        params![partner],
        |r| r.get(0),
    )?;
    Ok((last, streak.max(0) as usize))
}

/// A run's commonest rejection reasons with how many records each turned away, most frequent
/// first, at most `limit` of them (the status page's summary; the admin API lists every one).
pub fn rejection_reasons(
    conn: &Connection,
    run_id: i64,
    limit: usize,
) -> Result<Vec<(String, usize)>> {
    let mut st = conn.prepare(
        "SELECT reason, COUNT(*) FROM rejections WHERE run_id = ?1
         GROUP BY reason ORDER BY COUNT(*) DESC, MIN(rowid) LIMIT ?2",
    )?;
    let rows = st.query_map(params![run_id, limit as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as usize))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
