//! The merged iCalendar feed (RFC 5545), built and serialised with the `icalendar` crate (CRLF,
//! folding, TEXT escaping). Pure: canonical events in, text out. Every time keeps its event's own
//! TZID, and each zone the calendar names gets a VTIMEZONE derived from chrono-tz's transitions;
//! a series' overrides are published under its UID with RECURRENCE-ID.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};
use icalendar::{Calendar, CalendarDateTime, Component, DatePerhapsTime, EventLike, Property};

use crate::model::{CanonicalEvent, EventStatus, Override};
use crate::recurrence::{self, DateItem, Line};

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

/// The zone a client without zone support shows the calendar in (X-WR-TIMEZONE); every time
/// still carries its own TZID, which strict clients follow.
const LOCAL_ZONE: &str = "Europe/London";

/// Years a published VTIMEZONE spells out: every transition between them, as chrono-tz has it.
const ZONE_FIRST_YEAR: i32 = 1970;
const ZONE_LAST_YEAR: i32 = 2040;

/// One clock change: the instant, the offsets either side, and what the new one is called.
struct Transition {
    at: DateTime<Utc>,
    from: i32,
    to: i32,
    name: String,
    dst: bool,
}

fn offset_of(tz: Tz, t: DateTime<Utc>) -> (i32, String, bool) {
    let o = tz.offset_from_utc_datetime(&t.naive_utc());
    let name = o.abbreviation().unwrap_or("").to_string();
    (o.fix().local_minus_utc(), name, !o.dst_offset().is_zero())
}

/// Transitions found day by day, each then narrowed to the second by bisection.
fn transitions(tz: Tz) -> Vec<Transition> {
    let (Some(mut t), Some(end)) = (
        Utc.with_ymd_and_hms(ZONE_FIRST_YEAR, 1, 1, 0, 0, 0)
            .single(),
        Utc.with_ymd_and_hms(ZONE_LAST_YEAR + 1, 1, 1, 0, 0, 0)
            .single(),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut here = offset_of(tz, t);
    while t < end {
        let next = t + Duration::days(1);
        let there = offset_of(tz, next);
        if there != here {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_of(tz, mid) == here {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let new = offset_of(tz, hi);
            if new.0 != here.0 || new.2 != here.2 {
                out.push(Transition {
                    at: hi,
                    from: here.0,
                    to: new.0,
                    name: new.1.clone(),
                    dst: new.2,
                });
            }
            here = new;
        }
        t = next;
    }
    out
}

fn utc_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    if a % 60 != 0 {
        format!("{sign}{:02}{:02}{:02}", a / 3600, a / 60 % 60, a % 60)
    } else {
        format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
    }
}

/// The VTIMEZONE of `tz`: one observance per kind of change (offsets and name), its first onset
/// as DTSTART and the others as RDATE, all in local time before the change (RFC 5545 3.6.5).
fn vtimezone_text(tz: Tz) -> String {
    let changes = transitions(tz);
    let mut cal_text = format!("BEGIN:VTIMEZONE\r\nTZID:{}\r\n", tz.name());
    if changes.is_empty() {
        let (off, name, dst) = Utc
            .with_ymd_and_hms(ZONE_FIRST_YEAR, 1, 1, 0, 0, 0)
            .single()
            .map(|t| offset_of(tz, t))
            .unwrap_or((0, String::new(), false));
        let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
        cal_text.push_str(&format!(
            "BEGIN:{kind}\r\nTZOFFSETFROM:{o}\r\nTZOFFSETTO:{o}\r\n{n}DTSTART:19700101T000000\r\nEND:{kind}\r\n",
            o = utc_offset(off),
            n = if name.is_empty() { String::new() } else { format!("TZNAME:{name}\r\n") },
        ));
    } else {
        type Kind = (bool, i32, i32, String);
        let mut groups: Vec<(Kind, Vec<NaiveDateTime>)> = Vec::new();
        for c in &changes {
            let local = c.at.naive_utc() + Duration::seconds(i64::from(c.from));
            let key = (c.dst, c.from, c.to, c.name.clone());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(local),
                None => groups.push((key, vec![local])),
            }
        }
        for ((dst, from, to, name), onsets) in groups {
            let kind = if dst { "DAYLIGHT" } else { "STANDARD" };
            let fmt = |t: &NaiveDateTime| t.format("%Y%m%dT%H%M%S").to_string();
            cal_text.push_str(&format!(
                "BEGIN:{kind}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\n",
                utc_offset(from),
                utc_offset(to)
            ));
            if !name.is_empty() {
                cal_text.push_str(&format!("TZNAME:{name}\r\n"));
            }
            cal_text.push_str(&format!("DTSTART:{}\r\n", fmt(&onsets[0])));
            // One RDATE line per onset: ical.js reads only the first value of each RDATE.
            for onset in &onsets[1..] {
                cal_text.push_str(&format!("RDATE:{}\r\n", fmt(onset)));
            }
            cal_text.push_str(&format!("END:{kind}\r\n"));
        }
    }
    cal_text.push_str("END:VTIMEZONE\r\n");
    refold(&cal_text)
}

/// A zone's VTIMEZONE, computed once per process.
pub fn vtimezone(tz: Tz) -> String {
    static CACHE: OnceLock<Mutex<HashMap<Tz, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(t) = cache.lock().ok().and_then(|c| c.get(&tz).cloned()) {
        return t;
    }
    let text = vtimezone_text(tz);
    if let Ok(mut c) = cache.lock() {
        c.insert(tz, text.clone());
    }
    text
}

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

/// The zone an event's times are written in: its own, unless it has none or is UTC.
fn zone_of(tz: Option<&str>) -> Option<Tz> {
    tz.and_then(recurrence::zone)
        .filter(|z| *z != chrono_tz::UTC && z.name() != "Etc/UTC")
}

/// DTSTART/DTEND and the like: a DATE for all-day events, local time with the event's TZID
/// otherwise, UTC for events given in UTC. A local time the autumn change makes ambiguous is
/// written in UTC when it is the second of the two, since a TZID reading picks the first.
fn event_time(t: DateTime<FixedOffset>, tz: Option<&str>, all_day: bool) -> DatePerhapsTime {
    let zone = zone_of(tz);
    if all_day {
        let date = match zone {
            Some(z) => t.with_timezone(&z).date_naive(),
            None => t.date_naive(),
        };
        return DatePerhapsTime::Date(date);
    }
    if let Some(z) = zone {
        let local = t.with_timezone(&z).naive_local();
        let first = z.from_local_datetime(&local).earliest();
        if first.is_some_and(|f| f.with_timezone(&Utc) == t.with_timezone(&Utc)) {
            return DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone {
                date_time: local,
                tzid: z.name().into(),
            });
        }
    }
    DatePerhapsTime::DateTime(CalendarDateTime::Utc(t.with_timezone(&Utc)))
}

/// The event's stored lines (canonical: UTC times, DATE lists) as properties in the event's own
/// form: UNTIL as a DATE for an all-day series, RDATE/EXDATE times with the event's TZID. Lines
/// that cannot be read, and rules the calendar refuses, are left out.
fn recurrence_props(c: &CanonicalEvent) -> Vec<Property> {
    let e = &c.event;
    let anchor = recurrence::Anchor::of(e);
    let tz = e.timezone.as_deref();
    let mut out = Vec::new();
    let mut exdates: Vec<DateItem> = e
        .overrides
        .iter()
        .filter(|o| o.cancelled)
        .map(|o| DateItem::At(o.recurrence_id.with_timezone(&Utc)))
        .collect();
    let mut rdates = Vec::new();
    for l in e.recurrence.iter().flatten() {
        match recurrence::parse_line(l, &anchor, &recurrence::zone) {
            Ok(Some(Line::Rule(r))) => {
                let rule = if e.all_day {
                    r.split(';')
                        .map(|p| match p.strip_prefix("UNTIL=") {
                            Some(u) => NaiveDateTime::parse_from_str(u, "%Y%m%dT%H%M%SZ")
                                .map(|n| {
                                    let d = n.and_utc().with_timezone(&anchor.tz).date_naive();
                                    format!("UNTIL={}", d.format("%Y%m%d"))
                                })
                                .unwrap_or_else(|_| p.to_string()),
                            None => p.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(";")
                } else {
                    r
                };
                out.push(Property::new("RRULE", raw(&rule)));
            }
            Ok(Some(Line::Dates { exclude, items })) => {
                if exclude {
                    exdates.extend(items)
                } else {
                    rdates.extend(items)
                }
            }
            Ok(None) => {}
            Err(_) => {}
        }
    }
    if out.is_empty() && rdates.is_empty() {
        return Vec::new();
    }
    for (key, items) in [("RDATE", rdates), ("EXDATE", exdates)] {
        let mut by_param: Vec<(Option<String>, bool, Vec<String>)> = Vec::new();
        // An RDATE PERIOD keeps its own length; written in UTC, which every reader takes.
        let mut periods = Vec::new();
        for item in items {
            let time = match item {
                DateItem::Period { start, end } if key == "RDATE" => {
                    periods.push(format!(
                        "{}/{}",
                        start.format("%Y%m%dT%H%M%SZ"),
                        end.format("%Y%m%dT%H%M%SZ")
                    ));
                    continue;
                }
                DateItem::At(t) | DateItem::Period { start: t, .. } => {
                    event_time(t.fixed_offset(), tz, e.all_day)
                }
                // An excluded day of a timed series is its occurrence at the series' time.
                DateItem::Date(d) if !e.all_day => {
                    let local = d.and_time(e.start.with_timezone(&anchor.tz).time());
                    match recurrence::local_instant(anchor.tz, local) {
                        Some(t) => event_time(t.fixed_offset(), tz, false),
                        None => continue,
                    }
                }
                DateItem::Date(d) => DatePerhapsTime::Date(d),
            };
            let (tzid, is_date, value) = match time {
                DatePerhapsTime::Date(d) => (None, true, d.format("%Y%m%d").to_string()),
                DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => (
                    Some(tzid),
                    false,
                    date_time.format("%Y%m%dT%H%M%S").to_string(),
                ),
                DatePerhapsTime::DateTime(CalendarDateTime::Utc(u)) => {
                    (None, false, u.format("%Y%m%dT%H%M%SZ").to_string())
                }
                DatePerhapsTime::DateTime(CalendarDateTime::Floating(n)) => {
                    (None, false, n.format("%Y%m%dT%H%M%S").to_string())
                }
            };
            match by_param
                .iter_mut()
                .find(|(z, d, _)| *z == tzid && *d == is_date)
            {
                Some((_, _, v)) => v.push(value),
                None => by_param.push((tzid, is_date, vec![value])),
            }
        }
        for (tzid, is_date, mut values) in by_param {
            values.sort();
            values.dedup();
            let mut p = Property::new(key, values.join(","));
            if let Some(z) = tzid {
                p.add_parameter("TZID", &z);
            }
            if is_date {
                p.add_parameter("VALUE", "DATE");
            }
            out.push(p);
        }
        if !periods.is_empty() {
            periods.sort();
            periods.dedup();
            let mut p = Property::new(key, periods.join(","));
            p.add_parameter("VALUE", "PERIOD");
            out.push(p);
        }
    }
    out
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
    // Multi-valued: a series may have several RRULEs (RFC 5545 allows it, and ical.js writes them).
    for p in recurrence_props(c) {
        ev.append_multi_property(p);
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
    if let Some(g) = geo(&e.location) {
        ev.add_property("GEO", g);
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

/// The venue's partner-given point as a GEO value (`lat;lon`, RFC 5545 3.8.1.6). Rust prints
/// floats without exponents, as the FLOAT value type requires.
fn geo(l: &crate::model::Location) -> Option<String> {
    let (lat, lon) = l.latitude.zip(l.longitude)?;
    Some(format!("{lat};{lon}"))
}

const BEGIN_VEVENT: &str = "BEGIN:VEVENT\r\n";

/// A moved or changed occurrence as its own VEVENT: the series' UID, RECURRENCE-ID in the
/// series' form, this occurrence's times and whatever the partner changed for it.
fn override_vevent(c: &CanonicalEvent, o: &Override, uid_domain: &str) -> icalendar::Event {
    let e = &c.event;
    let tz = e.timezone.as_deref();
    let mut ev = icalendar::Event::new();
    ev.uid(&format!("{}@{}", c.id, uid_domain));
    ev.timestamp(DateTime::UNIX_EPOCH);
    ev.append_property(event_time(o.recurrence_id, tz, e.all_day).to_property("RECURRENCE-ID"));
    ev.summary(&text(o.title.as_deref().unwrap_or(&e.title)));
    ev.starts(event_time(o.start, tz, e.all_day));
    if let Some(end) = o.end.filter(|end| *end > o.start) {
        ev.ends(event_time(end, tz, e.all_day));
    }
    if let Some(d) = o.description.as_ref().or(e.description.as_ref()) {
        ev.description(&text(d));
    }
    let loc = o.location.as_ref().unwrap_or(&e.location);
    let place: Vec<&str> = [
        loc.name.as_deref(),
        loc.address.as_deref(),
        loc.postcode.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !place.is_empty() {
        ev.location(&text(&place.join(", ")));
    }
    if let Some(g) = geo(loc) {
        ev.add_property("GEO", g);
    }
    ev.status(if e.status == EventStatus::Cancelled {
        icalendar::EventStatus::Cancelled
    } else {
        icalendar::EventStatus::Confirmed
    });
    ev.last_modified(c.updated_at.with_timezone(&Utc));
    ev.done()
}

/// One event's VEVENT block (its overrides' VEVENTs after it), complete but for DTSTAMP and
/// SEQUENCE, which depend on the calendar and the entity's version and which [`assemble`] adds.
/// The store keeps it with the entity, so a calendar render concatenates stored blocks instead
/// of rebuilding every event.
pub fn fragment(event: &CanonicalEvent, uid_domain: &str) -> String {
    let mut blocks = vec![vevent(event, uid_domain)];
    // Overrides only mean something beside a rule; a cancelled one is an EXDATE of the master.
    if event.event.recurrence.is_some() {
        blocks.extend(
            event
                .event
                .overrides
                .iter()
                .filter(|o| !o.cancelled)
                .map(|o| override_vevent(event, o, uid_domain)),
        );
    }
    let mut out = String::new();
    for b in blocks {
        // Written alone, not inside a calendar: the block is all that is kept.
        let text = refold(&b.try_into_string().unwrap_or_default());
        out.extend(
            text.split_inclusive("\r\n")
                .filter(|l| !l.starts_with("DTSTAMP:") && !l.starts_with("SEQUENCE:")),
        );
    }
    out
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
    zones: BTreeSet<&'static str>,
    dtstamp: String,
}

/// The calendar property that says a calendar was cut at its bound, and how.
pub const CUT_PROPERTY: &str = "X-TRIBUTARY-TRUNCATED";

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
            zones: BTreeSet::new(),
            dtstamp: format!("DTSTAMP:{}\r\n", opts.now.format("%Y%m%dT%H%M%SZ")),
        }
    }

    /// Credits the data in properties calendar apps ignore safely (RFC 5545 3.8.8.2 `X-` names):
    /// `X-TRIBUTARY-LICENSE` with the licence's URL when every partner behind the calendar shares
    /// one, then one `X-TRIBUTARY-ATTRIBUTION` per partner with its own licence. With differing
    /// licences no calendar-wide licence is claimed: the attributions state each one.
    pub fn credit(&mut self, attributions: &crate::licence::Attributions) {
        let mut cal = Calendar::empty();
        if let Some(l) = attributions.common() {
            cal.append_property(Property::new("X-TRIBUTARY-LICENSE", l.url.as_str()));
        }
        for a in attributions.all() {
            cal.append_property(Property::new("X-TRIBUTARY-ATTRIBUTION", text(&a.line())));
        }
        let block = refold(&cal.to_string());
        let props = block
            .strip_prefix("BEGIN:VCALENDAR\r\n")
            .and_then(|b| b.strip_suffix("END:VCALENDAR\r\n"))
            .unwrap_or("");
        self.header.push_str(props);
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
        self.note_zones(p.fragment);
        let out = &mut self.current;
        for line in p.fragment.split_inclusive("\r\n") {
            // Withdrawn: the STATUS property itself (a content line, never a continuation of
            // some text that happens to contain it) becomes CANCELLED.
            if p.withdrawn && line.starts_with("STATUS:") {
                out.push_str("STATUS:CANCELLED\r\n");
            } else {
                out.push_str(line);
            }
            if line == BEGIN_VEVENT {
                out.push_str(&self.dtstamp);
                let _ = write!(
                    out,
                    "SEQUENCE:{}\r\n",
                    p.sequence.clamp(0, i64::from(u32::MAX))
                );
            }
        }
    }

    /// Every TZID a block names, so the calendar defines each zone it uses.
    fn note_zones(&mut self, fragment: &str) {
        if !fragment.contains("TZID=") {
            return;
        }
        let unfolded = fragment.replace("\r\n ", "");
        for part in unfolded.split("TZID=").skip(1) {
            let name = part.split([':', ';']).next().unwrap_or("");
            if let Some(z) = recurrence::zone(name) {
                self.zones.insert(z.name());
            }
        }
    }

    /// States in the calendar itself that it leaves events out, as an `X-` calendar property:
    /// RFC 5545 lets clients ignore what they do not know, and every common one does.
    pub fn state_cut(&mut self, statement: &str) {
        let mut cal = Calendar::empty();
        cal.append_property(Property::new(CUT_PROPERTY, text(statement)));
        let rendered = refold(&cal.to_string());
        let line = rendered
            .strip_prefix("BEGIN:VCALENDAR\r\n")
            .and_then(|l| l.strip_suffix("END:VCALENDAR\r\n"))
            .unwrap_or("");
        self.header.push_str(line);
    }

    /// The calendar as consecutive parts: their concatenation is the VCALENDAR.
    pub fn finish_parts(mut self) -> Vec<String> {
        for z in self.zones.iter().filter_map(|n| n.parse::<Tz>().ok()) {
            self.header.push_str(&vtimezone(z));
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
    use crate::model::{Event, Location, Override, PartnerRef};

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
                    overrides: Vec::new(),
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
        assert!(u.contains("TZID:Europe/London\r\n") && u.contains("TZOFFSETTO:+0100"));
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
        assert!(u.contains("DTSTART;TZID=Europe/Paris:20270301T180000"));
        let unfolded = icalendar::parser::unfold(&text);
        let events = parsed_events(&unfolded);
        assert_eq!(prop(&events[0], "DTSTART"), "20270601");
        assert_eq!(
            prop(&events[1], "RRULE"),
            "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z"
        );
        assert_eq!(prop(&events[1], "EXDATE"), "20270112T100000");
        assert_eq!(prop(&events[3], "DTSTART"), "20270301T180000");
    }

    #[test]
    fn every_tzid_has_its_vtimezone() {
        // A UTC series writes its exceptions in UTC: no zone to define.
        let mut a = entry("evt_a", "A", "2027-01-05T10:00:00+00:00", None);
        a.event.event.recurrence = Some(vec![
            "RRULE:FREQ=WEEKLY".into(),
            "EXDATE;TZID=Europe/London:20270112T100000".into(),
        ]);
        let text = unfold(&render(&[a], &opts("2026-11-25T00:00:00Z")));
        assert!(text.contains("EXDATE:20270112T100000Z"));
        assert!(!text.contains("BEGIN:VTIMEZONE"));

        // Another zone keeps its TZID, with its VTIMEZONE; an unknown zone's line is left out.
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
        assert!(text.contains("DTSTART;TZID=Europe/Paris:20270105T100000"));
        assert!(text.contains("EXDATE;TZID=Europe/Paris:20270112T100000,20270720T100000"));
        let vevent = &text[text.find("BEGIN:VEVENT").unwrap()..];
        assert!(!vevent.contains("RDATE") && !text.contains("Mars"));
        assert_eq!(text.matches("BEGIN:VTIMEZONE").count(), 1);
        assert!(text.contains("TZID:Europe/Paris\r\n"));

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
    fn withdrawn_sets_the_status_property_not_text_that_looks_like_it() {
        let mut e = entry(
            "evt_w",
            "W",
            "2027-01-05T10:00:00+00:00",
            Some("Europe/London"),
        );
        // Folded so that a continuation line reads "STATUS:CONFIRMED".
        e.event.event.description = Some(format!("{}STATUS:CONFIRMED", "x".repeat(63)));
        e.withdrawn = true;
        let text = render(&[e], &opts("2026-11-25T00:00:00Z"));
        assert!(text.contains("\r\nSTATUS:CANCELLED\r\n"), "{text}");
        assert!(!text.contains("\r\nSTATUS:CONFIRMED\r\n"));
        assert!(unfold(&text).contains(&format!("{}STATUS:CONFIRMED", "x".repeat(63))));
    }

    #[test]
    fn overrides_are_published_under_the_series_uid() {
        let mut e = entry(
            "evt_o",
            "Cafe",
            "2027-03-02T18:00:00-05:00",
            Some("America/New_York"),
        );
        e.event.event.recurrence = Some(vec!["RRULE:FREQ=WEEKLY;COUNT=4".into()]);
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        e.event.event.overrides = vec![
            Override {
                recurrence_id: at("2027-03-09T18:00:00-05:00"),
                cancelled: false,
                start: at("2027-03-10T20:00:00-05:00"),
                end: Some(at("2027-03-10T21:00:00-05:00")),
                title: Some("Cafe (moved)".into()),
                description: None,
                location: None,
            },
            Override {
                recurrence_id: at("2027-03-16T18:00:00-04:00"),
                cancelled: true,
                start: at("2027-03-16T18:00:00-04:00"),
                end: None,
                title: None,
                description: None,
                location: None,
            },
        ];
        let text = render(&[e], &opts("2026-11-25T00:00:00Z"));
        assert_wire_format(&text);
        let u = unfold(&text);
        assert_eq!(u.matches("UID:evt_o@tributary\r\n").count(), 2);
        assert_eq!(u.matches("DTSTAMP:").count(), 2);
        assert!(u.contains("RECURRENCE-ID;TZID=America/New_York:20270309T180000"));
        assert!(u.contains("DTSTART;TZID=America/New_York:20270310T200000"));
        assert!(u.contains("SUMMARY:Cafe (moved)"));
        assert!(u.contains("EXDATE;TZID=America/New_York:20270316T180000"));
        assert!(u.contains("TZID:America/New_York\r\n"));
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
        assert_eq!(zone, vtimezone(chrono_tz::Europe::London));
        assert!(!zone.contains("DTSTAMP") && !zone.contains("UID"));
        let unfolded = icalendar::parser::unfold(&text);
        let cal = icalendar::parser::read_calendar(&unfolded).unwrap();
        let tz = cal
            .components
            .iter()
            .find(|c| c.name == "VTIMEZONE")
            .unwrap();
        assert_eq!(tz.find_prop("TZID").unwrap().val.as_str(), "Europe/London");
        let mut kinds: Vec<&str> = tz.components.iter().map(|c| c.name.as_str()).collect();
        kinds.sort();
        kinds.dedup();
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
            let prop = |name: &str| obs.find_prop(name).map(|p| p.val.as_str().to_string());
            let (from, to) = (
                offset_secs(&prop("TZOFFSETFROM").unwrap()),
                offset_secs(&prop("TZOFFSETTO").unwrap()),
            );
            // Local wall times (DTSTART with its RRULE or RDATE list), expanded as if UTC, then
            // moved by the offset in force before.
            let mut rule = format!("DTSTART:{}Z", prop("DTSTART").unwrap());
            if let Some(r) = prop("RRULE") {
                rule.push_str(&format!("\nRRULE:{r}"));
            }
            let utc: Vec<String> = obs
                .properties
                .iter()
                .filter(|p| p.name == "RDATE")
                .flat_map(|p| p.val.as_str().split(','))
                .map(|d| format!("{d}Z"))
                .collect();
            if !utc.is_empty() {
                rule.push_str(&format!("\nRDATE:{}", utc.join(",")));
            }
            let set: rrule::RRuleSet = rule.parse().unwrap();
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
