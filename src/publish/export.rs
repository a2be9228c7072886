//! Static export of the merged data (`tributary export`): the same records the API serves, written
//! whole as a JSON array, a flat CSV (the `csv` input format's columns plus id and provenance) or,
//! for events, an iCalendar file — for object storage, spreadsheets or a CDN. CSV cells that a
//! spreadsheet would run as a formula are defused as OWASP advises (see [`defuse`]).

use crate::licence::Attributions;
use crate::model::{CanonicalEvent, CanonicalOrganisation, PartnerRef};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("CSV is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

/// The records as the API serves them, each partner in their provenance with its licence and
/// attribution: a JSON array, one record per line.
pub fn json<T: serde::Serialize>(
    items: &[T],
    attributions: &Attributions,
) -> Result<String, ExportError> {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let body = serde_json::to_string(item)?;
        out.push_str(&crate::publish::json::with_attributions(
            &body,
            attributions,
        ));
    }
    out.push_str("\n]\n");
    Ok(out)
}

fn join(v: &[String]) -> String {
    v.join(";")
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

fn provenance(p: &[PartnerRef]) -> String {
    p.iter()
        .map(|p| format!("{}:{}", p.partner, p.record_id))
        .collect::<Vec<_>>()
        .join(";")
}

/// `partner:licence` for each partner behind a record (`partner:` when it states none), in the
/// order of [`provenance`]; the licence is its SPDX id, else its URL.
fn licences(p: &[PartnerRef], attributions: &Attributions) -> String {
    p.iter()
        .map(|p| {
            let l = attributions
                .get(&p.partner)
                .and_then(|a| a.licence.as_ref())
                .map(|l| l.label().to_string())
                .unwrap_or_default();
            format!("{}:{l}", p.partner)
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A cell a spreadsheet would take for a formula (it starts with `=`, `+`, `-`, `@`, a tab or a
/// carriage return, or their full-width forms) gets a leading `'`, so Excel, LibreOffice and Google
/// Sheets show it as text instead of running it (OWASP, "CSV Injection"). Partners' text is
/// untrusted: `=HYPERLINK(…)` in a name must not run on an admin's machine. The csv writer quotes
/// cells holding separators or quotes, the second half of OWASP's advice.
pub fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    const TRIGGERS: [char; 10] = ['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠'];
    match cell.chars().next() {
        Some(c) if TRIGGERS.contains(&c) => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn write_row<const N: usize>(
    w: &mut csv::Writer<Vec<u8>>,
    cells: [&str; N],
) -> Result<(), ExportError> {
    w.write_record(cells.iter().map(|c| defuse(c).into_owned()))?;
    Ok(())
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<String, ExportError> {
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::Csv(e.into_error().into()))?;
    Ok(String::from_utf8(bytes)?)
}

pub fn organisations_csv(
    items: &[CanonicalOrganisation],
    attributions: &Attributions,
) -> Result<String, ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "name",
        "alternate_names",
        "description",
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
        "partners",
        "updated_at",
        "licences",
    ])?;
    for o in items {
        let g = &o.organisation;
        write_row(
            &mut w,
            [
                o.id.as_str(),
                &g.name,
                &join(&g.alternate_names),
                opt(&g.description),
                opt(&g.identifiers.charity_number),
                opt(&g.identifiers.company_number),
                opt(&g.identifiers.org_id),
                opt(&g.website),
                opt(&g.email),
                opt(&g.phone),
                opt(&g.address.street),
                opt(&g.address.locality),
                opt(&g.address.region),
                opt(&g.address.postcode),
                &join(&g.categories),
                &provenance(&o.partners),
                &o.updated_at.to_rfc3339(),
                &licences(&o.partners, attributions),
            ],
        )?;
    }
    finish(w)
}

pub fn events_csv(
    items: &[CanonicalEvent],
    attributions: &Attributions,
) -> Result<String, ExportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "id",
        "title",
        "description",
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
        "partners",
        "updated_at",
        "licences",
    ])?;
    for e in items {
        let v = &e.event;
        write_row(
            &mut w,
            [
                e.id.as_str(),
                &v.title,
                opt(&v.description),
                &v.start.to_rfc3339(),
                &v.end.map(|t| t.to_rfc3339()).unwrap_or_default(),
                opt(&v.timezone),
                if v.all_day { "true" } else { "false" },
                &v.recurrence
                    .as_ref()
                    .map(|r| r.join("\n"))
                    .unwrap_or_default(),
                match v.status {
                    crate::model::EventStatus::Scheduled => "scheduled",
                    crate::model::EventStatus::Cancelled => "cancelled",
                },
                opt(&v.location.name),
                opt(&v.location.address),
                opt(&v.location.postcode),
                if v.location.online { "true" } else { "false" },
                opt(&v.location.url),
                opt(&v.url),
                opt(&v.booking_url),
                opt(&v.organiser.name),
                &join(&v.categories),
                &provenance(&e.partners),
                &e.updated_at.to_rfc3339(),
                &licences(&e.partners, attributions),
            ],
        )?;
    }
    finish(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Organisation, PartnerRef};

    #[test]
    fn csv_quotes_commas_and_lists_provenance() {
        let org = CanonicalOrganisation {
            id: "org_1".into(),
            organisation: Organisation {
                name: "Age UK Cheshire East, Macclesfield".into(),
                categories: vec!["Older people".into(), "Advice".into()],
                ..Default::default()
            },
            partners: vec![PartnerRef {
                partner: "cvs-cheshire-east".into(),
                record_id: "m12".into(),
                url: None,
            }],
            field_sources: Default::default(),
            updated_at: chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00+00:00").unwrap(),
        };
        let att = Attributions::new(vec![crate::licence::Attribution {
            partner: "cvs-cheshire-east".into(),
            name: "Cheshire East CVS".into(),
            website: None,
            licence: crate::licence::Licence::parse("OGL-UK-3.0").ok(),
        }]);
        let text = organisations_csv(&[org], &att).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(&row[1], "Age UK Cheshire East, Macclesfield");
        assert_eq!(&row[14], "Older people;Advice");
        assert_eq!(&row[15], "cvs-cheshire-east:m12");
        assert_eq!(&row[17], "cvs-cheshire-east:OGL-UK-3.0");
    }

    #[test]
    fn formula_cells_are_defused() {
        for bad in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "＝1",
        ] {
            assert!(defuse(bad).starts_with('\''), "{bad:?}");
        }
        for ok in ["Hull CVS", "01482 123", "a=b", ""] {
            assert_eq!(defuse(ok), ok);
        }
    }
}
