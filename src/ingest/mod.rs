//! Ingest: fetch a feed's bytes (`fetch`) and turn them into [`ParsedFeed`]s with one adapter per
//! input format. A whole-feed problem (not JSON, not a calendar) is a [`ParseError`] that fails the
//! partner's sync; a single bad record is a [`crate::model::Rejection`] and the rest still land.

pub mod csv;
pub mod fetch;
pub mod ical;
pub mod tributary_json;

use crate::config::Format;
use crate::model::{ParsedFeed, RecordKind};

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not a feed of the configured format at all.
    #[error("not a valid {format} feed: {reason}")]
    Invalid {
        format: &'static str,
        reason: String,
    },
    /// The format cannot carry the configured record kind.
    #[error("format {format} cannot carry {kind}")]
    Unsupported {
        format: &'static str,
        kind: &'static str,
    },
}

/// Parses one feed's bytes with the adapter for `format`, expecting records of `kind`.
pub fn parse(format: Format, kind: RecordKind, bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    match format {
        Format::TributaryJson => tributary_json::parse(kind, bytes),
        Format::Csv => csv::parse(kind, bytes),
        Format::Ical => match kind {
            RecordKind::Events => ical::parse(bytes),
            RecordKind::Organisations => Err(ParseError::Unsupported {
                format: "ical",
                kind: kind.as_str(),
            }),
        },
    }
}
