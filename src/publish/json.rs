//! JSON API pages and event occurrences. Bodies are stored already rendered, so a page is spliced
//! from them without re-serialising; recurring series are expanded into occurrences with the
//! `rrule` crate in the event's own time zone, so a weekly 10:00 stays 10:00 across BST changes.

use chrono::{DateTime, FixedOffset, Utc};

use crate::model::Event;

/// Upper bound on occurrences expanded per series per request; a daily series over a year fits.
pub const MAX_OCCURRENCES: u16 = 1000;

/// `{"items": [...], "next": url-or-null}` from pre-rendered JSON bodies.
pub fn page<'a>(bodies: impl IntoIterator<Item = &'a str>, next: Option<&str>) -> String {
    let mut out = String::from("{\"items\":[");
    for (i, b) in bodies.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(b);
    }
    out.push_str("],\"next\":");
    match next {
        Some(n) => out.push_str(&serde_json::Value::String(n.to_string()).to_string()),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// One occurrence of an event: its start and end in the event's local offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub start: DateTime<FixedOffset>,
    pub end: Option<DateTime<FixedOffset>>,
}

/// Occurrences of `event` that overlap `[from, to)`. A single event yields itself if it overlaps;
/// a series is expanded from its RRULE/RDATE/EXDATE lines. An unreadable rule yields the first
/// occurrence only (the adapter validated it, so this is a safety net, not a code path).
pub fn occurrences(event: &Event, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Occurrence> {
    occurrences_up_to(event, from, to, MAX_OCCURRENCES)
}

/// The first `n` occurrences of `event` overlapping `[from, to)`: enough for a page of `n`.
pub fn first_occurrences(
    event: &Event,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: usize,
) -> Vec<Occurrence> {
    occurrences_up_to(event, from, to, n.min(MAX_OCCURRENCES as usize) as u16)
}

/// Whether `event` has any occurrence overlapping `[from, to)`; stops expanding at the first.
pub fn occurs_between(event: &Event, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    // Two, not one: the first found may end a second before the window (see the lookback).
    !occurrences_up_to(event, from, to, 2).is_empty()
}

fn occurrences_up_to(
    event: &Event,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u16,
) -> Vec<Occurrence> {
    let duration = event.end.map(|e| e - event.start);
    let overlaps = |start: DateTime<FixedOffset>| {
        let end = duration.map(|d| start + d).unwrap_or(start);
        start < to && (end >= from || start >= from)
    };
    let Some(lines) = event.recurrence.as_ref().filter(|l| !l.is_empty()) else {
        return if overlaps(event.start) {
            vec![Occurrence {
                start: event.start,
                end: event.end,
            }]
        } else {
            Vec::new()
        };
    };
    let tz: rrule::Tz = event
        .timezone
        .as_deref()
        .and_then(|t| t.parse::<chrono_tz::Tz>().ok())
        .map(rrule::Tz::Tz)
        .unwrap_or(rrule::Tz::UTC);
    let local = event.start.with_timezone(&tz);
    let dtstart = match tz {
        rrule::Tz::Tz(chrono_tz::UTC) => format!("DTSTART:{}Z", local.format("%Y%m%dT%H%M%S")),
        _ => format!(
            "DTSTART;TZID={}:{}",
            tz.name(),
            local.format("%Y%m%dT%H%M%S")
        ),
    };
    let text = std::iter::once(dtstart)
        .chain(lines.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n");
    let set: rrule::RRuleSet = match text.parse() {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "unreadable recurrence; using the first occurrence only");
            return if overlaps(event.start) {
                vec![Occurrence {
                    start: event.start,
                    end: event.end,
                }]
            } else {
                Vec::new()
            };
        }
    };
    // Start the window early by the event's length so occurrences already under way are kept.
    let lookback = duration.unwrap_or_default();
    let after = (from - lookback - chrono::Duration::seconds(1)).with_timezone(&tz);
    let before = to.with_timezone(&tz);
    set.after(after)
        .before(before)
        .all(limit)
        .dates
        .into_iter()
        .map(|d| {
            let start = d.fixed_offset();
            Occurrence {
                start,
                end: duration.map(|dur| start + dur),
            }
        })
        .filter(|o| overlaps(o.start))
        .collect()
}

/// The published JSON of one occurrence of a series: the series body with this occurrence's times
/// and `series_start` holding the first one.
pub fn occurrence_body(series_body: &str, occ: &Occurrence) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(series_body).ok()?;
    let obj = v.as_object_mut()?;
    let first = obj.get("start").cloned().unwrap_or(serde_json::Value::Null);
    obj.insert("series_start".into(), first);
    obj.insert("start".into(), occ.start.to_rfc3339().into());
    obj.insert(
        "end".into(),
        occ.end
            .map(|e| e.to_rfc3339().into())
            .unwrap_or(serde_json::Value::Null),
    );
    serde_json::to_string(&v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(start: &str, end: Option<&str>, tz: Option<&str>, rec: Option<Vec<&str>>) -> Event {
        Event {
            title: "Community cafe".into(),
            description: None,
            description_html: None,
            start: DateTime::parse_from_rfc3339(start).unwrap(),
            end: end.map(|e| DateTime::parse_from_rfc3339(e).unwrap()),
            timezone: tz.map(String::from),
            all_day: false,
            recurrence: rec.map(|r| r.into_iter().map(String::from).collect()),
            status: Default::default(),
            location: Default::default(),
            url: None,
            booking_url: None,
            organiser: Default::default(),
            categories: vec![],
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn page_splices_bodies() {
        let p = page(["{\"a\":1}", "{\"b\":2}"], Some("http://x/?cursor=1"));
        let v: serde_json::Value = serde_json::from_str(&p).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["next"], "http://x/?cursor=1");
        let empty: serde_json::Value = serde_json::from_str(&page([], None)).unwrap();
        assert!(empty["next"].is_null());
    }

    #[test]
    fn single_event_in_or_out_of_window() {
        let e = ev(
            "2022-01-25T13:00:00+00:00",
            Some("2022-01-25T15:00:00+00:00"),
            None,
            None,
        );
        assert_eq!(
            occurrences(&e, utc("2022-01-01T00:00:00Z"), utc("2022-02-01T00:00:00Z")).len(),
            1
        );
        assert!(
            occurrences(&e, utc("2023-01-01T00:00:00Z"), utc("2024-01-01T00:00:00Z")).is_empty()
        );
        // Under way at `from`: still listed.
        assert_eq!(
            occurrences(&e, utc("2022-01-25T14:00:00Z"), utc("2022-02-01T00:00:00Z")).len(),
            1
        );
    }

    #[test]
    fn weekly_series_keeps_local_time_across_bst_and_honours_exdate() {
        let e = ev(
            "2027-03-16T10:00:00+00:00",
            Some("2027-03-16T12:00:00+00:00"),
            Some("Europe/London"),
            Some(vec![
                "RRULE:FREQ=WEEKLY;BYDAY=TU;COUNT=4",
                "EXDATE;TZID=Europe/London:20270323T100000",
            ]),
        );
        let occ = occurrences(&e, utc("2027-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"));
        let starts: Vec<String> = occ.iter().map(|o| o.start.to_rfc3339()).collect();
        assert_eq!(
            starts,
            vec![
                "2027-03-16T10:00:00+00:00",
                "2027-03-30T10:00:00+01:00",
                "2027-04-06T10:00:00+01:00"
            ]
        );
        assert_eq!(
            occ[1].end.unwrap().to_rfc3339(),
            "2027-03-30T12:00:00+01:00"
        );
    }

    #[test]
    fn occurrence_body_rewrites_times() {
        let body = r#"{"id":"evt_1","start":"2027-03-16T10:00:00+00:00","end":null}"#;
        let occ = Occurrence {
            start: DateTime::parse_from_rfc3339("2027-03-30T10:00:00+01:00").unwrap(),
            end: None,
        };
        let v: serde_json::Value =
            serde_json::from_str(&occurrence_body(body, &occ).unwrap()).unwrap();
        assert_eq!(v["start"], "2027-03-30T10:00:00+01:00");
        assert_eq!(v["series_start"], "2027-03-16T10:00:00+00:00");
    }
}
