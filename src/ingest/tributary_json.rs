//! The `tributary-json` format: the canonical shapes with the partner's own `id` (and optional
//! `url`, `updated_at`), as `{"organisations": [...]}` or `{"events": [...]}`. Each item is read on
//! its own, so one bad item is a rejection naming the problem and the rest still land.

use chrono::DateTime;
use serde::Deserialize;
use serde_json::Value;

use super::ParseError;
use crate::model::{
    Event, EventStatus, Location, Organisation, Organiser, ParsedFeed, Payload, RecordKind,
    Rejection, SourceRecord,
};

const FORMAT: &str = "tributary-json";

use super::times::{instant, DEFAULT_TZ};

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    organisations: Option<Vec<Value>>,
    #[serde(default)]
    events: Option<Vec<Value>>,
}

/// An event as partners write it: times may be RFC 3339, local (with `timezone`) or a date.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    recurrence: Option<Vec<String>>,
    #[serde(default)]
    status: EventStatus,
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

pub fn parse(kind: RecordKind, bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let invalid = |reason: String| ParseError::Invalid {
        format: FORMAT,
        reason,
    };
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let items = match kind {
        RecordKind::Organisations => env.organisations,
        RecordKind::Events => env.events,
    }
    .ok_or_else(|| invalid(format!("no top-level \"{}\" array", kind.as_str())))?;
    let mut feed = ParsedFeed::default();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let id = item_id(&item);
        let label = id.clone().unwrap_or_else(|| format!("item {}", i + 1));
        match record(kind, item) {
            Ok(rec) => {
                if seen.insert(rec.source_id.clone()) {
                    feed.records.push(rec);
                } else {
                    feed.rejections.push(Rejection {
                        source_id: id,
                        reason: "duplicate id: an earlier item in this feed has the same id".into(),
                    });
                }
            }
            Err(reason) => feed.rejections.push(Rejection {
                source_id: id,
                reason: format!("{label}: {reason}"),
            }),
        }
    }
    Ok(feed)
}

/// A partner's own `id` field: a non-blank string (trimmed) or a number.
pub(crate) fn item_id(item: &Value) -> Option<String> {
    match item.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn take_str(obj: &mut serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key} must be a string, not {other}")),
    }
}

fn record(kind: RecordKind, item: Value) -> Result<SourceRecord, String> {
    let Value::Object(mut obj) = item else {
        return Err("each item must be a JSON object".into());
    };
    let source_id = match obj.remove("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("missing id (each item needs the partner's own id)".into()),
    };
    let url = take_str(&mut obj, "url")?;
    let updated_at = match take_str(&mut obj, "updated_at")? {
        None => None,
        Some(s) => Some(
            DateTime::parse_from_rfc3339(&s)
                .map_err(|_| format!("updated_at {s:?} is not an RFC 3339 date-time"))?,
        ),
    };
    // Provenance is ours to add, never the partner's.
    obj.remove("partners");
    obj.remove("field_sources");
    let rest = Value::Object(obj);
    let payload = match kind {
        RecordKind::Organisations => Payload::Organisation(
            serde_json::from_value::<Organisation>(rest).map_err(|e| e.to_string())?,
        ),
        RecordKind::Events => {
            let raw: RawEvent = serde_json::from_value(rest).map_err(|e| e.to_string())?;
            Payload::Event(event(raw)?)
        }
    };
    Ok(SourceRecord {
        source_id,
        url,
        updated_at,
        payload,
    })
}

fn event(raw: RawEvent) -> Result<Event, String> {
    // The canonical shape requires a title (only an iCalendar VEVENT may come without one).
    if raw.title.trim().is_empty() {
        return Err("event has no title".into());
    }
    let tz: chrono_tz::Tz = match raw.timezone.as_deref() {
        None => DEFAULT_TZ,
        Some(name) => name
            .parse()
            .map_err(|_| format!("timezone {name:?} is not an IANA time zone"))?,
    };
    let (start, start_is_date) = instant(&raw.start, tz).map_err(|e| format!("start: {e}"))?;
    let end = match raw.end.as_deref() {
        None => None,
        Some(s) => Some(instant(s, tz).map_err(|e| format!("end: {e}"))?.0),
    };
    let all_day = raw.all_day || start_is_date;
    // Recurrence lines are checked and made canonical as the ical adapter does: one that cannot
    // be read (a quoted ':' in a parameter, a raw CR/LF, an unknown zone) rejects the event.
    let recurrence = match raw.recurrence.filter(|r| !r.is_empty()) {
        None => None,
        Some(lines) => {
            let anchor = crate::recurrence::Anchor { start, tz, all_day };
            let (kept, problems) =
                crate::recurrence::normalise(&lines, &anchor, &crate::recurrence::zone);
            if let Some(p) = problems.first() {
                return Err(format!("recurrence: {p}"));
            }
            Some(kept).filter(|k| !k.is_empty())
        }
    };
    Ok(Event {
        title: raw.title,
        description: raw.description,
        description_html: raw.description_html,
        start,
        end,
        timezone: Some(tz.name().to_string()),
        all_day,
        recurrence,
        status: raw.status,
        location: raw.location,
        url: raw.url,
        booking_url: raw.booking_url,
        organiser: raw.organiser,
        categories: raw.categories,
        overrides: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_with_one_bad_item() {
        let feed = parse(
            RecordKind::Organisations,
            br#"{"organisations": [
                {"id": "o1", "name": "Child Dynamix", "identifiers": {"charity_number": "1123456"},
                 "address": {"postcode": "HU3 2AA"}, "categories": ["Children"], "url": "https://x/o1"},
                {"name": "No id"},
                {"id": 7, "name": ["not", "a", "string"]},
                {"id": "o1", "name": "Again"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(feed.records.len(), 1);
        assert_eq!(feed.records[0].url.as_deref(), Some("https://x/o1"));
        assert_eq!(feed.rejections.len(), 3);
        assert!(feed.rejections[0].reason.contains("missing id"));
        assert_eq!(feed.rejections[1].source_id.as_deref(), Some("7"));
        assert!(feed.rejections[2].reason.contains("duplicate"));
    }

    #[test]
    fn recurrence_lines_are_validated_and_made_canonical() {
        let doc = serde_json::json!({"events": [
            {"id": "ok", "title": "Cafe", "start": "2027-01-05T10:00:00", "timezone": "Europe/London",
             "recurrence": ["RRULE:FREQ=WEEKLY;UNTIL=20270301T100000", "EXDATE;TZID=Europe/London:20270112T100000"]},
            {"id": "quoted", "title": "Q", "start": "2027-01-05T10:00:00",
             "recurrence": ["EXDATE;TZID=\"Europe/London:X\":20270112T100000"]},
            {"id": "crlf", "title": "C", "start": "2027-01-05T10:00:00",
             "recurrence": ["RRULE:FREQ=WEEKLY\r\nX-EVIL:1"]},
            {"id": "secondly", "title": "S", "start": "2027-01-05T10:00:00",
             "recurrence": ["RRULE:FREQ=SECONDLY"]},
            {"id": "untitled", "title": " ", "start": "2027-01-05T10:00:00"}
        ]});
        let feed = parse(RecordKind::Events, doc.to_string().as_bytes()).unwrap();
        assert_eq!(feed.records.len(), 1, "{:?}", feed.rejections);
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(
            e.recurrence.as_deref().unwrap(),
            [
                "RRULE:FREQ=WEEKLY;UNTIL=20270301T100000Z",
                "EXDATE:20270112T100000Z"
            ]
        );
        let reasons: Vec<&str> = feed.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("quote"), "{}", reasons[0]);
        assert!(reasons[1].contains("control character"), "{}", reasons[1]);
        assert!(reasons[2].contains("SECONDLY"), "{}", reasons[2]);
        // The canonical shape requires a title.
        assert!(reasons[3].contains("no title"), "{}", reasons[3]);
    }

    #[test]
    fn event_times_rfc3339_local_and_dates() {
        let feed = parse(
            RecordKind::Events,
            br#"{"events": [
                {"id": "e1", "title": "Webinar", "start": "2022-01-25T13:00:00+00:00", "end": "2022-01-25T15:00:00Z"},
                {"id": "e2", "title": "Summer fair", "start": "2027-07-10T10:00", "timezone": "Europe/London"},
                {"id": "e3", "title": "Volunteers' Week", "start": "2027-06-01", "end": "2027-06-08"},
                {"id": "e4", "title": "Bad", "start": "2027-03-28T01:30", "timezone": "Europe/London"},
                {"id": "e5", "title": "Bad zone", "start": "2027-03-01T10:00", "timezone": "Mars/Olympus"}
            ]}"#,
        )
        .unwrap();
        assert_eq!(feed.records.len(), 3, "{:?}", feed.rejections);
        let Payload::Event(e2) = &feed.records[1].payload else {
            panic!()
        };
        assert_eq!(e2.start.to_rfc3339(), "2027-07-10T10:00:00+01:00");
        let Payload::Event(e3) = &feed.records[2].payload else {
            panic!()
        };
        assert!(e3.all_day);
        assert_eq!(e3.start.to_rfc3339(), "2027-06-01T00:00:00+01:00");
        assert!(
            feed.rejections[0].reason.contains("does not exist"),
            "{:?}",
            feed.rejections
        );
        assert!(feed.rejections[1].reason.contains("Mars/Olympus"));
    }

    #[test]
    fn not_json_or_wrong_key_fails_the_feed() {
        assert!(parse(RecordKind::Events, b"<html>502 Bad Gateway</html>").is_err());
        let err = parse(RecordKind::Events, br#"{"organisations": []}"#).unwrap_err();
        assert!(err.to_string().contains("\"events\""));
    }
}
