//! A small cache of rendered responses (calendars are the costly ones), valid while the store's
//! change counter stands still. Each hit skips the queries, the rendering and the ETag hash.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;

/// Most responses kept; past it the cache starts afresh (simple, and bounded).
const MAX_ENTRIES: usize = 256;

#[derive(Clone)]
pub struct Entry {
    /// The store's last change number when this was rendered.
    pub change: i64,
    pub body: Bytes,
    pub etag: String,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Default)]
pub struct ResponseCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ResponseCache {
    pub fn get(&self, key: &str, change: i64) -> Option<Entry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|e| e.change == change).cloned()
    }

    pub fn put(&self, key: String, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, entry);
    }
}
