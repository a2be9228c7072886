//! One partner's sync, start to commit: fetch every feed (conditionally), parse and normalise, then in
//! one store transaction upsert records, soft-delete what full feeds dropped, re-resolve entities and
//! close the run. Any failure leaves the store exactly as it was, with the reason in the run row.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Feed, Partner, Source};
use crate::dedupe;
use crate::ingest::{self, fetch};
use crate::model::{ParsedFeed, RecordKind, Rejection};
use crate::normalise;
use crate::store::runs::{RunCounts, StoredRejection};
use crate::store::{self, records, runs, Store, StoreError};

pub mod preview;
pub mod progress;

pub use progress::{Progress, Stage};

/// What the daemon needs to sync any partner.
pub struct SyncContext {
    pub store: Arc<Store>,
    pub fetcher: Arc<fetch::Fetcher>,
    pub dedupe: dedupe::Settings,
    /// Syncs started and not yet finished. While others are in flight, a sync commits its records
    /// and leaves entity resolution to the last one (see [`resolve_dirty`]).
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Turns true when the daemon is stopping: a sync still fetching gives up, nothing applied.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Ignore cache validators and re-read every feed.
    pub full: bool,
    /// Why the sync runs: `schedule`, `startup`, `cli`, `admin`.
    pub trigger: String,
    /// Apply deletions even past the partner's `max_delete_share`.
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Something was fetched and applied.
    Ok,
    /// Every feed answered "not modified".
    Unchanged,
    /// Not applied: it would have deleted more than the partner's `max_delete_share`.
    Held,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unchanged => "unchanged",
            Outcome::Held => "held",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub partner: String,
    pub run_id: Option<i64>,
    pub outcome: Outcome,
    pub counts: RunCounts,
    pub error: Option<String>,
    #[serde(serialize_with = "ser_secs")]
    pub duration: Duration,
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    // The fetch error already names the URL or path.
    #[error("feed {feed}: {error}")]
    Fetch {
        feed: String,
        source_desc: String,
        error: fetch::FetchError,
    },
    #[error("feed {feed} ({source_desc}): {error}")]
    Parse {
        feed: String,
        source_desc: String,
        error: ingest::ParseError,
    },
    #[error("held, nothing applied: feed {feed} would delete {would_delete} of {live} records (more than {share_pct}% allowed by max_delete_share, compared with {compared}); check the partner's feed, then resync with --force to apply")]
    MassDeletion {
        feed: String,
        would_delete: usize,
        live: usize,
        share_pct: f64,
        /// What the loss was measured against: the previous sync, or the feed's high-water mark.
        compared: String,
    },
    #[error("stopped: the daemon is shutting down; nothing applied")]
    Stopped,
    #[error("feed {feed}: cannot follow the link {link:?}: {reason}")]
    Link {
        feed: String,
        link: String,
        reason: String,
    },
    #[error(
        "feed {feed}: more than {max_pages} pages (max_pages); is the partner's paging looping?"
    )]
    TooManyPages { feed: String, max_pages: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal task failed: {0}")]
    Task(String),
}

/// A feed's fetched-and-parsed content, ready to apply.
struct FeedData {
    feed: Feed,
    /// `None` when the partner said "not modified".
    parsed: Option<Gathered>,
    rejections: Vec<StoredRejection>,
    /// Records that landed with a caveat: kept in the run beside the rejections, never counted as them.
    warnings: Vec<StoredRejection>,
}

/// What one feed's pages yielded, normalised.
struct Gathered {
    records: Vec<records::Encoded>,
    validators: fetch::Validators,
    /// Partner ids the feed said are deleted (incremental feeds).
    deleted: Vec<String>,
    /// Whether `records` is the whole feed, so records missing from it are deleted.
    complete: bool,
    /// Where an incremental feed resumes next time.
    cursor: Option<String>,
}

/// Opens a run row for a partner's sync (result `running`), so callers get its id at once.
pub async fn begin_run(
    ctx: &SyncContext,
    partner: &Partner,
    trigger: &str,
) -> Result<i64, SyncError> {
    let store = ctx.store.clone();
    let (pid, trigger) = (partner.id.to_string(), trigger.to_string());
    blocking(move || {
        let conn = store.writer();
        runs::begin(&conn, &pid, &trigger, &store::now_text()).map_err(SyncError::from)
    })
    .await
}

/// Runs one partner's sync and records it as a run. Never panics on partner data; a failure is a
/// report with `Outcome::Failed` and the reason.
pub async fn sync_partner(ctx: &SyncContext, partner: &Partner, opts: &SyncOptions) -> SyncReport {
    match begin_run(ctx, partner, &opts.trigger).await {
        Ok(run_id) => execute(ctx, partner, opts, run_id, &Arc::default()).await,
        Err(e) => {
            tracing::error!(partner = %partner.id, error = %e, "cannot start sync run");
            SyncReport {
                partner: partner.id.to_string(),
                run_id: None,
                outcome: Outcome::Failed,
                counts: RunCounts::default(),
                error: Some(e.to_string()),
                duration: Duration::ZERO,
            }
        }
    }
}

/// Runs the sync for a run opened with [`begin_run`] and closes it, reporting how far it has got
/// in `progress` as it goes.
pub async fn execute(
    ctx: &SyncContext,
    partner: &Partner,
    opts: &SyncOptions,
    run_id: i64,
    progress: &Arc<Progress>,
) -> SyncReport {
    let started = Instant::now();
    let pid = partner.id.to_string();
    tracing::info!(partner = %pid, run = run_id, trigger = %opts.trigger, full = opts.full, "sync starting");

    progress.set_stage(Stage::Fetching);
    let harvesting = Harvesting {
        ctx,
        partner,
        opts,
        series: SeenSeries::default(),
        progress,
        remember: true,
    };
    let mut stop = ctx.stop.clone();
    let gathered = tokio::select! {
        r = gather(&harvesting) => r,
        Ok(_) = stop.wait_for(|s| *s) => Err(SyncError::Stopped),
    };
    let result = match gathered {
        Ok(data) => {
            let store = ctx.store.clone();
            let partner = partner.clone();
            let settings = ctx.dedupe;
            let plan = RunPlan {
                id: run_id,
                force: opts.force,
                defer: ctx.in_flight.load(std::sync::atomic::Ordering::SeqCst) > 1,
                progress: progress.clone(),
            };
            blocking(move || apply(&store, &partner, &plan, data, &settings)).await
        }
        Err(e) => Err(e),
    };
    progress.set_stage(Stage::Finished);
    let (outcome, counts, error) = match result {
        Ok((outcome, counts)) => (outcome, counts, None),
        Err(e) => {
            let outcome = match e {
                SyncError::MassDeletion { .. } => Outcome::Held,
                _ => Outcome::Failed,
            };
            let msg = e.to_string();
            let store = ctx.store.clone();
            let m = msg.clone();
            let closed = blocking(move || {
                let conn = store.writer();
                runs::finish(
                    &conn,
                    run_id,
                    outcome.as_str(),
                    &RunCounts::default(),
                    Some(&m),
                    &store::now_text(),
                )
                .map_err(SyncError::from)
            })
            .await;
            if let Err(e2) = closed {
                tracing::error!(partner = %pid, error = %e2, "cannot record failed run");
            }
            (outcome, RunCounts::default(), Some(msg))
        }
    };
    let duration = started.elapsed();
    match &error {
        None => tracing::info!(
            partner = %pid, run = run_id, outcome = outcome.as_str(),
            inserted = counts.inserted, updated = counts.updated, deleted = counts.deleted,
            rejected = counts.rejected, unchanged_feeds = counts.feeds_unchanged,
            secs = duration.as_secs_f64(), "sync finished"
        ),
        Some(e) => {
            tracing::warn!(partner = %pid, run = run_id, error = %crate::redact::secrets(e), "sync failed")
        }
    }
    SyncReport {
        partner: pid,
        run_id: Some(run_id),
        outcome,
        counts,
        error,
        duration,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Task(e.to_string()))?
}

/// What every feed of one partner's harvest is read with.
struct Harvesting<'a> {
    ctx: &'a SyncContext,
    partner: &'a Partner,
    opts: &'a SyncOptions,
    /// The RPDE series the partner's feeds have yielded so far.
    series: SeenSeries,
    progress: &'a Progress,
    /// Whether the series a feed yields are kept for later syncs (a preview keeps nothing).
    remember: bool,
}

/// Fetches and parses every feed; the first feed that cannot be read fails the whole sync, so a
/// partner is never half-updated.
async fn gather(h: &Harvesting<'_>) -> Result<Vec<FeedData>, SyncError> {
    let feeds = &h.partner.feeds;
    let mut out = Vec::with_capacity(feeds.len());
    let mut missed = Vec::with_capacity(feeds.len());
    for (i, feed) in feeds.iter().enumerate() {
        h.progress.feed_started(i + 1, feeds.len());
        let m = Missed::default();
        out.push(gather_feed(h, feed, &m).await?);
        missed.push(m);
    }
    // A session feed read before the feed of its series is read again once that is known, so the
    // order feeds are listed in does not decide whether sessions get their series.
    for (i, m) in missed.iter().enumerate() {
        let resolvable = match (h.series.lock(), m.lock()) {
            (Ok(seen), Ok(m)) => m.iter().any(|r| seen.contains_key(r)),
            _ => false,
        };
        if let (true, Some(feed), Some(slot)) = (resolvable, feeds.get(i), out.get_mut(i)) {
            h.progress.feed_started(i + 1, feeds.len());
            *slot = gather_feed(h, feed, &Missed::default()).await?;
        }
    }
    Ok(out)
}

/// OpenActive series the partner's feeds have yielded so far in this sync.
type SeenSeries = Arc<std::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>>;

/// Series references one feed's sessions could not resolve.
type Missed = Arc<std::sync::Mutex<HashSet<String>>>;

/// Where an RPDE feed's sessions find a series outside the feed: the partner's other feeds in
/// this sync, else what the store kept from earlier syncs; what neither has goes in `missed`.
fn series_lookup(
    store: Arc<Store>,
    partner: String,
    seen: SeenSeries,
    missed: Missed,
) -> ingest::rpde::SeriesLookup {
    Box::new(move |reference| {
        if let Some(v) = seen.lock().ok().and_then(|m| m.get(reference).cloned()) {
            return Some(v);
        }
        let found = store.reader().ok().and_then(|conn| {
            store::rpde_series::find(&conn, &partner, reference)
                .ok()
                .flatten()
        });
        if found.is_none() {
            if let Ok(mut m) = missed.lock() {
                m.insert(reference.to_string());
            }
        }
        found
    })
}

/// Fetches one feed's pages in order (following the links each page names, within the partner's
/// host or directory) and parses them with the feed's adapter.
async fn gather_feed(
    h: &Harvesting<'_>,
    feed: &Feed,
    missed: &Missed,
) -> Result<FeedData, SyncError> {
    let (ctx, partner) = (h.ctx, h.partner);
    let source_desc = feed.source.to_string();
    let (validators, cursor) = if h.opts.full {
        (fetch::Validators::default(), None)
    } else {
        stored_state(ctx, partner, feed, &source_desc).await?
    };
    let mut harvest = ingest::Harvest::new(feed.format, feed.kind, feed.columns.clone());
    harvest.set_series_lookup(series_lookup(
        ctx.store.clone(),
        partner.id.to_string(),
        h.series.clone(),
        missed.clone(),
    ));
    let mut crawl = Crawl::start(
        ctx,
        feed,
        source_desc,
        validators,
        cursor,
        &mut harvest,
        h.progress,
    )?;
    while let Some((src, role)) = crawl.next_page()? {
        let page = match crawl.fetch(&src, role, &mut harvest).await? {
            Page::Unchanged => return Ok(FeedData::unchanged(feed)),
            Page::Skipped => continue,
            Page::Read(page) => page,
        };
        harvest = crawl.read(harvest, page, role).await?;
    }
    let (harvested, prepared) = finish_harvest(h, feed, harvest).await?;
    h.progress
        .feed_read(prepared.records.len(), prepared.rejections.len());
    // The cursor is a link on the last page: store it resolved, so it works from anywhere.
    let cursor = crawl.resolved_cursor(harvested.cursor)?;
    Ok(FeedData {
        feed: feed.clone(),
        parsed: Some(Gathered {
            records: prepared.records,
            validators: crawl.kept_validators(),
            deleted: harvested.deleted,
            complete: harvested.complete,
            cursor,
        }),
        rejections: prepared.rejections,
        warnings: prepared.warnings,
    })
}

impl FeedData {
    /// A feed the partner said has not changed since the last sync.
    fn unchanged(feed: &Feed) -> FeedData {
        FeedData {
            feed: feed.clone(),
            parsed: None,
            rejections: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// The validators and cursor the last sync of `feed` stored; none when its source changed since.
async fn stored_state(
    ctx: &SyncContext,
    partner: &Partner,
    feed: &Feed,
    source_desc: &str,
) -> Result<(fetch::Validators, Option<String>), SyncError> {
    let store = ctx.store.clone();
    let (pid, key, src) = (
        partner.id.to_string(),
        feed.key.clone(),
        source_desc.to_string(),
    );
    blocking(move || {
        let conn = store.reader()?;
        Ok(match records::feed_state(&conn, &pid, &key)? {
            // A feed whose URL changed in config starts afresh.
            Some(s) if s.source == src => (
                fetch::Validators {
                    etag: s.etag,
                    last_modified: s.last_modified,
                },
                s.cursor,
            ),
            _ => (fetch::Validators::default(), None),
        })
    })
    .await
}

/// What fetching one page of a feed came to.
enum Page {
    /// The partner said "not modified" to the stored validators: the whole feed is unchanged.
    Unchanged,
    /// A page whose failure does not fail the feed (an item page, an optional listing).
    Skipped,
    Read(FetchedPage),
}

struct FetchedPage {
    body: Vec<u8>,
    validators: fetch::Validators,
    /// Where the body came from, after redirects.
    source: Source,
}

/// One feed's crawl in progress: the pages still to read and what the pages read so far left.
struct Crawl<'a> {
    ctx: &'a SyncContext,
    feed: &'a Feed,
    /// The feed's configured source, as errors and the stored state name it.
    source_desc: String,
    /// Whether the adapter reads the feed whole, so its first page may be asked "modified since?".
    conditional: bool,
    /// What the last sync stored, sent with that first page.
    validators: fetch::Validators,
    queue: std::collections::VecDeque<(Source, ingest::PageRole)>,
    visited: HashSet<String>,
    pages: u32,
    bytes: u64,
    first_validators: Option<fetch::Validators>,
    last_page: Option<Source>,
    /// Told of each page read.
    progress: &'a Progress,
}

impl<'a> Crawl<'a> {
    /// Queues the pages the adapter starts from (the feed itself, or where its cursor points).
    fn start(
        ctx: &'a SyncContext,
        feed: &'a Feed,
        source_desc: String,
        validators: fetch::Validators,
        cursor: Option<String>,
        harvest: &mut ingest::Harvest,
        progress: &'a Progress,
    ) -> Result<Crawl<'a>, SyncError> {
        let mut queue = std::collections::VecDeque::new();
        for start in harvest.start(&source_desc, cursor.as_deref()) {
            let src = if start.link == source_desc {
                feed.source.clone()
            } else {
                absolute(&start.link, &feed.source)
                    .map_err(|reason| link_error(feed, start.link.clone(), reason))?
            };
            queue.push_back((src, start.role));
        }
        let visited = queue.iter().map(|(s, _)| s.to_string()).collect();
        Ok(Crawl {
            ctx,
            feed,
            source_desc,
            conditional: harvest.conditional(),
            validators,
            queue,
            visited,
            pages: 0,
            bytes: 0,
            first_validators: None,
            last_page: None,
            progress,
        })
    }

    /// The next page to read, counted against the feed's `max_pages`.
    fn next_page(&mut self) -> Result<Option<(Source, ingest::PageRole)>, SyncError> {
        let Some(next) = self.queue.pop_front() else {
            return Ok(None);
        };
        self.pages += 1;
        if self.pages > self.feed.max_pages {
            return Err(SyncError::TooManyPages {
                feed: self.feed.key.clone(),
                max_pages: self.feed.max_pages,
            });
        }
        Ok(Some(next))
    }

    /// Fetches one page within what is left of the harvest's byte budget. An item page that
    /// fails is the item's rejection, an optional listing not found is none; any other failure
    /// fails the feed.
    async fn fetch(
        &self,
        src: &Source,
        role: ingest::PageRole,
        harvest: &mut ingest::Harvest,
    ) -> Result<Page, SyncError> {
        let use_validators = self.conditional && self.pages == 1;
        let v = if use_validators {
            self.validators.clone()
        } else {
            fetch::Validators::default()
        };
        let limit = fetch::PageLimit::within_harvest(self.feed, self.bytes);
        let fetched = self
            .ctx
            .fetcher
            .fetch_source(self.feed, src, &v, limit)
            .await;
        let (body, validators, final_url) = match fetched {
            Ok(fetch::FetchOutcome::NotModified) if use_validators => return Ok(Page::Unchanged),
            Ok(fetch::FetchOutcome::NotModified) => {
                // We sent no validators, so a 304 is the partner's mistake; the page is empty.
                (Vec::new(), fetch::Validators::default(), src.to_string())
            }
            Ok(fetch::FetchOutcome::Fetched {
                body,
                validators,
                final_url,
            }) => (body, validators, final_url),
            Err(error) => {
                return match role {
                    ingest::PageRole::Item => {
                        harvest.item_failed(&src.to_string(), &error.to_string());
                        Ok(Page::Skipped)
                    }
                    ingest::PageRole::OptionalListing if error.is_not_found() => {
                        tracing::debug!(feed = %self.feed.key, url = %src, "optional listing not offered");
                        Ok(Page::Skipped)
                    }
                    _ => Err(SyncError::Fetch {
                        feed: self.feed.key.clone(),
                        source_desc: self.source_desc.clone(),
                        error,
                    }),
                };
            }
        };
        let source = match src {
            Source::Http(_) => url::Url::parse(&final_url)
                .map(Source::Http)
                .unwrap_or(src.clone()),
            Source::File(_) => src.clone(),
        };
        Ok(Page::Read(FetchedPage {
            body,
            validators,
            source,
        }))
    }

    /// Hands a fetched page to the adapter (off the async threads) and queues the links it
    /// names that stay with the partner and were not queued before.
    async fn read(
        &mut self,
        mut harvest: ingest::Harvest,
        page: FetchedPage,
        role: ingest::PageRole,
    ) -> Result<ingest::Harvest, SyncError> {
        self.bytes += page.body.len() as u64;
        self.progress.page_read(page.body.len());
        if self.pages == 1 {
            self.first_validators = Some(page.validators);
        }
        let (page_src, body) = (page.source, page.body);
        let page_url = page_src.to_string();
        let (h, links) = tokio::task::spawn_blocking(move || {
            let links = harvest.add_page(&page_url, role, &body);
            (harvest, links)
        })
        .await
        .map_err(|e| SyncError::Task(e.to_string()))?;
        harvest = h;
        let links = links.map_err(|error| SyncError::Parse {
            feed: self.feed.key.clone(),
            source_desc: self.source_desc.clone(),
            error,
        })?;
        for link in links {
            match follow(&page_src, &link.link, &self.feed.source) {
                Ok(next) => {
                    if self.visited.insert(next.to_string()) {
                        self.queue.push_back((next, link.role));
                    }
                }
                Err(reason) if link.role == ingest::PageRole::Item => {
                    harvest.item_failed(&link.link, &reason);
                }
                Err(reason) => return Err(link_error(self.feed, link.link, reason)),
            }
        }
        self.last_page = Some(page_src);
        Ok(harvest)
    }

    /// The adapter's cursor resolved against the last page read.
    fn resolved_cursor(&self, cursor: Option<String>) -> Result<Option<String>, SyncError> {
        match (cursor, &self.last_page) {
            (Some(c), Some(page)) => follow(page, &c, &self.feed.source)
                .map(|next| Some(next.to_string()))
                .map_err(|reason| link_error(self.feed, c, reason)),
            _ => Ok(None),
        }
    }

    /// The validators to store: the first page's, for a feed asked "modified since?" next time.
    fn kept_validators(&mut self) -> fetch::Validators {
        if self.conditional {
            self.first_validators.take().unwrap_or_default()
        } else {
            fetch::Validators::default()
        }
    }
}

fn link_error(feed: &Feed, link: String, reason: String) -> SyncError {
    SyncError::Link {
        feed: feed.key.clone(),
        link,
        reason,
    }
}

/// Ends a feed's harvest off the async threads: the RPDE series it yielded are kept (for the
/// partner's other feeds now and its sessions in later syncs), and its records normalised.
async fn finish_harvest(
    h: &Harvesting<'_>,
    feed: &Feed,
    harvest: ingest::Harvest,
) -> Result<(ingest::Harvested, Prepared), SyncError> {
    let f = feed.clone();
    let (store, pid, seen) = (
        h.ctx.store.clone(),
        h.partner.id.to_string(),
        h.series.clone(),
    );
    let remember = h.remember;
    tokio::task::spawn_blocking(move || {
        if let Some(found) = harvest.series().filter(|s| !s.is_empty()) {
            if !remember {
                // A preview keeps nothing: the series serve this harvest's other feeds only.
            } else if let Err(e) = store::rpde_series::remember(&store.writer(), &pid, found) {
                tracing::warn!(partner = %pid, error = %e, "cannot keep the feed's series for later syncs");
            }
            if let Ok(mut m) = seen.lock() {
                m.extend(found.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let mut harvested = harvest.finish();
        let parsed = std::mem::take(&mut harvested.parsed);
        (harvested, prepare(&f, parsed))
    })
    .await
    .map_err(|e| SyncError::Task(e.to_string()))
}

/// A page link from an adapter's start list: an absolute URL, or a path for a local feed.
fn absolute(link: &str, origin: &Source) -> Result<Source, String> {
    match origin {
        Source::Http(_) => {
            let u = url::Url::parse(link).map_err(|e| format!("not a URL: {e}"))?;
            same_host(u, origin)
        }
        Source::File(_) => Ok(Source::File(std::path::PathBuf::from(link))),
    }
}

/// Resolves a link found on page `page` and checks it stays with the partner: the same host and
/// port for HTTP feeds; the feed's own directory, never a URL or `..`, for local ones.
fn follow(page: &Source, link: &str, origin: &Source) -> Result<Source, String> {
    match page {
        Source::Http(base) => {
            let u = base
                .join(link.trim())
                .map_err(|e| format!("not a URL: {e}"))?;
            same_host(u, origin)
        }
        Source::File(path) => {
            let link = link.trim();
            if link.contains("://")
                || link.starts_with('/')
                || link.split(['/', '\\']).any(|c| c == "..")
            {
                return Err("a local feed may only link to files beside it".into());
            }
            let link = link.split(['?', '#']).next().unwrap_or(link);
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            let target = dir.join(link);
            inside_folder(dir, &target)?;
            Ok(Source::File(target))
        }
    }
}

/// A linked local file must resolve (symlinks followed) to a file inside the feed's folder: a link
/// beside the feed may be a symlink to anywhere on the server.
fn inside_folder(dir: &std::path::Path, target: &std::path::Path) -> Result<(), String> {
    let Ok(real) = std::fs::canonicalize(target) else {
        // Not there: the fetch says so, naming the file.
        return Ok(());
    };
    let root = std::fs::canonicalize(dir).map_err(|e| format!("the feed's folder: {e}"))?;
    if real.starts_with(&root) {
        Ok(())
    } else {
        Err("a local feed may only link to files beside it (this one is a symlink to a file outside the feed's folder)".into())
    }
}

fn same_host(u: url::Url, origin: &Source) -> Result<Source, String> {
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!("{u} is not an http(s) URL"));
    }
    if let Source::Http(o) = origin {
        if u.host_str() != o.host_str() || u.port_or_known_default() != o.port_or_known_default() {
            return Err(format!(
                "{u} is on another host than the feed ({}); only the partner's own pages are followed",
                o.host_str().unwrap_or("")
            ));
        }
    }
    Ok(Source::Http(u))
}

/// A feed's records ready to store, with what was rejected and what landed with a caveat.
struct Prepared {
    records: Vec<records::Encoded>,
    rejections: Vec<StoredRejection>,
    warnings: Vec<StoredRejection>,
}

/// Normalises parsed records, turning every problem into a counted, logged rejection.
fn prepare(feed: &Feed, parsed: ParsedFeed) -> Prepared {
    let stored = |r: Rejection| StoredRejection {
        feed: feed.key.clone(),
        record_id: r.source_id,
        reason: r.reason,
    };
    let mut rejections: Vec<StoredRejection> = parsed.rejections.into_iter().map(stored).collect();
    let warnings: Vec<StoredRejection> = parsed.warnings.into_iter().map(stored).collect();
    let mut seen = HashSet::new();
    let mut records = Vec::with_capacity(parsed.records.len());
    for rec in parsed.records {
        let id = rec.source_id.clone();
        if rec.payload.kind() != feed.kind {
            rejections.push(StoredRejection {
                feed: feed.key.clone(),
                record_id: Some(id),
                reason: format!(
                    "record is {}, but this feed is configured for {}",
                    rec.payload.kind().as_str(),
                    feed.kind.as_str()
                ),
            });
            continue;
        }
        if !seen.insert(id.clone()) {
            rejections.push(StoredRejection {
                feed: feed.key.clone(),
                record_id: Some(id),
                reason: "duplicate id: an earlier record in this feed has the same id".into(),
            });
            continue;
        }
        match normalise::record(rec).and_then(|r| {
            records::encode(r).map_err(|e| format!("record cannot be stored as JSON: {e}"))
        }) {
            Ok(r) => records.push(r),
            Err(reason) => rejections.push(StoredRejection {
                feed: feed.key.clone(),
                record_id: Some(id),
                reason,
            }),
        }
    }
    for r in &rejections {
        tracing::warn!(feed = %r.feed, record = %crate::redact::secrets(r.record_id.as_deref().unwrap_or("-")), reason = %crate::redact::secrets(&r.reason), "record rejected");
    }
    for w in &warnings {
        tracing::info!(feed = %w.feed, record = %crate::redact::secrets(w.record_id.as_deref().unwrap_or("-")), warning = %crate::redact::secrets(&w.reason), "record kept with a warning");
    }
    Prepared {
        records,
        rejections,
        warnings,
    }
}

/// The run a sync's gathered feeds are applied in.
struct RunPlan {
    id: i64,
    /// Deletions go through past the partner's `max_delete_share`.
    force: bool,
    /// Another sync is on its way: mark the changed kinds, leave resolving them to the last one.
    defer: bool,
    progress: Arc<Progress>,
}

/// Applies gathered feeds in one transaction and closes the run inside it.
fn apply(
    store: &Store,
    partner: &Partner,
    plan: &RunPlan,
    data: Vec<FeedData>,
    settings: &dedupe::Settings,
) -> Result<(Outcome, RunCounts), SyncError> {
    let (run_id, defer) = (plan.id, plan.defer);
    plan.progress.set_stage(Stage::Applying);
    let now = chrono::Utc::now();
    let now_s = store::timestamp(now);
    let mut conn = store.writer();
    let tx = conn.transaction().map_err(StoreError::from)?;
    let mut tally = write_feeds(&tx, partner, data, now, plan.force)?;
    tally.counts.rejected = tally.rejections.len();
    tally.counts.warned = tally.warnings.len();
    // Removed partners whose grace period ran out are withdrawn with the kinds resolved below.
    store::withdrawal::withdraw_due(&tx, now)?;
    if !defer {
        plan.progress.set_stage(Stage::Resolving);
    }
    let resolved = resolve_or_defer(
        &tx,
        std::mem::take(&mut tally.touched),
        settings,
        now,
        defer,
    )?;
    let outcome = if tally.counts.feeds_fetched == 0 {
        Outcome::Unchanged
    } else {
        Outcome::Ok
    };
    runs::add_rejections(&tx, run_id, &tally.rejections)?;
    runs::add_warnings(&tx, run_id, &tally.warnings)?;
    runs::finish(&tx, run_id, outcome.as_str(), &tally.counts, None, &now_s)?;
    tx.commit().map_err(StoreError::from)?;
    if resolved {
        // The resolution's page cache was freed at commit.
        store::release_freed_memory();
    }
    Ok((outcome, tally.counts))
}

/// Writes a partner's gathered feeds in `tx` (the partner's row, its records, deletions within
/// the guard unless `force`, each feed's state) and adds up what they did.
fn write_feeds(
    tx: &rusqlite::Transaction,
    partner: &Partner,
    data: Vec<FeedData>,
    now: chrono::DateTime<chrono::Utc>,
    force: bool,
) -> Result<Tally, SyncError> {
    let pid = partner.id.as_str();
    let now_s = store::timestamp(now);
    store::upsert_partner(tx, pid, &partner.name, partner.priority)?;
    let guard = Guard::new(partner, now, force);
    let at = Applying {
        tx,
        pid,
        now_s: &now_s,
        guard: &guard,
    };
    let mut tally = Tally::default();
    for fd in data {
        apply_feed(&at, fd, &mut tally)?;
    }
    Ok(tally)
}

/// What every feed of one sync's transaction writes with.
struct Applying<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    pid: &'a str,
    now_s: &'a str,
    guard: &'a Guard<'a>,
}

/// What a sync's feeds add up to: the run's counts and caveats, and the kinds whose records
/// changed.
#[derive(Default)]
struct Tally {
    counts: RunCounts,
    touched: Vec<RecordKind>,
    rejections: Vec<StoredRejection>,
    warnings: Vec<StoredRejection>,
}

/// Applies one feed: upserts its records, deletes what it no longer has (within the guard) and
/// stores where the next sync of it starts.
fn apply_feed(at: &Applying, fd: FeedData, tally: &mut Tally) -> Result<(), SyncError> {
    let mut rejections = fd.rejections;
    tally.warnings.extend(fd.warnings);
    let Some(g) = fd.parsed else {
        tally.rejections.extend(rejections);
        tally.counts.feeds_unchanged += 1;
        return Ok(());
    };
    // An incremental feed with nothing new since its cursor is as good as "not modified".
    if !g.complete && g.records.is_empty() && g.deleted.is_empty() {
        tally.counts.feeds_unchanged += 1;
    } else {
        tally.counts.feeds_fetched += 1;
    }
    let (key, kind) = (fd.feed.key.as_str(), fd.feed.kind);
    tally.counts.records_seen += g.records.len();
    let written = write_records(at, kind, key, &g)?;
    let up = &written.upsert;
    tally.counts.inserted += up.inserted;
    tally.counts.updated += up.updated;
    tally.counts.unchanged += up.unchanged;
    let deleted = delete_dropped(at, key, &g, &written, &mut rejections)?;
    tally.counts.deleted += deleted;
    let state = records::FeedState {
        source: fd.feed.source.to_string(),
        etag: g.validators.etag,
        last_modified: g.validators.last_modified,
        cursor: g.cursor,
    };
    records::save_feed_state(at.tx, at.pid, key, &state, at.now_s)?;
    if (up.inserted + up.updated + deleted) > 0 && !tally.touched.contains(&kind) {
        tally.touched.push(kind);
    }
    tally.rejections.extend(rejections);
    Ok(())
}

/// A feed's records as upserted, with what its deletions are weighed against.
struct Written {
    upsert: records::UpsertStats,
    /// Live records of an incremental feed before the upsert.
    counted: Option<usize>,
    /// Whether the kind's changed records are noted for a scoped resolution.
    track: bool,
}

fn write_records(
    at: &Applying,
    kind: RecordKind,
    key: &str,
    g: &Gathered,
) -> Result<Written, SyncError> {
    // Only an incremental feed needs a count: a full feed's size before follows from what the
    // upsert found and what it no longer lists (a count is a scan of the partner's rows).
    let counted = if g.complete {
        None
    } else {
        Some(records::live_count(at.tx, at.pid, key)?)
    };
    // A kind with no stored keys is resolved in full next, whatever changed: which records
    // changed need not be kept (at a first sync, a million rows written and deleted again).
    let track = store::block_keys::any(at.tx, kind)?;
    let upsert = records::upsert(at.tx, at.pid, key, &g.records, at.now_s, track)?;
    if track {
        store::block_keys::mark_dirty(at.tx, &upsert.changed)?;
    }
    Ok(Written {
        upsert,
        counted,
        track,
    })
}

/// Soft-deletes the records a feed dropped (a full feed's missing ones, an incremental feed's
/// tombstones) unless the mass-deletion guard holds them; returns how many.
fn delete_dropped(
    at: &Applying,
    key: &str,
    g: &Gathered,
    written: &Written,
    rejections: &mut [StoredRejection],
) -> Result<usize, SyncError> {
    let up = &written.upsert;
    let (deletions, live_before) = if up.fresh {
        (Vec::new(), 0)
    } else if let Some(before) = written.counted {
        // Deletions the partner stated one by one (RPDE tombstones) count like missing ones.
        (records::live_rows(at.tx, at.pid, key, &g.deleted)?, before)
    } else {
        let seen: HashSet<&str> = g.records.iter().map(|r| r.source_id.as_str()).collect();
        let missing = records::missing_from_feed(at.tx, at.pid, key, &seen)?;
        let before = up.unchanged + up.updated + missing.len();
        (keep_unread(at.tx, missing, rejections)?, before)
    };
    let remaining = (live_before + up.inserted).saturating_sub(deletions.len());
    let feed_empty = g.complete && g.records.is_empty();
    at.guard.check(
        at.tx,
        key,
        deletions.len(),
        live_before,
        remaining,
        feed_empty,
    )?;
    at.guard
        .remember(at.tx, key, remaining, !deletions.is_empty())?;
    records::mark_deleted(at.tx, &deletions, at.now_s)?;
    if written.track {
        store::block_keys::mark_dirty(at.tx, &deletions)?;
    }
    Ok(deletions.len())
}

/// Resolves the kinds this sync changed and any left marked, or, when another sync is on its
/// way, only marks them; returns whether anything was resolved.
fn resolve_or_defer(
    tx: &rusqlite::Transaction,
    touched: Vec<RecordKind>,
    settings: &dedupe::Settings,
    now: chrono::DateTime<chrono::Utc>,
    defer: bool,
) -> Result<bool, SyncError> {
    if defer {
        // Another sync is on its way: resolving every live record now would be redone in a
        // moment. Mark the kinds; the last sync of the batch resolves them once.
        for kind in touched {
            tx.execute(
                "INSERT OR IGNORE INTO dirty_kinds (kind) VALUES (?1)",
                rusqlite::params![kind.as_str()],
            )
            .map_err(StoreError::from)?;
        }
        return Ok(false);
    }
    let mut resolved = false;
    for kind in dirty(tx)?.into_iter().chain(touched) {
        crate::resolve::resolve_kind(tx, kind, settings, now)?;
        clear_dirty(tx, kind)?;
        resolved = true;
    }
    Ok(resolved)
}

fn dirty(tx: &rusqlite::Transaction) -> Result<Vec<RecordKind>, StoreError> {
    let mut st = tx.prepare("SELECT kind FROM dirty_kinds ORDER BY kind")?;
    let kinds = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(kinds.iter().filter_map(|k| RecordKind::parse(k)).collect())
}

fn clear_dirty(tx: &rusqlite::Transaction, kind: RecordKind) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM dirty_kinds WHERE kind = ?1",
        rusqlite::params![kind.as_str()],
    )?;
    Ok(())
}

/// Resolves the kinds whose records changed in deferred syncs, in one transaction. Runs after the
/// last sync of a batch and at start (a batch cut short by a crash leaves its kinds marked; a
/// change of `[dedupe]` settings re-resolves in full).
pub fn resolve_dirty(store: &Store, settings: &dedupe::Settings) -> Result<usize, StoreError> {
    let mut conn = store.writer();
    let tx = conn.transaction()?;
    let mut kinds = dirty(&tx)?;
    // Kinds with records never resolved with stored keys (a store from an older build) or last
    // resolved under other [dedupe] settings are resolved in full now, not at their next change.
    for kind in [RecordKind::Organisations, RecordKind::Events] {
        if !kinds.contains(&kind)
            && records::any_live(&tx, kind)?
            && crate::resolve::needs_full(&tx, kind, settings)?
        {
            tracing::info!(
                kind = kind.as_str(),
                "resolving in full: first resolution with stored keys, or [dedupe] settings changed"
            );
            kinds.push(kind);
        }
    }
    let now = chrono::Utc::now();
    for kind in &kinds {
        crate::resolve::resolve_kind(&tx, *kind, settings, now)?;
        clear_dirty(&tx, *kind)?;
    }
    tx.commit()?;
    if !kinds.is_empty() {
        // The resolution's page cache was freed at commit.
        store::release_freed_memory();
    }
    Ok(kinds.len())
}

/// Of the live rows a full feed no longer lists, those it tried to list but could not read (an item
/// page that failed, a record that did not parse) are kept, and their rejection says so: a fault
/// is not a deletion.
fn keep_unread(
    tx: &rusqlite::Transaction,
    missing: Vec<i64>,
    rejections: &mut [StoredRejection],
) -> Result<Vec<i64>, SyncError> {
    let unread: HashSet<String> = rejections
        .iter()
        .filter_map(|r| r.record_id.clone())
        .collect();
    let (kept, matched) = store::guard::kept_rows(tx, &missing, &unread)?;
    for r in rejections.iter_mut() {
        if r.record_id.as_ref().is_some_and(|id| matched.contains(id)) {
            r.reason.push_str("; its previous record is kept");
        }
    }
    if !kept.is_empty() {
        tracing::warn!(
            kept = kept.len(),
            "records the partner still lists but that could not be read this time are kept"
        );
    }
    Ok(missing.into_iter().filter(|r| !kept.contains(r)).collect())
}

/// The mass-deletion guard for one partner's sync: compares each feed's loss with the previous
/// sync and with the feed's high-water mark over `delete_guard_days`, so a run of cuts that are
/// each small is held once they add up.
struct Guard<'a> {
    partner: &'a Partner,
    force: bool,
    today: String,
    since: String,
}

impl<'a> Guard<'a> {
    fn new(partner: &'a Partner, now: chrono::DateTime<chrono::Utc>, force: bool) -> Guard<'a> {
        let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
        let window = chrono::Duration::days(i64::from(partner.delete_guard_days));
        Guard {
            partner,
            force,
            today: day(now),
            since: day(now - window),
        }
    }

    fn check(
        &self,
        tx: &rusqlite::Transaction,
        feed: &str,
        would_delete: usize,
        live_before: usize,
        remaining: usize,
        feed_empty: bool,
    ) -> Result<(), SyncError> {
        if self.force || would_delete == 0 {
            return Ok(());
        }
        let share = self.partner.max_delete_share;
        let held = |compared: String| SyncError::MassDeletion {
            feed: feed.to_string(),
            would_delete,
            live: live_before,
            share_pct: share * 100.0,
            compared,
        };
        if mass_deletion(would_delete, live_before, feed_empty, share) {
            return Err(held(format!(
                "the previous sync's {live_before} live records"
            )));
        }
        if self.partner.delete_guard_days == 0 {
            return Ok(());
        }
        let pid = self.partner.id.as_str();
        let Some((mark, day)) = store::guard::high_water(tx, pid, feed, &self.since)? else {
            return Ok(());
        };
        let lost = mark.saturating_sub(remaining);
        if mark > live_before && mass_deletion(lost, mark, false, share) {
            return Err(held(format!(
                "its high-water mark of {mark} live records on {day}, the largest in the last {} days ({remaining} would remain)",
                self.partner.delete_guard_days
            )));
        }
        Ok(())
    }

    /// Records the feed's size after this sync; a forced deletion starts a new mark.
    fn remember(
        &self,
        tx: &rusqlite::Transaction,
        feed: &str,
        live: usize,
        deleted: bool,
    ) -> Result<(), SyncError> {
        let pid = self.partner.id.as_str();
        store::guard::remember(
            tx,
            pid,
            feed,
            &self.today,
            live,
            self.force && deleted,
            &self.since,
        )?;
        Ok(())
    }
}

/// Whether deleting `would_delete` of `live` records is too many to apply unseen. A single deletion
/// is routine; an empty feed that would wipe a partner is always suspect.
pub fn mass_deletion(would_delete: usize, live: usize, feed_empty: bool, max_share: f64) -> bool {
    if would_delete == 0 {
        return false;
    }
    if feed_empty {
        return true;
    }
    would_delete >= 2 && (would_delete as f64) > max_share * live as f64
}

#[cfg(test)]
mod tests {
    use super::mass_deletion;

    #[test]
    fn mass_deletion_guard_thresholds() {
        assert!(!mass_deletion(0, 100, false, 0.25));
        assert!(!mass_deletion(1, 2, false, 0.25), "one deletion is routine");
        assert!(!mass_deletion(25, 100, false, 0.25));
        assert!(mass_deletion(26, 100, false, 0.25));
        assert!(
            mass_deletion(1, 1, true, 0.25),
            "an empty feed never wipes a partner unseen"
        );
        assert!(!mass_deletion(90, 100, false, 1.0));
    }
}
