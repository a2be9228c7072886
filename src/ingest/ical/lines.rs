//! The line-level pre-pass over a calendar's bytes: charset, unfolding, junk lines, letter case
//! and component structure, tracked with counters rather than recursion so no nesting depth can
//! exhaust the stack. Yields each VEVENT's own lines and each VTIMEZONE, nested parts aside.

/// Components nested deeper than this inside a VEVENT reject that VEVENT.
pub const MAX_DEPTH: usize = 16;

/// One VEVENT's own content lines (unfolded), or why it cannot be read.
#[derive(Debug, Default)]
pub struct EventBlock {
    pub lines: Vec<String>,
    pub problem: Option<String>,
}

/// One observance (STANDARD or DAYLIGHT) of a VTIMEZONE.
#[derive(Debug, Default, Clone)]
pub struct Observance {
    pub lines: Vec<String>,
}

#[derive(Debug, Default, Clone)]
pub struct ZoneBlock {
    pub tzid: String,
    pub lines: Vec<String>,
    pub observances: Vec<Observance>,
}

/// What the pre-pass found across every VCALENDAR in the file.
#[derive(Debug, Default)]
pub struct Scan {
    pub calendar_props: Vec<String>,
    pub events: Vec<EventBlock>,
    pub zones: Vec<ZoneBlock>,
    /// Lines dropped as junk (no colon, outside any calendar), for the run's record.
    pub dropped: usize,
}

/// Text of the file: UTF-8 if it is; UTF-8 with the odd broken byte replaced (U+FFFD) if it
/// is mostly UTF-8; otherwise Latin-1 (the usual non-UTF-8 charset of exporters), byte for byte.
pub fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.trim_start_matches('\u{feff}').to_string(),
        Err(_) => {
            let lossy = String::from_utf8_lossy(bytes);
            let good_multibyte = lossy
                .chars()
                .filter(|c| !c.is_ascii() && *c != '\u{fffd}')
                .count();
            let broken = lossy.chars().filter(|c| *c == '\u{fffd}').count();
            if good_multibyte > broken {
                lossy.trim_start_matches('\u{feff}').to_string()
            } else {
                bytes.iter().map(|&b| b as char).collect()
            }
        }
    }
}

/// Whether the text is iCalendar at all: a `BEGIN:VCALENDAR` line, or a bare `BEGIN:VEVENT` as
/// some exporters write, in any letter case.
pub fn is_calendar(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.eq_ignore_ascii_case("BEGIN:VCALENDAR") || l.eq_ignore_ascii_case("BEGIN:VEVENT")
    })
}

/// Physical lines joined into content lines (RFC 5545 3.1), blank lines dropped, stray CRs
/// removed.
fn unfold(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in text.split('\n') {
        let line: String = raw.chars().filter(|c| *c != '\r').collect();
        if let Some(rest) = line.strip_prefix([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push_str(rest);
                continue;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        out.push(line);
    }
    out
}

/// The index of the colon ending a line's name and parameters (quoted values may hold colons).
pub fn value_colon(line: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A line's name upper-cased, the rest as it was.
fn fix_case(line: &str, colon: usize) -> String {
    let name_end = line[..colon].find(';').unwrap_or(colon);
    let name = line[..name_end].trim().to_ascii_uppercase();
    let rest = &line[name_end..];
    if name == "BEGIN" || name == "END" {
        return format!("{name}:{}", rest[1..].trim().to_ascii_uppercase());
    }
    format!("{name}{rest}")
}

/// Whether a line with a colon is a content line: its name is an RFC 5545 name (letters,
/// digits, '-') and it is not a URL on a line of its own. Anything else ("Agenda: …",
/// "https://…") is text pasted into a value that lost its folding.
fn is_property(line: &str, colon: usize) -> bool {
    let head = &line[..colon];
    let name = head.split(';').next().unwrap_or("").trim();
    let url = ["http", "https", "ftp"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
        && line[colon + 1..].starts_with("//");
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !url
}

/// Properties whose value is free text, where a pasted line that lost its fold belongs; a
/// stray line after a UID or a date is junk, not part of it.
fn is_text_property(line: &str) -> bool {
    let name = line.split([';', ':']).next().unwrap_or("");
    [
        "DESCRIPTION",
        "SUMMARY",
        "LOCATION",
        "COMMENT",
        "CONTACT",
        "RESOURCES",
        "X-ALT-DESC",
    ]
    .contains(&name)
}

fn looks_like_name(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.len() <= 40 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[derive(PartialEq)]
enum Where {
    Outside,
    Calendar,
    Event,
    Zone,
    Observance,
    /// Inside some other component; the depth counts its own nesting.
    Other,
}

pub fn scan(text: &str) -> Scan {
    let mut s = Scan::default();
    let mut at = Where::Outside;
    // Nesting below the current component (VALARM in a VEVENT, X- components, …).
    let mut depth = 0usize;
    let mut event = EventBlock::default();
    let mut zone = ZoneBlock::default();
    let mut observance = Observance::default();
    let mut last_was_content = false;
    // Where a VEVENT's END returns to: its calendar, or outside for a bare VEVENT.
    let mut event_parent_is_calendar = true;
    // VCALENDARs opened inside a calendar (a file pasted into another): their events count.
    let mut inner_calendars = 0usize;
    for raw in unfold(text) {
        let Some(colon) = value_colon(&raw).filter(|&c| is_property(&raw, c)) else {
            // Pasted text that lost its fold continues the previous line; a bare word is junk.
            if last_was_content && !looks_like_name(&raw) {
                let target = match at {
                    Where::Event if depth == 0 => {
                        event.lines.last_mut().filter(|l| is_text_property(l))
                    }
                    _ => None,
                };
                if let Some(t) = target {
                    t.push(' ');
                    t.push_str(raw.trim());
                    continue;
                }
            }
            s.dropped += 1;
            continue;
        };
        let line = fix_case(&raw, colon);
        let (begin, end) = (line.strip_prefix("BEGIN:"), line.strip_prefix("END:"));
        last_was_content = begin.is_none() && end.is_none();
        if depth > 0 {
            if begin.is_some() {
                depth += 1;
                if depth > MAX_DEPTH && at == Where::Event && event.problem.is_none() {
                    event.problem = Some(format!(
                        "components nested more than {MAX_DEPTH} deep inside the VEVENT"
                    ));
                }
            } else if end.is_some() {
                depth -= 1;
            }
            continue;
        }
        match (&at, begin, end) {
            (Where::Outside, Some("VCALENDAR"), _) => at = Where::Calendar,
            (Where::Outside, Some("VEVENT"), _) => {
                event = EventBlock::default();
                event_parent_is_calendar = false;
                at = Where::Event;
            }
            (Where::Outside, _, _) => s.dropped += 1,
            (Where::Calendar, Some("VEVENT"), _) => {
                event = EventBlock::default();
                event_parent_is_calendar = true;
                at = Where::Event;
            }
            (Where::Calendar, Some("VCALENDAR"), _) => inner_calendars += 1,
            (Where::Calendar, _, Some("VCALENDAR")) if inner_calendars > 0 => inner_calendars -= 1,
            (Where::Calendar, Some("VTIMEZONE"), _) => {
                zone = ZoneBlock::default();
                at = Where::Zone;
            }
            (Where::Calendar, Some(_), _) => at = Where::Other,
            (Where::Calendar, _, Some(_)) => at = Where::Outside,
            (Where::Calendar, None, None) => s.calendar_props.push(line),
            (Where::Event, Some(_), _) => depth = 1,
            (Where::Event, _, Some(_)) => {
                s.events.push(std::mem::take(&mut event));
                at = if event_parent_is_calendar {
                    Where::Calendar
                } else {
                    Where::Outside
                };
            }
            (Where::Event, None, None) => event.lines.push(line),
            (Where::Zone, Some(_), _) => {
                observance = Observance::default();
                observance.lines.push(line);
                at = Where::Observance;
            }
            (Where::Zone, _, Some(_)) => {
                if let Some(id) = zone.lines.iter().find_map(|l| l.strip_prefix("TZID:")) {
                    zone.tzid = id.trim().to_string();
                    s.zones.push(std::mem::take(&mut zone));
                }
                at = Where::Calendar;
            }
            (Where::Zone, None, None) => zone.lines.push(line),
            (Where::Observance, Some(_), _) => depth = 1,
            (Where::Observance, _, Some(_)) => {
                zone.observances.push(std::mem::take(&mut observance));
                at = Where::Zone;
            }
            (Where::Observance, None, None) => observance.lines.push(line),
            (Where::Other, Some(_), _) => depth = 1,
            (Where::Other, _, Some(_)) => at = Where::Calendar,
            (Where::Other, None, None) => {}
        }
    }
    // A VEVENT the file cut off before its END still counts as one, so it is seen and reported.
    if at == Where::Event {
        if event.problem.is_none() {
            event.problem = Some("the VEVENT has no END:VEVENT (the file is cut off)".into());
        }
        s.events.push(event);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerates_junk_case_blank_lines_and_several_calendars() {
        let text = "begin:vcalendar\r\nVERSION:2.0\r\n\r\nBEGIN:Vevent\r\nuid:a\r\nSUMMARY:A\r\nDESCRIPTION:first line\r\npasted second line\r\nJUNK\r\nEND:VEVENT\r\nEND:VCALENDAR\r\ntrailing text\r\nBEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let s = scan(text);
        assert_eq!(s.events.len(), 2);
        assert_eq!(
            s.events[0].lines,
            [
                "UID:a",
                "SUMMARY:A",
                "DESCRIPTION:first line pasted second line"
            ]
        );
        assert_eq!(s.events[1].lines, ["UID:b"]);
        assert_eq!(s.dropped, 2);
        // Pasted text holding a colon, and a URL on its own line, continue the value too.
        let pasted = "BEGIN:VEVENT\r\nUID:p\r\nDESCRIPTION:Agenda\r\nWe meet at 10: bring notes :)\r\nhttps://zoom.us/j/1\r\nSUMMARY:Team\r\nEND:VEVENT\r\n";
        assert_eq!(
            scan(pasted).events[0].lines,
            [
                "UID:p",
                "DESCRIPTION:Agenda We meet at 10: bring notes :) https://zoom.us/j/1",
                "SUMMARY:Team"
            ]
        );
        assert_eq!(decode(b"SUMMARY:Caf\xe9"), "SUMMARY:Café");
        assert_eq!(decode("SUMMARY:Café ü\u{ff}".as_bytes()), "SUMMARY:Café üÿ");
        let bare = "BEGIN:VEVENT\nUID:c\nEND:VEVENT\n";
        assert!(is_calendar(bare));
        assert_eq!(scan(bare).events[0].lines, ["UID:c"]);
        // A calendar pasted inside another keeps its events; a stray line after a UID is junk.
        let nested = "BEGIN:VCALENDAR\nBEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:n\nX-APPLE-RADIUS=49.9\nEND:VEVENT\nEND:VCALENDAR\nEND:VCALENDAR\n";
        let s = scan(nested);
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].lines, ["UID:n"]);
        assert_eq!(s.dropped, 1);
    }

    #[test]
    fn deep_nesting_is_a_problem_not_a_stack_overflow() {
        let n = 100_000;
        let mut text = String::from("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:deep\r\n");
        text.push_str(&"BEGIN:X-A\r\n".repeat(n));
        text.push_str(&"END:X-A\r\n".repeat(n));
        text.push_str("END:VEVENT\r\nBEGIN:VEVENT\r\nUID:ok\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
        let s = scan(&text);
        assert_eq!(s.events.len(), 2);
        assert!(s.events[0].problem.as_deref().unwrap().contains("nested"));
        assert!(s.events[1].problem.is_none());
    }
}
