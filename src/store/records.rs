//! Partners' raw records (`source_records`) and per-feed cache validators (`feeds`): upsert by the
//! partner's own id with a content hash, soft-delete what a full feed no longer lists, and load the
//! live records that dedupe resolves.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use super::{Result, StoreError};
use crate::model::{Payload, RecordKind, SourceRecord};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpsertStats {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows inserted or rewritten: what the next resolution must look at (when asked for).
    pub changed: Vec<i64>,
    /// The feed had no records before: every record was new, and none can be missing.
    pub fresh: bool,
}

/// A live partner record as dedupe sees it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub row_id: i64,
    pub partner: String,
    pub priority: i64,
    pub record_id: String,
    pub url: Option<String>,
    /// When this partner's copy last changed (partner-stated, else when we saw it change).
    pub changed_at: DateTime<Utc>,
    pub payload: Payload,
    /// The canonical entity this record belonged to after the last resolution.
    pub entity_id: Option<String>,
}

/// A record ready to store: its payload serialised once, with the hash that tells whether it
/// changed. Made off the writer lock (sync's prepare step runs one per feed in parallel), so the
/// single writer only writes; the parsed payload is dropped here, the JSON is all that is kept.
pub struct Encoded {
    pub source_id: String,
    pub url: Option<String>,
    /// RFC 3339, as stored.
    pub updated_at: Option<String>,
    pub kind: RecordKind,
    pub payload: String,
    pub hash: String,
}

pub fn encode(record: SourceRecord) -> std::result::Result<Encoded, serde_json::Error> {
    let payload = serde_json::to_string(&record.payload)?;
    let mut h = Sha256::new();
    // serde_json output of our own types is deterministic (struct field order).
    h.update(payload.as_bytes());
    h.update([0]);
    h.update(record.url.as_deref().unwrap_or("").as_bytes());
    let hash = hex::encode(&h.finalize()[..16]);
    Ok(Encoded {
        kind: record.payload.kind(),
        updated_at: record.updated_at.map(|t| t.to_rfc3339()),
        source_id: record.source_id,
        url: record.url,
        payload,
        hash,
    })
}

/// Inserts new records, rewrites changed ones (and revives deleted ones) and leaves the rest as
/// they are: an unchanged record's row is not written at all (its `last_seen` is when it was last
/// written; that it is still listed shows in its feed's `last_fetched_at`), so a sync in which 1%
/// changed writes 1% of the rows, not every one.
/// `keep_changed`: whether the caller needs the rows changed (in [`UpsertStats::changed`]).
pub fn upsert(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    records: &[Encoded],
    now: &str,
    keep_changed: bool,
) -> Result<UpsertStats> {
    let mut stats = UpsertStats::default();
    // A feed seen for the first time (every partner's feed at a first sync) has nothing to look
    // up or compare: each record is new.
    let fresh: bool = !tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM source_records WHERE partner_id = ?1 AND feed_key = ?2)",
        )?
        .query_row(params![partner, feed_key], |r| r.get(0))?;
    stats.fresh = fresh;
    if fresh && !keep_changed {
        insert_new(tx, partner, feed_key, records, now)?;
        stats.inserted = records.len();
        return Ok(stats);
    }
    let mut find = tx.prepare_cached(
        "SELECT id, content_hash, deleted_at IS NOT NULL FROM source_records
         WHERE partner_id = ?1 AND feed_key = ?2 AND source_id = ?3",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO source_records (partner_id, feed_key, kind, source_id, content_hash, payload, url,
             source_updated_at, first_seen, last_seen, changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE source_records SET kind = ?2, content_hash = ?3, payload = ?4, url = ?5,
             source_updated_at = ?6, last_seen = ?7, changed_at = ?7, deleted_at = NULL
         WHERE id = ?1",
    )?;
    for rec in records {
        let existing: Option<(i64, String, bool)> = if fresh {
            None
        } else {
            find.query_row(params![partner, feed_key, rec.source_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?
        };
        match existing {
            None => {
                insert.execute(params![
                    partner,
                    feed_key,
                    rec.kind.as_str(),
                    rec.source_id,
                    rec.hash,
                    rec.payload,
                    rec.url,
                    rec.updated_at,
                    now
                ])?;
                stats.inserted += 1;
                if keep_changed {
                    stats.changed.push(tx.last_insert_rowid());
                }
            }
            Some((id, old_hash, deleted)) if old_hash != rec.hash || deleted => {
                update.execute(params![
                    id,
                    rec.kind.as_str(),
                    rec.hash,
                    rec.payload,
                    rec.url,
                    rec.updated_at,
                    now
                ])?;
                stats.updated += 1;
                if keep_changed {
                    stats.changed.push(id);
                }
            }
            Some(_) => stats.unchanged += 1,
        }
    }
    Ok(stats)
}

/// Inserts records all new to their feed, many rows per statement (a national first sync
/// inserts a million).
fn insert_new(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    records: &[Encoded],
    now: &str,
) -> Result<()> {
    super::insert_many(
        tx,
        "INSERT INTO source_records (partner_id, feed_key, kind, source_id, content_hash,
             payload, url, source_updated_at, first_seen, last_seen, changed_at) VALUES",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "",
        records.len(),
        11,
        |st, i, at| {
            let rec = &records[i];
            st.raw_bind_parameter(at, partner)?;
            st.raw_bind_parameter(at + 1, feed_key)?;
            st.raw_bind_parameter(at + 2, rec.kind.as_str())?;
            st.raw_bind_parameter(at + 3, &rec.source_id)?;
            st.raw_bind_parameter(at + 4, &rec.hash)?;
            st.raw_bind_parameter(at + 5, &rec.payload)?;
            st.raw_bind_parameter(at + 6, &rec.url)?;
            st.raw_bind_parameter(at + 7, &rec.updated_at)?;
            for t in 8..11 {
                st.raw_bind_parameter(at + t, now)?;
            }
            Ok(())
        },
    )
}

/// Live records of one feed whose ids are not in `seen`: the ones a full feed no longer lists.
pub fn missing_from_feed(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    seen: &HashSet<&str>,
) -> Result<Vec<i64>> {
    let mut st = tx.prepare_cached(
        "SELECT id, source_id FROM source_records
         WHERE partner_id = ?1 AND feed_key = ?2 AND deleted_at IS NULL",
    )?;
    let rows = st.query_map(params![partner, feed_key], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut missing = Vec::new();
    for row in rows {
        let (id, source_id) = row?;
        if !seen.contains(source_id.as_str()) {
            missing.push(id);
        }
    }
    Ok(missing)
}

pub fn mark_deleted(tx: &Transaction, ids: &[i64], now: &str) -> Result<()> {
    let mut st = tx.prepare_cached(
        "UPDATE source_records SET deleted_at = ?2, changed_at = ?2 WHERE id = ?1",
    )?;
    for id in ids {
        st.execute(params![id, now])?;
    }
    Ok(())
}

/// Number of live records a partner has, per feed.
pub fn live_count(tx: &Transaction, partner: &str, feed_key: &str) -> Result<usize> {
    let n: i64 = tx.query_row(
        "SELECT COUNT(*) FROM source_records WHERE partner_id = ?1 AND feed_key = ?2 AND deleted_at IS NULL",
        params![partner, feed_key],
        |r| r.get(0),
    )?;
    Ok(n as usize)
}

const STORED_COLUMNS: &str =
    "SELECT r.id, r.partner_id, COALESCE(p.priority, 0), r.source_id, r.url,
        COALESCE(r.source_updated_at, r.changed_at), r.payload, e.entity_id
     FROM source_records r LEFT JOIN partners p ON p.id = r.partner_id
     LEFT JOIN record_entities e ON e.row_id = r.id";

/// A stored row as read, before its payload is parsed.
struct RawRecord {
    row_id: i64,
    partner: String,
    priority: i64,
    record_id: String,
    url: Option<String>,
    changed_at: String,
    payload: String,
    entity_id: Option<String>,
}

fn raw(r: &rusqlite::Row) -> rusqlite::Result<RawRecord> {
    Ok(RawRecord {
        row_id: r.get(0)?,
        partner: r.get(1)?,
        priority: r.get(2)?,
        record_id: r.get(3)?,
        url: r.get(4)?,
        changed_at: r.get(5)?,
        payload: r.get(6)?,
        entity_id: r.get(7)?,
    })
}

fn parsed(r: RawRecord) -> Result<StoredRecord> {
    let payload: Payload = serde_json::from_str(&r.payload).map_err(|e| StoreError::Corrupt {
        what: format!("{}/{}", r.partner, r.record_id),
        reason: e.to_string(),
    })?;
    let changed_at = DateTime::parse_from_rfc3339(&r.changed_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    Ok(StoredRecord {
        row_id: r.row_id,
        partner: r.partner,
        priority: r.priority,
        record_id: r.record_id,
        url: r.url,
        changed_at,
        payload,
        entity_id: r.entity_id,
    })
}

fn stored(r: &rusqlite::Row) -> Result<StoredRecord> {
    parsed(raw(r)?)
}

/// Rows per batch handed from the reading thread to the worker pool.
const LOAD_BATCH: usize = 2_048;

/// Every live record of `kind`, with its partner's priority, for dedupe; and the two things
/// `derive` makes of each (`a[i]` and `b[i]` of `records[i]`), in row order.
///
/// A full resolution loads every record of a kind: this thread reads rows while the shared
/// worker pool parses the batches already read and derives from them, so reading and parsing
/// overlap. At most two batches per pool thread are in flight, so memory stays bounded.
pub fn live<A: Send, B: Send>(
    tx: &Transaction,
    kind: RecordKind,
    derive: impl Fn(&StoredRecord) -> (A, B) + Sync,
) -> Result<(Vec<StoredRecord>, Vec<A>, Vec<B>)> {
    let mut st = tx.prepare_cached(&format!(
        "{STORED_COLUMNS} WHERE r.kind = ?1 AND r.deleted_at IS NULL ORDER BY r.id"
    ))?;
    let mut rows = st.query(params![kind.as_str()])?;
    let in_flight = 2 * rayon::current_num_threads().max(1);
    let (done_send, done) = std::sync::mpsc::channel::<(usize, Parsed<A, B>)>();
    let mut out = Ordered::default();
    let derive = &derive;
    // Runs on this thread (the transaction cannot leave it); the batches go to the pool.
    let read = rayon::in_place_scope(|scope| -> rusqlite::Result<()> {
        let spawn = |i: usize, batch: Vec<RawRecord>| {
            let done_send = done_send.clone();
            scope.spawn(move |_| {
                // A panic is sent back as such, so the reader never waits on a batch that
                // will not come; it is raised again on this thread.
                let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    parse_batch(batch, derive)
                }));
                let _ = done_send.send((i, parsed));
            });
        };
        let (mut sent, mut received) = (0, 0);
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        // A read error stops reading; the batches already sent are still awaited below.
        let read = (|| -> rusqlite::Result<()> {
            while let Some(row) = rows.next()? {
                batch.push(raw(row)?);
                if batch.len() == LOAD_BATCH {
                    spawn(
                        sent,
                        std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH)),
                    );
                    sent += 1;
                    while sent - received >= in_flight {
                        let Some((i, parsed)) = next_done(&done) else {
                            break;
                        };
                        received += 1;
                        out.take(i, parsed);
                    }
                }
            }
            Ok(())
        })();
        if !batch.is_empty() {
            spawn(sent, std::mem::take(&mut batch));
            sent += 1;
        }
        while received < sent {
            let Some((i, parsed)) = next_done(&done) else {
                break;
            };
            received += 1;
            out.take(i, parsed);
        }
        read
    });
    if let Some(panic) = out.panic {
        std::panic::resume_unwind(panic);
    }
    read?;
    out.outcome?;
    Ok((out.records, out.first, out.second))
}

/// The next parsed batch. Called on a pool thread (a caller already inside the pool), it runs
/// queued work meanwhile instead of blocking a thread its own batches may need.
fn next_done<T>(done: &std::sync::mpsc::Receiver<T>) -> Option<T> {
    use std::sync::mpsc::TryRecvError;
    loop {
        match done.try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => {}
            Some(rayon::Yield::Idle) => {
                match done.recv_timeout(std::time::Duration::from_millis(1)) {
                    Ok(v) => return Some(v),
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                }
            }
            None => return done.recv().ok(),
        }
    }
}

/// One batch parsed and derived from, or why it could not be, or the panic that stopped it.
type Parsed<A, B> = std::thread::Result<Result<Vec<(StoredRecord, (A, B))>>>;

fn parse_batch<A, B>(
    batch: Vec<RawRecord>,
    derive: &(impl Fn(&StoredRecord) -> (A, B) + Sync),
) -> Result<Vec<(StoredRecord, (A, B))>> {
    batch
        .into_iter()
        .map(|r| {
            let rec = parsed(r)?;
            let d = derive(&rec);
            Ok((rec, d))
        })
        .collect()
}

/// Parsed batches appended in row order as they come back; the few that overtake an earlier
/// one wait here. The first error (or panic) is kept.
struct Ordered<A, B> {
    next: usize,
    early: std::collections::BTreeMap<usize, Parsed<A, B>>,
    records: Vec<StoredRecord>,
    first: Vec<A>,
    second: Vec<B>,
    outcome: Result<()>,
    panic: Option<Box<dyn std::any::Any + Send>>,
}

impl<A, B> Default for Ordered<A, B> {
    fn default() -> Self {
        Ordered {
            next: 0,
            early: Default::default(),
            records: Vec::new(),
            first: Vec::new(),
            second: Vec::new(),
            outcome: Ok(()),
            panic: None,
        }
    }
}

impl<A, B> Ordered<A, B> {
    fn take(&mut self, i: usize, parsed: Parsed<A, B>) {
        self.early.insert(i, parsed);
        while let Some(parsed) = self.early.remove(&self.next) {
            self.next += 1;
            match parsed {
                Ok(Ok(batch)) => {
                    for (rec, (a, b)) in batch {
                        self.records.push(rec);
                        self.first.push(a);
                        self.second.push(b);
                    }
                }
                Ok(Err(e)) => {
                    if self.outcome.is_ok() {
                        self.outcome = Err(e);
                    }
                }
                Err(panic) => {
                    self.panic.get_or_insert(panic);
                }
            }
        }
    }
}

/// Whether any record of `kind` is live.
pub fn any_live(tx: &Transaction, kind: RecordKind) -> Result<bool> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM source_records WHERE kind = ?1 AND deleted_at IS NULL)",
        params![kind.as_str()],
        |r| r.get::<_, bool>(0),
    )?)
}

/// The live records among `rows` (row ids, ascending), for a scoped resolution.
pub fn live_by_rows(tx: &Transaction, rows: &[i64]) -> Result<Vec<StoredRecord>> {
    let mut st = tx.prepare_cached(&format!(
        "{STORED_COLUMNS} WHERE r.id = ?1 AND r.deleted_at IS NULL"
    ))?;
    let mut out = Vec::with_capacity(rows.len());
    for id in rows {
        let mut found = st.query(params![id])?;
        if let Some(row) = found.next()? {
            out.push(stored(row)?);
        }
    }
    Ok(out)
}

/// The canonical entities that `rows` (live or deleted) belonged to at the last resolution.
pub fn entities_of(tx: &Transaction, rows: &[i64]) -> Result<Vec<String>> {
    let mut st = tx.prepare_cached("SELECT entity_id FROM record_entities WHERE row_id = ?1")?;
    let mut out = Vec::new();
    for id in rows {
        if let Some(e) = st
            .query_row(params![id], |r| r.get::<_, String>(0))
            .optional()?
        {
            out.push(e);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The live records resolved into `entity`.
pub fn members_of(tx: &Transaction, entity: &str) -> Result<Vec<i64>> {
    let mut st = tx.prepare_cached(
        "SELECT r.id FROM record_entities e JOIN source_records r ON r.id = e.row_id
         WHERE e.entity_id = ?1 AND r.deleted_at IS NULL",
    )?;
    let rows = st
        .query_map(params![entity], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(rows)
}

/// Points records at the canonical entity they resolved to (a deleted record keeps its last
/// link: a later resolution finds the entity it left).
pub fn set_entities(tx: &Transaction, links: &[(i64, &str)]) -> Result<()> {
    // Setting more links than the table holds (a first resolution): the entity index is built
    // once from sorted entries afterwards instead of taking each link at a random page.
    // (Counted only for a big write: a routine resolution sets a handful of links.)
    let bulk = links.len() >= 1_000 && {
        let held: i64 = tx.query_row("SELECT COUNT(*) FROM record_entities", [], |r| r.get(0))?;
        links.len() as i64 > held
    };
    let index: Option<String> = if bulk {
        tx.query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'record_entities_entity'",
            [],
            |r| r.get(0),
        )
        .optional()?
    } else {
        None
    };
    if index.is_some() {
        tx.execute_batch("DROP INDEX record_entities_entity")?;
    }
    write_links(tx, links)?;
    if let Some(sql) = index {
        tx.execute_batch(&sql)?;
    }
    Ok(())
}

fn write_links(tx: &Transaction, links: &[(i64, &str)]) -> Result<()> {
    let rows: Vec<[&dyn rusqlite::ToSql; 2]> = links
        .iter()
        .map(|(row, entity)| -> [&dyn rusqlite::ToSql; 2] { [row, entity] })
        .collect();
    super::insert_rows(
        tx,
        "INSERT INTO record_entities (row_id, entity_id) VALUES",
        "ON CONFLICT (row_id) DO UPDATE SET entity_id = excluded.entity_id
         WHERE entity_id IS NOT excluded.entity_id",
        &rows,
    )
}

/// What the last successful sync of a feed left for the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedState {
    /// The URL or path it was fetched from: a feed whose source changed in config starts afresh.
    pub source: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Where an incremental feed (RPDE) resumes.
    pub cursor: Option<String>,
}

pub fn feed_state(
    conn: &rusqlite::Connection,
    partner: &str,
    feed_key: &str,
) -> Result<Option<FeedState>> {
    Ok(conn
        .query_row(
            "SELECT source, etag, last_modified, cursor FROM feeds WHERE partner_id = ?1 AND feed_key = ?2",
            params![partner, feed_key],
            |r| {
                Ok(FeedState {
                    source: r.get(0)?,
                    etag: r.get(1)?,
                    last_modified: r.get(2)?,
                    cursor: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Records a feed's state after a successful sync, in the sync's transaction; a harvest that
/// yields no cursor keeps the one stored.
pub fn save_feed_state(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    state: &FeedState,
    now: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO feeds (partner_id, feed_key, source, etag, last_modified, cursor, last_fetched_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (partner_id, feed_key) DO UPDATE SET source = excluded.source,
             etag = excluded.etag, last_modified = excluded.last_modified,
             cursor = COALESCE(excluded.cursor, feeds.cursor),
             last_fetched_at = excluded.last_fetched_at",
        params![
            partner,
            feed_key,
            state.source,
            state.etag,
            state.last_modified,
            state.cursor,
            now
        ],
    )?;
    Ok(())
}

/// Live rows of a feed among the partner's ids `ids` (an incremental feed's deletions).
pub fn live_rows(
    tx: &Transaction,
    partner: &str,
    feed_key: &str,
    ids: &[String],
) -> Result<Vec<i64>> {
    let mut st = tx.prepare_cached(
        "SELECT id FROM source_records
         WHERE partner_id = ?1 AND feed_key = ?2 AND source_id = ?3 AND deleted_at IS NULL",
    )?;
    let mut rows = Vec::new();
    for id in ids {
        if let Some(row) = st
            .query_row(params![partner, feed_key, id], |r| r.get(0))
            .optional()?
        {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Live records per kind for one partner: (organisations, events).
pub fn partner_counts(conn: &rusqlite::Connection, partner: &str) -> Result<(usize, usize)> {
    let n = |kind: &str| -> Result<usize> {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM source_records WHERE partner_id = ?1 AND kind = ?2 AND deleted_at IS NULL",
            params![partner, kind],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as usize)
    };
    Ok((n("organisations")?, n("events")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Organisation;

    #[test]
    fn a_fresh_feed_is_inserted_in_bulk_with_every_column_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let mut conn = store.writer();
        let tx = conn.transaction().unwrap();
        // More than one statement's worth, and a partial last one.
        let encoded: Vec<Encoded> = (0..150)
            .map(|i| {
                let mut r = org(&format!("org {i:03}"));
                r.url = Some(format!("https://example.org/{i}"));
                r.updated_at = chrono::DateTime::from_timestamp(1_700_000_000 + i, 0)
                    .map(|t| t.fixed_offset());
                encode(r).unwrap()
            })
            .collect();
        let now = "2026-01-01T00:00:00Z";
        let up = upsert(&tx, "p", "orgs", &encoded, now, false).unwrap();
        assert!(up.fresh);
        assert_eq!((up.inserted, up.changed.len()), (150, 0));
        let mut st = tx
            .prepare(
                "SELECT partner_id, feed_key, kind, source_id, content_hash, payload, url,
                     source_updated_at, first_seen, last_seen, changed_at, deleted_at
                 FROM source_records ORDER BY id",
            )
            .unwrap();
        type Row = (String, String, String, String, String, String);
        type Times = (
            Option<String>,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<(Row, Times)> = st
            .query_map([], |r| {
                Ok((
                    (
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ),
                    (
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                        r.get(11)?,
                    ),
                ))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 150);
        for ((row, times), e) in rows.iter().zip(&encoded) {
            assert_eq!(
                row,
                &(
                    "p".into(),
                    "orgs".into(),
                    "organisations".into(),
                    e.source_id.clone(),
                    e.hash.clone(),
                    e.payload.clone()
                )
            );
            assert_eq!(
                times,
                &(
                    e.url.clone(),
                    e.updated_at.clone(),
                    now.into(),
                    now.into(),
                    now.into(),
                    None
                )
            );
        }
        // The feed is known now: the same records again are found and left unchanged.
        let again = upsert(&tx, "p", "orgs", &encoded, now, true).unwrap();
        assert!(!again.fresh);
        assert_eq!((again.inserted, again.unchanged), (0, 150));
    }

    fn org(name: &str) -> SourceRecord {
        SourceRecord {
            source_id: name.to_string(),
            url: None,
            updated_at: None,
            payload: Payload::Organisation(Organisation {
                name: name.to_string(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn live_reads_every_batch_in_row_order_and_names_a_corrupt_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        let mut conn = store.writer();
        let tx = conn.transaction().unwrap();
        // Several batches and a partial one, so batches come back from both workers.
        let n = LOAD_BATCH * 3 + 17;
        let encoded: Vec<Encoded> = (0..n)
            .map(|i| encode(org(&format!("org {i:05}"))).unwrap())
            .collect();
        let up = upsert(&tx, "p", "orgs", &encoded, "2026-01-01T00:00:00Z", true).unwrap();
        mark_deleted(&tx, &up.changed[5..7], "2026-01-02T00:00:00Z").unwrap();

        let (records, names, _) = live(&tx, RecordKind::Organisations, |r| match &r.payload {
            Payload::Organisation(o) => (o.name.clone(), ()),
            Payload::Event(e) => (e.title.clone(), ()),
        })
        .unwrap();
        assert_eq!(records.len(), n - 2);
        assert!(records.windows(2).all(|w| w[0].row_id < w[1].row_id));
        for (r, name) in records.iter().zip(&names) {
            assert_eq!(&r.record_id, name, "derived value belongs to its record");
        }
        assert!(!names.contains(&"org 00005".to_string()));

        tx.execute(
            "UPDATE source_records SET payload = '{not json' WHERE source_id = 'org 04000'",
            [],
        )
        .unwrap();
        match live(&tx, RecordKind::Organisations, |_| ((), ())) {
            Err(StoreError::Corrupt { what, .. }) => assert_eq!(what, "p/org 04000"),
            other => panic!(
                "expected a corrupt-record error, got {:?}",
                other.map(|r| r.0.len())
            ),
        }
    }

    #[test]
    fn live_called_from_inside_a_one_thread_pool_still_finishes() {
        // The loader waits for its batches on the pool that parses them: on a pool thread it
        // must run them itself, or a one-core machine would wait for ever.
        let (tell, told) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let loaded = pool.install(|| {
                let dir = tempfile::tempdir().unwrap();
                let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
                let mut conn = store.writer();
                let tx = conn.transaction().unwrap();
                let encoded: Vec<Encoded> = (0..LOAD_BATCH * 5)
                    .map(|i| encode(org(&format!("org {i:05}"))).unwrap())
                    .collect();
                upsert(&tx, "p", "orgs", &encoded, "2026-01-01T00:00:00Z", false).unwrap();
                live(&tx, RecordKind::Organisations, |_| ((), ()))
                    .map(|r| r.0.len())
                    .unwrap()
            });
            let _ = tell.send(loaded);
        });
        let loaded = told
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the loader finished within a minute");
        assert_eq!(loaded, LOAD_BATCH * 5);
    }

    #[test]
    fn live_passes_on_a_panic_while_deriving_instead_of_waiting() {
        // On its own thread with a deadline: a loader that waited on its stopped workers would
        // hang the test run instead of failing it.
        let (tell, told) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let dir = tempfile::tempdir().unwrap();
            let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
            let mut conn = store.writer();
            let tx = conn.transaction().unwrap();
            let encoded: Vec<Encoded> = (0..LOAD_BATCH * 8)
                .map(|i| encode(org(&format!("org {i:05}"))).unwrap())
                .collect();
            upsert(&tx, "p", "orgs", &encoded, "2026-01-01T00:00:00Z", false).unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                live(&tx, RecordKind::Organisations, |_| -> (u8, u8) {
                    panic!("deriving failed")
                })
                .map(|r| r.0.len())
            }));
            let _ = tell.send(outcome.is_err());
        });
        let panicked = told
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the loader returned or panicked within a minute");
        assert!(panicked, "the worker's panic reaches the caller");
    }
}
