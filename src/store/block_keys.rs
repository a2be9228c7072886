//! Stored blocking keys (`block_keys`) and the records awaiting resolution (`dirty_records`):
//! what lets a sync that changed a few records re-resolve only them and their possible matches
//! instead of every record of their kind.

use rusqlite::{params, OptionalExtension, Transaction};

use super::Result;
use crate::model::RecordKind;

fn kind_tag(kind: RecordKind) -> i64 {
    match kind {
        RecordKind::Organisations => 0,
        RecordKind::Events => 1,
    }
}

/// One record's stored keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKeys {
    pub row_id: i64,
    pub sort: i64,
    pub keys: Vec<i64>,
    /// Fingerprint of the record's match features.
    pub features: i64,
}

/// Whether any keys are stored for `kind` (a store that never resolved it with keys has none,
/// and must resolve it in full once).
pub fn any(tx: &Transaction, kind: RecordKind) -> Result<bool> {
    let n: i64 = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM block_keys WHERE kind = ?1)",
        params![kind_tag(kind)],
        |r| r.get(0),
    )?;
    Ok(n == 1)
}

fn blob(keys: &[i64]) -> Vec<u8> {
    keys.iter().flat_map(|k| k.to_le_bytes()).collect()
}

fn unblob(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            i64::from_le_bytes(a)
        })
        .collect()
}

/// Replaces every stored key of `kind` (after a full resolution). Rows are written in primary
/// key order, so each table grows at its end, and bound straight from `records`: at a million
/// records a copy of every row as statement parameters would be hundreds of megabytes.
pub fn replace_kind(tx: &Transaction, kind: RecordKind, records: &[RecordKeys]) -> Result<()> {
    let tag = kind_tag(kind);
    tx.execute("DELETE FROM block_keys WHERE kind = ?1", params![tag])?;
    tx.execute("DELETE FROM record_keys WHERE kind = ?1", params![tag])?;
    let mut in_rows: Vec<&RecordKeys> = records.iter().collect();
    if !in_rows.is_sorted_by_key(|r| r.row_id) {
        in_rows.sort_unstable_by_key(|r| r.row_id);
    }
    super::insert_many(
        tx,
        "INSERT OR REPLACE INTO record_keys (row_id, kind, sort, keys, features) VALUES",
        &format!("(?, {tag}, ?, ?, ?)"),
        "",
        in_rows.len(),
        4,
        |st, i, at| {
            let r = in_rows[i];
            st.raw_bind_parameter(at, r.row_id)?;
            st.raw_bind_parameter(at + 1, r.sort)?;
            st.raw_bind_parameter(at + 2, blob(&r.keys))?;
            st.raw_bind_parameter(at + 3, r.features)
        },
    )?;
    drop(in_rows);
    // In key order the primary key grows at its end.
    let mut entries: Vec<[i64; 3]> = records
        .iter()
        .flat_map(|r| r.keys.iter().map(move |&k| [k, r.sort, r.row_id]))
        .collect();
    entries.sort_unstable();
    super::insert_many(
        tx,
        "INSERT OR IGNORE INTO block_keys (kind, key, sort, row_id) VALUES",
        &format!("({tag}, ?, ?, ?)"),
        "",
        entries.len(),
        3,
        |st, i, at| {
            for (j, v) in entries[i].iter().enumerate() {
                st.raw_bind_parameter(at + j, *v)?;
            }
            Ok(())
        },
    )
}

/// Replaces the stored keys of some records; a record with no keys (deleted) just loses its own.
/// Returns the rows whose keys and match features are the same as before.
pub fn replace_rows(
    tx: &Transaction,
    kind: RecordKind,
    records: &[RecordKeys],
) -> Result<Vec<i64>> {
    let tag = kind_tag(kind);
    let mut same = Vec::new();
    let mut old =
        tx.prepare_cached("SELECT sort, keys, features FROM record_keys WHERE row_id = ?1")?;
    let mut delete = tx.prepare_cached(
        "DELETE FROM block_keys WHERE kind = ?1 AND key = ?2 AND sort = ?3 AND row_id = ?4",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO block_keys (kind, key, sort, row_id) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut per_record = tx.prepare_cached(
        "INSERT OR REPLACE INTO record_keys (row_id, kind, sort, keys, features)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut forget = tx.prepare_cached("DELETE FROM record_keys WHERE row_id = ?1")?;
    for r in records {
        let before: Option<(i64, Vec<u8>, i64)> = old
            .query_row(params![r.row_id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        if let Some((sort, keys, features)) = before {
            let keys = unblob(&keys);
            if !r.keys.is_empty() && sort == r.sort && keys == r.keys && features == r.features {
                same.push(r.row_id);
                continue;
            }
            for k in keys {
                delete.execute(params![tag, k, sort, r.row_id])?;
            }
        }
        if r.keys.is_empty() {
            forget.execute(params![r.row_id])?;
            continue;
        }
        for k in &r.keys {
            insert.execute(params![tag, k, r.sort, r.row_id])?;
        }
        per_record.execute(params![r.row_id, tag, r.sort, blob(&r.keys), r.features])?;
    }
    Ok(same)
}

/// How far a stored block is searched: the bound the in-memory blocking uses, handed in by it.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// A block this size or smaller is taken whole.
    pub max_block: usize,
    /// Past it, the neighbours taken each side in sort order.
    pub window: usize,
}

/// Records sharing a key with `record`: the whole block when it is small, else the
/// `bounds.window` nearest each side in sort order.
pub fn neighbours(
    tx: &Transaction,
    kind: RecordKind,
    record: &RecordKeys,
    bounds: Bounds,
) -> Result<Vec<i64>> {
    let tag = kind_tag(kind);
    let mut block =
        tx.prepare_cached("SELECT row_id FROM block_keys WHERE kind = ?1 AND key = ?2 LIMIT ?3")?;
    let mut after = tx.prepare_cached(
        "SELECT row_id FROM block_keys WHERE kind = ?1 AND key = ?2 AND (sort, row_id) > (?3, ?4)
         ORDER BY sort, row_id LIMIT ?5",
    )?;
    let mut before = tx.prepare_cached(
        "SELECT row_id FROM block_keys WHERE kind = ?1 AND key = ?2 AND (sort, row_id) < (?3, ?4)
         ORDER BY sort DESC, row_id DESC LIMIT ?5",
    )?;
    let mut out = Vec::new();
    for &key in &record.keys {
        let members = block
            .query_map(params![tag, key, bounds.max_block as i64 + 1], |r| {
                r.get::<_, i64>(0)
            })?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        if members.len() <= bounds.max_block {
            out.extend(members);
            continue;
        }
        for st in [&mut after, &mut before] {
            let near = st
                .query_map(
                    params![tag, key, record.sort, record.row_id, bounds.window as i64],
                    |r| r.get::<_, i64>(0),
                )?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            out.extend(near);
        }
    }
    out.retain(|&r| r != record.row_id);
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// How many stored records hold each of `keys` (hashed as stored): the store's value
/// frequencies, so a scoped resolution weighs a shared value as a full one would. Counting walks
/// the primary key's range for the key.
pub fn counts(tx: &Transaction, kind: RecordKind, keys: &[u64]) -> Result<Vec<(u64, u32)>> {
    let tag = kind_tag(kind);
    let mut st =
        tx.prepare_cached("SELECT COUNT(*) FROM block_keys WHERE kind = ?1 AND key = ?2")?;
    let mut out = Vec::with_capacity(keys.len());
    for &key in keys {
        let n: i64 = st.query_row(params![tag, key as i64], |r| r.get(0))?;
        out.push((key, u32::try_from(n).unwrap_or(u32::MAX)));
    }
    Ok(out)
}

/// Marks records (inserted, rewritten or deleted) as changed since their kind was last resolved.
pub fn mark_dirty(tx: &Transaction, rows: &[i64]) -> Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO dirty_records (row_id, kind) SELECT id, kind FROM source_records WHERE id = ?1",
    )?;
    for r in rows {
        st.execute(params![r])?;
    }
    Ok(())
}

/// The records of `kind` changed since it was last resolved, in row order.
pub fn dirty(tx: &Transaction, kind: RecordKind) -> Result<Vec<i64>> {
    let mut st =
        tx.prepare_cached("SELECT row_id FROM dirty_records WHERE kind = ?1 ORDER BY row_id")?;
    let rows = st
        .query_map(params![kind.as_str()], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(rows)
}

pub fn clear_dirty(tx: &Transaction, kind: RecordKind) -> Result<()> {
    tx.execute(
        "DELETE FROM dirty_records WHERE kind = ?1",
        params![kind.as_str()],
    )?;
    Ok(())
}

/// The dedupe settings `kind` was last resolved in full with, as text.
pub fn resolved_with(tx: &Transaction, kind: RecordKind) -> Result<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT settings FROM resolved_with WHERE kind = ?1",
            params![kind.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn save_resolved_with(tx: &Transaction, kind: RecordKind, settings: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO resolved_with (kind, settings) VALUES (?1, ?2)
         ON CONFLICT (kind) DO UPDATE SET settings = excluded.settings",
        params![kind.as_str(), settings],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_blob() {
        let keys = vec![i64::MIN, -1, 0, 7, i64::MAX];
        assert_eq!(unblob(&blob(&keys)), keys);
        assert!(unblob(&[1, 2, 3]).is_empty(), "a torn blob yields nothing");
    }
}
