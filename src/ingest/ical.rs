//! The `ical` format: RFC 5545 calendars read with the `icalendar` crate's parser (unfolding,
//! parameters, TEXT unescaping, DATE/DATE-TIME values). Each VEVENT becomes an event keyed by its
//! UID (`UID#RECURRENCE-ID` for an overridden occurrence); VTODO, VJOURNAL and VTIMEZONE are ignored.
//!
//! Times: `TZID=` names an IANA zone or a Windows one ("GMT Standard Time"); `…Z` is UTC;
//! floating times and `VALUE=DATE` days are in the calendar's X-WR-TIMEZONE (else Europe/London).
//! A local time the autumn clock change repeats is its first occurrence (RFC 5545 3.3.5); one the
//! spring change skips is a rejection. A DATE event is all-day with an exclusive end, one day
//! when it has no DTEND. RRULE/RDATE/EXDATE lines are kept with their parameters, except that
//! TZIDs become IANA names and an RRULE's UNTIL takes the form its DTSTART requires
//! ([`normalise::recurrence`]), which also checks them with the `rrule` crate.
//!
//! One unreadable VEVENT does not sink the calendar: if the crate refuses the whole text, each
//! VEVENT is parsed on its own and the broken ones are rejections.

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use icalendar::parser::{Component, Property};
use icalendar::{CalendarDateTime, DatePerhapsTime, EventLike};

use super::ParseError;
use crate::model::{
    Event, EventStatus, Location, Organiser, ParsedFeed, Payload, Rejection, SourceRecord,
};
use crate::normalise;

const FORMAT: &str = "ical";

/// Hosts whose links are ticket or booking pages rather than information pages.
const BOOKING_HOSTS: &[&str] = &["eventbrite.", "ticketsource."];

/// Words in a LOCATION that mean the event happens online.
const ONLINE_WORDS: &[&str] = &["online", "webinar", "zoom", "teams", "virtual"];

pub fn parse(bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let invalid = |reason: String| ParseError::Invalid {
        format: FORMAT,
        reason,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| invalid(format!("not UTF-8 text: {e}")))?
        .trim_start_matches('\u{feff}');
    let first_line = text.lines().map(str::trim).find(|l| !l.is_empty());
    if !first_line.is_some_and(|l| l.eq_ignore_ascii_case("BEGIN:VCALENDAR")) {
        let start: String = text.trim_start().chars().take(60).collect();
        return Err(invalid(format!(
            "does not start with BEGIN:VCALENDAR (it starts {start:?})"
        )));
    }
    let unfolded = icalendar::parser::unfold(text);
    let calendars = calendars(&unfolded);
    if calendars.is_empty() {
        // A download cut short would otherwise look like a calendar whose later events were all
        // deleted.
        return Err(invalid(
            "no END:VCALENDAR line: the calendar is cut short".into(),
        ));
    }
    let mut sink = Sink::default();
    for cal in calendars {
        read_calendar(cal, &mut sink);
    }
    Ok(sink.feed)
}

/// Each `BEGIN:VCALENDAR` … `END:VCALENDAR` block of the unfolded text (a file may concatenate
/// several); text after the last one is ignored.
fn calendars(unfolded: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in unfolded.split_inclusive('\n') {
        let t = line.trim();
        if start.is_none() && t.eq_ignore_ascii_case("BEGIN:VCALENDAR") {
            start = Some(offset);
        } else if t.eq_ignore_ascii_case("END:VCALENDAR") {
            if let Some(s) = start.take() {
                if let Some(cal) = unfolded.get(s..offset + line.len()) {
                    out.push(cal);
                }
            }
        }
        offset += line.len();
    }
    out
}

/// What the VEVENTs of a feed became, with the ids already claimed.
#[derive(Default)]
struct Sink {
    feed: ParsedFeed,
    seen: HashMap<String, usize>,
    count: usize,
}

impl Sink {
    fn reject(&mut self, source_id: Option<String>, reason: String) {
        self.feed.rejections.push(Rejection { source_id, reason });
    }

    fn vevent(&mut self, comp: &Component, default_tz: Tz) {
        self.count += 1;
        let n = self.count;
        let uid = prop(comp, "UID")
            .map(|p| text_value(p).trim().to_string())
            .filter(|u| !u.is_empty());
        let Some(uid) = uid else {
            let title = prop(comp, "SUMMARY")
                .map(|p| format!(" ({:?})", text_value(p).trim()))
                .unwrap_or_default();
            self.reject(
                None,
                format!(
                    "VEVENT {n}{title}: no UID, so it cannot be followed from one sync to the next"
                ),
            );
            return;
        };
        // An overridden occurrence of a series is its own record.
        let source_id = match prop(comp, "RECURRENCE-ID") {
            Some(r) => format!("{uid}#{}", r.val.as_str().trim()),
            None => uid,
        };
        let label = format!("VEVENT {n} (UID {source_id:?})");
        if let Some(first) = self.seen.get(&source_id) {
            let reason = format!("{label}: duplicate UID: VEVENT {first} has the same UID");
            self.reject(Some(source_id), reason);
            return;
        }
        self.seen.insert(source_id.clone(), n);
        match event(comp, default_tz) {
            Ok(ev) => {
                // LAST-MODIFIED is bookkeeping; an unreadable one is not worth losing the event.
                let updated_at = prop(comp, "LAST-MODIFIED")
                    .and_then(|p| time(p, default_tz).ok())
                    .map(|t| t.at);
                self.feed.records.push(SourceRecord {
                    source_id,
                    url: ev.url.clone(),
                    updated_at,
                    payload: Payload::Event(ev),
                });
            }
            Err(reason) => self.reject(Some(source_id), format!("{label}: {reason}")),
        }
    }
}

/// The zone floating times and dates are read in: X-WR-TIMEZONE, else Europe/London.
fn calendar_zone(props: &[Property]) -> Tz {
    props
        .iter()
        .find(|p| p.name.as_str().eq_ignore_ascii_case("X-WR-TIMEZONE"))
        .and_then(|p| normalise::zone(p.val.as_str()))
        .unwrap_or(chrono_tz::Europe::London)
}

fn is_named(c: &Component, name: &str) -> bool {
    c.name.as_str().eq_ignore_ascii_case(name)
}

/// One calendar's VEVENTs into `sink`: with the crate's parser over the whole text, or, when it
/// refuses it, VEVENT by VEVENT so one broken event is one rejection.
fn read_calendar(cal: &str, sink: &mut Sink) {
    if let Ok(parsed) = icalendar::parser::read_calendar(cal) {
        // `read_calendar` only unwraps an upper-case root; names are case-insensitive.
        let (props, comps) = match parsed.components.as_slice() {
            [root] if parsed.properties.is_empty() && is_named(root, "VCALENDAR") => {
                (root.properties.as_slice(), root.components.as_slice())
            }
            _ => (parsed.properties.as_slice(), parsed.components.as_slice()),
        };
        let tz = calendar_zone(props);
        for comp in comps.iter().filter(|c| is_named(c, "VEVENT")) {
            sink.vevent(comp, tz);
        }
        return;
    }
    let split = split_components(cal);
    let header = format!("BEGIN:VCALENDAR\r\n{}END:VCALENDAR\r\n", split.header);
    let tz = icalendar::parser::read_calendar(&header)
        .map(|h| calendar_zone(&h.properties))
        .unwrap_or_else(|_| {
            // Only X-WR-TIMEZONE matters to us among the calendar's own properties.
            split
                .header
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("X-WR-TIMEZONE"))
                .and_then(|(_, v)| normalise::zone(v))
                .unwrap_or(chrono_tz::Europe::London)
        });
    for block in split.components {
        if !block.name.eq_ignore_ascii_case("VEVENT") {
            continue;
        }
        match icalendar::parser::read_components(&block.text) {
            Ok(comps) => {
                for comp in comps.iter().filter(|c| is_named(c, "VEVENT")) {
                    sink.vevent(comp, tz);
                }
            }
            Err(e) => {
                sink.count += 1;
                let n = sink.count;
                let uid = block
                    .text
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("UID"))
                    .map(|(_, v)| v.trim().to_string())
                    .filter(|v| !v.is_empty());
                let label = match &uid {
                    Some(u) => format!("VEVENT {n} (UID {u:?})"),
                    None => format!("VEVENT {n}"),
                };
                let why = block.problem.clone().unwrap_or_else(|| {
                    let detail: Vec<&str> = e.lines().take(2).map(str::trim).collect();
                    format!("unreadable ({})", detail.join(" "))
                });
                sink.reject(uid, format!("{label}: {why}"));
            }
        }
    }
}

/// A top-level component's lines, cut out of a calendar the parser refused as a whole.
struct Block {
    name: String,
    text: String,
    /// What is visibly wrong with it, when that can be said better than the parser says it.
    problem: Option<String>,
}

struct Split {
    header: String,
    components: Vec<Block>,
}

/// Cuts a calendar into its own property lines and its top-level components by their BEGIN/END
/// lines. Only used to isolate a broken component; each piece is parsed by the crate.
fn split_components(cal: &str) -> Split {
    let mut split = Split {
        header: String::new(),
        components: Vec::new(),
    };
    let mut stack: Vec<String> = Vec::new();
    let mut current: Option<Block> = None;
    for line in cal.lines() {
        let t = line.trim();
        let upper = t.to_ascii_uppercase();
        if upper == "BEGIN:VCALENDAR" || upper == "END:VCALENDAR" {
            continue;
        }
        if t.is_empty() {
            continue;
        }
        if let Some(name) = upper.strip_prefix("BEGIN:") {
            if stack.is_empty() {
                current = Some(Block {
                    name: name.to_string(),
                    text: String::new(),
                    problem: None,
                });
            }
            stack.push(name.to_string());
        }
        let Some(block) = current.as_mut() else {
            split.header.push_str(line);
            split.header.push_str("\r\n");
            continue;
        };
        block.text.push_str(line);
        block.text.push_str("\r\n");
        if !upper.starts_with("BEGIN:") && !upper.starts_with("END:") && !t.contains(':') {
            block.problem.get_or_insert_with(|| {
                format!(
                    "the line {t:?} is not NAME:value (a folded line that lost its leading space?)"
                )
            });
        }
        if let Some(name) = upper.strip_prefix("END:") {
            if let Some(at) = stack.iter().rposition(|s| s == name) {
                stack.truncate(at);
            }
            if stack.is_empty() {
                split.components.extend(current.take());
            }
        }
    }
    if let Some(mut block) = current {
        block.problem = Some(format!("not closed by END:{}", block.name));
        split.components.push(block);
    }
    split
}

fn prop<'a>(comp: &'a Component<'a>, name: &str) -> Option<&'a Property<'a>> {
    comp.properties
        .iter()
        .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
}

fn param<'a>(p: &'a Property<'a>, key: &str) -> Option<&'a str> {
    p.params
        .iter()
        .find(|x| x.key.as_str().eq_ignore_ascii_case(key))
        .and_then(|x| x.val.as_ref())
        .map(|v| v.as_str().trim().trim_matches('"'))
}

/// A TEXT value unescaped. The crate unescapes the TEXT properties it knows by their upper-case
/// names; others (`X-ALT-DESC`, a lower-case `summary`) arrive still escaped.
fn text_value(p: &Property) -> String {
    let name = p.name.as_str();
    let known_upper = !name.chars().any(|c| c.is_ascii_lowercase()) && !name.starts_with("X-");
    if known_upper {
        p.val.as_str().to_string()
    } else {
        p.val.clone().unescape_text().as_str().to_string()
    }
}

/// A DATE or DATE-TIME value placed in time.
struct Placed {
    at: DateTime<FixedOffset>,
    /// A DATE: an all-day event.
    date: bool,
    /// The zone its local time was given in; None for UTC times.
    tz: Option<Tz>,
}

/// A local time in `tz`. A time the autumn change repeats is the first of the two, as RFC 5545
/// 3.3.5 says; one the spring change skips is refused, since the partner cannot have meant it.
fn local(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Ambiguous(first, _) => Ok(first.fixed_offset()),
        _ => normalise::localise(naive, tz),
    }
}

/// DTSTART, DTEND, LAST-MODIFIED: a DATE, a UTC time, a TZID time or a floating time.
fn time(p: &Property, default_tz: Tz) -> Result<Placed, String> {
    let name = p.name.as_str().to_ascii_uppercase();
    let value = p.val.as_str().trim();
    let trimmed = Property {
        name: p.name.clone(),
        val: value.into(),
        params: p.params.clone(),
    };
    let parsed = DatePerhapsTime::try_from(&trimmed)
        .map_err(|_| format!("{name} {value:?} is not a date or date-time"))?;
    match parsed {
        DatePerhapsTime::Date(d) => Ok(Placed {
            at: local(d.and_time(chrono::NaiveTime::MIN), default_tz)
                .map_err(|e| format!("{name} {e}"))?,
            date: true,
            tz: Some(default_tz),
        }),
        DatePerhapsTime::DateTime(CalendarDateTime::Utc(t)) => Ok(Placed {
            at: t.fixed_offset(),
            date: false,
            tz: None,
        }),
        DatePerhapsTime::DateTime(CalendarDateTime::Floating(n)) => Ok(Placed {
            at: local(n, default_tz).map_err(|e| format!("{name} {e}"))?,
            date: false,
            tz: Some(default_tz),
        }),
        DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid }) => {
            let tz = normalise::zone(&tzid)
                .ok_or_else(|| format!("{name} has an unknown time zone TZID={tzid:?}"))?;
            Ok(Placed {
                at: local(date_time, tz).map_err(|e| format!("{name} {e}"))?,
                date: false,
                tz: Some(tz),
            })
        }
    }
}

/// DTSTART + DURATION. Whole days and weeks (`P1D`, `P2W`) are calendar days in the event's
/// zone, so an all-day event stays midnight to midnight across a clock change (RFC 5545 3.3.6).
fn plus_duration(start: &Placed, raw: &str) -> Result<DateTime<FixedOffset>, String> {
    let raw = raw.trim();
    let bad = || format!("DURATION {raw:?} is not a duration such as PT1H30M or P1D");
    // The crate reads DURATION values for alarm triggers; that is the parser we reuse here.
    let d = match icalendar::Trigger::try_from(&icalendar::Property::new("TRIGGER", raw)) {
        Ok(icalendar::Trigger::Duration(d, _)) if d >= Duration::zero() => d,
        _ => return Err(bad()),
    };
    match start.tz {
        Some(tz) if !raw.contains(['T', 't']) => {
            let wall = start.at.with_timezone(&tz).naive_local();
            let later = wall
                .checked_add_signed(Duration::days(d.num_days()))
                .ok_or_else(bad)?;
            local(later, tz)
        }
        _ => start.at.checked_add_signed(d).ok_or_else(bad),
    }
}

/// The first http(s) link in `text` whose host is a booking site.
fn booking_link(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '(' | ')'))
        .map(|w| w.trim_end_matches(['.', ',', ';', ':', '!', '?']))
        .filter(|w| w.starts_with("https://") || w.starts_with("http://"))
        .find(|w| is_booking(w))
        .map(str::to_string)
}

fn is_booking(link: &str) -> bool {
    url::Url::parse(link)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| BOOKING_HOSTS.iter().any(|b| h.contains(b)))
}

/// LOCATION text: a place name, an address whose UK postcode is picked out, or an online
/// meeting (a link, or words like "Online" and "Zoom").
fn location(text: &str) -> Location {
    let text = text.trim();
    let mut loc = Location::default();
    if text.is_empty() {
        return loc;
    }
    let is_link = |w: &str| w.starts_with("https://") || w.starts_with("http://");
    if is_link(text) && !text.contains(char::is_whitespace) {
        loc.online = true;
        loc.url = Some(text.to_string());
        return loc;
    }
    let lower = text.to_lowercase();
    loc.online = lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|w| ONLINE_WORDS.contains(&w));
    loc.url = text
        .split(char::is_whitespace)
        .map(|w| w.trim_end_matches(['.', ',', ';', ')']))
        .find(|w| is_link(w))
        .map(str::to_string);
    loc.postcode = normalise::find_postcode(text);
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    match (&loc.postcode, parts.split_first()) {
        // "Hull Guildhall, Alfred Gelder Street, Hull, HU1 2AA": the place, then its address.
        (Some(pc), Some((first, rest))) if !rest.is_empty() => {
            loc.name = Some(first.to_string());
            let address: Vec<&str> = rest
                .iter()
                .copied()
                .filter(|p| normalise::postcode(p).as_ref() != Some(pc))
                .collect();
            loc.address = (!address.is_empty()).then(|| address.join(", "));
        }
        _ => loc.name = Some(text.to_string()),
    }
    loc
}

fn event(comp: &Component, default_tz: Tz) -> Result<Event, String> {
    let title = prop(comp, "SUMMARY")
        .map(text_value)
        .filter(|t| !t.trim().is_empty())
        .ok_or("no SUMMARY (title)")?;
    let start = time(prop(comp, "DTSTART").ok_or("no DTSTART")?, default_tz)?;
    let end = match (prop(comp, "DTEND"), prop(comp, "DURATION")) {
        (Some(p), _) => Some(time(p, default_tz)?.at),
        (None, Some(d)) => Some(plus_duration(&start, d.val.as_str())?),
        // A DATE event without an end lasts its one day (RFC 5545 3.6.1).
        (None, None) if start.date => Some(plus_duration(&start, "P1D")?),
        (None, None) => None,
    };
    let timezone = start.tz.map(|tz| tz.name().to_string());

    let mut lines = Vec::new();
    for p in comp.properties.iter() {
        let name = p.name.as_str().to_ascii_uppercase();
        if matches!(name.as_str(), "RRULE" | "RDATE" | "EXDATE") {
            let params: Vec<(String, Option<String>)> = p
                .params
                .iter()
                .map(|x| {
                    (
                        x.key.as_str().to_ascii_uppercase(),
                        x.val.as_ref().map(|v| v.as_str().to_string()),
                    )
                })
                .collect();
            lines.push(normalise::content_line(
                &name,
                &params,
                p.val.as_str().trim(),
            ));
        }
    }
    let recurrence = normalise::recurrence(&lines, start.at, timezone.as_deref(), start.date)?;

    let status = match prop(comp, "STATUS").map(|p| p.val.as_str().trim().to_ascii_uppercase()) {
        Some(s) if s == "CANCELLED" => EventStatus::Cancelled,
        _ => EventStatus::Scheduled,
    };
    let description = prop(comp, "DESCRIPTION").map(text_value);
    let description_html = comp
        .properties
        .iter()
        .find(|p| {
            p.name.as_str().eq_ignore_ascii_case("X-ALT-DESC")
                && param(p, "FMTTYPE").is_some_and(|f| f.eq_ignore_ascii_case("text/html"))
        })
        .map(text_value);
    let url = prop(comp, "URL")
        .map(|p| p.val.as_str().trim().to_string())
        .filter(|u| !u.is_empty());
    let booking_url = url
        .clone()
        .filter(|u| is_booking(u))
        .or_else(|| description.as_deref().and_then(booking_link))
        .or_else(|| description_html.as_deref().and_then(booking_link));
    let location = prop(comp, "LOCATION")
        .map(|p| location(&text_value(p)))
        .unwrap_or_default();
    // The crate's own reading of CATEGORIES: every line, split on unescaped commas, unescaped.
    let categories = icalendar::CalendarComponent::from(comp.clone())
        .as_event()
        .and_then(|e| e.get_categories())
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let organiser = Organiser {
        name: prop(comp, "ORGANIZER")
            .and_then(|p| param(p, "CN"))
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        organisation_id: None,
    };
    Ok(Event {
        title,
        description,
        description_html,
        start: start.at,
        end,
        timezone,
        all_day: start.date,
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

    fn vevent(uid: &str, body: &str) -> String {
        format!("BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261120T090000Z\r\n{body}END:VEVENT\r\n")
    }

    fn one(body: &str) -> Event {
        let feed = parse(cal(&vevent("x@test", body)).as_bytes()).unwrap();
        assert!(feed.rejections.is_empty(), "{:?}", feed.rejections);
        match &feed.records[0].payload {
            Payload::Event(e) => e.clone(),
            Payload::Organisation(_) => panic!("not an event"),
        }
    }

    fn rfc(t: Option<DateTime<FixedOffset>>) -> String {
        t.map(|t| t.to_rfc3339()).unwrap_or_default()
    }

    #[test]
    fn tzid_times_with_windows_and_outlook_zone_names() {
        let e = one("DTSTART;TZID=Europe/London:20220125T130000\r\nDTEND;TZID=Europe/London:20220125T150000\r\nSUMMARY:Webinar\r\n");
        assert_eq!(e.start.to_rfc3339(), "2022-01-25T13:00:00+00:00");
        assert_eq!(rfc(e.end), "2022-01-25T15:00:00+00:00");
        assert_eq!(e.timezone.as_deref(), Some("Europe/London"));
        assert!(!e.all_day);
        let summer = one("DTSTART;TZID=GMT Standard Time:20270701T100000\r\nSUMMARY:Outlook\r\n");
        assert_eq!(summer.start.to_rfc3339(), "2027-07-01T10:00:00+01:00");
        assert_eq!(summer.timezone.as_deref(), Some("Europe/London"));
        let display = one("DTSTART;TZID=\"(UTC+00:00) Dublin, Edinburgh, Lisbon, London\":20270701T100000\r\nSUMMARY:Outlook display name\r\n");
        assert_eq!(display.start.to_rfc3339(), "2027-07-01T10:00:00+01:00");
        let paris = one("DTSTART;TZID=Europe/Paris:20270701T100000\r\nSUMMARY:Paris\r\n");
        assert_eq!(paris.start.to_rfc3339(), "2027-07-01T10:00:00+02:00");
    }

    #[test]
    fn utc_floating_and_duration_times() {
        let u = one("DTSTART:20270701T090000Z\r\nDURATION:PT1H30M\r\nSUMMARY:UTC\r\n");
        assert_eq!(u.start.to_rfc3339(), "2027-07-01T09:00:00+00:00");
        assert_eq!(rfc(u.end), "2027-07-01T10:30:00+00:00");
        assert_eq!(u.timezone, None);
        let f = one("DTSTART:20270701T090000\r\nSUMMARY:Floating\r\n");
        assert_eq!(f.start.to_rfc3339(), "2027-07-01T09:00:00+01:00");
        assert_eq!(f.end, None);
        let wr = parse(
            "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Europe/Paris\r\nBEGIN:VEVENT\r\nUID:p\r\nDTSTART:20270701T090000\r\nSUMMARY:Paris floating\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
                .as_bytes(),
        )
        .unwrap();
        let Payload::Event(p) = &wr.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(p.start.to_rfc3339(), "2027-07-01T09:00:00+02:00");
        assert_eq!(p.timezone.as_deref(), Some("Europe/Paris"));
        // The autumn change's repeated hour: the first (BST) of the two.
        let twice = one("DTSTART;TZID=Europe/London:20271031T013000\r\nSUMMARY:Twice\r\n");
        assert_eq!(twice.start.to_rfc3339(), "2027-10-31T01:30:00+01:00");
    }

    #[test]
    fn all_day_and_multi_day_events() {
        let week = one("DTSTART;VALUE=DATE:20270601\r\nDTEND;VALUE=DATE:20270608\r\nSUMMARY:Volunteers' Week\r\n");
        assert!(week.all_day);
        assert_eq!(week.start.to_rfc3339(), "2027-06-01T00:00:00+01:00");
        assert_eq!(rfc(week.end), "2027-06-08T00:00:00+01:00");
        assert_eq!(week.timezone.as_deref(), Some("Europe/London"));
        let single = one("DTSTART;VALUE=DATE:20271225\r\nSUMMARY:Closed\r\n");
        assert_eq!(rfc(single.end), "2027-12-26T00:00:00+00:00");
        // A day-long DURATION across the spring clock change is still midnight to midnight.
        let spring =
            one("DTSTART;VALUE=DATE:20270328\r\nDURATION:P1D\r\nSUMMARY:Clocks change\r\n");
        assert_eq!(rfc(spring.end), "2027-03-29T00:00:00+01:00");
        let conference = one("DTSTART;TZID=Europe/London:20270309T093000\r\nDTEND;TZID=Europe/London:20270310T163000\r\nSUMMARY:Two-day conference\r\n");
        assert_eq!(
            conference.end.unwrap() - conference.start,
            Duration::hours(31)
        );
        assert!(!conference.all_day);
    }

    #[test]
    fn recurrence_lines_are_kept_and_checked() {
        let r = one("DTSTART;TZID=Europe/London:20261201T100000\r\nDTEND;TZID=Europe/London:20261201T120000\r\nRRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z\r\nEXDATE;TZID=Europe/London:20261229T100000\r\nEXDATE;TZID=GMT Standard Time:20270105T100000,20270112T100000\r\nRDATE;TZID=Europe/London:20270701T100000\r\nSUMMARY:Community cafe\r\n");
        assert_eq!(
            r.recurrence.unwrap(),
            vec![
                "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z",
                "EXDATE;TZID=Europe/London:20261229T100000",
                "EXDATE;TZID=Europe/London:20270105T100000,20270112T100000",
                "RDATE;TZID=Europe/London:20270701T100000",
            ]
        );
        let all_day = one("DTSTART;VALUE=DATE:20270101\r\nRRULE:FREQ=YEARLY;UNTIL=20300101\r\nEXDATE;VALUE=DATE:20280101\r\nSUMMARY:New year closure\r\n");
        assert_eq!(
            all_day.recurrence.unwrap(),
            vec![
                "RRULE:FREQ=YEARLY;UNTIL=20300101",
                "EXDATE;VALUE=DATE:20280101"
            ]
        );
        // Outlook writes UNTIL in local time, which RFC 5545 forbids with a TZID start.
        let outlook = one("DTSTART;TZID=Europe/London:20270105T100000\r\nRRULE:FREQ=WEEKLY;UNTIL=20270629T100000\r\nSUMMARY:Outlook series\r\n");
        assert_eq!(
            outlook.recurrence.unwrap(),
            vec!["RRULE:FREQ=WEEKLY;UNTIL=20270629T090000Z"]
        );
    }

    #[test]
    fn status_location_links_categories_and_organiser() {
        let e = one(concat!(
            "DTSTART;TZID=Europe/London:20261210T100000\r\n",
            "SUMMARY:Hull VCSE Sector Strategy Launch\r\n",
            "STATUS:CANCELLED\r\n",
            "LOCATION:Hull Guildhall\\, Alfred Gelder Street\\, Hull\\, HU1 2AA\r\n",
            "URL:https://www.hullvcse.org.uk/events/launch\r\n",
            "DESCRIPTION:Free. Book at https://www.eventbrite.co.uk/e/launch-123.\\nSee you there\r\n",
            "X-ALT-DESC;FMTTYPE=text/html:<p>Free\\, <b>book</b></p>\r\n",
            "CATEGORIES:Partnership / Information,Room A\\, 2nd floor\r\n",
            "CATEGORIES:Health\r\n",
            "ORGANIZER;CN=\"Hull VCSE Sector Liaison Group\":mailto:events@example.org.uk\r\n",
            "LAST-MODIFIED:20261115T120000Z\r\n",
        ));
        assert_eq!(e.status, EventStatus::Cancelled);
        assert_eq!(e.location.name.as_deref(), Some("Hull Guildhall"));
        assert_eq!(
            e.location.address.as_deref(),
            Some("Alfred Gelder Street, Hull")
        );
        assert_eq!(e.location.postcode.as_deref(), Some("HU1 2AA"));
        assert!(!e.location.online);
        assert_eq!(
            e.url.as_deref(),
            Some("https://www.hullvcse.org.uk/events/launch")
        );
        assert_eq!(
            e.booking_url.as_deref(),
            Some("https://www.eventbrite.co.uk/e/launch-123")
        );
        assert_eq!(
            e.description.as_deref(),
            Some("Free. Book at https://www.eventbrite.co.uk/e/launch-123.\nSee you there")
        );
        assert_eq!(
            e.description_html.as_deref(),
            Some("<p>Free, <b>book</b></p>")
        );
        assert_eq!(
            e.categories,
            vec!["Partnership / Information", "Room A, 2nd floor", "Health"]
        );
        assert_eq!(
            e.organiser.name.as_deref(),
            Some("Hull VCSE Sector Liaison Group")
        );

        let online = one("DTSTART:20270101T100000Z\r\nSUMMARY:Zoom\r\nLOCATION:Online (Zoom)\r\nURL:https://www.ticketsource.co.uk/cvs/e-1\r\n");
        assert!(online.location.online);
        assert_eq!(online.location.name.as_deref(), Some("Online (Zoom)"));
        assert_eq!(online.booking_url, online.url);
        let link = one("DTSTART:20270101T100000Z\r\nSUMMARY:Teams\r\nLOCATION:https://teams.microsoft.com/l/meetup-join/1\r\n");
        assert!(link.location.online);
        assert_eq!(link.location.name, None);
        assert_eq!(
            link.location.url.as_deref(),
            Some("https://teams.microsoft.com/l/meetup-join/1")
        );
        let teams = one("DTSTART:20270101T100000Z\r\nSUMMARY:Teams\r\nLOCATION:MS Teams\r\n");
        assert!(teams.location.online);
        let hall = one("DTSTART:20270101T100000Z\r\nSUMMARY:Hall\r\nLOCATION:Steamship Hall\r\n");
        assert!(!hall.location.online, "words, not substrings");
    }

    #[test]
    fn folded_lines_and_escaped_text() {
        let e = one(concat!(
            "DTSTART;TZID=Europe/London:20220125T130000\r\n",
            "SUMMARY:***SAVE THE DATE*** Webinar:  Next Steps in Developing Anchor Insti\r\n",
            " tutions in our Region\\, with partners\\; all welcome\r\n",
            "DESCRIPTION:Register now: Eventbrite https://www.eventbrite.co.uk/e/next-st\r\n",
            " eps-215482093837\\n\\nSecond paragraph\r\n",
        ));
        assert_eq!(
            e.title,
            "***SAVE THE DATE*** Webinar:  Next Steps in Developing Anchor Institutions in our Region, with partners; all welcome"
        );
        assert_eq!(
            e.booking_url.as_deref(),
            Some("https://www.eventbrite.co.uk/e/next-steps-215482093837")
        );
        assert!(e.description.unwrap().ends_with("\n\nSecond paragraph"));
        // LF line endings and tab folding are read too.
        let lf = parse(b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:lf\nDTSTART:20270101T100000Z\nSUMMARY:Long\n\ttitle\nEND:VEVENT\nEND:VCALENDAR\n").unwrap();
        let Payload::Event(l) = &lf.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(l.title, "Longtitle");
    }

    #[test]
    fn ids_overrides_and_duplicates() {
        let feed = parse(
            cal(&[
                vevent("series@cvs", "DTSTART;TZID=Europe/London:20270105T100000\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:Cafe\r\nLAST-MODIFIED:20261115T120000Z\r\nURL:https://cvs.org/e/1\r\n"),
                vevent("series@cvs", "RECURRENCE-ID;TZID=Europe/London:20270112T100000\r\nDTSTART;TZID=Europe/London:20270112T110000\r\nSUMMARY:Cafe (late start)\r\n"),
                vevent("series@cvs", "DTSTART:20270105T100000Z\r\nSUMMARY:Again\r\n"),
                "BEGIN:VTODO\r\nUID:todo\r\nSUMMARY:Not an event\r\nEND:VTODO\r\n".to_string(),
            ]
            .concat())
            .as_bytes(),
        )
        .unwrap();
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(ids, vec!["series@cvs", "series@cvs#20270112T100000"]);
        assert_eq!(rfc(feed.records[0].updated_at), "2026-11-15T12:00:00+00:00");
        assert_eq!(feed.records[0].url.as_deref(), Some("https://cvs.org/e/1"));
        assert_eq!(feed.rejections.len(), 1);
        assert!(feed.rejections[0]
            .reason
            .contains("duplicate UID: VEVENT 1"));
    }

    #[test]
    fn bad_events_are_rejected_and_the_rest_land() {
        let feed = parse(
            cal(concat!(
                "BEGIN:VEVENT\r\nDTSTART:20270101T100000Z\r\nSUMMARY:No uid\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:z\r\nDTSTART;TZID=Mars/Olympus:20270101T100000\r\nSUMMARY:Bad zone\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:rr\r\nDTSTART:20270101T100000Z\r\nRRULE:FREQ=SOMETIMES\r\nSUMMARY:Bad rule\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:ex\r\nDTSTART;TZID=Europe/London:20270101T100000\r\nRRULE:FREQ=DAILY\r\nEXDATE;TZID=Nowhere/Else:20270102T100000\r\nSUMMARY:Bad exdate zone\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:d\r\nDTSTART:2027-01-01\r\nSUMMARY:Bad date\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:dur\r\nDTSTART:20270101T100000Z\r\nDURATION:an hour\r\nSUMMARY:Bad duration\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:nostart\r\nSUMMARY:No start\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:notitle\r\nDTSTART:20270101T100000Z\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:gap\r\nDTSTART;TZID=Europe/London:20270328T013000\r\nSUMMARY:In the gap\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:ok\r\nDTSTART;TZID=GMT Standard Time:20270101T100000\r\nSUMMARY:Outlook zone\r\nEND:VEVENT\r\n",
            ))
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(feed.records.len(), 1);
        assert_eq!(feed.records[0].source_id, "ok");
        let reasons: Vec<&str> = feed.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 9, "{reasons:?}");
        assert!(
            reasons[0].contains("VEVENT 1 (\"No uid\"): no UID"),
            "{reasons:?}"
        );
        assert_eq!(feed.rejections[0].source_id, None);
        assert!(
            reasons[1].contains("unknown time zone TZID=\"Mars/Olympus\""),
            "{reasons:?}"
        );
        assert_eq!(feed.rejections[1].source_id.as_deref(), Some("z"));
        assert!(
            reasons[2].contains("RRULE") && reasons[2].contains("SOMETIMES"),
            "{reasons:?}"
        );
        assert!(reasons[3].contains("Nowhere/Else"), "{reasons:?}");
        assert!(
            reasons[4].contains("DTSTART \"2027-01-01\" is not a date"),
            "{reasons:?}"
        );
        assert!(reasons[5].contains("DURATION \"an hour\""), "{reasons:?}");
        assert!(reasons[6].contains("no DTSTART"), "{reasons:?}");
        assert!(reasons[7].contains("no SUMMARY"), "{reasons:?}");
        assert!(
            reasons[8].contains("DTSTART 2027-03-28 01:30 does not exist in Europe/London"),
            "{reasons:?}"
        );
    }

    #[test]
    fn one_unreadable_vevent_does_not_sink_the_calendar() {
        let feed = parse(
            cal(concat!(
                "X-WR-TIMEZONE:Europe/London\r\n",
                "BEGIN:VEVENT\r\nUID:good-1\r\nDTSTART:20270101T100000\r\nSUMMARY:First\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:broken\r\nDTSTART:20270102T100000Z\r\nSUMMARY:Broken\r\nDESCRIPTION:line one\r\nline two lost its fold\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:good-2\r\nDTSTART:20270103T100000Z\r\nSUMMARY:Third\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\n",
            ))
            .as_bytes(),
        )
        .unwrap();
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(ids, vec!["good-1", "good-2"]);
        assert_eq!(feed.rejections.len(), 1);
        assert_eq!(feed.rejections[0].source_id.as_deref(), Some("broken"));
        assert!(
            feed.rejections[0]
                .reason
                .contains("\"line two lost its fold\" is not NAME:value"),
            "{:?}",
            feed.rejections
        );
    }

    #[test]
    fn lower_case_names_and_several_calendars() {
        let feed = parse(b"begin:vcalendar\r\nbegin:vevent\r\nuid:a\r\ndtstart:20270101T100000Z\r\nsummary:Lower\\, case\r\nend:vevent\r\nend:vcalendar\r\nBEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:b\r\nDTSTART:20270101T100000Z\r\nSUMMARY:Second calendar\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").unwrap();
        assert_eq!(feed.rejections, vec![]);
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
        let Payload::Event(a) = &feed.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(a.title, "Lower, case");
    }

    #[test]
    fn html_binary_and_truncated_feeds_fail() {
        let err = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert!(
            err(b"<!DOCTYPE html><html><body>Service Unavailable</body></html>")
                .contains("BEGIN:VCALENDAR")
        );
        assert!(err(&[0xff, 0xfe, 0x00, 0x42]).contains("UTF-8"));
        assert!(err(b"").contains("BEGIN:VCALENDAR"));
        assert!(err(
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:1\r\nDTSTART:20270101T100000Z\r\nSUMMARY:Cut"
        )
        .contains("cut short"));
        let empty =
            parse(b"\xef\xbb\xbf\r\nBEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n").unwrap();
        assert_eq!(empty, ParsedFeed::default());
    }
}
