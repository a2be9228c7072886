//! Survivorship: builds one merged record from a cluster's members. Each field comes from the best
//! member that has it — higher partner `priority`, then fresher, then more complete — and the merged
//! record remembers which partner each field came from.

use std::collections::BTreeMap;

use crate::model::{Event, Organisation, PartnerRef, Payload};
use crate::normalise;
use crate::store::records::StoredRecord;

#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub payload: Payload,
    pub partners: Vec<PartnerRef>,
    /// Field name → partner id it was taken from.
    pub field_sources: BTreeMap<String, String>,
}

fn completeness(p: &Payload) -> usize {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| {
            v.as_object()
                .map(|o| o.values().filter(|v| !is_empty(v)).count())
        })
        .unwrap_or(0)
}

fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.values().all(is_empty),
        serde_json::Value::Bool(b) => !b,
        _ => false,
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
        address: pick(ranked, "address", src, |o| {
            Some(o.address.clone()).filter(|a| !a.is_empty())
        })
        .unwrap_or_default(),
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
        location: pick(ranked, "location", src, |e| {
            Some(e.location.clone()).filter(|l| *l != Default::default())
        })
        .unwrap_or_default(),
        url: pick(ranked, "url", src, |e| non_empty(&e.url)),
        booking_url: pick(ranked, "booking_url", src, |e| non_empty(&e.booking_url)),
        organiser: pick(ranked, "organiser", src, |e| {
            Some(e.organiser.clone()).filter(|o| o.name.is_some() || o.organisation_id.is_some())
        })
        .unwrap_or_default(),
        categories: union_categories(ranked.iter().map(|(_, e)| &e.categories)),
    }
}
