//! Webhook subscribers and how far each has got (`webhook_subscribers`): the last change number it
//! acknowledged, its failures in a row, and whether it is dead-lettered. A subscriber always resumes
//! from its acknowledged position, so a restart or an outage loses nothing (delivery is at least
//! once, in change order).

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::entities::FeedItem;
use super::Result;
use crate::model::RecordKind;

/// A subscriber as the config or an admin gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub id: String,
    pub url: String,
    pub kinds: Vec<RecordKind>,
    pub partners: Vec<String>,
    /// Start at the current end of the change log (only later changes), or at 0.
    pub from_now: bool,
    /// Kept in the store for subscribers an admin registered; configured ones read theirs from
    /// the environment or a file.
    pub secret: Option<String>,
}

/// A subscriber and its delivery state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscriber {
    pub id: String,
    /// `config` or `api`.
    pub source: String,
    pub url: String,
    pub kinds: Vec<String>,
    pub partners: Vec<String>,
    /// The last change number delivered (or passed over by the subscriber's filter).
    pub acknowledged: i64,
    /// Failed deliveries of the next change in a row.
    pub failures: i64,
    /// When delivery stopped after too many failures; `None` while it is live.
    pub dead_letter_at: Option<String>,
    pub last_error: Option<String>,
    pub last_success_at: Option<String>,
    pub delivered: i64,
    #[serde(skip)]
    pub secret: Option<String>,
}

impl Subscriber {
    pub fn kinds(&self) -> Vec<RecordKind> {
        self.kinds
            .iter()
            .filter_map(|k| RecordKind::parse(k))
            .collect()
    }
}

fn join(list: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    list.into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn split(s: String) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

const COLUMNS: &str = "id, source, url, kinds, partners, acked, failures, dead_at, last_error,
    last_success_at, delivered, secret";

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        id: r.get(0)?,
        source: r.get(1)?,
        url: r.get(2)?,
        kinds: split(r.get(3)?),
        partners: split(r.get(4)?),
        acknowledged: r.get(5)?,
        failures: r.get(6)?,
        dead_letter_at: r.get(7)?,
        last_error: r.get(8)?,
        last_success_at: r.get(9)?,
        delivered: r.get(10)?,
        secret: r.get(11)?,
    })
}

/// The newest change number in the log (0 when empty).
pub fn head(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT COALESCE(MAX(change_number), 0) FROM changes",
        [],
        |r| r.get(0),
    )?)
}

fn insert(conn: &Connection, s: &NewSubscriber, source: &str, now: &str) -> Result<()> {
    let start = if s.from_now { head(conn)? } else { 0 };
    conn.execute(
        "INSERT INTO webhook_subscribers (id, source, url, kinds, partners, acked, secret, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            s.id,
            source,
            s.url,
            join(s.kinds.iter().map(|k| k.as_str())),
            join(&s.partners),
            start,
            s.secret,
            now
        ],
    )?;
    Ok(())
}

/// Brings the configured subscribers into the store: new ones start where their `from` says,
/// changed ones keep their position, ones no longer configured are removed.
pub fn sync_configured(conn: &Connection, configured: &[NewSubscriber], now: &str) -> Result<()> {
    for s in configured {
        let known: Option<String> = conn
            .query_row(
                "SELECT source FROM webhook_subscribers WHERE id = ?1",
                [&s.id],
                |r| r.get(0),
            )
            .optional()?;
        match known {
            None => insert(conn, s, "config", now)?,
            Some(_) => {
                conn.execute(
                    "UPDATE webhook_subscribers SET source = 'config', url = ?2, kinds = ?3,
                         partners = ?4, secret = NULL WHERE id = ?1",
                    params![
                        s.id,
                        s.url,
                        join(s.kinds.iter().map(|k| k.as_str())),
                        join(&s.partners)
                    ],
                )?;
            }
        }
    }
    let ids: Vec<&str> = configured.iter().map(|s| s.id.as_str()).collect();
    let mut st = conn.prepare("SELECT id FROM webhook_subscribers WHERE source = 'config'")?;
    let stale: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter(|id| !ids.contains(&id.as_str()))
        .collect();
    for id in stale {
        conn.execute("DELETE FROM webhook_subscribers WHERE id = ?1", [id])?;
    }
    Ok(())
}

/// Why an admin's registration or removal was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    Exists,
    Configured,
    Missing,
}

/// Registers a subscriber through the admin API.
pub fn register(
    conn: &Connection,
    s: &NewSubscriber,
    now: &str,
) -> Result<std::result::Result<(), Refused>> {
    if get(conn, &s.id)?.is_some() {
        return Ok(Err(Refused::Exists));
    }
    insert(conn, s, "api", now)?;
    Ok(Ok(()))
}

/// Removes a subscriber an admin registered (configured ones leave with the config).
pub fn remove(conn: &Connection, id: &str) -> Result<std::result::Result<(), Refused>> {
    match get(conn, id)? {
        None => Ok(Err(Refused::Missing)),
        Some(s) if s.source == "config" => Ok(Err(Refused::Configured)),
        Some(_) => {
            conn.execute("DELETE FROM webhook_subscribers WHERE id = ?1", [id])?;
            Ok(Ok(()))
        }
    }
}

pub fn list(conn: &Connection) -> Result<Vec<Subscriber>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM webhook_subscribers ORDER BY id"
    ))?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn get(conn: &Connection, id: &str) -> Result<Option<Subscriber>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM webhook_subscribers WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// The next changes of `kinds` after `after`, in change order: each entity at its latest change,
/// as the RPDE feeds show it.
pub fn pending(
    conn: &Connection,
    kinds: &[RecordKind],
    after: i64,
    limit: usize,
) -> Result<Vec<(RecordKind, FeedItem)>> {
    let mut out = Vec::new();
    for kind in kinds {
        for item in super::entities::changed_since(conn, *kind, after, limit)? {
            out.push((*kind, item));
        }
    }
    out.sort_by_key(|(_, i)| i.change_number);
    out.truncate(limit);
    Ok(out)
}

/// Whether any of `partners` lists the entity now.
pub fn listed_by(conn: &Connection, entity: &str, partners: &[String]) -> Result<bool> {
    let mut st = conn
        .prepare_cached("SELECT 1 FROM entity_partners WHERE entity_id = ?1 AND partner_id = ?2")?;
    for p in partners {
        if st.exists(params![entity, p])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Moves the subscriber past `change_number` (delivered, or passed over by its filter).
pub fn acknowledge(
    conn: &Connection,
    id: &str,
    change_number: i64,
    delivered: bool,
    now: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE webhook_subscribers SET acked = MAX(acked, ?2), failures = 0, last_error = NULL,
             delivered = delivered + ?3,
             last_success_at = CASE WHEN ?3 = 1 THEN ?4 ELSE last_success_at END
         WHERE id = ?1",
        params![id, change_number, delivered as i64, now],
    )?;
    Ok(())
}

/// Notes a failed delivery; `dead` stops delivery until an admin retries.
pub fn failed(conn: &Connection, id: &str, error: &str, dead: bool, now: &str) -> Result<()> {
    conn.execute(
        "UPDATE webhook_subscribers SET failures = failures + 1, last_error = ?2,
             dead_at = CASE WHEN ?3 THEN ?4 ELSE dead_at END
         WHERE id = ?1",
        params![id, error, dead, now],
    )?;
    Ok(())
}

/// Takes a dead-lettered subscriber back into delivery, from its acknowledged position.
pub fn retry(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE webhook_subscribers SET dead_at = NULL, failures = 0 WHERE id = ?1",
        [id],
    )? > 0)
}
