//! What one partner feed is, as the adapters and the fetcher need it: its format, where its bytes
//! come from, and the limits a fetch obeys. The config builds these from TOML; ingest owns the
//! shapes, so nothing in ingest reaches up into the config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::RecordKind;

/// Where a feed's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Http(url::Url),
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http(u) => write!(f, "{u}"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The input formats tributary reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    TributaryJson,
    Csv,
    Ical,
    /// Open Referral UK / HSDS API (`/organizations`, `/services`).
    Oruk,
    /// OpenActive Realtime Paged Data Exchange.
    Rpde,
    /// RSS 2.0 or Atom posts.
    Rss,
    /// HTML pages carrying schema.org JSON-LD.
    Jsonld,
    /// WordPress "The Events Calendar" REST API.
    WpEvents,
}

impl Format {
    pub const ALL: &'static [(&'static str, Format)] = &[
        ("tributary-json", Format::TributaryJson),
        ("csv", Format::Csv),
        ("ical", Format::Ical),
        ("oruk", Format::Oruk),
        ("rpde", Format::Rpde),
        ("rss", Format::Rss),
        ("jsonld", Format::Jsonld),
        ("wp-events", Format::WpEvents),
    ];

    /// The record kinds a format can carry.
    pub fn kinds(self) -> &'static [RecordKind] {
        use RecordKind::{Events, Organisations};
        match self {
            Format::TributaryJson | Format::Csv | Format::Jsonld => &[Organisations, Events],
            Format::Oruk => &[Organisations],
            Format::Ical | Format::Rpde | Format::Rss | Format::WpEvents => &[Events],
        }
    }

    /// Whether the format builds page URLs from an API root, which a local file cannot serve.
    pub fn needs_http(self) -> bool {
        matches!(self, Format::Oruk | Format::WpEvents)
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, f)| *f)
    }

    pub fn as_str(self) -> &'static str {
        Format::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(name, _)| *name)
            .unwrap_or("unknown")
    }
}

#[derive(Debug, Clone)]
pub struct Feed {
    /// Stable key of this feed within its partner (`events-0`, …): the store keys validators and
    /// records by it, so reordering unrelated feeds does not orphan them.
    pub key: String,
    pub kind: RecordKind,
    pub format: Format,
    pub source: Source,
    pub rate_limit_per_minute: u32,
    pub timeout: Duration,
    pub max_body_bytes: u64,
    pub retries: u32,
    pub headers: Vec<(String, String)>,
    /// `csv` only: canonical column name → the partner's own header for it.
    pub columns: BTreeMap<String, String>,
    /// Most pages one sync follows in a paged format (a loop guard).
    pub max_pages: u32,
    /// Most bytes one sync reads from this feed, all pages together.
    pub max_harvest_bytes: u64,
}
