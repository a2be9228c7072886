//! The `csv` format: UTF-8 (optional BOM), a header row naming the flattened canonical fields
//! (matched case-insensitively, surrounding spaces ignored, unknown columns ignored), one record
//! per row. Rows are numbered as a spreadsheet shows them: the header is row 1.
//!
//! Cells: `alternate_names` and `categories` hold several values separated by `;`. A `recurrence`
//! cell holds content lines separated by `|` or by line breaks inside the quoted cell, never by
//! `;`, which RRULE values use themselves (`RRULE:FREQ=WEEKLY;BYDAY=TU|EXDATE:20270112T100000Z`);
//! a bare `FREQ=…` line is read as an RRULE. `start`/`end` are RFC 3339
//! (`2027-01-25T13:00:00+00:00`), a local time `2027-01-25 13:00[:00]` or `2027-01-25T13:00[:00]`
//! in the row's `timezone` (default Europe/London), or a date `2027-01-25`, which makes the event
//! all-day; a date `end` is the last day of the event, as people write it in a spreadsheet (so
//! 2027-06-01 to 2027-06-07 is a week), and a date `start` with no `end` is one day. `all_day` and
//! `online` take true/false, yes/no, y/n, 1/0 or empty; `status` scheduled (or confirmed) or
//! cancelled (or canceled).

use std::collections::HashMap;

use chrono::{DateTime, Duration, FixedOffset};
use chrono_tz::Tz;

use super::tributary_json::{local_midnight, parse_when, When, DEFAULT_TZ};
use super::ParseError;
use crate::model::{
    Address, Event, EventStatus, Identifiers, Location, Organisation, Organiser, ParsedFeed,
    Payload, RecordKind, Rejection, SourceRecord,
};
use crate::normalise;

const FORMAT: &str = "csv";

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
    "online",
    "location_url",
    "url",
    "booking_url",
    "organiser_name",
    "categories",
    "updated_at",
];

/// A row's non-empty cells, trimmed, by known column name.
struct Row<'a> {
    cells: HashMap<&'static str, &'a str>,
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

    fn flag(&self, col: &str) -> Result<bool, String> {
        match self.get(col).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "no" | "n" | "0") => Ok(false),
            Some("true" | "yes" | "y" | "1") => Ok(true),
            Some(other) => Err(format!(
                "{col} {other:?} must be true or false (or yes/no, 1/0)"
            )),
        }
    }
}

pub fn parse(kind: RecordKind, bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
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
    let (known, required): (&[&'static str], &[&str]) = match kind {
        RecordKind::Organisations => (ORGANISATION_COLUMNS, &["id", "name"]),
        RecordKind::Events => (EVENT_COLUMNS, &["id", "title", "start"]),
    };
    let missing: Vec<&str> = required
        .iter()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .copied()
        .collect();
    if !missing.is_empty() {
        let found: String = headers.join(",").chars().take(120).collect();
        return Err(invalid(format!(
            "the header row lacks the required column(s) {} (it reads {found:?})",
            missing.join(", ")
        )));
    }
    // Column index of each known column; a known column named twice is ambiguous.
    let mut columns: Vec<(usize, &'static str)> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if let Some(col) = known.iter().find(|k| **k == h.as_str()) {
            if columns.iter().any(|(_, c)| c == col) {
                return Err(invalid(format!(
                    "the header row names column {col:?} twice"
                )));
            }
            columns.push((i, col));
        }
    }

    let mut feed = ParsedFeed::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, result) in reader.records().enumerate() {
        let n = i + 2;
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => {
                        "not UTF-8 text (save the spreadsheet as \"CSV UTF-8\")".to_string()
                    }
                    _ => e.to_string(),
                };
                feed.rejections.push(Rejection {
                    source_id: None,
                    reason: format!("row {n}: {reason}"),
                });
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let id = columns
            .iter()
            .find(|(_, c)| *c == "id")
            .and_then(|(i, _)| record.get(*i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let reject = |reason: String| Rejection {
            source_id: id.clone(),
            reason: format!("row {n}: {reason}"),
        };
        if record.len() != headers.len() {
            feed.rejections.push(reject(format!(
                "has {} fields but the header has {} (an unquoted comma, or a missing one?)",
                record.len(),
                headers.len()
            )));
            continue;
        }
        let Some(id) = id.clone() else {
            feed.rejections.push(reject("no id".into()));
            continue;
        };
        // The first row with an id claims it, even if rejected: a later row never stands in.
        if let Some(first) = seen.get(&id) {
            feed.rejections
                .push(reject(format!("duplicate id: row {first} has the same id")));
            continue;
        }
        seen.insert(id.clone(), n);
        let row = Row {
            cells: columns
                .iter()
                .filter_map(|(i, c)| record.get(*i).map(|v| (*c, v)))
                .collect(),
        };
        let mapped = match kind {
            RecordKind::Organisations => organisation(&row).map(Payload::Organisation),
            RecordKind::Events => event(&row).map(Payload::Event),
        }
        .and_then(|payload| {
            let tz = match &payload {
                Payload::Event(e) => e.timezone.as_deref().and_then(normalise::zone),
                Payload::Organisation(_) => None,
            };
            let updated_at = match row.get("updated_at") {
                None => None,
                Some(s) => Some(
                    time(&s, tz.unwrap_or(DEFAULT_TZ))
                        .map_err(|e| format!("updated_at {e}"))?
                        .0,
                ),
            };
            Ok((payload, updated_at))
        });
        match mapped {
            Ok((payload, updated_at)) => feed.records.push(SourceRecord {
                source_id: id,
                url: row.get("url"),
                updated_at,
                payload,
            }),
            Err(reason) => feed.rejections.push(reject(reason)),
        }
    }
    Ok(feed)
}

/// A cell's time in `tz`, and whether it was a date alone. Err is the reason after the column
/// name: `"2022-13-45" is not a date-time …`.
fn time(s: &str, tz: Tz) -> Result<(DateTime<FixedOffset>, bool), String> {
    match parse_when(s) {
        Some(When::Instant(t)) => Ok((t, false)),
        Some(When::Local(n)) => normalise::localise(n, tz)
            .map(|t| (t, false))
            .map_err(|e| format!("{s:?}: {e}")),
        Some(When::Date(d)) => local_midnight(d, tz)
            .map(|t| (t, true))
            .map_err(|e| format!("{s:?}: {e}")),
        None => Err(format!(
            "{s:?} is not a date-time (use 2027-01-25 13:00, 2027-01-25T13:00:00+00:00 or the date 2027-01-25)"
        )),
    }
}

fn organisation(row: &Row) -> Result<Organisation, String> {
    let name = row.get("name").ok_or("no name")?;
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
        },
        categories: row.list("categories"),
    })
}

/// The recurrence cell's content lines (see the module doc for the separators).
fn recurrence(cell: Option<String>) -> Result<Option<Vec<String>>, String> {
    let Some(cell) = cell else {
        return Ok(None);
    };
    let mut lines = Vec::new();
    for line in cell.split(['\n', '\r', '|']).map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("FREQ=") {
            lines.push(format!("RRULE:{line}"));
        } else if ["RRULE", "RDATE", "EXDATE"]
            .iter()
            .any(|p| upper.starts_with(p) && upper[p.len()..].starts_with([':', ';']))
        {
            lines.push(line.to_string());
        } else {
            return Err(format!(
                "recurrence line {line:?} must start RRULE:, RDATE or EXDATE (separate lines with | or line breaks, not ;)"
            ));
        }
    }
    Ok((!lines.is_empty()).then_some(lines))
}

fn event(row: &Row) -> Result<Event, String> {
    let title = row.get("title").ok_or("no title")?;
    let named = match row.get("timezone") {
        None => None,
        Some(name) => Some(normalise::zone(&name).ok_or_else(|| {
            format!("timezone {name:?} is not a known time zone (use an IANA name such as Europe/London)")
        })?),
    };
    let tz = named.unwrap_or(DEFAULT_TZ);
    let start_cell = row.get("start").ok_or("no start")?;
    let (start, start_is_date) = time(&start_cell, tz).map_err(|e| format!("start {e}"))?;
    let end = match row.get("end") {
        None if start_is_date => Some(start_of_day_after(start, tz)?),
        None => None,
        Some(s) => match time(&s, tz).map_err(|e| format!("end {e}"))? {
            // A date end is the event's last day; the canonical end is exclusive.
            (t, true) => Some(start_of_day_after(t, tz)?),
            (t, false) => Some(t),
        },
    };
    let all_day = row.flag("all_day")? || start_is_date;
    // A zone the row names, or London for local times and dates; an RFC 3339 offset alone names
    // London only when it is London's offset then.
    let start_is_instant = matches!(parse_when(&start_cell), Some(When::Instant(_)));
    let timezone = match named {
        Some(tz) => Some(tz),
        None if start_is_instant => normalise::zone_for_offset(start),
        None => Some(DEFAULT_TZ),
    };
    let start = match named {
        Some(tz) if start_is_instant => start.with_timezone(&tz).fixed_offset(),
        _ => start,
    };
    let status = match row.get("status").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("scheduled" | "confirmed") => EventStatus::Scheduled,
        Some("cancelled" | "canceled") => EventStatus::Cancelled,
        Some(other) => return Err(format!("status {other:?} must be scheduled or cancelled")),
    };
    Ok(Event {
        title,
        description: row.get("description"),
        description_html: row.get("description_html"),
        start,
        end,
        timezone: timezone.map(|tz| tz.name().to_string()),
        all_day,
        recurrence: recurrence(row.get("recurrence"))?,
        status,
        location: Location {
            name: row.get("location_name"),
            address: row.get("location_address"),
            postcode: row.get("postcode"),
            online: row.flag("online")?,
            url: row.get("location_url"),
        },
        url: row.get("url"),
        booking_url: row.get("booking_url"),
        organiser: Organiser {
            name: row.get("organiser_name"),
            organisation_id: None,
        },
        categories: row.list("categories"),
    })
}

/// Local midnight after the day `t` falls on in `tz`.
fn start_of_day_after(t: DateTime<FixedOffset>, tz: Tz) -> Result<DateTime<FixedOffset>, String> {
    let day = t.with_timezone(&tz).date_naive();
    let next = day
        .checked_add_signed(Duration::days(1))
        .ok_or_else(|| format!("{day} has no next day"))?;
    local_midnight(next, tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org_at(feed: &ParsedFeed, i: usize) -> &Organisation {
        match &feed.records[i].payload {
            Payload::Organisation(o) => o,
            Payload::Event(_) => panic!("not an organisation"),
        }
    }

    fn event_at(feed: &ParsedFeed, i: usize) -> &Event {
        match &feed.records[i].payload {
            Payload::Event(e) => e,
            Payload::Organisation(_) => panic!("not an event"),
        }
    }

    fn reasons(feed: &ParsedFeed) -> Vec<&str> {
        feed.rejections.iter().map(|r| r.reason.as_str()).collect()
    }

    #[test]
    fn organisations_with_real_world_quirks() {
        let text = "\u{feff} ID ,Name,Charity_Number,Website,Postcode,Categories,Alternate_Names,URL,Updated_At,Extra\n\
            m1,\"Age UK Cheshire East, Macclesfield\",1100000,www.ageukce.org,SK11 6AB,Older people; Advice ;,Age UK CE,https://cvs/m1,2026-10-01T09:00:00+01:00,x\n\
            m2,,1100001,,CW1 2BJ,,,,,\n\
            \n\
            ,Nameless id,,,,,,,,\n\
            m3,Crewe Foodbank,,,CW1 2BJ,Food,,,,\n\
            m4,Too,many,fields,here,a,b,c,d,e,f\n\
            m3,Crewe Foodbank again,,,CW1 2BJ,,,,,\n\
            m5,Dated locally,,,,,,,2026-10-01 09:00,\n";
        let feed = parse(RecordKind::Organisations, text.as_bytes()).unwrap();
        let ids: Vec<&str> = feed.records.iter().map(|r| r.source_id.as_str()).collect();
        assert_eq!(ids, vec!["m1", "m3", "m5"], "{:?}", feed.rejections);
        let o = org_at(&feed, 0);
        assert_eq!(o.name, "Age UK Cheshire East, Macclesfield");
        assert_eq!(o.categories, vec!["Older people", "Advice"]);
        assert_eq!(o.alternate_names, vec!["Age UK CE"]);
        assert_eq!(o.identifiers.charity_number.as_deref(), Some("1100000"));
        assert_eq!(
            o.website.as_deref(),
            Some("www.ageukce.org"),
            "adapters only map"
        );
        assert_eq!(feed.records[0].url.as_deref(), Some("https://cvs/m1"));
        assert_eq!(
            feed.records[0]
                .updated_at
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some("2026-10-01T09:00:00+01:00")
        );
        assert_eq!(
            feed.records[2]
                .updated_at
                .map(|t| t.to_rfc3339())
                .as_deref(),
            Some("2026-10-01T09:00:00+01:00")
        );
        let r = reasons(&feed);
        assert_eq!(r.len(), 4, "{r:?}");
        assert_eq!(r[0], "row 3: no name");
        assert_eq!(feed.rejections[0].source_id.as_deref(), Some("m2"));
        assert_eq!(r[1], "row 4: no id", "the blank line is not counted");
        assert!(
            r[2].starts_with("row 6: has 11 fields but the header has 10"),
            "{r:?}"
        );
        assert_eq!(r[3], "row 7: duplicate id: row 5 has the same id");
    }

    #[test]
    fn bad_bytes_and_bad_cells_are_row_rejections() {
        let mut bytes = b"id,name,updated_at\nm1,Caf".to_vec();
        bytes.push(0xe9); // Windows-1252 "é"
        bytes.extend_from_slice(b",\nm2,Fine,\nm3,Bad date,last tuesday\n");
        let feed = parse(RecordKind::Organisations, &bytes).unwrap();
        assert_eq!(feed.records.len(), 1);
        let r = reasons(&feed);
        assert!(r[0].starts_with("row 2: not UTF-8"), "{r:?}");
        assert!(
            r[1].starts_with("row 4: updated_at \"last tuesday\" is not a date-time"),
            "{r:?}"
        );
    }

    #[test]
    fn event_times_in_every_accepted_form() {
        let text = "id,title,start,end,timezone,all_day\n\
            e1,Funding fair,2027-02-10 10:00,2027-02-10 13:00:30,,\n\
            e2,Summer fair,2027-07-10T10:00,2027-07-10T16:00:00,Europe/London,\n\
            e3,Volunteers' Week,2027-06-01,2027-06-07,,\n\
            e4,Christmas closure,2027-12-24,,,\n\
            e5,Paris meeting,2027-07-10T10:00:00+02:00,,,\n\
            e6,Named zone,2027-07-10T09:00:00Z,,GMT Standard Time,\n\
            e7,Flagged,2027-03-01 09:00,2027-03-01 17:00,,yes\n";
        let feed = parse(RecordKind::Events, text.as_bytes()).unwrap();
        assert_eq!(feed.rejections, vec![]);
        let e1 = event_at(&feed, 0);
        assert_eq!(e1.start.to_rfc3339(), "2027-02-10T10:00:00+00:00");
        assert_eq!(e1.end.unwrap().to_rfc3339(), "2027-02-10T13:00:30+00:00");
        assert_eq!(e1.timezone.as_deref(), Some("Europe/London"));
        let e2 = event_at(&feed, 1);
        assert_eq!(e2.start.to_rfc3339(), "2027-07-10T10:00:00+01:00");
        let e3 = event_at(&feed, 2);
        assert!(e3.all_day);
        assert_eq!(e3.start.to_rfc3339(), "2027-06-01T00:00:00+01:00");
        assert_eq!(e3.end.unwrap().to_rfc3339(), "2027-06-08T00:00:00+01:00");
        let e4 = event_at(&feed, 3);
        assert!(e4.all_day);
        assert_eq!(e4.end.unwrap() - e4.start, Duration::days(1));
        let e5 = event_at(&feed, 4);
        assert_eq!(e5.start.to_rfc3339(), "2027-07-10T10:00:00+02:00");
        assert_eq!(e5.timezone, None);
        let e6 = event_at(&feed, 5);
        assert_eq!(e6.start.to_rfc3339(), "2027-07-10T10:00:00+01:00");
        assert_eq!(e6.timezone.as_deref(), Some("Europe/London"));
        assert!(event_at(&feed, 6).all_day);
    }

    #[test]
    fn bad_event_rows_are_rejected_with_the_row_number() {
        let text = "id,title,start,end,timezone,all_day,status,online\n\
            e1,Bad month,2022-13-45,,,,,\n\
            e2,Slashes,31/01/2027,,,,,\n\
            e3,Gap,2027-03-28 01:30,,,,,\n\
            e4,Zone,2027-03-01 10:00,,Mars/Olympus,,,\n\
            e5,,2027-03-01 10:00,,,,,\n\
            e6,No start,,,,,,\n\
            e7,Flag,2027-03-01 10:00,,,sometimes,,\n\
            e8,Status,2027-03-01 10:00,,,,postponed,\n\
            e9,Bad end,2027-03-01 10:00,soon,,,,\n\
            e10,Fine,2027-03-01 10:00,,,,CANCELED,Yes\n";
        let feed = parse(RecordKind::Events, text.as_bytes()).unwrap();
        assert_eq!(feed.records.len(), 1);
        let e = event_at(&feed, 0);
        assert_eq!(e.status, EventStatus::Cancelled);
        assert!(e.location.online);
        let r = reasons(&feed);
        assert_eq!(r.len(), 9, "{r:?}");
        assert!(
            r[0].starts_with("row 2: start \"2022-13-45\" is not a date-time"),
            "{r:?}"
        );
        assert!(r[1].starts_with("row 3: start \"31/01/2027\""), "{r:?}");
        assert!(
            r[2].contains("row 4: start") && r[2].contains("does not exist"),
            "{r:?}"
        );
        assert!(r[3].contains("row 5: timezone \"Mars/Olympus\""), "{r:?}");
        assert_eq!(r[4], "row 6: no title");
        assert_eq!(r[5], "row 7: no start");
        assert!(r[6].contains("row 8: all_day \"sometimes\""), "{r:?}");
        assert!(r[7].contains("row 9: status \"postponed\""), "{r:?}");
        assert!(r[8].starts_with("row 10: end \"soon\""), "{r:?}");
    }

    #[test]
    fn recurrence_cells_split_on_bars_and_line_breaks_not_semicolons() {
        let text = "id,title,start,end,recurrence,location_name,postcode,categories,organiser_name,booking_url\n\
            e1,Community cafe,2027-01-05 10:00,2027-01-05 12:00,\"RRULE:FREQ=WEEKLY;BYDAY=TU\nEXDATE;TZID=Europe/London:20270112T100000\",Hall,sk11 6ab,Food;Social,CVS,https://eventbrite.co.uk/e/1\n\
            e2,Bars,2027-01-05 10:00,,RRULE:FREQ=WEEKLY;BYDAY=TU|EXDATE:20270112T100000Z,,,,,\n\
            e3,Bare rule,2027-01-05 10:00,,FREQ=MONTHLY;BYDAY=1TU,,,,,\n\
            e4,Semicolons,2027-01-05 10:00,,RRULE:FREQ=WEEKLY;EXDATE:20270112T100000Z,,,,,\n\
            e5,Not a rule,2027-01-05 10:00,,every tuesday,,,,,\n";
        let feed = parse(RecordKind::Events, text.as_bytes()).unwrap();
        let e1 = event_at(&feed, 0);
        assert_eq!(
            e1.recurrence.as_deref(),
            Some(
                &[
                    "RRULE:FREQ=WEEKLY;BYDAY=TU".to_string(),
                    "EXDATE;TZID=Europe/London:20270112T100000".to_string()
                ][..]
            )
        );
        assert_eq!(e1.location.name.as_deref(), Some("Hall"));
        assert_eq!(e1.location.postcode.as_deref(), Some("sk11 6ab"));
        assert_eq!(e1.categories, vec!["Food", "Social"]);
        assert_eq!(e1.organiser.name.as_deref(), Some("CVS"));
        assert_eq!(
            e1.booking_url.as_deref(),
            Some("https://eventbrite.co.uk/e/1")
        );
        assert_eq!(
            event_at(&feed, 1).recurrence.as_ref().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            event_at(&feed, 2).recurrence.as_deref(),
            Some(&["RRULE:FREQ=MONTHLY;BYDAY=1TU".to_string()][..])
        );
        // "EXDATE:…" after a ";" is an RRULE part the rrule check in normalise refuses.
        assert_eq!(feed.records.len(), 4);
        let r = reasons(&feed);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(
            r[0].starts_with("row 6: recurrence line \"every tuesday\""),
            "{r:?}"
        );
    }

    #[test]
    fn not_csv_or_missing_columns_fail_the_feed() {
        let err = parse(RecordKind::Events, b"id,name\n1,x\n").unwrap_err();
        assert!(err.to_string().contains("title, start"), "{err}");
        assert!(parse(
            RecordKind::Organisations,
            b"<!DOCTYPE html>\n<html><body>Not found</body></html>"
        )
        .is_err());
        assert!(parse(RecordKind::Organisations, b"").is_err());
        let twice = parse(RecordKind::Organisations, b"id,name,Name\n1,a,b\n").unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
        let unknown_twice = parse(RecordKind::Organisations, b"id,name,x,x\n1,a,b,c\n").unwrap();
        assert_eq!(unknown_twice.records.len(), 1);
    }
}
