//! Partner-given coordinates through each adapter: a small feed with a point lands with it, and
//! an implausible point is dropped with a warning while its record still lands.

use tributary::ingest::{ical, jsonld, oruk, rpde, PageRole};
use tributary::model::{Payload, RecordKind, SourceRecord};

fn org(r: &SourceRecord) -> &tributary::model::Organisation {
    match &r.payload {
        Payload::Organisation(o) => o,
        other => panic!("not an organisation: {other:?}"),
    }
}

fn event(r: &SourceRecord) -> &tributary::model::Event {
    match &r.payload {
        Payload::Event(e) => e,
        other => panic!("not an event: {other:?}"),
    }
}

fn by_id<'a>(records: &'a [SourceRecord], id: &str) -> &'a SourceRecord {
    records
        .iter()
        .find(|r| r.source_id == id)
        .unwrap_or_else(|| panic!("no record {id} in {records:?}"))
}

#[test]
fn oruk_locations_keep_their_latitude_and_longitude() {
    let mut h = oruk::Harvest::default();
    let services = br#"{"total_pages":1,"contents":[
        {"id":"s1","name":"Food parcels","organization":{"id":"o1","name":"Crewe Foodbank"},
         "service_at_locations":[{"location":{"latitude":53.0979,"longitude":"-2.4411",
            "physical_addresses":[{"address_1":"1 High St","city":"Crewe","postal_code":"CW1 2BJ"}]}}]},
        {"id":"s2","name":"Advice","organization":{"id":"o2","name":"Nantwich Advice"},
         "service_at_locations":[{"location":{"latitude":153.1,"longitude":-2.5,
            "physical_addresses":[{"address_1":"2 Low St","postal_code":"CW5 5AA"}]}}]}]}"#;
    h.add_page("https://x.example/services?page=1&per_page=100", services)
        .unwrap();
    let out = h.finish().parsed;
    let a = &org(by_id(&out.records, "o1")).address;
    assert_eq!((a.latitude, a.longitude), (Some(53.0979), Some(-2.4411)));
    assert_eq!(a.postcode.as_deref(), Some("CW1 2BJ"));
    let b = &org(by_id(&out.records, "o2")).address;
    assert_eq!((b.latitude, b.longitude), (None, None));
    assert_eq!(b.postcode.as_deref(), Some("CW5 5AA"), "the address stays");
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert_eq!(out.warnings[0].source_id.as_deref(), Some("o2"));
    assert!(
        out.warnings[0].reason.contains("latitude 153.1"),
        "{:?}",
        out.warnings
    );
    assert!(out.rejections.is_empty(), "{:?}", out.rejections);
}

#[test]
fn openactive_location_geo_lands_and_a_zero_point_warns() {
    let mut h = rpde::Harvest::default();
    let page = br#"{"next":"https://x.example/rpde?afterId=b","items":[
        {"state":"updated","kind":"ScheduledSession","id":"a","modified":1,"data":{
            "@type":"ScheduledSession","name":"Chair Yoga","startDate":"2027-02-02T10:00:00Z",
            "location":{"@type":"Place","name":"Leisure Centre","address":{"@type":"PostalAddress","postalCode":"SK11 6DZ"},
                        "geo":{"@type":"GeoCoordinates","latitude":53.2587,"longitude":-2.1270}}}},
        {"state":"updated","kind":"ScheduledSession","id":"b","modified":2,"data":{
            "@type":"ScheduledSession","name":"Swim","startDate":"2027-02-03T10:00:00Z",
            "location":{"@type":"Place","name":"Pool","geo":{"@type":"GeoCoordinates","latitude":0,"longitude":0}}}}]}"#;
    h.add_page("https://x.example/rpde", page).unwrap();
    let out = h.finish().parsed;
    let a = &event(by_id(&out.records, "a")).location;
    assert_eq!((a.latitude, a.longitude), (Some(53.2587), Some(-2.127)));
    let b = &event(by_id(&out.records, "b")).location;
    assert_eq!((b.latitude, b.longitude), (None, None));
    assert_eq!(b.name.as_deref(), Some("Pool"));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert_eq!(out.warnings[0].source_id.as_deref(), Some("b"));
    assert!(
        out.warnings[0].reason.contains("both 0"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn json_ld_geo_as_strings_on_an_organisation_and_an_event_venue() {
    let page = r#"<html><head><script type="application/ld+json">{"@context":"https://schema.org","@graph":[
        {"@type":"LocalBusiness","name":"Macclesfield Community Hub","url":"https://hub.example/",
         "address":{"@type":"PostalAddress","postalCode":"SK10 1EE"},
         "geo":{"@type":"GeoCoordinates","latitude":"53.2609","longitude":"-2.1250"}},
        {"@type":"NGO","name":"Bad Point Trust","url":"https://bad.example/",
         "geo":{"@type":"GeoCoordinates","latitude":"53.1","longitude":"east"}}]}</script></head></html>"#;
    let mut h = jsonld::Harvest::new(RecordKind::Organisations);
    h.add_page(
        "https://cvs.example/members/",
        PageRole::Listing,
        page.as_bytes(),
    )
    .unwrap();
    let out = h.finish().parsed;
    let a = &org(by_id(&out.records, "https://hub.example/")).address;
    assert_eq!((a.latitude, a.longitude), (Some(53.2609), Some(-2.125)));
    let b = &org(by_id(&out.records, "https://bad.example/")).address;
    assert_eq!((b.latitude, b.longitude), (None, None));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].reason.contains("\"east\""),
        "{:?}",
        out.warnings
    );

    let page = r#"<html><head><script type="application/ld+json">{"@context":"https://schema.org",
        "@type":"Event","name":"Funding Fair","url":"https://cvs.example/events/fair/","startDate":"2027-02-10T10:00:00+00:00",
        "location":{"@type":"Place","name":"Town Hall","latitude":53.0970,"longitude":-2.4420}}</script></head></html>"#;
    let mut h = jsonld::Harvest::new(RecordKind::Events);
    h.add_page(
        "https://cvs.example/events/fair/",
        PageRole::Listing,
        page.as_bytes(),
    )
    .unwrap();
    let out = h.finish().parsed;
    let l = &event(by_id(&out.records, "https://cvs.example/events/fair/")).location;
    assert_eq!((l.latitude, l.longitude), (Some(53.097), Some(-2.442)));
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
}

#[test]
fn microdata_geo_coordinates_in_meta_content() {
    let page = r#"<html><body>
      <div itemscope itemtype="https://schema.org/Event">
        <a itemprop="url" href="https://cvs.example/events/walk/">Walk</a>
        <span itemprop="name">Health Walk</span>
        <time itemprop="startDate" datetime="2027-03-01T10:00:00Z">1 March</time>
        <div itemprop="location" itemscope itemtype="https://schema.org/Place">
          <span itemprop="name">Queens Park</span>
          <div itemprop="geo" itemscope itemtype="https://schema.org/GeoCoordinates">
            <meta itemprop="latitude" content="53.0920"><meta itemprop="longitude" content="-2.4500">
          </div>
        </div>
      </div>
      <div itemscope itemtype="https://schema.org/Event">
        <a itemprop="url" href="https://cvs.example/events/run/">Run</a>
        <span itemprop="name">Park Run</span>
        <time itemprop="startDate" datetime="2027-03-02T10:00:00Z">2 March</time>
        <div itemprop="location" itemscope itemtype="https://schema.org/Place">
          <span itemprop="name">Queens Park</span>
          <div itemprop="geo" itemscope itemtype="https://schema.org/GeoCoordinates">
            <meta itemprop="latitude" content="53.0920">
          </div>
        </div>
      </div></body></html>"#;
    let mut h = jsonld::Harvest::new(RecordKind::Events);
    h.add_page(
        "https://cvs.example/events/",
        PageRole::Listing,
        page.as_bytes(),
    )
    .unwrap();
    let out = h.finish().parsed;
    let walk = &event(by_id(&out.records, "https://cvs.example/events/walk/")).location;
    assert_eq!((walk.latitude, walk.longitude), (Some(53.092), Some(-2.45)));
    let run = &event(by_id(&out.records, "https://cvs.example/events/run/")).location;
    assert_eq!((run.latitude, run.longitude), (None, None));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0]
        .reason
        .contains("latitude without longitude"));
}

#[test]
fn ical_geo_lands_and_a_bad_one_warns() {
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n\
        BEGIN:VEVENT\r\nUID:a@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270201T100000Z\r\n\
        SUMMARY:Coffee morning\r\nLOCATION:Church Hall, Crewe, CW1 2BJ\r\nGEO:53.0979;-2.4411\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:b@x\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270202T100000Z\r\n\
        SUMMARY:Quiz\r\nGEO:53.1;-200\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\n";
    let out = ical::parse(ics.as_bytes()).unwrap();
    let a = &event(by_id(&out.records, "a@x")).location;
    assert_eq!((a.latitude, a.longitude), (Some(53.0979), Some(-2.4411)));
    assert_eq!(a.postcode.as_deref(), Some("CW1 2BJ"));
    let b = event(by_id(&out.records, "b@x"));
    assert_eq!((b.location.latitude, b.location.longitude), (None, None));
    assert_eq!(b.title, "Quiz");
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].reason.contains("longitude -200"),
        "{:?}",
        out.warnings
    );
}
