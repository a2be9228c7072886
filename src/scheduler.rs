//! When syncs run: one loop per partner fires on its cron schedule (in the configured time zone);
//! a per-partner lock means a sync never overlaps itself, and a semaphore caps how many run at once.
//! Manual triggers go through the same [`Runner`], so they obey the same rules.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{watch, Mutex, Semaphore};

use crate::config::{Config, Partner};
use crate::metrics::Metrics;
use crate::sync::{progress, Outcome, Progress, SyncContext, SyncOptions, SyncReport};

/// A sync in progress, shared by everyone who asked for it.
#[derive(Clone)]
struct InFlight {
    run_id: i64,
    done: watch::Receiver<Option<SyncReport>>,
    progress: Arc<Progress>,
}

/// A started (or joined) sync.
pub struct Ticket {
    pub partner: String,
    pub run_id: i64,
    /// True when the request joined a sync that was already running.
    pub joined: bool,
    done: watch::Receiver<Option<SyncReport>>,
}

impl Ticket {
    /// Waits for the sync to finish.
    pub async fn wait(mut self) -> Option<SyncReport> {
        let r = self.done.wait_for(|r| r.is_some()).await.ok()?;
        r.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no partner {0:?} in the config")]
    UnknownPartner(String),
    #[error("cannot start a sync: {0}")]
    Start(#[from] crate::sync::SyncError),
}

/// Runs syncs with the single-flight and concurrency rules: at most one sync per partner (a second
/// request joins the running one) and at most `max_concurrent` at once.
pub struct Runner {
    ctx: Arc<SyncContext>,
    partners: RwLock<HashMap<String, Partner>>,
    inflight: RwLock<HashMap<String, Arc<Mutex<Option<InFlight>>>>>,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    /// When each partner's loop will next sync (schedule and backoff), for the admin API.
    next: RwLock<HashMap<String, DateTime<Utc>>>,
    /// Partners' loops read their history one at a time at startup: fifty at once would each
    /// hold a blocking thread waiting for a read connection.
    history_gate: tokio::sync::Mutex<()>,
}

impl Runner {
    pub fn new(ctx: SyncContext, config: &Config, metrics: Arc<Metrics>) -> Runner {
        Runner {
            metrics,
            next: RwLock::new(HashMap::new()),
            ctx: Arc::new(ctx),
            partners: RwLock::new(
                config
                    .partners
                    .iter()
                    .map(|p| (p.id.to_string(), p.clone()))
                    .collect(),
            ),
            inflight: RwLock::new(
                config
                    .partners
                    .iter()
                    .map(|p| (p.id.to_string(), Arc::new(Mutex::new(None))))
                    .collect(),
            ),
            slots: Arc::new(Semaphore::new(config.scheduler.max_concurrent)),
            history_gate: tokio::sync::Mutex::new(()),
        }
    }

    pub fn context(&self) -> &SyncContext {
        &self.ctx
    }

    /// Takes a reloaded config's partners. A sync already running keeps the settings it started
    /// with; a partner that stays keeps its single-flight slot, so no overlap across a reload.
    pub fn reconfigure(&self, config: &Config) {
        let mut partners = self.partners.write().unwrap_or_else(|e| e.into_inner());
        *partners = config
            .partners
            .iter()
            .map(|p| (p.id.to_string(), p.clone()))
            .collect();
        let mut inflight = self.inflight.write().unwrap_or_else(|e| e.into_inner());
        for p in &config.partners {
            inflight
                .entry(p.id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(None)));
        }
    }

    fn set_next(&self, partner_id: &str, at: DateTime<Utc>) {
        self.next
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(partner_id.to_string(), at);
    }

    /// When the scheduler will next sync a partner (its schedule, pushed back while backing off).
    pub fn next_sync(&self, partner_id: &str) -> Option<DateTime<Utc>> {
        self.next
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(partner_id)
            .copied()
    }

    /// Whether a partner ever synced successfully, and its failed runs in a row, from the
    /// store, so backoff survives a restart.
    async fn history(&self, partner_id: &str) -> (bool, u32) {
        let _turn = self.history_gate.lock().await;
        let store = self.ctx.store.clone();
        let pid = partner_id.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = store.reader().ok()?;
            let ok = crate::store::runs::latest(&conn, &pid).ok()?.1.is_some();
            let streak = crate::store::runs::failures(&conn, &pid).ok()?.1 as u32;
            Some((ok, streak))
        })
        .await
        .ok()
        .flatten()
        .unwrap_or((false, 0))
    }

    fn lookup(&self, partner_id: &str) -> Option<(Partner, Arc<Mutex<Option<InFlight>>>)> {
        let partners = self.partners.read().unwrap_or_else(|e| e.into_inner());
        let inflight = self.inflight.read().unwrap_or_else(|e| e.into_inner());
        Some((
            partners.get(partner_id)?.clone(),
            inflight.get(partner_id)?.clone(),
        ))
    }

    /// Starts a partner's sync, or joins the one already running. Returns once the run has an id;
    /// the sync itself goes on in the background (it waits for a free slot first).
    pub async fn start(&self, partner_id: &str, opts: SyncOptions) -> Result<Ticket, RunError> {
        let Some((partner, slot)) = self.lookup(partner_id) else {
            return Err(RunError::UnknownPartner(partner_id.to_string()));
        };
        let mut current = slot.lock().await;
        if let Some(f) = current.as_ref() {
            if f.done.borrow().is_none() {
                return Ok(Ticket {
                    partner: partner_id.to_string(),
                    run_id: f.run_id,
                    joined: true,
                    done: f.done.clone(),
                });
            }
        }
        // Counted before the run row exists, so a sync already applying sees it coming.
        self.ctx.in_flight.fetch_add(1, Ordering::SeqCst);
        let run_id = match crate::sync::begin_run(&self.ctx, &partner, &opts.trigger).await {
            Ok(id) => id,
            Err(e) => {
                self.ctx.in_flight.fetch_sub(1, Ordering::SeqCst);
                return Err(e.into());
            }
        };
        let (tx, rx) = watch::channel(None);
        let progress = Arc::new(Progress::default());
        *current = Some(InFlight {
            run_id,
            done: rx.clone(),
            progress: progress.clone(),
        });
        drop(current);
        let (ctx, slots) = (self.ctx.clone(), self.slots.clone());
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.ok();
            let report = crate::sync::execute(&ctx, &partner, &opts, run_id, &progress).await;
            // The last sync of a batch resolves what the others deferred, before it reports done.
            if ctx.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                let (store, settings) = (ctx.store.clone(), ctx.dedupe);
                match tokio::task::spawn_blocking(move || {
                    crate::sync::resolve_dirty(&store, &settings)
                })
                .await
                {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => {
                        tracing::info!(kinds = n, "resolved entities after a batch of syncs")
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "batch resolution failed; it runs again after the next sync")
                    }
                    Err(e) => tracing::error!(error = %e, "batch resolution task failed"),
                }
            }
            metrics.record_sync(&report);
            let _ = tx.send(Some(report));
        });
        Ok(Ticket {
            partner: partner_id.to_string(),
            run_id,
            joined: false,
            done: rx,
        })
    }

    /// Whether a partner is syncing now, and its run id.
    pub async fn running(&self, partner_id: &str) -> Option<i64> {
        let (_, slot) = self.lookup(partner_id)?;
        let current = slot.lock().await;
        current
            .as_ref()
            .filter(|f| f.done.borrow().is_none())
            .map(|f| f.run_id)
    }

    /// A partner's running sync: its run id and how far it has got.
    pub async fn progress(&self, partner_id: &str) -> Option<(i64, progress::Snapshot)> {
        let (_, slot) = self.lookup(partner_id)?;
        let current = slot.lock().await;
        current
            .as_ref()
            .filter(|f| f.done.borrow().is_none())
            .map(|f| (f.run_id, f.progress.snapshot()))
    }

    /// Waits until no sync is running (used at shutdown).
    pub async fn idle(&self) {
        let slots: Vec<_> = self
            .inflight
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            let current = slot.lock().await.clone();
            if let Some(mut f) = current {
                let _ = f.done.wait_for(|r| r.is_some()).await;
            }
        }
    }
}

/// The next time a partner's schedule fires, in the scheduler's time zone.
pub fn next_run(partner: &Partner, config: &Config) -> Option<chrono::DateTime<Utc>> {
    let now = Utc::now().with_timezone(&config.scheduler.timezone);
    partner
        .schedule
        .cron
        .after(&now)
        .next()
        .map(|t| t.with_timezone(&Utc))
}

/// Backoff after `streak` failed syncs in a row: 5 minutes, doubling, capped at 6 hours. A failing
/// partner is retried no sooner than this after its last failure, whatever its schedule says.
pub fn backoff(streak: u32) -> Duration {
    if streak == 0 {
        return Duration::zero();
    }
    let minutes = 5i64.saturating_mul(1i64 << (streak - 1).min(16));
    Duration::minutes(minutes.min(6 * 60))
}

/// Runs every partner's schedule until `shutdown` turns true, restarting the loops whenever
/// `configs` delivers a reloaded config; in-flight syncs finish before it returns.
/// Partners that never synced are synced at once, so a new install (or a partner added by a
/// reload) has data without waiting for the first cron tick.
pub async fn run(
    runner: Arc<Runner>,
    mut configs: watch::Receiver<Arc<Config>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let config = configs.borrow_and_update().clone();
        let mut set = tokio::task::JoinSet::new();
        for partner in config.partners.clone() {
            set.spawn(partner_loop(
                runner.clone(),
                config.clone(),
                partner,
                shutdown.clone(),
            ));
        }
        let reloaded = tokio::select! {
            _ = shutdown.wait_for(|s| *s) => false,
            changed = configs.changed() => changed.is_ok(),
        };
        if !reloaded {
            while set.join_next().await.is_some() {}
            break;
        }
        // Loops only sleep or wait on syncs that run in their own tasks, so aborting them
        // cancels no sync.
        set.abort_all();
        while set.join_next().await.is_some() {}
        tracing::info!("schedules restarted with the reloaded config");
    }
    runner.idle().await;
}

async fn partner_loop(
    runner: Arc<Runner>,
    config: Arc<Config>,
    partner: Partner,
    mut shutdown: watch::Receiver<bool>,
) {
    let (ever_ok, mut streak) = runner.history(partner.id.as_str()).await;
    let mut last_failure = Utc::now();
    // A partner that has never synced (new install, or added by a reload) syncs at once.
    if !ever_ok && streak == 0 {
        let opts = SyncOptions {
            full: false,
            trigger: "startup".into(),
            force: false,
        };
        if let Some(failed) = run_once(&runner, &partner, opts).await {
            (streak, last_failure) = if failed {
                (streak + 1, Utc::now())
            } else {
                (0, last_failure)
            };
        }
    }
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(mut next) = next_run(&partner, &config) else {
            tracing::warn!(partner = %partner.id, "schedule has no future run");
            return;
        };
        if streak > 0 {
            let not_before = last_failure + backoff(streak);
            if next < not_before {
                tracing::warn!(
                    partner = %partner.id, failures = streak, not_before = %not_before,
                    "partner keeps failing; backing off"
                );
                // The first schedule tick after the backoff window.
                let tz = config.scheduler.timezone;
                next = partner
                    .schedule
                    .cron
                    .after(&not_before.with_timezone(&tz))
                    .next()
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or(not_before);
            }
        }
        runner.set_next(partner.id.as_str(), next);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let opts = SyncOptions {
            full: false,
            trigger: "schedule".into(),
            force: false,
        };
        if let Some(failed) = run_once(&runner, &partner, opts).await {
            (streak, last_failure) = if failed {
                (streak + 1, Utc::now())
            } else {
                (0, last_failure)
            };
        }
    }
}

/// A scheduled sync: skipped if the partner is already syncing (no overlap, no queue build-up).
/// Returns whether it failed, or `None` if it did not run.
async fn run_once(runner: &Runner, partner: &Partner, opts: SyncOptions) -> Option<bool> {
    match runner.start(partner.id.as_str(), opts).await {
        Ok(t) if t.joined => {
            tracing::info!(partner = %partner.id, run = t.run_id, "already syncing; schedule tick skipped");
            None
        }
        Ok(t) => t.wait().await.map(|r| r.outcome == Outcome::Failed),
        Err(e) => {
            tracing::error!(partner = %partner.id, error = %e, "cannot start sync");
            Some(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use chrono::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::zero());
        assert_eq!(backoff(1), Duration::minutes(5));
        assert_eq!(backoff(2), Duration::minutes(10));
        assert_eq!(backoff(5), Duration::minutes(80));
        assert_eq!(backoff(7), Duration::minutes(320));
        assert_eq!(backoff(8), Duration::hours(6));
        assert_eq!(backoff(60), Duration::hours(6));
    }
}
