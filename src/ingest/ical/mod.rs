//! The `ical` format: RFC 5545 calendars. A line-level pre-pass ([`lines`]) makes the file
//! readable (charset, folding, junk lines, case, several VCALENDARs, bounded nesting); each
//! VEVENT is then read on its own with the `icalendar` crate's parser, so one broken component is
//! a rejection with its reason and the rest land. Overrides (RECURRENCE-ID) join their series.

mod lines;
mod vtimezone;

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use icalendar::parser::{Component, Property};

use super::ParseError;
use crate::model::{
    Event, EventStatus, Location, Organiser, Override, ParsedFeed, Payload, Rejection, SourceRecord,
};
use crate::recurrence;

const FORMAT: &str = "ical";

/// How TZID names resolve in one calendar: the tables first, then the calendar's own VTIMEZONEs.
struct Zones {
    default: Tz,
    own: HashMap<String, Option<Tz>>,
    /// The calendar's own definitions of TZIDs no IANA zone matches: their onsets and offsets.
    defined: HashMap<String, Vec<(DateTime<chrono::Utc>, i32)>>,
    /// TZIDs of the VEVENT being read that neither names nor a VTIMEZONE resolve.
    unknown: std::cell::RefCell<Vec<String>>,
}

impl Zones {
    fn known(&self, name: &str) -> Option<Tz> {
        let name = name.trim().trim_matches('"');
        recurrence::zone(name).or_else(|| self.own.get(name).copied().flatten())
    }

    /// A wall-clock time in a TZID that only the calendar's own VTIMEZONE defines (no IANA zone
    /// has its offsets): the instant by the definition. `None` when the TZID is not such a one.
    fn by_definition(&self, tzid: &str, local: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        let name = tzid.trim().trim_matches('"');
        if self.known(name).is_some() {
            return None;
        }
        let onsets = self.defined.get(name)?;
        let t = vtimezone::local_time(onsets, local)?;
        let note = format!("time zone TZID={name:?} matches no known zone; its times are read with the offsets of the calendar's VTIMEZONE, and the event is kept in UTC");
        let mut unknown = self.unknown.borrow_mut();
        if !unknown.contains(&note) {
            unknown.push(note);
        }
        Some(t)
    }

    /// A TZID's zone. One nothing resolves is read as local time in the calendar's default
    /// zone, as calendar clients read a TZID without definition, and the event says so.
    fn resolve(&self, name: &str) -> Option<Tz> {
        Some(self.known(name).unwrap_or_else(|| {
            let mut unknown = self.unknown.borrow_mut();
            if !unknown.iter().any(|u| u == name) {
                unknown.push(name.to_string());
            }
            self.default
        }))
    }

    /// Warnings for the unknown TZIDs met since the last call.
    fn take_warnings(&self) -> Vec<String> {
        let default = self.default.name();
        std::mem::take(&mut *self.unknown.borrow_mut())
            .into_iter()
            .map(|n| {
                if n.starts_with("time zone TZID=") {
                    return n;
                }
                format!("unknown time zone TZID={n:?} (no zone table names it, and no VTIMEZONE of the calendar matches a known zone); its times are read as local times in {default}")
            })
            .collect()
    }
}

/// One VEVENT read: its UID, RECURRENCE-ID and the event, plus what could not be applied.
struct Read {
    uid: Option<String>,
    recurrence_id: Option<DateTime<FixedOffset>>,
    updated_at: Option<DateTime<FixedOffset>>,
    /// SEQUENCE (RFC 5545 3.8.7.4; absent is 0): which revision of the UID this is.
    sequence: i64,
    /// DTSTAMP, else LAST-MODIFIED: orders copies of one revision.
    stamp: Option<DateTime<FixedOffset>>,
    event: Event,
    warnings: Vec<String>,
}

pub fn parse(bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let text = lines::decode(bytes);
    if !lines::is_calendar(&text) {
        let start: String = text.trim_start().chars().take(60).collect();
        return Err(ParseError::Invalid {
            format: FORMAT,
            reason: format!(
                "does not start with BEGIN:VCALENDAR (starts {start:?}), nor holds one or a VEVENT"
            ),
        });
    }
    let scan = lines::scan(&text);
    let default = scan
        .calendar_props
        .iter()
        .find_map(|l| l.strip_prefix("X-WR-TIMEZONE:"))
        .and_then(recurrence::zone)
        .unwrap_or(chrono_tz::Europe::London);
    let own: HashMap<String, Option<Tz>> = scan
        .zones
        .iter()
        .filter(|z| recurrence::zone(&z.tzid).is_none())
        .map(|z| (z.tzid.replace("\\,", ","), vtimezone::match_zone(z)))
        .collect();
    let defined = scan
        .zones
        .iter()
        .map(|z| (z.tzid.replace("\\,", ","), z))
        .filter(|(name, _)| own.get(name).is_some_and(|m| m.is_none()))
        .filter_map(|(name, z)| Some((name, vtimezone::onsets(z)?)))
        .collect();
    let zones = Zones {
        default,
        own,
        defined,
        unknown: Default::default(),
    };
    let mut feed = ParsedFeed::default();
    let mut reads = Vec::new();
    let mut dateless = Vec::new();
    for (i, block) in scan.events.iter().enumerate() {
        let label = |uid: Option<&str>| {
            format!(
                "VEVENT {}{}",
                i + 1,
                uid.map(|u| format!(" ({u})")).unwrap_or_default()
            )
        };
        let uid_line = block
            .lines
            .iter()
            .find_map(|l| l.strip_prefix("UID:"))
            .map(|u| u.trim().to_string());
        if let Some(problem) = &block.problem {
            feed.rejections.push(Rejection {
                source_id: uid_line.clone(),
                reason: format!("{}: {problem}", label(uid_line.as_deref())),
            });
            continue;
        }
        let dated = block.lines.iter().any(|l| l.starts_with("DTSTART"));
        match read_block(&block.lines, &zones) {
            Ok(r) => reads.push(r),
            // A dateless part of a UID may be an iTIP reply or refresh about that event; whether
            // it is is known once the dated parts are read.
            Err(_) if !dated && uid_line.is_some() => dateless.push((i, uid_line)),
            Err(reason) => feed.rejections.push(Rejection {
                source_id: uid_line.clone(),
                reason: format!("{}: {reason}", label(uid_line.as_deref())),
            }),
        }
    }
    group(reads, &mut feed);
    fold_dateless(dateless, &mut feed);
    Ok(feed)
}

/// VEVENTs without DTSTART: those sharing the UID of an event that landed are iTIP messages
/// about it (a REPLY's attendee status, a REFRESH; RFC 5546 lets them omit the start) and add
/// nothing a listing shows, so they fold into it (logged); any other has no date to list and is
/// rejected.
fn fold_dateless(dateless: Vec<(usize, Option<String>)>, feed: &mut ParsedFeed) {
    let landed: std::collections::HashSet<&str> =
        feed.records.iter().map(|r| r.source_id.as_str()).collect();
    let mut rejections = Vec::new();
    for (i, uid) in dateless {
        let uid = uid.unwrap_or_default();
        if landed.contains(uid.as_str()) {
            tracing::debug!(uid, "a VEVENT without DTSTART folded into its event");
            continue;
        }
        rejections.push(Rejection {
            source_id: Some(uid.clone()),
            reason: format!(
                "VEVENT {} ({uid}): no DTSTART, so no date to list (and no dated event with its UID)",
                i + 1
            ),
        });
    }
    feed.rejections.extend(rejections);
}

/// One VEVENT's lines as a calendar of its own, for the crate's parser.
fn as_calendar<'a>(lines: impl IntoIterator<Item = &'a String>) -> String {
    let mut text = String::from("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n");
    for l in lines {
        text.push_str(l);
        text.push_str("\r\n");
    }
    text.push_str("END:VEVENT\r\nEND:VCALENDAR\r\n");
    text
}

/// A content line's property name, for messages.
fn property_name(line: &str) -> &str {
    let end = line.find([';', ':']).unwrap_or(line.len());
    line.get(..end.min(40)).unwrap_or("")
}

/// The VEVENT's lines the crate's parser can read, and the names of those it cannot (a parameter
/// value with an unquoted `;` or `:`, …). The parser fails a whole component on one such line;
/// only when it does is each line tried on its own, so the cost stays linear in the block.
fn readable_lines(block: &[String]) -> (Vec<&String>, Vec<&str>) {
    if icalendar::parser::read_calendar(&as_calendar(block)).is_ok() {
        return (block.iter().collect(), Vec::new());
    }
    let (kept, bad): (Vec<&String>, Vec<&String>) = block
        .iter()
        .partition(|l| icalendar::parser::read_calendar(&as_calendar([*l])).is_ok());
    (kept, bad.into_iter().map(|l| property_name(l)).collect())
}

/// Parses one VEVENT's lines with the crate, as a calendar of its own. A line the parser cannot
/// read is left out with a warning naming its property, and the rest of the event is read.
fn read_block(block: &[String], zones: &Zones) -> Result<Read, String> {
    let (lines, unreadable) = readable_lines(block);
    let text = as_calendar(lines);
    let cal = icalendar::parser::read_calendar(&text)
        .map_err(|_| "the VEVENT could not be read as iCalendar".to_string())?;
    let comp = cal
        .components
        .iter()
        .find(|c| c.name == "VEVENT")
        .ok_or("the VEVENT could not be read")?;
    if let Some(name) = unreadable.iter().find(|n| **n == "DTSTART") {
        return Err(format!(
            "{name} could not be read (a malformed parameter or value), so no date to list"
        ));
    }
    let mut warnings: Vec<String> = unreadable
        .iter()
        .map(|n| format!("{n} could not be read (a malformed parameter or value) and is left out"))
        .collect();
    zones.take_warnings();
    let event = event(comp, zones, &mut warnings);
    warnings.extend(zones.take_warnings());
    let event = event?;
    let recurrence_id = match prop(comp, "RECURRENCE-ID") {
        Some(p) => Some(time(p, zones)?.0),
        None => None,
    };
    let updated_at = prop(comp, "LAST-MODIFIED")
        .and_then(|p| time(p, zones).ok())
        .map(|(t, _)| t);
    let uid = prop(comp, "UID")
        .map(|p| p.val.as_str().trim().to_string())
        .filter(|u| !u.is_empty());
    let sequence = prop(comp, "SEQUENCE")
        .and_then(|p| p.val.as_str().trim().parse::<i64>().ok())
        .unwrap_or(0);
    let stamp = prop(comp, "DTSTAMP")
        .and_then(|p| time(p, zones).ok())
        .map(|(t, _)| t)
        .or(updated_at);
    Ok(Read {
        uid,
        recurrence_id,
        updated_at,
        sequence,
        stamp,
        event,
        warnings,
    })
}

/// A stable id for a VEVENT without UID: its start and title, which is what identifies it to a
/// reader, so the same event keeps its id across syncs.
fn derived_uid(e: &Event) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}|{}", e.start.to_rfc3339(), e.title));
    let hex: String = hex::encode(&digest[..8]);
    format!("no-uid-{hex}")
}

/// A record's LAST-MODIFIED, if it has one.
type Stamp = Option<DateTime<FixedOffset>>;

/// Masters become records; each override joins its master's series, or (master absent) lands as
/// an event of its own. A UID given several masters is read as RFC 5546 does: the highest
/// SEQUENCE is the current revision and older ones are superseded; copies of one revision (the
/// same start and title) are one event, the latest DTSTAMP winning; masters of the current
/// revision with different starts or titles are different events a publisher gave one UID, each
/// kept under a derived id (`UID#start`).
fn group(reads: Vec<Read>, feed: &mut ParsedFeed) {
    let sorted = by_uid(reads, feed);
    let mut masters = masters(&sorted.order, sorted.masters);
    let singles = apply_overrides(&mut masters.events, sorted.overrides);
    for uid in sorted.order {
        let ids = masters.extra_ids.remove(&uid).unwrap_or_default();
        for id in std::iter::once(uid).chain(ids) {
            if let Some((mut ev, updated_at)) = masters.events.remove(&id) {
                // One override per occurrence, the last applied (highest SEQUENCE) winning:
                // newest first, a stable sort, then the first of each kept.
                ev.overrides.reverse();
                ev.overrides.sort_by_key(|o| o.recurrence_id);
                ev.overrides.dedup_by_key(|o| o.recurrence_id);
                feed.records.push(record(id, ev, updated_at));
            }
        }
    }
    for (id, ev, updated_at) in singles {
        feed.records.push(record(id, ev, updated_at));
    }
}

/// A calendar's VEVENTs by UID (derived where absent): masters, and the UIDs in file order, apart
/// from overrides.
struct ByUid {
    order: Vec<String>,
    masters: HashMap<String, Vec<Read>>,
    overrides: Vec<(String, Read)>,
}

/// Sorts the reads by UID; what could not be applied to each becomes its warning in `feed`.
fn by_uid(reads: Vec<Read>, feed: &mut ParsedFeed) -> ByUid {
    let mut sorted = ByUid {
        order: Vec::new(),
        masters: HashMap::new(),
        overrides: Vec::new(),
    };
    for r in reads {
        let uid = r.uid.clone().unwrap_or_else(|| derived_uid(&r.event));
        for w in &r.warnings {
            feed.warnings.push(Rejection {
                source_id: Some(uid.clone()),
                reason: format!("{w}; the rest of the event is kept"),
            });
        }
        match r.recurrence_id {
            Some(_) => sorted.overrides.push((uid, r)),
            None => {
                let list = sorted.masters.entry(uid.clone()).or_default();
                if list.is_empty() {
                    sorted.order.push(uid);
                }
                list.push(r);
            }
        }
    }
    sorted
}

/// The events the masters stand for, by record id, and per UID the ids past its first.
struct Masters {
    events: HashMap<String, (Event, Stamp)>,
    extra_ids: HashMap<String, Vec<String>>,
}

/// Each UID's masters resolved to the records kept, the first under the UID itself.
fn masters(order: &[String], mut by_uid: HashMap<String, Vec<Read>>) -> Masters {
    let mut events: HashMap<String, (Event, Stamp)> = HashMap::new();
    let mut extra_ids: HashMap<String, Vec<String>> = HashMap::new();
    for uid in order {
        let Some(list) = by_uid.remove(uid) else {
            continue;
        };
        let kept = current_revision(uid, list);
        let mut ids = Vec::new();
        for (i, r) in kept.into_iter().enumerate() {
            let id = if i == 0 {
                uid.clone()
            } else {
                let mut id = format!("{uid}#{}", r.event.start.to_rfc3339());
                if events.contains_key(&id) {
                    id = format!("{id}#{}", derived_uid(&r.event));
                }
                id
            };
            if i > 0 {
                ids.push(id.clone());
            }
            events.insert(id, (r.event, r.updated_at));
        }
        extra_ids.insert(uid.clone(), ids);
    }
    Masters { events, extra_ids }
}

/// Joins each override to its master's series (or replaces a single master's own start); an
/// override without a master to join is returned as an event of its own, one per occurrence.
fn apply_overrides(
    masters: &mut HashMap<String, (Event, Stamp)>,
    mut overrides: Vec<(String, Read)>,
) -> Vec<(String, Event, Stamp)> {
    // A later SEQUENCE of the same occurrence is applied last, so it wins.
    overrides.sort_by_key(|(_, r)| r.sequence);
    let mut singles: Vec<(String, Event, Stamp)> = Vec::new();
    let mut single_at: HashMap<String, usize> = HashMap::new();
    for (uid, r) in overrides {
        let Some(rid) = r.recurrence_id else { continue };
        let ev = r.event;
        match masters.get_mut(&uid) {
            Some((master, _)) if master.recurrence.is_some() => {
                master.overrides.push(override_of(master, rid, ev));
            }
            // A single event's override of its own start replaces it.
            Some((master, _)) if master.start == rid => *master = ev,
            _ => {
                // The same occurrence again: the later (higher SEQUENCE) one replaces it.
                let id = format!("{uid}#{}", rid.to_rfc3339());
                match single_at.get(&id).and_then(|&i| singles.get_mut(i)) {
                    Some(slot) => *slot = (id, ev, r.updated_at),
                    None => {
                        single_at.insert(id.clone(), singles.len());
                        singles.push((id, ev, r.updated_at));
                    }
                }
            }
        }
    }
    singles
}

/// An occurrence of `master` as `ev` overrides it: what differs from the series.
fn override_of(master: &Event, recurrence_id: DateTime<FixedOffset>, ev: Event) -> Override {
    Override {
        recurrence_id,
        cancelled: ev.status == EventStatus::Cancelled,
        start: ev.start,
        end: ev.end,
        title: (ev.title != master.title).then(|| ev.title.clone()),
        description: (ev.description != master.description)
            .then(|| ev.description.clone())
            .flatten(),
        location: (ev.location != master.location).then(|| ev.location.clone()),
    }
}

/// The masters of one UID that stand: the highest SEQUENCE only, one per start and title (the
/// latest DTSTAMP of identical copies, else the first), in file order.
fn current_revision(uid: &str, list: Vec<Read>) -> Vec<Read> {
    let newest = list.iter().map(|r| r.sequence).max().unwrap_or(0);
    let superseded = list.iter().filter(|r| r.sequence < newest).count();
    if superseded > 0 {
        tracing::debug!(
            uid,
            superseded,
            sequence = newest,
            "older revisions superseded"
        );
    }
    // Indexed by start and title, so a feed of one UID many times stays linear.
    let mut kept: Vec<Read> = Vec::new();
    let mut seen: HashMap<(DateTime<FixedOffset>, String), usize> = HashMap::new();
    for r in list.into_iter().filter(|r| r.sequence == newest) {
        let key = (r.event.start, r.event.title.clone());
        match seen.get(&key).and_then(|&i| kept.get_mut(i)) {
            Some(k) if r.stamp > k.stamp => *k = r,
            Some(_) => {}
            None => {
                seen.insert(key, kept.len());
                kept.push(r);
            }
        }
    }
    kept
}

fn record(source_id: String, ev: Event, updated_at: Option<DateTime<FixedOffset>>) -> SourceRecord {
    SourceRecord {
        source_id,
        url: ev.url.clone(),
        updated_at,
        payload: Payload::Event(ev),
    }
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

/// A DATE-TIME or DATE property: the instant and whether it was a date (all-day). Floating
/// times are read in the calendar's default zone; years past 9999 are refused (no RFC 3339
/// reader takes them back).
fn time(p: &Property, zones: &Zones) -> Result<(DateTime<FixedOffset>, bool), String> {
    let v = p.val.as_str().trim();
    let name = p.name.as_str();
    let is_date = param(p, "VALUE").is_some_and(|x| x.eq_ignore_ascii_case("DATE"))
        || (v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()));
    if let (Some(tzid), false) = (param(p, "TZID"), v.ends_with(['Z', 'z'])) {
        let naive = if is_date {
            NaiveDate::parse_from_str(v.get(..8).unwrap_or(v), "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        } else {
            NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()
        };
        if let Some(t) = naive
            .filter(|n| n.year() <= 9999)
            .and_then(|n| zones.by_definition(tzid, n))
        {
            return Ok((t, is_date));
        }
    }
    let tz = match param(p, "TZID") {
        Some(tzid) => zones
            .resolve(tzid)
            .ok_or_else(|| format!("{name} has an unknown time zone TZID={tzid:?}"))?,
        None => zones.default,
    };
    let localise = |naive: NaiveDateTime| {
        if naive.year() > 9999 {
            return Err(format!("{name} {v} is after the year 9999"));
        }
        super::times::local_time(tz, naive).ok_or_else(|| {
            format!(
                "{name} {v} does not exist in {} (the clocks skip it)",
                tz.name()
            )
        })
    };
    if is_date {
        let d = NaiveDate::parse_from_str(v.get(..8).unwrap_or(v), "%Y%m%d")
            .map_err(|_| format!("{name} {v:?} is not a date"))?;
        let midnight = d.and_hms_opt(0, 0, 0).ok_or("bad date")?;
        return localise(midnight).map(|t| (t, true));
    }
    if let Some(utc) = v.strip_suffix(['Z', 'z']) {
        let n = recurrence::naive_date_time(utc)
            .ok_or_else(|| format!("{name} {v:?} is not a date-time"))?;
        if n.year() > 9999 {
            return Err(format!("{name} {v} is after the year 9999"));
        }
        return Ok((n.and_utc().fixed_offset(), false));
    }
    let n =
        recurrence::naive_date_time(v).ok_or_else(|| format!("{name} {v:?} is not a date-time"))?;
    localise(n).map(|t| (t, false))
}

pub use crate::recurrence::duration;

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

/// The title of a VEVENT without SUMMARY.
fn event(comp: &Component, zones: &Zones, warnings: &mut Vec<String>) -> Result<Event, String> {
    let when = when(comp, zones, warnings)?;
    let recurrence = recurrence_lines(comp, &when, zones, warnings);
    let text = texts(comp);
    Ok(Event {
        title: title(comp),
        description: text.description,
        description_html: text.description_html,
        start: when.start,
        end: when.end,
        timezone: when.tz.map(|z| z.name().to_string()),
        all_day: when.all_day,
        recurrence: (!recurrence.is_empty()).then_some(recurrence),
        status: status(comp),
        location: location(comp, warnings),
        url: text.url,
        booking_url: text.booking_url,
        organiser: organiser(comp),
        categories: categories(comp),
        overrides: Vec::new(),
    })
}

/// SUMMARY is optional (RFC 5545 3.6.1): an event without one is kept with an empty title, as
/// the calendar has it, rather than given a made-up one; each client labels it as it does its own.
fn title(comp: &Component) -> String {
    prop(comp, "SUMMARY")
        .map(|p| p.val.as_str().to_string())
        .unwrap_or_default()
}

/// When a VEVENT happens, as read from DTSTART, DTEND or DURATION.
struct When {
    start: DateTime<FixedOffset>,
    end: Option<DateTime<FixedOffset>>,
    all_day: bool,
    /// The zone its times are in; `None` keeps them in UTC.
    tz: Option<Tz>,
}

/// The event's start, end and zone. No readable DTSTART, or a DURATION that cannot be applied,
/// rejects the event; an end that cannot be read or lies before the start is a warning.
fn when(comp: &Component, zones: &Zones, warnings: &mut Vec<String>) -> Result<When, String> {
    let dtstart = prop(comp, "DTSTART").ok_or("no DTSTART")?;
    let (start, all_day) = time(dtstart, zones)?;
    let tz = start_zone(dtstart, zones);
    // An end that cannot be read loses the end, not the event: the start is what a listing needs.
    let dtend = prop(comp, "DTEND").and_then(|p| match time(p, zones) {
        Ok((t, _)) => Some(t),
        Err(e) => {
            warnings.push(format!("{e}; the end is dropped"));
            None
        }
    });
    let end = match (dtend, prop(comp, "DURATION")) {
        (Some(t), _) => Some(t),
        // A DURATION that is not one at all ("1H") is read like an unreadable DTEND: the end is
        // lost, not the event. A well-formed one no date can hold stays a rejection.
        (None, Some(d)) if !duration_form(d.val.as_str()) => {
            warnings.push(format!(
                "DURATION {:?} is not a duration; the end is dropped",
                d.val.as_str()
            ));
            all_day.then(|| start + Duration::days(1))
        }
        (None, Some(d)) => Some(end_after(start, tz, d.val.as_str())?),
        // An all-day event without an end lasts its one day (RFC 5545 3.6.1).
        (None, None) if all_day => Some(start + Duration::days(1)),
        (None, None) => None,
    };
    let repeats = comp
        .properties
        .iter()
        .any(|p| p.name == "RRULE" || p.name == "RDATE");
    let (start, end) = end_in_order(start, end, dtend.is_some() && !repeats, warnings);
    Ok(When {
        start,
        end,
        all_day,
        tz,
    })
}

/// The zone DTSTART is given in: its TZID's IANA zone, none for UTC times, the calendar's
/// default for floating ones.
fn start_zone(dtstart: &Property, zones: &Zones) -> Option<Tz> {
    match param(dtstart, "TZID") {
        // Kept in UTC: no IANA zone has the definition's offsets.
        Some(tzid)
            if zones.defined.contains_key(tzid.trim().trim_matches('"'))
                && zones.known(tzid).is_none() =>
        {
            None
        }
        Some(tzid) => zones.resolve(tzid),
        None if dtstart.val.as_str().trim().ends_with(['Z', 'z']) => None,
        None => Some(zones.default),
    }
}

/// The end a DURATION gives: in the start's zone, so a day is a calendar day across a change
/// of the clocks.
/// Whether a value is written as an RFC 5545 duration (`[+-]P` then digits and unit letters),
/// whatever its length.
fn duration_form(s: &str) -> bool {
    let s = s.trim();
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    s.strip_prefix(['P', 'p']).is_some_and(|body| {
        body.bytes().any(|b| b.is_ascii_digit())
            && body
                .bytes()
                .all(|b| b.is_ascii_digit() || b"WDTHMSwdthms".contains(&b))
    })
}

fn end_after(
    start: DateTime<FixedOffset>,
    tz: Option<Tz>,
    text: &str,
) -> Result<DateTime<FixedOffset>, String> {
    duration(text).ok_or_else(|| format!("DURATION {text:?} is not a duration a date can hold"))?;
    recurrence::add_duration(start, tz.unwrap_or(chrono_tz::UTC), text)
        .filter(|e| e.year() <= 9999)
        .ok_or_else(|| format!("DURATION {text:?} ends after the year 9999"))
}

/// An end before the start: a single event's DTEND and DTSTART swapped by the exporter are
/// read the other way round (as recurring-ical-events does; `swappable`); a series keeps the
/// start its rule is anchored on and loses the end. Either way, said so.
fn end_in_order(
    start: DateTime<FixedOffset>,
    end: Option<DateTime<FixedOffset>>,
    swappable: bool,
    warnings: &mut Vec<String>,
) -> (DateTime<FixedOffset>, Option<DateTime<FixedOffset>>) {
    match end {
        Some(e) if e < start && swappable => {
            warnings.push(format!(
                "DTEND {} is before DTSTART {}; read as swapped (the earlier is the start)",
                e.to_rfc3339(),
                start.to_rfc3339()
            ));
            (e, Some(start))
        }
        Some(e) if e < start => {
            warnings.push(format!(
                "DTEND {} is before DTSTART {}; the end is dropped",
                e.to_rfc3339(),
                start.to_rfc3339()
            ));
            (start, None)
        }
        e => (start, e),
    }
}

/// The event's RRULE, RDATE and EXDATE lines as applied to its start; none when no rule or date
/// is left to repeat it. A rule that cannot be applied leaves the first occurrence, and says so.
fn recurrence_lines(
    comp: &Component,
    when: &When,
    zones: &Zones,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let anchor = recurrence::Anchor {
        start: when.start,
        tz: when.tz.unwrap_or(chrono_tz::UTC),
        all_day: when.all_day,
    };
    let mut recurrence = Vec::new();
    for p in comp
        .properties
        .iter()
        .filter(|p| p.name == "RRULE" || p.name == "RDATE" || p.name == "EXDATE")
    {
        match recurrence::parse_line(&content_line(p), &anchor, &|n| zones.resolve(n)) {
            Ok(Some(l)) => recurrence.extend(l.to_line().split('\n').map(str::to_string)),
            Ok(None) => {}
            Err(e) => warnings.push(format!("{} not applied: {e}", p.name.as_str())),
        }
    }
    if !recurrence
        .iter()
        .any(|l| l.starts_with("RRULE:") || l.starts_with("RDATE"))
    {
        // Exceptions with nothing to except from: the event is single.
        recurrence.clear();
    }
    recurrence
}

/// A property written back as its content line (`NAME;PARAM=value:value`).
fn content_line(p: &Property) -> String {
    let params: String = p
        .params
        .iter()
        .map(|x| match &x.val {
            // A value holding ':' (Outlook's "(UTC-05:00) Eastern Time") stays quoted.
            Some(v) => {
                let v = v.as_str().trim_matches('"');
                if v.contains([':', ';', ',']) {
                    format!(";{}=\"{v}\"", x.key.as_str())
                } else {
                    format!(";{}={v}", x.key.as_str())
                }
            }
            None => format!(";{}", x.key.as_str()),
        })
        .collect();
    format!("{}{params}:{}", p.name.as_str(), p.val.as_str())
}

fn status(comp: &Component) -> EventStatus {
    match prop(comp, "STATUS").map(|p| p.val.as_str().trim().to_ascii_uppercase()) {
        Some(s) if s == "CANCELLED" => EventStatus::Cancelled,
        _ => EventStatus::Scheduled,
    }
}

/// The event's description (plain, and HTML where the exporter gave one) and its links.
struct Texts {
    description: Option<String>,
    description_html: Option<String>,
    url: Option<String>,
    booking_url: Option<String>,
}

fn texts(comp: &Component) -> Texts {
    let description = prop(comp, "DESCRIPTION").map(|p| p.val.as_str().to_string());
    let description_html = comp
        .properties
        .iter()
        .find(|p| {
            p.name == "X-ALT-DESC"
                && param(p, "FMTTYPE").is_some_and(|f| f.eq_ignore_ascii_case("text/html"))
        })
        .map(|p| p.val.as_str().to_string());
    let url = prop(comp, "URL").map(|p| p.val.as_str().trim().to_string());
    // The URL if it is a ticketing site's, else the first such link in the description.
    let booking_url = url
        .clone()
        .filter(|u| BOOKING_HOSTS.iter().any(|h| u.contains(h)))
        .or_else(|| {
            description
                .as_deref()
                .and_then(|d| first_url(d, BOOKING_HOSTS))
        });
    Texts {
        description,
        description_html,
        url,
        booking_url,
    }
}

/// Where the event is, from its LOCATION, placed by its GEO (a GEO that cannot be a point is
/// dropped with a warning, the event kept).
fn location(comp: &Component, warnings: &mut Vec<String>) -> Location {
    let mut location = prop(comp, "LOCATION")
        .map(|p| p.val.as_str().trim())
        .filter(|l| !l.is_empty())
        .map(place)
        .unwrap_or_default();
    if let Some(g) = prop(comp, "GEO") {
        match crate::ingest::geo::from_ical(g.val.as_str()) {
            Ok(point) => (location.latitude, location.longitude) = point.unzip(),
            Err(e) => warnings.push(format!("{e}; the point is dropped")),
        }
    }
    location
}

/// A LOCATION text read as a link (online), or a place: its name, address and a UK postcode at
/// the end ("…, Macclesfield, SK10 1EE"); words like "online" or "zoom" mark it online too.
fn place(loc: &str) -> Location {
    let mut location = Location::default();
    if loc.starts_with("http://") || loc.starts_with("https://") {
        location.online = true;
        location.url = Some(loc.to_string());
        return location;
    }
    let lower = loc.to_lowercase();
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
    let parts: Vec<&str> = loc.split(',').map(str::trim).collect();
    match (
        parts.last().and_then(|l| crate::postcode::standard(l)),
        parts.as_slice(),
    ) {
        (Some(pc), [name, address @ .., _]) => {
            location.postcode = Some(pc);
            location.name = Some(name.to_string());
            location.address = Some(address.join(", ")).filter(|a| !a.is_empty());
        }
        (Some(pc), _) => {
            location.postcode = Some(pc);
            location.name = Some(loc.to_string());
        }
        (None, _) => location.name = Some(loc.to_string()),
    }
    location
}

fn organiser(comp: &Component) -> Organiser {
    Organiser {
        name: prop(comp, "ORGANIZER").and_then(|p| param(p, "CN").map(str::to_string)),
        organisation_id: None,
    }
}

/// The event's CATEGORIES, every property of them: a TEXT list, split on unescaped commas, then
/// each item unescaped and trimmed.
fn categories(comp: &Component) -> Vec<String> {
    let mut categories = Vec::new();
    for p in comp.properties.iter().filter(|p| p.name == "CATEGORIES") {
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
    categories
        .into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
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
            vec!["RRULE:FREQ=WEEKLY;BYDAY=TU", "EXDATE:20270112T100000Z"]
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
        // No UID: a stable derived id; a bad rule: the first occurrence, with a warning.
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        // An unknown zone: local time in the calendar's default zone, with a warning.
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(ids[0].starts_with("no-uid-"));
        assert_eq!(ids[1..], ["z", "rr", "ok"]);
        // The event in the clock-change gap is lost; the other two landed with a caveat.
        let reasons: Vec<&str> = feed.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("does not exist"));
        let warned: Vec<&str> = feed.warnings.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].contains("Mars/Olympus") && warned[0].contains("Europe/London"));
        assert!(warned[1].contains("RRULE not applied") && warned[1].contains("kept"));
        let Payload::Event(z) = &feed.records[1].payload else {
            panic!("not an event")
        };
        assert_eq!(z.start.to_rfc3339(), "2027-01-01T10:00:00+00:00");
        assert_eq!(z.timezone.as_deref(), Some("Europe/London"));
        let again = parse(
            cal("BEGIN:VEVENT\r\nDTSTART:20270101T100000Z\r\nSUMMARY:No uid\r\nEND:VEVENT\r\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(again.records[0].source_id, ids[0]);
    }

    #[test]
    fn lotus_zone_untitled_and_swapped_end_still_land() {
        let feed = parse(cal(concat!(
            "BEGIN:VTIMEZONE\r\nTZID:Eastern\r\nBEGIN:STANDARD\r\nDTSTART:19501029T020000\r\n",
            "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\n",
            "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19500402T020000\r\nTZOFFSETFROM:-0500\r\n",
            "TZOFFSETTO:-0400\r\nRRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=4\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n",
            "BEGIN:VEVENT\r\nUID:l\r\nDTSTART;TZID=Eastern:20050711T100000\r\n",
            "DTEND;TZID=Eastern:20050711T090000\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        assert_eq!(feed.records.len(), 1, "{:?}", feed.rejections);
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("not an event")
        };
        // The swapped times are read the other way round.
        assert_eq!(e.start.to_rfc3339(), "2005-07-11T09:00:00-04:00");
        assert_eq!(
            e.end.map(|t| t.to_rfc3339()).as_deref(),
            Some("2005-07-11T10:00:00-04:00")
        );
        assert_eq!(e.title, "");
        assert!(feed.rejections.is_empty(), "{:?}", feed.rejections);
        assert!(feed.warnings[0].reason.contains("read as swapped"));
    }

    #[test]
    fn html_or_binary_fails_the_feed() {
        assert!(parse(b"<!DOCTYPE html><html><body>Service Unavailable</body></html>").is_err());
        assert!(parse(&[0xff, 0xfe, 0x00, 0x42]).is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn a_repeated_uid_is_a_revision_a_copy_or_another_event() {
        let feed = parse(cal(concat!(
            // Revisions: SEQUENCE 2 supersedes 1, wherever it stands in the file.
            "BEGIN:VEVENT\r\nUID:rev\r\nSEQUENCE:2\r\nDTSTART:20270102T100000Z\r\nSUMMARY:Moved\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:rev\r\nSEQUENCE:1\r\nDTSTART:20270101T100000Z\r\nSUMMARY:Original\r\nEND:VEVENT\r\n",
            // Copies of one revision: one event, the later DTSTAMP's text.
            "BEGIN:VEVENT\r\nUID:copy\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270105T100000Z\r\nSUMMARY:Copy\r\nDESCRIPTION:old\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:copy\r\nDTSTAMP:20260201T000000Z\r\nDTSTART:20270105T100000Z\r\nSUMMARY:Copy\r\nDESCRIPTION:new\r\nEND:VEVENT\r\n",
            // A publisher giving every date of a run one UID: each date is an event.
            "BEGIN:VEVENT\r\nUID:run\r\nDTSTART:20270110T100000Z\r\nSUMMARY:Run\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:run\r\nDTSTART:20270117T100000Z\r\nSUMMARY:Run\r\nEND:VEVENT\r\n",
            // Two UID-less copies are one event.
            "BEGIN:VEVENT\r\nDTSTART:20270120T100000Z\r\nSUMMARY:No uid\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nDTSTART:20270120T100000Z\r\nSUMMARY:No uid\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        assert!(feed.rejections.is_empty(), "{:?}", feed.rejections);
        let got: Vec<(&str, String, Option<String>)> = feed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => (r.source_id.as_str(), e.title.clone(), e.description.clone()),
                Payload::Organisation(_) => panic!("not an event"),
            })
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0], ("rev", "Moved".into(), None));
        assert_eq!(got[1], ("copy", "Copy".into(), Some("new".into())));
        assert_eq!(got[2].0, "run");
        assert_eq!(got[3].0, "run#2027-01-17T10:00:00+00:00");
        assert!(got[4].0.starts_with("no-uid-"));
    }

    #[test]
    fn an_unreadable_end_loses_the_end_not_the_event() {
        let feed = parse(cal(concat!(
            "BEGIN:VEVENT\r\nUID:e1\r\nDTSTART:19970701T100000Z\r\nDTEND:1997-07-01 13:00\r\nSUMMARY:Short end\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:e2\r\nDTSTART;VALUE=DATE:19970701\r\nDTEND:None\r\nSUMMARY:No end\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        assert_eq!(feed.records.len(), 2, "{:?}", feed.rejections);
        let ends: Vec<Option<DateTime<FixedOffset>>> = feed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => e.end,
                Payload::Organisation(_) => panic!("not an event"),
            })
            .collect();
        assert_eq!(ends[0], None);
        // An all-day event without a readable end lasts its day.
        assert_eq!(
            ends[1].map(|e| e.to_rfc3339()).as_deref(),
            Some("1997-07-02T00:00:00+01:00")
        );
        assert!(feed.rejections.is_empty(), "{:?}", feed.rejections);
        assert_eq!(feed.warnings.len(), 2);
        assert!(feed
            .warnings
            .iter()
            .all(|r| r.reason.contains("end is dropped")));
    }

    #[test]
    fn a_zone_only_its_vtimezone_defines_is_read_by_its_offsets() {
        let feed = parse(cal(concat!(
            "BEGIN:VTIMEZONE\r\nTZID:Nowhere/Middle\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n",
            "TZOFFSETFROM:-0741\r\nTZOFFSETTO:-0741\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n",
            "BEGIN:VEVENT\r\nUID:mid\r\nDTSTART;TZID=Nowhere/Middle:20270601T120000\r\n",
            "DTEND;TZID=Nowhere/Middle:20270601T130000\r\nSUMMARY:Middle\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(e.start.to_rfc3339(), "2027-06-01T12:00:00-07:41");
        assert_eq!(
            e.end.map(|t| t.to_rfc3339()).as_deref(),
            Some("2027-06-01T13:00:00-07:41")
        );
        assert_eq!(e.timezone, None);
        assert!(feed.rejections.is_empty(), "{:?}", feed.rejections);
        assert_eq!(feed.warnings.len(), 1, "{:?}", feed.warnings);
        assert!(feed.warnings[0]
            .reason
            .contains("offsets of the calendar's VTIMEZONE"));
    }

    #[test]
    fn an_occurrence_overridden_twice_keeps_the_higher_sequence() {
        let feed = parse(cal(concat!(
            "BEGIN:VEVENT\r\nUID:s\r\nDTSTART:20270104T100000Z\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:S\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:s\r\nSEQUENCE:2\r\nRECURRENCE-ID:20270111T100000Z\r\nDTSTART:20270112T100000Z\r\nSUMMARY:S\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:s\r\nSEQUENCE:1\r\nRECURRENCE-ID:20270111T100000Z\r\nDTSTART:20270113T100000Z\r\nSUMMARY:S\r\nEND:VEVENT\r\n",
            // Orphan overrides (no master) of one occurrence, twice: one event, the newer.
            "BEGIN:VEVENT\r\nUID:o\r\nSEQUENCE:5\r\nRECURRENCE-ID:20270111T100000Z\r\nDTSTART:20270114T100000Z\r\nSUMMARY:O\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:o\r\nSEQUENCE:4\r\nRECURRENCE-ID:20270111T100000Z\r\nDTSTART:20270115T100000Z\r\nSUMMARY:O\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        assert_eq!(feed.records.len(), 2);
        let Payload::Event(s) = &feed.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(s.overrides.len(), 1);
        assert_eq!(
            s.overrides[0].start.to_rfc3339(),
            "2027-01-12T10:00:00+00:00"
        );
        let Payload::Event(o) = &feed.records[1].payload else {
            panic!("not an event")
        };
        assert_eq!(o.start.to_rfc3339(), "2027-01-14T10:00:00+00:00");
    }

    #[test]
    fn a_dateless_part_of_a_landed_uid_folds_and_others_are_rejected() {
        let feed = parse(cal(concat!(
            "BEGIN:VEVENT\r\nUID:m\r\nDTSTART:20270104T100000Z\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:m\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:b@example.com\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:lonely\r\nSUMMARY:No date\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        assert_eq!(feed.records.len(), 1);
        assert_eq!(feed.rejections.len(), 1, "{:?}", feed.rejections);
        assert_eq!(feed.rejections[0].source_id.as_deref(), Some("lonely"));
        assert!(feed.rejections[0].reason.contains("no DTSTART"));
    }

    #[test]
    fn an_event_without_summary_stays_untitled_rather_than_given_a_made_up_title() {
        let feed = parse(
            "BEGIN:VEVENT\r\nDTSTART:20270310T090000\r\nDTEND:20270310T100000\r\nLOCATION:Hall\r\nEND:VEVENT\r\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(feed.records.len(), 1, "{:?}", feed.rejections);
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("not an event")
        };
        // What the calendar says: no title (RFC 5545 makes SUMMARY optional); the event is kept.
        assert_eq!(e.title, "");
        assert_eq!(e.start.to_rfc3339(), "2027-03-10T09:00:00+00:00");
        assert_eq!(e.location.name.as_deref(), Some("Hall"));
    }

    #[test]
    fn a_property_the_parser_cannot_read_is_left_out_with_a_warning() {
        let feed = parse(
            cal(concat!(
                "BEGIN:VEVENT\r\nUID:p1\r\nDTSTART:20270601T180000Z\r\nSUMMARY:Choir\r\n",
                // A parameter value escaped as if it were text: an unquoted ';' and ':' inside it.
                "ATTENDEE;CN=Smith\\; Jones\\: choir lead:mailto:lead@example.org\r\n",
                "LOCATION:Church hall\r\nEND:VEVENT\r\n",
                "BEGIN:VEVENT\r\nUID:p2\r\n",
                "DTSTART;TZID=Europe/London;X-NOTE=a\\;b\\:c:20270602T180000\r\n",
                "SUMMARY:Start unreadable\r\nEND:VEVENT\r\n",
            ))
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(feed.records.len(), 1, "{:?}", feed.rejections);
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("not an event")
        };
        assert_eq!(e.title, "Choir");
        assert_eq!(e.location.name.as_deref(), Some("Church hall"));
        let warned: Vec<&str> = feed.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("ATTENDEE") && warned[0].contains("left out"));
        // An unreadable DTSTART is said to be one, not leaked as a parser trace.
        assert_eq!(feed.rejections.len(), 1);
        let reason = &feed.rejections[0].reason;
        assert!(
            reason.contains("DTSTART") && reason.contains("could not be read"),
            "{reason}"
        );
        assert!(!reason.contains("Satisfy"), "{reason}");
    }

    #[test]
    fn a_malformed_duration_loses_the_end_and_a_broken_date_is_a_rejection_not_a_panic() {
        let feed = parse(cal(concat!(
            "BEGIN:VEVENT\r\nUID:typo\r\nDTSTART:20270301T100000Z\r\nDURATION:1H\r\nSUMMARY:Typo\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:day\r\nDTSTART;VALUE=DATE:20270302\r\nDURATION:one day\r\nSUMMARY:Day\r\nEND:VEVENT\r\n",
            // A multi-byte character across the eighth byte of a DATE value.
            "BEGIN:VEVENT\r\nUID:mb\r\nDTSTART;VALUE=DATE:2027030\u{e9}\r\nSUMMARY:Broken\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:mbz\r\nDTSTART;VALUE=DATE;TZID=Europe/London:2027030\u{e9}\r\nSUMMARY:Broken\r\nEND:VEVENT\r\n",
        )).as_bytes())
        .unwrap();
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(ids, ["typo", "day"], "{:?}", feed.rejections);
        let ends: Vec<Option<String>> = feed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => e.end.map(|t| t.to_rfc3339()),
                Payload::Organisation(_) => None,
            })
            .collect();
        // The timed event has no end; the all-day one lasts its day.
        assert_eq!(ends, [None, Some("2027-03-03T00:00:00+00:00".to_string())]);
        let warned: Vec<&str> = feed.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned
            .iter()
            .all(|w| w.contains("DURATION") && w.contains("end is dropped")));
        assert_eq!(feed.rejections.len(), 2, "{:?}", feed.rejections);
        assert!(feed
            .rejections
            .iter()
            .all(|r| r.reason.contains("not a date")));
    }

    #[test]
    fn an_unquoted_windows_zone_description_is_read_as_its_zone() {
        let e = one("BEGIN:VEVENT\r\nUID:win\r\nDTSTART;TZID=(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna:20270701T100000\r\nSUMMARY:Board\r\nEND:VEVENT\r\n");
        assert_eq!(e.start.to_rfc3339(), "2027-07-01T10:00:00+02:00");
        assert_eq!(e.timezone.as_deref(), Some("Europe/Berlin"));
    }
}
