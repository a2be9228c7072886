//! Dedupe: decides which partner records describe the same organisation or event, and gives each
//! resulting cluster a stable canonical id. Pure: records in, clusters out; the store applies them.
//! First version: exact matches on normalised identifiers, name + postcode, title + start instant.

pub mod merge;

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use crate::model::{Payload, RecordKind};
use crate::normalise;
use crate::store::records::StoredRecord;

/// One canonical entity as resolved: its members and the merged record.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub entity_id: String,
    /// Indices into the records passed to [`resolve`].
    pub members: Vec<usize>,
    /// Earlier canonical ids that this cluster's id now stands for (they redirect to it).
    pub absorbed: Vec<String>,
    pub merged: merge::Merged,
}

/// Resolves every live record of one kind into clusters with stable ids.
///
/// `id_taken` says whether a canonical id was ever issued (live, merged or deleted), so a new
/// cluster never reuses a retired id.
pub fn resolve(
    kind: RecordKind,
    records: &[StoredRecord],
    id_taken: &dyn Fn(&str) -> bool,
) -> Vec<Cluster> {
    let groups = group(records);
    let mut groups: Vec<Vec<usize>> = groups.into_values().collect();
    for g in &mut groups {
        g.sort_by(|&a, &b| order_key(&records[a]).cmp(&order_key(&records[b])));
    }
    // Deterministic whatever order the records arrived in.
    groups.sort_by(|a, b| order_key(&records[a[0]]).cmp(&order_key(&records[b[0]])));

    // Which group owns each previously issued id: the one holding that id's first record.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let mut owned: Vec<Vec<&str>> = vec![Vec::new(); groups.len()];
    for (gi, g) in groups.iter().enumerate() {
        for &m in g {
            if let Some(id) = records[m].entity_id.as_deref() {
                owner.entry(id).or_insert(gi);
            }
        }
    }
    for (gi, g) in groups.iter().enumerate() {
        for &m in g {
            if let Some(id) = records[m].entity_id.as_deref() {
                if owner.get(id) == Some(&gi) && !owned[gi].contains(&id) {
                    owned[gi].push(id);
                }
            }
        }
    }

    let mut issued: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut clusters = Vec::with_capacity(groups.len());
    for (gi, members) in groups.into_iter().enumerate() {
        let ids = &owned[gi];
        let (entity_id, absorbed) = match ids.split_first() {
            Some((first, rest)) => (
                (*first).to_string(),
                rest.iter().map(|s| s.to_string()).collect(),
            ),
            None => (
                new_id(kind, &records[members[0]], &|id| {
                    id_taken(id) || issued.contains(id) || owner.contains_key(id)
                }),
                Vec::new(),
            ),
        };
        issued.insert(entity_id.clone());
        let member_refs: Vec<&StoredRecord> = members.iter().map(|&i| &records[i]).collect();
        let merged = merge::merge(&member_refs);
        clusters.push(Cluster {
            entity_id,
            members,
            absorbed,
            merged,
        });
    }
    clusters
}

fn order_key(r: &StoredRecord) -> (&str, &str, i64) {
    (&r.partner, &r.record_id, r.row_id)
}

/// A fresh id derived from the cluster's first member, so rebuilding a store from the same feeds
/// issues the same ids.
fn new_id(kind: RecordKind, first: &StoredRecord, taken: &dyn Fn(&str) -> bool) -> String {
    let mut salt = 0u32;
    loop {
        let mut h = Sha256::new();
        h.update(kind.as_str());
        h.update([0]);
        h.update(&first.partner);
        h.update([0]);
        h.update(&first.record_id);
        if salt > 0 {
            h.update(salt.to_be_bytes());
        }
        let digest = h.finalize();
        let id = format!(
            "{}{}",
            kind.id_prefix(),
            crate::store::records::hex(&digest[..8])
        );
        if !taken(&id) {
            return id;
        }
        salt += 1;
    }
}

/// Match keys of one record: records sharing any key are the same entity.
fn keys(payload: &Payload) -> Vec<String> {
    let mut keys = Vec::new();
    match payload {
        Payload::Organisation(o) => {
            if let Some(n) = o
                .identifiers
                .charity_number
                .as_deref()
                .and_then(normalise::charity_number)
            {
                keys.push(format!("chc:{n}"));
            }
            if let Some(n) = o
                .identifiers
                .company_number
                .as_deref()
                .and_then(normalise::company_number)
            {
                keys.push(format!("coh:{n}"));
            }
            if let Some(id) = o.identifiers.org_id.as_deref() {
                let id = id.trim().to_ascii_uppercase();
                if !id.is_empty() {
                    keys.push(format!("orgid:{id}"));
                }
            }
            if let Some(pc) = o.address.postcode.as_deref().and_then(normalise::postcode) {
                let name = normalise::name_key(&o.name);
                if !name.is_empty() {
                    keys.push(format!("np:{name}|{pc}"));
                }
            }
        }
        Payload::Event(e) => {
            let title = normalise::title_key(&e.title);
            if !title.is_empty() {
                keys.push(format!("ts:{title}|{}", e.start.timestamp()));
            }
        }
    }
    keys
}

/// Union-find over shared keys; returns root → members.
fn group(records: &[StoredRecord]) -> BTreeMap<usize, Vec<usize>> {
    let mut parent: Vec<usize> = (0..records.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with: HashMap<String, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for key in keys(&r.payload) {
            match first_with.get(&key) {
                Some(&j) => {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    first_with.insert(key, i);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..records.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Event, Identifiers, Organisation};
    use chrono::{DateTime, Utc};

    fn rec(
        row: i64,
        partner: &str,
        id: &str,
        payload: Payload,
        entity: Option<&str>,
    ) -> StoredRecord {
        StoredRecord {
            row_id: row,
            partner: partner.into(),
            priority: 0,
            record_id: id.into(),
            url: None,
            changed_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            payload,
            entity_id: entity.map(String::from),
        }
    }

    fn org(name: &str, charity: Option<&str>, postcode: Option<&str>) -> Payload {
        Payload::Organisation(Organisation {
            name: name.into(),
            identifiers: Identifiers {
                charity_number: charity.map(String::from),
                ..Default::default()
            },
            address: Address {
                postcode: postcode.map(String::from),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn event(title: &str, start: &str) -> Payload {
        Payload::Event(Event {
            title: title.into(),
            description: None,
            description_html: None,
            start: DateTime::parse_from_rfc3339(start).unwrap(),
            end: None,
            timezone: None,
            all_day: false,
            recurrence: None,
            status: Default::default(),
            location: Default::default(),
            url: None,
            booking_url: None,
            organiser: Default::default(),
            categories: vec![],
        })
    }

    #[test]
    fn shared_charity_number_or_name_and_postcode_merge() {
        let recs = vec![
            rec(
                1,
                "a",
                "1",
                org("Child Dynamix", Some("1123456"), Some("HU3 2AA")),
                None,
            ),
            rec(
                2,
                "b",
                "x",
                org("child dynamix.", None, Some("hu32aa")),
                None,
            ),
            rec(
                3,
                "c",
                "9",
                org("Other Org", Some("Registered charity no. 1123456"), None),
                None,
            ),
            rec(4, "c", "10", org("Different", None, Some("HU3 2AA")), None),
        ];
        let clusters = resolve(RecordKind::Organisations, &recs, &|_| false);
        assert_eq!(clusters.len(), 2);
        let big = clusters.iter().find(|c| c.members.len() == 3).unwrap();
        assert!(big.entity_id.starts_with("org_"));
    }

    #[test]
    fn ids_are_stable_and_independent_of_order() {
        let a = rec(
            1,
            "a",
            "1",
            event("Webinar: Next Steps", "2022-01-25T13:00:00Z"),
            None,
        );
        let b = rec(
            2,
            "b",
            "2",
            event("NEXT STEPS (webinar)", "2022-01-25T13:00:00+00:00"),
            None,
        );
        let one = resolve(RecordKind::Events, &[a.clone(), b.clone()], &|_| false);
        let two = resolve(RecordKind::Events, &[b, a], &|_| false);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].entity_id, two[0].entity_id);
    }

    #[test]
    fn merge_keeps_the_oldest_id_and_absorbs_the_other() {
        let a = rec(
            1,
            "a",
            "1",
            org("Hull Food Bank", Some("1111111"), None),
            Some("org_aaaa"),
        );
        let b = rec(
            2,
            "b",
            "2",
            org("Hull Foodbank", Some("1111111"), None),
            Some("org_bbbb"),
        );
        let c = resolve(RecordKind::Organisations, &[a, b], &|_| true);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].entity_id, "org_aaaa");
        assert_eq!(c[0].absorbed, vec!["org_bbbb".to_string()]);
    }

    #[test]
    fn split_gives_the_newcomer_a_fresh_id() {
        let a = rec(
            1,
            "a",
            "1",
            org("Alpha", Some("1111111"), None),
            Some("org_aaaa"),
        );
        let b = rec(
            2,
            "b",
            "2",
            org("Beta", Some("2222222"), None),
            Some("org_aaaa"),
        );
        let c = resolve(RecordKind::Organisations, &[a, b], &|id| id == "org_aaaa");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].entity_id, "org_aaaa");
        assert_ne!(c[1].entity_id, "org_aaaa");
    }
}
