//! The `ical` format: RFC 5545 calendars read with the `icalendar` crate's parser (unfolding,
//! parameters, TEXT unescaping). Each VEVENT becomes an event: TZID, UTC, floating and all-day
//! times, DURATION, RRULE/RDATE/EXDATE kept verbatim as recurrence, CANCELLED status.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime};
use icalendar::parser::{Component, Property};

use super::ParseError;
use crate::model::{
    Event, EventStatus, Location, Organiser, ParsedFeed, Payload, Rejection, SourceRecord,
};

const FORMAT: &str = "ical";

pub fn parse(bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let invalid = |reason: String| ParseError::Invalid {
        format: FORMAT,
        reason,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| invalid(format!("not UTF-8 text: {e}")))?
        .trim_start_matches('\u{feff}');
    if !text.trim_start().starts_with("BEGIN:VCALENDAR") {
        let start: String = text.trim_start().chars().take(60).collect();
        return Err(invalid(format!(
            "does not start with BEGIN:VCALENDAR (starts {start:?})"
        )));
    }
    let unfolded = icalendar::parser::unfold(text);
    let cal = icalendar::parser::read_calendar(&unfolded)
        .map_err(|e| invalid(e.lines().take(4).collect::<Vec<_>>().join(" ")))?;
    let default_tz = cal
        .properties
        .iter()
        .find(|p| p.name == "X-WR-TIMEZONE")
        .and_then(|p| zone(p.val.as_str()))
        .unwrap_or(chrono_tz::Europe::London);

    let mut feed = ParsedFeed::default();
    let mut seen = std::collections::HashSet::new();
    for (i, comp) in cal
        .components
        .iter()
        .filter(|c| c.name == "VEVENT")
        .enumerate()
    {
        let uid = prop(comp, "UID").map(|p| p.val.as_str().trim().to_string());
        match event(comp, default_tz) {
            Ok(ev) => {
                let Some(uid) = uid.filter(|u| !u.is_empty()) else {
                    feed.rejections.push(Rejection {
                        source_id: None,
                        reason: format!("VEVENT {} ({:?}) has no UID", i + 1, ev.title),
                    });
                    continue;
                };
                // An overridden occurrence of a series is its own record.
                let source_id = match prop(comp, "RECURRENCE-ID") {
                    Some(r) => format!("{uid}#{}", r.val.as_str().trim()),
                    None => uid,
                };
                if !seen.insert(source_id.clone()) {
                    feed.rejections.push(Rejection {
                        source_id: Some(source_id),
                        reason: "duplicate UID in this calendar".into(),
                    });
                    continue;
                }
                let updated_at = prop(comp, "LAST-MODIFIED")
                    .and_then(|p| time(p, default_tz).ok())
                    .map(|(t, _)| t);
                let url = ev.url.clone();
                feed.records.push(SourceRecord {
                    source_id,
                    url,
                    updated_at,
                    payload: Payload::Event(ev),
                });
            }
            Err(reason) => feed.rejections.push(Rejection {
                source_id: uid.clone(),
                reason: format!(
                    "VEVENT {}{}: {reason}",
                    i + 1,
                    uid.map(|u| format!(" ({u})")).unwrap_or_default()
                ),
            }),
        }
    }
    Ok(feed)
}

fn prop<'a>(comp: &'a Component<'a>, name: &str) -> Option<&'a Property<'a>> {
    comp.properties.iter().find(|p| p.name == name)
}

fn param<'a>(p: &'a Property<'a>, key: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|x| x.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|x| x.val.as_ref())
        .map(|v| v.as_str().trim_matches('"'))
}

/// IANA zone names, plus the Windows names Outlook exports for UK calendars.
fn zone(name: &str) -> Option<chrono_tz::Tz> {
    let name = name.trim().trim_matches('"');
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Some(tz);
    }
    // Some exporters prefix a path such as "/freeassociation.sourceforge.net/Europe/London".
    if let Some(tz) = name
        .rsplit_once('/')
        .and_then(|_| {
            let parts: Vec<&str> = name.split('/').collect();
            parts.len().checked_sub(2).map(|i| parts[i..].join("/"))
        })
        .and_then(|n| n.parse::<chrono_tz::Tz>().ok())
    {
        return Some(tz);
    }
    match name {
        "GMT Standard Time" | "GMT Daylight Time" | "British Summer Time" => {
            Some(chrono_tz::Europe::London)
        }
        "W. Europe Standard Time" => Some(chrono_tz::Europe::Berlin),
        "Romance Standard Time" => Some(chrono_tz::Europe::Paris),
        "UTC" | "Coordinated Universal Time" => Some(chrono_tz::UTC),
        _ => None,
    }
}

/// A DATE-TIME or DATE property: the instant and whether it was a date (all-day).
fn time(p: &Property, default_tz: chrono_tz::Tz) -> Result<(DateTime<FixedOffset>, bool), String> {
    let v = p.val.as_str().trim();
    let is_date = param(p, "VALUE").is_some_and(|x| x.eq_ignore_ascii_case("DATE"))
        || (v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()));
    let tz = match param(p, "TZID") {
        Some(name) => Some(zone(name).ok_or_else(|| {
            format!("{} has an unknown time zone TZID={name:?}", p.name.as_str())
        })?),
        None => None,
    };
    let local_tz = tz.unwrap_or(default_tz);
    let localise = |naive: NaiveDateTime| {
        super::tributary_json::local_time(local_tz, naive).ok_or_else(|| {
            format!(
                "{} {v} does not exist in {} (the clocks skip it)",
                p.name.as_str(),
                local_tz.name()
            )
        })
    };
    if is_date {
        let d = NaiveDate::parse_from_str(v, "%Y%m%d")
            .map_err(|_| format!("{} {v:?} is not a date", p.name.as_str()))?;
        let midnight = d.and_hms_opt(0, 0, 0).ok_or("bad date")?;
        return localise(midnight).map(|t| (t, true));
    }
    if let Some(utc) = v.strip_suffix('Z') {
        let n = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map_err(|_| format!("{} {v:?} is not a date-time", p.name.as_str()))?;
        return Ok((n.and_utc().fixed_offset(), false));
    }
    let n = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
        .map_err(|_| format!("{} {v:?} is not a date-time", p.name.as_str()))?;
    localise(n).map(|t| (t, false))
}

/// An RFC 5545 DURATION such as `PT2H`, `P1D`, `P1W`, `-PT15M`.
fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let s = s.strip_prefix('P')?;
    let mut total = Duration::zero();
    let mut num = String::new();
    let mut in_time = false;
    for c in s.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' => num.push(c),
            unit => {
                let n: i64 = num.parse().ok()?;
                num.clear();
                total += match (unit, in_time) {
                    ('W', false) => Duration::weeks(n),
                    ('D', false) => Duration::days(n),
                    ('H', true) => Duration::hours(n),
                    ('M', true) => Duration::minutes(n),
                    ('S', true) => Duration::seconds(n),
                    _ => return None,
                };
            }
        }
    }
    if !num.is_empty() {
        return None;
    }
    Some(if neg { -total } else { total })
}

fn first_url(text: &str, hosts: &[&str]) -> Option<String> {
    text.split(|c: char| {
        c.is_whitespace() || c == '<' || c == '>' || c == '"' || c == '(' || c == ')'
    })
    .filter(|w| w.starts_with("https://") || w.starts_with("http://"))
    .map(|w| w.trim_end_matches(['.', ',', ';']))
    .find(|w| hosts.iter().any(|h| w.contains(h)))
    .map(str::to_string)
}

const BOOKING_HOSTS: &[&str] = &[
    "eventbrite.",
    "ticketsource.",
    "ticketmaster.",
    "tickettailor.",
    "billetto.",
];

fn event(comp: &Component, default_tz: chrono_tz::Tz) -> Result<Event, String> {
    let title = prop(comp, "SUMMARY")
        .map(|p| p.val.as_str().to_string())
        .filter(|t| !t.trim().is_empty())
        .ok_or("no SUMMARY (title)")?;
    let dtstart = prop(comp, "DTSTART").ok_or("no DTSTART")?;
    let (start, all_day) = time(dtstart, default_tz)?;
    let tz = param(dtstart, "TZID")
        .and_then(zone)
        .or_else(|| (!dtstart.val.as_str().ends_with('Z')).then_some(default_tz));
    let end = match (prop(comp, "DTEND"), prop(comp, "DURATION")) {
        (Some(p), _) => Some(time(p, default_tz)?.0),
        (None, Some(d)) => Some(
            start
                + duration(d.val.as_str())
                    .ok_or_else(|| format!("DURATION {:?} is not a duration", d.val.as_str()))?,
        ),
        // An all-day event without an end lasts its one day (RFC 5545 3.6.1).
        (None, None) if all_day => Some(start + Duration::days(1)),
        (None, None) => None,
    };
    let mut recurrence = Vec::new();
    for p in comp
        .properties
        .iter()
        .filter(|p| p.name == "RRULE" || p.name == "RDATE" || p.name == "EXDATE")
    {
        let params: String = p
            .params
            .iter()
            .map(|x| match &x.val {
                Some(v) => format!(";{}={}", x.key.as_str(), v.as_str()),
                None => format!(";{}", x.key.as_str()),
            })
            .collect();
        recurrence.push(format!("{}{params}:{}", p.name.as_str(), p.val.as_str()));
    }
    if let Some(rrule) = prop(comp, "RRULE") {
        // Validate the rule with the rrule crate so a broken one is a rejection here, not a
        // silent single event later.
        let local = match tz {
            Some(z) => format!(
                "DTSTART;TZID={}:{}",
                z.name(),
                start.with_timezone(&z).format("%Y%m%dT%H%M%S")
            ),
            None => format!("DTSTART:{}Z", start.naive_utc().format("%Y%m%dT%H%M%S")),
        };
        format!("{local}\nRRULE:{}", rrule.val.as_str())
            .parse::<rrule::RRuleSet>()
            .map_err(|e| format!("RRULE {:?} is invalid: {e}", rrule.val.as_str()))?;
    }
    let status = match prop(comp, "STATUS").map(|p| p.val.as_str().trim().to_ascii_uppercase()) {
        Some(s) if s == "CANCELLED" => EventStatus::Cancelled,
        _ => EventStatus::Scheduled,
    };
    let description = prop(comp, "DESCRIPTION").map(|p| p.val.as_str().to_string());
    let description_html = comp
        .properties
        .iter()
        .find(|p| {
            p.name == "X-ALT-DESC"
                && param(p, "FMTTYPE").is_some_and(|f| f.eq_ignore_ascii_case("text/html"))
        })
        .map(|p| p.val.as_str().to_string());
    let location_text = prop(comp, "LOCATION").map(|p| p.val.as_str().trim().to_string());
    let url = prop(comp, "URL").map(|p| p.val.as_str().trim().to_string());
    let booking_url = url
        .clone()
        .filter(|u| BOOKING_HOSTS.iter().any(|h| u.contains(h)))
        .or_else(|| {
            description
                .as_deref()
                .and_then(|d| first_url(d, BOOKING_HOSTS))
        });
    let mut location = Location::default();
    if let Some(loc) = location_text.filter(|l| !l.is_empty()) {
        let lower = loc.to_lowercase();
        if loc.starts_with("http://") || loc.starts_with("https://") {
            location.online = true;
            location.url = Some(loc.clone());
        } else {
            location.online = [
                "online",
                "webinar",
                "zoom",
                "microsoft teams",
                "teams meeting",
                "virtual",
            ]
            .iter()
            .any(|w| lower.contains(w));
            // A UK postcode at the end of the address ("…, Macclesfield, SK10 1EE").
            let parts: Vec<&str> = loc.split(',').map(str::trim).collect();
            if let Some(pc) = parts.last().and_then(|l| crate::normalise::postcode(l)) {
                location.postcode = Some(pc);
                if parts.len() > 1 {
                    location.name = Some(parts[0].to_string());
                    location.address =
                        Some(parts[1..parts.len() - 1].join(", ")).filter(|a| !a.is_empty());
                } else {
                    location.name = Some(loc.clone());
                }
            } else {
                location.name = Some(loc.clone());
            }
        }
    }
    let mut categories = Vec::new();
    for p in comp.properties.iter().filter(|p| p.name == "CATEGORIES") {
        // CATEGORIES is a TEXT list: split on unescaped commas, then unescape each item.
        let mut item = String::new();
        let mut chars = p.val.as_str().chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        item.push(if n == 'n' || n == 'N' { ' ' } else { n });
                    }
                }
                ',' => categories.push(std::mem::take(&mut item)),
                c => item.push(c),
            }
        }
        categories.push(item);
    }
    let categories = categories
        .into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let organiser = Organiser {
        name: prop(comp, "ORGANIZER").and_then(|p| param(p, "CN").map(str::to_string)),
        organisation_id: None,
    };
    Ok(Event {
        title,
        description,
        description_html,
        start,
        end,
        timezone: tz.map(|z| z.name().to_string()),
        all_day,
        recurrence: (!recurrence.is_empty()).then_some(recurrence),
        status,
        location,
        url,
        booking_url,
        organiser,
        categories,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(events: &str) -> String {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Test//EN\r\n{events}END:VCALENDAR\r\n")
    }

    fn one(ev: &str) -> Event {
        let feed = parse(cal(ev).as_bytes()).unwrap();
        assert!(feed.rejections.is_empty(), "{:?}", feed.rejections);
        match &feed.records[0].payload {
            Payload::Event(e) => e.clone(),
            Payload::Organisation(_) => panic!("not an event"),
        }
    }

    #[test]
    fn tzid_and_utc_times_with_escapes_and_folding() {
        let e = one("BEGIN:VEVENT\r\nUID:w1@cvs\r\nDTSTART;TZID=Europe/London:20220125T130000\r\nDTEND;TZID=Europe/London:20220125T150000\r\nSUMMARY:Webinar: Next Steps\\, Anchor Institutions\r\nDESCRIPTION:Register now on Eventbrite: https://www.eventbrite.co.uk/e/anchor-\r\n institutions-123.\\nSecond line\r\nLOCATION:Online\r\nCATEGORIES:Partnership / Information,Health\r\nEND:VEVENT\r\n");
        assert_eq!(e.start.to_rfc3339(), "2022-01-25T13:00:00+00:00");
        assert_eq!(e.end.unwrap().to_rfc3339(), "2022-01-25T15:00:00+00:00");
        assert_eq!(e.timezone.as_deref(), Some("Europe/London"));
        assert_eq!(e.title, "Webinar: Next Steps, Anchor Institutions");
        assert!(e.description.as_deref().unwrap().contains("\nSecond line"));
        assert_eq!(
            e.booking_url.as_deref(),
            Some("https://www.eventbrite.co.uk/e/anchor-institutions-123")
        );
        assert!(e.location.online);
        assert_eq!(e.categories, vec!["Partnership / Information", "Health"]);
        let u = one("BEGIN:VEVENT\r\nUID:u\r\nDTSTART:20270701T090000Z\r\nDURATION:PT1H30M\r\nSUMMARY:UTC\r\nEND:VEVENT\r\n");
        assert_eq!(u.start.to_rfc3339(), "2027-07-01T09:00:00+00:00");
        assert_eq!(u.end.unwrap().to_rfc3339(), "2027-07-01T10:30:00+00:00");
        assert_eq!(u.timezone, None);
    }

    #[test]
    fn all_day_multi_day_recurring_and_cancelled() {
        let d = one("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20270601\r\nDTEND;VALUE=DATE:20270608\r\nSUMMARY:Volunteers' Week\r\nEND:VEVENT\r\n");
        assert!(d.all_day);
        assert_eq!(d.start.to_rfc3339(), "2027-06-01T00:00:00+01:00");
        assert_eq!(d.end.unwrap().to_rfc3339(), "2027-06-08T00:00:00+01:00");
        let single = one("BEGIN:VEVENT\r\nUID:s\r\nDTSTART;VALUE=DATE:20271225\r\nSUMMARY:Closed\r\nEND:VEVENT\r\n");
        assert_eq!(single.end.unwrap() - single.start, Duration::days(1));
        let r = one("BEGIN:VEVENT\r\nUID:r\r\nDTSTART;TZID=Europe/London:20270105T100000\r\nDTEND;TZID=Europe/London:20270105T120000\r\nRRULE:FREQ=WEEKLY;BYDAY=TU\r\nEXDATE;TZID=Europe/London:20270112T100000\r\nSUMMARY:Community cafe\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n");
        assert_eq!(
            r.recurrence.unwrap(),
            vec![
                "RRULE:FREQ=WEEKLY;BYDAY=TU",
                "EXDATE;TZID=Europe/London:20270112T100000"
            ]
        );
        assert_eq!(r.status, EventStatus::Cancelled);
    }

    #[test]
    fn bad_events_are_rejected_and_the_rest_land() {
        let feed = parse(cal(concat!(
            "BEGIN:VEVENT\r\nDTSTART:20270101T100000Z\r\nSUMMARY:No uid\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:z\r\nDTSTART;TZID=Mars/Olympus:20270101T100000\r\nSUMMARY:Bad zone\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:rr\r\nDTSTART:20270101T100000Z\r\nRRULE:FREQ=SOMETIMES\r\nSUMMARY:Bad rule\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:gap\r\nDTSTART;TZID=Europe/London:20270328T013000\r\nSUMMARY:In the gap\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:ok\r\nDTSTART;TZID=GMT Standard Time:20270101T100000\r\nSUMMARY:Outlook zone\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        assert_eq!(feed.records.len(), 1);
        assert_eq!(feed.records[0].source_id, "ok");
        let reasons: Vec<&str> = feed.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("no UID"));
        assert!(reasons[1].contains("Mars/Olympus"));
        assert!(reasons[2].contains("RRULE"));
        assert!(reasons[3].contains("does not exist"));
    }

    #[test]
    fn html_or_binary_fails_the_feed() {
        assert!(parse(b"<!DOCTYPE html><html><body>Service Unavailable</body></html>").is_err());
        assert!(parse(&[0xff, 0xfe, 0x00, 0x42]).is_err());
        assert!(parse(b"").is_err());
    }
}
