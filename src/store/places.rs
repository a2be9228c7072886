//! Distance search: loads the operator's ONS Postcode Directory CSV of postcode centroids into
//! the store, and finds the records within a distance of a point — every placed record (by its
//! partner's point, else its postcode's centroid) is a row of one table keyed by grid cell: a
//! range read per band of the box around the circle, then the exact great-circle check.

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

/// What identifies a centroid file as it is now (path, size, modification time): the store loads
/// it again when this changes.
pub fn fingerprint(path: &Path) -> Result<String, PlacesError> {
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
    place_by_new_centroids(&tx)?;
    tx.execute(
        "INSERT INTO postcode_source (id, fingerprint) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET fingerprint = excluded.fingerprint",
        params![fp],
    )?;
    tx.commit()?;
    Ok(stats)
}

/// Places again every record the old centroids placed, and every one the new set places (those
/// with a partner-given point keep their row): the triggers place records as they are written,
/// but not when the centroids under them change.
fn place_by_new_centroids(tx: &rusqlite::Transaction) -> Result<(), PlacesError> {
    tx.execute_batch(
        "DELETE FROM entity_places WHERE by_postcode;
         INSERT INTO entity_places SELECT * FROM entity_place_rows WHERE by_postcode;",
    )?;
    Ok(())
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

/// A distance search: the circle about a postcode's centroid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub centre: (f64, f64),
    pub metres: f64,
}

impl Near {
    /// The circle of `metres` about `postcode`'s centroid, if the loaded set has the postcode.
    pub fn around(
        conn: &Connection,
        postcode: &str,
        metres: f64,
    ) -> Result<Option<Near>, StoreError> {
        Ok(centroid(conn, postcode)?.map(|centre| Near { centre, metres }))
    }
}

/// A record found by a distance search, with its key in the name order (`entities.sort_key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub row: i64,
    pub sort_key: String,
}

/// Side of a grid cell of `entity_places`, in degrees, and cells per band of latitude; the
/// migration's `entity_place_rows` computes a place's cell with the same numbers.
const CELL_DEG: f64 = 0.05;
const BAND_CELLS: i64 = 8192;

/// The band of latitude and the column of longitude of a point's cell: both only grow with the
/// coordinate, so the cells of a box's corners bound the cells of every point in it.
fn band(lat: f64) -> i64 {
    ((lat.clamp(-90.0, 90.0) + 90.0) / CELL_DEG) as i64
}

fn column(lon: f64) -> i64 {
    ((lon.clamp(-180.0, 180.0) + 180.0) / CELL_DEG) as i64
}

fn kind_code(kind: crate::model::RecordKind) -> i64 {
    match kind {
        crate::model::RecordKind::Organisations => 0,
        crate::model::RecordKind::Events => 1,
    }
}

/// The live records of `kind` inside the circle, in name order (`sort_key`, as SQLite's binary
/// collation orders it): each is placed by the point its partner gave, else by its postcode's
/// centroid, and both kinds of place are rows of the one table of places.
pub fn placed_near(
    conn: &Connection,
    kind: crate::model::RecordKind,
    near: &Near,
) -> Result<Vec<Placed>, StoreError> {
    let mut found = places_in_circle(conn, kind, near, |r| {
        Ok(Placed {
            row: r.get(0)?,
            sort_key: r.get(3)?,
        })
    })?;
    found.sort_unstable_by(|a, b| a.sort_key.cmp(&b.sort_key).then(a.row.cmp(&b.row)));
    Ok(found)
}

/// Row ids of the live records of `kind` inside the circle (placed as [`placed_near`] places
/// them), in row order.
pub fn rows_near(
    conn: &Connection,
    kind: crate::model::RecordKind,
    near: &Near,
) -> Result<Vec<i64>, StoreError> {
    let mut rows = places_in_circle(conn, kind, near, |r| r.get::<_, i64>(0))?;
    rows.sort_unstable();
    Ok(rows)
}

/// The box around the circle: south, north, west, east. A box that would cross the
/// antimeridian spans every longitude instead (more rows read, none missed).
fn bounding_box(near: &Near) -> (f64, f64, f64, f64) {
    let Near { centre, metres } = *near;
    let (dlat, dlon) = box_half_sides(centre, metres);
    let (w, e) = (centre.1 - dlon, centre.1 + dlon);
    let (w, e) = if w < -180.0 || e > 180.0 {
        (-180.0, 180.0)
    } else {
        (w, e)
    };
    (centre.0 - dlat, centre.0 + dlat, w, e)
}

/// What `key` reads from each place of `kind` inside the circle: the rows of the grid cells the
/// box covers (one range of the table's key per band of latitude, columns row, lat, lon,
/// sort_key), whose exact point the great-circle distance then decides.
fn places_in_circle<K>(
    conn: &Connection,
    kind: crate::model::RecordKind,
    near: &Near,
    key: impl Fn(&rusqlite::Row) -> rusqlite::Result<K>,
) -> Result<Vec<K>, StoreError> {
    let (s, n, w, e) = bounding_box(near);
    let (west, east) = (column(w), column(e));
    let mut st = conn.prepare_cached(
        "SELECT row, lat, lon, sort_key FROM entity_places
         WHERE kind_code = ?1 AND cell BETWEEN ?2 AND ?3",
    )?;
    let mut out = Vec::new();
    for b in band(s)..=band(n) {
        let mut rows = st.query(params![
            kind_code(kind),
            b * BAND_CELLS + west,
            b * BAND_CELLS + east
        ])?;
        while let Some(r) = rows.next()? {
            let point = (r.get::<_, f64>(1)?, r.get::<_, f64>(2)?);
            if distance_m(near.centre, point) <= near.metres {
                out.push(key(r)?);
            }
        }
    }
    Ok(out)
}

/// Every loaded postcode within `metres` of `centre`: the centroids' R*Tree gives those in the
/// bounding box, the great-circle distance decides.
pub fn postcodes_within(
    conn: &Connection,
    centre: (f64, f64),
    metres: f64,
) -> Result<Vec<String>, StoreError> {
    let near = Near { centre, metres };
    let (s, n, w, e) = bounding_box(&near);
    let mut st = conn.prepare_cached(
        "SELECT c.postcode, c.lat, c.lon FROM postcode_rtree t
         JOIN postcode_centroids c ON c.id = t.id
         WHERE t.max_lat >= ?1 AND t.min_lat <= ?2 AND t.max_lon >= ?3 AND t.min_lon <= ?4",
    )?;
    let mut rows = st.query(params![s, n, w, e])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        if distance_m(centre, (r.get(1)?, r.get(2)?)) <= metres {
            out.push(r.get(0)?);
        }
    }
    Ok(out)
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
