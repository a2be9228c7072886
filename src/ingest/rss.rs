//! The `rss` format: RSS 2.0 or Atom feeds of event posts (`rss` and `atom_syndication` crates,
//! on quick-xml, which never expands DTD entities). A post is an event when its dates come from the
//! RSS event module (`ev:startdate`), xCal (`xCal:dtstart`) or RDF Calendar (`ical:dtstart`), else
//! from a date stated in its title or text ("Tuesday 25th January 2022, 1pm – 3pm"). Posts with no
//! date are news, not events: they are rejected with that reason, so an admin sees why.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};

use super::times::{instant, local_time, DEFAULT_TZ};
use super::{dates_in_text, feed_xml, geo, html, ParseError};
use crate::model::{
    Event, EventStatus, Location, Organiser, ParsedFeed, Payload, Rejection, SourceRecord,
};

const FORMAT: &str = "rss";
const EVENT_MODULE_NS: &str = "http://purl.org/rss/1.0/modules/event/";
const XCAL_NS: &str = "urn:ietf:params:xml:ns:xcal";
/// The W3C RDF Calendar vocabulary some feeds embed as `ical:dtstart`.
const RDFCAL_NS: &str = "http://www.w3.org/2002/12/cal/ical#";
/// GeoRSS Simple (`georss:point`, "latitude longitude").
const GEORSS_NS: &str = "http://www.georss.org/georss";
/// W3C Basic Geo (`geo:lat`, `geo:long`).
const W3C_GEO_NS: &str = "http://www.w3.org/2003/01/geo/wgs84_pos#";

/// A feed item, whichever dialect it came in.
#[derive(Default)]
struct Post {
    id: Option<String>,
    title: Option<String>,
    link: Option<String>,
    html: Option<String>,
    published: Option<DateTime<FixedOffset>>,
    categories: Vec<String>,
    author: Option<String>,
    /// Extension elements by (namespace URI or prefix, local name) → first value.
    ext: BTreeMap<(String, String), String>,
}

pub fn parse(bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let prepared = feed_xml::prepare(bytes).map_err(invalid)?;
    let posts = match prepared.dialect {
        feed_xml::Dialect::Atom => atom(&prepared.xml)?,
        feed_xml::Dialect::Rss => rss(&prepared.xml)?,
    };
    let mut feed = ParsedFeed::default();
    let mut seen = std::collections::HashSet::new();
    for (i, post) in posts.into_iter().enumerate() {
        let Some(id) = post
            .id
            .clone()
            .or_else(|| post.link.clone())
            .or_else(|| derived_id(&post))
        else {
            feed.rejections.push(Rejection {
                source_id: None,
                reason: format!(
                    "item {}: no guid, id, link, title or text to identify it",
                    i + 1
                ),
            });
            continue;
        };
        if !seen.insert(id.clone()) {
            feed.rejections.push(Rejection {
                source_id: Some(id),
                reason: "duplicate guid: an earlier item has the same one".into(),
            });
            continue;
        }
        let mut notes = Vec::new();
        match event(&post, &mut notes) {
            Ok(e) => {
                feed.warnings
                    .extend(notes.into_iter().map(|reason| Rejection {
                        source_id: Some(id.clone()),
                        reason,
                    }));
                feed.records.push(SourceRecord {
                    source_id: id,
                    url: post.link.clone(),
                    updated_at: post.published,
                    payload: Payload::Event(e),
                })
            }
            Err(reason) => feed.rejections.push(Rejection {
                source_id: Some(id),
                reason,
            }),
        }
    }
    Ok(feed)
}

/// A stable id for an item with no guid, id or link, from what it says (title, text, dates), so
/// the same post keeps its id from sync to sync and an edited one becomes a new record.
fn derived_id(post: &Post) -> Option<String> {
    use sha2::Digest;
    let title = post.title.as_deref().unwrap_or("").trim();
    let text = post.html.as_deref().unwrap_or("").trim();
    if title.is_empty() && text.is_empty() {
        return None;
    }
    let mut h = sha2::Sha256::new();
    for part in [title, text] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (k, v) in &post.ext {
        h.update(k.0.as_bytes());
        h.update(k.1.as_bytes());
        h.update(v.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = hex::encode(&digest[..12]);
    Some(format!("derived:{hex}"))
}

fn invalid(reason: String) -> ParseError {
    ParseError::Invalid {
        format: FORMAT,
        reason,
    }
}

/// Extension values keyed by namespace URI when declared (so any prefix works), else by prefix.
fn extensions<E>(
    map: &BTreeMap<String, BTreeMap<String, Vec<E>>>,
    namespaces: &BTreeMap<String, String>,
    value: impl Fn(&E) -> Option<&str>,
) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (prefix, elements) in map {
        let ns = namespaces
            .get(prefix)
            .cloned()
            .unwrap_or_else(|| prefix.clone());
        for (name, values) in elements {
            if let Some(v) = values
                .iter()
                .find_map(&value)
                .map(str::trim)
                .filter(|v| !v.is_empty())
            {
                out.insert((ns.clone(), name.to_ascii_lowercase()), v.to_string());
            }
        }
    }
    out
}

fn rss(bytes: &[u8]) -> Result<Vec<Post>, ParseError> {
    let channel = ::rss::Channel::read_from(bytes).map_err(|e| invalid(e.to_string()))?;
    let ns = channel.namespaces().clone();
    Ok(channel
        .items()
        .iter()
        .map(|item| Post {
            id: item
                .guid()
                .map(|g| g.value().trim().to_string())
                .filter(|g| !g.is_empty()),
            title: item.title().map(str::to_string),
            link: item.link().map(|l| l.trim().to_string()),
            html: item.content().or(item.description()).map(str::to_string),
            published: item
                .pub_date()
                .and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok()),
            categories: item
                .categories()
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
            author: item
                .dublin_core_ext()
                .and_then(|dc| dc.creators().first().cloned())
                .or_else(|| item.author().map(str::to_string)),
            ext: extensions(item.extensions(), &ns, |e| e.value()),
        })
        .collect())
}

fn atom(bytes: &[u8]) -> Result<Vec<Post>, ParseError> {
    let feed = atom_syndication::Feed::read_from(bytes).map_err(|e| invalid(e.to_string()))?;
    let ns = feed.namespaces().clone();
    Ok(feed
        .entries()
        .iter()
        .map(|entry| {
            let link = entry
                .links()
                .iter()
                .find(|l| l.rel() == "alternate")
                .or_else(|| entry.links().first())
                .map(|l| l.href().to_string());
            Post {
                id: Some(entry.id().trim().to_string()).filter(|i| !i.is_empty()),
                title: Some(entry.title().value.clone()),
                link,
                html: entry
                    .content()
                    .and_then(|c| c.value())
                    .map(str::to_string)
                    .or_else(|| entry.summary().map(|s| s.value.clone())),
                published: entry.published().copied().or(Some(*entry.updated())),
                categories: entry
                    .categories()
                    .iter()
                    .map(|c| c.label().unwrap_or(c.term()).to_string())
                    .collect(),
                author: entry.authors().first().map(|a| a.name().to_string()),
                ext: extensions(entry.extensions(), &ns, |e| e.value()),
            }
        })
        .collect())
}

/// An extension value from the event module or xCal, by its local name.
fn ext<'a>(post: &'a Post, names: &[(&str, &str)]) -> Option<&'a str> {
    names.iter().find_map(|(ns, name)| {
        post.ext
            .get(&(ns.to_string(), name.to_string()))
            .map(String::as_str)
    })
}

/// An extension time: RFC 3339, local ISO, or iCalendar basic (`20220125T130000Z`).
fn ext_time(s: &str) -> Result<(DateTime<FixedOffset>, bool), String> {
    let s = s.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), "%Y%m%dT%H%M%S") {
        return Ok(if s.ends_with('Z') {
            (t.and_utc().fixed_offset(), false)
        } else {
            (local(t)?, false)
        });
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y%m%d") {
        return Ok((local(d.and_hms_opt(0, 0, 0).ok_or("bad date")?)?, true));
    }
    instant(s, DEFAULT_TZ)
}

fn local(t: NaiveDateTime) -> Result<DateTime<FixedOffset>, String> {
    local_time(DEFAULT_TZ, t).ok_or_else(|| format!("{t} does not exist in {}", DEFAULT_TZ.name()))
}

/// The post's point: GeoRSS Simple's `georss:point`, else W3C Basic Geo's `geo:lat` and
/// `geo:long`. A point that fails the check is left out with a note for the feed's warnings; the
/// event still lands.
fn point(post: &Post, notes: &mut Vec<String>) -> Option<geo::Point> {
    let text = |s: &str| serde_json::Value::String(s.to_string());
    let found = match ext(post, &[(GEORSS_NS, "point"), ("georss", "point")]) {
        Some(p) => match p.split_whitespace().collect::<Vec<_>>().as_slice() {
            [lat, lon] => geo::from_json(Some(&text(lat)), Some(&text(lon))),
            _ => Err(format!("georss:point {p:?} is not \"latitude longitude\"")),
        },
        None => geo::from_json(
            ext(post, &[(W3C_GEO_NS, "lat"), ("geo", "lat")])
                .map(text)
                .as_ref(),
            ext(post, &[(W3C_GEO_NS, "long"), ("geo", "long")])
                .map(text)
                .as_ref(),
        ),
    };
    found.unwrap_or_else(|reason| {
        notes.push(format!("point left out: {reason}"));
        None
    })
}

fn event(post: &Post, notes: &mut Vec<String>) -> Result<Event, String> {
    let point = point(post, notes);
    let title = post
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .ok_or("item has no title")?;
    let text = post.html.as_deref().map(html::to_text).unwrap_or_default();
    let start_ext = ext(
        post,
        &[
            (EVENT_MODULE_NS, "startdate"),
            (XCAL_NS, "dtstart"),
            (RDFCAL_NS, "dtstart"),
            ("ev", "startdate"),
            ("xcal", "dtstart"),
            ("ical", "dtstart"),
        ],
    );
    let end_ext = ext(
        post,
        &[
            (EVENT_MODULE_NS, "enddate"),
            (XCAL_NS, "dtend"),
            (RDFCAL_NS, "dtend"),
            ("ev", "enddate"),
            ("xcal", "dtend"),
            ("ical", "dtend"),
        ],
    );
    let (start, end, all_day) = match start_ext {
        Some(s) => {
            let (start, all_day) = ext_time(s).map_err(|e| format!("event start {s:?}: {e}"))?;
            let end = match end_ext {
                Some(e) => Some(ext_time(e).map_err(|x| format!("event end {e:?}: {x}"))?.0),
                None => None,
            };
            (start, end, all_day)
        }
        None => {
            let posted = post.published.map(|p| p.date_naive());
            let stated = dates_in_text::find(&html::inline_text(&title), posted)
                .or_else(|| dates_in_text::find(&text, posted))
                .ok_or(
                    "no event date in ev:/xCal: elements or in the title or text; \
                     a news post, not an event",
                )?;
            let at = |t: chrono::NaiveTime| local(stated.date.and_time(t));
            match stated.start {
                Some(s) => (at(s)?, stated.end.map(at).transpose()?, false),
                None => {
                    let midnight = chrono::NaiveTime::MIN;
                    let next = stated.date.succ_opt().ok_or("date out of range")?;
                    (at(midnight)?, Some(local(next.and_time(midnight))?), true)
                }
            }
        }
    };
    let location_text = ext(
        post,
        &[
            (EVENT_MODULE_NS, "location"),
            (XCAL_NS, "location"),
            ("ev", "location"),
            ("xcal", "location"),
        ],
    );
    let lower = format!("{title} {text}").to_ascii_lowercase();
    let online = ["webinar", "online", "zoom", "microsoft teams", "virtual"]
        .iter()
        .any(|w| lower.contains(w));
    let cancelled = lower.starts_with("cancelled")
        || lower.contains("*cancelled*")
        || html::inline_text(&title)
            .to_ascii_lowercase()
            .starts_with("cancelled");
    Ok(Event {
        title,
        description: None,
        description_html: post.html.clone(),
        start,
        end,
        timezone: Some(DEFAULT_TZ.name().to_string()),
        all_day,
        recurrence: None,
        status: if cancelled {
            EventStatus::Cancelled
        } else {
            EventStatus::Scheduled
        },
        location: Location {
            name: location_text.map(str::to_string),
            online,
            latitude: point.map(|p| p.0),
            longitude: point.map(|p| p.1),
            ..Location::default()
        },
        url: post.link.clone(),
        booking_url: booking_link(post.html.as_deref()),
        organiser: Organiser {
            name: ext(
                post,
                &[
                    (EVENT_MODULE_NS, "organizer"),
                    ("ev", "organizer"),
                    (XCAL_NS, "organizer"),
                ],
            )
            .map(str::to_string)
            .or_else(|| post.author.clone()),
            organisation_id: None,
        },
        categories: post.categories.clone(),
        overrides: Vec::new(),
    })
}

/// A booking platform link in the post, if it has one (Eventbrite, Ticket Tailor, Zoom registration).
fn booking_link(html: Option<&str>) -> Option<String> {
    let html = html?;
    let hosts = [
        "eventbrite.",
        "tickettailor.com",
        "zoom.us/meeting/register",
        "zoom.us/webinar/register",
    ];
    html.split(['"', '\'', ' ', '<', '>'])
        .filter(|s| s.starts_with("http"))
        .find(|s| hosts.iter().any(|h| s.contains(h)))
        .map(|s| html_escape::decode_html_entities(s).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:ev="http://purl.org/rss/1.0/modules/event/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Cheshire East CVS news</title><link>https://cvs.example.org/</link><description>Posts</description>
<item><title>Next Steps in Developing Anchor Institutions in our Region</title>
  <link>https://cvs.example.org/news/anchor-institutions/</link>
  <guid isPermaLink="false">https://cvs.example.org/?p=4211</guid>
  <pubDate>Mon, 10 Jan 2022 09:00:00 +0000</pubDate>
  <dc:creator>Cheshire East CVS</dc:creator>
  <category>Webinars</category>
  <content:encoded><![CDATA[<p>Join us on <strong>Tuesday 25th January 2022, 1pm &ndash; 3pm</strong> for a webinar.</p><p><a href="https://www.eventbrite.co.uk/e/next-steps-anchor-tickets-1234">Register on Eventbrite</a></p>]]></content:encoded>
</item>
<item><title>Volunteer Fair</title><guid>vf-2027</guid><link>https://cvs.example.org/fair</link>
  <ev:startdate>2027-05-12T10:00:00+01:00</ev:startdate><ev:enddate>2027-05-12T14:00:00+01:00</ev:enddate><ev:location>Crewe Lyceum</ev:location>
  <description>Meet local groups.</description></item>
<item><title>Our annual report is out</title><guid>news-1</guid><pubDate>Mon, 10 Jan 2022 09:00:00 +0000</pubDate><description>Read about 2021.</description></item>
</channel></rss>"#;

    #[test]
    fn rss_items_become_events_or_news_rejections() {
        let feed = parse(RSS.as_bytes()).unwrap();
        assert_eq!(feed.records.len(), 2, "{:?}", feed.rejections);
        let Payload::Event(seed) = &feed.records[0].payload else {
            panic!()
        };
        assert_eq!(seed.start.to_rfc3339(), "2022-01-25T13:00:00+00:00");
        assert_eq!(seed.end.unwrap().to_rfc3339(), "2022-01-25T15:00:00+00:00");
        assert!(seed.location.online);
        assert_eq!(
            seed.booking_url.as_deref(),
            Some("https://www.eventbrite.co.uk/e/next-steps-anchor-tickets-1234")
        );
        assert_eq!(seed.organiser.name.as_deref(), Some("Cheshire East CVS"));
        let Payload::Event(fair) = &feed.records[1].payload else {
            panic!()
        };
        assert_eq!(fair.start.to_rfc3339(), "2027-05-12T10:00:00+01:00");
        assert_eq!(fair.location.name.as_deref(), Some("Crewe Lyceum"));
        assert_eq!(feed.rejections.len(), 1);
        assert!(feed.rejections[0].reason.contains("news post"));
    }

    #[test]
    fn atom_entries_with_xcal() {
        let atom = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:xCal="urn:ietf:params:xml:ns:xcal">
  <title>Hull VCSE events</title><id>urn:uuid:feed</id><updated>2026-11-01T09:00:00Z</updated>
  <entry><title>Funding clinic</title><id>urn:uuid:clinic</id><updated>2026-11-01T09:00:00Z</updated>
    <link rel="alternate" href="https://hull.example.org/clinic"/>
    <xCal:dtstart>20261210T100000</xCal:dtstart><xCal:dtend>20261210T120000</xCal:dtend>
    <summary>One-to-one advice.</summary></entry>
  <entry><title>Mince pies &amp; networking, Thursday 17 December, 4-6pm</title><id>urn:uuid:pies</id>
    <updated>2026-11-02T09:00:00Z</updated><content type="html">&lt;p&gt;All welcome&lt;/p&gt;</content></entry>
</feed>"#;
        let feed = parse(atom.as_bytes()).unwrap();
        assert_eq!(feed.records.len(), 2, "{:?}", feed.rejections);
        let Payload::Event(clinic) = &feed.records[0].payload else {
            panic!()
        };
        assert_eq!(clinic.start.to_rfc3339(), "2026-12-10T10:00:00+00:00");
        let Payload::Event(pies) = &feed.records[1].payload else {
            panic!()
        };
        assert_eq!(pies.start.to_rfc3339(), "2026-12-17T16:00:00+00:00");
        assert_eq!(pies.end.unwrap().to_rfc3339(), "2026-12-17T18:00:00+00:00");
    }

    #[test]
    fn rdf_calendar_dates_in_an_rss_item() {
        let feed = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:cal="http://www.w3.org/2002/12/cal/ical#"><channel><title>t</title><link>https://x.org/</link><description>d</description>
<item><title>Trustee networking</title><guid>tn-1</guid><cal:dtstart>2027-02-16T18:00:00Z</cal:dtstart><cal:dtend>2027-02-16T20:00:00Z</cal:dtend></item>
</channel></rss>"#;
        let parsed = parse(feed.as_bytes()).unwrap();
        let Payload::Event(e) = &parsed.records[0].payload else {
            panic!()
        };
        assert_eq!(e.start.to_rfc3339(), "2027-02-16T18:00:00+00:00");
        assert_eq!(e.end.unwrap().to_rfc3339(), "2027-02-16T20:00:00+00:00");
    }

    #[test]
    fn entity_bombs_and_dtds_are_not_expanded() {
        let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>t</title><link>l</link><description>d</description>
<item><title>&e; 25 January 2027</title><guid>x</guid><description>&xxe;</description></item></channel></rss>"#;
        // Either the parser refuses the undefined entities, or it keeps them unexpanded; it never
        // produces the expansion or the file.
        match parse(bomb.as_bytes()) {
            Err(_) => {}
            Ok(feed) => {
                for r in &feed.records {
                    let Payload::Event(e) = &r.payload else {
                        panic!()
                    };
                    assert!(
                        e.title.len() < 200,
                        "entity expanded: {} bytes",
                        e.title.len()
                    );
                    assert!(!e
                        .description_html
                        .clone()
                        .unwrap_or_default()
                        .contains("root:"));
                }
            }
        }
    }

    fn titles(feed: &ParsedFeed) -> Vec<String> {
        feed.records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => e.title.clone(),
                _ => panic!(),
            })
            .collect()
    }

    #[test]
    fn an_atom_text_type_that_is_a_mime_type_reads_as_text() {
        let atom = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title type="text/plain">Events</title><id>f</id><updated>2026-11-01T09:00:00Z</updated>
  <entry><title type="text/plain">Quiz night, Friday 4 December 2026, 7pm</title><id>q</id><updated>2026-11-01T09:00:00Z</updated>
    <summary type="TEXT">All welcome</summary><content type="text/plain">Bring a pen</content></entry></feed>"#;
        let feed = parse(atom.as_bytes()).unwrap();
        assert_eq!(
            titles(&feed),
            vec!["Quiz night, Friday 4 December 2026, 7pm"]
        );
    }

    #[test]
    fn an_encoding_declared_in_the_prolog_is_decoded() {
        let mut doc = br#"<?xml version="1.0" encoding="windows-1252"?>
<rss version="2.0"><channel><title>t</title><link>https://x.org/</link><description>d</description>
<item><title>Caf"#
            .to_vec();
        doc.push(0xE9); // é in windows-1252
        doc.extend_from_slice(b" social \x96 Tuesday 25 January 2028, 1pm</title><guid>c1</guid></item></channel></rss>");
        let feed = parse(&doc).unwrap();
        assert_eq!(
            titles(&feed),
            vec!["Café social – Tuesday 25 January 2028, 1pm"]
        );
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!()
        };
        assert_eq!(e.start.to_rfc3339(), "2028-01-25T13:00:00+00:00");
    }

    #[test]
    fn rss_1_0_with_a_prefixed_namespace() {
        let doc = r#"<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:rss="http://purl.org/rss/1.0/"
         xmlns:ev="http://purl.org/rss/1.0/modules/event/">
  <rss:channel rdf:about="https://x.org/"><rss:title>Events</rss:title><rss:link>https://x.org/</rss:link>
    <rss:description>d</rss:description></rss:channel>
  <rss:item rdf:about="https://x.org/e/1"><rss:title>Open day</rss:title><rss:link>https://x.org/e/1</rss:link>
    <ev:startdate>2027-04-01T10:00:00+01:00</ev:startdate></rss:item>
</rdf:RDF>"#;
        let feed = parse(doc.as_bytes()).unwrap();
        assert_eq!(titles(&feed), vec!["Open day"], "{:?}", feed.rejections);
        assert_eq!(feed.records[0].source_id, "https://x.org/e/1");
    }

    #[test]
    fn an_item_nested_100000_deep_fails_the_feed_not_the_process() {
        let depth = 100_000;
        let doc = format!(
            r#"<rss version="2.0" xmlns:x="urn:x"><channel><title>t</title><link>l</link><description>d</description><item><title>a</title>{}{}</item></channel></rss>"#,
            "<x:a>".repeat(depth),
            "</x:a>".repeat(depth)
        );
        let err = crate::ingest::on_worker_stack(move || {
            parse(doc.as_bytes()).map(|_| ()).map_err(|e| e.to_string())
        })
        .unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
    }

    #[test]
    fn georss_and_w3c_geo_points_are_read_and_bad_ones_warned() {
        let item = |guid: &str, geo: &str| {
            format!("<item><title>Walk {guid}</title><guid>{guid}</guid><ev:startdate>2027-05-01T10:00:00+01:00</ev:startdate>{geo}</item>")
        };
        let rss = format!(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:ev="http://purl.org/rss/1.0/modules/event/" xmlns:georss="http://www.georss.org/georss" xmlns:w="http://www.w3.org/2003/01/geo/wgs84_pos#"><channel><title>t</title><link>https://x.example/</link><description>d</description>{}{}{}{}</channel></rss>"#,
            item("a", "<georss:point>53.0979 -2.4411</georss:point>"),
            item("b", "<w:lat>51.5</w:lat><w:long>-0.12</w:long>"),
            item("c", "<georss:point>53.0979</georss:point>"),
            item("d", "<w:lat>51.5</w:lat><w:long>-200</w:long>"),
        );
        let feed = parse(rss.as_bytes()).unwrap();
        let points: Vec<_> = feed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Event(e) => (e.location.latitude, e.location.longitude),
                Payload::Organisation(_) => panic!("an event feed"),
            })
            .collect();
        assert_eq!(
            points,
            vec![
                (Some(53.0979), Some(-2.4411)),
                (Some(51.5), Some(-0.12)),
                (None, None),
                (None, None)
            ]
        );
        let warned: Vec<(Option<&str>, &str)> = feed
            .warnings
            .iter()
            .map(|w| (w.source_id.as_deref(), w.reason.as_str()))
            .collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert_eq!(warned[0].0, Some("c"));
        assert!(
            warned[0].1.contains("is not \"latitude longitude\""),
            "{warned:?}"
        );
        assert!(warned[1].1.contains("longitude -200"), "{warned:?}");

        let atom = r#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xmlns:georss="http://www.georss.org/georss" xmlns:ev="http://purl.org/rss/1.0/modules/event/"><title>t</title><id>urn:t</id><updated>2027-01-01T00:00:00Z</updated>
<entry><title>Fair</title><id>urn:fair</id><updated>2027-01-01T00:00:00Z</updated><ev:startdate>2027-06-01T10:00:00+01:00</ev:startdate><georss:point>52.2 0.12</georss:point></entry></feed>"#;
        let feed = parse(atom.as_bytes()).unwrap();
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("an event feed")
        };
        assert_eq!(
            (e.location.latitude, e.location.longitude),
            (Some(52.2), Some(0.12))
        );
    }

    #[test]
    fn an_item_without_guid_or_link_gets_a_stable_derived_id() {
        let doc = r#"<rss version="2.0"><channel><title>t</title><link>https://x.org/</link><description>d</description>
<item><title>Coffee morning, Friday 3 March 2028, 10am</title><description>All welcome</description></item></channel></rss>"#;
        let a = parse(doc.as_bytes()).unwrap();
        let b = parse(doc.as_bytes()).unwrap();
        assert_eq!(a.records.len(), 1, "{:?}", a.rejections);
        assert!(a.records[0].source_id.starts_with("derived:"));
        assert_eq!(a.records[0].source_id, b.records[0].source_id);
    }
}
