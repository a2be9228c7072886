//! Comparison features: each record reduced once to the normalised values that blocking and scoring
//! compare (name keys without legal suffixes, identifiers by scheme, postcode and outward code,
//! registrable web and email domains, E.164 phone; for events the title key, start and URLs).

use crate::model::{Event, Organisation, Payload};
use crate::normalise;

/// Name tokens that say little about which organisation it is: legal forms and filler.
const WEAK_TOKENS: &[&str] = &[
    "ltd",
    "limited",
    "cic",
    "cio",
    "trust",
    "charity",
    "charitable",
    "incorporated",
    "inc",
    "plc",
    "llp",
    "company",
    "co",
    "uk",
    "group",
    "association",
    "the",
    "of",
    "and",
    "for",
    "in",
    "organisation",
    "organization",
    "district",
    "scio",
];

/// Abbreviations partners use interchangeably with the full words.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("assoc", "association"),
    ("assn", "association"),
    ("comm", "community"),
    ("ctr", "centre"),
    ("center", "centre"),
    ("st", "saint"),
    ("vol", "voluntary"),
    ("svcs", "services"),
    ("dev", "development"),
    ("grp", "group"),
    ("cvs", "council for voluntary service"),
    ("rcc", "rural community council"),
    ("cab", "citizens advice"),
    ("u3a", "university third age"),
    ("va", "voluntary action"),
    ("tara", "tenants and residents association"),
    ("yorks", "yorkshire"),
];

/// Words that make a name a subsidiary of another ("… Trading Limited"): a different entity.
const SUBSIDIARY_TOKENS: &[&str] = &["trading", "enterprises"];

/// Separators after which partners append a place or a service to a name ("Hull CVS - Hull",
/// "Age UK Hull – Befriending Service", "Mind (Hull)", "Mind, Hull").
const NAME_TAIL_SEPARATORS: &[&str] = &[" - ", " – ", " — ", " (", ", ", ": ", " | "];

/// Mail providers whose domain says nothing about who the sender is.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "outlook.com",
    "live.com",
    "live.co.uk",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "ymail.com",
    "aol.com",
    "aol.co.uk",
    "icloud.com",
    "me.com",
    "btinternet.com",
    "btopenworld.com",
    "sky.com",
    "talktalk.net",
    "virginmedia.com",
    "ntlworld.com",
    "blueyonder.co.uk",
    "tiscali.co.uk",
    "protonmail.com",
    "proton.me",
    "gmx.com",
    "gmx.co.uk",
    "mail.com",
    "zoho.com",
];

/// A fingerprint of everything matching compares (FNV-1a over the features): two versions of a
/// record with the same fingerprint score the same against anything.
pub fn fingerprint(f: &Features) -> i64 {
    use std::fmt::Write;
    use std::hash::Hasher;
    // The features' Debug text streamed into the hash, the same bytes as hashing the string
    // (stored fingerprints stay comparable) without building it for every record.
    let mut h = Fnv(fnv::FnvHasher::default());
    let _ = write!(h, "{f:?}");
    h.0.finish() as i64
}

/// An FNV-1a hasher that formatted text is written into.
pub(crate) struct Fnv(pub(crate) fnv::FnvHasher);

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        std::hash::Hasher::write(&mut self.0, s.as_bytes());
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgFeatures {
    /// Name key with abbreviations expanded.
    pub name: String,
    /// `name` without weak tokens: what actually distinguishes the organisation.
    pub strong: String,
    pub strong_tokens: Vec<String>,
    /// Strong keys of alternate names.
    pub alternates: Vec<String>,
    pub charity: Option<String>,
    pub company: Option<String>,
    /// Other org-id.guide identifiers (scheme-id), not charity or company ones.
    pub org_id: Option<String>,
    pub postcode: Option<String>,
    pub outward: Option<String>,
    /// Town or city, lower-cased.
    pub locality: Option<String>,
    /// The website's host without `www.`.
    pub site: Option<String>,
    /// The website's registrable domain.
    pub domain: Option<String>,
    /// The website's host and first path segment (`facebook.com/hullmind`): what identifies the
    /// organisation when the host is a platform many organisations share.
    pub site_path: Option<String>,
    /// The name says it is a subsidiary ("… Trading Ltd").
    pub subsidiary: bool,
    /// The email address's host, unless it is a free-mail provider.
    pub email_domain: Option<String>,
    pub phone: Option<String>,
    /// The phone is a mobile: a volunteer's number, weak evidence either way.
    pub mobile: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFeatures {
    pub title: String,
    pub title_tokens: Vec<String>,
    /// The title before its last separator and after its first one, when a partner appended a
    /// remark ("Coffee Morning - all welcome") or prefixed an organiser ("Hull Mind: Coffee
    /// Morning"); `None` when there is no separator.
    pub title_head: Option<String>,
    pub title_tail: Option<String>,
    pub start: i64,
    /// The start's UTC offset as the partner wrote it, in seconds: a listing marked `Z` while
    /// the others carry the local offset may be local time written as UTC.
    pub offset: i32,
    pub booking: Option<String>,
    pub url: Option<String>,
    pub postcode: Option<String>,
    pub online: bool,
    pub recurring: bool,
    /// A day-only listing: its start says the date, not the hour.
    pub all_day: bool,
    /// The venue's name key, and its street address key.
    pub venue: Option<String>,
    pub address: Option<String>,
    /// The online room's link (Zoom, Teams…), compared like a booking link.
    pub room: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Features {
    Org(OrgFeatures),
    Event(EventFeatures),
}

pub fn of(payload: &Payload) -> Features {
    match payload {
        Payload::Organisation(o) => Features::Org(org(o)),
        Payload::Event(e) => Features::Event(event(e)),
    }
}

fn expand(key: &str) -> String {
    key.split(' ')
        .map(|w| {
            ABBREVIATIONS
                .iter()
                .find(|(a, _)| *a == w)
                .map(|(_, full)| *full)
                .unwrap_or(w)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// (name key, strong key, strong tokens) of a name.
pub fn name_keys(name: &str) -> (String, String, Vec<String>) {
    let folded = deunicode::deunicode(name);
    let full = expand(&normalise::name_key(&folded));
    let strong: Vec<String> = full
        .split(' ')
        .filter(|w| !w.is_empty() && !WEAK_TOKENS.contains(w))
        .map(str::to_string)
        .collect();
    // A name made only of weak words keeps them, or it would match every other such name.
    let strong = if strong.is_empty() {
        full.split(' ').map(str::to_string).collect()
    } else {
        strong
    };
    (full, strong.join(" "), strong)
}

/// The registrable part of a host: `www.ageukhull.org.uk` → `ageukhull.org.uk`.
pub fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let domain = psl::domain_str(&host)?;
    Some(domain.to_string())
}

fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(&normalise::website(url)?).ok()?;
    Some(
        parsed
            .host_str()?
            .trim_start_matches("www.")
            .to_ascii_lowercase(),
    )
}

/// A URL reduced for comparison: no scheme, no `www.`, no query or trailing slash.
pub fn url_key(url: &str) -> Option<String> {
    let parsed = url::Url::parse(&normalise::website(url)?).ok()?;
    let host = parsed
        .host_str()?
        .trim_start_matches("www.")
        .to_ascii_lowercase();
    if let Some(id) = eventbrite_id(&host, parsed.path()) {
        return Some(format!("eventbrite/{id}"));
    }
    Some(format!("{host}{}", parsed.path().trim_end_matches('/')))
}

/// An Eventbrite event's id, whatever the country domain (`.com`, `.co.uk`), tracking query or
/// form of the link (`/e/<id>`, `/e/<slug>-tickets-<id>`).
fn eventbrite_id(host: &str, path: &str) -> Option<String> {
    let domain = registrable_domain(host)?;
    if domain.split('.').next() != Some("eventbrite") {
        return None;
    }
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let digits: String = last
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (digits.len() >= 6).then_some(digits)
}

/// Host and first path segment of a website, lower-cased.
fn site_path(url: &str) -> Option<String> {
    let parsed = url::Url::parse(&normalise::website(url)?).ok()?;
    let host = parsed
        .host_str()?
        .trim_start_matches("www.")
        .to_ascii_lowercase();
    let first = parsed
        .path_segments()
        .and_then(|mut s| s.find(|p| !p.is_empty()))
        .map(str::to_ascii_lowercase);
    Some(match first {
        Some(p) => format!("{host}/{p}"),
        None => host,
    })
}

/// The name without an appended place or service ("Hull Mind – Befriending Service" → "Hull
/// Mind"), when something distinctive is left.
fn name_head(name: &str) -> Option<String> {
    let cut = NAME_TAIL_SEPARATORS
        .iter()
        .filter_map(|sep| name.find(sep))
        .min()?;
    let head = name.get(..cut)?;
    let (_, strong, tokens) = name_keys(head);
    (!tokens.is_empty() && !strong.is_empty()).then_some(strong)
}

/// A phone number in E.164 form, parsed with libphonenumber's rules (partner country GB by
/// default), and whether it is a mobile.
///
/// Each distinct text is parsed once per thread: every use of the crate's metadata regexes goes
/// through one process-wide locked cache keyed by the pattern text, which made parsing a large
/// share of a full resolution, and the same number recurs in every listing of an organisation.
pub fn phone_key(raw: &str) -> Option<(String, bool)> {
    thread_local! {
        static PARSED: std::cell::RefCell<foldhash::HashMap<String, Option<(String, bool)>>> =
            std::cell::RefCell::new(foldhash::HashMap::default());
    }
    /// Distinct numbers remembered per thread before the memo starts afresh (bounded memory).
    const MEMO_LIMIT: usize = 1 << 16;
    if let Some(hit) = PARSED.with(|m| m.borrow().get(raw).cloned()) {
        return hit;
    }
    let parsed = parse_phone(raw);
    PARSED.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_LIMIT {
            m.clear();
        }
        m.insert(raw.to_string(), parsed.clone());
    });
    parsed
}

fn parse_phone(raw: &str) -> Option<(String, bool)> {
    use phonenumber::{country, metadata::DATABASE, Mode, PhoneNumber, Type};
    // A number's type is found by the same metadata look-up as its validity (`is_valid` is
    // "type known"), so one look-up answers both.
    let typed = |c| {
        phonenumber::parse(Some(c), raw)
            .ok()
            .map(|n: PhoneNumber| (n.number_type(&DATABASE), n))
    };
    let known = |(t, _): &(Type, PhoneNumber)| *t != Type::Unknown;
    // A number that is not valid in the default country may be written for another (US
    // directories write `310/246-1501`).
    // A number libphonenumber reads but does not know as allocated is still compared in
    // E.164 form: a listing's number need not be in the metadata's ranges to be the same.
    let gb = typed(country::Id::GB);
    let (kind, n) = match gb {
        Some(g) if known(&g) => g,
        gb => typed(country::Id::US).filter(known).or(gb)?,
    };
    let mobile = matches!(kind, Type::Mobile | Type::Pager | Type::PersonalNumber);
    Some((n.format().mode(Mode::E164).to_string(), mobile))
}

/// Whether a value typed into the charity field is really a company number (eight characters
/// with leading zeros or a register prefix such as `SC`, `NI`, `OC`).
fn company_in_charity_field(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let looks = compact.len() == 8
        && (compact.starts_with('0') || compact.chars().take(2).all(|c| c.is_ascii_alphabetic()));
    looks.then(|| normalise::company_number(&compact)).flatten()
}

fn org(o: &Organisation) -> OrgFeatures {
    let (name, strong, strong_tokens) = name_keys(&o.name);
    let mut alternates: Vec<String> = o
        .alternate_names
        .iter()
        .map(|n| name_keys(n).1)
        .chain(name_head(&o.name))
        .chain(o.alternate_names.iter().filter_map(|n| name_head(n)))
        .filter(|k| !k.is_empty() && *k != strong)
        .collect();
    alternates.sort();
    alternates.dedup();
    let subsidiary = strong_tokens
        .iter()
        .any(|t| SUBSIDIARY_TOKENS.contains(&t.as_str()));
    let raw_charity = o.identifiers.charity_number.as_deref();
    let misplaced = raw_charity.and_then(company_in_charity_field);
    let mut charity = raw_charity
        .filter(|_| misplaced.is_none())
        .and_then(normalise::charity_number);
    let mut company = o
        .identifiers
        .company_number
        .as_deref()
        .and_then(normalise::company_number)
        .or(misplaced);
    let mut org_id = None;
    // An org-id names a register: charity and company ones are the same evidence as the numbers.
    if let Some(id) = o.identifiers.org_id.as_deref().and_then(normalise::org_id) {
        if let Some(n) = ["GB-CHC-", "GB-SC-", "GB-NIC-"]
            .iter()
            .find_map(|p| id.strip_prefix(p))
        {
            charity = charity.or_else(|| normalise::charity_number(n));
        } else if let Some(n) = id.strip_prefix("GB-COH-") {
            company = company.or_else(|| normalise::company_number(n));
        } else {
            org_id = Some(id);
        }
    }
    let postcode = o.address.postcode.as_deref().and_then(normalise::postcode);
    let outward = postcode
        .as_deref()
        .and_then(|p| p.split(' ').next().map(str::to_string));
    let email_domain = o
        .email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty() && !FREE_MAIL.contains(&d.as_str()));
    let site = o.website.as_deref().and_then(url_host);
    let phone = o.phone.as_deref().and_then(phone_key);
    OrgFeatures {
        name,
        strong,
        strong_tokens,
        alternates,
        charity,
        company,
        org_id,
        postcode,
        outward,
        locality: o
            .address
            .locality
            .as_deref()
            .and_then(normalise::text)
            .map(|l| l.to_lowercase()),
        domain: site.as_deref().and_then(registrable_domain),
        site_path: o.website.as_deref().and_then(site_path),
        subsidiary,
        site,
        email_domain,
        mobile: phone.as_ref().is_some_and(|p| p.1),
        phone: phone.map(|p| p.0),
    }
}

/// Separators after which partners prefix an organiser or append a remark to an event's title.
const TITLE_SEPARATORS: &[&str] = &[": ", " - ", " – ", " — ", " (", " | "];

/// The title keys of what is before the last separator and after the first one, each when it
/// is something other than the whole title.
fn title_parts(raw: &str, whole: &str) -> (Option<String>, Option<String>) {
    let first = TITLE_SEPARATORS
        .iter()
        .filter_map(|sep| raw.find(sep).map(|i| i + sep.len()))
        .min();
    let last = TITLE_SEPARATORS
        .iter()
        .filter_map(|sep| raw.rfind(sep))
        .max();
    let key = |part: Option<&str>| {
        part.map(normalise::title_key)
            .filter(|k| !k.is_empty() && k != whole)
    };
    (
        key(last.and_then(|i| raw.get(..i))),
        key(first.and_then(|i| raw.get(i..))),
    )
}

fn event(e: &Event) -> EventFeatures {
    let title = normalise::title_key(&e.title);
    let (title_head, title_tail) = title_parts(&e.title, &title);
    let title_tokens = title
        .split(' ')
        .filter(|w| w.len() > 2 && !WEAK_TOKENS.contains(w))
        .map(str::to_string)
        .collect();
    EventFeatures {
        title,
        title_tokens,
        title_head,
        title_tail,
        start: e.start.timestamp(),
        offset: e.start.offset().local_minus_utc(),
        booking: e.booking_url.as_deref().and_then(url_key),
        url: e.url.as_deref().and_then(url_key),
        postcode: e.location.postcode.as_deref().and_then(normalise::postcode),
        online: e.location.online,
        recurring: e.recurrence.as_ref().is_some_and(|r| !r.is_empty()),
        all_day: e.all_day,
        venue: e
            .location
            .name
            .as_deref()
            .map(|n| name_keys(n).1)
            .filter(|k| !k.is_empty()),
        address: e
            .location
            .address
            .as_deref()
            .map(|a| normalise::name_key(&deunicode::deunicode(a)))
            .filter(|k| !k.is_empty()),
        room: e.location.url.as_deref().and_then(url_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_legal_forms_and_expand_abbreviations() {
        let (_, a, _) = name_keys("Crewe Community Assoc. Ltd");
        let (_, b, _) = name_keys("The Crewe Community Association");
        assert_eq!(a, b);
        assert_eq!(a, "crewe community");
        let (_, c, _) = name_keys("Hull CVS");
        assert_eq!(c, "hull council voluntary service");
        let (_, d, _) = name_keys("The Trust");
        assert_eq!(d, "trust");
    }

    #[test]
    fn domains_are_registrable_and_free_mail_is_ignored() {
        assert_eq!(
            registrable_domain("www.ageukhull.org.uk").as_deref(),
            Some("ageukhull.org.uk")
        );
        assert_eq!(
            registrable_domain("events.cvsce.org.uk").as_deref(),
            Some("cvsce.org.uk")
        );
        let o = Organisation {
            name: "X".into(),
            email: Some("someone@gmail.com".into()),
            website: Some("https://www.example.org.uk/about".into()),
            ..Default::default()
        };
        let f = org(&o);
        assert_eq!(f.email_domain, None);
        assert_eq!(f.domain.as_deref(), Some("example.org.uk"));
        assert_eq!(f.site.as_deref(), Some("example.org.uk"));
    }

    #[test]
    fn org_id_counts_as_charity_number() {
        let o = Organisation {
            name: "X".into(),
            identifiers: crate::model::Identifiers {
                org_id: Some("GB-CHC-1123456".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(org(&o).charity.as_deref(), Some("1123456"));
    }
}
