//! The `csv` format: one record per row, columns named after the flattened canonical fields
//! (header names matched case-insensitively; unknown columns ignored). Multi-valued cells
//! (`categories`, `alternate_names`) split on `;`; a `recurrence` cell holds one content line per
//! line of the cell (`RRULE:…` values contain `;` themselves, so `;` cannot separate them).
//! A feed's `columns` mapping renames a partner's own headers to ours, so exports work unedited.

use std::collections::{BTreeMap, HashMap};

use super::times::{instant, DEFAULT_TZ};
use super::{geo, ParseError};
use crate::model::{
    Address, Event, EventStatus, Identifiers, Location, Organisation, Organiser, ParsedFeed,
    Payload, RecordKind, Rejection, SourceRecord,
};

const FORMAT: &str = "csv";

/// A row's cells by lower-cased column name.
struct Row<'a> {
    cells: HashMap<&'a str, &'a str>,
}

impl Row<'_> {
    fn get(&self, col: &str) -> Option<String> {
        self.cells
            .get(col)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn list(&self, col: &str) -> Vec<String> {
        self.get(col)
            .map(|v| {
                v.split(';')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The row's point: `latitude`/`longitude` columns, else the short names exports use
    /// (`lat`, and `lng`, `lon` or `long`). A point that fails the check is left out with a note
    /// for the feed's warnings; the row still lands.
    fn point(&self, notes: &mut Vec<String>) -> Option<geo::Point> {
        let first = |names: &[&str]| names.iter().find_map(|c| self.get(c));
        let lat = first(&["latitude", "lat"]).map(serde_json::Value::String);
        let lon = first(&["longitude", "lng", "lon", "long"]).map(serde_json::Value::String);
        geo::from_json(lat.as_ref(), lon.as_ref()).unwrap_or_else(|reason| {
            notes.push(format!("point left out: {reason}"));
            None
        })
    }

    fn flag(&self, col: &str) -> Result<bool, String> {
        match self.get(col).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "no" | "n" | "0") => Ok(false),
            Some("true" | "yes" | "y" | "1") => Ok(true),
            Some(other) => Err(format!("{col} {other:?} must be true or false")),
        }
    }
}

const ORGANISATION_COLUMNS: &[&str] = &[
    "id",
    "name",
    "alternate_names",
    "description",
    "description_html",
    "charity_number",
    "company_number",
    "org_id",
    "website",
    "email",
    "phone",
    "street",
    "locality",
    "region",
    "postcode",
    "latitude",
    "longitude",
    "categories",
    "url",
    "updated_at",
];

const EVENT_COLUMNS: &[&str] = &[
    "id",
    "title",
    "description",
    "description_html",
    "start",
    "end",
    "timezone",
    "all_day",
    "recurrence",
    "status",
    "location_name",
    "location_address",
    "postcode",
    "latitude",
    "longitude",
    "online",
    "location_url",
    "url",
    "booking_url",
    "organiser_name",
    "categories",
    "updated_at",
];

/// The column names this adapter reads for `kind`: what a `columns` mapping may map to.
pub fn columns(kind: RecordKind) -> &'static [&'static str] {
    match kind {
        RecordKind::Organisations => ORGANISATION_COLUMNS,
        RecordKind::Events => EVENT_COLUMNS,
    }
}

pub fn parse(kind: RecordKind, bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    parse_mapped(kind, bytes, &BTreeMap::new())
}

/// Parses with `mapping` (canonical column → the partner's header) applied to the header row.
pub fn parse_mapped(
    kind: RecordKind,
    bytes: &[u8],
    mapping: &BTreeMap<String, String>,
) -> Result<ParsedFeed, ParseError> {
    let invalid = |reason: String| ParseError::Invalid {
        format: FORMAT,
        reason,
    };
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let headers = apply_mapping(headers, mapping).map_err(invalid)?;
    let required: &[&str] = match kind {
        RecordKind::Organisations => &["id", "name"],
        RecordKind::Events => &["id", "title", "start"],
    };
    let missing: Vec<&str> = required
        .iter()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(invalid(format!(
            "the header row lacks required column(s) {} (found: {})",
            missing.join(", "),
            headers.join(", ")
        )));
    }

    let mut feed = ParsedFeed::default();
    let mut seen = std::collections::HashSet::new();
    for (i, result) in reader.records().enumerate() {
        // Row numbers as a spreadsheet shows them: the header is row 1.
        let n = i + 2;
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                feed.rejections.push(Rejection {
                    source_id: None,
                    reason: format!("row {n}: {e}"),
                });
                continue;
            }
        };
        if record.len() != headers.len() {
            feed.rejections.push(Rejection {
                source_id: record
                    .get(0)
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
                reason: format!(
                    "row {n}: has {} fields, the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let row = Row {
            cells: headers
                .iter()
                .map(String::as_str)
                .zip(record.iter())
                .collect(),
        };
        let id = row.get("id");
        let mut notes = Vec::new();
        let result = match &id {
            None => Err("no id".to_string()),
            Some(id) => match kind {
                RecordKind::Organisations => {
                    organisation(&row, &mut notes).map(Payload::Organisation)
                }
                RecordKind::Events => event(&row, &mut notes).map(Payload::Event),
            }
            .map(|payload| (id.clone(), payload)),
        };
        match result {
            Ok((id, payload)) => {
                if !seen.insert(id.clone()) {
                    feed.rejections.push(Rejection {
                        source_id: Some(id),
                        reason: format!("row {n}: duplicate id: an earlier row has the same id"),
                    });
                    continue;
                }
                feed.warnings.extend(notes.drain(..).map(|note| Rejection {
                    source_id: Some(id.clone()),
                    reason: format!("row {n}: {note}"),
                }));
                let updated_at = row
                    .get("updated_at")
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(&s).ok());
                feed.records.push(SourceRecord {
                    source_id: id,
                    url: row.get("url"),
                    updated_at,
                    payload,
                });
            }
            Err(reason) => feed.rejections.push(Rejection {
                source_id: id,
                reason: format!("row {n}: {reason}"),
            }),
        }
    }
    Ok(feed)
}

/// Renames mapped partner headers to canonical ones. A mapped header the file lacks fails the feed:
/// it means the partner changed their export, and guessing would land wrong data.
fn apply_mapping(
    mut headers: Vec<String>,
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut renamed = vec![false; headers.len()];
    for (canonical, theirs) in mapping {
        let theirs_lc = theirs.trim().to_ascii_lowercase();
        let Some(i) = headers.iter().position(|h| *h == theirs_lc) else {
            return Err(format!(
                "columns.{canonical} maps to {theirs:?}, which the header row lacks (found: {})",
                headers.join(", ")
            ));
        };
        headers[i] = canonical.clone();
        renamed[i] = true;
    }
    // An unmapped column that happens to share a mapped canonical name must not shadow it.
    let mapped: Vec<&str> = mapping.keys().map(String::as_str).collect();
    for (h, r) in headers.iter_mut().zip(&renamed) {
        if !r && mapped.contains(&h.as_str()) {
            h.insert_str(0, "unmapped:");
        }
    }
    Ok(headers)
}

fn organisation(row: &Row, notes: &mut Vec<String>) -> Result<Organisation, String> {
    let name = row.get("name").ok_or("no name")?;
    let point = row.point(notes);
    Ok(Organisation {
        name,
        alternate_names: row.list("alternate_names"),
        description: row.get("description"),
        description_html: row.get("description_html"),
        identifiers: Identifiers {
            charity_number: row.get("charity_number"),
            company_number: row.get("company_number"),
            org_id: row.get("org_id"),
        },
        website: row.get("website"),
        email: row.get("email"),
        phone: row.get("phone"),
        address: Address {
            street: row.get("street"),
            locality: row.get("locality"),
            region: row.get("region"),
            postcode: row.get("postcode"),
            latitude: point.map(|p| p.0),
            longitude: point.map(|p| p.1),
        },
        categories: row.list("categories"),
    })
}

fn event(row: &Row, notes: &mut Vec<String>) -> Result<Event, String> {
    let title = row.get("title").ok_or("no title")?;
    let point = row.point(notes);
    let tz: chrono_tz::Tz = match row.get("timezone") {
        None => DEFAULT_TZ,
        Some(name) => name
            .parse()
            .map_err(|_| format!("timezone {name:?} is not an IANA time zone"))?,
    };
    let start_s = row.get("start").ok_or("no start")?;
    let (start, start_is_date) = instant(&start_s, tz).map_err(|e| format!("start: {e}"))?;
    let end = match row.get("end") {
        None => None,
        Some(s) => Some(instant(&s, tz).map_err(|e| format!("end: {e}"))?.0),
    };
    let status = match row.get("status").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("scheduled" | "confirmed") => EventStatus::Scheduled,
        Some("cancelled" | "canceled") => EventStatus::Cancelled,
        Some(other) => return Err(format!("status {other:?} must be scheduled or cancelled")),
    };
    let recurrence: Vec<String> = row
        .get("recurrence")
        .map(|r| {
            r.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Event {
        title,
        description: row.get("description"),
        description_html: row.get("description_html"),
        start,
        end,
        timezone: Some(tz.name().to_string()),
        all_day: row.flag("all_day")? || start_is_date,
        recurrence: (!recurrence.is_empty()).then_some(recurrence),
        status,
        location: Location {
            name: row.get("location_name"),
            address: row.get("location_address"),
            postcode: row.get("postcode"),
            online: row.flag("online")?,
            url: row.get("location_url"),
            latitude: point.map(|p| p.0),
            longitude: point.map(|p| p.1),
        },
        url: row.get("url"),
        booking_url: row.get("booking_url"),
        organiser: Organiser {
            name: row.get("organiser_name"),
            organisation_id: None,
        },
        categories: row.list("categories"),
        overrides: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organisations_with_quirks() {
        let text = "\u{feff}ID,Name,Charity_Number,Website,Postcode,Categories,Extra\n\
            m1,\"Age UK Cheshire East, Macclesfield\",1100000,www.ageukce.org,SK11 6AB,Older people;Advice,x\n\
            m2,,1100001,,CW1 2BJ,,\n\
            m3,Crewe Foodbank,,,CW1 2BJ,Food,\n\
            m4,Too,many,fields,here,a,b,c\n\
            m3,Crewe Foodbank again,,,CW1 2BJ,,\n";
        let feed = parse(RecordKind::Organisations, text.as_bytes()).unwrap();
        assert_eq!(feed.records.len(), 2, "{:?}", feed.rejections);
        let Payload::Organisation(o) = &feed.records[0].payload else {
            panic!()
        };
        assert_eq!(o.name, "Age UK Cheshire East, Macclesfield");
        assert_eq!(o.categories, vec!["Older people", "Advice"]);
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1100000"));
        let reasons: Vec<&str> = feed.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].starts_with("row 3: no name"), "{reasons:?}");
        assert!(reasons[1].contains("row 5") && reasons[1].contains("fields"));
        assert!(reasons[2].contains("duplicate"));
    }

    #[test]
    fn events_with_local_times_and_recurrence() {
        let text = "id,title,start,end,timezone,all_day,recurrence,status,online\n\
            e1,Funding fair,2027-02-10 10:00,2027-02-10 13:00,,,,,no\n\
            e2,Community cafe,2027-01-05T10:00,2027-01-05T12:00,Europe/London,,\"RRULE:FREQ=WEEKLY;BYDAY=TU\nEXDATE;TZID=Europe/London:20270112T100000\",scheduled,\n\
            e3,Volunteers' Week,2027-06-01,2027-06-08,,true,,,\n\
            e4,Bad,31/01/2027,,,,,,\n\
            e5,Cancelled talk,2027-03-01T18:00:00+00:00,,,,,canceled,yes\n";
        let feed = parse(RecordKind::Events, text.as_bytes()).unwrap();
        assert_eq!(feed.records.len(), 4, "{:?}", feed.rejections);
        let Payload::Event(e2) = &feed.records[1].payload else {
            panic!()
        };
        assert_eq!(e2.recurrence.as_ref().unwrap().len(), 2);
        assert_eq!(
            e2.recurrence.as_ref().unwrap()[0],
            "RRULE:FREQ=WEEKLY;BYDAY=TU"
        );
        let Payload::Event(e3) = &feed.records[2].payload else {
            panic!()
        };
        assert!(e3.all_day);
        let Payload::Event(e5) = &feed.records[3].payload else {
            panic!()
        };
        assert_eq!(e5.status, EventStatus::Cancelled);
        assert!(e5.location.online);
        assert!(feed.rejections[0].reason.contains("row 5: start"));
    }

    #[test]
    fn column_mapping_reads_a_partners_own_export() {
        let text = "Ref,Organisation Name,Charity No.,Post Code,Name\n\
            101,Crewe Foodbank,1150000,CW1 2BJ,Jo Bloggs (contact)\n";
        let mapping: BTreeMap<String, String> = [
            ("id", "Ref"),
            ("name", "organisation name"),
            ("charity_number", "Charity No."),
            ("postcode", "Post Code"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let feed = parse_mapped(RecordKind::Organisations, text.as_bytes(), &mapping).unwrap();
        assert_eq!(feed.records.len(), 1, "{:?}", feed.rejections);
        let Payload::Organisation(o) = &feed.records[0].payload else {
            panic!()
        };
        assert_eq!(
            o.name, "Crewe Foodbank",
            "the mapped column wins over a literal \"Name\""
        );
        assert_eq!(feed.records[0].source_id, "101");
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1150000"));
        assert_eq!(o.address.postcode.as_deref(), Some("CW1 2BJ"));

        let mut broken = mapping.clone();
        broken.insert("website".into(), "Web Site".into());
        let err = parse_mapped(RecordKind::Organisations, text.as_bytes(), &broken).unwrap_err();
        assert!(
            err.to_string()
                .contains("columns.website maps to \"Web Site\""),
            "{err}"
        );
    }

    #[test]
    fn coordinates_are_read_under_their_common_names_and_bad_ones_warned() {
        let csv = "id,name,postcode,Lat,Lng\n\
                   a,Alpha,CW1 2AB,53.0979,-2.4411\n\
                   b,Beta,CW1 2AB,,\n\
                   c,Gamma,CW1 2AB,95,-2.4\n\
                   d,Delta,CW1 2AB,53.1,\n";
        let feed = parse(RecordKind::Organisations, csv.as_bytes()).unwrap();
        let points: Vec<_> = feed
            .records
            .iter()
            .map(|r| match &r.payload {
                Payload::Organisation(o) => (o.address.latitude, o.address.longitude),
                Payload::Event(_) => panic!("an organisation feed"),
            })
            .collect();
        assert_eq!(
            points,
            vec![
                (Some(53.0979), Some(-2.4411)),
                (None, None),
                (None, None),
                (None, None)
            ]
        );
        assert!(feed.rejections.is_empty(), "every row lands");
        let warned: Vec<&str> = feed.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(
            warned[0].starts_with("row 4: point left out: latitude 95"),
            "{warned:?}"
        );
        assert!(
            warned[1].contains("latitude without longitude"),
            "{warned:?}"
        );

        // Events: `latitude`/`longitude`, or a partner's own headers through `columns`.
        let csv = "id,title,start,Y,X\ne1,Walk,2027-05-01T10:00:00,51.5,-0.12\n";
        let mapping = BTreeMap::from([
            ("latitude".to_string(), "Y".to_string()),
            ("longitude".to_string(), "X".to_string()),
        ]);
        let feed = parse_mapped(RecordKind::Events, csv.as_bytes(), &mapping).unwrap();
        let Payload::Event(e) = &feed.records[0].payload else {
            panic!("an event feed")
        };
        assert_eq!(
            (e.location.latitude, e.location.longitude),
            (Some(51.5), Some(-0.12))
        );
    }

    #[test]
    fn missing_required_columns_fail_the_feed() {
        let err = parse(RecordKind::Events, b"id,name\n1,x\n").unwrap_err();
        assert!(err.to_string().contains("title, start"), "{err}");
        assert!(parse(
            RecordKind::Organisations,
            b"<html><body>Not found</body></html>"
        )
        .is_err());
    }
}
