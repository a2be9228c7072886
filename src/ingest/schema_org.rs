//! schema.org / OpenActive vocabulary to canonical records, shared by the `jsonld` and `rpde`
//! adapters: `Event` and its subtypes, OpenActive `SessionSeries` (with `eventSchedule` as an
//! RRULE) and `ScheduledSession`, and `Organization` and its subtypes.

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime};
use serde_json::Value;

use super::html;
use super::tributary_json::{instant, local_time, DEFAULT_TZ};
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

pub fn is_event(v: &Value) -> bool {
    types(v).iter().any(|t| {
        t.ends_with("Event")
            || matches!(
                t.as_str(),
                "ScheduledSession" | "SessionSeries" | "CourseInstance" | "Festival"
            )
    }) && !types(v).iter().any(|t| t == "OnDemandEvent")
}

pub fn is_organisation(v: &Value) -> bool {
    types(v).iter().any(|t| {
        matches!(
            t.as_str(),
            "Organization"
                | "Organisation"
                | "NGO"
                | "Corporation"
                | "GovernmentOrganization"
                | "LocalBusiness"
                | "SportsOrganization"
                | "SportsClub"
                | "EducationalOrganization"
                | "MedicalOrganization"
                | "PerformingGroup"
                | "Library"
        )
    })
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
        Some(d) if html::looks_like_html(&d) => (None, Some(d)),
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
        .filter(|p| crate::normalise::postcode(p).is_some())
}

/// Maps an `Organization` node.
pub fn organisation(v: &Value) -> Result<Organisation, String> {
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
        address: match object(v, "location") {
            Some(place) if postal_address(v).is_empty() => postal_address(place),
            _ => postal_address(v),
        },
        categories,
    })
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
            let (start, is_date) = instant(&s, tz).map_err(|e| format!("startDate: {e}"))?;
            let end = match scalar(v.get("endDate").unwrap_or(&Value::Null)) {
                Some(e) => Some(instant(&e, tz).map_err(|e| format!("endDate: {e}"))?.0),
                None => match scalar(v.get("duration").unwrap_or(&Value::Null)) {
                    Some(d) => Some(
                        start
                            + iso_duration(&d).ok_or_else(|| {
                                format!(
                                    "duration {d:?} is not an ISO 8601 duration such as PT1H30M"
                                )
                            })?,
                    ),
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
    let location = location(v.get("location").or_else(|| from_parent("location")));
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

fn location(v: Option<&Value>) -> Location {
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

/// An ISO 8601 duration of days, hours, minutes and seconds (`P1D`, `PT1H30M`).
fn iso_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = Duration::zero();
    let mut parse = |part: &str, units: &[(char, i64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() {
                num.push(c);
            } else {
                let secs = units.iter().find(|(u, _)| *u == c)?.1;
                total += Duration::seconds(num.parse::<i64>().ok()? * secs);
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    parse(days, &[('D', 86_400), ('W', 7 * 86_400)])?;
    parse(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    Some(total)
}

/// A schedule's first occurrence (start, end) and its RRULE content line.
type Scheduled = (DateTime<FixedOffset>, Option<DateTime<FixedOffset>>, String);

/// An OpenActive `Schedule`/`PartialSchedule` as a first occurrence and an RRULE content line.
fn schedule_rule(s: &Value, tz: chrono_tz::Tz) -> Result<Scheduled, String> {
    let freq = match text_field(s, "repeatFrequency").as_deref() {
        Some("P1D") => "DAILY",
        Some("P1W") => "WEEKLY",
        Some("P1M") => "MONTHLY",
        Some("P1Y") => "YEARLY",
        Some(other) => {
            return Err(format!(
                "eventSchedule repeatFrequency {other:?} is not one of P1D, P1W, P1M, P1Y"
            ))
        }
        None => return Err("eventSchedule has no repeatFrequency".into()),
    };
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
        assert_eq!(iso_duration("PT1H30M"), Some(Duration::minutes(90)));
        assert_eq!(iso_duration("P1DT2H"), Some(Duration::hours(26)));
        assert_eq!(iso_duration("1 hour"), None);
    }
}
