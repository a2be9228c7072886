//! JSON API pages and event occurrences. Bodies are stored already rendered, so a page is spliced
//! from them without re-serialising; recurring series are expanded into occurrences with the
//! `rrule` crate in the event's own time zone, so a weekly 10:00 stays 10:00 across BST changes.

use chrono::{DateTime, FixedOffset, Utc};

use serde_json::value::RawValue;

use crate::licence::{Attribution, Attributions};
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

/// A record's provenance as published: each `partners[]` entry gains the partner's `attribution`
/// (its name) and `licence` (`null` when the partner states none). Applied as records are served,
/// not stored, so a changed licence shows after a reload without re-syncing anything. Every other
/// member keeps its bytes and its place: only the `partners` array is rewritten.
pub fn with_attributions(body: &str, attributions: &Attributions) -> String {
    attributed(body, attributions).unwrap_or_else(|| body.to_string())
}

fn attributed(body: &str, attributions: &Attributions) -> Option<String> {
    let Members(mut members) = serde_json::from_str(body).ok()?;
    for (key, value) in members.iter_mut() {
        if key != "partners" {
            continue;
        }
        let refs: Vec<Members> = serde_json::from_str(value.get()).ok()?;
        let mut out = Vec::with_capacity(refs.len());
        for Members(mut r) in refs {
            let partner = r
                .iter()
                .find(|(k, _)| k == "partner")
                .and_then(|(_, v)| serde_json::from_str::<String>(v.get()).ok())
                .unwrap_or_default();
            // A partner no longer configured (removed, in its grace period) is credited by id.
            let (name, licence) = match attributions.get(&partner) {
                Some(Attribution { name, licence, .. }) => (name.clone(), licence.clone()),
                None => (partner, None),
            };
            r.retain(|(k, _)| k != "attribution" && k != "licence");
            r.push(("attribution".into(), raw(&name)?));
            r.push(("licence".into(), raw(&licence)?));
            out.push(object(&r));
        }
        *value = RawValue::from_string(format!("[{}]", out.join(","))).ok()?;
    }
    Some(object(&members))
}

/// The partner ids in a record's provenance (`partners[].partner`); none for a body that is not
/// a record.
pub fn partners_of(body: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Ref {
        partner: String,
    }
    #[derive(serde::Deserialize)]
    struct Record {
        #[serde(default)]
        partners: Vec<Ref>,
    }
    serde_json::from_str::<Record>(body)
        .map(|r| r.partners.into_iter().map(|p| p.partner).collect())
        .unwrap_or_default()
}

fn raw<T: serde::Serialize>(v: &T) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(v).ok()
}

/// `{"k":v,…}` from members in order.
fn object(members: &[(String, Box<RawValue>)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(k.clone()).to_string());
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
    out
}

/// A JSON object's members in the order written, each value's text kept as it is.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One occurrence of an event: its start and end in the event's local offset, and which of the
/// series' overrides (if any) it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub start: DateTime<FixedOffset>,
    pub end: Option<DateTime<FixedOffset>>,
    pub override_index: Option<usize>,
}

/// Occurrences of `event` that overlap `[from, to)`. A single event yields itself if it overlaps;
/// a series is expanded from its RRULE/RDATE/EXDATE lines, with its overrides applied (a moved
/// occurrence replaces its slot, a cancelled one removes it).
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
    let overlaps = |start: DateTime<FixedOffset>, end: Option<DateTime<FixedOffset>>| {
        let end = end.unwrap_or(start);
        start < to && (end >= from || start >= from)
    };
    if event.recurrence.as_ref().is_none_or(|l| l.is_empty()) {
        return if overlaps(event.start, event.end) {
            vec![Occurrence {
                start: event.start,
                end: event.end,
                override_index: None,
            }]
        } else {
            Vec::new()
        };
    }
    // Start the window early by the event's length so occurrences already under way are kept.
    let lookback = duration.unwrap_or_default().max(chrono::Duration::zero());
    let after = from - lookback - chrono::Duration::seconds(1);
    let want = usize::from(limit) + event.overrides.len();
    let replaced = |t: DateTime<FixedOffset>| event.overrides.iter().any(|o| o.recurrence_id == t);
    let mut out: Vec<Occurrence> = crate::recurrence::occurrences_between(event, after, to, want)
        .into_iter()
        .filter(|(s, _)| !replaced(*s))
        .map(|(start, end)| Occurrence {
            start,
            end,
            override_index: None,
        })
        .filter(|o| overlaps(o.start, o.end))
        .collect();
    for (i, o) in event.overrides.iter().enumerate() {
        if !o.cancelled && overlaps(o.start, o.end) {
            out.push(Occurrence {
                start: o.start,
                end: o.end,
                override_index: Some(i),
            });
        }
    }
    out.sort_by_key(|o| o.start);
    out.truncate(usize::from(limit));
    out
}

/// The published JSON of one occurrence of a series: the series body with this occurrence's times
/// and `series_start` holding the first one.
pub fn occurrence_body(series_body: &str, occ: &Occurrence) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(series_body).ok()?;
    let obj = v.as_object_mut()?;
    // A changed occurrence shows its own title, description and place.
    if let Some(i) = occ.override_index {
        let o = obj
            .get("overrides")
            .and_then(|l| l.get(i))
            .cloned()
            .unwrap_or_default();
        for field in ["title", "description", "location"] {
            if let Some(x) = o.get(field).filter(|x| !x.is_null()) {
                obj.insert(field.into(), x.clone());
            }
        }
        if let Some(rid) = o.get("recurrence_id") {
            obj.insert("recurrence_id".into(), rid.clone());
        }
    }
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
            overrides: Vec::new(),
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
    fn provenance_carries_each_partners_licence() {
        let att = Attributions::new(vec![Attribution {
            partner: "cvs".into(),
            name: "Cheshire CVS".into(),
            website: None,
            licence: crate::licence::Licence::parse("OGL-UK-3.0").ok(),
        }]);
        let body = r#"{"id":"org_1","partners":[{"partner":"cvs","record_id":"1"},{"partner":"gone","record_id":"2"}]}"#;
        let v: serde_json::Value = serde_json::from_str(&with_attributions(body, &att)).unwrap();
        assert_eq!(v["partners"][0]["licence"]["id"], "OGL-UK-3.0");
        assert_eq!(v["partners"][0]["attribution"], "Cheshire CVS");
        assert!(v["partners"][1]["licence"].is_null());
        assert_eq!(v["partners"][1]["attribution"], "gone");
        assert_eq!(with_attributions("not json", &att), "not json");
        // Members keep their order and text; applying twice changes nothing more.
        let out = with_attributions(body, &att);
        assert!(out.starts_with(r#"{"id":"org_1","partners":[{"partner":"cvs","record_id":"1","attribution":"Cheshire CVS","licence":{"id":"OGL-UK-3.0""#), "{out}");
        assert_eq!(with_attributions(&out, &att), out);
        assert_eq!(partners_of(&out), vec!["cvs", "gone"]);
        assert!(partners_of("[]").is_empty());
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
            override_index: None,
        };
        let v: serde_json::Value =
            serde_json::from_str(&occurrence_body(body, &occ).unwrap()).unwrap();
        assert_eq!(v["start"], "2027-03-30T10:00:00+01:00");
        assert_eq!(v["series_start"], "2027-03-16T10:00:00+00:00");
    }
}
