//! Partners' data licences: a configured `licence` (an SPDX licence id such as `OGL-UK-3.0`, or the
//! URL of a licence's text) read into one canonical form with a name and a URL, so every published
//! record, feed and calendar can state the terms its data came under.

use serde::Serialize;

/// One licence as it is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Licence {
    /// The SPDX id (in SPDX's own spelling), or `None` for a licence given only by its URL.
    pub id: Option<String>,
    /// Human name: SPDX's full name, or the URL itself when nothing better is known.
    pub name: String,
    /// Where the licence text is published.
    pub url: String,
}

/// The publishers' own pages for the licences open data is usually released under, which data
/// consumers (and OpenActive's RPDE `license`) expect; any other SPDX id links to SPDX's page.
const PUBLISHER_URLS: &[(&str, &str)] = &[
    (
        "OGL-UK-1.0",
        "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/1/",
    ),
    (
        "OGL-UK-2.0",
        "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/2/",
    ),
    (
        "OGL-UK-3.0",
        "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/",
    ),
    ("CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
    (
        "CC-BY-SA-4.0",
        "https://creativecommons.org/licenses/by-sa/4.0/",
    ),
    (
        "CC-BY-NC-4.0",
        "https://creativecommons.org/licenses/by-nc/4.0/",
    ),
    ("CC-BY-3.0", "https://creativecommons.org/licenses/by/3.0/"),
    (
        "CC0-1.0",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
    ("ODC-By-1.0", "https://opendatacommons.org/licenses/by/1-0/"),
    ("ODbL-1.0", "https://opendatacommons.org/licenses/odbl/1-0/"),
    ("PDDL-1.0", "https://opendatacommons.org/licenses/pddl/1-0/"),
];

impl Licence {
    /// Reads a configured licence: an SPDX id (matched regardless of case, as SPDX specifies) or
    /// an absolute http(s) URL. A URL of a known licence is given that licence's id and name.
    pub fn parse(s: &str) -> Result<Licence, String> {
        let t = s.trim();
        if t.starts_with("http://") || t.starts_with("https://") {
            let url = url::Url::parse(t).map_err(|e| format!("{t:?} is not a valid URL: {e}"))?;
            if url.host_str().is_none() {
                return Err(format!("{t:?} has no host"));
            }
            return Ok(Licence::from_url(url.as_str()));
        }
        let found = spdx::identifiers::LICENSES
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(t));
        match found {
            Some(l) => Ok(Licence::from_spdx(l.name, l.full_name)),
            None => Err(format!(
                "{t:?} is neither an SPDX licence id (such as OGL-UK-3.0, CC-BY-4.0 or CC0-1.0; \
                 see https://spdx.org/licenses/) nor an http(s) URL of the licence's text"
            )),
        }
    }

    fn from_spdx(id: &str, full_name: &str) -> Licence {
        let url = PUBLISHER_URLS
            .iter()
            .find(|(known, _)| *known == id)
            .map(|(_, u)| (*u).to_string())
            .unwrap_or_else(|| format!("https://spdx.org/licenses/{id}.html"));
        Licence {
            id: Some(id.to_string()),
            name: full_name.to_string(),
            url,
        }
    }

    fn from_url(url: &str) -> Licence {
        // `http://` and a missing trailing slash name the same page.
        let norm = |u: &str| {
            u.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_ascii_lowercase()
        };
        let known = PUBLISHER_URLS
            .iter()
            .find(|(_, u)| norm(u) == norm(url))
            .and_then(|(id, _)| spdx::license_id(id));
        match known {
            Some(l) => Licence::from_spdx(l.name, l.full_name),
            None => Licence {
                id: None,
                name: url.to_string(),
                url: url.to_string(),
            },
        }
    }

    /// The licence in a few words: its id, else its URL.
    pub fn label(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.url)
    }
}

/// Who a partner's data is credited to and under what terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The partner's id.
    pub partner: String,
    /// The partner's name: the credit their licence asks for.
    pub name: String,
    pub website: Option<String>,
    /// `None` when the partner's licence is not configured: the terms are unknown.
    pub licence: Option<Licence>,
}

impl Attribution {
    /// One line of credit: `Name (website), licensed under Id <url>`.
    pub fn line(&self) -> String {
        let mut s = self.name.clone();
        if let Some(w) = &self.website {
            s.push_str(&format!(" ({w})"));
        }
        match &self.licence {
            Some(l) => s.push_str(&format!(", licensed under {} <{}>", l.label(), l.url)),
            None => s.push_str(", licence not stated"),
        }
        s
    }
}

/// The partners behind a set of records, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributions {
    partners: Vec<Attribution>,
}

impl Attributions {
    pub fn new(mut partners: Vec<Attribution>) -> Attributions {
        partners.sort_by(|a, b| a.partner.cmp(&b.partner));
        partners.dedup_by(|a, b| a.partner == b.partner);
        Attributions { partners }
    }

    pub fn get(&self, partner: &str) -> Option<&Attribution> {
        self.partners
            .binary_search_by(|a| a.partner.as_str().cmp(partner))
            .ok()
            .and_then(|i| self.partners.get(i))
    }

    pub fn all(&self) -> &[Attribution] {
        &self.partners
    }

    /// Only the partners `keep` accepts.
    pub fn filtered(&self, keep: impl Fn(&Attribution) -> bool) -> Attributions {
        Attributions {
            partners: self.partners.iter().filter(|a| keep(a)).cloned().collect(),
        }
    }

    /// The one licence every partner here shares; `None` when they differ, when any partner's
    /// licence is not stated, or when there are no partners (nothing can be claimed then).
    pub fn common(&self) -> Option<&Licence> {
        let first = self.partners.first()?.licence.as_ref()?;
        self.partners
            .iter()
            .all(|a| a.licence.as_ref() == Some(first))
            .then_some(first)
    }

    /// A short fingerprint that changes whenever any name, website or licence does: cached
    /// renderings that carry attributions key on it, so a reloaded licence shows at once.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for a in &self.partners {
            h.update(a.partner.as_bytes());
            h.update([0]);
            h.update(a.line().as_bytes());
            h.update([0]);
        }
        hex::encode(&h.finalize()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spdx_ids_any_case_and_urls_are_read() {
        let ogl = Licence::parse("ogl-uk-3.0").unwrap();
        assert_eq!(ogl.id.as_deref(), Some("OGL-UK-3.0"));
        assert_eq!(ogl.name, "Open Government Licence v3.0");
        assert!(ogl.url.starts_with("https://www.nationalarchives.gov.uk/"));
        let cc0 = Licence::parse("CC0-1.0").unwrap();
        assert_eq!(
            cc0.url,
            "https://creativecommons.org/publicdomain/zero/1.0/"
        );
        // An SPDX id without a publisher page here links to SPDX.
        let mit = Licence::parse("MIT").unwrap();
        assert_eq!(mit.url, "https://spdx.org/licenses/MIT.html");
        // The URL of a known licence is that licence.
        let by = Licence::parse("http://creativecommons.org/licenses/by/4.0").unwrap();
        assert_eq!(by.id.as_deref(), Some("CC-BY-4.0"));
        let own = Licence::parse("https://example.org/our-terms").unwrap();
        assert_eq!(own.id, None);
        assert_eq!(own.url, "https://example.org/our-terms");
    }

    #[test]
    fn unknown_ids_are_refused_with_examples() {
        let e = Licence::parse("OGL-3").unwrap_err();
        assert!(e.contains("OGL-UK-3.0"), "{e}");
        assert!(Licence::parse("ftp://x/licence").is_err());
        assert!(Licence::parse("").is_err());
    }

    fn att(partner: &str, licence: Option<&str>) -> Attribution {
        Attribution {
            partner: partner.into(),
            name: partner.to_uppercase(),
            website: None,
            licence: licence.map(|l| Licence::parse(l).unwrap()),
        }
    }

    #[test]
    fn common_licence_only_when_all_agree() {
        let same = Attributions::new(vec![
            att("a", Some("OGL-UK-3.0")),
            att("b", Some("ogl-uk-3.0")),
        ]);
        assert_eq!(
            same.common().and_then(|l| l.id.as_deref()),
            Some("OGL-UK-3.0")
        );
        let mixed = Attributions::new(vec![
            att("a", Some("OGL-UK-3.0")),
            att("b", Some("CC0-1.0")),
        ]);
        assert!(mixed.common().is_none());
        let unstated = Attributions::new(vec![att("a", Some("CC0-1.0")), att("b", None)]);
        assert!(unstated.common().is_none());
        assert!(Attributions::default().common().is_none());
        assert_ne!(same.fingerprint(), mixed.fingerprint());
        assert_eq!(mixed.get("b").map(|a| a.name.as_str()), Some("B"));
    }
}
