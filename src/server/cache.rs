//! A small cache of rendered responses (calendars are the costly ones), valid while the store's
//! change counter stands still. Each hit skips the queries, the rendering and the ETag hash, and
//! its gzip form is made once, on first demand, instead of once per request. Requests that miss
//! together wait for one rendering instead of each making their own. Bodies are kept as the
//! parts they were rendered in, and the cache holds at most a set number of bytes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};

use crate::publish::ical::PART_BYTES;

/// Most responses kept, whatever their size.
const MAX_ENTRIES: usize = 256;

/// A response body as consecutive shared parts: one for a JSON page, hundreds for a national
/// calendar, which is then never copied into one contiguous buffer. Clones share the parts.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    parts: Arc<[Bytes]>,
    len: usize,
}

impl Parts {
    pub fn new(parts: Vec<String>) -> Parts {
        Parts::from_bytes(parts.into_iter().map(Bytes::from))
    }

    fn from_bytes(parts: impl Iterator<Item = Bytes>) -> Parts {
        let parts: Vec<Bytes> = parts.filter(|p| !p.is_empty()).collect();
        Parts {
            len: parts.iter().map(Bytes::len).sum(),
            parts: parts.into(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The strong ETag of the whole body (the same as over its bytes in one piece).
    pub fn etag(&self) -> String {
        super::etag_of_parts(self.parts.iter().map(|p| &p[..]))
    }

    /// A response body that sends the parts in turn, with its exact length known up front.
    pub fn body(&self) -> Body {
        match &self.parts[..] {
            [] => Body::empty(),
            [one] => Body::from(one.clone()),
            _ => Body::new(PartsBody {
                parts: self.parts.clone(),
                next: 0,
                remaining: self.len as u64,
            }),
        }
    }
}

impl PartialEq<&str> for Parts {
    fn eq(&self, other: &&str) -> bool {
        self.len == other.len()
            && self
                .parts
                .iter()
                .scan(0, |at, p| {
                    let start = *at;
                    *at += p.len();
                    Some(other.as_bytes().get(start..*at) == Some(&p[..]))
                })
                .all(|same| same)
    }
}

struct PartsBody {
    parts: Arc<[Bytes]>,
    next: usize,
    remaining: u64,
}

impl http_body::Body for PartsBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        let Some(part) = self.parts.get(self.next).cloned() else {
            return Poll::Ready(None);
        };
        self.next += 1;
        self.remaining = self.remaining.saturating_sub(part.len() as u64);
        Poll::Ready(Some(Ok(http_body::Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.parts.len()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Collects written bytes as parts of [`PART_BYTES`] (the size calendars are built in), so a
/// big compressed body never grows (and copies) one buffer.
#[derive(Default)]
struct PartsWriter {
    done: Vec<Bytes>,
    current: Vec<u8>,
}

impl PartsWriter {
    fn finish(mut self) -> Parts {
        self.done
            .push(Bytes::from(std::mem::take(&mut self.current)));
        Parts::from_bytes(self.done.into_iter())
    }
}

impl Write for PartsWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.current.capacity() == 0 {
            self.current.reserve_exact(PART_BYTES);
        }
        let n = buf.len().min(PART_BYTES - self.current.len());
        self.current.extend_from_slice(&buf[..n]);
        if self.current.len() == PART_BYTES {
            self.done
                .push(Bytes::from(std::mem::take(&mut self.current)));
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone)]
pub struct Entry {
    /// The store's last change number when this was rendered.
    pub change: i64,
    pub body: Parts,
    pub etag: String,
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    /// What the body leaves out, if anything, sent with it (a calendar cut at its bound).
    pub cut: Option<Arc<str>>,
    /// The body gzip-compressed, shared by every clone of this entry.
    gzip: Arc<OnceLock<Parts>>,
}

impl Entry {
    /// An entry for `body`, its ETag worked out here.
    pub fn new(
        change: i64,
        body: Parts,
        last_modified: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Entry {
        Entry {
            change,
            etag: body.etag(),
            body,
            last_modified,
            cut: None,
            gzip: Arc::default(),
        }
    }

    /// This entry, stating what its body leaves out.
    pub fn with_cut(mut self, cut: Option<String>) -> Entry {
        self.cut = cut.map(Arc::from);
        self
    }

    /// The gzip representation, compressed on first use (fast level: calendars are text and
    /// compress ~7:1 even so), in parts like the body.
    pub fn gzip(&self) -> Parts {
        self.gzip
            .get_or_init(|| {
                let mut enc = flate2::write::GzEncoder::new(
                    PartsWriter::default(),
                    flate2::Compression::fast(),
                );
                let written = self.body.parts.iter().try_for_each(|p| enc.write_all(p));
                match written.and_then(|_| enc.finish()) {
                    Ok(w) => w.finish(),
                    // Writing to memory cannot fail; should it, the plain body is still correct.
                    Err(_) => Parts::default(),
                }
            })
            .clone()
    }

    /// Bytes this entry holds: its body, and its gzip form once made.
    fn weight(&self) -> usize {
        self.body.len() + self.gzip.get().map_or(0, Parts::len)
    }

    /// The strong ETag of the gzip representation (a different byte sequence needs its own).
    pub fn gzip_etag(&self) -> String {
        format!("{}-gz\"", self.etag.trim_end_matches('"'))
    }
}

/// The parameters a route reads, in a stable order, for its cache key. Only `known` ones count: a
/// request may add any other parameter (`?x=1`, `?x=2`, …), and each must not make a rendering and
/// cache entry of its own. A route that starts reading a parameter must list it here.
pub fn key_params<'a>(
    p: &'a std::collections::HashMap<String, String>,
    known: &[&str],
) -> Vec<(&'a str, &'a str)> {
    let mut keys: Vec<(&str, &str)> = p
        .iter()
        .filter(|(k, _)| known.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    keys.sort();
    keys
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
    /// When the slot was last asked for, in the cache's own count of requests.
    used: u64,
}

pub struct ResponseCache {
    slots: Mutex<Slots>,
    /// Bytes of bodies (and their gzip forms) kept; the least recently asked-for go first.
    max_bytes: usize,
    /// The store's change number as last read, so a hit need not ask the store for it.
    pub change: ChangeHint,
}

/// The store's change number as last read, with the writer generation it was read at
/// ([`crate::store::Store::generation`]). While the generation stands still nothing was written,
/// so the number stands too; it is read again at least every [`ChangeHint::MAX_AGE`] all the
/// same, so a write the count cannot see (by hand, with the daemon running) is noticed soon.
#[derive(Default)]
pub struct ChangeHint {
    last: Mutex<Option<(u64, i64, Instant)>>,
}

impl ChangeHint {
    pub const MAX_AGE: Duration = Duration::from_secs(1);

    /// The change number read at `generation`, if that is the latest reading and recent.
    pub fn get(&self, generation: u64) -> Option<i64> {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.filter(|(g, _, at)| *g == generation && at.elapsed() < Self::MAX_AGE)
            .map(|(_, change, _)| change)
    }

    /// Notes `change` as read at `generation` (taken before the read, so a write that
    /// ends during the read leaves the hint behind the count and it is read again).
    pub fn set(&self, generation: u64, change: i64) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, change, Instant::now()));
    }
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<String, Slot>,
    clock: u64,
    /// Each key's size when last rendered, so room is made before it is rendered again: a
    /// calendar re-rendered after a sync would otherwise be held twice, old and new.
    sizes: HashMap<String, usize>,
}

fn weight(s: &Slot) -> usize {
    s.entry.get().map_or(0, Entry::weight)
}

impl Slots {
    /// Bytes held by the finished entries.
    fn total(&self) -> usize {
        self.by_key.values().map(weight).sum()
    }

    /// Drops the least recently used finished entries until what stays fits in `max_bytes`
    /// (the entry for `keep` stays whatever its size: it is about to be served).
    fn trim(&mut self, keep: &str, max_bytes: usize) {
        let mut total = self.total();
        if total <= max_bytes && self.by_key.len() <= MAX_ENTRIES {
            return;
        }
        let mut by_age: Vec<(u64, String)> = self
            .by_key
            .iter()
            .filter(|(k, s)| k.as_str() != keep && s.entry.initialized())
            .map(|(k, s)| (s.used, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, key) in by_age {
            if total <= max_bytes && self.by_key.len() <= MAX_ENTRIES {
                break;
            }
            if let Some(gone) = self.by_key.remove(&key) {
                total -= weight(&gone);
            }
        }
    }
}

impl Default for ResponseCache {
    fn default() -> ResponseCache {
        ResponseCache::new(crate::config::DEFAULT_RESPONSE_CACHE_MB << 20)
    }
}

impl ResponseCache {
    pub fn new(max_bytes: usize) -> ResponseCache {
        ResponseCache {
            slots: Mutex::default(),
            max_bytes,
            change: ChangeHint::default(),
        }
    }

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
            slots.clock += 1;
            let now = slots.clock;
            match slots.by_key.get_mut(key) {
                Some(slot) if slot.change >= change => {
                    slot.used = now;
                    slot.entry.clone()
                }
                _ => {
                    let expected = slots.sizes.get(key).copied().unwrap_or(0);
                    slots.trim(key, self.max_bytes.saturating_sub(expected));
                    let entry = Arc::new(tokio::sync::OnceCell::new());
                    slots.by_key.insert(
                        key.to_string(),
                        Slot {
                            change,
                            entry: entry.clone(),
                            used: now,
                        },
                    );
                    entry
                }
            }
        };
        let entry = cell.get_or_try_init(render).await.cloned()?;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // A hit leaves the size as it was: no key copied per request.
        if slots.sizes.get(key) != Some(&entry.body.len()) {
            if slots.sizes.len() >= 4 * MAX_ENTRIES && !slots.sizes.contains_key(key) {
                slots.sizes.clear();
            }
            slots.sizes.insert(key.to_string(), entry.body.len());
        }
        slots.trim(key, self.max_bytes);
        Ok(entry)
    }

    /// Bytes the cache holds now (bodies and gzip forms made so far).
    pub fn bytes(&self) -> usize {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).total()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_change_hint_holds_only_for_its_generation_and_not_for_long() {
        let hint = ChangeHint::default();
        assert_eq!(hint.get(0), None, "nothing read yet");
        hint.set(4, 17);
        assert_eq!(hint.get(4), Some(17));
        assert_eq!(
            hint.get(5),
            None,
            "the writer was given back since: read again"
        );
        *hint.last.lock().unwrap() = Some((4, 17, Instant::now() - ChangeHint::MAX_AGE));
        assert_eq!(hint.get(4), None, "too old, whatever the generation");
    }

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn entry(change: i64, body: &'static str) -> Entry {
        Entry::new(change, Parts::new(vec![body.to_string()]), None)
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

    fn sized(change: i64, len: usize) -> Entry {
        Entry::new(change, Parts::new(vec!["x".repeat(len)]), None)
    }

    #[tokio::test]
    async fn the_least_recently_used_go_first_when_the_bytes_run_out() {
        let cache = ResponseCache::new(3_000);
        let get = |key: &'static str, len: usize| {
            cache.get_or_render(key, 1, move || async move { Ok::<_, ()>(sized(1, len)) })
        };
        get("a", 1_000).await.unwrap();
        get("b", 1_000).await.unwrap();
        get("a", 0).await.unwrap(); // a hit: `a` is now the most recently used
        get("c", 1_500).await.unwrap();
        assert_eq!(cache.bytes(), 2_500, "b went, a and c stayed");
        assert_eq!(
            get("a", 7).await.unwrap().body.len(),
            1_000,
            "a is still cached"
        );
        assert_eq!(
            get("b", 7).await.unwrap().body.len(),
            7,
            "b was rendered again"
        );
        // One entry bigger than the whole budget is still served, and kept until another comes.
        assert_eq!(get("huge", 10_000).await.unwrap().body.len(), 10_000);
        assert_eq!(cache.bytes(), 10_000);
        get("d", 10).await.unwrap();
        assert_eq!(cache.bytes(), 10);
    }

    #[tokio::test]
    async fn room_is_made_before_a_known_key_is_rendered_again() {
        let cache = ResponseCache::new(3_000);
        let held = Arc::new(AtomicUsize::new(0));
        let get = |change: i64| {
            let (cache, held) = (&cache, held.clone());
            async move {
                cache
                    .get_or_render("cal", change, move || async move {
                        // What the cache holds while this rendering runs.
                        held.store(cache.bytes(), Ordering::SeqCst);
                        Ok::<_, ()>(sized(change, 2_000))
                    })
                    .await
            }
        };
        get(1).await.unwrap();
        get(2).await.unwrap();
        assert_eq!(
            held.load(Ordering::SeqCst),
            0,
            "the old rendering (2,000 bytes) left before the new one was made"
        );
    }

    #[test]
    fn parts_hash_and_compare_as_the_whole_body() {
        let parts = Parts::new(vec!["BEGIN:".into(), String::new(), "VCALENDAR".into()]);
        assert_eq!(parts.len(), 15);
        assert_eq!(parts, "BEGIN:VCALENDAR");
        assert_eq!(
            parts.etag(),
            super::super::etag_of(b"BEGIN:VCALENDAR"),
            "the same strong ETag as the body in one piece"
        );
    }

    #[tokio::test]
    async fn a_body_in_parts_is_sent_whole_with_its_length() {
        use http_body_util::BodyExt;
        let text: Vec<String> = (0..5).map(|i| format!("{i}").repeat(100_000)).collect();
        let parts = Parts::new(text.clone());
        let body = parts.body();
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(500_000));
        let sent = body.collect().await.unwrap().to_bytes();
        assert_eq!(sent, text.concat().as_bytes());
    }

    #[test]
    fn gzip_in_parts_decompresses_to_the_body() {
        use std::io::Read;
        // Numbers that do not repeat, so the compressed form is still several parts long.
        let mut x: u64 = 7;
        let text: Vec<String> = (0..20)
            .map(|_| {
                (0..8_000)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        format!("{}\r\n", x >> 40)
                    })
                    .collect()
            })
            .collect();
        let e = Entry::new(1, Parts::new(text.clone()), None);
        let gz = e.gzip();
        assert!(gz.parts.len() > 1, "a big compressed body is several parts");
        let joined: Vec<u8> = gz.parts.iter().flat_map(|p| p.iter().copied()).collect();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&joined[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text.concat());
        assert_eq!(e.weight(), e.body.len() + gz.len());
    }
}
