//! Normalise: pure functions that clean a partner's record into canonical form (trimmed text, UK
//! postcodes, charity and company numbers, URLs, emails, E.164 phones, IANA zones, recurrence
//! lines) and derive the match keys dedupe compares (names and titles without case or decoration).

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::model::{Event, Organisation, Payload, SourceRecord};

/// Cleans one record into canonical form, or says why it cannot be accepted.
pub fn record(mut rec: SourceRecord) -> Result<SourceRecord, String> {
    rec.source_id = rec.source_id.trim().to_string();
    if rec.source_id.is_empty() {
        return Err("empty id".into());
    }
    rec.url = rec.url.as_deref().and_then(website);
    rec.payload = match rec.payload {
        Payload::Organisation(o) => Payload::Organisation(organisation(o)?),
        Payload::Event(e) => Payload::Event(event(e)?),
    };
    Ok(rec)
}

/// Trims and collapses runs of whitespace; empty → None.
pub fn text(s: &str) -> Option<String> {
    let t = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty()).then_some(t)
}

fn opt_text(s: Option<String>) -> Option<String> {
    s.as_deref().and_then(text)
}

/// Multi-line text: trims each line, keeps paragraph breaks, drops runs of blank lines.
fn long_text(s: Option<String>) -> Option<String> {
    let s = s?;
    let mut out: Vec<String> = Vec::new();
    for line in s.replace("\r\n", "\n").split(['\n', '\r']) {
        let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if l.is_empty() && out.last().is_none_or(|p| p.is_empty()) {
            continue;
        }
        out.push(l);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    (!out.is_empty()).then(|| out.join("\n"))
}

/// Trimmed, without empties, de-duplicated case-insensitively, first spelling and order kept.
fn list(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in v {
        if let Some(c) = text(&c) {
            if !out.iter().any(|o| o.to_lowercase() == c.to_lowercase()) {
                out.push(c);
            }
        }
    }
    out
}

fn organisation(mut o: Organisation) -> Result<Organisation, String> {
    o.name = text(&o.name).ok_or("organisation has no name")?;
    let own_key = name_key(&o.name);
    o.alternate_names = list(o.alternate_names)
        .into_iter()
        .filter(|n| name_key(n) != own_key)
        .collect();
    o.description = long_text(o.description);
    o.description_html = opt_text(o.description_html);
    let ids = &mut o.identifiers;
    ids.charity_number = ids.charity_number.as_deref().and_then(charity_number);
    ids.company_number = ids.company_number.as_deref().and_then(company_number);
    ids.org_id = ids.org_id.as_deref().and_then(org_id);
    o.website = o.website.as_deref().and_then(website);
    o.email = o.email.as_deref().and_then(email);
    o.phone = o.phone.as_deref().and_then(phone);
    o.address.street = opt_text(o.address.street);
    o.address.locality = opt_text(o.address.locality);
    o.address.region = opt_text(o.address.region);
    o.address.postcode = o.address.postcode.as_deref().and_then(postcode);
    o.categories = list(o.categories);
    Ok(o)
}

fn event(mut e: Event) -> Result<Event, String> {
    e.title = text(&e.title).ok_or("event has no title")?;
    if let Some(end) = e.end {
        if end < e.start {
            return Err(format!(
                "end {} is before start {}",
                end.to_rfc3339(),
                e.start.to_rfc3339()
            ));
        }
    }
    e.timezone = match e.timezone.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(
            zone(name)
                .ok_or_else(|| format!("timezone {name:?} is not a known time zone"))?
                .name()
                .to_string(),
        ),
    };
    e.recurrence = match e.recurrence.take() {
        None => None,
        Some(lines) => {
            let lines = recurrence(&lines, e.start, e.timezone.as_deref(), e.all_day)?;
            (!lines.is_empty()).then_some(lines)
        }
    };
    e.description = long_text(e.description);
    e.description_html = opt_text(e.description_html);
    e.location.name = opt_text(e.location.name);
    e.location.address = opt_text(e.location.address);
    e.location.postcode = e.location.postcode.as_deref().and_then(postcode);
    e.location.url = e.location.url.as_deref().and_then(website);
    e.url = e.url.as_deref().and_then(website);
    e.booking_url = e.booking_url.as_deref().and_then(website);
    e.organiser.name = opt_text(e.organiser.name);
    e.organiser.organisation_id = opt_text(e.organiser.organisation_id);
    e.categories = list(e.categories);
    Ok(e)
}

// ---------------------------------------------------------------------------------------------
// Match keys
// ---------------------------------------------------------------------------------------------

/// Pushes `c` (already lower-cased) with the accents common in UK and European names folded to
/// ASCII, so "Café" and "Cafe" match. Letters outside the table are kept as they are.
fn fold_into(c: char, out: &mut String) {
    let folded = match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ð' | 'đ' | 'ď' => "d",
        'è'..='ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ì'..='ï' | 'ī' | 'į' => "i",
        'ł' | 'ľ' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò'..='ö' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'ť' => "t",
        'þ' => "th",
        'ù'..='ü' | 'ū' | 'ů' | 'ű' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        '’' | '‘' | '`' => "'",
        _ => {
            out.push(c);
            return;
        }
    };
    out.push_str(folded);
}

/// Lower-case words with punctuation removed, `&`/`+` as "and", accents folded; apostrophes are
/// dropped inside words so "St John's" and "St Johns" agree.
fn words(s: &str) -> Vec<String> {
    let mut folded = String::with_capacity(s.len());
    for c in s.to_lowercase().chars() {
        match c {
            '&' | '+' => folded.push_str(" and "),
            c => fold_into(c, &mut folded),
        }
    }
    folded
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.replace('\'', ""))
        .filter(|w| !w.is_empty())
        .collect()
}

fn join_key(mut w: Vec<String>) -> String {
    if w.len() > 1 && w.first().is_some_and(|f| f == "the") {
        w.remove(0);
    }
    w.join(" ")
}

/// Match key of an organisation's name: "The Hull Food-Bank & Pantry" → "hull food bank and pantry".
pub fn name_key(name: &str) -> String {
    join_key(words(name))
}

/// Phrases partners wrap around a cross-posted event's title. A bracket group or a label made
/// only of these phrases is decoration; the same words inside a title ("Online safety") are not.
const TITLE_NOISE: &[&str] = &[
    "save the date",
    "webinar",
    "online",
    "virtual",
    "event",
    "free",
    "zoom",
    "on zoom",
    "via zoom",
    "teams",
    "ms teams",
    "microsoft teams",
    "in person",
    "hybrid",
    "new",
    "new date",
    "date change",
    "updated",
    "update",
    "reminder",
    "rescheduled",
    "postponed",
    "cancelled",
    "canceled",
    "book now",
    "booking open",
    "bookings open",
    "last chance to book",
    "limited places",
    "places available",
    "fully booked",
    "sold out",
];

/// Whether `s` is nothing but decoration phrases ("free event", "SAVE THE DATE", "webinar").
fn is_noise(s: &str) -> bool {
    let w = words(s);
    if w.is_empty() {
        return false;
    }
    // reachable[i]: the first i words split into whole noise phrases.
    let mut reachable = vec![false; w.len() + 1];
    reachable[0] = true;
    for i in 0..w.len() {
        if !reachable[i] {
            continue;
        }
        for phrase in TITLE_NOISE {
            let p: Vec<&str> = phrase.split(' ').collect();
            let end = i + p.len();
            if end <= w.len() && w[i..end].iter().map(String::as_str).eq(p.iter().copied()) {
                reachable[end] = true;
            }
        }
    }
    reachable[w.len()]
}

/// Characters that separate a decoration from the title ("Webinar: …", "… - online", "***…***").
fn is_separator(c: char) -> bool {
    matches!(c, ':' | '!' | '*' | '|' | '#' | '~' | '•' | '-' | '–' | '—')
}

/// A dash only separates when it stands apart ("Trustee training - online", not "Re-start").
fn separates(t: &str, i: usize, c: char) -> bool {
    if !matches!(c, '-' | '–' | '—') {
        return true;
    }
    let before = t[..i].chars().next_back();
    let after = t[i + c.len_utf8()..].chars().next();
    before.is_some_and(char::is_whitespace) || after.is_some_and(char::is_whitespace)
}

/// One decoration removed from either end of `t`, if there is one.
fn strip_one_decoration(t: &str) -> Option<&str> {
    const OPEN: [char; 3] = ['(', '[', '{'];
    const CLOSE: [char; 3] = [')', ']', '}'];
    // "[Online] …", "(Webinar) …"
    if t.starts_with(OPEN) {
        if let Some(close) = t.find(CLOSE) {
            if is_noise(&t[1..close]) {
                return Some(&t[close + 1..]);
            }
        }
    }
    // "… (webinar)", "… [FREE EVENT]"
    if t.ends_with(CLOSE) {
        if let Some(open) = t.rfind(OPEN) {
            if is_noise(&t[open + 1..t.len() - 1]) {
                return Some(&t[..open]);
            }
        }
    }
    // "Webinar: …", "SAVE THE DATE *** …", "Online - …"
    if let Some((i, _)) = t
        .char_indices()
        .find(|&(i, c)| is_separator(c) && separates(t, i, c))
    {
        if is_noise(&t[..i]) {
            return Some(&t[i..]);
        }
    }
    // "… - free event", "… | Online"
    if let Some((i, c)) = t
        .char_indices()
        .rev()
        .find(|&(i, c)| is_separator(c) && separates(t, i, c))
    {
        if is_noise(&t[i + c.len_utf8()..]) {
            return Some(&t[..i]);
        }
    }
    None
}

/// Match key of an event title: decorations such as "***SAVE THE DATE***", "Webinar:", "[Online]",
/// "(webinar)" and "- free event" are removed, then the words are compared like names. A title
/// that is only decoration ("Webinar") keeps its words.
pub fn title_key(title: &str) -> String {
    let trim = |s: &str| -> String {
        s.trim_matches(|c: char| c.is_whitespace() || is_separator(c) || c == '.')
            .to_string()
    };
    let mut t = trim(title);
    while let Some(rest) = strip_one_decoration(&t) {
        let rest = trim(rest);
        if words(&rest).is_empty() {
            break;
        }
        t = rest;
    }
    join_key(words(&t))
}

// ---------------------------------------------------------------------------------------------
// Identifiers and contact details
// ---------------------------------------------------------------------------------------------

/// A UK postcode in standard form ("sk116ab" → "SK11 6AB"), or None if it is not one.
pub fn postcode(s: &str) -> Option<String> {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact == "GIR0AA" {
        return Some("GIR 0AA".into());
    }
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    // Inward: a digit and two letters, never C, I, K, M, O or V.
    let inward_ok = match inward.as_bytes() {
        [d, a, b] => {
            d.is_ascii_digit()
                && [a, b]
                    .iter()
                    .all(|l| l.is_ascii_uppercase() && !b"CIKMOV".contains(l))
        }
        _ => false,
    };
    // Outward: A9, A99, AA9, AA99, A9A, AA9A; the first letter is never Q, V or X.
    let ob = outward.as_bytes();
    let letters = ob.iter().take_while(|b| b.is_ascii_uppercase()).count();
    let outward_ok = (1..=2).contains(&letters)
        && ob.first().is_some_and(|f| !b"QVX".contains(f))
        && match &ob[letters..] {
            [d] => d.is_ascii_digit(),
            [d1, d2] => d1.is_ascii_digit() && (d2.is_ascii_digit() || d2.is_ascii_uppercase()),
            _ => false,
        };
    (inward_ok && outward_ok).then(|| format!("{outward} {inward}"))
}

/// The last UK postcode written in free text such as an event's location
/// ("Hull Guildhall, Alfred Gelder Street, Hull HU1 2AA" → "HU1 2AA").
pub fn find_postcode(s: &str) -> Option<String> {
    let tokens: Vec<&str> = s
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '.'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut found = None;
    for (i, tok) in tokens.iter().enumerate() {
        let pair = tokens
            .get(i + 1)
            .filter(|next| next.len() == 3)
            .and_then(|next| postcode(&format!("{tok} {next}")));
        if let Some(p) = pair.or_else(|| (tok.len() >= 5).then(|| postcode(tok)).flatten()) {
            found = Some(p);
        }
    }
    found
}

/// The outward code of a postcode ("SK11 6AB" → "SK11").
pub fn outward_code(pc: &str) -> Option<String> {
    postcode(pc).and_then(|p| p.split(' ').next().map(str::to_string))
}

/// `s` upper-cased from the first place an identifier could start: a word boundary followed by
/// a digit or by one of `prefixes` and a digit. Labels before it ("Registered charity no.",
/// "Company number:", "GB-CHC-") are skipped; None if no such place.
fn identifier_start(s: &str, prefixes: &[&str]) -> Option<String> {
    let upper = s.to_ascii_uppercase();
    let bytes = upper.as_bytes();
    for (i, _) in upper.char_indices() {
        if i > 0 && bytes.get(i - 1).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        let rest = &upper[i..];
        let after_prefix = prefixes
            .iter()
            .find_map(|p| rest.strip_prefix(p))
            .map(|r| r.trim_start_matches(' '));
        let starts_here = rest.starts_with(|c: char| c.is_ascii_digit())
            || after_prefix.is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()));
        if starts_here {
            return Some(rest.to_string());
        }
    }
    None
}

/// A charity number: England & Wales `1234567` (optionally with a `-1` subsidiary number),
/// Scotland `SC012345`, Northern Ireland `NIC100002` (or the older `XR12345`). Labels such as
/// "Registered charity no." and spaces are dropped; the first number in the text is taken.
pub fn charity_number(s: &str) -> Option<String> {
    let rest = identifier_start(s, &["SC", "NIC", "XR"])?;
    let prefix = ["NIC", "SC", "XR"]
        .into_iter()
        .find(|p| rest.starts_with(p))
        .unwrap_or("");
    // The number runs over digits, spaces between digit groups and one subsidiary dash.
    let body: String = rest[prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ' || *c == '-')
        .filter(|c| *c != ' ')
        .collect();
    let body = body.trim_end_matches('-');
    let (main, sub) = match body.split_once('-') {
        Some((m, s)) => (m, Some(s)),
        None => (body, None),
    };
    let digits = |t: &str, range: std::ops::RangeInclusive<usize>| {
        range.contains(&t.len())
            && t.bytes().all(|b| b.is_ascii_digit())
            && t.bytes().any(|b| b != b'0')
    };
    match (prefix, sub) {
        ("SC", None) if digits(main, 6..=6) => Some(format!("SC{main}")),
        ("NIC", None) if digits(main, 5..=6) => Some(format!("NIC{main}")),
        ("XR", None) if digits(main, 4..=6) => Some(format!("XR{main}")),
        ("", None) if digits(main, 6..=7) => Some(main.to_string()),
        ("", Some(sub)) if digits(main, 6..=7) && digits(sub, 1..=3) => {
            Some(format!("{main}-{}", sub.trim_start_matches('0')))
        }
        _ => None,
    }
}

/// Companies House prefixes: Scotland, Northern Ireland, LLPs, LPs, overseas, societies and more.
const COMPANY_PREFIXES: &[&str] = &[
    "SC", "NI", "OC", "SO", "NC", "LP", "SL", "NL", "FC", "SF", "NF", "GE", "IP", "SP", "IC", "SI",
    "NP", "RC", "SR", "NR", "CE", "CS", "PC", "RS", "SA", "NA", "SE", "ES", "OE", "AC", "SZ", "ZC",
];

/// A Companies House number: 8 characters, zero-padded, upper-case prefix (`4321` → `00004321`,
/// `sc123456` → `SC123456`). Labels such as "Company no." are dropped.
pub fn company_number(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("GB-COH"))
        .map_or(t, |_| &t[6..]);
    let rest = identifier_start(t, COMPANY_PREFIXES)?;
    let prefix = COMPANY_PREFIXES
        .iter()
        .find(|p| rest.starts_with(*p))
        .copied()
        .unwrap_or("");
    let digits: String = rest[prefix.len()..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ')
        .filter(|c| *c != ' ')
        .collect();
    if digits.is_empty() || prefix.len() + digits.len() > 8 || digits.bytes().all(|b| b == b'0') {
        return None;
    }
    let width = 8 - prefix.len();
    Some(format!("{prefix}{digits:0>width$}"))
}

/// An org-id.guide identifier (`GB-CHC-1234567`) with an upper-case scheme, or None.
pub fn org_id(s: &str) -> Option<String> {
    let t = s.trim();
    let (scheme, id) = t.rsplit_once('-')?;
    let scheme = scheme.to_ascii_uppercase();
    if !scheme.contains('-')
        || id.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    let id = match scheme.as_str() {
        "GB-CHC" | "GB-SC" | "GB-NIC" => charity_number(id)?,
        "GB-COH" => company_number(id)?,
        _ => id.to_string(),
    };
    Some(format!("{scheme}-{id}"))
}

/// An http(s) URL, with `https://` added when the scheme is missing and the host lower-cased
/// (`www.cvsce.org.uk` → `https://www.cvsce.org.uk/`); None for anything else, including an
/// email address typed into the website column.
pub fn website(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let with_scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
        t.to_string()
    } else if t.contains("://") || lower.starts_with("mailto:") {
        return None;
    } else {
        format!("https://{t}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    match url.host()? {
        // A bare word ("n/a" → host "n") is not a website.
        url::Host::Domain(d) if (!d.contains('.') && d != "localhost") || d.starts_with('.') => {
            None
        }
        _ => Some(url.to_string()),
    }
}

/// A lower-cased email address, or None if it does not look like one. "mailto:" and a display
/// name ("Jo Bloggs <jo@example.org>") are dropped; of several addresses the first is kept.
pub fn email(s: &str) -> Option<String> {
    let candidate = s
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '/'))
        .map(|w| {
            let w = w.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | '.'));
            w.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("mailto:"))
                .map_or(w, |_| &w[7..])
        })
        .find(|w| w.contains('@'))?
        .to_lowercase();
    let (local, domain) = candidate.split_once('@')?;
    let local_ok = !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
    (local_ok && domain_ok).then_some(candidate)
}

/// UK numbers in E.164 (`01625 428 922` → `+441625428922`, `+44 (0)1482 123456` →
/// `+441482123456`); anything else with digits in it is kept trimmed; no digits → None.
pub fn phone(s: &str) -> Option<String> {
    let t = text(s)?;
    let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.is_empty() {
        return None;
    }
    let international = t.starts_with('+') || digits.starts_with("00");
    let national = if international {
        digits
            .trim_start_matches("00")
            .strip_prefix("44")
            // "+44 (0)1625 …": the trunk 0 some people keep in brackets.
            .map(|r| r.strip_prefix('0').unwrap_or(r).to_string())
    } else {
        digits.strip_prefix('0').map(str::to_string)
    };
    // UK national significant numbers are 9 or 10 digits and never start 0, 4 or 6.
    match national {
        Some(n)
            if (9..=10).contains(&n.len())
                && n.starts_with(['1', '2', '3', '5', '7', '8', '9']) =>
        {
            Some(format!("+44{n}"))
        }
        _ => Some(t),
    }
}

// ---------------------------------------------------------------------------------------------
// Time zones and recurrence
// ---------------------------------------------------------------------------------------------

/// Windows zone names (Outlook, Exchange) and Outlook's display names for the zones UK partners'
/// calendars use, mapped to IANA as in CLDR's windowsZones table.
const WINDOWS_ZONES: &[(&str, Tz)] = &[
    ("GMT Standard Time", chrono_tz::Europe::London),
    ("GMT Daylight Time", chrono_tz::Europe::London),
    ("British Summer Time", chrono_tz::Europe::London),
    ("Greenwich Standard Time", chrono_tz::Atlantic::Reykjavik),
    ("UTC", chrono_tz::UTC),
    ("Coordinated Universal Time", chrono_tz::UTC),
    ("W. Europe Standard Time", chrono_tz::Europe::Berlin),
    ("Romance Standard Time", chrono_tz::Europe::Paris),
    ("Central Europe Standard Time", chrono_tz::Europe::Budapest),
    ("Central European Standard Time", chrono_tz::Europe::Warsaw),
    ("E. Europe Standard Time", chrono_tz::Europe::Chisinau),
    ("FLE Standard Time", chrono_tz::Europe::Kiev),
    ("GTB Standard Time", chrono_tz::Europe::Bucharest),
    ("Eastern Standard Time", chrono_tz::America::New_York),
    ("Central Standard Time", chrono_tz::America::Chicago),
    ("Mountain Standard Time", chrono_tz::America::Denver),
    ("Pacific Standard Time", chrono_tz::America::Los_Angeles),
    ("India Standard Time", chrono_tz::Asia::Kolkata),
    ("AUS Eastern Standard Time", chrono_tz::Australia::Sydney),
];

/// Fragments of Outlook's display-name TZIDs ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London").
const DISPLAY_ZONES: &[(&str, Tz)] = &[
    (
        "Dublin, Edinburgh, Lisbon, London",
        chrono_tz::Europe::London,
    ),
    ("Coordinated Universal Time", chrono_tz::UTC),
    ("Amsterdam, Berlin, Bern, Rome", chrono_tz::Europe::Berlin),
    (
        "Brussels, Copenhagen, Madrid, Paris",
        chrono_tz::Europe::Paris,
    ),
];

/// An IANA zone from a partner's zone name: IANA names ("Europe/London"), names some exporters
/// prefix with a path ("/freeassociation.sourceforge.net/Europe/London"), and the Windows names
/// Outlook writes ("GMT Standard Time"). None if the name is none of these.
pub fn zone(name: &str) -> Option<Tz> {
    let name = name.trim().trim_matches('"').trim();
    if name.is_empty() {
        return None;
    }
    if let Ok(tz) = name.parse::<Tz>() {
        return Some(tz);
    }
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    for take in [2, 3] {
        if let Some(tail) = parts.len().checked_sub(take).and_then(|i| parts.get(i..)) {
            if let Ok(tz) = tail.join("/").parse::<Tz>() {
                return Some(tz);
            }
        }
    }
    WINDOWS_ZONES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .or_else(|| DISPLAY_ZONES.iter().find(|(n, _)| name.contains(n)))
        .map(|(_, tz)| *tz)
}

/// A local wall-clock time in `tz`, refusing the times a clock change skips or repeats: for
/// partners who can give a UTC offset instead, guessing would be worse than asking.
pub fn localise(naive: NaiveDateTime, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => Ok(t.fixed_offset()),
        chrono::LocalResult::Ambiguous(a, b) => Err(format!(
            "{} happens twice in {} (the clocks go back); give it with its UTC offset, {} or {}",
            naive.format("%Y-%m-%d %H:%M"),
            tz.name(),
            a.fixed_offset().to_rfc3339(),
            b.fixed_offset().to_rfc3339()
        )),
        chrono::LocalResult::None => Err(format!(
            "{} does not exist in {} (the clocks go forward)",
            naive.format("%Y-%m-%d %H:%M"),
            tz.name()
        )),
    }
}

/// The zone to record for a time given only with a numeric offset: Europe/London when the offset
/// is London's at that instant (UK partners rarely name their zone, and a weekly series must
/// follow BST), else none.
pub fn zone_for_offset(t: DateTime<FixedOffset>) -> Option<Tz> {
    let london = chrono_tz::Europe::London;
    (t.with_timezone(&london).fixed_offset().offset() == t.offset()).then_some(london)
}

/// Splits a content line into its name-and-parameters part and its value at the first colon
/// outside double quotes (a quoted TZID may hold colons: `"(UTC+00:00) London"`).
fn split_content_line(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

/// Parameters of a content line head (`EXDATE;TZID=Europe/London;VALUE=DATE-TIME`), unquoted.
fn split_params(head: &str) -> (String, Vec<(String, Option<String>)>) {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in head.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    let mut parts = parts.into_iter();
    let name = parts.next().unwrap_or_default().trim().to_ascii_uppercase();
    let params = parts
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (
                k.trim().to_ascii_uppercase(),
                Some(v.trim().trim_matches('"').to_string()),
            ),
            None => (p.trim().to_ascii_uppercase(), None),
        })
        .collect();
    (name, params)
}

/// A content line rebuilt from its parts, quoting parameter values that need it (RFC 5545 3.2).
pub fn content_line(name: &str, params: &[(String, Option<String>)], value: &str) -> String {
    let mut line = name.to_string();
    for (k, v) in params {
        line.push(';');
        line.push_str(k);
        if let Some(v) = v {
            line.push('=');
            if v.contains([':', ';', ',']) {
                line.push('"');
                line.push_str(v);
                line.push('"');
            } else {
                line.push_str(v);
            }
        }
    }
    line.push(':');
    line.push_str(value);
    line
}

/// The RFC 5545 form a series' DTSTART takes when we publish it, which fixes the form its
/// UNTIL must take (3.3.10): a DATE for all-day events, else a UTC date-time.
enum StartForm {
    Date(NaiveDate),
    Zoned(Tz, NaiveDateTime),
    Utc(NaiveDateTime),
}

impl StartForm {
    fn new(start: DateTime<FixedOffset>, tz: Option<Tz>, all_day: bool) -> StartForm {
        match tz {
            Some(tz) if all_day => StartForm::Date(start.with_timezone(&tz).date_naive()),
            None if all_day => StartForm::Date(start.date_naive()),
            Some(tz) if tz != chrono_tz::UTC => {
                StartForm::Zoned(tz, start.with_timezone(&tz).naive_local())
            }
            _ => StartForm::Utc(start.naive_utc()),
        }
    }

    fn dtstart(&self) -> String {
        match self {
            StartForm::Date(d) => format!("DTSTART;VALUE=DATE:{}", d.format("%Y%m%d")),
            StartForm::Zoned(tz, t) => {
                format!("DTSTART;TZID={}:{}", tz.name(), t.format("%Y%m%dT%H%M%S"))
            }
            StartForm::Utc(t) => format!("DTSTART:{}Z", t.format("%Y%m%dT%H%M%S")),
        }
    }

    /// UNTIL in the form this start needs. Partners often write it as a local time or a date
    /// where a UTC time is required; its meaning is plain, so it is rewritten, not refused.
    fn until(&self, v: &str) -> Result<String, String> {
        let v = v.trim();
        let bad = || format!("UNTIL={v} is not a date or date-time");
        if matches!(self, StartForm::Date(_)) || v.ends_with(['Z', 'z']) {
            return Ok(v.to_ascii_uppercase());
        }
        let local: NaiveDateTime = if v.len() == 8 {
            // A date means "until the end of that day".
            let d = NaiveDate::parse_from_str(v, "%Y%m%d").map_err(|_| bad())?;
            d.succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t - Duration::seconds(1))
                .ok_or_else(bad)?
        } else {
            NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").map_err(|_| bad())?
        };
        let utc: DateTime<Utc> = match self {
            StartForm::Zoned(tz, _) => tz
                .from_local_datetime(&local)
                .latest()
                .map(|t| t.with_timezone(&Utc))
                // In a skipped hour: an hour later is unambiguous and still "until then".
                .or_else(|| {
                    tz.from_local_datetime(&(local + Duration::hours(1)))
                        .latest()
                        .map(|t| t.with_timezone(&Utc))
                })
                .ok_or_else(bad)?,
            _ => local.and_utc(),
        };
        Ok(utc.format("%Y%m%dT%H%M%SZ").to_string())
    }
}

/// Canonical recurrence lines for an event starting at `start` in `timezone`: names upper-cased,
/// TZID parameters resolved to IANA names, an RRULE's UNTIL put in the form its DTSTART needs;
/// then the whole set is checked with the `rrule` crate. Err says which line is wrong and why.
/// EXDATEs with nothing to exclude from (no RRULE or RDATE) mean nothing and are dropped.
pub fn recurrence(
    lines: &[String],
    start: DateTime<FixedOffset>,
    timezone: Option<&str>,
    all_day: bool,
) -> Result<Vec<String>, String> {
    let tz = timezone.and_then(zone);
    let form = StartForm::new(start, tz, all_day);
    let mut out = Vec::new();
    for raw in lines {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let (head, value) = split_content_line(raw)
            .ok_or_else(|| format!("recurrence line {raw:?} has no ':' (RRULE:FREQ=…)"))?;
        let (name, mut params) = split_params(head);
        let value = value.trim();
        match name.as_str() {
            "RRULE" => {
                let mut parts = Vec::new();
                for part in value.split(';').filter(|p| !p.trim().is_empty()) {
                    match part.split_once('=') {
                        Some((k, v)) if k.trim().eq_ignore_ascii_case("UNTIL") => {
                            parts.push(format!("UNTIL={}", form.until(v)?));
                        }
                        // Rule parts are case-insensitive tokens; calendars expect them upper-case.
                        Some((k, v)) => parts.push(format!(
                            "{}={}",
                            k.trim().to_ascii_uppercase(),
                            v.trim().to_ascii_uppercase()
                        )),
                        None => return Err(format!("RRULE {value:?}: {part:?} is not NAME=VALUE")),
                    }
                }
                out.push(content_line("RRULE", &params, &parts.join(";")));
            }
            "RDATE" | "EXDATE" => {
                for (k, v) in params.iter_mut() {
                    if k == "TZID" {
                        let given = v.clone().unwrap_or_default();
                        let tz = zone(&given).ok_or_else(|| {
                            format!("{name} has an unknown time zone TZID={given:?}")
                        })?;
                        *v = Some(tz.name().to_string());
                    }
                }
                out.push(content_line(&name, &params, value));
            }
            _ => {
                return Err(format!(
                    "recurrence line {raw:?} is not an RRULE, RDATE or EXDATE line"
                ))
            }
        }
    }
    if !out
        .iter()
        .any(|l| l.starts_with("RRULE") || l.starts_with("RDATE"))
    {
        return Ok(Vec::new());
    }
    let dtstart = form.dtstart();
    let check = |lines: &[&String]| -> Result<(), String> {
        let text = std::iter::once(&dtstart)
            .chain(lines.iter().copied())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n");
        text.parse::<rrule::RRuleSet>()
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    if let Err(whole) = check(&out.iter().collect::<Vec<_>>()) {
        // Name the line at fault: each generator alone, then each EXDATE with the generators.
        let (exdates, generators): (Vec<&String>, Vec<&String>) =
            out.iter().partition(|l| l.starts_with("EXDATE"));
        for line in &generators {
            if let Err(e) = check(&[line]) {
                return Err(format!("{line:?} is invalid: {e}"));
            }
        }
        for line in exdates {
            let mut with = generators.clone();
            with.push(line);
            if let Err(e) = check(&with) {
                return Err(format!("{line:?} is invalid: {e}"));
            }
        }
        return Err(format!("recurrence is invalid: {whole}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventStatus, Location, Organiser};

    #[test]
    fn postcodes() {
        assert_eq!(postcode("sk11 6ab").as_deref(), Some("SK11 6AB"));
        assert_eq!(postcode("HU32AA").as_deref(), Some("HU3 2AA"));
        assert_eq!(postcode(" cw1  2bj ").as_deref(), Some("CW1 2BJ"));
        assert_eq!(postcode("EC1A1BB").as_deref(), Some("EC1A 1BB"));
        assert_eq!(postcode("W1A 0AX").as_deref(), Some("W1A 0AX"));
        assert_eq!(postcode("gir0aa").as_deref(), Some("GIR 0AA"));
        assert_eq!(postcode("not a postcode"), None);
        assert_eq!(postcode("12345"), None);
        assert_eq!(postcode("SK11 AAB"), None);
        assert_eq!(postcode("SK11 6AC"), None, "C never ends a postcode");
        assert_eq!(postcode("QK11 6AB"), None, "Q never starts one");
        assert_eq!(postcode("SK11 6AB 7"), None);
        assert_eq!(postcode("SK11 6ÄB"), None);
        assert_eq!(postcode(""), None);
    }

    #[test]
    fn postcodes_found_in_addresses() {
        assert_eq!(
            find_postcode("Hull Guildhall, Alfred Gelder Street, Hull, HU1 2AA").as_deref(),
            Some("HU1 2AA")
        );
        assert_eq!(
            find_postcode("Town Hall, Macclesfield sk10 1ea").as_deref(),
            Some("SK10 1EA")
        );
        assert_eq!(
            find_postcode("Goodwin Centre (HU32HQ)").as_deref(),
            Some("HU3 2HQ")
        );
        assert_eq!(find_postcode("Online (Zoom)"), None);
        assert_eq!(find_postcode("Room 12, 3rd floor"), None);
    }

    #[test]
    fn charity_numbers() {
        assert_eq!(charity_number("1123456").as_deref(), Some("1123456"));
        assert_eq!(charity_number("220949").as_deref(), Some("220949"));
        assert_eq!(
            charity_number("Registered charity no. 1123456").as_deref(),
            Some("1123456")
        );
        assert_eq!(
            charity_number("Registered Charity Number: 1 123 456").as_deref(),
            Some("1123456")
        );
        assert_eq!(
            charity_number("Reg Charity No 1123456 (England and Wales)").as_deref(),
            Some("1123456")
        );
        assert_eq!(charity_number("1123456-1").as_deref(), Some("1123456-1"));
        assert_eq!(charity_number("sc012345").as_deref(), Some("SC012345"));
        assert_eq!(
            charity_number("Scottish Charity No. SC 012345").as_deref(),
            Some("SC012345")
        );
        assert_eq!(charity_number("NIC100002").as_deref(), Some("NIC100002"));
        assert_eq!(charity_number("GB-CHC-1123456").as_deref(), Some("1123456"));
        assert_eq!(
            charity_number("1123456 and SC012345").as_deref(),
            Some("1123456"),
            "dual-registered: the first number"
        );
        assert_eq!(charity_number("12345"), None);
        assert_eq!(charity_number("0000000"), None);
        assert_eq!(charity_number("exempt"), None);
        assert_eq!(charity_number("Not a charity"), None);
        assert_eq!(charity_number("SC12"), None);
        assert_eq!(charity_number(""), None);
    }

    #[test]
    fn company_numbers() {
        assert_eq!(company_number("4321").as_deref(), Some("00004321"));
        assert_eq!(company_number("01234567").as_deref(), Some("01234567"));
        assert_eq!(company_number("sc123456").as_deref(), Some("SC123456"));
        assert_eq!(company_number("OC 301234").as_deref(), Some("OC301234"));
        assert_eq!(company_number("ni 12345").as_deref(), Some("NI012345"));
        assert_eq!(
            company_number("Company No. 4321").as_deref(),
            Some("00004321")
        );
        assert_eq!(
            company_number("Registered in England no. 01234567").as_deref(),
            Some("01234567")
        );
        assert_eq!(company_number("GB-COH-4321").as_deref(), Some("00004321"));
        assert_eq!(company_number("123456789"), None);
        assert_eq!(company_number("SC1234567"), None);
        assert_eq!(company_number("00000000"), None);
        assert_eq!(company_number("n/a"), None);
        assert_eq!(company_number(""), None);
    }

    #[test]
    fn org_ids() {
        assert_eq!(org_id("gb-chc-1123456").as_deref(), Some("GB-CHC-1123456"));
        assert_eq!(org_id("GB-COH-4321").as_deref(), Some("GB-COH-00004321"));
        assert_eq!(org_id("GB-SC-SC012345").as_deref(), Some("GB-SC-SC012345"));
        assert_eq!(org_id("1123456"), None);
        assert_eq!(org_id("GB-CHC-none"), None);
    }

    #[test]
    fn name_keys() {
        assert_eq!(
            name_key("The Hull Food-Bank & Pantry"),
            "hull food bank and pantry"
        );
        assert_eq!(name_key("Child Dynamix"), name_key("CHILD DYNAMIX."));
        assert_eq!(name_key("Café Rêve"), "cafe reve");
        assert_eq!(name_key("St John’s  Ambulance"), "st johns ambulance");
        assert_eq!(name_key("Cymdeithas Gŵyl"), "cymdeithas gwyl");
        assert_eq!(name_key("Straße"), "strasse");
        assert_eq!(
            name_key("Age UK Cheshire + Wirral"),
            "age uk cheshire and wirral"
        );
        assert_eq!(name_key("The"), "the", "a name that is only 'the' is kept");
        assert_eq!(name_key("  "), "");
    }

    #[test]
    fn title_keys_strip_cross_post_decoration() {
        let plain = "next steps in developing anchor institutions in our region";
        for t in [
            "Webinar:  Next Steps in Developing Anchor Institutions in our Region",
            "NEXT STEPS IN DEVELOPING ANCHOR INSTITUTIONS IN OUR REGION (webinar)",
            "***SAVE THE DATE*** Webinar:  Next Steps in Developing Anchor Institutions in our Region",
            "Save the date: Next Steps in Developing Anchor Institutions in Our Region",
            "[Online] Next steps in developing anchor institutions in our region",
            "Next steps in developing anchor institutions in our region - online",
            "Next steps in developing anchor institutions in our region – Free Event",
            "CANCELLED: Next steps in developing anchor institutions in our region",
        ] {
            assert_eq!(title_key(t), plain, "{t}");
        }
        assert_eq!(
            title_key("Online: Trustee training - free event"),
            "trustee training"
        );
        assert_eq!(title_key("The Big Lunch"), "big lunch");
    }

    #[test]
    fn title_keys_keep_meaningful_words() {
        assert_eq!(title_key("Webinar"), "webinar", "only decoration: kept");
        assert_eq!(title_key("(Online)"), "online");
        assert_eq!(
            title_key("Online safety for parents"),
            "online safety for parents"
        );
        assert_eq!(
            title_key("Free legal advice clinic"),
            "free legal advice clinic"
        );
        assert_eq!(
            title_key("HCV Social Prescribing Network – winter meeting"),
            "hcv social prescribing network winter meeting"
        );
        assert_eq!(
            title_key("Re-start: a new chapter"),
            "re start a new chapter"
        );
        assert_eq!(title_key("Volunteers' Week"), "volunteers week");
        assert_eq!(title_key(""), "");
    }

    #[test]
    fn websites() {
        assert_eq!(
            website("www.cvsce.org.uk").as_deref(),
            Some("https://www.cvsce.org.uk/")
        );
        assert_eq!(
            website("HTTP://Example.ORG/Path").as_deref(),
            Some("http://example.org/Path")
        );
        assert_eq!(
            website(" WWW.Crewe.Foodbank.org.uk/about?x=1 ").as_deref(),
            Some("https://www.crewe.foodbank.org.uk/about?x=1")
        );
        assert_eq!(website("ftp://x.org"), None);
        assert_eq!(website("n/a"), None);
        assert_eq!(website("info@cvsce.org.uk"), None);
        assert_eq!(website("mailto:info@cvsce.org.uk"), None);
        assert_eq!(website("see our facebook page"), None);
        assert_eq!(website(""), None);
    }

    #[test]
    fn emails() {
        assert_eq!(
            email(" Info@Example.org ").as_deref(),
            Some("info@example.org")
        );
        assert_eq!(
            email("MAILTO:events@cvsce.org.uk").as_deref(),
            Some("events@cvsce.org.uk")
        );
        assert_eq!(
            email("Jo Bloggs <Jo.Bloggs@hullcvs.org.uk>").as_deref(),
            Some("jo.bloggs@hullcvs.org.uk")
        );
        assert_eq!(
            email("info@a.org.uk; admin@a.org.uk").as_deref(),
            Some("info@a.org.uk")
        );
        assert_eq!(email("info at example"), None);
        assert_eq!(email("info@example"), None);
        assert_eq!(email("@example.org"), None);
        assert_eq!(email("a..b@example.org"), None);
        assert_eq!(email("a@b@example.org"), None);
        assert_eq!(email("a@-x.org"), None);
        assert_eq!(email(""), None);
    }

    #[test]
    fn phones() {
        assert_eq!(phone("01625 428 922").as_deref(), Some("+441625428922"));
        assert_eq!(
            phone("+44 (0)1482 123456").as_deref(),
            Some("+441482123456")
        );
        assert_eq!(phone("0044 1482 123456").as_deref(), Some("+441482123456"));
        assert_eq!(phone("07700 900123").as_deref(), Some("+447700900123"));
        assert_eq!(phone("0808 000 0202").as_deref(), Some("+448080000202"));
        assert_eq!(phone("Tel: 01482-123456").as_deref(), Some("+441482123456"));
        assert_eq!(
            phone("0800 1111").as_deref(),
            Some("0800 1111"),
            "too short: kept"
        );
        assert_eq!(
            phone("01625 428922 ext. 12").as_deref(),
            Some("01625 428922 ext. 12")
        );
        assert_eq!(
            phone(" +1  202 555 0100 ").as_deref(),
            Some("+1 202 555 0100")
        );
        assert_eq!(phone("n/a"), None);
        assert_eq!(phone("  "), None);
    }

    #[test]
    fn zones() {
        assert_eq!(zone("Europe/London"), Some(chrono_tz::Europe::London));
        assert_eq!(zone("GMT Standard Time"), Some(chrono_tz::Europe::London));
        assert_eq!(
            zone("\"gmt standard time\""),
            Some(chrono_tz::Europe::London)
        );
        assert_eq!(
            zone("(UTC+00:00) Dublin, Edinburgh, Lisbon, London"),
            Some(chrono_tz::Europe::London)
        );
        assert_eq!(
            zone("/freeassociation.sourceforge.net/Tzfile/Europe/London"),
            Some(chrono_tz::Europe::London)
        );
        assert_eq!(
            zone("/citadel.org/20250101_1/America/Argentina/Buenos_Aires"),
            Some(chrono_tz::America::Argentina::Buenos_Aires)
        );
        assert_eq!(zone("Mars/Olympus"), None);
        assert_eq!(zone(""), None);
    }

    #[test]
    fn local_times_in_clock_changes_are_refused() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        let london = chrono_tz::Europe::London;
        assert_eq!(
            localise(at("2027-07-10 10:00"), london)
                .unwrap()
                .to_rfc3339(),
            "2027-07-10T10:00:00+01:00"
        );
        let gap = localise(at("2027-03-28 01:30"), london).unwrap_err();
        assert!(gap.contains("does not exist"), "{gap}");
        let twice = localise(at("2027-10-31 01:30"), london).unwrap_err();
        assert!(
            twice.contains("twice") && twice.contains("+01:00"),
            "{twice}"
        );
    }

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn recurrence_is_validated_and_canonical() {
        let start = t("2027-01-05T10:00:00+00:00");
        let ok = recurrence(
            &lines(&[
                "rrule:freq=weekly;byday=TU;until=20270629",
                "EXDATE;TZID=GMT Standard Time:20270112T100000",
                "",
            ]),
            start,
            Some("Europe/London"),
            false,
        )
        .unwrap();
        assert_eq!(
            ok,
            vec![
                // A date UNTIL on a zoned series means the end of that local day, in UTC.
                "RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T225959Z",
                "EXDATE;TZID=Europe/London:20270112T100000",
            ]
        );
        let local_until = recurrence(
            &lines(&["RRULE:FREQ=WEEKLY;UNTIL=20270301T100000"]),
            start,
            Some("Europe/London"),
            false,
        )
        .unwrap();
        assert_eq!(
            local_until,
            vec!["RRULE:FREQ=WEEKLY;UNTIL=20270301T100000Z"]
        );
        let all_day = recurrence(
            &lines(&[
                "RRULE:FREQ=YEARLY;UNTIL=20300101",
                "EXDATE;VALUE=DATE:20280101",
            ]),
            t("2027-01-01T00:00:00+00:00"),
            Some("Europe/London"),
            true,
        )
        .unwrap();
        assert_eq!(
            all_day,
            vec![
                "RRULE:FREQ=YEARLY;UNTIL=20300101",
                "EXDATE;VALUE=DATE:20280101"
            ]
        );
        let quoted = recurrence(
            &lines(&[
                "RRULE:FREQ=DAILY;COUNT=3",
                "EXDATE;TZID=\"(UTC+00:00) Dublin, Edinburgh, Lisbon, London\":20270106T100000",
            ]),
            start,
            Some("Europe/London"),
            false,
        )
        .unwrap();
        assert_eq!(quoted[1], "EXDATE;TZID=Europe/London:20270106T100000");
    }

    #[test]
    fn bad_recurrence_names_the_line() {
        let start = t("2027-01-05T10:00:00+00:00");
        let check = |v: &[&str]| recurrence(&lines(v), start, Some("Europe/London"), false);
        let e = check(&["RRULE:FREQ=SOMETIMES"]).unwrap_err();
        assert!(
            e.contains("FREQ=SOMETIMES") && e.contains("SOMETIMES"),
            "{e}"
        );
        let e = check(&["RRULE:FREQ=WEEKLY;BYDAY=XX"]).unwrap_err();
        assert!(e.contains("XX"), "{e}");
        let e = check(&[
            "RRULE:FREQ=WEEKLY",
            "EXDATE;TZID=Mars/Olympus:20270112T100000",
        ])
        .unwrap_err();
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = check(&["EXRULE:FREQ=WEEKLY"]).unwrap_err();
        assert!(e.contains("not an RRULE"), "{e}");
        let e = check(&["FREQ=WEEKLY"]).unwrap_err();
        assert!(e.contains("no ':'"), "{e}");
        assert_eq!(
            check(&["EXDATE:20270112T100000Z"]).unwrap(),
            Vec::<String>::new()
        );
    }

    fn org(name: &str) -> SourceRecord {
        SourceRecord {
            source_id: " 7 ".into(),
            url: Some("cvsce.org.uk/members/7".into()),
            updated_at: None,
            payload: Payload::Organisation(Organisation {
                name: name.into(),
                alternate_names: vec![
                    "HULL CVS".into(),
                    "Hull Council for Voluntary Service".into(),
                ],
                description: Some("  First   line \r\n\r\n\r\n  second line  \n".into()),
                identifiers: crate::model::Identifiers {
                    charity_number: Some("Registered charity no. 1123456".into()),
                    company_number: Some("4321".into()),
                    org_id: None,
                },
                website: Some("WWW.HullCVS.org.uk".into()),
                email: Some("Info@HullCVS.org.uk".into()),
                phone: Some("01482 123 456".into()),
                address: crate::model::Address {
                    street: Some("  ".into()),
                    locality: Some(" Hull ".into()),
                    region: None,
                    postcode: Some("hu1 2aa".into()),
                },
                categories: vec!["Youth ".into(), "youth".into(), "".into(), "Advice".into()],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn organisations_are_cleaned() {
        let ok = record(org("  Hull   CVS ")).unwrap();
        assert_eq!(ok.source_id, "7");
        assert_eq!(ok.url.as_deref(), Some("https://cvsce.org.uk/members/7"));
        let Payload::Organisation(o) = ok.payload else {
            panic!("not an organisation")
        };
        assert_eq!(o.name, "Hull CVS");
        assert_eq!(
            o.alternate_names,
            vec!["Hull Council for Voluntary Service"]
        );
        assert_eq!(o.description.as_deref(), Some("First line\n\nsecond line"));
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1123456"));
        assert_eq!(o.identifiers.company_number.as_deref(), Some("00004321"));
        assert_eq!(o.website.as_deref(), Some("https://www.hullcvs.org.uk/"));
        assert_eq!(o.email.as_deref(), Some("info@hullcvs.org.uk"));
        assert_eq!(o.phone.as_deref(), Some("+441482123456"));
        assert_eq!(o.address.street, None);
        assert_eq!(o.address.locality.as_deref(), Some("Hull"));
        assert_eq!(o.address.postcode.as_deref(), Some("HU1 2AA"));
        assert_eq!(o.categories, vec!["Youth", "Advice"]);
    }

    #[test]
    fn organisations_without_a_name_are_rejected_but_bad_details_are_dropped() {
        assert!(record(org("   ")).unwrap_err().contains("no name"));
        let mut bad = org("Crewe Foodbank");
        if let Payload::Organisation(o) = &mut bad.payload {
            o.address.postcode = Some("CW1".into());
            o.website = Some("n/a".into());
            o.email = Some("none".into());
        }
        let Payload::Organisation(o) = record(bad).unwrap().payload else {
            panic!("not an organisation")
        };
        assert_eq!((o.address.postcode, o.website, o.email), (None, None, None));
        let mut no_id = org("x");
        no_id.source_id = "  ".into();
        assert!(record(no_id).is_err());
    }

    fn ev(title: &str, start: &str, end: Option<&str>) -> SourceRecord {
        SourceRecord {
            source_id: "e1".into(),
            url: None,
            updated_at: None,
            payload: Payload::Event(Event {
                title: title.into(),
                description: None,
                description_html: None,
                start: t(start),
                end: end.map(t),
                timezone: Some("GMT Standard Time".into()),
                all_day: false,
                recurrence: Some(lines(&["RRULE:FREQ=WEEKLY;BYDAY=TU", " "])),
                status: EventStatus::Scheduled,
                location: Location {
                    name: Some(" Hull  Guildhall ".into()),
                    postcode: Some("hu12aa".into()),
                    ..Default::default()
                },
                url: Some("hullvcse.org.uk/e/1".into()),
                booking_url: Some("not a url".into()),
                organiser: Organiser::default(),
                categories: vec!["Funding".into(), "FUNDING".into()],
            }),
        }
    }

    #[test]
    fn events_are_cleaned_or_rejected() {
        let rec = record(ev(
            " Funding  fair ",
            "2027-01-05T10:00:00+00:00",
            Some("2027-01-05T12:00:00+00:00"),
        ))
        .unwrap();
        let Payload::Event(e) = rec.payload else {
            panic!("not an event")
        };
        assert_eq!(e.title, "Funding fair");
        assert_eq!(e.timezone.as_deref(), Some("Europe/London"));
        assert_eq!(e.recurrence, Some(lines(&["RRULE:FREQ=WEEKLY;BYDAY=TU"])));
        assert_eq!(e.location.name.as_deref(), Some("Hull Guildhall"));
        assert_eq!(e.location.postcode.as_deref(), Some("HU1 2AA"));
        assert_eq!(e.url.as_deref(), Some("https://hullvcse.org.uk/e/1"));
        assert_eq!(e.booking_url, None);
        assert_eq!(e.categories, vec!["Funding"]);

        assert!(record(ev(" ", "2027-01-05T10:00:00+00:00", None))
            .unwrap_err()
            .contains("no title"));
        let backwards = record(ev(
            "Fair",
            "2027-01-05T10:00:00+00:00",
            Some("2027-01-05T09:00:00+00:00"),
        ))
        .unwrap_err();
        assert!(backwards.contains("before start"), "{backwards}");
        let mut zoneless = ev("Fair", "2027-01-05T10:00:00+00:00", None);
        if let Payload::Event(e) = &mut zoneless.payload {
            e.timezone = Some("Mars/Olympus".into());
        }
        assert!(record(zoneless).unwrap_err().contains("Mars/Olympus"));
        let mut bad_rule = ev("Fair", "2027-01-05T10:00:00+00:00", None);
        if let Payload::Event(e) = &mut bad_rule.payload {
            e.recurrence = Some(lines(&["RRULE:FREQ=FORTNIGHTLY"]));
        }
        assert!(record(bad_rule).unwrap_err().contains("FORTNIGHTLY"));
    }

    #[test]
    fn offsets_that_are_london_get_its_zone() {
        let london = Some(chrono_tz::Europe::London);
        assert_eq!(zone_for_offset(t("2027-01-05T10:00:00+00:00")), london);
        assert_eq!(zone_for_offset(t("2027-07-05T10:00:00+01:00")), london);
        assert_eq!(zone_for_offset(t("2027-07-05T10:00:00+00:00")), None);
        assert_eq!(zone_for_offset(t("2027-01-05T10:00:00+02:00")), None);
    }
}
