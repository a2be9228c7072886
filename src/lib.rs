//! tributary: federates voluntary-sector member directories and event listings into one merged,
//! deduplicated SQLite store and republishes it as a JSON API, change feeds and an iCalendar feed.
//! Data flows forward: ingest → normalise → store → dedupe → publish.

pub mod config;
pub mod dedupe;
pub mod ingest;
pub mod licence;
pub mod metrics;
pub mod model;
pub mod normalise;
pub mod postcode;
pub mod process_memory;
pub mod publish;
pub mod recurrence;
pub mod redact;
pub mod resolve;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod sync;
pub mod webhooks;
