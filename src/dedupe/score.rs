//! Scoring: a match weight per candidate pair in the Fellegi–Sunter frame — each agreeing or
//! disagreeing field adds log2(m/u); agreement on a value is discounted by how many distinct
//! records share it (term-frequency adjustment), and the evidence is kept in words for review.

use strsim::jaro_winkler;

use super::block::{Counts, Field};
use super::features::{EventFeatures, Features, OrgFeatures};

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub weight: f64,
    /// Never the same entity whatever else agrees (linked charities, a series and one of its
    /// occurrences, two series of one calendar).
    pub conflict: bool,
    /// The pair clearly disagrees on something (names, districts, an identifier, one feed): a
    /// cluster may not hold both unless the pair's own weight merges it.
    pub disagree: bool,
    pub evidence: Vec<String>,
}

/// What a pair is compared with besides its features.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// Events starting this many seconds apart may still be one event.
    pub tolerance_secs: i64,
    /// Both records come from one partner's feed (with different ids).
    pub same_feed: bool,
    /// How many distinct records share each of the two records' values (`None`: unknown, each
    /// value counts as typical).
    pub counts: Option<(&'a Counts, &'a Counts)>,
}

impl Context<'_> {
    pub fn plain(tolerance_secs: i64) -> Context<'static> {
        Context {
            tolerance_secs,
            same_feed: false,
            counts: None,
        }
    }

    /// How many distinct records share the agreeing value of `field` (the larger count).
    fn shared(&self, field: Field) -> u32 {
        self.counts
            .map_or(0, |(a, b)| a.get(field).max(b.get(field)))
    }
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

    /// Evidence that the two are plainly different things.
    fn against<S: Into<String>>(&mut self, w: f64, why: impl FnOnce() -> S) {
        self.score.disagree = true;
        self.add(w, why);
    }
}

/// Weights (log2 of m/u at a value's typical frequency); a pair at or above `merge` is merged,
/// at or above `review` queued for an admin.
pub mod weights {
    pub const SAME_ID: f64 = 12.0;
    pub const DIFFERENT_ID: f64 = -6.0;
    pub const ID_TYPO: f64 = -1.0;
    pub const NAME_EXACT: f64 = 6.0;
    pub const NAME_ALMOST: f64 = 5.0;
    pub const NAME_CLOSE: f64 = 4.0;
    pub const NAME_SIMILAR: f64 = 1.0;
    pub const NAME_UNLIKE: f64 = -1.0;
    pub const NAME_DIFFERENT: f64 = -4.0;
    pub const SUBSIDIARY: f64 = -6.0;
    pub const SAME_POSTCODE: f64 = 4.0;
    pub const SAME_SECTOR: f64 = 2.0;
    pub const SAME_OUTWARD: f64 = 1.0;
    pub const SAME_AREA: f64 = -1.0;
    pub const MOVED_IN_TOWN: f64 = 0.0;
    pub const DIFFERENT_AREA: f64 = -3.0;
    pub const SAME_LOCALITY: f64 = 2.0;
    pub const DIFFERENT_LOCALITY: f64 = -0.5;
    pub const SAME_DOMAIN: f64 = 5.0;
    pub const SAME_NETWORK_DOMAIN: f64 = 1.0;
    pub const SAME_EMAIL_DOMAIN: f64 = 3.0;
    pub const SAME_PHONE: f64 = 5.0;
    pub const SAME_MOBILE: f64 = 1.5;
    pub const SAME_FEED: f64 = -6.0;
    pub const TITLE_EXACT: f64 = 6.0;
    pub const TITLE_CLOSE: f64 = 4.0;
    pub const TITLE_SIMILAR: f64 = 1.0;
    pub const TITLE_DIFFERENT: f64 = -6.0;
    pub const SAME_START: f64 = 3.0;
    pub const NEAR_START: f64 = 1.5;
    pub const EARLY_START: f64 = -0.5;
    /// Reading a `Z` listing as local time is an assumption: it costs a little.
    pub const LOCAL_AS_UTC: f64 = -0.5;
    pub const HOUR_OUT: f64 = -2.0;
    pub const SAME_DAY: f64 = 1.0;
    pub const DIFFERENT_START: f64 = -10.0;
    pub const SAME_BOOKING_URL: f64 = 6.0;
    pub const SAME_URL: f64 = 4.0;
    pub const SAME_ROOM: f64 = 3.0;
    pub const SAME_VENUE: f64 = 2.0;
    pub const SAME_VENUE_NAME: f64 = 1.0;
    pub const DIFFERENT_VENUE: f64 = -4.0;
    pub const DIFFERENT_VENUE_NAME: f64 = -5.0;
    pub const BOTH_ONLINE: f64 = 2.0;
    pub const NO_SHARED_PLACE: f64 = -1.0;
}

/// Distinct records a value is typically shared by: one entity listed by several partners. A
/// value shared by more is weaker evidence by log2(shared / TYPICAL_SHARE) (Splink's and
/// fastLink's term-frequency adjustment, u_v / u_typical = f_v / f_typical).
pub const TYPICAL_SHARE: f64 = 4.0;

/// More distinct records than this on one web host make it a platform (facebook.com,
/// u3asites.org.uk): the host says nothing, the page path identifies.
pub const PLATFORM_SHARE: u32 = 12;

/// `base` discounted by the value's frequency; never below zero (agreeing never counts against).
pub fn tf_weight(base: f64, shared: u32) -> f64 {
    let f = f64::from(shared.max(1));
    (base - (f / TYPICAL_SHARE).log2().max(0.0)).max(0.0)
}

fn shared_note(shared: u32) -> String {
    if f64::from(shared) > TYPICAL_SHARE {
        format!(", shared by {shared} records")
    } else {
        String::new()
    }
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
    // Words are walked from the keys, not collected: this runs for every candidate pair of a
    // full resolution, and the allocations were much of its cost.
    let (na, nb) = (words(a).count(), words(b).count());
    if na == 0 || nb == 0 {
        return 0.0;
    }
    let by_word = weakest(a, b).min(weakest(b, a));
    // Words run together or split ("Foodbank" / "Food Bank") defeat word matching; compare the
    // names without spaces too, discounted so a one-word difference still shows. That figure
    // is at most 0.97, so it is only worked out when it could be the larger.
    let sim = if by_word >= JOINED_DISCOUNT {
        by_word
    } else {
        by_word.max(JOINED_DISCOUNT * similarity(&NoSpaces(a), &NoSpaces(b)))
    };
    let (small, large) = if na <= nb { (a, b) } else { (b, a) };
    if na.min(nb) >= 2 && words(small).all(|w| words(large).any(|v| v == w)) {
        return sim.max(0.93);
    }
    sim
}

fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split(' ').filter(|w| !w.is_empty())
}

/// The discount on the similarity of two names compared without their spaces.
const JOINED_DISCOUNT: f64 = 0.97;

/// Each word of `x` matched to its closest word of `y`; the weakest match. A word found as it
/// is scores 1 without being measured.
fn weakest(x: &str, y: &str) -> f64 {
    words(x)
        .map(|w| {
            if words(y).any(|v| v == w) {
                1.0
            } else {
                words(y).map(|v| jaro_winkler(w, v)).fold(0.0, f64::max)
            }
        })
        .fold(1.0, f64::min)
}

/// A name's characters without its spaces, for comparing names whose words are split
/// differently.
struct NoSpaces<'a>(&'a str);

impl<'b> IntoIterator for &NoSpaces<'b> {
    type Item = char;
    type IntoIter = std::iter::Filter<std::str::Chars<'b>, fn(&char) -> bool>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.chars().filter(|c| *c != ' ')
    }
}

/// Jaro–Winkler over the two names' characters without spaces.
fn similarity(a: &NoSpaces, b: &NoSpaces) -> f64 {
    strsim::generic_jaro_winkler(a, b)
}

/// The pair's match weight with its evidence in words, for the review queue and `explain`.
pub fn score(a: &Features, b: &Features, tolerance_secs: i64) -> Score {
    tally(a, b, &Context::plain(tolerance_secs), true)
}

/// [`score`] with the pair's context (value frequencies, one feed).
pub fn score_in(a: &Features, b: &Features, ctx: &Context) -> Score {
    tally(a, b, ctx, true)
}

/// The pair's match weight and conflict alone (`evidence` left empty): the same figures as
/// [`score`], for deciding which of many candidate pairs matter.
pub fn weigh(a: &Features, b: &Features, tolerance_secs: i64) -> Score {
    tally(a, b, &Context::plain(tolerance_secs), false)
}

/// [`weigh`] with the pair's context.
pub fn weigh_in(a: &Features, b: &Features, ctx: &Context) -> Score {
    tally(a, b, ctx, false)
}

fn tally(a: &Features, b: &Features, ctx: &Context, explain: bool) -> Score {
    let mut s = Tally {
        score: Score {
            weight: 0.0,
            conflict: false,
            disagree: false,
            evidence: Vec::new(),
        },
        explain,
    };
    match (a, b) {
        (Features::Org(a), Features::Org(b)) => org(a, b, ctx, &mut s),
        (Features::Event(a), Features::Event(b)) => event(a, b, ctx, &mut s),
        _ => s.score.conflict = true,
    }
    s.score
}

/// Two different numbers that one slip of the keyboard explains: a transposition of two
/// neighbouring characters or one changed character.
fn one_slip(x: &str, y: &str) -> bool {
    if x.len() != y.len() {
        return false;
    }
    let diff: Vec<usize> = x
        .bytes()
        .zip(y.bytes())
        .enumerate()
        .filter(|(_, (p, q))| p != q)
        .map(|(i, _)| i)
        .collect();
    match diff.as_slice() {
        [_] => true,
        [i, j] if j - i == 1 => {
            let (xb, yb) = (x.as_bytes(), y.as_bytes());
            xb[*i] == yb[*j] && xb[*j] == yb[*i]
        }
        _ => false,
    }
}

/// `1093978` and `1093978-1`: a charity and one linked to it, two entities.
fn linked_charities(x: &str, y: &str) -> bool {
    let root = |s: &str| s.split('-').next().unwrap_or(s).to_string();
    x != y && root(x) == root(y)
}

fn identifier(
    s: &mut Tally,
    ctx: &Context,
    field: Field,
    what: &str,
    a: &Option<String>,
    b: &Option<String>,
) {
    let (Some(x), Some(y)) = (a, b) else { return };
    if x == y {
        let shared = ctx.shared(field);
        s.add(tf_weight(weights::SAME_ID, shared), || {
            format!("same {what} {x}{}", shared_note(shared))
        });
    } else if field == Field::Charity && linked_charities(x, y) {
        s.score.conflict = true;
        s.against(weights::DIFFERENT_ID, || {
            format!("linked charities {x} and {y} are different entities")
        });
    } else if one_slip(x, y) {
        s.add(weights::ID_TYPO, || {
            format!("{what}s {x} and {y} differ by one slip (a typo?)")
        });
    } else {
        s.against(weights::DIFFERENT_ID, || {
            format!("different {what}s {x} and {y}")
        });
    }
}

/// The postcode area: the leading letters ("SK" of "SK11 6AB").
fn area(postcode: &str) -> &str {
    let end = postcode
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(postcode.len());
    &postcode[..end]
}

/// The postcode sector: outward code and the inward digit ("SK11 6").
fn sector(postcode: &str) -> &str {
    postcode
        .get(..postcode.len().saturating_sub(2))
        .unwrap_or(postcode)
}

/// Best similarity over each side's name and alternate names.
fn best_name(a: &OrgFeatures, b: &OrgFeatures) -> f64 {
    let mut best = name_similarity(&a.strong, &b.strong);
    for x in std::iter::once(&a.strong).chain(&a.alternates) {
        for y in std::iter::once(&b.strong).chain(&b.alternates) {
            best = best.max(name_similarity(x, y));
        }
    }
    best
}

fn org_names(a: &OrgFeatures, b: &OrgFeatures, s: &mut Tally) {
    let best = best_name(a, b);
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
    if best < 0.8 {
        s.against(w, || format!("{why} ({best:.2})"));
    } else {
        s.add(w, || format!("{why} ({best:.2})"));
    }
    if a.subsidiary != b.subsidiary {
        s.against(weights::SUBSIDIARY, || {
            "a subsidiary (trading arm) and another body"
        });
    }
}

fn org_places(a: &OrgFeatures, b: &OrgFeatures, ctx: &Context, s: &mut Tally) {
    match (&a.postcode, &b.postcode) {
        (Some(x), Some(y)) if x == y => {
            let shared = ctx.shared(Field::Postcode);
            s.add(tf_weight(weights::SAME_POSTCODE, shared), || {
                format!("same postcode {x}{}", shared_note(shared))
            })
        }
        (Some(x), Some(y)) if sector(x) == sector(y) => s.add(weights::SAME_SECTOR, || {
            format!("same postcode sector ({x} / {y})")
        }),
        (Some(x), Some(y)) if a.outward == b.outward => s.add(weights::SAME_OUTWARD, || {
            format!("same postcode district ({x} / {y})")
        }),
        // An organisation that moved across its town keeps the town and the postcode area: a
        // new district under the same town name is a move, not a different place.
        (Some(x), Some(y))
            if area(x) == area(y) && a.locality.is_some() && a.locality == b.locality =>
        {
            s.add(weights::MOVED_IN_TOWN, || {
                format!("different postcode districts in one area and town ({x} / {y})")
            })
        }
        // A move within the same postcode area is common; a different area is not.
        (Some(x), Some(y)) if area(x) == area(y) => s.against(weights::SAME_AREA, || {
            format!("different postcode districts in one area ({x} / {y})")
        }),
        (Some(x), Some(y)) => s.against(weights::DIFFERENT_AREA, || {
            format!("different areas ({x} / {y})")
        }),
        _ => {}
    }
    // Towns are written as official names, common names or neighbourhoods: weak either way.
    match (&a.locality, &b.locality) {
        (Some(x), Some(y)) if x == y => {
            s.add(weights::SAME_LOCALITY, || format!("same town ({x})"))
        }
        (Some(x), Some(y)) => s.add(weights::DIFFERENT_LOCALITY, || {
            format!("different towns ({x} / {y})")
        }),
        _ => {}
    }
}

fn org_contacts(a: &OrgFeatures, b: &OrgFeatures, ctx: &Context, s: &mut Tally) {
    // A host many records share is a platform: only the page path says whose site it is.
    let host_shared = ctx.shared(Field::Site);
    match (&a.site, &b.site) {
        (Some(x), Some(y)) if x == y && host_shared > PLATFORM_SHARE => {
            if a.site_path.is_some()
                && a.site_path == b.site_path
                && a.site_path.as_ref() != Some(x)
            {
                let shared = ctx.shared(Field::SitePath);
                let page = a.site_path.as_deref().unwrap_or_default();
                s.add(tf_weight(weights::SAME_DOMAIN, shared), || {
                    format!("same page {page} on a shared host{}", shared_note(shared))
                });
            } else {
                s.add(0.0, || {
                    format!("websites on {x}, a host {host_shared} records share")
                });
            }
        }
        (Some(x), Some(y)) if x == y => s.add(tf_weight(weights::SAME_DOMAIN, host_shared), || {
            format!("same website {x}{}", shared_note(host_shared))
        }),
        (Some(_), Some(_)) if a.domain.is_some() && a.domain == b.domain => s
            .add(weights::SAME_NETWORK_DOMAIN, || {
                format!("websites under {}", a.domain.as_deref().unwrap_or_default())
            }),
        _ => {}
    }
    if let (Some(x), Some(y)) = (&a.email_domain, &b.email_domain) {
        if x == y {
            let shared = ctx.shared(Field::Email);
            s.add(tf_weight(weights::SAME_EMAIL_DOMAIN, shared), || {
                format!("same email domain {x}{}", shared_note(shared))
            });
        }
    }
    if let (Some(x), Some(y)) = (&a.phone, &b.phone) {
        if x == y {
            let shared = ctx.shared(Field::Phone);
            let (base, what) = if a.mobile {
                (weights::SAME_MOBILE, "same mobile")
            } else {
                (weights::SAME_PHONE, "same phone")
            };
            s.add(tf_weight(base, shared), || {
                format!("{what} {x}{}", shared_note(shared))
            });
        }
    }
}

fn org(a: &OrgFeatures, b: &OrgFeatures, ctx: &Context, s: &mut Tally) {
    identifier(
        s,
        ctx,
        Field::Charity,
        "charity number",
        &a.charity,
        &b.charity,
    );
    identifier(
        s,
        ctx,
        Field::Company,
        "company number",
        &a.company,
        &b.company,
    );
    identifier(s, ctx, Field::OrgId, "org-id", &a.org_id, &b.org_id);
    org_names(a, b, s);
    org_places(a, b, ctx, s);
    org_contacts(a, b, ctx, s);
    if ctx.same_feed {
        s.against(weights::SAME_FEED, || {
            "one partner lists both under different ids"
        });
    }
}

/// The local date of an instant at a UTC offset (days since 1970-01-01).
fn local_day(start: i64, offset: i32) -> i64 {
    (start + i64::from(offset)).div_euclid(86_400)
}

/// How far apart two timed listings start once a partner's local time written as UTC is
/// undone: a listing marked `Z` (offset 0) later than one carrying the local offset by about
/// that offset is read as local. `None` when the offsets give no such reading.
fn unshifted_gap(a: &EventFeatures, b: &EventFeatures) -> Option<i64> {
    let shifted = |z: &EventFeatures, local: &EventFeatures| {
        (z.offset == 0 && local.offset != 0)
            .then(|| (z.start - i64::from(local.offset) - local.start).abs())
    };
    shifted(a, b).or_else(|| shifted(b, a))
}

/// Starts this far apart are a room or registration opening early ("09:30 for 10:00"),
/// whatever the configured tolerance.
const EARLY_OPENING_SECS: i64 = 30 * 60;

/// The weight of two starts `gap` seconds apart, and how it reads; `None` past every band.
fn start_band(gap: i64, tolerance: i64) -> Option<(f64, String)> {
    if gap == 0 {
        Some((weights::SAME_START, "same start".into()))
    } else if gap <= tolerance {
        Some((
            weights::NEAR_START,
            format!("starts {} min apart", gap / 60),
        ))
    } else if gap <= EARLY_OPENING_SECS.max(tolerance) {
        Some((
            weights::EARLY_START,
            format!(
                "starts {} min apart (doors or registration open early?)",
                gap / 60
            ),
        ))
    } else {
        None
    }
}

fn event_time(a: &EventFeatures, b: &EventFeatures, ctx: &Context, s: &mut Tally) {
    // A day-only listing gives a local date: the other's start is compared on that date in the
    // day-only listing's own offset, not by UTC days (midnight in summer is 23:00 UTC).
    if a.all_day || b.all_day {
        let offset = if a.all_day { a.offset } else { b.offset };
        let days = (local_day(a.start, offset) - local_day(b.start, offset)).abs();
        if days == 0 {
            s.add(weights::SAME_DAY, || "same day, one listing gives no time");
        } else {
            s.against(weights::DIFFERENT_START, || format!("{days} days apart"));
        }
        return;
    }
    let gap = (a.start - b.start).abs();
    if let Some((w, why)) = start_band(gap, ctx.tolerance_secs) {
        s.add(w, || why);
        return;
    }
    if !ctx.same_feed {
        if let Some((w, why)) = unshifted_gap(a, b).and_then(|g| start_band(g, ctx.tolerance_secs))
        {
            s.add(w + weights::LOCAL_AS_UTC, || {
                format!("{why} once local time written as UTC is read as local")
            });
            return;
        }
        if gap == 3600 {
            // Both marked UTC: one may still be local time an hour out in summer.
            s.add(weights::HOUR_OUT, || {
                "exactly one hour apart (local time written as UTC?)"
            });
            return;
        }
    }
    s.against(weights::DIFFERENT_START, || {
        format!("starts {} min apart", gap / 60)
    });
}

/// A listing's links by field: booking, event page and online room. Partners put one link in
/// different fields (an Eventbrite page as the event link or the booking link, a Zoom link as
/// the booking link or the room), so each is compared with every field of the other.
fn links(e: &EventFeatures) -> [(Field, Option<&String>, f64); 3] {
    [
        (
            Field::Booking,
            e.booking.as_ref(),
            weights::SAME_BOOKING_URL,
        ),
        (Field::Url, e.url.as_ref(), weights::SAME_URL),
        (Field::Room, e.room.as_ref(), weights::SAME_ROOM),
    ]
}

/// The strongest link the two share: (base weight of the stronger field, link, distinct records
/// sharing it).
fn shared_link<'a>(
    a: &'a EventFeatures,
    b: &EventFeatures,
    ctx: &Context,
) -> Option<(f64, &'a str, u32)> {
    let mut best: Option<(f64, &str, u32)> = None;
    for (fa, x, wa) in links(a) {
        for (fb, y, wb) in links(b) {
            let (Some(x), Some(y)) = (x, y) else { continue };
            if x != y {
                continue;
            }
            let shared = ctx.counts.map_or(0, |(ca, cb)| ca.get(fa).max(cb.get(fb)));
            let w = tf_weight(wa.max(wb), shared);
            if best.is_none_or(|(bw, _, _)| w > bw) {
                best = Some((w, x.as_str(), shared));
            }
        }
    }
    best
}

fn event_links(a: &EventFeatures, b: &EventFeatures, ctx: &Context, s: &mut Tally) -> bool {
    let Some((w, link, shared)) = shared_link(a, b, ctx) else {
        return false;
    };
    s.add(w, || format!("same link {link}{}", shared_note(shared)));
    true
}

/// Venue evidence; whether the two agree on the place (postcode, venue name or address).
fn event_venue(a: &EventFeatures, b: &EventFeatures, s: &mut Tally) -> bool {
    let mut agrees = false;
    match (&a.postcode, &b.postcode) {
        (Some(x), Some(y)) if x == y => {
            agrees = true;
            s.add(weights::SAME_VENUE, || format!("same venue postcode {x}"))
        }
        (Some(x), Some(y)) => s.against(weights::DIFFERENT_VENUE, || {
            format!("different venues ({x} / {y})")
        }),
        _ => {}
    }
    // Two family hubs can share a postcode sector or have none given: the venue's own name
    // (or street address) tells them apart.
    for (x, y, what) in [
        (&a.venue, &b.venue, "venue"),
        (&a.address, &b.address, "address"),
    ] {
        if let (Some(x), Some(y)) = (x, y) {
            let sim = name_similarity(x, y);
            if sim >= 0.9 {
                agrees = true;
                s.add(weights::SAME_VENUE_NAME, || format!("same {what} ({x})"));
            } else if sim < 0.75 {
                s.against(weights::DIFFERENT_VENUE_NAME, || {
                    format!("different {what}s ({x} / {y})")
                });
            }
            break;
        }
    }
    if a.online && b.online {
        agrees = true;
        s.add(weights::BOTH_ONLINE, || "both online");
    }
    agrees
}

/// Best similarity of the two titles, whole or without a partner's decoration. A head (a remark
/// dropped) is compared with the other's whole or tail, never with its head, and a tail (a
/// prefix dropped) likewise: two sessions with the same remark ("… - all welcome") or the same
/// organiser prefix do not match on it, nor on that remark being part of the other's title.
fn best_title(a: &EventFeatures, b: &EventFeatures) -> f64 {
    fn whole(e: &EventFeatures) -> Option<&str> {
        Some(e.title.as_str())
    }
    fn head(e: &EventFeatures) -> Option<&str> {
        e.title_head.as_deref()
    }
    fn tail(e: &EventFeatures) -> Option<&str> {
        e.title_tail.as_deref()
    }
    type Part = fn(&EventFeatures) -> Option<&str>;
    let pairs: [(Part, Part); 7] = [
        (whole, whole),
        (whole, head),
        (whole, tail),
        (head, whole),
        (tail, whole),
        (head, tail),
        (tail, head),
    ];
    let mut best: f64 = 0.0;
    for (pa, pb) in pairs {
        // A part both titles carry in the same place is their common decoration, not a title.
        let decoration = |p: Part| p(a).is_some() && p(a) == p(b) && p(a) != whole(a);
        if decoration(pa) || decoration(pb) {
            continue;
        }
        if let (Some(x), Some(y)) = (pa(a), pb(b)) {
            best = best.max(name_similarity(x, y));
            if best >= 0.999 {
                break;
            }
        }
    }
    best
}

fn event(a: &EventFeatures, b: &EventFeatures, ctx: &Context, s: &mut Tally) {
    let sim = best_title(a, b);
    let (w, why) = if sim >= 0.999 {
        (weights::TITLE_EXACT, "same title")
    } else if sim >= 0.93 {
        (weights::TITLE_CLOSE, "nearly the same title")
    } else if sim >= 0.85 {
        (weights::TITLE_SIMILAR, "similar titles")
    } else {
        (weights::TITLE_DIFFERENT, "different titles")
    };
    if sim < 0.85 {
        s.against(w, || format!("{why} ({sim:.2})"));
    } else {
        s.add(w, || format!("{why} ({sim:.2})"));
    }
    event_time(a, b, ctx, s);
    let linked = event_links(a, b, ctx, s);
    let placed = event_venue(a, b, s);
    // Title and time alone are not enough: coffee mornings at 10:00 happen in many places.
    if !linked && !placed {
        s.add(weights::NO_SHARED_PLACE, || {
            "no shared venue, online status or link"
        });
    }
    // A series and one of its occurrences posted alone: a link between them, not a merge.
    if a.recurring != b.recurring {
        s.score.conflict = true;
        s.against(0.0, || "a series and a single event (linked, never merged)");
    }
    if ctx.same_feed {
        if a.recurring && b.recurring {
            s.score.conflict = true;
            s.against(0.0, || "two series of one calendar (different UIDs)");
        } else {
            s.against(weights::SAME_FEED, || {
                "one partner lists both under different ids"
            });
        }
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
        // Conflicting charity numbers: evidence against (one listing's number may be wrong), so
        // the pair neither merges nor is vetoed from review.
        let s = score(
            &org("Hull Mind", None, Some("1170025"), None),
            &org("Hull Mind", None, Some("1170099"), None),
            0,
        );
        assert!(s.disagree && !s.conflict && s.weight < 8.0, "{s:?}");
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
