//! Postcode centroids for distance search: loads the operator's ONS Postcode Directory CSV into
//! the store (an R*Tree over the centroids), and answers which postcodes lie within a distance of
//! a point — a bounding-box read of the R*Tree, then the exact great-circle check.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PlacesError {
    #[error("cannot read the postcode centroids {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("postcode centroids {path}: {reason}")]
    Layout { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PlacesError {
    fn from(e: rusqlite::Error) -> PlacesError {
        PlacesError::Store(StoreError::Sql(e))
    }
}

/// What one load of the centroid file did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub loaded: usize,
    /// Rows without a usable postcode or coordinates (ONSPD gives 99.999999 for "no grid ref").
    pub skipped: usize,
}

/// Mean Earth radius (IUGG), metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres (haversine).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

fn fingerprint(path: &Path) -> Result<String, PlacesError> {
    let meta = std::fs::metadata(path).map_err(|source| PlacesError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    Ok(format!("{}|{}|{modified}", path.display(), meta.len()))
}

/// Whether the store holds the centroids of this file as it is now.
pub fn is_current(conn: &Connection, path: &Path) -> Result<bool, PlacesError> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT fingerprint FROM postcode_source WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(stored == Some(fingerprint(path)?))
}

/// The columns of a centroid file: ONSPD's `pcds` (or `pcd`), `lat` and `long`; `postcode`,
/// `latitude` and `longitude` are accepted as the same.
fn columns(headers: &csv::StringRecord) -> Option<(usize, usize, usize)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            headers.iter().position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(n)
            })
        })
    };
    Some((
        find(&["pcds", "pcd", "postcode"])?,
        find(&["lat", "latitude"])?,
        find(&["long", "lon", "longitude"])?,
    ))
}

fn coordinate(s: Option<&str>, max: f64) -> Option<f64> {
    s?.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && v.abs() <= max)
}

/// Replaces the store's centroids with the file's, in one transaction (a broken file leaves the
/// previous set in place).
pub fn load(conn: &mut Connection, path: &Path) -> Result<LoadStats, PlacesError> {
    let shown = path.display().to_string();
    let fp = fingerprint(path)?;
    let layout = |reason: String| PlacesError::Layout {
        path: shown.clone(),
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| layout(e.to_string()))?;
    let headers = rdr.headers().map_err(|e| layout(e.to_string()))?.clone();
    let (pc, lat, lon) = columns(&headers).ok_or_else(|| {
        layout("needs the ONS Postcode Directory columns pcds (or pcd), lat and long".into())
    })?;
    let tx = conn.transaction()?;
    tx.execute_batch("DELETE FROM postcode_centroids; DELETE FROM postcode_rtree;")?;
    let mut stats = LoadStats::default();
    {
        let mut centroid = tx.prepare(
            "INSERT INTO postcode_centroids (postcode, lat, lon) VALUES (?1, ?2, ?3)
             ON CONFLICT (postcode) DO NOTHING",
        )?;
        let mut tree = tx.prepare(
            "INSERT INTO postcode_rtree (id, min_lat, max_lat, min_lon, max_lon)
             VALUES (?1, ?2, ?2, ?3, ?3)",
        )?;
        for row in rdr.records() {
            let row = row.map_err(|e| layout(e.to_string()))?;
            let postcode = row.get(pc).and_then(crate::normalise::postcode);
            // ONSPD marks postcodes without a grid reference with latitude 99.999999.
            let point = (
                coordinate(row.get(lat), 90.0),
                coordinate(row.get(lon), 180.0),
            );
            let (Some(postcode), (Some(la), Some(lo))) = (postcode, point) else {
                stats.skipped += 1;
                continue;
            };
            if centroid.execute(params![postcode, la, lo])? == 1 {
                tree.execute(params![tx.last_insert_rowid(), la, lo])?;
                stats.loaded += 1;
            } else {
                stats.skipped += 1;
            }
        }
    }
    tx.execute(
        "INSERT INTO postcode_source (id, fingerprint) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
        params![fp],
    )?;
    tx.commit()?;
    Ok(stats)
}

/// A postcode's centroid (latitude, longitude), if the loaded set has it.
pub fn centroid(conn: &Connection, postcode: &str) -> Result<Option<(f64, f64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT lat, lon FROM postcode_centroids WHERE postcode = ?1")?
        .query_row(params![postcode], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Whether any centroids are loaded.
pub fn any(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM postcode_centroids LIMIT 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Half the sides (degrees of latitude, of longitude) of the box around the circle of `metres`
/// about `centre`. The circle's widest longitude span is asin(sin δ / cos φ) (wider than
/// δ / cos φ), and near a pole the box spans every longitude.
fn box_half_sides(centre: (f64, f64), metres: f64) -> (f64, f64) {
    let delta = metres / EARTH_RADIUS_M;
    let dlat = delta.to_degrees();
    let ratio = delta.sin() / centre.0.to_radians().cos().abs();
    let dlon = if !(0.0..1.0).contains(&ratio) {
        180.0
    } else {
        ratio.asin().to_degrees()
    };
    (dlat, dlon)
}

/// A distance search: the circle, and the loaded postcodes whose centroids lie in it (the
/// searched postcode always among them).
#[derive(Debug, Clone, PartialEq)]
pub struct Near {
    pub centre: (f64, f64),
    pub metres: f64,
    pub postcodes: Vec<String>,
}

/// Row ids of the live entities of `kind` inside the circle, found through the R*Trees: by the
/// point a partner gave when there is one (`entity_points`), else by their postcode's centroid
/// (the postcodes `near` holds, then the kind's postcode index). In no particular order.
pub fn rows_near(
    conn: &Connection,
    kind: crate::model::RecordKind,
    near: &Near,
) -> Result<Vec<i64>, StoreError> {
    let mut rows = rows_at_given_points(conn, kind, near.centre, near.metres)?;
    rows.extend(rows_at_postcodes_without_points(
        conn,
        kind,
        &near.postcodes,
    )?);
    rows.sort_unstable();
    rows.dedup();
    Ok(rows)
}

fn rows_at_given_points(
    conn: &Connection,
    kind: crate::model::RecordKind,
    centre: (f64, f64),
    metres: f64,
) -> Result<Vec<i64>, StoreError> {
    keys_in_circle(
        conn,
        // Only live records have a row (the triggers drop a withdrawn one), so no entity is read.
        "SELECT id, lat, lon FROM entity_points
         WHERE max_lat >= ?1 AND min_lat <= ?2 AND max_lon >= ?3 AND min_lon <= ?4 AND kind = ?5",
        Some(kind.as_str()),
        centre,
        metres,
    )
}

/// The keys (column 0) of the rows `sql` finds in the box around the circle of `metres` about
/// `centre` whose own point (columns 1 and 2) lies in it: the R*Tree gives the box (parameters
/// ?1 to ?4, then `extra` as ?5), the great-circle distance decides.
fn keys_in_circle<K: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    extra: Option<&str>,
    centre: (f64, f64),
    metres: f64,
) -> Result<Vec<K>, StoreError> {
    let (dlat, dlon) = box_half_sides(centre, metres);
    let (s, n, w, e) = (
        centre.0 - dlat,
        centre.0 + dlat,
        centre.1 - dlon,
        centre.1 + dlon,
    );
    let read =
        |r: &rusqlite::Row| Ok((r.get::<_, K>(0)?, r.get::<_, f64>(1)?, r.get::<_, f64>(2)?));
    let mut st = conn.prepare_cached(sql)?;
    let rows = match extra {
        Some(x) => st.query_map(params![s, n, w, e, x], read)?,
        None => st.query_map(params![s, n, w, e], read)?,
    };
    let mut out = Vec::new();
    for row in rows {
        let (key, la, lo) = row?;
        if distance_m(centre, (la, lo)) <= metres {
            out.push(key);
        }
    }
    Ok(out)
}

fn rows_at_postcodes_without_points(
    conn: &Connection,
    kind: crate::model::RecordKind,
    postcodes: &[String],
) -> Result<Vec<i64>, StoreError> {
    // Spelled as each postcode index's own expression and condition, so the planner uses it;
    // a record with a point of its own is known by its R*Tree row (by id), not by parsing its body.
    let sql = match kind {
        crate::model::RecordKind::Organisations => {
            "SELECT rowid FROM entities INDEXED BY entities_org_postcode
             WHERE deleted_at IS NULL AND kind = 'organisations'
               AND json_extract(body, '$.address.postcode') IN (SELECT value FROM json_each(?1))
               AND NOT EXISTS (SELECT 1 FROM entity_points p WHERE p.id = entities.rowid)"
        }
        crate::model::RecordKind::Events => {
            "SELECT rowid FROM entities INDEXED BY entities_event_postcode
             WHERE deleted_at IS NULL AND kind = 'events'
               AND json_extract(body, '$.location.postcode') IN (SELECT value FROM json_each(?1))
               AND NOT EXISTS (SELECT 1 FROM entity_points p WHERE p.id = entities.rowid)"
        }
    };
    let list = serde_json::to_string(postcodes).unwrap_or_else(|_| "[]".into());
    let mut st = conn.prepare_cached(sql)?;
    let rows = st.query_map(params![list], |r| r.get::<_, i64>(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every loaded postcode within `metres` of `centre`: the R*Tree gives those in the bounding box,
/// the great-circle distance decides.
pub fn postcodes_within(
    conn: &Connection,
    centre: (f64, f64),
    metres: f64,
) -> Result<Vec<String>, StoreError> {
    keys_in_circle(
        conn,
        "SELECT c.postcode, c.lat, c.lon FROM postcode_rtree t
         JOIN postcode_centroids c ON c.id = t.id
         WHERE t.max_lat >= ?1 AND t.min_lat <= ?2 AND t.max_lon >= ?3 AND t.min_lon <= ?4",
        None,
        centre,
        metres,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // London (51.5074, -0.1278) to Manchester (53.4808, -2.2426): about 262 km.
        let d = distance_m((51.5074, -0.1278), (53.4808, -2.2426));
        assert!((d - 262_000.0).abs() < 2_000.0, "{d}");
        assert_eq!(distance_m((52.0, -1.0), (52.0, -1.0)), 0.0);
    }
}
