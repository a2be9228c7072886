//! The `wp-events` format: the WordPress "The Events Calendar" REST API
//! (`/wp-json/tribe/events/v1/events`). Pages are followed by `next_rest_url` (or `page` up to
//! `total_pages`); titles arrive HTML-encoded and descriptions as HTML, which normalise cleans.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, TimeZone};
use serde_json::Value;

use super::times::{local_time, DEFAULT_TZ};
use super::tributary_json::item_id;
use super::{
    geo, json_page, json_str, next_numbered_page, Collected, Harvested, PageRequest, ParseError,
};
use crate::model::{Event, EventStatus, Location, Organiser, Payload, Rejection, SourceRecord};

const FORMAT: &str = "wp-events";

#[derive(Debug, Default)]
pub struct Harvest {
    records: Collected,
    rejections: Vec<Rejection>,
    warnings: Vec<Rejection>,
}

fn names(v: &Value, key: &str, field: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| json_str(x, field)).collect())
        .unwrap_or_default()
}

impl Harvest {
    pub fn add_page(&mut self, url: &str, bytes: &[u8]) -> Result<Vec<PageRequest>, ParseError> {
        let page = json_page(FORMAT, url, bytes)?;
        let events = page
            .get("events")
            .and_then(Value::as_array)
            .ok_or_else(|| ParseError::Invalid {
                format: FORMAT,
                reason: format!("{url}: no \"events\" array"),
            })?;
        for (i, e) in events.iter().enumerate() {
            let id = match item_id(e) {
                Some(id) => id,
                None => {
                    self.rejections.push(Rejection {
                        source_id: None,
                        reason: format!("{url}: event {}: no id", i + 1),
                    });
                    continue;
                }
            };
            let mut notes = Vec::new();
            match event(e, &mut notes) {
                Ok(ev) => {
                    self.warnings
                        .extend(notes.into_iter().map(|reason| Rejection {
                            source_id: Some(id.clone()),
                            reason,
                        }));
                    self.records.put(SourceRecord {
                        source_id: id,
                        url: json_str(e, "url"),
                        updated_at: json_str(e, "modified_utc")
                            .and_then(|m| {
                                NaiveDateTime::parse_from_str(&m, "%Y-%m-%d %H:%M:%S").ok()
                            })
                            .map(|m| m.and_utc().fixed_offset()),
                        payload: Payload::Event(ev),
                    })
                }
                Err(reason) => self.rejections.push(Rejection {
                    source_id: Some(id),
                    reason,
                }),
            }
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(next) = json_str(&page, "next_rest_url") {
            return Ok(vec![PageRequest::listing(next)]);
        }
        let total = page.get("total_pages").and_then(Value::as_u64).unwrap_or(1);
        Ok(next_numbered_page(url, total).into_iter().collect())
    }

    pub fn finish(self) -> Harvested {
        let mut out = Harvested::whole(self.records.into_records(), self.rejections);
        out.parsed.warnings = self.warnings;
        out
    }
}

/// A TEC time: the UTC field when present (unambiguous), shown in the event's zone.
fn time(
    e: &Value,
    local_key: &str,
    utc_key: Option<&str>,
    tz: chrono_tz::Tz,
) -> Result<Option<DateTime<FixedOffset>>, String> {
    const FMT: &str = "%Y-%m-%d %H:%M:%S";
    if let Some((utc_key, u)) = utc_key.and_then(|k| Some((k, json_str(e, k)?))) {
        let t = NaiveDateTime::parse_from_str(&u, FMT)
            .map_err(|_| format!("{utc_key} {u:?} is not \"YYYY-MM-DD HH:MM:SS\""))?;
        return Ok(Some(tz.from_utc_datetime(&t).fixed_offset()));
    }
    match json_str(e, local_key) {
        None => Ok(None),
        Some(l) => {
            let t = NaiveDateTime::parse_from_str(&l, FMT)
                .map_err(|_| format!("{local_key} {l:?} is not \"YYYY-MM-DD HH:MM:SS\""))?;
            local_time(tz, t)
                .map(Some)
                .ok_or_else(|| format!("{local_key} {l:?} does not exist in {}", tz.name()))
        }
    }
}

/// The venue's point: The Events Calendar's REST API writes `geo_lat`/`geo_lng` (with its maps
/// add-on), other exporters `latitude`/`longitude`. A point that fails the check is left out with
/// a note for the feed's warnings; the event still lands.
fn venue_point(venue: Option<&Value>, notes: &mut Vec<String>) -> Option<geo::Point> {
    let v = venue?;
    let read = |lat: &str, lon: &str| geo::from_json(v.get(lat), v.get(lon));
    let found = match read("geo_lat", "geo_lng") {
        Ok(None) => read("latitude", "longitude"),
        other => other,
    };
    found.unwrap_or_else(|reason| {
        notes.push(format!("venue point left out: {reason}"));
        None
    })
}

fn event(e: &Value, notes: &mut Vec<String>) -> Result<Event, String> {
    let title = json_str(e, "title").ok_or("event has no title")?;
    let tz: chrono_tz::Tz = match json_str(e, "timezone") {
        // TEC writes fixed offsets as "UTC+1"; those carry no DST rules, so London is the better guess.
        Some(name) if !name.starts_with("UTC") => name
            .parse()
            .map_err(|_| format!("timezone {name:?} is not an IANA time zone"))?,
        _ => DEFAULT_TZ,
    };
    let all_day = e.get("all_day").and_then(Value::as_bool).unwrap_or(false);
    // All-day events are dates in their zone; their UTC fields would shift them a day.
    let utc = |key| (!all_day).then_some(key);
    let mut start = time(e, "start_date", utc("utc_start_date"), tz)?;
    let mut end = time(e, "end_date", utc("utc_end_date"), tz)?;
    if all_day {
        // TEC ends all-day events at 23:59:59 of the last day; RFC 5545 ends are exclusive midnights.
        let midnight = |d: chrono::NaiveDate| local_time(tz, d.and_time(chrono::NaiveTime::MIN));
        start = start.and_then(|t| midnight(t.date_naive()));
        end = end.and_then(|t| midnight(t.date_naive() + Duration::days(1)));
    }
    let start = start.ok_or("event has no start_date")?;
    let venue = e.get("venue").filter(|v| v.is_object());
    let venue_name = venue.and_then(|v| json_str(v, "venue"));
    let online = venue_name.as_deref().is_some_and(|n| {
        let n = n.to_ascii_lowercase();
        n.contains("online") || n.contains("virtual") || n.contains("zoom") || n.contains("teams")
    });
    let point = venue_point(venue, notes);
    let address: Vec<String> = venue
        .map(|v| {
            ["address", "city"]
                .iter()
                .filter_map(|k| json_str(v, k))
                .collect()
        })
        .unwrap_or_default();
    let status = match json_str(e, "event_status")
        .or_else(|| json_str(e, "tribe_events_status"))
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("canceled" | "cancelled") => EventStatus::Cancelled,
        _ => EventStatus::Scheduled,
    };
    let mut categories = names(e, "categories", "name");
    categories.extend(names(e, "tags", "name"));
    Ok(Event {
        title,
        description: None,
        description_html: json_str(e, "description").or_else(|| json_str(e, "excerpt")),
        start,
        end,
        timezone: Some(tz.name().to_string()),
        all_day,
        recurrence: None,
        status,
        location: Location {
            name: venue_name,
            address: (!address.is_empty()).then(|| address.join(", ")),
            postcode: venue.and_then(|v| json_str(v, "zip")),
            online,
            url: None,
            latitude: point.map(|p| p.0),
            longitude: point.map(|p| p.1),
        },
        url: json_str(e, "url"),
        booking_url: json_str(e, "website"),
        organiser: Organiser {
            name: names(e, "organizer", "organizer").into_iter().next(),
            organisation_id: None,
        },
        categories,
        overrides: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tec_events_map_and_pages_follow_next_rest_url() {
        let body = br#"{"events":[
            {"id":101,"url":"https://hcv.example.org/event/anchor/","title":"Next Steps in Developing Anchor Institutions in our Region &#8211; Webinar",
             "description":"<p>Join us&nbsp;online</p>","all_day":false,
             "start_date":"2022-01-25 13:00:00","end_date":"2022-01-25 15:00:00",
             "utc_start_date":"2022-01-25 13:00:00","utc_end_date":"2022-01-25 15:00:00","timezone":"Europe/London",
             "website":"https://www.eventbrite.co.uk/e/anchor","venue":{"id":5,"venue":"Online"},
             "organizer":[{"id":7,"organizer":"Humber and North Yorkshire VCSE"}],
             "categories":[{"name":"Webinars"}],"tags":[]},
            {"id":102,"title":"Volunteers&#8217; Week","all_day":true,"start_date":"2027-06-01 00:00:00","end_date":"2027-06-07 23:59:59","timezone":"Europe/London","venue":[]},
            {"id":103,"title":"No date"}],
            "rest_url":"https://hcv.example.org/wp-json/tribe/events/v1/events?page=1",
            "next_rest_url":"https://hcv.example.org/wp-json/tribe/events/v1/events?page=2","total":4,"total_pages":2}"#;
        let mut h = Harvest::default();
        let next = h
            .add_page(
                "https://hcv.example.org/wp-json/tribe/events/v1/events?page=1",
                body,
            )
            .unwrap();
        assert_eq!(
            next[0].link,
            "https://hcv.example.org/wp-json/tribe/events/v1/events?page=2"
        );
        let out = h.finish();
        assert_eq!(out.parsed.records.len(), 2);
        let Payload::Event(e) = &out.parsed.records[0].payload else {
            panic!()
        };
        assert_eq!(e.start.to_rfc3339(), "2022-01-25T13:00:00+00:00");
        assert!(e.location.online);
        assert_eq!(
            e.organiser.name.as_deref(),
            Some("Humber and North Yorkshire VCSE")
        );
        let Payload::Event(week) = &out.parsed.records[1].payload else {
            panic!()
        };
        assert!(week.all_day);
        assert_eq!(week.start.to_rfc3339(), "2027-06-01T00:00:00+01:00");
        assert_eq!(week.end.unwrap().to_rfc3339(), "2027-06-08T00:00:00+01:00");
        assert!(out.parsed.rejections[0].reason.contains("start_date"));
    }

    #[test]
    fn venue_points_are_read_and_bad_ones_left_out_with_a_warning() {
        let body = br#"{"events":[
            {"id":1,"title":"Maps","start_date":"2027-03-01 10:00:00","timezone":"Europe/London",
             "venue":{"venue":"Hall","zip":"CW1 2AB","geo_lat":"53.0979","geo_lng":"-2.4411"}},
            {"id":2,"title":"Plain","start_date":"2027-03-01 10:00:00","timezone":"Europe/London",
             "venue":{"venue":"Barn","latitude":51.5,"longitude":-0.12}},
            {"id":3,"title":"Broken","start_date":"2027-03-01 10:00:00","timezone":"Europe/London",
             "venue":{"venue":"Moon","geo_lat":"153.1","geo_lng":"-2.4"}},
            {"id":4,"title":"Half","start_date":"2027-03-01 10:00:00","timezone":"Europe/London",
             "venue":{"venue":"Half","geo_lat":"53.1"}}]}"#;
        let mut h = Harvest::default();
        h.add_page("https://x.example/p", body).unwrap();
        let out = h.finish();
        let points: Vec<(Option<f64>, Option<f64>)> = out
            .parsed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => (e.location.latitude, e.location.longitude),
                Payload::Organisation(_) => panic!("an event feed"),
            })
            .collect();
        assert_eq!(
            points,
            vec![
                (Some(53.0979), Some(-2.4411)),
                (Some(51.5), Some(-0.12)),
                (None, None),
                (None, None)
            ]
        );
        assert!(out.parsed.rejections.is_empty(), "the events still land");
        let warned: Vec<_> = out
            .parsed
            .warnings
            .iter()
            .map(|w| (w.source_id.clone(), w.reason.clone()))
            .collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].1.contains("latitude 153.1"), "{warned:?}");
        assert!(
            warned[1].1.contains("latitude without longitude"),
            "{warned:?}"
        );
    }

    #[test]
    fn a_page_nested_100000_deep_fails_the_feed_without_a_crash() {
        let depth = 100_000;
        let body = format!(
            r#"{{"events":[{}{}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = crate::ingest::on_worker_stack(move || {
            Harvest::default()
                .add_page("https://x.example/p", body.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
