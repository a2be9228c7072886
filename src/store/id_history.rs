//! Which canonical ids each partner record held before it moved to another entity
//! (`record_id_history`). Resolution reads it to give an id back to the records it came with
//! when an admin's merge is undone or a bridging record goes.

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::Result;

/// Notes that each `(row, old id)` record left `old id`; the first move of a row is its origin.
pub fn note_moves(tx: &Transaction, moves: &[(i64, &str)]) -> Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO record_id_history (row_id, entity_id) VALUES (?1, ?2)",
    )?;
    for (row, old) in moves {
        st.execute(params![row, old])?;
    }
    Ok(())
}

/// Every id each of `rows` held before its current one, oldest first.
pub fn held_before(tx: &Transaction, rows: &[i64]) -> Result<HashMap<i64, Vec<String>>> {
    let mut st = tx
        .prepare_cached("SELECT entity_id FROM record_id_history WHERE row_id = ?1 ORDER BY seq")?;
    let mut out = HashMap::new();
    for &row in rows {
        let ids = st
            .query_map(params![row], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        if !ids.is_empty() {
            out.insert(row, ids);
        }
    }
    Ok(out)
}
