//! Survivorship: builds one merged record from a cluster's members. Each field comes from the best
//! member that has it — higher partner `priority`, then fresher, then more complete — and the merged
//! record remembers which partner each field came from.

use std::collections::BTreeMap;

use crate::model::{Event, Organisation, PartnerRef, Payload};
use crate::normalise;
use crate::store::records::StoredRecord;

pub use crate::model::Merged;

/// How many of a record's fields carry something: the last tie-break between equally trusted
/// members. Counted field by field (a ranking calls it for every compared pair, and going through
/// `serde_json::Value` cost more than the rest of a merge); the test below holds it to the count
/// of non-empty values in the record's JSON, so it cannot drift from the model.
fn completeness(p: &Payload) -> usize {
    fn text(s: &str) -> usize {
        usize::from(!s.is_empty())
    }
    fn opt(s: &Option<String>) -> usize {
        s.as_deref().map_or(0, text)
    }
    fn list<T>(v: &[T]) -> usize {
        usize::from(!v.is_empty())
    }
    fn any(parts: &[usize]) -> usize {
        usize::from(parts.iter().any(|&n| n > 0))
    }
    // The "kind" tag is always there.
    1 + match p {
        Payload::Organisation(o) => {
            let ids = &o.identifiers;
            let a = &o.address;
            text(&o.name)
                + list(&o.alternate_names)
                + opt(&o.description)
                + opt(&o.description_html)
                + any(&[
                    opt(&ids.charity_number),
                    opt(&ids.company_number),
                    opt(&ids.org_id),
                ])
                + opt(&o.website)
                + opt(&o.email)
                + opt(&o.phone)
                + any(&[
                    opt(&a.street),
                    opt(&a.locality),
                    opt(&a.region),
                    opt(&a.postcode),
                    usize::from(a.latitude.is_some() || a.longitude.is_some()),
                ])
                + list(&o.categories)
        }
        Payload::Event(e) => {
            let l = &e.location;
            text(&e.title)
                + opt(&e.description)
                + opt(&e.description_html)
                + 1 // start
                + usize::from(e.end.is_some())
                + opt(&e.timezone)
                + usize::from(e.all_day)
                + e.recurrence.as_deref().map_or(0, list)
                + 1 // status
                + any(&[
                    opt(&l.name),
                    opt(&l.address),
                    opt(&l.postcode),
                    usize::from(l.online),
                    opt(&l.url),
                    usize::from(l.latitude.is_some() || l.longitude.is_some()),
                ])
                + opt(&e.url)
                + opt(&e.booking_url)
                + any(&[opt(&e.organiser.name), opt(&e.organiser.organisation_id)])
                + list(&e.categories)
        }
    }
}

/// Members ranked best first.
fn ranked<'a>(members: &[&'a StoredRecord]) -> Vec<&'a StoredRecord> {
    let mut v: Vec<&StoredRecord> = members.to_vec();
    v.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(b.changed_at.cmp(&a.changed_at))
            .then(completeness(&b.payload).cmp(&completeness(&a.payload)))
            .then(a.partner.cmp(&b.partner))
            .then(a.record_id.cmp(&b.record_id))
    });
    v
}

/// Takes a field from the first ranked member that has it, noting the partner.
fn pick<T: Clone, S>(
    ranked: &[(&StoredRecord, &S)],
    field: &str,
    sources: &mut BTreeMap<String, String>,
    get: impl Fn(&S) -> Option<T>,
) -> Option<T> {
    for (r, s) in ranked {
        if let Some(v) = get(s) {
            sources.insert(field.to_string(), r.partner.clone());
            return Some(v);
        }
    }
    None
}

/// A place taken whole keeps its own point; without one it takes the best member's partner-given
/// point at the same postcode (or any, when the place names no postcode), which beats the
/// postcode centroid a search would otherwise use. A point from another postcode is not taken:
/// it would put the place somewhere its address says it is not.
fn with_given_point<P, S>(
    mut place: P,
    ranked: &[(&StoredRecord, &S)],
    field: &str,
    sources: &mut BTreeMap<String, String>,
    point_of: impl Fn(&S) -> (&Option<String>, Option<(f64, f64)>),
    parts: impl Fn(&mut P) -> (&Option<String>, &mut Option<f64>, &mut Option<f64>),
) -> P {
    let (postcode, lat, lon) = parts(&mut place);
    if lat.is_some() && lon.is_some() {
        return place;
    }
    let wanted = postcode.clone();
    let found = ranked.iter().find_map(|(r, s)| {
        let (pc, point) = point_of(s);
        let same = wanted.is_none() || pc == &wanted;
        point.filter(|_| same).map(|p| (r.partner.clone(), p))
    });
    if let Some((partner, (la, lo))) = found {
        (*lat, *lon) = (Some(la), Some(lo));
        sources.insert(field.to_string(), partner);
    }
    place
}

fn union_categories<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in lists {
        for c in list {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
                out.push(c.clone());
            }
        }
    }
    out
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|s| !s.trim().is_empty()).cloned()
}

pub fn merge(members: &[&StoredRecord]) -> Merged {
    let ranked = ranked(members);
    let mut partners: Vec<PartnerRef> = ranked
        .iter()
        .map(|r| PartnerRef {
            partner: r.partner.clone(),
            record_id: r.record_id.clone(),
            url: r.url.clone(),
        })
        .collect();
    partners.sort();
    let mut sources = BTreeMap::new();
    let orgs: Vec<(&StoredRecord, &Organisation)> = ranked
        .iter()
        .filter_map(|r| match &r.payload {
            Payload::Organisation(o) => Some((*r, o)),
            Payload::Event(_) => None,
        })
        .collect();
    let payload = if !orgs.is_empty() {
        Payload::Organisation(merge_org(&orgs, &mut sources))
    } else {
        let events: Vec<(&StoredRecord, &Event)> = ranked
            .iter()
            .filter_map(|r| match &r.payload {
                Payload::Event(e) => Some((*r, e)),
                Payload::Organisation(_) => None,
            })
            .collect();
        Payload::Event(merge_event(&events, &mut sources))
    };
    Merged {
        payload,
        partners,
        field_sources: sources,
    }
}

fn merge_org(
    ranked: &[(&StoredRecord, &Organisation)],
    src: &mut BTreeMap<String, String>,
) -> Organisation {
    let name = pick(ranked, "name", src, |o| {
        Some(o.name.clone()).filter(|n| !n.is_empty())
    })
    .unwrap_or_default();
    let name_key = normalise::name_key(&name);
    let mut alternate_names: Vec<String> = Vec::new();
    for (_, o) in ranked {
        for n in std::iter::once(&o.name).chain(o.alternate_names.iter()) {
            let k = normalise::name_key(n);
            if k != name_key
                && !n.is_empty()
                && !alternate_names.iter().any(|a| normalise::name_key(a) == k)
            {
                alternate_names.push(n.clone());
            }
        }
    }
    let mut identifiers = crate::model::Identifiers {
        charity_number: pick(ranked, "identifiers.charity_number", src, |o| {
            non_empty(&o.identifiers.charity_number)
        }),
        company_number: pick(ranked, "identifiers.company_number", src, |o| {
            non_empty(&o.identifiers.company_number)
        }),
        org_id: pick(ranked, "identifiers.org_id", src, |o| {
            non_empty(&o.identifiers.org_id)
        }),
    };
    if identifiers.org_id.is_none() {
        // Derive the org-id.guide form when a charity number says which register it is in.
        if let Some(n) = identifiers.charity_number.as_deref() {
            if n.chars().all(|c| c.is_ascii_digit()) {
                identifiers.org_id = Some(format!("GB-CHC-{n}"));
            }
        }
    }
    let (description, description_html) = pick(ranked, "description", src, |o| {
        non_empty(&o.description).map(|d| (Some(d), o.description_html.clone()))
    })
    .unwrap_or((None, None));
    Organisation {
        name,
        alternate_names,
        description,
        description_html,
        identifiers,
        website: pick(ranked, "website", src, |o| non_empty(&o.website)),
        email: pick(ranked, "email", src, |o| non_empty(&o.email)),
        phone: pick(ranked, "phone", src, |o| non_empty(&o.phone)),
        // An address is taken whole: mixing one partner's street with another's postcode misleads.
        address: with_given_point(
            pick(ranked, "address", src, |o| {
                Some(o.address.clone()).filter(|a| !a.is_empty())
            })
            .unwrap_or_default(),
            ranked,
            "address.point",
            src,
            |o| {
                (
                    &o.address.postcode,
                    o.address.latitude.zip(o.address.longitude),
                )
            },
            |a| (&a.postcode, &mut a.latitude, &mut a.longitude),
        ),
        categories: union_categories(ranked.iter().map(|(_, o)| &o.categories)),
    }
}

fn merge_event(ranked: &[(&StoredRecord, &Event)], src: &mut BTreeMap<String, String>) -> Event {
    let Some((top_rec, top)) = ranked.first() else {
        // Unreachable in practice: a cluster always has a member.
        return Event {
            title: String::new(),
            description: None,
            description_html: None,
            start: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
            end: None,
            timezone: None,
            all_day: false,
            recurrence: None,
            status: Default::default(),
            location: Default::default(),
            url: None,
            booking_url: None,
            organiser: Default::default(),
            categories: Vec::new(),
            overrides: Vec::new(),
        };
    };
    // When and whether it happens come as one unit from the best member.
    src.insert("start".into(), top_rec.partner.clone());
    src.insert("status".into(), top_rec.partner.clone());
    src.insert("title".into(), top_rec.partner.clone());
    let (description, description_html) = pick(ranked, "description", src, |e| {
        non_empty(&e.description).map(|d| (Some(d), e.description_html.clone()))
    })
    .unwrap_or((None, None));
    Event {
        title: top.title.clone(),
        description,
        description_html,
        start: top.start,
        end: top.end,
        timezone: top.timezone.clone(),
        all_day: top.all_day,
        recurrence: top.recurrence.clone(),
        status: top.status,
        location: with_given_point(
            pick(ranked, "location", src, |e| {
                Some(e.location.clone()).filter(|l| *l != Default::default())
            })
            .unwrap_or_default(),
            ranked,
            "location.point",
            src,
            |e| {
                (
                    &e.location.postcode,
                    e.location.latitude.zip(e.location.longitude),
                )
            },
            |l| (&l.postcode, &mut l.latitude, &mut l.longitude),
        ),
        url: pick(ranked, "url", src, |e| non_empty(&e.url)),
        booking_url: pick(ranked, "booking_url", src, |e| non_empty(&e.booking_url)),
        organiser: pick(ranked, "organiser", src, |e| {
            Some(e.organiser.clone()).filter(|o| o.name.is_some() || o.organisation_id.is_some())
        })
        .unwrap_or_default(),
        categories: union_categories(ranked.iter().map(|(_, e)| &e.categories)),
        overrides: top.overrides.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, EventStatus, Identifiers, Location, Organiser};

    /// What completeness means: the record's JSON values that are not null, "", [], false or
    /// an object of such.
    fn non_empty_values(p: &Payload) -> usize {
        fn empty(v: &serde_json::Value) -> bool {
            match v {
                serde_json::Value::Null => true,
                serde_json::Value::String(s) => s.is_empty(),
                serde_json::Value::Array(a) => a.is_empty(),
                serde_json::Value::Object(o) => o.values().all(empty),
                serde_json::Value::Bool(b) => !b,
                serde_json::Value::Number(_) => false,
            }
        }
        let v = serde_json::to_value(p).unwrap_or_default();
        v.as_object()
            .map_or(0, |o| o.values().filter(|v| !empty(v)).count())
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn completeness_counts_the_non_empty_json_values() {
        let start = chrono::DateTime::parse_from_rfc3339("2027-03-01T10:00:00+00:00").unwrap();
        // Every field spelled out (no `..Default`), so a new model field fails to compile here
        // until completeness counts it.
        let full_event = Event {
            title: "Funding fair".into(),
            description: s("d"),
            description_html: s("<p>d</p>"),
            start,
            end: Some(start),
            timezone: s("Europe/London"),
            all_day: true,
            recurrence: Some(vec!["RRULE:FREQ=WEEKLY".into()]),
            status: EventStatus::Cancelled,
            location: Location {
                name: s("Hall"),
                address: s("1 Road"),
                postcode: s("TR1 1AA"),
                online: true,
                url: s("https://example.org/room"),
                latitude: Some(50.26),
                longitude: Some(-5.05),
            },
            url: s("https://example.org/e"),
            booking_url: s("https://example.org/b"),
            organiser: Organiser {
                name: s("CVS"),
                organisation_id: s("org_1"),
            },
            categories: vec!["training".into()],
            overrides: Vec::new(),
        };
        let sparse_event = Event {
            title: String::new(),
            description: s(""),
            description_html: None,
            start,
            end: None,
            timezone: s(""),
            all_day: false,
            recurrence: Some(Vec::new()),
            status: EventStatus::Scheduled,
            location: Location {
                name: s(""),
                online: false,
                ..Default::default()
            },
            url: None,
            booking_url: s(""),
            organiser: Organiser {
                name: None,
                organisation_id: s(""),
            },
            categories: Vec::new(),
            overrides: Vec::new(),
        };
        let online_only = Event {
            location: Location {
                online: true,
                ..Default::default()
            },
            ..sparse_event.clone()
        };
        let full_org = Organisation {
            name: "Truro Foodbank".into(),
            alternate_names: vec!["TFB".into()],
            description: s("d"),
            description_html: s("<p>d</p>"),
            identifiers: Identifiers {
                charity_number: s("1"),
                company_number: s("2"),
                org_id: s("GB-CHC-1"),
            },
            website: s("https://example.org"),
            email: s("a@example.org"),
            phone: s("01872 000000"),
            address: Address {
                street: s("1 Road"),
                locality: s("Truro"),
                region: s("Cornwall"),
                postcode: s("TR1 1AA"),
                latitude: Some(50.26),
                longitude: Some(-5.05),
            },
            categories: vec!["food".into()],
        };
        let sparse_org = Organisation {
            name: "X".into(),
            identifiers: Identifiers {
                charity_number: s(""),
                ..Default::default()
            },
            address: Address {
                postcode: s("TR1 1AA"),
                ..Default::default()
            },
            ..Default::default()
        };
        for p in [
            Payload::Event(full_event),
            Payload::Event(sparse_event),
            Payload::Event(online_only),
            Payload::Organisation(full_org),
            Payload::Organisation(sparse_org),
            Payload::Organisation(Organisation::default()),
        ] {
            assert_eq!(completeness(&p), non_empty_values(&p), "{p:?}");
        }
    }

    fn member(
        partner: &str,
        priority: i64,
        postcode: &str,
        point: Option<(f64, f64)>,
    ) -> StoredRecord {
        StoredRecord {
            row_id: priority,
            partner: partner.into(),
            priority,
            record_id: format!("{partner}-1"),
            url: None,
            changed_at: chrono::DateTime::UNIX_EPOCH,
            payload: Payload::Organisation(Organisation {
                name: "Crewe Foodbank".into(),
                address: Address {
                    street: Some(format!("{partner} street")),
                    postcode: Some(postcode.into()),
                    latitude: point.map(|p| p.0),
                    longitude: point.map(|p| p.1),
                    ..Default::default()
                },
                ..Default::default()
            }),
            entity_id: None,
        }
    }

    fn merged_address(members: &[&StoredRecord]) -> (Address, Option<String>) {
        let m = merge(members);
        let Payload::Organisation(o) = m.payload else {
            panic!("not an organisation")
        };
        (o.address, m.field_sources.get("address.point").cloned())
    }

    #[test]
    fn a_partner_given_point_at_the_same_postcode_joins_the_chosen_address() {
        let best = member("best", 9, "CW1 2BJ", None);
        let other = member("other", 1, "CW1 2BJ", Some((53.0979, -2.4411)));
        let elsewhere = member("elsewhere", 5, "SK10 1EE", Some((53.26, -2.125)));
        let (a, from) = merged_address(&[&best, &other, &elsewhere]);
        assert_eq!(
            a.street.as_deref(),
            Some("best street"),
            "the address stays whole"
        );
        assert_eq!((a.latitude, a.longitude), (Some(53.0979), Some(-2.4411)));
        assert_eq!(from.as_deref(), Some("other"));

        // A point from another postcode is not put on this address: the centroid serves it.
        let (a, from) = merged_address(&[&best, &elsewhere]);
        assert_eq!((a.latitude, a.longitude), (None, None));
        assert_eq!(from, None);

        // The chosen address's own point is kept over a lower member's.
        let own = member("own", 9, "CW1 2BJ", Some((53.1, -2.44)));
        let (a, from) = merged_address(&[&own, &other]);
        assert_eq!((a.latitude, a.longitude), (Some(53.1), Some(-2.44)));
        assert_eq!(from, None);
    }
}
