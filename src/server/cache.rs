//! A small cache of rendered responses (calendars are the costly ones), valid while the store's
//! change counter stands still. Each hit skips the queries, the rendering and the ETag hash, and
//! its gzip form is made once, on first demand, instead of once per request. Requests that miss
//! together wait for one rendering instead of each making their own.

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

/// One key's rendering for one change number: empty while it is being made.
struct Slot {
    change: i64,
    entry: Arc<tokio::sync::OnceCell<Entry>>,
}

#[derive(Default)]
pub struct ResponseCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl ResponseCache {
    /// The rendering of `key` as of the store's change number `change`, made by `render` only if
    /// no request has made it (or is making it) already. A burst of requests just after a sync
    /// would otherwise each render the same calendar at once, slowing every one of them. A slot
    /// for a newer change number is served as it is: never older data than the caller saw.
    /// Should `render` fail, the error goes to its caller and the next waiter renders instead.
    pub async fn get_or_render<E, F, Fut>(
        &self,
        key: &str,
        change: i64,
        render: F,
    ) -> Result<Entry, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Entry, E>>,
    {
        let cell = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            match slots.get(key) {
                Some(slot) if slot.change >= change => slot.entry.clone(),
                _ => {
                    if slots.len() >= MAX_ENTRIES && !slots.contains_key(key) {
                        slots.clear();
                    }
                    let entry = Arc::new(tokio::sync::OnceCell::new());
                    slots.insert(
                        key.to_string(),
                        Slot {
                            change,
                            entry: entry.clone(),
                        },
                    );
                    entry
                }
            }
        };
        cell.get_or_try_init(render).await.cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(change: i64, body: &'static str) -> Entry {
        Entry::new(
            change,
            Bytes::from_static(body.as_bytes()),
            "\"e\"".into(),
            None,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_rendering() {
        let cache = Arc::new(ResponseCache::default());
        let renders = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, renders) = (cache.clone(), renders.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_render("k", 7, || async {
                            renders.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            Ok::<_, ()>(entry(7, "body"))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().body, "body");
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_new_change_renders_again_and_an_old_one_is_served_the_newer() {
        let cache = ResponseCache::default();
        let get = |change: i64, body: &'static str| {
            cache.get_or_render("k", change, move || async move {
                Ok::<_, ()>(entry(change, body))
            })
        };
        assert_eq!(get(1, "one").await.unwrap().body, "one");
        assert_eq!(get(1, "unused").await.unwrap().body, "one");
        assert_eq!(get(2, "two").await.unwrap().body, "two");
        assert_eq!(get(1, "stale").await.unwrap().body, "two");
    }

    #[tokio::test]
    async fn a_failed_rendering_is_not_kept() {
        let cache = ResponseCache::default();
        let failed = cache
            .get_or_render("k", 1, || async { Err::<Entry, &str>("store busy") })
            .await;
        assert_eq!(failed.err(), Some("store busy"));
        let ok = cache
            .get_or_render("k", 1, || async { Ok::<_, &str>(entry(1, "fine")) })
            .await;
        assert_eq!(ok.unwrap().body, "fine");
    }
}
