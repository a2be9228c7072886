//! How far a running sync has got, for the people watching it: the stage it is in, which feed,
//! and the pages and records read so far. Written by the sync as it goes (atomics, no locks on its
//! path), read by the admin console while it runs.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// The stages of one sync, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Waiting for one of the scheduler's `max_concurrent` slots.
    Waiting,
    /// Fetching and reading the partner's feeds.
    Fetching,
    /// Writing records and deletions in the store's transaction.
    Applying,
    /// Re-resolving the entities the sync changed.
    Resolving,
    Finished,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Waiting,
        Stage::Fetching,
        Stage::Applying,
        Stage::Resolving,
        Stage::Finished,
    ];

    /// In words, for a page.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting for a free sync slot",
            Stage::Fetching => "fetching feeds",
            Stage::Applying => "writing records",
            Stage::Resolving => "matching duplicates",
            Stage::Finished => "finished",
        }
    }
}

/// A sync's progress, shared between the sync and its watchers.
#[derive(Debug, Default)]
pub struct Progress {
    stage: AtomicU8,
    feeds: AtomicUsize,
    /// 1-based index of the feed being read; 0 before the first.
    feed: AtomicUsize,
    pages: AtomicUsize,
    bytes: AtomicU64,
    records: AtomicUsize,
    rejected: AtomicUsize,
}

/// What a watcher sees at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub stage: Stage,
    pub feed: usize,
    pub feeds: usize,
    pub pages: usize,
    pub bytes: u64,
    /// Records read and normalised so far (rejections apart).
    pub records: usize,
    pub rejected: usize,
}

impl Progress {
    pub fn set_stage(&self, stage: Stage) {
        let i = Stage::ALL.iter().position(|s| *s == stage).unwrap_or(0);
        self.stage.store(i as u8, Ordering::Relaxed);
    }

    /// A feed's reading begins (`index` from 1, of `total`).
    pub fn feed_started(&self, index: usize, total: usize) {
        self.feeds.store(total, Ordering::Relaxed);
        self.feed.store(index, Ordering::Relaxed);
    }

    pub fn page_read(&self, bytes: usize) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A feed's records were read: `records` kept, `rejected` refused.
    pub fn feed_read(&self, records: usize, rejected: usize) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.rejected.fetch_add(rejected, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let stage = Stage::ALL
            .get(usize::from(self.stage.load(Ordering::Relaxed)))
            .copied()
            .unwrap_or(Stage::Waiting);
        Snapshot {
            stage,
            feed: self.feed.load(Ordering::Relaxed),
            feeds: self.feeds.load(Ordering::Relaxed),
            pages: self.pages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }
}

impl Snapshot {
    /// One line for a person: "fetching feeds (feed 1 of 2): 3 pages, 120 records read".
    pub fn describe(&self) -> String {
        let mut s = self.stage.describe().to_string();
        if self.stage == Stage::Fetching && self.feeds > 0 {
            s.push_str(&format!(" (feed {} of {})", self.feed, self.feeds));
        }
        if self.stage != Stage::Waiting {
            s.push_str(&format!(
                ": {} page{}, {} record{} read",
                self.pages,
                if self.pages == 1 { "" } else { "s" },
                self.records,
                if self.records == 1 { "" } else { "s" }
            ));
            if self.rejected > 0 {
                s.push_str(&format!(", {} rejected", self.rejected));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_reads_as_it_goes() {
        let p = Progress::default();
        assert_eq!(p.snapshot().stage, Stage::Waiting);
        assert_eq!(p.snapshot().describe(), "waiting for a free sync slot");
        p.set_stage(Stage::Fetching);
        p.feed_started(1, 2);
        p.page_read(100);
        p.page_read(50);
        p.feed_read(120, 3);
        let s = p.snapshot();
        assert_eq!((s.pages, s.bytes, s.records, s.rejected), (2, 150, 120, 3));
        assert_eq!(
            s.describe(),
            "fetching feeds (feed 1 of 2): 2 pages, 120 records read, 3 rejected"
        );
        p.set_stage(Stage::Resolving);
        assert_eq!(
            p.snapshot().describe(),
            "matching duplicates: 2 pages, 120 records read, 3 rejected"
        );
    }
}
