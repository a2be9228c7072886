//! (stub, being written)
use crate::model::SourceRecord;

/// Cleans one record into canonical form, or says why it cannot be accepted.
pub fn record(rec: SourceRecord) -> Result<SourceRecord, String> {
    Ok(rec)
}
