//! Publish: pure renderers from canonical records to the bytes consumers read — JSON pages and the
//! iCalendar feed. They take records and options and return bytes; the server decides what to query.

pub mod ical;
pub mod json;
