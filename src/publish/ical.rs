//! The merged iCalendar feed (RFC 5545), built and serialised with the `icalendar` crate (CRLF,
//! folding, TEXT escaping). Pure: canonical events in, text out. Europe/London times keep their
//! TZID with a VTIMEZONE; every other zone is written in UTC, so no TZID is ever left undefined.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime, EventLike, Property};

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
/// last Sunday in October. Static RFC 5545 text, already within line limits: the crate has no
/// VTIMEZONE builder, and it writes every other component (its `Other` included, sub-components
/// too) with a DTSTAMP of the wall clock and a random UID, which VTIMEZONE must not carry and
/// which would change the calendar's bytes (and ETag) on every render.
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

/// TEXT may carry no control character but HTAB (RFC 5545 3.3.11) and the crate escapes only
/// LF, so a partner's CR or CRLF becomes LF and any other control character a space.
fn text(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\r' => '\n',
            '\n' | '\t' => c,
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// URIs and other unescaped values are written raw: a control character would end the line.
fn raw(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// DTSTART/DTEND: a DATE for all-day events, local time with TZID for Europe/London, UTC
/// otherwise (a series in another zone then repeats at a fixed UTC time, an hour off across that
/// zone's own clock changes). A local time the autumn change makes ambiguous is written in UTC,
/// because a TZID reading would pick the first (BST) of the two.
fn event_time(t: DateTime<FixedOffset>, tz: Option<&str>, all_day: bool) -> DatePerhapsTime {
    let london = tz
        .filter(|z| *z == LOCAL_ZONE)
        .and_then(|z| z.parse::<Tz>().ok());
    if all_day {
        let date = match london {
            Some(z) => t.with_timezone(&z).date_naive(),
            None => t.date_naive(),
        };
        return DatePerhapsTime::Date(date);
    }
    if let Some(z) = london {
        let local = t.with_timezone(&z).naive_local();
        if z.from_local_datetime(&local).single().is_some() {
            return DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone {
                date_time: local,
                tzid: LOCAL_ZONE.into(),
            });
        }
    }
    DatePerhapsTime::DateTime(CalendarDateTime::Utc(t.with_timezone(&Utc)))
}

/// One RDATE/EXDATE list item (`20270112T100000`, or a PERIOD `start/end`) from local time in
/// `zone` to UTC. A time in the spring gap counts with the offset before it (RFC 5545 3.3.5).
fn item_to_utc(item: &str, zone: Tz) -> Option<String> {
    let one = |v: &str| -> Option<String> {
        if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
            return Some(v.to_string());
        }
        let naive = NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()?;
        let at = zone.from_local_datetime(&naive).earliest().or_else(|| {
            zone.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })?;
        Some(at.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
    };
    match item.split_once('/') {
        Some((start, end)) => {
            let end = if end.starts_with(['P', '+', '-']) {
                end.to_string()
            } else {
                one(end)?
            };
            Some(format!("{}/{end}", one(start)?))
        }
        None => one(item),
    }
}

/// A stored recurrence line (`EXDATE;TZID=Europe/London:20270112T100000`) as a property. Lines
/// keep their Europe/London TZID; times in any other zone become UTC, and a line whose zone or
/// times cannot be read is left out rather than published with a TZID no client can resolve.
fn recurrence_prop(line: &str) -> Option<Property> {
    let (head, value) = line.split_once(':')?;
    let mut parts = head.split(';');
    let key = parts.next()?.trim().to_ascii_uppercase();
    if !matches!(key.as_str(), "RRULE" | "RDATE" | "EXDATE") {
        return None;
    }
    let mut value = raw(value.trim());
    let mut value_type = None;
    let mut tzid = None;
    for param in parts {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let v = raw(v.trim().trim_matches('"'));
        // Only these two parameters mean anything on RDATE/EXDATE; others are dropped.
        match k.trim().to_ascii_uppercase().as_str() {
            "VALUE" if v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                value_type = Some(v)
            }
            "TZID" => tzid = Some(v),
            _ => {}
        }
    }
    let mut params = Vec::new();
    if key != "RRULE" {
        if let Some(name) = tzid {
            let zone: Tz = name.parse().ok()?;
            if zone.name() == LOCAL_ZONE {
                params.push(("TZID", LOCAL_ZONE.to_string()));
            } else {
                let items: Option<Vec<String>> = value
                    .split(',')
                    .map(|i| item_to_utc(i.trim(), zone))
                    .collect();
                value = items?.join(",");
            }
        }
        if let Some(v) = value_type {
            params.push(("VALUE", v));
        }
    }
    let mut p = Property::new(&key, value);
    for (k, v) in params {
        p.add_parameter(k, &v);
    }
    Some(p)
}

fn vevent(c: &CanonicalEvent, uid_domain: &str) -> icalendar::Event {
    let e = &c.event;
    let mut ev = icalendar::Event::new();
    // The UID depends on the canonical id alone, so clients keep one copy across renders.
    ev.uid(&format!("{}@{}", c.id, uid_domain));
    // A placeholder: `assemble` writes the calendar's own DTSTAMP (and SEQUENCE) per render.
    ev.timestamp(DateTime::UNIX_EPOCH);
    ev.summary(&text(&e.title));
    let tz = e.timezone.as_deref();
    ev.starts(event_time(e.start, tz, e.all_day));
    // DTEND must be later than DTSTART (RFC 5545 3.8.2.2); without it the event is its start.
    if let Some(end) = e.end {
        let later = if e.all_day {
            event_time(end, tz, true).date_naive() > event_time(e.start, tz, true).date_naive()
        } else {
            end > e.start
        };
        if later {
            ev.ends(event_time(end, tz, e.all_day));
        }
    }
    if let Some(lines) = &e.recurrence {
        for p in lines.iter().filter_map(|l| recurrence_prop(l)) {
            if p.key() == "RRULE" {
                ev.append_property(p);
            } else {
                ev.append_multi_property(p);
            }
        }
    }
    if let Some(d) = &e.description {
        ev.description(&text(d));
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
        ev.location(&text(&location.join(", ")));
    } else if e.location.online {
        ev.location(&text(e.location.url.as_deref().unwrap_or("Online")));
    }
    if let Some(url) = e.url.as_deref().or(e.booking_url.as_deref()) {
        ev.url(&raw(url));
    }
    if !e.categories.is_empty() {
        ev.categories(e.categories.iter().map(|c| text(c)));
    }
    ev.status(if e.status == EventStatus::Cancelled {
        icalendar::EventStatus::Cancelled
    } else {
        icalendar::EventStatus::Confirmed
    });
    ev.last_modified(c.updated_at.with_timezone(&Utc));
    if let Some(name) = &e.organiser.name {
        // ORGANIZER needs a CAL-ADDRESS (mailto:) and the model keeps no organiser email.
        ev.add_property("X-TRIBUTARY-ORGANISER", text(name));
    }
    let partners: Vec<&str> = c.partners.iter().map(|p| p.partner.as_str()).collect();
    ev.add_property("X-TRIBUTARY-PARTNERS", text(&partners.join(" ")));
    if let Some(b) = &e.booking_url {
        ev.add_property("X-TRIBUTARY-BOOKING-URL", text(b));
    }
    ev.done()
}

const BEGIN_VEVENT: &str = "BEGIN:VEVENT\r\n";

/// One event's VEVENT block, complete but for DTSTAMP and SEQUENCE, which depend on the calendar
/// and the entity's version and which [`assemble`] adds. The store keeps it with the entity, so
/// a calendar render concatenates stored blocks instead of rebuilding every event.
pub fn fragment(event: &CanonicalEvent, uid_domain: &str) -> String {
    // Written alone, not inside a calendar: the block is all that is kept.
    let text = refold(
        &vevent(event, uid_domain)
            .try_into_string()
            .unwrap_or_default(),
    );
    text.split_inclusive("\r\n")
        .filter(|l| !l.starts_with("DTSTAMP:") && !l.starts_with("SEQUENCE:"))
        .collect()
}

/// A stored VEVENT block and what this render says about it.
pub struct Piece<'a> {
    pub fragment: &'a str,
    /// Grows each time the merged event changes, so clients replace their copy.
    pub sequence: i64,
    /// Deleted (or merged away) recently: published as CANCELLED so subscribers remove it.
    pub withdrawn: bool,
}

/// icalendar 0.17 folds at 75 octets on character boundaries, but lets the last continuation
/// of a long line reach 76 (its leading space is not counted); split any such line once more.
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
    let fragments: Vec<String> = entries
        .iter()
        .map(|e| fragment(&e.event, opts.uid_domain))
        .collect();
    let pieces: Vec<Piece> = entries
        .iter()
        .zip(&fragments)
        .map(|(e, f)| Piece {
            fragment: f,
            sequence: e.sequence,
            withdrawn: e.withdrawn,
        })
        .collect();
    assemble(&pieces, opts)
}

/// A complete VCALENDAR from stored VEVENT blocks: the header, the zone if any event names it,
/// then each block with this calendar's DTSTAMP and the event's SEQUENCE.
pub fn assemble(pieces: &[Piece], opts: &CalendarOptions) -> String {
    let mut a = Assembler::new(opts, pieces.iter().map(|p| p.fragment.len()).sum());
    for p in pieces {
        a.push(p);
    }
    a.finish()
}

/// Builds a calendar block by block, so a caller can stream stored blocks straight in. The text
/// is kept as a list of parts of about [`PART_BYTES`] each, never one contiguous buffer: a
/// national calendar runs to tens of megabytes, and a growing string would copy itself at every
/// doubling and hold old and new at once.
pub struct Assembler {
    header: String,
    parts: Vec<String>,
    current: String,
    needs_zone: bool,
    dtstamp: String,
}

/// Size a calendar part grows to before the next one starts.
pub const PART_BYTES: usize = 256 * 1024;

impl Assembler {
    /// Starts a calendar; `size_hint` is the expected total length of the blocks (a small
    /// calendar is then one part of exactly the right size).
    pub fn new(opts: &CalendarOptions, size_hint: usize) -> Assembler {
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
            cal.append_property(Property::new(k, text(v)));
        }
        if let Some(d) = opts.description {
            cal.append_property(Property::new("X-WR-CALDESC", text(d)));
        }
        // Subscribed clients refresh at most hourly unless told otherwise.
        cal.append_property(Property::new("X-PUBLISHED-TTL", "PT1H"));
        let header = refold(&cal.to_string());
        let header = header
            .strip_suffix("END:VCALENDAR\r\n")
            .unwrap_or(&header)
            .to_string();
        Assembler {
            header,
            parts: Vec::new(),
            current: String::with_capacity(size_hint.min(PART_BYTES)),
            needs_zone: false,
            dtstamp: format!("DTSTAMP:{}\r\n", opts.now.format("%Y%m%dT%H%M%SZ")),
        }
    }

    pub fn push(&mut self, p: &Piece) {
        use std::fmt::Write;
        // A part is never grown past the size it was made with (growing would copy it): the
        // next block starts a new part when it would not fit.
        let needed = p.fragment.len() + self.dtstamp.len() + 64;
        if self.current.len() + needed > self.current.capacity() {
            let next = String::with_capacity(PART_BYTES.max(needed));
            let full = std::mem::replace(&mut self.current, next);
            if !full.is_empty() {
                self.parts.push(full);
            }
        }
        self.needs_zone |= p.fragment.contains(";TZID=");
        let out = &mut self.current;
        out.push_str(BEGIN_VEVENT);
        out.push_str(&self.dtstamp);
        let _ = write!(
            out,
            "SEQUENCE:{}\r\n",
            p.sequence.clamp(0, i64::from(u32::MAX))
        );
        let body = p.fragment.strip_prefix(BEGIN_VEVENT).unwrap_or(p.fragment);
        if p.withdrawn {
            out.push_str(&body.replacen("STATUS:CONFIRMED\r\n", "STATUS:CANCELLED\r\n", 1));
        } else {
            out.push_str(body);
        }
    }

    /// The calendar as consecutive parts: their concatenation is the VCALENDAR.
    pub fn finish_parts(mut self) -> Vec<String> {
        if self.needs_zone {
            self.header.push_str(VTIMEZONE_LONDON);
        }
        self.current.push_str("END:VCALENDAR\r\n");
        let mut out = Vec::with_capacity(self.parts.len() + 2);
        out.push(self.header);
        out.append(&mut self.parts);
        out.push(self.current);
        out
    }

    /// The calendar as one string.
    pub fn finish(self) -> String {
        self.finish_parts().concat()
    }
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

    fn assert_wire_format(text: &str) {
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
        assert!(
            !text.replace("\r\n", "").contains(['\r', '\n']),
            "CRLF only"
        );
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
    }

    /// The VEVENTs of a calendar, read back with the crate's own parser (which wants it unfolded).
    fn parsed_events(text: &str) -> Vec<icalendar::parser::Component<'_>> {
        icalendar::parser::read_calendar(text)
            .unwrap()
            .components
            .into_iter()
            .filter(|c| c.name == "VEVENT")
            .collect()
    }

    fn prop<'a>(c: &'a icalendar::parser::Component<'_>, name: &str) -> &'a str {
        c.find_prop(name).unwrap().val.as_str()
    }

    #[test]
    fn a_big_calendar_is_built_in_parts_that_never_grow() {
        let entries: Vec<CalendarEntry> = (0..3_000)
            .map(|i| {
                let tz = (i % 7 == 0).then_some("Europe/London");
                entry(
                    &format!("evt_{i}"),
                    &format!("Webinar {i}"),
                    "2027-03-01T10:00:00+00:00",
                    tz,
                )
            })
            .collect();
        let fragments: Vec<String> = entries
            .iter()
            .map(|e| fragment(&e.event, "tributary"))
            .collect();
        let o = opts("2026-11-01T10:00:00Z");
        let mut a = Assembler::new(&o, 0);
        for (e, f) in entries.iter().zip(&fragments) {
            a.push(&Piece {
                fragment: f,
                sequence: e.sequence,
                withdrawn: e.withdrawn,
            });
        }
        let parts = a.finish_parts();
        assert!(parts.len() > 4, "{} parts", parts.len());
        for p in &parts {
            assert!(
                p.capacity() <= PART_BYTES,
                "a part grew to {}",
                p.capacity()
            );
        }
        let whole = parts.concat();
        assert_eq!(
            whole,
            render(&entries, &o),
            "the parts are the calendar, zone included"
        );
        assert_wire_format(&whole);
        assert_eq!(parsed_events(&unfold(&whole)).len(), 3_000);
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
        assert_wire_format(&a);
        let u = unfold(&a);
        assert!(u.contains("SUMMARY:Safeguarding\\, basics\\; level 1"));
        assert!(u.contains("DESCRIPTION:Line one\\, with a comma\\; and a semicolon\\nLine two"));
        assert!(u.contains("CATEGORIES:Partnership / Information,Health\\, care"));
        assert!(u.contains("DTSTART;TZID=Europe/London:20220125T130000"));
        assert!(u.contains("DTSTART;TZID=Europe/London:20270701T090000"));
        assert_eq!(u.matches("BEGIN:VTIMEZONE").count(), 1);
        assert!(u.contains("TZID:Europe/London") && u.contains("BYMONTH=10;BYDAY=-1SU"));
        assert!(u.find("BEGIN:VTIMEZONE") < u.find("BEGIN:VEVENT"));
        assert!(u.contains("UID:evt_1@tributary") && u.contains("SEQUENCE:2"));
        assert!(u.contains("X-TRIBUTARY-PARTNERS:cvs-cheshire-east"));
        let b = render(&entries, &opts("2027-01-01T00:00:00Z"));
        assert_eq!(
            a.replace("DTSTAMP:20261125T000000Z", ""),
            b.replace("DTSTAMP:20270101T000000Z", "")
        );

        // Round trip through the crate's own parser.
        let a_unfolded = icalendar::parser::unfold(&a);
        let events = parsed_events(&a_unfolded);
        assert_eq!(events.len(), 2);
        assert_eq!(prop(&events[0], "UID"), "evt_1@tributary");
        assert_eq!(prop(&events[0], "DTSTART"), "20220125T130000");
        assert_eq!(prop(&events[0], "DESCRIPTION"), "é".repeat(200));
        assert!(prop(&events[0], "SUMMARY").ends_with("Cheshire & Merseyside’s journey"));
        assert_eq!(prop(&events[1], "UID"), "evt_2@tributary");
        assert_eq!(prop(&events[1], "DTSTART"), "20270701T090000");
        assert_eq!(prop(&events[1], "SUMMARY"), "Safeguarding, basics; level 1");
        assert_eq!(
            prop(&events[1], "DESCRIPTION"),
            "Line one, with a comma; and a semicolon\nLine two"
        );
    }

    #[test]
    fn multibyte_text_folds_within_75_octets() {
        for n in 0..80 {
            let mut e = entry("evt_m", "Café", "2027-01-05T10:00:00+00:00", None);
            // Every alignment of 2-, 3- and 4-byte characters against the fold points.
            e.event.event.title = format!(
                "{}Caf€ 🌳 ‘Wellbeing’ ünd mehr {}",
                "x".repeat(n),
                "é".repeat(n)
            );
            e.event.event.description = Some("老虎🌳é".repeat(n + 1));
            let text = render(&[e.clone()], &opts("2026-11-25T00:00:00Z"));
            assert_wire_format(&text);
            let unfolded = icalendar::parser::unfold(&text);
            let events = parsed_events(&unfolded);
            assert_eq!(prop(&events[0], "SUMMARY"), e.event.event.title);
            assert_eq!(
                Some(prop(&events[0], "DESCRIPTION")),
                e.event.event.description.as_deref()
            );
        }
    }

    #[test]
    fn carriage_returns_and_control_characters_cannot_break_lines() {
        let mut e = entry(
            "evt_c",
            "Two\r\nlines\rand\u{7}bell",
            "2027-01-05T10:00:00+00:00",
            None,
        );
        e.event.event.description = Some("a\r\nBEGIN:VEVENT\r\nb".into());
        e.event.event.organiser.name = Some("Hull VCSE\r\nX-EVIL:1".into());
        e.event.event.url = Some("https://example.org/\r\nX-EVIL:1".into());
        let text = render(&[e], &opts("2026-11-25T00:00:00Z"));
        assert_wire_format(&text);
        let u = unfold(&text);
        assert!(u.contains("SUMMARY:Two\\nlines\\nand bell"));
        assert!(u.contains("DESCRIPTION:a\\nBEGIN:VEVENT\\nb"));
        assert!(u.contains("X-TRIBUTARY-ORGANISER:Hull VCSE\\nX-EVIL:1"));
        assert!(u.contains("URL:https://example.org/X-EVIL:1"));
        assert_eq!(u.matches("BEGIN:VEVENT").count(), 2);
        assert!(!u.contains("\r\nX-EVIL"));
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
            "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z".into(),
            "EXDATE;TZID=Europe/London:20270112T100000".into(),
        ]);
        series.withdrawn = true;
        let mut cancelled = entry(
            "evt_x",
            "Trustee breakfast",
            "2027-02-03T08:00:00+00:00",
            Some("Europe/London"),
        );
        cancelled.event.event.status = EventStatus::Cancelled;
        let utc = entry(
            "evt_u",
            "Paris meetup",
            "2027-03-01T18:00:00+01:00",
            Some("Europe/Paris"),
        );
        let text = render(
            &[day, series, cancelled, utc],
            &opts("2026-11-25T00:00:00Z"),
        );
        assert_wire_format(&text);
        let u = unfold(&text);
        assert!(u.contains("DTSTART;VALUE=DATE:20270601"));
        assert!(u.contains("DTEND;VALUE=DATE:20270608"));
        assert!(u.contains("RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z"));
        assert!(u.contains("EXDATE;TZID=Europe/London:20270112T100000"));
        assert_eq!(u.matches("STATUS:CANCELLED").count(), 2);
        assert_eq!(u.matches("STATUS:CONFIRMED").count(), 2);
        assert!(u.contains("DTSTART:20270301T170000Z"));
        let unfolded = icalendar::parser::unfold(&text);
        let events = parsed_events(&unfolded);
        assert_eq!(prop(&events[0], "DTSTART"), "20270601");
        assert_eq!(
            prop(&events[1], "RRULE"),
            "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z"
        );
        assert_eq!(prop(&events[1], "EXDATE"), "20270112T100000");
        assert_eq!(prop(&events[3], "DTSTART"), "20270301T170000Z");
    }

    #[test]
    fn every_tzid_has_its_vtimezone() {
        // A UTC event whose EXDATE names Europe/London still needs the zone defined.
        let mut a = entry("evt_a", "A", "2027-01-05T10:00:00+00:00", None);
        a.event.event.recurrence = Some(vec![
            "RRULE:FREQ=WEEKLY".into(),
            "EXDATE;TZID=Europe/London:20270112T100000".into(),
        ]);
        let text = unfold(&render(&[a], &opts("2026-11-25T00:00:00Z")));
        assert!(text.contains("BEGIN:VTIMEZONE"));

        // Other zones' recurrence times become UTC; an unknown zone's line is left out.
        let mut b = entry(
            "evt_b",
            "B",
            "2027-01-05T10:00:00+01:00",
            Some("Europe/Paris"),
        );
        b.event.event.recurrence = Some(vec![
            "RRULE:FREQ=WEEKLY".into(),
            "EXDATE;TZID=Europe/Paris:20270112T100000,20270720T100000".into(),
            "RDATE;TZID=Mars/Olympus:20270113T100000".into(),
        ]);
        let text = unfold(&render(&[b], &opts("2026-11-25T00:00:00Z")));
        assert!(text.contains("DTSTART:20270105T090000Z"));
        assert!(text.contains("EXDATE:20270112T090000Z,20270720T080000Z"));
        assert!(!text.contains("RDATE") && !text.contains("TZID"));

        // All-day London events use DATE values and need no zone.
        let mut c = entry(
            "evt_c",
            "C",
            "2027-03-18T00:00:00+00:00",
            Some("Europe/London"),
        );
        c.event.event.all_day = true;
        c.event.event.end = None;
        let text = render(&[c], &opts("2026-11-25T00:00:00Z"));
        assert!(text.contains("DTSTART;VALUE=DATE:20270318\r\n"));
        assert!(!text.contains("VTIMEZONE") && !text.contains("DTEND"));
    }

    #[test]
    fn ambiguous_autumn_hour_is_written_in_utc() {
        // 01:30 GMT on 31 Oct 2027 is the second 01:30 of that night in London.
        let e = entry(
            "evt_h",
            "Night shift",
            "2027-10-31T01:30:00+00:00",
            Some("Europe/London"),
        );
        let text = unfold(&render(&[e], &opts("2026-11-25T00:00:00Z")));
        assert!(text.contains("DTSTART:20271031T013000Z"), "{text}");
        assert!(text.contains("DTEND;TZID=Europe/London:20271031T033000"));
    }

    #[test]
    fn no_line_exceeds_75_octets_even_where_the_crate_folds_one_long() {
        // 12 + 212 = 224 octets: the crate's last continuation would be 76 octets.
        let mut e = entry("evt_f", "Fold", "2027-01-05T10:00:00+00:00", None);
        e.event.event.description = Some("a".repeat(212));
        let text = render(&[e], &opts("2026-11-25T00:00:00Z"));
        assert_wire_format(&text);
        assert!(unfold(&text).contains(&format!("DESCRIPTION:{}", "a".repeat(212))));
    }

    #[test]
    fn empty_calendar_is_valid() {
        let text = render(&[], &opts("2026-11-25T00:00:00Z"));
        assert_wire_format(&text);
        for line in [
            "VERSION:2.0",
            concat!(
                "PRODID:-//tributary//tributary ",
                env!("CARGO_PKG_VERSION"),
                "//EN"
            ),
            "CALSCALE:GREGORIAN",
            "METHOD:PUBLISH",
            "X-WR-CALNAME:tributary",
            "X-WR-TIMEZONE:Europe/London",
        ] {
            assert!(text.contains(&format!("{line}\r\n")), "{line}");
        }
        assert!(!text.contains("VTIMEZONE") && !text.contains("VEVENT"));
        assert!(icalendar::parser::read_calendar(&text).is_ok());
    }

    #[test]
    fn vtimezone_is_static_and_parses() {
        let e = entry(
            "evt_z",
            "Z",
            "2027-01-05T10:00:00+00:00",
            Some("Europe/London"),
        );
        let text = render(&[e], &opts("2026-11-25T00:00:00Z"));
        let zone = &text[text.find("BEGIN:VTIMEZONE").unwrap()..text.find("BEGIN:VEVENT").unwrap()];
        assert_eq!(zone, VTIMEZONE_LONDON);
        assert!(!zone.contains("DTSTAMP") && !zone.contains("UID"));
        let unfolded = icalendar::parser::unfold(&text);
        let cal = icalendar::parser::read_calendar(&unfolded).unwrap();
        let tz = cal
            .components
            .iter()
            .find(|c| c.name == "VTIMEZONE")
            .unwrap();
        assert_eq!(tz.find_prop("TZID").unwrap().val.as_str(), "Europe/London");
        let kinds: Vec<&str> = tz.components.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(kinds, ["DAYLIGHT", "STANDARD"]);
        vtimezone_matches_tzdata(tz);
    }

    /// Expands each of the published VTIMEZONE's observances (DTSTART + RRULE, in the local time
    /// of TZOFFSETFROM) with the `rrule` crate and checks every clock change the zone claims
    /// against chrono-tz's Europe/London for the years events are published in (the present EU
    /// rule took effect in 1996), and that tzdata has no clock change the zone does not claim.
    fn vtimezone_matches_tzdata(tz: &icalendar::parser::Component) {
        use chrono::{Offset, TimeZone};
        let offset_secs = |v: &str| -> i64 {
            let sign = if v.starts_with('-') { -1 } else { 1 };
            let hours: i64 = v[1..3].parse().unwrap();
            let minutes: i64 = v[3..5].parse().unwrap();
            sign * (hours * 3600 + minutes * 60)
        };
        let (first, last) = (1996, 2037);
        let mut claimed = std::collections::BTreeSet::new();
        for obs in &tz.components {
            let prop = |name: &str| obs.find_prop(name).unwrap().val.as_str().to_string();
            let (from, to) = (
                offset_secs(&prop("TZOFFSETFROM")),
                offset_secs(&prop("TZOFFSETTO")),
            );
            // Local wall times, expanded as if UTC, then moved by the offset in force before.
            let set: rrule::RRuleSet =
                format!("DTSTART:{}Z\nRRULE:{}", prop("DTSTART"), prop("RRULE"))
                    .parse()
                    .unwrap();
            let (start, end) = (
                rrule::Tz::UTC
                    .with_ymd_and_hms(first, 1, 1, 0, 0, 0)
                    .unwrap(),
                rrule::Tz::UTC
                    .with_ymd_and_hms(last + 1, 1, 1, 0, 0, 0)
                    .unwrap(),
            );
            for local in set.after(start).before(end).all(200).dates {
                let at = local.timestamp() - from;
                let before = chrono_tz::Europe::London
                    .timestamp_opt(at - 1, 0)
                    .unwrap()
                    .offset()
                    .fix()
                    .local_minus_utc() as i64;
                let after = chrono_tz::Europe::London
                    .timestamp_opt(at, 0)
                    .unwrap()
                    .offset()
                    .fix()
                    .local_minus_utc() as i64;
                assert_eq!(
                    (before, after),
                    (from, to),
                    "{} change at {local} local",
                    obs.name
                );
                claimed.insert(at);
            }
        }
        assert_eq!(
            claimed.len(),
            2 * (last - first + 1) as usize,
            "two changes a year"
        );
        // Every change tzdata has in those years is one the zone claims (hourly scan).
        let offset = |t: i64| {
            chrono_tz::Europe::London
                .timestamp_opt(t, 0)
                .unwrap()
                .offset()
                .fix()
                .local_minus_utc()
        };
        let from = chrono::Utc
            .with_ymd_and_hms(first, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        let to = chrono::Utc
            .with_ymd_and_hms(last + 1, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp();
        for t in (from..to).step_by(3600) {
            if offset(t) != offset(t + 3600) {
                let change = (t + 1..=t + 3600)
                    .find(|&c| offset(c) != offset(c - 1))
                    .unwrap();
                assert!(
                    claimed.contains(&change),
                    "tzdata changes clocks at {change}, the zone does not say so"
                );
            }
        }
    }
}
