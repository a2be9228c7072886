//! Ingest: fetch a feed's pages (`fetch`) and turn them into records with one adapter per input
//! format. A [`Harvest`] holds an adapter's state across the pages of one feed: single-document
//! formats read one page; API formats name the pages to fetch next. A whole-feed problem is a
//! [`ParseError`] that fails the partner's sync; a single bad record is a [`Rejection`].

pub mod csv;
pub mod dates_in_text;
pub mod feed_spec;
pub mod feed_xml;
pub mod fetch;
pub mod geo;
pub mod html;
pub mod ical;
pub mod jsonld;
pub mod microdata_rdfa;
pub mod oruk;
pub mod rpde;
pub mod rss;
pub mod schema_org;
pub mod times;
pub mod tributary_json;
pub mod truncation;
pub mod wp_events;

/// Runs `f` where a tokio worker would, on a thread with a 2 MiB stack, so a test of deeply
/// nested input proves the parser's depth bound rather than the test thread's larger stack.
#[cfg(test)]
pub(crate) fn on_worker_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("a test thread starts")
        .join()
        .expect("the parser survived on a 2 MiB stack")
}

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{ParsedFeed, RecordKind, Rejection, SourceRecord};
use feed_spec::Format;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not a feed of the configured format at all.
    #[error("not a valid {format} feed: {reason}")]
    Invalid {
        format: &'static str,
        reason: String,
    },
    /// The body was cut short in transit: applying it would delete what the cut hid.
    #[error("the {format} feed is cut short: {reason}; nothing applied")]
    Truncated {
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

/// Parses one single-document feed's bytes with the adapter for `format`.
pub fn parse(format: Format, kind: RecordKind, bytes: &[u8]) -> Result<ParsedFeed, ParseError> {
    let mut h = Harvest::new(format, kind, BTreeMap::new());
    h.add_page("", PageRole::Listing, bytes)?;
    Ok(h.finish().parsed)
}

/// What a page is to its feed, which decides how a failure to fetch it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRole {
    /// A page of the feed itself: failing to fetch it fails the sync.
    Listing,
    /// A listing endpoint the partner's API may not offer: "not found" means none.
    OptionalListing,
    /// A detail page a listing links to: failing to fetch it rejects that item only.
    Item,
}

/// A page to fetch: a link as the partner wrote it (absolute or relative to the page it was on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub link: String,
    pub role: PageRole,
}

impl PageRequest {
    fn listing(link: impl Into<String>) -> PageRequest {
        PageRequest {
            link: link.into(),
            role: PageRole::Listing,
        }
    }
}

/// One page of a JSON API, or the error that fails the feed, naming the page.
pub(crate) fn json_page(
    format: &'static str,
    url: &str,
    bytes: &[u8],
) -> Result<Value, ParseError> {
    serde_json::from_slice(bytes).map_err(|e| ParseError::Invalid {
        format,
        reason: format!("{url}: {e}"),
    })
}

/// A trimmed, non-blank string field of a JSON object.
pub(crate) fn json_str(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Everything one feed's harvest yielded.
#[derive(Debug, Default)]
pub struct Harvested {
    pub parsed: ParsedFeed,
    /// Partner ids the feed says are deleted (RPDE tombstones).
    pub deleted: Vec<String>,
    /// Whether `parsed` is the whole feed (records missing from it are deleted) or only changes.
    pub complete: bool,
    /// Where the next incremental harvest continues (RPDE), if the format has cursors.
    pub cursor: Option<String>,
}

enum State {
    Single(Option<ParsedFeed>),
    Oruk(oruk::Harvest),
    Rpde(rpde::Harvest),
    Jsonld(jsonld::Harvest),
    WpEvents(wp_events::Harvest),
}

/// One feed's adapter state across its pages.
pub struct Harvest {
    format: Format,
    kind: RecordKind,
    columns: BTreeMap<String, String>,
    state: State,
}

impl Harvested {
    /// A whole feed's records: anything the partner listed before and not now is deleted.
    pub(crate) fn whole(records: Vec<SourceRecord>, rejections: Vec<Rejection>) -> Harvested {
        Harvested {
            parsed: ParsedFeed {
                records,
                rejections,
                warnings: Vec::new(),
            },
            complete: true,
            ..Harvested::default()
        }
    }
}

impl Harvest {
    pub fn new(format: Format, kind: RecordKind, columns: BTreeMap<String, String>) -> Harvest {
        let state = match format {
            Format::Oruk => State::Oruk(oruk::Harvest::default()),
            Format::Rpde => State::Rpde(rpde::Harvest::default()),
            Format::Jsonld => State::Jsonld(jsonld::Harvest::new(kind)),
            Format::WpEvents => State::WpEvents(wp_events::Harvest::default()),
            Format::TributaryJson | Format::Csv | Format::Ical | Format::Rss => State::Single(None),
        };
        Harvest {
            format,
            kind,
            columns,
            state,
        }
    }

    /// Whether one conditional request tells if the whole feed changed. Paged feeds cannot say:
    /// an unchanged first page proves nothing about the rest.
    pub fn conditional(&self) -> bool {
        matches!(self.state, State::Single(_))
    }

    /// The first pages to fetch, given the configured source; `cursor` resumes an incremental feed.
    pub fn start(&mut self, source: &str, cursor: Option<&str>) -> Vec<PageRequest> {
        match &mut self.state {
            State::Oruk(_) => oruk::start(source),
            State::Rpde(h) => {
                h.incremental = cursor.is_some();
                vec![PageRequest::listing(cursor.unwrap_or(source))]
            }
            State::Single(_) | State::Jsonld(_) | State::WpEvents(_) => {
                vec![PageRequest::listing(source)]
            }
        }
    }

    /// Where an RPDE feed's sessions find series published outside it (other formats have none).
    pub fn set_series_lookup(&mut self, lookup: rpde::SeriesLookup) {
        if let State::Rpde(h) = &mut self.state {
            h.set_series_lookup(lookup);
        }
    }

    /// The OpenActive series an RPDE harvest has seen, by every reference to them.
    pub fn series(&self) -> Option<&std::collections::HashMap<String, serde_json::Value>> {
        match &self.state {
            State::Rpde(h) => Some(h.series()),
            _ => None,
        }
    }

    /// Reads one fetched page (`url` is where it came from) and returns the pages it links to.
    pub fn add_page(
        &mut self,
        url: &str,
        role: PageRole,
        bytes: &[u8],
    ) -> Result<Vec<PageRequest>, ParseError> {
        let (kind, format) = (self.kind, self.format);
        match &mut self.state {
            State::Single(slot) => {
                if let Some(reason) = truncation::check(format, bytes) {
                    return Err(ParseError::Truncated {
                        format: format.as_str(),
                        reason,
                    });
                }
                let parsed = match format {
                    Format::TributaryJson => tributary_json::parse(kind, bytes)?,
                    Format::Csv => csv::parse_mapped(kind, bytes, &self.columns)?,
                    Format::Ical => ical::parse(bytes)?,
                    Format::Rss => rss::parse(bytes)?,
                    _ => unreachable_format(format)?,
                };
                *slot = Some(parsed);
                Ok(Vec::new())
            }
            State::Oruk(h) => h.add_page(url, bytes),
            State::Rpde(h) => h.add_page(url, bytes),
            State::Jsonld(h) => h.add_page(url, role, bytes),
            State::WpEvents(h) => h.add_page(url, bytes),
        }
    }

    /// Records that an item page could not be fetched, so the item is a rejection, not a gap.
    pub fn item_failed(&mut self, link: &str, reason: &str) {
        if let State::Jsonld(h) = &mut self.state {
            h.rejections.push(Rejection {
                source_id: Some(link.to_string()),
                reason: format!("item page {link}: {reason}"),
            });
        }
    }

    pub fn finish(self) -> Harvested {
        match self.state {
            State::Single(parsed) => {
                let parsed = parsed.unwrap_or_default();
                Harvested {
                    parsed,
                    complete: true,
                    ..Harvested::default()
                }
            }
            State::Oruk(h) => h.finish(),
            State::Rpde(h) => h.finish(),
            State::Jsonld(h) => h.finish(),
            State::WpEvents(h) => h.finish(),
        }
    }
}

fn unreachable_format(format: Format) -> Result<ParsedFeed, ParseError> {
    Err(ParseError::Invalid {
        format: format.as_str(),
        reason: "internal: this format is paged, not a single document".into(),
    })
}

/// Collects records by the partner's id, a later page's copy replacing an earlier one's (an item
/// page is fuller than the listing that linked it; an RPDE update supersedes the one before).
#[derive(Debug, Default)]
pub(crate) struct Collected {
    order: Vec<String>,
    by_id: std::collections::HashMap<String, SourceRecord>,
}

impl Collected {
    pub(crate) fn put(&mut self, rec: SourceRecord) {
        if !self.by_id.contains_key(&rec.source_id) {
            self.order.push(rec.source_id.clone());
        }
        self.by_id.insert(rec.source_id.clone(), rec);
    }

    pub(crate) fn into_records(mut self) -> Vec<SourceRecord> {
        self.order
            .iter()
            .filter_map(|id| self.by_id.remove(id))
            .collect()
    }
}

/// Sets (or adds) one query parameter of an absolute URL; `None` if `url` is not absolute.
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &kept {
            q.append_pair(k, v);
        }
        q.append_pair(key, value);
    }
    Some(u.to_string())
}

/// The page after `url` in an API numbered by `page`, while there are `total` pages.
pub(crate) fn next_numbered_page(url: &str, total: u64) -> Option<PageRequest> {
    let current = query_number(url, "page").unwrap_or(1);
    (current < total)
        .then(|| with_query(url, "page", &(current + 1).to_string()))
        .flatten()
        .map(PageRequest::listing)
}

/// A query parameter of a URL as a number (`page=3`).
pub(crate) fn query_number(url: &str, key: &str) -> Option<u64> {
    let u = url::Url::parse(url).ok()?;
    let v = u.query_pairs().find(|(k, _)| k == key)?.1.into_owned();
    v.parse().ok()
}
