//! Times as partners write them: an instant, a wall-clock time in a zone, or a date, and the zone
//! assumed when a feed names none. Shared by every adapter that reads dates from text.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};

/// Zone assumed for local times when an event names none.
pub const DEFAULT_TZ: chrono_tz::Tz = chrono_tz::Europe::London;

/// A wall-clock time in `tz`; a time that occurs twice (clocks going back) is the first, as
/// calendars do; `None` for a time the clocks skip.
pub fn local_time(tz: chrono_tz::Tz, naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
}

/// An RFC 3339 instant, a local date-time in `tz`, or a date (local midnight; second value true).
pub fn instant(s: &str, tz: chrono_tz::Tz) -> Result<(DateTime<FixedOffset>, bool), String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok((t, false));
    }
    let local = |naive: NaiveDateTime| -> Result<DateTime<FixedOffset>, String> {
        local_time(tz, naive)
            .ok_or_else(|| format!("{s:?} does not exist in {} (the clocks skip it)", tz.name()))
    };
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return local(n).map(|t| (t, false));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let midnight = d
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| format!("{s:?} is not a date"))?;
        return local(midnight).map(|t| (t, true));
    }
    Err(format!(
        "{s:?} is not a date-time (RFC 3339 such as 2027-01-25T13:00:00+00:00, local 2027-01-25 13:00, or a date 2027-01-25)"
    ))
}
