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

/// Text of the file: UTF-16 when it opens with a UTF-16 byte-order mark (as Windows tools save
/// "Unicode" text); UTF-8 if it is; UTF-8 with the odd broken byte replaced (U+FFFD) if it is
/// mostly UTF-8; otherwise Latin-1 (the usual non-UTF-8 charset of exporters), byte for byte.
pub fn decode(bytes: &[u8]) -> String {
    if let Some(text) = utf16(bytes) {
        return text;
    }
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

/// Bytes after a UTF-16 byte-order mark, decoded (malformed units become U+FFFD); `None`
/// without the mark.
fn utf16(bytes: &[u8]) -> Option<String> {
    let (encoding, bom) = encoding_rs::Encoding::for_bom(bytes)?;
    if encoding == encoding_rs::UTF_8 {
        return None;
    }
    let rest = bytes.get(bom..).unwrap_or_default();
    Some(encoding.decode_without_bom_handling(rest).0.into_owned())
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

/// The index of the colon ending a line's name and parameters (quoted values may hold colons,
/// and so may an unquoted Windows zone description: `TZID=(UTC+01:00) Amsterdam, Berlin`).
pub fn value_colon(line: &str) -> Option<usize> {
    let mut quoted = false;
    let mut in_params = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => in_params = true,
            ':' if quoted => {}
            ':' if in_params && in_utc_offset(&line[..i]) => {}
            ':' => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether text ends inside an unclosed `(UTC+hh` or `(GMT-hh`, the start of a Windows zone
/// description, so the colon after it is the offset's own.
fn in_utc_offset(before: &str) -> bool {
    let Some(open) = before.rfind('(') else {
        return false;
    };
    let inner = &before[open + 1..];
    let Some(sign) = inner.get(3..) else {
        return false;
    };
    let prefix = inner.get(..3).unwrap_or("");
    (prefix.eq_ignore_ascii_case("UTC") || prefix.eq_ignore_ascii_case("GMT"))
        && sign.starts_with(['+', '-'])
        && sign.len() <= 3
        && sign.bytes().skip(1).all(|b| b.is_ascii_digit())
        && !inner.contains(')')
}

/// The line with any parameter value holding a colon put in quotes (RFC 5545 3.2), so the
/// iCalendar parser splits the line where [`value_colon`] does.
fn quote_colon_params(line: &str, colon: usize) -> String {
    let head = &line[..colon];
    if !head.contains(':') {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len() + 4);
    let mut quoted = false;
    let mut part = String::new();
    let flush = |part: &mut String, out: &mut String| {
        match part.split_once('=') {
            Some((k, v)) if v.contains(':') && !v.starts_with('"') => {
                out.push_str(k);
                out.push_str("=\"");
                out.push_str(&v.replace('"', "'"));
                out.push('"');
            }
            _ => out.push_str(part),
        }
        part.clear();
    };
    for c in head.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                part.push(c);
            }
            ';' if !quoted => {
                flush(&mut part, &mut out);
                out.push(';');
            }
            _ => part.push(c),
        }
    }
    flush(&mut part, &mut out);
    out.push_str(&line[colon..]);
    out
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

#[derive(Clone, Copy, PartialEq)]
enum Where {
    Outside,
    Calendar,
    Event,
    Zone,
    Observance,
    /// Inside some other component (a VTODO, an X- wrapper, …); its name opens `nest`.
    Other,
}

/// Components open below the current one (a VALARM in a VEVENT, an X- wrapper, …), by name, so
/// an END closes the one it names and any left open inside it. Past `MAX_DEPTH` levels they are
/// only counted, so no nesting makes an END cost more than a few comparisons.
#[derive(Default)]
struct Nest {
    names: Vec<String>,
    beyond: usize,
}

impl Nest {
    fn depth(&self) -> usize {
        self.names.len() + self.beyond
    }

    fn open(&mut self, name: &str) {
        if self.names.len() <= MAX_DEPTH {
            self.names.push(name.to_string());
        } else {
            self.beyond += 1;
        }
    }

    /// Closes `name` and whatever was left open inside it; false when nothing open has that name.
    fn close(&mut self, name: &str) -> bool {
        if self.beyond > 0 {
            self.beyond -= 1;
            return true;
        }
        match self.names.iter().rposition(|n| n == name) {
            Some(i) => {
                self.names.truncate(i);
                true
            }
            None => false,
        }
    }
}

/// Where the scan was when a VEVENT began inside another component, to return there at its END.
struct Suspended {
    event: Option<EventBlock>,
    nest: Nest,
    at: Where,
    parent_is_calendar: bool,
}

/// What one content line did: done, or the structure it closed was left and the line must be
/// read again where that leaves the scan (an END:VCALENDAR closing a VEVENT left open).
enum Step {
    Done,
    Again,
}

#[derive(Default)]
struct Scanner {
    s: Scan,
    at: Option<Where>,
    nest: Nest,
    event: EventBlock,
    zone: ZoneBlock,
    observance: Observance,
    last_was_content: bool,
    /// Where a VEVENT's END returns to: its calendar, or outside for a bare VEVENT.
    event_parent_is_calendar: bool,
    /// VEVENTs (or other components) a VEVENT began inside, innermost last.
    suspended: Vec<Suspended>,
    /// VCALENDARs opened inside a calendar (a file pasted into another): their events count.
    inner_calendars: usize,
}

impl Scanner {
    fn at(&self) -> Where {
        self.at.unwrap_or(Where::Outside)
    }

    /// A physical line that is not a content line: pasted text that lost its fold continues the
    /// text property before it; a bare word is junk.
    fn not_content(&mut self, raw: &str) {
        if self.last_was_content && !looks_like_name(raw) && self.at() == Where::Event {
            let target = (self.nest.depth() == 0)
                .then(|| self.event.lines.last_mut().filter(|l| is_text_property(l)))
                .flatten();
            if let Some(t) = target {
                t.push(' ');
                t.push_str(raw.trim());
                return;
            }
        }
        self.s.dropped += 1;
    }

    fn line(&mut self, line: String) {
        let (begin, end) = (line.strip_prefix("BEGIN:"), line.strip_prefix("END:"));
        self.last_was_content = begin.is_none() && end.is_none();
        // Each re-reading leaves one level of structure, so a few are all a line can need.
        for _ in 0..4 {
            if let Step::Done = self.step(&line, begin, end) {
                return;
            }
        }
    }

    fn step(&mut self, line: &str, begin: Option<&str>, end: Option<&str>) -> Step {
        let at = self.at();
        // A VEVENT beginning inside another component is an event of its own, as readers that
        // walk the whole tree list it: nested in a VEVENT or one left without its END, in a
        // VTODO or an X- wrapper, after a VTIMEZONE left open.
        if begin == Some("VEVENT") && !matches!(at, Where::Outside | Where::Calendar) {
            return self.inner_event(at);
        }
        if self.nest.depth() > 0 && at != Where::Other {
            return self.nested(at, begin, end);
        }
        match (at, begin, end) {
            (Where::Outside, Some("VCALENDAR"), _) => self.at = Some(Where::Calendar),
            (Where::Outside, Some("VEVENT"), _) => self.start_event(false),
            (Where::Outside, _, _) => self.s.dropped += 1,
            (Where::Calendar, Some("VEVENT"), _) => self.start_event(true),
            (Where::Calendar, Some("VCALENDAR"), _) => self.inner_calendars += 1,
            (Where::Calendar, _, Some("VCALENDAR")) if self.inner_calendars > 0 => {
                self.inner_calendars -= 1
            }
            (Where::Calendar, _, Some("VCALENDAR")) => self.at = Some(Where::Outside),
            (Where::Calendar, Some("VTIMEZONE"), _) => {
                self.zone = ZoneBlock::default();
                self.at = Some(Where::Zone);
            }
            (Where::Calendar, Some(name), _) => {
                self.nest.open(name);
                self.at = Some(Where::Other);
            }
            // An END that closes nothing open (a stray END:VEVENT) is junk, not the calendar's end.
            (Where::Calendar, _, Some(_)) => self.s.dropped += 1,
            (Where::Calendar, None, None) => self.s.calendar_props.push(line.to_string()),
            (Where::Event, Some(name), _) => self.nest_open(at, name),
            (Where::Event, _, Some("VEVENT")) => self.end_event(),
            // END:VCALENDAR closes a VEVENT left without its END, then the calendar.
            (Where::Event, _, Some("VCALENDAR")) => {
                self.end_event();
                return Step::Again;
            }
            (Where::Event, _, Some(_)) => self.s.dropped += 1,
            (Where::Event, None, None) => self.event.lines.push(line.to_string()),
            (Where::Zone, Some(_), _) => {
                self.observance = Observance::default();
                self.observance.lines.push(line.to_string());
                self.at = Some(Where::Observance);
            }
            (Where::Zone, _, Some(_)) => self.end_zone(),
            (Where::Zone, None, None) => self.zone.lines.push(line.to_string()),
            (Where::Observance, Some(name), _) => self.nest_open(at, name),
            (Where::Observance, _, Some(name)) => {
                self.end_observance();
                if name == "VTIMEZONE" || name == "VCALENDAR" {
                    return Step::Again;
                }
            }
            (Where::Observance, None, None) => self.observance.lines.push(line.to_string()),
            (Where::Other, Some(name), _) => self.nest.open(name),
            (Where::Other, _, Some(name)) => {
                if self.nest.close(name) {
                    if self.nest.depth() == 0 {
                        self.resume_or(Where::Calendar);
                    }
                } else if name == "VCALENDAR" {
                    // The component was left open: the calendar's END closes it too.
                    self.nest = Nest::default();
                    self.resume_or(Where::Calendar);
                    return Step::Again;
                } else {
                    self.s.dropped += 1;
                }
            }
            (Where::Other, None, None) => {}
        }
        Step::Done
    }

    /// A line inside a component nested in a VEVENT or an observance (a VALARM, …): skipped,
    /// its nesting tracked. An END naming the VEVENT or observance itself closes what was left
    /// open inside it, then it.
    fn nested(&mut self, at: Where, begin: Option<&str>, end: Option<&str>) -> Step {
        if let Some(name) = begin {
            self.nest_open(at, name);
        } else if let Some(name) = end {
            if !self.nest.close(name) {
                self.nest = Nest::default();
                return Step::Again;
            }
        }
        Step::Done
    }

    fn nest_open(&mut self, at: Where, name: &str) {
        self.nest.open(name);
        if self.nest.depth() > MAX_DEPTH && at == Where::Event && self.event.problem.is_none() {
            self.event.problem = Some(format!(
                "components nested more than {MAX_DEPTH} deep inside the VEVENT"
            ));
        }
    }

    fn start_event(&mut self, parent_is_calendar: bool) {
        self.event = EventBlock::default();
        self.event_parent_is_calendar = parent_is_calendar;
        self.at = Some(Where::Event);
    }

    /// A VEVENT beginning inside another component. A VTIMEZONE left open ends there; a VEVENT
    /// or other component is resumed at the inner VEVENT's END. Past `MAX_DEPTH` such levels the
    /// inner VEVENT is only a nested component of the one around it.
    fn inner_event(&mut self, at: Where) -> Step {
        if matches!(at, Where::Zone | Where::Observance) {
            if at == Where::Observance {
                self.end_observance();
            }
            self.end_zone();
            return Step::Again;
        }
        if self.suspended.len() >= MAX_DEPTH {
            self.nest_open(at, "VEVENT");
            return Step::Done;
        }
        self.suspended.push(Suspended {
            event: (at == Where::Event).then(|| std::mem::take(&mut self.event)),
            nest: std::mem::take(&mut self.nest),
            at,
            parent_is_calendar: self.event_parent_is_calendar,
        });
        self.start_event(true);
        Step::Done
    }

    fn end_event(&mut self) {
        self.nest = Nest::default();
        self.s.events.push(std::mem::take(&mut self.event));
        let parent = if self.event_parent_is_calendar {
            Where::Calendar
        } else {
            Where::Outside
        };
        self.resume_or(parent);
    }

    /// Back to where the innermost suspended component was, or else to `otherwise`.
    fn resume_or(&mut self, otherwise: Where) {
        match self.suspended.pop() {
            Some(sp) => {
                if let Some(ev) = sp.event {
                    self.event = ev;
                }
                self.nest = sp.nest;
                self.event_parent_is_calendar = sp.parent_is_calendar;
                self.at = Some(sp.at);
            }
            None => self.at = Some(otherwise),
        }
    }

    fn end_observance(&mut self) {
        self.nest = Nest::default();
        let o = std::mem::take(&mut self.observance);
        self.zone.observances.push(o);
        self.at = Some(Where::Zone);
    }

    fn end_zone(&mut self) {
        if let Some(id) = self.zone.lines.iter().find_map(|l| l.strip_prefix("TZID:")) {
            self.zone.tzid = id.trim().to_string();
            self.s.zones.push(std::mem::take(&mut self.zone));
        }
        self.at = Some(Where::Calendar);
    }

    /// A VEVENT the file cut off before its END (and any it began inside) still counts, so it
    /// is seen and reported.
    fn finish(mut self) -> Scan {
        let cut = || Some("the VEVENT has no END:VEVENT (the file is cut off)".to_string());
        loop {
            if self.at() == Where::Event {
                if self.event.problem.is_none() {
                    self.event.problem = cut();
                }
                self.s.events.push(std::mem::take(&mut self.event));
            }
            match self.suspended.pop() {
                Some(sp) => {
                    self.event = sp.event.unwrap_or_default();
                    self.at = Some(sp.at);
                }
                None => break,
            }
        }
        self.s
    }
}

pub fn scan(text: &str) -> Scan {
    let mut sc = Scanner::default();
    for raw in unfold(text) {
        match value_colon(&raw).filter(|&c| is_property(&raw, c)) {
            Some(colon) => {
                let line = fix_case(&raw, colon);
                match value_colon(&line) {
                    Some(c) => sc.line(quote_colon_params(&line, c)),
                    None => sc.line(line),
                }
            }
            None => sc.not_content(&raw),
        }
    }
    sc.finish()
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
        // UTF-16 with its byte-order mark, either byte order.
        let text = "BEGIN:VCALENDAR\r\nSUMMARY:Café ☕\r\n";
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&le), text);
        assert_eq!(decode(&be), text);
        assert_eq!(decode(&le[..le.len() - 1]).chars().last(), Some('\u{fffd}'));
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
    fn a_vevent_inside_another_component_or_after_one_left_open_is_read() {
        let text = concat!(
            "BEGIN:VCALENDAR\r\n",
            // Nested in a VEVENT: both are events, the outer keeps its lines after the inner.
            "BEGIN:VEVENT\r\nUID:outer\r\nBEGIN:VEVENT\r\nUID:inner\r\nEND:VEVENT\r\nSUMMARY:Outer\r\nEND:VEVENT\r\n",
            // Inside a VTODO and an X- wrapper.
            "BEGIN:VTODO\r\nUID:todo\r\nBEGIN:VEVENT\r\nUID:in-todo\r\nEND:VEVENT\r\nEND:VTODO\r\n",
            "BEGIN:X-GROUP\r\nBEGIN:VEVENT\r\nUID:in-x\r\nEND:VEVENT\r\nEND:X-GROUP\r\n",
            // A VALARM left open: the VEVENT's END closes both; a stray END does not end it.
            "BEGIN:VEVENT\r\nUID:alarm\r\nBEGIN:VALARM\r\nTRIGGER:-PT15M\r\nEND:VEVENT\r\n",
            "BEGIN:VEVENT\r\nUID:stray\r\nEND:VALARM\r\nSUMMARY:Kept\r\nEND:VEVENT\r\n",
            // A VTIMEZONE left open ends where the next VEVENT begins.
            "BEGIN:VTIMEZONE\r\nTZID:Custom\r\nBEGIN:STANDARD\r\nTZOFFSETTO:+0100\r\n",
            "BEGIN:VEVENT\r\nUID:after-zone\r\nEND:VEVENT\r\n",
            // A VEVENT without its END, then the next: both, the first closed by END:VCALENDAR.
            "BEGIN:VEVENT\r\nUID:unclosed\r\nBEGIN:VEVENT\r\nUID:next\r\nEND:VEVENT\r\n",
            "END:VCALENDAR\r\n",
        );
        let s = scan(text);
        let uid = |e: &EventBlock| {
            e.lines
                .iter()
                .find_map(|l| l.strip_prefix("UID:"))
                .map(str::to_string)
        };
        let mut uids: Vec<String> = s.events.iter().filter_map(uid).collect();
        uids.sort();
        assert_eq!(
            uids,
            [
                "after-zone",
                "alarm",
                "in-todo",
                "in-x",
                "inner",
                "next",
                "outer",
                "stray",
                "unclosed"
            ]
        );
        assert!(
            s.events.iter().all(|e| e.problem.is_none()),
            "{:?}",
            s.events
        );
        let outer = s
            .events
            .iter()
            .find(|e| uid(e).as_deref() == Some("outer"))
            .unwrap();
        assert_eq!(outer.lines, ["UID:outer", "SUMMARY:Outer"]);
        let stray = s
            .events
            .iter()
            .find(|e| uid(e).as_deref() == Some("stray"))
            .unwrap();
        assert_eq!(stray.lines, ["UID:stray", "SUMMARY:Kept"]);
        assert_eq!(s.zones.len(), 1);
        assert_eq!(s.zones[0].tzid, "Custom");
        // Cut off inside a nested VEVENT: both are seen, as cut off.
        let cut = scan("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nBEGIN:VEVENT\r\nUID:b\r\n");
        assert_eq!(cut.events.len(), 2);
        assert!(cut.events.iter().all(|e| e.problem.is_some()));
    }

    #[test]
    fn an_unquoted_windows_zone_description_keeps_its_colon() {
        let s = scan(concat!(
            "BEGIN:VEVENT\r\nDTSTART;TZID=(UTC+01:00) Amsterdam, Berlin:20270101T100000\r\n",
            "EXDATE;VALUE=DATE-TIME;TZID=(GMT-05:00) Eastern Time (US & Canada):20270108T100000\r\n",
            "SUMMARY;LANGUAGE=en:Meeting (10:00 start)\r\nEND:VEVENT\r\n",
        ));
        assert_eq!(
            s.events[0].lines,
            [
                "DTSTART;TZID=\"(UTC+01:00) Amsterdam, Berlin\":20270101T100000",
                "EXDATE;VALUE=DATE-TIME;TZID=\"(GMT-05:00) Eastern Time (US & Canada)\":20270108T100000",
                "SUMMARY;LANGUAGE=en:Meeting (10:00 start)",
            ]
        );
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
