//! The `tributary-json` format: the canonical shapes with the partner's own `id` (and optional
//! `url`, `updated_at`) as `{"organisations": [...]}` or `{"events": [...]}`. Each item is read on
//! its own, so one bad item is a rejection naming the problem and the rest still land.
//!
//! Event times are RFC 3339 with an offset; a local `2027-01-25T13:00:00` only when the event
//! names its `timezone`; a date `2027-01-25` makes the event all-day from local midnight (in its
//! `timezone`, default Europe/London), and a date `end` is exclusive, as in the canonical model.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::ParseError;
use crate::model::{
    Event, EventStatus, Location, Organisation, Organiser, ParsedFeed, Payload, RecordKind,
    Rejection, SourceRecord,
};
use crate::normalise;

const FORMAT: &str = "tributary-json";

/// Zone assumed for dates and local times when an event names none.
pub const DEFAULT_TZ: Tz = chrono_tz::Europe::London;

/// A time as a partner wrote it, before it is placed in a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// RFC 3339 with an offset: an instant.
    Instant(DateTime<FixedOffset>),
    /// A wall-clock time with no offset.
    Local(NaiveDateTime),
    /// A date alone: an all-day event.
    Date(NaiveDate),
}

/// Reads RFC 3339, a local `YYYY-MM-DD[T| ]HH:MM[:SS]`, or a date `YYYY-MM-DD`.
pub fn parse_when(s: &str) -> Option<When> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(When::Instant(t));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(When::Local(n));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(When::Date)
}

/// Midnight at the start of `d` in `tz` (a zone whose clocks change at midnight has none on that
/// day; the error says so).
pub fn local_midnight(d: NaiveDate, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    normalise::localise(d.and_time(chrono::NaiveTime::MIN), tz)
}

/// An event as partners write it: times are strings read by [`parse_when`].
#[derive(Deserialize)]
struct RawEvent {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    description_html: Option<String>,
    start: String,
    #[serde(default)]
    end: Option<String>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    all_day: bool,
    #[serde(default)]
    recurrence: Option<Recurrence>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    location: Location,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    booking_url: Option<String>,
    #[serde(default)]
    organiser: Organiser,
    #[serde(default)]
    categories: Vec<String>,
}

/// Recurrence lines as an array (canonical) or one string with a line per line.
#[derive(Deserialize)]
#[serde(untagged)]
enum Recurrence {
    Lines(Vec<String>),
    Text(String),
}

pub fn parse(kind: RecordKind, bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let invalid = |reason: String| ParseError::Invalid {
        format: FORMAT,
        reason,
    };
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| {
        let start: String = String::from_utf8_lossy(bytes)
            .trim_start()
            .chars()
            .take(40)
            .collect();
        invalid(format!("not JSON ({e}); it starts {start:?}"))
    })?;
    let key = kind.as_str();
    let Value::Object(mut doc) = doc else {
        return Err(invalid(format!(
            "expected an object {{\"{key}\": [...]}}, found {}",
            type_name(&doc)
        )));
    };
    let items = match doc.remove(key) {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(invalid(format!(
                "\"{key}\" must be an array, found {}",
                type_name(&other)
            )))
        }
        None => {
            let found: Vec<String> = doc.keys().map(|k| format!("{k:?}")).collect();
            return Err(invalid(format!(
                "no top-level \"{key}\" array (found {}); is the feed's kind right?",
                if found.is_empty() {
                    "no keys".to_string()
                } else {
                    found.join(", ")
                }
            )));
        }
    };

    let mut feed = ParsedFeed::default();
    let mut seen = std::collections::HashMap::new();
    for (i, item) in items.into_iter().enumerate() {
        let n = i + 1;
        let id = item_id(&item);
        let label = match &id {
            Some(id) => format!("item {n} (id {id:?})"),
            None => format!("item {n}"),
        };
        // The first item with an id claims it, even if it is rejected, so a later item can never
        // silently stand in for it.
        if let Some(id) = &id {
            if let Some(first) = seen.get(id) {
                feed.rejections.push(Rejection {
                    source_id: Some(id.clone()),
                    reason: format!("{label}: duplicate id: item {first} has the same id"),
                });
                continue;
            }
            seen.insert(id.clone(), n);
        }
        match record(kind, item) {
            Ok(rec) => feed.records.push(rec),
            Err(reason) => feed.rejections.push(Rejection {
                source_id: id,
                reason: format!("{label}: {reason}"),
            }),
        }
    }
    Ok(feed)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The partner's id: a non-empty string or an integer.
fn item_id(item: &Value) -> Option<String> {
    match item.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn take_str(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} must be a string, not {}", type_name(&other))),
    }
}

/// Deserialises `obj` as `T`; on failure, names the field at fault, which serde's message alone
/// does not ("invalid type: sequence, expected a string").
fn typed<T: DeserializeOwned>(obj: Map<String, Value>, required: &[&str]) -> Result<T, String> {
    match serde_json::from_value::<T>(Value::Object(obj.clone())) {
        Ok(t) => Ok(t),
        Err(e) => {
            // Try each field alone (with the required ones) to find the one serde refused.
            let base: Map<String, Value> = required
                .iter()
                .map(|k| (k.to_string(), Value::String(String::new())))
                .collect();
            for (k, v) in &obj {
                let mut probe = base.clone();
                probe.insert(k.clone(), v.clone());
                if let Err(field_err) = serde_json::from_value::<T>(Value::Object(probe)) {
                    return Err(format!("{k}: {field_err}"));
                }
            }
            Err(e.to_string())
        }
    }
}

fn record(kind: RecordKind, item: Value) -> Result<SourceRecord, String> {
    let Value::Object(mut obj) = item else {
        return Err(format!(
            "each item must be a JSON object, not {}",
            type_name(&item)
        ));
    };
    let source_id = match obj.remove("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        None | Some(Value::Null) => {
            return Err("missing id (each item needs the partner's own id)".into())
        }
        Some(other) => {
            return Err(format!(
                "id must be a non-empty string or an integer, not {}",
                type_name(&other)
            ))
        }
    };
    let url = take_str(&mut obj, "url")?;
    let updated_at = match take_str(&mut obj, "updated_at")? {
        None => None,
        Some(s) => Some(DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
            format!("updated_at {s:?} is not an RFC 3339 date-time such as 2027-01-25T13:00:00Z")
        })?),
    };
    // Provenance is ours to add, never the partner's.
    for ours in ["partners", "field_sources", "kind"] {
        obj.remove(ours);
    }
    let payload = match kind {
        RecordKind::Organisations => Payload::Organisation(typed::<Organisation>(obj, &[])?),
        RecordKind::Events => Payload::Event(event(typed::<RawEvent>(obj, &["title", "start"])?)?),
    };
    Ok(SourceRecord {
        source_id,
        url,
        updated_at,
        payload,
    })
}

fn event(raw: RawEvent) -> Result<Event, String> {
    let named = match raw.timezone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(normalise::zone(name).ok_or_else(|| {
            format!("timezone {name:?} is not a known time zone (use an IANA name such as Europe/London)")
        })?),
    };
    let placed = |field: &str, s: &str| -> Result<(DateTime<FixedOffset>, bool), String> {
        match parse_when(s) {
            // Shown in the event's own zone when it names one; the instant is unchanged.
            Some(When::Instant(t)) => Ok((named.map_or(t, |tz| t.with_timezone(&tz).fixed_offset()), false)),
            Some(When::Local(n)) => match named {
                Some(tz) => normalise::localise(n, tz)
                    .map(|t| (t, false))
                    .map_err(|e| format!("{field} {s:?}: {e}")),
                None => Err(format!(
                    "{field} {s:?} has no UTC offset; give one ({}+00:00) or set \"timezone\"",
                    n.format("%Y-%m-%dT%H:%M:%S")
                )),
            },
            Some(When::Date(d)) => local_midnight(d, named.unwrap_or(DEFAULT_TZ))
                .map(|t| (t, true))
                .map_err(|e| format!("{field} {s:?}: {e}")),
            None => Err(format!(
                "{field} {s:?} is not an RFC 3339 date-time such as 2027-01-25T13:00:00+00:00 (or a date 2027-01-25 for an all-day event)"
            )),
        }
    };
    let (start, start_is_date) = placed("start", &raw.start)?;
    let end = match raw.end.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(placed("end", s)?.0),
    };
    let all_day = raw.all_day || start_is_date;
    let timezone = named
        .or_else(|| (all_day && start_is_date).then_some(DEFAULT_TZ))
        .or_else(|| normalise::zone_for_offset(start));
    let status = match raw.status.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
        None => EventStatus::Scheduled,
        Some(s) if s.is_empty() || s == "scheduled" || s == "confirmed" => EventStatus::Scheduled,
        Some(s) if s == "cancelled" || s == "canceled" => EventStatus::Cancelled,
        Some(other) => return Err(format!("status {other:?} must be scheduled or cancelled")),
    };
    let recurrence = match raw.recurrence {
        None => None,
        Some(Recurrence::Lines(l)) => Some(l),
        Some(Recurrence::Text(t)) => Some(t.lines().map(str::to_string).collect()),
    }
    .filter(|l| l.iter().any(|line| !line.trim().is_empty()));
    Ok(Event {
        title: raw.title,
        description: raw.description,
        description_html: raw.description_html,
        start,
        end,
        timezone: timezone.map(|tz| tz.name().to_string()),
        all_day,
        recurrence,
        status,
        location: raw.location,
        url: raw.url,
        booking_url: raw.booking_url,
        organiser: raw.organiser,
        categories: raw.categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(json: &str) -> ParsedFeed {
        parse(RecordKind::Events, json.as_bytes()).unwrap()
    }

    fn event_at(feed: &ParsedFeed, i: usize) -> &Event {
        match &feed.records[i].payload {
            Payload::Event(e) => e,
            Payload::Organisation(_) => panic!("not an event"),
        }
    }

    #[test]
    fn organisations_map_with_provenance_fields() {
        let feed = parse(
            RecordKind::Organisations,
            br#"{"organisations": [
                {"id": "o1", "name": "Child Dynamix", "identifiers": {"charity_number": "1123456"},
                 "address": {"postcode": "HU3 2AA"}, "categories": ["Children"],
                 "url": "https://x/o1", "updated_at": "2026-10-01T09:00:00+01:00",
                 "partners": [{"partner": "spoof", "record_id": "1"}], "extra": true},
                {"id": 42, "name": "Numbered"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(feed.rejections, vec![]);
        let r = &feed.records[0];
        assert_eq!(r.source_id, "o1");
        assert_eq!(r.url.as_deref(), Some("https://x/o1"));
        assert_eq!(
            r.updated_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-10-01T09:00:00+01:00")
        );
        let Payload::Organisation(o) = &r.payload else {
            panic!("not an organisation")
        };
        assert_eq!(o.name, "Child Dynamix");
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1123456"));
        assert_eq!(o.address.postcode.as_deref(), Some("HU3 2AA"));
        assert_eq!(feed.records[1].source_id, "42");
    }

    #[test]
    fn one_bad_organisation_is_rejected_and_the_rest_land() {
        let feed = parse(
            RecordKind::Organisations,
            br#"{"organisations": [
                {"name": "No id"},
                {"id": 7, "name": ["not", "a", "string"]},
                {"id": "o1", "name": "First"},
                {"id": "o1", "name": "Again"},
                "just a string",
                {"id": "o2", "name": "Bad date", "updated_at": "yesterday"},
                {"id": {"x": 1}, "name": "Object id"},
                {"id": "o3", "name": "Fine"}
            ]}"#,
        )
        .unwrap();
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(ids, vec!["o1", "o3"]);
        let reasons: Vec<&str> = feed.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        assert!(reasons[0].starts_with("item 1: missing id"), "{reasons:?}");
        assert_eq!(feed.rejections[1].source_id.as_deref(), Some("7"));
        assert!(
            reasons[1].contains("name: invalid type: sequence"),
            "{reasons:?}"
        );
        assert!(reasons[2].contains("duplicate id: item 3"), "{reasons:?}");
        assert!(reasons[3].contains("must be a JSON object"), "{reasons:?}");
        assert!(
            reasons[4].contains("updated_at \"yesterday\""),
            "{reasons:?}"
        );
        assert!(reasons[5].contains("id must be"), "{reasons:?}");
    }

    #[test]
    fn event_times_rfc3339_local_and_dates() {
        let feed = events(
            r#"{"events": [
                {"id": "e1", "title": "Webinar", "start": "2022-01-25T13:00:00+00:00", "end": "2022-01-25T15:00:00Z"},
                {"id": "e2", "title": "Summer fair", "start": "2027-07-10T10:00:00", "end": "2027-07-10T16:00", "timezone": "Europe/London"},
                {"id": "e3", "title": "Volunteers' Week", "start": "2027-06-01", "end": "2027-06-08"},
                {"id": "e4", "title": "UTC given, zone named", "start": "2027-07-10T09:00:00Z", "timezone": "Europe/London"},
                {"id": "e5", "title": "Paris", "start": "2027-07-10T10:00:00+02:00"},
                {"id": "e6", "title": "All day flag", "start": "2027-12-25T00:00:00+00:00", "all_day": true}
            ]}"#,
        );
        assert_eq!(feed.rejections, vec![]);
        let e1 = event_at(&feed, 0);
        assert_eq!(e1.start.to_rfc3339(), "2022-01-25T13:00:00+00:00");
        assert_eq!(e1.end.unwrap().to_rfc3339(), "2022-01-25T15:00:00+00:00");
        assert_eq!(
            e1.timezone.as_deref(),
            Some("Europe/London"),
            "London's offset"
        );
        assert!(!e1.all_day);
        let e2 = event_at(&feed, 1);
        assert_eq!(e2.start.to_rfc3339(), "2027-07-10T10:00:00+01:00");
        assert_eq!(e2.end.unwrap().to_rfc3339(), "2027-07-10T16:00:00+01:00");
        let e3 = event_at(&feed, 2);
        assert!(e3.all_day);
        assert_eq!(e3.start.to_rfc3339(), "2027-06-01T00:00:00+01:00");
        assert_eq!(e3.end.unwrap().to_rfc3339(), "2027-06-08T00:00:00+01:00");
        assert_eq!(e3.timezone.as_deref(), Some("Europe/London"));
        let e4 = event_at(&feed, 3);
        assert_eq!(e4.start.to_rfc3339(), "2027-07-10T10:00:00+01:00");
        let e5 = event_at(&feed, 4);
        assert_eq!(
            e5.timezone, None,
            "an offset that is not London's names no zone"
        );
        assert!(event_at(&feed, 5).all_day);
    }

    #[test]
    fn bad_event_times_are_rejected_with_the_reason() {
        let feed = events(
            r#"{"events": [
                {"id": "gap", "title": "Gap", "start": "2027-03-28T01:30", "timezone": "Europe/London"},
                {"id": "twice", "title": "Twice", "start": "2027-10-31T01:30:00", "timezone": "Europe/London"},
                {"id": "zone", "title": "Bad zone", "start": "2027-03-01T10:00", "timezone": "Mars/Olympus"},
                {"id": "naive", "title": "No zone", "start": "2022-01-25T13:00:00"},
                {"id": "month", "title": "Bad date", "start": "2022-13-45T10:00:00Z"},
                {"id": "num", "title": "Number", "start": 1643115600},
                {"id": "notitle", "start": "2022-01-25T13:00:00Z"},
                {"id": "status", "title": "Odd status", "start": "2022-01-25T13:00:00Z", "status": "maybe"},
                {"id": "ok", "title": "Fine", "start": "2022-01-25T13:00:00Z", "status": "Canceled"}
            ]}"#,
        );
        assert_eq!(feed.records.len(), 1);
        assert_eq!(event_at(&feed, 0).status, EventStatus::Cancelled);
        let reason = |id: &str| {
            feed.rejections
                .iter()
                .find(|r| r.source_id.as_deref() == Some(id))
                .map(|r| r.reason.clone())
                .unwrap_or_default()
        };
        assert!(
            reason("gap").contains("does not exist"),
            "{}",
            reason("gap")
        );
        assert!(
            reason("twice").contains("happens twice"),
            "{}",
            reason("twice")
        );
        assert!(reason("zone").contains("Mars/Olympus"));
        assert!(
            reason("naive").contains("no UTC offset"),
            "{}",
            reason("naive")
        );
        assert!(reason("month").contains("\"2022-13-45T10:00:00Z\" is not an RFC 3339"));
        assert!(
            reason("num").contains("start: invalid type: integer"),
            "{}",
            reason("num")
        );
        assert!(reason("notitle").contains("missing field `title`"));
        assert!(reason("status").contains("must be scheduled or cancelled"));
    }

    #[test]
    fn recurrence_and_nested_shapes_map_as_given() {
        let feed = events(
            r#"{"events": [
                {"id": "r1", "title": "Cafe", "start": "2027-01-05T10:00:00+00:00",
                 "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=TU", "EXDATE;TZID=Europe/London:20270112T100000"],
                 "location": {"name": "Hall", "postcode": "sk11 6ab", "online": false},
                 "organiser": {"name": "CVS"}, "categories": ["Food"], "booking_url": "https://eventbrite.co.uk/e/1"},
                {"id": "r2", "title": "Text rule", "start": "2027-01-05T10:00:00+00:00",
                 "recurrence": "RRULE:FREQ=DAILY;COUNT=2\nEXDATE:20270106T100000Z"},
                {"id": "r3", "title": "Empty rule", "start": "2027-01-05T10:00:00+00:00", "recurrence": []}
            ]}"#,
        );
        assert_eq!(feed.rejections, vec![]);
        let r1 = event_at(&feed, 0);
        assert_eq!(r1.recurrence.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            r1.location.postcode.as_deref(),
            Some("sk11 6ab"),
            "adapters only map"
        );
        assert_eq!(r1.organiser.name.as_deref(), Some("CVS"));
        assert_eq!(
            event_at(&feed, 1).recurrence.as_deref(),
            Some(
                &[
                    "RRULE:FREQ=DAILY;COUNT=2".to_string(),
                    "EXDATE:20270106T100000Z".to_string()
                ][..]
            )
        );
        assert_eq!(event_at(&feed, 2).recurrence, None);
    }

    #[test]
    fn not_json_or_wrong_shape_fails_the_feed() {
        let err = |kind, body: &[u8]| parse(kind, body).unwrap_err().to_string();
        assert!(err(RecordKind::Events, b"<html>502 Bad Gateway</html>").contains("not JSON"));
        assert!(err(RecordKind::Events, b"").contains("not JSON"));
        let wrong_key = err(RecordKind::Events, br#"{"organisations": []}"#);
        assert!(
            wrong_key.contains("\"events\"") && wrong_key.contains("\"organisations\""),
            "{wrong_key}"
        );
        assert!(err(RecordKind::Events, br#"[{"id": 1}]"#).contains("found an array"));
        assert!(err(RecordKind::Events, br#"{"events": {"id": 1}}"#).contains("must be an array"));
        let ok = parse(RecordKind::Events, b"\xef\xbb\xbf{\"events\": []}").unwrap();
        assert_eq!(ok, ParsedFeed::default());
    }
}
