//! Publish: pure renderers from canonical records to the bytes consumers read — JSON pages and the
//! iCalendar feed. They take records and options and return bytes; the server decides what to query.

pub mod embed;
pub mod export;
pub mod ical;
pub mod json;
pub mod oruk;
pub mod rpde;

/// Name and description of the merged calendar, wherever it is rendered.
pub const CALENDAR_NAME: &str = "tributary: merged events";
pub const CALENDAR_DESCRIPTION: &str =
    "Events merged by tributary from local voluntary-sector partners";
/// The right-hand side of every event UID (`evt_…@tributary`): fixed, so UIDs never change when
/// the public host name does.
pub const UID_DOMAIN: &str = "tributary";
