//! Detects a single-document feed that was cut short in transit (a proxy or partner server that
//! closed the connection without a Content-Length to tell): a CSV whose last line stops inside a
//! quoted field or short of the header's columns, an XML document whose root never closes, a
//! calendar that stops inside a component (no `END:VCALENDAR`, last line no `END:`). A cut feed fails the sync instead of deleting rows.

use super::feed_spec::Format;

/// Why `bytes` looks cut short, if it does. JSON formats need no check: a cut document is never
/// valid JSON, so the parser already refuses it.
pub fn check(format: Format, bytes: &[u8]) -> Option<String> {
    match format {
        Format::Csv => csv(bytes),
        Format::Rss => xml(bytes),
        Format::Ical => ical(bytes),
        _ => None,
    }
}

fn csv(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.ends_with(b"\n") || bytes.ends_with(b"\r") {
        return None;
    }
    // An odd number of quotes overall means the document ends inside a quoted field.
    if bytes.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
        return Some("the last line ends inside a quoted field".into());
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut header = None;
    let mut last = None;
    let mut rows = 0usize;
    for rec in reader.byte_records() {
        let Ok(rec) = rec else { return None };
        rows += 1;
        if header.is_none() {
            header = Some(rec.len());
        }
        last = Some(rec.len());
    }
    match (header, last) {
        (Some(h), Some(l)) if rows > 1 && l < h => Some(format!(
            "the last line has {l} of the header's {h} columns and no line break after it"
        )),
        _ => None,
    }
}

/// The root element's name: the first tag that is not a declaration, comment or doctype.
fn root_name(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        let at = rest.find('<')?;
        rest = &rest[at..];
        if rest.starts_with("<?") {
            rest = &rest[rest.find("?>")? + 2..];
        } else if rest.starts_with("<!--") {
            rest = &rest[rest.find("-->")? + 3..];
        } else if rest.starts_with("<!") {
            rest = &rest[rest.find('>')? + 1..];
        } else {
            let name = &rest[1..];
            let end = name
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(name.len());
            return Some(&name[..end]);
        }
    }
}

fn xml(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let name = root_name(&text)?;
    if name.is_empty() {
        return None;
    }
    let trimmed = text.trim_end();
    // A root that closes itself (`<rss/>`) is whole; otherwise its end tag ends the document.
    let closed = trimmed.ends_with("/>") && text.matches('<').count() == 1
        || trimmed
            .rsplit_once("</")
            .is_some_and(|(_, tail)| tail.trim_end_matches('>').trim() == name)
            && trimmed.ends_with('>');
    (!closed).then(|| format!("the document's root element <{name}> is never closed"))
}

fn ical(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let starts = text.trim_start().get(..15).map(str::to_ascii_uppercase);
    // Only a calendar is checked; other text is the parser's to refuse with its own reason.
    if starts.as_deref() != Some("BEGIN:VCALENDAR") {
        return None;
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last_begin = lines
        .iter()
        .rposition(|l| l.eq_ignore_ascii_case("BEGIN:VCALENDAR"))
        .unwrap_or(0);
    let closed = lines[last_begin..]
        .iter()
        .any(|l| l.eq_ignore_ascii_case("END:VCALENDAR"));
    // Publishers write junk after the calendar or garble its last line; the reader tolerates
    // both. A body cut in transit instead stops inside a component: its last line is no END.
    let at_a_boundary = lines
        .last()
        .is_some_and(|l| l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("END:")));
    (!closed && !at_a_boundary)
        .then(|| "the calendar stops inside a component, without END:VCALENDAR".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_csv_passes_and_a_cut_one_is_caught() {
        let whole = b"id,name,town\n1,Hull CVS,Hull\n2,\"York, CVS\",York\n";
        assert_eq!(check(Format::Csv, whole), None);
        assert_eq!(check(Format::Csv, &whole[..whole.len() - 1]), None);
        assert!(check(Format::Csv, &whole[..whole.len() - 6]).is_some());
        assert!(check(Format::Csv, &whole[..34]).is_some(), "inside quotes");
    }

    #[test]
    fn xml_must_close_its_root() {
        let rss = "<?xml version=\"1.0\"?>\n<!-- c --><rss version=\"2.0\"><channel><item/></channel></rss>\n";
        assert_eq!(check(Format::Rss, rss.as_bytes()), None);
        assert!(check(Format::Rss, &rss.as_bytes()[..60]).is_some());
        let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry></entry></feed >";
        assert_eq!(check(Format::Rss, atom.as_bytes()), None);
    }

    #[test]
    fn a_calendar_cut_inside_a_component_is_caught() {
        let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:a\r\nDTSTART:20270105T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        assert_eq!(check(Format::Ical, ics.as_bytes()), None);
        // Cut inside the event's DTSTART, and just after its UID line.
        assert!(check(Format::Ical, &ics.as_bytes()[..60]).is_some());
        assert!(check(Format::Ical, &ics.as_bytes()[..49]).is_some());
        // Junk after the calendar, or a garbled last line at a component's end, is the reader's.
        let junk = format!("{ics}X-COMMENT:cached\r\n");
        assert_eq!(check(Format::Ical, junk.as_bytes()), None);
        let garbled = ics.replace("END:VCALENDAR", "END:VCALENDARD");
        assert_eq!(check(Format::Ical, garbled.as_bytes()), None);
        assert_eq!(check(Format::Ical, b"<html>"), None);
    }
}
