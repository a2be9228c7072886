//! (stub, being written)
use crate::model::SourceRecord;

/// Cleans one record into canonical form, or says why it cannot be accepted.
pub fn record(rec: SourceRecord) -> Result<SourceRecord, String> {
    Ok(rec)
}

// TEMPORARY stubs (added by the integrator so the crate compiles while this file is being written):
// replace each with the real implementation, same signature.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}
pub fn title_key(title: &str) -> String {
    title.to_lowercase()
}
pub fn charity_number(s: &str) -> Option<String> {
    Some(s.trim().to_string())
}
pub fn company_number(s: &str) -> Option<String> {
    Some(s.trim().to_string())
}
pub fn postcode(s: &str) -> Option<String> {
    Some(s.trim().to_uppercase())
}
