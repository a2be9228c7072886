//! Loads the operator's postcode centroid file into the store off the request path: at start-up,
//! and again when a search finds the file changed. A search waits for a load a few seconds at
//! most (a small file is ready well within that), then answers 503 until it is done, so no request
//! takes as long as placing a million records.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::store::{places, Store};

/// How long a search waits for a load under way before it answers 503.
pub const WAIT: Duration = Duration::from_secs(5);

/// Whether a load is running; one at a time.
#[derive(Default)]
pub struct PlacesLoader {
    loading: Mutex<bool>,
    done: Condvar,
}

/// What a search finds the centroids to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// A load is under way (it did not finish within [`WAIT`]).
    Loading,
    /// The last load failed; the log says why.
    Failed,
}

impl PlacesLoader {
    /// Starts loading `path` on its own thread unless it is current or a load is already running.
    pub fn start(self: &Arc<Self>, store: Arc<Store>, path: PathBuf) {
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if *loading {
            return;
        }
        *loading = true;
        drop(loading);
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("postcode-centroids".into())
            .spawn(move || {
                load_unless_current(&store, &path);
                me.finish();
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start loading the postcode centroids");
            self.finish();
        }
    }

    fn finish(&self) {
        *self.loading.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.done.notify_all();
    }

    /// Makes sure `path` is loaded: starts a load if it is not, waits up to `wait` for it.
    pub fn ensure(
        self: &Arc<Self>,
        store: &Arc<Store>,
        path: &std::path::Path,
        wait: Duration,
    ) -> Result<Readiness, places::PlacesError> {
        if places::is_current(&*store.reader()?, path)? {
            return Ok(Readiness::Ready);
        }
        self.start(store.clone(), path.to_path_buf());
        let deadline = Instant::now() + wait;
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        while *loading {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Readiness::Loading);
            }
            loading = self
                .done
                .wait_timeout(loading, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(loading);
        Ok(if places::is_current(&*store.reader()?, path)? {
            Readiness::Ready
        } else {
            Readiness::Failed
        })
    }
}

fn load_unless_current(store: &Store, path: &std::path::Path) {
    let mut writer = store.writer();
    match places::is_current(&writer, path) {
        Ok(true) => return,
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, file = %path.display(), "cannot load the postcode centroids");
            return;
        }
    }
    let started = Instant::now();
    match places::load(&mut writer, path) {
        Ok(stats) => tracing::info!(
            loaded = stats.loaded,
            skipped = stats.skipped,
            file = %path.display(),
            secs = started.elapsed().as_secs_f64(),
            "postcode centroids loaded"
        ),
        Err(e) => {
            tracing::error!(error = %e, file = %path.display(), "cannot load the postcode centroids")
        }
    }
}
