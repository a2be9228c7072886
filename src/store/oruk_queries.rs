//! Read queries behind the ORUK API: the services listing (merged organisations, then recurring
//! event series) with the profile's filters, its counts for paging, the category set, and the
//! entity ids ORUK UUIDs are derived from.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::entities::OrgRow;
use super::Result;
use crate::model::RecordKind;

/// Which rows a listing covers and how they are filtered.
#[derive(Debug, Clone, Default)]
pub struct ServiceQuery {
    /// Words searched as the JSON API's `q` reads them (full-text, the last word a prefix).
    pub text: Option<String>,
    /// A category, lowercased (exact, as `/v1/organisations?category=`).
    pub category: Option<String>,
    /// Only entities whose latest change is at or after this change number.
    pub min_change: Option<i64>,
    /// Only services that have a location (the `service_at_locations` listing).
    pub located: bool,
    /// Only these rows (a distance search's, [`super::places::rows_near`]): organisations' and
    /// events' row ids.
    pub near: Option<NearRows>,
}

/// The rows a distance search found, by kind.
#[derive(Debug, Clone, Default)]
pub struct NearRows {
    pub organisations: Vec<i64>,
    pub events: Vec<i64>,
}

impl NearRows {
    pub fn find(conn: &Connection, near: &super::places::Near) -> Result<NearRows> {
        Ok(NearRows {
            organisations: super::places::rows_near(conn, RecordKind::Organisations, near)?,
            events: super::places::rows_near(conn, RecordKind::Events, near)?,
        })
    }
}

fn id_list(rows: &[i64]) -> Value {
    Value::Text(serde_json::to_string(rows).unwrap_or_else(|_| "[]".into()))
}

/// One listed entity: its canonical id, kind and published JSON.
#[derive(Debug, Clone)]
pub struct ServiceRow {
    pub id: String,
    pub kind: String,
    pub body: String,
}

/// Whether a stored body has a place to publish as a location; mirrors the renderer's rule (an
/// address part, or for events a venue name or being online).
const LOCATED_SQL: &str = " AND (json_extract(body, '$.address.street') IS NOT NULL
    OR json_extract(body, '$.address.locality') IS NOT NULL
    OR json_extract(body, '$.address.region') IS NOT NULL
    OR json_extract(body, '$.address.postcode') IS NOT NULL
    OR json_extract(body, '$.address.latitude') IS NOT NULL
    OR json_extract(body, '$.location.latitude') IS NOT NULL
    OR json_extract(body, '$.location.name') IS NOT NULL
    OR json_extract(body, '$.location.address') IS NOT NULL
    OR json_extract(body, '$.location.postcode') IS NOT NULL
    OR json_extract(body, '$.location.online') = 1)";

/// The two kinds of row a services listing covers, each read through its own listing index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Organisations,
    Series,
}

/// `FROM … WHERE …` for one part. The kind and liveness conditions are spelled as the partial
/// indexes' own, so the planner reads the index in listing order instead of every entity.
fn where_sql(part: Part, q: &ServiceQuery, sql: &mut String, args: &mut Vec<Value>) {
    sql.push_str(match (part, q.near.is_some()) {
        (Part::Organisations, false) => {
            " FROM entities INDEXED BY entities_orgs
              WHERE deleted_at IS NULL AND kind = 'organisations'"
        }
        // A distance search reads the rows it found by row id.
        (Part::Organisations, true) => {
            " FROM entities WHERE deleted_at IS NULL AND kind = 'organisations'"
        }
        (Part::Series, false) => {
            " FROM entities INDEXED BY entities_series
              WHERE deleted_at IS NULL AND recurring = 1 AND kind = 'events'"
        }
        (Part::Series, true) => {
            " FROM entities WHERE deleted_at IS NULL AND recurring = 1 AND kind = 'events'"
        }
    });
    if let Some(near) = &q.near {
        sql.push_str(" AND rowid IN (SELECT value FROM json_each(?))");
        args.push(id_list(match part {
            Part::Organisations => &near.organisations,
            Part::Series => &near.events,
        }));
    }
    if let Some(t) = &q.text {
        let kind = match part {
            Part::Organisations => RecordKind::Organisations,
            Part::Series => RecordKind::Events,
        };
        super::entities::text_filter(kind, t, sql, args);
    }
    if let Some(c) = &q.category {
        sql.push_str(" AND instr(categories, ?) > 0");
        args.push(Value::Text(format!("|{}|", c.to_lowercase())));
    }
    if let Some(n) = q.min_change {
        sql.push_str(" AND change_number >= ?");
        args.push(Value::Integer(n));
    }
    if q.located {
        sql.push_str(LOCATED_SQL);
    }
}

fn count_part(conn: &Connection, part: Part, q: &ServiceQuery) -> Result<u64> {
    let mut sql = String::from("SELECT COUNT(*)");
    let mut args = Vec::new();
    where_sql(part, q, &mut sql, &mut args);
    let n: i64 = conn.query_row(&sql, params_from_iter(args), |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

fn page_part(
    conn: &Connection,
    part: Part,
    q: &ServiceQuery,
    offset: u64,
    limit: u64,
) -> Result<Vec<ServiceRow>> {
    let mut sql = String::from("SELECT id, kind, body");
    let mut args = Vec::new();
    where_sql(part, q, &mut sql, &mut args);
    sql.push_str(match part {
        Part::Organisations => " ORDER BY sort_key, id LIMIT ? OFFSET ?",
        Part::Series => " ORDER BY start_utc, id LIMIT ? OFFSET ?",
    });
    args.push(Value::Integer(limit.min(i64::MAX as u64) as i64));
    args.push(Value::Integer(offset.min(i64::MAX as u64) as i64));
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| {
        Ok(ServiceRow {
            id: r.get(0)?,
            kind: r.get(1)?,
            body: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many services the query matches: (organisations, event series).
pub fn count_services(conn: &Connection, q: &ServiceQuery) -> Result<(u64, u64)> {
    Ok((
        count_part(conn, Part::Organisations, q)?,
        count_part(conn, Part::Series, q)?,
    ))
}

/// One page of services: organisations in name order, then event series in first-start order.
/// `counts` is what [`count_services`] answered for the same query.
pub fn services_page(
    conn: &Connection,
    q: &ServiceQuery,
    counts: (u64, u64),
    offset: u64,
    limit: u64,
) -> Result<Vec<ServiceRow>> {
    let orgs = counts.0;
    let mut rows = Vec::new();
    if offset < orgs {
        rows = page_part(conn, Part::Organisations, q, offset, limit)?;
    }
    let left = limit.saturating_sub(rows.len() as u64);
    if left > 0 {
        let series_offset = offset.saturating_sub(orgs);
        rows.extend(page_part(conn, Part::Series, q, series_offset, left)?);
    }
    Ok(rows)
}

/// The first change number logged at or after `at` (RFC 3339 UTC, as the log stores it); `None`
/// when nothing changed since.
pub fn first_change_since(conn: &Connection, at: &str) -> Result<Option<i64>> {
    Ok(conn
        .query_row(
            "SELECT change_number FROM changes WHERE at >= ?1 ORDER BY change_number LIMIT 1",
            params![at],
            |r| r.get(0),
        )
        .optional()?)
}

/// Every category published services carry, lowercased and sorted.
pub fn categories(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare(
        "SELECT DISTINCT categories FROM entities WHERE deleted_at IS NULL AND categories != '|'
         AND (kind = 'organisations' OR (kind = 'events' AND recurring = 1))",
    )?;
    let mut set = std::collections::BTreeSet::new();
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let cats: String = r.get(0)?;
        set.extend(
            cats.split('|')
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        );
    }
    Ok(set.into_iter().collect())
}

/// The published JSON of one live service carrying a category (lowercased), to read the
/// category's spelling from.
pub fn body_with_category(conn: &Connection, category: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT body FROM entities WHERE deleted_at IS NULL AND instr(categories, ?1) > 0
             AND (kind = 'organisations' OR (kind = 'events' AND recurring = 1)) LIMIT 1",
        )?
        .query_row(params![format!("|{category}|")], |r| r.get(0))
        .optional()?)
}

/// Entity ids (live or not: merged-away ids must still answer) with rowids above `after`, in
/// rowid order, at most `limit`.
pub fn ids_after(conn: &Connection, after: i64, limit: usize) -> Result<Vec<(i64, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT rowid, id FROM entities WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
    )?;
    let rows = st.query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The canonical id stored at a rowid (rowids can move on VACUUM: callers check the id).
pub fn id_at(conn: &Connection, rowid: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT id FROM entities WHERE rowid = ?1")?
        .query_row(params![rowid], |r| r.get(0))
        .optional()?)
}

/// A page of the live organisations among `placed` (a distance search's, in name order), after
/// the `(sort_key, id)` cursor, with the JSON API's other filters: the `near` search of
/// `/v1/organisations`. Only the rows the page needs are read: the found rows are taken in name
/// order a slice at a time (each twice the last, so a filter that keeps few rows costs a few
/// reads, not one per row), until the page is full.
pub fn organisations_at(
    conn: &Connection,
    f: &super::entities::Filter,
    placed: &[super::places::Placed],
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<OrgRow>> {
    // Rows named before the cursor's name cannot follow it; equal names are left to the query,
    // which breaks ties by id.
    let start = after.map_or(0, |(k, _)| {
        placed.partition_point(|p| p.sort_key.as_str() < k)
    });
    let mut rest = placed.get(start..).unwrap_or_default();
    let mut out: Vec<OrgRow> = Vec::new();
    let mut slice = limit.max(1);
    while !rest.is_empty() && out.len() < limit {
        let end = slice_end(rest, slice);
        let (taken, left) = rest.split_at(end);
        let rows: Vec<i64> = taken.iter().map(|p| p.row).collect();
        let mut sql = String::from(
            "SELECT sort_key, id, body FROM entities
             WHERE deleted_at IS NULL AND kind = 'organisations'
             AND rowid IN (SELECT value FROM json_each(?))",
        );
        let mut args = vec![id_list(&rows)];
        super::entities::filter_sql(RecordKind::Organisations, f, &mut sql, &mut args);
        out.extend(super::entities::name_page(
            conn,
            sql,
            args,
            after,
            limit - out.len(),
        )?);
        rest = left;
        slice = slice.saturating_mul(2);
    }
    Ok(out)
}

/// Where a slice of `want` rows of the name-ordered `placed` ends: never between two equal
/// names, whose order (by id) only the query knows, so the slices' pages follow each other.
fn slice_end(placed: &[super::places::Placed], want: usize) -> usize {
    let mut end = want.min(placed.len());
    while end > 0 && end < placed.len() && placed[end].sort_key == placed[end - 1].sort_key {
        end += 1;
    }
    end
}
