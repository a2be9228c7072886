//! Scoring: a match weight per candidate pair, in the spirit of Fellegi–Sunter — each agreeing or
//! disagreeing field adds a log-odds-like weight (documented in README), and the evidence is kept
//! in words for the admin review queue. Conflicting identifiers of one scheme mark a hard conflict.

use strsim::jaro_winkler;

use super::features::{EventFeatures, Features, OrgFeatures};

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub weight: f64,
    /// Two valid identifiers of the same scheme disagree: never merge.
    pub conflict: bool,
    pub evidence: Vec<String>,
}

/// A score being added up, with its evidence in words only when someone will read it: a full
/// resolution weighs millions of candidate pairs and keeps few, and the words were most of the
/// cost of weighing one.
struct Tally {
    score: Score,
    explain: bool,
}

impl Tally {
    fn add<S: Into<String>>(&mut self, w: f64, why: impl FnOnce() -> S) {
        self.score.weight += w;
        if self.explain {
            self.score
                .evidence
                .push(format!("{w:+.1} {}", why().into()));
        }
    }
}

/// Weights; a pair at or above `merge` is merged, at or above `review` queued for an admin.
pub mod weights {
    pub const SAME_ID: f64 = 12.0;
    pub const DIFFERENT_ID: f64 = -12.0;
    pub const NAME_EXACT: f64 = 6.0;
    pub const NAME_ALMOST: f64 = 5.0;
    pub const NAME_CLOSE: f64 = 4.0;
    pub const NAME_SIMILAR: f64 = 1.0;
    pub const NAME_UNLIKE: f64 = -1.0;
    pub const NAME_DIFFERENT: f64 = -4.0;
    pub const SAME_POSTCODE: f64 = 4.0;
    pub const SAME_OUTWARD: f64 = 1.0;
    pub const SAME_AREA: f64 = -1.0;
    pub const DIFFERENT_AREA: f64 = -3.0;
    pub const SAME_LOCALITY: f64 = 3.0;
    pub const DIFFERENT_LOCALITY: f64 = -3.0;
    pub const SAME_DOMAIN: f64 = 5.0;
    pub const SAME_NETWORK_DOMAIN: f64 = 1.0;
    pub const SAME_EMAIL_DOMAIN: f64 = 3.0;
    pub const SAME_PHONE: f64 = 5.0;
    pub const TITLE_EXACT: f64 = 6.0;
    pub const TITLE_CLOSE: f64 = 4.0;
    pub const TITLE_SIMILAR: f64 = 1.0;
    pub const TITLE_DIFFERENT: f64 = -6.0;
    pub const SAME_START: f64 = 3.0;
    pub const NEAR_START: f64 = 1.5;
    pub const DIFFERENT_START: f64 = -10.0;
    pub const SAME_BOOKING_URL: f64 = 6.0;
    pub const SAME_URL: f64 = 4.0;
    pub const SAME_VENUE: f64 = 2.0;
    pub const DIFFERENT_VENUE: f64 = -4.0;
    pub const BOTH_ONLINE: f64 = 2.0;
    pub const NO_SHARED_PLACE: f64 = -1.0;
    pub const SERIES_AND_SINGLE: f64 = -3.0;
}

/// Similarity of two names (distinctive keys), 0–1. Word by word: each word of one name is matched
/// to its closest word (Jaro–Winkler) in the other and the weakest match counts, so a typo costs a
/// little and a different word ("Meadow" / "Manor") costs a lot. Word order does not matter. When
/// one name's words (two or more) all appear in the other, as when a cross-post adds a place
/// ("Hull Funding Fair"), the similarity is at least 0.93.
pub fn name_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let ta: Vec<&str> = a.split(' ').filter(|w| !w.is_empty()).collect();
    let tb: Vec<&str> = b.split(' ').filter(|w| !w.is_empty()).collect();
    if ta.is_empty() || tb.is_empty() {
        return 0.0;
    }
    let weakest = |x: &[&str], y: &[&str]| {
        x.iter()
            .map(|w| y.iter().map(|v| jaro_winkler(w, v)).fold(0.0, f64::max))
            .fold(1.0, f64::min)
    };
    // Words run together or split ("Foodbank" / "Food Bank") defeat word matching; compare the
    // names without spaces too, discounted so a one-word difference still shows.
    let joined = 0.97 * jaro_winkler(&ta.concat(), &tb.concat());
    let sim = weakest(&ta, &tb).min(weakest(&tb, &ta)).max(joined);
    let (small, large) = if ta.len() <= tb.len() {
        (&ta, &tb)
    } else {
        (&tb, &ta)
    };
    if small.len() >= 2 && small.iter().all(|w| large.contains(w)) {
        return sim.max(0.93);
    }
    sim
}

/// The pair's match weight with its evidence in words, for the review queue and `explain`.
pub fn score(a: &Features, b: &Features, tolerance_secs: i64) -> Score {
    tally(a, b, tolerance_secs, true)
}

/// The pair's match weight and conflict alone (`evidence` left empty): the same figures as
/// [`score`], for deciding which of many candidate pairs matter.
pub fn weigh(a: &Features, b: &Features, tolerance_secs: i64) -> Score {
    tally(a, b, tolerance_secs, false)
}

fn tally(a: &Features, b: &Features, tolerance_secs: i64, explain: bool) -> Score {
    let mut s = Tally {
        score: Score {
            weight: 0.0,
            conflict: false,
            evidence: Vec::new(),
        },
        explain,
    };
    match (a, b) {
        (Features::Org(a), Features::Org(b)) => org(a, b, &mut s),
        (Features::Event(a), Features::Event(b)) => event(a, b, tolerance_secs, &mut s),
        _ => s.score.conflict = true,
    }
    s.score
}

fn identifier(s: &mut Tally, what: &str, a: &Option<String>, b: &Option<String>) {
    if let (Some(x), Some(y)) = (a, b) {
        if x == y {
            s.add(weights::SAME_ID, || format!("same {what} {x}"));
        } else {
            s.add(weights::DIFFERENT_ID, || {
                format!("different {what}s {x} and {y}")
            });
            s.score.conflict = true;
        }
    }
}

/// The postcode area: the leading letters ("SK" of "SK11 6AB").
fn area(postcode: &str) -> &str {
    let end = postcode
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(postcode.len());
    &postcode[..end]
}

fn org(a: &OrgFeatures, b: &OrgFeatures, s: &mut Tally) {
    identifier(s, "charity number", &a.charity, &b.charity);
    identifier(s, "company number", &a.company, &b.company);
    identifier(s, "org-id", &a.org_id, &b.org_id);

    // Best similarity over each side's name and alternate names.
    let mut best = name_similarity(&a.strong, &b.strong);
    for x in std::iter::once(&a.strong).chain(&a.alternates) {
        for y in std::iter::once(&b.strong).chain(&b.alternates) {
            best = best.max(name_similarity(x, y));
        }
    }
    let (w, why) = if best >= 0.999 {
        (weights::NAME_EXACT, "same name")
    } else if best >= 0.97 {
        (weights::NAME_ALMOST, "almost the same name")
    } else if best >= 0.93 {
        (weights::NAME_CLOSE, "nearly the same name")
    } else if best >= 0.86 {
        (weights::NAME_SIMILAR, "similar names")
    } else if best >= 0.7 {
        (weights::NAME_UNLIKE, "names differ")
    } else {
        (weights::NAME_DIFFERENT, "different names")
    };
    s.add(w, || format!("{why} ({best:.2})"));

    match (&a.postcode, &b.postcode) {
        (Some(x), Some(y)) if x == y => {
            s.add(weights::SAME_POSTCODE, || format!("same postcode {x}"))
        }
        (Some(x), Some(y)) if a.outward == b.outward => s.add(weights::SAME_OUTWARD, || {
            format!("same postcode district ({x} / {y})")
        }),
        // A move within the same postcode area is common; a different area is not.
        (Some(x), Some(y)) if area(x) == area(y) => s.add(weights::SAME_AREA, || {
            format!("different postcodes in one area ({x} / {y})")
        }),
        (Some(x), Some(y)) => s.add(weights::DIFFERENT_AREA, || {
            format!("different areas ({x} / {y})")
        }),
        _ => {}
    }
    match (&a.locality, &b.locality) {
        (Some(x), Some(y)) if x == y => {
            s.add(weights::SAME_LOCALITY, || format!("same town ({x})"))
        }
        (Some(x), Some(y)) => s.add(weights::DIFFERENT_LOCALITY, || {
            format!("different towns ({x} / {y})")
        }),
        _ => {}
    }
    // The same site is strong evidence; only the same registrable domain (network sites such as
    // crewe.foodbank.org.uk / hull.foodbank.org.uk) is weak.
    match (&a.site, &b.site) {
        (Some(x), Some(y)) if x == y => s.add(weights::SAME_DOMAIN, || format!("same website {x}")),
        (Some(_), Some(_)) if a.domain.is_some() && a.domain == b.domain => s
            .add(weights::SAME_NETWORK_DOMAIN, || {
                format!("websites under {}", a.domain.as_deref().unwrap_or_default())
            }),
        _ => {}
    }
    if let (Some(x), Some(y)) = (&a.email_domain, &b.email_domain) {
        if x == y {
            s.add(weights::SAME_EMAIL_DOMAIN, || {
                format!("same email domain {x}")
            });
        }
    }
    if let (Some(x), Some(y)) = (&a.phone, &b.phone) {
        if x == y {
            s.add(weights::SAME_PHONE, || format!("same phone {x}"));
        }
    }
}

fn event(a: &EventFeatures, b: &EventFeatures, tolerance: i64, s: &mut Tally) {
    let sim = name_similarity(&a.title, &b.title);
    let (w, why) = if sim >= 0.999 {
        (weights::TITLE_EXACT, "same title")
    } else if sim >= 0.93 {
        (weights::TITLE_CLOSE, "nearly the same title")
    } else if sim >= 0.85 {
        (weights::TITLE_SIMILAR, "similar titles")
    } else {
        (weights::TITLE_DIFFERENT, "different titles")
    };
    s.add(w, || format!("{why} ({sim:.2})"));
    let gap = (a.start - b.start).abs();
    if gap == 0 {
        s.add(weights::SAME_START, || "same start");
    } else if gap <= tolerance {
        s.add(weights::NEAR_START, || {
            format!("starts {} min apart", gap / 60)
        });
    } else {
        s.add(weights::DIFFERENT_START, || {
            format!("starts {} min apart", gap / 60)
        });
    }
    if let (Some(x), Some(y)) = (&a.booking, &b.booking) {
        if x == y {
            s.add(weights::SAME_BOOKING_URL, || {
                format!("same booking link {x}")
            });
        }
    }
    if let (Some(x), Some(y)) = (&a.url, &b.url) {
        if x == y {
            s.add(weights::SAME_URL, || format!("same link {x}"));
        }
    }
    match (&a.postcode, &b.postcode) {
        (Some(x), Some(y)) if x == y => {
            s.add(weights::SAME_VENUE, || format!("same venue postcode {x}"))
        }
        (Some(x), Some(y)) => s.add(weights::DIFFERENT_VENUE, || {
            format!("different venues ({x} / {y})")
        }),
        _ => {}
    }
    if a.online && b.online {
        s.add(weights::BOTH_ONLINE, || "both online");
    }
    // Title and time alone are not enough: coffee mornings at 10:00 happen in many places.
    let agrees = (a.online && b.online)
        || (a.postcode.is_some() && a.postcode == b.postcode)
        || (a.booking.is_some() && a.booking == b.booking)
        || (a.url.is_some() && a.url == b.url);
    if !agrees {
        s.add(weights::NO_SHARED_PLACE, || {
            "no shared venue, online status or link"
        });
    }
    if a.recurring != b.recurring {
        s.add(weights::SERIES_AND_SINGLE, || "a series and a single event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedupe::features;
    use crate::model::{Address, Event, Identifiers, Location, Organisation, Payload};

    fn org(name: &str, pc: Option<&str>, charity: Option<&str>, web: Option<&str>) -> Features {
        features::of(&Payload::Organisation(Organisation {
            name: name.into(),
            address: Address {
                postcode: pc.map(String::from),
                ..Default::default()
            },
            identifiers: Identifiers {
                charity_number: charity.map(String::from),
                ..Default::default()
            },
            website: web.map(String::from),
            ..Default::default()
        }))
    }

    fn ev(title: &str, start: &str, booking: Option<&str>, pc: Option<&str>) -> Features {
        features::of(&Payload::Event(Event {
            title: title.into(),
            description: None,
            description_html: None,
            start: chrono::DateTime::parse_from_rfc3339(start).unwrap(),
            end: None,
            timezone: None,
            all_day: false,
            recurrence: None,
            status: Default::default(),
            location: Location {
                postcode: pc.map(String::from),
                ..Default::default()
            },
            url: None,
            booking_url: booking.map(String::from),
            organiser: Default::default(),
            categories: vec![],
            overrides: Vec::new(),
        }))
    }

    #[test]
    fn weighing_without_words_gives_the_explained_figures() {
        let orgs = [
            org(
                "Age UK Hull",
                Some("HU1 3AA"),
                Some("1170001"),
                Some("https://ageuk.org.uk/hull"),
            ),
            org("AUKH", Some("HU1 3AB"), Some("1170001"), None),
            org(
                "Hull Mind",
                Some("HU9 1EP"),
                Some("1170099"),
                Some("https://hullmind.org"),
            ),
            org(
                "Crewe Pride",
                Some("CW1 2AZ"),
                None,
                Some("https://ageuk.org.uk/crewe"),
            ),
        ];
        let events = [
            ev(
                "Funding Fair",
                "2026-01-25T10:00:00Z",
                Some("https://e.example/1"),
                None,
            ),
            ev(
                "Hull Funding Fair",
                "2026-01-25T10:30:00Z",
                Some("https://e.example/1"),
                None,
            ),
            ev(
                "Coffee Morning",
                "2026-01-25T10:00:00Z",
                None,
                Some("HU1 1AA"),
            ),
        ];
        for set in [&orgs[..], &events[..]] {
            for a in set {
                for b in set {
                    let (explained, weighed) = (score(a, b, 3600), weigh(a, b, 3600));
                    assert!(!explained.evidence.is_empty() && weighed.evidence.is_empty());
                    assert_eq!(
                        (explained.weight, explained.conflict),
                        (weighed.weight, weighed.conflict)
                    );
                }
            }
        }
        assert!(weigh(&orgs[0], &events[0], 0).conflict);
    }

    #[test]
    fn decision_rules_for_organisations() {
        // Shared charity number: near-certain whatever the names.
        let s = score(
            &org("Age UK Hull", None, Some("1170001"), None),
            &org("AUKH", None, Some("Registered charity no. 1170001"), None),
            0,
        );
        assert!(s.weight >= 8.0, "{s:?}");
        // Conflicting charity numbers: a hard conflict.
        let s = score(
            &org("Hull Mind", None, Some("1170025"), None),
            &org("Hull Mind", None, Some("1170099"), None),
            0,
        );
        assert!(s.conflict && s.weight < 0.0);
        // Same name and postcode: merge.
        let s = score(
            &org("Child Dynamix", Some("HU4 6TD"), None, None),
            &org("Child Dynamix Ltd", Some("hu46td"), None, None),
            0,
        );
        assert!(s.weight >= 8.0, "{s:?}");
        // Same name, nothing else: only worth a review.
        let s = score(
            &org("Hull Community Shop", None, None, None),
            &org("Hull Community Shop", None, None, None),
            0,
        );
        assert!((4.0..8.0).contains(&s.weight), "{s:?}");
        // Branches of one national charity in different towns: separate.
        let s = score(
            &org("Age UK Hull", Some("HU1 2RE"), None, None),
            &org("Age UK Cheshire East", Some("SK11 6JF"), None, None),
            0,
        );
        assert!(s.weight < 4.0, "{s:?}");
        // Same website and similar name: merge.
        let s = score(
            &org(
                "Crewe Foodbank",
                None,
                None,
                Some("https://crewe.foodbank.org.uk"),
            ),
            &org(
                "Crewe Food Bank",
                None,
                None,
                Some("crewe.foodbank.org.uk/give"),
            ),
            0,
        );
        assert!(s.weight >= 8.0, "{s:?}");
        // Two members of one network's domain are not the same organisation.
        let s = score(
            &org(
                "Crewe Foodbank",
                Some("CW1 2AZ"),
                None,
                Some("https://crewe.foodbank.org.uk"),
            ),
            &org(
                "Hull Foodbank",
                Some("HU9 1EP"),
                None,
                Some("https://hull.foodbank.org.uk"),
            ),
            0,
        );
        assert!(s.weight < 4.0, "{s:?}");
    }

    #[test]
    fn decision_rules_for_events() {
        let a = ev("***SAVE THE DATE*** Webinar: Next Steps in Developing Anchor Institutions in our Region", "2022-01-25T13:00:00Z", Some("https://www.eventbrite.co.uk/e/123"), None);
        let b = ev(
            "Next Steps in Developing Anchor Institutions in Our Region (Webinar)",
            "2022-01-25T13:00:00+00:00",
            Some("https://eventbrite.co.uk/e/123/"),
            None,
        );
        assert!(score(&a, &b, 0).weight >= 8.0);
        // Same title, next week: another occurrence, not a duplicate.
        let c = ev(
            "Community cafe",
            "2027-01-05T10:00:00Z",
            None,
            Some("CW1 2BJ"),
        );
        let d = ev(
            "Community cafe",
            "2027-01-12T10:00:00Z",
            None,
            Some("CW1 2BJ"),
        );
        assert!(score(&c, &d, 900).weight < 4.0);
        // Same title and time at different venues: separate.
        let e = ev(
            "Coffee morning",
            "2027-01-05T10:00:00Z",
            None,
            Some("CW1 2BJ"),
        );
        let f = ev(
            "Coffee morning",
            "2027-01-05T10:00:00Z",
            None,
            Some("HU1 2AA"),
        );
        assert!(score(&e, &f, 0).weight < 8.0);
        // Within the tolerance, same venue: merge.
        let g = ev(
            "Funding fair",
            "2027-01-28T10:00:00Z",
            None,
            Some("HU1 4BG"),
        );
        let h = ev(
            "Hull Funding Fair",
            "2027-01-28T10:15:00Z",
            None,
            Some("HU1 4BG"),
        );
        let s = score(&g, &h, 900);
        assert!(s.weight >= 4.0, "{s:?}");
    }
}
