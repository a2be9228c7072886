//! Partner-given coordinates: read from the forms feeds write them in (JSON numbers or numeric
//! strings, iCalendar's `GEO:lat;lon`) and checked, so only a plausible WGS84 point is kept. A
//! point that fails is dropped with a reason for the feed's warnings; its record still lands.

use serde_json::Value;

/// A checked point, (latitude, longitude) in degrees.
pub type Point = (f64, f64);

/// Whether a point is one a map can show: finite, latitude within ±90, longitude within ±180,
/// and not the (0, 0) a form's empty fields default to.
pub fn check(lat: f64, lon: f64) -> Result<Point, String> {
    if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
        return Err(format!("latitude {lat} is not from -90 to 90"));
    }
    if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("longitude {lon} is not from -180 to 180"));
    }
    if lat == 0.0 && lon == 0.0 {
        return Err("latitude and longitude are both 0 (an unset point)".into());
    }
    Ok((lat, lon))
}

/// A coordinate given as text: a decimal number, surrounding space allowed.
fn number_in(text: &str, what: &str) -> Result<f64, String> {
    let t = text.trim();
    // `f64::from_str` also reads "inf" and "NaN"; a coordinate is digits.
    let digits = t
        .trim_start_matches(['-', '+'])
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+');
    t.parse::<f64>()
        .ok()
        .filter(|_| digits && !t.is_empty())
        .ok_or_else(|| format!("{what} {t:?} is not a number"))
}

/// A coordinate as a JSON value: a number, a numeric string, or (as some exporters write) a
/// one-element array of either. `Ok(None)` when absent, null or blank.
fn json_number(v: Option<&Value>, what: &str) -> Result<Option<f64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{what} {n} is not a number")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => number_in(s, what).map(Some),
        Some(Value::Array(a)) if a.len() == 1 => json_number(a.first(), what),
        Some(other) => Err(format!("{what} {other} is not a number")),
    }
}

/// Both halves or neither: half a point places nothing.
fn pair(lat: Option<f64>, lon: Option<f64>) -> Result<Option<Point>, String> {
    match (lat, lon) {
        (None, None) => Ok(None),
        (Some(la), Some(lo)) => check(la, lo).map(Some),
        (Some(_), None) => Err("latitude without longitude".into()),
        (None, Some(_)) => Err("longitude without latitude".into()),
    }
}

/// A point from two JSON values (`latitude`/`longitude` of ORUK locations, schema.org
/// `GeoCoordinates`, OpenActive `geo`).
pub fn from_json(lat: Option<&Value>, lon: Option<&Value>) -> Result<Option<Point>, String> {
    pair(
        json_number(lat, "latitude")?,
        json_number(lon, "longitude")?,
    )
}

/// A point from an iCalendar `GEO` value: `latitude;longitude` (RFC 5545 3.8.1.6). Some
/// exporters write a comma; it is read the same way.
pub fn from_ical(value: &str) -> Result<Option<Point>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let (lat, lon) = v
        .split_once(';')
        .or_else(|| v.split_once(','))
        .ok_or_else(|| format!("GEO {v:?} is not latitude;longitude"))?;
    pair(
        Some(number_in(lat, "latitude")?),
        Some(number_in(lon, "longitude")?),
    )
    .map_err(|e| format!("GEO {v:?}: {e}"))
}

/// A stored point, if both halves are there and it passes [`check`]: what the normaliser keeps
/// of coordinates that came in through a format with no reader of its own (tributary-json).
pub fn kept(lat: Option<f64>, lon: Option<f64>) -> Option<Point> {
    pair(lat, lon).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_and_numeric_strings_are_read() {
        assert_eq!(
            from_json(Some(&json!(53.09)), Some(&json!("-2.44"))),
            Ok(Some((53.09, -2.44)))
        );
        assert_eq!(
            from_json(Some(&json!(" 51.5 ")), Some(&json!(["-0.12"]))),
            Ok(Some((51.5, -0.12)))
        );
        assert_eq!(from_json(None, Some(&json!(""))), Ok(None));
        assert_eq!(from_ical("53.09;-2.44"), Ok(Some((53.09, -2.44))));
    }

    #[test]
    fn implausible_points_are_refused_with_a_reason() {
        for (lat, lon) in [
            (json!(91), json!(0.5)),
            (json!(52), json!(-181)),
            (json!(0), json!("0.0")),
            (json!("NaN"), json!(1)),
            (json!("inf"), json!(1)),
            (json!("north"), json!(1)),
            (json!({"a": 1}), json!(1)),
        ] {
            assert!(from_json(Some(&lat), Some(&lon)).is_err(), "{lat} {lon}");
        }
        assert!(from_json(Some(&json!(52.0)), None).is_err());
        assert!(from_ical("52.1").is_err());
        assert!(from_ical("952.1;1").is_err());
        assert_eq!(kept(Some(100.0), Some(1.0)), None);
        assert_eq!(kept(Some(f64::NAN), Some(1.0)), None);
    }
}
