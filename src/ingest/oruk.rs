//! The `oruk` format: an Open Referral UK / HSDS API. Pages of `/organizations` (optional in ORUK
//! v1) and `/services` are followed by `page` up to `totalPages`; each organisation takes its
//! services' first address, contacts' phones and taxonomy terms as address, phone and categories.
//! ORUK v1 (`content`, `totalPages`, `service_taxonomys`) and HSDS 3 (`contents`, `total_pages`,
//! `attributes`) field names are both read.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::tributary_json::item_id;
use super::{
    geo, html, json_page, json_str, next_numbered_page, with_query, Harvested, PageRequest,
    PageRole, ParseError,
};
use crate::model::{Address, Identifiers, Organisation, Payload, Rejection, SourceRecord};

const FORMAT: &str = "oruk";
const PER_PAGE: &str = "100";

/// `/organizations` then `/services` under the configured API root.
pub fn start(source: &str) -> Vec<PageRequest> {
    let mut root = source.trim_end_matches('/').to_string();
    for endpoint in ["/services", "/organizations"] {
        if let Some(r) = root.strip_suffix(endpoint) {
            root = r.to_string();
        }
    }
    let page = |endpoint: &str| {
        with_query(&format!("{root}/{endpoint}"), "page", "1")
            .and_then(|u| with_query(&u, "per_page", PER_PAGE))
            .unwrap_or_else(|| format!("{root}/{endpoint}?page=1&per_page={PER_PAGE}"))
    };
    vec![
        PageRequest {
            link: page("organizations"),
            role: PageRole::OptionalListing,
        },
        PageRequest::listing(page("services")),
    ]
}

/// What services add to their organisation.
#[derive(Debug, Default)]
struct Extras {
    address: Option<Address>,
    phone: Option<String>,
    email: Option<String>,
    categories: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Harvest {
    /// Organisation nodes by id, in first-seen order; `/organizations` copies win over embedded ones.
    orgs: HashMap<String, (usize, Value, bool)>,
    extras: HashMap<String, Extras>,
    rejections: Vec<Rejection>,
    /// Values dropped from records that still land (a location's implausible coordinates).
    warnings: Vec<Rejection>,
}

fn array<'a>(v: &'a Value, keys: &[&str]) -> &'a [Value] {
    keys.iter()
        .find_map(|k| v.get(*k).and_then(Value::as_array))
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

impl Harvest {
    pub fn add_page(&mut self, url: &str, bytes: &[u8]) -> Result<Vec<PageRequest>, ParseError> {
        let invalid = |reason: String| ParseError::Invalid {
            format: FORMAT,
            reason,
        };
        let path = url::Url::parse(url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let services = if path.ends_with("/services") {
            true
        } else if path.ends_with("/organizations") {
            false
        } else {
            return Err(invalid(format!(
                "{url} is neither /services nor /organizations"
            )));
        };
        let page = json_page(FORMAT, url, bytes)?;
        let Some(items) = ["content", "contents", "items"]
            .iter()
            .find_map(|k| page.get(*k).and_then(Value::as_array))
        else {
            return Err(invalid(format!(
                "{url}: no \"content\" (ORUK v1) or \"contents\" (HSDS 3) array"
            )));
        };
        for (i, item) in items.iter().enumerate() {
            if services {
                self.service(i, item);
            } else {
                match item_id(item) {
                    Some(id) => self.org(id, item.clone(), true),
                    None => self.rejections.push(Rejection {
                        source_id: None,
                        reason: format!("{url}: organization {}: no id", i + 1),
                    }),
                }
            }
        }
        let total = ["totalPages", "total_pages"]
            .iter()
            .find_map(|k| page.get(*k).and_then(Value::as_u64))
            .unwrap_or(1);
        let last = page
            .get("last")
            .or_else(|| page.get("last_page"))
            .and_then(Value::as_bool)
            == Some(true);
        if items.is_empty() || last {
            return Ok(Vec::new());
        }
        Ok(next_numbered_page(url, total).into_iter().collect())
    }

    fn org(&mut self, id: String, v: Value, authoritative: bool) {
        let next = self.orgs.len();
        match self.orgs.get_mut(&id) {
            Some(slot) if authoritative && !slot.2 => {
                slot.1 = v;
                slot.2 = true;
            }
            Some(_) => {}
            None => {
                self.orgs.insert(id, (next, v, authoritative));
            }
        }
    }

    fn service(&mut self, i: usize, s: &Value) {
        let label = item_id(s).unwrap_or_else(|| format!("service {}", i + 1));
        let Some(org) = s.get("organization").filter(|o| o.is_object()) else {
            self.rejections.push(Rejection {
                source_id: Some(label),
                reason: "service has no organization to list it under".into(),
            });
            return;
        };
        let Some(org_id) = item_id(org).or_else(|| json_str(s, "organization_id")) else {
            self.rejections.push(Rejection {
                source_id: Some(label),
                reason: "service's organization has no id".into(),
            });
            return;
        };
        self.org(org_id.clone(), org.clone(), false);
        let extras = self.extras.entry(org_id.clone()).or_default();
        for sal in array(s, &["service_at_locations"]) {
            let loc = sal.get("location").unwrap_or(sal);
            if extras.address.is_some() {
                break;
            }
            // The location's own point goes with its address (the first location that has either).
            let point = match geo::from_json(loc.get("latitude"), loc.get("longitude")) {
                Ok(p) => p,
                Err(reason) => {
                    self.warnings.push(Rejection {
                        source_id: Some(org_id.clone()),
                        reason: format!("service {label}: location {reason}; the point is dropped"),
                    });
                    None
                }
            };
            let mut address = array(loc, &["physical_addresses", "addresses"])
                .first()
                .map(|a| {
                    let street: Vec<String> = ["address_1", "address_2"]
                        .iter()
                        .filter_map(|k| json_str(a, k))
                        .collect();
                    Address {
                        street: (!street.is_empty()).then(|| street.join(", ")),
                        locality: json_str(a, "city"),
                        region: json_str(a, "state_province"),
                        postcode: json_str(a, "postal_code"),
                        ..Address::default()
                    }
                })
                .unwrap_or_default();
            (address.latitude, address.longitude) = point.unzip();
            if !address.is_empty() {
                extras.address = Some(address);
            }
        }
        let phones = array(s, &["phones"])
            .iter()
            .chain(
                array(s, &["contacts"])
                    .iter()
                    .flat_map(|c| array(c, &["phones"])),
            )
            .filter_map(|p| json_str(p, "number"));
        if extras.phone.is_none() {
            extras.phone = phones.into_iter().next();
        }
        if extras.email.is_none() {
            extras.email = json_str(s, "email");
        }
        for t in array(s, &["service_taxonomys", "attributes"]) {
            let term = t
                .get("taxonomy")
                .or_else(|| t.get("taxonomy_term"))
                .unwrap_or(t);
            if let Some(name) = json_str(term, "name").or_else(|| json_str(term, "term")) {
                extras.categories.insert(name);
            }
        }
    }

    pub fn finish(mut self) -> Harvested {
        let mut orgs: Vec<_> = self.orgs.into_iter().collect();
        orgs.sort_by_key(|(_, (seq, _, _))| *seq);
        let mut records = Vec::with_capacity(orgs.len());
        for (id, (_, v, _)) in orgs {
            let extras = self.extras.remove(&id).unwrap_or_default();
            match organisation(&v, extras) {
                Ok(o) => records.push(SourceRecord {
                    source_id: id,
                    url: json_str(&v, "uri"),
                    updated_at: None,
                    payload: Payload::Organisation(o),
                }),
                Err(reason) => self.rejections.push(Rejection {
                    source_id: Some(id),
                    reason,
                }),
            }
        }
        let mut out = Harvested::whole(records, self.rejections);
        out.parsed.warnings = self.warnings;
        out
    }
}

fn organisation(v: &Value, extras: Extras) -> Result<Organisation, String> {
    let name = json_str(v, "name").ok_or("organization has no name")?;
    let mut identifiers = Identifiers::default();
    for ident in array(v, &["organization_identifiers"]) {
        let scheme = json_str(ident, "identifier_scheme")
            .or_else(|| json_str(ident, "identifier_type"))
            .unwrap_or_default()
            .to_ascii_uppercase();
        let Some(value) = json_str(ident, "identifier") else {
            continue;
        };
        match scheme.as_str() {
            "GB-CHC" | "GB-SC" | "GB-NIC" => {
                identifiers.charity_number.get_or_insert(value.clone());
                identifiers
                    .org_id
                    .get_or_insert(format!("{scheme}-{value}"));
            }
            "GB-COH" => {
                identifiers.company_number.get_or_insert(value.clone());
                identifiers
                    .org_id
                    .get_or_insert(format!("{scheme}-{value}"));
            }
            s if s.starts_with("GB-") => {
                identifiers
                    .org_id
                    .get_or_insert(format!("{scheme}-{value}"));
            }
            _ => {}
        }
    }
    let description = json_str(v, "description");
    let (description, description_html) = match description {
        Some(d) if html::has_markup(&d) => (None, Some(d)),
        d => (d, None),
    };
    let own_phone = array(v, &["phones"])
        .iter()
        .find_map(|p| json_str(p, "number"));
    Ok(Organisation {
        name,
        alternate_names: json_str(v, "alternate_name").into_iter().collect(),
        description,
        description_html,
        identifiers,
        website: json_str(v, "website").or_else(|| json_str(v, "url")),
        email: json_str(v, "email").or(extras.email),
        phone: own_phone.or(extras.phone),
        address: extras.address.unwrap_or_default(),
        categories: extras.categories.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_pages_hang_off_the_api_root() {
        let s = start("https://api.example.org/oruk/services");
        assert_eq!(
            s[0].link,
            "https://api.example.org/oruk/organizations?page=1&per_page=100"
        );
        assert_eq!(s[0].role, PageRole::OptionalListing);
        assert_eq!(
            s[1].link,
            "https://api.example.org/oruk/services?page=1&per_page=100"
        );
    }

    #[test]
    fn services_enrich_their_organisation_and_pages_follow_total_pages() {
        let mut h = Harvest::default();
        let orgs = br#"{"totalElements":1,"totalPages":1,"number":1,"content":[
            {"id":"o1","name":"Crewe Foodbank","description":"<p>Emergency food &amp; support</p>","url":"https://crewe.foodbank.org.uk",
             "organization_identifiers":[{"identifier_scheme":"GB-CHC","identifier":"1150000"}]}]}"#;
        assert!(h
            .add_page("https://x.org/organizations?page=1&per_page=100", orgs)
            .unwrap()
            .is_empty());
        let services = br#"{"totalPages":2,"content":[
            {"id":"s1","name":"Food parcels","organization":{"id":"o1","name":"Crewe Foodbank (embedded)"},
             "service_at_locations":[{"location":{"physical_addresses":[{"address_1":"1 High St","city":"Crewe","postal_code":"CW1 2BJ"}]}}],
             "contacts":[{"name":"Jo","phones":[{"number":"01270 000000"}]}],
             "service_taxonomys":[{"taxonomy":{"name":"Food banks","vocabulary":"esdServiceTypes"}}]},
            {"id":"s2","name":"Orphan service"}]}"#;
        let next = h
            .add_page("https://x.org/services?page=1&per_page=100", services)
            .unwrap();
        assert_eq!(next[0].link, "https://x.org/services?per_page=100&page=2");
        let out = h.finish();
        assert_eq!(out.parsed.records.len(), 1);
        let Payload::Organisation(o) = &out.parsed.records[0].payload else {
            panic!()
        };
        assert_eq!(o.name, "Crewe Foodbank", "the /organizations copy wins");
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1150000"));
        assert_eq!(o.address.postcode.as_deref(), Some("CW1 2BJ"));
        assert_eq!(o.phone.as_deref(), Some("01270 000000"));
        assert_eq!(o.categories, vec!["Food banks"]);
        assert!(o.description_html.is_some());
        assert_eq!(out.parsed.rejections.len(), 1);
        assert!(out.parsed.rejections[0].reason.contains("no organization"));
    }

    #[test]
    fn a_page_nested_100000_deep_fails_the_feed_without_a_crash() {
        let depth = 100_000;
        let body = format!(
            r#"{{"totalPages":1,"content":[{}{}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let err = crate::ingest::on_worker_stack(move || {
            Harvest::default()
                .add_page("https://x.example/services?page=1", body.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
    }
}
