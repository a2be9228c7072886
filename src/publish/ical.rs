//! The merged iCalendar feed (RFC 5545), built and serialised with the `icalendar` crate (CRLF,
//! 75-octet folding on UTF-8 boundaries, TEXT escaping). Pure: canonical events in, text out.
//! Europe/London times keep their TZID with a VTIMEZONE; other zones are written in UTC.

use chrono::{DateTime, FixedOffset, Utc};
use icalendar::{Calendar, Component, EventLike, Property};

use crate::model::{CanonicalEvent, EventStatus};

pub struct CalendarOptions<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    /// DTSTAMP of every event.
    pub now: DateTime<Utc>,
    /// Right-hand side of each UID (`<id>@<uid_domain>`).
    pub uid_domain: &'a str,
}

/// One event as the calendar shows it.
#[derive(Debug, Clone)]
pub struct CalendarEntry {
    pub event: CanonicalEvent,
    /// Grows each time the merged event changes, so clients replace their copy.
    pub sequence: i64,
    /// Deleted (or merged away) recently: published as CANCELLED so subscribers remove it.
    pub withdrawn: bool,
}

/// The zone whose times are written with TZID; the only VTIMEZONE we publish.
const LOCAL_ZONE: &str = "Europe/London";

/// Europe/London since 1996 (EU rules): GMT in winter, BST from the last Sunday in March to the
/// last Sunday in October. Static data in RFC 5545 form, already within line limits.
const VTIMEZONE_LONDON: &str = "BEGIN:VTIMEZONE\r\n\
TZID:Europe/London\r\n\
X-LIC-LOCATION:Europe/London\r\n\
BEGIN:DAYLIGHT\r\n\
TZOFFSETFROM:+0000\r\n\
TZOFFSETTO:+0100\r\n\
TZNAME:BST\r\n\
DTSTART:19700329T010000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
END:DAYLIGHT\r\n\
BEGIN:STANDARD\r\n\
TZOFFSETFROM:+0100\r\n\
TZOFFSETTO:+0000\r\n\
TZNAME:GMT\r\n\
DTSTART:19701025T020000\r\n\
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n\
END:STANDARD\r\n\
END:VTIMEZONE\r\n";

fn utc_stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// DTSTART/DTEND as a property: a DATE for all-day events, local time with TZID for
/// Europe/London, UTC otherwise.
fn time_prop(key: &str, t: DateTime<FixedOffset>, tz: Option<&str>, all_day: bool) -> Property {
    let local_tz = tz
        .filter(|z| *z == LOCAL_ZONE)
        .and_then(|z| z.parse::<chrono_tz::Tz>().ok());
    if all_day {
        let date = match local_tz {
            Some(z) => t.with_timezone(&z).date_naive(),
            None => t.date_naive(),
        };
        let mut p = Property::new(key, date.format("%Y%m%d").to_string());
        p.add_parameter("VALUE", "DATE");
        return p;
    }
    match local_tz {
        Some(z) => {
            let mut p = Property::new(key, t.with_timezone(&z).format("%Y%m%dT%H%M%S").to_string());
            p.add_parameter("TZID", LOCAL_ZONE);
            p
        }
        None => Property::new(key, utc_stamp(t.with_timezone(&Utc))),
    }
}

/// Splits a stored recurrence line (`EXDATE;TZID=Europe/London:20270112T100000`) into a property.
fn recurrence_prop(line: &str) -> Option<Property> {
    let (head, value) = line.split_once(':')?;
    let mut parts = head.split(';');
    let key = parts.next()?.trim().to_ascii_uppercase();
    if !matches!(key.as_str(), "RRULE" | "RDATE" | "EXDATE") {
        return None;
    }
    let mut p = Property::new(key, value.trim());
    for param in parts {
        if let Some((k, v)) = param.split_once('=') {
            p.add_parameter(k.trim(), v.trim());
        }
    }
    Some(p)
}

/// CATEGORIES is a list: the crate leaves item escaping to us (a comma separates items).
fn categories_value(cats: &[String]) -> String {
    cats.iter()
        .map(|c| {
            c.replace('\\', "\\\\")
                .replace(';', "\\;")
                .replace(',', "\\,")
                .replace(['\r', '\n'], " ")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn vevent(entry: &CalendarEntry, opts: &CalendarOptions) -> icalendar::Event {
    let c = &entry.event;
    let e = &c.event;
    let mut ev = icalendar::Event::new();
    ev.uid(&format!("{}@{}", c.id, opts.uid_domain));
    ev.add_property("DTSTAMP", utc_stamp(opts.now));
    ev.summary(&e.title);
    let tz = e.timezone.as_deref();
    ev.append_property(time_prop("DTSTART", e.start, tz, e.all_day));
    if let Some(end) = e.end {
        ev.append_property(time_prop("DTEND", end, tz, e.all_day));
    }
    if let Some(lines) = &e.recurrence {
        for line in lines {
            if let Some(p) = recurrence_prop(line) {
                if p.key() == "RRULE" {
                    ev.append_property(p);
                } else {
                    ev.append_multi_property(p);
                }
            }
        }
    }
    if let Some(d) = &e.description {
        ev.description(d);
    }
    let location: Vec<&str> = [
        e.location.name.as_deref(),
        e.location.address.as_deref(),
        e.location.postcode.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !location.is_empty() {
        ev.location(&location.join(", "));
    } else if e.location.online {
        ev.location(e.location.url.as_deref().unwrap_or("Online"));
    }
    if let Some(url) = e.url.as_deref().or(e.booking_url.as_deref()) {
        ev.add_property("URL", url);
    }
    if !e.categories.is_empty() {
        ev.add_property("CATEGORIES", categories_value(&e.categories));
    }
    let cancelled = entry.withdrawn || e.status == EventStatus::Cancelled;
    ev.add_property("STATUS", if cancelled { "CANCELLED" } else { "CONFIRMED" });
    ev.add_property("SEQUENCE", entry.sequence.max(0).to_string());
    ev.add_property("LAST-MODIFIED", utc_stamp(c.updated_at.with_timezone(&Utc)));
    if let Some(name) = &e.organiser.name {
        // ORGANIZER needs a CAL-ADDRESS (mailto:) we rarely have; the name goes in an X- property.
        ev.add_property("X-TRIBUTARY-ORGANISER", name);
    }
    let partners: Vec<&str> = c.partners.iter().map(|p| p.partner.as_str()).collect();
    ev.add_property("X-TRIBUTARY-PARTNERS", partners.join(" "));
    if let Some(b) = &e.booking_url {
        ev.add_property("X-TRIBUTARY-BOOKING-URL", b);
    }
    ev.done()
}

/// icalendar 0.17 folds at 75 octets but lets the last continuation of a long line reach 76 (the
/// leading space is not counted); split any such line once more at a character boundary.
fn refold(text: &str) -> String {
    if !text.split("\r\n").any(|l| l.len() > 75) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive("\r\n") {
        let body = line.strip_suffix("\r\n").unwrap_or(line);
        let mut rest = body;
        let mut first = true;
        while rest.len() > if first { 75 } else { 74 } {
            let mut cut = if first { 75 } else { 74 };
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            if !first {
                out.push(' ');
            }
            out.push_str(&rest[..cut]);
            out.push_str("\r\n");
            rest = &rest[cut..];
            first = false;
        }
        if !first {
            out.push(' ');
        }
        out.push_str(rest);
        if line.ends_with("\r\n") {
            out.push_str("\r\n");
        }
    }
    out
}

/// Renders a complete VCALENDAR.
pub fn render(entries: &[CalendarEntry], opts: &CalendarOptions) -> String {
    let mut cal = Calendar::empty();
    for (k, v) in [
        ("VERSION", "2.0"),
        (
            "PRODID",
            concat!(
                "-//tributary//tributary ",
                env!("CARGO_PKG_VERSION"),
                "//EN"
            ),
        ),
        ("CALSCALE", "GREGORIAN"),
        ("METHOD", "PUBLISH"),
        ("X-WR-CALNAME", opts.name),
        ("X-WR-TIMEZONE", LOCAL_ZONE),
    ] {
        cal.append_property(Property::new(k, v));
    }
    if let Some(d) = opts.description {
        cal.append_property(Property::new("X-WR-CALDESC", d));
    }
    // Subscribed clients refresh at most hourly unless told otherwise.
    cal.append_property(Property::new("X-PUBLISHED-TTL", "PT1H"));
    for entry in entries {
        cal.push(vevent(entry, opts));
    }
    let text = refold(&cal.to_string());
    let needs_zone = entries
        .iter()
        .any(|e| e.event.event.timezone.as_deref() == Some(LOCAL_ZONE) && !e.event.event.all_day);
    if !needs_zone {
        return text;
    }
    // The crate has no VTIMEZONE builder; the zone block goes before the first component.
    let at = text
        .find("BEGIN:VEVENT")
        .or_else(|| text.rfind("END:VCALENDAR"))
        .unwrap_or(text.len());
    let mut out = String::with_capacity(text.len() + VTIMEZONE_LONDON.len());
    out.push_str(&text[..at]);
    out.push_str(VTIMEZONE_LONDON);
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Location, PartnerRef};

    fn entry(id: &str, title: &str, start: &str, tz: Option<&str>) -> CalendarEntry {
        CalendarEntry {
            event: CanonicalEvent {
                id: id.into(),
                event: Event {
                    title: title.into(),
                    description: Some("Line one, with a comma; and a semicolon\nLine two".into()),
                    description_html: None,
                    start: DateTime::parse_from_rfc3339(start).unwrap(),
                    end: Some(
                        DateTime::parse_from_rfc3339(start).unwrap() + chrono::Duration::hours(2),
                    ),
                    timezone: tz.map(String::from),
                    all_day: false,
                    recurrence: None,
                    status: EventStatus::Scheduled,
                    location: Location {
                        name: Some("Macclesfield Library".into()),
                        postcode: Some("SK10 1EE".into()),
                        ..Default::default()
                    },
                    url: Some("https://www.eventbrite.co.uk/e/123".into()),
                    booking_url: None,
                    organiser: Default::default(),
                    categories: vec!["Partnership / Information".into(), "Health, care".into()],
                },
                partners: vec![PartnerRef {
                    partner: "cvs-cheshire-east".into(),
                    record_id: "w1".into(),
                    url: None,
                }],
                field_sources: Default::default(),
                updated_at: DateTime::parse_from_rfc3339("2026-11-01T10:00:00+00:00").unwrap(),
            },
            sequence: 2,
            withdrawn: false,
        }
    }

    fn opts(now: &str) -> CalendarOptions<'static> {
        CalendarOptions {
            name: "tributary",
            description: None,
            now: DateTime::parse_from_rfc3339(now)
                .unwrap()
                .with_timezone(&Utc),
            uid_domain: "tributary",
        }
    }

    fn unfold(s: &str) -> String {
        s.replace("\r\n ", "")
    }

    #[test]
    fn valid_lines_escaping_and_stable_uids() {
        let mut long = entry("evt_1", "Webinar: Next Steps in Developing Anchor Institutions in our Region — Cheshire & Merseyside’s journey", "2022-01-25T13:00:00+00:00", Some("Europe/London"));
        long.event.event.description = Some("é".repeat(200));
        let entries = vec![
            long,
            entry(
                "evt_2",
                "Safeguarding, basics; level 1",
                "2027-07-01T09:00:00+01:00",
                Some("Europe/London"),
            ),
        ];
        let a = render(&entries, &opts("2026-11-25T00:00:00Z"));
        assert!(a.starts_with("BEGIN:VCALENDAR\r\n") && a.ends_with("END:VCALENDAR\r\n"));
        assert!(!a.replace("\r\n", "").contains('\n'), "CRLF only");
        for line in a.split("\r\n") {
            assert!(line.len() <= 75, "line over 75 octets: {line:?}");
        }
        let u = unfold(&a);
        assert!(u.contains("SUMMARY:Safeguarding\\, basics\\; level 1"));
        assert!(u.contains("DESCRIPTION:Line one\\, with a comma\\; and a semicolon\\nLine two"));
        assert!(u.contains("CATEGORIES:Partnership / Information,Health\\, care"));
        assert!(u.contains("DTSTART;TZID=Europe/London:20220125T130000"));
        assert!(u.contains("DTSTART;TZID=Europe/London:20270701T090000"));
        assert!(u.contains("BEGIN:VTIMEZONE") && u.contains("TZID:Europe/London"));
        assert!(u.contains("UID:evt_1@tributary") && u.contains("SEQUENCE:2"));
        assert!(u.contains("X-TRIBUTARY-PARTNERS:cvs-cheshire-east"));
        let b = render(&entries, &opts("2027-01-01T00:00:00Z"));
        assert_eq!(
            a.replace("DTSTAMP:20261125T000000Z", ""),
            b.replace("DTSTAMP:20270101T000000Z", "")
        );
        // Round trip through the crate's own parser.
        let parsed = icalendar::parser::read_calendar(&u).unwrap();
        let events: Vec<_> = parsed
            .components
            .iter()
            .filter(|c| c.name == "VEVENT")
            .collect();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].find_prop("SUMMARY").unwrap().val.as_str(),
            "Safeguarding, basics; level 1"
        );
    }

    #[test]
    fn all_day_recurring_cancelled_and_utc() {
        let mut day = entry(
            "evt_d",
            "Volunteers' Week",
            "2027-06-01T00:00:00+01:00",
            Some("Europe/London"),
        );
        day.event.event.all_day = true;
        day.event.event.end =
            Some(DateTime::parse_from_rfc3339("2027-06-08T00:00:00+01:00").unwrap());
        let mut series = entry(
            "evt_r",
            "Community cafe",
            "2027-01-05T10:00:00+00:00",
            Some("Europe/London"),
        );
        series.event.event.recurrence = Some(vec![
            "RRULE:FREQ=WEEKLY;BYDAY=TU".into(),
            "EXDATE;TZID=Europe/London:20270112T100000".into(),
        ]);
        series.withdrawn = true;
        let utc = entry(
            "evt_u",
            "Paris meetup",
            "2027-03-01T18:00:00+01:00",
            Some("Europe/Paris"),
        );
        let text = unfold(&render(&[day, series, utc], &opts("2026-11-25T00:00:00Z")));
        assert!(text.contains("DTSTART;VALUE=DATE:20270601"));
        assert!(text.contains("DTEND;VALUE=DATE:20270608"));
        assert!(text.contains("RRULE:FREQ=WEEKLY;BYDAY=TU"));
        assert!(text.contains("EXDATE;TZID=Europe/London:20270112T100000"));
        assert!(text.contains("STATUS:CANCELLED"));
        assert!(text.contains("DTSTART:20270301T170000Z"));
    }

    #[test]
    fn no_line_exceeds_75_octets_even_where_the_crate_folds_one_long() {
        // 12 + 212 = 224 octets: the crate's last continuation would be 76 octets.
        let mut e = entry("evt_f", "Fold", "2027-01-05T10:00:00+00:00", None);
        e.event.event.description = Some("a".repeat(212));
        let text = render(&[e], &opts("2026-11-25T00:00:00Z"));
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        assert!(unfold(&text).contains(&format!("DESCRIPTION:{}", "a".repeat(212))));
    }

    #[test]
    fn empty_calendar_is_valid() {
        let text = render(&[], &opts("2026-11-25T00:00:00Z"));
        assert!(text.contains("VERSION:2.0") && text.contains("PRODID:"));
        assert!(!text.contains("VTIMEZONE"));
        assert!(icalendar::parser::read_calendar(&text).is_ok());
    }
}
