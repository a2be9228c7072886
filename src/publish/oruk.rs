//! Open Referral UK 3.0 rendering: pure mapping from merged organisations and recurring events to
//! ORUK `service`, `organization`, `service_at_location`, `taxonomy` and page objects, with stable
//! v5 UUIDs derived from tributary's canonical ids (the same id on every sync and restart).

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc, Weekday};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::{CanonicalEvent, CanonicalOrganisation, EventStatus, Identifiers};

/// Where the ORUK 3.0 profile this API follows is published.
pub const PROFILE_URL: &str = "https://openreferraluk.org/";
/// The profile's own OpenAPI document (the maintainers' repository, `public/specifications/3.0`).
pub const PROFILE_OPENAPI_URL: &str =
    "https://raw.githubusercontent.com/tpximpact/mhclg-oruk/main/public/specifications/3.0/openapi.json";
/// Name of the one taxonomy every published category belongs to.
pub const TAXONOMY_NAME: &str = "tributary categories";

/// The namespace every ORUK id is derived in: a v5 UUID of a URL tributary owns the meaning of, so
/// ids never collide with another publisher's v5 ids of the same strings.
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:tributary:oruk")
}

/// The ORUK tables whose rows tributary derives from one canonical entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Organization,
    Service,
    ServiceAtLocation,
    Location,
    Address,
    Contact,
    Phone,
    Schedule,
}

impl Part {
    fn suffix(self) -> &'static str {
        match self {
            Part::Organization => "",
            Part::Service => "#service",
            Part::ServiceAtLocation => "#service_at_location",
            Part::Location => "#location",
            Part::Address => "#address",
            Part::Contact => "#contact",
            Part::Phone => "#phone",
            Part::Schedule => "#schedule",
        }
    }
}

/// The ORUK id of one part of a canonical entity (`org_…`, `evt_…`).
pub fn uuid_of(canonical_id: &str, part: Part) -> Uuid {
    Uuid::new_v5(
        &namespace(),
        format!("{canonical_id}{}", part.suffix()).as_bytes(),
    )
}

fn id_text(canonical_id: &str, part: Part) -> String {
    uuid_of(canonical_id, part).to_string()
}

/// The id of the taxonomy all categories are published under.
pub fn taxonomy_id() -> Uuid {
    Uuid::new_v5(&namespace(), b"taxonomy")
}

/// A category's term id: categories match case-insensitively, as the JSON API's filter does.
pub fn term_id(category: &str) -> Uuid {
    Uuid::new_v5(
        &namespace(),
        format!("taxonomy_term:{}", category.trim().to_lowercase()).as_bytes(),
    )
}

/// Which public URLs records link back to.
#[derive(Debug, Clone)]
pub struct Links {
    /// The server's public base URL (`server.base_url`).
    pub base_url: url::Url,
}

impl Links {
    fn organisation_uri(&self, canonical_id: &str) -> String {
        let mut u = self.base_url.clone();
        u.set_path(&format!("/v1/organisations/{canonical_id}"));
        u.to_string()
    }

    /// The profile's root document (`GET /oruk/`).
    pub fn root(&self) -> Value {
        json!({
            "version": "3.0",
            "profile": PROFILE_URL,
            "openapi_url": PROFILE_OPENAPI_URL,
        })
    }
}

/// ORUK `last_modified`: UTC with milliseconds, as the profile asks.
fn modified(t: &DateTime<FixedOffset>) -> String {
    t.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A URI-format field only when it parses as one: consumers validating the profile reject others.
fn uri(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| url::Url::parse(s).is_ok())
        .map(str::to_string)
}

fn email(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| s.contains('@') && !s.contains(char::is_whitespace))
        .map(str::to_string)
}

fn put(m: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        m.insert(key.into(), Value::String(v));
    }
}

/// One third-party identifier in org-id.guide terms.
struct OrgId {
    scheme: String,
    value: String,
}

fn scheme_label(scheme: &str) -> &'static str {
    match scheme {
        "GB-CHC" => "Charity Commission for England and Wales",
        "GB-SC" => "Scottish Charity Regulator",
        "GB-NIC" => "Charity Commission for Northern Ireland",
        "GB-COH" => "Companies House",
        _ => "Organisation identifier (org-id.guide)",
    }
}

/// `GB-CHC-1234567` → (`GB-CHC`, `1234567`): org-id.guide schemes are two dash-separated parts.
fn split_org_id(org_id: &str) -> Option<OrgId> {
    let mut parts = org_id.trim().splitn(3, '-');
    let (country, register, value) = (parts.next()?, parts.next()?, parts.next()?);
    (!country.is_empty() && !register.is_empty() && !value.is_empty()).then(|| OrgId {
        scheme: format!("{country}-{register}").to_ascii_uppercase(),
        value: value.to_string(),
    })
}

/// A charity number's register, told by its form (`SC…` Scotland, `NIC…`/`NI…` Northern Ireland).
fn charity_scheme(number: &str) -> &'static str {
    let n = number.trim().to_ascii_uppercase();
    if n.starts_with("SC") {
        "GB-SC"
    } else if n.starts_with("NI") {
        "GB-NIC"
    } else {
        "GB-CHC"
    }
}

/// The organisation's identifiers, its org-id first (a reader keeps the first as its org-id).
fn org_ids(ids: &Identifiers) -> Vec<OrgId> {
    let mut out: Vec<OrgId> = ids
        .org_id
        .as_deref()
        .and_then(split_org_id)
        .into_iter()
        .collect();
    let mut add = |scheme: &str, value: &str| {
        let value = value.trim();
        if !value.is_empty() && !out.iter().any(|o| o.scheme == scheme && o.value == value) {
            out.push(OrgId {
                scheme: scheme.to_string(),
                value: value.to_string(),
            });
        }
    };
    if let Some(c) = &ids.charity_number {
        add(charity_scheme(c), c);
    }
    if let Some(c) = &ids.company_number {
        add("GB-COH", c);
    }
    out
}

/// An ORUK `organization`.
pub fn organization(org: &CanonicalOrganisation, links: &Links) -> Value {
    let o = &org.organisation;
    let id = id_text(&org.id, Part::Organization);
    let description = o
        .description_html
        .clone()
        .or_else(|| o.description.clone())
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id.clone()));
    m.insert("name".into(), Value::String(o.name.clone()));
    m.insert("description".into(), Value::String(description));
    put(&mut m, "email", email(o.email.as_deref()));
    put(&mut m, "website", uri(o.website.as_deref()));
    m.insert("uri".into(), Value::String(links.organisation_uri(&org.id)));
    // HSDS 3.0's organization field; the ORUK schema does not list it but allows it.
    put(&mut m, "alternate_name", o.alternate_names.first().cloned());
    let identifiers: Vec<Value> = org_ids(&o.identifiers)
        .into_iter()
        .map(|i| {
            json!({
                "id": Uuid::new_v5(&namespace(), format!("{}#identifier:{}:{}", org.id, i.scheme, i.value).as_bytes()).to_string(),
                "organization_id": id,
                "identifier_scheme": i.scheme,
                "identifier_type": scheme_label(&i.scheme),
                "identifier": i.value,
            })
        })
        .collect();
    m.insert("organization_identifiers".into(), Value::Array(identifiers));
    Value::Object(m)
}

/// A taxonomy term object for one category name.
pub fn taxonomy_term(name: &str) -> Value {
    json!({
        "id": term_id(name).to_string(),
        "name": name,
        "term": name,
        "description": "",
        "taxonomy": TAXONOMY_NAME,
        "taxonomy_id": taxonomy_id().to_string(),
    })
}

/// The one taxonomy (`/oruk/taxonomies`), with its terms when given.
pub fn taxonomy(terms: Option<&[String]>) -> Value {
    let mut v = json!({
        "id": taxonomy_id().to_string(),
        "name": TAXONOMY_NAME,
        "description": "The categories partners give their organisations and events, merged case-insensitively.",
    });
    if let (Some(terms), Some(m)) = (terms, v.as_object_mut()) {
        m.insert(
            "taxonomy_terms".into(),
            Value::Array(terms.iter().map(|t| taxonomy_term(t)).collect()),
        );
    }
    v
}

fn attributes(canonical_id: &str, categories: &[String]) -> Value {
    let service = id_text(canonical_id, Part::Service);
    let mut seen = std::collections::BTreeSet::new();
    Value::Array(
        categories
            .iter()
            .filter(|c| !c.trim().is_empty() && seen.insert(c.trim().to_lowercase()))
            .map(|c| {
                json!({
                    "id": Uuid::new_v5(&namespace(), format!("{canonical_id}#attribute:{}", c.trim().to_lowercase()).as_bytes()).to_string(),
                    "link_id": service,
                    "link_type": "service",
                    "taxonomy_term_id": term_id(c).to_string(),
                    "taxonomy_term": taxonomy_term(c),
                })
            })
            .collect(),
    )
}

/// A named contact carrying the phone number (HSDS 3.0 nests phones in contacts; the ORUK schema
/// lists no phone field on services, but allows this one).
fn contacts(canonical_id: &str, name: &str, phone: Option<&str>) -> Value {
    let Some(number) = phone.map(str::trim).filter(|p| !p.is_empty()) else {
        return json!([]);
    };
    let contact = id_text(canonical_id, Part::Contact);
    json!([{
        "id": contact,
        "service_id": id_text(canonical_id, Part::Service),
        "name": name,
        "phones": [{
            "id": id_text(canonical_id, Part::Phone),
            "contact_id": contact,
            "number": number,
        }],
    }])
}

/// What a location is made of, from either kind of record.
struct Place<'a> {
    name: Option<&'a str>,
    street: Option<&'a str>,
    city: Option<&'a str>,
    region: Option<&'a str>,
    postcode: Option<&'a str>,
    online: bool,
    /// A partner-given point (latitude, longitude); postcode centroids are not published as one.
    point: Option<(f64, f64)>,
}

impl Place<'_> {
    fn has_address(&self) -> bool {
        [self.street, self.city, self.region, self.postcode]
            .iter()
            .any(|f| f.is_some_and(|s| !s.trim().is_empty()))
    }

    fn is_some(&self) -> bool {
        self.has_address()
            || self.online
            || self.point.is_some()
            || self.name.is_some_and(|s| !s.trim().is_empty())
    }
}

fn location(canonical_id: &str, place: &Place) -> Value {
    let location_id = id_text(canonical_id, Part::Location);
    let mut m = Map::new();
    m.insert("id".into(), Value::String(location_id.clone()));
    let kind = if place.has_address() || place.point.is_some() || !place.online {
        "physical"
    } else {
        "virtual"
    };
    m.insert("location_type".into(), Value::String(kind.into()));
    put(&mut m, "name", place.name.map(str::to_string));
    if let Some((lat, lon)) = place.point {
        m.insert("latitude".into(), json!(lat));
        m.insert("longitude".into(), json!(lon));
    }
    let text = |s: Option<&str>| s.map(str::trim).unwrap_or_default().to_string();
    let addresses = if place.has_address() {
        json!([{
            "id": id_text(canonical_id, Part::Address),
            "location_id": location_id,
            "address_1": text(place.street),
            "city": text(place.city),
            "region": text(place.region),
            "state_province": text(place.region),
            "postal_code": text(place.postcode),
            "country": "GB",
            "address_type": "physical",
        }])
    } else {
        json!([])
    };
    m.insert("addresses".into(), addresses);
    Value::Object(m)
}

fn service_at_locations(canonical_id: &str, place: &Place) -> Value {
    if !place.is_some() {
        return json!([]);
    }
    let loc = location(canonical_id, place);
    json!([{
        "id": id_text(canonical_id, Part::ServiceAtLocation),
        "service_id": id_text(canonical_id, Part::Service),
        "location_id": loc["id"],
        "location": loc,
    }])
}

/// The ORUK `service` standing for a merged organisation: what it offers, contacted through it.
/// `minimal` keeps the fields the profile requires plus `last_modified`.
pub fn organisation_service(org: &CanonicalOrganisation, links: &Links, minimal: bool) -> Value {
    let o = &org.organisation;
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id_text(&org.id, Part::Service)));
    m.insert("name".into(), Value::String(o.name.clone()));
    m.insert("status".into(), Value::String("active".into()));
    m.insert(
        "last_modified".into(),
        Value::String(modified(&org.updated_at)),
    );
    if minimal {
        return Value::Object(m);
    }
    m.insert(
        "organization_id".into(),
        Value::String(id_text(&org.id, Part::Organization)),
    );
    put(
        &mut m,
        "description",
        o.description_html.clone().or_else(|| o.description.clone()),
    );
    put(&mut m, "url", uri(o.website.as_deref()));
    put(&mut m, "email", email(o.email.as_deref()));
    m.insert("organization".into(), organization(org, links));
    m.insert(
        "contacts".into(),
        contacts(&org.id, &o.name, o.phone.as_deref()),
    );
    let place = Place {
        name: None,
        street: o.address.street.as_deref(),
        city: o.address.locality.as_deref(),
        region: o.address.region.as_deref(),
        postcode: o.address.postcode.as_deref(),
        online: false,
        point: o.address.latitude.zip(o.address.longitude),
    };
    m.insert(
        "service_at_locations".into(),
        service_at_locations(&org.id, &place),
    );
    m.insert("attributes".into(), attributes(&org.id, &o.categories));
    Value::Object(m)
}

fn weekday_code(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}

/// `HH:MM` with the event's own offset (`Z` for UTC), as the profile's `opens_at` asks.
fn clock(t: &DateTime<FixedOffset>) -> String {
    if t.offset().local_minus_utc() == 0 {
        t.format("%H:%MZ").to_string()
    } else {
        t.format("%H:%M%:z").to_string()
    }
}

/// The RRULE's parts the ORUK schedule table has columns for; `None` when the rule does not
/// parse. Frequencies other than weekly and monthly have no ORUK value and stay in `notes`.
fn rule_columns(line: &str, m: &mut Map<String, Value>) -> Option<()> {
    use rrule::{Frequency, NWeekday, RRule, Unvalidated};
    let body = line.strip_prefix("RRULE:").unwrap_or(line);
    let rule: RRule<Unvalidated> = body.parse().ok()?;
    let freq = match rule.get_freq() {
        Frequency::Weekly => Some("WEEKLY"),
        Frequency::Monthly => Some("MONTHLY"),
        _ => None,
    };
    if let Some(f) = freq {
        m.insert("freq".into(), Value::String(f.into()));
        m.insert("interval".into(), json!(rule.get_interval().max(1)));
        let days: Vec<String> = rule
            .get_by_weekday()
            .iter()
            .map(|d| match d {
                NWeekday::Every(w) => weekday_code(*w).to_string(),
                // rrule's Display drops a leading 1 ("1MO" → "MO"), which would mean every Monday.
                NWeekday::Nth(n, w) => format!("{n}{}", weekday_code(*w)),
            })
            .collect();
        if !days.is_empty() {
            m.insert("byday".into(), Value::String(days.join(",")));
        }
        let monthdays: Vec<String> = rule
            .get_by_month_day()
            .iter()
            .map(|d| d.to_string())
            .collect();
        if !monthdays.is_empty() {
            m.insert("bymonthday".into(), Value::String(monthdays.join(",")));
        }
    }
    if let Some(until) = rule.get_until() {
        m.insert(
            "valid_to".into(),
            Value::String(until.format("%Y-%m-%d").to_string()),
        );
    }
    Some(())
}

/// A recurring event's ORUK `schedule`: its RRULE in the profile's columns, its times as
/// `opens_at`/`closes_at`, and the partner's recurrence lines verbatim in `notes`.
pub fn schedule(ev: &CanonicalEvent) -> Value {
    let e = &ev.event;
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id_text(&ev.id, Part::Schedule)));
    m.insert(
        "service_id".into(),
        Value::String(id_text(&ev.id, Part::Service)),
    );
    let start = e.start.format("%Y-%m-%d").to_string();
    m.insert("valid_from".into(), Value::String(start.clone()));
    m.insert("dtstart".into(), Value::String(start));
    let lines = e.recurrence.as_deref().unwrap_or_default();
    if let Some(rule) = lines.iter().find(|l| l.starts_with("RRULE:")) {
        rule_columns(rule, &mut m);
    }
    if !e.all_day {
        m.insert("opens_at".into(), Value::String(clock(&e.start)));
        if let Some(end) = &e.end {
            m.insert("closes_at".into(), Value::String(clock(end)));
        }
    }
    put(
        &mut m,
        "schedule_link",
        uri(e.booking_url.as_deref().or(e.url.as_deref())),
    );
    let attending = if e.location.online {
        "online"
    } else {
        "in person"
    };
    m.insert("attending_type".into(), Value::String(attending.into()));
    if !lines.is_empty() {
        m.insert("notes".into(), Value::String(lines.join("\n")));
    }
    Value::Object(m)
}

/// The ORUK `service` standing for a recurring event series (the profile has no event model): its
/// schedule holds the RRULE, its organiser's organisation is linked by `organization_id`.
pub fn event_service(ev: &CanonicalEvent, minimal: bool) -> Value {
    let e = &ev.event;
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id_text(&ev.id, Part::Service)));
    m.insert("name".into(), Value::String(e.title.clone()));
    let status = match e.status {
        EventStatus::Scheduled => "active",
        EventStatus::Cancelled => "inactive",
    };
    m.insert("status".into(), Value::String(status.into()));
    m.insert(
        "last_modified".into(),
        Value::String(modified(&ev.updated_at)),
    );
    if minimal {
        return Value::Object(m);
    }
    if let Some(org) = e
        .organiser
        .organisation_id
        .as_deref()
        .filter(|id| id.starts_with("org_"))
    {
        m.insert(
            "organization_id".into(),
            Value::String(id_text(org, Part::Organization)),
        );
    }
    put(
        &mut m,
        "description",
        e.description_html.clone().or_else(|| e.description.clone()),
    );
    put(&mut m, "url", uri(e.url.as_deref()));
    m.insert("schedules".into(), json!([schedule(ev)]));
    let place = Place {
        name: e.location.name.as_deref(),
        street: e.location.address.as_deref(),
        city: None,
        region: None,
        postcode: e.location.postcode.as_deref(),
        online: e.location.online,
        point: e.location.latitude.zip(e.location.longitude),
    };
    m.insert(
        "service_at_locations".into(),
        service_at_locations(&ev.id, &place),
    );
    m.insert("attributes".into(), attributes(&ev.id, &e.categories));
    Value::Object(m)
}

/// A `service_at_location` list item or record: the link, its location, and (for one record)
/// the whole service it belongs to. `None` when the service has no location.
pub fn service_at_location(service: &Value, nest_service: bool) -> Option<Value> {
    let sal = service
        .get("service_at_locations")?
        .as_array()?
        .first()?
        .clone();
    let mut sal = match sal {
        Value::Object(m) => m,
        _ => return None,
    };
    if nest_service {
        sal.insert("service".into(), service.clone());
    }
    Some(Value::Object(sal))
}

/// One page in the profile's `Page` shape. `total_pages` is at least 1, so an empty listing is
/// page 1 of 1 (first and last, `empty`).
pub fn page(contents: Vec<Value>, total_items: u64, page_number: u64, per_page: u64) -> Value {
    let total_pages = total_items.div_ceil(per_page.max(1)).max(1);
    json!({
        "total_items": total_items,
        "total_pages": total_pages,
        "page_number": page_number,
        "size": contents.len(),
        "first_page": page_number <= 1,
        "last_page": page_number >= total_pages,
        "empty": contents.is_empty(),
        "contents": contents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Event, Location, Organisation, Organiser};

    fn links() -> Links {
        Links {
            base_url: url::Url::parse("https://dir.example.org").unwrap(),
        }
    }

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn org() -> CanonicalOrganisation {
        CanonicalOrganisation {
            id: "org_abc".into(),
            organisation: Organisation {
                name: "Crewe Foodbank".into(),
                identifiers: Identifiers {
                    charity_number: Some("1150000".into()),
                    company_number: Some("08000000".into()),
                    org_id: Some("GB-CHC-1150000".into()),
                },
                website: Some("https://crewe.foodbank.org.uk".into()),
                email: Some("not an email".into()),
                phone: Some("01270 000000".into()),
                address: Address {
                    street: Some("1 High St".into()),
                    locality: Some("Crewe".into()),
                    region: None,
                    postcode: Some("CW1 2BJ".into()),
                    ..Address::default()
                },
                categories: vec!["Food banks".into(), "food BANKS".into()],
                ..Default::default()
            },
            partners: vec![],
            field_sources: Default::default(),
            updated_at: t("2027-01-05T10:00:00+01:00"),
        }
    }

    #[test]
    fn ids_are_stable_v5_uuids_distinct_per_part() {
        let a = uuid_of("org_abc", Part::Organization);
        assert_eq!(a, uuid_of("org_abc", Part::Organization));
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(a, uuid_of("org_abc", Part::Service));
        assert_ne!(a, uuid_of("org_abd", Part::Organization));
        assert_eq!(term_id("Food Banks"), term_id(" food banks"));
    }

    #[test]
    fn organisation_maps_identifiers_contacts_location_and_terms() {
        let s = organisation_service(&org(), &links(), false);
        let o = &s["organization"];
        let ids = o["organization_identifiers"].as_array().unwrap();
        let pairs: Vec<(&str, &str)> = ids
            .iter()
            .map(|i| {
                (
                    i["identifier_scheme"].as_str().unwrap(),
                    i["identifier"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(pairs, vec![("GB-CHC", "1150000"), ("GB-COH", "08000000")]);
        assert!(o.get("email").is_none(), "an invalid email is left out");
        assert_eq!(o["uri"], "https://dir.example.org/v1/organisations/org_abc");
        assert_eq!(s["contacts"][0]["phones"][0]["number"], "01270 000000");
        let addr = &s["service_at_locations"][0]["location"]["addresses"][0];
        assert_eq!(addr["postal_code"], "CW1 2BJ");
        assert_eq!(addr["city"], "Crewe");
        assert_eq!(s["attributes"].as_array().unwrap().len(), 1);
        assert_eq!(s["last_modified"], "2027-01-05T09:00:00.000Z");
        let minimal = organisation_service(&org(), &links(), true);
        assert!(minimal.get("organization").is_none());
        assert_eq!(minimal["id"], s["id"]);
    }

    #[test]
    fn a_recurring_event_becomes_a_service_with_its_rrule_in_the_schedule() {
        let ev = CanonicalEvent {
            id: "evt_1".into(),
            event: Event {
                title: "Coffee morning".into(),
                description: None,
                description_html: None,
                start: t("2027-01-04T10:00:00+00:00"),
                end: Some(t("2027-01-04T12:00:00+00:00")),
                timezone: Some("Europe/London".into()),
                all_day: false,
                recurrence: Some(vec![
                    "RRULE:FREQ=MONTHLY;BYDAY=1MO;UNTIL=20271231T000000Z".into()
                ]),
                status: EventStatus::Scheduled,
                location: Location {
                    name: Some("Village hall".into()),
                    ..Default::default()
                },
                url: Some("https://example.org/coffee".into()),
                booking_url: None,
                organiser: Organiser {
                    name: None,
                    organisation_id: Some("org_abc".into()),
                },
                categories: vec![],
                overrides: vec![],
            },
            partners: vec![],
            field_sources: Default::default(),
            updated_at: t("2027-01-01T00:00:00+00:00"),
        };
        let s = event_service(&ev, false);
        let sch = &s["schedules"][0];
        assert_eq!(sch["freq"], "MONTHLY");
        assert_eq!(sch["byday"], "1MO", "the first Monday, not every Monday");
        assert_eq!(sch["valid_to"], "2027-12-31");
        assert_eq!(sch["opens_at"], "10:00Z");
        assert_eq!(sch["closes_at"], "12:00Z");
        assert_eq!(
            s["organization_id"],
            uuid_of("org_abc", Part::Organization).to_string()
        );
        let loc = &s["service_at_locations"][0]["location"];
        assert_eq!(loc["location_type"], "physical");
        assert_eq!(loc["name"], "Village hall");
        let sal = service_at_location(&s, true).unwrap();
        assert_eq!(sal["service"]["id"], s["id"]);
    }

    #[test]
    fn page_shape_counts_pages() {
        let p = page(vec![json!({}), json!({})], 5, 2, 2);
        assert_eq!(p["total_pages"], 3);
        assert_eq!(p["first_page"], false);
        assert_eq!(p["last_page"], false);
        let empty = page(vec![], 0, 1, 50);
        assert_eq!(empty["total_pages"], 1);
        assert_eq!(empty["last_page"], true);
        assert_eq!(empty["empty"], true);
    }
}
