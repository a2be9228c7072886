//! OpenActive series kept across syncs: a partner's `SessionSeries` by each reference (RPDE id,
//! `@id`, URL) a session's `superEvent` may give, so a sync where only the session feed changed
//! still names its sessions.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::Result;

/// Stores (or replaces) the series a harvest saw, under every reference it is known by.
pub fn remember(
    conn: &Connection,
    partner_id: &str,
    series: &HashMap<String, Value>,
) -> Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO rpde_series (partner_id, reference, data) VALUES (?1, ?2, ?3)
             ON CONFLICT (partner_id, reference) DO UPDATE SET data = excluded.data",
        )?;
        for (reference, data) in series {
            put.execute(params![partner_id, reference, data.to_string()])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The series `reference` names for this partner, as last published.
pub fn find(conn: &Connection, partner_id: &str, reference: &str) -> Result<Option<Value>> {
    let text: Option<String> = conn
        .query_row(
            "SELECT data FROM rpde_series WHERE partner_id = ?1 AND reference = ?2",
            params![partner_id, reference],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}
