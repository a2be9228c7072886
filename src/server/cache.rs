//! A small cache of rendered responses (calendars are the costly ones), valid while the store's
//! change counter stands still. Each hit skips the queries, the rendering and the ETag hash, and
//! its gzip form is made once, on first demand, instead of once per request.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

/// Most responses kept; past it the cache starts afresh (simple, and bounded).
const MAX_ENTRIES: usize = 256;

#[derive(Clone)]
pub struct Entry {
    /// The store's last change number when this was rendered.
    pub change: i64,
    pub body: Bytes,
    pub etag: String,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// The body gzip-compressed, shared by every clone of this entry.
    gzip: Arc<OnceLock<Bytes>>,
}

impl Entry {
    pub fn new(
        change: i64,
        body: Bytes,
        etag: String,
        last_modified: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Entry {
        Entry {
            change,
            body,
            etag,
            last_modified,
            gzip: Arc::default(),
        }
    }

    /// The gzip representation, compressed on first use (fast level: calendars are text and
    /// compress ~10:1 even so).
    pub fn gzip(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.body.len() / 8),
                    flate2::Compression::fast(),
                );
                match enc.write_all(&self.body).and_then(|_| enc.finish()) {
                    Ok(v) => Bytes::from(v),
                    // Writing to a Vec cannot fail; should it, the plain body is still correct.
                    Err(_) => Bytes::new(),
                }
            })
            .clone()
    }

    /// The strong ETag of the gzip representation (a different byte sequence needs its own).
    pub fn gzip_etag(&self) -> String {
        format!("{}-gz\"", self.etag.trim_end_matches('"'))
    }
}

/// Whether the request accepts a gzip body (`Accept-Encoding: gzip`, not `gzip;q=0`).
pub fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
        })
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
