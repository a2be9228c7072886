//! Full-text search over live merged entities: one SQLite FTS5 table per kind (names, other
//! names, identifiers, places), written by the single writer beside the entity rows, and the
//! translation of a user's `q` into a safe FTS5 query (every term quoted, the last a prefix).

use rusqlite::{params, Transaction};

use super::Result;
use crate::model::{Event, Organisation, RecordKind};

/// The FTS5 table of a kind. Both tables have the columns `name, other_names, identifiers,
/// places` and share the entity row's rowid (created by migration; see `migrations.rs`).
pub fn table(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Organisations => "organisations_search",
        RecordKind::Events => "events_search",
    }
}

/// bm25 weights of the columns in order: a word in the name counts for most.
pub const WEIGHTS: &str = "10.0, 6.0, 3.0, 1.0";

/// Most terms of a query that are searched; the rest are ignored, so no query costs more than
/// this many index lookups.
pub const MAX_TERMS: usize = 12;

/// What one entity contributes to its kind's search table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRow {
    pub name: String,
    pub other_names: String,
    pub identifiers: String,
    pub places: String,
}

/// Spellings of a postcode a person types: as stored (`HU1 1AA`) and without its space.
fn postcode_forms(pc: Option<&str>, out: &mut Vec<String>) {
    if let Some(pc) = pc {
        out.push(pc.to_string());
        let compact: String = pc.chars().filter(|c| !c.is_whitespace()).collect();
        if compact != pc {
            out.push(compact);
        }
    }
}

/// An organisation's identifiers as a person may type them: the bare number, the number
/// without the zero padding Companies House adds, and the org-id.guide form with its scheme.
fn identifier_forms(o: &Organisation) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = o.identifiers.charity_number.as_deref() {
        let scheme = if c.starts_with("SC") {
            "GB-SC"
        } else if c.starts_with("NIC") || c.starts_with("XR") {
            "GB-NIC"
        } else {
            "GB-CHC"
        };
        out.push(c.to_string());
        out.push(format!("{scheme}-{c}"));
    }
    if let Some(n) = o.identifiers.company_number.as_deref() {
        out.push(n.to_string());
        out.push(format!("GB-COH-{n}"));
        let unpadded = n.trim_start_matches('0');
        if unpadded != n && !unpadded.is_empty() {
            out.push(unpadded.to_string());
            out.push(format!("GB-COH-{unpadded}"));
        }
    }
    if let Some(id) = o.identifiers.org_id.as_deref() {
        out.push(id.to_string());
    }
    out
}

pub fn organisation_row(o: &Organisation) -> SearchRow {
    let mut places = Vec::new();
    places.extend(o.address.locality.clone());
    postcode_forms(o.address.postcode.as_deref(), &mut places);
    SearchRow {
        name: o.name.clone(),
        other_names: o.alternate_names.join(" \u{2022} "),
        identifiers: identifier_forms(o).join(" "),
        places: places.join(" "),
    }
}

pub fn event_row(e: &Event) -> SearchRow {
    let mut places: Vec<String> = [e.location.name.as_ref(), e.location.address.as_ref()]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    postcode_forms(e.location.postcode.as_deref(), &mut places);
    SearchRow {
        name: e.title.clone(),
        other_names: e.organiser.name.clone().unwrap_or_default(),
        identifiers: String::new(),
        places: places.join(" "),
    }
}

/// Writes the search row of the entity at `rowid`; `replace` when it may already have one.
pub fn put(
    tx: &Transaction,
    kind: RecordKind,
    rowid: i64,
    row: &SearchRow,
    replace: bool,
) -> Result<()> {
    let t = table(kind);
    if replace {
        tx.prepare_cached(&format!("DELETE FROM {t} WHERE rowid = ?1"))?
            .execute(params![rowid])?;
    }
    tx.prepare_cached(&format!(
        "INSERT INTO {t} (rowid, name, other_names, identifiers, places) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?
    .execute(params![
        rowid,
        row.name,
        row.other_names,
        row.identifiers,
        row.places
    ])?;
    Ok(())
}

/// Marks an entity merged away or withdrawn. An organisation leaves search. An event keeps its
/// row: calendars filtered by `q` still carry it as CANCELLED for a while, so subscribers drop
/// it (event listings read live rows only).
pub fn retire(tx: &Transaction, kind: RecordKind, entity_id: &str) -> Result<()> {
    if kind == RecordKind::Events {
        return Ok(());
    }
    let t = table(kind);
    tx.prepare_cached(&format!(
        "DELETE FROM {t} WHERE rowid = (SELECT rowid FROM entities WHERE id = ?1)"
    ))?
    .execute(params![entity_id])?;
    Ok(())
}

/// A user's query as FTS5 expressions. Every term is a quoted string, so nothing the user types
/// (`"`, `*`, `AND`, `NEAR(`, `col:`) is read as query syntax; FTS5 then splits each term with
/// the table's own tokenizer (case and accents folded), so `GB-CHC-1234567` is the phrase
/// "gb chc 1234567" and matches however the identifier was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Every term, anywhere in the entity.
    pub all: String,
    /// Every term in the name or other names.
    pub names: String,
    /// Every term, but not all of them in the names.
    pub elsewhere: String,
}

impl Query {
    /// `None` when `q` has no word to search for (only punctuation): it matches nothing.
    pub fn parse(q: &str) -> Option<Query> {
        let terms: Vec<&str> = q
            .split_whitespace()
            .filter(|t| t.chars().any(char::is_alphanumeric))
            .take(MAX_TERMS)
            .collect();
        let last = terms.len().checked_sub(1)?;
        let all = terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let quoted = format!("\"{}\"", t.replace('"', "\"\""));
                // The last word may be still being typed: it matches as a prefix, once it
                // has two letters (one letter would read most of the index for any query).
                if i == last && t.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
                    quoted + "*"
                } else {
                    quoted
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let names = format!("{{name other_names}} : ({all})");
        Some(Query {
            elsewhere: format!("({all}) NOT ({names})"),
            names,
            all,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_is_quoted_and_the_last_is_a_prefix() {
        let q = Query::parse(r#"Food "bank" NEAR( AND*"#).unwrap();
        assert_eq!(q.all, r#""Food" """bank""" "NEAR(" "AND*"*"#);
        assert_eq!(q.names, format!("{{name other_names}} : ({})", q.all));
    }

    #[test]
    fn punctuation_alone_searches_nothing() {
        assert_eq!(Query::parse(r#"" * ( : -"#), None);
        assert_eq!(Query::parse("   "), None);
        assert_eq!(Query::parse("* club").unwrap().all, r#""club"*"#);
        assert_eq!(Query::parse("age uk h").unwrap().all, r#""age" "uk" "h""#);
    }

    #[test]
    fn a_long_query_is_cut_to_its_first_terms() {
        let q = Query::parse(&"word ".repeat(1000)).unwrap();
        assert_eq!(q.all.matches("word").count(), MAX_TERMS);
    }

    #[test]
    fn identifiers_are_indexed_as_people_type_them() {
        let mut o = Organisation {
            name: "Hull Food Bank".into(),
            ..Default::default()
        };
        o.identifiers.charity_number = Some("SC012345".into());
        o.identifiers.company_number = Some("01234567".into());
        let ids = organisation_row(&o).identifiers;
        for form in [
            "SC012345",
            "GB-SC-SC012345",
            "01234567",
            "1234567",
            "GB-COH-1234567",
        ] {
            assert!(ids.split(' ').any(|t| t == form), "{form} in {ids}");
        }
    }
}
