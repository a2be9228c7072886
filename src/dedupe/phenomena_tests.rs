//! One test per real-directory phenomenon the engine must handle (shared values, chaining,
//! wrong identifiers, names and places, phones, events, one feed's own records), each through
//! [`super::resolve`] on records built as partners send them.

use super::*;
use crate::model::{Address, Event, Identifiers, Location, Organisation, Payload};
use chrono::{DateTime, Utc};

#[derive(Default, Clone)]
struct O {
    name: &'static str,
    charity: Option<&'static str>,
    company: Option<&'static str>,
    postcode: Option<&'static str>,
    town: Option<&'static str>,
    phone: Option<&'static str>,
    email: Option<&'static str>,
    web: Option<&'static str>,
}

fn org(o: O) -> Payload {
    Payload::Organisation(Organisation {
        name: o.name.into(),
        identifiers: Identifiers {
            charity_number: o.charity.map(String::from),
            company_number: o.company.map(String::from),
            ..Default::default()
        },
        address: Address {
            postcode: o.postcode.map(String::from),
            locality: o.town.map(String::from),
            ..Default::default()
        },
        phone: o.phone.map(String::from),
        email: o.email.map(String::from),
        website: o.web.map(String::from),
        ..Default::default()
    })
}

#[derive(Default, Clone)]
struct E {
    title: &'static str,
    start: &'static str,
    booking: Option<&'static str>,
    venue: Option<&'static str>,
    postcode: Option<&'static str>,
    room: Option<&'static str>,
    series: bool,
    url: Option<&'static str>,
    all_day: bool,
}

fn event(e: E) -> Payload {
    Payload::Event(Event {
        title: e.title.into(),
        description: None,
        description_html: None,
        start: DateTime::parse_from_rfc3339(e.start).unwrap(),
        end: None,
        timezone: None,
        all_day: e.all_day,
        recurrence: e.series.then(|| vec!["RRULE:FREQ=WEEKLY".to_string()]),
        overrides: Vec::new(),
        status: Default::default(),
        location: Location {
            name: e.venue.map(String::from),
            postcode: e.postcode.map(String::from),
            online: e.room.is_some(),
            url: e.room.map(String::from),
            ..Default::default()
        },
        url: e.url.map(String::from),
        booking_url: e.booking.map(String::from),
        organiser: Default::default(),
        categories: vec![],
    })
}

fn recs(list: Vec<(&str, Payload)>) -> Vec<StoredRecord> {
    list.into_iter()
        .enumerate()
        .map(|(i, (partner, payload))| StoredRecord {
            row_id: i as i64 + 1,
            partner: partner.into(),
            priority: 0,
            record_id: format!("r{i}"),
            url: None,
            changed_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            payload,
            entity_id: None,
        })
        .collect()
}

fn resolve_all(kind: RecordKind, records: &[StoredRecord]) -> Resolution {
    resolve(kind, records, &|_| false, &Settings::default(), &[])
}

/// Whether records `i` and `j` ended up in one cluster.
fn together(r: &Resolution, i: usize, j: usize) -> bool {
    r.clusters
        .iter()
        .any(|c| c.members.contains(&i) && c.members.contains(&j))
}

fn orgs_together(a: O, b: O) -> bool {
    let r = resolve_all(
        RecordKind::Organisations,
        &recs(vec![("p1", org(a)), ("p2", org(b))]),
    );
    together(&r, 0, 1)
}

fn events_together(a: E, b: E) -> bool {
    let r = resolve_all(
        RecordKind::Events,
        &recs(vec![("p1", event(a)), ("p2", event(b))]),
    );
    together(&r, 0, 1)
}

const PLACES: [&str; 24] = [
    "Anlaby",
    "Bransholme",
    "Cottingham",
    "Drypool",
    "Elloughton",
    "Ferriby",
    "Garden Village",
    "Hessle",
    "Kirkella",
    "Longhill",
    "Marfleet",
    "Newington",
    "Orchard Park",
    "Preston",
    "Riplingham",
    "Sculcoates",
    "Thornton",
    "Underhill",
    "Victoria Dock",
    "Walkington",
    "Welton",
    "Bilton",
    "Sutton",
    "Dunswell",
];

#[test]
fn a_national_number_shared_by_many_local_units_is_weak_evidence() {
    // Every local group carries the national body's charity number; each is listed by two
    // partners. Only the listings of one group belong together.
    let mut list = Vec::new();
    for (i, place) in PLACES.iter().enumerate() {
        let name: &'static str = Box::leak(format!("{place} Scouts").into_boxed_str());
        for p in ["register", "council"] {
            list.push((
                p,
                org(O {
                    name,
                    charity: Some("306101"),
                    postcode: Some(["HU1 1AA", "HU5 2BB", "HU7 3CC"][i % 3]),
                    ..Default::default()
                }),
            ));
        }
    }
    let records = recs(list);
    let r = resolve_all(RecordKind::Organisations, &records);
    let biggest = r.clusters.iter().map(|c| c.members.len()).max();
    assert_eq!(biggest, Some(2), "{} clusters", r.clusters.len());
    assert_eq!(r.clusters.len(), PLACES.len());
}

#[test]
fn a_community_centres_contacts_do_not_merge_the_groups_it_hosts() {
    let mut list = Vec::new();
    for place in PLACES.iter().take(12) {
        let name: &'static str = Box::leak(format!("{place} Knit and Natter").into_boxed_str());
        for p in ["a", "b"] {
            list.push((
                p,
                org(O {
                    name,
                    postcode: Some("HU9 1EP"),
                    phone: Some("01482 320000"),
                    email: Some("bookings@eastcentre.org.uk"),
                    ..Default::default()
                }),
            ));
        }
    }
    let r = resolve_all(RecordKind::Organisations, &recs(list));
    assert!(r.clusters.iter().all(|c| c.members.len() <= 2));
    assert_eq!(r.clusters.len(), 12);
}

#[test]
fn no_chain_puts_plainly_different_organisations_together() {
    // A–B: same name and phone. B–C: same charity number and website. A and C: different
    // names in different districts: they must not share a cluster through B.
    let records = recs(vec![
        (
            "a",
            org(O {
                name: "Hull Food Bank",
                postcode: Some("HU9 1EP"),
                phone: Some("01482 111222"),
                ..Default::default()
            }),
        ),
        (
            "b",
            org(O {
                name: "Hull Food Bank",
                charity: Some("1150001"),
                phone: Some("01482 111222"),
                web: Some("https://beverleyroadcentre.org.uk"),
                ..Default::default()
            }),
        ),
        (
            "c",
            org(O {
                name: "Beverley Road Community Centre",
                charity: Some("1150001"),
                postcode: Some("HU5 1LL"),
                web: Some("https://beverleyroadcentre.org.uk"),
                ..Default::default()
            }),
        ),
    ]);
    let r = resolve_all(RecordKind::Organisations, &records);
    assert!(!together(&r, 0, 2), "{:?}", r.clusters);
}

#[test]
fn a_trading_subsidiary_is_not_its_parent() {
    assert!(!orgs_together(
        O {
            name: "Age UK Hull",
            charity: Some("1170001"),
            postcode: Some("HU1 3AA"),
            ..Default::default()
        },
        O {
            name: "Age UK Hull Trading Limited",
            company: Some("03456789"),
            postcode: Some("HU1 3AA"),
            ..Default::default()
        },
    ));
}

#[test]
fn a_company_number_in_the_charity_field_is_a_company_number() {
    assert!(orgs_together(
        O {
            name: "Goodwin Development Trust",
            charity: Some("03136538"),
            ..Default::default()
        },
        O {
            name: "Goodwin Development Trust",
            company: Some("3136538"),
            ..Default::default()
        },
    ));
}

#[test]
fn transposed_digits_do_not_veto_a_match() {
    let base = O {
        name: "Hull Mind",
        postcode: Some("HU2 8HY"),
        phone: Some("01482 240133"),
        ..Default::default()
    };
    assert!(orgs_together(
        O {
            charity: Some("1170012"),
            ..base.clone()
        },
        O {
            charity: Some("1170021"),
            ..base
        },
    ));
}

#[test]
fn one_wrong_number_neither_vetoes_a_supported_match_nor_hides_a_pair_from_review() {
    let full = O {
        name: "Hull Mind",
        postcode: Some("HU2 8HY"),
        phone: Some("01482 240133"),
        web: Some("https://hullmind.org.uk"),
        ..Default::default()
    };
    assert!(orgs_together(
        O {
            charity: Some("1170025"),
            ..full.clone()
        },
        O {
            charity: Some("1094483"),
            ..full
        },
    ));
    // With less support the pair is not merged, but an admin is asked.
    let records = recs(vec![
        (
            "a",
            org(O {
                name: "Hull Mind",
                charity: Some("1170025"),
                postcode: Some("HU2 8HY"),
                phone: Some("01482 240133"),
                ..Default::default()
            }),
        ),
        (
            "b",
            org(O {
                name: "Hull Mind",
                charity: Some("1094483"),
                postcode: Some("HU2 8HY"),
                ..Default::default()
            }),
        ),
    ]);
    let r = resolve_all(RecordKind::Organisations, &records);
    assert_eq!(r.clusters.len(), 2);
    assert_eq!(r.review.len(), 1, "the pair is queued");
}

#[test]
fn linked_charities_are_different_entities() {
    let base = O {
        name: "St Andrew's Community Trust",
        postcode: Some("HU3 2AA"),
        ..Default::default()
    };
    assert!(!orgs_together(
        O {
            charity: Some("1093978"),
            ..base.clone()
        },
        O {
            charity: Some("1093978-1"),
            ..base
        },
    ));
}

#[test]
fn names_with_acronyms_places_service_names_and_accents_match() {
    let pairs = [
        ("Hull U3A", "Hull University of the Third Age"),
        ("Mind (Hull)", "Mind"),
        ("Age UK Hull – Befriending Service", "Age UK Hull"),
        ("Łódź Polish Club", "Lodz Polish Club"),
    ];
    for (a, b) in pairs {
        assert!(
            orgs_together(
                O {
                    name: a,
                    postcode: Some("HU1 1AA"),
                    ..Default::default()
                },
                O {
                    name: b,
                    postcode: Some("HU1 1AA"),
                    ..Default::default()
                },
            ),
            "{a} / {b}"
        );
    }
}

#[test]
fn a_move_to_another_district_of_the_same_town_is_not_a_different_place() {
    // Two listings kept the old postcode, one the new one (same town, same postcode area): the
    // move must neither split the pair nor bar the mover from the cluster of the other two.
    let one = |partner, postcode| {
        (
            partner,
            org(O {
                name: "Blackpool Rotary Club",
                postcode: Some(postcode),
                town: Some("Blackpool"),
                ..Default::default()
            }),
        )
    };
    let r = resolve_all(
        RecordKind::Organisations,
        &recs(vec![
            one("p1", "FY1 4QU"),
            one("p2", "FY1 4QU"),
            one("p3", "FY3 8TP"),
        ]),
    );
    assert!(together(&r, 0, 1) && together(&r, 0, 2), "{:?}", r.clusters);
    // The same name in another town of the area is still another place.
    assert!(!orgs_together(
        O {
            name: "Rotary Club",
            postcode: Some("FY1 4QU"),
            town: Some("Blackpool"),
            ..Default::default()
        },
        O {
            name: "Rotary Club",
            postcode: Some("FY8 1AB"),
            town: Some("Lytham St Annes"),
            ..Default::default()
        },
    ));
}

#[test]
fn the_postcode_not_the_town_string_is_the_location_evidence() {
    assert!(orgs_together(
        O {
            name: "Bransholme Youth Project",
            postcode: Some("HU7 4EY"),
            town: Some("Kingston upon Hull"),
            ..Default::default()
        },
        O {
            name: "Bransholme Youth Project",
            postcode: Some("HU7 4EY"),
            town: Some("Bransholme"),
            ..Default::default()
        },
    ));
}

#[test]
fn phones_parse_in_any_format_and_mobiles_say_little() {
    // US directories write numbers in ways only libphonenumber's rules read.
    assert!(orgs_together(
        O {
            name: "Westside Family Services",
            phone: Some("310/246-1501"),
            ..Default::default()
        },
        O {
            name: "Westside Family Services",
            phone: Some("(310) 246-1501"),
            ..Default::default()
        },
    ));
    // A volunteer's mobile on two listings with only a common name: not enough to merge.
    assert!(!orgs_together(
        O {
            name: "Hull Community Shop",
            phone: Some("07911 123456"),
            ..Default::default()
        },
        O {
            name: "Hull Community Shop",
            phone: Some("+44 7911 123456"),
            ..Default::default()
        },
    ));
}

#[test]
fn events_minutes_apart_or_an_hour_out_in_utc_are_one_event() {
    let link = Some("https://www.eventbrite.co.uk/e/funding-fair-tickets-123456789");
    assert!(events_together(
        E {
            title: "Funding Fair",
            start: "2027-06-10T12:55:00Z",
            booking: link,
            ..Default::default()
        },
        E {
            title: "Funding Fair",
            start: "2027-06-10T13:00:00Z",
            booking: link,
            ..Default::default()
        },
    ));
    // A partner writing local time marked `Z` is exactly one hour out in summer.
    assert!(events_together(
        E {
            title: "Funding Fair",
            start: "2027-06-10T13:00:00+01:00",
            booking: link,
            ..Default::default()
        },
        E {
            title: "Funding Fair",
            start: "2027-06-10T13:00:00Z",
            booking: link,
            ..Default::default()
        },
    ));
}

#[test]
fn eventbrite_links_in_any_form_are_one_event_id() {
    assert!(events_together(
        E {
            title: "Funding Fair",
            start: "2027-01-28T10:00:00Z",
            booking: Some("https://www.eventbrite.co.uk/e/hull-funding-fair-tickets-123456789?aff=ebdssbdestsearch"),
            ..Default::default()
        },
        E {
            title: "Hull Funding Fair",
            start: "2027-01-28T10:00:00Z",
            booking: Some("https://eventbrite.com/e/123456789"),
            ..Default::default()
        },
    ));
}

#[test]
fn the_same_tea_dance_at_two_family_hubs_is_two_events() {
    assert!(!events_together(
        E {
            title: "Tea Dance",
            start: "2027-02-03T14:00:00Z",
            venue: Some("Bransholme Family Hub"),
            ..Default::default()
        },
        E {
            title: "Tea Dance",
            start: "2027-02-03T14:00:00Z",
            venue: Some("Orchard Park Family Hub"),
            ..Default::default()
        },
    ));
}

#[test]
fn a_series_and_one_of_its_occurrences_are_not_merged() {
    assert!(!events_together(
        E {
            title: "Community Cafe",
            start: "2027-01-05T10:00:00Z",
            postcode: Some("CW1 2BJ"),
            series: true,
            ..Default::default()
        },
        E {
            title: "Community Cafe",
            start: "2027-01-05T10:00:00Z",
            postcode: Some("CW1 2BJ"),
            ..Default::default()
        },
    ));
}

#[test]
fn course_parts_and_sessions_sharing_a_room_link_stay_apart() {
    let room = Some("https://us02web.zoom.us/j/81234567890");
    assert!(!events_together(
        E {
            title: "Digital Skills Course",
            start: "2027-03-01T10:00:00Z",
            room,
            ..Default::default()
        },
        E {
            title: "Digital Skills Course",
            start: "2027-03-08T10:00:00Z",
            room,
            ..Default::default()
        },
    ));
}

#[test]
fn one_feeds_own_records_are_different_entities() {
    // Two listings with different ids in one partner's feed: not merged on a name and postcode.
    let r = resolve_all(
        RecordKind::Organisations,
        &recs(vec![
            (
                "council",
                org(O {
                    name: "Hull Community Shop",
                    postcode: Some("HU1 1AA"),
                    ..Default::default()
                }),
            ),
            (
                "council",
                org(O {
                    name: "Hull Community Shop",
                    postcode: Some("HU1 1AA"),
                    ..Default::default()
                }),
            ),
        ]),
    );
    assert_eq!(r.clusters.len(), 2);
    // Two series with different UIDs in one calendar never merge, whatever agrees.
    let series = E {
        title: "Baby Rhyme Time",
        start: "2027-01-05T10:00:00Z",
        venue: Some("Central Library"),
        postcode: Some("HU1 3TF"),
        series: true,
        ..Default::default()
    };
    let r = resolve_all(
        RecordKind::Events,
        &recs(vec![
            ("library", event(series.clone())),
            ("library", event(series)),
        ]),
    );
    assert_eq!(r.clusters.len(), 2);
    assert!(r.review.is_empty());
}

#[test]
fn a_day_only_listing_in_summer_is_the_event_on_its_date() {
    // Local midnight in summer is 23:00 UTC the day before: the date is the listing's own.
    let venue = E {
        title: "Community Lunch",
        venue: Some("Devonport Leisure Centre"),
        postcode: Some("PL4 3NN"),
        ..Default::default()
    };
    assert!(events_together(
        E {
            start: "2027-06-10T00:00:00+01:00",
            all_day: true,
            ..venue.clone()
        },
        E {
            start: "2027-06-10T12:30:00+01:00",
            ..venue.clone()
        },
    ));
    // The next day is another occurrence.
    assert!(!events_together(
        E {
            start: "2027-06-11T00:00:00+01:00",
            all_day: true,
            ..venue.clone()
        },
        E {
            start: "2027-06-10T12:30:00+01:00",
            ..venue
        },
    ));
}

#[test]
fn registration_opening_half_an_hour_early_is_the_same_event() {
    let at = E {
        title: "Volunteer Fair",
        venue: Some("Guildhall Rooms"),
        postcode: Some("NG8 7RX"),
        ..Default::default()
    };
    assert!(events_together(
        E {
            start: "2027-03-04T09:30:00Z",
            ..at.clone()
        },
        E {
            start: "2027-03-04T10:00:00Z",
            ..at.clone()
        },
    ));
    // Two hours later at the same venue is another session.
    assert!(!events_together(
        E {
            start: "2027-03-04T12:00:00Z",
            ..at.clone()
        },
        E {
            start: "2027-03-04T10:00:00Z",
            ..at
        },
    ));
}

#[test]
fn local_time_marked_utc_and_opening_early_is_still_one_event() {
    // 12:55 local written as 12:55Z (an hour late), against 13:00 with its offset.
    let at = E {
        title: "Job Club",
        venue: Some("Central Library"),
        postcode: Some("HU1 3TF"),
        ..Default::default()
    };
    assert!(events_together(
        E {
            start: "2027-06-10T12:55:00Z",
            ..at.clone()
        },
        E {
            start: "2027-06-10T13:00:00+01:00",
            ..at.clone()
        },
    ));
    // Both carry the local offset and are an hour apart: two sessions.
    assert!(!events_together(
        E {
            start: "2027-06-10T14:00:00+01:00",
            ..at.clone()
        },
        E {
            start: "2027-06-10T13:00:00+01:00",
            ..at
        },
    ));
}

#[test]
fn one_link_in_different_fields_is_one_link() {
    // One partner gives the Eventbrite page as the event's link, another as its booking link.
    assert!(events_together(
        E {
            title: "Hull Funding Fair",
            start: "2027-01-28T10:00:00Z",
            url: Some("https://www.eventbrite.com/e/hull-funding-fair-tickets-123456789"),
            ..Default::default()
        },
        E {
            title: "Funding Fair",
            start: "2027-01-28T10:00:00Z",
            booking: Some("https://eventbrite.co.uk/e/123456789?aff=newsletter"),
            ..Default::default()
        },
    ));
}

#[test]
fn an_organiser_prefix_or_a_remark_on_a_title_is_decoration() {
    let at = E {
        start: "2027-02-14T10:30:00Z",
        venue: Some("St Luke's Church Hall"),
        ..Default::default()
    };
    assert!(events_together(
        E {
            title: "Hull Dementia Support Group: Bereavement Cafe",
            ..at.clone()
        },
        E {
            title: "Bereavement Cafe - all welcome",
            ..at.clone()
        },
    ));
    // The same remark on two different sessions does not make them one.
    assert!(!events_together(
        E {
            title: "Bereavement Cafe - all welcome",
            ..at.clone()
        },
        E {
            title: "Craft Club - all welcome",
            ..at
        },
    ));
}
