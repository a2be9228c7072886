//! (stub, being written)
use super::ParseError;
use crate::model::{ParsedFeed, RecordKind};

pub fn parse(_kind: RecordKind, _bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    Ok(ParsedFeed::default())
}
