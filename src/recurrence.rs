//! Recurrence as every stage reads it: zone names (IANA, path-prefixed, Windows/CLDR), the
//! RRULE/RDATE/EXDATE content lines an event keeps, checked and put in one canonical form, and
//! bounded expansion of a series into occurrence starts with the `rrule` crate.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::Event;

/// Rules finer than an hour are not community events (a "class every minute" is a data error or
/// an attack): they are refused at ingest, and a stored one expands as its first occurrence.
pub const REFUSED_FREQS: &[&str] = &["SECONDLY", "MINUTELY"];

/// A zone named by TZID or a feed's default: IANA names, exporters' path prefixes
/// (`/freeassociation.sourceforge.net/Tzfile/Europe/London`), quoted names, and Windows names
/// or their display descriptions through CLDR's table (the `windows-timezones` crate).
pub fn zone(name: &str) -> Option<Tz> {
    let name = name.trim().trim_matches('"').trim();
    if name.is_empty() {
        return None;
    }
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    // A path: try each suffix of its segments, longest first.
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    for i in 0..parts.len() {
        if let Ok(tz) = parts[i..].join("/").parse::<Tz>() {
            return Some(tz);
        }
    }
    // Old-style names with a dash for the slash ("US-Eastern", as libical's samples write).
    if !name.contains('/') {
        if let Some(tz) = name
            .split_once('-')
            .and_then(|(a, b)| format!("{a}/{b}").parse::<Tz>().ok())
        {
            return Some(tz);
        }
    }
    offset_zone(name).or_else(|| windows_zone(name))
}

/// A fixed offset named as `UTC+11`, `GMT-3`, `UTC+05:00`: the whole-hour `Etc/GMT` zone (whose
/// sign is POSIX's, the reverse). Other offsets have no IANA name.
fn offset_zone(name: &str) -> Option<Tz> {
    let upper = name.trim().to_ascii_uppercase();
    let rest = upper
        .strip_prefix("UTC")
        .or_else(|| upper.strip_prefix("GMT"))?
        .trim();
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() > 2 => digits.split_at(digits.len() - 2),
        None => (digits, "0"),
    };
    let (h, m): (i32, i32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
    if m != 0 || h > 14 {
        return None;
    }
    if h == 0 {
        return Some(chrono_tz::UTC);
    }
    format!("Etc/GMT{}{h}", if sign > 0 { '-' } else { '+' })
        .parse()
        .ok()
}

/// Text compared with CLDR's descriptions: accents folded ("Brasília"), case folded.
fn folded(s: &str) -> String {
    deunicode::deunicode(strip_utc_prefix(s)).to_lowercase()
}

fn windows_zone(name: &str) -> Option<Tz> {
    use strum::IntoEnumIterator;
    use windows_timezones::WindowsTimezone;
    if let Ok(w) = name.parse::<WindowsTimezone>() {
        return w.tzdb_id().parse().ok();
    }
    // Outlook sometimes writes the display text ("(UTC+10:00) Canberra, Melbourne, Sydney") or
    // only its place list; match it against CLDR's descriptions, case-insensitively.
    let wanted = folded(name);
    if wanted.len() < 4 {
        return None;
    }
    if let Some(w) = WindowsTimezone::iter()
        .find(|w| folded(w.description()) == wanted || w.name().eq_ignore_ascii_case(name))
    {
        return w.tzdb_id().parse().ok();
    }
    // Older Windows display names carry more places after the current description
    // ("Pacific Time (US & Canada), Tijuana"): the longest description the name begins with.
    WindowsTimezone::iter()
        .filter(|w| {
            let d = folded(w.description());
            d.len() >= 8
                && wanted
                    .strip_prefix(&d)
                    .is_some_and(|rest| rest.starts_with([',', ';']))
        })
        .max_by_key(|w| w.description().len())
        .and_then(|w| w.tzdb_id().parse().ok())
}

fn strip_utc_prefix(s: &str) -> &str {
    let s = s.trim();
    match s.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((_, rest)) => rest.trim(),
        None => s,
    }
}

/// One date of an RDATE/EXDATE list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateItem {
    /// A DATE: the whole local day.
    Date(NaiveDate),
    /// A DATE-TIME, resolved to an instant.
    At(DateTime<Utc>),
    /// An RDATE PERIOD: an occurrence with its own length (RFC 5545 3.3.9), not the series'.
    Period {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
}

impl DateItem {
    /// The instant an RDATE/EXDATE item starts at, for a DATE-TIME or PERIOD.
    pub fn instant(&self) -> Option<DateTime<Utc>> {
        match self {
            DateItem::At(t) | DateItem::Period { start: t, .. } => Some(*t),
            DateItem::Date(_) => None,
        }
    }
}

/// A checked recurrence line.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// An RRULE value with UNTIL in UTC.
    Rule(String),
    Dates {
        exclude: bool,
        items: Vec<DateItem>,
    },
}

impl Line {
    /// The canonical content line: UNTIL in UTC, DATE-TIMEs in UTC, DATEs as `VALUE=DATE`.
    pub fn to_line(&self) -> String {
        match self {
            Line::Rule(r) => format!("RRULE:{r}"),
            Line::Dates { exclude, items } => {
                let name = if *exclude { "EXDATE" } else { "RDATE" };
                let dates: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        DateItem::Date(d) => Some(d.format("%Y%m%d").to_string()),
                        _ => None,
                    })
                    .collect();
                let times: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        DateItem::At(t) => Some(utc_text(*t)),
                        _ => None,
                    })
                    .collect();
                let periods: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        DateItem::Period { start, end } => {
                            Some(format!("{}/{}", utc_text(*start), utc_text(*end)))
                        }
                        _ => None,
                    })
                    .collect();
                let mut out = Vec::new();
                if !dates.is_empty() {
                    out.push(format!("{name};VALUE=DATE:{}", dates.join(",")));
                }
                if !times.is_empty() {
                    out.push(format!("{name}:{}", times.join(",")));
                }
                if !periods.is_empty() {
                    out.push(format!("{name};VALUE=PERIOD:{}", periods.join(",")));
                }
                out.join("\n")
            }
        }
    }
}

fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// An RFC 5545 DURATION (`PT2H`, `P1D`, `P1W`, `-PT15M`, `P1DT2H`), every step checked: a
/// length past what a date can hold is `None`, never a panic. Days count as 24 hours here; see
/// [`add_duration`] for days as calendar days.
pub fn duration(s: &str) -> Option<Duration> {
    let (days, secs) = duration_parts(s)?;
    Duration::try_days(days)?.checked_add(&Duration::try_seconds(secs)?)
}

/// A DURATION as (days, seconds), both negative for `-P…`: weeks and days are nominal (RFC 5545
/// 3.3.6: a day is a calendar day, 23 or 25 hours when the clocks change), hours on exact.
fn duration_parts(s: &str) -> Option<(i64, i64)> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let s = s.strip_prefix(['P', 'p'])?;
    let mut days: i64 = 0;
    let mut secs: i64 = 0;
    let mut num: Option<i64> = None;
    let mut in_time = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            'T' | 't' => in_time = true,
            '0'..='9' => {
                let d = i64::from(c as u8 - b'0');
                num = Some(num.unwrap_or(0).checked_mul(10)?.checked_add(d)?);
            }
            unit => {
                let n = num.take()?;
                match (unit.to_ascii_uppercase(), in_time) {
                    ('W', false) => days = days.checked_add(n.checked_mul(7)?)?,
                    ('D', false) => days = days.checked_add(n)?,
                    ('H', true) => secs = secs.checked_add(n.checked_mul(3_600)?)?,
                    ('M', true) => secs = secs.checked_add(n.checked_mul(60)?)?,
                    ('S', true) => secs = secs.checked_add(n)?,
                    _ => return None,
                }
                any = true;
            }
        }
    }
    if num.is_some() || !any {
        return None;
    }
    // Past about 27,000 years no end date exists; refuse long before chrono would panic.
    let limit = 10_000 * 366;
    if days > limit || secs / 86_400 > limit || days.checked_add(secs / 86_400)? > limit {
        return None;
    }
    Some(if neg { (-days, -secs) } else { (days, secs) })
}

/// `start` plus a DURATION in `tz`: its days as calendar days at the same wall-clock time, then
/// its hours, minutes and seconds exactly. `None` past what a date can hold.
pub fn add_duration(
    start: DateTime<FixedOffset>,
    tz: Tz,
    text: &str,
) -> Option<DateTime<FixedOffset>> {
    let (days, secs) = duration_parts(text)?;
    let local = start.with_timezone(&tz).naive_local();
    let moved = local.checked_add_signed(Duration::try_days(days)?)?;
    let base = if days == 0 {
        start.with_timezone(&Utc)
    } else {
        local_instant(tz, moved)?
    };
    let end = base.checked_add_signed(Duration::try_seconds(secs)?)?;
    Some(end.with_timezone(&tz).fixed_offset())
}

/// One PERIOD value, `start/end` or `start/duration`, with the list's zone.
fn period(item: &str, tz: Tz) -> Result<DateItem, String> {
    let (a, b) = item
        .split_once('/')
        .ok_or_else(|| format!("PERIOD {item:?} has no '/'"))?;
    // Days for a period (not RFC 5545, but written): local midnights in the list's zone.
    let instant = |v: &str| match date_time(v, tz)? {
        DateItem::Date(d) => d
            .and_hms_opt(0, 0, 0)
            .and_then(|n| local_instant(tz, n))
            .ok_or_else(|| format!("PERIOD {item:?}: {d} has no local midnight")),
        other => other
            .instant()
            .ok_or_else(|| format!("PERIOD {item:?} is not a period")),
    };
    let start = instant(a)?;
    let b = b.trim();
    let end = if b.starts_with(['P', 'p', '+', '-']) {
        duration(b)
            .and_then(|d| start.checked_add_signed(d))
            .filter(|e| e.year() <= 9999)
            .ok_or_else(|| format!("PERIOD {item:?} has a length no date can hold"))?
    } else {
        instant(b)?
    };
    if end < start {
        return Err(format!("PERIOD {item:?} ends before it starts"));
    }
    Ok(DateItem::Period { start, end })
}

/// A local wall-clock time in `tz`: the first of a repeated hour, and a time the clocks skip
/// counts with the offset before the gap (RFC 5545 3.3.5).
pub fn local_instant(tz: Tz, naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
}

/// A DATE-TIME's wall-clock part, `YYYYMMDDTHHMMSS`, or without its seconds (`19970901T1300`, as
/// some exporters write it: the minute's start).
pub fn naive_date_time(v: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S")
        .ok()
        .or_else(|| {
            (v.len() == 13)
                .then(|| NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M").ok())
                .flatten()
        })
}

fn date_time(v: &str, tz: Tz) -> Result<DateItem, String> {
    let v = v.trim();
    if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(v, "%Y%m%d")
            .map(DateItem::Date)
            .map_err(|_| format!("{v:?} is not a date"));
    }
    let (body, utc) = match v.strip_suffix(['Z', 'z']) {
        Some(b) => (b, true),
        None => (v, false),
    };
    let naive = naive_date_time(body).ok_or_else(|| format!("{v:?} is not a date-time"))?;
    if naive.year() > 9999 {
        return Err(format!("{v:?} is after the year 9999"));
    }
    if utc {
        return Ok(DateItem::At(naive.and_utc()));
    }
    local_instant(tz, naive)
        .map(DateItem::At)
        .ok_or_else(|| format!("{v:?} does not exist in {}", tz.name()))
}

/// A content line's name, parameters and value.
type Split<'a> = (String, Vec<(String, String)>, &'a str);

/// Splits `NAME;P=V;P="V":VALUE` at the first colon outside quotes.
fn split_line(line: &str) -> Result<Split<'_>, String> {
    if line.chars().any(|c| c.is_control()) {
        return Err("contains a control character (a raw CR or LF?)".into());
    }
    let mut quoted = false;
    let mut colon = None;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let colon = colon.ok_or("has no ':' between name and value")?;
    let (head, value) = (&line[..colon], &line[colon + 1..]);
    let mut parts = head.split(';');
    let name = parts.next().unwrap_or("").trim().to_ascii_uppercase();
    let mut params = Vec::new();
    for p in parts {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("parameter {p:?} has no value"))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        // A quoted value may hold ':' (the colon finder skips quotes); ';' would have split it.
        if v.contains(['"', ';']) {
            return Err(format!("parameter {k} value {v:?} holds a quote or ';'"));
        }
        params.push((k.trim().to_ascii_uppercase(), v.to_string()));
    }
    Ok((name, params, value))
}

/// What the series needs to read its lines: the start and its zone.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    pub start: DateTime<FixedOffset>,
    pub tz: Tz,
    pub all_day: bool,
}

impl Anchor {
    pub fn of(e: &Event) -> Anchor {
        Anchor {
            start: e.start,
            tz: e
                .timezone
                .as_deref()
                .and_then(zone)
                .unwrap_or(chrono_tz::UTC),
            all_day: e.all_day,
        }
    }
}

/// Reads one RRULE/RDATE/EXDATE line. `Ok(None)` is a rule that leaves the event a single one
/// (an empty RRULE, or UNTIL before the start); `zone_of` resolves TZID names.
pub fn parse_line(
    line: &str,
    anchor: &Anchor,
    zone_of: &dyn Fn(&str) -> Option<Tz>,
) -> Result<Option<Line>, String> {
    let (name, params, value) = split_line(line.trim())?;
    let value = value.trim();
    match name.as_str() {
        "RRULE" => rule(value, anchor),
        "RDATE" | "EXDATE" => {
            let mut tz = anchor.tz;
            let mut kind = None;
            for (k, v) in &params {
                match k.as_str() {
                    "TZID" => tz = zone_of(v).ok_or_else(|| format!("unknown TZID {v:?}"))?,
                    "VALUE" => kind = Some(v.to_ascii_uppercase()),
                    _ => {}
                }
            }
            let mut items = Vec::new();
            for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                let mut d = match kind.as_deref() {
                    // An EXDATE names occurrences by their start only.
                    Some("PERIOD") if name == "EXDATE" => {
                        date_time(item.split_once('/').map_or(item, |(s, _)| s), tz)
                    }
                    Some("PERIOD") => period(item, tz),
                    _ => date_time(item, tz),
                }
                .map_err(|e| format!("{name}: {e}"))?;
                if let (DateItem::Date(day), false, false) = (d, anchor.all_day, name == "EXDATE") {
                    // An RDATE of a day on a timed series happens at the series' time of day.
                    let t = anchor.start.with_timezone(&anchor.tz).time();
                    d = DateItem::At(
                        local_instant(anchor.tz, day.and_time(t))
                            .ok_or_else(|| format!("{name}: {day} has no such local time"))?,
                    );
                }
                items.push(d);
            }
            if items.is_empty() {
                return Ok(None);
            }
            Ok(Some(Line::Dates {
                exclude: name == "EXDATE",
                items,
            }))
        }
        other => Err(format!("{other:?} is not RRULE, RDATE or EXDATE")),
    }
}

/// Checks a rule and puts UNTIL in UTC: a DATE UNTIL includes its whole day, a floating one is
/// read in the start's zone (as Apple and PHP write it).
fn rule(value: &str, anchor: &Anchor) -> Result<Option<Line>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let mut until = None;
    let mut freq = None;
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("RRULE part {part:?} has no '='"))?;
        let k = k.trim().to_ascii_uppercase();
        match k.as_str() {
            "RSCALE" => {
                return Err(format!(
                    "RRULE uses RSCALE={v} (a non-Gregorian calendar), which is not supported"
                ))
            }
            "FREQ" => freq = Some(v.trim().to_ascii_uppercase()),
            "UNTIL" => {
                until = Some(match date_time(v, anchor.tz)? {
                    DateItem::At(t) | DateItem::Period { start: t, .. } => t,
                    DateItem::Date(d) => {
                        local_instant(anchor.tz, d.and_hms_opt(23, 59, 59).unwrap_or_default())
                            .ok_or("UNTIL has no such local time")?
                    }
                });
                continue;
            }
            _ => {}
        }
        // Canonical: no spaces inside a list ("BYDAY=MO, TU" as Exchange writes it), upper case,
        // so every reader of calendar.ics takes the rule.
        let v: String = v
            .split_whitespace()
            .collect::<String>()
            .to_ascii_uppercase();
        parts.push(format!("{k}={v}"));
    }
    let freq = freq.ok_or("RRULE has no FREQ")?;
    if REFUSED_FREQS.contains(&freq.as_str()) {
        return Err(format!(
            "RRULE FREQ={freq} repeats more often than hourly, which a community calendar does not accept"
        ));
    }
    if let Some(u) = until {
        if u < anchor.start.with_timezone(&Utc) {
            return Ok(None);
        }
        parts.push(format!("UNTIL={}", u.format("%Y%m%dT%H%M%SZ")));
    }
    let text = parts.join(";");
    rule_set(&text, anchor.start, anchor.tz)
        .map_err(|e| format!("RRULE {value:?} is invalid: {e}"))?;
    Ok(Some(Line::Rule(text)))
}

fn dtstart_line(start: DateTime<FixedOffset>, tz: Tz) -> String {
    let local = start.with_timezone(&tz);
    if tz == chrono_tz::UTC {
        format!("DTSTART:{}Z", local.format("%Y%m%dT%H%M%S"))
    } else {
        format!(
            "DTSTART;TZID={}:{}",
            tz.name(),
            local.format("%Y%m%dT%H%M%S")
        )
    }
}

fn rule_set(rule: &str, start: DateTime<FixedOffset>, tz: Tz) -> Result<rrule::RRuleSet, String> {
    format!("{}\nRRULE:{rule}", dtstart_line(start, tz))
        .parse::<rrule::RRuleSet>()
        .map_err(|e| e.to_string())
}

/// Checks and canonicalises an event's stored lines. Returns the lines kept and a reason for
/// each line that could not be applied (the caller reports them: nothing is dropped silently).
pub fn normalise(
    lines: &[String],
    anchor: &Anchor,
    zone_of: &dyn Fn(&str) -> Option<Tz>,
) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut problems = Vec::new();
    for l in lines {
        match parse_line(l, anchor, zone_of) {
            Ok(Some(line)) => kept.extend(line.to_line().split('\n').map(str::to_string)),
            Ok(None) => {}
            Err(e) => problems.push(format!("{l:?} not applied: {e}")),
        }
    }
    (kept, problems)
}

/// Occurrence starts of `event`'s own lines between `after` and `before` (exclusive), at most
/// `limit`; see [`occurrences_between`].
pub fn starts_between(
    event: &Event,
    after: DateTime<Utc>,
    before: DateTime<Utc>,
    limit: usize,
) -> Vec<DateTime<FixedOffset>> {
    occurrences_between(event, after, before, limit)
        .into_iter()
        .map(|(s, _)| s)
        .collect()
}

/// Occurrences (start, end) of `event`'s own lines between `after` and `before` (exclusive),
/// at most `limit`. The rule is restarted near the window (whole periods, so its phase is kept)
/// rather than walked from a start decades back; a line that cannot be read is skipped. An RDATE
/// PERIOD keeps its own end; an all-day series lasts the same number of days each time (a day
/// with a clock change is 23 or 25 hours); a timed one the exact length of the first.
pub fn occurrences_between(
    event: &Event,
    after: DateTime<Utc>,
    before: DateTime<Utc>,
    limit: usize,
) -> Vec<(DateTime<FixedOffset>, Option<DateTime<FixedOffset>>)> {
    let anchor = Anchor::of(event);
    let mut rules = Vec::new();
    let mut rdates = Vec::new();
    let mut exdates = Vec::new();
    for l in event.recurrence.iter().flatten() {
        match parse_line(l, &anchor, &zone) {
            Ok(Some(Line::Rule(r))) => rules.push(r),
            Ok(Some(Line::Dates { exclude, items })) => {
                if exclude {
                    exdates.extend(items)
                } else {
                    rdates.extend(items)
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "recurrence line skipped"),
        }
    }
    let tz = anchor.tz;
    let excluded = |t: DateTime<Utc>| {
        exdates.iter().any(|x| match x {
            DateItem::Date(d) => t.with_timezone(&tz).date_naive() == *d,
            other => other.instant() == Some(t),
        })
    };
    // Each start with the end its RDATE PERIOD gives, if any.
    let mut out: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = Vec::new();
    let first = event.start.with_timezone(&Utc);
    // The start is the first occurrence (RFC 5545 3.8.5.3), whether or not the rule matches it.
    if first > after && first < before {
        out.push((first, None));
    }
    let cap = limit.saturating_add(exdates.len()).min(u16::MAX as usize) as u16;
    for r in &rules {
        let start = jump(r, event.start, tz, after);
        let Ok(set) = rule_set(r, start, tz) else {
            continue;
        };
        let from = after.with_timezone(&rrule::Tz::Tz(tz));
        let to = before.with_timezone(&rrule::Tz::Tz(tz));
        let res = set.after(from).before(to).all(cap);
        out.extend(
            res.dates
                .into_iter()
                .map(|d| d.with_timezone(&Utc))
                .filter(|d| *d >= first)
                .map(|d| (d, None)),
        );
    }
    for d in rdates {
        let (t, own_end) = match d {
            DateItem::At(t) => (t, None),
            DateItem::Period { start, end } => (start, Some(end)),
            DateItem::Date(day) => {
                match local_instant(tz, day.and_hms_opt(0, 0, 0).unwrap_or_default()) {
                    Some(t) => (t, None),
                    None => continue,
                }
            }
        };
        if t > after && t < before {
            out.push((t, own_end));
        }
    }
    // A start listed twice keeps the one with its own (PERIOD) end.
    out.sort_by_key(|(t, end)| (*t, end.is_none()));
    out.dedup_by_key(|(t, _)| *t);
    out.retain(|(t, _)| !excluded(*t));
    out.truncate(limit);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).fixed_offset();
    out.into_iter()
        .map(|(t, own_end)| {
            let end = match own_end {
                Some(e) => Some(local(e)),
                None => series_end(event, tz, local(t)),
            };
            (local(t), end)
        })
        .collect()
}

/// The end of the occurrence starting at `start`: as many local days on as the first lasts for
/// an all-day series, else the first's exact length on.
fn series_end(
    event: &Event,
    tz: Tz,
    start: DateTime<FixedOffset>,
) -> Option<DateTime<FixedOffset>> {
    let end = event.end?;
    let length = end - event.start;
    let local_end = end.with_timezone(&tz);
    if event.all_day && local_end.time() == chrono::NaiveTime::MIN {
        let days =
            (local_end.date_naive() - event.start.with_timezone(&tz).date_naive()).num_days();
        let day = start
            .with_timezone(&tz)
            .date_naive()
            .checked_add_signed(Duration::try_days(days)?)?;
        if let Some(t) = day.and_hms_opt(0, 0, 0).and_then(|n| local_instant(tz, n)) {
            return Some(t.with_timezone(&tz).fixed_offset());
        }
    }
    start.checked_add_signed(length)
}

/// A later start for `rule` a whole number of its periods on, just before `after`, so expansion
/// does no work for the years before the window. Rules with COUNT (which counts from the real
/// start) and monthly or yearly ones (cheap to walk) keep their start.
fn jump(
    rule: &str,
    start: DateTime<FixedOffset>,
    tz: Tz,
    after: DateTime<Utc>,
) -> DateTime<FixedOffset> {
    let mut freq = "";
    let mut interval: i64 = 1;
    for part in rule.split(';') {
        match part.split_once('=') {
            Some(("COUNT", _)) => return start,
            Some(("FREQ", f)) => freq = f,
            Some(("INTERVAL", n)) => interval = n.parse().unwrap_or(1).max(1),
            _ => {}
        }
    }
    let step = match freq {
        "HOURLY" => Duration::hours(interval),
        "DAILY" => Duration::days(interval),
        "WEEKLY" => Duration::weeks(interval),
        _ => return start,
    };
    let local = start.with_timezone(&tz).naive_local();
    let target = after.with_timezone(&tz).naive_local() - Duration::days(2);
    let gap = target - local;
    if gap <= step {
        return start;
    }
    let periods = gap.num_seconds() / step.num_seconds().max(1);
    let Some(moved) = step
        .checked_mul(periods as i32)
        .and_then(|d| local.checked_add_signed(d))
    else {
        return start;
    };
    match tz.from_local_datetime(&moved).earliest() {
        Some(t) => t.fixed_offset(),
        None => start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(start: &str, tz: &str, rule: &str) -> Event {
        Event {
            title: "S".into(),
            description: None,
            description_html: None,
            start: DateTime::parse_from_rfc3339(start).unwrap(),
            end: None,
            timezone: Some(tz.into()),
            all_day: false,
            recurrence: Some(vec![rule.into()]),
            status: Default::default(),
            location: Default::default(),
            url: None,
            booking_url: None,
            organiser: Default::default(),
            categories: vec![],
            overrides: vec![],
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_series_from_decades_back_expands_its_window_with_the_same_phase() {
        // Fortnightly on Tuesday and Thursday from 1990: the window's dates follow the old phase.
        let e = series(
            "1990-01-02T10:00:00+00:00",
            "Europe/London",
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
        );
        let got = starts_between(
            &e,
            utc("2027-03-20T00:00:00Z"),
            utc("2027-04-20T00:00:00Z"),
            50,
        );
        // The same rule expanded the slow way, straight from 1990.
        let text =
            "DTSTART;TZID=Europe/London:19900102T100000\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH";
        let slow: Vec<DateTime<FixedOffset>> = text
            .parse::<rrule::RRuleSet>()
            .unwrap()
            .after(utc("2027-03-20T00:00:00Z").with_timezone(&rrule::Tz::UTC))
            .before(utc("2027-04-20T00:00:00Z").with_timezone(&rrule::Tz::UTC))
            .all(50)
            .dates
            .into_iter()
            .map(|d| d.fixed_offset())
            .collect();
        assert_eq!(got, slow);
        assert!(got
            .iter()
            .any(|d| d.to_rfc3339().ends_with("10:00:00+01:00")));
    }

    #[test]
    fn zone_names_from_windows_paths_and_display_text() {
        assert_eq!(
            zone("Eastern Standard Time"),
            Some(chrono_tz::America::New_York)
        );
        assert_eq!(
            zone("\"GMT Standard Time\""),
            Some(chrono_tz::Europe::London)
        );
        assert_eq!(
            zone("Canberra, Melbourne, Sydney"),
            Some(chrono_tz::Australia::Sydney)
        );
        assert_eq!(
            zone("/freeassociation.sourceforge.net/Tzfile/America/Argentina/Buenos_Aires"),
            Some(chrono_tz::America::Argentina::Buenos_Aires)
        );
        assert_eq!(zone("US-Eastern"), Some(chrono_tz::US::Eastern));
        assert_eq!(zone("UTC+11"), Some(chrono_tz::Etc::GMTMinus11));
        assert_eq!(zone("GMT-03:00"), Some(chrono_tz::Etc::GMTPlus3));
        assert_eq!(zone("UTC+05:30"), None);
        assert_eq!(
            zone("(UTC-03:00) Brasília"),
            Some(chrono_tz::America::Sao_Paulo)
        );
        assert_eq!(
            zone("Pacific Time (US & Canada), Tijuana"),
            Some(chrono_tz::America::Los_Angeles)
        );
        // An Outlook display name as a quoted TZID, colon and all, in an EXDATE.
        let a = Anchor {
            start: DateTime::parse_from_rfc3339("2016-04-09T09:00:00-04:00").unwrap(),
            tz: chrono_tz::America::New_York,
            all_day: false,
        };
        assert_eq!(
            parse_line(
                "EXDATE;TZID=\"(UTC-05:00) Eastern Time (US & Canada)\":20160709T090000",
                &a,
                &zone
            )
            .unwrap()
            .unwrap()
            .to_line(),
            "EXDATE:20160709T130000Z"
        );
        // A DATE-TIME without seconds is the minute's start.
        assert_eq!(
            parse_line("RDATE:19970901T1300Z", &a, &zone)
                .unwrap()
                .unwrap()
                .to_line(),
            "RDATE:19970901T130000Z"
        );
        assert_eq!(zone("Mars/Olympus"), None);
        assert_eq!(zone("Western/Central Europe"), None);
    }

    #[test]
    fn until_forms_and_refused_rules() {
        let a = Anchor {
            start: DateTime::parse_from_rfc3339("2027-01-04T00:00:00+00:00").unwrap(),
            tz: chrono_tz::Europe::London,
            all_day: true,
        };
        let z = |n: &str| zone(n);
        let line = |l: &str| parse_line(l, &a, &z).map(|o| o.map(|x| x.to_line()));
        assert_eq!(
            line("RRULE:FREQ=WEEKLY;UNTIL=20270125").unwrap().unwrap(),
            "RRULE:FREQ=WEEKLY;UNTIL=20270125T235959Z"
        );
        assert_eq!(
            line("RRULE:FREQ=DAILY;UNTIL=20200101T000000Z").unwrap(),
            None
        );
        assert_eq!(line("RRULE:").unwrap(), None);
        assert_eq!(
            line("RRULE:FREQ=weekly;BYDAY=MO, TU, we").unwrap().unwrap(),
            "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE"
        );
        assert!(line("RRULE:RSCALE=HEBREW;FREQ=YEARLY")
            .unwrap_err()
            .contains("RSCALE"));
        assert!(line("RRULE:FREQ=MINUTELY")
            .unwrap_err()
            .contains("MINUTELY"));
    }

    #[test]
    fn an_rdate_period_keeps_its_own_length() {
        let mut e = series(
            "2027-06-01T09:00:00+01:00",
            "Europe/London",
            "RRULE:FREQ=DAILY;COUNT=2",
        );
        e.end = Some(DateTime::parse_from_rfc3339("2027-06-01T10:00:00+01:00").unwrap());
        let z = |n: &str| zone(n);
        let a = Anchor::of(&e);
        let line = parse_line(
            "RDATE;VALUE=PERIOD:20270610T080000Z/20270610T113000Z,20270611T080000Z/PT15M",
            &a,
            &z,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            line.to_line(),
            "RDATE;VALUE=PERIOD:20270610T080000Z/20270610T113000Z,20270611T080000Z/20270611T081500Z"
        );
        e.recurrence.as_mut().unwrap().push(line.to_line());
        let got: Vec<(String, String)> = occurrences_between(
            &e,
            utc("2027-05-01T00:00:00Z"),
            utc("2027-07-01T00:00:00Z"),
            10,
        )
        .into_iter()
        .map(|(s, e)| (s.to_rfc3339(), e.unwrap().to_rfc3339()))
        .collect();
        let want = [
            ("2027-06-01T09:00:00+01:00", "2027-06-01T10:00:00+01:00"),
            ("2027-06-02T09:00:00+01:00", "2027-06-02T10:00:00+01:00"),
            ("2027-06-10T09:00:00+01:00", "2027-06-10T12:30:00+01:00"),
            ("2027-06-11T09:00:00+01:00", "2027-06-11T09:15:00+01:00"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want);
        // Days, as some exporters write them: local midnight to local midnight.
        assert_eq!(
            parse_line("RDATE;VALUE=PERIOD:20270701/20270703", &a, &z)
                .unwrap()
                .unwrap()
                .to_line(),
            "RDATE;VALUE=PERIOD:20270630T230000Z/20270702T230000Z"
        );
        assert!(parse_line(
            "RDATE;VALUE=PERIOD:20270610T080000Z/20270609T080000Z",
            &a,
            &z
        )
        .unwrap_err()
        .contains("before"));
    }

    #[test]
    fn an_all_day_series_ends_a_day_later_across_a_clock_change() {
        let mut e = series(
            "2027-03-27T00:00:00+00:00",
            "Europe/London",
            "RRULE:FREQ=DAILY;COUNT=3",
        );
        e.all_day = true;
        e.end = Some(DateTime::parse_from_rfc3339("2027-03-28T00:00:00+00:00").unwrap());
        let got: Vec<String> = occurrences_between(
            &e,
            utc("2027-03-01T00:00:00Z"),
            utc("2027-04-01T00:00:00Z"),
            10,
        )
        .into_iter()
        .map(|(_, e)| e.unwrap().to_rfc3339())
        .collect();
        // 28 March has 23 hours: its occurrence still ends at the next local midnight.
        assert_eq!(
            got,
            [
                "2027-03-28T00:00:00+00:00",
                "2027-03-29T00:00:00+01:00",
                "2027-03-30T00:00:00+01:00"
            ]
        );
    }

    #[test]
    fn a_duration_in_days_is_calendar_days() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap();
        let chicago = chrono_tz::America::Chicago;
        // 29 October 2006 had 25 hours in Chicago: P1D still ends at the next midnight.
        let end = add_duration(at("2006-10-29T00:00:00-05:00"), chicago, "P1D").unwrap();
        assert_eq!(end.to_rfc3339(), "2006-10-30T00:00:00-06:00");
        let end = add_duration(at("2006-10-28T12:00:00-05:00"), chicago, "P1DT2H").unwrap();
        assert_eq!(end.to_rfc3339(), "2006-10-29T14:00:00-06:00");
        let end = add_duration(at("2006-10-29T00:00:00-05:00"), chicago, "PT24H").unwrap();
        assert_eq!(end.to_rfc3339(), "2006-10-29T23:00:00-06:00");
        assert_eq!(duration("P1W"), Some(Duration::days(7)));
        assert_eq!(duration("-PT15M"), Some(Duration::minutes(-15)));
        assert_eq!(duration("P99999999D"), None);
        assert_eq!(duration("P999999999999999999W"), None);
        assert!(add_duration(at("2027-01-01T00:00:00Z"), chrono_tz::UTC, "P99999999D").is_none());
    }
}
