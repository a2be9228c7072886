//! schema.org / OpenActive vocabulary to canonical records, shared by the `jsonld` and `rpde`
//! adapters: `Event` and its subtypes, OpenActive `SessionSeries` (with `eventSchedule` as an
//! RRULE) and `ScheduledSession`, and `Organization` and its subtypes.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime};
use serde_json::Value;

use super::times::{instant, local_time, DEFAULT_TZ};
use super::{geo, html};
use crate::model::{Address, Event, EventStatus, Identifiers, Location, Organisation, Organiser};

/// The `@type`s of a node, without `schema:` or `https://schema.org/` prefixes.
pub fn types(v: &Value) -> Vec<String> {
    let raw: Vec<&str> = match v.get("@type").or_else(|| v.get("type")) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    raw.into_iter().map(|t| short_name(t).to_string()).collect()
}

fn short_name(t: &str) -> &str {
    t.rsplit(['/', ':', '#']).next().unwrap_or(t)
}

/// schema.org's subtypes of `Event` (and OpenActive's sessions) whose names do not end in "Event".
const EVENT_TYPES: &[&str] = &[
    "ScheduledSession",
    "SessionSeries",
    "CourseInstance",
    "Festival",
    "Hackathon",
    "EventSeries",
];

/// Event subtypes that are not a gathering someone can attend at a time.
const NOT_EVENTS: &[&str] = &["OnDemandEvent", "PublicationEvent", "BroadcastEvent"];

pub fn is_event(v: &Value) -> bool {
    let types = types(v);
    types
        .iter()
        .any(|t| t.ends_with("Event") || EVENT_TYPES.contains(&t.as_str()))
        && !types.iter().any(|t| NOT_EVENTS.contains(&t.as_str()))
}

/// schema.org's `Organization` and its subtypes (schema.org 28, `LocalBusiness` by its direct
/// subtypes, whose own subtypes end in one of the suffixes [`ORGANISATION_SUFFIXES`] names).
const ORGANISATION_TYPES: &[&str] = &[
    "Organization",
    "Organisation",
    "Airline",
    "Consortium",
    "Corporation",
    "CooperativeOrganization",
    "EducationalOrganization",
    "CollegeOrUniversity",
    "ElementarySchool",
    "HighSchool",
    "MiddleSchool",
    "Preschool",
    "School",
    "FundingScheme",
    "GovernmentOrganization",
    "LibrarySystem",
    "LocalBusiness",
    "MedicalOrganization",
    "Dentist",
    "DiagnosticLab",
    "Hospital",
    "MedicalClinic",
    "Pharmacy",
    "Physician",
    "VeterinaryCare",
    "NGO",
    "NewsMediaOrganization",
    "OnlineBusiness",
    "OnlineStore",
    "PerformingGroup",
    "DanceGroup",
    "MusicGroup",
    "TheaterGroup",
    "PoliticalParty",
    "Project",
    "FundingAgency",
    "ResearchProject",
    "ResearchOrganization",
    "SearchRescueOrganization",
    "SportsOrganization",
    "SportsTeam",
    "SportsClub",
    "WorkersUnion",
    "AnimalShelter",
    "ArchiveOrganization",
    "AutomotiveBusiness",
    "ChildCare",
    "DryCleaningOrLaundry",
    "EmergencyService",
    "EmploymentAgency",
    "EntertainmentBusiness",
    "FinancialService",
    "FoodEstablishment",
    // FoodEstablishment's own subtypes, whose names end in no suffix below.
    "Bakery",
    "BarOrPub",
    "Brewery",
    "CafeOrCoffeeShop",
    "Distillery",
    "FastFoodRestaurant",
    "IceCreamShop",
    "Restaurant",
    "Winery",
    "GovernmentOffice",
    "HealthAndBeautyBusiness",
    "HomeAndConstructionBusiness",
    "InternetCafe",
    "LegalService",
    "Library",
    "LodgingBusiness",
    "MedicalBusiness",
    "ProfessionalService",
    "RadioStation",
    "RealEstateAgent",
    "RecyclingCenter",
    "SelfStorage",
    "ShoppingCenter",
    "SportsActivityLocation",
    "Store",
    "TelevisionStation",
    "TouristInformationCenter",
    "TravelAgency",
    "Charity",
    "Church",
    "Mosque",
    "Synagogue",
    "PlaceOfWorship",
];

/// Name endings of the deeper `Organization` subtypes (`ClothingStore`, `TravelAgency`,
/// `HealthClub`), so a subtype the list above does not spell out still counts. "Service" is not
/// one: schema.org's `Service` is an offering, not an organisation.
const ORGANISATION_SUFFIXES: &[&str] = &[
    "Organization",
    "Organisation",
    "Business",
    "Store",
    "Agency",
    "Club",
    "Team",
    "Group",
    "School",
    "Clinic",
    "Office",
    "Station",
    "Establishment",
];

pub fn is_organisation(v: &Value) -> bool {
    types(v).iter().any(|t| {
        ORGANISATION_TYPES.contains(&t.as_str())
            || ORGANISATION_SUFFIXES.iter().any(|s| t.ends_with(s))
    }) && !is_event(v)
}

/// Every node of a JSON-LD document: top-level arrays and `@graph` members flattened.
pub fn nodes(doc: Value) -> Vec<Value> {
    match doc {
        Value::Array(items) => items.into_iter().flat_map(nodes).collect(),
        Value::Object(mut obj) => match obj.remove("@graph") {
            Some(graph) => nodes(graph),
            None => vec![Value::Object(obj)],
        },
        _ => Vec::new(),
    }
}

/// Events a non-event node carries (an organisation's or place's `event`/`events`, a page's
/// `mainEntity`), each with the carrier as its organiser when the carrier is an organisation and
/// the event names none, and the carrier's name as its title when it has none of its own.
pub fn nested_events(carrier: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for key in ["event", "events", "mainEntity"] {
        let found: Vec<&Value> = match carrier.get(key) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => continue,
        };
        for event in found.into_iter().filter(|e| is_event(e)) {
            let mut event = event.clone();
            // A band's or club's listed dates often name no event: they are the carrier's.
            if event.get("name").is_none() {
                if let (Some(obj), Some(name)) = (event.as_object_mut(), carrier.get("name")) {
                    obj.insert("name".into(), name.clone());
                }
            }
            if is_organisation(carrier) && event.get("organizer").is_none() {
                if let (Some(obj), Some(name)) = (event.as_object_mut(), carrier.get("name")) {
                    obj.insert(
                        "organizer".into(),
                        serde_json::json!({"@type": "Organization", "name": name}),
                    );
                }
            }
            out.push(event);
        }
    }
    out
}

/// A node's own id: `@id`, else `identifier`, else `url`.
pub fn node_id(v: &Value) -> Option<String> {
    ["@id", "identifier", "id", "url"]
        .iter()
        .find_map(|k| scalar(v.get(k)?))
}

/// A string or number as text; the first of an array; `None` for anything else or blank.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => a.iter().find_map(scalar),
        _ => None,
    }
}

fn text_field(v: &Value, key: &str) -> Option<String> {
    scalar(v.get(key)?).map(|s| html::inline_text(&s))
}

/// A node that may be embedded or an array of them: the first object.
fn object<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v.get(key)? {
        o @ Value::Object(_) => Some(o),
        Value::Array(a) => a.iter().find(|x| x.is_object()),
        _ => None,
    }
}

/// Plain and HTML descriptions from a `description` that may be either.
fn description(v: &Value) -> (Option<String>, Option<String>) {
    match scalar(v.get("description").unwrap_or(&Value::Null)) {
        Some(d) if html::has_markup(&d) => (None, Some(d)),
        Some(d) => (Some(d), None),
        None => (None, None),
    }
}

fn postal_address(v: &Value) -> Address {
    match v.get("address") {
        Some(Value::String(s)) => Address {
            street: Some(s.clone()),
            postcode: postcode_in(s),
            ..Address::default()
        },
        Some(a @ Value::Object(_)) => Address {
            street: text_field(a, "streetAddress"),
            locality: text_field(a, "addressLocality"),
            region: text_field(a, "addressRegion"),
            postcode: text_field(a, "postalCode"),
            ..Address::default()
        },
        _ => Address::default(),
    }
}

/// The last token pair of a one-line address, if it looks like a UK postcode ("CW1 2BJ").
fn postcode_in(s: &str) -> Option<String> {
    let words: Vec<&str> = s
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let n = words.len();
    (n >= 2)
        .then(|| format!("{} {}", words[n - 2], words[n - 1]))
        .filter(|p| crate::postcode::standard(p).is_some())
}

/// A place's point: its `geo` (`GeoCoordinates`, numbers or numeric strings), else its own
/// `latitude`/`longitude` (schema.org `Place` has both).
fn point_of(place: &Value) -> Result<Option<geo::Point>, String> {
    match object(place, "geo") {
        Some(g) => geo::from_json(g.get("latitude"), g.get("longitude")),
        None => geo::from_json(place.get("latitude"), place.get("longitude")),
    }
}

/// A point read for a record, or `None` with the reason noted for the feed's warnings.
fn noted(
    point: Result<Option<geo::Point>, String>,
    warnings: &mut Vec<String>,
) -> Option<geo::Point> {
    point.unwrap_or_else(|reason| {
        warnings.push(format!("geo: {reason}; the point is dropped"));
        None
    })
}

/// Maps an `Organization` node.
pub fn organisation(v: &Value) -> Result<Organisation, String> {
    organisation_noting(v, &mut Vec::new())
}

/// As [`organisation`], noting values dropped from a record that lands in `warnings`.
pub fn organisation_noting(v: &Value, warnings: &mut Vec<String>) -> Result<Organisation, String> {
    let name = text_field(v, "name").ok_or("organisation has no name")?;
    let (description, description_html) = description(v);
    let mut identifiers = Identifiers::default();
    let mut ids: Vec<String> = Vec::new();
    for key in ["identifier", "leiCode", "taxID"] {
        match v.get(key) {
            Some(Value::Array(a)) => ids.extend(
                a.iter()
                    .filter_map(|x| scalar(x).or_else(|| x.get("value").and_then(scalar))),
            ),
            Some(x) => ids.extend(scalar(x).or_else(|| x.get("value").and_then(scalar))),
            None => {}
        }
    }
    for id in ids {
        let upper = id.to_ascii_uppercase();
        if upper.starts_with("GB-") {
            identifiers.org_id.get_or_insert(id);
        } else if upper.starts_with("SC")
            || upper.starts_with("NIC")
            || id.chars().all(|c| c.is_ascii_digit() || c == '-')
        {
            identifiers.charity_number.get_or_insert(id);
        }
    }
    let categories = keywords(v);
    Ok(Organisation {
        name,
        alternate_names: text_field(v, "alternateName").into_iter().collect(),
        description,
        description_html,
        identifiers,
        website: text_field(v, "url").or_else(|| text_field(v, "sameAs")),
        email: text_field(v, "email").map(|e| e.trim_start_matches("mailto:").to_string()),
        phone: text_field(v, "telephone"),
        address: org_address(v, warnings),
        categories,
    })
}

/// The organisation's address, from the node or else its `location` Place, with the point of
/// whichever of the two gives one (a `LocalBusiness` is itself a Place with `geo`).
fn org_address(v: &Value, warnings: &mut Vec<String>) -> Address {
    let place = object(v, "location");
    let mut address = match place {
        Some(place) if postal_address(v).is_empty() => postal_address(place),
        _ => postal_address(v),
    };
    let point = match (point_of(v), place) {
        (Ok(None), Some(place)) => point_of(place),
        (own, _) => own,
    };
    (address.latitude, address.longitude) = noted(point, warnings).unzip();
    address
}

fn keywords(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v.get("keywords") {
        Some(Value::String(s)) => out.extend(s.split(',').map(|k| k.trim().to_string())),
        Some(Value::Array(a)) => out.extend(a.iter().filter_map(scalar)),
        _ => {}
    }
    // OpenActive activities are concepts with a prefLabel.
    for key in ["activity", "category"] {
        match v.get(key) {
            Some(Value::Array(a)) => out.extend(
                a.iter()
                    .filter_map(|c| c.get("prefLabel").and_then(scalar).or_else(|| scalar(c))),
            ),
            Some(c @ Value::Object(_)) => out.extend(c.get("prefLabel").and_then(scalar)),
            Some(c) => out.extend(scalar(c)),
            None => {}
        }
    }
    out.retain(|k| !k.is_empty() && !k.starts_with("http"));
    out
}

/// Maps an `Event` node (or an OpenActive session). `parent` is the `superEvent` when the caller
/// has it separately; an embedded `superEvent` is used otherwise.
pub fn event(v: &Value, parent: Option<&Value>) -> Result<Event, String> {
    event_noting(v, parent, &mut Vec::new())
}

/// As [`event`], noting values dropped from a record that lands in `warnings`.
pub fn event_noting(
    v: &Value,
    parent: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<Event, String> {
    let embedded_parent = object(v, "superEvent");
    let parent = parent.or(embedded_parent);
    let from_parent = |key: &str| parent.and_then(|p| p.get(key)).filter(|x| !x.is_null());
    let title = text_field(v, "name")
        .or_else(|| parent.and_then(|p| text_field(p, "name")))
        .ok_or("event has no name")?;
    let tz = zone(v)?;
    let (start, end, all_day, recurrence) = match scalar(v.get("startDate").unwrap_or(&Value::Null))
    {
        Some(s) => {
            let (start, is_date) = date_time(&s, tz).map_err(|e| format!("startDate: {e}"))?;
            let end = match scalar(v.get("endDate").unwrap_or(&Value::Null)) {
                Some(e) => Some(end_date(&e, tz)?),
                None => match scalar(v.get("duration").unwrap_or(&Value::Null)) {
                    Some(d) => Some(after(start, &d)?),
                    None => None,
                },
            };
            (start, end, is_date, None)
        }
        None => match object(v, "eventSchedule") {
            Some(schedule) => {
                let (start, end, rrule) = schedule_rule(schedule, tz)?;
                (start, end, false, Some(rrule))
            }
            None => return Err("event has no startDate and no eventSchedule".into()),
        },
    };
    let (description, description_html) = match description(v) {
        (None, None) => parent.map(description).unwrap_or((None, None)),
        d => d,
    };
    let status = match v.get("eventStatus").and_then(scalar) {
        Some(s) if short_name(&s) == "EventCancelled" => EventStatus::Cancelled,
        _ => EventStatus::Scheduled,
    };
    let mode = v
        .get("eventAttendanceMode")
        .or_else(|| from_parent("eventAttendanceMode"))
        .and_then(scalar)
        .map(|m| short_name(&m).to_string());
    let moved_online = v
        .get("eventStatus")
        .and_then(scalar)
        .is_some_and(|s| short_name(&s) == "EventMovedOnline");
    let location = location(
        v.get("location").or_else(|| from_parent("location")),
        warnings,
    );
    let location = Location {
        online: location.online
            || moved_online
            || mode.as_deref() == Some("OnlineEventAttendanceMode"),
        ..location
    };
    let organiser = object(v, "organizer")
        .or_else(|| parent.and_then(|p| object(p, "organizer")))
        .map(|o| Organiser {
            name: text_field(o, "name"),
            organisation_id: None,
        })
        .unwrap_or_default();
    let booking_url = object(v, "offers")
        .or_else(|| parent.and_then(|p| object(p, "offers")))
        .and_then(|o| text_field(o, "url"));
    let mut categories = keywords(v);
    if categories.is_empty() {
        categories = parent.map(keywords).unwrap_or_default();
    }
    Ok(Event {
        title,
        description,
        description_html,
        start,
        end,
        timezone: Some(tz.name().to_string()),
        all_day,
        recurrence: recurrence.map(|r| vec![r]),
        status,
        location,
        url: text_field(v, "url").or_else(|| parent.and_then(|p| text_field(p, "url"))),
        booking_url,
        organiser,
        categories,
        overrides: Vec::new(),
    })
}

/// The zone an event's local times are in: `scheduleTimezone` of its schedule, else London.
fn zone(v: &Value) -> Result<chrono_tz::Tz, String> {
    match object(v, "eventSchedule").and_then(|s| text_field(s, "scheduleTimezone")) {
        None => Ok(DEFAULT_TZ),
        Some(name) => name
            .parse()
            .map_err(|_| format!("scheduleTimezone {name:?} is not an IANA time zone")),
    }
}

fn location(v: Option<&Value>, warnings: &mut Vec<String>) -> Location {
    let places: Vec<&Value> = match v {
        Some(o @ Value::Object(_)) => vec![o],
        Some(Value::Array(a)) => a.iter().filter(|x| x.is_object()).collect(),
        Some(Value::String(s)) => {
            return Location {
                name: Some(s.clone()),
                postcode: postcode_in(s),
                ..Location::default()
            }
        }
        _ => Vec::new(),
    };
    let mut loc = Location::default();
    for place in places {
        if types(place).iter().any(|t| t == "VirtualLocation") {
            loc.online = true;
            loc.url = loc.url.or_else(|| text_field(place, "url"));
            continue;
        }
        if loc.name.is_some() || loc.address.is_some() {
            continue;
        }
        loc.name = text_field(place, "name");
        (loc.latitude, loc.longitude) = noted(point_of(place), warnings).unzip();
        let a = postal_address(place);
        let line: Vec<String> = [a.street, a.locality, a.region]
            .into_iter()
            .flatten()
            .collect();
        loc.address = (!line.is_empty()).then(|| line.join(", "));
        loc.postcode = a.postcode;
    }
    loc
}

/// A schema.org date or date-time (second value true for a date). Besides RFC 3339 and the local
/// forms [`instant`] reads, this takes what real publishers write: offsets without a colon
/// (`+0100`, Eventbrite, Songkick) or without minutes (`+01`), times without seconds, the basic
/// format (`20241003T190000Z`), and a fourth time component (`12:30:00:00+01:00`, OutSavvy), which
/// is dropped: no reader can say what it means, and the first three are the time.
pub fn date_time(s: &str, tz: chrono_tz::Tz) -> Result<(DateTime<FixedOffset>, bool), String> {
    let s = s.trim();
    instant(s, tz).or_else(|first| match repaired_iso(s) {
        Some(r) => instant(&r, tz),
        None => Err(first),
    })
}

/// An `endDate`: a date-time as it stands, a date inclusive (the end of that day, so "1–4 Aug"
/// ends as 5 Aug begins).
fn end_date(s: &str, tz: chrono_tz::Tz) -> Result<DateTime<FixedOffset>, String> {
    let (end, is_date) = date_time(s, tz).map_err(|e| format!("endDate: {e}"))?;
    if !is_date {
        return Ok(end);
    }
    let next = end
        .date_naive()
        .succ_opt()
        .ok_or_else(|| format!("endDate {s:?} is out of range"))?;
    local(tz, next.and_time(NaiveTime::MIN))
}

/// An ISO 8601 date-time rewritten into the extended form with a colon offset, if it has a time.
fn repaired_iso(s: &str) -> Option<String> {
    let (date, rest) = s.split_once(['T', 't', ' '])?;
    let date = match date.len() {
        8 if date.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", date.get(..4)?, date.get(4..6)?, date.get(6..)?)
        }
        _ => date.to_string(),
    };
    let (time, offset) = match rest.find(['+', '-', 'Z', 'z']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (time, fraction) = match time.find(['.', ',']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let mut parts: Vec<String> = if time.contains(':') {
        time.split(':').map(str::to_string).collect()
    } else {
        // Basic format: HHMM or HHMMSS.
        (0..time.len() / 2)
            .map(|i| time.get(i * 2..i * 2 + 2).map(str::to_string))
            .collect::<Option<_>>()?
    };
    if parts.len() == 4 {
        parts.pop();
    }
    if parts.len() == 2 {
        parts.push("00".into());
    }
    if parts.len() != 3
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let fraction = fraction.replace(',', ".");
    let offset = match offset {
        "" => String::new(),
        "Z" | "z" => "+00:00".into(),
        o => {
            let (sign, digits) = o.split_at(1);
            let digits: String = digits.chars().filter(|c| *c != ':').collect();
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            match digits.len() {
                2 => format!("{sign}{digits}:00"),
                4 => format!("{sign}{}:{}", digits.get(..2)?, digits.get(2..)?),
                _ => return None,
            }
        }
    };
    Some(format!("{date}T{}{fraction}{offset}", parts.join(":")))
}

/// `start` plus an ISO 8601 `duration` (`PT1H30M`, `P1D`, `P2W`, `P1M`).
fn after(start: DateTime<FixedOffset>, d: &str) -> Result<DateTime<FixedOffset>, String> {
    let bad = || format!("duration {d:?} is not an ISO 8601 duration such as PT1H30M");
    let parsed = iso8601::duration(d.trim()).map_err(|_| bad())?;
    match parsed {
        iso8601::Duration::Weeks(w) => {
            start.checked_add_signed(Duration::try_weeks(w.into()).ok_or_else(bad)?)
        }
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => {
            let months = u64::from(year) * 12 + u64::from(month);
            let months = u32::try_from(months).ok().ok_or_else(bad)?;
            let time = Duration::try_days(day.into())
                .zip(Duration::try_hours(hour.into()))
                .zip(Duration::try_minutes(minute.into()))
                .zip(Duration::try_seconds(second.into()))
                .and_then(|(((d, h), m), s)| {
                    d.checked_add(&h)?
                        .checked_add(&m)?
                        .checked_add(&s)?
                        .checked_add(&Duration::milliseconds(millisecond.into()))
                })
                .ok_or_else(bad)?;
            start
                .checked_add_months(chrono::Months::new(months))
                .and_then(|t| t.checked_add_signed(time))
        }
    }
    .ok_or_else(|| format!("duration {d:?} takes the end out of range"))
}

/// A schedule's `repeatFrequency`, any ISO 8601 duration of one unit (`P1W`, `P7D`, `P2W`,
/// `P3M`), as an RRULE frequency and interval. Whole weeks of days are weekly, so `byDay` keeps
/// its meaning. Mixed units (`P1M2D`) and sub-daily ones have no RRULE equivalent a community
/// calendar uses, so they reject the schedule with that reason.
fn repeat_frequency(s: &Value) -> Result<(&'static str, u32), String> {
    let raw = text_field(s, "repeatFrequency").ok_or("eventSchedule has no repeatFrequency")?;
    let bad = |why: &str| format!("eventSchedule repeatFrequency {raw:?} {why}");
    let parsed = iso8601::duration(raw.trim())
        .map_err(|_| bad("is not an ISO 8601 duration such as P1W"))?;
    let (year, month, day, sub_daily) = match parsed {
        iso8601::Duration::Weeks(w) => (
            0,
            0,
            w.checked_mul(7).ok_or_else(|| bad("is too long"))?,
            false,
        ),
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => (
            year,
            month,
            day,
            [hour, minute, second, millisecond] != [0; 4],
        ),
    };
    if sub_daily {
        return Err(bad("repeats more often than daily, which is not accepted"));
    }
    match (year, month, day) {
        (0, 0, 0) => Err(bad("is zero")),
        (0, 0, d) if d % 7 == 0 => Ok(("WEEKLY", d / 7)),
        (0, 0, d) => Ok(("DAILY", d)),
        (0, m, 0) => Ok(("MONTHLY", m)),
        (y, 0, 0) => Ok(("YEARLY", y)),
        _ => Err(bad("mixes units, which no recurrence rule can say")),
    }
}

/// A schedule's first occurrence (start, end) and its RRULE content line.
type Scheduled = (DateTime<FixedOffset>, Option<DateTime<FixedOffset>>, String);

/// An OpenActive `Schedule`/`PartialSchedule` as a first occurrence and an RRULE content line.
fn schedule_rule(s: &Value, tz: chrono_tz::Tz) -> Result<Scheduled, String> {
    let (freq, interval) = repeat_frequency(s)?;
    let first_day = text_field(s, "startDate")
        .ok_or("eventSchedule has no startDate to anchor its first occurrence")?;
    let first_day = NaiveDate::parse_from_str(first_day.get(..10).unwrap_or(""), "%Y-%m-%d")
        .map_err(|_| format!("eventSchedule startDate {first_day:?} is not a date"))?;
    let time = |key: &str| -> Result<Option<NaiveTime>, String> {
        match text_field(s, key) {
            None => Ok(None),
            Some(t) => NaiveTime::parse_from_str(&t, "%H:%M")
                .or_else(|_| NaiveTime::parse_from_str(&t, "%H:%M:%S"))
                .map(Some)
                .map_err(|_| format!("eventSchedule {key} {t:?} is not a time such as 10:00")),
        }
    };
    let start_time = time("startTime")?.ok_or("eventSchedule has no startTime")?;
    let end_time = time("endTime")?;
    let mut rule = format!("RRULE:FREQ={freq}");
    if interval > 1 {
        rule.push_str(&format!(";INTERVAL={interval}"));
    }
    let mut days: Vec<&str> = Vec::new();
    let by_day: Vec<String> = match s.get("byDay") {
        Some(Value::Array(a)) => a.iter().filter_map(scalar).collect(),
        Some(x) => scalar(x).into_iter().collect(),
        None => Vec::new(),
    };
    for d in &by_day {
        let code = match short_name(d).to_ascii_lowercase().get(..2) {
            Some("mo") => "MO",
            Some("tu") => "TU",
            Some("we") => "WE",
            Some("th") => "TH",
            Some("fr") => "FR",
            Some("sa") => "SA",
            Some("su") => "SU",
            _ => {
                return Err(format!(
                    "eventSchedule byDay {d:?} is not a day of the week"
                ))
            }
        };
        if !days.contains(&code) {
            days.push(code);
        }
    }
    if !days.is_empty() {
        rule.push_str(";BYDAY=");
        rule.push_str(&days.join(","));
    }
    if let Some(n) = s.get("repeatCount").and_then(Value::as_u64) {
        rule.push_str(&format!(";COUNT={n}"));
    } else if let Some(last) = text_field(s, "endDate") {
        let last = NaiveDate::parse_from_str(last.get(..10).unwrap_or(""), "%Y-%m-%d")
            .map_err(|_| format!("eventSchedule endDate {last:?} is not a date"))?;
        // UNTIL is inclusive and in UTC when DTSTART carries a zone (RFC 5545 3.3.10).
        let until = local(tz, last.and_time(start_time))?.with_timezone(&chrono::Utc);
        rule.push_str(&format!(";UNTIL={}", until.format("%Y%m%dT%H%M%SZ")));
    }
    // The first occurrence is the first matching day on or after the schedule's startDate.
    let mut day = first_day;
    if !days.is_empty() {
        for _ in 0..7 {
            let code = &day.format("%a").to_string().to_ascii_uppercase()[..2];
            if days.contains(&code) {
                break;
            }
            day = day
                .succ_opt()
                .ok_or("eventSchedule startDate out of range")?;
        }
    }
    let start = local(tz, day.and_time(start_time))?;
    let end = match end_time {
        Some(t) if t > start_time => Some(local(tz, day.and_time(t))?),
        _ => None,
    };
    Ok((start, end, rule))
}

fn local(tz: chrono_tz::Tz, t: chrono::NaiveDateTime) -> Result<DateTime<FixedOffset>, String> {
    local_time(tz, t).ok_or_else(|| format!("{t} does not exist in {}", tz.name()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seed_webinar_as_a_schema_org_event() {
        let v = json!({
            "@context": "https://schema.org",
            "@type": "Event",
            "name": "Next Steps in Developing Anchor Institutions in our Region",
            "startDate": "2022-01-25T13:00:00+00:00",
            "endDate": "2022-01-25T15:00:00+00:00",
            "eventAttendanceMode": "https://schema.org/OnlineEventAttendanceMode",
            "location": {"@type": "VirtualLocation", "url": "https://www.eventbrite.co.uk/e/anchor"},
            "organizer": {"@type": "Organization", "name": "Humber and North Yorkshire VCSE"},
            "offers": {"@type": "Offer", "url": "https://www.eventbrite.co.uk/e/anchor", "price": 0},
            "description": "<p>Join us &amp; partners</p>"
        });
        let e = event(&v, None).unwrap();
        assert_eq!(e.start.to_rfc3339(), "2022-01-25T13:00:00+00:00");
        assert!(e.location.online);
        assert_eq!(
            e.organiser.name.as_deref(),
            Some("Humber and North Yorkshire VCSE")
        );
        assert_eq!(
            e.booking_url.as_deref(),
            Some("https://www.eventbrite.co.uk/e/anchor")
        );
        assert_eq!(
            e.description_html.as_deref(),
            Some("<p>Join us &amp; partners</p>")
        );
    }

    #[test]
    fn session_series_schedule_becomes_an_rrule() {
        let v = json!({
            "@type": "SessionSeries",
            "name": "Walking Football",
            "eventSchedule": [{
                "@type": "PartialSchedule",
                "repeatFrequency": "P1W",
                "byDay": ["https://schema.org/Tuesday"],
                "startDate": "2027-03-01",
                "endDate": "2027-06-29",
                "startTime": "10:00",
                "endTime": "11:00",
                "scheduleTimezone": "Europe/London"
            }],
            "location": {"@type": "Place", "name": "Crewe Alex Community Hub",
                "address": {"@type": "PostalAddress", "streetAddress": "Gresty Road", "addressLocality": "Crewe", "postalCode": "CW2 6EB"}},
            "activity": [{"@type": "Concept", "prefLabel": "Walking Football"}]
        });
        let e = event(&v, None).unwrap();
        // 1 March 2027 is a Monday: the first session is Tuesday 2 March.
        assert_eq!(e.start.to_rfc3339(), "2027-03-02T10:00:00+00:00");
        assert_eq!(e.end.unwrap().to_rfc3339(), "2027-03-02T11:00:00+00:00");
        // 29 June is in BST, so 10:00 local is 09:00 UTC.
        assert_eq!(
            e.recurrence.unwrap(),
            vec!["RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20270629T090000Z"]
        );
        assert_eq!(e.location.postcode.as_deref(), Some("CW2 6EB"));
        assert_eq!(e.categories, vec!["Walking Football"]);
    }

    #[test]
    fn organisations_and_bad_nodes() {
        let v = json!({"@type": ["NGO"], "name": "Crewe Foodbank", "identifier": "1150000",
            "address": "1 High St, Crewe, CW1 2BJ", "telephone": "01270 000000"});
        assert!(is_organisation(&v));
        let o = organisation(&v).unwrap();
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1150000"));
        assert_eq!(o.address.postcode.as_deref(), Some("CW1 2BJ"));
        assert!(event(&json!({"@type": "Event", "name": "x"}), None)
            .unwrap_err()
            .contains("startDate"));
        assert!(event(&json!({"@type": "Event", "startDate": "2027-01-01"}), None).is_err());
        let t0 = DateTime::parse_from_rfc3339("2027-01-31T10:00:00+00:00").unwrap();
        assert_eq!(after(t0, "PT1H30M").unwrap(), t0 + Duration::minutes(90));
        assert_eq!(after(t0, "P1DT2H").unwrap(), t0 + Duration::hours(26));
        assert_eq!(after(t0, "P2W").unwrap(), t0 + Duration::days(14));
        assert!(after(t0, "1 hour").is_err());
    }

    #[test]
    fn offsets_without_a_colon_and_a_fourth_time_component() {
        let at = |s: &str| date_time(s, DEFAULT_TZ).unwrap().0.to_rfc3339();
        // Eventbrite and Songkick write the offset without a colon.
        assert_eq!(at("2024-10-03T19:00:00+0100"), "2024-10-03T19:00:00+01:00");
        assert_eq!(at("2024-10-03T19:00:00-0500"), "2024-10-03T19:00:00-05:00");
        assert_eq!(at("2024-10-03T19:00+01"), "2024-10-03T19:00:00+01:00");
        // OutSavvy writes a fourth time component.
        assert_eq!(
            at("2024-06-15T12:30:00:00+01:00"),
            "2024-06-15T12:30:00+01:00"
        );
        assert_eq!(at("20241003T190000Z"), "2024-10-03T19:00:00+00:00");
        assert!(date_time("2024-10-03T25:00:00+0100", DEFAULT_TZ).is_err());
        assert!(date_time("next Tuesday", DEFAULT_TZ).is_err());
        let e = event(
            &json!({"@type": "Event", "name": "Gig", "startDate": "2024-10-03T19:00:00+0100",
                    "endDate": "2024-10-03T23:00:00+0100"}),
            None,
        )
        .unwrap();
        assert_eq!(e.end.unwrap().to_rfc3339(), "2024-10-03T23:00:00+01:00");
    }

    #[test]
    fn a_date_only_end_date_includes_that_day() {
        let e = event(
            &json!({"@type": "Festival", "name": "Summer fair", "startDate": "2027-08-01",
                    "endDate": "2027-08-04"}),
            None,
        )
        .unwrap();
        assert!(e.all_day);
        assert_eq!(e.start.to_rfc3339(), "2027-08-01T00:00:00+01:00");
        assert_eq!(e.end.unwrap().to_rfc3339(), "2027-08-05T00:00:00+01:00");
        let timed = event(
            &json!({"@type": "Event", "name": "Camp", "startDate": "2027-08-01T10:00:00+01:00",
                    "endDate": "2027-08-04"}),
            None,
        )
        .unwrap();
        assert_eq!(timed.end.unwrap().to_rfc3339(), "2027-08-05T00:00:00+01:00");
    }

    #[test]
    fn schema_org_subtypes_of_organization_and_event() {
        for t in [
            "SportsTeam",
            "ClothingStore",
            "MusicGroup",
            "Hospital",
            "TravelAgency",
            "WorkersUnion",
        ] {
            assert!(is_organisation(&json!({"@type": t})), "{t}");
        }
        for t in [
            "Hackathon",
            "EventSeries",
            "Festival",
            "SocialEvent",
            "https://schema.org/CourseInstance",
        ] {
            assert!(is_event(&json!({"@type": t})), "{t}");
        }
        for t in ["Service", "Place", "Person", "SocialEvent"] {
            assert!(!is_organisation(&json!({"@type": t})), "{t}");
        }
        assert!(!is_event(&json!({"@type": "OnDemandEvent"})));
    }

    #[test]
    fn repeat_frequency_takes_any_single_unit_duration() {
        let rule = |freq: &str| {
            let v = json!({"@type": "SessionSeries", "name": "Swim", "eventSchedule": {
                "repeatFrequency": freq, "byDay": "https://schema.org/Monday",
                "startDate": "2027-03-01", "startTime": "10:00"}});
            event(&v, None).map(|e| e.recurrence.unwrap()[0].clone())
        };
        assert_eq!(rule("P7D").unwrap(), "RRULE:FREQ=WEEKLY;BYDAY=MO");
        assert_eq!(
            rule("P2W").unwrap(),
            "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"
        );
        assert_eq!(rule("P3D").unwrap(), "RRULE:FREQ=DAILY;INTERVAL=3;BYDAY=MO");
        assert_eq!(rule("P1M").unwrap(), "RRULE:FREQ=MONTHLY;BYDAY=MO");
        assert!(rule("PT1H").unwrap_err().contains("more often than daily"));
        assert!(rule("P1M2D").unwrap_err().contains("mixes units"));
        assert!(rule("weekly").is_err());
    }

    #[test]
    fn events_nested_under_an_organisation() {
        let org = json!({"@type": "SportsClub", "name": "Crewe Harriers", "event": [
            {"@type": "SportsEvent", "name": "Club 10k", "startDate": "2027-05-01T09:00:00+0100"},
            {"@type": "Event", "startDate": "2027-05-20", "location": "Crewe"},
            {"@type": "Event", "name": "AGM", "startDate": "2027-06-01T19:00:00+01:00",
             "organizer": {"@type": "Organization", "name": "Harriers Committee"}}]});
        let events = nested_events(&org);
        assert_eq!(events.len(), 3);
        let first = event(&events[0], None).unwrap();
        assert_eq!(first.organiser.name.as_deref(), Some("Crewe Harriers"));
        let untitled = event(&events[1], None).unwrap();
        assert_eq!(untitled.title, "Crewe Harriers");
        let second = event(&events[2], None).unwrap();
        assert_eq!(second.organiser.name.as_deref(), Some("Harriers Committee"));
    }
}
