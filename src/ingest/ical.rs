//! (stub, being written)
use super::ParseError;
use crate::model::ParsedFeed;

pub fn parse(_bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    Ok(ParsedFeed::default())
}
