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
    ("yorks", "yorkshire"),
];

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
    /// The email address's host, unless it is a free-mail provider.
    pub email_domain: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFeatures {
    pub title: String,
    pub title_tokens: Vec<String>,
    pub start: i64,
    pub booking: Option<String>,
    pub url: Option<String>,
    pub postcode: Option<String>,
    pub online: bool,
    pub recurring: bool,
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
    let full = expand(&normalise::name_key(name));
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
    Some(format!("{host}{}", parsed.path().trim_end_matches('/')))
}

fn org(o: &Organisation) -> OrgFeatures {
    let (name, strong, strong_tokens) = name_keys(&o.name);
    let alternates = o
        .alternate_names
        .iter()
        .map(|n| name_keys(n).1)
        .filter(|k| !k.is_empty() && *k != strong)
        .collect();
    let mut charity = o
        .identifiers
        .charity_number
        .as_deref()
        .and_then(normalise::charity_number);
    let mut company = o
        .identifiers
        .company_number
        .as_deref()
        .and_then(normalise::company_number);
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
        site,
        email_domain,
        phone: o
            .phone
            .as_deref()
            .and_then(normalise::phone)
            .filter(|p| p.starts_with('+')),
    }
}

fn event(e: &Event) -> EventFeatures {
    let title = normalise::title_key(&e.title);
    let title_tokens = title
        .split(' ')
        .filter(|w| w.len() > 2 && !WEAK_TOKENS.contains(w))
        .map(str::to_string)
        .collect();
    EventFeatures {
        title,
        title_tokens,
        start: e.start.timestamp(),
        booking: e.booking_url.as_deref().and_then(url_key),
        url: e.url.as_deref().and_then(url_key),
        postcode: e.location.postcode.as_deref().and_then(normalise::postcode),
        online: e.location.online,
        recurring: e.recurrence.as_ref().is_some_and(|r| !r.is_empty()),
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
