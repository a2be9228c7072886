//! A source tried once and kept nowhere: fetched and read with the sync's own fetcher, limits and
//! adapters, then written and resolved inside a store transaction that is rolled back, so an admin
//! sees what would land, what would be refused and why, and what it would merge with.

use std::collections::HashMap;

use super::{
    blocking, gather, write_feeds, FeedData, Harvesting, Progress, SeenSeries, Stage, SyncContext,
    SyncError, SyncOptions,
};
use crate::config::{Feed, Partner, PartnerId, Schedule};
use crate::model::Payload;
use crate::store::runs::StoredRejection;
use crate::store::{console, Store, StoreError};

/// What a source would bring if it were a partner's feed.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub pages: usize,
    pub bytes: u64,
    /// Every record that would land, in feed order.
    pub landed: Vec<Landed>,
    pub rejections: Vec<StoredRejection>,
    /// Records that would land with a caveat.
    pub warnings: Vec<StoredRejection>,
}

/// One record that would land, and the published records it would merge with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub record_id: String,
    /// Its name (an organisation) or title (an event).
    pub name: String,
    pub joins: Vec<Joined>,
}

/// A partner's record, already published, that a previewed record would merge with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub partner: String,
    pub record_id: String,
    /// The entity that record is published in now.
    pub entity_id: Option<String>,
}

impl Preview {
    /// Records that would merge with at least one published record.
    pub fn merging(&self) -> usize {
        self.landed.iter().filter(|l| !l.joins.is_empty()).count()
    }
}

/// Previews `feed`: nothing it reads is kept (no records, runs, feed state or series), and the
/// published directory does not change. Waits for the store's writer while it resolves.
pub async fn preview(
    ctx: &SyncContext,
    feed: Feed,
    schedule: Schedule,
) -> Result<Preview, SyncError> {
    let partner = trial_partner(feed, schedule);
    let progress = Progress::default();
    progress.set_stage(Stage::Fetching);
    let opts = SyncOptions {
        full: true,
        trigger: "preview".into(),
        force: true,
    };
    let harvesting = Harvesting {
        ctx,
        partner: &partner,
        opts: &opts,
        series: SeenSeries::default(),
        progress: &progress,
        remember: false,
    };
    let mut stop = ctx.stop.clone();
    let data = tokio::select! {
        r = gather(&harvesting) => r?,
        Ok(_) = stop.wait_for(|s| *s) => return Err(SyncError::Stopped),
    };
    let read = progress.snapshot();
    let (store, settings) = (ctx.store.clone(), ctx.dedupe);
    let mut preview = blocking(move || trial(&store, &partner, data, &settings)).await?;
    preview.pages = read.pages;
    preview.bytes = read.bytes;
    Ok(preview)
}

/// The partner a previewed feed is read as: an id no config can hold, the lowest priority (its
/// fields never win a merge over a configured partner's), and no deletion guard to hold it.
fn trial_partner(feed: Feed, schedule: Schedule) -> Partner {
    Partner {
        id: PartnerId::preview(),
        name: "Preview".into(),
        schedule,
        priority: i64::from(i32::MIN),
        licence: None,
        website: None,
        max_delete_share: 1.0,
        delete_guard_days: 0,
        feeds: vec![feed],
    }
}

/// Writes the feed's records and resolves them as a sync would, reads what they joined, and
/// rolls it all back.
fn trial(
    store: &Store,
    partner: &Partner,
    data: Vec<FeedData>,
    settings: &crate::dedupe::Settings,
) -> Result<Preview, SyncError> {
    let now = chrono::Utc::now();
    let mut conn = store.writer();
    let tx = conn.transaction().map_err(StoreError::from)?;
    let mut tally = write_feeds(&tx, partner, data, now, true)?;
    for kind in std::mem::take(&mut tally.touched) {
        crate::resolve::resolve_kind(&tx, kind, settings, now)?;
    }
    let shared = console::shared_entities(&tx, partner.id.as_str())?;
    // Dropped, not committed: the records, their entities and every change they made go.
    drop(tx);
    drop(conn);
    let published = published_entities(store, &shared)?;
    Ok(Preview {
        landed: shared.into_iter().map(|s| landed(s, &published)).collect(),
        rejections: tally.rejections,
        warnings: tally.warnings,
        ..Preview::default()
    })
}

/// The entity each joined record is published in now, read from the committed store.
fn published_entities(
    store: &Store,
    shared: &[console::SharedEntity],
) -> Result<HashMap<i64, String>, StoreError> {
    let rows: Vec<i64> = shared
        .iter()
        .flat_map(|s| s.others.iter().map(|(row, _, _)| *row))
        .collect();
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let conn = store.reader()?;
    console::entities_of_rows(&conn, &rows)
}

fn landed(s: console::SharedEntity, published: &HashMap<i64, String>) -> Landed {
    let name = match serde_json::from_str::<Payload>(&s.payload) {
        Ok(Payload::Organisation(o)) => o.name,
        Ok(Payload::Event(e)) => e.title,
        Err(_) => String::new(),
    };
    Landed {
        record_id: s.record_id,
        name,
        joins: s
            .others
            .into_iter()
            .map(|(row, partner, record_id)| Joined {
                partner,
                record_id,
                entity_id: published.get(&row).cloned(),
            })
            .collect(),
    }
}
