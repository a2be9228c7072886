//! Normalise: pure functions that clean a partner's record into canonical form (trimmed text, UK
//! postcodes, charity and company numbers, URLs, emails, E.164 phones) and derive the match keys
//! dedupe compares (names and titles with case, punctuation and decoration removed).

use crate::ingest::{geo, html};
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
    for line in s.replace("\r\n", "\n").split('\n') {
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

/// Short texts (categories, alternate names) as text, blanks and case-insensitive repeats dropped.
fn list(v: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in v {
        if let Some(c) = text(&markup_free(c)) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&c)) {
                out.push(c);
            }
        }
    }
    out
}

fn organisation(mut o: Organisation) -> Result<Organisation, String> {
    o.name = text(&markup_free(o.name)).ok_or("organisation has no name")?;
    o.alternate_names = list(o.alternate_names)
        .into_iter()
        .filter(|n| name_key(n) != name_key(&o.name))
        .collect();
    (o.description, o.description_html) = descriptions(o.description, o.description_html);
    o.identifiers.charity_number = o
        .identifiers
        .charity_number
        .as_deref()
        .and_then(charity_number);
    o.identifiers.company_number = o
        .identifiers
        .company_number
        .as_deref()
        .and_then(company_number);
    o.identifiers.org_id = o.identifiers.org_id.as_deref().and_then(org_id);
    o.website = o.website.as_deref().and_then(website);
    o.email = o.email.map(markup_free).as_deref().and_then(email);
    o.phone = o.phone.map(markup_free).as_deref().and_then(phone);
    o.address.street = short_text(o.address.street);
    o.address.locality = short_text(o.address.locality);
    o.address.region = short_text(o.address.region);
    o.address.postcode = o.address.postcode.as_deref().and_then(postcode);
    // Adapters check points as they read them; this holds for formats that deserialise straight.
    (o.address.latitude, o.address.longitude) =
        geo::kept(o.address.latitude, o.address.longitude).unzip();
    o.categories = list(o.categories);
    Ok(o)
}

/// A title, name or other short field with any markup or entities a CMS left in it turned into
/// plain text, as detected by an HTML tokenizer.
fn markup_free(s: String) -> String {
    if html::has_markup(&s) {
        html::inline_text(&s)
    } else {
        s
    }
}

fn short_text(s: Option<String>) -> Option<String> {
    opt_text(s.map(markup_free))
}

/// Plain and HTML descriptions as we republish them: HTML sanitised, and plain text always
/// present when either is, rendered from the sanitised HTML. A "plain" description in which an
/// HTML tokenizer finds markup is treated as markup: sanitised into the HTML when the partner
/// gave none, and rendered to text either way, so `description` never carries markup.
fn descriptions(plain: Option<String>, markup: Option<String>) -> (Option<String>, Option<String>) {
    let plain = long_text(plain);
    let (plain, markup) = match (plain, opt_text(markup)) {
        (Some(p), None) if html::has_markup(&p) => (None, Some(p)),
        (Some(p), Some(m)) if html::has_markup(&p) => (long_text(Some(plain_of(&p))), Some(m)),
        other => other,
    };
    let markup = markup
        .map(|m| html::sanitise(&m))
        .filter(|m| !m.trim().is_empty());
    let plain = plain.or_else(|| long_text(markup.as_deref().map(plain_of)));
    (plain, markup)
}

/// Multi-line text of some markup, rendered until no markup is left in it (escaped markup that
/// one rendering decodes is rendered again), so `description` never holds a tag.
fn plain_of(markup: &str) -> String {
    let mut text = html::to_text(markup);
    for _ in 0..3 {
        if !html::has_markup(&text) {
            return text;
        }
        text = html::to_text(&text);
    }
    if html::has_markup(&text) {
        text = text.replace('<', "‹").replace('&', "＆");
    }
    text
}

fn event(mut e: Event) -> Result<Event, String> {
    // An event given no title stays untitled (an iCalendar VEVENT without SUMMARY is listable;
    // formats that require a title reject a record without one themselves). A title given but
    // made of nothing but markup is a broken record, not an untitled one.
    let given = !e.title.trim().is_empty();
    e.title = match text(&markup_free(e.title)) {
        Some(t) => t,
        None if !given => String::new(),
        None => return Err("event title holds nothing but markup".into()),
    };
    if let Some(end) = e.end {
        if end < e.start {
            return Err(format!(
                "end {} is before start {}",
                end.to_rfc3339(),
                e.start.to_rfc3339()
            ));
        }
    }
    (e.description, e.description_html) = descriptions(e.description, e.description_html);
    e.location.name = short_text(e.location.name);
    e.location.address = short_text(e.location.address);
    e.location.postcode = e.location.postcode.as_deref().and_then(postcode);
    e.location.url = e.location.url.as_deref().and_then(website);
    (e.location.latitude, e.location.longitude) =
        geo::kept(e.location.latitude, e.location.longitude).unzip();
    e.url = e.url.as_deref().and_then(website);
    e.booking_url = e.booking_url.as_deref().and_then(website);
    e.organiser.name = short_text(e.organiser.name);
    e.categories = list(e.categories);
    e.recurrence = e
        .recurrence
        .map(|r| r.into_iter().filter_map(|l| text(&l)).collect::<Vec<_>>())
        .filter(|r| !r.is_empty());
    Ok(e)
}

/// Folds the accented letters common in UK names to ASCII, so "Café" and "Cafe" match.
fn fold(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ñ' | 'ń' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ý' | 'ÿ' | 'ŵ' | 'ŷ' => {
            if c == 'ŵ' {
                'w'
            } else {
                'y'
            }
        }
        '’' | '‘' | '\'' => '\'',
        other => other,
    }
}

/// Lower-case words with punctuation removed, `&` as "and", accents folded.
fn words(s: &str) -> Vec<String> {
    let lowered: String = s.to_lowercase().chars().map(fold).collect();
    let spaced = lowered.replace(['&', '+'], " and ");
    spaced
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.replace('\'', ""))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Match key of an organisation's name: "The Hull Food-Bank & Pantry" → "hull food bank and pantry".
pub fn name_key(name: &str) -> String {
    let mut w = words(name);
    if w.first().is_some_and(|f| f == "the") && w.len() > 1 {
        w.remove(0);
    }
    w.join(" ")
}

/// Decorations partners add around a cross-posted event's title.
const TITLE_NOISE: &[&str] = &[
    "save the date",
    "webinar",
    "online event",
    "online",
    "virtual event",
    "virtual",
    "free event",
    "free",
    "new date",
    "reminder",
    "last chance to book",
    "book now",
    "event",
];

/// Match key of an event title: decorations like "***SAVE THE DATE***", "Webinar:", "(webinar)"
/// and "- online" are removed, then the words are compared like names.
pub fn title_key(title: &str) -> String {
    let mut w = words(title);
    // Strip decoration phrases from either end, repeatedly ("SAVE THE DATE Webinar: …").
    loop {
        let before = w.len();
        for phrase in TITLE_NOISE {
            let n = phrase.split(' ').count();
            if w.len() > n && w.iter().take(n).map(String::as_str).eq(phrase.split(' ')) {
                w.drain(..n);
            }
            if w.len() > n
                && w.iter()
                    .skip(w.len() - n)
                    .map(String::as_str)
                    .eq(phrase.split(' '))
            {
                w.truncate(w.len() - n);
            }
        }
        if w.len() == before {
            break;
        }
    }
    if w.first().is_some_and(|f| f == "the") && w.len() > 1 {
        w.remove(0);
    }
    w.join(" ")
}

pub use crate::postcode::standard as postcode;

/// A charity number: England & Wales `1234567` (optionally `-1` sub-number), Scotland `SC012345`,
/// Northern Ireland `NIC100002` or `XR12345`. Leading text such as "Registered charity no." is dropped.
pub fn charity_number(s: &str) -> Option<String> {
    let upper = s.to_ascii_uppercase();
    let mut t: &str = upper.trim();
    for prefix in [
        "REGISTERED CHARITY NUMBER",
        "REGISTERED CHARITY NO.",
        "REGISTERED CHARITY NO",
        "REG. CHARITY NO.",
        "CHARITY NUMBER",
        "CHARITY NO.",
        "CHARITY NO",
        "REG NO.",
        "REG NO",
        "GB-CHC-",
        "GB-SC-",
        "GB-NIC-",
    ] {
        if let Some(rest) = t.strip_prefix(prefix) {
            t = rest.trim_start_matches([':', ' ', '.']).trim();
            break;
        }
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(d) = compact.strip_prefix("SC") {
        return (d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit())).then(|| format!("SC{d}"));
    }
    if let Some(d) = compact.strip_prefix("NIC") {
        return (d.len() >= 5 && d.len() <= 6 && d.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("NIC{d}"));
    }
    if let Some(d) = compact.strip_prefix("XR") {
        return (d.len() >= 4 && d.len() <= 6 && d.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("XR{d}"));
    }
    let (main, sub) = match compact.split_once('-') {
        Some((m, s)) => (m, Some(s)),
        None => (compact.as_str(), None),
    };
    if !(6..=7).contains(&main.len()) || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match sub {
        None => Some(main.to_string()),
        Some(s) if !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(format!("{main}-{s}"))
        }
        Some(_) => None,
    }
}

/// A Companies House number: 8 characters, zero-padded, with an upper-case prefix (SC, NI, OC…).
pub fn company_number(s: &str) -> Option<String> {
    let compact: String = s
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    let compact = compact
        .strip_prefix("GBCOH")
        .map(str::to_string)
        .unwrap_or(compact);
    let letters = compact
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let (prefix, digits) = compact.split_at(letters);
    if letters > 2 || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if prefix.len() + digits.len() > 8 {
        return None;
    }
    let width = 8 - prefix.len();
    Some(format!("{prefix}{digits:0>width$}"))
}

/// An org-id.guide identifier (`GB-CHC-1234567`), upper-cased scheme, or None.
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

/// An http(s) URL, with `https://` added when the scheme is missing and the host lower-cased.
pub fn website(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() || t.contains(char::is_whitespace) {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let with_scheme = if lower.starts_with("http://") || lower.starts_with("https://") {
        t.to_string()
    } else if t.contains("://") {
        return None;
    } else {
        format!("https://{t}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    let host = url.host_str()?;
    if !host.contains('.')
        && host != "localhost"
        && url
            .host()
            .is_some_and(|h| matches!(h, url::Host::Domain(_)))
    {
        return None;
    }
    Some(url.to_string())
}

/// A lower-cased email address, or None if it does not look like one.
pub fn email(s: &str) -> Option<String> {
    let t = s.trim().trim_start_matches("mailto:").to_lowercase();
    let (local, domain) = t.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !t.contains(char::is_whitespace)
        && t.matches('@').count() == 1;
    ok.then_some(t)
}

/// UK numbers in E.164 (`01625 428 922` → `+441625428922`); others kept trimmed.
pub fn phone(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    let national = if let Some(rest) = digits
        .strip_prefix("44")
        .filter(|_| t.starts_with('+') || t.starts_with("00"))
    {
        Some(rest.trim_start_matches('0').to_string())
    } else if let Some(rest) = digits.strip_prefix("0044") {
        Some(rest.trim_start_matches('0').to_string())
    } else {
        digits.strip_prefix('0').map(str::to_string)
    };
    match national {
        Some(n) if (9..=10).contains(&n.len()) => Some(format!("+44{n}")),
        _ => Some(text(t)?),
    }
}

/// The outward code of a postcode ("SK11 6AB" → "SK11").
pub fn outward_code(pc: &str) -> Option<String> {
    postcode(pc).and_then(|p| p.split(' ').next().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charity_numbers() {
        assert_eq!(charity_number("1123456").as_deref(), Some("1123456"));
        assert_eq!(
            charity_number("Registered charity no. 1123456").as_deref(),
            Some("1123456")
        );
        assert_eq!(
            charity_number("Registered Charity Number: 1 123 456").as_deref(),
            Some("1123456")
        );
        assert_eq!(charity_number("1123456-1").as_deref(), Some("1123456-1"));
        assert_eq!(charity_number("sc012345").as_deref(), Some("SC012345"));
        assert_eq!(charity_number("NIC100002").as_deref(), Some("NIC100002"));
        assert_eq!(charity_number("GB-CHC-1123456").as_deref(), Some("1123456"));
        assert_eq!(charity_number("12345"), None);
        assert_eq!(charity_number("exempt"), None);
        assert_eq!(charity_number(""), None);
    }

    #[test]
    fn company_numbers() {
        assert_eq!(company_number("4321").as_deref(), Some("00004321"));
        assert_eq!(company_number("01234567").as_deref(), Some("01234567"));
        assert_eq!(company_number("sc123456").as_deref(), Some("SC123456"));
        assert_eq!(company_number("OC 301234").as_deref(), Some("OC301234"));
        assert_eq!(company_number("123456789"), None);
        assert_eq!(company_number("n/a"), None);
    }

    #[test]
    fn org_ids() {
        assert_eq!(org_id("gb-chc-1123456").as_deref(), Some("GB-CHC-1123456"));
        assert_eq!(org_id("GB-COH-4321").as_deref(), Some("GB-COH-00004321"));
        assert_eq!(org_id("1123456"), None);
    }

    #[test]
    fn names_and_titles() {
        assert_eq!(
            name_key("The Hull Food-Bank & Pantry"),
            "hull food bank and pantry"
        );
        assert_eq!(name_key("Child Dynamix"), name_key("CHILD DYNAMIX."));
        assert_eq!(name_key("Café Rêve"), "cafe reve");
        let a = title_key("***SAVE THE DATE*** Webinar:  Next Steps in Developing Anchor Institutions in our Region");
        let b = title_key("Next Steps in Developing Anchor Institutions in Our Region (Webinar)");
        assert_eq!(a, b);
        assert_eq!(
            a,
            "next steps in developing anchor institutions in our region"
        );
        assert_eq!(
            title_key("Online: Trustee training - free event"),
            "trustee training"
        );
        assert_eq!(
            title_key("Webinar"),
            "webinar",
            "a title that is only decoration is kept"
        );
    }

    #[test]
    fn urls_emails_phones() {
        assert_eq!(
            website("www.cvsce.org.uk").as_deref(),
            Some("https://www.cvsce.org.uk/")
        );
        assert_eq!(
            website("HTTP://Example.ORG/Path").as_deref(),
            Some("http://example.org/Path")
        );
        assert_eq!(website("ftp://x.org"), None);
        assert_eq!(website("n/a"), None);
        assert_eq!(
            email(" Info@Example.org ").as_deref(),
            Some("info@example.org")
        );
        assert_eq!(email("info at example"), None);
        assert_eq!(phone("01625 428 922").as_deref(), Some("+441625428922"));
        assert_eq!(
            phone("+44 (0)1482 123456").as_deref(),
            Some("+441482123456")
        );
        assert_eq!(phone("07700 900123").as_deref(), Some("+447700900123"));
        assert_eq!(phone("ext. 12").as_deref(), Some("ext. 12"));
    }

    #[test]
    fn records_are_cleaned_or_rejected() {
        let rec = |name: &str| SourceRecord {
            source_id: " 7 ".into(),
            url: None,
            updated_at: None,
            payload: Payload::Organisation(Organisation {
                name: name.into(),
                categories: vec!["Youth ".into(), "youth".into(), "".into()],
                ..Default::default()
            }),
        };
        let ok = record(rec("  Hull   CVS ")).unwrap();
        assert_eq!(ok.source_id, "7");
        let Payload::Organisation(o) = ok.payload else {
            panic!()
        };
        assert_eq!(o.name, "Hull CVS");
        assert_eq!(o.categories, vec!["Youth".to_string()]);
        assert!(record(rec("   ")).unwrap_err().contains("no name"));
    }

    #[test]
    fn markup_in_plain_text_fields_is_sanitised_or_rendered_to_text() {
        let start = chrono::DateTime::parse_from_rfc3339("2027-01-01T10:00:00Z").unwrap();
        let e = Event {
            title: "Quiz <svg onload=alert(1)>night</svg>".into(),
            description: Some(
                "Come along <img src=x onerror=alert(1)><script>steal()</script>".into(),
            ),
            description_html: None,
            start,
            end: None,
            timezone: None,
            all_day: false,
            recurrence: None,
            overrides: Vec::new(),
            status: Default::default(),
            location: crate::model::Location {
                name: Some("<iframe src=//evil.example></iframe>Town Hall".into()),
                address: Some("1 High St<script>x()</script>".into()),
                ..Default::default()
            },
            url: None,
            booking_url: None,
            organiser: crate::model::Organiser {
                name: Some("<b>Crewe</b> CVS".into()),
                organisation_id: None,
            },
            categories: vec![
                "<em>Youth</em>".into(),
                "&lt;script&gt;x&lt;/script&gt;Sport".into(),
            ],
        };
        let e = event(e).unwrap();
        let html = e.description_html.clone().unwrap();
        assert!(
            !html.contains("onerror") && !html.contains("script"),
            "{html}"
        );
        assert!(html.contains("<img src=\"x\">"), "{html}");
        let text = e.description.clone().unwrap();
        assert_eq!(text, "Come along");
        assert_eq!(e.title, "Quiz night");
        assert_eq!(e.location.name.as_deref(), Some("Town Hall"));
        assert_eq!(e.location.address.as_deref(), Some("1 High St"));
        assert_eq!(e.organiser.name.as_deref(), Some("Crewe CVS"));
        assert_eq!(e.categories, vec!["Youth".to_string(), "Sport".to_string()]);
        for field in [&e.title, &text] {
            assert!(!html::has_markup(field), "{field}");
        }
        // A title given as nothing but markup is a broken record; no title given stays untitled.
        let mut broken = e.clone();
        broken.title = "<b></b>".into();
        assert!(event(broken).unwrap_err().contains("nothing but markup"));
        let mut untitled = e.clone();
        untitled.title = String::new();
        assert_eq!(event(untitled).unwrap().title, "");
        // Prose with a bare "<" or "&" is left alone.
        let plain = descriptions(Some("Ages 5 < 11 & parents".into()), None);
        assert_eq!(plain, (Some("Ages 5 < 11 & parents".into()), None));
    }
}
